//go:build mpi

package main

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"multigpu/runtime/host"
	"multigpu/tensorio"
	"multigpu/train"
)

// mpiRun runs the command under mpirun -np np (nil prefix: in one
// process) and returns its exit status and combined output.
func mpiRun(t *testing.T, mpirun string, np int, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	full := args
	if np > 0 {
		full = append([]string{mpirun, "--allow-run-as-root", "--oversubscribe", "-np", strconv.Itoa(np)}, args...)
	}
	out, err := exec.CommandContext(ctx, full[0], full[1:]...).CombinedOutput()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("%v: %v", full, err)
		}
		code = ee.ExitCode()
	}
	return code, string(out)
}

// weightsDiff returns the largest relative difference between the
// weights in two files, and whether they are the same bits.
func weightsDiff(t *testing.T, a, b string) (float64, bool) {
	t.Helper()
	wa, err := tensorio.ReadArchive(a)
	if err != nil {
		t.Fatal(err)
	}
	wb, err := tensorio.ReadArchive(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(wa) != len(wb) {
		t.Fatalf("%s has %d weights, %s %d", a, len(wa), b, len(wb))
	}
	worst, same := 0.0, true
	for name, x := range wa {
		y, ok := wb[name]
		if !ok {
			t.Fatalf("%s lacks %s", b, name)
		}
		xs, ys := host.Float64s(x), host.Float64s(y)
		for i := range xs {
			if math.Float64bits(xs[i]) != math.Float64bits(ys[i]) {
				same = false
			}
			worst = max(worst, math.Abs(xs[i]-ys[i])/max(math.Abs(xs[i]), 1e-300))
		}
	}
	return worst, same
}

// TestTrainAcrossRanks: mlp_classifier trained for 20 steps (4 epochs of
// 36 samples at batch 8: a last batch of 4, so rank 2's replicas get no
// sample) on mpirun -np 3 x --gpus 2 writes the weights of one process's
// --gpus 6 bit for bit, and the single device's within 1e-9 relative;
// training 2 epochs, then resuming for 2 on the ranks, gives the same
// bits; so does --gpus 1 on 3 ranks against --gpus 3 (the single device
// and --gpus 1 not under -short).
func TestTrainAcrossRanks(t *testing.T) {
	dir := t.TempDir()
	bin, mpirun := mpiBinary(t, dir)
	data := writeData(t, dir, "d.npz", 36, -1)
	common := []string{bin, mlpClassifier, "--train", "--data", data, "--batch", "8", "--optimizer", "adam", "--lr", "0.01"}
	train := func(np int, w string, args ...string) string {
		t.Helper()
		code, out := mpiRun(t, mpirun, np, append(append(append([]string{}, common...), "--save-weights", w), args...)...)
		if code != 0 {
			t.Fatalf("-np %d %v: exit %d\n%s", np, args, code, out)
		}
		return out
	}
	one := filepath.Join(dir, "one.npz")
	six := filepath.Join(dir, "six.npz")
	ranks := filepath.Join(dir, "ranks.npz")
	train(0, six, "--epochs", "4", "--gpus", "6")
	out := train(3, ranks, "--epochs", "4", "--gpus", "2")
	if !strings.Contains(out, "training mlp_classifier on 3 ranks x 2 GPUs") || strings.Count(out, "epoch 4/4") != 1 {
		t.Errorf("expected rank 0 alone to report, on 3 ranks x 2 GPUs:\n%s", out)
	}
	if _, same := weightsDiff(t, six, ranks); !same {
		t.Error("3 ranks x 2 GPUs: the weights differ from one process's --gpus 6")
	}
	if !testing.Short() {
		train(0, one, "--epochs", "4")
		rel, _ := weightsDiff(t, one, ranks)
		t.Logf("3 ranks x 2 GPUs against one device, f64, 20 steps: largest relative difference %.3g", rel)
		if rel > 1e-9 {
			t.Errorf("3 ranks x 2 GPUs against one device: largest relative difference %g, expected 1e-9 at most", rel)
		}
	}
	// Resume: 2 epochs, then 2 more from rank 0's checkpoint.
	resumed := filepath.Join(dir, "resumed.npz")
	train(3, resumed, "--epochs", "2", "--gpus", "2")
	out = train(3, resumed, "--epochs", "2", "--gpus", "2", "--weights", resumed)
	if !strings.Contains(out, "resuming after epoch 2 (10 steps)") {
		t.Errorf("expected a resume after epoch 2:\n%s", out)
	}
	if _, same := weightsDiff(t, six, resumed); !same {
		t.Error("resumed on 3 ranks: the weights differ from 4 epochs straight")
	}
	if testing.Short() {
		return
	}
	// One GPU per rank.
	three := filepath.Join(dir, "three.npz")
	perRank := filepath.Join(dir, "perrank.npz")
	train(0, three, "--epochs", "1", "--gpus", "3")
	train(3, perRank, "--epochs", "1", "--gpus", "1")
	if _, same := weightsDiff(t, three, perRank); !same {
		t.Error("--gpus 1 on 3 ranks: the weights differ from one process's --gpus 3")
	}
}

// rankPID returns the process id of rank r of the job mpirun (pid) runs
// on this machine, waiting for it to start.
func rankPID(t *testing.T, mpirun, r int) int {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
			if err != nil {
				continue
			}
			// pid (comm) state ppid ...
			f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
			if len(f) < 2 || f[1] != strconv.Itoa(mpirun) {
				continue
			}
			env, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
			if bytes.Contains(env, []byte(fmt.Sprintf("\x00OMPI_COMM_WORLD_RANK=%d\x00", r))) {
				return pid
			}
		}
	}
	t.Fatalf("rank %d of mpirun %d not found", r, mpirun)
	return 0
}

