package gpu

import (
	"context"
	"encoding/binary"
	"fmt"
	"runtime"

	"multigpu/graph"
	"multigpu/runtime/backend"
	"multigpu/runtime/gpu/memplan"
)

// arenaAlign aligns the values of a program's arena (cuBLAS and
// vectorised loads want at least 16 bytes; 256 is what cudaMalloc
// gives).
const arenaAlign = 256

// executable is a compiled program: every node's plan, the arena that
// holds its intermediate values, and the metadata its kernels read, both
// resident on the device for as long as the program is.
type executable struct {
	dev   *Device
	prog  *backend.Program
	nin   int
	plans []*nodePlan
	args  [][]int // by node: the value index of each operand
	types []graph.DType
	shape [][]int // by value
	outs  []int   // value index of each output
	mp    *memplan.Plan
	res   *resident
	// nstatus is the number of status slots (planner.status).
	nstatus int
}

// resident is what a program keeps on the device between runs; it goes
// back to the pool when the program is dropped. status holds the status
// slots of the program's nodes (index errors), zeroed before every run.
type resident struct {
	arena, meta, status *block
}

func (r *resident) release() {
	r.arena.release()
	r.meta.release()
	r.status.release()
}

// Compile plans every node of p, places its intermediates in one arena and
// uploads the metadata its kernels read.
func (d *Device) Compile(p *backend.Program) (backend.Executable, error) {
	nodeErr := func(n *graph.Node, err error) error {
		return &backend.NodeError{Device: d.place, Node: n.Name, Op: n.Op, Err: err}
	}
	e := &executable{dev: d, prog: p, nin: len(p.Inputs)}
	index := map[*graph.Node]int{}
	for i, in := range p.Inputs {
		shape, err := shapeOf(in.Type)
		if err != nil {
			return nil, nodeErr(in, err)
		}
		index[in] = i
		e.types = append(e.types, in.Type.DType)
		e.shape = append(e.shape, shape)
	}
	pl := &planner{convScratch: d.convScratch}
	mprog := memplan.Program{NumInputs: len(p.Inputs)}
	for _, n := range p.Nodes {
		if err := d.Check(n); err != nil {
			return nil, nodeErr(n, err)
		}
		out, err := shapeOf(n.Type)
		if err != nil {
			return nil, nodeErr(n, err)
		}
		s := &nodeSpec{n: n, dt: n.Type.DType, out: out, info: p.Info[n.Name]}
		args := make([]int, len(n.Args))
		for i, a := range n.Args {
			v, ok := index[a]
			if !ok {
				return nil, nodeErr(n, fmt.Errorf("operand %%%s is neither an input nor computed before", a.Name))
			}
			args[i] = v
			s.in = append(s.in, e.shape[v])
		}
		np, err := pl.plan(s)
		if err != nil {
			return nil, nodeErr(n, err)
		}
		step := memplan.Step{Reads: args, Bytes: np.bytes, ViewOf: -1, Scratch: np.scratch}
		if np.viewOf >= 0 {
			step.ViewOf = args[np.viewOf]
		}
		mprog.Steps = append(mprog.Steps, step)
		index[n] = len(e.shape)
		e.plans = append(e.plans, np)
		e.args = append(e.args, args)
		e.types = append(e.types, n.Type.DType)
		e.shape = append(e.shape, out)
	}
	for _, o := range p.Outputs {
		v, ok := index[o]
		if !ok || v < e.nin {
			return nil, nodeErr(o, fmt.Errorf("output is not computed by the program"))
		}
		e.outs = append(e.outs, v)
		mprog.Outputs = append(mprog.Outputs, v)
	}
	mp, err := memplan.Make(mprog, arenaAlign)
	if err != nil {
		return nil, fmt.Errorf("%s: stage %d: %v", d.place, p.Stage, err)
	}
	e.mp = mp
	arena, err := d.pool.get(mp.Size)
	if err != nil {
		return nil, fmt.Errorf("%s: stage %d: the program's arena: %w", d, p.Stage, err)
	}
	meta, err := d.pool.get(int64(8 * len(pl.meta)))
	if err != nil {
		arena.release()
		return nil, fmt.Errorf("%s: stage %d: the program's metadata: %w", d, p.Stage, err)
	}
	status, err := d.pool.get(int64(8 * statusWords * pl.status))
	if err != nil {
		arena.release()
		meta.release()
		return nil, fmt.Errorf("%s: stage %d: the program's status words: %w", d, p.Stage, err)
	}
	e.res = &resident{arena: arena, meta: meta, status: status}
	e.nstatus = pl.status
	if len(pl.meta) > 0 {
		if err := d.stream.Upload(meta.ptr, bytesOf(pl.meta)); err != nil {
			e.res.release()
			return nil, fmt.Errorf("%s: stage %d: uploading the program's metadata: %w", d, p.Stage, err)
		}
	}
	runtime.AddCleanup(e, (*resident).release, e.res)
	return e, nil
}

// shapeOf returns the concrete shape of t.
func shapeOf(t graph.Type) ([]int, error) {
	s := make([]int, len(t.Shape))
	for i, d := range t.Shape {
		v, ok := d.Value()
		if !ok {
			return nil, fmt.Errorf("dimension %d of %s has no size", i, t)
		}
		s[i] = int(v)
	}
	return s, nil
}

