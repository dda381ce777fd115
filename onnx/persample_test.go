package onnx

import (
	"slices"
	"strings"
	"testing"

	"gorgonia.org/tensor"
)

// perSamplePB returns a model over x f32[3,2] whose nodes read t, a
// constant f32[3,2] given as an initializer or, with constNode, as a
// Constant node's output.
func perSamplePB(constNode bool, nodes ...pb) []byte {
	t := tensorF32PB("t", []int64{3, 2}, 1, 2, 3, 4, 5, 6)
	g := graphB{name: "g", nodes: nodes,
		ins:  []pb{valueInfoPB("x", dtFloat, 3, 2)},
		outs: []pb{valueInfoPB("y", 0)}}
	if constNode {
		g.nodes = append([]pb{nodePB("c", "Constant", nil, []string{"t"}, attrTensorPB("value", t))}, nodes...)
	} else {
		g.inits = []pb{t}
	}
	return modelPB(13, g.pb())
}

// With the batch bound, a constant with one row per sample that meets the
// batch in an elementwise op is an input carrying the batch, its data the
// input's default, which Bind fills in.
func TestImportPerSample(t *testing.T) {
	batch := Options{BatchAxes: map[string]int{"x": 0}}
	for _, constNode := range []bool{false, true} {
		data := perSamplePB(constNode, nodePB("m", "Mul", []string{"t", "x"}, []string{"y"}))
		m := mustImport(t, data, batch)
		checkGraph(t, m, `
graph g {
  input %x: f32[N=3,2]
  input %t: f32[N=3,2]
  %y = mul %t, %x : f32[N=3,2]
  output %y
}`)
		if len(m.Weights) != 0 {
			t.Errorf("weights %v, want none", m.Weights)
		}
		if want := []Binding{{IR: "x", ONNX: "x"}, {IR: "t", ONNX: "t"}}; !equalBindings(m.Inputs, want) {
			t.Errorf("inputs %v, want %v", m.Inputs, want)
		}
		d := m.Defaults["t"]
		if d == nil || !slices.Equal(d.Data().([]float32), []float32{1, 2, 3, 4, 5, 6}) {
			t.Errorf("default of %%t: %v, want the constant's data", d)
		}
		if len(m.Notes) != 1 || !strings.Contains(m.Notes[0], `"t"`) || !strings.Contains(m.Notes[0], "imported as input %t carrying the batch") {
			t.Errorf("notes %q, want one naming t", m.Notes)
		}
		// The test data has one input_N.pb, for x; Bind adds t.
		x := tensor.New(tensor.WithShape(3, 2), tensor.WithBacking(make([]float32, 6)))
		feeds, err := m.Bind([]*tensor.Dense{x})
		if err != nil || feeds["x"] != x || feeds["t"] != d {
			t.Errorf("Bind: %v, %v", feeds, err)
		}

		// Without a batch, t stays a param (or a const).
		m = mustImport(t, data, Options{})
		if p := m.Graph.Lookup("t"); p == nil || p.Op == "input" || len(m.Defaults) != 0 {
			t.Errorf("without a batch: %%t is %v, defaults %v; want a constant and none", p, m.Defaults)
		}
	}
}

// Constants that do not fail to broadcast, or that read anything but the
// aligned batch, stay params or keep the plain import's error.
func TestImportPerSampleNot(t *testing.T) {
	batch := Options{BatchAxes: map[string]int{"x": 0}}
	// A [B,K] weight feeding MatMul: a param.
	w := tensorF32PB("w", []int64{3, 4}, seq(12)...)
	data := modelPB(13, graphB{name: "g",
		nodes: []pb{nodePB("mm", "MatMul", []string{"x", "w"}, []string{"y"})},
		inits: []pb{w},
		ins:   []pb{valueInfoPB("x", dtFloat, 3, 3)},
		outs:  []pb{valueInfoPB("y", 0)}}.pb())
	m := mustImport(t, data, batch)
	checkGraph(t, m, `
graph g {
  input %x: f32[N=3,3]
  param %w: f32[3,4]
  %y = matmul %x, %w : f32[N=3,4]
  output %y
}`)
	if len(m.Defaults) != 0 || len(m.Notes) != 0 {
		t.Errorf("defaults %v, notes %q; want none", m.Defaults, m.Notes)
	}

	for _, tc := range []struct {
		name string
		data []byte
		opts Options
		err  string
	}{
		// t is also a MatMul's weight: not one row per sample.
		{"also a weight", perSamplePB(false,
			nodePB("m", "Mul", []string{"t", "x"}, []string{"p"}),
			nodePB("tt", "Transpose", []string{"t"}, []string{"u"}),
			nodePB("mm", "MatMul", []string{"p", "u"}, []string{"y"})), batch,
			"mul: cannot broadcast f32[3,2] with f32[N=3,2]"},
		// The batch's size on another axis of t than the aligned one.
		{"other axis", modelPB(13, graphB{name: "g",
			nodes: []pb{nodePB("m", "Mul", []string{"t", "z"}, []string{"y"})},
			inits: []pb{tensorF32PB("t", []int64{3, 2}, seq(6)...)},
			ins:   []pb{valueInfoPB("z", dtFloat, 2, 3)},
			outs:  []pb{valueInfoPB("y", 0)}}.pb()), Options{BatchAxes: map[string]int{"z": 0}},
			"mul: cannot broadcast f32[3,2] with f32[N=2,3]"},
		// A dynamic batch: a constant has no size to match.
		{"dynamic batch", modelPB(13, graphB{name: "g",
			nodes: []pb{nodePB("m", "Mul", []string{"t", "x"}, []string{"y"})},
			inits: []pb{tensorF32PB("t", []int64{3, 2}, seq(6)...)},
			ins:   []pb{valueInfoPB("x", dtFloat, "N", 2)},
			outs:  []pb{valueInfoPB("y", 0)}}.pb()), Options{},
			"mul: cannot broadcast f32[3,2] with f32[N,2]"},
	} {
		_, err := Import(tc.data, tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.err)
		}
	}
}
