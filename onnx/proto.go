package onnx

import (
	"errors"
	"fmt"
	"io"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// This file decodes the parts of ONNX's protobuf messages (onnx/onnx.proto)
// the importer reads, with protowire and the schema's field numbers.
// Unknown fields are skipped, as protobuf requires; a known field with the
// wrong wire type, a truncated field or a malformed tag is an error that
// names the message, the field and the byte offset.

// Field numbers of ModelProto.
const (
	modelIRVersion     = 1
	modelProducerName  = 2
	modelProducerVer   = 3
	modelDomain        = 4
	modelModelVersion  = 5
	modelDocString     = 6
	modelGraph         = 7
	modelOpsetImport   = 8
	modelMetadataProps = 14
	modelTrainingInfo  = 20
	modelFunctions     = 25
)

// Field numbers of OperatorSetIdProto.
const (
	opsetDomain  = 1
	opsetVersion = 2
)

// Field numbers of GraphProto.
const (
	graphNode              = 1
	graphNameField         = 2
	graphInitializer       = 5
	graphDocString         = 10
	graphInput             = 11
	graphOutput            = 12
	graphValueInfo         = 13
	graphSparseInitializer = 15
)

// Field numbers of NodeProto.
const (
	nodeInput     = 1
	nodeOutput    = 2
	nodeName      = 3
	nodeOpType    = 4
	nodeAttribute = 5
	nodeDocString = 6
	nodeDomain    = 7
)

// Field numbers of AttributeProto.
const (
	attrName        = 1
	attrF           = 2
	attrI           = 3
	attrS           = 4
	attrT           = 5
	attrG           = 6
	attrFloats      = 7
	attrInts        = 8
	attrStrings     = 9
	attrTensors     = 10
	attrGraphs      = 11
	attrDocString   = 13
	attrTP          = 14
	attrTypeProtos  = 15
	attrType        = 20
	attrRefAttrName = 21
	attrSparse      = 22
	attrSparses     = 23
)

// AttributeProto.AttributeType values.
const (
	attrTypeUndefined     = 0
	attrTypeFloat         = 1
	attrTypeInt           = 2
	attrTypeString        = 3
	attrTypeTensor        = 4
	attrTypeGraph         = 5
	attrTypeFloats        = 6
	attrTypeInts          = 7
	attrTypeStrings       = 8
	attrTypeTensors       = 9
	attrTypeGraphs        = 10
	attrTypeSparseTensor  = 11
	attrTypeSparseTensors = 12
	attrTypeTypeProto     = 13
	attrTypeTypeProtos    = 14
)

var attrTypeNames = map[uint64]string{
	attrTypeUndefined: "UNDEFINED", attrTypeFloat: "FLOAT", attrTypeInt: "INT", attrTypeString: "STRING",
	attrTypeTensor: "TENSOR", attrTypeGraph: "GRAPH", attrTypeFloats: "FLOATS", attrTypeInts: "INTS",
	attrTypeStrings: "STRINGS", attrTypeTensors: "TENSORS", attrTypeGraphs: "GRAPHS",
	attrTypeSparseTensor: "SPARSE_TENSOR", attrTypeSparseTensors: "SPARSE_TENSORS",
	attrTypeTypeProto: "TYPE_PROTO", attrTypeTypeProtos: "TYPE_PROTOS",
}

// Field numbers of ValueInfoProto, TypeProto, TypeProto.Tensor,
// TensorShapeProto and TensorShapeProto.Dimension.
const (
	valueInfoName = 1
	valueInfoType = 2

	typeTensor   = 1
	typeSequence = 4
	typeMap      = 5
	typeSparse   = 8
	typeOptional = 9

	tensorTypeElem  = 1
	tensorTypeShape = 2

	shapeDim = 1

	dimValue = 1
	dimParam = 2
)

// Field numbers of TensorProto the importer reads itself (tensorio decodes
// the data).
const (
	tensorDims     = 1
	tensorDataType = 2
	tensorName     = 8
)

// TensorProto.DataType values.
const (
	dtUndefined = 0
	dtFloat     = 1
	dtUint8     = 2
	dtInt8      = 3
	dtUint16    = 4
	dtInt16     = 5
	dtInt32     = 6
	dtInt64     = 7
	dtString    = 8
	dtBool      = 9
	dtFloat16   = 10
	dtDouble    = 11
	dtUint32    = 12
	dtUint64    = 13
	dtComplex64 = 14
	dtComplex   = 15
	dtBfloat16  = 16
)

// dataTypeName names a TensorProto.DataType.
func dataTypeName(t int64) string {
	names := [...]string{"UNDEFINED", "FLOAT", "UINT8", "INT8", "UINT16", "INT16", "INT32", "INT64",
		"STRING", "BOOL", "FLOAT16", "DOUBLE", "UINT32", "UINT64", "COMPLEX64", "COMPLEX128", "BFLOAT16"}
	if t >= 0 && t < int64(len(names)) {
		return names[t]
	}
	return fmt.Sprintf("data type %d", t)
}

// modelProto holds the fields of a ModelProto the importer uses.
type modelProto struct {
	irVersion    int64
	producerName string
	producerVer  string
	opsets       []opsetID
	graph        *graphProto
	hasGraph     bool
	functions    int
}

type opsetID struct {
	domain  string
	version int64
}

// graphProto holds a GraphProto.
type graphProto struct {
	name         string
	nodes        []*nodeProto
	initializers []*tensorProto
	inputs       []*valueInfo
	outputs      []*valueInfo
	sparseInits  int
}

// nodeProto holds a NodeProto.
type nodeProto struct {
	index   int // position in the graph
	name    string
	opType  string
	domain  string
	inputs  []string
	outputs []string
	attrs   []*attrProto
}

// attrProto holds an AttributeProto. A graph-valued attribute (If's
// branches, Loop's body) is decoded into g; lists of graphs are kept as
// counts.
type attrProto struct {
	name    string
	typ     uint64
	hasType bool
	f       float32
	i       int64
	s       []byte
	t       *tensorProto
	floats  []float32
	ints    []int64
	strings [][]byte
	tensors []*tensorProto
	g       *graphProto
	graphs  int
	ref     string
	// seen records which value fields were present, for attributes that
	// leave type unset (IR version 1 files).
	seen map[int]bool
}

// tensorProto holds a TensorProto's name, dims and data type, and the
// message's bytes for tensorio to decode.
type tensorProto struct {
	name     string
	dims     []int64
	dataType int64
	raw      []byte
}

// valueInfo holds a ValueInfoProto.
type valueInfo struct {
	name string
	typ  *typeProto
}

// typeProto holds a TypeProto: a tensor type, or the kind of another type.
type typeProto struct {
	kind     string // "tensor", "sequence", "map", "optional", "sparse_tensor" or ""
	elemType int64
	hasShape bool
	dims     []dimProto
}

// dimProto is one TensorShapeProto.Dimension.
type dimProto struct {
	value    int64
	hasValue bool
	param    string
}

// field is one decoded field of a message.
type field struct {
	num protowire.Number
	typ protowire.Type
	u   uint64 // varint, fixed32 and fixed64 values
	b   []byte // bytes values
	off int    // offset of the tag in the message
}

var wireNames = map[protowire.Type]string{
	protowire.VarintType: "varint (0)", protowire.Fixed64Type: "fixed64 (1)", protowire.BytesType: "bytes (2)",
	protowire.StartGroupType: "start group (3)", protowire.EndGroupType: "end group (4)", protowire.Fixed32Type: "fixed32 (5)",
}

func wireName(t protowire.Type) string {
	if s, ok := wireNames[t]; ok {
		return s
	}
	return fmt.Sprintf("wire type %d", t)
}

// fields decodes the fields of the message b, calling each for every one.
// msg names the message in errors.
func fields(b []byte, msg string, each func(f field) error) error {
	off := 0
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("%s: byte %d: malformed field tag: %v", msg, off, protowire.ParseError(n))
		}
		f := field{num: num, typ: typ, off: off}
		b, off = b[n:], off+n
		switch typ {
		case protowire.VarintType:
			f.u, n = protowire.ConsumeVarint(b)
		case protowire.Fixed32Type:
			var v uint32
			v, n = protowire.ConsumeFixed32(b)
			f.u = uint64(v)
		case protowire.Fixed64Type:
			f.u, n = protowire.ConsumeFixed64(b)
		case protowire.BytesType:
			f.b, n = protowire.ConsumeBytes(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			err := protowire.ParseError(n)
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return fmt.Errorf("%s: byte %d: field %d (%s) runs past the end of the data (a truncated file?)", msg, f.off, num, wireName(typ))
			}
			return fmt.Errorf("%s: byte %d: field %d (%s): %v", msg, f.off, num, wireName(typ), err)
		}
		b, off = b[n:], off+n
		if err := each(f); err != nil {
			return err
		}
	}
	return nil
}

