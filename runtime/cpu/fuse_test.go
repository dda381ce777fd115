package cpu

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"multigpu/graph"
	"multigpu/runtime/backend"
	"multigpu/runtime/cpu/par"
)

// fusedNet has every chain Compile folds into a product's epilogue: a
// convolution's bias added after, relu, a clamp (maximum then minimum
// with scalars), a linear layer as matmul(x, transpose(W)) with a bias
// per column, and chains that must not fold (a value read twice, a clamp
// with the scalar first, a bias along the wrong axis).
const fusedNet = `graph p {
  input %x: f32[3,4,9,9]
  input %w1: f32[8,4,3,3]
  input %cb: f32[1,8,1,1]
  input %w2: f32[8,1,3,3]
  input %b2: f32[8]
  input %lo: f32[]
  input %hi: f32[]
  input %w3: f32[6,8,1,1]
  input %w5: f32[6,6,1,1]
  input %wl: f32[5,486]
  input %bl: f32[5]
  input %bw: f32[9]
  %c1 = conv2d %x, %w1 {pad=[1,1]}
  %a1 = add %cb, %c1
  %r1 = relu %a1
  %c2 = conv2d %r1, %w2, %b2 {groups=8, pad=[1,1]}
  %m2 = maximum %c2, %lo
  %n2 = minimum %m2, %hi
  %c3 = conv2d %n2, %w3
  %r3 = relu %c3
  %s3 = add %r3, %c3
  %c4 = conv2d %s3, %w5 {stride=[2,2]}
  %m4 = maximum %lo, %c4
  %c5 = conv2d %s3, %w5
  %a5 = add %c5, %bw
  %f = flatten %s3
  %wt = transpose %wl {perm=[1,0]}
  %l = matmul %f, %wt
  %lb = add %l, %bl
  %y = relu %lb
  output %y, %m4, %a5
}
`

// Folding gives the bits of the ops run one by one (a BeforeNode hook
// turns folding off), at 1 and 2 threads, and what was folded is what
// fusePlan says.
func TestFusedBitsOfSeparateOps(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	ref := New(graph.HostCPU)
	p := program(t, fusedNet)
	in := map[string]*Buffer{}
	for _, n := range p.Inputs {
		shape := mustShape(t, n.Type)
		in[n.Name] = randBuffer(ref, r, shape...)
	}
	in["lo"].data.([]float32)[0] = -0.1
	in["hi"].data.([]float32)[0] = 0.4
	fuse, _, alias, dead := fusePlan(p)
	var folded []string
	for i, n := range p.Nodes {
		if alias[i] >= 0 || dead[i] {
			folded = append(folded, n.Name)
		}
		if fuse[i] != nil && n.Name == "l" && !fuse[i].transB {
			t.Errorf("the linear layer's transpose is not folded")
		}
	}
	want := []string{"a1", "r1", "m2", "n2", "wt", "lb", "y"}
	if len(folded) != len(want) {
		t.Fatalf("folded %v, want %v", folded, want)
	}
	for i := range want {
		if folded[i] != want[i] {
			t.Fatalf("folded %v, want %v", folded, want)
		}
	}
	run := func(threads int, hook bool) [][]float32 {
		pp := program(t, fusedNet)
		if hook {
			pp.BeforeNode = func(context.Context, graph.Device, *graph.Node) error { return nil }
		}
		exe, err := NewShared(graph.HostCPU, par.New(threads)).Compile(pp)
		if err != nil {
			t.Fatal(err)
		}
		var ins []backend.Buffer
		for _, n := range pp.Inputs {
			ins = append(ins, in[n.Name])
		}
		var res [][]float32
		for range 2 {
			outs, err := exe.Run(context.Background(), ins, backend.RunOptions{})
			if err != nil {
				t.Fatal(err)
			}
			res = res[:0]
			for _, o := range outs {
				res = append(res, o.(*Buffer).data.([]float32))
			}
		}
		return res
	}
	base := run(1, true)
	for _, threads := range []int{1, 2} {
		got := run(threads, false)
		for o := range base {
			for i := range base[o] {
				if math.Float32bits(got[o][i]) != math.Float32bits(base[o][i]) {
					t.Fatalf("%d threads: output %d element %d = %g, unfolded %g", threads, o, i, got[o][i], base[o][i])
				}
			}
		}
	}
}

// Weights packed once are packed again when the program's input is
// another buffer (a new param after SetParams, or one an optimizer step
// assigned), and not while it is the same.
func TestPackedWeightsFollowTheBuffer(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 24))
	d := NewShared(graph.HostCPU, par.New(2))
	src := `graph p {
  input %x: f32[2,4,6,6]
  input %w: f32[5,4,3,3]
  input %m: f32[7,3]
  input %v: f32[2,7]
  %c = conv2d %x, %w {pad=[1,1]}
  %y = matmul %v, %m
  output %c, %y
}
`
	p := program(t, src)
	exe, err := d.Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	x, v := randBuffer(d, r, 2, 4, 6, 6), randBuffer(d, r, 2, 7)
	for round := range 3 {
		w, m := randBuffer(d, r, 5, 4, 3, 3), randBuffer(d, r, 7, 3)
		// A fresh program computes the reference for these weights.
		fresh, err := d.Compile(program(t, src))
		if err != nil {
			t.Fatal(err)
		}
		ins := []backend.Buffer{x, w, m, v}
		want, err := fresh.Run(context.Background(), ins, backend.RunOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			got, err := exe.Run(context.Background(), ins, backend.RunOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for o := range got {
				g, wd := got[o].(*Buffer).data.([]float32), want[o].(*Buffer).data.([]float32)
				for i := range g {
					if math.Float32bits(g[i]) != math.Float32bits(wd[i]) {
						t.Fatalf("round %d: output %d element %d = %g, want %g", round, o, i, g[i], wd[i])
					}
				}
			}
		}
	}
}
