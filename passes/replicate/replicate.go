// Package replicate is the replicate pass: it rewrites a single-device graph
// into a data-parallel one. Every batch-carrying input is sliced once per
// replica, the batch-parallel part of the graph is cloned once per GPU,
// reductions over the batch become per-replica partials combined exactly on
// the merge device, ops that need the whole batch run there, and every
// batch-carrying output is concatenated back. Every node is placed.
package replicate

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"multigpu/graph"
	"multigpu/passes"
)

// Doc describes the pass.
const Doc = `replicate: split the batch of a single-device graph across GPUs

Clones the batch-parallel part of the graph once per GPU, slices every
batch-carrying input into one share per replica, copies params and whole
inputs to every GPU, concatenates every batch-carrying output on the merge
device, combines reductions over the batch exactly (a mean divides the sum
of partial sums by the whole count), and runs ops that need the whole batch
(softmax over the batch, a reshape that folds it, ...) on the merge device
with everything downstream of them.`

// New returns the replicate pass configured by opts.
func New(opts Options) *passes.Pass {
	return &passes.Pass{
		Name:    "replicate",
		Doc:     Doc,
		Options: opts,
		Run: func(g *graph.Graph, r *passes.Reporter) (*graph.Graph, error) {
			out, warnings, err := Rewrite(g, opts)
			for _, w := range warnings {
				r.Warnf("%s", w)
			}
			return out, err
		},
	}
}

// Rewrite returns the data-parallel form of g, which it does not modify,
// and warnings about the result (such as fewer replicas than GPUs).
func Rewrite(g *graph.Graph, opts Options) (out *graph.Graph, warnings []string, err error) {
	opts, err = opts.check()
	if err != nil {
		return nil, nil, err
	}
	if err := graph.Verify(g); err != nil {
		return nil, nil, err
	}
	if devs := g.Devices(); len(devs) > 1 {
		return nil, nil, fmt.Errorf("graph %s is already placed on several devices (%s): replicate expects a single-device graph", g.Name, devList(devs))
	}
	if opts.Batch > 0 {
		if g, err = bindBatch(g, opts.Batch); err != nil {
			return nil, nil, err
		}
	}
	sym, bound := g.Batch()
	if sym == "" {
		return nil, nil, fmt.Errorf("graph %s: no input carries a batch axis, so there is nothing to split (give an input's batch axis a symbol, as in f32[N,784])", g.Name)
	}
	devs := opts.replicaDevices()
	r := len(devs)
	if bound > 0 && bound < int64(r) {
		r = int(bound)
		warnings = append(warnings, fmt.Sprintf("batch %d is smaller than %d GPUs: %d replicas run, on %s",
			bound, len(devs), r, devList(devs[:r])))
	}
	w := &rewriter{
		src:    g,
		out:    graph.New(g.Name),
		opts:   opts,
		devs:   devs[:r],
		sym:    sym,
		bound:  bound,
		merged: make([]*graph.Node, len(g.Nodes)),
		placed: make([][]*graph.Node, len(g.Nodes)),
		reps:   make([][]*graph.Node, len(g.Nodes)),
	}
	w.out.File = g.File
	w.out.Grow(len(g.Nodes) * (r + 1))
	for _, n := range g.Nodes {
		if strings.Contains(n.Name, ".") {
			w.dotted = true
			break
		}
	}
	defer func() {
		if p := recover(); p != nil {
			ie, ok := p.(internalError)
			if !ok {
				panic(p)
			}
			out, err = nil, ie
		}
	}()
	if err := w.run(); err != nil {
		return nil, warnings, err
	}
	return w.out, warnings, nil
}

// internalError is a broken invariant of the rewriter, recovered in Rewrite.
type internalError struct{ error }

type rewriter struct {
	src  *graph.Graph
	out  *graph.Graph
	opts Options
	an   *Analysis
	devs []graph.Device // replica k runs on devs[k]

	sym   string
	bound int64
	// dotted is set when a source name contains a dot: only then can a
	// generated name (source name, dot, suffix) collide with another name.
	dotted bool

	// By source node ID: the node's value on the merge device, its
	// batch-free value placed on each replica's device, and its replicas.
	merged []*graph.Node
	placed [][]*graph.Node
	reps   [][]*graph.Node
	// ar reports, by source node ID, that the node's combined value is
	// made on the replicas (combine.go).
	ar      []bool
	copies  map[*graph.Node][]*graph.Node // copyTo's, by merge-device node
	batchIn struct {
		n    *graph.Node // a batch-carrying input, on the merge device
		axis int
	}
}

