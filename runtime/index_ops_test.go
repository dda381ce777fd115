package runtime_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"multigpu/graph"
	"multigpu/runtime"
	"multigpu/runtime/host"
)

// gatherRef is gather written from its definition: out[pre, idx, post] =
// data[pre, indices[idx] (from the end when negative), post].
func gatherRef(data, indices arr, axis int) arr {
	shape := append(append(append([]int(nil), data.shape[:axis]...), indices.shape...), data.shape[axis+1:]...)
	out := newArr(shape...)
	ir := len(indices.shape)
	each(shape, func(idx []int) {
		k := int(indices.at(idx[axis : axis+ir]...))
		if k < 0 {
			k += data.shape[axis]
		}
		src := append(append(append([]int(nil), idx[:axis]...), k), idx[axis+ir:]...)
		out.data[out.index(idx)] = data.at(src...)
	})
	return out
}

// gatherGradRef is the adjoint of gatherRef: every element of dy added
// into the element of data it was read from.
func gatherGradRef(indices, dy arr, axis, rows int) arr {
	ir := len(indices.shape)
	shape := append(append(append([]int(nil), dy.shape[:axis]...), rows), dy.shape[axis+ir:]...)
	out := newArr(shape...)
	each(dy.shape, func(idx []int) {
		k := int(indices.at(idx[axis : axis+ir]...))
		if k < 0 {
			k += rows
		}
		dst := append(append(append([]int(nil), idx[:axis]...), k), idx[axis+ir:]...)
		out.data[out.index(dst)] += dy.at(idx...)
	})
	return out
}

// argRef is argmax (or argmin) along axis: the first extreme, where a NaN
// beats every number.
func argRef(x arr, axis int, keep, isMax bool) arr {
	var shape []int
	for i, d := range x.shape {
		switch {
		case i != axis:
			shape = append(shape, d)
		case keep:
			shape = append(shape, 1)
		}
	}
	out := newArr(shape...)
	each(x.shape, func(idx []int) {
		if idx[axis] != 0 {
			return
		}
		j := append([]int(nil), idx...)
		best := 0
		for k := 1; k < x.shape[axis]; k++ {
			j[axis] = best
			b := x.at(j...)
			j[axis] = k
			v := x.at(j...)
			if !math.IsNaN(b) && (math.IsNaN(v) || isMax && v > b || !isMax && v < b) {
				best = k
			}
		}
		var oi []int
		for i, v := range idx {
			switch {
			case i != axis:
				oi = append(oi, v)
			case keep:
				oi = append(oi, 0)
			}
		}
		out.data[out.index(oi)] = float64(best)
	})
	return out
}

// intArr returns an array of shape holding vals.
func intArr(shape []int, vals ...float64) arr { return arr{shape: shape, data: vals} }

// randInts returns integers uniform in [lo, hi).
func randInts(r *rand.Rand, lo, hi int, shape ...int) arr {
	a := newArr(shape...)
	for i := range a.data {
		a.data[i] = float64(lo + r.IntN(hi-lo))
	}
	return a
}

