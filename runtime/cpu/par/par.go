// Package par runs the parallel loops of the CPU backend's kernels on a
// pool of threads shared by every device program of an executor, so that
// replicas running at once never use more cores than the pool was given.
//
// A loop is a Task with a number of independent pieces: the calling
// goroutine works through them and, when the pool has threads to spare,
// so do helper goroutines. The pool's helpers run while some program
// holds the pool open (Open, Close), polling for loops so that they join
// one at once, and exit a fraction of a millisecond after the last Close:
// no goroutine outlives the runs that use them by more. A loop makes no
// allocation, so that a compiled program runs allocation-free.
package par

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Task is a loop body: Do runs piece i of a loop (0 <= i < pieces), on any
// goroutine, concurrently with other pieces, with the scratch memory of
// the thread running it.
type Task interface {
	Do(i int, s *Scratch)
}

// Scratch is memory private to one thread of a pool, kept across loops.
type Scratch struct {
	f32 []float32
}

// F32 returns n float32s of s, contents undefined; they stay valid until
// the piece that asked returns.
func (s *Scratch) F32(n int) []float32 {
	if cap(s.f32) < n {
		s.f32 = make([]float32, n+n/4)
	}
	return s.f32[:n]
}

// Job is the state of one loop of a Task; a kernel keeps one per loop it
// runs, so that running it allocates nothing. A Job runs one loop at a
// time.
type Job struct {
	task   Task
	local  Scratch // for a pool of one thread
	pieces int64
	next   atomic.Int64
	// state counts the loop's offers to helpers not yet taken (low 32
	// bits) and the helpers that took one and still work on the loop
	// (high 32 bits). An offer is taken or withdrawn, never both: the
	// caller withdraws those left once it runs out of pieces, so it never
	// waits for a helper that has not started.
	state atomic.Int64
}

// Pool is a set of threads. The zero Pool is not usable; call New.
type Pool struct {
	threads int
	tokens  chan *Scratch // one per thread that may run pieces
	jobs    chan *Job     // offers of loops to helpers
	kick    chan struct{} // wakes parked helpers when the pool closes

	mu      sync.Mutex
	open    int // programs holding the pool open
	running int // helper goroutines
	work    func()
}

// Helpers wait for work by polling, yielding to other goroutines, for
// spinFor after their last piece, so that the loops of a running program
// find them awake: waking a parked goroutine's thread costs 50 to 100 µs
// on a virtual machine, and now and then more than a millisecond, which
// is most of a small program's run. Then they park. A helper whose pool
// has been closed for linger exits. Both are short: a polling helper
// yields only to this process's goroutines, and other processes on the
// same cores (MPI ranks, say) lose what it burns.
const (
	spinFor = 300 * time.Microsecond
	linger  = 300 * time.Microsecond
)

// New returns a pool of threads threads (at least 1; 0 or less means the
// machine's cores, runtime.NumCPU).
func New(threads int) *Pool {
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	p := &Pool{threads: threads, tokens: make(chan *Scratch, threads), jobs: make(chan *Job, 4*threads),
		kick: make(chan struct{}, threads)}
	for range threads {
		p.tokens <- &Scratch{}
	}
	p.work = p.helper
	return p
}

// Threads returns the number of threads of p.
func (p *Pool) Threads() int { return p.threads }

// Open starts p's helpers, unless they are running already. Every Open
// must be matched by a Close.
func (p *Pool) Open() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.open++
	for ; p.running < p.threads-1; p.running++ {
		go p.work()
	}
}

// Close undoes an Open. After the last Close the helpers exit once they
// have been idle for a short while (linger), so that programs run one
// after another keep them.
func (p *Pool) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.open--; p.open == 0 {
		for range p.running {
			select {
			case p.kick <- struct{}{}:
			default:
			}
		}
	}
}

// helper serves offers of loops until the pool has been closed and it
// has been idle for linger.
func (p *Pool) helper() {
	last := time.Now()
	for polls := 0; ; polls++ {
		select {
		case j := <-p.jobs:
			p.serve(j)
			last, polls = time.Now(), 0
			continue
		default:
		}
		if polls%64 != 63 {
			runtime.Gosched()
			continue
		}
		idle := time.Since(last)
		p.mu.Lock()
		closed := p.open == 0
		if closed && idle >= linger {
			p.running--
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
		if idle < spinFor || closed {
			runtime.Gosched()
			continue
		}
		// Idle while open: park until an offer or the last Close.
		select {
		case j := <-p.jobs:
			p.serve(j)
			last = time.Now()
		case <-p.kick:
			last = time.Now().Add(-linger + 50*time.Microsecond)
		}
	}
}

// serve takes j's offer, if it still stands, and runs pieces of j.
func (p *Pool) serve(j *Job) {
	for {
		st := j.state.Load()
		if st&(1<<32-1) == 0 {
			return // withdrawn: the loop is done, or is another loop now
		}
		if j.state.CompareAndSwap(st, st-1+1<<32) {
			break
		}
	}
	if j.next.Load() < j.pieces {
		s := <-p.tokens
		j.work(s)
		p.tokens <- s
	}
	j.state.Add(-1 << 32)
}

// work runs pieces of j until none is left.
func (j *Job) work(s *Scratch) {
	for {
		i := j.next.Add(1) - 1
		if i >= j.pieces {
			return
		}
		j.task.Do(int(i), s)
	}
}

// Run runs pieces 0 to pieces-1 of t and returns when all are done. The
// caller runs pieces itself, holding one of the pool's threads; helpers
// join while threads are free. A nil pool runs everything on the caller,
// with j's own scratch.
func (p *Pool) Run(j *Job, pieces int, t Task) {
	if pieces <= 0 {
		return
	}
	if p == nil {
		for i := range pieces {
			t.Do(i, &j.local)
		}
		return
	}
	s := <-p.tokens
	j.task, j.pieces = t, int64(pieces)
	j.next.Store(0)
	for range min(pieces, p.threads) - 1 {
		j.state.Add(1)
		select {
		case p.jobs <- j:
		default:
			j.state.Add(-1)
		}
	}
	j.work(s)
	p.tokens <- s
	// Withdraw the offers no helper took, then wait for those that did.
	for {
		st := j.state.Load()
		if j.state.CompareAndSwap(st, st&^(1<<32-1)) {
			break
		}
	}
	for spins := 0; j.state.Load() != 0; spins++ {
		if spins > 64 {
			runtime.Gosched()
		}
	}
	j.task = nil
}

// Chunks returns how many pieces of at least grain items each to split
// n items into: at most limit, at least 1.
func Chunks(n, grain, limit int) int {
	c := n / max(grain, 1)
	return min(max(c, 1), max(limit, 1))
}
