package onnx

import (
	"fmt"
	"math"
	"slices"

	"gorgonia.org/tensor"

	"multigpu/graph"
)

// opDef is how the importer maps one ONNX op type.
type opDef struct {
	// attrs lists the attributes the converter reads or may ignore
	// (legacy attributes without effect at inference); any other is an
	// error.
	attrs   []string
	convert func(c *nodeCtx) error
}

func (d *opDef) knows(name string) bool { return slices.Contains(d.attrs, name) }

// legacy is the attribute of opsets 1 to 5 that said which inputs an op
// could overwrite: it does not change what the op computes.
const legacy = "consumed_inputs"

// opTable maps ONNX op types (default domain) to their converters. It is
// filled once and never changed.
var opTable = map[string]*opDef{
	"Abs":     unary("abs"),
	"Exp":     unary("exp"),
	"Log":     unary("log"),
	"Neg":     unary("neg"),
	"Relu":    unary("relu"),
	"Sigmoid": unary("sigmoid"),
	"Sqrt":    unary("sqrt"),
	"Tanh":    unary("tanh"),

	"Add": binary("add"),
	"Sub": binary("sub"),
	"Mul": binary("mul"),
	"Div": binary("div"),

	"Max":  variadic("maximum", false),
	"Min":  variadic("minimum", false),
	"Sum":  variadic("add", false),
	"Mean": variadic("add", true),

	"LeakyRelu":   {attrs: []string{"alpha", legacy}, convert: convertLeakyRelu},
	"Elu":         {attrs: []string{"alpha", legacy}, convert: convertElu},
	"Selu":        {attrs: []string{"alpha", "gamma", legacy}, convert: convertSelu},
	"PRelu":       {attrs: []string{legacy}, convert: convertPRelu},
	"HardSigmoid": {attrs: []string{"alpha", "beta", legacy}, convert: convertHardSigmoid},
	"Softplus":    {convert: convertSoftplus},
	"Softsign":    {convert: convertSoftsign},
	"Reciprocal":  {attrs: []string{legacy}, convert: convertReciprocal},
	"Clip":        {attrs: []string{"min", "max", legacy}, convert: convertClip},

	"Softmax":    {attrs: []string{"axis"}, convert: softmax("softmax")},
	"LogSoftmax": {attrs: []string{"axis"}, convert: softmax("log_softmax")},

	"MatMul": {convert: convertMatMul},
	"Gemm":   {attrs: []string{"alpha", "beta", "transA", "transB", "broadcast"}, convert: convertGemm},

	"Conv":              {attrs: []string{"auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"}, convert: convertConv},
	"MaxPool":           {attrs: []string{"auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads", "storage_order", "strides"}, convert: pool("maxpool2d")},
	"AveragePool":       {attrs: []string{"auto_pad", "ceil_mode", "count_include_pad", "dilations", "kernel_shape", "pads", "strides"}, convert: pool("avgpool2d")},
	"GlobalAveragePool": globalPool("mean"),
	"GlobalMaxPool":     globalPool("max"),
	"BatchNormalization": {attrs: []string{"epsilon", "momentum", "spatial", "is_test", "training_mode", legacy},
		convert: convertBatchNorm},

	"Flatten":   {attrs: []string{"axis"}, convert: convertFlatten},
	"Reshape":   {attrs: []string{"shape", "allowzero", legacy}, convert: convertReshape},
	"Squeeze":   {attrs: []string{"axes"}, convert: convertSqueeze},
	"Unsqueeze": {attrs: []string{"axes"}, convert: convertUnsqueeze},
	"Transpose": {attrs: []string{"perm"}, convert: convertTranspose},
	"Concat":    {attrs: []string{"axis"}, convert: convertConcat},

	"ReduceSum":       reduce("sum", "", 13),
	"ReduceMean":      reduce("mean", "", 18),
	"ReduceMax":       reduce("max", "", 18),
	"ReduceMin":       reduce("min", "", 18),
	"ReduceSumSquare": reduce("sum", "square", 18),
	"ReduceL1":        reduce("sum", "abs", 18),
	"ReduceL2":        reduce("sum", "l2", 18),
	"ReduceLogSum":    reduce("sum", "log", 18),
	"ReduceLogSumExp": reduce("sum", "logsumexp", 18),

	"Identity": {convert: func(c *nodeCtx) error { return c.alias(0, 0) }},
	"Dropout":  {attrs: []string{"ratio", "is_test", "seed", legacy}, convert: convertDropout},
	"Constant": {attrs: []string{"value", "value_float", "value_floats", "value_int", "value_ints", "value_string", "value_strings", "sparse_value"},
		convert: convertConstant},
	"Shape": {attrs: []string{"start", "end"}, convert: convertShape},

	"Split":    {attrs: []string{"axis", "split", "num_outputs"}, convert: convertSplit},
	"Slice":    {attrs: []string{"starts", "ends", "axes"}, convert: convertSlice},
	"Pad":      {attrs: []string{"mode", "pads", "paddings", "value"}, convert: convertPad},
	"Cast":     {attrs: []string{"to", "saturate"}, convert: convertCast},
	"CastLike": {attrs: []string{"saturate"}, convert: convertCast},
}

