package runtime_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"

	"gorgonia.org/tensor"

	"multigpu/graph"
	"multigpu/lower"
	"multigpu/passes/replicate"
	"multigpu/runtime"
	"multigpu/runtime/backend"
	"multigpu/runtime/cpu"
	"multigpu/runtime/host"
)

// tracker watches the buffers that fake devices (trackDev) hand out: it
// records every Release and CopyFrom, refuses the use of a released
// buffer, and poisons the memory of a released buffer (NaN) once no live
// buffer shares it, so that a buffer released before its last reader
// shows as an error or as wrong outputs.
type tracker struct {
	mu       sync.Mutex
	bufs     []*trackBuf // every buffer handed out, in order
	releases int
	doubles  int      // releases of a released buffer
	copies   int      // CopyFrom calls
	poisoned int      // releases that poisoned memory
	misuse   []string // uses of released buffers
	// fail, when set, is asked before every Upload ("upload"), CopyFrom
	// ("copy") and Download ("download"); its error fails the call.
	fail func(op string, d graph.Device) error
}

// trackBuf is a fake device's buffer: a cpu backend buffer, with the host
// memory it occupies.
type trackBuf struct {
	backend.Buffer
	dev      *trackDev
	mem      any     // the elements, for poisoning; nil for a scalar
	lo, hi   uintptr // the bytes mem occupies
	released bool
}

// trackDev is a device of the cpu backend that takes buffers back
// (backend.Releaser) and copies from other trackDevs (backend.Copier).
type trackDev struct {
	cpu *cpu.Device
	tr  *tracker
}

func (tr *tracker) devices(d graph.Device) (backend.Device, error) {
	return &trackDev{cpu: cpu.New(d), tr: tr}, nil
}

func (d *trackDev) Place() graph.Device       { return d.cpu.Place() }
func (d *trackDev) Check(n *graph.Node) error { return d.cpu.Check(n) }
func (d *trackDev) injected(op string) (err error) {
	if d.tr.fail != nil {
		err = d.tr.fail(op, d.Place())
	}
	return err
}

// wrap records a buffer of the cpu backend as one of d's.
func (d *trackDev) wrap(b backend.Buffer) (backend.Buffer, error) {
	tb := &trackBuf{Buffer: b, dev: d}
	if len(b.Shape()) > 0 {
		t, err := d.cpu.Download(b) // shares b's memory
		if err != nil {
			return nil, err
		}
		tb.mem = host.Data(t)
		if n := host.Len(tb.mem); n > 0 {
			tb.lo = t.Uintptr()
			tb.hi = tb.lo + t.MemSize()
		}
	}
	d.tr.mu.Lock()
	d.tr.bufs = append(d.tr.bufs, tb)
	d.tr.mu.Unlock()
	return tb, nil
}

// own returns b's cpu buffer, or an error when b is released or not d's.
func (d *trackDev) own(b backend.Buffer, use string) (backend.Buffer, error) {
	tb, ok := b.(*trackBuf)
	if !ok {
		return nil, fmt.Errorf("%s: %s of a %T", d.Place(), use, b)
	}
	d.tr.mu.Lock()
	defer d.tr.mu.Unlock()
	if tb.released {
		msg := fmt.Sprintf("%s: %s of a released %s%v buffer of %s", d.Place(), use, tb.DType(), tb.Shape(), tb.dev.Place())
		d.tr.misuse = append(d.tr.misuse, msg)
		return nil, errors.New(msg)
	}
	return tb.Buffer, nil
}

// Upload copies t, so that poisoning never reaches the caller's tensors.
func (d *trackDev) Upload(t *tensor.Dense) (backend.Buffer, error) {
	if err := d.injected("upload"); err != nil {
		return nil, err
	}
	b, err := d.cpu.Upload(host.Clone(t))
	if err != nil {
		return nil, err
	}
	return d.wrap(b)
}

