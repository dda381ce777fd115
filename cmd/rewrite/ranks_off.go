//go:build !mpi

package main

// startRanks returns nil: without MPI (built without -tags mpi) a process
// is never one of several ranks (refuseUnderMPI refuses before).
func startRanks() (*rankJob, error) { return nil, nil }
