package onnx

import (
	"fmt"
	"strings"

	"multigpu/graph"
)

// The recurrent ops LSTM and GRU, as PyTorch exports nn.LSTM and nn.GRU
// (one ONNX node per layer), are unrolled over the sequence into IR ops
// that are batch-parallel with the batch on X's batch axis, so that the
// replicate pass keeps the whole recurrence on the replicas:
//
//   - the input projection of every time step at once, X[S,N,I] times W^T
//     plus the biases: one matmul that does not contract the batch;
//   - per step, in the direction's order: a slice of the step (axis 0),
//     the previous state times R^T, slices of the gates, sigmoid and tanh,
//     and the state update with mul, add and sub, all on [1,N,*];
//   - Y as the concat of the steps' states, Y_h and Y_c as the last ones.
//
// The sequence length must be concrete: the graph has one set of nodes per
// step (about 15 per step and direction). A zero initial state (absent, a
// constant of zeros, or zeros broadcast to the batch) starts the
// recurrence without the products it would zero. What the unrolled graph
// would not compute as ONNX defines it is refused, naming the node:
// activations other than the defaults, clip, LSTM's input_forget and
// peepholes, and sequence_lens other than the sequence length.

// lstmAttrs and gruAttrs are the attributes of LSTM and GRU.
var (
	lstmAttrs = []string{"activation_alpha", "activation_beta", "activations", "clip", "direction", "hidden_size", "input_forget", "layout"}
	gruAttrs  = []string{"activation_alpha", "activation_beta", "activations", "clip", "direction", "hidden_size", "layout", "linear_before_reset"}
)

// rnnCell is what distinguishes LSTM from GRU.
type rnnCell struct {
	gates       int      // gates per direction in W, R and B
	activations []string // the defaults (f, g[, h]) of one direction
	lstm        bool     // a cell state (initial_c, Y_c), peepholes
}

var (
	lstmCell = rnnCell{gates: 4, activations: []string{"Sigmoid", "Tanh", "Tanh"}, lstm: true}
	gruCell  = rnnCell{gates: 3, activations: []string{"Sigmoid", "Tanh"}}
)

func convertLSTM(c *nodeCtx) error { return convertRNN(c, lstmCell) }
func convertGRU(c *nodeCtx) error  { return convertRNN(c, gruCell) }

// rnn is the state of converting one LSTM or GRU node.
type rnn struct {
	b      builder
	cell   rnnCell
	layout int64
	seq    int64 // S
	dirs   int   // 1 or 2
	rev    bool  // a single direction, reversed
	hid    int64 // H
	batch  graph.Dim
	// lbr is GRU's linear_before_reset.
	lbr bool
	// x is X as [S,N,I]; w, r and bias are the node's W, R and B (bias
	// nil when absent); h0 and c0 the initial states as [D,N,H], nil when
	// zero.
	x, w, r, bias, h0, c0 *graph.Node
}

// convertRNN maps an LSTM or GRU node.
func convertRNN(c *nodeCtx, cell rnnCell) error {
	rn := &rnn{b: builder{c: c}, cell: cell}
	if err := rn.attrs(); err != nil {
		return err
	}
	if err := rn.inputs(); err != nil {
		return err
	}
	outs := 2
	if cell.lstm {
		outs = 3
	}
	c.maxOutputs(outs, "LSTM has 3 outputs, GRU 2")
	// Per direction: Y as [S,1,N,H], the last h and c as [1,N,H].
	var res [3][]*graph.Node
	for d := range rn.dirs {
		steps, last := rn.direction(d)
		if c.hasOut(0) {
			res[0] = append(res[0], rn.stack(steps))
		}
		res[1] = append(res[1], steps[rn.lastStep(d)])
		res[2] = append(res[2], last)
	}
	b := &rn.b
	for k := range outs {
		if !c.hasOut(k) {
			continue
		}
		axis, perm := int64(0), []int64{1, 0, 2}
		if k == 0 {
			axis, perm = 1, []int64{2, 0, 1, 3}
		}
		y := b.concat(res[k], axis)
		if rn.layout == 1 {
			y = b.transpose(y, perm...)
		}
		if b.err != nil {
			return b.err
		}
		if err := c.set(k, y); err != nil {
			return err
		}
	}
	return b.err
}

// hasOut reports whether output k is named.
func (c *nodeCtx) hasOut(k int) bool { return k < len(c.n.outputs) && c.n.outputs[k] != "" }

