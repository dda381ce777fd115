package tensorio

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gorgonia.org/tensor"
)

func TestNPYRoundTrip(t *testing.T) {
	for _, k := range testKinds {
		for _, shape := range testShapes {
			t.Run(fmt.Sprintf("%s%v", k.name, shape), func(t *testing.T) {
				want := dense(shape, k.make(prod(shape)))
				var buf bytes.Buffer
				if err := WriteNPY(&buf, want); err != nil {
					t.Fatal(err)
				}
				if buf.Len()%64 != (prod(shape)*elemSize(want))%64 {
					t.Errorf("data does not start on a 64-byte boundary: file is %d bytes", buf.Len())
				}
				got, err := ReadNPY(&buf)
				if err != nil {
					t.Fatal(err)
				}
				if d := sameTensor(want, got); d != "" {
					t.Error(d)
				}
				if buf.Len() != 0 {
					t.Errorf("%d bytes left unread", buf.Len())
				}
			})
		}
	}
}

func elemSize(t *tensor.Dense) int { return int(t.Dtype().Size()) }

// TestNPYScalarIsShapeless checks the documented representation of 0-d
// arrays: Shape{} with Data() returning the element.
func TestNPYScalarIsShapeless(t *testing.T) {
	got, err := ReadFile("testdata/numpy/scalar_f8.npy")
	if err != nil {
		t.Fatal(err)
	}
	if !got.IsScalar() || got.Dims() != 0 || len(got.Shape()) != 0 {
		t.Errorf("shape %v, dims %d: want a scalar", got.Shape(), got.Dims())
	}
	if v, ok := got.Data().(float64); !ok || v != 3.25 {
		t.Errorf("Data() = %#v, want float64(3.25)", got.Data())
	}
	// A scalar made with FromScalar writes the same bytes.
	var a, b bytes.Buffer
	if err := WriteNPY(&a, tensor.New(tensor.FromScalar(3.25))); err != nil {
		t.Fatal(err)
	}
	if err := WriteNPY(&b, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Errorf("FromScalar and the read scalar write different bytes")
	}
}

// TestNPYHeaderBytes compares the writer with headers assembled by hand
// the way NumPy 1.24 writes them: magic, version 1.0, a little-endian
// uint16 header length, the dict, 21 minus the digits of the first
// dimension spaces of growth room, then spaces and a newline to a multiple
// of 64 bytes.
func TestNPYHeaderBytes(t *testing.T) {
	tests := []struct {
		name string
		t    *tensor.Dense
		want string
	}{
		{
			name: "f4_2x3",
			t:    dense([]int{2, 3}, []float32{0, 1, 2, 3, 4, 5}),
			want: "\x93NUMPY\x01\x00" + "\x76\x00" + // 118
				"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }" + // 59 bytes
				strings.Repeat(" ", 20) + // growth room: 21 - len("2")
				strings.Repeat(" ", 38) + "\n" + // 10 + 59 + 20 + 38 + 1 = 128
				"\x00\x00\x00\x00" + "\x00\x00\x80\x3f" + "\x00\x00\x00\x40" +
				"\x00\x00\x40\x40" + "\x00\x00\x80\x40" + "\x00\x00\xa0\x40",
		},
		{
			name: "f8_scalar",
			t:    tensor.New(tensor.FromScalar(3.25)),
			want: "\x93NUMPY\x01\x00" + "\x76\x00" +
				"{'descr': '<f8', 'fortran_order': False, 'shape': (), }" + // 55 bytes, no growth room
				strings.Repeat(" ", 62) + "\n" +
				"\x00\x00\x00\x00\x00\x00\x0a\x40",
		},
		{
			name: "b1_3",
			t:    dense([]int{3}, []bool{true, false, true}),
			want: "\x93NUMPY\x01\x00" + "\x76\x00" +
				"{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }" + // 57 bytes
				strings.Repeat(" ", 20+40) + "\n" +
				"\x01\x00\x01",
		},
		{
			name: "i8_12345x1",
			t:    dense([]int{12345, 1}, make([]int64, 12345)),
			want: "\x93NUMPY\x01\x00" + "\x76\x00" +
				"{'descr': '<i8', 'fortran_order': False, 'shape': (12345, 1), }" + // 63 bytes
				strings.Repeat(" ", 16+38) + "\n" +
				strings.Repeat("\x00", 12345*8),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := WriteNPY(&buf, tt.t); err != nil {
				t.Fatal(err)
			}
			if got := buf.String(); got != tt.want {
				n := min(len(got), len(tt.want), 160)
				t.Errorf("WriteNPY wrote\n%q\nwant\n%q", got[:n], tt.want[:n])
			}
		})
	}
}

