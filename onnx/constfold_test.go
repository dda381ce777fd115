package onnx

import (
	"strings"
	"testing"

	"multigpu/graph"
	"multigpu/passes/replicate"
)

func attrGraphPB(name string, g pb) pb {
	return pb(nil).str(attrName, name).varint(attrType, attrTypeGraph).msg(attrG, g)
}

// i64s is an INT64 initializer of the given dims.
func i64s(name string, dims []int64, data ...int64) pb { return tensorI64PB(name, dims, data...) }

// scalarI64 is a rank-0 INT64 initializer.
func scalarI64(name string, v int64) pb { return tensorI64PB(name, nil, v) }

// foldModel is a model of nodes over inputs, with initializers; its outputs
// are named and left untyped.
func foldModel(opset int64, nodes []pb, ins []pb, inits []pb, outs ...string) []byte {
	g := graphB{name: "g", nodes: nodes, ins: ins, inits: inits}
	for _, o := range outs {
		g.outs = append(g.outs, valueInfoPB(o, 0))
	}
	return modelPB(opset, g.pb())
}

// shapeNodes returns nodes computing from input x's shape: n = x.size(0)
// and c = x.size(1) as scalars.
func shapeNodes() []pb {
	return []pb{
		nodePB("shape", "Shape", []string{"x"}, []string{"s"}),
		nodePB("g0", "Gather", []string{"s", "zero"}, []string{"n"}, attrIntPB("axis", 0)),
		nodePB("g1", "Gather", []string{"s", "one"}, []string{"c"}, attrIntPB("axis", 0)),
	}
}

func shapeInits(more ...pb) []pb {
	return append([]pb{scalarI64("zero", 0), scalarI64("one", 1), i64s("axes0", []int64{1}, 0), i64s("minus1", []int64{1}, -1)}, more...)
}

// reshapeTo reshapes x to the 1-element vectors named by parts, concatenated.
func reshapeTo(parts ...string) []pb {
	var nodes []pb
	var vecs []string
	for _, p := range parts {
		u := "u_" + p
		nodes = append(nodes, nodePB(u, "Unsqueeze", []string{p, "axes0"}, []string{u}))
		vecs = append(vecs, u)
	}
	return append(nodes,
		nodePB("cat", "Concat", vecs, []string{"target"}, attrIntPB("axis", 0)),
		nodePB("r", "Reshape", []string{"x", "target"}, []string{"y"}))
}

