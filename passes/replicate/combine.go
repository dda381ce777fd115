package replicate

import (
	"slices"

	"multigpu/graph"
)

// Combinations on the replicas (Options.Combine): a value combined over
// the batch that the replicas use again is an allreduce group, one member
// per replica, each on its replica's device, instead of partials
// concatenated and reduced on the merge device and copied back. Values
// computed from such values and batch-free ones alone (a mean's division
// by the count, an optimizer's update) are computed on every replica
// too. The merge device gets a copy of one member's value where it needs
// it (an output). Every member combines the partials in replica order, so
// the result is the bits the merge device computes.

// combinable returns, by source node ID, whether a merged node can be
// made on the replicas: a reduction over the batch or a sum of partials
// (BatchReduce), or a batch-free node whose merged operands are such
// nodes (or the batch size).
func (w *rewriter) combinable() []bool {
	cand := make([]bool, len(w.src.Nodes))
	for i, n := range w.src.Nodes {
		v := w.an.Of(n)
		if n.IsLeaf() || v.Placement != Merged || w.isBatchDim(n) || n.Type.HasSymbol() {
			continue
		}
		switch v.Flow {
		case graph.BatchReduce:
			cand[i] = true
		case graph.BatchFree:
			cand[i] = !slices.ContainsFunc(n.Args, func(a *graph.Node) bool {
				va := w.an.Of(a)
				return va.Placement == Replicated || va.Placement == Merged && !cand[a.ID] && !w.isBatchDim(a)
			})
		}
	}
	return cand
}

// onReplicasAR reports whether combinations happen on the replicas at all.
func (w *rewriter) onReplicasAR() bool { return w.opts.Combine != CombineMerge }

// mergeReplica returns the replica whose value the merge device copies: the
// one on the merge device, else the first.
func (w *rewriter) mergeReplica() int {
	if k := slices.Index(w.devs, w.opts.Merge); k >= 0 {
		return k
	}
	return 0
}

// allreduce emits an allreduce group over partials (one per replica):
// member k is base.r<k> on replica k's device.
func (w *rewriter) allreduce(base, op string, partials []*graph.Node) []*graph.Node {
	var attrs graph.Attrs
	if op != "sum" {
		attrs = graph.Attrs{{Name: "op", Value: graph.Ident(op)}}
	}
	out := make([]*graph.Node, w.r())
	for k := range out {
		out[k] = w.emit(w.fresh(repName(base, k)), "allreduce", partials, attrs.Clone(), w.devs[k])
	}
	return out
}

// placeAll records vals (one per replica) as source node n's value on every
// replica's device, the merge device's among them, and gives the merge
// device a copy of one of them when it needs n.
func (w *rewriter) placeAll(n *graph.Node, vals []*graph.Node, onMerge bool) {
	for k, v := range vals {
		w.place(n, k, v)
	}
	if onMerge {
		w.merged[n.ID] = w.emit(n.Name, "copy", []*graph.Node{vals[w.mergeReplica()]}, nil, w.opts.Merge)
	}
}

// reductionAR: sum, mean, max or min over axes that include the batch axis
// b, as per-replica partials allreduced, reshaped (without keepdims) and,
// for a mean, divided by the whole count on every replica.
func (w *rewriter) reductionAR(n *graph.Node, b int, onMerge bool) {
	x := n.Args[0]
	axes, err := n.ReduceAxes(x.Type.Rank())
	if err != nil {
		panic(internalError{err})
	}
	keep := n.BoolAttr("keepdims")
	op := n.Op
	if op == "mean" {
		op = "sum"
	}
	ps := w.partials(n.Name+".part", op, x, axes)
	base := n.Name
	if n.Op == "mean" {
		base = n.Name + ".sum"
	} else if !keep {
		base = n.Name + ".all"
	}
	vals := w.allreduce(base, op, ps)
	var count *graph.Node
	if n.Op == "mean" {
		count = w.count(n.Name, x, axes, b)
	}
	for k := range vals {
		if !keep {
			name := repName(n.Name, k)
			if n.Op == "mean" {
				name = repName(n.Name+".sum.view", k)
			}
			vals[k] = w.emit(w.fresh(name), "reshape", []*graph.Node{vals[k]},
				graph.Attrs{{Name: "shape", Value: graph.ShapeAttr(n.Type.Shape)}}, w.devs[k])
		}
		if count != nil {
			vals[k] = w.emit(w.fresh(repName(n.Name, k)), "div", []*graph.Node{vals[k], w.copyTo(count, k)}, nil, w.devs[k])
		}
	}
	w.placeAll(n, vals, onMerge)
}

// sumOfPartialsAR: an op that sums over the batch in its own way (x^T x):
// each replica applies it to its shares and the partials are allreduced.
func (w *rewriter) sumOfPartialsAR(n *graph.Node, onMerge bool) {
	reps := make([]*graph.Node, w.r())
	for k := range reps {
		reps[k] = w.emit(w.fresh(repName(n.Name+".part", k)), n.Op, w.argsAt(n, k), n.Attrs.Clone(), w.devs[k])
	}
	w.placeAll(n, w.allreduce(n.Name, "sum", reps), onMerge)
}

// derivedAR: a batch-free node of combined values, computed on every
// replica from its own copies of them.
func (w *rewriter) derivedAR(n *graph.Node, onMerge bool) {
	vals := make([]*graph.Node, w.r())
	for k := range vals {
		vals[k] = w.emit(w.fresh(repName(n.Name, k)), n.Op, w.argsAt(n, k), n.Attrs.Clone(), w.devs[k])
	}
	w.placeAll(n, vals, onMerge)
}

// assignNode emits the update of a param's state (graph/assign.go): on
// every replica, its own copy of the param takes the replica's value
// (replicas), and on the merge device the param itself takes the merge
// device's value (merge), unless the merge device is a replica whose
// update is that.
func (w *rewriter) assignNode(n *graph.Node, replicas, merge bool) {
	p, v := n.Args[0], n.Args[1]
	if replicas {
		for k, d := range w.devs {
			a := w.emit(w.fresh(repName(n.Name, k)), graph.OpAssign, []*graph.Node{w.atReplica(p, k), w.atReplica(v, k)}, nil, d)
			if d == w.opts.Merge {
				w.merged[n.ID] = a
			}
		}
	}
	if merge && w.merged[n.ID] == nil {
		w.merged[n.ID] = w.emit(n.Name, graph.OpAssign, []*graph.Node{w.atMerge(p), w.atMerge(v)}, nil, w.opts.Merge)
	}
}
