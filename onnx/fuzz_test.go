package onnx

import (
	"os"
	"path/filepath"
	"testing"

	"multigpu/graph"
)

// fuzzSeeds are test-data models that seed FuzzONNX when the test data is
// installed: small ones covering many ops and both opset eras.
var fuzzSeeds = []string{
	"pytorch-converted/test_Conv2d_groups/model.onnx",
	"pytorch-converted/test_BatchNorm2d_eval/model.onnx",
	"pytorch-converted/test_Linear/model.onnx",
	"pytorch-converted/test_AvgPool2d/model.onnx",
	"pytorch-converted/test_GLU/model.onnx",
	"pytorch-operator/test_operator_flatten/model.onnx",
	"node/test_reshape_negative_dim/model.onnx",
	"node/test_softmax_axis_1/model.onnx",
	"node/test_gemm_all_attributes/model.onnx",
	"node/test_reduce_mean_keepdims_example/model.onnx",
	"node/test_maxpool_2d_ceil/model.onnx",
	"node/test_constant/model.onnx",
	"node/test_clip/model.onnx",
}

// fuzzCorpusSeeds are models of the PyTorch corpus (testdata/corpus) that
// seed FuzzONNX: small ones (under 30 kB, each imports in a few
// milliseconds, as the seeds run on every go test) covering If, Resize,
// DepthToSpace, SpaceToDepth, GRU, LSTM, LayerNormalization, window
// attention and dimensions bound with --dim.
var fuzzCorpusSeeds = []string{
	"audio_wave/model.onnx",
	"vad_if/model.onnx",
	"channel_shuffle/model.onnx",
	"pixel_unshuffle/model.onnx",
	"fpn_nearest/model.onnx",
	"superres/model.onnx",
	"gru_text_classifier/model.onnx",
	"window_attention/model.onnx",
	"encoder_norm_first_opset17/model.onnx",
	"lstm_bidirectional_seq/model.onnx",
}

// FuzzONNX imports arbitrary bytes: it must never panic, and what imports
// must verify and print as text that parses back.
func FuzzONNX(f *testing.F) {
	f.Add(mlpPB())
	f.Add(convNetPB([]int64{2, -1}))
	f.Add(convNetPB([]int64{0, 12}))
	f.Add(viewPB(11, "batch"))
	f.Add(viewPB(13, 5))
	f.Add(cnnPB("batch_size"))
	for _, tc := range opCases() {
		f.Add(oneNode(tc.opset, tc.node, tc.ins, tc.inits...))
	}
	for _, s := range fuzzSeeds {
		if data, err := os.ReadFile(filepath.Join(testDataRoot(), s)); err == nil {
			f.Add(data)
		}
	}
	for _, s := range fuzzCorpusSeeds {
		data, err := os.ReadFile(filepath.Join("..", "testdata", "corpus", s))
		if err != nil {
			f.Fatalf("corpus seed: %v", err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzImport(t, data, Options{})
		// Again with the named dimensions besides the batch bound, as
		// --dim binds them, so that models with a sequence or time axis
		// get past their inputs.
		if dims := fuzzDims(data); len(dims) > 0 {
			fuzzImport(t, data, Options{DimParams: dims})
		}
	})
}

// fuzzImport imports data with opts, and again with the batch axes marked
// (as the conformance test does) when it imports: it must never panic, and
// what imports must verify and print as text that parses back.
func fuzzImport(t *testing.T, data []byte, opts Options) {
	for range 2 {
		m, err := Import(data, opts)
		if err != nil {
			if m != nil {
				t.Fatalf("a model and an error: %v", err)
			}
			return
		}
		if err := graph.Verify(m.Graph); err != nil {
			t.Fatalf("the imported graph does not verify: %v", err)
		}
		text := graph.Format(m.Graph)
		if _, err := graph.Parse("fuzz.graph", []byte(text)); err != nil {
			t.Fatalf("the imported graph does not parse back: %v\n%s", err, text)
		}
		for _, p := range m.Graph.Params() {
			if m.Weights[p.Name] == nil {
				t.Fatalf("param %%%s has no weights", p.Name)
			}
		}
		if opts.BatchAxes = BatchAxesFor(m); opts.BatchAxes == nil {
			return
		}
	}
}

// fuzzDims gives size 4 to every named dimension of the graph inputs of
// the model in data that is not on axis 0 (where the batch is).
func fuzzDims(data []byte) map[string]int64 {
	mp, err := decodeModel(data)
	if err != nil || mp.graph == nil {
		return nil
	}
	dims := map[string]int64{}
	for _, vi := range mp.graph.inputs {
		if vi.typ == nil {
			continue
		}
		for i, d := range vi.typ.dims {
			if i > 0 && d.param != "" && !(d.hasValue && d.value > 0) {
				dims[d.param] = 4
			}
		}
	}
	return dims
}
