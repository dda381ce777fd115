package vec

// Plane is the geometry of a window sliding over one plane of an image:
// a depthwise convolution's (one channel in, one out) or a max pooling's,
// computed straight from the image with no padded copy, the taps that
// fall outside the image masked. A Plane is read-only once made, so
// several threads may compute planes with it at once.
type Plane struct {
	h, w, kh, kw, oh, ow int
	g                    dwGeom
	rowOff               []int64 // by padded row: the image row's offset, or -1
	tab                  []dwTap // by chunk of 16 results, then tap column
}

// dwGeom is the geometry as depthwiseAVX512 reads it (offsets in bytes):
// oh 0, ow 8, chunks 16, kh 24, kw 32, sh*8 40, dh*8 48, stride 2 at 56,
// the last chunk's store mask at 64, the zero row at 72.
type dwGeom struct {
	oh, ow, chunks, kh, kw, sh8, dh8, s2, last int64
	zero                                       *float32
}

// dwTap is one tap column of a chunk (128 bytes): the image column of its
// first load, relative to the row; the masks of the loaded columns inside
// the image (m1: the second 16 at stride 2) and of the result lanes whose
// column is (mo); at 64, by result lane, all ones where the lane's column
// is inside the image, else zero.
type dwTap struct {
	off        int64
	m0, m1, mo uint32
	_          [11]uint32
	lanes      [16]uint32
}

// The flags of a row entry: a padding row, and a row some load of which
// would leave the image.
const (
	dwPad    = 1 << 61
	dwMasked = 1 << 62
)

// NewPlane returns the geometry of a window over h by w planes with a kh
// by kw kernel, strides sh and sw, top and left padding pt and pl,
// dilations dh and dw, and oh by ow results, or nil when the assembly
// cannot compute it (no AVX-512, a column stride other than 1 or 2).
func NewPlane(h, w, kh, kw, sh, sw, pt, pl, dh, dw, oh, ow int) *Plane {
	if !hasAVX512 || sw < 1 || sw > 2 || sh < 1 || kh < 1 || kw < 1 || oh < 1 || ow < 1 || h < 1 || w < 1 {
		return nil
	}
	d := &Plane{h: h, w: w, kh: kh, kw: kw, oh: oh, ow: ow}
	chunks := (ow + 15) / 16
	d.g = dwGeom{oh: int64(oh), ow: int64(ow), chunks: int64(chunks), kh: int64(kh), kw: int64(kw),
		sh8: int64(sh * 8), dh8: int64(dh * 8), last: int64(1)<<(ow-(chunks-1)*16) - 1}
	span := 16 * sw // elements one load of a tap covers
	if sw == 2 {
		d.g.s2 = 1
	}
	inside := func(c int) bool { return c >= 0 && c < w }
	mask := func(start int) uint32 {
		var m uint32
		for i := range 16 {
			if inside(start + i) {
				m |= 1 << i
			}
		}
		return m
	}
	lo, hi := 0, 0 // the loads' extent around a row
	d.tab = make([]dwTap, chunks*kw)
	for c := range chunks {
		for t := range kw {
			start := c*span - pl + t*dw
			e := &d.tab[c*kw+t]
			e.off, e.m0, e.m1 = int64(start), mask(start), mask(start+16)
			for i := range e.lanes {
				if inside(start + i*sw) {
					e.lanes[i] = ^uint32(0)
					e.mo |= 1 << i
				}
			}
			lo, hi = min(lo, start), max(hi, start+span)
		}
	}
	zero := make([]float32, hi-lo+1)
	d.g.zero = &zero[-lo]
	// Rows of the four results computed at once past the last.
	d.rowOff = make([]int64, (oh+3)*sh+(kh-1)*dh+1)
	for i := range d.rowOff {
		ih := i - pt
		switch o := ih * w; {
		case ih < 0 || ih >= h:
			d.rowOff[i] = dwPad
		case o+lo < 0 || o+hi > h*w:
			d.rowOff[i] = int64(o) | dwMasked
		default:
			d.rowOff[i] = int64(o)
		}
	}
	return d
}

// Conv sets dst (oh*ow results, row-major) to the convolution of img (h
// by w) with the kh by kw filter w, then applies e as WindowSum does:
// each result the chain over taps (kh, kw) in order, from +0, of fused
// multiply-adds w[kh*KW+kw]*x with x the image element the tap sees, or
// +0 outside the image: the bits of WindowSum over the zero-padded
// planes.
func (d *Plane) Conv(dst, img, w []float32, e Epi) {
	dst, img, w = dst[:d.oh*d.ow], img[:d.h*d.w], w[:d.kh*d.kw]
	slow := e.Max && e.Lo != e.Lo || e.Min && e.Hi != e.Hi
	we := winEpi{bias: e.Bias, lo: e.Lo, hi: e.Hi}
	if !slow {
		we = e.asm()
	}
	depthwiseAVX512(&dst[0], &img[0], &d.rowOff[0], &d.tab[0], &w[0], &d.g, &we)
	if slow {
		epilogue(dst, e)
	}
}

// Max sets dst (oh*ow results, row-major) to the maximum over each
// window of img (h by w): the IR's maximum over the taps in order, from
// -Inf, of the elements inside the image (acc if acc >= v or acc is NaN,
// else v), the bits of WindowMax over the planes padded with -Inf.
func (d *Plane) Max(dst, img []float32) {
	dst, img = dst[:d.oh*d.ow], img[:d.h*d.w]
	maxpoolAVX512(&dst[0], &img[0], &d.rowOff[0], &d.tab[0], &d.g)
}
