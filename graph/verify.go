package graph

import (
	"fmt"
)

// Verify checks the invariants of g and returns every violation it finds,
// as an ErrorList sorted by position:
//   - every node has a valid, unique name and is defined before its uses
//     (so there are no cycles);
//   - every node's type is the one its op infers, and its attributes are
//     valid; leaves have well-formed types and data;
//   - the graph has one batch symbol, bound to one size or to none;
//   - devices are either absent everywhere or present everywhere, and only
//     slice, concat, copy and allreduce read a value placed on another
//     device, and an allreduce group's members agree (graph/collective.go);
//   - an assign's target is a param or a resident copy of one, and no
//     target or value is assigned twice (graph/assign.go);
//   - the outputs are distinct nodes of g.
func Verify(g *Graph) error {
	v := verifier{g: g}
	v.run()
	v.errs.Sort()
	return v.errs.Err()
}

// verifier collects the violations Verify finds in one graph.
type verifier struct {
	g    *Graph
	errs ErrorList
}

// errorf records a violation at node n (nil: the graph), up to 50.
func (v *verifier) errorf(n *Node, format string, args ...any) {
	if len(v.errs) >= 50 {
		return
	}
	var pos Pos
	prefix := ""
	if n != nil {
		pos = n.Pos
		prefix = "%" + n.Name + ": "
	}
	v.errs = append(v.errs, &Error{File: v.g.File, Pos: pos, Msg: prefix + fmt.Sprintf(format, args...)})
}

// run checks the whole graph: names, order, batch symbol, devices, outputs.
func (v *verifier) run() {
	g := v.g
	if !validIdent(g.Name) {
		v.errs = append(v.errs, &Error{File: g.File, Msg: fmt.Sprintf("graph name %q is not an identifier", g.Name)})
	}
	// A graph built by Parse or through the API keeps every node's ID equal
	// to its index and its name index complete; checking those is cheaper
	// than building maps, which are built only for a graph that does not.
	var index map[*Node]int    // node -> first index, built on demand
	var names map[string]*Node // built once the name index fails to prove names unique
	indexed := g.byName != nil && len(g.byName) == len(g.Nodes)
	if !indexed {
		names = make(map[string]*Node, len(g.Nodes))
	}
	definedBefore := func(a *Node, i int) bool {
		if a == nil {
			return false
		}
		if a.ID >= 0 && a.ID < i && g.Nodes[a.ID] == a {
			return true
		}
		if index == nil {
			index = make(map[*Node]int, len(g.Nodes))
			for j, m := range g.Nodes {
				if _, ok := index[m]; !ok {
					index[m] = j
				}
			}
		}
		j, ok := index[a]
		return ok && j < i
	}
	placed := 0
	sym, symNode := "", (*Node)(nil)
	var bound int64
	for i, n := range g.Nodes {
		if n == nil {
			v.errorf(nil, "node %d is nil", i)
			return
		}
		if !validName(n.Name) {
			v.errorf(n, "invalid name")
		}
		if indexed && g.byName[n.Name] != n {
			indexed = false
			names = make(map[string]*Node, len(g.Nodes))
			for _, m := range g.Nodes[:i] { // distinct: each is its name's entry
				names[m.Name] = m
			}
		}
		if !indexed {
			if old, dup := names[n.Name]; dup {
				v.errorf(n, "defined twice (first at %s)", old.Pos)
			} else {
				names[n.Name] = n
			}
		}
		for _, a := range n.Args {
			if !definedBefore(a, i) {
				if a == nil {
					v.errorf(n, "nil operand")
				} else {
					v.errorf(n, "operand %%%s is not defined before its use", a.Name)
				}
				return // types below would be meaningless
			}
		}
		if n.Device.IsSet() {
			placed++
			if d := n.Device; d.Kind > GPU || d.Index < 0 || (d.Kind == CPU && d.Index != 0) {
				v.errorf(n, "invalid device (kind %d, index %d): expected cpu or gpu:K with K >= 0", d.Kind, d.Index)
			}
		}
		v.node(n)
		for _, d := range n.Type.Shape {
			if d.Sym == "" {
				continue
			}
			if sym == "" {
				sym, symNode = d.Sym, n
			} else if d.Sym != sym {
				v.errorf(n, "graph has one batch symbol, %s (from %%%s), found %s", sym, symNode.Name, d.Sym)
			}
			if n.Op == OpInput && d.IsBatch() {
				if bound == 0 {
					bound = d.Bound
				} else if d.Bound != bound {
					v.errorf(n, "batch bound to %d elsewhere, found %s", bound, d)
				}
			}
		}
	}
	if bound != 0 {
		for _, n := range g.Inputs() {
			if ax := n.Type.BatchAxis(); ax >= 0 && n.Type.Shape[ax].Bound != bound {
				v.errorf(n, "batch bound to %d elsewhere, found %s", bound, n.Type.Shape[ax])
			}
		}
	}
	if placed != 0 && placed != len(g.Nodes) {
		for _, n := range g.Nodes {
			if !n.Device.IsSet() {
				v.errorf(n, "no device, though %d of %d nodes are placed (place all or none)", placed, len(g.Nodes))
				break
			}
		}
	}
	if placed != 0 {
		v.verifyCollectives()
	}
	v.verifyAssigns()
	if len(g.Outputs) == 0 {
		v.errs = append(v.errs, &Error{File: g.File, Pos: g.OutputPos, Msg: "graph " + g.Name + " has no outputs"})
	}
	seen := map[*Node]bool{}
	for _, o := range g.Outputs {
		if !definedBefore(o, len(g.Nodes)) {
			name := "<nil>"
			if o != nil {
				name = o.Name
			}
			v.errs = append(v.errs, &Error{File: g.File, Pos: g.OutputPos, Msg: "output %" + name + " is not a node of the graph"})
		} else if seen[o] {
			v.errs = append(v.errs, &Error{File: g.File, Pos: g.OutputPos, Msg: "output %" + o.Name + " is listed twice"})
		}
		seen[o] = true
	}
}

