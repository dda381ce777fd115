package gemm

import (
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
