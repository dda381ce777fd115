package gpu

import (
	"fmt"

	"multigpu/graph"
	"multigpu/runtime/backend"
)

// planIndex plans the ops that index and broadcast: gather and
// gather_grad (whose out-of-range indices the kernels record in status
// words, reported after the program has run), expand (a broadcasting
// copy), argmax and argmin.
func (p *planner) planIndex(s *nodeSpec, np *nodePlan, launch func(string, int, ...arg)) (*nodePlan, error) {
	n := s.n
	total := numel(s.out)
	// status gives the node a pair of status words, reported with the
	// axis and size its indices address.
	status := func(axis, rows int) arg {
		np.status = &statusCheck{slot: p.status, axis: axis, rows: rows}
		p.status++
		return arg{kind: argStatus, i: np.status.slot}
	}
	idx64 := func(t graph.Type) int {
		if t.DType == graph.I64 {
			return 1
		}
		return 0
	}
	switch n.Op {
	case "gather":
		ax, err := n.NormAxis("axis", len(s.in[0]))
		if err != nil {
			return nil, err
		}
		_, rows, inner := split3(s.in[0], ax)
		k := numel(s.in[1])
		launch("gather"+widthSuffix(s.dt.Size()), total, result(), operand(0), operand(1), i64(total),
			i64(rows), i64(k), i64(inner), i64(idx64(n.Args[1].Type)), status(ax, rows))
	case "gather_grad":
		ir := len(s.in[0])
		ax, err := n.NormAxis("axis", len(s.in[1])-ir+1)
		if err != nil {
			return nil, err
		}
		sfx, err := suffix(s.dt)
		if err != nil {
			return nil, err
		}
		outer, rows, inner := split3(s.out, ax)
		k := numel(s.in[0])
		launch("gathergrad"+sfx, outer*inner, result(), operand(0), operand(1), i64(outer*inner),
			i64(rows), i64(k), i64(inner), i64(idx64(n.Args[0].Type)), status(ax, rows))
	case "expand":
		// The result's own strides: broadcast to itself.
		launch("copy"+widthSuffix(s.dt.Size()), total, result(), operand(0), i64(total), p.broadcastMeta(s.out, s.in[0], s.out))
	case "argmax", "argmin":
		ax, err := n.NormAxis("axis", len(s.in[0]))
		if err != nil {
			return nil, err
		}
		sfx := typeSuffix(n.Args[0].Type.DType)
		outer, size, inner := split3(s.in[0], ax)
		isMax := 0
		if n.Op == "argmax" {
			isMax = 1
		}
		launch("arg"+sfx, outer*inner, result(), operand(0), i64(outer*inner), i64(size), i64(inner), i64(isMax))
	default:
		return nil, fmt.Errorf("no gpu kernel for op %s", n.Op)
	}
	return np, nil
}

// statusCheck is a node's pair of status words: the first is set when
// one of its indices was out of range, the second holds that index.
type statusCheck struct {
	slot       int
	axis, rows int
}

// statusWords is the number of words of each status slot.
const statusWords = 2

// err returns the error the words of a slot report, or nil.
func (c *statusCheck) err(words []int64) error {
	if words[0] == 0 {
		return nil
	}
	return backend.IndexError(words[1], c.axis, c.rows)
}
