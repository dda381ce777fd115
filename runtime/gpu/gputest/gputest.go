// Package gputest holds the checks a GPU backend must pass against the
// CPU backend (runtime/cpu): every op of the op table alone, in f32 and
// f64, with special values (NaN, ±Inf, ±0) where they matter, and every
// testdata model rewritten for several GPUs. runtime/gpu runs them on the
// host emulation of its kernels; runtime/cuda runs the same checks on real
// GPUs.
package gputest

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gorgonia.org/tensor"

	"multigpu/graph"
	"multigpu/passes/replicate"
	"multigpu/runtime"
	"multigpu/runtime/backend"
	"multigpu/runtime/host"
)

// Devices returns the backend of each device of a run, as
// runtime.Options.Devices does.
type Devices func(d graph.Device) (backend.Device, error)

// Tolerance says how closely a GPU backend must match the CPU backend.
type Tolerance int

const (
	// Bits: the same operations in the same order give the same bits.
	Bits Tolerance = iota
	// Rounding: exp, log and tanh are evaluated by another library
	// (within an ulp of each other in double), then rounded once: f32
	// within 2e-7 relative, f64 within 1e-15.
	Rounding
	// Products: sums of products in another order (gemm): f32 within
	// 1e-5 relative plus 1e-7 absolute, f64 within 1e-12 plus 1e-15.
	Products
	// TF32: f32 products on TF32 tensor cores (inputs rounded to a
	// 10-bit mantissa): within 1e-2 relative plus 2e-3 of the tensor's
	// largest magnitude (cuda.TF32Rel and cuda.TF32Scale); f64 as
	// Products.
	TF32
	// Model: a whole model's outputs, through many sums of products in
	// another order than the CPU backend's (its gemm blocks and vector
	// lanes are its own): f32 within 1e-4 relative plus 1e-5 of the
	// tensor's largest magnitude, f64 within 1e-10 plus 1e-12 of it.
	Model
)

type opCase struct {
	name     string
	src      string // a graph in f32; f64 runs with every f32 replaced
	tol      Tolerance
	batch    int64
	specials bool // feed NaN, ±Inf and ±0 among the inputs
}

