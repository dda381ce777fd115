package rnntest

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"gorgonia.org/tensor"

	"multigpu/graph"
	"multigpu/onnx"
	"multigpu/passes/replicate"
	"multigpu/runtime"
	"multigpu/tensorio"
)

// The repository's tests all accept -update (go test ./... -update); this
// package has no golden files to rewrite.
var _ = flag.Bool("update", false, "rewrite golden files (none in this package)")

// root holds the models, one directory each.
const root = "../testdata/rnn"

// Tolerances against the reference outputs, in f32.
const (
	atol = 1e-5
	rtol = 1e-4
)

// model is one directory of test data.
type model struct {
	name    string
	dir     string
	axes    map[string]int
	dims    map[string]int64
	inputs  []*tensor.Dense
	outputs []*tensor.Dense
}

func readModels(t *testing.T) []*model {
	t.Helper()
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	var out []*model
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		m := &model{name: e.Name(), dir: filepath.Join(root, e.Name())}
		data, err := os.ReadFile(filepath.Join(m.dir, "meta.json"))
		if err != nil {
			t.Fatal(err)
		}
		var meta struct {
			BatchAxes map[string]int   `json:"batch_axes"`
			Dims      map[string]int64 `json:"dims"`
		}
		if err := json.Unmarshal(data, &meta); err != nil {
			t.Fatalf("%s: %v", m.dir, err)
		}
		m.axes, m.dims = meta.BatchAxes, meta.Dims
		for _, kind := range []string{"input", "output"} {
			for k := 0; ; k++ {
				p := filepath.Join(m.dir, fmt.Sprintf("%s_%d.npy", kind, k))
				if _, err := os.Stat(p); err != nil {
					break
				}
				d, err := tensorio.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				if kind == "input" {
					m.inputs = append(m.inputs, d)
				} else {
					m.outputs = append(m.outputs, d)
				}
			}
		}
		out = append(out, m)
	}
	if len(out) < 8 {
		t.Fatalf("%d models under %s, expected 8 (run onnx/testdata/rnn/export.py)", len(out), root)
	}
	return out
}

// run compiles g, m's graph or a rewrite of it, on the CPU backend with
// m's weights and runs it.
func run(g *graph.Graph, m *onnx.Model, feeds map[string]*tensor.Dense) (map[string]*tensor.Dense, error) {
	ex, err := runtime.New(g, runtime.Options{})
	if err != nil {
		return nil, err
	}
	if err := ex.SetParams(m.ParamsOf(g)); err != nil {
		return nil, err
	}
	return ex.Run(context.Background(), feeds)
}

// identical reports the first element where a and b differ in their bits.
func identical(a, b *tensor.Dense) error {
	if fmt.Sprint(a.Shape()) != fmt.Sprint(b.Shape()) {
		return fmt.Errorf("shape %v, want %v", a.Shape(), b.Shape())
	}
	x, ok1 := a.Data().([]float32)
	y, ok2 := b.Data().([]float32)
	if !ok1 || !ok2 {
		return fmt.Errorf("expected f32 data, found %T and %T", a.Data(), b.Data())
	}
	for i := range x {
		if math.Float32bits(x[i]) != math.Float32bits(y[i]) {
			return fmt.Errorf("element %d: %g, want %g", i, x[i], y[i])
		}
	}
	return nil
}

// TestRNNModels imports every model (model.onnx as PyTorch exported it,
// and pruned.onnx, its variant with the zero initial states absent, where
// there is one), runs it against the reference outputs, checks the batch
// analysis and that the rewrites for 2 and 3 GPUs agree bit for bit. The
// zeros PyTorch computes for absent initial states must be recognised:
// model.onnx has no more matmuls than pruned.onnx.
func TestRNNModels(t *testing.T) {
	for _, m := range readModels(t) {
		files := []string{"model.onnx"}
		if _, err := os.Stat(filepath.Join(m.dir, "pruned.onnx")); err == nil {
			files = append(files, "pruned.onnx")
		}
		matmuls := map[string]int{}
		for _, f := range files {
			t.Run(m.name+"/"+f, func(t *testing.T) {
				im, err := onnx.ImportFile(filepath.Join(m.dir, f), onnx.Options{BatchAxes: m.axes, DimParams: m.dims})
				if err != nil {
					t.Fatal(err)
				}
				for _, n := range im.Graph.Nodes {
					if n.Op == "matmul" {
						matmuls[f]++
					}
				}
				checkModel(t, im, m)
			})
		}
		if len(files) > 1 && matmuls["model.onnx"] != matmuls["pruned.onnx"] {
			t.Errorf("%s: %d matmuls in model.onnx, %d in pruned.onnx: the zero initial states were not recognised", m.name, matmuls["model.onnx"], matmuls["pruned.onnx"])
		}
	}
}

