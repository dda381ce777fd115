package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

// A minimal ONNX writer for the tests of --dim and --value: the field
// numbers of onnx.proto.

type pbuf []byte

func (b pbuf) str(num protowire.Number, s string) pbuf {
	return protowire.AppendString(protowire.AppendTag(b, num, protowire.BytesType), s)
}

func (b pbuf) msg(num protowire.Number, m pbuf) pbuf {
	return protowire.AppendBytes(protowire.AppendTag(b, num, protowire.BytesType), m)
}

func (b pbuf) varint(num protowire.Number, v int64) pbuf {
	return protowire.AppendVarint(protowire.AppendTag(b, num, protowire.VarintType), uint64(v))
}

// node is a NodeProto (fields 1 input, 2 output, 3 name, 4 op_type, 5
// attribute).
func node(name, op string, ins, outs []string, attrs ...pbuf) pbuf {
	var b pbuf
	for _, s := range ins {
		b = b.str(1, s)
	}
	for _, s := range outs {
		b = b.str(2, s)
	}
	b = b.str(3, name).str(4, op)
	for _, a := range attrs {
		b = b.msg(5, a)
	}
	return b
}

// graphAttr is an AttributeProto of type GRAPH (name 1, g 6, type 20).
func graphAttr(name string, g pbuf) pbuf {
	return pbuf(nil).str(1, name).msg(6, g).varint(20, 5)
}

// valueInfo is a tensor ValueInfoProto; a dim is an int (dim_value), a
// string (dim_param) or nil (unknown).
func valueInfo(name string, elem int64, dims ...any) pbuf {
	var shape pbuf
	for _, d := range dims {
		var dim pbuf
		switch d := d.(type) {
		case int:
			dim = dim.varint(1, int64(d))
		case string:
			dim = dim.str(2, d)
		}
		shape = shape.msg(1, dim)
	}
	tt := pbuf(nil).varint(1, elem).msg(2, shape)
	return pbuf(nil).str(1, name).msg(2, pbuf(nil).msg(1, tt))
}

// graphPB is a GraphProto (node 1, name 2, initializer 5, input 11,
// output 12); outputs are untyped.
func graphPB(name string, nodes, inits, ins []pbuf, outs ...string) pbuf {
	b := pbuf(nil).str(2, name)
	for _, n := range nodes {
		b = b.msg(1, n)
	}
	for _, t := range inits {
		b = b.msg(5, t)
	}
	for _, v := range ins {
		b = b.msg(11, v)
	}
	for _, o := range outs {
		b = b.msg(12, pbuf(nil).str(1, o))
	}
	return b
}

