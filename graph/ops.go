package graph

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// OpInfo describes one op of the IR: its operands, its attributes, how its
// result type follows from its operands, and how the batch flows through it.
type OpInfo struct {
	Name string
	// MinArgs and MaxArgs bound the number of operands; MaxArgs < 0: no bound.
	MinArgs, MaxArgs int
	// Attrs are the op's attributes in canonical order.
	Attrs []AttrSpec
	// Doc says what the op computes, in one line.
	Doc string

	infer func(n *Node, args []Type) (Type, error)
}

// AttrSpec describes one attribute of an op.
type AttrSpec struct {
	Name string
	Kind SpecKind
	// Enum lists the identifiers a SpecEnum attribute accepts.
	Enum []string
	// Default is the value an absent attribute takes; nil when required.
	Default *AttrValue
}

// SpecKind is the kind of value an attribute accepts.
type SpecKind uint8

// The kinds of attribute.
const (
	SpecInt    SpecKind = iota + 1 // an integer
	SpecFloat                      // a number
	SpecBool                       // true or false
	SpecEnum                       // one of AttrSpec.Enum
	SpecInts                       // a list of integers
	SpecDims                       // a list of integers and batch symbols (reshape's shape)
	SpecString                     // a string
)

// specNames say what each kind of attribute accepts, in messages.
var specNames = [...]string{SpecInt: "an integer", SpecFloat: "a number", SpecBool: "true or false",
	SpecEnum: "one of", SpecInts: "a list of integers", SpecDims: "a list of dimensions", SpecString: "a string"}

// describe says what the attribute accepts: "an integer", "one of ...".
func (s *AttrSpec) describe() string {
	if s.Kind == SpecEnum {
		return "one of " + strings.Join(s.Enum, ", ")
	}
	return specNames[s.Kind]
}

// attr returns the spec of attribute name, or nil when o has none.
func (o *OpInfo) attr(name string) *AttrSpec {
	for i := range o.Attrs {
		if o.Attrs[i].Name == name {
			return &o.Attrs[i]
		}
	}
	return nil
}

// LookupOp returns the op named name, or nil when there is none.
func LookupOp(name string) *OpInfo { return opTable[name] }

