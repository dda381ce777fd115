// Package grad is the grad pass: reverse-mode differentiation of a graph,
// IR to IR. Given a scalar loss among the outputs and the params to
// train, it appends the backward nodes to the forward graph and returns a
// training graph whose outputs are the loss, one gradient per trainable
// param, and the updated running statistics of training batchnorms.
//
// Gradients are compositions of the ops of the table where one is exact
// (matmul: dA = dY·Bᵀ, dB = Aᵀ·dY; softmax: y·(dy - sum(dy·y)); a
// broadcast operand: dy summed over the broadcast axes), and the ops made
// for backward graphs where not (compare masks, broadcast_like, the
// gradients of conv2d and the pools). Batchnorm is decomposed first
// (package decompose), so its gradient flows through its statistics. The
// training graph is an ordinary graph: the replicate pass splits it like
// any other, and the gradients that sum over the batch (a weight's
// Aᵀ·dY, a bias's sum) become per-replica partials summed on the merge
// device, so data-parallel gradients are the whole batch's.
package grad

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"multigpu/graph"
	"multigpu/internal/graphutil"
	"multigpu/passes"
	"multigpu/passes/decompose"
)

// Options configures the grad pass.
type Options struct {
	// Loss names the output to minimise, a scalar f32 or f64; "" picks
	// the graph's only such output.
	Loss string
	// Params names the params to train; nil trains every float param
	// the loss depends on through differentiable ops, except the running
	// mean and variance of batchnorms.
	Params []string
	// Momentum of batchnorm's running statistics (decompose.Options).
	Momentum float64
}

// Training is a training graph and what its outputs hold.
type Training struct {
	// Graph's outputs are the loss, then Grads, then Stats, in order.
	Graph *graph.Graph
	// Loss names the loss output.
	Loss string
	// Grads lists the trainable params and their gradients' outputs.
	Grads []Output
	// Stats lists the running statistics of training batchnorms and the
	// outputs with their updated values.
	Stats []Output
}

// Output pairs a param with the output that holds a value for it.
type Output struct {
	Param  string
	Output string
}

// Doc describes the pass.
const Doc = `grad: append the backward pass of a loss

Decomposes batchnorm, then differentiates the scalar loss output with
respect to the trainable params in reverse mode and returns a graph whose
outputs are the loss, one gradient per param (%w.grad), and the updated
running statistics of training batchnorms.`

// New returns the grad pass configured by opts.
func New(opts Options) *passes.Pass {
	return &passes.Pass{
		Name:    "grad",
		Doc:     Doc,
		Options: opts,
		Run: func(g *graph.Graph, _ *passes.Reporter) (*graph.Graph, error) {
			t, err := Build(g, opts)
			if err != nil {
				return nil, err
			}
			return t.Graph, nil
		},
	}
}

// Build returns the training graph of g, which it does not modify.
func Build(g *graph.Graph, opts Options) (*Training, error) {
	if err := graph.Verify(g); err != nil {
		return nil, err
	}
	if devs := g.Devices(); len(devs) > 1 {
		return nil, fmt.Errorf("graph %s is placed on several devices: differentiate the single-device model, then replicate it", g.Name)
	}
	loss, err := pickLoss(g, opts.Loss)
	if err != nil {
		return nil, err
	}
	running := map[string]bool{}
	for _, n := range g.Nodes {
		if n.Op == "batchnorm" {
			for _, a := range n.Args[3:] {
				if a.Op == graph.OpParam {
					running[a.Name] = true
				}
			}
		}
	}
	fwd, stats, err := decompose.Batchnorm(g, decompose.Options{Momentum: opts.Momentum})
	if err != nil {
		return nil, err
	}
	b := &builder{g: fwd.Clone(), src: g, consts: map[string]*graph.Node{}}
	b.g.Grow(4 * len(fwd.Nodes))
	for _, n := range b.g.Nodes {
		if n.Device.IsSet() {
			b.dev = n.Device
			break
		}
	}
	params, err := b.trainable(loss, opts.Params, running)
	if err != nil {
		return nil, err
	}
	grads, err := b.backward(b.g.Lookup(loss), params)
	if err != nil {
		return nil, err
	}
	t := &Training{Loss: loss}
	outs := []*graph.Node{b.g.Lookup(loss)}
	for i, p := range params {
		outs = append(outs, grads[i])
		t.Grads = append(t.Grads, Output{Param: p.Name, Output: grads[i].Name})
	}
	for _, s := range stats {
		outs = append(outs, b.g.Lookup(s.Output))
		t.Stats = append(t.Stats, Output(s))
	}
	if err := b.g.SetOutputs(outs...); err != nil {
		return nil, err
	}
	if t.Graph, err = graphutil.Prune(b.g); err != nil {
		return nil, err
	}
	if err := graph.Verify(t.Graph); err != nil {
		return nil, fmt.Errorf("grad: internal error: the training graph fails verification: %v", err)
	}
	return t, nil
}

