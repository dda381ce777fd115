package graphutil_test

import (
	"flag"
	"testing"

	"multigpu/graph"
	"multigpu/internal/graphutil"
)

var _ = flag.Bool("update", false, "no golden files here; declared so that go test ./... -update runs")

func TestPruneAndFresh(t *testing.T) {
	g, err := graph.Parse("p.graph", []byte(`graph p {
  input %x: f32[N,3]
  input %unused: f32[N,2]
  param %w: f32[3]
  param %v: f32[3]
  %a = mul %x, %w
  %b = add %x, %v
  %c = relu %a
  output %c
}
`))
	if err != nil {
		t.Fatal(err)
	}
	p, err := graphutil.Prune(g)
	if err != nil {
		t.Fatal(err)
	}
	want := `graph p {
  input %x: f32[N,3]
  param %w: f32[3]
  %a = mul %x, %w : f32[N,3]
  %c = relu %a : f32[N,3]
  output %c
}
`
	if got := graph.Format(p); got != want {
		t.Errorf("pruned:\n%s\nwant:\n%s", got, want)
	}
	if err := graph.Verify(p); err != nil {
		t.Error(err)
	}
	if got := graphutil.Fresh(g, "a"); got != "a_2" {
		t.Errorf("Fresh(a) = %s, want a_2", got)
	}
	if got := graphutil.Fresh(g, "d"); got != "d" {
		t.Errorf("Fresh(d) = %s, want d", got)
	}
	if got := graphutil.ShapeAttr(g.Lookup("x").Type).String(); got != "[N,3]" {
		t.Errorf("ShapeAttr = %s, want [N,3]", got)
	}
}