func (w *rewriter) r() int { return len(w.devs) }

// fresh returns base, or base_2, base_3 ... whichever names no node of the
// source graph and no node emitted so far. (Source names are kept for the
// source values on the merge device.)
func (w *rewriter) fresh(base string) string {
	if !w.dotted {
		return base
	}
	name := base
	for i := 2; w.src.Lookup(name) != nil || w.out.Lookup(name) != nil; i++ {
		name = base + "_" + strconv.Itoa(i)
	}
	return name
}

func repName(base string, k int) string { return base + ".r" + strconv.Itoa(k) }

// emit adds name = op args {attrs} on device d; name must be fresh (an
// original name on the merge device, or one fresh returned).
func (w *rewriter) emit(name, op string, args []*graph.Node, attrs graph.Attrs, d graph.Device) *graph.Node {
	n, err := w.out.Apply(name, op, args, attrs)
	if err != nil {
		panic(internalError{fmt.Errorf("replicate: internal error building %%%s: %w", name, err)})
	}
	n.Device = d
	return n
}

// isBatchDim reports whether n is a dim node measuring the batch axis.
func (w *rewriter) isBatchDim(n *graph.Node) bool {
	return n.Op == "dim" && w.an.Of(n).Placement == Merged && w.an.Of(n).Flow == graph.BatchReduce
}

// isFreeDim reports whether n is a dim node of a non-batch axis of a
// replicated value: a constant.
func (w *rewriter) isFreeDim(n *graph.Node) bool {
	return n.Op == "dim" && w.an.Of(n).Placement == Free && w.an.Of(n.Args[0]).Placement == Replicated
}

// needs returns, per source node ID, whether the node is needed on the
// replicas' devices and whether it is needed on the merge device.
//
// An assign (graph/assign.go) happens on the replicas when combinations
// do and its value can be made there (from combined values and
// batch-free ones: an optimizer's update of a param or its moments), each
// replica updating its own resident copy, and on the merge device too
// when what the outputs need reads the target there; else on the merge
// device only (--combine merge: the replicas then copy the updated param
// every run).
func (w *rewriter) needs() (onReplicas, onMerge []bool) {
	nodes := w.src.Nodes
	var cand []bool
	if w.onReplicasAR() {
		cand = w.combinable()
	}
	assigns := graph.Assigns(w.src)
	if len(assigns) == 0 {
		return w.propagate(cand, nil, nil, nil)
	}
	// Where the outputs alone read the targets.
	live := make([]bool, len(nodes))
	for _, o := range w.src.Outputs {
		live[o.ID] = true
	}
	for i := len(nodes) - 1; i >= 0; i-- {
		if live[i] {
			for _, a := range nodes[i].Args {
				live[a.ID] = true
			}
		}
	}
	_, readMerge := w.propagate(cand, nil, nil, live)
	seedReplicas, seedMerge := make([]bool, len(nodes)), make([]bool, len(nodes))
	for _, a := range assigns {
		p, v := a.Args[0], a.Args[1]
		if cand != nil && (cand[v.ID] || w.an.Of(v).Placement == Free) {
			seedReplicas[a.ID] = true
			seedMerge[a.ID] = readMerge[p.ID] && !w.mergeIsReplica()
		} else {
			seedMerge[a.ID] = true
		}
	}
	return w.propagate(cand, seedReplicas, seedMerge, nil)
}