// Run queues the program's work on the device's stream, waits for it,
// and returns the outputs (each in memory of its own, or a view of an
// input).
func (e *executable) Run(ctx context.Context, inputs []backend.Buffer, opts backend.RunOptions) ([]backend.Buffer, error) {
	d := e.dev
	p := e.prog
	if len(inputs) != e.nin {
		return nil, fmt.Errorf("%s: program takes %d inputs, given %d", d.place, e.nin, len(inputs))
	}
	nv := len(e.shape)
	ptrs := make([]Ptr, nv)
	blocks := make([]*block, nv)
	for i, b := range inputs {
		gb, err := d.buffer(b)
		if err != nil {
			return nil, fmt.Errorf("%s: input %%%s: %v", d.place, p.Inputs[i].Name, err)
		}
		if gb.dev != d || gb.dt != e.types[i] || !equalShape(gb.shape, e.shape[i]) {
			return nil, fmt.Errorf("%s: input %%%s: expected %s %v on %s, given %s %v on %s",
				d.place, p.Inputs[i].Name, e.types[i], e.shape[i], d.place, gb.dt, gb.shape, gb.dev.place)
		}
		ptrs[i], blocks[i] = gb.ptr(), gb.blk
	}
	defer runtime.KeepAlive(inputs)
	d.run.Lock()
	defer d.run.Unlock()
	var owned []*block // escaping values allocated by this run
	defer func() {
		for _, b := range owned {
			b.release()
		}
	}()
	arena := e.res.arena
	if e.nstatus > 0 {
		if err := d.stream.Upload(e.res.status.ptr, make([]byte, 8*statusWords*e.nstatus)); err != nil {
			return nil, fmt.Errorf("%s: stage %d: clearing the status words: %w", d, p.Stage, err)
		}
	}
	words := make([]uint64, 0, 16)
	for s, n := range p.Nodes {
		fail := func(err error) error {
			return &backend.NodeError{Device: d.place, Node: n.Name, Op: n.Op, Err: err}
		}
		if err := ctx.Err(); err != nil {
			return nil, fail(err)
		}
		if p.BeforeNode != nil {
			if err := p.BeforeNode(ctx, d.place, n); err != nil {
				return nil, fail(err)
			}
		}
		v := e.nin + s
		np := e.plans[s]
		switch {
		case np.viewOf >= 0:
			src := e.args[s][np.viewOf]
			ptrs[v], blocks[v] = ptrs[src]+Ptr(np.viewOff), blocks[src]
		case e.mp.Escapes[v]:
			b, err := d.pool.get(np.bytes)
			if err != nil {
				return nil, fail(err)
			}
			owned = append(owned, b)
			ptrs[v], blocks[v] = b.ptr, b
		case np.bytes > 0:
			ptrs[v], blocks[v] = arena.ptr+Ptr(e.mp.Offset[v]), arena
		}
		resolve := func(a arg) uint64 {
			switch a.kind {
			case argOperand:
				return uint64(ptrs[e.args[s][a.i]]) + uint64(a.off)
			case argResult:
				return uint64(ptrs[v]) + uint64(a.off)
			case argScratch:
				return uint64(arena.ptr) + uint64(e.mp.Scratch[s][a.i]) + uint64(a.off)
			case argMeta:
				return uint64(e.res.meta.ptr) + uint64(a.off)
			case argSeed:
				return opts.Seed
			case argStatus:
				return uint64(e.res.status.ptr) + uint64(8*statusWords*a.i)
			}
			return a.word
		}
		for _, st := range np.steps {
			var err error
			if st.gemm != nil {
				g := st.gemm.g
				g.A, g.B, g.C = Ptr(resolve(st.gemm.a)), Ptr(resolve(st.gemm.b)), Ptr(resolve(st.gemm.c))
				err = d.stream.Gemm(&g)
			} else {
				words = words[:0]
				for _, a := range st.args {
					words = append(words, resolve(a))
				}
				err = d.stream.Launch(st.kernel, st.threads, words)
			}
			if err != nil {
				return nil, fail(err)
			}
		}
	}
	if err := d.stream.Sync(); err != nil {
		return nil, fmt.Errorf("%s: stage %d: %w", d, p.Stage, err)
	}
	if err := e.checkStatus(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	outs := make([]backend.Buffer, len(e.outs))
	for i, v := range e.outs {
		blk := blocks[v]
		outs[i] = d.newBuffer(e.types[v], e.shape[v], blk, int64(ptrs[v]-blk.ptr))
	}
	return outs, nil
}

func equalShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// checkStatus downloads the status words of a run that has finished and
// returns the error of the first node, in program order, that set its
// own.
func (e *executable) checkStatus() error {
	if e.nstatus == 0 {
		return nil
	}
	buf := make([]byte, 8*statusWords*e.nstatus)
	if err := e.dev.stream.Download(buf, e.res.status.ptr); err != nil {
		return fmt.Errorf("%s: stage %d: reading the status words: %w", e.dev, e.prog.Stage, err)
	}
	words := make([]int64, len(buf)/8)
	for i := range words {
		words[i] = int64(binary.LittleEndian.Uint64(buf[8*i:]))
	}
	for s, np := range e.plans {
		if np.status == nil {
			continue
		}
		at := statusWords * np.status.slot
		if err := np.status.err(words[at : at+statusWords]); err != nil {
			n := e.prog.Nodes[s]
			return &backend.NodeError{Device: e.dev.place, Node: n.Name, Op: n.Op, Err: err}
		}
	}
	return nil
}
