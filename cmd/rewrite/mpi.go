package main

import (
	"fmt"
	"io"

	"multigpu/graph"
	"multigpu/runtime"
	"multigpu/runtime/mpi"
)

// refuseUnderMPI reports, on stderr, a binary built without MPI that
// mpirun started as one of several ranks: each rank would run the whole
// job by itself. The caller exits 2.
func refuseUnderMPI(stderr io.Writer) bool {
	job, ok := mpi.Launched()
	if mpi.Enabled || !ok || !job.Several() {
		return false
	}
	size := "several"
	if job.Size > 0 {
		size = fmt.Sprint(job.Size)
	}
	fmt.Fprintf(stderr, "rewrite: started by mpirun as rank %d of %s, but built without MPI, so every rank would run the whole job by itself; "+
		"build with `go build -tags mpi ./cmd/rewrite` (needs Debian's libopenmpi-dev), or run without mpirun\n", job.Rank, size)
	return true
}

// rankJob is this process's part in a job across ranks (mpirun with a
// binary built with -tags mpi; ranks_mpi.go): the replicas are placed on
// every rank's GPUs (--gpus on each), each rank runs its own, and rank 0
// alone writes what the command writes (the graph, -o, --run's outputs,
// --check's report).
type rankJob struct {
	comm       runtime.Comm
	rank, size int
	localRank  int
	// end finishes MPI: with exit status 0 after every rank is done
	// (MPI_Finalize), else by ending every rank (MPI_Abort), so that a
	// rank that failed never leaves the others waiting in a collective.
	end func(code int)
}

// writer returns w on rank 0 and a writer that drops everything on the
// others.
func (j *rankJob) writer(w io.Writer) io.Writer {
	if j == nil || j.rank == 0 {
		return w
	}
	return io.Discard
}

// writes reports whether this process writes the command's files: rank 0,
// or a process that is not one of several.
func (j *rankJob) writes() bool { return j == nil || j.rank == 0 }

// commFor returns the Comm of g's executor: the job's, when g is placed
// on the devices of ranks.
func (j *rankJob) commFor(g *graph.Graph) runtime.Comm {
	if j == nil {
		return nil
	}
	for _, d := range g.Devices() {
		if _, ok := d.Rank(); ok {
			return j.comm
		}
	}
	return nil
}

// joinRanks makes o one rank's part of job: the replicas on every rank
// (--gpus on each). Training across ranks is not there yet.
func (o *options) joinRanks(job *rankJob) error {
	o.job = job
	if job == nil {
		return nil
	}
	if o.train {
		return fmt.Errorf("--train under mpirun (%d ranks): training across ranks is not supported yet; train in one process", job.size)
	}
	if o.ranks != 0 && o.ranks != job.size {
		return fmt.Errorf("--ranks %d under mpirun with %d ranks: expected the job's size, or no --ranks", o.ranks, job.size)
	}
	if o.replicate != nil {
		o.replicate.Ranks = job.size
	}
	return nil
}

// replicas returns the number of replicas --gpus asks for, on every rank.
func (o *options) replicas() int {
	if o.replicate == nil {
		return 1
	}
	return len(o.replicate.GPUs) * max(o.replicate.Ranks, 1)
}
