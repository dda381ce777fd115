package graph

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestRandomGraphsRoundTrip builds random graphs through the API (Input,
// Param, Const, Apply with random operands and attributes, keeping what
// the op table accepts) and checks that each verifies, prints, parses back
// to the same print, and clones to the same print. It covers what the
// models in testdata do not: every op with unusual attributes, shares of
// the batch, folded batches, every dtype.
func TestRandomGraphsRoundTrip(t *testing.T) {
	graphs := 300
	if testing.Short() {
		graphs = 60
	}
	opsSeen := map[string]int{}
	for seed := range uint64(graphs) {
		r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
		g := randomGraph(t, r, opsSeen)
		if err := Verify(g); err != nil {
			t.Fatalf("seed %d: Verify: %v\n%s", seed, err, Format(g))
		}
		text := Format(g)
		g2, err := Parse("random.graph", []byte(text))
		if err != nil {
			t.Fatalf("seed %d: printed graph does not parse: %v\n%s", seed, err, text)
		}
		if got := Format(g2); got != text {
			t.Fatalf("seed %d: print(parse(print(g))) != print(g)\nfirst:\n%s\nsecond:\n%s", seed, text, got)
		}
		if got := Format(g.Clone()); got != text {
			t.Fatalf("seed %d: Clone prints differently", seed)
		}
	}
	for _, op := range OpNames() {
		if opsSeen[op] == 0 && !testing.Short() {
			t.Errorf("random graphs never used %s", op)
		}
	}
	t.Logf("ops used: %v", opsSeen)
}

var randomDTypes = []DType{F32, F32, F32, F64, I32, I64, Bool}

func randomGraph(t *testing.T, r *rand.Rand, opsSeen map[string]int) *Graph {
	t.Helper()
	g := New("random")
	var bound int64
	if r.IntN(3) == 0 {
		bound = int64(1 + r.IntN(12))
	}
	dims := func(rank int, batchAxis int) []Dim {
		s := make([]Dim, rank)
		for i := range s {
			if i == batchAxis {
				s[i] = Sym("N", bound)
			} else {
				s[i] = Const(int64(1 + r.IntN(6)))
			}
		}
		return s
	}
	var nodes []*Node
	name := func(prefix string) string { return fmt.Sprintf("%s%d", prefix, len(g.Nodes)) }
	for range 1 + r.IntN(3) {
		rank := 1 + r.IntN(4)
		ty := Type{DType: randomDTypes[r.IntN(3)], Shape: dims(rank, r.IntN(rank+1))}
		n, err := g.Input(name("in"), ty)
		if err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, n)
	}
	for range r.IntN(4) {
		rank := r.IntN(4)
		ty := Type{DType: randomDTypes[r.IntN(len(randomDTypes))], Shape: dims(rank, -1)}
		var n *Node
		var err error
		if r.IntN(2) == 0 {
			n, err = g.Param(name("p"), ty)
		} else {
			count, _ := ty.Elems()
			data := make([]float64, count)
			for i := range data {
				data[i] = randomElem(r, ty.DType)
			}
			n, err = g.Const(name("c"), ty, data)
		}
		if err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, n)
	}
	ops := OpNames()
	assigned := map[*Node]bool{}
	for range 40 {
		for range 200 { // attempts until one is accepted
			info := LookupOp(ops[r.IntN(len(ops))])
			if info.Name == OpAssign {
				// A computed batch-free value assigned once, to a param
				// of its own made for it.
				v := nodes[r.IntN(len(nodes))]
				if v.IsLeaf() || v.Type.HasSymbol() || assigned[v] {
					continue
				}
				p, err := g.Param(name("state"), v.Type)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := g.Apply(name("v"), OpAssign, []*Node{p, v}, nil); err != nil {
					t.Fatal(err)
				}
				assigned[v] = true
				opsSeen[OpAssign]++
				break // no node reads an assign
			}
			nargs := info.MinArgs
			if hi := info.MaxArgs; hi < 0 || hi > nargs {
				if hi < 0 {
					hi = nargs + 3
				}
				nargs += r.IntN(hi - nargs + 1)
			}
			args := make([]*Node, nargs)
			first := nodes[r.IntN(len(nodes))]
			for i := range args {
				args[i] = first
				if r.IntN(2) == 0 {
					args[i] = nodes[r.IntN(len(nodes))]
				}
			}
			if info.Name == "batchnorm" && first.Type.Rank() >= 2 && first.Type.DType.IsFloat() && first.Type.Shape[1].Sym == "" {
				// per-channel operands that fit, made on demand
				c := Type{DType: first.Type.DType, Shape: []Dim{first.Type.Shape[1]}}
				stat := g.Lookup(fmt.Sprintf("stat_%s_%d", c.DType, c.Shape[0].Size))
				if stat == nil {
					var err error
					if stat, err = g.Param(fmt.Sprintf("stat_%s_%d", c.DType, c.Shape[0].Size), c); err != nil {
						t.Fatal(err)
					}
				}
				args = []*Node{first, stat, stat, stat, stat}
			}
			attrs := randomAttrs(r, info, first)
			if fwd, ok := windowGradOf[info.Name]; ok {
				// The forward op first, then its gradient with operands
				// and sizes that fit it.
				if args, attrs, ok = windowGradArgs(g, r, fwd, info.Name, first, attrs); !ok {
					continue
				}
				opsSeen[fwd]++
			}
			n, err := g.Apply(name("v"), info.Name, args, attrs)
			if err == nil {
				opsSeen[info.Name]++
				nodes = append(nodes, n)
				break
			}
		}
	}
	outs := []*Node{nodes[len(nodes)-1]}
	for _, n := range nodes[:len(nodes)-1] {
		if r.IntN(8) == 0 {
			outs = append(outs, n)
		}
	}
	if err := g.SetOutputs(outs...); err != nil {
		t.Fatal(err)
	}
	if r.IntN(4) == 0 { // all on one device
		d := []Device{HostCPU, GPUDevice(0), GPUDevice(3)}[r.IntN(3)]
		for _, n := range g.Nodes {
			n.Device = d
		}
	}
	return g
}

