package onnx

import (
	"fmt"
	"math"
	"slices"

	"gorgonia.org/tensor"

	"multigpu/graph"
)

// Resize and Upsample become gathers along each resized axis with
// constant indices (nearest), or two gathers, each times a constant weight
// vector, added (linear: N-linear interpolation is separable, one axis at
// a time, the last axis first as PyTorch's bilinear kernel does). The
// source coordinates, indices and weights are computed at import time in
// float32 arithmetic, as ONNX Runtime and PyTorch compute them, so that
// the indices nearest picks are theirs (a coordinate that lands just off
// an integer in float64 may land on it in float32).

// resizeSpec is what a Resize or Upsample node asks for.
type resizeSpec struct {
	mode    string // nearest or linear
	coord   string // coordinate_transformation_mode
	nearest string // nearest_mode; "simple" before opset 11
}

// convertResize maps Resize of opsets 10 (inputs X and scales, asymmetric
// coordinates), 11 and 13 (inputs X, roi, scales, sizes) and 18 and 19
// (the axes attribute; keep_aspect_ratio_policy stretch only; no
// antialiasing when downsampling).
func convertResize(c *nodeCtx) error {
	x, err := c.in(0)
	if err != nil {
		return err
	}
	r := x.Type.Rank()
	sp := resizeSpec{coord: "asymmetric", nearest: "simple"}
	if sp.mode, err = c.str("mode", "nearest"); err != nil {
		return err
	}
	if c.opset() >= 11 {
		if sp.coord, err = c.str("coordinate_transformation_mode", "half_pixel"); err != nil {
			return err
		}
		if sp.nearest, err = c.str("nearest_mode", "round_prefer_floor"); err != nil {
			return err
		}
	} else {
		for _, a := range []string{"coordinate_transformation_mode", "nearest_mode", "cubic_coeff_a", "exclude_outside", "extrapolation_value"} {
			if c.has(a) {
				return fmt.Errorf("attribute %s is not part of Resize before opset 11", a)
			}
		}
	}
	if err := sp.check(); err != nil {
		return err
	}
	axes := make([]int, r)
	for i := range axes {
		axes[i] = i
	}
	if c.opset() >= 18 {
		if ax, ok, err := c.ints("axes"); err != nil {
			return err
		} else if ok {
			if _, err := normAxes(ax, r, "axis"); err != nil {
				return err
			}
			axes = axes[:0]
			for _, a := range ax { // in the given order, which scales and sizes follow
				n, _ := normAxis(a, r, "axis")
				axes = append(axes, n)
			}
		}
		policy, err := c.str("keep_aspect_ratio_policy", "stretch")
		if err != nil {
			return err
		}
		if policy != "stretch" {
			return fmt.Errorf("keep_aspect_ratio_policy %q is not supported (only stretch)", policy)
		}
	} else if c.has("axes") || c.has("keep_aspect_ratio_policy") || c.has("antialias") {
		return fmt.Errorf("attributes axes, keep_aspect_ratio_policy and antialias are part of Resize from opset 18")
	}
	scalesIn, sizesIn := 1, -1
	if c.opset() >= 11 {
		scalesIn, sizesIn = 2, 3
	}
	scales, sizes, err := resizeTargets(c, scalesIn, sizesIn, len(axes))
	if err != nil {
		return err
	}
	if c.opset() >= 18 {
		anti, err := c.flag("antialias", false)
		if err != nil {
			return err
		}
		if anti && sp.mode != "nearest" {
			for _, s := range scales {
				if s < 1 {
					return fmt.Errorf("antialias=1 when downsampling is not supported")
				}
			}
			for i, s := range sizes {
				if v, ok := s.Value(); ok && v < x.Type.Shape[axes[i]].Size {
					return fmt.Errorf("antialias=1 when downsampling is not supported")
				}
			}
		}
	}
	y, err := resize(c, x, sp, axes, scales, sizes)
	if err != nil {
		return err
	}
	return c.set(0, y)
}

