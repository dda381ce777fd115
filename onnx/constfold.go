package onnx

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"

	"gorgonia.org/tensor"

	"multigpu/graph"
)

// Constant folding. When every input of a node is known at import time
// (initializers, Constant outputs, inputs bound by Options.Constants,
// shapes, and what earlier folds computed), the importer computes the
// node in Go and its outputs become known values: they leave no trace in
// the graph unless an op reads them as data, when they materialize as
// consts or params. Integers are known up to the batch: an element is a
// linear form k*N + c in the batch symbol N, so that PyTorch's shape
// arithmetic (x.size(0) * 8 / 2) stays exact. A result the IR cannot
// express (N+1 as a size, N*N, a comparison of N with 5) poisons the
// node's outputs with the reason, which is an error only where the value
// is used.

// maxFoldElems bounds the tensors the importer folds (inputs and results).
const maxFoldElems = 1 << 20

// lin is an integer known at import time up to the batch N: k*N + c.
type lin struct{ k, c int64 }

// String spells l with the batch as N: 3, N, N*4, N*2+1, -N+3.
func (l lin) String() string {
	if l.k == 0 {
		return strconv.FormatInt(l.c, 10)
	}
	s := "N"
	switch {
	case l.k == -1:
		s = "-N"
	case l.k < 0:
		s = "-N*" + strconv.FormatInt(-l.k, 10)
	case l.k != 1:
		s = "N*" + strconv.FormatInt(l.k, 10)
	}
	switch {
	case l.c > 0:
		s += "+" + strconv.FormatInt(l.c, 10)
	case l.c < 0:
		s += strconv.FormatInt(l.c, 10)
	}
	return s
}

// folded is a tensor whose elements are known at import time.
type folded struct {
	dt    graph.DType
	shape []int
	ints  []lin     // I32, I64 and Bool (0 or 1) elements
	fl    []float64 // F32 and F64 elements (F32 ones rounded to float32)
	// src is an IR node that carries the batch and srcAx its axis whose
	// size the batch terms of the elements came from: ConstantOfShape and
	// Expand of a shape with the batch build on it.
	src   *graph.Node
	srcAx int
	// why, for a tensor that depends on the batch and is not a vector of
	// sizes the IR can write, names the node that made it so.
	why string
}

// errSkip leaves a node to its converter.
var errSkip = errors.New("not folded")

// symError is a result that depends on the batch in a way the IR cannot
// express: it poisons the node's outputs.
type symError struct{ msg string }

func (e *symError) Error() string { return e.msg }

func symErrf(format string, args ...any) error {
	return &symError{fmt.Sprintf(format, args...)}
}

func newFolded(dt graph.DType, shape []int) *folded {
	n := prod(shape)
	t := &folded{dt: dt, shape: shape}
	if dt.IsFloat() {
		t.fl = make([]float64, n)
	} else {
		t.ints = make([]lin, n)
	}
	return t
}

func (t *folded) size() int {
	if t.dt.IsFloat() {
		return len(t.fl)
	}
	return len(t.ints)
}

// symbolic reports whether an element depends on the batch.
func (t *folded) symbolic() bool {
	return slices.ContainsFunc(t.ints, func(l lin) bool { return l.k != 0 })
}

// withSrc copies the batch's source from the first input that has one.
func (t *folded) withSrc(in ...*folded) *folded {
	for _, s := range in {
		if s != nil && s.src != nil {
			t.src, t.srcAx = s.src, s.srcAx
			break
		}
	}
	return t
}

// clone returns a copy of t.
func (t *folded) clone() *folded {
	out := *t
	out.fl, out.ints = slices.Clone(t.fl), slices.Clone(t.ints)
	return &out
}

// constInts returns the elements of an integer tensor that does not depend
// on the batch; what names it in errors.
func (t *folded) constInts(what string) ([]int64, error) {
	if t.dt.IsFloat() || t.dt == graph.Bool {
		return nil, fmt.Errorf("%s: expected integers, found %s", what, t.dt)
	}
	out := make([]int64, len(t.ints))
	for i, l := range t.ints {
		if l.k != 0 {
			return nil, symErrf("%s holds %s, which depends on the batch size", what, l)
		}
		out[i] = l.c
	}
	return out, nil
}

// String spells t's elements (at most 8).
func (t *folded) String() string {
	n := t.size()
	parts := make([]string, 0, min(n, 9))
	for i := range min(n, 8) {
		if t.dt.IsFloat() {
			parts = append(parts, strconv.FormatFloat(t.fl[i], 'g', -1, 64))
		} else {
			parts = append(parts, t.ints[i].String())
		}
	}
	if n > 8 {
		parts = append(parts, "...")
	}
	if len(t.shape) == 0 && n == 1 {
		return parts[0]
	}
	return fmt.Sprint(parts)
}

// foldedOf returns what is known of v at import time, or nil.
func foldedOf(v *value) *folded {
	switch {
	case v.fold != nil:
		return v.fold
	case v.vec != nil:
		t := &folded{dt: v.vec.dtype, src: v.vec.src, srcAx: v.vec.srcAx}
		if !v.vec.scalar {
			t.shape = []int{len(v.vec.elems)}
		}
		for _, d := range v.vec.elems {
			if d.Sym != "" {
				t.ints = append(t.ints, lin{k: d.Mul})
			} else {
				t.ints = append(t.ints, lin{c: d.Size})
			}
		}
		return t
	case v.data != nil:
		return foldedDense(v.data)
	}
	return nil
}

// foldedDense returns d as a folded tensor, or nil when it is too large.
func foldedDense(d *tensor.Dense) *folded {
	t := denseType(d)
	if n, _ := t.Elems(); n > maxFoldElems {
		return nil
	}
	shape := make([]int, t.Rank())
	for i, s := range t.Shape {
		shape[i] = int(s.Size)
	}
	out := &folded{dt: t.DType, shape: shape}
	switch v := d.Data().(type) {
	case []int64:
		for _, e := range v {
			out.ints = append(out.ints, lin{c: e})
		}
	case int64:
		out.ints = []lin{{c: v}}
	default:
		if t.DType.IsFloat() {
			out.fl = denseFloats(d)
		} else {
			for _, f := range denseFloats(d) {
				out.ints = append(out.ints, lin{c: int64(f)})
			}
		}
	}
	return out
}

