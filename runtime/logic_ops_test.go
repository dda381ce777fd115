package runtime_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"gorgonia.org/tensor"

	"multigpu/graph"
	"multigpu/passes/replicate"
	"multigpu/runtime"
	"multigpu/runtime/host"
)

// logicOpCases are the op tests of pow, erf, where, the comparisons, the
// logic ops and cast, on floats (in {T}) and on the integer and bool
// element types they allow, against references from their definitions.
func logicOpCases() []opCase {
	r := rand.New(rand.NewPCG(5, 6))
	var cases []opCase
	// Whole numbers in [-2, 2], so that equality happens.
	small := func(shape ...int) arr {
		a := newArr(shape...)
		for i := range a.data {
			a.data[i] = float64(r.IntN(5) - 2)
		}
		return a
	}
	bools := func(shape ...int) arr {
		a := newArr(shape...)
		for i := range a.data {
			a.data[i] = float64(r.IntN(2))
		}
		return a
	}
	specials := arr{shape: []int{2, 4}, data: []float64{math.NaN(), math.Inf(1), math.Inf(-1), 0, math.Copysign(0, -1), -1.5, 2.5, 1e-30}}

	// pow: exact, as float32(math.Pow(float64(a), float64(b))) in f32.
	for _, s := range []struct {
		name   string
		ta, tb string
		a, b   arr
	}{
		{"same", "[2,3,4]", "[2,3,4]", randArr(r, 0.1, 3, 2, 3, 4), randArr(r, -2, 2, 2, 3, 4)},
		{"exponent_scalar", "[2,3,4]", "[]", randArr(r, 0.1, 3, 2, 3, 4), arr{shape: []int{}, data: []float64{2.5}}},
		{"base_column", "[3,1]", "[2,3,4]", randArr(r, 0.1, 3, 3, 1), randArr(r, -2, 2, 2, 3, 4)},
		// Negative bases with whole and fractional exponents, NaN, ±Inf, ±0.
		{"specials", "[2,4]", "[4]", specials, arr{shape: []int{4}, data: []float64{2, 0.5, math.NaN(), -1}}},
		{"specials_exponents", "[4]", "[2,4]", arr{shape: []int{4}, data: []float64{-2, 0, 1, math.Inf(-1)}}, specials},
	} {
		cases = append(cases, opCase{
			name:   "pow_" + s.name,
			src:    fmt.Sprintf("graph g {\n  input %%x: {T}%s\n  input %%z: {T}%s\n  %%y = pow %%x, %%z\n  output %%y\n}\n", s.ta, s.tb),
			inputs: map[string]arr{"x": s.a, "z": s.b},
			want:   func(in map[string]arr, dt graph.DType) arr { return broadcast(in["x"], in["z"], math.Pow) },
		})
	}
	// erf: exact, as float32(math.Erf(float64(x))) in f32.
	for name, x := range map[string]arr{"erf": randArr(r, -3, 3, 2, 3, 4), "erf_specials": specials} {
		cases = append(cases, opCase{
			name:   name,
			src:    fmt.Sprintf("graph g {\n  input %%x: {T}%s\n  %%y = erf %%x\n  output %%y\n}\n", dims(x.shape)),
			inputs: map[string]arr{"x": x},
			want:   func(in map[string]arr, dt graph.DType) arr { return unary(in["x"], math.Erf) },
		})
	}
	// where: every element type of a and b, all three operands broadcast.
	whereRef := func(in map[string]arr, dt graph.DType) arr {
		ca := broadcast(in["c"], in["a"], func(c, a float64) float64 { return c })
		av := broadcast(in["c"], in["a"], func(c, a float64) float64 { return a })
		cb := broadcast(ca, in["b"], func(c, b float64) float64 { return c })
		ab := broadcast(av, in["b"], func(a, b float64) float64 { return a })
		out := broadcast(cb, in["b"], func(c, b float64) float64 { return b })
		for i := range out.data {
			if cb.data[i] != 0 {
				out.data[i] = ab.data[i]
			}
		}
		return out
	}
	for _, w := range []struct {
		name, t string
		a, b    arr
	}{
		{"float", "{T}", randArr(r, -2, 2, 3, 1), reshaped(specials, 2, 1, 4)},
		{"i32", "i32", small(3, 1), small(2, 1, 4)},
		{"i64", "i64", small(3, 1), small(2, 1, 4)},
		{"bool", "bool", bools(3, 1), bools(2, 1, 4)},
	} {
		types := map[string]graph.DType{"c": graph.Bool}
		if dt, ok := graph.ParseDType(w.t); ok {
			types["a"], types["b"] = dt, dt
		}
		cases = append(cases, opCase{
			name: "where_" + w.name,
			src: fmt.Sprintf("graph g {\n  input %%c: bool[2,1,4]\n  input %%a: %s[3,1]\n  input %%b: %s[2,1,4]\n  %%y = where %%c, %%a, %%b\n  output %%y\n}\n",
				w.t, w.t),
			inputs: map[string]arr{"c": bools(2, 1, 4), "a": w.a, "b": w.b},
			types:  types,
			want:   whereRef,
		})
	}
	// comparisons: floats (with specials), integers, and bools for equal.
	cmps := map[string]func(x, y float64) bool{
		"equal": func(x, y float64) bool { return x == y }, "less": func(x, y float64) bool { return x < y },
		"greater": func(x, y float64) bool { return x > y }, "less_equal": func(x, y float64) bool { return x <= y },
		"greater_equal": func(x, y float64) bool { return x >= y },
	}
	for op, f := range cmps {
		ref := func(in map[string]arr, dt graph.DType) arr {
			return broadcast(in["x"], in["z"], func(x, y float64) float64 { return boolFloat(f(x, y)) })
		}
		src := func(t string) string {
			return fmt.Sprintf("graph g {\n  input %%x: %s[2,3,4]\n  input %%z: %s[3,1]\n  %%y = %s %%x, %%z\n  output %%y\n}\n", t, t, op)
		}
		cases = append(cases,
			opCase{name: op, src: src("{T}"), inputs: map[string]arr{"x": small(2, 3, 4), "z": small(3, 1)}, want: ref},
			opCase{name: op + "_specials",
				src:    fmt.Sprintf("graph g {\n  input %%x: {T}[2,4]\n  input %%z: {T}[4]\n  %%y = %s %%x, %%z\n  output %%y\n}\n", op),
				inputs: map[string]arr{"x": specials, "z": {shape: []int{4}, data: []float64{1, math.NaN(), math.Inf(-1), 0}}},
				want:   ref},
			opCase{name: op + "_i32", src: src("i32"), inputs: map[string]arr{"x": small(2, 3, 4), "z": small(3, 1)},
				types: map[string]graph.DType{"x": graph.I32, "z": graph.I32}, want: ref},
			opCase{name: op + "_i64", src: src("i64"), inputs: map[string]arr{"x": small(2, 3, 4), "z": small(3, 1)},
				types: map[string]graph.DType{"x": graph.I64, "z": graph.I64}, want: ref},
		)
		if op == "equal" {
			cases = append(cases, opCase{name: op + "_bool", src: src("bool"), inputs: map[string]arr{"x": bools(2, 3, 4), "z": bools(3, 1)},
				types: map[string]graph.DType{"x": graph.Bool, "z": graph.Bool}, want: ref})
		}
	}
	// not, and, or, xor.
	logic := map[string]func(x, y bool) bool{
		"and": func(x, y bool) bool { return x && y }, "or": func(x, y bool) bool { return x || y },
		"xor": func(x, y bool) bool { return x != y },
	}
	for op, f := range logic {
		cases = append(cases, opCase{
			name:   op,
			src:    fmt.Sprintf("graph g {\n  input %%x: bool[2,3,4]\n  input %%z: bool[3,1]\n  %%y = %s %%x, %%z\n  output %%y\n}\n", op),
			inputs: map[string]arr{"x": bools(2, 3, 4), "z": bools(3, 1)},
			types:  map[string]graph.DType{"x": graph.Bool, "z": graph.Bool},
			want: func(in map[string]arr, dt graph.DType) arr {
				return broadcast(in["x"], in["z"], func(x, y float64) float64 { return boolFloat(f(x != 0, y != 0)) })
			},
		})
	}
	cases = append(cases, opCase{
		name:   "not",
		src:    "graph g {\n  input %x: bool[2,3,4]\n  %y = not %x\n  output %y\n}\n",
		inputs: map[string]arr{"x": bools(2, 3, 4)},
		types:  map[string]graph.DType{"x": graph.Bool},
		want: func(in map[string]arr, dt graph.DType) arr {
			return unary(in["x"], func(x float64) float64 { return boolFloat(x == 0) })
		},
	})
	// cast between every pair of element types; floats with fractions,
	// specials and values beyond the integers' range.
	wide := arr{shape: []int{3, 4}, data: []float64{-2.7, 2.7, -0.5, 0.5, 1e10, -1e10, 3e19, -3e19, math.NaN(), math.Inf(1), math.Inf(-1), math.Copysign(0, -1)}}
	ints := arr{shape: []int{3, 4}, data: []float64{-2, -1, 0, 1, 2, 7, -7, 100, 16777217, -16777217, 2147483647, -2147483648}}
	from := []struct {
		t  string
		dt graph.DType
		x  arr
	}{
		{"{T}", 0, wide}, {"i32", graph.I32, ints}, {"i64", graph.I64, ints}, {"bool", graph.Bool, bools(3, 4)},
	}
	for _, fr := range from {
		for _, to := range []graph.DType{graph.F32, graph.F64, graph.I32, graph.I64, graph.Bool} {
			types := map[string]graph.DType{}
			name := "cast_float_to_" + to.String()
			if fr.dt != 0 {
				types["x"] = fr.dt
				name = "cast_" + fr.t + "_to_" + to.String()
			}
			cases = append(cases, opCase{
				name:   name,
				src:    fmt.Sprintf("graph g {\n  input %%x: %s[3,4]\n  %%y = cast %%x {to=%s}\n  output %%y\n}\n", fr.t, to),
				inputs: map[string]arr{"x": fr.x},
				types:  types,
				want: func(in map[string]arr, dt graph.DType) arr {
					return unary(in["x"], func(v float64) float64 { return castRef(v, to) })
				},
			})
		}
	}
	return cases
}