// Download returns a copy, which stays valid after b is released.
func (d *trackDev) Download(b backend.Buffer) (*tensor.Dense, error) {
	if err := d.injected("download"); err != nil {
		return nil, err
	}
	cb, err := d.own(b, "download")
	if err != nil {
		return nil, err
	}
	t, err := d.cpu.Download(cb)
	if err != nil {
		return nil, err
	}
	return host.Clone(t), nil
}

func (d *trackDev) Compile(p *backend.Program) (backend.Executable, error) {
	exe, err := d.cpu.Compile(p)
	if err != nil {
		return nil, err
	}
	return &trackExe{dev: d, exe: exe}, nil
}

// Release marks b released and poisons its memory unless a live buffer
// shares it (a view) or might (a live scalar of the same device, whose
// memory the cpu backend does not show).
func (d *trackDev) Release(b backend.Buffer) {
	tr := d.tr
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tb, ok := b.(*trackBuf)
	if !ok || tb.dev != d {
		tr.misuse = append(tr.misuse, fmt.Sprintf("%s: release of a buffer of another device", d.Place()))
		return
	}
	if tb.released {
		tr.doubles++
		return
	}
	tb.released = true
	tr.releases++
	if tb.mem == nil || tb.lo == tb.hi {
		return
	}
	for _, o := range tr.bufs {
		if o.released {
			continue
		}
		if o.lo < tb.hi && tb.lo < o.hi || o.mem == nil && o.dev == d {
			return
		}
	}
	tr.poisoned++
	switch s := tb.mem.(type) {
	case []float32:
		for i := range s {
			s[i] = float32(math.NaN())
		}
	case []float64:
		for i := range s {
			s[i] = math.NaN()
		}
	case []int32:
		for i := range s {
			s[i] = -1 << 30
		}
	case []int64:
		for i := range s {
			s[i] = -1 << 60
		}
	}
}

// CopyFrom copies a buffer of another trackDev of the same tracker.
func (d *trackDev) CopyFrom(src backend.Buffer) (backend.Buffer, error) {
	if err := d.injected("copy"); err != nil {
		return nil, err
	}
	sb, ok := src.(*trackBuf)
	if !ok || sb.dev.tr != d.tr || sb.dev == d {
		return nil, fmt.Errorf("%s: CopyFrom of a %T", d.Place(), src)
	}
	cb, err := sb.dev.own(src, "CopyFrom")
	if err != nil {
		return nil, err
	}
	d.tr.mu.Lock()
	d.tr.copies++
	d.tr.mu.Unlock()
	t, err := sb.dev.cpu.Download(cb)
	if err != nil {
		return nil, err
	}
	b, err := d.cpu.Upload(host.Clone(t))
	if err != nil {
		return nil, err
	}
	return d.wrap(b)
}

type trackExe struct {
	dev *trackDev
	exe backend.Executable
}

func (e *trackExe) Run(ctx context.Context, inputs []backend.Buffer, opts backend.RunOptions) ([]backend.Buffer, error) {
	ins := make([]backend.Buffer, len(inputs))
	for i, b := range inputs {
		cb, err := e.dev.own(b, "program input")
		if err != nil {
			return nil, err
		}
		ins[i] = cb
	}
	outs, err := e.exe.Run(ctx, ins, opts)
	if err != nil {
		return nil, err
	}
	for i, b := range outs {
		if outs[i], err = e.dev.wrap(b); err != nil {
			return nil, err
		}
	}
	return outs, nil
}

// live returns the buffers handed out since mark that are not released.
func (tr *tracker) live(mark int) int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	n := 0
	for _, b := range tr.bufs[mark:] {
		if !b.released {
			n++
		}
	}
	return n
}

func (tr *tracker) mark() int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return len(tr.bufs)
}

