package runtime

import (
	"context"
	"fmt"
	"unsafe"

	"gorgonia.org/tensor"

	"multigpu/graph"
	"multigpu/lower"
	"multigpu/runtime/backend"
	"multigpu/runtime/host"
)

// Runs across processes: a graph whose replicas are placed on the
// devices of several ranks (rankR/gpu:K, graph.Device) runs as one
// Executor per rank, each given the same graph and a Comm. A rank runs
// the programs and transfers of its own devices and of the devices
// without a rank, which every rank has (the merge device: each holds
// the inputs and params and computes the merged values alike), and
// skips those of the other ranks. Where a value crosses ranks, the ranks
// exchange it, every rank in the same order (the plan's):
//
//   - an allreduce group is hierarchical: each rank downloads its own
//     partials, the ranks gather them all (Comm.AllgatherBytes, in rank
//     order), and each rank combines every partial on its first member's
//     device in operand order, r0 + r1 + ... + r(N-1) left to right, then
//     moves the result to its other members. The bits are those of one
//     process, whatever the number of ranks (an MPI_Allreduce does not
//     promise its order of summation, so it is not used). A rank with no
//     member (its replicas do not run at a small batch) still sends its
//     partials and takes part;
//   - a concat on a device of every rank gathers the operands of every
//     rank (the outputs, a loss's partials);
//   - a copy to a device of every rank from one rank's device is a
//     broadcast from that rank.
//
// Without a Comm, a graph across ranks runs in one process, every rank's
// devices its own.

// Comm connects the processes of a job across ranks (package runtime/mpi
// provides one under -tags mpi). Every rank makes the same calls in the
// same order.
type Comm interface {
	// Rank is this process's rank, Size the number of ranks.
	Rank() int
	Size() int
	// AllgatherBytes returns every rank's b, in rank order; lengths may
	// differ.
	AllgatherBytes(b []byte) ([][]byte, error)
	// Bcast copies root's buf into every rank's buf, of one length on
	// every rank.
	Bcast(buf []byte, root int) error
}

// rankGroup is the part of an allreduce group on this rank, for a run
// across ranks.
type rankGroup struct {
	local []*graph.Node // members on this rank's devices, in group order
	ran   *run          // the last run that combined the group
}

// rankOf returns the rank of device d, or -1 for a device of every rank.
func rankOf(d graph.Device) int {
	if r, ok := d.Rank(); ok {
		return r
	}
	return -1
}

// remote reports whether d is another rank's device.
func (e *Executor) remote(d graph.Device) bool {
	if e.opts.Comm == nil {
		return false
	}
	r := rankOf(d)
	return r >= 0 && r != e.opts.Comm.Rank()
}

// crossRank reports whether transfer t reads, onto a device of every
// rank, a value of one rank's device: the ranks exchange it.
func (e *Executor) crossRank(t *lower.Transfer) bool {
	if e.opts.Comm == nil || t.Kind == lower.AllReduce || rankOf(e.plan.Device[t.Node.ID]) >= 0 {
		return false
	}
	for _, a := range t.Node.Args {
		if rankOf(e.plan.Device[a.ID]) >= 0 {
			return true
		}
	}
	return false
}

// checkRanks refuses, when the executor has a Comm, a graph that names a
// rank the job does not have, a transfer from one rank's device to
// another's, or an output on one rank's device.
func (e *Executor) checkRanks() error {
	c := e.opts.Comm
	if c == nil {
		return nil
	}
	if c.Size() < 1 || c.Rank() < 0 || c.Rank() >= c.Size() {
		return fmt.Errorf("runtime: rank %d of %d: expected a rank in [0, size)", c.Rank(), c.Size())
	}
	for i, n := range e.g.Nodes {
		d := e.plan.Device[i]
		if r := rankOf(d); r >= c.Size() {
			return fmt.Errorf("runtime: %%%s is on %s, but the job has %d ranks", n.Name, d, c.Size())
		}
		if !lower.IsTransfer(n) || n.Op == "allreduce" || rankOf(d) < 0 {
			continue
		}
		for _, a := range n.Args {
			if ra := rankOf(e.plan.Device[a.ID]); ra >= 0 && ra != rankOf(d) {
				return fmt.Errorf("runtime: %%%s on %s reads %%%s on %s: only allreduce, and concat and copy onto a device of every rank, cross ranks", n.Name, d, a.Name, e.plan.Device[a.ID])
			}
		}
	}
	for _, o := range e.g.Outputs {
		if d := e.plan.Device[o.ID]; rankOf(d) >= 0 {
			return fmt.Errorf("runtime: output %%%s is on %s: across ranks, outputs are on a device of every rank (the merge device)", o.Name, d)
		}
	}
	return nil
}

