package cpu

import (
	"fmt"

	"multigpu/graph"
	"multigpu/lower"
	"multigpu/runtime/backend"
	"multigpu/runtime/cpu/par"
	"multigpu/runtime/host"
)

// float is the element types the numeric kernels run in.
type float interface{ ~float32 | ~float64 }

// spec is what a kernel is built from: one node with concrete shapes.
type spec struct {
	node *graph.Node
	dt   graph.DType // element type of the result
	in   [][]int     // operand shapes
	out  []int       // result shape
	info backend.NodeInfo
	// Set by the kernel's builder: view, the result is operand 0's memory
	// (or part of it); arena, the kernel writes its result into the
	// buffer newOut gives it; scratch, the sizes (in float32s) of the
	// scratch buffers it asks scratchF32 for.
	view    bool
	arena   bool
	scratch []int64
	// inputs holds, for each operand, the index of the program input it
	// is, or -1 when a step computes it; fuse is what the kernel folds in
	// (fuse.go: a matmul or f32 conv2d only), nil for nothing.
	inputs []int
	fuse   *fusion
	// threads is the number of threads of the device's pool.
	threads int
	// padded makes depthwise convolutions and max pooling copy each
	// plane padded (the path of processors without AVX-512) even where
	// vec.Plane computes them from the image, for tests.
	padded bool
}

// kernelFn computes one node: operands in row-major order, result likewise
// (a new slice, or an operand's for ops that are views).
type kernelFn func(ins []any, rs *runState) (any, error)

// shapeOf returns the concrete shape of t.
func shapeOf(t graph.Type) ([]int, error) {
	s := make([]int, len(t.Shape))
	for i, d := range t.Shape {
		v, ok := d.Value()
		if !ok {
			return nil, fmt.Errorf("dimension %d of %s has no size", i, t)
		}
		s[i] = int(v)
	}
	return s, nil
}

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// build returns the kernel of s.node.
func build(s *spec) (kernelFn, error) {
	n := s.node
	switch n.Op {
	case "add", "sub", "mul", "div", "maximum", "minimum":
		s.arena = true
		return floatKernel(s.dt, func() (kernelFn, kernelFn) {
			return binaryKernel[float32](n.Op, s.in[0], s.in[1], s.out), binaryKernel[float64](n.Op, s.in[0], s.in[1], s.out)
		})
	case "neg", "abs", "exp", "log", "sqrt", "relu", "sigmoid", "tanh", "leaky_relu", "erf":
		alpha := n.FloatAttr("alpha", 0.01)
		s.arena = true
		return floatKernel(s.dt, func() (kernelFn, kernelFn) {
			return unaryKernel[float32](n.Op, alpha), unaryKernel[float64](n.Op, alpha)
		})
	case "matmul":
		return matmulKernel(s)
	case "softmax", "log_softmax":
		ax, err := n.NormAxis("axis", len(s.in[0]))
		if err != nil {
			return nil, err
		}
		outer, size, inner := split3(s.in[0], ax)
		log := n.Op == "log_softmax"
		s.arena = true
		return floatKernel(s.dt, func() (kernelFn, kernelFn) {
			return softmaxF32(outer, size, inner, log, ax == len(s.in[0])-1), softmaxKernel[float64](outer, size, inner, log)
		})
	case "sum", "mean", "max", "min":
		axes, err := n.ReduceAxes(len(s.in[0]))
		if err != nil {
			return nil, err
		}
		r := newReducer(s.in[0], axes)
		r.keepsBatch = keepsBatch(n.Args[0].Type.Shape, axes)
		s.arena = true
		return floatKernel(s.dt, func() (kernelFn, kernelFn) {
			return reduceKernel[float32](n.Op, r), reduceKernel[float64](n.Op, r)
		})
	case "reshape", "flatten", "copy":
		s.view = true
		return func(ins []any, _ *runState) (any, error) { return ins[0], nil }, nil
	case "transpose":
		perm := n.IntsAttr("perm", nil)
		t := newTransposer(s.in[0], perm)
		s.arena = true
		return func(ins []any, rs *runState) (any, error) { return t.apply(ins[0], rs), nil }, nil
	case "concat":
		ax, err := n.NormAxis("axis", len(s.out))
		if err != nil {
			return nil, err
		}
		outer, _, inner := split3(s.out, ax)
		sizes := make([]int, len(s.in))
		for i, sh := range s.in {
			sizes[i] = sh[ax]
		}
		return func(ins []any, _ *runState) (any, error) { return host.ConcatData(ins, sizes, outer, inner), nil }, nil
	case "slice":
		return sliceKernel(s)
	case "dim":
		ax, err := n.NormAxis("axis", len(s.in[0]))
		if err != nil {
			return nil, err
		}
		v := s.in[0][ax]
		dt := s.dt
		return func([]any, *runState) (any, error) {
			out := host.MakeSlice(dt, 1)
			setFloat(out, 0, float64(v))
			return out, nil
		}, nil
	case "conv2d":
		return convKernel(s)
	case "maxpool2d", "avgpool2d":
		return poolKernel(s)
	case "batchnorm":
		return batchnormKernel(s)
	case "dropout":
		return dropoutKernel(s)
	case "compare":
		return compareKernel(s)
	case "pow":
		return powKernel(s)
	case "where":
		return whereKernel(s)
	case "equal", "less", "greater", "less_equal", "greater_equal":
		return comparisonKernel(s)
	case "not", "and", "or", "xor":
		return logicKernel(s)
	case "cast":
		return castKernel(s)
	case "broadcast_like":
		return broadcastKernel(s)
	case "conv2d_grad_input":
		return convGradInputKernel(s)
	case "conv2d_grad_weight":
		return convGradWeightKernel(s)
	case "maxpool2d_grad", "avgpool2d_grad":
		return poolGradKernel(s)
	case "gather":
		return gatherKernel(s)
	case "gather_grad":
		return gatherGradKernel(s)
	case "expand":
		return expandKernel(s)
	case "allreduce":
		op := n.StringAttr("op", "sum")
		return floatKernel(s.dt, func() (kernelFn, kernelFn) {
			return allreduceKernel[float32](op), allreduceKernel[float64](op)
		})
	case "argmax", "argmin":
		return argKernel(s)
	}
	return nil, fmt.Errorf("no cpu kernel for op %s", n.Op)
}

