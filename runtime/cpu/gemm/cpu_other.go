//go:build !amd64

package gemm

func hasAVX512() bool { return false }

func tileAVX512(k int, a, b, c []float32, ldc int) { tilePortable(k, a, b, c, ldc) }

func hasAVX2() bool { return false }

func tileAVX2(k int, a, b, c []float32, ldc int) { tilePortable(k, a, b, c, ldc) }
