package onnx

import (
	"bytes"
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	"gorgonia.org/tensor"

	"multigpu/graph"
	"multigpu/runtime/host"
	"multigpu/tensorio"
)

// maxConstElems bounds the size of a Constant node's tensor that becomes an
// IR const (printed inline); larger ones become params with weights.
const maxConstElems = 16

// maxKnownOpset is the newest opset of the default domain whose changes
// to the supported ops the importer knows.
const maxKnownOpset = 22

// maxMadeElems bounds the tensors the importer makes itself (kernels of
// ones, padding masks), so that a hostile model cannot make it allocate
// without bound.
const maxMadeElems = 1 << 22

// fits reports whether a tensor of the given positive dimensions has at
// most maxMadeElems elements.
func fits(dims ...int64) bool {
	n := int64(1)
	for _, d := range dims {
		if d <= 0 || d > maxMadeElems/n {
			return false
		}
		n *= d
	}
	return true
}

// value is an ONNX value: a graph input, an initializer or a node output.
type value struct {
	onnx string
	ir   string      // its IR name, reserved when first seen
	node *graph.Node // the IR node, once materialized
	// data is the value's contents when they are known at import time
	// (initializers, Constant outputs): ops that need a constant operand
	// (Reshape's shape, Clip's bounds, reduction axes) read it.
	data *tensor.Dense
	// vec is the value as a small integer vector whose elements may hold
	// the batch symbol: a shape computation folded at import time.
	vec *intVec
	// fold is the value as folded at import time when it depends on the
	// batch (constfold.go); vec is set too when it is a vector of sizes.
	fold *folded
	// init marks an initializer, which materializes as a param (with its
	// index among the initializers in initIndex); other constants
	// materialize as consts when small.
	init      bool
	initIndex int
	// poison, when set, is why the value cannot be used (an output of a
	// node the importer does not compute).
	poison string
}

type importer struct {
	mp     *modelProto
	opts   Options
	opset  int64
	g      *graph.Graph
	model  *Model
	values map[string]*value
	used   map[string]bool // IR names taken
	// nextSuffix is, per base name, where fresh's search for a free
	// suffix starts.
	nextSuffix map[string]int
	weights    map[string]*tensor.Dense
	batch      graph.Dim // the batch dim of the inputs; Sym == "" when none
	// reserved holds the IR name reserved for every ONNX value (values
	// may share one value struct, as Identity's output does).
	reserved map[string]string
	// rename gives the nodes that compute ONNX outputs their outputs'
	// names when the graph is rebuilt (converters build with temporary
	// names).
	rename map[*graph.Node]string
	// outs are the graph's outputs (in the graph being built) and their
	// ONNX names.
	outs     []*graph.Node
	outNames []string
	// producers maps every node output to its node, across the graph and
	// the If branches imported so far (control.go).
	producers map[string]*nodeProto
	// convertNode is im.node, which If branches call through this field:
	// opTable refers to convertIf, so a direct call would make an
	// initialization cycle.
	convertNode func(n *nodeProto) error
	// perSample are the constants to import as inputs carrying the batch,
	// by ONNX name, with the axis that holds it (persample.go).
	perSample map[string]int
	// batchGuess is the search over the reshapes whose batch axis the
	// sizes of a bound batch leave open (ambiguous.go).
	batchGuess *guesses
}

func newImporter(mp *modelProto, opts Options, perSample map[string]int) *importer {
	im := &importer{
		mp:         mp,
		opts:       opts,
		perSample:  perSample,
		values:     map[string]*value{},
		used:       map[string]bool{},
		nextSuffix: map[string]int{},
		weights:    map[string]*tensor.Dense{},
		rename:     map[*graph.Node]string{},
		reserved:   map[string]string{},
		producers:  map[string]*nodeProto{},
	}
	im.convertNode = im.node
	return im
}

