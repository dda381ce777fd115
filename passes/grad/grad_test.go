package grad_test

import (
	"context"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"gorgonia.org/tensor"

	"multigpu/graph"
	"multigpu/passes/grad"
	"multigpu/passes/replicate"
	"multigpu/runtime"
	"multigpu/runtime/host"
)

var _ = flag.Bool("update", false, "no golden files here; declared so that go test ./... -update runs")

// gradCase is a graph whose output %y is reduced to a loss,
// sum(y * r) with r a random input of y's shape, and differentiated with
// respect to its params.
type gradCase struct {
	name string
	body string // leaves and nodes defining %y, in f64
	// positive params are drawn in [0.5, 1.5), the others in [-1, 1).
	positive []string
	batch    int64
}

var gradCases = []gradCase{
	{name: "add_broadcast", body: `input %x: f64[N,3,4]
  param %a: f64[3,1]
  param %b: f64[4]
  %s = add %x, %a
  %y = add %s, %b`},
	{name: "sub_mul_div", body: `input %x: f64[N,3]
  param %a: f64[3]
  param %b: f64[3]
  param %c: f64[]
  %xb = add %x, %b
  %s = sub %a, %xb
  %m = mul %s, %xb
  %y = div %m, %c`, positive: []string{"c"}},
	{name: "div_both", body: `input %x: f64[N,3]
  param %a: f64[3]
  %xa = add %x, %a
  %den = exp %xa
  %y = div %xa, %den`},
	{name: "div_denominator", body: `input %x: f64[N,3]
  param %a: f64[1,3]
  %y = div %x, %a`, positive: []string{"a"}},
	{name: "maximum_minimum", body: `input %x: f64[N,4]
  param %a: f64[4]
  input %z: f64[N,4]
  param %b: f64[4]
  %hi = maximum %x, %a
  %zb = mul %z, %b
  %y = minimum %hi, %zb`},
	{name: "unary", body: `input %x: f64[N,5]
  param %a: f64[5]
  param %p: f64[5]
  %s = add %x, %a
  %e = exp %s
  %n = neg %e
  %ab = abs %s
  %t = tanh %ab
  %sg = sigmoid %n
  %r = relu %s
  %lr = leaky_relu %s {alpha=0.2}
  %l = log %p
  %q = sqrt %p
  %u1 = add %t, %sg
  %u2 = add %r, %lr
  %u3 = add %l, %q
  %u4 = add %u1, %u2
  %y = add %u4, %u3`, positive: []string{"p"}},
	{name: "matmul", body: `input %x: f64[N,4]
  param %w: f64[4,3]
  param %v: f64[3,2]
  %h = matmul %x, %w
  %y = matmul %h, %v`},
	{name: "matmul_rank3", body: `input %x: f64[N,3,4]
  param %w: f64[4,2]
  input %z: f64[N,2,5]
  param %c: f64[2,5]
  %zc = mul %z, %c
  %h = matmul %x, %w : f64[N,3,2]
  %y = matmul %h, %zc`},
	{name: "matmul_batch_contracted", body: `input %x: f64[6,N]
  param %w: f64[3,6]
  %y = matmul %w, %x`},
	{name: "softmax", body: `input %x: f64[N,5]
  param %w: f64[5,4]
  %z = matmul %x, %w
  %s = softmax %z {axis=1}
  %l = log_softmax %z {axis=-1}
  %c = softmax %z {axis=0}
  %sl = add %s, %l
  %y = add %sl, %c`},
	{name: "reductions", body: `input %x: f64[N,3,4]
  param %a: f64[3,4]
  %s = mul %x, %a
  %s1 = sum %s {axes=[1]} : f64[N,4]
  %m1 = mean %s {axes=[0,2], keepdims=true} : f64[1,3,1]
  %mx = max %s {axes=[2]} : f64[N,3]
  %mn = min %s {axes=[0]} : f64[3,4]
  %all = mean %s : f64[]
  %t1 = sum %s1 {axes=[1]} : f64[N]
  %t2 = sum %mx {axes=[1]} : f64[N]
  %t3 = sum %mn : f64[]
  %t4 = sum %m1 : f64[]
  %u = add %t1, %t2
  %v = add %t3, %t4
  %w = add %v, %all
  %y = add %u, %w`},
	{name: "shapes", body: `input %x: f64[N,2,3]
  param %a: f64[2,3]
  input %z: f64[N,2]
  param %k: f64[2]
  %b = mul %z, %k
  %s = mul %x, %a
  %r = reshape %s {shape=[N,6]}
  %t = transpose %s {perm=[2,0,1]} : f64[3,N,2]
  %t2 = transpose %t {perm=[1,2,0]} : f64[N,2,3]
  %f = flatten %t2 : f64[N,6]
  %c = concat %r, %f, %b {axis=1} : f64[N,14]
  %sl = slice %c {axis=1, start=3, end=11}
  %cp = copy %sl
  %n = dim %x {axis=0, dtype=f64}
  %y = div %cp, %n`},
	{name: "conv", body: `input %x: f64[N,4,7,6]
  param %w: f64[6,2,3,2]
  param %b: f64[6]
  param %w2: f64[3,6,2,2]
  %c = conv2d %x, %w, %b {stride=[2,1], pad=[1,0,1,1], dilation=[1,2], groups=2} : f64[N,6,4,5]
  %y = conv2d %c, %w2 {pad=[1,1]}`},
	{name: "pools", body: `input %x: f64[N,2,7,6]
  param %a: f64[2,7,6]
  %s = mul %x, %a
  %m = maxpool2d %s {kernel=[3,3], stride=[2,2], pad=[1,1]} : f64[N,2,4,3]
  %v = avgpool2d %m {kernel=[2,2], stride=[1,1], pad=[1,0]}
  %y = flatten %v`},
	{name: "batchnorm", body: `input %x: f64[N,3,2,2]
  param %s: f64[3]
  param %b: f64[3]
  param %m: f64[3]
  param %v: f64[3]
  param %w: f64[12,5]
  param %s2: f64[5]
  param %b2: f64[5]
  param %m2: f64[5]
  param %v2: f64[5]
  %n = batchnorm %x, %s, %b, %m, %v {training=true}
  %r = relu %n
  %f = flatten %r
  %h = matmul %f, %w
  %y = batchnorm %h, %s2, %b2, %m2, %v2 {axis=-1, epsilon=0.001}`, positive: []string{"v", "v2"}},
	{name: "batchnorm_dense_train", body: `input %x: f64[N,4]
  param %w: f64[4,3]
  param %s: f64[3]
  param %b: f64[3]
  param %m: f64[3]
  param %v: f64[3]
  %h = matmul %x, %w
  %y = batchnorm %h, %s, %b, %m, %v {axis=1, training=true}`},
	{name: "dropout", body: `input %x: f64[N,6]
  param %w: f64[6,6]
  %h = matmul %x, %w
  %d = dropout %h {rate=0.4, training=true}
  %e = dropout %d {rate=0.3}
  %y = tanh %e`},
	{name: "broadcast_like", body: `input %x: f64[N,3]
  param %a: f64[3]
  %y = broadcast_like %a, %x`},
	{name: "pow_erf_where_cast", body: `input %x: f64[N,3]
  const %zero: f64[] = 0.0
  param %a: f64[3]
  param %p: f64[3]
  param %q: f64[]
  param %b: f64[3]
  param %w: f64[1,3]
  %s = add %x, %a
  %pw = pow %p, %s
  %pq = pow %pw, %q
  %er = erf %s
  %m = greater %x, %zero
  %wh = where %m, %er, %w
  %n = not %m
  %wn = where %n, %pq, %b
  %lt = less %a, %b
  %wl = where %lt, %s, %pw
  %c = cast %wh {to=f64}
  %u = add %c, %wn
  %y = add %u, %wl`, positive: []string{"p", "q"}},
	// An embedding table indexed by batch-carrying ids (gather_grad sums
	// over the batch: per-replica partials when replicated), and rows
	// picked by argmax.
	{name: "gather_embedding", body: `input %ids: i64[N,3]
  input %x: f64[N,5]
  param %table: f64[7,4]
  param %w: f64[5,4]
  %e = gather %table, %ids
  %t = tanh %e
  %am = argmax %x {axis=1, keepdims=true}
  %pick = gather %w, %am
  %y = add %t, %pick`},
	// gather of batch-carrying data at batch-free indices, on the last
	// axis, and expand of a param and of a batch-carrying value.
	{name: "gather_expand", body: `input %x: f64[N,1,5]
  param %p: f64[3,5]
  param %v: f64[4]
  param %s: f64[]
  const %j: i32[4] = [4, -1, 0, 2]
  %xp = mul %x, %p
  %g = gather %xp, %j {axis=2}
  %ev = expand %v {shape=[3,1]}
  %xs = mul %x, %s
  %xe = expand %xs {shape=[N,3,1]}
  %h = gather %xe, %j {axis=-1}
  %a = add %g, %ev
  %y = add %a, %h`},
}

