package onnx

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"gorgonia.org/tensor"
)

// TestImportMalformed feeds broken files to the importer: each gets an
// error that says what is wrong, and none panics.
func TestImportMalformed(t *testing.T) {
	good := mlpPB()
	relu := func(g graphB) []byte { return modelPB(13, g.pb()) }
	x := valueInfoPB("x", dtFloat, "N", 3)
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "onnx: not an ONNX model: the file is empty"},
		{"garbage", []byte("this is not a model at all, just text\n"), "onnx: not a valid ONNX model (a protobuf ModelProto): ModelProto: byte 0"},
		{"npy magic", []byte("\x93NUMPY\x01\x00v\x00{'descr': '<f4'}"), "onnx: not an ONNX model: this is a NumPy .npy file"},
		{"graph text", []byte("graph g {\n}\n"), "onnx: not an ONNX model: this looks like a .graph text file"},
		{"truncated", good[:len(good)/2], "onnx: not a valid ONNX model (a protobuf ModelProto): ModelProto: byte 14: field 7 (bytes (2)) runs past the end of the data (a truncated file?)"},
		{"truncated by one byte", good[:len(good)-1], "(a truncated file?)"},
		{"no graph", pb(nil).varint(modelIRVersion, 8), "onnx: not an ONNX model: no graph (field 7)"},
		{"graph of the wrong wire type", pb(nil).varint(modelIRVersion, 8).varint(modelGraph, 3),
			"ModelProto: byte 2: field 7 (graph) has wire type varint (0), want bytes (2)"},
		{"node name of the wrong wire type", modelPB(13, pb(nil).msg(graphNode, pb(nil).varint(nodeName, 1))),
			"ModelProto.graph: GraphProto.node[0]: NodeProto: byte 0: field 3 (name) has wire type varint (0), want bytes (2)"},
		{"attribute float of the wrong wire type", modelPB(13, pb(nil).msg(graphNode, nodePB("n", "Relu", nil, nil, pb(nil).str(attrName, "alpha").varint(attrF, 1)))),
			`node "n": NodeProto.attribute[0]: attribute "alpha": AttributeProto: byte 7: field 2 (f) has wire type varint (0), want fixed32 (5)`},
		{"missing tensor", relu(graphB{name: "g", nodes: []pb{nodePB("r", "Relu", []string{"nope"}, []string{"y"})}, ins: []pb{x}, outs: []pb{valueInfoPB("y", 0)}}),
			`onnx: node "r" (Relu, opset 13): input 0 "nope" is not a graph input, an initializer or the output of an earlier node`},
		{"use before definition", relu(graphB{name: "g", nodes: []pb{
			nodePB("a", "Relu", []string{"z"}, []string{"y"}), nodePB("b", "Relu", []string{"x"}, []string{"z"})}, ins: []pb{x}, outs: []pb{valueInfoPB("y", 0)}}),
			`onnx: node "a" (Relu, opset 13): input 0 "z" is not a graph input, an initializer or the output of an earlier node`},
		{"output defined twice", relu(graphB{name: "g", nodes: []pb{
			nodePB("a", "Relu", []string{"x"}, []string{"y"}), nodePB("b", "Relu", []string{"x"}, []string{"y"})}, ins: []pb{x}, outs: []pb{valueInfoPB("y", 0)}}),
			`onnx: node "b" (Relu, opset 13): output "y" is already defined`},
		{"missing graph output", relu(graphB{name: "g", nodes: []pb{nodePB("r", "Relu", []string{"x"}, []string{"y"})}, ins: []pb{x}, outs: []pb{valueInfoPB("w", 0)}}),
			`onnx: graph output "w" is not computed by any node, input or initializer`},
		{"misshapen initializer", relu(graphB{name: "g", nodes: []pb{nodePB("r", "Add", []string{"x", "b"}, []string{"y"})},
			inits: []pb{tensorF32PB("b", []int64{2, 3}, 1, 2, 3, 4, 5)}, ins: []pb{x}, outs: []pb{valueInfoPB("y", 0)}}),
			`onnx: initializer "b": dims (2, 3) of FLOAT need 24 bytes of raw_data, found 20`},
		{"initializer of an unsupported type", relu(graphB{name: "g", nodes: []pb{nodePB("r", "Add", []string{"x", "b"}, []string{"y"})},
			inits: []pb{pb(nil).packed(tensorDims, 1).varint(tensorDataType, dtFloat16).str(tensorName, "b")}, ins: []pb{x}, outs: []pb{valueInfoPB("y", 0)}}),
			`onnx: initializer "b": data type FLOAT16 is not supported`},
		{"initializer without a name", relu(graphB{name: "g", inits: []pb{tensorF32PB("", []int64{1}, 1)}, ins: []pb{x}, outs: []pb{valueInfoPB("x", 0)}}),
			"onnx: initializer 0 has no name"},
		{"input without a shape", relu(graphB{name: "g", nodes: []pb{nodePB("r", "Relu", []string{"x"}, []string{"y"})},
			ins: []pb{pb(nil).str(valueInfoName, "x").msg(valueInfoType, pb(nil).msg(typeTensor, pb(nil).varint(tensorTypeElem, dtFloat)))}, outs: []pb{valueInfoPB("y", 0)}}),
			`onnx: input "x": no shape (unknown rank)`},
		{"input of a sequence type", relu(graphB{name: "g", ins: []pb{pb(nil).str(valueInfoName, "x").msg(valueInfoType, pb(nil).msg(typeSequence, nil))}, outs: []pb{valueInfoPB("x", 0)}}),
			`onnx: input "x": sequence types are not supported, only tensors`},
		{"dynamic inner dimension", relu(graphB{name: "g", nodes: []pb{nodePB("r", "Relu", []string{"x"}, []string{"y"})},
			ins: []pb{valueInfoPB("x", dtFloat, "N", "seq")}, outs: []pb{valueInfoPB("y", 0)}}),
			`onnx: input "x": dimension 1 is named "seq", and only the batch axis may be dynamic: bind it with --dim seq=SIZE`},
		{"declared output type disagrees", relu(graphB{name: "g", nodes: []pb{nodePB("r", "Relu", []string{"x"}, []string{"y"})},
			ins: []pb{x}, outs: []pb{valueInfoPB("y", dtFloat, "N", 4)}}),
			`onnx: graph output "y": the model declares shape [N,4], found f32[N,3]`},
		{"no default opset", pb(nil).varint(modelIRVersion, 8).msg(modelOpsetImport, pb(nil).str(opsetDomain, "ai.onnx.ml").varint(opsetVersion, 2)).msg(modelGraph, graphB{name: "g"}.pb()),
			"onnx: opset_import has no entry for the default domain (ai.onnx)"},
		{"no outputs", modelPB(13, graphB{name: "g", ins: []pb{x}}.pb()), `onnx: graph "g" has no outputs`},
		{"mask output used", relu(graphB{name: "g", nodes: []pb{nodePB("d", "Dropout", []string{"x"}, []string{"y", "m"})}, ins: []pb{x}, outs: []pb{valueInfoPB("m", 0)}}),
			`onnx: graph output "m": output 1 of node "d" (Dropout) is not supported: the mask output of Dropout`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Import(tc.data, Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v\nwant one containing %q", err, tc.want)
			}
		})
	}
}

