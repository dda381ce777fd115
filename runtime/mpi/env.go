// Package mpi is the project's binding of MPI (OpenMPI; Debian's
// libopenmpi-dev), behind the build tag mpi: the few calls data
// parallelism across processes needs, and nothing else. Init starts MPI
// with MPI_Init_thread at MPI_THREAD_FUNNELED and sets MPI_ERRORS_RETURN
// on MPI_COMM_WORLD, so a failed call returns an error instead of
// aborting; every MPI call runs on one goroutine locked to its OS thread
// (Go moves goroutines between threads; FUNNELED allows MPI calls from
// one thread only), which serves the calls of every other goroutine over
// a channel.
//
// OpenMPI installs handlers for SIGSEGV, SIGBUS, SIGFPE and SIGABRT (to
// print a backtrace); Go's runtime needs its own there (a nil dereference
// is a Go panic, SIGURG preempts goroutines). OpenMPI 4.1 leaves alone a
// signal that already has a handler, as Go's do; Init still restores,
// after MPI_Init_thread, every handler it finds changed (Comm.Restored
// counts them), whatever the MPI library.
//
// Without the tag the package builds with no C at all: Init returns an
// error saying how to build with MPI, and Launched reads, from the
// environment, whether the process was started by mpirun.
package mpi

import (
	"os"
	"strconv"
)

// Job describes the MPI job the process was started in, as the launcher's
// environment tells it (OpenMPI's OMPI_COMM_WORLD_* and PMIx's PMIX_RANK),
// without calling MPI.
type Job struct {
	// Size is the number of ranks (0 when the launcher did not say).
	Size int
	// Rank is this process's rank, LocalRank its rank among the ranks on
	// its node, and LocalSize the number of those.
	Rank, LocalRank, LocalSize int
}

// Launched returns the job the environment describes, and whether the
// process was started by an MPI launcher at all (OMPI_COMM_WORLD_SIZE or
// PMIX_RANK set).
func Launched() (Job, bool) {
	_, omp := os.LookupEnv("OMPI_COMM_WORLD_SIZE")
	_, pmix := os.LookupEnv("PMIX_RANK")
	if !omp && !pmix {
		return Job{}, false
	}
	j := Job{
		Size:      envInt("OMPI_COMM_WORLD_SIZE", 0),
		Rank:      envInt("OMPI_COMM_WORLD_RANK", envInt("PMIX_RANK", 0)),
		LocalRank: envInt("OMPI_COMM_WORLD_LOCAL_RANK", 0),
		LocalSize: envInt("OMPI_COMM_WORLD_LOCAL_SIZE", 1),
	}
	return j, true
}

// Several reports whether the process is one of several ranks of an MPI
// job: a binary built without the mpi tag must not run there (it would
// run the whole job once per rank).
func (j Job) Several() bool { return j.Size > 1 || j.Size == 0 && j.Rank > 0 }

func envInt(name string, def int) int {
	v, err := strconv.Atoi(os.Getenv(name))
	if err != nil || v < 0 {
		return def
	}
	return v
}
