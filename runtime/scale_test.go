package runtime_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"multigpu/graph"
	"multigpu/runtime"
)

// chainGraph is a chain of n relus over x: f32[N,4].
func chainGraph(tb testing.TB, n int) *graph.Graph {
	var b strings.Builder
	b.WriteString("graph chain {\n  input %x: f32[N,4]\n")
	prev := "x"
	for i := range n {
		fmt.Fprintf(&b, "  %%r%d = relu %%%s\n", i, prev)
		prev = fmt.Sprintf("r%d", i)
	}
	fmt.Fprintf(&b, "  output %%%s\n}\n", prev)
	g, err := graph.Parse("chain.graph", []byte(b.String()))
	if err != nil {
		tb.Fatal(err)
	}
	return g
}

// scaleCost returns the time per node of lowering a chain of n relus
// (runtime.New), compiling it for a batch (Prepare) and running it once.
func scaleCost(tb testing.TB, n int) (lower, compile, run time.Duration) {
	g := chainGraph(tb, n)
	in, err := runtime.RandomInputs(g, 2, 1)
	if err != nil {
		tb.Fatal(err)
	}
	t0 := time.Now()
	e, err := runtime.New(g, runtime.Options{Threads: 1})
	if err != nil {
		tb.Fatal(err)
	}
	t1 := time.Now()
	if err := e.Prepare(2); err != nil {
		tb.Fatal(err)
	}
	t2 := time.Now()
	if _, err := e.Run(context.Background(), in); err != nil {
		tb.Fatal(err)
	}
	t3 := time.Now()
	per := func(d time.Duration) time.Duration { return d / time.Duration(n) }
	return per(t1.Sub(t0)), per(t2.Sub(t1)), per(t3.Sub(t2))
}

// BenchmarkScale lowers, compiles and runs chains of 10k, 100k and 200k
// relus and reports the cost per node of each phase, which must stay flat
// (the executor is linear in the program's length).
func BenchmarkScale(b *testing.B) {
	for _, n := range []int{10_000, 100_000, 200_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			var lo, co, ru time.Duration
			for range b.N {
				l, c, r := scaleCost(b, n)
				lo, co, ru = lo+l, co+c, ru+r
			}
			nb := time.Duration(b.N)
			b.ReportMetric(float64(lo/nb), "lower-ns/node")
			b.ReportMetric(float64(co/nb), "compile-ns/node")
			b.ReportMetric(float64(ru/nb), "run-ns/node")
		})
	}
}

// A 200,000-node chain lowers, compiles and runs in seconds: nothing on
// the way is quadratic in the program's length (gorgonia's TapeMachine
// compile was, at 36 s for 40,000 nodes).
func TestScaleLinear(t *testing.T) {
	if testing.Short() {
		t.Skip("a 200,000-node chain")
	}
	start := time.Now()
	lo, co, ru := scaleCost(t, 200_000)
	if d := time.Since(start); d > 60*time.Second {
		t.Errorf("a 200,000-node chain took %v (lower %v, compile %v, run %v per node)", d, lo, co, ru)
	}
}
