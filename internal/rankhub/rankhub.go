// Package rankhub connects stand-in ranks inside one process, for tests
// of code that runs across MPI ranks (runtime.Comm) without MPI: each
// rank is a goroutine holding one Comm of a Hub. Every collective is a
// round that all ranks join; the ranks must make the same calls in the
// same order, and a mismatch fails every rank's calls (where MPI would
// hang or mix the data up).
package rankhub

import (
	"fmt"
	"sync"
)

// Hub is the meeting point of n ranks.
type Hub struct {
	n      int
	mu     sync.Mutex
	cond   *sync.Cond
	cur    *round
	failed error
}

type round struct {
	kind    string
	root    int
	slots   [][]byte
	arrived int
	done    bool
}

// New returns a hub of n ranks.
func New(n int) *Hub {
	h := &Hub{n: n, cur: &round{slots: make([][]byte, n)}}
	h.cond = sync.NewCond(&h.mu)
	return h
}

// Comm returns rank r's end of the hub.
func (h *Hub) Comm(r int) *Comm { return &Comm{h: h, rank: r} }

// Abort fails every rank's calls, present and future, with err.
func (h *Hub) Abort(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.failed == nil {
		h.failed = err
	}
	h.cond.Broadcast()
}

// exchange deposits rank's b in the current round and returns every
// rank's, once all have come.
func (h *Hub) exchange(rank int, kind string, root int, b []byte) ([][]byte, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.failed != nil {
		return nil, h.failed
	}
	rd := h.cur
	if rd.arrived == 0 {
		rd.kind, rd.root = kind, root
	} else if rd.kind != kind || rd.root != root {
		h.failed = fmt.Errorf("rank %d calls %s (root %d) where another rank calls %s (root %d)", rank, kind, root, rd.kind, rd.root)
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

// Comm is one rank of a Hub; it implements runtime.Comm.
type Comm struct {
	h    *Hub
	rank int
}

// Rank returns the rank.
func (c *Comm) Rank() int { return c.rank }

// Size returns the number of ranks.
func (c *Comm) Size() int { return c.h.n }

// AllgatherBytes returns every rank's b, in rank order.
func (c *Comm) AllgatherBytes(b []byte) ([][]byte, error) {
	return c.h.exchange(c.rank, "allgather", -1, b)
}

// Bcast copies root's buf into every rank's buf; the lengths must agree.
func (c *Comm) Bcast(buf []byte, root int) error {
	if root < 0 || root >= c.h.n {
		return fmt.Errorf("rankhub: broadcast from rank %d of %d", root, c.h.n)
	}
	var send []byte
	if c.rank == root {
		send = buf
	}
	slots, err := c.h.exchange(c.rank, "bcast", root, send)
	if err != nil {
		return err
	}
	if len(slots[root]) != len(buf) {
		return fmt.Errorf("rankhub: rank %d receives %d bytes into %d", c.rank, len(slots[root]), len(buf))
	}
	copy(buf, slots[root])
	return nil
}

// Run calls f(comm) for every rank, each on its own goroutine, and
// returns their errors by rank. A rank whose f fails aborts the hub, so
// that the others do not wait for it.
func (h *Hub) Run(f func(c *Comm) error) []error {
	errs := make([]error, h.n)
	var wg sync.WaitGroup
	for r := range h.n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if errs[r] = f(h.Comm(r)); errs[r] != nil {
				h.Abort(fmt.Errorf("rank %d failed: %w", r, errs[r]))
			}
		}()
	}
	wg.Wait()
	return errs
}