func (im *importer) run() error {
	mp := im.mp
	im.model = &Model{IRVersion: mp.irVersion, ONNXNames: map[string]string{}}
	im.model.Producer = strings.TrimSpace(mp.producerName + " " + mp.producerVer)
	im.opset = -1
	for _, op := range mp.opsets {
		if op.domain == "" || op.domain == "ai.onnx" {
			if im.opset >= 0 && im.opset != op.version {
				return fmt.Errorf("onnx: opset_import lists the default domain twice (versions %d and %d)", im.opset, op.version)
			}
			im.opset = op.version
		}
	}
	if im.opset < 0 {
		if len(mp.opsets) > 0 || mp.irVersion >= 3 {
			return fmt.Errorf("onnx: opset_import has no entry for the default domain (ai.onnx)")
		}
		im.opset = 1
		im.note("the model declares no opset (IR version %d); importing it as opset 1", mp.irVersion)
	}
	if im.opset < 1 {
		return fmt.Errorf("onnx: expected a positive opset version for the default domain, found %d", im.opset)
	}
	im.model.Opset = im.opset
	if im.opset > maxKnownOpset {
		im.note("the model uses opset %d; the importer knows the ops up to opset %d and maps newer ones as in that opset", im.opset, maxKnownOpset)
	}
	gp := mp.graph
	if gp.sparseInits > 0 {
		return fmt.Errorf("onnx: graph %q has sparse initializers, which are not supported", gp.name)
	}
	name := im.opts.Name
	if name == "" {
		name = gp.name
	}
	im.g = graph.New(graphName(name))

	if err := im.declare(gp); err != nil {
		return err
	}
	if err := im.inputs(gp); err != nil {
		return err
	}
	for _, n := range gp.nodes {
		if err := im.node(n); err != nil {
			return err
		}
	}
	if err := im.outputs(gp); err != nil {
		return err
	}
	g, m, err := im.reorder()
	if err != nil {
		return fmt.Errorf("onnx: internal error: %v", err)
	}
	for i, o := range im.outs {
		n := m[o]
		im.model.Outputs = append(im.model.Outputs, Binding{IR: n.Name, ONNX: im.outNames[i]})
		im.model.ONNXNames[n.Name] = im.outNames[i]
	}
	if err := graph.Verify(g); err != nil {
		return fmt.Errorf("onnx: internal error: the imported graph does not verify: %v", err)
	}
	im.model.Graph = g
	im.model.Weights = im.weights
	for _, p := range g.Params() {
		if name, ok := im.onnxOf(p.Name); ok {
			im.model.ONNXNames[p.Name] = name
		}
	}
	return nil
}

func (im *importer) note(format string, args ...any) {
	im.model.Notes = append(im.model.Notes, fmt.Sprintf(format, args...))
}

// onnxOf returns the ONNX name of the value whose IR name is ir, and false
// for a value the importer made (such as a kernel of ones).
func (im *importer) onnxOf(ir string) (string, bool) {
	for _, v := range im.values {
		if v.ir == ir && v.node != nil {
			return v.onnx, true
		}
	}
	return "", false
}

// graphName turns s into a graph name: an identifier.
func graphName(s string) string {
	s = sanitize(s)
	if s == "" {
		return "model"
	}
	if c := s[0]; c >= '0' && c <= '9' || c == '.' {
		s = "g_" + s
	}
	return s
}

// sanitize replaces every byte of s outside [A-Za-z0-9_.] with '_', after
// dropping such bytes at either end ("/conv1/Conv_output_0" becomes
// "conv1_Conv_output_0").
func sanitize(s string) string {
	invalid := func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.')
	}
	b := []byte(strings.TrimRightFunc(strings.TrimLeftFunc(s, invalid), invalid))
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.') {
			b[i] = '_'
		}
	}
	return string(b)
}

// fresh reserves and returns an unused IR name derived from base: the
// sanitized base, or base_2, base_3, ... when it is taken.
func (im *importer) fresh(base string) string {
	s := sanitize(base)
	if s == "" {
		s = "v"
	}
	if len(s) > 200 {
		s = s[:200]
	}
	name := s
	// Counting on from the last suffix given for s keeps a converter that
	// makes many nodes of one tag (an unrolled LSTM) linear.
	for i := max(im.nextSuffix[s], 2); im.used[name]; i++ {
		name = s + "_" + strconv.Itoa(i)
		im.nextSuffix[s] = i + 1
	}
	im.used[name] = true
	return name
}

// declare reserves IR names for every ONNX value, in the order graph
// inputs, initializers, node outputs, so that names do not depend on how
// ops are expanded, and decodes the initializers.
func (im *importer) declare(gp *graphProto) error {
	for i, t := range gp.initializers {
		if t.name == "" {
			return fmt.Errorf("onnx: initializer %d has no name", i)
		}
		if im.values[t.name] != nil {
			return fmt.Errorf("onnx: initializer %q is defined twice", t.name)
		}
		if f, empty, err := emptyTensor(t, fmt.Sprintf("initializer %q", t.name)); empty {
			if err != nil {
				return fmt.Errorf("onnx: initializer %q: %v", t.name, err)
			}
			im.values[t.name] = &value{onnx: t.name, fold: f, init: true, initIndex: i}
			continue
		}
		d, err := readTensor(t)
		if err != nil {
			return fmt.Errorf("onnx: initializer %q: %v", t.name, err)
		}
		im.values[t.name] = &value{onnx: t.name, data: d, init: true, initIndex: i}
	}
	seenInput := map[string]bool{}
	for _, vi := range gp.inputs {
		if vi.name == "" {
			return fmt.Errorf("onnx: a graph input has no name")
		}
		if seenInput[vi.name] {
			return fmt.Errorf("onnx: graph input %q is listed twice", vi.name)
		}
		seenInput[vi.name] = true
		if v := im.values[vi.name]; v != nil {
			v.ir = im.fresh(vi.name) // an initializer also listed as an input: a param
			im.reserved[vi.name] = v.ir
			continue
		}
		im.values[vi.name] = &value{onnx: vi.name, ir: im.fresh(vi.name)}
		im.reserved[vi.name] = im.values[vi.name].ir
	}
	for _, t := range gp.initializers {
		if v := im.values[t.name]; v.ir == "" {
			v.ir = im.fresh(t.name)
			im.reserved[t.name] = v.ir
		}
	}
	for _, n := range gp.nodes {
		for _, o := range n.outputs {
			if o == "" {
				continue
			}
			if im.values[o] != nil {
				return im.nodeErr(n, fmt.Errorf("output %q is already defined (by a graph input, an initializer or an earlier node)", o))
			}
			// Registered without a node: a use before its definition is
			// caught by operand.
			im.values[o] = &value{onnx: o, ir: im.fresh(o)}
			im.reserved[o] = im.values[o].ir
			im.producers[o] = n
		}
	}
	return nil
}

