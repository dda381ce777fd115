package train_test

import (
	"bytes"
	"context"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gorgonia.org/tensor"

	"multigpu/graph"
	"multigpu/runtime"
	"multigpu/runtime/host"
	"multigpu/tensorio"
	"multigpu/train"
)

// learnable returns n samples of the mlp_classifier's inputs whose class
// is the argmax of a fixed linear map of x: a task it can learn.
func learnable(n int, seed uint64) map[string]*tensor.Dense {
	r := rand.New(rand.NewPCG(seed, 2))
	proj := make([]float64, 12*3)
	for i := range proj {
		proj[i] = 2*r.Float64() - 1
	}
	x, tg := make([]float64, n*12), make([]float64, n*3)
	for i := 0; i < n; i++ {
		best, arg := math.Inf(-1), 0
		for c := 0; c < 3; c++ {
			s := 0.0
			for j := 0; j < 12; j++ {
				if c == 0 {
					x[i*12+j] = 2*r.Float64() - 1
				}
				s += x[i*12+j] * proj[j*3+c]
			}
			if s > best {
				best, arg = s, c
			}
		}
		tg[i*3+arg] = 1
	}
	return map[string]*tensor.Dense{"x": host.New([]int{n, 12}, x), "t": host.New([]int{n, 3}, tg)}
}

