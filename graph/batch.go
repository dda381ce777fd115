package graph

import "slices"

// BatchKind says how the batch flows through one node.
type BatchKind uint8

// The ways the batch flows through a node.
const (
	// BatchFree: no operand carries the batch; neither does the result.
	BatchFree BatchKind = iota
	// BatchParallel: each sample of the result depends only on the same
	// sample of the operands; the result carries the batch on Axis.
	BatchParallel
	// BatchReduce: the node sums (or takes the max or min of) the operands
	// over the batch; per-replica partials combine exactly. The result is
	// batch-free.
	BatchReduce
	// BatchStats: batchnorm in training mode, whose statistics cross the
	// batch; the replicate pass decides (refuse, per replica, synchronised).
	BatchStats
	// BatchCrossing: the node needs the whole batch at once.
	BatchCrossing
)

var batchKindNames = [...]string{"free", "parallel", "reduce", "stats", "crossing"}

// String names k.
func (k BatchKind) String() string { return batchKindNames[k] }

// BatchFlow is the result of an op's batch rule.
type BatchFlow struct {
	Kind BatchKind
	Axis int // the result's batch axis when Kind is BatchParallel
	// Outer, for a parallel result whose batch axis is folded with other
	// sizes (N*k), is the factor of that axis that comes before the batch
	// in its elements' order: 1 when the batch is the major factor
	// ([N*H,S,D] from [N,H,S,D]), S for [S*N,E] made from [S,N,E]. A
	// replica's share of such an axis is then O blocks of N.k*(k/O)
	// elements rather than one.
	Outer int64
}

// BatchRule applies n's batch rule to operands whose batch axes, if
// folded, have the batch as their major factor (outer factor 1). axes[i]
// is the axis on which operand i carries the batch (N or N*k), or -1 when
// it is batch-free. Operands whose batch axes cannot be lined up make the
// node batch-crossing; that is not an error.
func BatchRule(n *Node, axes []int) BatchFlow { return BatchRuleOuter(n, axes, nil) }

// BatchRuleOuter applies n's batch rule; outers[i] is the outer factor
// (BatchFlow.Outer) of operand i's batch axis, nil meaning 1 for all. The
// result's Outer is set when it is parallel. A node whose batch-carrying
// operands have different outer factors, or whose batch axis changes its
// multiple of the batch other than by a reshape, crosses the batch.
func BatchRuleOuter(n *Node, axes []int, outers []int64) BatchFlow {
	outerOf := func(i int) int64 {
		if i < len(outers) && outers[i] > 0 {
			return outers[i]
		}
		return 1
	}
	f := batchRule(n, axes, outerOf)
	if f.Kind != BatchParallel && f.Kind != BatchStats || f.Outer > 0 {
		return f
	}
	// Every other op keeps the layout of its batch-carrying operands.
	var mul, outer int64
	for i, a := range axes {
		if a < 0 {
			continue
		}
		d := n.Args[i].Type.Shape[a]
		if mul != 0 && (d.Mul != mul || outerOf(i) != outer) {
			return BatchFlow{Kind: BatchCrossing}
		}
		mul, outer = d.Mul, outerOf(i)
	}
	if n.Type.Shape[f.Axis].Mul != mul {
		return BatchFlow{Kind: BatchCrossing}
	}
	if mul != 1 && (f.Kind == BatchStats || n.Op == "dropout" && outer != 1) {
		// Statistics and per-sample masks over a folded axis: on the merge
		// device, where the layout is the original one.
		return BatchFlow{Kind: BatchCrossing}
	}
	f.Outer = outer
	return f
}

