package cpu

import (
	"context"
	"fmt"

	"multigpu/graph"
	"multigpu/runtime/backend"
	"multigpu/runtime/host"
)

// A program whose first layers have large activations for their weights
// (a convolutional network's high-resolution stages) spends most of
// their time moving activations through memory when the whole batch
// runs through one layer at a time: at batch 8 one of MobileNetV2's
// 96x112x112 values is 38 MB, more than the last-level cache. Compile
// then splits the program in two: a prefix of batch-parallel steps run a
// chunk of samples at a time, whose values stay in cache, and the rest
// run on the whole batch (where weights are large and products want wide
// operands). The prefix's values that the rest reads are gathered into
// whole-batch buffers. A sample's results are the same bits either way:
// every kernel computes a sample independently of the others (the
// contract the replicate pass rests on).

// chunkBudget is the most bytes of one prefix step's operands and result
// a chunk of samples may have: what stays in a core's share of the cache.
// A convolution joins the prefix while a sample's result has at least
// chunkReuse times its filters' bytes: where it has fewer (ResNet's 3x3
// stages), the products of a chunk are too narrow for the filters'
// reuse, and chunks ran ResNet-18 slower.
const (
	chunkBudget = 6 << 20
	chunkReuse  = 16
)

// prefixOps are the ops a chunked prefix may hold: each computes a
// sample from the same sample of its operands alone, and its kernel
// depends on no more than the operands' shapes.
var prefixOps = map[string]bool{
	"conv2d": true, "relu": true, "add": true, "sub": true, "mul": true, "div": true,
	"maximum": true, "minimum": true, "sigmoid": true, "tanh": true, "leaky_relu": true,
	"batchnorm": true, "maxpool2d": true, "avgpool2d": true, "concat": true,
}

// chunkPlan is where a program's prefix ends (steps [0, steps)) and how
// many samples each of its runs takes.
type chunkPlan struct {
	steps, chunk, batch int
}

// planChunks decides whether p runs its prefix in chunks of samples.
// budget bounds a chunk's bytes per step (chunkBudget).
func planChunks(p *backend.Program, budget int64) (chunkPlan, bool) {
	return planChunksAt(p, budget, budget, chunkReuse)
}

// planChunksAt is planChunks with the whole batch's bytes per step that
// make a chunked prefix worth it (more than fit) and the convolutions'
// reuse given apart, for tests.
func planChunksAt(p *backend.Program, budget, fits, reuse int64) (chunkPlan, bool) {
	if p.BeforeNode != nil {
		return chunkPlan{}, false // a hook per node, in order: run as written
	}
	batch := int64(0)
	carries := map[*graph.Node]bool{} // values with the batch on axis 0
	isBatch := func(t graph.Type) bool {
		if len(t.Shape) == 0 {
			return false
		}
		d := t.Shape[0]
		v, ok := d.Value()
		return d.Sym != "" && d.Mul == 1 && ok && (batch == 0 || v == batch)
	}
	for _, in := range p.Inputs {
		if isBatch(in.Type) {
			batch, _ = in.Type.Shape[0].Value()
			carries[in] = true
		}
	}
	if batch < 2 {
		return chunkPlan{}, false
	}
	bytes := func(t graph.Type) int64 {
		n := int64(t.DType.Size())
		for _, d := range t.Shape {
			v, _ := d.Value()
			n *= v
		}
		return n
	}
	steps, convs := 0, 0
	var peak int64 // the largest step's bytes per sample
	for i, n := range p.Nodes {
		if !prefixOps[n.Op] || n.Op == "batchnorm" && n.BoolAttr("training") || !isBatch(n.Type) {
			break
		}
		axes := make([]int, len(n.Args))
		var perSample int64 = bytes(n.Type) / batch
		ok := true
		for k, a := range n.Args {
			axes[k] = -1
			switch {
			case carries[a]:
				axes[k] = 0
				perSample += bytes(a.Type) / batch
			case isBatch(a.Type):
				ok = false // the batch on axis 0 of a value the prefix did not compute
			}
		}
		if f := graph.BatchRule(n, axes); !ok || f.Kind != graph.BatchParallel || f.Axis != 0 {
			break
		}
		if n.Op == "conv2d" {
			if w := bytes(n.Args[1].Type); reuse*w > bytes(n.Type)/batch {
				break
			}
			convs++
		}
		carries[n] = true
		peak = max(peak, perSample)
		steps = i + 1
	}
	if convs == 0 || peak*batch <= fits {
		return chunkPlan{}, false // the whole batch fits already
	}
	chunk := int(max(1, min(batch, budget/max(peak, 1))))
	if chunk >= int(batch) {
		return chunkPlan{}, false
	}
	return chunkPlan{steps: steps, chunk: chunk, batch: int(batch)}, true
}

