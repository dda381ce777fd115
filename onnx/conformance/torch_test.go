package conformance

import (
	"path/filepath"
	"testing"

	"multigpu/onnx"
	"multigpu/passes/replicate"
)

// Tolerances of the comparison with PyTorch's outputs (the issue's: 1e-5
// absolute plus 1e-4 relative in f32).
const (
	torchAtol = 1e-5
	torchRtol = 1e-4
)

// TestTorchOps runs the models of ../testdata/torch_ops (Resize,
// ConvTranspose, DepthToSpace and Pad as PyTorch exports them, or written
// with onnx.helper where PyTorch 1.13 computes the sizes at run time; see
// gen.py there) and compares their outputs with the ones PyTorch computed,
// as imported and rewritten for 2 and 3 GPUs with axis 0 as the batch.
func TestTorchOps(t *testing.T) {
	dirs, err := onnx.FindTestCases(filepath.Join("..", "testdata"), "torch_ops")
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) < 15 {
		t.Fatalf("found %d test cases under ../testdata/torch_ops, expected at least 15", len(dirs))
	}
	for _, dir := range dirs {
		name := filepath.Base(dir)
		m, opts, err := onnx.ImportTestCase(dir)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		tc, err := onnx.ReadTestCase(dir)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		ds := tc.Sets[0]
		feeds, err := m.Bind(ds.Inputs)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := compareRun(m.Graph, m, feeds, ds.Outputs, torchAtol, torchRtol); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		opts.BatchAxes = map[string]int{"x": 0}
		bm, err := onnx.ImportFile(tc.Model, opts)
		if err != nil {
			t.Errorf("%s with the batch marked: %v", name, err)
			continue
		}
		for _, gpus := range [][]int{{0, 1}, {0, 1, 2}} {
			g, _, err := replicate.Rewrite(bm.Graph, replicate.Options{GPUs: gpus})
			if err != nil {
				t.Errorf("%s: rewrite for %d GPUs: %v", name, len(gpus), err)
				continue
			}
			feeds, err := bm.Bind(ds.Inputs)
			if err == nil {
				err = compareRun(g, bm, feeds, ds.Outputs, torchAtol, torchRtol)
			}
			if err != nil {
				t.Errorf("%s rewritten for %d GPUs: %v", name, len(gpus), err)
			}
		}
	}
}
