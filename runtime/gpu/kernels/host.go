//go:build cgo

package kernels

// #cgo CXXFLAGS: -std=c++17 -O2
// #include <stdlib.h>
// #include <string.h>
// #include "host.h"
import "C"

import (
	"fmt"
	"unsafe"
)

// Host runs the kernels of Source on the CPU, as a GPU would run them: each
// launch is a grid of blocks of threads (run one after another), memory
// is allocated outside the Go heap, and kernel arguments are 8-byte words.
// It is safe for concurrent use.
type Host struct {
	grid, block int64
}

// NewHost returns a host emulation that launches at most grid blocks of
// block threads (small numbers, so that kernels' grid-stride loops are
// exercised).
func NewHost(grid, block int) *Host {
	return &Host{grid: int64(max(grid, 1)), block: int64(max(block, 1))}
}

// HostKernels returns the kernels the emulation can run, in the order of
// the KERNELS list of Source.
func HostKernels() []string {
	n := int(C.host_kernel_count())
	names := make([]string, n)
	for i := range names {
		names[i] = C.GoString(C.host_kernel_name(C.int(i)))
	}
	return names
}

// Alloc returns the address of bytes of fresh memory, filled with 0xff (a
// NaN in every float type) so that reading what no kernel wrote shows.
func (h *Host) Alloc(bytes int64) (uint64, error) {
	if bytes <= 0 {
		return 0, nil
	}
	p := C.malloc(C.size_t(bytes))
	if p == nil {
		return 0, fmt.Errorf("host emulation: out of memory allocating %d bytes", bytes)
	}
	C.memset(p, 0xff, C.size_t(bytes))
	return uint64(uintptr(p)), nil
}

// Free releases memory from Alloc.
func (h *Host) Free(p uint64) {
	if p != 0 {
		C.free(ptr(p))
	}
}

// Bytes returns n bytes of memory at p, which Alloc returned.
func (h *Host) Bytes(p uint64, n int64) []byte {
	if n == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(ptr(p)), n)
}

// ptr turns an address of C memory back into a pointer.
func ptr(p uint64) unsafe.Pointer {
	return *(*unsafe.Pointer)(unsafe.Pointer(&p))
}

// Launch runs kernel over threads work items with the given 8-byte
// arguments.
func (h *Host) Launch(kernel string, threads int64, args []uint64) error {
	if threads <= 0 {
		return nil
	}
	block := min(h.block, threads)
	grid := min(h.grid, (threads+block-1)/block)
	name := C.CString(kernel)
	defer C.free(unsafe.Pointer(name))
	cargs := (*C.ulonglong)(C.malloc(C.size_t(8 * max(len(args), 1))))
	defer C.free(unsafe.Pointer(cargs))
	copy(unsafe.Slice((*uint64)(unsafe.Pointer(cargs)), len(args)), args)
	switch r := C.host_launch(name, cargs, C.int(len(args)), C.uint(grid), C.uint(block)); {
	case r == -1:
		return fmt.Errorf("host emulation: no kernel %s", kernel)
	case r > 0:
		return fmt.Errorf("host emulation: kernel %s takes %d arguments, given %d", kernel, r-1, len(args))
	}
	return nil
}
