package corpus

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gorgonia.org/tensor"

	"multigpu/onnx"
	"multigpu/tensorio"
)

// Manifest is the corpus's manifest.json: the PyTorch that exported it and
// its models.
type Manifest struct {
	Torch       string  `json:"torch"`
	Torchvision string  `json:"torchvision"`
	Models      []Entry `json:"models"`
	// Dir is the corpus directory, which the files of the entries are
	// relative to (set by ReadManifest).
	Dir string `json:"-"`
}

// Entry is one model of the manifest.
type Entry struct {
	Name    string  `json:"name"`
	Family  string  `json:"family"`
	Doc     string  `json:"doc"`
	File    string  `json:"file"`
	Opset   int64   `json:"opset"`
	Inputs  []Input `json:"inputs"`
	Outputs []struct {
		Name string `json:"name"`
	} `json:"outputs"`
	// Dims are the --dim bindings of named dimensions.
	Dims map[string]int64 `json:"dims"`
	// Values are the --value bindings of scalar inputs that control flow
	// depends on.
	Values map[string]float64 `json:"values"`
	// BatchAxes are the --batch-axis marks: for fixed-batch exports and
	// for inputs whose batch is not on axis 0.
	BatchAxes map[string]int `json:"batch_axes"`
	// ExplainDims, when set, replaces Dims for measuring the share of the
	// FLOPs on the replicas; MinShare is the least share a model expected
	// to pass must show.
	ExplainDims map[string]int64 `json:"explain_dims"`
	MinShare    float64          `json:"min_share"`
	// FixedBatch is the batch a fixed-batch export baked in (0: dynamic).
	FixedBatch int64 `json:"fixed_batch"`
	// Atol and Rtol bound the difference from PyTorch's outputs.
	Atol float64 `json:"atol"`
	Rtol float64 `json:"rtol"`
	// Data holds, per batch size ("1", "7"), the files of the inputs and
	// of PyTorch's outputs, by ONNX name.
	Data map[string]struct {
		Inputs  map[string]string `json:"inputs"`
		Outputs map[string]string `json:"outputs"`
	} `json:"data"`
	// Ops counts the ONNX op types of the file.
	Ops   map[string]int `json:"ops"`
	Bytes int64          `json:"bytes"`
	// Expect is "pass", or "todo: REASON" for a model known to fail.
	Expect string `json:"expect"`
}

// Input is an input of a model in the manifest.
type Input struct {
	Name  string `json:"name"`
	DType string `json:"dtype"`
	Shape []any  `json:"shape"`
}

// ReadManifest reads dir/manifest.json and checks that every model's
// expect field is "pass" or "todo: REASON".
func ReadManifest(dir string) (*Manifest, error) {
	data, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%s: %v", filepath.Join(dir, "manifest.json"), err)
	}
	for _, e := range m.Models {
		if e.Expect != "pass" && !strings.HasPrefix(e.Expect, "todo: ") {
			return nil, fmt.Errorf("manifest.json: model %s: expect is %q, expected \"pass\" or \"todo: REASON\"", e.Name, e.Expect)
		}
	}
	m.Dir = dir
	return &m, nil
}

// Import imports the model of e from the corpus directory dir with the
// --dim bindings dims (e.Dims for the reference data).
func (e Entry) Import(dir string, dims map[string]int64) (*onnx.Model, error) {
	opts, err := e.Options(dims)
	if err != nil {
		return nil, err
	}
	return onnx.ImportFile(filepath.Join(dir, e.File), opts)
}

// Options returns the import options of the model with the --dim
// bindings dims: its --batch-axis marks, and its --value bindings as
// constants of the element type the manifest gives the input.
func (e Entry) Options(dims map[string]int64) (onnx.Options, error) {
	opts := onnx.Options{DimParams: dims, BatchAxes: e.BatchAxes, Rebatch: e.FixedBatch > 0}
	for name, v := range e.Values {
		i := slices.IndexFunc(e.Inputs, func(in Input) bool { return in.Name == name })
		if i < 0 {
			return opts, fmt.Errorf("manifest.json: a value is given for %s, which is not an input", name)
		}
		var t *tensor.Dense
		switch e.Inputs[i].DType {
		case "int64":
			t = tensor.New(tensor.FromScalar(int64(v)))
		case "int32":
			t = tensor.New(tensor.FromScalar(int32(v)))
		case "float32":
			t = tensor.New(tensor.FromScalar(float32(v)))
		case "float64":
			t = tensor.New(tensor.FromScalar(v))
		default:
			return opts, fmt.Errorf("manifest.json: input %s: a value of dtype %s", name, e.Inputs[i].DType)
		}
		if opts.Constants == nil {
			opts.Constants = map[string]*tensor.Dense{}
		}
		opts.Constants[name] = t
	}
	return opts, nil
}

// Load reads, from the corpus directory dir, the inputs of m at batch b
// (by IR name, with the model's defaults for inputs the data lacks) and
// PyTorch's outputs (by ONNX name).
func (e Entry) Load(dir string, m *onnx.Model, b string) (feeds, want map[string]*tensor.Dense, err error) {
	d, ok := e.Data[b]
	if !ok {
		return nil, nil, fmt.Errorf("manifest.json: %s: no data at batch %s", e.Name, b)
	}
	feeds = map[string]*tensor.Dense{}
	for _, in := range m.Inputs {
		if f, ok := d.Inputs[in.ONNX]; ok {
			t, err := tensorio.ReadFile(filepath.Join(dir, f))
			if err != nil {
				return nil, nil, err
			}
			feeds[in.IR] = t
		} else if t := m.Defaults[in.IR]; t != nil {
			feeds[in.IR] = t
		} else {
			return nil, nil, fmt.Errorf("manifest.json: %s: no data for input %s at batch %s", e.Name, in.ONNX, b)
		}
	}
	want = map[string]*tensor.Dense{}
	for name, f := range d.Outputs {
		t, err := tensorio.ReadFile(filepath.Join(dir, f))
		if err != nil {
			return nil, nil, err
		}
		want[name] = t
	}
	return feeds, want, nil
}

// CompareOutputs compares the outputs of m that a run computed, got (by IR
// name), with want (by ONNX name, or by IR name when they come from
// another run of the model) within atol + rtol*|want| (onnx.Compare).
func CompareOutputs(m *onnx.Model, got, want map[string]*tensor.Dense, atol, rtol float64) error {
	var errs []string
	for _, o := range m.Outputs {
		w := want[o.ONNX]
		if w == nil {
			w = want[o.IR]
		}
		g := got[o.IR]
		switch {
		case w == nil:
			errs = append(errs, fmt.Sprintf("output %s: no reference", o.ONNX))
		case g == nil:
			errs = append(errs, fmt.Sprintf("output %s: not computed", o.ONNX))
		default:
			if err := onnx.Compare(g, w, atol, rtol); err != nil {
				errs = append(errs, fmt.Sprintf("output %s: %v", o.ONNX, err))
			}
		}
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

// PerFamily keeps one model of each family, in the order of the families'
// first models: the family's first, replaced by a later one e wherever
// better(e, kept) holds.
func PerFamily(models []Entry, better func(e, kept Entry) bool) []Entry {
	var out []Entry
	index := map[string]int{}
	for _, e := range models {
		i, ok := index[e.Family]
		switch {
		case !ok:
			index[e.Family] = len(out)
			out = append(out, e)
		case better(e, out[i]):
			out[i] = e
		}
	}
	return out
}
