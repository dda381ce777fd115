// Package graph is the intermediate representation of multigpu: a model as
// an SSA graph of typed tensor values, its op table with shape and batch
// rules, the verifier, and the .graph text format (parse and print) and DOT
// export.
package graph

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
)

// Pos is a position in a source file: 1-based line and column (in bytes).
// The zero Pos means "no position" (a node built through the API).
type Pos struct {
	Line, Col int
}

// IsValid reports whether p is a real position.
func (p Pos) IsValid() bool { return p.Line > 0 }

// String returns "line:col".
func (p Pos) String() string { return fmt.Sprintf("%d:%d", p.Line, p.Col) }

// Error is an error about user input, located at a position in a file.
type Error struct {
	File string
	Pos  Pos
	Msg  string
}

// Error returns "file:line:col: msg", like Go's tools, leaving out what is
// unknown: "file: msg", "line:col: msg" or "msg".
func (e *Error) Error() string {
	var loc string
	switch {
	case e.File != "" && e.Pos.IsValid():
		loc = e.File + ":" + e.Pos.String()
	case e.File != "":
		loc = e.File
	case e.Pos.IsValid():
		loc = e.Pos.String()
	default:
		return e.Msg
	}
	return loc + ": " + e.Msg
}

// ErrorList is a list of errors, reported together sorted by position.
type ErrorList []*Error

