package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gorgonia.org/tensor"

	"multigpu/runtime/host"
	"multigpu/tensorio"
)

// --run tells on stderr what it wrote: each output's name, type and file,
// and the time taken.
func TestRunReportsOutputs(t *testing.T) {
	dir := t.TempDir()
	x := filepath.Join(dir, "x.npy")
	if err := tensorio.WriteFileAtomic(x, host.New([]int{3, 32}, make([]float32, 96))); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	code, _, stderr := runCmd(t, "", "../../testdata/two_outputs.graph", "--gpus", "2", "--run", "--random-weights",
		"--input", "x="+x, "--output-dir", out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		"%cls          f32[3,5]          " + filepath.Join(out, "cls.npy") + "\n",
		"%reg          f32[3,1]          " + filepath.Join(out, "reg.npy") + "\n",
		"2 outputs written to " + out + "\n",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if !strings.Contains(stderr, "ran in ") {
		t.Errorf("stderr does not give the time taken:\n%s", stderr)
	}
	if _, err := os.Stat(filepath.Join(out, "cls.npy")); err != nil {
		t.Error(err)
	}
}

// A model with many outputs gets maxReported lines and a count of the rest.
func TestReportOutputsCapped(t *testing.T) {
	var names []string
	outs := map[string]*tensor.Dense{}
	for i := range maxReported + 5 {
		n := fmt.Sprintf("y%d", i)
		names = append(names, n)
		outs[n] = host.New([]int{2}, []float64{1, 2})
	}
	var buf bytes.Buffer
	reportOutputs(&buf, "d", names, outs, 1500*time.Millisecond)
	got := buf.String()
	if n := strings.Count(got, ".npy\n"); n != maxReported {
		t.Errorf("%d output lines, want %d:\n%s", n, maxReported, got)
	}
	for _, want := range []string{"%y0           f64[2]            " + filepath.Join("d", "y0.npy"), "... and 5 more outputs in d\n", "ran in 1.5s: 15 outputs written to d\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("the report lacks %q:\n%s", want, got)
		}
	}
}
