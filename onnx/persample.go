package onnx

import (
	"fmt"
	"slices"
	"sort"

	"gorgonia.org/tensor"

	"multigpu/graph"
)

// Per-sample constants. PyTorch exports the target of a loss, when the
// model was traced with one, as a constant (a Constant node or an
// initializer): one row per sample of the batch, multiplied elementwise
// with the input. As a param it cannot broadcast against the bound batch
// (f32[10,10] against f32[N=10,10]), nor as a const, and splitting the
// batch must split it too. With the batch bound to B, a constant that fails to broadcast
// against a batch-carrying operand of an elementwise op, and would
// broadcast had it the batch on the axis aligned with that operand's batch
// axis (where its size is B), is imported again as an input carrying the
// batch there, with its data as the input's default (Model.Defaults).
// Weights with B rows that feed a MatMul, or anything but such ops, stay
// params.

// broadcastOps are the IR's elementwise ops of two operands that broadcast.
var broadcastOps = []string{"add", "sub", "mul", "div", "maximum", "minimum"}

// perSampleError is the failure to apply an op to a per-sample constant as
// a param: Import starts again with the constant as an input.
type perSampleError struct {
	name string // its ONNX name
	axis int    // the axis that holds the batch
	err  error  // the failure as a param
}

func (e *perSampleError) Error() string { return e.err.Error() }
func (e *perSampleError) Unwrap() error { return e.err }

// perSample returns, for op failing on args with err, the error that makes
// Import read one of them as a per-sample constant, or err when none is.
func (c *nodeCtx) perSample(op string, args []*graph.Node, err error) error {
	im := c.im
	b := im.batch
	if b.Sym == "" || b.Bound <= 0 || len(args) != 2 || !slices.Contains(broadcastOps, op) {
		return err
	}
	for i, p := range args {
		o := args[1-i]
		v := im.constOf(p)
		ax := o.Type.BatchAxis()
		if v == nil || ax < 0 {
			continue
		}
		j := ax - (o.Type.Rank() - p.Type.Rank())
		if j < 0 || !p.Type.Shape[j].Equal(graph.Const(b.Bound)) {
			continue
		}
		// It broadcasts as a batch-carrying input.
		t := p.Type.Clone()
		t.Shape[j] = b
		in := &graph.Node{Name: p.Name, Op: graph.OpInput, Type: t}
		try := &graph.Node{Op: op, Args: []*graph.Node{in, o}}
		if i == 1 {
			try.Args = []*graph.Node{o, in}
		}
		if _, e := graph.Infer(try); e == nil {
			return &perSampleError{name: v.onnx, axis: j, err: err}
		}
	}
	return err
}

// constOf returns the value known at import time (an initializer, a
// Constant's output, a folded computation) that the param or const p
// holds, or nil (p is neither, is one the importer made, or holds a value
// Options.Constants gave).
func (im *importer) constOf(p *graph.Node) *value {
	if p.Op != graph.OpParam && p.Op != graph.OpConst {
		return nil
	}
	for _, v := range im.values {
		if v.node == p && v.data != nil && !(v.init && v.initIndex >= len(im.mp.graph.initializers)) {
			return v
		}
	}
	return nil
}

// perSampleInput adds v, which Import found to be per-sample, as an input
// carrying the batch on its axis, with its data as the input's default.
func (im *importer) perSampleInput(v *value, ax int) (*graph.Node, error) {
	b := im.batch
	t := denseType(v.data)
	if b.Sym == "" || b.Bound <= 0 || ax >= t.Rank() || !t.Shape[ax].Equal(graph.Const(b.Bound)) {
		return nil, fmt.Errorf("internal error: %q is per-sample but has no size %v on axis %d", v.onnx, b, ax)
	}
	t.Shape[ax] = b
	n, err := im.g.Input(v.ir, t)
	if err != nil {
		return nil, fmt.Errorf("%q as an input: %v", v.onnx, err)
	}
	if im.model.Defaults == nil {
		im.model.Defaults = map[string]*tensor.Dense{}
	}
	im.model.Defaults[v.ir] = v.data
	im.model.Inputs = append(im.model.Inputs, Binding{IR: v.ir, ONNX: v.onnx})
	im.model.ONNXNames[v.ir] = v.onnx
	what := "the output of a Constant node or a computation on constants"
	if v.init {
		what = "an initializer"
	}
	im.note("%q (%s) holds one slice per sample (size %d on axis %d, where it meets the batch in an elementwise op): imported as input %%%s carrying the batch, its data as the input's default", v.onnx, what, b.Bound, ax, v.ir)
	return n, nil
}

// checkPerSample refuses per-sample inputs that reach anything but the
// elementwise ops that made them per-sample: read as a weight elsewhere,
// such a constant is not one slice per sample.
func (im *importer) checkPerSample() error {
	if len(im.model.Defaults) == 0 {
		return nil
	}
	users := im.model.Graph.Users()
	var bad []string
	for _, in := range im.model.Graph.Inputs() {
		if im.model.Defaults[in.Name] == nil {
			continue
		}
		for _, u := range users[in] {
			if !slices.Contains(broadcastOps, u.Op) {
				bad = append(bad, fmt.Sprintf("%q (also read by %s)", im.model.ONNXNames[in.Name], u.Op))
				break
			}
		}
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		return fmt.Errorf("onnx: constants %v are not per-sample data", bad)
	}
	return nil
}
