package tensorio

import (
	"archive/zip"
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"gorgonia.org/tensor"
)

// Run a fuzzer with, for example:
//
//	go test ./tensorio -run '^$' -fuzz FuzzReadNPY -fuzztime 60s -parallel 1
//
// Crashers it finds land in testdata/fuzz/FuzzReadNPY and run as
// regression tests from then on. Seeds are kept under a few KB: the
// fuzzer's minimisation of a new input is quadratic in its length and
// stalls fuzzing for up to -fuzzminimizetime (60s) on large ones.

// addFiles seeds f with the files matching pattern of at most 4 KB.
func addFiles(f *testing.F, pattern string) {
	files, err := filepath.Glob(pattern)
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		if len(b) <= 4<<10 {
			f.Add(b)
		}
	}
}

// seedTensors are written into the seeds of every fuzzer.
func seedTensors() map[string]*tensor.Dense {
	ts := map[string]*tensor.Dense{}
	for _, k := range testKinds {
		for _, shape := range [][]int{{}, {3}, {2, 2}} {
			ts[k.name+formatShape(toInt64s(shape))] = dense(shape, k.make(prod(shape)))
		}
	}
	return ts
}

func toInt64s(s []int) []int64 {
	out := make([]int64, len(s))
	for i, d := range s {
		out[i] = int64(d)
	}
	return out
}

// checkRewrite writes t with write, reads it back with read and writes it
// again: the two writes must be equal. Comparing bytes rather than values
// lets NaNs through.
func checkRewrite[T any](t *testing.T, v T, write func(*bytes.Buffer, T) error, read func([]byte) (T, error)) {
	var a, b bytes.Buffer
	if err := write(&a, v); err != nil {
		t.Fatalf("writing what was read: %v", err)
	}
	v2, err := read(a.Bytes())
	if err != nil {
		t.Fatalf("reading what was written: %v", err)
	}
	if err := write(&b, v2); err != nil {
		t.Fatalf("writing again: %v", err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatalf("the second write differs from the first")
	}
}

func FuzzReadNPY(f *testing.F) {
	addFiles(f, "testdata/numpy/*.npy")
	for _, d := range seedTensors() {
		var buf bytes.Buffer
		if err := WriteNPY(&buf, d); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
	}
	f.Add(npyBytes(npyDict("'<f8'", "False", "(1099511627776,)"), make([]byte, 16)))
	f.Add(npyBytes(npyDict("'>i4'", "True", "(2, 1, 3)"), make([]byte, 24)))
	f.Fuzz(func(t *testing.T, in []byte) {
		d, err := ReadNPY(bytes.NewReader(in))
		d2, err2 := ReadNPY(onlyReader{bytes.NewReader(in)})
		if (err == nil) != (err2 == nil) {
			t.Fatalf("with its length known ReadNPY says %v, without %v", err, err2)
		}
		if err != nil {
			return
		}
		checkRewrite(t, d, func(w *bytes.Buffer, d *tensor.Dense) error { return WriteNPY(w, d) },
			func(b []byte) (*tensor.Dense, error) { return ReadNPY(bytes.NewReader(b)) })
		checkRewrite(t, d2, func(w *bytes.Buffer, d *tensor.Dense) error { return WriteNPY(w, d) },
			func(b []byte) (*tensor.Dense, error) { return ReadNPY(bytes.NewReader(b)) })
	})
}

func FuzzReadSafetensors(f *testing.F) {
	var buf bytes.Buffer
	if err := WriteSafetensors(&buf, seedTensors()); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	for name, d := range seedTensors() {
		buf.Reset()
		if err := WriteSafetensors(&buf, map[string]*tensor.Dense{name: d}); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
	}
	f.Add(stFile(`{"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"b":{"dtype":"I64","shape":[],"data_offsets":[16,24]}}`, make([]byte, 24)))
	f.Add(stFile(`{"a":{"dtype":"F32","shape":[1099511627776],"data_offsets":[0,16]}}`, make([]byte, 16)))
	f.Fuzz(func(t *testing.T, in []byte) {
		readSafetensorsMeta(bytes.NewReader(in), int64(len(in)))
		ts, err := ReadSafetensors(bytes.NewReader(in), int64(len(in)))
		if err != nil {
			return
		}
		checkRewrite(t, ts, func(w *bytes.Buffer, ts map[string]*tensor.Dense) error { return WriteSafetensors(w, ts) },
			func(b []byte) (map[string]*tensor.Dense, error) {
				return ReadSafetensors(bytes.NewReader(b), int64(len(b)))
			})
	})
}

// FuzzReadNPZ seeds from NumPy's archives, and from every .npy file of
// testdata/numpy wrapped as np.savez and np.savez_compressed write it, and
// from an archive with metadata as checkpoints carry it; it reads under a
// memory limit too (readNPZ), and reads the metadata.
//
//	go test ./tensorio -run '^$' -fuzz FuzzReadNPZ -fuzztime 5m
func FuzzReadNPZ(f *testing.F) {
	addFiles(f, "testdata/numpy/*.npz")
	var buf bytes.Buffer
	ts := map[string]*tensor.Dense{"a": dense([]int{2}, []int32{1, 2}), "b": tensor.New(tensor.FromScalar(true))}
	if err := WriteNPZMeta(&buf, ts, map[string]string{"multigpu.checkpoint.generation": "3"}); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	npys, _ := filepath.Glob("testdata/numpy/*.npy")
	for _, method := range []uint16{zip.Store, zip.Deflate} {
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		for _, p := range npys {
			b, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			w, err := zw.CreateHeader(&zip.FileHeader{Name: filepath.Base(p), Method: method})
			if err != nil {
				f.Fatal(err)
			}
			w.Write(b)
		}
		zw.Close()
		f.Add(buf.Bytes())
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		readNPZMeta(bytes.NewReader(in), int64(len(in)))
		limited, lerr := readNPZ(bytes.NewReader(in), int64(len(in)), 1<<16)
		ts, err := ReadNPZ(bytes.NewReader(in), int64(len(in)))
		if lerr == nil && err != nil {
			t.Fatalf("read under a limit, not without: %v", err)
		}
		var total int64
		for _, d := range limited {
			total += int64(d.MemSize())
		}
		if lerr == nil && total > 1<<16 {
			t.Fatalf("read %d bytes under a limit of %d", total, 1<<16)
		}
		if err != nil {
			return
		}
		checkRewrite(t, ts, func(w *bytes.Buffer, ts map[string]*tensor.Dense) error { return WriteNPZ(w, ts) },
			func(b []byte) (map[string]*tensor.Dense, error) { return ReadNPZ(bytes.NewReader(b), int64(len(b))) })
	})
}

func FuzzReadTensorProto(f *testing.F) {
	addFiles(f, filepath.Join(onnxTestData, "node", "test_[a-c]*", "test_data_set_0", "input_0.pb"))
	f.Add([]byte(tp{}.varint(tpDims, 2, 1).varint(tpDataType, onnxFloat).floats(true, 1.5, -2)))
	f.Add([]byte(tp{}.varint(tpDims, 3).varint(tpDataType, onnxBool).packedVarint(tpInt32Data, 1, 0, 1)))
	f.Add([]byte(tp{}.varint(tpDims, 1).varint(tpDataType, onnxInt64).bytes(tpRawData, make([]byte, 8))))
	f.Fuzz(func(t *testing.T, in []byte) {
		d, _, err := ReadTensorProto(bytes.NewReader(in))
		if err != nil {
			return
		}
		var buf bytes.Buffer
		if err := WriteNPY(&buf, d); err != nil {
			t.Fatalf("writing what was read: %v", err)
		}
	})
}
