package gpu

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	"gorgonia.org/tensor"

	"multigpu/graph"
	"multigpu/runtime/backend"
	"multigpu/runtime/host"
)

// Device is the backend of one logical GPU: a stream and a memory pool of
// its own on a Driver that other logical devices may share. Besides
// backend.Device it implements backend.Releaser and backend.Copier.
type Device struct {
	place  graph.Device
	drv    Driver
	stream Stream
	pool   *pool
	// run serialises programs on the device: their kernels share the
	// stream, and each program's arena is its own.
	run    sync.Mutex
	closed atomic.Bool
	// convScratch bounds the patch buffers of convolutions (tests make
	// it small to exercise the chunking of the batch).
	convScratch int
}

// NewDevice returns the backend of logical device place on drv.
func NewDevice(place graph.Device, drv Driver) (*Device, error) {
	s, err := drv.NewStream()
	if err != nil {
		return nil, fmt.Errorf("%s on %s: creating a stream: %w", place, drv, err)
	}
	return &Device{place: place, drv: drv, stream: s, pool: newPool(drv, s.Sync), convScratch: convScratch}, nil
}

// Place returns the device d serves.
func (d *Device) Place() graph.Device { return d.place }

// Driver returns the GPU d runs on.
func (d *Device) Driver() Driver { return d.drv }

// String returns "gpu:1 on GPU 0 (NVIDIA H100 80GB HBM3)".
func (d *Device) String() string { return fmt.Sprintf("%s on %s", d.place, d.drv) }

// MemoryStats returns the device memory d's buffers, programs and caches
// hold now, the most held at once, and the part of the first that is
// cached for reuse.
func (d *Device) MemoryStats() (inUse, peak, cached int64) { return d.pool.stats() }

// Close waits for d's work, gives its cached memory back and releases its
// stream. Buffers and programs of d must not be used after.
func (d *Device) Close() error {
	if d.closed.Swap(true) {
		return nil
	}
	err := d.pool.close()
	if cerr := d.stream.Close(); err == nil {
		err = cerr
	}
	return err
}

// Buffer is a value in a GPU's memory: a view of a block, which goes back
// to the device's pool when no buffer or program uses it any more (when
// the runtime releases it, or after the garbage collector finds it
// unreachable).
type Buffer struct {
	dev      *Device
	dt       graph.DType
	shape    []int
	blk      *block
	off      int64 // bytes into blk
	cleanup  runtime.Cleanup
	released atomic.Bool
}

// The runtime's optional capabilities.
var (
	_ backend.Releaser = (*Device)(nil)
	_ backend.Copier   = (*Device)(nil)
)

// newBuffer returns a buffer viewing blk at off, holding a reference.
func (d *Device) newBuffer(dt graph.DType, shape []int, blk *block, off int64) *Buffer {
	blk.retain()
	b := &Buffer{dev: d, dt: dt, shape: shape, blk: blk, off: off}
	b.cleanup = runtime.AddCleanup(b, (*block).release, blk)
	return b
}

// Device returns the device b belongs to.
func (b *Buffer) Device() graph.Device { return b.dev.place }

// Shape returns b's shape.
func (b *Buffer) Shape() []int { return append([]int{}, b.shape...) }

// DType returns b's element type.
func (b *Buffer) DType() graph.DType { return b.dt }

func (b *Buffer) ptr() Ptr { return b.blk.ptr + Ptr(b.off) }

func (b *Buffer) bytes() int64 { return int64(numel(b.shape)) * b.dt.Size() }

// Release gives b's memory back to its device now, instead of when the
// garbage collector finds b unreachable; b must not be used after.
// Releasing twice does nothing.
func (d *Device) Release(b backend.Buffer) {
	gb, ok := b.(*Buffer)
	if !ok || gb.dev != d || gb.released.Swap(true) {
		return
	}
	gb.cleanup.Stop()
	gb.blk.release()
}

func (d *Device) buffer(b backend.Buffer) (*Buffer, error) {
	gb, ok := b.(*Buffer)
	if !ok {
		return nil, fmt.Errorf("%s: a %T is not a GPU buffer", d.place, b)
	}
	if gb.released.Load() {
		return nil, fmt.Errorf("%s: buffer used after Release", d.place)
	}
	return gb, nil
}

