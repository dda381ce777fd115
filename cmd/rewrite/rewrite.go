package main

import (
	"errors"
	"fmt"
	"io"

	"multigpu/graph"
	"multigpu/passes"
	"multigpu/passes/replicate"
)

// pipeline returns the passes the options ask for, in order: the replicate
// pass when --gpus is given.
func (o *options) pipeline() passes.Pipeline {
	var ps []*passes.Pass
	if o.replicate != nil {
		ps = append(ps, replicate.New(*o.replicate))
	}
	return passes.Pipeline{Passes: ps, VerifyEach: o.verifyEach}
}

// explainBatch is the batch size --explain assumes for a symbolic batch.
const explainBatch = 64

// explain writes the per-device cost of the rewrite of src to w. With a
// symbolic batch it rewrites again at explainBatch, and says so.
func explain(w io.Writer, src, out *graph.Graph, o *options) error {
	opts := *o.replicate
	if _, bound := out.Batch(); bound == 0 {
		opts.Batch = explainBatch
		var err error
		if out, _, err = replicate.Rewrite(src, opts); err != nil {
			return err
		}
		fmt.Fprintf(w, "the batch is symbolic: costs at batch %d (use --batch B for another size)\n", explainBatch)
	}
	e, err := replicate.Explain(src, out, opts)
	if err != nil {
		return err
	}
	return e.Print(w)
}

// transform runs the pipeline on g and prints the passes' warnings on
// stderr. It returns the rewritten graph, or an error and the exit status
// it calls for: a pass that refuses the model is bad input, a pass whose
// output fails verification is a bug.
func transform(g *graph.Graph, o *options, stderr io.Writer) (*graph.Graph, int, error) {
	out, diags, err := o.pipeline().Run(g)
	for _, d := range diags {
		fmt.Fprintf(stderr, "rewrite: warning: %s\n", d)
	}
	if err != nil {
		var pe *passes.PassError
		if errors.As(err, &pe) && pe.Invariant {
			return nil, exitFailed, err
		}
		return nil, exitUsage, err
	}
	return out, exitOK, nil
}