// Error returns the errors one per line.
func (l ErrorList) Error() string {
	msgs := make([]string, len(l))
	for i, e := range l {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// Sort orders l by position.
func (l ErrorList) Sort() {
	sort.SliceStable(l, func(i, j int) bool {
		a, b := l[i].Pos, l[j].Pos
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
}

// Err returns l as an error, or nil when l is empty.
func (l ErrorList) Err() error {
	if len(l) == 0 {
		return nil
	}
	return l
}

// The ops of the three kinds of leaf node.
const (
	OpInput = "input"
	OpParam = "param"
	OpConst = "const"
)

// Node is one statement of a graph: it defines exactly one value, named Name.
// Leaf nodes (inputs, params, consts) have Op OpInput, OpParam or OpConst and
// no Args.
type Node struct {
	Name   string
	Op     string
	Args   []*Node
	Attrs  Attrs
	Type   Type
	Device Device
	// Data holds a const's elements, in row-major order (one for a scalar).
	Data []float64
	// Pos is where the node was defined, when it was parsed.
	Pos Pos
	// ID is the node's index in its graph's Nodes.
	ID int
}

// IsLeaf reports whether n is an input, param or const.
func (n *Node) IsLeaf() bool { return n.Op == OpInput || n.Op == OpParam || n.Op == OpConst }

// Attr returns the value of attribute name, with the op's default when it
// is absent.
func (n *Node) Attr(name string) (AttrValue, bool) {
	if v, ok := n.Attrs.Get(name); ok {
		return v, true
	}
	if info := opTable[n.Op]; info != nil {
		if spec := info.attr(name); spec != nil && spec.Default != nil {
			return *spec.Default, true
		}
	}
	return AttrValue{}, false
}

// IntAttr returns an integer attribute (with its default), or def when absent.
func (n *Node) IntAttr(name string, def int64) int64 {
	if v, ok := n.Attr(name); ok && v.Kind == AttrInt {
		return v.Int
	}
	return def
}

// FloatAttr returns a number attribute (with its default), or def when absent.
func (n *Node) FloatAttr(name string, def float64) float64 {
	if v, ok := n.Attr(name); ok {
		if f, ok := v.number(); ok {
			return f
		}
	}
	return def
}

// BoolAttr returns a boolean attribute (with its default), false when absent.
func (n *Node) BoolAttr(name string) bool {
	v, ok := n.Attr(name)
	return ok && v.Kind == AttrBool && v.Bool
}

// IntsAttr returns a list-of-integers attribute (with its default), or def
// when absent.
func (n *Node) IntsAttr(name string, def []int) []int {
	v, ok := n.Attr(name)
	if !ok || v.Kind != AttrList {
		return def
	}
	out := make([]int, len(v.List))
	for i, e := range v.List {
		out[i] = int(e.Int)
	}
	return out
}

// StringAttr returns an identifier or string attribute (with its default),
// or def when absent.
func (n *Node) StringAttr(name, def string) string {
	if v, ok := n.Attr(name); ok && (v.Kind == AttrIdent || v.Kind == AttrString) {
		return v.Str
	}
	return def
}

// Graph is a model: nodes in definition order (every operand is defined
// before its use) and the ordered list of outputs.
type Graph struct {
	Name    string
	File    string // the file it was parsed from, for error positions
	Nodes   []*Node
	Outputs []*Node
	// OutputPos is where the output statement stands, when parsed.
	OutputPos Pos

	byName map[string]*Node
}

// New returns an empty graph called name.
func New(name string) *Graph {
	return &Graph{Name: name, byName: map[string]*Node{}}
}

// Lookup returns the node named name, or nil.
func (g *Graph) Lookup(name string) *Node {
	if g.byName == nil {
		g.reindex()
	}
	return g.byName[name]
}

// reindex rebuilds the name index and renumbers node IDs from g.Nodes.
func (g *Graph) reindex() {
	g.byName = make(map[string]*Node, len(g.Nodes))
	for i, n := range g.Nodes {
		n.ID = i
		g.byName[n.Name] = n
	}
}

// add appends n, which must have a fresh name.
func (g *Graph) add(n *Node) (*Node, error) {
	if !validName(n.Name) {
		return nil, fmt.Errorf("invalid value name %q", n.Name)
	}
	if g.byName == nil {
		g.reindex()
	}
	// One map operation instead of a lookup and an insert: a name already
	// there leaves the map's size unchanged, and its node is put back.
	// (On that error path, the old node is found again by a scan.)
	size := len(g.byName)
	g.byName[n.Name] = n
	if len(g.byName) == size {
		for _, old := range g.Nodes {
			if old.Name == n.Name {
				g.byName[n.Name] = old
			}
		}
		return nil, fmt.Errorf("%%%s is already defined", n.Name)
	}
	n.ID = len(g.Nodes)
	g.Nodes = append(g.Nodes, n)
	return n, nil
}

// Grow reserves room for n more nodes, so that building a large graph
// does not rehash its name index again and again.
func (g *Graph) Grow(n int) {
	if g.byName == nil {
		g.reindex()
	}
	if n <= 0 {
		return
	}
	g.Nodes = slices.Grow(g.Nodes, n)
	m := make(map[string]*Node, len(g.byName)+n)
	for k, v := range g.byName {
		m[k] = v
	}
	g.byName = m
}

// owns reports whether n is a node of g (in O(1), without hashing its name).
func (g *Graph) owns(n *Node) bool {
	return n != nil && n.ID >= 0 && n.ID < len(g.Nodes) && g.Nodes[n.ID] == n
}

// Input adds an input fed per batch (or whole, when t has no batch axis).
func (g *Graph) Input(name string, t Type) (*Node, error) {
	if err := checkLeafType(t); err != nil {
		return nil, err
	}
	return g.add(&Node{Name: name, Op: OpInput, Type: t.Clone()})
}

// Param adds a weight tensor; t must not involve the batch.
func (g *Graph) Param(name string, t Type) (*Node, error) {
	if err := checkLeafType(t); err != nil {
		return nil, err
	}
	if t.HasSymbol() {
		return nil, fmt.Errorf("param %%%s: expected a batch-free type, found %s", name, t)
	}
	return g.add(&Node{Name: name, Op: OpParam, Type: t.Clone()})
}

// Const adds a literal; data holds one element per element of t (one for a scalar).
func (g *Graph) Const(name string, t Type, data []float64) (*Node, error) {
	if err := checkConstData(t, data); err != nil {
		return nil, fmt.Errorf("const %%%s: %v", name, err)
	}
	return g.add(&Node{Name: name, Op: OpConst, Type: t.Clone(), Data: append([]float64(nil), data...)})
}

// Apply adds the node name = op args {attrs}, inferring its type. Attributes
// equal to the op's defaults are dropped, so the graph prints canonically.
func (g *Graph) Apply(name, op string, args []*Node, attrs Attrs) (*Node, error) {
	info := opTable[op]
	if info == nil {
		return nil, fmt.Errorf("unknown op %q", op)
	}
	for _, a := range args {
		if !g.owns(a) {
			return nil, fmt.Errorf("%s: operand is not a node of graph %s", op, g.Name)
		}
	}
	attrs, err := info.normalize(attrs)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", op, err)
	}
	n := &Node{Name: name, Op: op, Args: append([]*Node(nil), args...), Attrs: attrs}
	t, err := Infer(n)
	if err != nil {
		return nil, err
	}
	n.Type = t
	return g.add(n)
}

// SetOutputs sets the graph's outputs.
func (g *Graph) SetOutputs(outs ...*Node) error {
	seen := map[*Node]bool{}
	for _, o := range outs {
		if !g.owns(o) {
			return fmt.Errorf("output is not a node of graph %s", g.Name)
		}
		if seen[o] {
			return fmt.Errorf("%%%s is listed twice as an output", o.Name)
		}
		seen[o] = true
	}
	g.Outputs = append([]*Node(nil), outs...)
	return nil
}

// Inputs returns the graph's input nodes in order.
func (g *Graph) Inputs() []*Node { return g.leaves(OpInput) }

// Params returns the graph's param nodes in order.
func (g *Graph) Params() []*Node { return g.leaves(OpParam) }

// leaves returns the nodes of op (input, param or const) in order.
func (g *Graph) leaves(op string) []*Node {
	var out []*Node
	for _, n := range g.Nodes {
		if n.Op == op {
			out = append(out, n)
		}
	}
	return out
}

// Batch returns the graph's batch symbol and its bound size (0 when
// symbolic), or "" when no input carries a batch.
func (g *Graph) Batch() (sym string, bound int64) {
	for _, n := range g.Nodes {
		if n.Op != OpInput {
			continue
		}
		if ax := n.Type.BatchAxis(); ax >= 0 {
			d := n.Type.Shape[ax]
			return d.Sym, d.Bound
		}
	}
	return "", 0
}

// Devices returns the distinct devices nodes are placed on, in order of
// first appearance.
func (g *Graph) Devices() []Device {
	var out []Device
	seen := map[Device]bool{}
	for _, n := range g.Nodes {
		if n.Device.IsSet() && !seen[n.Device] {
			seen[n.Device] = true
			out = append(out, n.Device)
		}
	}
	return out
}

// Users returns, for every node, the nodes that read it, in graph order.
func (g *Graph) Users() map[*Node][]*Node {
	users := make(map[*Node][]*Node, len(g.Nodes))
	for _, n := range g.Nodes {
		for _, a := range n.Args {
			users[a] = append(users[a], n)
		}
	}
	return users
}

// Clone returns a deep copy of g: it shares no memory with g, so either
// may be changed without affecting the other. It panics if a node of g
// uses one that is not defined before it (Verify reports that as an error).
func (g *Graph) Clone() *Graph {
	c := &Graph{Name: g.Name, File: g.File, OutputPos: g.OutputPos, Nodes: make([]*Node, len(g.Nodes))}
	// Nodes built by Parse or the API have ID == index, which maps an
	// original to its copy without a map; otherwise use one.
	byID := true
	for i, n := range g.Nodes {
		if n.ID != i {
			byID = false
			break
		}
	}
	var m map[*Node]*Node
	if !byID {
		m = make(map[*Node]*Node, len(g.Nodes))
	}
	copyOf := func(a *Node, before int) *Node {
		if byID {
			if a != nil && a.ID < before && g.Nodes[a.ID] == a {
				return c.Nodes[a.ID]
			}
			return nil
		}
		return m[a]
	}
	for i, n := range g.Nodes {
		cn := *n
		cn.Type = n.Type.Clone()
		cn.Attrs = n.Attrs.Clone()
		if n.Data != nil {
			cn.Data = append([]float64(nil), n.Data...)
		}
		if n.Args != nil {
			cn.Args = make([]*Node, len(n.Args))
		}
		for j, a := range n.Args {
			if cn.Args[j] = copyOf(a, i); cn.Args[j] == nil {
				name := "<nil>"
				if a != nil {
					name = "%" + a.Name
				}
				panic(fmt.Sprintf("graph.Clone: %s, operand of %%%s, is not defined before it", name, n.Name))
			}
		}
		if m != nil {
			m[n] = &cn
		}
		c.Nodes[i] = &cn
	}
	if g.Outputs != nil {
		c.Outputs = make([]*Node, len(g.Outputs))
		for i, o := range g.Outputs {
			c.Outputs[i] = copyOf(o, len(g.Nodes))
		}
	}
	c.reindex()
	return c
}

// validName reports whether s can name a value: letters, digits, '_' and '.'.
func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isIdentByte(s[i], false) {
			return false
		}
	}
	return true
}

// validIdent reports whether s is an identifier as the lexer reads one: a
// letter or '_', then letters, digits, '_' and '.'.
func validIdent(s string) bool {
	return s != "" && isIdentByte(s[0], true) && validName(s)
}

// validSymbol reports whether s can be the batch symbol: an identifier
// without dots (N.0 is a share of N), and not true or false (which read as
// bools where an attribute names the symbol).
func validSymbol(s string) bool {
	return validIdent(s) && !strings.Contains(s, ".") && s != "true" && s != "false"
}

// isIdentByte reports whether c may appear in an identifier, at its start
// when first is set (no digit or dot there).
func isIdentByte(c byte, first bool) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_':
		return true
	case c >= '0' && c <= '9', c == '.':
		return !first
	}
	return false
}

