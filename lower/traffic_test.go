package lower

import (
	"strings"
	"testing"
)

// allreduceGroup: a sum over the batch combined by an allreduce group on
// the replicas; gpu:1's member is read a stage later than gpu:0's, but the
// group runs at once.
const allreduceGroup = `graph g {
  input %x: f32[N=6,4] @cpu
  %x.r0 = slice %x {axis=0, start=0, end=3} : f32[3,4] @gpu:0
  %x.r1 = slice %x {axis=0, start=3, end=6} : f32[3,4] @gpu:1
  %p.r0 = sum %x.r0 {axes=[0], keepdims=true} : f32[1,4] @gpu:0
  %p.r1 = sum %x.r1 {axes=[0], keepdims=true} : f32[1,4] @gpu:1
  %s.r0 = allreduce %p.r0, %p.r1 : f32[1,4] @gpu:0
  %s.r1 = allreduce %p.r0, %p.r1 : f32[1,4] @gpu:1
  %y.r0 = sub %x.r0, %s.r0 : f32[3,4] @gpu:0
  %t.r1 = copy %s.r1 : f32[1,4] @cpu
  %u = relu %t.r1 : f32[1,4] @cpu
  %u.r1 = copy %u : f32[1,4] @gpu:1
  %y.r1 = sub %x.r1, %u.r1 : f32[3,4] @gpu:1
  %y = concat %y.r0, %y.r1 {axis=0} : f32[6,4] @cpu
  output %y
}
`

func TestAllreduceGroup(t *testing.T) {
	p, err := Lower(parse(t, allreduceGroup), Options{})
	if err != nil {
		t.Fatal(err)
	}
	g := p.Graph
	s0, s1 := g.Lookup("s.r0"), g.Lookup("s.r1")
	if p.StageOf[s0.ID] != p.StageOf[s1.ID] {
		t.Errorf("members in stages %d and %d:\n%s", p.StageOf[s0.ID], p.StageOf[s1.ID], p)
	}
	found := 0
	for _, st := range p.Stages {
		for _, tr := range st.Transfers {
			if tr.Kind == AllReduce {
				found++
				if len(tr.Group) != 2 || tr.Group[0] != s0 || tr.Group[1] != s1 || tr.Resident {
					t.Errorf("%%%s: group %v, resident %v", tr.Node.Name, tr.Group, tr.Resident)
				}
			}
		}
	}
	if found != 2 || !strings.Contains(p.String(), "allreduce %s.r0 -> gpu:0") {
		t.Errorf("want two allreduce transfers:\n%s", p)
	}
	tr, err := p.Traffic(nil)
	if err != nil {
		t.Fatal(err)
	}
	// Shares out (96 B) and back (96 B); the group: p.r1 to gpu:0, the sum
	// to gpu:1 (16 B each); s.r1 to cpu and u back (16 B each).
	want := Traffic{FromMerge: 96 + 16, ToMerge: 96 + 16, Peer: 32}
	if tr != want {
		t.Errorf("traffic %#v, want %#v", tr, want)
	}
}
