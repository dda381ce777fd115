package onnx

import (
	"fmt"
	"math"
	"slices"

	"gorgonia.org/tensor"

	"multigpu/graph"
)

// axisSize returns the size of axis ax of x, which must be known at import
// time.
func axisSize(x *graph.Node, ax int) (int64, error) {
	v, ok := x.Type.Shape[ax].Value()
	if !ok {
		return 0, fmt.Errorf("axis %d of %s has no size at import time (the batch), which slicing needs", ax, x.Type)
	}
	return v, nil
}

// sliceAxis adds x[start:end] along ax (a no-op when it is the whole axis).
func sliceAxis(c *nodeCtx, x *graph.Node, ax int, start, end int64) (*graph.Node, error) {
	if size, _ := axisSize(x, ax); start == 0 && end == size {
		return x, nil
	}
	return c.op1("slice", x, graph.Attrs{
		{Name: "axis", Value: graph.Int(int64(ax))},
		{Name: "start", Value: graph.Int(start)},
		{Name: "end", Value: graph.Int(end)},
	})
}

// convertSplit maps Split to one slice per output: the sizes from the
// split attribute (before opset 13; opset 1 also took them as an input), a
// constant input (from opset 13), num_outputs parts (opset 18: of
// ceil(size/n), the last one smaller) or equal parts.
func convertSplit(c *nodeCtx) error {
	x, err := c.in(0)
	if err != nil {
		return err
	}
	ax, err := c.axis(0, x.Type.Rank())
	if err != nil {
		return err
	}
	size, err := axisSize(x, ax)
	if err != nil {
		return err
	}
	k := len(c.n.outputs)
	var sizes []int64
	given := false
	if c.opset() < 13 {
		if c.hasIn(1) && c.opset() >= 2 {
			return fmt.Errorf("split is an attribute before opset 13, found an input")
		}
		if sizes, given, err = c.ints("split"); err != nil {
			return err
		}
		if c.hasIn(1) { // opset 1: the sizes may come as a second input
			if given {
				return fmt.Errorf("split is given both as an attribute and as an input")
			}
			if sizes, err = c.constInts(1, "split"); err != nil {
				return err
			}
			given = true
		}
	} else {
		if c.has("split") {
			return fmt.Errorf("attribute split was replaced by an input in opset 13")
		}
		if c.hasIn(1) {
			if sizes, err = c.constInts(1, "split"); err != nil {
				return err
			}
			given = true
		}
	}
	if c.has("num_outputs") {
		n, err := c.int("num_outputs", 0)
		if err != nil {
			return err
		}
		if given {
			return fmt.Errorf("num_outputs and split are both given")
		}
		if n != int64(k) || n < 1 {
			return fmt.Errorf("num_outputs=%d, but the node has %d outputs", n, k)
		}
		// Opset 18: parts of ceil(size/n), the last one smaller.
		part := (size + n - 1) / n
		for left := size; left > 0; left -= part {
			sizes = append(sizes, min(part, left))
		}
		given = true
	}
	if !given {
		if k == 0 || size%int64(k) != 0 {
			return fmt.Errorf("axis %d of size %d does not split into %d equal parts", ax, size, k)
		}
		sizes = slices.Repeat([]int64{size / int64(k)}, k)
	}
	if len(sizes) != k {
		return fmt.Errorf("split %v has %d parts, but the node has %d outputs", sizes, len(sizes), k)
	}
	start := int64(0)
	for _, s := range sizes {
		if s <= 0 {
			return fmt.Errorf("split %v: parts with no elements are not supported", sizes)
		}
		start += s
	}
	if start != size {
		return fmt.Errorf("split %v adds up to %d, but axis %d has size %d", sizes, start, ax, size)
	}
	start = 0
	for i, s := range sizes {
		y, err := sliceAxis(c, x, ax, start, start+s)
		if err != nil {
			return err
		}
		if err := c.set(i, y); err != nil {
			return err
		}
		start += s
	}
	return nil
}