// opCases cover every op of the op table, alone or in pairs that make
// views (reshape, slice, dropout in inference) meet kernels.
var opCases = []opCase{
	{name: "add_broadcast", src: "input %a: f32[3,1,5]\ninput %b: f32[4,5]\n%y = add %a, %b", specials: true},
	{name: "sub_scalar", src: "input %a: f32[]\ninput %b: f32[2,3]\n%y = sub %a, %b"},
	{name: "mul_same", src: "input %a: f32[2,3,4]\ninput %b: f32[2,3,4]\n%y = mul %a, %b", specials: true},
	{name: "div_rows", src: "input %a: f32[6,7]\ninput %b: f32[6,1]\n%y = div %a, %b", specials: true},
	{name: "maximum", src: "input %a: f32[4,1,3]\ninput %b: f32[1,5,3]\n%y = maximum %a, %b", specials: true},
	{name: "minimum", src: "input %a: f32[4,5,3]\ninput %b: f32[3]\n%y = minimum %a, %b", specials: true},
	{name: "neg", src: "input %x: f32[5,6]\n%y = neg %x", specials: true},
	{name: "abs", src: "input %x: f32[5,6]\n%y = abs %x", specials: true},
	{name: "exp", src: "input %x: f32[5,6]\n%y = exp %x", tol: Rounding, specials: true},
	{name: "log", src: "input %x: f32[5,6]\n%y = log %x", tol: Rounding, specials: true},
	{name: "sqrt", src: "input %x: f32[5,6]\n%y = sqrt %x", specials: true},
	{name: "relu", src: "input %x: f32[5,6]\n%y = relu %x", specials: true},
	{name: "sigmoid", src: "input %x: f32[5,6]\n%y = sigmoid %x", tol: Rounding, specials: true},
	{name: "tanh", src: "input %x: f32[5,6]\n%y = tanh %x", tol: Rounding, specials: true},
	{name: "leaky_relu", src: "input %x: f32[5,6]\n%y = leaky_relu %x {alpha=0.2}", specials: true},
	{name: "matmul", src: "input %a: f32[5,7]\nparam %b: f32[7,3]\n%y = matmul %a, %b", tol: Products},
	{name: "matmul_fold", src: "input %a: f32[2,3,4,5]\nparam %b: f32[5,6]\n%y = matmul %a, %b", tol: Products},
	{name: "matmul_batched", src: "input %a: f32[2,4,5]\ninput %b: f32[2,5,3]\n%y = matmul %a, %b", tol: Products},
	{name: "softmax_last", src: "input %x: f32[3,4,5]\n%y = softmax %x", tol: Rounding, specials: true},
	{name: "softmax_mid", src: "input %x: f32[3,4,5]\n%y = softmax %x {axis=1}", tol: Rounding},
	{name: "log_softmax_first", src: "input %x: f32[3,4,5]\n%y = log_softmax %x {axis=0}", tol: Rounding},
	{name: "sum_all", src: "input %x: f32[3,4,5]\n%y = sum %x"},
	{name: "sum_mid_keep", src: "input %x: f32[3,4,5]\n%y = sum %x {axes=[1], keepdims=true}"},
	{name: "mean_outer", src: "input %x: f32[3,4,5]\n%y = mean %x {axes=[0,2]}"},
	{name: "max_last", src: "input %x: f32[3,4,5]\n%y = max %x {axes=[2]}", specials: true},
	{name: "min_first_keep", src: "input %x: f32[3,4,5]\n%y = min %x {axes=[0], keepdims=true}", specials: true},
	{name: "mean_neg_axis", src: "input %x: f32[2,3,4,5]\n%y = mean %x {axes=[-1,1]}"},
	{name: "reshape", src: "input %x: f32[3,4,5]\n%r = reshape %x {shape=[5,-1]}\n%y = exp %r", tol: Rounding},
	{name: "flatten", src: "input %x: f32[3,4,5]\n%f = flatten %x\n%y = neg %f"},
	{name: "reshape_output", src: "input %x: f32[3,4,5]\n%e = neg %x\n%y = reshape %e {shape=[60]}"},
	{name: "transpose", src: "input %x: f32[2,3,4]\n%y = transpose %x {perm=[2,0,1]}"},
	{name: "transpose4", src: "input %x: f32[2,3,4,5]\n%y = transpose %x {perm=[0,2,1,3]}"},
	{name: "concat_mid", src: "input %a: f32[2,3,4]\ninput %b: f32[2,1,4]\ninput %c: f32[2,2,4]\n%y = concat %a, %b, %c {axis=1}"},
	{name: "concat_first", src: "input %a: f32[2,3]\ninput %b: f32[4,3]\n%y = concat %a, %b {axis=0}"},
	{name: "slice_view", src: "input %x: f32[6,4]\n%s = slice %x {axis=0, start=2, end=5}\n%y = neg %s"},
	{name: "slice_copy", src: "input %x: f32[3,6,4]\n%y = slice %x {axis=1, start=1, end=4}"},
	{name: "slice_output_view", src: "input %x: f32[6,4]\n%e = neg %x\n%y = slice %e {axis=0, start=1, end=3}"},
	{name: "dim", src: "input %x: f32[N,6]\n%d = dim %x {axis=0, dtype=f32}\n%y = div %x, %d", batch: 7},
	{name: "dim_i64", src: "input %x: f32[3,6]\n%y = dim %x {axis=1, dtype=i64}"},
	{name: "conv", src: "input %x: f32[2,3,7,6]\nparam %w: f32[4,3,3,3]\nparam %b: f32[4]\n%y = conv2d %x, %w, %b", tol: Products},
	{name: "conv_groups", src: "input %x: f32[3,4,9,8]\nparam %w: f32[6,2,3,2]\n%y = conv2d %x, %w {groups=2, stride=[2,1], pad=[1,0,2,1], dilation=[1,2]}", tol: Products},
	{name: "conv_depthwise_bias", src: "input %x: f32[2,4,5,5]\nparam %w: f32[4,1,3,3]\nparam %b: f32[4]\n%y = conv2d %x, %w, %b {groups=4, pad=[1,1]}", tol: Products},
	{name: "maxpool", src: "input %x: f32[2,3,7,7]\n%y = maxpool2d %x {kernel=[3,3], stride=[2,2], pad=[1,1]}", specials: true},
	{name: "avgpool", src: "input %x: f32[2,3,7,6]\n%y = avgpool2d %x {kernel=[2,3], stride=[2,1], pad=[1,1]}"},
	{name: "batchnorm", src: "input %x: f32[4,3,5]\nparam %s: f32[3]\nparam %b: f32[3]\nparam %m: f32[3]\nparam %v: f32[3]\n%y = batchnorm %x, %s, %b, %m, %v"},
	{name: "batchnorm_train", src: "input %x: f32[4,3,5]\nparam %s: f32[3]\nparam %b: f32[3]\nparam %m: f32[3]\nparam %v: f32[3]\n%y = batchnorm %x, %s, %b, %m, %v {training=true, epsilon=0.001}"},
	{name: "batchnorm_last_axis", src: "input %x: f32[4,5,3]\nparam %s: f32[3]\nparam %b: f32[3]\nparam %m: f32[3]\nparam %v: f32[3]\n%y = batchnorm %x, %s, %b, %m, %v {axis=-1, training=true}"},
	{name: "dropout_train", src: "input %x: f32[N,6,3]\n%y = dropout %x {rate=0.3, training=true}", batch: 9},
	{name: "dropout_infer", src: "input %x: f32[N,6]\n%d = dropout %x {rate=0.3}\n%y = neg %d", batch: 4},
	{name: "compare_eq", src: "input %a: f32[4,1,3]\ninput %b: f32[5,3]\n%y = compare %a, %b {cmp=eq}", specials: true},
	{name: "compare_ne", src: "input %a: f32[4,5,3]\ninput %b: f32[5,3]\n%y = compare %a, %b {cmp=ne}", specials: true},
	{name: "compare_lt", src: "input %a: f32[4,5,3]\ninput %b: f32[]\n%y = compare %a, %b {cmp=lt}", specials: true},
	{name: "compare_le", src: "input %a: f32[4,5,3]\ninput %b: f32[4,5,3]\n%y = compare %a, %b {cmp=le}", specials: true},
	{name: "compare_gt", src: "input %a: f32[4,5,3]\ninput %b: f32[1,5,1]\n%y = compare %a, %b {cmp=gt}", specials: true},
	{name: "compare_ge", src: "input %a: f32[6]\ninput %b: f32[6]\n%y = compare %a, %b {cmp=ge}", specials: true},
	{name: "broadcast_like", src: "input %a: f32[3,1]\ninput %x: f32[2,3,4]\n%y = broadcast_like %a, %x"},
	{name: "conv_grad_input", src: "input %dy: f32[3,6,5,7]\nparam %w: f32[6,2,3,2]\n%y = conv2d_grad_input %dy, %w {groups=2, stride=[2,1], pad=[1,0,2,1], dilation=[1,2], size=[9,8]}", tol: Products},
	{name: "conv_grad_input_plain", src: "input %dy: f32[2,4,6,6]\nparam %w: f32[4,3,3,3]\n%y = conv2d_grad_input %dy, %w {pad=[1,1], size=[6,6]}", tol: Products},
	{name: "conv_grad_weight", src: "input %x: f32[3,4,9,8]\ninput %dy: f32[3,6,5,7]\n%y = conv2d_grad_weight %x, %dy {groups=2, stride=[2,1], pad=[1,0,2,1], dilation=[1,2], kernel=[3,2]}", tol: Products},
	{name: "conv_grad_weight_plain", src: "input %x: f32[5,3,6,6]\ninput %dy: f32[5,4,6,6]\n%y = conv2d_grad_weight %x, %dy {pad=[1,1], kernel=[3,3]}", tol: Products},
	{name: "maxpool_grad", src: "input %x: f32[2,3,7,7]\ninput %dy: f32[2,3,4,4]\n%y = maxpool2d_grad %x, %dy {kernel=[3,3], stride=[2,2], pad=[1,1]}", specials: true},
	{name: "maxpool_grad_ties", src: "input %x: f32[2,3,6,6]\ninput %dy: f32[2,3,3,3]\n%r = relu %x\n%y = maxpool2d_grad %r, %dy {kernel=[2,2]}"},
	{name: "avgpool_grad", src: "input %dy: f32[2,3,4,6]\n%y = avgpool2d_grad %dy {kernel=[2,3], stride=[2,1], pad=[1,1], size=[7,6]}"},
	{name: "two_outputs_shared", src: "input %x: f32[3,4]\n%a = neg %x\n%r = reshape %a {shape=[12]}\n%y = exp %a\n%z = reshape %a {shape=[4,3]}", tol: Rounding},
	// ops-index: random integer inputs that reach indices are drawn in range (runtime.IndexRows).
	{name: "gather_embedding", src: "param %t: f32[10,4]\ninput %i: i64[3,5]\n%y = gather %t, %i"},
	{name: "gather_axis1_i32", src: "input %x: f32[2,6,3]\ninput %i: i32[4]\n%y = gather %x, %i {axis=1}", specials: true},
	{name: "gather_scalar_index", src: "input %x: f32[3,5]\ninput %i: i64[]\n%y = gather %x, %i {axis=-1}"},
	{name: "gather_i32_data", src: "input %x: i32[5,3]\ninput %i: i64[2,2]\n%y = gather %x, %i"},
	{name: "gather_bool_data", src: "input %x: bool[4,3]\ninput %i: i32[5]\n%y = gather %x, %i"},
	{name: "gather_grad", src: "input %i: i64[3,5]\ninput %d: f32[3,5,4]\n%y = gather_grad %i, %d {rows=6}"},
	{name: "gather_grad_axis1", src: "input %i: i32[4]\ninput %d: f32[2,4,3]\n%y = gather_grad %i, %d {axis=1, rows=3}", specials: true},
	{name: "expand", src: "input %x: f32[3,1]\n%y = expand %x {shape=[2,3,4]}"},
	{name: "expand_i64", src: "input %x: i64[1,4]\n%y = expand %x {shape=[3,4]}"},
	{name: "argmax", src: "input %x: f32[3,4,5]\n%y = argmax %x {axis=1}", specials: true},
	{name: "argmin_keep", src: "input %x: f32[3,4,5]\n%y = argmin %x {axis=-1, keepdims=true}", specials: true},
	{name: "argmax_i32", src: "input %x: i32[4,6]\n%y = argmax %x {axis=0}"},
	{name: "argmin_i64", src: "input %x: i64[5,3]\n%y = argmin %x {axis=0}"},
	// ops-elementwise: pow, erf, where, comparisons, logic, cast.
	{name: "pow", src: "input %a: f32[4,1,3]\ninput %b: f32[5,3]\n%e = exp %a\n%y = pow %e, %b", tol: Rounding, specials: true},
	{name: "pow_negative_base", src: "input %a: f32[4,5]\nconst %k: f32[] = 2.0\n%y = pow %a, %k", tol: Rounding, specials: true},
	{name: "erf", src: "input %x: f32[5,6]\nconst %k: f32[] = 3.0\n%s = mul %x, %k\n%y = erf %s", tol: Rounding, specials: true},
	{name: "where", src: "input %c: bool[4,1,3]\ninput %a: f32[5,3]\ninput %b: f32[]\n%y = where %c, %a, %b", specials: true},
	{name: "where_i64", src: "input %c: bool[3]\ninput %a: i64[2,3]\ninput %b: i64[2,1]\n%y = where %c, %a, %b"},
	{name: "where_i32_bool", src: "input %c: bool[2,3]\ninput %a: i32[2,3]\ninput %b: i32[3]\ninput %p: bool[2,1]\ninput %q: bool[3]\n%y = where %c, %a, %b\n%z = where %c, %p, %q"},
	{name: "equal", src: "input %a: f32[4,5,3]\ninput %b: f32[4,5,3]\n%y = equal %a, %b", specials: true},
	{name: "less", src: "input %a: f32[4,1,3]\ninput %b: f32[5,3]\n%y = less %a, %b", specials: true},
	{name: "greater_scalar", src: "input %a: f32[4,5]\ninput %b: f32[]\n%y = greater %a, %b", specials: true},
	{name: "less_equal_i32", src: "input %a: i32[4,5]\ninput %b: i32[5]\n%y = less_equal %a, %b"},
	{name: "greater_equal_i64", src: "input %a: i64[4,1]\ninput %b: i64[5]\n%y = greater_equal %a, %b"},
	{name: "equal_bool_i64", src: "input %a: bool[4,5]\ninput %b: bool[5]\ninput %p: i64[4,5]\ninput %q: i64[4,1]\n%y = equal %a, %b\n%z = equal %p, %q"},
	{name: "logic", src: "input %a: bool[4,5]\ninput %b: bool[5]\n%n = not %a\n%o = or %n, %b\n%x = xor %o, %a\n%y = and %x, %b"},
	{name: "cast_f32", src: "input %x: f32[4,6]\nconst %k: f32[] = 3e9\n%s = mul %x, %k\n%y = cast %s {to=i32}\n%z = cast %s {to=bool}\n%r = cast %x {to=i64}", specials: true},
	{name: "cast_wide", src: "input %x: f32[4,6]\nconst %k: f32[] = 1e19\n%s = mul %x, %k\n%y = cast %s {to=i64}\n%z = cast %s {to=f64}\n%r = cast %z {to=f32}", specials: true},
	{name: "cast_ints", src: "input %x: i64[4,6]\ninput %b: bool[5]\n%y = cast %x {to=i32}\n%z = cast %x {to=f32}\n%w = cast %b {to=f32}\n%r = cast %w {to=i64}"},
	{name: "cast_same", src: "input %x: f32[4,6]\n%c = cast %x {to=f32}\n%y = neg %c"},
}