// withLoss parses the case and appends the loss sum(y * r).
func withLoss(t *testing.T, c gradCase) *graph.Graph {
	t.Helper()
	src := "graph " + c.name + " {\n  " + c.body + "\n  output %y\n}\n"
	g, err := graph.Parse(c.name+".graph", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	y := g.Outputs[0]
	r, err := g.Input("loss_weights", y.Type)
	if err != nil {
		t.Fatal(err)
	}
	yr, err := g.Apply("yr", "mul", []*graph.Node{y, r}, nil)
	if err != nil {
		t.Fatal(err)
	}
	l, err := g.Apply("loss", "sum", []*graph.Node{yr}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.SetOutputs(y, l); err != nil {
		t.Fatal(err)
	}
	if err := graph.Verify(g); err != nil {
		t.Fatal(err)
	}
	return g
}

func randomTensor(r *rand.Rand, t graph.Type, batch int64, lo, hi float64) *tensor.Dense {
	shape := make([]int, t.Rank())
	for i, d := range t.Shape {
		v, ok := d.Value()
		if !ok {
			v = batch
		}
		shape[i] = int(v)
	}
	data := make([]float64, max(1, host.Elems(host.Zeros(graph.F64, shape))))
	for i := range data {
		data[i] = lo + (hi-lo)*r.Float64()
	}
	return host.New(shape, data)
}

// randomIndices returns i64 indices uniform in [-rows, rows): negative
// ones count from the end.
func randomIndices(r *rand.Rand, t graph.Type, batch, rows int64) *tensor.Dense {
	shape := make([]int, t.Rank())
	for i, d := range t.Shape {
		v, ok := d.Value()
		if !ok {
			v = batch
		}
		shape[i] = int(v)
	}
	data := make([]int64, max(1, host.Elems(host.Zeros(graph.I64, shape))))
	for i := range data {
		data[i] = r.Int64N(2*rows) - rows
	}
	return host.New(shape, data)
}

func executor(t *testing.T, g *graph.Graph) *runtime.Executor {
	t.Helper()
	e, err := runtime.New(g, runtime.Options{Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func runWith(t *testing.T, e *runtime.Executor, params, in map[string]*tensor.Dense) map[string]*tensor.Dense {
	t.Helper()
	if err := e.SetParams(params); err != nil {
		t.Fatal(err)
	}
	out, err := e.Run(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func data(t *tensor.Dense) []float64 { return host.Data(t).([]float64) }

// TestGradientsMatchFiniteDifferences checks, in f64, the gradient of
// every op that has one against central differences of the loss, and
// the gradients of the training graph rewritten for 2 and 3 replicas
// against one device's.
func TestGradientsMatchFiniteDifferences(t *testing.T) {
	covered := map[string]bool{}
	for _, c := range gradCases {
		t.Run(c.name, func(t *testing.T) {
			g := withLoss(t, c)
			for _, n := range g.Nodes {
				covered[n.Op] = true
			}
			tr, err := grad.Build(g, grad.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if tr.Loss != "loss" || tr.Graph.Outputs[0].Name != "loss" {
				t.Fatalf("loss %q, outputs %v", tr.Loss, tr.Graph.Outputs)
			}
			r := rand.New(rand.NewPCG(7, uint64(len(c.name))))
			batch := c.batch
			if batch == 0 {
				batch = 3
			}
			if _, bound := g.Batch(); bound > 0 {
				batch = bound
			}
			params := map[string]*tensor.Dense{}
			for _, p := range g.Params() {
				lo, hi := -1.0, 1.0
				for _, name := range c.positive {
					if name == p.Name {
						lo, hi = 0.5, 1.5
					}
				}
				params[p.Name] = randomTensor(r, p.Type, batch, lo, hi)
			}
			in := map[string]*tensor.Dense{}
			rows := runtime.IndexRows(g, batch)
			for _, x := range g.Inputs() {
				if n, ok := rows[x.Name]; ok {
					in[x.Name] = randomIndices(r, x.Type, batch, n)
					continue
				}
				in[x.Name] = randomTensor(r, x.Type, batch, -1, 1)
			}
			grads := runWith(t, executor(t, tr.Graph), params, in)
			fwd := executor(t, g)
			loss := func() float64 { return data(runWith(t, fwd, params, in)["loss"])[0] }
			const h = 1e-5
			for _, o := range tr.Grads {
				gd := data(grads[o.Output])
				orig := params[o.Param]
				p := append([]float64(nil), data(orig)...)
				at := func(i int, v float64) float64 {
					q := append([]float64(nil), p...)
					q[i] = v
					params[o.Param] = host.New(host.Shape(orig), q)
					defer func() { params[o.Param] = orig }()
					return loss()
				}
				for i := range p {
					up, down := at(i, p[i]+h), at(i, p[i]-h)
					fd := (up - down) / (2 * h)
					if math.Abs(fd-gd[i]) > 1e-6*max(1, math.Abs(fd)) {
						t.Errorf("d loss / d %%%s[%d] = %.10g, finite difference %.10g", o.Param, i, gd[i], fd)
					}
				}
			}
			// Replicated, the gradients are one device's, up to the order
			// of sums over the batch.
			if sym, _ := tr.Graph.Batch(); sym == "" {
				return
			}
			for _, n := range []int{2, 3} {
				rg, _, err := replicate.Rewrite(tr.Graph, replicate.Options{GPUs: []int{0, 1, 2}[:n]})
				if err != nil {
					t.Fatalf("replicate N=%d: %v", n, err)
				}
				got := runWith(t, executor(t, rg), params, in)
				for name, w := range grads {
					wd, gd := data(w), data(got[name])
					for i := range wd {
						if math.Abs(wd[i]-gd[i]) > 1e-12*(1+math.Abs(wd[i])) {
							t.Errorf("N=%d: %s[%d] = %v, one device %v", n, name, i, gd[i], wd[i])
						}
					}
				}
			}
		})
	}
	for _, op := range graph.OpNames() {
		switch op {
		case "compare", "conv2d_grad_input", "conv2d_grad_weight", "maxpool2d_grad", "avgpool2d_grad",
			"equal", "less", "greater", "less_equal", "greater_equal", "not", "and", "or", "xor",
			"gather_grad", "argmax", "argmin":
			continue // no gradient: their results are bool, or they are gradients themselves
		case "allreduce":
			continue // a collective: placed by the replicate pass, after differentiation
		case graph.OpAssign:
			continue // a state update: the optimizer's step, after differentiation
		}
		if !covered[op] {
			t.Errorf("op %s has a gradient rule but no gradient check", op)
		}
	}
}

func TestDefaults(t *testing.T) {
	var bn gradCase
	for _, c := range gradCases {
		if c.name == "batchnorm" {
			bn = c
		}
	}
	g := withLoss(t, bn)
	tr, err := grad.Build(g, grad.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var params, stats []string
	for _, o := range tr.Grads {
		params = append(params, o.Param+"->"+o.Output)
	}
	for _, o := range tr.Stats {
		stats = append(stats, o.Param+"->"+o.Output)
	}
	if got, want := strings.Join(params, " "), "s->s.grad b->b.grad w->w.grad s2->s2.grad b2->b2.grad"; got != want {
		t.Errorf("grads %s, want %s", got, want)
	}
	if got, want := strings.Join(stats, " "), "m->n.running_mean v->n.running_var"; got != want {
		t.Errorf("stats %s, want %s", got, want)
	}
	var outs []string
	for _, o := range tr.Graph.Outputs {
		outs = append(outs, o.Name)
	}
	if got, want := strings.Join(outs, " "), "loss s.grad b.grad w.grad s2.grad b2.grad n.running_mean n.running_var"; got != want {
		t.Errorf("outputs %s, want %s", got, want)
	}
	// The printed training graph parses back.
	text := graph.Format(tr.Graph)
	if g2, err := graph.Parse("train.graph", []byte(text)); err != nil || graph.Format(g2) != text {
		t.Errorf("training graph does not round-trip: %v", err)
	}
	// Only some params.
	tr, err = grad.Build(g, grad.Options{Params: []string{"%w", "b2"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.Grads) != 2 || tr.Grads[0].Param != "w" || tr.Grads[1].Param != "b2" {
		t.Errorf("grads %v, want w and b2", tr.Grads)
	}
}

// Generated names never collide with the model's own.
func TestNamesDoNotCollide(t *testing.T) {
	g := withLoss(t, gradCase{name: "collide", body: `input %x: f64[N,3]
  param %w: f64[3,2]
  param %w.grad: f64[2]
  %h = matmul %x, %w
  %y = add %h, %w.grad`})
	tr, err := grad.Build(g, grad.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, o := range tr.Grads {
		names = append(names, o.Param+"->"+o.Output)
	}
	if got, want := strings.Join(names, " "), "w->w.grad_2 w.grad->w.grad.grad"; got != want {
		t.Errorf("grads %s, want %s", got, want)
	}
}

func TestErrors(t *testing.T) {
	for _, c := range []struct {
		name, body string
		opts       grad.Options
		want       string
	}{
		{"no_scalar", "input %x: f64[N,3]\n  param %w: f64[3]\n  %y = mul %x, %w\n  output %y", grad.Options{},
			"graph g has no scalar f32 or f64 output to use as the loss (outputs: %y)"},
		{"two_scalars", "input %x: f64[N,3]\n  param %w: f64[3]\n  %y = mul %x, %w\n  %a = sum %y\n  %b = mean %y\n  output %a, %b", grad.Options{},
			"graph g has several scalar outputs (%a, %b): name the loss"},
		{"named_not_output", "input %x: f64[N,3]\n  param %w: f64[3]\n  %y = mul %x, %w\n  %a = sum %y\n  output %a", grad.Options{Loss: "y"},
			"loss %y: not an output of graph g (outputs: %a)"},
		{"named_not_scalar", "input %x: f64[N,3]\n  param %w: f64[3]\n  %y = mul %x, %w\n  %a = sum %y\n  output %a, %y", grad.Options{Loss: "%y"},
			"loss %y: expected a scalar f32 or f64 output, found f64[N,3]"},
		{"no_params", "input %x: f64[N,3]\n  %a = sum %x\n  output %a", grad.Options{},
			"the loss %a depends on no trainable param"},
		{"unknown_param", "input %x: f64[N,3]\n  param %w: f64[3]\n  %y = mul %x, %w\n  %a = sum %y\n  output %a", grad.Options{Params: []string{"v"}},
			"params: graph g has no param %v"},
		{"unused_param", "input %x: f64[N,3]\n  param %w: f64[3]\n  param %v: f64[3]\n  %y = mul %x, %w\n  %a = sum %y\n  output %a, %v", grad.Options{Params: []string{"w", "v"}},
			"params: the loss %a does not depend on %v through differentiable ops"},
		{"no_gradient", "input %x: f64[N,2,4,4]\n  param %w: f64[2,2,3,3]\n  %d = conv2d_grad_input %x, %w {size=[6,6]}\n  %a = sum %d\n  output %a", grad.Options{},
			"g.graph:4:3: %d: no gradient for op conv2d_grad_input"},
		{"concat_batch", "input %x: f64[N,3]\n  param %w: f64[3]\n  %y = mul %x, %w\n  %c = concat %y, %x {axis=0}\n  %a = sum %c\n  output %a", grad.Options{},
			"g.graph:5:3: %c: no gradient for concat along the batch axis 0"},
	} {
		t.Run(c.name, func(t *testing.T) {
			g, err := graph.Parse("g.graph", []byte("graph g {\n  "+c.body+"\n}\n"))
			if err != nil {
				t.Fatal(err)
			}
			_, err = grad.Build(g, c.opts)
			if err == nil || err.Error() != c.want {
				t.Errorf("got error %v\nwant       %s", err, c.want)
			}
		})
	}
}

// The pass form runs in a pipeline.
func ExampleBuild() {
	g, _ := graph.Parse("mlp.graph", []byte(`graph mlp {
  input %x: f32[N,4]
  input %t: f32[N,2]
  param %w: f32[4,2]
  %z = matmul %x, %w
  %d = sub %z, %t
  %sq = mul %d, %d
  %loss = mean %sq
  output %loss
}`))
	tr, err := grad.Build(g, grad.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Print(graph.Format(tr.Graph))
	// Output:
	// graph mlp {
	//   input %x: f32[N,4]
	//   input %t: f32[N,2]
	//   param %w: f32[4,2]
	//   %z = matmul %x, %w : f32[N,2]
	//   %d = sub %z, %t : f32[N,2]
	//   %sq = mul %d, %d : f32[N,2]
	//   %loss = mean %sq : f32[]
	//   const %grad.c0: f32[] = 1.0
	//   %sq.grad.keep = reshape %grad.c0 {shape=[1,1]} : f32[1,1]
	//   %sq.grad.size = dim %sq {axis=0} : f32[]
	//   const %grad.c1: f32[] = 2.0
	//   %sq.grad.count = mul %sq.grad.size, %grad.c1 : f32[]
	//   %sq.grad.per = div %sq.grad.keep, %sq.grad.count : f32[1,1]
	//   %sq.grad = broadcast_like %sq.grad.per, %sq : f32[N,2]
	//   %d.grad.sq.0 = mul %sq.grad, %d : f32[N,2]
	//   %d.grad.sq.1 = mul %sq.grad, %d : f32[N,2]
	//   %d.grad = add %d.grad.sq.0, %d.grad.sq.1 : f32[N,2]
	//   %w.grad.t = transpose %x {perm=[1,0]} : f32[4,N]
	//   %w.grad = matmul %w.grad.t, %d.grad : f32[4,2]
	//   output %loss, %w.grad
	// }
}
