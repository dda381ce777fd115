package onnx

import "slices"

// opDef is how the importer maps one ONNX op type.
type opDef struct {
	// attrs lists the attributes the converter reads or may ignore
	// (legacy attributes without effect at inference); any other is an
	// error.
	attrs   []string
	convert func(c *nodeCtx) error
}

func (d *opDef) knows(name string) bool { return slices.Contains(d.attrs, name) }

// legacy is the attribute of opsets 1 to 5 that said which inputs an op
// could overwrite: it does not change what the op computes.
const legacy = "consumed_inputs"

// opTable maps ONNX op types (default domain) to their converters. It is
// filled once and never changed.
var opTable = map[string]*opDef{
	"Abs":     unary("abs"),
	"Exp":     unary("exp"),
	"Log":     unary("log"),
	"Neg":     unary("neg"),
	"Relu":    unary("relu"),
	"Sigmoid": unary("sigmoid"),
	"Sqrt":    unary("sqrt"),
	"Tanh":    unary("tanh"),

	"Add": binary("add"),
	"Sub": binary("sub"),
	"Mul": binary("mul"),
	"Div": binary("div"),

	"Max":  variadic("maximum", false),
	"Min":  variadic("minimum", false),
	"Sum":  variadic("add", false),
	"Mean": variadic("add", true),

	"LeakyRelu":   {attrs: []string{"alpha", legacy}, convert: convertLeakyRelu},
	"Elu":         {attrs: []string{"alpha", legacy}, convert: convertElu},
	"Selu":        {attrs: []string{"alpha", "gamma", legacy}, convert: convertSelu},
	"PRelu":       {attrs: []string{legacy}, convert: convertPRelu},
	"HardSigmoid": {attrs: []string{"alpha", "beta", legacy}, convert: convertHardSigmoid},
	"HardSwish":   {convert: convertHardSwish},
	"Softplus":    {convert: convertSoftplus},
	"Softsign":    {convert: convertSoftsign},
	"Reciprocal":  {attrs: []string{legacy}, convert: convertReciprocal},
	"Clip":        {attrs: []string{"min", "max", legacy}, convert: convertClip},

	"Softmax":    {attrs: []string{"axis"}, convert: softmax("softmax")},
	"LogSoftmax": {attrs: []string{"axis"}, convert: softmax("log_softmax")},

	"MatMul": {convert: convertMatMul},
	"Einsum": {attrs: []string{"equation"}, convert: convertEinsum},

	"NegativeLogLikelihoodLoss": {attrs: []string{"reduction", "ignore_index"}, convert: convertNLLLoss},
	"SoftmaxCrossEntropyLoss":   {attrs: []string{"reduction", "ignore_index"}, convert: convertSoftmaxCrossEntropyLoss},
	"Gemm":                      {attrs: []string{"alpha", "beta", "transA", "transB", "broadcast"}, convert: convertGemm},

	"Conv":              {attrs: []string{"auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"}, convert: convertConv},
	"MaxPool":           {attrs: []string{"auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads", "storage_order", "strides"}, convert: pool("maxpool2d")},
	"AveragePool":       {attrs: []string{"auto_pad", "ceil_mode", "count_include_pad", "dilations", "kernel_shape", "pads", "strides"}, convert: pool("avgpool2d")},
	"GlobalAveragePool": globalPool("mean"),
	"GlobalMaxPool":     globalPool("max"),
	"BatchNormalization": {attrs: []string{"epsilon", "momentum", "spatial", "is_test", "training_mode", legacy},
		convert: convertBatchNorm},

	"LayerNormalization":    {attrs: []string{"axis", "epsilon", "stash_type"}, convert: convertLayerNorm},
	"InstanceNormalization": {attrs: []string{"epsilon", legacy}, convert: convertInstanceNorm},

	"Flatten":   {attrs: []string{"axis"}, convert: convertFlatten},
	"Reshape":   {attrs: []string{"shape", "allowzero", legacy}, convert: convertReshape},
	"Squeeze":   {attrs: []string{"axes"}, convert: convertSqueeze},
	"Unsqueeze": {attrs: []string{"axes"}, convert: convertUnsqueeze},
	"Transpose": {attrs: []string{"perm"}, convert: convertTranspose},
	"Concat":    {attrs: []string{"axis"}, convert: convertConcat},

	"ReduceSum":       reduce("sum", "", 13),
	"ReduceMean":      reduce("mean", "", 18),
	"ReduceMax":       reduce("max", "", 18),
	"ReduceMin":       reduce("min", "", 18),
	"ReduceSumSquare": reduce("sum", "square", 18),
	"ReduceL1":        reduce("sum", "abs", 18),
	"ReduceL2":        reduce("sum", "l2", 18),
	"ReduceLogSum":    reduce("sum", "log", 18),
	"ReduceLogSumExp": reduce("sum", "logsumexp", 18),

	"Identity": {convert: func(c *nodeCtx) error { return c.alias(0, 0) }},
	"Dropout":  {attrs: []string{"ratio", "is_test", "seed", legacy}, convert: convertDropout},
	"Constant": {attrs: []string{"value", "value_float", "value_floats", "value_int", "value_ints", "value_string", "value_strings", "sparse_value"},
		convert: convertConstant},
	"Shape":  {attrs: []string{"start", "end"}, convert: convertShape},
	"Gather": {attrs: []string{"axis"}, convert: convertGatherData},
	"Size":   {convert: convertSize},

	"Split":    {attrs: []string{"axis", "split", "num_outputs"}, convert: convertSplit},
	"Slice":    {attrs: []string{"starts", "ends", "axes"}, convert: convertSlice},
	"Pad":      {attrs: []string{"mode", "pads", "paddings", "value"}, convert: convertPad},
	"Cast":     {attrs: []string{"to", "saturate"}, convert: convertCast},
	"CastLike": {attrs: []string{"saturate"}, convert: convertCast},

	// Recurrent nets, unrolled over the sequence (rnn.go).
	"LSTM": {attrs: lstmAttrs, convert: convertLSTM},
	"GRU":  {attrs: gruAttrs, convert: convertGRU},

	// onnx-shape: ops computed only at import time, on values known then
	// (constfold.go, fold.go), and control flow (control.go).
	"ConstantOfShape": {attrs: []string{"value"}, convert: foldOnly},
	"Range":           {convert: foldOnly},
	"ScatterND":       {attrs: []string{"reduction"}, convert: foldOnly},
	"Trilu":           {attrs: []string{"upper"}, convert: convertTrilu},
	"Mod":             {attrs: []string{"fmod"}, convert: foldOnly},
	"ReduceProd":      {attrs: []string{"axes", "keepdims", "noop_with_empty_axes"}, convert: foldOnly},
	"Floor":           {convert: foldOnly},
	"Ceil":            {convert: foldOnly},
	"If":              {attrs: []string{"then_branch", "else_branch"}, convert: convertIf},
	"Loop":            {attrs: []string{"body"}, convert: convertLoop},
	"Scan": {attrs: []string{"body", "num_scan_inputs", "scan_input_axes", "scan_input_directions", "scan_output_axes", "scan_output_directions"},
		convert: convertLoop},

	// onnx-ops: the ops of issue 10 (elementwise.go, index.go, conv.go,
	// slice.go, resize.go).
	"Pow":            {attrs: []string{"broadcast", "axis"}, convert: convertPow},
	"Erf":            unary("erf"),
	"Where":          {convert: convertWhere},
	"Equal":          comparison("equal"),
	"Less":           comparison("less"),
	"Greater":        comparison("greater"),
	"LessOrEqual":    comparison("less_equal"),
	"GreaterOrEqual": comparison("greater_equal"),
	"Not":            unary("not"),
	"And":            comparison("and"),
	"Or":             comparison("or"),
	"Xor":            comparison("xor"),
	"Expand":         {convert: convertExpand},
	"ArgMax":         argReduce("argmax"),
	"ArgMin":         argReduce("argmin"),
	"Tile":           {convert: convertTile},
	"ConvTranspose": {attrs: []string{"auto_pad", "dilations", "group", "kernel_shape", "output_padding", "output_shape", "pads", "strides"},
		convert: convertConvTranspose},
	"DepthToSpace": {attrs: []string{"blocksize", "mode"}, convert: convertDepthToSpace},
	"SpaceToDepth": {attrs: []string{"blocksize"}, convert: convertSpaceToDepth},
	"Resize": {attrs: []string{"antialias", "axes", "coordinate_transformation_mode", "cubic_coeff_a", "exclude_outside",
		"extrapolation_value", "keep_aspect_ratio_policy", "mode", "nearest_mode"}, convert: convertResize},
	"Upsample":       {attrs: []string{"mode", "scales"}, convert: convertUpsample},
	"GatherElements": {attrs: []string{"axis"}, convert: convertGatherElements},
}
