package vec

import (
	"math"
	"math/rand/v2"
	"testing"
)

// The Go loops the assembly stands in for (machines without AVX-512)
// give their definitions too.
func TestPortableLoops(t *testing.T) {
	if !hasAVX512 {
		t.Skip("the portable loops are what the other tests ran")
	}
	hasAVX512 = false
	defer func() { hasAVX512 = true }()
	r := rand.New(rand.NewPCG(9, 10))
	src := values(200, r)
	offs := []int{0, 1, 2, 50, 51, 52}
	w := values(len(offs), r)
	dst := make([]float32, 100)
	WindowSum(dst, src, offs, w, Epi{HasBias: true, Bias: 1, Relu: true})
	for q := range dst {
		var acc float32
		for k, o := range offs {
			acc += float32(w[k] * src[o+q])
		}
		acc += 1
		if !(acc > 0 || acc != acc) {
			acc = 0
		}
		if !same(dst[q], acc) {
			t.Fatalf("WindowSum[%d] = %g, want %g", q, dst[q], acc)
		}
	}
	WindowMax(dst, src, offs)
	Exp(dst, src[:100])
	for i, v := range dst {
		if want := float32(math.Exp(float64(src[i]))); !same(v, want) {
			t.Fatalf("Exp(%g) = %g, want %g", src[i], v, want)
		}
	}
	Erf(dst, src[:100])
	for i, v := range dst {
		if want := float32(math.Erf(float64(src[i]))); !same(v, want) {
			t.Fatalf("Erf(%g) = %g, want %g", src[i], v, want)
		}
	}
	Every2(dst[:50], src)
	for i, v := range dst[:50] {
		if !same(v, src[2*i]) {
			t.Fatalf("Every2[%d] = %g", i, v)
		}
	}
}
