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
	hasBias := len(n.Args) == 3
	o := wsh[0]
	switch s.dt {
	case graph.F32:
		return convF32(s, win, o, groups), nil
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

// colsBudget is the most float32s of packed patch columns convF32 lays
// out for one product: several samples' worth when they fit, so that each
// product is wide, and about what the last-level cache share of a core
// holds.
const colsBudget = 1 << 20

// convF32 is the f32 convolution on the backend's gemm. The filters are
// the product's A, packed once and kept while the weight is the same
// program input (a param); its B is the patches. A 1x1 convolution with
// unit stride and no padding multiplies the filters by the samples
// themselves: one product, whose columns are every sample's pixels. A
// depthwise convolution (one channel per group) is computed directly.
// Others multiply each group's filters by the patches of a chunk of
// samples at a time, which the gemm packs straight from the image
// (convSource): zero-padded, and split by phase of the stride, when the
// convolution pads or strides. The patch of a result element is ordered
// by tap (kh, kw), then channel; every result element is the gemm's chain
// of fused multiply-adds over its patch in that order, so a sample's
// result does not depend on the batch around it. The bias and the
// elementwise ops Compile folded in (fuse.go) are the product's epilogue.
func convF32(s *spec, win window, o, groups int) kernelFn {
	cg, og := win.c/groups, o/groups
	kk := cg * win.kh * win.kw
	hw := win.oh * win.ow
	s.arena = true
	f := s.fuse
	if f == nil {
		f = &fusion{bias: -1, lo: -1, hi: -1}
	}
	bias := f.bias
	if len(s.node.Args) == 3 {
		bias = 2
	}
	pointwise := win.kh == 1 && win.kw == 1 && win.sh == 1 && win.sw == 1 && win.pt == 0 && win.pl == 0 &&
		win.pb == 0 && win.pr == 0 && groups == 1
	depthwise := cg == 1 && og == 1 && groups > 1
	chunk := max(1, min(win.n, colsBudget/max(gemm.PackBSize(kk, hw), 1)))
	t := &convTask{win: win, o: o, groups: groups, cg: cg, og: og, kk: kk, hw: hw, chunk: chunk, fuse: f, biasArg: bias}
	// The filters' columns in patch order: tap-major.
	taps := win.kh * win.kw
	t.perm = make([]int, kk)
	for tap := range taps {
		for c := range cg {
			t.perm[tap*cg+c] = c*taps + tap
		}
	}
	if pointwise {
		t.perm = nil
	}
	wIn := s.inputs[1]
	packA := groups * gemm.PackSize(og, kk)
	if wIn >= 0 || depthwise {
		packA = 0 // packed once into t.cache, or none
	}
	if !pointwise && !depthwise {
		t.src = newConvSource(win, cg, chunk)
	}
	switch {
	case depthwise:
		s.scratch = nil
	case pointwise:
		s.scratch = []int64{int64(packA)}
	default:
		s.scratch = []int64{int64(packA), int64(t.src.planesSize), int64(gemm.PackBSize(kk, chunk*hw))}
	}
	return func(ins []any, rs *runState) (any, error) {
		x, w := ins[0].([]float32), ins[1].([]float32)
		out := newOut[float32](rs, win.n*o*hw)
		if len(out) == 0 {
			return ret(rs, out), nil
		}
		t.x, t.w, t.out = x, w, out
		t.bias = nil
		if bias >= 0 {
			t.bias = ins[bias].([]float32)
		}
		defer func() { t.x, t.w, t.out, t.bias, t.prod = nil, nil, nil, nil, gemm.Product{} }()
		if err := setEpilogue(&t.epi, f, ins); err != nil {
			return nil, err
		}
		t.epi.ColBias = nil
		if depthwise {
			t.pieces = win.n * o
			rs.threads().Run(&t.job, t.pieces, depthwiseTask{t})
			return ret(rs, out), nil
		}
		if t.op == nil {
			t.op = rs.gemm.NewOp()
		}
		// The filters, packed: group g's at g*PackSize(og, kk).
		var pa []float32
		if wIn >= 0 {
			src := rs.input(wIn)
			var fresh bool
			if pa, fresh = t.cache.get(src, groups*gemm.PackSize(og, kk)); fresh {
				t.packFilters(pa, w)
				t.cache.keep(src)
			}
		} else {
			pa = scratchF32(rs, 0, packA)
			t.packFilters(pa, w)
		}
		pr := &t.prod
		if pointwise {
			t.cols = gemm.Cols{Data: x, Ld: hw, Group: hw, Stride: win.c * hw}
			*pr = gemm.Product{M: o, N: win.n * hw, K: kk, PackedA: pa, B: &t.cols,
				C: gemm.Cols{Data: out, Ld: hw, Group: hw, Stride: o * hw}, Epi: t.epi}
			pr.Epi.Bias = t.bias
			t.op.Compute(pr)
			t.cols = gemm.Cols{}
			return ret(rs, out), nil
		}
		cs := t.src
		planes := scratchF32(rs, 1, cs.planesSize)
		bscratch := scratchF32(rs, 2, gemm.PackBSize(kk, chunk*hw))
		defer func() { cs.planes = nil }()
		for n0 := 0; n0 < win.n; n0 += chunk {
			if err := rs.check(); err != nil {
				return nil, err
			}
			ns := min(chunk, win.n-n0)
			for g := 0; g < groups; g++ {
				if cs.direct {
					cs.planes = x[(n0*win.c+g*cg)*win.h*win.w:]
				} else {
					cs.planes = planes
					t.n0, t.ns, t.g = n0, ns, g
					rs.threads().Run(&t.job, ns*cg, planesTask{t})
				}
				*pr = gemm.Product{M: og, N: ns * hw, K: kk, PackedA: pa[g*gemm.PackSize(og, kk):], B: cs, BScratch: bscratch,
					C: gemm.Cols{Data: out, Off: (n0*o + g*og) * hw, Ld: hw, Group: hw, Stride: o * hw}, Epi: t.epi}
				if t.bias != nil {
					pr.Epi.Bias = t.bias[g*og : (g+1)*og]
				}
				t.op.Compute(pr)
			}
		}
		return ret(rs, out), nil
	}
}

// convTask is the state of one f32 convolution's kernel and parallel
// loops.
type convTask struct {
	win                       window
	o, groups, cg, og, kk, hw int
	chunk                     int
	fuse                      *fusion
	biasArg                   int   // operand index of the bias, or -1
	perm                      []int // filter column of each patch position (nil: in order)
	op                        *gemm.Op
	prod                      gemm.Product
	epi                       gemm.Epilogue
	cache                     packCache // the packed filters
	cols                      gemm.Cols
	src                       *convSource
	x, w, out, bias           []float32
	n0, ns, g                 int // the chunk of samples and the group planesTask lays out
	pieces                    int
	job                       par.Job
}

// packFilters packs every group's filters into pa, patch positions in
// the order of t.perm.
func (t *convTask) packFilters(pa, w []float32) {
	for g := range t.groups {
		dst, src := pa[g*gemm.PackSize(t.og, t.kk):], w[g*t.og*t.kk:]
		if t.perm == nil {
			gemm.PackA(dst, t.og, t.kk, src, t.kk)
		} else {
			gemm.PackAPerm(dst, t.og, t.kk, src, t.kk, t.perm)
		}
	}
}

// convSource is the B of a convolution's product (a gemm.Source): row
// tap*cg + c, column (sample*OH + oh)*OW + ow holds the input pixel that
// tap (kh, kw) of the window at (oh, ow) sees in channel c. It reads the
// planes: the samples zero-padded, each channel split into the phases of
// the stride that some tap uses (phase (ph, pw) holds padded rows ph,
// ph+sh, ... and columns pw, pw+sw, ...), so that the pixels a tap sees
// along a row of the output are contiguous; or, without padding and
// stride, the samples themselves (direct).
type convSource struct {
	planes      []float32
	direct      bool
	cg          int
	win         window
	hq, wq      int   // a phase plane's height and width
	plane       int   // channel step
	sample      int   // sample step
	slots       []int // by phase ph*sw+pw: its index in a sample's planes, or -1
	nslots      int
	tapOff      []int // by tap: offset of its pixel for output (0, 0), channel 0
	planesSize  int   // float32s of the planes of a chunk
	ow, ohw     int
	chunkSample int
}

func newConvSource(win window, cg, chunk int) *convSource {
	cs := &convSource{win: win, cg: cg, ow: win.ow, ohw: win.oh * win.ow}
	cs.direct = win.sh == 1 && win.sw == 1 && win.pt == 0 && win.pl == 0 && win.pb == 0 && win.pr == 0
	if cs.direct {
		cs.hq, cs.wq, cs.plane, cs.sample = win.h, win.w, win.h*win.w, win.c*win.h*win.w
		for kh := range win.kh {
			for kw := range win.kw {
				cs.tapOff = append(cs.tapOff, kh*win.dh*win.w+kw*win.dw)
			}
		}
		return cs
	}
	hp, wp := win.h+win.pt+win.pb, win.w+win.pl+win.pr
	cs.hq, cs.wq = (hp+win.sh-1)/win.sh, (wp+win.sw-1)/win.sw
	cs.plane = cs.hq * cs.wq
	cs.slots = make([]int, win.sh*win.sw)
	for i := range cs.slots {
		cs.slots[i] = -1
	}
	for kh := range win.kh {
		for kw := range win.kw {
			ph := (kh * win.dh) % win.sh
			pw := (kw * win.dw) % win.sw
			if cs.slots[ph*win.sw+pw] < 0 {
				cs.slots[ph*win.sw+pw] = cs.nslots
				cs.nslots++
			}
		}
	}
	for kh := range win.kh {
		for kw := range win.kw {
			ph, qh := (kh*win.dh)%win.sh, (kh*win.dh)/win.sh
			pw, qw := (kw*win.dw)%win.sw, (kw*win.dw)/win.sw
			cs.tapOff = append(cs.tapOff, cs.slots[ph*win.sw+pw]*cg*cs.plane+qh*cs.wq+qw)
		}
	}
	cs.sample = cs.nslots * cg * cs.plane
	cs.planesSize = chunk * cs.sample
	return cs
}

// Pack packs a block of B (gemm.Source).
func (cs *convSource) Pack(dst []float32, j0, j1, k0, k1 int) {
	kb := k1 - k0
	var segs [nr]gemm.Seg
	for t := 0; j0+t*nr < j1; t++ {
		jj := j0 + t*nr
		cols := min(nr, j1-jj)
		d := dst[t*nr*kb : (t+1)*nr*kb]
		if cols < nr {
			clear(d)
		}
		// The strip's columns as runs along output rows.
		ns := 0
		for j := 0; j < cols; {
			col := jj + j
			s, p := col/cs.ohw, col%cs.ohw
			oh, ow := p/cs.ow, p%cs.ow
			n := min(cols-j, cs.ow-ow)
			segs[ns] = gemm.Seg{Off: s*cs.sample + oh*cs.wq + ow, Lane: j, Len: n}
			ns++
			j += n
		}
		for k := k0; k < k1; {
			tap, c := k/cs.cg, k%cs.cg
			n := min(k1-k, cs.cg-c)
			gemm.PackRows(d[(k-k0)*nr:], cs.planes[cs.tapOff[tap]+c*cs.plane:], cs.plane, n, segs[:ns])
			k += n
		}
	}
}

// nr is the gemm's panel width (gemm.PackB's strips).
const nr = 32

// planesTask lays out the planes of channel i%cg of sample n0+i/cg (of
// group g): the channel zero-padded, split into the phases of the stride
// some tap uses.
type planesTask struct{ *convTask }

// Do lays out piece i.
func (t planesTask) Do(i int, _ *par.Scratch) {
	win, cs := t.win, t.src
	s, c := i/t.cg, i%t.cg
	img := t.x[((t.n0+s)*win.c+t.g*t.cg+c)*win.h*win.w:][:win.h*win.w]
	base := s*cs.sample + c*cs.plane
	hp, wp := win.h+win.pt+win.pb, win.w+win.pl+win.pr
	for ph := range win.sh {
		for pw := range win.sw {
			slot := cs.slots[ph*win.sw+pw]
			if slot < 0 {
				continue
			}
			pl := cs.planes[base+slot*t.cg*cs.plane:][:cs.plane]
			for qh := range cs.hq {
				row := pl[qh*cs.wq : (qh+1)*cs.wq]
				r := qh*win.sh + ph // padded row
				ih := r - win.pt
				if r >= hp || ih < 0 || ih >= win.h {
					clear(row)
					continue
				}
				src := img[ih*win.w : (ih+1)*win.w]
				if win.sw == 1 {
					// Padded columns q: iw = q - pl.
					lo := min(win.pl, cs.wq)
					hi := min(cs.wq, win.pl+win.w)
					clear(row[:lo])
					copy(row[lo:hi], src)
					clear(row[hi:])
					continue
				}
				for q := range row {
					iw := q*win.sw + pw - win.pl
					if q*win.sw+pw < wp && iw >= 0 && iw < win.w {
						row[q] = src[iw]
					} else {
						row[q] = 0
					}
				}
			}
		}
	}
}

// depthwiseTask computes plane i (sample i/o, channel i%o) of a depthwise
// convolution directly: each result element sums the products of its
// window's taps inside the image, in (kh, kw) order (vec.Axpy along rows
// at unit stride), then the epilogue (the bias, the folded ops).
type depthwiseTask struct{ *convTask }

// Do computes plane i.
func (t depthwiseTask) Do(i int, _ *par.Scratch) {
	win := t.win
	c := i % t.o
	img := t.x[i*win.h*win.w:][:win.h*win.w]
	w := t.w[c*win.kh*win.kw:][:win.kh*win.kw]
	out := t.out[i*t.hw:][:t.hw]
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
		t.epilogue(row, c)
	}
}

// epilogue applies the bias of channel c and the folded ops to row, as
// the separate ops would (vec's loops).
func (t *convTask) epilogue(row []float32, c int) {
	if t.bias != nil {
		vec.AddScalar(row, row, t.bias[c])
	}
	if t.epi.Relu {
		vec.Relu(row, row)
	}
	if t.epi.Max {
		vec.MaxScalar(row, row, t.epi.Lo)
	}
	if t.epi.Min {
		vec.MinScalar(row, row, t.epi.Hi)
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
