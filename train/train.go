// Package train trains a model graph, on one device or data-parallel
// across several, with the same result either way.
//
// The trainer differentiates the model with the grad pass (the loss and
// the gradient of every trainable param become outputs of a training
// graph), rewrites that graph with the replicate pass for N devices, and
// runs it with the runtime on every batch. The replicate pass makes the
// gradients exact: a sum over the batch (a weight's Aᵀ·dY, a bias's sum,
// a mean's count) becomes per-replica partials summed on the merge
// device, so each gradient is the whole batch's, not an average of
// per-replica averages, whatever the split. The optimizer (SGD, SGD with
// momentum, Adam) then updates one master copy of the weights on the
// host, and SetParams sends it to every device's resident copy.
// Batchnorm in training mode is decomposed into its statistics, which
// the replicate pass combines over the whole batch (synchronised
// batchnorm); its running statistics follow the whole batch's, and are
// saved with the weights.
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
	graph    *graph.Graph // what runs: the training graph, replicated or not
	exec     *runtime.Executor
	inputs   []*graph.Node // of the training graph, which the data feeds
	bound    int64         // the model's batch size when it is fixed

	weights map[string]*slot // the master copy, by the model's param names
	states  map[string]*state
	steps   int // optimizer steps taken
	epochs  int // epochs Fit has completed, resumed ones included
}

// slot is one param's master value.
type slot struct {
	t     graph.Type
	shape []int
	data  any // []float32 or []float64
}

func (s *slot) tensor() *tensor.Dense { return host.New(s.shape, s.data) }

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
	t := &Trainer{cfg: cfg, model: g, training: tr, graph: tr.Graph, states: map[string]*state{}}
	_, t.bound = g.Batch()
	if cfg.GPUs != nil {
		rg, _, err := replicate.Rewrite(tr.Graph, replicate.Options{GPUs: cfg.GPUs, Merge: cfg.Merge, Split: cfg.Split, Available: cfg.Available, Combine: cfg.Combine})
		if err != nil {
			return nil, err
		}
		t.graph = rg
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

// Graph returns the graph that runs: the training graph, replicated when
// the trainer has several devices.
func (t *Trainer) Graph() *graph.Graph { return t.graph }

// Traffic returns the bytes the last step's transfers moved between
// devices (runtime.Executor.Traffic): from the merge device (input
// shares; params after the optimizer's update), to it (gradients, the
// loss), and between replicas (allreduce groups).
func (t *Trainer) Traffic() lower.Traffic { return t.exec.Traffic() }

// Steps returns the number of optimizer steps taken.
func (t *Trainer) Steps() int { return t.steps }

// SetWeights sets every param of the model, by name, from w (the tensors
// are copied): a missing, extra or misshapen one is an error naming it.
// The optimizer's state starts afresh.
func (t *Trainer) SetWeights(w map[string]*tensor.Dense) error {
	var errs []string
	weights := map[string]*slot{}
	for _, p := range t.model.Params() {
		v, ok := w[p.Name]
		if !ok {
			errs = append(errs, fmt.Sprintf("param %%%s: missing (expected %s)", p.Name, p.Type))
			continue
		}
		dt, _ := host.DTypeOf(v)
		shape := host.Shape(v)
		want := make([]int, p.Type.Rank())
		for i, d := range p.Type.Shape {
			n, _ := d.Value()
			want[i] = int(n)
		}
		if dt != p.Type.DType || !slices.Equal(shape, want) {
			errs = append(errs, fmt.Sprintf("param %%%s: expected %s, given %v %s", p.Name, p.Type, v.Dtype(), shapeString(shape)))
			continue
		}
		weights[p.Name] = &slot{t: p.Type, shape: shape, data: host.Data(host.Clone(v))}
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
	t.weights, t.states = weights, map[string]*state{}
	return t.upload()
}

// upload sends the master weights the training graph reads to the
// devices.
func (t *Trainer) upload() error {
	ps := map[string]*tensor.Dense{}
	for _, p := range t.graph.Params() {
		ps[p.Name] = t.weights[p.Name].tensor()
	}
	return t.exec.SetParams(ps)
}

// Weights returns a copy of every param of the model, by its name in the
// model (never a replica's).
func (t *Trainer) Weights() map[string]*tensor.Dense {
	out := make(map[string]*tensor.Dense, len(t.weights))
	for name, s := range t.weights {
		out[name] = host.Clone(s.tensor())
	}
	return out
}

// NewDataset checks arrays (by input name) against the inputs of the
// training graph and returns them as a dataset.
func (t *Trainer) NewDataset(arrays map[string]*tensor.Dense) (*Dataset, error) {
	return newDataset(t.inputs, arrays)
}

// Step runs one training step on a batch (inputs by name) and returns
// its loss. A loss or gradient that is not finite is an error, and the
// weights are left as they were.
func (t *Trainer) Step(ctx context.Context, batch map[string]*tensor.Dense) (float64, error) {
	if t.weights == nil {
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
	if math.IsNaN(loss) || math.IsInf(loss, 0) {
		return loss, fmt.Errorf("train: the loss %%%s is %v", t.training.Loss, loss)
	}
	for _, o := range t.training.Grads {
		for i, v := range host.Float64s(out[o.Output]) {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return loss, fmt.Errorf("train: the gradient of %%%s is %v at element %d", o.Param, v, i)
			}
		}
	}
	t.steps++
	for _, o := range t.training.Grads {
		s := t.weights[o.Param]
		st := t.states[o.Param]
		if st == nil {
			st = &state{}
			t.states[o.Param] = st
		}
		switch w := s.data.(type) {
		case []float32:
			update(t.cfg.Optimizer, st, w, host.Data(out[o.Output]).([]float32), t.steps)
		case []float64:
			update(t.cfg.Optimizer, st, w, host.Data(out[o.Output]).([]float64), t.steps)
		}
	}
	for _, o := range t.training.Stats {
		s := t.weights[o.Param]
		d, err := convert(host.Data(out[o.Output]), s.t.DType)
		if err != nil {
			return loss, err
		}
		s.data = d
	}
	return loss, t.upload()
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
			if err := WriteCheckpoint(cfg.Checkpoint, t.Weights(), t.State(), int64(t.epochs)); err != nil {
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
