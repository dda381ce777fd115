package onnx

import (
	"fmt"
	"slices"

	"gorgonia.org/tensor"

	"multigpu/graph"
)

// Converters of indexing and rearranging ops: Gather of data, Expand,
// ArgMax and ArgMin, Tile, DepthToSpace and SpaceToDepth.

// indexVec adds a constant i64 vector (a const when small, else a param).
func (c *nodeCtx) indexVec(tag string, idx []int64) (*graph.Node, error) {
	if !fits(int64(len(idx))) {
		return nil, fmt.Errorf("an index vector of %d elements is too large", len(idx))
	}
	return c.constTensor(tag, tensor.New(tensor.WithShape(len(idx)), tensor.WithBacking(slices.Clone(idx))))
}

// gatherAxis adds gather x, idx {axis}.
func (c *nodeCtx) gatherAxis(x, idx *graph.Node, axis int) (*graph.Node, error) {
	return c.op("gather", []*graph.Node{x, idx}, graph.Attrs{{Name: "axis", Value: graph.Int(int64(axis))}})
}

// convertGatherData maps Gather (what foldGather does not fold at import
// time) to gather: the slices of data at i32 or i64 indices along axis,
// negative indices counting from the end (opset 11 says so; opset 1 left
// them undefined).
func convertGatherData(c *nodeCtx) error {
	data, err := c.in(0)
	if err != nil {
		return err
	}
	idx, err := c.in(1)
	if err != nil {
		return err
	}
	if dt := idx.Type.DType; dt != graph.I32 && dt != graph.I64 {
		return fmt.Errorf("expected int32 or int64 indices, found %s", idx.Type)
	}
	ax, err := c.axis(0, data.Type.Rank())
	if err != nil {
		return err
	}
	y, err := c.gatherAxis(data, idx, ax)
	if err != nil {
		return err
	}
	return c.set(0, y)
}

// convertExpand maps Expand to expand. The shape is a constant or a shape
// computed at import time, whose entries may hold the batch.
func convertExpand(c *nodeCtx) error {
	x, err := c.in(0)
	if err != nil {
		return err
	}
	var dims []graph.Dim
	if v := c.vecIn(1); v != nil && !v.scalar {
		dims = v.elems
	} else {
		ints, err := c.constInts(1, "shape")
		if err != nil {
			return err
		}
		dims = constDims(ints)
	}
	for _, d := range dims {
		if d.Sym == "" && d.Size < 1 {
			return fmt.Errorf("shape %s: expected positive sizes (a 0 makes a tensor with no elements, which the IR cannot hold)", specString(dims))
		}
	}
	y, err := c.op1("expand", x, graph.Attrs{{Name: "shape", Value: graph.ShapeAttr(dims)}})
	if err != nil {
		return err
	}
	return c.set(0, y)
}

// argReduce maps ArgMax and ArgMin to argmax and argmin, which return the
// first index of the extreme. select_last_index=1 (opset 12) takes the
// op's first index j on x reversed along axis (a gather with indices
// size-1, ..., 0), which is the last index size-1-j on x: picked from the
// same constant vector by a gather at j.
func argReduce(op string) *opDef {
	return &opDef{attrs: []string{"axis", "keepdims", "select_last_index"}, convert: func(c *nodeCtx) error {
		x, err := c.in(0)
		if err != nil {
			return err
		}
		ax, err := c.axis(0, x.Type.Rank())
		if err != nil {
			return err
		}
		keep, err := c.flag("keepdims", true)
		if err != nil {
			return err
		}
		last, err := c.flag("select_last_index", false)
		if err != nil {
			return err
		}
		attrs := graph.Attrs{{Name: "axis", Value: graph.Int(int64(ax))}, {Name: "keepdims", Value: graph.BoolAttr(keep)}}
		if !last {
			y, err := c.op1(op, x, attrs)
			if err != nil {
				return err
			}
			return c.set(0, y)
		}
		size, err := axisSize(x, ax)
		if err != nil {
			return fmt.Errorf("select_last_index=1: %v", err)
		}
		rev := make([]int64, size)
		for i := range rev {
			rev[i] = size - 1 - int64(i)
		}
		r, err := c.indexVec("reversed", rev)
		if err != nil {
			return err
		}
		xr, err := c.gatherAxis(x, r, ax)
		if err != nil {
			return err
		}
		j, err := c.op1(op, xr, attrs)
		if err != nil {
			return err
		}
		y, err := c.gatherAxis(r, j, 0)
		if err != nil {
			return err
		}
		return c.set(0, y)
	}}
}

