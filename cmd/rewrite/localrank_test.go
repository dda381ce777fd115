package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"multigpu/graph"
	"multigpu/passes/replicate"
	"multigpu/runtime"
	"multigpu/runtime/devmap"
)

// TestRankMap: under mpirun, local rank L's gpu:K runs on the node's GPU
// L*S+K (S: the GPUs a rank drives), through --device-map when given; the
// default --available is the rank's own GPUs that the node has.
func TestRankMap(t *testing.T) {
	placed := graph.New("placed")
	for _, d := range []graph.Device{graph.GPUDevice(0).OnRank(0), graph.GPUDevice(2).OnRank(1)} {
		n, err := placed.Input(fmt.Sprintf("x%d", d.Index), graph.Type{DType: graph.F32, Shape: []graph.Dim{graph.Const(1)}})
		if err != nil {
			t.Fatal(err)
		}
		n.Device = d
	}
	for _, tc := range []struct {
		node      string
		local     int
		gpus      []int // nil: a graph placed already
		count     int
		want, avl string
	}{
		{"", 1, []int{0, 1}, 4, "gpu:0-1=2-3", "[gpu:0 gpu:1]"},
		{"", 0, []int{0, 1}, 4, "gpu:0-1=0-1", "[gpu:0 gpu:1]"},
		{"", 2, []int{0}, 4, "gpu:0=2", "[gpu:0]"},
		{"", 1, []int{0, 2}, 6, "gpu:0-2=3-5", "[gpu:0 gpu:1 gpu:2]"},
		{"gpu:0-3=0", 1, []int{0, 1}, 1, "gpu:0-1=0", "[gpu:0 gpu:1]"},
		{"", 1, nil, 6, "gpu:0-2=3-5", "[gpu:0 gpu:1 gpu:2]"},
		{"", 1, []int{0, 1}, 3, "gpu:0-1=2-3", "[gpu:0]"},
	} {
		b := &gpuBackend{count: tc.count}
		if tc.node != "" {
			var err error
			if b.m, err = devmap.Parse(tc.node); err != nil {
				t.Fatal(err)
			}
		}
		o := &options{job: &rankJob{rank: tc.local, size: 4, localRank: tc.local}}
		if tc.gpus != nil {
			o.replicate = &replicate.Options{GPUs: tc.gpus}
		}
		if err := b.onRank(o, placed); err != nil || b.m.String() != tc.want {
			t.Errorf("node map %q, local rank %d, --gpus %v: %s, %v; want %s", tc.node, tc.local, tc.gpus, b.m, err, tc.want)
		}
		if got := fmt.Sprint(b.available()); got != tc.avl {
			t.Errorf("node map %q, local rank %d, --gpus %v: available %s, want %s", tc.node, tc.local, tc.gpus, got, tc.avl)
		}
	}
	// A node with 2 GPUs cannot give local rank 1 its GPUs 2 and 3.
	b := &gpuBackend{count: 2}
	o := &options{job: &rankJob{rank: 1, size: 2, localRank: 1}, replicate: &replicate.Options{GPUs: []int{0, 1}}}
	if err := b.onRank(o, placed); err != nil {
		t.Fatal(err)
	}
	g := graph.New("g")
	x, _ := g.Input("x", graph.Type{DType: graph.F32, Shape: []graph.Dim{graph.Const(1)}})
	x.Device = graph.GPUDevice(1).OnRank(1)
	_, _, err := b.options(g, runtime.Options{})
	want := "gpu:0 is mapped to physical GPU 2, but this machine has 2 GPUs (0, 1); gpu:1 is mapped to physical GPU 3, but this machine has 2 GPUs (0, 1)"
	if err == nil || err.Error() != want {
		t.Errorf("too few GPUs for local rank 1:\n got %v\nwant %s", err, want)
	}
	// A device map without the rank's GPUs.
	b = &gpuBackend{count: 1}
	b.m, _ = devmap.Parse("gpu:0-1=0")
	if err := b.onRank(o, placed); err == nil || err.Error() != "rank 1: --device-map: local rank 1 drives the node's gpu:2-3 (its gpu:0-1), but the device map gpu:0-1=0 maps none of them" {
		t.Errorf("a map without the rank's GPUs: %v", err)
	}
}

// TestOneGPUPerRank: --gpus 1 is refused in one process and places one
// replica per rank with --ranks.
func TestOneGPUPerRank(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"../../testdata/mlp.graph", "--gpus", "1"}, nil, &stdout, &stderr); code != exitUsage || !strings.Contains(stderr.String(), "at least 2 GPUs") {
		t.Errorf("--gpus 1 in one process: exit %d, %s", code, stderr.String())
	}
	stdout.Reset()
	stderr.Reset()
	if code := run([]string{"../../testdata/mlp.graph", "--gpus", "1", "--ranks", "3"}, nil, &stdout, &stderr); code != exitOK {
		t.Fatalf("--gpus 1 --ranks 3: exit %d, %s", code, stderr.String())
	}
	for _, d := range []string{"rank0/gpu:0", "rank1/gpu:0", "rank2/gpu:0"} {
		if !strings.Contains(stdout.String(), "@"+d) {
			t.Errorf("--gpus 1 --ranks 3: no node on %s:\n%s", d, stdout.String())
		}
	}
	if strings.Contains(stdout.String(), "gpu:1") {
		t.Errorf("--gpus 1 --ranks 3 uses a second GPU:\n%s", stdout.String())
	}
}
