package onnx

import (
	enc "encoding/binary"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// This file builds ONNX protobuf messages by hand, with protowire and the
// schema's field numbers, for the tests.

// pb is a message under construction.
type pb []byte

func (b pb) str(num protowire.Number, s string) pb {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func (b pb) msg(num protowire.Number, m pb) pb {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, m)
}

func (b pb) varint(num protowire.Number, v int64) pb {
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(v))
}

func (b pb) f32(num protowire.Number, v float32) pb {
	b = protowire.AppendTag(b, num, protowire.Fixed32Type)
	return protowire.AppendFixed32(b, math.Float32bits(v))
}

// packed appends a packed repeated varint field.
func (b pb) packed(num protowire.Number, vs ...int64) pb {
	var p []byte
	for _, v := range vs {
		p = protowire.AppendVarint(p, uint64(v))
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, p)
}

// modelPB returns a ModelProto of IR version 8 importing the default
// domain at opset.
func modelPB(opset int64, g pb) []byte {
	var m pb
	m = m.varint(modelIRVersion, 8)
	m = m.str(modelProducerName, "test")
	m = m.msg(modelOpsetImport, pb(nil).str(opsetDomain, "").varint(opsetVersion, opset))
	m = m.msg(modelGraph, g)
	return m
}

// graphB collects the parts of a GraphProto.
type graphB struct {
	name                    string
	nodes, inits, ins, outs []pb
}

func (g graphB) pb() pb {
	var b pb
	b = b.str(graphNameField, g.name)
	for _, n := range g.nodes {
		b = b.msg(graphNode, n)
	}
	for _, t := range g.inits {
		b = b.msg(graphInitializer, t)
	}
	for _, v := range g.ins {
		b = b.msg(graphInput, v)
	}
	for _, v := range g.outs {
		b = b.msg(graphOutput, v)
	}
	return b
}

// nodePB returns a NodeProto.
func nodePB(name, op string, ins, outs []string, attrs ...pb) pb {
	var b pb
	for _, s := range ins {
		b = b.str(nodeInput, s)
	}
	for _, s := range outs {
		b = b.str(nodeOutput, s)
	}
	if name != "" {
		b = b.str(nodeName, name)
	}
	b = b.str(nodeOpType, op)
	for _, a := range attrs {
		b = b.msg(nodeAttribute, a)
	}
	return b
}

func attrIntPB(name string, v int64) pb {
	return pb(nil).str(attrName, name).varint(attrType, attrTypeInt).varint(attrI, v)
}

func attrFloatPB(name string, v float32) pb {
	return pb(nil).str(attrName, name).varint(attrType, attrTypeFloat).f32(attrF, v)
}

func attrIntsPB(name string, vs ...int64) pb {
	return pb(nil).str(attrName, name).varint(attrType, attrTypeInts).packed(attrInts, vs...)
}

func attrStringPB(name, v string) pb {
	return pb(nil).str(attrName, name).varint(attrType, attrTypeString).str(attrS, v)
}

func attrTensorPB(name string, t pb) pb {
	return pb(nil).str(attrName, name).varint(attrType, attrTypeTensor).msg(attrT, t)
}

// valueInfoPB returns a ValueInfoProto of a tensor type; each dim is an
// int (dim_value) or a string (dim_param). elem 0 leaves the type out.
func valueInfoPB(name string, elem int64, dims ...any) pb {
	b := pb(nil).str(valueInfoName, name)
	if elem == 0 {
		return b
	}
	var shape pb
	for _, d := range dims {
		var dim pb
		switch d := d.(type) {
		case int:
			dim = dim.varint(dimValue, int64(d))
		case string:
			dim = dim.str(dimParam, d)
		}
		shape = shape.msg(shapeDim, dim)
	}
	tt := pb(nil).varint(tensorTypeElem, elem).msg(tensorTypeShape, shape)
	return b.msg(valueInfoType, pb(nil).msg(typeTensor, tt))
}

// tensorF32PB returns a FLOAT TensorProto with raw_data.
func tensorF32PB(name string, dims []int64, data ...float32) pb {
	raw := make([]byte, 4*len(data))
	for i, v := range data {
		enc.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	b := pb(nil).packed(tensorDims, dims...).varint(tensorDataType, dtFloat).str(tensorName, name)
	return b.msg(9, raw) // raw_data
}

// tensorI64PB returns an INT64 TensorProto with int64_data.
func tensorI64PB(name string, dims []int64, data ...int64) pb {
	b := pb(nil).packed(tensorDims, dims...).varint(tensorDataType, dtInt64).str(tensorName, name)
	return b.packed(7, data...) // int64_data
}

// seq returns 0, 1, ..., n-1 as float32s.
func seq(n int) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(i%7) - 3
	}
	return out
}
