package train_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"gorgonia.org/tensor"

	"multigpu/graph"
	"multigpu/runtime/host"
	"multigpu/tensorio"
	"multigpu/train"
)

// Resuming from a checkpoint and its state continues exactly: 2 epochs and
// then 2 more from the checkpoint give the weights of 4 epochs in a row,
// for optimizers with moments, on one device and on replicas.
func TestResume(t *testing.T) {
	g := loadModel(t, "mlp_classifier", graph.F64)
	for _, kind := range []string{train.Momentum, train.Adam} {
		for _, gpus := range [][]int{nil, {0, 1, 2}} {
			cfg := train.Config{GPUs: gpus, Optimizer: train.Optimizer{Kind: kind, LR: 0.02}, Seed: 9}
			fit := train.FitConfig{Epochs: 4, Batch: 25}
			whole := newTrainer(t, g, cfg)
			data, err := whole.NewDataset(learnable(90, 3))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := whole.Fit(context.Background(), data, fit); err != nil {
				t.Fatal(err)
			}

			ckpt := filepath.Join(t.TempDir(), "w.safetensors")
			first := newTrainer(t, g, cfg)
			if _, err := first.Fit(context.Background(), data, train.FitConfig{Epochs: 2, Batch: 25, Checkpoint: ckpt}); err != nil {
				t.Fatal(err)
			}
			w, err := tensorio.ReadArchive(ckpt)
			if err != nil {
				t.Fatal(err)
			}
			st, err := tensorio.ReadArchive(train.StatePath(ckpt))
			if err != nil {
				t.Fatalf("no training state beside the checkpoint: %v", err)
			}
			second := newTrainer(t, g, cfg)
			if err := second.SetWeights(w); err != nil {
				t.Fatal(err)
			}
			if note, err := second.SetState(st); err != nil || note != "" {
				t.Fatalf("SetState: %q, %v", note, err)
			}
			hist, err := second.Fit(context.Background(), data, train.FitConfig{Epochs: 2, Batch: 25})
			if err != nil {
				t.Fatal(err)
			}
			if len(hist) != 2 || hist[0].Epoch != 3 || second.Epochs() != 4 || second.Steps() != whole.Steps() {
				t.Errorf("%s %v: resumed epochs %+v, %d epochs and %d steps; want epochs 3 and 4, %d steps", kind, gpus, hist, second.Epochs(), second.Steps(), whole.Steps())
			}
			want, got := whole.Weights(), second.Weights()
			for name := range want {
				a, b := host.Float64s(want[name]), host.Float64s(got[name])
				for i := range a {
					if a[i] != b[i] {
						t.Fatalf("%s %v: %s[%d] = %g resumed, %g in one run", kind, gpus, name, i, b[i], a[i])
					}
				}
			}
		}
	}
}

func TestStateErrors(t *testing.T) {
	g := loadModel(t, "mlp_classifier", graph.F64)
	tr := newTrainer(t, g, train.Config{Optimizer: train.Optimizer{Kind: train.Adam}})
	data, err := tr.NewDataset(learnable(20, 1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Fit(context.Background(), data, train.FitConfig{Epochs: 1, Batch: 10}); err != nil {
		t.Fatal(err)
	}
	st := tr.State()

	// Another optimizer resumes the step count, not the moments.
	sgd := newTrainer(t, g, train.Config{Optimizer: train.Optimizer{Kind: train.Momentum}})
	if note, err := sgd.SetState(st); err != nil || note != "the state was written by adam, not momentum: its moments start afresh" {
		t.Errorf("SetState from adam into momentum: %q, %v", note, err)
	}

	bad := map[string]string{
		"opt.m.nope": `training state: "opt.m.nope": the model has no param %nope`,
		"weird":      `training state: unknown entry "weird"`,
	}
	for name, want := range bad {
		s := copyState(st)
		s[name] = st["steps"]
		if _, err := tr.SetState(s); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("entry %s: %v, want %q", name, err, want)
		}
	}
	s := copyState(st)
	delete(s, "epochs")
	if _, err := tr.SetState(s); err == nil || err.Error() != `training state: missing "epochs"` {
		t.Errorf("missing epochs: %v", err)
	}
}

func copyState(st map[string]*tensor.Dense) map[string]*tensor.Dense {
	out := make(map[string]*tensor.Dense, len(st))
	for k, v := range st {
		out[k] = v
	}
	return out
}
