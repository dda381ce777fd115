package gputest

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"gorgonia.org/tensor"

	"multigpu/graph"
	"multigpu/runtime"
	"multigpu/runtime/host"
	"multigpu/train"
)

// Classifiers are the testdata models with a loss that Training trains.
var classifiers = []string{"mlp_classifier", "cnn_classifier", "bn_classifier"}

// Training trains every classifier of dir (f64, Adam, dropout and
// batchnorm in training mode) for a few steps on the CPU backend as one
// device, and as each layout places it on its devices, and compares the
// weights: within 1e-9 relative plus 1e-12 absolute (matrix products sum
// in another order; the rest of the forward and backward pass is bit for
// bit the CPU backend's).
func Training(t *testing.T, dir string, layouts []Layout) {
	const steps, batch, samples = 5, 7, 30
	for _, name := range classifiers {
		t.Run(name, func(t *testing.T) {
			src, err := os.ReadFile(filepath.Join(dir, name+".graph"))
			if err != nil {
				t.Skipf("no %s in %s: %v", name, dir, err)
			}
			g, err := graph.Parse(name+".graph", src)
			if err != nil {
				t.Fatal(err)
			}
			data := classes(g, samples, 5)
			opt := train.Optimizer{Kind: train.Adam, LR: 0.01}
			want := trainSteps(t, g, train.Config{Optimizer: opt, Seed: 9}, data, steps, batch)
			for _, l := range layouts {
				cfg := train.Config{Optimizer: opt, Seed: 9, GPUs: l.Options.GPUs, Merge: l.Options.Merge}
				cfg.Runtime.Devices = l.Devices(t)
				got := trainSteps(t, g, cfg, data, steps, batch)
				if err := closeWeights(want, got, 1e-9, 1e-12); err != nil {
					t.Errorf("%s: %v", l.Name, err)
				}
			}
		})
	}
}

// classes returns n samples for g's inputs: x uniform in [-1, 1), t
// one-hot of a random class.
func classes(g *graph.Graph, n int, seed uint64) map[string]*tensor.Dense {
	r := rand.New(rand.NewPCG(seed, 1))
	out := map[string]*tensor.Dense{}
	for _, in := range g.Inputs() {
		shape := []int{n}
		per := 1
		for _, d := range in.Type.Shape[1:] {
			shape = append(shape, int(d.Size))
			per *= int(d.Size)
		}
		data := make([]float64, n*per)
		for i := range n {
			if in.Name == "t" {
				data[i*per+r.IntN(per)] = 1
				continue
			}
			for j := range per {
				data[i*per+j] = 2*r.Float64() - 1
			}
		}
		out[in.Name] = host.New(shape, data)
	}
	return out
}

func trainSteps(t *testing.T, g *graph.Graph, cfg train.Config, arrays map[string]*tensor.Dense, steps, batch int) map[string]*tensor.Dense {
	t.Helper()
	tr, err := train.New(g, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.SetWeights(runtime.RandomParams(g, 11)); err != nil {
		t.Fatal(err)
	}
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
				t.Fatalf("step %d: %v", tr.Steps()+1, err)
			}
		}
	}
	return tr.Weights()
}

// closeWeights reports the first weight of got farther than rel·|want| +
// abs from want's.
func closeWeights(want, got map[string]*tensor.Dense, rel, abs float64) error {
	names := make([]string, 0, len(want))
	for name := range want {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		w, ok := host.Data(want[name]).([]float64)
		if !ok {
			return fmt.Errorf("%%%s: not f64", name)
		}
		g := host.Data(got[name]).([]float64)
		for i := range w {
			if d := math.Abs(w[i] - g[i]); !(d <= rel*math.Abs(w[i])+abs) {
				return fmt.Errorf("%%%s[%d] = %v, want %v (difference %.3g)", name, i, g[i], w[i], d)
			}
		}
	}
	return nil
}
