package vec

import "math"

// The constants of exp32 (Cephes' expf): ln 2 in two parts, log2(e), and
// the coefficients of its polynomial.
const (
	expHi    = 89
	expLo    = -104
	expLog2e = 1.44269504088896341
	expC1    = 0.693359375
	expC2    = -2.12194440e-4
	expP0    = 1.9875691500e-4
	expP1    = 1.3981999507e-3
	expP2    = 8.3334519073e-3
	expP3    = 4.1665795894e-2
	expP4    = 1.6666665459e-1
	expP5    = 5.0000001201e-1
)

// exp32 is e^x in float32 arithmetic, every product and sum rounded to
// float32 (Cephes' expf, within 2 ulp): x clamped to [-104, 89] (NaN
// stays NaN), n = x·log2(e) rounded to the nearest integer (ties to
// even), r = x - n·C1 - n·C2, p(r) = ((((P0·r + P1)·r + P2)·r + P3)·r +
// P4)·r + P5, y = p·r² + r + 1, and y·2^n rounded once to float32.
func exp32(x float32) float32 {
	if x > expHi {
		x = expHi
	}
	if x < expLo {
		x = expLo
	}
	n := float32(math.RoundToEven(float64(float32(x * expLog2e))))
	r := x - float32(n*expC1)
	r -= float32(n * expC2)
	p := float32(float32(expP0*r) + expP1)
	p = float32(float32(p*r) + expP2)
	p = float32(float32(p*r) + expP3)
	p = float32(float32(p*r) + expP4)
	p = float32(float32(p*r) + expP5)
	y := float32(float32(float32(p*float32(r*r))+r) + 1)
	return float32(math.Ldexp(float64(y), int(n)))
}

// SoftmaxRows sets each row of size elements of dst (rows one after
// another) to the softmax of that row of x: with m the row's largest
// element, e_k = exp32(x_k - m) (e^x in float32 arithmetic: Cephes'
// expf, within 2 ulp), their sum s taken in 16 lanes (lane l adds the e_k
// with k mod 16 = l in order of k, from -0), the lanes added pairwise
// (l and l+8, then l+4, l+2, l+1), and dst_k = e_k / s. A NaN anywhere in
// a row makes the whole row NaN. dst may be x. The assembly and the Go
// loop give the same bits.
func SoftmaxRows(dst, x []float32, size int) {
	n := len(dst)
	x = x[:n]
	if n == 0 || size <= 0 {
		return
	}
	rows := n / size
	if hasAVX512 {
		softmaxRowsAVX512(&dst[0], &x[0], rows, size)
		return
	}
	for r := range rows {
		softmaxRow(dst[r*size:(r+1)*size], x[r*size:(r+1)*size])
	}
}

// softmaxRow is SoftmaxRows of one row.
func softmaxRow(dst, x []float32) {
	x = x[:len(dst)]
	m := float32(math.Inf(-1))
	for _, v := range x {
		if v > m || v != v {
			m = v
		}
	}
	var s [16]float32
	for l := range s {
		s[l] = float32(math.Copysign(0, -1))
	}
	for k, v := range x {
		e := exp32(v - m)
		dst[k] = e
		s[k%16] += e
	}
	for w := 8; w >= 1; w /= 2 {
		for l := range w {
			s[l] += s[l+w]
		}
	}
	for k := range dst {
		dst[k] /= s[0]
	}
}
