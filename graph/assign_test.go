package graph

import (
	"strings"
	"testing"
)

// A graph that updates its state prints and parses back to itself, and
// its roots are its outputs and then its assigns.
func TestAssignRoundTrip(t *testing.T) {
	src := `graph step {
  input %x: f32[N,4] @cpu
  param %w: f32[4] @cpu
  param %steps: f64[] @cpu
  const %one: f64[] = 1.0 @cpu
  %w.r0 = copy %w : f32[4] @gpu:0
  %x.r0 = slice %x {axis=0, part=0, parts=1} : f32[N.0,4] @gpu:0
  %y.r0 = mul %x.r0, %w.r0 : f32[N.0,4] @gpu:0
  %g.r0 = sum %y.r0 {axes=[0]} : f32[4] @gpu:0
  %w.new.r0 = sub %w.r0, %g.r0 : f32[4] @gpu:0
  %w.assign.r0 = assign %w.r0, %w.new.r0 : f32[4] @gpu:0
  %steps.next = add %steps, %one : f64[] @cpu
  %steps.assign = assign %steps, %steps.next : f64[] @cpu
  %y = concat %y.r0 {axis=0} : f32[N,4] @cpu
  output %y
}
`
	g, err := Parse("step.graph", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if got := Format(g); got != src {
		t.Fatalf("print(parse(src)) differs:\n%s", got)
	}
	var roots []string
	for _, n := range Roots(g) {
		roots = append(roots, n.Name)
	}
	if got := strings.Join(roots, " "); got != "y w.assign.r0 steps.assign" {
		t.Errorf("roots %s, want y w.assign.r0 steps.assign", got)
	}
	if p := AssignedParam(g.Lookup("w.r0")); p == nil || p.Name != "w" {
		t.Errorf("AssignedParam(%%w.r0) = %v, want %%w", p)
	}
}

func TestVerifyAssigns(t *testing.T) {
	head := `graph g {
  input %x: f32[N,4]
  param %w: f32[4]
  param %v: f32[4]
  %s = sum %x {axes=[0]}
  %n = sub %w, %s
  %m = sub %v, %s
`
	tail := "  output %s\n}\n"
	for _, c := range []struct{ name, body, want string }{
		{"ok", "  %a = assign %w, %n\n  %b = assign %v, %m\n", ""},
		{"target", "  %a = assign %n, %m\n", "%a: target %n is a sub: expected a param, or a copy of a param on another device"},
		{"leaf value", "  %a = assign %w, %v\n", "%a: value %v is a param: expected a computed value"},
		{"target twice", "  %a = assign %w, %n\n  %b = assign %w, %m\n", "%b: target %w is assigned twice (first by %a)"},
		{"value twice", "  %a = assign %w, %n\n  %b = assign %v, %n\n", "%b: value %n is assigned twice (first by %a)"},
		{"type", "  %k = sum %n {axes=[0]}\n  %a = assign %w, %k\n", "%a: assign: expected a value of the target's type f32[4], found f32[]"},
		{"read", "  %a = assign %w, %n\n  %b = add %a, %s\n", "%b: operand %a is an assign: read the value it assigns"},
		{"batch", "  param %z: f32[4]\n  %a = assign %x, %x\n", "expected a batch-free target, found f32[N,4]"},
	} {
		_, err := Parse("g.graph", []byte(head+c.body+tail))
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: got %v, want %q", c.name, err, c.want)
		}
	}
	// A copy on the same device is no resident copy.
	_, err := Parse("g.graph", []byte(`graph g {
  input %x: f32[N,4] @gpu:0
  param %w: f32[4] @gpu:0
  %c = copy %w @gpu:0
  %s = sum %x {axes=[0]} @gpu:0
  %n = sub %c, %s @gpu:0
  %a = assign %c, %n @gpu:0
  output %s
}
`))
	if err == nil || !strings.Contains(err.Error(), "target %c is a copy: expected a param, or a copy of a param on another device") {
		t.Errorf("a copy on the target's own device: %v", err)
	}
}
