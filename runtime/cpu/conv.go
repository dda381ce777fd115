package cpu

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"

	"multigpu/graph"
	"multigpu/runtime/cpu/gemm"
	"multigpu/runtime/cpu/par"
	"multigpu/runtime/cpu/vec"
)

// window is the geometry of a convolution or pooling over x[N,C,H,W].
type window struct {
	n, c, h, w     int // operand
	kh, kw         int // kernel
	sh, sw         int // stride
	pt, pl, pb, pr int // padding: top, left, bottom, right
	dh, dw         int // dilation
	oh, ow         int // result height and width
}

func newWindow(x []int, kernel, stride, pad, dil []int, out []int) window {
	if len(pad) == 2 {
		pad = []int{pad[0], pad[1], pad[0], pad[1]}
	}
	return window{n: x[0], c: x[1], h: x[2], w: x[3], kh: kernel[0], kw: kernel[1],
		sh: stride[0], sw: stride[1], pt: pad[0], pl: pad[1], pb: pad[2], pr: pad[3],
		dh: dil[0], dw: dil[1], oh: out[2], ow: out[3]}
}

// convKernel is a 2-D convolution with groups. In f32 it runs on the
// backend's gemm (convF32); in f64, per sample and group, the patches are
// laid out as columns (zero outside the image) and multiplied by the
// group's filters with gonum's gemm. The bias is added after.
func convKernel(s *spec) (kernelFn, error) {
	n := s.node
	wsh := s.in[1]
	win := newWindow(s.in[0], wsh[2:], n.IntsAttr("stride", []int{1, 1}), n.IntsAttr("pad", []int{0, 0}),
		n.IntsAttr("dilation", []int{1, 1}), s.out)
	groups := int(n.IntAttr("groups", 1))
	hasBias := len(s.in) == 3
	o := wsh[0]
	switch s.dt {
	case graph.F32:
		return convF32(s, win, o, groups, hasBias), nil
	case graph.F64:
		gemm := func(m, n, k int, a []float64, lda int, b []float64, ldb int, c []float64, ldc int) {
			gonum.Implementation{}.Dgemm(blas.NoTrans, blas.NoTrans, m, n, k, 1, a, lda, b, ldb, 0, c, ldc)
		}
		return convT(win, o, groups, hasBias, gemm), nil
	}
	return nil, fmt.Errorf("no cpu kernel for conv2d on %s", s.dt)
}

func convT[T float](win window, o, groups int, hasBias bool,
	gemm func(m, n, k int, a []T, lda int, b []T, ldb int, c []T, ldc int)) kernelFn {
	cg, og := win.c/groups, o/groups
	kk := cg * win.kh * win.kw // patch length
	hw := win.oh * win.ow
	return func(ins []any, rs *runState) (any, error) {
		x, w := ins[0].([]T), ins[1].([]T)
		out := make([]T, win.n*o*hw)
		cols := make([]T, kk*hw)
		for n := 0; n < win.n; n++ {
			if err := rs.check(); err != nil {
				return nil, err
			}
			for g := 0; g < groups; g++ {
				im2col(win, x[(n*win.c+g*cg)*win.h*win.w:], cg, cols)
				gemm(og, hw, kk, w[g*og*kk:], kk, cols, hw, out[(n*o+g*og)*hw:], hw)
			}
			if hasBias {
				b := ins[2].([]T)
				for c := 0; c < o; c++ {
					row := out[(n*o+c)*hw : (n*o+c+1)*hw]
					for i := range row {
						row[i] += b[c]
					}
				}
			}
		}
		return out, nil
	}
}

// colsBudget is the most float32s of patch columns convF32 lays out for
// one product: several samples' worth when they fit, so that each
// product is wide, and about what the last-level cache share of a core
// holds.
const colsBudget = 1 << 20