func checkModel(t *testing.T, im *onnx.Model, m *model) {
	feeds, err := im.Bind(m.inputs)
	if err != nil {
		t.Fatal(err)
	}
	got, err := run(im.Graph, im, feeds)
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Outputs) != len(m.outputs) {
		t.Fatalf("%d outputs, the reference has %d", len(im.Outputs), len(m.outputs))
	}
	for k, o := range im.Outputs {
		if err := onnx.Compare(got[o.IR], m.outputs[k], atol, rtol); err != nil {
			t.Errorf("output %d (%s): %v", k, o.ONNX, err)
		}
	}
	// Every node that carries the batch stays on the replicas.
	a, err := replicate.Analyze(im.Graph, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range im.Graph.Nodes {
		if v := a.Of(n); v.Placement == replicate.Merged {
			t.Errorf("%%%s (%s) runs on the merge device (%s)", n.Name, n.Op, v.Flow)
		}
	}
	for _, gpus := range [][]int{{0, 1}, {0, 1, 2}} {
		g, _, err := replicate.Rewrite(im.Graph, replicate.Options{GPUs: gpus})
		if err != nil {
			t.Fatalf("rewrite for %d GPUs: %v", len(gpus), err)
		}
		rgot, err := run(g, im, feeds)
		if err != nil {
			t.Fatalf("rewritten for %d GPUs: %v", len(gpus), err)
		}
		for k, o := range im.Outputs {
			if err := identical(rgot[o.IR], got[o.IR]); err != nil {
				t.Errorf("rewritten for %d GPUs, output %d (%s): %v", len(gpus), k, o.ONNX, err)
			}
		}
	}
}

// TestRNNSize measures a 2-layer bidirectional LSTM (input 6, hidden 8)
// unrolled over 5 and 32 steps (lstm2_bidirectional's pruned model, whose
// sequence length is the named dimension seq): the IR's node count and the
// time to import it and to compile and run it, which it logs. It checks
// that the node count grows linearly with the sequence.
func TestRNNSize(t *testing.T) {
	dir := filepath.Join(root, "lstm2_bidirectional")
	x, err := tensorio.ReadFile(filepath.Join(dir, "input_0.npy"))
	if err != nil {
		t.Fatal(err)
	}
	seqs := []int{5, 32}
	if testing.Short() {
		seqs = seqs[:1]
	}
	counts := map[int]int{}
	for _, seq := range seqs {
		start := time.Now()
		m, err := onnx.ImportFile(filepath.Join(dir, "pruned.onnx"), onnx.Options{BatchAxes: map[string]int{"x": 1}, DimParams: map[string]int64{"seq": int64(seq)}})
		if err != nil {
			t.Fatal(err)
		}
		imported := time.Since(start)
		counts[seq] = len(m.Graph.Nodes)
		// The reference input's steps, repeated.
		s := x.Shape()
		src := x.Data().([]float32)
		xs := make([]float32, seq*s[1]*s[2])
		for i := range xs {
			xs[i] = src[i%len(src)]
		}
		feeds := map[string]*tensor.Dense{m.Inputs[0].IR: tensor.New(tensor.WithShape(seq, s[1], s[2]), tensor.WithBacking(xs))}
		start = time.Now()
		if _, err := run(m.Graph, m, feeds); err != nil {
			t.Fatal(err)
		}
		t.Logf("seq %d: %d IR nodes; import %v, compile and run (batch %d) %v",
			seq, counts[seq], imported.Round(time.Millisecond), s[1], time.Since(start).Round(time.Millisecond))
	}
	if len(seqs) < 2 {
		return
	}
	// Per step: up to 16 nodes for each of 2 layers and 2 directions.
	perStep := float64(counts[32]-counts[5]) / 27
	if perStep > 2*2*16 {
		t.Errorf("%.1f nodes per step, expected at most 64", perStep)
	}
}
