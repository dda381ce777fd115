//go:build cudart

package cuda_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"gorgonia.org/tensor"

	"multigpu/graph"
	"multigpu/passes/replicate"
	"multigpu/runtime"
	"multigpu/runtime/backend"
	"multigpu/runtime/gpu/gputest"
	"multigpu/runtime/host"
	"multigpu/train"
)

// lossLines turn a classifier's logits %zb into the mean softmax
// cross-entropy %loss against one-hot targets %t.
const lossLines = `
  %lp = log_softmax %zb {axis=1}
  %tl = mul %t, %lp
  %s = sum %tl {axes=[1]}
  %nll = neg %s
  %loss = mean %nll
  output %loss
}
`

// trainModel returns the benchmark models with a loss: the MLP
// 784-1024-1024-10 and the CNN of testdata/cnn.graph.
func trainModel(b *testing.B, name string) *graph.Graph {
	b.Helper()
	var src string
	switch name {
	case "mlp":
		src = mlpTrainSource
	case "cnn":
		src = cnnTrainSource
	}
	g, err := graph.Parse(name+"_train.graph", []byte(src))
	if err != nil {
		b.Fatal(err)
	}
	return g
}

// mlpTrainSource is the MLP 784-1024-1024-10 with the loss.
const mlpTrainSource = `graph mlp_train {
  input %x: f32[N,784]
  input %t: f32[N,10]
  param %w1: f32[784,1024]
  param %b1: f32[1024]
  param %w2: f32[1024,1024]
  param %b2: f32[1024]
  param %w3: f32[1024,10]
  param %b3: f32[10]
  %h1 = matmul %x, %w1
  %z1 = add %h1, %b1
  %a1 = relu %z1
  %h2 = matmul %a1, %w2
  %z2 = add %h2, %b2
  %a2 = relu %z2
  %h3 = matmul %a2, %w3
  %zb = add %h3, %b3` + lossLines

// cnnTrainSource is the CNN of testdata/cnn.graph with the loss.
const cnnTrainSource = `graph cnn_train {
  input %x: f32[N,1,28,28]
  input %t: f32[N,10]
  param %c1w: f32[8,1,3,3]
  param %c1b: f32[8]
  param %c2w: f32[16,8,3,3]
  param %c2b: f32[16]
  param %w: f32[784,10]
  param %b: f32[10]
  %c1 = conv2d %x, %c1w, %c1b {pad=[1,1]}
  %r1 = relu %c1
  %p1 = maxpool2d %r1 {kernel=[2,2]}
  %c2 = conv2d %p1, %c2w, %c2b {pad=[1,1]}
  %r2 = relu %c2
  %p2 = maxpool2d %r2 {kernel=[2,2]}
  %f = flatten %p2
  %z = matmul %f, %w
  %zb = add %z, %b` + lossLines

