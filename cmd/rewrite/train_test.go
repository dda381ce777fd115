package main

import (
	"bytes"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gorgonia.org/tensor"

	"multigpu/runtime/host"
	"multigpu/tensorio"
	"multigpu/train"
)

const mlpClassifier = "../../testdata/mlp_classifier.graph"

// writeData writes n samples for mlp_classifier (x: f64[N,12], t:
// one-hot f64[N,3], a class the inputs decide) to dir/name.
func writeData(t *testing.T, dir, name string, n int, nanAt int) string {
	t.Helper()
	r := rand.New(rand.NewPCG(1, 2))
	x, tg := make([]float64, n*12), make([]float64, n*3)
	for i := 0; i < n; i++ {
		s := 0.0
		for j := 0; j < 12; j++ {
			x[i*12+j] = 2*r.Float64() - 1
			s += x[i*12+j] * float64(j%3-1)
		}
		c := 0
		if s > 0.5 {
			c = 1
		} else if s < -0.5 {
			c = 2
		}
		tg[i*3+c] = 1
	}
	if nanAt >= 0 {
		x[nanAt*12] = math.NaN()
	}
	path := filepath.Join(dir, name)
	if err := tensorio.WriteArchive(path, map[string]*tensor.Dense{"x": host.New([]int{n, 12}, x), "t": host.New([]int{n, 3}, tg)}); err != nil {
		t.Fatal(err)
	}
	return path
}

var epochLine = regexp.MustCompile(`(?m)^epoch (\d+)/(\d+): loss ([0-9.]+) \((\d+) steps, (\d+) samples, [0-9.]+s\)$`)

func TestTrain(t *testing.T) {
	dir := t.TempDir()
	data := writeData(t, dir, "data.npz", 150, -1)
	out := filepath.Join(dir, "w.npz")
	code, stdout, stderr := runCmd(t, "", mlpClassifier, "--train", "--gpus", "2", "--data", data, "--epochs", "4",
		"--batch", "16", "--optimizer", "adam", "--lr", "0.02", "--save-weights", out)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if stderr != "" {
		t.Errorf("stderr (not a terminal: no progress bar):\n%s", stderr)
	}
	if !strings.HasPrefix(stdout, "training mlp_classifier on 2 GPUs: 150 samples, batch 16, adam, loss %loss, params %w1 %b1 %w2 %b2\n") {
		t.Errorf("stdout:\n%s", stdout)
	}
	m := epochLine.FindAllStringSubmatch(stdout, -1)
	if len(m) != 4 {
		t.Fatalf("want 4 epoch lines:\n%s", stdout)
	}
	if m[0][4] != "10" || m[0][5] != "150" {
		t.Errorf("epoch 1: %s steps, %s samples; want 10 (the last batch of 6 trained) and 150", m[0][4], m[0][5])
	}
	if m[3][3] >= m[0][3] {
		t.Errorf("loss did not fall: %s then %s", m[0][3], m[3][3])
	}
	if !strings.HasSuffix(stdout, "saved the weights to "+out+"\n") {
		t.Errorf("stdout:\n%s", stdout)
	}
	w, err := tensorio.ReadArchive(out)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for name := range w {
		names = append(names, name)
	}
	slices.Sort(names)
	if got := strings.Join(names, " "); got != "b1 b2 w1 w2" {
		t.Errorf("saved %s, want the model's params", got)
	}
	// The original model runs with the saved weights.
	runDir := filepath.Join(dir, "run")
	xs := filepath.Join(dir, "x.npy")
	if err := tensorio.WriteFileAtomic(xs, host.New([]int{2, 12}, make([]float64, 24))); err != nil {
		t.Fatal(err)
	}
	ts := filepath.Join(dir, "t.npy")
	if err := tensorio.WriteFileAtomic(ts, host.New([]int{2, 3}, make([]float64, 6))); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runCmd(t, "", mlpClassifier, "--run", "--weights", out, "--input", "x="+xs, "--input", "t="+ts, "--output-dir", runDir); code != 0 {
		t.Errorf("--run with the trained weights: exit %d: %s", code, stderr)
	}
	// Resuming from the checkpoint on one device: the same data, the
	// weights it starts from are the saved ones.
	out2 := filepath.Join(dir, "w2.npz")
	code, stdout, stderr = runCmd(t, "", mlpClassifier, "--train", "--weights", out, "--data", data, "--epochs", "1",
		"--batch", "16", "--optimizer", "adam", "--lr", "0.02", "--save-weights", out2, "--drop-last")
	if code != 0 {
		t.Fatalf("resume: exit %d: %s", code, stderr)
	}
	if m2 := epochLine.FindAllStringSubmatch(stdout, -1); len(m2) != 1 || m2[0][3] >= m[0][3] || m2[0][5] != "144" {
		t.Errorf("resumed, --drop-last:\n%s", stdout)
	}
	// The checkpoint's training state came along: Adam's moments, the
	// step count and the epochs, which number on.
	if want := "resuming after epoch 4 (40 steps) from " + train.StatePath(out) + "\n"; !strings.Contains(stdout, want) || !strings.Contains(stdout, "epoch 5/5: ") {
		t.Errorf("resume: want %q and epoch 5/5 in:\n%s", want, stdout)
	}
	if _, err := os.Stat(train.StatePath(out2)); err != nil {
		t.Errorf("no training state beside %s: %v", out2, err)
	}
}

