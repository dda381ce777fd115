// Command rewrite reads a model graph, checks it, rewrites it to run
// data-parallel on several GPUs when --gpus is given, and prints it in the
// .graph text format or as Graphviz DOT.
//
// Usage:
//
//	rewrite MODEL [flags]
//
// Run "rewrite -help" for the flags. See README.md for the text format.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"unicode/utf8"

	"gorgonia.org/tensor"

	"multigpu/graph"
	"multigpu/onnx"
	"multigpu/runtime/backend"
	"multigpu/tensorio"
)

// Exit statuses.
const (
	exitOK     = 0
	exitFailed = 1 // the output could not be written, or a bug
	exitUsage  = 2 // bad command line or bad model
	exitCrash  = 3 // a panic: a bug, whatever the input
)

func main() {
	os.Exit(runSafe(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// runSafe is run, with a panic reported as the bug it is (the value and
// the stack, on stderr) and exit status 3, so that scripts tell a crash
// from a model the command refuses (2). Go's fatal errors (running out of
// memory among them) cannot be recovered: the memory limit prevents them.
func runSafe(args []string, stdin io.Reader, stdout, stderr io.Writer) (code int) {
	defer func() {
		if r := recover(); r != nil {
			code = crash(stderr, r, debug.Stack())
		}
	}()
	return run(args, stdin, stdout, stderr)
}

// crash reports the recovered panic r, with the stack of the goroutine
// that panicked (stack, or a kernel's), and returns exit status 3.
func crash(stderr io.Writer, r any, stack []byte) int {
	if k, ok := r.(kernelPanic); ok {
		r, stack = k.err, k.stack
	}
	fmt.Fprintf(stderr, "rewrite: internal error (a bug; please report it with the command line): %s\n%s", clipLine(fmt.Sprint(r)), stack)
	return exitCrash
}

// kernelPanic carries a kernel's recovered panic (the run's error and the
// kernel's stack) from report to runSafe.
type kernelPanic struct {
	err   error
	stack []byte
}

// run is the whole command: it parses args, reads the model (from stdin
// when MODEL is "-"), transforms it and writes the result, reporting errors
// on stderr. It returns the exit status.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if refuseUnderMPI(stderr) {
		return exitUsage
	}
	job, err := startRanks()
	if err != nil {
		fmt.Fprintf(stderr, "rewrite: %s\n", clipLine(err.Error()))
		return exitUsage
	}
	if job == nil {
		return runProcess(args, stdin, stdout, stderr, nil)
	}
	code := runProcess(args, stdin, job.writer(stdout), &linePrefix{w: stderr, prefix: fmt.Sprintf("rank %d of %d: ", job.rank, job.size)}, job)
	job.end(code)
	return code
}

// runProcess is run in this process, one rank of job when job is not nil.
func runProcess(args []string, stdin io.Reader, stdout, stderr io.Writer, job *rankJob) int {
	o, err := parseArgs(args)
	if err != nil {
		fmt.Fprintf(stderr, "rewrite: %s\nRun 'rewrite -help' for usage.\n", clipLine(err.Error()))
		return exitUsage
	}
	if err := o.joinRanks(job); err != nil {
		fmt.Fprintf(stderr, "rewrite: %s\n", clipLine(err.Error()))
		return exitUsage
	}
	if o.help {
		io.WriteString(stdout, usageText)
		return exitOK
	}
	defer setGCLimit(o)()
	m, err := load(o.model, stdin, o, stderr)
	if err != nil {
		var ue *usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(stderr, "rewrite: %s\nRun 'rewrite -help' for usage.\n", clipLine(err.Error()))
			return exitUsage
		}
		report(stderr, err)
		return exitUsage
	}
	g := m.g
	if err := checkPaths(o, g); err != nil {
		fmt.Fprintf(stderr, "rewrite: %s\n", clipLine(err.Error()))
		return exitUsage
	}
	// With CUDA (a -tags cudart build on a machine with GPUs), the GPUs
	// found are what --available defaults to, for a rewrite as for a run.
	if o.gpu, err = resolveBackend(o); err != nil {
		report(stderr, err)
		return exitUsage
	}
	if err := o.gpu.onRank(o, g); err != nil {
		report(stderr, err)
		return exitUsage
	}
	if o.gpu != nil && o.replicate != nil && o.replicate.Available == nil {
		o.replicate.Available = o.gpu.available()
	}
	if o.train {
		return trainModel(g, o, stdout, stderr)
	}
	src := g
	g, code, err := transform(g, o, stderr)
	if err != nil {
		report(stderr, err)
		return code
	}
	switch {
	case o.checkEquiv:
		ok, err := checkModel(src, g, m, o, stdout, stderr)
		if err != nil {
			report(stderr, err)
			return exitUsage
		}
		if !ok {
			return exitFailed
		}
		return exitOK
	case o.run:
		if err := runModel(g, m, o, stderr); err != nil {
			report(stderr, err)
			var we *writeError
			if errors.As(err, &we) {
				return exitFailed
			}
			return exitUsage
		}
		return exitOK
	}
	if o.explain {
		if err := explain(stdout, src, g, o); err != nil {
			report(stderr, err)
			return exitUsage
		}
		if o.output == "" {
			return exitOK
		}
	}
	data, err := render(g, o.format)
	if err != nil {
		report(stderr, err)
		return exitFailed
	}
	if !o.job.writes() {
		return exitOK
	}
	if err := writeOutput(o, stdout, data); err != nil {
		report(stderr, err)
		return exitFailed
	}
	if err := writeWeights(o, m.weights); err != nil {
		report(stderr, err)
		return exitFailed
	}
	return exitOK
}

