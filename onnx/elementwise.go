package onnx

import (
	"fmt"
	"math"
	"slices"

	"gorgonia.org/tensor"

	"multigpu/graph"
	"multigpu/runtime/host"
)

// unary maps an elementwise op of one operand to the IR op of that name.
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

// binary maps Add, Sub, Mul and Div (numpy broadcasting, and the legacy
// broadcast attributes of opsets before 7) to the IR op of that name.
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
	y, err := hardSigmoid(c, x, alpha, beta)
	if err != nil {
		return err
	}
	return c.set(0, y)
}

// hardSigmoid returns max(0, min(1, alpha*x + beta)).
func hardSigmoid(c *nodeCtx, x *graph.Node, alpha, beta float64) (*graph.Node, error) {
	dt := x.Type.DType
	var ks [4]*graph.Node
	var err error
	for i, v := range []float64{alpha, beta, 1, 0} {
		if ks[i], err = c.scalar([]string{"alpha", "beta", "one", "zero"}[i], dt, v); err != nil {
			return nil, err
		}
	}
	y := x
	for _, step := range []struct {
		op string
		k  *graph.Node
	}{{"mul", ks[0]}, {"add", ks[1]}, {"minimum", ks[2]}, {"maximum", ks[3]}} {
		if y, err = c.op(step.op, []*graph.Node{y, step.k}, nil); err != nil {
			return nil, err
		}
	}
	return y, nil
}

