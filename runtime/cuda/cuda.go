//go:build cudart

package cuda

/*
#cgo LDFLAGS: -lcuda
#cgo linux CFLAGS: -I/usr/local/cuda/include
#cgo linux LDFLAGS: -L/usr/local/cuda/lib64
#include <cuda.h>
*/
import "C"

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"unsafe"

	"gorgonia.org/cu"
	"gorgonia.org/cu/nvrtc"

	"multigpu/graph"
	"multigpu/runtime/backend"
	"multigpu/runtime/gpu"
	"multigpu/runtime/gpu/kernels"
)

// Info describes one physical GPU.
type Info struct {
	Ordinal      int
	Name         string
	Memory       int64 // bytes
	Major, Minor int   // compute capability
}

// Discover lists the machine's GPUs.
func Discover() ([]Info, error) {
	n, err := cu.NumDevices()
	if err != nil {
		return nil, fmt.Errorf("cuda: counting GPUs: %v", err)
	}
	out := make([]Info, n)
	for i := range out {
		info, err := describe(i)
		if err != nil {
			return nil, err
		}
		out[i] = info
	}
	return out, nil
}

func describe(ordinal int) (Info, error) {
	d, err := cu.GetDevice(ordinal)
	if err != nil {
		return Info{}, fmt.Errorf("cuda: GPU %d: %v", ordinal, err)
	}
	info := Info{Ordinal: ordinal}
	if info.Name, err = d.Name(); err != nil {
		return Info{}, fmt.Errorf("cuda: GPU %d: name: %v", ordinal, err)
	}
	info.Name = strings.TrimRight(info.Name, "\x00")
	if info.Memory, err = d.TotalMem(); err != nil {
		return Info{}, fmt.Errorf("cuda: GPU %d: memory: %v", ordinal, err)
	}
	if info.Major, info.Minor, err = d.ComputeCapability(); err != nil {
		return Info{}, fmt.Errorf("cuda: GPU %d: compute capability: %v", ordinal, err)
	}
	return info, nil
}

// GPU is one physical GPU opened for the runtime: its primary context, the
// kernels compiled for it, and the logical devices that run on it (each
// with a stream of its own). It implements gpu.Driver. Its methods are
// safe for concurrent use.
type GPU struct {
	info    Info
	dev     cu.Device
	ctx     cu.CUContext
	mod     cu.Module
	fns     map[string]cu.Function
	maxGrid int
	tf32    bool // cuBLAS computes f32 products with TF32 tensor cores

	mu      sync.Mutex
	devices map[graph.Device]*gpu.Device
	closed  bool
}

// launchBlock is the threads per block of every launch; grids are capped
// at maxBlocksPerSM blocks per multiprocessor (kernels loop over the
// rest).
const (
	launchBlock    = 256
	maxBlocksPerSM = 32
)

// Options configure how a GPU is opened.
type Options struct {
	// TF32 says whether f32 matrix products and convolutions use TF32
	// tensor cores (default off).
	TF32 TF32
}

// Open opens physical GPU ordinal with the default options: it retains
// the primary context and compiles the kernels for the GPU with NVRTC.
func Open(ordinal int) (*GPU, error) { return OpenWith(ordinal, Options{}) }

// OpenWith opens physical GPU ordinal, as Open does, with opts.
func OpenWith(ordinal int, opts Options) (*GPU, error) {
	if unsafe.Sizeof(cu.Stream{}) != unsafe.Sizeof(C.CUstream(nil)) {
		return nil, errors.New("cuda: gorgonia.org/cu's Stream is not a CUstream")
	}
	info, err := describe(ordinal)
	if err != nil {
		return nil, err
	}
	g := &GPU{info: info, fns: map[string]cu.Function{}, devices: map[graph.Device]*gpu.Device{},
		tf32: opts.TF32.Enabled(info.Major, info.Minor)}
	if g.dev, err = cu.GetDevice(ordinal); err != nil {
		return nil, fmt.Errorf("cuda: %s: %v", g, err)
	}
	sms, err := g.dev.Attribute(cu.MultiprocessorCount)
	if err != nil {
		return nil, fmt.Errorf("cuda: %s: multiprocessors: %v", g, err)
	}
	g.maxGrid = max(sms, 1) * maxBlocksPerSM
	if g.ctx, err = g.dev.RetainPrimaryCtx(); err != nil {
		return nil, fmt.Errorf("cuda: %s: retaining the primary context: %v", g, err)
	}
	ptx, err := compile(info.Major, info.Minor)
	if err != nil {
		g.dev.ReleasePrimaryCtx()
		return nil, fmt.Errorf("cuda: %s: %v", g, err)
	}
	err = g.with(func() error {
		var err error
		if g.mod, err = cu.LoadData(ptx); err != nil {
			return fmt.Errorf("loading the kernels: %v", err)
		}
		for _, name := range kernels.Names() {
			fn, err := g.mod.Function(name)
			if err != nil {
				return fmt.Errorf("kernel %s: %v", name, err)
			}
			g.fns[name] = fn
		}
		return nil
	})
	if err != nil {
		g.dev.ReleasePrimaryCtx()
		return nil, fmt.Errorf("cuda: %s: %v", g, err)
	}
	return g, nil
}

