package runtime_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"

	"gorgonia.org/tensor"

	"multigpu/graph"
	"multigpu/runtime"
	"multigpu/runtime/host"
)

// assignOpCases: an assign yields its value.
func assignOpCases() []opCase {
	r := rand.New(rand.NewPCG(13, 14))
	return []opCase{{name: "assign",
		src:    "graph g {\n  input %a: {T}[3,4]\n  param %w: {T}[3,4]\n  %n = add %w, %a\n  %y = assign %w, %n\n  output %y\n}\n",
		inputs: map[string]arr{"a": randArr(r, -2, 2, 3, 4), "w": randArr(r, -2, 2, 3, 4)},
		want: func(in map[string]arr, dt graph.DType) arr {
			out := newArr(3, 4)
			for i := range out.data {
				out.data[i] = in["w"].data[i] + in["a"].data[i]
			}
			return out
		}}}
}

// counterGraph keeps a running sum of its input's columns in %w, on the
// replicas' resident copies (replicas) or on the merge device, whose
// copies the replicas then read afresh every run (merge); %y reads %w as
// it was before the run.
const counterReplicas = `graph counter {
  input %x: f64[N,3] @cpu
  param %w: f64[3] @cpu
  %x.r0 = slice %x {axis=0, part=0, parts=2} : f64[N.0,3] @gpu:0
  %x.r1 = slice %x {axis=0, part=1, parts=2} : f64[N.1,3] @gpu:1
  %w.r0 = copy %w : f64[3] @gpu:0
  %w.r1 = copy %w : f64[3] @gpu:1
  %p.r0 = sum %x.r0 {axes=[0]} : f64[3] @gpu:0
  %p.r1 = sum %x.r1 {axes=[0]} : f64[3] @gpu:1
  %s.r0 = allreduce %p.r0, %p.r1 : f64[3] @gpu:0
  %s.r1 = allreduce %p.r0, %p.r1 : f64[3] @gpu:1
  %n.r0 = add %w.r0, %s.r0 : f64[3] @gpu:0
  %n.r1 = add %w.r1, %s.r1 : f64[3] @gpu:1
  %a.r0 = assign %w.r0, %n.r0 : f64[3] @gpu:0
  %a.r1 = assign %w.r1, %n.r1 : f64[3] @gpu:1
  %y.r0 = mul %x.r0, %w.r0 : f64[N.0,3] @gpu:0
  %y.r1 = mul %x.r1, %w.r1 : f64[N.1,3] @gpu:1
  %y = concat %y.r0, %y.r1 {axis=0} : f64[N,3] @cpu
  output %y
}
`

const counterMerge = `graph counter {
  input %x: f64[N,3] @cpu
  param %w: f64[3] @cpu
  %x.r0 = slice %x {axis=0, part=0, parts=2} : f64[N.0,3] @gpu:0
  %x.r1 = slice %x {axis=0, part=1, parts=2} : f64[N.1,3] @gpu:1
  %w.r0 = copy %w : f64[3] @gpu:0
  %w.r1 = copy %w : f64[3] @gpu:1
  %s = sum %x {axes=[0]} : f64[3] @cpu
  %n = add %w, %s : f64[3] @cpu
  %a = assign %w, %n : f64[3] @cpu
  %y.r0 = mul %x.r0, %w.r0 : f64[N.0,3] @gpu:0
  %y.r1 = mul %x.r1, %w.r1 : f64[N.1,3] @gpu:1
  %y = concat %y.r0, %y.r1 {axis=0} : f64[N,3] @cpu
  output %y
}
`

// TestAssign runs the counters three times: every target holds the sum
// of the runs' columns, each replica's copy the same, while the param on
// the merge device keeps its value when only the copies are assigned;
// every run reads the state its predecessor left; the copies move once
// (replicas) or every run (merge); a run that fails assigns nothing.
func TestAssign(t *testing.T) {
	x := host.New([]int{5, 3}, []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15})
	w0 := []float64{0.5, -1, 2}
	sums := []float64{35, 40, 45}
	for _, c := range []struct {
		name    string
		src     string
		targets []string // hold the sum
		fixed   []string // keep w0
		copies  int64    // bytes of param copies per run after the first
	}{
		{"replicas", counterReplicas, []string{"w.r0", "w.r1"}, []string{"w"}, 0},
		{"merge", counterMerge, []string{"w"}, nil, 2 * 3 * 8},
	} {
		t.Run(c.name, func(t *testing.T) {
			g, err := graph.Parse("counter.graph", []byte(c.src))
			if err != nil {
				t.Fatal(err)
			}
			fail := false
			e, err := runtime.New(g, runtime.Options{BeforeNode: func(_ context.Context, _ graph.Device, n *graph.Node) error {
				if fail && n.Op == "mul" {
					return errors.New("injected")
				}
				return nil
			}})
			if err != nil {
				t.Fatal(err)
			}
			if err := e.SetParams(map[string]*tensor.Dense{"w": host.New([]int{3}, slices.Clone(w0))}); err != nil {
				t.Fatal(err)
			}
			for run := 0; run < 3; run++ {
				out, err := e.Run(context.Background(), map[string]*tensor.Dense{"x": x})
				if err != nil {
					t.Fatal(err)
				}
				// %y reads the state before the run.
				y := host.Float64s(out["y"])
				for i, v := range y {
					if want := host.Float64s(x)[i] * (w0[i%3] + float64(run)*sums[i%3]); v != want {
						t.Fatalf("run %d: y[%d] = %v, want %v", run, i, v, want)
					}
				}
				if run > 0 {
					if tr := e.Traffic(); tr.FromMerge-5*3*8 != c.copies {
						t.Errorf("run %d: %d bytes from the merge device, want the input's 120 and %d of params", run, tr.FromMerge, c.copies)
					}
				}
			}
			check := func(when string, runs float64) {
				for _, name := range c.targets {
					v, err := e.Resident(name)
					if err != nil {
						t.Fatal(err)
					}
					for i, got := range host.Float64s(v) {
						if want := w0[i] + runs*sums[i]; got != want {
							t.Errorf("%s: %%%s[%d] = %v, want %v", when, name, i, got, want)
						}
					}
				}
				for _, name := range c.fixed {
					v, err := e.Resident(name)
					if err != nil {
						t.Fatal(err)
					}
					if !slices.Equal(host.Float64s(v), w0) {
						t.Errorf("%s: %%%s = %v, want %v (unassigned)", when, name, host.Float64s(v), w0)
					}
				}
			}
			check("after 3 runs", 3)
			fail = true
			if _, err := e.Run(context.Background(), map[string]*tensor.Dense{"x": x}); err == nil {
				t.Fatal("no error from the injected failure")
			}
			check("after a failed run", 3)
			if _, err := e.Resident("s"); err == nil {
				t.Error("Resident of a computed value: no error")
			}
			// SetParams starts the state afresh, copies included.
			if err := e.SetParams(map[string]*tensor.Dense{"w": host.New([]int{3}, slices.Clone(w0))}); err != nil {
				t.Fatal(err)
			}
			c.fixed = append(c.fixed, c.targets...)
			c.targets = nil
			check("after SetParams", 0)
		})
	}
}
