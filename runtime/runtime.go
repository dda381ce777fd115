// Package runtime executes graphs, placed or not: it lowers a graph into
// stages (package lower), compiles each device's program per batch size on
// that device's backend (runtime/cpu by default, for every device), and
// runs the stages in order, the programs of a stage at once, one goroutine
// per device, with the transfers between them (a share of the batch
// sliced out of a host tensor, a copy, a concat into a host tensor) done
// on host tensors by package host, never with gorgonia graph ops.
//
// Use:
//
//	e, err := runtime.New(g, runtime.Options{})   // lowers; unsupported ops fail here
//	err = e.SetParams(params)                      // by name; resident per device
//	out, err := e.Run(ctx, map[string]*tensor.Dense{"x": x})
//
// A symbolic batch is resolved on every call from the inputs; programs are
// compiled once per batch size and cached. When the batch is smaller than
// the number of shares the graph splits it into, only the first B
// replicas run, on one sample each (the split a graph rewritten for that
// batch would have): the slices of the others, and everything computed
// from them, are skipped, and a concat of shares or of partial results
// joins the ones that ran. So min(B, N) replicas run, and none is empty.
//
// Dropout in training mode keys its masks by (Options.Seed, the node's
// name in the single-device graph, the sample's index in the whole batch):
// the runtime gives each replica its share's offset, so a graph and its
// rewritten form draw the same masks.
//
// Values live on their devices only as long as they are read: a device
// that takes buffers back (backend.Releaser, as runtime/gpu does) gets
// each buffer a run computes as soon as the last transfer or program that
// reads it has finished (a value nothing reads, as soon as it is made),
// and everything a failed run made. Params, consts and resident transfers
// stay across runs, and the graph outputs are returned. A copy between
// two devices of one kind that copies itself (backend.Copier) does not
// pass through the host.
//
// RandomParams and RandomInputs make seeded tensors by name, so that a
// graph and its rewritten form can be run on the same values.
package runtime

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"

	"gorgonia.org/tensor"

	"multigpu/graph"
	"multigpu/lower"
	"multigpu/runtime/backend"
	"multigpu/runtime/cpu"
	"multigpu/runtime/cpu/par"
	"multigpu/runtime/host"
)

// Device is a device's backend; see package backend.
type Device = backend.Device

// Options configures an Executor.
type Options struct {
	// Devices returns the backend of each device the graph uses; nil
	// serves every device with the host backend (runtime/cpu).
	Devices func(d graph.Device) (Device, error)
	// MemoryLimit caps the bytes of the tensors of one run (inputs,
	// params and every intermediate value, each counted once per device
	// it lives on); a run over it fails before anything is allocated. Zero
	// means the machine's memory (MemTotal in /proc/meminfo); negative, no
	// limit.
	MemoryLimit int64
	// Seed keys the masks of dropout in training mode.
	Seed uint64
	// BeforeNode, when set, is called before each node of a device
	// program runs, from the goroutine running that program (concurrently
	// for different devices);
	// an error it returns fails the node and the run. Progress displays
	// and fault-injection tests use it.
	BeforeNode func(ctx context.Context, dev graph.Device, n *graph.Node) error
	// CacheSize is how many batch sizes keep their compiled programs
	// (default 8); the least recently used is dropped beyond it.
	CacheSize int
	// Threads is how many threads the CPU backend's kernels use, shared
	// by every CPU device of the executor (default: the machine's cores).
	Threads int
	// Comm, when set, runs a graph placed across ranks as this process's
	// rank of a job (ranks.go): the programs of this rank's devices and of
	// the devices of every rank, the values that cross ranks exchanged
	// through it. Devices is not asked for other ranks' devices.
	Comm Comm
}

// Executor runs one graph. Its methods are safe for concurrent use; runs
// are serialised.
type Executor struct {
	g     *graph.Graph
	plan  *lower.Plan
	opts  Options
	limit int64
	devs  map[graph.Device]Device

	// build serialises Compile: building gorgonia graphs concurrently
	// races inside gorgonia.
	build sync.Mutex
	// mu guards everything below and is held for the whole of a run.
	mu       sync.Mutex
	params   map[string]*tensor.Dense
	resident map[int]backend.Buffer // by node ID: params, consts and resident transfers on their devices
	cache    []*instance            // most recently used last
	aliases  []bool                 // by node ID: the value may share memory with a leaf or kept state
	// keep reports, by node ID, the values held across runs (params,
	// consts, resident transfers), which are never released; output, the
	// graph outputs, released only when a run fails.
	keep, output []bool
	// traffic is what the last run's transfers moved.
	traffic lower.Traffic
}