// graphOf wraps a case's statements in a graph whose outputs are %y (and
// %z, %r when defined).
func graphOf(t *testing.T, c opCase, dt graph.DType) *graph.Graph {
	t.Helper()
	body := strings.ReplaceAll(c.src, "f32", dt.String())
	outs := []string{"%y"}
	for _, o := range []string{"%z", "%r"} {
		if strings.Contains(body, o+" =") {
			outs = append(outs, o)
		}
	}
	src := fmt.Sprintf("graph %s {\n%s\noutput %s\n}\n", c.name, body, strings.Join(outs, ", "))
	g, err := graph.Parse(c.name+".graph", []byte(src))
	if err != nil {
		t.Fatalf("%v\n%s", err, src)
	}
	return g
}

// sprinkle puts NaN, ±Inf and ±0 among the elements of every float input.
func sprinkle(inputs map[string]*tensor.Dense) {
	specials := []float64{math.NaN(), math.Inf(1), math.Inf(-1), math.Copysign(0, -1), 0}
	for _, t := range inputs {
		switch d := host.Data(t).(type) {
		case []float32:
			for i := 0; i < len(d) && i < len(specials); i++ {
				d[i*3%len(d)] = float32(specials[i])
			}
		case []float64:
			for i := 0; i < len(d) && i < len(specials); i++ {
				d[i*3%len(d)] = specials[i]
			}
		}
	}
}

