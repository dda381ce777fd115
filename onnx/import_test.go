package onnx

import (
	"strings"
	"testing"

	"multigpu/graph"
)

// mlpPB is a two-layer perceptron as PyTorch exports it: Gemm with
// transB=1, a dynamic batch named batch_size, names with slashes and dots.
func mlpPB() []byte {
	g := graphB{
		name: "torch-jit-export",
		nodes: []pb{
			nodePB("/fc1/Gemm", "Gemm", []string{"input.1", "fc1.weight", "fc1.bias"}, []string{"/fc1/Gemm_output_0"},
				attrFloatPB("alpha", 1), attrFloatPB("beta", 1), attrIntPB("transB", 1)),
			nodePB("/relu/Relu", "Relu", []string{"/fc1/Gemm_output_0"}, []string{"/relu/Relu_output_0"}),
			nodePB("/fc2/Gemm", "Gemm", []string{"/relu/Relu_output_0", "fc2.weight", "fc2.bias"}, []string{"/fc2/Gemm_output_0"},
				attrIntPB("transB", 1)),
			nodePB("/Softmax", "Softmax", []string{"/fc2/Gemm_output_0"}, []string{"output"}, attrIntPB("axis", 1)),
		},
		inits: []pb{
			tensorF32PB("fc1.weight", []int64{3, 4}, seq(12)...),
			tensorF32PB("fc1.bias", []int64{3}, seq(3)...),
			tensorF32PB("fc2.weight", []int64{2, 3}, seq(6)...),
			tensorF32PB("fc2.bias", []int64{2}, seq(2)...),
		},
		ins:  []pb{valueInfoPB("input.1", dtFloat, "batch_size", 4)},
		outs: []pb{valueInfoPB("output", dtFloat, "batch_size", 2)},
	}
	return modelPB(13, g.pb())
}

func mustImport(t *testing.T, data []byte, opts Options) *Model {
	t.Helper()
	m, err := Import(data, opts)
	if err != nil {
		t.Fatal(err)
	}
	// The result verifies and prints back unchanged.
	if err := graph.Verify(m.Graph); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	text := graph.Format(m.Graph)
	g2, err := graph.Parse("imported.graph", []byte(text))
	if err != nil {
		t.Fatalf("the imported graph does not parse back: %v\n%s", err, text)
	}
	if got := graph.Format(g2); got != text {
		t.Fatalf("the imported graph does not print back the same:\n%s\nthen\n%s", text, got)
	}
	for _, p := range m.Graph.Params() {
		if m.Weights[p.Name] == nil {
			t.Fatalf("param %%%s has no weights", p.Name)
		}
	}
	return m
}

func checkGraph(t *testing.T, m *Model, want string) {
	t.Helper()
	got := graph.Format(m.Graph)
	if strings.TrimSpace(got) != strings.TrimSpace(want) {
		t.Errorf("graph:\n%s\nwant:\n%s", got, want)
	}
}

func TestImportMLP(t *testing.T) {
	m := mustImport(t, mlpPB(), Options{})
	checkGraph(t, m, `
graph torch_jit_export {
  input %input.1: f32[N,4]
  param %fc1.weight: f32[3,4]
  param %fc1.bias: f32[3]
  param %fc2.weight: f32[2,3]
  param %fc2.bias: f32[2]
  %fc1_Gemm_output_0_transpose = transpose %fc1.weight {perm=[1,0]} : f32[4,3]
  %fc1_Gemm_output_0_matmul = matmul %input.1, %fc1_Gemm_output_0_transpose : f32[N,3]
  %fc1_Gemm_output_0 = add %fc1_Gemm_output_0_matmul, %fc1.bias : f32[N,3]
  %relu_Relu_output_0 = relu %fc1_Gemm_output_0 : f32[N,3]
  %fc2_Gemm_output_0_transpose = transpose %fc2.weight {perm=[1,0]} : f32[3,2]
  %fc2_Gemm_output_0_matmul = matmul %relu_Relu_output_0, %fc2_Gemm_output_0_transpose : f32[N,2]
  %fc2_Gemm_output_0 = add %fc2_Gemm_output_0_matmul, %fc2.bias : f32[N,2]
  %output = softmax %fc2_Gemm_output_0 {axis=1} : f32[N,2]
  output %output
}`)
	if m.Opset != 13 || m.IRVersion != 8 || m.Producer != "test" {
		t.Errorf("opset %d, IR version %d, producer %q", m.Opset, m.IRVersion, m.Producer)
	}
	if len(m.Notes) != 0 {
		t.Errorf("notes: %q", m.Notes)
	}
	if want := []Binding{{IR: "input.1", ONNX: "input.1"}}; !equalBindings(m.Inputs, want) {
		t.Errorf("inputs %v, want %v", m.Inputs, want)
	}
	if want := []Binding{{IR: "output", ONNX: "output"}}; !equalBindings(m.Outputs, want) {
		t.Errorf("outputs %v, want %v", m.Outputs, want)
	}
	for ir, onnx := range map[string]string{"fc1.weight": "fc1.weight", "input.1": "input.1", "output": "output"} {
		if got, ok := m.ONNXName(ir); !ok || got != onnx {
			t.Errorf("ONNXName(%q) = %q, %v; want %q", ir, got, ok, onnx)
		}
	}
	if w := m.Weights["fc1.weight"]; w == nil || w.Shape()[0] != 3 || w.Shape()[1] != 4 {
		t.Errorf("weights of fc1.weight: %v", w)
	}
}

