package replicate

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"

	"multigpu/graph"
)

// DeviceCost is what one device does in a rewritten graph.
type DeviceCost struct {
	Device graph.Device
	// Nodes counts the nodes placed on the device.
	Nodes int
	// FLOPs estimates the floating-point operations of one run.
	FLOPs int64
	// ParamBytes is the size of the params (and their resident copies)
	// held on the device.
	ParamBytes int64
	// ActivationBytes is the size of every other value computed on, or
	// copied to, the device in one run.
	ActivationBytes int64
	// InBytes is the size of the values copied, sliced or concatenated
	// onto the device from other devices in one run.
	InBytes int64
}

// Explanation is the cost of a rewritten graph, per device, at one batch
// size, with warnings when the rewrite cannot speed the model up.
type Explanation struct {
	Batch   int64
	Merge   graph.Device
	Devices []DeviceCost // replicas in order, then the merge device
	// Warnings name the batch-crossing ops that keep work on the merge device.
	Warnings []string
	// FromMerge, ToMerge and Peer count the bytes one run moves from the
	// merge device to the others, to it, and between two other devices
	// (an allreduce group's partials go to its first member, the result
	// from there to the others); Resident, the part of FromMerge that
	// copies params and consts, which move again only when they change.
	FromMerge, ToMerge, Peer, Resident int64
}

// Explain estimates the per-device cost of out, the rewrite of src with
// opts (whose Batch, or src's bound batch, gives the concrete size).
func Explain(src, out *graph.Graph, opts Options) (*Explanation, error) {
	opts, err := opts.check()
	if err != nil {
		return nil, err
	}
	_, bound := out.Batch()
	if bound == 0 {
		return nil, fmt.Errorf("explain: the batch is symbolic; give a batch size (--batch B)")
	}
	e := &Explanation{Batch: bound, Merge: opts.Merge}
	index := map[graph.Device]int{}
	add := func(d graph.Device) *DeviceCost {
		i, ok := index[d]
		if !ok {
			i = len(e.Devices)
			index[d] = i
			e.Devices = append(e.Devices, DeviceCost{Device: d})
		}
		return &e.Devices[i]
	}
	for _, id := range opts.GPUs {
		add(graph.GPUDevice(id))
	}
	add(opts.Merge)
	var total int64
	roots := map[*graph.Node]*graph.Node{} // allreduce groups' first members, by first operand
	for _, n := range out.Nodes {
		c := add(n.Device)
		c.Nodes++
		bytes := typeBytes(n.Type)
		f := flops(n)
		c.FLOPs = satAdd(c.FLOPs, f)
		total = satAdd(total, f)
		switch {
		case n.Op == graph.OpParam || (n.Op == "copy" && n.Args[0].Op == graph.OpParam):
			c.ParamBytes = satAdd(c.ParamBytes, bytes)
		default:
			c.ActivationBytes = satAdd(c.ActivationBytes, bytes)
		}
		if n.Op == "copy" || n.Op == "slice" || n.Op == "concat" {
			for _, a := range n.Args {
				if a.Device != n.Device {
					c.InBytes = satAdd(c.InBytes, typeBytes(a.Type))
					moved := typeBytes(a.Type)
					if n.Op == "slice" {
						c.InBytes = satAdd(c.InBytes, max(bytes-typeBytes(a.Type), 0))
						moved = bytes
					}
					e.move(a.Device, n.Device, moved)
					if n.Op == "copy" && a.IsLeaf() && a.Op != graph.OpInput {
						e.Resident = satAdd(e.Resident, moved)
					}
				}
			}
		}
		if n.Op == "allreduce" {
			root := roots[n.Args[0]]
			if root == nil {
				root = n
				roots[n.Args[0]] = n
				for _, a := range n.Args {
					if a.Device != n.Device {
						c.InBytes = satAdd(c.InBytes, bytes)
						e.move(a.Device, n.Device, bytes)
					}
				}
			} else if root.Device != n.Device {
				c.InBytes = satAdd(c.InBytes, bytes)
				e.move(root.Device, n.Device, bytes)
			}
		}
	}
	// Drop replicas that got no work (a batch smaller than the GPU count).
	e.Devices = slices.DeleteFunc(e.Devices, func(c DeviceCost) bool { return c.Nodes == 0 })
	m := e.Devices[len(e.Devices)-1]
	for _, c := range e.Devices {
		if c.Device == opts.Merge {
			m = c
		}
	}
	if total > 0 && m.FLOPs > total/10 {
		an, err := Analyze(src, opts.BatchNorm)
		if err != nil {
			return nil, err
		}
		var culprits []string
		for _, n := range src.Nodes {
			v := an.Of(n)
			if v.Placement != Merged || v.Flow != graph.BatchCrossing || !crossingRoot(an, n) {
				continue
			}
			culprits = append(culprits, fmt.Sprintf("%%%s = %s%s", n.Name, n.Op, posSuffix(src, n)))
		}
		msg := fmt.Sprintf("%.0f%% of the FLOPs run on the merge device %s, not in parallel", 100*float64(m.FLOPs)/float64(total), opts.Merge)
		if len(culprits) > 0 {
			msg += "; it needs the whole batch at " + strings.Join(culprits, ", ") + ", and everything after that runs there too"
		}
		e.Warnings = append(e.Warnings, msg)
	}
	return e, nil
}