// convertSlice maps Slice to one slice per axis (a gather of the indices
// picked, for a step other than 1), its starts, ends and axes attributes
// (before opset 10) or constant inputs.
func convertSlice(c *nodeCtx) error {
	x, err := c.in(0)
	if err != nil {
		return err
	}
	r := x.Type.Rank()
	var starts, ends, axes, steps []int64
	if c.opset() < 10 {
		var ok bool
		if starts, ok, err = c.ints("starts"); err != nil || !ok {
			return orMissing(err, "starts")
		}
		if ends, ok, err = c.ints("ends"); err != nil || !ok {
			return orMissing(err, "ends")
		}
		if axes, _, err = c.ints("axes"); err != nil {
			return err
		}
	} else {
		for _, name := range []string{"starts", "ends", "axes"} {
			if c.has(name) {
				return fmt.Errorf("attribute %s was replaced by an input in opset 10", name)
			}
		}
		if starts, err = c.constInts(1, "starts"); err != nil {
			return err
		}
		if ends, err = c.constInts(2, "ends"); err != nil {
			return err
		}
		if c.hasIn(3) {
			if axes, err = c.constInts(3, "axes"); err != nil {
				return err
			}
		}
		if c.hasIn(4) {
			if steps, err = c.constInts(4, "steps"); err != nil {
				return err
			}
		}
	}
	if len(ends) != len(starts) {
		return fmt.Errorf("starts %v and ends %v differ in length", starts, ends)
	}
	if axes == nil {
		for i := range starts {
			axes = append(axes, int64(i))
		}
	}
	if len(axes) != len(starts) || steps != nil && len(steps) != len(starts) {
		return fmt.Errorf("starts %v, ends %v, axes %v and steps %v differ in length", starts, ends, axes, steps)
	}
	norm, err := normAxes(axes, r, "axis")
	if err != nil {
		return err
	}
	_ = norm // checks that the axes are distinct and in range
	y := x
	for i, a := range axes {
		ax, _ := normAxis(a, r, "axis")
		size, err := axisSize(x, ax)
		if err != nil {
			// x[:, ...] slices the whole of an axis of any size (the
			// batch's, in PyTorch's exports) from 0 to INT64_MAX.
			if starts[i] == 0 && ends[i] == math.MaxInt64 && (steps == nil || steps[i] == 1) {
				continue
			}
			return err
		}
		if steps != nil && steps[i] != 1 {
			if y, err = stridedSlice(c, y, ax, size, starts[i], ends[i], steps[i]); err != nil {
				return err
			}
			continue
		}
		clamp := func(v int64) int64 {
			if v < 0 {
				v += size
			}
			return min(max(v, 0), size)
		}
		s, e := clamp(starts[i]), clamp(ends[i])
		if s >= e {
			return fmt.Errorf("the slice [%d, %d) of axis %d (size %d) has no elements, which the IR cannot hold", starts[i], ends[i], ax, size)
		}
		if y, err = sliceAxis(c, y, ax, s, e); err != nil {
			return err
		}
	}
	return c.set(0, y)
}

