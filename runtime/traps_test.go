package runtime_test

import (
	"math"
	"testing"

	"multigpu/passes/replicate"
	"multigpu/runtime"
	"multigpu/runtime/host"
)

// The gorgonia traps of DESIGN.md do not reach the runtime: nodes that
// gorgonia would hash alike stay distinct, a softmax followed by log is
// not rewritten, and slices at offsets of 256 and more are right.
func TestGorgoniaTraps(t *testing.T) {
	g := parse(t, `graph traps {
  input %x: f32[N,8]
  %s = softmax %x {axis=1}
  %ls = log_softmax %x {axis=1}
  %l = log %s
  %d1 = dropout %x {rate=0.25, training=true}
  %d2 = dropout %x {rate=0.75, training=true}
  %a = relu %x
  %b = relu %x
  %ab = add %a, %b
  output %s, %ls, %l, %d1, %d2, %ab
}
`)
	in, _ := runtime.RandomInputs(g, 600, 1)
	want := run(t, newExec(t, g, nil), in)
	s := host.Data(want["s"]).([]float32)
	ls := host.Data(want["ls"]).([]float32)
	l := host.Data(want["l"]).([]float32)
	for i := range s {
		if s[i] < 0 || s[i] > 1 || ls[i] > 0 {
			t.Fatalf("element %d: softmax %v, log_softmax %v", i, s[i], ls[i])
		}
		if math.Abs(float64(l[i]-ls[i])) > 1e-5 {
			t.Fatalf("element %d: log(softmax) %v, log_softmax %v", i, l[i], ls[i])
		}
	}
	zeros := func(name string) int {
		n := 0
		for _, v := range host.Data(want[name]).([]float32) {
			if v == 0 {
				n++
			}
		}
		return n
	}
	if z1, z2 := zeros("d1"), zeros("d2"); z1 >= z2 {
		t.Errorf("dropout rates 0.25 and 0.75 zero %d and %d elements", z1, z2)
	}
	// Split in two, the second share starts at 300: every sample must be
	// its own, bit for bit.
	rg, _, err := replicate.Rewrite(g, replicate.Options{GPUs: gpus(2)})
	if err != nil {
		t.Fatal(err)
	}
	got := run(t, newExec(t, rg, nil), in)
	for _, o := range g.Outputs {
		if err := compare(want[o.Name], got[o.Name], true); err != nil {
			t.Errorf("%%%s: %v", o.Name, err)
		}
	}
}
