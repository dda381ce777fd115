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

// A product computed from operands packed beforehand (PackA, PackAPerm,
// PackB from a matrix and from its transpose, B packed once into
// BScratch) has the bits of the plain product, at every thread count.
func TestPackedOperands(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for _, kern := range Kernels() {
		for _, sh := range [][3]int{{1, 1, 1}, {13, 33, 300}, {64, 100, 520}, {30, 7, 257}} {
			m, n, k := sh[0], sh[1], sh[2]
			a, b := randSlice(r, m*k), randSlice(r, k*n)
			ref := product(New(kern, nil), m, n, k, a, b)
			bt := make([]float32, n*k) // B transposed
			for kk := range k {
				for j := range n {
					bt[j*k+kk] = b[kk*n+j]
				}
			}
			// A with its columns reversed, and the permutation undoing it.
			ar, perm := make([]float32, m*k), make([]int, k)
			for i := range m {
				for kk := range k {
					ar[i*k+k-1-kk] = a[i*k+kk]
				}
			}
			for kk := range k {
				perm[kk] = k - 1 - kk
			}
			for _, threads := range []int{1, 2, 3} {
				pool := par.New(threads)
				pool.Open()
				g := New(kern, pool)
				pa := make([]float32, PackSize(m, k))
				PackA(pa, m, k, a, k)
				pap := make([]float32, PackSize(m, k))
				PackAPerm(pap, m, k, ar, k, perm)
				pb := make([]float32, PackBSize(k, n))
				PackB(pb, k, n, &Cols{Data: b, Ld: n})
				pbt := make([]float32, PackBSize(k, n))
				PackB(pbt, k, n, &Trans{Data: bt, Ld: k})
				cols := Matrix(b, n)
				cases := map[string]Product{
					"packed A":            {PackedA: pa, B: &cols},
					"packed A (permuted)": {PackedA: pap, B: &cols},
					"packed B":            {A: a, Lda: k, Scratch: make([]float32, PackSize(m, k)), PackedB: pb},
					"packed B (trans)":    {A: a, Lda: k, Scratch: make([]float32, PackSize(m, k)), PackedB: pbt},
					"B scratch":           {PackedA: pa, B: &cols, BScratch: make([]float32, PackBSize(k, n))},
				}
				for name, p := range cases {
					c := make([]float32, m*n)
					p.M, p.N, p.K, p.C = m, n, k, Matrix(c, n)
					g.NewOp().Compute(&p)
					for i := range c {
						if math.Float32bits(c[i]) != math.Float32bits(ref[i]) {
							t.Fatalf("%s %v, %d threads, %s: element %d = %g, want %g", kern, sh, threads, name, i, c[i], ref[i])
						}
					}
				}
				pool.Close()
			}
		}
	}
}

// The epilogue gives the bits of the separate ops (a rounded sum with the
// bias per row or per column, relu, the IR's maximum and minimum with a
// scalar, NaN included), on every kernel and at edges of tiles.
func TestEpilogue(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	nan := float32(math.NaN())
	for _, kern := range Kernels() {
		g := New(kern, nil)
		for _, sh := range [][3]int{{13, 33, 5}, {24, 64, 300}, {5, 3, 0}} {
			m, n, k := sh[0], sh[1], sh[2]
			a, b := randSlice(r, m*k), randSlice(r, k*n)
			if m*k > 0 {
				a[0] = nan // NaNs in the first row
			}
			plain := product(g, m, n, k, a, b)
			rowBias, colBias := randSlice(r, m), randSlice(r, n)
			for _, e := range []Epilogue{
				{Bias: rowBias}, {ColBias: colBias, Relu: true}, {Relu: true},
				{Bias: rowBias, Max: true, Lo: 0, Min: true, Hi: 0.5}, {Max: true, Lo: -0.25},
				{Min: true, Hi: nan}, {Max: true, Lo: nan, Bias: rowBias},
			} {
				c := make([]float32, m*n)
				cols := Matrix(b, n)
				p := Product{M: m, N: n, K: k, A: a, Lda: k, Scratch: make([]float32, PackSize(m, k)), B: &cols,
					C: Matrix(c, n), Epi: e}
				g.NewOp().Compute(&p)
				for i := range m {
					for j := range n {
						v := plain[i*n+j]
						if e.Bias != nil {
							v += e.Bias[i]
						}
						if e.ColBias != nil {
							v += e.ColBias[j]
						}
						if e.Relu && !(v > 0 || v != v) {
							v = 0
						}
						if e.Max && !(v >= e.Lo || v != v) {
							v = e.Lo
						}
						if e.Min && !(v <= e.Hi || v != v) {
							v = e.Hi
						}
						if got := c[i*n+j]; math.Float32bits(got) != math.Float32bits(v) {
							t.Fatalf("%s %v %+v: C[%d,%d] = %g, want %g", kern, sh, e, i, j, got, v)
						}
					}
				}
			}
		}
	}
}

// PackRows copies the runs of each row into their lanes and leaves the
// other lanes alone.
func TestPackRows(t *testing.T) {
	src := make([]float32, 500)
	for i := range src {
		src[i] = float32(i)
	}
	const rows, ld = 5, 90
	dst := make([]float32, rows*nr)
	for i := range dst {
		dst[i] = -1
	}
	segs := []Seg{{Off: 3, Lane: 0, Len: 17}, {Off: 40, Lane: 17, Len: 9}, {Off: 60, Lane: 28, Len: 3}}
	PackRows(dst, src, ld, rows, segs)
	for r := range rows {
		for lane := range nr {
			want := float32(-1)
			for _, s := range segs {
				if lane >= s.Lane && lane < s.Lane+s.Len {
					want = src[r*ld+s.Off+lane-s.Lane]
				}
			}
			if got := dst[r*nr+lane]; got != want {
				t.Fatalf("row %d lane %d = %g, want %g", r, lane, got, want)
			}
		}
	}
}

