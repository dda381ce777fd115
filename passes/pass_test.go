package passes_test

import (
	"flag"
	"strings"
	"testing"

	"multigpu/graph"
	"multigpu/passes"
)

var _ = flag.Bool("update", false, "rewrite golden files (none in this package)")

const tiny = `graph tiny {
  input %x: f32[N,3]
  %y = relu %x
  output %y
}
`

func parse(t *testing.T) *graph.Graph {
	g, err := graph.Parse("tiny.graph", []byte(tiny))
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// A pass that breaks an invariant is named by the pipeline.
func TestPipelineNamesBrokenPass(t *testing.T) {
	breaker := &passes.Pass{Name: "breaker", Run: func(g *graph.Graph, r *passes.Reporter) (*graph.Graph, error) {
		c := g.Clone()
		c.Nodes[1].Device = graph.GPUDevice(1) // %y on gpu:1 reads %x, unplaced
		r.Warnf("moved %%%s", c.Nodes[1].Name)
		return c, nil
	}}
	_, diags, err := passes.Pipeline{Passes: []*passes.Pass{breaker}, VerifyEach: true}.Run(parse(t))
	if err == nil || !strings.HasPrefix(err.Error(), "breaker: output fails verification (a bug in the pass): ") {
		t.Fatalf("got %v", err)
	}
	if len(diags) != 1 || diags[0].String() != "breaker: moved %y" {
		t.Errorf("diagnostics %v", diags)
	}
	// Without VerifyEach the broken graph passes through.
	if _, _, err := (passes.Pipeline{Passes: []*passes.Pass{breaker}}).Run(parse(t)); err != nil {
		t.Errorf("without VerifyEach: %v", err)
	}
}

func TestPipelineOrderAndErrors(t *testing.T) {
	var order []string
	mk := func(name string, fail bool) *passes.Pass {
		return &passes.Pass{Name: name, Run: func(g *graph.Graph, r *passes.Reporter) (*graph.Graph, error) {
			order = append(order, name)
			if fail {
				return nil, &graph.Error{File: "tiny.graph", Pos: graph.Pos{Line: 3, Col: 3}, Msg: "no"}
			}
			return g, nil
		}}
	}
	_, _, err := passes.Pipeline{Passes: []*passes.Pass{mk("a", false), mk("b", true), mk("c", false)}, VerifyEach: true}.Run(parse(t))
	if err == nil || err.Error() != "b: tiny.graph:3:3: no" {
		t.Errorf("got %v", err)
	}
	if strings.Join(order, ",") != "a,b" {
		t.Errorf("ran %v", order)
	}
}
