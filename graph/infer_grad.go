package graph

import "fmt"

// The infer functions of the ops backward graphs use (passes/grad). The
// window ops check their operands by rebuilding the forward op's operand
// types and running its rule.

// inferCompare: a float mask of the broadcast of a and b.
func inferCompare(n *Node, a []Type) (Type, error) {
	if !a[0].DType.IsFloat() {
		return Type{}, fmt.Errorf("expected floating-point operands, found %s", a[0])
	}
	return broadcast(a[0], a[1])
}

// inferBroadcastLike: dy broadcast to the shape of x.
func inferBroadcastLike(n *Node, a []Type) (Type, error) {
	dy, x := a[0], a[1]
	if dy.DType != x.DType || !dy.DType.IsNumeric() {
		return Type{}, fmt.Errorf("expected numeric operands of one element type, found %s and %s", dy, x)
	}
	t, err := broadcast(dy, x)
	if err != nil {
		return Type{}, err
	}
	if !t.Equal(x) {
		return Type{}, fmt.Errorf("cannot broadcast %s to %s", dy, x)
	}
	return x.Clone(), nil
}

// sizeAttr returns a window op's size=[H,W] attribute: the spatial size
// of the forward op's operand.
func sizeAttr(n *Node) ([]int64, error) {
	v, ok := n.Attrs.ints("size")
	if !ok {
		return nil, fmt.Errorf("missing attribute size ([H,W] of the forward operand)")
	}
	if len(v) != 2 || v[0] < 1 || v[1] < 1 {
		return nil, fmt.Errorf("expected size=[H,W] of two positive sizes, found size=%s", intsString(v))
	}
	return v, nil
}

// sameType checks that the operand named what has the type the forward
// op gives, want.
func sameType(what string, got, want Type) error {
	if !got.Equal(want) {
		return fmt.Errorf("expected %s of type %s (the forward op's result), found %s", what, want, got)
	}
	return nil
}

// inferConvGradInput: dy[N,O,OH,OW] and w[O,C/groups,KH,KW] give
// x[N,C,H,W]; conv2d of such an x must give dy's shape.
func inferConvGradInput(n *Node, a []Type) (Type, error) {
	dy, w := a[0], a[1]
	if dy.Rank() != 4 || w.Rank() != 4 {
		return Type{}, fmt.Errorf("expected dy[N,O,OH,OW] and w[O,C/groups,KH,KW], found %s and %s", dy, w)
	}
	size, err := sizeAttr(n)
	if err != nil {
		return Type{}, err
	}
	groups := n.Attrs.integer("groups", 1)
	if w.Shape[1].Sym != "" || groups < 1 || groups > 1<<20 {
		return Type{}, fmt.Errorf("expected concrete channels and groups >= 1, found %s and groups=%d", w, groups)
	}
	c := mulCheck(w.Shape[1].Size, groups)
	if c < 0 {
		return Type{}, fmt.Errorf("element count overflows int64")
	}
	x := Type{DType: dy.DType, Shape: []Dim{dy.Shape[0], Const(c), Const(size[0]), Const(size[1])}}
	y, err := inferConv(n, []Type{x, w})
	if err != nil {
		return Type{}, err
	}
	if err := sameType("dy", dy, y); err != nil {
		return Type{}, err
	}
	return x, nil
}

// inferConvGradWeight: x[N,C,H,W] and dy[N,O,OH,OW] give
// w[O,C/groups,KH,KW]; conv2d of x with such a w must give dy's shape.
func inferConvGradWeight(n *Node, a []Type) (Type, error) {
	x, dy := a[0], a[1]
	if x.Rank() != 4 || dy.Rank() != 4 {
		return Type{}, fmt.Errorf("expected x[N,C,H,W] and dy[N,O,OH,OW], found %s and %s", x, dy)
	}
	kernel, err := pair(n.Attrs, "kernel", [2]int64{}, false)
	if err != nil {
		return Type{}, err
	}
	groups := n.Attrs.integer("groups", 1)
	c, o := x.Shape[1], dy.Shape[1]
	if c.Sym != "" || o.Sym != "" || groups < 1 || c.Size%groups != 0 {
		return Type{}, fmt.Errorf("expected concrete channels divisible by groups, found %s, %s and groups=%d", x, dy, groups)
	}
	w := Type{DType: dy.DType, Shape: []Dim{o, Const(c.Size / groups), Const(kernel[0]), Const(kernel[1])}}
	y, err := inferConv(n, []Type{x, w})
	if err != nil {
		return Type{}, err
	}
	if err := sameType("dy", dy, y); err != nil {
		return Type{}, err
	}
	return w, nil
}

// inferMaxpoolGrad: x and dy, the result of maxpool2d of x, give x's type.
func inferMaxpoolGrad(n *Node, a []Type) (Type, error) {
	x, dy := a[0], a[1]
	y, err := inferPool(n, []Type{x})
	if err != nil {
		return Type{}, err
	}
	if err := sameType("dy", dy, y); err != nil {
		return Type{}, err
	}
	return x.Clone(), nil
}

// inferAvgpoolGrad: dy[N,C,OH,OW] gives x[N,C,H,W]; avgpool2d of such an
// x must give dy's shape.
func inferAvgpoolGrad(n *Node, a []Type) (Type, error) {
	dy := a[0]
	if dy.Rank() != 4 {
		return Type{}, fmt.Errorf("expected dy[N,C,OH,OW], found %s", dy)
	}
	size, err := sizeAttr(n)
	if err != nil {
		return Type{}, err
	}
	x := Type{DType: dy.DType, Shape: []Dim{dy.Shape[0], dy.Shape[1], Const(size[0]), Const(size[1])}}
	y, err := inferPool(n, []Type{x})
	if err != nil {
		return Type{}, err
	}
	if err := sameType("dy", dy, y); err != nil {
		return Type{}, err
	}
	return x, nil
}
