package train_test

import (
	"fmt"
	"math"
	"testing"

	"multigpu/graph"
	"multigpu/passes/replicate"
	"multigpu/runtime/host"
	"multigpu/train"
)

// TestParityCombines trains every classifier in f64 for 20 steps of
// batch 7 (a last batch of 2, smaller than 3 or 4 replicas) with every
// optimizer on 2, 3 and 4 replicas with the gradients and batchnorm
// statistics combined on the merge device and by allreduce groups: the
// weights are the same bits (and so agree with one device's as
// TestParity checks for the default combine).
func TestParityCombines(t *testing.T) {
	const steps, batch, samples = 20, 7, 58
	ns := []int{2, 3, 4}
	if testing.Short() {
		ns = []int{3}
	}
	for _, model := range classifiers {
		for _, opt := range optimizers {
			t.Run(model+"/"+opt.Kind, func(t *testing.T) {
				g := loadModel(t, model, graph.F64)
				arrays := randomData(g, samples, 5)
				for _, n := range ns {
					var ws []map[string]any
					for _, m := range []replicate.CombineMode{replicate.CombineMerge, replicate.CombineAllreduce} {
						cfg := train.Config{Optimizer: opt, Seed: 9, GPUs: []int{0, 1, 2, 3}[:n], Combine: m}
						w := map[string]any{}
						for name, v := range trainSteps(t, g, cfg, arrays, steps, batch) {
							w[name] = host.Float64s(v)
						}
						ws = append(ws, w)
					}
					if err := sameBitsWeights(ws[0], ws[1]); err != nil {
						t.Errorf("N=%d: --combine allreduce against merge: %v", n, err)
					}
				}
			})
		}
	}
}

func sameBitsWeights(want, got map[string]any) error {
	for name, w := range want {
		a, b := w.([]float64), got[name].([]float64)
		for i := range a {
			if math.Float64bits(a[i]) != math.Float64bits(b[i]) {
				return fmt.Errorf("%%%s[%d] = %v, want %v bit for bit", name, i, b[i], a[i])
			}
		}
	}
	return nil
}
