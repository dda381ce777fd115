package tensorio

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"gorgonia.org/tensor"
)

// tp builds TensorProto bytes field by field.
type tp []byte

func (b tp) varint(num protowire.Number, vs ...uint64) tp {
	for _, v := range vs {
		b = protowire.AppendTag(b, num, protowire.VarintType)
		b = protowire.AppendVarint(b, v)
	}
	return b
}

func (b tp) packedVarint(num protowire.Number, vs ...uint64) tp {
	var p []byte
	for _, v := range vs {
		p = protowire.AppendVarint(p, v)
	}
	return b.bytes(num, p)
}

func (b tp) bytes(num protowire.Number, v []byte) tp {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func (b tp) floats(packed bool, vs ...float32) tp {
	if packed {
		var p []byte
		for _, v := range vs {
			p = protowire.AppendFixed32(p, math.Float32bits(v))
		}
		return b.bytes(tpFloatData, p)
	}
	for _, v := range vs {
		b = protowire.AppendTag(b, tpFloatData, protowire.Fixed32Type)
		b = protowire.AppendFixed32(b, math.Float32bits(v))
	}
	return b
}

func (b tp) doubles(packed bool, vs ...float64) tp {
	if packed {
		var p []byte
		for _, v := range vs {
			p = protowire.AppendFixed64(p, math.Float64bits(v))
		}
		return b.bytes(tpDoubleData, p)
	}
	for _, v := range vs {
		b = protowire.AppendTag(b, tpDoubleData, protowire.Fixed64Type)
		b = protowire.AppendFixed64(b, math.Float64bits(v))
	}
	return b
}

// neg is the varint encoding of a negative int64, as protobuf writes
// negative int32 and int64 values.
func neg(v int64) uint64 { return uint64(v) }

func TestReadTensorProto(t *testing.T) {
	rawF32 := binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(nil, math.Float32bits(1.5)), math.Float32bits(-2))
	tests := []struct {
		name     string
		in       tp
		want     *tensor.Dense
		wantName string
	}{
		{"float raw", tp{}.varint(tpDims, 1, 2).varint(tpDataType, onnxFloat).bytes(tpName, []byte("x")).bytes(tpRawData, rawF32),
			dense([]int{1, 2}, []float32{1.5, -2}), "x"},
		{"float packed", tp{}.packedVarint(tpDims, 2, 1).varint(tpDataType, onnxFloat).floats(true, 1.5, -2),
			dense([]int{2, 1}, []float32{1.5, -2}), ""},
		{"float unpacked", tp{}.varint(tpDims, 2).floats(false, 1.5, -2).varint(tpDataType, onnxFloat),
			dense([]int{2}, []float32{1.5, -2}), ""},
		{"double", tp{}.varint(tpDims, 3).varint(tpDataType, onnxDouble).doubles(true, 0.1, 1e300).doubles(false, -3),
			dense([]int{3}, []float64{0.1, 1e300, -3}), ""},
		{"int32", tp{}.varint(tpDims, 2, 2).varint(tpDataType, onnxInt32).packedVarint(tpInt32Data, neg(-1), 2).varint(tpInt32Data, neg(math.MinInt32), math.MaxInt32),
			dense([]int{2, 2}, []int32{-1, 2, math.MinInt32, math.MaxInt32}), ""},
		{"int64", tp{}.varint(tpDims, 3).varint(tpDataType, onnxInt64).varint(tpInt64Data, neg(math.MinInt64)).packedVarint(tpInt64Data, 0, math.MaxInt64),
			dense([]int{3}, []int64{math.MinInt64, 0, math.MaxInt64}), ""},
		{"int64 raw", tp{}.varint(tpDims, 1).varint(tpDataType, onnxInt64).bytes(tpRawData, []byte{0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}),
			dense([]int{1}, []int64{-2}), ""},
		{"bool int32_data", tp{}.varint(tpDims, 3).varint(tpDataType, onnxBool).packedVarint(tpInt32Data, 1, 0, 1),
			dense([]int{3}, []bool{true, false, true}), ""},
		{"bool raw", tp{}.varint(tpDims, 2).varint(tpDataType, onnxBool).bytes(tpRawData, []byte{0, 1}),
			dense([]int{2}, []bool{false, true}), ""},
		{"scalar", tp{}.varint(tpDataType, onnxFloat).floats(false, 4),
			tensor.New(tensor.FromScalar(float32(4))), ""},
		{"unknown fields skipped", tp{}.bytes(12, []byte("doc")).varint(tpDims, 1).varint(tpDataType, onnxInt32).varint(tpInt32Data, 7).
			bytes(16, []byte{1, 2}).varint(99, 5),
			dense([]int{1}, []int32{7}), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, name, err := ReadTensorProto(bytes.NewReader(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if name != tt.wantName {
				t.Errorf("name %q, want %q", name, tt.wantName)
			}
			if d := sameTensor(tt.want, got); d != "" {
				t.Error(d)
			}
		})
	}
}

func TestReadTensorProtoMalformed(t *testing.T) {
	f := func() tp { return tp{}.varint(tpDims, 2).varint(tpDataType, onnxFloat) }
	tests := []struct {
		name string
		in   tp
		want []string
	}{
		{"float16", tp{}.varint(tpDims, 1).varint(tpDataType, 10).varint(tpInt32Data, 1), []string{"unsupported data_type FLOAT16: want FLOAT, DOUBLE, INT32, INT64 or BOOL"}},
		{"no type", tp{}.varint(tpDims, 1).floats(false, 1), []string{"unsupported data_type UNDEFINED"}},
		{"type 99", tp{}.varint(tpDataType, 99), []string{"unsupported data_type data type 99"}},
		{"too few", f().floats(false, 1), []string{"dims (2,) of FLOAT need 2 values, float_data has 1"}},
		{"no data", f(), []string{"dims (2,) of FLOAT need 2 values, float_data has 0"}},
		{"raw size", f().bytes(tpRawData, make([]byte, 7)), []string{"dims (2,) of FLOAT need 8 bytes of raw_data, found 7"}},
		{"raw and typed", f().bytes(tpRawData, make([]byte, 8)).floats(false, 1, 2), []string{"both raw_data and float_data are set"}},
		{"wrong typed field", f().packedVarint(tpInt64Data, 1, 2), []string{"int64_data given for data_type FLOAT: want float_data or raw_data"}},
		{"two typed fields", f().floats(false, 1, 2).packedVarint(tpInt32Data, 1, 2), []string{"both float_data and int32_data are set"}},
		{"external", f().varint(tpDataLocation, onnxExternal), []string{"data_location EXTERNAL"}},
		{"negative dim", tp{}.varint(tpDims, neg(-1)).varint(tpDataType, onnxFloat), []string{"shape (-1,) has a negative dimension"}},
		{"zero dim", tp{}.varint(tpDims, 0, 3).varint(tpDataType, onnxFloat), []string{"zero-length dimension"}},
		{"overflow", tp{}.varint(tpDims, 1<<40, 1<<40).varint(tpDataType, onnxFloat), []string{"more than 2^63 elements"}},
		{"huge dims", tp{}.varint(tpDims, 1<<40).varint(tpDataType, onnxDouble).doubles(true, 1), []string{"dims (1099511627776,) of DOUBLE need 1099511627776 values, double_data has 1"}},
		{"huge dims raw", tp{}.varint(tpDims, 1<<40).varint(tpDataType, onnxDouble).bytes(tpRawData, make([]byte, 8)), []string{"need 8796093022208 bytes of raw_data, found 8"}},
		{"truncated tag", tp{0x80}, []string{"byte 0: malformed field tag"}},
		{"truncated varint", tp{}.varint(tpDims, 2)[:2].varint(tpDims, 300)[:3], []string{"malformed field 1"}},
		{"truncated bytes", tp{}.bytes(tpRawData, make([]byte, 10))[:5], []string{"byte 0: malformed field 9", "unexpected EOF"}},
		{"wrong wire type", tp{}.bytes(tpDataType, []byte{1}), []string{"data_type has wire type 2, want varint (0)"}},
		{"name as varint", tp{}.varint(tpName, 1), []string{"field 8 has wire type 0, want bytes (2)"}},
		{"bad packed", tp{}.bytes(tpFloatData, []byte{1, 2, 3}), []string{"packed float_data"}},
		{"fixed dims", protowire.AppendFixed32(protowire.AppendTag(nil, tpDims, protowire.Fixed32Type), 1), []string{"dims has wire type 5, want 0 or packed (2)"}},
		{"sequence", tp{}.bytes(1, []byte("seq")).varint(2, 1).bytes(3, tp{}.varint(tpDataType, onnxFloat)), []string{"is this a SequenceProto"}},
		{"named error", tp{}.bytes(tpName, []byte("input")).varint(tpDataType, 8), []string{`read TensorProto "input": unsupported data_type STRING`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			n := allocatedDuring(func() { _, _, err = ReadTensorProto(bytes.NewReader(tt.in)) })
			wantErr(t, err, tt.want...)
			if n > 1<<20 {
				t.Errorf("allocated %d bytes for %d bytes of input", n, len(tt.in))
			}
		})
	}
}

func TestReadFilePB(t *testing.T) {
	path := filepath.Join(t.TempDir(), "input_0.pb")
	in := tp{}.varint(tpDims, 2).varint(tpDataType, onnxInt64).packedVarint(tpInt64Data, 5, 6)
	if err := os.WriteFile(path, in, 0o666); err != nil {
		t.Fatal(err)
	}
	got, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if d := sameTensor(dense([]int{2}, []int64{5, 6}), got); d != "" {
		t.Error(d)
	}
	if err := os.WriteFile(path, in[:len(in)-1], 0o666); err != nil {
		t.Fatal(err)
	}
	_, err = ReadFile(path)
	wantErr(t, err, path+": read TensorProto: ")
}

const onnxTestData = "/usr/share/libonnx-testdata/data"

// TestReadTensorProtoONNXTestData reads tensors from ONNX's backend test
// data, installed by Debian's libonnx-testdata package, and checks a few
// element-wise ops' outputs against their inputs.
func TestReadTensorProtoONNXTestData(t *testing.T) {
	if _, err := os.Stat(onnxTestData); err != nil {
		t.Skipf("ONNX test data absent (%v): apt-get install libonnx-testdata", err)
	}
	read := func(t *testing.T, test, file string) *tensor.Dense {
		t.Helper()
		path := filepath.Join(onnxTestData, test, "test_data_set_0", file)
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		d, _, err := ReadTensorProto(f)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	ops := []struct {
		test string
		f    func(float32) float32
	}{
		{"node/test_abs", func(x float32) float32 { return float32(math.Abs(float64(x))) }},
		{"node/test_neg", func(x float32) float32 { return -x }},
		{"node/test_relu", func(x float32) float32 { return max(x, 0) }},
	}
	for _, op := range ops {
		t.Run(op.test, func(t *testing.T) {
			in, out := read(t, op.test, "input_0.pb"), read(t, op.test, "output_0.pb")
			if want := []int{3, 4, 5}; !equalInts(in.Shape(), want) || !equalInts(out.Shape(), want) {
				t.Fatalf("shapes %v and %v, want %v", in.Shape(), out.Shape(), want)
			}
			x, y := in.Data().([]float32), out.Data().([]float32)
			for i := range x {
				if op.f(x[i]) != y[i] {
					t.Fatalf("element %d: f(%v) = %v, file says %v", i, x[i], op.f(x[i]), y[i])
				}
			}
		})
	}
	dtypes := []struct {
		test, file string
		dtype      tensor.Dtype
		shape      []int
	}{
		{"pytorch-converted/test_Conv2d", "input_0.pb", tensor.Float32, []int{2, 3, 7, 5}},
		{"node/test_cast_FLOAT_to_DOUBLE", "output_0.pb", tensor.Float64, []int{3, 4}},
		{"node/test_argmax_default_axis_example", "output_0.pb", tensor.Int64, []int{1, 2}},
		{"node/test_not_2d", "output_0.pb", tensor.Bool, []int{3, 4}},
		{"node/test_add_bcast", "input_1.pb", tensor.Float32, []int{5}},
	}
	for _, tt := range dtypes {
		t.Run(tt.test+"/"+tt.file, func(t *testing.T) {
			d := read(t, tt.test, tt.file)
			if d.Dtype() != tt.dtype || !equalInts(d.Shape(), tt.shape) {
				t.Errorf("got %v %v, want %v %v", d.Dtype(), d.Shape(), tt.dtype, tt.shape)
			}
		})
	}
}

// TestReadTensorProtoONNXSweep reads every input and output of ONNX's
// test data. Those of the pytorch-converted and pytorch-operator tests
// must all read; elsewhere a file may fail only for a reason this package
// states: an unsupported data type, a zero-length dimension (which
// gorgonia cannot hold), or a SequenceProto, OptionalProto or MapProto in
// place of a tensor.
func TestReadTensorProtoONNXSweep(t *testing.T) {
	if _, err := os.Stat(onnxTestData); err != nil {
		t.Skipf("ONNX test data absent (%v): apt-get install libonnx-testdata", err)
	}
	if testing.Short() {
		t.Skip("reads 40 MB of test data")
	}
	allowed := []string{"unsupported data_type", "zero-length dimension", "is this a SequenceProto"}
	// An empty SequenceProto has only a name, which reads as packed dims.
	notTensors := map[string]bool{"node/test_loop13_seq/test_data_set_0/input_2.pb": true}
	files, _ := filepath.Glob(filepath.Join(onnxTestData, "*", "*", "test_data_set_*", "*put_*.pb"))
	var ok, refused int
	for _, path := range files {
		_, err := ReadFile(path)
		rel, _ := filepath.Rel(onnxTestData, path)
		switch {
		case err == nil:
			ok++
		case notTensors[rel]:
		case strings.HasPrefix(rel, "pytorch-"):
			t.Errorf("%v", err)
		case slices.ContainsFunc(allowed, func(s string) bool { return strings.Contains(err.Error(), s) }):
			refused++
		default:
			t.Errorf("%v", err)
		}
	}
	t.Logf("read %d tensors of %d files, refused %d", ok, len(files), refused)
	if ok < 1000 {
		t.Errorf("read only %d tensors", ok)
	}
}

func equalInts(a tensor.Shape, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
