// Package gemm is the CPU backend's single-precision matrix product: a
// packed, blocked gemm whose micro-kernel is AVX-512 or AVX2 assembly
// where the processor has it and portable Go elsewhere, run in parallel
// on a par.Pool.
//
// Exactness is its contract: every element of a product is one chain of
// fused multiply-adds over k = 0, 1, ..., K-1, starting from zero, in that
// order, whatever M, N, the layout of the operands, the blocking or the
// number of threads (no split of K, no special path for one row or one
// column; edge tiles run the same micro-kernel on zero-padded panels). A
// row of the product computed for a share of the batch therefore has the
// bits of the same row of the whole batch's product. The portable kernel
// has the same property with separately rounded products and sums; which
// kernel runs is fixed per Gemm.
//
// Operands are row-major matrices whose columns may come in groups laid
// apart in memory (Cols): a convolution's output for several samples, say,
// where each sample's [C, H*W] block is a group.
package gemm

import (
	"multigpu/runtime/cpu/par"
)

// The micro-tile: mr rows of A by nr columns of B.
const (
	mr = 12
	nr = 32
)

// Cols is a float32 matrix with rows Ld elements apart whose columns come
// in groups of Group columns, groups Stride elements apart: element (r, j)
// is Data[Off + (j/Group)*Stride + r*Ld + j%Group]. A row-major matrix of
// N columns has Group N (or 0, which means the same).
type Cols struct {
	Data          []float32
	Off, Ld       int
	Group, Stride int
}

// Matrix returns the row-major matrix data with rows ld apart.
func Matrix(data []float32, ld int) Cols { return Cols{Data: data, Ld: ld} }

// at returns the index of element (r, j) of c, for a matrix of n columns.
func (c *Cols) at(r, j int) int {
	if c.Group <= 0 || j < c.Group {
		return c.Off + r*c.Ld + j
	}
	return c.Off + (j/c.Group)*c.Stride + r*c.Ld + j%c.Group
}

// run reports how many columns from j on are contiguous in memory (within
// one group), given n columns in all.
func (c *Cols) run(j, n int) int {
	if c.Group <= 0 {
		return n - j
	}
	return min(n, (j/c.Group+1)*c.Group) - j
}

// Kernel names a micro-kernel implementation.
type Kernel int

// The kernels. Best picks the fastest the processor runs.
const (
	Best Kernel = iota
	Portable
	AVX512
	AVX2
)

// String returns the kernel's name.
func (k Kernel) String() string {
	switch k {
	case Portable:
		return "portable"
	case AVX512:
		return "avx512"
	case AVX2:
		return "avx2"
	}
	return "best"
}

// Kernels returns the kernels this processor runs, fastest first.
func Kernels() []Kernel {
	var ks []Kernel
	if hasAVX512() {
		ks = append(ks, AVX512)
	}
	if hasAVX2() {
		ks = append(ks, AVX2)
	}
	return append(ks, Portable)
}

// Gemm computes matrix products with one kernel on one pool.
type Gemm struct {
	kernel Kernel
	pool   *par.Pool
	tile   func(k int, a, b, c []float32, ldc int)
}

// New returns a Gemm running kernel (Best: the first of Kernels) on pool
// (nil: on the caller alone). A kernel the processor lacks falls back to
// Portable.
func New(kernel Kernel, pool *par.Pool) *Gemm {
	if kernel == Best || kernel == AVX512 && !hasAVX512() || kernel == AVX2 && !hasAVX2() {
		kernel = Kernels()[0]
	}
	g := &Gemm{kernel: kernel, pool: pool, tile: tilePortable}
	switch kernel {
	case AVX512:
		g.tile = tileAVX512
	case AVX2:
		g.tile = tileAVX2
	}
	return g
}

// Kernel returns the kernel g runs.
func (g *Gemm) Kernel() Kernel { return g.kernel }

// Pool returns the pool g runs on.
func (g *Gemm) Pool() *par.Pool { return g.pool }

