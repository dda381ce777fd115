package onnx

import (
	"strings"
	"testing"
)

// The LSTM and GRU converters' runs against PyTorch are in onnx/rnntest;
// these tests check what they refuse and how they read their inputs.

func attrStringsPB(name string, vs ...string) pb {
	b := pb(nil).str(attrName, name).varint(attrType, attrTypeStrings)
	for _, v := range vs {
		b = b.str(attrStrings, v)
	}
	return b
}

// tensorI32PB returns an INT32 TensorProto with int32_data.
func tensorI32PB(name string, dims []int64, data ...int64) pb {
	b := pb(nil).packed(tensorDims, dims...).varint(tensorDataType, dtInt32).str(tensorName, name)
	return b.packed(5, data...) // int32_data
}

// rnnModel is an LSTM or GRU node "rnn" over X [5, batch, 4] with hidden
// size 3, forward, as a model; extra names the node's inputs after X, W
// and R ("" for an absent one), defined by inits.
type rnnModel struct {
	op    string
	xDims []any
	extra []string
	inits []pb
	attrs []pb
}

func (m rnnModel) pb() []byte {
	gates := int64(4)
	if m.op == "GRU" {
		gates = 3
	}
	xDims := m.xDims
	if xDims == nil {
		xDims = []any{5, "batch", 4}
	}
	g := graphB{
		name:  "rnn",
		nodes: []pb{nodePB("rnn", m.op, append([]string{"x", "W", "R"}, m.extra...), []string{"y", "hn"}, m.attrs...)},
		inits: append([]pb{
			tensorF32PB("W", []int64{1, gates * 3, 4}, weights(int(gates)*12, 1)...),
			tensorF32PB("R", []int64{1, gates * 3, 3}, weights(int(gates)*9, 2)...),
		}, m.inits...),
		ins:  []pb{valueInfoPB("x", dtFloat, xDims...)},
		outs: []pb{valueInfoPB("y", 0), valueInfoPB("hn", 0)},
	}
	return modelPB(14, g.pb())
}

func TestRNNRefuses(t *testing.T) {
	cases := []struct {
		name string
		m    rnnModel
		opts Options
		want string
	}{
		{"activations", rnnModel{op: "LSTM", attrs: []pb{attrStringsPB("activations", "Relu", "Tanh", "Tanh")}},
			Options{}, "only the defaults (Sigmoid, Tanh, Tanh) are supported, found Relu, Tanh, Tanh"},
		{"activations per direction", rnnModel{op: "GRU", attrs: []pb{attrStringsPB("activations", "Sigmoid", "Tanh"), attrStringPB("direction", "bidirectional")}},
			Options{}, "only the defaults (Sigmoid, Tanh, Sigmoid, Tanh) are supported"},
		{"clip", rnnModel{op: "LSTM", attrs: []pb{attrFloatPB("clip", 3)}}, Options{}, "attribute clip is not supported"},
		{"input_forget", rnnModel{op: "LSTM", attrs: []pb{attrIntPB("input_forget", 1)}}, Options{}, "input_forget=1"},
		{"direction", rnnModel{op: "GRU", attrs: []pb{attrStringPB("direction", "sideways")}}, Options{}, `found "sideways"`},
		{"hidden_size", rnnModel{op: "GRU", attrs: []pb{attrIntPB("hidden_size", 4)}}, Options{}, "hidden_size is 4, but R f32[1,9,3] has hidden size 3"},
		{"W shape", rnnModel{op: "LSTM", xDims: []any{5, "batch", 6}}, Options{BatchAxes: map[string]int{"x": 1}}, "input 1 (W): expected f32[1,12,6], found f32[1,12,4]"},
		{"sequence_lens", rnnModel{op: "LSTM", extra: []string{"", "lens"}, inits: []pb{tensorI32PB("lens", []int64{3}, 5, 4, 5)}},
			Options{BatchAxes: map[string]int{"x": 1}}, "input 4 (sequence_lens) [5 4 5]: only sequence lengths equal to X's (5) are supported"},
		{"peepholes", rnnModel{op: "LSTM", extra: []string{"", "", "", "", "P"}, inits: []pb{tensorF32PB("P", []int64{1, 9}, weights(9, 3)...)}},
			Options{BatchAxes: map[string]int{"x": 1}}, "input 7 (P, the peepholes) is not supported unless it is zero"},
		{"symbolic sequence", rnnModel{op: "GRU", xDims: []any{"seq", 2, 4}}, Options{},
			"input 0 (X) f32[N,2,4]: the sequence length (axis 0) must be a concrete size, found N; the batch is on axis 1 (mark it with --batch-axis NAME=1)"},
		{"layout", rnnModel{op: "GRU", attrs: []pb{attrIntPB("layout", 2)}}, Options{}, "attribute layout: expected 0 or 1, found 2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opts := tc.opts
			if opts.BatchAxes == nil && tc.m.xDims == nil {
				opts.BatchAxes = map[string]int{"x": 1}
			}
			_, err := Import(tc.m.pb(), opts)
			if err == nil {
				t.Fatalf("imported, expected an error containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), `node "rnn" (`+tc.m.op) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, expected one naming node \"rnn\" (%s) and containing %q", err, tc.m.op, tc.want)
			}
		})
	}
}