// TestImportFileNamesFile checks that ImportFile's errors name the file.
func TestImportFileNamesFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "bad.onnx")
	if err := os.WriteFile(p, mlpPB()[:40], 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := ImportFile(p, Options{})
	if err == nil || !strings.HasPrefix(err.Error(), p+": onnx: ") {
		t.Errorf("error %v, want one starting with %q", err, p+": onnx: ")
	}
	if _, err := ImportFile(filepath.Join(dir, "missing.onnx"), Options{}); err == nil || !os.IsNotExist(err) {
		t.Errorf("missing file: %v", err)
	}
}

// TestImportUnknownFieldsSkipped checks that fields the importer does not
// know, of every wire type, are skipped as protobuf requires.
func TestImportUnknownFieldsSkipped(t *testing.T) {
	data := mlpPB()
	var extra pb
	extra = extra.varint(99, 5).f32(98, 1).str(97, "x")
	extra = protowire.AppendTag(extra, 96, protowire.Fixed64Type)
	extra = protowire.AppendFixed64(extra, 7)
	extra = protowire.AppendTag(extra, 95, protowire.StartGroupType)
	extra = protowire.AppendTag(extra, 1, protowire.VarintType)
	extra = protowire.AppendVarint(extra, 1)
	extra = protowire.AppendTag(extra, 95, protowire.EndGroupType)
	if _, err := Import(append(extra, data...), Options{}); err != nil {
		t.Fatal(err)
	}
}

func TestImportOptions(t *testing.T) {
	cases := []struct {
		name string
		opts Options
		want string
	}{
		{"batch axis for an unknown input", Options{BatchAxes: map[string]int{"nope": 0}},
			`onnx: batch axis given for "nope", which is not an input of the model (inputs: "x")`},
		{"batch axis out of range", Options{BatchAxes: map[string]int{"x": 4}}, `onnx: input "x": batch axis 4 is out of range for rank 4`},
		{"batch axis on a param", Options{BatchAxes: map[string]int{"w": 0}}, `batch axis given for "w", which is not an input`},
		{"constant for an unknown input", Options{Constants: map[string]*tensor.Dense{"nope": nil}}, `a constant is given for "nope"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Import(convNetPB([]int64{2, -1}), tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v\nwant one containing %q", err, tc.want)
			}
		})
	}
}