// attrs reads and checks the node's attributes.
func (rn *rnn) attrs() error {
	c := rn.b.c
	dir, err := c.str("direction", "forward")
	if err != nil {
		return err
	}
	switch dir {
	case "forward":
		rn.dirs = 1
	case "reverse":
		rn.dirs, rn.rev = 1, true
	case "bidirectional":
		rn.dirs = 2
	default:
		return fmt.Errorf("attribute direction: expected forward, reverse or bidirectional, found %q", dir)
	}
	if a, err := c.attr("activations", attrTypeStrings); err != nil {
		return err
	} else if a != nil {
		var want, got []string
		for range rn.dirs {
			want = append(want, rn.cell.activations...)
		}
		same := len(a.strings) == len(want)
		for i, s := range a.strings {
			got = append(got, string(s))
			same = same && i < len(want) && strings.EqualFold(string(s), want[i])
		}
		if !same {
			return fmt.Errorf("attribute activations: only the defaults (%s) are supported, found %s", strings.Join(want, ", "), strings.Join(got, ", "))
		}
	}
	for _, name := range []string{"activation_alpha", "activation_beta"} {
		if a, err := c.attr(name, attrTypeFloats); err != nil {
			return err
		} else if a != nil && len(a.floats) > 0 {
			return fmt.Errorf("attribute %s is not supported (the default activations take no parameters)", name)
		}
	}
	if c.has("clip") {
		return fmt.Errorf("attribute clip is not supported")
	}
	if rn.cell.lstm {
		if forget, err := c.flag("input_forget", false); err != nil {
			return err
		} else if forget {
			return fmt.Errorf("attribute input_forget=1 (coupled input and forget gates) is not supported")
		}
	} else if rn.lbr, err = c.flag("linear_before_reset", false); err != nil {
		return err
	}
	if c.opset() < 14 && c.has("layout") {
		return fmt.Errorf("attribute layout was added in opset 14")
	}
	if rn.layout, err = c.int("layout", 0); err != nil {
		return err
	}
	if rn.layout != 0 && rn.layout != 1 {
		return fmt.Errorf("attribute layout: expected 0 or 1, found %d", rn.layout)
	}
	return nil
}

// inputs reads and checks the node's inputs.
func (rn *rnn) inputs() error {
	c := rn.b.c
	x, err := c.in(0)
	if err != nil {
		return err
	}
	if x.Type.Rank() != 3 || !x.Type.DType.IsFloat() {
		return fmt.Errorf("input 0 (X): expected a float tensor of rank 3, found %s", x.Type)
	}
	seqAx, batchAx := 0, 1
	if rn.layout == 1 {
		seqAx, batchAx = 1, 0
	}
	sd := x.Type.Shape[seqAx]
	if sd.IsSymbolic() {
		return fmt.Errorf("input 0 (X) %s: the sequence length (axis %d) must be a concrete size, found %s; the batch is on axis %d (mark it with --batch-axis NAME=%d)", x.Type, seqAx, sd, batchAx, batchAx)
	}
	if rn.layout == 1 {
		x = rn.b.transpose(x, 1, 0, 2)
		if rn.b.err != nil {
			return rn.b.err
		}
	}
	rn.x, rn.seq, rn.batch = x, sd.Size, x.Type.Shape[1]
	if rn.w, err = c.in(1); err != nil {
		return err
	}
	if rn.r, err = c.in(2); err != nil {
		return err
	}
	g := int64(rn.cell.gates)
	rt := rn.r.Type
	if rt.Rank() != 3 || rt.Shape[2].IsSymbolic() {
		return fmt.Errorf("input 2 (R): expected [num_directions, %d*hidden_size, hidden_size], found %s", g, rt)
	}
	rn.hid = rt.Shape[2].Size
	if h, err := c.int("hidden_size", rn.hid); err != nil {
		return err
	} else if h != rn.hid {
		return fmt.Errorf("attribute hidden_size is %d, but R %s has hidden size %d", h, rt, rn.hid)
	}
	d, gh := graph.Const(int64(rn.dirs)), graph.Const(g*rn.hid)
	if err := rn.expect(1, "W", rn.w, d, gh, x.Type.Shape[2]); err != nil {
		return err
	}
	if err := rn.expect(2, "R", rn.r, d, gh, graph.Const(rn.hid)); err != nil {
		return err
	}
	if c.hasIn(3) {
		if rn.bias, err = c.in(3); err != nil {
			return err
		}
		if err := rn.expect(3, "B", rn.bias, d, graph.Const(2*g*rn.hid)); err != nil {
			return err
		}
	}
	if c.hasIn(4) {
		lens, err := c.constInts(4, "sequence_lens")
		if err != nil {
			return fmt.Errorf("%v; only sequence lengths equal to X's (%d) are supported", err, rn.seq)
		}
		for _, l := range lens {
			if l != rn.seq {
				return fmt.Errorf("input 4 (sequence_lens) %v: only sequence lengths equal to X's (%d) are supported", lens, rn.seq)
			}
		}
	}
	if rn.h0, err = rn.state(5, "initial_h"); err != nil {
		return err
	}
	if !rn.cell.lstm {
		return nil
	}
	if rn.c0, err = rn.state(6, "initial_c"); err != nil {
		return err
	}
	if c.hasIn(7) {
		v, err := c.lookup(7)
		if err != nil {
			return err
		}
		if !rn.zero(v) {
			return fmt.Errorf("input 7 (P, the peepholes) is not supported unless it is zero")
		}
	}
	return nil
}

