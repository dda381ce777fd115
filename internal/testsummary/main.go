// Command testsummary reads `go test -json` on standard input and writes
// what plain `go test` writes for packages (one line each, and the output
// of the tests that failed), then a summary: how many tests and subtests
// passed, failed and were skipped, each skipped test with its reason, and
// the command that installs what the skipped ones need. .ci/test runs it.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action  string
	Package string
	Test    string
	Elapsed float64
	Output  string
}

// need is what a skipped test lacks, told by a phrase of its skip
// message, and what provides it.
type need struct {
	phrase  string // in the skip message, lower case
	what    string
	install string // a command, or "" when nothing installs it
	apt     string // the Debian package, when install is apt-get
}

// needs are the test prerequisites that a fresh machine may lack.
var needs = []need{
	{phrase: "graphviz", what: "Graphviz's dot", apt: "graphviz"},
	{phrase: "libonnx-testdata", what: "ONNX's test data", apt: "libonnx-testdata"},
	{phrase: "onnx test data", what: "ONNX's test data", apt: "libonnx-testdata"},
	{phrase: "digits.csv.gz", what: "the digits data", install: "examples/digits/fetch.sh"},
	{phrase: "openmpi-bin", what: "Open MPI's mpirun", apt: "openmpi-bin"},
	{phrase: "mpirun not found", what: "Open MPI's mpirun", apt: "openmpi-bin"},
	{phrase: "no gpu", what: "a GPU", install: "(a machine with a GPU: .ci/gpu-proof, README \"Running the GPU proof kit\")"},
}

// test is one test's or subtest's record.
type test struct {
	pkg, name string
	output    []string
	verdict   string
}

func main() {
	failed, err := summarize(os.Stdin, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testsummary:", err)
		os.Exit(2)
	}
	if failed {
		os.Exit(1)
	}
}

// summarize reads test2json events from r and writes the report to w. It
// reports whether anything failed (a test, or a package that did not
// build).
func summarize(r io.Reader, w io.Writer) (bool, error) {
	tests := map[[2]string]*test{}
	pkgOut := map[string][]string{}
	var order []*test
	var pkgFailed []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if err := json.Unmarshal(line, &e); err != nil || e.Action == "" {
			// go test writes build errors as plain text.
			fmt.Fprintln(w, string(line))
			continue
		}
		if e.Test == "" {
			switch e.Action {
			case "build-output": // a package that does not compile
				fmt.Fprint(w, e.Output)
			case "output":
				pkgOut[e.Package] = append(pkgOut[e.Package], e.Output)
			case "skip":
				fmt.Fprintf(w, "?   \t%s\t[no test files]\n", e.Package)
			case "pass":
				if out := pkgOut[e.Package]; len(out) > 0 && strings.HasPrefix(out[len(out)-1], "ok") {
					fmt.Fprint(w, out[len(out)-1])
				} else {
					fmt.Fprintf(w, "ok  \t%s\t%.3fs\n", e.Package, e.Elapsed)
				}
			case "fail":
				pkgFailed = append(pkgFailed, e.Package)
				for _, t := range order {
					if t.pkg == e.Package && t.verdict == "fail" {
						for _, o := range t.output {
							fmt.Fprint(w, o)
						}
					}
				}
				for _, o := range pkgOut[e.Package] {
					if !strings.HasPrefix(o, "=== ") {
						fmt.Fprint(w, o)
					}
				}
			}
			continue
		}
		key := [2]string{e.Package, e.Test}
		t := tests[key]
		if t == nil {
			t = &test{pkg: e.Package, name: e.Test}
			tests[key] = t
			order = append(order, t)
		}
		switch e.Action {
		case "output":
			t.output = append(t.output, e.Output)
		case "pass", "fail", "skip":
			t.verdict = e.Action
		}
	}
	if err := sc.Err(); err != nil {
		return true, err
	}
	counts := map[string]int{}
	var skipped []*test
	for _, t := range order {
		counts[t.verdict]++
		if t.verdict == "skip" {
			skipped = append(skipped, t)
		}
	}
	fmt.Fprintln(w)
	if len(skipped) > 0 {
		fmt.Fprintf(w, "skipped (%d):\n", len(skipped))
	}
	var apt, other []string
	var lacking []string
	for _, t := range skipped {
		reason := skipReason(t.output)
		fmt.Fprintf(w, "  %s %s: %s\n", t.pkg, t.name, reason)
		low := strings.ToLower(reason)
		for _, n := range needs {
			if !strings.Contains(low, n.phrase) {
				continue
			}
			if !slices.Contains(lacking, n.what) {
				lacking = append(lacking, n.what)
			}
			if n.apt != "" && !slices.Contains(apt, n.apt) {
				apt = append(apt, n.apt)
			}
			if n.install != "" && !slices.Contains(other, n.install) {
				other = append(other, n.install)
			}
			break
		}
	}
	if len(lacking) > 0 {
		var cmds []string
		if len(apt) > 0 {
			cmds = append(cmds, "apt-get install -y "+strings.Join(apt, " "))
		}
		cmds = append(cmds, other...)
		fmt.Fprintf(w, "the skipped tests lack %s; to run them, install (as root): %s\n", strings.Join(lacking, ", "), strings.Join(cmds, " && "))
	} else if len(skipped) > 0 {
		fmt.Fprintln(w, "none of the skipped tests lacks something to install (they skip by design: -short, placed models, child processes)")
	}
	for _, p := range pkgFailed {
		fmt.Fprintf(w, "FAIL %s\n", p)
	}
	// The closing line, as CI reads it.
	fmt.Fprintf(w, "%d passed, %d failed, %d skipped\n", counts["pass"], counts["fail"], counts["skip"])
	return counts["fail"] > 0 || len(pkgFailed) > 0, nil
}

// skipReason returns the message a skipped test gave: its output less the
// === and --- lines, trimmed of the file:line prefix.
func skipReason(output []string) string {
	var parts []string
	for _, o := range output {
		s := strings.TrimSpace(o)
		if s == "" || strings.HasPrefix(s, "=== ") || strings.HasPrefix(s, "--- ") {
			continue
		}
		if i := strings.Index(s, ".go:"); i >= 0 {
			if j := strings.Index(s[i:], ": "); j >= 0 {
				s = s[i+j+2:]
			}
		}
		parts = append(parts, s)
	}
	if len(parts) == 0 {
		return "(no reason given)"
	}
	return strings.Join(parts, " ")
}
