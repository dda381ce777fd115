//go:build cudart

package cuda

/*
#cgo LDFLAGS: -lcublas -lcuda
#cgo linux CFLAGS: -I/usr/local/cuda/include
#cgo linux LDFLAGS: -L/usr/local/cuda/lib64
#include <cuda.h>
#include <cublas_v2.h>
#include <stdint.h>

static int blas_create(cublasHandle_t *h, CUstream s, int tf32) {
	int st = cublasCreate(h);
	if (st != CUBLAS_STATUS_SUCCESS) return st;
	if (tf32 && (st = cublasSetMathMode(*h, CUBLAS_TF32_TENSOR_OP_MATH)) != CUBLAS_STATUS_SUCCESS) {
		cublasDestroy(*h);
		return st;
	}
	st = cublasSetStream(*h, (cudaStream_t)s);
	if (st != CUBLAS_STATUS_SUCCESS) cublasDestroy(*h);
	return st;
}

// gemm is the strided batched product of gpu.Gemm, in column-major order;
// addresses are device pointers, alpha is 1 and beta 0 or 1.
static int gemm(cublasHandle_t h, int dbl, int ta, int tb, int m, int n, int k,
		unsigned long long a, int lda, long long sa,
		unsigned long long b, int ldb, long long sb, int accumulate,
		unsigned long long c, int ldc, long long sc, int batch) {
	cublasOperation_t opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
	if (dbl) {
		const double one = 1, beta = accumulate ? 1 : 0;
		return cublasDgemmStridedBatched(h, opa, opb, m, n, k, &one,
			(const double *)(uintptr_t)a, lda, sa, (const double *)(uintptr_t)b, ldb, sb,
			&beta, (double *)(uintptr_t)c, ldc, sc, batch);
	}
	const float one = 1, beta = accumulate ? 1 : 0;
	return cublasSgemmStridedBatched(h, opa, opb, m, n, k, &one,
		(const float *)(uintptr_t)a, lda, sa, (const float *)(uintptr_t)b, ldb, sb,
		&beta, (float *)(uintptr_t)c, ldc, sc, batch);
}
*/
import "C"

import (
	"errors"
	"fmt"
	"sync"
	"unsafe"

	"gorgonia.org/cu"

	"multigpu/graph"
	"multigpu/runtime/gpu"
)

// stagingCache bounds the pinned host memory a stream keeps for reuse.
const stagingCache = 256 << 20

// stream is one logical device's stream, with its own cuBLAS handle and
// pinned host buffers through which transfers go: an upload copies into a
// pinned buffer and queues the copy to the device, so that it overlaps
// with the host's work and with other streams.
type stream struct {
	g *GPU
	s cu.Stream

	mu      sync.Mutex // guards everything below
	blas    C.cublasHandle_t
	free    map[int64][]unsafe.Pointer // pinned buffers by size
	cached  int64
	pending []staged // pinned buffers of uploads in flight
	closed  bool
}

// staged is a pinned buffer that an upload still reads until ev.
type staged struct {
	p    unsafe.Pointer
	size int64
	ev   cu.Event
}