// stridedSlice takes every step-th element of axis ax (of concrete size
// size) from start towards end, as ONNX's Slice does with a step other
// than 1 (x[:, 0::2] in Swin's patch merging, x.flip(1) as step -1): a
// gather with the constant indices it picks.
func stridedSlice(c *nodeCtx, x *graph.Node, ax int, size, start, end, step int64) (*graph.Node, error) {
	if step == 0 {
		return nil, fmt.Errorf("a step of 0 is not allowed")
	}
	if start < 0 {
		start += size
	}
	if end < 0 {
		end += size
	}
	var idx []int64
	if step > 0 {
		start, end = min(max(start, 0), size), min(max(end, 0), size)
		for i := start; i < end; i += step {
			idx = append(idx, i)
		}
	} else {
		start, end = min(max(start, 0), size-1), min(max(end, -1), size-1)
		for i := start; i > end; i += step {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return nil, fmt.Errorf("the slice of axis %d (size %d) from %d towards %d by %d has no elements, which the IR cannot hold", ax, size, start, end, step)
	}
	k, err := c.indexVec("steps", idx)
	if err != nil {
		return nil, err
	}
	return c.gatherAxis(x, k, ax)
}

func orMissing(err error, name string) error {
	if err != nil {
		return err
	}
	return fmt.Errorf("missing attribute %s", name)
}

// convertPad maps Pad. Negative pads crop (slices), on any axis and in
// every mode. The padding of mode constant goes on the spatial axes of
// x[N,C,H,W] or x[N,C,L] (padConstant); modes reflect, edge and wrap
// (opset 19) on any axis of concrete size, as a gather with constant
// indices along each padded axis. The pads, the value and (opset 18) the
// axes the pads apply to are attributes before opset 11, constant inputs
// after.
func convertPad(c *nodeCtx) error {
	x, err := c.in(0)
	if err != nil {
		return err
	}
	r := x.Type.Rank()
	mode, err := c.str("mode", "constant")
	if err != nil {
		return err
	}
	switch {
	case mode == "constant", mode == "reflect", mode == "edge":
	case mode == "wrap" && c.opset() >= 19:
	default:
		return fmt.Errorf("mode %q is not supported (expected constant, reflect, edge, or wrap from opset 19)", mode)
	}
	var pads []int64
	value := 0.0
	axes := make([]int64, r)
	for i := range axes {
		axes[i] = int64(i)
	}
	if c.opset() < 11 {
		var ok bool
		name := "pads"
		if c.opset() < 2 {
			name = "paddings"
		}
		if pads, ok, err = c.ints(name); err != nil || !ok {
			return orMissing(err, name)
		}
		if value, err = c.float("value", 0); err != nil {
			return err
		}
	} else {
		if c.has("pads") || c.has("value") {
			return fmt.Errorf("attributes pads and value were replaced by inputs in opset 11")
		}
		if pads, err = c.constInts(1, "pads"); err != nil {
			return err
		}
		if c.hasIn(2) {
			d, err := c.constIn(2, "constant_value")
			if err != nil {
				return err
			}
			if value, err = denseScalar(d); err != nil {
				return fmt.Errorf("constant_value: %v", err)
			}
		}
		if c.hasIn(3) {
			if c.opset() < 18 {
				return fmt.Errorf("the axes input is part of Pad from opset 18")
			}
			given, err := c.constInts(3, "axes")
			if err != nil {
				return err
			}
			if _, err := normAxes(given, r, "axis"); err != nil {
				return err
			}
			axes = axes[:0]
			for _, a := range given {
				ax, _ := normAxis(a, r, "axis")
				axes = append(axes, int64(ax))
			}
		}
	}
	if len(pads) != 2*len(axes) {
		return fmt.Errorf("pads %v has %d entries, expected %d for %s", pads, len(pads), 2*len(axes), x.Type)
	}
	full := make([]int64, 2*r)
	for i, ax := range axes {
		full[ax], full[int(ax)+r] = pads[i], pads[len(axes)+i]
	}
	pads = full
	// Crop first.
	y := x
	for ax := range r {
		b, e := pads[ax], pads[ax+r]
		if b >= 0 && e >= 0 {
			continue
		}
		if mode != "constant" && (b > 0 || e > 0) {
			return fmt.Errorf("pads %v both crop and pad axis %d, which mode %s does not support", pads, ax, mode)
		}
		size, err := axisSize(y, ax)
		if err != nil {
			return err
		}
		start, end := max(-b, 0), size-max(-e, 0)
		if start >= end {
			return fmt.Errorf("pads %v crop axis %d (size %d) to nothing, which the IR cannot hold", pads, ax, size)
		}
		if y, err = sliceAxis(c, y, ax, start, end); err != nil {
			return err
		}
		pads[ax], pads[ax+r] = max(b, 0), max(e, 0)
	}
	if !slices.ContainsFunc(pads, func(p int64) bool { return p != 0 }) {
		return c.set(0, y)
	}
	if mode != "constant" {
		if y, err = padIndexed(c, y, pads, mode); err != nil {
			return err
		}
		return c.set(0, y)
	}
	if y, err = padConstant(c, y, pads, value); err != nil {
		return err
	}
	return c.set(0, y)
}

// padIndexed pads x (pads non-negative, begins then ends) in mode
// reflect (mirrored without repeating the edge, as numpy's reflect),
// edge (the edge repeated) or wrap (periodic): a gather along each padded
// axis at the source index of every output position.
func padIndexed(c *nodeCtx, x *graph.Node, pads []int64, mode string) (*graph.Node, error) {
	r := x.Type.Rank()
	y := x
	for ax := range r {
		b, e := pads[ax], pads[ax+r]
		if b == 0 && e == 0 {
			continue
		}
		n, err := axisSize(y, ax)
		if err != nil {
			return nil, err
		}
		if !fits(b+n+e) || b+n+e > maxMadeElems {
			return nil, fmt.Errorf("pads %v make axis %d too large", pads, ax)
		}
		idx := make([]int64, b+n+e)
		for j := range idx {
			idx[j] = padSource(int64(j)-b, n, mode)
		}
		iv, err := c.indexVec("pad", idx)
		if err != nil {
			return nil, err
		}
		if y, err = c.gatherAxis(y, iv, ax); err != nil {
			return nil, err
		}
	}
	return y, nil
}

// padSource maps position i (which may lie outside [0, n)) of a padded
// axis of size n to the index it copies.
func padSource(i, n int64, mode string) int64 {
	mod := func(a, m int64) int64 { return ((a % m) + m) % m }
	switch mode {
	case "edge":
		return min(max(i, 0), n-1)
	case "wrap":
		return mod(i, n)
	}
	if n == 1 {
		return 0
	}
	s := mod(i, 2*(n-1))
	if s >= n {
		s = 2*(n-1) - s
	}
	return s
}

// padConstant pads x (pads non-negative, begins then ends) with value on
// the spatial axes of x[N,C,H,W] (or x[N,C,L]): a depthwise convolution
// with a 1x1 kernel of ones and the padding (exact: x*1 where x is, 0
// where the padding is), plus a constant that is the pad value on the
// padding and 0 elsewhere.
func padConstant(c *nodeCtx, x *graph.Node, pads []int64, value float64) (*graph.Node, error) {
	r := x.Type.Rank()
	if r != 3 && r != 4 {
		return nil, fmt.Errorf("only inputs [N,C,L] and [N,C,H,W] padded on their spatial axes are supported, found %s", x.Type)
	}
	for i, p := range pads {
		if ax := i % r; ax < 2 && p != 0 {
			return nil, fmt.Errorf("pads %v pad axis %d; only the spatial axes (2 and after) may be padded", pads, ax)
		}
	}
	ch, ok := x.Type.Shape[1].Value()
	if !ok || x.Type.Shape[1].Sym != "" {
		return nil, fmt.Errorf("expected concrete channels, found %s", x.Type)
	}
	dt := x.Type.DType
	if !dt.IsFloat() {
		return nil, fmt.Errorf("expected a floating-point input, found %s", x.Type)
	}
	win := window{kernel: []int64{1}, strides: []int64{1}, dilations: []int64{1}, pads: []int64{pads[2], pads[2+r]}}
	if r == 4 {
		win = window{kernel: []int64{1, 1}, strides: []int64{1, 1}, dilations: []int64{1, 1}, pads: []int64{pads[2], pads[3], pads[6], pads[7]}}
	}
	win = win.lift2D()
	lx, err := liftInput(c, x)
	if err != nil {
		return nil, err
	}
	if !fits(ch) {
		return nil, fmt.Errorf("too many channels")
	}
	ones := onesTensor(dt, []int{int(ch), 1, 1, 1})
	w, err := c.im.g.Param(c.tmp("ones"), denseType(ones))
	if err != nil {
		return nil, err
	}
	c.im.weights[w.Name] = ones
	y, err := c.op("conv2d", []*graph.Node{lx, w}, graph.Attrs{
		{Name: "pad", Value: padAttr(win.pads)},
		{Name: "groups", Value: graph.Int(ch)},
	})
	if err != nil {
		return nil, err
	}
	if value != 0 {
		h, wd := y.Type.Shape[2].Size, y.Type.Shape[3].Size
		if !fits(h, wd) {
			return nil, fmt.Errorf("padded input too large")
		}
		mask := make([]float64, h*wd)
		for i := range h {
			for j := range wd {
				if i < win.pads[0] || j < win.pads[1] || i >= h-win.pads[2] || j >= wd-win.pads[3] {
					mask[i*wd+j] = value
				}
			}
		}
		m := floatTensor(dt, []int{int(h), int(wd)}, mask)
		mn, err := c.im.g.Param(c.tmp("padding"), denseType(m))
		if err != nil {
			return nil, err
		}
		c.im.weights[mn.Name] = m
		if y, err = c.op("add", []*graph.Node{y, mn}, nil); err != nil {
			return nil, err
		}
	}
	return lowerOutput(c, y, r)
}

// onesTensor returns a tensor of ones of a floating-point type.
func onesTensor(dt graph.DType, shape []int) *tensor.Dense {
	n := 1
	for _, s := range shape {
		n *= s
	}
	return floatTensor(dt, shape, slices.Repeat([]float64{1}, n))
}

// floatTensor returns a tensor of type dt (F32 or F64) holding vs.
func floatTensor(dt graph.DType, shape []int, vs []float64) *tensor.Dense {
	if dt == graph.F64 {
		return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(slices.Clone(vs)))
	}
	f := make([]float32, len(vs))
	for i, v := range vs {
		f[i] = float32(v)
	}
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(f))
}
