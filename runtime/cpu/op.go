package cpu

import (
	"context"
	"fmt"
	"hash"
	"hash/fnv"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"multigpu/graph"
	"multigpu/runtime/backend"
	"multigpu/runtime/host"
)

// runState is what the ops of one program see of the current run. It is
// written by Run before the machine starts and read by the ops on the
// machine's goroutine.
type runState struct {
	dev    graph.Device
	ctx    context.Context
	opts   backend.RunOptions
	before func(ctx context.Context, dev graph.Device, n *graph.Node) error
	err    error // the first node error of the run
}

// check returns the run's context error, if any.
func (rs *runState) check() error { return rs.ctx.Err() }

// op is one IR node as a gorgonia Op. Its hash names the device and the
// node, so gorgonia never merges two nodes of a program.
type op struct {
	n      *graph.Node
	rs     *runState
	kern   kernelFn
	dt     graph.DType
	in     []hm.Type
	out    hm.Type
	gshape tensor.Shape // the result's shape as gorgonia sees it
}

func tensorType(dt graph.DType, shape []int) (hm.Type, error) {
	gdt, err := host.Dtype(dt)
	if err != nil {
		return nil, err
	}
	return G.TensorType{Dims: len(internalShape(shape)), Of: gdt}, nil
}

// Arity returns the number of operands.
func (o *op) Arity() int { return len(o.in) }

// Type returns the op's (monomorphic) function type.
func (o *op) Type() hm.Type {
	ts := append(append([]hm.Type{}, o.in...), o.out)
	return hm.NewFnType(ts...)
}

// InferShape returns the result's shape, fixed when the program was built.
func (o *op) InferShape(...G.DimSizer) (tensor.Shape, error) { return o.gshape.Clone(), nil }

// Do runs the kernel. Errors and panics become a NodeError, recorded as
// the run's first error.
func (o *op) Do(vs ...G.Value) (v G.Value, err error) {
	rs := o.rs
	defer func() {
		if r := recover(); r != nil {
			v, err = nil, o.fail(fmt.Errorf("panic: %v", r))
		}
	}()
	if err := rs.ctx.Err(); err != nil {
		return nil, o.fail(err)
	}
	if rs.before != nil {
		if err := rs.before(rs.ctx, rs.dev, o.n); err != nil {
			return nil, o.fail(err)
		}
	}
	ins := make([]any, len(vs))
	for i, v := range vs {
		t, ok := v.(*tensor.Dense)
		if !ok {
			return nil, o.fail(fmt.Errorf("operand %d is a %T, not a tensor", i, v))
		}
		ins[i] = t.Data()
	}
	out, err := o.kern(ins, rs)
	if err != nil {
		return nil, o.fail(err)
	}
	return tensor.New(tensor.WithShape(o.gshape...), tensor.WithBacking(out)), nil
}

func (o *op) fail(err error) error {
	ne := &backend.NodeError{Device: o.rs.dev, Node: o.n.Name, Op: o.n.Op, Err: err}
	if o.rs.err == nil {
		o.rs.err = ne
	}
	return ne
}

// ReturnsPtr reports false: the VM gives the result a register of its own.
func (o *op) ReturnsPtr() bool { return false }

// CallsExtern reports false: kernels are Go.
func (o *op) CallsExtern() bool { return false }

// OverwritesInput returns -1: no kernel writes into an operand.
func (o *op) OverwritesInput() int { return -1 }

// WriteHash writes the device and node name, unique within a program.
func (o *op) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "multigpu %s %s %%%s", o.rs.dev, o.n.Op, o.n.Name)
}

// Hashcode returns the FNV-1a hash of WriteHash.
func (o *op) Hashcode() uint32 {
	h := fnv.New32a()
	o.WriteHash(h)
	return h.Sum32()
}

// String returns "op %name".
func (o *op) String() string { return o.n.Op + " %" + o.n.Name }

// executable is a compiled program: its gorgonia graph and machine.
type executable struct {
	prog    *backend.Program
	rs      *runState
	inputs  []*G.Node
	outputs []*G.Node
	shapes  [][]int // of the outputs
	m       G.VM
}

