package main

import (
	"bytes"
	"strings"
	"testing"

	"multigpu/runtime/mpi"
)

// A binary built without MPI refuses to run as one of several ranks.
func TestRefuseUnderMPIRun(t *testing.T) {
	if mpi.Enabled {
		t.Skip("built with MPI")
	}
	for _, env := range [][2]string{{"OMPI_COMM_WORLD_SIZE", "3"}, {"PMIX_RANK", "1"}} {
		t.Run(env[0], func(t *testing.T) {
			t.Setenv(env[0], env[1])
			var stdout, stderr bytes.Buffer
			code := run([]string{"../../testdata/mlp.graph"}, nil, &stdout, &stderr)
			if code != exitUsage || stdout.Len() != 0 || !strings.Contains(stderr.String(), "go build -tags mpi ./cmd/rewrite") {
				t.Fatalf("exit %d, stdout %q, stderr %q; expected exit 2 and how to build with MPI", code, stdout.String(), stderr.String())
			}
		})
	}
	// One rank (mpirun -np 1) runs as a plain process.
	t.Setenv("OMPI_COMM_WORLD_SIZE", "1")
	t.Setenv("OMPI_COMM_WORLD_RANK", "0")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"../../testdata/mlp.graph"}, nil, &stdout, &stderr); code != exitOK {
		t.Fatalf("one rank: exit %d: %s", code, stderr.String())
	}
}