// batchRule is BatchRule's table: one case per op. It sets Outer only
// where the op changes the batch axis's layout (reshape, flatten).
func batchRule(n *Node, axes []int, outerOf func(int) int64) BatchFlow {
	batched := false
	for _, a := range axes {
		if a >= 0 {
			batched = true
		}
	}
	if !batched {
		return BatchFlow{Kind: BatchFree}
	}
	cross := BatchFlow{Kind: BatchCrossing}
	par := func(ax int) BatchFlow {
		if ax < 0 || ax >= n.Type.Rank() || !n.Type.Shape[ax].IsSymbolic() || n.Type.Shape[ax].Part >= 0 {
			return cross
		}
		for i, d := range n.Type.Shape {
			if i != ax && d.IsSymbolic() {
				return cross
			}
		}
		return BatchFlow{Kind: BatchParallel, Axis: ax}
	}
	x := axes[0]
	switch n.Op {
	case "neg", "abs", "exp", "log", "sqrt", "relu", "sigmoid", "tanh", "leaky_relu", "dropout", "copy",
		"erf", "not", "cast":
		return par(x)
	case "add", "sub", "mul", "div", "maximum", "minimum", "compare", "broadcast_like",
		"pow", "where", "equal", "less", "greater", "less_equal", "greater_equal", "and", "or", "xor",
		"allreduce":
		out := -1
		for i, a := range axes {
			if a < 0 {
				continue
			}
			m := a + n.Type.Rank() - n.Args[i].Type.Rank()
			if out >= 0 && m != out {
				return cross
			}
			out = m
		}
		return par(out)
	case "matmul":
		r := n.Args[0].Type.Rank()
		wr := n.Args[1].Type.Rank()
		w := axes[1]
		switch {
		case w < 0 && x < r-1:
			return par(x)
		case x < 0 && w == wr-1:
			return par(r - 1)
		case x >= 0 && x == w && x < r-2:
			return par(x)
		case x == r-1 && w == wr-2:
			return BatchFlow{Kind: BatchReduce}
		}
		return cross
	case "softmax", "log_softmax":
		if ax, _ := normAxis(n.Attrs.integer("axis", -1), n.Args[0].Type.Rank()); ax != x {
			return par(x)
		}
		return cross
	case "sum", "mean", "max", "min":
		red, err := n.ReduceAxes(n.Args[0].Type.Rank())
		if err != nil {
			return cross
		}
		if slices.Contains(red, x) {
			return BatchFlow{Kind: BatchReduce}
		}
		if n.Attrs.boolean("keepdims") {
			return par(x)
		}
		before := 0
		for _, a := range red {
			if a < x {
				before++
			}
		}
		return par(x - before)
	case "reshape", "flatten":
		return reshapeRule(n, x, outerOf(0), par, cross)
	case "transpose":
		perm, _ := n.Attrs.ints("perm")
		for i, p := range perm {
			if int(p) == x {
				return par(i)
			}
		}
		return cross
	case "concat":
		ax, _ := normAxis(n.Attrs.integer("axis", 0), n.Type.Rank())
		for _, a := range axes {
			if a != x {
				return cross
			}
		}
		if ax == x {
			return cross
		}
		return par(x)
	case "slice":
		if ax, _ := normAxis(n.Attrs.integer("axis", 0), n.Args[0].Type.Rank()); ax != x {
			if _, share := n.Attrs.Get("part"); !share {
				return par(x)
			}
		}
		return cross
	case "conv2d":
		for _, a := range axes[1:] {
			if a >= 0 {
				return cross
			}
		}
		if x == 0 {
			return par(0)
		}
		return cross
	case "maxpool2d", "avgpool2d", "avgpool2d_grad", "conv2d_grad_input":
		if x == 0 && (len(axes) == 1 || axes[1] < 0) {
			return par(0)
		}
		return cross
	case "maxpool2d_grad":
		if x == 0 && axes[1] == 0 {
			return par(0)
		}
		return cross
	case "conv2d_grad_weight":
		// The weight gradient sums over the samples of x and dy.
		if x == 0 && axes[1] == 0 {
			return BatchFlow{Kind: BatchReduce}
		}
		return cross
	case "gather", "gather_grad", "expand", "argmax", "argmin":
		return indexRule(n, axes, par, cross)
	case "batchnorm":
		for _, a := range axes[1:] {
			if a >= 0 {
				return cross
			}
		}
		if ax, _ := normAxis(n.Attrs.integer("axis", 1), n.Type.Rank()); ax == x {
			return cross
		}
		if n.Attrs.boolean("training") {
			return BatchFlow{Kind: BatchStats, Axis: x}
		}
		return par(x)
	}
	// dim and anything else: the replicate pass treats it as crossing.
	return cross
}

// reshapeRule: a reshape is batch-parallel when each replica's share of
// the batch stays one block of the same elements in the same place. View
// the operand as [A, N, B] in row-major order, where A is the product of
// the sizes before its batch axis times that axis's outer factor: the
// result keeps the layout when it too is [A, N, B] with N inside one axis,
// [C, N*k, ...] with C dividing A and A/C (the result's outer factor)
// dividing k. So [S,N,E] -> [S,N*H,D], [S,N*H,D] -> [S*N,E] and even
// [4,N] -> [N*4] (outer factor 4: four blocks per share) stay on the
// replicas, and [N,4,5] -> [2,N*10], whose rows each hold half of every
// sample, does not.
func reshapeRule(n *Node, x int, outer int64, par func(int) BatchFlow, cross BatchFlow) BatchFlow {
	out := -1
	for i, d := range n.Type.Shape {
		if d.IsSymbolic() {
			if out >= 0 || d.Part >= 0 {
				return cross
			}
			out = i
		}
	}
	if out < 0 {
		return cross
	}
	in, err := monoOf(n.Args[0].Type.Shape[:x])
	if err != nil || in.sym != nil {
		return cross
	}
	o, err := monoOf(n.Type.Shape[:out])
	if err != nil || o.sym != nil {
		return cross
	}
	a := mulCheck(in.coeff, outer)
	if a < 0 || a%o.coeff != 0 || n.Type.Shape[out].Mul%(a/o.coeff) != 0 {
		return cross
	}
	f := par(out)
	if f.Kind == BatchParallel {
		f.Outer = a / o.coeff
	}
	return f
}
