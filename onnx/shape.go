package onnx

import (
	"fmt"
	"slices"
	"strings"

	"multigpu/graph"
)

// convertReshape maps Reshape, whose target shape is an attribute before
// opset 5 and a constant input after, to reshape. ONNX's 0 copies the
// input's dimension and -1 takes what is left. Where the input carries the
// batch, the target is written so that the replicas of a split graph
// compute what the whole graph does:
//
//   - with a symbolic batch, a 0 that copies the batch axis becomes the
//     batch symbol and a -1 absorbs it; a target of plain sizes hard-codes
//     the batch size and is refused;
//   - with a batch bound to a size (N=2), an output axis that provably
//     holds the batch (same size, same number of elements before it)
//     becomes N; otherwise the batch is folded into an axis that it
//     divides (N*k), which makes the reshape cross the batch.
func convertReshape(c *nodeCtx) error {
	x, err := c.in(0)
	if err != nil {
		return err
	}
	var spec []graph.Dim
	if c.opset() < 5 {
		if c.hasIn(1) {
			return fmt.Errorf("the shape is an attribute before opset 5, found an input")
		}
		ints, ok, err := c.ints("shape")
		if err != nil {
			return err
		} else if !ok {
			return fmt.Errorf("missing attribute shape")
		}
		spec = constDims(ints)
	} else {
		if c.has("shape") {
			return fmt.Errorf("attribute shape was replaced by an input in opset 5")
		}
		if v := c.vecIn(1); v != nil && !v.scalar {
			spec = v.elems
		} else {
			ints, err := c.constInts(1, "shape")
			if err != nil {
				return err
			}
			spec = constDims(ints)
		}
	}
	allowZero, err := c.flag("allowzero", false)
	if err != nil {
		return err
	}
	shape, err := reshapeTarget(x.Type, spec, allowZero, func(n int) int {
		return c.im.batchGuess.pick(c.outName(0), n)
	})
	if err != nil {
		return err
	}
	y, err := c.op1("reshape", x, graph.Attrs{{Name: "shape", Value: shape}})
	if err != nil {
		return err
	}
	return c.set(0, y)
}

