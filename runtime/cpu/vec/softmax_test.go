package vec

import (
	"math"
	"math/rand/v2"
	"testing"
)

// SoftmaxRows gives the bits of its Go definition (softmaxRow) at row
// lengths around the vector width, several rows at once, in place, and on
// rows holding NaN, ±Inf, -0 and values deep in exp's underflow.
func TestSoftmaxRowsMatchesDefinition(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	inf := float32(math.Inf(1))
	for _, size := range []int{1, 2, 3, 4, 15, 16, 17, 31, 32, 33, 64, 100, 128} {
		for _, rows := range []int{1, 3, 8} {
			x := make([]float32, rows*size)
			for i := range x {
				x[i] = float32(r.NormFloat64() * 4)
			}
			if rows == 8 {
				// Specials, one kind a row; the last row spans exp's range
				// down past its underflow.
				x[0*size] = float32(math.NaN())
				x[1*size+size/2] = inf
				x[2*size] = -inf
				for i := range size {
					x[3*size+i] = -inf
				}
				x[4*size] = float32(math.Copysign(0, -1))
				for i := range size {
					x[7*size+i] = -float32(i) * 110 / float32(size)
				}
				if size > 1 {
					x[5*size+1] = 1e30
					x[6*size] = -1e30
				}
			}
			want := make([]float32, len(x))
			for k := range rows {
				softmaxRow(want[k*size:(k+1)*size], x[k*size:(k+1)*size])
			}
			got := make([]float32, len(x))
			SoftmaxRows(got, x, size)
			for i := range got {
				if !same(got[i], want[i]) {
					t.Fatalf("size %d rows %d: element %d (x %g) = %g (%#x), want %g (%#x)", size, rows, i, x[i],
						got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
				}
			}
			SoftmaxRows(x, x, size)
			for i := range x {
				if !same(x[i], want[i]) {
					t.Fatalf("size %d rows %d in place: element %d = %g, want %g", size, rows, i, x[i], want[i])
				}
			}
		}
	}
}

// exp32 is within 2 ulp of e^x over its range, 0 below it, +Inf above,
// NaN for NaN; a row of a NaN is all NaN.
func TestExp32(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for range 1 << 18 {
		x := float32(r.Float64()*190 - 102)
		got, want := exp32(x), float32(math.Exp(float64(x)))
		if want < 0x1p-126 {
			if d := math.Abs(float64(got) - float64(want)); d > 0x1p-148 {
				t.Fatalf("exp32(%g) = %g, want %g", x, got, want)
			}
			continue
		}
		ulp := math.Abs(float64(math.Float32bits(got)) - float64(math.Float32bits(want)))
		if ulp > 2 {
			t.Fatalf("exp32(%g) = %g, want %g (%g ulp)", x, got, want, ulp)
		}
	}
	if got := exp32(-200); got != 0 {
		t.Errorf("exp32(-200) = %g, want 0", got)
	}
	if got := exp32(200); !math.IsInf(float64(got), 1) {
		t.Errorf("exp32(200) = %g, want +Inf", got)
	}
	if got := exp32(float32(math.NaN())); got == got {
		t.Errorf("exp32(NaN) = %g, want NaN", got)
	}
	out := make([]float32, 5)
	SoftmaxRows(out, []float32{1, float32(math.NaN()), 2, 3, 4}, 5)
	for _, v := range out {
		if v == v {
			t.Fatalf("softmax of a row with a NaN: %v, want all NaN", out)
		}
	}
}

func BenchmarkSoftmaxRows(b *testing.B) {
	for _, size := range []int{16, 128} {
		x := make([]float32, 4096)
		r := rand.New(rand.NewPCG(1, 1))
		for i := range x {
			x[i] = float32(r.NormFloat64())
		}
		dst := make([]float32, len(x))
		b.Run(map[int]string{16: "16", 128: "128"}[size], func(b *testing.B) {
			b.SetBytes(4 * 4096)
			for b.Loop() {
				SoftmaxRows(dst, x, size)
			}
		})
	}
}
