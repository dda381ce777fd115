package onnx

import (
	"fmt"
	"slices"

	"multigpu/graph"
)

// rebatch turns the import of a fixed-batch export, made with the batch
// bound to the file's size, into one whose batch is any size: the inputs'
// batch is unbound and every node's type is inferred again. The reshape
// targets that held the batch already name it (reshapeTarget, strict);
// any other size the exporter baked in from the file's batch now fails
// to type-check, and the error names the node.
func (im *importer) rebatch() (*Model, error) {
	m := im.model
	if im.batch.Sym == "" {
		return nil, fmt.Errorf("onnx: the batch can be re-sized only when an input carries it: mark its axis (--batch-axis NAME=AXIS)")
	}
	bound := im.batch.Bound
	if bound == 0 {
		return m, nil // the batch is dynamic already
	}
	if len(m.Defaults) > 0 {
		names := make([]string, 0, len(m.Defaults))
		for n := range m.Defaults {
			names = append(names, "%"+n)
		}
		slices.Sort(names)
		return nil, fmt.Errorf("onnx: the model was exported at a fixed batch of %d and cannot be re-batched: the constants %v hold data for %d samples", bound, names, bound)
	}
	old := m.Graph
	g := graph.New(old.Name)
	nodes := make(map[*graph.Node]*graph.Node, len(old.Nodes))
	for _, n := range old.Nodes {
		var nn *graph.Node
		var err error
		switch n.Op {
		case graph.OpInput:
			t := n.Type.Clone()
			for i, d := range t.Shape {
				if d.Sym != "" {
					t.Shape[i].Bound = 0
				}
			}
			nn, err = g.Input(n.Name, t)
		case graph.OpParam:
			nn, err = g.Param(n.Name, n.Type)
		case graph.OpConst:
			nn, err = g.Const(n.Name, n.Type, n.Data)
		default:
			args := make([]*graph.Node, len(n.Args))
			for i, a := range n.Args {
				args[i] = nodes[a]
			}
			nn, err = g.Apply(n.Name, n.Op, args, n.Attrs)
		}
		if err != nil {
			return nil, fmt.Errorf("onnx: the model was exported at a fixed batch of %d and cannot be re-batched: %%%s (%s) %s: %v",
				bound, n.Name, n.Op, im.origin(n.Name), err)
		}
		nodes[n] = nn
	}
	outs := make([]*graph.Node, len(old.Outputs))
	for i, o := range old.Outputs {
		outs[i] = nodes[o]
	}
	if err := g.SetOutputs(outs...); err != nil {
		return nil, fmt.Errorf("onnx: internal error re-batching: %v", err)
	}
	if err := graph.Verify(g); err != nil {
		return nil, fmt.Errorf("onnx: internal error: the re-batched graph does not verify: %v", err)
	}
	m.Graph = g
	im.note("the model was exported at a fixed batch of %d; its batch is re-sized (N): shapes baked in from that size were traced from the marked batch axes", bound)
	return m, nil
}

// origin says which ONNX value an IR node computes, when the importer
// named it after one: "(ONNX value "/enc/Reshape_output_0")".
func (im *importer) origin(ir string) string {
	for onnxName, r := range im.reserved {
		if r == ir {
			return fmt.Sprintf("(ONNX value %q)", onnxName)
		}
	}
	return "(made by the importer)"
}
