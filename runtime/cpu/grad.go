package cpu

import (
	"fmt"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"

	"multigpu/graph"
	"multigpu/runtime/host"
)

// Kernels of the ops backward graphs use (passes/grad): a comparison
// mask, a broadcast, and the gradients of the window ops.

// isCompare reports whether a binary kernel op is a comparison (the
// compare op, as cmp_ and its cmp attribute).
func isCompare(op string) bool { return len(op) > 4 && op[:4] == "cmp_" }

// compareFunc returns 1 where the comparison holds, else 0. Comparisons
// with NaN hold only for ne.
func compareFunc[T float](op string) func(a, b T) T {
	mask := func(ok bool) T {
		if ok {
			return 1
		}
		return 0
	}
	switch op {
	case "cmp_eq":
		return func(a, b T) T { return mask(a == b) }
	case "cmp_ne":
		return func(a, b T) T { return mask(a != b) }
	case "cmp_lt":
		return func(a, b T) T { return mask(a < b) }
	case "cmp_le":
		return func(a, b T) T { return mask(a <= b) }
	case "cmp_gt":
		return func(a, b T) T { return mask(a > b) }
	case "cmp_ge":
		return func(a, b T) T { return mask(a >= b) }
	}
	panic(fmt.Sprintf("cpu: comparison %s", op))
}

// compareKernel is the compare op: a broadcasting binary kernel.
func compareKernel(s *spec) (kernelFn, error) {
	op := "cmp_" + s.node.StringAttr("cmp", "")
	return floatKernel(s.dt, func() (kernelFn, kernelFn) {
		return binaryKernel[float32](op, s.in[0], s.in[1], s.out), binaryKernel[float64](op, s.in[0], s.in[1], s.out)
	})
}

// broadcastKernel copies its first operand, broadcast, to the shape of
// the second (whose elements it does not read).
func broadcastKernel(s *spec) (kernelFn, error) {
	return floatKernel(s.dt, func() (kernelFn, kernelFn) {
		return broadcastT[float32](s.in[0], s.out), broadcastT[float64](s.in[0], s.out)
	})
}

// broadcastT copies an operand of shape in, broadcast, to shape out; any
// element type (expand uses it too).
func broadcastT[T any](in, out []int) kernelFn {
	shape, str := host.Collapse(out, host.BroadcastStrides(in, out), host.Strides(out))
	n := numel(out)
	last := shape[len(shape)-1]
	sa := str[0][len(shape)-1]
	return func(ins []any, _ *runState) (any, error) {
		a := ins[0].([]T)
		res := make([]T, n)
		if n == 0 {
			return res, nil
		}
		od := newOdometer(shape, str)
		for pos := 0; ; pos += last {
			row, src := res[pos:pos+last], a[od.off[0]:]
			if sa == 0 {
				v := src[0]
				for i := range row {
					row[i] = v
				}
			} else {
				copy(row, src[:last])
			}
			if !od.next() {
				break
			}
		}
		return res, nil
	}
}

// convGeometry returns the window of a conv2d over x (shape xs) with a
// kernel of kh x kw giving dy (shape ys), from n's attributes.
func convGeometry(n *graph.Node, xs, ys []int, kh, kw int) window {
	return newWindow(xs, []int{kh, kw}, n.IntsAttr("stride", []int{1, 1}), n.IntsAttr("pad", []int{0, 0}),
		n.IntsAttr("dilation", []int{1, 1}), ys)
}

// gemmFn is C = alpha op(A) op(B) + beta C on row-major matrices.
type gemmFn[T float] func(ta, tb blas.Transpose, m, n, k int, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int)

func gemm32(ta, tb blas.Transpose, m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	gonum.Implementation{}.Sgemm(ta, tb, m, n, k, 1, a, lda, b, ldb, beta, c, ldc)
}

func gemm64(ta, tb blas.Transpose, m, n, k int, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	gonum.Implementation{}.Dgemm(ta, tb, m, n, k, 1, a, lda, b, ldb, beta, c, ldc)
}

// convGradInputKernel: per sample and group, the columns w_g^T dy_g are
// computed with gemm and added back into the image they came from
// (col2im), in order of channel, kernel row, kernel column and position.
func convGradInputKernel(s *spec) (kernelFn, error) {
	n := s.node
	ws := s.in[1]
	win := convGeometry(n, s.out, s.in[0], ws[2], ws[3])
	groups := int(n.IntAttr("groups", 1))
	o := ws[0]
	return floatKernel(s.dt, func() (kernelFn, kernelFn) {
		return convGradInputT[float32](win, o, groups, gemm32), convGradInputT[float64](win, o, groups, gemm64)
	})
}

func convGradInputT[T float](win window, o, groups int, gemm gemmFn[T]) kernelFn {
	cg, og := win.c/groups, o/groups
	kk := cg * win.kh * win.kw
	hw := win.oh * win.ow
	return func(ins []any, rs *runState) (any, error) {
		dy, w := ins[0].([]T), ins[1].([]T)
		dx := make([]T, win.n*win.c*win.h*win.w)
		cols := make([]T, kk*hw)
		for n := 0; n < win.n; n++ {
			if err := rs.check(); err != nil {
				return nil, err
			}
			for g := 0; g < groups; g++ {
				if hw > 0 && kk > 0 {
					gemm(blas.Trans, blas.NoTrans, kk, hw, og, w[g*og*kk:], kk, dy[(n*o+g*og)*hw:], hw, 0, cols, hw)
				}
				col2im(win, cols, cg, dx[(n*win.c+g*cg)*win.h*win.w:])
			}
		}
		return dx, nil
	}
}

