package train

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"gorgonia.org/tensor"

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
// step count and moments, and the epochs completed (so a resumed Fit goes
// on with the next epoch's shuffle), as tensors by name.
func (t *Trainer) State() map[string]*tensor.Dense {
	count := func(v int) *tensor.Dense { return host.New([]int{1}, []int64{int64(v)}) }
	out := map[string]*tensor.Dense{
		stateSteps:  count(t.steps),
		stateEpochs: count(t.epochs),
		stateKind:   count(slices.Index(optimizerCodes(), t.cfg.Optimizer.Kind)),
	}
	for name, st := range t.states {
		shape := t.weights[name].shape
		if st.m != nil {
			out[stateM+name] = host.Clone(host.New(shape, st.m))
		}
		if st.v != nil {
			out[stateV+name] = host.Clone(host.New(shape, st.v))
		}
	}
	return out
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
	states := map[string]*state{}
	for name, v := range st {
		var param string
		var second bool
		switch {
		case strings.HasPrefix(name, stateM):
			param = strings.TrimPrefix(name, stateM)
		case strings.HasPrefix(name, stateV):
			param, second = strings.TrimPrefix(name, stateV), true
		default:
			if name != stateSteps && name != stateEpochs && name != stateKind {
				return "", fmt.Errorf("training state: unknown entry %q", name)
			}
			continue
		}
		w, ok := t.weights[param]
		if !ok {
			return "", fmt.Errorf("training state: %q: the model has no param %%%s", name, param)
		}
		dt, _ := host.DTypeOf(v)
		if dt != w.t.DType || !slices.Equal(host.Shape(v), w.shape) {
			return "", fmt.Errorf("training state: %q: expected %s, found %v %v", name, w.t, v.Dtype(), host.Shape(v))
		}
		s := states[param]
		if s == nil {
			s = &state{}
			states[param] = s
		}
		if second {
			s.v = host.Data(host.Clone(v))
		} else {
			s.m = host.Data(host.Clone(v))
		}
	}
	t.steps, t.epochs = steps, epochs
	codes := optimizerCodes()
	if kind < 0 || kind >= len(codes) || codes[kind] != t.cfg.Optimizer.Kind {
		t.states = map[string]*state{}
		was := "an unknown optimizer"
		if kind >= 0 && kind < len(codes) {
			was = codes[kind]
		}
		if len(states) == 0 {
			return "", nil
		}
		return fmt.Sprintf("the state was written by %s, not %s: its moments start afresh", was, t.cfg.Optimizer.Kind), nil
	}
	t.states = states
	return "", nil
}
