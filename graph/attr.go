package graph

import (
	"strconv"
	"strings"
)

// AttrKind is the kind of an attribute value.
type AttrKind uint8

// The kinds of attribute value.
const (
	AttrInt AttrKind = iota + 1
	AttrFloat
	AttrBool
	AttrString
	AttrIdent // an identifier, possibly times an integer: N, N.0, N*20, balanced
	AttrList
)

// AttrValue is the value of one attribute.
type AttrValue struct {
	Kind  AttrKind
	Int   int64       // AttrInt; AttrIdent: the multiplier (1 unless written N*k)
	Float float64     // AttrFloat
	Bool  bool        // AttrBool
	Str   string      // AttrString, AttrIdent
	List  []AttrValue // AttrList
}

// Int returns an integer attribute value.
func Int(v int64) AttrValue { return AttrValue{Kind: AttrInt, Int: v} }

// Float returns a floating-point attribute value.
func Float(v float64) AttrValue { return AttrValue{Kind: AttrFloat, Float: v} }

// BoolAttr returns a boolean attribute value.
func BoolAttr(v bool) AttrValue { return AttrValue{Kind: AttrBool, Bool: v} }

// Ident returns an identifier attribute value.
func Ident(s string) AttrValue { return AttrValue{Kind: AttrIdent, Str: s, Int: 1} }

// Ints returns a list of integers.
func Ints(vs ...int64) AttrValue {
	l := make([]AttrValue, len(vs))
	for i, v := range vs {
		l[i] = Int(v)
	}
	return AttrValue{Kind: AttrList, List: l}
}

// DimAttr spells one dimension as an entry of a shape attribute
// (reshape's, expand's): its size, or the batch symbol or one of its
// shares (an identifier) times its multiple.
func DimAttr(d Dim) AttrValue {
	if d.Sym == "" {
		return Int(d.Size)
	}
	v := Ident(d.SymName())
	v.Int = d.Mul
	return v
}

// ShapeAttr spells dims as a shape attribute (DimAttr for each).
func ShapeAttr(dims []Dim) AttrValue {
	l := make([]AttrValue, len(dims))
	for i, d := range dims {
		l[i] = DimAttr(d)
	}
	return AttrValue{Kind: AttrList, List: l}
}

// Equal reports whether a and b are the same value.
func (a AttrValue) Equal(b AttrValue) bool {
	if a.Kind != b.Kind {
		return false
	}
	switch a.Kind {
	case AttrInt:
		return a.Int == b.Int
	case AttrFloat:
		return a.Float == b.Float || (a.Float != a.Float && b.Float != b.Float)
	case AttrBool:
		return a.Bool == b.Bool
	case AttrString:
		return a.Str == b.Str
	case AttrIdent:
		return a.Str == b.Str && a.Int == b.Int
	case AttrList:
		if len(a.List) != len(b.List) {
			return false
		}
		for i := range a.List {
			if !a.List[i].Equal(b.List[i]) {
				return false
			}
		}
		return true
	}
	return false
}

// String returns the spelling of a in the text format.
func (a AttrValue) String() string {
	switch a.Kind {
	case AttrInt:
		return strconv.FormatInt(a.Int, 10)
	case AttrFloat:
		return formatFloat(a.Float)
	case AttrBool:
		return strconv.FormatBool(a.Bool)
	case AttrString:
		return strconv.Quote(a.Str)
	case AttrIdent:
		if a.Int != 1 {
			return a.Str + "*" + strconv.FormatInt(a.Int, 10)
		}
		return a.Str
	case AttrList:
		var b strings.Builder
		b.WriteByte('[')
		for i, v := range a.List {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(v.String())
		}
		b.WriteByte(']')
		return b.String()
	}
	return "?"
}

// formatFloat spells f so that it reads back as a float: 0.5, 1e-05, 2.0.
func formatFloat(f float64) string {
	s := strconv.FormatFloat(f, 'g', -1, 64)
	if !strings.ContainsAny(s, ".eIN") {
		s += ".0"
	}
	return s
}

// Attr is one named attribute of a node.
type Attr struct {
	Name  string
	Value AttrValue
}

// Attrs is a node's attributes, in the order its op declares them.
type Attrs []Attr

// Get returns the value of the attribute name and whether it is present.
func (as Attrs) Get(name string) (AttrValue, bool) {
	for _, a := range as {
		if a.Name == name {
			return a.Value, true
		}
	}
	return AttrValue{}, false
}

// Has reports whether the attribute name is present and true (for a
// boolean) or present (for any other kind).
func (as Attrs) Has(name string) bool {
	v, ok := as.Get(name)
	return ok && (v.Kind != AttrBool || v.Bool)
}

// Set returns as with name set to v, replacing an existing value.
func (as Attrs) Set(name string, v AttrValue) Attrs {
	for i, a := range as {
		if a.Name == name {
			out := append(Attrs(nil), as...)
			out[i].Value = v
			return out
		}
	}
	return append(append(Attrs(nil), as...), Attr{name, v})
}

// Clone returns a deep copy of as.
func (as Attrs) Clone() Attrs {
	if as == nil {
		return nil
	}
	out := make(Attrs, len(as))
	for i, a := range as {
		out[i] = Attr{a.Name, a.Value.clone()}
	}
	return out
}

// clone returns a copy of a that shares no list memory with it.
func (a AttrValue) clone() AttrValue {
	if a.List != nil {
		l := make([]AttrValue, len(a.List))
		for i, v := range a.List {
			l[i] = v.clone()
		}
		a.List = l
	}
	return a
}