// floatKernel picks the f32 or f64 kernel.
func floatKernel(dt graph.DType, both func() (kernelFn, kernelFn)) (kernelFn, error) {
	f32, f64 := both()
	switch dt {
	case graph.F32:
		return f32, nil
	case graph.F64:
		return f64, nil
	}
	return nil, fmt.Errorf("no cpu kernel for element type %s", dt)
}

// split3 views shape as [outer, shape[axis], inner].
func split3(shape []int, axis int) (outer, size, inner int) {
	outer, inner = 1, 1
	for _, d := range shape[:axis] {
		outer *= d
	}
	for _, d := range shape[axis+1:] {
		inner *= d
	}
	return outer, shape[axis], inner
}

// sliceKernel takes [start, end) of one axis: the bounds given, or the
// share part of parts of the operand's size on that axis.
func sliceKernel(s *spec) (kernelFn, error) {
	n := s.node
	in := s.in[0]
	ax, err := n.NormAxis("axis", len(in))
	if err != nil {
		return nil, err
	}
	start, end, err := lower.SliceBounds(n, int64(in[ax]))
	if err != nil {
		return nil, err
	}
	outer, size, inner := split3(in, ax)
	lo, hi := int(start), int(end)
	s.view = outer == 1
	return func(ins []any, _ *runState) (any, error) {
		if outer == 1 {
			return host.Subslice(ins[0], lo*inner, hi*inner), nil
		}
		return host.SliceData(ins[0], outer, size, inner, lo, hi), nil
	}, nil
}

// transposer permutes the axes of a row-major array.
type transposer struct {
	out    []int // result shape
	srcStr []int // for each result axis, the stride in the source
	// f32 is the parallel loop of an f32 transpose's general path.
	f32 transposeTask[float32]
}

// transposeTask is the general path of a transpose over the pool: piece
// i copies a range of the result's rows (its last axis).
type transposeTask[T any] struct {
	t         *transposer
	src, out  []T
	rows, per int
	job       par.Job
}

// Do copies the rows of piece i.
func (w *transposeTask[T]) Do(i int, _ *par.Scratch) {
	r0, r1 := i*w.per, min(w.rows, (i+1)*w.per)
	if r0 < r1 {
		transposeRows(w.t, w.src, w.out, r0, r1)
	}
}

// transposeRows copies rows r0 to r1 of the result of t (rows along its
// last axis) from src: a copy per row when the last axis stays last (and
// its rows are long enough for copy to pay).
func transposeRows[T any](t *transposer, src, out []T, r0, r1 int) {
	r := len(t.out)
	var idxBuf [maxRank + 1]int
	idx := idxBuf[:0]
	if r <= len(idxBuf) {
		idx = idxBuf[:r]
	} else {
		idx = make([]int, r)
	}
	last := t.out[r-1]
	ls := t.srcStr[r-1]
	off, rem := 0, r0 // source offset of idx (with idx[r-1] = 0)
	for a := r - 2; a >= 0; a-- {
		idx[a] = rem % t.out[a]
		rem /= t.out[a]
		off += idx[a] * t.srcStr[a]
	}
	for pos := r0 * last; pos < r1*last; pos += last {
		row := out[pos : pos+last]
		if ls == 1 && last >= 16 {
			copy(row, src[off:off+last])
		} else {
			o := off
			for j := range row {
				row[j] = src[o]
				o += ls
			}
		}
		// advance idx over all but the last axis
		for a := r - 2; a >= 0; a-- {
			idx[a]++
			off += t.srcStr[a]
			if idx[a] < t.out[a] {
				break
			}
			off -= idx[a] * t.srcStr[a]
			idx[a] = 0
		}
	}
}

