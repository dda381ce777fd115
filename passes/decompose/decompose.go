// Package decompose is the decompose pass: it writes every batchnorm as
// the primitive ops it stands for, so that the grad pass differentiates
// through them and the replicate pass splits them like any other op. In
// training mode the statistics become means over every axis but the
// channel axis (the mean of squared deviations for the variance: biased,
// two passes), which the replicate pass combines over the whole batch:
// synchronised batchnorm. The running statistics a training batchnorm
// reads but does not use are updated from the batch's statistics, as
// PyTorch does, and the updates become outputs of the graph.
package decompose

import (
	"fmt"

	"multigpu/graph"
	"multigpu/internal/graphutil"
	"multigpu/passes"
)

// DefaultMomentum is the weight of the batch's statistics in the running
// statistics' update, as PyTorch's BatchNorm has it.
const DefaultMomentum = 0.1

// Options configures the decompose pass.
type Options struct {
	// Momentum m updates the running statistics of a training batchnorm:
	// running = (1-m)*running + m*batch, with the batch variance made
	// unbiased (times n/(n-1)). Zero means DefaultMomentum.
	Momentum float64
}

// Update is a running statistic of a training batchnorm and the output
// of the decomposed graph that holds its next value.
type Update struct {
	// Param is the running mean or variance param.
	Param string
	// Output names the output node with its updated value.
	Output string
}

// Doc describes the pass.
const Doc = `decompose: write batchnorm as primitive ops

Every batchnorm becomes sub, div, sqrt, mul and add (with reshapes of its
per-channel operands); in training mode its statistics become means over
every axis but the channel axis, which the replicate pass combines over
the whole batch, and the updated running statistics (PyTorch's momentum
convention, unbiased variance) are appended to the outputs.`

// New returns the decompose pass configured by opts. Its graph has the
// running-statistic updates after the original outputs.
func New(opts Options) *passes.Pass {
	return &passes.Pass{
		Name:    "decompose",
		Doc:     Doc,
		Options: opts,
		Run: func(g *graph.Graph, _ *passes.Reporter) (*graph.Graph, error) {
			out, ups, err := Batchnorm(g, opts)
			if err != nil {
				return nil, err
			}
			outs := append([]*graph.Node(nil), out.Outputs...)
			for _, u := range ups {
				outs = append(outs, out.Lookup(u.Output))
			}
			if err := out.SetOutputs(outs...); err != nil {
				return nil, err
			}
			return out, nil
		},
	}
}

// Batchnorm returns a copy of g with every batchnorm decomposed, and the
// running-statistic updates of the training ones whose mean and variance
// are params. The outputs are g's; the update nodes are not outputs.
// Nodes keep their names: the node that ends a decomposition is named as
// the batchnorm was.
func Batchnorm(g *graph.Graph, opts Options) (*graph.Graph, []Update, error) {
	if opts.Momentum == 0 {
		opts.Momentum = DefaultMomentum
	}
	if !(opts.Momentum > 0 && opts.Momentum <= 1) {
		return nil, nil, fmt.Errorf("decompose: expected a batchnorm momentum in (0, 1], found %g", opts.Momentum)
	}
	out := graph.New(g.Name)
	out.File, out.OutputPos = g.File, g.OutputPos
	out.Grow(len(g.Nodes))
	copies := make([]*graph.Node, len(g.Nodes))
	var ups []Update
	for i, n := range g.Nodes {
		if n.ID != i {
			return nil, nil, fmt.Errorf("decompose: node %%%s has ID %d at index %d", n.Name, n.ID, i)
		}
		args := make([]*graph.Node, len(n.Args))
		for j, a := range n.Args {
			args[j] = copies[a.ID]
		}
		if n.Op != "batchnorm" {
			c, err := graphutil.Copy(out, n, args)
			if err != nil {
				return nil, nil, fmt.Errorf("decompose: %%%s: %v", n.Name, err)
			}
			copies[i] = c
			continue
		}
		d := &decomposer{g: out, src: g, n: n, momentum: opts.Momentum}
		c, u, err := d.run(args)
		if err != nil {
			return nil, nil, err
		}
		copies[i] = c
		ups = append(ups, u...)
	}
	outs := make([]*graph.Node, len(g.Outputs))
	for i, o := range g.Outputs {
		outs[i] = copies[o.ID]
	}
	if err := out.SetOutputs(outs...); err != nil {
		return nil, nil, err
	}
	return out, ups, nil
}

