package onnx

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"gorgonia.org/tensor"

	"multigpu/graph"
)

// Control flow. An If whose condition is known at import time (it tests
// shapes, or a scalar input bound by Options.Scalars or Constants, such as
// a sample rate) is folded: the chosen branch's nodes are imported in
// place, reading values of the enclosing graph by name, and its outputs
// become the If's. The other branch is never read. An If whose condition
// is known only at run time, and Loop and Scan, are refused.

// convertIf folds an If whose condition is known at import time.
func convertIf(c *nodeCtx) error {
	branches := [2]*graphProto{}
	for i, name := range []string{"else_branch", "then_branch"} {
		a, err := c.attr(name, attrTypeGraph)
		if err != nil {
			return err
		}
		if a == nil || a.g == nil {
			return fmt.Errorf("missing attribute %s (a graph)", name)
		}
		branches[i] = a.g
	}
	if !c.hasIn(0) {
		return fmt.Errorf("missing input 0 (the condition)")
	}
	v, err := c.lookup(0)
	if err != nil {
		return fmt.Errorf("the condition is not known at import time: %v", err)
	}
	t := foldedOf(v)
	if t == nil {
		return c.im.runTimeCondition(v.onnx)
	}
	if t.dt != graph.Bool || t.size() != 1 {
		return fmt.Errorf("the condition %q is %s of shape %v, expected a single bool", v.onnx, t.dt, t.shape)
	}
	which := 0
	if t.ints[0].c != 0 {
		which = 1
	}
	name := [2]string{"else", "then"}[which]
	if err := c.inline(branches[which]); err != nil {
		var ne *NodeError
		if errors.As(err, &ne) {
			who := fmt.Sprintf("node %q", ne.Name)
			if ne.Name == "" {
				who = fmt.Sprintf("node #%d (output %q)", ne.Index, ne.Output)
			}
			return fmt.Errorf("in the %s branch (the condition %q is %v), %s (%s): %w", name, v.onnx, which == 1, who, ne.OpType, ne.Err)
		}
		return fmt.Errorf("in the %s branch: %w", name, err)
	}
	return nil
}

// inline imports the nodes of an If's branch and binds the If's outputs to
// the branch's.
func (c *nodeCtx) inline(gp *graphProto) error {
	im := c.im
	if len(gp.inputs) > 0 {
		return fmt.Errorf("the branch graph %q has %d inputs, expected none", gp.name, len(gp.inputs))
	}
	if gp.sparseInits > 0 {
		return fmt.Errorf("the branch graph %q has sparse initializers, which are not supported", gp.name)
	}
	if len(gp.outputs) != len(c.n.outputs) {
		return fmt.Errorf("the branch graph %q has %d outputs, but the node has %d", gp.name, len(gp.outputs), len(c.n.outputs))
	}
	define := func(name string) (*value, error) {
		if im.values[name] != nil {
			return nil, fmt.Errorf("%q is defined both inside the branch and outside it", name)
		}
		v := &value{onnx: name, ir: im.fresh(name)}
		im.values[name] = v
		im.reserved[name] = v.ir
		return v, nil
	}
	for i, t := range gp.initializers {
		if t.name == "" {
			return fmt.Errorf("initializer %d of the branch has no name", i)
		}
		f, empty, err := emptyTensor(t, fmt.Sprintf("initializer %q", t.name))
		var d *tensor.Dense
		if !empty {
			d, err = readTensor(t)
		}
		if err != nil {
			return fmt.Errorf("initializer %q: %v", t.name, err)
		}
		v, err := define(t.name)
		if err != nil {
			return err
		}
		v.data, v.fold = d, f
	}
	for _, n := range gp.nodes {
		for _, o := range n.outputs {
			if o == "" {
				continue
			}
			if _, err := define(o); err != nil {
				return im.nodeErr(n, err)
			}
			im.producers[o] = n
		}
	}
	for _, n := range gp.nodes {
		if err := im.convertNode(n); err != nil {
			return err
		}
	}
	for k, vi := range gp.outputs {
		o := c.n.outputs[k]
		if o == "" {
			continue
		}
		bv := im.values[vi.name]
		if bv == nil || bv.node == nil && bv.data == nil && bv.vec == nil && bv.fold == nil && bv.poison == "" {
			return fmt.Errorf("branch output %q is not computed by any node of the branch or the graph around it", vi.name)
		}
		out := im.values[o]
		out.node, out.data, out.vec, out.fold, out.poison = bv.node, bv.data, bv.vec, bv.fold, bv.poison
		if n := bv.node; n != nil && n.ID >= c.start && n.Op != graph.OpParam && n.Op != graph.OpConst && n.Op != graph.OpInput {
			im.rename[n] = out.ir // the If's output names what the branch computed
		}
		c.outs[k] = true
	}
	return nil
}

// runTimeCondition refuses an If whose condition name is computed at run
// time, saying from which graph inputs.
func (im *importer) runTimeCondition(name string) error {
	ins := im.dependsOn(name)
	if len(ins) == 0 {
		return fmt.Errorf("the condition %q is computed at run time, so the If cannot be folded at import time", name)
	}
	var parts, scalars []string
	for _, in := range ins {
		v := im.values[in]
		t := "?"
		if v.node != nil {
			t = v.node.Type.String()
			if n, _ := v.node.Type.Elems(); n == 1 {
				scalars = append(scalars, in)
			}
		}
		parts = append(parts, fmt.Sprintf("%q (%s)", in, t))
	}
	msg := fmt.Sprintf("the condition %q is computed at run time from input %s, so the If cannot be folded at import time", name, strings.Join(parts, ", input "))
	if len(scalars) > 0 {
		var flags []string
		for _, s := range scalars {
			flags = append(flags, "--value "+s+"=V")
		}
		msg += fmt.Sprintf("; bind it with %s (Options.Scalars)", strings.Join(flags, " "))
	}
	return errors.New(msg)
}

// dependsOn returns the graph inputs, fed at run time, that the value name
// is computed from, sorted.
func (im *importer) dependsOn(name string) []string {
	seen := map[string]bool{}
	found := map[string]bool{}
	var walk func(s string)
	walk = func(s string) {
		if s == "" || seen[s] {
			return
		}
		seen[s] = true
		if n := im.producers[s]; n != nil {
			for _, in := range n.inputs {
				walk(in)
			}
			return
		}
		if v := im.values[s]; v != nil && v.node != nil && v.node.Op == graph.OpInput {
			found[s] = true
		}
	}
	walk(name)
	out := make([]string, 0, len(found))
	for s := range found {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// convertLoop refuses Loop and Scan.
func convertLoop(c *nodeCtx) error {
	return fmt.Errorf("%s is not supported: the importer does not unroll loops (of control flow, only an If whose condition is known at import time is folded)", c.n.opType)
}

// foldOnly is the converter of ops the importer computes only at import
// time: it says which input is not known then.
func foldOnly(c *nodeCtx) error {
	for i := range c.n.inputs {
		if !c.hasIn(i) {
			continue
		}
		v, err := c.lookup(i)
		if err != nil {
			return err
		}
		if foldedOf(v) == nil {
			return fmt.Errorf("%s is computed only at import time, on values known then (constants, shapes and what is computed from them), but input %d %q is computed at run time", c.n.opType, i, v.onnx)
		}
	}
	return fmt.Errorf("%s could not be computed at import time: its inputs are over %s elements or of element types it does not take", c.n.opType, strconv.Itoa(maxFoldElems))
}