// missingOp returns the first op src applies that the op table lacks.
func missingOp(src string) string {
	for _, line := range strings.Split(src, "\n") {
		if _, rhs, ok := strings.Cut(line, " = "); ok && strings.HasPrefix(line, "%") {
			op, _, _ := strings.Cut(rhs, " ")
			if graph.LookupOp(op) == nil {
				return op
			}
		}
	}
	return ""
}

// Execute runs g on inputs with the given params on devices (nil: the CPU
// backend for every device), with dropout seed 11.
func Execute(t testing.TB, g *graph.Graph, devices Devices, params, inputs map[string]*tensor.Dense) map[string]*tensor.Dense {
	t.Helper()
	e, err := runtime.New(g, runtime.Options{Seed: 11, Devices: devices})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.SetParams(params); err != nil {
		t.Fatal(err)
	}
	out, err := e.Run(context.Background(), inputs)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Ops runs every op case, unplaced (its one program on device cpu), on the
// CPU backend and on the devices newDevices returns for the case (which
// must serve cpu with a GPU device), in f32 and f64, and compares.
func Ops(t *testing.T, newDevices func(t *testing.T) Devices) {
	for _, c := range opCases {
		for _, dt := range []graph.DType{graph.F32, graph.F64} {
			t.Run(c.name+"_"+dt.String(), func(t *testing.T) {
				if op := missingOp(c.src); op != "" {
					t.Skipf("op %s is not in the op table", op)
				}
				g := graphOf(t, c, dt)
				params := runtime.RandomParams(g, 1)
				inputs, err := runtime.RandomInputs(g, c.batch, 2)
				if err != nil {
					t.Fatal(err)
				}
				if c.specials {
					sprinkle(inputs)
				}
				want := Execute(t, g, nil, params, inputs)
				got := Execute(t, g, newDevices(t), params, inputs)
				for name, w := range want {
					if err := Compare(w, got[name], c.tol); err != nil {
						t.Errorf("%%%s: %v", name, err)
					}
				}
			})
		}
	}
}

// Layout is one placement of a model's replicas on devices.
type Layout struct {
	Name string
	// Options configure the replicate pass (BatchNorm is set to sync).
	Options replicate.Options
	// Devices returns the devices of one model's runs.
	Devices func(t *testing.T) Devices
}

// EachModel runs fn as a subtest, named for the model, on every model of
// dir (*.graph), parsed; models placed already are skipped.
func EachModel(t *testing.T, dir string, fn func(t *testing.T, g *graph.Graph)) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.graph"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no models in %s: %v", dir, err)
	}
	for _, path := range paths {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".graph"), func(t *testing.T) {
			src, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			g, err := graph.Parse(path, src)
			if err != nil {
				t.Fatal(err)
			}
			if len(g.Devices()) > 0 {
				t.Skip("already placed")
			}
			fn(t, g)
		})
	}
}

