package runtime_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"gorgonia.org/tensor"

	"multigpu/graph"
	"multigpu/runtime"
	"multigpu/runtime/host"
)

// arr is a reference tensor: a shape and float64 elements in row-major
// order.
type arr struct {
	shape []int
	data  []float64
}

func size(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

func newArr(shape ...int) arr { return arr{shape: shape, data: make([]float64, size(shape))} }

// index returns the flat offset of idx.
func (a arr) index(idx []int) int {
	off := 0
	for i, d := range a.shape {
		off = off*d + idx[i]
	}
	return off
}

func (a arr) at(idx ...int) float64 { return a.data[a.index(idx)] }

// each calls f with every index of shape in row-major order.
func each(shape []int, f func(idx []int)) {
	idx := make([]int, len(shape))
	for n := size(shape); n > 0; n-- {
		f(idx)
		for i := len(idx) - 1; i >= 0; i-- {
			idx[i]++
			if idx[i] < shape[i] {
				break
			}
			idx[i] = 0
		}
	}
}

func randArr(r *rand.Rand, lo, hi float64, shape ...int) arr {
	a := newArr(shape...)
	for i := range a.data {
		a.data[i] = lo + (hi-lo)*r.Float64()
	}
	return a
}

// tensorOf converts a to a tensor of dt, rounding to f32 when asked
// (integers and bools exactly: a's elements are whole numbers then).
func tensorOf(a arr, dt graph.DType) *tensor.Dense {
	switch dt {
	case graph.I32, graph.I64, graph.Bool:
		data := host.MakeSlice(dt, len(a.data))
		for i, v := range a.data {
			switch d := data.(type) {
			case []int32:
				d[i] = int32(v)
			case []int64:
				d[i] = int64(v)
			case []bool:
				d[i] = v != 0
			}
		}
		return host.New(a.shape, data)
	}
	if dt == graph.F32 {
		d := make([]float32, len(a.data))
		for i, v := range a.data {
			d[i] = float32(v)
		}
		return host.New(a.shape, d)
	}
	return host.New(a.shape, append([]float64(nil), a.data...))
}

// rounded returns a with its elements rounded to dt.
func rounded(a arr, dt graph.DType) arr {
	out := arr{shape: a.shape, data: make([]float64, len(a.data))}
	for i, v := range a.data {
		if dt == graph.F32 {
			v = float64(float32(v))
		}
		out.data[i] = v
	}
	return out
}

func arrOf(t *tensor.Dense) arr {
	return arr{shape: host.Shape(t), data: host.Float64s(t)}
}

// opCase is one op test: a graph (with {T} for the element type), its
// inputs, and the reference result of output %y.
type opCase struct {
	name   string
	src    string
	inputs map[string]arr
	want   func(in map[string]arr, dt graph.DType) arr
	// tol is the relative tolerance in f32 (f64: 1e-12); 0 means exact.
	tol float64
	// types gives the element type of inputs that do not take {T} (integer
	// indices, say); their values are converted exactly.
	types map[string]graph.DType
	// wantErr, when set, is what the run's error must contain (want is
	// then unused).
	wantErr string
}

func runOp(t *testing.T, c opCase, dt graph.DType) {
	t.Helper()
	src := strings.ReplaceAll(c.src, "{T}", dt.String())
	g, err := graph.Parse(c.name+".graph", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	e, err := runtime.New(g, runtime.Options{Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	in := map[string]*tensor.Dense{}
	ref := map[string]arr{}
	params := map[string]*tensor.Dense{}
	for name, a := range c.inputs {
		adt := dt
		if t, ok := c.types[name]; ok {
			adt = t
		}
		a = rounded(a, adt)
		ref[name] = a
		if n := g.Lookup(name); n != nil && n.Op == graph.OpParam {
			params[name] = tensorOf(a, adt)
		} else {
			in[name] = tensorOf(a, adt)
		}
	}
	if err := e.SetParams(params); err != nil {
		t.Fatal(err)
	}
	out, err := e.Run(context.Background(), in)
	if c.wantErr != "" {
		if err == nil || !strings.Contains(err.Error(), c.wantErr) {
			t.Fatalf("error %v, want one containing %q", err, c.wantErr)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	got := arrOf(out["y"])
	want := c.want(ref, dt)
	roundF32 := g.Lookup("y").Type.DType == graph.F32 // exact references are rounded to the result's type
	if fmt.Sprint(got.shape) != fmt.Sprint(want.shape) {
		t.Fatalf("shape %v, want %v", got.shape, want.shape)
	}
	tol := c.tol
	if dt == graph.F64 && tol != 0 {
		tol = 1e-12
	}
	// Rounding errors of a sum scale with its terms, not its result:
	// tolerances are relative to the larger of |want| and the largest
	// |want| of the output.
	scale := 0.0
	for _, w := range want.data {
		if !math.IsInf(w, 0) && !math.IsNaN(w) {
			scale = max(scale, math.Abs(w))
		}
	}
	for i := range want.data {
		w, g := want.data[i], got.data[i]
		if roundF32 && tol == 0 {
			w = float64(float32(w))
		}
		if math.IsNaN(w) && math.IsNaN(g) || w == g {
			continue
		}
		if tol == 0 || !(math.Abs(w-g) <= tol*(math.Abs(w)+scale)) {
			t.Fatalf("element %d (of %v): got %v, want %v", i, want.shape, g, w)
		}
	}
}

// broadcast returns the reference of a binary op with numpy broadcasting.
func broadcast(a, b arr, f func(x, y float64) float64) arr {
	r := max(len(a.shape), len(b.shape))
	pad := func(s []int) []int { return append(make([]int, r-len(s)), s...) }
	as, bs := pad(a.shape), pad(b.shape)
	out := make([]int, r)
	for i := range out {
		out[i] = max(as[i], bs[i])
	}
	res := newArr(out...)
	ai, bi := make([]int, r), make([]int, r)
	each(out, func(idx []int) {
		for i := range idx {
			ai[i], bi[i] = idx[i], idx[i]
			if as[i] == 1 {
				ai[i] = 0
			}
			if bs[i] == 1 {
				bi[i] = 0
			}
		}
		res.data[res.index(idx)] = f(a.at(ai[r-len(a.shape):]...), b.at(bi[r-len(b.shape):]...))
	})
	return res
}

func unary(a arr, f func(float64) float64) arr {
	out := newArr(a.shape...)
	for i, v := range a.data {
		out.data[i] = f(v)
	}
	return out
}

// reduce is the reference reduction of a over axes.
func reduce(a arr, axes []int, keep bool, init float64, f func(acc, v float64) float64) (arr, []int) {
	red := make([]bool, len(a.shape))
	for _, ax := range axes {
		red[ax] = true
	}
	var shape []int
	for i, d := range a.shape {
		switch {
		case !red[i]:
			shape = append(shape, d)
		case keep:
			shape = append(shape, 1)
		}
	}
	out := newArr(shape...)
	counts := make([]int, len(out.data))
	for i := range out.data {
		out.data[i] = init
	}
	each(a.shape, func(idx []int) {
		var oi []int
		for i, v := range idx {
			switch {
			case !red[i]:
				oi = append(oi, v)
			case keep:
				oi = append(oi, 0)
			}
		}
		o := out.index(oi)
		out.data[o] = f(out.data[o], a.at(idx...))
		counts[o]++
	})
	return out, counts
}

func nanMax(x, y float64) float64 {
	if math.IsNaN(x) || math.IsNaN(y) {
		return math.NaN()
	}
	return math.Max(x, y)
}

func nanMin(x, y float64) float64 {
	if math.IsNaN(x) || math.IsNaN(y) {
		return math.NaN()
	}
	return math.Min(x, y)
}

func softmaxRef(a arr, axis int, log bool) arr {
	out := newArr(a.shape...)
	each(a.shape, func(idx []int) {
		if idx[axis] != 0 {
			return
		}
		j := append([]int(nil), idx...)
		m := math.Inf(-1)
		for k := 0; k < a.shape[axis]; k++ {
			j[axis] = k
			m = math.Max(m, a.at(j...))
		}
		s := 0.0
		for k := 0; k < a.shape[axis]; k++ {
			j[axis] = k
			s += math.Exp(a.at(j...) - m)
		}
		for k := 0; k < a.shape[axis]; k++ {
			j[axis] = k
			v := a.at(j...)
			if log {
				out.data[out.index(j)] = v - m - math.Log(s)
			} else {
				out.data[out.index(j)] = math.Exp(v-m) / s
			}
		}
	})
	return out
}

func matmulRef(a, b arr) arr {
	r := len(a.shape)
	m, k, p := a.shape[r-2], a.shape[r-1], b.shape[len(b.shape)-1]
	shape := append(append([]int(nil), a.shape[:r-1]...), p)
	out := newArr(shape...)
	each(shape, func(idx []int) {
		s := 0.0
		ai := append([]int(nil), idx...)
		for l := 0; l < k; l++ {
			ai[r-1] = l
			var bv float64
			if len(b.shape) == 2 {
				bv = b.at(l, idx[r-1])
			} else {
				bi := append(append([]int(nil), idx[:r-2]...), l, idx[r-1])
				bv = b.at(bi...)
			}
			s += a.at(ai...) * bv
		}
		out.data[out.index(idx)] = s
	})
	_ = m
	return out
}

// convRef is a direct 2-D convolution with groups, padding
// [top,left,bottom,right], stride and dilation.
func convRef(x, w arr, bias *arr, stride, pad, dil []int, groups int) arr {
	n, c, h, wd := x.shape[0], x.shape[1], x.shape[2], x.shape[3]
	o, cg, kh, kw := w.shape[0], w.shape[1], w.shape[2], w.shape[3]
	oh := (h+pad[0]+pad[2]-(dil[0]*(kh-1)+1))/stride[0] + 1
	ow := (wd+pad[1]+pad[3]-(dil[1]*(kw-1)+1))/stride[1] + 1
	og := o / groups
	out := newArr(n, o, oh, ow)
	_ = c
	each(out.shape, func(idx []int) {
		s := 0.0
		g := idx[1] / og
		for ci := 0; ci < cg; ci++ {
			for i := 0; i < kh; i++ {
				for j := 0; j < kw; j++ {
					ih := idx[2]*stride[0] - pad[0] + i*dil[0]
					iw := idx[3]*stride[1] - pad[1] + j*dil[1]
					if ih < 0 || ih >= h || iw < 0 || iw >= wd {
						continue
					}
					s += x.at(idx[0], g*cg+ci, ih, iw) * w.at(idx[1], ci, i, j)
				}
			}
		}
		if bias != nil {
			s += bias.data[idx[1]]
		}
		out.data[out.index(idx)] = s
	})
	return out
}

func poolRef(x arr, kernel, stride, pad []int, isMax bool) arr {
	h, w := x.shape[2], x.shape[3]
	oh := (h+pad[0]+pad[2]-kernel[0])/stride[0] + 1
	ow := (w+pad[1]+pad[3]-kernel[1])/stride[1] + 1
	out := newArr(x.shape[0], x.shape[1], oh, ow)
	each(out.shape, func(idx []int) {
		acc, cnt := 0.0, 0
		if isMax {
			acc = math.Inf(-1)
		}
		for i := 0; i < kernel[0]; i++ {
			for j := 0; j < kernel[1]; j++ {
				ih, iw := idx[2]*stride[0]-pad[0]+i, idx[3]*stride[1]-pad[1]+j
				if ih < 0 || ih >= h || iw < 0 || iw >= w {
					continue
				}
				v := x.at(idx[0], idx[1], ih, iw)
				if isMax {
					acc = nanMax(acc, v)
				} else {
					acc += v
				}
				cnt++
			}
		}
		if !isMax {
			acc /= float64(cnt)
		}
		out.data[out.index(idx)] = acc
	})
	return out
}

func batchnormRef(x, scale, bias, mean, vari arr, axis int, eps float64, training bool) arr {
	c := x.shape[axis]
	if training {
		mean, vari = newArr(c), newArr(c)
		cnt := float64(size(x.shape) / c)
		each(x.shape, func(idx []int) { mean.data[idx[axis]] += x.at(idx...) })
		for k := range mean.data {
			mean.data[k] /= cnt
		}
		each(x.shape, func(idx []int) {
			d := x.at(idx...) - mean.data[idx[axis]]
			vari.data[idx[axis]] += d * d
		})
		for k := range vari.data {
			vari.data[k] /= cnt
		}
	}
	out := newArr(x.shape...)
	each(x.shape, func(idx []int) {
		k := idx[axis]
		out.data[out.index(idx)] = (x.at(idx...)-mean.data[k])/math.Sqrt(vari.data[k]+eps)*scale.data[k] + bias.data[k]
	})
	return out
}

func transposeRef(a arr, perm []int) arr {
	shape := make([]int, len(perm))
	for i, p := range perm {
		shape[i] = a.shape[p]
	}
	out := newArr(shape...)
	src := make([]int, len(perm))
	each(shape, func(idx []int) {
		for i, p := range perm {
			src[p] = idx[i]
		}
		out.data[out.index(idx)] = a.at(src...)
	})
	return out
}

func sliceRef(a arr, axis, start, end int) arr {
	shape := append([]int(nil), a.shape...)
	shape[axis] = end - start
	out := newArr(shape...)
	src := make([]int, len(shape))
	each(shape, func(idx []int) {
		copy(src, idx)
		src[axis] += start
		out.data[out.index(idx)] = a.at(src...)
	})
	return out
}

func concatRef(axis int, as ...arr) arr {
	shape := append([]int(nil), as[0].shape...)
	shape[axis] = 0
	for _, a := range as {
		shape[axis] += a.shape[axis]
	}
	out := newArr(shape...)
	src := make([]int, len(shape))
	each(shape, func(idx []int) {
		copy(src, idx)
		for _, a := range as {
			if src[axis] < a.shape[axis] {
				out.data[out.index(idx)] = a.at(src...)
				return
			}
			src[axis] -= a.shape[axis]
		}
	})
	return out
}

func reshaped(a arr, shape ...int) arr { return arr{shape: shape, data: a.data} }

func opCases() []opCase {
	r := rand.New(rand.NewPCG(1, 2))
	x234 := randArr(r, -3, 3, 2, 3, 4)
	pos := randArr(r, 0.1, 4, 2, 3, 4)
	in1 := func(a arr) map[string]arr { return map[string]arr{"x": a} }
	in2 := func(a, b arr) map[string]arr { return map[string]arr{"x": a, "z": b} }
	// specials exercise NaN, infinities and signed zeros.
	specials := arr{shape: []int{2, 4}, data: []float64{math.NaN(), math.Inf(1), math.Inf(-1), 0, math.Copysign(0, -1), -1.5, 2.5, 1e-30}}
	var cases []opCase
	binOps := map[string]func(x, y float64) float64{
		"add":     func(x, y float64) float64 { return x + y },
		"sub":     func(x, y float64) float64 { return x - y },
		"mul":     func(x, y float64) float64 { return x * y },
		"div":     func(x, y float64) float64 { return x / y },
		"maximum": nanMax, "minimum": nanMin,
	}
	shapes := []struct {
		name string
		a, b []int
		ta   string
		tb   string
	}{
		{"same", []int{2, 3, 4}, []int{2, 3, 4}, "[2,3,4]", "[2,3,4]"},
		{"bias", []int{2, 3, 4}, []int{4}, "[2,3,4]", "[4]"},
		{"column", []int{2, 3, 4}, []int{3, 1}, "[2,3,4]", "[3,1]"},
		{"scalar", []int{2, 3, 4}, []int{}, "[2,3,4]", "[]"},
		{"both", []int{2, 1, 4}, []int{3, 1}, "[2,1,4]", "[3,1]"},
		{"scalar_left", []int{}, []int{2, 3}, "[]", "[2,3]"},
	}
	for op, f := range binOps {
		for _, s := range shapes {
			cases = append(cases, opCase{
				name:   op + "_" + s.name,
				src:    fmt.Sprintf("graph g {\n  input %%x: {T}%s\n  input %%z: {T}%s\n  %%y = %s %%x, %%z\n  output %%y\n}\n", s.ta, s.tb, op),
				inputs: in2(randArr(r, -2, 2, s.a...), randArr(r, 0.5, 2, s.b...)),
				want:   func(in map[string]arr, dt graph.DType) arr { return broadcast(in["x"], in["z"], f) },
			})
		}
		cases = append(cases, opCase{
			name:   op + "_specials",
			src:    fmt.Sprintf("graph g {\n  input %%x: {T}[2,4]\n  input %%z: {T}[4]\n  %%y = %s %%x, %%z\n  output %%y\n}\n", op),
			inputs: in2(specials, arr{shape: []int{4}, data: []float64{1, math.NaN(), 0, -2}}),
			want:   func(in map[string]arr, dt graph.DType) arr { return broadcast(in["x"], in["z"], f) },
		})
	}
	tr := 1e-5
	unOps := map[string]struct {
		f   func(float64) float64
		in  arr
		tol float64
	}{
		"neg":     {func(x float64) float64 { return -x }, x234, 0},
		"abs":     {math.Abs, x234, 0},
		"exp":     {math.Exp, x234, tr},
		"log":     {math.Log, pos, tr},
		"sqrt":    {math.Sqrt, pos, tr},
		"relu":    {func(x float64) float64 { return nanMax(x, 0) }, x234, 0},
		"sigmoid": {func(x float64) float64 { return 1 / (1 + math.Exp(-x)) }, x234, tr},
		"tanh":    {math.Tanh, x234, tr},
	}
	for op, u := range unOps {
		cases = append(cases, opCase{
			name: op, tol: u.tol,
			src:    fmt.Sprintf("graph g {\n  input %%x: {T}[2,3,4]\n  %%y = %s %%x\n  output %%y\n}\n", op),
			inputs: in1(u.in),
			want:   func(in map[string]arr, dt graph.DType) arr { return unary(in["x"], u.f) },
		})
		if op != "log" && op != "sqrt" {
			cases = append(cases, opCase{
				name: op + "_specials", tol: u.tol,
				src:    fmt.Sprintf("graph g {\n  input %%x: {T}[2,4]\n  %%y = %s %%x\n  output %%y\n}\n", op),
				inputs: in1(specials),
				want:   func(in map[string]arr, dt graph.DType) arr { return unary(in["x"], u.f) },
			})
		}
	}
	for _, alpha := range []float64{0.01, 0.2} {
		cases = append(cases, opCase{
			name:   fmt.Sprintf("leaky_relu_%g", alpha),
			src:    fmt.Sprintf("graph g {\n  input %%x: {T}[2,4]\n  %%y = leaky_relu %%x {alpha=%g}\n  output %%y\n}\n", alpha),
			inputs: in1(specials),
			want: func(in map[string]arr, dt graph.DType) arr {
				a := alpha
				if dt == graph.F32 {
					a = float64(float32(alpha))
				}
				return unary(in["x"], func(x float64) float64 {
					if x > 0 {
						return x
					}
					return a * x
				})
			},
		})
	}
	// matmul
	cases = append(cases,
		opCase{name: "matmul_2d", tol: tr,
			src:    "graph g {\n  input %x: {T}[5,7]\n  param %z: {T}[7,3]\n  %y = matmul %x, %z\n  output %y\n}\n",
			inputs: in2(randArr(r, -1, 1, 5, 7), randArr(r, -1, 1, 7, 3)),
			want:   func(in map[string]arr, dt graph.DType) arr { return matmulRef(in["x"], in["z"]) }},
		opCase{name: "matmul_3d_shared", tol: tr,
			src:    "graph g {\n  input %x: {T}[2,5,7]\n  param %z: {T}[7,3]\n  %y = matmul %x, %z\n  output %y\n}\n",
			inputs: in2(randArr(r, -1, 1, 2, 5, 7), randArr(r, -1, 1, 7, 3)),
			want:   func(in map[string]arr, dt graph.DType) arr { return matmulRef(in["x"], in["z"]) }},
		opCase{name: "matmul_batched", tol: tr,
			src:    "graph g {\n  input %x: {T}[2,3,5,7]\n  input %z: {T}[2,3,7,4]\n  %y = matmul %x, %z\n  output %y\n}\n",
			inputs: in2(randArr(r, -1, 1, 2, 3, 5, 7), randArr(r, -1, 1, 2, 3, 7, 4)),
			want:   func(in map[string]arr, dt graph.DType) arr { return matmulRef(in["x"], in["z"]) }},
	)
	// softmax, log_softmax on every axis
	for _, op := range []string{"softmax", "log_softmax"} {
		for ax := -1; ax < 3; ax++ {
			cases = append(cases, opCase{
				name: fmt.Sprintf("%s_axis%d", op, ax), tol: tr,
				src:    fmt.Sprintf("graph g {\n  input %%x: {T}[2,3,4]\n  %%y = %s %%x {axis=%d}\n  output %%y\n}\n", op, ax),
				inputs: in1(x234),
				want: func(in map[string]arr, dt graph.DType) arr {
					a := ax
					if a < 0 {
						a += 3
					}
					return softmaxRef(in["x"], a, op == "log_softmax")
				},
			})
		}
	}
	// reductions
	x2345 := randArr(r, -3, 3, 2, 3, 4, 5)
	for _, op := range []string{"sum", "mean", "max", "min"} {
		for _, axes := range [][]int{nil, {0}, {1}, {3}, {0, 2}, {1, 3}, {0, 1, 2, 3}, {-1, 0}} {
			for _, keep := range []bool{false, true} {
				attrs := ""
				var parts []string
				if axes != nil {
					parts = append(parts, "axes="+strings.ReplaceAll(fmt.Sprint(axes), " ", ","))
				}
				if keep {
					parts = append(parts, "keepdims=true")
				}
				if len(parts) > 0 {
					attrs = " {" + strings.Join(parts, ", ") + "}"
				}
				tol := tr
				if op == "max" || op == "min" {
					tol = 0
				}
				cases = append(cases, opCase{
					name: fmt.Sprintf("%s_%v_%v", op, axes, keep), tol: tol,
					src:    fmt.Sprintf("graph g {\n  input %%x: {T}[2,3,4,5]\n  %%y = %s %%x%s\n  output %%y\n}\n", op, attrs),
					inputs: in1(x2345),
					want: func(in map[string]arr, dt graph.DType) arr {
						norm := []int{0, 1, 2, 3}
						if axes != nil {
							norm = nil
							for _, a := range axes {
								if a < 0 {
									a += 4
								}
								norm = append(norm, a)
							}
						}
						var init float64
						f := func(acc, v float64) float64 { return acc + v }
						switch op {
						case "max":
							init, f = math.Inf(-1), nanMax
						case "min":
							init, f = math.Inf(1), nanMin
						}
						out, counts := reduce(in["x"], norm, keep, init, f)
						if op == "mean" {
							for i := range out.data {
								out.data[i] /= float64(counts[i])
							}
						}
						return out
					},
				})
			}
		}
	}
	cases = append(cases,
		opCase{name: "max_nan",
			src:    "graph g {\n  input %x: {T}[2,4]\n  %y = max %x {axes=[1]}\n  output %y\n}\n",
			inputs: in1(specials),
			want: func(in map[string]arr, dt graph.DType) arr {
				o, _ := reduce(in["x"], []int{1}, false, math.Inf(-1), nanMax)
				return o
			}},
		opCase{name: "min_nan",
			src:    "graph g {\n  input %x: {T}[2,4]\n  %y = min %x {axes=[0]}\n  output %y\n}\n",
			inputs: in1(specials),
			want: func(in map[string]arr, dt graph.DType) arr {
				o, _ := reduce(in["x"], []int{0}, false, math.Inf(1), nanMin)
				return o
			}},
	)
	// shape ops
	cases = append(cases,
		opCase{name: "reshape",
			src:    "graph g {\n  input %x: {T}[2,3,4]\n  %y = reshape %x {shape=[4,-1]}\n  output %y\n}\n",
			inputs: in1(x234),
			want:   func(in map[string]arr, dt graph.DType) arr { return reshaped(in["x"], 4, 6) }},
		opCase{name: "flatten",
			src:    "graph g {\n  input %x: {T}[2,3,4,5]\n  %y = flatten %x {axis=2}\n  output %y\n}\n",
			inputs: in1(x2345),
			want:   func(in map[string]arr, dt graph.DType) arr { return reshaped(in["x"], 6, 20) }},
		opCase{name: "transpose",
			src:    "graph g {\n  input %x: {T}[2,3,4,5]\n  %y = transpose %x {perm=[2,0,3,1]}\n  output %y\n}\n",
			inputs: in1(x2345),
			want:   func(in map[string]arr, dt graph.DType) arr { return transposeRef(in["x"], []int{2, 0, 3, 1}) }},
		opCase{name: "transpose_2d",
			src:    "graph g {\n  input %x: {T}[300,3]\n  %y = transpose %x {perm=[1,0]}\n  output %y\n}\n",
			inputs: in1(randArr(r, -1, 1, 300, 3)),
			want:   func(in map[string]arr, dt graph.DType) arr { return transposeRef(in["x"], []int{1, 0}) }},
		opCase{name: "concat_axis1",
			src:    "graph g {\n  input %x: {T}[2,3,4]\n  input %z: {T}[2,5,4]\n  %y = concat %x, %z, %x {axis=1}\n  output %y\n}\n",
			inputs: in2(x234, randArr(r, -1, 1, 2, 5, 4)),
			want:   func(in map[string]arr, dt graph.DType) arr { return concatRef(1, in["x"], in["z"], in["x"]) }},
		opCase{name: "concat_offsets_over_256",
			src:    "graph g {\n  input %x: {T}[300,2]\n  input %z: {T}[300,2]\n  %y = concat %x, %z {axis=0}\n  output %y\n}\n",
			inputs: in2(randArr(r, -1, 1, 300, 2), randArr(r, -1, 1, 300, 2)),
			want:   func(in map[string]arr, dt graph.DType) arr { return concatRef(0, in["x"], in["z"]) }},
		opCase{name: "slice_axis2",
			src:    "graph g {\n  input %x: {T}[2,3,4,5]\n  %y = slice %x {axis=2, start=1, end=3}\n  output %y\n}\n",
			inputs: in1(x2345),
			want:   func(in map[string]arr, dt graph.DType) arr { return sliceRef(in["x"], 2, 1, 3) }},
		opCase{name: "slice_offset_over_256",
			src:    "graph g {\n  input %x: {T}[600,2]\n  %y = slice %x {axis=0, start=300, end=600}\n  output %y\n}\n",
			inputs: in1(randArr(r, -1, 1, 600, 2)),
			want:   func(in map[string]arr, dt graph.DType) arr { return sliceRef(in["x"], 0, 300, 600) }},
		opCase{name: "slice_share",
			src:    "graph g {\n  input %x: {T}[N,3]\n  %y = slice %x {axis=0, part=2, parts=4, split=remainder}\n  output %y\n}\n",
			inputs: in1(randArr(r, -1, 1, 10, 3)),
			want:   func(in map[string]arr, dt graph.DType) arr { return sliceRef(in["x"], 0, 4, 6) }},
		opCase{name: "copy",
			src:    "graph g {\n  input %x: {T}[2,3,4]\n  %y = copy %x\n  output %y\n}\n",
			inputs: in1(x234),
			want:   func(in map[string]arr, dt graph.DType) arr { return in["x"] }},
		opCase{name: "dim",
			src:    "graph g {\n  input %x: {T}[N,3,4]\n  %y = dim %x {axis=0, dtype={T}}\n  output %y\n}\n",
			inputs: in1(randArr(r, -1, 1, 7, 3, 4)),
			want:   func(in map[string]arr, dt graph.DType) arr { return arr{shape: []int{}, data: []float64{7}} }},
		opCase{name: "dim_times",
			src:    "graph g {\n  input %x: {T}[N,3,4]\n  %d = dim %x {axis=-1, dtype={T}}\n  %y = mul %x, %d\n  output %y\n}\n",
			inputs: in1(randArr(r, -1, 1, 7, 3, 4)),
			want: func(in map[string]arr, dt graph.DType) arr {
				return unary(in["x"], func(v float64) float64 { return v * 4 })
			}},
	)
	// conv2d
	type conv struct {
		name        string
		x, w        []int
		stride, dil []int
		pad         []int // [top,left,bottom,right]
		padAttr     string
		groups      int
		bias        bool
	}
	convs := []conv{
		{"plain", []int{2, 3, 7, 7}, []int{4, 3, 3, 3}, []int{1, 1}, []int{1, 1}, []int{0, 0, 0, 0}, "", 1, true},
		{"pad_stride", []int{2, 3, 8, 7}, []int{4, 3, 3, 2}, []int{2, 1}, []int{1, 1}, []int{1, 2, 1, 2}, "pad=[1,2], ", 1, false},
		{"asym_pad_dilation", []int{1, 2, 9, 9}, []int{3, 2, 3, 3}, []int{1, 2}, []int{2, 1}, []int{0, 1, 2, 3}, "pad=[0,1,2,3], ", 1, true},
		{"groups", []int{2, 4, 6, 6}, []int{6, 2, 3, 3}, []int{1, 1}, []int{1, 1}, []int{1, 1, 1, 1}, "pad=[1,1], ", 2, true},
		{"depthwise", []int{2, 4, 5, 5}, []int{4, 1, 3, 3}, []int{2, 2}, []int{1, 1}, []int{1, 1, 1, 1}, "pad=[1,1], ", 4, false},
	}
	for _, c := range convs {
		attrs := fmt.Sprintf("{stride=[%d,%d], %sdilation=[%d,%d], groups=%d}", c.stride[0], c.stride[1], c.padAttr, c.dil[0], c.dil[1], c.groups)
		args := "%x, %w"
		decl := ""
		if c.bias {
			args += ", %b"
			decl = fmt.Sprintf("  param %%b: {T}[%d]\n", c.w[0])
		}
		in := map[string]arr{"x": randArr(r, -1, 1, c.x...), "w": randArr(r, -1, 1, c.w...), "b": randArr(r, -1, 1, c.w[0])}
		if !c.bias {
			delete(in, "b")
		}
		cases = append(cases, opCase{
			name: "conv2d_" + c.name, tol: tr,
			src: fmt.Sprintf("graph g {\n  input %%x: {T}[N,%d,%d,%d]\n  param %%w: {T}%s\n%s  %%y = conv2d %s %s\n  output %%y\n}\n",
				c.x[1], c.x[2], c.x[3], strings.ReplaceAll(fmt.Sprint(c.w), " ", ","), decl, args, attrs),
			inputs: in,
			want: func(in map[string]arr, dt graph.DType) arr {
				var b *arr
				if c.bias {
					bb := in["b"]
					b = &bb
				}
				return convRef(in["x"], in["w"], b, c.stride, c.pad, c.dil, c.groups)
			},
		})
	}
	// pooling
	x4 := randArr(r, -3, 3, 2, 3, 7, 6)
	x4.data[5] = math.NaN()
	for _, op := range []string{"maxpool2d", "avgpool2d"} {
		for _, p := range []struct {
			name                 string
			kernel, stride, pad4 []int
			attrs                string
		}{
			{"k2", []int{2, 2}, []int{2, 2}, []int{0, 0, 0, 0}, "kernel=[2,2]"},
			{"k3_s1_pad", []int{3, 3}, []int{1, 1}, []int{1, 1, 1, 1}, "kernel=[3,3], stride=[1,1], pad=[1,1]"},
			{"k3_s2_asym", []int{3, 2}, []int{2, 1}, []int{0, 1, 2, 1}, "kernel=[3,2], stride=[2,1], pad=[0,1,2,1]"},
		} {
			cases = append(cases, opCase{
				name: op + "_" + p.name, tol: map[bool]float64{true: 0, false: tr}[op == "maxpool2d"],
				src:    fmt.Sprintf("graph g {\n  input %%x: {T}[N,3,7,6]\n  %%y = %s %%x {%s}\n  output %%y\n}\n", op, p.attrs),
				inputs: in1(x4),
				want: func(in map[string]arr, dt graph.DType) arr {
					return poolRef(in["x"], p.kernel, p.stride, p.pad4, op == "maxpool2d")
				},
			})
		}
	}
	// batchnorm
	for _, training := range []bool{false, true} {
		for _, ax := range []int{1, -1} {
			c := 3
			if ax == -1 {
				c = 5
			}
			cases = append(cases, opCase{
				name: fmt.Sprintf("batchnorm_axis%d_training_%v", ax, training), tol: 1e-5,
				src: fmt.Sprintf("graph g {\n  input %%x: {T}[N,3,4,5]\n  param %%s: {T}[%d]\n  param %%b: {T}[%d]\n  param %%m: {T}[%d]\n  param %%v: {T}[%d]\n"+
					"  %%y = batchnorm %%x, %%s, %%b, %%m, %%v {axis=%d, epsilon=0.001, training=%v}\n  output %%y\n}\n", c, c, c, c, ax, training),
				inputs: map[string]arr{"x": x2345, "s": randArr(r, 0.5, 1.5, c), "b": randArr(r, -1, 1, c), "m": randArr(r, -1, 1, c), "v": randArr(r, 0.5, 1.5, c)},
				want: func(in map[string]arr, dt graph.DType) arr {
					a := ax
					if a < 0 {
						a += 4
					}
					eps := 0.001
					if dt == graph.F32 {
						eps = float64(float32(eps))
					}
					return batchnormRef(in["x"], in["s"], in["b"], in["m"], in["v"], a, eps, training)
				},
			})
		}
	}
	cases = append(cases, opCase{name: "dropout_inference",
		src:    "graph g {\n  input %x: {T}[N,3,4]\n  %y = dropout %x {rate=0.3}\n  output %y\n}\n",
		inputs: in1(x234),
		want:   func(in map[string]arr, dt graph.DType) arr { return in["x"] }})
	cases = append(cases, gradOpCases()...)
	cases = append(cases, logicOpCases()...)
	cases = append(cases, collectiveOpCases()...)
	cases = append(cases, assignOpCases()...)
	return append(cases, indexOpCases()...)
}

// TestOps runs every op of the op table, in f32 and f64, against a
// straightforward reference in float64: exact where the op is one IEEE
// operation per element (or a comparison), else within a relative 1e-6
// (f32) or 1e-12 (f64).
func TestOps(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range opCases() {
		for _, dt := range []graph.DType{graph.F32, graph.F64} {
			t.Run(c.name+"_"+dt.String(), func(t *testing.T) { runOp(t, c, dt) })
		}
		g, err := graph.Parse("", []byte(strings.ReplaceAll(c.src, "{T}", "f32")))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		for _, n := range g.Nodes {
			seen[n.Op] = true
		}
	}
	seen["dropout"] = true // training mode: TestDropout
	for _, op := range graph.OpNames() {
		if !seen[op] {
			t.Errorf("op %s has no test", op)
		}
	}
}
