// Package backend declares what a device must provide to run lowered
// programs: memory it holds buffers in, explicit copies between that memory
// and the host, and compilation of one device's program for a set of
// concrete shapes. runtime/cpu implements it on the host for every device;
// the GPU backend (runtime/gpu) implements the same interfaces per GPU,
// and the optional Releaser and Copier, which let the executor give
// memory back as soon as a value is dead and copy between GPUs directly.
package backend

import (
	"context"
	"fmt"
	"strings"

	"gorgonia.org/tensor"

	"multigpu/graph"
)

// Device is one device's runtime. The executor calls Compile from one
// goroutine at a time; Upload, Download and the Run method of what Compile
// returns may be called from several goroutines at once (but each
// Executable runs once at a time).
type Device interface {
	// Place returns the device this serves, as graphs name it.
	Place() graph.Device
	// Check reports whether the device can run node n (its op,
	// attributes and element type). Lowering calls it for every node
	// placed here, so an unsupported op fails before any run.
	Check(n *graph.Node) error
	// Upload copies a host tensor into device memory. A device whose memory
	// is host memory may keep t itself: callers must not change t after.
	Upload(t *tensor.Dense) (Buffer, error)
	// Download returns b's contents as a host tensor, which may share
	// memory with b: callers must not change it.
	Download(b Buffer) (*tensor.Dense, error)
	// Compile builds p, whose every shape is concrete, into something
	// that runs.
	Compile(p *Program) (Executable, error)
}

// Releaser is a Device that can take a buffer's memory back before the
// garbage collector finds the buffer unreachable (runtime/gpu does).
//
// The executor calls Release exactly once for every buffer the device
// returned to it during a run (from Upload, CopyFrom or a program's Run),
// as soon as no later transfer or program of the run reads it: right after
// the last reader has finished, right after it is produced when nothing
// reads it, and, when the run fails, for everything the run produced. It
// never releases the buffers of params and constants, nor values computed
// from them alone that it keeps across runs (resident transfers), nor the
// graph outputs of a run that succeeds.
//
// Release drops one reference, not necessarily memory: every buffer
// Upload, CopyFrom and Run return must be a reference of its own (an
// output that views an input, as a reshape may, is a new Buffer), and
// memory that another live buffer shares must stay valid until that one
// is released too (runtime/gpu counts the references to each block).
// Memory the device did not allocate (a tensor Upload kept) must not be
// reused, and tensors Download returned stay valid after Release.
type Releaser interface {
	// Release tells the device the caller is done with b, one of its
	// buffers; b must not be used after. It is safe for concurrent use
	// with the device's other methods.
	Release(b Buffer)
}

// Copier is a Device that copies a value from another device of its own
// kind without passing through the host (runtime/gpu: a device-to-device
// or peer copy).
//
// The executor's copy transfers call CopyFrom on the destination device
// when it implements Copier and the source device is of the same concrete
// type (two *gpu.Device, say, on one GPU or two); every other transfer,
// and every copy between devices of different kinds, downloads the value
// to the host and uploads it.
type Copier interface {
	// CopyFrom returns a buffer of this device holding src's value; src
	// is a buffer of another device of the same kind, which stays valid.
	CopyFrom(src Buffer) (Buffer, error)
}

// Buffer is a value held in one device's memory.
type Buffer interface {
	// Device returns where the buffer lives.
	Device() graph.Device
	// Shape returns the buffer's shape (empty for a scalar).
	Shape() []int
	// DType returns the element type.
	DType() graph.DType
}

// Program is one device's work in one stage, with concrete shapes: every
// dimension of every node's Type has a value (graph.Dim.Value).
type Program struct {
	Device graph.Device
	Stage  int
	// Nodes are computed in order. Their operands are other Nodes or
	// Inputs.
	Nodes []*graph.Node
	// Inputs are bound to buffers on every run, in this order.
	Inputs []*graph.Node
	// Outputs are returned by every run, in this order.
	Outputs []*graph.Node
	// Info holds what some ops need beyond their operands, by node name.
	Info map[string]NodeInfo
	// BeforeNode, when set, is called before each node runs, from the
	// goroutine running the program; an error it returns fails the node.
	BeforeNode func(ctx context.Context, dev graph.Device, n *graph.Node) error
}

// NodeInfo places a node's value within the whole batch, for ops whose
// result for a sample must not depend on how the batch was split (dropout
// masks are keyed by the original node and the global sample index).
type NodeInfo struct {
	// Key names the node in the single-device graph the program came
	// from.
	Key string
	// BatchAxis is the axis of the value that holds the batch or a share
	// of it, or -1; BatchMul is that axis's multiple of the batch
	// (N*20: 20, else 1).
	BatchAxis int
	BatchMul  int64
	// Offset is the index, in the whole batch, of the value's first sample.
	Offset int64
}

