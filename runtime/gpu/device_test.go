//go:build cgo

package gpu

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"gorgonia.org/tensor"

	"multigpu/graph"
	"multigpu/runtime/backend"
	"multigpu/runtime/host"
)

func newDevice(t *testing.T, place graph.Device, drv *hostDriver) *Device {
	t.Helper()
	d, err := NewDevice(place, drv)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("closing %s: %v", d, err)
		}
	})
	return d
}

func seq(n int) *tensor.Dense {
	data := make([]float32, n)
	for i := range data {
		data[i] = float32(i) + 0.5
	}
	return host.New([]int{n}, data)
}

func download(t *testing.T, d *Device, b backend.Buffer) []float32 {
	t.Helper()
	h, err := d.Download(b)
	if err != nil {
		t.Fatal(err)
	}
	return host.Data(h).([]float32)
}

// CopyFrom moves a value between logical devices of one GPU and between
// GPUs, ordered after the work that computes it; on the same device it
// shares the buffer.
func TestCopyFrom(t *testing.T) {
	g0, g1 := newHostDriver("host GPU 0"), newHostDriver("host GPU 1")
	g0.jitter, g1.jitter = true, true
	a := newDevice(t, graph.GPUDevice(0), g0)
	b := newDevice(t, graph.GPUDevice(1), g0)
	c := newDevice(t, graph.GPUDevice(2), g1)
	src, err := a.Upload(seq(1000))
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprint(host.Data(seq(1000)))
	for _, dst := range []*Device{a, b, c} {
		cp, err := dst.CopyFrom(src)
		if err != nil {
			t.Fatalf("%s: %v", dst, err)
		}
		if cp.Device() != dst.Place() {
			t.Errorf("copy to %s lives on %s", dst.Place(), cp.Device())
		}
		if got := fmt.Sprint(download(t, dst, cp)); got != want {
			t.Errorf("copy to %s differs", dst.Place())
		}
		shared := cp.(*Buffer).blk == src.(*Buffer).blk
		if shared != (dst == a) {
			t.Errorf("copy to %s shares the source's memory: %v", dst.Place(), shared)
		}
	}
	if _, err := b.CopyFrom(seqBuffer{}); err == nil || !strings.Contains(err.Error(), "is not a GPU buffer") {
		t.Errorf("CopyFrom of a foreign buffer: %v", err)
	}
}

type seqBuffer struct{}

func (seqBuffer) Device() graph.Device { return graph.HostCPU }
func (seqBuffer) Shape() []int         { return nil }
func (seqBuffer) DType() graph.DType   { return graph.F32 }

// A program's memory comes from the device's pool: a second run of the
// same program allocates nothing from the driver, and released outputs go
// back to the pool at once.
func TestPoolReuse(t *testing.T) {
	drv := newHostDriver("host GPU 0")
	d := newDevice(t, graph.GPUDevice(0), drv)
	exe, in := chainProgram(t, d, 10, 4096)
	run := func() []backend.Buffer {
		outs, err := exe.Run(context.Background(), []backend.Buffer{in}, backend.RunOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return outs
	}
	outs := run()
	for _, o := range outs {
		d.Release(o)
	}
	_, allocs := drv.stats()
	inUse, _, _ := d.MemoryStats()
	for range 3 {
		for _, o := range run() {
			d.Release(o)
			d.Release(o) // twice: no effect
		}
	}
	if _, again := drv.stats(); again != allocs {
		t.Errorf("later runs allocated %d more blocks from the driver; want all from the pool", again-allocs)
	}
	if now, _, _ := d.MemoryStats(); now != inUse {
		t.Errorf("memory in use %d after released runs, %d before", now, inUse)
	}
	e := exe.(*executable)
	if e.mp.Size > 2*4096*4+2*arenaAlign {
		t.Errorf("the arena of a chain of 10 ops takes %d bytes; two values (%d) should do", e.mp.Size, 2*4096*4)
	}
}

// chainProgram compiles x -> neg -> neg ... (n ops) on d and uploads an
// input of size elements.
func chainProgram(t *testing.T, d *Device, n, size int) (backend.Executable, backend.Buffer) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "graph chain {\ninput %%x: f32[%d]\n", size)
	prev := "x"
	for i := range n {
		fmt.Fprintf(&b, "%%v%d = neg %%%s\n", i, prev)
		prev = fmt.Sprint("v", i)
	}
	fmt.Fprintf(&b, "output %%%s\n}\n", prev)
	g, err := graph.Parse("chain.graph", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	p := &backend.Program{Device: d.Place(), Inputs: g.Inputs(), Outputs: g.Outputs}
	for _, n := range g.Nodes {
		if !n.IsLeaf() {
			p.Nodes = append(p.Nodes, n)
		}
	}
	exe, err := d.Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	in, err := d.Upload(seq(size))
	if err != nil {
		t.Fatal(err)
	}
	return exe, in
}

