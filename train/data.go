package train

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"

	"gorgonia.org/tensor"

	"multigpu/graph"
	"multigpu/runtime/host"
)

// Dataset holds the arrays a training graph's inputs are fed from, by
// input name: each carries the samples on the input's batch axis (inputs
// without one are fed whole every step).
type Dataset struct {
	inputs []*graph.Node
	arrays map[string]array
	n      int // samples
}

// array is one input's data: row-major elements of the input's type.
type array struct {
	shape []int
	axis  int // the batch axis, or -1
	data  any // []float32, []float64, []int32 or []int64
}

// Len returns the number of samples.
func (d *Dataset) Len() int { return d.n }

// newDataset checks arrays against inputs (by name: present, numeric,
// of the input's shape but for the batch axis, one sample count) and
// converts them to the inputs' element types. Arrays no input reads are
// ignored.
func newDataset(inputs []*graph.Node, arrays map[string]*tensor.Dense) (*Dataset, error) {
	d := &Dataset{inputs: inputs, arrays: map[string]array{}, n: -1}
	from := ""
	var names []string
	for name := range arrays {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, in := range inputs {
		t, ok := arrays[in.Name]
		if !ok {
			return nil, fmt.Errorf("data: no array %q for input %%%s: %s (the data has %s)", in.Name, in.Name, in.Type, quoteList(names))
		}
		if !in.Type.DType.IsNumeric() {
			return nil, fmt.Errorf("data: input %%%s is %s: only f32, f64, i32 and i64 inputs are fed from data", in.Name, in.Type)
		}
		shape := host.Shape(t)
		ax := in.Type.BatchAxis()
		bad := len(shape) != in.Type.Rank()
		for i := 0; !bad && i < len(shape); i++ {
			if v, ok := in.Type.Shape[i].Value(); ok && i != ax {
				bad = int64(shape[i]) != v
			}
		}
		if bad {
			return nil, fmt.Errorf("data: array %q has shape %v, input %%%s expects %s (the batch axis %s holding the samples)",
				in.Name, shapeString(shape), in.Name, in.Type, batchName(in.Type))
		}
		data, err := convert(host.Data(t), in.Type.DType)
		if err != nil {
			return nil, fmt.Errorf("data: array %q: %v", in.Name, err)
		}
		d.arrays[in.Name] = array{shape: shape, axis: ax, data: data}
		if ax < 0 {
			continue
		}
		switch n := shape[ax]; {
		case d.n < 0:
			d.n, from = n, in.Name
		case n != d.n:
			return nil, fmt.Errorf("data: arrays %q and %q hold %d and %d samples", from, in.Name, d.n, n)
		}
	}
	if d.n < 0 {
		return nil, fmt.Errorf("data: no input carries a batch axis")
	}
	if d.n == 0 {
		return nil, fmt.Errorf("data: array %q holds no samples", from)
	}
	return d, nil
}

func batchName(t graph.Type) string {
	if ax := t.BatchAxis(); ax >= 0 {
		return fmt.Sprintf("%d (%s)", ax, t.Shape[ax])
	}
	return "none"
}

func quoteList(names []string) string {
	if len(names) == 0 {
		return "no arrays"
	}
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, ", ")
}

func shapeString(s []int) string {
	parts := make([]string, len(s))
	for i, v := range s {
		parts[i] = fmt.Sprint(v)
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// convert returns data as a fresh slice of dt: f32 or f64 from any
// numbers, i32 or i64 (token ids, class indices) from integers only.
func convert(data any, dt graph.DType) (any, error) {
	if dt == graph.I32 || dt == graph.I64 {
		return convertInts(data, dt)
	}
	var f []float64
	switch s := data.(type) {
	case []float32:
		if dt == graph.F32 {
			return slices.Clone(s), nil
		}
		f = make([]float64, len(s))
		for i, v := range s {
			f[i] = float64(v)
		}
	case []float64:
		f = s
	case []int32:
		f = make([]float64, len(s))
		for i, v := range s {
			f[i] = float64(v)
		}
	case []int64:
		f = make([]float64, len(s))
		for i, v := range s {
			f[i] = float64(v)
		}
	default:
		return nil, fmt.Errorf("elements of type %T are not numbers", data)
	}
	if dt == graph.F64 {
		return slices.Clone(f), nil
	}
	out := make([]float32, len(f))
	for i, v := range f {
		out[i] = float32(v)
	}
	return out, nil
}

// convertInts returns integer data as a fresh slice of dt (i32 or i64);
// an i64 value outside i32's range is an error for an i32 input.
func convertInts(data any, dt graph.DType) (any, error) {
	var v []int64
	switch s := data.(type) {
	case []int32:
		if dt == graph.I32 {
			return slices.Clone(s), nil
		}
		v = make([]int64, len(s))
		for i, x := range s {
			v[i] = int64(x)
		}
		return v, nil
	case []int64:
		v = s
	default:
		return nil, fmt.Errorf("the input is %s, but the array holds %T, not integers", dt, data)
	}
	if dt == graph.I64 {
		return slices.Clone(v), nil
	}
	out := make([]int32, len(v))
	for i, x := range v {
		if x != int64(int32(x)) {
			return nil, fmt.Errorf("element %d is %d, outside the range of i32", i, x)
		}
		out[i] = int32(x)
	}
	return out, nil
}

// Order returns the order of the samples in epoch (counted from 0): a
// permutation drawn from seed and the epoch alone, so it is the same
// whatever the number of replicas.
func Order(seed uint64, epoch, n int) []int {
	return rand.New(rand.NewPCG(seed, uint64(epoch)+0x9e3779b97f4a7c15)).Perm(n)
}

// Batches splits order into batches of size batch; the last one is
// shorter unless dropLast drops it.
func Batches(order []int, batch int, dropLast bool) [][]int {
	var out [][]int
	for lo := 0; lo < len(order); lo += batch {
		hi := min(lo+batch, len(order))
		if hi-lo < batch && dropLast {
			break
		}
		out = append(out, order[lo:hi])
	}
	return out
}

// Batch returns the inputs for the samples idx, in that order.
func (d *Dataset) Batch(idx []int) map[string]*tensor.Dense {
	out := make(map[string]*tensor.Dense, len(d.arrays))
	for name, a := range d.arrays {
		if a.axis < 0 {
			out[name] = host.New(a.shape, a.data)
			continue
		}
		shape := slices.Clone(a.shape)
		shape[a.axis] = len(idx)
		outer, inner := 1, 1
		for _, v := range a.shape[:a.axis] {
			outer *= v
		}
		for _, v := range a.shape[a.axis+1:] {
			inner *= v
		}
		switch s := a.data.(type) {
		case []float32:
			out[name] = host.New(shape, gather(s, outer, a.shape[a.axis], inner, idx))
		case []float64:
			out[name] = host.New(shape, gather(s, outer, a.shape[a.axis], inner, idx))
		case []int32:
			out[name] = host.New(shape, gather(s, outer, a.shape[a.axis], inner, idx))
		case []int64:
			out[name] = host.New(shape, gather(s, outer, a.shape[a.axis], inner, idx))
		}
	}
	return out
}

// gather picks rows idx of the middle axis of src[outer, n, inner].
func gather[T any](src []T, outer, n, inner int, idx []int) []T {
	out := make([]T, outer*len(idx)*inner)
	pos := 0
	for o := 0; o < outer; o++ {
		for _, k := range idx {
			copy(out[pos:pos+inner], src[(o*n+k)*inner:(o*n+k+1)*inner])
			pos += inner
		}
	}
	return out
}
