package cpu

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"multigpu/graph"
	"multigpu/runtime/backend"
	"multigpu/runtime/cpu/par"
	"multigpu/runtime/host"
)

// convNet is a program exercising every path of the f32 convolution (1x1
// as one product, depthwise direct, im2col in chunks of samples, grouped)
// and the in-place elementwise ops, at batch b.
func convNet(b int) string {
	return strings.ReplaceAll(`graph p {
  input %x: f32[B,8,12,12]
  input %w1: f32[16,8,3,3]
  input %b1: f32[16]
  input %w2: f32[16,1,3,3]
  input %w3: f32[24,16,1,1]
  input %b3: f32[24]
  input %w4: f32[24,6,3,3]
  input %z: f32[]
  %c1 = conv2d %x, %w1, %b1 {pad=[1,1]}
  %r1 = relu %c1
  %c2 = conv2d %r1, %w2 {groups=16, stride=[2,2], pad=[1,1]}
  %m2 = maximum %c2, %z
  %c3 = conv2d %m2, %w3, %b3
  %c4 = conv2d %c3, %w4 {groups=4, pad=[1,0,1,2]}
  %s = add %c4, %c3
  %y = relu %s
  output %y
}
`, "B", fmt.Sprint(b))
}

func runProgram(t *testing.T, d *Device, src string, inputs map[string]*Buffer) []float32 {
	t.Helper()
	exe, ins := compileWith(t, d, src, inputs)
	var out []float32
	for range 2 { // the second run reuses the arena
		outs, err := exe.Run(context.Background(), ins, backend.RunOptions{})
		if err != nil {
			t.Fatal(err)
		}
		out = outs[0].(*Buffer).data.([]float32)
	}
	return out
}

func randBuffer(d *Device, r *rand.Rand, shape ...int) *Buffer {
	data := make([]float32, numel(shape))
	for i := range data {
		data[i] = float32(r.NormFloat64())
	}
	b, _ := d.Upload(host.New(shape, data))
	return b.(*Buffer)
}

// The exactness rule for convolutions: a sample's result is bit for bit
// the same in a batch of any size (so in every share of a rewritten
// graph's batch), at any thread count, whatever chunk of samples its
// patches were laid out with.
func TestConvSamplesIndependentOfBatch(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const big = 37
	ref := New(graph.HostCPU)
	in := map[string]*Buffer{
		"x": randBuffer(ref, r, big, 8, 12, 12), "w1": randBuffer(ref, r, 16, 8, 3, 3), "b1": randBuffer(ref, r, 16),
		"w2": randBuffer(ref, r, 16, 1, 3, 3), "w3": randBuffer(ref, r, 24, 16, 1, 1), "b3": randBuffer(ref, r, 24),
		"w4": randBuffer(ref, r, 24, 6, 3, 3), "z": randBuffer(ref, r),
	}
	want := runProgram(t, NewShared(graph.HostCPU, par.New(1)), convNet(big), in)
	per := len(want) / big
	x := in["x"].data.([]float32)
	xs := 8 * 12 * 12
	for _, threads := range []int{1, 2, 3} {
		d := NewShared(graph.HostCPU, par.New(threads))
		for _, part := range [][2]int{{0, 1}, {3, 10}, {10, 37}, {0, 37}} {
			lo, hi := part[0], part[1]
			sub := map[string]*Buffer{}
			for k, v := range in {
				sub[k] = v
			}
			xb, _ := d.Upload(host.New([]int{hi - lo, 8, 12, 12}, x[lo*xs:hi*xs]))
			sub["x"] = xb.(*Buffer)
			got := runProgram(t, d, convNet(hi-lo), sub)
			for i := range got {
				if math.Float32bits(got[i]) != math.Float32bits(want[lo*per+i]) {
					t.Fatalf("%d threads, samples %d to %d: element %d is %g in the share, %g in the whole batch",
						threads, lo, hi, i, got[i], want[lo*per+i])
				}
			}
		}
	}
}