// compileGroupRanks builds the combination of t's group for a run across
// ranks: over every live partial, on this rank's first member's device
// (none when this rank has no member).
func (e *Executor) compileGroupRanks(inst *instance, t *lower.Transfer) (*groupInst, error) {
	gi := &groupInst{ranks: &rankGroup{}}
	for _, m := range t.Group {
		if c := inst.nodes[m.ID]; c != nil {
			gi.members = append(gi.members, c)
			if !e.remote(e.plan.Device[m.ID]) {
				gi.ranks.local = append(gi.ranks.local, c)
			}
		}
	}
	gi.args = gi.members[0].Args
	if len(gi.ranks.local) == 0 {
		return gi, nil
	}
	return gi, e.compileCombine(inst, t, gi, gi.ranks.local[0])
}

// gatherRanks returns the host values of args: this rank's downloaded,
// the other ranks' gathered from them (every rank sends the values of its
// own devices, in operand order). Values on devices of every rank are
// this rank's own.
func (e *Executor) gatherRanks(args []*graph.Node, r *run) ([]*tensor.Dense, error) {
	comm := e.opts.Comm
	hosts := make([]*tensor.Dense, len(args))
	var blob []byte
	for i, a := range args {
		d := e.plan.Device[a.ID]
		if e.remote(d) {
			continue
		}
		b := r.env[a.ID]
		if b == nil {
			return nil, fmt.Errorf("operand %%%s is not available", a.Name)
		}
		h, err := e.devs[d].Download(b)
		if err != nil {
			return nil, err
		}
		hosts[i] = h
		if rankOf(d) >= 0 {
			blob = append(blob, rawBytes(h)...)
		}
	}
	parts, err := comm.AllgatherBytes(blob)
	if err != nil {
		return nil, err
	}
	if len(parts) != comm.Size() {
		return nil, fmt.Errorf("gathered %d ranks' values, expected %d", len(parts), comm.Size())
	}
	off := make([]int64, len(parts))
	for i, a := range args {
		d := e.plan.Device[a.ID]
		if !e.remote(d) {
			continue
		}
		rk, n := rankOf(d), bytesOf(a)
		if off[rk]+n > int64(len(parts[rk])) {
			return nil, fmt.Errorf("rank %d sent %d bytes, expected %%%s among them (%d bytes from offset %d)", rk, len(parts[rk]), a.Name, n, off[rk])
		}
		h, err := fromBytes(a.Type, parts[rk][off[rk]:off[rk]+n])
		if err != nil {
			return nil, err
		}
		hosts[i] = h
		off[rk] += n
	}
	for rk, p := range parts {
		if rk != comm.Rank() && off[rk] != int64(len(p)) {
			return nil, fmt.Errorf("rank %d sent %d bytes, expected %d", rk, len(p), off[rk])
		}
	}
	return hosts, nil
}

// allreduceRanks runs t's group across ranks (see the top of the file).
func (e *Executor) allreduceRanks(ctx context.Context, inst *instance, t *lower.Transfer, r *run, opts backend.RunOptions) error {
	gi := inst.groups[t.Node.ID]
	if gi.ranks.ran == r {
		return nil // made with the group's first member
	}
	gi.ranks.ran = r
	fail := func(err error) error {
		return fmt.Errorf("runtime: stage %d: allreduce across ranks (rank %d of %d): %w", t.Stage, e.opts.Comm.Rank(), e.opts.Comm.Size(),
			&backend.NodeError{Device: e.plan.Device[t.Node.ID], Node: t.Node.Name, Op: t.Node.Op, Err: err})
	}
	hosts, err := e.gatherRanks(gi.args, r)
	if err != nil {
		return fail(err)
	}
	if len(gi.ranks.local) > 0 {
		root := e.devs[gi.root]
		ins := make([]backend.Buffer, len(hosts))
		defer func() {
			for _, b := range ins {
				e.releaseBuffer(gi.root, b)
			}
		}()
		for i, h := range hosts {
			if ins[i], err = root.Upload(h); err != nil {
				return fail(err)
			}
		}
		outs, err := gi.exe.Run(ctx, ins, opts)
		if err != nil {
			return fail(err)
		}
		if len(outs) != 1 {
			return fail(fmt.Errorf("the combination returned %d values, expected 1", len(outs)))
		}
		bufs := make([]backend.Buffer, len(gi.ranks.local))
		bufs[0] = outs[0]
		for k, m := range gi.ranks.local[1:] {
			b, err := e.move(outs[0], gi.root, e.plan.Device[m.ID], bytesOf(m), r)
			if err != nil {
				for j, done := range bufs[:k+1] {
					e.releaseBuffer(e.plan.Device[gi.ranks.local[j].ID], done)
				}
				return fail(err)
			}
			bufs[k+1] = b
		}
		for k, m := range gi.ranks.local {
			r.produced(m.ID, bufs[k])
		}
	}
	for _, m := range gi.members {
		r.read(inst.reads[m.ID])
	}
	return nil
}

