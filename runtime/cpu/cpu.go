// Package cpu is the host backend of the runtime: it serves any device of a
// placed graph (cpu, or a gpu:K standing in for a GPU when none is present)
// from host memory, running each device program as a list of steps, one
// Go kernel per node, that compute exactly what the op table in DESIGN.md
// says (gorgonia's built-in ops differ: their relu is a product with a
// comparison mask, NaN at ±Inf; there is no min reduction, grouped conv2d
// or batchnorm with mean and variance operands; and building a gorgonia
// TapeMachine costs time quadratic in the program's length).
//
// Compile plans where every value lives (op.go): intermediates in an arena
// of slots reused once their values are dead, elementwise results over an
// operand that dies there, and fresh memory only for what the program
// returns; after its first run a program allocates almost nothing.
// Kernels never write into a program input. Products and convolutions run
// on the gemm of package gemm, and the kernels' parallel loops on a
// par.Pool shared by every device of an executor (NewShared), so that
// replicas running at once never oversubscribe the cores.
//
// The kernels implement the forward computation only. Gradients for
// training belong in the IR, as a backward graph the replicate pass can
// split and whose gradient sums it can combine across replicas.
//
// Separate programs run concurrently; each runs once at a time.
package cpu

import (
	"fmt"

	"gorgonia.org/tensor"

	"multigpu/graph"
	"multigpu/runtime/backend"
	"multigpu/runtime/cpu/gemm"
	"multigpu/runtime/cpu/par"
	"multigpu/runtime/host"
)

// Device runs programs for one device of a graph in host memory.
type Device struct {
	place graph.Device
	pool  *par.Pool
	gemm  *gemm.Gemm
	// padded: see spec.padded.
	padded bool
}

// New returns a host backend for device d with a pool of its own, of as
// many threads as the machine has cores.
func New(d graph.Device) *Device { return NewShared(d, par.New(0)) }

// NewShared returns a host backend for device d whose kernels run on
// pool, which other devices may share.
func NewShared(d graph.Device, pool *par.Pool) *Device {
	return &Device{place: d, pool: pool, gemm: gemm.New(gemm.Best, pool)}
}

// Threads returns the number of threads of d's pool.
func (d *Device) Threads() int { return d.pool.Threads() }

// Place returns the device d serves.
func (d *Device) Place() graph.Device { return d.place }

// Buffer is a value in host memory, owned by one device.
type Buffer struct {
	dev   graph.Device
	dt    graph.DType
	shape []int // the value's shape (empty for a scalar)
	data  any   // []T of the shape's elements (one for a scalar)
}

// Device returns the device b belongs to.
func (b *Buffer) Device() graph.Device { return b.dev }

// Shape returns b's shape.
func (b *Buffer) Shape() []int { return append([]int{}, b.shape...) }

// DType returns b's element type.
func (b *Buffer) DType() graph.DType { return b.dt }

// Upload makes t a buffer of this device without copying it (t is
// materialised first when it is a strided view).
func (d *Device) Upload(t *tensor.Dense) (backend.Buffer, error) {
	dt, ok := host.DTypeOf(t)
	if !ok {
		return nil, fmt.Errorf("%s: no graph element type for tensors of %v", d.place, t.Dtype())
	}
	return &Buffer{dev: d.place, dt: dt, shape: host.Shape(t), data: host.Data(t)}, nil
}

// Download returns b as a host tensor sharing its memory.
func (d *Device) Download(b backend.Buffer) (*tensor.Dense, error) {
	cb, ok := b.(*Buffer)
	if !ok {
		return nil, fmt.Errorf("%s: cannot download a %T", d.place, b)
	}
	return host.New(cb.shape, cb.data), nil
}

// Check reports whether n can run here: every op of the op table, in f32
// and f64; ops that only move elements (and dim) in every element type.
func (d *Device) Check(n *graph.Node) error {
	if graph.LookupOp(n.Op) == nil {
		return fmt.Errorf("op %s is not supported by the cpu backend", n.Op)
	}
	return backend.CheckElementTypes(n, "cpu")
}