// check refuses the modes the importer does not map.
func (sp resizeSpec) check() error {
	switch sp.mode {
	case "nearest", "linear":
	case "cubic":
		return fmt.Errorf("mode cubic is not supported (only nearest and linear)")
	default:
		return fmt.Errorf("unsupported mode %q (expected nearest, linear or cubic)", sp.mode)
	}
	switch sp.coord {
	case "half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric", "tf_half_pixel_for_nn":
	case "tf_crop_and_resize":
		return fmt.Errorf("coordinate_transformation_mode tf_crop_and_resize is not supported")
	default:
		return fmt.Errorf("unsupported coordinate_transformation_mode %q", sp.coord)
	}
	switch sp.nearest {
	case "simple", "round_prefer_floor", "round_prefer_ceil", "floor", "ceil":
	default:
		return fmt.Errorf("unsupported nearest_mode %q (expected round_prefer_floor, round_prefer_ceil, floor or ceil)", sp.nearest)
	}
	return nil
}

// emptyIn reports whether input i is absent or a constant with no
// elements (opset 11's way of leaving out roi and scales).
func (c *nodeCtx) emptyIn(i int) bool {
	if !c.hasIn(i) {
		return true
	}
	v, err := c.lookup(i)
	if err != nil {
		return false
	}
	switch {
	case v.data != nil:
		return v.data.Len() == 0 || slices.Contains(v.data.Shape(), 0)
	case v.vec != nil:
		return len(v.vec.elems) == 0
	case v.fold != nil:
		return v.fold.size() == 0
	}
	return false
}

// resizeTargets reads scales (input si) or sizes (input zi, -1 when the
// opset has none), one per resized axis: exactly one is returned.
func resizeTargets(c *nodeCtx, si, zi, n int) ([]float32, []graph.Dim, error) {
	hasScales := !c.emptyIn(si)
	hasSizes := zi >= 0 && !c.emptyIn(zi)
	switch {
	case hasScales && hasSizes:
		return nil, nil, fmt.Errorf("scales and sizes are both given")
	case hasScales:
		d, err := c.constIn(si, "scales")
		if err != nil {
			return nil, nil, err
		}
		fs := denseFloats(d)
		if len(fs) != n {
			return nil, nil, fmt.Errorf("scales %v has %d entries, expected %d", fs, len(fs), n)
		}
		out := make([]float32, n)
		for i, f := range fs {
			out[i] = float32(f)
			if !(out[i] > 0) || math.IsInf(f, 0) {
				return nil, nil, fmt.Errorf("scales %v: expected positive finite values", fs)
			}
		}
		return out, nil, nil
	case hasSizes:
		var dims []graph.Dim
		if v := c.vecIn(zi); v != nil && !v.scalar {
			dims = v.elems
		} else {
			ints, err := c.constInts(zi, "sizes")
			if err != nil {
				return nil, nil, err
			}
			dims = constDims(ints)
		}
		if len(dims) != n {
			return nil, nil, fmt.Errorf("sizes %s has %d entries, expected %d", specString(dims), len(dims), n)
		}
		for _, d := range dims {
			if d.Sym == "" && d.Size < 1 {
				return nil, nil, fmt.Errorf("sizes %s: expected positive sizes", specString(dims))
			}
		}
		return nil, dims, nil
	}
	return nil, nil, fmt.Errorf("one of scales and sizes must be given")
}

