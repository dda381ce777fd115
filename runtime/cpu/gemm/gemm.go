// Package gemm is the CPU backend's single-precision matrix product: a
// packed, blocked gemm whose micro-kernel is AVX-512 or AVX2 assembly
// where the processor has it and portable Go elsewhere, run in parallel
// on a par.Pool.
//
// Exactness is its contract: every element of a product is one chain of
// fused multiply-adds over k = 0, 1, ..., K-1, starting from zero, in that
// order, whatever M, N, the layout of the operands, the blocking or the
// number of threads (no split of K across threads, no special path for
// one row or one column; edge tiles run the same micro-kernel on
// zero-padded panels). K is cut in blocks of kc, each block's chains
// going on from the float32 values the block before stored in C, which
// is the same chain. A row of the product computed for a share of the
// batch therefore has the bits of the same row of the whole batch's
// product. The portable kernel has the same property with separately
// rounded products and sums; which kernel runs is fixed per Gemm.
//
// Operands are row-major matrices whose columns may come in groups laid
// apart in memory (Cols): a convolution's output for several samples, say,
// where each sample's [C, H*W] block is a group. Either operand may be
// packed once and reused (PackA, PackB: a layer's weights), and B may
// pack itself (Source: a convolution's patches laid out straight into
// the packed form). An Epilogue adds a bias per row of C and applies the
// IR's relu or clamp to each element after its last fused multiply-add,
// with the bits the separate ops would give.
package gemm

import (
	"multigpu/runtime/cpu/par"
	"multigpu/runtime/cpu/vec"
)

