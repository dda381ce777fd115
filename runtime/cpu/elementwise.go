package cpu

import (
	"fmt"
	"math"

	"multigpu/runtime/cpu/par"
	"multigpu/runtime/cpu/vec"
	"multigpu/runtime/host"
)

// binaryKernel applies op elementwise with numpy broadcasting, in
// parallel over chunks of rows; its result goes where the plan puts it
// (possibly over an operand of the result's shape: each element reads
// only the operand elements it is computed from).
func binaryKernel[T float](op string, as, bs, os []int) kernelFn {
	shape, str := host.Collapse(os, host.BroadcastStrides(as, os), host.BroadcastStrides(bs, os), host.Strides(os))
	n := numel(os)
	t := &binaryTask[T]{op: op, shape: shape, str: str, last: shape[len(shape)-1], vop: -1}
	if _, ok := any(t.a).([]float32); ok && vec.Fast() {
		t.vop = vecOp(op)
	}
	if t.last > 0 {
		t.rows = n / t.last
	}
	return func(ins []any, rs *runState) (any, error) {
		out := newOut[T](rs, n)
		if n == 0 {
			return ret(rs, out), nil
		}
		t.a, t.b, t.out = ins[0].([]T), ins[1].([]T), out
		t.pieces = rs.chunks(n, 1<<15)
		rs.threads().Run(&t.job, t.pieces, t)
		t.a, t.b, t.out = nil, nil, nil
		return ret(rs, out), nil
	}
}

// binaryTask is one binary kernel's parallel loop: piece i computes a
// contiguous range of the result's rows.
type binaryTask[T float] struct {
	op         string
	vop        int // op's vec.Binary op in f32 with AVX-512, else -1
	shape      []int
	str        [][]int
	last, rows int
	a, b, out  []T
	pieces     int
	job        par.Job
}

// Do computes the rows of piece i.
func (t *binaryTask[T]) Do(i int, _ *par.Scratch) {
	if len(t.shape) == 1 && t.vop >= 0 && t.str[0][0] <= 1 && t.str[1][0] <= 1 {
		// One row (Collapse merged every axis): piece i computes a range
		// of its elements.
		n := t.last
		per := (n + t.pieces - 1) / t.pieces
		lo, hi := min(n, i*per), min(n, (i+1)*per)
		if lo < hi {
			sa, sb := t.str[0][0], t.str[1][0]
			out, a, b := any(t.out).([]float32), any(t.a).([]float32), any(t.b).([]float32)
			vec.Binary(t.vop, out[lo:hi], a[lo*sa:], b[lo*sb:], sa, sb)
		}
		return
	}
	per := (t.rows + t.pieces - 1) / t.pieces
	r0, r1 := i*per, min(t.rows, (i+1)*per)
	if r0 >= r1 {
		return
	}
	r := len(t.shape)
	sa, sb := t.str[0][r-1], t.str[1][r-1]
	if t.vop >= 0 && sa <= 1 && sb <= 1 && r-1 <= maxRank {
		t.rowsF32(r0, r1, sa, sb)
		return
	}
	// The offsets of row r0 in a and b.
	var idx [maxRank]int
	useIdx := r-1 <= maxRank
	oa, ob := 0, 0
	rem := r0
	for ax := r - 2; ax >= 0; ax-- {
		d := rem % t.shape[ax]
		rem /= t.shape[ax]
		if useIdx {
			idx[ax] = d
		}
		oa += d * t.str[0][ax]
		ob += d * t.str[1][ax]
	}
	if !useIdx {
		// Ranks this deep never come out of Collapse in practice; walk
		// each row's offsets from scratch.
		for row := r0; row < r1; row++ {
			oa, ob, rem = 0, 0, row
			for ax := r - 2; ax >= 0; ax-- {
				d := rem % t.shape[ax]
				rem /= t.shape[ax]
				oa += d * t.str[0][ax]
				ob += d * t.str[1][ax]
			}
			binaryRow(t.op, t.out[row*t.last:(row+1)*t.last], t.a[oa:], t.b[ob:], sa, sb)
		}
		return
	}
	for row := r0; row < r1; row++ {
		binaryRow(t.op, t.out[row*t.last:(row+1)*t.last], t.a[oa:], t.b[ob:], sa, sb)
		for ax := r - 2; ax >= 0; ax-- {
			idx[ax]++
			oa += t.str[0][ax]
			ob += t.str[1][ax]
			if idx[ax] < t.shape[ax] {
				break
			}
			oa -= idx[ax] * t.str[0][ax]
			ob -= idx[ax] * t.str[1][ax]
			idx[ax] = 0
		}
	}
}

