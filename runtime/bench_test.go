package runtime_test

import (
	"context"
	"testing"
	"time"

	"gorgonia.org/tensor"

	"multigpu/graph"
	"multigpu/internal/heappeak"
	"multigpu/passes/replicate"
	"multigpu/runtime"
)

// benchMLP is the benchmark model: an MLP 784-1024-1024-10.
const benchMLP = `graph bench_mlp {
  input %x: f32[N,784]
  param %w1: f32[784,1024]
  param %b1: f32[1024]
  param %w2: f32[1024,1024]
  param %b2: f32[1024]
  param %w3: f32[1024,10]
  param %b3: f32[10]
  %h1 = matmul %x, %w1
  %a1 = add %h1, %b1
  %r1 = relu %a1
  %h2 = matmul %r1, %w2
  %a2 = add %h2, %b2
  %r2 = relu %a2
  %h3 = matmul %r2, %w3
  %a3 = add %h3, %b3
  %y = softmax %a3 {axis=1}
  output %y
}
`

func benchSetup(b *testing.B, replicas int) (*runtime.Executor, map[string]*tensor.Dense) {
	g, err := graph.Parse("bench_mlp.graph", []byte(benchMLP))
	if err != nil {
		b.Fatal(err)
	}
	params := runtime.RandomParams(g, 1)
	in, err := runtime.RandomInputs(g, 512, 2)
	if err != nil {
		b.Fatal(err)
	}
	if replicas > 1 {
		if g, _, err = replicate.Rewrite(g, replicate.Options{GPUs: gpus(replicas)}); err != nil {
			b.Fatal(err)
		}
	}
	e, err := runtime.New(g, runtime.Options{})
	if err != nil {
		b.Fatal(err)
	}
	if err := e.SetParams(params); err != nil {
		b.Fatal(err)
	}
	if _, err := e.Run(context.Background(), in); err != nil { // compile, warm up
		b.Fatal(err)
	}
	return e, in
}

// BenchmarkMLP runs the MLP 784-1024-1024-10 at batch 512: the original on
// one CPU device, and rewritten for 2 and 4 replicas served by CPU workers.
// Besides time and allocations per run it reports the peak growth of live
// heap objects during the runs (peak-MB, garbage not yet collected
// included) and, for the rewritten graphs, the ratio of their time to the
// original's (x-original), measured after the timed runs in alternating
// pairs so that both see the same machine load.
func BenchmarkMLP(b *testing.B) {
	for _, c := range []struct {
		name     string
		replicas int
	}{{"original", 1}, {"replicas2", 2}, {"replicas4", 4}} {
		b.Run(c.name, func(b *testing.B) {
			e, in := benchSetup(b, c.replicas)
			ctx := context.Background()
			b.ReportAllocs()
			h := heappeak.Start()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := e.Run(ctx, in); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(h.PeakMB(), "peak-MB")
			if c.replicas == 1 {
				return
			}
			base, _ := benchSetup(b, 1)
			var mine, theirs time.Duration
			for i := 0; i < max(b.N, 3); i++ {
				for _, x := range []struct {
					e *runtime.Executor
					d *time.Duration
				}{{e, &mine}, {base, &theirs}} {
					start := time.Now()
					if _, err := x.e.Run(ctx, in); err != nil {
						b.Fatal(err)
					}
					*x.d += time.Since(start)
				}
			}
			b.ReportMetric(float64(mine)/float64(theirs), "x-original")
		})
	}
}