func newTrainer(t *testing.T, g *graph.Graph, cfg train.Config) *train.Trainer {
	t.Helper()
	tr, err := train.New(g, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.SetWeights(runtime.RandomParams(g, 1)); err != nil {
		t.Fatal(err)
	}
	return tr
}

// Fit learns (the loss falls epoch after epoch), checkpoints every epoch
// under the model's own param names, and the same run on two replicas
// reports the same losses.
func TestFit(t *testing.T) {
	g := loadModel(t, "mlp_classifier", graph.F64)
	dir := t.TempDir()
	var losses [][]float64
	for _, gpus := range [][]int{nil, {0, 1}} {
		tr := newTrainer(t, g, train.Config{GPUs: gpus, Optimizer: train.Optimizer{Kind: train.Adam, LR: 0.02}, Seed: 4})
		data, err := tr.NewDataset(learnable(203, 1))
		if err != nil {
			t.Fatal(err)
		}
		ckpt := filepath.Join(dir, "w.npz")
		steps := 0
		hist, err := tr.Fit(context.Background(), data, train.FitConfig{Epochs: 6, Batch: 32, Checkpoint: ckpt,
			Progress: func(p train.Progress) {
				steps++
				if p.Steps != 7 || p.Epochs != 6 || p.SamplesPerSec <= 0 {
					t.Errorf("progress %+v", p)
				}
			}})
		if err != nil {
			t.Fatal(err)
		}
		if steps != 6*7 || tr.Steps() != 42 {
			t.Errorf("%d progress calls, %d steps; want 42 (7 batches an epoch, the last of 11)", steps, tr.Steps())
		}
		var ls []float64
		for _, e := range hist {
			ls = append(ls, e.Loss)
			if e.Samples != 203 || e.Steps != 7 {
				t.Errorf("epoch %d: %d samples in %d steps, want 203 in 7", e.Epoch, e.Samples, e.Steps)
			}
		}
		if ls[len(ls)-1] > 0.6*ls[0] {
			t.Errorf("GPUs %v: losses %v: not learning", gpus, ls)
		}
		losses = append(losses, ls)
		saved, err := tensorio.ReadArchive(ckpt)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for name := range saved {
			names = append(names, name)
		}
		slices.Sort(names)
		if got := strings.Join(names, " "); got != "b1 b2 w1 w2" {
			t.Errorf("checkpoint holds %s, want the model's params b1 b2 w1 w2", got)
		}
		// The model as given loads the checkpoint.
		e, err := runtime.New(g, runtime.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.SetParams(saved); err != nil {
			t.Errorf("the original model does not load the checkpoint: %v", err)
		}
		w := tr.Weights()
		for name, s := range saved {
			if !slices.Equal(toF64(host.Data(s)), toF64(host.Data(w[name]))) {
				t.Errorf("checkpoint's %s differs from the trainer's", name)
			}
		}
	}
	for i := range losses[0] {
		if d := math.Abs(losses[0][i] - losses[1][i]); d > 1e-12*math.Abs(losses[0][i]) {
			t.Errorf("epoch %d: loss %v on one device, %v on two", i+1, losses[0][i], losses[1][i])
		}
	}
	t.Logf("losses per epoch: %v", losses[0])
}

func TestDropLast(t *testing.T) {
	g := loadModel(t, "mlp_classifier", graph.F64)
	tr := newTrainer(t, g, train.Config{})
	data, err := tr.NewDataset(learnable(70, 1))
	if err != nil {
		t.Fatal(err)
	}
	hist, err := tr.Fit(context.Background(), data, train.FitConfig{Epochs: 2, Batch: 32, DropLast: true})
	if err != nil {
		t.Fatal(err)
	}
	if hist[0].Samples != 64 || hist[0].Steps != 2 {
		t.Errorf("drop-last: %d samples in %d steps, want 64 in 2", hist[0].Samples, hist[0].Steps)
	}
	if b := train.Batches(train.Order(1, 0, 70), 32, false); len(b) != 3 || len(b[2]) != 6 {
		t.Errorf("batches of 70 by 32: %d, last %d; want 3, the last of 6", len(b), len(b[len(b)-1]))
	}
	// The order is a permutation, and another each epoch.
	a, b := train.Order(1, 0, 70), train.Order(1, 1, 70)
	if slices.Equal(a, b) {
		t.Error("epochs 0 and 1 have the same order")
	}
	slices.Sort(a)
	for i, v := range a {
		if v != i {
			t.Fatal("order is not a permutation")
		}
	}
}

// A NaN loss stops training with an error naming the epoch and step; the
// checkpoint of the last good epoch is left as it was. (Fit numbers epochs
// on from those the trainer has done: the failing one is epoch 2.)
func TestNaNLossKeepsCheckpoint(t *testing.T) {
	g := loadModel(t, "mlp_classifier", graph.F64)
	dir := t.TempDir()
	ckpt := filepath.Join(dir, "w.npz")
	tr := newTrainer(t, g, train.Config{GPUs: []int{0, 1}})
	good := learnable(40, 1)
	data, err := tr.NewDataset(good)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Fit(context.Background(), data, train.FitConfig{Epochs: 1, Batch: 16, Checkpoint: ckpt}); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(ckpt)
	if err != nil {
		t.Fatal(err)
	}
	x := slices.Clone(host.Data(good["x"]).([]float64))
	x[17*12+3] = math.NaN()
	bad, err := tr.NewDataset(map[string]*tensor.Dense{"x": host.New([]int{40, 12}, x), "t": good["t"]})
	if err != nil {
		t.Fatal(err)
	}
	_, err = tr.Fit(context.Background(), bad, train.FitConfig{Epochs: 2, Batch: 16, Checkpoint: ckpt})
	if err == nil || !strings.Contains(err.Error(), "epoch 2, step") || !strings.Contains(err.Error(), "the loss %loss is NaN") {
		t.Fatalf("got %v, want a NaN loss error naming the epoch and step", err)
	}
	after, err := os.ReadFile(ckpt)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Error("the checkpoint changed")
	}
	// A failed step changes no weight.
	weights := tr.Weights()
	steps := tr.Steps()
	if _, err := tr.Step(context.Background(), bad.Batch([]int{16, 17, 18})); err == nil {
		t.Fatal("no error from a batch with a NaN")
	}
	for name, w := range tr.Weights() {
		if !slices.Equal(toF64(host.Data(w)), toF64(host.Data(weights[name]))) {
			t.Errorf("%s changed", name)
		}
	}
	if tr.Steps() != steps {
		t.Errorf("the failed step counted")
	}
}

func TestDataErrors(t *testing.T) {
	g := loadModel(t, "cnn_classifier", graph.F32)
	tr := newTrainer(t, g, train.Config{})
	x := host.New([]int{5, 1, 8, 8}, make([]float64, 5*64))
	tg := host.New([]int{5, 10}, make([]int64, 50))
	for _, c := range []struct {
		name   string
		arrays map[string]*tensor.Dense
		want   string
	}{
		{"missing", map[string]*tensor.Dense{"x": x, "images": x}, `data: no array "t" for input %t: f32[N,10] (the data has "images", "x")`},
		{"shape", map[string]*tensor.Dense{"x": host.New([]int{5, 64}, make([]float64, 5*64)), "t": tg},
			`data: array "x" has shape [5,64], input %x expects f32[N,1,8,8] (the batch axis 0 (N) holding the samples)`},
		{"counts", map[string]*tensor.Dense{"x": x, "t": host.New([]int{4, 10}, make([]float32, 40))}, `data: arrays "x" and "t" hold 5 and 4 samples`},
		{"bool", map[string]*tensor.Dense{"x": x, "t": host.New([]int{5, 10}, make([]bool, 50))}, `data: array "t": elements of type []bool are not numbers`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := tr.NewDataset(c.arrays)
			if err == nil || err.Error() != c.want {
				t.Errorf("got %v\nwant %s", err, c.want)
			}
		})
	}
	// Numbers of other types are converted: f64 images, i64 targets.
	if _, err := tr.NewDataset(map[string]*tensor.Dense{"x": x, "t": tg}); err != nil {
		t.Error(err)
	}
}

