package onnx

import (
	"fmt"
	"slices"

	"multigpu/graph"
)

// window holds the attributes of a convolution or pooling op, one entry per
// spatial axis (pads: begins then ends).
type window struct {
	kernel, strides, dilations, pads []int64
}

// readWindow reads kernel_shape, strides, dilations, pads and auto_pad for
// an op over x with the given spatial kernel (from the weights, or nil
// when kernel_shape must give it).
func readWindow(c *nodeCtx, x *graph.Node, kernel []int64) (window, error) {
	sp := x.Type.Rank() - 2
	var w window
	ks, ok, err := c.ints("kernel_shape")
	if err != nil {
		return w, err
	}
	switch {
	case ok && kernel != nil && !slices.Equal(ks, kernel):
		return w, fmt.Errorf("kernel_shape %v does not match the weights' kernel %v", ks, kernel)
	case ok:
		kernel = ks
	case kernel == nil:
		return w, fmt.Errorf("missing attribute kernel_shape")
	}
	if len(kernel) != sp {
		return w, fmt.Errorf("kernel_shape %v has %d entries, expected %d for input %s", kernel, len(kernel), sp, x.Type)
	}
	w.kernel = kernel
	ones := slices.Repeat([]int64{1}, sp)
	get := func(name string, def []int64, n int) ([]int64, error) {
		v, ok, err := c.ints(name)
		if err != nil || !ok {
			return def, err
		}
		if len(v) != n {
			return nil, fmt.Errorf("attribute %s %v has %d entries, expected %d", name, v, len(v), n)
		}
		return v, nil
	}
	if w.strides, err = get("strides", ones, sp); err != nil {
		return w, err
	}
	if w.dilations, err = get("dilations", ones, sp); err != nil {
		return w, err
	}
	if w.pads, err = get("pads", make([]int64, 2*sp), 2*sp); err != nil {
		return w, err
	}
	for i := range sp {
		if w.kernel[i] < 1 || w.strides[i] < 1 || w.dilations[i] < 1 {
			return w, fmt.Errorf("expected positive kernel_shape, strides and dilations, found %v, %v, %v", w.kernel, w.strides, w.dilations)
		}
	}
	for _, p := range w.pads {
		if p < 0 {
			return w, fmt.Errorf("expected non-negative pads, found %v", w.pads)
		}
	}
	autoPad, err := c.str("auto_pad", "NOTSET")
	if err != nil {
		return w, err
	}
	switch autoPad {
	case "NOTSET", "":
	case "VALID", "SAME_UPPER", "SAME_LOWER":
		if c.has("pads") {
			return w, fmt.Errorf("auto_pad %s and pads are both given", autoPad)
		}
		if autoPad == "VALID" {
			break
		}
		for i := range sp {
			in, ok := x.Type.Shape[2+i].Value()
			if !ok || x.Type.Shape[2+i].Sym != "" {
				return w, fmt.Errorf("auto_pad %s needs concrete spatial dimensions, found %s", autoPad, x.Type)
			}
			s, k := w.strides[i], (w.kernel[i]-1)*w.dilations[i]+1
			out := (in + s - 1) / s
			total := max((out-1)*s+k-in, 0)
			small, big := total/2, total-total/2
			if autoPad == "SAME_UPPER" {
				w.pads[i], w.pads[sp+i] = small, big
			} else {
				w.pads[i], w.pads[sp+i] = big, small
			}
		}
	default:
		return w, fmt.Errorf("unsupported auto_pad %q (expected NOTSET, VALID, SAME_UPPER or SAME_LOWER)", autoPad)
	}
	return w, nil
}

// lift2D returns the window on 2-D, with a leading axis of size 1 added
// for a 1-D op.
func (w window) lift2D() window {
	if len(w.kernel) == 2 {
		return w
	}
	return window{
		kernel:    []int64{1, w.kernel[0]},
		strides:   []int64{1, w.strides[0]},
		dilations: []int64{1, w.dilations[0]},
		pads:      []int64{0, w.pads[0], 0, w.pads[1]},
	}
}

// padAttr spells pads (begins, then ends) as the IR's pad: [h, w] when
// symmetric, else [top, left, bottom, right], which is ONNX's order.
func padAttr(pads []int64) graph.AttrValue {
	if pads[0] == pads[2] && pads[1] == pads[3] {
		return graph.Ints(pads[0], pads[1])
	}
	return graph.Ints(pads...)
}