// reshapeTarget turns an ONNX Reshape target into the IR's shape attribute
// for an input of type t. Entries of spec are sizes, 0 and -1, or (from a
// folded shape computation) the batch symbol times an integer.
//
// When the sizes of a bound batch leave more than one axis that could
// hold it, pick(n) chooses among the n readings (the most likely first).
func reshapeTarget(t graph.Type, spec []graph.Dim, allowZero bool, pick func(n int) int) (graph.AttrValue, error) {
	in := t.Shape
	r := len(in)
	out := make([]graph.AttrValue, len(spec))
	hole := -1
	copied := -1 // the output axis that copies the input's symbolic axis
	symAx := -1
	for i, d := range in {
		if d.Sym != "" {
			symAx = i
		}
	}
	fail := func(format string, args ...any) (graph.AttrValue, error) {
		return graph.AttrValue{}, fmt.Errorf("shape %s: %s", specString(spec), fmt.Sprintf(format, args...))
	}
	symbolic := -1 // an entry that holds the batch symbol
	for j, e := range spec {
		s := e.Size
		switch {
		case e.Sym != "":
			symbolic = j
			out[j] = graph.DimAttr(e)
			if symAx >= 0 && e.Mul == in[symAx].Mul {
				copied = j
			}
		case s == 0 && allowZero:
			return fail("allowzero=1 with a 0 makes a tensor with no elements, which the IR cannot hold")
		case s == 0:
			if j >= r {
				return fail("entry %d is 0 (copy the input's dimension), but input %s has rank %d", j, t, r)
			}
			out[j] = graph.DimAttr(in[j])
			if j == symAx {
				copied = j
			}
		case s == -1:
			if hole >= 0 {
				return fail("more than one -1")
			}
			hole = j
			out[j] = graph.Int(-1)
		case s < -1:
			return fail("expected sizes, 0 or -1, found %d", s)
		default:
			out[j] = graph.Int(s)
		}
	}
	list := func(l []graph.AttrValue) graph.AttrValue { return graph.AttrValue{Kind: graph.AttrList, List: l} }
	if symAx < 0 {
		if symbolic >= 0 {
			return fail("entry %d depends on the batch, but input %s does not have it", symbolic, t)
		}
		return list(out), nil
	}
	d := in[symAx]
	if d.Bound == 0 {
		if copied >= 0 || hole >= 0 || symbolic >= 0 {
			return list(out), nil
		}
		return graph.AttrValue{}, fmt.Errorf("shape %s hard-codes the size of every axis, but the batch of %s is symbolic (%s): export the model with 0 or -1 for the batch axis, or give the batch a size", specString(spec), t, d)
	}
	// A bound batch: work in sizes, then decide where the batch goes.
	inC, _ := concrete(in)
	total := int64(1)
	for _, v := range inC {
		total *= v
	}
	outC := make([]int64, len(spec))
	known := int64(1)
	for j, e := range spec {
		switch {
		case j == hole:
			continue
		case e.Sym != "":
			outC[j], _ = e.Value()
		case e.Size == 0:
			outC[j] = inC[j]
		default:
			outC[j] = e.Size
		}
		if outC[j] <= 0 || outC[j] > total/known {
			return fail("cannot reshape %s (%d elements) to it", t, total)
		}
		known *= outC[j]
	}
	if hole >= 0 {
		if total%known != 0 {
			return fail("cannot reshape %s (%d elements) to it: %d does not divide by %d", t, total, total, known)
		}
		outC[hole] = total / known
	} else if known != total {
		return fail("cannot reshape %s (%d elements) to it (%d elements)", t, total, known)
	}
	before := int64(1)
	for _, v := range inC[:symAx] {
		before *= v
	}
	res := make([]graph.AttrValue, len(outC))
	for j, v := range outC {
		res[j] = graph.Int(v)
	}
	if copied >= 0 {
		// Traced: a 0 that copies the batch's axis, or a folded shape.
		res[copied] = graph.DimAttr(d)
		return list(res), nil
	}
	// An axis of the batch axis's own size with the same elements before
	// it is the likeliest reading of all.
	own := -1
	p := int64(1)
	for j, v := range outC {
		if p == before && v == inC[symAx] {
			own = j
			break
		}
		p *= v
	}
	// The readings: every output axis whose size is a multiple of the
	// batch. Most likely first: the axis with the elements before it that
	// the batch has (the batch folded with the axes after it, [S,N,E] to
	// [S,N*H,D]), then those whose elements before it divide those (the
	// batch folded with axes before it, [S,N,E] to [S*N,E]), then the rest
	// (a batch that was folded with axes before it already). Where more
	// than one remain, the search of ambiguous.go tries them in turn.
	var same, folded, rest []int
	if own >= 0 {
		same = append(same, own)
	}
	p = 1
	for j, v := range outC {
		switch {
		case j == own, v%d.Bound != 0:
		case p == before:
			same = append(same, j)
		case before%p == 0 && (v/d.Bound)%(before/p) == 0:
			folded = append(folded, j)
		default:
			rest = append(rest, j)
		}
		p *= v
	}
	cands := append(append(same, folded...), rest...)
	if len(cands) > 0 {
		j := cands[0]
		if len(cands) > 1 {
			j = cands[pick(len(cands))]
		}
		s := graph.Ident(d.SymName())
		s.Int = outC[j] / d.Bound
		if j == own {
			s.Int = d.Mul
		}
		res[j] = s
		return list(res), nil
	}
	return fail("cannot reshape %s to %v: the batch (%s) is split across axes and divides none of them", t, outC, d)
}

// constDims returns integers as concrete entries of a Reshape target.
func constDims(vs []int64) []graph.Dim {
	out := make([]graph.Dim, len(vs))
	for i, v := range vs {
		out[i] = graph.Const(v)
	}
	return out
}