// resize resizes x along axes to the given scales or sizes (one set is
// nil). An axis whose size does not change is left as it is: every
// coordinate mode maps it onto itself.
func resize(c *nodeCtx, x *graph.Node, sp resizeSpec, axes []int, scales []float32, sizes []graph.Dim) (*graph.Node, error) {
	type plan struct {
		axis     int
		in, out  int64
		scale    float32
		explicit bool // the scale was given (not out/in)
	}
	var plans []plan
	for i, ax := range axes {
		d := x.Type.Shape[ax]
		if d.Sym != "" {
			// A size equal to a bound batch's keeps it too: at that batch,
			// which is the model's, it is what the model says.
			bound, ok := d.Value()
			same := sizes != nil && (sizes[i].Equal(d) || ok && sizes[i].Sym == "" && sizes[i].Size == bound) ||
				scales != nil && scales[i] == 1
			if !same {
				return nil, fmt.Errorf("axis %d holds the batch (%s), which can only keep its size (scale 1)", ax, d)
			}
			continue
		}
		p := plan{axis: ax, in: d.Size}
		if scales != nil {
			p.scale, p.explicit = scales[i], true
			p.out = int64(p.scale * float32(d.Size))
		} else {
			if sizes[i].Sym != "" {
				return nil, fmt.Errorf("sizes %s: axis %d of %s cannot take the batch's size", specString(sizes), ax, x.Type)
			}
			p.out = sizes[i].Size
			p.scale = float32(p.out) / float32(p.in)
		}
		if p.explicit && float64(p.out) != float64(p.scale)*float64(d.Size) &&
			(sp.coord == "align_corners" || sp.coord == "pytorch_half_pixel" && p.out == 1) {
			// ONNX's reference divides by the fractional size in*scale
			// (minus 1, or tests it against 1); ONNX Runtime by the
			// integer one.
			return nil, fmt.Errorf("coordinate_transformation_mode %s with scale %g on axis %d (size %d) is ambiguous: the output size %g is not an integer, and implementations differ on which one the coordinates use; give sizes instead", sp.coord, p.scale, ax, d.Size, float64(p.scale)*float64(d.Size))
		}
		if p.out < 1 {
			return nil, fmt.Errorf("axis %d of size %d scaled by %g has no elements", ax, d.Size, p.scale)
		}
		if !fits(p.out) {
			return nil, fmt.Errorf("axis %d resized to %d is too large", ax, p.out)
		}
		if p.out == p.in && (p.scale == 1 || !p.explicit) {
			continue
		}
		plans = append(plans, p)
	}
	if len(plans) > 0 && sp.mode == "linear" && !x.Type.DType.IsFloat() {
		return nil, fmt.Errorf("linear resizing of %s is not supported (expected a floating-point input)", x.Type)
	}
	// The last axis first.
	slices.SortFunc(plans, func(a, b plan) int { return b.axis - a.axis })
	y := x
	for _, p := range plans {
		var err error
		coords := make([]float32, p.out)
		for o := range coords {
			coords[o] = sp.source(int64(o), p.scale, p.in, p.out)
		}
		if sp.mode == "nearest" {
			y, err = nearestAxis(c, y, p.axis, p.in, p.scale, coords, sp.nearest)
		} else {
			y, err = linearAxis(c, y, p.axis, p.in, coords)
		}
		if err != nil {
			return nil, err
		}
	}
	return y, nil
}

// source maps output coordinate o of an axis resized from in to out
// elements by scale to the input's coordinate system, in float32 as ONNX
// Runtime computes it.
func (sp resizeSpec) source(o int64, scale float32, in, out int64) float32 {
	x := float32(o)
	switch sp.coord {
	case "half_pixel":
		return (x+0.5)/scale - 0.5
	case "half_pixel_symmetric":
		adjust := float32(out) / (scale * float32(in))
		center := float32(in) / 2
		offset := center * (1 - adjust)
		return offset + (x+0.5)/scale - 0.5
	case "pytorch_half_pixel":
		if out > 1 {
			return (x+0.5)/scale - 0.5
		}
		return 0
	case "align_corners":
		if out == 1 {
			return 0
		}
		return x * float32(in-1) / float32(out-1)
	case "tf_half_pixel_for_nn":
		return (x + 0.5) / scale
	}
	return x / scale // asymmetric
}

// nearestIndex rounds a source coordinate to an index in [0, in).
func nearestIndex(v float32, mode string, scale float32, in int64) int64 {
	f := float64(v)
	var i float64
	switch mode {
	case "round_prefer_floor":
		if f == float64(int64(f))+0.5 {
			i = math.Floor(f)
		} else {
			i = math.Round(f)
		}
	case "round_prefer_ceil":
		i = math.Round(f)
	case "floor":
		i = math.Floor(f)
	case "ceil":
		i = math.Ceil(f)
	default: // simple: ONNX Runtime's rule for Upsample and Resize-10
		if scale < 1 {
			i = math.Ceil(f)
		} else {
			i = math.Trunc(f)
		}
	}
	return min(max(int64(i), 0), in-1)
}