// pickLoss returns the name of the loss output: the one named, or the
// only scalar float output.
func pickLoss(g *graph.Graph, name string) (string, error) {
	name = strings.TrimPrefix(name, "%")
	isLoss := func(o *graph.Node) bool { return o.Type.Rank() == 0 && o.Type.DType.IsFloat() }
	var scalars []string
	for _, o := range g.Outputs {
		if name != "" && o.Name == name {
			if !isLoss(o) {
				return "", fmt.Errorf("loss %%%s: expected a scalar f32 or f64 output, found %s", name, o.Type)
			}
			return name, nil
		}
		if isLoss(o) {
			scalars = append(scalars, "%"+o.Name)
		}
	}
	var outs []string
	for _, o := range g.Outputs {
		outs = append(outs, "%"+o.Name)
	}
	switch {
	case name != "":
		return "", fmt.Errorf("loss %%%s: not an output of graph %s (outputs: %s)", name, g.Name, strings.Join(outs, ", "))
	case len(scalars) == 1:
		return scalars[0][1:], nil
	case len(scalars) == 0:
		return "", fmt.Errorf("graph %s has no scalar f32 or f64 output to use as the loss (outputs: %s)", g.Name, strings.Join(outs, ", "))
	}
	return "", fmt.Errorf("graph %s has several scalar outputs (%s): name the loss", g.Name, strings.Join(scalars, ", "))
}

// builder appends backward nodes to g, the decomposed forward graph.
type builder struct {
	g      *graph.Graph
	src    *graph.Graph // the graph as given, for error positions
	dev    graph.Device
	consts map[string]*graph.Node // scalar constants by dtype and value

	active []bool // by node ID: depends differentiably on a trainable param
	onPath []bool // by node ID: active, and the loss depends on it through differentiable ops
}

// internalError is a bug in a gradient rule, recovered in backward.
type internalError struct{ error }

// apply adds a node named fresh(name) = op args {attrs}.
func (b *builder) apply(name, op string, args []*graph.Node, attrs graph.Attrs) *graph.Node {
	n, err := b.g.Apply(graphutil.Fresh(b.g, name), op, args, attrs)
	if err != nil {
		panic(internalError{fmt.Errorf("grad: internal error building %%%s: %w", name, err)})
	}
	n.Device = b.dev
	return n
}

// scalar returns a scalar constant of type dt, one per value.
func (b *builder) scalar(dt graph.DType, v float64) *graph.Node {
	key := dt.String() + " " + strconv.FormatFloat(v, 'g', -1, 64)
	if c := b.consts[key]; c != nil {
		return c
	}
	c, err := b.g.Const(graphutil.Fresh(b.g, "grad.c"+strconv.Itoa(len(b.consts))), graph.Type{DType: dt, Shape: []graph.Dim{}}, []float64{v})
	if err != nil {
		panic(internalError{fmt.Errorf("grad: internal error: constant %v: %w", v, err)})
	}
	c.Device = b.dev
	b.consts[key] = c
	return c
}

// differentiable reports whether the gradient flows from node n into its
// operand i: operands of float type, except those whose value only
// selects (compare, the shape operand of broadcast_like, dim).
func differentiable(n *graph.Node, i int) bool {
	if !n.Args[i].Type.DType.IsFloat() || !n.Type.DType.IsFloat() {
		return false
	}
	switch n.Op {
	case "dim", "compare":
		return false
	case "broadcast_like":
		return i == 0
	}
	return true
}