// expect checks that input i (called what) has X's element type and the
// given shape.
func (rn *rnn) expect(i int, what string, n *graph.Node, dims ...graph.Dim) error {
	want := graph.Type{DType: rn.x.Type.DType, Shape: dims}
	if !n.Type.Equal(want) {
		return fmt.Errorf("input %d (%s): expected %s, found %s", i, what, want, n.Type)
	}
	return nil
}

// state returns initial state input i as [D,N,H], or nil when it is absent
// or zero.
func (rn *rnn) state(i int, what string) (*graph.Node, error) {
	c := rn.b.c
	if !c.hasIn(i) {
		return nil, nil
	}
	v, err := c.lookup(i)
	if err != nil {
		return nil, err
	}
	if rn.zero(v) {
		return nil, nil
	}
	if v.data != nil || v.vec != nil {
		return nil, fmt.Errorf("input %d (%s) %q is a constant that is not zero: only initial states that carry the batch, or zeros, are supported", i, what, v.onnx)
	}
	n, err := c.im.materialize(v)
	if err != nil {
		return nil, err
	}
	d, h := graph.Const(int64(rn.dirs)), graph.Const(rn.hid)
	if rn.layout == 0 {
		return n, rn.expect(i, what, n, d, rn.batch, h)
	}
	if err := rn.expect(i, what, n, rn.batch, d, h); err != nil {
		return nil, err
	}
	n = rn.b.transpose(n, 1, 0, 2)
	return n, rn.b.err
}

// zero reports whether v is known at import time to hold only zeros: a
// constant, or an IR value that rearranges or broadcasts one (as the zeros
// of the batch's size that PyTorch exports for an absent initial state).
func (rn *rnn) zero(v *value) bool {
	if v.data != nil {
		return allZero(denseFloats(v.data))
	}
	return v.node != nil && rn.zeroNode(v.node)
}

func (rn *rnn) zeroNode(n *graph.Node) bool {
	switch n.Op {
	case graph.OpConst:
		return allZero(n.Data)
	case graph.OpParam:
		w := rn.b.c.im.weights[n.Name]
		return w != nil && allZero(denseFloats(w))
	case "slice", "reshape", "flatten", "transpose", "copy", "expand", "broadcast_like":
		// broadcast_like reads only the shape of its second operand.
		return rn.zeroNode(n.Args[0])
	case "concat":
		for _, a := range n.Args {
			if !rn.zeroNode(a) {
				return false
			}
		}
		return true
	}
	return false
}

func allZero(vs []float64) bool {
	for _, v := range vs {
		if v != 0 {
			return false
		}
	}
	return true
}

// backward reports whether direction d runs from the last step to the
// first.
func (rn *rnn) backward(d int) bool { return rn.rev || d == 1 }

// stepName names step t of direction d in the names of its nodes.
func (rn *rnn) stepName(d int, t int64) string {
	if rn.dirs == 1 {
		return fmt.Sprintf("t%d", t)
	}
	return fmt.Sprintf("d%d_t%d", d, t)
}

// lastStep is the time index of direction d's last step.
func (rn *rnn) lastStep(d int) int64 {
	if rn.backward(d) {
		return 0
	}
	return rn.seq - 1
}

