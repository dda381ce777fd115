package main

import (
	"os"
	"path/filepath"
	"strings"

	"multigpu/graph"
	"multigpu/tensorio"
	"multigpu/train"
)

// role is a file the command reads or writes, and the flag it comes from.
type role struct {
	path string // as given or derived
	what string // "--data", "the weights -o writes beside it", ...
}

// sameFile reports whether two paths name one file once links are
// followed. Hard links are not: every output is replaced by a rename,
// which replaces the name and leaves a file linked elsewhere as it was.
func sameFile(a, b string) bool { return canonicalPath(a) == canonicalPath(b) }

// canonicalPath is path absolute, with its links followed.
func canonicalPath(p string) string {
	p = tensorio.ResolveLinks(p)
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// checkPaths refuses, before any work is done, a command line whose
// outputs would overwrite one of its inputs or one another (after links
// are followed, the derived files included: the weights -o writes beside
// an ONNX model's graph, a checkpoint's state and previous pair, --run's
// DIR/OUTPUT.npy), or that names a directory where a file goes. g is the
// model read, whose outputs --run writes. The one overlap allowed is
// --train resuming from the checkpoint it goes on writing (--weights equal
// to --save-weights): it is read whole before the first write.
func checkPaths(o *options, g *graph.Graph) error {
	var ins, outs []role
	if o.model != "-" {
		ins = append(ins, role{o.model, "MODEL"})
	}
	for _, in := range o.inputs {
		ins = append(ins, role{in.path, "--input " + in.name})
	}
	if o.data != "" {
		ins = append(ins, role{o.data, "--data"})
	}
	inPlace := o.train && o.weights != "" && o.saveWeights != "" && sameFile(o.weights, o.saveWeights)
	if o.weights != "" && !inPlace {
		if o.train {
			for _, p := range train.CheckpointPaths(o.weights) {
				ins = append(ins, role{p, "--weights (the checkpoint read)"})
			}
		} else {
			ins = append(ins, role{o.weights, "--weights"})
		}
	}
	if o.output != "" {
		outs = append(outs, role{o.output, "-o"})
		if strings.EqualFold(filepath.Ext(o.model), ".onnx") && o.format == formatText {
			outs = append(outs, role{strings.TrimSuffix(o.output, filepath.Ext(o.output)) + ".npz", "the ONNX model's weights (written beside -o)"})
		}
	}
	if o.saveWeights != "" {
		for i, p := range train.CheckpointPaths(o.saveWeights) {
			outs = append(outs, role{p, [4]string{"--save-weights", "--save-weights' training state", "--save-weights' previous checkpoint", "--save-weights' previous training state"}[i]})
		}
	}
	if o.run {
		if fi, err := os.Stat(o.outputDir); err == nil && !fi.IsDir() {
			return usagef("--output-dir %s: expected a directory, found a file", o.outputDir)
		}
		for _, in := range ins {
			if sameFile(in.path, o.outputDir) {
				return usagef("--output-dir %s is %s %s: an output directory must not be an input", o.outputDir, in.what, in.path)
			}
		}
		for _, n := range g.Outputs {
			outs = append(outs, role{filepath.Join(o.outputDir, n.Name+".npy"), "--run's output %" + n.Name})
		}
	}
	for i, out := range outs {
		if fi, err := os.Stat(out.path); err == nil && fi.IsDir() {
			return usagef("%s %s: expected a file, found a directory", out.what, out.path)
		}
		for _, in := range ins {
			if sameFile(out.path, in.path) {
				return usagef("%s %s would overwrite %s %s: an output must not be an input", out.what, out.path, in.what, in.path)
			}
		}
		for _, other := range outs[:i] {
			if sameFile(out.path, other.path) {
				return usagef("%s %s and %s %s are one file: two outputs must not be one file", other.what, other.path, out.what, out.path)
			}
		}
	}
	return nil
}
