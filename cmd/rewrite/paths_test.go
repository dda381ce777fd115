package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"multigpu/runtime/host"
	"multigpu/tensorio"
)

// Every output that would overwrite an input or another output, after
// links are followed and with the derived files counted, is refused
// before any work, with exit 2, and nothing on disk changes.
func TestOutputsNeverOverwriteInputs(t *testing.T) {
	dir := t.TempDir()
	at := func(name string) string { return filepath.Join(dir, name) }
	model := writeModel(t, "mlp.graph", mlpSrc)
	data := writeData(t, dir, "data.npz", 20, -1)
	runData := writeData(t, dir, "run.state.npz", 20, -1)
	onnxModel := writeONNX(t, dir, "m.onnx", graphPB("m",
		[]pbuf{node("r", "Relu", []string{"x"}, []string{"y"})}, nil,
		[]pbuf{valueInfo("x", 1, "N", 4)}, "y"))
	if err := os.Symlink(model, at("link.graph")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(data, at("link.npz")); err != nil {
		t.Fatal(err)
	}
	outDir := at("out")
	if err := os.Mkdir(outDir, 0o755); err != nil {
		t.Fatal(err)
	}
	y := writeNPY(t, outDir, "y.npy", []int{2, 10}, make([]float32, 20))
	x := writeNPY(t, outDir, "x.npy", []int{2, 784}, make([]float32, 2*784))
	if err := os.Mkdir(at("w.npz"), 0o755); err != nil {
		t.Fatal(err)
	}
	train := []string{mlpClassifier, "--train", "--data", data, "--epochs", "1", "--batch", "8"}
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"onnx -o m.npz", []string{onnxModel, "-o", at("m.npz")}, "are one file"},
		{"-o MODEL", []string{model, "-o", model}, "would overwrite MODEL"},
		{"-o a link to MODEL", []string{model, "-o", at("link.graph")}, "would overwrite MODEL"},
		{"--save-weights = --data", append(slices.Clone(train), "--save-weights", data), "would overwrite --data"},
		{"--save-weights's state = --data", append(slices.Clone(train), "--data", runData, "--save-weights", at("run.npz")), "training state"},
		{"--save-weights a link to --data", append(slices.Clone(train), "--save-weights", at("link.npz")), "would overwrite --data"},
		{"--save-weights a directory", append(slices.Clone(train), "--save-weights", at("w.npz")), "expected a file, found a directory"},
		{"--run onto its --input", []string{model, "--run", "--random-weights", "--input", "x=" + y, "--output-dir", outDir}, "would overwrite --input x"},
		{"--output-dir a file", []string{model, "--run", "--random-weights", "--input", "x=" + x, "--output-dir", model}, "expected a directory"},
	} {
		before := snapshot(t, dir)
		code, stdout, stderr := runCmd(t, "", c.args...)
		if code != 2 || !strings.Contains(stderr, c.want) || strings.Contains(stdout, "epoch") {
			t.Errorf("%s: exit %d, stderr %q; want 2 and %q", c.name, code, stderr, c.want)
		}
		if after := snapshot(t, dir); !maps2Equal(before, after) {
			t.Errorf("%s: the files changed", c.name)
		}
	}

	// -o onto a link to another file writes that file and keeps the link.
	target := at("target.graph")
	if err := os.WriteFile(target, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, at("out.graph")); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runCmd(t, "", model, "-o", at("out.graph")); code != 0 {
		t.Fatalf("-o a link: exit %d: %s", code, stderr)
	}
	if fi, err := os.Lstat(at("out.graph")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("-o a link: the link was replaced: %v", err)
	}
	if b, _ := os.ReadFile(target); !strings.HasPrefix(string(b), "graph mlp") {
		t.Errorf("-o a link: its target holds %q", b)
	}

	// Resuming in place (--weights = --save-weights) is the one overlap
	// allowed.
	w := at("ck.npz")
	args := append(slices.Clone(train), "--save-weights", w)
	if code, _, stderr := runCmd(t, "", args...); code != 0 {
		t.Fatalf("train: exit %d: %s", code, stderr)
	}
	if code, stdout, stderr := runCmd(t, "", append(args, "--weights", w)...); code != 0 || !strings.Contains(stdout, "resuming after epoch 1") {
		t.Fatalf("resume in place: exit %d: %s%s", code, stdout, stderr)
	}
}

// snapshot maps every file under dir to its contents.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			b, _ := os.ReadFile(p)
			out[p] = string(b)
		}
		return nil
	})
	return out
}

func maps2Equal(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// --run replaces its output directory all or nothing, keeps the files in
// it that are not its outputs, and a write failure exits 1.
func TestRunOutputDir(t *testing.T) {
	dir := t.TempDir()
	model := writeModel(t, "two.graph", `graph two {
  input %x: f32[N,4]
  %a = relu %x
  %b = neg %x
  output %a, %b
}
`)
	x := writeNPY(t, dir, "x.npy", []int{2, 4}, []float32{1, -2, 3, -4, 5, -6, 7, -8})
	out := filepath.Join(dir, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	keep := filepath.Join(out, "notes.txt")
	if err := os.WriteFile(keep, []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out, "a.npy"), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runCmd(t, "", model, "--run", "--input", "x="+x, "--output-dir", out); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if b, err := os.ReadFile(keep); err != nil || string(b) != "mine" {
		t.Errorf("notes.txt: %q, %v", b, err)
	}
	b, err := tensorio.ReadFile(filepath.Join(out, "b.npy"))
	if err != nil || host.Float64s(b)[0] != -1 {
		t.Errorf("b.npy: %v, %v", b, err)
	}
	if _, err := tensorio.ReadFile(filepath.Join(out, "a.npy")); err != nil {
		t.Errorf("a.npy: %v", err)
	}
	if names := listDir(t, dir); !slices.Equal(names, []string{"out", "x.npy"}) {
		t.Errorf("beside the output directory: %q", names)
	}
}
