package graph

import (
	"strings"
	"testing"
)

func TestVerifyCollectives(t *testing.T) {
	head := `graph g {
  input %x: f32[N,4] @cpu
  %x.r0 = slice %x {axis=0, part=0, parts=2} : f32[N.0,4] @gpu:0
  %x.r1 = slice %x {axis=0, part=1, parts=2} : f32[N.1,4] @gpu:1
  %p.r0 = sum %x.r0 {axes=[0], keepdims=true} : f32[1,4] @gpu:0
  %p.r1 = sum %x.r1 {axes=[0], keepdims=true} : f32[1,4] @gpu:1
`
	tail := "  %y = concat %x.r0, %x.r1 {axis=0} @cpu\n  output %y, %s.r0\n}\n"
	cases := []struct{ name, body, want string }{
		{"ok", "  %s.r0 = allreduce %p.r0, %p.r1 @gpu:0\n  %s.r1 = allreduce %p.r0, %p.r1 @gpu:1\n", ""},
		{"order", "  %s.r0 = allreduce %p.r0, %p.r1 @gpu:0\n  %s.r1 = allreduce %p.r1, %p.r0 @gpu:1\n",
			"%s.r1: in the group of %s.r0, expected the operands %p.r0, %p.r1 in that order, found %p.r1, %p.r0"},
		{"op", "  %s.r0 = allreduce %p.r0, %p.r1 @gpu:0\n  %s.r1 = allreduce %p.r0, %p.r1 {op=max} @gpu:1\n",
			"%s.r1: in the group of %s.r0, expected op=sum, found op=max"},
		{"twice", "  %s.r0 = allreduce %p.r0, %p.r1 @gpu:0\n  %s.r1 = allreduce %p.r0, %p.r1 @gpu:0\n",
			"%s.r1: in the group of %s.r0, two members are on gpu:0"},
		{"elsewhere", "  %s.r0 = allreduce %p.r0, %p.r1 @gpu:0\n  %s.r1 = allreduce %p.r0, %p.r1 @gpu:2\n",
			"%s.r1: node is on gpu:2, which holds none of its operands %p.r0, %p.r1"},
		{"same device", "  %q.r0 = copy %p.r1 @gpu:0\n  %s.r0 = allreduce %p.r0, %q.r0, %p.r1 @gpu:0\n",
			"%s.r0: operands %p.r0, %q.r0, %p.r1: two are on gpu:0"},
	}
	for _, c := range cases {
		_, err := Parse("g.graph", []byte(head+c.body+tail))
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: got %v, want %q", c.name, err, c.want)
		}
	}
	// A member of another kind of op: only collectives read across devices.
	_, err := Parse("g.graph", []byte(head+"  %s.r0 = add %p.r0, %p.r1 @gpu:0\n"+tail))
	if err == nil || !strings.Contains(err.Error(), "only slice, concat, copy and allreduce read across devices") {
		t.Errorf("add across devices: %v", err)
	}
}