// check fails t on a double release or the use of a released buffer.
func (tr *tracker) check(t *testing.T, what string) {
	t.Helper()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.doubles > 0 {
		t.Errorf("%s: %d buffers released twice", what, tr.doubles)
	}
	if len(tr.misuse) > 0 {
		t.Errorf("%s: released buffers used:\n%s", what, strings.Join(tr.misuse, "\n"))
	}
	tr.doubles, tr.misuse = 0, nil
}

// held counts the values other than params and consts that e holds after
// a run: the graph outputs, and the resident transfers (made once).
func held(e *runtime.Executor) (outputs, resident int) {
	outs := map[int]bool{}
	for _, o := range e.Graph().Outputs {
		if o.Op != graph.OpParam && o.Op != graph.OpConst {
			outs[o.ID] = true
		}
	}
	for _, st := range e.Plan().Stages {
		for _, t := range st.Transfers {
			if t.Resident && !outs[t.Node.ID] {
				resident++
			}
		}
	}
	return len(outs), resident
}

const viewsSrc = `graph views {
  input %x: f32[N,6] @cpu
  param %w: f32[6,6] @cpu
  param %v: f32[2,3] @cpu
  %x.r0 = slice %x {axis=0, part=0, parts=2} @gpu:0
  %x.r1 = slice %x {axis=0, part=1, parts=2} @gpu:1
  %w.r0 = copy %w @gpu:0
  %w.r1 = copy %w @gpu:1
  %vf = reshape %v {shape=[6]} @cpu
  %vf.r0 = copy %vf @gpu:0
  %vf.r1 = copy %vf @gpu:1
  %h.r0 = matmul %x.r0, %w.r0 @gpu:0
  %h.r1 = matmul %x.r1, %w.r1 @gpu:1
  %f.r0 = reshape %h.r0 {shape=[-1]} @gpu:0
  %f.r1 = reshape %h.r1 {shape=[-1]} @gpu:1
  %g.r0 = reshape %f.r0 {shape=[-1,6]} @gpu:0
  %g.r1 = reshape %f.r1 {shape=[-1,6]} @gpu:1
  %a.r0 = add %g.r0, %vf.r0 @gpu:0
  %a.r1 = add %g.r1, %vf.r1 @gpu:1
  %s.r0 = sum %a.r0 {axes=[0]} @gpu:0
  %s.r1 = sum %a.r1 {axes=[0]} @gpu:1
  %s0 = copy %s.r0 @gpu:1
  %s1 = copy %s.r1 @gpu:0
  %b.r0 = sub %a.r0, %s1 @gpu:0
  %b.r1 = sub %a.r1, %s0 @gpu:1
  %c.r0 = relu %b.r0 @gpu:0
  %c.r1 = relu %b.r1 @gpu:1
  %y = concat %c.r0, %c.r1 {axis=0} @cpu
  %k = reshape %a.r0 {shape=[-1]} @gpu:0
  %kk = copy %k @cpu
  output %y, %kk
}
`

// releaseGraphs are placed graphs whose values cross devices: views
// (reshapes of params, of intermediates, of an output), values read by
// transfers and programs of later stages, and models rewritten for
// several GPUs with the merge device on cpu or on gpu:0.
func releaseGraphs(t *testing.T) map[string]*graph.Graph {
	gs := map[string]*graph.Graph{"views": parse(t, viewsSrc)}
	for _, name := range []string{"mlp", "cnn", "residual", "reshape_keep", "two_outputs", "batchnorm_train"} {
		g := loadModel(t, "../testdata/"+name+".graph")
		for _, merge := range []graph.Device{graph.HostCPU, graph.GPUDevice(0)} {
			rg, _, err := replicate.Rewrite(g, replicate.Options{GPUs: gpus(3), Merge: merge, BatchNorm: replicate.BatchNormSync})
			if err != nil {
				t.Fatal(err)
			}
			gs[fmt.Sprintf("%s_merge_%s", name, merge)] = rg
		}
	}
	return gs
}

