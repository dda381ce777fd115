//go:build cudart

package cuda_test

import (
	"flag"
	"fmt"
	"math"
	"os"
	"testing"

	"multigpu/graph"
	"multigpu/passes/replicate"
	"multigpu/runtime"
	"multigpu/runtime/backend"
	"multigpu/runtime/cpu"
	"multigpu/runtime/cuda"
	"multigpu/runtime/devmap"
	"multigpu/runtime/gpu/gputest"
	"multigpu/runtime/host"
)

var _ = flag.Bool("update", false, "rewrite golden files (none in this package)")

// gpus returns the machine's GPUs, and skips the test when there is none.
// (Without a CUDA driver the test binary does not get this far:
// gorgonia.org/cu ends the process when it starts.)
func gpus(t testing.TB) []cuda.Info {
	t.Helper()
	infos, err := cuda.Discover()
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) == 0 {
		t.Skip("no GPU: the CUDA driver finds no device; the GPU checks need a machine with a GPU")
	}
	return infos
}

// open opens physical GPU ordinal for the test.
func open(t testing.TB, ordinal int) *cuda.GPU {
	t.Helper()
	g, err := cuda.Open(ordinal)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := g.Close(); err != nil {
			t.Errorf("closing %s: %v", g, err)
		}
	})
	return g
}

func TestDiscover(t *testing.T) {
	for _, info := range gpus(t) {
		t.Logf("GPU %d: %s, sm_%d%d, %.1f GiB", info.Ordinal, info.Name, info.Major, info.Minor, float64(info.Memory)/(1<<30))
		if info.Name == "" || info.Memory <= 0 || info.Major < 1 {
			t.Errorf("GPU %d: implausible %+v", info.Ordinal, info)
		}
	}
}

// TestOps runs every op of the op table on the CPU backend and on GPU 0,
// in f32 and f64, and compares (gputest.Ops): bit for bit, except exp,
// log and tanh (rounding of the library's results) and matrix products
// (f32 within 1e-5 relative plus 1e-7 absolute).
func TestOps(t *testing.T) {
	gpus(t)
	g := open(t, 0)
	gputest.Ops(t, func(t *testing.T) gputest.Devices { return g.Device })
}

// onGPUs serves cpu from the host backend and gpu:K from the logical
// device gpu:K on physical GPU phys[K % len(phys)].
func onGPUs(phys ...*cuda.GPU) gputest.Devices {
	return func(d graph.Device) (backend.Device, error) {
		if d.Kind == graph.CPU {
			return cpu.New(d), nil
		}
		return phys[d.Index%len(phys)].Device(d)
	}
}

// TestModels runs every testdata model rewritten for several GPUs on real
// GPUs and compares its outputs with the original model on the CPU backend
// (gputest.Models): four logical GPUs on GPU 0, three with the merge
// device gpu:0, and, on a machine with two GPUs or more, two GPUs on two.
func TestModels(t *testing.T) {
	infos := gpus(t)
	g0 := open(t, 0)
	one := func(*testing.T) gputest.Devices { return onGPUs(g0) }
	layouts := []gputest.Layout{
		{Name: "4_on_1", Options: replicate.Options{GPUs: gputest.GPUs(4)}, Devices: one},
		{Name: "merge_gpu0", Options: replicate.Options{GPUs: gputest.GPUs(3), Merge: graph.GPUDevice(0)}, Devices: one},
	}
	if len(infos) >= 2 {
		g1 := open(t, 1)
		layouts = append(layouts, gputest.Layout{Name: "2_on_2", Options: replicate.Options{GPUs: gputest.GPUs(2)},
			Devices: func(*testing.T) gputest.Devices { return onGPUs(g0, g1) }})
	}
	gputest.Models(t, "../../testdata", layouts, []int64{1, 3, 9, 37, 512})
}

// TestTraining trains the testdata classifiers on GPU 0, as one device and
// replicated on four logical GPUs of it, and compares the weights with
// the CPU backend's (gputest.Training): the backward ops run on the GPU.
func TestTraining(t *testing.T) {
	gpus(t)
	g0 := open(t, 0)
	whole := func(*testing.T) gputest.Devices {
		return func(graph.Device) (backend.Device, error) { return g0.Device(graph.GPUDevice(0)) }
	}
	one := func(*testing.T) gputest.Devices { return onGPUs(g0) }
	gputest.Training(t, "../../testdata", []gputest.Layout{
		{Name: "1_gpu", Devices: whole},
		{Name: "4_on_1", Options: replicate.Options{GPUs: gputest.GPUs(4)}, Devices: one},
		{Name: "merge_gpu0", Options: replicate.Options{GPUs: gputest.GPUs(2), Merge: graph.GPUDevice(0)}, Devices: one},
	})
}