// transferRanks performs a concat or copy onto a device of every rank
// that reads values of ranks' devices: gathered from every rank, or
// broadcast from the one that has it.
func (e *Executor) transferRanks(inst *instance, t *lower.Transfer, r *run) error {
	id := t.Node.ID
	n := inst.nodes[id]
	if n == nil {
		return nil
	}
	fail := func(err error) error {
		return fmt.Errorf("runtime: stage %d: transfer across ranks (rank %d of %d): %w", t.Stage, e.opts.Comm.Rank(), e.opts.Comm.Size(),
			&backend.NodeError{Device: e.plan.Device[id], Node: n.Name, Op: n.Op, Err: err})
	}
	var val *tensor.Dense
	switch t.Kind {
	case lower.Concat:
		hosts, err := e.gatherRanks(n.Args, r)
		if err != nil {
			return fail(err)
		}
		ax, err := n.NormAxis("axis", len(n.Type.Shape))
		if err != nil {
			return fail(err)
		}
		if val, err = host.Concat(ax, hosts...); err != nil {
			return fail(err)
		}
	case lower.Copy:
		a := n.Args[0]
		from := e.plan.Device[a.ID]
		buf := make([]byte, bytesOf(a))
		if !e.remote(from) {
			if r.env[a.ID] == nil {
				return fail(fmt.Errorf("operand %%%s is not available", a.Name))
			}
			h, err := e.devs[from].Download(r.env[a.ID])
			if err != nil {
				return fail(err)
			}
			copy(buf, rawBytes(h))
		}
		if err := e.opts.Comm.Bcast(buf, rankOf(from)); err != nil {
			return fail(err)
		}
		var err error
		if val, err = fromBytes(a.Type, buf); err != nil {
			return fail(err)
		}
	default:
		return fail(fmt.Errorf("a %s from one rank's device onto a device of every rank is not supported", t.Kind))
	}
	b, err := e.devs[e.plan.Device[id]].Upload(val)
	if err != nil {
		return fail(err)
	}
	r.produced(id, b)
	r.read(inst.reads[id])
	return nil
}

// rawBytes returns the bytes of t's elements (a view, not a copy, when t
// holds them contiguously; a copy for a scalar).
func rawBytes(t *tensor.Dense) []byte { return sliceBytes(host.Data(t)) }

// sliceBytes returns the bytes of a slice of elements, a view.
func sliceBytes(data any) []byte {
	switch d := data.(type) {
	case []float32:
		return viewBytes(d)
	case []float64:
		return viewBytes(d)
	case []int32:
		return viewBytes(d)
	case []int64:
		return viewBytes(d)
	case []bool:
		return viewBytes(d)
	}
	return nil
}

func viewBytes[T any](d []T) []byte {
	if len(d) == 0 {
		return nil
	}
	var z T
	return unsafe.Slice((*byte)(unsafe.Pointer(&d[0])), len(d)*int(unsafe.Sizeof(z)))
}

// fromBytes returns a host tensor of concrete type ty holding b.
func fromBytes(ty graph.Type, b []byte) (*tensor.Dense, error) {
	n, ok := ty.Elems()
	if !ok || n*ty.DType.Size() != int64(len(b)) {
		return nil, fmt.Errorf("expected %s (%d bytes), found %d bytes", ty, n*ty.DType.Size(), len(b))
	}
	// The elements are written before the tensor is made: a scalar
	// tensor holds a copy of its element (host.New, host.Data).
	data := host.MakeSlice(ty.DType, int(n))
	copy(sliceBytes(data), b)
	return host.New(mustShape(ty), data), nil
}