// checkLeafType checks the type of an input or param: positive dims, at most
// one batch axis, the batch as a plain symbol, a count that fits int64.
func checkLeafType(t Type) error {
	if !t.DType.valid() {
		return fmt.Errorf("expected an element type (f32, f64, i32, i64 or bool), found %s", t.DType)
	}
	batch := -1
	for i, d := range t.Shape {
		if d.Sym == "" {
			if d.Size <= 0 {
				return fmt.Errorf("expected a positive dimension, found %d", d.Size)
			}
			continue
		}
		if !d.IsBatch() {
			return fmt.Errorf("expected an integer or the batch symbol in a declared type, found %s", d)
		}
		if !validSymbol(d.Sym) {
			return fmt.Errorf("expected an identifier without dots, other than true and false, as the batch symbol, found %q", d.Sym)
		}
		if batch >= 0 {
			return fmt.Errorf("expected at most one batch axis, found %s on axes %d and %d", d.Sym, batch, i)
		}
		batch = i
	}
	return checkElems(t)
}

// checkElems rejects types whose element count overflows int64.
func checkElems(t Type) error {
	coeff := int64(1)
	for _, d := range t.Shape {
		v := d.Size
		if d.Sym != "" {
			v = d.Mul
			if d.Bound > 0 {
				v = mulCheck(d.Mul, d.Bound)
			}
		}
		coeff = mulCheck(coeff, v)
		if coeff < 0 {
			return fmt.Errorf("expected a shape whose element count fits in int64, found %s", t)
		}
	}
	return nil
}

