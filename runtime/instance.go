package runtime

import (
	"bufio"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"multigpu/graph"
	"multigpu/lower"
	"multigpu/runtime/backend"
)

// instance is the graph compiled for one batch size: every node's concrete
// type, the nodes that run, and each stage's compiled programs.
type instance struct {
	batch  int64
	nodes  []*graph.Node // by node ID: a copy with concrete types; nil when not run at this batch
	stages []*stageInst
	bytes  int64 // estimated bytes of one run's tensors
	// readers counts, by node ID, the transfers and programs that read
	// the value; reads lists, by the node ID of a transfer, the values it
	// reads.
	readers []int
	reads   [][]int
	// groups holds, by the node ID of every member, the allreduce group
	// it belongs to.
	groups map[int]*groupInst
}

type stageInst struct {
	transfers []*lower.Transfer
	progs     []*progInst
}

type progInst struct {
	prog  *backend.Program
	exe   backend.Executable
	reads []int // node IDs of prog.Inputs
}

// instance returns the compiled form of the graph for batch, from the
// cache or built now. e.mu is held.
func (e *Executor) instance(batch int64) (*instance, error) {
	for i, inst := range e.cache {
		if inst.batch == batch {
			e.cache = append(append(e.cache[:i:i], e.cache[i+1:]...), inst)
			return inst, nil
		}
	}
	inst, err := e.concretize(batch)
	if err != nil {
		return nil, err
	}
	if e.limit > 0 && inst.bytes > e.limit {
		return nil, fmt.Errorf("runtime: a run at batch %d needs about %s of tensors, over the memory limit of %s",
			batch, formatBytes(inst.bytes), formatBytes(e.limit))
	}
	if err := e.compile(inst); err != nil {
		return nil, err
	}
	if len(e.cache) >= e.opts.CacheSize {
		e.cache = e.cache[1:]
	}
	e.cache = append(e.cache, inst)
	return inst, nil
}

// concretize gives every node of the graph its type at batch size batch.
// When the batch is smaller than a share slice's parts, shares batch and
// up are dropped with everything that depends on them, the others take
// one sample each, and concats join what is left.
func (e *Executor) concretize(batch int64) (*instance, error) {
	g := e.g
	inst := &instance{batch: batch, nodes: make([]*graph.Node, len(g.Nodes))}
	conc := inst.nodes
	dead := make([]bool, len(g.Nodes))
	for i, n := range g.Nodes {
		c := &graph.Node{Name: n.Name, Op: n.Op, Attrs: n.Attrs, Device: e.plan.Device[i], Data: n.Data, Pos: n.Pos, ID: i}
		conc[i] = c
		if n.IsLeaf() {
			c.Type = bindBatch(n.Type, batch)
			continue
		}
		for _, a := range n.Args {
			if dead[a.ID] {
				if n.Op != "concat" && !(n.Op == "allreduce" && lower.IsTransfer(n)) {
					dead[i] = true
				}
				continue
			}
			c.Args = append(c.Args, conc[a.ID])
		}
		if (n.Op == "concat" || n.Op == "allreduce") && len(c.Args) == 0 {
			dead[i] = true
		}
		if n.Op == "slice" && !dead[i] {
			if parts, ok := n.Attrs.Get("parts"); ok && parts.Int > batch && batch > 0 {
				part, _ := n.Attrs.Get("part")
				if part.Int >= batch {
					dead[i] = true
				} else {
					c.Attrs = n.Attrs.Set("parts", graph.Int(batch))
				}
			}
		}
		if dead[i] {
			continue
		}
		t, err := graph.Infer(c)
		if err != nil {
			return nil, fmt.Errorf("runtime: %%%s at batch %d: %v", n.Name, batch, err)
		}
		c.Type = t
	}
	needed := make([]bool, len(g.Nodes))
	for _, o := range g.Outputs {
		if dead[o.ID] {
			return nil, fmt.Errorf("runtime: output %%%s depends only on replicas that do not run at batch %d", o.Name, batch)
		}
		needed[o.ID] = true
	}
	for _, a := range e.plan.Assigns {
		if dead[a.ID] {
			return nil, fmt.Errorf("runtime: assign %%%s depends only on replicas that do not run at batch %d", a.Name, batch)
		}
		needed[a.ID] = true
	}
	for i := len(g.Nodes) - 1; i >= 0; i-- {
		if needed[i] {
			for _, a := range conc[i].Args {
				needed[a.ID] = true
			}
		}
	}
	for i := range conc {
		if !needed[i] || e.plan.StageOf[i] < 0 && !g.Nodes[i].IsLeaf() {
			conc[i] = nil
		}
	}
	for _, c := range conc {
		if c == nil {
			continue
		}
		elems, ok := c.Type.Elems()
		if !ok {
			return nil, fmt.Errorf("runtime: %%%s has no concrete shape at batch %d", c.Name, batch)
		}
		b := elems*c.Type.DType.Size() + scratchBytes(c) // a kernel's scratch too (scratch.go)
		if elems > (1<<63-1)/8 || inst.bytes+b < inst.bytes {
			inst.bytes = 1<<63 - 1
			break
		}
		inst.bytes += b // every value counted once, views too: an upper bound
	}
	return inst, nil
}

