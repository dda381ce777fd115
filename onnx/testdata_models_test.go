package onnx

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"multigpu/graph"
)

// update rewrites the models under testdata/ from their builders, and the
// golden .graph files from importing them.
var update = flag.Bool("update", false, "rewrite testdata/*.onnx and their golden .graph imports")

// weights returns n deterministic values in [-0.5, 0.5).
func weights(n int, seed uint32) []float32 {
	out := make([]float32, n)
	s := seed*2654435761 + 1
	for i := range out {
		s ^= s << 13
		s ^= s >> 17
		s ^= s << 5
		out[i] = float32(s%1000)/1000 - 0.5
	}
	return out
}

// positive returns n deterministic values in [0.5, 1.5).
func positive(n int, seed uint32) []float32 {
	out := weights(n, seed)
	for i := range out {
		out[i] += 1
	}
	return out
}

// cnnPB is a small CNN as PyTorch exports one: Conv, BatchNormalization,
// Relu, MaxPool, a depthwise Conv with asymmetric pads, an AveragePool that
// counts its padding, Reshape, Dropout, Gemm and Softmax. batch is the
// input's first dimension: a name (a dynamic batch, and the Reshape copies
// it with 0) or a size (and the Reshape's shape hard-codes it).
func cnnPB(batch any) []byte {
	shape := []int64{0, -1}
	if b, ok := batch.(int); ok {
		shape = []int64{int64(b), -1}
	}
	g := graphB{
		name: "cnn",
		nodes: []pb{
			nodePB("/conv1/Conv", "Conv", []string{"input", "conv1.weight", "conv1.bias"}, []string{"/conv1/Conv_output_0"},
				attrIntsPB("kernel_shape", 3, 3), attrIntsPB("pads", 1, 1, 1, 1)),
			nodePB("/bn1/BatchNormalization", "BatchNormalization", []string{"/conv1/Conv_output_0", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var"},
				[]string{"/bn1/BatchNormalization_output_0"}, attrFloatPB("epsilon", 1e-5), attrFloatPB("momentum", 0.9)),
			nodePB("/relu1/Relu", "Relu", []string{"/bn1/BatchNormalization_output_0"}, []string{"/relu1/Relu_output_0"}),
			nodePB("/pool1/MaxPool", "MaxPool", []string{"/relu1/Relu_output_0"}, []string{"/pool1/MaxPool_output_0"},
				attrIntsPB("kernel_shape", 2, 2), attrIntsPB("strides", 2, 2)),
			nodePB("/conv2/Conv", "Conv", []string{"/pool1/MaxPool_output_0", "conv2.weight"}, []string{"/conv2/Conv_output_0"},
				attrIntPB("group", 4), attrIntsPB("kernel_shape", 2, 2), attrIntsPB("pads", 1, 0, 0, 1)),
			nodePB("/relu2/Relu", "Relu", []string{"/conv2/Conv_output_0"}, []string{"/relu2/Relu_output_0"}),
			nodePB("/pool2/AveragePool", "AveragePool", []string{"/relu2/Relu_output_0"}, []string{"/pool2/AveragePool_output_0"},
				attrIntsPB("kernel_shape", 3, 3), attrIntsPB("pads", 1, 1, 1, 1), attrIntsPB("strides", 2, 2), attrIntPB("count_include_pad", 1)),
			nodePB("/Constant", "Constant", nil, []string{"/Constant_output_0"}, attrTensorPB("value", tensorI64PB("", []int64{2}, shape...))),
			nodePB("/Reshape", "Reshape", []string{"/pool2/AveragePool_output_0", "/Constant_output_0"}, []string{"/Reshape_output_0"}),
			nodePB("/drop/Dropout", "Dropout", []string{"/Reshape_output_0"}, []string{"/drop/Dropout_output_0"}),
			nodePB("/fc/Gemm", "Gemm", []string{"/drop/Dropout_output_0", "fc.weight", "fc.bias"}, []string{"/fc/Gemm_output_0"},
				attrFloatPB("alpha", 1), attrFloatPB("beta", 1), attrIntPB("transB", 1)),
			nodePB("/Softmax", "Softmax", []string{"/fc/Gemm_output_0"}, []string{"output"}, attrIntPB("axis", 1)),
		},
		inits: []pb{
			tensorF32PB("conv1.weight", []int64{4, 3, 3, 3}, weights(108, 1)...),
			tensorF32PB("conv1.bias", []int64{4}, weights(4, 2)...),
			tensorF32PB("bn1.weight", []int64{4}, positive(4, 3)...),
			tensorF32PB("bn1.bias", []int64{4}, weights(4, 4)...),
			tensorF32PB("bn1.running_mean", []int64{4}, weights(4, 5)...),
			tensorF32PB("bn1.running_var", []int64{4}, positive(4, 6)...),
			tensorF32PB("conv2.weight", []int64{4, 1, 2, 2}, weights(16, 7)...),
			tensorF32PB("fc.weight", []int64{10, 16}, weights(160, 8)...),
			tensorF32PB("fc.bias", []int64{10}, weights(10, 9)...),
		},
		ins:  []pb{valueInfoPB("input", dtFloat, batch, 3, 8, 8)},
		outs: []pb{valueInfoPB("output", dtFloat, batch, 10)},
	}
	return modelPB(13, g.pb())
}

// testdataModels are the models under testdata/, each with the options of
// its golden import (name.graph, or name.batch.graph with a batch axis).
var testdataModels = []struct {
	name  string
	build func() []byte
	opts  Options
	graph string
}{
	{"mlp_dynamic", mlpPB, Options{}, "mlp_dynamic.graph"},
	{"cnn_dynamic", func() []byte { return cnnPB("batch_size") }, Options{}, "cnn_dynamic.graph"},
	{"cnn_fixed", func() []byte { return cnnPB(4) }, Options{}, "cnn_fixed.graph"},
	{"cnn_fixed", func() []byte { return cnnPB(4) }, Options{BatchAxes: map[string]int{"input": 0}}, "cnn_fixed.batch.graph"},
}

// TestTestdataModels checks the models under testdata/ against their
// builders and their imports against the golden .graph files; -update
// rewrites both.
func TestTestdataModels(t *testing.T) {
	for _, tm := range testdataModels {
		path := filepath.Join("testdata", tm.name+".onnx")
		data := tm.build()
		if *update {
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test ./onnx -update to write it)", err)
		}
		if !bytes.Equal(got, data) {
			t.Errorf("%s differs from what its builder makes (run go test ./onnx -update)", path)
		}
		m, err := ImportFile(path, tm.opts)
		if err != nil {
			t.Fatal(err)
		}
		text := graph.Format(m.Graph)
		golden := filepath.Join("testdata", tm.graph)
		if *update {
			if err := os.WriteFile(golden, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (run go test ./onnx -update to write it)", err)
		}
		if string(want) != text {
			t.Errorf("importing %s with %+v:\n%s\nwant (%s):\n%s", path, tm.opts, text, golden, want)
		}
	}
}