// castRef is ONNX Cast of v (a value of the source type) to dt: floats to
// integers truncate toward zero and saturate (NaN gives 0), to bool is
// v != 0.
func castRef(v float64, dt graph.DType) float64 {
	limit := map[graph.DType]float64{graph.I32: 1 << 31, graph.I64: 1 << 63}[dt]
	switch dt {
	case graph.F32:
		return float64(float32(v))
	case graph.Bool:
		return boolFloat(v != 0)
	case graph.I32, graph.I64:
		switch {
		case math.IsNaN(v):
			return 0
		case v >= limit:
			return limit - 1 // 2^63-1 as a float64 is 2^63, as the result reads
		case v <= -limit:
			return -limit
		}
		return math.Trunc(v)
	}
	return v
}

func boolFloat(v bool) float64 {
	if v {
		return 1
	}
	return 0
}

// dims spells a shape as the text format does: [2,3].
func dims(shape []int) string {
	return graph.Type{DType: graph.F32, Shape: constDims(shape)}.String()[len("f32"):]
}

func constDims(shape []int) []graph.Dim {
	out := make([]graph.Dim, len(shape))
	for i, d := range shape {
		out[i] = graph.Const(int64(d))
	}
	return out
}

// TestLogicOpsReplicated runs a graph of the new ops on batch-carrying
// bool, integer and float values rewritten for 2 and 3 GPUs, and checks
// every output is bit-identical to one device's.
func TestLogicOpsReplicated(t *testing.T) {
	g, err := graph.Parse("logic.graph", []byte(`graph logic {
  input %x: f32[N,4]
  input %m: bool[N,1]
  input %k: i64[N,4]
  param %w: f32[4]
  const %two: i64[] = 2
  %p = pow %x, %w
  %e = erf %x
  %lt = less %x, %w
  %both = and %lt, %m
  %n = not %both
  %ge = greater_equal %k, %two
  %any = or %n, %ge
  %xo = xor %any, %m
  %eq = equal %xo, %lt
  %y = where %eq, %p, %e
  %ki = where %m, %k, %two
  %c = cast %ki {to=f32}
  %z = cast %y {to=i32}
  %b = cast %c {to=bool}
  output %y, %c, %z, %b
}
`))
	if err != nil {
		t.Fatal(err)
	}
	params := runtime.RandomParams(g, 1)
	in, err := runtime.RandomInputs(g, 7, 2)
	if err != nil {
		t.Fatal(err)
	}
	run := func(g *graph.Graph) map[string]*tensor.Dense {
		e, err := runtime.New(g, runtime.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.SetParams(params); err != nil {
			t.Fatal(err)
		}
		out, err := e.Run(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	want := run(g)
	for _, n := range []int{2, 3} {
		rg, _, err := replicate.Rewrite(g, replicate.Options{GPUs: gpus(n)})
		if err != nil {
			t.Fatal(err)
		}
		for _, nd := range rg.Nodes {
			// Batch-parallel: every op but the transfers runs on the replicas.
			if !nd.IsLeaf() && nd.Op != "slice" && nd.Op != "concat" && nd.Op != "copy" && nd.Device.Kind != graph.GPU {
				t.Errorf("%d GPUs: %%%s (%s) runs on %s", n, nd.Name, nd.Op, nd.Device)
			}
		}
		got := run(rg)
		for name, w := range want {
			if a, b := fmt.Sprint(host.Data(w)), fmt.Sprint(host.Data(got[name])); a != b {
				t.Errorf("%d GPUs: %%%s = %s, one device %s", n, name, b, a)
			}
		}
	}
}