// dense returns t as a tensor; t must not depend on the batch.
func (t *folded) dense() *tensor.Dense {
	var back any
	n := t.size()
	switch t.dt {
	case graph.F32:
		b := make([]float32, n)
		for i, f := range t.fl {
			b[i] = float32(f)
		}
		back = b
	case graph.F64:
		back = slices.Clone(t.fl)
	case graph.I32:
		b := make([]int32, n)
		for i, l := range t.ints {
			b[i] = int32(l.c)
		}
		back = b
	case graph.I64:
		b := make([]int64, n)
		for i, l := range t.ints {
			b[i] = l.c
		}
		back = b
	case graph.Bool:
		b := make([]bool, n)
		for i, l := range t.ints {
			b[i] = l.c != 0
		}
		back = b
	}
	if len(t.shape) == 0 {
		switch b := back.(type) {
		case []float32:
			return tensor.New(tensor.FromScalar(b[0]))
		case []float64:
			return tensor.New(tensor.FromScalar(b[0]))
		case []int32:
			return tensor.New(tensor.FromScalar(b[0]))
		case []int64:
			return tensor.New(tensor.FromScalar(b[0]))
		case []bool:
			return tensor.New(tensor.FromScalar(b[0]))
		}
	}
	return tensor.New(tensor.WithShape(t.shape...), tensor.WithBacking(back))
}

// vec returns t as a folded shape vector with the batch dimension b, or
// nil when its elements are not all sizes the IR can write (a constant,
// or b times a positive integer).
func (t *folded) vec(b graph.Dim) *intVec {
	if len(t.shape) > 1 || t.dt != graph.I64 && t.dt != graph.I32 || len(t.ints) > maxVecElems || b.Sym == "" {
		return nil
	}
	out := &intVec{scalar: len(t.shape) == 0, dtype: t.dt, src: t.src, srcAx: t.srcAx}
	for _, l := range t.ints {
		switch {
		case l.k == 0:
			out.elems = append(out.elems, graph.Const(l.c))
		case l.k > 0 && l.c == 0:
			d := b
			d.Mul = l.k
			out.elems = append(out.elems, d)
		default:
			return nil
		}
	}
	return out
}

// setFolded binds output k to a folded tensor.
func (c *nodeCtx) setFolded(k int, t *folded) {
	if k >= len(c.n.outputs) || c.n.outputs[k] == "" {
		return
	}
	v := c.im.values[c.n.outputs[k]]
	c.outs[k] = true
	if t.size() == 0 {
		v.fold = t
		return
	}
	if !t.symbolic() {
		v.data = t.dense()
		return
	}
	v.fold = t
	if vec := t.vec(c.im.batch); vec != nil {
		v.vec = vec
		if !vec.symbolic() {
			v.data, _ = vec.dense()
		}
	}
}

// foldFn computes one op on folded inputs (nil for an absent optional
// input) and returns its outputs. It returns errSkip to leave the node to
// its converter, a *symError when the result depends on the batch in a way
// the IR cannot express, or another error for a malformed node.
type foldFn func(c *nodeCtx, in []*folded) ([]*folded, error)

func linAdd(a, b lin) (lin, error) { return lin{a.k + b.k, a.c + b.c}, nil }
func linSub(a, b lin) (lin, error) { return lin{a.k - b.k, a.c - b.c}, nil }
func linMax(a, b lin) (lin, error) { return linPick(a, b, true) }
func linMin(a, b lin) (lin, error) { return linPick(a, b, false) }
func linNeg(a lin) (lin, error)    { return lin{-a.k, -a.c}, nil }

func fAdd(a, b float64) float64 { return a + b }
func fSub(a, b float64) float64 { return a - b }
func fMul(a, b float64) float64 { return a * b }
func fDiv(a, b float64) float64 { return a / b }

// foldTable lists the ops the importer folds when their inputs are known,
// one small function each.
var foldTable = map[string]foldFn{
	"Add": arith(linAdd, fAdd),
	"Sub": arith(linSub, fSub),
	"Mul": arith(linMul, fMul),
	"Div": arith(linDiv, fDiv),
	"Pow": foldPow,
	"Mod": foldMod,
	"Max": variadicFold(linMax, math.Max),
	"Min": variadicFold(linMin, math.Min),
	"Sum": variadicFold(linAdd, fAdd),

	"Equal":          compare("=", func(a, b float64) bool { return a == b }),
	"Less":           compare("<", func(a, b float64) bool { return a < b }),
	"Greater":        compare(">", func(a, b float64) bool { return a > b }),
	"LessOrEqual":    compare("<=", func(a, b float64) bool { return a <= b }),
	"GreaterOrEqual": compare(">=", func(a, b float64) bool { return a >= b }),
	"And":            logic(func(a, b bool) bool { return a && b }),
	"Or":             logic(func(a, b bool) bool { return a || b }),
	"Xor":            logic(func(a, b bool) bool { return a != b }),
	"Not":            foldNot,
	"Where":          foldWhere,

	"Neg":        unaryFold(linNeg, func(a float64) float64 { return -a }),
	"Abs":        unaryFold(linAbs, math.Abs),
	"Sqrt":       unaryFold(nil, math.Sqrt),
	"Floor":      unaryFold(nil, math.Floor),
	"Ceil":       unaryFold(nil, math.Ceil),
	"Reciprocal": unaryFold(nil, func(a float64) float64 { return 1 / a }),

	"Cast":            foldCast,
	"CastLike":        foldCast,
	"Shape":           foldShapeOf,
	"Size":            foldSizeOf,
	"Reshape":         foldReshape,
	"Flatten":         foldFlatten,
	"Transpose":       foldTranspose,
	"Unsqueeze":       foldUnsqueeze,
	"Squeeze":         foldSqueeze,
	"Concat":          foldConcat,
	"Slice":           foldSlice,
	"Gather":          foldGather,
	"Tile":            foldTile,
	"Expand":          foldExpand,
	"ConstantOfShape": foldConstantOfShape,
	"Range":           foldRange,
	"ScatterND":       foldScatterND,
	"Trilu":           foldTrilu,
	"ReduceSum":       reduceFold(linAdd, fAdd, 13),
	"ReduceProd":      reduceFold(linMul, fMul, 18),
	"ReduceMax":       reduceFold(linMax, math.Max, 18),
	"ReduceMin":       reduceFold(linMin, math.Min, 18),
}

