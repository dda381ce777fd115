// Package train trains a model graph, on one device or data-parallel
// across several, with the same result either way.
//
// The trainer differentiates the model with the grad pass (the loss and
// the gradient of every trainable param become values of a training
// graph), appends the optimizer's step (SGD, SGD with momentum, Adam) as
// graph ops that assign the params and their moments in place, gated on
// an all-finite flag computed on the devices (step.go), rewrites that
// graph with the replicate pass for N devices, and runs it with the
// runtime on every batch. The replicate pass makes the gradients exact:
// a sum over the batch (a weight's Aᵀ·dY, a bias's sum, a mean's count)
// becomes per-replica partials combined in replica order, so each
// gradient is the whole batch's, not an average of per-replica averages,
// whatever the split. Under --combine auto and allreduce the gradients
// are allreduce groups and every replica updates its own resident copy
// of the params and their state: the host sends the input shares and
// reads the loss and the flag, and sees the weights only when it reads
// them back (Weights, State: at a checkpoint). Under --combine merge the
// merge device updates the params and the replicas copy them every step.
// Batchnorm in training mode is decomposed into its statistics, which
// the replicate pass combines over the whole batch (synchronised
// batchnorm); its running statistics follow the whole batch's, are
// updated on the devices like the params, and are saved with the
// weights.
//
// Use:
//
//	t, err := train.New(g, train.Config{GPUs: []int{0, 1}, Optimizer: train.Optimizer{Kind: train.Adam}})
//	err = t.SetWeights(runtime.RandomParams(g, 1))
//	data, err := t.NewDataset(arrays)            // by input name, from an .npz
//	hist, err := t.Fit(ctx, data, train.FitConfig{Epochs: 10, Batch: 64, Checkpoint: "w.npz"})
//	w := t.Weights()                             // by the model's param names
package train

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"gorgonia.org/tensor"

	"multigpu/graph"
	"multigpu/internal/graphutil"
	"multigpu/lower"
	"multigpu/passes/grad"
	"multigpu/passes/replicate"
	"multigpu/runtime"
	"multigpu/runtime/host"
)

// Config configures a Trainer.
type Config struct {
	// GPUs lists the devices to replicate across (two or more); nil
	// trains the model as it is, on one device.
	GPUs []int
	// Merge, Split and Available configure the replicate pass (see
	// replicate.Options).
	Merge     graph.Device
	Split     graph.SplitPolicy
	Available []graph.Device
	// Combine chooses where the replicate pass combines values over the
	// batch (replicate.CombineMode; default auto).
	Combine replicate.CombineMode
	// Ranks is the number of processes the replicas span (ranks.go):
	// GPUs on each, Runtime.Comm connecting them; 0 or 1, this process.
	Ranks int
	// Loss names the output to minimise, a scalar; "" picks the model's
	// only scalar float output.
	Loss string
	// Params names the params to train; nil trains every float param the
	// loss depends on, but batchnorm's running statistics.
	Params []string
	// Optimizer updates the weights.
	Optimizer Optimizer
	// BatchNormMomentum weighs the batch in the running statistics'
	// update (PyTorch's convention); 0 means 0.1.
	BatchNormMomentum float64
	// Seed keys dropout masks, a new one every step, and the shuffles
	// of Fit.
	Seed uint64
	// Runtime configures the executor (memory limit, device backends);
	// its Seed is not used.
	Runtime runtime.Options
	// Backend, when set, is called with the graph that will run (the
	// training graph, replicated or not) and the runtime options, and
	// returns the options to run it with: a caller that serves its devices
	// with real GPUs sets Devices there.
	Backend func(g *graph.Graph, opts runtime.Options) (runtime.Options, error)
}

