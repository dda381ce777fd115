package onnx

import (
	"context"
	"math"
	"slices"
	"strings"
	"testing"

	"gorgonia.org/tensor"

	"multigpu/graph"
	"multigpu/runtime"
)

// Tests of forms found in the .onnx files npm packages ship (voice
// activity, wake-word and OCR models), each in a small model built here.

// TestSliceWholeBatchAxis: PyTorch writes x[:, :k] as a Slice that also
// names axis 0, from 0 to INT64_MAX; on the batch's axis, whose size is
// not known at import time, that is the whole axis (silero-vad's STFT).
func TestSliceWholeBatchAxis(t *testing.T) {
	x := []pb{valueInfoPB("x", dtFloat, "N", 6, 3)}
	model := func(starts, ends, steps []int64) []byte {
		inits := []pb{i64s("starts", []int64{2}, starts...), i64s("ends", []int64{2}, ends...), i64s("axes", []int64{2}, 0, 1),
			i64s("steps", []int64{2}, steps...)}
		return foldModel(13, []pb{nodePB("s", "Slice", []string{"x", "starts", "ends", "axes", "steps"}, []string{"y"})}, x, inits, "y")
	}
	m := mustImport(t, model([]int64{0, 0}, []int64{math.MaxInt64, 4}, []int64{1, 1}), Options{})
	checkGraph(t, m, `
graph g {
  input %x: f32[N,6,3]
  %y = slice %x {axis=1, start=0, end=4} : f32[N,4,3]
  output %y
}`)
	// The whole of a bound batch is no slice at all.
	m = mustImport(t, model([]int64{0, 0}, []int64{math.MaxInt64, math.MaxInt64}, []int64{1, 1}), Options{BatchAxes: map[string]int{"x": 0}, InputDims: map[string]map[int]int64{"x": {0: 2}}})
	if text := graph.Format(m.Graph); strings.Contains(text, "slice") {
		t.Errorf("a slice of whole axes remains:\n%s", text)
	}
	// Part of the batch, or the batch reversed, is refused.
	for _, tc := range []struct{ starts, ends, steps []int64 }{
		{[]int64{1, 0}, []int64{math.MaxInt64, 4}, []int64{1, 1}},
		{[]int64{0, 0}, []int64{5, 4}, []int64{1, 1}},
		{[]int64{0, 0}, []int64{math.MaxInt64, 4}, []int64{2, 1}},
		{[]int64{-1, 0}, []int64{math.MinInt64, 4}, []int64{-1, 1}},
	} {
		_, err := Import(model(tc.starts, tc.ends, tc.steps), Options{})
		if err == nil || !strings.Contains(err.Error(), `node "s" (Slice, opset 13): axis 0 of f32[N,6,3] has no size at import time (the batch)`) {
			t.Errorf("slice %v:%v:%v of the batch: error %v", tc.starts, tc.ends, tc.steps, err)
		}
	}
}

// TestIfOutputIdentityName: a graph output that is an Identity of a folded
// If's output (spox's silero-vad export: output = Identity(If_0_outputs_0))
// keeps the graph output's name, so --run writes output.npy.
func TestIfOutputIdentityName(t *testing.T) {
	then := graphB{name: "then", nodes: []pb{nodePB("relu", "Relu", []string{"x"}, []string{"a"})}, outs: []pb{valueInfoPB("a", 0)}}
	els := graphB{name: "else", nodes: []pb{nodePB("neg", "Neg", []string{"x"}, []string{"b"})}, outs: []pb{valueInfoPB("b", 0)}}
	nodes := []pb{
		nodePB("eq", "Equal", []string{"sr", "rate"}, []string{"cond"}),
		nodePB("if", "If", []string{"cond"}, []string{"if_out"}, attrGraphPB("then_branch", then.pb()), attrGraphPB("else_branch", els.pb())),
		nodePB("id", "Identity", []string{"if_out"}, []string{"output"}),
		nodePB("id2", "Identity", []string{"if_out"}, []string{"again"}),
	}
	data := foldModel(16, nodes, []pb{valueInfoPB("x", dtFloat, "N", 3), valueInfoPB("sr", dtInt64)}, []pb{scalarI64("rate", 16000)}, "output", "again")
	m := mustImport(t, data, Options{Scalars: map[string]float64{"sr": 16000}})
	checkGraph(t, m, `
graph g {
  input %x: f32[N,3]
  %output = relu %x : f32[N,3]
  %again = copy %output : f32[N,3]
  output %output, %again
}`)
	if got := m.Outputs[0]; got.IR != "output" || got.ONNX != "output" {
		t.Errorf("output 0 is %+v, want output", got)
	}
}

