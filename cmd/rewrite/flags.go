package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"multigpu/graph"
	"multigpu/passes/replicate"
	"multigpu/runtime/cuda"
	"multigpu/runtime/devmap"
)

// options is everything the command line asks for. parseArgs fills it; run
// and the functions it calls only read it.
//
// To add a flag: add a field here, register it in (*options).flagSet, check
// it in (*options).check if it depends on other flags, document it in
// usageText and in README.md, and use it in (*options).pipeline
// (rewrite.go) or writeOutput (output.go).
type options struct {
	model      string // path of the input model; "-" is standard input
	format     format // output format
	output     string // output file; "" is standard output
	verifyEach bool   // verify the graph after every pass
	help       bool   // print the usage text and stop

	// The replicate pass: gpus turns it on, the rest configure it.
	gpus      string
	merge     string
	split     string
	batch     int64
	batchnorm string
	combine   string
	available string
	explain   bool
	// replicate holds the parsed configuration when --gpus is given.
	replicate *replicate.Options

	// Running: --run or --check, and what they read.
	run           bool
	checkEquiv    bool
	inputs        inputFlag
	weights       string
	randomWeights bool
	outputDir     string
	seed          uint64
	memoryLimit   byteSize
	threads       int           // --threads: CPU backend threads (0: the cores)
	batchAxes     batchAxisFlag // the batch of an ONNX model's inputs
	dims          dimFlag       // sizes of an ONNX model's dynamic dimensions
	values        valueFlag     // scalar ONNX inputs bound to constants
	backend       string        // auto, cpu or cuda
	deviceMapText string        // --device-map as given
	deviceMap     devmap.Map    // parsed; empty: gpu:K runs on GPU K
	tf32Text      string        // --tf32 as given
	tf32          cuda.TF32     // parsed: TF32 tensor cores for f32 products
	gpu           *gpuBackend   // the real GPUs, when the backend is CUDA
	job           *rankJob      // this process's rank, under mpirun (mpi.go)
	ranks         int           // --ranks: processes the replicas span
	rankTimeout   time.Duration // --rank-timeout: the watchdog of collectives across ranks

	// Training: --train and what it reads (train.go); --weights resumes,
	// --batch is the batch size, --seed the shuffles and dropout.
	train       bool
	data        string
	epochs      int
	optimizer   string
	lr          float64
	loss        string
	dropLast    bool
	saveWeights string
}

