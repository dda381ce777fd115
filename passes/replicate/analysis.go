package replicate

import (
	"fmt"

	"multigpu/graph"
)

// Placement says where the value of a source node lives after replication.
type Placement uint8

// The placements.
const (
	// Free values do not depend on the batch: params, consts, inputs fed
	// whole, and what is computed from them alone. They are copied or
	// recomputed wherever they are needed.
	Free Placement = iota
	// Replicated values exist once per replica, each carrying its share of
	// the batch on Axis.
	Replicated
	// Merged values exist once, on the merge device: the combined result
	// of a reduction over the batch, or a value that needed the whole
	// batch (and everything computed from it).
	Merged
)

var placementNames = [...]string{"free", "replicated", "merged"}

// String names p.
func (p Placement) String() string { return placementNames[p] }

// Value is what the batch analysis says of one source node.
type Value struct {
	Placement Placement
	// Axis is the batch axis of a Replicated value.
	Axis int
	// Outer is the outer factor of a Replicated value's batch axis when
	// the batch is folded with other sizes (graph.BatchFlow.Outer): 1 when
	// each replica's share is one block of that axis.
	Outer int64
	// Flow is how the node's op treats the batch (graph.BatchRule), with
	// graph.BatchCrossing also for nodes downstream of a whole-batch value.
	Flow graph.BatchKind
}

// Analysis is the batch analysis of a graph: for every node, whether and on
// which axis it carries the batch, and where it will run.
type Analysis struct {
	values []Value // by node ID
}

// Of returns the analysis of node n.
func (a *Analysis) Of(n *graph.Node) Value { return a.values[n.ID] }

// Analyze runs the batch analysis on a verified graph. Batch-crossing ops
// are not errors; batchnorm in training mode is, unless mode chooses how to
// replicate it.
func Analyze(g *graph.Graph, mode BatchNormMode) (*Analysis, error) {
	a := &Analysis{values: make([]Value, len(g.Nodes))}
	for i, n := range g.Nodes {
		if n.ID != i {
			panic(fmt.Sprintf("replicate.Analyze: node %%%s has ID %d at index %d", n.Name, n.ID, i))
		}
		v, err := a.node(g, n, mode)
		if err != nil {
			return nil, err
		}
		a.values[i] = v
	}
	return a, nil
}

func (a *Analysis) node(g *graph.Graph, n *graph.Node, mode BatchNormMode) (Value, error) {
	if n.IsLeaf() {
		if ax := n.Type.BatchAxis(); n.Op == graph.OpInput && ax >= 0 {
			return Value{Placement: Replicated, Axis: ax, Outer: 1, Flow: graph.BatchParallel}, nil
		}
		return Value{Placement: Free, Flow: graph.BatchFree}, nil
	}
	axes := make([]int, len(n.Args))
	outers := make([]int64, len(n.Args))
	anyMerged := false
	for i, arg := range n.Args {
		v := a.values[arg.ID]
		axes[i] = -1
		switch v.Placement {
		case Replicated:
			axes[i], outers[i] = v.Axis, v.Outer
		case Merged:
			if arg.Type.HasSymbol() {
				// Downstream of an op that needed the whole batch.
				return Value{Placement: Merged, Flow: graph.BatchCrossing}, nil
			}
			anyMerged = true
		}
	}
	if n.Op == "dim" && axes[0] >= 0 {
		ax, err := n.NormAxis("axis", n.Args[0].Type.Rank())
		if err != nil {
			return Value{}, err
		}
		if ax == axes[0] && n.Args[0].Type.Shape[ax].Mul == 1 {
			return Value{Placement: Merged, Flow: graph.BatchReduce}, nil
		}
		if ax == axes[0] {
			// The size of a folded batch axis: measured on the merge device.
			return Value{Placement: Merged, Flow: graph.BatchCrossing}, nil
		}
		return Value{Placement: Free, Flow: graph.BatchFree}, nil
	}
	flow := graph.BatchRuleOuter(n, axes, outers)
	switch flow.Kind {
	case graph.BatchFree:
		if anyMerged {
			return Value{Placement: Merged, Flow: graph.BatchFree}, nil
		}
		return Value{Placement: Free, Flow: graph.BatchFree}, nil
	case graph.BatchParallel:
		return Value{Placement: Replicated, Axis: flow.Axis, Outer: flow.Outer, Flow: flow.Kind}, nil
	case graph.BatchStats:
		if mode == BatchNormRefuse {
			return Value{}, &graph.Error{File: g.File, Pos: n.Pos, Msg: fmt.Sprintf(
				"%%%s: batchnorm with training=true normalises with statistics of the whole batch; "+
					"choose --batchnorm sync (exact: statistics over all replicas) or --batchnorm per-replica "+
					"(each replica's own statistics, as Keras did)", n.Name)}
		}
		return Value{Placement: Replicated, Axis: flow.Axis, Outer: flow.Outer, Flow: flow.Kind}, nil
	}
	return Value{Placement: Merged, Flow: flow.Kind}, nil
}