// want checks that f has wire type t.
func (f field) want(msg, name string, t protowire.Type) error {
	if f.typ != t {
		return fmt.Errorf("%s: byte %d: field %d (%s) has wire type %s, want %s", msg, f.off, f.num, name, wireName(f.typ), wireName(t))
	}
	return nil
}

func (f field) str(msg, name string, dst *string) error {
	if err := f.want(msg, name, protowire.BytesType); err != nil {
		return err
	}
	*dst = string(f.b)
	return nil
}

func (f field) varint(msg, name string, dst *int64) error {
	if err := f.want(msg, name, protowire.VarintType); err != nil {
		return err
	}
	*dst = int64(f.u)
	return nil
}

func (f field) bytes(msg, name string) ([]byte, error) {
	if err := f.want(msg, name, protowire.BytesType); err != nil {
		return nil, err
	}
	return f.b, nil
}

// varints appends one occurrence of a repeated varint field, packed or not.
func (f field) varints(msg, name string, dst *[]int64) error {
	switch f.typ {
	case protowire.VarintType:
		*dst = append(*dst, int64(f.u))
		return nil
	case protowire.BytesType:
		b := f.b
		for len(b) > 0 {
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return fmt.Errorf("%s: byte %d: packed field %d (%s): %v", msg, f.off, f.num, name, protowire.ParseError(n))
			}
			*dst = append(*dst, int64(v))
			b = b[n:]
		}
		return nil
	}
	return fmt.Errorf("%s: byte %d: field %d (%s) has wire type %s, want varint (0) or packed bytes (2)", msg, f.off, f.num, name, wireName(f.typ))
}

