//go:build mpi

package mpi

/*
#cgo pkg-config: ompi-c
#include <mpi.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>

// Signal handlers as they were before MPI_Init_thread, restored after it
// (OpenMPI installs its own for SIGSEGV, SIGBUS, SIGFPE, SIGABRT).
static struct sigaction mpi_saved[65];

static void mpi_save_signals(void) {
	for (int s = 1; s < 65; s++) {
		memset(&mpi_saved[s], 0, sizeof mpi_saved[s]);
		sigaction(s, NULL, &mpi_saved[s]);
	}
}

static int mpi_restore_signals(void) {
	int n = 0;
	for (int s = 1; s < 65; s++) {
		struct sigaction now;
		memset(&now, 0, sizeof now);
		if (sigaction(s, NULL, &now) != 0) {
			continue;
		}
		if (now.sa_handler != mpi_saved[s].sa_handler || now.sa_flags != mpi_saved[s].sa_flags) {
			sigaction(s, &mpi_saved[s], NULL);
			n++;
		}
	}
	return n;
}

static int mpi_init(int *provided, int *restored) {
	mpi_save_signals();
	int rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, provided);
	*restored = mpi_restore_signals();
	if (rc != MPI_SUCCESS) {
		return rc;
	}
	return MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
}

static int mpi_rank(int *r) { return MPI_Comm_rank(MPI_COMM_WORLD, r); }
static int mpi_size(int *s) { return MPI_Comm_size(MPI_COMM_WORLD, s); }
static int mpi_barrier(void) { return MPI_Barrier(MPI_COMM_WORLD); }
static int mpi_finalize(void) { return MPI_Finalize(); }
static void mpi_abort(int code) { MPI_Abort(MPI_COMM_WORLD, code); }

static MPI_Datatype mpi_type(int t) {
	switch (t) {
	case 0: return MPI_FLOAT;
	case 1: return MPI_DOUBLE;
	case 2: return MPI_INT64_T;
	}
	return MPI_BYTE;
}

static MPI_Op mpi_op(int o) {
	switch (o) {
	case 1: return MPI_MAX;
	case 2: return MPI_MIN;
	}
	return MPI_SUM;
}

static int mpi_allreduce(const void *send, void *recv, int count, int t, int o) {
	return MPI_Allreduce(send, recv, count, mpi_type(t), mpi_op(o), MPI_COMM_WORLD);
}

static int mpi_allgather(const void *send, int count, void *recv, int t) {
	return MPI_Allgather(send, count, mpi_type(t), recv, count, mpi_type(t), MPI_COMM_WORLD);
}

static int mpi_allgatherv(const void *send, int count, void *recv, const int *counts, const int *displs) {
	return MPI_Allgatherv(send, count, MPI_BYTE, recv, counts, displs, MPI_BYTE, MPI_COMM_WORLD);
}

static int mpi_bcast(void *buf, int count, int root) {
	return MPI_Bcast(buf, count, MPI_BYTE, root, MPI_COMM_WORLD);
}

static void mpi_error_string(int code, char *buf, int *len) {
	if (MPI_Error_string(code, buf, len) != MPI_SUCCESS) {
		*len = 0;
	}
}
*/
import "C"

