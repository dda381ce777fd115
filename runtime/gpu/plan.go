package gpu

import (
	"fmt"
	"hash/fnv"
	"math"

	"multigpu/graph"
	"multigpu/lower"
	"multigpu/runtime/backend"
	"multigpu/runtime/host"
)

// argKind says what an 8-byte kernel argument holds.
type argKind uint8

const (
	argWord    argKind = iota // a constant
	argOperand                // the address of operand i, plus off bytes
	argResult                 // the address of the node's value, plus off
	argScratch                // the address of scratch buffer i, plus off
	argMeta                   // the address of the program's metadata, plus off
	argSeed                   // the run's dropout seed
	argStatus                 // the address of status slot i (statusCheck)
)

// arg is one kernel argument, resolved to a word when the program runs.
type arg struct {
	kind argKind
	i    int
	off  int64
	word uint64
}

func word(v uint64) arg          { return arg{kind: argWord, word: v} }
func i64(v int) arg              { return word(uint64(int64(v))) }
func f64(v float64) arg          { return word(math.Float64bits(v)) }
func operand(i int) arg          { return arg{kind: argOperand, i: i} }
func result() arg                { return arg{kind: argResult} }
func scratch(i int) arg          { return arg{kind: argScratch, i: i} }
func (a arg) plus(bytes int) arg { a.off += int64(bytes); return a }

// step is one launch or one matrix product.
type step struct {
	kernel  string
	threads int64
	args    []arg
	gemm    *gemmStep
}

// gemmStep is a Gemm whose matrices are arguments.
type gemmStep struct {
	g       Gemm
	a, b, c arg
}

// nodePlan is how one node runs: as a view of an operand, or as steps
// writing its value (and scratch buffers it needs while it runs).
type nodePlan struct {
	viewOf  int // operand index, or -1
	viewOff int64
	bytes   int64
	scratch []int64
	steps   []step
	// status, when set, is the node's status slot, checked after the
	// program has run.
	status *statusCheck
}

// planner builds the plans of one program, collecting the metadata
// (shapes and strides) its kernels read into one array uploaded with the
// program.
type planner struct {
	meta []int64
	// convScratch bounds the patch buffer of a convolution (im2col): the
	// batch is processed in chunks of samples whose patches fit.
	convScratch int
	// status counts the status slots of the program's nodes.
	status int
}

// addMeta appends words to the metadata and returns their argument.
func (p *planner) addMeta(ws ...int64) arg {
	a := arg{kind: argMeta, off: int64(8 * len(p.meta))}
	p.meta = append(p.meta, ws...)
	return a
}

// nodeSpec is a node with concrete shapes.
type nodeSpec struct {
	n    *graph.Node
	dt   graph.DType // of the result
	in   [][]int     // operand shapes
	out  []int
	info backend.NodeInfo
}

// suffix names the kernel variant of an element type.
func suffix(dt graph.DType) (string, error) {
	switch dt {
	case graph.F32:
		return "_f32", nil
	case graph.F64:
		return "_f64", nil
	}
	return "", fmt.Errorf("no gpu kernel for element type %s", dt)
}

// widthSuffix names the copy and fill kernel for an element size.
func widthSuffix(size int64) string {
	switch size {
	case 1:
		return "_u8"
	case 4:
		return "_u32"
	}
	return "_u64"
}

// opCode returns the op code kernels.cu gives an elementwise op, a
// comparison (cmp_ and the compare op's cmp attribute) or a reduction.
func opCode(op string) (int, bool) {
	switch op {
	case "add", "neg", "sum":
		return 0, true
	case "sub", "abs", "mean":
		return 1, true
	case "mul", "exp", "max":
		return 2, true
	case "div", "log", "min":
		return 3, true
	case "maximum", "sqrt":
		return 4, true
	case "minimum", "relu":
		return 5, true
	case "cmp_eq", "sigmoid":
		return 6, true
	case "cmp_ne", "tanh":
		return 7, true
	case "cmp_lt", "leaky_relu":
		return 8, true
	case "cmp_le", "erf":
		return 9, true
	case "cmp_gt":
		return 10, true
	case "cmp_ge":
		return 11, true
	case "pow":
		return 12, true
	}
	return 0, false
}