// Trainer trains one model. Its methods must not be called concurrently.
type Trainer struct {
	cfg      Config
	model    *graph.Graph
	training *grad.Training
	step     *stepGraph
	graph    *graph.Graph // what runs: the step graph, replicated or not
	exec     *runtime.Executor
	inputs   []*graph.Node // of the training graph, which the data feeds
	bound    int64         // the model's batch size when it is fixed
	// holders lists, by param of the step graph (the model's, and the
	// optimizer's state), the nodes of graph that hold its value across
	// steps: the targets of its assigns, else the param itself.
	holders map[string][]string

	set    map[string]*tensor.Dense // the weights as last set, by the model's param names
	steps  int                      // optimizer steps taken
	epochs int                      // epochs Fit has completed, resumed ones included
}

// New makes a trainer for model g, which it does not modify: it builds
// the training graph, replicates it when cfg.GPUs asks, and lowers it.
// Weights must be set with SetWeights before training.
func New(g *graph.Graph, cfg Config) (*Trainer, error) {
	var err error
	if cfg.Optimizer, err = cfg.Optimizer.withDefaults(); err != nil {
		return nil, err
	}
	tr, err := grad.Build(g, grad.Options{Loss: cfg.Loss, Params: cfg.Params, Momentum: cfg.BatchNormMomentum})
	if err != nil {
		return nil, err
	}
	step, err := buildStep(tr, cfg.Optimizer)
	if err != nil {
		return nil, err
	}
	t := &Trainer{cfg: cfg, model: g, training: tr, step: step, graph: step.graph}
	_, t.bound = g.Batch()
	if cfg.GPUs != nil {
		rg, _, err := replicate.Rewrite(step.graph, replicate.Options{GPUs: cfg.GPUs, Merge: cfg.Merge, Split: cfg.Split, Available: cfg.Available, Combine: cfg.Combine, Ranks: cfg.Ranks})
		if err != nil {
			return nil, err
		}
		t.graph = rg
	}
	t.holders = map[string][]string{}
	for _, a := range graph.Assigns(t.graph) {
		if p := graph.AssignedParam(a.Args[0]); p != nil {
			t.holders[p.Name] = append(t.holders[p.Name], a.Args[0].Name)
		}
	}
	for _, p := range t.graph.Params() {
		if t.holders[p.Name] == nil {
			t.holders[p.Name] = []string{p.Name}
		}
	}
	opts := cfg.Runtime
	opts.Seed = cfg.Seed
	if cfg.Backend != nil {
		if opts, err = cfg.Backend(t.graph, opts); err != nil {
			return nil, err
		}
	}
	if t.exec, err = runtime.New(t.graph, opts); err != nil {
		return nil, err
	}
	t.inputs = tr.Graph.Inputs()
	return t, nil
}

// Training returns the training graph (before replication) and what its
// outputs hold.
func (t *Trainer) Training() *grad.Training { return t.training }

// Graph returns the graph that runs: the training graph with the
// optimizer's step (its assigns say which value updates which param or
// state), replicated when the trainer has several devices.
func (t *Trainer) Graph() *graph.Graph { return t.graph }

// Traffic returns the bytes the last step's transfers moved between
// devices (runtime.Executor.Traffic): from the merge device (input
// shares; under --combine merge the updated params too), to it (the loss
// and the flag; under merge the gradients' partials), and between
// replicas (allreduce groups). The first step after SetWeights or
// SetState also copies the params and their state to the replicas.
func (t *Trainer) Traffic() lower.Traffic { return t.exec.Traffic() }

// Steps returns the number of optimizer steps taken.
func (t *Trainer) Steps() int { return t.steps }