// decomposer writes one batchnorm node n into g.
type decomposer struct {
	g        *graph.Graph
	src      *graph.Graph
	n        *graph.Node
	momentum float64
	err      error
}

// apply adds name = op args {attrs} at n's position and device; name is
// made fresh. After the first error it does nothing.
func (d *decomposer) apply(name, op string, args []*graph.Node, attrs graph.Attrs) *graph.Node {
	if d.err != nil {
		return nil
	}
	v, err := d.g.Apply(graphutil.Fresh(d.g, name), op, args, attrs)
	if err != nil {
		d.err = &graph.Error{File: d.src.File, Pos: d.n.Pos, Msg: fmt.Sprintf("%%%s: decomposing batchnorm: %v", d.n.Name, err)}
		return nil
	}
	v.Pos, v.Device = d.n.Pos, d.n.Device
	return v
}

// constant adds a scalar of x's element type.
func (d *decomposer) constant(name string, dt graph.DType, v float64) *graph.Node {
	if d.err != nil {
		return nil
	}
	c, err := d.g.Const(graphutil.Fresh(d.g, name), graph.Type{DType: dt, Shape: []graph.Dim{}}, []float64{v})
	if err != nil {
		d.err = &graph.Error{File: d.src.File, Pos: d.n.Pos, Msg: fmt.Sprintf("%%%s: decomposing batchnorm: %v", d.n.Name, err)}
		return nil
	}
	c.Pos, c.Device = d.n.Pos, d.n.Device
	return c
}

func (d *decomposer) reshape(name string, v *graph.Node, t graph.Type) *graph.Node {
	if d.err != nil || v.Type.Equal(t) {
		return v
	}
	return d.apply(name, "reshape", []*graph.Node{v}, graph.Attrs{{Name: "shape", Value: graphutil.ShapeAttr(t)}})
}

