package onnx

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"gorgonia.org/tensor"

	"multigpu/tensorio"
)

// TestCase is one test of ONNX's backend test data (as Debian's
// libonnx-testdata installs it): a directory holding model.onnx and
// test_data_set_*/ directories of input_N.pb and output_N.pb TensorProto
// files.
type TestCase struct {
	// Name is the test's suite and directory, as "node/test_relu".
	Name string
	// Dir is the test's directory; Model the path of its model.onnx.
	Dir, Model string
	// Sets are the test's data sets, in order.
	Sets []*TestDataSet
}

// TestDataSet is one data set of a test: positional inputs (matching the
// graph's inputs, in order) and the expected outputs.
type TestDataSet struct {
	Dir             string
	Inputs, Outputs []*tensor.Dense
}

// FindTestCases returns the directories under root/suite, for each suite,
// that hold a model.onnx, sorted.
func FindTestCases(root string, suites ...string) ([]string, error) {
	var dirs []string
	for _, s := range suites {
		entries, err := os.ReadDir(filepath.Join(root, s))
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			dir := filepath.Join(root, s, e.Name())
			if _, err := os.Stat(filepath.Join(dir, "model.onnx")); err == nil {
				dirs = append(dirs, dir)
			}
		}
	}
	sort.Strings(dirs)
	return dirs, nil
}

// ReadTestCase reads a test's data sets with tensorio. The model itself is
// left to ImportFile.
func ReadTestCase(dir string) (*TestCase, error) {
	tc := &TestCase{
		Name:  filepath.Base(filepath.Dir(dir)) + "/" + filepath.Base(dir),
		Dir:   dir,
		Model: filepath.Join(dir, "model.onnx"),
	}
	sets, err := filepath.Glob(filepath.Join(dir, "test_data_set_*"))
	if err != nil {
		return nil, err
	}
	sort.Strings(sets)
	for _, sd := range sets {
		ds := &TestDataSet{Dir: sd}
		for _, kind := range []string{"input", "output"} {
			for i := 0; ; i++ {
				p := filepath.Join(sd, fmt.Sprintf("%s_%d.pb", kind, i))
				if _, err := os.Stat(p); err != nil {
					break
				}
				t, err := tensorio.ReadFile(p)
				if err != nil {
					return nil, err
				}
				if kind == "input" {
					ds.Inputs = append(ds.Inputs, t)
				} else {
					ds.Outputs = append(ds.Outputs, t)
				}
			}
		}
		tc.Sets = append(tc.Sets, ds)
	}
	if len(tc.Sets) == 0 {
		return nil, fmt.Errorf("%s: no test_data_set_* directories", dir)
	}
	return tc, nil
}

// ImportTestCase imports the model of the test in dir as the conformance
// tests do: as it is or, when it reads a shape, axes or another operand
// that must be constant from a graph input (as ONNX's node tests do), with
// the integer inputs of its first data set bound as Options.Constants. It
// returns the options it used.
func ImportTestCase(dir string) (*Model, Options, error) {
	var opts Options
	path := filepath.Join(dir, "model.onnx")
	m, err := ImportFile(path, opts)
	if err != nil && strings.Contains(err.Error(), "must be a constant") {
		if consts := integerInputs(dir); consts != nil {
			opts.Constants = consts
			m, err = ImportFile(path, opts)
		}
	}
	// Other operands that must be constant (Resize's float scales): bind
	// the input the error names, one at a time.
	for range 4 {
		name := constantNamed(err)
		if name == "" {
			break
		}
		t := testInput(dir, name)
		if t == nil || opts.Constants[name] != nil {
			break
		}
		if opts.Constants == nil {
			opts.Constants = map[string]*tensor.Dense{}
		}
		opts.Constants[name] = t
		m, err = ImportFile(path, opts)
	}
	return m, opts, err
}

// constantNamed returns the value that an error saying `input N "NAME"
// (...) must be a constant` names, or "".
func constantNamed(err error) string {
	if err == nil {
		return ""
	}
	s := err.Error()
	end := strings.Index(s, " must be a constant")
	if end < 0 {
		return ""
	}
	s = s[:end]
	i := strings.LastIndex(s, " \"")
	if i < 0 {
		return ""
	}
	s = s[i+2:]
	j := strings.Index(s, "\"")
	if j < 0 {
		return ""
	}
	return s[:j]
}

