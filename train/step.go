package train

import (
	"fmt"
	"strconv"

	"multigpu/graph"
	"multigpu/internal/graphutil"
	"multigpu/passes/grad"
)

// The optimizer's step as graph ops, appended to the training graph:
//
//   - an all-finite flag over the loss and every gradient, computed where
//     they are: x·0 is 0 for every finite x and NaN for a NaN or an
//     infinity, so the sum of every gradient times 0, plus the loss times
//     0, equals 0 exactly when all are finite (%opt.ok, an output);
//   - the update of every trained param and of its moments (params of the
//     graph: momentum's velocity %opt.velocity.W, Adam's %opt.m.W and
//     %opt.v.W), in the param's element type, by PyTorch's rules;
//   - Adam's bias corrections 1 - β^t from a step count kept as an f64
//     param (%opt.steps, exact to 2^53), with pow on the devices, so
//     that no per-step value comes from the host;
//   - batchnorm's updated running statistics;
//   - each new value gated on the flag, where(%opt.ok, new, old), and
//     assigned to its param (graph/assign.go).
//
// The graph's outputs are the loss and the flag. Replicated, every
// replica updates its own resident copies of the params and their state
// from the gradients' allreduce (passes/replicate), so that the host sees
// the weights only when it reads them back (Trainer.Weights), and per
// step only the input shares, the loss and the flag.

// stepGraph is a training graph with the optimizer's step appended.
type stepGraph struct {
	graph *graph.Graph
	ok    string // the all-finite flag output
	// state lists, by trained param, the params holding its moments:
	// momentum's velocity, or Adam's first and second moments.
	state map[string][]string
	steps string // Adam's step count param, "" for the others
}

// stepBuilder appends nodes to a training graph.
type stepBuilder struct {
	g      *graph.Graph
	consts map[string]*graph.Node // scalar constants by type and value
	err    error
}

// op appends fresh(name) = op args {attrs}; the first error sticks.
func (b *stepBuilder) op(name, op string, args []*graph.Node, attrs graph.Attrs) *graph.Node {
	if b.err != nil {
		return nil
	}
	n, err := b.g.Apply(graphutil.Fresh(b.g, name), op, args, attrs)
	if err != nil {
		b.err = fmt.Errorf("train: the optimizer's step: %%%s: %v", name, err)
	}
	return n
}

func (b *stepBuilder) bin(name, op string, x, y *graph.Node) *graph.Node {
	return b.op(name, op, []*graph.Node{x, y}, nil)
}

// scalar returns a scalar constant of element type dt (v rounded to it).
func (b *stepBuilder) scalar(dt graph.DType, v float64) *graph.Node {
	if b.err != nil {
		return nil
	}
	if dt == graph.F32 {
		v = float64(float32(v))
	}
	key := dt.String() + ":" + strconv.FormatFloat(v, 'g', -1, 64)
	if c := b.consts[key]; c != nil {
		return c
	}
	c, err := b.g.Const(graphutil.Fresh(b.g, "opt."+dt.String()+"."+strconv.Itoa(len(b.consts))), graph.Type{DType: dt, Shape: []graph.Dim{}}, []float64{v})
	if err != nil {
		b.err = err
		return nil
	}
	b.consts[key] = c
	return c
}

// castTo returns x in element type dt.
func (b *stepBuilder) castTo(name string, x *graph.Node, dt graph.DType) *graph.Node {
	if b.err != nil || x.Type.DType == dt {
		return x
	}
	return b.op(name, "cast", []*graph.Node{x}, graph.Attrs{{Name: "to", Value: graph.Ident(dt.String())}})
}

// param adds a param of type t for optimizer state.
func (b *stepBuilder) param(name string, t graph.Type) *graph.Node {
	if b.err != nil {
		return nil
	}
	p, err := b.g.Param(graphutil.Fresh(b.g, name), t.Clone())
	if err != nil {
		b.err = err
	}
	return p
}

// update gates value on ok and assigns it to target.
func (b *stepBuilder) update(target, value, ok *graph.Node) {
	next := b.op(target.Name+".next", "where", []*graph.Node{ok, value, target}, nil)
	b.op(target.Name+".assign", graph.OpAssign, []*graph.Node{target, next}, nil)
}