func equalBindings(a, b []Binding) bool {
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

// TestImportDeterministic imports the same model twice: the same text.
func TestImportDeterministic(t *testing.T) {
	a := graph.Format(mustImport(t, mlpPB(), Options{}).Graph)
	for range 5 {
		if b := graph.Format(mustImport(t, mlpPB(), Options{}).Graph); a != b {
			t.Fatalf("two imports differ:\n%s\n%s", a, b)
		}
	}
}

// convNetPB is a small CNN with a concrete batch of 2: Conv with
// asymmetric pads, BatchNormalization, MaxPool, Reshape with a shape
// constant that hard-codes the batch, Gemm.
func convNetPB(shape []int64) []byte {
	g := graphB{
		name: "cnn",
		nodes: []pb{
			nodePB("conv", "Conv", []string{"x", "w", "b"}, []string{"c"},
				attrIntsPB("kernel_shape", 3, 3), attrIntsPB("pads", 1, 0, 2, 1), attrIntsPB("strides", 1, 1)),
			nodePB("bn", "BatchNormalization", []string{"c", "scale", "bias", "mean", "var"}, []string{"n"}, attrFloatPB("epsilon", 1e-3)),
			nodePB("pool", "MaxPool", []string{"n"}, []string{"p"}, attrIntsPB("kernel_shape", 2, 2), attrIntsPB("strides", 2, 2)),
			nodePB("shape", "Constant", nil, []string{"s"}, attrTensorPB("value", tensorI64PB("", []int64{int64(len(shape))}, shape...))),
			nodePB("flat", "Reshape", []string{"p", "s"}, []string{"f"}),
			nodePB("fc", "Gemm", []string{"f", "fw"}, []string{"y"}, attrIntPB("transB", 1), attrFloatPB("alpha", 0.5)),
		},
		inits: []pb{
			tensorF32PB("w", []int64{2, 1, 3, 3}, seq(18)...),
			tensorF32PB("b", []int64{2}, seq(2)...),
			tensorF32PB("scale", []int64{2}, 1, 2),
			tensorF32PB("bias", []int64{2}, 0, 1),
			tensorF32PB("mean", []int64{2}, 0, 0.5),
			tensorF32PB("var", []int64{2}, 1, 4),
			tensorF32PB("fw", []int64{3, 12}, seq(36)...),
		},
		ins:  []pb{valueInfoPB("x", dtFloat, 2, 1, 5, 5)},
		outs: []pb{valueInfoPB("y", dtFloat, 2, 3)},
	}
	return modelPB(13, g.pb())
}

func TestImportConcreteBatch(t *testing.T) {
	// Without a batch axis: concrete shapes, a note.
	m := mustImport(t, convNetPB([]int64{2, -1}), Options{})
	if len(m.Notes) != 1 || !strings.Contains(m.Notes[0], "cannot be split") {
		t.Errorf("notes %q, want one saying the model cannot be split", m.Notes)
	}
	if sym, _ := m.Graph.Batch(); sym != "" {
		t.Errorf("batch symbol %q, want none", sym)
	}
	// With one: N=2 on the batch axis, the Reshape's 2 becomes N.
	m = mustImport(t, convNetPB([]int64{2, -1}), Options{BatchAxes: map[string]int{"x": 0}})
	checkGraph(t, m, `
graph cnn {
  input %x: f32[N=2,1,5,5]
  param %w: f32[2,1,3,3]
  param %b: f32[2]
  param %scale: f32[2]
  param %bias: f32[2]
  param %mean: f32[2]
  param %var: f32[2]
  param %fw: f32[3,12]
  %c = conv2d %x, %w, %b {pad=[1,0,2,1]} : f32[N=2,2,6,4]
  %n = batchnorm %c, %scale, %bias, %mean, %var {epsilon=0.0010000000474974513} : f32[N=2,2,6,4]
  %p = maxpool2d %n {kernel=[2,2], stride=[2,2]} : f32[N=2,2,3,2]
  %f = reshape %p {shape=[N,12]} : f32[N=2,12]
  %y_transpose = transpose %fw {perm=[1,0]} : f32[12,3]
  %y_matmul = matmul %f, %y_transpose : f32[N=2,3]
  const %y_alpha: f32[] = 0.5
  %y = mul %y_matmul, %y_alpha : f32[N=2,3]
  output %y
}`)
	if len(m.Notes) != 0 {
		t.Errorf("notes %q, want none", m.Notes)
	}
	// ONNX's 0 (copy the batch) works the same way.
	m = mustImport(t, convNetPB([]int64{0, 12}), Options{BatchAxes: map[string]int{"x": 0}})
	if n := m.Graph.Lookup("f"); n == nil || n.Type.String() != "f32[N=2,12]" {
		t.Errorf("reshape with 0: %v", n)
	}
}

// oneNode returns a model of one node over inputs x (and more), each input
// given as name and dims; the output's type is left undeclared.
func oneNode(opset int64, node pb, ins []pb, inits ...pb) []byte {
	return modelPB(opset, graphB{name: "g", nodes: []pb{node}, ins: ins, inits: inits,
		outs: []pb{valueInfoPB("y", 0)}}.pb())
}

// importOne imports a one-node model and returns the type of y, or the
// error.
func importOne(t *testing.T, opset int64, node pb, ins []pb, inits ...pb) (*Model, error) {
	t.Helper()
	if _, err := Import(oneNode(opset, node, ins, inits...), Options{}); err != nil {
		return nil, err
	}
	return mustImport(t, oneNode(opset, node, ins, inits...), Options{}), nil
}

func TestImportReshapeSymbolicBatch(t *testing.T) {
	x := []pb{valueInfoPB("x", dtFloat, "N", 3, 4)}
	for _, tc := range []struct {
		shape []int64
		want  string // the type of y, or an error substring
	}{
		{[]int64{0, -1}, "f32[N,12]"},
		{[]int64{0, 12}, "f32[N,12]"},
		{[]int64{-1, 12}, "f32[N,12]"},
		{[]int64{0, 0, 2, 2}, "f32[N,3,2,2]"},
		{[]int64{-1}, "f32[N*12]"},
		{[]int64{3, -1}, "f32[3,N*4]"},
		{[]int64{2, 12}, `node "r" (Reshape, opset 13): shape [2 12] hard-codes the size of every axis, but the batch of f32[N,3,4] is symbolic`},
		{[]int64{0, 5}, `node "r" (Reshape, opset 13): reshape: cannot reshape`},
		{[]int64{-1, -1}, "more than one -1"},
		{[]int64{0, 0, 0, 0}, "entry 3 is 0 (copy the input's dimension), but input f32[N,3,4] has rank 3"},
	} {
		node := nodePB("r", "Reshape", []string{"x", "s"}, []string{"y"})
		m, err := importOne(t, 13, node, x, tensorI64PB("s", []int64{int64(len(tc.shape))}, tc.shape...))
		if strings.HasPrefix(tc.want, "f32[") {
			if err != nil {
				t.Errorf("shape %v: %v", tc.shape, err)
			} else if got := m.Graph.Outputs[0].Type.String(); got != tc.want {
				t.Errorf("shape %v: y is %s, want %s", tc.shape, got, tc.want)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("shape %v: error %v, want one containing %q", tc.shape, err, tc.want)
		}
	}
}

// viewPB is x.view(x.size(0), -1) as PyTorch exports it with a dynamic
// batch: Shape, Gather, Unsqueeze, Concat, Reshape.
func viewPB(opset int64, batch any) []byte {
	unsq := nodePB("u", "Unsqueeze", []string{"g", "zero"}, []string{"u"})
	if opset < 13 {
		unsq = nodePB("u", "Unsqueeze", []string{"g"}, []string{"u"}, attrIntsPB("axes", 0))
	}
	return modelPB(opset, graphB{name: "view",
		nodes: []pb{
			nodePB("s", "Shape", []string{"x"}, []string{"s"}),
			nodePB("i", "Constant", nil, []string{"i"}, attrTensorPB("value", tensorI64PB("", nil, 0))),
			nodePB("g", "Gather", []string{"s", "i"}, []string{"g"}, attrIntPB("axis", 0)),
			unsq,
			nodePB("c", "Concat", []string{"u", "minus1"}, []string{"c"}, attrIntPB("axis", 0)),
			nodePB("r", "Reshape", []string{"x", "c"}, []string{"y"}),
		},
		inits: []pb{tensorI64PB("zero", []int64{1}, 0), tensorI64PB("minus1", []int64{1}, -1)},
		ins:   []pb{valueInfoPB("x", dtFloat, batch, 3, 4)},
		outs:  []pb{valueInfoPB("y", 0)},
	}.pb())
}

func TestImportFoldedShape(t *testing.T) {
	for _, opset := range []int64{11, 13} {
		m := mustImport(t, viewPB(opset, "batch"), Options{})
		checkGraph(t, m, `
graph view {
  input %x: f32[N,3,4]
  %y = reshape %x {shape=[N,-1]} : f32[N,12]
  output %y
}`)
	}
	m := mustImport(t, viewPB(13, 5), Options{BatchAxes: map[string]int{"x": 0}})
	checkGraph(t, m, `
graph view {
  input %x: f32[N=5,3,4]
  %y = reshape %x {shape=[N,12]} : f32[N=5,12]
  output %y
}`)
	m = mustImport(t, viewPB(13, 5), Options{})
	checkGraph(t, m, `
graph view {
  input %x: f32[5,3,4]
  %y = reshape %x {shape=[5,-1]} : f32[5,12]
  output %y
}`)
	// A shape that depends on the batch cannot become data.
	g := graphB{name: "g",
		nodes: []pb{nodePB("s", "Shape", []string{"x"}, []string{"s"}), nodePB("a", "Add", []string{"s", "s"}, []string{"y"})},
		ins:   []pb{valueInfoPB("x", dtFloat, "N", 3)}, outs: []pb{valueInfoPB("y", 0)}}
	_, err := Import(modelPB(13, g.pb()), Options{})
	if want := `onnx: graph output "y": "y" is a shape computed at import time, and its value depends on the batch size, which is known only at run time ([N*2 6])`; err == nil || err.Error() != want {
		t.Errorf("error %v\nwant %s", err, want)
	}
}

func TestImportReshapeBoundBatch(t *testing.T) {
	for _, tc := range []struct {
		shape []int64
		want  string
	}{
		{[]int64{4, 12}, "f32[N=4,12]"}, // the batch's own axis: N
		{[]int64{4, 3, 2, 2}, "f32[N=4,3,2,2]"},
		{[]int64{-1, 6}, "f32[N*2,6]"}, // folded: N (=4) times 2
		{[]int64{2, 24}, "f32[2,N*6]"}, // split across axes: the batch divides 24
		{[]int64{48}, "f32[N*12]"},
	} {
		data := modelPB(13, graphB{name: "g",
			nodes: []pb{nodePB("r", "Reshape", []string{"x", "s"}, []string{"y"})},
			inits: []pb{tensorI64PB("s", []int64{int64(len(tc.shape))}, tc.shape...)},
			ins:   []pb{valueInfoPB("x", dtFloat, 4, 3, 4)},
			outs:  []pb{valueInfoPB("y", 0)}}.pb())
		m, err := Import(data, Options{BatchAxes: map[string]int{"x": 0}})
		if err != nil {
			t.Errorf("shape %v: %v", tc.shape, err)
			continue
		}
		if got := m.Graph.Outputs[0].Type.String(); got != tc.want {
			t.Errorf("shape %v: y is %s, want %s", tc.shape, got, tc.want)
		}
	}
}

// opCase is a one-node model and what importing it gives: lines the
// printed graph must contain, or an error substring.
type opCase struct {
	name   string
	opset  int64
	node   pb
	ins    []pb
	inits  []pb
	want   []string
	errSub string
}

func runOpCases(t *testing.T, cases []opCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := importOne(t, tc.opset, tc.node, tc.ins, tc.inits...)
			if tc.errSub != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errSub) {
					t.Fatalf("error %v, want one containing %q", err, tc.errSub)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			text := graph.Format(m.Graph)
			for _, w := range tc.want {
				if !strings.Contains(text, w) {
					t.Errorf("graph lacks %q:\n%s", w, text)
				}
			}
		})
	}
}