// Training on one device and on three gives the same weights.
func TestTrainParity(t *testing.T) {
	dir := t.TempDir()
	data := writeData(t, dir, "data.npz", 50, -1)
	var saved []map[string]*tensor.Dense
	for _, gpus := range [][]string{nil, {"--gpus", "3"}} {
		out := filepath.Join(dir, "w"+strings.Join(gpus, "")+".npz")
		args := append([]string{mlpClassifier, "--train", "--data", data, "--epochs", "2", "--batch", "8", "--optimizer", "momentum", "--save-weights", out}, gpus...)
		if code, _, stderr := runCmd(t, "", args...); code != 0 {
			t.Fatalf("%v: exit %d: %s", gpus, code, stderr)
		}
		w, err := tensorio.ReadArchive(out)
		if err != nil {
			t.Fatal(err)
		}
		saved = append(saved, w)
	}
	for name, a := range saved[0] {
		x, y := host.Data(a).([]float64), host.Data(saved[1][name]).([]float64)
		for i := range x {
			if math.Abs(x[i]-y[i]) > 1e-9*math.Abs(x[i])+1e-12 {
				t.Fatalf("%s[%d]: %v on one device, %v on three", name, i, x[i], y[i])
			}
		}
	}
}

func TestTrainErrors(t *testing.T) {
	dir := t.TempDir()
	data := writeData(t, dir, "data.npz", 40, -1)
	nan := writeData(t, dir, "nan.npz", 40, 13)
	out := filepath.Join(dir, "w.npz")
	onlyX := filepath.Join(dir, "x.npz")
	if err := tensorio.WriteArchive(onlyX, map[string]*tensor.Dense{"x": host.New([]int{4, 12}, make([]float64, 48))}); err != nil {
		t.Fatal(err)
	}
	wrong := filepath.Join(dir, "wrong.npz")
	if err := tensorio.WriteArchive(wrong, map[string]*tensor.Dense{"x": host.New([]int{4, 11}, make([]float64, 44)), "t": host.New([]int{4, 3}, make([]float64, 12))}); err != nil {
		t.Fatal(err)
	}
	base := []string{mlpClassifier, "--train", "--epochs", "2", "--batch", "8", "--save-weights", out}
	for _, c := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no_data", base, 2, "rewrite: --train needs --data FILE.npz, with an array per input of the model"},
		{"no_batch", []string{mlpClassifier, "--train", "--data", data, "--epochs", "1", "--save-weights", out}, 2, "rewrite: --train needs --batch B, the samples per step, 1 or more, found 0"},
		{"no_save", []string{mlpClassifier, "--train", "--data", data, "--epochs", "1", "--batch", "4"}, 2, "rewrite: --train needs --save-weights FILE.npz (or .safetensors) for the trained weights"},
		{"save_ext", append(slices.Clone(base), "--data", data, "--save-weights", "w.npy"), 2, `rewrite: --save-weights: expected a .npz or .safetensors file, found "w.npy"`},
		{"optimizer", append(slices.Clone(base), "--data", data, "--optimizer", "rmsprop"), 2, `rewrite: --optimizer: expected sgd, momentum or adam, found "rmsprop"`},
		{"without_train", []string{mlpClassifier, "--data", data}, 2, "rewrite: --data goes with --train"},
		{"with_run", append(slices.Clone(base), "--data", data, "--run", "--output-dir", dir), 2, "rewrite: --train excludes --run, --check and --explain: give one"},
		{"per_replica", append(slices.Clone(base), "--data", data, "--gpus", "2", "--batchnorm", "per-replica"), 2, "rewrite: --batchnorm per-replica: training writes batchnorm"},
		{"missing_input", append(slices.Clone(base), "--data", onlyX), 2, `rewrite: --data ` + onlyX + `: data: no array "t" for input %t: f64[N,3] (the data has "x")`},
		{"wrong_shape", append(slices.Clone(base), "--data", wrong), 2, `rewrite: --data ` + wrong + `: data: array "x" has shape [4,11], input %x expects f64[N,12]`},
		{"bad_weights", append(slices.Clone(base), "--data", data, "--weights", data), 2, "rewrite: --weights " + data + ": weights: param %w1: missing"},
		{"loss", append(slices.Clone(base), "--data", data, "--loss", "y"), 2, "rewrite: loss %y: expected a scalar f32 or f64 output, found f64[N,3]"},
		{"nan", append(slices.Clone(base), "--data", nan, "--gpus", "2"), 1, "the loss %loss is NaN"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, _, stderr := runCmd(t, "", c.args...)
			if code != c.code || !strings.Contains(stderr, c.want) {
				t.Errorf("exit %d, stderr:\n%s\nwant exit %d and %q", code, stderr, c.code, c.want)
			}
		})
	}
}

