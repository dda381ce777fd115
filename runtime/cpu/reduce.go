package cpu

import (
	"math"

	"multigpu/runtime/host"
)

// reducer maps every element of an operand to the result element it is
// reduced into.
type reducer struct {
	shape []int   // collapsed operand shape
	str   [][]int // strides along shape: [0] the operand's, [1] the result's (0 on reduced axes)
	n     int     // operand elements
	outN  int     // result elements
	count int     // elements reduced into each result element
}

func newReducer(in []int, axes []int) *reducer {
	reduced := make([]bool, len(in))
	for _, a := range axes {
		reduced[a] = true
	}
	outStr := make([]int, len(in))
	s, count := 1, 1
	for i := len(in) - 1; i >= 0; i-- {
		if reduced[i] {
			count *= in[i]
			continue
		}
		outStr[i] = s
		s *= in[i]
	}
	shape, str := host.Collapse(in, host.Strides(in), outStr)
	return &reducer{shape: shape, str: str, n: numel(in), outN: s, count: count}
}

// reduceKernel reduces with op: sum, mean, max or min. Every result element
// accumulates its operands in row-major order.
func reduceKernel[T float](op string, r *reducer) kernelFn {
	var init T
	switch op {
	case "sum", "mean":
		init = T(math.Copysign(0, -1)) // -0 + x == x for every x
	case "max":
		init = T(math.Inf(-1))
	case "min":
		init = T(math.Inf(1))
	}
	last := r.shape[len(r.shape)-1]
	so := r.str[1][len(r.shape)-1]
	return func(ins []any, _ *runState) (any, error) {
		x := ins[0].([]T)
		out := make([]T, r.outN)
		for i := range out {
			out[i] = init
		}
		if r.n > 0 {
			od := newOdometer(r.shape, r.str)
			for {
				row := x[od.off[0] : od.off[0]+last]
				o := od.off[1]
				if so == 0 {
					out[o] = reduceRow(op, out[o], row)
				} else {
					accumulateRow(op, out[o:o+last], row)
				}
				if !od.next() {
					break
				}
			}
		}
		if op == "mean" {
			c := T(r.count)
			for i := range out {
				out[i] /= c
			}
		}
		return out, nil
	}
}

func reduceRow[T float](op string, acc T, row []T) T {
	switch op {
	case "max":
		for _, v := range row {
			acc = maximum(acc, v)
		}
	case "min":
		for _, v := range row {
			acc = minimum(acc, v)
		}
	default:
		for _, v := range row {
			acc += v
		}
	}
	return acc
}

func accumulateRow[T float](op string, acc, row []T) {
	row = row[:len(acc)]
	switch op {
	case "max":
		for i, v := range row {
			acc[i] = maximum(acc[i], v)
		}
	case "min":
		for i, v := range row {
			acc[i] = minimum(acc[i], v)
		}
	default:
		for i, v := range row {
			acc[i] += v
		}
	}
}

// softmaxKernel computes softmax (or log_softmax) along the middle axis of
// [outer, size, inner]: e = exp(x - max), y = e / sum(e), or
// y = (x - max) - log(sum(e)).
func softmaxKernel[T float](outer, size, inner int, log bool) kernelFn {
	return func(ins []any, _ *runState) (any, error) {
		x := ins[0].([]T)
		out := make([]T, len(x))
		m := make([]T, inner)
		s := make([]T, inner)
		for o := 0; o < outer; o++ {
			base := o * size * inner
			for i := range m {
				m[i] = T(math.Inf(-1))
				s[i] = T(math.Copysign(0, -1))
			}
			for k := 0; k < size; k++ {
				row := x[base+k*inner : base+(k+1)*inner]
				for i, v := range row {
					m[i] = maximum(m[i], v)
				}
			}
			for k := 0; k < size; k++ {
				off := base + k*inner
				row := x[off : off+inner]
				dst := out[off : off+inner]
				for i, v := range row {
					e := T(math.Exp(float64(v - m[i])))
					s[i] += e
					dst[i] = e
				}
			}
			if log {
				for i := range s {
					s[i] = T(math.Log(float64(s[i])))
				}
			}
			for k := 0; k < size; k++ {
				off := base + k*inner
				row := x[off : off+inner]
				dst := out[off : off+inner]
				for i := range dst {
					if log {
						dst[i] = (row[i] - m[i]) - s[i]
					} else {
						dst[i] /= s[i]
					}
				}
			}
		}
		return out, nil
	}
}