// direction unrolls direction d. It returns every step's state h [1,N,H]
// in time order, and the last cell state (nil for a GRU).
func (rn *rnn) direction(d int) (steps []*graph.Node, c *graph.Node) {
	b := &rn.b
	// of picks direction d of x[D,...], keeping that axis.
	of := func(x *graph.Node) *graph.Node {
		if x == nil || rn.dirs == 1 {
			return x
		}
		return b.slice(x, 0, int64(d), int64(d)+1)
	}
	// matrix picks direction d of x[D,R,C] as the matrix [R,C].
	matrix := func(x *graph.Node) *graph.Node {
		s := x.Type.Shape
		return b.reshape(of(x), s[1:])
	}
	w := b.transpose(matrix(rn.w), 1, 0) // [I,G*H]
	r := b.transpose(matrix(rn.r), 1, 0) // [H,G*H]
	gh := int64(rn.cell.gates) * rn.hid
	var wb, rb *graph.Node // [G*H]
	if rn.bias != nil {
		bias := b.reshape(of(rn.bias), []graph.Dim{graph.Const(2 * gh)})
		wb, rb = b.slice(bias, 0, 0, gh), b.slice(bias, 0, gh, 2*gh)
	}
	// The input projection of every step at once: [S,N,I] x [I,G*H].
	xp := b.op("matmul", rn.x, w)
	order := make([]int64, rn.seq)
	for t := range rn.seq {
		order[t] = t
		if rn.backward(d) {
			order[t] = rn.seq - 1 - t
		}
	}
	steps = make([]*graph.Node, rn.seq)
	// The initial states keep their direction axis: [1,N,H].
	if rn.cell.lstm {
		c = rn.lstm(d, xp, r, wb, rb, of(rn.h0), of(rn.c0), order, steps)
	} else {
		rn.gru(d, xp, r, wb, rb, of(rn.h0), order, steps)
	}
	b.at = ""
	return steps, c
}

// lstm unrolls one direction of an LSTM over the steps in order, writing
// each step's h into steps, and returns the last cell state. ONNX's gates
// are i, o, f, c:
//
//	g = x_t W^T + Wb + Rb + h R^T
//	i, o, f = sigmoid(g[0:3H]);  c~ = tanh(g[3H:4H])
//	c = f*c + i*c~;  h = o*tanh(c)
func (rn *rnn) lstm(d int, xp, r, wb, rb, h, c *graph.Node, order []int64, steps []*graph.Node) *graph.Node {
	b := &rn.b
	hid := rn.hid
	if wb != nil {
		xp = b.op("add", xp, b.op("add", wb, rb))
	}
	for _, t := range order {
		b.at = rn.stepName(d, t)
		g := b.slice(xp, 0, t, t+1) // [1,N,4H]
		if h != nil {
			g = b.op("add", g, b.op("matmul", h, r))
		}
		iof := b.op("sigmoid", b.slice(g, 2, 0, 3*hid))
		gate := func(k int64) *graph.Node { return b.slice(iof, 2, k*hid, (k+1)*hid) }
		ic := b.op("mul", gate(0), b.op("tanh", b.slice(g, 2, 3*hid, 4*hid)))
		if c == nil {
			c = ic
		} else {
			c = b.op("add", b.op("mul", gate(2), c), ic)
		}
		h = b.op("mul", gate(1), b.op("tanh", c))
		steps[t] = h
	}
	return c
}