// TestBatchNamedDims: a dimension named like an input's batch is the
// batch wherever it stands (silero-vad: input [batch, sequence], state
// [2, batch, 128]); an unnamed one is refused with the flags that size it
// or mark it.
func TestBatchNamedDims(t *testing.T) {
	nodes := []pb{
		nodePB("sum", "ReduceSum", []string{"x", "axes"}, []string{"s"}, attrIntPB("keepdims", 0)),
		nodePB("add", "Add", []string{"state", "s"}, []string{"y"}),
	}
	model := func(x, state pb) []byte {
		return foldModel(13, nodes, []pb{x, state}, []pb{i64s("axes", []int64{1}, 1)}, "y")
	}
	m := mustImport(t, model(valueInfoPB("x", dtFloat, "batch", 5), valueInfoPB("state", dtFloat, 2, "batch")), Options{})
	checkGraph(t, m, `
graph g {
  input %x: f32[N,5]
  input %state: f32[2,N]
  %s = sum %x {axes=[1]} : f32[N]
  %y = add %state, %s : f32[2,N]
  output %y
}`)
	// The state listed first, the batch marked on another input.
	m = mustImport(t, foldModel(13, nodes, []pb{valueInfoPB("state", dtFloat, 2, "b"), valueInfoPB("x", dtFloat, 7, "b")},
		[]pb{i64s("axes", []int64{1}, 0)}, "y"), Options{BatchAxes: map[string]int{"x": 1}})
	if got := m.Graph.Inputs()[0].Type.String(); got != "f32[2,N]" {
		t.Errorf("state is %s, want f32[2,N]", got)
	}
	// A name bound with --dim sizes both.
	m = mustImport(t, model(valueInfoPB("x", dtFloat, "batch", 5), valueInfoPB("state", dtFloat, 2, "batch")), Options{DimParams: map[string]int64{"batch": 3}})
	if got := m.Graph.Inputs()[1].Type.String(); got != "f32[2,3]" {
		t.Errorf("state is %s, want f32[2,3]", got)
	}
	for _, tc := range []struct {
		name         string
		x, state     pb
		opts         Options
		errSub, want string
	}{
		{"unnamed", valueInfoPB("x", dtFloat, "", 5), valueInfoPB("state", dtFloat, 2, ""), Options{},
			`input "state": dimension 1 is dynamic, and only the batch axis may be dynamic: bind it with --dim state:1=SIZE (Options.InputDims), or, if it is the batch, mark it with --batch-axis state=1 (Options.BatchAxes)`, ""},
		{"unnamed, marked", valueInfoPB("x", dtFloat, "", 5), valueInfoPB("state", dtFloat, 2, ""), Options{BatchAxes: map[string]int{"state": 1}}, "", "f32[2,N]"},
		{"another name", valueInfoPB("x", dtFloat, "batch", 5), valueInfoPB("state", dtFloat, 2, "layers"), Options{},
			`input "state": dimension 1 is named "layers", and only the batch axis may be dynamic: bind it with --dim layers=SIZE (Options.DimParams), or, if it is the batch, mark it with --batch-axis state=1`, ""},
		{"twice in one input", valueInfoPB("x", dtFloat, "batch", 5), valueInfoPB("state", dtFloat, "batch", "batch"), Options{},
			`input "state": dimensions 0 and 1 would both be the batch`, ""},
	} {
		m, err := Import(model(tc.x, tc.state), tc.opts)
		if tc.errSub != "" {
			if err == nil || !strings.Contains(err.Error(), tc.errSub) {
				t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.errSub)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
		} else if got := m.Graph.Inputs()[1].Type.String(); got != tc.want {
			t.Errorf("%s: state is %s, want %s", tc.name, got, tc.want)
		}
	}
}

