//go:build mpi

package main

import (
	"fmt"

	"multigpu/runtime/mpi"
)

// startRanks initialises MPI when mpirun started the process, and returns
// its part of the job; nil when it is not one of several ranks.
func startRanks() (*rankJob, error) {
	env, ok := mpi.Launched()
	if !ok {
		return nil, nil
	}
	c, err := mpi.Init()
	if err != nil {
		return nil, fmt.Errorf("rank %d: %w", env.Rank, err)
	}
	j := &rankJob{comm: c, rank: c.Rank(), size: c.Size(), localRank: env.LocalRank}
	j.end = func(code int) {
		if code != 0 {
			c.Abort(code)
		}
		c.Barrier()
		c.Finalize()
	}
	if c.Size() == 1 {
		j.end(0)
		return nil, nil
	}
	return j, nil
}