// propagate marks, from the outputs (and the assigns seeded), the source
// nodes needed on the replicas and on the merge device, and which
// combinations happen on the replicas (w.ar); only the nodes live says
// are, when it is not nil.
func (w *rewriter) propagate(cand, seedReplicas, seedMerge, live []bool) (onReplicas, onMerge []bool) {
	nodes := w.src.Nodes
	onReplicas, onMerge = make([]bool, len(nodes)), make([]bool, len(nodes))
	w.ar = make([]bool, len(nodes))
	for _, o := range w.src.Outputs {
		onMerge[o.ID] = true
	}
	for i := len(nodes) - 1; i >= 0; i-- {
		n := nodes[i]
		v := w.an.Of(n)
		if n.IsLeaf() || w.isBatchDim(n) || w.isFreeDim(n) || live != nil && !live[i] {
			continue
		}
		replicas := v.Placement == Replicated || (v.Placement == Merged && v.Flow == graph.BatchReduce) || (v.Placement == Free && onReplicas[i])
		merge := (v.Placement == Merged && v.Flow != graph.BatchReduce) || (v.Placement == Free && onMerge[i])
		if n.Op == graph.OpAssign {
			if seedReplicas != nil {
				onReplicas[i] = onReplicas[i] || seedReplicas[i]
				onMerge[i] = onMerge[i] || seedMerge[i]
			}
			replicas, merge = onReplicas[i], onMerge[i]
		} else if cand != nil && cand[i] && (onReplicas[i] || w.opts.Combine == CombineAllreduce && onMerge[i]) {
			w.ar[i] = true
			replicas, merge = true, false
		}
		args := n.Args
		if v.Flow == graph.BatchStats && w.opts.BatchNorm == BatchNormSync {
			args = args[:3] // the running mean and var are not read
		}
		for _, a := range args {
			onReplicas[a.ID] = onReplicas[a.ID] || replicas
			onMerge[a.ID] = onMerge[a.ID] || merge
		}
	}
	return onReplicas, onMerge
}

