package grad

import (
	"math"
	"slices"

	"multigpu/graph"
	"multigpu/internal/graphutil"
)

// rule returns the gradient of the loss with respect to operand j of n,
// given dy, the gradient with respect to n. The node that ends it is
// named name (intermediate nodes name+".tag"); it may also be dy itself,
// or another existing node, when the gradient passes through unchanged.
func (b *builder) rule(n *graph.Node, j int, dy *graph.Node, name string) (*graph.Node, error) {
	x := n.Args[j]
	dt := n.Type.DType
	one := func() *graph.Node { return b.scalar(dt, 1) }
	zero := func() *graph.Node { return b.scalar(dt, 0) }
	mul := func(nm string, a, c *graph.Node) *graph.Node { return b.apply(nm, "mul", []*graph.Node{a, c}, nil) }
	cmp := func(nm, op string, a, c *graph.Node) *graph.Node {
		return b.apply(nm, "compare", []*graph.Node{a, c}, graph.Attrs{{Name: "cmp", Value: graph.Ident(op)}})
	}
	switch n.Op {
	case "add":
		return b.unbroadcast(name, dy, x), nil
	case "sub":
		if j == 0 {
			return b.unbroadcast(name, dy, x), nil
		}
		return b.apply(name, "neg", []*graph.Node{b.unbroadcast(name+".sum", dy, x)}, nil), nil
	case "mul":
		other := n.Args[1-j]
		return b.unbroadcast(name, mul(b.partName(name, x, dy), dy, other), x), nil
	case "div":
		if j == 0 {
			return b.unbroadcast(name, b.apply(b.partName(name, x, dy), "div", []*graph.Node{dy, n.Args[1]}, nil), x), nil
		}
		// d(a/b)/db = -(a/b)/b
		q := b.apply(name+".q", "div", []*graph.Node{mul(name+".dyy", dy, n), x}, nil)
		return b.apply(name, "neg", []*graph.Node{b.unbroadcast(name+".sum", q, x)}, nil), nil
	case "maximum", "minimum":
		// The kernels pick a when a >= b (maximum) or a <= b (minimum).
		ops := map[string][2]string{"maximum": {"ge", "lt"}, "minimum": {"le", "gt"}}[n.Op]
		m := cmp(name+".mask", ops[j], n.Args[0], n.Args[1])
		return b.unbroadcast(name, mul(b.partName(name, x, dy), dy, m), x), nil
	case "neg":
		return b.apply(name, "neg", []*graph.Node{dy}, nil), nil
	case "abs":
		sign := b.apply(name+".sign", "sub", []*graph.Node{cmp(name+".pos", "gt", x, zero()), cmp(name+".negative", "lt", x, zero())}, nil)
		return mul(name, dy, sign), nil
	case "exp":
		return mul(name, dy, n), nil
	case "log":
		return b.apply(name, "div", []*graph.Node{dy, x}, nil), nil
	case "sqrt":
		return b.apply(name, "div", []*graph.Node{dy, b.apply(name+".twice", "add", []*graph.Node{n, n}, nil)}, nil), nil
	case "relu":
		return mul(name, dy, cmp(name+".mask", "gt", x, zero())), nil
	case "leaky_relu":
		alpha, _ := n.Attr("alpha")
		m := cmp(name+".mask", "gt", x, zero())
		off := mul(name+".off", b.apply(name+".not", "sub", []*graph.Node{one(), m}, nil), b.scalar(dt, alpha.Float))
		return mul(name, dy, b.apply(name+".slope", "add", []*graph.Node{m, off}, nil)), nil
	case "sigmoid":
		d := mul(name+".d", n, b.apply(name+".1my", "sub", []*graph.Node{one(), n}, nil))
		return mul(name, dy, d), nil
	case "tanh":
		d := b.apply(name+".d", "sub", []*graph.Node{one(), mul(name+".y2", n, n)}, nil)
		return mul(name, dy, d), nil
	case "matmul":
		return b.matmul(n, j, dy, name), nil
	case "softmax":
		axis := b.axisAttr(n, "axis", -1)
		s := b.apply(name+".dot", "sum", []*graph.Node{mul(name+".dyy", dy, n)},
			graph.Attrs{{Name: "axes", Value: graph.Ints(axis)}, {Name: "keepdims", Value: graph.BoolAttr(true)}})
		return mul(name, n, b.apply(name+".centred", "sub", []*graph.Node{dy, s}, nil)), nil
	case "log_softmax":
		axis := b.axisAttr(n, "axis", -1)
		sm := b.apply(name+".softmax", "softmax", []*graph.Node{x}, graph.Attrs{{Name: "axis", Value: graph.Int(axis)}})
		s := b.apply(name+".total", "sum", []*graph.Node{dy}, graph.Attrs{{Name: "axes", Value: graph.Ints(axis)}, {Name: "keepdims", Value: graph.BoolAttr(true)}})
		return b.apply(name, "sub", []*graph.Node{dy, mul(name+".share", sm, s)}, nil), nil
	case "sum", "mean", "max", "min":
		return b.reduction(n, dy, name)
	case "reshape", "flatten":
		return b.reshape(name, dy, x.Type), nil
	case "transpose":
		perm, _ := n.Attr("perm")
		inv := make([]int64, len(perm.List))
		for i, p := range perm.List {
			inv[p.Int] = int64(i)
		}
		return b.apply(name, "transpose", []*graph.Node{dy}, graph.Attrs{{Name: "perm", Value: graph.Ints(inv...)}}), nil
	case "concat":
		ax := b.axisAttr(n, "axis", 0)
		start := int64(0)
		for _, a := range n.Args[:j] {
			v, ok := a.Type.Shape[ax].Value()
			if !ok || a.Type.Shape[ax].Sym != "" {
				return nil, b.errorf(n, "no gradient for concat along the batch axis %d", ax)
			}
			start += v
		}
		size, ok := x.Type.Shape[ax].Value()
		if !ok || x.Type.Shape[ax].Sym != "" {
			return nil, b.errorf(n, "no gradient for concat along the batch axis %d", ax)
		}
		return b.apply(name, "slice", []*graph.Node{dy}, graph.Attrs{{Name: "axis", Value: graph.Int(ax)},
			{Name: "start", Value: graph.Int(start)}, {Name: "end", Value: graph.Int(start + size)}}), nil
	case "slice":
		return b.slice(n, dy, name)
	case "copy":
		return dy, nil
	case "dropout":
		if v, _ := n.Attr("training"); !v.Bool {
			return dy, nil
		}
		// The same mask: the same key, sample index and position.
		key, _ := n.Attr("key")
		k := key.Str
		if k == "" {
			k = n.Name
		}
		rate, _ := n.Attr("rate")
		return b.apply(name, "dropout", []*graph.Node{dy}, graph.Attrs{{Name: "rate", Value: rate},
			{Name: "training", Value: graph.BoolAttr(true)}, {Name: "key", Value: graph.AttrValue{Kind: graph.AttrString, Str: k}}}), nil
	case "conv2d":
		return b.conv(n, j, dy, name), nil
	case "maxpool2d":
		return b.apply(name, "maxpool2d_grad", []*graph.Node{x, dy}, n.Attrs.Clone()), nil
	case "avgpool2d":
		attrs := append(n.Attrs.Clone(), graph.Attr{Name: "size", Value: graph.Ints(x.Type.Shape[2].Size, x.Type.Shape[3].Size)})
		return b.apply(name, "avgpool2d_grad", []*graph.Node{dy}, attrs), nil
	case "broadcast_like":
		return b.unbroadcast(name, dy, x), nil
	case "pow":
		other := n.Args[1-j]
		var d *graph.Node
		if j == 0 {
			// d(a^b)/da = b * a^(b-1)
			bm1 := b.apply(name+".bm1", "sub", []*graph.Node{other, one()}, nil)
			d = mul(name+".d", other, b.apply(name+".pow", "pow", []*graph.Node{x, bm1}, nil))
		} else {
			// d(a^b)/db = log(a) * a^b
			d = mul(name+".d", b.apply(name+".log", "log", []*graph.Node{other}, nil), n)
		}
		return b.unbroadcast(name, mul(b.partName(name, x, dy), dy, d), x), nil
	case "erf":
		// d erf(x)/dx = 2/sqrt(pi) * exp(-x^2)
		sq := b.apply(name+".negsq", "neg", []*graph.Node{mul(name+".sq", x, x)}, nil)
		d := mul(name+".d", b.apply(name+".exp", "exp", []*graph.Node{sq}, nil), b.scalar(dt, 2/math.Sqrt(math.Pi)))
		return mul(name, dy, d), nil
	case "where":
		// dy goes to a where c holds, to b where it does not (j is 1 or
		// 2: the condition is bool, not differentiable).
		picked := []*graph.Node{n.Args[0], dy, zero()}
		if j == 2 {
			picked[1], picked[2] = zero(), dy
		}
		return b.unbroadcast(name, b.apply(b.partName(name, x, dy), "where", picked, nil), x), nil
	case "cast":
		// Between floating-point types: dy converted back.
		if x.Type.DType == dt {
			return dy, nil
		}
		return b.apply(name, "cast", []*graph.Node{dy}, graph.Attrs{{Name: "to", Value: graph.Ident(x.Type.DType.String())}}), nil
	case "gather":
		return b.gather(n, dy, name)
	case "expand":
		return b.unbroadcast(name, dy, x), nil
	}
	return nil, b.errorf(n, "no gradient for op %s", n.Op)
}