// usageText is printed by -h and --help.
const usageText = `usage: rewrite MODEL [flags]

rewrite reads a model graph in the .graph text format, or an ONNX model
(.onnx, whose weights -o m.graph writes to m.npz), checks it, and
prints it canonically (or as Graphviz DOT). MODEL is a .graph file, or -
for standard input. Flags may come before or after MODEL; -- ends them.
Every flag may be written with one dash or two, and a value may follow
the flag as the next argument or after =.

flags:
  --gpus N|LIST       replicate across N GPUs (gpu:0..gpu:N-1, N >= 2) or
                      the listed ones (0,2,5); across ranks, on each rank
                      (N = 1 allowed)
  --merge DEVICE      where inputs are fed and outputs merged: cpu (default)
                      or gpu:K
  --split POLICY      balanced (default: parts differ by at most one) or
                      remainder (Keras: the last part takes the rest)
  --batch B           bind a symbolic batch to B (slice bounds concrete);
                      with --train, the samples per step
  --batchnorm MODE    batchnorm in training mode: refuse (default),
                      per-replica (Keras) or sync (exact)
  --combine MODE      auto (default: allreduce groups on the replicas for
                      combined values they use again), merge (every
                      combination on the merge device) or allreduce (all)
  --available LIST    the GPUs that exist (0,1,2 or gpu:0,...): asking for
                      others is an error
  --ranks P           rewrite for P processes, --gpus on each (rankR/gpu:K);
                      under mpirun (a -tags mpi build) the job's size
  --rank-timeout D    under mpirun: end the job when a collective waits
                      longer than D for the other ranks (default 10m; 0
                      waits forever)
  --explain           print per-device nodes, FLOPs and bytes (at --batch,
                      or 64 when the batch is symbolic) instead of the graph;
                      with -o the graph still goes to the file
  --run               run the model (rewritten when --gpus is given) and
                      write DIR/OUTPUT.npy for every output
  --input NAME=FILE   an input for --run or --check: .npy, or an ONNX
                      TensorProto .pb (repeat for each input)
  --weights FILE      params for --run, by name: .npz or .safetensors
  --random-weights    seeded random params instead of --weights
  --output-dir DIR    where --run writes its outputs (created if missing)
  --check             run the original and the rewritten graph (--gpus) on
                      the same seeded random inputs and weights at --batch
                      (default 2N+1: an uneven split) and compare every
                      output; exit 0 when they agree, 1 when they do not,
                      2 when the run is refused (say, over the memory limit)
  --seed S            seed of --random-weights, --check and dropout (default 1)
  --memory-limit SIZE refuse a run whose tensors exceed SIZE (512M, 4G;
                      default: the machine's memory)
  --threads T         threads of the CPU backend, shared by its devices
                      (default: the machine's cores)
  --train             train MODEL (replicated across --gpus, or on one
                      device) on --data and write --save-weights
  --data FILE.npz     training data: one array per input, by input name
  --epochs E          passes over the data
  --optimizer NAME    sgd (default), momentum or adam
  --lr X              learning rate (default 0.01; adam 0.001)
  --loss NAME         the scalar output to minimise (default: the only one)
  --drop-last         drop the last batch of an epoch when it is short
  --save-weights FILE where the weights go, atomically, every epoch
                      (.npz or .safetensors; the model's param names)
  --backend B         what runs the devices of --run, --check and --train:
                      cpu (CPU workers stand in for every GPU), cuda (the
                      GPUs; needs a build with -tags cudart), or auto
                      (default: cuda when built with it and a GPU is found).
                      With cuda, --available defaults to the GPUs found;
                      --backend cpu rewrites for GPUs this machine lacks
  --device-map MAP    run logical GPUs on physical ones: gpu:0-3=0 puts
                      four logical GPUs on GPU 0 (CUDA backend)
  --tf32 off|on|auto  f32 matrix products and convolutions on TF32 tensor
                      cores (CUDA backend): off (default), on, or auto (on
                      from Ampere, compute capability 8.0, up); with TF32,
                      --check allows TF32's tolerance
  --batch-axis NAME=AXIS
                      for an ONNX model whose inputs are all concrete: the
                      axis of input NAME that holds the batch (repeatable)
  --dim NAME=SIZE     for an ONNX model: the size of the dynamic dimension
                      named NAME (a sequence length); --dim INPUT:AXIS=SIZE
                      sizes an unnamed one by input and axis (repeatable)
  --value NAME=V      for an ONNX model: bind scalar input NAME to V, so
                      that what is computed from it (an If) folds at import
                      (repeatable)
  --format text|dot   output format (default text)
  -o, --output FILE   write to FILE instead of standard output; FILE is
                      replaced atomically and left untouched on failure
  --verify-each       verify the graph after every pass
  -h, --help          print this help

exit status: 0 on success, 1 if an output could not be written, training
failed or a pass broke the graph (a bug), 2 for a usage error, a model
that does not parse, verify or rewrite, or a run refused (over the
memory limit), 3 for an internal error (a panic: a bug).
`

