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

// planesBudget is the most float32s of phase planes convF32 lays out for
// one product: as many samples as fit, so that each product is wide and
// reads the filters once. colsBudget is the most float32s of packed patch
// columns it gives the gemm to pack B once into when several threads
// share its blocks (about what the last-level cache share of a core
// holds).
const (
	planesBudget = 4 << 20
	colsBudget   = 4 << 20
)

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
	chunk := win.n
	if !pointwise && !depthwise {
		if per := newConvSource(win, cg, 1).planesSize; per > 0 {
			chunk = max(1, min(win.n, planesBudget/per))
		}
	}
	bscratch := gemm.PackBSize(kk, chunk*hw)
	if bscratch > colsBudget || s.threads <= 1 {
		bscratch = 0 // one thread, or too big: each piece packs its own block
	}
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
	if depthwise {
		t.dw = newPhases(win)
		t.dwOffs = t.dw.offsets(t.dw.plane)
		if !s.padded {
			t.direct = vec.NewPlane(win.h, win.w, win.kh, win.kw, win.sh, win.sw, win.pt, win.pl, win.dh, win.dw, win.oh, win.ow)
		}
	}
	switch {
	case depthwise:
		s.scratch = nil
	case pointwise:
		s.scratch = []int64{int64(packA)}
	default:
		// The planes have nr float32s to spare, so that packing loads
		// whole vectors up to their end (gemm.PackRowsAt).
		s.scratch = []int64{int64(packA), int64(t.src.planesSize + nr), int64(bscratch)}
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
		t.vepi = vec.Epi{Relu: t.epi.Relu, Max: t.epi.Max, Min: t.epi.Min, Lo: t.epi.Lo, Hi: t.epi.Hi}
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
		planes := scratchF32(rs, 1, cs.planesSize+nr)
		bscratch := scratchF32(rs, 2, bscratch)
		defer func() { cs.planes = nil }()
		for n0 := 0; n0 < win.n; n0 += chunk {
			if err := rs.check(); err != nil {
				return nil, err
			}
			ns := min(chunk, win.n-n0)
			for g := 0; g < groups; g++ {
				if cs.direct || cs.padded {
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
	dw                        *phases // of a depthwise convolution
	direct                    *vec.Plane
	dwOffs                    []int
	vepi                      vec.Epi // the folded ops, for vec.WindowSum
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

// phases lays out one channel of an image zero-padded (or padded with
// another value) and split into the phases of the stride that some tap
// of the window uses: phase (ph, pw) holds padded rows ph, ph+sh, ... and
// columns pw, pw+sw, ..., so that the pixels a tap sees along a row of
// the output are contiguous, at q = oh*wq + ow plus the tap's offset.
type phases struct {
	win      window
	hq, wq   int   // a phase plane's height and width
	plane    int   // hq*wq
	slots    []int // by phase ph*sw+pw: its index among the planes, or -1
	nslots   int
	tap      [][3]int // by tap (kh, kw): its slot, row and column offsets
	hp, wp   int      // the padded image's size
	maxShift int      // the largest column offset of a tap
	// cols holds, by column phase pw, the columns [lo, hi) of a phase
	// row that are in the image (padded column q*sw + pw in [pl, pl+w))
	// and the image column of q = lo.
	cols [][3]int
}

func newPhases(win window) *phases {
	p := &phases{win: win, hp: win.h + win.pt + win.pb, wp: win.w + win.pl + win.pr}
	p.hq, p.wq = (p.hp+win.sh-1)/win.sh, (p.wp+win.sw-1)/win.sw
	p.plane = p.hq * p.wq
	p.slots = make([]int, win.sh*win.sw)
	for i := range p.slots {
		p.slots[i] = -1
	}
	for kh := range win.kh {
		for kw := range win.kw {
			ph, qh := (kh*win.dh)%win.sh, (kh*win.dh)/win.sh
			pw, qw := (kw*win.dw)%win.sw, (kw*win.dw)/win.sw
			if p.slots[ph*win.sw+pw] < 0 {
				p.slots[ph*win.sw+pw] = p.nslots
				p.nslots++
			}
			p.tap = append(p.tap, [3]int{p.slots[ph*win.sw+pw], qh, qw})
			p.maxShift = max(p.maxShift, qw)
		}
	}
	for pw := range win.sw {
		lo := min(p.wq, max(0, (win.pl-pw+win.sw-1)/win.sw))
		hi := max(lo, min(p.wq, (win.pl+win.w-pw+win.sw-1)/win.sw))
		p.cols = append(p.cols, [3]int{lo, hi, lo*win.sw + pw - win.pl})
	}
	return p
}

// offsets returns each tap's offset for output (0, 0) when the planes lie
// slotStep apart.
func (p *phases) offsets(slotStep int) []int {
	offs := make([]int, len(p.tap))
	for i, t := range p.tap {
		offs[i] = t[0]*slotStep + t[1]*p.wq + t[2]
	}
	return offs
}

// fill lays out img (one channel, h by w) into the planes at dst, slotStep
// apart, padding with pad: each image row copied into the phase row it
// falls in, column phases split by vec.Every2 at stride 2, and the rest
// of every plane (its padding rows, and the columns of the others outside
// the image) set to pad.
func (p *phases) fill(dst []float32, slotStep int, img []float32, pad float32) {
	win := p.win
	padded := p.hp != win.h || p.wp != win.w || p.hq*win.sh != p.hp || p.wq*win.sw != p.wp
	if padded {
		for ph := range win.sh {
			for pw := range win.sw {
				slot := p.slots[ph*win.sw+pw]
				if slot < 0 {
					continue
				}
				lo, hi := p.cols[pw][0], p.cols[pw][1]
				for qh := range p.hq {
					row := dst[slot*slotStep+qh*p.wq:][:p.wq]
					if ih := qh*win.sh + ph - win.pt; ih < 0 || ih >= win.h || hi <= lo {
						fillValue(row, pad)
					} else {
						fillValue(row[:lo], pad)
						fillValue(row[hi:], pad)
					}
				}
			}
		}
	}
	ph, qh := win.pt%win.sh, win.pt/win.sh // padded row ih+pt's phase and row in it
	for ih := range win.h {
		src := img[ih*win.w : (ih+1)*win.w]
		for pw, cols := range p.cols {
			slot := p.slots[ph*win.sw+pw]
			lo, hi, off := cols[0], cols[1], cols[2]
			if slot < 0 || hi <= lo {
				continue
			}
			row := dst[slot*slotStep+qh*p.wq:][:p.wq]
			switch win.sw {
			case 1:
				copy(row[lo:hi], src[off:])
			case 2:
				vec.Every2(row[lo:hi], src[off:])
			default:
				for q := lo; q < hi; q++ {
					row[q] = src[off+(q-lo)*win.sw]
				}
			}
		}
		if ph++; ph == win.sh {
			ph, qh = 0, qh+1
		}
	}
}

func fillValue(s []float32, v float32) {
	if v == 0 {
		clear(s)
		return
	}
	for i := range s {
		s[i] = v
	}
}

// convSource is the B of a convolution's product (a gemm.Source): row
// tap*cg + c, column (sample*OH + oh)*OW + ow holds the input pixel that
// tap (kh, kw) of the window at (oh, ow) sees in channel c. It reads the
// planes of phases (each sample's channels' planes, slot-major), or,
// without padding and stride, the samples themselves (direct).
type convSource struct {
	planes     []float32
	direct     bool
	padded     bool   // unit stride, padded: packed from the image, clipped
	win        window // with padded
	chanOff    []int  // with padded: each channel's offset
	ph         *phases
	cg         int
	wq         int   // a row of the planes
	plane      int   // channel step
	sample     int   // sample step
	tapOff     []int // by tap: offset of its pixel for output (0, 0), channel 0
	rowOff     []int // by row of B (tap*cg + c): offset of its pixel for output (0, 0)
	planesSize int   // float32s of the planes of a chunk
	ow, ohw    int
}

func newConvSource(win window, cg, chunk int) *convSource {
	cs := &convSource{cg: cg, ow: win.ow, ohw: win.oh * win.ow}
	cs.direct = win.sh == 1 && win.sw == 1 && win.pt == 0 && win.pl == 0 && win.pb == 0 && win.pr == 0
	// At unit stride with padding, the patches are packed from the image
	// too, each tap's runs clipped to the image (padded: zeros left).
	cs.padded = !cs.direct && win.sh == 1 && win.sw == 1
	if cs.direct || cs.padded {
		cs.win = win
		cs.wq, cs.plane, cs.sample = win.w, win.h*win.w, win.c*win.h*win.w
		for c := range cg {
			cs.chanOff = append(cs.chanOff, c*cs.plane)
		}
		for kh := range win.kh {
			for kw := range win.kw {
				cs.tapOff = append(cs.tapOff, kh*win.dh*win.w+kw*win.dw)
			}
		}
		cs.rows()
		return cs
	}
	cs.ph = newPhases(win)
	cs.wq, cs.plane = cs.ph.wq, cs.ph.plane
	cs.tapOff = cs.ph.offsets(cg * cs.plane)
	cs.sample = cs.ph.nslots * cg * cs.plane
	cs.planesSize = chunk * cs.sample
	cs.rows()
	return cs
}

// rows sets cs.rowOff from cs.tapOff.
func (cs *convSource) rows() {
	cs.rowOff = make([]int, 0, len(cs.tapOff)*cs.cg)
	for _, off := range cs.tapOff {
		for c := range cs.cg {
			cs.rowOff = append(cs.rowOff, off+c*cs.plane)
		}
	}
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
			if cs.padded {
				segs[ns].Off = s*cs.ohw + oh*cs.ow + ow // decoded by packClipped
			}
			ns++
			j += n
		}
		if cs.padded {
			cs.packClipped(d, kb, k0, k1, segs[:ns])
			continue
		}
		gemm.PackRowsAt(d, cs.planes, cs.rowOff[k0:k1], segs[:ns])
	}
}

// packClipped packs rows [k0, k1) of a strip (d, kb rows) whose columns
// are the runs segs along output rows (Off: sample*OH*OW + oh*OW + ow)
// from the image, tap by tap: each run moved to the tap's image row
// and column and clipped to the image; lanes outside it are zero.
func (cs *convSource) packClipped(d []float32, kb, k0, k1 int, segs []gemm.Seg) {
	win := cs.win
	var tsegs [nr]gemm.Seg
	full := 0 // lanes the runs cover
	for _, sg := range segs {
		full += sg.Len
	}
	for k := k0; k < k1; {
		tap := k / cs.cg
		c0, c1 := k%cs.cg, min(cs.cg, k1-tap*cs.cg)
		kh, kw := tap/win.kw, tap%win.kw
		n, covered := 0, 0
		for _, sg := range segs {
			sample, p := sg.Off/cs.ohw, sg.Off%cs.ohw
			oh, ow := p/cs.ow, p%cs.ow
			ih, iw := oh+kh*win.dh-win.pt, ow+kw*win.dw-win.pl
			if ih < 0 || ih >= win.h {
				continue
			}
			a, b := max(0, -iw), min(sg.Len, win.w-iw)
			if b <= a {
				continue
			}
			tsegs[n] = gemm.Seg{Off: sample*cs.sample + ih*win.w + iw + a, Lane: sg.Lane + a, Len: b - a}
			n++
			covered += b - a
		}
		rows := d[(k-k0)*nr : (k-k0+c1-c0)*nr]
		if covered < full {
			clear(rows)
		}
		if n > 0 {
			gemm.PackRowsAt(rows, cs.planes, cs.chanOff[c0:c1], tsegs[:n])
		}
		k += c1 - c0
	}
}

// nr is the gemm's panel width (gemm.PackB's strips).
const nr = 32

// planesTask lays out the planes of channel i%cg of sample n0+i/cg (of
// group g) for convSource.
type planesTask struct{ *convTask }

// Do lays out piece i.
func (t planesTask) Do(i int, _ *par.Scratch) {
	win, cs := t.win, t.src
	s, c := i/t.cg, i%t.cg
	img := t.x[((t.n0+s)*win.c+t.g*t.cg+c)*win.h*win.w:][:win.h*win.w]
	cs.ph.fill(cs.planes[s*cs.sample+c*cs.plane:], t.cg*cs.plane, img, 0)
}

// depthwiseTask computes plane i (sample i/o, channel i%o) of a depthwise
// convolution directly: with AVX-512 straight from the image
// (vec.Plane), elsewhere from the channel's phases (zero-padded) in the
// thread's scratch, then each result element the chain over the window's
// taps in (kh, kw) order (vec.WindowSum, on a grid as wide as the planes'
// rows, whose columns past OW are dropped), then the epilogue (the bias,
// the folded ops).
type depthwiseTask struct{ *convTask }

// Do computes plane i.
func (t depthwiseTask) Do(i int, sc *par.Scratch) {
	win, ph := t.win, t.dw
	c := i % t.o
	img := t.x[i*win.h*win.w:][:win.h*win.w]
	out := t.out[i*t.hw:][:t.hw]
	e := t.vepi
	if t.bias != nil {
		e.HasBias, e.Bias = true, t.bias[c]
	}
	w := t.w[c*win.kh*win.kw:][:win.kh*win.kw]
	if t.direct != nil {
		t.direct.Conv(out, img, w, e)
		return
	}
	planes := ph.nslots * ph.plane
	grid := win.oh * ph.wq
	buf := sc.F32(planes + ph.wq + grid)
	src, tmp := buf[:planes+ph.wq], buf[planes+ph.wq:]
	ph.fill(src, ph.plane, img, 0)
	clear(src[planes:])
	if ph.wq == win.ow {
		vec.WindowSum(out, src, t.dwOffs, w, e)
		return
	}
	vec.WindowSum(tmp, src, t.dwOffs, w, e)
	for oh := range win.oh {
		copy(out[oh*win.ow:(oh+1)*win.ow], tmp[oh*ph.wq:])
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
	if isMax && s.dt == graph.F32 && (win.oh-1)*win.sh+win.kh <= win.h+win.pt+win.pb &&
		(win.ow-1)*win.sw+win.kw <= win.w+win.pl+win.pr {
		return maxpoolF32(s, win), nil
	}
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

// maxpoolF32 is f32 max pooling in parallel over planes: each channel's
// phases padded with -Inf (which no maximum takes over a value, so
// padded positions take no part) in the thread's scratch, then each
// result the IR's maximum over the window's taps in (kh, kw) order
// (vec.WindowMax).
func maxpoolF32(s *spec, win window) kernelFn {
	s.arena = true
	t := &poolTask{win: win, ph: newPhases(win)}
	t.offs = t.ph.offsets(t.ph.plane)
	if !s.padded {
		t.direct = vec.NewPlane(win.h, win.w, win.kh, win.kw, win.sh, win.sw, win.pt, win.pl, win.dh, win.dw, win.oh, win.ow)
	}
	return func(ins []any, rs *runState) (any, error) {
		x := ins[0].([]float32)
		out := newOut[float32](rs, win.n*win.c*win.oh*win.ow)
		t.x, t.out = x, out
		rs.threads().Run(&t.job, win.n*win.c, t)
		t.x, t.out = nil, nil
		return ret(rs, out), nil
	}
}

// poolTask is the state of one f32 max pooling's parallel loop.
type poolTask struct {
	win    window
	ph     *phases
	offs   []int
	direct *vec.Plane // with AVX-512: from the image, no padded copy
	x, out []float32
	job    par.Job
}

// Do pools plane i.
func (t *poolTask) Do(i int, sc *par.Scratch) {
	win, ph := t.win, t.ph
	img := t.x[i*win.h*win.w:][:win.h*win.w]
	hw := win.oh * win.ow
	out := t.out[i*hw:][:hw]
	if t.direct != nil {
		t.direct.Max(out, img)
		return
	}
	planes := ph.nslots * ph.plane
	grid := win.oh * ph.wq
	buf := sc.F32(planes + ph.wq + grid)
	src, tmp := buf[:planes+ph.wq], buf[planes+ph.wq:]
	inf := float32(math.Inf(-1))
	ph.fill(src, ph.plane, img, inf)
	fillValue(src[planes:], inf)
	if ph.wq == win.ow {
		vec.WindowMax(out, src, t.offs)
		return
	}
	vec.WindowMax(tmp, src, t.offs)
	for oh := range win.oh {
		copy(out[oh*win.ow:(oh+1)*win.ow], tmp[oh*ph.wq:])
	}
}