// partName names the product a rule makes before unbroadcasting: name
// itself when no sum follows.
func (b *builder) partName(name string, x, v *graph.Node) string {
	if v.Type.Equal(x.Type) {
		return name
	}
	return name + ".full"
}

// axisAttr returns n's axis attribute normalised for its first operand.
func (b *builder) axisAttr(n *graph.Node, attr string, def int64) int64 {
	ax, err := n.NormAxis(attr, n.Args[0].Type.Rank())
	if err != nil {
		panic(internalError{err})
	}
	return int64(ax)
}

// reshape returns v reshaped to t (v itself when it has that type).
func (b *builder) reshape(name string, v *graph.Node, t graph.Type) *graph.Node {
	if v.Type.Equal(t) {
		return v
	}
	return b.apply(name, "reshape", []*graph.Node{v}, graph.Attrs{{Name: "shape", Value: graphutil.ShapeAttr(t)}})
}

// unbroadcast returns v, a value of a broadcast result, summed over the
// axes on which x was broadcast: the gradient with respect to x.
func (b *builder) unbroadcast(name string, v, x *graph.Node) *graph.Node {
	if v.Type.Equal(x.Type) {
		return v
	}
	r, xr := v.Type.Rank(), x.Type.Rank()
	var axes []int64
	leading := true
	for i := 0; i < r; i++ {
		k := i - (r - xr)
		if k < 0 {
			axes = append(axes, int64(i))
			continue
		}
		if d := x.Type.Shape[k]; d.Sym == "" && d.Size == 1 && !v.Type.Shape[i].Equal(d) {
			axes = append(axes, int64(i))
			leading = false
		}
	}
	if leading {
		// Only leading axes: summed away, x's shape is left.
		return b.apply(name, "sum", []*graph.Node{v}, graph.Attrs{{Name: "axes", Value: graph.Ints(axes...)}})
	}
	keep := graph.Attrs{{Name: "axes", Value: graph.Ints(axes...)}, {Name: "keepdims", Value: graph.BoolAttr(true)}}
	if r == xr {
		return b.apply(name, "sum", []*graph.Node{v}, keep)
	}
	return b.reshape(name, b.apply(name+".sum", "sum", []*graph.Node{v}, keep), x.Type)
}