// usageError is a mistake on the command line: run prints it with a hint
// to use --help and exits 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// flagSet returns a flag set that stores into o. It prints nothing: run
// reports its errors.
func (o *options) flagSet() *flag.FlagSet {
	fs := flag.NewFlagSet("rewrite", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.Var(&o.format, "format", "output format: text or dot")
	fs.StringVar(&o.output, "o", "", "output file")
	fs.StringVar(&o.output, "output", "", "output file")
	fs.BoolVar(&o.verifyEach, "verify-each", false, "verify after every pass")
	fs.BoolVar(&o.help, "h", false, "print help")
	fs.BoolVar(&o.help, "help", false, "print help")
	fs.StringVar(&o.gpus, "gpus", "", "GPU count or list")
	fs.StringVar(&o.merge, "merge", "", "merge device")
	fs.StringVar(&o.split, "split", "", "split policy")
	fs.Int64Var(&o.batch, "batch", 0, "batch size")
	fs.StringVar(&o.batchnorm, "batchnorm", "", "training batchnorm mode")
	fs.StringVar(&o.combine, "combine", "", "where combinations over the batch happen")
	fs.StringVar(&o.available, "available", "", "available GPUs")
	fs.IntVar(&o.ranks, "ranks", 0, "processes (MPI ranks)")
	fs.DurationVar(&o.rankTimeout, "rank-timeout", defaultRankTimeout, "watchdog of collectives across ranks")
	fs.BoolVar(&o.explain, "explain", false, "explain the cost per device")
	fs.BoolVar(&o.run, "run", false, "run the model")
	fs.BoolVar(&o.checkEquiv, "check", false, "compare the original and the rewrite")
	fs.Var(&o.inputs, "input", "NAME=FILE input for --run")
	fs.StringVar(&o.weights, "weights", "", "weights archive")
	fs.BoolVar(&o.randomWeights, "random-weights", false, "seeded random weights")
	fs.StringVar(&o.outputDir, "output-dir", "", "output directory of --run")
	fs.Uint64Var(&o.seed, "seed", 1, "random seed")
	fs.Var(&o.memoryLimit, "memory-limit", "memory limit of a run")
	fs.IntVar(&o.threads, "threads", 0, "CPU backend threads")
	fs.Var(&o.batchAxes, "batch-axis", "NAME=AXIS batch axis of an ONNX input")
	fs.Var(&o.dims, "dim", "NAME=SIZE or INPUT:AXIS=SIZE of an ONNX input's dimension")
	fs.Var(&o.values, "value", "NAME=V scalar ONNX input bound to a constant")
	fs.StringVar(&o.backend, "backend", backendAuto, "auto, cpu or cuda")
	fs.StringVar(&o.deviceMapText, "device-map", "", "logical GPUs onto physical ones")
	fs.StringVar(&o.tf32Text, "tf32", "off", "TF32 tensor cores: off, on or auto")
	fs.BoolVar(&o.train, "train", false, "train the model")
	fs.StringVar(&o.data, "data", "", "training data .npz")
	fs.IntVar(&o.epochs, "epochs", 0, "training epochs")
	fs.StringVar(&o.optimizer, "optimizer", "", "sgd, momentum or adam")
	fs.Float64Var(&o.lr, "lr", 0, "learning rate")
	fs.StringVar(&o.loss, "loss", "", "loss output")
	fs.BoolVar(&o.dropLast, "drop-last", false, "drop the last short batch")
	fs.StringVar(&o.saveWeights, "save-weights", "", "trained weights archive")
	return fs
}

// parseArgs parses the command line (without the program name). Flags and
// positional arguments may be interleaved: Go's flag package stops at the
// first positional argument, so parseArgs takes it and parses the rest
// again. "--" ends the flags; everything after it is positional.
func parseArgs(args []string) (*options, error) {
	o := &options{format: formatText}
	fs := o.flagSet()
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) { // an unregistered -help spelling
				o.help = true
				return o, nil
			}
			return nil, &usageError{err.Error()}
		}
		consumed := len(args) - fs.NArg()
		if endedByTerminator(fs, args[:consumed]) {
			positional = append(positional, fs.Args()...)
			break
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if o.help {
		return o, nil
	}
	// A flag given an empty value ("--gpus ''") means nothing: refuse it
	// rather than take it for the flag's absence.
	var empty []string
	fs.Visit(func(f *flag.Flag) {
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); !(ok && b.IsBoolFlag()) && f.Value.String() == "" {
			empty = append(empty, f.Name)
		}
	})
	if len(empty) > 0 {
		slices.Sort(empty)
		return nil, usagef("--%s: expected a value, found an empty one", empty[0])
	}
	switch len(positional) {
	case 0:
		return nil, usagef("no MODEL given")
	case 1:
		o.model = positional[0]
	default:
		return nil, usagef("want exactly one MODEL, got %d: %s", len(positional), strings.Join(positional, " "))
	}
	if err := o.check(); err != nil {
		return nil, err
	}
	return o, nil
}