func unary(op string) *opDef {
	return &opDef{attrs: []string{legacy}, convert: func(c *nodeCtx) error {
		x, err := c.in(0)
		if err != nil {
			return err
		}
		y, err := c.op1(op, x, nil)
		if err != nil {
			return err
		}
		return c.set(0, y)
	}}
}

func binary(op string) *opDef {
	return &opDef{attrs: []string{"broadcast", "axis", legacy}, convert: func(c *nodeCtx) error {
		a, err := c.in(0)
		if err != nil {
			return err
		}
		b, err := c.in(1)
		if err != nil {
			return err
		}
		if op == "div" && !a.Type.DType.IsFloat() {
			return fmt.Errorf("integer division is not supported (found %s)", a.Type)
		}
		if b, err = legacyBroadcast(c, a, b); err != nil {
			return err
		}
		y, err := c.op(op, []*graph.Node{a, b}, nil)
		if err != nil {
			return err
		}
		return c.set(0, y)
	}}
}

// legacyBroadcast applies the broadcast and axis attributes of opsets
// before 7, where B's shape could line up with A's starting at axis.
func legacyBroadcast(c *nodeCtx, a, b *graph.Node) (*graph.Node, error) {
	bc, err := c.flag("broadcast", false)
	if err != nil {
		return nil, err
	}
	if c.opset() >= 7 {
		if c.has("broadcast") || c.has("axis") {
			return nil, fmt.Errorf("attributes broadcast and axis were removed in opset 7")
		}
		return b, nil
	}
	if !bc {
		as, aok := concrete(a.Type.Shape)
		bs, bok := concrete(b.Type.Shape)
		if aok && bok && !slices.Equal(as, bs) {
			return nil, fmt.Errorf("operands of different shapes (%s, %s) without broadcast=1", a.Type, b.Type)
		}
		return b, nil
	}
	if !c.has("axis") {
		return b, nil // suffix alignment: numpy's rule
	}
	ax, err := c.int("axis", 0)
	if err != nil {
		return nil, err
	}
	r := a.Type.Rank()
	axis, err := normAxis(ax, r, "axis")
	if err != nil {
		return nil, err
	}
	trail := r - axis - b.Type.Rank()
	if trail < 0 {
		return nil, fmt.Errorf("B %s does not fit A %s from axis %d", b.Type, a.Type, axis)
	}
	if trail == 0 {
		return b, nil
	}
	dims := slices.Clone(b.Type.Shape)
	for range trail {
		dims = append(dims, graph.Const(1))
	}
	return c.reshape(b, dims)
}

// variadic chains a binary op over every input; mean divides by the count.
func variadic(op string, mean bool) *opDef {
	return &opDef{attrs: []string{legacy}, convert: func(c *nodeCtx) error {
		if len(c.n.inputs) == 0 {
			return fmt.Errorf("expected at least one input")
		}
		xs, err := c.ins()
		if err != nil {
			return err
		}
		acc := xs[0]
		for _, x := range xs[1:] {
			if acc, err = c.op(op, []*graph.Node{acc, x}, nil); err != nil {
				return err
			}
		}
		if mean && len(xs) > 1 {
			if !acc.Type.DType.IsFloat() {
				return fmt.Errorf("the mean of integers is not supported (found %s)", acc.Type)
			}
			k, err := c.scalar("count", acc.Type.DType, float64(len(xs)))
			if err != nil {
				return err
			}
			if acc, err = c.op("div", []*graph.Node{acc, k}, nil); err != nil {
				return err
			}
		}
		return c.set(0, acc)
	}}
}

