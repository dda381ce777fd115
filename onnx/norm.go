package onnx

import (
	"fmt"
	"slices"

	"multigpu/graph"
)

// normalize computes (x - mean) * (1 / sqrt(var + eps)) over axes, as ONNX's
// LayerNormalization function body does, and returns it with the mean and
// the inverse standard deviation: the mean and the variance (the mean of the
// squared deviation) keep their axes, so they broadcast back.
func normalize(c *nodeCtx, x *graph.Node, axes []int64, eps float64) (y, mean, inv *graph.Node, err error) {
	reduce := graph.Attrs{{Name: "axes", Value: graph.Ints(axes...)}, {Name: "keepdims", Value: graph.BoolAttr(true)}}
	fail := func(err error) (y, mean, inv *graph.Node, _ error) { return nil, nil, nil, err }
	if mean, err = c.op1("mean", x, reduce); err != nil {
		return fail(err)
	}
	d, err := c.op("sub", []*graph.Node{x, mean}, nil)
	if err != nil {
		return fail(err)
	}
	dd, err := c.op("mul", []*graph.Node{d, d}, nil)
	if err != nil {
		return fail(err)
	}
	v, err := c.op1("mean", dd, reduce)
	if err != nil {
		return fail(err)
	}
	e, err := c.scalar("epsilon", x.Type.DType, eps)
	if err != nil {
		return fail(err)
	}
	ve, err := c.op("add", []*graph.Node{v, e}, nil)
	if err != nil {
		return fail(err)
	}
	sd, err := c.op1("sqrt", ve, nil)
	if err != nil {
		return fail(err)
	}
	one, err := c.scalar("one", x.Type.DType, 1)
	if err != nil {
		return fail(err)
	}
	if inv, err = c.op("div", []*graph.Node{one, sd}, nil); err != nil {
		return fail(err)
	}
	if y, err = c.op("mul", []*graph.Node{d, inv}, nil); err != nil {
		return fail(err)
	}
	return y, mean, inv, nil
}

// convertLayerNorm maps LayerNormalization (opset 17) to its definition:
// normalize over the axes from axis on, times scale, plus bias.
func convertLayerNorm(c *nodeCtx) error {
	x, err := c.in(0)
	if err != nil {
		return err
	}
	scale, err := c.in(1)
	if err != nil {
		return err
	}
	r := x.Type.Rank()
	ax, err := c.axis(-1, r)
	if err != nil {
		return err
	}
	eps, err := c.float("epsilon", float64(float32(1e-5)))
	if err != nil {
		return err
	}
	stash, err := c.int("stash_type", dtFloat)
	if err != nil {
		return err
	}
	if dt, ok := dtypeOf(stash); !ok || dt != x.Type.DType {
		return fmt.Errorf("stash_type %s with input %s is not supported (only statistics in the input's type)", dataTypeName(stash), x.Type)
	}
	var axes []int64
	for i := ax; i < r; i++ {
		axes = append(axes, int64(i))
	}
	y, mean, inv, err := normalize(c, x, axes, eps)
	if err != nil {
		return err
	}
	if err := c.set(1, mean); err != nil {
		return err
	}
	if err := c.set(2, inv); err != nil {
		return err
	}
	c.maxOutputs(3, "LayerNormalization has three outputs")
	if y, err = c.op("mul", []*graph.Node{y, scale}, nil); err != nil {
		return err
	}
	if c.hasIn(2) {
		b, err := c.in(2)
		if err != nil {
			return err
		}
		if y, err = c.op("add", []*graph.Node{y, b}, nil); err != nil {
			return err
		}
	}
	if !y.Type.Equal(x.Type) {
		return fmt.Errorf("scale and bias do not broadcast to x %s", x.Type)
	}
	return c.set(0, y)
}

// convertInstanceNorm maps InstanceNormalization: x[N,C,...] normalized over
// its spatial axes, times scale[C], plus bias[C] (reshaped to broadcast
// over the spatial axes).
func convertInstanceNorm(c *nodeCtx) error {
	x, err := c.in(0)
	if err != nil {
		return err
	}
	r := x.Type.Rank()
	if r < 3 {
		return fmt.Errorf("expected an input [N,C,spatial...] of rank 3 or more, found %s", x.Type)
	}
	eps, err := c.float("epsilon", float64(float32(1e-5)))
	if err != nil {
		return err
	}
	var axes []int64
	for i := 2; i < r; i++ {
		axes = append(axes, int64(i))
	}
	y, _, _, err := normalize(c, x, axes, eps)
	if err != nil {
		return err
	}
	for i, op := range []string{"mul", "add"} {
		p, err := c.in(1 + i)
		if err != nil {
			return err
		}
		if p.Type.Rank() != 1 || !p.Type.Shape[0].Equal(x.Type.Shape[1]) {
			return fmt.Errorf("expected %s of shape [%s], found %s", []string{"scale", "bias"}[i], x.Type.Shape[1], p.Type)
		}
		dims := append([]graph.Dim{p.Type.Shape[0]}, slices.Repeat([]graph.Dim{graph.Const(1)}, r-2)...)
		pr, err := c.reshape(p, dims)
		if err != nil {
			return err
		}
		if y, err = c.op(op, []*graph.Node{y, pr}, nil); err != nil {
			return err
		}
	}
	return c.set(0, y)
}
