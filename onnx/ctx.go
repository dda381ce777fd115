package onnx

import (
	"fmt"
	"sort"
	"strings"

	"gorgonia.org/tensor"

	"multigpu/graph"
)

// nodeCtx is the state of converting one ONNX node.
type nodeCtx struct {
	im    *importer
	n     *nodeProto
	def   *opDef
	attrs map[string]*attrProto
	outs  []bool // which outputs are bound
	// start is the number of IR nodes before this node's: the ones after
	// it are this node's, which set may rename.
	start int
}

func (c *nodeCtx) opset() int64 { return c.im.opset }

// checkAttrs refuses attributes the op's converter does not know.
func (c *nodeCtx) checkAttrs() error {
	for _, a := range c.n.attrs {
		if a.ref != "" {
			return fmt.Errorf("attribute %q refers to a function attribute (%q), which is not supported", a.name, a.ref)
		}
		if !c.def.knows(a.name) {
			known := "no attributes"
			if len(c.def.attrs) > 0 {
				known = strings.Join(c.def.attrs, ", ")
			}
			return fmt.Errorf("unsupported attribute %q (%s supports %s)", a.name, c.n.opType, known)
		}
		if c.attrs[a.name] != nil {
			return fmt.Errorf("attribute %q is given twice", a.name)
		}
		c.attrs[a.name] = a
	}
	return nil
}

func (c *nodeCtx) has(name string) bool { return c.attrs[name] != nil }

func (c *nodeCtx) attr(name string, typ uint64) (*attrProto, error) {
	a := c.attrs[name]
	if a == nil {
		return nil, nil
	}
	if a.typ != typ {
		return nil, fmt.Errorf("attribute %q: expected %s, found %s", name, attrTypeNames[typ], attrTypeName(a.typ))
	}
	return a, nil
}

func attrTypeName(t uint64) string {
	if s, ok := attrTypeNames[t]; ok {
		return s
	}
	return fmt.Sprintf("attribute type %d", t)
}

// int returns an INT attribute, or def when absent.
func (c *nodeCtx) int(name string, def int64) (int64, error) {
	a, err := c.attr(name, attrTypeInt)
	if a == nil || err != nil {
		return def, err
	}
	return a.i, nil
}

// axis returns the INT attribute axis (def when absent) as an axis in
// [0, rank), a negative one counting from the end.
func (c *nodeCtx) axis(def int64, rank int) (int, error) {
	a, err := c.int("axis", def)
	if err != nil {
		return 0, err
	}
	return normAxis(a, rank, "axis")
}

// float returns a FLOAT attribute, or def when absent.
func (c *nodeCtx) float(name string, def float64) (float64, error) {
	a, err := c.attr(name, attrTypeFloat)
	if a == nil || err != nil {
		return def, err
	}
	return float64(a.f), nil
}

// str returns a STRING attribute, or def when absent.
func (c *nodeCtx) str(name, def string) (string, error) {
	a, err := c.attr(name, attrTypeString)
	if a == nil || err != nil {
		return def, err
	}
	return string(a.s), nil
}

// ints returns an INTS attribute and whether it is present.
func (c *nodeCtx) ints(name string) ([]int64, bool, error) {
	a, err := c.attr(name, attrTypeInts)
	if a == nil || err != nil {
		return nil, false, err
	}
	return a.ints, true, nil
}

// flag returns an INT attribute that must be 0 or 1.
func (c *nodeCtx) flag(name string, def bool) (bool, error) {
	d := int64(0)
	if def {
		d = 1
	}
	v, err := c.int(name, d)
	if err != nil {
		return false, err
	}
	if v != 0 && v != 1 {
		return false, fmt.Errorf("attribute %s: expected 0 or 1, found %d", name, v)
	}
	return v == 1, nil
}

// has reports whether input i is given (present and not empty).
func (c *nodeCtx) hasIn(i int) bool { return i < len(c.n.inputs) && c.n.inputs[i] != "" }

// lookup returns the value input i names.
func (c *nodeCtx) lookup(i int) (*value, error) {
	if !c.hasIn(i) {
		return nil, fmt.Errorf("missing input %d", i)
	}
	name := c.n.inputs[i]
	v := c.im.values[name]
	if v == nil || (v.node == nil && v.data == nil && v.vec == nil && v.fold == nil && v.poison == "") {
		return nil, fmt.Errorf("input %d %q is not a graph input, an initializer or the output of an earlier node", i, name)
	}
	if v.poison != "" {
		return nil, fmt.Errorf("input %d %q: %s", i, name, v.poison)
	}
	return v, nil
}

// in returns input i as an IR node.
func (c *nodeCtx) in(i int) (*graph.Node, error) {
	v, err := c.lookup(i)
	if err != nil {
		return nil, err
	}
	return c.im.materialize(v)
}

// ins returns every input as an IR node; none may be empty.
func (c *nodeCtx) ins() ([]*graph.Node, error) {
	out := make([]*graph.Node, len(c.n.inputs))
	for i := range c.n.inputs {
		n, err := c.in(i)
		if err != nil {
			return nil, err
		}
		out[i] = n
	}
	return out, nil
}

// constIn returns the data of input i, which must be known at import time.
func (c *nodeCtx) constIn(i int, what string) (*tensor.Dense, error) {
	v, err := c.lookup(i)
	if err != nil {
		return nil, err
	}
	if v.data == nil && v.vec != nil {
		return nil, fmt.Errorf("input %d %q (%s) is a shape computed at import time, and %v", i, v.onnx, what, v.vec.symbolicErr())
	}
	if v.data == nil && v.fold != nil {
		return nil, fmt.Errorf("input %d %q (%s) is computed at import time, and %s", i, v.onnx, what, foldedErr(v.fold))
	}
	if v.data == nil {
		return nil, fmt.Errorf("input %d %q (%s) must be a constant (an initializer or a Constant node's output) for the importer to map it", i, v.onnx, what)
	}
	return v.data, nil
}

