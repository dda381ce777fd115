// Package conformance runs ONNX's backend test data through the importer
// and the CPU runtime, as imported and rewritten for several GPUs. It is a
// package of its own so that the importer's tests do not depend on the
// runtime.
package conformance

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"multigpu/onnx"
	"multigpu/passes/replicate"
)

// The repository's tests all accept -update (go test ./... -update); this
// package has no golden files to rewrite.
var _ = flag.Bool("update", false, "rewrite golden files (none in this package)")

// conformanceSuites are the suites of the test data the test runs.
var conformanceSuites = []string{"node", "pytorch-converted", "pytorch-operator"}

// requireTestData returns the test data's root (ONNX_TESTDATA, or where
// Debian's libonnx-testdata installs it), or skips the test (fails it when
// CI=true) when it is absent.
func requireTestData(t testing.TB) string {
	t.Helper()
	root := os.Getenv("ONNX_TESTDATA")
	if root == "" {
		root = "/usr/share/libonnx-testdata/data"
	}
	if _, err := os.Stat(filepath.Join(root, "node")); err != nil {
		msg := fmt.Sprintf("ONNX test data not found at %s (install Debian's libonnx-testdata or set ONNX_TESTDATA): %v", root, err)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return root
}

// result is what importing one test's model gave.
type result struct {
	name  string
	model *onnx.Model
	opts  onnx.Options
	err   error
	why   string // why it was not imported: "unsupported op X", ...
}

func importCase(dir string) result {
	r := result{name: filepath.Base(filepath.Dir(dir)) + "/" + filepath.Base(dir)}
	r.model, r.opts, r.err = onnx.ImportTestCase(dir)
	var ne *onnx.NodeError
	switch {
	case r.err == nil:
	case errors.As(r.err, &ne) && !slices.Contains(onnx.SupportedOps(), ne.OpType):
		r.why = "unsupported op " + ne.OpType
	case errors.As(r.err, &ne):
		r.why = "unsupported use of " + ne.OpType
	default:
		r.why = "other import error"
	}
	return r
}

// Tolerances of the numeric comparison with ONNX's expected outputs.
const (
	conformanceAtol = 1e-5
	conformanceRtol = 1e-3
)

// errNoKernel marks a model the runtime cannot run (an op or element type
// its CPU backend lacks): skipped, not failed.
type errNoKernel struct{ err error }

func (e errNoKernel) Error() string { return e.err.Error() }

// TestConformanceRun runs every model of the test data that imports on the
// CPU runtime, as it is and, where its first input has a batch of 2 or more
// on axis 0, rewritten for 2 and 3 GPUs with that axis (and axis 0 of every
// input of the same leading size) marked as the batch, and compares every
// data set's outputs with the expected ones. It reports how many ran,
// passed and were skipped, by op.
func TestConformanceRun(t *testing.T) {
	root := requireTestData(t)
	dirs, err := onnx.FindTestCases(root, conformanceSuites...)
	if err != nil {
		t.Fatal(err)
	}
	var ran, passed, rewritten, rewrittenPassed int
	type suiteCount struct{ tests, ran, passed, rewritten, rewrittenPassed int }
	suites := map[string]*suiteCount{}
	suiteOf := func(dir string) *suiteCount {
		s := filepath.Base(filepath.Dir(dir))
		if suites[s] == nil {
			suites[s] = &suiteCount{}
		}
		return suites[s]
	}
	skipped := map[string][]string{} // reason -> tests
	var failures []string
	for _, dir := range dirs {
		sc := suiteOf(dir)
		sc.tests++
		r := importCase(dir)
		if r.err != nil {
			skipped[r.why] = append(skipped[r.why], r.name)
			continue
		}
		tc, err := onnx.ReadTestCase(dir)
		if err != nil {
			skipped["unreadable test data"] = append(skipped["unreadable test data"], r.name)
			continue
		}
		ran++
		ok := true
		for _, ds := range tc.Sets {
			feeds, err := r.model.Bind(ds.Inputs)
			if err == nil {
				err = compareRun(r.model.Graph, r.model, feeds, ds.Outputs, conformanceAtol, conformanceRtol)
			}
			var nk errNoKernel
			if errors.As(err, &nk) {
				ok = false
				skipped["no runtime kernel"] = append(skipped["no runtime kernel"], r.name)
				ran--
				break
			}
			if err != nil {
				ok = false
				failures = append(failures, fmt.Sprintf("%s (%s): %v", r.name, filepath.Base(ds.Dir), err))
				sc.ran++
				break
			}
		}
		if !ok {
			continue
		}
		passed++
		sc.ran++
		sc.passed++
		axes := onnx.BatchAxesFor(r.model)
		if axes == nil {
			continue
		}
		opts := r.opts
		opts.BatchAxes = axes
		bm, err := onnx.ImportFile(tc.Model, opts)
		if err != nil {
			skipped["batch cannot be marked"] = append(skipped["batch cannot be marked"], r.name)
			continue
		}
		rewritten++
		sc.rewritten++
		good := true
		for _, gpus := range [][]int{{0, 1}, {0, 1, 2}} {
			g, _, err := replicate.Rewrite(bm.Graph, replicate.Options{GPUs: gpus})
			if err != nil {
				good = false
				failures = append(failures, fmt.Sprintf("%s: rewrite for %d GPUs: %v", r.name, len(gpus), err))
				break
			}
			for _, ds := range tc.Sets {
				feeds, err := bm.Bind(ds.Inputs)
				if err == nil {
					err = compareRun(g, bm, feeds, ds.Outputs, conformanceAtol, conformanceRtol)
				}
				if err != nil {
					good = false
					failures = append(failures, fmt.Sprintf("%s (%s) rewritten for %d GPUs: %v", r.name, filepath.Base(ds.Dir), len(gpus), err))
					break
				}
			}
			if !good {
				break
			}
		}
		if good {
			rewrittenPassed++
			sc.rewrittenPassed++
		}
	}
	for _, f := range failures {
		t.Error(f)
	}
	var b strings.Builder
	total := 0
	for _, names := range skipped {
		total += len(names)
	}
	fmt.Fprintf(&b, "%d tests: %d ran, %d passed; %d rewritten for 2 and 3 GPUs, %d passed; %d skipped\n",
		len(dirs), ran, passed, rewritten, rewrittenPassed, total)
	for _, name := range conformanceSuites {
		sc := suites[name]
		if sc == nil {
			continue
		}
		fmt.Fprintf(&b, "  %s: %d tests, %d ran, %d passed; %d rewritten, %d passed\n", name, sc.tests, sc.ran, sc.passed, sc.rewritten, sc.rewrittenPassed)
	}
	reasons := make([]string, 0, len(skipped))
	for k := range skipped {
		reasons = append(reasons, k)
	}
	sort.Slice(reasons, func(i, j int) bool {
		a, c := len(skipped[reasons[i]]), len(skipped[reasons[j]])
		return a > c || a == c && reasons[i] < reasons[j]
	})
	for _, k := range reasons {
		fmt.Fprintf(&b, "skipped, %s: %d: %s\n", k, len(skipped[k]), strings.Join(skipped[k], " "))
	}
	t.Log(b.String())
}