// RunOptions are the settings of one run.
type RunOptions struct {
	// Seed keys dropout masks in training mode.
	Seed uint64
}

// Executable is a compiled program.
type Executable interface {
	// Run binds inputs (in Program.Inputs order, each on this device) and
	// returns the outputs in Program.Outputs order. It stops early, with
	// ctx's error, when ctx is done. Errors name the node (NodeError).
	Run(ctx context.Context, inputs []Buffer, opts RunOptions) ([]Buffer, error)
}

// NodeError is an error raised while running one node on one device.
type NodeError struct {
	Device graph.Device
	Node   string
	Op     string
	Err    error
}

// PanicError is a kernel's panic, recovered where it happened so that the
// run fails like any other (buffers released, other devices stopped): a
// bug, whatever the input. Stack is the kernel goroutine's stack.
type PanicError struct {
	Value any
	Stack []byte
}

// Error returns "panic: VALUE".
func (e *PanicError) Error() string { return fmt.Sprintf("panic: %v", e.Value) }

// Error returns "gpu:1: %h.r1 (matmul): message".
func (e *NodeError) Error() string {
	return fmt.Sprintf("%s: %%%s (%s): %v", e.Device, e.Node, e.Op, e.Err)
}

// Unwrap returns the underlying error.
func (e *NodeError) Unwrap() error { return e.Err }

// Structural reports whether op only moves elements (copy, slice, concat,
// reshape, transpose, flatten) or reads a size (dim): the ops a backend
// runs on every element type.
func Structural(op string) bool {
	switch op {
	case "copy", "slice", "concat", "reshape", "transpose", "flatten", "dim":
		return true
	}
	return false
}

// DTypes is a set of element types.
type DTypes uint8

// The sets of element types the op table's rules use.
const (
	Floats  = DTypes(1<<graph.F32 | 1<<graph.F64)
	Ints    = DTypes(1<<graph.I32 | 1<<graph.I64)
	Numeric = Floats | Ints
	Bools   = DTypes(1 << graph.Bool)
	AnyType = Numeric | Bools
)

// Has reports whether t is in s.
func (s DTypes) Has(t graph.DType) bool { return t < 8 && s&(1<<t) != 0 }

// String lists s: "f32 and f64", "f32, f64, i32 and i64".
func (s DTypes) String() string {
	var names []string
	for t := graph.F32; t <= graph.Bool; t++ {
		if s.Has(t) {
			names = append(names, t.String())
		}
	}
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

// ElementTypes returns the element types the backends run op on: args[i]
// for operand i (the last entry for any further operands) and res for the
// result. Ops it does not list run on f32 and f64 only.
func ElementTypes(op string) (args []DTypes, res DTypes) {
	if Structural(op) {
		return []DTypes{AnyType}, AnyType
	}
	switch op {
	// ops-index: gather, gather_grad, expand, argmax, argmin.
	case "gather":
		return []DTypes{AnyType, Ints}, AnyType
	case "gather_grad":
		return []DTypes{Ints, Floats}, Floats
	case "expand":
		return []DTypes{AnyType}, AnyType
	case "argmax", "argmin":
		return []DTypes{Numeric}, DTypes(1 << graph.I64)
	// ops-elementwise: where, the comparisons, the logic ops, cast.
	case "where":
		return []DTypes{Bools, AnyType}, AnyType
	case "equal":
		return []DTypes{AnyType}, Bools
	case "less", "greater", "less_equal", "greater_equal":
		return []DTypes{Numeric}, Bools
	case "not", "and", "or", "xor":
		return []DTypes{Bools}, Bools
	case "cast":
		return []DTypes{AnyType}, AnyType
	}
	return []DTypes{Floats}, Floats
}

// CheckElementTypes is the element-type rule of the CPU and GPU backends
// (name says which, in the error): each op on the element types
// ElementTypes gives it.
func CheckElementTypes(n *graph.Node, name string) error {
	args, res := ElementTypes(n.Op)
	for i, a := range n.Args {
		if s := args[min(i, len(args)-1)]; !s.Has(a.Type.DType) {
			return fmt.Errorf("%s on %s is not supported by the %s backend (%s only)", n.Op, a.Type.DType, name, s)
		}
	}
	if !res.Has(n.Type.DType) {
		return fmt.Errorf("%s on %s is not supported by the %s backend (%s only)", n.Op, n.Type.DType, name, res)
	}
	return nil
}

// IndexError is the run-time error of a gather (or gather_grad) given the
// index v, out of range for an axis of size rows; both backends report it.
func IndexError(v int64, axis, rows int) error {
	return fmt.Errorf("index %d is out of range for axis %d of size %d (expected %d to %d)", v, axis, rows, -rows, rows-1)
}