// writeONNX writes a ModelProto of IR version 8, opset 13, to dir/name.
func writeONNX(t *testing.T, dir, name string, g pbuf) string {
	t.Helper()
	m := pbuf(nil).varint(1, 8).msg(8, pbuf(nil).str(1, "").varint(2, 13)).msg(7, g)
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, m, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

const (
	onnxFloat = 1
	onnxInt64 = 7
)

// runCase is a command line and what it should give: its exit code and a
// part of its stdout when the exit is 0, else of its stderr.
type runCase struct {
	args []string
	code int
	want string
}

// checkRuns runs each case's command line and checks its exit and output.
func checkRuns(t *testing.T, cases []runCase) {
	t.Helper()
	for _, tc := range cases {
		code, stdout, stderr := runCmd(t, "", tc.args...)
		out := stdout
		if tc.code != exitOK {
			out = stderr
		}
		if code != tc.code || !strings.Contains(out, tc.want) {
			t.Errorf("%v: exit %d, want %d with %q:\n%s%s", tc.args, code, tc.code, tc.want, stdout, stderr)
		}
	}
}

func TestDimFlag(t *testing.T) {
	dir := t.TempDir()
	relu := []pbuf{node("r", "Relu", []string{"x"}, []string{"y"})}
	named := writeONNX(t, dir, "named.onnx", graphPB("g", relu, nil, []pbuf{valueInfo("x", onnxFloat, "batch", "sequence", 4)}, "y"))
	unnamed := writeONNX(t, dir, "unnamed.onnx", graphPB("g", relu, nil, []pbuf{valueInfo("x", onnxFloat, "batch", 4, nil)}, "y"))
	checkRuns(t, []runCase{
		{[]string{named}, exitUsage, `dimension 1 is named "sequence", and only the batch axis may be dynamic: bind it with --dim sequence=SIZE`},
		{[]string{named, "--dim", "sequence=128"}, exitOK, "input %x: f32[N,128,4]"},
		{[]string{named, "--dim", "sequence=128", "--gpus", "2"}, exitOK, "f32[N.0,128,4] @gpu:0"},
		{[]string{named, "--dim", "seq=128"}, exitUsage, `dimension "seq" is given a size, but no input has a dimension of that name (named dimensions: "batch", "sequence")`},
		{[]string{unnamed}, exitUsage, "dimension 2 is dynamic, and only the batch axis may be dynamic: bind it with --dim x:2=SIZE"},
		{[]string{unnamed, "--dim", "x:2=5"}, exitOK, "input %x: f32[N,4,5]"},
		{[]string{unnamed, "--dim=x:-1=5"}, exitOK, "input %x: f32[N,4,5]"},
		{[]string{unnamed, "--dim", "x:2=0"}, exitUsage, "expected NAME=SIZE (a named dimension) or INPUT:AXIS=SIZE (an axis of an input), SIZE a positive integer"},
		{[]string{unnamed, "--dim", "x:2=5", "--dim", "x:2=6"}, exitUsage, "axis 2 of input x given twice"},
	})
	// --dim is for ONNX models.
	saved := filepath.Join(dir, "m.graph")
	if code, _, stderr := runCmd(t, "", named, "--dim", "sequence=3", "-o", saved); code != exitOK {
		t.Fatalf("-o: exit %d: %s", code, stderr)
	}
	if code, _, stderr := runCmd(t, "", saved, "--dim", "sequence=3"); code != exitUsage || !strings.Contains(stderr, "--dim is for ONNX models") {
		t.Errorf("--dim on a .graph: exit %d: %s", code, stderr)
	}
}

func TestValueFlag(t *testing.T) {
	dir := t.TempDir()
	then := graphPB("then", []pbuf{node("relu", "Relu", []string{"x"}, []string{"a"})}, nil, nil, "a")
	els := graphPB("else", []pbuf{node("neg", "Neg", []string{"x"}, []string{"b"})}, nil, nil, "b")
	rate := pbuf(nil).varint(2, onnxInt64).str(8, "rate").varint(7, 16000) // data_type, name, int64_data
	model := writeONNX(t, dir, "if.onnx", graphPB("g", []pbuf{
		node("eq", "Equal", []string{"sr", "rate"}, []string{"cond"}),
		node("if", "If", []string{"cond"}, []string{"y"}, graphAttr("then_branch", then), graphAttr("else_branch", els)),
	}, []pbuf{rate}, []pbuf{valueInfo("x", onnxFloat, "N", 3), valueInfo("sr", onnxInt64)}, "y"))
	checkRuns(t, []runCase{
		{[]string{model}, exitUsage, `node "if" (If, opset 13): the condition "cond" is computed at run time from input "sr" (i64[]), so the If cannot be folded at import time; bind it with --value sr=V`},
		{[]string{model, "--value", "sr=16000"}, exitOK, "%y = relu %x : f32[N,3]"},
		{[]string{model, "--value", "sr=8000"}, exitOK, "%y = neg %x : f32[N,3]"},
		{[]string{model, "--value", "sr=8000", "--gpus", "2", "--check"}, exitOK, "ok: the rewritten graph computes what the original computes"},
		{[]string{model, "--value", "sr=8000.5"}, exitUsage, `the value for input "sr": expected an integer for i64, found 8000.5`},
		{[]string{model, "--value", "rate=1"}, exitUsage, `a value is given for "rate", which is not an input of the model`},
		{[]string{model, "--value", "sr"}, exitUsage, "expected NAME=V (a scalar input and its value, a number)"},
	})
}
