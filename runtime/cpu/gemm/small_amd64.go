package gemm

// packStrip12AVX512 is packStrip12's loop over the first kb columns (a
// multiple of 16).
//
//go:noescape
func packStrip12AVX512(dst, a *float32, lda, kb int)
