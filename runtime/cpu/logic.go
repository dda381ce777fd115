package cpu

import (
	"fmt"
	"math"

	"multigpu/graph"
	"multigpu/runtime/host"
)

// The kernels of pow, where, the comparisons, the logic ops and cast
// (erf is a unary kernel, elementwise.go). They run on every element type
// the op table allows: bools are []bool, integers []int32 and []int64.

// number is the element types that compare and convert as numbers.
type number interface {
	~float32 | ~float64 | ~int32 | ~int64
}

// zip2 returns a kernel computing out[i] = f(a[.], b[.]) with numpy
// broadcasting of operands of shapes as and bs to os.
func zip2[A, B, R any](as, bs, os []int, f func(A, B) R) kernelFn {
	shape, str := host.Collapse(os, host.BroadcastStrides(as, os), host.BroadcastStrides(bs, os), host.Strides(os))
	n := numel(os)
	last := shape[len(shape)-1]
	sa, sb := str[0][len(shape)-1], str[1][len(shape)-1]
	od := newOdometer(shape, str)
	return func(ins []any, rs *runState) (any, error) {
		a, b := ins[0].([]A), ins[1].([]B)
		out := newOut[R](rs, n)
		if n == 0 {
			return ret(rs, out), nil
		}
		od.reset()
		for pos := 0; ; pos += last {
			ia, ib := od.off[0], od.off[1]
			row := out[pos : pos+last]
			for i := range row {
				row[i] = f(a[ia], b[ib])
				ia += sa
				ib += sb
			}
			if !od.next() {
				break
			}
		}
		return ret(rs, out), nil
	}
}

// whereT returns where's kernel: a[.] where c[.], else b[.], all three
// broadcast to os.
func whereT[T any](cs, as, bs, os []int) kernelFn {
	shape, str := host.Collapse(os, host.BroadcastStrides(cs, os), host.BroadcastStrides(as, os),
		host.BroadcastStrides(bs, os), host.Strides(os))
	n := numel(os)
	last := shape[len(shape)-1]
	sc, sa, sb := str[0][len(shape)-1], str[1][len(shape)-1], str[2][len(shape)-1]
	od := newOdometer(shape, str)
	return func(ins []any, rs *runState) (any, error) {
		c, a, b := ins[0].([]bool), ins[1].([]T), ins[2].([]T)
		out := newOut[T](rs, n)
		if n == 0 {
			return ret(rs, out), nil
		}
		od.reset()
		for pos := 0; ; pos += last {
			ic, ia, ib := od.off[0], od.off[1], od.off[2]
			row := out[pos : pos+last]
			for i := range row {
				if c[ic] {
					row[i] = a[ia]
				} else {
					row[i] = b[ib]
				}
				ic += sc
				ia += sa
				ib += sb
			}
			if !od.next() {
				break
			}
		}
		return ret(rs, out), nil
	}
}

// powKernel is a^b, evaluated in float64 and rounded once.
// In f32, an exponent of one element equal to 2 is x*x: the float64 square
// of a float32 is exact, so rounding it once gives float32's product.
func powKernel(s *spec) (kernelFn, error) {
	s.arena = true
	square := numel(s.in[1]) == 1 && numel(s.in[0]) == numel(s.out)
	return floatKernel(s.dt, func() (kernelFn, kernelFn) {
		f32 := zip2(s.in[0], s.in[1], s.out, func(a, b float32) float32 { return float32(math.Pow(float64(a), float64(b))) })
		if square {
			general := f32
			f32 = func(ins []any, rs *runState) (any, error) {
				if ins[1].([]float32)[0] != 2 {
					return general(ins, rs)
				}
				x := ins[0].([]float32)
				out := newOut[float32](rs, len(x))
				for i, v := range x {
					out[i] = v * v
				}
				return ret(rs, out), nil
			}
		}
		return f32, zip2(s.in[0], s.in[1], s.out, math.Pow)
	})
}

// whereKernel picks where's kernel for the element type of a and b.
func whereKernel(s *spec) (kernelFn, error) {
	s.arena = true
	in := s.in
	switch s.dt {
	case graph.F32:
		return whereT[float32](in[0], in[1], in[2], s.out), nil
	case graph.F64:
		return whereT[float64](in[0], in[1], in[2], s.out), nil
	case graph.I32:
		return whereT[int32](in[0], in[1], in[2], s.out), nil
	case graph.I64:
		return whereT[int64](in[0], in[1], in[2], s.out), nil
	case graph.Bool:
		return whereT[bool](in[0], in[1], in[2], s.out), nil
	}
	return nil, fmt.Errorf("no cpu kernel for where on %s", s.dt)
}

// comparisonKernel returns the kernel of a comparison op (equal, less, ...)
// on operands of element type dt.
func comparisonKernel(s *spec) (kernelFn, error) {
	s.arena = true
	op, as, bs := s.node.Op, s.in[0], s.in[1]
	switch dt := s.node.Args[0].Type.DType; dt {
	case graph.F32:
		return compareT[float32](op, as, bs, s.out)
	case graph.F64:
		return compareT[float64](op, as, bs, s.out)
	case graph.I32:
		return compareT[int32](op, as, bs, s.out)
	case graph.I64:
		return compareT[int64](op, as, bs, s.out)
	case graph.Bool:
		if op == "equal" {
			return zip2(as, bs, s.out, func(a, b bool) bool { return a == b }), nil
		}
		return nil, fmt.Errorf("no cpu kernel for %s on bool", op)
	default:
		return nil, fmt.Errorf("no cpu kernel for %s on %s", op, dt)
	}
}