func x4(dims ...any) []pb { return []pb{valueInfoPB("x", dtFloat, dims...)} }

func TestImportOps(t *testing.T) { runOpCases(t, opCases()) }

// opCases are one-node models of most converters and their errors.
func opCases() []opCase {
	return []opCase{
		{name: "softmax opset 11 coerces to 2-D", opset: 11,
			node: nodePB("s", "Softmax", []string{"x"}, []string{"y"}), ins: x4("N", 3, 4),
			want: []string{"%y_flatten = flatten %x : f32[N,12]", "%y_softmax = softmax %y_flatten {axis=1} : f32[N,12]", "%y = reshape %y_softmax {shape=[N,3,4]} : f32[N,3,4]"}},
		{name: "softmax opset 11 last axis", opset: 11,
			node: nodePB("s", "LogSoftmax", []string{"x"}, []string{"y"}, attrIntPB("axis", -1)), ins: x4("N", 3, 4),
			want: []string{"%y = log_softmax %x {axis=2} : f32[N,3,4]"}},
		{name: "softmax opset 11 trailing ones", opset: 11,
			node: nodePB("s", "Softmax", []string{"x"}, []string{"y"}), ins: x4("N", 3, 1),
			want: []string{"%y = softmax %x {axis=1} : f32[N,3,1]"}},
		{name: "softmax opset 13 one axis", opset: 13,
			node: nodePB("s", "Softmax", []string{"x"}, []string{"y"}, attrIntPB("axis", 1)), ins: x4("N", 3, 4),
			want: []string{"%y = softmax %x {axis=1} : f32[N,3,4]"}},
		{name: "conv 1-D", opset: 13,
			node: nodePB("c", "Conv", []string{"x", "w"}, []string{"y"}, attrIntsPB("pads", 1, 2), attrIntsPB("dilations", 2), attrIntPB("group", 2)),
			ins:  x4("N", 4, 9), inits: []pb{tensorF32PB("w", []int64{6, 2, 3}, seq(36)...)},
			want: []string{"%y_reshape = reshape %x {shape=[N,4,1,9]} : f32[N,4,1,9]", "%y_reshape_2 = reshape %w {shape=[6,2,1,3]} : f32[6,2,1,3]",
				"%y_conv2d = conv2d %y_reshape, %y_reshape_2 {pad=[0,1,0,2], dilation=[1,2], groups=2} : f32[N,6,1,8]", "%y = reshape %y_conv2d {shape=[N,6,8]} : f32[N,6,8]"}},
		{name: "conv auto_pad SAME_UPPER", opset: 13,
			node: nodePB("c", "Conv", []string{"x", "w"}, []string{"y"}, attrStringPB("auto_pad", "SAME_UPPER"), attrIntsPB("strides", 2, 2)),
			ins:  x4("N", 1, 5, 6), inits: []pb{tensorF32PB("w", []int64{1, 1, 3, 3}, seq(9)...)},
			want: []string{"%y = conv2d %x, %w {stride=[2,2], pad=[1,0,1,1]} : f32[N,1,3,3]"}},
		{name: "conv 3-D", opset: 13,
			node: nodePB("c", "Conv", []string{"x", "w"}, []string{"y"}), ins: x4("N", 1, 3, 3, 3),
			inits:  []pb{tensorF32PB("w", []int64{1, 1, 1, 1, 1}, 1)},
			errSub: `onnx: node "c" (Conv, opset 13): only 1-D and 2-D convolutions`},
		{name: "conv unknown auto_pad", opset: 13,
			node: nodePB("c", "Conv", []string{"x", "w"}, []string{"y"}, attrStringPB("auto_pad", "SAME_MIDDLE")), ins: x4("N", 1, 3, 3),
			inits:  []pb{tensorF32PB("w", []int64{1, 1, 1, 1}, 1)},
			errSub: `unsupported auto_pad "SAME_MIDDLE"`},
		{name: "conv unknown attribute", opset: 13,
			node: nodePB("c", "Conv", []string{"x", "w"}, []string{"y"}, attrIntPB("fancy", 1)), ins: x4("N", 1, 3, 3),
			inits:  []pb{tensorF32PB("w", []int64{1, 1, 1, 1}, 1)},
			errSub: `onnx: node "c" (Conv, opset 13): unsupported attribute "fancy" (Conv supports auto_pad, dilations, group, kernel_shape, pads, strides)`},
		{name: "attribute of the wrong type", opset: 13,
			node: nodePB("c", "Conv", []string{"x", "w"}, []string{"y"}, attrFloatPB("group", 1)), ins: x4("N", 1, 3, 3),
			inits:  []pb{tensorF32PB("w", []int64{1, 1, 1, 1}, 1)},
			errSub: `attribute "group": expected INT, found FLOAT`},
		{name: "average pool counting the padding", opset: 13,
			node: nodePB("p", "AveragePool", []string{"x"}, []string{"y"}, attrIntsPB("kernel_shape", 3, 3), attrIntsPB("pads", 1, 1, 1, 1), attrIntPB("count_include_pad", 1)),
			ins:  x4("N", 2, 4, 4),
			want: []string{"param %y_ones: f32[2,1,3,3]", "%y_conv2d = conv2d %x, %y_ones {pad=[1,1], groups=2} : f32[N,2,4,4]", "const %y_count: f32[] = 9.0", "%y = div %y_conv2d, %y_count"}},
		{name: "average pool excluding the padding", opset: 13,
			node: nodePB("p", "AveragePool", []string{"x"}, []string{"y"}, attrIntsPB("kernel_shape", 3, 3), attrIntsPB("pads", 1, 1, 1, 1)),
			ins:  x4("N", 2, 4, 4),
			want: []string{"%y = avgpool2d %x {kernel=[3,3], stride=[1,1], pad=[1,1]} : f32[N,2,4,4]"}},
		{name: "max pool ceil mode", opset: 13,
			node: nodePB("p", "MaxPool", []string{"x"}, []string{"y"}, attrIntsPB("kernel_shape", 3, 3), attrIntsPB("strides", 2, 2), attrIntPB("ceil_mode", 1)),
			ins:  x4("N", 1, 4, 4),
			want: []string{"%y = maxpool2d %x {kernel=[3,3], stride=[2,2], pad=[0,0,1,1]} : f32[N,1,2,2]"}},
		{name: "max pool dilations", opset: 13,
			node: nodePB("p", "MaxPool", []string{"x"}, []string{"y"}, attrIntsPB("kernel_shape", 2, 2), attrIntsPB("dilations", 2, 2)),
			ins:  x4("N", 1, 4, 4), errSub: "dilations [2 2] are not supported"},
		{name: "global average pool", opset: 13,
			node: nodePB("p", "GlobalAveragePool", []string{"x"}, []string{"y"}), ins: x4("N", 3, 4, 5),
			want: []string{"%y = mean %x {axes=[2,3], keepdims=true} : f32[N,3,1,1]"}},
		{name: "gemm alpha beta transA", opset: 13,
			node:  nodePB("g", "Gemm", []string{"a", "b", "c"}, []string{"y"}, attrFloatPB("alpha", 2), attrFloatPB("beta", 0.5), attrIntPB("transA", 1)),
			ins:   []pb{valueInfoPB("a", dtFloat, 3, 4)},
			inits: []pb{tensorF32PB("b", []int64{3, 2}, seq(6)...), tensorF32PB("c", []int64{2}, 1, 2)},
			want: []string{"%y_transpose = transpose %a {perm=[1,0]} : f32[4,3]", "%y_matmul = matmul %y_transpose, %b : f32[4,2]", "const %y_alpha: f32[] = 2.0",
				"%y_mul = mul %y_matmul, %y_alpha", "const %y_beta: f32[] = 0.5", "%y_mul_2 = mul %c, %y_beta : f32[2]", "%y = add %y_mul, %y_mul_2 : f32[4,2]"}},
		{name: "matmul vector", opset: 13,
			node: nodePB("m", "MatMul", []string{"x", "v"}, []string{"y"}), ins: x4("N", 3, 4), inits: []pb{tensorF32PB("v", []int64{4}, seq(4)...)},
			want: []string{"%y_reshape = reshape %v {shape=[4,1]}", "%y_matmul = matmul %x, %y_reshape : f32[N,3,1]", "%y = reshape %y_matmul {shape=[N,3]} : f32[N,3]"}},
		{name: "matmul matrix by stack", opset: 13,
			node: nodePB("m", "MatMul", []string{"x", "b"}, []string{"y"}), ins: x4(2, 3), inits: []pb{tensorF32PB("b", []int64{5, 3, 4}, seq(60)...)},
			want: []string{"%y = transpose %y_reshape {perm=[1,0,2]} : f32[5,2,4]"}},
		{name: "clip opset 6 attributes", opset: 6,
			node: nodePB("c", "Clip", []string{"x"}, []string{"y"}, attrFloatPB("min", -1), attrFloatPB("max", 1)), ins: x4("N", 3),
			want: []string{"const %y_min: f32[] = -1.0", "%y_maximum = maximum %x, %y_min", "const %y_max: f32[] = 1.0", "%y = minimum %y_maximum, %y_max"}},
		{name: "clip opset 13 max only", opset: 13,
			node: nodePB("c", "Clip", []string{"x", "", "hi"}, []string{"y"}), ins: x4("N", 3), inits: []pb{tensorF32PB("hi", nil, 6)},
			want: []string{"param %hi: f32[]", "%y = minimum %x, %hi : f32[N,3]"}},
		{name: "max of three", opset: 13,
			node: nodePB("m", "Max", []string{"x", "x", "x"}, []string{"y"}), ins: x4("N", 3),
			want: []string{"%y_maximum = maximum %x, %x", "%y = maximum %y_maximum, %x"}},
		{name: "dropout is the identity", opset: 13,
			node: nodePB("d", "Dropout", []string{"x"}, []string{"y", "mask"}), ins: x4("N", 3),
			want: []string{"output %x"}},
		{name: "reduce mean attribute axes", opset: 13,
			node: nodePB("r", "ReduceMean", []string{"x"}, []string{"y"}, attrIntsPB("axes", -1), attrIntPB("keepdims", 0)), ins: x4("N", 3, 4),
			want: []string{"%y = mean %x {axes=[2]} : f32[N,3]"}},
		{name: "reduce sum input axes", opset: 13,
			node: nodePB("r", "ReduceSum", []string{"x", "axes"}, []string{"y"}), ins: x4("N", 3, 4), inits: []pb{tensorI64PB("axes", []int64{2}, 0, 2)},
			want: []string{"%y = sum %x {axes=[0,2], keepdims=true} : f32[1,3,1]"}},
		{name: "reduce sum all axes", opset: 13,
			node: nodePB("r", "ReduceSum", []string{"x"}, []string{"y"}, attrIntPB("keepdims", 0)), ins: x4("N", 3, 4),
			want: []string{"%y = sum %x : f32[]"}},
		{name: "reduce sum noop", opset: 13,
			node: nodePB("r", "ReduceSum", []string{"x"}, []string{"y"}, attrIntPB("noop_with_empty_axes", 1)), ins: x4("N", 3, 4),
			want: []string{"output %x"}},
		{name: "reduce max axes input from opset 18", opset: 18,
			node: nodePB("r", "ReduceMax", []string{"x"}, []string{"y"}, attrIntsPB("axes", 1)), ins: x4("N", 3, 4),
			errSub: "attribute axes was replaced by an input in opset 18"},
		{name: "reduce axes not constant", opset: 13,
			node: nodePB("r", "ReduceSum", []string{"x", "a"}, []string{"y"}), ins: []pb{valueInfoPB("x", dtFloat, "N", 3), valueInfoPB("a", dtInt64, 1)},
			errSub: `input 1 "a" (axes) must be a constant`},
		{name: "flatten negative axis", opset: 13,
			node: nodePB("f", "Flatten", []string{"x"}, []string{"y"}, attrIntPB("axis", -2)), ins: x4("N", 3, 4, 5),
			want: []string{"%y = flatten %x {axis=2} : f32[N*3,20]"}},
		{name: "unsqueeze and squeeze", opset: 11,
			node: nodePB("u", "Unsqueeze", []string{"x"}, []string{"y"}, attrIntsPB("axes", 1, -1)), ins: x4("N", 3),
			want: []string{"%y = reshape %x {shape=[N,1,3,1]} : f32[N,1,3,1]"}},
		{name: "squeeze the batch", opset: 11,
			node: nodePB("s", "Squeeze", []string{"x"}, []string{"y"}, attrIntsPB("axes", 0)), ins: x4("N", 3),
			errSub: "holds the batch"},
		{name: "split", opset: 13,
			node: nodePB("s", "Split", []string{"x", "sp"}, []string{"y", "z"}, attrIntPB("axis", 1)), ins: x4("N", 5), inits: []pb{tensorI64PB("sp", []int64{2}, 2, 3)},
			want: []string{"%y = slice %x {axis=1, start=0, end=2} : f32[N,2]"}},
		{name: "split into no outputs", opset: 18,
			node: nodePB("s", "Split", []string{"x"}, nil, attrIntPB("num_outputs", 0), attrIntPB("axis", 1)), ins: x4("N", 5),
			errSub: "num_outputs=0, but the node has 0 outputs"},
		{name: "split num_outputs", opset: 18,
			node: nodePB("s", "Split", []string{"x"}, []string{"y", "z"}, attrIntPB("num_outputs", 2), attrIntPB("axis", 1)), ins: x4("N", 5),
			want: []string{"%y = slice %x {axis=1, start=0, end=3} : f32[N,3]"}},
		{name: "slice", opset: 13,
			node: nodePB("s", "Slice", []string{"x", "st", "en", "ax"}, []string{"y"}), ins: x4("N", 5, 6),
			inits: []pb{tensorI64PB("st", []int64{2}, 1, -3), tensorI64PB("en", []int64{2}, 100, -1), tensorI64PB("ax", []int64{2}, 1, 2)},
			want:  []string{"%y_slice = slice %x {axis=1, start=1, end=5} : f32[N,4,6]", "%y = slice %y_slice {axis=2, start=3, end=5} : f32[N,4,2]"}},
		{name: "slice the symbolic batch", opset: 13,
			node: nodePB("s", "Slice", []string{"x", "st", "en"}, []string{"y"}), ins: x4("N", 5),
			inits:  []pb{tensorI64PB("st", []int64{1}, 1), tensorI64PB("en", []int64{1}, 2)},
			errSub: "has no size at import time"},
		{name: "constant pad", opset: 13,
			node: nodePB("p", "Pad", []string{"x", "pads", "v"}, []string{"y"}), ins: x4("N", 2, 2, 2),
			inits: []pb{tensorI64PB("pads", []int64{8}, 0, 0, 1, 0, 0, 0, 0, 1), tensorF32PB("v", nil, 5)},
			want:  []string{"%y_conv2d = conv2d %x, %y_ones {pad=[1,0,0,1], groups=2} : f32[N,2,3,3]", "param %y_padding: f32[3,3]", "%y = add %y_conv2d, %y_padding"}},
		{name: "reflect pad", opset: 13,
			node: nodePB("p", "Pad", []string{"x", "pads"}, []string{"y"}, attrStringPB("mode", "reflect")), ins: x4("N", 2, 2, 2),
			inits: []pb{tensorI64PB("pads", []int64{8}, 0, 0, 1, 0, 0, 0, 0, 1)}, want: []string{"%y = gather %y_gather, %y_pad_2 {axis=3} : f32[N,2,3,3]"}},
		{name: "wrap pad before opset 19", opset: 13,
			node: nodePB("p", "Pad", []string{"x", "pads"}, []string{"y"}, attrStringPB("mode", "wrap")), ins: x4("N", 2, 2, 2),
			inits: []pb{tensorI64PB("pads", []int64{8}, 0, 0, 1, 0, 0, 0, 0, 1)}, errSub: `mode "wrap" is not supported`},
		{name: "integer division", opset: 13,
			node: nodePB("d", "Div", []string{"x", "x"}, []string{"y"}), ins: []pb{valueInfoPB("x", dtInt64, "N")},
			errSub: "integer division is not supported"},
		{name: "legacy broadcast with axis", opset: 6,
			node: nodePB("a", "Add", []string{"x", "b"}, []string{"y"}, attrIntPB("broadcast", 1), attrIntPB("axis", 1)), ins: x4("N", 3, 4, 4),
			inits: []pb{tensorF32PB("b", []int64{3}, 1, 2, 3)},
			want:  []string{"%y_reshape = reshape %b {shape=[3,1,1]}", "%y = add %x, %y_reshape : f32[N,3,4,4]"}},
		{name: "batchnorm training", opset: 15,
			node: nodePB("bn", "BatchNormalization", []string{"x", "s", "b", "m", "v"}, []string{"y"}, attrIntPB("training_mode", 1)), ins: x4("N", 2),
			inits:  []pb{tensorF32PB("s", []int64{2}, 1, 1), tensorF32PB("b", []int64{2}, 0, 0), tensorF32PB("m", []int64{2}, 0, 0), tensorF32PB("v", []int64{2}, 1, 1)},
			errSub: "training_mode=1 is not supported"},
		{name: "elu", opset: 13,
			node: nodePB("e", "Elu", []string{"x"}, []string{"y"}), ins: x4("N", 3),
			want: []string{"%y_relu = relu %x", "%y_minimum = minimum %x, %y_zero", "%y = add %y_relu, %y_mul"}},
		{name: "cast to the same type", opset: 13,
			node: nodePB("c", "Cast", []string{"x"}, []string{"y"}, attrIntPB("to", dtFloat)), ins: x4("N", 3),
			want: []string{"output %x"}},
		{name: "cast to another type", opset: 13,
			node: nodePB("c", "Cast", []string{"x"}, []string{"y"}, attrIntPB("to", dtInt64)), ins: x4("N", 3),
			want: []string{"%y = cast %x {to=i64} : i64[N,3]"}},
		{name: "cast to a type the IR lacks", opset: 13,
			node: nodePB("c", "Cast", []string{"x"}, []string{"y"}, attrIntPB("to", 10)), ins: x4("N", 3),
			errSub: "conversion from f32 to FLOAT16 is not supported"},
		{name: "shape folds", opset: 13,
			node: nodePB("s", "Shape", []string{"x"}, []string{"y"}), ins: x4(2, 3),
			want: []string{"const %y: i64[2] = [2,3]"}},
		{name: "layer normalization", opset: 17,
			node: nodePB("ln", "LayerNormalization", []string{"x", "s", "b"}, []string{"y"}, attrIntPB("axis", 1)), ins: x4("N", 2, 3),
			inits: []pb{tensorF32PB("s", []int64{2, 3}, seq(6)...), tensorF32PB("b", []int64{3}, seq(3)...)},
			want: []string{"%y_mean = mean %x {axes=[1,2], keepdims=true} : f32[N,1,1]", "%y_div = div %y_one, %y_sqrt : f32[N,1,1]",
				"%y_mul_2 = mul %y_sub, %y_div : f32[N,2,3]", "%y = add %y_mul_3, %b : f32[N,2,3]"}},
		{name: "layer normalization in f32 of f64", opset: 17,
			node: nodePB("ln", "LayerNormalization", []string{"x", "s"}, []string{"y"}), ins: []pb{valueInfoPB("x", dtDouble, "N", 3)},
			inits:  []pb{pb(nil).packed(tensorDims, 3).varint(tensorDataType, dtDouble).str(tensorName, "s").msg(9, make([]byte, 24))},
			errSub: "stash_type FLOAT with input f64[N,3] is not supported"},
		{name: "instance normalization", opset: 13,
			node: nodePB("in", "InstanceNormalization", []string{"x", "s", "b"}, []string{"y"}), ins: x4("N", 2, 3, 3),
			inits: []pb{tensorF32PB("s", []int64{2}, 1, 2), tensorF32PB("b", []int64{2}, 0, 1)},
			want:  []string{"%y_mean = mean %x {axes=[2,3], keepdims=true} : f32[N,2,1,1]", "%y_reshape = reshape %s {shape=[2,1,1]}", "%y = add %y_mul_3, %y_reshape_2 : f32[N,2,3,3]"}},
		{name: "size folds", opset: 13,
			node: nodePB("s", "Size", []string{"x"}, []string{"y"}), ins: x4(2, 3),
			want: []string{"const %y: i64[] = 6"}},
		{name: "unsupported op", opset: 13,
			node: nodePB("t", "Det", []string{"x"}, []string{"y"}), ins: x4("N", 3),
			errSub: `onnx: node "t" (Det, opset 13): unsupported op "Det"; supported ops: Abs, Add, And, ArgMax,`},
		{name: "other domain", opset: 13,
			node: append(nodePB("t", "FusedConv", []string{"x"}, []string{"y"}), pb(nil).str(nodeDomain, "com.microsoft")...), ins: x4("N", 3),
			errSub: `ops of domain "com.microsoft" are not supported`},
		{name: "unnamed node", opset: 13,
			node: nodePB("", "Det", []string{"x"}, []string{"y"}), ins: x4("N", 3),
			errSub: `onnx: node #0 (output "y") (Det, opset 13): unsupported op`},
	}
}

