package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"multigpu/graph"
	"multigpu/passes/replicate"
	"multigpu/runtime"
	"multigpu/train"
)

// checkTrain validates the flags of --train: the training flags need it,
// and it needs data, epochs, a batch size and where to save the weights.
func (o *options) checkTrain() error {
	only := []struct {
		name string
		set  bool
	}{{"--data", o.data != ""}, {"--epochs", o.epochs != 0}, {"--optimizer", o.optimizer != ""}, {"--lr", o.lr != 0},
		{"--loss", o.loss != ""}, {"--drop-last", o.dropLast}, {"--save-weights", o.saveWeights != ""}}
	if !o.train {
		for _, f := range only {
			if f.set {
				return usagef("%s goes with --train", f.name)
			}
		}
		return nil
	}
	ext := strings.ToLower(filepath.Ext(o.saveWeights))
	switch {
	case o.run || o.checkEquiv || o.explain:
		return usagef("--train excludes --run, --check and --explain: give one")
	case o.output != "" || o.format != formatText:
		return usagef("-o and --format write a graph; --train writes its weights to --save-weights")
	case o.data == "":
		return usagef("--train needs --data FILE.npz, with an array per input of the model")
	case o.epochs < 1 || o.epochs > train.MaxCount:
		return usagef("--train needs --epochs E, from 1 to %d, found %d", int64(train.MaxCount), o.epochs)
	case o.batch < 1:
		return usagef("--train needs --batch B, the samples per step, 1 or more, found %d", o.batch)
	case o.saveWeights == "":
		return usagef("--train needs --save-weights FILE.npz (or .safetensors) for the trained weights")
	case ext != ".npz" && ext != ".safetensors":
		return usagef("--save-weights: expected a .npz or .safetensors file, found %q", o.saveWeights)
	case o.optimizer != "" && o.optimizer != train.SGD && o.optimizer != train.Momentum && o.optimizer != train.Adam:
		return usagef("--optimizer: expected sgd, momentum or adam, found %q", o.optimizer)
	case o.lr < 0:
		return usagef("--lr: expected a positive learning rate, found %g", o.lr)
	case o.batchnorm == string(replicate.BatchNormPerReplica):
		return usagef("--batchnorm per-replica: training writes batchnorm as its statistics, which the replicas combine over the whole batch (sync); per-replica statistics are not offered for training")
	}
	return nil
}

