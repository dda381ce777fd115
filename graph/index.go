package graph

import (
	"fmt"
	"slices"
)

// The ops that index and broadcast (gather, gather_grad, expand, argmax,
// argmin): their infer functions and their batch rule.

// inferGather: data[..., R, ...] indexed on axis by integer indices of any
// rank gives data.shape[:axis] ++ indices.shape ++ data.shape[axis+1:].
func inferGather(n *Node, a []Type) (Type, error) {
	data, idx := a[0], a[1]
	if idx.DType != I32 && idx.DType != I64 {
		return Type{}, fmt.Errorf("expected i32 or i64 indices, found %s", idx)
	}
	if data.Rank() == 0 {
		return Type{}, fmt.Errorf("expected data of rank 1 or more, found %s", data)
	}
	ax, err := attrAxis(n.Attrs, "axis", 0, data.Rank())
	if err != nil {
		return Type{}, err
	}
	shape := slices.Concat(data.Shape[:ax], idx.Shape, data.Shape[ax+1:])
	return Type{DType: data.DType, Shape: append([]Dim{}, shape...)}, nil
}

// inferGatherGrad: indices and dy, the gradient of a gather's result, give
// the gradient of its data: dy.shape[:axis] ++ [rows] ++
// dy.shape[axis+indices.rank:].
func inferGatherGrad(n *Node, a []Type) (Type, error) {
	idx, dy := a[0], a[1]
	if idx.DType != I32 && idx.DType != I64 {
		return Type{}, fmt.Errorf("expected i32 or i64 indices, found %s", idx)
	}
	if !dy.DType.IsFloat() {
		return Type{}, fmt.Errorf("expected a floating-point dy, found %s", dy)
	}
	rank := dy.Rank() - idx.Rank() + 1
	if rank < 1 {
		return Type{}, fmt.Errorf("expected dy of rank %d or more for indices %s, found %s", idx.Rank(), idx, dy)
	}
	ax, err := attrAxis(n.Attrs, "axis", 0, rank)
	if err != nil {
		return Type{}, err
	}
	for i, d := range idx.Shape {
		if !dy.Shape[ax+i].Equal(d) {
			return Type{}, fmt.Errorf("expected dy with the shape of indices %s from axis %d, found %s", idx, ax, dy)
		}
	}
	rows := n.Attrs.integer("rows", 0)
	if rows < 1 {
		return Type{}, fmt.Errorf("expected rows >= 1 (the size of the gathered axis), found rows=%d", rows)
	}
	shape := slices.Concat(dy.Shape[:ax], []Dim{Const(rows)}, dy.Shape[ax+idx.Rank():])
	return Type{DType: dy.DType, Shape: shape}, nil
}

// inferExpand: x broadcast (numpy rules) with the dimensions of shape, any
// element type. A batch symbol shape names must be x's, as in reshape.
func inferExpand(n *Node, a []Type) (Type, error) {
	x := a[0]
	spec, _ := n.Attrs.Get("shape")
	target := Type{DType: x.DType, Shape: make([]Dim, len(spec.List))}
	for i, e := range spec.List {
		if e.Kind == AttrIdent {
			d, err := symDim(x, e)
			if err != nil {
				return Type{}, err
			}
			target.Shape[i] = d
			continue
		}
		if e.Int < 1 {
			return Type{}, fmt.Errorf("expected positive sizes in shape, found %s", spec)
		}
		target.Shape[i] = Const(e.Int)
	}
	return broadcastShapes(x, target)
}

// inferArg: argmax and argmin along axis of a numeric x, as i64 indices.
func inferArg(n *Node, a []Type) (Type, error) {
	x := a[0]
	if !x.DType.IsNumeric() {
		return Type{}, fmt.Errorf("expected a numeric operand, found %s", x)
	}
	ax, err := attrAxis(n.Attrs, "axis", 0, x.Rank())
	if err != nil {
		return Type{}, err
	}
	out := Type{DType: I64, Shape: []Dim{}}
	for i, d := range x.Shape {
		switch {
		case i != ax:
			out.Shape = append(out.Shape, d)
		case n.Attrs.boolean("keepdims"):
			out.Shape = append(out.Shape, Const(1))
		}
	}
	return out, nil
}

// indexRule is the batch rule of gather, gather_grad, expand, argmax and
// argmin; x is the first operand's batch axis.
func indexRule(n *Node, axes []int, par func(int) BatchFlow, cross BatchFlow) BatchFlow {
	x := axes[0]
	switch n.Op {
	case "gather":
		// Rows of batch-free data picked per sample, or each sample's
		// data indexed alike on another axis.
		ax, err := normAxis(n.Attrs.integer("axis", 0), n.Args[0].Type.Rank())
		ir := n.Args[1].Type.Rank()
		switch {
		case err != nil:
		case x >= 0 && axes[1] < 0 && x < ax:
			return par(x)
		case x >= 0 && axes[1] < 0 && x > ax:
			return par(x + ir - 1)
		case x < 0 && axes[1] >= 0:
			return par(ax + axes[1])
		}
	case "gather_grad":
		ir := n.Args[0].Type.Rank()
		ax, err := normAxis(n.Attrs.integer("axis", 0), n.Args[1].Type.Rank()-ir+1)
		y := axes[1]
		switch {
		case err != nil:
		case x >= 0 && y == ax+x && !n.Type.HasSymbol():
			// Every sample's dy adds into the batch-free result.
			return BatchFlow{Kind: BatchReduce}
		case x < 0 && y >= 0 && y < ax:
			return par(y)
		case x < 0 && y >= ax+ir:
			return par(y - ir + 1)
		}
	case "expand":
		return par(x + n.Type.Rank() - n.Args[0].Type.Rank())
	case "argmax", "argmin":
		ax, err := normAxis(n.Attrs.integer("axis", 0), n.Args[0].Type.Rank())
		switch {
		case err != nil || ax == x:
		case ax > x || n.Attrs.boolean("keepdims"):
			return par(x)
		default:
			return par(x - 1)
		}
	}
	return cross
}
