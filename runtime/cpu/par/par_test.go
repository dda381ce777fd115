package par

import (
	"flag"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

var _ = flag.Bool("update", false, "rewrite golden files (none in this package)")

// rendezvous is a loop of two pieces that each wait for the other: it
// finishes only when they run at once.
type rendezvous struct {
	arrived [2]chan struct{}
	ok      atomic.Int32
}

func (r *rendezvous) Do(i int, _ *Scratch) {
	close(r.arrived[i])
	select {
	case <-r.arrived[1-i]:
		r.ok.Add(1)
	case <-time.After(5 * time.Second):
	}
}

// An open pool of two threads runs two pieces at once, and no helper
// outlives the last Close.
func TestHelpersRunPiecesAtOnce(t *testing.T) {
	before := runtime.NumGoroutine()
	p := New(2)
	p.Open()
	p.Open()
	var j Job
	for round := 0; round < 3; round++ {
		r := &rendezvous{arrived: [2]chan struct{}{make(chan struct{}), make(chan struct{})}}
		p.Run(&j, 2, r)
		if r.ok.Load() != 2 {
			t.Fatalf("round %d: the two pieces did not run at once", round)
		}
	}
	p.Close()
	p.Close()
	for i := 0; i < 100 && runtime.NumGoroutine() > before; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines after Close, %d before Open", n, before)
	}
}

type counter struct{ hits []atomic.Int32 }

func (c *counter) Do(i int, s *Scratch) {
	s.F32(i + 1)[i] = 1
	c.hits[i].Add(1)
}

// Every piece runs exactly once, on pools open or not, and on none.
func TestEveryPieceOnce(t *testing.T) {
	for _, p := range []*Pool{nil, New(1), New(3)} {
		if p != nil {
			p.Open()
		}
		var j Job
		for _, n := range []int{0, 1, 7, 100} {
			c := &counter{hits: make([]atomic.Int32, n)}
			p.Run(&j, n, c)
			for i := range c.hits {
				if h := c.hits[i].Load(); h != 1 {
					t.Fatalf("pieces %d: piece %d ran %d times", n, i, h)
				}
			}
		}
		if p != nil {
			p.Close()
		}
	}
}

// A loop allocates nothing.
func TestRunAllocatesNothing(t *testing.T) {
	p := New(2)
	p.Open()
	defer p.Close()
	var j Job
	c := &counter{hits: make([]atomic.Int32, 16)}
	p.Run(&j, 16, c)
	if a := testing.AllocsPerRun(50, func() { p.Run(&j, 16, c) }); a > 0 {
		t.Errorf("%v allocations per loop, want 0", a)
	}
}

func TestChunks(t *testing.T) {
	for _, c := range [][4]int{{100, 10, 4, 4}, {5, 10, 4, 1}, {0, 10, 4, 1}, {35, 10, 8, 3}} {
		if got := Chunks(c[0], c[1], c[2]); got != c[3] {
			t.Errorf("Chunks(%d, %d, %d) = %d, want %d", c[0], c[1], c[2], got, c[3])
		}
	}
}
