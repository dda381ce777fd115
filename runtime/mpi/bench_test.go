//go:build mpi

package mpi

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"gorgonia.org/tensor"

	"multigpu/graph"
	"multigpu/runtime"
	"multigpu/runtime/host"
)

// benchEnv marks the processes TestAllreduceBench starts.
const benchEnv = "MULTIGPU_MPI_BENCH_CHILD"

// TestAllreduceBench compares, on mpirun -np $MULTIGPU_MPI_BENCH ranks
// (2 or 3; not run without it), the cross-rank allreduce of the runtime
// (runtime/ranks.go: every rank's partials gathered with AllgatherBytes,
// then summed left to right in rank order, so that the bits are one
// process's), run by the executor on a graph of one replica per rank,
// with a bare MPI_Allreduce of the same 100 MB f32 buffer: 10
// interleaved runs each, medians reported by rank 0.
func TestAllreduceBench(t *testing.T) {
	np := os.Getenv("MULTIGPU_MPI_BENCH")
	if np == "" || os.Getenv(benchEnv) != "" {
		t.Skip("set MULTIGPU_MPI_BENCH=2 or 3 to run the benchmark")
	}
	mpirun, err := exec.LookPath("mpirun")
	if err != nil {
		t.Skip("mpirun not found")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, mpirun, "--allow-run-as-root", "--oversubscribe", "-np", np,
		os.Args[0], "-test.run=^TestAllreduceBenchChild$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), benchEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("mpirun: %v\n%s", err, out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "bench:") {
			t.Log(strings.TrimSpace(l))
		}
	}
}

// TestAllreduceBenchChild is one rank of TestAllreduceBench.
func TestAllreduceBenchChild(t *testing.T) {
	if os.Getenv(benchEnv) == "" {
		t.Skip("runs under mpirun, from TestAllreduceBench")
	}
	c, err := Init()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Finalize()
	const n = 25_000_000 // 100 MB of f32
	send := make([]float32, n)
	for i := range send {
		send[i] = float32(c.Rank()+1) * float32(i%1000) * 1e-3
	}
	recv := make([]float32, n)
	// The runtime's allreduce across ranks: one replica per rank, each
	// holding the 100 MB param; the output is a scalar of the sum.
	p := c.Size()
	var src strings.Builder
	fmt.Fprintf(&src, "graph ar {\n  param %%g: f32[%d] @cpu\n", n)
	var ops []string
	for r := range p {
		fmt.Fprintf(&src, "  %%g.r%d = copy %%g : f32[%d] @rank%d/gpu:0\n", r, n, r)
		ops = append(ops, fmt.Sprintf("%%g.r%d", r))
	}
	for r := range p {
		fmt.Fprintf(&src, "  %%s.r%d = allreduce %s : f32[%d] @rank%d/gpu:0\n", r, strings.Join(ops, ", "), n, r)
	}
	src.WriteString("  %m.r0 = max %s.r0 {axes=[0]} : f32[] @rank0/gpu:0\n  %m = copy %m.r0 : f32[] @cpu\n  output %m\n}\n")
	g, err := graph.Parse("ar.graph", []byte(src.String()))
	if err != nil {
		t.Fatal(err)
	}
	e, err := runtime.New(g, runtime.Options{Comm: c, Threads: 1, MemoryLimit: -1})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.SetParams(map[string]*tensor.Dense{"g": host.New([]int{n}, send)}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := e.Run(ctx, nil); err != nil { // the params' resident copies
		t.Fatal(err)
	}
	var bare, ours []time.Duration
	for range 10 {
		c.Barrier()
		start := time.Now()
		if err := Allreduce(c, send, recv, Sum); err != nil {
			t.Fatal(err)
		}
		bare = append(bare, time.Since(start))
		c.Barrier()
		start = time.Now()
		if _, err := e.Run(ctx, nil); err != nil {
			t.Fatal(err)
		}
		ours = append(ours, time.Since(start))
	}
	med := func(d []time.Duration) time.Duration {
		s := slices.Clone(d)
		slices.Sort(s)
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	if c.Rank() == 0 {
		fmt.Printf("bench: %d ranks, 100 MB f32: bare MPI_Allreduce median %s; the runtime's (runtime/ranks.go: gathered, summed in order on each rank; the run with its max of the sum) median %s, %.2fx; each rank receives %d MB (MPI's ring: about %d MB)\n",
			p, med(bare).Round(time.Millisecond), med(ours).Round(time.Millisecond), float64(med(ours))/float64(med(bare)), 100*(p-1), 2*100*(p-1)/p)
	}
}
