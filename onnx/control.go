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
// is known only at run time and computed from the data (openWakeWord's
// hey_jarvis runs a verifier when the first score passes 0.5) computes
// both branches and selects with where: exact, as the branches have no
// side effects; one whose condition tests a scalar input (a sample rate)
// is refused, asking for its value, and so are Loop and Scan.

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
		return c.selectIf(v, branches)
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
		return branchErr(fmt.Sprintf("the %s branch (the condition %q is %v)", name, v.onnx, which == 1), err)
	}
	return nil
}

// branchErr says in which branch err, from a node of it, happened.
func branchErr(where string, err error) error {
	var ne *NodeError
	if errors.As(err, &ne) {
		who := fmt.Sprintf("node %q", ne.Name)
		if ne.Name == "" {
			who = fmt.Sprintf("node #%d (output %q)", ne.Index, ne.Output)
		}
		return fmt.Errorf("in %s, %s (%s): %w", where, who, ne.OpType, ne.Err)
	}
	return fmt.Errorf("in %s: %w", where, err)
}

// selectIf imports an If whose condition v is known only at run time as
// both branches and a where per output: cond ? then : else. The condition
// must be computed from data inputs (one that tests a scalar input is
// refused, asking for its value: that If should fold), must be a bool
// that broadcasts to each output without changing its shape, and the
// branches' outputs must agree in type. A batch-carrying condition
// ([N,1]) selects per sample.
func (c *nodeCtx) selectIf(v *value, branches [2]*graphProto) error {
	im := c.im
	ins := im.dependsOn(v.onnx)
	if len(ins) == 0 {
		return im.runTimeCondition(v.onnx)
	}
	for _, in := range ins {
		if n := im.values[in].node; n == nil || n.Type.Rank() == 0 {
			return im.runTimeCondition(v.onnx)
		} else if elems, ok := n.Type.Elems(); ok && elems == 1 && n.Type.BatchAxis() < 0 {
			return im.runTimeCondition(v.onnx)
		}
	}
	cond, err := c.in(0)
	if err != nil {
		return err
	}
	if cond.Type.DType != graph.Bool {
		return fmt.Errorf("the condition %q is %s, expected a bool", v.onnx, cond.Type)
	}
	var outs [2][]*value
	for i, name := range []string{"else", "then"} {
		if outs[i], err = c.inlineBranch(branches[i]); err != nil {
			return branchErr(fmt.Sprintf("the %s branch (computed with the other, the condition %q being known only at run time)", name, v.onnx), err)
		}
	}
	for k, o := range c.n.outputs {
		if o == "" {
			continue
		}
		var ab [2]*graph.Node
		for i := range ab {
			if p := outs[i][k].poison; p != "" {
				return fmt.Errorf("output %d of the %s branch: %s", k, []string{"else", "then"}[i], p)
			}
			if ab[i], err = im.materialize(outs[i][k]); err != nil {
				return fmt.Errorf("output %d of the %s branch: %v", k, []string{"else", "then"}[i], err)
			}
		}
		if ab[0].Type.String() != ab[1].Type.String() {
			return fmt.Errorf("the condition %q is known only at run time, and output %d of the branches differs in type (then %s, else %s), so the If can be neither folded nor computed as a where of both", v.onnx, k, ab[1].Type, ab[0].Type)
		}
		y, err := c.op("where", []*graph.Node{cond, ab[1], ab[0]}, nil)
		if err != nil {
			return err
		}
		if y.Type.String() != ab[1].Type.String() {
			return fmt.Errorf("the condition %q (%s) is known only at run time and does not broadcast to output %d of the branches (%s) without changing its shape, so the If can be neither folded nor computed as a where of both", v.onnx, cond.Type, k, ab[1].Type)
		}
		if err := c.set(k, y); err != nil {
			return err
		}
	}
	return nil
}

// inline imports the nodes of an If's branch and binds the If's outputs to
// the branch's.
func (c *nodeCtx) inline(gp *graphProto) error {
	im := c.im
	outs, err := c.inlineBranch(gp)
	if err != nil {
		return err
	}
	for k, bv := range outs {
		if bv == nil {
			continue
		}
		out := im.values[c.n.outputs[k]]
		out.node, out.data, out.vec, out.fold, out.poison = bv.node, bv.data, bv.vec, bv.fold, bv.poison
		if n := bv.node; n != nil && n.ID >= c.start && n.Op != graph.OpParam && n.Op != graph.OpConst && n.Op != graph.OpInput {
			im.rename[n] = out.ir // the If's output names what the branch computed
		}
		c.outs[k] = true
	}
	return nil
}

// inlineBranch imports the nodes of an If's branch and returns the values
// of its outputs, one per output of the If (nil where the If leaves the
// output unnamed).
func (c *nodeCtx) inlineBranch(gp *graphProto) ([]*value, error) {
	im := c.im
	if len(gp.inputs) > 0 {
		return nil, fmt.Errorf("the branch graph %q has %d inputs, expected none", gp.name, len(gp.inputs))
	}
	if gp.sparseInits > 0 {
		return nil, fmt.Errorf("the branch graph %q has sparse initializers, which are not supported", gp.name)
	}
	if len(gp.outputs) != len(c.n.outputs) {
		return nil, fmt.Errorf("the branch graph %q has %d outputs, but the node has %d", gp.name, len(gp.outputs), len(c.n.outputs))
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
			return nil, fmt.Errorf("initializer %d of the branch has no name", i)
		}
		f, empty, err := emptyTensor(t, fmt.Sprintf("initializer %q", t.name))
		var d *tensor.Dense
		if !empty {
			d, err = readTensor(t)
		}
		if err != nil {
			return nil, fmt.Errorf("initializer %q: %v", t.name, err)
		}
		v, err := define(t.name)
		if err != nil {
			return nil, err
		}
		v.data, v.fold = d, f
	}
	for _, n := range gp.nodes {
		for _, o := range n.outputs {
			if o == "" {
				continue
			}
			if _, err := define(o); err != nil {
				return nil, im.nodeErr(n, err)
			}
			im.producers[o] = n
		}
	}
	for _, n := range gp.nodes {
		if err := im.convertNode(n); err != nil {
			return nil, err
		}
	}
	outs := make([]*value, len(c.n.outputs))
	for k, vi := range gp.outputs {
		if c.n.outputs[k] == "" {
			continue
		}
		bv := im.values[vi.name]
		if bv == nil || bv.node == nil && bv.data == nil && bv.vec == nil && bv.fold == nil && bv.poison == "" {
			return nil, fmt.Errorf("branch output %q is not computed by any node of the branch or the graph around it", vi.name)
		}
		outs[k] = bv
	}
	return outs, nil
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
