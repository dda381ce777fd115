package vec

import (
	"flag"
	"math"
	"math/rand/v2"
	"testing"
)

var _ = flag.Bool("update", false, "rewrite golden files (none in this package)")

// values mixes normal numbers with NaN, both zeros and both infinities.
func values(n int, r *rand.Rand) []float32 {
	special := []float32{float32(math.NaN()), 0, float32(math.Copysign(0, -1)), float32(math.Inf(1)), float32(math.Inf(-1)), 6, -6}
	v := make([]float32, n)
	for i := range v {
		if r.IntN(4) == 0 {
			v[i] = special[r.IntN(len(special))]
		} else {
			v[i] = float32(r.NormFloat64() * 4)
		}
	}
	return v
}

func same(a, b float32) bool {
	return math.Float32bits(a) == math.Float32bits(b) || a != a && b != b
}

// Every loop gives the bits of its scalar definition, at lengths around
// the vector width, on special values, and in place.
func TestLoopsMatchDefinitions(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 15, 16, 17, 33, 100} {
		x, b := values(n, r), values(n, r)
		for _, y := range []float32{0, 6, -1.5, float32(math.NaN()), float32(math.Copysign(0, -1))} {
			dst := make([]float32, n)
			MaxScalar(dst, x, y)
			for i := range dst {
				want := y
				if x[i] >= y || x[i] != x[i] {
					want = x[i]
				}
				if !same(dst[i], want) {
					t.Fatalf("MaxScalar(%g, %g) = %g, want %g", x[i], y, dst[i], want)
				}
			}
			MinScalar(dst, x, y)
			for i := range dst {
				want := y
				if x[i] <= y || x[i] != x[i] {
					want = x[i]
				}
				if !same(dst[i], want) {
					t.Fatalf("MinScalar(%g, %g) = %g, want %g", x[i], y, dst[i], want)
				}
			}
			AddScalar(dst, x, y)
			for i := range dst {
				if !same(dst[i], x[i]+y) {
					t.Fatalf("AddScalar(%g, %g) = %g", x[i], y, dst[i])
				}
			}
		}
		dst := make([]float32, n)
		Relu(dst, x)
		for i := range dst {
			want := float32(0)
			if x[i] > 0 || x[i] != x[i] {
				want = x[i]
			}
			if !same(dst[i], want) {
				t.Fatalf("Relu(%g) = %g, want %g", x[i], dst[i], want)
			}
		}
		Add(dst, x, b)
		for i := range dst {
			if !same(dst[i], x[i]+b[i]) {
				t.Fatalf("Add(%g, %g) = %g", x[i], b[i], dst[i])
			}
		}
		in := append([]float32(nil), x...)
		Relu(in, in)
		for i := range in {
			if !same(in[i], max(x[i], 0)) && !(x[i] != x[i]) && !(x[i] == 0) {
				t.Fatalf("Relu in place (%g) = %g", x[i], in[i])
			}
		}
		acc := append([]float32(nil), b...)
		Axpy(acc, x, 0.75)
		for i := range acc {
			var want float32
			if i < n&^15 && Fast() {
				want = float32(math.FMA(0.75, float64(x[i]), float64(b[i])))
			} else {
				want = b[i] + float32(0.75*x[i])
			}
			if !same(acc[i], want) && !math.IsInf(float64(want), 0) {
				t.Fatalf("Axpy element %d of %d: %g, want %g", i, n, acc[i], want)
			}
		}
	}
}
