package runtime

import (
	"context"
	"fmt"

	"multigpu/graph"
	"multigpu/lower"
	"multigpu/runtime/backend"
)

// groupInst is an allreduce group compiled for one batch size: its
// members and operands that run at that batch (a replica that does not
// run contributes no partial, but its member still gets the combined
// value, so that batch-free state on every device stays alike), and the
// program that combines the partials on the root's device.
type groupInst struct {
	members []*graph.Node // concrete, in graph order; the first is the root
	args    []*graph.Node // concrete operands that run, in operand order
	root    graph.Device
	exe     backend.Executable
	ranks   *rankGroup // for a run across ranks (ranks.go), else nil
}

// compileGroup builds the combination of t's group on its first live
// member's device: one allreduce node over stand-ins of the operands, all
// placed there, run by that device's own kernel (left to right, as a
// reduction over the stacked partials).
func (e *Executor) compileGroup(inst *instance, t *lower.Transfer) (*groupInst, error) {
	if e.opts.Comm != nil {
		return e.compileGroupRanks(inst, t)
	}
	gi := &groupInst{}
	for _, m := range t.Group {
		if c := inst.nodes[m.ID]; c != nil {
			gi.members = append(gi.members, c)
		}
	}
	gi.args = gi.members[0].Args
	return gi, e.compileCombine(inst, t, gi, gi.members[0])
}

// compileCombine compiles gi's combination on the device of member first:
// one allreduce node over stand-ins of the group's operands, all placed
// there.
func (e *Executor) compileCombine(inst *instance, t *lower.Transfer, gi *groupInst, first *graph.Node) error {
	gi.root = e.plan.Device[first.ID]
	comb := &graph.Node{Name: first.Name, Op: first.Op, Attrs: first.Attrs, Type: first.Type, Device: gi.root, Pos: first.Pos, ID: first.ID}
	p := &backend.Program{Device: gi.root, Stage: t.Stage, Info: map[string]backend.NodeInfo{}}
	for _, a := range gi.args {
		in := &graph.Node{Name: a.Name, Op: graph.OpInput, Type: a.Type, Device: gi.root, ID: a.ID}
		p.Inputs = append(p.Inputs, in)
		comb.Args = append(comb.Args, in)
	}
	p.Nodes, p.Outputs = []*graph.Node{comb}, []*graph.Node{comb}
	exe, err := e.devs[gi.root].Compile(p)
	if err != nil {
		return fmt.Errorf("runtime: compiling allreduce %%%s for batch %d: %w", first.Name, inst.batch, err)
	}
	gi.exe = exe
	return nil
}

// allreduce runs the group of transfer t when it meets its first member:
// the partials move to the root's device (peer copies between devices of
// a kind that copies itself, else through the host), are combined there
// in operand order, and the result moves to every other member. Every
// member gets the same bits.
func (e *Executor) allreduce(ctx context.Context, inst *instance, t *lower.Transfer, r *run, opts backend.RunOptions) error {
	id := t.Node.ID
	if gi := inst.groups[id]; gi.ranks != nil {
		return e.allreduceRanks(ctx, inst, t, r, opts)
	}
	if r.env[id] != nil {
		return nil // made with its group's first member
	}
	gi := inst.groups[id]
	fail := func(err error) error {
		return fmt.Errorf("runtime: stage %d: allreduce: %w",
			t.Stage, &backend.NodeError{Device: e.plan.Device[id], Node: t.Node.Name, Op: t.Node.Op, Err: err})
	}
	ins := make([]backend.Buffer, len(gi.args))
	var moved []backend.Buffer
	defer func() {
		if rel, ok := e.devs[gi.root].(backend.Releaser); ok {
			for _, b := range moved {
				rel.Release(b)
			}
		}
	}()
	for i, a := range gi.args {
		b := r.env[a.ID]
		if b == nil {
			return fail(fmt.Errorf("operand %%%s is not available", a.Name))
		}
		if from := e.plan.Device[a.ID]; from != gi.root {
			var err error
			if b, err = e.move(b, from, gi.root, bytesOf(a), r); err != nil {
				return fail(err)
			}
			moved = append(moved, b)
		}
		ins[i] = b
	}
	outs, err := gi.exe.Run(ctx, ins, opts)
	if err != nil {
		return fail(err)
	}
	if len(outs) != 1 {
		return fail(fmt.Errorf("the combination returned %d values, expected 1", len(outs)))
	}
	bufs := make([]backend.Buffer, len(gi.members))
	bufs[0] = outs[0]
	for k, m := range gi.members[1:] {
		b, err := e.move(outs[0], gi.root, e.plan.Device[m.ID], bytesOf(m), r)
		if err != nil {
			for j, done := range bufs[:k+1] {
				e.releaseBuffer(e.plan.Device[gi.members[j].ID], done)
			}
			return fail(err)
		}
		bufs[k+1] = b
	}
	for k, m := range gi.members {
		r.produced(m.ID, bufs[k])
	}
	for _, m := range gi.members {
		r.read(inst.reads[m.ID])
	}
	return nil
}

// releaseBuffer gives b back to device d when it takes buffers back.
func (e *Executor) releaseBuffer(d graph.Device, b backend.Buffer) {
	if rel, ok := e.devs[d].(backend.Releaser); ok && b != nil {
		rel.Release(b)
	}
}

// move returns b, a buffer of device from, as a buffer of device to: a
// peer copy between devices of a kind that copies itself, else through
// the host. It counts the bytes in r's traffic.
func (e *Executor) move(b backend.Buffer, from, to graph.Device, bytes int64, r *run) (backend.Buffer, error) {
	src, dst := e.devs[from], e.devs[to]
	r.traffic.Add(e.plan.Merge, from, to, bytes)
	if c, ok := dst.(backend.Copier); ok && sameKind(src, dst) {
		return c.CopyFrom(b)
	}
	h, err := src.Download(b)
	if err != nil {
		return nil, err
	}
	return dst.Upload(h)
}

// bytesOf returns the size of concrete node c's value.
func bytesOf(c *graph.Node) int64 {
	n, _ := c.Type.Elems()
	return n * c.Type.DType.Size()
}

// Traffic returns the bytes the last run's transfers moved between
// devices (lower.Traffic: from and to the merge device, between
// replicas). Resident transfers count in the run that made them only.
func (e *Executor) Traffic() lower.Traffic {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.traffic
}
