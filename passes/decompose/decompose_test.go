package decompose_test

import (
	"context"
	"flag"
	"math"
	"strings"
	"testing"

	"gorgonia.org/tensor"

	"multigpu/graph"
	"multigpu/passes"
	"multigpu/passes/decompose"
	"multigpu/passes/replicate"
	"multigpu/runtime"
	"multigpu/runtime/host"
)

var _ = flag.Bool("update", false, "no golden files here; declared so that go test ./... -update runs")

const bnSrc = `graph bn {
  input %x: f64[N,3,4,5]
  param %s: f64[3]
  param %b: f64[3]
  param %m: f64[3]
  param %v: f64[3]
  param %w: f64[5,2]
  param %s2: f64[2]
  param %b2: f64[2]
  param %m2: f64[2]
  param %v2: f64[2]
  %y = batchnorm %x, %s, %b, %m, %v {training=true}
  %z = batchnorm %y, %s, %b, %m, %v {epsilon=0.001}
  %f = matmul %z, %w : f64[N,3,4,2]
  %d = batchnorm %f, %s2, %b2, %m2, %v2 {axis=-1, epsilon=0.01, training=true}
  output %d
}
`

func parse(t *testing.T, src string) *graph.Graph {
	t.Helper()
	g, err := graph.Parse("bn.graph", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func runGraph(t *testing.T, g *graph.Graph, params, in map[string]*tensor.Dense) map[string]*tensor.Dense {
	t.Helper()
	e, err := runtime.New(g, runtime.Options{})
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
	return out
}

func floats(t *tensor.Dense) []float64 { return host.Data(t).([]float64) }

// The decomposed graph computes what batchnorm computes, in both modes
// and on any axis, and the updates follow PyTorch's convention.
func TestBatchnormMatchesOp(t *testing.T) {
	g := parse(t, bnSrc)
	out, _, err := passes.Pipeline{Passes: []*passes.Pass{decompose.New(decompose.Options{Momentum: 0.25})}, VerifyEach: true}.Run(g)
	if err != nil {
		t.Fatal(err)
	}
	dg, ups, err := decompose.Batchnorm(g, decompose.Options{Momentum: 0.25})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range dg.Nodes {
		if n.Op == "batchnorm" {
			t.Fatalf("%%%s is still a batchnorm", n.Name)
		}
	}
	want := []decompose.Update{{"m", "y.running_mean"}, {"v", "y.running_var"}, {"m2", "d.running_mean"}, {"v2", "d.running_var"}}
	if len(ups) != len(want) {
		t.Fatalf("updates %v, want %v", ups, want)
	}
	for i := range want {
		if ups[i] != want[i] {
			t.Errorf("update %d: %v, want %v", i, ups[i], want[i])
		}
	}
	if len(out.Outputs) != 5 {
		t.Fatalf("the pass's graph has %d outputs, want the result and 4 updates", len(out.Outputs))
	}
	params := runtime.RandomParams(g, 1)
	in, err := runtime.RandomInputs(g, 7, 2)
	if err != nil {
		t.Fatal(err)
	}
	ref := floats(runGraph(t, g, params, in)["d"])
	res := runGraph(t, out, params, in)
	got := floats(res["d"])
	for i := range ref {
		if math.Abs(ref[i]-got[i]) > 1e-12*(1+math.Abs(ref[i])) {
			t.Fatalf("element %d: %v, want %v", i, got[i], ref[i])
		}
	}
	// The first batchnorm's update, from the batch by hand.
	x := floats(in["x"])
	m, v := floats(params["m"]), floats(params["v"])
	mean, sq := make([]float64, 3), make([]float64, 3)
	count := 7 * 4 * 5
	for i, xv := range x {
		mean[(i/20)%3] += xv / float64(count)
	}
	for i, xv := range x {
		d := xv - mean[(i/20)%3]
		sq[(i/20)%3] += d * d
	}
	for k := range 3 {
		wm := 0.75*m[k] + 0.25*mean[k]
		wv := 0.75*v[k] + 0.25*sq[k]/float64(count-1)
		if gm := floats(res["y.running_mean"])[k]; math.Abs(gm-wm) > 1e-12 {
			t.Errorf("running mean %d: %v, want %v", k, gm, wm)
		}
		if gv := floats(res["y.running_var"])[k]; math.Abs(gv-wv) > 1e-12 {
			t.Errorf("running var %d: %v, want %v", k, gv, wv)
		}
	}
}

// Replicated, the decomposed training batchnorm is synchronised: the
// statistics and updates are the whole batch's.
func TestDecomposedIsSynchronised(t *testing.T) {
	g := parse(t, bnSrc)
	out, _, err := passes.Pipeline{Passes: []*passes.Pass{decompose.New(decompose.Options{})}, VerifyEach: true}.Run(g)
	if err != nil {
		t.Fatal(err)
	}
	params := runtime.RandomParams(g, 3)
	in, err := runtime.RandomInputs(g, 9, 4)
	if err != nil {
		t.Fatal(err)
	}
	want := runGraph(t, out, params, in)
	for _, n := range []int{2, 3, 4} {
		rg, _, err := replicate.Rewrite(out, replicate.Options{GPUs: []int{0, 1, 2, 3}[:n]})
		if err != nil {
			t.Fatal(err)
		}
		got := runGraph(t, rg, params, in)
		for name, w := range want {
			wf, gf := floats(w), floats(got[name])
			for i := range wf {
				if math.Abs(wf[i]-gf[i]) > 1e-12*(1+math.Abs(wf[i])) {
					t.Fatalf("N=%d: %s element %d: %v, want %v", n, name, i, gf[i], wf[i])
				}
			}
		}
	}
}

func TestBatchnormErrors(t *testing.T) {
	g := parse(t, bnSrc)
	if _, _, err := decompose.Batchnorm(g, decompose.Options{Momentum: 1.5}); err == nil || !strings.Contains(err.Error(), "momentum") {
		t.Errorf("momentum 1.5: %v", err)
	}
}
