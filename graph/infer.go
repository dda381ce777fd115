package graph

import (
	"fmt"
	"slices"
)

// elementwise returns the type of an elementwise op on t: t itself, which
// must be numeric (floating-point when float is set).
func elementwise(float bool, t Type) (Type, error) {
	if float && !t.DType.IsFloat() {
		return Type{}, fmt.Errorf("expected a floating-point operand, found %s", t)
	}
	if !t.DType.IsNumeric() {
		return Type{}, fmt.Errorf("expected a numeric operand, found %s", t)
	}
	return t.Clone(), nil
}

// broadcast returns the numpy broadcast of a and b; a symbolic dimension
// broadcasts only against itself or 1.
func broadcast(a, b Type) (Type, error) {
	if a.DType != b.DType {
		return Type{}, fmt.Errorf("expected operands of one element type, found %s and %s", a, b)
	}
	if !a.DType.IsNumeric() {
		return Type{}, fmt.Errorf("expected numeric operands, found %s", a)
	}
	return broadcastShapes(a, b)
}

// broadcastShapes returns the numpy broadcast of the shapes of a and b,
// of a's element type, whatever the element types are.
func broadcastShapes(a, b Type) (Type, error) {
	r := max(a.Rank(), b.Rank())
	out := Type{DType: a.DType, Shape: make([]Dim, r)}
	for i := 0; i < r; i++ {
		da, db := Const(1), Const(1)
		if j := i - (r - a.Rank()); j >= 0 {
			da = a.Shape[j]
		}
		if j := i - (r - b.Rank()); j >= 0 {
			db = b.Shape[j]
		}
		switch {
		case da.Equal(db):
			out.Shape[i] = da
		case da.Sym == "" && da.Size == 1:
			out.Shape[i] = db
		case db.Sym == "" && db.Size == 1:
			out.Shape[i] = da
		case da.Sym != "" || db.Sym != "":
			return Type{}, fmt.Errorf("cannot broadcast %s with %s: dimension %s against %s (a symbolic dimension broadcasts only against itself or 1)", a, b, da, db)
		default:
			return Type{}, fmt.Errorf("cannot broadcast %s with %s: dimension %s against %s", a, b, da, db)
		}
	}
	return out, nil
}

// normAxis returns axis ax (negative counts from the end) in [0, rank).
func normAxis(ax int64, rank int) (int, error) {
	if ax < -int64(rank) || ax >= int64(rank) {
		if rank == 0 {
			return 0, fmt.Errorf("expected no axis for a scalar, found axis %d", ax)
		}
		return 0, fmt.Errorf("expected an axis in [%d, %d], found %d", -rank, rank-1, ax)
	}
	if ax < 0 {
		ax += int64(rank)
	}
	return int(ax), nil
}

// attrAxis returns the integer attribute name (def when absent) as an axis
// of a value of the given rank; its error names the attribute as name=value,
// so that the parser can point at it.
func attrAxis(as Attrs, name string, def int64, rank int) (int, error) {
	ax := as.integer(name, def)
	if _, err := normAxis(ax, rank); err != nil {
		if rank == 0 {
			return 0, fmt.Errorf("expected no %s for a scalar, found %s=%d", name, name, ax)
		}
		return 0, fmt.Errorf("expected %s in [%d, %d] for rank %d, found %s=%d", name, -rank, rank-1, rank, name, ax)
	}
	return normAxis(ax, rank)
}

// intsString spells a list of integers as the text format does: [1,2].
func intsString(v []int64) string {
	return Ints(v...).String()
}

// NormAxis returns n's integer attribute name as an axis in [0, rank).
func (n *Node) NormAxis(name string, rank int) (int, error) {
	v, ok := n.Attr(name)
	if !ok {
		return 0, fmt.Errorf("missing attribute %s", name)
	}
	return normAxis(v.Int, rank)
}