// node checks one node: a leaf's type and data, or an op's inferred type,
// canonical attributes and devices of its operands.
func (v *verifier) node(n *Node) {
	if n.IsLeaf() && len(n.Attrs) != 0 {
		v.errorf(n, "%s has attributes", n.Op)
	}
	switch n.Op {
	case OpInput, OpParam:
		if len(n.Args) != 0 {
			v.errorf(n, "%s has operands", n.Op)
		}
		if err := checkLeafType(n.Type); err != nil {
			v.errorf(n, "%v", err)
		} else if n.Op == OpParam && n.Type.HasSymbol() {
			v.errorf(n, "expected a batch-free param, found %s", n.Type)
		}
		return
	case OpConst:
		if len(n.Args) != 0 {
			v.errorf(n, "const has operands")
		}
		if err := checkConstData(n.Type, n.Data); err != nil {
			v.errorf(n, "%v", err)
		}
		return
	}
	info := LookupOp(n.Op)
	if info == nil {
		v.errorf(n, "unknown op %q", n.Op)
		return
	}
	t, err := Infer(n)
	if err != nil {
		v.errorf(n, "%v", err)
		return
	}
	if !t.Equal(n.Type) {
		v.errorf(n, "%s infers type %s, node has %s", n.Op, t, n.Type)
	}
	if !info.canonical(n.Attrs) {
		v.errorf(n, "attributes not in canonical form (in the op's order, defaults left out)")
	}
	if n.Device.IsSet() && !ReadsAcross(n.Op) {
		for _, a := range n.Args {
			if a.Device != n.Device {
				v.errorf(n, "operand %%%s is on %s, node is on %s (only slice, concat, copy and allreduce read across devices)", a.Name, a.Device, n.Device)
			}
		}
	}
}