// floats appends one occurrence of a repeated float field, packed or not.
func (f field) floats(msg, name string, dst *[]float32) error {
	switch f.typ {
	case protowire.Fixed32Type:
		*dst = append(*dst, math.Float32frombits(uint32(f.u)))
		return nil
	case protowire.BytesType:
		if len(f.b)%4 != 0 {
			return fmt.Errorf("%s: byte %d: packed field %d (%s) holds %d bytes, not a multiple of 4", msg, f.off, f.num, name, len(f.b))
		}
		for b := f.b; len(b) > 0; b = b[4:] {
			v, _ := protowire.ConsumeFixed32(b)
			*dst = append(*dst, math.Float32frombits(v))
		}
		return nil
	}
	return fmt.Errorf("%s: byte %d: field %d (%s) has wire type %s, want fixed32 (5) or packed bytes (2)", msg, f.off, f.num, name, wireName(f.typ))
}

// decodeModel decodes a ModelProto.
func decodeModel(b []byte) (*modelProto, error) {
	const msg = "ModelProto"
	m := &modelProto{}
	err := fields(b, msg, func(f field) error {
		switch f.num {
		case modelIRVersion:
			return f.varint(msg, "ir_version", &m.irVersion)
		case modelProducerName:
			return f.str(msg, "producer_name", &m.producerName)
		case modelProducerVer:
			return f.str(msg, "producer_version", &m.producerVer)
		case modelDomain, modelDocString:
			_, err := f.bytes(msg, "string")
			return err
		case modelModelVersion:
			var v int64
			return f.varint(msg, "model_version", &v)
		case modelOpsetImport:
			b, err := f.bytes(msg, "opset_import")
			if err != nil {
				return err
			}
			op, err := decodeOpset(b)
			if err != nil {
				return fmt.Errorf("%s.opset_import[%d]: %w", msg, len(m.opsets), err)
			}
			m.opsets = append(m.opsets, op)
		case modelGraph:
			b, err := f.bytes(msg, "graph")
			if err != nil {
				return err
			}
			g, err := decodeGraph(b)
			if err != nil {
				return fmt.Errorf("%s.graph: %w", msg, err)
			}
			if m.hasGraph {
				// A repeated embedded message merges; ONNX writers never
				// split a graph, so refuse rather than guess.
				return fmt.Errorf("%s: byte %d: graph given twice", msg, f.off)
			}
			m.graph, m.hasGraph = g, true
		case modelFunctions:
			if _, err := f.bytes(msg, "functions"); err != nil {
				return err
			}
			m.functions++
		case modelMetadataProps, modelTrainingInfo:
			_, err := f.bytes(msg, "message")
			return err
		}
		return nil
	})
	return m, err
}

func decodeOpset(b []byte) (opsetID, error) {
	const msg = "OperatorSetIdProto"
	var op opsetID
	err := fields(b, msg, func(f field) error {
		switch f.num {
		case opsetDomain:
			return f.str(msg, "domain", &op.domain)
		case opsetVersion:
			return f.varint(msg, "version", &op.version)
		}
		return nil
	})
	return op, err
}

