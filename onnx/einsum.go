package onnx

import (
	"fmt"
	"slices"
	"strings"

	"multigpu/graph"
)

// convertEinsum maps Einsum (opset 12) to sums, transposes, reshapes and
// batched matmuls. Operands are contracted left to right, each pair as one
// matmul: the labels both share and the result keeps are the matmul's
// stack, those both share and nothing later needs are its contracted axis,
// and each operand's own labels are folded into its rows or columns; a
// label only one operand has and nothing later needs is summed away first.
// Diagonals (a label twice in one operand) and ellipses that broadcast are
// refused.
func convertEinsum(c *nodeCtx) error {
	eq, err := c.str("equation", "")
	if err != nil {
		return err
	}
	xs, err := c.ins()
	if err != nil {
		return err
	}
	terms, out, err := parseEinsum(eq, xs)
	if err != nil {
		return fmt.Errorf("equation %q: %v", eq, err)
	}
	e := &einsum{c: c, sizes: map[byte]graph.Dim{}}
	for i, t := range terms {
		for j, l := range t {
			d := xs[i].Type.Shape[j]
			if s, ok := e.sizes[l]; ok && !s.Equal(d) {
				return fmt.Errorf("equation %q: label %c is %s in one operand and %s in another", eq, l, s, d)
			}
			e.sizes[l] = d
		}
	}
	cur, labels := xs[0], terms[0]
	for i := 1; i < len(xs); i++ {
		keep := string(out)
		for _, t := range terms[i+1:] {
			keep += string(t)
		}
		if cur, labels, err = e.pair(cur, labels, xs[i], terms[i], []byte(keep)); err != nil {
			return fmt.Errorf("equation %q: %v", eq, err)
		}
	}
	y, err := e.finish(cur, labels, out)
	if err != nil {
		return fmt.Errorf("equation %q: %v", eq, err)
	}
	return c.set(0, y)
}

// parseEinsum splits an equation into each operand's labels, one per
// axis, and the result's. An ellipsis stands for the same unnamed axes in
// every operand that has it (given labels of their own here); the result
// of an implicit equation (no ->) is the ellipsis, then the labels that
// appear once, in alphabetical order.
func parseEinsum(eq string, xs []*graph.Node) ([][]byte, []byte, error) {
	eq = strings.ReplaceAll(eq, " ", "")
	lhs, rhs, explicit := strings.Cut(eq, "->")
	parts := strings.Split(lhs, ",")
	if len(parts) != len(xs) {
		return nil, nil, fmt.Errorf("%d operand terms for %d inputs", len(parts), len(xs))
	}
	const ellipsisLabels = "0123456789" // never letters: distinct from the equation's own
	ell := -1
	var terms [][]byte
	for i, p := range parts {
		var t []byte
		before, after, has := strings.Cut(p, "...")
		if has {
			n := xs[i].Type.Rank() - len(before) - len(after)
			if n < 0 || n > len(ellipsisLabels) {
				return nil, nil, fmt.Errorf("term %q does not fit an operand of rank %d", p, xs[i].Type.Rank())
			}
			if ell >= 0 && n != ell {
				return nil, nil, fmt.Errorf("the ellipsis stands for %d axes in one operand and %d in another (broadcasting is not supported)", ell, n)
			}
			ell = n
			t = append(append(append(t, before...), ellipsisLabels[:n]...), after...)
		} else {
			t = []byte(p)
		}
		if len(t) != xs[i].Type.Rank() {
			return nil, nil, fmt.Errorf("term %q has %d labels for an operand of rank %d", p, len(t), xs[i].Type.Rank())
		}
		for j, l := range t {
			if !(l >= 'a' && l <= 'z' || l >= 'A' && l <= 'Z' || l >= '0' && l <= '9' && has) {
				return nil, nil, fmt.Errorf("expected letters, found %q", p)
			}
			if slices.Contains(t[:j], l) {
				return nil, nil, fmt.Errorf("label %c appears twice in term %q (a diagonal), which is not supported", l, p)
			}
		}
		terms = append(terms, t)
	}
	var out []byte
	if explicit {
		before, after, has := strings.Cut(rhs, "...")
		if has {
			out = append(append(append(out, before...), ellipsisLabels[:max(ell, 0)]...), after...)
		} else {
			out = []byte(rhs)
		}
		for j, l := range out {
			if slices.Contains(out[:j], l) {
				return nil, nil, fmt.Errorf("label %c appears twice in the result", l)
			}
			if !slices.ContainsFunc(terms, func(t []byte) bool { return slices.Contains(t, l) }) {
				return nil, nil, fmt.Errorf("the result's label %c is in no operand", l)
			}
		}
	} else {
		count := map[byte]int{}
		for _, t := range terms {
			for _, l := range t {
				count[l]++
			}
		}
		out = append(out, ellipsisLabels[:max(ell, 0)]...)
		var once []byte
		for l, n := range count {
			if n == 1 && !(l >= '0' && l <= '9') {
				once = append(once, l)
			}
		}
		slices.Sort(once)
		out = append(out, once...)
	}
	return terms, out, nil
}

