package vec

// hasAVX512 and hasAVX2 are whether the processor and the OS support
// AVX-512F and AVX2 (each with FMA), fixed when the program starts.
var hasAVX512, hasAVX2 = detect()

func cpuid(eax, ecx uint32) (a, b, c, d uint32)
func xgetbv() uint32

func detect() (avx512, avx2 bool) {
	maxLeaf, _, _, _ := cpuid(0, 0)
	if maxLeaf < 7 {
		return false, false
	}
	_, _, ecx1, _ := cpuid(1, 0)
	const osxsave, fma = 1 << 27, 1 << 12
	if ecx1&osxsave == 0 || ecx1&fma == 0 {
		return false, false
	}
	xcr0 := xgetbv()
	_, ebx7, _, _ := cpuid(7, 0)
	// XMM and YMM state; opmask, ZMM0-15 upper halves, ZMM16-31.
	avx2 = xcr0&0x6 == 0x6 && ebx7&(1<<5) != 0
	avx512 = xcr0&0xe6 == 0xe6 && ebx7&(1<<16) != 0
	return avx512, avx2
}

//go:noescape
func reluAVX512(dst, x *float32, n int)

//go:noescape
func maxScalarAVX512(dst, x *float32, n int, y float32)

//go:noescape
func minScalarAVX512(dst, x *float32, n int, y float32)

//go:noescape
func addAVX512(dst, a, b *float32, n int)

//go:noescape
func addScalarAVX512(dst, x *float32, n int, y float32)

//go:noescape
func axpyAVX512(dst, x *float32, n int, a float32)

//go:noescape
func windowSumAVX512(dst, src *float32, n int, offs *int, w *float32, taps int, e *winEpi)

//go:noescape
func windowMaxAVX512(dst, src *float32, n int, offs *int, taps int)

//go:noescape
func every2AVX512(dst, src *float32, n int)

//go:noescape
func expAVX512(dst, x *float32, n int)

//go:noescape
func erfAVX512(dst, x *float32, n int)

//go:noescape
func depthwiseAVX512(dst, img *float32, rowOff *int64, tab *dwTap, w *float32, geom *dwGeom, e *winEpi)

//go:noescape
func maxpoolAVX512(dst, img *float32, rowOff *int64, tab *dwTap, geom *dwGeom)

//go:noescape
func erfTableAVX512(dst, x *float32, n int, tab *[12][16]float64)

//go:noescape
func softmaxRowsAVX512(dst, x *float32, rows, size int)

//go:noescape
func arithAVX512(dst, a, b *float32, n, code int)

//go:noescape
func sumRowAVX512(x *float32, n int) float32
