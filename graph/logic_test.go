package graph

import (
	"strings"
	"testing"
)

// TestLogicOpTypes checks the result types of pow, erf, where, the
// comparisons, the logic ops and cast, and what each refuses.
func TestLogicOpTypes(t *testing.T) {
	leaves := `  input %x: f32[N,3]
  input %d: f64[3]
  param %w: f32[3]
  param %s: f32[]
  param %i: i32[2,1,3]
  param %j: i32[3]
  input %l: i64[N,3]
  input %b: bool[N,1]
  param %c: bool[3]
`
	checkOpTypes(t, leaves, []opCase{
		{"pow %x, %w", "f32[N,3]"},
		{"pow %s, %x", "f32[N,3]"},
		{"erf %d", "f64[3]"},
		{"where %b, %x, %w", "f32[N,3]"},
		{"where %c, %i, %j", "i32[2,1,3]"},
		{"where %b, %c, %c", "bool[N,3]"},
		{"equal %b, %c", "bool[N,3]"},
		{"equal %i, %j", "bool[2,1,3]"},
		{"less %x, %s", "bool[N,3]"},
		{"greater %l, %l", "bool[N,3]"},
		{"less_equal %d, %d", "bool[3]"},
		{"greater_equal %j, %i", "bool[2,1,3]"},
		{"not %b", "bool[N,1]"},
		{"and %b, %c", "bool[N,3]"},
		{"or %c, %c", "bool[3]"},
		{"xor %c, %b", "bool[N,3]"},
		{"cast %x {to=i64}", "i64[N,3]"},
		{"cast %b {to=f32}", "f32[N,1]"},
		{"cast %l {to=bool}", "bool[N,3]"},
		{"cast %d {to=f64}", "f64[3]"},
	}, []opCase{
		{"pow %i, %j", "pow: expected floating-point operands of one element type, found i32[2,1,3] and i32[3]"},
		{"pow %x, %d", "pow: expected floating-point operands of one element type, found f32[N,3] and f64[3]"},
		{"erf %j", "erf: expected a floating-point operand, found i32[3]"},
		{"where %x, %x, %x", "where: expected a bool condition, found f32[N,3]"},
		{"where %b, %x, %d", "where: expected a and b of one element type, found f32[N,3] and f64[3]"},
		{"equal %x, %d", "equal: expected operands of one element type, found f32[N,3] and f64[3]"},
		{"less %b, %c", "less: expected numeric operands, found bool[N,1]"},
		{"greater %x, %l", "greater: expected operands of one element type, found f32[N,3] and i64[N,3]"},
		{"not %x", "not: expected bool operands, found f32[N,3]"},
		{"and %b, %x", "and: expected bool operands, found f32[N,3]"},
		{"xor %c, %i", "xor: expected bool operands, found i32[2,1,3]"},
		{"cast %x", "cast: missing attribute to (one of f32, f64, i32, i64, bool)"},
		{"cast %x {to=f16}", "attribute to: expected one of f32, f64, i32, i64, bool, found f16"},
		{"equal %i, %x", "equal: expected operands of one element type, found i32[2,1,3] and f32[N,3]"},
		{"and %c, %b, %c", "and: expected 2 operands, found 3"},
	})
}

// opCase is one statement of an op test, %y = stmt, and what parsing it
// should give: the type of %y, or a part of the error.
type opCase struct {
	stmt, want string
}

// checkOpTypes parses each statement as %y in a graph of leaves: each of
// types must give %y the type it wants, each of refused an error holding
// what it wants.
func checkOpTypes(t *testing.T, leaves string, types, refused []opCase) {
	t.Helper()
	for _, c := range types {
		src := "graph g {\n" + leaves + "  %y = " + c.stmt + "\n  output %y\n}\n"
		g, err := Parse("g.graph", []byte(src))
		if err != nil {
			t.Errorf("%s: %v", c.stmt, err)
			continue
		}
		if got := g.Lookup("y").Type.String(); got != c.want {
			t.Errorf("%s: %s, want %s", c.stmt, got, c.want)
		}
	}
	for _, c := range refused {
		src := "graph g {\n" + leaves + "  %y = " + c.stmt + "\n  output %y\n}\n"
		_, err := Parse("g.graph", []byte(src))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %s", c.stmt, err, c.want)
		}
	}
}

// argBatchAxes is the batch axis of each of n's operands (-1 where one
// has none), as BatchRule takes them.
func argBatchAxes(n *Node) []int {
	axes := make([]int, len(n.Args))
	for i, a := range n.Args {
		axes[i] = a.Type.BatchAxis()
	}
	return axes
}

// TestLogicOpBatchRules checks that the new elementwise ops are
// batch-parallel when their batch-carrying operands line up, and cross
// the batch when they do not.
func TestLogicOpBatchRules(t *testing.T) {
	src := `graph g {
  input %x: f32[N,3]
  input %z: f32[3,N]
  input %m: bool[N,3]
  param %w: f32[3]
  param %c: bool[3]
  %p = pow %x, %w
  %e = erf %x
  %wh = where %m, %x, %w
  %wc = where %c, %w, %x
  %eq = equal %x, %w
  %lt = less %w, %x
  %n = not %m
  %a = and %m, %c
  %k = cast %m {to=f32}
  %bad = where %m, %x, %z
  output %p, %e, %wh, %wc, %eq, %lt, %n, %a, %k
}
`
	// %bad does not type-check ([N,3] against [3,N]); the rest do.
	if _, err := Parse("g.graph", []byte(src)); err == nil || !strings.Contains(err.Error(), "cannot broadcast") {
		t.Fatalf("where of misaligned operands: error %v, want cannot broadcast", err)
	}
	src = strings.Replace(src, "  %bad = where %m, %x, %z\n", "", 1)
	g, err := Parse("g.graph", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range g.Nodes {
		if n.IsLeaf() {
			continue
		}
		if f := BatchRule(n, argBatchAxes(n)); f.Kind != BatchParallel || f.Axis != 0 {
			t.Errorf("%%%s (%s): %s on axis %d, want parallel on axis 0", n.Name, n.Op, f.Kind, f.Axis)
		}
	}
	// Operands whose batch axes do not line up (broadcast [N,1,1] with
	// [N,1] puts them on different axes) cross the batch.
	g2, err := Parse("g2.graph", []byte(`graph g2 {
  input %x: f32[N,1,1]
  input %z: f32[N,1]
  %y = less %x, %z
  output %y
}
`))
	if err != nil {
		t.Fatal(err)
	}
	if f := BatchRule(g2.Lookup("y"), []int{0, 0}); f.Kind != BatchCrossing {
		t.Errorf("less of misaligned batches: %s, want crossing", f.Kind)
	}
}