func randomElem(r *rand.Rand, dt DType) float64 {
	switch dt {
	case Bool:
		return float64(r.IntN(2))
	case I32, I64:
		return float64(r.IntN(2001) - 1000)
	}
	return []float64{0, 1, -1, 0.5, 1e-7, -3.25, 1e30, 123456.789}[r.IntN(8)]
}

// randomAttrs picks a random subset of info's attributes with values that
// are often, but not always, valid for operand x.
func randomAttrs(r *rand.Rand, info *OpInfo, x *Node) Attrs {
	rank := x.Type.Rank()
	smallInt := func() int64 { return int64(r.IntN(rank+3) - rank/2 - 1) }
	if info.Name == "slice" && rank > 0 {
		ax := r.IntN(rank)
		out := Attrs{{"axis", Int(int64(ax))}}
		d := x.Type.Shape[ax]
		if d.IsBatch() && r.IntN(4) != 0 {
			parts := int64(1 + r.IntN(4))
			out = append(out, Attr{"part", Int(r.Int64N(parts))}, Attr{"parts", Int(parts)})
			if r.IntN(2) == 0 {
				out = append(out, Attr{"split", Ident(string(Remainder))})
			}
			return out
		}
		if size, ok := d.Value(); ok {
			start := r.Int64N(size)
			out = append(out, Attr{"start", Int(start)}, Attr{"end", Int(start + 1 + r.Int64N(size-start))})
		}
		return out
	}
	var out Attrs
	for _, spec := range info.Attrs {
		if spec.Default != nil && r.IntN(2) == 0 {
			continue
		}
		var v AttrValue
		switch spec.Kind {
		case SpecInt:
			v = Int(smallInt())
			if spec.Name == "groups" || spec.Name == "parts" {
				v = Int(int64(1 + r.IntN(3)))
			}
		case SpecFloat:
			v = []AttrValue{Float(0.5), Float(1e-5), Float(0.01), Float(0.2), Int(0), Float(1e-3)}[r.IntN(6)]
		case SpecBool:
			v = BoolAttr(r.IntN(2) == 0)
		case SpecEnum:
			v = Ident(spec.Enum[r.IntN(len(spec.Enum))])
		case SpecInts:
			n := []int{1, 2, 2, 2, 4, rank}[r.IntN(6)]
			if spec.Name == "perm" || spec.Name == "axes" {
				p := r.Perm(rank)
				n = min(rank, n)
				if spec.Name == "perm" {
					n = rank
				}
				l := make([]int64, n)
				for i := range l {
					l[i] = int64(p[i])
				}
				v = Ints(l...)
				break
			}
			l := make([]int64, n)
			for i := range l {
				l[i] = int64(r.IntN(3))
				if spec.Name != "pad" {
					l[i]++
				}
			}
			v = Ints(l...)
		case SpecDims:
			// A reshape: the operand's dims in order, merged or with a -1.
			var l []AttrValue
			for _, d := range x.Type.Shape {
				if d.Sym != "" {
					a := Ident(d.SymName())
					a.Int = d.Mul
					l = append(l, a)
				} else {
					l = append(l, Int(d.Size))
				}
			}
			if len(l) > 1 && r.IntN(2) == 0 {
				i := r.IntN(len(l))
				l[i] = Int(-1)
			}
			v = AttrValue{Kind: AttrList, List: l}
		}
		out = append(out, Attr{spec.Name, v})
	}
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// windowGradOf names the forward op of each window gradient op.
var windowGradOf = map[string]string{
	"conv2d_grad_input": "conv2d", "conv2d_grad_weight": "conv2d",
	"maxpool2d_grad": "maxpool2d", "avgpool2d_grad": "avgpool2d",
}

// windowGradArgs applies the forward op fwd to x (with a fresh weight of
// a random kernel for conv2d) using attrs, and returns the operands and
// attributes of its gradient op, or false when the forward op does not
// apply.
func windowGradArgs(g *Graph, r *rand.Rand, fwd, op string, x *Node, attrs Attrs) ([]*Node, Attrs, bool) {
	t := x.Type
	if t.Rank() != 4 || !t.DType.IsFloat() || t.Shape[1].Sym != "" || t.Shape[2].Sym != "" || t.Shape[3].Sym != "" {
		return nil, nil, false
	}
	var fattrs, extra Attrs
	for _, a := range attrs {
		if LookupOp(fwd).attr(a.Name) != nil {
			fattrs = append(fattrs, a)
		}
	}
	size := Attr{"size", Ints(t.Shape[2].Size, t.Shape[3].Size)}
	fargs := []*Node{x}
	var w *Node
	if fwd == "conv2d" {
		groups := fattrs.integer("groups", 1)
		kh, kw := int64(1+r.IntN(3)), int64(1+r.IntN(3))
		o := groups * int64(1+r.IntN(3))
		if groups < 1 || t.Shape[1].Size%groups != 0 {
			return nil, nil, false
		}
		var err error
		w, err = g.Param(fmt.Sprintf("w%d", len(g.Nodes)), Type{DType: t.DType, Shape: []Dim{Const(o), Const(t.Shape[1].Size / groups), Const(kh), Const(kw)}})
		if err != nil {
			return nil, nil, false
		}
		fargs = append(fargs, w)
		extra = Attrs{{"kernel", Ints(kh, kw)}}
	} else {
		// A window that fits: random attributes rarely do.
		kh, kw := 1+r.Int64N(min(t.Shape[2].Size, 3)), 1+r.Int64N(min(t.Shape[3].Size, 3))
		fattrs = Attrs{{"kernel", Ints(kh, kw)}}
		if r.IntN(2) == 0 {
			fattrs = append(fattrs, Attr{"stride", Ints(1+r.Int64N(2), 1+r.Int64N(2))})
		}
	}
	y, err := g.Apply(fmt.Sprintf("f%d", len(g.Nodes)), fwd, fargs, fattrs)
	if err != nil {
		return nil, nil, false
	}
	switch op {
	case "conv2d_grad_input":
		return []*Node{y, w}, append(fattrs, size), true
	case "conv2d_grad_weight":
		return []*Node{x, y}, append(fattrs, extra...), true
	case "maxpool2d_grad":
		return []*Node{x, y}, fattrs, true
	}
	return []*Node{y}, append(fattrs, size), true
}