func compareT[T number](op string, as, bs, os []int) (kernelFn, error) {
	var f func(a, b T) bool
	switch op {
	case "equal":
		f = func(a, b T) bool { return a == b }
	case "less":
		f = func(a, b T) bool { return a < b }
	case "greater":
		f = func(a, b T) bool { return a > b }
	case "less_equal":
		f = func(a, b T) bool { return a <= b }
	case "greater_equal":
		f = func(a, b T) bool { return a >= b }
	default:
		return nil, fmt.Errorf("no comparison %s", op)
	}
	return zip2(as, bs, os, f), nil
}

// logicKernel returns the kernel of not, and, or, xor.
func logicKernel(s *spec) (kernelFn, error) {
	var f func(a, b bool) bool
	switch s.node.Op {
	case "not":
		s.arena = true
		return func(ins []any, rs *runState) (any, error) {
			x := ins[0].([]bool)
			out := newOut[bool](rs, len(x))
			for i, v := range x {
				out[i] = !v
			}
			return ret(rs, out), nil
		}, nil
	case "and":
		f = func(a, b bool) bool { return a && b }
	case "or":
		f = func(a, b bool) bool { return a || b }
	case "xor":
		f = func(a, b bool) bool { return a != b }
	default:
		return nil, fmt.Errorf("no logic op %s", s.node.Op)
	}
	s.arena = true
	return zip2(s.in[0], s.in[1], s.out, f), nil
}

// castKernel converts between element types (ONNX Cast): floats to
// integers truncate toward zero, saturating at the integer's range, NaN
// giving 0; integers to floats round to nearest; i64 to i32 keeps the low
// 32 bits; a number to bool is x != 0 (NaN included); bool to a number is 0
// or 1.
func castKernel(s *spec) (kernelFn, error) {
	from, to := s.node.Args[0].Type.DType, s.dt
	s.arena = from != graph.Bool
	return func(ins []any, rs *runState) (any, error) { return castInto(rs, ins[0], from, to) }, nil
}

// castInto is castData into the running node's planned buffer.
func castInto(rs *runState, data any, from, to graph.DType) (any, error) {
	switch d := data.(type) {
	case []float32:
		return castFrom(rs, d, to, true)
	case []float64:
		return castFrom(rs, d, to, true)
	case []int32:
		return castFrom(rs, d, to, false)
	case []int64:
		return castFrom(rs, d, to, false)
	}
	return castData(data, from, to)
}

// castData returns data (a slice of element type from) converted to to.
func castData(data any, from, to graph.DType) (any, error) {
	switch d := data.(type) {
	case []float32:
		return castFrom(nil, d, to, true)
	case []float64:
		return castFrom(nil, d, to, true)
	case []int32:
		return castFrom(nil, d, to, false)
	case []int64:
		return castFrom(nil, d, to, false)
	case []bool:
		out := host.MakeSlice(to, len(d))
		if b, ok := out.([]bool); ok {
			copy(b, d)
			return b, nil
		}
		for i, v := range d {
			if v {
				setFloat(out, i, 1)
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("cast of %s: unexpected data %T", from, data)
}

// castFrom converts numbers to the element type to, into rs's planned
// buffer when it has one; float says whether S is a floating-point type
// (whose conversion to integers saturates).
func castFrom[S number](rs *runState, d []S, to graph.DType, float bool) (any, error) {
	switch to {
	case graph.F32:
		return ret(rs, convert(newOut[float32](rs, len(d)), d)), nil
	case graph.F64:
		return ret(rs, convert(newOut[float64](rs, len(d)), d)), nil
	case graph.I32:
		if float {
			return ret(rs, saturate(newOut[int32](rs, len(d)), d, math.MinInt32)), nil
		}
		return ret(rs, convert(newOut[int32](rs, len(d)), d)), nil
	case graph.I64:
		if float {
			return ret(rs, saturate(newOut[int64](rs, len(d)), d, math.MinInt64)), nil
		}
		return ret(rs, convert(newOut[int64](rs, len(d)), d)), nil
	case graph.Bool:
		out := newOut[bool](rs, len(d))
		for i, v := range d {
			out[i] = v != 0
		}
		return ret(rs, out), nil
	}
	return nil, fmt.Errorf("no cast to %s", to)
}

// convert sets out[i] to Go's conversion D(d[i]) and returns out.
func convert[S, D number](out []D, d []S) []D {
	for i, v := range d {
		out[i] = D(v)
	}
	return out
}

// saturate sets out to the floats d converted to the integer type D,
// whose smallest value is lo (-2^31 or -2^63): truncation toward zero, lo
// and -lo-1 for values beyond the range, 0 for NaN. (Go leaves
// out-of-range conversions to the machine; CUDA's saturate, as here.)
func saturate[S number, D int32 | int64](out []D, d []S, lo int64) []D {
	low, limit := float64(lo), -float64(lo) // limit = 2^31 or 2^63, just past the largest
	for i, v := range d {
		f := float64(v)
		switch {
		case f != f:
			out[i] = 0
		case f >= limit:
			out[i] = D(-(lo + 1))
		case f <= low:
			out[i] = D(lo)
		default:
			out[i] = D(f)
		}
	}
	return out
}