// ReduceAxes returns the sorted axes a reduction node reduces (all when
// axes is absent) for an operand of the given rank.
func (n *Node) ReduceAxes(rank int) ([]int, error) {
	v, ok := n.Attrs.Get("axes")
	if !ok {
		all := make([]int, rank)
		for i := range all {
			all[i] = i
		}
		return all, nil
	}
	var out []int
	for _, e := range v.List {
		ax, err := normAxis(e.Int, rank)
		if err != nil {
			if rank == 0 {
				return nil, fmt.Errorf("expected no axes for a scalar, found axes=%s", v)
			}
			return nil, fmt.Errorf("expected axes in [%d, %d] for rank %d, found axes=%s", -rank, rank-1, rank, v)
		}
		if slices.Contains(out, ax) {
			return nil, fmt.Errorf("expected distinct axes, found axis %d twice in axes=%s", ax, v)
		}
		out = append(out, ax)
	}
	slices.Sort(out)
	return out, nil
}

// The infer functions below return the type of node n from its operands'
// types a; the op table has checked the operand count and attribute kinds.

// inferReduce: sum, mean, max, min over axes (all when absent).
func inferReduce(n *Node, a []Type) (Type, error) {
	t := a[0]
	if !t.DType.IsNumeric() {
		return Type{}, fmt.Errorf("expected a numeric operand, found %s", t)
	}
	axes, err := n.ReduceAxes(t.Rank())
	if err != nil {
		return Type{}, err
	}
	keep := n.Attrs.boolean("keepdims")
	out := Type{DType: t.DType}
	for i, d := range t.Shape {
		switch {
		case !slices.Contains(axes, i):
			out.Shape = append(out.Shape, d)
		case keep:
			out.Shape = append(out.Shape, Const(1))
		}
	}
	if out.Shape == nil {
		out.Shape = []Dim{}
	}
	return out, nil
}

// boolean returns a bool attribute, false when absent.
func (as Attrs) boolean(name string) bool {
	v, ok := as.Get(name)
	return ok && v.Kind == AttrBool && v.Bool
}

// ints returns an integer-list attribute and whether it is present.
func (as Attrs) ints(name string) ([]int64, bool) {
	v, ok := as.Get(name)
	if !ok {
		return nil, false
	}
	out := make([]int64, len(v.List))
	for i, e := range v.List {
		out[i] = e.Int
	}
	return out, true
}

// inferMatmul: a[...,M,K] times b[K,P] or b[...,K,P].
func inferMatmul(n *Node, a []Type) (Type, error) {
	x, w := a[0], a[1]
	if x.DType != w.DType || !x.DType.IsNumeric() {
		return Type{}, fmt.Errorf("expected numeric operands of one element type, found %s and %s", x, w)
	}
	if x.Rank() < 2 {
		return Type{}, fmt.Errorf("expected a first operand of rank 2 or more, found %s", x)
	}
	if w.Rank() != 2 && w.Rank() != x.Rank() {
		return Type{}, fmt.Errorf("expected a second operand of rank 2 or %d, found %s", x.Rank(), w)
	}
	r := x.Rank()
	k, kw := x.Shape[r-1], w.Shape[w.Rank()-2]
	if !k.Equal(kw) {
		return Type{}, fmt.Errorf("expected a second operand with %s rows to contract with %s, found %s (%s rows)", k, x, w, kw)
	}
	if w.Rank() == r {
		for i := 0; i < r-2; i++ {
			if !x.Shape[i].Equal(w.Shape[i]) {
				return Type{}, fmt.Errorf("expected operands with the same leading dimensions, found %s and %s", x, w)
			}
		}
	}
	out := Type{DType: x.DType, Shape: append(slices.Clone(x.Shape[:r-1]), w.Shape[w.Rank()-1])}
	return out, nil
}

// inferSoftmax: softmax and log_softmax keep the type of a float operand.
func inferSoftmax(n *Node, a []Type) (Type, error) {
	if _, err := attrAxis(n.Attrs, "axis", -1, a[0].Rank()); err != nil {
		return Type{}, err
	}
	return elementwise(true, a[0])
}

// mono is an element count: coeff times the symbol sym (when set).
type mono struct {
	coeff int64
	sym   *Dim // the symbol, with Mul 1
}