// PackSize returns the number of float32s of the buffer Op.Run packs A
// into, for an m by k A.
func PackSize(m, k int) int { return (m + mr - 1) / mr * mr * max(k, 1) }

// Op is one product's loop state; a kernel keeps one per product it runs
// so that running it allocates nothing. An Op runs one product at a time.
type Op struct {
	g       *Gemm
	m, n, k int
	a       []float32 // packed A
	b, c    Cols
	strips  int // of nr columns in a block of B
	blocks  int // of B's columns
	mchunks int // of A's strips
	job     par.Job
	packJob par.Job
	pack    packTask
}

// NewOp returns the loop state of products of g.
func (g *Gemm) NewOp() *Op { return &Op{g: g} }

// Run computes C = A B for A m by k (row-major, rows lda apart), B k by n
// and C m by n, overwriting C; packed is scratch of PackSize(m, k)
// float32s. Every element of C is a chain of fused multiply-adds over k
// in order, starting from zero (see the package comment).
func (o *Op) Run(m, n, k int, a []float32, lda int, b, c Cols, packed []float32) {
	if m <= 0 || n <= 0 {
		return
	}
	if k <= 0 {
		for r := 0; r < m; r++ {
			for j := 0; j < n; {
				w := c.run(j, n)
				clear(c.Data[c.at(r, j):][:w])
				j += w
			}
		}
		return
	}
	o.m, o.n, o.k, o.b, o.c = m, n, k, b, c
	o.a = packed[:PackSize(m, k)]
	mstrips := (m + mr - 1) / mr
	pieces := par.Chunks(mstrips, 4, 4*o.threads())
	o.pack = packTask{a: a, lda: lda, m: m, k: k, dst: o.a, pieces: pieces}
	o.g.pool.Run(&o.packJob, pieces, &o.pack)
	// A block of B is a few strips of nr columns, about 64 KiB packed.
	nstrips := (n + nr - 1) / nr
	o.strips = max(1, min(nstrips, 16384/(nr*k)))
	o.blocks = (nstrips + o.strips - 1) / o.strips
	o.mchunks = 1
	if want := 4 * o.threads(); o.threads() > 1 && o.blocks < want {
		o.mchunks = min(mstrips, (want+o.blocks-1)/o.blocks)
	}
	o.g.pool.Run(&o.job, o.blocks*o.mchunks, o)
}

func (o *Op) threads() int {
	if o.g.pool == nil {
		return 1
	}
	return o.g.pool.Threads()
}

// Do computes piece i: one block of B's columns against one chunk of A's
// strips.
func (o *Op) Do(i int, s *par.Scratch) {
	blk, chunk := i%o.blocks, i/o.blocks
	k := o.k
	j0 := blk * o.strips * nr
	j1 := min(o.n, j0+o.strips*nr)
	strips := (j1 - j0 + nr - 1) / nr
	buf := s.F32(strips*nr*k + mr*nr)
	pb, tmp := buf[:strips*nr*k], buf[strips*nr*k:]
	packB(&o.b, j0, j1, k, pb)
	mstrips := (o.m + mr - 1) / mr
	per := (mstrips + o.mchunks - 1) / o.mchunks
	s0, s1 := chunk*per, min(mstrips, (chunk+1)*per)
	c := &o.c
	for st := s0; st < s1; st++ {
		i0 := st * mr
		rows := min(mr, o.m-i0)
		pa := o.a[st*mr*k : (st+1)*mr*k]
		for t := 0; t < strips; t++ {
			jj := j0 + t*nr
			cols := min(nr, j1-jj)
			pbt := pb[t*nr*k : (t+1)*nr*k]
			if rows == mr && cols == nr && c.run(jj, o.n) >= nr {
				o.g.tile(k, pa, pbt, c.Data[c.at(i0, jj):], c.Ld)
				continue
			}
			o.g.tile(k, pa, pbt, tmp, nr)
			for r := 0; r < rows; r++ {
				src := tmp[r*nr : r*nr+cols]
				for j := 0; j < cols; {
					w := min(c.run(jj+j, o.n), cols-j)
					copy(c.Data[c.at(i0+r, jj+j):][:w], src[j:j+w])
					j += w
				}
			}
		}
	}
}