// compile compiles the kernels to PTX for compute capability major.minor,
// without fused multiply-adds (runtime/cpu rounds every product). When
// NVRTC does not know the GPU's own architecture, older ones are tried,
// newest first (the driver compiles older PTX for newer GPUs).
func compile(major, minor int) (string, error) {
	own := major*10 + minor
	tried := []int{own}
	for _, a := range []int{90, 89, 87, 86, 80, 75, 72, 70, 61, 60, 53, 52, 50} {
		if a < own {
			tried = append(tried, a)
		}
	}
	var errs []string
	for _, arch := range tried {
		ptx, log, err := compileFor(arch)
		if err == nil {
			return ptx, nil
		}
		errs = append(errs, fmt.Sprintf("compute_%d: %v", arch, err))
		if log != "" && !strings.Contains(log, "gpu-architecture") {
			// A compile error, not an unknown architecture: stop here.
			return "", fmt.Errorf("NVRTC: %v\n%s", err, log)
		}
	}
	return "", fmt.Errorf("NVRTC: %s", strings.Join(errs, "; "))
}

func compileFor(arch int) (ptx, log string, err error) {
	prog, err := nvrtc.CreateProgram(kernels.Source(), "kernels.cu")
	if err != nil {
		return "", "", err
	}
	defer prog.Destroy()
	err = prog.Compile(fmt.Sprintf("--gpu-architecture=compute_%d", arch), "--fmad=false", "--std=c++14")
	if err != nil {
		log, _ = prog.GetLog()
		return "", log, err
	}
	ptx, err = prog.GetPTX()
	return ptx, "", err
}

// with runs f on a locked OS thread with g's context current, as every
// CUDA call needs.
func (g *GPU) with(f func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := cu.SetCurrentContext(g.ctx); err != nil {
		return fmt.Errorf("making the context current: %v", err)
	}
	return f()
}

// Info returns what g is.
func (g *GPU) Info() Info { return g.info }

// TF32 reports whether g's f32 matrix products use TF32 tensor cores.
func (g *GPU) TF32() bool { return g.tf32 }

// String returns "GPU 0 (NVIDIA H100 80GB HBM3)".
func (g *GPU) String() string { return fmt.Sprintf("GPU %d (%s)", g.info.Ordinal, g.info.Name) }

// Device returns the backend of logical device place on g, created on
// first use with a stream of its own.
func (g *GPU) Device(place graph.Device) (backend.Device, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil, fmt.Errorf("cuda: %s is closed", g)
	}
	if d := g.devices[place]; d != nil {
		return d, nil
	}
	d, err := gpu.NewDevice(place, g)
	if err != nil {
		return nil, err
	}
	g.devices[place] = d
	return d, nil
}

// Close closes g's logical devices and releases its context.
func (g *GPU) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil
	}
	g.closed = true
	var errs []error
	for _, d := range g.devices {
		if err := d.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := g.with(func() error { return g.mod.Unload() }); err != nil {
		errs = append(errs, fmt.Errorf("unloading the kernels: %v", err))
	}
	if err := g.dev.ReleasePrimaryCtx(); err != nil {
		errs = append(errs, fmt.Errorf("releasing the context: %v", err))
	}
	return errors.Join(errs...)
}

// Alloc returns bytes of device memory.
func (g *GPU) Alloc(bytes int64) (gpu.Ptr, error) {
	var p cu.DevicePtr
	err := g.with(func() error {
		var err error
		p, err = cu.MemAlloc(bytes)
		return err
	})
	if errors.Is(err, cu.OutOfMemory) {
		return 0, fmt.Errorf("%s: %w (%v)", g, gpu.ErrOutOfMemory, err)
	}
	if err != nil {
		return 0, fmt.Errorf("%s: allocating %d bytes: %v", g, bytes, err)
	}
	return gpu.Ptr(p), nil
}

// Free releases memory from Alloc.
func (g *GPU) Free(p gpu.Ptr) error {
	return g.with(func() error { return cu.MemFree(cu.DevicePtr(p)) })
}

// grid returns the blocks of a launch over threads work items.
func (g *GPU) grid(threads int64) int {
	return int(min((threads+launchBlock-1)/launchBlock, int64(g.maxGrid)))
}