// monoOf returns the element count of dims as a monomial.
func monoOf(dims []Dim) (mono, error) {
	m := mono{coeff: 1}
	for _, d := range dims {
		v := d.Size
		if d.Sym != "" {
			if m.sym != nil {
				return mono{}, fmt.Errorf("expected at most one symbolic dimension, found %s and %s", m.sym.SymName(), d.SymName())
			}
			s := d
			s.Mul = 1
			m.sym = &s
			v = d.Mul
		}
		if m.coeff = mulCheck(m.coeff, v); m.coeff < 0 {
			return mono{}, fmt.Errorf("element count overflows int64")
		}
	}
	return m, nil
}

// dim returns m as one dimension: a size, or the symbol times a size.
func (m mono) dim() Dim {
	if m.sym == nil {
		return Const(m.coeff)
	}
	d := *m.sym
	d.Mul = m.coeff
	return d
}

// equal reports whether m and o are the same count.
func (m mono) equal(o mono) bool {
	if m.coeff != o.coeff || (m.sym == nil) != (o.sym == nil) {
		return false
	}
	return m.sym == nil || m.sym.Equal(*o.sym)
}

// String spells m as a dimension: 20, N*20.
func (m mono) String() string { return m.dim().String() }

// inferReshape: the new shape, with its -1 solved, must hold as many
// elements as the operand; a symbol it names must be the operand's.
func inferReshape(n *Node, a []Type) (Type, error) {
	t := a[0]
	total, err := monoOf(t.Shape)
	if err != nil {
		return Type{}, err
	}
	spec, _ := n.Attrs.Get("shape")
	out := Type{DType: t.DType, Shape: make([]Dim, len(spec.List))}
	hole := -1
	for i, e := range spec.List {
		if e.Kind == AttrIdent {
			d, err := symDim(t, e)
			if err != nil {
				return Type{}, err
			}
			out.Shape[i] = d
			continue
		}
		switch {
		case e.Int == -1 && hole < 0:
			hole = i
		case e.Int == -1:
			return Type{}, fmt.Errorf("expected at most one -1 in shape, found %s", spec)
		case e.Int <= 0:
			return Type{}, fmt.Errorf("expected positive sizes or -1 in shape, found %d", e.Int)
		default:
			out.Shape[i] = Const(e.Int)
		}
	}
	known := make([]Dim, 0, len(out.Shape))
	for i, d := range out.Shape {
		if i != hole {
			known = append(known, d)
		}
	}
	km, err := monoOf(known)
	if err != nil {
		return Type{}, err
	}
	if hole >= 0 {
		rest := mono{coeff: 0}
		switch {
		case km.coeff == 0 || total.coeff%km.coeff != 0:
		case km.sym == nil:
			rest = mono{coeff: total.coeff / km.coeff, sym: total.sym}
		case total.sym != nil && km.sym.Equal(*total.sym):
			rest = mono{coeff: total.coeff / km.coeff}
		}
		if rest.coeff == 0 {
			return Type{}, fmt.Errorf("cannot reshape %s to %s: %s elements do not divide by %s", t, spec, total, km)
		}
		out.Shape[hole] = rest.dim()
		return out, nil
	}
	if !km.equal(total) {
		return Type{}, fmt.Errorf("cannot reshape %s (%s elements) to %s (%s elements)", t, total, spec, km)
	}
	return out, nil
}

// symDim returns the dimension a shape attribute's identifier e (N, N.0,
// N*20) stands for: t's symbol of that name times e's multiplier.
func symDim(t Type, e AttrValue) (Dim, error) {
	d, ok := findSym(t, e.Str)
	if !ok {
		return Dim{}, fmt.Errorf("shape names %s, which %s does not have", e.Str, t)
	}
	if e.Int < 1 {
		return Dim{}, fmt.Errorf("expected a positive multiplier, found %s", e)
	}
	d.Mul = e.Int
	return d, nil
}

// findSym returns the symbolic dim of t named name (as in N or N.0), with Mul 1.
func findSym(t Type, name string) (Dim, bool) {
	for _, d := range t.Shape {
		if d.Sym != "" && d.SymName() == name {
			d.Mul = 1
			return d, true
		}
	}
	return Dim{}, false
}