// indexOpCases are the op tests of gather, gather_grad, expand, argmax and
// argmin: i32 and i64 indices, negative ones, out-of-range ones (an
// error naming the node), and data of every element type.
func indexOpCases() []opCase {
	r := rand.New(rand.NewPCG(5, 6))
	tr := 1e-5
	i64 := func(names ...string) map[string]graph.DType {
		m := map[string]graph.DType{}
		for _, n := range names {
			m[n] = graph.I64
		}
		return m
	}
	table := randArr(r, -1, 1, 10, 4)
	ids := intArr([]int{2, 3}, 3, -1, 0, 9, -10, 3)
	cases := []opCase{
		{name: "gather_embedding",
			src:    "graph g {\n  param %t: {T}[10,4]\n  input %i: i64[N,3]\n  %y = gather %t, %i\n  output %y\n}\n",
			inputs: map[string]arr{"t": table, "i": ids}, types: i64("i"),
			want: func(in map[string]arr, dt graph.DType) arr { return gatherRef(in["t"], in["i"], 0) }},
		{name: "gather_axis1_i32",
			src:    "graph g {\n  input %x: {T}[2,5,3]\n  input %i: i32[2,2]\n  %y = gather %x, %i {axis=1}\n  output %y\n}\n",
			inputs: map[string]arr{"x": randArr(r, -1, 1, 2, 5, 3), "i": intArr([]int{2, 2}, 4, -5, 1, 1)},
			types:  map[string]graph.DType{"i": graph.I32},
			want:   func(in map[string]arr, dt graph.DType) arr { return gatherRef(in["x"], in["i"], 1) }},
		{name: "gather_scalar_index_last_axis",
			src:    "graph g {\n  input %x: {T}[3,4]\n  input %i: i64[]\n  %y = gather %x, %i {axis=-1}\n  output %y\n}\n",
			inputs: map[string]arr{"x": randArr(r, -1, 1, 3, 4), "i": intArr([]int{}, -2)}, types: i64("i"),
			want: func(in map[string]arr, dt graph.DType) arr { return gatherRef(in["x"], in["i"], 1) }},
		{name: "gather_i64_data",
			src:    "graph g {\n  input %x: i64[5,2]\n  input %i: i32[3]\n  %y = gather %x, %i\n  output %y\n}\n",
			inputs: map[string]arr{"x": randInts(r, -100, 100, 5, 2), "i": intArr([]int{3}, 4, 0, -1)},
			types:  map[string]graph.DType{"x": graph.I64, "i": graph.I32},
			want:   func(in map[string]arr, dt graph.DType) arr { return gatherRef(in["x"], in["i"], 0) }},
		{name: "gather_bool_data",
			src:    "graph g {\n  input %x: bool[2,3]\n  input %i: i64[4]\n  %y = gather %x, %i {axis=1}\n  output %y\n}\n",
			inputs: map[string]arr{"x": intArr([]int{2, 3}, 1, 0, 1, 0, 0, 1), "i": intArr([]int{4}, 2, 1, 0, -3)},
			types:  map[string]graph.DType{"x": graph.Bool, "i": graph.I64},
			want:   func(in map[string]arr, dt graph.DType) arr { return gatherRef(in["x"], in["i"], 1) }},
		{name: "gather_index_out_of_range",
			src:    "graph g {\n  param %t: {T}[10,4]\n  input %i: i64[N,2]\n  %y = gather %t, %i\n  output %y\n}\n",
			inputs: map[string]arr{"t": table, "i": intArr([]int{2, 2}, 1, 2, 10, 0)}, types: i64("i"),
			wantErr: "%y (gather): index 10 is out of range for axis 0 of size 10 (expected -10 to 9)"},
		{name: "gather_negative_index_out_of_range",
			src:    "graph g {\n  input %x: {T}[3,4]\n  input %i: i32[2]\n  %y = gather %x, %i {axis=1}\n  output %y\n}\n",
			inputs: map[string]arr{"x": randArr(r, -1, 1, 3, 4), "i": intArr([]int{2}, -5, 0)}, types: map[string]graph.DType{"i": graph.I32},
			wantErr: "%y (gather): index -5 is out of range for axis 1 of size 4"},
		{name: "gather_grad_embedding", tol: tr,
			src:    "graph g {\n  input %i: i64[N,3]\n  input %d: {T}[N,3,4]\n  %y = gather_grad %i, %d {rows=10}\n  output %y\n}\n",
			inputs: map[string]arr{"i": ids, "d": randArr(r, -1, 1, 2, 3, 4)}, types: i64("i"),
			want: func(in map[string]arr, dt graph.DType) arr { return gatherGradRef(in["i"], in["d"], 0, 10) }},
		{name: "gather_grad_axis1_repeats", tol: tr,
			src:    "graph g {\n  input %i: i32[5]\n  input %d: {T}[2,5,3]\n  %y = gather_grad %i, %d {axis=1, rows=4}\n  output %y\n}\n",
			inputs: map[string]arr{"i": intArr([]int{5}, 1, -3, 3, 1, 0), "d": randArr(r, -1, 1, 2, 5, 3)},
			types:  map[string]graph.DType{"i": graph.I32},
			want:   func(in map[string]arr, dt graph.DType) arr { return gatherGradRef(in["i"], in["d"], 1, 4) }},
		{name: "gather_grad_scalar_index",
			src:    "graph g {\n  input %i: i64[]\n  input %d: {T}[3]\n  %y = gather_grad %i, %d {axis=1, rows=2}\n  output %y\n}\n",
			inputs: map[string]arr{"i": intArr([]int{}, 1), "d": randArr(r, -1, 1, 3)}, types: i64("i"),
			want: func(in map[string]arr, dt graph.DType) arr { return gatherGradRef(in["i"], in["d"], 1, 2) }},
		{name: "gather_grad_index_out_of_range",
			src:    "graph g {\n  input %i: i64[2]\n  input %d: {T}[2,4]\n  %y = gather_grad %i, %d {rows=3}\n  output %y\n}\n",
			inputs: map[string]arr{"i": intArr([]int{2}, 0, -4), "d": randArr(r, -1, 1, 2, 4)}, types: i64("i"),
			wantErr: "%y (gather_grad): index -4 is out of range for axis 0 of size 3"},
		{name: "expand",
			src:    "graph g {\n  input %x: {T}[3,1]\n  %y = expand %x {shape=[2,1,4]}\n  output %y\n}\n",
			inputs: map[string]arr{"x": randArr(r, -1, 1, 3, 1)},
			want: func(in map[string]arr, dt graph.DType) arr {
				return broadcast(in["x"], newArr(2, 1, 4), func(x, _ float64) float64 { return x })
			}},
		{name: "expand_batch",
			src:    "graph g {\n  input %x: {T}[N,1,3]\n  %y = expand %x {shape=[N,2,1]}\n  output %y\n}\n",
			inputs: map[string]arr{"x": randArr(r, -1, 1, 5, 1, 3)},
			want: func(in map[string]arr, dt graph.DType) arr {
				return broadcast(in["x"], newArr(5, 2, 1), func(x, _ float64) float64 { return x })
			}},
		{name: "expand_i64",
			src:    "graph g {\n  input %x: i64[4]\n  %y = expand %x {shape=[3,1]}\n  output %y\n}\n",
			inputs: map[string]arr{"x": randInts(r, -9, 9, 4)}, types: i64("x"),
			want: func(in map[string]arr, dt graph.DType) arr {
				return broadcast(in["x"], newArr(3, 1), func(x, _ float64) float64 { return x })
			}},
		{name: "expand_bool",
			src:    "graph g {\n  input %x: bool[2,1]\n  %y = expand %x {shape=[2,3]}\n  output %y\n}\n",
			inputs: map[string]arr{"x": intArr([]int{2, 1}, 1, 0)}, types: map[string]graph.DType{"x": graph.Bool},
			want: func(in map[string]arr, dt graph.DType) arr {
				return broadcast(in["x"], newArr(2, 3), func(x, _ float64) float64 { return x })
			}},
	}
	// Values with ties, and NaN, for argmax and argmin.
	ties := randInts(r, -2, 3, 3, 4, 5)
	specials := arr{shape: []int{2, 4}, data: []float64{2, math.NaN(), 5, math.NaN(), math.Inf(-1), -1, math.Inf(1), 0}}
	for _, op := range []string{"argmax", "argmin"} {
		isMax := op == "argmax"
		for _, c := range []struct {
			name, attrs string
			axis        int
			keep        bool
		}{
			{"axis0", "{axis=0}", 0, false},
			{"axis1_keep", "{axis=1, keepdims=true}", 1, true},
			{"last", "{axis=-1}", 2, false},
		} {
			cases = append(cases, opCase{name: op + "_" + c.name,
				src:    "graph g {\n  input %x: {T}[3,4,5]\n  %y = " + op + " %x " + c.attrs + "\n  output %y\n}\n",
				inputs: map[string]arr{"x": ties},
				want:   func(in map[string]arr, dt graph.DType) arr { return argRef(in["x"], c.axis, c.keep, isMax) }})
		}
		cases = append(cases, opCase{name: op + "_specials",
			src:    "graph g {\n  input %x: {T}[2,4]\n  %y = " + op + " %x {axis=1}\n  output %y\n}\n",
			inputs: map[string]arr{"x": specials},
			want:   func(in map[string]arr, dt graph.DType) arr { return argRef(in["x"], 1, false, isMax) }},
			opCase{name: op + "_i32",
				src:    "graph g {\n  input %x: i32[4,3]\n  %y = " + op + " %x {axis=0}\n  output %y\n}\n",
				inputs: map[string]arr{"x": randInts(r, -3, 3, 4, 3)}, types: map[string]graph.DType{"x": graph.I32},
				want: func(in map[string]arr, dt graph.DType) arr { return argRef(in["x"], 0, false, isMax) }})
	}
	return cases
}

