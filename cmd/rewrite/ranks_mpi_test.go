//go:build mpi

package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"multigpu/graph"
	"multigpu/runtime"
	"multigpu/tensorio"
)

// mpiBinary builds the command with -tags mpi into dir, or skips when
// mpirun is missing (fails with CI set).
func mpiBinary(t *testing.T, dir string) (bin, mpirun string) {
	t.Helper()
	mpirun, err := exec.LookPath("mpirun")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("mpirun not found (Debian's openmpi-bin)")
		}
		t.Skip("mpirun not found (Debian's openmpi-bin)")
	}
	bin = filepath.Join(dir, "rewrite")
	if out, err := exec.Command("go", "build", "-tags", "mpi", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build -tags mpi: %v\n%s", err, out)
	}
	return bin, mpirun
}

// TestRunAcrossRanks: --run under mpirun -np 3 with --gpus 2 (6 replicas;
// at a batch of 4 rank 2 runs none) writes the outputs of one process
// running the 6 replicas, bit for bit; so does --gpus 1 on 3 ranks whose
// ranks 1 and 2 are given files that do not exist (rank 0 reads and
// broadcasts); --check on 2 ranks agrees.
func TestRunAcrossRanks(t *testing.T) {
	dir := t.TempDir()
	bin, mpirun := mpiBinary(t, dir)
	model := "../../testdata/collectives.graph"
	src, err := os.ReadFile(model)
	if err != nil {
		t.Fatal(err)
	}
	g, err := graph.Parse(model, src)
	if err != nil {
		t.Fatal(err)
	}
	x := filepath.Join(dir, "x.npy")
	w := filepath.Join(dir, "w.npz")
	for _, batch := range []int64{4, 13} {
		in, err := runtime.RandomInputs(g, batch, uint64(batch))
		if err != nil {
			t.Fatal(err)
		}
		if err := tensorio.WriteFileAtomic(x, in["x"]); err != nil {
			t.Fatal(err)
		}
		if err := tensorio.WriteArchive(w, runtime.RandomParams(g, 5)); err != nil {
			t.Fatal(err)
		}
		cmd := func(prefix []string, args ...string) []byte {
			t.Helper()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			full := append(append(prefix, bin, model, "--input", "x="+x), args...)
			c := exec.CommandContext(ctx, full[0], full[1:]...)
			out, err := c.CombinedOutput()
			if err != nil {
				t.Fatalf("%v: %v\n%s", full, err, out)
			}
			return out
		}
		// One process running the 6 replicas: the same sums in the same
		// order (one device's sums over the batch differ in their last
		// bits, within --check's tolerance).
		one := filepath.Join(dir, "one")
		cmd(nil, "--gpus", "6", "--run", "--weights", w, "--output-dir", one)
		ranks := filepath.Join(dir, "ranks")
		mpi := []string{mpirun, "--allow-run-as-root", "--oversubscribe", "-np", "3"}
		cmd(mpi, "--gpus", "2", "--run", "--weights", w, "--output-dir", ranks)
		for _, o := range []string{"y.npy", "loss.npy"} {
			a, err := os.ReadFile(filepath.Join(one, o))
			if err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(filepath.Join(ranks, o))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(a, b) {
				t.Errorf("batch %d: %s across 3 ranks differs from one process's", batch, o)
			}
		}
		// Only rank 0 reads files: with --gpus 1 on 3 ranks (3
		// replicas), ranks 1 and 2 given a model, input and weights that
		// do not exist, the outputs are one process's --gpus 3 bits.
		one3 := filepath.Join(dir, "one3")
		cmd(nil, "--gpus", "3", "--run", "--weights", w, "--output-dir", one3)
		alone := filepath.Join(dir, "alone")
		missing := filepath.Join(dir, "missing")
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		mpmd := exec.CommandContext(ctx, mpirun, "--allow-run-as-root", "--oversubscribe",
			"-np", "1", bin, model, "--input", "x="+x, "--gpus", "1", "--run", "--weights", w, "--output-dir", alone, ":",
			"-np", "2", bin, missing+".graph", "--input", "x="+missing+".npy", "--gpus", "1", "--run", "--weights", missing+".npz", "--output-dir", alone)
		out, err := mpmd.CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("ranks 1 and 2 without the files: %v\n%s", err, out)
		}
		for _, o := range []string{"y.npy", "loss.npy"} {
			a, _ := os.ReadFile(filepath.Join(one3, o))
			b, err := os.ReadFile(filepath.Join(alone, o))
			if err != nil || !bytes.Equal(a, b) {
				t.Errorf("batch %d: %s with the files on rank 0 alone differs from one process's --gpus 3 (%v)", batch, o, err)
			}
		}
		if batch == 4 {
			out := cmd([]string{mpirun, "--allow-run-as-root", "--oversubscribe", "-np", "2"}, "--gpus", "2", "--check")
			if !bytes.Contains(out, []byte("ok: the rewritten graph computes what the original computes")) || bytes.Count(out, []byte("check collectives")) != 1 {
				t.Errorf("--check on 2 ranks: expected one report, from rank 0, that agrees:\n%s", out)
			}
		}
	}
}