// trainModel is --train: train g on --data for --epochs, replicated when
// --gpus is given, checkpointing to --save-weights every epoch. It
// returns the exit status: 2 when the model, data or weights are refused
// before training starts, 1 when training fails.
func trainModel(g *graph.Graph, o *options, stdout, stderr io.Writer) int {
	arrays, err := trainData(o)
	if err != nil {
		report(stderr, err)
		return exitUsage
	}
	cfg := train.Config{
		Loss:      o.loss,
		Optimizer: train.Optimizer{Kind: o.optimizer, LR: o.lr},
		Seed:      o.seed,
		Runtime:   runtime.Options{MemoryLimit: int64(o.memoryLimit), Threads: o.threads},
	}
	// Real GPUs (--backend): the devices of the graph that runs.
	release := func() {}
	defer func() { release() }()
	if o.gpu != nil {
		cfg.Backend = func(rg *graph.Graph, opts runtime.Options) (runtime.Options, error) {
			opts, rel, err := o.gpu.options(rg, opts)
			if rel != nil {
				release = rel
			}
			return opts, err
		}
	}
	where := "one device"
	if r := o.replicate; r != nil {
		cfg.GPUs, cfg.Merge, cfg.Split, cfg.Available = r.GPUs, r.Merge, r.Split, r.Available
		where = fmt.Sprintf("%d GPUs", len(r.GPUs))
	}
	if across := o.trainAcross(&cfg, g); across != "" {
		where = across
	}
	t, err := train.New(g, cfg)
	if err != nil {
		report(stderr, err)
		return exitUsage
	}
	// A checkpoint's training state, when beside it, resumes the
	// optimizer's moments and the epoch count exactly.
	weights, ckpt, err := trainWeights(g, o)
	if err != nil {
		report(stderr, err)
		return exitUsage
	}
	if ckpt != nil && ckpt.Note != "" {
		fmt.Fprintf(stderr, "rewrite: note: %s\n", ckpt.Note)
	}
	if err := t.SetWeights(weights); err != nil {
		if o.weights != "" {
			err = fmt.Errorf("--weights %s: %w", ckpt.Path, err)
		}
		report(stderr, err)
		return exitUsage
	}
	if ckpt != nil && ckpt.State != nil {
		note, err := t.SetState(ckpt.State)
		if err != nil {
			report(stderr, fmt.Errorf("--weights %s: %w", train.StatePath(ckpt.Path), err))
			return exitUsage
		}
		if note != "" {
			fmt.Fprintf(stderr, "rewrite: note: %s\n", note)
		}
		fmt.Fprintf(stdout, "resuming after epoch %d (%d steps) from %s\n", t.Epochs(), t.Steps(), train.StatePath(ckpt.Path))
	}
	data, err := t.NewDataset(arrays)
	if err != nil {
		report(stderr, fmt.Errorf("--data %s: %w", o.data, err))
		return exitUsage
	}
	opt := o.optimizer
	if opt == "" {
		opt = train.SGD
	}
	var params []string
	for _, p := range t.Training().Grads {
		params = append(params, "%"+p.Param)
	}
	fmt.Fprintf(stdout, "training %s on %s: %d samples, batch %d, %s, loss %%%s, params %s\n",
		g.Name, where, data.Len(), o.batch, opt, t.Training().Loss, strings.Join(params, " "))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	total := t.Epochs() + o.epochs // epochs are numbered on from a resumed checkpoint
	bar := newTrainBar(stderr)
	fit := train.FitConfig{Epochs: o.epochs, Batch: int(o.batch), DropLast: o.dropLast, Checkpoint: o.checkpointPath(),
		EpochEnd: func(e train.Epoch) {
			bar.clear()
			fmt.Fprintf(stdout, "epoch %d/%d: loss %.6f (%d steps, %d samples, %.1fs)\n",
				e.Epoch, total, e.Loss, e.Steps, e.Samples, e.Time.Seconds())
		}}
	if bar != nil {
		fit.Progress = bar.show
	}
	if _, err := t.Fit(ctx, data, fit); err != nil {
		bar.clear()
		report(stderr, err)
		return exitFailed
	}
	fmt.Fprintf(stdout, "saved the weights to %s\n", o.saveWeights)
	return exitOK
}

// trainBar is the progress bar of --train on a terminal: epoch, a bar of
// the epoch's steps, the step, its loss and the samples per second.
type trainBar struct {
	w    io.Writer
	last time.Time
}

// newTrainBar returns a bar on w, or nil when w is not a terminal.
func newTrainBar(w io.Writer) *trainBar {
	if !isTerminal(w) {
		return nil
	}
	return &trainBar{w: w}
}

// show draws p, at most ten times a second and at the end of an epoch.
func (b *trainBar) show(p train.Progress) {
	if time.Since(b.last) < 100*time.Millisecond && p.Step != p.Steps {
		return
	}
	b.last = time.Now()
	fmt.Fprint(b.w, "\r\033[K"+barLine(p))
}

// barLine formats p: "epoch 3/20 [=======>      ] step 12/29  loss 0.4213  1834 samples/s".
func barLine(p train.Progress) string {
	const width = 24
	done := width * p.Step / max(p.Steps, 1)
	bar := strings.Repeat("=", done)
	if done < width {
		bar += ">" + strings.Repeat(" ", width-done-1)
	}
	return fmt.Sprintf("epoch %d/%d [%s] step %d/%d  loss %.4f  %.0f samples/s", p.Epoch, p.Epochs, bar, p.Step, p.Steps, p.Loss, p.SamplesPerSec)
}

// clear erases the bar (a nil bar does nothing).
func (b *trainBar) clear() {
	if b != nil {
		fmt.Fprint(b.w, "\r\033[K")
	}
}
