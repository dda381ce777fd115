package onnx

import (
	"fmt"
	"slices"

	"gorgonia.org/tensor"

	"multigpu/graph"
	"multigpu/runtime/host"
)

// Exporters compute shapes in the graph: PyTorch writes x.view(x.size(0),
// -1) as Shape, Gather, Unsqueeze, Concat and Reshape. The importer folds
// such computations on small integer vectors at import time, keeping the
// batch as a symbol, so that a Reshape fed by them gets a shape with N in
// it: the folded ops leave no trace in the graph.

// maxVecElems bounds the integer vectors the importer folds.
const maxVecElems = 64

// intVec is a small integer vector (or scalar) known at import time up to
// the batch: each element is a concrete value (in Dim.Size, which may be
// 0 or negative here) or the batch symbol times an integer.
type intVec struct {
	elems  []graph.Dim
	scalar bool
	dtype  graph.DType // I32 or I64
	// src is an IR node that carries the batch and srcAx its axis whose
	// size the batch elements came from (the value whose Shape was
	// taken), nil when no element holds the batch.
	src   *graph.Node
	srcAx int
}

// symbolic reports whether an element depends on a batch known only at run
// time.
func (v *intVec) symbolic() bool {
	return slices.ContainsFunc(v.elems, func(d graph.Dim) bool {
		_, ok := d.Value()
		return !ok
	})
}

// symbolicErr says why a symbolic v has no value at import time.
func (v *intVec) symbolicErr() error {
	return fmt.Errorf("its value depends on the batch size, which is known only at run time (%s)", v)
}

// dense returns v as a tensor. It fails when v depends on a symbolic batch.
func (v *intVec) dense() (*tensor.Dense, error) {
	if v.symbolic() {
		return nil, v.symbolicErr()
	}
	vals := make([]int64, len(v.elems))
	for i, d := range v.elems {
		vals[i], _ = d.Value()
	}
	if v.dtype == graph.I32 {
		v32 := make([]int32, len(vals))
		for i, x := range vals {
			v32[i] = int32(x)
		}
		if v.scalar {
			return tensor.New(tensor.FromScalar(v32[0])), nil
		}
		return tensor.New(tensor.WithShape(len(v32)), tensor.WithBacking(v32)), nil
	}
	if v.scalar {
		return tensor.New(tensor.FromScalar(vals[0])), nil
	}
	return tensor.New(tensor.WithShape(len(vals)), tensor.WithBacking(vals)), nil
}

// String spells v as a list of its elements.
func (v *intVec) String() string {
	parts := make([]string, len(v.elems))
	for i, d := range v.elems {
		parts[i] = d.String()
	}
	if v.scalar && len(parts) == 1 {
		return parts[0]
	}
	return fmt.Sprint(parts)
}

// vecOf returns the value as an integer vector when it is one: a folded
// shape computation, or a small integer constant of rank 0 or 1.
func vecOf(v *value) *intVec {
	if v.vec != nil {
		return v.vec
	}
	if v.data == nil || v.data.Dims() > 1 {
		return nil
	}
	dt, _ := host.DTypeOf(v.data)
	if dt != graph.I64 && dt != graph.I32 {
		return nil
	}
	vals, err := denseInts(v.data)
	if err != nil || len(vals) > maxVecElems {
		return nil
	}
	out := &intVec{scalar: v.data.IsScalar(), dtype: dt}
	for _, x := range vals {
		out.elems = append(out.elems, graph.Const(x))
	}
	return out
}

// vecIn returns input i as an integer vector, or nil.
func (c *nodeCtx) vecIn(i int) *intVec {
	v, err := c.lookup(i)
	if err != nil {
		return nil
	}
	return vecOf(v)
}

// setVec binds output k to a folded vector (and to its data when it does
// not depend on a symbolic batch).
func (c *nodeCtx) setVec(k int, v *intVec) {
	if k >= len(c.n.outputs) || c.n.outputs[k] == "" {
		return
	}
	val := c.im.values[c.n.outputs[k]]
	val.vec = v
	if !v.symbolic() {
		val.data, _ = v.dense()
	}
	c.outs[k] = true
}

// folders fold what foldConst cannot: ops whose inputs are known at
// import time only up to the batch, and whose result must then be built in
// the graph. Each returns false, leaving the node to its converter, when
// its inputs are not of that kind.
var folders = map[string]func(c *nodeCtx) (bool, error){
	"ConstantOfShape": foldSymConstantOfShape,
	"Expand":          foldSymExpand,
}

// shapeRange returns the range [start, end) of the dimensions of a rank r
// input that Shape's start and end (opset 15) take: negative values count
// from the end, and both are clamped to [0, r].
func shapeRange(c *nodeCtx, r int64) (start, end int64, err error) {
	if start, err = c.int("start", 0); err != nil {
		return 0, 0, err
	}
	if end, err = c.int("end", r); err != nil {
		return 0, 0, err
	}
	clamp := func(v int64) int64 {
		if v < 0 {
			v += r
		}
		return min(max(v, 0), r)
	}
	return clamp(start), clamp(end), nil
}

