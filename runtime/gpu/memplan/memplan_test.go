package memplan

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"testing"
)

var _ = flag.Bool("update", false, "rewrite golden files (none in this package)")

// chain is x -> a -> b -> c -> d, each 100 bytes: two buffers suffice.
func TestChainReuses(t *testing.T) {
	p := Program{NumInputs: 1, Outputs: []int{4}}
	for i := range 4 {
		p.Steps = append(p.Steps, Step{Reads: []int{i}, Bytes: 100, ViewOf: -1})
	}
	pl, err := Make(p, 1)
	if err != nil {
		t.Fatal(err)
	}
	if pl.Size != 200 || pl.Unshared != 300 {
		t.Errorf("Size, Unshared = %d, %d; want 200, 300", pl.Size, pl.Unshared)
	}
	if fmt.Sprint(pl.Escapes) != "[false false false false true]" || pl.Offset[4] != -1 || pl.Offset[0] != -1 {
		t.Errorf("Escapes %v, Offset %v: only the output escapes; inputs and outputs are not in the arena", pl.Escapes, pl.Offset)
	}
	checkPlan(t, p, pl, 1)
}

// A view extends its root's life, and an output that views an
// intermediate makes the intermediate escape.
func TestViews(t *testing.T) {
	p := Program{NumInputs: 1, Outputs: []int{6}, Steps: []Step{
		{Reads: []int{0}, Bytes: 64, ViewOf: -1},    // 1 = f(x)
		{Reads: []int{1}, Bytes: 64, ViewOf: 1},     // 2 = reshape 1
		{Reads: []int{0}, Bytes: 64, ViewOf: -1},    // 3 = g(x)
		{Reads: []int{2, 3}, Bytes: 64, ViewOf: -1}, // 4 = 2 + 3: 1 is alive until here
		{Reads: []int{4}, Bytes: 32, ViewOf: -1},    // 5 = h(4)
		{Reads: []int{5}, Bytes: 32, ViewOf: 5},     // 6 = reshape 5, an output
	}}
	pl, err := Make(p, 16)
	if err != nil {
		t.Fatal(err)
	}
	if pl.Root[2] != 1 || pl.Root[6] != 5 || !pl.Escapes[5] || !pl.Escapes[6] || pl.Offset[5] != -1 {
		t.Errorf("Root %v, Escapes %v, Offset %v", pl.Root, pl.Escapes, pl.Offset)
	}
	if pl.Offset[1] == pl.Offset[3] {
		t.Errorf("values 1 and 3 are alive at once but share offset %d", pl.Offset[1])
	}
	checkPlan(t, p, pl, 16)
}

func TestScratch(t *testing.T) {
	p := Program{NumInputs: 1, Outputs: []int{2}, Steps: []Step{
		{Reads: []int{0}, Bytes: 100, ViewOf: -1, Scratch: []int64{1000}},
		{Reads: []int{1}, Bytes: 100, ViewOf: -1, Scratch: []int64{1000, 0}},
	}}
	pl, err := Make(p, 256)
	if err != nil {
		t.Fatal(err)
	}
	// Step 1's scratch can reuse step 0's, but not value 1 (read by step 1).
	if pl.Scratch[0][0] != pl.Scratch[1][0] || pl.Scratch[1][1] != -1 || pl.Size != 1024+256 {
		t.Errorf("Scratch %v, Size %d", pl.Scratch, pl.Size)
	}
	checkPlan(t, p, pl, 256)
}

func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		p     Program
		align int64
		want  string
	}{
		{Program{NumInputs: 1, Steps: []Step{{Reads: []int{1}, ViewOf: -1}}}, 1, "memplan: step 0 reads value 1, not defined before it"},
		{Program{NumInputs: 1, Steps: []Step{{Reads: []int{0}, ViewOf: 1}}}, 1, "memplan: step 0 views value 1, which it does not read"},
		{Program{NumInputs: 1, Outputs: []int{3}}, 1, "memplan: output 3 is not a value of the program"},
		{Program{NumInputs: 1, Steps: []Step{{Bytes: -1, ViewOf: -1}}}, 1, "memplan: step 0: negative size -1"},
		{Program{}, 3, "memplan: alignment 3 is not a power of two"},
	} {
		if _, err := Make(tc.p, tc.align); err == nil || err.Error() != tc.want {
			t.Errorf("Make: %v, want %q", err, tc.want)
		}
	}
}

// TestRandomPrograms checks the plan's invariant on random programs:
// values (and scratch buffers) alive at the same step never share a byte.
func TestRandomPrograms(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 500 {
		p := Program{NumInputs: 1 + rng.IntN(3)}
		n := 1 + rng.IntN(30)
		for i := range n {
			v := p.NumInputs + i
			s := Step{Bytes: int64(rng.IntN(5000)), ViewOf: -1}
			for range 1 + rng.IntN(3) {
				s.Reads = append(s.Reads, rng.IntN(v))
			}
			if rng.IntN(4) == 0 {
				s.ViewOf = s.Reads[0]
			}
			if rng.IntN(3) == 0 {
				s.Scratch = []int64{int64(rng.IntN(3000))}
			}
			p.Steps = append(p.Steps, s)
		}
		for range rng.IntN(3) {
			p.Outputs = append(p.Outputs, rng.IntN(p.NumInputs+n))
		}
		align := int64(1) << rng.IntN(9)
		pl, err := Make(p, align)
		if err != nil {
			t.Fatal(err)
		}
		checkPlan(t, p, pl, align)
		if t.Failed() {
			t.Fatalf("program %+v", p)
		}
	}
}

// checkPlan checks that no two blocks of the arena alive during one step
// overlap, and that offsets are aligned and inside the arena.
func checkPlan(t *testing.T, p Program, pl *Plan, align int64) {
	t.Helper()
	type block struct {
		name       string
		off, bytes int64
		start, end int
	}
	nv := p.NumInputs + len(p.Steps)
	end := make([]int, nv)
	for v := range end {
		end[v] = v - p.NumInputs
	}
	for i, s := range p.Steps {
		for _, r := range s.Reads {
			end[pl.Root[r]] = max(end[pl.Root[r]], i)
		}
	}
	var blocks []block
	for i, s := range p.Steps {
		v := p.NumInputs + i
		if pl.Offset[v] >= 0 {
			blocks = append(blocks, block{fmt.Sprint("value ", v), pl.Offset[v], s.Bytes, i, end[v]})
		} else if pl.Root[v] == v && !pl.Escapes[v] && s.Bytes > 0 {
			t.Errorf("value %d is neither in the arena nor escaping", v)
		}
		for k, off := range pl.Scratch[i] {
			if off >= 0 {
				blocks = append(blocks, block{fmt.Sprint("scratch ", i, ".", k), off, s.Scratch[k], i, i})
			}
		}
	}
	for _, o := range p.Outputs {
		if r := pl.Root[o]; r >= p.NumInputs && pl.Offset[r] >= 0 {
			t.Errorf("output %d has its bytes in the arena", o)
		}
	}
	for i, a := range blocks {
		if a.off%align != 0 || a.off+a.bytes > pl.Size {
			t.Errorf("%s at %d (+%d) is misaligned or outside the arena of %d", a.name, a.off, a.bytes, pl.Size)
		}
		for _, b := range blocks[i+1:] {
			if a.start <= b.end && b.start <= a.end && a.off < b.off+b.bytes && b.off < a.off+a.bytes {
				t.Errorf("%s [%d,%d) and %s [%d,%d) are alive at once and overlap", a.name, a.off, a.off+a.bytes, b.name, b.off, b.off+b.bytes)
			}
		}
	}
}
