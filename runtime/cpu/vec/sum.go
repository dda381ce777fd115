package vec

import "math"

// SumRow returns the sum of x taken in 16 lanes as SoftmaxRows sums: lane
// l adds the x[k] with k mod 16 = l in order of k, from -0, and the lanes
// are added pairwise (l and l+8, then l+4, l+2, l+1). The order depends
// on len(x) alone. The assembly and the Go loop give the same bits.
func SumRow(x []float32) float32 {
	if hasAVX512 && len(x) > 0 {
		return sumRowAVX512(&x[0], len(x))
	}
	var s [16]float32
	for l := range s {
		s[l] = float32(math.Copysign(0, -1))
	}
	for k, v := range x {
		s[k%16] += v
	}
	for w := 8; w >= 1; w /= 2 {
		for l := range w {
			s[l] += s[l+w]
		}
	}
	return s[0]
}
