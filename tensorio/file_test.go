package tensorio

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"gorgonia.org/tensor"
)

// onlyEntries fails unless dir holds exactly the named entries.
func onlyEntries(t *testing.T, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if len(got) != len(names) {
		t.Fatalf("directory holds %q, want %q", got, names)
	}
	for i := range got {
		if got[i] != names[i] {
			t.Fatalf("directory holds %q, want %q", got, names)
		}
	}
}

func TestAtomicWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.txt")
	write := func(s string) func(io.Writer) error {
		return func(w io.Writer) error { _, err := io.WriteString(w, s); return err }
	}
	if err := AtomicWrite(path, write("one")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "one" {
		t.Fatalf("file holds %q, want %q", b, "one")
	}
	if runtime.GOOS != "windows" {
		if err := os.Chmod(path, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := AtomicWrite(path, write("two")); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "two" {
		t.Errorf("file holds %q, want %q", b, "two")
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want the replaced file's 0600", fi.Mode().Perm())
	}

	// A failing writer leaves the old file and no temporary file.
	boom := errors.New("boom")
	err = AtomicWrite(path, func(w io.Writer) error {
		io.WriteString(w, "partial")
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("got %v, want boom", err)
	}
	wantErr(t, err, path+": boom")
	if b, _ := os.ReadFile(path); string(b) != "two" {
		t.Errorf("after a failed write the file holds %q, want %q", b, "two")
	}
	onlyEntries(t, dir, "out.txt")

	// So does a panicking one.
	func() {
		defer func() {
			if recover() == nil {
				t.Error("the panic did not propagate")
			}
		}()
		AtomicWrite(path, func(w io.Writer) error { panic("boom") })
	}()
	onlyEntries(t, dir, "out.txt")

	// Writes larger than the buffer reach the file.
	big := make([]byte, 1<<20+3)
	for i := range big {
		big[i] = byte(i)
	}
	if err := AtomicWrite(path, func(w io.Writer) error { _, err := w.Write(big); return err }); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); len(b) != len(big) || b[len(b)-1] != big[len(big)-1] {
		t.Errorf("file holds %d bytes, want %d", len(b), len(big))
	}
}

func TestAtomicWriteErrors(t *testing.T) {
	dir := t.TempDir()
	err := AtomicWrite(filepath.Join(dir, "missing", "x.npy"), func(io.Writer) error { return nil })
	wantErr(t, err, filepath.Join(dir, "missing", "x.npy")+": ")
	err = AtomicWrite(dir+string(filepath.Separator), func(io.Writer) error { return nil })
	wantErr(t, err, "want a file name")
	// Renaming over a directory fails and leaves nothing behind.
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sub, "keep"), nil, 0o666); err != nil {
		t.Fatal(err)
	}
	err = AtomicWrite(sub, func(io.Writer) error { return nil })
	if err == nil {
		t.Fatal("replacing a non-empty directory succeeded")
	}
	onlyEntries(t, dir, "sub")
}

func TestAtomicWriteRelative(t *testing.T) {
	t.Chdir(t.TempDir())
	if err := WriteFileAtomic("x.npy", dense([]int{2}, []int32{1, 2})); err != nil {
		t.Fatal(err)
	}
	got, err := ReadFile("x.npy")
	if err != nil {
		t.Fatal(err)
	}
	if d := sameTensor(dense([]int{2}, []int32{1, 2}), got); d != "" {
		t.Error(d)
	}
	onlyEntries(t, ".", "x.npy")
}

func TestFileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	for _, k := range testKinds {
		for _, shape := range testShapes {
			want := dense(shape, k.make(prod(shape)))
			path := filepath.Join(dir, "OUT.npy")
			if err := WriteFileAtomic(path, want); err != nil {
				t.Fatal(err)
			}
			got, err := ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if d := sameTensor(want, got); d != "" {
				t.Errorf("%s%v: %s", k.name, shape, d)
			}
		}
	}
	onlyEntries(t, dir, "OUT.npy")
}

func TestReadFileErrors(t *testing.T) {
	dir := t.TempDir()
	trailing := filepath.Join(dir, "trailing.npy")
	if err := WriteFileAtomic(trailing, tensor.New(tensor.FromScalar(int32(1)))); err != nil {
		t.Fatal(err)
	}
	f, _ := os.OpenFile(trailing, os.O_APPEND|os.O_WRONLY, 0)
	f.Write([]byte("xyz"))
	f.Close()
	_, err := ReadFile(trailing)
	wantErr(t, err, trailing+": 3 unexpected bytes after the array data")

	garbage := filepath.Join(dir, "in.npy")
	os.WriteFile(garbage, []byte("not numpy"), 0o666)
	_, err = ReadFile(garbage)
	wantErr(t, err, garbage+`: bad magic: want "\x93NUMPY", found "not nu"`)

	_, err = ReadFile(filepath.Join(dir, "x.csv"))
	wantErr(t, err, `x.csv: unknown extension ".csv": want .npy (or an ONNX TensorProto .pb)`)

	_, err = ReadFile(filepath.Join(dir, "absent.npy"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("got %v, want an error wrapping os.ErrNotExist", err)
	}

	err = WriteFileAtomic(filepath.Join(dir, "nil.npy"), nil)
	wantErr(t, err, "nil.npy: write .npy: nil tensor")
	onlyEntries(t, dir, "in.npy", "trailing.npy")
}