// chunked is a program compiled as a prefix run per chunk of samples
// (one executable per chunk size) and the rest run on the whole batch.
type chunked struct {
	dev    graph.Device
	plan   chunkPlan
	nIn    int
	prefix map[int]*executable // by chunk size
	// dests holds, by chunk size, the step of the prefix that computes
	// each exit and writes it where it is told (executable.dest), or -1.
	dests  map[int][]int
	pIn    []int       // the program input of each prefix input
	pBatch []bool      // whether prefix input i carries the batch
	exits  []exitValue // the prefix's outputs
	pins   []*Buffer   // the prefix's inputs of a chunk, reused
	pouts  []any       // the prefix's results of a chunk, reused
	suffix *executable // nil when the prefix is the whole program
	sIn    []int       // each suffix input: a program input (>= 0) or exit -1-k
	outs   []int       // each program output: suffix output (>= 0) or exit -1-k
}

// exitValue is a value the prefix computes and the rest (or the caller)
// reads: gathered from the chunks into a whole-batch buffer.
type exitValue struct {
	dt     graph.DType
	shape  []int // whole batch
	row    int   // elements per sample
	output bool  // returned by the program: a fresh buffer per run
	buf    any   // kept across runs otherwise
	views  []any // buf's share of each chunk, by first sample (made once)
}

// compileChunked compiles p in chunks when planChunks says so; it
// returns nil, nil otherwise.
func (d *Device) compileChunked(p *backend.Program) (backend.Executable, error) {
	plan, ok := planChunks(p, chunkBudget)
	if !ok {
		return nil, nil
	}
	return d.compileChunks(p, plan)
}

// compileChunks builds the chunked form of p under plan.
func (d *Device) compileChunks(p *backend.Program, plan chunkPlan) (*chunked, error) {
	c := &chunked{dev: d.place, plan: plan, nIn: len(p.Inputs), prefix: map[int]*executable{}, dests: map[int][]int{}}
	inPrefix := make(map[*graph.Node]bool, plan.steps)
	for _, n := range p.Nodes[:plan.steps] {
		inPrefix[n] = true
	}
	inputIdx := make(map[*graph.Node]int, len(p.Inputs))
	for i, in := range p.Inputs {
		inputIdx[in] = i
	}
	// The prefix's exits: its values read after it or returned.
	exitIdx := map[*graph.Node]int{}
	var exitNodes []*graph.Node
	exit := func(n *graph.Node) {
		if _, ok := exitIdx[n]; !ok && inPrefix[n] {
			exitIdx[n] = len(exitNodes)
			exitNodes = append(exitNodes, n)
		}
	}
	for _, n := range p.Nodes[plan.steps:] {
		for _, a := range n.Args {
			exit(a)
		}
	}
	returned := map[*graph.Node]bool{}
	for _, o := range p.Outputs {
		exit(o)
		returned[o] = true
	}
	for _, n := range exitNodes {
		shape, err := shapeOf(n.Type)
		if err != nil {
			return nil, err
		}
		c.exits = append(c.exits, exitValue{dt: n.Type.DType, shape: shape, row: numel(shape) / plan.batch, output: returned[n]})
	}
	// The prefix, at each chunk size it runs at.
	sizes := []int{plan.chunk}
	if r := plan.batch % plan.chunk; r != 0 {
		sizes = append(sizes, r)
	}
	for k, size := range sizes {
		sub, pIn, pBatch := prefixProgram(p, plan, size, exitNodes)
		if k == 0 {
			c.pIn, c.pBatch = pIn, pBatch
		}
		exe, err := d.compile(sub)
		if err != nil {
			return nil, err
		}
		c.prefix[size] = exe
		c.dests[size] = exe.destSteps()
		exe.dest = make([]any, len(exe.steps))
	}
	// The rest, reading the exits as inputs.
	if plan.steps < len(p.Nodes) {
		sub := &backend.Program{Device: p.Device, Stage: p.Stage, Info: p.Info}
		clone := map[*graph.Node]*graph.Node{}
		arg := func(a *graph.Node) *graph.Node {
			if x, ok := clone[a]; ok {
				return x
			}
			in := a
			if k, ok := exitIdx[a]; ok {
				in = &graph.Node{Name: a.Name, Op: graph.OpInput, Type: a.Type, Device: a.Device}
				c.sIn = append(c.sIn, -1-k)
			} else {
				c.sIn = append(c.sIn, inputIdx[a])
			}
			clone[a] = in
			sub.Inputs = append(sub.Inputs, in)
			return in
		}
		for _, n := range p.Nodes[plan.steps:] {
			m := *n
			m.Args = make([]*graph.Node, len(n.Args))
			for k, a := range n.Args {
				if _, ok := clone[a]; ok || inPrefix[a] || isInput(inputIdx, a) {
					m.Args[k] = arg(a)
				} else {
					return nil, fmt.Errorf("%s: operand %%%s of %%%s is neither an input nor computed before", d.place, a.Name, n.Name)
				}
			}
			clone[n] = &m
			sub.Nodes = append(sub.Nodes, &m)
		}
		for _, o := range p.Outputs {
			if k, ok := exitIdx[o]; ok {
				c.outs = append(c.outs, -1-k)
				continue
			}
			x, ok := clone[o]
			if !ok {
				x = arg(o) // a program input returned as it is
			}
			c.outs = append(c.outs, len(sub.Outputs))
			sub.Outputs = append(sub.Outputs, x)
		}
		exe, err := d.compile(sub)
		if err != nil {
			return nil, err
		}
		c.suffix = exe
	} else {
		for _, o := range p.Outputs {
			k, ok := exitIdx[o]
			if !ok {
				return nil, fmt.Errorf("%s: output %%%s is not computed by the program", d.place, o.Name)
			}
			c.outs = append(c.outs, -1-k)
		}
	}
	return c, nil
}

