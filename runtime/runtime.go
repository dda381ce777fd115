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
// RandomParams and RandomInputs make seeded tensors by name, so that a
// graph and its rewritten form can be run on the same values.
package runtime

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"gorgonia.org/tensor"

	"multigpu/graph"
	"multigpu/lower"
	"multigpu/runtime/backend"
	"multigpu/runtime/cpu"
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
	aliases  []bool                 // by node ID: the value may share memory with a leaf
}

// New lowers g for the devices it is placed on and returns an executor
// for it. Params must be set with SetParams before the first run.
func New(g *graph.Graph, opts Options) (*Executor, error) {
	e := &Executor{g: g, opts: opts, devs: map[graph.Device]Device{}, resident: map[int]backend.Buffer{}}
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
		if opts.Devices != nil {
			var err error
			if dev, err = opts.Devices(d); err != nil {
				return nil, fmt.Errorf("runtime: device %s: %v", d, err)
			}
		} else {
			dev = cpu.New(d)
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
	e.aliases = make([]bool, len(g.Nodes))
	for i, n := range g.Nodes {
		switch {
		case n.IsLeaf():
			e.aliases[i] = true
		case n.Op == "reshape" || n.Op == "flatten" || n.Op == "copy" || n.Op == "slice" ||
			(n.Op == "dropout" && !boolAttr(n, "training")):
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

func boolAttr(n *graph.Node, name string) bool {
	v, ok := n.Attr(name)
	return ok && v.Kind == graph.AttrBool && v.Bool
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

// execute runs the stages of inst.
func (e *Executor) execute(ctx context.Context, inst *instance, inputs map[string]*tensor.Dense, seed uint64) (map[string]*tensor.Dense, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	env := make([]backend.Buffer, len(e.g.Nodes))
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
			env[i] = b
		case graph.OpParam, graph.OpConst:
			env[i] = e.resident[i]
		}
	}
	opts := backend.RunOptions{Seed: seed}
	for s, st := range inst.stages {
		for _, t := range st.transfers {
			if err := e.transfer(inst, t, env); err != nil {
				return nil, err
			}
		}
		if err := e.runPrograms(ctx, st.progs, env, opts); err != nil {
			return nil, err
		}
		for i, last := range e.plan.LastUse {
			if last == s && env[i] != nil {
				env[i] = nil // free what no later stage reads
			}
		}
	}
	out := make(map[string]*tensor.Dense, len(e.g.Outputs))
	for _, o := range e.g.Outputs {
		b := env[o.ID]
		if b == nil {
			return nil, fmt.Errorf("runtime: output %%%s was not computed", o.Name)
		}
		t, err := e.devs[e.plan.Device[o.ID]].Download(b)
		if err != nil {
			return nil, fmt.Errorf("runtime: output %%%s: %v", o.Name, err)
		}
		if e.aliases[o.ID] {
			t = host.Clone(t)
		}
		out[o.Name] = t
	}
	return out, nil
}

// transfer performs one slice, copy or concat between devices.
func (e *Executor) transfer(inst *instance, t *lower.Transfer, env []backend.Buffer) error {
	id := t.Node.ID
	n := inst.nodes[id]
	if n == nil {
		return nil
	}
	if t.Resident {
		if b := e.resident[id]; b != nil {
			env[id] = b
			return nil
		}
	}
	fail := func(err error) error {
		return fmt.Errorf("runtime: stage %d: transfer: %w",
			t.Stage, &backend.NodeError{Device: e.plan.Device[id], Node: n.Name, Op: n.Op, Err: err})
	}
	hostArgs := make([]*tensor.Dense, len(n.Args))
	for i, a := range n.Args {
		b := env[a.ID]
		if b == nil {
			return fail(fmt.Errorf("operand %%%s is not available", a.Name))
		}
		h, err := e.devs[e.plan.Device[a.ID]].Download(b)
		if err != nil {
			return fail(err)
		}
		hostArgs[i] = h
	}
	var val *tensor.Dense
	switch t.Kind {
	case lower.Copy:
		val = hostArgs[0]
	case lower.Slice:
		shape := host.Shape(hostArgs[0])
		ax, err := n.NormAxis("axis", len(shape))
		if err != nil {
			return fail(err)
		}
		start, end, err := lower.SliceBounds(n, int64(shape[ax]))
		if err != nil {
			return fail(err)
		}
		val = host.Slice(hostArgs[0], ax, int(start), int(end))
	case lower.Concat:
		ax, err := n.NormAxis("axis", len(n.Type.Shape))
		if err != nil {
			return fail(err)
		}
		if val, err = host.Concat(ax, hostArgs...); err != nil {
			return fail(err)
		}
	}
	b, err := e.devs[e.plan.Device[id]].Upload(val)
	if err != nil {
		return fail(err)
	}
	env[id] = b
	if t.Resident {
		e.resident[id] = b
	}
	return nil
}

// runPrograms runs the programs of one stage at once, one goroutine per
// device, and stores their outputs in env. The first failure cancels the
// others; its error is returned.
func (e *Executor) runPrograms(ctx context.Context, progs []*progInst, env []backend.Buffer, opts backend.RunOptions) error {
	if len(progs) == 0 {
		return nil
	}
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
	if err := firstError(ctx, progs, errs); err != nil {
		return err
	}
	for i, p := range progs {
		for j, n := range p.prog.Outputs {
			env[n.ID] = outs[i][j]
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
