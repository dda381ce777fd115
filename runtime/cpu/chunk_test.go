package cpu

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"multigpu/graph"
	"multigpu/runtime/backend"
	"multigpu/runtime/cpu/par"
	"multigpu/runtime/host"
)

// chunkNet is a program whose prefix (convolutions, a residual add, a
// clamp, pooling) runs in chunks and whose rest (a flatten and a matmul)
// on the whole batch; the prefix's %r2 is both read by the rest and
// returned.
func chunkNet(b int) string {
	return fmt.Sprintf(`graph p {
  input %%x: f32[N=%d,4,12,12]
  input %%w1: f32[8,4,3,3]
  input %%b1: f32[8]
  input %%w2: f32[8,1,3,3]
  input %%w3: f32[8,8,1,1]
  input %%lo: f32[]
  input %%hi: f32[]
  input %%fw: f32[288,5]
  %%c1 = conv2d %%x, %%w1, %%b1 {pad=[1,1]}
  %%r1 = relu %%c1
  %%c2 = conv2d %%r1, %%w2 {groups=8, pad=[1,1]}
  %%m2 = maximum %%c2, %%lo
  %%n2 = minimum %%m2, %%hi
  %%c3 = conv2d %%n2, %%w3
  %%s = add %%c3, %%r1
  %%r2 = relu %%s
  %%p = maxpool2d %%r2 {kernel=[2,2], stride=[2,2]}
  %%f = flatten %%p
  %%y = matmul %%f, %%fw
  output %%y, %%r2
}
`, b)
}

// A program run a chunk of samples at a time through its prefix gives
// the bits of the program run whole, for every chunk size (with a
// smaller last chunk), at 1 and 2 threads, run after run.
func TestChunkedMatchesWhole(t *testing.T) {
	const batch = 5
	r := rand.New(rand.NewPCG(11, 12))
	for _, threads := range []int{1, 2} {
		d := NewShared(graph.HostCPU, par.New(threads))
		p := program(t, chunkNet(batch))
		whole, err := d.compile(p)
		if err != nil {
			t.Fatal(err)
		}
		ins := []backend.Buffer{randBuffer(d, r, batch, 4, 12, 12), randBuffer(d, r, 8, 4, 3, 3), randBuffer(d, r, 8),
			randBuffer(d, r, 8, 1, 3, 3), randBuffer(d, r, 8, 8, 1, 1), randBuffer(d, r), randBuffer(d, r), randBuffer(d, r, 288, 5)}
		ins[5].(*Buffer).data = []float32{-0.5}
		ins[6].(*Buffer).data = []float32{3}
		want, err := whole.Run(context.Background(), ins, backend.RunOptions{})
		if err != nil {
			t.Fatal(err)
		}
		plan, ok := planChunksAt(p, 1<<10, 0, 1)
		if !ok || plan.steps != 9 {
			t.Fatalf("planChunks = %+v, %v; want the 9 steps before the flatten in chunks", plan, ok)
		}
		for _, chunk := range []int{1, 2, 4} {
			plan.chunk = chunk
			c, err := d.compileChunks(p, plan)
			if err != nil {
				t.Fatal(err)
			}
			for run := range 2 {
				got, err := c.Run(context.Background(), ins, backend.RunOptions{})
				if err != nil {
					t.Fatal(err)
				}
				for k := range want {
					w, g := want[k].(*Buffer).data.([]float32), got[k].(*Buffer).data.([]float32)
					if len(w) != len(g) {
						t.Fatalf("output %d: %d elements, want %d", k, len(g), len(w))
					}
					for i := range w {
						if math.Float32bits(w[i]) != math.Float32bits(g[i]) {
							t.Fatalf("%d threads, chunks of %d, run %d: output %d element %d = %v, want %v",
								threads, chunk, run, k, i, g[i], w[i])
						}
					}
				}
			}
		}
	}
}

