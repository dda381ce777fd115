// Package graphutil holds helpers the graph-to-graph passes share: fresh
// names, copying a node into another graph, and pruning a graph to what
// its outputs need.
package graphutil

import (
	"fmt"
	"strconv"

	"multigpu/graph"
)

// Fresh returns base, or base_2, base_3, ... whichever names no node of g.
func Fresh(g *graph.Graph, base string) string {
	name := base
	for i := 2; g.Lookup(name) != nil; i++ {
		name = base + "_" + strconv.Itoa(i)
	}
	return name
}

// Copy adds to dst a node like n (an input, param, const or op node) with
// operands args (nodes of dst), keeping its name, position and device.
func Copy(dst *graph.Graph, n *graph.Node, args []*graph.Node) (*graph.Node, error) {
	return CopyAs(dst, n, n.Name, args, n.Attrs)
}

// CopyAs is Copy with another name and other attributes.
func CopyAs(dst *graph.Graph, n *graph.Node, name string, args []*graph.Node, attrs graph.Attrs) (*graph.Node, error) {
	var c *graph.Node
	var err error
	switch n.Op {
	case graph.OpInput:
		c, err = dst.Input(name, n.Type)
	case graph.OpParam:
		c, err = dst.Param(name, n.Type)
	case graph.OpConst:
		c, err = dst.Const(name, n.Type, n.Data)
	default:
		c, err = dst.Apply(name, n.Op, args, attrs.Clone())
	}
	if err != nil {
		return nil, err
	}
	c.Pos, c.Device = n.Pos, n.Device
	return c, nil
}

// Prune returns a copy of g with only the nodes its outputs and assigns
// (graph.Roots) depend on, in their order, and the same outputs. Inputs
// and params nothing needs are dropped too.
func Prune(g *graph.Graph) (*graph.Graph, error) {
	needed := make(map[*graph.Node]bool, len(g.Nodes))
	for _, o := range graph.Roots(g) {
		needed[o] = true
	}
	for i := len(g.Nodes) - 1; i >= 0; i-- {
		if n := g.Nodes[i]; needed[n] {
			for _, a := range n.Args {
				needed[a] = true
			}
		}
	}
	out := graph.New(g.Name)
	out.File, out.OutputPos = g.File, g.OutputPos
	copies := make(map[*graph.Node]*graph.Node, len(needed))
	for _, n := range g.Nodes {
		if !needed[n] {
			continue
		}
		args := make([]*graph.Node, len(n.Args))
		for i, a := range n.Args {
			args[i] = copies[a]
		}
		c, err := Copy(out, n, args)
		if err != nil {
			return nil, fmt.Errorf("%%%s: %v", n.Name, err)
		}
		copies[n] = c
	}
	outs := make([]*graph.Node, len(g.Outputs))
	for i, o := range g.Outputs {
		outs[i] = copies[o]
	}
	if err := out.SetOutputs(outs...); err != nil {
		return nil, err
	}
	return out, nil
}

// ShapeAttr returns a reshape's shape attribute for type t: sizes, and
// the batch symbol (times its multiple) where t has it.
func ShapeAttr(t graph.Type) graph.AttrValue {
	l := make([]graph.AttrValue, len(t.Shape))
	for i, d := range t.Shape {
		if d.Sym == "" {
			l[i] = graph.Int(d.Size)
			continue
		}
		l[i] = graph.Ident(d.SymName())
		l[i].Int = d.Mul
	}
	return graph.AttrValue{Kind: graph.AttrList, List: l}
}