// liftInput reshapes a 1-D op's input [N,C,L] (or a 1-D convolution's
// weights [O,I,K]) to [N,C,1,L]; 2-D inputs are returned as they are.
func liftInput(c *nodeCtx, x *graph.Node) (*graph.Node, error) {
	if x.Type.Rank() == 4 {
		return x, nil
	}
	s := x.Type.Shape
	return c.reshape(x, []graph.Dim{s[0], s[1], graph.Const(1), s[2]})
}

// lowerOutput undoes liftInput on a result [N,C,1,L].
func lowerOutput(c *nodeCtx, y *graph.Node, rank int) (*graph.Node, error) {
	if rank == 4 {
		return y, nil
	}
	s := y.Type.Shape
	return c.reshape(y, []graph.Dim{s[0], s[1], s[3]})
}

func checkSpatial(x *graph.Node, what string) error {
	if r := x.Type.Rank(); r != 3 && r != 4 {
		return fmt.Errorf("only 1-D and 2-D %s (inputs of rank 3 or 4) are supported, found %s", what, x.Type)
	}
	return nil
}

// convOperands reads a convolution's input x and weights w, both of rank
// 3 (1-D) or 4 (2-D), and the weights' concrete kernel; what names the
// op in the error for another rank.
func convOperands(c *nodeCtx, what string) (x, w *graph.Node, kernel []int64, err error) {
	if x, err = c.in(0); err != nil {
		return nil, nil, nil, err
	}
	if w, err = c.in(1); err != nil {
		return nil, nil, nil, err
	}
	if err := checkSpatial(x, what); err != nil {
		return nil, nil, nil, err
	}
	if r := x.Type.Rank(); w.Type.Rank() != r {
		return nil, nil, nil, fmt.Errorf("expected weights of rank %d, found %s", r, w.Type)
	}
	kernel, ok := concrete(w.Type.Shape[2:])
	if !ok {
		return nil, nil, nil, fmt.Errorf("expected concrete weights, found %s", w.Type)
	}
	return x, w, kernel, nil
}

// convertConv maps Conv to conv2d, 1-D convolutions through a reshape to
// height 1.
func convertConv(c *nodeCtx) error {
	x, w, kernel, err := convOperands(c, "convolutions")
	if err != nil {
		return err
	}
	r := x.Type.Rank()
	win, err := readWindow(c, x, kernel)
	if err != nil {
		return err
	}
	group, err := c.int("group", 1)
	if err != nil {
		return err
	}
	args := []*graph.Node{x, w}
	if c.hasIn(2) {
		b, err := c.in(2)
		if err != nil {
			return err
		}
		args = append(args, b)
	}
	if args[0], err = liftInput(c, x); err != nil {
		return err
	}
	if args[1], err = liftInput(c, w); err != nil {
		return err
	}
	win = win.lift2D()
	y, err := c.op("conv2d", args, graph.Attrs{
		{Name: "stride", Value: graph.Ints(win.strides...)},
		{Name: "pad", Value: padAttr(win.pads)},
		{Name: "dilation", Value: graph.Ints(win.dilations...)},
		{Name: "groups", Value: graph.Int(group)},
	})
	if err != nil {
		return err
	}
	if y, err = lowerOutput(c, y, r); err != nil {
		return err
	}
	return c.set(0, y)
}

// pool maps MaxPool and AveragePool to maxpool2d and avgpool2d, 1-D pools
// through a reshape to height 1. An average that counts the padding
// (count_include_pad=1) with non-zero pads is a depthwise convolution with
// a kernel of ones, divided by the kernel's size.
func pool(op string) func(c *nodeCtx) error {
	return func(c *nodeCtx) error {
		x, err := c.in(0)
		if err != nil {
			return err
		}
		if err := checkSpatial(x, "pools"); err != nil {
			return err
		}
		r := x.Type.Rank()
		win, err := readWindow(c, x, nil)
		if err != nil {
			return err
		}
		if op == "maxpool2d" {
			c.maxOutputs(1, "the Indices output of MaxPool")
			if _, err := c.int("storage_order", 0); err != nil {
				return err
			}
		}
		for _, d := range win.dilations {
			if d != 1 {
				return fmt.Errorf("dilations %v are not supported (only 1)", win.dilations)
			}
		}
		ceil, err := c.flag("ceil_mode", false)
		if err != nil {
			return err
		}
		includePad, err := c.flag("count_include_pad", false)
		if err != nil {
			return err
		}
		if ceil {
			if err := ceilPads(x, &win, op == "avgpool2d" && includePad); err != nil {
				return err
			}
		}
		lx, err := liftInput(c, x)
		if err != nil {
			return err
		}
		win = win.lift2D()
		var y *graph.Node
		if op == "avgpool2d" && includePad && slices.ContainsFunc(win.pads, func(p int64) bool { return p != 0 }) {
			y, err = avgIncludePad(c, lx, win)
		} else {
			y, err = c.op1(op, lx, graph.Attrs{
				{Name: "kernel", Value: graph.Ints(win.kernel...)},
				{Name: "stride", Value: graph.Ints(win.strides...)},
				{Name: "pad", Value: padAttr(win.pads)},
			})
		}
		if err != nil {
			return err
		}
		if y, err = lowerOutput(c, y, r); err != nil {
			return err
		}
		return c.set(0, y)
	}
}

