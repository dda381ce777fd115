package onnx

import (
	"fmt"

	"gorgonia.org/tensor"

	"multigpu/graph"
)

// convertNLLLoss maps NegativeLogLikelihoodLoss (opset 12): the loss of
// element [n, d...] is -input[n, target[n, d...], d...] times the
// target's weight, reduced by none, sum or mean (a mean divides by the
// sum of the weights of the targets not ignored).
func convertNLLLoss(c *nodeCtx) error {
	x, err := c.in(0)
	if err != nil {
		return err
	}
	loss, _, err := nllLoss(c, x, 1)
	if err != nil {
		return err
	}
	return c.set(0, loss)
}

// convertSoftmaxCrossEntropyLoss maps SoftmaxCrossEntropyLoss (opset 12):
// the negative log-likelihood of log_softmax(scores) along axis 1, and
// (second output) the log-probabilities.
func convertSoftmaxCrossEntropyLoss(c *nodeCtx) error {
	x, err := c.in(0)
	if err != nil {
		return err
	}
	if x.Type.Rank() < 2 {
		return fmt.Errorf("expected scores of rank 2 or more ([N, C, ...]), found %s", x.Type)
	}
	lp, err := c.op1("log_softmax", x, graph.Attrs{{Name: "axis", Value: graph.Int(1)}})
	if err != nil {
		return err
	}
	loss, _, err := nllLoss(c, lp, 1)
	if err != nil {
		return err
	}
	if err := c.set(0, loss); err != nil {
		return err
	}
	if len(c.n.outputs) > 1 && c.n.outputs[1] != "" {
		return c.set(1, lp)
	}
	return nil
}

// nllLoss builds the negative log-likelihood of x ([N, C, d...], the
// classes on axis 1) at the targets of input t (operand ti, [N, d...]),
// with the optional class weights of operand ti+1, the node's
// ignore_index and reduction. The target's class is picked with a
// one-hot mask (equal to a constant range of the classes), so a target
// out of range (an ignored one) picks nothing instead of failing.
func nllLoss(c *nodeCtx, x *graph.Node, ti int) (*graph.Node, *graph.Node, error) {
	t, err := c.in(ti)
	if err != nil {
		return nil, nil, err
	}
	if dt := t.Type.DType; dt != graph.I32 && dt != graph.I64 {
		return nil, nil, fmt.Errorf("expected integer targets, found %s", t.Type)
	}
	if !x.Type.DType.IsFloat() {
		return nil, nil, fmt.Errorf("expected float scores, found %s", x.Type)
	}
	r := x.Type.Rank()
	if r < 2 || t.Type.Rank() != r-1 {
		return nil, nil, fmt.Errorf("expected input [N, C, d...] and target [N, d...], found %s and %s", x.Type, t.Type)
	}
	classes, ok := x.Type.Shape[1].Value()
	if !ok || x.Type.Shape[1].IsSymbolic() || !fits(classes) {
		return nil, nil, fmt.Errorf("the classes axis of %s must have a concrete size", x.Type)
	}
	reduction, err := c.str("reduction", "mean")
	if err != nil {
		return nil, nil, err
	}
	if reduction != "none" && reduction != "sum" && reduction != "mean" {
		return nil, nil, fmt.Errorf("reduction %q: expected none, sum or mean", reduction)
	}
	dt := x.Type.DType
	// The targets with a classes axis of size 1: [N, 1, d...].
	dims := append([]graph.Dim{t.Type.Shape[0], graph.Const(1)}, t.Type.Shape[1:]...)
	t1, err := c.reshape(t, dims)
	if err != nil {
		return nil, nil, err
	}
	ids := make([]int64, classes)
	for i := range ids {
		ids[i] = int64(i)
	}
	// The classes on axis 1, sizes 1 elsewhere: [1, C, 1...].
	shape, sizes := make([]int, r), make([]int64, r)
	for i := range shape {
		shape[i], sizes[i] = 1, 1
	}
	shape[1], sizes[1] = int(classes), classes
	var rng *graph.Node
	if t.Type.DType == graph.I32 {
		ids32 := make([]int32, classes)
		for i := range ids32 {
			ids32[i] = int32(i)
		}
		rng, err = c.constTensor("classes", tensor.New(tensor.WithShape(shape...), tensor.WithBacking(ids32)))
	} else {
		rng, err = c.constTensor("classes", tensor.New(tensor.WithShape(shape...), tensor.WithBacking(ids)))
	}
	if err != nil {
		return nil, nil, err
	}
	hot, err := c.op("equal", []*graph.Node{t1, rng}, nil)
	if err != nil {
		return nil, nil, err
	}
	mask, err := c.castTo(hot, dt)
	if err != nil {
		return nil, nil, err
	}
	classAxis := graph.Attrs{{Name: "axes", Value: graph.Ints(1)}}
	pickedAll, err := c.op("mul", []*graph.Node{x, mask}, nil)
	if err != nil {
		return nil, nil, err
	}
	picked, err := c.op1("sum", pickedAll, classAxis)
	if err != nil {
		return nil, nil, err
	}
	// The weight of each target: weight[target], or 1.
	var w *graph.Node
	if c.hasIn(ti + 1) {
		wc, err := c.in(ti + 1)
		if err != nil {
			return nil, nil, err
		}
		if wc.Type.Rank() != 1 || wc.Type.DType != dt {
			return nil, nil, fmt.Errorf("expected weights %s[%d], found %s", dt, classes, wc.Type)
		}
		wb, err := c.reshape(wc, constDims(sizes))
		if err != nil {
			return nil, nil, err
		}
		wAll, err := c.op("mul", []*graph.Node{mask, wb}, nil)
		if err != nil {
			return nil, nil, err
		}
		if w, err = c.op1("sum", wAll, classAxis); err != nil {
			return nil, nil, err
		}
	}
	if c.has("ignore_index") {
		ig, err := c.int("ignore_index", 0)
		if err != nil {
			return nil, nil, err
		}
		igc, err := c.scalar("ignore_index", t.Type.DType, float64(ig))
		if err != nil {
			return nil, nil, err
		}
		same, err := c.op("equal", []*graph.Node{t, igc}, nil)
		if err != nil {
			return nil, nil, err
		}
		keep, err := c.op1("not", same, nil)
		if err != nil {
			return nil, nil, err
		}
		kf, err := c.castTo(keep, dt)
		if err != nil {
			return nil, nil, err
		}
		if w == nil {
			w = kf
		} else if w, err = c.op("mul", []*graph.Node{w, kf}, nil); err != nil {
			return nil, nil, err
		}
	}
	loss, err := c.op1("neg", picked, nil)
	if err != nil {
		return nil, nil, err
	}
	if w != nil {
		if loss, err = c.op("mul", []*graph.Node{loss, w}, nil); err != nil {
			return nil, nil, err
		}
	}
	switch reduction {
	case "none":
		return loss, w, nil
	case "sum":
		s, err := c.op1("sum", loss, nil)
		return s, w, err
	}
	if w == nil {
		m, err := c.op1("mean", loss, nil)
		return m, w, err
	}
	s, err := c.op1("sum", loss, nil)
	if err != nil {
		return nil, nil, err
	}
	ws, err := c.op1("sum", w, nil)
	if err != nil {
		return nil, nil, err
	}
	m, err := c.op("div", []*graph.Node{s, ws}, nil)
	return m, w, err
}
