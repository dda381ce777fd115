package lower

import (
	"fmt"

	"multigpu/graph"
)

// Traffic counts the bytes transfers move between devices in one run,
// by direction relative to the merge device (Plan.Merge): from it to the
// replicas (input shares, params, combined values copied back), from the
// replicas to it (outputs and partials to concatenate), and between two
// devices neither of which is the merge device (an allreduce's partials
// and results).
type Traffic struct {
	FromMerge, ToMerge, Peer int64
	// Resident counts the bytes of resident transfers (params and what is
	// computed from them alone, copied to the replicas), which move only
	// after the params change; they are also counted in the others when
	// they move.
	Resident int64
}

// Total returns the bytes moved in all directions.
func (t Traffic) Total() int64 { return t.FromMerge + t.ToMerge + t.Peer }

// Add counts bytes moved from device from to device to (nothing when
// they are one device).
func (t *Traffic) Add(merge, from, to graph.Device, bytes int64) {
	switch {
	case from == to:
	case from == merge:
		t.FromMerge += bytes
	case to == merge:
		t.ToMerge += bytes
	default:
		t.Peer += bytes
	}
}

// Plus returns the sum of t and u.
func (t Traffic) Plus(u Traffic) Traffic {
	return Traffic{t.FromMerge + u.FromMerge, t.ToMerge + u.ToMerge, t.Peer + u.Peer, t.Resident + u.Resident}
}

// String prints the counts: "1.2 MB from the merge device, 40 kB to it,
// 0 B between replicas".
func (t Traffic) String() string {
	return fmt.Sprintf("%s from the merge device, %s to it, %s between replicas", FormatBytes(t.FromMerge), FormatBytes(t.ToMerge), FormatBytes(t.Peer))
}

// FormatBytes prints a byte count in decimal units (B, kB, MB, GB).
func FormatBytes(b int64) string {
	switch {
	case b < 1000:
		return fmt.Sprintf("%d B", b)
	case b < 1000_000:
		return fmt.Sprintf("%.1f kB", float64(b)/1e3)
	case b < 1000_000_000:
		return fmt.Sprintf("%.1f MB", float64(b)/1e6)
	}
	return fmt.Sprintf("%.2f GB", float64(b)/1e9)
}

// Traffic returns the bytes the plan's transfers move in one run in which
// every transfer runs (resident ones too, as in the first run after the
// params are set), given the concrete type of each node; the graph's
// own types when types is nil, which then must have concrete shapes.
// An allreduce group moves its partials to its first member's device and
// the combined value from there to every other member.
func (p *Plan) Traffic(types func(n *graph.Node) graph.Type) (Traffic, error) {
	if types == nil {
		types = func(n *graph.Node) graph.Type { return n.Type }
	}
	size := func(n *graph.Node) (int64, error) {
		t := types(n)
		e, ok := t.Elems()
		if !ok {
			return 0, fmt.Errorf("lower: %%%s has no concrete shape (%s): give the batch a size", n.Name, t)
		}
		return e * t.DType.Size(), nil
	}
	var tr Traffic
	for _, st := range p.Stages {
		for _, t := range st.Transfers {
			n := t.Node
			to := p.Device[n.ID]
			switch t.Kind {
			case Copy, Slice:
				b, err := size(n)
				if err != nil {
					return tr, err
				}
				tr.Add(p.Merge, p.Device[n.Args[0].ID], to, b)
				if t.Resident {
					tr.Resident += b
				}
			case Concat:
				for _, a := range n.Args {
					b, err := size(a)
					if err != nil {
						return tr, err
					}
					tr.Add(p.Merge, p.Device[a.ID], to, b)
				}
			case AllReduce:
				if t.Group[0] != n {
					continue // counted with the group's root
				}
				b, err := size(n)
				if err != nil {
					return tr, err
				}
				for _, a := range n.Args {
					tr.Add(p.Merge, p.Device[a.ID], to, b)
				}
				for _, m := range t.Group {
					tr.Add(p.Merge, to, p.Device[m.ID], b)
				}
			}
		}
	}
	return tr, nil
}