// convertShape folds Shape to the vector of its input's dimensions, the
// batch as a symbol; start and end (opset 15) take a range of them.
func convertShape(c *nodeCtx) error {
	x, err := c.in(0)
	if err != nil {
		return err
	}
	r := int64(x.Type.Rank())
	start, end, err := shapeRange(c, r)
	if err != nil {
		return err
	}
	if start >= end {
		return fmt.Errorf("an empty shape slice [%d, %d) has no IR type", start, end)
	}
	v := &intVec{elems: slices.Clone(x.Type.Shape[start:end]), dtype: graph.I64}
	if ax := symbolicAxis(x.Type); ax >= 0 {
		v.src, v.srcAx = x, ax
	}
	c.setVec(0, v)
	return nil
}

// symbolicAxis returns the axis of t whose size holds the batch, or -1.
func symbolicAxis(t graph.Type) int {
	for i, d := range t.Shape {
		if d.Sym != "" {
			return i
		}
	}
	return -1
}

// convertSize folds Size, the number of elements of its input, the batch
// as a symbol (N times the other dimensions).
func convertSize(c *nodeCtx) error {
	x, err := c.in(0)
	if err != nil {
		return err
	}
	n := graph.Const(1)
	for _, d := range x.Type.Shape {
		if d.Sym != "" {
			d.Mul *= n.Size
			n = d
		} else if n.Sym != "" {
			n.Mul *= d.Size
		} else {
			n.Size *= d.Size
		}
	}
	v := &intVec{elems: []graph.Dim{n}, scalar: true, dtype: graph.I64}
	if ax := symbolicAxis(x.Type); ax >= 0 {
		v.src, v.srcAx = x, ax
	}
	c.setVec(0, v)
	return nil
}

// symShape returns input i when it is a shape known at import time that
// holds the batch (nil otherwise), and its entries.
func (c *nodeCtx) symShape(i int) (*folded, []graph.Dim, error) {
	v, err := c.lookup(i)
	if err != nil {
		return nil, nil, nil // the converter reports it
	}
	t := foldedOf(v)
	if t == nil || !t.symbolic() {
		return nil, nil, nil
	}
	vec := t.vec(c.im.batch)
	if vec == nil || vec.scalar {
		return nil, nil, fmt.Errorf("shape %s: expected a vector of sizes, each a constant or the batch N times a positive integer", t)
	}
	return t, vec.elems, nil
}

// foldSymConstantOfShape builds ConstantOfShape of a shape that holds the
// batch: the value broadcast onto the batch of the value whose Shape was
// taken, so that it stays with the replicas.
func foldSymConstantOfShape(c *nodeCtx) (bool, error) {
	t, dims, err := c.symShape(0)
	if err != nil {
		return false, err
	}
	val, err := constantOfShapeValue(c)
	if err != nil {
		return false, err
	}
	if t == nil {
		// A concrete shape too large to fold: the value expanded in the
		// graph.
		v, err := c.lookup(0)
		if err != nil {
			return false, nil
		}
		f := foldedOf(v)
		if f == nil {
			return false, nil
		}
		ints, err := f.constInts("shape")
		if err != nil || len(f.shape) != 1 {
			return false, nil
		}
		x, err := c.constTensor("value", val.dense())
		if err != nil {
			return false, err
		}
		for _, d := range ints {
			if d < 1 {
				return false, fmt.Errorf("shape %v: expected positive sizes (a 0 makes a tensor with no elements, which the IR cannot hold)", ints)
			}
		}
		y, err := c.op1("expand", x, graph.Attrs{{Name: "shape", Value: graph.ShapeAttr(constDims(ints))}})
		if err != nil {
			return false, err
		}
		return true, c.set(0, y)
	}
	d := val.dense()
	if err := exactInFloat(val); err != nil {
		return false, err
	}
	x, err := c.constTensor("value", d)
	if err != nil {
		return false, err
	}
	y, err := c.expandOnBatch(x, dims, t)
	if err != nil {
		return false, err
	}
	return true, c.set(0, y)
}

// foldSymExpand builds Expand of a batch-free value to a shape that holds
// the batch (Expand of a value that carries the batch is expand's own).
func foldSymExpand(c *nodeCtx) (bool, error) {
	t, dims, err := c.symShape(1)
	if t == nil || err != nil {
		return false, err
	}
	v, err := c.lookup(0)
	if err != nil {
		return false, nil
	}
	x, err := c.in(0)
	if err != nil {
		return false, err
	}
	if symbolicAxis(x.Type) >= 0 {
		return false, nil
	}
	if !x.Type.DType.IsFloat() && x.Type.DType != graph.Bool {
		f := foldedOf(v)
		if f == nil && x.Type.DType == graph.I64 {
			return false, fmt.Errorf("expanding %s, which carries no batch, to shape %s, which holds it, goes through f64, which is exact for i64 values only up to 2^53; the values of %q are not known at import time", x.Type, specString(dims), v.onnx)
		}
		if f != nil {
			if err := exactInFloat(f); err != nil {
				return false, err
			}
		}
	}
	target, err := expandTarget(x.Type.Shape, dims)
	if err != nil {
		return false, err
	}
	y, err := c.expandOnBatch(x, target, t)
	if err != nil {
		return false, err
	}
	return true, c.set(0, y)
}

