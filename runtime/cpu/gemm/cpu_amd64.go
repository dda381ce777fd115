package gemm

// tile12x32 is the AVX-512 micro-kernel: the 12 by 32 tile at c (rows ldc
// float32s apart) = packed strips a (12 per k) times b (32 per k), each
// element a chain of VFMADD231PS over k from zero (or from C, e.flags &
// flagAcc), then e's epilogue.
//
//go:noescape
func tile12x32(k int, a, b, c *float32, ldc int, e *tileEpi, ldb int)

// tile4x32 is tile12x32 on the first 4 rows of the strip (the last strip
// of an A whose rows are 4 past a multiple of 12: 64 filters, 16).
//
//go:noescape
func tile4x32(k int, a, b, c *float32, ldc int, e *tileEpi, ldb int)

// tile12x32avx2 is the AVX2 micro-kernel: tile12x32 in four blocks of 6
// by 16, each element a chain of VFMADD231PS over k from zero (or from C);
// no epilogue.
//
//go:noescape
func tile12x32avx2(k int, a, b, c *float32, ldc int, e *tileEpi, ldb int)

// packRowsAVX512 is PackRows' loop: masked loads and stores per run.
//
//go:noescape
func packRowsAVX512(dst, src *float32, ld, rows int, segs *segMask, nseg, mode int)

// packRowsAtAVX512 is PackRowsAt's loop; mode 1: whole loads, 2: a whole
// store of a row's run at lane 0.
//
//go:noescape
func packRowsAtAVX512(dst, src *float32, offs *int, rows int, segs *segMask, nseg, mode int)

func tileAVX2(k int, a, b, c []float32, ldc int, e *tileEpi, ldb int) {
	_ = a[k*mr-1]
	_ = b[(k-1)*ldb+nr-1]
	_ = c[(mr-1)*ldc+nr-1]
	tile12x32avx2(k, &a[0], &b[0], &c[0], ldc, e, ldb)
}

func tileAVX512(k int, a, b, c []float32, ldc int, e *tileEpi, ldb int) {
	_ = a[k*mr-1]
	_ = b[(k-1)*ldb+nr-1]
	_ = c[(mr-1)*ldc+nr-1]
	tile12x32(k, &a[0], &b[0], &c[0], ldc, e, ldb)
}

func tile4AVX512(k int, a, b, c []float32, ldc int, e *tileEpi, ldb int) {
	_ = a[k*mr-1]
	_ = b[(k-1)*ldb+nr-1]
	_ = c[3*ldc+nr-1]
	tile4x32(k, &a[0], &b[0], &c[0], ldc, e, ldb)
}