// A B of few rows is read where it lies, strips within a group directly
// and strips across groups packed: the bits of the plain product.
func TestDirectB(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	const m, n, k, group = 30, 150, 20, 45
	a, b := randSlice(r, m*k), randSlice(r, k*n)
	for _, kern := range Kernels() {
		ref := product(New(kern, nil), m, n, k, a, b)
		groups := (n + group - 1) / group
		stride := k*group + 7
		bg := make([]float32, groups*stride)
		for kk := range k {
			for j := range n {
				bg[(j/group)*stride+kk*group+j%group] = b[kk*n+j]
			}
		}
		for _, threads := range []int{1, 2} {
			pool := par.New(threads)
			pool.Open()
			c := make([]float32, m*n)
			New(kern, pool).NewOp().Run(m, n, k, a, k, Cols{Data: bg, Ld: group, Group: group, Stride: stride},
				Matrix(c, n), make([]float32, PackSize(m, k)))
			pool.Close()
			for i := range c {
				if math.Float32bits(c[i]) != math.Float32bits(ref[i]) {
					t.Fatalf("%s, %d threads: element %d = %g, want %g", kern, threads, i, c[i], ref[i])
				}
			}
		}
	}
}

// PackRowsAt and PackRows copy each row's runs into their lanes and leave
// the other lanes, and what follows the strip, alone, whether the runs
// fill the strip in order (the first stored whole), leave gaps or a
// partial strip, and whether their loads may read whole vectors of src
// or must stop at its end.
func TestPackRowsAt(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	for iter := range 500 {
		n := 60 + r.IntN(400)
		src := make([]float32, n)
		for i := range src {
			src[i] = float32(i)
		}
		rows := 1 + r.IntN(6)
		var segs []Seg
		lane := 0
		if iter%3 == 1 {
			lane = r.IntN(4) // a gap before the first run
		}
		for lane < nr && len(segs) < 4 {
			l := 1 + r.IntN(nr-lane)
			if len(segs) == 3 || iter%2 == 0 && r.IntN(2) == 0 {
				l = nr - lane // fill the strip
			}
			if iter%5 == 4 && lane+l == nr && l > 1 {
				l-- // a partial strip
			}
			segs = append(segs, Seg{Off: r.IntN(20), Lane: lane, Len: l})
			lane += l
		}
		maxOff := 0
		for _, s := range segs {
			maxOff = max(maxOff, s.Off+s.Len)
		}
		offs := make([]int, rows)
		for i := range offs {
			offs[i] = r.IntN(max(1, n-maxOff))
		}
		if iter%4 == 3 {
			offs[rows-1] = n - maxOff // runs ending at src's end
		}
		guarded := make([]float32, rows*nr+2*nr) // what follows dst stays as it is
		for i := range guarded {
			guarded[i] = -1
		}
		dst := guarded[:rows*nr]
		if iter%2 == 0 {
			PackRowsAt(dst, src, offs, segs)
		} else {
			// PackRows: rows ld apart.
			ld := 1 + r.IntN(max(1, (n-maxOff)/max(1, rows-1)))
			if rows == 1 {
				ld = n
			}
			for i := range offs {
				offs[i] = i * ld
			}
			PackRows(dst, src, ld, rows, segs)
		}
		for i, v := range guarded[rows*nr:] {
			if v != -1 {
				t.Fatalf("iter %d, runs %+v: element %d past the strip written", iter, segs, i)
			}
		}
		for row := range rows {
			for ln := range nr {
				want := float32(-1)
				for _, s := range segs {
					if ln >= s.Lane && ln < s.Lane+s.Len {
						want = src[offs[row]+s.Off+ln-s.Lane]
					}
				}
				if got := dst[row*nr+ln]; got != want {
					t.Fatalf("iter %d, runs %+v: row %d lane %d = %g, want %g", iter, segs, row, ln, got, want)
				}
			}
		}
	}
}

// A product whose B is packed already is split where the pieces read the
// least: a batch of samples by a layer's weights (small A, large B) into
// blocks of B, a late convolution's filters by its few pixels (large A)
// into chunks of A, with at least two pieces per thread either way.
func TestSplit(t *testing.T) {
	for _, c := range []struct {
		name               string
		m, n, k, minBlocks int
		maxBlocks, minA    int // at most maxBlocks blocks of B, at least minA chunks of A
		maxA               int
	}{
		{"MLP layer, batch 64", 64, 1024, 784, 2, 8, 1, 1},
		{"ResNet-18 layer4 conv, batch 8", 512, 392, 4608, 1, 2, 2, 8},
	} {
		mstrips, nstrips := (c.m+mr-1)/mr, (c.n+nr-1)/nr
		b, ch := split(c.m, c.n, c.k, mstrips, nstrips, c.minBlocks, 8)
		if b*ch < 4 || b > c.maxBlocks || ch < c.minA || ch > c.maxA {
			t.Errorf("%s: %d blocks of B by %d chunks of A", c.name, b, ch)
		}
	}
}
