// Package lower cuts a placed graph into stages: in each stage, the host
// transfers that feed it (slices out of a tensor, copies, concatenations),
// then at most one program per device, all of which may run at once.
//
// A node is a transfer when it is a slice, copy or concat that reads a value
// placed on another device; every other non-leaf node belongs to the
// program of its device in its stage. Stages are cut at device crossings:
// a program never waits for another device inside a stage, and a transfer
// reads only values finished in earlier stages (or other transfers before
// it in the same stage). For a graph from the replicate pass this gives
// alternating stages: the replicas all at once (with whatever the merge
// device can do meanwhile), then the merge device combining what the
// replicas produced; a value combined on the merge device and copied back
// to the replicas opens the next replica stage.
//
// Nodes are scheduled as late as the stage count allows, so that
// replicas of one node land in one stage even when the merge device is
// itself a replica. Nodes that no output or assign depends on are
// dropped. An unplaced graph is one device's program in one stage.
//
// An assign (graph/assign.go) runs in no stage: its value is a program
// output kept to the end of the run, which the runtime then makes the
// target's value (Plan.Assigns). A transfer that depends on params and
// constants only is resident, unless it depends on an assigned target
// and is not one: such a value changes with every run.
package lower

import (
	"fmt"
	"slices"
	"strings"

	"multigpu/graph"
)

// TransferKind is what a transfer does to move a value between devices.
type TransferKind uint8

// The kinds of transfer.
const (
	// Copy moves a whole value to another device.
	Copy TransferKind = iota + 1
	// Slice moves a range of one axis of a value (a replica's share of the
	// batch, or start:end) to another device.
	Slice
	// Concat joins values from several devices along an axis, on the
	// node's device.
	Concat
	// AllReduce is one member of an allreduce group (graph/collective.go):
	// the runtime runs the whole group at once, when it meets its first
	// member, and gives every member the combined value on its device.
	AllReduce
)

var transferNames = [...]string{Copy: "copy", Slice: "slice", Concat: "concat", AllReduce: "allreduce"}

// String returns the op name of k.
func (k TransferKind) String() string { return transferNames[k] }

// Transfer is one slice, copy, concat or allreduce node that reads across
// devices. The runtime performs it on tensors, outside every device
// program.
type Transfer struct {
	Kind TransferKind
	Node *graph.Node
	// Stage is the stage whose programs it feeds; it runs before them.
	Stage int
	// Resident reports that the value depends on params and constants
	// only, none of them assigned (or that it is an assign's target
	// itself): it stays valid on its device until the params are set, or
	// its assign replaces it, and need not move on every run. (Never for
	// an allreduce.)
	Resident bool
	// Group lists the members of an allreduce's group in graph order, all
	// in one stage (the node itself among them); nil for other kinds.
	Group []*graph.Node
}

// Program is the work of one device in one stage: Nodes in graph order.
type Program struct {
	Stage  int
	Device graph.Device
	// Nodes are computed here, in graph order.
	Nodes []*graph.Node
	// Inputs are the values Nodes read but do not compute: leaves,
	// transfer results, and values computed on this device in earlier
	// stages. In graph order.
	Inputs []*graph.Node
	// Outputs are the values of Nodes needed after this program: by later
	// stages, by transfers, or as graph outputs. In graph order.
	Outputs []*graph.Node
}

// Stage is a set of transfers followed by programs that run at once.
type Stage struct {
	Index int
	// Transfers run first, in order (a transfer may read one before it).
	Transfers []*Transfer
	// Programs are independent of each other; at most one per device,
	// sorted by device.
	Programs []*Program
}

// Plan is a lowered graph.
type Plan struct {
	Graph  *graph.Graph
	Stages []*Stage
	// Devices lists every device that runs a program or receives a
	// transfer, sorted (cpu first, then GPUs by index).
	Devices []graph.Device
	// Device gives the device of each node, by node ID (an unplaced graph's
	// nodes are all on Options.Default).
	Device []graph.Device
	// StageOf gives, by node ID, the stage in which a node is computed or
	// transferred; -1 for leaves and for nodes no output needs.
	StageOf []int
	// LastUse gives, by node ID, the last stage that reads the value
	// (len(Stages) for graph outputs, -1 when nothing reads it).
	LastUse []int
	// Static reports, by node ID, that a value depends on params and
	// constants only.
	Static []bool
	// Merge is the device that holds the graph's inputs (the replicate
	// pass's merge device), or of its params when it has no inputs: what
	// Traffic counts bytes to and from.
	Merge graph.Device
	// Assigns lists the graph's assign nodes, in graph order: after a run
	// that succeeds, each target (operand 0: a param, or a resident
	// transfer) holds the value (operand 1) the run computed.
	Assigns []*graph.Node
}

