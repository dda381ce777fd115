package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"gorgonia.org/tensor"

	"multigpu/graph"
	"multigpu/runtime"
	"multigpu/runtime/backend"
	"multigpu/runtime/host"
	"multigpu/train"
)

// --explain saturates counts too large for int64 instead of wrapping
// around: no FLOPs or bytes come out negative or zero.
func TestExplainOverflow(t *testing.T) {
	m := writeModel(t, "huge.graph", `graph huge {
  input %x: f32[N,1000000000]
  param %w: f32[1000000000,4000000000]
  %y = matmul %x, %w
  output %y
}
`)
	code, stdout, stderr := runCmd(t, "", m, "--gpus", "2", "--explain", "--batch", "4")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if strings.Contains(stdout, "-") && regexp.MustCompile(`\s-\d`).MatchString(stdout) {
		t.Errorf("a negative count:\n%s", stdout)
	}
	if !strings.Contains(stdout, "over 9.2E") {
		t.Errorf("no saturated count:\n%s", stdout)
	}
	for _, line := range strings.Split(stdout, "\n") {
		if f := strings.Fields(line); len(f) > 2 && strings.HasPrefix(f[0], "gpu:") && f[2] == "0" {
			t.Errorf("FLOPs of 0 on a replica: %s", line)
		}
	}
}

// A training state whose counts are out of range is refused on load,
// naming the entry, before anything trains.
func TestResumeBadState(t *testing.T) {
	dir := t.TempDir()
	data := writeData(t, dir, "data.npz", 16, -1)
	g := parseFile(t, mlpClassifier)
	w := runtime.RandomParams(g, 1)
	count := func(v int64) *tensor.Dense { return host.New([]int{1}, []int64{v}) }
	for _, c := range []struct {
		steps, epochs int64
		want          string
	}{
		{-1, 0, `"steps": expected a count from 0`},
		{1<<63 - 1, 1, `"steps": expected a count from 0`},
		{10, 1<<63 - 1, `"epochs": expected a count from 0`},
	} {
		path := filepath.Join(dir, "w.npz")
		st := map[string]*tensor.Dense{"steps": count(c.steps), "epochs": count(c.epochs), "optimizer": count(0)}
		if err := train.WriteCheckpoint(path, w, st, 1); err != nil {
			t.Fatal(err)
		}
		code, stdout, stderr := runCmd(t, "", mlpClassifier, "--train", "--data", data, "--epochs", "1", "--batch", "8",
			"--weights", path, "--save-weights", filepath.Join(dir, "out.npz"))
		if code != 2 || !strings.Contains(stderr, c.want) || strings.Contains(stdout, "epoch 1") {
			t.Errorf("steps=%d epochs=%d: exit %d, stderr %q; want 2 and %q", c.steps, c.epochs, code, stderr, c.want)
		}
	}
	code, _, stderr := runCmd(t, "", mlpClassifier, "--train", "--data", data, "--epochs", "9223372036854775807", "--batch", "8",
		"--save-weights", filepath.Join(dir, "out.npz"))
	if code != 2 || !strings.Contains(stderr, "--epochs E, from 1 to") {
		t.Errorf("--epochs 2^63-1: exit %d: %s", code, stderr)
	}
}

// Inputs that once panicked, hung or misled: each is a clean error.
func TestRobustErrors(t *testing.T) {
	dir := t.TempDir()
	var perm strings.Builder
	perm.WriteString("0")
	for i := 1; i < 1000000; i++ {
		perm.WriteString("," + strconv.Itoa(i))
	}
	bigAttr := writeModel(t, "attr.graph", "graph a {\n  input %x: f32[N,4]\n  %y = transpose %x {perm=["+perm.String()+"]}\n  output %y\n}\n")
	pool := writeModel(t, "pool.graph", "graph p {\n  input %x: f32[N,1,4,4]\n  %y = maxpool2d %x {kernel=[0,0]}\n  output %y\n}\n")
	model := writeModel(t, "mlp.graph", mlpSrc)
	badPB := filepath.Join(dir, "x.pb")
	if err := os.WriteFile(badPB, []byte{0xff, 0xff, 0xff}, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"--gpus ''", []string{model, "--gpus", ""}, "--gpus: expected a value, found an empty one"},
		{"-o ''", []string{model, "-o", ""}, "--o: expected a value"},
		{"a million-element attribute", []string{bigAttr}, "bytes left out"},
		{"maxpool2d kernel [0,0]", []string{pool}, "expected a positive kernel, found kernel=[0,0]"},
		{"a bad .pb input", []string{model, "--run", "--random-weights", "--input", "x=" + badPB, "--output-dir", filepath.Join(dir, "out")}, badPB},
	} {
		code, _, stderr := runCmd(t, "", c.args...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("%s: exit %d, stderr %q; want 2 and %q", c.name, code, clipLine(stderr), c.want)
		}
		for _, line := range strings.Split(stderr, "\n") {
			if len(line) > 2*maxLine {
				t.Errorf("%s: an error line of %d bytes", c.name, len(line))
			}
		}
	}
}

// panicReader panics when read.
type panicReader struct{}

func (panicReader) Read([]byte) (int, error) { panic("injected") }

// A panic is a bug: it exits 3, not 2 like a model the command refuses,
// and says so with the stack.
func TestCrashExitStatus(t *testing.T) {
	var out, errb bytes.Buffer
	code := runSafe([]string{"-"}, panicReader{}, &out, &errb)
	if code != exitCrash || !strings.Contains(errb.String(), "internal error") || !strings.Contains(errb.String(), "injected") || !strings.Contains(errb.String(), "goroutine") {
		t.Errorf("exit %d, stderr %q; want 3, the panic and its stack", code, errb.String())
	}
}

// Half a million outputs parse, verify and print in linear time (the
// check for an output listed twice was quadratic: a million took minutes).
func TestManyOutputs(t *testing.T) {
	n := 500000
	if testing.Short() {
		n = 100000
	}
	var b strings.Builder
	b.WriteString("graph many {\n  input %x: f32[N,2]\n")
	names := make([]string, n)
	for i := range names {
		names[i] = "%y" + strconv.Itoa(i)
		b.WriteString("  " + names[i] + " = relu %x\n")
	}
	b.WriteString("  output " + strings.Join(names, ", ") + "\n}\n")
	m := writeModel(t, "many.graph", b.String())
	if code, _, stderr := runCmd(t, "", m); code != 0 {
		t.Fatalf("exit %d: %s", code, clipLine(stderr))
	}
}

// A kernel's panic, recovered by the runtime as the run's error, is a bug
// too: report raises it again, and it exits 3 with the kernel's stack.
func TestKernelPanicIsACrash(t *testing.T) {
	var errb bytes.Buffer
	err := &backend.NodeError{Device: graph.GPUDevice(1), Node: "h.r1", Op: "matmul",
		Err: &backend.PanicError{Value: "boom", Stack: []byte("goroutine 7 [running]:\nmultigpu/runtime/cpu.kernel")}}
	code := func() (code int) {
		defer func() {
			if r := recover(); r != nil {
				code = crash(&errb, r, nil)
			}
		}()
		report(&errb, err)
		return exitUsage
	}()
	if code != exitCrash || !strings.Contains(errb.String(), "internal error") || !strings.Contains(errb.String(), "%h.r1 (matmul): panic: boom") || !strings.Contains(errb.String(), "goroutine 7") {
		t.Errorf("exit %d, stderr %q; want 3, the node, the panic and the kernel's stack", code, errb.String())
	}
}