// ceilPads makes a floor-mode window compute what ceil_mode=1 asks for:
// output sizes rounded up (less a last window that would start in the end
// padding), got by adding padding at the end, which max and an average that
// excludes padding both ignore. An average that counts padding would count
// it: refused where it changes the size.
func ceilPads(x *graph.Node, win *window, countPad bool) error {
	sp := len(win.kernel)
	for i := range sp {
		in, ok := x.Type.Shape[2+i].Value()
		if !ok || x.Type.Shape[2+i].Sym != "" {
			return fmt.Errorf("ceil_mode=1 needs concrete spatial dimensions, found %s", x.Type)
		}
		k, s := (win.kernel[i]-1)*win.dilations[i]+1, win.strides[i]
		pb, pe := win.pads[i], win.pads[sp+i]
		span := in + pb + pe - k
		if span < 0 {
			continue // the op's shape rule reports it
		}
		floor := span/s + 1
		ceil := (span+s-1)/s + 1
		if (ceil-1)*s >= in+pb {
			ceil--
		}
		if ceil <= floor {
			continue
		}
		if countPad {
			return fmt.Errorf("ceil_mode=1 with count_include_pad=1 is not supported where it changes the output size (axis %d)", 2+i)
		}
		win.pads[sp+i] += (ceil-1)*s + k - (in + pb + pe)
	}
	return nil
}

// avgIncludePad computes an average pool that counts padded zeros: a
// depthwise convolution of x[N,C,H,W] with ones[C,1,KH,KW], divided by
// KH*KW.
func avgIncludePad(c *nodeCtx, x *graph.Node, win window) (*graph.Node, error) {
	ch, ok := x.Type.Shape[1].Value()
	if !ok || x.Type.Shape[1].Sym != "" {
		return nil, fmt.Errorf("expected concrete channels, found %s", x.Type)
	}
	kh, kw := win.kernel[0], win.kernel[1]
	if !fits(ch, kh, kw) {
		return nil, fmt.Errorf("kernel too large")
	}
	if !x.Type.DType.IsFloat() {
		return nil, fmt.Errorf("expected a floating-point input, found %s", x.Type)
	}
	ones := onesTensor(x.Type.DType, []int{int(ch), 1, int(kh), int(kw)})
	w, err := c.im.g.Param(c.tmp("ones"), denseType(ones))
	if err != nil {
		return nil, err
	}
	c.im.weights[w.Name] = ones
	sum, err := c.op("conv2d", []*graph.Node{x, w}, graph.Attrs{
		{Name: "stride", Value: graph.Ints(win.strides...)},
		{Name: "pad", Value: padAttr(win.pads)},
		{Name: "groups", Value: graph.Int(ch)},
	})
	if err != nil {
		return nil, err
	}
	k, err := c.scalar("count", x.Type.DType, float64(kh*kw))
	if err != nil {
		return nil, err
	}
	return c.op("div", []*graph.Node{sum, k}, nil)
}

// globalPool maps GlobalAveragePool and GlobalMaxPool to a reduction over
// the spatial axes that keeps them.
func globalPool(op string) *opDef {
	return &opDef{convert: func(c *nodeCtx) error {
		x, err := c.in(0)
		if err != nil {
			return err
		}
		r := x.Type.Rank()
		if r < 3 {
			return fmt.Errorf("expected an input [N,C,spatial...] of rank 3 or more, found %s", x.Type)
		}
		var axes []int64
		for i := 2; i < r; i++ {
			axes = append(axes, int64(i))
		}
		y, err := c.op1(op, x, graph.Attrs{{Name: "axes", Value: graph.Ints(axes...)}, {Name: "keepdims", Value: graph.BoolAttr(true)}})
		if err != nil {
			return err
		}
		return c.set(0, y)
	}}
}

