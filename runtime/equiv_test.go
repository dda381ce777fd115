package runtime_test

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gorgonia.org/tensor"

	"multigpu/graph"
	"multigpu/passes/replicate"
	"multigpu/runtime"
	"multigpu/runtime/host"
)

// Tolerance for outputs that pass through a reduction over the batch,
// whose partial results are combined in another order than one device
// sums them (f32; f64 is held to the same bound).
const (
	relTol = 1e-5
	absTol = 1e-7
)

func loadModel(t testing.TB, path string) *graph.Graph {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	g, err := graph.Parse(path, src)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func models(t testing.TB) []string {
	paths, err := filepath.Glob("../testdata/*.graph")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no models in ../testdata: %v", err)
	}
	return paths
}

func gpus(n int) []int {
	ids := make([]int, n)
	for i := range ids {
		ids[i] = i
	}
	return ids
}

// exact reports, per output of g, whether no reduction over the batch
// lies on its path (its value must then be bit-identical when replicated).
func exact(t testing.TB, g *graph.Graph, mode replicate.BatchNormMode) map[string]bool {
	an, err := replicate.Analyze(g, mode)
	if err != nil {
		t.Fatal(err)
	}
	reduced := make([]bool, len(g.Nodes))
	for i, n := range g.Nodes {
		f := an.Of(n).Flow
		reduced[i] = f == graph.BatchReduce || f == graph.BatchStats
		for _, a := range n.Args {
			reduced[i] = reduced[i] || reduced[a.ID]
		}
	}
	out := map[string]bool{}
	for _, o := range g.Outputs {
		out[o.Name] = !reduced[o.ID]
	}
	return out
}

