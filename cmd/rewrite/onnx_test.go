package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"multigpu/graph"
	"multigpu/tensorio"
)

// An ONNX model works like a .graph file: printed, rewritten, checked,
// run with its own weights, and saved as a .graph with its weights beside.
func TestONNXModel(t *testing.T) {
	model := "../../onnx/testdata/mlp_dynamic.onnx"
	code, stdout, stderr := runCmd(t, "", model)
	if code != exitOK || !strings.HasPrefix(stdout, "graph ") {
		t.Fatalf("import: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, stderr = runCmd(t, "", model, "--gpus", "3", "--check")
	if code != exitOK || !strings.Contains(stdout, "ok: the rewritten graph computes what the original computes") {
		t.Fatalf("--check: exit %d\n%s%s", code, stdout, stderr)
	}
	dir := t.TempDir()
	saved := filepath.Join(dir, "m.graph")
	if code, _, stderr = runCmd(t, "", model, "-o", saved); code != exitOK {
		t.Fatalf("-o: exit %d: %s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "m.npz")); err != nil {
		t.Fatalf("-o m.graph wrote no m.npz: %v", err)
	}
	// Saved and reloaded, the model runs with the weights written beside
	// it and gives what the ONNX model gives.
	g := parseFile(t, saved)
	in := g.Inputs()[0]
	shape := []int{5}
	for _, d := range in.Type.Shape[1:] {
		shape = append(shape, int(d.Size))
	}
	n := 1
	for _, s := range shape {
		n *= s
	}
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(i%7) - 3
	}
	input := writeNPY(t, dir, "x.npy", shape, x)
	outA, outB := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	if code, _, stderr = runCmd(t, "", model, "--gpus", "2", "--run", "--input", in.Name+"="+input, "--output-dir", outA); code != exitOK {
		t.Fatalf("--run on the ONNX model: exit %d: %s", code, stderr)
	}
	if code, _, stderr = runCmd(t, "", saved, "--run", "--input", in.Name+"="+input, "--weights", filepath.Join(dir, "m.npz"), "--output-dir", outB); code != exitOK {
		t.Fatalf("--run on the saved model: exit %d: %s", code, stderr)
	}
	out := g.Outputs[0].Name + ".npy"
	a, errA := os.ReadFile(filepath.Join(outA, out))
	b, errB := os.ReadFile(filepath.Join(outB, out))
	if errA != nil || errB != nil || !bytes.Equal(a, b) {
		t.Errorf("outputs differ between the ONNX model on 2 replicas and the saved .graph on one device (%v, %v)", errA, errB)
	}
	// --batch-axis is for ONNX models.
	if code, _, stderr = runCmd(t, "", saved, "--batch-axis", "x=0"); code != exitUsage || !strings.Contains(stderr, "--batch-axis is for ONNX models") {
		t.Errorf("--batch-axis on a .graph: exit %d: %s", code, stderr)
	}
}

// TestONNXConformanceCLI runs one of ONNX's published test cases through
// the command line, rewritten for two GPUs, and compares with the shipped
// output.
func TestONNXConformanceCLI(t *testing.T) {
	dir := requireONNXTest(t, "pytorch-converted/test_Conv2d")
	out := t.TempDir()
	code, _, stderr := runCmd(t, "", filepath.Join(dir, "model.onnx"), "--batch-axis", "0=0", "--gpus", "2", "--run",
		"--input", "0="+filepath.Join(dir, "test_data_set_0", "input_0.pb"), "--output-dir", out)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	got, err := tensorio.ReadFile(filepath.Join(out, "3.npy"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := tensorio.ReadFile(filepath.Join(dir, "test_data_set_0", "output_0.pb"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := compare(want, got)
	if err != nil || r.maxAbs > 1e-5 {
		t.Errorf("rewritten Conv2d differs from ONNX's output: max abs %g (%v)", r.maxAbs, err)
	}
}

// TestONNXPerSampleCLI runs PoissonNLLLLoss_no_reduce, whose loss target
// is a constant with one row per sample, rewritten for three GPUs: the
// constant is an input with the model's data as its default, which --run
// feeds when --input does not give it and --check feeds instead of random
// values.
func TestONNXPerSampleCLI(t *testing.T) {
	dir := requireONNXTest(t, "pytorch-converted/test_PoissonNLLLLoss_no_reduce")
	model := filepath.Join(dir, "model.onnx")
	out := t.TempDir()
	code, _, stderr := runCmd(t, "", model, "--batch-axis", "0=0", "--gpus", "3", "--run",
		"--input", "0="+filepath.Join(dir, "test_data_set_0", "input_0.pb"), "--output-dir", out)
	if code != exitOK {
		t.Fatalf("--run: exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "imported as input %1 carrying the batch") {
		t.Errorf("no note about the per-sample constant: %s", stderr)
	}
	got, err := tensorio.ReadFile(filepath.Join(out, "4.npy"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := tensorio.ReadFile(filepath.Join(dir, "test_data_set_0", "output_0.pb"))
	if err != nil {
		t.Fatal(err)
	}
	if r, err := compare(want, got); err != nil || r.maxAbs > 1e-5 {
		t.Errorf("rewritten PoissonNLLLLoss_no_reduce differs from ONNX's output: max abs %g (%v)", r.maxAbs, err)
	}
	code, stdout, stderr := runCmd(t, "", model, "--batch-axis", "0=0", "--gpus", "2", "--check")
	if code != exitOK || !strings.Contains(stdout, "ok: the rewritten graph computes what the original computes") {
		t.Errorf("--check: exit %d\n%s%s", code, stdout, stderr)
	}
}

// requireONNXTest returns the directory of one of ONNX's test cases
// (SUITE/test_NAME) as Debian's libonnx-testdata installs them, or skips
// the test (fails it when CI=true) when it is absent.
func requireONNXTest(t *testing.T, name string) string {
	t.Helper()
	dir := filepath.Join("/usr/share/libonnx-testdata/data", name)
	if _, err := os.Stat(dir); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("ONNX test data missing in CI (apt-get install libonnx-testdata): %v", err)
		}
		t.Skipf("ONNX test data not installed (apt-get install libonnx-testdata): %v", err)
	}
	return dir
}

// parseFile parses the .graph file at path.
func parseFile(t *testing.T, path string) *graph.Graph {
	t.Helper()
	g, err := graph.Parse(path, mustRead(t, path))
	if err != nil {
		t.Fatal(err)
	}
	return g
}