// SetWeights sets every param of the model, by name, from w (the tensors
// are copied): a missing, extra or misshapen one is an error naming it.
// The optimizer's moments start afresh (its step count goes on).
func (t *Trainer) SetWeights(w map[string]*tensor.Dense) error {
	var errs []string
	weights := map[string]*tensor.Dense{}
	for _, p := range t.model.Params() {
		v, ok := w[p.Name]
		if !ok {
			errs = append(errs, fmt.Sprintf("param %%%s: missing (expected %s)", p.Name, p.Type))
			continue
		}
		dt, _ := host.DTypeOf(v)
		shape := host.Shape(v)
		if dt != p.Type.DType || !slices.Equal(shape, shapeOf(p.Type)) {
			errs = append(errs, fmt.Sprintf("param %%%s: expected %s, given %v %s", p.Name, p.Type, v.Dtype(), shapeString(shape)))
			continue
		}
		weights[p.Name] = host.Clone(v)
	}
	var extra []string
	for name := range w {
		if n := t.model.Lookup(name); n == nil || n.Op != graph.OpParam {
			extra = append(extra, name)
		}
	}
	slices.Sort(extra)
	for _, name := range extra {
		errs = append(errs, fmt.Sprintf("param %%%s: the model has no such param", name))
	}
	if len(errs) > 0 {
		return fmt.Errorf("weights: %s", strings.Join(errs, "; "))
	}
	t.set = weights
	return t.upload(weights, nil)
}

// shapeOf returns the shape of batch-free type t.
func shapeOf(t graph.Type) []int {
	s := make([]int, t.Rank())
	for i, d := range t.Shape {
		n, _ := d.Value()
		s[i] = int(n)
	}
	return s
}

// upload sets every param of the graph that runs: the model's from
// weights, the optimizer's moments from moments (by state param name;
// zeros when missing), and its step count from the steps taken.
func (t *Trainer) upload(weights, moments map[string]*tensor.Dense) error {
	ps := map[string]*tensor.Dense{}
	for _, p := range t.graph.Params() {
		switch v := weights[p.Name]; {
		case v != nil:
			ps[p.Name] = v
		case p.Name == t.step.steps:
			ps[p.Name] = host.New([]int{}, []float64{float64(t.steps)})
		case moments[p.Name] != nil:
			ps[p.Name] = moments[p.Name]
		default:
			n, _ := p.Type.Elems()
			ps[p.Name] = host.New(shapeOf(p.Type), host.MakeSlice(p.Type.DType, int(n)))
		}
	}
	return t.exec.SetParams(ps)
}

// read returns the value of param name of the step graph: read back from
// the first device that holds it.
func (t *Trainer) read(name string) (*tensor.Dense, error) {
	return t.exec.Resident(t.localHolder(name))
}

// Weights returns a copy of every param of the model, by its name in the
// model (never a replica's), read back from the devices that hold them;
// nil when that fails (ReadWeights says why).
func (t *Trainer) Weights() map[string]*tensor.Dense {
	w, err := t.ReadWeights()
	if err != nil {
		return nil
	}
	return w
}

// ReadWeights returns a copy of every param of the model, by its name in
// the model: the trained params and batchnorm's running statistics read
// back from the first device that holds them, the others as set.
func (t *Trainer) ReadWeights() (map[string]*tensor.Dense, error) {
	out := make(map[string]*tensor.Dense, len(t.set))
	for name, v := range t.set {
		if t.holders[name] == nil {
			out[name] = host.Clone(v)
			continue
		}
		d, err := t.read(name)
		if err != nil {
			return nil, fmt.Errorf("train: reading %%%s back: %v", name, err)
		}
		out[name] = d
	}
	return out, nil
}

// DeviceCopies returns, for every param of the model that trains and
// every entry of the optimizer's state (by the names ReadWeights and
// State give them; "steps" for Adam's step count as the devices keep
// it), its value on every device that keeps it across steps. Replicated
// under --combine auto or allreduce, those are the replicas' resident
// copies, each updated by its own replica, which must be the same bits.
func (t *Trainer) DeviceCopies() (map[string]map[graph.Device]*tensor.Dense, error) {
	entries := map[string]string{} // by step graph param: its entry name
	for _, out := range t.training.Grads {
		entries[out.Param] = out.Param
		for i, st := range t.step.state[out.Param] {
			entries[st] = []string{stateM, stateV}[i] + out.Param
		}
	}
	for _, st := range t.training.Stats {
		entries[st.Param] = st.Param
	}
	if t.step.steps != "" {
		entries[t.step.steps] = stateSteps
	}
	out := map[string]map[graph.Device]*tensor.Dense{}
	for param, entry := range entries {
		out[entry] = map[graph.Device]*tensor.Dense{}
		for _, h := range t.holders[param] {
			if !t.onRank(t.graph.Lookup(h).Device) {
				continue // another rank's (ranks.go)
			}
			v, err := t.exec.Resident(h)
			if err != nil {
				return nil, err
			}
			out[entry][t.graph.Lookup(h).Device] = v
		}
	}
	return out, nil
}

