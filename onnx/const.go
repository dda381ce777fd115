package onnx

import (
	"fmt"
	"slices"

	"gorgonia.org/tensor"

	"multigpu/graph"
)

// convertDropout maps Dropout at inference to the identity. Its mask
// output, and training mode, are refused.
func convertDropout(c *nodeCtx) error {
	if c.opset() < 7 {
		test, err := c.flag("is_test", false)
		if err != nil {
			return err
		}
		if !test {
			return fmt.Errorf("training mode (is_test=0, the default before opset 7) is not supported; export the model in inference mode")
		}
	} else if c.has("is_test") {
		return fmt.Errorf("attribute is_test was removed in opset 7")
	}
	if c.hasIn(2) {
		d, err := c.constIn(2, "training_mode")
		if err != nil {
			return err
		}
		if v, err := denseScalar(d); err != nil || v != 0 {
			// Training mode drops nothing at ratio 0 (torchvision's
			// F.dropout(p=0.0) exports so): the identity.
			if !c.hasIn(1) {
				return fmt.Errorf("training_mode must be false for inference (or the ratio 0)")
			}
			r, err := c.constIn(1, "ratio")
			if err != nil {
				return err
			}
			if v, err := denseScalar(r); err != nil || v != 0 {
				return fmt.Errorf("training_mode must be false for inference (or the ratio 0)")
			}
		}
	}
	c.maxOutputs(1, "the mask output of Dropout")
	return c.alias(0, 0)
}

// convertConstant binds the output to the constant's data; it becomes a
// const or a param only where an op reads it as a value.
func convertConstant(c *nodeCtx) error {
	if len(c.n.attrs) != 1 {
		return fmt.Errorf("expected exactly one value attribute, found %d attributes", len(c.n.attrs))
	}
	a := c.n.attrs[0]
	var d *tensor.Dense
	switch a.name {
	case "value":
		if a.typ != attrTypeTensor || a.t == nil {
			return fmt.Errorf("attribute value: expected TENSOR, found %s", attrTypeName(a.typ))
		}
		if f, empty, err := emptyTensor(a.t, fmt.Sprintf("the value of node %s (Constant)", c.label())); empty {
			if err != nil {
				return fmt.Errorf("attribute value: %v", err)
			}
			c.setFolded(0, f)
			return nil
		}
		t, err := readTensor(a.t)
		if err != nil {
			return fmt.Errorf("attribute value: %v", err)
		}
		d = t
	case "value_float":
		v, err := c.float(a.name, 0)
		if err != nil {
			return err
		}
		d = tensor.New(tensor.FromScalar(float32(v)))
	case "value_floats":
		a, err := c.attr(a.name, attrTypeFloats)
		if err != nil {
			return err
		}
		if len(a.floats) == 0 {
			c.setFolded(0, &folded{dt: graph.F32, shape: []int{0}, why: fmt.Sprintf("the value of node %s (Constant) is an empty tensor (shape [0]), which the IR cannot hold", c.label())})
			return nil
		}
		d = tensor.New(tensor.WithShape(len(a.floats)), tensor.WithBacking(slices.Clone(a.floats)))
	case "value_int":
		v, err := c.int(a.name, 0)
		if err != nil {
			return err
		}
		d = tensor.New(tensor.FromScalar(v))
	case "value_ints":
		vs, _, err := c.ints(a.name)
		if err != nil {
			return err
		}
		if len(vs) == 0 {
			c.setFolded(0, &folded{dt: graph.I64, shape: []int{0}, why: fmt.Sprintf("the value of node %s (Constant) is an empty tensor (shape [0]), which the IR cannot hold", c.label())})
			return nil
		}
		d = tensor.New(tensor.WithShape(len(vs)), tensor.WithBacking(slices.Clone(vs)))
	default:
		return fmt.Errorf("attribute %s is not supported (strings and sparse tensors have no IR type)", a.name)
	}
	c.setConst(0, d)
	return nil
}
