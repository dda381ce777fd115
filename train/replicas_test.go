package train_test

import (
	"context"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gorgonia.org/tensor"

	"multigpu/graph"
	"multigpu/passes/replicate"
	"multigpu/runtime"
	"multigpu/runtime/host"
	"multigpu/tensorio"
	"multigpu/train"
)

// TestReplicasAgree trains every classifier for 20 steps of batch 7 (a
// last batch of 2, smaller than 3 or 4 replicas) with every optimizer on
// 2, 3 and 4 replicas, with combinations on the replicas (auto and
// allreduce), and reads every param, batchnorm statistic and optimizer
// state back from every device that keeps one: each replica holds its
// own resident copy, and the copies are the same bits. After the first
// step, a step moves only the input shares (and the batch size, a mean's
// count) from the host, and the loss and the flag to it.
func TestReplicasAgree(t *testing.T) {
	const steps, batch, samples = 20, 7, 58
	ns := []int{2, 3, 4}
	combines := []replicate.CombineMode{replicate.CombineAuto, replicate.CombineAllreduce}
	if testing.Short() {
		ns, combines = []int{3}, combines[1:]
	}
	for _, model := range classifiers {
		for _, opt := range optimizers {
			t.Run(model+"/"+opt.Kind, func(t *testing.T) {
				g := loadModel(t, model, graph.F64)
				arrays := randomData(g, samples, 5)
				for _, n := range ns {
					for _, m := range combines {
						cfg := train.Config{Optimizer: opt, Seed: 9, GPUs: []int{0, 1, 2, 3}[:n], Combine: m}
						tr := newTrainerSeed(t, g, cfg, 11)
						data, err := tr.NewDataset(arrays)
						if err != nil {
							t.Fatal(err)
						}
						for e := 0; tr.Steps() < steps; e++ {
							for _, idx := range train.Batches(train.Order(cfg.Seed, e, data.Len()), batch, false) {
								if tr.Steps() == steps {
									break
								}
								if _, err := tr.Step(context.Background(), data.Batch(idx)); err != nil {
									t.Fatal(err)
								}
								if tr.Steps() > 1 {
									checkStepTraffic(t, tr, data.Batch(idx), n)
								}
							}
						}
						copies, err := tr.DeviceCopies()
						if err != nil {
							t.Fatal(err)
						}
						checkCopies(t, copies, n, opt.Kind, len(tr.Training().Grads)+len(tr.Training().Stats))
					}
				}
			})
		}
	}
}

// checkStepTraffic checks what the last step moved: from the host, the
// input shares and copies of scalars (a mean's count); to it, the loss
// and the flag, from one replica.
func checkStepTraffic(t *testing.T, tr *train.Trainer, batch map[string]*tensor.Dense, n int) {
	t.Helper()
	var in int64
	for _, v := range batch {
		dt, _ := host.DTypeOf(v)
		in += int64(v.Shape().TotalSize()) * dt.Size()
	}
	tt := tr.Traffic()
	if tt.FromMerge < in || tt.FromMerge > in+int64(n)*8*16 {
		t.Fatalf("step %d: %d bytes from the host, want the %d of the input shares and a few scalars (%s)", tr.Steps(), tt.FromMerge, in, tt)
	}
	if tt.ToMerge != 8+1 {
		t.Fatalf("step %d: %d bytes to the host, want the loss and the flag (9) (%s)", tr.Steps(), tt.ToMerge, tt)
	}
}