// A NaN in the second epoch's data stops training with the first
// epoch's checkpoint intact. (The NaN sample is in every epoch; the run
// that writes the first checkpoint trains on clean data.)
func TestTrainNaNKeepsCheckpoint(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "w.npz")
	clean := writeData(t, dir, "data.npz", 40, -1)
	if code, _, stderr := runCmd(t, "", mlpClassifier, "--train", "--data", clean, "--epochs", "1", "--batch", "8", "--save-weights", out); code != 0 {
		t.Fatal(stderr)
	}
	before, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	nan := writeData(t, dir, "nan.npz", 40, 21)
	code, _, stderr := runCmd(t, "", mlpClassifier, "--train", "--data", nan, "--weights", out, "--epochs", "3", "--batch", "8", "--save-weights", out)
	if code != 1 || !regexp.MustCompile(`rewrite: epoch 2, step \d of 5 \(samples \d+ to \d+ of the epoch\): train: the loss %loss is NaN`).MatchString(stderr) {
		t.Errorf("exit %d: %s", code, stderr)
	}
	after, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Error("the checkpoint changed")
	}
}

func TestBarLine(t *testing.T) {
	got := barLine(train.Progress{Epoch: 3, Epochs: 20, Step: 12, Steps: 24, Loss: 0.42131, SamplesPerSec: 1834.4})
	want := "epoch 3/20 [============>           ] step 12/24  loss 0.4213  1834 samples/s"
	if got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}