// exactInFloat checks that the integers of t survive a trip through f64.
func exactInFloat(t *folded) error {
	for _, l := range t.ints {
		if l.c > 1<<53 || l.c < -(1<<53) {
			return fmt.Errorf("value %d: a value broadcast onto the batch goes through f64, which is exact for integers only up to 2^53", l.c)
		}
	}
	return nil
}

// expandTarget is the shape of ONNX's Expand of a value of shape x to
// shape: the two broadcast against each other.
func expandTarget(x, shape []graph.Dim) ([]graph.Dim, error) {
	r := max(len(x), len(shape))
	out := make([]graph.Dim, r)
	for i := range out {
		a, b := graph.Const(1), graph.Const(1)
		if j := i - (r - len(x)); j >= 0 {
			a = x[j]
		}
		if j := i - (r - len(shape)); j >= 0 {
			b = shape[j]
		}
		switch {
		case a.Equal(b), b.Equal(graph.Const(1)):
			out[i] = a
		case a.Equal(graph.Const(1)):
			out[i] = b
		default:
			return nil, fmt.Errorf("shape %s does not broadcast with the input's dimensions %s", specString(shape), specString(x))
		}
	}
	return out, nil
}

// expandOnBatch returns x, which carries no batch, broadcast to target,
// whose one batch axis holds N*k. The batch comes from an anchor: the
// value whose Shape gave the batch (t.src), sliced to size 1 on its other
// axes (a slice of a non-batch axis is batch-parallel) and reshaped to
// [1,...,N,...,1], then expanded to the target with the batch's factor k
// on an axis of its own ([...,N,k,...]); x is broadcast onto it with
// broadcast_like (whose operands share a numeric element type, so ints and
// bools go through f64 and f32), and the factor folded back into the batch
// axis ([...,N*k,...]). Every step is batch-parallel, so the result stays
// on the replicas.
func (c *nodeCtx) expandOnBatch(x *graph.Node, target []graph.Dim, t *folded) (*graph.Node, error) {
	j := -1
	for i, d := range target {
		if d.Sym == "" {
			continue
		}
		if j >= 0 {
			return nil, fmt.Errorf("shape %s holds the batch on two axes", specString(target))
		}
		j = i
	}
	src := t.src
	if j < 0 || src == nil || t.srcAx >= src.Type.Rank() || src.Type.Shape[t.srcAx].Sym == "" {
		return nil, fmt.Errorf("internal error: shape %s holds the batch, but no value it came from is known", specString(target))
	}
	a := src
	var err error
	for i, d := range src.Type.Shape {
		if i != t.srcAx && !d.Equal(graph.Const(1)) {
			if a, err = sliceAxis(c, a, i, 0, 1); err != nil {
				return nil, err
			}
		}
	}
	bd := src.Type.Shape[t.srcAx]
	n := bd
	n.Mul = 1
	if bd.Mul != 1 {
		// [N*m] -> [N,m] -> [N,1]: one element per sample.
		if a, err = c.reshape(a, []graph.Dim{n, graph.Const(bd.Mul)}); err != nil {
			return nil, err
		}
		if a, err = sliceAxis(c, a, 1, 0, 1); err != nil {
			return nil, err
		}
	}
	w := x.Type.DType
	switch {
	case w == graph.Bool:
		w = graph.F32
	case !w.IsFloat():
		w = graph.F64
	}
	if a, err = c.castTo(a, w); err != nil {
		return nil, err
	}
	xs, err := c.castTo(x, w)
	if err != nil {
		return nil, err
	}
	k := target[j].Mul
	var anchor, full, xdims []graph.Dim
	pad := len(target) - xs.Type.Rank()
	for i, d := range target {
		xd := graph.Const(1)
		if i >= pad {
			xd = xs.Type.Shape[i-pad]
		}
		if i != j {
			anchor, full, xdims = append(anchor, graph.Const(1)), append(full, d), append(xdims, xd)
			continue
		}
		anchor, full, xdims = append(anchor, n), append(full, n), append(xdims, xd)
		if k != 1 {
			anchor, full, xdims = append(anchor, graph.Const(1)), append(full, graph.Const(k)), append(xdims, graph.Const(1))
		}
	}
	if a, err = c.reshape(a, anchor); err != nil {
		return nil, err
	}
	if !slices.EqualFunc(anchor, full, graph.Dim.Equal) {
		if a, err = c.op1("expand", a, graph.Attrs{{Name: "shape", Value: graph.ShapeAttr(full)}}); err != nil {
			return nil, err
		}
	}
	if !slices.EqualFunc(xs.Type.Shape, xdims, graph.Dim.Equal) {
		if xs, err = c.reshape(xs, xdims); err != nil {
			return nil, err
		}
	}
	y, err := c.op("broadcast_like", []*graph.Node{xs, a}, nil)
	if err != nil {
		return nil, err
	}
	if k != 1 {
		if y, err = c.reshape(y, target); err != nil {
			return nil, err
		}
	}
	return c.castTo(y, x.Type.DType)
}
