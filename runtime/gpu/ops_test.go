//go:build cgo

package gpu

import (
	"context"
	"flag"
	"fmt"
	"math"
	"strings"
	"testing"

	"gorgonia.org/tensor"

	"multigpu/graph"
	"multigpu/runtime"
	"multigpu/runtime/backend"
	"multigpu/runtime/cpu"
	"multigpu/runtime/host"
)

var _ = flag.Bool("update", false, "rewrite golden files (none in this package)")

// tolerance says how closely the GPU backend must match the CPU backend.
type tolerance int

const (
	// bits: the same operations in the same order give the same bits.
	bits tolerance = iota
	// rounding: exp, log and tanh are evaluated by another library
	// (within an ulp of each other in double), then rounded once.
	rounding
	// products: sums of products in another order (gemm).
	products
)

type opCase struct {
	name     string
	src      string // a graph in f32; f64 runs with every f32 replaced
	tol      tolerance
	batch    int64
	specials bool // feed NaN, ±Inf and ±0 among the inputs
}

var opCases = []opCase{
	{name: "add_broadcast", src: "input %a: f32[3,1,5]\ninput %b: f32[4,5]\n%y = add %a, %b", specials: true},
	{name: "sub_scalar", src: "input %a: f32[]\ninput %b: f32[2,3]\n%y = sub %a, %b"},
	{name: "mul_same", src: "input %a: f32[2,3,4]\ninput %b: f32[2,3,4]\n%y = mul %a, %b", specials: true},
	{name: "div_rows", src: "input %a: f32[6,7]\ninput %b: f32[6,1]\n%y = div %a, %b", specials: true},
	{name: "maximum", src: "input %a: f32[4,1,3]\ninput %b: f32[1,5,3]\n%y = maximum %a, %b", specials: true},
	{name: "minimum", src: "input %a: f32[4,5,3]\ninput %b: f32[3]\n%y = minimum %a, %b", specials: true},
	{name: "neg", src: "input %x: f32[5,6]\n%y = neg %x", specials: true},
	{name: "abs", src: "input %x: f32[5,6]\n%y = abs %x", specials: true},
	{name: "exp", src: "input %x: f32[5,6]\n%y = exp %x", tol: rounding, specials: true},
	{name: "log", src: "input %x: f32[5,6]\n%y = log %x", tol: rounding, specials: true},
	{name: "sqrt", src: "input %x: f32[5,6]\n%y = sqrt %x", specials: true},
	{name: "relu", src: "input %x: f32[5,6]\n%y = relu %x", specials: true},
	{name: "sigmoid", src: "input %x: f32[5,6]\n%y = sigmoid %x", tol: rounding, specials: true},
	{name: "tanh", src: "input %x: f32[5,6]\n%y = tanh %x", tol: rounding, specials: true},
	{name: "leaky_relu", src: "input %x: f32[5,6]\n%y = leaky_relu %x {alpha=0.2}", specials: true},
	{name: "matmul", src: "input %a: f32[5,7]\nparam %b: f32[7,3]\n%y = matmul %a, %b", tol: products},
	{name: "matmul_fold", src: "input %a: f32[2,3,4,5]\nparam %b: f32[5,6]\n%y = matmul %a, %b", tol: products},
	{name: "matmul_batched", src: "input %a: f32[2,4,5]\ninput %b: f32[2,5,3]\n%y = matmul %a, %b", tol: products},
	{name: "softmax_last", src: "input %x: f32[3,4,5]\n%y = softmax %x", tol: rounding, specials: true},
	{name: "softmax_mid", src: "input %x: f32[3,4,5]\n%y = softmax %x {axis=1}", tol: rounding},
	{name: "log_softmax_first", src: "input %x: f32[3,4,5]\n%y = log_softmax %x {axis=0}", tol: rounding},
	{name: "sum_all", src: "input %x: f32[3,4,5]\n%y = sum %x"},
	{name: "sum_mid_keep", src: "input %x: f32[3,4,5]\n%y = sum %x {axes=[1], keepdims=true}"},
	{name: "mean_outer", src: "input %x: f32[3,4,5]\n%y = mean %x {axes=[0,2]}"},
	{name: "max_last", src: "input %x: f32[3,4,5]\n%y = max %x {axes=[2]}", specials: true},
	{name: "min_first_keep", src: "input %x: f32[3,4,5]\n%y = min %x {axes=[0], keepdims=true}", specials: true},
	{name: "mean_neg_axis", src: "input %x: f32[2,3,4,5]\n%y = mean %x {axes=[-1,1]}"},
	{name: "reshape", src: "input %x: f32[3,4,5]\n%r = reshape %x {shape=[5,-1]}\n%y = exp %r", tol: rounding},
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
	{name: "conv", src: "input %x: f32[2,3,7,6]\nparam %w: f32[4,3,3,3]\nparam %b: f32[4]\n%y = conv2d %x, %w, %b", tol: products},
	{name: "conv_groups", src: "input %x: f32[3,4,9,8]\nparam %w: f32[6,2,3,2]\n%y = conv2d %x, %w {groups=2, stride=[2,1], pad=[1,0,2,1], dilation=[1,2]}", tol: products},
	{name: "conv_depthwise_bias", src: "input %x: f32[2,4,5,5]\nparam %w: f32[4,1,3,3]\nparam %b: f32[4]\n%y = conv2d %x, %w, %b {groups=4, pad=[1,1]}", tol: products},
	{name: "maxpool", src: "input %x: f32[2,3,7,7]\n%y = maxpool2d %x {kernel=[3,3], stride=[2,2], pad=[1,1]}", specials: true},
	{name: "avgpool", src: "input %x: f32[2,3,7,6]\n%y = avgpool2d %x {kernel=[2,3], stride=[2,1], pad=[1,1]}"},
	{name: "batchnorm", src: "input %x: f32[4,3,5]\nparam %s: f32[3]\nparam %b: f32[3]\nparam %m: f32[3]\nparam %v: f32[3]\n%y = batchnorm %x, %s, %b, %m, %v"},
	{name: "batchnorm_train", src: "input %x: f32[4,3,5]\nparam %s: f32[3]\nparam %b: f32[3]\nparam %m: f32[3]\nparam %v: f32[3]\n%y = batchnorm %x, %s, %b, %m, %v {training=true, epsilon=0.001}"},
	{name: "batchnorm_last_axis", src: "input %x: f32[4,5,3]\nparam %s: f32[3]\nparam %b: f32[3]\nparam %m: f32[3]\nparam %v: f32[3]\n%y = batchnorm %x, %s, %b, %m, %v {axis=-1, training=true}"},
	{name: "dropout_train", src: "input %x: f32[N,6,3]\n%y = dropout %x {rate=0.3, training=true}", batch: 9},
	{name: "dropout_infer", src: "input %x: f32[N,6]\n%d = dropout %x {rate=0.3}\n%y = neg %d", batch: 4},
	{name: "two_outputs_shared", src: "input %x: f32[3,4]\n%a = neg %x\n%r = reshape %a {shape=[12]}\n%y = exp %a\n%z = reshape %a {shape=[4,3]}", tol: rounding},
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

// sprinkle puts NaN, ±Inf and ±0 at the start of every float input.
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

// hostDevices serves gpu:K from a logical device on
// drivers[K % len(drivers)], and cpu from the host backend, or, when
// cpuOnGPU is set (unplaced graphs), from a logical device on drivers[0].
type hostDevices struct {
	t        testing.TB
	drivers  []*hostDriver
	cpuOnGPU bool
	devs     map[graph.Device]*Device
}

func newHostDevices(t testing.TB, drivers ...*hostDriver) *hostDevices {
	hd := &hostDevices{t: t, drivers: drivers, devs: map[graph.Device]*Device{}}
	t.Cleanup(hd.close)
	return hd
}

func (hd *hostDevices) device(d graph.Device) (backend.Device, error) {
	if dev := hd.devs[d]; dev != nil {
		return dev, nil
	}
	if d.Kind == graph.CPU && !hd.cpuOnGPU {
		return cpu.New(d), nil
	}
	dev, err := NewDevice(d, hd.drivers[d.Index%len(hd.drivers)])
	if err != nil {
		return nil, err
	}
	hd.devs[d] = dev
	return dev, nil
}

func (hd *hostDevices) close() {
	for _, d := range hd.devs {
		if err := d.Close(); err != nil {
			hd.t.Errorf("closing %s: %v", d, err)
		}
	}
}

func execute(t *testing.T, g *graph.Graph, devices func(graph.Device) (backend.Device, error), params, inputs map[string]*tensor.Dense) map[string]*tensor.Dense {
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

// TestOps runs every case on the CPU backend and on the GPU backend over
// the host emulation, in f32 and f64, and compares.
func TestOps(t *testing.T) {
	for _, c := range opCases {
		for _, dt := range []graph.DType{graph.F32, graph.F64} {
			t.Run(c.name+"_"+dt.String(), func(t *testing.T) {
				g := graphOf(t, c, dt)
				params := runtime.RandomParams(g, 1)
				inputs, err := runtime.RandomInputs(g, c.batch, 2)
				if err != nil {
					t.Fatal(err)
				}
				if c.specials {
					sprinkle(inputs)
				}
				want := execute(t, g, nil, params, inputs)
				hd := newHostDevices(t, newHostDriver("host GPU 0"))
				hd.cpuOnGPU = true
				got := execute(t, g, hd.device, params, inputs)
				for name, w := range want {
					if err := compare(w, got[name], c.tol); err != nil {
						t.Errorf("%%%s: %v", name, err)
					}
				}
			})
		}
	}
}

// compare checks got against want within tol; NaN must meet NaN.
func compare(want, got *tensor.Dense, tol tolerance) error {
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
		rel, abs = map[tolerance]float64{bits: 0, rounding: 2e-7, products: 1e-5}[tol], map[tolerance]float64{products: 1e-7}[tol]
	case []float64:
		w, g = wd, host.Data(got).([]float64)
		rel, abs = map[tolerance]float64{bits: 0, rounding: 1e-15, products: 1e-12}[tol], map[tolerance]float64{products: 1e-15}[tol]
	case []int64:
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
		case tol == bits:
			if math.Float64bits(a) != math.Float64bits(b) {
				return fmt.Errorf("element %d: %v, want %v bit for bit", i, b, a)
			}
		case a != b && math.Abs(a-b) > abs+rel*math.Abs(a):
			return fmt.Errorf("element %d: %v, want %v (difference %.3g)", i, b, a, math.Abs(a-b))
		}
	}
	return nil
}