// Options configures Lower.
type Options struct {
	// Default is the device of every node of an unplaced graph; the zero
	// Device means graph.HostCPU.
	Default graph.Device
	// Check reports whether node n can be lowered to device d (its op,
	// attributes and element type); nil accepts every node. Lower calls it
	// for every node it keeps but leaves and transfers.
	Check func(n *graph.Node, d graph.Device) error
}

// Error is a node that cannot be lowered.
type Error struct {
	File string
	Pos  graph.Pos
	Node string
	Op   string
	Err  error
}

// Error returns "file:line:col: lower: %node (op): message".
func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File + ":")
	}
	if e.Pos.IsValid() {
		b.WriteString(e.Pos.String() + ":")
	}
	if b.Len() > 0 {
		b.WriteByte(' ')
	}
	fmt.Fprintf(&b, "lower: %%%s (%s): %v", e.Node, e.Op, e.Err)
	return b.String()
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// IsTransfer reports whether n is a slice, copy, concat or allreduce that
// reads a value placed on another device.
func IsTransfer(n *graph.Node) bool {
	switch n.Op {
	case "slice", "copy", "concat", "allreduce":
		for _, a := range n.Args {
			if a.Device != n.Device {
				return true
			}
		}
	}
	return false
}

// Lower verifies g and cuts it into stages. Every error names the node.
func Lower(g *graph.Graph, opts Options) (*Plan, error) {
	if err := graph.Verify(g); err != nil {
		return nil, err
	}
	if !opts.Default.IsSet() {
		opts.Default = graph.HostCPU
	}
	l := &lowerer{g: g, opts: opts, n: len(g.Nodes)}
	return l.run()
}

type lowerer struct {
	g    *graph.Graph
	opts Options
	n    int
}

func (l *lowerer) errorf(n *graph.Node, format string, args ...any) error {
	return &Error{File: l.g.File, Pos: n.Pos, Node: n.Name, Op: n.Op, Err: fmt.Errorf(format, args...)}
}

