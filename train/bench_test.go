package train_test

import (
	"context"
	"testing"
	"time"

	"gorgonia.org/tensor"

	"multigpu/graph"
	"multigpu/internal/heappeak"
	"multigpu/passes/replicate"
	"multigpu/runtime"
	"multigpu/train"
)

// benchMLP is the benchmark model: an MLP 784-1024-1024-10 with a softmax
// cross-entropy loss.
const benchMLP = `graph bench_mlp {
  input %x: f32[N,784]
  input %t: f32[N,10]
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
  %lp = log_softmax %a3 {axis=1}
  %tl = mul %t, %lp
  %s = sum %tl {axes=[1]}
  %nll = neg %s
  %loss = mean %nll
  output %loss
}
`

func benchTrainer(b *testing.B, gpus []int, combine replicate.CombineMode) (*train.Trainer, map[string]*tensor.Dense) {
	g, err := graph.Parse("bench_mlp.graph", []byte(benchMLP))
	if err != nil {
		b.Fatal(err)
	}
	tr, err := train.New(g, train.Config{GPUs: gpus, Combine: combine, Optimizer: train.Optimizer{Kind: train.SGD, LR: 1e-4}})
	if err != nil {
		b.Fatal(err)
	}
	if err := tr.SetWeights(runtime.RandomParams(g, 1)); err != nil {
		b.Fatal(err)
	}
	in := randomData(g, 512, 2)
	data, err := tr.NewDataset(in)
	if err != nil {
		b.Fatal(err)
	}
	idx := make([]int, 512)
	for i := range idx {
		idx[i] = i
	}
	batch := data.Batch(idx)
	if _, err := tr.Step(context.Background(), batch); err != nil { // compile, warm up
		b.Fatal(err)
	}
	return tr, batch
}

// BenchmarkTrainStep times one training step (forward, backward, the
// all-finite flag and the optimizer's update, all graph ops on the
// devices) of the MLP 784-1024-1024-10 at batch 512: the original on one
// CPU device, and data-parallel on 4 replicas served by CPU workers, with
// every combination on the merge device (the gradients concatenated and
// the params updated there, then copied to every replica) and with
// allreduce groups (every replica updates its own resident params). It
// reports the peak growth of live heap objects
// during the steps (peak-MB), for the replicated trainers the bytes a
// step moves between the host (the merge device) and the replicas
// (host-MB/step) and between replicas (peer-MB/step), and the ratio of
// their time to the original's (x-original), measured after the timed
// steps in alternating pairs so that both see the same machine load.
func BenchmarkTrainStep(b *testing.B) {
	for _, c := range []struct {
		name    string
		gpus    []int
		combine replicate.CombineMode
	}{{"original", nil, ""}, {"replicas4_merge", []int{0, 1, 2, 3}, replicate.CombineMerge},
		{"replicas4_allreduce", []int{0, 1, 2, 3}, replicate.CombineAllreduce}} {
		b.Run(c.name, func(b *testing.B) {
			tr, batch := benchTrainer(b, c.gpus, c.combine)
			ctx := context.Background()
			b.ReportAllocs()
			h := heappeak.Start()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := tr.Step(ctx, batch); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(h.PeakMB(), "peak-MB")
			if c.gpus == nil {
				return
			}
			tt := tr.Traffic()
			b.ReportMetric(float64(tt.FromMerge+tt.ToMerge)/1e6, "host-MB/step")
			b.ReportMetric(float64(tt.Peer)/1e6, "peer-MB/step")
			base, _ := benchTrainer(b, nil, "")
			var mine, theirs time.Duration
			for i := 0; i < max(b.N, 3); i++ {
				for _, x := range []struct {
					t *train.Trainer
					d *time.Duration
				}{{tr, &mine}, {base, &theirs}} {
					start := time.Now()
					if _, err := x.t.Step(ctx, batch); err != nil {
						b.Fatal(err)
					}
					*x.d += time.Since(start)
				}
			}
			b.ReportMetric(float64(mine)/float64(theirs), "x-original")
		})
	}
}
