package graph

import "testing"

// indexLeaves are the leaves of the index op tests.
const indexLeaves = `  input %x: f32[N,5,7]
  input %ids: i64[N,4]
  input %pos: i32[4]
  param %table: f32[10,8]
  param %flags: bool[6,2]
  param %k: i64[]
  input %dy: f32[N,4,8]
  input %col: f32[N,1]
`

// TestIndexOpTypes checks the result types of gather, gather_grad,
// expand, argmax and argmin, and what each refuses.
func TestIndexOpTypes(t *testing.T) {
	checkOpTypes(t, indexLeaves, []opCase{
		{"gather %table, %ids", "f32[N,4,8]"},
		{"gather %table, %pos {axis=1}", "f32[10,4]"},
		{"gather %table, %k", "f32[8]"},
		{"gather %x, %pos {axis=-1}", "f32[N,5,4]"},
		{"gather %x, %ids {axis=1}", "f32[N,N,4,7]"},
		{"gather %flags, %pos", "bool[4,2]"},
		{"gather %pos, %k", "i32[]"},
		{"gather_grad %ids, %dy {rows=10}", "f32[10,8]"},
		{"gather_grad %pos, %dy {axis=1, rows=6}", "f32[N,6,8]"},
		{"gather_grad %k, %table {axis=1, rows=3}", "f32[10,3,8]"},
		{"expand %col {shape=[N,6]}", "f32[N,6]"},
		{"expand %col {shape=[1,6]}", "f32[N,6]"},
		{"expand %col {shape=[2,1,6]}", "f32[2,N,6]"},
		{"expand %flags {shape=[6,2]}", "bool[6,2]"},
		{"expand %k {shape=[3]}", "i64[3]"},
		{"argmax %x {axis=1}", "i64[N,7]"},
		{"argmin %x {axis=-1, keepdims=true}", "i64[N,5,1]"},
		{"argmax %pos {axis=0}", "i64[]"},
	}, []opCase{
		{"gather %table, %x", "gather: expected i32 or i64 indices, found f32[N,5,7]"},
		{"gather %k, %pos", "gather: expected data of rank 1 or more, found i64[]"},
		{"gather %table, %pos {axis=2}", "expected axis in [-2, 1] for rank 2, found axis=2"},
		{"gather_grad %ids, %dy", "gather_grad: missing attribute rows (an integer)"},
		{"gather_grad %ids, %dy {rows=0}", "gather_grad: expected rows >= 1 (the size of the gathered axis), found rows=0"},
		{"gather_grad %ids, %dy {axis=1, rows=3}", "gather_grad: expected dy with the shape of indices i64[N,4] from axis 1, found f32[N,4,8]"},
		{"gather_grad %ids, %pos {rows=3}", "gather_grad: expected a floating-point dy, found i32[4]"},
		{"gather_grad %dy, %dy {rows=3}", "gather_grad: expected i32 or i64 indices, found f32[N,4,8]"},
		{"gather_grad %dy, %pos {rows=3}", "gather_grad: expected i32 or i64 indices"},
		{"expand %col {shape=[3,6]}", "expand: cannot broadcast f32[N,1] with f32[3,6]: dimension N against 3"},
		{"expand %table {shape=[N,8]}", "expand: shape names N, which f32[10,8] does not have"},
		{"expand %table {shape=[0,8]}", "expand: expected positive sizes in shape, found [0,8]"},
		{"expand %table", "expand: missing attribute shape"},
		{"argmax %x", "argmax: missing attribute axis"},
		{"argmax %flags {axis=0}", "argmax: expected a numeric operand, found bool[6,2]"},
		{"argmin %x {axis=3}", "expected axis in [-3, 2] for rank 3, found axis=3"},
	})
}

// TestIndexOpBatchRules checks how the batch flows through the index ops:
// parallel where each sample's result depends on that sample alone,
// reducing for gather_grad of batch-carrying indices, crossing otherwise.
func TestIndexOpBatchRules(t *testing.T) {
	src := "graph g {\n" + indexLeaves + `  input %z: f32[5,N,7]
  input %row: f32[N]
  param %m2: i32[2,3]
  %emb = gather %table, %ids
  %ax2 = gather %x, %pos {axis=2}
  %ax1 = gather %z, %m2 {axis=0}
  %ax0 = gather %z, %k {axis=0}
  %ids2 = gather %ids, %pos {axis=1}
  %alongN = gather %x, %pos {axis=0}
  %both = gather %x, %ids {axis=1}
  %egrad = gather_grad %ids, %dy {rows=10}
  %pgrad = gather_grad %pos, %dy {axis=1, rows=6}
  %zgrad = gather_grad %k, %z {axis=0, rows=3}
  %ex = expand %col {shape=[N,6]}
  %ex1 = expand %col {shape=[2,1,6]}
  %exr = expand %row {shape=[3,N]}
  %am = argmax %x {axis=1}
  %ak = argmin %z {axis=0}
  %akk = argmin %z {axis=0, keepdims=true}
  %al = argmax %x {axis=-1}
  %aN = argmax %x {axis=0}
  output %emb
}
`
	g, err := Parse("g.graph", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		want BatchFlow
	}{
		{"emb", BatchFlow{Kind: BatchParallel, Axis: 0}},
		{"ax2", BatchFlow{Kind: BatchParallel, Axis: 0}},
		{"ax1", BatchFlow{Kind: BatchParallel, Axis: 2}}, // [2,3,N,7]: shifted by indices.rank-1
		{"ax0", BatchFlow{Kind: BatchParallel, Axis: 0}}, // [N,7]: a scalar index removes the axis
		{"ids2", BatchFlow{Kind: BatchParallel, Axis: 0}},
		{"alongN", BatchFlow{Kind: BatchCrossing}},
		{"both", BatchFlow{Kind: BatchCrossing}},
		{"egrad", BatchFlow{Kind: BatchReduce}},
		{"pgrad", BatchFlow{Kind: BatchParallel, Axis: 0}},
		{"zgrad", BatchFlow{Kind: BatchParallel, Axis: 2}}, // [3,5,N,7]
		{"ex", BatchFlow{Kind: BatchParallel, Axis: 0}},
		{"ex1", BatchFlow{Kind: BatchParallel, Axis: 1}},
		{"exr", BatchFlow{Kind: BatchParallel, Axis: 1}},
		{"am", BatchFlow{Kind: BatchParallel, Axis: 0}},
		{"ak", BatchFlow{Kind: BatchParallel, Axis: 0}},
		{"akk", BatchFlow{Kind: BatchParallel, Axis: 1}},
		{"al", BatchFlow{Kind: BatchParallel, Axis: 0}},
		{"aN", BatchFlow{Kind: BatchCrossing}},
	} {
		n := g.Lookup(c.name)
		f := BatchRule(n, argBatchAxes(n))
		if f.Kind != c.want.Kind || (f.Kind == BatchParallel && f.Axis != c.want.Axis) {
			t.Errorf("%%%s (%s): %s on axis %d, want %s on axis %d", c.name, n.Op, f.Kind, f.Axis, c.want.Kind, c.want.Axis)
		}
	}
}