// mulCheck returns a*b for positive a, b, or -1 when it overflows.
func mulCheck(a, b int64) int64 {
	if a < 0 || b < 0 {
		return -1
	}
	if a != 0 && b > (1<<63-1)/a {
		return -1
	}
	return a * b
}

// checkConstData checks a const's type (concrete, at most 2^20 elements) and
// that data holds one valid element per element of t.
func checkConstData(t Type, data []float64) error {
	if err := checkLeafType(t); err != nil {
		return err
	}
	if t.HasSymbol() {
		return fmt.Errorf("expected a concrete shape, found %s", t)
	}
	n, _ := t.Elems()
	if n > 1<<20 {
		return fmt.Errorf("expected at most %d elements in a literal, found %s", 1<<20, t)
	}
	if int64(len(data)) != n {
		return fmt.Errorf("expected %d elements for %s, found %d", n, t, len(data))
	}
	for _, v := range data {
		if err := checkElem(t.DType, v); err != nil {
			return err
		}
	}
	return nil
}

// checkElem checks that v is a value of dt: 0 or 1 for bool, an integer in
// range for i32 and i64 (within 2^53, where float64 is exact).
func checkElem(dt DType, v float64) error {
	switch dt {
	case F32:
		if math.IsNaN(v) || math.Abs(v) > math.MaxFloat32 {
			return fmt.Errorf("expected a finite f32, found %s", formatFloat(v))
		}
	case F64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("expected a finite f64, found %s", formatFloat(v))
		}
	case Bool:
		if v != 0 && v != 1 {
			return fmt.Errorf("expected true or false, found %s", formatFloat(v))
		}
	case I32:
		if v != float64(int64(v)) || v < -(1<<31) || v > 1<<31-1 {
			return fmt.Errorf("expected an i32, found %s", formatFloat(v))
		}
	case I64:
		if v != float64(int64(v)) || v < -(1<<53) || v > 1<<53 {
			return fmt.Errorf("expected an i64 within 2^53, found %s", formatFloat(v))
		}
	}
	return nil
}
