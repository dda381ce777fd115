package main

import (
	"context"
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gorgonia.org/tensor"

	"multigpu/runtime"
	"multigpu/runtime/host"
	"multigpu/tensorio"
	"multigpu/train"
)

// kills is how many times each kill test kills a child: at least 50 in
// the full run, within a minute; fewer under -short.
func kills() int {
	if testing.Short() {
		return 8
	}
	return 50
}

// reference trains mlp_classifier in this process exactly as the command
// does (the same seed, initial weights, optimizer and shuffles) and keeps
// the weights after every epoch, so that a checkpoint on disk can be
// compared with the epoch it claims.
type reference struct {
	t       *testing.T
	tr      *train.Trainer
	data    *train.Dataset
	weights []map[string]*tensor.Dense // after epoch k, k from 0
	steps   []int
}

func newReference(t *testing.T, arrays map[string]*tensor.Dense, opt string, lr float64) *reference {
	g := parseFile(t, mlpClassifier)
	tr, err := train.New(g, train.Config{Optimizer: train.Optimizer{Kind: opt, LR: lr}, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.SetWeights(runtime.RandomParams(g, 1)); err != nil {
		t.Fatal(err)
	}
	data, err := tr.NewDataset(arrays)
	if err != nil {
		t.Fatal(err)
	}
	return &reference{t: t, tr: tr, data: data, weights: []map[string]*tensor.Dense{tr.Weights()}, steps: []int{0}}
}

// at returns the weights and step count after epoch k.
func (r *reference) at(k int) (map[string]*tensor.Dense, int) {
	for len(r.weights) <= k {
		if _, err := r.tr.Fit(context.Background(), r.data, train.FitConfig{Epochs: 1, Batch: 8}); err != nil {
			r.t.Fatal(err)
		}
		r.weights = append(r.weights, r.tr.Weights())
		r.steps = append(r.steps, r.tr.Steps())
	}
	return r.weights[k], r.steps[k]
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkOnDisk asserts that the checkpoint at path is a complete state:
// it loads (the previous pair, when the current one is torn), and its
// weights and counts are bit for bit those of the epoch it claims, which
// is no earlier than last. It returns that epoch (0: no checkpoint yet).
func checkOnDisk(t *testing.T, ref *reference, path string, last int) (int, string) {
	t.Helper()
	c, err := train.LoadCheckpoint(path, 0)
	if errors.Is(err, fs.ErrNotExist) && last == 0 {
		return 0, ""
	}
	if err != nil {
		t.Fatalf("after a kill the checkpoint does not load: %v", err)
	}
	if c.State == nil {
		t.Fatalf("after a kill %s has no state beside it", c.Path)
	}
	gen := int(c.Generation)
	if gen < last {
		t.Fatalf("after a kill the checkpoint is of epoch %d, an earlier one than %d (data lost)", gen, last)
	}
	w, steps := ref.at(gen)
	for name, want := range w {
		if !slices.Equal(host.Float64s(want), host.Float64s(c.Weights[name])) {
			t.Fatalf("after a kill %s (epoch %d): %%%s is not epoch %d's", c.Path, gen, name, gen)
		}
	}
	st := func(name string) int64 { return host.Data(c.State[name]).([]int64)[0] }
	if st("epochs") != int64(gen) || st("steps") != int64(steps) {
		t.Fatalf("after a kill %s: state of %d epochs, %d steps; want %d and %d", c.Path, st("epochs"), st("steps"), gen, steps)
	}
	return gen, c.Note
}

// A child training a tiny model, resuming from its own checkpoint each
// time, is killed at random moments: the checkpoint on disk is always a
// complete one, of the epoch it claims, never older than the last seen,
// and training goes on from it exactly as an unbroken run would. No
// temporary file of a dead child survives the next run.
func TestKillTraining(t *testing.T) {
	dir := t.TempDir()
	data := writeData(t, dir, "data.npz", 24, -1)
	arrays, err := tensorio.ReadArchive(data)
	if err != nil {
		t.Fatal(err)
	}
	ref := newReference(t, arrays, train.Adam, 0.01)
	path := filepath.Join(dir, "w.npz")
	args := []string{mlpClassifier, "--train", "--data", data, "--epochs", "100000", "--batch", "8",
		"--optimizer", "adam", "--lr", "0.01", "--save-weights", path}
	r := rand.New(rand.NewPCG(7, 7))
	last, torn, deadline := 0, 0, time.Now().Add(60*time.Second)
	for i := 0; i < kills(); i++ {
		a := args
		if last > 0 {
			a = append(slices.Clone(args), "--weights", path)
		}
		c := start(t, nil, a...)
		time.Sleep(time.Duration(50+r.IntN(250)) * time.Millisecond)
		if code := c.kill(); code == 0 || code == 2 {
			t.Fatalf("kill %d: the child ended by itself, exit %d: %s", i, code, c.stderr.String())
		}
		var note string
		last, note = checkOnDisk(t, ref, path, last)
		if note != "" {
			torn++
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d kills in 60 s", i+1)
		}
	}
	if last == 0 {
		t.Fatal("no checkpoint was ever written")
	}
	// The next run removes what the dead children left.
	once := []string{mlpClassifier, "--train", "--data", data, "--epochs", "1", "--batch", "8",
		"--optimizer", "adam", "--lr", "0.01", "--save-weights", path, "--weights", path}
	c := start(t, nil, once...)
	if code := c.wait(); code != 0 {
		t.Fatalf("after the kills: exit %d: %s", code, c.stderr.String())
	}
	checkOnDisk(t, ref, path, last+1)
	for _, e := range listDir(t, dir) {
		if strings.Contains(e, ".tmp") {
			t.Errorf("left behind: %s", e)
		}
	}
	t.Logf("%d kills, the last checkpoint of epoch %d, %d torn pairs read through the previous one", kills(), last, torn)
}

// A full disk (a file size limit, RLIMIT_FSIZE, that the weights exceed
// and the training state does not) fails the run with exit 1 and leaves
// the last checkpoint complete: the state written first is put back.
func TestTrainFullDisk(t *testing.T) {
	dir := t.TempDir()
	data := writeData(t, dir, "data.npz", 24, -1)
	arrays, err := tensorio.ReadArchive(data)
	if err != nil {
		t.Fatal(err)
	}
	ref := newReference(t, arrays, train.SGD, 0.01)
	path := filepath.Join(dir, "w.npz")
	args := []string{mlpClassifier, "--train", "--data", data, "--batch", "8", "--optimizer", "sgd", "--lr", "0.01", "--save-weights", path}
	c := start(t, nil, append(slices.Clone(args), "--epochs", "2")...)
	if code := c.wait(); code != 0 {
		t.Fatalf("exit %d: %s", code, c.stderr.String())
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(train.StatePath(path))
	if err != nil || st.Size() >= fi.Size()/2 {
		t.Fatalf("the state (%v) should be far smaller than the weights (%d bytes)", st, fi.Size())
	}
	limit := []string{"prlimit", "--fsize=" + strconv.FormatInt(fi.Size()/2, 10)}
	c = start(t, limit, append(slices.Clone(args), "--epochs", "3", "--weights", path)...)
	if code := c.wait(); code != 1 || !strings.Contains(c.stderr.String(), "file too large") {
		t.Fatalf("full disk: exit %d: %s", code, c.stderr.String())
	}
	if gen, note := checkOnDisk(t, ref, path, 2); gen != 2 || note != "" {
		t.Fatalf("after a full disk: epoch %d, note %q; want epoch 2's checkpoint, complete", gen, note)
	}
}

// --run killed at random moments while it writes 40 outputs leaves the
// output directory with all of them old or all of them new; a full disk
// exits 1 and leaves it as it was.
func TestKillRunOutputs(t *testing.T) {
	dir := t.TempDir()
	var src strings.Builder
	src.WriteString("graph many {\n  input %x: f32[N,256]\n")
	var outs []string
	for i := range 40 {
		name := "y" + strconv.Itoa(i)
		src.WriteString("  %" + name + " = mul %x, %x\n")
		outs = append(outs, "%"+name)
	}
	src.WriteString("  output " + strings.Join(outs, ", ") + "\n}\n")
	model := filepath.Join(dir, "many.graph")
	if err := os.WriteFile(model, []byte(src.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	inputs := [2]string{}
	for v := range inputs {
		x := make([]float32, 64*256)
		for i := range x {
			x[i] = float32(v + 1)
		}
		inputs[v] = writeNPY(t, dir, "x"+strconv.Itoa(v)+".npy", []int{64, 256}, x)
	}
	out := filepath.Join(dir, "out")
	run := func(v int) *child {
		return start(t, nil, model, "--run", "--input", "x="+inputs[v], "--output-dir", out)
	}
	// which returns the value every output holds (1 or 4), failing on a
	// mixed or incomplete set; 0 when there is no output directory.
	which := func() float64 {
		if _, err := os.Stat(out); os.IsNotExist(err) {
			return 0
		}
		var seen float64
		for i := range 40 {
			y, err := tensorio.ReadFile(filepath.Join(out, "y"+strconv.Itoa(i)+".npy"))
			if err != nil {
				t.Fatalf("output %d: %v", i, err)
			}
			v := host.Float64s(y)[0]
			if i > 0 && v != seen {
				t.Fatalf("a mixed output directory: y0 holds %g, y%d holds %g", seen, i, v)
			}
			seen = v
		}
		return seen
	}
	r := rand.New(rand.NewPCG(3, 3))
	for i := 0; i < kills(); i++ {
		before := which()
		c := run(i % 2)
		time.Sleep(time.Duration(r.IntN(120)) * time.Millisecond)
		c.kill()
		after := which()
		if want := float64((i%2 + 1) * (i%2 + 1)); after != before && after != want {
			t.Fatalf("kill %d: outputs of %g, neither the old %g nor the new %g", i, after, before, want)
		}
	}
	if code := run(0).wait(); code != 0 || which() != 1 {
		t.Fatalf("a run after the kills: exit %d", code)
	}
	for _, e := range listDir(t, dir) {
		if strings.Contains(e, ".tmp") {
			t.Errorf("left behind: %s", e)
		}
	}
	// A full disk: a file size limit below one output.
	c := start(t, []string{"prlimit", "--fsize=4096"}, model, "--run", "--input", "x="+inputs[1], "--output-dir", out)
	if code := c.wait(); code != 1 || !strings.Contains(c.stderr.String(), "file too large") {
		t.Fatalf("full disk: exit %d: %s", code, c.stderr.String())
	}
	if which() != 1 {
		t.Fatal("a full disk changed the outputs")
	}
}