func convertLeakyRelu(c *nodeCtx) error {
	x, err := c.in(0)
	if err != nil {
		return err
	}
	alpha, err := c.float("alpha", float64(float32(0.01)))
	if err != nil {
		return err
	}
	y, err := c.op1("leaky_relu", x, graph.Attrs{{Name: "alpha", Value: graph.Float(alpha)}})
	if err != nil {
		return err
	}
	return c.set(0, y)
}

// expm1Neg returns alpha*(exp(min(x,0)) - 1), the negative branch of Elu
// and Selu, which is 0 where x >= 0.
func expm1Neg(c *nodeCtx, x *graph.Node, alpha float64) (*graph.Node, error) {
	dt := x.Type.DType
	zero, err := c.scalar("zero", dt, 0)
	if err != nil {
		return nil, err
	}
	one, err := c.scalar("one", dt, 1)
	if err != nil {
		return nil, err
	}
	a, err := c.scalar("alpha", dt, alpha)
	if err != nil {
		return nil, err
	}
	neg, err := c.op("minimum", []*graph.Node{x, zero}, nil)
	if err != nil {
		return nil, err
	}
	e, err := c.op1("exp", neg, nil)
	if err != nil {
		return nil, err
	}
	em1, err := c.op("sub", []*graph.Node{e, one}, nil)
	if err != nil {
		return nil, err
	}
	return c.op("mul", []*graph.Node{em1, a}, nil)
}

// convertElu maps Elu to relu(x) + alpha*(exp(min(x,0)) - 1): x where x > 0
// (the second term is 0), alpha*(exp(x)-1) elsewhere.
func convertElu(c *nodeCtx) error {
	x, err := c.in(0)
	if err != nil {
		return err
	}
	alpha, err := c.float("alpha", 1)
	if err != nil {
		return err
	}
	pos, err := c.op1("relu", x, nil)
	if err != nil {
		return err
	}
	neg, err := expm1Neg(c, x, alpha)
	if err != nil {
		return err
	}
	y, err := c.op("add", []*graph.Node{pos, neg}, nil)
	if err != nil {
		return err
	}
	return c.set(0, y)
}

// convertSelu maps Selu to gamma*(relu(x) + alpha*(exp(min(x,0)) - 1)).
func convertSelu(c *nodeCtx) error {
	x, err := c.in(0)
	if err != nil {
		return err
	}
	alpha, err := c.float("alpha", float64(float32(1.67326319217681884765625)))
	if err != nil {
		return err
	}
	gamma, err := c.float("gamma", float64(float32(1.05070102214813232421875)))
	if err != nil {
		return err
	}
	pos, err := c.op1("relu", x, nil)
	if err != nil {
		return err
	}
	neg, err := expm1Neg(c, x, alpha)
	if err != nil {
		return err
	}
	sum, err := c.op("add", []*graph.Node{pos, neg}, nil)
	if err != nil {
		return err
	}
	g, err := c.scalar("gamma", x.Type.DType, gamma)
	if err != nil {
		return err
	}
	y, err := c.op("mul", []*graph.Node{sum, g}, nil)
	if err != nil {
		return err
	}
	return c.set(0, y)
}

// convertPRelu maps PRelu to relu(x) + slope*min(x, 0), slope broadcast
// against x.
func convertPRelu(c *nodeCtx) error {
	x, err := c.in(0)
	if err != nil {
		return err
	}
	slope, err := c.in(1)
	if err != nil {
		return err
	}
	if c.opset() < 7 && slope.Type.Rank() == 1 && x.Type.Rank() > 2 {
		// Opset 6 and before broadcast a per-channel slope over axis 1.
		dims := slices.Clone(slope.Type.Shape)
		for range x.Type.Rank() - 2 {
			dims = append(dims, graph.Const(1))
		}
		if slope, err = c.reshape(slope, dims); err != nil {
			return err
		}
	}
	zero, err := c.scalar("zero", x.Type.DType, 0)
	if err != nil {
		return err
	}
	pos, err := c.op1("relu", x, nil)
	if err != nil {
		return err
	}
	neg, err := c.op("minimum", []*graph.Node{x, zero}, nil)
	if err != nil {
		return err
	}
	scaled, err := c.op("mul", []*graph.Node{neg, slope}, nil)
	if err != nil {
		return err
	}
	if !scaled.Type.Equal(x.Type) {
		return fmt.Errorf("slope %s does not broadcast to x %s", slope.Type, x.Type)
	}
	y, err := c.op("add", []*graph.Node{pos, scaled}, nil)
	if err != nil {
		return err
	}
	return c.set(0, y)
}