func TestFoldShapeArithmetic(t *testing.T) {
	x := []pb{valueInfoPB("x", dtFloat, "N", 8, 6)}
	for _, tc := range []struct {
		name  string
		nodes []pb
		inits []pb
		want  string // the type of y, or an error substring
	}{
		// x.view(N * (8 // 2), -1): N*4.
		{"mul div", []pb{
			nodePB("half", "Div", []string{"c", "two"}, []string{"h"}),
			nodePB("nh", "Mul", []string{"n", "h"}, []string{"m"}),
		}, []pb{scalarI64("two", 2)}, "f32[N*4,12]"},
		// N*8/8 = N, N*8/2 = N*4.
		{"n*8/8", []pb{
			nodePB("m8", "Mul", []string{"n", "c"}, []string{"n8"}),
			nodePB("d8", "Div", []string{"n8", "eight"}, []string{"m"}),
		}, []pb{scalarI64("eight", 8)}, "f32[N,48]"},
		{"n*8/2", []pb{
			nodePB("m8", "Mul", []string{"n", "c"}, []string{"n8"}),
			nodePB("d2", "Div", []string{"n8", "two"}, []string{"m"}),
		}, []pb{scalarI64("two", 2)}, "f32[N*4,12]"},
		// (N + 8) - 8 = N, exact on the way.
		{"add sub", []pb{
			nodePB("a", "Add", []string{"n", "c"}, []string{"p"}),
			nodePB("s", "Sub", []string{"p", "c"}, []string{"m"}),
		}, nil, "f32[N,48]"},
		// N*6 mod 3 = 0; 8 mod 3 = 2: N*6 + 2*0 ... used as N*6 + 0.
		{"mod", []pb{
			nodePB("k", "Mul", []string{"n", "six"}, []string{"n6"}),
			nodePB("md", "Mod", []string{"n6", "three"}, []string{"z"}),
			nodePB("a", "Add", []string{"n6", "z"}, []string{"m"}),
		}, []pb{scalarI64("six", 6), scalarI64("three", 3)}, "f32[N*6,8]"},
		// Not exact for every N: refused where used, naming the node.
		{"n+1 refused", []pb{
			nodePB("inc", "Add", []string{"n", "one"}, []string{"m"}),
		}, nil, `node "inc" (Add) computed N+1, which is not a vector of sizes the IR can express`},
		{"n/3 refused", []pb{
			nodePB("third", "Div", []string{"n", "three"}, []string{"m"}),
		}, []pb{scalarI64("three", 3)}, `node "third" (Div) computes it at import time, and N / 3 is not exact for every batch size N`},
		{"n*n refused", []pb{
			nodePB("sq", "Mul", []string{"n", "n"}, []string{"m"}),
		}, nil, `node "sq" (Mul) computes it at import time, and N * N is not a size the IR can express`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nodes := append(shapeNodes(), tc.nodes...)
			nodes = append(nodes, reshapeTo("m", "minus1v")...)
			inits := shapeInits(append(tc.inits, scalarI64("minus1v", -1))...)
			data := foldModel(13, nodes, x, inits, "y")
			m, err := Import(data, Options{})
			if strings.HasPrefix(tc.want, "f32[") {
				if err != nil {
					t.Fatal(err)
				}
				m = mustImport(t, data, Options{})
				if got := m.Graph.Outputs[0].Type.String(); got != tc.want {
					t.Errorf("y is %s, want %s", got, tc.want)
				}
				if n := len(m.Graph.Nodes); n != 2 {
					t.Errorf("the shape arithmetic left %d nodes, want the input and the reshape:\n%s", n, graph.Format(m.Graph))
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	// A refused value that nothing uses is no error.
	nodes := append(shapeNodes(), nodePB("inc", "Add", []string{"n", "one"}, []string{"unused"}), nodePB("r", "Relu", []string{"x"}, []string{"y"}))
	if _, err := Import(foldModel(13, nodes, x, shapeInits(), "y"), Options{}); err != nil {
		t.Errorf("an unused N+1: %v", err)
	}
}

func TestFoldShapeSlice(t *testing.T) {
	// x.view(-1, *x.shape[1:]) written with Slice of Shape (refused before
	// even when the slice kept only concrete sizes).
	x := []pb{valueInfoPB("x", dtFloat, "N", 3, 4)}
	nodes := []pb{
		nodePB("shape", "Shape", []string{"x"}, []string{"s"}),
		nodePB("sl", "Slice", []string{"s", "st", "en"}, []string{"tail"}),
		nodePB("cat", "Concat", []string{"minus1", "tail"}, []string{"target"}, attrIntPB("axis", 0)),
		nodePB("r", "Reshape", []string{"x", "target"}, []string{"y"}),
		// And a slice keeping the batch: [N] ++ [12].
		nodePB("sl0", "Slice", []string{"s", "zero1", "one1"}, []string{"head"}),
		nodePB("cat2", "Concat", []string{"head", "twelve"}, []string{"t2"}, attrIntPB("axis", 0)),
		nodePB("r2", "Reshape", []string{"x", "t2"}, []string{"z"}),
	}
	inits := []pb{i64s("st", []int64{1}, 1), i64s("en", []int64{1}, 100), i64s("minus1", []int64{1}, -1),
		i64s("zero1", []int64{1}, 0), i64s("one1", []int64{1}, 1), i64s("twelve", []int64{1}, 12)}
	m := mustImport(t, foldModel(13, nodes, x, inits, "y", "z"), Options{})
	checkGraph(t, m, `
graph g {
  input %x: f32[N,3,4]
  %y = reshape %x {shape=[-1,3,4]} : f32[N,3,4]
  %z = reshape %x {shape=[N,12]} : f32[N,12]
  output %y, %z
}`)
}

func TestFoldComparisons(t *testing.T) {
	x := []pb{valueInfoPB("x", dtFloat, "N", 3)}
	// PyTorch's expand(-1, ...) pattern: where(shape == -1, 1, shape).
	nodes := []pb{
		nodePB("shape", "Shape", []string{"x"}, []string{"s"}),
		nodePB("eq", "Equal", []string{"s", "m1"}, []string{"e"}),
		nodePB("w", "Where", []string{"e", "ones", "s"}, []string{"target"}),
		nodePB("r", "Reshape", []string{"x", "target"}, []string{"y"}),
		// N*2 > N, N >= 1, not (N < 1): all true.
		nodePB("g0", "Gather", []string{"s", "zero"}, []string{"n"}, attrIntPB("axis", 0)),
		nodePB("n2", "Add", []string{"n", "n"}, []string{"twon"}),
		nodePB("gt", "Greater", []string{"twon", "n"}, []string{"b1"}),
		nodePB("lt", "Less", []string{"n", "onev"}, []string{"b2"}),
		nodePB("not", "Not", []string{"b2"}, []string{"b3"}),
		nodePB("and", "And", []string{"b1", "b3"}, []string{"b"}),
	}
	inits := []pb{i64s("m1", []int64{2}, -1, -1), i64s("ones", []int64{2}, 1, 1), scalarI64("zero", 0), scalarI64("onev", 1)}
	m := mustImport(t, foldModel(13, nodes, x, inits, "y", "b"), Options{})
	checkGraph(t, m, `
graph g {
  input %x: f32[N,3]
  %y = reshape %x {shape=[N,3]} : f32[N,3]
  const %b: bool[] = true
  output %y, %b
}`)
	// N == 5 is not decided at import time: refused where used.
	nodes = []pb{
		nodePB("shape", "Shape", []string{"x"}, []string{"s"}),
		nodePB("g0", "Gather", []string{"s", "zero"}, []string{"n"}, attrIntPB("axis", 0)),
		nodePB("eq5", "Equal", []string{"n", "five"}, []string{"e"}),
		nodePB("w", "Where", []string{"e", "x", "x"}, []string{"y"}),
	}
	_, err := Import(foldModel(13, nodes, x, []pb{scalarI64("zero", 0), scalarI64("five", 5)}, "y"), Options{})
	if want := `node "eq5" (Equal) computes it at import time, and N = 5 is not decided at import time: it depends on the batch size N`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error %v, want one containing %q", err, want)
	}
}

// TestFoldConstants folds each op on constants and checks the result.
func TestFoldConstants(t *testing.T) {
	m23 := tensorF32PB("m", []int64{2, 3}, 1, -2, 3, -4, 5, -6)
	for _, tc := range []struct {
		name  string
		opset int64
		node  pb
		inits []pb
		want  string // the printed const y
	}{
		{"constant of shape", 13, nodePB("c", "ConstantOfShape", []string{"s"}, []string{"y"}, attrTensorPB("value", tensorF32PB("", []int64{1}, 1.5))),
			[]pb{i64s("s", []int64{2}, 2, 3)}, "const %y: f32[2,3] = [1.5,1.5,1.5,1.5,1.5,1.5]"},
		{"constant of shape default", 13, nodePB("c", "ConstantOfShape", []string{"s"}, []string{"y"}),
			[]pb{i64s("s", []int64{1}, 2)}, "const %y: f32[2] = [0.0,0.0]"},
		{"range", 13, nodePB("r", "Range", []string{"a", "b", "d"}, []string{"y"}),
			[]pb{scalarI64("a", 1), scalarI64("b", 8), scalarI64("d", 3)}, "const %y: i64[3] = [1,4,7]"},
		{"range float", 13, nodePB("r", "Range", []string{"a", "b", "d"}, []string{"y"}),
			[]pb{tensorF32PB("a", nil, 0), tensorF32PB("b", nil, 1), tensorF32PB("d", nil, 0.25)}, "const %y: f32[4] = [0.0,0.25,0.5,0.75]"},
		{"mod python", 13, nodePB("m", "Mod", []string{"a", "b"}, []string{"y"}),
			[]pb{i64s("a", []int64{4}, 7, -7, 7, -7), i64s("b", []int64{4}, 3, 3, -3, -3)}, "const %y: i64[4] = [1,2,-2,-1]"},
		{"mod fmod", 13, nodePB("m", "Mod", []string{"a", "b"}, []string{"y"}, attrIntPB("fmod", 1)),
			[]pb{i64s("a", []int64{4}, 7, -7, 7, -7), i64s("b", []int64{4}, 3, 3, -3, -3)}, "const %y: i64[4] = [1,-1,1,-1]"},
		{"scatternd", 13, nodePB("s", "ScatterND", []string{"d", "i", "u"}, []string{"y"}),
			[]pb{i64s("d", []int64{2, 2}, 1, 2, 3, 4), i64s("i", []int64{1, 1}, 1), i64s("u", []int64{1, 2}, 9, 8)}, "const %y: i64[2,2] = [1,2,9,8]"},
		{"trilu upper", 14, nodePB("t", "Trilu", []string{"d"}, []string{"y"}),
			[]pb{i64s("d", []int64{3, 3}, 1, 1, 1, 1, 1, 1, 1, 1, 1)}, "const %y: i64[3,3] = [1,1,1,0,1,1,0,0,1]"},
		{"trilu lower k", 14, nodePB("t", "Trilu", []string{"d", "k"}, []string{"y"}, attrIntPB("upper", 0)),
			[]pb{i64s("d", []int64{2, 3}, 1, 1, 1, 1, 1, 1), scalarI64("k", -1)}, "const %y: i64[2,3] = [0,0,0,1,0,0]"},
		{"tile", 13, nodePB("t", "Tile", []string{"d", "r"}, []string{"y"}),
			[]pb{i64s("d", []int64{1, 2}, 1, 2), i64s("r", []int64{2}, 2, 2)}, "const %y: i64[2,4] = [1,2,1,2,1,2,1,2]"},
		{"expand", 13, nodePB("e", "Expand", []string{"d", "s"}, []string{"y"}),
			[]pb{i64s("d", []int64{2, 1}, 1, 2), i64s("s", []int64{2}, 2, 3)}, "const %y: i64[2,3] = [1,1,1,2,2,2]"},
		{"transpose", 13, nodePB("t", "Transpose", []string{"m"}, []string{"y"}), []pb{m23},
			"const %y: f32[3,2] = [1.0,-4.0,-2.0,5.0,3.0,-6.0]"},
		{"slice negative step", 13, nodePB("s", "Slice", []string{"m", "st", "en", "ax", "sp"}, []string{"y"}),
			[]pb{m23, i64s("st", []int64{1}, -1), i64s("en", []int64{1}, -100), i64s("ax", []int64{1}, 1), i64s("sp", []int64{1}, -2)},
			"const %y: f32[2,2] = [3.0,1.0,-6.0,-4.0]"},
		{"gather rows", 13, nodePB("g", "Gather", []string{"m", "i"}, []string{"y"}, attrIntPB("axis", 1)),
			[]pb{m23, i64s("i", []int64{2}, 2, -3)}, "const %y: f32[2,2] = [3.0,1.0,-6.0,-4.0]"},
		{"cast", 13, nodePB("c", "Cast", []string{"m"}, []string{"y"}, attrIntPB("to", dtInt64)), []pb{m23},
			"const %y: i64[2,3] = [1,-2,3,-4,5,-6]"},
		{"abs", 13, nodePB("a", "Abs", []string{"m"}, []string{"y"}), []pb{m23}, "const %y: f32[2,3] = [1.0,2.0,3.0,4.0,5.0,6.0]"},
		{"neg", 13, nodePB("a", "Neg", []string{"i"}, []string{"y"}), []pb{i64s("i", []int64{2}, 2, -3)}, "const %y: i64[2] = [-2,3]"},
		{"max", 13, nodePB("a", "Max", []string{"m", "z"}, []string{"y"}), []pb{m23, tensorF32PB("z", nil, 0)},
			"const %y: f32[2,3] = [1.0,0.0,3.0,0.0,5.0,0.0]"},
		{"min", 13, nodePB("a", "Min", []string{"m", "z"}, []string{"y"}), []pb{m23, tensorF32PB("z", []int64{3}, 0, 0, 0)},
			"const %y: f32[2,3] = [0.0,-2.0,0.0,-4.0,0.0,-6.0]"},
		{"reduce prod", 18, nodePB("r", "ReduceProd", []string{"i", "ax"}, []string{"y"}, attrIntPB("keepdims", 0)),
			[]pb{i64s("i", []int64{2, 3}, 1, 2, 3, 4, 5, 6), i64s("ax", []int64{1}, 1)}, "const %y: i64[2] = [6,120]"},
		{"reduce sum", 13, nodePB("r", "ReduceSum", []string{"m", "ax"}, []string{"y"}),
			[]pb{m23, i64s("ax", []int64{1}, 0)}, "const %y: f32[1,3] = [-3.0,3.0,-3.0]"},
		{"unsqueeze squeeze", 13, nodePB("u", "Squeeze", []string{"d"}, []string{"y"}),
			[]pb{i64s("d", []int64{1, 2, 1}, 4, 5)}, "const %y: i64[2] = [4,5]"},
		{"concat", 13, nodePB("c", "Concat", []string{"m", "m"}, []string{"y"}, attrIntPB("axis", 0)),
			[]pb{tensorF32PB("m", []int64{1, 2}, 1, 2)}, "const %y: f32[2,2] = [1.0,2.0,1.0,2.0]"},
		{"reshape", 13, nodePB("r", "Reshape", []string{"m", "s"}, []string{"y"}), []pb{m23, i64s("s", []int64{2}, -1, 2)},
			"const %y: f32[3,2] = [1.0,-2.0,3.0,-4.0,5.0,-6.0]"},
		{"where floats", 13, nodePB("w", "Where", []string{"c", "m", "z"}, []string{"y"}),
			[]pb{pb(nil).packed(tensorDims, 3).varint(tensorDataType, dtBool).str(tensorName, "c").packed(5, 1, 0, 1), m23, tensorF32PB("z", nil, 9)},
			"const %y: f32[2,3] = [1.0,9.0,3.0,-4.0,9.0,-6.0]"},
		{"float div", 13, nodePB("d", "Div", []string{"a", "b"}, []string{"y"}),
			[]pb{tensorF32PB("a", nil, 1), tensorF32PB("b", nil, 3)}, "const %y: f32[] = 0.3333333432674408"},
		{"integer div truncates", 13, nodePB("d", "Div", []string{"a", "b"}, []string{"y"}),
			[]pb{i64s("a", []int64{2}, 7, -7), scalarI64("b", 2)}, "const %y: i64[2] = [3,-3]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := mustImport(t, foldModel(tc.opset, []pb{tc.node}, nil, tc.inits, "y"), Options{})
			if text := graph.Format(m.Graph); !strings.Contains(text, tc.want) {
				t.Errorf("graph lacks %q:\n%s", tc.want, text)
			}
		})
	}
}

// TestFoldSwinMask builds a Swin-style attention mask from constants:
// window ids by Range, Mod and Div, compared pairwise: it folds to a const.
func TestFoldSwinMask(t *testing.T) {
	nodes := []pb{
		nodePB("r", "Range", []string{"zero", "four", "one"}, []string{"pos"}),
		nodePB("w", "Div", []string{"pos", "two"}, []string{"win"}),
		nodePB("u1", "Unsqueeze", []string{"win", "ax1"}, []string{"a"}),
		nodePB("u0", "Unsqueeze", []string{"win", "ax0"}, []string{"b"}),
		nodePB("eq", "Equal", []string{"a", "b"}, []string{"same"}),
		nodePB("wh", "Where", []string{"same", "zf", "minf"}, []string{"y"}),
	}
	inits := []pb{scalarI64("zero", 0), scalarI64("four", 4), scalarI64("one", 1), scalarI64("two", 2),
		i64s("ax0", []int64{1}, 0), i64s("ax1", []int64{1}, 1), tensorF32PB("zf", nil, 0), tensorF32PB("minf", nil, -100)}
	m := mustImport(t, foldModel(13, nodes, nil, inits, "y"), Options{})
	checkGraph(t, m, `
graph g {
  const %y: f32[4,4] = [0.0,0.0,-100.0,-100.0,0.0,0.0,-100.0,-100.0,-100.0,-100.0,0.0,0.0,-100.0,-100.0,0.0,0.0]
  output %y
}`)
}

// TestFoldConstantOfShapeOnBatch: ConstantOfShape and Expand to a shape
// that holds the batch are built on the value whose shape gave it, and stay
// batch-parallel.
func TestFoldConstantOfShapeOnBatch(t *testing.T) {
	for _, tc := range []struct {
		name  string
		x     pb
		nodes []pb
		inits []pb
		want  string // y's type
		opts  Options
	}{
		{"zeros [N,4]", valueInfoPB("x", dtInt64, "N", 7), []pb{
			nodePB("shape", "Shape", []string{"x"}, []string{"s"}),
			nodePB("g", "Gather", []string{"s", "zero1"}, []string{"n"}, attrIntPB("axis", 0)),
			nodePB("cat", "Concat", []string{"n", "four"}, []string{"t"}, attrIntPB("axis", 0)),
			nodePB("c", "ConstantOfShape", []string{"t"}, []string{"y"}, attrTensorPB("value", tensorI64PB("", []int64{1}, 3))),
		}, nil, "i64[N,4]", Options{}},
		{"ones [2,N*3] from [3,N]", valueInfoPB("x", dtFloat, 3, "N"), []pb{
			nodePB("shape", "Shape", []string{"x"}, []string{"s"}),
			nodePB("g", "Gather", []string{"s", "one1"}, []string{"n"}, attrIntPB("axis", 0)),
			nodePB("m", "Mul", []string{"n", "three"}, []string{"n3"}),
			nodePB("cat", "Concat", []string{"two", "n3"}, []string{"t"}, attrIntPB("axis", 0)),
			nodePB("c", "ConstantOfShape", []string{"t"}, []string{"y"}, attrTensorPB("value", tensorF32PB("", []int64{1}, 1))),
		}, nil, "f32[2,N*3]", Options{BatchAxes: map[string]int{"x": 1}}},
		{"expand a mask", valueInfoPB("x", dtFloat, "N", 5), []pb{
			nodePB("shape", "Shape", []string{"x"}, []string{"s"}),
			nodePB("g", "Gather", []string{"s", "zero1"}, []string{"n"}, attrIntPB("axis", 0)),
			nodePB("cat", "Concat", []string{"n", "one", "five", "five"}, []string{"t"}, attrIntPB("axis", 0)),
			nodePB("e", "Expand", []string{"mask", "t"}, []string{"y"}),
		}, []pb{tensorF32PB("mask", []int64{1, 1, 5, 5}, seq(25)...)}, "f32[N,1,5,5]", Options{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inits := append([]pb{i64s("zero1", []int64{1}, 0), i64s("one1", []int64{1}, 1), i64s("four", []int64{1}, 4),
				i64s("two", []int64{1}, 2), i64s("three", []int64{1}, 3), i64s("one", []int64{1}, 1), i64s("five", []int64{1}, 5)}, tc.inits...)
			m := mustImport(t, foldModel(13, tc.nodes, []pb{tc.x}, inits, "y"), tc.opts)
			y := m.Graph.Outputs[0]
			t.Logf("%s", graph.Format(m.Graph))
			if got := y.Type.String(); got != tc.want {
				t.Fatalf("y is %s, want %s:\n%s", got, tc.want, graph.Format(m.Graph))
			}
			a, err := replicate.Analyze(m.Graph, replicate.BatchNormRefuse)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range m.Graph.Nodes {
				if v := a.Of(n); v.Placement == replicate.Merged {
					t.Errorf("%%%s (%s) needs the whole batch:\n%s", n.Name, n.Op, graph.Format(m.Graph))
				}
			}
			if v := a.Of(y); v.Placement != replicate.Replicated {
				t.Errorf("y is %s, want replicated:\n%s", v.Placement, graph.Format(m.Graph))
			}
		})
	}
}

func TestImportDims(t *testing.T) {
	model := func(dims ...any) []byte {
		return foldModel(13, []pb{nodePB("r", "Relu", []string{"x"}, []string{"y"})},
			[]pb{valueInfoPB("x", dtFloat, dims...)}, nil, "y")
	}
	for _, tc := range []struct {
		name string
		data []byte
		opts Options
		want string // x's type or an error substring
	}{
		{"named unbound", model("batch", "sequence", 4), Options{},
			`onnx: input "x": dimension 1 is named "sequence", and only the batch axis may be dynamic: bind it with --dim sequence=SIZE`},
		{"named", model("batch", "sequence", 4), Options{DimParams: map[string]int64{"sequence": 128}}, "f32[N,128,4]"},
		{"named twice in one input", model("batch", "s", "s"), Options{DimParams: map[string]int64{"s": 3}}, "f32[N,3,3]"},
		{"unnamed unbound", model("batch", nil, 4), Options{},
			`onnx: input "x": dimension 1 is dynamic, and only the batch axis may be dynamic: bind it with --dim x:1=SIZE`},
		{"unnamed", model("batch", nil, 4), Options{InputDims: map[string]map[int]int64{"x": {1: 16000}}}, "f32[N,16000,4]"},
		{"unnamed negative axis", model("batch", 4, nil), Options{InputDims: map[string]map[int]int64{"x": {-1: 5}}}, "f32[N,4,5]"},
		{"unknown name", model("batch", 4), Options{DimParams: map[string]int64{"seq": 3}},
			`dimension "seq" is given a size, but no input has a dimension of that name (named dimensions: "batch")`},
		{"unknown input", model("batch", 4), Options{InputDims: map[string]map[int]int64{"z": {1: 3}}},
			`a dimension size is given for "z", which is not an input of the model`},
		{"axis out of range", model("batch", 4), Options{InputDims: map[string]map[int]int64{"x": {2: 3}}},
			`a size is given for axis 2 of input "x", which has rank 2`},
		{"conflicts with a concrete size", model("batch", 4), Options{InputDims: map[string]map[int]int64{"x": {1: 3}}},
			`axis 1 is given size 3, but it has size 4`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Import(tc.data, tc.opts)
			if strings.HasPrefix(tc.want, "f32[") {
				if err != nil {
					t.Fatal(err)
				}
				if got := m.Graph.Inputs()[0].Type.String(); got != tc.want {
					t.Errorf("x is %s, want %s", got, tc.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// ifModel is an If on cond (computed by nodes) choosing relu(x) or neg(x).
func ifModel(nodes []pb, ins []pb, inits []pb) []byte {
	then := graphB{name: "then", nodes: []pb{nodePB("relu", "Relu", []string{"x"}, []string{"a"})}, outs: []pb{valueInfoPB("a", 0)}}
	els := graphB{name: "else", nodes: []pb{
		nodePB("neg", "Neg", []string{"x"}, []string{"b0"}),
		nodePB("abs", "Abs", []string{"b0"}, []string{"b"}),
	}, outs: []pb{valueInfoPB("b", 0)}}
	nodes = append(nodes, nodePB("if", "If", []string{"cond"}, []string{"y"}, attrGraphPB("then_branch", then.pb()), attrGraphPB("else_branch", els.pb())))
	return foldModel(13, nodes, ins, inits, "y")
}

func TestImportIf(t *testing.T) {
	x := valueInfoPB("x", dtFloat, "N", 3)
	sr := valueInfoPB("sr", dtInt64)
	byRate := []pb{nodePB("eq", "Equal", []string{"sr", "rate"}, []string{"cond"})}
	rate := []pb{scalarI64("rate", 16000)}
	for _, tc := range []struct {
		name  string
		data  []byte
		opts  Options
		want  string // a line of the graph, or an error substring
		error bool
	}{
		{"then by a value", ifModel(byRate, []pb{x, sr}, rate), Options{Scalars: map[string]float64{"sr": 16000}}, "%y = relu %x : f32[N,3]", false},
		{"else by a value", ifModel(byRate, []pb{x, sr}, rate), Options{Scalars: map[string]float64{"sr": 8000}}, "%y = abs %b0 : f32[N,3]", false},
		{"by a shape", ifModel([]pb{
			nodePB("shape", "Shape", []string{"x"}, []string{"s"}),
			nodePB("g", "Gather", []string{"s", "one"}, []string{"c"}, attrIntPB("axis", 0)),
			nodePB("eq", "Equal", []string{"c", "three"}, []string{"cond"}),
		}, []pb{x}, []pb{scalarI64("one", 1), scalarI64("three", 3)}), Options{}, "%y = relu %x : f32[N,3]", false},
		{"run-time condition", ifModel(byRate, []pb{x, sr}, rate), Options{},
			`onnx: node "if" (If, opset 13): the condition "cond" is computed at run time from input "sr" (i64[]), so the If cannot be folded at import time; bind it with --value sr=V`, true},
		{"batch-dependent condition", ifModel([]pb{
			nodePB("shape", "Shape", []string{"x"}, []string{"s"}),
			nodePB("g", "Gather", []string{"s", "zero"}, []string{"n"}, attrIntPB("axis", 0)),
			nodePB("eq", "Equal", []string{"n", "one"}, []string{"cond"}),
		}, []pb{x}, []pb{scalarI64("zero", 0), scalarI64("one", 1)}), Options{},
			`the condition is not known at import time: input 0 "cond": node "eq" (Equal) computes it at import time, and N = 1 is not decided at import time`, true},
		{"value not an integer", ifModel(byRate, []pb{x, sr}, rate), Options{Scalars: map[string]float64{"sr": 1.5}},
			`the value for input "sr": expected an integer for i64, found 1.5`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Import(tc.data, tc.opts)
			if tc.error {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("error %v, want one containing %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			m = mustImport(t, tc.data, tc.opts)
			if text := graph.Format(m.Graph); !strings.Contains(text, tc.want) {
				t.Errorf("graph lacks %q:\n%s", tc.want, text)
			}
			if strings.Contains(graph.Format(m.Graph), "input %sr") {
				t.Errorf("the bound input is still an input:\n%s", graph.Format(m.Graph))
			}
		})
	}
	// Loop is refused.
	loop := foldModel(13, []pb{nodePB("loop", "Loop", []string{"", "c"}, []string{"y"}, attrGraphPB("body", graphB{name: "b"}.pb()))},
		[]pb{valueInfoPB("c", dtBool)}, nil, "y")
	if _, err := Import(loop, Options{}); err == nil || !strings.Contains(err.Error(), `node "loop" (Loop, opset 13): Loop is not supported`) {
		t.Errorf("Loop: %v", err)
	}
}

// TestFoldLargeConstantOfShape: a ConstantOfShape too large to fold is an
// expand of its value.
func TestFoldLargeConstantOfShape(t *testing.T) {
	data := foldModel(13, []pb{nodePB("c", "ConstantOfShape", []string{"s"}, []string{"y"}, attrTensorPB("value", tensorF32PB("", []int64{1}, 2)))},
		nil, []pb{i64s("s", []int64{2}, 2048, 1024)}, "y")
	m := mustImport(t, data, Options{})
	checkGraph(t, m, `
graph g {
  const %y_value: f32[] = 2.0
  %y = expand %y_value {shape=[2048,1024]} : f32[2048,1024]
  output %y
}`)
}

// TestFoldEmpty: an empty slice of a constant folds on (joined with
// others it disappears), but refuses where used as a value.
func TestFoldEmpty(t *testing.T) {
	inits := []pb{i64s("d", []int64{4}, 1, 2, 3, 4), i64s("st", []int64{1}, 3), i64s("en", []int64{1}, 1), i64s("st2", []int64{1}, 1), i64s("en2", []int64{1}, 3)}
	nodes := []pb{
		nodePB("empty", "Slice", []string{"d", "st", "en"}, []string{"e"}),
		nodePB("part", "Slice", []string{"d", "st2", "en2"}, []string{"p"}),
		nodePB("cat", "Concat", []string{"e", "p"}, []string{"y"}, attrIntPB("axis", 0)),
	}
	m := mustImport(t, foldModel(13, nodes, nil, inits, "y"), Options{})
	checkGraph(t, m, `
graph g {
  const %y: i64[2] = [2,3]
  output %y
}`)
	_, err := Import(foldModel(13, nodes, nil, inits, "e"), Options{})
	if want := `node "empty" (Slice) computed an empty tensor (shape [0]), which the IR cannot hold`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error %v, want one containing %q", err, want)
	}
}

// TestDropoutRatioZero: training-mode Dropout at ratio 0 is the identity.
func TestDropoutRatioZero(t *testing.T) {
	x := []pb{valueInfoPB("x", dtFloat, "N", 3)}
	node := nodePB("d", "Dropout", []string{"x", "r", "tm"}, []string{"y"})
	bools := pb(nil).varint(tensorDataType, dtBool).str(tensorName, "tm").packed(5, 1) // int32_data
	m := mustImport(t, foldModel(14, []pb{node}, x, []pb{tensorF32PB("r", nil, 0), bools}, "y"), Options{})
	checkGraph(t, m, `
graph g {
  input %x: f32[N,3]
  output %x
}`)
	_, err := Import(foldModel(14, []pb{node}, x, []pb{tensorF32PB("r", nil, 0.5), bools}, "y"), Options{})
	if err == nil || !strings.Contains(err.Error(), "training_mode must be false for inference (or the ratio 0)") {
		t.Errorf("ratio 0.5 in training mode: %v", err)
	}
}

// TestFoldKeepsWeights: an op on a weight (a float initializer larger than
// a const) is not folded: the weight stays the one param a trainer updates.
func TestFoldKeepsWeights(t *testing.T) {
	w := tensorF32PB("w", []int64{4, 5}, seq(20)...)
	m := mustImport(t, foldModel(13, []pb{nodePB("t", "Transpose", []string{"w"}, []string{"y"})}, nil, []pb{w}, "y"), Options{})
	checkGraph(t, m, `
graph g {
  param %w: f32[4,5]
  %y = transpose %w {perm=[1,0]} : f32[5,4]
  output %y
}`)
}