// convertTile maps Tile: along an axis of concrete size d repeated r
// times, x is reshaped to [..., 1, d, ...], expanded to [..., r, d, ...]
// and reshaped to [..., r*d, ...] (the copies are the major factor, as
// Tile lays them out); along the batch's axis the copies are concatenated.
// The repeats are an input (a constant, or a shape computed at import
// time); opset 1 took a count and an axis as inputs.
func convertTile(c *nodeCtx) error {
	x, err := c.in(0)
	if err != nil {
		return err
	}
	r := x.Type.Rank()
	var reps []int64
	if c.opset() < 6 {
		tiles, err := c.constInts(1, "tiles")
		if err != nil {
			return err
		}
		axis, err := c.constInts(2, "axis")
		if err != nil {
			return err
		}
		if len(tiles) != 1 || len(axis) != 1 {
			return fmt.Errorf("expected a single tiles count and axis, found %v and %v", tiles, axis)
		}
		ax, err := normAxis(axis[0], r, "axis")
		if err != nil {
			return err
		}
		reps = slices.Repeat([]int64{1}, r)
		reps[ax] = tiles[0]
	} else if reps, err = c.constInts(1, "repeats"); err != nil {
		return err
	}
	if len(reps) != r {
		return fmt.Errorf("repeats %v has %d entries, expected %d for %s", reps, len(reps), r, x.Type)
	}
	for _, v := range reps {
		if v < 1 {
			return fmt.Errorf("repeats %v: expected positive counts (a 0 makes a tensor with no elements, which the IR cannot hold)", reps)
		}
	}
	y := x
	var inner, wide, merged []graph.Dim
	for ax, d := range x.Type.Shape {
		k := reps[ax]
		if d.Sym != "" && k > 1 {
			copies := slices.Repeat([]*graph.Node{y}, int(k))
			if y, err = c.op("concat", copies, graph.Attrs{{Name: "axis", Value: graph.Int(int64(ax))}}); err != nil {
				return err
			}
			d = y.Type.Shape[ax]
			k = 1
		}
		if k == 1 {
			inner, wide, merged = append(inner, d), append(wide, d), append(merged, d)
			continue
		}
		if !fits(k, d.Size) {
			return fmt.Errorf("repeats %v make a tensor too large", reps)
		}
		inner = append(inner, graph.Const(1), d)
		wide = append(wide, graph.Const(k), d)
		merged = append(merged, graph.Const(k*d.Size))
	}
	if len(inner) > len(merged) {
		if y, err = c.reshape(y, inner); err != nil {
			return err
		}
		if y, err = c.op1("expand", y, graph.Attrs{{Name: "shape", Value: graph.ShapeAttr(wide)}}); err != nil {
			return err
		}
		if y, err = c.reshape(y, merged); err != nil {
			return err
		}
	}
	return c.set(0, y)
}

// blocks reads DepthToSpace's and SpaceToDepth's input x[N,C,H,W] and
// blocksize.
func blocks(c *nodeCtx) (x *graph.Node, b, ch, h, w int64, err error) {
	if x, err = c.in(0); err != nil {
		return
	}
	if x.Type.Rank() != 4 {
		err = fmt.Errorf("expected an input [N,C,H,W], found %s", x.Type)
		return
	}
	s, ok := concrete(x.Type.Shape[1:])
	if !ok || slices.ContainsFunc(x.Type.Shape[1:], func(d graph.Dim) bool { return d.Sym != "" }) {
		err = fmt.Errorf("expected concrete channels, height and width, found %s", x.Type)
		return
	}
	ch, h, w = s[0], s[1], s[2]
	if !c.has("blocksize") {
		err = fmt.Errorf("missing attribute blocksize")
		return
	}
	if b, err = c.int("blocksize", 0); err != nil {
		return
	}
	if b < 1 || !fits(b, b) {
		err = fmt.Errorf("expected a positive blocksize, found %d", b)
	}
	return
}

// convertDepthToSpace maps DepthToSpace to ONNX's own definition, a
// reshape, a transpose and a reshape; mode DCR (the default, and the only
// one before opset 11) or CRD.
func convertDepthToSpace(c *nodeCtx) error {
	x, b, ch, h, w, err := blocks(c)
	if err != nil {
		return err
	}
	mode, err := c.str("mode", "DCR")
	if err != nil {
		return err
	}
	if ch%(b*b) != 0 {
		return fmt.Errorf("channels %d do not divide by blocksize^2 = %d", ch, b*b)
	}
	n, cb := x.Type.Shape[0], graph.Const(ch/(b*b))
	bd, hd, wd := graph.Const(b), graph.Const(h), graph.Const(w)
	var split []graph.Dim
	var perm []int64
	switch mode {
	case "DCR":
		split, perm = []graph.Dim{n, bd, bd, cb, hd, wd}, []int64{0, 3, 4, 1, 5, 2}
	case "CRD":
		split, perm = []graph.Dim{n, cb, bd, bd, hd, wd}, []int64{0, 1, 4, 2, 5, 3}
	default:
		return fmt.Errorf("unsupported mode %q (expected DCR or CRD)", mode)
	}
	y, err := rearrange(c, x, split, perm, []graph.Dim{n, cb, graph.Const(h * b), graph.Const(w * b)})
	if err != nil {
		return err
	}
	return c.set(0, y)
}