// emptyTensor returns a TensorProto with no elements (a dimension of 0,
// opset 11's placeholder for Resize's roi) as a folded value that ops
// folded at import time may read and that is refused where used as data,
// naming what; ok is false for a tensor with elements.
func emptyTensor(t *tensorProto, what string) (f *folded, ok bool, err error) {
	if !slices.Contains(t.dims, 0) {
		return nil, false, nil
	}
	dt, known := dtypeOf(t.dataType)
	if !known {
		return nil, true, fmt.Errorf("data type %s is not supported (the IR has FLOAT, DOUBLE, INT32, INT64 and BOOL)", dataTypeName(t.dataType))
	}
	shape := make([]int, len(t.dims))
	for i, d := range t.dims {
		if d < 0 || d > math.MaxInt32 {
			return nil, true, fmt.Errorf("dims %v: expected sizes in [0, 2^31)", t.dims)
		}
		shape[i] = int(d)
	}
	return &folded{dt: dt, shape: shape, why: fmt.Sprintf("%s is an empty tensor (shape %v), which the IR cannot hold", what, shape)}, true, nil
}

// readTensor decodes a TensorProto's data with tensorio.
func readTensor(t *tensorProto) (*tensor.Dense, error) {
	if _, ok := dtypeOf(t.dataType); !ok {
		return nil, fmt.Errorf("data type %s is not supported (the IR has FLOAT, DOUBLE, INT32, INT64 and BOOL)", dataTypeName(t.dataType))
	}
	for _, d := range t.dims {
		if d == 0 {
			return nil, fmt.Errorf("dims %v: tensors with no elements are not supported", t.dims)
		}
	}
	d, _, err := tensorio.ReadTensorProto(bytes.NewReader(t.raw))
	if err != nil {
		return nil, strip(err)
	}
	return d, nil
}

// strip removes tensorio's "read TensorProto ...: " prefix, which repeats
// what the caller's message says.
func strip(err error) error {
	s := err.Error()
	if strings.HasPrefix(s, "read TensorProto") {
		if i := strings.Index(s, ": "); i >= 0 {
			return fmt.Errorf("%s", s[i+2:])
		}
	}
	return err
}

// namedInput returns the graph input that is not an initializer whose
// ONNX or IR name is k, or nil.
func (im *importer) namedInput(gp *graphProto, k string) *valueInfo {
	for _, vi := range gp.inputs {
		if v := im.values[vi.name]; !v.init && (vi.name == k || v.ir == k) {
			return vi
		}
	}
	return nil
}

