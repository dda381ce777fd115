package runtime

import (
	"fmt"

	"gorgonia.org/tensor"

	"multigpu/graph"
	"multigpu/runtime/backend"
	"multigpu/runtime/host"
)

// State updated in place (graph/assign.go): a run that succeeds ends by
// making every assign's target, a param or a resident transfer, hold the
// value the run computed for it, on its own device: the value's buffer
// becomes the target's resident buffer (nothing moves), and the buffer it
// replaces is released. Params assigned this way live on their devices
// only; Resident reads them back. A run that fails assigns nothing.

// finishAssigns gives every assign's target its value at the end of a run
// that succeeded. e.mu is held.
func (e *Executor) finishAssigns(inst *instance, r *run) error {
	for _, a := range e.plan.Assigns {
		t, v := a.Args[0], a.Args[1]
		if inst.nodes[v.ID] == nil || e.remote(e.plan.Device[v.ID]) {
			continue // not run at this batch, or another rank's (ranks.go)
		}
		b := r.env[v.ID]
		if b == nil {
			return fmt.Errorf("runtime: assign %%%s: its value %%%s was not computed", a.Name, v.Name)
		}
		dev := e.plan.Device[t.ID]
		if e.keep[v.ID] {
			// A resident value keeps its buffer: the target gets a copy.
			var err error
			if b, err = e.duplicate(dev, b); err != nil {
				return fmt.Errorf("runtime: assign %%%s: %v", a.Name, err)
			}
		} else {
			r.env[v.ID] = nil // the run's value is the target's now
		}
		if old := e.resident[t.ID]; old != nil && old != b {
			e.releaseBuffer(dev, old)
		}
		e.resident[t.ID] = b
	}
	return nil
}

// duplicate returns a copy of buffer b on device d.
func (e *Executor) duplicate(d graph.Device, b backend.Buffer) (backend.Buffer, error) {
	dev := e.devs[d]
	if c, ok := dev.(backend.Copier); ok {
		return c.CopyFrom(b)
	}
	h, err := dev.Download(b)
	if err != nil {
		return nil, err
	}
	return dev.Upload(host.Clone(h))
}

// Resident returns a copy of the value the executor holds across runs for
// the param or resident transfer named name, on its device: the value set
// by SetParams, or the one the last assign to it made. A resident copy
// not made yet (no run since SetParams) has the value of what it copies.
func (e *Executor) Resident(name string) (*tensor.Dense, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := e.g.Lookup(name)
	for n != nil {
		if b := e.resident[n.ID]; b != nil {
			t, err := e.devs[e.plan.Device[n.ID]].Download(b)
			if err != nil {
				return nil, fmt.Errorf("runtime: %%%s: %v", n.Name, err)
			}
			return host.Clone(t), nil
		}
		if n.Op == graph.OpParam {
			return nil, fmt.Errorf("runtime: params not set (call SetParams)")
		}
		if n.Op != "copy" || !e.keep[n.ID] {
			break
		}
		n = n.Args[0]
	}
	return nil, fmt.Errorf("runtime: the graph has no param or resident copy %%%s", name)
}
