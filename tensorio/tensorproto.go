package tensorio

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
	"gorgonia.org/tensor"
)

// Field numbers and data types of onnx.TensorProto (onnx/onnx.proto).
const (
	tpDims         = 1
	tpDataType     = 2
	tpSegment      = 3
	tpFloatData    = 4
	tpInt32Data    = 5
	tpInt64Data    = 7
	tpName         = 8
	tpRawData      = 9
	tpDoubleData   = 10
	tpDataLocation = 14

	onnxFloat  = 1
	onnxInt32  = 6
	onnxInt64  = 7
	onnxBool   = 9
	onnxDouble = 11

	onnxExternal = 1 // DataLocation EXTERNAL
)

// onnxTypeName names an ONNX TensorProto.DataType for error messages.
func onnxTypeName(t uint64) string {
	names := [...]string{"UNDEFINED", "FLOAT", "UINT8", "INT8", "UINT16", "INT16", "INT32", "INT64",
		"STRING", "BOOL", "FLOAT16", "DOUBLE", "UINT32", "UINT64", "COMPLEX64", "COMPLEX128", "BFLOAT16"}
	if t < uint64(len(names)) {
		return names[t]
	}
	return fmt.Sprintf("data type %d", t)
}

// tensorProto holds the fields of a TensorProto this package reads.
type tensorProto struct {
	dims      []int64
	dataType  uint64
	name      string
	raw       []byte
	hasRaw    bool
	floats    []float32
	doubles   []float64
	int32s    []int32 // also BOOL values
	int64s    []int64
	location  uint64
	segment   bool
	typedData string // the name of the first typed data field seen
	conflict  string // the name of another typed data field seen
}

// ReadTensorProto reads a serialized ONNX TensorProto, as in the
// input_N.pb and output_N.pb files of ONNX's test data, and returns the
// tensor and its name. Data types FLOAT, DOUBLE, INT32, INT64 and BOOL are
// supported, from raw_data (little-endian) or from the typed fields
// float_data, double_data, int32_data (INT32 and BOOL) and int64_data,
// packed or not. A TensorProto without dims is a scalar.
func ReadTensorProto(r io.Reader) (*tensor.Dense, string, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, "", fmt.Errorf("read TensorProto: %w", err)
	}
	tp, err := parseTensorProto(b)
	if err != nil {
		return nil, "", fmt.Errorf("read TensorProto: %w", err)
	}
	t, err := tp.dense()
	if err != nil {
		if tp.name != "" {
			return nil, tp.name, fmt.Errorf("read TensorProto %q: %w", tp.name, err)
		}
		return nil, "", fmt.Errorf("read TensorProto: %w", err)
	}
	return t, tp.name, nil
}

func parseTensorProto(b []byte) (*tensorProto, error) {
	tp := &tensorProto{}
	off := 0
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, fmt.Errorf("byte %d: malformed field tag: %w", off, protowire.ParseError(n))
		}
		at := off
		b, off = b[n:], off+n
		var err error
		switch num {
		case tpDims:
			n, err = consumeRepeated(b, typ, protowire.VarintType, "dims", func(b []byte) int {
				v, n := protowire.ConsumeVarint(b)
				tp.dims = append(tp.dims, int64(v))
				return n
			})
		case tpDataType:
			n, err = consumeScalar(b, typ, "data_type", &tp.dataType)
		case tpDataLocation:
			n, err = consumeScalar(b, typ, "data_location", &tp.location)
		case tpFloatData:
			tp.typed("float_data")
			n, err = consumeRepeated(b, typ, protowire.Fixed32Type, "float_data", func(b []byte) int {
				v, n := protowire.ConsumeFixed32(b)
				tp.floats = append(tp.floats, math.Float32frombits(v))
				return n
			})
		case tpDoubleData:
			tp.typed("double_data")
			n, err = consumeRepeated(b, typ, protowire.Fixed64Type, "double_data", func(b []byte) int {
				v, n := protowire.ConsumeFixed64(b)
				tp.doubles = append(tp.doubles, math.Float64frombits(v))
				return n
			})
		case tpInt32Data:
			tp.typed("int32_data")
			n, err = consumeRepeated(b, typ, protowire.VarintType, "int32_data", func(b []byte) int {
				v, n := protowire.ConsumeVarint(b)
				tp.int32s = append(tp.int32s, int32(v))
				return n
			})
		case tpInt64Data:
			tp.typed("int64_data")
			n, err = consumeRepeated(b, typ, protowire.VarintType, "int64_data", func(b []byte) int {
				v, n := protowire.ConsumeVarint(b)
				tp.int64s = append(tp.int64s, int64(v))
				return n
			})
		case tpName, tpRawData:
			if typ != protowire.BytesType {
				return nil, fmt.Errorf("byte %d: field %d has wire type %d, want bytes (2)", at, num, typ)
			}
			var v []byte
			v, n = protowire.ConsumeBytes(b)
			if num == tpName {
				tp.name = string(v)
			} else {
				tp.raw, tp.hasRaw = v, true
			}
		default:
			tp.segment = tp.segment || num == tpSegment
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if err != nil {
			return nil, fmt.Errorf("byte %d: %w", at, err)
		}
		if n < 0 {
			return nil, fmt.Errorf("byte %d: malformed field %d: %w", at, num, protowire.ParseError(n))
		}
		b, off = b[n:], off+n
	}
	return tp, nil
}