// rowsF32 is Do's loop over rows r0 to r1 for an f32 op of vec.Binary
// (rows of strides sa, sb of 0 or 1, a rank of at most maxRank+1): one
// call per row.
func (t *binaryTask[T]) rowsF32(r0, r1, sa, sb int) {
	out, a, b := any(t.out).([]float32), any(t.a).([]float32), any(t.b).([]float32)
	r := len(t.shape)
	var idx [maxRank]int
	oa, ob, rem := 0, 0, r0
	for ax := r - 2; ax >= 0; ax-- {
		d := rem % t.shape[ax]
		rem /= t.shape[ax]
		idx[ax] = d
		oa += d * t.str[0][ax]
		ob += d * t.str[1][ax]
	}
	w := t.last
	for row := r0; row < r1; row++ {
		vec.Binary(t.vop, out[row*w:(row+1)*w], a[oa:], b[ob:], sa, sb)
		for ax := r - 2; ax >= 0; ax-- {
			idx[ax]++
			oa += t.str[0][ax]
			ob += t.str[1][ax]
			if idx[ax] < t.shape[ax] {
				break
			}
			oa -= idx[ax] * t.str[0][ax]
			ob -= idx[ax] * t.str[1][ax]
			idx[ax] = 0
		}
	}
}

// vecOp returns op's vec.Binary op, or -1.
func vecOp(op string) int {
	switch op {
	case "add":
		return vec.OpAdd
	case "sub":
		return vec.OpSub
	case "mul":
		return vec.OpMul
	case "div":
		return vec.OpDiv
	}
	return -1
}

// maxRank is the deepest collapsed shape the parallel elementwise loops
// track with an index on the stack.
const maxRank = 8

// binaryRow computes out[i] = a[i*sa] op b[i*sb].
func binaryRow[T float](op string, out, a, b []T, sa, sb int) {
	switch {
	case isCompare(op):
		binaryStrided(binaryFunc[T](op), out, a, b, sa, sb)
	case sa == 1 && sb == 1:
		a, b = a[:len(out)], b[:len(out)]
		if o32, ok := any(out).([]float32); ok && op == "add" && vec.Fast() {
			vec.Add(o32, any(a).([]float32), any(b).([]float32))
			return
		}
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
		if o32, ok := any(out).([]float32); ok && vec.Fast() {
			a32, y32 := any(a).([]float32), float32(y)
			switch op {
			case "add":
				vec.AddScalar(o32, a32, y32)
				return
			case "maximum":
				vec.MaxScalar(o32, a32, y32)
				return
			case "minimum":
				vec.MinScalar(o32, a32, y32)
				return
			}
		}
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

// unaryKernel applies op elementwise, in parallel over chunks; its
// result goes where the plan puts it (possibly over its operand).
// Transcendental functions are computed in float64 and rounded once.
func unaryKernel[T float](op string, alpha float64) kernelFn {
	t := &unaryTask[T]{op: op, f: unaryFunc[T](op, alpha)}
	return func(ins []any, rs *runState) (any, error) {
		x := ins[0].([]T)
		out := newOut[T](rs, len(x))
		t.x, t.out = x, out
		t.pieces = rs.chunks(len(x), 1<<15)
		rs.threads().Run(&t.job, t.pieces, t)
		t.x, t.out = nil, nil
		return ret(rs, out), nil
	}
}

// unaryTask is one unary kernel's parallel loop over chunks of elements.
type unaryTask[T float] struct {
	op     string
	f      func(T) T
	x, out []T
	pieces int
	job    par.Job
}

// Do computes chunk i.
func (t *unaryTask[T]) Do(i int, _ *par.Scratch) {
	per := (len(t.x) + t.pieces - 1) / t.pieces
	lo, hi := min(len(t.x), i*per), min(len(t.x), (i+1)*per)
	x, out := t.x[lo:hi], t.out[lo:hi]
	if x32, ok := any(x).([]float32); ok && t.op == "relu" && vec.Fast() {
		vec.Relu(any(out).([]float32), x32)
		return
	}
	if x32, ok := any(x).([]float32); ok && (t.op == "exp" || t.op == "erf") {
		if t.op == "exp" {
			vec.Exp(any(out).([]float32), x32)
		} else {
			vec.ErfTable(any(out).([]float32), x32)
		}
		return
	}
	switch t.op {
	case "relu":
		for i, v := range x {
			out[i] = relu(v)
		}
	case "neg":
		for i, v := range x {
			out[i] = -v
		}
	default:
		f := t.f
		for i, v := range x {
			out[i] = f(v)
		}
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
