package gemm

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// PackAFast packs as PackA does, at shapes with and without an edge strip.
func TestPackAFastIsPackA(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, s := range [][3]int{{1, 1, 1}, {12, 5, 5}, {13, 7, 9}, {24, 16, 16}, {35, 64, 70}, {128, 64, 64}, {100, 3, 3}, {37, 48, 53}, {24, 256, 300}} {
		m, k, lda := s[0], s[1], s[2]
		a := make([]float32, m*lda)
		for i := range a {
			a[i] = r.Float32()
		}
		want := make([]float32, PackSize(m, k))
		got := make([]float32, PackSize(m, k))
		for i := range got {
			got[i] = -1 // every element written
		}
		PackA(want, m, k, a, lda)
		PackAFast(got, m, k, a, lda)
		if !slices.Equal(got, want) {
			t.Fatalf("m=%d k=%d lda=%d: PackAFast differs from PackA", m, k, lda)
		}
	}
}

func BenchmarkPackA(b *testing.B) {
	m, k := 1024, 256
	a := make([]float32, m*k)
	dst := make([]float32, PackSize(m, k))
	b.Run("PackA", func(b *testing.B) {
		for b.Loop() {
			PackA(dst, m, k, a, k)
		}
	})
	b.Run("PackAFast", func(b *testing.B) {
		for b.Loop() {
			PackAFast(dst, m, k, a, k)
		}
	})
}

// SmallRun gives Op.Run's bits (one fused chain per element from +0) at
// every width up to 16, with rows 1 to 9 and K up to past a block of the
// gemm, on values with signed zeros, infinities and NaNs.
func TestSmallRunIsGemm(t *testing.T) {
	for _, kern := range Kernels() {
		if g := New(kern, nil); g.SmallOK(16) {
			testSmallRun(t, g)
		} else if kern != Portable {
			t.Logf("kernel %s: no SmallRun", kern)
		}
	}
}

func testSmallRun(t *testing.T, g *Gemm) {
	r := rand.New(rand.NewPCG(3, 4))
	specials := []float32{0, float32(math.Copysign(0, -1)), float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), 1e-40, 3e38}
	val := func() float32 {
		if r.IntN(10) == 0 {
			return specials[r.IntN(len(specials))]
		}
		return float32(r.NormFloat64())
	}
	op := g.NewOp()
	for _, k := range []int{0, 1, 3, 16, 64, 300} {
		for n := 1; n <= 16; n++ {
			for _, m := range []int{1, 3, 4, 5, 9} {
				lda, ldb, ldc := k+2, n+3, n+1
				a, b := make([]float32, m*lda+1), make([]float32, max(k, 1)*ldb)
				for i := range a {
					a[i] = val()
				}
				for i := range b {
					b[i] = val()
				}
				if k > 0 && n > 1 {
					a[0], b[0], b[1] = float32(math.Copysign(0, -1)), 1, -1 // products of -0 into a +0 chain
				}
				want, got := make([]float32, m*ldc), make([]float32, m*ldc)
				op.Run(m, n, k, a, lda, Matrix(b, ldb), Cols{Data: want, Ld: ldc}, make([]float32, PackSize(m, k)))
				SmallRun(m, n, k, a, lda, b, ldb, got, ldc)
				for i := range m {
					for j := range n {
						w, v := want[i*ldc+j], got[i*ldc+j]
						if math.Float32bits(w) != math.Float32bits(v) && !(w != w && v != v) {
							t.Fatalf("%s: m=%d n=%d k=%d: C[%d,%d] = %g (%#x), Op.Run %g (%#x)", g.Kernel(), m, n, k, i, j, v, math.Float32bits(v), w, math.Float32bits(w))
						}
					}
				}
			}
		}
	}
}