// TestDeviceMap runs the CNN rewritten for four GPUs through
// --device-map gpu:0-3=0, as the command line does.
func TestDeviceMap(t *testing.T) {
	gpus(t)
	m, err := devmap.Parse("gpu:0-3=0")
	if err != nil {
		t.Fatal(err)
	}
	set := devmap.Open(m)
	t.Cleanup(func() { set.Close() })
	src, err := os.ReadFile("../../testdata/cnn.graph")
	if err != nil {
		t.Fatal(err)
	}
	g, err := graph.Parse("cnn.graph", src)
	if err != nil {
		t.Fatal(err)
	}
	rg, _, err := replicate.Rewrite(g, replicate.Options{GPUs: gputest.GPUs(4)})
	if err != nil {
		t.Fatal(err)
	}
	params := runtime.RandomParams(g, 1)
	in, err := runtime.RandomInputs(g, 37, 1)
	if err != nil {
		t.Fatal(err)
	}
	want := gputest.Execute(t, g, nil, params, in)
	got := gputest.Execute(t, rg, set.Devices, params, in)
	if err := gputest.Compare(want["y"], got["y"], gputest.Products); err != nil {
		t.Error(err)
	}
}

// TestCopyFrom copies a buffer between logical devices of one GPU (a
// device-to-device copy) and, where there are two GPUs, between GPUs (a
// peer copy).
func TestCopyFrom(t *testing.T) {
	infos := gpus(t)
	phys := []*cuda.GPU{open(t, 0)}
	if len(infos) >= 2 {
		phys = append(phys, open(t, 1))
	}
	src, err := phys[0].Device(graph.GPUDevice(0))
	if err != nil {
		t.Fatal(err)
	}
	data := make([]float32, 1<<20)
	for i := range data {
		data[i] = float32(i)
	}
	b, err := src.Upload(host.New([]int{len(data)}, data))
	if err != nil {
		t.Fatal(err)
	}
	for k, p := range append(phys, phys[0]) {
		dst, err := p.Device(graph.GPUDevice(k + 1))
		if err != nil {
			t.Fatal(err)
		}
		cp, err := dst.(interface {
			CopyFrom(backend.Buffer) (backend.Buffer, error)
		}).CopyFrom(b)
		if err != nil {
			t.Fatalf("copy to %s: %v", p, err)
		}
		h, err := dst.Download(cp)
		if err != nil {
			t.Fatal(err)
		}
		if got := host.Data(h).([]float32); fmt.Sprint(got[:4], got[len(got)-1]) != fmt.Sprint(data[:4], data[len(data)-1]) {
			t.Errorf("copy to %s on %s differs", dst.Place(), p)
		}
	}
}

// TestTF32 runs the MLP of the benchmarks, the CNN and the residual block
// of testdata on GPU 0 opened with TF32 on, and compares them with the CPU
// backend within TF32's tolerance (gputest.TF32). On a GPU with TF32
// (Ampere and up; the stand-in cuBLAS rounds the inputs of f32 products
// to TF32 in that mode) some outputs must leave the f32 tolerance, which
// shows the math mode reaches cuBLAS.
func TestTF32(t *testing.T) {
	gpus(t)
	g, err := cuda.OpenWith(0, cuda.Options{TF32: cuda.TF32On})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	if !g.TF32() {
		t.Fatalf("%s opened with TF32 on reports TF32 off", g)
	}
	devices := func(graph.Device) (backend.Device, error) { return g.Device(graph.GPUDevice(0)) }
	var models []*graph.Graph
	for _, path := range []string{"../../testdata/cnn.graph", "../../testdata/residual.graph"} {
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		m, err := graph.Parse(path, src)
		if err != nil {
			t.Fatal(err)
		}
		models = append(models, m)
	}
	mlp, err := graph.Parse("mlp.graph", []byte(mlpSource))
	if err != nil {
		t.Fatal(err)
	}
	models = append(models, mlp)
	beyondF32 := false
	for _, m := range models {
		params := runtime.RandomParams(m, 1)
		in, err := runtime.RandomInputs(m, 37, 1)
		if err != nil {
			t.Fatal(err)
		}
		want := gputest.Execute(t, m, nil, params, in)
		got := gputest.Execute(t, m, devices, params, in)
		for _, o := range m.Outputs {
			if err := gputest.Compare(want[o.Name], got[o.Name], gputest.TF32); err != nil {
				t.Errorf("%s: output %%%s with TF32: %v", m.Name, o.Name, err)
			}
			if gputest.Compare(want[o.Name], got[o.Name], gputest.Products) != nil {
				beyondF32 = true
			}
			w, g := host.Float64s(want[o.Name]), host.Float64s(got[o.Name])
			diff, scale := 0.0, 0.0
			for i := range w {
				diff, scale = max(diff, math.Abs(w[i]-g[i])), max(scale, math.Abs(w[i]))
			}
			t.Logf("%s: output %%%s with TF32: max difference %.3g of the largest magnitude %.3g (%.2g)", m.Name, o.Name, diff, scale, diff/scale)
		}
	}
	if info := g.Info(); info.Major >= 8 && !beyondF32 {
		t.Errorf("%s (sm_%d%d) with TF32 on: every output within the f32 tolerance; is the math mode set?", g, info.Major, info.Minor)
	}
}