// buildStep appends the step of optimizer o to training graph tr.
func buildStep(tr *grad.Training, o Optimizer) (*stepGraph, error) {
	b := &stepBuilder{g: tr.Graph.Clone(), consts: map[string]*graph.Node{}}
	g := b.g
	s := &stepGraph{graph: g, state: map[string][]string{}}
	loss := g.Lookup(tr.Loss)
	lt := loss.Type.DType

	check := b.bin("opt.finite.loss", "mul", loss, b.scalar(lt, 0))
	for _, out := range tr.Grads {
		gr := g.Lookup(out.Output)
		z := b.bin("opt.finite."+out.Param, "mul", gr, b.scalar(gr.Type.DType, 0))
		if gr.Type.Rank() > 0 {
			z = b.op("opt.finite."+out.Param+".sum", "sum", []*graph.Node{z}, nil)
		}
		check = b.bin("opt.finite", "add", check, b.castTo("opt.finite."+out.Param+".cast", z, lt))
	}
	ok := b.bin("opt.ok", "equal", check, b.scalar(lt, 0))
	if b.err != nil {
		return nil, b.err
	}
	s.ok = ok.Name

	// Adam's bias corrections, by element type: 1 - β^t at step t.
	var steps, t *graph.Node
	corr := map[graph.DType][2]*graph.Node{}
	if o.Kind == Adam {
		steps = b.param("opt.steps", graph.Type{DType: graph.F64, Shape: []graph.Dim{}})
		t = b.bin("opt.steps.new", "add", steps, b.scalar(graph.F64, 1))
		c1 := b.bin("opt.correction1", "sub", b.scalar(graph.F64, 1), b.bin("opt.beta1.power", "pow", b.scalar(graph.F64, o.Beta1), t))
		c2 := b.bin("opt.correction2", "sub", b.scalar(graph.F64, 1), b.bin("opt.beta2.power", "pow", b.scalar(graph.F64, o.Beta2), t))
		corr[graph.F64] = [2]*graph.Node{c1, c2}
		if b.err != nil {
			return nil, b.err
		}
		s.steps = steps.Name
	}
	for _, out := range tr.Grads {
		w, gr := g.Lookup(out.Param), g.Lookup(out.Output)
		dt := w.Type.DType
		lr := b.scalar(dt, o.LR)
		base := "opt." + w.Name
		var nw *graph.Node
		switch o.Kind {
		case SGD: // w - lr·g
			nw = b.bin(base+".new", "sub", w, b.bin(base+".delta", "mul", gr, lr))
		case Momentum: // v = μ·v + g; w - lr·v
			v := b.param("opt.velocity."+w.Name, w.Type)
			vn := b.bin(base+".velocity.new", "add", b.bin(base+".velocity.decay", "mul", v, b.scalar(dt, o.Momentum)), gr)
			nw = b.bin(base+".new", "sub", w, b.bin(base+".delta", "mul", vn, lr))
			b.update(v, vn, ok)
			s.state[w.Name] = []string{v.Name}
		case Adam: // m = β1·m + (1-β1)·g; v = β2·v + (1-β2)·g·g; w - lr·m̂/(√v̂ + ε)
			c, have := corr[dt]
			if !have {
				c = [2]*graph.Node{b.castTo("opt.correction1."+dt.String(), corr[graph.F64][0], dt), b.castTo("opt.correction2."+dt.String(), corr[graph.F64][1], dt)}
				corr[dt] = c
			}
			m := b.param("opt.m."+w.Name, w.Type)
			v := b.param("opt.v."+w.Name, w.Type)
			mn := b.bin(base+".m.new", "add", b.bin(base+".m.decay", "mul", m, b.scalar(dt, o.Beta1)), b.bin(base+".m.grad", "mul", gr, b.scalar(dt, 1-o.Beta1)))
			g2 := b.bin(base+".v.grad", "mul", b.bin(base+".v.scaled", "mul", gr, b.scalar(dt, 1-o.Beta2)), gr)
			vn := b.bin(base+".v.new", "add", b.bin(base+".v.decay", "mul", v, b.scalar(dt, o.Beta2)), g2)
			mh := b.bin(base+".m.hat", "div", mn, c[0])
			vh := b.bin(base+".v.hat", "div", vn, c[1])
			den := b.bin(base+".denominator", "add", b.op(base+".v.root", "sqrt", []*graph.Node{vh}, nil), b.scalar(dt, o.Epsilon))
			nw = b.bin(base+".new", "sub", w, b.bin(base+".delta", "div", b.bin(base+".m.scaled", "mul", mh, lr), den))
			b.update(m, mn, ok)
			b.update(v, vn, ok)
			s.state[w.Name] = []string{m.Name, v.Name}
		}
		b.update(w, nw, ok)
	}
	if steps != nil {
		b.update(steps, t, ok)
	}
	for _, st := range tr.Stats {
		p := g.Lookup(st.Param)
		b.update(p, b.castTo(p.Name+".cast", g.Lookup(st.Output), p.Type.DType), ok)
	}
	if b.err != nil {
		return nil, b.err
	}
	if err := g.SetOutputs(loss, ok); err != nil {
		return nil, err
	}
	if err := graph.Verify(g); err != nil {
		return nil, fmt.Errorf("train: internal error: the step graph fails verification: %v", err)
	}
	return s, nil
}
