//go:build cgo

package gpu

import (
	"context"
	"fmt"
	"runtime/debug"
	"testing"
	"time"

	"gorgonia.org/tensor"

	"multigpu/graph"
	"multigpu/onnx"
	"multigpu/onnx/corpus"
	"multigpu/passes/replicate"
	"multigpu/runtime"
	"multigpu/runtime/gpu/gputest"
)

// corpusRoot is the corpus of PyTorch exports (onnx/corpus), relative to
// this package.
const corpusRoot = "../../testdata/corpus"

// corpusBatches are the batch sizes of the corpus's reference data.
var corpusBatches = []string{"1", "7"}

// inexactOps are the ops whose GPU results may differ from the CPU
// backend's (the README: products and convolutions sum in another order,
// exp, log, tanh, sigmoid, softmax, pow and erf come from CUDA's
// double-precision functions); every other op gives the same bits.
var inexactOps = map[string]bool{
	"matmul": true, "conv2d": true, "conv2d_grad_input": true, "conv2d_grad_weight": true,
	"exp": true, "log": true, "tanh": true, "sigmoid": true, "softmax": true, "log_softmax": true,
	"pow": true, "erf": true,
}

// TestCorpus runs every model of the corpus that onnx/corpus expects to
// pass on the GPU backend over the host emulation. The original graph runs
// on one emulated GPU at batch 1 and 7 and must agree with PyTorch's
// outputs within the manifest's tolerance (1e-5 absolute plus 1e-4
// relative) and with the CPU backend within the GPU's tolerance for
// products. Rewritten for 2 GPUs (merging on the host) and for 3 (merging
// on gpu:0), on two emulated GPUs whose streams run with random delays, it
// must agree with the original on one GPU bit for bit, except outputs that
// depend on an op the GPU computes inexactly (inexactOps) placed on the
// host, which must agree within the tolerance for products. Under -short
// it runs the smallest model of each family.
func TestCorpus(t *testing.T) {
	m, err := corpus.ReadManifest(corpusRoot)
	if err != nil {
		t.Fatal(err)
	}
	var models []corpus.Entry
	for _, e := range m.Models {
		if e.Expect == "pass" {
			models = append(models, e)
		} else {
			t.Logf("%s: not run: onnx/corpus does not expect it to pass (%s)", e.Name, e.Expect)
		}
	}
	if testing.Short() {
		models = smallestPerFamily(models)
	}
	for _, e := range models {
		t.Run(e.Name, func(t *testing.T) {
			start := time.Now()
			corpusModel(t, e)
			t.Logf("%s: %.1fs", e.Name, time.Since(start).Seconds())
		})
	}
}

// smallestPerFamily keeps the smallest model (in bytes) of each family, in
// the order of the families' first models.
func smallestPerFamily(models []corpus.Entry) []corpus.Entry {
	return corpus.PerFamily(models, func(e, kept corpus.Entry) bool { return e.Bytes < kept.Bytes })
}

// corpusModel runs one corpus model on the emulated GPUs (TestCorpus).
func corpusModel(t *testing.T, e corpus.Entry) {
	defer func() {
		if p := recover(); p != nil {
			t.Fatalf("panic: %v\n%s", p, debug.Stack())
		}
	}()
	m, err := e.Import(corpusRoot, e.Dims)
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	feeds := map[string]map[string]*tensor.Dense{}
	want := map[string]map[string]*tensor.Dense{}
	for _, b := range corpusBatches {
		if feeds[b], want[b], err = e.Load(corpusRoot, m, b); err != nil {
			t.Fatal(err)
		}
	}
	// The original graph on one emulated GPU, against PyTorch.
	drv := newHostDriver("host GPU 0")
	hd := newHostDevices(t, drv)
	hd.cpuOnGPU = true
	ex, err := newCorpusExecutor(m, m.Graph, hd.device)
	if err != nil {
		t.Fatalf("the original graph on the GPU backend: %v", err)
	}
	orig := map[string]map[string]*tensor.Dense{}
	for _, b := range corpusBatches {
		got, err := ex.Run(context.Background(), feeds[b])
		if err != nil {
			t.Errorf("batch %s on one GPU: %v", b, err)
			continue
		}
		orig[b] = got
		if err := corpus.CompareOutputs(m, got, want[b], e.Atol, e.Rtol); err != nil {
			t.Errorf("batch %s on one GPU against PyTorch: %v", b, err)
		}
	}
	// The original graph on the CPU backend: the GPU within the corpus's
	// tolerance (a whole model's sums of products, in another order in
	// each backend, differ by more than one op's bound where they cancel).
	cex, err := newCorpusExecutor(m, m.Graph, nil)
	if err != nil {
		t.Fatalf("the original graph on the CPU backend: %v", err)
	}
	for _, b := range corpusBatches {
		got, err := cex.Run(context.Background(), feeds[b])
		if err != nil {
			t.Errorf("batch %s on the CPU backend: %v", b, err)
			continue
		}
		if orig[b] == nil {
			continue
		}
		if err := corpus.CompareOutputs(m, orig[b], got, e.Atol, e.Rtol); err != nil {
			t.Errorf("batch %s on one GPU against the CPU backend: %v", b, err)
		}
	}
	for _, l := range corpusLayouts {
		corpusRewrite(t, m, l, feeds, orig)
	}
	if _, allocs := drv.stats(); allocs == 0 {
		t.Errorf("the original graph allocated no memory on the emulated GPU: it did not run there")
	}
}