// checkCopies checks that every entry has a copy on each of the n
// replicas, all the same bits, and that the entries are the trained
// params and statistics and the optimizer's state.
func checkCopies(t *testing.T, copies map[string]map[graph.Device]*tensor.Dense, n int, kind string, params int) {
	t.Helper()
	want := params
	switch kind {
	case train.Momentum:
		want += params // velocities (and a statistic's none: fewer)
	case train.Adam:
		want += 2*params + 1 // moments, and the step count
	}
	if kind == train.SGD && len(copies) != want || kind != train.SGD && (len(copies) > want || len(copies) <= params) {
		t.Errorf("%d entries read back, want %d", len(copies), want)
	}
	for name, byDev := range copies {
		if len(byDev) != n {
			t.Errorf("%s: %d copies, want one on each of %d replicas", name, len(byDev), n)
			continue
		}
		var first []float64
		var at graph.Device
		for d, v := range byDev {
			if d.Kind != graph.GPU {
				t.Errorf("%s: a copy on %s, not a replica", name, d)
			}
			vs := host.Float64s(v)
			if first == nil {
				first, at = vs, d
				continue
			}
			for i := range vs {
				if math.Float64bits(vs[i]) != math.Float64bits(first[i]) {
					t.Errorf("%s[%d] = %v on %s, %v on %s", name, i, vs[i], d, first[i], at)
					break
				}
			}
		}
	}
	if steps, ok := copies["steps"]; ok {
		for d, v := range steps {
			if s := host.Float64s(v)[0]; s != 20 {
				t.Errorf("Adam's step count on %s is %v, want 20", d, s)
			}
		}
	}
}

