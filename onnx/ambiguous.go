package onnx

import (
	"fmt"
	"strings"
)

// maxGuesses bounds the imports tried for one model while searching the
// readings of reshapes whose batch axis a bound batch leaves open.
const maxGuesses = 64

// guesses is a depth-first search over the open reshapes of an import with
// a bound batch. A fixed-batch export (batch 1, say) bakes the batch into
// reshape targets: [8,1,16] to [8,4,4] may put the batch with the 4 heads
// ([8,N*4,4]) or with the 8 positions ([N*8,4,4]). The sizes allow both;
// what comes after tells them apart, since the wrong reading fails to
// type-check downstream (a matmul that would contract the batch). Each
// import records the open reshapes in the order it meets them; a failed
// import advances the last one that has readings left, like an odometer,
// and forgets those after it.
type guesses struct {
	choice map[string]int // by the reshape's ONNX output name
	seen   []openReshape  // in this import, in order
	tries  int
}

// openReshape is a reshape with n readings.
type openReshape struct {
	name string
	n    int
}

// start begins an import.
func (g *guesses) start() {
	g.seen = g.seen[:0]
	g.tries++
}

// pick returns the reading of the reshape computing name among n.
func (g *guesses) pick(name string, n int) int {
	if g == nil {
		return 0
	}
	g.seen = append(g.seen, openReshape{name, n})
	return min(g.choice[name], n-1)
}

// next moves to the next combination of readings after a failed import,
// and reports false when there is none left to try.
func (g *guesses) next() bool {
	if g.tries >= maxGuesses {
		return false
	}
	for i := len(g.seen) - 1; i >= 0; i-- {
		o := g.seen[i]
		if g.choice[o.name]+1 < o.n {
			g.choice[o.name]++
			for _, later := range g.seen[i+1:] {
				delete(g.choice, later.name)
			}
			return true
		}
	}
	return false
}

// noteGuesses tells the user which reshapes were read by elimination,
// when the first reading failed.
func (im *importer) noteGuesses() {
	g := im.batchGuess
	if g == nil || len(g.seen) == 0 || g.tries < 2 {
		return
	}
	names := make([]string, len(g.seen))
	for i, o := range g.seen {
		names[i] = fmt.Sprintf("%q", o.name)
	}
	im.note("the batch's axis in the target of %d reshape(s) (%s) is not determined by the sizes of the bound batch; the reading used is the first that type-checks through the whole model (found on import %d)",
		len(g.seen), strings.Join(names, ", "), g.tries)
}
