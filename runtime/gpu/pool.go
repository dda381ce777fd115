package gpu

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// block is a piece of device memory from a pool, shared by the buffers
// that view it; it goes back to the pool when the last lets go.
type block struct {
	pool *pool
	ptr  Ptr
	size int64 // as allocated (rounded up)
	refs atomic.Int64
}

func (b *block) retain() { b.refs.Add(1) }

func (b *block) release() {
	switch n := b.refs.Add(-1); {
	case n == 0:
		b.pool.put(b)
	case n < 0:
		panic("gpu: block released more often than retained")
	}
}

// pool caches freed device memory of one stream for reuse by the same
// stream: a block freed while the stream's queued work still uses it is
// only handed out to later work on that stream, which runs after.
// Cached blocks go back to the driver when an allocation fails, or when
// the pool closes (after the stream is drained).
type pool struct {
	drv  Driver
	sync func() error // drains the stream before memory goes back to the driver

	mu     sync.Mutex
	free   map[int64][]Ptr // by size
	cached int64           // bytes in free
	inUse  int64           // bytes handed out
	peak   int64
	closed bool
}

func newPool(drv Driver, sync func() error) *pool {
	return &pool{drv: drv, sync: sync, free: map[int64][]Ptr{}}
}

// roundSize rounds an allocation up: to 512 bytes below 1 MiB, then to
// 1 MiB, so that a program's shapes recurring run after run hit the
// cache.
func roundSize(n int64) int64 {
	const small, large = 512, 1 << 20
	if n < large {
		return (n + small - 1) / small * small
	}
	return (n + large - 1) / large * large
}

// retries bounds the garbage collections get waits through for buffers
// nobody holds any more to come back, before reporting an allocation
// failure.
const retries = 3

// get returns a block of at least bytes, with one reference.
func (p *pool) get(bytes int64) (*block, error) {
	b := &block{pool: p}
	b.refs.Store(1)
	if bytes <= 0 {
		return b, nil
	}
	size := roundSize(bytes)
	b.size = size
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, fmt.Errorf("device is closed")
	}
	if l := p.free[size]; len(l) > 0 {
		b.ptr = l[len(l)-1]
		p.free[size] = l[:len(l)-1]
		p.cached -= size
		p.use(size)
		p.mu.Unlock()
		return b, nil
	}
	p.mu.Unlock()
	var err error
	for try := 0; ; try++ {
		if b.ptr, err = p.drv.Alloc(size); err == nil {
			break
		}
		if !errors.Is(err, ErrOutOfMemory) || try == retries {
			p.mu.Lock()
			inUse, cached := p.inUse, p.cached
			p.mu.Unlock()
			return nil, fmt.Errorf("allocating %s (%s in use by this device, %s cached): %w", formatBytes(size), formatBytes(inUse), formatBytes(cached), err)
		}
		// Buffers the runtime dropped come back through cleanups after a
		// collection; cached blocks go back to the driver.
		if try > 0 {
			runtime.GC()
			time.Sleep(time.Duration(try) * 10 * time.Millisecond)
		}
		if err := p.trim(); err != nil {
			return nil, err
		}
	}
	p.mu.Lock()
	p.use(size)
	p.mu.Unlock()
	return b, nil
}

// use counts size bytes handed out. p.mu is held.
func (p *pool) use(size int64) {
	p.inUse += size
	p.peak = max(p.peak, p.inUse)
}

// put takes a block back.
func (p *pool) put(b *block) {
	if b.size == 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.inUse -= b.size
	if p.closed {
		return // the memory went with the device
	}
	p.free[b.size] = append(p.free[b.size], b.ptr)
	p.cached += b.size
}

// trim gives every cached block back to the driver, after draining the
// stream.
func (p *pool) trim() error {
	p.mu.Lock()
	free := p.free
	p.free, p.cached = map[int64][]Ptr{}, 0
	p.mu.Unlock()
	if len(free) == 0 {
		return nil
	}
	if err := p.sync(); err != nil {
		return err
	}
	var errs []error
	for _, ptrs := range free {
		for _, ptr := range ptrs {
			if err := p.drv.Free(ptr); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// close trims the pool and stops caching: blocks that come back later
// are dropped with the device's memory.
func (p *pool) close() error {
	err := p.trim()
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	return err
}

// stats returns the bytes handed out now, at most so far, and cached.
func (p *pool) stats() (inUse, peak, cached int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.inUse, p.peak, p.cached
}

func formatBytes(b int64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(b)/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(b)/(1<<10))
	}
	return fmt.Sprintf("%d B", b)
}
