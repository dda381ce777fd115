package devmap

import (
	"fmt"
	"testing"

	"multigpu/graph"
)

// TestForLocalRank: a rank's gpu:K is the node's gpu:l*per+K, through the
// node's map; the rank's map names its own GPUs only.
func TestForLocalRank(t *testing.T) {
	for _, tc := range []struct {
		node    string // "" for the identity
		l, per  int
		want    string
		avail   int // physical GPUs on the node
		wantAvl string
	}{
		{"", 0, 2, "gpu:0-1=0-1", 4, "[gpu:0 gpu:1]"},
		{"", 1, 2, "gpu:0-1=2-3", 4, "[gpu:0 gpu:1]"},
		{"", 1, 2, "gpu:0-1=2-3", 3, "[gpu:0]"},
		{"", 3, 1, "gpu:0=3", 4, "[gpu:0]"},
		{"gpu:0-3=0", 1, 2, "gpu:0-1=0", 1, "[gpu:0 gpu:1]"},
		{"gpu:0-1=1,gpu:2-3=0", 1, 2, "gpu:0-1=0", 2, "[gpu:0 gpu:1]"},
		{"gpu:0-5=0-5", 2, 2, "gpu:0-1=4-5", 8, "[gpu:0 gpu:1]"},
		{"gpu:0=0,gpu:3=1", 1, 2, "gpu:1=1", 2, "[gpu:1]"},
	} {
		var node Map
		if tc.node != "" {
			var err error
			if node, err = Parse(tc.node); err != nil {
				t.Fatal(err)
			}
		}
		m, err := node.ForLocalRank(tc.l, tc.per)
		if err != nil {
			t.Errorf("%q.ForLocalRank(%d, %d): %v", tc.node, tc.l, tc.per, err)
			continue
		}
		if m.String() != tc.want {
			t.Errorf("%q.ForLocalRank(%d, %d) = %s, want %s", tc.node, tc.l, tc.per, m, tc.want)
		}
		if got := fmt.Sprint(m.Available(tc.avail)); got != tc.wantAvl {
			t.Errorf("%q.ForLocalRank(%d, %d).Available(%d) = %s, want %s", tc.node, tc.l, tc.per, tc.avail, got, tc.wantAvl)
		}
	}
	node, _ := Parse("gpu:0-1=0")
	if _, err := node.ForLocalRank(1, 2); err == nil || err.Error() != "local rank 1 drives the node's gpu:2-3 (its gpu:0-1), but the device map gpu:0-1=0 maps none of them" {
		t.Errorf("a map without the rank's GPUs: %v", err)
	}
	if _, err := (Map{}).ForLocalRank(-1, 2); err == nil {
		t.Error("local rank -1 accepted")
	}
	if _, err := (Map{}).ForLocalRank(0, 0); err == nil {
		t.Error("0 GPUs per rank accepted")
	}
}

// TestSetOnLocalRank: local rank 1 of a node with 2 ranks x 2 GPUs opens
// the node's physical GPUs 2 and 3 for rank1/gpu:0 and rank1/gpu:1, and
// its map's check refuses a node with too few GPUs.
func TestSetOnLocalRank(t *testing.T) {
	m, err := Map{}.ForLocalRank(1, 2)
	if err != nil {
		t.Fatal(err)
	}
	opened := map[int]*fakeGPU{}
	s := newSet(m, func(ord int) (physical, error) {
		f := &fakeGPU{ord: ord}
		opened[ord] = f
		return f, nil
	})
	for _, k := range []int{0, 1} {
		d := graph.GPUDevice(k).OnRank(1)
		dev, err := s.Devices(d)
		if err != nil {
			t.Fatalf("Devices(%s): %v", d, err)
		}
		if dev.Place() != d {
			t.Errorf("Devices(%s).Place() = %s", d, dev.Place())
		}
	}
	if len(opened) != 2 || opened[2] == nil || opened[3] == nil || fmt.Sprint(opened[2].served, opened[3].served) != "[rank1/gpu:0] [rank1/gpu:1]" {
		t.Errorf("opened %v; want physical GPUs 2 and 3 serving rank1/gpu:0 and rank1/gpu:1", opened)
	}
	used := []graph.Device{graph.GPUDevice(0).OnRank(1), graph.GPUDevice(1).OnRank(1), graph.GPUDevice(0).OnRank(0)}
	if err := m.Check(4, used); err != nil {
		t.Errorf("Check on 4 GPUs: %v", err)
	}
	if err := m.Check(3, used); err == nil || err.Error() != "gpu:1 is mapped to physical GPU 3, but this machine has 3 GPUs (0, 1, 2)" {
		t.Errorf("Check on 3 GPUs: %v", err)
	}
}