func TestImportNames(t *testing.T) {
	g := graphB{
		name: "0 weird/name",
		nodes: []pb{
			nodePB("", "Relu", []string{"a/b"}, []string{"a_b_2"}),
			nodePB("", "Add", []string{"a_b_2", "a_b"}, []string{"0"}),
			nodePB("", "Identity", []string{"0"}, []string{"out:1"}),
		},
		inits: []pb{tensorF32PB("a_b", []int64{3}, 1, 2, 3)},
		ins:   []pb{valueInfoPB("a/b", dtFloat, "N", 3)},
		outs:  []pb{valueInfoPB("out:1", 0), valueInfoPB("0", 0), valueInfoPB("a/b", 0)},
	}
	m := mustImport(t, modelPB(13, g.pb()), Options{})
	checkGraph(t, m, `
graph g_0_weird_name {
  input %a_b: f32[N,3]
  param %a_b_2: f32[3]
  %a_b_2_2 = relu %a_b : f32[N,3]
  %0 = add %a_b_2_2, %a_b_2 : f32[N,3]
  %out_1 = copy %0 : f32[N,3]
  output %out_1, %0, %a_b
}`)
	want := []Binding{{IR: "out_1", ONNX: "out:1"}, {IR: "0", ONNX: "0"}, {IR: "a_b", ONNX: "a/b"}}
	if !equalBindings(m.Outputs, want) {
		t.Errorf("outputs %v, want %v", m.Outputs, want)
	}
	for ir, onnx := range map[string]string{"a_b": "a/b", "a_b_2": "a_b"} {
		if got, _ := m.ONNXName(ir); got != onnx {
			t.Errorf("ONNXName(%q) = %q, want %q", ir, got, onnx)
		}
	}
}