func (w *rewriter) run() error {
	an, err := Analyze(w.src, w.opts.BatchNorm)
	if err != nil {
		return err
	}
	w.an = an
	onReplicas, onMerge := w.needs()

	// Leaves first, on the merge device, under their own names.
	for _, n := range w.src.Nodes {
		if !n.IsLeaf() {
			continue
		}
		var c *graph.Node
		var err error
		switch n.Op {
		case graph.OpInput:
			c, err = w.out.Input(n.Name, n.Type)
		case graph.OpParam:
			c, err = w.out.Param(n.Name, n.Type)
		case graph.OpConst:
			c, err = w.out.Const(n.Name, n.Type, n.Data)
		}
		if err != nil {
			panic(internalError{err})
		}
		c.Device, c.Pos = w.opts.Merge, n.Pos
		w.merged[n.ID] = c
		if w.batchIn.n == nil && w.an.Of(n).Placement == Replicated {
			w.batchIn.n, w.batchIn.axis = c, w.an.Of(n).Axis
		}
	}
	// One share of every batch-carrying input per replica.
	for _, n := range w.src.Nodes {
		if n.Op != graph.OpInput || w.an.Of(n).Placement != Replicated || !onReplicas[n.ID] {
			continue
		}
		axis := w.an.Of(n).Axis
		reps := make([]*graph.Node, w.r())
		for k := range reps {
			attrs := graph.Attrs{{Name: "axis", Value: graph.Int(int64(axis))},
				{Name: "part", Value: graph.Int(int64(k))}, {Name: "parts", Value: graph.Int(int64(w.r()))}}
			if w.opts.Split != graph.Balanced {
				attrs = append(attrs, graph.Attr{Name: "split", Value: graph.Ident(string(w.opts.Split))})
			}
			if w.bound > 0 {
				s, e := graph.SplitBounds(w.bound, w.r(), k, w.opts.Split)
				attrs = append(attrs, graph.Attr{Name: "start", Value: graph.Int(s)}, graph.Attr{Name: "end", Value: graph.Int(e)})
			}
			reps[k] = w.emit(w.fresh(repName(n.Name, k)), "slice", []*graph.Node{w.merged[n.ID]}, attrs, w.devs[k])
		}
		w.reps[n.ID] = reps
	}
	// Params, consts and whole inputs the replicas read, copied once each.
	for _, n := range w.src.Nodes {
		if n.IsLeaf() && onReplicas[n.ID] && w.an.Of(n).Placement == Free {
			w.copyToReplicas(n)
		}
	}
	for _, n := range w.src.Nodes {
		if n.IsLeaf() {
			continue
		}
		v := w.an.Of(n)
		switch {
		case n.Op == graph.OpAssign:
			w.assignNode(n, onReplicas[n.ID], onMerge[n.ID])
		case w.isFreeDim(n):
			ax, err := n.NormAxis("axis", n.Args[0].Type.Rank())
			if err != nil {
				panic(internalError{err})
			}
			size, _ := n.Args[0].Type.Shape[ax].Value()
			w.merged[n.ID] = w.constant(n.Name, n.Type.DType, float64(size))
			if onReplicas[n.ID] {
				w.copyToReplicas(n)
			}
		case v.Placement == Free:
			if onMerge[n.ID] || (onReplicas[n.ID] && w.mergeIsReplica()) {
				w.merged[n.ID] = w.emit(n.Name, n.Op, w.argsAtMerge(n), n.Attrs.Clone(), w.opts.Merge)
			}
			if onReplicas[n.ID] {
				for k, d := range w.devs {
					if d != w.opts.Merge {
						w.place(n, k, w.emit(w.fresh(repName(n.Name, k)), n.Op, w.argsAt(n, k), n.Attrs.Clone(), d))
					}
				}
			}
		case v.Placement == Replicated:
			if v.Flow == graph.BatchStats && w.opts.BatchNorm == BatchNormSync {
				w.syncBatchnorm(n, v.Axis)
			} else {
				w.parallel(n)
			}
			if onMerge[n.ID] {
				w.merged[n.ID] = w.gather(n, v)
			}
		default: // Merged
			switch {
			case w.isBatchDim(n):
				dt, _ := n.Attr("dtype")
				attrs := graph.Attrs{{Name: "axis", Value: graph.Int(int64(w.batchIn.axis))}, {Name: "dtype", Value: dt}}
				w.merged[n.ID] = w.emit(n.Name, "dim", []*graph.Node{w.batchIn.n}, attrs, w.opts.Merge)
			case w.ar[n.ID] && v.Flow == graph.BatchReduce && isReduction(n.Op):
				w.reductionAR(n, w.an.Of(n.Args[0]).Axis, onMerge[n.ID])
			case w.ar[n.ID] && v.Flow == graph.BatchReduce:
				w.sumOfPartialsAR(n, onMerge[n.ID])
			case w.ar[n.ID]:
				w.derivedAR(n, onMerge[n.ID])
			case v.Flow == graph.BatchReduce && isReduction(n.Op):
				w.reduction(n, w.an.Of(n.Args[0]).Axis)
			case v.Flow == graph.BatchReduce:
				w.sumOfPartials(n)
			default:
				w.merged[n.ID] = w.emit(n.Name, n.Op, w.argsAtMerge(n), n.Attrs.Clone(), w.opts.Merge)
			}
			if onReplicas[n.ID] && !w.ar[n.ID] {
				w.copyToReplicas(n)
			}
		}
	}
	outs := make([]*graph.Node, len(w.src.Outputs))
	for i, o := range w.src.Outputs {
		outs[i] = w.atMerge(o)
	}
	if err := w.out.SetOutputs(outs...); err != nil {
		panic(internalError{err})
	}
	w.out.OutputPos = w.src.OutputPos
	return nil
}

