package replicate_test

import (
	"fmt"
	"strings"
	"testing"

	"multigpu/graph"
	"multigpu/passes/replicate"
)

// chainModel returns a generated MLP-like chain of about nodes nodes:
// matmul, add, relu, repeated, with a reduction over the batch every 100
// layers whose result is used again (copy-back) so every kind of node is
// exercised.
func chainModel(tb testing.TB, nodes int) *graph.Graph {
	var b strings.Builder
	b.WriteString("graph chain {\n  input %x: f32[N,16]\n  param %w: f32[16,16]\n  param %b: f32[16]\n")
	prev := "x"
	for i := 0; i < nodes/3; i++ {
		fmt.Fprintf(&b, "  %%m%d = matmul %%%s, %%w\n  %%a%d = add %%m%d, %%b\n", i, prev, i, i)
		if i%100 == 99 {
			fmt.Fprintf(&b, "  %%s%d = mean %%a%d {axes=[0]}\n  %%r%d = sub %%a%d, %%s%d\n", i, i, i, i, i)
		} else {
			fmt.Fprintf(&b, "  %%r%d = relu %%a%d\n", i, i)
		}
		prev = fmt.Sprintf("r%d", i)
	}
	fmt.Fprintf(&b, "  output %%%s\n}\n", prev)
	g, err := graph.Parse("chain.graph", []byte(b.String()))
	if err != nil {
		tb.Fatal(err)
	}
	return g
}

// BenchmarkRewrite rewrites generated graphs for 8 GPUs and reports the
// cost per node of the rewritten graph; it should stay flat as graphs grow.
func BenchmarkRewrite(b *testing.B) {
	for _, size := range []int{1000, 10000, 100000} {
		g := chainModel(b, size)
		b.Run(fmt.Sprintf("nodes=%d/gpus=8", size), func(b *testing.B) {
			b.ReportAllocs()
			opts := replicate.Options{GPUs: gpus(8)}
			var outNodes int
			for i := 0; i < b.N; i++ {
				out, _, err := replicate.Rewrite(g, opts)
				if err != nil {
					b.Fatal(err)
				}
				outNodes = len(out.Nodes)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(outNodes), "ns/outnode")
			b.ReportMetric(float64(outNodes), "outnodes")
		})
	}
}
