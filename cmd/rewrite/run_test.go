package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gorgonia.org/tensor"

	"multigpu/graph"
	"multigpu/runtime"
	"multigpu/runtime/host"
	"multigpu/tensorio"
)

func TestCheck(t *testing.T) {
	code, stdout, stderr := runCmd(t, "", "../../testdata/mlp.graph", "--gpus", "4", "--check")
	if code != exitOK || !strings.Contains(stdout, "check mlp: batch 9 split 3,2,2,2 over 4 replicas, seed 1") ||
		!strings.Contains(stdout, "%y            f32[9,10]        max abs diff 0          max rel diff 0          identical") {
		t.Errorf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	// Keras's per-replica batchnorm statistics are not what one device
	// computes: --check says so and exits 1.
	code, stdout, _ = runCmd(t, "", "../../testdata/batchnorm_train.graph", "--gpus", "3", "--check", "--batchnorm", "per-replica")
	if code != exitFailed || !strings.Contains(stdout, "DIFFERENT") || !strings.Contains(stdout, "FAIL: the rewritten graph computes something else") {
		t.Errorf("per-replica batchnorm: exit %d\n%s", code, stdout)
	}
	// Synchronised statistics agree, through reductions.
	code, stdout, _ = runCmd(t, "", "../../testdata/batchnorm_train.graph", "--gpus", "3", "--check", "--batchnorm", "sync", "--batch", "37", "--seed", "7")
	if code != exitOK || !strings.Contains(stdout, "batch 37 split 13,12,12 over 3 replicas, seed 7") {
		t.Errorf("sync batchnorm: exit %d\n%s", code, stdout)
	}
}

// A batch too large for the memory limit is refused before its inputs
// are made (it used to exhaust the machine's memory making them).
func TestCheckMemoryLimit(t *testing.T) {
	code, stdout, stderr := runCmd(t, "", "../../testdata/cnn.graph", "--gpus", "2", "--check", "--batch", "100000000", "--memory-limit", "1G")
	if code != exitUsage || stdout != "" || !strings.Contains(stderr, "rewrite: original: runtime: a run at batch 100000000 needs about 8.3 TiB of tensors, over the memory limit of 1.0 GiB") {
		t.Errorf("exit %d\nstdout %q\nstderr %q", code, stdout, stderr)
	}
}

// TestCheckEveryModel: every example model agrees with its rewrite
// (integer inputs that index nothing given with --input, at batch 5).
func TestCheckEveryModel(t *testing.T) {
	paths, _ := filepath.Glob("../../testdata/*.graph")
	gpus := []string{"2", "3"}
	if testing.Short() {
		gpus = gpus[:1]
	}
	for _, path := range paths {
		if strings.Contains(path, "placed") {
			continue
		}
		for _, n := range gpus {
			args := append([]string{path, "--gpus", n, "--check", "--batchnorm", "sync"}, integerInputs(t, path, 5)...)
			code, stdout, stderr := runCmd(t, "", args...)
			if code != exitOK {
				t.Errorf("%s --gpus %s: exit %d\n%s%s", path, n, code, stdout, stderr)
			}
		}
	}
}

// integerInputs writes the i32 and i64 inputs of the model at path that
// index no gather (which --check does not draw) at batch size batch, and
// returns the --input flags that give them.
func integerInputs(t *testing.T, path string, batch int64) []string {
	t.Helper()
	g := parseFile(t, path)
	rows := runtime.IndexRows(g, batch)
	var args []string
	for _, in := range g.Inputs() {
		if _, ok := rows[in.Name]; ok || (in.Type.DType != graph.I32 && in.Type.DType != graph.I64) {
			continue
		}
		shape := make([]int, in.Type.Rank())
		for i, d := range in.Type.Shape {
			v, ok := d.Value()
			if !ok {
				v = batch
			}
			shape[i] = int(v)
		}
		data := host.MakeSlice(in.Type.DType, host.Elems(host.Zeros(in.Type.DType, shape)))
		for i := range host.Len(data) {
			switch d := data.(type) {
			case []int32:
				d[i] = int32(i % 7)
			case []int64:
				d[i] = int64(i % 7)
			}
		}
		file := filepath.Join(t.TempDir(), in.Name+".npy")
		if err := tensorio.WriteFileAtomic(file, host.New(shape, data)); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--input", in.Name+"="+file)
	}
	return args
}

func writeNPY(t *testing.T, dir, name string, shape []int, data []float32) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := tensorio.WriteFileAtomic(path, tensor.New(tensor.WithShape(shape...), tensor.WithBacking(data))); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestRun(t *testing.T) {
	dir := t.TempDir()
	x := make([]float32, 7*784)
	for i := range x {
		x[i] = float32(i%13) / 13
	}
	in := writeNPY(t, dir, "x.npy", []int{7, 784}, x)
	one, four := filepath.Join(dir, "one"), filepath.Join(dir, "four")
	for _, c := range []struct {
		out  string
		args []string
	}{{one, nil}, {four, []string{"--gpus", "4"}}} {
		args := append([]string{"../../testdata/mlp.graph", "--run", "--input", "x=" + in, "--random-weights", "--output-dir", c.out}, c.args...)
		if code, stdout, stderr := runCmd(t, "", args...); code != exitOK || stdout != "" {
			t.Fatalf("rewrite %s: exit %d\n%s%s", strings.Join(args, " "), code, stdout, stderr)
		}
	}
	a, err := os.ReadFile(filepath.Join(one, "y.npy"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(four, "y.npy"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Errorf("y.npy differs between one device and four replicas")
	}
	y, err := tensorio.ReadFile(filepath.Join(one, "y.npy"))
	if err != nil || len(y.Shape()) != 2 || y.Shape()[0] != 7 || y.Shape()[1] != 10 {
		t.Errorf("y.npy: %v %v", err, y)
	}
}

func TestRunWeights(t *testing.T) {
	dir := t.TempDir()
	w := map[string]*tensor.Dense{
		"w": tensor.New(tensor.WithShape(3, 2), tensor.WithBacking([]float32{1, 0, 0, 1, 1, 1})),
	}
	src := "graph lin {\n  input %x: f32[N,3]\n  param %w: f32[3,2]\n  %y = matmul %x, %w\n  output %y\n}\n"
	model := writeModel(t, "lin.graph", src)
	weights := filepath.Join(dir, "w.safetensors")
	if err := tensorio.WriteArchive(weights, w); err != nil {
		t.Fatal(err)
	}
	in := writeNPY(t, dir, "x.npy", []int{2, 3}, []float32{1, 2, 3, 4, 5, 6})
	out := filepath.Join(dir, "out")
	code, _, stderr := runCmd(t, "", model, "--gpus", "2", "--run", "--input", "x="+in, "--weights", weights, "--output-dir", out)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	y, err := tensorio.ReadFile(filepath.Join(out, "y.npy"))
	if err != nil {
		t.Fatal(err)
	}
	if got := y.Data().([]float32); len(got) != 4 || got[0] != 4 || got[1] != 5 || got[2] != 10 || got[3] != 11 {
		t.Errorf("y = %v, want [4 5 10 11]", got)
	}

	// Errors name what is wrong.
	bad := writeNPY(t, dir, "bad.npy", []int{2, 4}, make([]float32, 8))
	missing := filepath.Join(dir, "empty.npz")
	if err := tensorio.WriteArchive(missing, map[string]*tensor.Dense{"v": w["w"]}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--run", "--input", "x=" + bad, "--weights", weights, "--output-dir", out}, exitUsage, "input %x: expected shape f32[N,3], given [2,4]"},
		{[]string{"--run", "--input", "x=" + in, "--output-dir", out}, exitUsage, "the model has params (%w): give --weights FILE.npz|FILE.safetensors, or --random-weights for seeded random ones"},
		{[]string{"--run", "--input", "x=" + in, "--weights", missing, "--output-dir", out}, exitUsage, "%w"},
		{[]string{"--run", "--weights", weights, "--output-dir", out}, exitUsage, "input %x: missing (expected f32[N,3])"},
		{[]string{"--run", "--input", "x=" + filepath.Join(dir, "nope.npy"), "--weights", weights, "--output-dir", out}, exitUsage, "--input x:"},
		{[]string{"--run", "--input", "x"}, exitUsage, `invalid value "x" for flag -input: expected NAME=FILE (a .npy or ONNX .pb file), found "x"`},
		{[]string{"--run", "--input", "x=" + in, "--random-weights"}, exitUsage, "--run needs --output-dir DIR for the outputs"},
		{[]string{"--check"}, exitUsage, "--check compares the model with its rewrite: give --gpus too"},
		{[]string{"--input", "x=" + in}, exitUsage, "--input goes with --run"},
		{[]string{"--gpus", "2", "--run", "--check", "--output-dir", out}, exitUsage, "--run, --check and --explain exclude each other: give one"},
		{[]string{"--run", "--input", "x=" + in, "--random-weights", "--output-dir", out, "--memory-limit", "16"}, exitUsage, "memory"},
		{[]string{"--run", "--memory-limit", "lots"}, exitUsage, `expected a positive size such as 512M or 4G (at least one byte), found "lots"`},
	}
	for _, c := range cases {
		args := append([]string{model}, c.args...)
		code, _, stderr := runCmd(t, "", args...)
		if code != c.code || !strings.Contains(stderr, c.want) {
			t.Errorf("rewrite %s:\nexit %d, stderr %q\nwant exit %d and %q", strings.Join(args, " "), code, stderr, c.code, c.want)
		}
	}
}

func TestProgressLine(t *testing.T) {
	var b bytes.Buffer
	if p := newProgress(&b, nil); p != nil {
		t.Fatal("progress on a buffer, which is not a terminal")
	}
}

// Without -tags cudart there is no CUDA backend: asking for it says how to
// build with it; auto falls back on CPU workers.
func TestBackendFlags(t *testing.T) {
	mlp := "../../testdata/mlp.graph"
	code, _, stderr := runCmd(t, "", mlp, "--gpus", "2", "--check", "--backend", "cuda")
	if code != exitUsage || !strings.Contains(stderr, "build with `go build -tags cudart ./cmd/rewrite` on a machine with CUDA") {
		t.Errorf("--backend cuda: exit %d: %s", code, stderr)
	}
	if code, stdout, stderr := runCmd(t, "", mlp, "--gpus", "2", "--check"); code != exitOK {
		t.Errorf("--backend auto: exit %d: %s%s", code, stdout, stderr)
	}
	cases := map[string][]string{
		`--backend: expected auto, cpu or cuda, found "tpu"`:                                              {"--backend", "tpu"},
		"--device-map maps logical GPUs onto physical ones: it goes with --backend cuda or auto, not cpu": {"--backend", "cpu", "--device-map", "gpu:0-3=0"},
		"--device-map: ": {"--device-map", "gpu:0-3"},
	}
	for want, args := range cases {
		code, _, stderr := runCmd(t, "", append([]string{mlp, "--gpus", "2", "--check"}, args...)...)
		if code != exitUsage || !strings.Contains(stderr, want) {
			t.Errorf("%v: exit %d: %s", args, code, stderr)
		}
	}
}
