package replicate_test

import (
	"context"
	"math"
	"strings"
	"testing"

	"gorgonia.org/tensor"

	"multigpu/graph"
	"multigpu/passes/replicate"
	"multigpu/runtime"
	"multigpu/runtime/host"
)

// sgdStep is a step of gradient descent on a least-squares loss, with a
// step count: the gradient sums over the batch, the update is gated on
// the loss being finite.
const sgdStep = `graph sgd {
  input %x: f64[N,3]
  input %t: f64[N]
  param %w: f64[3]
  param %steps: f64[]
  const %lr: f64[] = 0.05
  const %one: f64[] = 1.0
  const %zero: f64[] = 0.0
  %xw = mul %x, %w
  %y = sum %xw {axes=[1]}
  %e = sub %y, %t
  %e2 = mul %e, %e
  %loss = mean %e2
  %e1 = reshape %e {shape=[N,1]}
  %ex = mul %x, %e1
  %g = sum %ex {axes=[0]}
  %s = mul %g, %lr
  %wn = sub %w, %s
  %chk = mul %loss, %zero
  %ok = equal %chk, %zero
  %wk = where %ok, %wn, %w
  %a = assign %w, %wk
  %sn = add %steps, %one
  %sk = where %ok, %sn, %steps
  %b = assign %steps, %sk
  output %loss, %ok
}
`

// TestAssignReplicated rewrites the step with every combine and layout:
// with combinations on the replicas (auto, allreduce) every replica
// updates its own resident copy of the params from an allreduce of the
// gradient, and nothing of the params moves after the first step; with
// --combine merge the merge device updates the params and the replicas
// copy them every step. Ten steps give one device's bits on every copy.
func TestAssignReplicated(t *testing.T) {
	g, err := graph.Parse("sgd.graph", []byte(sgdStep))
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float64, 7*3)
	tt := make([]float64, 7)
	for i := range x {
		x[i] = math.Sin(float64(i))
	}
	for i := range tt {
		tt[i] = math.Cos(float64(i))
	}
	in := map[string]*tensor.Dense{"x": host.New([]int{7, 3}, x), "t": host.New([]int{7}, tt)}
	params := func() map[string]*tensor.Dense {
		return map[string]*tensor.Dense{"w": host.New([]int{3}, []float64{0.1, -0.2, 0.3}), "steps": host.New([]int{}, []float64{0})}
	}
	run := func(t *testing.T, g *graph.Graph, steps int) *runtime.Executor {
		e, err := runtime.New(g, runtime.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.SetParams(params()); err != nil {
			t.Fatal(err)
		}
		for range steps {
			out, err := e.Run(context.Background(), in)
			if err != nil {
				t.Fatal(err)
			}
			if ok := host.Data(out["ok"]).([]bool); !ok[0] {
				t.Fatal("the flag is false")
			}
		}
		return e
	}
	want, err := run(t, g, 10).Resident("w")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name    string
		opts    replicate.Options
		targets []string // hold the state
		assigns string   // the assigns of %w, as printed
	}{
		{"auto", replicate.Options{GPUs: []int{0, 1, 2}}, []string{"w.r0", "w.r1", "w.r2"},
			"%a.r0 = assign %w.r0, %wk.r0 : f64[3] @gpu:0\n%a.r1 = assign %w.r1, %wk.r1 : f64[3] @gpu:1\n%a.r2 = assign %w.r2, %wk.r2 : f64[3] @gpu:2"},
		{"allreduce", replicate.Options{GPUs: []int{0, 1, 2}, Combine: replicate.CombineAllreduce}, []string{"w.r0", "w.r1", "w.r2"}, ""},
		{"merge", replicate.Options{GPUs: []int{0, 1, 2}, Combine: replicate.CombineMerge}, []string{"w"},
			"%a = assign %w, %wk : f64[3] @cpu"},
		{"merge_gpu0", replicate.Options{GPUs: []int{0, 1}, Merge: graph.GPUDevice(0)}, []string{"w", "w.r1"},
			"%a.r0 = assign %w, %wk.r0 : f64[3] @gpu:0\n%a.r1 = assign %w.r1, %wk.r1 : f64[3] @gpu:1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			rg, _, err := replicate.Rewrite(g, c.opts)
			if err != nil {
				t.Fatal(err)
			}
			text := graph.Format(rg)
			var lines []string
			for _, l := range strings.Split(text, "\n") {
				if l = strings.TrimSpace(l); strings.HasPrefix(l, "%a") && strings.Contains(l, "= assign") {
					lines = append(lines, l)
				}
			}
			if got := strings.Join(lines, "\n"); c.assigns != "" && got != c.assigns {
				t.Errorf("assigns of %%w:\n%s\nwant\n%s", got, c.assigns)
			}
			if _, err := graph.Parse("rg.graph", []byte(text)); err != nil {
				t.Fatalf("the rewrite does not parse back: %v", err)
			}
			e := run(t, rg, 10)
			for _, name := range c.targets {
				got, err := e.Resident(name)
				if err != nil {
					t.Fatal(err)
				}
				for i, v := range host.Float64s(got) {
					if w := host.Float64s(want)[i]; math.Abs(v-w) > 1e-12*math.Abs(w) {
						t.Errorf("%%%s[%d] = %v, one device %v", name, i, v, w)
					}
				}
				if name != c.targets[0] {
					first, _ := e.Resident(c.targets[0])
					for i, v := range host.Float64s(got) {
						if math.Float64bits(v) != math.Float64bits(host.Float64s(first)[i]) {
							t.Errorf("%%%s[%d] = %v, %%%s has %v", name, i, v, c.targets[0], host.Float64s(first)[i])
						}
					}
				}
			}
			steps, err := e.Resident(strings.Replace(c.targets[0], "w", "steps", 1))
			if err != nil {
				t.Fatal(err)
			}
			if s := host.Float64s(steps)[0]; s != 10 {
				t.Errorf("%s: %v steps, want 10", c.name, s)
			}
			// After the first step only the input shares, the batch size
			// (a mean's count) and the loss and the flag move, unless the
			// merge device owns the params: the replicas then copy them.
			tr := e.Traffic()
			in := map[string]int64{
				"auto":       7*4*8 + 3*8,
				"allreduce":  7*4*8 + 3*8,
				"merge":      7*4*8 + 3*3*8,
				"merge_gpu0": 3*4*8 + 8 + (8 + 3*8), // gpu:1's share, and the allreduce's results from gpu:0
			}[c.name]
			if tr.FromMerge != in {
				t.Errorf("%d bytes from the merge device in a step, want %d (%s)", tr.FromMerge, in, tr)
			}
		})
	}
}