// BenchmarkTrainStep measures one training step (forward, backward, and
// the optimizer's update on the host) of the MLP 784-1024-1024-10 and the
// CNN with a softmax cross-entropy loss, at batch 512 and 4096, on GPU 0
// as one device and replicated on four logical GPUs of it. It reports
// images/s.
func BenchmarkTrainStep(b *testing.B) {
	gpus(b)
	g0 := open(b, 0)
	whole := gputest.Devices(func(graph.Device) (backend.Device, error) { return g0.Device(graph.GPUDevice(0)) })
	for _, model := range []string{"mlp", "cnn"} {
		g := trainModel(b, model)
		for _, batch := range []int64{512, 4096} {
			in, err := runtime.RandomInputs(g, batch, 1)
			if err != nil {
				b.Fatal(err)
			}
			for _, layout := range []string{"1gpu", "4on1"} {
				b.Run(fmt.Sprintf("%s/batch=%d/%s", model, batch, layout), func(b *testing.B) {
					cfg := train.Config{Optimizer: train.Optimizer{Kind: train.SGD, LR: 0.01}}
					cfg.Runtime.Devices = whole
					if layout == "4on1" {
						cfg.GPUs, cfg.Runtime.Devices = gputest.GPUs(4), onGPUs(g0)
					}
					tr, err := train.New(g, cfg)
					if err != nil {
						b.Fatal(err)
					}
					if err := tr.SetWeights(runtime.RandomParams(g, 1)); err != nil {
						b.Fatal(err)
					}
					if _, err := tr.Step(context.Background(), in); err != nil { // compile and warm up
						b.Fatal(err)
					}
					b.ResetTimer()
					for b.Loop() {
						if _, err := tr.Step(context.Background(), in); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(float64(batch)*float64(b.N)/b.Elapsed().Seconds(), "images/s")
				})
			}
		}
	}
}

// mlpSource is the MLP 784-1024-1024-10 of the benchmarks.
const mlpSource = `graph mlp {
  input %x: f32[N,784]
  param %w1: f32[784,1024]
  param %b1: f32[1024]
  param %w2: f32[1024,1024]
  param %b2: f32[1024]
  param %w3: f32[1024,10]
  param %b3: f32[10]
  %h1 = matmul %x, %w1
  %z1 = add %h1, %b1
  %a1 = relu %z1
  %h2 = matmul %a1, %w2
  %z2 = add %h2, %b2
  %a2 = relu %z2
  %h3 = matmul %a2, %w3
  %z3 = add %h3, %b3
  %y = softmax %z3 {axis=1}
  output %y
}
`

func benchModel(b *testing.B, name string) *graph.Graph {
	b.Helper()
	var src []byte
	switch name {
	case "mlp":
		src = []byte(mlpSource)
	case "cnn":
		var err error
		if src, err = os.ReadFile("../../testdata/cnn.graph"); err != nil {
			b.Fatal(err)
		}
	}
	g, err := graph.Parse(name+".graph", src)
	if err != nil {
		b.Fatal(err)
	}
	return g
}

// BenchmarkForward measures the forward pass of the MLP 784-1024-1024-10
// and the CNN of testdata at batch 512 and 4096 on GPU 0: the model as one
// program on the GPU ("1gpu"), and rewritten for four logical GPUs on it
// ("4on1", merged on the host). It reports images/s and the share of a
// step that copying its inputs to the GPU and its outputs back takes
// (measured apart, synchronously, as "xfer%").
func BenchmarkForward(b *testing.B) {
	gpus(b)
	g0 := open(b, 0)
	for _, model := range []string{"mlp", "cnn"} {
		g := benchModel(b, model)
		params := runtime.RandomParams(g, 1)
		for _, batch := range []int64{512, 4096} {
			in, err := runtime.RandomInputs(g, batch, 1)
			if err != nil {
				b.Fatal(err)
			}
			for _, layout := range []string{"1gpu", "4on1"} {
				b.Run(fmt.Sprintf("%s/batch=%d/%s", model, batch, layout), func(b *testing.B) {
					rg, devices := g, gputest.Devices(func(d graph.Device) (backend.Device, error) { return g0.Device(graph.GPUDevice(0)) })
					if layout == "4on1" {
						if rg, _, err = replicate.Rewrite(g, replicate.Options{GPUs: gputest.GPUs(4)}); err != nil {
							b.Fatal(err)
						}
						devices = onGPUs(g0)
					}
					e, err := runtime.New(rg, runtime.Options{Devices: devices})
					if err != nil {
						b.Fatal(err)
					}
					if err := e.SetParams(params); err != nil {
						b.Fatal(err)
					}
					out, err := e.Run(context.Background(), in) // compile and warm up
					if err != nil {
						b.Fatal(err)
					}
					b.ResetTimer()
					for b.Loop() {
						if _, err := e.Run(context.Background(), in); err != nil {
							b.Fatal(err)
						}
					}
					step := b.Elapsed().Seconds() / float64(b.N)
					b.ReportMetric(float64(batch)/step, "images/s")
					b.StopTimer()
					dev, err := g0.Device(graph.GPUDevice(0))
					if err != nil {
						b.Fatal(err)
					}
					xfer := transferTime(b, dev, in, out)
					b.ReportMetric(100*xfer/step, "xfer%")
				})
			}
		}
	}
}

// transferTime returns the seconds that uploading in and downloading out
// take on dev, waiting for the copies (the median of five).
func transferTime(b *testing.B, dev backend.Device, in, out map[string]*tensor.Dense) float64 {
	var outs []backend.Buffer
	for _, t := range out {
		buf, err := dev.Upload(t)
		if err != nil {
			b.Fatal(err)
		}
		outs = append(outs, buf)
	}
	marker, err := dev.Upload(host.New([]int{1}, []float32{0}))
	if err != nil {
		b.Fatal(err)
	}
	var times []float64
	for range 5 {
		start := time.Now()
		for _, t := range in {
			if _, err := dev.Upload(t); err != nil {
				b.Fatal(err)
			}
		}
		// A download waits for the stream's earlier work: the uploads.
		if _, err := dev.Download(marker); err != nil {
			b.Fatal(err)
		}
		for _, o := range outs {
			if _, err := dev.Download(o); err != nil {
				b.Fatal(err)
			}
		}
		times = append(times, time.Since(start).Seconds())
	}
	slices.Sort(times)
	return times[len(times)/2]
}