// convF32 is the f32 convolution on the backend's gemm. A 1x1 convolution
// with unit stride and no padding multiplies the filters by the samples
// themselves: one product, whose columns are every sample's pixels. A
// depthwise convolution (one channel per group) is computed directly.
// Others lay out the patches of a chunk of samples at a time as columns
// (im2col) and multiply each group's filters by them. Every result element
// is the gemm's chain of fused multiply-adds over its patch, in patch
// order, so a sample's result does not depend on the batch around it.
func convF32(s *spec, win window, o, groups int, hasBias bool) kernelFn {
	cg, og := win.c/groups, o/groups
	kk := cg * win.kh * win.kw
	hw := win.oh * win.ow
	s.arena = true
	pointwise := win.kh == 1 && win.kw == 1 && win.sh == 1 && win.sw == 1 && win.pt == 0 && win.pl == 0 &&
		win.pb == 0 && win.pr == 0 && groups == 1
	depthwise := cg == 1 && og == 1 && groups > 1
	chunk := max(1, min(win.n, colsBudget/max(kk*hw, 1)))
	t := &convTask{win: win, o: o, groups: groups, cg: cg, og: og, kk: kk, hw: hw, chunk: chunk, hasBias: hasBias}
	switch {
	case depthwise:
	case pointwise:
		s.scratch = []int64{int64(gemm.PackSize(og, kk))}
	default:
		s.scratch = []int64{int64(gemm.PackSize(og, kk)), int64(kk * hw * chunk)}
	}
	return func(ins []any, rs *runState) (any, error) {
		x, w := ins[0].([]float32), ins[1].([]float32)
		out := newOut[float32](rs, win.n*o*hw)
		if len(out) == 0 {
			return ret(rs, out), nil
		}
		if t.op == nil {
			t.op = rs.gemm.NewOp()
		}
		t.x, t.w, t.out = x, w, out
		t.bias = nil
		if hasBias {
			t.bias = ins[2].([]float32)
		}
		defer func() { t.x, t.w, t.out, t.bias = nil, nil, nil, nil }()
		switch {
		case depthwise:
			t.pieces = win.n * o
			rs.threads().Run(&t.job, t.pieces, depthwiseTask{t})
			return ret(rs, out), nil
		case pointwise:
			packed := scratchF32(rs, 0, gemm.PackSize(og, kk))
			t.op.Run(o, win.n*hw, kk, w, kk,
				gemm.Cols{Data: x, Ld: hw, Group: hw, Stride: win.c * hw},
				gemm.Cols{Data: out, Ld: hw, Group: hw, Stride: o * hw}, packed)
		default:
			packed := scratchF32(rs, 0, gemm.PackSize(og, kk))
			cols := scratchF32(rs, 1, kk*hw*chunk)
			for n0 := 0; n0 < win.n; n0 += chunk {
				if err := rs.check(); err != nil {
					return nil, err
				}
				ns := min(chunk, win.n-n0)
				for g := 0; g < groups; g++ {
					t.n0, t.ns, t.g, t.cols = n0, ns, g, cols
					rs.threads().Run(&t.job, ns*cg, im2colTask{t})
					t.op.Run(og, ns*hw, kk, w[g*og*kk:], kk, gemm.Matrix(cols, ns*hw),
						gemm.Cols{Data: out, Off: (n0*o + g*og) * hw, Ld: hw, Group: hw, Stride: o * hw}, packed)
				}
			}
			t.cols = nil
		}
		if hasBias {
			rs.threads().Run(&t.job, win.n*o, biasTask{t})
		}
		return ret(rs, out), nil
	}
}

// convTask is the state of one f32 convolution's parallel loops.
type convTask struct {
	win                       window
	o, groups, cg, og, kk, hw int
	chunk                     int
	hasBias                   bool
	op                        *gemm.Op
	x, w, out, bias, cols     []float32
	n0, ns, g                 int // the chunk of samples and the group im2colTask lays out
	pieces                    int
	job                       par.Job
}

// im2colTask lays out the patches of channel i%cg of sample n0+i/cg (of
// group g) as rows of cols [kk, ns*hw]: row (c*KH+kh)*KW+kw, column
// sample*hw + oh*OW+ow.
type im2colTask struct{ *convTask }

// Do lays out piece i.
func (t im2colTask) Do(i int, _ *par.Scratch) {
	win := t.win
	s, c := i/t.cg, i%t.cg
	img := t.x[((t.n0+s)*win.c+t.g*t.cg+c)*win.h*win.w:][:win.h*win.w]
	ld := t.ns * t.hw
	for kh := 0; kh < win.kh; kh++ {
		for kw := 0; kw < win.kw; kw++ {
			row := t.cols[((c*win.kh+kh)*win.kw+kw)*ld+s*t.hw:][:t.hw]
			for oh := 0; oh < win.oh; oh++ {
				ih := oh*win.sh - win.pt + kh*win.dh
				dst := row[oh*win.ow : (oh+1)*win.ow]
				if ih < 0 || ih >= win.h {
					clear(dst)
					continue
				}
				src := img[ih*win.w : (ih+1)*win.w]
				if win.sw == 1 {
					// Columns ow whose iw = ow - pl + kw*dw is inside.
					lo := min(max(0, win.pl-kw*win.dw), win.ow)
					hi := max(lo, min(win.ow, win.w+win.pl-kw*win.dw))
					clear(dst[:lo])
					if hi > lo {
						copy(dst[lo:hi], src[lo-win.pl+kw*win.dw:])
					}
					clear(dst[hi:])
					continue
				}
				for ow := range dst {
					iw := ow*win.sw - win.pl + kw*win.dw
					if iw < 0 || iw >= win.w {
						dst[ow] = 0
					} else {
						dst[ow] = src[iw]
					}
				}
			}
		}
	}
}

// biasTask adds the bias to plane i (sample i/o, channel i%o).
type biasTask struct{ *convTask }

// Do adds the bias to plane i.
func (t biasTask) Do(i int, _ *par.Scratch) {
	row := t.out[i*t.hw : (i+1)*t.hw]
	vec.AddScalar(row, row, t.bias[i%t.o])
}