func newTransposer(in []int, perm []int) *transposer {
	st := host.Strides(in)
	t := &transposer{out: make([]int, len(perm)), srcStr: make([]int, len(perm))}
	for i, p := range perm {
		t.out[i] = in[p]
		t.srcStr[i] = st[p]
	}
	return t
}

// swapLast reports whether t swaps the last two axes and keeps the others
// in place, and the sizes of the last two axes of its operand.
func (t *transposer) swapLast() (rows, cols int, ok bool) {
	r := len(t.out)
	if r < 2 || t.srcStr[r-2] != 1 || t.srcStr[r-1] != t.out[r-2] {
		return 0, 0, false
	}
	// The leading axes in order, each a whole [rows, cols] block apart.
	step := t.out[r-1] * t.out[r-2]
	for a := r - 3; a >= 0; a-- {
		if t.srcStr[a] != step {
			return 0, 0, false
		}
		step *= t.out[a]
	}
	return t.out[r-1], t.out[r-2], true
}

func (t *transposer) apply(src any, rs *runState) any {
	switch d := src.(type) {
	case []float32:
		return ret(rs, transposeT(t, d, rs))
	case []float64:
		return ret(rs, transposeT(t, d, rs))
	case []int32:
		return ret(rs, transposeT(t, d, rs))
	case []int64:
		return ret(rs, transposeT(t, d, rs))
	case []bool:
		return ret(rs, transposeT(t, d, rs))
	}
	panic(fmt.Sprintf("transpose of %T", src))
}

func transposeT[T any](t *transposer, src []T, rs *runState) []T {
	out := newOut[T](rs, len(src))
	r := len(t.out)
	if r == 0 || len(src) == 0 {
		copy(out, src)
		return out
	}
	if rows, cols, ok := t.swapLast(); ok {
		// out[b, j, i] = src[b, i, j]: in tiles, so that both sides are
		// read and written a cache line at a time.
		const tile = 16
		for b := 0; b < len(src); b += rows * cols {
			s, o := src[b:b+rows*cols], out[b:b+rows*cols]
			for i0 := 0; i0 < rows; i0 += tile {
				for j0 := 0; j0 < cols; j0 += tile {
					for i := i0; i < min(i0+tile, rows); i++ {
						row := s[i*cols:]
						for j := j0; j < min(j0+tile, cols); j++ {
							o[j*rows+i] = row[j]
						}
					}
				}
			}
		}
		return out
	}
	rows := len(out) / t.out[r-1]
	if o32, ok := any(out).([]float32); ok && rs.threads() != nil {
		w := &t.f32
		w.t, w.src, w.out, w.rows = t, any(src).([]float32), o32, rows
		pieces := rs.chunks(len(out), 1<<15)
		w.per = (rows + pieces - 1) / pieces
		rs.threads().Run(&w.job, pieces, w)
		w.src, w.out = nil, nil
		return out
	}
	transposeRows(t, src, out, 0, rows)
	return out
}

func setFloat(data any, i int, v float64) {
	switch d := data.(type) {
	case []float32:
		d[i] = float32(v)
	case []float64:
		d[i] = v
	case []int32:
		d[i] = int32(v)
	case []int64:
		d[i] = int64(v)
	default:
		panic(fmt.Sprintf("cpu: setFloat on %T", data))
	}
}

// odometer walks every index of shape but the last, keeping one offset per
// operand.
type odometer struct {
	shape []int
	str   [][]int
	idx   []int
	off   []int
}

func newOdometer(shape []int, str [][]int) *odometer {
	return &odometer{shape: shape, str: str, idx: make([]int, len(shape)), off: make([]int, len(str))}
}

// reset goes back to the first row.
func (o *odometer) reset() {
	clear(o.idx)
	clear(o.off)
}

// next advances to the next row; it reports false after the last.
func (o *odometer) next() bool {
	for a := len(o.shape) - 2; a >= 0; a-- {
		o.idx[a]++
		for s := range o.off {
			o.off[s] += o.str[s][a]
		}
		if o.idx[a] < o.shape[a] {
			return true
		}
		for s := range o.off {
			o.off[s] -= o.idx[a] * o.str[s][a]
		}
		o.idx[a] = 0
	}
	return false
}
