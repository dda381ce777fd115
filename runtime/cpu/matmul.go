package cpu

import (
	"fmt"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"

	"multigpu/graph"
	"multigpu/runtime/cpu/gemm"
	"multigpu/runtime/cpu/par"
)

// matmulKernel multiplies a[...,M,K] by b[K,P] (one product of the
// flattened a) or by b[...,K,P] (one product per leading index). In f32 it
// runs on the backend's gemm, in f64 on gonum's: either way each result
// element sums its products in order of k, whatever M is, so a share of
// the batch gives the same bits as the whole.
func matmulKernel(s *spec) (kernelFn, error) {
	a, b := s.in[0], s.in[1]
	if s.fuse != nil && s.fuse.transB {
		b = []int{b[1], b[0]} // operand 1 is B's transpose
	}
	r := len(a)
	m, k, p := a[r-2], a[r-1], b[len(b)-1]
	batch := 1
	for _, d := range a[:r-2] {
		batch *= d
	}
	if len(b) == 2 {
		// Fold the leading axes into M.
		m *= batch
		batch = 1
	}
	bStep := 0
	if len(b) > 2 {
		bStep = k * p
	}
	s.arena = true
	switch s.dt {
	case graph.F32:
		return matmulF32(s, m, k, p, batch, bStep), nil
	case graph.F64:
		return func(ins []any, rs *runState) (any, error) {
			x, w := ins[0].([]float64), ins[1].([]float64)
			out := newZeroed[float64](rs, batch*m*p)
			for i := 0; i < batch; i++ {
				if m == 0 || p == 0 {
					break
				}
				gonum.Implementation{}.Dgemm(blas.NoTrans, blas.NoTrans, m, p, k, 1,
					x[i*m*k:], max(k, 1), w[i*bStep:], max(p, 1), 0, out[i*m*p:], max(p, 1))
			}
			return ret(rs, out), nil
		}, nil
	}
	return nil, fmt.Errorf("no cpu kernel for matmul on %s", s.dt)
}

// matmulF32 is the f32 matmul on the backend's gemm. A B that is a program
// input (a param, a resident copy of one), or the transpose of one that
// Compile folded in (fusion.transB: torch's Linear, x times W
// transposed), is packed once and kept while the run's input is the same
// buffer; other Bs are packed block by block as the product goes. The
// elementwise ops Compile folded in (a bias per column, relu, a clamp)
// run as the product's epilogue. Products of at most 16 columns of a B
// that is neither a param nor fused with anything (attention's) run by
// gemm.SmallRun, with the same bits.
func matmulF32(s *spec, m, k, p, batch, bStep int) kernelFn {
	f := s.fuse
	if f == nil {
		f = &fusion{bias: -1, lo: -1, hi: -1}
	}
	in1 := s.inputs[1]
	cached := bStep == 0 && in1 >= 0
	s.scratch = []int64{int64(gemm.PackSize(m, k))}
	t := &matmulTask{}
	return func(ins []any, rs *runState) (any, error) {
		x, w := ins[0].([]float32), ins[1].([]float32)
		out := newOut[float32](rs, batch*m*p)
		if m == 0 || p == 0 {
			return ret(rs, out), nil
		}
		if !cached && !f.transB && f.bias < 0 && !f.relu && f.lo < 0 && f.hi < 0 && m*k*p <= smallWork && rs.gemm.SmallOK(p) {
			// Small products of a B that is not a param (attention's):
			// unpacked, with the gemm's bits, a range of them per piece.
			sm := &t.small
			sm.m, sm.k, sm.p, sm.bStep, sm.x, sm.w, sm.out = m, k, p, bStep, x, w, out
			sm.pieces = rs.chunks(batch*m*k*p, smallWork)
			sm.batch = batch
			rs.threads().Run(&sm.job, sm.pieces, sm)
			sm.x, sm.w, sm.out = nil, nil, nil
			return ret(rs, out), nil
		}
		if t.op == nil {
			t.op = rs.gemm.NewOp()
		}
		pr := &t.prod
		*pr = gemm.Product{M: m, N: p, K: k, Lda: k, Scratch: scratchF32(rs, 0, gemm.PackSize(m, k))}
		if err := setEpilogue(&pr.Epi, f, ins); err != nil {
			return nil, err
		}
		if cached {
			src := rs.input(in1)
			packed, fresh := t.cache.get(src, gemm.PackBSize(k, p))
			if fresh {
				if f.transB {
					t.trans = gemm.Trans{Data: w, Ld: k}
					gemm.PackB(packed, k, p, &t.trans)
				} else {
					t.cols = gemm.Matrix(w, p)
					gemm.PackB(packed, k, p, &t.cols)
				}
				t.cache.keep(src)
			}
			pr.PackedB = packed
		}
		packed := pr.Scratch
		for i := 0; i < batch; i++ {
			pr.A = x[i*m*k:]
			// A packed here, by PackAFast, rather than by Compute.
			gemm.PackAFast(packed, m, k, pr.A, k)
			pr.PackedA = packed
			if !cached {
				t.cols = gemm.Matrix(w[i*bStep:], p)
				pr.B = &t.cols
			}
			pr.C = gemm.Matrix(out[i*m*p:], p)
			t.op.Compute(pr)
		}
		*pr = gemm.Product{}
		t.cols, t.trans = gemm.Cols{}, gemm.Trans{}
		return ret(rs, out), nil
	}
}