// gather concatenates the replicas' shares of source node n, whose
// analysis is v, into the whole value on the merge device. A share that is
// one block of the batch axis (outer factor 1) is joined along that axis.
// A share of a folded axis with outer factor O > 1 ([S*N,E] from
// [S,N,E]) is O blocks: each replica views its share with the axis split
// as [O, N.k*(Mul/O)], the views are joined on the inner axis, and the
// whole is viewed as n's shape again.
func (w *rewriter) gather(n *graph.Node, v Value) *graph.Node {
	axis := func(a int) graph.Attrs { return graph.Attrs{{Name: "axis", Value: graph.Int(int64(a))}} }
	if v.Outer <= 1 {
		return w.emit(n.Name, "concat", w.reps[n.ID], axis(v.Axis), w.opts.Merge)
	}
	split := func(t graph.Type) graph.AttrValue {
		var list []graph.AttrValue
		for i, d := range t.Shape {
			if i != v.Axis {
				list = append(list, graph.DimAttr(d))
				continue
			}
			inner := d
			inner.Mul /= v.Outer
			list = append(list, graph.Int(v.Outer), graph.DimAttr(inner))
		}
		return graph.AttrValue{Kind: graph.AttrList, List: list}
	}
	views := make([]*graph.Node, w.r())
	for k, r := range w.reps[n.ID] {
		views[k] = w.emit(w.fresh(n.Name+".split.r"+strconv.Itoa(k)), "reshape", []*graph.Node{r},
			graph.Attrs{{Name: "shape", Value: split(r.Type)}}, w.devs[k])
	}
	joined := w.emit(w.fresh(n.Name+".joined"), "concat", views, axis(v.Axis+1), w.opts.Merge)
	return w.emit(n.Name, "reshape", []*graph.Node{joined},
		graph.Attrs{{Name: "shape", Value: graph.ShapeAttr(n.Type.Shape)}}, w.opts.Merge)
}

func (w *rewriter) mergeIsReplica() bool {
	for _, d := range w.devs {
		if d == w.opts.Merge {
			return true
		}
	}
	return false
}

// copyToReplicas copies the merge-device value of source node n to every
// replica's device (but the merge device itself).
func (w *rewriter) copyToReplicas(n *graph.Node) {
	if n.Type.HasSymbol() {
		panic(internalError{fmt.Errorf("replicate: internal error: copying whole-batch %%%s to the replicas", n.Name)})
	}
	for k, d := range w.devs {
		if d != w.opts.Merge {
			w.place(n, k, w.emit(w.fresh(repName(n.Name, k)), "copy", []*graph.Node{w.atMerge(n)}, nil, d))
		}
	}
}

func (w *rewriter) argsAtMerge(n *graph.Node) []*graph.Node {
	args := make([]*graph.Node, len(n.Args))
	for i, a := range n.Args {
		args[i] = w.atMerge(a)
	}
	return args
}

func (w *rewriter) argsAt(n *graph.Node, k int) []*graph.Node {
	args := make([]*graph.Node, len(n.Args))
	for i, a := range n.Args {
		args[i] = w.atReplica(a, k)
	}
	return args
}

// parallel emits one clone of n per replica.
func (w *rewriter) parallel(n *graph.Node) {
	reps := make([]*graph.Node, w.r())
	for k := range reps {
		reps[k] = w.emit(w.fresh(repName(n.Name, k)), n.Op, w.argsAt(n, k), w.shareAttrs(n, k), w.devs[k])
	}
	w.reps[n.ID] = reps
}

// shareAttrs returns n's attributes for replica k: a reshape's (or an
// expand's) shape names the replica's share of the batch instead of the
// whole, and a training dropout keys its mask by the original node, so
// that each sample gets the mask it gets on one device.
func (w *rewriter) shareAttrs(n *graph.Node, k int) graph.Attrs {
	attrs := n.Attrs.Clone()
	if n.Op == "dropout" {
		if key, _ := n.Attr("key"); key.Str == "" && n.Attrs.Has("training") {
			return attrs.Set("key", graph.AttrValue{Kind: graph.AttrString, Str: n.Name})
		}
		return attrs
	}
	if n.Op != "reshape" && n.Op != "expand" {
		return attrs
	}
	shape, _ := attrs.Get("shape")
	for i, e := range shape.List {
		if e.Kind == graph.AttrIdent && e.Str == w.sym {
			shape.List[i].Str = w.sym + "." + strconv.Itoa(k)
		}
	}
	return attrs.Set("shape", shape)
}

// atMerge returns the whole value of source node v on the merge device.
func (w *rewriter) atMerge(v *graph.Node) *graph.Node {
	m := w.merged[v.ID]
	if m == nil {
		panic(internalError{fmt.Errorf("replicate: internal error: %%%s is not on the merge device", v.Name)})
	}
	return m
}

// place records p as source node n's batch-free value on replica k's device.
func (w *rewriter) place(n *graph.Node, k int, p *graph.Node) {
	if w.placed[n.ID] == nil {
		w.placed[n.ID] = make([]*graph.Node, w.r())
	}
	w.placed[n.ID][k] = p
}