func newExec(t testing.TB, g *graph.Graph, params map[string]*tensor.Dense) *runtime.Executor {
	t.Helper()
	e, err := runtime.New(g, runtime.Options{Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.SetParams(params); err != nil {
		t.Fatal(err)
	}
	return e
}

func run(t testing.TB, e *runtime.Executor, in map[string]*tensor.Dense) map[string]*tensor.Dense {
	t.Helper()
	out, err := e.Run(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// compare checks got against want: bit for bit when exact, else within
// the tolerance; NaNs must match NaNs.
func compare(want, got *tensor.Dense, exact bool) error {
	if !slices.Equal(want.Shape(), got.Shape()) {
		return fmt.Errorf("shape %v, want %v", got.Shape(), want.Shape())
	}
	w, g := host.Float64s(want), host.Float64s(got)
	for i := range w {
		a, b := w[i], g[i]
		if math.IsNaN(a) || math.IsNaN(b) {
			if math.IsNaN(a) != math.IsNaN(b) {
				return fmt.Errorf("element %d: %v, want %v", i, b, a)
			}
			continue
		}
		if exact {
			if math.Float64bits(a) != math.Float64bits(b) && !(a == 0 && b == 0) {
				return fmt.Errorf("element %d: %v, want %v bit for bit", i, b, a)
			}
			continue
		}
		if math.Abs(a-b) > absTol+relTol*math.Abs(a) {
			return fmt.Errorf("element %d: %v, want %v (difference %.3g)", i, b, a, math.Abs(a-b))
		}
	}
	return nil
}

// batches returns the batch sizes tested for n replicas.
func batches(n int, short bool) []int64 {
	bs := []int64{1, int64(n - 1), int64(n), int64(2*n + 1), 37, 512, 1024}
	if short {
		bs = []int64{1, int64(n - 1), int64(n), int64(2*n + 1), 37}
	}
	slices.Sort(bs)
	return slices.Compact(bs)
}

// TestEquivalence runs every testdata model on one device and rewritten
// for N replicas, on the same seeded inputs and weights, and compares the
// outputs: bit-identical on batch-parallel paths, within 1e-5 relative
// plus 1e-7 absolute through reductions over the batch. Both a symbolic
// rewrite (the batch resolved per call) and one bound to the batch are
// checked.
func TestEquivalence(t *testing.T) {
	ns := []int{2, 3, 4, 8}
	if testing.Short() {
		ns = []int{2, 3}
	}
	for _, path := range models(t) {
		name := strings.TrimSuffix(filepath.Base(path), ".graph")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			g := loadModel(t, path)
			if len(g.Devices()) > 0 {
				t.Skip("already placed")
			}
			mode := replicate.BatchNormSync
			want := exact(t, g, mode)
			params := runtime.RandomParams(g, 1)
			orig := newExec(t, g, params)
			_, bound := g.Batch()
			origOut := map[int64]map[string]*tensor.Dense{}
			inputs := map[int64]map[string]*tensor.Dense{}
			get := func(b int64) (map[string]*tensor.Dense, map[string]*tensor.Dense) {
				if inputs[b] == nil {
					in, err := runtime.RandomInputs(g, b, uint64(b))
					if err != nil {
						t.Fatal(err)
					}
					inputs[b], origOut[b] = in, run(t, orig, in)
				}
				return inputs[b], origOut[b]
			}
			for _, n := range ns {
				bs := batches(n, testing.Short())
				if bound > 0 {
					bs = []int64{bound}
				}
				sym, _, err := replicate.Rewrite(g, replicate.Options{GPUs: gpus(n), BatchNorm: mode})
				if err != nil {
					t.Fatalf("N=%d: %v", n, err)
				}
				symExec := newExec(t, sym, params)
				for _, b := range bs {
					in, wantOut := get(b)
					check := func(kind string, e *runtime.Executor) {
						got := run(t, e, in)
						for _, o := range g.Outputs {
							if err := compare(wantOut[o.Name], got[o.Name], want[o.Name]); err != nil {
								t.Errorf("N=%d batch=%d %s: output %%%s: %v", n, b, kind, o.Name, err)
							}
						}
					}
					check("symbolic", symExec)
					if bound == 0 && (b <= int64(2*n+1) || !testing.Short() && b == 37) {
						bg, _, err := replicate.Rewrite(g, replicate.Options{GPUs: gpus(n), BatchNorm: mode, Batch: b})
						if err != nil {
							t.Fatalf("N=%d batch=%d: %v", n, b, err)
						}
						check("bound", newExec(t, bg, params))
					}
				}
			}
			// Other layouts: the merge device a replica, the remainder
			// split.
			if bound > 0 {
				return
			}
			for _, c := range []struct {
				name string
				opts replicate.Options
			}{
				{"merge_gpu0", replicate.Options{GPUs: gpus(2), Merge: graph.GPUDevice(0), BatchNorm: mode}},
				{"remainder", replicate.Options{GPUs: gpus(3), Split: graph.Remainder, BatchNorm: mode}},
			} {
				rg, _, err := replicate.Rewrite(g, c.opts)
				if err != nil {
					t.Fatalf("%s: %v", c.name, err)
				}
				e := newExec(t, rg, params)
				bs := []int64{1, 2, 5, 37}
				if testing.Short() {
					bs = []int64{5}
				}
				for _, b := range bs {
					in, wantOut := get(b)
					got := run(t, e, in)
					for _, o := range g.Outputs {
						if err := compare(wantOut[o.Name], got[o.Name], want[o.Name]); err != nil {
							t.Errorf("%s batch=%d: output %%%s: %v", c.name, b, o.Name, err)
						}
					}
				}
			}
		})
	}
}

// The comparison is not vacuous: per-replica batchnorm statistics (what
// Keras computed) differ from one device's.
func TestEquivalenceDetectsPerReplicaStatistics(t *testing.T) {
	g := loadModel(t, "../testdata/batchnorm_train.graph")
	params := runtime.RandomParams(g, 1)
	rg, _, err := replicate.Rewrite(g, replicate.Options{GPUs: gpus(2), BatchNorm: replicate.BatchNormPerReplica})
	if err != nil {
		t.Fatal(err)
	}
	in, _ := runtime.RandomInputs(g, 7, 1)
	want := run(t, newExec(t, g, params), in)
	got := run(t, newExec(t, rg, params), in)
	o := g.Outputs[0].Name
	if err := compare(want[o], got[o], false); err == nil {
		t.Errorf("per-replica statistics agree with the whole batch's")
	}
}