// planned reports whether plan knows op.
func planned(op string) bool {
	switch op {
	case "add", "sub", "mul", "div", "maximum", "minimum", "compare", "broadcast_like",
		"neg", "abs", "exp", "log", "sqrt", "relu", "sigmoid", "tanh", "leaky_relu",
		"matmul", "softmax", "log_softmax", "sum", "mean", "max", "min",
		"reshape", "flatten", "copy", "transpose", "slice", "concat", "dim",
		"conv2d", "conv2d_grad_input", "conv2d_grad_weight",
		"maxpool2d", "avgpool2d", "maxpool2d_grad", "avgpool2d_grad", "batchnorm", "dropout",
		"gather", "gather_grad", "expand", "argmax", "argmin",
		"pow", "erf", "where", "equal", "less", "greater", "less_equal", "greater_equal", "not", "and", "or", "xor", "cast",
		"allreduce", "assign":
		return true
	}
	return false
}

// convScratch is the default bound of a convolution's patch buffer.
const convScratch = 128 << 20

// plan returns how s.n runs.
func (p *planner) plan(s *nodeSpec) (*nodePlan, error) {
	n := s.n
	np := &nodePlan{viewOf: -1, bytes: int64(numel(s.out)) * s.dt.Size()}
	total := numel(s.out)
	launch := func(kernel string, threads int, args ...arg) {
		if threads > 0 {
			np.steps = append(np.steps, step{kernel: kernel, threads: int64(threads), args: args})
		}
	}
	view := func(off int64) (*nodePlan, error) {
		np.viewOf, np.viewOff = 0, off
		return np, nil
	}
	switch n.Op {
	case "reshape", "flatten", "copy":
		return view(0)
	case "assign":
		// Its value (the executor, not a program, updates the target).
		np.viewOf = 1
		return np, nil
	case "dropout":
		if !n.BoolAttr("training") {
			return view(0)
		}
	case "gather", "gather_grad", "expand", "argmax", "argmin":
		return p.planIndex(s, np, launch)
	case "where", "equal", "less", "greater", "less_equal", "greater_equal", "not", "and", "or", "xor", "cast":
		return p.planLogic(s, np, launch)
	}
	if backend.Structural(n.Op) {
		return p.planStructural(s, np, launch)
	}
	sfx, err := suffix(s.dt)
	if err != nil {
		return nil, err
	}
	switch n.Op {
	case "allreduce":
		// Left to right, in place: v = r0 + r1, v = v + r2, ... (the
		// group's partials, copied here by the executor).
		if len(s.in) == 1 {
			return view(0)
		}
		op := must(opCode(map[string]string{"sum": "add", "max": "maximum", "min": "minimum"}[n.StringAttr("op", "sum")]))
		m := p.addMeta(1, int64(total), 1, 1)
		launch("binary"+sfx, total, result(), operand(0), operand(1), i64(total), m, i64(op))
		for k := 2; k < len(s.in); k++ {
			launch("binary"+sfx, total, result(), result(), operand(k), i64(total), m, i64(op))
		}
	case "add", "sub", "mul", "div", "maximum", "minimum", "compare", "pow":
		name := n.Op
		if name == "compare" {
			name = "cmp_" + n.StringAttr("cmp", "")
		}
		op, ok := opCode(name)
		if !ok {
			return nil, fmt.Errorf("no comparison %q", n.StringAttr("cmp", ""))
		}
		shape, str := host.Collapse(s.out, host.BroadcastStrides(s.in[0], s.out), host.BroadcastStrides(s.in[1], s.out))
		m := p.addMeta(append(append(append([]int64{int64(len(shape))}, ints64(shape)...), ints64(str[0])...), ints64(str[1])...)...)
		launch("binary"+sfx, total, result(), operand(0), operand(1), i64(total), m, i64(op))
	case "broadcast_like":
		shape, str := host.Collapse(s.out, host.BroadcastStrides(s.in[0], s.out), host.Strides(s.out))
		m := p.addMeta(append(append(append([]int64{int64(len(shape))}, ints64(shape)...), ints64(str[0])...), ints64(str[1])...)...)
		launch("copy"+widthSuffix(s.dt.Size()), total, result(), operand(0), i64(total), m)
	case "neg", "abs", "exp", "log", "sqrt", "relu", "sigmoid", "tanh", "leaky_relu", "erf":
		launch("unary"+sfx, total, result(), operand(0), i64(total), i64(must(opCode(n.Op))), f64(n.FloatAttr("alpha", 0.01)))
	case "matmul":
		p.planMatmul(s, np, launch)
	case "softmax", "log_softmax":
		ax, err := n.NormAxis("axis", len(s.in[0]))
		if err != nil {
			return nil, err
		}
		outer, size, inner := split3(s.in[0], ax)
		logsm := 0
		if n.Op == "log_softmax" {
			logsm = 1
		}
		launch("softmax"+sfx, outer*inner, result(), operand(0), i64(outer), i64(size), i64(inner), i64(logsm))
	case "sum", "mean", "max", "min":
		axes, err := n.ReduceAxes(len(s.in[0]))
		if err != nil {
			return nil, err
		}
		in := s.in[0]
		st := host.Strides(in)
		reduced := make([]bool, len(in))
		for _, a := range axes {
			reduced[a] = true
		}
		var ks, kst, rs, rst []int64
		count := 1
		for i, d := range in {
			if reduced[i] {
				rs, rst = append(rs, int64(d)), append(rst, int64(st[i]))
				count *= d
			} else {
				ks, kst = append(ks, int64(d)), append(kst, int64(st[i]))
			}
		}
		words := append(append(append([]int64{int64(len(ks))}, ks...), kst...), int64(len(rs)))
		m := p.addMeta(append(append(words, rs...), rst...)...)
		launch("reduce"+sfx, total, result(), operand(0), i64(total), m, i64(must(opCode(n.Op))), i64(count))
	case "conv2d":
		p.planConv(s, np, sfx, launch)
	case "conv2d_grad_input":
		p.planConvGradInput(s, np, sfx, launch)
	case "conv2d_grad_weight":
		p.planConvGradWeight(s, np, sfx, launch)
	case "maxpool2d_grad", "avgpool2d_grad":
		kernel := n.IntsAttr("kernel", nil)
		dy := s.in[len(s.in)-1]
		win := newWindow(s.out, kernel, n.IntsAttr("stride", kernel), n.IntsAttr("pad", []int{0, 0}), []int{1, 1}, dy, 1)
		x, isMax := word(0), 0
		if n.Op == "maxpool2d_grad" {
			x, isMax = operand(0), 1
		}
		launch("poolgrad"+sfx, total, result(), x, operand(len(s.in)-1), i64(total), p.addMeta(win.meta()...), i64(isMax))
	case "maxpool2d", "avgpool2d":
		kernel := n.IntsAttr("kernel", nil)
		win := newWindow(s.in[0], kernel, n.IntsAttr("stride", kernel), n.IntsAttr("pad", []int{0, 0}), []int{1, 1}, s.out, 1)
		isMax := 0
		if n.Op == "maxpool2d" {
			isMax = 1
		}
		launch("pool"+sfx, total, result(), operand(0), i64(total), p.addMeta(win.meta()...), i64(isMax))
	case "batchnorm":
		ax, err := n.NormAxis("axis", len(s.in[0]))
		if err != nil {
			return nil, err
		}
		outer, c, inner := split3(s.in[0], ax)
		mean, vari := operand(3), operand(4)
		if n.BoolAttr("training") && total > 0 {
			stat := int64(c) * s.dt.Size()
			np.scratch = []int64{stat, stat}
			mean, vari = scratch(0), scratch(1)
			launch("bnstats"+sfx, c, mean, vari, operand(0), i64(outer), i64(c), i64(inner))
		}
		launch("bnapply"+sfx, total, result(), operand(0), operand(1), operand(2), mean, vari,
			i64(total), i64(c), i64(inner), f64(n.FloatAttr("epsilon", 1e-5)))
	case "dropout":
		rate := n.FloatAttr("rate", 0.5)
		h := fnv.New64a()
		h.Write([]byte(s.info.Key))
		batched, size, inner := 0, 1, total
		if ax := s.info.BatchAxis; ax >= 0 && ax < len(s.in[0]) {
			batched = 1
			_, size, inner = split3(s.in[0], ax)
		}
		m := p.addMeta(int64(batched), int64(size), int64(inner), max(s.info.BatchMul, 1), s.info.Offset,
			int64(math.Ceil(rate*(1<<53))))
		launch("dropout"+sfx, total, result(), operand(0), i64(total), arg{kind: argSeed}, word(h.Sum64()), m, f64(1-rate))
	default:
		return nil, fmt.Errorf("no gpu kernel for op %s", n.Op)
	}
	return np, nil
}

