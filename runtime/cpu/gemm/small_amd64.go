package gemm

// packStrip12AVX512 is packStrip12's loop over the first kb columns (a
// multiple of 16).
//
//go:noescape
func packStrip12AVX512(dst, a *float32, lda, kb int)

// smallAVX512 is SmallRun's loop (m, k >= 1, 1 <= n <= 16).
//
//go:noescape
func smallAVX512(c, a, b *float32, m, n, k, lda, ldb, ldc int)
