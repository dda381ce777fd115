package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"

	"gorgonia.org/tensor"

	"multigpu/graph"
	"multigpu/runtime"
	"multigpu/tensorio"
)

// The memory limit (--memory-limit) holds on every path of a run: each
// reader is told what it may allocate and refuses more before allocating
// (the model file, a quarter of the limit; a --weights or --data archive,
// by the sizes its members declare decompressed; an --input file, by its
// header's shape; params made up by --random-weights, by their types),
// and the runtime counts the tensors of a run (inputs, params, every
// intermediate value and a kernel's scratch) before it starts
// (runtime.Options.MemoryLimit). What is allocated besides these, by Go
// and by the libraries (gorgonia's tensors among them), is bounded by the
// garbage collector's soft limit, set to the same size
// (debug.SetMemoryLimit), so that garbage never piles up above it.

// memLimit returns the memory limit in bytes: --memory-limit, or the
// machine's memory; 0 when neither is known.
func (o *options) memLimit() int64 {
	if o.memoryLimit > 0 {
		return int64(o.memoryLimit)
	}
	return runtime.MachineMemory()
}

// setGCLimit makes the garbage collector keep the heap under the limit
// given with --memory-limit, until the function it returns puts the
// previous limit back.
func setGCLimit(o *options) (restore func()) {
	if o.memoryLimit <= 0 {
		return func() {}
	}
	prev := debug.SetMemoryLimit(int64(o.memoryLimit))
	return func() { debug.SetMemoryLimit(prev) }
}

// readModelFile reads MODEL ("-": stdin) under a quarter of the memory
// limit: the file, what is parsed from it and the weights it may carry
// must all fit.
func readModelFile(path string, stdin io.Reader, o *options) ([]byte, error) {
	limit := o.memLimit() / 4
	if path == "-" {
		b, err := tensorio.ReadAllLimit(stdin, limit, "MODEL on standard input")
		return b, quarter(err)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.IsDir() {
		return nil, fmt.Errorf("%s: expected a model file, found a directory", path)
	}
	if limit > 0 && fi.Mode().IsRegular() && fi.Size() > limit {
		return nil, quarter(&tensorio.LimitError{Path: path, What: "MODEL", Need: fi.Size(), Limit: limit})
	}
	b, err := tensorio.ReadAllLimit(f, limit, path+": MODEL")
	return b, quarter(err)
}

// quarter says of a limit error that the limit is a quarter of the memory
// limit.
func quarter(err error) error {
	var le *tensorio.LimitError
	if errors.As(err, &le) {
		le.Of = "a quarter of the memory limit, for the model file"
	}
	return err
}

// paramBytes is the bytes of g's params, saturated at the largest int64.
func paramBytes(g *graph.Graph) int64 {
	var total int64
	for _, p := range g.Params() {
		total = satAdd(total, typeBytes(p.Type))
	}
	return total
}

// typeBytes is the bytes of a value of type t (its batch, if symbolic,
// counted as 1), saturated at the largest int64.
func typeBytes(t graph.Type) int64 {
	n := int64(t.DType.Size())
	for _, d := range t.Shape {
		v, ok := d.Value()
		if !ok {
			v = 1
		}
		n = satMul(n, v)
	}
	return n
}

func satAdd(a, b int64) int64 {
	if a > 1<<63-1-b {
		return 1<<63 - 1
	}
	return a + b
}

func satMul(a, b int64) int64 {
	if a == 0 || b == 0 {
		return 0
	}
	if a > (1<<63-1)/b {
		return 1<<63 - 1
	}
	return a * b
}

// randomParams is runtime.RandomParams, refused before allocating when
// the params exceed the memory limit.
func randomParams(g *graph.Graph, o *options) (map[string]*tensor.Dense, error) {
	if err := checkParamBytes(g, o); err != nil {
		return nil, err
	}
	return runtime.RandomParams(g, o.seed), nil
}

// checkParamBytes refuses params larger than the memory limit, or larger
// than a Go slice can be.
func checkParamBytes(g *graph.Graph, o *options) error {
	limit := o.memLimit()
	for _, p := range g.Params() {
		b := typeBytes(p.Type)
		if limit <= 0 && b == 1<<63-1 {
			return fmt.Errorf("param %%%s: %s is too large to allocate", p.Name, p.Type)
		}
		if limit > 0 && b > limit {
			return &tensorio.LimitError{What: fmt.Sprintf("param %%%s: %s", p.Name, p.Type), Need: b, Limit: limit}
		}
	}
	if b := paramBytes(g); limit > 0 && b > limit {
		return &tensorio.LimitError{What: fmt.Sprintf("the %d params", len(g.Params())), Need: b, Limit: limit}
	}
	return nil
}
