package graph

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// DType is the element type of a tensor.
type DType uint8

// The element types of the IR.
const (
	F32 DType = iota + 1
	F64
	I32
	I64
	Bool
)

// dtypeNames spell each DType in the text format.
var dtypeNames = [...]string{F32: "f32", F64: "f64", I32: "i32", I64: "i64", Bool: "bool"}

// String returns the spelling of d in the text format.
func (d DType) String() string {
	if int(d) < len(dtypeNames) && dtypeNames[d] != "" {
		return dtypeNames[d]
	}
	return fmt.Sprintf("dtype(%d)", uint8(d))
}

// valid reports whether d is one of the element types of the IR.
func (d DType) valid() bool { return d >= F32 && d <= Bool }

// IsFloat reports whether d is a floating-point type.
func (d DType) IsFloat() bool { return d == F32 || d == F64 }

// IsNumeric reports whether d supports arithmetic.
func (d DType) IsNumeric() bool { return d.valid() && d != Bool }

// Size returns the number of bytes one element of d occupies.
func (d DType) Size() int64 {
	switch d {
	case F32, I32:
		return 4
	case F64, I64:
		return 8
	case Bool:
		return 1
	}
	return 0
}

// ParseDType returns the DType spelled s, and false if s names none.
func ParseDType(s string) (DType, bool) {
	for i, n := range dtypeNames {
		if n != "" && n == s {
			return DType(i), true
		}
	}
	return 0, false
}

// Dim is one dimension of a shape: a concrete size, or the batch symbol
// (possibly times an integer, possibly one replica's share of it).
//
// A concrete dim has Sym == "" and its size in Size. A symbolic dim has the
// batch symbol's name in Sym and stands for Mul times the symbol; Part >= 0
// marks the share of replica Part out of Parts that a slice produced
// (printed "N.0"). Bound is the size the symbol (or share) is bound to, or 0
// when it is only known at run time.
type Dim struct {
	Sym   string
	Part  int
	Parts int
	Mul   int64
	Bound int64
	Size  int64
}

// Const returns the concrete dimension n.
func Const(n int64) Dim { return Dim{Size: n, Part: -1} }

// Sym returns the plain batch symbol name, bound to size bound (0: unbound).
func Sym(name string, bound int64) Dim { return Dim{Sym: name, Mul: 1, Bound: bound, Part: -1} }

// Share returns replica part's share (of parts) of the batch symbol name,
// bound to size bound (0: unbound).
func Share(name string, part, parts int, bound int64) Dim {
	return Dim{Sym: name, Mul: 1, Part: part, Parts: parts, Bound: bound}
}

// IsSymbolic reports whether d involves the batch symbol.
func (d Dim) IsSymbolic() bool { return d.Sym != "" }

// IsBatch reports whether d is exactly the (unshared) batch symbol.
func (d Dim) IsBatch() bool { return d.Sym != "" && d.Mul == 1 && d.Part < 0 }

// IsShare reports whether d is exactly one replica's share of the batch.
func (d Dim) IsShare() bool { return d.Sym != "" && d.Mul == 1 && d.Part >= 0 }

// SymName returns the name of the symbol d stands for: "N", or "N.2" for a share.
func (d Dim) SymName() string {
	if d.Part >= 0 {
		return d.Sym + "." + strconv.Itoa(d.Part)
	}
	return d.Sym
}

// Value returns the size of d, and false if it is known only at run time.
func (d Dim) Value() (int64, bool) {
	if d.Sym == "" {
		return d.Size, true
	}
	if d.Bound > 0 {
		return d.Mul * d.Bound, true
	}
	return 0, false
}

// Equal reports whether d and e are the same dimension.
func (d Dim) Equal(e Dim) bool {
	if d.Sym == "" || e.Sym == "" {
		return d.Sym == e.Sym && d.Size == e.Size
	}
	return d.Sym == e.Sym && d.Part == e.Part && d.Mul == e.Mul && d.Bound == e.Bound &&
		(d.Part < 0 || d.Parts == e.Parts)
}

// String returns the spelling of d in the text format.
func (d Dim) String() string {
	if d.Sym == "" {
		return strconv.FormatInt(d.Size, 10)
	}
	s := d.SymName()
	if d.Mul != 1 {
		return s + "*" + strconv.FormatInt(d.Mul, 10)
	}
	if d.Bound > 0 {
		s += "=" + strconv.FormatInt(d.Bound, 10)
	}
	return s
}

// Type is the type of a value: an element type and a shape.
type Type struct {
	DType DType
	Shape []Dim
}

// Rank returns the number of axes of t.
func (t Type) Rank() int { return len(t.Shape) }

// Equal reports whether t and u are the same type.
func (t Type) Equal(u Type) bool {
	if t.DType != u.DType || len(t.Shape) != len(u.Shape) {
		return false
	}
	for i := range t.Shape {
		if !t.Shape[i].Equal(u.Shape[i]) {
			return false
		}
	}
	return true
}

// String returns the spelling of t in the text format, as in "f32[N,784]".
func (t Type) String() string {
	var b strings.Builder
	b.WriteString(t.DType.String())
	b.WriteByte('[')
	for i, d := range t.Shape {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(d.String())
	}
	b.WriteByte(']')
	return b.String()
}

// BatchAxis returns the axis of t that holds the plain batch symbol, or -1.
func (t Type) BatchAxis() int {
	for i, d := range t.Shape {
		if d.IsBatch() {
			return i
		}
	}
	return -1
}

// ShareAxis returns the axis of t that holds a replica's share of the batch, or -1.
func (t Type) ShareAxis() int {
	for i, d := range t.Shape {
		if d.IsShare() {
			return i
		}
	}
	return -1
}

// HasSymbol reports whether any dimension of t involves the batch symbol.
func (t Type) HasSymbol() bool {
	for _, d := range t.Shape {
		if d.IsSymbolic() {
			return true
		}
	}
	return false
}

// Elems returns the number of elements of t and true when every dimension
// is known; when the product overflows int64 it returns math.MaxInt64, true.
func (t Type) Elems() (int64, bool) {
	n := int64(1)
	for _, d := range t.Shape {
		v, ok := d.Value()
		if !ok {
			return 0, false
		}
		if v != 0 && n > math.MaxInt64/v {
			return math.MaxInt64, true
		}
		n *= v
	}
	return n, true
}

// Clone returns a copy of t that shares no memory with it.
func (t Type) Clone() Type {
	return Type{DType: t.DType, Shape: append([]Dim(nil), t.Shape...)}
}
