// Package onnx imports ONNX models (serialized ModelProto files) into the
// multigpu IR: a graph.Graph whose params carry the model's initializers as
// weights, with the batch axis of its inputs marked by the batch symbol.
//
// The protobuf is decoded with protowire against the field numbers of
// ONNX's published schema; only the default (ai.onnx) domain is
// supported, and each op is mapped according to the model's opset
// (SupportedOps lists the op types). An op, attribute or input form the
// importer cannot map exactly is an error that names the node, its op type
// and the opset, never an approximation.
//
// The batch: an input whose first dimension is dynamic or named
// (batch_size, N, -1) gets the batch symbol N on that axis. A model whose
// inputs are all concrete is imported without a batch, so it cannot be
// split, unless Options.BatchAxes marks one: the axis then holds N bound
// to its size (N=2) and the graph keeps its concrete shapes. Reshape
// targets are rewritten so that replicas of a split graph compute what the
// whole graph does: ONNX's 0 that copies the batch, and a hard-coded size
// that provably is the batch's own axis, become N; shape computations
// (Shape, Gather, Slice, Concat, integer arithmetic, comparisons) and every
// computation on constants are folded at import time, exactly, with N
// kept symbolic (constfold.go), and an If whose condition folds is
// replaced by its branch (control.go). Dynamic dimensions other than the
// batch need sizes (Options.DimParams, Options.InputDims).
// With a bound batch B, a constant (an initializer or a Constant's output)
// that holds one slice per sample, because it meets the batch in an
// elementwise op with size B on the batch's axis where as a param it could
// not broadcast, becomes an input carrying the batch, its data kept in
// Model.Defaults.
//
// Names: ONNX value names become IR names made of [A-Za-z0-9_.], unique
// and deterministic ("/conv1/Conv_output_0" becomes conv1_Conv_output_0);
// Model.ONNXNames maps the inputs, outputs and params back.
package onnx

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"gorgonia.org/tensor"

	"multigpu/graph"
	"multigpu/runtime/host"
)

// BatchSymbol is the name of the batch symbol the importer writes.
const BatchSymbol = "N"

// Options configures an import. The zero Options imports a model as it
// is: inputs with a dynamic or named first dimension carry the batch.
type Options struct {
	// BatchAxes marks the batch axis of graph inputs, keyed by ONNX input
	// name (the IR name works too): the axis gets the batch symbol, bound
	// to its size when the size is concrete (N=2), so the graph keeps its
	// concrete shapes and can be split. This is the command line's
	// --batch-axis NAME=AXIS. A negative axis counts from the end.
	BatchAxes map[string]int
	// Rebatch, with BatchAxes, lets the marked batch be any size: the
	// model is imported at its file's batch size, then the batch is
	// unbound (N) and every type inferred again. Shapes the exporter baked
	// in from the file's batch size become N where they are reached from
	// the marked axes (a reshape's target axis that has the elements
	// before the batch that its operand has); where that cannot be told,
	// or a baked-in size remains, the import fails naming the node. This
	// is the command line's --batch-axis with --batch.
	Rebatch bool
	// DimParams gives sizes to named dimensions (dim_param) of graph
	// inputs that are not the batch, such as a sequence length. This is
	// the command line's --dim NAME=SIZE. A name no input has is an error.
	DimParams map[string]int64
	// InputDims gives sizes to dimensions of graph inputs by input and
	// axis: InputDims["x"][1] = 128 sizes axis 1 of input x (keyed by
	// ONNX input name; the IR name works too; a negative axis counts from
	// the end). It is for unnamed dynamic dimensions, which DimParams
	// cannot name, and is the command line's --dim INPUT:AXIS=SIZE. A
	// size given for a concrete dimension must equal it.
	InputDims map[string]map[int]int64
	// Constants binds graph inputs, by ONNX name, to values known at
	// import time: they become params holding the value (or constant
	// operands, such as a Reshape's shape), not inputs, and the importer
	// folds what is computed from them (an If whose condition tests a
	// sample rate). This is the command line's --value NAME=V.
	Constants map[string]*tensor.Dense
	// Scalars binds scalar graph inputs (rank 0, or one element), by ONNX
	// name (the IR name works too), to values converted to the element
	// type the input declares (an integer type needs an integer): like
	// Constants, without building the tensor. This is the command line's
	// --value NAME=V.
	Scalars map[string]float64
	// Name, when set, replaces the graph's name.
	Name string
}

// Binding pairs the IR name of a value with its name in the ONNX model.
type Binding struct {
	IR   string
	ONNX string
}

