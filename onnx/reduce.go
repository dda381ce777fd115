package onnx

import (
	"fmt"

	"multigpu/graph"
)

// reduce maps the Reduce ops: a reduction op, with a transformation before
// (square, abs, exp) or after (sqrt, log) for the composite ones. From
// opset inputFrom the axes are an optional input, before it an attribute.
func reduce(op, extra string, inputFrom int64) *opDef {
	return &opDef{attrs: []string{"axes", "keepdims", "noop_with_empty_axes"}, convert: func(c *nodeCtx) error {
		x, err := c.in(0)
		if err != nil {
			return err
		}
		r := x.Type.Rank()
		var axes []int64
		if c.opset() >= inputFrom {
			if c.has("axes") {
				return fmt.Errorf("attribute axes was replaced by an input in opset %d", inputFrom)
			}
			if c.hasIn(1) {
				if axes, err = c.constInts(1, "axes"); err != nil {
					return err
				}
			}
		} else {
			if c.hasIn(1) {
				return fmt.Errorf("axes is an attribute before opset %d, found an input", inputFrom)
			}
			if axes, _, err = c.ints("axes"); err != nil {
				return err
			}
		}
		keep, err := c.flag("keepdims", true)
		if err != nil {
			return err
		}
		noop, err := c.flag("noop_with_empty_axes", false)
		if err != nil {
			return err
		}
		if c.has("noop_with_empty_axes") && c.opset() < inputFrom {
			return fmt.Errorf("attribute noop_with_empty_axes is only defined from opset %d", inputFrom)
		}
		if len(axes) == 0 && noop {
			// No axes and noop_with_empty_axes: the input unchanged.
			if extra != "" {
				return fmt.Errorf("noop_with_empty_axes=1 without axes is not supported for %s", c.n.opType)
			}
			return c.set(0, x)
		}
		attrs := graph.Attrs{{Name: "keepdims", Value: graph.BoolAttr(keep)}}
		if len(axes) > 0 {
			norm, err := normAxes(axes, r, "axis")
			if err != nil {
				return err
			}
			attrs = append(attrs, graph.Attr{Name: "axes", Value: graph.Ints(norm...)})
		}
		if op == "mean" && !x.Type.DType.IsFloat() {
			return fmt.Errorf("the mean of integers is not supported (found %s)", x.Type)
		}
		in := x
		switch extra {
		case "square", "l2":
			in, err = c.op("mul", []*graph.Node{x, x}, nil)
		case "abs":
			in, err = c.op1("abs", x, nil)
		case "logsumexp":
			in, err = c.op1("exp", x, nil)
		}
		if err != nil {
			return err
		}
		y, err := c.op1(op, in, attrs)
		if err != nil {
			return err
		}
		switch extra {
		case "l2":
			y, err = c.op1("sqrt", y, nil)
		case "log", "logsumexp":
			y, err = c.op1("log", y, nil)
		}
		if err != nil {
			return err
		}
		return c.set(0, y)
	}}
}
