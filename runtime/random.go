package runtime

import (
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"

	"gorgonia.org/tensor"

	"multigpu/graph"
	"multigpu/runtime/host"
)

// RandomParams returns seeded random values for every param of g, by name.
// Each tensor depends only on the seed, the param's name and its type, so
// a graph and its rewritten form (which keeps param names) get the same
// weights. Weights are uniform in ±1/sqrt(fan-in) (fan-in: the first axis
// of a matrix, all but the first of a conv filter; 0.1 for vectors);
// params read, directly or through copies, as a batchnorm scale or
// variance, or by log or sqrt, are uniform in [0.5, 1.5).
func RandomParams(g *graph.Graph, seed uint64) map[string]*tensor.Dense {
	positive := positiveParams(g)
	out := map[string]*tensor.Dense{}
	for _, p := range g.Params() {
		shape := mustShape(p.Type)
		lo, hi := -0.1, 0.1
		switch {
		case positive[p]:
			lo, hi = 0.5, 1.5
		case len(shape) >= 2:
			fan := shape[0]
			if len(shape) > 2 {
				fan = numel(shape[1:])
			}
			a := 1 / math.Sqrt(float64(max(fan, 1)))
			lo, hi = -a, a
		}
		out[p.Name] = randomTensor(seed, "param", p.Name, p.Type.DType, shape, lo, hi, 0)
	}
	return out
}

// RandomInputs returns seeded random values, uniform in [-1, 1) (integers
// in [0, 10), or in [0, rows) for those IndexRows finds), for every input
// of g at batch size batch (ignored when the batch is bound in the graph).
// Like RandomParams, a tensor depends only on the seed, the input's name
// and its shape.
func RandomInputs(g *graph.Graph, batch int64, seed uint64) (map[string]*tensor.Dense, error) {
	return RandomInputsIn(g, batch, seed, IndexRows(g, batch))
}

// RandomInputsIn is RandomInputs with the integer inputs' ranges given:
// an integer input named in rows is drawn in [0, rows[name]), any other in
// [0, 10).
func RandomInputsIn(g *graph.Graph, batch int64, seed uint64, rows map[string]int64) (map[string]*tensor.Dense, error) {
	out := map[string]*tensor.Dense{}
	for _, in := range g.Inputs() {
		shape := make([]int, len(in.Type.Shape))
		for i, d := range in.Type.Shape {
			v, ok := d.Value()
			if !ok {
				if batch < 1 {
					return nil, fmt.Errorf("runtime: input %%%s: batch size needed for %s", in.Name, in.Type)
				}
				v = batch
			}
			shape[i] = int(v)
		}
		out[in.Name] = randomTensor(seed, "input", in.Name, in.Type.DType, shape, -1, 1, rows[in.Name])
	}
	return out, nil
}

// IndexRows finds the integer inputs of g whose values index: those that
// reach the indices of a gather or gather_grad directly or through ops
// that pass values on (cast, copy, reshape, flatten, transpose, slice,
// concat, expand, a gather's data). For each it returns the size of the
// smallest axis they index, at batch size batch where that axis is the
// batch (an axis whose size is unknown is left out).
func IndexRows(g *graph.Graph, batch int64) map[string]int64 {
	need := make([]int64, len(g.Nodes)) // by node ID: the rows its values index, 0 for none
	mark := func(n *graph.Node, rows int64) {
		if rows > 0 && (need[n.ID] == 0 || rows < need[n.ID]) {
			need[n.ID] = rows
		}
	}
	for i := len(g.Nodes) - 1; i >= 0; i-- {
		n := g.Nodes[i]
		switch n.Op {
		case "cast", "copy", "reshape", "flatten", "transpose", "slice", "concat", "expand":
			for _, a := range n.Args {
				mark(a, need[i])
			}
			continue
		case "gather":
			mark(n.Args[0], need[i])
			if ax, err := n.NormAxis("axis", n.Args[0].Type.Rank()); err == nil {
				d := n.Args[0].Type.Shape[ax]
				v, ok := d.Value()
				if !ok && d.IsSymbolic() && batch > 0 {
					v, ok = d.Mul*batch, true
				}
				if ok {
					mark(n.Args[1], v)
				}
			}
		case "gather_grad":
			mark(n.Args[0], n.IntAttr("rows", 0))
		}
	}
	out := map[string]int64{}
	for _, in := range g.Inputs() {
		if dt := in.Type.DType; need[in.ID] > 0 && (dt == graph.I32 || dt == graph.I64) {
			out[in.Name] = need[in.ID]
		}
	}
	return out
}

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// positiveParams finds params that must be positive: read (through any
// chain of copies) as batchnorm's scale or variance, or by log or sqrt.
func positiveParams(g *graph.Graph) map[*graph.Node]bool {
	origin := make([]*graph.Node, len(g.Nodes)) // the param a copy chain starts at
	out := map[*graph.Node]bool{}
	for i, n := range g.Nodes {
		switch {
		case n.Op == graph.OpParam:
			origin[i] = n
		case n.Op == "copy":
			origin[i] = origin[n.Args[0].ID]
		}
		for k, a := range n.Args {
			p := origin[a.ID]
			if p == nil {
				continue
			}
			if (n.Op == "batchnorm" && (k == 1 || k == 4)) || n.Op == "log" || n.Op == "sqrt" {
				out[p] = true
			}
		}
	}
	return out
}

// randomTensor draws a tensor: floats uniform in [lo, hi), integers in
// [0, rows) (rows 0: [0, 10)), bools either way.
func randomTensor(seed uint64, kind, name string, dt graph.DType, shape []int, lo, hi float64, rows int64) *tensor.Dense {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s %s", kind, name)
	r := rand.New(rand.NewPCG(seed, h.Sum64()))
	n := numel(shape)
	data := host.MakeSlice(dt, n)
	for i := 0; i < n; i++ {
		u := lo + (hi-lo)*r.Float64()
		switch d := data.(type) {
		case []float32:
			d[i] = float32(u)
		case []float64:
			d[i] = u
		case []int32:
			d[i] = int32(intIn(r, rows))
		case []int64:
			d[i] = intIn(r, rows)
		case []bool:
			d[i] = r.IntN(2) == 1
		}
	}
	return host.New(shape, data)
}

// intIn returns an integer uniform in [0, rows), or in [0, 10) when rows
// is 0.
func intIn(r *rand.Rand, rows int64) int64 {
	if rows > 0 {
		return r.Int64N(rows)
	}
	return int64(r.IntN(10))
}
