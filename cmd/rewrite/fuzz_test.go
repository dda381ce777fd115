package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gorgonia.org/tensor"

	"multigpu/graph"
	"multigpu/passes/replicate"
	"multigpu/runtime"
)

// FuzzFlags checks that the flag parser never panics, that every command
// line it refuses is a usage error, and that what it accepts is
// consistent: a replicate configuration exactly when --gpus is given,
// with at least two GPUs. The arguments are the fuzzed string split at
// NUL bytes. Seeds: the command lines of the tests and the README.
//
//	go test ./cmd/rewrite -run '^$' -fuzz FuzzFlags -fuzztime 5m
func FuzzFlags(f *testing.F) {
	for _, args := range [][]string{
		{"m.graph", "--gpus", "4"},
		{"m.graph", "--gpus", "0,2,5", "--merge", "gpu:0", "--split", "remainder", "--batch", "10", "-o", "out.graph"},
		{"m.graph", "--gpus", "2", "--check", "--batchnorm", "sync", "--memory-limit", "1.5G"},
		{"m.graph", "--gpus=2", "--explain", "--batch=64", "--format", "dot"},
		{"m.graph", "--run", "--input", "x=x.npy", "--weights", "w.npz", "--output-dir", "out", "--seed", "3"},
		{"m.graph", "--train", "--data", "d.npz", "--epochs", "20", "--batch", "32", "--optimizer", "adam", "--lr", "0.01", "--save-weights", "w.npz"},
		{"m.onnx", "--dim", "sequence=128", "--dim", "audio:1=16000", "--value", "rate=16000", "--batch-axis", "x=1"},
		{"-", "--", "-o"},
		{"--help"},
		{"m.graph", "--gpus", ""},
		{"m.graph", "--memory-limit", "NaN"},
	} {
		f.Add(strings.Join(args, "\x00"))
	}
	f.Fuzz(func(t *testing.T, s string) {
		o, err := parseArgs(strings.Split(s, "\x00"))
		if err != nil {
			var ue *usageError
			if !errors.As(err, &ue) {
				t.Fatalf("refused with %T, not a usage error: %v", err, err)
			}
			return
		}
		if o.help {
			return
		}
		if (o.replicate != nil) != (o.gpus != "") {
			t.Fatalf("--gpus %q, replicate %v", o.gpus, o.replicate)
		}
		if o.replicate != nil && len(o.replicate.GPUs) < 2 {
			t.Fatalf("accepted --gpus %q: %v", o.gpus, o.replicate.GPUs)
		}
		if o.memoryLimit < 0 || o.batch < 0 || (o.train && (o.epochs < 1 || o.batch < 1)) {
			t.Fatalf("accepted %+v", o)
		}
	})
}

// FuzzPipeline fuzzes what comes after parsing: a model the parser and
// Verify accept is rewritten for 2 to 4 GPUs, and, when the rewrite
// accepts it, the original and the rewrite run on the same seeded random
// small inputs and weights (under a 64 MB limit); their outputs must
// agree as --check requires (bit for bit, or within its tolerance). The
// second argument picks the GPU count and the batch. Seeds: every model
// of ../../testdata.
//
//	go test ./cmd/rewrite -run '^$' -fuzz FuzzPipeline -fuzztime 5m
func FuzzPipeline(f *testing.F) {
	files, err := filepath.Glob("../../testdata/*.graph")
	if err != nil {
		f.Fatal(err)
	}
	for i, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, uint8(i))
	}
	f.Fuzz(func(t *testing.T, src []byte, pick uint8) {
		g, err := graph.Parse("fuzz.graph", src)
		if err != nil || graph.Verify(g) != nil {
			return
		}
		if _, bound := g.Batch(); bound > 64 {
			return
		}
		gpus := int(pick%3) + 2
		batch := int64(pick/3%7) + 1
		opts := replicate.Options{GPUs: make([]int, gpus)}
		for i := range opts.GPUs {
			opts.GPUs[i] = i
		}
		if _, bound := g.Batch(); bound > 0 {
			batch = bound
		}
		out, _, err := replicate.Rewrite(g, opts)
		if err != nil {
			return
		}
		if err := graph.Verify(out); err != nil {
			t.Fatalf("the rewrite does not verify: %v", err)
		}
		for _, p := range g.Params() {
			if typeBytes(p.Type) > 1<<20 {
				return
			}
		}
		params := runtime.RandomParams(g, 1)
		inputs, err := runtime.RandomInputs(g, batch, 1)
		if err != nil {
			return
		}
		results := make([]map[string]*tensor.Dense, 2)
		for i, gg := range []*graph.Graph{g, out} {
			e, err := runtime.New(gg, runtime.Options{MemoryLimit: 64 << 20, Seed: 1})
			if err != nil {
				if i == 1 {
					t.Fatalf("the original runs, the rewrite does not lower: %v", err)
				}
				return
			}
			if err := e.SetParams(params); err != nil {
				return
			}
			r, err := e.Run(context.Background(), inputs)
			if err != nil {
				if i == 1 {
					t.Fatalf("the original runs, the rewrite fails: %v", err)
				}
				return
			}
			results[i] = r
		}
		for _, n := range g.Outputs {
			c, err := compare(results[0][n.Name], results[1][n.Name])
			if err != nil {
				t.Fatalf("output %%%s: %v", n.Name, err)
			}
			if !c.withinBounds {
				t.Fatalf("output %%%s over %d GPUs at batch %d: max abs diff %g, rel %g", n.Name, gpus, batch, c.maxAbs, c.maxRel)
			}
		}
	})
}