// model is what load read: the graph, and for an ONNX model its weights
// and the ONNX names of its inputs.
type model struct {
	g       *graph.Graph
	weights map[string]*tensor.Dense // nil for a .graph file
	onnx    *onnx.Model              // nil for a .graph file
}

// defaults returns the data an ONNX model carries for some of its inputs
// (onnx.Model.Defaults), nil for a .graph file.
func (m *model) defaults() map[string]*tensor.Dense {
	if m.onnx == nil {
		return nil
	}
	return m.onnx.Defaults
}

// load reads, parses and verifies the model at path ("-" for stdin): a
// .graph file, or an ONNX model (.onnx), whose import notes go to stderr.
func load(path string, stdin io.Reader, o *options, stderr io.Writer) (*model, error) {
	var src []byte
	var err error
	name := path
	if path == "-" {
		name = "<stdin>"
	}
	src, err = o.job.shareBytes("MODEL", func() ([]byte, error) { return readModelFile(path, stdin, o) })
	if err != nil {
		return nil, err
	}
	if strings.EqualFold(filepath.Ext(path), ".onnx") {
		// --batch with --batch-axis re-sizes a fixed-batch export's batch.
		rebatch := len(o.batchAxes) > 0 && o.batch != 0
		opts := onnx.Options{BatchAxes: o.batchAxes, Rebatch: rebatch, DimParams: o.dims.named, InputDims: o.dims.axes, Scalars: o.values}
		m, err := onnx.Import(src, opts)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if rebatch {
			if err := checkRebatched(src, opts, m); err != nil {
				return nil, fmt.Errorf("%s: the model was exported at a fixed batch, and re-sizing it fails a check of its samples: %v", name, err)
			}
		}
		for _, note := range m.Notes {
			fmt.Fprintf(stderr, "rewrite: note: %s: %s\n", name, note)
		}
		return &model{g: m.Graph, weights: m.Weights, onnx: m}, nil
	}
	if len(o.batchAxes) > 0 {
		return nil, &usageError{"--batch-axis is for ONNX models; in a .graph file the batch is the axis whose dimension is the batch symbol"}
	}
	if len(o.dims.named) > 0 || len(o.dims.axes) > 0 {
		return nil, &usageError{"--dim is for ONNX models; in a .graph file every dimension but the batch is concrete"}
	}
	if len(o.values) > 0 {
		return nil, &usageError{"--value is for ONNX models: it binds an ONNX input to a constant at import"}
	}
	g, err := graph.Parse(name, src)
	if err != nil {
		return nil, err
	}
	if err := graph.Verify(g); err != nil {
		return nil, err
	}
	return &model{g: g}, nil
}

// writeWeights writes an imported model's weights beside the -o file
// (m.graph -> m.npz), so that the .graph file runs on its own.
func writeWeights(o *options, weights map[string]*tensor.Dense) error {
	if o.output == "" || len(weights) == 0 || o.format != formatText {
		return nil
	}
	path := strings.TrimSuffix(o.output, filepath.Ext(o.output)) + ".npz"
	return tensorio.WriteArchive(path, weights)
}

// report prints err on stderr. Errors located in the model are printed one
// per line as file:line:col: message, like Go's own tools; others get the
// command's name in front.
//
// A kernel's panic (backend.PanicError) is raised again here, so that
// runSafe reports it as the bug it is, with exit status 3.
func report(stderr io.Writer, err error) {
	var pe *backend.PanicError
	if errors.As(err, &pe) {
		panic(kernelPanic{err, pe.Stack})
	}
	var list graph.ErrorList
	var one *graph.Error
	switch {
	case errors.As(err, &list):
		for _, e := range list {
			fmt.Fprintln(stderr, clipLine(e.Error()))
		}
	case errors.As(err, &one):
		fmt.Fprintln(stderr, clipLine(one.Error()))
	default:
		fmt.Fprintf(stderr, "rewrite: %s\n", clipLine(err.Error()))
	}
}

// maxLine is the longest error line report prints whole.
const maxLine = 2000

// clipLine cuts a message longer than maxLine bytes (one that echoes a
// million-element attribute, say) in its middle, saying how much is left
// out, so that an error stays a line a terminal can show.
func clipLine(s string) string {
	if len(s) <= maxLine {
		return s
	}
	head, tail := s[:maxLine*3/4], s[len(s)-maxLine/4:]
	for !utf8.ValidString(head) {
		head = head[:len(head)-1]
	}
	for !utf8.ValidString(tail) {
		tail = tail[1:]
	}
	return fmt.Sprintf("%s ... (%d bytes left out) ... %s", head, len(s)-len(head)-len(tail), tail)
}