// planStructural plans the ops that move elements of any type.
func (p *planner) planStructural(s *nodeSpec, np *nodePlan, launch func(string, int, ...arg)) (*nodePlan, error) {
	n := s.n
	w := s.dt.Size()
	cp := "copy" + widthSuffix(w)
	// copyShape copies a strided shape of operand src (from byte dstOff of
	// the result) with the given strides.
	copyShape := func(dst, src arg, shape []int, srcStr, dstStr []int) {
		sh, str := host.Collapse(shape, srcStr, dstStr)
		m := p.addMeta(append(append(append([]int64{int64(len(sh))}, ints64(sh)...), ints64(str[0])...), ints64(str[1])...)...)
		k := numel(shape)
		launch(cp, k, dst, src, i64(k), m)
	}
	switch n.Op {
	case "transpose":
		perm := n.IntsAttr("perm", nil)
		st := host.Strides(s.in[0])
		src := make([]int, len(perm))
		for i, a := range perm {
			src[i] = st[a]
		}
		copyShape(result(), operand(0), s.out, src, host.Strides(s.out))
	case "slice":
		in := s.in[0]
		ax, err := n.NormAxis("axis", len(in))
		if err != nil {
			return nil, err
		}
		start, end, err := lower.SliceBounds(n, int64(in[ax]))
		if err != nil {
			return nil, err
		}
		outer, size, inner := split3(in, ax)
		lo, hi := int(start), int(end)
		if outer == 1 {
			np.viewOf, np.viewOff = 0, int64(lo*inner)*w
			return np, nil
		}
		copyShape(result(), operand(0).plus(lo*inner*int(w)), []int{outer, hi - lo, inner},
			[]int{size * inner, inner, 1}, []int{(hi - lo) * inner, inner, 1})
	case "concat":
		ax, err := n.NormAxis("axis", len(s.out))
		if err != nil {
			return nil, err
		}
		outer, all, inner := split3(s.out, ax)
		pos := 0
		for i, in := range s.in {
			k := in[ax]
			copyShape(result().plus(pos*inner*int(w)), operand(i), []int{outer, k, inner},
				[]int{k * inner, inner, 1}, []int{all * inner, inner, 1})
			pos += k
		}
	case "dim":
		ax, err := n.NormAxis("axis", len(s.in[0]))
		if err != nil {
			return nil, err
		}
		v := s.in[0][ax]
		var bits uint64
		switch s.dt {
		case graph.F32:
			bits = uint64(math.Float32bits(float32(v)))
		case graph.F64:
			bits = math.Float64bits(float64(v))
		case graph.I32:
			bits = uint64(uint32(int32(v)))
		case graph.I64:
			bits = uint64(int64(v))
		default:
			return nil, fmt.Errorf("dim of element type %s", s.dt)
		}
		launch("fill"+widthSuffix(w), 1, result(), i64(1), word(bits))
	default:
		return nil, fmt.Errorf("no gpu kernel for op %s", n.Op)
	}
	return np, nil
}

