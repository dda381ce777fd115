package graph

import (
	"math"
	"strings"
	"testing"
)

// base returns a small valid graph built by parsing: x -> relu -> softmax.
func base(t *testing.T) *Graph {
	t.Helper()
	return mustParse(t, "v.graph", []byte(body(
		"input %x: f32[N,4]",
		"param %w: f32[4]",
		"%r = relu %x",
		"%y = softmax %r {axis=0}",
		"output %y",
	)))
}

// TestVerifyRejects breaks a valid graph in one way at a time, through the
// API or by editing its fields, and checks the error Verify reports. Each
// of these would otherwise print text that does not parse back, or mean
// something other than what it says.
func TestVerifyRejects(t *testing.T) {
	for _, tc := range []struct {
		name   string
		break_ func(g *Graph)
		want   string
	}{
		{"wrong type", func(g *Graph) { g.Lookup("r").Type.Shape[1] = Const(5) },
			"v.graph:4:3: %r: relu infers type f32[N,4], node has f32[N,5]"},
		{"duplicate name", func(g *Graph) { g.Lookup("r").Name = "x" },
			"v.graph:4:3: %x: defined twice (first at 2:9)"},
		{"invalid name", func(g *Graph) { g.Lookup("r").Name = "a b" },
			"v.graph:4:3: %a b: invalid name"},
		{"operand defined later", func(g *Graph) {
			g.Nodes[2], g.Nodes[3] = g.Nodes[3], g.Nodes[2]
		}, "v.graph:5:3: %y: operand %r is not defined before its use"},
		{"operand of another graph", func(g *Graph) { g.Lookup("y").Args[0] = base(t).Lookup("r") },
			"v.graph:5:3: %y: operand %r is not defined before its use"},
		{"nil operand", func(g *Graph) { g.Lookup("y").Args[0] = nil },
			"v.graph:5:3: %y: nil operand"},
		{"unknown op", func(g *Graph) { g.Lookup("r").Op = "gelu" },
			`v.graph:4:3: %r: unknown op "gelu"`},
		{"attributes not canonical: default", func(g *Graph) {
			g.Lookup("y").Attrs = Attrs{{"axis", Int(-1)}}
		}, "v.graph:5:3: %y: attributes not in canonical form (in the op's order, defaults left out)"},
		{"attributes not canonical: order", func(g *Graph) {
			n := g.Lookup("y")
			n.Op, n.Args, n.Attrs = "sum", n.Args[:1], Attrs{{"keepdims", BoolAttr(true)}, {"axes", Ints(1)}}
			n.Type = Type{DType: F32, Shape: []Dim{Sym("N", 0), Const(1)}}
		}, "v.graph:5:3: %y: attributes not in canonical form (in the op's order, defaults left out)"},
		{"attributes not canonical: kind", func(g *Graph) {
			n := g.Lookup("r")
			n.Op, n.Attrs = "leaky_relu", Attrs{{"alpha", Int(1)}}
		}, "v.graph:4:3: %r: attributes not in canonical form (in the op's order, defaults left out)"},
		{"NaN attribute", func(g *Graph) {
			n := g.Lookup("r")
			n.Op, n.Attrs = "leaky_relu", Attrs{{"alpha", Float(math.NaN())}}
		}, "v.graph:4:3: %r: leaky_relu: attribute alpha: expected a finite number, found NaN"},
		{"leaf with operands", func(g *Graph) { g.Lookup("w").Args = []*Node{g.Lookup("x")} },
			"v.graph:3:9: %w: param has operands"},
		{"leaf with attributes", func(g *Graph) { g.Lookup("x").Attrs = Attrs{{"axis", Int(0)}} },
			"v.graph:2:9: %x: input has attributes"},
		{"param with batch", func(g *Graph) { g.Lookup("w").Type.Shape[0] = Sym("N", 0) },
			"v.graph:3:9: %w: expected a batch-free param, found f32[N]"},
		{"bad dtype", func(g *Graph) { g.Lookup("w").Type.DType = 9 },
			"v.graph:3:9: %w: expected an element type (f32, f64, i32, i64 or bool), found dtype(9)"},
		{"bad symbol", func(g *Graph) {
			for _, n := range g.Nodes {
				for i, d := range n.Type.Shape {
					if d.Sym != "" {
						n.Type.Shape[i].Sym = "two words"
					}
				}
			}
		}, `v.graph:2:9: %x: expected an identifier without dots, other than true and false, as the batch symbol, found "two words"`},
		{"two symbols", func(g *Graph) {
			for _, n := range g.Nodes[2:] {
				n.Type.Shape[0].Sym = "B"
			}
		}, "v.graph:4:3: %r: relu infers type f32[N,4], node has f32[B,4]"},
		{"bad graph name", func(g *Graph) { g.Name = "my model" },
			`v.graph: graph name "my model" is not an identifier`},
		{"partly placed", func(g *Graph) { g.Lookup("x").Device = GPUDevice(1) },
			"v.graph:3:9: %w: no device, though 1 of 4 nodes are placed (place all or none)"},
		{"bad device", func(g *Graph) {
			for _, n := range g.Nodes {
				n.Device = Device{Kind: GPU, Index: -2}
			}
		}, "v.graph:2:9: %x: invalid device (kind 2, index -2): expected cpu or gpu:K with K >= 0"},
		{"cross-device operand", func(g *Graph) {
			for _, n := range g.Nodes {
				n.Device = HostCPU
			}
			g.Lookup("y").Device = GPUDevice(0)
		}, "v.graph:5:3: %y: operand %r is on cpu, node is on gpu:0 (only slice, concat, copy and allreduce read across devices)"},
		{"no outputs", func(g *Graph) { g.Outputs = nil },
			"v.graph:6:3: graph g has no outputs"},
		{"output twice", func(g *Graph) { g.Outputs = append(g.Outputs, g.Outputs[0]) },
			"v.graph:6:3: output %y is listed twice"},
		{"output of another graph", func(g *Graph) { g.Outputs[0] = base(t).Lookup("y") },
			"v.graph:6:3: output %y is not a node of the graph"},
		{"const NaN", func(g *Graph) {
			c, err := g.Const("c", Type{DType: F32, Shape: []Dim{}}, []float64{0})
			if err != nil {
				t.Fatal(err)
			}
			c.Data[0] = math.NaN()
		}, "v.graph: %c: expected a finite f32, found NaN"},
		{"const beyond f32", func(g *Graph) {
			c, err := g.Const("c", Type{DType: F32, Shape: []Dim{}}, []float64{0})
			if err != nil {
				t.Fatal(err)
			}
			c.Data[0] = 1e39
		}, "v.graph: %c: expected a finite f32, found 1e+39"},
		{"const data count", func(g *Graph) {
			c, err := g.Const("c", Type{DType: I32, Shape: []Dim{Const(2)}}, []float64{1, 2})
			if err != nil {
				t.Fatal(err)
			}
			c.Data = c.Data[:1]
		}, "v.graph: %c: expected 2 elements for i32[2], found 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := base(t)
			tc.break_(g)
			err := Verify(g)
			if err == nil {
				t.Fatalf("Verify accepted:\n%s", Format(g))
			}
			if got := strings.Split(err.Error(), "\n")[0]; got != tc.want {
				t.Fatalf("got  %s\nwant %s\n(all: %v)", got, tc.want, err)
			}
		})
	}
}