// NewDataset checks arrays (by input name) against the inputs of the
// training graph and returns them as a dataset.
func (t *Trainer) NewDataset(arrays map[string]*tensor.Dense) (*Dataset, error) {
	return newDataset(t.inputs, arrays)
}

// Step runs one training step on a batch (inputs by name) and returns
// its loss: on the devices, the forward and backward passes, the
// all-finite flag over the loss and the gradients, and the optimizer's
// update of the params and their state, gated on the flag. A loss or
// gradient that is not finite is an error, and the weights and the
// optimizer's state are left as they were.
func (t *Trainer) Step(ctx context.Context, batch map[string]*tensor.Dense) (float64, error) {
	if t.set == nil {
		return 0, fmt.Errorf("train: weights not set (call SetWeights)")
	}
	in := make(map[string]*tensor.Dense, len(t.inputs))
	for _, x := range t.inputs {
		v, ok := batch[x.Name]
		if !ok {
			return 0, fmt.Errorf("train: input %%%s: missing (expected %s)", x.Name, x.Type)
		}
		in[x.Name] = v
	}
	out, err := t.exec.RunSeed(ctx, in, stepSeed(t.cfg.Seed, t.steps))
	if err != nil {
		return 0, err
	}
	loss := host.Float64s(out[t.training.Loss])[0]
	if ok := host.Data(out[t.step.ok]).([]bool); !ok[0] {
		if math.IsNaN(loss) || math.IsInf(loss, 0) {
			return loss, fmt.Errorf("train: the loss %%%s is %v", t.training.Loss, loss)
		}
		return loss, fmt.Errorf("train: a gradient is not finite (the loss %%%s is %v); no weight changed", t.training.Loss, loss)
	}
	t.steps++
	return loss, nil
}

