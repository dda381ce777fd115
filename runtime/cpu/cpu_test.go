package cpu

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"multigpu/graph"
	"multigpu/runtime/backend"
	"multigpu/runtime/host"
)

// program parses src (concrete shapes) and makes one program of it: the
// graph's leaves are its inputs, its outputs the program's.
func program(t testing.TB, src string) *backend.Program {
	t.Helper()
	g, err := graph.Parse("p.graph", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	p := &backend.Program{Device: graph.GPUDevice(1), Outputs: g.Outputs}
	for _, n := range g.Nodes {
		if n.IsLeaf() {
			p.Inputs = append(p.Inputs, n)
		} else {
			p.Nodes = append(p.Nodes, n)
		}
	}
	return p
}

func TestCompileAndRun(t *testing.T) {
	d := New(graph.GPUDevice(1))
	p := program(t, `graph p {
  input %x: f64[2,3]
  input %s: f64[]
  %a = mul %x, %s
  %b = sum %a {axes=[1]}
  %c = dim %x {axis=1, dtype=i64}
  output %b, %a, %c
}
`)
	exe, err := d.Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	x, _ := d.Upload(host.New([]int{2, 3}, []float64{1, 2, 3, 4, 5, 6}))
	s, _ := d.Upload(host.New([]int{}, []float64{10}))
	for i := 0; i < 2; i++ { // a second run reuses the machine
		outs, err := exe.Run(context.Background(), []backend.Buffer{x, s}, backend.RunOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"[60 150]", "[10 20 30 40 50 60]", "[3]"}
		for k, o := range outs {
			h, err := d.Download(o)
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprint(host.Data(h)); got != want[k] {
				t.Errorf("run %d: output %d = %s, want %s", i, k, got, want[k])
			}
			if o.Device() != graph.GPUDevice(1) {
				t.Errorf("output on %s", o.Device())
			}
		}
		if sh := outs[2].Shape(); len(sh) != 0 {
			t.Errorf("dim has shape %v, want a scalar", sh)
		}
	}
}

func TestNodeErrors(t *testing.T) {
	d := New(graph.GPUDevice(3))
	p := program(t, "graph p {\n  input %x: f32[4]\n  %y = relu %x\n  output %y\n}\n")
	boom := errors.New("boom")
	p.BeforeNode = func(ctx context.Context, dev graph.Device, n *graph.Node) error { return boom }
	exe, err := d.Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	x, _ := d.Upload(host.Zeros(graph.F32, []int{4}))
	_, err = exe.Run(context.Background(), []backend.Buffer{x}, backend.RunOptions{})
	var ne *backend.NodeError
	if !errors.As(err, &ne) || !errors.Is(err, boom) || err.Error() != "gpu:3: %y (relu): boom" {
		t.Errorf("err = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p.BeforeNode = nil
	exe, _ = d.Compile(p)
	if _, err := exe.Run(ctx, []backend.Buffer{x}, backend.RunOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled run: err = %v", err)
	}
	if err := d.Check(&graph.Node{Name: "q", Op: "frobnicate"}); err == nil {
		t.Errorf("Check accepts an unknown op")
	}
}