func newTrainerSeed(t *testing.T, g *graph.Graph, cfg train.Config, seed uint64) *train.Trainer {
	t.Helper()
	tr, err := train.New(g, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.SetWeights(runtime.RandomParams(g, seed)); err != nil {
		t.Fatal(err)
	}
	return tr
}

// The step graph says which value updates which param and state, and
// prints and parses back to itself; replicated, each replica's copy is
// updated on its own device.
func TestStepGraph(t *testing.T) {
	g := loadModel(t, "mlp_classifier", graph.F64)
	for _, c := range []struct {
		cfg  train.Config
		want []string
	}{
		{train.Config{Optimizer: train.Optimizer{Kind: train.Adam}}, []string{
			"%w1.assign = assign %w1, %w1.next : f64[12,16]",
			"%opt.m.w1.assign = assign %opt.m.w1, %opt.m.w1.next : f64[12,16]",
			"%opt.steps.assign = assign %opt.steps, %opt.steps.next : f64[]",
			"%opt.ok = equal %opt.finite_4, %opt.f64.0 : bool[]",
			"output %loss, %opt.ok",
		}},
		{train.Config{GPUs: []int{0, 1}, Optimizer: train.Optimizer{Kind: train.Momentum}}, []string{
			"%w1.r1 = copy %w1 : f64[12,16] @gpu:1",
			"%w1.assign.r0 = assign %w1.r0, %w1.next.r0 : f64[12,16] @gpu:0",
			"%w1.assign.r1 = assign %w1.r1, %w1.next.r1 : f64[12,16] @gpu:1",
			"%opt.velocity.w1.assign.r1 = assign %opt.velocity.w1.r1, %opt.velocity.w1.next.r1 : f64[12,16] @gpu:1",
		}},
		{train.Config{GPUs: []int{0, 1}, Combine: replicate.CombineMerge}, []string{
			"%w1.assign = assign %w1, %w1.next : f64[12,16] @cpu",
		}},
	} {
		tr, err := train.New(g, c.cfg)
		if err != nil {
			t.Fatal(err)
		}
		text := graph.Format(tr.Graph())
		for _, w := range c.want {
			if !strings.Contains(text, "  "+w+"\n") {
				t.Errorf("%+v: no line %q in\n%s", c.cfg, w, text)
			}
		}
		back, err := graph.Parse("step.graph", []byte(text))
		if err != nil {
			t.Fatal(err)
		}
		if graph.Format(back) != text {
			t.Error("the step graph does not print back to itself")
		}
	}
}

// TestParityAllreduce: one device and 2, 3 and 4 replicas with every
// combination an allreduce group agree within 1e-9 relative in f64, for
// every classifier and optimizer, and training resumed from a checkpoint
// under allreduce goes on with the same bits as an unbroken run, every
// replica's copies alike.
func TestParityAllreduce(t *testing.T) {
	const steps, batch, samples = 20, 7, 58
	ns := []int{2, 3, 4}
	if testing.Short() {
		ns = []int{2, 4}
	}
	for _, model := range classifiers {
		for _, opt := range optimizers {
			t.Run(model+"/"+opt.Kind, func(t *testing.T) {
				g := loadModel(t, model, graph.F64)
				arrays := randomData(g, samples, 5)
				want := trainSteps(t, g, train.Config{Optimizer: opt, Seed: 9}, arrays, steps, batch)
				for _, n := range ns {
					cfg := train.Config{Optimizer: opt, Seed: 9, GPUs: []int{0, 1, 2, 3}[:n], Combine: replicate.CombineAllreduce}
					got := trainSteps(t, g, cfg, arrays, steps, batch)
					if abs, rel, where, ok := maxDiff(want, got, 1e-9, 1e-12); !ok {
						t.Errorf("N=%d: weights differ from one device's beyond 1e-9 relative + 1e-12 absolute: max %.3g absolute, %.3g relative at %s", n, abs, rel, where)
					}
				}
			})
		}
	}
}

// TestResumeAllreduce: 2 epochs, a checkpoint, and 2 more epochs resumed
// from it by a new trainer on 3 replicas under allreduce give the bits of
// 4 epochs in a row, the moments read back from every replica alike.
func TestResumeAllreduce(t *testing.T) {
	g := loadModel(t, "bn_classifier", graph.F64)
	arrays := randomData(g, 45, 3)
	for _, kind := range []string{train.Momentum, train.Adam} {
		cfg := train.Config{GPUs: []int{0, 1, 2}, Combine: replicate.CombineAllreduce, Optimizer: train.Optimizer{Kind: kind, LR: 0.02}, Seed: 9}
		whole := newTrainer(t, g, cfg)
		data, err := whole.NewDataset(arrays)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := whole.Fit(context.Background(), data, train.FitConfig{Epochs: 4, Batch: 10}); err != nil {
			t.Fatal(err)
		}
		ckpt := filepath.Join(t.TempDir(), "w.npz")
		first := newTrainer(t, g, cfg)
		if _, err := first.Fit(context.Background(), data, train.FitConfig{Epochs: 2, Batch: 10, Checkpoint: ckpt}); err != nil {
			t.Fatal(err)
		}
		c, err := train.LoadCheckpoint(ckpt, -1)
		if err != nil {
			t.Fatal(err)
		}
		second := newTrainer(t, g, cfg)
		if err := second.SetWeights(c.Weights); err != nil {
			t.Fatal(err)
		}
		if note, err := second.SetState(c.State); err != nil || note != "" {
			t.Fatalf("SetState: %q, %v", note, err)
		}
		if _, err := second.Fit(context.Background(), data, train.FitConfig{Epochs: 2, Batch: 10}); err != nil {
			t.Fatal(err)
		}
		want, got := whole.Weights(), second.Weights()
		ws, gs := whole.State(), second.State()
		for name, v := range ws {
			want[name], got[name] = v, gs[name]
		}
		for _, name := range slices.Sorted(func(yield func(string) bool) {
			for k := range want {
				if !yield(k) {
					return
				}
			}
		}) {
			a, b := host.Float64s(want[name]), host.Float64s(got[name])
			if !slices.EqualFunc(a, b, func(x, y float64) bool { return math.Float64bits(x) == math.Float64bits(y) }) {
				t.Errorf("%s: %s resumed differs from one run", kind, name)
			}
		}
		copies, err := second.DeviceCopies()
		if err != nil {
			t.Fatal(err)
		}
		checkCopiesAlike(t, copies, 3)
		// The checkpoint holds the model's params under their own names.
		saved, err := tensorio.ReadArchive(ckpt)
		if err != nil {
			t.Fatal(err)
		}
		for name := range saved {
			if p := g.Lookup(name); p == nil || p.Op != graph.OpParam {
				t.Errorf("the checkpoint holds %q, not a param of the model", name)
			}
		}
	}
}

// checkCopiesAlike checks that every entry has n copies, all the same
// bits.
func checkCopiesAlike(t *testing.T, copies map[string]map[graph.Device]*tensor.Dense, n int) {
	t.Helper()
	for name, byDev := range copies {
		if len(byDev) != n {
			t.Errorf("%s: %d copies, want %d", name, len(byDev), n)
		}
		var first []float64
		for _, v := range byDev {
			vs := host.Float64s(v)
			if first != nil && !slices.EqualFunc(vs, first, func(x, y float64) bool { return math.Float64bits(x) == math.Float64bits(y) }) {
				t.Errorf("%s: the copies differ", name)
			}
			first = vs
		}
	}
}
