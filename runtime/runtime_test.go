package runtime_test

import (
	"context"
	"errors"
	"fmt"
	goruntime "runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gorgonia.org/tensor"

	"multigpu/graph"
	"multigpu/passes/replicate"
	"multigpu/runtime"
	"multigpu/runtime/backend"
	"multigpu/runtime/host"
)

func parse(t testing.TB, src string) *graph.Graph {
	t.Helper()
	g, err := graph.Parse("test.graph", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return g
}

const dropoutSrc = `graph drop {
  input %x: f32[N,4,5]
  %d = dropout %x {rate=0.3, training=true}
  %y = relu %d
  output %y
}
`

// Dropout in training keeps each element with probability 1-rate, scaled by
// 1/(1-rate), and a sample's mask does not depend on how the batch is split.
func TestDropout(t *testing.T) {
	g := parse(t, dropoutSrc)
	in, _ := runtime.RandomInputs(g, 37, 5)
	x := host.Data(in["x"]).([]float32)
	runWith := func(g *graph.Graph, seed uint64) []float32 {
		e, err := runtime.New(g, runtime.Options{Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		out, err := e.Run(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		return host.Data(out["y"]).([]float32)
	}
	y := runWith(g, 1)
	dropped := 0
	for i, v := range y {
		want := max(x[i]/float32(1-0.3), 0)
		switch v {
		case 0:
			if x[i] > 0 {
				dropped++
			}
		case want:
		default:
			t.Fatalf("element %d: %v, want 0 or %v", i, v, want)
		}
	}
	positive := 0
	for _, v := range x {
		if v > 0 {
			positive++
		}
	}
	if frac := float64(dropped) / float64(positive); frac < 0.2 || frac > 0.4 {
		t.Errorf("dropped %.2f of the elements, want about 0.3", frac)
	}
	if y2 := runWith(g, 2); fmt.Sprint(y2) == fmt.Sprint(y) {
		t.Errorf("seeds 1 and 2 give the same mask")
	}
	for _, n := range []int{2, 3, 8} {
		for _, policy := range []graph.SplitPolicy{graph.Balanced, graph.Remainder} {
			rg, _, err := replicate.Rewrite(g, replicate.Options{GPUs: gpus(n), Split: policy})
			if err != nil {
				t.Fatal(err)
			}
			if yr := runWith(rg, 1); fmt.Sprint(yr) != fmt.Sprint(y) {
				t.Errorf("N=%d %s: masks differ from one device's", n, policy)
			}
		}
	}
}

// The placed example of testdata runs as written: the batch of 10 split in
// two halves on gpu:0 and gpu:1, equal to the unplaced model.
func TestPlacedGraph(t *testing.T) {
	placed := loadModel(t, "../testdata/placed_two_gpus.graph")
	plain := parse(t, `graph plain {
  input %x: f32[N=10,784]
  param %w1: f32[784,10]
  param %b1: f32[10]
  %h = matmul %x, %w1
  %z = add %h, %b1
  %y = softmax %z {axis=1}
  output %y
}
`)
	params := runtime.RandomParams(plain, 3)
	in, _ := runtime.RandomInputs(plain, 10, 4)
	want := run(t, newExec(t, plain, params), in)
	got := run(t, newExec(t, placed, params), in)
	if err := compare(want["y"], got["y"], true); err != nil {
		t.Error(err)
	}
}

// countGoroutines waits for goroutines to wind down, then counts them.
func countGoroutines(limit int) int {
	n := goruntime.NumGoroutine()
	for i := 0; i < 100 && n > limit; i++ {
		time.Sleep(10 * time.Millisecond)
		n = goruntime.NumGoroutine()
	}
	return n
}

// One replica failing mid-run cancels the others, which are blocked until
// then, and the run returns one error naming the device and node; no
// goroutine outlives the run.
func TestReplicaFailureCancelsOthers(t *testing.T) {
	g := loadModel(t, "../testdata/mlp.graph")
	rg, _, err := replicate.Rewrite(g, replicate.Options{GPUs: gpus(4)})
	if err != nil {
		t.Fatal(err)
	}
	before := goruntime.NumGoroutine()
	var cancelled atomic.Int32
	injected := errors.New("injected fault")
	arrived := make(chan bool, 3)
	e, err := runtime.New(rg, runtime.Options{BeforeNode: func(ctx context.Context, dev graph.Device, n *graph.Node) error {
		if n.Name == "a.r2" {
			// Fail once the other replicas are mid-program.
			for i := 0; i < 3; i++ {
				select {
				case <-arrived:
				case <-time.After(10 * time.Second):
					return errors.New("the other replicas did not arrive")
				}
			}
			return injected
		}
		if strings.HasPrefix(n.Name, "a.r") {
			// Hold the other replicas mid-program until the failure
			// cancels them.
			arrived <- true
			select {
			case <-ctx.Done():
				cancelled.Add(1)
				return ctx.Err()
			case <-time.After(10 * time.Second):
				return errors.New("not cancelled")
			}
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.SetParams(runtime.RandomParams(g, 1)); err != nil {
		t.Fatal(err)
	}
	for round := 0; round < 3; round++ {
		in, _ := runtime.RandomInputs(g, 64, 1)
		start := time.Now()
		_, err = e.Run(context.Background(), in)
		if !errors.Is(err, injected) {
			t.Fatalf("err = %v, want the injected fault", err)
		}
		var ne *backend.NodeError
		if !errors.As(err, &ne) || ne.Device != graph.GPUDevice(2) || ne.Node != "a.r2" {
			t.Fatalf("err = %v, want a NodeError on gpu:2 at %%a.r2", err)
		}
		for _, want := range []string{"gpu:2", "%a.r2", "relu", "injected fault"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not mention %q", err, want)
			}
		}
		if time.Since(start) > 5*time.Second {
			t.Errorf("run took %v: the other replicas were not cancelled", time.Since(start))
		}
	}
	if got := cancelled.Load(); got != 9 {
		t.Errorf("%d replicas saw the cancellation, want 3 per run", got)
	}
	if after := countGoroutines(before); after > before {
		t.Errorf("%d goroutines after the runs, %d before", after, before)
	}
}

// Cancelling the caller's context stops a run with the context's error.
func TestRunCancelled(t *testing.T) {
	g := loadModel(t, "../testdata/mlp.graph")
	rg, _, err := replicate.Rewrite(g, replicate.Options{GPUs: gpus(2)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e, err := runtime.New(rg, runtime.Options{BeforeNode: func(c context.Context, dev graph.Device, n *graph.Node) error {
		if n.Name == "h.r1" {
			cancel()
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.SetParams(runtime.RandomParams(g, 1)); err != nil {
		t.Fatal(err)
	}
	in, _ := runtime.RandomInputs(g, 8, 1)
	if _, err := e.Run(ctx, in); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestMemoryLimit(t *testing.T) {
	g := loadModel(t, "../testdata/mlp.graph")
	e, err := runtime.New(g, runtime.Options{MemoryLimit: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.SetParams(runtime.RandomParams(g, 1)); err != nil {
		t.Fatal(err)
	}
	in, _ := runtime.RandomInputs(g, 2, 1)
	if _, err := e.Run(context.Background(), in); err != nil {
		t.Fatalf("batch 2: %v", err)
	}
	in, _ = runtime.RandomInputs(g, 4096, 1)
	_, err = e.Run(context.Background(), in)
	if err == nil || !strings.Contains(err.Error(), "over the memory limit of 4.0 MiB") {
		t.Fatalf("batch 4096 under a 4 MiB limit: err = %v", err)
	}
	if runtime.MachineMemory() <= 0 {
		t.Errorf("MachineMemory() = %d", runtime.MachineMemory())
	}
}

func TestInputErrors(t *testing.T) {
	g := parse(t, `graph g {
  input %x: f32[N,3]
  input %z: f32[N,2]
  param %w: f32[3,2]
  %h = matmul %x, %w
  %y = add %h, %z
  output %y
}
`)
	e, err := runtime.New(g, runtime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f32 := func(shape ...int) *tensor.Dense { return host.Zeros(graph.F32, shape) }
	if _, err := e.Run(context.Background(), map[string]*tensor.Dense{"x": f32(2, 3), "z": f32(2, 2)}); err == nil || !strings.Contains(err.Error(), "params not set") {
		t.Errorf("run before SetParams: err = %v", err)
	}
	for _, c := range []struct {
		params map[string]*tensor.Dense
		want   string
	}{
		{map[string]*tensor.Dense{}, "param %w: missing (expected f32[3,2])"},
		{map[string]*tensor.Dense{"w": f32(2, 3)}, "param %w: expected shape f32[3,2], given [2,3]"},
		{map[string]*tensor.Dense{"w": host.Zeros(graph.F64, []int{3, 2})}, "param %w: expected element type f32, given float64"},
		{map[string]*tensor.Dense{"w": f32(3, 2), "v": f32(1)}, "param %v: the graph has no such param"},
	} {
		if err := e.SetParams(c.params); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("SetParams: err = %v, want %q", err, c.want)
		}
	}
	if err := e.SetParams(map[string]*tensor.Dense{"w": f32(3, 2)}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		in   map[string]*tensor.Dense
		want string
	}{
		{map[string]*tensor.Dense{"x": f32(2, 3)}, "input %z: missing (expected f32[N,2])"},
		{map[string]*tensor.Dense{"x": f32(2, 4), "z": f32(2, 2)}, "input %x: expected shape f32[N,3], given [2,4]"},
		{map[string]*tensor.Dense{"x": f32(2, 3), "z": f32(5, 2)}, "input %z: expected shape f32[N,2] with batch 2 (as %x), given [5,2]"},
		{map[string]*tensor.Dense{"x": f32(2, 3), "z": f32(2, 2), "q": f32(1)}, "input %q: the graph has no such input"},
		{map[string]*tensor.Dense{"x": f32(3), "z": f32(2, 2)}, "input %x: expected shape f32[N,3], given [3]"},
	} {
		if _, err := e.Run(context.Background(), c.in); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Run: err = %v, want %q", err, c.want)
		}
	}
	out, err := e.Run(context.Background(), map[string]*tensor.Dense{"x": f32(4, 3), "z": f32(4, 2)})
	if err != nil || fmt.Sprint(out["y"].Shape()) != "(4, 2)" {
		t.Errorf("Run: %v, %v", out, err)
	}
}

// A graph with a concrete batch refuses another batch size.
func TestBoundBatch(t *testing.T) {
	g := loadModel(t, "../testdata/concrete_batch.graph")
	e := newExec(t, g, runtime.RandomParams(g, 1))
	in, _ := runtime.RandomInputs(g, 0, 1)
	run(t, e, in)
	in["x"] = host.Zeros(graph.F32, []int{63, 100})
	if _, err := e.Run(context.Background(), in); err == nil || !strings.Contains(err.Error(), "expected shape f32[N=64,100], given [63,100]") {
		t.Errorf("err = %v", err)
	}
}

// An op the backend cannot run is an error at New, naming the node.
func TestUnsupportedAtLowerTime(t *testing.T) {
	g := parse(t, `graph g {
  input %x: i32[N,3]
  %y = relu %x
  output %y
}
`)
	_, err := runtime.New(g, runtime.Options{})
	if err == nil || !strings.Contains(err.Error(), "test.graph:3:3: lower: %y (relu): relu on i32 is not supported by the cpu backend") {
		t.Errorf("err = %v", err)
	}
}

// Outputs share no memory with inputs or params, even when the output is
// an input itself or a view of one, and inputs are never written.
func TestOutputsDoNotAlias(t *testing.T) {
	g := parse(t, `graph g {
  input %x: f32[N,3]
  param %w: f32[3]
  %r = reshape %x {shape=[-1]}
  %c = copy %w
  output %x, %r, %c
}
`)
	w := host.New([]int{3}, []float32{1, 2, 3})
	e := newExec(t, g, map[string]*tensor.Dense{"w": w})
	x := host.New([]int{2, 3}, []float32{1, 2, 3, 4, 5, 6})
	out := run(t, e, map[string]*tensor.Dense{"x": x})
	for _, name := range []string{"x", "r", "c"} {
		host.Data(out[name]).([]float32)[0] = 100
	}
	if host.Data(x).([]float32)[0] != 1 || host.Data(w).([]float32)[0] != 1 {
		t.Errorf("outputs alias inputs or params")
	}
	out = run(t, e, map[string]*tensor.Dense{"x": x})
	if v := host.Data(out["c"]).([]float32)[0]; v != 1 {
		t.Errorf("param changed through an output: %v", v)
	}
}

// A batch smaller than the number of replicas runs min(B, N) replicas.
func TestSmallBatchRunsFewerReplicas(t *testing.T) {
	g := loadModel(t, "../testdata/center_batch.graph")
	rg, _, err := replicate.Rewrite(g, replicate.Options{GPUs: gpus(4)})
	if err != nil {
		t.Fatal(err)
	}
	var seen [4]atomic.Int32
	e, err := runtime.New(rg, runtime.Options{BeforeNode: func(ctx context.Context, dev graph.Device, n *graph.Node) error {
		if dev.Kind == graph.GPU {
			seen[dev.Index].Add(1)
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	in, _ := runtime.RandomInputs(g, 2, 1)
	out := run(t, e, in)
	want := run(t, newExec(t, g, nil), in)
	if err := compare(want["y"], out["y"], false); err != nil {
		t.Error(err)
	}
	for i := range seen {
		if ran := seen[i].Load() > 0; ran != (i < 2) {
			t.Errorf("gpu:%d ran: %v, want %v", i, ran, i < 2)
		}
	}
}
