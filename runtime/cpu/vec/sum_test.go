package vec

import (
	"math"
	"math/rand/v2"
	"testing"
)

// SumRow gives the bits of its Go definition at lengths around the vector
// width and on special values.
func TestSumRowMatchesDefinition(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	specials := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.Copysign(0, -1)), 3e38}
	for _, n := range []int{0, 1, 2, 15, 16, 17, 31, 32, 33, 100, 256, 1000} {
		for trial := range 4 {
			x := make([]float32, n)
			for i := range x {
				x[i] = float32(r.NormFloat64() * 100)
				if trial == 3 && r.IntN(8) == 0 {
					x[i] = specials[r.IntN(len(specials))]
				}
			}
			if trial == 2 {
				for i := range x {
					x[i] = float32(math.Copysign(0, -1))
				}
			}
			want := float32(math.Copysign(0, -1))
			var s [16]float32
			for l := range s {
				s[l] = want
			}
			for k, v := range x {
				s[k%16] += v
			}
			for w := 8; w >= 1; w /= 2 {
				for l := range w {
					s[l] += s[l+w]
				}
			}
			if got := SumRow(x); !same(got, s[0]) || got == 0 && math.Signbit(float64(got)) != math.Signbit(float64(s[0])) {
				t.Fatalf("n=%d trial %d: SumRow = %g, want %g", n, trial, got, s[0])
			}
		}
	}
}