// TestVerifyStaleIndex checks that Verify does not depend on node IDs and
// the name index being up to date: a graph edited by hand (nodes appended
// without the API) verifies when it is valid and fails when it is not.
func TestVerifyStaleIndex(t *testing.T) {
	g := base(t)
	x := g.Lookup("x")
	n := &Node{Name: "z", Op: "neg", Args: []*Node{x}, Type: x.Type.Clone(), ID: 99}
	g.Nodes = append(g.Nodes, n)
	g.Outputs = append(g.Outputs, n)
	if err := Verify(g); err != nil {
		t.Fatalf("stale IDs: %v", err)
	}
	// IDs all wrong (0), names still unique.
	for _, m := range g.Nodes {
		m.ID = 0
	}
	if err := Verify(g); err != nil {
		t.Fatalf("zero IDs: %v", err)
	}
	// A duplicate name the stale index cannot see.
	n.Name = "r"
	if err := Verify(g); err == nil || !strings.Contains(err.Error(), "%r: defined twice (first at 4:3)") {
		t.Fatalf("duplicate behind a stale index: %v", err)
	}
	// The same node twice in the list.
	n.Name = "z"
	g.Nodes = append(g.Nodes, n)
	if err := Verify(g); err == nil || !strings.Contains(err.Error(), "%z: defined twice") {
		t.Fatalf("node listed twice: %v", err)
	}
}

