//go:build cgo

package gpu

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
	"unsafe"

	"multigpu/graph"
	"multigpu/runtime/gpu/kernels"
)

// hostDriver is a Driver on the CPU: memory outside the Go heap, and
// streams that run their work in order on a goroutine of their own, after
// the call that queued it has returned, as a GPU's streams do. Kernels are
// the host emulation's (package kernels), products a column-major gemm
// written out below.
type hostDriver struct {
	name   string
	h      *kernels.Host
	jitter bool  // streams sleep a random while before each piece of work
	limit  int64 // bytes Alloc may hand out at once; 0: no limit

	mu     sync.Mutex
	live   map[Ptr]int64
	used   int64
	allocs int
}

func newHostDriver(name string) *hostDriver {
	return &hostDriver{name: name, h: kernels.NewHost(3, 4), live: map[Ptr]int64{}}
}

func (d *hostDriver) String() string { return d.name }

func (d *hostDriver) Alloc(bytes int64) (Ptr, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.limit > 0 && d.used+bytes > d.limit {
		return 0, fmt.Errorf("%d bytes with %d of %d in use: %w", bytes, d.used, d.limit, ErrOutOfMemory)
	}
	p, err := d.h.Alloc(bytes)
	if err != nil {
		return 0, err
	}
	d.live[Ptr(p)] = bytes
	d.used += bytes
	d.allocs++
	return Ptr(p), nil
}

func (d *hostDriver) Free(p Ptr) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	n, ok := d.live[p]
	if !ok {
		return fmt.Errorf("free of %#x, which is not allocated", p)
	}
	delete(d.live, p)
	d.used -= n
	d.h.Free(uint64(p))
	return nil
}

func (d *hostDriver) stats() (used int64, allocs int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.used, d.allocs
}

// check reports whether [p, p+n) lies in one live allocation.
func (d *hostDriver) check(p Ptr, n int64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for base, size := range d.live {
		if p >= base && p+Ptr(n) <= base+Ptr(size) {
			return nil
		}
	}
	return fmt.Errorf("%d bytes at %#x are not in device memory", n, p)
}

func (d *hostDriver) bytes(p Ptr, n int64) []byte { return d.h.Bytes(uint64(p), n) }

func (d *hostDriver) NewStream() (Stream, error) {
	s := &hostStream{drv: d, work: make(chan func() error, 64), done: make(chan struct{})}
	go s.loop()
	return s, nil
}

func (d *hostDriver) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.live) > 0 {
		return fmt.Errorf("%s closed with %d allocations (%d bytes) live", d.name, len(d.live), d.used)
	}
	return nil
}

// hostStream runs its work in order on its own goroutine.
type hostStream struct {
	drv  *hostDriver
	work chan func() error
	done chan struct{}

	qmu    sync.Mutex // guards closed and sending on work
	closed bool
	emu    sync.Mutex
	err    error // the first error of queued work
}

func (s *hostStream) loop() {
	defer close(s.done)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0))
	for w := range s.work {
		if s.drv.jitter {
			time.Sleep(time.Duration(rng.IntN(200)) * time.Microsecond)
		}
		if err := w(); err != nil {
			s.emu.Lock()
			if s.err == nil {
				s.err = err
			}
			s.emu.Unlock()
		}
	}
}

func (s *hostStream) queue(w func() error) error {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	if s.closed {
		return errors.New("stream is closed")
	}
	s.work <- w
	return nil
}

// wait queues a marker and waits for it: the work before it is done.
func (s *hostStream) wait() error {
	ch := make(chan struct{})
	if err := s.queue(func() error { close(ch); return nil }); err != nil {
		return err
	}
	<-ch
	s.emu.Lock()
	defer s.emu.Unlock()
	return s.err
}

func (s *hostStream) Upload(dst Ptr, src []byte) error {
	c := append([]byte(nil), src...)
	return s.queue(func() error {
		if err := s.drv.check(dst, int64(len(c))); err != nil {
			return fmt.Errorf("upload: %v", err)
		}
		copy(s.drv.bytes(dst, int64(len(c))), c)
		return nil
	})
}

func (s *hostStream) Download(dst []byte, src Ptr) error {
	n := int64(len(dst))
	if err := s.queue(func() error {
		if err := s.drv.check(src, n); err != nil {
			return fmt.Errorf("download: %v", err)
		}
		copy(dst, s.drv.bytes(src, n))
		return nil
	}); err != nil {
		return err
	}
	return s.wait()
}