// Model is an imported ONNX model.
type Model struct {
	// Graph is the model in the IR: inputs first, then params (the
	// initializers the graph reads, in the model's order), then the ops.
	Graph *graph.Graph
	// Weights holds the data of every param of Graph, by IR name.
	Weights map[string]*tensor.Dense
	// Defaults holds the inputs the model carries data for: per-sample
	// constants that the batch splits, by IR input name. These are
	// constants (initializers, Constant outputs) that meet the bound batch
	// in an elementwise op with the batch's size on the aligned axis,
	// imported as inputs carrying the batch rather than as params; Bind
	// fills them in, and a Note names each.
	Defaults map[string]*tensor.Dense
	// Inputs and Outputs pair the graph's inputs and outputs, in order,
	// with their ONNX names.
	Inputs, Outputs []Binding
	// ONNXNames maps the IR name of every input, output and param to its
	// ONNX name; params the importer made (kernels of ones, padding
	// masks) have none.
	ONNXNames map[string]string
	// IRVersion, Opset and Producer describe the file: its IR version,
	// the version of the default operator set, and "name version" of the
	// program that wrote it.
	IRVersion int64
	Opset     int64
	Producer  string
	// Notes are remarks about the import a user should see, such as a
	// model imported without a batch axis.
	Notes []string

	// graphInputs are the ONNX names of the graph's inputs that are not
	// initializers, in order, including those bound by Options.Constants.
	graphInputs []string
}

