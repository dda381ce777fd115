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

	"multigpu/graph"
)

// Exit statuses.
const (
	exitOK     = 0
	exitFailed = 1 // the output could not be written, or a bug
	exitUsage  = 2 // bad command line or bad model
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run is the whole command: it parses args, reads the model (from stdin
// when MODEL is "-"), transforms it and writes the result, reporting errors
// on stderr. It returns the exit status.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	o, err := parseArgs(args)
	if err != nil {
		fmt.Fprintf(stderr, "rewrite: %v\nRun 'rewrite -help' for usage.\n", err)
		return exitUsage
	}
	if o.help {
		io.WriteString(stdout, usageText)
		return exitOK
	}
	g, err := load(o.model, stdin)
	if err != nil {
		report(stderr, err)
		return exitUsage
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
		ok, err := checkModel(src, g, o, stdout, stderr)
		if err != nil {
			report(stderr, err)
			return exitFailed
		}
		if !ok {
			return exitFailed
		}
		return exitOK
	case o.run:
		if err := runModel(g, o, stderr); err != nil {
			report(stderr, err)
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
	if err := writeOutput(o, stdout, data); err != nil {
		report(stderr, err)
		return exitFailed
	}
	return exitOK
}

// load reads, parses and verifies the model at path ("-" for stdin).
func load(path string, stdin io.Reader) (*graph.Graph, error) {
	var src []byte
	var err error
	name := path
	if path == "-" {
		name = "<stdin>"
		src, err = io.ReadAll(stdin)
	} else {
		src, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, err
	}
	g, err := graph.Parse(name, src)
	if err != nil {
		return nil, err
	}
	if err := graph.Verify(g); err != nil {
		return nil, err
	}
	return g, nil
}

// report prints err on stderr. Errors located in the model are printed one
// per line as file:line:col: message, like Go's own tools; others get the
// command's name in front.
func report(stderr io.Writer, err error) {
	var list graph.ErrorList
	var one *graph.Error
	switch {
	case errors.As(err, &list):
		for _, e := range list {
			fmt.Fprintln(stderr, e)
		}
	case errors.As(err, &one):
		fmt.Fprintln(stderr, one)
	default:
		fmt.Fprintf(stderr, "rewrite: %v\n", err)
	}
}
