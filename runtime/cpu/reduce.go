package cpu

import (
	"math"
	"slices"

	"multigpu/graph"
	"multigpu/runtime/cpu/par"
	"multigpu/runtime/cpu/vec"
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
	// keepsBatch: an axis of the operand that is not reduced holds the
	// batch (or a share), so no reduced row crosses samples.
	keepsBatch bool
}

// keepsBatch reports whether an axis of shape holding the batch symbol is
// not among axes.
func keepsBatch(shape []graph.Dim, axes []int) bool {
	for i, d := range shape {
		if d.Sym != "" && !slices.Contains(axes, i) {
			return true
		}
	}
	return false
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
// accumulates its operands in row-major order, but in an f32 sum or mean
// of one row per result element that keeps the batch (r.keepsBatch: a
// row never crosses samples, and a share of the batch has the same rows),
// which takes vec.SumRow's order. A sum over the batch, or over partial
// sums, stays in order: the replicas' combinations must give its bits.
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
	od := newOdometer(r.shape, r.str)
	// An f32 sum or mean whose every result element reduces one row adds
	// it by vec.SumRow (16 lanes, an order fixed by the row's length).
	var zero T
	_, f32 := any(zero).(float32)
	lanes := f32 && r.keepsBatch && (op == "sum" || op == "mean") && so == 0 && r.outN*last == r.n
	return func(ins []any, rs *runState) (any, error) {
		x := ins[0].([]T)
		out := newOut[T](rs, r.outN)
		for i := range out {
			out[i] = init
		}
		if r.n > 0 {
			od.reset()
			for {
				row := x[od.off[0] : od.off[0]+last]
				o := od.off[1]
				if lanes {
					out[o] = T(vec.SumRow(any(row).([]float32)))
				} else if so == 0 {
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
		return ret(rs, out), nil
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
	return func(ins []any, rs *runState) (any, error) {
		x := ins[0].([]T)
		out := newOut[T](rs, len(x))
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
		return ret(rs, out), nil
	}
}

// softmaxF32 is the f32 softmax, in parallel over chunks of the outer
// axis. Along the last axis (log_softmax aside) it is vec.SoftmaxRows: e
// = exp(x - max) in float32 arithmetic, summed in 16 lanes folded
// pairwise; a row's result depends on the row alone. Elsewhere it is
// softmaxKernel's, with the same bits: e by vec.Exp (a float64 evaluation
// rounded once, as math.Exp), the sums in order of the softmax axis from
// -0.
//
// The path is chosen by the axis being the last one, not by inner being
// 1: a softmax over axis 0 of [4, N] has inner 1 at N = 1, and a share of
// the batch must take the whole batch's path.
func softmaxF32(outer, size, inner int, log, last bool) kernelFn {
	t := &softmaxTask{outer: outer, size: size, inner: inner, log: log, rows: last && !log}
	return func(ins []any, rs *runState) (any, error) {
		x := ins[0].([]float32)
		out := newOut[float32](rs, len(x))
		if len(x) == 0 {
			return ret(rs, out), nil
		}
		t.x, t.out = x, out
		t.pieces = rs.chunks(outer, max(1, (1<<14)/max(size*inner, 1)))
		rs.threads().Run(&t.job, t.pieces, t)
		t.x, t.out = nil, nil
		return ret(rs, out), nil
	}
}

// softmaxTask is one f32 softmax's parallel loop over the outer axis.
type softmaxTask struct {
	outer, size, inner int
	log                bool
	rows               bool // the softmax axis is the last: vec.SoftmaxRows
	x, out             []float32
	pieces             int
	job                par.Job
}

// Do computes the softmax of piece i's outer indices.
func (t *softmaxTask) Do(i int, sc *par.Scratch) {
	per := (t.outer + t.pieces - 1) / t.pieces
	size, inner := t.size, t.inner
	buf := sc.F32(max(2*inner, size))
	m, s := buf[:inner], buf[inner:2*inner]
	o0, o1 := i*per, min(t.outer, (i+1)*per)
	if t.rows {
		// Rows along the last axis: one pass of vec.SoftmaxRows.
		if o1 > o0 {
			vec.SoftmaxRows(t.out[o0*size:o1*size], t.x[o0*size:o1*size], size)
		}
		return
	}
	for o := o0; o < o1; o++ {
		base := o * size * inner
		x, out := t.x[base:base+size*inner], t.out[base:base+size*inner]
		if inner == 1 {
			mx := float32(math.Inf(-1))
			for _, v := range x {
				mx = maximum(mx, v)
			}
			for k, v := range x {
				out[k] = v - mx
			}
			if t.log {
				e := buf[:size]
				vec.Exp(e, out)
				sum := float32(math.Copysign(0, -1))
				for _, v := range e {
					sum += v
				}
				ls := float32(math.Log(float64(sum)))
				for k := range out {
					out[k] -= ls
				}
				continue
			}
			vec.Exp(out, out)
			sum := float32(math.Copysign(0, -1))
			for _, e := range out {
				sum += e
			}
			for k := range out {
				out[k] /= sum
			}
			continue
		}
		for j := range m {
			m[j] = float32(math.Inf(-1))
			s[j] = float32(math.Copysign(0, -1))
		}
		for k := range size {
			for j, v := range x[k*inner : (k+1)*inner] {
				m[j] = maximum(m[j], v)
			}
		}
		for k := range size {
			row, dst := x[k*inner:(k+1)*inner], out[k*inner:(k+1)*inner]
			for j, v := range row {
				dst[j] = v - m[j]
			}
			vec.Exp(dst, dst)
			for j, e := range dst {
				s[j] += e
			}
			if t.log {
				// dst holds e; put back x - max for the result.
				for j, v := range row {
					dst[j] = v - m[j]
				}
			}
		}
		if t.log {
			for j := range s {
				s[j] = float32(math.Log(float64(s[j])))
			}
		}
		for k := range size {
			dst := out[k*inner : (k+1)*inner]
			for j := range dst {
				if t.log {
					dst[j] -= s[j]
				} else {
					dst[j] /= s[j]
				}
			}
		}
	}
}