// stepSeed is the dropout seed of step k: one per step, the same for any
// number of replicas.
func stepSeed(seed uint64, k int) uint64 {
	z := seed + uint64(k+1)*0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// FitConfig configures Fit.
type FitConfig struct {
	// Epochs is the number of passes over the data; Batch the number of
	// samples per step.
	Epochs, Batch int
	// DropLast drops the last batch of an epoch when it is short; by
	// default it is trained.
	DropLast bool
	// Checkpoint, when set, is an .npz or .safetensors file the weights
	// are written to at the end of every epoch, with the training state
	// (SetState) beside it at StatePath(Checkpoint), the two as one unit
	// (WriteCheckpoint, LoadCheckpoint).
	Checkpoint string
	// Progress, when set, is called after every step.
	Progress func(Progress)
	// EpochEnd, when set, is called after every epoch (and its
	// checkpoint).
	EpochEnd func(Epoch)
}

// Progress is where training stands after a step.
type Progress struct {
	Epoch, Epochs int // from 1
	Step, Steps   int // within the epoch, from 1
	Loss          float64
	// SamplesPerSec is the epoch's throughput so far.
	SamplesPerSec float64
}

// Epoch is the record of one epoch.
type Epoch struct {
	Epoch int // from 1
	// Loss is the mean of the steps' losses, weighted by their samples.
	Loss    float64
	Steps   int
	Samples int
	Time    time.Duration
}

// Fit trains for cfg.Epochs more passes over data, shuffled every epoch
// from the trainer's seed and the epoch's number (the same order for any
// number of replicas; numbering goes on from the epochs the trainer has
// done, so a run resumed with SetState continues exactly), and
// returns the history of the epochs it completed. An error (a NaN loss,
// a failed run) stops it, naming the epoch, step and samples; the last
// checkpoint written stays as it was.
func (t *Trainer) Fit(ctx context.Context, data *Dataset, cfg FitConfig) ([]Epoch, error) {
	if cfg.Epochs < 1 || cfg.Batch < 1 {
		return nil, fmt.Errorf("train: expected positive epochs and batch size, found %d and %d", cfg.Epochs, cfg.Batch)
	}
	if t.bound > 0 {
		if int64(cfg.Batch) != t.bound {
			return nil, fmt.Errorf("train: the model's batch is fixed at %d: train with batch %d, not %d", t.bound, t.bound, cfg.Batch)
		}
		cfg.DropLast = true
	}
	var hist []Epoch
	done := t.epochs // epochs done before this call (resumed from a checkpoint)
	for e := done; e < done+cfg.Epochs; e++ {
		start := time.Now()
		batches := Batches(Order(t.cfg.Seed, e, data.Len()), cfg.Batch, cfg.DropLast)
		if len(batches) == 0 {
			return hist, fmt.Errorf("train: %d samples make no batch of %d (drop-last is on)", data.Len(), cfg.Batch)
		}
		rec := Epoch{Epoch: e + 1}
		var sum float64
		for k, idx := range batches {
			loss, err := t.Step(ctx, data.Batch(idx))
			if err != nil {
				first := rec.Samples
				err = fmt.Errorf("epoch %d, step %d of %d (samples %d to %d of the epoch): %w", e+1, k+1, len(batches), first, first+len(idx)-1, err)
				if cfg.Checkpoint != "" && e > done {
					err = fmt.Errorf("%w; %s holds the weights of epoch %d", err, cfg.Checkpoint, e)
				}
				return hist, err
			}
			sum += loss * float64(len(idx))
			rec.Steps++
			rec.Samples += len(idx)
			if cfg.Progress != nil {
				cfg.Progress(Progress{Epoch: e + 1, Epochs: done + cfg.Epochs, Step: k + 1, Steps: len(batches), Loss: loss,
					SamplesPerSec: float64(rec.Samples) / time.Since(start).Seconds()})
			}
		}
		rec.Loss = sum / float64(rec.Samples)
		rec.Time = time.Since(start)
		t.epochs = e + 1
		if cfg.Checkpoint != "" {
			// One unit: see WriteCheckpoint (checkpoint.go).
			w, err := t.ReadWeights()
			if err != nil {
				return hist, fmt.Errorf("epoch %d: checkpoint: %w", e+1, err)
			}
			st, err := t.ReadState()
			if err != nil {
				return hist, fmt.Errorf("epoch %d: checkpoint: %w", e+1, err)
			}
			if err := WriteCheckpoint(cfg.Checkpoint, w, st, int64(t.epochs)); err != nil {
				return hist, fmt.Errorf("epoch %d: checkpoint: %w", e+1, err)
			}
		}
		hist = append(hist, rec)
		if cfg.EpochEnd != nil {
			cfg.EpochEnd(rec)
		}
		if err := ctx.Err(); err != nil {
			return hist, err
		}
	}
	return hist, nil
}

// InferenceGraph returns the model for prediction: dropout and
// batchnorm in inference mode, and only what the outputs named need
// (all of them when none is named).
func InferenceGraph(g *graph.Graph, outputs ...string) (*graph.Graph, error) {
	c := g.Clone()
	for _, n := range c.Nodes {
		if (n.Op == "dropout" || n.Op == "batchnorm") && n.Attrs.Has("training") {
			n.Attrs = slices.DeleteFunc(n.Attrs.Clone(), func(a graph.Attr) bool { return a.Name == "training" })
		}
	}
	if len(outputs) > 0 {
		var outs []*graph.Node
		for _, name := range outputs {
			o := c.Lookup(strings.TrimPrefix(name, "%"))
			if o == nil {
				return nil, fmt.Errorf("graph %s has no value %%%s", g.Name, name)
			}
			outs = append(outs, o)
		}
		if err := c.SetOutputs(outs...); err != nil {
			return nil, err
		}
	}
	p, err := graphutil.Prune(c)
	if err != nil {
		return nil, err
	}
	return p, graph.Verify(p)
}
