package cpu

import (
	"context"
	"fmt"
	"runtime/debug"
	"unsafe"

	"multigpu/graph"
	"multigpu/runtime/backend"
	"multigpu/runtime/cpu/gemm"
	"multigpu/runtime/cpu/par"
	"multigpu/runtime/host"
)

// runState is what the kernels of one program see of the current run and
// of the node running: its planned result buffer and scratch. It is
// written by Run before each node and read by that node's kernel.
type runState struct {
	dev    graph.Device
	ctx    context.Context
	opts   backend.RunOptions
	before func(ctx context.Context, dev graph.Device, n *graph.Node) error
	pool   *par.Pool
	gemm   *gemm.Gemm
	// out is the running node's result buffer ([]T of its element type
	// and size: an arena slot, or an operand it overwrites), or nil when
	// the kernel allocates its own.
	out any
	// scratch is the running node's scratch, by the index its kernel
	// asked for it (spec.scratch), each a []float32 in the arena.
	scratch [][]float32
	// inputs are the buffers of the program's inputs in this run, by
	// input index (for kernels that keep what they derive from a param
	// across runs: packCache).
	inputs []*Buffer
}

// threads returns the pool of the run (nil: none).
func (rs *runState) threads() *par.Pool {
	if rs == nil {
		return nil
	}
	return rs.pool
}

// chunks returns how many pieces to split a loop of n items into, at
// least grain items each: a few per thread of the pool.
func (rs *runState) chunks(n, grain int) int {
	if rs == nil || rs.pool == nil {
		return 1
	}
	return par.Chunks(n, grain, 4*rs.pool.Threads())
}

// input returns the buffer of program input i in this run (nil: unknown).
func (rs *runState) input(i int) *Buffer {
	if rs == nil || i < 0 || i >= len(rs.inputs) {
		return nil
	}
	return rs.inputs[i]
}

// check returns the run's context error, if any.
func (rs *runState) check() error { return rs.ctx.Err() }

// newOut returns the running node's result buffer of n elements: its
// planned place when it has one, else a new slice. Its contents are
// undefined: the kernel must write every element.
func newOut[T any](rs *runState, n int) []T {
	if rs != nil {
		if d, ok := rs.out.([]T); ok && len(d) == n {
			return d
		}
	}
	return make([]T, n)
}

// newZeroed is newOut with every element zero.
func newZeroed[T any](rs *runState, n int) []T {
	if rs != nil {
		if d, ok := rs.out.([]T); ok && len(d) == n {
			clear(d)
			return d
		}
	}
	return make([]T, n)
}

// ret returns out as a kernel's result: the planned buffer's boxed form
// when out is it (no allocation), else out boxed.
func ret[T any](rs *runState, out []T) any {
	if rs != nil && len(out) > 0 {
		if d, ok := rs.out.([]T); ok && len(d) == len(out) && &d[0] == &out[0] {
			return rs.out
		}
	}
	return out
}

// scratchF32 returns scratch i of the running node with n elements (the
// size its kernel asked for), or a new slice when it has none planned.
func scratchF32(rs *runState, i, n int) []float32 {
	if rs != nil && i < len(rs.scratch) && len(rs.scratch[i]) >= n {
		return rs.scratch[i][:n]
	}
	return make([]float32, n)
}

// step is one node of a compiled program.
type step struct {
	n    *graph.Node
	kern kernelFn
	args []int // value indices of the operands
	ins  []any // the operands of the running step (reused)
	// place says where the result goes: an arena slot (slot >= 0), an
	// operand it overwrites (inPlace >= 0), or the kernel's own
	// allocation (both -1).
	slot, inPlace int
	bytes         int64
	dt            graph.DType
	elems         int
	scratch       []int // slot of each scratch buffer
	scratchN      []int // its size in float32s
	free          []int // values dead after this step (their references dropped)
	outAny        any   // the slot as a []T, boxed once
	scratchBufs   [][]float32
	// alias >= 0: the node is folded into its producer's kernel (fuse.go)
	// and its value is that of operand alias; dead: it is folded away
	// and has no value.
	alias int
	dead  bool
	// writes: the kernel writes its result into the buffer newOut gives
	// it (spec.arena), so a result the program returns can go where the
	// caller says (executable.dest).
	writes bool
}

// executable is a compiled program: its steps, driven in order, and the
// arena their intermediate values live in.
type executable struct {
	prog    *backend.Program
	rs      *runState
	nIn     int
	steps   []step
	vals    []any // by value: inputs, then one per step
	outputs []int // value index of each output
	shapes  [][]int
	slots   []int64    // bytes of each arena slot
	arena   [][]uint64 // the slots, allocated on the first run
	// dest, when set, holds by step a []T for the result of a step that
	// would allocate its own (one the program returns): its kernel writes
	// there instead (a chunk's share of the whole batch's buffer).
	dest []any
}

