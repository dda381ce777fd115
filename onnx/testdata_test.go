package onnx

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"multigpu/graph"
	"multigpu/runtime/host"
)

// testDataRoot is where Debian's libonnx-testdata installs ONNX's backend
// test data; ONNX_TESTDATA overrides it.
func testDataRoot() string {
	if r := os.Getenv("ONNX_TESTDATA"); r != "" {
		return r
	}
	return "/usr/share/libonnx-testdata/data"
}

// conformanceSuites are the suites of the test data the walk covers.
var conformanceSuites = []string{"node", "pytorch-converted", "pytorch-operator"}

// requireTestData returns the test data's root, or skips the test (fails
// it when CI=true) when it is absent.
func requireTestData(t testing.TB) string {
	t.Helper()
	root := testDataRoot()
	if _, err := os.Stat(filepath.Join(root, "node")); err != nil {
		msg := fmt.Sprintf("ONNX test data not found at %s (install Debian's libonnx-testdata or set ONNX_TESTDATA): %v", root, err)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return root
}

// walkResult is what importing one test's model gave.
type walkResult struct {
	name     string
	model    *Model
	opts     Options
	err      error
	category string // "imported", "unsupported op", "unsupported use", "other"
	op       string // the op type of the failing node
}

// importCase imports a test's model. A model that reads a shape, axes or
// other constant operand from a graph input (as ONNX's node tests do) is
// imported again with its integer inputs bound to the test's values.
func importCase(dir string) walkResult {
	r := walkResult{name: filepath.Base(filepath.Dir(dir)) + "/" + filepath.Base(dir)}
	r.model, r.opts, r.err = ImportTestCase(dir)
	var ne *NodeError
	switch {
	case r.err == nil:
		r.category = "imported"
	case errors.As(r.err, &ne) && opTable[ne.OpType] == nil:
		r.category, r.op = "unsupported op", ne.OpType
	case errors.As(r.err, &ne):
		r.category, r.op = "unsupported use", ne.OpType
	default:
		r.category = "other"
	}
	return r
}

// checkOutputTypes compares the types of m's outputs with the expected
// output tensors.
func checkOutputTypes(m *Model, outs []*graph.Node, want []*tensorData) error {
	if len(want) != len(outs) {
		return fmt.Errorf("%d outputs, the test data has %d", len(outs), len(want))
	}
	for i, o := range outs {
		w := want[i]
		if o.Type.DType != w.dtype {
			return fmt.Errorf("output %d (%s): element type %s, test data %s", i, m.Outputs[i].ONNX, o.Type.DType, w.dtype)
		}
		dims, ok := concrete(o.Type.Shape)
		if !ok {
			return fmt.Errorf("output %d (%s): type %s is not concrete", i, m.Outputs[i].ONNX, o.Type)
		}
		if fmt.Sprint(dims) != fmt.Sprint(w.shape) {
			return fmt.Errorf("output %d (%s): type %s, test data shape %v", i, m.Outputs[i].ONNX, o.Type, w.shape)
		}
	}
	return nil
}

// tensorData is the element type and shape of an expected output.
type tensorData struct {
	dtype graph.DType
	shape []int64
}

func readExpected(dir string) ([]*tensorData, error) {
	tc, err := ReadTestCase(dir)
	if err != nil {
		return nil, err
	}
	var out []*tensorData
	for _, t := range tc.Sets[0].Outputs {
		dt, ok := host.DTypeOf(t)
		if !ok {
			return nil, fmt.Errorf("unsupported element type %v", t.Dtype())
		}
		td := &tensorData{dtype: dt, shape: []int64{}}
		for _, s := range shapeOf(t) {
			td.shape = append(td.shape, int64(s))
		}
		out = append(out, td)
	}
	return out, nil
}

// TestConformanceImport imports every model of ONNX's node,
// pytorch-converted and pytorch-operator test data, counts what imports
// and what does not (by op), and checks the output types of the imported
// models against the expected outputs, as the models are and with the
// batch marked on axis 0 (where the first input's leading size is 2 or
// more).
func TestConformanceImport(t *testing.T) {
	root := requireTestData(t)
	dirs, err := FindTestCases(root, conformanceSuites...)
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) == 0 {
		t.Fatalf("no tests under %s", root)
	}
	counts := map[string]int{}
	byOp := map[string]map[string][]string{} // category -> op -> tests
	var other []string
	checked, batched, noData := 0, 0, 0
	var noDataNames []string
	for _, dir := range dirs {
		r := importCase(dir)
		counts[r.category]++
		switch r.category {
		case "imported":
		case "other":
			other = append(other, fmt.Sprintf("%s: %v", r.name, r.err))
			continue
		default:
			if byOp[r.category] == nil {
				byOp[r.category] = map[string][]string{}
			}
			msg := r.name
			if r.category == "unsupported use" {
				msg = fmt.Sprintf("%s: %v", r.name, r.err)
			}
			byOp[r.category][r.op] = append(byOp[r.category][r.op], msg)
			continue
		}
		want, err := readExpected(dir)
		if err != nil {
			noData++
			noDataNames = append(noDataNames, fmt.Sprintf("%s: %v", r.name, err))
			continue
		}
		if err := checkOutputTypes(r.model, r.model.Graph.Outputs, want); err != nil {
			t.Errorf("%s: %v", r.name, err)
			continue
		}
		checked++
		axes := BatchAxesFor(r.model)
		if axes == nil {
			continue
		}
		bopts := r.opts
		bopts.BatchAxes = axes
		bm, err := ImportFile(filepath.Join(dir, "model.onnx"), bopts)
		if err != nil {
			// A batch that cannot be marked is reported, not failed: the
			// model imports unsplittable.
			t.Logf("%s: with batch axes %v: %v", r.name, axes, err)
			continue
		}
		if err := checkOutputTypes(bm, bm.Graph.Outputs, want); err != nil {
			t.Errorf("%s: with batch axes %v: %v", r.name, axes, err)
			continue
		}
		batched++
	}
	var b strings.Builder
	fmt.Fprintf(&b, "ONNX test data under %s: %d models; %d imported (%d output types checked, %d also with the batch marked, %d without readable outputs), %d with an unsupported op, %d using a supported op in an unsupported way, %d other failures\n",
		root, len(dirs), counts["imported"], checked, batched, noData, counts["unsupported op"], counts["unsupported use"], counts["other"])
	for _, cat := range []string{"unsupported op", "unsupported use"} {
		ops := make([]string, 0, len(byOp[cat]))
		for op := range byOp[cat] {
			ops = append(ops, op)
		}
		sort.Slice(ops, func(i, j int) bool {
			a, c := len(byOp[cat][ops[i]]), len(byOp[cat][ops[j]])
			return a > c || a == c && ops[i] < ops[j]
		})
		fmt.Fprintf(&b, "%s, by op:", cat)
		for _, op := range ops {
			fmt.Fprintf(&b, " %s %d,", op, len(byOp[cat][op]))
		}
		b.WriteString("\n")
		if testing.Verbose() {
			for _, op := range ops {
				for _, n := range byOp[cat][op] {
					fmt.Fprintf(&b, "  %s: %s\n", op, n)
				}
			}
		}
	}
	for _, s := range other {
		fmt.Fprintf(&b, "other: %s\n", s)
	}
	for _, s := range noDataNames {
		fmt.Fprintf(&b, "no readable outputs: %s\n", s)
	}
	t.Log(b.String())
}
