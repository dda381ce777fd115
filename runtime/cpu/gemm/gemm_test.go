package gemm

import (
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"

	"multigpu/runtime/cpu/par"
)

var _ = flag.Bool("update", false, "rewrite golden files (none in this package)")

func randSlice(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64())
	}
	return s
}

// product runs C = A B on a fresh plain C.
func product(g *Gemm, m, n, k int, a, b []float32) []float32 {
	c := make([]float32, m*n)
	g.NewOp().Run(m, n, k, a, k, Matrix(b, n), Matrix(c, n), make([]float32, PackSize(m, k)))
	return c
}

// Every kernel computes the product within rounding of a float64
// reference, at shapes around the tile sizes.
func TestProduct(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	pool := par.New(3)
	pool.Open()
	defer pool.Close()
	for _, kern := range Kernels() {
		g := New(kern, pool)
		for _, sh := range [][3]int{{1, 1, 1}, {12, 32, 7}, {13, 33, 5}, {5, 70, 300}, {40, 10, 64}, {100, 129, 17}, {3, 2, 0}} {
			m, n, k := sh[0], sh[1], sh[2]
			a, b := randSlice(r, m*k), randSlice(r, k*n)
			c := product(g, m, n, k, a, b)
			for i := 0; i < m; i++ {
				for j := 0; j < n; j++ {
					var want, mag float64
					for kk := 0; kk < k; kk++ {
						p := float64(a[i*k+kk]) * float64(b[kk*n+j])
						want += p
						mag += math.Abs(p)
					}
					if d := math.Abs(float64(c[i*n+j]) - want); d > 1e-5*mag+1e-30 {
						t.Fatalf("%s %v: C[%d,%d] = %g, want %g", kern, sh, i, j, c[i*n+j], want)
					}
				}
			}
		}
	}
}

// The exactness contract: the rows of an M-row product are bit for bit the
// products of their own row slices, whatever M, the thread count, and the
// grouping of B's and C's columns.
func TestRowsIndependentOfShape(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	const n, k = 77, 301
	mBig := 100
	a, b := randSlice(r, mBig*k), randSlice(r, k*n)
	for _, kern := range Kernels() {
		ref := product(New(kern, nil), mBig, n, k, a, b)
		for _, threads := range []int{1, 2, 3, 5} {
			pool := par.New(threads)
			pool.Open()
			g := New(kern, pool)
			for _, m := range []int{1, 2, 7, 12, 13, 25, 64, 100} {
				for _, off := range []int{0, 1, mBig - m} {
					if off+m > mBig {
						continue
					}
					c := product(g, m, n, k, a[off*k:], b)
					for i := range m * n {
						if math.Float32bits(c[i]) != math.Float32bits(ref[off*n+i]) {
							t.Fatalf("%s, %d threads: rows %d to %d: element %d differs from the whole product: %g vs %g",
								kern, threads, off, off+m, i, c[i], ref[off*n+i])
						}
					}
				}
			}
			// Columns of B and C split into groups (as a convolution over
			// several samples lays them out), and a column slice of B.
			for _, group := range []int{1, 5, 32, 40} {
				groups := (n + group - 1) / group
				bg := make([]float32, groups*(k*group+3))
				stride := k*group + 3
				for kk := 0; kk < k; kk++ {
					for j := 0; j < n; j++ {
						bg[(j/group)*stride+kk*group+j%group] = b[kk*n+j]
					}
				}
				cstride := mBig*group + 1
				cg := make([]float32, groups*cstride)
				g.NewOp().Run(mBig, n, k, a, k, Cols{Data: bg, Ld: group, Group: group, Stride: stride},
					Cols{Data: cg, Ld: group, Group: group, Stride: cstride}, make([]float32, PackSize(mBig, k)))
				for i := 0; i < mBig; i++ {
					for j := 0; j < n; j++ {
						got := cg[(j/group)*cstride+i*group+j%group]
						if math.Float32bits(got) != math.Float32bits(ref[i*n+j]) {
							t.Fatalf("%s, %d threads, groups of %d: C[%d,%d] = %g, want %g", kern, threads, group, i, j, got, ref[i*n+j])
						}
					}
				}
			}
			for _, cols := range [][2]int{{0, 1}, {3, 40}, {32, 77}} {
				w := cols[1] - cols[0]
				c := make([]float32, mBig*w)
				g.NewOp().Run(mBig, w, k, a, k, Cols{Data: b, Off: cols[0], Ld: n}, Matrix(c, w), make([]float32, PackSize(mBig, k)))
				for i := 0; i < mBig; i++ {
					for j := 0; j < w; j++ {
						if math.Float32bits(c[i*w+j]) != math.Float32bits(ref[i*n+cols[0]+j]) {
							t.Fatalf("%s, %d threads, columns %v: C[%d,%d] differs", kern, threads, cols, i, j)
						}
					}
				}
			}
			pool.Close()
		}
	}
}

// Running a product allocates nothing once its scratch exists.
func TestRunAllocatesNothing(t *testing.T) {
	pool := par.New(2)
	pool.Open()
	defer pool.Close()
	r := rand.New(rand.NewPCG(5, 6))
	m, n, k := 64, 200, 100
	a, b, c := randSlice(r, m*k), randSlice(r, k*n), make([]float32, m*n)
	op := New(Best, pool).NewOp()
	packed := make([]float32, PackSize(m, k))
	op.Run(m, n, k, a, k, Matrix(b, n), Matrix(c, n), packed)
	if allocs := testing.AllocsPerRun(20, func() { op.Run(m, n, k, a, k, Matrix(b, n), Matrix(c, n), packed) }); allocs > 0 {
		t.Errorf("%v allocations per product, want 0", allocs)
	}
}

// BenchmarkSgemm compares the kernels with gonum's Sgemm, at the shapes of
// the MLP benchmark's layers and of convolutions.
func BenchmarkSgemm(b *testing.B) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, sh := range [][3]int{{64, 1024, 784}, {64, 1024, 1024}, {512, 1024, 1024}, {64, 3136, 576}, {256, 196, 2304}} {
		m, n, k := sh[0], sh[1], sh[2]
		x, w, c := randSlice(r, m*k), randSlice(r, k*n), make([]float32, m*n)
		flops := 2 * float64(m*n*k)
		b.Run(fmt.Sprintf("gonum/%dx%dx%d", m, n, k), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				gonum.Implementation{}.Sgemm(blas.NoTrans, blas.NoTrans, m, n, k, 1, x, k, w, n, 0, c, n)
			}
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
		for _, kern := range Kernels() {
			for _, threads := range []int{1, 2} {
				b.Run(fmt.Sprintf("%s-%dt/%dx%dx%d", kern, threads, m, n, k), func(b *testing.B) {
					pool := par.New(threads)
					pool.Open()
					defer pool.Close()
					op := New(kern, pool).NewOp()
					packed := make([]float32, PackSize(m, k))
					for i := 0; i < b.N; i++ {
						op.Run(m, n, k, x, k, Matrix(w, n), Matrix(c, n), packed)
					}
					b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				})
			}
		}
	}
}