// inputs adds the graph inputs that are not initializers, marking the
// batch.
func (im *importer) inputs(gp *graphProto) error {
	axes := map[string]int{}
	for k, ax := range im.opts.BatchAxes {
		vi := im.namedInput(gp, k)
		if vi == nil {
			return fmt.Errorf("onnx: batch axis given for %q, which is not an input of the model (inputs: %s)", k, im.inputList(gp))
		}
		if _, dup := axes[vi.name]; dup {
			return fmt.Errorf("onnx: batch axis of input %q given twice", vi.name)
		}
		axes[vi.name] = ax
	}
	consts, err := im.scalarConstants(gp)
	if err != nil {
		return err
	}
	for k, d := range consts {
		v := im.values[k]
		if v == nil || v.init || !slices.ContainsFunc(gp.inputs, func(vi *valueInfo) bool { return vi.name == k }) {
			return fmt.Errorf("onnx: a constant is given for %q, which is not an input of the model (inputs: %s)", k, im.inputList(gp))
		}
		if _, ok := axes[k]; ok {
			return fmt.Errorf("onnx: input %q is given both a batch axis and a constant value", k)
		}
		if d == nil {
			return fmt.Errorf("onnx: the constant for input %q is nil", k)
		}
		if _, ok := host.DTypeOf(d); !ok {
			return fmt.Errorf("onnx: the constant for input %q has element type %v, which the IR does not have", k, d.Dtype())
		}
	}
	dims, err := im.inputDims(gp)
	if err != nil {
		return err
	}
	batchNames := im.batchNames(gp, axes, consts, dims)
	var batchFrom string
	for i, vi := range gp.inputs {
		v := im.values[vi.name]
		if v.init {
			continue
		}
		im.model.graphInputs = append(im.model.graphInputs, vi.name)
		if d := consts[vi.name]; d != nil {
			if err := checkDeclared(vi, denseType(d)); err != nil {
				return fmt.Errorf("onnx: the constant for input %q: %v", vi.name, err)
			}
			v.data, v.init, v.initIndex = d, true, len(gp.initializers)+i
			continue
		}
		t, err := im.inputType(vi, axes, dims[vi.name], batchNames)
		if err != nil {
			return err
		}
		if ax := t.BatchAxis(); ax >= 0 {
			d := t.Shape[ax]
			if im.batch.Sym != "" && im.batch.Bound != d.Bound {
				describe := func(d graph.Dim, who string) string {
					if d.Bound == 0 {
						return fmt.Sprintf("input %q has a dynamic batch", who)
					}
					return fmt.Sprintf("input %q a batch of %d", who, d.Bound)
				}
				return fmt.Errorf("onnx: the inputs disagree on the batch: %s, %s", describe(im.batch, batchFrom), describe(d, vi.name))
			}
			im.batch, batchFrom = d, vi.name
		}
		n, err := im.g.Input(v.ir, t)
		if err != nil {
			return fmt.Errorf("onnx: input %q: %v", vi.name, err)
		}
		v.node = n
		im.model.Inputs = append(im.model.Inputs, Binding{IR: v.ir, ONNX: vi.name})
		im.model.ONNXNames[v.ir] = vi.name
	}
	if im.batch.Sym == "" && len(im.model.Inputs) > 0 {
		im.note("no input has a dynamic first dimension and no batch axis was given: the model is imported without a batch and cannot be split; mark one with a batch axis (--batch-axis NAME=AXIS)")
	}
	return nil
}

