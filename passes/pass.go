// Package passes defines the Pass type, a graph-to-graph rewrite, and the
// Pipeline that runs passes in order and verifies the graph between them.
// The passes themselves live in sub-packages (passes/replicate).
package passes

import (
	"fmt"

	"multigpu/graph"
)

// Pass is one rewrite of a graph. Run must not modify its input; it returns
// the rewritten graph. Options a pass needs are fixed when the Pass value
// is made (see replicate.New) and kept in Options, for display.
type Pass struct {
	// Name is a short lower-case identifier, used in errors: "replicate".
	Name string
	// Doc says what the pass does; its first line is a summary.
	Doc string
	// Options is the configuration the pass was made with, or nil.
	Options any
	// Run rewrites g, reporting warnings through r.
	Run func(g *graph.Graph, r *Reporter) (*graph.Graph, error)
}

// Diagnostic is a warning a pass reports about a graph it rewrote.
type Diagnostic struct {
	Pass string
	Msg  string
}

// String returns "pass: message".
func (d Diagnostic) String() string { return d.Pass + ": " + d.Msg }

// Reporter collects the warnings of the passes of one pipeline run.
type Reporter struct {
	pass        string
	Diagnostics []Diagnostic
}

// Warnf records a warning from the running pass.
func (r *Reporter) Warnf(format string, args ...any) {
	r.Diagnostics = append(r.Diagnostics, Diagnostic{Pass: r.pass, Msg: fmt.Sprintf(format, args...)})
}

// Pipeline is an ordered list of passes.
type Pipeline struct {
	Passes []*Pass
	// VerifyEach runs graph.Verify on the input and after every pass; a
	// failure names the pass that broke the invariant.
	VerifyEach bool
}

// PassError is an error from a pass, or a broken invariant after it.
type PassError struct {
	Pass string
	// Invariant is true when the pass returned a graph that fails Verify:
	// a bug in the pass, not in the input.
	Invariant bool
	Err       error
}

// Error returns "pass: message" (and says when an invariant broke).
func (e *PassError) Error() string {
	if e.Invariant {
		return fmt.Sprintf("%s: output fails verification (a bug in the pass): %v", e.Pass, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.Pass, e.Err)
}

// Unwrap returns the underlying error.
func (e *PassError) Unwrap() error { return e.Err }

// Run runs the passes in order on g, which it does not modify, and returns
// the final graph and the warnings the passes reported.
func (p Pipeline) Run(g *graph.Graph) (*graph.Graph, []Diagnostic, error) {
	r := &Reporter{}
	if p.VerifyEach {
		if err := graph.Verify(g); err != nil {
			return nil, nil, &PassError{Pass: "input", Err: err}
		}
	}
	for _, pass := range p.Passes {
		r.pass = pass.Name
		out, err := pass.Run(g, r)
		if err != nil {
			return nil, r.Diagnostics, &PassError{Pass: pass.Name, Err: err}
		}
		if p.VerifyEach {
			if err := graph.Verify(out); err != nil {
				return nil, r.Diagnostics, &PassError{Pass: pass.Name, Invariant: true, Err: err}
			}
		}
		g = out
	}
	return g, r.Diagnostics, nil
}