// convertHardSigmoid maps HardSigmoid to max(0, min(1, alpha*x + beta)).
func convertHardSigmoid(c *nodeCtx) error {
	x, err := c.in(0)
	if err != nil {
		return err
	}
	alpha, err := c.float("alpha", float64(float32(0.2)))
	if err != nil {
		return err
	}
	beta, err := c.float("beta", 0.5)
	if err != nil {
		return err
	}
	dt := x.Type.DType
	var ks [4]*graph.Node
	for i, v := range []float64{alpha, beta, 1, 0} {
		if ks[i], err = c.scalar([]string{"alpha", "beta", "one", "zero"}[i], dt, v); err != nil {
			return err
		}
	}
	y := x
	for _, step := range []struct {
		op string
		k  *graph.Node
	}{{"mul", ks[0]}, {"add", ks[1]}, {"minimum", ks[2]}, {"maximum", ks[3]}} {
		if y, err = c.op(step.op, []*graph.Node{y, step.k}, nil); err != nil {
			return err
		}
	}
	return c.set(0, y)
}

// convertSoftplus maps Softplus to log(exp(x) + 1).
func convertSoftplus(c *nodeCtx) error {
	x, err := c.in(0)
	if err != nil {
		return err
	}
	one, err := c.scalar("one", x.Type.DType, 1)
	if err != nil {
		return err
	}
	e, err := c.op1("exp", x, nil)
	if err != nil {
		return err
	}
	s, err := c.op("add", []*graph.Node{e, one}, nil)
	if err != nil {
		return err
	}
	y, err := c.op1("log", s, nil)
	if err != nil {
		return err
	}
	return c.set(0, y)
}

// convertSoftsign maps Softsign to x / (1 + |x|).
func convertSoftsign(c *nodeCtx) error {
	x, err := c.in(0)
	if err != nil {
		return err
	}
	one, err := c.scalar("one", x.Type.DType, 1)
	if err != nil {
		return err
	}
	a, err := c.op1("abs", x, nil)
	if err != nil {
		return err
	}
	d, err := c.op("add", []*graph.Node{one, a}, nil)
	if err != nil {
		return err
	}
	y, err := c.op("div", []*graph.Node{x, d}, nil)
	if err != nil {
		return err
	}
	return c.set(0, y)
}

// convertReciprocal maps Reciprocal to 1 / x.
func convertReciprocal(c *nodeCtx) error {
	x, err := c.in(0)
	if err != nil {
		return err
	}
	if !x.Type.DType.IsFloat() {
		return fmt.Errorf("integer division is not supported (found %s)", x.Type)
	}
	one, err := c.scalar("one", x.Type.DType, 1)
	if err != nil {
		return err
	}
	y, err := c.op("div", []*graph.Node{one, x}, nil)
	if err != nil {
		return err
	}
	return c.set(0, y)
}

// convertClip maps Clip to minimum(maximum(x, min), max), the bounds from
// attributes (before opset 11) or optional inputs.
func convertClip(c *nodeCtx) error {
	x, err := c.in(0)
	if err != nil {
		return err
	}
	dt := x.Type.DType
	bound := func(attr string, input int, inf int) (*graph.Node, error) {
		if c.opset() < 11 {
			if c.has(attr) {
				v, err := c.float(attr, 0)
				if err != nil {
					return nil, err
				}
				if math.IsInf(v, inf) {
					return nil, nil
				}
				return c.scalar(attr, dt, v)
			}
			return nil, nil
		}
		if c.has(attr) {
			return nil, fmt.Errorf("attribute %s was replaced by an input in opset 11", attr)
		}
		if !c.hasIn(input) {
			return nil, nil
		}
		v, err := c.lookup(input)
		if err != nil {
			return nil, err
		}
		n, err := c.in(input)
		if err != nil {
			return nil, err
		}
		if n.Type.Rank() != 0 && !(v.data != nil && len(denseFloats(v.data)) == 1) {
			return nil, fmt.Errorf("input %d (%s) must be a scalar, found %s", input, attr, n.Type)
		}
		if n.Type.Rank() != 0 {
			return c.reshape(n, nil)
		}
		return n, nil
	}
	lo, err := bound("min", 1, -1)
	if err != nil {
		return err
	}
	hi, err := bound("max", 2, 1)
	if err != nil {
		return err
	}
	y := x
	if lo != nil {
		if y, err = c.op("maximum", []*graph.Node{y, lo}, nil); err != nil {
			return err
		}
	}
	if hi != nil {
		if y, err = c.op("minimum", []*graph.Node{y, hi}, nil); err != nil {
			return err
		}
	}
	return c.set(0, y)
}