// TestTrainRankFaults, on mpirun -np 3 x --gpus 2: a NaN in a sample of
// rank 1's share stops every rank before any weight changes, each naming
// its rank and the cause, and the checkpoint stays the last complete one;
// a rank killed, or stopped (the others' watchdog, --rank-timeout 2s),
// ends every rank within 10 s with a non-zero status, and the checkpoint
// on disk is complete.
func TestTrainRankFaults(t *testing.T) {
	dir := t.TempDir()
	bin, mpirun := mpiBinary(t, dir)
	w := filepath.Join(dir, "w.npz")
	clean := writeData(t, dir, "clean.npz", 36, -1)
	args := func(data string, more ...string) []string {
		return append([]string{bin, mlpClassifier, "--train", "--gpus", "2", "--data", data, "--batch", "8", "--save-weights", w}, more...)
	}
	if code, out := mpiRun(t, mpirun, 3, args(clean, "--epochs", "1")...); code != 0 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	before, err := os.ReadFile(w)
	if err != nil {
		t.Fatal(err)
	}
	beforeState := mustRead(t, train.StatePath(w))

	t.Run("nan", func(t *testing.T) {
		// The first step of epoch 2 (the next after the checkpoint):
		// its third replica's (rank 1's) first sample.
		idx := train.Batches(train.Order(1, 1, 36), 8, false)[0]
		nan := writeData(t, dir, "nan.npz", 36, idx[3])
		start := time.Now()
		code, out := mpiRun(t, mpirun, 3, args(nan, "--epochs", "1", "--weights", w)...)
		took := time.Since(start)
		if code == 0 || took > 10*time.Second {
			t.Errorf("exit %d after %s, expected non-zero within 10 s:\n%s", code, took, out)
		}
		for r := range 3 {
			if !strings.Contains(out, fmt.Sprintf("rank %d of 3: rewrite: epoch 2, step 1 of 5 (samples 0 to 7 of the epoch): train: the loss %%loss is NaN", r)) {
				t.Errorf("rank %d does not say why it stops:\n%s", r, out)
			}
		}
		if !bytes.Equal(before, mustRead(t, w)) || !bytes.Equal(beforeState, mustRead(t, train.StatePath(w))) {
			t.Error("the checkpoint changed")
		}
	})
	for _, fault := range []struct {
		name string
		sig  syscall.Signal
		want string
	}{
		{"killed", syscall.SIGKILL, ""},
		{"stopped", syscall.SIGSTOP, "has not completed after 2s: another rank has stopped, hangs or is far behind"},
	} {
		t.Run(fault.name, func(t *testing.T) {
			long := writeData(t, dir, "long.npz", 160, -1)
			full := append([]string{mpirun, "--allow-run-as-root", "--oversubscribe", "-np", "3"}, args(long, "--epochs", "10000", "--weights", w, "--rank-timeout", "2s")...)
			cmd := exec.Command(full[0], full[1:]...)
			var out syncBuffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			pid := rankPID(t, cmd.Process.Pid, 1)
			defer syscall.Kill(pid, syscall.SIGKILL)
			gen0, err := train.LoadCheckpoint(w, 0)
			if err != nil {
				t.Fatal(err)
			}
			for deadline := time.Now().Add(time.Minute); len(epochLine.FindAllString(out.String(), -1)) < 2; time.Sleep(20 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("not two epochs after a minute:\n%s", out.String())
				}
			}
			if err := syscall.Kill(pid, fault.sig); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				if err == nil {
					t.Errorf("exit 0 after rank 1 was %s:\n%s", fault.name, out.String())
				}
				t.Logf("rank 1 %s: mpirun ended after %s: %v", fault.name, time.Since(start).Round(time.Millisecond), err)
			case <-time.After(10 * time.Second):
				t.Fatalf("rank 1 %s: the job still runs after 10 s:\n%s", fault.name, out.String())
			}
			if fault.want != "" && !strings.Contains(out.String(), fault.want) {
				t.Errorf("expected %q:\n%s", fault.want, out.String())
			}
			ck, err := train.LoadCheckpoint(w, 0)
			if err != nil || ck.Note != "" || ck.Generation < gen0.Generation+2 {
				t.Errorf("the checkpoint after rank 1 was %s: %v (generation %d, note %q)", fault.name, err, ck.Generation, ck.Note)
			}
		})
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
