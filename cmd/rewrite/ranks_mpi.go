//go:build mpi

package main

import (
	"fmt"
	"os"
	"time"

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
	j := &rankJob{comm: c, rank: c.Rank(), size: c.Size(), localRank: env.LocalRank, setTimeout: c.SetTimeout}
	j.end = func(code int) {
		if code != 0 {
			// MPI_Abort ends every rank; should it not return nor end
			// this process (MPI's thread stuck in a collective), the
			// process exits by itself, and mpirun ends the others.
			go func() {
				time.Sleep(abortGrace)
				os.Exit(code)
			}()
			// Ranks that failed at the same step (a NaN loss, which every
			// rank sees) each say why before the first abort ends them.
			time.Sleep(abortDelay)
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

// abortGrace is how long a failed rank waits for MPI_Abort to end it
// before it exits by itself; abortDelay, how long it waits before
// calling it, while the others that failed too print their errors.
const (
	abortGrace = 5 * time.Second
	abortDelay = 250 * time.Millisecond
)
