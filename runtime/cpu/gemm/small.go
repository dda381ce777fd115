package gemm

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
	if avx512 && k >= 16 {
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