import (
	"errors"
	"fmt"
	"math"
	goruntime "runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// Enabled reports whether the binary was built with MPI (-tags mpi).
const Enabled = true

// ErrNotBuilt is what Init returns in a binary built without the mpi tag
// (never, in this build).
var ErrNotBuilt = errors.New("built without MPI: build with `go build -tags mpi` (needs Debian's libopenmpi-dev)")

// ErrFinalized is returned by a call after Finalize.
var ErrFinalized = errors.New("mpi: finalized")

// Comm is MPI_COMM_WORLD of an initialised MPI job. Its methods are safe
// for concurrent use: each call runs on the one locked OS thread that
// initialised MPI, one at a time, in the order they arrive.
type Comm struct {
	calls      chan func()
	rank, size int
	// Restored is how many signal handlers MPI_Init_thread changed and
	// Init put back.
	Restored int

	mu      sync.Mutex
	done    bool
	timeout atomic.Int64               // nanoseconds; 0: calls wait as long as MPI does
	stalled atomic.Pointer[StallError] // set when a call outwaited timeout
}

// StallError is what a call returns when it has not completed within the
// Comm's timeout (SetTimeout): another rank stopped, hangs, or is far
// behind. MPI's thread is still inside the call, so the Comm is of no
// more use (every later call returns the same error) and the job must
// end (Abort).
type StallError struct {
	Call       string
	Rank, Size int
	Waited     time.Duration
}

// Error names the call, the rank and how long it waited.
func (e *StallError) Error() string {
	return fmt.Sprintf("mpi: %s (rank %d of %d) has not completed after %s: another rank has stopped, hangs or is far behind", e.Call, e.Rank, e.Size, e.Waited)
}

// SetTimeout makes every later call that waits longer than d for the
// other ranks return a *StallError (the watchdog); 0, the default, waits
// as long as MPI does.
func (c *Comm) SetTimeout(d time.Duration) { c.timeout.Store(int64(max(d, 0))) }

// Init initialises MPI (MPI_Init_thread at MPI_THREAD_FUNNELED) on a
// goroutine locked to its OS thread, which then serves every MPI call,
// and sets MPI_ERRORS_RETURN on MPI_COMM_WORLD. Call it once per process.
func Init() (*Comm, error) {
	c := &Comm{calls: make(chan func())}
	ready := make(chan error, 1)
	go func() {
		goruntime.LockOSThread() // never unlocked: MPI stays on this thread
		var provided, restored C.int
		if rc := C.mpi_init(&provided, &restored); rc != C.MPI_SUCCESS {
			ready <- fmt.Errorf("mpi: MPI_Init_thread: %w", mpiError(rc))
			return
		}
		c.Restored = int(restored)
		if provided < C.MPI_THREAD_FUNNELED {
			ready <- fmt.Errorf("mpi: MPI_Init_thread: expected thread level FUNNELED (%d) or more, found %d", C.MPI_THREAD_FUNNELED, provided)
			return
		}
		var r, s C.int
		if rc := C.mpi_rank(&r); rc != C.MPI_SUCCESS {
			ready <- fmt.Errorf("mpi: MPI_Comm_rank: %w", mpiError(rc))
			return
		}
		if rc := C.mpi_size(&s); rc != C.MPI_SUCCESS {
			ready <- fmt.Errorf("mpi: MPI_Comm_size: %w", mpiError(rc))
			return
		}
		c.rank, c.size = int(r), int(s)
		ready <- nil
		for f := range c.calls {
			f()
		}
	}()
	if err := <-ready; err != nil {
		return nil, err
	}
	return c, nil
}

// do runs f on the MPI thread and returns its error.
// With a timeout (SetTimeout), a call that outwaits it (waiting for the
// MPI thread, or in MPI) returns a *StallError, and so does every call
// after it.
func (c *Comm) do(name string, f func() C.int) error {
	if err := c.stalled.Load(); err != nil {
		return err
	}
	var expired <-chan time.Time
	timeout := time.Duration(c.timeout.Load())
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expired = t.C
	}
	stall := func() error {
		err := &StallError{Call: name, Rank: c.rank, Size: c.size, Waited: timeout}
		c.stalled.CompareAndSwap(nil, err)
		return c.stalled.Load()
	}
	res := make(chan C.int, 1)
	c.mu.Lock()
	if c.done {
		c.mu.Unlock()
		return ErrFinalized
	}
	select {
	case c.calls <- func() { res <- f() }:
		c.mu.Unlock()
	case <-expired:
		c.mu.Unlock()
		return stall()
	}
	select {
	case rc := <-res:
		if rc != C.MPI_SUCCESS {
			return fmt.Errorf("mpi: %s (rank %d of %d): %w", name, c.rank, c.size, mpiError(rc))
		}
		return nil
	case <-expired:
		return stall()
	}
}

// Rank returns this process's rank in MPI_COMM_WORLD.
func (c *Comm) Rank() int { return c.rank }

// Size returns the number of ranks in MPI_COMM_WORLD.
func (c *Comm) Size() int { return c.size }

// Barrier waits until every rank has called it.
func (c *Comm) Barrier() error {
	return c.do("MPI_Barrier", func() C.int { return C.mpi_barrier() })
}

// Finalize ends MPI (MPI_Finalize) and stops the MPI thread; later calls
// return ErrFinalized.
func (c *Comm) Finalize() error {
	err := c.do("MPI_Finalize", func() C.int { return C.mpi_finalize() })
	c.mu.Lock()
	if !c.done {
		c.done = true
		close(c.calls)
	}
	c.mu.Unlock()
	return err
}

// Abort ends every rank of the job (MPI_Abort) with exit status code. It
// does not wait for the MPI thread: a rank stuck in a collective is the
// case it is for.
func (c *Comm) Abort(code int) { C.mpi_abort(C.int(code)) }

// Bcast sends root's buf to every rank's buf, which must have the same
// length on every rank.
func (c *Comm) Bcast(buf []byte, root int) error {
	if root < 0 || root >= c.size {
		return fmt.Errorf("mpi: MPI_Bcast: expected a root rank in [0, %d), found %d", c.size, root)
	}
	for off := 0; off < len(buf); off += chunk {
		b := buf[off:min(off+chunk, len(buf))]
		if err := c.bcast(b, len(b), root); err != nil {
			return err
		}
	}
	return nil
}