// convertBatchNorm maps BatchNormalization in inference mode to batchnorm.
func convertBatchNorm(c *nodeCtx) error {
	if c.opset() < 7 {
		test, err := c.flag("is_test", false)
		if err != nil {
			return err
		}
		if !test {
			return fmt.Errorf("training mode (is_test=0) is not supported; export the model in inference mode")
		}
	} else if c.has("is_test") {
		return fmt.Errorf("attribute is_test was removed in opset 7")
	}
	spatial, err := c.flag("spatial", true)
	if err != nil {
		return err
	}
	if !spatial {
		return fmt.Errorf("spatial=0 (statistics per element rather than per channel) is not supported")
	}
	training, err := c.flag("training_mode", false)
	if err != nil {
		return err
	}
	if training {
		return fmt.Errorf("training_mode=1 is not supported; export the model in inference mode")
	}
	c.maxOutputs(1, "running statistics are only computed in training mode")
	args := make([]*graph.Node, 5)
	for i := range args {
		if args[i], err = c.in(i); err != nil {
			return err
		}
	}
	eps, err := c.float("epsilon", float64(float32(1e-5)))
	if err != nil {
		return err
	}
	y, err := c.op("batchnorm", args, graph.Attrs{{Name: "epsilon", Value: graph.Float(eps)}})
	if err != nil {
		return err
	}
	return c.set(0, y)
}