// inPlaceOps may write their result over operand 0 or 1 when it dies
// there: every result element depends only on the operand element at
// the same index.
var inPlaceOps = map[string]bool{
	"add": true, "sub": true, "mul": true, "div": true, "maximum": true, "minimum": true,
	"neg": true, "abs": true, "exp": true, "log": true, "sqrt": true, "relu": true, "sigmoid": true,
	"tanh": true, "leaky_relu": true, "erf": true,
}

// Compile builds p into a list of steps run in order by one goroutine,
// with one kernel per node and a plan of where every intermediate value
// lives: arena slots reused once a value is dead, results written over an
// operand where an elementwise op is its last reader, and fresh memory
// for what the program returns. Compiling is linear in the size of p.
func (d *Device) Compile(p *backend.Program) (backend.Executable, error) {
	if c, err := d.compileChunked(p); c != nil || err != nil {
		return c, err
	}
	return d.compile(p)
}

// compile builds p into one executable (Compile's list of steps).
func (d *Device) compile(p *backend.Program) (*executable, error) {
	rs := &runState{dev: d.place, before: p.BeforeNode, pool: d.pool, gemm: d.gemm, inputs: make([]*Buffer, len(p.Inputs))}
	e := &executable{prog: p, rs: rs, nIn: len(p.Inputs)}
	index := make(map[*graph.Node]int, len(p.Inputs)+len(p.Nodes))
	shapes := make([][]int, 0, len(p.Inputs)+len(p.Nodes))
	nodeErr := func(n *graph.Node, err error) error {
		return &backend.NodeError{Device: d.place, Node: n.Name, Op: n.Op, Err: err}
	}
	for i, in := range p.Inputs {
		shape, err := shapeOf(in.Type)
		if err != nil {
			return nil, nodeErr(in, err)
		}
		if _, err := host.Dtype(in.Type.DType); err != nil {
			return nil, nodeErr(in, err)
		}
		index[in] = i
		shapes = append(shapes, shape)
	}
	e.steps = make([]step, len(p.Nodes))
	specs := make([]*spec, len(p.Nodes))
	fuse, extra, alias, dead := fusePlan(p)
	for i, n := range p.Nodes {
		if err := d.Check(n); err != nil {
			return nil, nodeErr(n, err)
		}
		out, err := shapeOf(n.Type)
		if err != nil {
			return nil, nodeErr(n, err)
		}
		s := &spec{node: n, dt: n.Type.DType, out: out, info: p.Info[n.Name], fuse: fuse[i], threads: d.Threads(), padded: d.padded}
		st := &e.steps[i]
		st.n, st.dt, st.elems = n, n.Type.DType, numel(out)
		st.alias, st.dead = alias[i], dead[i]
		args := n.Args
		if len(extra[i]) > 0 || fuse[i] != nil && fuse[i].transB {
			args = append(append([]*graph.Node{}, n.Args...), extra[i]...)
			if fuse[i].transB {
				args[1] = n.Args[1].Args[0]
			}
		}
		if st.dead {
			args = nil
		}
		st.args = make([]int, len(args))
		st.ins = make([]any, len(args))
		for k, a := range args {
			v, ok := index[a]
			if !ok {
				return nil, nodeErr(n, fmt.Errorf("operand %%%s is neither an input nor computed before", a.Name))
			}
			st.args[k] = v
			s.in = append(s.in, shapes[v])
			if v < e.nIn {
				s.inputs = append(s.inputs, v)
			} else {
				s.inputs = append(s.inputs, -1)
			}
		}
		if st.alias >= 0 {
			s.view = true
		} else if !st.dead {
			if st.kern, err = build(s); err != nil {
				return nil, nodeErr(n, err)
			}
			st.writes = s.arena && !s.view
		}
		specs[i] = s
		index[n] = e.nIn + i
		shapes = append(shapes, out)
	}
	for _, o := range p.Outputs {
		v, ok := index[o]
		if !ok {
			return nil, nodeErr(o, fmt.Errorf("output is not computed by the program"))
		}
		e.outputs = append(e.outputs, v)
		e.shapes = append(e.shapes, shapes[v])
	}
	e.vals = make([]any, len(shapes))
	e.plan(specs)
	return e, nil
}