// Every buffer a run computes is released once its last reader has run,
// and none before: outputs equal the cpu backend's bit for bit although
// released memory is poisoned, no released buffer is used, none is
// released twice, and after a run only its outputs (and the resident
// transfers it made) are held. Params and consts stay across runs.
func TestReleaseAtLastUse(t *testing.T) {
	for name, g := range releaseGraphs(t) {
		t.Run(name, func(t *testing.T) {
			params := runtime.RandomParams(g, 3)
			ref := newExec(t, g, params)
			tr := &tracker{}
			e, err := runtime.New(g, runtime.Options{Seed: 7, Devices: tr.devices})
			if err != nil {
				t.Fatal(err)
			}
			if err := e.SetParams(params); err != nil {
				t.Fatal(err)
			}
			resident := tr.mark() // consts and params
			outputs, transfers := held(e)
			runs := 0
			batches := []int64{1, 1, 3, 3, 2, 2, 7, 7}
			if name == "views" {
				batches = batches[2:] // its replicas read each other
			}
			for _, batch := range batches {
				in, _ := runtime.RandomInputs(g, batch, uint64(11+batch))
				want := run(t, ref, in)
				mark := tr.mark()
				got, err := e.Run(context.Background(), in)
				tr.check(t, fmt.Sprintf("batch %d", batch))
				if err != nil {
					t.Fatalf("batch %d: %v", batch, err)
				}
				runs++
				for k, w := range want {
					if err := compare(w, got[k], true); err != nil {
						t.Errorf("batch %d: output %%%s: %v", batch, k, err)
					}
				}
				// A run repeated at a batch makes no resident
				// transfers: it holds its outputs alone.
				n := tr.live(mark)
				if (runs%2 == 0 && n != outputs) || n < outputs || n > outputs+transfers {
					t.Errorf("batch %d (run %d): %d buffers of the run held after it, want %d outputs (and up to %d resident transfers on a first run)",
						batch, runs, n, outputs, transfers)
				}
				if n := tr.live(0) - tr.live(resident); n != resident {
					t.Errorf("batch %d: %d of the %d params and consts released", batch, resident-n, resident)
				}
			}
			if tr.poisoned == 0 {
				t.Errorf("no released buffer was poisoned")
			}
			if n := tr.live(resident) - runs*outputs; n > transfers {
				t.Errorf("%d buffers held besides the outputs after %d runs, want at most the %d resident transfers", n, runs, transfers)
			}
		})
	}
}

// A value that nothing reads at the batch run (its only reader beyond its
// own program is in a replica that does not run) is released as soon as
// its program returns it.
func TestReleaseDeadValue(t *testing.T) {
	g := parse(t, `graph dead {
  input %x: f32[N,4] @cpu
  %x.r0 = slice %x {axis=0, part=0, parts=2} @gpu:0
  %x.r1 = slice %x {axis=0, part=1, parts=2} @gpu:1
  %s = sum %x.r0 {axes=[0]} @gpu:0
  %r = sub %x.r0, %s @gpu:0
  %s1 = copy %s @gpu:1
  %r1 = copy %r @gpu:1
  %u = add %x.r1, %s1 @gpu:1
  %m = sum %r1 {axes=[0]} @gpu:1
  %v = add %u, %m @gpu:1
  %y = concat %r, %v {axis=0} @cpu
  output %y
}
`)
	tr := &tracker{}
	e, err := runtime.New(g, runtime.Options{Devices: tr.devices})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.SetParams(nil); err != nil {
		t.Fatal(err)
	}
	ref := newExec(t, g, nil)
	for _, batch := range []int64{1, 4} {
		in, _ := runtime.RandomInputs(g, batch, 5)
		want := run(t, ref, in)
		mark := tr.mark()
		got := run(t, e, in)
		tr.check(t, fmt.Sprintf("batch %d", batch))
		if err := compare(want["y"], got["y"], true); err != nil {
			t.Errorf("batch %d: %v", batch, err)
		}
		if n := tr.live(mark); n != 1 {
			t.Errorf("batch %d: %d buffers held after the run, want 1 (the output)", batch, n)
		}
	}
	// At batch 1, %s is an output of stage 0's program for %s1 alone,
	// which does not run: it is released with the program's other
	// dead values before stage 1 (the concat) runs.
	in, _ := runtime.RandomInputs(g, 1, 5)
	mark := tr.mark()
	uploads := 0
	tr.fail = func(op string, d graph.Device) error {
		if op == "upload" && d == graph.HostCPU {
			// The second upload to cpu is the concat's: %x, %x.r0
			// and %s are released, %r is held.
			if uploads++; uploads == 2 {
				if n := tr.live(mark); n != 1 {
					return fmt.Errorf("%d buffers held before the concat, want 1 (%%r)", n)
				}
			}
		}
		return nil
	}
	got := run(t, e, in)
	tr.check(t, "batch 1")
	if err := compare(run(t, ref, in)["y"], got["y"], true); err != nil {
		t.Error(err)
	}
}

