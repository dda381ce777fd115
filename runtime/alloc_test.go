package runtime_test

import (
	"context"
	"testing"

	"multigpu/graph"
	"multigpu/passes/replicate"
	"multigpu/runtime"
)

// After the first run, a run of the MLP benchmark model allocates fewer
// than 100 objects, on one device and rewritten for 2 replicas: the
// programs' intermediates live in their arenas, and what is allocated is
// the run's bookkeeping, the transfers between devices and the outputs.
func TestRunAllocationsNearZero(t *testing.T) {
	g, err := graph.Parse("bench_mlp.graph", []byte(benchMLP))
	if err != nil {
		t.Fatal(err)
	}
	params := runtime.RandomParams(g, 1)
	in, err := runtime.RandomInputs(g, 64, 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, replicas := range []int{1, 2} {
		rg := g
		if replicas > 1 {
			if rg, _, err = replicate.Rewrite(g, replicate.Options{GPUs: gpus(replicas)}); err != nil {
				t.Fatal(err)
			}
		}
		e, err := runtime.New(rg, runtime.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.SetParams(params); err != nil {
			t.Fatal(err)
		}
		run := func() {
			if _, err := e.Run(context.Background(), in); err != nil {
				t.Fatal(err)
			}
		}
		run()
		if a := testing.AllocsPerRun(5, run); a >= 100 {
			t.Errorf("%d replicas: %v allocations per run after the first, want fewer than 100", replicas, a)
		} else {
			t.Logf("%d replicas: %v allocations per run", replicas, a)
		}
	}
}
