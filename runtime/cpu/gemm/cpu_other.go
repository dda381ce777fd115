//go:build !amd64

package gemm

func packRowsAVX512(dst, src *float32, ld, rows int, segs *segMask, nseg, mode int) {
	panic("gemm: no AVX-512")
}

func tileAVX512(k int, a, b, c []float32, ldc int, e *tileEpi, ldb int) {
	tilePortable(k, a, b, c, ldc, e, ldb)
}

func tileAVX2(k int, a, b, c []float32, ldc int, e *tileEpi, ldb int) {
	tilePortable(k, a, b, c, ldc, e, ldb)
}

func packRowsAtAVX512(dst, src *float32, offs *int, rows int, segs *segMask, nseg, mode int) {
	panic("gemm: no AVX-512")
}

func tile4AVX512(k int, a, b, c []float32, ldc int, e *tileEpi, ldb int) {
	panic("gemm: no AVX-512")
}
