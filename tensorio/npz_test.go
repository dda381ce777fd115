package tensorio

import (
	"archive/zip"
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"gorgonia.org/tensor"
)

// testArchive has a tensor of every kind, a scalar and a large one.
func testArchive() map[string]*tensor.Dense {
	ts := map[string]*tensor.Dense{}
	for i, k := range testKinds {
		shape := testShapes[(i+1)%len(testShapes)]
		ts["t_"+k.name] = dense(shape, k.make(prod(shape)))
	}
	ts["fc1/weight"] = dense([]int{300, 200}, testKinds[0].make(60000))
	ts["scalar"] = tensor.New(tensor.FromScalar(int64(-7)))
	ts["a"] = dense([]int{1}, []bool{true})
	return ts
}

func sameArchive(t *testing.T, want, got map[string]*tensor.Dense) {
	t.Helper()
	var wn, gn []string
	for k := range want {
		wn = append(wn, k)
	}
	for k := range got {
		gn = append(gn, k)
	}
	slices.Sort(wn)
	slices.Sort(gn)
	if !slices.Equal(wn, gn) {
		t.Fatalf("names: want %q, got %q", wn, gn)
	}
	for _, k := range wn {
		if d := sameTensor(want[k], got[k]); d != "" {
			t.Errorf("%s: %s", k, d)
		}
	}
}

func TestArchiveRoundTrip(t *testing.T) {
	for _, ext := range []string{".npz", ".safetensors"} {
		t.Run(ext, func(t *testing.T) {
			dir := t.TempDir()
			want := testArchive()
			p1, p2 := filepath.Join(dir, "a"+ext), filepath.Join(dir, "b"+ext)
			for _, p := range []string{p1, p2} {
				if err := WriteArchive(p, want); err != nil {
					t.Fatal(err)
				}
			}
			got, err := ReadArchive(p1)
			if err != nil {
				t.Fatal(err)
			}
			sameArchive(t, want, got)
			b1, _ := os.ReadFile(p1)
			b2, _ := os.ReadFile(p2)
			if !bytes.Equal(b1, b2) {
				t.Errorf("two writes of the same tensors differ")
			}
			entries, _ := os.ReadDir(dir)
			if len(entries) != 2 {
				t.Errorf("directory holds %d entries, want 2 (no temporary files left)", len(entries))
			}
		})
	}
}

func TestNPZMemberNames(t *testing.T) {
	var buf bytes.Buffer
	ts := map[string]*tensor.Dense{"b": dense([]int{1}, []float32{1}), "a": dense([]int{1}, []float32{2})}
	if err := WriteNPZ(&buf, ts); err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
		if f.Method != zip.Store {
			t.Errorf("%s: method %d, want stored", f.Name, f.Method)
		}
	}
	if want := []string{"a.npy", "b.npy"}; !slices.Equal(names, want) {
		t.Errorf("members %q, want %q", names, want)
	}
}

func TestNPZNumpyFixtures(t *testing.T) {
	a := dense([]int{2, 3}, []float32{0, 1, 2, 3, 4, 5})
	want := map[string]*tensor.Dense{
		"a": a,
		"b": dense([]int{3}, []int64{1, 2, 3}),
		"c": tensor.New(tensor.FromScalar(true)),
	}
	for _, file := range []string{"savez.npz", "savez_compressed.npz"} {
		t.Run(file, func(t *testing.T) {
			got, err := ReadArchive(filepath.Join("testdata", "numpy", file))
			if err != nil {
				t.Fatal(err)
			}
			sameArchive(t, want, got)
		})
	}
}

// zipOf builds a zip with the given members, deflated when deflate is set.
func zipOf(t *testing.T, deflate bool, members ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for i := 0; i < len(members); i += 2 {
		m := zip.Store
		if deflate {
			m = zip.Deflate
		}
		w, err := zw.CreateHeader(&zip.FileHeader{Name: members[i], Method: m})
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(members[i+1]))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestReadNPZMalformed(t *testing.T) {
	good := string(npyBytes(npyDict("'<f4'", "False", "(2,)"), make([]byte, 8)))
	var valid bytes.Buffer
	if err := WriteNPZ(&valid, map[string]*tensor.Dense{"x": dense([]int{4}, []float32{1, 2, 3, 4})}); err != nil {
		t.Fatal(err)
	}
	corrupt := bytes.Clone(valid.Bytes())
	i := bytes.Index(corrupt, []byte{0, 0, 0x80, 0x3f}) // float32 1 in the data
	corrupt[i+3] ^= 0xff
	huge := string(npyBytes(npyDict("'<f8'", "False", "(1099511627776,)"), make([]byte, 64)))
	tests := []struct {
		name string
		in   []byte
		want []string
	}{
		{"not zip", []byte(good), []string{"not a valid .npz (zip) archive"}},
		{"truncated", valid.Bytes()[:valid.Len()-10], []string{"not a valid .npz (zip) archive"}},
		{"not npy member", zipOf(t, false, "x.txt", "hello"), []string{`member "x.txt": want a name ending in .npy`}},
		{"empty name", zipOf(t, false, ".npy", good), []string{`member ".npy": want a name ending in .npy`}},
		{"duplicate", zipOf(t, false, "x.npy", good, "x.npy", good), []string{`member "x.npy" appears twice`}},
		{"bad member", zipOf(t, true, "x.npy", "hello"), []string{`member "x.npy": bad magic`}},
		{"trailing", zipOf(t, false, "x.npy", good+"junk"), []string{`member "x.npy": 4 unexpected bytes after the array data`}},
		{"truncated member", zipOf(t, false, "x.npy", good[:len(good)-1]), []string{`member "x.npy": truncated data: shape (2,) of '<f4' needs 8 bytes, found 7`}},
		{"crc", corrupt, []string{`member "x.npy"`, "checksum error"}},
		{"huge deflated", zipOf(t, true, "x.npy", huge), []string{`member "x.npy": truncated data`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			n := allocatedDuring(func() { _, err = ReadNPZ(bytes.NewReader(tt.in), int64(len(tt.in))) })
			wantErr(t, err, tt.want...)
			if n > 4<<20 {
				t.Errorf("allocated %d bytes for an archive of %d", n, len(tt.in))
			}
		})
	}
}

func TestArchiveErrorsNameFile(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "w.npz")
	os.WriteFile(bad, zipOf(t, false, "fc.npy", "junk"), 0o666)
	_, err := ReadArchive(bad)
	wantErr(t, err, bad+`: member "fc.npy": bad magic`)
	_, err = ReadArchive(filepath.Join(dir, "w.tar"))
	wantErr(t, err, `w.tar: unknown archive extension ".tar": want .npz or .safetensors`)
	err = WriteArchive(filepath.Join(dir, "w.zip"), nil)
	wantErr(t, err, `w.zip: unknown archive extension ".zip"`)
	err = WriteArchive(filepath.Join(dir, "n.npz"), map[string]*tensor.Dense{"x": nil})
	wantErr(t, err, `n.npz: tensor "x" is nil`)
	err = WriteArchive(filepath.Join(dir, "n.npz"), map[string]*tensor.Dense{"": dense([]int{1}, []int32{1})})
	wantErr(t, err, "n.npz: a tensor has an empty name")
	_, err = ReadArchive(filepath.Join(dir, "missing.safetensors"))
	wantErr(t, err, "missing.safetensors", "no such file")
	if _, statErr := os.Stat(filepath.Join(dir, "n.npz")); statErr == nil {
		t.Errorf("a failed WriteArchive left n.npz behind")
	}
}