// TestNPYHeaderVersion2 checks the switch to version 2.0 when the header
// length does not fit 16 bits; gorgonia cannot hold that many dimensions,
// so the header builder is tested directly.
func TestNPYHeaderVersion2(t *testing.T) {
	shape := make([]int, 30000)
	for i := range shape {
		shape[i] = 1
	}
	h := npyHeaderBytes(kindF32, shape)
	if h[6] != 2 || len(h)%64 != 0 || h[len(h)-1] != '\n' {
		t.Fatalf("header starts %q, is %d bytes: want version 2.0 padded to 64", h[:12], len(h))
	}
	if n := binary.LittleEndian.Uint32(h[8:12]); int(n) != len(h)-12 {
		t.Errorf("header length field %d, want %d", n, len(h)-12)
	}
	got, err := readNPYHeader(bytes.NewReader(h))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.shape) != len(shape) || got.kind != kindF32 || got.size != int64(len(h)) {
		t.Errorf("read back %d dims of %v, header size %d", len(got.shape), got.kind, got.size)
	}
}

// numpyFixture describes a file in testdata/numpy written by NumPy (see
// gen.py there).
type numpyFixture struct {
	file string
	want *tensor.Dense
	// exact: WriteNPY of the tensor reproduces the file byte for byte.
	exact bool
}

func numpyFixtures() []numpyFixture {
	f4 := func() *tensor.Dense { return dense([]int{2, 3}, []float32{0, 1.5, 3, 4.5, 6, 7.5}) }
	f8 := func() *tensor.Dense { return dense([]int{3}, []float64{0.1, -2.5, 1e300}) }
	i4 := func() *tensor.Dense { return dense([]int{2, 2, 2}, []int32{-4, -3, -2, -1, 0, 1, 2, 3}) }
	i8 := func() *tensor.Dense { return dense([]int{4}, []int64{-(1 << 62), -1, 0, 1 << 62}) }
	i4f := make([]int32, 24)
	for i := range i4f {
		i4f[i] = int32(i)
	}
	return []numpyFixture{
		{"f4_2x3.npy", f4(), true},
		{"f8_3.npy", f8(), true},
		{"i4_2x2x2.npy", i4(), true},
		{"i8_4.npy", i8(), true},
		{"b1_5.npy", dense([]int{5}, []bool{true, false, true, true, false}), true},
		{"f4_1.npy", dense([]int{1}, []float32{7}), true},
		{"i8_1x1.npy", dense([]int{1, 1}, []int64{42}), true},
		{"scalar_f8.npy", tensor.New(tensor.FromScalar(3.25)), true},
		{"scalar_b1.npy", tensor.New(tensor.FromScalar(true)), true},
		{"be_f4_2x3.npy", f4(), false},
		{"be_f8_3.npy", f8(), false},
		{"be_i4_2x2x2.npy", i4(), false},
		{"be_i8_4.npy", i8(), false},
		{"fortran_f4_2x3.npy", f4(), false},
		{"fortran_i4_2x3x4.npy", dense([]int{2, 3, 4}, i4f), false},
		{"v2_f4_2x3.npy", f4(), false},
		{"v3_f4_2x3.npy", f4(), false},
	}
}

func TestNPYNumpyFixtures(t *testing.T) {
	for _, fx := range numpyFixtures() {
		t.Run(fx.file, func(t *testing.T) {
			path := filepath.Join("testdata", "numpy", fx.file)
			got, err := ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if d := sameTensor(fx.want, got); d != "" {
				t.Fatal(d)
			}
			if !fx.exact {
				return
			}
			file, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if err := WriteNPY(&buf, got); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf.Bytes(), file) {
				t.Errorf("WriteNPY differs from NumPy's file:\n got %q\nwant %q", buf.Bytes(), file)
			}
		})
	}
}

