package train

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"gorgonia.org/tensor"

	"multigpu/graph"
	"multigpu/runtime/host"
)

// StatePath returns where the training state of the checkpoint at path is
// kept: beside it, as NAME.state.npz. The checkpoint itself holds only the
// model's params, so the single-device model loads it directly.
func StatePath(path string) string {
	return strings.TrimSuffix(path, filepath.Ext(path)) + ".state.npz"
}

// The names of the training state's entries.
const (
	stateSteps  = "steps"  // optimizer steps taken (i64[1])
	stateEpochs = "epochs" // epochs completed (i64[1])
	stateKind   = "optimizer"
	stateM      = "opt.m." // + param: momentum's velocity, Adam's first moment
	stateV      = "opt.v." // + param: Adam's second moment
)

// MaxCount bounds the step and epoch counts of a training state (2^40,
// a trillion): SetState refuses larger ones, and counts that large never
// overflow the arithmetic of a step (Adam's bias correction, the epoch
// numbers of shuffles).
const MaxCount = 1 << 40

// optimizerCodes lists the optimizer kinds by the code the state stores.
func optimizerCodes() []string { return []string{SGD, Momentum, Adam} }

// Epochs returns the number of epochs completed: by Fit, plus those of a
// restored state.
func (t *Trainer) Epochs() int { return t.epochs }

// State returns what resuming needs beside the weights: the optimizer's
// step count and moments (read back from the devices), and the epochs
// completed (so a resumed Fit goes on with the next epoch's shuffle), as
// tensors by name; nil when reading back fails (ReadState says why).
func (t *Trainer) State() map[string]*tensor.Dense {
	st, err := t.ReadState()
	if err != nil {
		return nil
	}
	return st
}

// ReadState is State, with the error of reading the moments back.
func (t *Trainer) ReadState() (map[string]*tensor.Dense, error) {
	count := func(v int) *tensor.Dense { return host.New([]int{1}, []int64{int64(v)}) }
	out := map[string]*tensor.Dense{
		stateSteps:  count(t.steps),
		stateEpochs: count(t.epochs),
		stateKind:   count(slices.Index(optimizerCodes(), t.cfg.Optimizer.Kind)),
	}
	if t.set == nil {
		return out, nil
	}
	for param, names := range t.step.state {
		for i, name := range names {
			v, err := t.read(name)
			if err != nil {
				return nil, fmt.Errorf("train: reading the state of %%%s back: %v", param, err)
			}
			out[[]string{stateM, stateV}[i]+param] = v
		}
	}
	return out, nil
}

// SetState restores a state State returned, after SetWeights. Moments
// written by another optimizer are not used: the note returned says so.
// A state that does not fit the model (a moment for an unknown param, or
// of another shape) is an error naming the entry.
func (t *Trainer) SetState(st map[string]*tensor.Dense) (note string, err error) {
	scalar := func(name string, lo int64) (int, error) {
		v, ok := st[name]
		if !ok {
			return 0, fmt.Errorf("training state: missing %q", name)
		}
		d, ok := host.Data(v).([]int64)
		if !ok || len(d) != 1 {
			return 0, fmt.Errorf("training state: %q: expected one i64 count, found %v %v", name, v.Dtype(), host.Shape(v))
		}
		if d[0] < lo || d[0] > MaxCount {
			return 0, fmt.Errorf("training state: %q: expected a count from %d to %d, found %d", name, lo, int64(MaxCount), d[0])
		}
		return int(d[0]), nil
	}
	steps, err := scalar(stateSteps, 0)
	if err != nil {
		return "", err
	}
	epochs, err := scalar(stateEpochs, 0)
	if err != nil {
		return "", err
	}
	if epochs > steps {
		return "", fmt.Errorf("training state: %d epochs in %d steps: every epoch takes one step at least", epochs, steps)
	}
	kind, err := scalar(stateKind, -1)
	if err != nil {
		return "", err
	}
	moments := map[string]*tensor.Dense{} // by entry name
	for name, v := range st {
		var param string
		switch {
		case strings.HasPrefix(name, stateM):
			param = strings.TrimPrefix(name, stateM)
		case strings.HasPrefix(name, stateV):
			param = strings.TrimPrefix(name, stateV)
		default:
			if name != stateSteps && name != stateEpochs && name != stateKind {
				return "", fmt.Errorf("training state: unknown entry %q", name)
			}
			continue
		}
		p := t.model.Lookup(param)
		if p == nil || p.Op != graph.OpParam {
			return "", fmt.Errorf("training state: %q: the model has no param %%%s", name, param)
		}
		dt, _ := host.DTypeOf(v)
		if dt != p.Type.DType || !slices.Equal(host.Shape(v), shapeOf(p.Type)) {
			return "", fmt.Errorf("training state: %q: expected %s, found %v %v", name, p.Type, v.Dtype(), host.Shape(v))
		}
		moments[name] = v
	}
	codes := optimizerCodes()
	if kind < 0 || kind >= len(codes) || codes[kind] != t.cfg.Optimizer.Kind {
		was := "an unknown optimizer"
		if kind >= 0 && kind < len(codes) {
			was = codes[kind]
		}
		if len(moments) > 0 {
			note = fmt.Sprintf("the state was written by %s, not %s: its moments start afresh", was, t.cfg.Optimizer.Kind)
		}
		moments = nil
	}
	// By state param of the step graph; a trained param's moment that
	// the state lacks starts at zero.
	byParam := map[string]*tensor.Dense{}
	for param, names := range t.step.state {
		for i, name := range names {
			if v := moments[[]string{stateM, stateV}[i]+param]; v != nil {
				byParam[name] = host.Clone(v)
			}
		}
	}
	if t.set == nil {
		if len(byParam) > 0 {
			return "", fmt.Errorf("train: weights not set (call SetWeights before SetState)")
		}
		t.steps, t.epochs = steps, epochs
		return note, nil
	}
	weights, err := t.ReadWeights()
	if err != nil {
		return "", err
	}
	was := t.steps
	t.steps, t.epochs = steps, epochs
	if err := t.upload(weights, byParam); err != nil {
		t.steps = was
		return "", err
	}
	return note, nil
}
