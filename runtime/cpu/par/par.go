// Package par runs the parallel loops of the CPU backend's kernels on a
// pool of threads shared by every device program of an executor, so that
// replicas running at once never use more cores than the pool was given.
//
// A loop is a Task with a number of independent pieces: the calling
// goroutine works through them and, when the pool has threads to spare,
// so do helper goroutines. The pool's helpers exist only while some
// program holds the pool open (Open, Close): no goroutine outlives the
// runs that use them. A loop makes no allocation, so that a compiled
// program runs allocation-free.
package par

import (
	"runtime"
	"sync"
	"sync/atomic"
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
	wg     sync.WaitGroup
}

// Pool is a set of threads. The zero Pool is not usable; call New.
type Pool struct {
	threads int
	tokens  chan *Scratch // one per thread that may run pieces
	jobs    chan *Job     // loops waiting for a helper
	running atomic.Int32  // helpers started and not told to stop

	mu      sync.Mutex
	open    int           // programs holding the pool open
	quit    chan struct{} // closed to stop the helpers
	helpers sync.WaitGroup
	work    func() // the helper loop, made once
}

// New returns a pool of threads threads (at least 1; 0 or less means the
// machine's cores, runtime.NumCPU).
func New(threads int) *Pool {
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	p := &Pool{threads: threads, tokens: make(chan *Scratch, threads), jobs: make(chan *Job, 4*threads)}
	for range threads {
		p.tokens <- &Scratch{}
	}
	p.work = p.helper
	return p
}

// Threads returns the number of threads of p.
func (p *Pool) Threads() int { return p.threads }

// Open starts p's helpers unless another caller holds p open already.
// Every Open must be matched by a Close.
func (p *Pool) Open() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.open++; p.open > 1 || p.threads == 1 {
		return
	}
	p.quit = make(chan struct{})
	for range p.threads - 1 {
		p.helpers.Add(1)
		go p.work()
	}
	p.running.Store(1)
}

// Close undoes an Open; the last Close stops the helpers and waits for
// them to exit.
func (p *Pool) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.open--; p.open > 0 || p.threads == 1 {
		return
	}
	p.running.Store(0)
	close(p.quit)
	p.helpers.Wait()
}

func (p *Pool) helper() {
	defer p.helpers.Done()
	for {
		select {
		case j := <-p.jobs:
			if j.next.Load() < j.pieces {
				s := <-p.tokens
				j.work(s)
				p.tokens <- s
			}
			j.wg.Done()
		case <-p.quit:
			return
		}
	}
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
// join while threads are free. A nil pool, or one that is not open, runs
// everything on the caller (a nil pool with j's own scratch).
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
	// Helpers that take the loop late find no piece left; the caller
	// waits for them to let go of j all the same.
	for range min(pieces, p.threads) - 1 {
		if p.running.Load() == 0 {
			break
		}
		j.wg.Add(1)
		select {
		case p.jobs <- j:
		default:
			j.wg.Done()
		}
	}
	j.work(s)
	p.tokens <- s
	j.wg.Wait()
	j.task = nil
}

// Chunks returns how many pieces of at least grain items each to split
// n items into: at most limit, at least 1.
func Chunks(n, grain, limit int) int {
	c := n / max(grain, 1)
	return min(max(c, 1), max(limit, 1))
}