// corpusLayout is a rewrite of the corpus's models and the emulated GPUs it
// runs on.
type corpusLayout struct {
	name string
	opts replicate.Options
	// drivers is the number of emulated physical GPUs (gpu:K runs on
	// driver K mod drivers), whose streams run with random delays.
	drivers int
}

// corpusLayouts: 2 GPUs merging on the host (as --gpus 2 runs), and 3
// logical GPUs on 2 physical ones merging on gpu:0, so that every op, the
// slices and concatenations included, runs on an emulated GPU.
var corpusLayouts = []corpusLayout{
	{name: "2 GPUs", opts: replicate.Options{GPUs: gputest.GPUs(2)}, drivers: 2},
	{name: "3 GPUs merging on gpu:0", opts: replicate.Options{GPUs: gputest.GPUs(3), Merge: graph.GPUDevice(0)}, drivers: 2},
}

// corpusRewrite runs m rewritten by l against the original graph's
// outputs on one emulated GPU, orig. A graph whose batch is bound is
// rewritten per batch size, which rebinds it.
func corpusRewrite(t *testing.T, m *onnx.Model, l corpusLayout, feeds, orig map[string]map[string]*tensor.Dense) {
	_, bound := m.Graph.Batch()
	var ex *runtime.Executor
	var tols map[string]gputest.Tolerance
	for _, b := range corpusBatches {
		if ex == nil || bound > 0 {
			opts := l.opts
			if bound > 0 {
				fmt.Sscan(b, &opts.Batch)
			}
			rg, _, err := replicate.Rewrite(m.Graph, opts)
			if err != nil {
				t.Errorf("rewrite for %s: %v", l.name, err)
				return
			}
			tols = outputTolerances(rg)
			var drivers []*hostDriver
			for i := range l.drivers {
				d := newHostDriver(fmt.Sprintf("host GPU %d", i))
				d.jitter = true
				drivers = append(drivers, d)
			}
			if ex, err = newCorpusExecutor(m, rg, newHostDevices(t, drivers...).device); err != nil {
				t.Errorf("the graph rewritten for %s on the GPU backend: %v", l.name, err)
				return
			}
		}
		if orig[b] == nil {
			continue
		}
		got, err := ex.Run(context.Background(), feeds[b])
		if err != nil {
			t.Errorf("batch %s on %s: %v", b, l.name, err)
			continue
		}
		for _, o := range m.Outputs {
			if err := gputest.Compare(orig[b][o.IR], got[o.IR], tols[o.IR]); err != nil {
				t.Errorf("batch %s on %s against one GPU: output %s (%s): %v", b, l.name, o.ONNX, tolName(tols[o.IR]), err)
			}
		}
	}
}

// newCorpusExecutor compiles g for devices (nil: the CPU backend) with its
// params from model m (g is m.Graph or a rewrite of it).
// An op the GPU backend refuses (an element type it does not run) fails
// here, naming the node.
func newCorpusExecutor(m *onnx.Model, g *graph.Graph, devices gputest.Devices) (*runtime.Executor, error) {
	ex, err := runtime.New(g, runtime.Options{Devices: devices})
	if err != nil {
		return nil, err
	}
	if err := ex.SetParams(m.ParamsOf(g)); err != nil {
		return nil, err
	}
	return ex, nil
}

// outputTolerances returns, for each output of a rewritten graph, how
// closely it must match the original graph run on one GPU: Products when
// it depends on an inexact op (inexactOps) that runs on the host, where
// the CPU backend computes it, else Bits.
func outputTolerances(g *graph.Graph) map[string]gputest.Tolerance {
	inexact := make([]bool, len(g.Nodes))
	for i, n := range g.Nodes {
		inexact[i] = inexactOps[n.Op] && n.Device.Kind == graph.CPU
		for _, a := range n.Args {
			inexact[i] = inexact[i] || inexact[a.ID]
		}
	}
	tols := map[string]gputest.Tolerance{}
	for _, o := range g.Outputs {
		if inexact[o.ID] {
			tols[o.Name] = gputest.Products
		}
	}
	return tols
}

func tolName(t gputest.Tolerance) string {
	return map[gputest.Tolerance]string{gputest.Bits: "bit for bit", gputest.Rounding: "within rounding", gputest.Products: "within the tolerance of products"}[t]
}