// move counts bytes moved from device from to device to.
func (e *Explanation) move(from, to graph.Device, bytes int64) {
	switch {
	case from == to:
	case from == e.Merge:
		e.FromMerge = satAdd(e.FromMerge, bytes)
	case to == e.Merge:
		e.ToMerge = satAdd(e.ToMerge, bytes)
	default:
		e.Peer = satAdd(e.Peer, bytes)
	}
}

// crossingRoot reports whether n itself needs the whole batch, rather than
// being downstream of a node that does.
func crossingRoot(an *Analysis, n *graph.Node) bool {
	for _, a := range n.Args {
		if an.Of(a).Placement == Merged && a.Type.HasSymbol() {
			return false
		}
	}
	return true
}

func posSuffix(g *graph.Graph, n *graph.Node) string {
	if !n.Pos.IsValid() {
		return ""
	}
	return fmt.Sprintf(" (%s:%s)", g.File, n.Pos)
}

func typeBytes(t graph.Type) int64 {
	n, ok := t.Elems()
	if !ok {
		return 0
	}
	return satMul(n, t.DType.Size())
}

func elems(t graph.Type) int64 {
	n, _ := t.Elems()
	return n
}

// flops estimates the floating-point operations of one node.
func flops(n *graph.Node) int64 {
	out := elems(n.Type)
	switch n.Op {
	case graph.OpInput, graph.OpParam, graph.OpConst, "copy", "slice", "concat", "reshape", "transpose", "flatten", "dim":
		return 0
	case "matmul":
		k, _ := n.Args[0].Type.Shape[n.Args[0].Type.Rank()-1].Value()
		return satMul(2, out, k)
	case "conv2d":
		w := n.Args[1].Type
		per := elems(w) / max(1, mustValue(w.Shape[0]))
		f := satMul(2, out, per)
		if len(n.Args) == 3 {
			f = satAdd(f, out)
		}
		return f
	case "conv2d_grad_input", "conv2d_grad_weight":
		// As many products as the forward conv2d: per element of dy,
		// one per weight of its output channel.
		w, dy := n.Args[1].Type, n.Args[0].Type
		if n.Op == "conv2d_grad_weight" {
			w, dy = n.Type, n.Args[1].Type
		}
		return satMul(2, elems(dy), elems(w)/max(1, mustValue(w.Shape[0])))
	case "maxpool2d", "avgpool2d":
		k, _ := n.Attrs.Get("kernel")
		if len(k.List) == 2 {
			return satMul(out, max(k.List[0].Int, 0), max(k.List[1].Int, 0))
		}
		return out
	case "sum", "mean", "max", "min":
		return elems(n.Args[0].Type)
	case "softmax", "log_softmax":
		return satMul(5, out)
	case "batchnorm":
		return satMul(4, out)
	case "exp", "log", "sqrt", "sigmoid", "tanh":
		return satMul(4, out)
	}
	return out
}

func mustValue(d graph.Dim) int64 {
	v, _ := d.Value()
	return v
}

// Print writes the explanation as a table.
func (e *Explanation) Print(w io.Writer) error {
	var total int64
	for _, c := range e.Devices {
		total = satAdd(total, c.FLOPs)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "batch %d, merge device %s\n", e.Batch, e.Merge)
	fmt.Fprintf(&b, "%-8s %6s %12s %6s %12s %12s %12s\n", "device", "nodes", "FLOPs", "share", "params", "activations", "transfers in")
	for _, c := range e.Devices {
		share := "  0.0%"
		switch {
		case total == math.MaxInt64: // saturated: no share can be told
			share = "     ?"
		case total > 0:
			share = fmt.Sprintf("%5.1f%%", 100*float64(c.FLOPs)/float64(total))
		}
		fmt.Fprintf(&b, "%-8s %6d %12s %s %12s %12s %12s\n", c.Device, c.Nodes, human(c.FLOPs, ""), share,
			human(c.ParamBytes, "B"), human(c.ActivationBytes, "B"), human(c.InBytes, "B"))
	}
	fmt.Fprintf(&b, "moved per run: %s from the merge device (%s of it params, moved once), %s to it, %s between replicas\n",
		human(e.FromMerge, "B"), human(e.Resident, "B"), human(e.ToMerge, "B"), human(e.Peer, "B"))
	for _, warn := range e.Warnings {
		fmt.Fprintf(&b, "warning: %s\n", warn)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// human writes n with a decimal SI prefix: 1.5M, 320k, 12.
func human(n int64, unit string) string {
	if n == math.MaxInt64 {
		return "over 9.2E" + unit // saturated: too large to count
	}
	f := float64(n)
	for _, p := range []string{"", "k", "M", "G", "T", "P"} {
		if f < 1000 || p == "P" {
			if p == "" {
				return fmt.Sprintf("%d%s", n, unit)
			}
			return fmt.Sprintf("%.1f%s%s", f, p, unit)
		}
		f /= 1000
	}
	return ""
}