// New lowers g for the devices it is placed on and returns an executor
// for it. Params must be set with SetParams before the first run.
func New(g *graph.Graph, opts Options) (*Executor, error) {
	e := &Executor{g: g, opts: opts, devs: map[graph.Device]Device{}, resident: map[int]backend.Buffer{}}
	pool := par.New(opts.Threads)
	if e.opts.CacheSize <= 0 {
		e.opts.CacheSize = 8
	}
	e.limit = opts.MemoryLimit
	if e.limit == 0 {
		e.limit = MachineMemory()
	}
	devFor := func(d graph.Device) (Device, error) {
		if dev := e.devs[d]; dev != nil {
			return dev, nil
		}
		var dev Device
		if e.remote(d) {
			dev = cpu.NewShared(d, pool) // another rank's: checks nodes, never runs
		} else if opts.Devices != nil {
			var err error
			if dev, err = opts.Devices(d); err != nil {
				return nil, fmt.Errorf("runtime: device %s: %v", d, err)
			}
		} else {
			dev = cpu.NewShared(d, pool)
		}
		e.devs[d] = dev
		return dev, nil
	}
	var devErr error
	plan, err := lower.Lower(g, lower.Options{Check: func(n *graph.Node, d graph.Device) error {
		dev, err := devFor(d)
		if err != nil {
			devErr = err
			return err
		}
		return dev.Check(n)
	}})
	if devErr != nil {
		return nil, devErr
	}
	if err != nil {
		return nil, err
	}
	e.plan = plan
	if err := e.checkRanks(); err != nil {
		return nil, err
	}
	for i, n := range g.Nodes {
		if _, err := devFor(plan.Device[i]); err != nil {
			return nil, err
		}
		if n.Op == graph.OpConst {
			t := host.New(mustShape(n.Type), constData(n))
			b, err := e.devs[plan.Device[i]].Upload(t)
			if err != nil {
				return nil, fmt.Errorf("runtime: const %%%s: %v", n.Name, err)
			}
			e.resident[i] = b
		}
	}
	e.keep = make([]bool, len(g.Nodes))
	e.output = make([]bool, len(g.Nodes))
	for i, n := range g.Nodes {
		e.keep[i] = n.Op == graph.OpParam || n.Op == graph.OpConst
	}
	for _, st := range plan.Stages {
		for _, t := range st.Transfers {
			e.keep[t.Node.ID] = e.keep[t.Node.ID] || t.Resident
		}
	}
	for _, o := range g.Outputs {
		e.output[o.ID] = true
	}
	// An assigned value is held to the end of the run like an output, and
	// then kept as its target's value (finishAssigns).
	assigned := make([]bool, len(g.Nodes))
	for _, a := range plan.Assigns {
		assigned[a.Args[1].ID] = true
		e.output[a.Args[1].ID] = true
	}
	e.aliases = make([]bool, len(g.Nodes))
	for i, n := range g.Nodes {
		switch {
		case n.IsLeaf() || assigned[i]:
			e.aliases[i] = true
		case n.Op == "reshape" || n.Op == "flatten" || n.Op == "copy" || n.Op == "slice" ||
			(n.Op == "dropout" && !n.BoolAttr("training")):
			e.aliases[i] = e.aliases[n.Args[0].ID]
		}
	}
	return e, nil
}

// Graph returns the graph e runs.
func (e *Executor) Graph() *graph.Graph { return e.g }

// Plan returns the lowered graph.
func (e *Executor) Plan() *lower.Plan { return e.plan }

func mustShape(t graph.Type) []int {
	s := make([]int, len(t.Shape))
	for i, d := range t.Shape {
		v, ok := d.Value()
		if !ok {
			panic(fmt.Sprintf("runtime: %s has a dimension without a size", t))
		}
		s[i] = int(v)
	}
	return s
}