func (l *lowerer) run() (*Plan, error) {
	g := l.g
	p := &Plan{
		Graph:   g,
		Device:  make([]graph.Device, l.n),
		StageOf: make([]int, l.n),
		LastUse: make([]int, l.n),
		Static:  make([]bool, l.n),
	}
	transfer := make([]bool, l.n)
	assign := make([]bool, l.n)
	target := make([]bool, l.n)  // assigned by an assign
	changes := make([]bool, l.n) // depends on an assigned target
	for _, n := range g.Nodes {
		if n.Op == graph.OpAssign {
			target[n.Args[0].ID] = true
		}
	}
	for i, n := range g.Nodes {
		assign[i] = n.Op == graph.OpAssign
		for _, a := range n.Args {
			changes[i] = changes[i] || target[a.ID] || changes[a.ID]
		}
		p.Device[i] = n.Device
		if !n.Device.IsSet() {
			p.Device[i] = l.opts.Default
		}
		transfer[i] = !n.IsLeaf() && IsTransfer(n)
		p.Static[i] = n.Op == graph.OpParam || n.Op == graph.OpConst
		if !n.IsLeaf() {
			p.Static[i] = true
			for _, a := range n.Args {
				p.Static[i] = p.Static[i] && p.Static[a.ID]
			}
		}
	}

	// needed: the nodes some output depends on.
	needed := make([]bool, l.n)
	for _, o := range graph.Roots(g) {
		needed[o.ID] = true
	}
	for i := l.n - 1; i >= 0; i-- {
		if needed[i] {
			for _, a := range g.Nodes[i].Args {
				needed[a.ID] = true
			}
		}
	}
	for i, n := range g.Nodes {
		if !needed[i] || n.IsLeaf() || transfer[i] || assign[i] || l.opts.Check == nil {
			continue
		}
		if err := l.opts.Check(n, p.Device[i]); err != nil {
			return nil, l.errorf(n, "%v", err)
		}
	}

	// ASAP: the earliest stage of every node; leaves are ready before
	// stage 0 (stage -1).
	asap := make([]int, l.n)
	last := 0
	for i, n := range g.Nodes {
		if n.IsLeaf() || !needed[i] || assign[i] {
			asap[i] = -1
			continue
		}
		s := 0
		for _, a := range n.Args {
			s = max(s, l.ready(a, asap[a.ID], transfer, transfer[i]))
		}
		asap[i] = s
		last = max(last, s)
	}
	// ALAP within the same number of stages.
	alap := make([]int, l.n)
	for i := range alap {
		alap[i] = last
	}
	for i := l.n - 1; i >= 0; i-- {
		n := g.Nodes[i]
		if n.IsLeaf() || !needed[i] || assign[i] {
			alap[i] = -1
			continue
		}
		for _, a := range n.Args {
			if g.Nodes[a.ID].IsLeaf() {
				continue
			}
			lim := alap[i]
			if transfer[i] && !transfer[a.ID] {
				lim-- // a program's value moves at the start of a later stage
			}
			alap[a.ID] = min(alap[a.ID], lim)
		}
	}
	// The members of an allreduce group run at once: in the earliest of
	// their stages (they read the same partials, so all are ready then).
	groups := map[*graph.Node][]*graph.Node{} // by first operand
	for i, n := range g.Nodes {
		if transfer[i] && n.Op == "allreduce" && needed[i] {
			groups[n.Args[0]] = append(groups[n.Args[0]], n)
		}
	}
	for _, members := range groups {
		s := alap[members[0].ID]
		for _, m := range members {
			s = min(s, alap[m.ID])
		}
		for _, m := range members {
			alap[m.ID] = s
		}
	}
	copy(p.StageOf, alap)
	for i, s := range alap {
		if s >= 0 && s < asap[i] {
			panic(fmt.Sprintf("lower: %%%s scheduled in stage %d before its earliest stage %d", g.Nodes[i].Name, s, asap[i]))
		}
	}

	p.Stages = make([]*Stage, last+1)
	for i := range p.Stages {
		p.Stages[i] = &Stage{Index: i}
	}
	progs := map[[2]int]*Program{} // (stage, device index) -> program
	devIndex := map[graph.Device]int{}
	addDev := func(d graph.Device) {
		if _, ok := devIndex[d]; !ok {
			devIndex[d] = len(p.Devices)
			p.Devices = append(p.Devices, d)
		}
	}
	for i, n := range g.Nodes {
		s := p.StageOf[i]
		if s < 0 {
			continue
		}
		d := p.Device[i]
		addDev(d)
		if transfer[i] {
			t := &Transfer{Kind: transferKind(n.Op), Node: n, Stage: s, Resident: p.Static[i] && (target[i] || !changes[i])}
			if t.Kind == AllReduce {
				t.Resident, t.Group = false, groups[n.Args[0]]
			}
			p.Stages[s].Transfers = append(p.Stages[s].Transfers, t)
			continue
		}
		key := [2]int{s, devIndex[d]}
		prog := progs[key]
		if prog == nil {
			prog = &Program{Stage: s, Device: d}
			progs[key] = prog
			p.Stages[s].Programs = append(p.Stages[s].Programs, prog)
		}
		prog.Nodes = append(prog.Nodes, n)
	}
	slices.SortFunc(p.Devices, CompareDevices)
	p.Merge = l.opts.Default
	for _, op := range []string{graph.OpInput, graph.OpParam} {
		if i := slices.IndexFunc(g.Nodes, func(n *graph.Node) bool { return n.Op == op }); i >= 0 {
			p.Merge = p.Device[i]
			break
		}
	}
	for _, st := range p.Stages {
		slices.SortFunc(st.Programs, func(a, b *Program) int { return CompareDevices(a.Device, b.Device) })
	}

	// Inputs, outputs and last uses.
	for i := range p.LastUse {
		p.LastUse[i] = -1
	}
	for _, o := range g.Outputs {
		p.LastUse[o.ID] = len(p.Stages)
	}
	for i, n := range g.Nodes {
		if assign[i] {
			p.Assigns = append(p.Assigns, n)
			for _, a := range n.Args {
				p.LastUse[a.ID] = len(p.Stages)
			}
		}
	}
	owner := make([]*Program, l.n)
	for _, st := range p.Stages {
		for _, prog := range st.Programs {
			for _, n := range prog.Nodes {
				owner[n.ID] = prog
			}
		}
	}
	for i, n := range g.Nodes {
		s := p.StageOf[i]
		if s < 0 {
			continue
		}
		for _, a := range n.Args {
			p.LastUse[a.ID] = max(p.LastUse[a.ID], s)
		}
	}
	for _, st := range p.Stages {
		for _, prog := range st.Programs {
			in := map[*graph.Node]bool{}
			for _, n := range prog.Nodes {
				for _, a := range n.Args {
					if owner[a.ID] != prog {
						in[a] = true
					}
				}
			}
			prog.Inputs = sortedNodes(in)
		}
	}
	outs := map[*Program]map[*graph.Node]bool{}
	mark := func(v *graph.Node, from *Program) {
		if o := owner[v.ID]; o != nil && o != from {
			if outs[o] == nil {
				outs[o] = map[*graph.Node]bool{}
			}
			outs[o][v] = true
		}
	}
	for i, n := range g.Nodes {
		if p.StageOf[i] < 0 {
			continue
		}
		for _, a := range n.Args {
			mark(a, owner[i])
		}
	}
	for _, o := range g.Outputs {
		mark(o, nil)
	}
	for _, a := range p.Assigns {
		mark(a.Args[1], nil)
	}
	for prog, set := range outs {
		prog.Outputs = sortedNodes(set)
	}
	return p, nil
}