// atReplica returns source node v as replica k sees it: its own share, or a
// batch-free value made on (or copied to) the replica's device.
func (w *rewriter) atReplica(v *graph.Node, k int) *graph.Node {
	if reps := w.reps[v.ID]; reps != nil {
		return reps[k]
	}
	var p *graph.Node
	if w.placed[v.ID] != nil {
		p = w.placed[v.ID][k]
	}
	d := w.devs[k]
	if p == nil && d == w.opts.Merge {
		return w.atMerge(v)
	}
	if p == nil {
		panic(internalError{fmt.Errorf("replicate: internal error: %%%s is not on %s", v.Name, d)})
	}
	return p
}

// copyTo returns the generated merge-device node m on replica k, copied
// there once.
func (w *rewriter) copyTo(m *graph.Node, k int) *graph.Node {
	if w.devs[k] == w.opts.Merge {
		return m
	}
	if c := w.copies[m]; c != nil && c[k] != nil {
		return c[k]
	}
	if w.copies == nil {
		w.copies = map[*graph.Node][]*graph.Node{}
	}
	if w.copies[m] == nil {
		w.copies[m] = make([]*graph.Node, w.r())
	}
	c := w.emit(w.fresh(repName(m.Name, k)), "copy", []*graph.Node{m}, nil, w.devs[k])
	w.copies[m][k] = c
	return c
}

func (w *rewriter) constant(name string, dt graph.DType, v float64) *graph.Node {
	c, err := w.out.Const(name, graph.Type{DType: dt, Shape: []graph.Dim{}}, []float64{v})
	if err != nil {
		panic(internalError{err})
	}
	c.Device = w.opts.Merge
	return c
}

// combine concatenates per-replica partials (each of size 1 on axis b) on
// the merge device and reduces them with op over axes.
func (w *rewriter) combine(name, op string, partials []*graph.Node, b int, axes []int, keep bool) *graph.Node {
	parts := w.emit(w.fresh(strings.TrimSuffix(name, ".sum")+".parts"), "concat", partials, graph.Attrs{{Name: "axis", Value: graph.Int(int64(b))}}, w.opts.Merge)
	attrs := graph.Attrs{{Name: "axes", Value: ints(axes)}, {Name: "keepdims", Value: graph.BoolAttr(keep)}}
	return w.emit(name, op, []*graph.Node{parts}, attrs, w.opts.Merge)
}

func ints(xs []int) graph.AttrValue {
	v := make([]int64, len(xs))
	for i, x := range xs {
		v[i] = int64(x)
	}
	return graph.Ints(v...)
}

// partials emits op over axes with keepdims on every replica of x.
func (w *rewriter) partials(base, op string, x *graph.Node, axes []int) []*graph.Node {
	out := make([]*graph.Node, w.r())
	attrs := graph.Attrs{{Name: "axes", Value: ints(axes)}, {Name: "keepdims", Value: graph.BoolAttr(true)}}
	for k := range out {
		out[k] = w.emit(w.fresh(repName(base, k)), op, []*graph.Node{w.atReplica(x, k)}, attrs.Clone(), w.devs[k])
	}
	return out
}

// reduction: sum, mean, max or min over axes that include the batch axis b.
func (w *rewriter) reduction(n *graph.Node, b int) {
	x := n.Args[0]
	axes, err := n.ReduceAxes(x.Type.Rank())
	if err != nil {
		panic(internalError{err})
	}
	keep := false
	if v, ok := n.Attr("keepdims"); ok {
		keep = v.Bool
	}
	op := n.Op
	if op == "mean" {
		op = "sum"
	}
	ps := w.partials(n.Name+".part", op, x, axes)
	if n.Op != "mean" {
		w.merged[n.ID] = w.combine(n.Name, op, ps, b, axes, keep)
	} else {
		total := w.combine(w.fresh(n.Name+".sum"), "sum", ps, b, axes, keep)
		count := w.count(n.Name, x, axes, b)
		w.merged[n.ID] = w.emit(n.Name, "div", []*graph.Node{total, count}, nil, w.opts.Merge)
	}
}

