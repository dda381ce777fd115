package runtime_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gorgonia.org/tensor"

	"multigpu/graph"
	"multigpu/lower"
	"multigpu/passes/replicate"
	"multigpu/runtime"
	"multigpu/runtime/host"
)

// collectiveOpCases: allreduce on one device, the elementwise combination
// of its operands left to right.
func collectiveOpCases() []opCase {
	r := rand.New(rand.NewPCG(11, 12))
	a, b, c := randArr(r, -2, 2, 3, 4), randArr(r, -2, 2, 3, 4), randArr(r, -2, 2, 3, 4)
	combine := func(f func(x, y float64) float64) func(in map[string]arr, dt graph.DType) arr {
		return func(in map[string]arr, dt graph.DType) arr {
			out := newArr(3, 4)
			for i := range out.data {
				v := in["a"].data[i]
				for _, name := range []string{"b", "c"} {
					v = f(v, in[name].data[i])
				}
				out.data[i] = v
			}
			return out
		}
	}
	in := map[string]arr{"a": a, "b": b, "c": c}
	src := func(op string) string {
		return "graph g {\n  input %a: {T}[3,4]\n  input %b: {T}[3,4]\n  input %c: {T}[3,4]\n  %y = allreduce %a, %b, %c" + op + "\n  output %y\n}\n"
	}
	return []opCase{
		{name: "allreduce_sum", src: src(""), inputs: in, tol: 1e-6,
			want: combine(func(x, y float64) float64 { return x + y })},
		{name: "allreduce_max", src: src(" {op=max}"), inputs: in, want: combine(math.Max)},
		{name: "allreduce_min", src: src(" {op=min}"), inputs: in, want: combine(math.Min)},
		{name: "allreduce_one", src: "graph g {\n  input %a: {T}[3,4]\n  %y = allreduce %a\n  output %y\n}\n",
			inputs: map[string]arr{"a": a}, want: func(in map[string]arr, dt graph.DType) arr { return in["a"] }},
	}
}

// TestCombinesAgree runs every testdata model rewritten with each combine
// (on the merge device, allreduce groups where the replicas use a
// combined value again, allreduce everywhere) on the same inputs: the
// outputs are the same bits, at batches smaller than, equal to and
// larger than the replica count, with the merge device a replica too.
func TestCombinesAgree(t *testing.T) {
	ns := []int{2, 3, 4}
	if testing.Short() {
		ns = []int{2, 3}
	}
	modes := []replicate.CombineMode{replicate.CombineMerge, replicate.CombineAuto, replicate.CombineAllreduce}
	for _, path := range models(t) {
		name := strings.TrimSuffix(filepath.Base(path), ".graph")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			g := loadModel(t, path)
			if len(g.Devices()) > 0 {
				t.Skip("already placed")
			}
			params := runtime.RandomParams(g, 1)
			_, bound := g.Batch()
			type layout struct {
				name string
				opts replicate.Options
			}
			var layouts []layout
			for _, n := range ns {
				layouts = append(layouts, layout{fmt.Sprintf("N=%d", n), replicate.Options{GPUs: gpus(n)}})
			}
			layouts = append(layouts, layout{"merge_gpu0", replicate.Options{GPUs: gpus(2), Merge: graph.GPUDevice(0)}})
			for _, l := range layouts {
				execs := make([]*runtime.Executor, len(modes))
				for i, m := range modes {
					opts := l.opts
					opts.Combine, opts.BatchNorm = m, replicate.BatchNormSync
					rg, _, err := replicate.Rewrite(g, opts)
					if err != nil {
						t.Fatalf("%s %s: %v", l.name, m, err)
					}
					execs[i] = newExec(t, rg, params)
				}
				n := len(l.opts.GPUs)
				bs := []int64{1, int64(n), int64(2*n + 1), 37}
				if bound > 0 {
					bs = []int64{bound}
				}
				for _, b := range bs {
					in, err := runtime.RandomInputs(g, b, uint64(b))
					if err != nil {
						t.Fatal(err)
					}
					want := run(t, execs[0], in)
					for i, e := range execs[1:] {
						got := run(t, e, in)
						for _, o := range g.Outputs {
							if err := sameBits(want[o.Name], got[o.Name]); err != nil {
								t.Errorf("%s batch=%d --combine %s: output %%%s: %v (against merge)", l.name, b, modes[i+1], o.Name, err)
							}
						}
					}
				}
			}
		})
	}
}

// sameBits checks that got holds want's bits (any NaN matching any NaN).
func sameBits(want, got *tensor.Dense) error {
	if !slices.Equal(want.Shape(), got.Shape()) {
		return fmt.Errorf("shape %v, want %v", got.Shape(), want.Shape())
	}
	w, g := host.Float64s(want), host.Float64s(got)
	for i := range w {
		if math.Float64bits(w[i]) != math.Float64bits(g[i]) && !(math.IsNaN(w[i]) && math.IsNaN(g[i])) {
			return fmt.Errorf("element %d: %v, want %v bit for bit", i, g[i], w[i])
		}
	}
	return nil
}

// TestTraffic: the bytes the executor counts moving in a run are those of
// the lowered plan's transfers (resident ones in the first run only), and
// a combined value the replicas use again no longer passes through the
// merge device under allreduce.
func TestTraffic(t *testing.T) {
	g := loadModel(t, "../testdata/center_batch.graph")
	params := runtime.RandomParams(g, 1)
	in, err := runtime.RandomInputs(g, 12, 1)
	if err != nil {
		t.Fatal(err)
	}
	traffic := map[replicate.CombineMode]lower.Traffic{}
	for _, m := range []replicate.CombineMode{replicate.CombineMerge, replicate.CombineAuto} {
		rg, _, err := replicate.Rewrite(g, replicate.Options{GPUs: gpus(3), Batch: 12, Combine: m})
		if err != nil {
			t.Fatal(err)
		}
		e := newExec(t, rg, params)
		plan, err := e.Plan().Traffic(nil)
		if err != nil {
			t.Fatal(err)
		}
		run(t, e, in)
		if got := e.Traffic(); got != plan {
			t.Errorf("%s: first run moved %+v, the plan %+v", m, got, plan)
		}
		run(t, e, in)
		again := plan
		again.FromMerge -= plan.Resident
		again.Resident = 0
		if got := e.Traffic(); got != again {
			t.Errorf("%s: second run moved %+v, want %+v (the plan without resident transfers)", m, got, again)
		}
		traffic[m] = again
	}
	// x is 12x20 f32: 960 bytes of shares out and of y back. Merge: the 3
	// partials of each of the two means in (2x3x80 bytes), the mean and
	// the std out (2x3x80). Allreduce: each group's partials go to the
	// first replica and the result to the others (2x4x80 bytes), and the
	// counts and epsilon are resident.
	if m := traffic[replicate.CombineMerge]; m.FromMerge != 960+480 || m.ToMerge != 960+480 || m.Peer != 0 {
		t.Errorf("merge: %#v", m)
	}
	if a := traffic[replicate.CombineAuto]; a.FromMerge != 960 || a.ToMerge != 960 || a.Peer != 640 {
		t.Errorf("allreduce: %#v", a)
	}
}