func isInput(idx map[*graph.Node]int, n *graph.Node) bool {
	_, ok := idx[n]
	return ok
}

// prefixProgram returns p's first plan.steps nodes as a program over size
// samples returning exits, and for each of its inputs the program input
// it is and whether it carries the batch.
func prefixProgram(p *backend.Program, plan chunkPlan, size int, exits []*graph.Node) (*backend.Program, []int, []bool) {
	sub := &backend.Program{Device: p.Device, Stage: p.Stage, Info: p.Info}
	resize := func(t graph.Type) graph.Type {
		t.Shape = append([]graph.Dim{graph.Const(int64(size))}, t.Shape[1:]...)
		return t
	}
	clone := map[*graph.Node]*graph.Node{}
	var pIn []int
	var pBatch []bool
	for i, in := range p.Inputs {
		used := false
		for _, n := range p.Nodes[:plan.steps] {
			for _, a := range n.Args {
				used = used || a == in
			}
		}
		if !used {
			continue
		}
		m := *in
		batch := len(in.Type.Shape) > 0 && in.Type.Shape[0].Sym != ""
		if batch {
			m.Type = resize(in.Type)
		}
		clone[in] = &m
		sub.Inputs = append(sub.Inputs, &m)
		pIn, pBatch = append(pIn, i), append(pBatch, batch)
	}
	for _, n := range p.Nodes[:plan.steps] {
		m := *n
		m.Type = resize(n.Type)
		m.Args = make([]*graph.Node, len(n.Args))
		for k, a := range n.Args {
			m.Args[k] = clone[a]
		}
		clone[n] = &m
		sub.Nodes = append(sub.Nodes, &m)
	}
	for _, e := range exits {
		sub.Outputs = append(sub.Outputs, clone[e])
	}
	return sub, pIn, pBatch
}