// Upload copies t into a new buffer of d, through the stream: the copy
// may still be in flight when Upload returns (t may be changed at once).
func (d *Device) Upload(t *tensor.Dense) (backend.Buffer, error) {
	dt, ok := host.DTypeOf(t)
	if !ok {
		return nil, fmt.Errorf("%s: no graph element type for tensors of %v", d.place, t.Dtype())
	}
	shape := host.Shape(t)
	src := bytesOf(host.Data(t))
	blk, err := d.pool.get(int64(len(src)))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d, err)
	}
	defer blk.release()
	if len(src) > 0 {
		if err := d.stream.Upload(blk.ptr, src); err != nil {
			return nil, fmt.Errorf("%s: upload: %w", d, err)
		}
	}
	return d.newBuffer(dt, shape, blk, 0), nil
}

// Download returns b's contents as a new host tensor, once the work that
// computes them is done.
func (d *Device) Download(b backend.Buffer) (*tensor.Dense, error) {
	gb, err := d.buffer(b)
	if err != nil {
		return nil, err
	}
	data := host.MakeSlice(gb.dt, numel(gb.shape))
	if dst := bytesOf(data); len(dst) > 0 {
		if err := gb.dev.stream.Download(dst, gb.ptr()); err != nil {
			return nil, fmt.Errorf("%s: download: %w", gb.dev, err)
		}
	}
	runtime.KeepAlive(gb)
	return host.New(gb.shape, data), nil
}

// CopyFrom returns a buffer of d holding src's value, copied from another
// GPU's memory without passing through the host: on the same GPU with one
// device-to-device copy, on another with a peer copy. The copy waits for
// the work that computes src, and src's device waits for the copy before
// its later work (which may reuse src's memory). A buffer of d itself is
// shared, not copied: buffers are never written after they are computed.
func (d *Device) CopyFrom(src backend.Buffer) (backend.Buffer, error) {
	sb, err := d.buffer(src)
	if err != nil {
		return nil, err
	}
	if sb.dev == d {
		return d.newBuffer(sb.dt, sb.shape, sb.blk, sb.off), nil
	}
	n := sb.bytes()
	blk, err := d.pool.get(n)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d, err)
	}
	defer blk.release()
	if n > 0 {
		if err := d.copyFrom(blk.ptr, sb, n); err != nil {
			return nil, fmt.Errorf("%s: copy from %s: %w", d, sb.dev, err)
		}
	}
	runtime.KeepAlive(sb)
	return d.newBuffer(sb.dt, sb.shape, blk, 0), nil
}

func (d *Device) copyFrom(dst Ptr, sb *Buffer, n int64) error {
	ready, err := sb.dev.stream.Record()
	if err != nil {
		return err
	}
	err = d.stream.Wait(ready)
	ready.Close()
	if err != nil {
		return err
	}
	if sb.dev.drv == d.drv {
		err = d.stream.Copy(dst, sb.ptr(), n)
	} else {
		err = d.stream.CopyPeer(dst, sb.dev.drv, sb.ptr(), n)
	}
	if err != nil {
		return err
	}
	done, err := d.stream.Record()
	if err != nil {
		return err
	}
	defer done.Close()
	return sb.dev.stream.Wait(done)
}

// Check reports whether n can run on a GPU: every op of the op table, in
// f32 and f64; ops that only move elements (and dim) in every element
// type.
func (d *Device) Check(n *graph.Node) error {
	if graph.LookupOp(n.Op) == nil || !planned(n.Op) {
		return fmt.Errorf("op %s is not supported by the gpu backend", n.Op)
	}
	return backend.CheckElementTypes(n, "gpu")
}

// bytesOf views a slice from host.MakeSlice as bytes.
func bytesOf(data any) []byte {
	switch s := data.(type) {
	case []float32:
		return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), 4*len(s))
	case []float64:
		return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), 8*len(s))
	case []int32:
		return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), 4*len(s))
	case []int64:
		return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), 8*len(s))
	case []bool:
		return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), len(s))
	}
	panic(fmt.Sprintf("gpu: bytes of %T", data))
}

func numel(shape []int) int {
	n := 1
	for _, s := range shape {
		n *= s
	}
	return n
}
