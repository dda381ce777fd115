package runtime

import (
	"context"
	"os"
	"testing"

	"multigpu/graph"
	"multigpu/passes/replicate"
	"multigpu/runtime/host"
)

func TestSmoke(t *testing.T) {
	src, _ := os.ReadFile("../testdata/mlp.graph")
	g, err := graph.Parse("mlp.graph", src)
	if err != nil {
		t.Fatal(err)
	}
	rg, _, err := replicate.Rewrite(g, replicate.Options{GPUs: []int{0, 1, 2}})
	if err != nil {
		t.Fatal(err)
	}
	params := RandomParams(g, 1)
	for _, b := range []int64{1, 2, 7, 300} {
		in, _ := RandomInputs(g, b, 2)
		var outs [2][]float32
		for k, gg := range []*graph.Graph{g, rg} {
			e, err := New(gg, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if err := e.SetParams(params); err != nil {
				t.Fatal(err)
			}
			out, err := e.Run(context.Background(), in)
			if err != nil {
				t.Fatal(err)
			}
			outs[k] = host.Data(out["y"]).([]float32)
			t.Log(out["y"].Shape())
		}
		for i := range outs[0] {
			if outs[0][i] != outs[1][i] {
				t.Fatalf("batch %d: differ at %d: %v vs %v", b, i, outs[0][i], outs[1][i])
			}
		}
	}
}