// plan decides where every step's result lives. Views (reshape, a slice
// of a prefix, dropout in inference) share their operand's memory, its
// root's; a root lives from its step to the last step reading it or a
// view of it. Results the program returns, and the roots they view,
// escape: their kernels allocate them on every run. Kernels that write
// into a planned buffer (spec.arena) get an arena slot, or an operand
// that dies at their step (inPlaceOps); others allocate.
func (e *executable) plan(specs []*spec) {
	nv := len(e.vals)
	root := make([]int, nv)
	last := make([]int, nv) // by root: the last step reading it (-1: none)
	escapes := make([]bool, nv)
	for v := range nv {
		root[v], last[v] = v, -1
	}
	for i := range e.steps {
		st := &e.steps[i]
		v := e.nIn + i
		for _, a := range st.args {
			last[root[a]] = i
		}
		if specs[i].view {
			root[v] = root[st.args[max(st.alias, 0)]]
		}
	}
	for _, o := range e.outputs {
		escapes[root[o]] = true
	}
	// free[i] lists the roots whose last reader is step i, and those
	// nothing reads freed at their own step.
	var sp slotPlanner
	for i := range e.steps {
		st := &e.steps[i]
		v := e.nIn + i
		s := specs[i]
		st.slot, st.inPlace = -1, -1
		owned := root[v] == v && !st.dead // not a view
		if owned && s.arena && !escapes[v] {
			if inPlaceOps[st.n.Op] {
				for k, a := range st.args {
					r := root[a]
					if r < e.nIn || escapes[r] || last[r] != i || st.elems != e.steps[r-e.nIn].elems ||
						e.steps[r-e.nIn].dt != st.dt || e.steps[r-e.nIn].slot < 0 && e.steps[r-e.nIn].inPlace < 0 {
						continue
					}
					shared := false
					for k2, a2 := range st.args {
						shared = shared || k2 != k && root[a2] == r
					}
					if !shared {
						st.inPlace = k
						break
					}
				}
			}
			if st.inPlace >= 0 {
				// The result takes over the operand's memory: its root
				// becomes this value, alive until this value's last use.
				r := root[st.args[st.inPlace]]
				sp.transfer(r, v)
			} else {
				st.bytes = int64(st.elems) * int64(st.dt.Size())
				st.slot = sp.take(v, st.bytes)
			}
		}
		for _, b := range s.scratch {
			slot := sp.take(-1, b*4)
			st.scratch = append(st.scratch, slot)
			st.scratchN = append(st.scratchN, int(b))
		}
		for _, slot := range st.scratch {
			sp.giveSlot(slot)
		}
		// Values whose last reader is this step die here, and a value
		// nothing reads dies where it is made.
		for _, a := range st.args {
			r := root[a]
			if last[r] == i && r >= e.nIn && !escapes[r] {
				sp.give(r)
				st.free = append(st.free, r)
			}
		}
		if owned && last[v] < 0 && !escapes[v] {
			sp.give(v)
			st.free = append(st.free, v)
		}
	}
	e.slots = sp.sizes
}

// slotPlanner assigns values to arena slots in program order: a value
// takes the smallest free slot that holds it, else the largest free slot
// (which grows), else a new one; a slot is free again once its value is
// dead. Each step costs time in the number of free slots, which stays
// small, so planning is linear in the program's length.
type slotPlanner struct {
	sizes []int64     // by slot
	free  []int       // free slots, by size ascending
	owner map[int]int // by value: its slot
}

func (sp *slotPlanner) take(v int, bytes int64) int {
	bytes = (bytes + 63) &^ 63
	slot := -1
	for i, s := range sp.free {
		if sp.sizes[s] >= bytes {
			slot = s
			sp.free = append(sp.free[:i], sp.free[i+1:]...)
			break
		}
	}
	if slot < 0 && len(sp.free) > 0 {
		slot = sp.free[len(sp.free)-1]
		sp.free = sp.free[:len(sp.free)-1]
		sp.sizes[slot] = bytes
	}
	if slot < 0 {
		slot = len(sp.sizes)
		sp.sizes = append(sp.sizes, bytes)
	}
	if v >= 0 {
		if sp.owner == nil {
			sp.owner = map[int]int{}
		}
		sp.owner[v] = slot
	}
	return slot
}

// transfer hands value from's slot (if it has one) to value to.
func (sp *slotPlanner) transfer(from, to int) {
	if s, ok := sp.owner[from]; ok {
		delete(sp.owner, from)
		sp.owner[to] = s
	}
}

// give frees the slot of value v, if it has one.
func (sp *slotPlanner) give(v int) {
	if s, ok := sp.owner[v]; ok {
		delete(sp.owner, v)
		sp.giveSlot(s)
	}
}

func (sp *slotPlanner) giveSlot(s int) {
	i := 0
	for i < len(sp.free) && sp.sizes[sp.free[i]] < sp.sizes[s] {
		i++
	}
	sp.free = append(sp.free, 0)
	copy(sp.free[i+1:], sp.free[i:])
	sp.free[i] = s
}

// ArenaBytes returns the bytes of e's arena (allocated on its first run).
func (e *executable) ArenaBytes() int64 {
	var n int64
	for _, s := range e.slots {
		n += s
	}
	return n
}