func (s *hostStream) Copy(dst, src Ptr, n int64) error {
	return s.CopyPeer(dst, s.drv, src, n)
}

func (s *hostStream) CopyPeer(dst Ptr, from Driver, src Ptr, n int64) error {
	f := from.(*hostDriver)
	return s.queue(func() error {
		if err := f.check(src, n); err != nil {
			return fmt.Errorf("copy source: %v", err)
		}
		if err := s.drv.check(dst, n); err != nil {
			return fmt.Errorf("copy destination: %v", err)
		}
		copy(s.drv.bytes(dst, n), f.bytes(src, n))
		return nil
	})
}

func (s *hostStream) Launch(kernel string, threads int64, args []uint64) error {
	a := append([]uint64(nil), args...)
	return s.queue(func() error { return s.drv.h.Launch(kernel, threads, a) })
}

func (s *hostStream) Gemm(g *Gemm) error {
	c := *g
	return s.queue(func() error {
		switch c.DType {
		case graph.F32:
			return gemm[float32](s.drv, &c)
		case graph.F64:
			return gemm[float64](s.drv, &c)
		}
		return fmt.Errorf("gemm on %s", c.DType)
	})
}

// hostEvent is done when its channel is closed.
type hostEvent struct{ ch chan struct{} }

func (e *hostEvent) Close() error { return nil }

func (s *hostStream) Record() (Event, error) {
	e := &hostEvent{ch: make(chan struct{})}
	return e, s.queue(func() error { close(e.ch); return nil })
}

func (s *hostStream) Wait(e Event) error {
	he := e.(*hostEvent)
	return s.queue(func() error { <-he.ch; return nil })
}

func (s *hostStream) Sync() error { return s.wait() }

func (s *hostStream) Close() error {
	err := s.wait()
	s.qmu.Lock()
	if !s.closed {
		s.closed = true
		close(s.work)
	}
	s.qmu.Unlock()
	<-s.done
	return err
}

// gemm is cuBLAS's gemmStridedBatched (column-major), accumulating each
// element's products in order of k.
func gemm[T float32 | float64](d *hostDriver, g *Gemm) error {
	var zero T
	es := int64(unsafe.Sizeof(zero))
	// rows and cols of the stored matrices
	ar, ac, br, bc := g.M, g.K, g.K, g.N
	if g.TransA {
		ar, ac = ac, ar
	}
	if g.TransB {
		br, bc = bc, br
	}
	span := func(p Ptr, ld, rows, cols int, stride int64) ([]T, error) {
		if ld < max(1, rows) {
			return nil, fmt.Errorf("leading dimension %d < %d rows", ld, rows)
		}
		n := stride*int64(g.Batch-1) + int64(ld)*int64(cols-1) + int64(rows)
		if err := d.check(p, n*es); err != nil {
			return nil, err
		}
		return unsafe.Slice((*T)(unsafe.Pointer(&d.bytes(p, n*es)[0])), n), nil
	}
	a, err := span(g.A, g.LDA, ar, ac, g.StrideA)
	if err != nil {
		return fmt.Errorf("gemm A: %v", err)
	}
	b, err := span(g.B, g.LDB, br, bc, g.StrideB)
	if err != nil {
		return fmt.Errorf("gemm B: %v", err)
	}
	c, err := span(g.C, g.LDC, g.M, g.N, g.StrideC)
	if err != nil {
		return fmt.Errorf("gemm C: %v", err)
	}
	at := func(x []T, ld int, trans bool, i, j int) T {
		if trans {
			return x[j+i*ld]
		}
		return x[i+j*ld]
	}
	for bi := int64(0); bi < int64(g.Batch); bi++ {
		ab, bb, cb := a[bi*g.StrideA:], b[bi*g.StrideB:], c[bi*g.StrideC:]
		for j := 0; j < g.N; j++ {
			for i := 0; i < g.M; i++ {
				var acc T
				for l := 0; l < g.K; l++ {
					acc += at(ab, g.LDA, g.TransA, i, l) * at(bb, g.LDB, g.TransB, l, j)
				}
				if g.Beta != 0 {
					acc += cb[i+j*g.LDC]
				}
				cb[i+j*g.LDC] = acc
			}
		}
	}
	return nil
}