func decodeGraph(b []byte) (*graphProto, error) {
	const msg = "GraphProto"
	g := &graphProto{}
	err := fields(b, msg, func(f field) error {
		switch f.num {
		case graphNode:
			b, err := f.bytes(msg, "node")
			if err != nil {
				return err
			}
			n, err := decodeNode(b)
			if err != nil {
				return fmt.Errorf("%s.node[%d]: %w", msg, len(g.nodes), err)
			}
			n.index = len(g.nodes)
			g.nodes = append(g.nodes, n)
		case graphNameField:
			return f.str(msg, "name", &g.name)
		case graphInitializer:
			b, err := f.bytes(msg, "initializer")
			if err != nil {
				return err
			}
			t, err := decodeTensor(b)
			if err != nil {
				return fmt.Errorf("%s.initializer[%d]: %w", msg, len(g.initializers), err)
			}
			g.initializers = append(g.initializers, t)
		case graphInput, graphOutput:
			name := "input"
			if f.num == graphOutput {
				name = "output"
			}
			b, err := f.bytes(msg, name)
			if err != nil {
				return err
			}
			vi, err := decodeValueInfo(b)
			if err != nil {
				return fmt.Errorf("%s.%s: %w", msg, name, err)
			}
			if f.num == graphInput {
				g.inputs = append(g.inputs, vi)
			} else {
				g.outputs = append(g.outputs, vi)
			}
		case graphValueInfo, graphDocString:
			_, err := f.bytes(msg, "value_info")
			return err
		case graphSparseInitializer:
			if _, err := f.bytes(msg, "sparse_initializer"); err != nil {
				return err
			}
			g.sparseInits++
		}
		return nil
	})
	return g, err
}

func decodeNode(b []byte) (*nodeProto, error) {
	const msg = "NodeProto"
	n := &nodeProto{}
	err := fields(b, msg, func(f field) error {
		switch f.num {
		case nodeInput, nodeOutput:
			var s string
			if err := f.str(msg, "input/output", &s); err != nil {
				return err
			}
			if f.num == nodeInput {
				n.inputs = append(n.inputs, s)
			} else {
				n.outputs = append(n.outputs, s)
			}
		case nodeName:
			return f.str(msg, "name", &n.name)
		case nodeOpType:
			return f.str(msg, "op_type", &n.opType)
		case nodeDomain:
			return f.str(msg, "domain", &n.domain)
		case nodeDocString:
			_, err := f.bytes(msg, "doc_string")
			return err
		case nodeAttribute:
			b, err := f.bytes(msg, "attribute")
			if err != nil {
				return err
			}
			a, err := decodeAttr(b)
			if err != nil {
				return fmt.Errorf("%s.attribute[%d]: %w", msg, len(n.attrs), err)
			}
			n.attrs = append(n.attrs, a)
		}
		return nil
	})
	if err != nil && n.name != "" {
		err = fmt.Errorf("node %q: %w", n.name, err)
	}
	return n, err
}

func decodeAttr(b []byte) (*attrProto, error) {
	const msg = "AttributeProto"
	a := &attrProto{seen: map[int]bool{}}
	err := fields(b, msg, func(f field) error {
		a.seen[int(f.num)] = true
		switch f.num {
		case attrName:
			return f.str(msg, "name", &a.name)
		case attrRefAttrName:
			return f.str(msg, "ref_attr_name", &a.ref)
		case attrType:
			var v int64
			if err := f.varint(msg, "type", &v); err != nil {
				return err
			}
			a.typ, a.hasType = uint64(v), true
		case attrF:
			if err := f.want(msg, "f", protowire.Fixed32Type); err != nil {
				return err
			}
			a.f = math.Float32frombits(uint32(f.u))
		case attrI:
			return f.varint(msg, "i", &a.i)
		case attrS:
			b, err := f.bytes(msg, "s")
			a.s = b
			return err
		case attrT:
			b, err := f.bytes(msg, "t")
			if err != nil {
				return err
			}
			t, err := decodeTensor(b)
			if err != nil {
				return fmt.Errorf("%s.t: %w", msg, err)
			}
			a.t = t
		case attrFloats:
			return f.floats(msg, "floats", &a.floats)
		case attrInts:
			return f.varints(msg, "ints", &a.ints)
		case attrStrings:
			b, err := f.bytes(msg, "strings")
			a.strings = append(a.strings, b)
			return err
		case attrTensors:
			b, err := f.bytes(msg, "tensors")
			if err != nil {
				return err
			}
			t, err := decodeTensor(b)
			if err != nil {
				return fmt.Errorf("%s.tensors[%d]: %w", msg, len(a.tensors), err)
			}
			a.tensors = append(a.tensors, t)
		case attrG:
			b, err := f.bytes(msg, "g")
			if err != nil {
				return err
			}
			g, err := decodeGraph(b)
			if err != nil {
				return fmt.Errorf("%s.g: %w", msg, err)
			}
			a.g = g
		case attrGraphs:
			if _, err := f.bytes(msg, "graphs"); err != nil {
				return err
			}
			a.graphs++
		case attrTP, attrTypeProtos, attrSparse, attrSparses, attrDocString:
			_, err := f.bytes(msg, "message")
			return err
		}
		return nil
	})
	if err != nil && a.name != "" {
		err = fmt.Errorf("attribute %q: %w", a.name, err)
	}
	if err == nil && !a.hasType {
		a.typ = a.inferType()
	}
	return a, err
}