// check validates combinations of flags once all are parsed.
func (o *options) check() error {
	if o.output == "-" {
		o.output = "" // -o - is standard output
	}
	if err := o.checkTrain(); err != nil {
		return err
	}
	if err := o.checkRun(); err != nil {
		return err
	}
	if o.threads < 0 {
		return usagef("--threads: expected a positive number of threads, found %d", o.threads)
	}
	switch o.backend {
	case backendAuto, backendCPU, backendCUDA:
	default:
		return usagef("--backend: expected auto, cpu or cuda, found %q", o.backend)
	}
	if o.deviceMapText != "" {
		if o.backend == backendCPU {
			return usagef("--device-map maps logical GPUs onto physical ones: it goes with --backend cuda or auto, not cpu")
		}
		m, err := devmap.Parse(o.deviceMapText)
		if err != nil {
			return usagef("--device-map: %v", err)
		}
		o.deviceMap = m
	}
	tf32, tfErr := cuda.ParseTF32(o.tf32Text)
	if tfErr != nil {
		return usagef("--tf32: %v", tfErr)
	}
	o.tf32 = tf32
	if o.tf32 == cuda.TF32On && o.backend == backendCPU {
		return usagef("--tf32 on: TF32 is a mode of the GPUs' matrix products; it goes with --backend cuda or auto, not cpu")
	}
	if o.gpus == "" {
		for name, set := range map[string]bool{"--merge": o.merge != "", "--split": o.split != "", "--batch": o.batch != 0 && !o.train,
			"--batchnorm": o.batchnorm != "", "--combine": o.combine != "", "--available": o.available != "", "--explain": o.explain,
			"--ranks": o.ranks != 0} {
			if set {
				return usagef("%s configures the replicate pass: give --gpus too", name)
			}
		}
		return nil
	}
	var r replicate.Options
	var err error
	if r.GPUs, err = parseGPUs(o.gpus, o.ranks); err != nil {
		return &usageError{err.Error()}
	}
	if o.merge != "" {
		if r.Merge, err = graph.ParseDevice(o.merge); err != nil {
			return usagef("--merge: %v", err)
		}
	}
	if o.split != "" {
		if r.Split, err = graph.ParseSplitPolicy(o.split); err != nil {
			return usagef("--split: %v", err)
		}
	}
	if o.batch < 0 {
		return usagef("--batch: expected a positive batch size, found %d", o.batch)
	}
	r.Batch = o.batch
	if o.ranks < 0 || o.ranks > 1<<16 {
		return usagef("--ranks: expected 1 to %d processes, found %d", 1<<16, o.ranks)
	}
	r.Ranks = o.ranks
	if r.BatchNorm, err = replicate.ParseBatchNormMode(o.batchnorm); err != nil {
		return usagef("--batchnorm: %v", err)
	}
	if r.Combine, err = replicate.ParseCombineMode(o.combine); err != nil {
		return &usageError{err.Error()}
	}
	if o.available != "" {
		if r.Available, err = replicate.ParseDevices(o.available); err != nil {
			return usagef("--available: %v", err)
		}
	}
	o.replicate = &r
	return nil
}

// checkRun validates the flags of --run and --check.
func (o *options) checkRun() error {
	modes := 0
	for _, on := range []bool{o.run, o.checkEquiv, o.explain} {
		if on {
			modes++
		}
	}
	if modes > 1 {
		return usagef("--run, --check and --explain exclude each other: give one")
	}
	if !o.run {
		for name, set := range map[string]bool{"--input": len(o.inputs) > 0, "--output-dir": o.outputDir != "",
			"--weights": o.weights != "" && !o.train, "--random-weights": o.randomWeights && !o.train} {
			if set && !(o.checkEquiv && (name == "--random-weights" || name == "--input")) {
				return usagef("%s goes with --run", name)
			}
		}
	}
	switch {
	case o.run && o.outputDir == "":
		return usagef("--run needs --output-dir DIR for the outputs")
	case o.run && o.weights != "" && o.randomWeights:
		return usagef("--weights and --random-weights exclude each other")
	case o.checkEquiv && o.gpus == "":
		return usagef("--check compares the model with its rewrite: give --gpus too")
	}
	return nil
}

