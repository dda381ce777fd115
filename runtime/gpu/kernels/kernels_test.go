//go:build cgo

package kernels

import (
	"flag"
	"math"
	"regexp"
	"slices"
	"testing"
	"unsafe"
)

var _ = flag.Bool("update", false, "rewrite golden files (none in this package)")

func TestNames(t *testing.T) {
	names := Names()
	if len(names) == 0 {
		t.Fatal("no kernels found in Source")
	}
	if got := HostKernels(); !slices.Equal(got, names) {
		t.Errorf("the KERNELS list and the kernels defined differ:\n KERNELS: %v\n defined: %v", got, names)
	}
	if regexp.MustCompile(`(?m)^\s*#\s*include`).MatchString(Source()) {
		t.Error("kernels.cu includes a header; NVRTC has none")
	}
}

func TestHostLaunch(t *testing.T) {
	h := NewHost(2, 3)
	const n = 11
	out, _ := h.Alloc(4 * n)
	defer h.Free(out)
	if err := h.Launch("fill_u32", n, []uint64{out, n, uint64(math.Float32bits(1.5))}); err != nil {
		t.Fatal(err)
	}
	got := unsafe.Slice((*float32)(unsafe.Pointer(&h.Bytes(out, 4*n)[0])), n)
	for i, v := range got {
		if v != 1.5 {
			t.Fatalf("element %d = %v after fill, want 1.5", i, v)
		}
	}
	if err := h.Launch("no_such_kernel", 1, nil); err == nil || err.Error() != "host emulation: no kernel no_such_kernel" {
		t.Errorf("unknown kernel: %v", err)
	}
	if err := h.Launch("fill_u32", 1, []uint64{out}); err == nil || err.Error() != "host emulation: kernel fill_u32 takes 3 arguments, given 1" {
		t.Errorf("wrong argument count: %v", err)
	}
}
