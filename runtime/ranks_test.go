package runtime_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"gorgonia.org/tensor"

	"multigpu/graph"
	"multigpu/internal/rankhub"
	"multigpu/passes/replicate"
	"multigpu/runtime"
)

// runRanks runs rg as p ranks at once, each its own executor, and returns
// every rank's outputs.
func runRanks(t *testing.T, rg *graph.Graph, p int, params, in map[string]*tensor.Dense) []map[string]*tensor.Dense {
	t.Helper()
	outs := make([]map[string]*tensor.Dense, p)
	errs := rankhub.New(p).Run(func(c *rankhub.Comm) error {
		e, err := runtime.New(rg, runtime.Options{Comm: c, Seed: 7, Threads: 1})
		if err != nil {
			return err
		}
		if err := e.SetParams(params); err != nil {
			return err
		}
		outs[c.Rank()], err = e.Run(context.Background(), in)
		return err
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	return outs
}

// TestRanksAgree runs every testdata model rewritten for P ranks x 2 GPUs
// as P executors joined by a fake Comm: every rank's outputs are the bits
// of one process running the P x 2 replicas, at batches smaller than the
// replica count (ranks with no replica running still take part), equal
// to it, and larger.
func TestRanksAgree(t *testing.T) {
	ps := []int{2, 3}
	for _, path := range models(t) {
		name := strings.TrimSuffix(filepath.Base(path), ".graph")
		if testing.Short() && name != "collectives" && name != "mlp_classifier" && name != "bn_classifier" {
			continue
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			g := loadModel(t, path)
			if len(g.Devices()) > 0 {
				t.Skip("already placed")
			}
			params := runtime.RandomParams(g, 1)
			_, bound := g.Batch()
			for _, p := range ps {
				opts := replicate.Options{GPUs: gpus(2), BatchNorm: replicate.BatchNormSync}
				one, _, err := replicate.Rewrite(g, replicate.Options{GPUs: gpus(2 * p), BatchNorm: replicate.BatchNormSync})
				if err != nil {
					t.Fatal(err)
				}
				opts.Ranks = p
				rg, _, err := replicate.Rewrite(g, opts)
				if err != nil {
					t.Fatal(err)
				}
				ref := newExec(t, one, params)
				bs := []int64{3, int64(2 * p), int64(4*p + 1)}
				if bound > 0 {
					bs = []int64{bound}
				}
				for _, b := range bs {
					in, err := runtime.RandomInputs(g, b, uint64(b))
					if err != nil {
						t.Fatal(err)
					}
					want := run(t, ref, in)
					for r, got := range runRanks(t, rg, p, params, in) {
						for _, o := range g.Outputs {
							if err := sameBits(want[o.Name], got[o.Name]); err != nil {
								t.Errorf("%d ranks, batch %d: rank %d: output %%%s: %v (against one process)", p, b, r, o.Name, err)
							}
						}
					}
				}
			}
		})
	}
}