// The convolutions agree with a direct float64 evaluation within
// rounding.
func TestConvMatchesDirect(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	d := NewShared(graph.HostCPU, par.New(2))
	for _, c := range []struct {
		x, w  []int
		attrs string
	}{
		{[]int{3, 4, 9, 8}, []int{6, 4, 1, 1}, ""},
		{[]int{2, 6, 9, 8}, []int{6, 1, 3, 3}, "{groups=6, stride=[2,2], pad=[1,1]}"},
		{[]int{2, 6, 9, 8}, []int{6, 1, 3, 3}, "{groups=6, pad=[2,0,1,3], dilation=[2,1]}"},
		{[]int{2, 4, 9, 8}, []int{6, 2, 3, 2}, "{groups=2, stride=[2,1], pad=[1,0,2,1], dilation=[1,2]}"},
		{[]int{5, 3, 7, 7}, []int{4, 3, 3, 3}, "{stride=[2,2]}"},
		{[]int{2, 5, 9, 8}, []int{6, 5, 3, 3}, "{pad=[1,1]}"},
		{[]int{2, 4, 9, 8}, []int{6, 2, 3, 2}, "{groups=2, pad=[2,0,1,1], dilation=[1,2]}"},
		{[]int{3, 2, 5, 6}, []int{3, 2, 5, 5}, "{pad=[3,2,3,4]}"},
	} {
		src := fmt.Sprintf("graph p {\n  input %%x: f32%s\n  input %%w: f32%s\n  %%y = conv2d %%x, %%w %s\n  output %%y\n}\n",
			shapeText(c.x), shapeText(c.w), c.attrs)
		p := program(t, src)
		xb, wb := randBuffer(d, r, c.x...), randBuffer(d, r, c.w...)
		got := runProgram(t, d, src, map[string]*Buffer{"x": xb, "w": wb})
		n := p.Nodes[0]
		win := newWindow(c.x, c.w[2:], n.IntsAttr("stride", []int{1, 1}), n.IntsAttr("pad", []int{0, 0}), n.IntsAttr("dilation", []int{1, 1}), mustShape(t, n.Type))
		groups := int(n.IntAttr("groups", 1))
		xd, wd := xb.data.([]float32), wb.data.([]float32)
		o, cg := c.w[0], c.x[1]/groups
		og := o / groups
		i := 0
		for s := 0; s < win.n; s++ {
			for oc := 0; oc < o; oc++ {
				g := oc / og
				for oh := 0; oh < win.oh; oh++ {
					for ow := 0; ow < win.ow; ow++ {
						var want, mag float64
						for ci := 0; ci < cg; ci++ {
							for kh := 0; kh < win.kh; kh++ {
								for kw := 0; kw < win.kw; kw++ {
									ih, iw := oh*win.sh-win.pt+kh*win.dh, ow*win.sw-win.pl+kw*win.dw
									if ih < 0 || ih >= win.h || iw < 0 || iw >= win.w {
										continue
									}
									p := float64(xd[((s*win.c+g*cg+ci)*win.h+ih)*win.w+iw]) * float64(wd[((oc*cg+ci)*win.kh+kh)*win.kw+kw])
									want, mag = want+p, mag+math.Abs(p)
								}
							}
						}
						if math.Abs(float64(got[i])-want) > 1e-5*mag+1e-30 {
							t.Fatalf("%s: element %d = %g, want %g", src, i, got[i], want)
						}
						i++
					}
				}
			}
		}
	}
}

func shapeText(s []int) string {
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = fmt.Sprint(d)
	}
	return "[" + strings.Join(parts, ",") + "]"
}

