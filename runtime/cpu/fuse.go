package cpu

import (
	"multigpu/graph"
	"multigpu/runtime/backend"
)

// fusion is what Compile folds into the kernel of a product (matmul) or
// an f32 convolution: elementwise ops that read its result alone, applied
// to each element as the product's epilogue (with the bits the separate
// ops give), and a transpose of its B operand read while packing.
type fusion struct {
	// bias is the operand index (in the step's args) of a bias added to
	// the result: per output channel for a convolution ([C], [C,1,1] or
	// [1,C,1,1]), per column for a matmul ([P] or [1,P]); -1: none.
	bias int
	relu bool
	// lo and hi are the operand indices of the scalars of a maximum and
	// a minimum applied after, or -1.
	lo, hi int
	// transB: operand 1 is the matrix whose transpose the node multiplies
	// by (the transpose's step is not run).
	transB bool
}

// fusePlan decides which nodes of p fold into their producer's kernel.
// For node i: fuse[i] is its fusion when it is a producer that folds
// some (nil otherwise), extra[i] the operands it reads for them, alias[i]
// the operand whose value a folded node takes (-1: runs itself), and
// dead[i] whether it is folded away entirely (a transpose read while
// packing).
func fusePlan(p *backend.Program) (fuse []*fusion, extra [][]*graph.Node, alias []int, dead []bool) {
	n := len(p.Nodes)
	fuse, extra, alias, dead = make([]*fusion, n), make([][]*graph.Node, n), make([]int, n), make([]bool, n)
	for i := range alias {
		alias[i] = -1
	}
	if p.BeforeNode != nil {
		// Every node's hook runs before it: nothing folds.
		return
	}
	pos := make(map[*graph.Node]int, n+len(p.Inputs))
	for _, in := range p.Inputs {
		pos[in] = -1
	}
	readers := make(map[*graph.Node][]int, n)
	for i, nd := range p.Nodes {
		pos[nd] = i
		for _, a := range nd.Args {
			readers[a] = append(readers[a], i)
		}
	}
	outs := make(map[*graph.Node]bool, len(p.Outputs))
	for _, o := range p.Outputs {
		outs[o] = true
	}
	// only returns the one node reading v, when v is read once, by one
	// operand, and is not an output.
	only := func(v *graph.Node) (int, bool) {
		r := readers[v]
		if outs[v] || len(r) != 1 {
			return 0, false
		}
		return r[0], true
	}
	// before reports whether v is available before node i runs.
	before := func(v *graph.Node, i int) bool {
		j, ok := pos[v]
		return ok && j < i
	}
	for i, nd := range p.Nodes {
		if nd.Type.DType != graph.F32 {
			continue
		}
		conv := nd.Op == "conv2d" && len(nd.Args) >= 2
		mm := nd.Op == "matmul" && len(nd.Args) == 2 && len(nd.Args[1].Type.Shape) == 2
		if !conv && !mm {
			continue
		}
		f := &fusion{bias: -1, lo: -1, hi: -1}
		nargs := len(nd.Args)
		if mm {
			// matmul x, (transpose W): pack from W.
			t := nd.Args[1]
			if j, ok := only(t); ok && j == i && t.Op == "transpose" && pos[t] >= 0 && len(t.Type.Shape) == 2 &&
				len(t.Args) == 1 && pos[t.Args[0]] == -1 {
				if perm := t.IntsAttr("perm", nil); len(perm) == 2 && perm[0] == 1 && perm[1] == 0 {
					f.transB = true
					dead[pos[t]] = true
				}
			}
		}
		var ops []*graph.Node // the chain folded, in order
		cur := nd
		stage := 0 // 0: bias next, 1: relu, 2: max, 3: min, 4: done
		for stage < 4 {
			j, ok := only(cur)
			if !ok {
				break
			}
			r := p.Nodes[j]
			if r.Type.DType != graph.F32 || !sameShape(r.Type, nd.Type) || len(r.Args) > 2 {
				break
			}
			other := (*graph.Node)(nil)
			if len(r.Args) == 2 {
				if r.Args[0] == cur {
					other = r.Args[1]
				} else {
					other = r.Args[0]
				}
				if other == cur || !before(other, i) {
					break
				}
			}
			step := -1
			switch {
			case r.Op == "add" && stage == 0 && other != nil && isBias(other.Type, nd, conv) && (!conv || len(nd.Args) == 2):
				step = 0
			case r.Op == "relu" && stage <= 1 && other == nil:
				step = 1
			case r.Op == "maximum" && stage <= 2 && other != nil && isScalar(other.Type) && r.Args[0] == cur:
				step = 2
			case r.Op == "minimum" && stage <= 3 && other != nil && isScalar(other.Type) && r.Args[0] == cur:
				step = 3
			}
			if step < 0 {
				break
			}
			switch step {
			case 0:
				f.bias = nargs + len(extra[i])
			case 1:
				f.relu = true
			case 2:
				f.lo = nargs + len(extra[i])
			case 3:
				f.hi = nargs + len(extra[i])
			}
			if other != nil {
				extra[i] = append(extra[i], other)
			}
			ops = append(ops, r)
			alias[j] = 0
			if len(r.Args) == 2 && r.Args[0] != cur {
				alias[j] = 1
			}
			stage = step + 1
			cur = r
		}
		if len(ops) > 0 || f.transB {
			fuse[i] = f
		}
	}
	return fuse, extra, alias, dead
}

func sameShape(a, b graph.Type) bool {
	if len(a.Shape) != len(b.Shape) {
		return false
	}
	for i := range a.Shape {
		x, ok1 := a.Shape[i].Value()
		y, ok2 := b.Shape[i].Value()
		if !ok1 || !ok2 || x != y {
			return false
		}
	}
	return true
}

// dims returns the concrete dims of t (nil if one has no size).
func dims(t graph.Type) []int64 {
	d := make([]int64, len(t.Shape))
	for i, s := range t.Shape {
		v, ok := s.Value()
		if !ok {
			return nil
		}
		d[i] = v
	}
	return d
}

// isScalar reports whether t holds one f32.
func isScalar(t graph.Type) bool {
	d := dims(t)
	if t.DType != graph.F32 || d == nil {
		return false
	}
	for _, v := range d {
		if v != 1 {
			return false
		}
	}
	return true
}

// isBias reports whether t, added to the result of n, is one value per
// output channel of a convolution ([C], [C,1,1], [1,C,1,1]) or per column
// of a matmul ([P], [1,P]), broadcast over the rest.
func isBias(t graph.Type, n *graph.Node, conv bool) bool {
	d, out := dims(t), dims(n.Type)
	if t.DType != graph.F32 || d == nil || out == nil || len(d) == 0 {
		return false
	}
	if conv {
		if len(out) != 4 {
			return false
		}
		c := out[1]
		switch len(d) {
		case 1:
			return false // broadcasts along the width, not the channels
		case 3:
			return d[0] == c && d[1] == 1 && d[2] == 1
		case 4:
			return d[0] == 1 && d[1] == c && d[2] == 1 && d[3] == 1
		}
		return false
	}
	p := out[len(out)-1]
	for _, v := range d[:len(d)-1] {
		if v != 1 {
			return false
		}
	}
	return d[len(d)-1] == p && len(d) <= len(out)
}