// col2im adds cols[(c*KH+kh)*KW+kw, oh*OW+ow] into the image x[C,H,W] at
// the position each column element was taken from (im2col's inverse).
func col2im[T float](win window, cols []T, cg int, x []T) {
	hw := win.oh * win.ow
	for c := 0; c < cg; c++ {
		img := x[c*win.h*win.w : (c+1)*win.h*win.w]
		for kh := 0; kh < win.kh; kh++ {
			for kw := 0; kw < win.kw; kw++ {
				row := cols[((c*win.kh+kh)*win.kw+kw)*hw:][:hw]
				for oh := 0; oh < win.oh; oh++ {
					ih := oh*win.sh - win.pt + kh*win.dh
					if ih < 0 || ih >= win.h {
						continue
					}
					src := row[oh*win.ow : (oh+1)*win.ow]
					dst := img[ih*win.w : (ih+1)*win.w]
					for ow, v := range src {
						if iw := ow*win.sw - win.pl + kw*win.dw; iw >= 0 && iw < win.w {
							dst[iw] += v
						}
					}
				}
			}
		}
	}
}

// convGradWeightKernel: per group, the sum over samples, in order, of
// dy_g[n] times the columns of x[n] transposed (gemm accumulating).
func convGradWeightKernel(s *spec) (kernelFn, error) {
	n := s.node
	win := convGeometry(n, s.in[0], s.in[1], s.out[2], s.out[3])
	groups := int(n.IntAttr("groups", 1))
	o := s.out[0]
	return floatKernel(s.dt, func() (kernelFn, kernelFn) {
		return convGradWeightT[float32](win, o, groups, gemm32), convGradWeightT[float64](win, o, groups, gemm64)
	})
}

func convGradWeightT[T float](win window, o, groups int, gemm gemmFn[T]) kernelFn {
	cg, og := win.c/groups, o/groups
	kk := cg * win.kh * win.kw
	hw := win.oh * win.ow
	return func(ins []any, rs *runState) (any, error) {
		x, dy := ins[0].([]T), ins[1].([]T)
		dw := make([]T, o*kk)
		cols := make([]T, kk*hw)
		for n := 0; n < win.n; n++ {
			if err := rs.check(); err != nil {
				return nil, err
			}
			for g := 0; g < groups; g++ {
				im2col(win, x[(n*win.c+g*cg)*win.h*win.w:], cg, cols)
				if hw > 0 && kk > 0 {
					gemm(blas.NoTrans, blas.Trans, og, kk, hw, dy[(n*o+g*og)*hw:], hw, cols, hw, 1, dw[g*og*kk:], kk)
				}
			}
		}
		return dw, nil
	}
}

// poolGradKernel is maxpool2d_grad (operands x, dy) or avgpool2d_grad
// (operand dy): every window's dy goes to the first maximum of the window
// (the element maxpool2d returned), or is shared evenly by the window's
// positions inside the image; overlapping windows add up, in window order.
func poolGradKernel(s *spec) (kernelFn, error) {
	n := s.node
	kernel := n.IntsAttr("kernel", nil)
	isMax := n.Op == "maxpool2d_grad"
	dy := s.in[len(s.in)-1]
	win := newWindow(s.out, kernel, n.IntsAttr("stride", kernel), n.IntsAttr("pad", []int{0, 0}), []int{1, 1}, dy)
	return floatKernel(s.dt, func() (kernelFn, kernelFn) {
		return poolGradT[float32](win, isMax), poolGradT[float64](win, isMax)
	})
}

func poolGradT[T float](win window, isMax bool) kernelFn {
	return func(ins []any, _ *runState) (any, error) {
		dy := ins[len(ins)-1].([]T)
		var x []T
		if isMax {
			x = ins[0].([]T)
		}
		dx := make([]T, win.n*win.c*win.h*win.w)
		pos := 0
		for p := 0; p < win.n*win.c; p++ {
			plane := p * win.h * win.w
			for oh := 0; oh < win.oh; oh++ {
				h0 := oh*win.sh - win.pt
				hlo, hhi := max(h0, 0), min(h0+win.kh, win.h)
				for ow := 0; ow < win.ow; ow++ {
					w0 := ow*win.sw - win.pl
					wlo, whi := max(w0, 0), min(w0+win.kw, win.w)
					g := dy[pos]
					pos++
					if hlo >= hhi || wlo >= whi {
						continue
					}
					if isMax {
						dx[plane+argmaxWindow(x[plane:plane+win.h*win.w], win.w, hlo, hhi, wlo, whi)] += g
						continue
					}
					g /= T((hhi - hlo) * (whi - wlo))
					for h := hlo; h < hhi; h++ {
						row := dx[plane+h*win.w+wlo : plane+h*win.w+whi]
						for i := range row {
							row[i] += g
						}
					}
				}
			}
		}
		return dx, nil
	}
}

// argmaxWindow returns the offset in img (rows of width w) of the element
// maxpool2d's scan of the window keeps: the first maximum (a NaN once
// met), or the window's first element when all are -Inf.
func argmaxWindow[T float](img []T, w, hlo, hhi, wlo, whi int) int {
	best := hlo*w + wlo
	acc := img[best]
	for h := hlo; h < hhi; h++ {
		for i := h*w + wlo; i < h*w+whi; i++ {
			if v := img[i]; !(acc >= v || acc != acc) {
				acc, best = v, i
			}
		}
	}
	return best
}