// foldConst computes c's node at import time when its op is in foldTable
// and every input it is given is known. It reports whether it did.
func (c *nodeCtx) foldConst() (bool, error) {
	fn := foldTable[c.n.opType]
	if fn == nil {
		return false, nil
	}
	in := make([]*folded, len(c.n.inputs))
	for i := range c.n.inputs {
		if !c.hasIn(i) {
			continue
		}
		v, err := c.lookup(i)
		if err != nil {
			return false, nil // the converter reports it
		}
		if _, ok := c.im.perSample[v.onnx]; ok {
			return false, nil // an input carrying the batch (persample.go)
		}
		if isWeight(v) {
			return false, nil
		}
		if in[i] = foldedOf(v); in[i] == nil {
			return false, nil
		}
	}
	if len(in) == 0 || in[0] == nil && c.n.opType != "Range" {
		return false, nil
	}
	outs, err := fn(c, in)
	var se *symError
	switch {
	case errors.Is(err, errSkip):
		return false, nil
	case errors.As(err, &se):
		for k, o := range c.n.outputs {
			if o != "" {
				c.im.values[o].poison = fmt.Sprintf("node %s (%s) computes it at import time, and %s", c.label(), c.n.opType, se.msg)
				c.outs[k] = true
			}
		}
		return true, nil
	case err != nil:
		return false, err
	}
	for _, t := range outs {
		if t.size() > maxFoldElems {
			return false, nil
		}
	}
	for k, t := range outs {
		if t.size() == 0 {
			// Folds may go on (a Swin mask scatters an empty slice), but
			// the IR has no empty tensors.
			t.why = fmt.Sprintf("node %s (%s) computed an empty tensor (shape %v), which the IR cannot hold", c.label(), c.n.opType, t.shape)
		} else if t.symbolic() && t.vec(c.im.batch) == nil {
			t.why = fmt.Sprintf("node %s (%s) computed %s, which is not a vector of sizes the IR can express (each a constant or the batch N times a positive integer)", c.label(), c.n.opType, t)
			for _, x := range in {
				if x != nil && x.why != "" {
					t.why = x.why
					break
				}
			}
		}
		c.setFolded(k, t)
	}
	return true, nil
}

// isWeight reports whether v is a floating-point initializer larger than a
// const: a weight, which stays a param of its own (a trainer updates it,
// and a folded copy would be a second, untied param).
func isWeight(v *value) bool {
	if !v.init || v.data == nil {
		return false
	}
	t := denseType(v.data)
	n, _ := t.Elems()
	return t.DType.IsFloat() && n > maxConstElems
}

// foldedErr says why a value folded at import time, which depends on the
// batch, cannot be used as data.
func foldedErr(t *folded) string {
	if t.why != "" {
		return t.why
	}
	return fmt.Sprintf("its value (%s) depends on the batch size, which is known only at run time", t)
}

// roundTo rounds f to the precision of dt.
func roundTo(dt graph.DType, f float64) float64 {
	if dt == graph.F32 {
		return float64(float32(f))
	}
	return f
}

// wrap keeps an integer constant in the range of dt, as the run-time
// arithmetic of that type would.
func wrap(dt graph.DType, l lin) lin {
	if dt == graph.I32 && l.k == 0 {
		l.c = int64(int32(l.c))
	}
	return l
}