// count emits the number of elements of source x over axes (b among them)
// as a scalar of x's type: a constant for a bound batch, else the batch
// size measured at run time times the other axes.
func (w *rewriter) count(base string, x *graph.Node, axes []int, b int) *graph.Node {
	dt := x.Type.DType
	other := x.Type.Shape[b].Mul // a folded batch axis holds N*Mul elements
	for _, a := range axes {
		if a != b {
			v, _ := x.Type.Shape[a].Value()
			other *= v
		}
	}
	if w.bound > 0 {
		return w.constant(w.fresh(base+".count"), dt, float64(w.bound*other))
	}
	if other == 1 {
		attrs := graph.Attrs{{Name: "axis", Value: graph.Int(int64(w.batchIn.axis))}, {Name: "dtype", Value: graph.Ident(dt.String())}}
		return w.emit(w.fresh(base+".count"), "dim", []*graph.Node{w.batchIn.n}, attrs, w.opts.Merge)
	}
	attrs := graph.Attrs{{Name: "axis", Value: graph.Int(int64(w.batchIn.axis))}, {Name: "dtype", Value: graph.Ident(dt.String())}}
	nb := w.emit(w.fresh(base+".batch"), "dim", []*graph.Node{w.batchIn.n}, attrs, w.opts.Merge)
	per := w.constant(w.fresh(base+".per_sample"), dt, float64(other))
	return w.emit(w.fresh(base+".count"), "mul", []*graph.Node{nb, per}, nil, w.opts.Merge)
}

func isReduction(op string) bool {
	return op == "sum" || op == "mean" || op == "max" || op == "min"
}

// sumOfPartials: an op that sums over the batch in its own way (a matmul
// that contracts the batch, x^T x; any op whose batch rule says it
// reduces the batch). Each replica applies the op to its shares; the
// partial results are stacked and summed.
func (w *rewriter) sumOfPartials(n *graph.Node) {
	reps := make([]*graph.Node, w.r())
	for k := range reps {
		reps[k] = w.emit(w.fresh(repName(n.Name+".part", k)), n.Op, w.argsAt(n, k), n.Attrs.Clone(), w.devs[k])
	}
	parts := w.emit(w.fresh(n.Name+".parts"), "concat", reps, graph.Attrs{{Name: "axis", Value: graph.Int(0)}}, w.opts.Merge)
	// -1: the runtime may run fewer replicas than parts (a batch smaller
	// than the GPU count), and the stack then has fewer partials.
	shape := []graph.AttrValue{graph.Int(-1)}
	for _, d := range n.Type.Shape {
		shape = append(shape, graph.Int(d.Size))
	}
	stack := w.emit(w.fresh(n.Name+".stack"), "reshape", []*graph.Node{parts},
		graph.Attrs{{Name: "shape", Value: graph.AttrValue{Kind: graph.AttrList, List: shape}}}, w.opts.Merge)
	w.merged[n.ID] = w.emit(n.Name, "sum", []*graph.Node{stack}, graph.Attrs{{Name: "axes", Value: graph.Ints(0)}}, w.opts.Merge)
}

