package graph

import (
	"strings"
	"testing"
)

// Devices of ranks print, parse and round-trip, in a graph as alone.
func TestRankDevices(t *testing.T) {
	for _, s := range []string{"cpu", "gpu:3", "rank0/cpu", "rank1/gpu:0", "rank12/gpu:7"} {
		d, err := ParseDevice(s)
		if err != nil || d.String() != s {
			t.Errorf("ParseDevice(%q) = %v, %v", s, d, err)
		}
	}
	d := GPUDevice(1).OnRank(2)
	if r, ok := d.Rank(); !ok || r != 2 || d.Local() != GPUDevice(1) || d == GPUDevice(1) {
		t.Errorf("%v: rank %d %v, local %v", d, r, ok, d.Local())
	}
	if _, ok := HostCPU.Rank(); ok {
		t.Error("cpu has a rank")
	}
	for _, s := range []string{"rank/gpu:0", "rank-1/cpu", "rank01/cpu", "rank1/", "rank1/tpu:0", "rank1gpu:0"} {
		if _, err := ParseDevice(s); err == nil {
			t.Errorf("ParseDevice(%q): expected an error", s)
		}
	}
	src := `graph g {
  input %x: f32[N,2] @cpu
  %a = slice %x {axis=0, part=0, parts=2} : f32[N.0,2] @rank0/gpu:0
  %b = slice %x {axis=0, part=1, parts=2} : f32[N.1,2] @rank1/gpu:0
  %sa = sum %a {axes=[0]} : f32[2] @rank0/gpu:0
  %sb = sum %b {axes=[0]} : f32[2] @rank1/gpu:0
  %s.r0 = allreduce %sa, %sb : f32[2] @rank0/gpu:0
  %s.r1 = allreduce %sa, %sb : f32[2] @rank1/gpu:0
  %y = copy %s.r1 : f32[2] @cpu
  output %y
}
`
	g, err := Parse("ranks.graph", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(g); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := Print(&out, g); err != nil || out.String() != src {
		t.Errorf("round trip (%v):\n%s\nexpected\n%s", err, out.String(), src)
	}
	if _, err := Parse("bad.graph", []byte(strings.Replace(src, "@rank1/gpu:0", "@rank1/xpu", 1))); err == nil || !strings.Contains(err.Error(), "rankR/") {
		t.Errorf("a bad device: %v", err)
	}
}
