// Command digits is the handwritten-digits example: it converts
// scikit-learn's 8x8 digits (digits.csv.gz, shipped in Debian's
// python3-sklearn package; fetch.sh extracts it) into training and
// held-out .npz archives for `rewrite --train`, measures the accuracy of
// trained weights on the held-out fifth, and plots the loss per epoch
// that `rewrite --train` prints.
//
// Usage:
//
//	go run ./examples/digits convert [-csv FILE] [-out DIR]
//	go run ./examples/digits evaluate [-model FILE] [-data FILE] -weights FILE
//	go run ./examples/digits plot [-o FILE.png] < train.log
//
// See README.md for the whole run.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"multigpu/graph"
	"multigpu/tensorio"
)

// dataDir is where convert writes, and fetch.sh puts digits.csv.gz.
const dataDir = "examples/digits/data"

func main() {
	if err := run(os.Args[1:], os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "digits:", err)
		os.Exit(1)
	}
}

func run(args []string, stdin io.Reader, stdout io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: digits convert|evaluate|plot [flags]")
	}
	fs := flag.NewFlagSet("digits "+args[0], flag.ContinueOnError)
	switch args[0] {
	case "convert":
		csv := fs.String("csv", filepath.Join(dataDir, "digits.csv.gz"), "scikit-learn's digits.csv.gz")
		out := fs.String("out", dataDir, "directory for train.npz and test.npz")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		s, err := Load(*csv)
		if err != nil {
			return err
		}
		tr, te := s.Split()
		if err := os.MkdirAll(*out, 0o755); err != nil {
			return err
		}
		for name, set := range map[string]*Samples{"train.npz": tr, "test.npz": te} {
			if err := tensorio.WriteArchive(filepath.Join(*out, name), set.Arrays()); err != nil {
				return err
			}
		}
		fmt.Fprintf(stdout, "%s: %d samples for training, %d held out\n", *out, len(tr.Labels), len(te.Labels))
		return nil
	case "evaluate":
		model := fs.String("model", "examples/digits/cnn.graph", "the model")
		data := fs.String("data", filepath.Join(dataDir, "test.npz"), "held-out samples")
		weights := fs.String("weights", "", "trained weights (.npz)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		src, err := os.ReadFile(*model)
		if err != nil {
			return err
		}
		g, err := graph.Parse(*model, src)
		if err != nil {
			return err
		}
		w, err := tensorio.ReadArchive(*weights)
		if err != nil {
			return err
		}
		d, err := tensorio.ReadArchive(*data)
		if err != nil {
			return err
		}
		acc, err := Accuracy(g, w, d["x"], d["t"])
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "accuracy on %s: %.2f%% of %d\n", *data, 100*acc, d["t"].Shape()[0])
		return nil
	case "plot":
		out := fs.String("o", "", "the PNG file (default: standard output)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		losses, err := ParseLosses(stdin)
		if err != nil {
			return err
		}
		if *out == "" {
			return Plot(stdout, losses)
		}
		return tensorio.AtomicWrite(*out, func(w io.Writer) error { return Plot(w, losses) })
	}
	return fmt.Errorf("unknown command %q: want convert, evaluate or plot", args[0])
}