// TestEmptyConstants: a tensor with no elements (PaddleOCR's Resize roi, a
// Constant of dims [0]; an empty initializer; empty value_floats) imports,
// as an input Resize leaves out, and is refused naming it where it is used
// as data.
func TestEmptyConstants(t *testing.T) {
	x := []pb{valueInfoPB("x", dtFloat, "N", 2, 2, 3)}
	resize := func(roi pb, inits ...pb) []byte {
		nodes := []pb{nodePB("r", "Resize", []string{"x", "roi", "s"}, []string{"y"},
			attrStringPB("coordinate_transformation_mode", "asymmetric"), attrStringPB("nearest_mode", "floor"))}
		if roi != nil {
			nodes = append([]pb{nodePB("c", "Constant", nil, []string{"roi"}, roi)}, nodes...)
		}
		return foldModel(11, nodes, x, append(inits, tensorF32PB("s", []int64{4}, 1, 1, 2, 1)), "y")
	}
	for name, data := range map[string][]byte{
		"constant":     resize(attrTensorPB("value", tensorF32PB("", []int64{0}))),
		"value_floats": resize(pb(nil).str(attrName, "value_floats").varint(attrType, attrTypeFloats)),
		"initializer":  resize(nil, tensorF32PB("roi", []int64{0})),
	} {
		m, err := Import(data, Options{})
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if text := graph.Format(m.Graph); !strings.Contains(text, "%y = gather %x, %y_nearest {axis=2} : f32[N,2,4,3]") {
			t.Errorf("%s: graph:\n%s", name, text)
		}
	}
	// Used as data, it is refused naming it.
	add := func(nodes []pb, inits ...pb) []byte {
		return foldModel(13, append(nodes, nodePB("a", "Add", []string{"x", "e"}, []string{"y"})), x, inits, "y")
	}
	for name, tc := range map[string]struct {
		data []byte
		want string
	}{
		"constant":    {add([]pb{nodePB("c", "Constant", nil, []string{"e"}, attrTensorPB("value", tensorF32PB("", []int64{2, 0})))}), `the value of node "c" (Constant) is an empty tensor (shape [2 0]), which the IR cannot hold`},
		"value_ints":  {add([]pb{nodePB("c", "Constant", nil, []string{"e"}, pb(nil).str(attrName, "value_ints").varint(attrType, attrTypeInts))}), `the value of node "c" (Constant) is an empty tensor (shape [0])`},
		"initializer": {add(nil, tensorF32PB("e", []int64{0})), `initializer "e" is an empty tensor (shape [0]), which the IR cannot hold`},
	} {
		_, err := Import(tc.data, Options{})
		if err == nil || !strings.Contains(err.Error(), `node "a" (Add, opset 13)`) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", name, err, tc.want)
		}
	}
}