// matmul: y = a·b with a[...,M,K] and b[K,P] or b[...,K,P].
func (b *builder) matmul(n *graph.Node, j int, dy *graph.Node, name string) *graph.Node {
	a, w := n.Args[0], n.Args[1]
	r, wr := a.Type.Rank(), w.Type.Rank()
	swap := func(rank int) graph.AttrValue {
		perm := make([]int64, rank)
		for i := range perm {
			perm[i] = int64(i)
		}
		perm[rank-2], perm[rank-1] = perm[rank-1], perm[rank-2]
		return graph.Ints(perm...)
	}
	if j == 0 {
		// da = dy·bᵀ
		wt := b.apply(name+".t", "transpose", []*graph.Node{w}, graph.Attrs{{Name: "perm", Value: swap(wr)}})
		return b.apply(name, "matmul", []*graph.Node{dy, wt}, nil)
	}
	// db = aᵀ·dy; with b[K,P] and a of rank 3 or more, a sum over the
	// leading axes of the products per leading index.
	at := b.apply(name+".t", "transpose", []*graph.Node{a}, graph.Attrs{{Name: "perm", Value: swap(r)}})
	if wr == r {
		return b.apply(name, "matmul", []*graph.Node{at, dy}, nil)
	}
	p := b.apply(name+".each", "matmul", []*graph.Node{at, dy}, nil)
	lead := make([]int64, r-2)
	for i := range lead {
		lead[i] = int64(i)
	}
	return b.apply(name, "sum", []*graph.Node{p}, graph.Attrs{{Name: "axes", Value: graph.Ints(lead...)}})
}

