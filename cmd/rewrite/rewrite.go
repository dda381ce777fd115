package main

import (
	"errors"
	"fmt"
	"io"

	"multigpu/graph"
	"multigpu/passes"
)

// pipeline returns the passes the options ask for, in order. There are none
// yet: --gpus adds the replicate pass here (replicate.New with the options
// that --merge, --split, --batch, --batchnorm and --available fill).
func (o *options) pipeline() passes.Pipeline {
	var ps []*passes.Pass
	return passes.Pipeline{Passes: ps, VerifyEach: o.verifyEach}
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
