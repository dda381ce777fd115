package runtime_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"gorgonia.org/tensor"

	"multigpu/graph"
	"multigpu/passes/replicate"
	"multigpu/runtime"
)

// hub connects fake ranks in one process: every collective is a round
// that all ranks join, and the ranks must make the same calls in the
// same order (a mismatch fails every rank, as a hang would under MPI).
type hub struct {
	n      int
	mu     sync.Mutex
	cond   *sync.Cond
	cur    *round
	failed error
}

type round struct {
	kind    string
	slots   [][]byte
	arrived int
	done    bool
}

func newHub(n int) *hub {
	h := &hub{n: n, cur: &round{slots: make([][]byte, n)}}
	h.cond = sync.NewCond(&h.mu)
	return h
}

// exchange deposits rank's b in the current round and returns every
// rank's, once all have come.
func (h *hub) exchange(rank int, kind string, b []byte) ([][]byte, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.failed != nil {
		return nil, h.failed
	}
	rd := h.cur
	if rd.arrived == 0 {
		rd.kind = kind
	} else if rd.kind != kind {
		h.failed = fmt.Errorf("rank %d calls %s where another rank calls %s", rank, kind, rd.kind)
		h.cond.Broadcast()
		return nil, h.failed
	}
	rd.slots[rank] = append([]byte(nil), b...)
	rd.arrived++
	if rd.arrived == h.n {
		rd.done = true
		h.cur = &round{slots: make([][]byte, h.n)}
		h.cond.Broadcast()
	}
	for !rd.done && h.failed == nil {
		h.cond.Wait()
	}
	if !rd.done {
		return nil, h.failed
	}
	return rd.slots, nil
}

// abort fails every rank's calls, present and future.
func (h *hub) abort(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.failed == nil {
		h.failed = err
	}
	h.cond.Broadcast()
}

// fakeComm is one rank of a hub.
type fakeComm struct {
	h    *hub
	rank int
}

func (c fakeComm) Rank() int { return c.rank }
func (c fakeComm) Size() int { return c.h.n }
func (c fakeComm) AllgatherBytes(b []byte) ([][]byte, error) {
	return c.h.exchange(c.rank, "allgather", b)
}
func (c fakeComm) Bcast(buf []byte, root int) error {
	parts, err := c.h.exchange(c.rank, fmt.Sprintf("bcast from %d", root), buf)
	if err != nil {
		return err
	}
	if len(parts[root]) != len(buf) {
		return fmt.Errorf("bcast: %d bytes from the root, %d here", len(parts[root]), len(buf))
	}
	copy(buf, parts[root])
	return nil
}

// runRanks runs rg as p ranks at once, each its own executor, and returns
// every rank's outputs.
func runRanks(t *testing.T, rg *graph.Graph, p int, params, in map[string]*tensor.Dense) []map[string]*tensor.Dense {
	t.Helper()
	h := newHub(p)
	outs := make([]map[string]*tensor.Dense, p)
	errs := make([]error, p)
	var wg sync.WaitGroup
	for r := range p {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				if errs[r] != nil {
					h.abort(fmt.Errorf("rank %d failed", r))
				}
			}()
			e, err := runtime.New(rg, runtime.Options{Comm: fakeComm{h, r}, Seed: 7, Threads: 1})
			if err != nil {
				errs[r] = err
				return
			}
			if err := e.SetParams(params); err != nil {
				errs[r] = err
				return
			}
			outs[r], errs[r] = e.Run(context.Background(), in)
		}()
	}
	wg.Wait()
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
