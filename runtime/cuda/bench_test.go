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
)

func benchModel(b *testing.B, name string) *graph.Graph {
	b.Helper()
	var src []byte
	switch name {
	case "mlp":
		src = []byte(`graph mlp {
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
`)
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