func TestWeightErrors(t *testing.T) {
	g := loadModel(t, "mlp_classifier", graph.F64)
	tr, err := train.New(g, train.Config{GPUs: []int{0, 1}})
	if err != nil {
		t.Fatal(err)
	}
	w := runtime.RandomParams(g, 1)
	w["w1.r0"] = w["w1"]
	delete(w, "b2")
	w["w2"] = host.New([]int{3, 16}, make([]float64, 48))
	err = tr.SetWeights(w)
	want := "weights: param %w2: expected f64[16,3], given float64 [3,16]; param %b2: missing (expected f64[3]); param %w1.r0: the model has no such param"
	if err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
	if _, err := tr.Step(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "weights not set") {
		t.Errorf("step without weights: %v", err)
	}
	if _, err := train.New(g, train.Config{Optimizer: train.Optimizer{Kind: "rmsprop"}}); err == nil ||
		err.Error() != `optimizer: expected sgd, momentum or adam, found "rmsprop"` {
		t.Errorf("unknown optimizer: %v", err)
	}
}

// Batchnorm's running statistics follow the whole batch's and are saved
// with the weights; the inference graph uses them.
func TestRunningStatistics(t *testing.T) {
	g := loadModel(t, "bn_classifier", graph.F64)
	tr := newTrainer(t, g, train.Config{GPUs: []int{0, 1, 2}, BatchNormMomentum: 0.5})
	start := tr.Weights()
	data, err := tr.NewDataset(randomData(g, 9, 1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Step(context.Background(), data.Batch([]int{0, 1, 2, 3, 4, 5, 6, 7, 8})); err != nil {
		t.Fatal(err)
	}
	w := tr.Weights()
	for _, name := range []string{"mean", "var"} {
		if slices.Equal(toF64(host.Data(start[name])), toF64(host.Data(w[name]))) {
			t.Errorf("running %s unchanged", name)
		}
	}
	inf, err := train.InferenceGraph(g, "y")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range inf.Nodes {
		if n.Op == "batchnorm" && n.Attrs.Has("training") || n.Name == "loss" || n.Name == "t" {
			t.Errorf("inference graph keeps %%%s (%s)", n.Name, n.Op)
		}
	}
	e, err := runtime.New(inf, runtime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ps := map[string]*tensor.Dense{}
	for _, p := range inf.Params() {
		ps[p.Name] = w[p.Name]
	}
	if err := e.SetParams(ps); err != nil {
		t.Fatal(err)
	}
	out, err := e.Run(context.Background(), map[string]*tensor.Dense{"x": data.Batch([]int{0, 1})["x"]})
	if err != nil {
		t.Fatal(err)
	}
	if got := host.Shape(out["y"]); !slices.Equal(got, []int{2, 3}) {
		t.Errorf("predictions of shape %v", got)
	}
}

// A model whose batch is fixed trains at that batch, dropping the rest.
func TestBoundBatch(t *testing.T) {
	src, err := os.ReadFile("../testdata/mlp_classifier.graph")
	if err != nil {
		t.Fatal(err)
	}
	g, err := graph.Parse("bound.graph", bytes.Replace(src, []byte("input %x: f64[N,12]"), []byte("input %x: f64[N=8,12]"), 1))
	if err != nil {
		t.Fatal(err)
	}
	tr := newTrainer(t, g, train.Config{GPUs: []int{0, 1, 2}})
	data, err := tr.NewDataset(learnable(20, 1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Fit(context.Background(), data, train.FitConfig{Epochs: 1, Batch: 5}); err == nil ||
		err.Error() != "train: the model's batch is fixed at 8: train with batch 8, not 5" {
		t.Errorf("batch 5: %v", err)
	}
	hist, err := tr.Fit(context.Background(), data, train.FitConfig{Epochs: 1, Batch: 8})
	if err != nil {
		t.Fatal(err)
	}
	if hist[0].Samples != 16 {
		t.Errorf("%d samples, want 16", hist[0].Samples)
	}
}

// Backend sees the graph that runs, replicated, and its options are the
// ones the runtime uses.
func TestBackendHook(t *testing.T) {
	g := loadModel(t, "mlp_classifier", graph.F64)
	var devs []graph.Device
	tr := newTrainer(t, g, train.Config{GPUs: []int{0, 1}, Backend: func(rg *graph.Graph, opts runtime.Options) (runtime.Options, error) {
		devs = rg.Devices()
		opts.MemoryLimit = 1000
		return opts, nil
	}})
	if len(devs) != 3 {
		t.Errorf("Backend saw devices %v, want cpu, gpu:0 and gpu:1", devs)
	}
	data, err := tr.NewDataset(learnable(10, 1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Step(context.Background(), data.Batch([]int{0, 1, 2})); err == nil || !strings.Contains(err.Error(), "memory limit") {
		t.Errorf("step under a 1000-byte memory limit: %v", err)
	}
}