// reduction: sum, mean, max and min over axes.
func (b *builder) reduction(n *graph.Node, dy *graph.Node, name string) (*graph.Node, error) {
	x := n.Args[0]
	axes, err := n.ReduceAxes(x.Type.Rank())
	if err != nil {
		return nil, b.errorf(n, "%v", err)
	}
	keepT := x.Type.Clone()
	for _, a := range axes {
		keepT.Shape[a] = graph.Const(1)
	}
	dyk := b.reshape(name+".keep", dy, keepT)
	switch n.Op {
	case "sum":
		return b.apply(name, "broadcast_like", []*graph.Node{dyk, x}, nil), nil
	case "mean":
		per := b.apply(name+".per", "div", []*graph.Node{dyk, b.count(name, x, axes)}, nil)
		return b.apply(name, "broadcast_like", []*graph.Node{per, x}, nil), nil
	}
	// max, min: dy shared by the elements equal to the result.
	yk := b.reshape(name+".result", n, keepT)
	m := b.apply(name+".mask", "compare", []*graph.Node{x, yk}, graph.Attrs{{Name: "cmp", Value: graph.Ident("eq")}})
	ties := b.apply(name+".ties", "sum", []*graph.Node{m}, graph.Attrs{{Name: "axes", Value: ints(axes)}, {Name: "keepdims", Value: graph.BoolAttr(true)}})
	share := b.apply(name+".share", "div", []*graph.Node{dyk, ties}, nil)
	return b.apply(name, "mul", []*graph.Node{m, share}, nil), nil
}

func ints(xs []int) graph.AttrValue {
	v := make([]int64, len(xs))
	for i, x := range xs {
		v[i] = int64(x)
	}
	return graph.Ints(v...)
}

