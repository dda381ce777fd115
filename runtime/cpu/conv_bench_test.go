package cpu

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"

	"multigpu/graph"
	"multigpu/runtime/backend"
	"multigpu/runtime/cpu/par"
)

// BenchmarkConv times the f32 convolutions of MobileNetV2 and ResNet-18
// at batch 8, one layer each (a depthwise 3x3 at stride 1 and 2, a
// pointwise expansion and projection, a 3x3 and the 7x7 stem), at 1 and 2
// threads, with the convolution's bias and relu-like clamp folded in. The
// program's output is one channel of the result, so that the result itself
// comes from the arena, as in a network.
func BenchmarkConv(b *testing.B) {
	layers := []struct {
		name                    string
		c, h, o, k, stride, grp int
	}{
		{"dw3x3s1/144x56", 144, 56, 144, 3, 1, 144},
		{"dw3x3s2/96x112", 96, 112, 96, 3, 2, 96},
		{"pw/24x56->144", 24, 56, 144, 1, 1, 1},
		{"pw/144x56->24", 144, 56, 24, 1, 1, 1},
		{"3x3/64x56->64", 64, 56, 64, 3, 1, 1},
		{"3x3/256x14->256", 256, 14, 256, 3, 1, 1},
		{"3x3/512x7->512", 512, 7, 512, 3, 1, 1},
		{"7x7s2/3x224->64", 3, 224, 64, 7, 2, 1},
	}
	n := 8
	if s := os.Getenv("CONVBATCH"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	for _, l := range layers {
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/%dt", l.name, threads), func(b *testing.B) {
				pad := l.k / 2
				src := fmt.Sprintf(`graph p {
  input %%x: f32[%d,%d,%d,%d]
  input %%w: f32[%d,%d,%d,%d]
  input %%b: f32[%d]
  input %%lo: f32[]
  input %%hi: f32[]
  %%c = conv2d %%x, %%w, %%b {groups=%d, stride=[%d,%d], pad=[%d,%d]}
  %%m = maximum %%c, %%lo
  %%y = minimum %%m, %%hi
  %%o = slice %%y {axis=1, start=0, end=1}
  output %%o
}
`, n, l.c, l.h, l.h, l.o, l.c/l.grp, l.k, l.k, l.o, l.grp, l.stride, l.stride, pad, pad)
				pool := par.New(threads)
				d := NewShared(graph.HostCPU, pool)
				r := rand.New(rand.NewPCG(1, 2))
				p := program(b, src)
				exe, err := d.Compile(p)
				if err != nil {
					b.Fatal(err)
				}
				ins := []backend.Buffer{randBuffer(d, r, n, l.c, l.h, l.h), randBuffer(d, r, l.o, l.c/l.grp, l.k, l.k),
					randBuffer(d, r, l.o), randBuffer(d, r), randBuffer(d, r)}
				pool.Open()
				defer pool.Close()
				for i := 0; i < b.N+1; i++ {
					if i == 1 {
						b.ResetTimer()
					}
					if _, err := exe.Run(context.Background(), ins, backend.RunOptions{}); err != nil {
						b.Fatal(err)
					}
				}
				oh := (l.h+2*pad-l.k)/l.stride + 1
				flops := 2 * float64(n*l.o*oh*oh*(l.c/l.grp)*l.k*l.k)
				b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}
