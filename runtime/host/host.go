// Package host converts between the graph's element types and gorgonia
// tensors, and slices and joins tensors in host memory along an axis: the
// runtime's transfers (a replica's share of the batch, concatenating the
// replicas' outputs) are done here, never with gorgonia graph ops.
package host

import (
	"fmt"

	"gorgonia.org/tensor"

	"multigpu/graph"
)

// Dtype returns the gorgonia element type of dt.
func Dtype(dt graph.DType) (tensor.Dtype, error) {
	switch dt {
	case graph.F32:
		return tensor.Float32, nil
	case graph.F64:
		return tensor.Float64, nil
	case graph.I32:
		return tensor.Int32, nil
	case graph.I64:
		return tensor.Int64, nil
	case graph.Bool:
		return tensor.Bool, nil
	}
	return tensor.Dtype{}, fmt.Errorf("no tensor element type for %s", dt)
}

// DTypeOf returns the graph element type of t, and false when the graph
// has none for it.
func DTypeOf(t *tensor.Dense) (graph.DType, bool) {
	switch t.Dtype() {
	case tensor.Float32:
		return graph.F32, true
	case tensor.Float64:
		return graph.F64, true
	case tensor.Int32:
		return graph.I32, true
	case tensor.Int64:
		return graph.I64, true
	case tensor.Bool:
		return graph.Bool, true
	}
	return 0, false
}

// MakeSlice returns a zeroed []T of n elements for element type dt.
func MakeSlice(dt graph.DType, n int) any {
	switch dt {
	case graph.F32:
		return make([]float32, n)
	case graph.F64:
		return make([]float64, n)
	case graph.I32:
		return make([]int32, n)
	case graph.I64:
		return make([]int64, n)
	case graph.Bool:
		return make([]bool, n)
	}
	panic(fmt.Sprintf("host.MakeSlice: element type %s", dt))
}

// Len returns the length of a slice made by MakeSlice.
func Len(data any) int {
	switch d := data.(type) {
	case []float32:
		return len(d)
	case []float64:
		return len(d)
	case []int32:
		return len(d)
	case []int64:
		return len(d)
	case []bool:
		return len(d)
	}
	panic(fmt.Sprintf("host.Len: %T", data))
}

// New returns a tensor of the given shape backed by data (a []float32,
// []float64, []int32, []int64 or []bool holding exactly the product of
// shape elements), without copying. An empty shape gives a scalar.
func New(shape []int, data any) *tensor.Dense {
	n := 1
	for _, d := range shape {
		n *= d
	}
	if l := Len(data); l != n {
		panic(fmt.Sprintf("host.New: %d elements for shape %v", l, shape))
	}
	if len(shape) == 0 {
		return tensor.New(tensor.FromScalar(index(data, 0)))
	}
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(data))
}

// Zeros returns a zeroed tensor.
func Zeros(dt graph.DType, shape []int) *tensor.Dense {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return New(shape, MakeSlice(dt, n))
}

func index(data any, i int) any {
	switch d := data.(type) {
	case []float32:
		return d[i]
	case []float64:
		return d[i]
	case []int32:
		return d[i]
	case []int64:
		return d[i]
	case []bool:
		return d[i]
	}
	panic(fmt.Sprintf("host: %T", data))
}

// Shape returns the shape of t as a fresh slice (empty for a scalar).
func Shape(t *tensor.Dense) []int {
	return append([]int{}, t.Shape()...)
}

// Elems returns the number of elements of t.
func Elems(t *tensor.Dense) int {
	n := 1
	for _, d := range t.Shape() {
		n *= d
	}
	return n
}

// Bytes returns the size of t's elements in bytes.
func Bytes(t *tensor.Dense) int64 {
	dt, ok := DTypeOf(t)
	if !ok {
		return int64(Elems(t)) * int64(t.Dtype().Size())
	}
	return int64(Elems(t)) * dt.Size()
}

// Data returns the elements of t in row-major order as a []float32,
// []float64, []int32, []int64 or []bool. For a contiguous tensor the
// slice shares t's memory (callers must not change it unless they own
// t); a scalar gives a fresh one-element slice and a strided view a
// materialised copy.
func Data(t *tensor.Dense) any {
	if t.IsScalar() {
		switch v := t.Data().(type) {
		case float32:
			return []float32{v}
		case float64:
			return []float64{v}
		case int32:
			return []int32{v}
		case int64:
			return []int64{v}
		case bool:
			return []bool{v}
		}
		panic(fmt.Sprintf("host.Data: scalar of type %v", t.Dtype()))
	}
	if t.RequiresIterator() || t.IsMaterializable() {
		t = t.Materialize().(*tensor.Dense)
		if t.RequiresIterator() {
			t = t.Clone().(*tensor.Dense)
		}
	}
	d := t.Data()
	n := Elems(t)
	switch s := d.(type) {
	case []float32:
		return s[:n:n]
	case []float64:
		return s[:n:n]
	case []int32:
		return s[:n:n]
	case []int64:
		return s[:n:n]
	case []bool:
		return s[:n:n]
	}
	panic(fmt.Sprintf("host.Data: element type %v", t.Dtype()))
}

// Clone returns a copy of t that shares no memory with it.
func Clone(t *tensor.Dense) *tensor.Dense {
	return New(Shape(t), copyOf(Data(t)))
}

func copyOf(data any) any {
	switch d := data.(type) {
	case []float32:
		return append([]float32(nil), d...)
	case []float64:
		return append([]float64(nil), d...)
	case []int32:
		return append([]int32(nil), d...)
	case []int64:
		return append([]int64(nil), d...)
	case []bool:
		return append([]bool(nil), d...)
	}
	panic(fmt.Sprintf("host: %T", data))
}