// Run runs the prefix chunk by chunk, gathering its exits, then the rest.
func (c *chunked) Run(ctx context.Context, inputs []backend.Buffer, opts backend.RunOptions) ([]backend.Buffer, error) {
	if len(inputs) != c.nIn {
		return nil, fmt.Errorf("%s: program takes %d inputs, given %d", c.dev, c.nIn, len(inputs))
	}
	ins := make([]*Buffer, len(inputs))
	for i, b := range inputs {
		cb, ok := b.(*Buffer)
		if !ok {
			return nil, fmt.Errorf("%s: input %d is a %T, not a cpu buffer", c.dev, i, b)
		}
		ins[i] = cb
	}
	exits := make([]any, len(c.exits))
	for k := range c.exits {
		e := &c.exits[k]
		if e.output || e.buf == nil {
			buf := host.MakeSlice(e.dt, numel(e.shape))
			if !e.output {
				e.buf = buf
			}
			exits[k] = buf
		} else {
			exits[k] = e.buf
		}
	}
	if c.pins == nil {
		c.pins = make([]*Buffer, len(c.pIn))
		for k := range c.pins {
			c.pins[k] = &Buffer{}
		}
		c.pouts = make([]any, len(c.exits))
	}
	// view returns exit k's share of the chunk from sample lo (of size
	// samples), boxed once for the buffers kept across runs.
	view := func(k, lo, size int) any {
		e := &c.exits[k]
		if e.output {
			return host.Subslice(exits[k], lo*e.row, (lo+size)*e.row)
		}
		if e.views == nil {
			e.views = make([]any, c.plan.batch)
		}
		if e.views[lo] == nil {
			e.views[lo] = host.Subslice(e.buf, lo*e.row, (lo+size)*e.row)
		}
		return e.views[lo]
	}
	pins := make([]backend.Buffer, len(c.pIn))
	for lo := 0; lo < c.plan.batch; lo += c.plan.chunk {
		size := min(c.plan.chunk, c.plan.batch-lo)
		for k, i := range c.pIn {
			b := ins[i]
			if !c.pBatch[k] {
				pins[k] = b
				continue
			}
			row := numel(b.shape) / c.plan.batch
			pb := c.pins[k]
			if len(pb.shape) != len(b.shape) {
				pb.shape = make([]int, len(b.shape))
			}
			copy(pb.shape, b.shape)
			pb.shape[0] = size
			pb.dev, pb.dt, pb.data = b.dev, b.dt, host.Subslice(b.data, lo*row, (lo+size)*row)
			pins[k] = pb
		}
		exe, dests := c.prefix[size], c.dests[size]
		// The chunk's results go straight into their share of the exits.
		for k, st := range dests {
			if st >= 0 {
				exe.dest[st] = view(k, lo, size)
			}
		}
		err := exe.runTo(ctx, pins, opts, c.pouts)
		for _, pb := range c.pins {
			pb.data = nil
		}
		if err != nil {
			return nil, err
		}
		for k, d := range c.pouts {
			if st := dests[k]; st < 0 || !sameStart(d, exe.dest[st]) {
				copyInto(exits[k], lo*c.exits[k].row, d)
			}
		}
		clear(exe.dest)
		clear(c.pouts)
	}
	exitBuf := func(k int) *Buffer {
		e := &c.exits[k]
		return &Buffer{dev: c.dev, dt: e.dt, shape: e.shape, data: exits[k]}
	}
	var souts []backend.Buffer
	if c.suffix != nil {
		sins := make([]backend.Buffer, len(c.sIn))
		for k, i := range c.sIn {
			if i >= 0 {
				sins[k] = ins[i]
			} else {
				// A new Buffer each run: kernels that keep what they
				// derive from an input buffer must not take this one for
				// last run's.
				sins[k] = exitBuf(-1 - i)
			}
		}
		var err error
		if souts, err = c.suffix.Run(ctx, sins, opts); err != nil {
			return nil, err
		}
	}
	res := make([]backend.Buffer, len(c.outs))
	for k, o := range c.outs {
		if o >= 0 {
			res[k] = souts[o]
		} else {
			res[k] = exitBuf(-1 - o)
		}
	}
	return res, nil
}

// destSteps returns, for each output of e, the step whose kernel computes
// it (through the ops folded into it) and can write it into a buffer
// given by e.dest, or -1 where the output must be copied.
func (e *executable) destSteps() []int {
	steps := make([]int, len(e.outputs))
	for k, v := range e.outputs {
		for v >= e.nIn && e.steps[v-e.nIn].alias >= 0 { // folded into its producer
			st := &e.steps[v-e.nIn]
			v = st.args[st.alias]
		}
		steps[k] = -1
		if st := v - e.nIn; st >= 0 && e.steps[st].writes && e.steps[st].slot < 0 && e.steps[st].inPlace < 0 {
			steps[k] = st
		}
	}
	return steps
}

// copyInto copies src, a []T, into dst (a []T) from element at.
func copyInto(dst any, at int, src any) {
	switch d := dst.(type) {
	case []float32:
		copy(d[at:], src.([]float32))
	case []float64:
		copy(d[at:], src.([]float64))
	case []int32:
		copy(d[at:], src.([]int32))
	case []int64:
		copy(d[at:], src.([]int64))
	case []bool:
		copy(d[at:], src.([]bool))
	default:
		panic(fmt.Sprintf("cpu: no copies of %T", dst))
	}
}

// sameStart reports whether a and b, []T of one T, start at the same
// element.
func sameStart(a, b any) bool {
	switch x := a.(type) {
	case []float32:
		y, ok := b.([]float32)
		return ok && len(x) > 0 && len(y) > 0 && &x[0] == &y[0]
	case []float64:
		y, ok := b.([]float64)
		return ok && len(x) > 0 && len(y) > 0 && &x[0] == &y[0]
	case []int32:
		y, ok := b.([]int32)
		return ok && len(x) > 0 && len(y) > 0 && &x[0] == &y[0]
	case []int64:
		y, ok := b.([]int64)
		return ok && len(x) > 0 && len(y) > 0 && &x[0] == &y[0]
	case []bool:
		y, ok := b.([]bool)
		return ok && len(x) > 0 && len(y) > 0 && &x[0] == &y[0]
	}
	return false
}