// NewStream returns a new non-blocking stream on g with its own cuBLAS
// handle (in TF32 math mode when g was opened with TF32).
func (g *GPU) NewStream() (gpu.Stream, error) {
	st := &stream{g: g, free: map[int64][]unsafe.Pointer{}}
	err := g.with(func() error {
		var err error
		if st.s, err = cu.MakeStream(cu.NonBlocking); err != nil {
			return err
		}
		tf32 := C.int(0)
		if g.tf32 {
			tf32 = 1
		}
		if r := C.blas_create(&st.blas, st.cstream(), tf32); r != 0 {
			st.s.Destroy()
			return fmt.Errorf("cuBLAS: status %d", int(r))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: creating a stream: %v", g, err)
	}
	return st, nil
}

// cstream returns the stream as a CUstream (Open checked the sizes).
func (s *stream) cstream() C.CUstream { return *(*C.CUstream)(unsafe.Pointer(&s.s)) }

func roundPinned(n int64) int64 {
	const page, large = 4096, 1 << 20
	if n < large {
		return (n + page - 1) / page * page
	}
	return (n + large - 1) / large * large
}

// pinned returns a pinned buffer of at least n bytes, or nil when pinned
// memory is exhausted. s.mu is held; the context is current.
func (s *stream) pinned(n int64) (unsafe.Pointer, int64) {
	s.reclaim()
	size := roundPinned(n)
	if l := s.free[size]; len(l) > 0 {
		p := l[len(l)-1]
		s.free[size] = l[:len(l)-1]
		s.cached -= size
		return p, size
	}
	var p unsafe.Pointer
	if C.cuMemHostAlloc(&p, C.size_t(size), 0) != C.CUDA_SUCCESS {
		s.trimPinned()
		if C.cuMemHostAlloc(&p, C.size_t(size), 0) != C.CUDA_SUCCESS {
			return nil, 0
		}
	}
	return p, size
}

// putPinned takes a pinned buffer back. s.mu is held; the context is
// current.
func (s *stream) putPinned(p unsafe.Pointer, size int64) {
	if s.cached+size > stagingCache || s.closed {
		C.cuMemFreeHost(p)
		return
	}
	s.free[size] = append(s.free[size], p)
	s.cached += size
}

// trimPinned frees the cached pinned buffers. s.mu is held; the context
// is current.
func (s *stream) trimPinned() {
	for _, l := range s.free {
		for _, p := range l {
			C.cuMemFreeHost(p)
		}
	}
	s.free, s.cached = map[int64][]unsafe.Pointer{}, 0
}

// reclaim takes back the pinned buffers of finished uploads. s.mu is
// held; the context is current.
func (s *stream) reclaim() {
	kept := s.pending[:0]
	for _, st := range s.pending {
		if st.ev.Query() != nil {
			kept = append(kept, st)
			continue
		}
		cu.DestroyEvent(&st.ev)
		s.putPinned(st.p, st.size)
	}
	clear(s.pending[len(kept):])
	s.pending = kept
}

// Upload copies src through a pinned buffer, queued on the stream; when
// pinned memory runs out it waits for the stream and copies at once.
func (s *stream) Upload(dst gpu.Ptr, src []byte) error {
	n := int64(len(src))
	return s.g.with(func() error {
		s.mu.Lock()
		defer s.mu.Unlock()
		p, size := s.pinned(n)
		if p == nil {
			if err := s.s.Synchronize(); err != nil {
				return err
			}
			return cu.MemcpyHtoD(cu.DevicePtr(dst), unsafe.Pointer(&src[0]), n)
		}
		copy(unsafe.Slice((*byte)(p), n), src)
		if err := cu.MemcpyHtoDAsync(cu.DevicePtr(dst), p, n, s.s); err != nil {
			s.putPinned(p, size)
			return err
		}
		ev, err := cu.MakeEvent(cu.DisableTiming)
		if err == nil {
			if err = ev.Record(s.s); err != nil {
				cu.DestroyEvent(&ev)
			}
		}
		if err != nil {
			// The copy cannot be tracked: wait for it.
			err = s.s.Synchronize()
			s.putPinned(p, size)
			return err
		}
		s.pending = append(s.pending, staged{p: p, size: size, ev: ev})
		return nil
	})
}

// Download copies src through a pinned buffer after the stream's work.
func (s *stream) Download(dst []byte, src gpu.Ptr) error {
	n := int64(len(dst))
	return s.g.with(func() error {
		s.mu.Lock()
		defer s.mu.Unlock()
		p, size := s.pinned(n)
		if p == nil {
			if err := s.s.Synchronize(); err != nil {
				return err
			}
			return cu.MemcpyDtoH(unsafe.Pointer(&dst[0]), cu.DevicePtr(src), n)
		}
		defer s.putPinned(p, size)
		if err := cu.MemcpyDtoHAsync(p, cu.DevicePtr(src), n, s.s); err != nil {
			return err
		}
		if err := s.s.Synchronize(); err != nil {
			return err
		}
		copy(dst, unsafe.Slice((*byte)(p), n))
		return nil
	})
}

// Copy copies within g's memory, on the stream.
func (s *stream) Copy(dst, src gpu.Ptr, n int64) error {
	return s.g.with(func() error { return cu.MemcpyDtoDAsync(cu.DevicePtr(dst), cu.DevicePtr(src), n, s.s) })
}

// CopyPeer copies from another GPU's memory, on the stream (through the
// host when the GPUs have no peer access).
func (s *stream) CopyPeer(dst gpu.Ptr, from gpu.Driver, src gpu.Ptr, n int64) error {
	f, ok := from.(*GPU)
	if !ok {
		return fmt.Errorf("copy from %s, which is not a CUDA GPU", from)
	}
	return s.g.with(func() error {
		return cu.MemcpyPeerAsync(cu.DevicePtr(dst), s.g.ctx, cu.DevicePtr(src), f.ctx, n, s.s)
	})
}

// Launch runs a kernel of package kernels over threads work items.
func (s *stream) Launch(kernel string, threads int64, args []uint64) error {
	fn, ok := s.g.fns[kernel]
	if !ok {
		return fmt.Errorf("no kernel %s", kernel)
	}
	params := make([]unsafe.Pointer, len(args))
	for i := range args {
		params[i] = unsafe.Pointer(&args[i])
	}
	return s.g.with(func() error {
		return fn.Launch(s.g.grid(threads), 1, 1, launchBlock, 1, 1, 0, s.s, params)
	})
}

// Gemm runs a strided batched product with cuBLAS, on the stream.
func (s *stream) Gemm(g *gpu.Gemm) error {
	dbl := C.int(0)
	switch g.DType {
	case graph.F32:
	case graph.F64:
		dbl = 1
	default:
		return fmt.Errorf("gemm on %s", g.DType)
	}
	flag := func(b bool) C.int {
		if b {
			return 1
		}
		return 0
	}
	if g.Beta != 0 && g.Beta != 1 {
		return fmt.Errorf("gemm with beta %v (0 or 1 only)", g.Beta)
	}
	return s.g.with(func() error {
		s.mu.Lock()
		defer s.mu.Unlock()
		r := C.gemm(s.blas, dbl, flag(g.TransA), flag(g.TransB), C.int(g.M), C.int(g.N), C.int(g.K),
			C.ulonglong(g.A), C.int(g.LDA), C.longlong(g.StrideA),
			C.ulonglong(g.B), C.int(g.LDB), C.longlong(g.StrideB), flag(g.Beta == 1),
			C.ulonglong(g.C), C.int(g.LDC), C.longlong(g.StrideC), C.int(g.Batch))
		if r != 0 {
			return fmt.Errorf("cuBLAS gemm %dx%dx%d (batch %d): status %d", g.M, g.N, g.K, g.Batch, int(r))
		}
		return nil
	})
}

// event is a CUDA event of g.
type event struct {
	g  *GPU
	ev cu.Event
}

// Close destroys the event (waits queued on it still hold).
func (e *event) Close() error {
	return e.g.with(func() error { return cu.DestroyEvent(&e.ev) })
}

// Record records an event after the stream's queued work.
func (s *stream) Record() (gpu.Event, error) {
	e := &event{g: s.g}
	err := s.g.with(func() error {
		var err error
		if e.ev, err = cu.MakeEvent(cu.DisableTiming); err != nil {
			return err
		}
		if err := e.ev.Record(s.s); err != nil {
			cu.DestroyEvent(&e.ev)
			return err
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return e, nil
}

// Wait makes the stream's later work wait for e (of any GPU).
func (s *stream) Wait(e gpu.Event) error {
	ev, ok := e.(*event)
	if !ok {
		return fmt.Errorf("wait on a %T, not a CUDA event", e)
	}
	return s.g.with(func() error { return s.s.Wait(ev.ev, 0) })
}

// Sync waits for the stream's work.
func (s *stream) Sync() error {
	return s.g.with(func() error { return s.s.Synchronize() })
}

// Close waits for the stream's work and releases the stream, its cuBLAS
// handle and its pinned buffers.
func (s *stream) Close() error {
	return s.g.with(func() error {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.closed {
			return nil
		}
		s.closed = true
		err := s.s.Synchronize()
		for _, st := range s.pending {
			cu.DestroyEvent(&st.ev)
			C.cuMemFreeHost(st.p)
		}
		s.pending = nil
		s.trimPinned()
		if r := C.cublasDestroy(s.blas); r != 0 {
			err = errors.Join(err, fmt.Errorf("destroying the cuBLAS handle: status %d", int(r)))
		}
		if derr := s.s.Destroy(); derr != nil {
			err = errors.Join(err, derr)
		}
		return err
	})
}