// convertSpaceToDepth maps SpaceToDepth to ONNX's own definition, a
// reshape, a transpose and a reshape.
func convertSpaceToDepth(c *nodeCtx) error {
	x, b, ch, h, w, err := blocks(c)
	if err != nil {
		return err
	}
	if h%b != 0 || w%b != 0 {
		return fmt.Errorf("height %d and width %d do not divide by blocksize %d", h, w, b)
	}
	n, bd := x.Type.Shape[0], graph.Const(b)
	hb, wb := graph.Const(h/b), graph.Const(w/b)
	y, err := rearrange(c, x, []graph.Dim{n, graph.Const(ch), hb, bd, wb, bd}, []int64{0, 3, 5, 1, 2, 4},
		[]graph.Dim{n, graph.Const(ch * b * b), hb, wb})
	if err != nil {
		return err
	}
	return c.set(0, y)
}

// rearrange reshapes x to split, permutes it and reshapes it to out.
func rearrange(c *nodeCtx, x *graph.Node, split []graph.Dim, perm []int64, out []graph.Dim) (*graph.Node, error) {
	y, err := c.reshape(x, split)
	if err != nil {
		return nil, err
	}
	if y, err = c.op1("transpose", y, graph.Attrs{{Name: "perm", Value: graph.Ints(perm...)}}); err != nil {
		return nil, err
	}
	return c.reshape(y, out)
}

// convertGatherElements maps GatherElements with constant indices on data
// of concrete shape: out[i...] = data[i... with i_axis replaced by
// indices[i...]] is a gather of data flattened, at flat indices computed
// at import time, shaped like indices. Negative indices count from the
// end; one out of range is an error.
func convertGatherElements(c *nodeCtx) error {
	data, err := c.in(0)
	if err != nil {
		return err
	}
	id, err := c.constIn(1, "indices")
	if err != nil {
		return err
	}
	vals, err := denseInts(id)
	if err != nil {
		return fmt.Errorf("indices: %v", err)
	}
	r := data.Type.Rank()
	ax, err := c.axis(0, r)
	if err != nil {
		return err
	}
	ds, ok := concrete(data.Type.Shape)
	if !ok || data.Type.HasSymbol() {
		return fmt.Errorf("data %s must have a concrete shape without the batch", data.Type)
	}
	is := id.Shape()
	if id.IsScalar() || len(is) != r {
		return fmt.Errorf("indices of shape %v: expected rank %d, as data %s", is, r, data.Type)
	}
	total := int64(1)
	for d, v := range ds {
		if d != ax && int64(is[d]) > v {
			return fmt.Errorf("indices of shape %v do not fit data %s on axis %d", is, data.Type, d)
		}
		total *= v
	}
	if !fits(total) {
		return fmt.Errorf("data %s is too large", data.Type)
	}
	flat := make([]int64, len(vals))
	pos := make([]int, r)
	for k, v := range vals {
		if v < -ds[ax] || v >= ds[ax] {
			return fmt.Errorf("index %d is out of range for axis %d of size %d", v, ax, ds[ax])
		}
		if v < 0 {
			v += ds[ax]
		}
		off := int64(0)
		for d := range r {
			p := int64(pos[d])
			if d == ax {
				p = v
			}
			off = off*ds[d] + p
		}
		flat[k] = off
		for d := r - 1; d >= 0; d-- { // the next position of indices, row-major
			if pos[d]++; pos[d] < is[d] {
				break
			}
			pos[d] = 0
		}
	}
	fl, err := c.reshape(data, []graph.Dim{graph.Const(total)})
	if err != nil {
		return err
	}
	iv, err := c.constTensor("flat", tensor.New(tensor.WithShape(is...), tensor.WithBacking(flat)))
	if err != nil {
		return err
	}
	y, err := c.gatherAxis(fl, iv, 0)
	if err != nil {
		return err
	}
	return c.set(0, y)
}