// TestSelectIf: an If whose condition is computed from the data (a score
// of the batch, as openWakeWord's hey_jarvis runs its verifier when the
// first model's score passes 0.5) computes both branches and selects with
// where, per sample when the condition carries the batch; a condition
// that tests a scalar input is still refused asking for its value, and so
// are branches whose outputs differ in type.
func TestSelectIf(t *testing.T) {
	x := valueInfoPB("x", dtFloat, "N", 2)
	model := func(cond []pb, then, els graphB, ins ...pb) []byte {
		nodes := append(cond, nodePB("if", "If", []string{"cond"}, []string{"y"}, attrGraphPB("then_branch", then.pb()), attrGraphPB("else_branch", els.pb())))
		return foldModel(13, nodes, append([]pb{x}, ins...), []pb{tensorF32PB("half", nil, 0.5), scalarI64("rate", 16000)}, "y")
	}
	byScore := []pb{
		nodePB("sum", "ReduceMax", []string{"x"}, []string{"s"}, attrIntsPB("axes", 1)),
		nodePB("ge", "GreaterOrEqual", []string{"s", "half"}, []string{"cond"}),
	}
	then := graphB{name: "then", nodes: []pb{nodePB("relu", "Relu", []string{"x"}, []string{"a"})}, outs: []pb{valueInfoPB("a", 0)}}
	els := graphB{name: "else", nodes: []pb{nodePB("neg", "Neg", []string{"x"}, []string{"b"})}, outs: []pb{valueInfoPB("b", 0)}}
	m := mustImport(t, model(byScore, then, els), Options{})
	checkGraph(t, m, `
graph g {
  input %x: f32[N,2]
  param %half: f32[]
  %s = max %x {axes=[1], keepdims=true} : f32[N,1]
  %cond = greater_equal %s, %half : bool[N,1]
  %b = neg %x : f32[N,2]
  %a = relu %x : f32[N,2]
  %y = where %cond, %a, %b : f32[N,2]
  output %y
}`)
	ex, err := runtime.New(m.Graph, runtime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := ex.SetParams(m.Weights); err != nil {
		t.Fatal(err)
	}
	in := tensor.New(tensor.WithShape(3, 2), tensor.WithBacking([]float32{1, -0.25, 0.25, -1, -2, 3}))
	got, err := ex.Run(context.Background(), map[string]*tensor.Dense{"x": in})
	if err != nil {
		t.Fatal(err)
	}
	// The samples peak at 1 (then: relu), 0.25 (else: neg) and 3 (then).
	want := []float32{1, 0, -0.25, 1, 0, 3}
	if y := got["y"].Data().([]float32); !slices.Equal(y, want) {
		t.Errorf("y = %v, want %v", y, want)
	}
	for _, tc := range []struct {
		name   string
		data   []byte
		errSub string
	}{
		{"a scalar input", model([]pb{nodePB("eq", "Equal", []string{"sr", "rate"}, []string{"cond"})}, then, els, valueInfoPB("sr", dtInt64)),
			`the condition "cond" is computed at run time from input "sr" (i64[]), so the If cannot be folded at import time; bind it with --value sr=V`},
		{"outputs differ", model(byScore, then, graphB{name: "else", nodes: []pb{nodePB("sum2", "ReduceMax", []string{"x"}, []string{"b"}, attrIntsPB("axes", 1))}, outs: []pb{valueInfoPB("b", 0)}}),
			`node "if" (If, opset 13): the condition "cond" is known only at run time, and output 0 of the branches differs in type (then f32[N,2], else f32[N,1])`},
		{"a condition wider than the outputs", model(byScore, graphB{name: "then", nodes: []pb{nodePB("sum3", "ReduceMax", []string{"x"}, []string{"a"}, attrIntsPB("axes", 0, 1), attrIntPB("keepdims", 0))}, outs: []pb{valueInfoPB("a", 0)}},
			graphB{name: "else", nodes: []pb{nodePB("sum4", "ReduceMax", []string{"x"}, []string{"b"}, attrIntsPB("axes", 0, 1), attrIntPB("keepdims", 0))}, outs: []pb{valueInfoPB("b", 0)}}),
			`the condition "cond" (bool[N,1]) is known only at run time and does not broadcast to output 0 of the branches (f32[])`},
		{"a branch that fails", model(byScore, then, graphB{name: "else", nodes: []pb{nodePB("bad", "Loop", []string{"", "cond"}, []string{"b"})}, outs: []pb{valueInfoPB("b", 0)}}),
			`in the else branch (computed with the other, the condition "cond" being known only at run time), node "bad" (Loop): Loop is not supported`},
	} {
		if _, err := Import(tc.data, Options{}); err == nil || !strings.Contains(err.Error(), tc.errSub) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.errSub)
		}
	}
}
