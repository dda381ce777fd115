//go:build mpi

package mpi

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	goruntime "runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// childEnv marks the processes TestUnderMPIRun starts under mpirun.
const childEnv = "MULTIGPU_MPI_TEST_CHILD"

// TestUnderMPIRun runs TestMPIChild in 3 ranks under mpirun (this test
// binary again), and fails when any rank fails.
func TestUnderMPIRun(t *testing.T) {
	t.Logf("%s", underMPIRun(t, "TestMPIChild", childEnv))
}

// underMPIRun runs the test named child in 3 ranks under mpirun (this test
// binary again, with env set), fails unless every rank passes, and returns
// their output. In a child, or without mpirun outside CI, it skips.
func underMPIRun(t *testing.T, child, env string) []byte {
	t.Helper()
	if os.Getenv(childEnv) != "" || os.Getenv(watchdogEnv) != "" {
		t.Skip("in a child")
	}
	mpirun, err := exec.LookPath("mpirun")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("mpirun not found (Debian's openmpi-bin)")
		}
		t.Skip("mpirun not found (Debian's openmpi-bin)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, mpirun, "--allow-run-as-root", "--oversubscribe", "-np", "3",
		os.Args[0], "-test.run=^"+child+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), env+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("mpirun: %v\n%s", err, out)
	}
	if n := strings.Count(string(out), "--- PASS: "+child+" ("); n != 3 {
		t.Fatalf("expected 3 ranks to pass, found %d:\n%s", n, out)
	}
	return out
}

// TestMPIChild is one rank of TestUnderMPIRun.
func TestMPIChild(t *testing.T) {
	if os.Getenv(childEnv) == "" {
		t.Skip("runs under mpirun, from TestUnderMPIRun")
	}
	c, err := Init()
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := c.Finalize(); err != nil {
			t.Error(err)
		}
		if err := c.Barrier(); !errors.Is(err, ErrFinalized) {
			t.Errorf("a call after Finalize: expected ErrFinalized, found %v", err)
		}
	}()
	job, ok := Launched()
	if !ok || c.Size() != 3 || c.Rank() != job.Rank || job.Size != 3 {
		t.Fatalf("rank %d of %d, expected the launcher's %+v (%v) of 3", c.Rank(), c.Size(), job, ok)
	}
	r := c.Rank()
	t.Logf("rank %d: MPI changed %d signal handlers, restored", r, c.Restored)

	t.Run("allreduce", func(t *testing.T) {
		f32 := []float32{float32(r), float32(-r), 1.5}
		got32 := make([]float32, 3)
		if err := Allreduce(c, f32, got32, Sum); err != nil {
			t.Fatal(err)
		}
		if want := []float32{3, -3, 4.5}; !equal(got32, want) {
			t.Errorf("f32 sum: %v, expected %v", got32, want)
		}
		f64 := []float64{float64(r) * 0.25, float64(10 - r)}
		got64 := make([]float64, 2)
		if err := Allreduce(c, f64, got64, Max); err != nil {
			t.Fatal(err)
		}
		if want := []float64{0.5, 10}; !equal(got64, want) {
			t.Errorf("f64 max: %v, expected %v", got64, want)
		}
		i64 := []int64{int64(r) + 1<<40, int64(-r)}
		gotI := make([]int64, 2)
		if err := Allreduce(c, i64, gotI, Min); err != nil {
			t.Fatal(err)
		}
		if want := []int64{1 << 40, -2}; !equal(gotI, want) {
			t.Errorf("i64 min: %v, expected %v", gotI, want)
		}
		if err := Allreduce(c, i64, gotI, Sum); err != nil {
			t.Fatal(err)
		}
		if want := []int64{3<<40 + 3, -3}; !equal(gotI, want) {
			t.Errorf("i64 sum: %v, expected %v", gotI, want)
		}
		if err := Allreduce(c, f32, got32[:1], Sum); err == nil {
			t.Error("mismatched lengths: expected an error")
		}
	})
	t.Run("allgather", func(t *testing.T) {
		got, err := Allgather(c, []float64{float64(r), float64(r * r)})
		if err != nil {
			t.Fatal(err)
		}
		if want := []float64{0, 0, 1, 1, 2, 4}; !equal(got, want) {
			t.Errorf("allgather: %v, expected %v", got, want)
		}
		// Rank r sends r bytes of value r: rank 0 sends none.
		parts, err := c.AllgatherBytes(bytes.Repeat([]byte{byte(r)}, r))
		if err != nil {
			t.Fatal(err)
		}
		for k, p := range parts {
			if !bytes.Equal(p, bytes.Repeat([]byte{byte(k)}, k)) {
				t.Errorf("allgatherv: rank %d's part is %v", k, p)
			}
		}
	})
	t.Run("bcast", func(t *testing.T) {
		buf := make([]byte, 5)
		if r == 1 {
			copy(buf, "hello")
		}
		if err := c.Bcast(buf, 1); err != nil {
			t.Fatal(err)
		}
		if string(buf) != "hello" {
			t.Errorf("bcast: %q, expected hello", buf)
		}
		if err := c.Bcast(buf, 3); err == nil {
			t.Error("root 3 of 3: expected an error")
		}
	})
	t.Run("errors return", func(t *testing.T) {
		// A negative count: MPI's error comes back (MPI_ERRORS_RETURN)
		// instead of aborting the job.
		err := c.bcast(make([]byte, 1), -1, 0)
		if err == nil || !strings.Contains(err.Error(), "MPI_Bcast") {
			t.Fatalf("a negative count: expected an MPI_Bcast error, found %v", err)
		}
		t.Logf("rank %d: %v", r, err)
	})
	if err := c.Barrier(); err != nil {
		t.Fatal(err)
	}
	t.Run("go runtime", func(t *testing.T) { goRuntimeWorks(t) })
	if err := c.Barrier(); err != nil {
		t.Fatal(err)
	}
}