// trainable returns the params to train (in graph order) and marks the
// nodes the backward pass goes through.
func (b *builder) trainable(loss string, names []string, running map[string]bool) ([]*graph.Node, error) {
	g := b.g
	cand := map[*graph.Node]bool{}
	if names == nil {
		for _, p := range g.Params() {
			if p.Type.DType.IsFloat() && !running[p.Name] {
				cand[p] = true
			}
		}
	} else {
		for _, name := range names {
			name = strings.TrimPrefix(name, "%")
			p := g.Lookup(name)
			switch {
			case p == nil && b.src.Lookup(name) == nil:
				return nil, fmt.Errorf("params: graph %s has no param %%%s", g.Name, name)
			case p == nil || p.Op != graph.OpParam:
				return nil, fmt.Errorf("params: %%%s is not a param", name)
			case !p.Type.DType.IsFloat():
				return nil, fmt.Errorf("params: %%%s is %s: only f32 and f64 params are trained", name, p.Type)
			}
			cand[p] = true
		}
	}
	b.active = make([]bool, len(g.Nodes))
	for i, n := range g.Nodes {
		b.active[i] = cand[n]
		for j, a := range n.Args {
			if b.active[a.ID] && differentiable(n, j) {
				b.active[i] = true
			}
		}
	}
	b.onPath = make([]bool, len(g.Nodes))
	l := g.Lookup(loss)
	b.onPath[l.ID] = b.active[l.ID]
	for i := len(g.Nodes) - 1; i >= 0; i-- {
		n := g.Nodes[i]
		if !b.onPath[i] {
			continue
		}
		for j, a := range n.Args {
			if b.active[a.ID] && differentiable(n, j) {
				b.onPath[a.ID] = true
			}
		}
	}
	var out []*graph.Node
	for _, p := range g.Params() {
		if cand[p] && b.onPath[p.ID] {
			out = append(out, p)
		} else if cand[p] && names != nil {
			return nil, fmt.Errorf("params: the loss %%%s does not depend on %%%s through differentiable ops", loss, p.Name)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("the loss %%%s depends on no trainable param", loss)
	}
	return out, nil
}

// backward emits the reverse pass from loss and returns the gradient of
// each param, each a node of its own named %param.grad.
func (b *builder) backward(loss *graph.Node, params []*graph.Node) (grads []*graph.Node, err error) {
	defer func() {
		if p := recover(); p != nil {
			ie, ok := p.(internalError)
			if !ok {
				panic(p)
			}
			grads, err = nil, ie.error
		}
	}()
	g := b.g
	nodes := slices.Clone(g.Nodes) // the forward nodes; backward ones are appended to g
	// uses[i]: how many gradient contributions node i receives.
	uses := make([]int, len(nodes))
	for _, n := range nodes {
		if !b.onPath[n.ID] {
			continue
		}
		for j, a := range n.Args {
			if b.onPath[a.ID] && differentiable(n, j) {
				uses[a.ID]++
			}
		}
	}
	contribs := make([][]*graph.Node, len(nodes))
	// owner: the node whose gradient a new node is, when it is one.
	owner := map[*graph.Node]*graph.Node{}
	contribs[loss.ID] = []*graph.Node{b.scalar(loss.Type.DType, 1)}
	uses[loss.ID] = 1
	for i := len(nodes) - 1; i >= 0; i-- {
		n := nodes[i]
		if !b.onPath[i] || n.IsLeaf() {
			continue
		}
		dy := b.sum(n, contribs[i], owner)
		for j, a := range n.Args {
			if !b.onPath[a.ID] || !differentiable(n, j) {
				continue
			}
			name := a.Name + ".grad"
			if uses[a.ID] > 1 {
				name += "." + n.Name
				if count(n.Args, a) > 1 {
					name += "." + strconv.Itoa(j)
				}
			}
			before := len(g.Nodes)
			c, err := b.rule(n, j, dy, name)
			if err != nil {
				return nil, err
			}
			if c.ID >= before && uses[a.ID] == 1 {
				owner[c] = a
			}
			if !c.Type.Equal(a.Type) {
				panic(internalError{fmt.Errorf("grad: internal error: the gradient of %%%s through %%%s (%s) is %s, not %s", a.Name, n.Name, n.Op, c.Type, a.Type)})
			}
			contribs[a.ID] = append(contribs[a.ID], c)
		}
	}
	seen := map[*graph.Node]bool{}
	for _, p := range params {
		d := b.sum(p, contribs[p.ID], owner)
		if owner[d] != p || seen[d] {
			d = b.apply(p.Name+".grad", "copy", []*graph.Node{d}, nil)
		}
		seen[d] = true
		grads = append(grads, d)
	}
	return grads, nil
}

// count returns how many times a is among args.
func count(args []*graph.Node, a *graph.Node) int {
	c := 0
	for _, x := range args {
		if x == a {
			c++
		}
	}
	return c
}

// sum returns the gradient of n: the sum of its contributions, in the
// order they were made.
func (b *builder) sum(n *graph.Node, cs []*graph.Node, owner map[*graph.Node]*graph.Node) *graph.Node {
	switch len(cs) {
	case 0:
		panic(internalError{fmt.Errorf("grad: internal error: no gradient reaches %%%s", n.Name)})
	case 1:
		return cs[0]
	}
	acc := cs[0]
	for k, c := range cs[1:] {
		name := n.Name + ".grad"
		if k < len(cs)-2 {
			name += ".sum" + strconv.Itoa(k+1)
		}
		acc = b.apply(name, "add", []*graph.Node{acc, c}, nil)
	}
	owner[acc] = n
	return acc
}

// errorf returns an error located at the source node n was made from.
func (b *builder) errorf(n *graph.Node, format string, args ...any) error {
	pos := n.Pos
	if s := b.src.Lookup(n.Name); s != nil {
		pos = s.Pos
	}
	return &graph.Error{File: b.src.File, Pos: pos, Msg: fmt.Sprintf("%%%s: ", n.Name) + fmt.Sprintf(format, args...)}
}