// inferType guesses the type of an attribute that does not declare one
// (allowed before IR version 2) from the field that holds its value.
func (a *attrProto) inferType() uint64 {
	switch {
	case a.seen[attrF]:
		return attrTypeFloat
	case a.seen[attrI]:
		return attrTypeInt
	case a.seen[attrS]:
		return attrTypeString
	case a.seen[attrT]:
		return attrTypeTensor
	case a.seen[attrG]:
		return attrTypeGraph
	case a.seen[attrFloats]:
		return attrTypeFloats
	case a.seen[attrInts]:
		return attrTypeInts
	case a.seen[attrStrings]:
		return attrTypeStrings
	case a.seen[attrTensors]:
		return attrTypeTensors
	case a.seen[attrGraphs]:
		return attrTypeGraphs
	}
	return attrTypeUndefined
}

func decodeTensor(b []byte) (*tensorProto, error) {
	const msg = "TensorProto"
	t := &tensorProto{raw: b}
	err := fields(b, msg, func(f field) error {
		switch f.num {
		case tensorDims:
			return f.varints(msg, "dims", &t.dims)
		case tensorDataType:
			return f.varint(msg, "data_type", &t.dataType)
		case tensorName:
			return f.str(msg, "name", &t.name)
		}
		return nil
	})
	if err != nil && t.name != "" {
		err = fmt.Errorf("tensor %q: %w", t.name, err)
	}
	return t, err
}

func decodeValueInfo(b []byte) (*valueInfo, error) {
	const msg = "ValueInfoProto"
	vi := &valueInfo{}
	err := fields(b, msg, func(f field) error {
		switch f.num {
		case valueInfoName:
			return f.str(msg, "name", &vi.name)
		case valueInfoType:
			b, err := f.bytes(msg, "type")
			if err != nil {
				return err
			}
			t, err := decodeType(b)
			if err != nil {
				return fmt.Errorf("%s.type: %w", msg, err)
			}
			vi.typ = t
		}
		return nil
	})
	if err != nil && vi.name != "" {
		err = fmt.Errorf("%q: %w", vi.name, err)
	}
	return vi, err
}

func decodeType(b []byte) (*typeProto, error) {
	const msg = "TypeProto"
	t := &typeProto{}
	err := fields(b, msg, func(f field) error {
		switch f.num {
		case typeTensor:
			b, err := f.bytes(msg, "tensor_type")
			if err != nil {
				return err
			}
			t.kind = "tensor"
			return decodeTensorType(b, t)
		case typeSequence, typeMap, typeOptional, typeSparse:
			if _, err := f.bytes(msg, "type"); err != nil {
				return err
			}
			t.kind = map[protowire.Number]string{typeSequence: "sequence", typeMap: "map", typeOptional: "optional", typeSparse: "sparse_tensor"}[f.num]
		}
		return nil
	})
	return t, err
}

func decodeTensorType(b []byte, t *typeProto) error {
	const msg = "TypeProto.Tensor"
	return fields(b, msg, func(f field) error {
		switch f.num {
		case tensorTypeElem:
			return f.varint(msg, "elem_type", &t.elemType)
		case tensorTypeShape:
			b, err := f.bytes(msg, "shape")
			if err != nil {
				return err
			}
			t.hasShape = true
			return fields(b, "TensorShapeProto", func(f field) error {
				if f.num != shapeDim {
					return nil
				}
				b, err := f.bytes("TensorShapeProto", "dim")
				if err != nil {
					return err
				}
				var d dimProto
				err = fields(b, "TensorShapeProto.Dimension", func(f field) error {
					switch f.num {
					case dimValue:
						d.hasValue = true
						return f.varint("TensorShapeProto.Dimension", "dim_value", &d.value)
					case dimParam:
						return f.str("TensorShapeProto.Dimension", "dim_param", &d.param)
					}
					return nil
				})
				t.dims = append(t.dims, d)
				return err
			})
		}
		return nil
	})
}