// A run that fails (a node's error, a cancellation, an upload, a copy or
// the download of an output) releases everything it produced but the
// resident values, each once; the next run is unaffected.
func TestReleaseOnFailure(t *testing.T) {
	g := parse(t, viewsSrc)
	params := runtime.RandomParams(g, 3)
	in, _ := runtime.RandomInputs(g, 5, 4)
	want := run(t, newExec(t, g, params), in)
	tr := &tracker{}
	var failAt string
	var cancel context.CancelFunc
	boom := errors.New("boom")
	e, err := runtime.New(g, runtime.Options{Devices: tr.devices, BeforeNode: func(_ context.Context, _ graph.Device, n *graph.Node) error {
		switch {
		case n.Name == failAt:
			return boom
		case "cancel:"+n.Name == failAt:
			cancel()
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.SetParams(params); err != nil {
		t.Fatal(err)
	}
	consts := 0
	for _, n := range g.Nodes {
		if n.Op == graph.OpConst {
			consts++
		}
	}
	paramsFrom, paramsTo := consts, tr.mark()
	_, transfers := held(e)
	type failure struct {
		name string
		at   string // node whose BeforeNode fails ("cancel:" cancels instead)
		op   string // or the device call that fails
		dev  graph.Device
		nth  int // after this many calls
	}
	var cases []failure
	for _, n := range g.Nodes {
		if n.IsLeaf() || lower.IsTransfer(n) || n.Device.Kind != graph.GPU {
			continue
		}
		cases = append(cases, failure{name: "node_" + n.Name, at: n.Name}, failure{name: "cancel_" + n.Name, at: "cancel:" + n.Name})
	}
	for k := range 4 {
		cases = append(cases,
			failure{name: fmt.Sprintf("upload_gpu1_%d", k), op: "upload", dev: graph.GPUDevice(1), nth: k},
			failure{name: fmt.Sprintf("upload_cpu_%d", k), op: "upload", dev: graph.HostCPU, nth: k},
			failure{name: fmt.Sprintf("copy_%d", k), op: "copy", dev: graph.GPUDevice(0), nth: k},
			failure{name: fmt.Sprintf("download_%d", k), op: "download", dev: graph.HostCPU, nth: k})
	}
	for i, c := range cases {
		if i%3 == 0 {
			// New params now and then drop the resident transfers, so
			// that failures strike while they are being made too.
			paramsFrom = tr.mark()
			if err := e.SetParams(params); err != nil {
				t.Fatal(err)
			}
			paramsTo = tr.mark()
		}
		failAt = c.at
		calls := 0
		tr.fail = func(op string, d graph.Device) error {
			if op == c.op && d == c.dev {
				if calls++; calls > c.nth {
					return boom
				}
			}
			return nil
		}
		ctx, cc := context.WithCancel(context.Background())
		cancel = cc
		mark := tr.mark()
		_, err := e.Run(ctx, in)
		cc()
		tr.fail, failAt = nil, ""
		tr.check(t, c.name)
		switch {
		case err == nil && c.at != "" && !strings.HasPrefix(c.at, "cancel:"):
			t.Errorf("%s: the run did not fail", c.name)
		case err != nil && !strings.Contains(err.Error(), "boom") && !errors.Is(err, context.Canceled):
			t.Errorf("%s: %v", c.name, err)
		case err != nil:
			// Only the resident transfers the run made stay.
			if n := tr.live(mark); n > transfers {
				t.Errorf("%s: %d buffers held after the failed run, want at most the %d resident transfers", c.name, n, transfers)
			}
		}
		// (a cancellation at a program's last node, or a call that
		// comes up fewer times, lets the run succeed)
		if n := tr.live(paramsFrom) - tr.live(paramsTo); n != paramsTo-paramsFrom || tr.live(0)-tr.live(consts) != consts {
			t.Errorf("%s: params or consts released", c.name)
		}
		got := run(t, e, in)
		tr.check(t, c.name+": next run")
		for k, w := range want {
			if err := compare(w, got[k], true); err != nil {
				t.Errorf("%s: next run: %%%s: %v", c.name, k, err)
			}
		}
	}
}

// wrapped is a device of another kind that still copies (its CopyFrom is
// trackDev's): copies between it and a trackDev go through the host.
type wrapped struct{ *trackDev }

// noCopy is a device that takes buffers back but does not copy.
type noCopy struct {
	backend.Device
	backend.Releaser
}

// Copies between two devices of one kind that implements backend.Copier
// use CopyFrom; copies from another kind of device, or to one without
// CopyFrom, go through the host.
func TestCopyFromSameKind(t *testing.T) {
	g := parse(t, viewsSrc)
	params := runtime.RandomParams(g, 3)
	in, _ := runtime.RandomInputs(g, 5, 4)
	want := run(t, newExec(t, g, params), in)
	cases := []struct {
		name   string
		dev    func(tr *tracker, d graph.Device) backend.Device
		copies int // per run after the first
	}{
		// %s0 and %s1 between the GPUs; %kk goes to cpu, served by
		// the cpu backend.
		{"gpus_alike", func(tr *tracker, d graph.Device) backend.Device {
			if d == graph.HostCPU {
				return cpu.New(d)
			}
			return &trackDev{cpu: cpu.New(d), tr: tr}
		}, 2},
		// cpu too: %kk is a copy between trackDevs.
		{"all_alike", func(tr *tracker, d graph.Device) backend.Device { return &trackDev{cpu: cpu.New(d), tr: tr} }, 3},
		{"gpu1_other_kind", func(tr *tracker, d graph.Device) backend.Device {
			td := &trackDev{cpu: cpu.New(d), tr: tr}
			if d == graph.GPUDevice(1) {
				return wrapped{td}
			}
			return td
		}, 1}, // %kk only: gpu:0 and cpu are alike
		{"no_copier", func(tr *tracker, d graph.Device) backend.Device {
			td := &trackDev{cpu: cpu.New(d), tr: tr}
			return noCopy{td, td}
		}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr := &tracker{}
			e, err := runtime.New(g, runtime.Options{Devices: func(d graph.Device) (backend.Device, error) { return c.dev(tr, d), nil }})
			if err != nil {
				t.Fatal(err)
			}
			if err := e.SetParams(params); err != nil {
				t.Fatal(err)
			}
			for i := range 3 {
				tr.copies = 0
				got := run(t, e, in)
				tr.check(t, c.name)
				for k, w := range want {
					if err := compare(w, got[k], true); err != nil {
						t.Errorf("%%%s: %v", k, err)
					}
				}
				if i > 0 && tr.copies != c.copies {
					t.Errorf("run %d: %d copies with CopyFrom, want %d", i, tr.copies, c.copies)
				}
			}
		})
	}
}