// TestVerifyManyErrors checks that Verify reports every violation, sorted
// by position, not only the first.
func TestVerifyManyErrors(t *testing.T) {
	g := base(t)
	g.Lookup("y").Type.DType = F64
	g.Lookup("w").Type.Shape[0] = Const(-1)
	g.Outputs = append(g.Outputs, g.Outputs[0])
	want := "v.graph:3:9: %w: expected a positive dimension, found -1\n" +
		"v.graph:5:3: %y: softmax infers type f32[N,4], node has f64[N,4]\n" +
		"v.graph:6:3: output %y is listed twice"
	if err := Verify(g); err == nil || err.Error() != want {
		t.Fatalf("got\n%v\nwant\n%s", err, want)
	}
}

// TestAPIBuiltGraph builds a graph through the API only and checks that
// it verifies and prints the text the parser reads back.
func TestAPIBuiltGraph(t *testing.T) {
	g := New("api")
	x, err := g.Input("x", Type{DType: F32, Shape: []Dim{Sym("N", 8), Const(3)}})
	if err != nil {
		t.Fatal(err)
	}
	alpha := Attrs{{"alpha", Int(1)}}
	a, err := g.Apply("a", "leaky_relu", []*Node{x}, alpha)
	if err != nil {
		t.Fatal(err)
	}
	if alpha[0].Value.Kind != AttrInt {
		t.Fatalf("Apply changed the caller's attributes: %v", alpha)
	}
	s, err := g.Apply("s", "slice", []*Node{a}, Attrs{{"parts", Int(3)}, {"part", Int(2)}, {"axis", Int(0)}, {"split", Ident("balanced")}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Apply("bad", "slice", []*Node{a}, Attrs{{"axis", Int(0)}, {"start", Int(0)}, {"end", Int(99)}}); err == nil {
		t.Fatal("Apply accepted a slice past the end")
	}
	if _, err := g.Apply("x", "neg", []*Node{a}, nil); err == nil || err.Error() != "%x is already defined" {
		t.Fatalf("Apply with a taken name: %v", err)
	}
	if g.Lookup("x") != x {
		t.Fatal("a failed Apply replaced x in the name index")
	}
	if _, err := g.Param("p", Type{DType: F32, Shape: []Dim{Sym("N", 0)}}); err == nil {
		t.Fatal("Param accepted a batch dimension")
	}
	if _, err := g.Const("c", Type{DType: Bool, Shape: []Dim{Const(2)}}, []float64{1, 2}); err == nil {
		t.Fatal("Const accepted 2 as a bool")
	}
	if err := g.SetOutputs(s, s); err == nil {
		t.Fatal("SetOutputs accepted an output twice")
	}
	if err := g.SetOutputs(s, a); err != nil {
		t.Fatal(err)
	}
	want := "graph api {\n" +
		"  input %x: f32[N=8,3]\n" +
		"  %a = leaky_relu %x {alpha=1.0} : f32[N=8,3]\n" +
		"  %s = slice %a {axis=0, part=2, parts=3} : f32[N.2=2,3]\n" +
		"  output %s, %a\n" +
		"}\n"
	if got := Format(g); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	if err := Verify(g); err != nil {
		t.Fatal(err)
	}
	if got := Format(mustParse(t, "api.graph", []byte(want))); got != want {
		t.Fatalf("reparse: got\n%s", got)
	}
}
