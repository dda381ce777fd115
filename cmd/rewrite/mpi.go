package main

import (
	"fmt"
	"io"

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