// einsum holds the sizes of the labels of one Einsum.
type einsum struct {
	c     *nodeCtx
	sizes map[byte]graph.Dim
}

// sumAway sums x (labelled ls) over the labels keep lacks.
func (e *einsum) sumAway(x *graph.Node, ls []byte, keep []byte) (*graph.Node, []byte, error) {
	var axes []int64
	var rest []byte
	for i, l := range ls {
		if slices.Contains(keep, l) {
			rest = append(rest, l)
		} else {
			axes = append(axes, int64(i))
		}
	}
	if len(axes) == 0 {
		return x, ls, nil
	}
	y, err := e.c.op1("sum", x, graph.Attrs{{Name: "axes", Value: graph.Ints(axes...)}})
	return y, rest, err
}

// permute transposes x (labelled ls) to the labels order.
func (e *einsum) permute(x *graph.Node, ls, order []byte) (*graph.Node, error) {
	perm := make([]int64, len(order))
	same := true
	for i, l := range order {
		perm[i] = int64(slices.Index(ls, l))
		same = same && perm[i] == int64(i)
	}
	if same {
		return x, nil
	}
	return e.c.op1("transpose", x, graph.Attrs{{Name: "perm", Value: graph.Ints(perm...)}})
}

// product returns the size of the labels ls together, one dimension.
func (e *einsum) product(ls []byte) (graph.Dim, error) {
	d := graph.Const(1)
	for _, l := range ls {
		s := e.sizes[l]
		switch {
		case s.Sym != "" && d.Sym != "":
			return graph.Dim{}, fmt.Errorf("labels %s would fold the batch with itself", ls)
		case s.Sym != "":
			s.Mul *= d.Size
			d = s
		case d.Sym != "":
			d.Mul *= s.Size
		default:
			d.Size *= s.Size
		}
	}
	return d, nil
}

// view reshapes x to dims, unless it has them already.
func (e *einsum) view(x *graph.Node, dims []graph.Dim) (*graph.Node, error) {
	if len(dims) == x.Type.Rank() {
		same := true
		for i, d := range dims {
			same = same && d.Equal(x.Type.Shape[i])
		}
		if same {
			return x, nil
		}
	}
	return e.c.reshape(x, dims)
}

// pair contracts a (labelled la) with b (lb) into a value labelled with
// the labels of either that keep holds: a batched matmul.
func (e *einsum) pair(a *graph.Node, la []byte, b *graph.Node, lb []byte, keep []byte) (*graph.Node, []byte, error) {
	var err error
	if a, la, err = e.sumAway(a, la, append(slices.Clone(keep), lb...)); err != nil {
		return nil, nil, err
	}
	if b, lb, err = e.sumAway(b, lb, append(slices.Clone(keep), la...)); err != nil {
		return nil, nil, err
	}
	var stack, contract, rows, cols []byte
	for _, l := range la {
		switch {
		case slices.Contains(lb, l) && slices.Contains(keep, l):
			stack = append(stack, l)
		case slices.Contains(lb, l):
			contract = append(contract, l)
		default:
			rows = append(rows, l)
		}
	}
	for _, l := range lb {
		if !slices.Contains(la, l) {
			cols = append(cols, l)
		}
	}
	dims := func(ls []byte) []graph.Dim {
		out := make([]graph.Dim, len(ls))
		for i, l := range ls {
			out[i] = e.sizes[l]
		}
		return out
	}
	m, err := e.product(rows)
	if err != nil {
		return nil, nil, err
	}
	k, err := e.product(contract)
	if err != nil {
		return nil, nil, err
	}
	p, err := e.product(cols)
	if err != nil {
		return nil, nil, err
	}
	if a, err = e.permute(a, la, slices.Concat(stack, rows, contract)); err != nil {
		return nil, nil, err
	}
	if a, err = e.view(a, append(dims(stack), m, k)); err != nil {
		return nil, nil, err
	}
	if b, err = e.permute(b, lb, slices.Concat(stack, contract, cols)); err != nil {
		return nil, nil, err
	}
	if b, err = e.view(b, append(dims(stack), k, p)); err != nil {
		return nil, nil, err
	}
	y, err := e.c.op("matmul", []*graph.Node{a, b}, nil)
	if err != nil {
		return nil, nil, err
	}
	ls := slices.Concat(stack, rows, cols)
	y, err = e.view(y, dims(ls))
	return y, ls, err
}

// finish sums x (labelled ls) over the labels out lacks and transposes it
// to out's order.
func (e *einsum) finish(x *graph.Node, ls, out []byte) (*graph.Node, error) {
	x, ls, err := e.sumAway(x, ls, out)
	if err != nil {
		return nil, err
	}
	return e.permute(x, ls, out)
}