// nearestAxis gathers x along axis at the nearest input index of each
// output coordinate.
func nearestAxis(c *nodeCtx, x *graph.Node, axis int, in int64, scale float32, coords []float32, mode string) (*graph.Node, error) {
	idx := make([]int64, len(coords))
	for o, v := range coords {
		idx[o] = nearestIndex(v, mode, scale, in)
	}
	iv, err := c.indexVec("nearest", idx)
	if err != nil {
		return nil, err
	}
	return c.gatherAxis(x, iv, axis)
}

// linearAxis interpolates x along axis between the two input elements
// around each output coordinate (clamped to [0, in-1], as ONNX Runtime
// does): x[i0]*(1-l) + x[i1]*l, with l = v - i0. The weights are vectors
// shaped to broadcast against the axis.
func linearAxis(c *nodeCtx, x *graph.Node, axis int, in int64, coords []float32) (*graph.Node, error) {
	n := len(coords)
	i0, i1 := make([]int64, n), make([]int64, n)
	w0, w1 := make([]float64, n), make([]float64, n)
	for o, v := range coords {
		v = min(max(v, 0), float32(in-1))
		lo := min(int64(v), in-1)
		hi := min(lo+1, in-1)
		l := v - float32(lo)
		i0[o], i1[o] = lo, hi
		w0[o], w1[o] = float64(1-l), float64(l)
	}
	dt := x.Type.DType
	shape := make([]int, x.Type.Rank()-axis)
	shape[0] = n
	for i := 1; i < len(shape); i++ {
		shape[i] = 1
	}
	g0, err := c.linearTerm(x, axis, i0, floatTensor(dt, shape, w0))
	if err != nil {
		return nil, err
	}
	g1, err := c.linearTerm(x, axis, i1, floatTensor(dt, shape, w1))
	if err != nil {
		return nil, err
	}
	return c.op("add", []*graph.Node{g0, g1}, nil)
}

// linearTerm gathers x along axis at idx, times the weights w.
func (c *nodeCtx) linearTerm(x *graph.Node, axis int, idx []int64, w *tensor.Dense) (*graph.Node, error) {
	iv, err := c.indexVec("index", idx)
	if err != nil {
		return nil, err
	}
	g, err := c.gatherAxis(x, iv, axis)
	if err != nil {
		return nil, err
	}
	wn, err := c.constTensor("weight", w)
	if err != nil {
		return nil, err
	}
	return c.op("mul", []*graph.Node{g, wn}, nil)
}

// convertUpsample maps Upsample (opsets 7 and 9; deprecated in 10) to
// Resize's opset 10 form: asymmetric coordinates, scales from an
// attribute (opset 7) or a constant input (opset 9).
func convertUpsample(c *nodeCtx) error {
	x, err := c.in(0)
	if err != nil {
		return err
	}
	if c.opset() < 7 {
		return fmt.Errorf("Upsample of opset 1 (height_scale and width_scale) is not supported")
	}
	sp := resizeSpec{coord: "asymmetric", nearest: "simple"}
	if sp.mode, err = c.str("mode", "nearest"); err != nil {
		return err
	}
	if sp.mode == "bilinear" {
		sp.mode = "linear"
	}
	if err := sp.check(); err != nil {
		return err
	}
	r := x.Type.Rank()
	var scales []float32
	if c.opset() < 9 {
		a, err := c.attr("scales", attrTypeFloats)
		if err != nil {
			return err
		}
		if a == nil {
			return fmt.Errorf("missing attribute scales")
		}
		for _, f := range a.floats {
			scales = append(scales, f)
		}
		if len(scales) != r {
			return fmt.Errorf("scales %v has %d entries, expected %d", scales, len(scales), r)
		}
	} else {
		if c.has("scales") {
			return fmt.Errorf("attribute scales was replaced by an input in opset 9")
		}
		if scales, _, err = resizeTargets(c, 1, -1, r); err != nil {
			return err
		}
	}
	for _, s := range scales {
		if s < 1 {
			return fmt.Errorf("scales %v: Upsample expects scales of at least 1", scales)
		}
	}
	axes := make([]int, r)
	for i := range axes {
		axes[i] = i
	}
	y, err := resize(c, x, sp, axes, scales, nil)
	if err != nil {
		return err
	}
	return c.set(0, y)
}