// inferTranspose: the operand's axes in the order perm gives.
func inferTranspose(n *Node, a []Type) (Type, error) {
	t := a[0]
	perm, _ := n.Attrs.ints("perm")
	if len(perm) != t.Rank() {
		return Type{}, fmt.Errorf("expected a permutation of %d axes for %s, found perm=%s", t.Rank(), t, intsString(perm))
	}
	out := Type{DType: t.DType, Shape: make([]Dim, len(perm))}
	seen := make([]bool, len(perm))
	for i, p := range perm {
		if p < 0 || p >= int64(len(perm)) || seen[p] {
			return Type{}, fmt.Errorf("expected a permutation of 0..%d, found perm=%s", len(perm)-1, intsString(perm))
		}
		seen[p] = true
		out.Shape[i] = t.Shape[p]
	}
	return out, nil
}

// inferFlatten: a matrix of the axes before axis by the axes from it.
func inferFlatten(n *Node, a []Type) (Type, error) {
	t := a[0]
	ax := n.Attrs.integer("axis", 1)
	if ax < 0 || ax > int64(t.Rank()) {
		return Type{}, fmt.Errorf("expected axis in [0, %d] for rank %d, found axis=%d", t.Rank(), t.Rank(), ax)
	}
	lo, err := monoOf(t.Shape[:ax])
	if err != nil {
		return Type{}, err
	}
	hi, err := monoOf(t.Shape[ax:])
	if err != nil {
		return Type{}, err
	}
	return Type{DType: t.DType, Shape: []Dim{lo.dim(), hi.dim()}}, nil
}

// inferConcat: operands alike but on axis, joined there.
func inferConcat(n *Node, a []Type) (Type, error) {
	first := a[0]
	ax, err := attrAxis(n.Attrs, "axis", 0, first.Rank())
	if err != nil {
		return Type{}, err
	}
	for _, t := range a[1:] {
		if t.DType != first.DType || t.Rank() != first.Rank() {
			return Type{}, fmt.Errorf("expected operands like %s, found %s", first, t)
		}
		for i := range t.Shape {
			if i != ax && !t.Shape[i].Equal(first.Shape[i]) {
				return Type{}, fmt.Errorf("expected operands that differ only on axis %d, found %s and %s", ax, first, t)
			}
		}
	}
	out := first.Clone()
	d, err := concatDims(a, ax)
	if err != nil {
		return Type{}, err
	}
	out.Shape[ax] = d
	return out, nil
}

// concatDims returns the joined size of axis ax: a sum of sizes, the whole
// batch from all its shares in order, or a multiple of the batch symbol.
func concatDims(a []Type, ax int) (Dim, error) {
	ds := make([]Dim, len(a))
	for i, t := range a {
		ds[i] = t.Shape[ax]
	}
	if ds[0].Sym == "" {
		var sum int64
		for _, d := range ds {
			if d.Sym != "" {
				return Dim{}, fmt.Errorf("cannot join %s and %s on axis %d", ds[0], d, ax)
			}
			if sum += d.Size; sum < 0 {
				return Dim{}, fmt.Errorf("element count overflows int64")
			}
		}
		return Const(sum), nil
	}
	// Every share of the batch, in order: the whole batch (times the
	// shares' common multiple, for a folded axis).
	if ds[0].Part >= 0 && ds[0].Parts == len(ds) {
		whole := Sym(ds[0].Sym, 0)
		whole.Mul = ds[0].Mul
		var bound int64
		for i, d := range ds {
			if d.Part != i || d.Sym != ds[0].Sym || d.Mul != ds[0].Mul || d.Parts != len(ds) {
				return Dim{}, fmt.Errorf("expected the shares %s.0 to %s.%d in order, found %s as operand %d", ds[0].Sym, ds[0].Sym, len(ds)-1, d, i)
			}
			bound += d.Bound
			if d.Bound == 0 {
				bound = -1 << 62
			}
		}
		if bound > 0 {
			whole.Bound = bound
		}
		return whole, nil
	}
	out := ds[0]
	out.Mul = 0
	for _, d := range ds {
		if d.Sym != ds[0].Sym || d.Part != ds[0].Part || d.Bound != ds[0].Bound {
			return Dim{}, fmt.Errorf("cannot join %s and %s on axis %d", ds[0], d, ax)
		}
		out.Mul += d.Mul
	}
	return out, nil
}