// An allocation that does not fit first gives cached memory back; one
// that cannot fit at all names the device and the sizes.
func TestOutOfMemory(t *testing.T) {
	drv := newHostDriver("host GPU 0")
	drv.limit = 10 << 20
	d := newDevice(t, graph.GPUDevice(0), drv)
	b, err := d.Upload(host.New([]int{2 << 20}, make([]float32, 2<<20))) // 8 MiB
	if err != nil {
		t.Fatal(err)
	}
	d.Release(b) // cached in the pool
	if _, _, cached := d.MemoryStats(); cached != 8<<20 {
		t.Fatalf("cached %d bytes, want 8 MiB", cached)
	}
	b, err = d.Upload(host.New([]int{2<<20 + 1024}, make([]float32, 2<<20+1024))) // 9 MiB: needs the cache back
	if err != nil {
		t.Fatalf("upload after trimming the cache: %v", err)
	}
	_, err = d.Upload(host.New([]int{1 << 20}, make([]float32, 1<<20)))
	if !errors.Is(err, ErrOutOfMemory) || !strings.Contains(err.Error(), "gpu:0 on host GPU 0: allocating 4.0 MiB (9.0 MiB in use by this device, 0 B cached)") {
		t.Errorf("upload over the limit: %v", err)
	}
	d.Release(b)
}

// A failing node (here through BeforeNode) and a cancelled context come
// back as NodeErrors naming the device and node; inputs of another device
// are refused.
func TestRunErrors(t *testing.T) {
	drv := newHostDriver("host GPU 0")
	d := newDevice(t, graph.GPUDevice(3), drv)
	exe, in := chainProgram(t, d, 3, 8)
	exe.(*executable).prog.BeforeNode = func(ctx context.Context, dev graph.Device, n *graph.Node) error {
		if n.Name == "v1" {
			return errors.New("injected")
		}
		return nil
	}
	_, err := exe.Run(context.Background(), []backend.Buffer{in}, backend.RunOptions{})
	var ne *backend.NodeError
	if !errors.As(err, &ne) || err.Error() != "gpu:3: %v1 (neg): injected" {
		t.Errorf("failing node: %v", err)
	}
	exe.(*executable).prog.BeforeNode = nil
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := exe.Run(ctx, []backend.Buffer{in}, backend.RunOptions{}); !errors.Is(err, context.Canceled) || !errors.As(err, &ne) {
		t.Errorf("cancelled run: %v", err)
	}
	other := newDevice(t, graph.GPUDevice(4), drv)
	foreign, err := other.Upload(seq(8))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exe.Run(context.Background(), []backend.Buffer{foreign}, backend.RunOptions{}); err == nil ||
		err.Error() != "gpu:3: input %x: expected f32 [8] on gpu:3, given f32 [8] on gpu:4" {
		t.Errorf("input of another device: %v", err)
	}
	d.Release(in)
	if _, err := exe.Run(context.Background(), []backend.Buffer{in}, backend.RunOptions{}); err == nil || !strings.Contains(err.Error(), "used after Release") {
		t.Errorf("released input: %v", err)
	}
}

func TestCheck(t *testing.T) {
	g, err := graph.Parse("c.graph", []byte("graph c {\ninput %a: i32[4]\ninput %b: i32[4]\n%s = add %a, %b\n%t = transpose %a {perm=[0]}\noutput %s, %t\n}\n"))
	if err != nil {
		t.Fatal(err)
	}
	d := newDevice(t, graph.GPUDevice(0), newHostDriver("host GPU 0"))
	if err := d.Check(g.Lookup("s")); err == nil || err.Error() != "add on i32 is not supported by the gpu backend (f32 and f64 only)" {
		t.Errorf("Check(add on i32) = %v", err)
	}
	if err := d.Check(g.Lookup("t")); err != nil {
		t.Errorf("Check(transpose on i32) = %v", err)
	}
}

// Every op of the op table but the leaves has a GPU plan, so that an op
// added to the table without one fails here rather than at lower time.
func TestEveryOpPlanned(t *testing.T) {
	for _, op := range graph.OpNames() {
		if op == graph.OpInput || op == graph.OpParam || op == graph.OpConst {
			continue
		}
		if !planned(op) {
			t.Errorf("op %s has no GPU plan", op)
		}
	}
}