// TestRNNAccepts checks the forms that import: default activations spelled
// out, sequence_lens equal to the sequence length, zero peepholes, and a
// zero initial state, which builds the same graph as an absent one.
func TestRNNAccepts(t *testing.T) {
	axes := Options{BatchAxes: map[string]int{"x": 1}}
	count := func(m rnnModel) int {
		t.Helper()
		im, err := Import(m.pb(), axes)
		if err != nil {
			t.Fatal(err)
		}
		return len(im.Graph.Nodes)
	}
	plain := count(rnnModel{op: "LSTM"})
	for name, m := range map[string]rnnModel{
		"activations":   {op: "LSTM", attrs: []pb{attrStringsPB("activations", "sigmoid", "tanh", "tanh")}},
		"sequence_lens": {op: "LSTM", extra: []string{"", "lens"}, inits: []pb{tensorI32PB("lens", []int64{2}, 5, 5)}},
		"zero P":        {op: "LSTM", extra: []string{"", "", "", "", "P"}, inits: []pb{tensorF32PB("P", []int64{1, 9}, make([]float32, 9)...)}},
		"zero h0":       {op: "LSTM", extra: []string{"", "", "h0"}, inits: []pb{tensorF32PB("h0", []int64{1, 2, 3}, make([]float32, 6)...)}},
	} {
		// The unused initializers become no params, so the graphs match
		// node for node.
		if got := count(m); got != plain {
			t.Errorf("%s: %d nodes, expected %d as without it", name, got, plain)
		}
	}
	// An initial state that is an input is read: step 0 gains its matmul
	// and add.
	m := rnnModel{op: "GRU", extra: []string{"", "", "h0"}}
	g := graphB{
		name:  "rnn",
		nodes: []pb{nodePB("rnn", "GRU", []string{"x", "W", "R", "", "", "h0"}, []string{"y", "hn"})},
		inits: []pb{tensorF32PB("W", []int64{1, 9, 4}, weights(36, 1)...), tensorF32PB("R", []int64{1, 9, 3}, weights(27, 2)...)},
		ins:   []pb{valueInfoPB("x", dtFloat, 5, "batch", 4), valueInfoPB("h0", dtFloat, 1, "batch", 3)},
		outs:  []pb{valueInfoPB("y", 0), valueInfoPB("hn", 0)},
	}
	im, err := Import(modelPB(14, g.pb()), Options{BatchAxes: map[string]int{"x": 1, "h0": 1}})
	if err != nil {
		t.Fatal(err)
	}
	if with, without := len(im.Graph.Nodes), count(rnnModel{op: "GRU"}); with <= without {
		t.Errorf("GRU with h0: %d nodes, without: %d; expected more with it", with, without)
	}
	// A constant that is not zero is refused.
	m.inits = []pb{tensorF32PB("h0", []int64{1, 2, 3}, weights(6, 4)...)}
	if _, err := Import(m.pb(), axes); err == nil || !strings.Contains(err.Error(), `input 5 (initial_h) "h0" is a constant that is not zero`) {
		t.Errorf("constant h0: error %v, expected one saying it is a constant that is not zero", err)
	}
}

// TestRNNOutputs checks the outputs' types: Y [S, D, N, H], Y_h [D, N, H].
func TestRNNOutputs(t *testing.T) {
	g := graphB{
		name:  "rnn",
		nodes: []pb{nodePB("rnn", "GRU", []string{"x", "W", "R"}, []string{"y", "hn"}, attrStringPB("direction", "bidirectional"))},
		inits: []pb{
			tensorF32PB("W", []int64{2, 9, 4}, weights(72, 1)...),
			tensorF32PB("R", []int64{2, 9, 3}, weights(54, 2)...),
		},
		ins:  []pb{valueInfoPB("x", dtFloat, 5, "batch", 4)},
		outs: []pb{valueInfoPB("y", 0), valueInfoPB("hn", 0)},
	}
	im, err := Import(modelPB(14, g.pb()), Options{BatchAxes: map[string]int{"x": 1}})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"f32[5,2,N,3]", "f32[2,N,3]"}
	for i, o := range im.Graph.Outputs {
		if got := o.Type.String(); got != want[i] {
			t.Errorf("output %d: %s, expected %s", i, got, want[i])
		}
	}
	if _, bound := im.Graph.Batch(); bound != 0 {
		t.Errorf("batch bound to %d, expected symbolic", bound)
	}
}