// softmax maps Softmax and LogSoftmax. Before opset 13 they coerce the input
// to 2-D at axis (default 1) and normalize over everything from axis on:
// the importer flattens, normalizes on axis 1 and reshapes back, unless
// the axes after axis are all 1. From opset 13 they normalize along one
// axis (default -1).
func softmax(op string) func(c *nodeCtx) error {
	return func(c *nodeCtx) error {
		x, err := c.in(0)
		if err != nil {
			return err
		}
		r := x.Type.Rank()
		def := int64(-1)
		if c.opset() < 13 {
			def = 1
		}
		a, err := c.int("axis", def)
		if err != nil {
			return err
		}
		ax, err := normAxis(a, r, "axis")
		if err != nil {
			return err
		}
		single := c.opset() >= 13
		if !single {
			single = true
			for _, d := range x.Type.Shape[ax+1:] {
				if v, ok := d.Value(); !ok || v != 1 || d.Sym != "" {
					single = false
				}
			}
		}
		if single {
			y, err := c.op1(op, x, graph.Attrs{{Name: "axis", Value: graph.Int(int64(ax))}})
			if err != nil {
				return err
			}
			return c.set(0, y)
		}
		flat, err := c.op1("flatten", x, graph.Attrs{{Name: "axis", Value: graph.Int(int64(ax))}})
		if err != nil {
			return err
		}
		s, err := c.op1(op, flat, graph.Attrs{{Name: "axis", Value: graph.Int(1)}})
		if err != nil {
			return err
		}
		y, err := c.reshape(s, x.Type.Shape)
		if err != nil {
			return err
		}
		return c.set(0, y)
	}
}

func transpose2(c *nodeCtx, x *graph.Node) (*graph.Node, error) {
	return c.op1("transpose", x, graph.Attrs{{Name: "perm", Value: graph.Ints(1, 0)}})
}

// convertGemm maps Gemm to alpha * (A' B') + beta * C with transposes,
// matmul, mul and add.
func convertGemm(c *nodeCtx) error {
	a, err := c.in(0)
	if err != nil {
		return err
	}
	b, err := c.in(1)
	if err != nil {
		return err
	}
	if a.Type.Rank() != 2 || b.Type.Rank() != 2 {
		return fmt.Errorf("expected 2-D A and B, found %s and %s", a.Type, b.Type)
	}
	alpha, err := c.float("alpha", 1)
	if err != nil {
		return err
	}
	beta, err := c.float("beta", 1)
	if err != nil {
		return err
	}
	ta, err := c.flag("transA", false)
	if err != nil {
		return err
	}
	tb, err := c.flag("transB", false)
	if err != nil {
		return err
	}
	if _, err := c.flag("broadcast", false); err != nil {
		return err
	}
	if ta {
		if a, err = transpose2(c, a); err != nil {
			return err
		}
	}
	if tb {
		if b, err = transpose2(c, b); err != nil {
			return err
		}
	}
	y, err := c.op("matmul", []*graph.Node{a, b}, nil)
	if err != nil {
		return err
	}
	dt := y.Type.DType
	if alpha != 1 {
		k, err := c.scalar("alpha", dt, alpha)
		if err != nil {
			return err
		}
		if y, err = c.op("mul", []*graph.Node{y, k}, nil); err != nil {
			return err
		}
	}
	if c.hasIn(2) && beta != 0 {
		cc, err := c.in(2)
		if err != nil {
			return err
		}
		if beta != 1 {
			k, err := c.scalar("beta", dt, beta)
			if err != nil {
				return err
			}
			if cc, err = c.op("mul", []*graph.Node{cc, k}, nil); err != nil {
				return err
			}
		}
		sum, err := c.op("add", []*graph.Node{y, cc}, nil)
		if err != nil {
			return err
		}
		if !sum.Type.Equal(y.Type) {
			return fmt.Errorf("C %s does not broadcast to A*B %s", cc.Type, y.Type)
		}
		y = sum
	} else if !c.hasIn(2) && c.opset() < 11 {
		return fmt.Errorf("missing input 2 (C), required before opset 11")
	}
	return c.set(0, y)
}

