package main

import (
	"multigpu/graph"
)

// transform applies the rewrites the options ask for, in order. There are
// none yet: the pass pipeline (passes/) plugs in here, driven by options
// such as --gpus, and verifies after each pass when o.verifyEach is set.
func transform(g *graph.Graph, o *options) (*graph.Graph, error) {
	if o.verifyEach {
		if err := graph.Verify(g); err != nil {
			return nil, err
		}
	}
	return g, nil
}