// allocate makes the arena and gives every step its typed slot.
func (e *executable) allocate() {
	e.arena = make([][]uint64, len(e.slots))
	for i, b := range e.slots {
		e.arena[i] = make([]uint64, b/8)
	}
	for i := range e.steps {
		st := &e.steps[i]
		if st.slot >= 0 && st.elems > 0 {
			st.outAny = typedSlice(st.dt, e.arena[st.slot], st.elems)
		}
		st.scratchBufs = make([][]float32, len(st.scratch))
		for k, slot := range st.scratch {
			if n := st.scratchN[k]; n > 0 {
				st.scratchBufs[k] = unsafe.Slice((*float32)(unsafe.Pointer(&e.arena[slot][0])), n)
			}
		}
	}
}

// typedSlice views the start of buf as n elements of dt.
func typedSlice(dt graph.DType, buf []uint64, n int) any {
	p := unsafe.Pointer(&buf[0])
	switch dt {
	case graph.F32:
		return unsafe.Slice((*float32)(p), n)
	case graph.F64:
		return unsafe.Slice((*float64)(p), n)
	case graph.I32:
		return unsafe.Slice((*int32)(p), n)
	case graph.I64:
		return unsafe.Slice((*int64)(p), n)
	case graph.Bool:
		return unsafe.Slice((*bool)(p), n)
	}
	return nil
}

// Run binds the inputs, runs the steps in order and returns the outputs.
// Errors and panics of a kernel are a NodeError naming the node.
func (e *executable) Run(ctx context.Context, inputs []backend.Buffer, opts backend.RunOptions) (_ []backend.Buffer, err error) {
	vals := make([]any, len(e.outputs))
	if err := e.runTo(ctx, inputs, opts, vals); err != nil {
		return nil, err
	}
	outs := make([]backend.Buffer, len(e.outputs))
	for i, v := range vals {
		o := e.prog.Outputs[i]
		outs[i] = &Buffer{dev: e.rs.dev, dt: o.Type.DType, shape: e.shapes[i], data: v}
	}
	return outs, nil
}

// runTo is Run, leaving the outputs' data (each a []T) in outs.
func (e *executable) runTo(ctx context.Context, inputs []backend.Buffer, opts backend.RunOptions, outs []any) error {
	if len(inputs) != e.nIn {
		return fmt.Errorf("%s: program takes %d inputs, given %d", e.rs.dev, e.nIn, len(inputs))
	}
	defer clear(e.rs.inputs)
	for i, b := range inputs {
		cb, ok := b.(*Buffer)
		if !ok {
			return fmt.Errorf("%s: input %%%s is a %T, not a cpu buffer", e.rs.dev, e.prog.Inputs[i].Name, b)
		}
		e.vals[i] = cb.data
		e.rs.inputs[i] = cb
	}
	if e.arena == nil {
		e.allocate()
	}
	rs := e.rs
	rs.ctx, rs.opts = ctx, opts
	if rs.pool != nil {
		rs.pool.Open()
		defer rs.pool.Close()
	}
	defer func() {
		rs.ctx, rs.out, rs.scratch = nil, nil, nil
		clear(e.vals)
	}()
	for i := range e.steps {
		if err := e.runStep(i); err != nil {
			return err
		}
	}
	for i, v := range e.outputs {
		outs[i] = e.vals[v]
	}
	return nil
}

// runStep runs one step, recovering a kernel's panic as its error.
func (e *executable) runStep(i int) (err error) {
	st, rs := &e.steps[i], e.rs
	defer func() {
		if r := recover(); r != nil {
			err = e.fail(st, &backend.PanicError{Value: r, Stack: debug.Stack()})
		}
	}()
	if err := rs.ctx.Err(); err != nil {
		return e.fail(st, err)
	}
	if rs.before != nil {
		if err := rs.before(rs.ctx, rs.dev, st.n); err != nil {
			return e.fail(st, err)
		}
	}
	if st.dead {
		return nil
	}
	if st.alias >= 0 {
		e.vals[e.nIn+i] = e.vals[st.args[st.alias]]
		for _, v := range st.free {
			e.vals[v] = nil
		}
		return nil
	}
	for k, a := range st.args {
		st.ins[k] = e.vals[a]
	}
	switch {
	case st.inPlace >= 0:
		rs.out = st.ins[st.inPlace]
	case st.slot >= 0:
		rs.out = st.outAny
	case e.dest != nil:
		rs.out = e.dest[i]
	default:
		rs.out = nil
	}
	rs.scratch = st.scratchBufs
	out, err := st.kern(st.ins, rs)
	clear(st.ins)
	if err != nil {
		return e.fail(st, err)
	}
	e.vals[e.nIn+i] = out
	for _, v := range st.free {
		e.vals[v] = nil
	}
	return nil
}

func (e *executable) fail(st *step, err error) error {
	return &backend.NodeError{Device: e.rs.dev, Node: st.n.Name, Op: st.n.Op, Err: err}
}