// inferSlice: [start, end) of a concrete axis, or share part of parts of
// the batch (checked against start and end when the batch is bound).
func inferSlice(n *Node, a []Type) (Type, error) {
	t := a[0]
	ax, err := attrAxis(n.Attrs, "axis", 0, t.Rank())
	if err != nil {
		return Type{}, err
	}
	d := t.Shape[ax]
	start, hasStart := n.Attrs.Get("start")
	end, hasEnd := n.Attrs.Get("end")
	part, hasPart := n.Attrs.Get("part")
	parts, hasParts := n.Attrs.Get("parts")
	if hasStart != hasEnd {
		return Type{}, fmt.Errorf("expected both start and end, found only one")
	}
	if hasPart != hasParts {
		return Type{}, fmt.Errorf("expected both part and parts, found only one")
	}
	if !hasStart && !hasPart {
		return Type{}, fmt.Errorf("expected start and end, or part and parts")
	}
	out := t.Clone()
	if hasPart {
		if !d.IsBatch() {
			return Type{}, fmt.Errorf("expected the batch symbol on axis %d for a share (part, parts), found %s", ax, d)
		}
		if parts.Int < 1 || part.Int < 0 || part.Int >= parts.Int {
			return Type{}, fmt.Errorf("expected 0 <= part < parts, found part=%d, parts=%d", part.Int, parts.Int)
		}
		if d.Bound > 0 && parts.Int > d.Bound {
			return Type{}, fmt.Errorf("expected at most %d parts for a batch of %d (no empty share), found parts=%d", d.Bound, d.Bound, parts.Int)
		}
		if parts.Int > 1<<20 {
			return Type{}, fmt.Errorf("expected at most %d parts, found %d", 1<<20, parts.Int)
		}
		share := Share(d.Sym, int(part.Int), int(parts.Int), 0)
		if d.Bound > 0 {
			policy := SplitPolicy(n.Attrs.ident("split", string(Balanced)))
			s, e := SplitBounds(d.Bound, int(parts.Int), int(part.Int), policy)
			if hasStart && (start.Int != s || end.Int != e) {
				return Type{}, fmt.Errorf("share %d of %d of a batch of %d split %s is [%d, %d), found start=%d, end=%d",
					part.Int, parts.Int, d.Bound, policy, s, e, start.Int, end.Int)
			}
			share.Bound = e - s
		} else if hasStart {
			return Type{}, fmt.Errorf("expected no start and end on a share of the unbound batch %s", d)
		}
		out.Shape[ax] = share
		return out, nil
	}
	size, ok := d.Value()
	if !ok {
		return Type{}, fmt.Errorf("cannot slice %s by start and end: its size is known only at run time", d)
	}
	if start.Int < 0 || start.Int >= end.Int || end.Int > size {
		return Type{}, fmt.Errorf("expected 0 <= start < end <= %d, found start=%d, end=%d", size, start.Int, end.Int)
	}
	out.Shape[ax] = Const(end.Int - start.Int)
	return out, nil
}

// integer returns an integer attribute, def when absent.
func (as Attrs) integer(name string, def int64) int64 {
	if v, ok := as.Get(name); ok && v.Kind == AttrInt {
		return v.Int
	}
	return def
}

// float returns a number attribute (an int widened), def when absent.
func (as Attrs) float(name string, def float64) float64 {
	if v, ok := as.Get(name); ok {
		if f, ok := v.number(); ok {
			return f
		}
	}
	return def
}

// number returns a float or int value as a float64.
func (a AttrValue) number() (float64, bool) {
	switch a.Kind {
	case AttrFloat:
		return a.Float, true
	case AttrInt:
		return float64(a.Int), true
	}
	return 0, false
}

// ident returns an identifier attribute, def when absent.
func (as Attrs) ident(name, def string) string {
	if v, ok := as.Get(name); ok && v.Kind == AttrIdent {
		return v.Str
	}
	return def
}

// inferDim: a scalar of dtype holding the size of one axis.
func inferDim(n *Node, a []Type) (Type, error) {
	if _, err := attrAxis(n.Attrs, "axis", 0, a[0].Rank()); err != nil {
		return Type{}, err
	}
	dt, _ := ParseDType(n.Attrs.ident("dtype", "f32"))
	return Type{DType: dt, Shape: []Dim{}}, nil
}

