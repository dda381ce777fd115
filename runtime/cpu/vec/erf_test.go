package vec

import (
	"math"
	"math/rand/v2"
	"os"
	"testing"
)

// erfInputs are values over every interval of ErfTable's table, its edges,
// the clamp at 4, and special values.
func erfInputs(r *rand.Rand, n int) []float32 {
	xs := []float32{0, float32(math.Copysign(0, -1)), float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)),
		4, -4, math.Nextafter32(4, 0), -math.Nextafter32(4, 0), 1e-30, -1e-30, math.SmallestNonzeroFloat32, 1e30, -1e30}
	for i := range 17 {
		e := float32(i) / 4
		xs = append(xs, e, -e, math.Nextafter32(e, 0), math.Nextafter32(e, 5))
	}
	for len(xs) < n {
		xs = append(xs, float32(r.NormFloat64()*1.5))
	}
	return xs
}

// ErfTable gives the bits of its Go definition (erfTable1) at lengths
// around the vector width, in place, and on special values.
func TestErfTableMatchesDefinition(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	xs := erfInputs(r, 4096)
	for _, n := range []int{0, 1, 7, 8, 9, 15, 16, 17, 100, len(xs)} {
		dst := make([]float32, n)
		ErfTable(dst, xs[:n])
		for i, v := range dst {
			if want := erfTable1(xs[i]); !same(v, want) {
				t.Fatalf("n=%d: ErfTable(%g) = %g (%#x), want %g (%#x)", n, xs[i], v, math.Float32bits(v), want, math.Float32bits(want))
			}
		}
		in := append([]float32(nil), xs[:n]...)
		ErfTable(in, in)
		for i := range in {
			if !same(in[i], dst[i]) {
				t.Fatalf("n=%d in place: element %d %g, want %g", n, i, in[i], dst[i])
			}
		}
	}
	if v := erfTable1(float32(math.Copysign(0, -1))); v != 0 || !math.Signbit(float64(v)) {
		t.Errorf("erf(-0) = %g, want -0", v)
	}
}

// ErfTable is float32(math.Erf(float64(x))) on a million values over
// [-5, 5] (and on every float32 with MULTIGPU_ERF_ALL=1, counting the
// values that round the other way).
func TestErfTableIsErf(t *testing.T) {
	if os.Getenv("MULTIGPU_ERF_ALL") != "" {
		const chunk = 1 << 16
		src, dst := make([]float32, chunk), make([]float32, chunk)
		bad := 0
		for b := uint64(0); b < 1<<32; b += chunk {
			for i := range src {
				src[i] = math.Float32frombits(uint32(b) + uint32(i))
			}
			ErfTable(dst, src)
			for i, v := range dst {
				if want := float32(math.Erf(float64(src[i]))); !same(v, want) {
					bad++
					if bad <= 20 {
						t.Logf("ErfTable(%g) = %g, float32(math.Erf) %g", src[i], v, want)
					}
				}
			}
		}
		t.Logf("%d of 2^32 float32s differ from float32(math.Erf)", bad)
		return
	}
	r := rand.New(rand.NewPCG(5, 6))
	n := 1 << 20
	if testing.Short() {
		n = 1 << 16
	}
	src := make([]float32, n)
	for i := range src {
		src[i] = float32(r.Float64()*10 - 5)
	}
	dst := make([]float32, n)
	ErfTable(dst, src)
	for i, v := range dst {
		if want := float32(math.Erf(float64(src[i]))); !same(v, want) {
			t.Errorf("ErfTable(%g) = %g (%#x), want %g (%#x)", src[i], v, math.Float32bits(v), want, math.Float32bits(want))
		}
	}
}

func BenchmarkErfTable(b *testing.B) {
	src, dst := make([]float32, 4096), make([]float32, 4096)
	r := rand.New(rand.NewPCG(1, 1))
	for i := range src {
		src[i] = float32(r.NormFloat64())
	}
	b.SetBytes(4 * 4096)
	for b.Loop() {
		ErfTable(dst, src)
	}
}

func BenchmarkErf(b *testing.B) {
	src, dst := make([]float32, 4096), make([]float32, 4096)
	r := rand.New(rand.NewPCG(1, 1))
	for i := range src {
		src[i] = float32(r.NormFloat64())
	}
	b.SetBytes(4 * 4096)
	for b.Loop() {
		Erf(dst, src)
	}
}