func TestNPYUnsupportedNumpyFiles(t *testing.T) {
	tests := []struct {
		file string
		want []string
	}{
		{"empty_f4_0x3.npy", []string{"empty_f4_0x3.npy: ", "shape (0, 3)", "zero-length dimension"}},
		{"f2_2.npy", []string{"f2_2.npy: ", "unsupported dtype \"<f2\"", "want one of '<f4'"}},
		{"u1_2.npy", []string{"u1_2.npy: ", "unsupported dtype \"|u1\""}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			_, err := ReadFile(filepath.Join("testdata", "numpy", tt.file))
			wantErr(t, err, tt.want...)
		})
	}
}

// npyBytes assembles a version 1.0 file from a header dict and data.
func npyBytes(dict string, data []byte) []byte {
	h := []byte(npyMagic + "\x01\x00")
	h = binary.LittleEndian.AppendUint16(h, uint16(len(dict)+1))
	h = append(h, dict...)
	h = append(h, '\n')
	return append(h, data...)
}

func npyDict(descr, fortran, shape string) string {
	return fmt.Sprintf("{'descr': %s, 'fortran_order': %s, 'shape': %s, }", descr, fortran, shape)
}

func TestReadNPYMalformed(t *testing.T) {
	f4x6 := make([]byte, 24)
	tests := []struct {
		name string
		in   []byte
		want []string
	}{
		{"empty", nil, []string{"bad magic", `want "\x93NUMPY", found ""`}},
		{"zip magic", []byte("PK\x03\x04\x14\x00\x00\x00"), []string{"bad magic", `found "PK\x03\x04\x14\x00"`}},
		{"short magic", []byte("\x93NUM"), []string{"truncated header", "found 4"}},
		{"version 4", []byte(npyMagic + "\x04\x00\x10\x00"), []string{"unsupported format version 4.0", "want 1.0, 2.0 or 3.0"}},
		{"version 1.1", []byte(npyMagic + "\x01\x01\x10\x00"), []string{"unsupported format version 1.1"}},
		{"no header length", []byte(npyMagic + "\x01\x00\x10"), []string{"truncated header", "want at least 10 bytes, found 9"}},
		{"no v2 header length", []byte(npyMagic + "\x02\x00\x10\x00"), []string{"truncated header", "want at least 12 bytes, found 10"}},
		{"short header", []byte(npyMagic + "\x01\x00\xc8\x00{'descr'"), []string{"truncated header", "says 200 bytes, found 8"}},
		{"huge header", []byte(npyMagic + "\x02\x00\xff\xff\xff\xff{"), []string{"header length 4294967295 is over the limit"}},
		{"not a dict", npyBytes("[1, 2]", nil), []string{"header is not a dict"}},
		{"unclosed", npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3}", nil), []string{"malformed header", "want ',' or ')'"}},
		{"name", npyBytes("{'descr': float32}", nil), []string{"malformed header", `found name "float32"`}},
		{"missing shape", npyBytes("{'descr': '<f4', 'fortran_order': False}", nil), []string{`header lacks key "shape"`}},
		{"extra key", npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (), 'x': 1}", nil), []string{`header has key "x"`}},
		{"duplicate key", npyBytes("{'descr': '<f4', 'descr': '<f4'}", nil), []string{`key "descr" appears twice`}},
		{"f2", npyBytes(npyDict("'<f2'", "False", "(2,)"), f4x6), []string{`unsupported dtype "<f2"`}},
		{"native f4", npyBytes(npyDict("'=f4'", "False", "(2,)"), f4x6), []string{`unsupported dtype "=f4"`}},
		{"structured", npyBytes(npyDict("[('a', '<f4')]", "False", "(2,)"), f4x6), []string{"unsupported dtype [('a', '<f4')]"}},
		{"fortran not bool", npyBytes(npyDict("'<f4'", "1", "(2,)"), f4x6), []string{"'fortran_order' is 1: want True or False"}},
		{"shape list", npyBytes(npyDict("'<f4'", "False", "[2, 3]"), f4x6), []string{"'shape' is [2, 3]: want a tuple"}},
		{"shape string", npyBytes(npyDict("'<f4'", "False", "('2',)"), f4x6), []string{"'shape' is ('2',): want a tuple of integers"}},
		{"negative", npyBytes(npyDict("'<f4'", "False", "(-1, 3)"), f4x6), []string{"shape (-1, 3) has a negative dimension"}},
		{"zero", npyBytes(npyDict("'<f4'", "False", "(0, 3)"), nil), []string{"shape (0, 3)", "zero-length dimension"}},
		{"count overflow", npyBytes(npyDict("'<f4'", "False", "(4294967296, 4294967296)"), f4x6), []string{"shape (4294967296, 4294967296) has more than 2^63 elements"}},
		{"size overflow", npyBytes(npyDict("'<f8'", "False", "(2305843009213693952,)"), f4x6), []string{"overflows a 63-bit size"}},
		{"int overflow", npyBytes(npyDict("'<f4'", "False", "(99999999999999999999,)"), f4x6), []string{"integer too large"}},
		{"truncated data", npyBytes(npyDict("'<f4'", "False", "(2, 3)"), f4x6[:10]), []string{"truncated data: shape (2, 3) of '<f4' needs 24 bytes, found 10"}},
		{"truncated big-endian", npyBytes(npyDict("'>i8'", "False", "(4,)"), f4x6), []string{"shape (4,) of '>i8' needs 32 bytes, found 24"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// bytes.Reader tells ReadNPY its length; onlyReader hides it,
			// which takes the path that reads data as it comes.
			for _, r := range []io.Reader{bytes.NewReader(tt.in), onlyReader{bytes.NewReader(tt.in)}} {
				got, err := ReadNPY(r)
				if err == nil {
					t.Fatalf("got %v, want an error", got)
				}
				wantErr(t, err, tt.want...)
			}
		})
	}
}