// planMatmul multiplies a[...,M,K] by b[K,P] (the leading axes of a folded
// into M) or by b[...,K,P] (one product per leading index), as
// C^T = B^T A^T in cuBLAS's column-major order.
func (p *planner) planMatmul(s *nodeSpec, np *nodePlan, launch func(string, int, ...arg)) {
	a, b := s.in[0], s.in[1]
	r := len(a)
	m, k, pc := a[r-2], a[r-1], b[len(b)-1]
	batch := 1
	for _, d := range a[:r-2] {
		batch *= d
	}
	strideB := int64(k * pc)
	if len(b) == 2 {
		m *= batch
		batch, strideB = 1, 0
	}
	switch {
	case batch*m*pc == 0:
	case k == 0:
		launch("fill"+widthSuffix(s.dt.Size()), batch*m*pc, result(), i64(batch*m*pc), word(0))
	default:
		np.steps = append(np.steps, step{gemm: &gemmStep{
			g: Gemm{DType: s.dt, M: pc, N: m, K: k, LDA: pc, LDB: k, LDC: pc,
				StrideA: strideB, StrideB: int64(m * k), StrideC: int64(m * pc), Batch: batch},
			a: operand(1), b: operand(0), c: result(),
		}})
	}
}

// planConv is a 2-D convolution with groups: for chunks of samples and
// each group, the patches go into a scratch buffer (im2col) and one
// batched product per chunk multiplies them by the group's filters; the
// bias is added after.
func (p *planner) planConv(s *nodeSpec, np *nodePlan, sfx string, launch func(string, int, ...arg)) {
	n := s.n
	wsh := s.in[1]
	groups := int(n.IntAttr("groups", 1))
	win := newWindow(s.in[0], wsh[2:], n.IntsAttr("stride", []int{1, 1}), n.IntsAttr("pad", []int{0, 0}),
		n.IntsAttr("dilation", []int{1, 1}), s.out, groups)
	o := wsh[0]
	cg, og := win.c/groups, o/groups
	kk := cg * win.kh * win.kw
	hw := win.oh * win.ow
	es := int(s.dt.Size())
	if win.n*o*hw == 0 {
		return
	}
	if kk == 0 {
		launch("fill"+widthSuffix(s.dt.Size()), win.n*o*hw, result(), i64(win.n*o*hw), word(0))
	} else {
		nb := max(1, min(win.n, p.convScratch/(kk*hw*es)))
		np.scratch = []int64{int64(nb * kk * hw * es)}
		m := p.addMeta(win.meta()...)
		for n0 := 0; n0 < win.n; n0 += nb {
			cur := min(nb, win.n-n0)
			for g := 0; g < groups; g++ {
				launch("im2col"+sfx, cur*kk*hw, scratch(0), operand(0).plus(n0*win.c*win.h*win.w*es), i64(cur), i64(g*cg), m, i64(0))
				np.steps = append(np.steps, step{gemm: &gemmStep{
					g: Gemm{DType: s.dt, M: hw, N: og, K: kk, LDA: hw, LDB: kk, LDC: hw,
						StrideA: int64(kk * hw), StrideB: 0, StrideC: int64(o * hw), Batch: cur},
					a: scratch(0), b: operand(1).plus(g * og * kk * es), c: result().plus((n0*o + g*og) * hw * es),
				}})
			}
		}
	}
	if len(s.in) == 3 {
		launch("bias"+sfx, win.n*o*hw, result(), operand(2), i64(win.n*o*hw), i64(o), i64(hw))
	}
}