// syncBatchnorm: training-mode batchnorm with statistics over the whole
// batch. Mean and (biased, two-pass) variance per channel are reduced
// across replicas and copied back; each replica then normalises its share
// with them.
func (w *rewriter) syncBatchnorm(n *graph.Node, b int) {
	x := n.Args[0]
	rank := x.Type.Rank()
	c, err := n.NormAxis("axis", rank)
	if err != nil {
		panic(internalError{err})
	}
	var axes []int
	for i := 0; i < rank; i++ {
		if i != c {
			axes = append(axes, i)
		}
	}
	var count *graph.Node
	// stat combines per-replica sums into a statistic (sum / count) on
	// every replica: an allreduce group (sumName.r<k>) on the replicas,
	// or on the merge device (sumName, then name) and copied back.
	// Replica k's copy is made when asked for (at(k)), where it is used.
	stat := func(sumName, name string, partials []*graph.Node) (at func(k int) *graph.Node) {
		out := make([]*graph.Node, w.r())
		if w.onReplicasAR() {
			sums := w.allreduce(sumName, "sum", partials)
			if count == nil {
				count = w.count(n.Name, x, axes, b)
			}
			for k := range out {
				view := w.emit(w.fresh(repName(sumName+".view", k)), "reshape", []*graph.Node{sums[k]},
					graph.Attrs{{Name: "shape", Value: graph.Ints(x.Type.Shape[c].Size)}}, w.devs[k])
				out[k] = w.emit(w.fresh(repName(name, k)), "div", []*graph.Node{view, w.copyTo(count, k)}, nil, w.devs[k])
			}
			return func(k int) *graph.Node { return out[k] }
		}
		sum := w.combine(w.fresh(sumName), "sum", partials, b, axes, false)
		if count == nil {
			count = w.count(n.Name, x, axes, b)
		}
		m := w.emit(w.fresh(name), "div", []*graph.Node{sum, count}, nil, w.opts.Merge)
		return func(k int) *graph.Node {
			if out[k] == nil {
				out[k] = w.copyTo(m, k)
			}
			return out[k]
		}
	}
	mean := stat(n.Name+".sum", n.Name+".mean", w.partials(n.Name+".sum.part", "sum", x, axes))

	// Broadcast shape of per-channel statistics against x: [C,1,...].
	bshape := []graph.AttrValue{graph.Int(x.Type.Shape[c].Size)}
	for i := c + 1; i < rank; i++ {
		bshape = append(bshape, graph.Int(1))
	}
	sq := make([]*graph.Node, w.r())
	sqAttrs := graph.Attrs{{Name: "axes", Value: ints(axes)}, {Name: "keepdims", Value: graph.BoolAttr(true)}}
	for k := range sq {
		d := w.devs[k]
		mb := mean(k)
		if len(bshape) > 1 {
			mb = w.emit(w.fresh(repName(n.Name+".mean_b", k)), "reshape", []*graph.Node{mb},
				graph.Attrs{{Name: "shape", Value: graph.AttrValue{Kind: graph.AttrList, List: bshape}}}, d)
		}
		dev := w.emit(w.fresh(repName(n.Name+".dev", k)), "sub", []*graph.Node{w.atReplica(x, k), mb}, nil, d)
		sq2 := w.emit(w.fresh(repName(n.Name+".sq", k)), "mul", []*graph.Node{dev, dev}, nil, d)
		sq[k] = w.emit(w.fresh(repName(n.Name+".sqsum.part", k)), "sum", []*graph.Node{sq2}, sqAttrs.Clone(), d)
	}
	variance := stat(n.Name+".sqsum", n.Name+".var", sq)
	reps := make([]*graph.Node, w.r())
	attrs := n.Attrs.Set("training", graph.BoolAttr(false))
	for k := range reps {
		args := []*graph.Node{w.atReplica(x, k), w.atReplica(n.Args[1], k), w.atReplica(n.Args[2], k), mean(k), variance(k)}
		reps[k] = w.emit(w.fresh(repName(n.Name, k)), "batchnorm", args, attrs.Clone(), w.devs[k])
	}
	w.reps[n.ID] = reps
}

// bindBatch returns a copy of g whose batch symbol is bound to b.
func bindBatch(g *graph.Graph, b int64) (*graph.Graph, error) {
	sym, bound := g.Batch()
	if sym == "" {
		return g, nil
	}
	if bound != 0 {
		if bound != b {
			return nil, fmt.Errorf("--batch %d conflicts with the model's batch %s=%d", b, sym, bound)
		}
		return g, nil
	}
	c := g.Clone()
	for _, n := range c.Nodes {
		if n.Op == graph.OpInput {
			if ax := n.Type.BatchAxis(); ax >= 0 {
				n.Type.Shape[ax].Bound = b
			}
			continue
		}
		if n.IsLeaf() {
			continue
		}
		t, err := graph.Infer(n)
		if err != nil {
			var ge *graph.Error
			if errors.As(err, &ge) {
				return nil, err
			}
			return nil, &graph.Error{File: g.File, Pos: n.Pos, Msg: fmt.Sprintf("%%%s: with batch %d: %v", n.Name, b, err)}
		}
		n.Type = t
	}
	return c, nil
}