func (im *importer) inputList(gp *graphProto) string {
	var names []string
	for _, vi := range gp.inputs {
		if !im.values[vi.name].init {
			names = append(names, strconv.Quote(vi.name))
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// scalarConstants returns Options.Constants with the values of
// Options.Scalars added as tensors of their inputs' declared types, by ONNX
// input name.
func (im *importer) scalarConstants(gp *graphProto) (map[string]*tensor.Dense, error) {
	out := map[string]*tensor.Dense{}
	for k, d := range im.opts.Constants {
		out[k] = d
	}
	for _, k := range slices.Sorted(maps.Keys(im.opts.Scalars)) {
		x := im.opts.Scalars[k]
		vi := im.namedInput(gp, k)
		if vi == nil {
			return nil, fmt.Errorf("onnx: a value is given for %q, which is not an input of the model (inputs: %s)", k, im.inputList(gp))
		}
		if _, dup := out[vi.name]; dup {
			return nil, fmt.Errorf("onnx: input %q is given a value twice", vi.name)
		}
		d, err := scalarTensor(vi, x)
		if err != nil {
			return nil, fmt.Errorf("onnx: the value for input %q: %v", vi.name, err)
		}
		out[vi.name] = d
	}
	return out, nil
}

// scalarTensor returns x as a tensor of the type input vi declares: a
// scalar, or a tensor of one element.
func scalarTensor(vi *valueInfo, x float64) (*tensor.Dense, error) {
	tp := vi.typ
	if tp == nil || tp.kind != "tensor" || !tp.hasShape {
		return nil, fmt.Errorf("the input declares no tensor type with a shape")
	}
	dt, ok := dtypeOf(tp.elemType)
	if !ok {
		return nil, fmt.Errorf("element type %s is not supported", dataTypeName(tp.elemType))
	}
	shape := make([]int, len(tp.dims))
	for i, d := range tp.dims {
		if !d.hasValue || d.value != 1 {
			return nil, fmt.Errorf("expected a scalar input (or one of one element), found shape %s", declaredShape(tp))
		}
		shape[i] = 1
	}
	var back any
	switch dt {
	case graph.F32:
		back = []float32{float32(x)}
	case graph.F64:
		back = []float64{x}
	case graph.Bool:
		if x != 0 && x != 1 {
			return nil, fmt.Errorf("expected 0 or 1 for a bool, found %v", x)
		}
		back = []bool{x == 1}
	default:
		if x != math.Trunc(x) || math.Abs(x) > 1<<53 || dt == graph.I32 && (x > math.MaxInt32 || x < math.MinInt32) {
			return nil, fmt.Errorf("expected an integer for %s, found %v", dt, x)
		}
		if dt == graph.I32 {
			back = []int32{int32(x)}
		} else {
			back = []int64{int64(x)}
		}
	}
	if len(shape) == 0 {
		switch b := back.(type) {
		case []float32:
			return tensor.New(tensor.FromScalar(b[0])), nil
		case []float64:
			return tensor.New(tensor.FromScalar(b[0])), nil
		case []bool:
			return tensor.New(tensor.FromScalar(b[0])), nil
		case []int32:
			return tensor.New(tensor.FromScalar(b[0])), nil
		case []int64:
			return tensor.New(tensor.FromScalar(b[0])), nil
		}
	}
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(back)), nil
}

// inputDims checks Options.InputDims and DimParams against the graph's
// inputs and returns the sizes of InputDims by ONNX input name and
// non-negative axis.
func (im *importer) inputDims(gp *graphProto) (map[string]map[int]int64, error) {
	out := map[string]map[int]int64{}
	for _, k := range slices.Sorted(maps.Keys(im.opts.InputDims)) {
		vi := im.namedInput(gp, k)
		if vi == nil {
			return nil, fmt.Errorf("onnx: a dimension size is given for %q, which is not an input of the model (inputs: %s)", k, im.inputList(gp))
		}
		if out[vi.name] != nil {
			return nil, fmt.Errorf("onnx: dimension sizes of input %q are given twice", vi.name)
		}
		r := -1
		if vi.typ != nil && vi.typ.hasShape {
			r = len(vi.typ.dims)
		}
		out[vi.name] = map[int]int64{}
		for ax, size := range im.opts.InputDims[k] {
			a := ax
			if r >= 0 && a < 0 {
				a += r
			}
			if a < 0 || r >= 0 && a >= r {
				return nil, fmt.Errorf("onnx: a size is given for axis %d of input %q, which has rank %d", ax, vi.name, r)
			}
			if size <= 0 {
				return nil, fmt.Errorf("onnx: axis %d of input %q is given size %d, expected a positive size", ax, vi.name, size)
			}
			if _, dup := out[vi.name][a]; dup {
				return nil, fmt.Errorf("onnx: axis %d of input %q is given a size twice", a, vi.name)
			}
			out[vi.name][a] = size
		}
	}
	named := map[string]bool{}
	for _, vi := range gp.inputs {
		if vi.typ == nil {
			continue
		}
		for _, d := range vi.typ.dims {
			if d.param != "" && !(d.hasValue && d.value > 0) {
				named[d.param] = true
			}
		}
	}
	for name := range im.opts.DimParams {
		if !named[name] {
			list := make([]string, 0, len(named))
			for n := range named {
				list = append(list, strconv.Quote(n))
			}
			sort.Strings(list)
			have := "none"
			if len(list) > 0 {
				have = strings.Join(list, ", ")
			}
			return nil, fmt.Errorf("onnx: dimension %q is given a size, but no input has a dimension of that name (named dimensions: %s)", name, have)
		}
	}
	return out, nil
}

// batchNames returns the names (dim_param) of the inputs' batch axes: a
// marked axis, or an unmarked input's dynamic first dimension. ONNX gives
// dimensions of one name one size, so another input's dimension of that
// name is the batch too (silero-vad's state [2, batch, 128]).
func (im *importer) batchNames(gp *graphProto, axes map[string]int, consts map[string]*tensor.Dense, dims map[string]map[int]int64) map[string]bool {
	names := map[string]bool{}
	for _, vi := range gp.inputs {
		if im.values[vi.name].init || consts[vi.name] != nil || vi.typ == nil || len(vi.typ.dims) == 0 {
			continue
		}
		ax, marked := axes[vi.name]
		if ax < 0 {
			ax += len(vi.typ.dims)
		}
		if ax < 0 || ax >= len(vi.typ.dims) {
			continue // inputType says why
		}
		d := vi.typ.dims[ax]
		_, sized := dims[vi.name][ax]
		_, bound := im.opts.DimParams[d.param]
		if d.param != "" && !bound && !(d.hasValue && d.value > 0) && !sized && (marked || ax == 0) {
			names[d.param] = true
		}
	}
	return names
}

// inputType returns the IR type of a graph input; sizes gives sizes to
// its axes (Options.InputDims), and a dimension named in batchNames is
// the batch.
func (im *importer) inputType(vi *valueInfo, axes map[string]int, sizes map[int]int64, batchNames map[string]bool) (graph.Type, error) {
	fail := func(format string, args ...any) (graph.Type, error) {
		return graph.Type{}, fmt.Errorf("onnx: input %q: %s", vi.name, fmt.Sprintf(format, args...))
	}
	tp := vi.typ
	if tp == nil {
		return fail("no type")
	}
	if tp.kind != "tensor" {
		if tp.kind == "" {
			return fail("no tensor type")
		}
		return fail("%s types are not supported, only tensors", tp.kind)
	}
	dt, ok := dtypeOf(tp.elemType)
	if !ok {
		return fail("element type %s is not supported (the IR has FLOAT, DOUBLE, INT32, INT64 and BOOL)", dataTypeName(tp.elemType))
	}
	if !tp.hasShape {
		return fail("no shape (unknown rank): the importer needs every input's rank")
	}
	r := len(tp.dims)
	batchAx, marked := axes[vi.name]
	if marked {
		if r == 0 {
			return fail("a scalar has no batch axis")
		}
		if batchAx < -r || batchAx >= r {
			return fail("batch axis %d is out of range for rank %d", batchAx, r)
		}
		if batchAx < 0 {
			batchAx += r
		}
	}
	t := graph.Type{DType: dt, Shape: make([]graph.Dim, r)}
	for i, d := range tp.dims {
		size := int64(0)
		if d.hasValue && d.value > 0 {
			size = d.value
		} else if d.param != "" {
			if v, ok := im.opts.DimParams[d.param]; ok {
				if v <= 0 {
					return fail("dimension %q is given size %d, expected a positive size", d.param, v)
				}
				size = v
			}
		}
		if v, ok := sizes[i]; ok {
			if size > 0 && v != size {
				return fail("axis %d is given size %d, but it has size %d", i, v, size)
			}
			size = v
		}
		isBatch := (marked && i == batchAx) || (!marked && i == 0 && size == 0) || (size == 0 && d.param != "" && batchNames[d.param])
		if b := t.BatchAxis(); isBatch && b >= 0 {
			return fail("dimensions %d and %d would both be the batch (a dynamic first dimension, a marked axis or a dimension named like another input's batch); give one a size with --dim %s:%d=SIZE (Options.InputDims)", b, i, vi.name, i)
		}
		switch {
		case isBatch:
			t.Shape[i] = graph.Sym(BatchSymbol, size)
		case size > 0:
			t.Shape[i] = graph.Const(size)
		default:
			// Only the batch may be symbolic: say how to bind this one.
			if d.param != "" {
				return fail("dimension %d is named %q, and only the batch axis may be dynamic: bind it with --dim %s=SIZE (Options.DimParams), or, if it is the batch, mark it with --batch-axis %s=%d (Options.BatchAxes)", i, d.param, d.param, vi.name, i)
			}
			what := "dynamic"
			if d.hasValue {
				what = fmt.Sprintf("%d", d.value)
			}
			return fail("dimension %d is %s, and only the batch axis may be dynamic: bind it with --dim %s:%d=SIZE (Options.InputDims), or, if it is the batch, mark it with --batch-axis %s=%d (Options.BatchAxes)", i, what, vi.name, i, vi.name, i)
		}
	}
	return t, nil
}

// node converts one ONNX node.
func (im *importer) node(n *nodeProto) error {
	if n.domain != "" && n.domain != "ai.onnx" {
		return im.nodeErr(n, fmt.Errorf("ops of domain %q are not supported (only the default domain ai.onnx)", n.domain))
	}
	def := opTable[n.opType]
	if def == nil {
		return im.nodeErr(n, fmt.Errorf("unsupported op %q; supported ops: %s", n.opType, strings.Join(SupportedOps(), ", ")))
	}
	c := &nodeCtx{im: im, n: n, def: def, attrs: map[string]*attrProto{}, outs: make([]bool, len(n.outputs)), start: len(im.g.Nodes)}
	if err := c.checkAttrs(); err != nil {
		return im.nodeErr(n, err)
	}
	folded, err := c.foldConst()
	if err != nil {
		return im.nodeErr(n, err)
	}
	if fold := folders[n.opType]; fold != nil && !folded {
		if folded, err = fold(c); err != nil {
			return im.nodeErr(n, err)
		}
	}
	if !folded {
		if err := def.convert(c); err != nil {
			return im.nodeErr(n, err)
		}
	}
	for k, o := range n.outputs {
		if o != "" && !c.outs[k] {
			return im.nodeErr(n, fmt.Errorf("internal error: output %d (%q) was not computed", k, o))
		}
	}
	return nil
}

func (im *importer) nodeErr(n *nodeProto, err error) error {
	e := &NodeError{Name: n.name, Index: n.index, OpType: n.opType, Opset: im.opset, Err: err}
	if len(n.outputs) > 0 {
		e.Output = n.outputs[0]
	}
	return e
}

// materialize returns v's IR node, adding a param or const for a constant.
func (im *importer) materialize(v *value) (*graph.Node, error) {
	if v.node != nil {
		return v.node, nil
	}
	if v.data == nil && v.vec != nil {
		d, err := v.vec.dense()
		if err != nil {
			return nil, fmt.Errorf("%q is a shape computed at import time, and %v", v.onnx, err)
		}
		v.data = d
	}
	if v.data == nil && v.fold != nil {
		return nil, fmt.Errorf("%q is computed at import time, and %s", v.onnx, foldedErr(v.fold))
	}
	if v.data == nil {
		return nil, fmt.Errorf("internal error: %q has neither a node nor data", v.onnx)
	}
	if ax, ok := im.perSample[v.onnx]; ok {
		n, err := im.perSampleInput(v, ax)
		if err != nil {
			return nil, err
		}
		v.node = n
		return n, nil
	}
	t := denseType(v.data)
	if !v.init {
		if elems, _ := t.Elems(); elems <= maxConstElems {
			if n, err := im.g.Const(v.ir, t, denseFloats(v.data)); err == nil {
				v.node = n
				return n, nil
			}
			// Values a const cannot hold (an i64 beyond 2^53) go to a param.
		}
	}
	n, err := im.g.Param(v.ir, t)
	if err != nil {
		return nil, fmt.Errorf("%q: %v", v.onnx, err)
	}
	v.node = n
	im.weights[v.ir] = v.data
	return n, nil
}

// outputs sets the graph's outputs and checks them against the types the
// model declares.
func (im *importer) outputs(gp *graphProto) error {
	if len(gp.outputs) == 0 {
		return fmt.Errorf("onnx: graph %q has no outputs", gp.name)
	}
	nodes := make([]*graph.Node, len(gp.outputs))
	owner := map[*graph.Node]int{} // the output named like the node
	for i, vi := range gp.outputs {
		v := im.values[vi.name]
		if v == nil || v.node == nil && v.data == nil && v.vec == nil && v.fold == nil && v.poison == "" {
			return fmt.Errorf("onnx: graph output %q is not computed by any node, input or initializer", vi.name)
		}
		if v.poison != "" {
			return fmt.Errorf("onnx: graph output %q: %s", vi.name, v.poison)
		}
		n, err := im.materialize(v)
		if err != nil {
			return fmt.Errorf("onnx: graph output %q: %v", vi.name, err)
		}
		nodes[i] = n
		if _, ok := owner[n]; !ok && im.finalName(n) == im.reserved[vi.name] {
			owner[n] = i
		}
	}
	taken := map[string]bool{}
	for _, name := range im.rename {
		taken[name] = true
	}
	var outs []*graph.Node
	seen := map[*graph.Node]bool{}
	for i, vi := range gp.outputs {
		n := nodes[i]
		o, owned := owner[n]
		if owned && o != i || !owned && seen[n] {
			// The same value listed twice, or an Identity of another
			// output: the IR wants distinct nodes, so this one gets a
			// copy, named for this output where that name is free.
			name := im.reserved[vi.name]
			if name == "" || taken[name] || im.g.Lookup(name) != nil {
				name = im.fresh(vi.name)
			}
			taken[name] = true
			var err error
			if n, err = im.g.Apply(name, "copy", []*graph.Node{n}, nil); err != nil {
				return fmt.Errorf("onnx: graph output %q: %v", vi.name, err)
			}
		} else if !owned && n.Op != graph.OpInput && n.Op != graph.OpParam && n.Op != graph.OpConst {
			// An Identity of a value computed inside the graph (a folded
			// If's output): the value takes the output's name.
			if name := im.reserved[vi.name]; name != "" && !taken[name] && im.g.Lookup(name) == nil {
				im.rename[n] = name
				taken[name] = true
			}
		}
		seen[n] = true
		if err := checkDeclared(vi, n.Type); err != nil {
			return fmt.Errorf("onnx: graph output %q: %v", vi.name, err)
		}
		outs = append(outs, n)
		im.outNames = append(im.outNames, vi.name)
	}
	im.outs = outs
	return nil
}

// finalName returns the name n will have in the rebuilt graph.
func (im *importer) finalName(n *graph.Node) string {
	if r := im.rename[n]; r != "" {
		return r
	}
	return n.Name
}

// checkDeclared compares the type a graph input or output declares with
// the type of its value: element type, rank and every concrete dimension.
func checkDeclared(vi *valueInfo, t graph.Type) error {
	tp := vi.typ
	if tp == nil || tp.kind != "tensor" {
		return nil
	}
	if tp.elemType != dtUndefined {
		if dt, ok := dtypeOf(tp.elemType); !ok || dt != t.DType {
			return fmt.Errorf("the model declares element type %s, found %s", dataTypeName(tp.elemType), t)
		}
	}
	if !tp.hasShape {
		return nil
	}
	if len(tp.dims) != t.Rank() {
		return fmt.Errorf("the model declares rank %d (%s), found %s", len(tp.dims), declaredShape(tp), t)
	}
	for i, d := range tp.dims {
		if !d.hasValue || d.value <= 0 {
			continue
		}
		if v, ok := t.Shape[i].Value(); ok && v != d.value {
			return fmt.Errorf("the model declares shape %s, found %s", declaredShape(tp), t)
		}
	}
	return nil
}

func declaredShape(tp *typeProto) string {
	parts := make([]string, len(tp.dims))
	for i, d := range tp.dims {
		switch {
		case d.hasValue:
			parts[i] = strconv.FormatInt(d.value, 10)
		case d.param != "":
			parts[i] = d.param
		default:
			parts[i] = "?"
		}
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// reorder rebuilds the graph with inputs first, then params in the order
// of the model's initializers, then everything else as it was added,
// renamed as im.rename says. It returns the new graph and the map from old
// nodes to new.
func (im *importer) reorder() (*graph.Graph, map[*graph.Node]*graph.Node, error) {
	old := im.g
	initIndex := map[string]int{}
	for _, v := range im.values {
		if v.init && v.node != nil {
			initIndex[v.ir] = v.initIndex
		}
	}
	var params []*graph.Node
	for _, n := range old.Nodes {
		if n.Op == graph.OpParam {
			params = append(params, n)
		}
	}
	sort.SliceStable(params, func(i, j int) bool {
		a, aok := initIndex[params[i].Name]
		b, bok := initIndex[params[j].Name]
		if aok != bok {
			return aok
		}
		return a < b
	})
	g := graph.New(old.Name)
	m := map[*graph.Node]*graph.Node{}
	add := func(n *graph.Node) error {
		var nn *graph.Node
		var err error
		name := n.Name
		if r := im.rename[n]; r != "" {
			name = r
		}
		switch n.Op {
		case graph.OpInput:
			nn, err = g.Input(name, n.Type)
		case graph.OpParam:
			nn, err = g.Param(name, n.Type)
		case graph.OpConst:
			nn, err = g.Const(name, n.Type, n.Data)
		default:
			args := make([]*graph.Node, len(n.Args))
			for i, a := range n.Args {
				args[i] = m[a]
			}
			nn, err = g.Apply(name, n.Op, args, n.Attrs)
		}
		m[n] = nn
		return err
	}
	for _, n := range old.Inputs() {
		if err := add(n); err != nil {
			return nil, nil, err
		}
	}
	for _, n := range params {
		if err := add(n); err != nil {
			return nil, nil, err
		}
	}
	for _, n := range old.Nodes {
		if n.Op == graph.OpInput || n.Op == graph.OpParam {
			continue
		}
		if err := add(n); err != nil {
			return nil, nil, err
		}
	}
	outs := make([]*graph.Node, len(im.outs))
	for i, o := range im.outs {
		outs[i] = m[o]
	}
	return g, m, g.SetOutputs(outs...)
}

// denseType returns the IR type of a tensor.
func denseType(d *tensor.Dense) graph.Type {
	dt, _ := host.DTypeOf(d)
	t := graph.Type{DType: dt, Shape: []graph.Dim{}}
	if d.IsScalar() {
		return t
	}
	for _, s := range d.Shape() {
		t.Shape = append(t.Shape, graph.Const(int64(s)))
	}
	return t
}

// denseFloats returns a tensor's elements as float64s (bools as 0 and 1).
func denseFloats(d *tensor.Dense) []float64 {
	var out []float64
	switch v := d.Data().(type) {
	case []float32:
		for _, e := range v {
			out = append(out, float64(e))
		}
	case []float64:
		out = append(out, v...)
	case []int32:
		for _, e := range v {
			out = append(out, float64(e))
		}
	case []int64:
		for _, e := range v {
			out = append(out, float64(e))
		}
	case []bool:
		for _, e := range v {
			out = append(out, b2f(e))
		}
	case float32:
		out = []float64{float64(v)}
	case float64:
		out = []float64{v}
	case int32:
		out = []float64{float64(v)}
	case int64:
		out = []float64{float64(v)}
	case bool:
		out = []float64{b2f(v)}
	}
	return out
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// denseInts returns the elements of an integer tensor.
func denseInts(d *tensor.Dense) ([]int64, error) {
	switch v := d.Data().(type) {
	case []int64:
		return append([]int64(nil), v...), nil
	case []int32:
		out := make([]int64, len(v))
		for i, e := range v {
			out[i] = int64(e)
		}
		return out, nil
	case int64:
		return []int64{v}, nil
	case int32:
		return []int64{int64(v)}, nil
	}
	return nil, fmt.Errorf("expected an integer tensor, found %v", d.Dtype())
}

// denseScalar returns the single element of a tensor as a float64.
func denseScalar(d *tensor.Dense) (float64, error) {
	fs := denseFloats(d)
	if len(fs) != 1 {
		return 0, fmt.Errorf("expected a single value, found shape %v", d.Shape())
	}
	return fs[0], nil
}
