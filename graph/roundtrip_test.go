package graph

import (
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// testModel is one model of ../testdata.
type testModel struct {
	name string // file name, as in "mlp.graph"
	src  []byte
}

// testModels returns every model of ../testdata, sorted by name.
func testModels(t testing.TB) []testModel {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "testdata", "*.graph"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no models in ../testdata")
	}
	sort.Strings(files)
	var out []testModel
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, testModel{filepath.Base(f), src})
	}
	return out
}

// mustParse parses src or fails the test.
func mustParse(t testing.TB, file string, src []byte) *Graph {
	t.Helper()
	g, err := Parse(file, src)
	if err != nil {
		t.Fatalf("Parse(%s):\n%v", file, err)
	}
	return g
}

func TestRoundTrip(t *testing.T) {
	for _, m := range testModels(t) {
		t.Run(strings.TrimSuffix(m.name, ".graph"), func(t *testing.T) {
			g := mustParse(t, m.name, m.src)
			if err := Verify(g); err != nil {
				t.Fatalf("Verify: %v", err)
			}
			first := Format(g)
			g2 := mustParse(t, m.name, []byte(first))
			if err := Verify(g2); err != nil {
				t.Fatalf("Verify after reparse: %v", err)
			}
			if second := Format(g2); second != first {
				t.Fatalf("print(parse(print(g))) differs from print(g):\n--- first\n%s--- second\n%s", first, second)
			}
			var buf bytes.Buffer
			if err := Print(&buf, g); err != nil {
				t.Fatal(err)
			}
			if buf.String() != first {
				t.Fatal("Print and Format disagree")
			}
		})
	}
}

// TestModelsHeader checks the convention that every model starts with a
// "# file.graph: what it is" comment and names its graph after its file.
func TestModelsHeader(t *testing.T) {
	for _, m := range testModels(t) {
		base := strings.TrimSuffix(m.name, ".graph")
		first, _, _ := strings.Cut(string(m.src), "\n")
		if !strings.HasPrefix(first, "# "+m.name+": ") || len(first) < len("# "+m.name+": ")+10 {
			t.Errorf("%s: first line %q, want \"# %s: what it is\"", m.name, first, m.name)
		}
		if g := mustParse(t, m.name, m.src); g.Name != base {
			t.Errorf("%s: graph is called %s, want %s", m.name, g.Name, base)
		}
	}
}

// TestModelsCoverOps checks that the models use every op of the table and
// every kind of leaf.
func TestModelsCoverOps(t *testing.T) {
	used := map[string]bool{}
	for _, m := range testModels(t) {
		for _, n := range mustParse(t, m.name, m.src).Nodes {
			used[n.Op] = true
		}
	}
	for _, op := range append(OpNames(), OpInput, OpParam, OpConst) {
		// assign updates state across runs, which the example models do
		// not keep: the training graphs of package train use it, and
		// assign_test.go's graphs.
		if !used[op] && op != OpAssign {
			t.Errorf("no model in ../testdata uses %s", op)
		}
	}
}

func TestCloneIdentical(t *testing.T) {
	for _, m := range testModels(t) {
		t.Run(strings.TrimSuffix(m.name, ".graph"), func(t *testing.T) {
			g := mustParse(t, m.name, m.src)
			want := Format(g)
			c := g.Clone()
			if got := Format(c); got != want {
				t.Fatalf("Clone prints differently:\n--- original\n%s--- clone\n%s", want, got)
			}
			if err := Verify(c); err != nil {
				t.Fatalf("Verify(clone): %v", err)
			}
			for _, n := range g.Nodes {
				if cn := c.Lookup(n.Name); cn == nil || cn == n || cn.ID != n.ID {
					t.Fatalf("clone's %%%s: %p (ID %d), original %p (ID %d)", n.Name, cn, cn.ID, n, n.ID)
				}
			}
			mutateGraph(c)
			if got := Format(g); got != want {
				t.Fatalf("mutating the clone changed the original:\n--- before\n%s--- after\n%s", want, got)
			}
			if err := Verify(g); err != nil {
				t.Fatalf("original no longer verifies after mutating the clone: %v", err)
			}
			for _, n := range g.Nodes {
				if g.Lookup(n.Name) != n {
					t.Fatalf("original's index lost %%%s", n.Name)
				}
			}
		})
	}
}

// mutateGraph changes every piece of memory a graph owns, in place: node
// fields, shapes, attribute values down to list elements, const data,
// operand and output slices.
func mutateGraph(g *Graph) {
	g.Name += "_x"
	for _, n := range g.Nodes {
		n.Name += "_x"
		n.Op = "mutated"
		n.Device = GPUDevice(7)
		n.Pos = Pos{99, 99}
		n.Type.DType = F64
		for i := range n.Type.Shape {
			n.Type.Shape[i] = Const(12345)
		}
		for i := range n.Attrs {
			n.Attrs[i].Name += "_x"
			v := &n.Attrs[i].Value
			v.Int, v.Float, v.Str = 777, 7.5, "mutated"
			for j := range v.List {
				v.List[j] = Int(-9)
			}
		}
		for i := range n.Data {
			n.Data[i] = 42
		}
		for i := range n.Args {
			n.Args[i] = n
		}
	}
	for i := range g.Outputs {
		g.Outputs[i] = g.Nodes[0]
	}
	if len(g.Nodes) > 0 {
		g.Nodes[0], g.Nodes[len(g.Nodes)-1] = g.Nodes[len(g.Nodes)-1], g.Nodes[0]
	}
}

// TestCloneIndependentAppend checks that nodes added to a clone through the
// API stay out of the original, and the other way round.
func TestCloneIndependentAppend(t *testing.T) {
	g := mustParse(t, "mlp.graph", []byte("graph m {\n  input %x: f32[N,4]\n  %y = relu %x\n  output %y\n}\n"))
	want := Format(g)
	c := g.Clone()
	x := c.Lookup("x")
	z, err := c.Apply("z", "neg", []*Node{x}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetOutputs(c.Lookup("y"), z); err != nil {
		t.Fatal(err)
	}
	if g.Lookup("z") != nil || Format(g) != want {
		t.Fatalf("adding to the clone changed the original:\n%s", Format(g))
	}
	if _, err := g.Apply("w", "abs", []*Node{x}, nil); err == nil {
		t.Fatal("Apply accepted an operand from another graph (the clone)")
	}
	if _, err := g.Apply("w", "abs", []*Node{g.Lookup("x")}, nil); err != nil {
		t.Fatal(err)
	}
	if c.Lookup("w") != nil {
		t.Fatal("adding to the original changed the clone")
	}
}