// constInts returns input i as a list of integers known at import time.
func (c *nodeCtx) constInts(i int, what string) ([]int64, error) {
	d, err := c.constIn(i, what)
	if err != nil {
		return nil, err
	}
	vs, err := denseInts(d)
	if err != nil {
		return nil, fmt.Errorf("input %d (%s): %v", i, what, err)
	}
	if d.Dims() > 1 {
		return nil, fmt.Errorf("input %d (%s): expected a 1-D tensor, found shape %v", i, what, d.Shape())
	}
	return vs, nil
}

// outName returns the IR name reserved for output k.
func (c *nodeCtx) outName(k int) string {
	if k < len(c.n.outputs) && c.n.outputs[k] != "" {
		return c.im.values[c.n.outputs[k]].ir
	}
	return c.tmp("out")
}

// tmp returns a fresh IR name for an intermediate value of this node.
func (c *nodeCtx) tmp(tag string) string {
	base := "t"
	for _, o := range c.n.outputs {
		if o != "" {
			base = c.im.values[o].ir
			break
		}
	}
	return c.im.fresh(base + "_" + tag)
}

// op adds an IR node with a temporary name (set gives the node that
// computes an output the output's name). A failed shape rule becomes the
// node's error.
func (c *nodeCtx) op(op string, args []*graph.Node, attrs graph.Attrs) (*graph.Node, error) {
	n, err := c.im.g.Apply(c.tmp(op), op, args, attrs)
	if err != nil {
		return nil, c.perSample(op, args, err)
	}
	return n, nil
}

// op1 adds a one-operand IR node.
func (c *nodeCtx) op1(op string, x *graph.Node, attrs graph.Attrs) (*graph.Node, error) {
	return c.op(op, []*graph.Node{x}, attrs)
}

// set binds output k to the IR node n. A node this ONNX node added takes
// the output's name; an earlier one (Identity) is shared.
func (c *nodeCtx) set(k int, n *graph.Node) error {
	if k >= len(c.n.outputs) || c.n.outputs[k] == "" {
		return nil
	}
	v := c.im.values[c.n.outputs[k]]
	if n.ID >= c.start && n.Op != graph.OpParam && n.Op != graph.OpConst && c.im.rename[n] == "" {
		c.im.rename[n] = v.ir
		v.node = n
	} else {
		v.node = n
	}
	c.outs[k] = true
	return nil
}

// alias binds output k to the value of input i (Identity).
func (c *nodeCtx) alias(k, i int) error {
	v, err := c.lookup(i)
	if err != nil {
		return err
	}
	if k < len(c.n.outputs) && c.n.outputs[k] != "" {
		c.im.values[c.n.outputs[k]] = v
		c.outs[k] = true
	}
	return nil
}

// setConst binds output k to data known at import time.
func (c *nodeCtx) setConst(k int, d *tensor.Dense) {
	if k < len(c.n.outputs) && c.n.outputs[k] != "" {
		c.im.values[c.n.outputs[k]].data = d
		c.outs[k] = true
	}
}

// outputs checks that the node has at most max outputs the importer
// computes; later ones, when named, become values that fail when used.
func (c *nodeCtx) maxOutputs(max int, what string) {
	for k := max; k < len(c.n.outputs); k++ {
		if o := c.n.outputs[k]; o != "" {
			c.im.values[o].poison = fmt.Sprintf("output %d of node %s (%s) is not supported: %s", k, c.label(), c.n.opType, what)
			c.outs[k] = true
		}
	}
}

func (c *nodeCtx) label() string {
	if c.n.name != "" {
		return fmt.Sprintf("%q", c.n.name)
	}
	return fmt.Sprintf("#%d", c.n.index)
}

// scalar adds a scalar const of type dt.
func (c *nodeCtx) scalar(tag string, dt graph.DType, v float64) (*graph.Node, error) {
	if dt == graph.F32 {
		v = float64(float32(v))
	}
	return c.im.g.Const(c.tmp(tag), graph.Type{DType: dt, Shape: []graph.Dim{}}, []float64{v})
}

// reshape reshapes x to dims (which may hold the batch symbol).
func (c *nodeCtx) reshape(x *graph.Node, dims []graph.Dim) (*graph.Node, error) {
	return c.op1("reshape", x, graph.Attrs{{Name: "shape", Value: graph.ShapeAttr(dims)}})
}

// normAxis maps an ONNX axis (negative counts from the end) to [0, rank).
func normAxis(ax int64, rank int, what string) (int, error) {
	if ax < -int64(rank) || ax >= int64(rank) {
		return 0, fmt.Errorf("%s %d is out of range for rank %d", what, ax, rank)
	}
	if ax < 0 {
		ax += int64(rank)
	}
	return int(ax), nil
}

// normAxes maps a list of ONNX axes to sorted distinct axes in [0, rank).
func normAxes(axes []int64, rank int, what string) ([]int64, error) {
	out := make([]int64, 0, len(axes))
	seen := map[int]bool{}
	for _, a := range axes {
		ax, err := normAxis(a, rank, what)
		if err != nil {
			return nil, err
		}
		if seen[ax] {
			return nil, fmt.Errorf("%s %d is listed twice", what, a)
		}
		seen[ax] = true
		out = append(out, int64(ax))
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, nil
}

// concrete returns the sizes of dims, and false if one is known only at run
// time.
func concrete(dims []graph.Dim) ([]int64, bool) {
	out := make([]int64, len(dims))
	for i, d := range dims {
		v, ok := d.Value()
		if !ok {
			return nil, false
		}
		out[i] = v
	}
	return out, true
}
