package graph

import "fmt"

// The ops of elementwise math beyond arithmetic, comparisons, logic and
// casts (pow, erf, where, equal..., not, and, or, xor, cast), and their
// infer functions.

// castTypes are the element types cast converts to, as its to attribute
// spells them.
var castTypes = []string{"f32", "f64", "i32", "i64", "bool"}

// comparison returns an op comparing two operands of one element type
// (numeric, or bool too when anyType is set) that broadcast; its result is
// bool.
func comparison(name, doc string, anyType bool) *OpInfo {
	return &OpInfo{Name: name, MinArgs: 2, MaxArgs: 2, Doc: doc, infer: func(n *Node, a []Type) (Type, error) {
		x, y := a[0], a[1]
		if x.DType != y.DType {
			return Type{}, fmt.Errorf("expected operands of one element type, found %s and %s", x, y)
		}
		if !x.DType.IsNumeric() && !(anyType && x.DType == Bool) {
			return Type{}, fmt.Errorf("expected numeric operands, found %s", x)
		}
		t, err := broadcastShapes(x, y)
		if err != nil {
			return Type{}, err
		}
		t.DType = Bool
		return t, nil
	}}
}

// logic returns an op of bool operands (args of them) that broadcast; its
// result is bool.
func logic(name, doc string, args int) *OpInfo {
	return &OpInfo{Name: name, MinArgs: args, MaxArgs: args, Doc: doc, infer: func(n *Node, a []Type) (Type, error) {
		for _, t := range a {
			if t.DType != Bool {
				return Type{}, fmt.Errorf("expected bool operands, found %s", t)
			}
		}
		if len(a) == 1 {
			return a[0].Clone(), nil
		}
		return broadcastShapes(a[0], a[1])
	}}
}

// inferPow: a^b of floating-point operands of one type that broadcast.
func inferPow(n *Node, a []Type) (Type, error) {
	if !a[0].DType.IsFloat() || a[0].DType != a[1].DType {
		return Type{}, fmt.Errorf("expected floating-point operands of one element type, found %s and %s", a[0], a[1])
	}
	return broadcast(a[0], a[1])
}

// inferWhere: a bool condition c and two operands a and b of one element
// type (any), all three broadcasting; the result has a's element type.
func inferWhere(n *Node, a []Type) (Type, error) {
	c, x, y := a[0], a[1], a[2]
	if c.DType != Bool {
		return Type{}, fmt.Errorf("expected a bool condition, found %s", c)
	}
	if x.DType != y.DType {
		return Type{}, fmt.Errorf("expected a and b of one element type, found %s and %s", x, y)
	}
	t, err := broadcastShapes(c, x)
	if err != nil {
		return Type{}, err
	}
	if t, err = broadcastShapes(t, y); err != nil {
		return Type{}, err
	}
	t.DType = x.DType
	return t, nil
}

// inferCast: x's shape in the element type to names.
func inferCast(n *Node, a []Type) (Type, error) {
	dt, ok := ParseDType(n.Attrs.ident("to", ""))
	if !ok {
		return Type{}, fmt.Errorf("missing attribute to (one of f32, f64, i32, i64, bool)")
	}
	t := a[0].Clone()
	t.DType = dt
	return t, nil
}
