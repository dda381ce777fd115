package train_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gorgonia.org/tensor"

	"multigpu/graph"
	"multigpu/runtime/host"
	"multigpu/tensorio"
	"multigpu/train"
)

// fitOne trains tr for one more epoch on data and returns its weights and
// state.
func fitOne(t *testing.T, tr *train.Trainer, data *train.Dataset) (map[string]*tensor.Dense, map[string]*tensor.Dense) {
	t.Helper()
	if _, err := tr.Fit(context.Background(), data, train.FitConfig{Epochs: 1, Batch: 10}); err != nil {
		t.Fatal(err)
	}
	return tr.Weights(), tr.State()
}

func sameWeights(a, b map[string]*tensor.Dense) bool {
	if len(a) != len(b) {
		return false
	}
	for name, t := range a {
		u, ok := b[name]
		if !ok || !slices.Equal(host.Float64s(t), host.Float64s(u)) {
			return false
		}
	}
	return true
}

// A checkpoint's two files are one unit: a torn pair (the state of one
// generation beside the weights of another) is never used; the previous
// pair is, and the note names the generations; with no previous pair it
// is refused, naming both files and generations. The binding stays out
// of the weights' tensors, so the file still loads as the params alone.
func TestCheckpointPair(t *testing.T) {
	g := loadModel(t, "mlp_classifier", graph.F64)
	for _, ext := range []string{".npz", ".safetensors"} {
		tr := newTrainer(t, g, train.Config{Optimizer: train.Optimizer{Kind: train.Adam}})
		data, err := tr.NewDataset(learnable(20, 1))
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "w"+ext)
		var ws, sts []map[string]*tensor.Dense
		for gen := 1; gen <= 3; gen++ {
			w, st := fitOne(t, tr, data)
			ws, sts = append(ws, w), append(sts, st)
			if gen < 3 {
				if err := train.WriteCheckpoint(path, w, st, int64(gen)); err != nil {
					t.Fatal(err)
				}
			}
		}
		plain, err := tensorio.ReadArchive(path)
		if err != nil || !sameWeights(plain, ws[1]) {
			t.Fatalf("%s: the weights file does not load as the params alone: %v", ext, err)
		}
		c, err := train.LoadCheckpoint(path, 0)
		if err != nil || c.Generation != 2 || c.Note != "" || c.Path != path || !sameWeights(c.Weights, ws[1]) {
			t.Fatalf("%s: complete pair: %+v, %v", ext, c, err)
		}
		if p, err := train.LoadCheckpoint(train.PrevPath(path), 0); err != nil || p.Generation != 1 || !sameWeights(p.Weights, ws[0]) {
			t.Fatalf("%s: previous pair: %+v, %v", ext, p, err)
		}

		// Torn: the state of generation 3 beside the weights of 2, as a
		// kill between the two writes leaves it.
		cp := func(from, to string) {
			b, err := os.ReadFile(from)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(to, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		other := filepath.Join(t.TempDir(), "o"+ext)
		if err := train.WriteCheckpoint(other, ws[2], sts[2], 3); err != nil {
			t.Fatal(err)
		}
		cp(train.StatePath(other), train.StatePath(path))
		c, err = train.LoadCheckpoint(path, 0)
		if err != nil || c.Generation != 1 || c.Path != train.PrevPath(path) || !sameWeights(c.Weights, ws[0]) {
			t.Fatalf("%s: torn pair with a previous one: %+v, %v", ext, c, err)
		}
		for _, want := range []string{"generation 2", "generation 3", train.PrevPath(path) + " (generation 1)"} {
			if !strings.Contains(c.Note, want) {
				t.Errorf("%s: note %q does not say %q", ext, c.Note, want)
			}
		}
		os.Remove(train.PrevPath(path))
		_, err = train.LoadCheckpoint(path, 0)
		if err == nil || !strings.Contains(err.Error(), "generation 2") || !strings.Contains(err.Error(), "generation 3") || !strings.Contains(err.Error(), "remove "+train.StatePath(path)) {
			t.Errorf("%s: torn pair without a previous one: %v", ext, err)
		}

		// Weights alone are a checkpoint without a state.
		os.Remove(train.StatePath(path))
		if c, err := train.LoadCheckpoint(path, 0); err != nil || c.State != nil || c.Generation != -1 {
			t.Errorf("%s: weights alone: %+v, %v", ext, c, err)
		}
	}
}

// A failed write of the weights puts the state back: the last checkpoint
// stays complete.
func TestCheckpointFailedWrite(t *testing.T) {
	g := loadModel(t, "mlp_classifier", graph.F64)
	tr := newTrainer(t, g, train.Config{Optimizer: train.Optimizer{Kind: train.Momentum}})
	data, err := tr.NewDataset(learnable(20, 1))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "w.safetensors")
	w1, st1 := fitOne(t, tr, data)
	if err := train.WriteCheckpoint(path, w1, st1, 1); err != nil {
		t.Fatal(err)
	}
	w2, st2 := fitOne(t, tr, data)
	// The weights cannot be written, after the state was: a name that
	// safetensors reserves (and .npz, which the digest uses, does not).
	bad := map[string]*tensor.Dense{}
	for k, v := range w2 {
		bad[k] = v
	}
	bad["__metadata__"] = w2["w1"]
	if err := train.WriteCheckpoint(path, bad, st2, 2); err == nil || !strings.Contains(err.Error(), "reserved") {
		t.Fatalf("weights with a reserved name: %v", err)
	}
	c, err := train.LoadCheckpoint(path, 0)
	if err != nil || c.Generation != 1 || c.Note != "" || !sameWeights(c.Weights, w1) {
		t.Fatalf("after a failed write: %+v, %v", c, err)
	}
}

// The counts of a training state are validated: negative, huge, or more
// epochs than steps are refused, naming the entry.
func TestStateCounts(t *testing.T) {
	g := loadModel(t, "mlp_classifier", graph.F64)
	tr := newTrainer(t, g, train.Config{Optimizer: train.Optimizer{Kind: train.Adam}})
	data, err := tr.NewDataset(learnable(20, 1))
	if err != nil {
		t.Fatal(err)
	}
	_, st := fitOne(t, tr, data)
	count := func(v int64) *tensor.Dense { return host.New([]int{1}, []int64{v}) }
	for _, c := range []struct {
		entry string
		v     int64
		want  string
	}{
		{"steps", -1, `"steps": expected a count from 0`},
		{"steps", 1<<63 - 1, `"steps": expected a count from 0 to 1099511627776, found 9223372036854775807`},
		{"epochs", 1<<63 - 1, `"epochs": expected a count`},
		{"epochs", 3, "3 epochs in 2 steps"},
		{"optimizer", -2, `"optimizer": expected a count from -1`},
	} {
		s := copyState(st)
		s[c.entry] = count(c.v)
		if _, err := tr.SetState(s); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s=%d: %v, want %q", c.entry, c.v, err, c.want)
		}
	}
}