// count returns the number of elements of x over axes as a scalar of its
// type: a constant, times the size of each axis known only at run time.
func (b *builder) count(name string, x *graph.Node, axes []int) *graph.Node {
	dt := x.Type.DType
	fixed := int64(1)
	var c *graph.Node
	for _, a := range axes {
		d := x.Type.Shape[a]
		if v, ok := d.Value(); ok {
			fixed *= v
			continue
		}
		s := b.apply(name+".size", "dim", []*graph.Node{x}, graph.Attrs{{Name: "axis", Value: graph.Int(int64(a))}, {Name: "dtype", Value: graph.Ident(dt.String())}})
		if c == nil {
			c = s
		} else {
			c = b.apply(name+".count", "mul", []*graph.Node{c, s}, nil)
		}
	}
	switch {
	case c == nil:
		return b.scalar(dt, float64(fixed))
	case fixed == 1:
		return c
	}
	return b.apply(name+".count", "mul", []*graph.Node{c, b.scalar(dt, float64(fixed))}, nil)
}

// slice: dy placed between zeros where x was cut.
func (b *builder) slice(n *graph.Node, dy *graph.Node, name string) (*graph.Node, error) {
	x := n.Args[0]
	if _, share := n.Attrs.Get("part"); share {
		return nil, b.errorf(n, "no gradient for a share of the batch (slice with part and parts): differentiate the single-device graph")
	}
	ax := b.axisAttr(n, "axis", 0)
	start, _ := n.Attrs.Get("start")
	end, _ := n.Attrs.Get("end")
	size, _ := x.Type.Shape[ax].Value()
	zeros := func(tag string, lo, hi int64) *graph.Node {
		part := b.apply(name+"."+tag+".like", "slice", []*graph.Node{x}, graph.Attrs{{Name: "axis", Value: graph.Int(ax)},
			{Name: "start", Value: graph.Int(lo)}, {Name: "end", Value: graph.Int(hi)}})
		return b.apply(name+"."+tag, "broadcast_like", []*graph.Node{b.scalar(x.Type.DType, 0), part}, nil)
	}
	parts := []*graph.Node{dy}
	if start.Int > 0 {
		parts = slices.Insert(parts, 0, zeros("before", 0, start.Int))
	}
	if end.Int < size {
		parts = append(parts, zeros("after", end.Int, size))
	}
	if len(parts) == 1 {
		return dy, nil
	}
	return b.apply(name, "concat", parts, graph.Attrs{{Name: "axis", Value: graph.Int(ax)}}), nil
}

// conv: conv2d's gradients with respect to x, w and the bias.
func (b *builder) conv(n *graph.Node, j int, dy *graph.Node, name string) *graph.Node {
	x, w := n.Args[0], n.Args[1]
	switch j {
	case 0:
		attrs := append(n.Attrs.Clone(), graph.Attr{Name: "size", Value: graph.Ints(x.Type.Shape[2].Size, x.Type.Shape[3].Size)})
		return b.apply(name, "conv2d_grad_input", []*graph.Node{dy, w}, attrs)
	case 1:
		attrs := append(n.Attrs.Clone(), graph.Attr{Name: "kernel", Value: graph.Ints(w.Type.Shape[2].Size, w.Type.Shape[3].Size)})
		return b.apply(name, "conv2d_grad_weight", []*graph.Node{x, dy}, attrs)
	}
	return b.apply(name, "sum", []*graph.Node{dy}, graph.Attrs{{Name: "axes", Value: graph.Ints(0, 2, 3)}})
}

// gather: with respect to data, dy added into zeros of data's shape at the
// indices (gather_grad); the indices, integers, have no gradient.
func (b *builder) gather(n *graph.Node, dy *graph.Node, name string) (*graph.Node, error) {
	ax := b.axisAttr(n, "axis", 0)
	d := n.Args[0].Type.Shape[ax]
	if d.Sym != "" {
		return nil, b.errorf(n, "no gradient for gather along the batch axis %d", ax)
	}
	return b.apply(name, "gather_grad", []*graph.Node{n.Args[1], dy},
		graph.Attrs{{Name: "axis", Value: graph.Int(ax)}, {Name: "rows", Value: graph.Int(d.Size)}}), nil
}
