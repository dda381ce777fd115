package onnx

import (
	"fmt"

	"gorgonia.org/tensor"

	"multigpu/graph"
)

// convertTrilu maps Trilu (opset 14) on data known only at run time (the
// constant case folds at import) to a where: a constant mask of the last
// two axes, which must be concrete, keeps the elements on and above
// (upper) or on and below (lower) the k-th diagonal, and zero replaces
// the rest.
func convertTrilu(c *nodeCtx) error {
	x, err := c.in(0)
	if err != nil {
		return err
	}
	upper, err := c.flag("upper", true)
	if err != nil {
		return err
	}
	k := int64(0)
	if c.hasIn(1) {
		ks, err := c.constInts(1, "k")
		if err != nil {
			return err
		}
		if len(ks) != 1 {
			return fmt.Errorf("k: expected one value, found %d", len(ks))
		}
		k = ks[0]
	}
	r := x.Type.Rank()
	if r < 2 {
		return fmt.Errorf("expected an input of rank 2 or more, found %s", x.Type)
	}
	rows, rok := x.Type.Shape[r-2].Value()
	cols, cok := x.Type.Shape[r-1].Value()
	if !rok || !cok || x.Type.Shape[r-2].IsSymbolic() || x.Type.Shape[r-1].IsSymbolic() {
		return fmt.Errorf("the last two axes of %s must have concrete sizes (they hold the batch)", x.Type)
	}
	if !fits(rows, cols) {
		return fmt.Errorf("a %dx%d mask is too large", rows, cols)
	}
	mask := make([]bool, rows*cols)
	for i := int64(0); i < rows; i++ {
		for j := int64(0); j < cols; j++ {
			mask[i*cols+j] = upper && j-i >= k || !upper && j-i <= k
		}
	}
	m, err := c.constTensor("mask", tensor.New(tensor.WithShape(int(rows), int(cols)), tensor.WithBacking(mask)))
	if err != nil {
		return err
	}
	zero, err := c.scalar("zero", x.Type.DType, 0)
	if err != nil {
		return err
	}
	y, err := c.op("where", []*graph.Node{m, x, zero}, nil)
	if err != nil {
		return err
	}
	return c.set(0, y)
}
