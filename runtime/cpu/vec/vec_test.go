package vec

import (
	"flag"
	"math"
	"math/big"
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

// fma32 is a float32 fused multiply-add, a*b+c rounded once.
func fma32(a, b, c float32) float32 {
	if a != a || b != b || c != c || math.IsInf(float64(a), 0) || math.IsInf(float64(b), 0) || math.IsInf(float64(c), 0) {
		return float32(math.FMA(float64(a), float64(b), float64(c)))
	}
	p := new(big.Float).SetPrec(200).SetFloat64(float64(a))
	p.Mul(p, new(big.Float).SetFloat64(float64(b)))
	p.Add(p, new(big.Float).SetFloat64(float64(c)))
	if p.Sign() == 0 {
		// The sign of an exact zero: +0 unless both are -0.
		return float32(math.FMA(float64(a), float64(b), float64(c)))
	}
	f, _ := new(big.Float).SetPrec(24).SetMode(big.ToNearestEven).Set(p).Float32()
	return f
}

// WindowSum gives, per element, its chain of fused multiply-adds over the
// taps (with AVX-512; rounded products and sums elsewhere) and then the
// epilogue's bits, at lengths around the vector widths; WindowMax the
// IR's maximum in tap order, NaN included.
func TestWindows(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{1, 7, 16, 17, 63, 64, 65, 130} {
		src := values(n+40, r)
		offs := []int{0, 1, 2, 17, 18, 19, 34, 35, 36}
		w := values(len(offs), r)
		for _, e := range []Epi{{}, {HasBias: true, Bias: 0.5, Relu: true}, {Max: true, Lo: 0, Min: true, Hi: 6},
			{Max: true, Lo: float32(math.NaN())}, {HasBias: true, Bias: -1, Min: true, Hi: -0.5}} {
			dst := make([]float32, n)
			WindowSum(dst, src, offs, w, e)
			for q := range dst {
				var acc float32
				for k, o := range offs {
					if Fast() {
						acc = fma32(w[k], src[o+q], acc)
					} else {
						acc += float32(w[k] * src[o+q])
					}
				}
				if e.HasBias {
					acc += e.Bias
				}
				if e.Relu && !(acc > 0 || acc != acc) {
					acc = 0
				}
				if e.Max && !(acc >= e.Lo || acc != acc) {
					acc = e.Lo
				}
				if e.Min && !(acc <= e.Hi || acc != acc) {
					acc = e.Hi
				}
				if !same(dst[q], acc) {
					t.Fatalf("n %d %+v: WindowSum[%d] = %g, want %g", n, e, q, dst[q], acc)
				}
			}
		}
		dst := make([]float32, n)
		WindowMax(dst, src, offs)
		for q := range dst {
			acc := float32(math.Inf(-1))
			for _, o := range offs {
				if v := src[o+q]; !(acc >= v || acc != acc) {
					acc = v
				}
			}
			if math.Float32bits(dst[q]) != math.Float32bits(acc) {
				t.Fatalf("n %d: WindowMax[%d] = %g, want %g", n, q, dst[q], acc)
			}
		}
	}
}

// Every2 takes every other element, reading no further than it must.
func TestEvery2(t *testing.T) {
	for n := range 70 {
		src := make([]float32, 2*n+1)
		for i := range src {
			src[i] = float32(i)
		}
		dst := make([]float32, n+1)
		dst[n] = -1
		Every2(dst[:n], src[:max(2*n-1, 0)])
		for i := range n {
			if dst[i] != float32(2*i) {
				t.Fatalf("n %d: dst[%d] = %g", n, i, dst[i])
			}
		}
		if dst[n] != -1 {
			t.Fatalf("n %d: wrote past the end", n)
		}
	}
}

// Exp is float32(math.Exp(float64(x))): over the whole range and the
// special values, at lengths around the vector width.
func TestExp(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	xs := []float32{0, float32(math.Copysign(0, -1)), 1, -1, 88.72, 88.73, 89, -87.3, -103.9, -104, -150, 200, -200, 1e30, -1e30,
		float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), 1e-30, -1e-30, 0.5, -0.3465736, 0.3465736}
	for range 1 << 20 {
		xs = append(xs, float32(r.Float64()*220-115))
	}
	for range 1 << 16 {
		xs = append(xs, float32(r.NormFloat64()*1e-3))
	}
	diff := 0
	for _, n := range []int{len(xs), 1, 15, 17} {
		dst := make([]float32, n)
		Exp(dst, xs[:n])
		for i, v := range dst {
			want := float32(math.Exp(float64(xs[i])))
			if !same(v, want) {
				diff++
				if diff < 5 {
					t.Errorf("Exp(%g) = %g (%#x), want %g (%#x)", xs[i], v, math.Float32bits(v), want, math.Float32bits(want))
				}
			}
		}
	}
	if diff > 0 {
		t.Errorf("%d of %d differ", diff, len(xs))
	}
}

// Erf is float32(math.Erf(float64(x))) over every branch of the
// algorithm and the special values.
func TestErf(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	xs := []float32{0, float32(math.Copysign(0, -1)), 0.84375, -0.84375, 1.25, -1.25, 2.857143, 6, -6, 3.9, 10, -10,
		float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), 1e-30, -1e-38, 1e-45, 0.5, 1, 2, 3, 4, 5}
	for range 1 << 20 {
		xs = append(xs, float32(r.Float64()*14-7))
	}
	for range 1 << 16 {
		xs = append(xs, float32(r.NormFloat64()*1e-4))
	}
	diff := 0
	for _, n := range []int{len(xs), 1, 7, 9} {
		dst := make([]float32, n)
		Erf(dst, xs[:n])
		for i, v := range dst {
			want := float32(math.Erf(float64(xs[i])))
			if !same(v, want) {
				diff++
				if diff < 5 {
					t.Errorf("Erf(%g) = %g (%#x), want %g (%#x)", xs[i], v, math.Float32bits(v), want, math.Float32bits(want))
				}
			}
		}
	}
	if diff > 0 {
		t.Errorf("%d of %d differ", diff, len(xs))
	}
}
