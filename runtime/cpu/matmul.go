package cpu

import (
	"fmt"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"

	"multigpu/graph"
	"multigpu/runtime/cpu/gemm"
)

// matmulKernel multiplies a[...,M,K] by b[K,P] (one product of the
// flattened a) or by b[...,K,P] (one product per leading index). In f32 it
// runs on the backend's gemm, in f64 on gonum's: either way each result
// element sums its products in order of k, whatever M is, so a share of
// the batch gives the same bits as the whole.
func matmulKernel(s *spec) (kernelFn, error) {
	a, b := s.in[0], s.in[1]
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
		s.scratch = []int64{int64(gemm.PackSize(m, k))}
		var op *gemm.Op
		return func(ins []any, rs *runState) (any, error) {
			x, w := ins[0].([]float32), ins[1].([]float32)
			out := newOut[float32](rs, batch*m*p)
			if op == nil {
				op = rs.gemm.NewOp()
			}
			packed := scratchF32(rs, 0, gemm.PackSize(m, k))
			for i := 0; i < batch; i++ {
				if m == 0 || p == 0 {
					break
				}
				op.Run(m, p, k, x[i*m*k:], k, gemm.Matrix(w[i*bStep:], p), gemm.Matrix(out[i*m*p:], p), packed)
			}
			return ret(rs, out), nil
		}, nil
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