// convertMatMul maps MatMul (numpy's matmul) to the IR's matmul, which takes
// a[...,M,K] with b[K,P] or b[...,K,P] of a's rank: 1-D operands are
// reshaped to matrices and the result back, leading 1s of an operand are
// dropped, and a matrix times a stack of matrices is computed through
// transposes.
func convertMatMul(c *nodeCtx) error {
	a, err := c.in(0)
	if err != nil {
		return err
	}
	b, err := c.in(1)
	if err != nil {
		return err
	}
	if a.Type.Rank() == 0 || b.Type.Rank() == 0 {
		return fmt.Errorf("expected operands of rank 1 or more, found %s and %s", a.Type, b.Type)
	}
	if a.Type.Rank() == 1 && b.Type.Rank() == 1 {
		return fmt.Errorf("the dot product of two vectors is not supported")
	}
	aVec, bVec := a.Type.Rank() == 1, b.Type.Rank() == 1
	if aVec {
		if a, err = c.reshape(a, []graph.Dim{graph.Const(1), a.Type.Shape[0]}); err != nil {
			return err
		}
	}
	if bVec {
		if b, err = c.reshape(b, []graph.Dim{b.Type.Shape[0], graph.Const(1)}); err != nil {
			return err
		}
	}
	as, bs := a.Type.Shape, b.Type.Shape
	ra, rb := len(as), len(bs)
	aLead, bLead := as[:ra-2], bs[:rb-2]
	mp := []graph.Dim{as[ra-2], bs[rb-1]}
	var lead []graph.Dim // numpy's broadcast of the leading axes
	var y *graph.Node
	switch {
	case rb == 2 || ra == rb && sameDims(aLead, bLead):
		lead = aLead
		y, err = c.op("matmul", []*graph.Node{a, b}, nil)
	case allOnes(bLead):
		lead = aLead
		if rb > ra {
			lead = append(slices.Repeat([]graph.Dim{graph.Const(1)}, rb-ra), aLead...)
		}
		var b2 *graph.Node
		if b2, err = c.reshape(b, bs[rb-2:]); err == nil {
			y, err = c.op("matmul", []*graph.Node{a, b2}, nil)
		}
	case ra == 2 || allOnes(aLead) && ra <= rb:
		lead = bLead
		a2 := a
		if ra > 2 {
			a2, err = c.reshape(a, as[ra-2:])
		}
		if err == nil {
			y, err = matmulBatchedRight(c, a2, b)
		}
	default:
		return fmt.Errorf("matmul of %s and %s: broadcasting between stacks of matrices is not supported", a.Type, b.Type)
	}
	if err != nil {
		return err
	}
	out := slices.Clone(lead)
	if !aVec {
		out = append(out, mp[0])
	}
	if !bVec {
		out = append(out, mp[1])
	}
	if !sameDims(out, y.Type.Shape) {
		if y, err = c.reshape(y, out); err != nil {
			return err
		}
	}
	return c.set(0, y)
}

func allOnes(dims []graph.Dim) bool {
	for _, d := range dims {
		if d.Sym != "" || d.Size != 1 {
			return false
		}
	}
	return true
}

func sameDims(a, b []graph.Dim) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].Equal(b[i]) {
			return false
		}
	}
	return true
}

// matmulBatchedRight computes a[M,K] @ b[B1..Bn,K,P] as
// transpose(reshape(a @ reshape(transpose(b, K first), [K, B*P]))).
func matmulBatchedRight(c *nodeCtx, a, b *graph.Node) (*graph.Node, error) {
	rb := b.Type.Rank()
	lead := b.Type.Shape[:rb-2]
	perm := []int64{int64(rb - 2)}
	for i := range rb - 2 {
		perm = append(perm, int64(i))
	}
	perm = append(perm, int64(rb-1))
	bt, err := c.op1("transpose", b, graph.Attrs{{Name: "perm", Value: graph.Ints(perm...)}})
	if err != nil {
		return nil, err
	}
	// [K, B..., P] -> [K, -1]
	b2, err := c.op1("flatten", bt, graph.Attrs{{Name: "axis", Value: graph.Int(1)}})
	if err != nil {
		return nil, err
	}
	prod, err := c.op("matmul", []*graph.Node{a, b2}, nil)
	if err != nil {
		return nil, err
	}
	// [M, B*P] -> [M, B..., P] -> [B..., M, P]
	dims := append([]graph.Dim{a.Type.Shape[0]}, lead...)
	dims = append(dims, b.Type.Shape[rb-1])
	unf, err := c.reshape(prod, dims)
	if err != nil {
		return nil, err
	}
	back := make([]int64, 0, rb)
	for i := range rb - 2 {
		back = append(back, int64(i+1))
	}
	back = append(back, 0, int64(rb-1))
	return c.op1("transpose", unf, graph.Attrs{{Name: "perm", Value: graph.Ints(back...)}})
}

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