// packTask packs A into strips of mr rows: strip s holds, for each k, the
// mr values A[s*mr+i, k] (zero past the last row).
type packTask struct {
	a      []float32
	lda    int
	m, k   int
	dst    []float32
	pieces int
}

// Do packs the strips of piece i.
func (p *packTask) Do(i int, _ *par.Scratch) {
	mstrips := (p.m + mr - 1) / mr
	per := (mstrips + p.pieces - 1) / p.pieces
	for st := i * per; st < min(mstrips, (i+1)*per); st++ {
		packA(p.a, p.lda, p.m, p.k, st, p.dst[st*mr*p.k:(st+1)*mr*p.k])
	}
}

// packA packs strip st of A.
func packA(a []float32, lda, m, k, st int, dst []float32) {
	i0 := st * mr
	rows := min(mr, m-i0)
	if rows < mr {
		clear(dst)
	}
	for r := 0; r < rows; r++ {
		row := a[(i0+r)*lda:][:k]
		for kk, v := range row {
			dst[kk*mr+r] = v
		}
	}
}

// packB packs columns [j0, j1) of B into strips of nr columns: strip t
// holds, for each k, the nr values B[k, j0+t*nr+j] (zero past j1).
func packB(b *Cols, j0, j1, k int, dst []float32) {
	for t := 0; j0+t*nr < j1; t++ {
		jj := j0 + t*nr
		cols := min(nr, j1-jj)
		d := dst[t*nr*k : (t+1)*nr*k]
		if cols < nr {
			clear(d)
		}
		for j := 0; j < cols; {
			w := min(b.run(jj+j, j1), cols-j)
			base := b.at(0, jj+j)
			for kk := 0; kk < k; kk++ {
				copy(d[kk*nr+j:kk*nr+j+w], b.Data[base+kk*b.Ld:][:w])
			}
			j += w
		}
	}
}

// tilePortable is the portable micro-kernel: C[mr, nr] (rows ldc apart) =
// the packed strip a times the packed strip b, each element summed over k
// in order with separately rounded products and sums. It works on blocks
// of 4 by 4 elements held in locals.
func tilePortable(k int, a, b, c []float32, ldc int) {
	a, b = a[:k*mr], b[:k*nr]
	for i := 0; i < mr; i += 4 {
		for j := 0; j < nr; j += 4 {
			var c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23, c30, c31, c32, c33 float32
			for kk := 0; kk < k; kk++ {
				av := (*[4]float32)(a[kk*mr+i:])
				bv := (*[4]float32)(b[kk*nr+j:])
				b0, b1, b2, b3 := bv[0], bv[1], bv[2], bv[3]
				a0 := av[0]
				c00, c01, c02, c03 = c00+float32(a0*b0), c01+float32(a0*b1), c02+float32(a0*b2), c03+float32(a0*b3)
				a1 := av[1]
				c10, c11, c12, c13 = c10+float32(a1*b0), c11+float32(a1*b1), c12+float32(a1*b2), c13+float32(a1*b3)
				a2 := av[2]
				c20, c21, c22, c23 = c20+float32(a2*b0), c21+float32(a2*b1), c22+float32(a2*b2), c23+float32(a2*b3)
				a3 := av[3]
				c30, c31, c32, c33 = c30+float32(a3*b0), c31+float32(a3*b1), c32+float32(a3*b2), c33+float32(a3*b3)
			}
			copy(c[i*ldc+j:][:4], []float32{c00, c01, c02, c03})
			copy(c[(i+1)*ldc+j:][:4], []float32{c10, c11, c12, c13})
			copy(c[(i+2)*ldc+j:][:4], []float32{c20, c21, c22, c23})
			copy(c[(i+3)*ldc+j:][:4], []float32{c30, c31, c32, c33})
		}
	}
}