// Models runs every model of dir (EachModel) rewritten by every layout on
// its devices, at the given batch sizes (a model with a bound batch at
// that batch only), and compares the outputs with the original model's on
// the CPU backend within the Model tolerance.
func Models(t *testing.T, dir string, layouts []Layout, batches []int64) {
	EachModel(t, dir, func(t *testing.T, g *graph.Graph) {
		var err error
		params := runtime.RandomParams(g, 1)
		bs := batches
		if _, bound := g.Batch(); bound > 0 {
			bs = []int64{bound}
		}
		want := map[int64]map[string]*tensor.Dense{}
		inputs := map[int64]map[string]*tensor.Dense{}
		for _, b := range bs {
			if inputs[b], err = runtime.RandomInputs(g, b, uint64(b)); err != nil {
				t.Fatal(err)
			}
			want[b] = Execute(t, g, nil, params, inputs[b])
		}
		for _, l := range layouts {
			opts := l.Options
			opts.BatchNorm = replicate.BatchNormSync
			rg, _, err := replicate.Rewrite(g, opts)
			if err != nil {
				t.Fatalf("%s: %v", l.Name, err)
			}
			e, err := runtime.New(rg, runtime.Options{Seed: 11, Devices: l.Devices(t)})
			if err != nil {
				t.Fatal(err)
			}
			if err := e.SetParams(params); err != nil {
				t.Fatal(err)
			}
			for _, b := range bs {
				got, err := e.Run(context.Background(), inputs[b])
				if err != nil {
					t.Fatalf("%s batch=%d: %v", l.Name, b, err)
				}
				for _, o := range g.Outputs {
					if err := Compare(want[b][o.Name], got[o.Name], Model); err != nil {
						t.Errorf("%s batch=%d: output %%%s: %v", l.Name, b, o.Name, err)
					}
				}
			}
		}
	})
}