func constData(n *graph.Node) any {
	data := host.MakeSlice(n.Type.DType, len(n.Data))
	for i, v := range n.Data {
		switch d := data.(type) {
		case []float32:
			d[i] = float32(v)
		case []float64:
			d[i] = v
		case []int32:
			d[i] = int32(v)
		case []int64:
			d[i] = int64(v)
		case []bool:
			d[i] = v != 0
		}
	}
	return data
}

// SetParams sets the value of every param of the graph, by name: a missing,
// extra or misshapen param is an error naming it. The tensors are copied
// and uploaded to the devices that hold them, where they stay across runs.
func (e *Executor) SetParams(params map[string]*tensor.Dense) error {
	var errs []string
	want := e.g.Params()
	for _, p := range want {
		t, ok := params[p.Name]
		if !ok {
			errs = append(errs, fmt.Sprintf("param %%%s: missing (expected %s)", p.Name, p.Type))
			continue
		}
		if err := checkTensor(t, p.Type, -1); err != nil {
			errs = append(errs, fmt.Sprintf("param %%%s: %v", p.Name, err))
		}
	}
	for _, name := range sortedKeys(params) {
		if n := e.g.Lookup(name); n == nil || n.Op != graph.OpParam {
			errs = append(errs, fmt.Sprintf("param %%%s: the graph has no such param", name))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("runtime: %s", strings.Join(errs, "; "))
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.params = make(map[string]*tensor.Dense, len(want))
	for id := range e.resident {
		if e.g.Nodes[id].Op != graph.OpConst {
			delete(e.resident, id)
		}
	}
	for _, p := range want {
		t := host.Clone(params[p.Name])
		e.params[p.Name] = t
		b, err := e.devs[e.plan.Device[p.ID]].Upload(t)
		if err != nil {
			return fmt.Errorf("runtime: param %%%s: %v", p.Name, err)
		}
		e.resident[p.ID] = b
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// checkTensor checks t against type want; batch is the batch size the
// batch axis must have (-1: any, returned through the error-free path).
func checkTensor(t *tensor.Dense, want graph.Type, batch int64) error {
	if t == nil {
		return fmt.Errorf("nil tensor")
	}
	dt, ok := host.DTypeOf(t)
	if !ok || dt != want.DType {
		return fmt.Errorf("expected element type %s, given %v", want.DType, t.Dtype())
	}
	got := host.Shape(t)
	bad := len(got) != len(want.Shape)
	for i := 0; !bad && i < len(got); i++ {
		d := want.Shape[i]
		if v, ok := d.Value(); ok {
			bad = int64(got[i]) != v
		} else if d.IsBatch() && batch >= 0 {
			bad = int64(got[i]) != batch
		} else {
			bad = got[i] < 1
		}
	}
	if bad {
		return fmt.Errorf("expected shape %s, given %v", want, shapeString(got))
	}
	return nil
}

func shapeString(s []int) string {
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = fmt.Sprint(d)
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// batchOf validates the inputs and returns the batch size they carry (0
// when no input has a batch axis).
func (e *Executor) batchOf(inputs map[string]*tensor.Dense) (int64, error) {
	var errs []string
	batch, from := int64(-1), ""
	for _, in := range e.g.Inputs() {
		t, ok := inputs[in.Name]
		if !ok {
			errs = append(errs, fmt.Sprintf("input %%%s: missing (expected %s)", in.Name, in.Type))
			continue
		}
		if err := checkTensor(t, in.Type, -1); err != nil {
			errs = append(errs, fmt.Sprintf("input %%%s: %v", in.Name, err))
			continue
		}
		ax := in.Type.BatchAxis()
		if ax < 0 {
			continue
		}
		b := int64(t.Shape()[ax])
		switch {
		case batch < 0:
			batch, from = b, in.Name
		case b != batch:
			errs = append(errs, fmt.Sprintf("input %%%s: expected shape %s with batch %d (as %%%s), given %v",
				in.Name, in.Type, batch, from, shapeString(host.Shape(t))))
		}
	}
	for _, name := range sortedKeys(inputs) {
		if n := e.g.Lookup(name); n == nil || n.Op != graph.OpInput {
			errs = append(errs, fmt.Sprintf("input %%%s: the graph has no such input", name))
		}
	}
	if len(errs) > 0 {
		return 0, fmt.Errorf("runtime: %s", strings.Join(errs, "; "))
	}
	return max(batch, 0), nil
}

// Run runs the graph on inputs (by name) and returns its outputs by name.
// The outputs share no memory with the inputs or params. An error in one
// device's program cancels the others and is returned as one error naming
// the device and node (a *backend.NodeError inside); no goroutine
// outlives the call.
func (e *Executor) Run(ctx context.Context, inputs map[string]*tensor.Dense) (map[string]*tensor.Dense, error) {
	return e.RunSeed(ctx, inputs, e.opts.Seed)
}

// Prepare compiles the graph for batch size batch (0 when no input has
// a batch axis) ahead of a run, and reports a run that would exceed the
// memory limit before its inputs are even made.
func (e *Executor) Prepare(batch int64) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, err := e.instance(batch)
	return err
}

// RunSeed is Run with seed keying the masks of dropout in training mode
// instead of Options.Seed, so that a trainer draws new masks every step.
func (e *Executor) RunSeed(ctx context.Context, inputs map[string]*tensor.Dense, seed uint64) (map[string]*tensor.Dense, error) {
	batch, err := e.batchOf(inputs)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if ps := e.g.Params(); len(ps) > 0 && e.params == nil {
		return nil, fmt.Errorf("runtime: params not set (call SetParams with %s)", nodeList(ps))
	}
	inst, err := e.instance(batch)
	if err != nil {
		return nil, err
	}
	return e.execute(ctx, inst, inputs, seed)
}

func nodeList(ns []*graph.Node) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = "%" + n.Name
	}
	return strings.Join(s, ", ")
}

// run is the state of one execution: the buffer holding each value on
// its device, and how many transfers and programs still read it.
type run struct {
	e       *Executor
	env     []backend.Buffer // by node ID; nil once released or dropped
	left    []int            // by node ID: readers yet to finish
	traffic lower.Traffic    // bytes the transfers moved
}

// read notes that a transfer or program reading the values ids has
// finished, and releases those that nothing reads any more.
func (r *run) read(ids []int) {
	for _, id := range ids {
		if r.left[id]--; r.left[id] == 0 {
			r.drop(id)
		}
	}
}

// produced stores b as the value of node id, and releases it at once
// when nothing of the run reads it.
func (r *run) produced(id int, b backend.Buffer) {
	r.env[id] = b
	if r.left[id] == 0 {
		r.drop(id)
	}
}

// drop forgets the value of node id and releases its buffer to its
// device, unless the value is kept across runs or is a graph output.
func (r *run) drop(id int) {
	if r.e.keep[id] || r.e.output[id] {
		return
	}
	r.release(id)
}

// release gives the buffer of node id back to its device, when the device
// takes buffers back (backend.Releaser), and forgets it.
func (r *run) release(id int) {
	b := r.env[id]
	if b == nil {
		return
	}
	r.env[id] = nil
	if rel, ok := r.e.devs[r.e.plan.Device[id]].(backend.Releaser); ok {
		rel.Release(b)
	}
}

// fail releases everything the run holds but the values kept across
// runs: graph outputs too, since a failed run returns none.
func (r *run) fail() {
	for id := range r.env {
		if !r.e.keep[id] {
			r.release(id)
		}
	}
}

// execute runs the stages of inst. Every value the run computes is
// released to its device as soon as its last reader has finished (see
// backend.Releaser), and everything it holds when it fails.
func (e *Executor) execute(ctx context.Context, inst *instance, inputs map[string]*tensor.Dense, seed uint64) (_ map[string]*tensor.Dense, err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r := &run{e: e, env: make([]backend.Buffer, len(e.g.Nodes)), left: slices.Clone(inst.readers)}
	defer func() {
		if err != nil {
			r.fail()
		}
	}()
	for i, n := range e.g.Nodes {
		if inst.nodes[i] == nil {
			continue
		}
		switch n.Op {
		case graph.OpInput:
			b, err := e.devs[e.plan.Device[i]].Upload(inputs[n.Name])
			if err != nil {
				return nil, fmt.Errorf("runtime: input %%%s: %v", n.Name, err)
			}
			r.produced(i, b)
		case graph.OpParam, graph.OpConst:
			r.env[i] = e.resident[i]
		}
	}
	opts := backend.RunOptions{Seed: seed}
	defer func() { e.traffic = r.traffic }()
	for _, st := range inst.stages {
		for _, t := range st.transfers {
			var err error
			if t.Kind == lower.AllReduce {
				err = e.allreduce(ctx, inst, t, r, opts)
			} else {
				err = e.transfer(inst, t, r)
			}
			if err != nil {
				return nil, err
			}
		}
		if err := e.runPrograms(ctx, st.progs, r, opts); err != nil {
			return nil, err
		}
	}
	out := make(map[string]*tensor.Dense, len(e.g.Outputs))
	for _, o := range e.g.Outputs {
		v := o
		if o.Op == graph.OpAssign {
			v = o.Args[1] // an assign yields its value
		}
		b := r.env[v.ID]
		if b == nil {
			return nil, fmt.Errorf("runtime: output %%%s was not computed", o.Name)
		}
		t, err := e.devs[e.plan.Device[v.ID]].Download(b)
		if err != nil {
			return nil, fmt.Errorf("runtime: output %%%s: %v", o.Name, err)
		}
		if e.aliases[v.ID] {
			t = host.Clone(t)
		}
		out[o.Name] = t
	}
	if err := e.finishAssigns(inst, r); err != nil {
		return nil, err
	}
	return out, nil
}

// transfer performs one slice, copy or concat between devices. A copy
// between two devices of one kind that copies itself (backend.Copier)
// stays off the host; everything else is downloaded, moved on the host
// and uploaded.
func (e *Executor) transfer(inst *instance, t *lower.Transfer, r *run) error {
	if e.crossRank(t) {
		return e.transferRanks(inst, t, r)
	}
	id := t.Node.ID
	n := inst.nodes[id]
	if n == nil {
		return nil
	}
	env := r.env
	if t.Resident {
		if b := e.resident[id]; b != nil {
			env[id] = b
			r.read(inst.reads[id])
			return nil
		}
	}
	fail := func(err error) error {
		return fmt.Errorf("runtime: stage %d: transfer: %w",
			t.Stage, &backend.NodeError{Device: e.plan.Device[id], Node: n.Name, Op: n.Op, Err: err})
	}
	for _, a := range n.Args {
		if env[a.ID] == nil {
			return fail(fmt.Errorf("operand %%%s is not available", a.Name))
		}
	}
	dst := e.devs[e.plan.Device[id]]
	to := e.plan.Device[id]
	if t.Kind == lower.Concat {
		for _, a := range n.Args {
			r.traffic.Add(e.plan.Merge, e.plan.Device[a.ID], to, bytesOf(a))
		}
	} else {
		r.traffic.Add(e.plan.Merge, e.plan.Device[n.Args[0].ID], to, bytesOf(n))
		if t.Resident {
			r.traffic.Resident += bytesOf(n)
		}
	}
	var b backend.Buffer
	if c, ok := dst.(backend.Copier); ok && t.Kind == lower.Copy && sameKind(dst, e.devs[e.plan.Device[n.Args[0].ID]]) {
		var err error
		if b, err = c.CopyFrom(env[n.Args[0].ID]); err != nil {
			return fail(err)
		}
	} else if hb, ok, err := cpu.Transfer(dst, t.Kind, n, argBuffers(n, env)); ok {
		// Between host devices: on the data itself, without host tensors.
		if err != nil {
			return fail(err)
		}
		b = hb
	} else {
		val, err := e.onHost(t, n, env)
		if err != nil {
			return fail(err)
		}
		if b, err = dst.Upload(val); err != nil {
			return fail(err)
		}
	}
	if t.Resident {
		e.resident[id] = b
	}
	r.produced(id, b)
	r.read(inst.reads[id])
	return nil
}

// argBuffers returns the buffers of n's operands.
func argBuffers(n *graph.Node, env []backend.Buffer) []backend.Buffer {
	bs := make([]backend.Buffer, len(n.Args))
	for i, a := range n.Args {
		bs[i] = env[a.ID]
	}
	return bs
}

// sameKind reports whether a and b are devices of one backend (the same
// concrete type), between which a backend.Copier copies.
func sameKind(a, b Device) bool { return reflect.TypeOf(a) == reflect.TypeOf(b) }

// onHost computes transfer node n from its operands downloaded to the
// host.
func (e *Executor) onHost(t *lower.Transfer, n *graph.Node, env []backend.Buffer) (*tensor.Dense, error) {
	hostArgs := make([]*tensor.Dense, len(n.Args))
	for i, a := range n.Args {
		h, err := e.devs[e.plan.Device[a.ID]].Download(env[a.ID])
		if err != nil {
			return nil, err
		}
		hostArgs[i] = h
	}
	switch t.Kind {
	case lower.Copy:
		return hostArgs[0], nil
	case lower.Slice:
		shape := host.Shape(hostArgs[0])
		ax, err := n.NormAxis("axis", len(shape))
		if err != nil {
			return nil, err
		}
		start, end, err := lower.SliceBounds(n, int64(shape[ax]))
		if err != nil {
			return nil, err
		}
		return host.Slice(hostArgs[0], ax, int(start), int(end)), nil
	case lower.Concat:
		ax, err := n.NormAxis("axis", len(n.Type.Shape))
		if err != nil {
			return nil, err
		}
		return host.Concat(ax, hostArgs...)
	}
	return nil, fmt.Errorf("unknown transfer kind %d", t.Kind)
}

// runPrograms runs the programs of one stage at once, one goroutine per
// device, and stores their outputs in r; then it releases what no later
// stage reads. The first failure cancels the others; its error is
// returned, and the outputs of the programs that finished are left in r
// for the caller to release.
func (e *Executor) runPrograms(ctx context.Context, progs []*progInst, r *run, opts backend.RunOptions) error {
	if len(progs) == 0 {
		return nil
	}
	env := r.env
	ins := make([][]backend.Buffer, len(progs))
	for i, p := range progs {
		ins[i] = make([]backend.Buffer, len(p.prog.Inputs))
		for j, n := range p.prog.Inputs {
			if ins[i][j] = env[n.ID]; ins[i][j] == nil {
				return fmt.Errorf("runtime: stage %d: %s: input %%%s is not available", p.prog.Stage, p.prog.Device, n.Name)
			}
		}
	}
	outs := make([][]backend.Buffer, len(progs))
	errs := make([]error, len(progs))
	if len(progs) == 1 {
		outs[0], errs[0] = progs[0].exe.Run(ctx, ins[0], opts)
	} else {
		rctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		for i, p := range progs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				outs[i], errs[i] = p.exe.Run(rctx, ins[i], opts)
				if errs[i] != nil {
					cancel()
				}
			}()
		}
		wg.Wait()
		cancel()
	}
	for i, p := range progs {
		if errs[i] == nil && len(outs[i]) != len(p.prog.Outputs) {
			errs[i] = fmt.Errorf("%s: program returned %d outputs, expected %d", p.prog.Device, len(outs[i]), len(p.prog.Outputs))
			if rel, ok := e.devs[p.prog.Device].(backend.Releaser); ok {
				for _, b := range outs[i] {
					rel.Release(b)
				}
			}
		}
		if errs[i] != nil {
			continue
		}
		for j, n := range p.prog.Outputs {
			env[n.ID] = outs[i][j]
		}
	}
	if err := firstError(ctx, progs, errs); err != nil {
		return err
	}
	for _, p := range progs {
		r.read(p.reads)
		for _, n := range p.prog.Outputs {
			r.produced(n.ID, env[n.ID])
		}
	}
	return nil
}

// firstError picks the error that caused a stage to fail: the caller's
// cancellation, else the first error that is not a consequence of another
// program's failure.
func firstError(ctx context.Context, progs []*progInst, errs []error) error {
	var cause, any error
	var at *progInst
	for i, err := range errs {
		if err == nil {
			continue
		}
		if any == nil {
			any, at = err, progs[i]
		}
		if cause == nil && !errors.Is(err, context.Canceled) {
			cause, at = err, progs[i]
		}
	}
	if any == nil {
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("runtime: stage %d: %w", at.prog.Stage, ctx.Err())
	}
	if cause == nil {
		cause = any
	}
	return fmt.Errorf("runtime: stage %d: %w", at.prog.Stage, cause)
}