// goRuntimeWorks checks what OpenMPI's signal handlers could break:
// goroutines and their preemption (SIGURG), the garbage collector, a
// panic recovered, and a nil dereference (SIGSEGV) turned into a Go
// panic.
func goRuntimeWorks(t *testing.T) {
	var wg sync.WaitGroup
	var sum atomic.Int64
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := make([]byte, 1<<16)
			b[0] = byte(i)
			sum.Add(int64(len(b)))
		}()
	}
	wg.Wait()
	goruntime.GC()
	if sum.Load() != 200<<16 {
		t.Errorf("goroutines: %d bytes, expected %d", sum.Load(), 200<<16)
	}

	// Preemption: a goroutine spinning without calls must not keep
	// another from running on one P (asynchronous preemption by SIGURG).
	prev := goruntime.GOMAXPROCS(1)
	var stop atomic.Bool
	spun := make(chan struct{})
	go func() {
		n := 0
		for !stop.Load() {
			n++
		}
		close(spun)
	}()
	time.Sleep(20 * time.Millisecond) // runs only if the spinner is preempted
	stop.Store(true)
	<-spun
	goruntime.GOMAXPROCS(prev)

	if got := recovered(func() { panic("boom") }); got != "boom" {
		t.Errorf("panic: recovered %q, expected boom", got)
	}
	var p *[4]int
	got := recovered(func() { p[1] = 1 })
	if !strings.Contains(got, "nil pointer dereference") {
		t.Errorf("nil dereference: recovered %q, expected a runtime error naming a nil pointer dereference", got)
	}
}

// recovered runs f and returns the text of the panic it recovers.
func recovered(f func()) (s string) {
	defer func() {
		if r := recover(); r != nil {
			if e, ok := r.(error); ok {
				s = e.Error()
			} else {
				s, _ = r.(string)
			}
		}
	}()
	f()
	return ""
}

func equal[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// watchdogEnv marks the processes TestWatchdogUnderMPIRun starts.
const watchdogEnv = "MULTIGPU_MPI_WATCHDOG_CHILD"

// TestWatchdogUnderMPIRun runs TestWatchdogChild in 3 ranks: a
// collective that one rank joins late returns a StallError on the
// others once their timeout has passed, not when the late rank comes.
func TestWatchdogUnderMPIRun(t *testing.T) {
	underMPIRun(t, "TestWatchdogChild", watchdogEnv)
}

// TestWatchdogChild is one rank of TestWatchdogUnderMPIRun: rank 2 joins
// a barrier 2.5 s late; ranks 0 and 1, with a timeout of 0.5 s, get a
// StallError naming the call and the rank within a second, and again at
// once from the next call.
func TestWatchdogChild(t *testing.T) {
	if os.Getenv(watchdogEnv) == "" {
		t.Skip("runs under mpirun, from TestWatchdogUnderMPIRun")
	}
	c, err := Init()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Barrier(); err != nil {
		t.Fatal(err)
	}
	const late = 2500 * time.Millisecond
	c.SetTimeout(500 * time.Millisecond)
	r := c.Rank()
	start := time.Now()
	if r == 2 {
		time.Sleep(late)
		if err := c.Barrier(); err != nil {
			t.Fatalf("the late rank's barrier: %v", err)
		}
	} else {
		err := c.Barrier()
		var se *StallError
		if !errors.As(err, &se) || se.Call != "MPI_Barrier" || se.Rank != r || se.Size != 3 {
			t.Fatalf("rank %d: expected a StallError for MPI_Barrier, found %v", r, err)
		}
		if took := time.Since(start); took > time.Second {
			t.Errorf("rank %d: the stall came after %s, expected about 0.5s", r, took)
		}
		t.Log(err)
		if err2 := c.Barrier(); err2 != err {
			t.Errorf("the call after a stall: expected the same error, found %v", err2)
		}
		// The late rank has come by now and the barrier has completed on
		// MPI's thread: clear the stall (tests only) and end normally.
		time.Sleep(late)
		c.stalled.Store(nil)
	}
	c.SetTimeout(0)
	if err := c.Barrier(); err != nil {
		t.Fatal(err)
	}
	if err := c.Finalize(); err != nil {
		t.Fatal(err)
	}
}
