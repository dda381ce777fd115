// Package memplan places the intermediate values of a device program in
// one arena, allocated once per compiled program: each value gets an
// offset, chosen so that no two values alive at the same time share a
// byte. Views (reshape, a slice of a prefix) share their root's bytes and
// extend its life; values a program returns, and their roots, escape the
// arena (the caller allocates them per run).
//
// Placement is greedy by size (largest first, lowest offset that fits
// among the values whose lifetimes overlap), which is what TFLite and
// XLA-style planners do for straight-line programs.
package memplan

import (
	"cmp"
	"fmt"
	"slices"
)

// Step is one node of a program. Values are numbered inputs first
// (0 to NumInputs-1), then one per step (step i defines value
// NumInputs+i).
type Step struct {
	// Reads lists the values the step reads, each defined before it.
	Reads []int
	// Bytes is the size of the value the step defines.
	Bytes int64
	// ViewOf is the value whose bytes the step's value reuses (one of
	// Reads), or -1 when the value has bytes of its own.
	ViewOf int
	// Scratch lists the sizes of buffers the step uses only while it runs.
	Scratch []int64
}

// Program is a straight-line device program.
type Program struct {
	NumInputs int
	Steps     []Step
	// Outputs are the values returned by the program.
	Outputs []int
}

// Plan is where each value of a program lives.
type Plan struct {
	// Root gives, for every value, the value whose bytes it uses: itself,
	// or for a view the root of what it views.
	Root []int
	// Offset gives the arena offset of every root placed in the arena; -1
	// for inputs, escaping roots and views.
	Offset []int64
	// Escapes reports, for every value, that its root outlives the
	// program (it is, or is viewed by, an output) and is not an input.
	Escapes []bool
	// Scratch gives the arena offset of each step's scratch buffers.
	Scratch [][]int64
	// Size is the arena's size in bytes.
	Size int64
	// Unshared is the bytes the arena's contents would take with no
	// reuse: the sum of their sizes (rounded up to the alignment).
	Unshared int64
}

// item is one block to place: a root value or a scratch buffer.
type item struct {
	bytes      int64
	start, end int // the steps during which it is alive, inclusive
	value      int // root value, or -1 for scratch
	step, k    int // for scratch: the step and index
	off        int64
}

// Make plans p's arena. Offsets and sizes are multiples of align (a power
// of two; 0 or 1 means none).
func Make(p Program, align int64) (*Plan, error) {
	if align <= 0 {
		align = 1
	}
	if align&(align-1) != 0 {
		return nil, fmt.Errorf("memplan: alignment %d is not a power of two", align)
	}
	nv := p.NumInputs + len(p.Steps)
	pl := &Plan{Root: make([]int, nv), Offset: make([]int64, nv), Escapes: make([]bool, nv), Scratch: make([][]int64, len(p.Steps))}
	end := make([]int, nv) // last step reading each root (or its definition)
	for v := range nv {
		pl.Root[v] = v
		pl.Offset[v] = -1
		end[v] = v - p.NumInputs
	}
	for i, s := range p.Steps {
		v := p.NumInputs + i
		if s.Bytes < 0 {
			return nil, fmt.Errorf("memplan: step %d: negative size %d", i, s.Bytes)
		}
		for _, r := range s.Reads {
			if r < 0 || r >= v {
				return nil, fmt.Errorf("memplan: step %d reads value %d, not defined before it", i, r)
			}
			end[pl.Root[r]] = max(end[pl.Root[r]], i)
		}
		if s.ViewOf >= 0 {
			if !slices.Contains(s.Reads, s.ViewOf) {
				return nil, fmt.Errorf("memplan: step %d views value %d, which it does not read", i, s.ViewOf)
			}
			pl.Root[v] = pl.Root[s.ViewOf]
		}
		for _, b := range s.Scratch {
			if b < 0 {
				return nil, fmt.Errorf("memplan: step %d: negative scratch size %d", i, b)
			}
		}
	}
	for _, o := range p.Outputs {
		if o < 0 || o >= nv {
			return nil, fmt.Errorf("memplan: output %d is not a value of the program", o)
		}
		if r := pl.Root[o]; r >= p.NumInputs {
			pl.Escapes[r] = true
		}
	}
	for v := range nv {
		pl.Escapes[v] = pl.Escapes[pl.Root[v]]
	}
	var items []*item
	for i, s := range p.Steps {
		v := p.NumInputs + i
		if pl.Root[v] == v && !pl.Escapes[v] && s.Bytes > 0 {
			items = append(items, &item{bytes: roundUp(s.Bytes, align), start: i, end: end[v], value: v, step: -1})
		}
		pl.Scratch[i] = make([]int64, len(s.Scratch))
		for k, b := range s.Scratch {
			pl.Scratch[i][k] = -1
			if b > 0 {
				items = append(items, &item{bytes: roundUp(b, align), start: i, end: i, value: -1, step: i, k: k})
			}
		}
	}
	place(items)
	for _, it := range items {
		pl.Size = max(pl.Size, it.off+it.bytes)
		pl.Unshared += it.bytes
		if it.value >= 0 {
			pl.Offset[it.value] = it.off
		} else {
			pl.Scratch[it.step][it.k] = it.off
		}
	}
	return pl, nil
}

func roundUp(n, align int64) int64 { return (n + align - 1) / align * align }

// place gives every item the lowest offset at which it overlaps no placed
// item alive at the same time, largest items first.
func place(items []*item) {
	order := slices.Clone(items)
	slices.SortStableFunc(order, func(a, b *item) int {
		return cmp.Or(cmp.Compare(b.bytes, a.bytes), cmp.Compare(a.start, b.start))
	})
	var placed []*item
	for _, it := range order {
		var live []*item
		for _, q := range placed {
			if q.start <= it.end && it.start <= q.end {
				live = append(live, q)
			}
		}
		slices.SortFunc(live, func(a, b *item) int { return cmp.Compare(a.off, b.off) })
		off := int64(0)
		for _, q := range live {
			if q.off >= off+it.bytes {
				break
			}
			off = max(off, q.off+q.bytes)
		}
		it.off = off
		placed = append(placed, it)
	}
}