// endedByTerminator reports whether the flag package stopped after
// consuming a "--" that ends the flags, rather than one that was the value
// of a flag ("-o --"). consumed holds only flags and their values, all of
// which fs accepted, so walking it flag by flag finds each value.
func endedByTerminator(fs *flag.FlagSet, consumed []string) bool {
	for i := 0; i < len(consumed); i++ {
		a := consumed[i]
		if a == "--" {
			return true
		}
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		f := fs.Lookup(name)
		if f == nil {
			continue
		}
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
			continue
		}
		i++ // skip the flag's value
	}
	return false
}

// format is an output format, a flag.Value that accepts only known names.
type format string

const (
	formatText format = "text"
	formatDOT  format = "dot"
)

func (f *format) String() string { return string(*f) }

func (f *format) Set(s string) error {
	switch format(s) {
	case formatText, formatDOT:
		*f = format(s)
		return nil
	}
	return fmt.Errorf("unknown format %q (want text or dot)", s)
}

// dimFlag collects repeated --dim flags: NAME=SIZE sizes a named dimension
// (onnx.Options.DimParams), INPUT:AXIS=SIZE an axis of an input
// (onnx.Options.InputDims). A name is read as INPUT:AXIS when the part after
// its last colon is an integer.
type dimFlag struct {
	named map[string]int64
	axes  map[string]map[int]int64
}

// String returns the flag's values, sorted and comma-separated.
func (f *dimFlag) String() string {
	var parts []string
	for name, v := range f.named {
		parts = append(parts, name+"="+strconv.FormatInt(v, 10))
	}
	for in, m := range f.axes {
		for ax, v := range m {
			parts = append(parts, in+":"+strconv.Itoa(ax)+"="+strconv.FormatInt(v, 10))
		}
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

// Set adds one NAME=SIZE or INPUT:AXIS=SIZE.
func (f *dimFlag) Set(s string) error {
	name, size, ok := strings.Cut(s, "=")
	v, err := strconv.ParseInt(size, 10, 64)
	if !ok || name == "" || err != nil || v <= 0 {
		return fmt.Errorf("expected NAME=SIZE (a named dimension) or INPUT:AXIS=SIZE (an axis of an input), SIZE a positive integer, found %q", s)
	}
	if i := strings.LastIndex(name, ":"); i > 0 {
		if ax, err := strconv.Atoi(name[i+1:]); err == nil {
			in := name[:i]
			if f.axes == nil {
				f.axes = map[string]map[int]int64{}
			}
			if f.axes[in] == nil {
				f.axes[in] = map[int]int64{}
			}
			if _, dup := f.axes[in][ax]; dup {
				return fmt.Errorf("axis %d of input %s given twice", ax, in)
			}
			f.axes[in][ax] = v
			return nil
		}
	}
	if f.named == nil {
		f.named = map[string]int64{}
	}
	if _, dup := f.named[name]; dup {
		return fmt.Errorf("dimension %s given twice", name)
	}
	f.named[name] = v
	return nil
}

// valueFlag collects repeated --value NAME=V flags (onnx.Options.Scalars).
type valueFlag map[string]float64

// String returns the flag's values, sorted and comma-separated.
func (f *valueFlag) String() string {
	parts := make([]string, 0, len(*f))
	for name, v := range *f {
		parts = append(parts, name+"="+strconv.FormatFloat(v, 'g', -1, 64))
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

// Set adds one NAME=V.
func (f *valueFlag) Set(s string) error {
	name, val, ok := strings.Cut(s, "=")
	v, err := strconv.ParseFloat(val, 64)
	if !ok || name == "" || err != nil {
		return fmt.Errorf("expected NAME=V (a scalar input and its value, a number), found %q", s)
	}
	if *f == nil {
		*f = valueFlag{}
	}
	if _, dup := (*f)[name]; dup {
		return fmt.Errorf("input %s given twice", name)
	}
	(*f)[name] = v
	return nil
}
