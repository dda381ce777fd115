package graph

import "fmt"

// State updated in place: an assign node says which value a param (or a
// replica's resident copy of one) holds after a run.
//
//	%w.next = where %ok, %w.new, %w : f32[784,1024]
//	%w.assign = assign %w, %w.next : f32[784,1024]
//
// The target, operand 0, is a param, or a copy of a param on another
// device (the copy a replica keeps resident across runs); the value,
// operand 1, has the target's type, is computed on the target's device,
// and is no leaf. After a run that succeeds, the target holds the value;
// during the run every reader of the target sees the value it held
// before. Each target is assigned at most once. An assign is a root of
// the graph, like an output (Roots): what it reads is computed even when
// no output needs it. Its own value is the value assigned; it may be an
// output, but no node reads it (nodes read the value).

// OpAssign is the op of state updates.
const OpAssign = "assign"

// assignInfo is the op table's entry for assign.
func assignInfo() *OpInfo {
	return &OpInfo{Name: OpAssign, MinArgs: 2, MaxArgs: 2,
		Doc:   "makes the target (a param, or a resident copy of one on another device) hold the value, of its type, after the run; yields the value",
		infer: inferAssign}
}

// inferAssign: a batch-free value of the target's type.
func inferAssign(n *Node, a []Type) (Type, error) {
	if a[0].HasSymbol() {
		return Type{}, fmt.Errorf("expected a batch-free target, found %s", a[0])
	}
	if !a[1].Equal(a[0]) {
		return Type{}, fmt.Errorf("expected a value of the target's type %s, found %s", a[0], a[1])
	}
	return a[1].Clone(), nil
}

// Assigns returns the assign nodes of g, in graph order.
func Assigns(g *Graph) []*Node {
	var out []*Node
	for _, n := range g.Nodes {
		if n.Op == OpAssign {
			out = append(out, n)
		}
	}
	return out
}

// Roots returns what a run of g computes: its outputs, then the assign
// nodes that are not outputs, in graph order.
func Roots(g *Graph) []*Node {
	out := append([]*Node(nil), g.Outputs...)
	for _, n := range g.Nodes {
		if n.Op == OpAssign && !containsNode(g.Outputs, n) {
			out = append(out, n)
		}
	}
	return out
}

func containsNode(ns []*Node, n *Node) bool {
	for _, m := range ns {
		if m == n {
			return true
		}
	}
	return false
}

// AssignedParam returns the param an assign target holds: the target
// itself, or the param it copies; nil when target is neither.
func AssignedParam(target *Node) *Node {
	switch {
	case target.Op == OpParam:
		return target
	case target.Op == "copy" && len(target.Args) == 1 && target.Args[0].Op == OpParam && target.Device != target.Args[0].Device:
		return target.Args[0]
	}
	return nil
}

// verifyAssigns checks every assign: its target is a param or a resident
// copy of one, assigned once; its value is computed (no leaf) and
// assigned once; no node reads an assign.
func (v *verifier) verifyAssigns() {
	var targets, values map[*Node]*Node
	for _, n := range v.g.Nodes {
		for _, a := range n.Args {
			if a != nil && a.Op == OpAssign {
				v.errorf(n, "operand %%%s is an assign: read the value it assigns", a.Name)
			}
		}
		if n.Op != OpAssign || len(n.Args) != 2 {
			continue
		}
		t, val := n.Args[0], n.Args[1]
		if AssignedParam(t) == nil {
			v.errorf(n, "target %%%s is a %s: expected a param, or a copy of a param on another device (a replica's resident copy)", t.Name, t.Op)
			continue
		}
		if val.IsLeaf() {
			v.errorf(n, "value %%%s is a %s: expected a computed value", val.Name, val.Op)
			continue
		}
		if targets == nil {
			targets, values = map[*Node]*Node{}, map[*Node]*Node{}
		}
		if first := targets[t]; first != nil {
			v.errorf(n, "target %%%s is assigned twice (first by %%%s)", t.Name, first.Name)
		}
		if first := values[val]; first != nil {
			v.errorf(n, "value %%%s is assigned twice (first by %%%s): give each target a value of its own", val.Name, first.Name)
		}
		targets[t], values[val] = n, n
	}
}
