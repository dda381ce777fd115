package mpi

import (
	"os"
	"testing"
)

func TestLaunched(t *testing.T) {
	for _, v := range []string{"OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE", "PMIX_RANK"} {
		t.Setenv(v, "") // restored after the test
		os.Unsetenv(v)
	}
	if j, ok := Launched(); ok {
		t.Fatalf("no launcher's variables: Launched() = %+v, true", j)
	}
	t.Setenv("OMPI_COMM_WORLD_SIZE", "4")
	t.Setenv("OMPI_COMM_WORLD_RANK", "3")
	t.Setenv("OMPI_COMM_WORLD_LOCAL_RANK", "1")
	t.Setenv("OMPI_COMM_WORLD_LOCAL_SIZE", "2")
	j, ok := Launched()
	if want := (Job{Size: 4, Rank: 3, LocalRank: 1, LocalSize: 2}); !ok || j != want || !j.Several() {
		t.Fatalf("Launched() = %+v, %v; expected %+v, true", j, ok, want)
	}
	t.Setenv("OMPI_COMM_WORLD_SIZE", "1")
	t.Setenv("OMPI_COMM_WORLD_RANK", "0")
	if j, _ := Launched(); j.Several() {
		t.Fatalf("one rank: %+v is not several", j)
	}
}