// pair returns a window attribute of 2 values (or 4 when allow4: pads as
// top, left, bottom, right), def when absent.
func pair(as Attrs, name string, def [2]int64, allow4 bool) ([]int64, error) {
	v, ok := as.ints(name)
	if !ok {
		return def[:], nil
	}
	if len(v) != 2 && !(allow4 && len(v) == 4) {
		want := "2 values"
		if allow4 {
			want = "2 or 4 values"
		}
		return nil, fmt.Errorf("expected %s for %s, found %s=%s", want, name, name, intsString(v))
	}
	return v, nil
}

// convOut returns the output size of a window op along one spatial axis.
// Its arguments are positive (pads non-negative); sizes that overflow int64
// are refused rather than wrapped.
func convOut(in, k, stride, padLo, padHi, dil int64, axis string) (int64, error) {
	eff := mulCheck(dil, k-1)
	padded := in
	for _, p := range []int64{padLo, padHi} {
		if padded < 0 || p > 1<<63-1-padded {
			padded = -1
		} else {
			padded += p
		}
	}
	if eff < 0 || eff == 1<<63-1 || padded < 0 {
		return 0, fmt.Errorf("expected a window and padding whose %s size fits in int64, found kernel %d, dilation %d, padding %d+%d", axis, k, dil, padLo, padHi)
	}
	eff++
	span := padded - eff
	if span < 0 {
		return 0, fmt.Errorf("window of %d (dilated) does not fit %s size %d plus padding %d+%d", eff, axis, in, padLo, padHi)
	}
	return span/stride + 1, nil
}

// window is the geometry of a conv or pool over the two spatial axes.
type window struct {
	kernel, stride, pad, dil []int64
}

// out returns the output height and width of the window over x[N,C,H,W].
func (w window) out(x Type) ([]Dim, error) {
	for i, v := range w.kernel {
		if v < 1 || w.stride[i] < 1 || w.dil[i] < 1 {
			return nil, fmt.Errorf("expected positive kernel, stride and dilation, found kernel=%s, stride=%s, dilation=%s", intsString(w.kernel), intsString(w.stride), intsString(w.dil))
		}
	}
	for _, p := range w.pad {
		if p < 0 {
			return nil, fmt.Errorf("expected non-negative padding, found pad=%s", intsString(w.pad))
		}
	}
	pad := w.pad
	if len(pad) == 2 {
		pad = []int64{pad[0], pad[1], pad[0], pad[1]}
	}
	out := make([]Dim, 2)
	for i, name := range []string{"height", "width"} {
		d := x.Shape[2+i]
		if d.Sym != "" {
			return nil, fmt.Errorf("expected a concrete %s, found %s", name, d)
		}
		v, err := convOut(d.Size, w.kernel[i], w.stride[i], pad[i], pad[i+2], w.dil[i], name)
		if err != nil {
			return nil, err
		}
		out[i] = Const(v)
	}
	return out, nil
}