// liftInput reshapes a 1-D op's input [N,C,L] to [N,C,1,L]; 2-D inputs
// are returned as they are.
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

// convertConv maps Conv to conv2d, 1-D convolutions through a reshape to
// height 1.
func convertConv(c *nodeCtx) error {
	x, err := c.in(0)
	if err != nil {
		return err
	}
	w, err := c.in(1)
	if err != nil {
		return err
	}
	if err := checkSpatial(x, "convolutions"); err != nil {
		return err
	}
	r := x.Type.Rank()
	if w.Type.Rank() != r {
		return fmt.Errorf("expected weights of rank %d, found %s", r, w.Type)
	}
	kernel, ok := concrete(w.Type.Shape[2:])
	if !ok {
		return fmt.Errorf("expected concrete weights, found %s", w.Type)
	}
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
	if r == 3 {
		if args[0], err = liftInput(c, x); err != nil {
			return err
		}
		ws := w.Type.Shape
		if args[1], err = c.reshape(w, []graph.Dim{ws[0], ws[1], graph.Const(1), ws[2]}); err != nil {
			return err
		}
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
	if ch*kh*kw > 1<<26 {
		return nil, fmt.Errorf("kernel too large")
	}
	var ones *tensor.Dense
	shape := []int{int(ch), 1, int(kh), int(kw)}
	switch x.Type.DType {
	case graph.F32:
		ones = tensor.New(tensor.WithShape(shape...), tensor.WithBacking(slices.Repeat([]float32{1}, int(ch*kh*kw))))
	case graph.F64:
		ones = tensor.New(tensor.WithShape(shape...), tensor.WithBacking(slices.Repeat([]float64{1}, int(ch*kh*kw))))
	default:
		return nil, fmt.Errorf("expected a floating-point input, found %s", x.Type)
	}
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
	a, err := c.int("axis", def)
	if err != nil {
		return err
	}
	ax, err := normAxis(a, xs[0].Type.Rank(), "axis")
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

// reduce maps the Reduce ops: a reduction op, with a transformation before
// (square, abs, exp) or after (sqrt, log) for the composite ones. From
// opset inputFrom the axes are an optional input, before it an attribute.
func reduce(op, extra string, inputFrom int64) *opDef {
	return &opDef{attrs: []string{"axes", "keepdims", "noop_with_empty_axes"}, convert: func(c *nodeCtx) error {
		x, err := c.in(0)
		if err != nil {
			return err
		}
		r := x.Type.Rank()
		var axes []int64
		given := false
		if c.opset() >= inputFrom {
			if c.has("axes") {
				return fmt.Errorf("attribute axes was replaced by an input in opset %d", inputFrom)
			}
			if c.hasIn(1) {
				if axes, err = c.constInts(1, "axes"); err != nil {
					return err
				}
				given = true
			}
		} else {
			if c.hasIn(1) {
				return fmt.Errorf("axes is an attribute before opset %d, found an input", inputFrom)
			}
			if axes, given, err = c.ints("axes"); err != nil {
				return err
			}
		}
		keep, err := c.flag("keepdims", true)
		if err != nil {
			return err
		}
		noop, err := c.flag("noop_with_empty_axes", false)
		if err != nil {
			return err
		}
		if c.has("noop_with_empty_axes") && c.opset() < inputFrom {
			return fmt.Errorf("attribute noop_with_empty_axes is only defined from opset %d", inputFrom)
		}
		if len(axes) == 0 && noop && given || len(axes) == 0 && noop && c.opset() >= inputFrom {
			// No axes and noop_with_empty_axes: the input unchanged
			// (the composite reductions still transform it).
			return reduceNoop(c, x, extra)
		}
		_ = given
		attrs := graph.Attrs{{Name: "keepdims", Value: graph.BoolAttr(keep)}}
		if len(axes) > 0 {
			norm, err := normAxes(axes, r, "axis")
			if err != nil {
				return err
			}
			attrs = append(attrs, graph.Attr{Name: "axes", Value: graph.Ints(norm...)})
		}
		if op == "mean" && !x.Type.DType.IsFloat() {
			return fmt.Errorf("the mean of integers is not supported (found %s)", x.Type)
		}
		in := x
		switch extra {
		case "square", "l2":
			in, err = c.op("mul", []*graph.Node{x, x}, nil)
		case "abs":
			in, err = c.op1("abs", x, nil)
		case "logsumexp":
			in, err = c.op1("exp", x, nil)
		}
		if err != nil {
			return err
		}
		y, err := c.op1(op, in, attrs)
		if err != nil {
			return err
		}
		switch extra {
		case "l2":
			y, err = c.op1("sqrt", y, nil)
		case "log", "logsumexp":
			y, err = c.op1("log", y, nil)
		}
		if err != nil {
			return err
		}
		return c.set(0, y)
	}}
}

// reduceNoop is a reduction over no axes: the input, transformed for the
// composite reductions as a one-element reduction would (|x|, x*x, ...).
func reduceNoop(c *nodeCtx, x *graph.Node, extra string) error {
	var y *graph.Node
	var err error
	switch extra {
	case "":
		return c.set(0, x)
	case "square":
		y, err = c.op("mul", []*graph.Node{x, x}, nil)
	case "abs", "l2":
		y, err = c.op1("abs", x, nil)
	case "log":
		y, err = c.op1("log", x, nil)
	case "logsumexp":
		return c.set(0, x)
	}
	if err != nil {
		return err
	}
	return c.set(0, y)
}

// convertDropout maps Dropout at inference to the identity. Its mask
// output, and training mode, are refused.
func convertDropout(c *nodeCtx) error {
	if c.opset() < 7 {
		test, err := c.flag("is_test", false)
		if err != nil {
			return err
		}
		_ = test // before opset 7, Dropout is the identity when the graph runs for inference either way
	} else if c.has("is_test") {
		return fmt.Errorf("attribute is_test was removed in opset 7")
	}
	if c.hasIn(2) {
		d, err := c.constIn(2, "training_mode")
		if err != nil {
			return err
		}
		if v, err := denseScalar(d); err != nil || v != 0 {
			return fmt.Errorf("training_mode must be false for inference")
		}
	}
	c.maxOutputs(1, "the mask output of Dropout")
	return c.alias(0, 0)
}

// convertConstant binds the output to the constant's data; it becomes a
// const or a param only where an op reads it as a value.
func convertConstant(c *nodeCtx) error {
	if len(c.n.attrs) != 1 {
		return fmt.Errorf("expected exactly one value attribute, found %d attributes", len(c.n.attrs))
	}
	a := c.n.attrs[0]
	var d *tensor.Dense
	switch a.name {
	case "value":
		if a.typ != attrTypeTensor || a.t == nil {
			return fmt.Errorf("attribute value: expected TENSOR, found %s", attrTypeName(a.typ))
		}
		t, err := readTensor(a.t)
		if err != nil {
			return fmt.Errorf("attribute value: %v", err)
		}
		d = t
	case "value_float":
		v, err := c.float(a.name, 0)
		if err != nil {
			return err
		}
		d = tensor.New(tensor.FromScalar(float32(v)))
	case "value_floats":
		a, err := c.attr(a.name, attrTypeFloats)
		if err != nil {
			return err
		}
		if len(a.floats) == 0 {
			return fmt.Errorf("empty value_floats: tensors with no elements are not supported")
		}
		d = tensor.New(tensor.WithShape(len(a.floats)), tensor.WithBacking(slices.Clone(a.floats)))
	case "value_int":
		v, err := c.int(a.name, 0)
		if err != nil {
			return err
		}
		d = tensor.New(tensor.FromScalar(v))
	case "value_ints":
		vs, _, err := c.ints(a.name)
		if err != nil {
			return err
		}
		if len(vs) == 0 {
			return fmt.Errorf("empty value_ints: tensors with no elements are not supported")
		}
		d = tensor.New(tensor.WithShape(len(vs)), tensor.WithBacking(slices.Clone(vs)))
	default:
		return fmt.Errorf("attribute %s is not supported (strings and sparse tensors have no IR type)", a.name)
	}
	c.setConst(0, d)
	return nil
}

// convertShape folds Shape to a constant when the shape is known and does
// not involve the batch.
func convertShape(c *nodeCtx) error {
	x, err := c.in(0)
	if err != nil {
		return err
	}
	if x.Type.HasSymbol() {
		return fmt.Errorf("the shape of %s depends on the batch, which the importer cannot fold into a constant", x.Type)
	}
	dims, _ := concrete(x.Type.Shape)
	r := int64(len(dims))
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
	out := slices.Clone(dims[start:end])
	c.setConst(0, tensor.New(tensor.WithShape(len(out)), tensor.WithBacking(out)))
	return nil
}