// OpNames returns the names of all ops, sorted.
func OpNames() []string {
	names := make([]string, 0, len(opTable))
	for n := range opTable {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// checkAttrs checks attrs against the op's specs: known names, each once,
// values of the right kind. It changes nothing and allocates nothing when
// they are valid.
func (o *OpInfo) checkAttrs(attrs Attrs) error {
	for i, a := range attrs {
		spec := o.attr(a.Name)
		if spec == nil {
			return fmt.Errorf("unknown attribute %q (%s takes %s)", a.Name, o.Name, o.attrList())
		}
		for _, b := range attrs[:i] {
			if b.Name == a.Name {
				return fmt.Errorf("attribute %q given twice", a.Name)
			}
		}
		if _, err := spec.check(a.Value); err != nil {
			return fmt.Errorf("attribute %s: %v", a.Name, err)
		}
	}
	return nil
}

// normalize checks attrs against the op's specs and returns a copy in
// canonical form: the op's order, values converted to the spec's kind
// (an int to a float), defaults dropped. attrs itself is left as it was.
func (o *OpInfo) normalize(attrs Attrs) (Attrs, error) {
	if err := o.checkAttrs(attrs); err != nil {
		return nil, err
	}
	var out Attrs
	for i := range o.Attrs {
		spec := &o.Attrs[i]
		v, ok := attrs.Get(spec.Name)
		if !ok {
			continue
		}
		v, _ = spec.check(v)
		if spec.Default != nil && spec.Default.Equal(v) {
			continue
		}
		out = append(out, Attr{spec.Name, v.clone()})
	}
	return out, nil
}

// canonical reports whether attrs are as normalize leaves them: in the op's
// order, of the spec's kind, without defaults. It allocates nothing.
func (o *OpInfo) canonical(attrs Attrs) bool {
	next := 0
	for _, a := range attrs {
		for next < len(o.Attrs) && o.Attrs[next].Name != a.Name {
			next++
		}
		if next == len(o.Attrs) {
			return false
		}
		spec := &o.Attrs[next]
		next++
		if v, err := spec.check(a.Value); err != nil || v.Kind != a.Value.Kind ||
			(spec.Default != nil && spec.Default.Equal(a.Value)) {
			return false
		}
	}
	return true
}

// attrList names o's attributes, for messages.
func (o *OpInfo) attrList() string {
	if len(o.Attrs) == 0 {
		return "no attributes"
	}
	names := make([]string, len(o.Attrs))
	for i, a := range o.Attrs {
		names[i] = a.Name
	}
	return strings.Join(names, ", ")
}

// check converts v to the attribute's kind, or says what was expected.
func (s *AttrSpec) check(v AttrValue) (AttrValue, error) {
	bad := func() (AttrValue, error) {
		return AttrValue{}, fmt.Errorf("expected %s, found %s", s.describe(), v)
	}
	switch s.Kind {
	case SpecInt:
		if v.Kind == AttrInt {
			return v, nil
		}
	case SpecFloat:
		switch v.Kind {
		case AttrFloat:
			if math.IsNaN(v.Float) || math.IsInf(v.Float, 0) {
				return AttrValue{}, fmt.Errorf("expected a finite number, found %s", v)
			}
			return v, nil
		case AttrInt:
			return Float(float64(v.Int)), nil
		}
	case SpecBool:
		if v.Kind == AttrBool {
			return v, nil
		}
	case SpecEnum:
		if v.Kind == AttrIdent && v.Int == 1 && slices.Contains(s.Enum, v.Str) {
			return v, nil
		}
	case SpecInts:
		if v.Kind != AttrList {
			return bad()
		}
		for _, e := range v.List {
			if e.Kind != AttrInt {
				return bad()
			}
		}
		return v, nil
	case SpecString:
		if v.Kind == AttrString {
			return v, nil
		}
	case SpecDims:
		if v.Kind != AttrList {
			return bad()
		}
		for _, e := range v.List {
			if e.Kind != AttrInt && e.Kind != AttrIdent {
				return bad()
			}
		}
		return v, nil
	}
	return bad()
}

// Infer returns the type of n's result from its operands and attributes.
// It checks the number of operands, the attributes and every shape rule.
func Infer(n *Node) (Type, error) {
	info := opTable[n.Op]
	if info == nil {
		return Type{}, fmt.Errorf("unknown op %q", n.Op)
	}
	if len(n.Args) < info.MinArgs || (info.MaxArgs >= 0 && len(n.Args) > info.MaxArgs) {
		return Type{}, fmt.Errorf("%s: expected %s, found %d", n.Op, arity(info), len(n.Args))
	}
	if err := info.checkAttrs(n.Attrs); err != nil {
		return Type{}, fmt.Errorf("%s: %v", n.Op, err)
	}
	for _, spec := range info.Attrs {
		if spec.Default == nil && spec.Name != "" && !optionalAttr(n.Op, spec.Name) {
			if _, ok := n.Attrs.Get(spec.Name); !ok {
				return Type{}, fmt.Errorf("%s: missing attribute %s (%s)", n.Op, spec.Name, spec.describe())
			}
		}
	}
	args := make([]Type, len(n.Args))
	for i, a := range n.Args {
		args[i] = a.Type
	}
	t, err := info.infer(n, args)
	if err != nil {
		return Type{}, fmt.Errorf("%s: %v", n.Op, err)
	}
	if err := checkElems(t); err != nil {
		return Type{}, fmt.Errorf("%s: %v", n.Op, err)
	}
	return t, nil
}

// optionalAttr lists attributes without a default that may still be absent.
func optionalAttr(op, name string) bool {
	switch op {
	case "slice":
		return name != "axis"
	case "sum", "mean", "max", "min":
		return name == "axes"
	case "maxpool2d", "avgpool2d", "maxpool2d_grad", "avgpool2d_grad":
		return name == "stride"
	}
	return false
}

// arity says how many operands o takes: "2 operands", "at least 1 operand".
func arity(o *OpInfo) string {
	plural := func(n int) string {
		if n == 1 {
			return "1 operand"
		}
		return fmt.Sprintf("%d operands", n)
	}
	switch {
	case o.MaxArgs < 0:
		return "at least " + plural(o.MinArgs)
	case o.MinArgs == o.MaxArgs:
		return plural(o.MinArgs)
	}
	return fmt.Sprintf("%d to %d operands", o.MinArgs, o.MaxArgs)
}

// def returns a default value for an AttrSpec.
func def(v AttrValue) *AttrValue { return &v }

var (
	axisAttr = func(d int64) AttrSpec { return AttrSpec{Name: "axis", Kind: SpecInt, Default: def(Int(d))} }
	reqAxis  = AttrSpec{Name: "axis", Kind: SpecInt}
	axesAttr = AttrSpec{Name: "axes", Kind: SpecInts}
	keepdims = AttrSpec{Name: "keepdims", Kind: SpecBool, Default: def(BoolAttr(false))}
	training = AttrSpec{Name: "training", Kind: SpecBool, Default: def(BoolAttr(false))}
)

// unary returns an elementwise op of one operand (a float one when float).
func unary(name, doc string, float bool) *OpInfo {
	return &OpInfo{Name: name, MinArgs: 1, MaxArgs: 1, Doc: doc, infer: func(n *Node, a []Type) (Type, error) {
		return elementwise(float, a[0])
	}}
}

// binary returns an elementwise op of two operands that broadcast.
func binary(name, doc string) *OpInfo {
	return &OpInfo{Name: name, MinArgs: 2, MaxArgs: 2, Doc: doc, infer: func(n *Node, a []Type) (Type, error) {
		return broadcast(a[0], a[1])
	}}
}

// reduction returns a reduction over axes.
func reduction(name, doc string) *OpInfo {
	return &OpInfo{Name: name, MinArgs: 1, MaxArgs: 1, Doc: doc, Attrs: []AttrSpec{axesAttr, keepdims}, infer: inferReduce}
}

// pool returns a 2-D pooling op.
func pool(name, doc string) *OpInfo {
	return &OpInfo{Name: name, MinArgs: 1, MaxArgs: 1, Doc: doc, Attrs: poolAttrs(), infer: inferPool}
}

// poolAttrs are the window attributes of the pooling ops.
func poolAttrs() []AttrSpec {
	return []AttrSpec{
		{Name: "kernel", Kind: SpecInts},
		{Name: "stride", Kind: SpecInts},
		{Name: "pad", Kind: SpecInts, Default: def(Ints(0, 0))},
	}
}

// convAttrs are the window attributes of conv2d and its gradients.
func convAttrs() []AttrSpec {
	return []AttrSpec{
		{Name: "stride", Kind: SpecInts, Default: def(Ints(1, 1))},
		{Name: "pad", Kind: SpecInts, Default: def(Ints(0, 0))},
		{Name: "dilation", Kind: SpecInts, Default: def(Ints(1, 1))},
		{Name: "groups", Kind: SpecInt, Default: def(Int(1))},
	}
}

// opTable holds every op of the IR by name.
var opTable = func() map[string]*OpInfo {
	list := []*OpInfo{
		binary("add", "a + b, broadcasting"),
		binary("sub", "a - b, broadcasting"),
		binary("mul", "a * b, broadcasting"),
		binary("div", "a / b, broadcasting"),
		binary("maximum", "the larger of a and b, broadcasting"),
		binary("minimum", "the smaller of a and b, broadcasting"),
		unary("neg", "-x", false),
		unary("abs", "|x|", false),
		unary("exp", "e^x", true),
		unary("log", "the natural logarithm of x", true),
		unary("sqrt", "the square root of x", true),
		unary("relu", "max(x, 0)", false),
		unary("sigmoid", "1 / (1 + e^-x)", true),
		unary("tanh", "the hyperbolic tangent of x", true),
		{Name: "leaky_relu", MinArgs: 1, MaxArgs: 1, Doc: "x if x > 0, else alpha*x",
			Attrs: []AttrSpec{{Name: "alpha", Kind: SpecFloat, Default: def(Float(0.01))}},
			infer: func(n *Node, a []Type) (Type, error) { return elementwise(true, a[0]) }},
		{Name: "matmul", MinArgs: 2, MaxArgs: 2, Doc: "the matrix product of a[...,M,K] and b[K,P] or b[...,K,P]", infer: inferMatmul},
		{Name: "softmax", MinArgs: 1, MaxArgs: 1, Doc: "softmax along axis", Attrs: []AttrSpec{axisAttr(-1)}, infer: inferSoftmax},
		{Name: "log_softmax", MinArgs: 1, MaxArgs: 1, Doc: "log of softmax along axis", Attrs: []AttrSpec{axisAttr(-1)}, infer: inferSoftmax},
		reduction("sum", "the sum over axes"),
		reduction("mean", "the mean over axes"),
		reduction("max", "the maximum over axes"),
		reduction("min", "the minimum over axes"),
		{Name: "reshape", MinArgs: 1, MaxArgs: 1, Doc: "x with a new shape of the same element count",
			Attrs: []AttrSpec{{Name: "shape", Kind: SpecDims}}, infer: inferReshape},
		{Name: "transpose", MinArgs: 1, MaxArgs: 1, Doc: "x with its axes permuted",
			Attrs: []AttrSpec{{Name: "perm", Kind: SpecInts}}, infer: inferTranspose},
		{Name: "flatten", MinArgs: 1, MaxArgs: 1, Doc: "x as a matrix: the axes before axis, and the rest",
			Attrs: []AttrSpec{axisAttr(1)}, infer: inferFlatten},
		{Name: "concat", MinArgs: 1, MaxArgs: -1, Doc: "the operands joined along axis", Attrs: []AttrSpec{reqAxis}, infer: inferConcat},
		{Name: "slice", MinArgs: 1, MaxArgs: 1, Doc: "a range of x along axis: [start, end), or replica part's share of the batch",
			Attrs: []AttrSpec{reqAxis,
				{Name: "part", Kind: SpecInt}, {Name: "parts", Kind: SpecInt},
				{Name: "split", Kind: SpecEnum, Enum: []string{string(Balanced), string(Remainder)}, Default: def(Ident(string(Balanced)))},
				{Name: "start", Kind: SpecInt}, {Name: "end", Kind: SpecInt}},
			infer: inferSlice},
		{Name: "copy", MinArgs: 1, MaxArgs: 1, Doc: "x, moved to the node's device", infer: func(n *Node, a []Type) (Type, error) { return a[0].Clone(), nil }},
		{Name: "dim", MinArgs: 1, MaxArgs: 1, Doc: "the size of one axis of x, as a scalar",
			Attrs: []AttrSpec{reqAxis, {Name: "dtype", Kind: SpecEnum, Enum: []string{"f32", "f64", "i32", "i64"}, Default: def(Ident("f32"))}},
			infer: inferDim},
		{Name: "conv2d", MinArgs: 2, MaxArgs: 3, Doc: "2-D convolution of x[N,C,H,W] with w[O,C/groups,KH,KW], plus b[O]",
			Attrs: convAttrs(), infer: inferConv},
		pool("maxpool2d", "2-D max pooling of x[N,C,H,W]"),
		pool("avgpool2d", "2-D average pooling of x[N,C,H,W] (padding excluded from the count)"),
		{Name: "batchnorm", MinArgs: 5, MaxArgs: 5, Doc: "(x - mean) / sqrt(var + epsilon) * scale + bias, per channel on axis",
			Attrs: []AttrSpec{axisAttr(1), {Name: "epsilon", Kind: SpecFloat, Default: def(Float(1e-5))}, training},
			infer: inferBatchnorm},
		{Name: "dropout", MinArgs: 1, MaxArgs: 1, Doc: "x with a fraction rate of elements zeroed and the rest scaled, when training; the mask is keyed by (seed, key or the node's name, global sample index)",
			Attrs: []AttrSpec{{Name: "rate", Kind: SpecFloat, Default: def(Float(0.5))}, training,
				{Name: "key", Kind: SpecString, Default: def(AttrValue{Kind: AttrString})}},
			infer: inferDropout},

		// Ops of backward graphs (passes/grad): what the gradients of the
		// ops above need beyond compositions of them.
		{Name: "compare", MinArgs: 2, MaxArgs: 2, Doc: "1 where a cmp b holds, else 0: a mask in the operands' float type, broadcasting (cmp: eq, ne, lt, le, gt, ge)",
			Attrs: []AttrSpec{{Name: "cmp", Kind: SpecEnum, Enum: []string{"eq", "ne", "lt", "le", "gt", "ge"}}},
			infer: inferCompare},
		{Name: "broadcast_like", MinArgs: 2, MaxArgs: 2, Doc: "a broadcast (numpy rules) to the shape of x; x's elements are not read",
			infer: inferBroadcastLike},
		{Name: "conv2d_grad_input", MinArgs: 2, MaxArgs: 2, Doc: "the gradient of conv2d with respect to its x[N,C,H,W] (size=[H,W]), given dy[N,O,OH,OW] and w[O,C/groups,KH,KW]",
			Attrs: append(convAttrs(), AttrSpec{Name: "size", Kind: SpecInts}), infer: inferConvGradInput},
		{Name: "conv2d_grad_weight", MinArgs: 2, MaxArgs: 2, Doc: "the gradient of conv2d with respect to its w[O,C/groups,KH,KW] (kernel=[KH,KW]), given x[N,C,H,W] and dy[N,O,OH,OW]: a sum over the batch",
			Attrs: append(convAttrs(), AttrSpec{Name: "kernel", Kind: SpecInts}), infer: inferConvGradWeight},
		{Name: "maxpool2d_grad", MinArgs: 2, MaxArgs: 2, Doc: "the gradient of maxpool2d with respect to x[N,C,H,W], given x and dy: dy goes to the first maximum of each window, summed where windows overlap",
			Attrs: poolAttrs(), infer: inferMaxpoolGrad},
		{Name: "avgpool2d_grad", MinArgs: 1, MaxArgs: 1, Doc: "the gradient of avgpool2d with respect to its x[N,C,H,W] (size=[H,W]), given dy: each window's dy shared evenly by its positions inside the image",
			Attrs: append(poolAttrs(), AttrSpec{Name: "size", Kind: SpecInts}), infer: inferAvgpoolGrad},

		// Elementwise math beyond arithmetic, comparisons, logic and casts
		// (graph/infer_logic.go), for the models PyTorch exports.
		{Name: "pow", MinArgs: 2, MaxArgs: 2, Doc: "a^b of floating-point operands, broadcasting", infer: inferPow},
		unary("erf", "the error function of x", true),
		{Name: "where", MinArgs: 3, MaxArgs: 3, Doc: "a where c holds, else b: c bool, a and b of one element type (any), all three broadcasting", infer: inferWhere},
		comparison("equal", "a == b, of one element type (numeric or bool), broadcasting: bool", true),
		comparison("less", "a < b, of one numeric element type, broadcasting: bool", false),
		comparison("greater", "a > b, of one numeric element type, broadcasting: bool", false),
		comparison("less_equal", "a <= b, of one numeric element type, broadcasting: bool", false),
		comparison("greater_equal", "a >= b, of one numeric element type, broadcasting: bool", false),
		logic("not", "the negation of a bool x", 1),
		logic("and", "a and b, of bools, broadcasting", 2),
		logic("or", "a or b, of bools, broadcasting", 2),
		logic("xor", "a xor b (exactly one holds), of bools, broadcasting", 2),
		{Name: "cast", MinArgs: 1, MaxArgs: 1, Doc: "x converted to the element type to (ONNX Cast): floats to integers truncate toward zero, saturating (NaN gives 0); to bool is x != 0; bool to a number is 0 or 1",
			Attrs: []AttrSpec{{Name: "to", Kind: SpecEnum, Enum: castTypes}}, infer: inferCast},

		// Indexing and broadcasting (graph/index.go), for the models
		// PyTorch exports: embedding lookups, Expand, ArgMax.
		{Name: "gather", MinArgs: 2, MaxArgs: 2, Doc: "the slices of data at i32 or i64 indices (any rank; negative ones count from the end) along axis: data.shape[:axis] ++ indices.shape ++ data.shape[axis+1:]",
			Attrs: []AttrSpec{axisAttr(0)}, infer: inferGather},
		{Name: "gather_grad", MinArgs: 2, MaxArgs: 2, Doc: "the gradient of gather with respect to its data (rows on axis), given indices and dy: zeros with dy's slices added at their indices, in index order",
			Attrs: []AttrSpec{axisAttr(0), {Name: "rows", Kind: SpecInt}}, infer: inferGatherGrad},
		{Name: "expand", MinArgs: 1, MaxArgs: 1, Doc: "x broadcast (numpy rules) with shape, whose dimensions may name the batch",
			Attrs: []AttrSpec{{Name: "shape", Kind: SpecDims}}, infer: inferExpand},
		{Name: "argmax", MinArgs: 1, MaxArgs: 1, Doc: "the i64 index of the first maximum along axis (a NaN is the maximum)",
			Attrs: []AttrSpec{reqAxis, keepdims}, infer: inferArg},
		{Name: "argmin", MinArgs: 1, MaxArgs: 1, Doc: "the i64 index of the first minimum along axis (a NaN is the minimum)",
			Attrs: []AttrSpec{reqAxis, keepdims}, infer: inferArg},

		// Collectives (graph/collective.go): the combination of a group
		// of replicas' values, on every member's device.
		allreduceInfo(),

		// State updated in place (graph/assign.go): the optimizer's step.
		assignInfo(),
	}
	m := make(map[string]*OpInfo, len(list))
	for _, o := range list {
		m[o.Name] = o
	}
	return m
}()