// run emits the decomposition of n with operands args (x, scale, bias,
// mean, var) and returns its last node and the running-statistic updates.
func (d *decomposer) run(args []*graph.Node) (*graph.Node, []Update, error) {
	n := d.n
	x, scale, bias, rmean, rvar := args[0], args[1], args[2], args[3], args[4]
	rank := x.Type.Rank()
	ax, err := n.NormAxis("axis", rank)
	if err != nil {
		return nil, nil, err
	}
	eps, _ := n.Attr("epsilon")
	dt := x.Type.DType
	c := x.Type.Shape[ax]
	// Per-channel vectors broadcast against x as [C,1,...,1].
	chanT := graph.Type{DType: dt, Shape: []graph.Dim{c}}
	for i := ax + 1; i < rank; i++ {
		chanT.Shape = append(chanT.Shape, graph.Const(1))
	}
	var axes []int64
	for i := 0; i < rank; i++ {
		if i != ax {
			axes = append(axes, int64(i))
		}
	}
	name := n.Name
	epsC := d.constant(name+".epsilon", dt, eps.Float)
	var dev, sd *graph.Node
	var bmean, bvar *graph.Node // the batch's statistics, keepdims
	training := false
	if v, _ := n.Attr("training"); v.Bool {
		training = true
		stat := graph.Attrs{{Name: "axes", Value: graph.Ints(axes...)}, {Name: "keepdims", Value: graph.BoolAttr(true)}}
		bmean = d.apply(name+".mean", "mean", []*graph.Node{x}, stat)
		dev = d.apply(name+".dev", "sub", []*graph.Node{x, bmean}, nil)
		sq := d.apply(name+".sq", "mul", []*graph.Node{dev, dev}, nil)
		bvar = d.apply(name+".var", "mean", []*graph.Node{sq}, stat)
		ve := d.apply(name+".var_eps", "add", []*graph.Node{bvar, epsC}, nil)
		sd = d.apply(name+".sd", "sqrt", []*graph.Node{ve}, nil)
	} else {
		dev = d.apply(name+".dev", "sub", []*graph.Node{x, d.reshape(name+".mean_b", rmean, chanT)}, nil)
		ve := d.apply(name+".var_eps", "add", []*graph.Node{rvar, epsC}, nil)
		sd = d.reshape(name+".sd_b", d.apply(name+".sd", "sqrt", []*graph.Node{ve}, nil), chanT)
	}
	norm := d.apply(name+".norm", "div", []*graph.Node{dev, sd}, nil)
	scaled := d.apply(name+".scaled", "mul", []*graph.Node{norm, d.reshape(name+".scale_b", scale, chanT)}, nil)
	biasB := d.reshape(name+".bias_b", bias, chanT)
	if d.err != nil {
		return nil, nil, d.err
	}
	y, err := d.g.Apply(name, "add", []*graph.Node{scaled, biasB}, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("decompose: %%%s: %v", name, err)
	}
	y.Pos, y.Device = n.Pos, n.Device
	if !training || rmean.Op != graph.OpParam || rvar.Op != graph.OpParam {
		return y, nil, nil
	}
	// Running statistics: (1-m)*running + m*batch, the variance unbiased
	// by n/max(n-1, 1) where n is the count of each statistic.
	count := d.count(x, axes)
	one := d.constant(name+".one", dt, 1)
	den := d.apply(name+".count_m1", "maximum", []*graph.Node{d.apply(name+".count_sub1", "sub", []*graph.Node{count, one}, nil), one}, nil)
	corr := d.apply(name+".unbias", "div", []*graph.Node{count, den}, nil)
	vecT := chanT
	vecT.Shape = vecT.Shape[:1]
	keep := d.constant(name+".keep", dt, 1-d.momentum)
	mom := d.constant(name+".momentum", dt, d.momentum)
	update := func(tag string, running, batch *graph.Node) *graph.Node {
		old := d.apply(name+"."+tag+".old", "mul", []*graph.Node{running, keep}, nil)
		cur := d.apply(name+"."+tag+".batch", "mul", []*graph.Node{batch, mom}, nil)
		return d.apply(name+"."+tag, "add", []*graph.Node{old, cur}, nil)
	}
	m := update("running_mean", rmean, d.reshape(name+".batch_mean", bmean, vecT))
	ub := d.apply(name+".batch_var", "mul", []*graph.Node{d.reshape(name+".batch_var_b", bvar, vecT), corr}, nil)
	v := update("running_var", rvar, ub)
	if d.err != nil {
		return nil, nil, d.err
	}
	return y, []Update{{Param: rmean.Name, Output: m.Name}, {Param: rvar.Name, Output: v.Name}}, nil
}

// count emits the number of elements of x over axes, as a scalar of x's
// type: a constant, times the size of each symbolic axis (dim).
func (d *decomposer) count(x *graph.Node, axes []int64) *graph.Node {
	dt := x.Type.DType
	fixed := int64(1)
	var c *graph.Node
	for _, a := range axes {
		dim := x.Type.Shape[a]
		if v, ok := dim.Value(); ok {
			fixed *= v
			continue
		}
		s := d.apply(d.n.Name+".size", "dim", []*graph.Node{x}, graph.Attrs{{Name: "axis", Value: graph.Int(a)}, {Name: "dtype", Value: graph.Ident(dt.String())}})
		if c == nil {
			c = s
		} else {
			c = d.apply(d.n.Name+".count", "mul", []*graph.Node{c, s}, nil)
		}
	}
	switch {
	case c == nil:
		return d.constant(d.n.Name+".count", dt, float64(fixed))
	case fixed == 1:
		return c
	}
	return d.apply(d.n.Name+".count", "mul", []*graph.Node{c, d.constant(d.n.Name+".per_sample", dt, float64(fixed))}, nil)
}
