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

// folders fold ops on integer vectors; each returns false, leaving the node
// to its converter, when its inputs are not all foldable.
var folders = map[string]func(c *nodeCtx) (bool, error){
	"Gather":    foldGather,
	"Unsqueeze": foldUnsqueeze,
	"Squeeze":   foldSqueeze,
	"Concat":    foldConcat,
	"Cast":      foldCast,
}

// convertShape folds Shape to the vector of its input's dimensions, the
// batch as a symbol; start and end (opset 15) take a range of them.
func convertShape(c *nodeCtx) error {
	x, err := c.in(0)
	if err != nil {
		return err
	}
	r := int64(x.Type.Rank())
	start, err := c.int("start", 0)
	if err != nil {
		return err
	}
	end, err := c.int("end", r)
	if err != nil {
		return err
	}
	clamp := func(v int64) int64 {
		if v < 0 {
			v += r
		}
		return min(max(v, 0), r)
	}
	start, end = clamp(start), clamp(end)
	if start >= end {
		return fmt.Errorf("an empty shape slice [%d, %d) has no IR type", start, end)
	}
	c.setVec(0, &intVec{elems: slices.Clone(x.Type.Shape[start:end]), dtype: graph.I64})
	return nil
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
	c.setVec(0, &intVec{elems: []graph.Dim{n}, scalar: true, dtype: graph.I64})
	return nil
}

// convertGather refuses what foldGather does not fold: the IR has no
// gather.
func convertGather(c *nodeCtx) error {
	return fmt.Errorf("Gather is supported only where it picks elements of a shape or of a small integer constant (folded at import time); the IR has no gather")
}

// foldGather picks elements of a vector (opset 1's Gather on axis 0).
func foldGather(c *nodeCtx) (bool, error) {
	data, idx := c.vecIn(0), c.vecIn(1)
	if data == nil || idx == nil || data.scalar || idx.symbolic() {
		return false, nil
	}
	ax, err := c.int("axis", 0)
	if err != nil {
		return false, err
	}
	if ax != 0 && ax != -1 {
		return false, fmt.Errorf("axis %d is out of range for a 1-D input", ax)
	}
	out := &intVec{scalar: idx.scalar, dtype: data.dtype}
	n := int64(len(data.elems))
	for _, e := range idx.elems {
		i := e.Size
		if i < -n || i >= n {
			return false, fmt.Errorf("index %d is out of range for %d elements", i, n)
		}
		if i < 0 {
			i += n
		}
		out.elems = append(out.elems, data.elems[i])
	}
	c.setVec(0, out)
	return true, nil
}

// foldUnsqueeze makes a scalar a one-element vector.
func foldUnsqueeze(c *nodeCtx) (bool, error) {
	in := c.vecIn(0)
	if in == nil || !in.scalar {
		return false, nil
	}
	axes, _, err := axesOf(c)
	if err != nil {
		return false, err
	}
	if len(axes) != 1 || axes[0] != 0 && axes[0] != -1 {
		return false, nil
	}
	c.setVec(0, &intVec{elems: in.elems, dtype: in.dtype})
	return true, nil
}

// foldSqueeze makes a one-element vector a scalar.
func foldSqueeze(c *nodeCtx) (bool, error) {
	in := c.vecIn(0)
	if in == nil || in.scalar || len(in.elems) != 1 {
		return false, nil
	}
	axes, given, err := axesOf(c)
	if err != nil {
		return false, err
	}
	if given && (len(axes) != 1 || axes[0] != 0 && axes[0] != -1) {
		return false, nil
	}
	c.setVec(0, &intVec{elems: in.elems, scalar: true, dtype: in.dtype})
	return true, nil
}

// foldConcat joins vectors, when at least one is a folded shape (plain
// constants are left to concat).
func foldConcat(c *nodeCtx) (bool, error) {
	out := &intVec{}
	folded := false
	for i := range c.n.inputs {
		v, err := c.lookup(i)
		if err != nil {
			return false, nil
		}
		in := vecOf(v)
		if in == nil || in.scalar || i > 0 && in.dtype != out.dtype {
			return false, nil
		}
		folded = folded || v.vec != nil
		out.dtype = in.dtype
		out.elems = append(out.elems, in.elems...)
	}
	if !folded || len(out.elems) > maxVecElems {
		return false, nil
	}
	ax, err := c.int("axis", 0)
	if err != nil {
		return false, err
	}
	if ax != 0 && ax != -1 {
		return false, fmt.Errorf("axis %d is out of range for 1-D inputs", ax)
	}
	c.setVec(0, out)
	return true, nil
}

// foldCast converts a folded shape to another integer type.
func foldCast(c *nodeCtx) (bool, error) {
	v, err := c.lookup(0)
	if err != nil || v.vec == nil {
		return false, nil
	}
	to, err := c.int("to", 0)
	if err != nil {
		return false, err
	}
	dt, ok := dtypeOf(to)
	if !ok || dt != graph.I64 && dt != graph.I32 {
		return false, nil
	}
	out := *v.vec
	out.dtype = dt
	c.setVec(0, &out)
	return true, nil
}