// depthwiseTask computes plane i (sample i/o, channel i%o) of a depthwise
// convolution directly: each result element sums the products of its
// window's taps inside the image, in (kh, kw) order (vec.Axpy along rows
// at unit stride), then adds the bias.
type depthwiseTask struct{ *convTask }

// Do computes plane i.
func (t depthwiseTask) Do(i int, _ *par.Scratch) {
	win := t.win
	c := i % t.o
	img := t.x[i*win.h*win.w:][:win.h*win.w]
	w := t.w[c*win.kh*win.kw:][:win.kh*win.kw]
	out := t.out[i*t.hw:][:t.hw]
	var b float32
	for oh := 0; oh < win.oh; oh++ {
		h0 := oh*win.sh - win.pt
		row := out[oh*win.ow : (oh+1)*win.ow]
		clear(row)
		for kh := 0; kh < win.kh; kh++ {
			ih := h0 + kh*win.dh
			if ih < 0 || ih >= win.h {
				continue
			}
			src := img[ih*win.w : (ih+1)*win.w]
			for kw := 0; kw < win.kw; kw++ {
				wv := w[kh*win.kw+kw]
				off := kw*win.dw - win.pl
				// Columns ow whose iw = ow*sw + off is inside the image.
				lo := 0
				if off < 0 {
					lo = min(win.ow, (-off+win.sw-1)/win.sw)
				}
				hi := lo
				if win.w-off > 0 {
					hi = max(lo, min(win.ow, (win.w-off+win.sw-1)/win.sw))
				}
				if hi <= lo {
					continue
				}
				if win.sw == 1 {
					vec.Axpy(row[lo:hi], src[lo+off:hi+off], wv)
					continue
				}
				for ow := lo; ow < hi; ow++ {
					row[ow] += float32(wv * src[ow*win.sw+off])
				}
			}
		}
		if t.bias != nil {
			b = t.bias[c]
			vec.AddScalar(row, row, b)
		}
	}
}

// im2col writes the patches of channels [0, cg) of one sample x[C,H,W] as
// cols[(c*KH+kh)*KW+kw, oh*OW+ow].
func im2col[T float](win window, x []T, cg int, cols []T) {
	hw := win.oh * win.ow
	for c := 0; c < cg; c++ {
		img := x[c*win.h*win.w : (c+1)*win.h*win.w]
		for kh := 0; kh < win.kh; kh++ {
			for kw := 0; kw < win.kw; kw++ {
				row := cols[((c*win.kh+kh)*win.kw+kw)*hw:][:hw]
				for oh := 0; oh < win.oh; oh++ {
					ih := oh*win.sh - win.pt + kh*win.dh
					dst := row[oh*win.ow : (oh+1)*win.ow]
					if ih < 0 || ih >= win.h {
						clear(dst)
						continue
					}
					src := img[ih*win.w : (ih+1)*win.w]
					for ow := range dst {
						iw := ow*win.sw - win.pl + kw*win.dw
						if iw < 0 || iw >= win.w {
							dst[ow] = 0
						} else {
							dst[ow] = src[iw]
						}
					}
				}
			}
		}
	}
}

// poolKernel is max or average pooling; padded positions take no part
// (an average divides by the number of positions inside the image).
func poolKernel(s *spec) (kernelFn, error) {
	n := s.node
	kernel := n.IntsAttr("kernel", nil)
	win := newWindow(s.in[0], kernel, n.IntsAttr("stride", kernel), n.IntsAttr("pad", []int{0, 0}), []int{1, 1}, s.out)
	isMax := n.Op == "maxpool2d"
	return floatKernel(s.dt, func() (kernelFn, kernelFn) {
		return poolT[float32](win, isMax), poolT[float64](win, isMax)
	})
}

func poolT[T float](win window, isMax bool) kernelFn {
	return func(ins []any, _ *runState) (any, error) {
		x := ins[0].([]T)
		out := make([]T, win.n*win.c*win.oh*win.ow)
		pos := 0
		for p := 0; p < win.n*win.c; p++ {
			img := x[p*win.h*win.w : (p+1)*win.h*win.w]
			for oh := 0; oh < win.oh; oh++ {
				h0 := oh*win.sh - win.pt
				hlo, hhi := max(h0, 0), min(h0+win.kh, win.h)
				for ow := 0; ow < win.ow; ow++ {
					w0 := ow*win.sw - win.pl
					wlo, whi := max(w0, 0), min(w0+win.kw, win.w)
					var acc T
					if isMax {
						acc = T(math.Inf(-1))
						for h := hlo; h < hhi; h++ {
							for _, v := range img[h*win.w+wlo : h*win.w+whi] {
								acc = maximum(acc, v)
							}
						}
					} else {
						acc = T(math.Copysign(0, -1))
						for h := hlo; h < hhi; h++ {
							for _, v := range img[h*win.w+wlo : h*win.w+whi] {
								acc += v
							}
						}
						acc /= T((hhi - hlo) * (whi - wlo))
					}
					out[pos] = acc
					pos++
				}
			}
		}
		return out, nil
	}
}