// ready returns the first stage in which the value of a (scheduled at s)
// can be read by a node that is a transfer (toTransfer) or not.
func (l *lowerer) ready(a *graph.Node, s int, transfer []bool, toTransfer bool) int {
	switch {
	case a.IsLeaf():
		return 0
	case transfer[a.ID]:
		return s // transfers run in order at the start of their stage
	case toTransfer:
		return s + 1 // a program's result moves at the start of the next stage
	}
	return s
}

func transferKind(op string) TransferKind {
	switch op {
	case "slice":
		return Slice
	case "concat":
		return Concat
	case "allreduce":
		return AllReduce
	}
	return Copy
}

func sortedNodes(set map[*graph.Node]bool) []*graph.Node {
	out := make([]*graph.Node, 0, len(set))
	for n := range set {
		out = append(out, n)
	}
	slices.SortFunc(out, func(a, b *graph.Node) int { return a.ID - b.ID })
	return out
}

// CompareDevices orders devices: cpu first, then GPUs by index (those of
// every rank first, then by rank: graph.CompareDevices).
func CompareDevices(a, b graph.Device) int { return graph.CompareDevices(a, b) }

// String prints the plan, one line per transfer and program, for tests and
// debugging:
//
//	stage 0
//	  slice %x.r0 -> gpu:0
//	  gpu:0: %h.r0 %s.r0 (in %x.r0 %w1.r0; out %s.r0)
func (p *Plan) String() string {
	var b strings.Builder
	for _, st := range p.Stages {
		fmt.Fprintf(&b, "stage %d\n", st.Index)
		for _, t := range st.Transfers {
			res := ""
			if t.Resident {
				res = " (resident)"
			}
			fmt.Fprintf(&b, "  %s %%%s -> %s%s\n", t.Kind, t.Node.Name, p.Device[t.Node.ID], res)
		}
		for _, prog := range st.Programs {
			fmt.Fprintf(&b, "  %s:%s (in%s; out%s)\n", prog.Device, names(prog.Nodes), names(prog.Inputs), names(prog.Outputs))
		}
	}
	for _, a := range p.Assigns {
		fmt.Fprintf(&b, "assign %%%s <- %%%s on %s\n", a.Args[0].Name, a.Args[1].Name, p.Device[a.ID])
	}
	return b.String()
}

func names(ns []*graph.Node) string {
	var b strings.Builder
	for _, n := range ns {
		b.WriteString(" %" + n.Name)
	}
	return b.String()
}

// SliceBounds returns the range [start, end) that slice node n takes of an
// axis of the given size: its start and end, or share part of parts of
// size by its split policy.
func SliceBounds(n *graph.Node, size int64) (start, end int64, err error) {
	if v, ok := n.Attrs.Get("start"); ok {
		e, _ := n.Attrs.Get("end")
		start, end = v.Int, e.Int
	} else {
		part, _ := n.Attrs.Get("part")
		parts, _ := n.Attrs.Get("parts")
		if parts.Int < 1 || part.Int < 0 || part.Int >= parts.Int || parts.Int > size {
			return 0, 0, fmt.Errorf("no share %d of %d of an axis of size %d", part.Int, parts.Int, size)
		}
		policy := graph.SplitPolicy(graph.Balanced)
		if v, ok := n.Attrs.Get("split"); ok {
			policy = graph.SplitPolicy(v.Str)
		}
		start, end = graph.SplitBounds(size, int(parts.Int), int(part.Int), policy)
	}
	if start < 0 || end > size || start >= end {
		return 0, 0, fmt.Errorf("slice [%d, %d) of an axis of size %d", start, end, size)
	}
	return start, end, nil
}
