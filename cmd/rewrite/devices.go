package main

import (
	"fmt"

	"multigpu/graph"
	"multigpu/runtime"
	"multigpu/runtime/cuda"
	"multigpu/runtime/devmap"
)

// The backends --backend chooses between.
const (
	backendAuto = "auto" // CUDA when built with it and a GPU is found, else CPU workers
	backendCPU  = "cpu"  // CPU workers stand in for every device
	backendCUDA = "cuda" // real GPUs; an error when there are none
)

// gpuBackend holds the real GPUs a run uses, once resolved.
type gpuBackend struct {
	m     devmap.Map
	count int // physical GPUs found
	set   *devmap.Set
	tf32  cuda.TF32
	found []devmap.GPU
}

// resolveBackend decides between CPU workers and CUDA. It returns nil for
// CPU workers. Asking for CUDA where there is none is an error that says
// how to build with it.
func resolveBackend(o *options) (*gpuBackend, error) {
	if o.backend == backendCPU {
		return nil, nil
	}
	gpus, err := devmap.Discover()
	if err != nil || len(gpus) == 0 {
		if o.backend == backendAuto {
			return nil, nil
		}
		if err == nil {
			err = fmt.Errorf("no GPU found")
		}
		return nil, fmt.Errorf("--backend cuda: %w", err)
	}
	return &gpuBackend{m: o.deviceMap, count: len(gpus), tf32: o.tf32, found: gpus}, nil
}

// tf32Enabled reports whether any GPU of the backend computes f32 products
// with TF32 (--tf32 on, or auto on Ampere and up): --check then allows
// TF32's tolerance.
func (b *gpuBackend) tf32Enabled() bool {
	if b == nil {
		return false
	}
	for _, g := range b.found {
		if b.tf32.Enabled(g.Major, g.Minor) {
			return true
		}
	}
	return false
}

// available returns the logical GPUs the backend can run: the default of
// --available.
func (b *gpuBackend) available() []graph.Device { return b.m.Available(b.count) }

// options returns the runtime options that serve g's devices with this
// backend's GPUs (and the host for cpu), and a function that releases them.
func (b *gpuBackend) options(g *graph.Graph, opts runtime.Options) (runtime.Options, func(), error) {
	if b == nil {
		return opts, func() {}, nil
	}
	if err := b.m.Check(b.count, g.Devices()); err != nil {
		return opts, nil, err
	}
	set := devmap.OpenWith(b.m, devmap.Options{TF32: b.tf32})
	opts.Devices = set.Devices
	return opts, func() { set.Close() }, nil
}