// convertHardSwish maps HardSwish (opset 14) to x * HardSigmoid(x) with
// alpha 1/6 and beta 0.5, as ONNX defines it (MobileNetV3's activation).
func convertHardSwish(c *nodeCtx) error {
	x, err := c.in(0)
	if err != nil {
		return err
	}
	h, err := hardSigmoid(c, x, float64(float32(1.0/6)), 0.5)
	if err != nil {
		return err
	}
	y, err := c.op("mul", []*graph.Node{x, h}, nil)
	if err != nil {
		return err
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
		ax, err := c.axis(def, r)
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

// comparison maps Equal, Less, Greater, LessOrEqual and GreaterOrEqual, and
// And, Or and Xor (with the legacy broadcast attributes of opsets before
// 7), to the IR op of that name: operands of one element type,
// broadcasting, a bool result.
func comparison(op string) *opDef {
	return &opDef{attrs: []string{"broadcast", "axis"}, convert: func(c *nodeCtx) error {
		a, err := c.in(0)
		if err != nil {
			return err
		}
		b, err := c.in(1)
		if err != nil {
			return err
		}
		if a.Type.DType != b.Type.DType {
			return fmt.Errorf("operands of different element types (%s, %s)", a.Type, b.Type)
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

// convertWhere maps Where to where.
func convertWhere(c *nodeCtx) error {
	args, err := c.ins()
	if err != nil {
		return err
	}
	if len(args) != 3 {
		return fmt.Errorf("expected 3 inputs (condition, X, Y), found %d", len(args))
	}
	y, err := c.op("where", args, nil)
	if err != nil {
		return err
	}
	return c.set(0, y)
}

// convertPow maps Pow to pow. The IR's pow takes floating-point operands
// of one type; ONNX (from opset 12) lets the exponent's type differ and
// the base be an integer, computed as ONNX Runtime does, in double
// precision (C++'s std::pow) and converted back:
//   - a constant exponent whose values the base's type holds exactly
//     becomes a constant of that type;
//   - otherwise both operands are cast to f64, raised, and the result cast
//     back to the base's type (f32: the same rounding as pow on f32, which
//     computes in f64; integers: truncated toward zero, as C++ converts).
//
// Integer results are exact while they stay below 2^53.
func convertPow(c *nodeCtx) error {
	x, err := c.in(0)
	if err != nil {
		return err
	}
	ev, err := c.lookup(1)
	if err != nil {
		return err
	}
	dt := x.Type.DType
	if !dt.IsNumeric() {
		return fmt.Errorf("expected a numeric base, found %s", x.Type)
	}
	var e *graph.Node
	if ev.node == nil && ev.data != nil && dt.IsFloat() {
		if e, err = c.exactConst("exponent", ev.data, dt); err != nil {
			return err
		}
	}
	if e == nil {
		if e, err = c.in(1); err != nil {
			return err
		}
	}
	if !e.Type.DType.IsNumeric() {
		return fmt.Errorf("expected a numeric exponent, found %s", e.Type)
	}
	if e, err = legacyBroadcast(c, x, e); err != nil {
		return err
	}
	if dt.IsFloat() && e.Type.DType == dt {
		y, err := c.op("pow", []*graph.Node{x, e}, nil)
		if err != nil {
			return err
		}
		return c.set(0, y)
	}
	if x, err = c.castTo(x, graph.F64); err != nil {
		return err
	}
	if e, err = c.castTo(e, graph.F64); err != nil {
		return err
	}
	p, err := c.op("pow", []*graph.Node{x, e}, nil)
	if err != nil {
		return err
	}
	y, err := c.castTo(p, dt)
	if err != nil {
		return err
	}
	return c.set(0, y)
}

// exactConst returns the constant d converted to the floating-point type
// dt as a const or param, or nil when a value of d has no exact
// representation in dt.
func (c *nodeCtx) exactConst(tag string, d *tensor.Dense, dt graph.DType) (*graph.Node, error) {
	src, _ := host.DTypeOf(d)
	if src == graph.Bool {
		return nil, nil
	}
	vs := denseFloats(d)
	if src == graph.I64 {
		ints, err := denseInts(d)
		if err != nil {
			return nil, err
		}
		for _, v := range ints {
			if v > 1<<53 || v < -(1<<53) {
				return nil, nil
			}
		}
	}
	for _, v := range vs {
		if dt == graph.F32 && float64(float32(v)) != v && !math.IsNaN(v) {
			return nil, nil
		}
	}
	shape := make([]int, 0, d.Dims())
	if !d.IsScalar() {
		shape = append(shape, d.Shape()...)
	}
	var t *tensor.Dense
	if len(shape) == 0 {
		if dt == graph.F64 {
			t = tensor.New(tensor.FromScalar(vs[0]))
		} else {
			t = tensor.New(tensor.FromScalar(float32(vs[0])))
		}
	} else {
		t = floatTensor(dt, shape, vs)
	}
	return c.constTensor(tag, t)
}

// constTensor adds the tensor d as a const when small, else as a param.
func (c *nodeCtx) constTensor(tag string, d *tensor.Dense) (*graph.Node, error) {
	t := denseType(d)
	if elems, _ := t.Elems(); elems <= maxConstElems {
		if n, err := c.im.g.Const(c.tmp(tag), t, denseFloats(d)); err == nil {
			return n, nil
		}
	}
	n, err := c.im.g.Param(c.tmp(tag), t)
	if err != nil {
		return nil, err
	}
	c.im.weights[n.Name] = d
	return n, nil
}

// castTo converts x to dt (x itself when it has that type).
func (c *nodeCtx) castTo(x *graph.Node, dt graph.DType) (*graph.Node, error) {
	if x.Type.DType == dt {
		return x, nil
	}
	return c.op1("cast", x, graph.Attrs{{Name: "to", Value: graph.Ident(dt.String())}})
}

// castNames are the type names Cast's to attribute had before opset 6,
// when it was a string.
var castNames = map[string]int64{"FLOAT": dtFloat, "DOUBLE": dtDouble, "INT32": dtInt32, "INT64": dtInt64, "BOOL": dtBool}

// convertCast maps Cast and CastLike to cast (to the type the value
// already has, to the identity). Cast's target is an attribute (a type
// name before opset 6, a TensorProto data type after); CastLike's is the
// element type of its second input. saturate concerns only 8-bit floats,
// which the IR does not have.
func convertCast(c *nodeCtx) error {
	x, err := c.in(0)
	if err != nil {
		return err
	}
	var dt graph.DType
	if c.n.opType == "CastLike" {
		like, err := c.lookup(1)
		if err != nil {
			return err
		}
		switch {
		case like.node != nil:
			dt = like.node.Type.DType
		case like.data != nil:
			dt, _ = host.DTypeOf(like.data)
		case like.vec != nil:
			dt = like.vec.dtype
		default:
			return fmt.Errorf("input 1 %q has no known element type", like.onnx)
		}
	} else {
		var to int64
		if c.opset() < 6 {
			s, err := c.str("to", "")
			if err != nil {
				return err
			}
			var ok bool
			if to, ok = castNames[s]; !ok {
				return fmt.Errorf("conversion from %s to %q is not supported (the IR has FLOAT, DOUBLE, INT32, INT64 and BOOL)", x.Type.DType, s)
			}
		} else if to, err = c.int("to", dtUndefined); err != nil {
			return err
		}
		var ok bool
		if dt, ok = dtypeOf(to); !ok {
			return fmt.Errorf("conversion from %s to %s is not supported (the IR has FLOAT, DOUBLE, INT32, INT64 and BOOL)", x.Type.DType, dataTypeName(to))
		}
	}
	if dt == x.Type.DType {
		return c.alias(0, 0)
	}
	y, err := c.castTo(x, dt)
	if err != nil {
		return err
	}
	return c.set(0, y)
}
