package cpu

import (
	"fmt"
	"math"

	"multigpu/graph"
	"multigpu/runtime/backend"
)

// Kernels of the ops that index and broadcast: gather and its gradient,
// expand, argmax and argmin.

// indexList returns integer indices (i32 or i64) as int64s, each checked
// against rows and made non-negative (negative ones count from the end).
func indexList(data any, rows, axis int) ([]int64, error) {
	return indexListInto(nil, data, rows, axis)
}

// indexListInto is indexList into buf's memory when it holds enough.
func indexListInto(buf []int64, data any, rows, axis int) ([]int64, error) {
	var out []int64
	switch d := data.(type) {
	case []int64:
		out = append(buf[:0], d...)
	case []int32:
		out = buf[:0]
		for _, v := range d {
			out = append(out, int64(v))
		}
	default:
		return nil, fmt.Errorf("expected i32 or i64 indices, found %T", data)
	}
	for i, v := range out {
		if v < -int64(rows) || v >= int64(rows) {
			return nil, backend.IndexError(v, axis, rows)
		}
		if v < 0 {
			out[i] = v + int64(rows)
		}
	}
	return out, nil
}

// gatherKernel: data[outer, rows, inner] indexed by k indices gives
// [outer, k, inner], any element type.
func gatherKernel(s *spec) (kernelFn, error) {
	ax, err := s.node.NormAxis("axis", len(s.in[0]))
	if err != nil {
		return nil, err
	}
	outer, rows, inner := split3(s.in[0], ax)
	s.arena = true
	var buf []int64 // the indices, kept across runs
	return func(ins []any, rs *runState) (any, error) {
		idx, err := indexListInto(buf, ins[1], rows, ax)
		if err != nil {
			return nil, err
		}
		buf = idx
		switch d := ins[0].(type) {
		case []float32:
			return ret(rs, gatherT(rs, d, idx, outer, rows, inner)), nil
		case []float64:
			return ret(rs, gatherT(rs, d, idx, outer, rows, inner)), nil
		case []int32:
			return ret(rs, gatherT(rs, d, idx, outer, rows, inner)), nil
		case []int64:
			return ret(rs, gatherT(rs, d, idx, outer, rows, inner)), nil
		case []bool:
			return ret(rs, gatherT(rs, d, idx, outer, rows, inner)), nil
		}
		return nil, fmt.Errorf("gather of %T", ins[0])
	}, nil
}

func gatherT[T any](rs *runState, data []T, idx []int64, outer, rows, inner int) []T {
	k := len(idx)
	out := newOut[T](rs, outer*k*inner)
	for o := 0; o < outer; o++ {
		for j, r := range idx {
			src := data[(o*rows+int(r))*inner:][:inner]
			copy(out[(o*k+j)*inner:][:inner], src)
		}
	}
	return out
}

// gatherGradKernel: zeros of [outer, rows, inner] with the k slices of
// dy[outer, k, inner] added at their indices, in index order.
func gatherGradKernel(s *spec) (kernelFn, error) {
	n := s.node
	ir := len(s.in[0])
	ax, err := n.NormAxis("axis", len(s.in[1])-ir+1)
	if err != nil {
		return nil, err
	}
	outer, rows, inner := split3(s.out, ax)
	return floatKernel(s.dt, func() (kernelFn, kernelFn) {
		return gatherGradT[float32](outer, rows, inner, ax), gatherGradT[float64](outer, rows, inner, ax)
	})
}

func gatherGradT[T float](outer, rows, inner, ax int) kernelFn {
	return func(ins []any, _ *runState) (any, error) {
		idx, err := indexList(ins[0], rows, ax)
		if err != nil {
			return nil, err
		}
		dy := ins[1].([]T)
		k := len(idx)
		out := make([]T, outer*rows*inner)
		for o := 0; o < outer; o++ {
			for j, r := range idx {
				dst := out[(o*rows+int(r))*inner:][:inner]
				for i, v := range dy[(o*k+j)*inner:][:inner] {
					dst[i] += v
				}
			}
		}
		return out, nil
	}
}

// expandKernel broadcasts x to the result's shape, any element type.
func expandKernel(s *spec) (kernelFn, error) {
	in, out := s.in[0], s.out
	switch s.dt {
	case graph.F32:
		return broadcastT[float32](in, out), nil
	case graph.F64:
		return broadcastT[float64](in, out), nil
	case graph.I32:
		return broadcastT[int32](in, out), nil
	case graph.I64:
		return broadcastT[int64](in, out), nil
	case graph.Bool:
		return broadcastT[bool](in, out), nil
	}
	return nil, fmt.Errorf("no cpu kernel for expand on %s", s.dt)
}

// argKernel: argmax or argmin along axis of x[outer, size, inner], as
// i64 [outer, inner]: the first extreme, the first NaN when there is one.
func argKernel(s *spec) (kernelFn, error) {
	n := s.node
	ax, err := n.NormAxis("axis", len(s.in[0]))
	if err != nil {
		return nil, err
	}
	outer, size, inner := split3(s.in[0], ax)
	isMax := n.Op == "argmax"
	return func(ins []any, _ *runState) (any, error) {
		switch d := ins[0].(type) {
		case []float32:
			return argT(d, outer, size, inner, isMax, func(v float32) bool { return v != v }), nil
		case []float64:
			return argT(d, outer, size, inner, isMax, math.IsNaN), nil
		case []int32:
			return argT(d, outer, size, inner, isMax, func(int32) bool { return false }), nil
		case []int64:
			return argT(d, outer, size, inner, isMax, func(int64) bool { return false }), nil
		}
		return nil, fmt.Errorf("%s of %T", n.Op, ins[0])
	}, nil
}

func argT[T float | ~int32 | ~int64](x []T, outer, size, inner int, isMax bool, isNaN func(T) bool) []int64 {
	out := make([]int64, outer*inner)
	if size == 0 {
		return out
	}
	for o := 0; o < outer; o++ {
		for i := 0; i < inner; i++ {
			base := o*size*inner + i
			best, at := x[base], 0
			for k := 1; k < size && !isNaN(best); k++ {
				v := x[base+k*inner]
				if isNaN(v) || (isMax && v > best) || (!isMax && v < best) {
					best, at = v, k
				}
			}
			out[o*inner+i] = int64(at)
		}
	}
	return out
}
