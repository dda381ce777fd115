package conformance

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"gorgonia.org/tensor"

	"multigpu/graph"
	"multigpu/onnx"
	"multigpu/passes/replicate"
	"multigpu/runtime"
)

// run runs g, m's graph or a rewrite of it, with m's weights on the
// inputs. A graph the CPU backend cannot compile (an op or element type
// it lacks) is an errNoKernel.
func run(g *graph.Graph, m *onnx.Model, inputs map[string]*tensor.Dense) (map[string]*tensor.Dense, error) {
	ex, err := runtime.New(g, runtime.Options{})
	if err != nil {
		if strings.Contains(err.Error(), "not supported by the cpu backend") {
			return nil, errNoKernel{err}
		}
		return nil, err
	}
	if err := ex.SetParams(m.ParamsOf(g)); err != nil {
		return nil, err
	}
	return ex.Run(context.Background(), inputs)
}

// compareRun runs g as run does and compares its outputs, in order, with
// want, within atol + rtol*|want|.
func compareRun(g *graph.Graph, m *onnx.Model, feeds map[string]*tensor.Dense, want []*tensor.Dense, atol, rtol float64) error {
	got, err := run(g, m, feeds)
	if err != nil {
		return err
	}
	if len(want) != len(g.Outputs) {
		return fmt.Errorf("%d outputs, the test data has %d", len(g.Outputs), len(want))
	}
	for i, o := range g.Outputs {
		if err := onnx.Compare(got[o.Name], want[i], atol, rtol); err != nil {
			return fmt.Errorf("output %d (%%%s): %v", i, o.Name, err)
		}
	}
	return nil
}

// TestImportedModelsRewritten imports the models under ../testdata (a
// dynamic batch, or a concrete one marked with a batch axis), runs them
// with their own weights on random inputs, and checks that the rewrite for
// 2 and 3 GPUs computes the same outputs, at several batch sizes for a
// dynamic batch (including ones smaller than the GPU count).
func TestImportedModelsRewritten(t *testing.T) {
	for _, tc := range []struct {
		file    string
		opts    onnx.Options
		batches []int64
	}{
		{"mlp_dynamic.onnx", onnx.Options{}, []int64{1, 2, 5, 7}},
		{"cnn_dynamic.onnx", onnx.Options{}, []int64{1, 3, 8}},
		{"cnn_fixed.onnx", onnx.Options{BatchAxes: map[string]int{"input": 0}}, []int64{4}},
	} {
		m, err := onnx.ImportFile(filepath.Join("..", "testdata", tc.file), tc.opts)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range tc.batches {
			in, err := runtime.RandomInputs(m.Graph, b, uint64(b))
			if err != nil {
				t.Fatal(err)
			}
			want, err := run(m.Graph, m, in)
			if err != nil {
				t.Fatalf("%s, batch %d: %v", tc.file, b, err)
			}
			for _, gpus := range [][]int{{0, 1}, {0, 1, 2}} {
				g, _, err := replicate.Rewrite(m.Graph, replicate.Options{GPUs: gpus})
				if err != nil {
					t.Fatalf("%s: rewrite for %d GPUs: %v", tc.file, len(gpus), err)
				}
				got, err := run(g, m, in)
				if err != nil {
					t.Fatalf("%s, batch %d, %d GPUs: %v", tc.file, b, len(gpus), err)
				}
				for _, o := range m.Graph.Outputs {
					if err := onnx.Compare(got[o.Name], want[o.Name], 1e-6, 1e-5); err != nil {
						t.Errorf("%s, batch %d, %d GPUs: output %%%s: %v", tc.file, b, len(gpus), o.Name, err)
					}
				}
			}
		}
	}
}