// specString spells a Reshape target as ONNX would, the batch as N.
func specString(spec []graph.Dim) string {
	parts := make([]string, len(spec))
	for i, d := range spec {
		parts[i] = d.String()
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// axesOf reads the axes of Squeeze and Unsqueeze: an attribute before
// opset 13, an input after.
func axesOf(c *nodeCtx) ([]int64, bool, error) {
	if c.opset() < 13 {
		if c.hasIn(1) {
			return nil, false, fmt.Errorf("axes is an attribute before opset 13, found an input")
		}
		return c.ints("axes")
	}
	if c.has("axes") {
		return nil, false, fmt.Errorf("attribute axes was replaced by an input in opset 13")
	}
	if !c.hasIn(1) {
		return nil, false, nil
	}
	axes, err := c.constInts(1, "axes")
	return axes, err == nil, err
}

// convertSqueeze maps Squeeze to a reshape without the axes of size 1.
func convertSqueeze(c *nodeCtx) error {
	x, err := c.in(0)
	if err != nil {
		return err
	}
	axes, given, err := axesOf(c)
	if err != nil {
		return err
	}
	in := x.Type.Shape
	drop := make([]bool, len(in))
	if !given {
		for i, d := range in {
			drop[i] = d.Sym == "" && d.Size == 1
		}
	} else {
		norm, err := normAxes(axes, len(in), "axis")
		if err != nil {
			return err
		}
		for _, a := range norm {
			d := in[a]
			if d.Sym != "" {
				return fmt.Errorf("axis %d of %s holds the batch (%s), which cannot be squeezed", a, x.Type, d)
			}
			if d.Size != 1 {
				return fmt.Errorf("axis %d of %s has size %d, expected 1", a, x.Type, d.Size)
			}
			drop[a] = true
		}
	}
	var dims []graph.Dim
	for i, d := range in {
		if !drop[i] {
			dims = append(dims, d)
		}
	}
	if len(dims) == len(in) {
		return c.set(0, x)
	}
	y, err := c.reshape(x, dims)
	if err != nil {
		return err
	}
	return c.set(0, y)
}

// convertUnsqueeze maps Unsqueeze to a reshape with axes of size 1 added.
func convertUnsqueeze(c *nodeCtx) error {
	x, err := c.in(0)
	if err != nil {
		return err
	}
	axes, given, err := axesOf(c)
	if err != nil {
		return err
	}
	if !given || len(axes) == 0 {
		return fmt.Errorf("missing axes")
	}
	in := x.Type.Shape
	r := len(in) + len(axes)
	norm, err := normAxes(axes, r, "axis")
	if err != nil {
		return err
	}
	dims := make([]graph.Dim, 0, r)
	next := 0
	for i := range r {
		if slices.Contains(norm, int64(i)) {
			dims = append(dims, graph.Const(1))
		} else {
			dims = append(dims, in[next])
			next++
		}
	}
	y, err := c.reshape(x, dims)
	if err != nil {
		return err
	}
	return c.set(0, y)
}

func convertFlatten(c *nodeCtx) error {
	x, err := c.in(0)
	if err != nil {
		return err
	}
	r := int64(x.Type.Rank())
	ax, err := c.int("axis", 1)
	if err != nil {
		return err
	}
	if ax < -r || ax > r {
		return fmt.Errorf("axis %d is out of range for rank %d", ax, r)
	}
	if ax < 0 {
		ax += r
	}
	y, err := c.op1("flatten", x, graph.Attrs{{Name: "axis", Value: graph.Int(ax)}})
	if err != nil {
		return err
	}
	return c.set(0, y)
}

func convertTranspose(c *nodeCtx) error {
	x, err := c.in(0)
	if err != nil {
		return err
	}
	r := x.Type.Rank()
	perm, ok, err := c.ints("perm")
	if err != nil {
		return err
	}
	if !ok {
		for i := r - 1; i >= 0; i-- {
			perm = append(perm, int64(i))
		}
	}
	y, err := c.op1("transpose", x, graph.Attrs{{Name: "perm", Value: graph.Ints(perm...)}})
	if err != nil {
		return err
	}
	return c.set(0, y)
}

func convertConcat(c *nodeCtx) error {
	xs, err := c.ins()
	if err != nil {
		return err
	}
	if len(xs) == 0 {
		return fmt.Errorf("expected at least one input")
	}
	def := int64(0)
	if c.opset() < 4 {
		def = 1
	} else if !c.has("axis") {
		return fmt.Errorf("missing attribute axis")
	}
	ax, err := c.axis(def, xs[0].Type.Rank())
	if err != nil {
		return err
	}
	if len(xs) == 1 {
		return c.set(0, xs[0])
	}
	y, err := c.op("concat", xs, graph.Attrs{{Name: "axis", Value: graph.Int(int64(ax))}})
	if err != nil {
		return err
	}
	return c.set(0, y)
}