// IndexRows finds the integer inputs that reach a gather's indices, also
// through ops that pass values on, with the smallest size they index;
// RandomInputs draws them in [0, rows).
func TestIndexRows(t *testing.T) {
	g, err := graph.Parse("g.graph", []byte(`graph g {
  input %ids: i64[N,4]
  input %pos: i32[2]
  input %n: i64[N,4]
  input %x: f32[N,4]
  param %table: f32[50,3]
  param %small: f32[6,3]
  %e = gather %table, %ids
  %r = reshape %ids {shape=[-1]}
  %f = gather %small, %r
  %pc = concat %pos, %pos {axis=0}
  %px = expand %pc {shape=[2,4]}
  %bx = gather %x, %px {axis=1}
  %g = gather_grad %pos, %bx {axis=1, rows=3}
  %sum = add %n, %n
  output %e, %f, %g, %sum
}
`))
	if err != nil {
		t.Fatal(err)
	}
	rows := runtime.IndexRows(g, 5)
	if got := fmt.Sprint(rows); got != "map[ids:6 pos:3]" {
		t.Errorf("IndexRows = %s, want map[ids:6 pos:3]", got)
	}
	in, err := runtime.RandomInputs(g, 500, 1)
	if err != nil {
		t.Fatal(err)
	}
	for name, r := range map[string]float64{"ids": 6, "pos": 3, "n": 10} {
		seen := map[float64]bool{}
		for _, v := range host.Float64s(in[name]) {
			if v < 0 || v >= r || v != math.Trunc(v) {
				t.Fatalf("%%%s: %v outside [0, %v)", name, v, r)
			}
			seen[v] = true
		}
		if name != "pos" && len(seen) != int(r) {
			t.Errorf("%%%s: %d distinct values of %v", name, len(seen), r)
		}
	}
}