// The micro-tile: mr rows of A by nr columns of B; kc is the block of K
// one pass of the micro-kernels covers.
const (
	mr = 12
	nr = 32
	kc = 256
	// aBlock is the float32s of packed A a piece runs against each strip
	// of B before moving on (about a core's share of L2).
	aBlock = 64 << 10
	// bBlock is the float32s of one piece's block of packed B.
	bBlock = 128 << 10
	// minFlops is the least work worth a piece of its own (about 10 µs).
	minFlops = 1 << 20
	// stageMax is the most float32s of a piece's staged tiles of C.
	stageMax = 256 << 10
	// directK is the most rows of a B the product reads unpacked.
	directK = 64
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

// at returns the index of element (r, j) of c.
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

// Source is a B operand that packs itself.
type Source interface {
	// Pack writes rows [k0, k1) of columns [j0, j1) of B into dst as
	// strips of nr columns: strip t holds, for each k, the nr values
	// B[k, j0+t*nr+j], zero past j1. dst has ceil((j1-j0)/nr)*nr*(k1-k0)
	// elements.
	Pack(dst []float32, j0, j1, k0, k1 int)
}

// Pack packs a block of c as a B operand (Source).
func (c *Cols) Pack(dst []float32, j0, j1, k0, k1 int) {
	kb := k1 - k0
	for t := 0; j0+t*nr < j1; t++ {
		jj := j0 + t*nr
		cols := min(nr, j1-jj)
		d := dst[t*nr*kb : (t+1)*nr*kb]
		if cols < nr {
			clear(d)
		}
		// The strip's columns as runs within groups, the same for every
		// row.
		var segs [nr]Seg
		ns, base := 0, c.at(k0, jj)
		for j := 0; j < cols; {
			w := min(c.run(jj+j, j1), cols-j)
			segs[ns] = Seg{Off: c.at(k0, jj+j) - base, Lane: j, Len: w}
			ns++
			j += w
		}
		PackRows(d, c.Data[base:], c.Ld, kb, segs[:ns])
	}
}

// Trans is a B operand given as its transpose: B[k, j] is
// Data[j*Ld + k] (a linear layer's [out, in] weight).
type Trans struct {
	Data []float32
	Ld   int
}

// Pack packs a block of B from its transpose (Source).
func (b *Trans) Pack(dst []float32, j0, j1, k0, k1 int) {
	kb := k1 - k0
	for t := 0; j0+t*nr < j1; t++ {
		jj := j0 + t*nr
		cols := min(nr, j1-jj)
		d := dst[t*nr*kb : (t+1)*nr*kb]
		if cols < nr {
			clear(d)
		}
		for j := range cols {
			row := b.Data[(jj+j)*b.Ld+k0:][:kb]
			for kk, v := range row {
				d[kk*nr+j] = v
			}
		}
	}
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
	if vec.Fast() {
		ks = append(ks, AVX512)
	}
	if vec.AVX2() {
		ks = append(ks, AVX2)
	}
	return append(ks, Portable)
}

// Gemm computes matrix products with one kernel on one pool.
type Gemm struct {
	kernel Kernel
	pool   *par.Pool
	fused  bool // the micro-kernel applies the epilogue itself
}

// New returns a Gemm running kernel (Best: the first of Kernels) on pool
// (nil: on the caller alone). A kernel the processor lacks falls back to
// Portable.
func New(kernel Kernel, pool *par.Pool) *Gemm {
	if kernel == Best || kernel == AVX512 && !vec.Fast() || kernel == AVX2 && !vec.AVX2() {
		kernel = Kernels()[0]
	}
	return &Gemm{kernel: kernel, pool: pool, fused: kernel == AVX512}
}

// tile runs g's micro-kernel on one tile, B's rows ldb apart (nr when
// packed): the chains and, for the AVX-512 kernel, the epilogue flags of
// e.
func (g *Gemm) tile(k int, a, b, c []float32, ldc int, e *tileEpi, ldb int) {
	switch g.kernel {
	case AVX512:
		tileAVX512(k, a, b, c, ldc, e, ldb)
	case AVX2:
		tileAVX2(k, a, b, c, ldc, e, ldb)
	default:
		tilePortable(k, a, b, c, ldc, e, ldb)
	}
}

// tileRows is tile for a tile of which only the first rows rows are
// wanted: with AVX-512, 4 rows or fewer run on the kernel of 4 (the same
// chains on fewer rows).
func (g *Gemm) tileRows(rows, k int, a, b, c []float32, ldc int, e *tileEpi, ldb int) {
	if rows <= 4 && g.kernel == AVX512 {
		tile4AVX512(k, a, b, c, ldc, e, ldb)
		return
	}
	g.tile(k, a, b, c, ldc, e, ldb)
}

// Kernel returns the kernel g runs.
func (g *Gemm) Kernel() Kernel { return g.kernel }

// Pool returns the pool g runs on.
func (g *Gemm) Pool() *par.Pool { return g.pool }

// PackSize returns the number of float32s of A packed (PackA, or the
// scratch a Product packs A into), for an m by k A.
func PackSize(m, k int) int { return (m + mr - 1) / mr * mr * max(k, 1) }

// PackBSize returns the number of float32s of B packed (PackB), for a k
// by n B.
func PackBSize(k, n int) int { return (n + nr - 1) / nr * nr * max(k, 1) }

// PackA packs the m by k matrix a (rows lda apart) into dst, of
// PackSize(m, k) float32s, for Product.PackedA.
func PackA(dst []float32, m, k int, a []float32, lda int) {
	for st := range (m + mr - 1) / mr {
		packA(a, lda, m, k, st, dst[st*mr*k:(st+1)*mr*k])
	}
}

// PackAPerm is PackA of the m by k matrix whose column j is column
// perm[j] of a (a convolution's filters with their taps reordered).
func PackAPerm(dst []float32, m, k int, a []float32, lda int, perm []int) {
	perm = perm[:k]
	for st := range (m + mr - 1) / mr {
		d := dst[st*mr*k : (st+1)*mr*k]
		i0 := st * mr
		rows := min(mr, m-i0)
		if rows < mr {
			clear(d)
		}
		for r := range rows {
			row := a[(i0+r)*lda:]
			for kk, c := range perm {
				d[kk*mr+r] = row[c]
			}
		}
	}
}

// Seg is one run of the columns of a strip of packed B: Len values from
// Off on in a source row go to the strip's lanes Lane, Lane+1, ...
type Seg struct {
	Off, Lane, Len int
}

// segMask is a Seg as packRowsAVX512 reads it: the lanes of the first and
// second 16 as masks (offsets 0, 8, 16, 18).
type segMask struct {
	off, lane int
	m0, m1    uint16
}

// PackRows writes rows rows of a strip of packed B (rows nr float32s
// apart in dst): row r's lanes of each Seg s come from src[r*ld+s.Off:].
// Lanes no Seg covers are left as they are.
func PackRows(dst, src []float32, ld, rows int, segs []Seg) {
	if rows <= 0 || len(segs) == 0 {
		return
	}
	if len(segs) > nr {
		panic("gemm: more runs than lanes in a strip")
	}
	_ = dst[(rows-1)*nr+nr-1]
	var ms [nr]segMask
	mode, end := 3, 0 // as PackRowsAt's
	for i, sg := range segs {
		if sg.Lane < 0 || sg.Len < 0 || sg.Lane+sg.Len > nr || sg.Off < 0 {
			panic("gemm: run outside the strip")
		}
		if sg.Len > 0 {
			_ = src[(rows-1)*ld+sg.Off+sg.Len-1]
		}
		if (rows-1)*ld+sg.Off+nr > len(src) {
			mode &^= 1
		}
		if sg.Lane != end {
			mode &^= 2
		}
		end = sg.Lane + sg.Len
		ms[i] = segMask{off: sg.Off, lane: sg.Lane,
			m0: uint16(1<<min(sg.Len, 16) - 1), m1: uint16(1<<max(sg.Len-16, 0) - 1)}
	}
	if end != nr {
		mode &^= 2
	}
	if vec.Fast() {
		packRowsAVX512(&dst[0], &src[0], ld, rows, &ms[0], len(segs), mode)
		return
	}
	for r := range rows {
		d, s := dst[r*nr:r*nr+nr], src[r*ld:]
		for _, sg := range segs {
			copy(d[sg.Lane:sg.Lane+sg.Len], s[sg.Off:sg.Off+sg.Len])
		}
	}
}

// PackRowsAt is PackRows with row r of the source at src[offs[r]:]
// instead of r*ld (a convolution's rows, one per tap and channel).
func PackRowsAt(dst, src []float32, offs []int, segs []Seg) {
	rows := len(offs)
	if rows <= 0 || len(segs) == 0 {
		return
	}
	if len(segs) > nr {
		panic("gemm: more runs than lanes in a strip")
	}
	_ = dst[(rows-1)*nr+nr-1]
	hi, lo := 0, 0
	for _, o := range offs {
		hi, lo = max(hi, o), min(lo, o)
	}
	var ms [nr]segMask
	// Masked loads and stores are slow: where every run's nr elements
	// lie inside src, the loads are whole; where the runs fill the strip
	// in order, the first is stored whole too (the lanes it writes past
	// its end are the next runs'; a later run's whole store would spill
	// into the next row).
	mode := 3
	end := 0 // the lane the runs reached, in order
	for i, sg := range segs {
		if sg.Lane < 0 || sg.Len < 0 || sg.Lane+sg.Len > nr || sg.Off < 0 || lo < 0 {
			panic("gemm: run outside the strip")
		}
		if sg.Len > 0 {
			_ = src[hi+sg.Off+sg.Len-1]
		}
		if hi+sg.Off+nr > len(src) {
			mode &^= 1
		}
		if sg.Lane != end {
			mode &^= 2
		}
		end = sg.Lane + sg.Len
		ms[i] = segMask{off: sg.Off, lane: sg.Lane,
			m0: uint16(1<<min(sg.Len, 16) - 1), m1: uint16(1<<max(sg.Len-16, 0) - 1)}
	}
	if end != nr {
		mode &^= 2
	}
	if vec.Fast() {
		packRowsAtAVX512(&dst[0], &src[0], &offs[0], rows, &ms[0], len(segs), mode)
		return
	}
	for r, o := range offs {
		d, s := dst[r*nr:r*nr+nr], src[o:]
		for _, sg := range segs {
			copy(d[sg.Lane:sg.Lane+sg.Len], s[sg.Off:sg.Off+sg.Len])
		}
	}
}

// PackB packs the k by n B of src into dst, of PackBSize(k, n) float32s,
// for Product.PackedB: strip t of nr columns at t*nr*k, holding for each
// k the nr values of its columns.
func PackB(dst []float32, k, n int, src Source) {
	if k > 0 && n > 0 {
		src.Pack(dst[:PackBSize(k, n)], 0, n, 0, k)
	}
}

// Epilogue is what a product does to each element of C after its last
// fused multiply-add, in this order, with the bits of the IR's separate
// ops: add Bias[i] to row i, then ColBias[j] to column j (rounded float32
// sums; nil: none), relu (x if x > 0 or NaN, else +0), the IR's maximum
// with Lo (x if x >= Lo or x is NaN, else Lo), its minimum with Hi (x if
// x <= Hi or x is NaN, else Hi).
type Epilogue struct {
	Bias     []float32
	ColBias  []float32
	Relu     bool
	Max, Min bool
	Lo, Hi   float32
}

// The flags of tileEpi.
const (
	flagAcc  = 1 << iota // the chains go on from C
	flagBias             // add bias[r] to row r
	flagRelu
	flagMax
	flagMin
	flagColBias // add colBias[j] to column j
	flagEpi     = flagBias | flagRelu | flagMax | flagMin | flagColBias
)

// tileEpi is what the micro-kernel does besides the chains, read by the
// assembly at fixed offsets: flags at 0, bias at 8, lo at 16, hi at 20,
// colBias at 24.
type tileEpi struct {
	flags   int
	bias    *float32 // mr values, one per row of the tile
	lo, hi  float32
	colBias *float32 // nr values, one per column of the tile
}

// Product is one product C = A B for Op.Compute: A is m by k, B k by n,
// C m by n (overwritten).
type Product struct {
	M, N, K int
	// A is row-major with rows Lda apart, packed into Scratch (of
	// PackSize(M, K) float32s) as the product starts, unless PackedA
	// holds it packed already (PackA).
	A       []float32
	Lda     int
	PackedA []float32
	Scratch []float32
	// B is packed a block at a time as the product goes, unless PackedB
	// holds it packed already (PackB). When several threads would pack
	// the same block, and BScratch holds PackBSize(K, N) float32s, B is
	// packed there once, in parallel, first.
	B        Source
	PackedB  []float32
	BScratch []float32
	C        Cols
	Epi      Epilogue
}

// Op is one product's loop state; a kernel keeps one per product it runs
// so that running it allocates nothing. An Op runs one product at a time.
type Op struct {
	g       *Gemm
	p       Product
	a       []float32 // packed A
	cols    Cols      // B of Run
	epi     tileEpi   // the epilogue's flags (but acc) and values
	slowEpi bool      // the kernel's fused epilogue cannot give the IR's bits
	strips  int       // of nr columns in a block of B
	blocks  int       // of B's columns
	mchunks int       // of A's strips
	job     par.Job
	packJob par.Job
	pack    packTask
	bpack   bpackTask
}

// bpackTask packs all of B, a range of strips per piece.
type bpackTask struct {
	src    Source
	dst    []float32
	n, k   int
	pieces int
}

// Do packs the strips of piece i.
func (b *bpackTask) Do(i int, _ *par.Scratch) {
	nstrips := (b.n + nr - 1) / nr
	per := (nstrips + b.pieces - 1) / b.pieces
	s0, s1 := i*per, min(nstrips, (i+1)*per)
	for st := s0; st < s1; st++ {
		// Strip st of the whole B is strip 0 of columns [st*nr, ...).
		b.src.Pack(b.dst[st*nr*b.k:(st+1)*nr*b.k], st*nr, min(b.n, (st+1)*nr), 0, b.k)
	}
}

// NewOp returns the loop state of products of g.
func (g *Gemm) NewOp() *Op { return &Op{g: g} }

// Run computes C = A B for A m by k (row-major, rows lda apart), B k by n
// and C m by n, overwriting C; packed is scratch of PackSize(m, k)
// float32s. Every element of C is a chain of fused multiply-adds over k
// in order, starting from zero (see the package comment).
func (o *Op) Run(m, n, k int, a []float32, lda int, b, c Cols, packed []float32) {
	o.cols = b
	o.Compute(&Product{M: m, N: n, K: k, A: a, Lda: lda, Scratch: packed, B: &o.cols, C: c})
	o.cols = Cols{}
}

// Compute runs the product p. It keeps no reference to p's memory after
// it returns.
func (o *Op) Compute(p *Product) {
	m, n, k := p.M, p.N, p.K
	if m <= 0 || n <= 0 {
		return
	}
	o.p = *p
	defer func() { o.p, o.a, o.pack = Product{}, nil, packTask{} }()
	o.setEpilogue()
	if k <= 0 {
		o.zero()
		return
	}
	mstrips := (m + mr - 1) / mr
	// Pieces of at least minFlops each: a helper woken for less costs
	// more than it saves.
	threads, pool := o.threads(), o.g.pool
	if flops := 2 * float64(m) * float64(n) * float64(k); flops < 2*minFlops {
		threads, pool = 1, nil // on the caller, with the Op's own scratch
	}
	if p.PackedA != nil {
		o.a = p.PackedA[:PackSize(m, k)]
	} else {
		o.a = p.Scratch[:PackSize(m, k)]
		pieces := 1
		if threads > 1 && m*k >= 1<<16 {
			pieces = par.Chunks(mstrips, 4, 4*threads)
		}
		o.pack = packTask{a: p.A, lda: p.Lda, m: m, k: k, dst: o.a, pieces: pieces}
		pool.Run(&o.packJob, pieces, &o.pack)
	}
	nstrips := (n + nr - 1) / nr
	kb := min(kc, k)
	o.strips = max(1, min(nstrips, bBlock/(nr*kb)))
	want := 4 * threads
	if p.PackedB == nil && threads > 1 && (nstrips+o.strips-1)/o.strips < want && len(p.BScratch) >= PackBSize(k, n) {
		// Blocks shared by several chunks of A: pack B once.
		o.p.PackedB = p.BScratch[:PackBSize(k, n)]
		o.bpack = bpackTask{src: p.B, dst: o.p.PackedB, n: n, k: k, pieces: par.Chunks(nstrips, 1, want)}
		pool.Run(&o.packJob, o.bpack.pieces, &o.bpack)
		o.bpack = bpackTask{}
	}
	o.mchunks = 1
	if o.p.PackedB != nil && threads > 1 {
		// Nothing to pack per block: split the product into the pieces
		// that read the least of A and B, at least two per thread.
		blocks, chunks := split(m, n, k, mstrips, nstrips, (nstrips+o.strips-1)/o.strips, want)
		o.strips, o.mchunks = (nstrips+blocks-1)/blocks, chunks
	}
	o.blocks = (nstrips + o.strips - 1) / o.strips
	if threads > 1 && o.blocks*o.mchunks < want/2 {
		o.mchunks = min(mstrips, (want/2+o.blocks-1)/o.blocks)
	}
	pool.Run(&o.job, o.blocks*o.mchunks, o)
}

// split returns how many blocks of B's strips (at least minBlocks, so
// that a block fits the cache) and chunks of A's strips to cut a product
// into when B is packed already, so that there are at least want/2
// pieces (if the strips allow) and they read the fewest elements in all:
// each block reads all of A (blocks*m*k), each chunk all of B once per
// sub-block of A its piece holds (chunks*k*n*subs). Splitting B suits a
// large B and a small A (a layer of a batch of samples by its weights),
// splitting A the converse (a late convolution's filters by its few
// pixels), where the pieces of a split B would each stream all of A.
func split(m, n, k, mstrips, nstrips, minBlocks, want int) (blocks, chunks int) {
	sub := max(1, aBlock/(mr*min(kc, k)))
	best := -1.0
	for c := 1; c <= min(mstrips, want); c++ {
		subs := ((mstrips+c-1)/c + sub - 1) / sub
		for b := min(minBlocks, nstrips); b <= max(min(nstrips, want), minBlocks); b++ {
			if b*c < want/2 && (b < nstrips || c < mstrips) {
				continue // too few pieces, and more to be had
			}
			cost := float64(b)*float64(m)*float64(k) + float64(c)*float64(k)*float64(n)*float64(subs)
			if best < 0 || cost < best || cost == best && b*c > blocks*chunks && b*c <= want {
				best, blocks, chunks = cost, b, c
			}
		}
	}
	if best < 0 {
		return max(1, min(minBlocks, nstrips)), 1
	}
	return blocks, chunks
}

func (o *Op) threads() int {
	if o.g.pool == nil {
		return 1
	}
	return o.g.pool.Threads()
}

// setEpilogue sets o.epi from o.p.Epi.
func (o *Op) setEpilogue() {
	e := &o.p.Epi
	o.epi = tileEpi{lo: e.Lo, hi: e.Hi}
	if e.Bias != nil {
		o.epi.flags |= flagBias
	}
	if e.Relu {
		o.epi.flags |= flagRelu
	}
	if e.Max {
		o.epi.flags |= flagMax
	}
	if e.Min {
		o.epi.flags |= flagMin
	}
	if e.ColBias != nil {
		o.epi.flags |= flagColBias
	}
	// The IR's maximum and minimum with a NaN scalar give NaN; the
	// vector instructions give x.
	o.slowEpi = !o.g.fused || e.Max && e.Lo != e.Lo || e.Min && e.Hi != e.Hi
}

// zero sets C to the product of an empty K: zeros, then the epilogue.
func (o *Op) zero() {
	c := &o.p.C
	for r := 0; r < o.p.M; r++ {
		for j := 0; j < o.p.N; {
			w := c.run(j, o.p.N)
			row := c.Data[c.at(r, j):][:w]
			clear(row)
			if o.epi.flags&flagEpi != 0 {
				o.epilogueRow(row, r, j)
			}
			j += w
		}
	}
}

// Do computes piece i: one block of B's columns against one chunk of A's
// strips, over every block of K in order.
func (o *Op) Do(i int, s *par.Scratch) {
	p := &o.p
	blk, chunk := i%o.blocks, i/o.blocks
	m, n, k := p.M, p.N, p.K
	j0 := blk * o.strips * nr
	j1 := min(n, j0+o.strips*nr)
	strips := (j1 - j0 + nr - 1) / nr
	mstrips := (m + mr - 1) / mr
	per := (mstrips + o.mchunks - 1) / o.mchunks
	s0, s1 := chunk*per, min(mstrips, (chunk+1)*per)
	if s0 >= s1 {
		return
	}
	kbMax := min(kc, k)
	need := mr*nr + mr + nr
	if p.PackedB == nil {
		need += strips * nr * kbMax
	}
	// A B of few rows that is a plain matrix is read where it lies: its
	// strips of nr contiguous columns need no packing.
	var direct *Cols
	if cb, ok := p.B.(*Cols); ok && p.PackedB == nil && k <= directK {
		direct = cb
	}
	// Over several blocks of K, the piece's tiles of C live in a staging
	// area (whole tiles, rows lds apart) until the last block, copied to
	// C once, so that edge tiles are not copied in and out per block.
	ldS := strips * nr
	stageN := (s1 - s0) * mr * ldS
	stage := k > kc && stageN <= stageMax
	if stage {
		need += stageN
	}
	buf := s.F32(need)
	tmp, padBias, padCol, pbuf := buf[:mr*nr], buf[mr*nr:mr*nr+mr], buf[mr*nr+mr:mr*nr+mr+nr], buf[mr*nr+mr+nr:]
	var stg []float32
	if stage {
		stg = pbuf[len(pbuf)-stageN:]
		pbuf = pbuf[:len(pbuf)-stageN]
	}
	sub := max(1, aBlock/(mr*kbMax))
	c := &p.C
	e := o.epi
	for k0 := 0; k0 < k; k0 += kc {
		kb := min(kc, k-k0)
		e.flags = o.epi.flags &^ flagEpi
		if k0 > 0 {
			e.flags |= flagAcc
		}
		last := k0+kb == k
		if last && !o.slowEpi {
			e.flags |= o.epi.flags & flagEpi
		}
		if p.PackedB == nil && direct == nil {
			p.B.Pack(pbuf[:strips*nr*kb], j0, j1, k0, k0+kb)
		}
		for a0 := s0; a0 < s1; a0 += sub {
			a1 := min(s1, a0+sub)
			for t := range strips {
				jj := j0 + t*nr
				cols := min(nr, j1-jj)
				var pbt []float32
				ldb := nr
				switch {
				case p.PackedB != nil:
					pbt = p.PackedB[(jj/nr)*nr*k+k0*nr:][:kb*nr]
				case direct != nil && cols == nr && direct.run(jj, n) >= nr:
					pbt, ldb = direct.Data[direct.at(k0, jj):], direct.Ld
				default:
					pbt = pbuf[t*nr*kb:][:kb*nr]
					if direct != nil && a0 == s0 {
						p.B.Pack(pbt, jj, jj+cols, k0, k0+kb)
					}
				}
				direct := cols == nr && c.run(jj, n) >= nr
				e.colBias = nil
				if e.flags&flagColBias != 0 {
					if cols == nr {
						e.colBias = &p.Epi.ColBias[jj]
					} else {
						clear(padCol)
						copy(padCol, p.Epi.ColBias[jj:jj+cols])
						e.colBias = &padCol[0]
					}
				}
				for st := a0; st < a1; st++ {
					i0 := st * mr
					rows := min(mr, m-i0)
					pa := o.a[st*mr*k+k0*mr:][:kb*mr]
					e.bias = nil
					if e.flags&flagBias != 0 {
						if rows == mr {
							e.bias = &p.Epi.Bias[i0]
						} else {
							clear(padBias)
							copy(padBias, p.Epi.Bias[i0:i0+rows])
							e.bias = &padBias[0]
						}
					}
					if stage {
						out := stg[(st-s0)*mr*ldS+t*nr:]
						o.g.tileRows(rows, kb, pa, pbt, out, ldS, &e, ldb)
						if last && o.slowEpi {
							o.slowEpilogue(out, ldS, i0, jj, rows, cols)
						}
						continue
					}
					if (rows == mr || rows == 4 && o.g.kernel == AVX512) && direct {
						out := c.Data[c.at(i0, jj):]
						o.g.tileRows(rows, kb, pa, pbt, out, c.Ld, &e, ldb)
						if last && o.slowEpi {
							o.slowEpilogue(out, c.Ld, i0, jj, rows, cols)
						}
						continue
					}
					if e.flags&flagAcc != 0 {
						o.edge(tmp, i0, jj, rows, cols, false)
					}
					o.g.tileRows(rows, kb, pa, pbt, tmp, nr, &e, ldb)
					if last && o.slowEpi {
						o.slowEpilogue(tmp, nr, i0, jj, rows, cols)
					}
					o.edge(tmp, i0, jj, rows, cols, true)
				}
			}
		}
	}
	if stage {
		for st := s0; st < s1; st++ {
			i0 := st * mr
			for r := range min(mr, m-i0) {
				row := stg[((st-s0)*mr+r)*ldS:][:j1-j0]
				for j := 0; j < j1-j0; {
					w := min(c.run(j0+j, n), j1-j0-j)
					copy(c.Data[c.at(i0+r, j0+j):][:w], row[j:j+w])
					j += w
				}
			}
		}
	}
}

// edge copies the rows by cols tile of C at (i0, jj) into tmp (rows nr
// apart), or back from tmp when back is set.
func (o *Op) edge(tmp []float32, i0, jj, rows, cols int, back bool) {
	c := &o.p.C
	for r := range rows {
		t := tmp[r*nr : r*nr+cols]
		for j := 0; j < cols; {
			w := min(c.run(jj+j, o.p.N), cols-j)
			cr := c.Data[c.at(i0+r, jj+j):][:w]
			if back {
				copy(cr, t[j:j+w])
			} else {
				copy(t[j:j+w], cr)
			}
			j += w
		}
	}
}

// slowEpilogue applies the epilogue in Go to the rows by cols tile at c
// (rows ldc apart) whose first element is C[i0, j0].
func (o *Op) slowEpilogue(c []float32, ldc, i0, j0, rows, cols int) {
	if o.epi.flags&flagEpi == 0 {
		return
	}
	for r := range rows {
		o.epilogueRow(c[r*ldc:r*ldc+cols], i0+r, j0)
	}
}

// epilogueRow applies the epilogue's steps to row, the elements of C from
// (i, j0) on.
func (o *Op) epilogueRow(row []float32, i, j0 int) {
	e := &o.epi
	var bias float32
	if e.flags&flagBias != 0 {
		bias = o.p.Epi.Bias[i]
	}
	for j, v := range row {
		if e.flags&flagBias != 0 {
			v += bias
		}
		if e.flags&flagColBias != 0 {
			v += o.p.Epi.ColBias[j0+j]
		}
		if e.flags&flagRelu != 0 && !(v > 0 || v != v) {
			v = 0
		}
		if e.flags&flagMax != 0 && !(v >= e.lo || v != v) {
			v = e.lo
		}
		if e.flags&flagMin != 0 && !(v <= e.hi || v != v) {
			v = e.hi
		}
		row[j] = v
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

// tilePortable is the portable micro-kernel: C[mr, nr] (rows ldc apart) =
// the packed strip a times the packed strip b, each element summed over k
// in order with separately rounded products and sums, from zero or (acc)
// from C. It works on blocks of 4 by 4 elements held in locals.
func tilePortable(k int, a, b, c []float32, ldc int, e *tileEpi, ldb int) {
	a, b = a[:k*mr], b[:(k-1)*ldb+nr]
	acc := e.flags&flagAcc != 0
	for i := 0; i < mr; i += 4 {
		for j := 0; j < nr; j += 4 {
			var c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23, c30, c31, c32, c33 float32
			if acc {
				r0, r1, r2, r3 := c[i*ldc+j:][:4], c[(i+1)*ldc+j:][:4], c[(i+2)*ldc+j:][:4], c[(i+3)*ldc+j:][:4]
				c00, c01, c02, c03 = r0[0], r0[1], r0[2], r0[3]
				c10, c11, c12, c13 = r1[0], r1[1], r1[2], r1[3]
				c20, c21, c22, c23 = r2[0], r2[1], r2[2], r2[3]
				c30, c31, c32, c33 = r3[0], r3[1], r3[2], r3[3]
			}
			for kk := 0; kk < k; kk++ {
				av := (*[4]float32)(a[kk*mr+i:])
				bv := (*[4]float32)(b[kk*ldb+j:])
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
			*(*[4]float32)(c[i*ldc+j:]) = [4]float32{c00, c01, c02, c03}
			*(*[4]float32)(c[(i+1)*ldc+j:]) = [4]float32{c10, c11, c12, c13}
			*(*[4]float32)(c[(i+2)*ldc+j:]) = [4]float32{c20, c21, c22, c23}
			*(*[4]float32)(c[(i+3)*ldc+j:]) = [4]float32{c30, c31, c32, c33}
		}
	}
}