// onlyReader hides every method but Read.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

// TestReadNPYHugeShapeLittleData checks that a header declaring 8 TB with
// a few bytes of data is refused without allocating the declared size.
func TestReadNPYHugeShapeLittleData(t *testing.T) {
	in := npyBytes(npyDict("'<f8'", "False", "(1099511627776,)"), make([]byte, 100))
	for _, r := range []func() io.Reader{
		func() io.Reader { return bytes.NewReader(in) },
		func() io.Reader { return onlyReader{bytes.NewReader(in)} },
	} {
		var err error
		n := allocatedDuring(func() { _, err = ReadNPY(r()) })
		wantErr(t, err, "truncated data", "needs 8796093022208 bytes, found 100")
		if n > 1<<20 {
			t.Errorf("allocated %d bytes for a file of %d", n, len(in))
		}
	}
	path := filepath.Join(t.TempDir(), "huge.npy")
	if err := os.WriteFile(path, in, 0o666); err != nil {
		t.Fatal(err)
	}
	var err error
	n := allocatedDuring(func() { _, err = ReadFile(path) })
	wantErr(t, err, path+": truncated data")
	if n > 1<<20 {
		t.Errorf("ReadFile allocated %d bytes for a file of %d", n, len(in))
	}
}

func TestReadNPYAcceptsVariants(t *testing.T) {
	one := []byte{0, 0, 0x80, 0x3f} // float32 1 little-endian
	tests := []struct {
		name string
		in   []byte
		want *tensor.Dense
	}{
		{"python2 longs", npyBytes(npyDict("'<f4'", "False", "(1L, 1L)"), one), dense([]int{1, 1}, []float32{1})},
		{"double quotes", npyBytes(`{"descr": "<f4", "fortran_order": False, "shape": (1,)}`, one), dense([]int{1}, []float32{1})},
		{"key order", npyBytes("{'shape': (), 'fortran_order': False, 'descr': '<f4'}", one), tensor.New(tensor.FromScalar(float32(1)))},
		{"no growth room", npyBytes("{'descr':'<f4','fortran_order':False,'shape':(1,)}", one), dense([]int{1}, []float32{1})},
		{"bool descr <b1", npyBytes(npyDict("'<b1'", "False", "(2,)"), []byte{0, 7}), dense([]int{2}, []bool{false, true})},
		{"fortran 1-d", npyBytes(npyDict("'<f4'", "True", "(1,)"), one), dense([]int{1}, []float32{1})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadNPY(bytes.NewReader(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if d := sameTensor(tt.want, got); d != "" {
				t.Error(d)
			}
		})
	}
}

// TestReadNPYStream reads two arrays saved one after the other.
func TestReadNPYStream(t *testing.T) {
	a := dense([]int{2}, []int32{1, 2})
	b := dense([]int{3}, []float64{1, 2, 3})
	var buf bytes.Buffer
	for _, x := range []*tensor.Dense{a, b} {
		if err := WriteNPY(&buf, x); err != nil {
			t.Fatal(err)
		}
	}
	r := onlyReader{&buf}
	for _, want := range []*tensor.Dense{a, b} {
		got, err := ReadNPY(r)
		if err != nil {
			t.Fatal(err)
		}
		if d := sameTensor(want, got); d != "" {
			t.Error(d)
		}
	}
}

func TestWriteNPYViews(t *testing.T) {
	// A transposed tensor is written in its logical C order.
	tr := dense([]int{2, 3}, []float32{1, 2, 3, 4, 5, 6})
	if err := tr.T(); err != nil {
		t.Fatal(err)
	}
	// A column slice is a non-contiguous view.
	base := dense([]int{2, 3}, []int64{1, 2, 3, 4, 5, 6})
	col, err := base.Slice(nil, tensor.S(1))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		in   *tensor.Dense
		want *tensor.Dense
	}{
		{"transposed", tr, dense([]int{3, 2}, []float32{1, 4, 2, 5, 3, 6})},
		{"column", col.(*tensor.Dense), dense([]int{2}, []int64{2, 5})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := WriteNPY(&buf, tt.in); err != nil {
				t.Fatal(err)
			}
			got, err := ReadNPY(&buf)
			if err != nil {
				t.Fatal(err)
			}
			if d := sameTensor(tt.want, got); d != "" {
				t.Error(d)
			}
		})
	}
}