// bcast is one MPI_Bcast of count bytes of buf (count is not checked: a
// test passes a bad one to see MPI's error come back).
func (c *Comm) bcast(buf []byte, count, root int) error {
	p := unsafe.Pointer(nil)
	if len(buf) > 0 {
		p = unsafe.Pointer(&buf[0])
	}
	return c.do("MPI_Bcast", func() C.int { return C.mpi_bcast(p, C.int(count), C.int(root)) })
}

// chunk is the most bytes one call moves (MPI counts are C ints).
const chunk = 1 << 30

// AllgatherBytes returns every rank's b, in rank order; lengths may
// differ between ranks (MPI_Allgather of the lengths, then
// MPI_Allgatherv).
func (c *Comm) AllgatherBytes(b []byte) ([][]byte, error) {
	lens, err := Allgather(c, []int64{int64(len(b))})
	if err != nil {
		return nil, err
	}
	counts := make([]C.int, c.size)
	displs := make([]C.int, c.size)
	var total int64
	for i, n := range lens {
		if n < 0 || total+n > math.MaxInt32 {
			return nil, fmt.Errorf("mpi: MPI_Allgatherv: expected at most %d bytes in all, found more (rank %d sends %d)", math.MaxInt32, i, n)
		}
		counts[i], displs[i] = C.int(n), C.int(total)
		total += n
	}
	recv := make([]byte, max(total, 1))
	send := unsafe.Pointer(&recv[0]) // any valid address when b is empty
	if len(b) > 0 {
		send = unsafe.Pointer(&b[0])
	}
	err = c.do("MPI_Allgatherv", func() C.int {
		return C.mpi_allgatherv(send, C.int(len(b)), unsafe.Pointer(&recv[0]), &counts[0], &displs[0])
	})
	if err != nil {
		return nil, err
	}
	out := make([][]byte, c.size)
	for i := range out {
		out[i] = recv[displs[i] : displs[i]+counts[i] : displs[i]+counts[i]]
	}
	return out, nil
}

// Number is an element type the typed collectives move.
type Number interface{ ~float32 | ~float64 | ~int64 }

// Op is the combination of Allreduce.
type Op int

// The combinations of Allreduce. MPI does not promise the order in which
// it sums: a float Sum may differ in its last bits from a left-to-right
// sum, and between runs; Max and Min are exact.
const (
	Sum Op = iota
	Max
	Min
)

func typeCode[T Number]() C.int {
	var z T
	switch any(z).(type) {
	case float32:
		return 0
	case float64:
		return 1
	}
	return 2
}

// Allreduce combines every rank's send elementwise with op into every
// rank's recv (MPI_Allreduce); send and recv have one length on every
// rank.
func Allreduce[T Number](c *Comm, send, recv []T, op Op) error {
	if len(send) != len(recv) {
		return fmt.Errorf("mpi: MPI_Allreduce: expected send and receive buffers of one length, found %d and %d", len(send), len(recv))
	}
	if op < Sum || op > Min {
		return fmt.Errorf("mpi: MPI_Allreduce: expected op Sum, Max or Min, found %d", op)
	}
	if len(send) == 0 {
		return nil
	}
	if len(send) > math.MaxInt32 {
		return fmt.Errorf("mpi: MPI_Allreduce: expected at most %d elements, found %d", math.MaxInt32, len(send))
	}
	return c.do("MPI_Allreduce", func() C.int {
		return C.mpi_allreduce(unsafe.Pointer(&send[0]), unsafe.Pointer(&recv[0]), C.int(len(send)), typeCode[T](), C.int(op))
	})
}

// Allgather returns every rank's send, concatenated in rank order
// (MPI_Allgather); send has one length on every rank.
func Allgather[T Number](c *Comm, send []T) ([]T, error) {
	out := make([]T, len(send)*c.size)
	if len(send) == 0 {
		return out, nil
	}
	if len(out) > math.MaxInt32 {
		return nil, fmt.Errorf("mpi: MPI_Allgather: expected at most %d elements in all, found %d", math.MaxInt32, len(out))
	}
	err := c.do("MPI_Allgather", func() C.int {
		return C.mpi_allgather(unsafe.Pointer(&send[0]), C.int(len(send)), unsafe.Pointer(&out[0]), typeCode[T]())
	})
	return out, err
}

// mpiError is an MPI error code with MPI's own message.
func mpiError(rc C.int) error {
	var buf [C.MPI_MAX_ERROR_STRING]C.char
	var n C.int
	C.mpi_error_string(rc, &buf[0], &n)
	if n <= 0 {
		return fmt.Errorf("MPI error %d", int(rc))
	}
	return fmt.Errorf("%s (MPI error %d)", C.GoStringN(&buf[0], n), int(rc))
}