// GPUs returns the indices 0 to n-1, for replicate.Options.GPUs.
func GPUs(n int) []int {
	ids := make([]int, n)
	for i := range ids {
		ids[i] = i
	}
	return ids
}

// Compare checks got against want within tol; NaN must meet NaN.
func Compare(want, got *tensor.Dense, tol Tolerance) error {
	if got == nil {
		return fmt.Errorf("missing")
	}
	if fmt.Sprint(want.Shape()) != fmt.Sprint(got.Shape()) || want.Dtype() != got.Dtype() {
		return fmt.Errorf("%v %v, want %v %v", got.Dtype(), got.Shape(), want.Dtype(), want.Shape())
	}
	var w, g []float64
	rel, abs := 0.0, 0.0
	switch wd := host.Data(want).(type) {
	case []float32:
		gd := host.Data(got).([]float32)
		for i := range wd {
			w, g = append(w, float64(wd[i])), append(g, float64(gd[i]))
		}
		rel, abs = map[Tolerance]float64{Bits: 0, Rounding: 2e-7, Products: 1e-5, TF32: 1e-2}[tol], map[Tolerance]float64{Products: 1e-7}[tol]
		if tol == TF32 {
			for _, v := range w {
				if !math.IsNaN(v) && !math.IsInf(v, 0) {
					abs = max(abs, 2e-3*math.Abs(v))
				}
			}
		}
		if tol == Model {
			rel, abs = 1e-4, 1e-5*maxAbs(w)
		}
	case []float64:
		w, g = wd, host.Data(got).([]float64)
		if tol == Model {
			rel, abs = 1e-10, 1e-12*maxAbs(w)
			break
		}
		rel, abs = map[Tolerance]float64{Bits: 0, Rounding: 1e-15, Products: 1e-12, TF32: 1e-12}[tol], map[Tolerance]float64{Products: 1e-15, TF32: 1e-15}[tol]
	case []int64, []int32, []bool:
		if fmt.Sprint(wd) != fmt.Sprint(host.Data(got)) {
			return fmt.Errorf("%v, want %v", host.Data(got), wd)
		}
		return nil
	default:
		return fmt.Errorf("cannot compare %T", wd)
	}
	for i := range w {
		a, b := w[i], g[i]
		switch {
		case math.IsNaN(a) || math.IsNaN(b):
			if math.IsNaN(a) != math.IsNaN(b) {
				return fmt.Errorf("element %d: %v, want %v", i, b, a)
			}
		case tol == Bits:
			if math.Float64bits(a) != math.Float64bits(b) {
				return fmt.Errorf("element %d: %v, want %v bit for bit", i, b, a)
			}
		case a != b && math.Abs(a-b) > abs+rel*math.Abs(a):
			return fmt.Errorf("element %d: %v, want %v (difference %.3g)", i, b, a, math.Abs(a-b))
		}
	}
	return nil
}

// maxAbs returns the largest finite magnitude in v (0 when none is).
func maxAbs(v []float64) float64 {
	m := 0.0
	for _, x := range v {
		if !math.IsNaN(x) && !math.IsInf(x, 0) {
			m = max(m, math.Abs(x))
		}
	}
	return m
}