// bindBatch returns t with its batch axis bound to batch.
func bindBatch(t graph.Type, batch int64) graph.Type {
	t = t.Clone()
	for i, d := range t.Shape {
		if d.IsBatch() && d.Bound == 0 && batch > 0 {
			t.Shape[i].Bound = batch
		}
	}
	return t
}

// compile builds the programs of every stage for inst, holding e.build.
func (e *Executor) compile(inst *instance) error {
	e.build.Lock()
	defer e.build.Unlock()
	offsets := e.shareOffsets(inst)
	inst.readers = make([]int, len(inst.nodes))
	inst.reads = make([][]int, len(inst.nodes))
	for _, st := range e.plan.Stages {
		si := &stageInst{}
		for _, t := range st.Transfers {
			c := inst.nodes[t.Node.ID]
			if c == nil || t.Kind != lower.AllReduce && e.remote(e.plan.Device[c.ID]) {
				continue // another rank's (ranks.go)
			}
			si.transfers = append(si.transfers, t)
			if t.Kind == lower.AllReduce && inst.groups[c.ID] == nil {
				gi, err := e.compileGroup(inst, t)
				if err != nil {
					return err
				}
				if inst.groups == nil {
					inst.groups = map[int]*groupInst{}
				}
				for _, m := range gi.members {
					inst.groups[m.ID] = gi
				}
			}
			for _, a := range c.Args {
				if !slices.Contains(inst.reads[c.ID], a.ID) {
					inst.reads[c.ID] = append(inst.reads[c.ID], a.ID)
					inst.readers[a.ID]++
				}
			}
		}
		for _, p := range st.Programs {
			if e.remote(p.Device) {
				continue // another rank's (ranks.go)
			}
			bp := &backend.Program{Device: p.Device, Stage: p.Stage, BeforeNode: e.opts.BeforeNode, Info: map[string]backend.NodeInfo{}}
			for _, n := range p.Nodes {
				if c := inst.nodes[n.ID]; c != nil {
					bp.Nodes = append(bp.Nodes, c)
					if n.Op == "dropout" {
						bp.Info[n.Name] = e.nodeInfo(n, offsets)
					}
				}
			}
			if len(bp.Nodes) == 0 {
				continue
			}
			inProg := map[*graph.Node]bool{}
			for _, c := range bp.Nodes {
				inProg[c] = true
			}
			seen := map[*graph.Node]bool{}
			for _, c := range bp.Nodes {
				for _, a := range c.Args {
					if !inProg[a] && !seen[a] {
						seen[a] = true
						bp.Inputs = append(bp.Inputs, a)
					}
				}
			}
			for _, o := range p.Outputs {
				if c := inst.nodes[o.ID]; c != nil {
					bp.Outputs = append(bp.Outputs, c)
				}
			}
			exe, err := e.devs[p.Device].Compile(bp)
			if err != nil {
				return fmt.Errorf("runtime: compiling stage %d for batch %d: %w", p.Stage, inst.batch, err)
			}
			pi := &progInst{prog: bp, exe: exe}
			for _, in := range bp.Inputs {
				pi.reads = append(pi.reads, in.ID)
				inst.readers[in.ID]++
			}
			si.progs = append(si.progs, pi)
		}
		inst.stages = append(inst.stages, si)
	}
	return nil
}

// shareOffsets returns the index of the first sample of every share of
// the batch, by part.
func (e *Executor) shareOffsets(inst *instance) map[int]int64 {
	offsets := map[int]int64{}
	for _, c := range inst.nodes {
		if c == nil || c.Op != "slice" || len(c.Args) != 1 {
			continue
		}
		part, ok := c.Attrs.Get("part")
		if !ok {
			continue
		}
		ax, err := c.NormAxis("axis", len(c.Args[0].Type.Shape))
		if err != nil {
			continue
		}
		size, ok := c.Args[0].Type.Shape[ax].Value()
		if !ok {
			continue
		}
		if start, _, err := lower.SliceBounds(c, size); err == nil {
			offsets[int(part.Int)] = start
		}
	}
	return offsets
}

// nodeInfo places dropout node n's operand in the whole batch: its key is
// its key attribute (the replicate pass sets it to the name of the node a
// clone replicates), else its own name; its batch axis is the one holding
// the batch or a share, its offset that share's first sample.
func (e *Executor) nodeInfo(n *graph.Node, offsets map[int]int64) backend.NodeInfo {
	info := backend.NodeInfo{Key: n.Name, BatchAxis: -1, BatchMul: 1}
	if key, _ := n.Attr("key"); key.Str != "" {
		info.Key = key.Str
	}
	for ax, d := range n.Args[0].Type.Shape {
		if d.Sym == "" {
			continue
		}
		info.BatchAxis, info.BatchMul = ax, d.Mul
		if d.Part >= 0 {
			info.Offset = offsets[d.Part]
		}
		break
	}
	return info
}

// MachineMemory returns the machine's memory in bytes (MemTotal in
// /proc/meminfo), or 0 when it cannot be read.
func MachineMemory() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			if err != nil {
				return 0
			}
			return kb * 1024
		}
	}
	return 0
}

func formatBytes(b int64) string {
	const unit = 1024
	if b < unit {
		return fmt.Sprintf("%d B", b)
	}
	div, exp := int64(unit), 0
	for n := b / unit; n >= unit && exp < 4; n /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(b)/float64(div), "KMGTP"[exp])
}