// inferConv: x[N,C,H,W] with w[O,C/groups,KH,KW] and an optional b[O].
func inferConv(n *Node, a []Type) (Type, error) {
	x, w := a[0], a[1]
	if !x.DType.IsFloat() || x.DType != w.DType {
		return Type{}, fmt.Errorf("expected floating-point operands of one element type, found %s and %s", x, w)
	}
	if x.Rank() != 4 || w.Rank() != 4 {
		return Type{}, fmt.Errorf("expected x[N,C,H,W] and w[O,C/groups,KH,KW], found %s and %s", x, w)
	}
	groups := n.Attrs.integer("groups", 1)
	c, o := x.Shape[1], w.Shape[0]
	if c.Sym != "" || o.Sym != "" || w.Shape[2].Sym != "" || w.Shape[3].Sym != "" || w.Shape[1].Sym != "" {
		return Type{}, fmt.Errorf("expected concrete channels and kernel, found %s and %s", x, w)
	}
	if groups < 1 || c.Size%groups != 0 || o.Size%groups != 0 {
		return Type{}, fmt.Errorf("expected groups dividing %d input and %d output channels, found groups=%d", c.Size, o.Size, groups)
	}
	if w.Shape[1].Size != c.Size/groups {
		return Type{}, fmt.Errorf("expected w[%d,%d,KH,KW] for %d channels in %d groups, found %s", o.Size, c.Size/groups, c.Size, groups, w)
	}
	if len(a) == 3 && (a[2].DType != x.DType || a[2].Rank() != 1 || !a[2].Shape[0].Equal(o)) {
		return Type{}, fmt.Errorf("expected bias %s[%d], found %s", x.DType, o.Size, a[2])
	}
	stride, err := pair(n.Attrs, "stride", [2]int64{1, 1}, false)
	if err != nil {
		return Type{}, err
	}
	pad, err := pair(n.Attrs, "pad", [2]int64{0, 0}, true)
	if err != nil {
		return Type{}, err
	}
	dil, err := pair(n.Attrs, "dilation", [2]int64{1, 1}, false)
	if err != nil {
		return Type{}, err
	}
	hw, err := window{[]int64{w.Shape[2].Size, w.Shape[3].Size}, stride, pad, dil}.out(x)
	if err != nil {
		return Type{}, err
	}
	return Type{DType: x.DType, Shape: []Dim{x.Shape[0], o, hw[0], hw[1]}}, nil
}

// inferPool: maxpool2d and avgpool2d over x[N,C,H,W].
func inferPool(n *Node, a []Type) (Type, error) {
	x := a[0]
	if !x.DType.IsFloat() || x.Rank() != 4 {
		return Type{}, fmt.Errorf("expected a floating-point x[N,C,H,W], found %s", x)
	}
	kernel, err := pair(n.Attrs, "kernel", [2]int64{}, false)
	if err != nil {
		return Type{}, err
	}
	if kernel[0] < 1 || kernel[1] < 1 {
		return Type{}, fmt.Errorf("expected a positive kernel, found kernel=%s", intsString(kernel))
	}
	stride, err := pair(n.Attrs, "stride", [2]int64{kernel[0], kernel[1]}, false)
	if err != nil {
		return Type{}, err
	}
	pad, err := pair(n.Attrs, "pad", [2]int64{0, 0}, true)
	if err != nil {
		return Type{}, err
	}
	for i, p := range pad {
		if k := kernel[i%2]; p >= k {
			return Type{}, fmt.Errorf("expected padding smaller than the kernel %s, found pad=%s", intsString(kernel), intsString(pad))
		}
	}
	hw, err := window{kernel, stride, pad, []int64{1, 1}}.out(x)
	if err != nil {
		return Type{}, err
	}
	return Type{DType: x.DType, Shape: []Dim{x.Shape[0], x.Shape[1], hw[0], hw[1]}}, nil
}

// inferBatchnorm: x, and four per-channel vectors the size of axis.
func inferBatchnorm(n *Node, a []Type) (Type, error) {
	x := a[0]
	if !x.DType.IsFloat() {
		return Type{}, fmt.Errorf("expected a floating-point x, found %s", x)
	}
	ax, err := attrAxis(n.Attrs, "axis", 1, x.Rank())
	if err != nil {
		return Type{}, err
	}
	c := x.Shape[ax]
	names := []string{"scale", "bias", "mean", "var"}
	for i, t := range a[1:] {
		if t.DType != x.DType || t.Rank() != 1 || !t.Shape[0].Equal(c) {
			return Type{}, fmt.Errorf("expected %s of type %s[%s], found %s", names[i], x.DType, c, t)
		}
	}
	if eps := n.Attrs.float("epsilon", 1e-5); eps < 0 {
		return Type{}, fmt.Errorf("expected epsilon >= 0, found %s", formatFloat(eps))
	}
	return x.Clone(), nil
}

// inferDropout: a float x and a rate in [0, 1).
func inferDropout(n *Node, a []Type) (Type, error) {
	if r := n.Attrs.float("rate", 0.5); !(r >= 0 && r < 1) {
		return Type{}, fmt.Errorf("expected 0 <= rate < 1, found rate=%s", formatFloat(r))
	}
	return elementwise(true, a[0])
}
