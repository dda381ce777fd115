//go:build cgo

package gpu

import (
	"context"
	"math"
	"math/rand/v2"
	"os"
	"testing"

	"gorgonia.org/tensor"

	"multigpu/graph"
	"multigpu/passes/replicate"
	"multigpu/runtime"
	"multigpu/runtime/host"
	"multigpu/train"
)

// TestOptimizerOnDevices trains the MLP classifier with every optimizer
// on 3 replicas served by two emulated GPUs whose streams run with
// random delays, under --combine allreduce: the optimizer's step runs on
// the GPUs (the all-finite flag, pow for Adam's bias corrections, the
// gated updates), and each replica's assigns make its own device buffers
// the params and moments of the next step. Read back from every replica,
// the copies are the same bits, and they agree with the CPU backend's.
func TestOptimizerOnDevices(t *testing.T) {
	src, err := os.ReadFile("../../testdata/mlp_classifier.graph")
	if err != nil {
		t.Fatal(err)
	}
	g, err := graph.Parse("mlp_classifier.graph", src)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(3, 4))
	x, tg := make([]float64, 30*12), make([]float64, 30*3)
	for i := range x {
		x[i] = 2*r.Float64() - 1
	}
	for i := range 30 {
		tg[i*3+r.IntN(3)] = 1
	}
	arrays := map[string]*tensor.Dense{"x": host.New([]int{30, 12}, x), "t": host.New([]int{30, 3}, tg)}
	kinds := []string{train.SGD, train.Momentum, train.Adam}
	if testing.Short() {
		kinds = kinds[2:]
	}
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			var weights []map[string]*tensor.Dense
			for _, onGPU := range []bool{false, true} {
				cfg := train.Config{GPUs: []int{0, 1, 2}, Combine: replicate.CombineAllreduce, Optimizer: train.Optimizer{Kind: kind, LR: 0.02}, Seed: 5}
				if onGPU {
					a, b := newHostDriver("host GPU 0"), newHostDriver("host GPU 1")
					a.jitter, b.jitter = true, true
					cfg.Runtime.Devices = newHostDevices(t, a, b).device
				}
				tr, err := train.New(g, cfg)
				if err != nil {
					t.Fatal(err)
				}
				if err := tr.SetWeights(runtime.RandomParams(g, 2)); err != nil {
					t.Fatal(err)
				}
				data, err := tr.NewDataset(arrays)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := tr.Fit(context.Background(), data, train.FitConfig{Epochs: 3, Batch: 8}); err != nil {
					t.Fatal(err)
				}
				copies, err := tr.DeviceCopies()
				if err != nil {
					t.Fatal(err)
				}
				for name, byDev := range copies {
					if len(byDev) != 3 {
						t.Errorf("%s: %d copies, want one per replica", name, len(byDev))
					}
					var first []float64
					for d, v := range byDev {
						vs := host.Float64s(v)
						for i := range first {
							if math.Float64bits(vs[i]) != math.Float64bits(first[i]) {
								t.Errorf("gpu %v: %s[%d] = %v on %s, another replica has %v", onGPU, name, i, vs[i], d, first[i])
								break
							}
						}
						first = vs
					}
				}
				weights = append(weights, tr.Weights())
			}
			for name, w := range weights[0] {
				a, b := host.Float64s(w), host.Float64s(weights[1][name])
				for i := range a {
					if d := math.Abs(a[i] - b[i]); !(d <= 1e-9*math.Abs(a[i])+1e-12) {
						t.Errorf("%s[%d] = %v on the GPUs, %v on CPU workers", name, i, b[i], a[i])
						break
					}
				}
			}
		})
	}
}
