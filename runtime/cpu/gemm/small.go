package gemm

import "multigpu/runtime/cpu/vec"

// PackAFast is PackA (the same packed form, bit for bit) with a loop that
// writes the packed strips in order: for each k, the mr values of a
// strip's rows, read from mr rows at once.
func PackAFast(dst []float32, m, k int, a []float32, lda int) {
	if k <= 0 {
		return
	}
	if mr != 12 {
		PackA(dst, m, k, a, lda)
		return
	}
	full := m / mr
	for st := range full {
		packStrip12(dst[st*mr*k:(st+1)*mr*k], a[st*mr*lda:], lda, k)
	}
	if full*mr < m {
		packA(a, lda, m, k, full, dst[full*mr*k:(full+1)*mr*k])
	}
}

// packStrip12 packs the 12 rows of a (rows lda apart, k columns) into
// dst: dst[kk*12+r] = a[r*lda+kk].
func packStrip12(dst, a []float32, lda, k int) {
	r0, r1, r2, r3 := a[:k], a[lda:][:k], a[2*lda:][:k], a[3*lda:][:k]
	r4, r5, r6, r7 := a[4*lda:][:k], a[5*lda:][:k], a[6*lda:][:k], a[7*lda:][:k]
	r8, r9, r10, r11 := a[8*lda:][:k], a[9*lda:][:k], a[10*lda:][:k], a[11*lda:][:k]
	dst = dst[:12*k]
	done := 0
	if vec.Fast() && k >= 16 {
		done = k &^ 15
		packStrip12AVX512(&dst[0], &a[0], lda, done)
	}
	for kk := done; kk < k; kk++ {
		d := (*[12]float32)(dst[kk*12:])
		d[0], d[1], d[2], d[3] = r0[kk], r1[kk], r2[kk], r3[kk]
		d[4], d[5], d[6], d[7] = r4[kk], r5[kk], r6[kk], r7[kk]
		d[8], d[9], d[10], d[11] = r8[kk], r9[kk], r10[kk], r11[kk]
	}
}

// SmallOK reports whether SmallRun gives g's bits for products of n
// columns: n is 1 to 16, g's micro-kernel chains fused multiply-adds
// (AVX512 or AVX2), and the processor runs SmallRun's AVX-512 loop.
func (g *Gemm) SmallOK(n int) bool {
	return vec.Fast() && n >= 1 && n <= 16 && (g.kernel == AVX512 || g.kernel == AVX2)
}

// SmallRun computes C = A B for A m by k (rows lda apart), B k by n (rows
// ldb apart) and C m by n (rows ldc apart), n at most 16, on the caller:
// no packing, each element one chain of fused multiply-adds over k = 0,
// 1, ..., k-1 from +0, a row of C a vector (four rows at a time), so that
// it has the bits of Op.Run on a Gemm for which SmallOK(n) holds. It
// panics where SmallOK(n) does not hold.
func SmallRun(m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	if m <= 0 {
		return
	}
	if !vec.Fast() || n < 1 || n > 16 {
		panic("gemm: SmallRun without AVX-512 or of more than 16 columns")
	}
	_ = c[(m-1)*ldc+n-1]
	if k <= 0 {
		for i := range m {
			clear(c[i*ldc : i*ldc+n])
		}
		return
	}
	_, _ = a[(m-1)*lda+k-1], b[(k-1)*ldb+n-1]
	smallAVX512(&c[0], &a[0], &b[0], m, n, k, lda, ldb, ldc)
}
