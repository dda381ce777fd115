package lower

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"multigpu/graph"
)

func parse(t *testing.T, src string) *graph.Graph {
	t.Helper()
	g, err := graph.Parse("test.graph", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// reduceCopyBack is the brief's example: a sum over the batch combined on
// the merge device and copied back to the replicas.
const reduceCopyBack = `graph mlp {
  input %x: f32[N,784] @cpu
  param %w1: f32[784,256] @cpu
  %x.r0 = slice %x {axis=0, part=0, parts=2} : f32[N.0,784] @gpu:0
  %x.r1 = slice %x {axis=0, part=1, parts=2} : f32[N.1,784] @gpu:1
  %w1.r0 = copy %w1 : f32[784,256] @gpu:0
  %w1.r1 = copy %w1 : f32[784,256] @gpu:1
  %h.r0 = matmul %x.r0, %w1.r0 : f32[N.0,256] @gpu:0
  %h.r1 = matmul %x.r1, %w1.r1 : f32[N.1,256] @gpu:1
  %s.r0 = sum %h.r0 {axes=[0], keepdims=true} : f32[1,256] @gpu:0
  %s.r1 = sum %h.r1 {axes=[0], keepdims=true} : f32[1,256] @gpu:1
  %s.parts = concat %s.r0, %s.r1 {axis=0} : f32[2,256] @cpu
  %s.total = sum %s.parts {axes=[0]} : f32[256] @cpu
  %s.count = dim %x {axis=0} : f32[] @cpu
  %s = div %s.total, %s.count : f32[256] @cpu
  %s.r0.1 = copy %s : f32[256] @gpu:0
  %s.r1.1 = copy %s : f32[256] @gpu:1
  %c.r0 = sub %h.r0, %s.r0.1 : f32[N.0,256] @gpu:0
  %c.r1 = sub %h.r1, %s.r1.1 : f32[N.1,256] @gpu:1
  %unused = relu %c.r1 : f32[N.1,256] @gpu:1
  %y = concat %c.r0, %c.r1 {axis=0} : f32[N,256] @cpu
  output %y
}
`

func TestStagesReductionCopyBack(t *testing.T) {
	p, err := Lower(parse(t, reduceCopyBack), Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := `stage 0
  slice %x.r0 -> gpu:0
  slice %x.r1 -> gpu:1
  copy %w1.r0 -> gpu:0 (resident)
  copy %w1.r1 -> gpu:1 (resident)
  gpu:0: %h.r0 %s.r0 (in %x.r0 %w1.r0; out %h.r0 %s.r0)
  gpu:1: %h.r1 %s.r1 (in %x.r1 %w1.r1; out %h.r1 %s.r1)
stage 1
  concat %s.parts -> cpu
  cpu: %s.total %s.count %s (in %x %s.parts; out %s)
stage 2
  copy %s.r0.1 -> gpu:0
  copy %s.r1.1 -> gpu:1
  gpu:0: %c.r0 (in %h.r0 %s.r0.1; out %c.r0)
  gpu:1: %c.r1 (in %h.r1 %s.r1.1; out %c.r1)
stage 3
  concat %y -> cpu
`
	if got := p.String(); got != want {
		t.Errorf("plan:\n%s\nwant:\n%s", got, want)
	}
	if len(p.Devices) != 3 || p.Devices[0] != graph.HostCPU {
		t.Errorf("devices = %v", p.Devices)
	}
	g := p.Graph
	for name, want := range map[string]int{"h.r0": 2, "s.r0": 1, "y": 4, "x": 1, "w1": 0, "unused": -1} {
		if got := p.LastUse[g.Lookup(name).ID]; got != want {
			t.Errorf("LastUse[%%%s] = %d, want %d", name, got, want)
		}
	}
}

// With the merge device also a replica, replica 0's work must share a stage
// with replica 1's rather than run one stage ahead.
func TestStagesMergeIsReplica(t *testing.T) {
	src, err := os.ReadFile("../golden/center_batch/merge_gpu0.graph")
	if err != nil {
		t.Skip(err)
	}
	p, err := Lower(parse(t, string(src)), Options{})
	if err != nil {
		t.Fatal(err)
	}
	stageOf := func(name string) int { return p.StageOf[p.Graph.Lookup(name).ID] }
	for _, pair := range [][2]string{{"c.r0", "c.r1"}, {"y.r0", "y.r1"}, {"mu.part.r0", "mu.part.r1"}} {
		if a, b := stageOf(pair[0]), stageOf(pair[1]); a != b {
			t.Errorf("%%%s in stage %d, %%%s in stage %d\n%s", pair[0], a, pair[1], b, p)
		}
	}
}

func TestUnplacedIsOneProgram(t *testing.T) {
	p, err := Lower(parse(t, `graph g {
  input %x: f32[N,4]
  param %w: f32[4,3]
  %h = matmul %x, %w
  %y = relu %h
  output %y
}
`), Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := "stage 0\n  cpu: %h %y (in %x %w; out %y)\n"
	if got := p.String(); got != want {
		t.Errorf("plan:\n%s\nwant:\n%s", got, want)
	}
}

func TestCheckErrorNamesNode(t *testing.T) {
	g := parse(t, `graph g {
  input %x: f32[N,4]
  %y = relu %x
  %z = tanh %y
  output %z
}
`)
	_, err := Lower(g, Options{Check: func(n *graph.Node, d graph.Device) error {
		if n.Op == "tanh" {
			return fmt.Errorf("%s cannot run %s", d, n.Op)
		}
		return nil
	}})
	var le *Error
	if !errors.As(err, &le) || le.Node != "z" {
		t.Fatalf("err = %v, want a lower.Error on %%z", err)
	}
	if want := "test.graph:4:3: lower: %z (tanh): cpu cannot run tanh"; err.Error() != want {
		t.Errorf("err = %q, want %q", err, want)
	}
}

func TestTestdataLowers(t *testing.T) {
	files, _ := os.ReadDir("../golden")
	for _, d := range files {
		sub, _ := os.ReadDir("../golden/" + d.Name())
		for _, f := range sub {
			if !strings.HasSuffix(f.Name(), ".graph") {
				continue
			}
			path := "../golden/" + d.Name() + "/" + f.Name()
			src, _ := os.ReadFile(path)
			g, err := graph.Parse(path, src)
			if err != nil {
				t.Errorf("%s: %v", path, err)
				continue
			}
			if _, err := Lower(g, Options{}); err != nil {
				t.Errorf("%s: %v", path, err)
			}
		}
	}
}
