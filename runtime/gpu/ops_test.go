//go:build cgo

package gpu

import (
	"flag"
	"testing"

	"multigpu/graph"
	"multigpu/runtime/backend"
	"multigpu/runtime/cpu"
	"multigpu/runtime/gpu/gputest"
)

var _ = flag.Bool("update", false, "rewrite golden files (none in this package)")

// hostDevices serves gpu:K from a logical device on
// drivers[K % len(drivers)], and cpu from the host backend, or, when
// cpuOnGPU is set (unplaced graphs), from a logical device on drivers[0].
type hostDevices struct {
	t        testing.TB
	drivers  []*hostDriver
	cpuOnGPU bool
	devs     map[graph.Device]*Device
}

func newHostDevices(t testing.TB, drivers ...*hostDriver) *hostDevices {
	hd := &hostDevices{t: t, drivers: drivers, devs: map[graph.Device]*Device{}}
	t.Cleanup(hd.close)
	return hd
}

func (hd *hostDevices) device(d graph.Device) (backend.Device, error) {
	if dev := hd.devs[d]; dev != nil {
		return dev, nil
	}
	if d.Kind == graph.CPU && !hd.cpuOnGPU {
		return cpu.New(d), nil
	}
	dev, err := NewDevice(d, hd.drivers[d.Index%len(hd.drivers)])
	if err != nil {
		return nil, err
	}
	hd.devs[d] = dev
	return dev, nil
}

func (hd *hostDevices) close() {
	for _, d := range hd.devs {
		if err := d.Close(); err != nil {
			hd.t.Errorf("closing %s: %v", d, err)
		}
	}
}

// TestOps runs every op on the CPU backend and on the GPU backend over the
// host emulation, in f32 and f64, and compares (gputest.Ops).
func TestOps(t *testing.T) {
	gputest.Ops(t, func(t *testing.T) gputest.Devices {
		hd := newHostDevices(t, newHostDriver("host GPU 0"))
		hd.cpuOnGPU = true
		return hd.device
	})
}

// TestOpsChunked runs the op cases with convolutions' patch buffers
// bounded to a few samples' patches, so that the batch is processed in
// chunks.
func TestOpsChunked(t *testing.T) {
	gputest.Ops(t, func(t *testing.T) gputest.Devices {
		hd := newHostDevices(t, newHostDriver("host GPU 0"))
		hd.cpuOnGPU = true
		return func(d graph.Device) (backend.Device, error) {
			dev, err := hd.device(d)
			if err == nil {
				dev.(*Device).convScratch = 2 << 10
			}
			return dev, err
		}
	})
}

// TestModels runs every testdata model rewritten for several GPUs on the
// GPU backend over the host emulation, and compares its outputs with the
// original model on the CPU backend (gputest.Models). Layouts: four
// logical GPUs on one physical GPU (as --device-map gpu:0-3=0 runs them),
// two GPUs on two physical GPUs whose streams run with random delays, and
// the merge device one of three GPUs (so that slices and concats run in
// GPU programs).
func TestModels(t *testing.T) {
	one := func(t *testing.T) gputest.Devices { return newHostDevices(t, newHostDriver("host GPU 0")).device }
	layouts := []gputest.Layout{
		{Name: "4_on_1", Options: replicateOn(4, graph.HostCPU), Devices: one},
		{Name: "2_on_2_jitter", Options: replicateOn(2, graph.HostCPU), Devices: func(t *testing.T) gputest.Devices {
			a, b := newHostDriver("host GPU 0"), newHostDriver("host GPU 1")
			a.jitter, b.jitter = true, true
			return newHostDevices(t, a, b).device
		}},
		{Name: "merge_gpu0", Options: replicateOn(3, graph.GPUDevice(0)), Devices: one},
	}
	batches := []int64{1, 3, 9, 37}
	if testing.Short() {
		batches = []int64{1, 9}
	}
	gputest.Models(t, "../../testdata", layouts, batches)
}

// TestTraining trains the testdata classifiers on the GPU backend over the
// host emulation, as one device on a GPU and replicated on four logical
// GPUs of one, and compares the weights with the CPU backend's
// (gputest.Training): the backward ops run on the GPU too.
func TestTraining(t *testing.T) {
	one := func(t *testing.T) gputest.Devices { return newHostDevices(t, newHostDriver("host GPU 0")).device }
	gputest.Training(t, "../../testdata", []gputest.Layout{
		{Name: "1_gpu", Devices: func(t *testing.T) gputest.Devices {
			hd := newHostDevices(t, newHostDriver("host GPU 0"))
			hd.cpuOnGPU = true
			return hd.device
		}},
		{Name: "4_on_1", Options: replicateOn(4, graph.HostCPU), Devices: one},
		{Name: "merge_gpu0", Options: replicateOn(2, graph.GPUDevice(0)), Devices: one},
	})
}