// floorDiv is a/b rounded toward negative infinity (Python's //, which
// ONNX's formulas use), for b > 0.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// convertConvTranspose maps ConvTranspose (1-D and 2-D) to
// conv2d_grad_input: the gradient of a convolution with respect to its
// input is the transposed convolution. x[N,C,H,W] is the gradient dy of a
// convolution with weights W[C,M/group,KH,KW], read as conv2d's
// w[O=C,M/group,KH,KW], whose input x[N,M,OH,OW] is the result. The
// output size comes from strides, pads, dilations, output_padding, or
// output_shape and auto_pad, by ONNX's formulas (the split of an odd
// total padding follows the opset's spec: opset 11 puts the extra
// element at the end for SAME_UPPER and at the start otherwise, opset 1
// the other way round). Begin pads shift the output; the end pads only
// size it, so the IR's end pad is whatever makes conv2d's shape rule give
// back H. A bias B[M] is added as B reshaped to [M,1,1].
func convertConvTranspose(c *nodeCtx) error {
	x, w, kernel, err := convOperands(c, "transposed convolutions")
	if err != nil {
		return err
	}
	r := x.Type.Rank()
	sp := r - 2
	in, ok := concrete(x.Type.Shape[2:])
	if !ok || slices.ContainsFunc(x.Type.Shape[2:], func(d graph.Dim) bool { return d.Sym != "" }) {
		return fmt.Errorf("expected concrete spatial dimensions, found %s", x.Type)
	}
	if ks, ok, err := c.ints("kernel_shape"); err != nil {
		return err
	} else if ok && !slices.Equal(ks, kernel) {
		return fmt.Errorf("kernel_shape %v does not match the weights' kernel %v", ks, kernel)
	}
	get := func(name string, def int64, n int) ([]int64, bool, error) {
		v, ok, err := c.ints(name)
		if err != nil || !ok {
			return slices.Repeat([]int64{def}, n), false, err
		}
		if len(v) != n {
			return nil, false, fmt.Errorf("attribute %s %v has %d entries, expected %d", name, v, len(v), n)
		}
		return v, true, nil
	}
	strides, _, err := get("strides", 1, sp)
	if err != nil {
		return err
	}
	dils, _, err := get("dilations", 1, sp)
	if err != nil {
		return err
	}
	outPad, _, err := get("output_padding", 0, sp)
	if err != nil {
		return err
	}
	pads, hasPads, err := get("pads", 0, 2*sp)
	if err != nil {
		return err
	}
	outShape, hasShape, err := c.ints("output_shape")
	if err != nil {
		return err
	}
	if hasShape {
		switch len(outShape) {
		case sp:
		case r: // some exporters include N and C
			outShape = outShape[2:]
		default:
			return fmt.Errorf("output_shape %v has %d entries, expected %d", outShape, len(outShape), sp)
		}
	}
	autoPad, err := c.str("auto_pad", "NOTSET")
	if err != nil {
		return err
	}
	switch autoPad {
	case "NOTSET", "", "VALID", "SAME_UPPER", "SAME_LOWER":
	default:
		return fmt.Errorf("unsupported auto_pad %q (expected NOTSET, VALID, SAME_UPPER or SAME_LOWER)", autoPad)
	}
	if hasPads && autoPad != "NOTSET" && autoPad != "" {
		return fmt.Errorf("auto_pad %s and pads are both given", autoPad)
	}
	group, err := c.int("group", 1)
	if err != nil {
		return err
	}
	size := make([]int64, sp)
	begin := make([]int64, sp)
	for i := range sp {
		s, d, k, op := strides[i], dils[i], kernel[i], outPad[i]
		if s < 1 || d < 1 || k < 1 {
			return fmt.Errorf("expected positive strides, dilations and kernel, found %v, %v, %v", strides, dils, kernel)
		}
		if op < 0 || op >= max(s, d) {
			return fmt.Errorf("output_padding %v: expected values in [0, max(stride, dilation))", outPad)
		}
		if !fits(in[i], s) || !fits(k, d) {
			return fmt.Errorf("sizes too large")
		}
		full := s*(in[i]-1) + op + (k-1)*d + 1
		switch {
		case hasShape || autoPad == "SAME_UPPER" || autoPad == "SAME_LOWER":
			out := in[i] * s
			if hasShape {
				out = outShape[i]
			}
			if out < 1 {
				return fmt.Errorf("output_shape %v: expected positive sizes", outShape)
			}
			total := full - out
			upper := autoPad == "SAME_UPPER"
			if c.opset() < 11 {
				upper = !upper
			}
			if upper {
				begin[i] = floorDiv(total, 2)
			} else {
				begin[i] = total - floorDiv(total, 2)
			}
			size[i] = out
		case autoPad == "VALID":
			size[i] = full
		default:
			if pads[i] < 0 || pads[sp+i] < 0 {
				return fmt.Errorf("expected non-negative pads, found %v", pads)
			}
			begin[i] = pads[i]
			size[i] = full - pads[i] - pads[sp+i]
		}
		if begin[i] < 0 {
			return fmt.Errorf("the padding of axis %d starts at %d: negative begin pads (output_shape larger than the transposed convolution makes) are not supported", 2+i, begin[i])
		}
		if size[i] < 1 {
			return fmt.Errorf("the output of axis %d has size %d, expected a positive size", 2+i, size[i])
		}
	}
	// The end pad that makes conv2d over [size] give back in.
	end := make([]int64, sp)
	for i := range sp {
		keff := (kernel[i]-1)*dils[i] + 1
		end[i] = max(0, strides[i]*(in[i]-1)+keff-size[i]-begin[i])
		if span := size[i] + begin[i] + end[i] - keff; span < 0 || span/strides[i]+1 != in[i] {
			return fmt.Errorf("output size %d of axis %d is beyond what the transposed convolution covers", size[i], 2+i)
		}
	}
	win := window{kernel: kernel, strides: strides, dilations: dils, pads: append(slices.Clone(begin), end...)}.lift2D()
	hw := size
	if sp == 1 {
		hw = []int64{1, size[0]}
	}
	lx, err := liftInput(c, x)
	if err != nil {
		return err
	}
	lw, err := liftInput(c, w)
	if err != nil {
		return err
	}
	y, err := c.op("conv2d_grad_input", []*graph.Node{lx, lw}, graph.Attrs{
		{Name: "stride", Value: graph.Ints(win.strides...)},
		{Name: "pad", Value: padAttr(win.pads)},
		{Name: "dilation", Value: graph.Ints(win.dilations...)},
		{Name: "groups", Value: graph.Int(group)},
		{Name: "size", Value: graph.Ints(hw...)},
	})
	if err != nil {
		return err
	}
	if c.hasIn(2) {
		b, err := c.in(2)
		if err != nil {
			return err
		}
		if b.Type.Rank() != 1 || !b.Type.Shape[0].Equal(y.Type.Shape[1]) {
			return fmt.Errorf("expected a bias of %s channels, found %s", y.Type.Shape[1], b.Type)
		}
		if b, err = c.reshape(b, []graph.Dim{b.Type.Shape[0], graph.Const(1), graph.Const(1)}); err != nil {
			return err
		}
		if y, err = c.op("add", []*graph.Node{y, b}, nil); err != nil {
			return err
		}
	}
	if y, err = lowerOutput(c, y, r); err != nil {
		return err
	}
	return c.set(0, y)
}