// testInput returns the tensor a test's first data set gives the graph
// input name, or nil.
func testInput(dir, name string) *tensor.Dense {
	return firstInputs(dir)[name]
}

// integerInputs returns the integer inputs of a test's first data set by
// ONNX input name, or nil.
func integerInputs(dir string) map[string]*tensor.Dense {
	out := map[string]*tensor.Dense{}
	for name, t := range firstInputs(dir) {
		if t.Dtype() == tensor.Int64 || t.Dtype() == tensor.Int32 {
			out[name] = t
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// firstInputs returns the inputs of a test's first data set by ONNX input
// name (the graph's inputs that are not initializers, in order), or nil
// when the model or the data cannot be read.
func firstInputs(dir string) map[string]*tensor.Dense {
	data, err := os.ReadFile(filepath.Join(dir, "model.onnx"))
	if err != nil {
		return nil
	}
	mp, err := decodeModel(data)
	if err != nil || mp.graph == nil {
		return nil
	}
	tc, err := ReadTestCase(dir)
	if err != nil {
		return nil
	}
	inits := map[string]bool{}
	for _, t := range mp.graph.initializers {
		inits[t.name] = true
	}
	ins := tc.Sets[0].Inputs
	out := map[string]*tensor.Dense{}
	k := 0
	for _, vi := range mp.graph.inputs {
		if inits[vi.name] {
			continue
		}
		if k >= len(ins) {
			break
		}
		out[vi.name] = ins[k]
		k++
	}
	return out
}

// Compare checks got against want elementwise: same element type and
// shape, and |got - want| <= atol + rtol*|want| for every element (NaN
// matches NaN, an infinity itself). It reports the first few differences.
func Compare(got, want *tensor.Dense, atol, rtol float64) error {
	if got.Dtype() != want.Dtype() {
		return fmt.Errorf("element type %v, want %v", got.Dtype(), want.Dtype())
	}
	gs, ws := shapeOf(got), shapeOf(want)
	if fmt.Sprint(gs) != fmt.Sprint(ws) {
		return fmt.Errorf("shape %v, want %v", gs, ws)
	}
	g, w := denseFloats(got), denseFloats(want)
	if len(g) != len(w) {
		return fmt.Errorf("%d elements, want %d", len(g), len(w))
	}
	var diffs []string
	bad := 0
	for i := range w {
		a, b := g[i], w[i]
		ok := a == b || math.IsNaN(a) && math.IsNaN(b) || math.Abs(a-b) <= atol+rtol*math.Abs(b)
		if !ok {
			bad++
			if len(diffs) < 5 {
				diffs = append(diffs, fmt.Sprintf("[%d] %g, want %g", i, a, b))
			}
		}
	}
	if bad > 0 {
		return fmt.Errorf("%d of %d elements differ (atol %g, rtol %g): %s", bad, len(w), atol, rtol, strings.Join(diffs, "; "))
	}
	return nil
}

// shapeOf returns a tensor's shape, empty for a scalar.
func shapeOf(t *tensor.Dense) []int {
	if t.IsScalar() {
		return []int{}
	}
	return append([]int(nil), t.Shape()...)
}

// BatchAxesFor returns the batch axes the conformance test marks on a
// model with all-concrete inputs: axis 0 of every input whose leading
// size equals the first input's, when that size is at least 2. It returns
// nil when the first input has no such axis.
func BatchAxesFor(m *Model) map[string]int {
	ins := m.Graph.Inputs()
	if len(ins) == 0 || ins[0].Type.Rank() == 0 {
		return nil
	}
	b, ok := ins[0].Type.Shape[0].Value()
	if !ok || b < 2 {
		return nil
	}
	axes := map[string]int{}
	for i, n := range ins {
		if n.Type.Rank() == 0 {
			continue
		}
		if v, ok := n.Type.Shape[0].Value(); ok && v == b {
			axes[m.Inputs[i].ONNX] = 0
		}
	}
	return axes
}