func TestWriteNPYRefuses(t *testing.T) {
	var buf bytes.Buffer
	wantErr(t, WriteNPY(&buf, nil), "write .npy: nil tensor")
	u8 := tensor.New(tensor.WithShape(2), tensor.WithBacking([]uint8{1, 2}))
	wantErr(t, WriteNPY(&buf, u8), "unsupported dtype uint8", "want float32, float64, int32, int64 or bool")
	if buf.Len() != 0 {
		t.Errorf("wrote %d bytes before failing", buf.Len())
	}
}

func TestPyLiteral(t *testing.T) {
	tests := []struct{ in, want string }{
		{"()", "()"},
		{"(3,)", "(3,)"},
		{"(3)", "3"},
		{"( 1 , 2 , )", "(1, 2)"},
		{"[]", "[]"},
		{"-5", "-5"},
		{"-9223372036854775808", "-9223372036854775808"},
		{`'a\'b'`, `'a\'b'`},
		{"{'a': {'b': [None, True]}}", "{'a': {'b': [None, True]}}"},
	}
	for _, tt := range tests {
		v, err := parsePyLiteral([]byte(tt.in))
		if err != nil {
			t.Errorf("%s: %v", tt.in, err)
			continue
		}
		if got := pyRepr(v); got != tt.want {
			t.Errorf("%s: got %s, want %s", tt.in, got, tt.want)
		}
	}
	bad := []string{"", "(", "(1 2)", "{1: 2}", "'abc", "'a\\nb'", "9223372036854775808", "1x", strings.Repeat("(", 100), "{'a' 1}", "() ()"}
	for _, in := range bad {
		if v, err := parsePyLiteral([]byte(in)); err == nil {
			t.Errorf("%q: parsed as %s, want an error", in, pyRepr(v))
		}
	}
}