// ImportFile reads and imports the ONNX model in the file path. Errors name
// the file.
func ImportFile(path string, opts Options) (*Model, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m, err := Import(data, opts)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// Import imports a serialized ONNX ModelProto.
func Import(data []byte, opts Options) (*Model, error) {
	if why := knownFormat(data); why != "" {
		return nil, fmt.Errorf("onnx: not an ONNX model: %s", why)
	}
	mp, err := decodeModel(data)
	if err != nil {
		return nil, fmt.Errorf("onnx: not a valid ONNX model (a protobuf ModelProto): %w", err)
	}
	if !mp.hasGraph || mp.irVersion <= 0 {
		return nil, fmt.Errorf("onnx: not an ONNX model: %s", notModel(data, mp))
	}
	// An import that finds a per-sample constant starts again with it as
	// an input; each round adds one, so this ends.
	// An import whose bound batch leaves a reshape's batch axis open tries
	// the next reading of the open reshapes (ambiguous.go) when it fails.
	perSample := map[string]int{}
	guess := &guesses{choice: map[string]int{}}
	var first error
	for {
		im := newImporter(mp, opts, perSample)
		im.batchGuess = guess
		guess.start()
		err := im.run()
		if err == nil {
			err = im.checkPerSample()
		}
		var m *Model
		if err == nil && opts.Rebatch {
			m, err = im.rebatch()
		}
		var ps *perSampleError
		switch {
		case err == nil && opts.Rebatch:
			im.noteGuesses()
			return m, nil
		case err == nil:
			im.noteGuesses()
			return im.model, nil
		case !errors.As(err, &ps) && guess.next():
			first = cmp.Or(first, err)
			continue
		case errors.As(err, &ps):
			if _, seen := perSample[ps.name]; seen {
				return nil, cmp.Or(first, err)
			}
			perSample[ps.name] = ps.axis
			first = cmp.Or(first, err)
		default:
			// Read as per-sample data, the constants do not fit the
			// model either: the plain import's error is the one to show.
			return nil, cmp.Or(first, err)
		}
	}
}

// knownFormat names the format of data when it is one a user might pass
// by mistake.
func knownFormat(data []byte) string {
	s := string(data[:min(len(data), 16)])
	switch {
	case len(data) == 0:
		return "the file is empty"
	case strings.HasPrefix(s, "\x93NUMPY"):
		return "this is a NumPy .npy file"
	case strings.HasPrefix(s, "PK\x03\x04"):
		return "this is a zip archive (.npz?)"
	case strings.HasPrefix(strings.TrimLeft(s, " \t\r\n#"), "graph "):
		return "this looks like a .graph text file"
	}
	return ""
}

// notModel says why data, which decoded as protobuf, is not a ModelProto.
func notModel(data []byte, mp *modelProto) string {
	switch {
	case !mp.hasGraph && mp.irVersion <= 0:
		return "no ir_version and no graph (field 7)"
	case !mp.hasGraph:
		return "no graph (field 7)"
	}
	return fmt.Sprintf("ir_version %d, expected a positive version", mp.irVersion)
}

// ONNXName returns the ONNX name of the input, output or param named ir.
func (m *Model) ONNXName(ir string) (string, bool) {
	s, ok := m.ONNXNames[ir]
	return s, ok
}

// ParamsOf returns m's weights for each param of g, by IR name: g is
// m.Graph or another graph that names its params as m.Graph does (a
// rewrite of it, the same model imported at another batch), and an
// executor's SetParams takes exactly the params of its graph.
func (m *Model) ParamsOf(g *graph.Graph) map[string]*tensor.Dense {
	ps := make(map[string]*tensor.Dense, len(g.Params()))
	for _, p := range g.Params() {
		ps[p.Name] = m.Weights[p.Name]
	}
	return ps
}

// Bind pairs positional input tensors (as in the input_N.pb files of ONNX's
// test data: one per ONNX graph input that is not an initializer, in
// order) with the graph's inputs, checking their element types and shapes,
// and returns them by IR input name. Tensors for inputs that
// Options.Constants bound are skipped; inputs with Defaults (per-sample
// constants, which have no input_N.pb) get their default.
func (m *Model) Bind(inputs []*tensor.Dense) (map[string]*tensor.Dense, error) {
	if len(inputs) != len(m.graphInputs) {
		return nil, fmt.Errorf("model %s takes %d inputs, found %d", m.Graph.Name, len(m.graphInputs), len(inputs))
	}
	byName := map[string]*tensor.Dense{}
	for i, name := range m.graphInputs {
		byName[name] = inputs[i]
	}
	ins := m.Graph.Inputs()
	inputs = make([]*tensor.Dense, len(ins))
	for i := range ins {
		inputs[i] = byName[m.Inputs[i].ONNX]
		if inputs[i] == nil {
			inputs[i] = m.Defaults[m.Inputs[i].IR]
		}
	}
	sym, bound := m.Graph.Batch()
	batch := int64(-1)
	if bound > 0 {
		batch = bound
	}
	out := make(map[string]*tensor.Dense, len(ins))
	for i, n := range ins {
		t := inputs[i]
		if t == nil {
			return nil, fmt.Errorf("input %d (%s): no tensor", i, m.Inputs[i].ONNX)
		}
		dt, ok := host.DTypeOf(t)
		if !ok || dt != n.Type.DType {
			return nil, fmt.Errorf("input %d (%s): expected %s, found %v", i, m.Inputs[i].ONNX, n.Type, t.Dtype())
		}
		shape := t.Shape()
		if t.IsScalar() {
			shape = nil
		}
		if len(shape) != n.Type.Rank() {
			return nil, fmt.Errorf("input %d (%s): expected %s, found shape %v", i, m.Inputs[i].ONNX, n.Type, shape)
		}
		for ax, d := range n.Type.Shape {
			got := int64(shape[ax])
			if d.Sym != "" && d.Bound == 0 {
				if batch < 0 {
					batch = got
				}
				if got != batch {
					return nil, fmt.Errorf("input %d (%s): expected %s with %s=%d as in the other inputs, found shape %v", i, m.Inputs[i].ONNX, n.Type, sym, batch, shape)
				}
				continue
			}
			if v, _ := d.Value(); v != got {
				return nil, fmt.Errorf("input %d (%s): expected %s, found shape %v", i, m.Inputs[i].ONNX, n.Type, shape)
			}
		}
		out[n.Name] = t
	}
	return out, nil
}

// NodeError is an error about one node of an ONNX model. It prints as
//
//	onnx: node "NAME" (OpType, opset N): message
type NodeError struct {
	// Name is the node's name; Index its position in the graph and
	// Output its first output, which identify a node without a name.
	Name   string
	Index  int
	Output string
	OpType string
	Opset  int64
	Err    error
}

// Error returns the message with the node's name, op type and opset.
func (e *NodeError) Error() string {
	who := fmt.Sprintf("node %q", e.Name)
	if e.Name == "" {
		who = fmt.Sprintf("node #%d (output %q)", e.Index, e.Output)
	}
	return fmt.Sprintf("onnx: %s (%s, opset %d): %v", who, e.OpType, e.Opset, e.Err)
}

// Unwrap returns the underlying error.
func (e *NodeError) Unwrap() error { return e.Err }

// SupportedOps returns the ONNX op types the importer maps, sorted.
func SupportedOps() []string {
	names := make([]string, 0, len(opTable))
	for n := range opTable {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// dtypeOf maps an ONNX TensorProto data type to the IR's.
func dtypeOf(t int64) (graph.DType, bool) {
	switch t {
	case dtFloat:
		return graph.F32, true
	case dtDouble:
		return graph.F64, true
	case dtInt32:
		return graph.I32, true
	case dtInt64:
		return graph.I64, true
	case dtBool:
		return graph.Bool, true
	}
	return 0, false
}
