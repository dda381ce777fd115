// Package gpu is the GPU backend of the runtime without the CUDA calls:
// devices, buffers, memory pools, the planning of every op of the IR as
// kernel launches and matrix products, the placement of a program's
// intermediates in one arena, and the ordering of work between devices.
// A Driver supplies the calls: runtime/cuda implements it on a physical
// GPU (built with -tags cudart); tests implement it on the CPU with the
// host emulation of package kernels, which runs the very kernels a GPU
// runs, so that everything here is checked without a GPU.
//
// Several logical devices may share one Driver (--device-map gpu:0-3=0):
// each has its own stream and memory pool, so that their work overlaps on
// the GPU and no block of memory passes between streams unordered.
package gpu

import (
	"errors"

	"multigpu/graph"
)

// Ptr is an address in a GPU's memory; 0 for an empty allocation.
type Ptr uint64

// ErrOutOfMemory is what a Driver's Alloc error satisfies (errors.Is) when
// the GPU's memory is exhausted.
var ErrOutOfMemory = errors.New("out of device memory")

// Driver is one physical GPU: its memory and its streams. Its methods are
// safe for concurrent use.
type Driver interface {
	// String names the GPU in errors: "GPU 0 (NVIDIA H100 80GB HBM3)".
	String() string
	// Alloc returns bytes (> 0) of device memory.
	Alloc(bytes int64) (Ptr, error)
	// Free releases memory from Alloc, once no pending work uses it.
	Free(p Ptr) error
	// NewStream returns a new stream of work on this GPU.
	NewStream() (Stream, error)
	// Close releases the GPU; its streams are closed first.
	Close() error
}

// Stream is an ordered queue of work on one GPU: every call's work starts
// after the work of the calls before it. Its methods are safe for
// concurrent use.
type Stream interface {
	// Upload copies src into device memory at dst, and returns once src
	// may be changed (the copy itself may still be pending).
	Upload(dst Ptr, src []byte) error
	// Download copies device memory at src into dst, and returns when
	// dst holds it.
	Download(dst []byte, src Ptr) error
	// Copy copies bytes of this GPU's memory from src to dst.
	Copy(dst, src Ptr, bytes int64) error
	// CopyPeer copies bytes from src on another GPU, from, to dst on this
	// one.
	CopyPeer(dst Ptr, from Driver, src Ptr, bytes int64) error
	// Launch runs kernel (one of package kernels) over threads work items;
	// args are its parameters, each 8 bytes.
	Launch(kernel string, threads int64, args []uint64) error
	// Gemm runs a strided batched matrix product.
	Gemm(g *Gemm) error
	// Record returns an event that completes when the work queued so
	// far is done.
	Record() (Event, error)
	// Wait makes the work queued after it wait for e.
	Wait(e Event) error
	// Sync waits for the work queued so far, and returns the first error
	// it raised.
	Sync() error
	// Close waits for the stream's work and releases it.
	Close() error
}

// Event marks a point in a stream's work.
type Event interface {
	// Close releases the event (work that waits on it still does).
	Close() error
}

// Gemm is cuBLAS's strided batched gemm in column-major order: for b in
// [0, Batch), C_b = op(A_b) op(B_b) + Beta C_b, where op transposes a
// matrix when TransA (TransB) is set; op(A_b) is M×K, op(B_b) K×N, C_b
// M×N. X_b starts at X + b·StrideX elements and column j of the stored
// matrix at j·LDX. Row-major products use it as C^T = B^T A^T.
type Gemm struct {
	DType            graph.DType // F32 or F64
	TransA, TransB   bool
	M, N, K          int
	A, B, C          Ptr
	LDA, LDB, LDC    int
	StrideA, StrideB int64 // in elements; 0 reuses one matrix for every b
	StrideC          int64
	Batch            int
	Beta             float64 // 0 or 1: overwrite or accumulate
}