// planConvGradInput is the gradient of conv2d with respect to its input
// x, from dy[N,O,OH,OW] and w[O,C/groups,KH,KW]: for chunks of samples and
// each group, the columns w_g^T dy_g (one batched product per chunk) are
// added back into the image they came from (col2im).
func (p *planner) planConvGradInput(s *nodeSpec, np *nodePlan, sfx string, launch func(string, int, ...arg)) {
	n := s.n
	ws := s.in[1]
	groups := int(n.IntAttr("groups", 1))
	win := newWindow(s.out, ws[2:], n.IntsAttr("stride", []int{1, 1}), n.IntsAttr("pad", []int{0, 0}),
		n.IntsAttr("dilation", []int{1, 1}), s.in[0], groups)
	o := ws[0]
	cg, og := win.c/groups, o/groups
	kk := cg * win.kh * win.kw
	hw := win.oh * win.ow
	es := int(s.dt.Size())
	total := win.n * win.c * win.h * win.w
	if total == 0 {
		return
	}
	if kk*hw*og == 0 {
		launch("fill"+widthSuffix(s.dt.Size()), total, result(), i64(total), word(0))
		return
	}
	nb := max(1, min(win.n, p.convScratch/(kk*hw*es)))
	np.scratch = []int64{int64(nb * kk * hw * es)}
	m := p.addMeta(win.meta()...)
	for n0 := 0; n0 < win.n; n0 += nb {
		cur := min(nb, win.n-n0)
		for g := 0; g < groups; g++ {
			// cols_b^T (hw×kk) = dy_b,g^T (hw×og) · w_g (og×kk)
			np.steps = append(np.steps, step{gemm: &gemmStep{
				g: Gemm{DType: s.dt, TransB: true, M: hw, N: kk, K: og, LDA: hw, LDB: kk, LDC: hw,
					StrideA: int64(o * hw), StrideB: 0, StrideC: int64(kk * hw), Batch: cur},
				a: operand(0).plus((n0*o + g*og) * hw * es), b: operand(1).plus(g * og * kk * es), c: scratch(0),
			}})
			launch("col2im"+sfx, cur*cg*win.h*win.w, result().plus(n0*win.c*win.h*win.w*es), scratch(0), i64(cur), i64(g*cg), m)
		}
	}
}

