package cpu

import (
	"fmt"
	"math"

	"multigpu/runtime/host"
)

// binaryKernel applies op elementwise with numpy broadcasting.
func binaryKernel[T float](op string, as, bs, os []int) kernelFn {
	shape, str := host.Collapse(os, host.BroadcastStrides(as, os), host.BroadcastStrides(bs, os), host.Strides(os))
	n := numel(os)
	last := shape[len(shape)-1]
	sa, sb := str[0][len(shape)-1], str[1][len(shape)-1]
	return func(ins []any, _ *runState) (any, error) {
		a, b := ins[0].([]T), ins[1].([]T)
		out := make([]T, n)
		if n == 0 {
			return out, nil
		}
		od := newOdometer(shape, str)
		for pos := 0; ; pos += last {
			binaryRow(op, out[pos:pos+last], a[od.off[0]:], b[od.off[1]:], sa, sb)
			if !od.next() {
				break
			}
		}
		return out, nil
	}
}

// binaryRow computes out[i] = a[i*sa] op b[i*sb].
func binaryRow[T float](op string, out, a, b []T, sa, sb int) {
	switch {
	case isCompare(op):
		binaryStrided(binaryFunc[T](op), out, a, b, sa, sb)
	case sa == 1 && sb == 1:
		a, b = a[:len(out)], b[:len(out)]
		switch op {
		case "add":
			for i := range out {
				out[i] = a[i] + b[i]
			}
		case "sub":
			for i := range out {
				out[i] = a[i] - b[i]
			}
		case "mul":
			for i := range out {
				out[i] = a[i] * b[i]
			}
		case "div":
			for i := range out {
				out[i] = a[i] / b[i]
			}
		case "maximum":
			for i := range out {
				out[i] = maximum(a[i], b[i])
			}
		case "minimum":
			for i := range out {
				out[i] = minimum(a[i], b[i])
			}
		}
	case sa == 1 && sb == 0:
		a = a[:len(out)]
		y := b[0]
		switch op {
		case "add":
			for i := range out {
				out[i] = a[i] + y
			}
		case "sub":
			for i := range out {
				out[i] = a[i] - y
			}
		case "mul":
			for i := range out {
				out[i] = a[i] * y
			}
		case "div":
			for i := range out {
				out[i] = a[i] / y
			}
		case "maximum":
			for i := range out {
				out[i] = maximum(a[i], y)
			}
		case "minimum":
			for i := range out {
				out[i] = minimum(a[i], y)
			}
		}
	case sa == 0 && sb == 1:
		b = b[:len(out)]
		x := a[0]
		switch op {
		case "add":
			for i := range out {
				out[i] = x + b[i]
			}
		case "sub":
			for i := range out {
				out[i] = x - b[i]
			}
		case "mul":
			for i := range out {
				out[i] = x * b[i]
			}
		case "div":
			for i := range out {
				out[i] = x / b[i]
			}
		case "maximum":
			for i := range out {
				out[i] = maximum(x, b[i])
			}
		case "minimum":
			for i := range out {
				out[i] = minimum(x, b[i])
			}
		}
	default:
		binaryStrided(binaryFunc[T](op), out, a, b, sa, sb)
	}
}

// binaryStrided computes out[i] = f(a[i*sa], b[i*sb]).
func binaryStrided[T float](f func(a, b T) T, out, a, b []T, sa, sb int) {
	ia, ib := 0, 0
	for i := range out {
		out[i] = f(a[ia], b[ib])
		ia += sa
		ib += sb
	}
}

func binaryFunc[T float](op string) func(a, b T) T {
	switch op {
	case "add":
		return func(a, b T) T { return a + b }
	case "sub":
		return func(a, b T) T { return a - b }
	case "mul":
		return func(a, b T) T { return a * b }
	case "div":
		return func(a, b T) T { return a / b }
	case "maximum":
		return maximum[T]
	case "minimum":
		return minimum[T]
	case "cmp_eq", "cmp_ne", "cmp_lt", "cmp_le", "cmp_gt", "cmp_ge":
		return compareFunc[T](op)
	}
	panic(fmt.Sprintf("cpu: binary op %s", op))
}

// maximum returns the larger of a and b; NaN if either is NaN (numpy's
// maximum); a when they compare equal.
func maximum[T float](a, b T) T {
	if a >= b || a != a {
		return a
	}
	return b
}

// minimum returns the smaller of a and b; NaN if either is NaN; a when
// they compare equal.
func minimum[T float](a, b T) T {
	if a <= b || a != a {
		return a
	}
	return b
}

// unaryKernel applies op elementwise. Transcendental functions are
// computed in float64 and rounded once.
func unaryKernel[T float](op string, alpha float64) kernelFn {
	f := unaryFunc[T](op, alpha)
	return func(ins []any, _ *runState) (any, error) {
		x := ins[0].([]T)
		out := make([]T, len(x))
		switch op {
		case "relu":
			for i, v := range x {
				out[i] = relu(v)
			}
		case "neg":
			for i, v := range x {
				out[i] = -v
			}
		default:
			for i, v := range x {
				out[i] = f(v)
			}
		}
		return out, nil
	}
}

// relu is max(x, 0): NaN stays NaN, -0 becomes 0.
func relu[T float](x T) T {
	if x > 0 || x != x {
		return x
	}
	return 0
}

func unaryFunc[T float](op string, alpha float64) func(T) T {
	switch op {
	case "neg":
		return func(x T) T { return -x }
	case "abs":
		return func(x T) T { return T(math.Abs(float64(x))) }
	case "exp":
		return func(x T) T { return T(math.Exp(float64(x))) }
	case "log":
		return func(x T) T { return T(math.Log(float64(x))) }
	case "sqrt":
		return func(x T) T { return T(math.Sqrt(float64(x))) }
	case "relu":
		return relu[T]
	case "sigmoid":
		return func(x T) T { return T(sigmoid(float64(x))) }
	case "tanh":
		return func(x T) T { return T(math.Tanh(float64(x))) }
	case "erf":
		return func(x T) T { return T(math.Erf(float64(x))) }
	case "leaky_relu":
		a := T(alpha)
		return func(x T) T {
			if x > 0 {
				return x
			}
			return a * x
		}
	}
	panic(fmt.Sprintf("cpu: unary op %s", op))
}

// sigmoid is 1 / (1 + e^-x).
func sigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }
