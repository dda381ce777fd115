package cpu

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"

	"multigpu/graph"
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

// convKernel is a 2-D convolution with groups: per sample and group, the
// patches are laid out as columns (zero outside the image) and multiplied
// by the group's filters with gemm; the bias is added after.
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
		gemm := func(m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
			gonum.Implementation{}.Sgemm(blas.NoTrans, blas.NoTrans, m, n, k, 1, a, lda, b, ldb, 0, c, ldc)
		}
		return convT(win, o, groups, hasBias, gemm), nil
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
