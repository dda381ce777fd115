package onnx

import (
	"fmt"
	"slices"

	"multigpu/graph"
)

// transpose2 transposes a matrix.
func transpose2(c *nodeCtx, x *graph.Node) (*graph.Node, error) {
	return c.op1("transpose", x, graph.Attrs{{Name: "perm", Value: graph.Ints(1, 0)}})
}

// convertGemm maps Gemm to alpha * (A' B') + beta * C with transposes,
// matmul, mul and add.
func convertGemm(c *nodeCtx) error {
	a, err := c.in(0)
	if err != nil {
		return err
	}
	b, err := c.in(1)
	if err != nil {
		return err
	}
	if a.Type.Rank() != 2 || b.Type.Rank() != 2 {
		return fmt.Errorf("expected 2-D A and B, found %s and %s", a.Type, b.Type)
	}
	alpha, err := c.float("alpha", 1)
	if err != nil {
		return err
	}
	beta, err := c.float("beta", 1)
	if err != nil {
		return err
	}
	ta, err := c.flag("transA", false)
	if err != nil {
		return err
	}
	tb, err := c.flag("transB", false)
	if err != nil {
		return err
	}
	if _, err := c.flag("broadcast", false); err != nil {
		return err
	}
	if ta {
		if a, err = transpose2(c, a); err != nil {
			return err
		}
	}
	if tb {
		if b, err = transpose2(c, b); err != nil {
			return err
		}
	}
	y, err := c.op("matmul", []*graph.Node{a, b}, nil)
	if err != nil {
		return err
	}
	dt := y.Type.DType
	if alpha != 1 {
		k, err := c.scalar("alpha", dt, alpha)
		if err != nil {
			return err
		}
		if y, err = c.op("mul", []*graph.Node{y, k}, nil); err != nil {
			return err
		}
	}
	if c.hasIn(2) && beta != 0 {
		cc, err := c.in(2)
		if err != nil {
			return err
		}
		if beta != 1 {
			k, err := c.scalar("beta", dt, beta)
			if err != nil {
				return err
			}
			if cc, err = c.op("mul", []*graph.Node{cc, k}, nil); err != nil {
				return err
			}
		}
		sum, err := c.op("add", []*graph.Node{y, cc}, nil)
		if err != nil {
			return err
		}
		if !sum.Type.Equal(y.Type) {
			return fmt.Errorf("C %s does not broadcast to A*B %s", cc.Type, y.Type)
		}
		y = sum
	} else if !c.hasIn(2) && c.opset() < 11 {
		return fmt.Errorf("missing input 2 (C), required before opset 11")
	}
	return c.set(0, y)
}

// convertMatMul maps MatMul (numpy's matmul) to the IR's matmul, which takes
// a[...,M,K] with b[K,P] or b[...,K,P] of a's rank: 1-D operands are
// reshaped to matrices and the result back, leading 1s of an operand are
// dropped, and a matrix times a stack of matrices is computed through
// transposes.
func convertMatMul(c *nodeCtx) error {
	a, err := c.in(0)
	if err != nil {
		return err
	}
	b, err := c.in(1)
	if err != nil {
		return err
	}
	if a.Type.Rank() == 0 || b.Type.Rank() == 0 {
		return fmt.Errorf("expected operands of rank 1 or more, found %s and %s", a.Type, b.Type)
	}
	if a.Type.Rank() == 1 && b.Type.Rank() == 1 {
		return fmt.Errorf("the dot product of two vectors is not supported")
	}
	aVec, bVec := a.Type.Rank() == 1, b.Type.Rank() == 1
	if aVec {
		if a, err = c.reshape(a, []graph.Dim{graph.Const(1), a.Type.Shape[0]}); err != nil {
			return err
		}
	}
	if bVec {
		if b, err = c.reshape(b, []graph.Dim{b.Type.Shape[0], graph.Const(1)}); err != nil {
			return err
		}
	}
	as, bs := a.Type.Shape, b.Type.Shape
	ra, rb := len(as), len(bs)
	aLead, bLead := as[:ra-2], bs[:rb-2]
	mp := []graph.Dim{as[ra-2], bs[rb-1]}
	var lead []graph.Dim // numpy's broadcast of the leading axes
	var y *graph.Node
	switch {
	case rb == 2 || ra == rb && sameDims(aLead, bLead):
		lead = aLead
		y, err = c.op("matmul", []*graph.Node{a, b}, nil)
	case allOnes(bLead):
		lead = aLead
		if rb > ra {
			lead = append(slices.Repeat([]graph.Dim{graph.Const(1)}, rb-ra), aLead...)
		}
		var b2 *graph.Node
		if b2, err = c.reshape(b, bs[rb-2:]); err == nil {
			y, err = c.op("matmul", []*graph.Node{a, b2}, nil)
		}
	case ra == 2 || allOnes(aLead) && ra <= rb:
		lead = bLead
		a2 := a
		if ra > 2 {
			a2, err = c.reshape(a, as[ra-2:])
		}
		if err == nil {
			y, err = matmulBatchedRight(c, a2, b)
		}
	default:
		return fmt.Errorf("matmul of %s and %s: broadcasting between stacks of matrices is not supported", a.Type, b.Type)
	}
	if err != nil {
		return err
	}
	out := slices.Clone(lead)
	if !aVec {
		out = append(out, mp[0])
	}
	if !bVec {
		out = append(out, mp[1])
	}
	if !sameDims(out, y.Type.Shape) {
		if y, err = c.reshape(y, out); err != nil {
			return err
		}
	}
	return c.set(0, y)
}

func allOnes(dims []graph.Dim) bool {
	for _, d := range dims {
		if d.Sym != "" || d.Size != 1 {
			return false
		}
	}
	return true
}

func sameDims(a, b []graph.Dim) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].Equal(b[i]) {
			return false
		}
	}
	return true
}

// matmulBatchedRight computes a[M,K] @ b[B1..Bn,K,P] as
// transpose(reshape(a @ reshape(transpose(b, K first), [K, B*P]))).
func matmulBatchedRight(c *nodeCtx, a, b *graph.Node) (*graph.Node, error) {
	rb := b.Type.Rank()
	lead := b.Type.Shape[:rb-2]
	perm := []int64{int64(rb - 2)}
	for i := range rb - 2 {
		perm = append(perm, int64(i))
	}
	perm = append(perm, int64(rb-1))
	bt, err := c.op1("transpose", b, graph.Attrs{{Name: "perm", Value: graph.Ints(perm...)}})
	if err != nil {
		return nil, err
	}
	// [K, B..., P] -> [K, -1]
	b2, err := c.op1("flatten", bt, graph.Attrs{{Name: "axis", Value: graph.Int(1)}})
	if err != nil {
		return nil, err
	}
	prod, err := c.op("matmul", []*graph.Node{a, b2}, nil)
	if err != nil {
		return nil, err
	}
	// [M, B*P] -> [M, B..., P] -> [B..., M, P]
	dims := append([]graph.Dim{a.Type.Shape[0]}, lead...)
	dims = append(dims, b.Type.Shape[rb-1])
	unf, err := c.reshape(prod, dims)
	if err != nil {
		return nil, err
	}
	back := make([]int64, 0, rb)
	for i := range rb - 2 {
		back = append(back, int64(i+1))
	}
	back = append(back, 0, int64(rb-1))
	return c.op1("transpose", unf, graph.Attrs{{Name: "perm", Value: graph.Ints(back...)}})
}