// Compile builds p as a gorgonia graph with one node per input and per
// program node, and a TapeMachine to run it. Not safe for concurrent use
// with other calls to Compile.
func (d *Device) Compile(p *backend.Program) (backend.Executable, error) {
	g := G.NewGraph()
	rs := &runState{dev: d.place, before: p.BeforeNode}
	e := &executable{prog: p, rs: rs}
	gn := make(map[*graph.Node]*G.Node, len(p.Inputs)+len(p.Nodes))
	shapes := make(map[*graph.Node][]int, len(p.Inputs)+len(p.Nodes))
	nodeErr := func(n *graph.Node, err error) error {
		return &backend.NodeError{Device: d.place, Node: n.Name, Op: n.Op, Err: err}
	}
	for _, in := range p.Inputs {
		shape, err := shapeOf(in.Type)
		if err != nil {
			return nil, nodeErr(in, err)
		}
		gdt, err := host.Dtype(in.Type.DType)
		if err != nil {
			return nil, nodeErr(in, err)
		}
		is := internalShape(shape)
		n := G.NewTensor(g, gdt, len(is), G.WithShape(is...), G.WithName(in.Name))
		gn[in], shapes[in] = n, shape
		e.inputs = append(e.inputs, n)
	}
	for _, n := range p.Nodes {
		if err := d.Check(n); err != nil {
			return nil, nodeErr(n, err)
		}
		out, err := shapeOf(n.Type)
		if err != nil {
			return nil, nodeErr(n, err)
		}
		s := &spec{node: n, dt: n.Type.DType, out: out, info: p.Info[n.Name]}
		o := &op{n: n, rs: rs, dt: n.Type.DType, gshape: tensor.Shape(internalShape(out)).Clone()}
		args := make([]*G.Node, len(n.Args))
		for i, a := range n.Args {
			if gn[a] == nil {
				return nil, nodeErr(n, fmt.Errorf("operand %%%s is neither an input nor computed before", a.Name))
			}
			args[i] = gn[a]
			s.in = append(s.in, shapes[a])
			t, err := tensorType(a.Type.DType, shapes[a])
			if err != nil {
				return nil, nodeErr(n, err)
			}
			o.in = append(o.in, t)
		}
		if o.out, err = tensorType(n.Type.DType, out); err != nil {
			return nil, nodeErr(n, err)
		}
		if o.kern, err = build(s); err != nil {
			return nil, nodeErr(n, err)
		}
		r, err := G.ApplyOpWithName(o, n.Name, args...)
		if err != nil {
			return nil, nodeErr(n, fmt.Errorf("building the gorgonia node: %v", err))
		}
		gn[n], shapes[n] = r, out
	}
	for _, o := range p.Outputs {
		if gn[o] == nil {
			return nil, nodeErr(o, fmt.Errorf("output is not computed by the program"))
		}
		e.outputs = append(e.outputs, gn[o])
		e.shapes = append(e.shapes, shapes[o])
	}
	e.m = G.NewTapeMachine(g)
	return e, nil
}

// Run binds the inputs, runs the machine and returns the outputs.
func (e *executable) Run(ctx context.Context, inputs []backend.Buffer, opts backend.RunOptions) ([]backend.Buffer, error) {
	if len(inputs) != len(e.inputs) {
		return nil, fmt.Errorf("%s: program takes %d inputs, given %d", e.rs.dev, len(e.inputs), len(inputs))
	}
	for i, b := range inputs {
		cb, ok := b.(*Buffer)
		if !ok {
			return nil, fmt.Errorf("%s: input %%%s is a %T, not a cpu buffer", e.rs.dev, e.prog.Inputs[i].Name, b)
		}
		if err := G.Let(e.inputs[i], cb.t); err != nil {
			return nil, fmt.Errorf("%s: binding %%%s: %v", e.rs.dev, e.prog.Inputs[i].Name, err)
		}
	}
	e.rs.ctx, e.rs.opts, e.rs.err = ctx, opts, nil
	defer func() { e.rs.ctx = nil }()
	e.m.Reset()
	err := e.m.RunAll()
	if e.rs.err != nil {
		return nil, e.rs.err
	}
	if err != nil {
		return nil, fmt.Errorf("%s: stage %d: %v", e.rs.dev, e.prog.Stage, err)
	}
	outs := make([]backend.Buffer, len(e.outputs))
	for i, n := range e.outputs {
		t, ok := n.Value().(*tensor.Dense)
		if !ok {
			return nil, fmt.Errorf("%s: output %%%s holds a %T", e.rs.dev, e.prog.Outputs[i].Name, n.Value())
		}
		outs[i] = &Buffer{dev: e.rs.dev, dt: e.prog.Outputs[i].Type.DType, shape: e.shapes[i], t: t}
	}
	return outs, nil
}