// smallWork is the most multiply-adds of a product gemm.SmallRun takes
// (it runs on one thread), and the least of a piece of its products.
const smallWork = 1 << 16

// smallTask runs a matmul's products by gemm.SmallRun, a range of them
// per piece.
type smallTask struct {
	m, k, p, bStep int
	batch, pieces  int
	x, w, out      []float32
	job            par.Job
}

// Do runs the products of piece i.
func (t *smallTask) Do(i int, _ *par.Scratch) {
	per := (t.batch + t.pieces - 1) / t.pieces
	m, k, p := t.m, t.k, t.p
	for b := i * per; b < min(t.batch, (i+1)*per); b++ {
		gemm.SmallRun(m, p, k, t.x[b*m*k:], k, t.w[b*t.bStep:], p, t.out[b*m*p:], p)
	}
}

// matmulTask is the state of one f32 matmul kernel.
type matmulTask struct {
	small smallTask
	op    *gemm.Op
	prod  gemm.Product
	cols  gemm.Cols
	trans gemm.Trans
	cache packCache
}

// setEpilogue sets e from the fusion f of a product's kernel and its
// operands: the bias (per row of a convolution's result, per column of a
// matmul's: the caller moves it), relu, and the clamp's scalars.
func setEpilogue(e *gemm.Epilogue, f *fusion, ins []any) error {
	*e = gemm.Epilogue{Relu: f.relu}
	if f.bias >= 0 {
		e.ColBias = ins[f.bias].([]float32)
	}
	if f.lo >= 0 {
		e.Max, e.Lo = true, ins[f.lo].([]float32)[0]
	}
	if f.hi >= 0 {
		e.Min, e.Hi = true, ins[f.hi].([]float32)[0]
	}
	return nil
}

// packCache is an operand packed once for the buffer it came from: a
// param's packed form, kept across runs while the program's input is the
// same buffer. It holds that buffer, so that no other buffer can take its
// place in memory while the cache would take it for the same one.
type packCache struct {
	src  *Buffer
	data []float32
}

// get returns the cache's n float32s and whether they must be packed
// (again): when src is not the buffer packed last, or is nil. Once they
// are, keep(src) marks them as src's.
func (c *packCache) get(src *Buffer, n int) ([]float32, bool) {
	if src != nil && c.src == src && len(c.data) == n {
		return c.data, false
	}
	if len(c.data) != n {
		c.data = make([]float32, n)
	}
	c.src = nil
	return c.data, true
}

// keep records that the cache holds src packed.
func (c *packCache) keep(src *Buffer) { c.src = src }