// planConvGradWeight is the gradient of conv2d with respect to its filters
// w, from x[N,C,H,W] and dy[N,O,OH,OW]: a sum over the batch. For chunks of
// samples and each group, the patches (im2col, sample-minor) and dy_g
// (transposed to og×samples·hw) make one product that sums over the
// chunk's samples, accumulated over chunks.
func (p *planner) planConvGradWeight(s *nodeSpec, np *nodePlan, sfx string, launch func(string, int, ...arg)) {
	n := s.n
	groups := int(n.IntAttr("groups", 1))
	win := newWindow(s.in[0], s.out[2:], n.IntsAttr("stride", []int{1, 1}), n.IntsAttr("pad", []int{0, 0}),
		n.IntsAttr("dilation", []int{1, 1}), s.in[1], groups)
	o := s.out[0]
	cg, og := win.c/groups, o/groups
	kk := cg * win.kh * win.kw
	hw := win.oh * win.ow
	es := int(s.dt.Size())
	total := o * kk
	if total == 0 {
		return
	}
	if win.n*hw == 0 {
		launch("fill"+widthSuffix(s.dt.Size()), total, result(), i64(total), word(0))
		return
	}
	nb := max(1, min(win.n, p.convScratch/(max(kk, og)*hw*es)))
	np.scratch = []int64{int64(nb * kk * hw * es), int64(og * nb * hw * es)}
	m := p.addMeta(win.meta()...)
	cp := "copy" + widthSuffix(s.dt.Size())
	for n0 := 0; n0 < win.n; n0 += nb {
		cur := min(nb, win.n-n0)
		l := cur * hw
		beta := 1.0
		if n0 == 0 {
			beta = 0
		}
		for g := 0; g < groups; g++ {
			launch("im2col"+sfx, cur*kk*hw, scratch(0), operand(0).plus(n0*win.c*win.h*win.w*es), i64(cur), i64(g*cg), m, i64(1))
			sh, str := host.Collapse([]int{og, cur, hw}, []int{hw, o * hw, 1}, []int{cur * hw, hw, 1})
			cm := p.addMeta(append(append(append([]int64{int64(len(sh))}, ints64(sh)...), ints64(str[0])...), ints64(str[1])...)...)
			launch(cp, og*l, scratch(1), operand(1).plus((n0*o+g*og)*hw*es), i64(og*l), cm)
			// dw_g^T (kk×og) = cols (kk×l, stored l×kk) · dyT^T (l×og)
			np.steps = append(np.steps, step{gemm: &gemmStep{
				g: Gemm{DType: s.dt, TransA: true, M: kk, N: og, K: l, LDA: l, LDB: l, LDC: kk, Batch: 1, Beta: beta},
				a: scratch(0), b: scratch(1), c: result().plus(g * og * kk * es),
			}})
		}
	}
}

// window is the geometry of a convolution or pooling over x[N,C,H,W].
type window struct {
	n, c, h, w     int // operand
	kh, kw         int // kernel
	sh, sw         int // stride
	pt, pl, pb, pr int // padding: top, left, bottom, right
	dh, dw         int // dilation
	oh, ow         int // result height and width
	cg             int // channels per group
}

func newWindow(x []int, kernel, stride, pad, dil []int, out []int, groups int) window {
	if len(pad) == 2 {
		pad = []int{pad[0], pad[1], pad[0], pad[1]}
	}
	return window{n: x[0], c: x[1], h: x[2], w: x[3], kh: kernel[0], kw: kernel[1],
		sh: stride[0], sw: stride[1], pt: pad[0], pl: pad[1], pb: pad[2], pr: pad[3],
		dh: dil[0], dw: dil[1], oh: out[2], ow: out[3], cg: x[1] / max(groups, 1)}
}

// meta returns the window as kernels.cu's W_ indices read it.
func (w window) meta() []int64 {
	return []int64{int64(w.c), int64(w.h), int64(w.w), int64(w.kh), int64(w.kw), int64(w.sh), int64(w.sw),
		int64(w.pt), int64(w.pl), int64(w.dh), int64(w.dw), int64(w.oh), int64(w.ow), int64(w.cg)}
}

// split3 views shape as [outer, shape[axis], inner].
func split3(shape []int, axis int) (outer, size, inner int) {
	outer, inner = 1, 1
	for _, d := range shape[:axis] {
		outer *= d
	}
	for _, d := range shape[axis+1:] {
		inner *= d
	}
	return outer, shape[axis], inner
}

// must returns the code of an op the planner dispatched on.
func must(code int, ok bool) int {
	if !ok {
		panic("gpu: no op code")
	}
	return code
}

func ints64(xs []int) []int64 {
	out := make([]int64, len(xs))
	for i, x := range xs {
		out[i] = int64(x)
	}
	return out
}