func mustShape(t *testing.T, ty graph.Type) []int {
	s, err := shapeOf(ty)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// After its first run a program allocates almost nothing: its
// intermediates live in the arena, elementwise results over dead
// operands, and the loops of its kernels allocate nothing.
func TestRunAllocations(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	d := NewShared(graph.HostCPU, par.New(2))
	in := map[string]*Buffer{
		"x": randBuffer(d, r, 4, 8, 12, 12), "w1": randBuffer(d, r, 16, 8, 3, 3), "b1": randBuffer(d, r, 16),
		"w2": randBuffer(d, r, 16, 1, 3, 3), "w3": randBuffer(d, r, 24, 16, 1, 1), "b3": randBuffer(d, r, 24),
		"w4": randBuffer(d, r, 24, 6, 3, 3), "z": randBuffer(d, r),
	}
	exe, a := allocsPerRun(t, d, convNet(4), in)
	// The output (allocated per run: the caller keeps it), its Buffer, the
	// list of outputs, and the pool's helpers started for the run.
	if a > 8 {
		t.Errorf("%v allocations per run after the first, want at most 8", a)
	}
	if b := exe.(*executable).ArenaBytes(); b <= 0 || b > 4*8*12*12*4*16 {
		t.Errorf("arena of %d bytes", b)
	}
}

// The tiled transpose of the last two axes gives what the general one
// does.
func TestTransposeLastTwo(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	d := NewShared(graph.HostCPU, par.New(1))
	for _, c := range []struct {
		shape, perm string
		dims        [3]int
	}{{"[3,17,20]", "[0,2,1]", [3]int{3, 17, 20}}, {"[33,5]", "[1,0]", [3]int{1, 33, 5}}} {
		src := fmt.Sprintf("graph p {\n  input %%x: f32%s\n  %%y = transpose %%x {perm=%s}\n  output %%y\n}\n", c.shape, c.perm)
		b, m, n := c.dims[0], c.dims[1], c.dims[2]
		x := randBuffer(d, r, b*m*n)
		xb, _ := d.Upload(host.New(mustShape(t, program(t, src).Inputs[0].Type), x.data))
		got := runProgram(t, d, src, map[string]*Buffer{"x": xb.(*Buffer)})
		xd := x.data.([]float32)
		for k := 0; k < b; k++ {
			for i := 0; i < m; i++ {
				for j := 0; j < n; j++ {
					if got[(k*n+j)*m+i] != xd[(k*m+i)*n+j] {
						t.Fatalf("%s: element (%d,%d,%d) misplaced", c.shape, k, j, i)
					}
				}
			}
		}
	}
}

// Depthwise convolutions and max pooling computed from the image
// (vec.Plane) give the bits of the padded-plane path that processors
// without AVX-512 run, with special values in the image, at 1 and 2
// threads.
func TestPlanesMatchPadded(t *testing.T) {
	r := rand.New(rand.NewPCG(41, 42))
	src := `graph p {
  input %x: f32[3,16,23,17]
  input %w: f32[16,1,3,3]
  input %w5: f32[16,1,5,5]
  input %b: f32[16]
  %c = conv2d %x, %w, %b {groups=16, pad=[1,1]}
  %r = relu %c
  %s = conv2d %r, %w5 {groups=16, stride=[2,2], pad=[2,1,1,2]}
  %m = maxpool2d %s {kernel=[3,3], stride=[2,2], pad=[1,1]}
  %d = conv2d %x, %w {groups=16, dilation=[2,1], stride=[1,2], pad=[2,1]}
  %q = maxpool2d %d {kernel=[2,3], stride=[1,1], pad=[0,1]}
  output %m, %q
}
`
	for _, threads := range []int{1, 2} {
		pool := par.New(threads)
		fast, padded := NewShared(graph.HostCPU, pool), NewShared(graph.HostCPU, pool)
		padded.padded = true
		x := randBuffer(fast, r, 3, 16, 23, 17)
		xd := x.data.([]float32)
		for i := 0; i < len(xd); i += 37 {
			xd[i] = []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.Copysign(0, -1))}[i%4]
		}
		in := []backend.Buffer{x, randBuffer(fast, r, 16, 1, 3, 3), randBuffer(fast, r, 16, 1, 5, 5), randBuffer(fast, r, 16)}
		var outs [2][]backend.Buffer
		for k, d := range []*Device{fast, padded} {
			exe, err := d.Compile(program(t, src))
			if err != nil {
				t.Fatal(err)
			}
			if outs[k], err = exe.Run(context.Background(), in, backend.RunOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		for o := range outs[0] {
			got, want := outs[0][o].(*Buffer).data.([]float32), outs[1][o].(*Buffer).data.([]float32)
			for i := range want {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) && !(got[i] != got[i] && want[i] != want[i]) {
					t.Fatalf("%d threads, output %d, element %d: %v from the image, %v from padded planes", threads, o, i, got[i], want[i])
				}
			}
		}
	}
}

// allocsPerRun compiles src on d and returns the executable and its
// allocations per run after the first, on inputs in (by name).
func allocsPerRun(t *testing.T, d *Device, src string, in map[string]*Buffer) (backend.Executable, float64) {
	t.Helper()
	exe, ins := compileWith(t, d, src, in)
	run := func() {
		if _, err := exe.Run(context.Background(), ins, backend.RunOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	run()
	return exe, testing.AllocsPerRun(10, run)
}

// compileWith compiles src on d and returns it with its inputs, in order,
// from in (by name).
func compileWith(t *testing.T, d *Device, src string, in map[string]*Buffer) (backend.Executable, []backend.Buffer) {
	t.Helper()
	p := program(t, src)
	exe, err := d.Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	var ins []backend.Buffer
	for _, n := range p.Inputs {
		ins = append(ins, in[n.Name])
	}
	return exe, ins
}