// Small programs, programs with a hook per node, and programs whose
// first step is not batch-parallel run whole.
func TestPlanChunksDeclines(t *testing.T) {
	p := program(t, chunkNet(5))
	if plan, ok := planChunks(p, chunkBudget); ok {
		t.Errorf("a program of a few KB per step is chunked: %+v", plan)
	}
	p.BeforeNode = func(context.Context, graph.Device, *graph.Node) error { return nil }
	if plan, ok := planChunksAt(p, 1<<10, 0, 1); ok {
		t.Errorf("a program with a hook per node is chunked: %+v", plan)
	}
	one := program(t, chunkNet(1))
	if plan, ok := planChunksAt(one, 1<<10, 0, 1); ok {
		t.Errorf("a batch of one is chunked: %+v", plan)
	}
}

// The convolutional models of testdata, at batch 7, give the same bits
// with their prefix run a sample (or three) at a time as run whole.
func TestChunkedTestdataModels(t *testing.T) {
	d := NewShared(graph.HostCPU, par.New(2))
	r := rand.New(rand.NewPCG(13, 14))
	chunkedModels := 0
	for _, name := range []string{"cnn", "residual", "grouped_conv", "batchnorm_infer", "cnn_classifier", "bn_classifier"} {
		src, err := os.ReadFile("../../testdata/" + name + ".graph")
		if err != nil {
			t.Fatal(err)
		}
		text := strings.NewReplacer("[N,", "[N=7,", "[N]", "[N=7]").Replace(string(src))
		p := program(t, text)
		plan, ok := planChunksAt(p, 1<<10, 0, 1)
		if !ok {
			continue
		}
		chunkedModels++
		whole, err := d.compile(p)
		if err != nil {
			t.Fatal(err)
		}
		var ins []backend.Buffer
		for _, in := range p.Inputs {
			shape := mustShape(t, in.Type)
			switch in.Type.DType {
			case graph.F32:
				ins = append(ins, randBuffer(d, r, shape...))
			default:
				b, err := d.Upload(host.New(shape, host.MakeSlice(in.Type.DType, numel(shape))))
				if err != nil {
					t.Fatal(err)
				}
				ins = append(ins, b)
			}
		}
		want, err := whole.Run(context.Background(), ins, backend.RunOptions{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, chunk := range []int{1, 3} {
			plan.chunk = chunk
			c, err := d.compileChunks(p, plan)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			got, err := c.Run(context.Background(), ins, backend.RunOptions{})
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			for k := range want {
				if w, g := fmt.Sprint(want[k].(*Buffer).data), fmt.Sprint(got[k].(*Buffer).data); w != g {
					t.Errorf("%s, %d steps in chunks of %d: output %d differs from the whole batch's", name, plan.steps, chunk, k)
				}
			}
		}
	}
	if chunkedModels < 4 {
		t.Errorf("only %d models have a prefix to chunk", chunkedModels)
	}
}

// After its first run, a chunked program allocates little per run: its
// chunks' results go straight into the whole batch's buffers.
func TestChunkedAllocations(t *testing.T) {
	const batch = 8
	r := rand.New(rand.NewPCG(15, 16))
	d := NewShared(graph.HostCPU, par.New(2))
	p := program(t, chunkNet(batch))
	plan, ok := planChunksAt(p, 1<<10, 0, 1)
	if !ok {
		t.Fatal("chunkNet is not chunked")
	}
	c, err := d.compileChunks(p, plan)
	if err != nil {
		t.Fatal(err)
	}
	ins := []backend.Buffer{randBuffer(d, r, batch, 4, 12, 12), randBuffer(d, r, 8, 4, 3, 3), randBuffer(d, r, 8),
		randBuffer(d, r, 8, 1, 3, 3), randBuffer(d, r, 8, 8, 1, 1), randBuffer(d, r), randBuffer(d, r), randBuffer(d, r, 288, 5)}
	run := func() {
		if _, err := c.Run(context.Background(), ins, backend.RunOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	run()
	// Per run: the returned buffers; per chunk of one sample, the
	// prefix's list of results and their Buffers.
	if a := testing.AllocsPerRun(10, run); a > 40 {
		t.Errorf("%v allocations per run of %d chunks, want at most 40", a, batch)
	}
}