func prod(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// broadcastShapes applies numpy's broadcasting to shapes.
func broadcastShapes(shapes ...[]int) ([]int, error) {
	r := 0
	for _, s := range shapes {
		r = max(r, len(s))
	}
	out := make([]int, r)
	for i := range out {
		out[i] = 1
	}
	for _, s := range shapes {
		for i, d := range s {
			j := r - len(s) + i
			switch {
			case d == out[j] || d == 1:
			case out[j] == 1:
				out[j] = d
			default:
				return nil, fmt.Errorf("shapes %v do not broadcast", shapes)
			}
		}
	}
	return out, nil
}

// strides returns the row-major strides of shape.
func strides(shape []int) []int {
	s := make([]int, len(shape))
	acc := 1
	for i := len(shape) - 1; i >= 0; i-- {
		s[i] = acc
		acc *= shape[i]
	}
	return s
}

// gatherIndex walks every element of a tensor of shape out, in order, and
// returns for each the flat index into a source that at computes from the
// element's position.
func gatherIndex(out []int, at func(pos []int) int) []int {
	n := prod(out)
	idx := make([]int, 0, n)
	pos := make([]int, len(out))
	for range n {
		idx = append(idx, at(pos))
		for a := len(out) - 1; a >= 0; a-- {
			pos[a]++
			if pos[a] < out[a] {
				break
			}
			pos[a] = 0
		}
	}
	return idx
}

// broadcastIndex returns, for each element of a tensor of shape out, the
// index of the element of a tensor of shape in that broadcasts to it.
func broadcastIndex(out, in []int) []int {
	st := strides(in)
	off := len(out) - len(in)
	return gatherIndex(out, func(pos []int) int {
		e := 0
		for i, d := range in {
			if d != 1 {
				e += pos[off+i] * st[i]
			}
		}
		return e
	})
}

// zip broadcasts ts against each other and calls f with the index of each
// one's element, for every element of the result; it returns the result's
// shape.
func zip(ts []*folded, f func(idx []int) error) ([]int, error) {
	shapes := make([][]int, len(ts))
	for i, t := range ts {
		shapes[i] = t.shape
	}
	shape, err := broadcastShapes(shapes...)
	if err != nil {
		return nil, err
	}
	n := prod(shape)
	if n > maxFoldElems {
		return nil, errSkip
	}
	maps := make([][]int, len(ts))
	for i, t := range ts {
		maps[i] = broadcastIndex(shape, t.shape)
	}
	idx := make([]int, len(ts))
	for e := range n {
		for i := range ts {
			idx[i] = maps[i][e]
		}
		if err := f(idx); err != nil {
			return nil, err
		}
	}
	return shape, nil
}

// linMul multiplies; the product of two batch-dependent values is refused.
func linMul(a, b lin) (lin, error) {
	switch {
	case a.k == 0:
		return lin{a.c * b.k, a.c * b.c}, nil
	case b.k == 0:
		return lin{a.k * b.c, a.c * b.c}, nil
	}
	return lin{}, symErrf("%s * %s is not a size the IR can express (a constant or the batch N times an integer)", a, b)
}

// linDiv divides integers, truncating toward zero as ONNX Runtime and
// ONNX's reference implementation do (the same as floor division for the
// non-negative sizes of shape arithmetic).
func linDiv(a, b lin) (lin, error) {
	switch {
	case b.k == 0 && b.c == 0:
		return lin{}, fmt.Errorf("integer division by zero")
	case b.k != 0:
		if a.c == 0 && b.c == 0 {
			return lin{c: a.k / b.k}, nil
		}
	case a.k == 0:
		return lin{c: a.c / b.c}, nil
	case a.k%b.c == 0 && a.c%b.c == 0:
		return lin{a.k / b.c, a.c / b.c}, nil
	}
	return lin{}, symErrf("%s / %s is not exact for every batch size N, so it is not a size the IR can express", a, b)
}

// imod is the integer remainder: with the sign of the divisor (Python's %,
// ONNX's fmod=0) or of the dividend (C's fmod, fmod=1).
func imod(a, b int64, fmod bool) int64 {
	m := a % b
	if !fmod && m != 0 && (m < 0) != (b < 0) {
		m += b
	}
	return m
}

// linPick returns the larger (or smaller) of a and b, when it is the same
// for every batch size.
func linPick(a, b lin, larger bool) (lin, error) {
	less, err := linSign(lin{a.k - b.k, a.c - b.c}, "<")
	if err != nil {
		return lin{}, symErrf("which of %s and %s is larger depends on the batch size", a, b)
	}
	if less == larger {
		return b, nil
	}
	return a, nil
}

// linAbs returns |a| when its sign does not depend on the batch size.
func linAbs(a lin) (lin, error) {
	switch {
	case a.k >= 0 && a.c >= 0:
		return a, nil
	case a.k <= 0 && a.c <= 0:
		return lin{-a.k, -a.c}, nil
	}
	return lin{}, symErrf("the sign of %s depends on the batch size", a)
}

// linSign decides d op 0 for every batch size N >= 1, where d = k*N + c
// is the difference of two compared values.
func linSign(d lin, op string) (bool, error) {
	if d.k == 0 {
		switch op {
		case "=":
			return d.c == 0, nil
		case "<":
			return d.c < 0, nil
		case ">":
			return d.c > 0, nil
		case "<=":
			return d.c <= 0, nil
		}
		return d.c >= 0, nil
	}
	if d.k < 0 {
		// -d op' 0, the comparison turned around.
		flip := map[string]string{"=": "=", "<": ">", ">": "<", "<=": ">=", ">=": "<="}
		return linSign(lin{-d.k, -d.c}, flip[op])
	}
	// k > 0: d grows with N, from k + c at N = 1.
	low := d.k + d.c
	switch op {
	case "=":
		if low > 0 || (-d.c)%d.k != 0 {
			return false, nil
		}
	case "<":
		if low >= 0 {
			return false, nil
		}
	case "<=":
		if low > 0 {
			return false, nil
		}
	case ">":
		if low > 0 {
			return true, nil
		}
	case ">=":
		if low >= 0 {
			return true, nil
		}
	}
	return false, symErrf("whether %s %s 0 holds depends on the batch size N", d, op)
}

// arith folds a binary arithmetic op, broadcasting.
func arith(fi func(a, b lin) (lin, error), ff func(a, b float64) float64) foldFn {
	return func(c *nodeCtx, in []*folded) ([]*folded, error) {
		if len(in) != 2 || in[1] == nil || in[0].dt != in[1].dt || in[0].dt == graph.Bool {
			return nil, errSkip
		}
		a, b := in[0], in[1]
		out := &folded{dt: a.dt}
		var err error
		out.shape, err = zip(in, func(idx []int) error {
			if a.dt.IsFloat() {
				out.fl = append(out.fl, roundTo(a.dt, ff(a.fl[idx[0]], b.fl[idx[1]])))
				return nil
			}
			l, err := fi(a.ints[idx[0]], b.ints[idx[1]])
			out.ints = append(out.ints, wrap(a.dt, l))
			return err
		})
		if err != nil {
			return nil, err
		}
		return []*folded{out.withSrc(a, b)}, nil
	}
}

// variadicFold folds Max, Min and Sum of any number of inputs.
func variadicFold(fi func(a, b lin) (lin, error), ff func(a, b float64) float64) foldFn {
	bin := arith(fi, ff)
	return func(c *nodeCtx, in []*folded) ([]*folded, error) {
		if slices.Contains(in, nil) {
			return nil, errSkip
		}
		acc := in[0]
		for _, t := range in[1:] {
			out, err := bin(c, []*folded{acc, t})
			if err != nil {
				return nil, err
			}
			acc = out[0]
		}
		return []*folded{acc}, nil
	}
}

func foldPow(c *nodeCtx, in []*folded) ([]*folded, error) {
	if len(in) != 2 || in[1] == nil || !in[0].dt.IsFloat() || !in[1].dt.IsFloat() {
		return nil, errSkip
	}
	a, b := in[0], in[1]
	out := &folded{dt: a.dt}
	var err error
	out.shape, err = zip(in, func(idx []int) error {
		out.fl = append(out.fl, roundTo(a.dt, math.Pow(a.fl[idx[0]], b.fl[idx[1]])))
		return nil
	})
	return []*folded{out}, err
}

func foldMod(c *nodeCtx, in []*folded) ([]*folded, error) {
	fm, err := c.flag("fmod", false)
	if err != nil {
		return nil, err
	}
	if len(in) != 2 || in[1] == nil || in[0].dt != in[1].dt || in[0].dt == graph.Bool {
		return nil, errSkip
	}
	a, b := in[0], in[1]
	if a.dt.IsFloat() && !fm {
		return nil, fmt.Errorf("Mod of floating-point values needs fmod=1")
	}
	out := &folded{dt: a.dt}
	out.shape, err = zip(in, func(idx []int) error {
		if a.dt.IsFloat() {
			out.fl = append(out.fl, roundTo(a.dt, math.Mod(a.fl[idx[0]], b.fl[idx[1]])))
			return nil
		}
		x, y := a.ints[idx[0]], b.ints[idx[1]]
		switch {
		case y.k == 0 && y.c == 0:
			return fmt.Errorf("integer modulo by zero")
		case y.k == 0 && x.k%y.c == 0 && (!fm || x.k == 0 || x.k > 0 && x.c >= 0):
			// k*N is a multiple of y: the remainder is that of c.
			out.ints = append(out.ints, lin{c: imod(x.c, y.c, fm)})
		case y.k != 0 && x.c == 0 && y.c == 0 && x.k%y.k == 0:
			out.ints = append(out.ints, lin{})
		default:
			return symErrf("%s mod %s depends on the batch size N", x, y)
		}
		return nil
	})
	return []*folded{out.withSrc(a, b)}, err
}

// compare folds a comparison: on integers, by deciding op on their
// difference for every batch size.
func compare(op string, ff func(a, b float64) bool) foldFn {
	return func(c *nodeCtx, in []*folded) ([]*folded, error) {
		if len(in) != 2 || in[1] == nil || in[0].dt != in[1].dt {
			return nil, errSkip
		}
		a, b := in[0], in[1]
		out := &folded{dt: graph.Bool}
		var err error
		out.shape, err = zip(in, func(idx []int) error {
			var r bool
			if a.dt.IsFloat() {
				r = ff(a.fl[idx[0]], b.fl[idx[1]])
			} else {
				x, y := a.ints[idx[0]], b.ints[idx[1]]
				var err error
				if r, err = linSign(lin{x.k - y.k, x.c - y.c}, op); err != nil {
					return symErrf("%s %s %s is not decided at import time: it depends on the batch size N", x, op, y)
				}
			}
			out.ints = append(out.ints, lin{c: b2i(r)})
			return nil
		})
		return []*folded{out}, err
	}
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// logic folds And, Or and Xor of bools.
func logic(f func(a, b bool) bool) foldFn {
	return func(c *nodeCtx, in []*folded) ([]*folded, error) {
		if len(in) != 2 || in[1] == nil || in[0].dt != graph.Bool || in[1].dt != graph.Bool {
			return nil, errSkip
		}
		a, b := in[0], in[1]
		out := &folded{dt: graph.Bool}
		var err error
		out.shape, err = zip(in, func(idx []int) error {
			out.ints = append(out.ints, lin{c: b2i(f(a.ints[idx[0]].c != 0, b.ints[idx[1]].c != 0))})
			return nil
		})
		return []*folded{out}, err
	}
}

func foldNot(c *nodeCtx, in []*folded) ([]*folded, error) {
	a := in[0]
	if a.dt != graph.Bool {
		return nil, errSkip
	}
	out := &folded{dt: graph.Bool, shape: a.shape}
	for _, l := range a.ints {
		out.ints = append(out.ints, lin{c: 1 - l.c})
	}
	return []*folded{out}, nil
}

func foldWhere(c *nodeCtx, in []*folded) ([]*folded, error) {
	if len(in) != 3 || in[1] == nil || in[2] == nil {
		return nil, errSkip
	}
	cond, a, b := in[0], in[1], in[2]
	if cond.dt != graph.Bool || a.dt != b.dt {
		return nil, errSkip
	}
	out := &folded{dt: a.dt}
	var err error
	out.shape, err = zip(in, func(idx []int) error {
		pick, i := b, idx[2]
		if cond.ints[idx[0]].c != 0 {
			pick, i = a, idx[1]
		}
		if a.dt.IsFloat() {
			out.fl = append(out.fl, pick.fl[i])
		} else {
			out.ints = append(out.ints, pick.ints[i])
		}
		return nil
	})
	return []*folded{out.withSrc(a, b)}, err
}

// unaryFold folds an elementwise op of one operand; fi nil means floats
// only.
func unaryFold(fi func(a lin) (lin, error), ff func(a float64) float64) foldFn {
	return func(c *nodeCtx, in []*folded) ([]*folded, error) {
		a := in[0]
		if a.dt == graph.Bool || !a.dt.IsFloat() && fi == nil {
			return nil, errSkip
		}
		out := &folded{dt: a.dt, shape: a.shape}
		for _, f := range a.fl {
			out.fl = append(out.fl, roundTo(a.dt, ff(f)))
		}
		for _, l := range a.ints {
			r, err := fi(l)
			if err != nil {
				return nil, err
			}
			out.ints = append(out.ints, wrap(a.dt, r))
		}
		return []*folded{out.withSrc(a)}, nil
	}
}

func foldCast(c *nodeCtx, in []*folded) ([]*folded, error) {
	a := in[0]
	var to graph.DType
	if c.n.opType == "CastLike" {
		if len(in) < 2 || in[1] == nil {
			return nil, errSkip
		}
		to = in[1].dt
	} else {
		t, err := c.int("to", 0)
		if err != nil {
			return nil, err
		}
		var ok bool
		if to, ok = dtypeOf(t); !ok {
			return nil, errSkip // the converter names the type
		}
	}
	out := &folded{dt: to, shape: a.shape}
	out.withSrc(a)
	switch {
	case a.dt.IsFloat() && to.IsFloat():
		for _, f := range a.fl {
			out.fl = append(out.fl, roundTo(to, f))
		}
	case a.dt.IsFloat() && to == graph.Bool:
		for _, f := range a.fl {
			out.ints = append(out.ints, lin{c: b2i(f != 0)})
		}
	case a.dt.IsFloat():
		for _, f := range a.fl {
			if math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) >= 1<<63 {
				return nil, fmt.Errorf("casting %v to %s is undefined", f, to)
			}
			out.ints = append(out.ints, wrap(to, lin{c: int64(f)}))
		}
	case to.IsFloat():
		for _, l := range a.ints {
			if l.k != 0 {
				return nil, symErrf("%s as a floating-point value depends on the batch size", l)
			}
			out.fl = append(out.fl, roundTo(to, float64(l.c)))
		}
	case to == graph.Bool:
		for _, l := range a.ints {
			zero, err := linSign(l, "=")
			if err != nil {
				return nil, symErrf("whether %s is 0 depends on the batch size", l)
			}
			out.ints = append(out.ints, lin{c: b2i(!zero)})
		}
	default:
		for _, l := range a.ints {
			out.ints = append(out.ints, wrap(to, l))
		}
	}
	return []*folded{out}, nil
}

// foldShapeOf is Shape of a known tensor.
func foldShapeOf(c *nodeCtx, in []*folded) ([]*folded, error) {
	a := in[0]
	r := int64(len(a.shape))
	start, end, err := shapeRange(c, r)
	if err != nil {
		return nil, err
	}
	if start >= end {
		return nil, errSkip
	}
	out := &folded{dt: graph.I64, shape: []int{int(end - start)}}
	for _, d := range a.shape[start:end] {
		out.ints = append(out.ints, lin{c: int64(d)})
	}
	return []*folded{out}, nil
}

func foldSizeOf(c *nodeCtx, in []*folded) ([]*folded, error) {
	return []*folded{{dt: graph.I64, ints: []lin{{c: int64(in[0].size())}}}}, nil
}

// take returns the elements of a at the indices idx, in a tensor of shape.
func take(a *folded, shape []int, idx []int) *folded {
	out := &folded{dt: a.dt, shape: shape, src: a.src, srcAx: a.srcAx}
	for _, i := range idx {
		if a.dt.IsFloat() {
			out.fl = append(out.fl, a.fl[i])
		} else {
			out.ints = append(out.ints, a.ints[i])
		}
	}
	return out
}

// reshaped returns a with a new shape of the same element count.
func reshaped(a *folded, shape []int) *folded {
	out := *a
	out.shape = shape
	return &out
}

// constAttrOrInput reads an integer list given as an attribute before
// opset since and as input i from it; it reports whether it was given.
func constAttrOrInput(c *nodeCtx, in []*folded, attr string, i int, since int64) ([]int64, bool, error) {
	if c.opset() < since {
		return c.ints(attr)
	}
	if i >= len(in) || in[i] == nil {
		return nil, false, nil
	}
	v, err := in[i].constInts(attr)
	return v, err == nil, err
}

func foldReshape(c *nodeCtx, in []*folded) ([]*folded, error) {
	a := in[0]
	spec, given, err := constAttrOrInput(c, in, "shape", 1, 5)
	if err != nil || !given {
		return nil, errSkip
	}
	allowZero, err := c.flag("allowzero", false)
	if err != nil {
		return nil, err
	}
	shape := make([]int, len(spec))
	hole, known := -1, 1
	for i, s := range spec {
		switch {
		case s == 0 && !allowZero:
			if i >= len(a.shape) {
				return nil, errSkip
			}
			shape[i] = a.shape[i]
		case s == -1 && hole < 0:
			hole = i
			continue
		case s <= 0:
			return nil, errSkip
		default:
			shape[i] = int(s)
		}
		known *= shape[i]
	}
	if hole >= 0 {
		if known == 0 || a.size()%known != 0 {
			return nil, errSkip
		}
		shape[hole] = a.size() / known
	} else if known != a.size() {
		return nil, errSkip
	}
	return []*folded{reshaped(a, shape)}, nil
}

func foldFlatten(c *nodeCtx, in []*folded) ([]*folded, error) {
	a := in[0]
	ax, err := c.int("axis", 1)
	if err != nil {
		return nil, err
	}
	r := int64(len(a.shape))
	if ax < -r || ax > r {
		return nil, errSkip
	}
	if ax < 0 {
		ax += r
	}
	outer := prod(a.shape[:ax])
	return []*folded{reshaped(a, []int{outer, a.size() / outer})}, nil
}

func foldTranspose(c *nodeCtx, in []*folded) ([]*folded, error) {
	a := in[0]
	r := len(a.shape)
	perm, ok, err := c.ints("perm")
	if err != nil {
		return nil, err
	}
	if !ok {
		for i := r - 1; i >= 0; i-- {
			perm = append(perm, int64(i))
		}
	}
	if len(perm) != r {
		return nil, errSkip
	}
	st := strides(a.shape)
	shape := make([]int, r)
	seen := make([]bool, r)
	for i, p := range perm {
		if p < 0 || int(p) >= r || seen[p] {
			return nil, errSkip
		}
		seen[p] = true
		shape[i] = a.shape[p]
	}
	idx := gatherIndex(shape, func(pos []int) int {
		off := 0
		for i, p := range perm {
			off += pos[i] * st[p]
		}
		return off
	})
	return []*folded{take(a, shape, idx)}, nil
}

func foldUnsqueeze(c *nodeCtx, in []*folded) ([]*folded, error) {
	a := in[0]
	axes, given, err := constAttrOrInput(c, in, "axes", 1, 13)
	if err != nil || !given {
		return nil, errSkip
	}
	r := len(a.shape) + len(axes)
	norm, err := normAxes(axes, r, "axis")
	if err != nil {
		return nil, err
	}
	shape := make([]int, 0, r)
	next := 0
	for i := range r {
		if slices.Contains(norm, int64(i)) {
			shape = append(shape, 1)
		} else {
			shape = append(shape, a.shape[next])
			next++
		}
	}
	return []*folded{reshaped(a, shape)}, nil
}

func foldSqueeze(c *nodeCtx, in []*folded) ([]*folded, error) {
	a := in[0]
	axes, given, err := constAttrOrInput(c, in, "axes", 1, 13)
	if err != nil {
		return nil, errSkip
	}
	drop := make([]bool, len(a.shape))
	if !given {
		for i, d := range a.shape {
			drop[i] = d == 1
		}
	} else {
		norm, err := normAxes(axes, len(a.shape), "axis")
		if err != nil {
			return nil, err
		}
		for _, ax := range norm {
			if a.shape[ax] != 1 {
				return nil, fmt.Errorf("axis %d has size %d, expected 1", ax, a.shape[ax])
			}
			drop[ax] = true
		}
	}
	var shape []int
	for i, d := range a.shape {
		if !drop[i] {
			shape = append(shape, d)
		}
	}
	return []*folded{reshaped(a, shape)}, nil
}

func foldConcat(c *nodeCtx, in []*folded) ([]*folded, error) {
	if slices.Contains(in, nil) {
		return nil, errSkip
	}
	a0 := in[0]
	r := len(a0.shape)
	axis, err := c.int("axis", 0)
	if err != nil {
		return nil, err
	}
	ax, err := normAxis(axis, r, "axis")
	if err != nil {
		return nil, errSkip
	}
	shape := slices.Clone(a0.shape)
	shape[ax] = 0
	for _, t := range in {
		if t.dt != a0.dt || len(t.shape) != r {
			return nil, errSkip
		}
		for i, d := range t.shape {
			if i != ax && d != a0.shape[i] {
				return nil, errSkip
			}
		}
		shape[ax] += t.shape[ax]
	}
	outer := prod(shape[:ax])
	out := &folded{dt: a0.dt, shape: shape}
	for o := range outer {
		for _, t := range in {
			blk := t.size() / outer
			if t.dt.IsFloat() {
				out.fl = append(out.fl, t.fl[o*blk:(o+1)*blk]...)
			} else {
				out.ints = append(out.ints, t.ints[o*blk:(o+1)*blk]...)
			}
		}
	}
	return []*folded{out.withSrc(in...)}, nil
}

func foldSlice(c *nodeCtx, in []*folded) ([]*folded, error) {
	a := in[0]
	r := len(a.shape)
	var starts, ends, axes, steps []int64
	var err error
	if c.opset() < 10 {
		var ok1, ok2 bool
		if starts, ok1, err = c.ints("starts"); err != nil {
			return nil, err
		}
		if ends, ok2, err = c.ints("ends"); err != nil {
			return nil, err
		}
		if !ok1 || !ok2 {
			return nil, errSkip
		}
		if axes, _, err = c.ints("axes"); err != nil {
			return nil, err
		}
	} else {
		list := func(i int, what string) ([]int64, error) {
			if i >= len(in) || in[i] == nil {
				return nil, nil
			}
			return in[i].constInts(what)
		}
		if starts, err = list(1, "starts"); err != nil {
			return nil, err
		}
		if ends, err = list(2, "ends"); err != nil {
			return nil, err
		}
		if axes, err = list(3, "axes"); err != nil {
			return nil, err
		}
		if steps, err = list(4, "steps"); err != nil {
			return nil, err
		}
	}
	if len(starts) != len(ends) || axes != nil && len(axes) != len(starts) || steps != nil && len(steps) != len(starts) {
		return nil, errSkip
	}
	begin := make([]int, r)
	step := make([]int, r)
	shape := slices.Clone(a.shape)
	for i := range step {
		step[i] = 1
	}
	seen := map[int]bool{}
	for i := range starts {
		ax := i
		if axes != nil {
			if ax, err = normAxis(axes[i], r, "axis"); err != nil {
				return nil, err
			}
		}
		if seen[ax] {
			return nil, fmt.Errorf("axis %d is sliced twice", ax)
		}
		seen[ax] = true
		st := int64(1)
		if steps != nil {
			st = steps[i]
		}
		if st == 0 {
			return nil, fmt.Errorf("step 0 on axis %d", ax)
		}
		dim := int64(a.shape[ax])
		s, e := starts[i], ends[i]
		if s < 0 {
			s += dim
		}
		if e < 0 {
			e += dim
		}
		var n int64
		if st > 0 {
			s, e = min(max(s, 0), dim), min(max(e, 0), dim)
			n = max(0, (e-s+st-1)/st)
		} else {
			s, e = min(max(s, 0), dim-1), min(max(e, -1), dim-1)
			n = max(0, (s-e-st-1)/(-st))
		}
		begin[ax], step[ax], shape[ax] = int(s), int(st), int(n)
	}
	st := strides(a.shape)
	idx := gatherIndex(shape, func(pos []int) int {
		off := 0
		for i, p := range pos {
			off += (begin[i] + p*step[i]) * st[i]
		}
		return off
	})
	return []*folded{take(a, shape, idx)}, nil
}

func foldGather(c *nodeCtx, in []*folded) ([]*folded, error) {
	if len(in) != 2 || in[1] == nil {
		return nil, errSkip
	}
	a, ix := in[0], in[1]
	indices, err := ix.constInts("indices")
	if err != nil {
		return nil, err
	}
	ax, err := c.axis(0, len(a.shape))
	if err != nil {
		return nil, err
	}
	n := a.shape[ax]
	for i, v := range indices {
		if v < -int64(n) || v >= int64(n) {
			return nil, fmt.Errorf("index %d is out of range for axis %d of size %d", v, ax, n)
		}
		if v < 0 {
			indices[i] += int64(n)
		}
	}
	shape := slices.Concat(a.shape[:ax], ix.shape, a.shape[ax+1:])
	st := strides(a.shape)
	ir := len(ix.shape)
	ist := strides(ix.shape)
	idx := gatherIndex(shape, func(pos []int) int {
		k := 0
		for j := range ir {
			k += pos[ax+j] * ist[j]
		}
		off := int(indices[k]) * st[ax]
		for i := range ax {
			off += pos[i] * st[i]
		}
		for i := ax + 1; i < len(a.shape); i++ {
			off += pos[i-1+ir] * st[i]
		}
		return off
	})
	return []*folded{take(a, shape, idx)}, nil
}

// concreteShape reads a shape operand (Expand, ConstantOfShape, Tile's
// repeats) that does not depend on the batch; it returns errSkip when it
// does, for the folders that build such values in the graph.
func concreteShape(t *folded, what string) ([]int, error) {
	if t == nil || t.symbolic() {
		return nil, errSkip
	}
	vs, err := t.constInts(what)
	if err != nil {
		return nil, err
	}
	if len(t.shape) != 1 {
		return nil, fmt.Errorf("%s: expected a 1-D tensor, found shape %v", what, t.shape)
	}
	out := make([]int, len(vs))
	n := int64(1)
	for i, v := range vs {
		if v < 0 {
			return nil, fmt.Errorf("%s %v: expected sizes, found %d", what, vs, v)
		}
		if v == 0 {
			return nil, fmt.Errorf("%s %v: tensors with no elements are not supported", what, vs)
		}
		if n *= v; n > maxFoldElems {
			return nil, errSkip
		}
		out[i] = int(v)
	}
	return out, nil
}

func foldTile(c *nodeCtx, in []*folded) ([]*folded, error) {
	a := in[0]
	if len(in) != 2 {
		return nil, errSkip
	}
	reps, err := concreteShape(in[1], "repeats")
	if err != nil {
		return nil, err
	}
	if len(reps) != len(a.shape) {
		return nil, fmt.Errorf("repeats %v has %d entries for an input of rank %d", reps, len(reps), len(a.shape))
	}
	shape := make([]int, len(a.shape))
	for i, d := range a.shape {
		shape[i] = d * reps[i]
	}
	if prod(shape) > maxFoldElems {
		return nil, errSkip
	}
	st := strides(a.shape)
	idx := gatherIndex(shape, func(pos []int) int {
		off := 0
		for i, p := range pos {
			off += (p % a.shape[i]) * st[i]
		}
		return off
	})
	return []*folded{take(a, shape, idx)}, nil
}

func foldExpand(c *nodeCtx, in []*folded) ([]*folded, error) {
	a := in[0]
	if len(in) != 2 {
		return nil, errSkip
	}
	shape, err := concreteShape(in[1], "shape")
	if err != nil {
		return nil, err
	}
	out, err := broadcastShapes(a.shape, shape)
	if err != nil {
		return nil, err
	}
	if prod(out) > maxFoldElems {
		return nil, errSkip
	}
	return []*folded{take(a, out, broadcastIndex(out, a.shape))}, nil
}

// constantOfShapeValue returns ConstantOfShape's value attribute: one
// element (default the float 0).
func constantOfShapeValue(c *nodeCtx) (*folded, error) {
	a, err := c.attr("value", attrTypeTensor)
	if err != nil {
		return nil, err
	}
	if a == nil || a.t == nil {
		return &folded{dt: graph.F32, fl: []float64{0}}, nil
	}
	d, err := readTensor(a.t)
	if err != nil {
		return nil, fmt.Errorf("attribute value: %v", err)
	}
	v := foldedDense(d)
	if v == nil || v.size() != 1 {
		return nil, fmt.Errorf("attribute value: expected one element, found shape %v", d.Shape())
	}
	v.shape = nil
	return v, nil
}

func foldConstantOfShape(c *nodeCtx, in []*folded) ([]*folded, error) {
	shape, err := concreteShape(in[0], "shape")
	if err != nil {
		return nil, err
	}
	v, err := constantOfShapeValue(c)
	if err != nil {
		return nil, err
	}
	return []*folded{take(v, shape, make([]int, prod(shape)))}, nil
}

func foldRange(c *nodeCtx, in []*folded) ([]*folded, error) {
	if len(in) != 3 || slices.Contains(in, nil) {
		return nil, errSkip
	}
	s, l, d := in[0], in[1], in[2]
	if s.dt != l.dt || s.dt != d.dt || s.size() != 1 || l.size() != 1 || d.size() != 1 || s.dt == graph.Bool {
		return nil, errSkip
	}
	out := &folded{dt: s.dt}
	if s.dt.IsFloat() {
		start, limit, delta := s.fl[0], l.fl[0], d.fl[0]
		n := math.Ceil((limit - start) / delta)
		if !(n >= 1) {
			return nil, fmt.Errorf("the range %v to %v by %v is empty: tensors with no elements are not supported", start, limit, delta)
		}
		if n > maxFoldElems {
			return nil, errSkip
		}
		for i := range int(n) {
			out.fl = append(out.fl, roundTo(s.dt, start+float64(i)*delta))
		}
	} else {
		if s.symbolic() || l.symbolic() || d.symbolic() {
			return nil, symErrf("the number of elements, %s to %s by %s, depends on the batch size", s.ints[0], l.ints[0], d.ints[0])
		}
		start, limit, delta := s.ints[0].c, l.ints[0].c, d.ints[0].c
		if delta == 0 {
			return nil, fmt.Errorf("delta 0")
		}
		num := limit - start
		n := num / delta
		if num%delta != 0 && (num < 0) == (delta < 0) {
			n++
		}
		if n < 1 {
			return nil, fmt.Errorf("the range %d to %d by %d is empty: tensors with no elements are not supported", start, limit, delta)
		}
		if n > maxFoldElems {
			return nil, errSkip
		}
		for i := range n {
			out.ints = append(out.ints, wrap(s.dt, lin{c: start + i*delta}))
		}
	}
	out.shape = []int{out.size()}
	return []*folded{out}, nil
}

func foldScatterND(c *nodeCtx, in []*folded) ([]*folded, error) {
	if len(in) != 3 || slices.Contains(in, nil) {
		return nil, errSkip
	}
	a, ix, up := in[0], in[1], in[2]
	red, err := c.str("reduction", "none")
	if err != nil {
		return nil, err
	}
	switch red {
	case "none", "add", "mul":
	default:
		return nil, fmt.Errorf("reduction %q is not supported (none, add or mul)", red)
	}
	if up.dt != a.dt {
		return nil, fmt.Errorf("updates are %s, data %s", up.dt, a.dt)
	}
	indices, err := ix.constInts("indices")
	if err != nil {
		return nil, err
	}
	if len(ix.shape) == 0 {
		return nil, fmt.Errorf("indices must have rank 1 or more")
	}
	k := ix.shape[len(ix.shape)-1]
	if k > len(a.shape) {
		return nil, fmt.Errorf("indices of depth %d for data of rank %d", k, len(a.shape))
	}
	want := slices.Concat(ix.shape[:len(ix.shape)-1], a.shape[k:])
	if !slices.Equal(up.shape, want) {
		return nil, fmt.Errorf("updates have shape %v, expected %v", up.shape, want)
	}
	out := a.clone()
	st := strides(a.shape)
	blk := prod(a.shape[k:])
	for u := range prod(ix.shape[:len(ix.shape)-1]) {
		off := 0
		for j := range k {
			i := indices[u*k+j]
			if i < -int64(a.shape[j]) || i >= int64(a.shape[j]) {
				return nil, fmt.Errorf("index %d is out of range for axis %d of size %d", i, j, a.shape[j])
			}
			if i < 0 {
				i += int64(a.shape[j])
			}
			off += int(i) * st[j]
		}
		for e := range blk {
			if a.dt.IsFloat() {
				x, y := out.fl[off+e], up.fl[u*blk+e]
				switch red {
				case "none":
					x = y
				case "add":
					x += y
				case "mul":
					x *= y
				}
				out.fl[off+e] = roundTo(a.dt, x)
				continue
			}
			x, y := out.ints[off+e], up.ints[u*blk+e]
			switch red {
			case "none":
				x = y
			case "add":
				x, _ = linAdd(x, y)
			case "mul":
				if x, err = linMul(x, y); err != nil {
					return nil, err
				}
			}
			out.ints[off+e] = wrap(a.dt, x)
		}
	}
	return []*folded{out.withSrc(a, up)}, nil
}

func foldTrilu(c *nodeCtx, in []*folded) ([]*folded, error) {
	a := in[0]
	upper, err := c.flag("upper", true)
	if err != nil {
		return nil, err
	}
	k := int64(0)
	if len(in) > 1 && in[1] != nil {
		ks, err := in[1].constInts("k")
		if err != nil {
			return nil, err
		}
		if len(ks) != 1 {
			return nil, fmt.Errorf("k: expected one value, found %d", len(ks))
		}
		k = ks[0]
	}
	r := len(a.shape)
	if r < 2 {
		return nil, fmt.Errorf("expected an input of rank 2 or more, found rank %d", r)
	}
	rows, cols := a.shape[r-2], a.shape[r-1]
	out := a.clone()
	for e := range out.size() {
		i, j := int64(e/cols%rows), int64(e%cols)
		if upper && j-i >= k || !upper && j-i <= k {
			continue
		}
		if a.dt.IsFloat() {
			out.fl[e] = 0
		} else {
			out.ints[e] = lin{}
		}
	}
	return []*folded{out}, nil
}

// reduceFold folds a reduction whose axes are an attribute before opset
// since and an input from it.
func reduceFold(fi func(a, b lin) (lin, error), ff func(a, b float64) float64, since int64) foldFn {
	return func(c *nodeCtx, in []*folded) ([]*folded, error) {
		a := in[0]
		if a.dt == graph.Bool {
			return nil, errSkip
		}
		axes, given, err := constAttrOrInput(c, in, "axes", 1, since)
		if err != nil {
			return nil, err
		}
		keep, err := c.flag("keepdims", true)
		if err != nil {
			return nil, err
		}
		noop, err := c.flag("noop_with_empty_axes", false)
		if err != nil {
			return nil, err
		}
		if (!given || len(axes) == 0) && noop {
			return []*folded{a}, nil
		}
		r := len(a.shape)
		red := make([]bool, r)
		if !given || len(axes) == 0 {
			for i := range red {
				red[i] = true
			}
		} else {
			norm, err := normAxes(axes, r, "axis")
			if err != nil {
				return nil, err
			}
			for _, ax := range norm {
				red[ax] = true
			}
		}
		var shape, kept []int
		for i, d := range a.shape {
			switch {
			case !red[i]:
				shape = append(shape, d)
				kept = append(kept, d)
			case keep:
				kept = append(kept, 1)
			}
		}
		out := newFolded(a.dt, shape)
		seen := make([]bool, prod(shape))
		st := strides(a.shape)
		for e := range a.size() {
			o, mul := 0, 1
			for i := r - 1; i >= 0; i-- {
				if !red[i] {
					o += (e / st[i] % a.shape[i]) * mul
					mul *= a.shape[i]
				}
			}
			switch {
			case a.dt.IsFloat() && !seen[o]:
				out.fl[o] = a.fl[e]
			case a.dt.IsFloat():
				out.fl[o] = roundTo(a.dt, ff(out.fl[o], a.fl[e]))
			case !seen[o]:
				out.ints[o] = a.ints[e]
			default:
				l, err := fi(out.ints[o], a.ints[e])
				if err != nil {
					return nil, err
				}
				out.ints[o] = wrap(a.dt, l)
			}
			seen[o] = true
		}
		out.shape = kept
		return []*folded{out.withSrc(a)}, nil
	}
}
