//go:build cgo

package gpu

import (
	"errors"
	"fmt"
	"testing"

	"gorgonia.org/tensor"

	"multigpu/graph"
	"multigpu/runtime"
	"multigpu/runtime/backend"
	"multigpu/runtime/gpu/gputest"
	"multigpu/runtime/host"
)

// Gathers with negative indices compute what the CPU backend computes;
// an index out of range fails the run with the CPU backend's error,
// naming the node, and the next run with good indices succeeds (the
// status words are cleared before every run).
func TestGatherIndices(t *testing.T) {
	g, err := graph.Parse("g.graph", []byte(`graph g {
  param %t: f32[5,3]
  input %i: i64[N,2]
  input %j: i32[3]
  %e = gather %t, %i
  %f = gather %e, %j {axis=-1}
  %d = gather_grad %j, %f {axis=2, rows=3}
  output %f, %d
}
`))
	if err != nil {
		t.Fatal(err)
	}
	params := map[string]*tensor.Dense{"t": host.New([]int{5, 3}, []float32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14})}
	good := map[string]*tensor.Dense{
		"i": host.New([]int{2, 2}, []int64{-1, 0, 4, -5}),
		"j": host.New([]int{3}, []int32{2, -3, 2}),
	}
	devices := func(t *testing.T) gputest.Devices {
		hd := newHostDevices(t, newHostDriver("host GPU 0"))
		hd.cpuOnGPU = true
		return hd.device
	}
	want := gputest.Execute(t, g, nil, params, good)
	if got := fmt.Sprint(host.Data(want["f"])); got != "[14 12 14 2 0 2 14 12 14 2 0 2]" {
		t.Fatalf("cpu: %%f = %s", got)
	}
	got := gputest.Execute(t, g, devices(t), params, good)
	for _, name := range []string{"f", "d"} {
		if err := gputest.Compare(want[name], got[name], gputest.Bits); err != nil {
			t.Errorf("%%%s: %v", name, err)
		}
	}
	for _, c := range []struct {
		name string
		i    []int64
		j    []int32
		node string
		msg  string
	}{
		{"row", []int64{0, 5, 1, 1}, []int32{0, 1, 2}, "%e (gather)", "index 5 is out of range for axis 0 of size 5 (expected -5 to 4)"},
		{"negative column", []int64{0, 1, 1, 1}, []int32{0, -4, 2}, "%f (gather)", "index -4 is out of range for axis 2 of size 3 (expected -3 to 2)"},
	} {
		bad := map[string]*tensor.Dense{"i": host.New([]int{2, 2}, c.i), "j": host.New([]int{3}, c.j)}
		e, err := runtime.New(g, runtime.Options{Devices: devices(t)})
		if err == nil {
			err = e.SetParams(params)
		}
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.Run(t.Context(), bad)
		var ne *backend.NodeError
		if !errors.As(err, &ne) || err.Error() != "runtime: stage 0: cpu: "+c.node+": "+c.msg {
			t.Errorf("%s: %v, want cpu: %s: %s", c.name, err, c.node, c.msg)
		}
		cpu, cerr := runtime.New(g, runtime.Options{})
		if cerr == nil {
			cerr = cpu.SetParams(params)
		}
		if cerr == nil {
			_, cerr = cpu.Run(t.Context(), bad)
		}
		if cerr == nil || cerr.Error() != err.Error() {
			t.Errorf("%s: the cpu backend says %v, the gpu backend %v", c.name, cerr, err)
		}
		out, err := e.Run(t.Context(), good)
		if err != nil {
			t.Fatalf("%s: the run after: %v", c.name, err)
		}
		if err := gputest.Compare(want["f"], out["f"], gputest.Bits); err != nil {
			t.Errorf("%s: the run after: %v", c.name, err)
		}
	}
}