// typed records that a typed data field was seen.
func (tp *tensorProto) typed(field string) {
	switch tp.typedData {
	case "":
		tp.typedData = field
	case field:
	default:
		tp.conflict = field
	}
}

// consumeScalar decodes a varint field into v.
func consumeScalar(b []byte, typ protowire.Type, field string, v *uint64) (int, error) {
	if typ != protowire.VarintType {
		return 0, fmt.Errorf("%s has wire type %d, want varint (0)", field, typ)
	}
	var n int
	*v, n = protowire.ConsumeVarint(b)
	return n, nil
}

// consumeRepeated decodes one occurrence of a repeated scalar field,
// either a single element of wire type elem or a packed run of them; each
// decodes one element and returns its length or a negative protowire
// error.
func consumeRepeated(b []byte, typ, elem protowire.Type, field string, each func([]byte) int) (int, error) {
	switch typ {
	case elem:
		return each(b), nil
	case protowire.BytesType:
		packed, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return n, nil
		}
		for len(packed) > 0 {
			m := each(packed)
			if m < 0 {
				return 0, fmt.Errorf("packed %s: %w", field, protowire.ParseError(m))
			}
			packed = packed[m:]
		}
		return n, nil
	}
	return 0, fmt.Errorf("%s has wire type %d, want %d or packed (2)", field, typ, elem)
}

// dense checks the fields against each other and builds the tensor.
func (tp *tensorProto) dense() (*tensor.Dense, error) {
	if tp.segment {
		// Field 3 of ONNX's SequenceProto, OptionalProto and MapProto holds
		// their values, and their field 1, the name, reads as packed dims.
		return nil, fmt.Errorf("segmented tensors (field 3) are not supported; is this a SequenceProto, OptionalProto or MapProto rather than a TensorProto?")
	}
	if tp.location == onnxExternal {
		return nil, fmt.Errorf("data is stored externally (data_location EXTERNAL): want it in the file")
	}
	var k kind
	var typed string
	var count int
	switch tp.dataType {
	case onnxFloat:
		k, typed, count = kindF32, "float_data", len(tp.floats)
	case onnxDouble:
		k, typed, count = kindF64, "double_data", len(tp.doubles)
	case onnxInt32:
		k, typed, count = kindI32, "int32_data", len(tp.int32s)
	case onnxInt64:
		k, typed, count = kindI64, "int64_data", len(tp.int64s)
	case onnxBool:
		k, typed, count = kindBool, "int32_data", len(tp.int32s)
	default:
		return nil, fmt.Errorf("unsupported data_type %s: want FLOAT, DOUBLE, INT32, INT64 or BOOL", onnxTypeName(tp.dataType))
	}
	if tp.conflict != "" {
		return nil, fmt.Errorf("both %s and %s are set: want one", tp.typedData, tp.conflict)
	}
	if tp.typedData != "" && tp.typedData != typed {
		return nil, fmt.Errorf("%s given for data_type %s: want %s or raw_data", tp.typedData, onnxTypeName(tp.dataType), typed)
	}
	dims, n, nbytes, err := checkShape(tp.dims, k.size())
	if err != nil {
		return nil, err
	}
	var data any
	switch {
	case tp.hasRaw && tp.typedData != "":
		return nil, fmt.Errorf("both raw_data and %s are set: want one", tp.typedData)
	case tp.hasRaw:
		if int64(len(tp.raw)) != nbytes {
			return nil, fmt.Errorf("dims %s of %s need %d bytes of raw_data, found %d",
				formatShape(tp.dims), onnxTypeName(tp.dataType), nbytes, len(tp.raw))
		}
		data, err = readData(bytes.NewReader(tp.raw), k, binary.LittleEndian, n, true)
		if err != nil {
			return nil, err
		}
	default:
		if count != n {
			return nil, fmt.Errorf("dims %s of %s need %d values, %s has %d",
				formatShape(tp.dims), onnxTypeName(tp.dataType), n, typed, count)
		}
		switch k {
		case kindF32:
			data = tp.floats
		case kindF64:
			data = tp.doubles
		case kindI32:
			data = tp.int32s
		case kindI64:
			data = tp.int64s
		case kindBool:
			bs := make([]bool, n)
			for i, v := range tp.int32s {
				bs[i] = v != 0
			}
			data = bs
		}
	}
	return newDense(dims, data), nil
}
