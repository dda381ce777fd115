package main

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// npyHeader returns a .npy header declaring shape of little-endian f64.
func npyHeader(shape string) []byte {
	dict := fmt.Sprintf("{'descr': '<f8', 'fortran_order': False, 'shape': %s, }", shape)
	pad := 64 - (10+len(dict)+1)%64
	dict += strings.Repeat(" ", pad%64) + "\n"
	h := []byte("\x93NUMPY\x01\x00")
	h = append(h, byte(len(dict)), byte(len(dict)>>8))
	return append(h, dict...)
}

// deflatedZeros returns a raw deflate stream of header followed by about
// mib MiB of zeros, made without compressing them all: a block of a MiB
// of zeros after zeros is the same block wherever it comes, so it is
// repeated.
func deflatedZeros(t *testing.T, header []byte, mib int) []byte {
	var buf bytes.Buffer
	w, err := flate.NewWriter(&buf, flate.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	zeros := make([]byte, 1<<20)
	w.Write(header)
	w.Write(zeros)
	w.Flush()
	first := buf.Len()
	w.Write(zeros)
	w.Flush()
	block := slices2(buf.Bytes()[first:])
	out := slices2(buf.Bytes())
	for range mib - 2 {
		out = append(out, block...)
	}
	buf.Reset()
	w.Close()
	return append(out, buf.Bytes()...)
}

func slices2(b []byte) []byte { return append([]byte(nil), b...) }

// writeBomb writes a .npz whose one member, w.npy, inflates to mib MiB
// and declares declared bytes.
func writeBomb(t *testing.T, path string, mib int, declared uint64) {
	data := deflatedZeros(t, npyHeader(fmt.Sprintf("(%d,)", mib<<17)), mib)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	fw, err := zw.CreateRaw(&zip.FileHeader{Name: "w.npy", Method: zip.Deflate, CompressedSize64: uint64(len(data)), UncompressedSize64: declared})
	if err != nil {
		t.Fatal(err)
	}
	fw.Write(data)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// sparseNPY writes a .npy file declaring shape (rows, cols) of f64,
// holes where its data would be: as large as it says, on no disk.
func sparseNPY(t *testing.T, path string, rows, cols int64) {
	h := npyHeader(fmt.Sprintf("(%d, %d)", rows, cols))
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(h)
	if err := f.Truncate(int64(len(h)) + rows*cols*8); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// zeroReader is an endless stream of zero bytes.
type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// Under --memory-limit 256M, every way in to a run that needs more is
// refused before the memory is taken: exit 2, a message naming what and
// how much, and a peak resident size (VmHWM) under 1.5 times the limit.
func TestMemoryLimitEveryPath(t *testing.T) {
	dir := t.TempDir()
	at := func(name string) string { return filepath.Join(dir, name) }
	writeBomb(t, at("bomb.npz"), 2048, 2048<<20) // honest: 2 GiB inflated, declared
	writeBomb(t, at("liar.npz"), 1024, 4096)     // 1 GiB inflated, 4 KiB declared
	wide := writeModel(t, "wide.graph", `graph wide {
  input %x: f64[N,1000000]
  param %w: f64[1000000]
  %y = add %x, %w
  output %y
}
`)
	sparseNPY(t, at("huge.npy"), 800, 1000000) // 6.4 GB
	bigParam := writeModel(t, "big.graph", `graph big {
  input %x: f32[N,4]
  param %w: f32[10000000000]
  %y = relu %x
  %s = sum %w {axes=[0]}
  output %y, %s
}
`)
	maxParam := writeModel(t, "max.graph", `graph huge {
  input %x: f32[N,4]
  param %w: f32[9223372036854775807]
  %y = relu %x
  output %y, %w
}
`)
	conv := writeModel(t, "conv.graph", `graph conv {
  input %x: f32[N,16,256,256]
  param %w: f32[1,16,64,64]
  %y = conv2d %x, %w
  output %y
}
`)
	data := writeData(t, dir, "data.npz", 20, -1)
	small := writeNPY(t, dir, "x.npy", []int{2, 4}, make([]float32, 8))
	out := at("out")
	lim := []string{"--memory-limit", "256M"}
	for _, c := range []struct {
		name  string
		stdin io.Reader
		args  []string
		want  string
	}{
		{"zip bomb in --weights", nil, []string{wide, "--run", "--weights", at("bomb.npz"), "--input", "x=" + small, "--output-dir", out}, "over the memory limit"},
		{"lying zip bomb in --weights", nil, []string{wide, "--run", "--weights", at("liar.npz"), "--input", "x=" + small, "--output-dir", out}, "liar.npz"},
		{"zip bomb in --data", nil, []string{mlpClassifier, "--train", "--data", at("bomb.npz"), "--epochs", "1", "--batch", "4", "--save-weights", at("w.npz")}, "over the memory limit"},
		{"zip bomb in --weights of --train", nil, []string{mlpClassifier, "--train", "--data", data, "--weights", at("bomb.npz"), "--epochs", "1", "--batch", "4", "--save-weights", at("w.npz")}, "over the memory limit"},
		{"a 40 GB --random-weights param", nil, []string{bigParam, "--run", "--random-weights", "--input", "x=" + small, "--output-dir", out}, "param %w"},
		{"a 2^63-1 param with --run", nil, []string{maxParam, "--run", "--random-weights", "--input", "x=" + small, "--output-dir", out}, "param %w"},
		{"a 2^63-1 param with --check", nil, []string{maxParam, "--check", "--gpus", "2"}, "param %w"},
		{"a 6 GB --input", nil, []string{wide, "--run", "--random-weights", "--input", "x=" + at("huge.npy"), "--output-dir", out}, "huge.npy"},
		{"a 10 GB im2col", nil, []string{conv, "--check", "--gpus", "2", "--batch", "2"}, "over the memory limit"},
		{"MODEL /dev/zero", nil, []string{"/dev/zero", "--gpus", "2"}, "/dev/zero"},
		{"a huge MODEL on stdin", zeroReader{}, []string{"-", "--gpus", "2"}, "MODEL on standard input"},
	} {
		ch := startIn(t, c.stdin, nil, append(c.args, lim...)...)
		code := ch.wait()
		peak := ch.peak.Load()
		if code != 2 || !strings.Contains(ch.stderr.String(), c.want) || strings.Count(ch.stderr.String(), "\n") > 3 {
			t.Errorf("%s: exit %d, stderr %q; want 2 and %q", c.name, code, ch.stderr.String(), c.want)
		}
		if peak > 384<<20 {
			t.Errorf("%s: peak resident size %d MiB, over 1.5 times the limit of 256 MiB", c.name, peak>>20)
		}
		t.Logf("%s: exit %d, peak %d MiB: %s", c.name, code, peak>>20, strings.TrimSpace(ch.stderr.String()))
	}
}