// outerInner returns the products of the dims before and after axis.
func outerInner(shape []int, axis int) (outer, inner int) {
	outer, inner = 1, 1
	for _, d := range shape[:axis] {
		outer *= d
	}
	for _, d := range shape[axis+1:] {
		inner *= d
	}
	return outer, inner
}

// Slice returns elements [start, end) of t along axis. When every axis
// before axis has size 1 the result is a view sharing t's memory (the
// common case: a share of the batch on axis 0); otherwise a copy.
func Slice(t *tensor.Dense, axis, start, end int) *tensor.Dense {
	shape := Shape(t)
	if axis < 0 || axis >= len(shape) || start < 0 || end > shape[axis] || start > end {
		panic(fmt.Sprintf("host.Slice: [%d:%d] of axis %d of shape %v", start, end, axis, shape))
	}
	out := append([]int(nil), shape...)
	out[axis] = end - start
	outer, inner := outerInner(shape, axis)
	data := Data(t)
	if outer == 1 {
		return New(out, Subslice(data, start*inner, end*inner))
	}
	return New(out, SliceData(data, outer, shape[axis], inner, start, end))
}

// Subslice returns data[lo:hi] (a view, capacity capped at hi) of a slice
// made by MakeSlice.
func Subslice(data any, lo, hi int) any {
	switch d := data.(type) {
	case []float32:
		return d[lo:hi:hi]
	case []float64:
		return d[lo:hi:hi]
	case []int32:
		return d[lo:hi:hi]
	case []int64:
		return d[lo:hi:hi]
	case []bool:
		return d[lo:hi:hi]
	}
	panic(fmt.Sprintf("host: %T", data))
}

// SliceData copies rows [start, end) of the middle axis of data seen as
// [outer, n, inner] into a new slice.
func SliceData(data any, outer, n, inner, start, end int) any {
	switch d := data.(type) {
	case []float32:
		return sliceT(d, outer, n, inner, start, end)
	case []float64:
		return sliceT(d, outer, n, inner, start, end)
	case []int32:
		return sliceT(d, outer, n, inner, start, end)
	case []int64:
		return sliceT(d, outer, n, inner, start, end)
	case []bool:
		return sliceT(d, outer, n, inner, start, end)
	}
	panic(fmt.Sprintf("host: %T", data))
}

func sliceT[T any](d []T, outer, n, inner, start, end int) []T {
	w := (end - start) * inner
	out := make([]T, outer*w)
	for o := 0; o < outer; o++ {
		copy(out[o*w:(o+1)*w], d[(o*n+start)*inner:(o*n+end)*inner])
	}
	return out
}

// Concat joins ts along axis into a new tensor. All must have the same
// element type and the same size on every other axis.
func Concat(axis int, ts ...*tensor.Dense) (*tensor.Dense, error) {
	if len(ts) == 0 {
		return nil, fmt.Errorf("concat of nothing")
	}
	first := Shape(ts[0])
	if axis < 0 || axis >= len(first) {
		return nil, fmt.Errorf("concat on axis %d of shape %v", axis, first)
	}
	out := append([]int(nil), first...)
	out[axis] = 0
	datas := make([]any, len(ts))
	sizes := make([]int, len(ts))
	for i, t := range ts {
		s := Shape(t)
		if t.Dtype() != ts[0].Dtype() || len(s) != len(first) {
			return nil, fmt.Errorf("concat of %v %v and %v %v", ts[0].Dtype(), first, t.Dtype(), s)
		}
		for j := range s {
			if j != axis && s[j] != first[j] {
				return nil, fmt.Errorf("concat on axis %d of shapes %v and %v", axis, first, s)
			}
		}
		out[axis] += s[axis]
		sizes[i] = s[axis]
		datas[i] = Data(t)
	}
	outer, inner := outerInner(out, axis)
	return New(out, ConcatData(datas, sizes, outer, inner)), nil
}

// ConcatData joins slices seen as [outer, sizes[i], inner] along the
// middle axis into a new slice.
func ConcatData(datas []any, sizes []int, outer, inner int) any {
	switch datas[0].(type) {
	case []float32:
		return concatT[float32](datas, sizes, outer, inner)
	case []float64:
		return concatT[float64](datas, sizes, outer, inner)
	case []int32:
		return concatT[int32](datas, sizes, outer, inner)
	case []int64:
		return concatT[int64](datas, sizes, outer, inner)
	case []bool:
		return concatT[bool](datas, sizes, outer, inner)
	}
	panic(fmt.Sprintf("host: %T", datas[0]))
}

func concatT[T any](datas []any, sizes []int, outer, inner int) []T {
	total := 0
	for _, s := range sizes {
		total += s
	}
	out := make([]T, outer*total*inner)
	pos := 0
	for o := 0; o < outer; o++ {
		for i, d := range datas {
			w := sizes[i] * inner
			copy(out[pos:pos+w], d.([]T)[o*w:(o+1)*w])
			pos += w
		}
	}
	return out
}

// Float64s returns t's elements as float64s (booleans as 0 and 1), for
// comparing tensors of any element type. A float64 tensor's slice may be
// shared with t.
func Float64s(t *tensor.Dense) []float64 {
	switch d := Data(t).(type) {
	case []float64:
		return d
	case []float32:
		return widen(d)
	case []int32:
		return widen(d)
	case []int64:
		return widen(d)
	case []bool:
		out := make([]float64, len(d))
		for i, v := range d {
			if v {
				out[i] = 1
			}
		}
		return out
	}
	panic(fmt.Sprintf("host.Float64s: element type %v", t.Dtype()))
}

func widen[T float32 | int32 | int64](d []T) []float64 {
	out := make([]float64, len(d))
	for i, v := range d {
		out[i] = float64(v)
	}
	return out
}
