package train_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"gorgonia.org/tensor"

	"multigpu/graph"
	"multigpu/internal/rankhub"
	"multigpu/passes/replicate"
	"multigpu/runtime"
	"multigpu/tensorio"
	"multigpu/train"
)

// TestRanksTrain trains each classifier with Adam on P stand-in ranks
// (internal/rankhub) x 2 GPUs for 3 epochs of 20 samples at batch 8 (a
// last batch of 4, so that at 6 replicas rank 2's replicas get no sample
// and still join every collective), checkpointing on rank 0, and
// compares with one process running the P x 2 replicas: every rank's
// weights, state and every copy on its devices are that process's bits,
// as is rank 0's checkpoint; the other ranks write none. The trained
// weights are then resumed on the ranks for one more epoch, again the
// bits of one process resumed.
func TestRanksTrain(t *testing.T) {
	models := classifiers
	ps := []int{2, 3}
	combines := []replicate.CombineMode{replicate.CombineAuto, replicate.CombineMerge}
	if testing.Short() {
		models, ps, combines = models[:1], ps[1:], combines[:1]
	}
	const samples, batch = 20, 8
	opt := train.Optimizer{Kind: train.Adam, LR: 0.01}
	for _, model := range models {
		for _, p := range ps {
			for _, m := range combines {
				t.Run(fmt.Sprintf("%s/ranks%d/%s", model, p, m), func(t *testing.T) {
					g := loadModel(t, model, graph.F64)
					arrays := randomData(g, samples, 3)
					dir := t.TempDir()
					one := filepath.Join(dir, "one.npz")
					cfg := train.Config{Optimizer: opt, Seed: 4, GPUs: []int{0, 1, 2, 3, 4, 5}[:2*p], Combine: m}
					want, wantState := fitRanks(t, g, cfg, nil, arrays, one, 3)
					ranked := filepath.Join(dir, "ranks.npz")
					cfg.GPUs, cfg.Ranks = []int{0, 1}, p
					h := rankhub.New(p)
					got := make([]map[string]*tensor.Dense, p)
					gotState := make([]map[string]*tensor.Dense, p)
					errs := h.Run(func(c *rankhub.Comm) error {
						ckpt := ""
						if c.Rank() == 0 {
							ckpt = ranked
						}
						var err error
						got[c.Rank()], gotState[c.Rank()], err = fitRanksErr(g, cfg, c, arrays, ckpt, 3, nil)
						return err
					})
					for r, err := range errs {
						if err != nil {
							t.Fatalf("rank %d: %v", r, err)
						}
					}
					for r := range p {
						sameBits(t, fmt.Sprintf("rank %d's weights", r), got[r], want)
						sameBits(t, fmt.Sprintf("rank %d's state", r), gotState[r], wantState)
					}
					a, b := readFile(t, one), readFile(t, ranked)
					if !bytes.Equal(a, b) {
						t.Errorf("rank 0's checkpoint differs from one process's")
					}
					// Resume both from the checkpoint for one more epoch.
					ck, err := train.LoadCheckpoint(one, 0)
					if err != nil {
						t.Fatal(err)
					}
					cfg1 := cfg
					cfg1.GPUs, cfg1.Ranks = []int{0, 1, 2, 3, 4, 5}[:2*p], 0
					want, _ = fitRanks(t, g, cfg1, ck, arrays, "", 1)
					h = rankhub.New(p)
					errs = h.Run(func(c *rankhub.Comm) error {
						var err error
						got[c.Rank()], _, err = fitRanksErr(g, cfg, c, arrays, "", 1, ck)
						return err
					})
					for r, err := range errs {
						if err != nil {
							t.Fatalf("resumed, rank %d: %v", r, err)
						}
						sameBits(t, fmt.Sprintf("resumed, rank %d's weights", r), got[r], want)
					}
				})
			}
		}
	}
}

// fitRanks is fitRanksErr in one process.
func fitRanks(t *testing.T, g *graph.Graph, cfg train.Config, ck *train.Checkpoint, arrays map[string]*tensor.Dense, ckpt string, epochs int) (w, st map[string]*tensor.Dense) {
	t.Helper()
	w, st, err := fitRanksErr(g, cfg, nil, arrays, ckpt, epochs, ck)
	if err != nil {
		t.Fatal(err)
	}
	return w, st
}

// fitRanksErr trains g with cfg as one rank of c (nil: one process)
// from seeded weights, or from checkpoint ck, for epochs of batch 8 and
// returns the weights and state this rank reads back (every copy on its
// devices checked to be the same bits).
func fitRanksErr(g *graph.Graph, cfg train.Config, c runtime.Comm, arrays map[string]*tensor.Dense, ckpt string, epochs int, ck *train.Checkpoint) (w, st map[string]*tensor.Dense, err error) {
	if c != nil {
		cfg.Runtime.Comm = c
	}
	cfg.Runtime.Threads = 1
	tr, err := train.New(g, cfg)
	if err != nil {
		return nil, nil, err
	}
	weights := runtime.RandomParams(g, 6)
	if ck != nil {
		weights = ck.Weights
	}
	if err := tr.SetWeights(weights); err != nil {
		return nil, nil, err
	}
	if ck != nil {
		if _, err := tr.SetState(ck.State); err != nil {
			return nil, nil, err
		}
	}
	data, err := tr.NewDataset(arrays)
	if err != nil {
		return nil, nil, err
	}
	if _, err := tr.Fit(context.Background(), data, train.FitConfig{Epochs: epochs, Batch: 8, Checkpoint: ckpt}); err != nil {
		return nil, nil, err
	}
	copies, err := tr.DeviceCopies()
	if err != nil {
		return nil, nil, err
	}
	for name, by := range copies {
		var first []byte
		for d, v := range by {
			if r, ok := d.Rank(); ok && c != nil && r != c.Rank() {
				return nil, nil, fmt.Errorf("%s: a copy on another rank's %s", name, d)
			}
			b := npyBytes(v)
			if first == nil {
				first = b
			} else if !bytes.Equal(first, b) {
				return nil, nil, fmt.Errorf("%s: the copy on %s differs", name, d)
			}
		}
	}
	if w, err = tr.ReadWeights(); err != nil {
		return nil, nil, err
	}
	st, err = tr.ReadState()
	return w, st, err
}

func npyBytes(v *tensor.Dense) []byte {
	var b bytes.Buffer
	if err := tensorio.WriteNPY(&b, v); err != nil {
		panic(err)
	}
	return b.Bytes()
}

// sameBits fails unless got and want hold the same tensors, bit for bit.
func sameBits(t *testing.T, what string, got, want map[string]*tensor.Dense) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d entries, want %d", what, len(got), len(want))
	}
	for name, w := range want {
		g, ok := got[name]
		if !ok || !bytes.Equal(npyBytes(g), npyBytes(w)) {
			t.Errorf("%s: %s differs", what, name)
		}
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
