package grad_test

import (
	"math"
	"testing"

	"gorgonia.org/tensor"

	"multigpu/graph"
	"multigpu/passes/grad"
	"multigpu/runtime/host"
)

// The gradient of a cast between floating-point types is dy cast back: an
// f32 param used in f64 gets an f32 gradient (finite differences through
// f32 rounding are too coarse to check it, so the reference is exact).
func TestCastGradient(t *testing.T) {
	g, err := graph.Parse("cast.graph", []byte(`graph cast {
  input %x: f64[N,3]
  param %w: f32[3]
  %c = cast %w {to=f64}
  %y = mul %x, %c
  %loss = sum %y
  output %loss
}
`))
	if err != nil {
		t.Fatal(err)
	}
	tr, err := grad.Build(g, grad.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.Grads) != 1 {
		t.Fatalf("grads %v, want one for %%w", tr.Grads)
	}
	out := tr.Graph.Lookup(tr.Grads[0].Output)
	if out.Op != "cast" || out.Type.String() != "f32[3]" {
		t.Errorf("gradient %%%s = %s : %s, want a cast to f32[3]", out.Name, out.Op, out.Type)
	}
	x := []float64{0.1, -2, 3.5, 1e-3, 4, -0.25}
	w := []float32{1, 2, 3}
	got := runWith(t, executor(t, tr.Graph), map[string]*tensor.Dense{"w": host.New([]int{3}, w)},
		map[string]*tensor.Dense{"x": host.New([]int{2, 3}, x)})
	dw := host.Data(got[tr.Grads[0].Output]).([]float32)
	for i := range dw {
		if want := float32(x[i] + x[3+i]); dw[i] != want {
			t.Errorf("d loss / d %%w[%d] = %v, want %v", i, dw[i], want)
		}
	}
	if l := data(got["loss"])[0]; math.Abs(l-(0.1-4+10.5+1e-3+8-0.75)) > 1e-12 {
		t.Errorf("loss %v", l)
	}
}

// Comparisons, logic ops and casts to integers pass no gradient: a param
// reached only through them is not trainable.
func TestNoGradientThroughBools(t *testing.T) {
	for _, body := range []string{
		"%m = less %x, %w\n  %f = cast %m {to=f64}",
		"%m = greater_equal %w, %x\n  %n = not %m\n  %f = cast %n {to=f64}",
		"%i = cast %w {to=i64}\n  %f = cast %i {to=f64}",
		"%m = equal %w, %x\n  %f = where %m, %x, %x",
	} {
		g, err := graph.Parse("g.graph", []byte("graph g {\n  input %x: f64[N,3]\n  param %w: f64[3]\n  "+body+"\n  %loss = sum %f\n  output %loss\n}\n"))
		if err != nil {
			t.Fatal(err)
		}
		_, err = grad.Build(g, grad.Options{})
		if want := "the loss %loss depends on no trainable param"; err == nil || err.Error() != want {
			t.Errorf("%s: error %v, want %s", body, err, want)
		}
	}
}
