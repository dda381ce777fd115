package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"gorgonia.org/tensor"

	"multigpu/graph"
	"multigpu/runtime"
	"multigpu/runtime/cuda"
	"multigpu/runtime/host"
	"multigpu/tensorio"
)

// inputFlag collects repeated --input NAME=FILE flags.
type inputFlag []inputFile

type inputFile struct{ name, path string }

// String returns the flag's values as given, comma-separated.
func (f *inputFlag) String() string {
	parts := make([]string, len(*f))
	for i, in := range *f {
		parts[i] = in.name + "=" + in.path
	}
	return strings.Join(parts, ",")
}

// Set adds one NAME=VALUE.
func (f *inputFlag) Set(s string) error {
	name, path, ok := strings.Cut(s, "=")
	name = strings.TrimPrefix(name, "%")
	if !ok || name == "" || path == "" {
		return fmt.Errorf("expected NAME=FILE (a .npy or ONNX .pb file), found %q", s)
	}
	for _, in := range *f {
		if in.name == name {
			return fmt.Errorf("input %s given twice", name)
		}
	}
	*f = append(*f, inputFile{name, path})
	return nil
}

// batchAxisFlag collects repeated --batch-axis NAME=AXIS flags.
type batchAxisFlag map[string]int

// String returns the flag's values as given, comma-separated.
func (f *batchAxisFlag) String() string {
	parts := make([]string, 0, len(*f))
	for name, ax := range *f {
		parts = append(parts, name+"="+strconv.Itoa(ax))
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

// Set adds one NAME=VALUE.
func (f *batchAxisFlag) Set(s string) error {
	name, axis, ok := strings.Cut(s, "=")
	ax, err := strconv.Atoi(axis)
	if !ok || name == "" || err != nil {
		return fmt.Errorf("expected NAME=AXIS (an ONNX input and the axis that holds its batch), found %q", s)
	}
	if *f == nil {
		*f = batchAxisFlag{}
	}
	if _, dup := (*f)[name]; dup {
		return fmt.Errorf("input %s given twice", name)
	}
	(*f)[name] = ax
	return nil
}

// isSizeNumber reports whether s is the number of a size: digits, with
// a fraction after one dot.
func isSizeNumber(s string) bool {
	whole, frac, dot := strings.Cut(s, ".")
	digits := func(p string) bool {
		return p != "" && strings.Trim(p, "0123456789") == ""
	}
	return digits(whole) && (!dot || digits(frac))
}

// byteSize is a flag.Value for sizes such as 512M, 4G or 1000000.
type byteSize int64

// String returns the size in bytes.
func (b *byteSize) String() string { return strconv.FormatInt(int64(*b), 10) }

// Set parses a size with an optional K, M, G or T suffix (powers of 1024).
func (b *byteSize) Set(s string) error {
	mult := int64(1)
	num := strings.TrimSuffix(strings.ToUpper(strings.TrimSpace(s)), "B")
	for i, suffix := range []string{"K", "M", "G", "T"} {
		if strings.HasSuffix(num, suffix) {
			num = strings.TrimSuffix(num, suffix)
			mult = int64(1) << (10 * (i + 1))
			break
		}
	}
	v, err := strconv.ParseFloat(num, 64)
	// Digits with an optional fraction only: no NaN, Inf, exponents or
	// hexadecimal, and at least one byte.
	if !isSizeNumber(num) || err != nil || v*float64(mult) < 1 || v*float64(mult) > math.MaxInt64/2 {
		return fmt.Errorf("expected a positive size such as 512M or 4G (at least one byte), found %q", s)
	}
	*b = byteSize(v * float64(mult))
	return nil
}

// loadInputs reads every --input file, all of them together under limit
// bytes (no limit when limit <= 0), which is what the params leave of the
// memory limit total: each is refused before it is read when it would
// take more than what the others left.
func loadInputs(files inputFlag, limit, total int64) (map[string]*tensor.Dense, error) {
	out := map[string]*tensor.Dense{}
	left := limit
	for _, in := range files {
		if limit > 0 && left < 1 {
			left = 1 // refuse the next one, whatever its size
		}
		t, err := tensorio.ReadFileLimit(in.path, left)
		if err != nil {
			var le *tensorio.LimitError
			if errors.As(err, &le) && left < total {
				le.Of = "what the params and the other inputs leave of the memory limit of " + tensorio.FormatBytes(total)
			}
			return nil, fmt.Errorf("--input %s: %w", in.name, err)
		}
		left -= int64(t.MemSize())
		out[in.name] = t
	}
	return out, nil
}

// inputs returns the values of m's inputs that are given: the --input
// files (named as the graph or as the ONNX model names its inputs), and an
// ONNX model's per-sample constants unless --input gives them.
func (m *model) inputs(o *options) (map[string]*tensor.Dense, error) {
	limit := o.memLimit()
	if pb := paramBytes(m.g); limit > 0 && pb < limit {
		// What the params leave (params over the limit are refused
		// when they are made); the runtime counts both again, with
		// everything a run computes, before it starts.
		limit -= pb
	}
	inputs, err := loadInputs(o.inputs, limit, o.memLimit())
	if err != nil {
		return nil, err
	}
	if m.onnx != nil {
		for _, b := range m.onnx.Inputs {
			if t, ok := inputs[b.ONNX]; ok && b.ONNX != b.IR {
				if _, dup := inputs[b.IR]; !dup {
					inputs[b.IR] = t
					delete(inputs, b.ONNX)
				}
			}
		}
	}
	for name, d := range m.defaults() {
		if _, ok := inputs[name]; !ok {
			inputs[name] = d
		}
	}
	return inputs, nil
}

// loadParams returns the weights of g: from --weights, seeded random ones
// with --random-weights, an ONNX model's own, none when g has no params.
func loadParams(g *graph.Graph, own map[string]*tensor.Dense, o *options) (map[string]*tensor.Dense, error) {
	switch {
	case o.weights == "" && !o.randomWeights && own != nil:
		return own, nil
	case o.weights != "":
		w, err := tensorio.ReadArchiveLimit(o.weights, o.memLimit())
		if err != nil {
			return nil, fmt.Errorf("--weights: %w", err)
		}
		return w, nil
	case o.randomWeights || len(g.Params()) == 0:
		return randomParams(g, o)
	}
	names := make([]string, 0, len(g.Params()))
	for _, p := range g.Params() {
		names = append(names, "%"+p.Name)
	}
	return nil, fmt.Errorf("the model has params (%s): give --weights FILE.npz|FILE.safetensors, or --random-weights for seeded random ones",
		strings.Join(names, ", "))
}

// newExecutor makes the executor of g with params set, on the backend
// the options choose, showing progress on stderr when it is a terminal;
// release frees what it holds (and ends the progress line).
func newExecutor(g *graph.Graph, params map[string]*tensor.Dense, o *options, stderr io.Writer) (e *runtime.Executor, release func(), err error) {
	opts := runtime.Options{MemoryLimit: int64(o.memoryLimit), Seed: o.seed, Threads: o.threads, Comm: o.job.commFor(g)}
	opts, freeDevices, err := o.gpu.options(g, opts)
	if err != nil {
		return nil, nil, err
	}
	p := newProgress(stderr, g)
	release = func() {
		if p != nil {
			p.stop()
		}
		freeDevices()
	}
	if p != nil {
		opts.BeforeNode = p.before
	}
	if e, err = runtime.New(g, opts); err == nil {
		err = e.SetParams(params)
	}
	if err != nil {
		release()
		return nil, nil, err
	}
	return e, release, nil
}

// execute runs g once with params and inputs.
func execute(g *graph.Graph, params, inputs map[string]*tensor.Dense, o *options, stderr io.Writer) (map[string]*tensor.Dense, error) {
	e, release, err := newExecutor(g, params, o, stderr)
	if err != nil {
		return nil, err
	}
	defer release()
	return e.Run(context.Background(), inputs)
}

// runModel is --run: run g (already rewritten when --gpus is given) and
// write DIR/OUTPUT.npy for every output.
func runModel(g *graph.Graph, m *model, o *options, stderr io.Writer) error {
	inputs, err := o.job.shareTensors("--input", func() (map[string]*tensor.Dense, error) { return m.inputs(o) })
	if err != nil {
		return err
	}
	params, err := o.job.shareTensors("--weights", func() (map[string]*tensor.Dense, error) { return loadParams(g, m.weights, o) })
	if err != nil {
		return err
	}
	start := time.Now()
	outs, err := execute(g, params, inputs, o, stderr)
	if err != nil {
		return err
	}
	took := time.Since(start)
	if !o.job.writes() {
		return nil // rank 0 writes the outputs every rank has
	}
	var names []string
	for _, out := range g.Outputs {
		names = append(names, out.Name)
	}
	names = outputNames(names)
	if err := writeOutputDir(o.outputDir, names, outs); err != nil {
		return &writeError{err}
	}
	reportOutputs(stderr, o.outputDir, names, outs, took)
	return nil
}

// maxReported is how many outputs --run lists; the rest are counted.
const maxReported = 10

// reportOutputs tells on stderr what --run wrote: one line per output
// (name, dtype and shape, file), at most maxReported of them, and the
// time the run took.
func reportOutputs(w io.Writer, dir string, names []string, outs map[string]*tensor.Dense, took time.Duration) {
	for i, name := range names {
		if i == maxReported {
			fmt.Fprintf(w, "  ... and %d more outputs in %s\n", len(names)-maxReported, dir)
			break
		}
		t := outs[name]
		dt, _ := host.DTypeOf(t)
		fmt.Fprintf(w, "  %%%-12s %s%-14s %s\n", name, dt, shapeText(host.Shape(t)), filepath.Join(dir, name+".npy"))
	}
	fmt.Fprintf(w, "ran in %s: %d outputs written to %s\n", took.Round(time.Millisecond), len(names), dir)
}

// writeError is an output that could not be written: exit status 1.
type writeError struct{ err error }

func (e *writeError) Error() string { return e.err.Error() }
func (e *writeError) Unwrap() error { return e.err }

// checkResult is one output's comparison in --check.
type checkResult struct {
	name         string
	typ          string
	maxAbs       float64
	maxRel       float64
	identical    bool
	withinBounds bool
}

// checkModel is --check: run src, m's graph, and its rewrite out on the
// same seeded random inputs and weights and compare every output; inputs
// that are given (--input, an ONNX model's per-sample constants) get their
// values instead, and the batch is theirs unless --batch says otherwise.
// Random integers are drawn for inputs that index in [0, rows)
// (runtime.IndexRows), and in {0, 1} for other integer inputs (attention
// masks, with a note). It returns whether they agree.
func checkModel(src, out *graph.Graph, m *model, o *options, stdout, stderr io.Writer) (bool, error) {
	given, err := o.job.shareTensors("--input", func() (map[string]*tensor.Dense, error) { return m.inputs(o) })
	if err != nil {
		return false, err
	}
	batch := o.batch
	if _, bound := src.Batch(); bound > 0 {
		batch = bound
	}
	for _, in := range src.Inputs() {
		if t, ok := given[in.Name]; ok && batch == 0 {
			if ax := in.Type.BatchAxis(); ax >= 0 && ax < len(t.Shape()) {
				batch = int64(t.Shape()[ax])
			}
		}
	}
	if batch == 0 {
		batch = int64(2*o.replicas() + 1)
	}
	rows := runtime.IndexRows(src, batch)
	for _, in := range src.Inputs() {
		_, isGiven := given[in.Name]
		_, indexes := rows[in.Name]
		if dt := in.Type.DType; (dt == graph.I32 || dt == graph.I64) && !isGiven && !indexes {
			fmt.Fprintf(stderr, "rewrite: note: input %%%s (%s) indexes no gather: --check draws it in {0, 1}, as an attention mask; give other values with --input %s=FILE\n",
				in.Name, in.Type, in.Name)
			rows[in.Name] = 2
		}
	}
	params := m.weights
	if params == nil {
		if params, err = randomParams(src, o); err != nil {
			return false, err
		}
	}
	// Both executors compile first: a batch too large for the memory
	// limit is refused before its inputs are made.
	var execs [2]*runtime.Executor
	for i, g := range []*graph.Graph{src, out} {
		e, release, err := newExecutor(g, params, o, stderr)
		if err == nil {
			defer release()
			err = e.Prepare(batch)
		}
		if err != nil {
			return false, fmt.Errorf("%s: %w", [2]string{"original", "rewritten"}[i], err)
		}
		execs[i] = e
	}
	inputs, err := runtime.RandomInputsIn(src, batch, o.seed, rows)
	if err != nil {
		return false, err
	}
	for name, d := range given {
		inputs[name] = d
	}
	want, err := execs[0].Run(context.Background(), inputs)
	if err != nil {
		return false, fmt.Errorf("original: %w", err)
	}
	got, err := execs[1].Run(context.Background(), inputs)
	if err != nil {
		return false, fmt.Errorf("rewritten: %w", err)
	}
	replicas := graph.Replicas(batch, o.replicas())
	split := o.replicate.Split
	if split == "" {
		split = graph.Balanced
	}
	sizes := make([]string, replicas)
	for k := range sizes {
		s, e := graph.SplitBounds(batch, replicas, k, split)
		sizes[k] = strconv.FormatInt(e-s, 10)
	}
	fmt.Fprintf(stdout, "check %s: batch %d split %s over %d replicas, seed %d\n", src.Name, batch, strings.Join(sizes, ","), replicas, o.seed)
	agree := true
	tf32 := o.gpu.tf32Enabled()
	if tf32 {
		fmt.Fprintf(stdout, "  (TF32 on: f32 outputs agree within %g of each element plus %g of the output's largest magnitude)\n", cuda.TF32Rel, cuda.TF32Scale)
	}
	for _, n := range src.Outputs {
		r, err := compareWithin(want[n.Name], got[n.Name], tf32)
		if err != nil {
			return false, fmt.Errorf("output %%%s: %w", n.Name, err)
		}
		verdict := "identical"
		switch {
		case r.identical:
		case r.withinBounds:
			verdict = "within tolerance"
		default:
			verdict = "DIFFERENT"
			agree = false
		}
		fmt.Fprintf(stdout, "  %%%-12s %-16s max abs diff %-10.3g max rel diff %-10.3g %s\n", n.Name, r.typ, r.maxAbs, r.maxRel, verdict)
	}
	if agree {
		fmt.Fprintln(stdout, "ok: the rewritten graph computes what the original computes")
	} else {
		fmt.Fprintln(stdout, "FAIL: the rewritten graph computes something else")
	}
	return agree, nil
}

// compare returns how far got is from want. Floats agree within
// 1e-7 + 1e-5*|want| (f32) or 1e-14 + 1e-10*|want| (f64); other types
// must be equal. NaNs agree with NaNs.
func compare(want, got *tensor.Dense) (checkResult, error) { return compareWithin(want, got, false) }

// compareWithin is compare, where with tf32 (the GPUs' f32 products on
// TF32 tensor cores) f32 agrees within cuda.TF32Rel*|want| +
// cuda.TF32Scale*max|want|.
func compareWithin(want, got *tensor.Dense, tf32 bool) (checkResult, error) {
	if want == nil || got == nil {
		return checkResult{}, errors.New("missing from a run")
	}
	wd, _ := host.DTypeOf(want)
	r := checkResult{typ: wd.String() + shapeText(host.Shape(want)), identical: true, withinBounds: true}
	if !slices.Equal(host.Shape(want), host.Shape(got)) || want.Dtype() != got.Dtype() {
		return r, fmt.Errorf("the original gives %s%s, the rewrite %v%s", wd, shapeText(host.Shape(want)), got.Dtype(), shapeText(host.Shape(got)))
	}
	atol, rtol := 0.0, 0.0
	switch wd {
	case graph.F32:
		atol, rtol = 1e-7, 1e-5
	case graph.F64:
		atol, rtol = 1e-14, 1e-10
	}
	w, g := host.Float64s(want), host.Float64s(got)
	if tf32 && wd == graph.F32 {
		rtol = cuda.TF32Rel
		for _, v := range w {
			if !math.IsNaN(v) && !math.IsInf(v, 0) {
				atol = max(atol, cuda.TF32Scale*math.Abs(v))
			}
		}
	}
	for i := range w {
		a, b := w[i], g[i]
		if a == b || (math.IsNaN(a) && math.IsNaN(b)) {
			continue
		}
		r.identical = false
		d := math.Abs(a - b)
		if math.IsNaN(d) {
			d = math.Inf(1)
		}
		r.maxAbs = max(r.maxAbs, d)
		if a != 0 {
			r.maxRel = max(r.maxRel, d/math.Abs(a))
		} else {
			r.maxRel = math.Inf(1)
		}
		if !(d <= atol+rtol*math.Abs(a)) {
			r.withinBounds = false
		}
	}
	return r, nil
}

// shapeText spells a shape as the text format does: [9,10].
func shapeText(s []int) string {
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = strconv.Itoa(d)
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// progress shows, on a terminal, where each device is in a run that takes
// longer than a second: "gpu:0 %h.r0 (3/12)  gpu:1 %z.r1 (9/12)".
type progress struct {
	w     io.Writer
	total map[graph.Device]int
	mu    sync.Mutex
	at    map[graph.Device]string
	done  map[graph.Device]int
	quit  chan struct{}
	wg    sync.WaitGroup
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// newProgress starts a progress line on w, or returns nil when w is not a
// terminal.
func newProgress(w io.Writer, g *graph.Graph) *progress {
	if !isTerminal(w) {
		return nil
	}
	p := &progress{w: w, total: map[graph.Device]int{}, at: map[graph.Device]string{}, done: map[graph.Device]int{}, quit: make(chan struct{})}
	for _, n := range g.Nodes {
		if !n.IsLeaf() {
			p.total[n.Device]++
		}
	}
	p.wg.Add(1)
	go p.loop(time.Second, 200*time.Millisecond)
	return p
}

func (p *progress) before(ctx context.Context, dev graph.Device, n *graph.Node) error {
	p.mu.Lock()
	p.at[dev] = n.Name
	p.done[dev]++
	p.mu.Unlock()
	return nil
}

func (p *progress) loop(delay, every time.Duration) {
	defer p.wg.Done()
	select {
	case <-p.quit:
		return
	case <-time.After(delay):
	}
	t := time.NewTicker(every)
	defer t.Stop()
	shown := false
	for {
		select {
		case <-p.quit:
			if shown {
				fmt.Fprint(p.w, "\r\033[K")
			}
			return
		case <-t.C:
			fmt.Fprint(p.w, "\r\033[K"+p.line())
			shown = true
		}
	}
}

// line formats where every device is.
func (p *progress) line() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	devs := make([]graph.Device, 0, len(p.at))
	for d := range p.at {
		devs = append(devs, d)
	}
	slices.SortFunc(devs, graph.CompareDevices)
	parts := make([]string, len(devs))
	for i, d := range devs {
		name := d.String()
		if name == "" {
			name = "device"
		}
		parts[i] = fmt.Sprintf("%s %%%s (%d/%d)", name, p.at[d], p.done[d], p.total[d])
	}
	return strings.Join(parts, "  ")
}

// stop ends the progress line; no goroutine outlives it.
func (p *progress) stop() {
	close(p.quit)
	p.wg.Wait()
}
