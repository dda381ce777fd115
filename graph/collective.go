package graph

import (
	"fmt"
	"slices"
	"strings"
)

// Collectives: ops that combine the values of a group of replicas.
//
// An allreduce group is a set of allreduce nodes with one operand list:
// the partials of the group's replicas, in replica order, each on its own
// device. Every member reads all of them and yields the combined value
// (op: sum, max or min, elementwise, left to right: r0 + r1 + ... +
// r(N-1)) on its own device, which holds one of the partials:
//
//	%g.r0 = allreduce %p.r0, %p.r1 {op=sum} : f32[256,10] @gpu:0
//	%g.r1 = allreduce %p.r0, %p.r1 {op=sum} : f32[256,10] @gpu:1
//
// Unplaced, or with every operand on the node's own device, an allreduce
// is the elementwise combination of its operands on that device.

// collectiveOps lists the ops that combine values of several devices:
// besides slice, concat and copy, the only ones that may read a value
// placed on another device.
var collectiveOps = []string{"allreduce"}

// IsCollective reports whether op combines the values of a group of
// replicas (allreduce).
func IsCollective(op string) bool { return slices.Contains(collectiveOps, op) }

// ReadsAcross reports whether op may read a value placed on another
// device: slice, concat, copy and the collectives.
func ReadsAcross(op string) bool {
	return op == "slice" || op == "concat" || op == "copy" || IsCollective(op)
}

// allreduceOps are the combinations an allreduce computes.
var allreduceOps = []string{"sum", "max", "min"}

// allreduceInfo is the op table's entry for allreduce.
func allreduceInfo() *OpInfo {
	return &OpInfo{Name: "allreduce", MinArgs: 1, MaxArgs: -1,
		Doc:   "the elementwise sum (max, min) of the operands, one per replica of a group, left to right; a group's every member yields it on its own device",
		Attrs: []AttrSpec{{Name: "op", Kind: SpecEnum, Enum: allreduceOps, Default: def(Ident("sum"))}},
		infer: inferAllreduce}
}

// inferAllreduce: operands of one float type; the result has it.
func inferAllreduce(n *Node, a []Type) (Type, error) {
	first := a[0]
	if first.DType != F32 && first.DType != F64 {
		return Type{}, fmt.Errorf("expected floating-point operands, found %s", first)
	}
	for _, t := range a[1:] {
		if !t.Equal(first) {
			return Type{}, fmt.Errorf("expected operands like %s, found %s", first, t)
		}
	}
	return first.Clone(), nil
}

// AllreduceGroup returns the members of n's group in g: the allreduce
// nodes with n's operand list, in graph order.
func AllreduceGroup(g *Graph, n *Node) []*Node {
	var out []*Node
	for _, m := range g.Nodes {
		if m.Op == n.Op && slices.Equal(m.Args, n.Args) {
			out = append(out, m)
		}
	}
	return out
}

// verifyCollectives checks the allreduce groups of a placed graph: a
// member's operands are all on its own device (a local combination), or
// on distinct devices, one of them its own; the members of a group (the
// allreduce nodes that read a partial) agree on the operands, their
// order and the op, and are on distinct devices.
func (v *verifier) verifyCollectives() {
	type group struct {
		first *Node
		devs  []Device
	}
	byArg := map[*Node]*group{}
	for _, n := range v.g.Nodes {
		if !IsCollective(n.Op) || !n.Device.IsSet() || len(n.Args) == 0 {
			continue
		}
		local := true
		for _, a := range n.Args {
			local = local && a.Device == n.Device
		}
		if local {
			continue
		}
		var devs []string
		own := false
		ok := true
		for _, a := range n.Args {
			if slices.Contains(devs, a.Device.String()) {
				v.errorf(n, "operands %s: two are on %s (expected one operand per replica, each on its own device)", argNames(n.Args), a.Device)
				ok = false
				break
			}
			devs = append(devs, a.Device.String())
			own = own || a.Device == n.Device
		}
		if !ok {
			continue
		}
		if !own {
			v.errorf(n, "node is on %s, which holds none of its operands %s (a member of a group runs where one of the partials is)", n.Device, argNames(n.Args))
			continue
		}
		var gr *group
		for _, a := range n.Args {
			if gr = byArg[a]; gr != nil {
				break
			}
		}
		if gr == nil {
			gr = &group{first: n}
			for _, a := range n.Args {
				byArg[a] = gr
			}
		}
		f := gr.first
		switch {
		case !slices.Equal(f.Args, n.Args):
			v.errorf(n, "in the group of %%%s, expected the operands %s in that order, found %s", f.Name, argNames(f.Args), argNames(n.Args))
		case f.StringAttr("op", "sum") != n.StringAttr("op", "sum"):
			v.errorf(n, "in the group of %%%s, expected op=%s, found op=%s", f.Name, f.StringAttr("op", "sum"), n.StringAttr("op", "sum"))
		case slices.Contains(gr.devs, n.Device):
			v.errorf(n, "in the group of %%%s, two members are on %s", f.Name, n.Device)
		}
		gr.devs = append(gr.devs, n.Device)
	}
}

func argNames(ns []*Node) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = "%" + n.Name
	}
	return strings.Join(s, ", ")
}
