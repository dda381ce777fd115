package replicate

import (
	"testing"

	"multigpu/graph"
)

// TestFoldedBatch pins the batch analysis of reshapes that fold the batch
// with other axes: a share of the batch stays one block of elements (or O
// equal blocks, the outer factor) exactly when the sizes before the batch
// in row-major order are unchanged.
func TestFoldedBatch(t *testing.T) {
	src := `graph folds {
  input %x: f32[N,4,5]
  input %s: f32[3,N,8]
  input %c: f32[4,N]
  %rows = reshape %x {shape=[N*4,5]}
  %flat = reshape %x {shape=[N*20]}
  %heads = reshape %s {shape=[3,N*2,4]}
  %ht = transpose %heads {perm=[1,0,2]}
  %seq = reshape %s {shape=[N*3,8]}
  %seqt = transpose %heads {perm=[0,2,1]}
  %merged = reshape %heads {shape=[N*3,8]}
  %back = reshape %merged {shape=[3,N,8]}
  %minor = reshape %c {shape=[N*4]}
  %mixed = add %rows, %rows
  %cols = reshape %x {shape=[N*5,4]}
  %d = dim %rows {axis=0}
  %split = reshape %x {shape=[2,N*10]}
  output %flat, %ht, %seq, %seqt, %back, %minor, %mixed, %cols, %d, %split
}`
	g, err := graph.Parse("folds.graph", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	an, err := Analyze(g, BatchNormRefuse)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		node  string
		place Placement
		axis  int
		outer int64
	}{
		{"rows", Replicated, 0, 1},
		{"flat", Replicated, 0, 1},
		{"heads", Replicated, 1, 1},
		{"ht", Replicated, 0, 1},
		{"seq", Replicated, 0, 3},
		{"seqt", Replicated, 2, 1},
		{"merged", Replicated, 0, 3},
		{"back", Replicated, 1, 1},
		{"minor", Replicated, 0, 4}, // [4,N] -> [N*4]: four blocks of each share
		{"split", Merged, 0, 0},     // [N,4,5] -> [2,N*10]: samples straddle the two rows
		{"mixed", Replicated, 0, 1},
		{"cols", Replicated, 0, 1},
		{"d", Merged, 0, 0}, // the size of a folded axis: measured on the merge device
	} {
		v := an.Of(g.Lookup(c.node))
		if v.Placement != c.place || c.place == Replicated && (v.Axis != c.axis || v.Outer != c.outer) {
			t.Errorf("%%%s: %v on axis %d, outer %d; want %v on axis %d, outer %d",
				c.node, v.Placement, v.Axis, v.Outer, c.place, c.axis, c.outer)
		}
	}
}
