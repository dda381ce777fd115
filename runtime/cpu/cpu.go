// Package cpu is the host backend of the runtime: it serves any device of a
// placed graph (cpu, or a gpu:K standing in for a GPU when none is present)
// from host memory, running each device program as a gorgonia ExprGraph on
// a TapeMachine.
//
// Every op of the IR is a gorgonia Op of this package (see op.go) with a
// Go kernel that computes exactly what the op table in DESIGN.md says. The
// gorgonia built-ins are not used: their relu and leaky_relu are products
// with comparison masks (NaN at ±Inf), there is no min reduction, grouped
// or asymmetrically padded conv2d, or batchnorm with mean and variance
// operands, SoftMax hashes like LogSoftMax and is rewritten by the
// optimiser when a Log follows, and ops that implement UsePreallocDo
// (matmul among them) write into registers the VM reuses, overwriting
// values the runtime still reads after the run. Kernels allocate their
// results and never write into an operand, so every node's value stays
// valid after RunAll and inputs are never modified.
//
// The ops implement the forward computation only (gorgonia sees them as
// not differentiable). Gradients for training belong in the IR, as a
// backward graph the replicate pass can split and whose gradient sums it
// can combine across replicas; a gorgonia gradient inside one device's
// program could not cross the stages of a replicated graph.
//
// Programs are built once per set of concrete shapes; building is not safe
// for concurrent use (gorgonia's graph construction races), so the
// executor serialises calls to Compile. Separate programs run concurrently.
package cpu

import (
	"fmt"

	"gorgonia.org/tensor"

	"multigpu/graph"
	"multigpu/runtime/backend"
	"multigpu/runtime/host"
)

// Device runs programs for one device of a graph in host memory.
type Device struct {
	place graph.Device
}

// New returns a host backend for device d.
func New(d graph.Device) *Device { return &Device{place: d} }

// Place returns the device d serves.
func (d *Device) Place() graph.Device { return d.place }

// Buffer is a value in host memory, owned by one device.
type Buffer struct {
	dev   graph.Device
	dt    graph.DType
	shape []int         // the value's shape (empty for a scalar)
	t     *tensor.Dense // contiguous, of rank at least 1 (a scalar is [1])
}

// Device returns the device b belongs to.
func (b *Buffer) Device() graph.Device { return b.dev }

// Shape returns b's shape.
func (b *Buffer) Shape() []int { return append([]int{}, b.shape...) }

// DType returns b's element type.
func (b *Buffer) DType() graph.DType { return b.dt }

// internalShape is the shape gorgonia sees: a scalar is [1].
func internalShape(shape []int) []int {
	if len(shape) == 0 {
		return []int{1}
	}
	return shape
}

func (d *Device) wrap(dt graph.DType, shape []int, data any) *Buffer {
	return &Buffer{dev: d.place, dt: dt, shape: shape, t: host.New(internalShape(shape), data)}
}

// Upload makes t a buffer of this device without copying it (t is
// materialised first when it is a strided view).
func (d *Device) Upload(t *tensor.Dense) (backend.Buffer, error) {
	dt, ok := host.DTypeOf(t)
	if !ok {
		return nil, fmt.Errorf("%s: no graph element type for tensors of %v", d.place, t.Dtype())
	}
	return d.wrap(dt, host.Shape(t), host.Data(t)), nil
}

// Download returns b as a host tensor sharing its memory.
func (d *Device) Download(b backend.Buffer) (*tensor.Dense, error) {
	cb, ok := b.(*Buffer)
	if !ok {
		return nil, fmt.Errorf("%s: cannot download a %T", d.place, b)
	}
	return host.New(cb.shape, host.Data(cb.t)), nil
}

// Check reports whether n can run here: every op of the op table, in f32
// and f64; ops that only move elements (and dim) in every element type.
func (d *Device) Check(n *graph.Node) error {
	if graph.LookupOp(n.Op) == nil {
		return fmt.Errorf("op %s is not supported by the cpu backend", n.Op)
	}
	return backend.CheckElementTypes(n, "cpu")
}
