package replicate_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"gorgonia.org/tensor"

	"multigpu/graph"
	"multigpu/passes/replicate"
	"multigpu/runtime"
	"multigpu/runtime/host"
)

// An embedding lookup and its gradient rewritten for 3 replicas: the
// lookup runs on the replicas, each replica's gather_grad is a partial
// sum over its share of the ids, and the merge device adds the partials;
// an expand to the batch names each replica's share. The results equal
// one device's (exactly: the values are small integers).
func TestEmbeddingGradientReplicated(t *testing.T) {
	g, err := graph.Parse("emb.graph", []byte(`graph emb {
  input %ids: i64[N,3]
  input %dy: f64[N,3,4]
  input %col: f64[N,1]
  param %table: f64[7,4]
  %e = gather %table, %ids
  %d = gather_grad %ids, %dy {rows=7}
  %c = expand %col {shape=[N,4]}
  output %e, %d, %c
}
`))
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := replicate.Rewrite(g, replicate.Options{GPUs: []int{0, 1, 2}})
	if err != nil {
		t.Fatal(err)
	}
	var partials, expands []string
	for _, n := range out.Nodes {
		switch n.Op {
		case "gather_grad":
			partials = append(partials, n.Device.String())
		case "expand":
			shape, _ := n.Attr("shape")
			expands = append(expands, shape.String()+" "+n.Type.String())
		}
	}
	if got := strings.Join(partials, " "); got != "gpu:0 gpu:1 gpu:2" {
		t.Errorf("gather_grad partials on %s, want one per replica", got)
	}
	if got := strings.Join(expands, " "); got != "[N.0,4] f64[N.0,4] [N.1,4] f64[N.1,4] [N.2,4] f64[N.2,4]" {
		t.Errorf("expands: %s", got)
	}
	if d := out.Lookup("d"); d == nil || d.Op != "sum" || d.Device != graph.HostCPU {
		t.Errorf("%%d is %v, want the sum of the partials on cpu", d)
	}
	r := rand.New(rand.NewPCG(1, 2))
	params := map[string]*tensor.Dense{"table": ints(r, []int{7, 4}, -3, 3)}
	run := func(g *graph.Graph, in map[string]*tensor.Dense) map[string]*tensor.Dense {
		e, err := runtime.New(g, runtime.Options{})
		if err == nil {
			err = e.SetParams(params)
		}
		if err != nil {
			t.Fatal(err)
		}
		res, err := e.Run(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	for _, batch := range []int{2, 7} {
		ids := make([]int64, batch*3)
		for i := range ids {
			ids[i] = r.Int64N(14) - 7
		}
		in := map[string]*tensor.Dense{
			"ids": host.New([]int{batch, 3}, ids),
			"dy":  ints(r, []int{batch, 3, 4}, -4, 4),
			"col": ints(r, []int{batch, 1}, -4, 4),
		}
		want, got := run(g, in), run(out, in)
		for _, name := range []string{"e", "d", "c"} {
			if w, o := fmt.Sprint(host.Data(want[name])), fmt.Sprint(host.Data(got[name])); w != o {
				t.Errorf("batch %d: %%%s = %s, one device %s", batch, name, o, w)
			}
		}
	}
}

// ints returns an f64 tensor of integers uniform in [lo, hi].
func ints(r *rand.Rand, shape []int, lo, hi int) *tensor.Dense {
	n := 1
	for _, d := range shape {
		n *= d
	}
	data := make([]float64, n)
	for i := range data {
		data[i] = float64(lo + r.IntN(hi-lo+1))
	}
	return host.New(shape, data)
}