// gru unrolls one direction of a GRU over the steps in order, writing each
// step's h into steps. ONNX's gates are z, r, h:
//
//	z, r = sigmoid(x_t Wzr^T + Wbzr + Rbzr + h Rzr^T)
//	n = tanh(x_t Wh^T + Wbh + r*(h Rh^T + Rbh))    linear_before_reset=1
//	n = tanh(x_t Wh^T + Wbh + Rbh + (r*h) Rh^T)    linear_before_reset=0
//	h = n + z*(h - n)                              (that is, (1-z)*n + z*h)
func (rn *rnn) gru(d int, xp, r, wb, rb, h *graph.Node, order []int64, steps []*graph.Node) {
	b := &rn.b
	hid := rn.hid
	// The biases outside the reset gate's product join the input
	// projection; rbh is what stays inside.
	var rbh *graph.Node
	if wb != nil {
		bias := b.op("add", wb, rb)
		if rn.lbr {
			rbh = b.slice(rb, 0, 2*hid, 3*hid)
			bias = b.concat([]*graph.Node{b.slice(bias, 0, 0, 2*hid), b.slice(wb, 0, 2*hid, 3*hid)}, 0)
		}
		xp = b.op("add", xp, bias)
	}
	xzr := b.slice(xp, 2, 0, 2*hid)    // [S,N,2H]
	xh := b.slice(xp, 2, 2*hid, 3*hid) // [S,N,H]
	// With linear_before_reset=0, the parts of R^T multiply different
	// operands: [H,2H] and [H,H].
	var rzr, rh *graph.Node
	if !rn.lbr {
		rzr, rh = b.slice(r, 1, 0, 2*hid), b.slice(r, 1, 2*hid, 3*hid)
	}
	for _, t := range order {
		b.at = rn.stepName(d, t)
		zr := b.slice(xzr, 0, t, t+1) // [1,N,2H]
		var hr *graph.Node            // h R^T, [1,N,3H], with linear_before_reset=1
		if h != nil {
			if rn.lbr {
				hr = b.op("matmul", h, r)
				zr = b.op("add", zr, b.slice(hr, 2, 0, 2*hid))
			} else {
				zr = b.op("add", zr, b.op("matmul", h, rzr))
			}
		}
		zr = b.op("sigmoid", zr)
		z, rg := b.slice(zr, 2, 0, hid), b.slice(zr, 2, hid, 2*hid)
		// The reset gate's term; none where it multiplies zeros.
		var reset *graph.Node
		switch {
		case rn.lbr:
			var hn *graph.Node // h Rh^T + Rbh
			if h != nil {
				hn = b.slice(hr, 2, 2*hid, 3*hid)
			}
			switch {
			case hn != nil && rbh != nil:
				hn = b.op("add", hn, rbh)
			case rbh != nil:
				hn = rbh
			}
			if hn != nil {
				reset = b.op("mul", rg, hn)
			}
		case h != nil:
			reset = b.op("matmul", b.op("mul", rg, h), rh)
		}
		n := b.slice(xh, 0, t, t+1) // [1,N,H]
		if reset != nil {
			n = b.op("add", n, reset)
		}
		n = b.op("tanh", n)
		if h == nil {
			h = b.op("sub", n, b.op("mul", z, n))
		} else {
			h = b.op("add", n, b.op("mul", z, b.op("sub", h, n)))
		}
		steps[t] = h
	}
}

// stack joins a direction's steps [1,N,H], in time order, into [S,1,N,H].
func (rn *rnn) stack(steps []*graph.Node) *graph.Node {
	b := &rn.b
	return b.reshape(b.concat(steps, 0), []graph.Dim{graph.Const(rn.seq), graph.Const(1), rn.batch, graph.Const(rn.hid)})
}

// builder adds the IR nodes of one ONNX node, keeping the first error:
// after one, every method returns nil and adds nothing, so a sequence of
// ops needs one check at its end.
type builder struct {
	c   *nodeCtx
	err error
	// at, when set, goes into the names of the nodes added ("t3" while
	// building step 3, "d1_t3" in the second direction), which keeps names
	// readable and their search for a free suffix short.
	at string
}

// apply adds op with the given operands and attributes.
func (b *builder) apply(op string, args []*graph.Node, attrs graph.Attrs) *graph.Node {
	if b.err != nil {
		return nil
	}
	tag := op
	if b.at != "" {
		tag = b.at + "_" + op
	}
	n, err := b.c.im.g.Apply(b.c.tmp(tag), op, args, attrs)
	if err != nil {
		b.err = b.c.perSample(op, args, err)
		return nil
	}
	return n
}

// op adds op, without attributes, of args.
func (b *builder) op(op string, args ...*graph.Node) *graph.Node { return b.apply(op, args, nil) }

// slice adds x[start:end] along axis.
func (b *builder) slice(x *graph.Node, axis int, start, end int64) *graph.Node {
	return b.apply("slice", []*graph.Node{x}, graph.Attrs{
		{Name: "axis", Value: graph.Int(int64(axis))},
		{Name: "start", Value: graph.Int(start)},
		{Name: "end", Value: graph.Int(end)},
	})
}

// concat joins xs along axis; one operand is returned as it is.
func (b *builder) concat(xs []*graph.Node, axis int64) *graph.Node {
	if len(xs) == 1 {
		return xs[0]
	}
	return b.apply("concat", xs, graph.Attrs{{Name: "axis", Value: graph.Int(axis)}})
}

// transpose permutes the axes of x.
func (b *builder) transpose(x *graph.Node, perm ...int64) *graph.Node {
	return b.apply("transpose", []*graph.Node{x}, graph.Attrs{{Name: "perm", Value: graph.Ints(perm...)}})
}

// reshape reshapes x to dims (which may hold the batch symbol).
func (b *builder) reshape(x *graph.Node, dims []graph.Dim) *graph.Node {
	return b.apply("reshape", []*graph.Node{x}, graph.Attrs{{Name: "shape", Value: graph.ShapeAttr(dims)}})
}
