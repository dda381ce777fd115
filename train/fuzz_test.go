package train_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"maps"
	"slices"
	"testing"

	"gorgonia.org/tensor"

	"multigpu/graph"
	"multigpu/runtime"
	"multigpu/runtime/host"
	"multigpu/tensorio"
	"multigpu/train"
)

// FuzzState checks that SetState never panics on a training state file
// (the .npz bytes of NAME.state.npz), that what it accepts has counts in
// range, and that State gives back what it accepted. Seeds: the states
// that training with each optimizer writes.
//
//	go test ./train -run '^$' -fuzz FuzzState -fuzztime 5m
func FuzzState(f *testing.F) {
	g := loadModel(f, "mlp_classifier", graph.F64)
	var seeds []map[string]*tensor.Dense
	for _, kind := range []string{train.SGD, train.Momentum, train.Adam} {
		tr, err := train.New(g, train.Config{Optimizer: train.Optimizer{Kind: kind}})
		if err != nil {
			f.Fatal(err)
		}
		if err := tr.SetWeights(runtime.RandomParams(g, 1)); err != nil {
			f.Fatal(err)
		}
		data, err := tr.NewDataset(learnable(20, 1))
		if err != nil {
			f.Fatal(err)
		}
		if _, err := tr.Fit(context.Background(), data, train.FitConfig{Epochs: 2, Batch: 8}); err != nil {
			f.Fatal(err)
		}
		var buf bytes.Buffer
		if err := tensorio.WriteNPZ(&buf, tr.State()); err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, tr.State())
		f.Add(buf.Bytes(), uint8(slices.Index([]string{train.SGD, train.Momentum, train.Adam}, kind)))
	}
	counts := func(steps, epochs int64) []byte {
		return binary.LittleEndian.AppendUint64(binary.LittleEndian.AppendUint64(nil, uint64(steps)), uint64(epochs))
	}
	f.Add(counts(-1, 0), uint8(2))
	f.Add(counts(1<<63-1, 1), uint8(2))
	f.Add(counts(10, 1<<63-1), uint8(1))
	trainers := map[uint8]*train.Trainer{}
	// An input that is no archive gives, in its first 16 bytes, the step
	// and epoch counts of the seed state of the optimizer.
	f.Fuzz(func(t *testing.T, in []byte, kind uint8) {
		st, err := tensorio.ReadNPZ(bytes.NewReader(in), int64(len(in)))
		if err != nil {
			if len(in) < 16 {
				return
			}
			st = maps.Clone(seeds[kind%3])
			st["steps"] = host.New([]int{1}, []int64{int64(binary.LittleEndian.Uint64(in))})
			st["epochs"] = host.New([]int{1}, []int64{int64(binary.LittleEndian.Uint64(in[8:]))})
		}
		k := kind % 3
		tr := trainers[k]
		if tr == nil {
			if tr, err = train.New(g, train.Config{Optimizer: train.Optimizer{Kind: []string{train.SGD, train.Momentum, train.Adam}[k]}}); err != nil {
				t.Fatal(err)
			}
			if err := tr.SetWeights(runtime.RandomParams(g, 1)); err != nil {
				t.Fatal(err)
			}
			trainers[k] = tr
		}
		note, err := tr.SetState(st)
		if err != nil {
			return
		}
		if tr.Steps() < 0 || tr.Steps() > train.MaxCount || tr.Epochs() < 0 || tr.Epochs() > tr.Steps() {
			t.Fatalf("accepted %d steps, %d epochs", tr.Steps(), tr.Epochs())
		}
		back := tr.State()
		for _, name := range slices.Sorted(maps.Keys(back)) {
			if name == "optimizer" || note != "" && name != "steps" && name != "epochs" {
				// A state another optimizer wrote: its moments start
				// afresh, and the note says so.
				continue
			}
			if v, ok := st[name]; ok && !slices.Equal(host.Float64s(v), host.Float64s(back[name])) {
				t.Fatalf("%s: accepted %v, gives back %v", name, host.Float64s(v), host.Float64s(back[name]))
			}
		}
	})
}
