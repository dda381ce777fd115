//go:build !amd64

package gemm

func packStrip12AVX512(dst, a *float32, lda, kb int) {}

func smallAVX512(c, a, b *float32, m, n, k, lda, ldb, ldc int) {}
