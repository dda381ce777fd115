package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"multigpu/graph"
	"multigpu/runtime/cpu/par"
	"multigpu/runtime/host"
)

// bertLayer is one BERT encoder layer as the ONNX importer gives it (at
// hidden 32, 2 heads of 16, sequence 20, intermediate 64), at batch b:
// the linear layers on [B*S, H], heads split by reshape and transpose, the
// scaled scores plus the attention mask, softmax over the last axis, the
// layernorm chain and erf's GELU: every kernel of the transformer path.
// The batch is the symbol N bound to b, so that the layernorm's means,
// which keep it, take vec.SumRow's order.
func bertLayer(b int) string {
	return strings.ReplaceAll(`graph p {
  input %x: f32[N=B,20,32]
  input %mask: f32[N=B,1,1,20]
  input %wq: f32[32,32]
  input %bq: f32[32]
  input %wk: f32[32,32]
  input %wv: f32[32,32]
  input %wi: f32[32,64]
  input %wo: f32[64,32]
  input %g: f32[32]
  input %beta: f32[32]
  input %scale: f32[]
  input %two: f32[]
  input %eps: f32[]
  input %r2: f32[]
  input %half: f32[]
  input %one: f32[]
  %q0 = matmul %x, %wq
  %q = add %q0, %bq
  %k = matmul %x, %wk
  %v = matmul %x, %wv
  %qh = reshape %q {shape=[N,20,2,16]}
  %kh = reshape %k {shape=[N,20,2,16]}
  %vh = reshape %v {shape=[N,20,2,16]}
  %qt = transpose %qh {perm=[0,2,1,3]}
  %kt = transpose %kh {perm=[0,2,3,1]}
  %vt = transpose %vh {perm=[0,2,1,3]}
  %s0 = matmul %qt, %kt
  %s1 = div %s0, %scale
  %s = add %s1, %mask
  %p = softmax %s {axis=3}
  %o = matmul %p, %vt
  %ot = transpose %o {perm=[0,2,1,3]}
  %c = reshape %ot {shape=[N,20,32]}
  %h = add %c, %x
  %mu = mean %h {axes=[2], keepdims=true}
  %d = sub %h, %mu
  %d2 = pow %d, %two
  %var = mean %d2 {axes=[2], keepdims=true}
  %ve = add %var, %eps
  %sd = sqrt %ve
  %n = div %d, %sd
  %ng = mul %n, %g
  %ln = add %ng, %beta
  %i = matmul %ln, %wi
  %e0 = div %i, %r2
  %e1 = erf %e0
  %e2 = add %e1, %one
  %e3 = mul %i, %e2
  %e4 = mul %e3, %half
  %y = matmul %e4, %wo
  output %y
}
`, "B", fmt.Sprint(b))
}

func bertInputs(d *Device, r *rand.Rand, b int) map[string]*Buffer {
	scalar := func(v float32) *Buffer {
		buf, _ := d.Upload(host.New([]int{}, []float32{v}))
		return buf.(*Buffer)
	}
	mask := make([]float32, b*20)
	for s := range b {
		keep := 1 + r.IntN(20)
		for j := keep; j < 20; j++ {
			mask[s*20+j] = -10000
		}
	}
	mb, _ := d.Upload(host.New([]int{b, 1, 1, 20}, mask))
	in := map[string]*Buffer{
		"x": randBuffer(d, r, b, 20, 32), "mask": mb.(*Buffer),
		"wq": randBuffer(d, r, 32, 32), "bq": randBuffer(d, r, 32), "wk": randBuffer(d, r, 32, 32),
		"wv": randBuffer(d, r, 32, 32), "wi": randBuffer(d, r, 32, 64), "wo": randBuffer(d, r, 64, 32),
		"g": randBuffer(d, r, 32), "beta": randBuffer(d, r, 32),
		"scale": scalar(4), "two": scalar(2), "eps": scalar(1e-12), "r2": scalar(float32(math.Sqrt2)),
		"half": scalar(0.5), "one": scalar(1),
	}
	return in
}

// The exactness rule on the transformer path: a sample's result is bit
// for bit the same in a batch of any size and at any thread count.
func TestBertSamplesIndependentOfBatch(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	const big = 9
	ref := New(graph.HostCPU)
	in := bertInputs(ref, r, big)
	want := runProgram(t, NewShared(graph.HostCPU, par.New(1)), bertLayer(big), in)
	per := len(want) / big
	x, mask := in["x"].data.([]float32), in["mask"].data.([]float32)
	for _, threads := range []int{1, 2, 3} {
		d := NewShared(graph.HostCPU, par.New(threads))
		for _, part := range [][2]int{{0, 1}, {2, 5}, {0, 9}} {
			lo, hi := part[0], part[1]
			sub := map[string]*Buffer{}
			for k, v := range in {
				sub[k] = v
			}
			xb, _ := d.Upload(host.New([]int{hi - lo, 20, 32}, x[lo*640:hi*640]))
			mb, _ := d.Upload(host.New([]int{hi - lo, 1, 1, 20}, mask[lo*20:hi*20]))
			sub["x"], sub["mask"] = xb.(*Buffer), mb.(*Buffer)
			got := runProgram(t, d, bertLayer(hi-lo), sub)
			for i := range got {
				if math.Float32bits(got[i]) != math.Float32bits(want[lo*per+i]) {
					t.Fatalf("%d threads, samples %d to %d: element %d is %g in the share, %g in the whole batch",
						threads, lo, hi, i, got[i], want[lo*per+i])
				}
			}
		}
	}
}

// The transformer path allocates next to nothing per run after the first.
func TestBertAllocations(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 24))
	d := NewShared(graph.HostCPU, par.New(2))
	if _, a := allocsPerRun(t, d, bertLayer(4), bertInputs(d, r, 4)); a > 8 {
		t.Errorf("%v allocations per run after the first, want at most 8", a)
	}
}
