package onnx

import (
	"math"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

// TestImportNewOps covers the converters of issue 10's ops: the IR they
// produce, their opset variants and what they refuse.
func TestImportNewOps(t *testing.T) {
	xe := func(name string, elem int64, dims ...any) pb { return valueInfoPB(name, elem, dims...) }
	f32 := func(name string, dims []int64, v ...float32) pb { return tensorF32PB(name, dims, v...) }
	i64 := func(name string, dims []int64, v ...int64) pb { return tensorI64PB(name, dims, v...) }
	node := func(op string, ins []string, attrs ...pb) pb { return nodePB("n", op, ins, []string{"y"}, attrs...) }
	runOpCases(t, []opCase{
		// Pow: one float type directly; otherwise through f64, as ONNX Runtime computes.
		{name: "pow constant exponent", opset: 13, node: node("Pow", []string{"x", "e"}), ins: x4("N", 3),
			inits: []pb{i64("e", nil, 2)}, want: []string{"const %y_exponent: f32[] = 2", "%y = pow %x, %y_exponent : f32[N,3]"}},
		{name: "pow integer exponent input", opset: 15, node: node("Pow", []string{"x", "e"}), ins: []pb{x4("N", 3)[0], xe("e", dtInt64, 3)},
			want: []string{"%y_cast = cast %x {to=f64} : f64[N,3]", "%y_cast_2 = cast %e {to=f64} : f64[3]", "%y = cast %y_pow {to=f32} : f32[N,3]"}},
		{name: "pow integer base", opset: 13, node: node("Pow", []string{"x", "x"}), ins: []pb{xe("x", dtInt32, "N", 3)},
			want: []string{"%y = cast %y_pow {to=i32} : i32[N,3]"}},
		{name: "pow opset 1 broadcast axis", opset: 1, node: node("Pow", []string{"x", "e"}, attrIntPB("broadcast", 1), attrIntPB("axis", 1)),
			ins: x4("N", 3, 2), inits: []pb{f32("e", []int64{3}, 1, 2, 3)}, want: []string{"%y = pow %x, %y_reshape : f32[N,3,2]"}},
		{name: "erf", opset: 13, node: node("Erf", []string{"x"}), ins: x4("N", 3), want: []string{"%y = erf %x : f32[N,3]"}},
		// Comparisons and logic.
		{name: "equal", opset: 13, node: node("Equal", []string{"x", "b"}), ins: []pb{xe("x", dtInt64, "N", 3), xe("b", dtInt64, 3)},
			want: []string{"%y = equal %x, %b : bool[N,3]"}},
		{name: "less of different types", opset: 13, node: node("Less", []string{"x", "b"}), ins: []pb{x4("N", 3)[0], xe("b", dtInt64, 3)},
			errSub: "operands of different element types (f32[N,3], i64[3])"},
		{name: "greater opset 1 without broadcast", opset: 1, node: node("Greater", []string{"x", "b"}), ins: []pb{x4("N", 3)[0], xe("b", dtFloat, 3)},
			want: []string{"%y = greater %x, %b : bool[N,3]"}},
		{name: "greater_equal", opset: 16, node: node("GreaterOrEqual", []string{"x", "x"}), ins: x4("N", 3), want: []string{"%y = greater_equal %x, %x"}},
		{name: "less_equal", opset: 16, node: node("LessOrEqual", []string{"x", "x"}), ins: x4("N", 3), want: []string{"%y = less_equal %x, %x"}},
		{name: "not", opset: 1, node: node("Not", []string{"x"}), ins: []pb{xe("x", dtBool, "N", 3)}, want: []string{"%y = not %x : bool[N,3]"}},
		{name: "and xor or", opset: 7, node: node("Xor", []string{"x", "b"}), ins: []pb{xe("x", dtBool, "N", 3), xe("b", dtBool, 1)},
			want: []string{"%y = xor %x, %b : bool[N,3]"}},
		{name: "where", opset: 16, node: node("Where", []string{"c", "x", "b"}), ins: []pb{xe("c", dtBool, "N", 1), x4("N", 3)[0], xe("b", dtFloat, 3)},
			want: []string{"%y = where %c, %x, %b : f32[N,3]"}},
		// Cast and CastLike.
		{name: "cast opset 1 spells the type", opset: 1, node: node("Cast", []string{"x"}, attrStringPB("to", "INT32")), ins: x4("N", 3),
			want: []string{"%y = cast %x {to=i32} : i32[N,3]"}},
		{name: "cast opset 1 to a type the IR lacks", opset: 1, node: node("Cast", []string{"x"}, attrStringPB("to", "FLOAT16")), ins: x4("N", 3),
			errSub: `conversion from f32 to "FLOAT16" is not supported`},
		{name: "castlike", opset: 15, node: node("CastLike", []string{"x", "l"}), ins: x4("N", 3), inits: []pb{i64("l", nil, 0)},
			want: []string{"%y = cast %x {to=i64} : i64[N,3]"}},
		// Gather of data, Expand, ArgMax and ArgMin.
		{name: "gather a column", opset: 13, node: node("Gather", []string{"x", "i"}, attrIntPB("axis", -1)), ins: x4("N", 3, 4),
			inits: []pb{i64("i", nil, -1)}, want: []string{"%y = gather %x, %i {axis=2} : f32[N,3]"}},
		{name: "gather an embedding", opset: 13, node: node("Gather", []string{"w", "x"}), ins: []pb{xe("x", dtInt64, "N", 5)},
			inits: []pb{f32("w", []int64{10, 2}, seq(20)...)}, want: []string{"%y = gather %w, %x : f32[N,5,2]"}},
		{name: "gather with float indices", opset: 13, node: node("Gather", []string{"x", "x"}), ins: x4("N", 3),
			errSub: "expected int32 or int64 indices, found f32[N,3]"},
		{name: "expand", opset: 13, node: node("Expand", []string{"x", "s"}), ins: x4("N", 1), inits: []pb{i64("s", []int64{3}, 2, 1, 4)},
			want: []string{"%y = expand %x {shape=[2,1,4]} : f32[2,N,4]"}},
		{name: "expand to nothing", opset: 13, node: node("Expand", []string{"x", "s"}), ins: x4("N", 1), inits: []pb{i64("s", []int64{1}, 0)},
			errSub: "expected positive sizes"},
		{name: "argmax", opset: 13, node: node("ArgMax", []string{"x"}, attrIntPB("axis", 1)), ins: x4("N", 3),
			want: []string{"%y = argmax %x {axis=1, keepdims=true} : i64[N,1]"}},
		{name: "argmin select_last_index", opset: 13, node: node("ArgMin", []string{"x"}, attrIntPB("axis", -1), attrIntPB("keepdims", 0), attrIntPB("select_last_index", 1)),
			ins: x4("N", 3), want: []string{"const %y_reversed: i64[3] = [2,1,0]", "%y_gather = gather %x, %y_reversed {axis=1} : f32[N,3]",
				"%y_argmin = argmin %y_gather {axis=1} : i64[N]", "%y = gather %y_reversed, %y_argmin : i64[N]"}},
		// Tile, DepthToSpace, SpaceToDepth.
		{name: "tile", opset: 13, node: node("Tile", []string{"x", "r"}), ins: x4("N", 3), inits: []pb{i64("r", []int64{2}, 1, 2)},
			want: []string{"%y_reshape = reshape %x {shape=[N,1,3]}", "%y_expand = expand %y_reshape {shape=[N,2,3]}", "%y = reshape %y_expand {shape=[N,6]} : f32[N,6]"}},
		{name: "tile the batch", opset: 13, node: node("Tile", []string{"x", "r"}), ins: x4("N", 3), inits: []pb{i64("r", []int64{2}, 2, 1)},
			want: []string{"%y = concat %x, %x {axis=0} : f32[N*2,3]"}},
		{name: "tile opset 1", opset: 1, node: node("Tile", []string{"x", "t", "a"}), ins: x4("N", 3), inits: []pb{i64("t", nil, 3), i64("a", nil, 1)},
			want: []string{"%y = reshape %y_expand {shape=[N,9]} : f32[N,9]"}},
		{name: "depth to space", opset: 13, node: node("DepthToSpace", []string{"x"}, attrIntPB("blocksize", 2), attrStringPB("mode", "CRD")), ins: x4("N", 8, 2, 3),
			want: []string{"%y_reshape = reshape %x {shape=[N,2,2,2,2,3]}", "{perm=[0,1,4,2,5,3]}", "%y = reshape %y_transpose {shape=[N,2,4,6]} : f32[N,2,4,6]"}},
		{name: "depth to space channels", opset: 13, node: node("DepthToSpace", []string{"x"}, attrIntPB("blocksize", 2)), ins: x4("N", 6, 2, 3),
			errSub: "channels 6 do not divide by blocksize^2 = 4"},
		{name: "space to depth", opset: 13, node: node("SpaceToDepth", []string{"x"}, attrIntPB("blocksize", 2)), ins: x4("N", 3, 4, 6),
			want: []string{"{perm=[0,3,5,1,2,4]}", "%y = reshape %y_transpose {shape=[N,12,2,3]} : f32[N,12,2,3]"}},
		// ConvTranspose.
		{name: "conv transpose", opset: 11, node: node("ConvTranspose", []string{"x", "w", "b"}, attrIntsPB("strides", 2, 2), attrIntsPB("pads", 1, 1, 1, 1), attrIntsPB("output_padding", 1, 1)),
			ins: x4("N", 2, 3, 3), inits: []pb{f32("w", []int64{2, 3, 3, 3}, seq(54)...), f32("b", []int64{3}, 1, 2, 3)},
			want: []string{"%y_conv2d_grad_input = conv2d_grad_input %x, %w {stride=[2,2], pad=[1,1,0,0], size=[6,6]} : f32[N,3,6,6]", "%y = add %y_conv2d_grad_input, %y_reshape : f32[N,3,6,6]"}},
		{name: "conv transpose output_shape", opset: 11, node: node("ConvTranspose", []string{"x", "w"}, attrIntsPB("strides", 3, 2), attrIntsPB("output_shape", 10, 8)),
			ins: x4("N", 1, 3, 3), inits: []pb{f32("w", []int64{1, 2, 3, 3}, seq(18)...)},
			want: []string{"conv2d_grad_input %x, %w {stride=[3,2], size=[10,8]} : f32[N,2,10,8]"}},
		{name: "conv transpose shifted output_shape", opset: 11, node: node("ConvTranspose", []string{"x", "w"}, attrIntsPB("output_shape", 7, 3)),
			ins: x4("N", 1, 3, 3), inits: []pb{f32("w", []int64{1, 2, 3, 3}, seq(18)...)},
			errSub: "negative begin pads"},
		{name: "conv transpose 3-D", opset: 11, node: node("ConvTranspose", []string{"x", "w"}), ins: x4("N", 1, 2, 2, 2),
			inits: []pb{f32("w", []int64{1, 1, 1, 1, 1}, 1)}, errSub: "only 1-D and 2-D transposed convolutions"},
		// Resize and Upsample.
		{name: "resize nearest", opset: 13, node: node("Resize", []string{"x", "", "s"}, attrStringPB("coordinate_transformation_mode", "asymmetric"), attrStringPB("nearest_mode", "floor")),
			ins: x4("N", 2, 2, 3), inits: []pb{f32("s", []int64{4}, 1, 1, 2, 1)},
			want: []string{"const %y_nearest: i64[4] = [0,0,1,1]", "%y = gather %x, %y_nearest {axis=2} : f32[N,2,4,3]"}},
		{name: "resize linear sizes", opset: 13, node: node("Resize", []string{"x", "", "", "s"}, attrStringPB("mode", "linear")),
			ins: x4(2, 2, 2, 3), inits: []pb{i64("s", []int64{4}, 2, 2, 2, 6)},
			want: []string{"const %y_index: i64[6] = [0,0,0,1,1,2]", "const %y_weight: f32[6] = [1.0,0.75,0.25,0.75,0.25,1.0]", "const %y_index_2: i64[6] = [1,1,1,2,2,2]", "%y = add %y_mul, %y_mul_2 : f32[2,2,2,6]"}},
		{name: "resize opset 18 axes", opset: 18, node: node("Resize", []string{"x", "", "s"}, attrIntsPB("axes", -1)),
			ins: x4("N", 2, 2, 3), inits: []pb{f32("s", []int64{1}, 2)}, want: []string{"%y = gather %x, %y_nearest {axis=3} : f32[N,2,2,6]"}},
		{name: "resize cubic", opset: 13, node: node("Resize", []string{"x", "", "s"}, attrStringPB("mode", "cubic")),
			ins: x4("N", 2, 2, 3), inits: []pb{f32("s", []int64{4}, 1, 1, 2, 2)}, errSub: "mode cubic is not supported"},
		{name: "resize the batch", opset: 13, node: node("Resize", []string{"x", "", "s"}),
			ins: x4("N", 2, 2, 3), inits: []pb{f32("s", []int64{4}, 2, 1, 1, 1)}, errSub: "axis 0 holds the batch (N), which can only keep its size"},
		{name: "resize align_corners fractional", opset: 13, node: node("Resize", []string{"x", "", "s"}, attrStringPB("mode", "linear"), attrStringPB("coordinate_transformation_mode", "align_corners")),
			ins: x4("N", 1, 2, 4), inits: []pb{f32("s", []int64{4}, 1, 1, 0.6, 0.6)}, errSub: "is ambiguous"},
		{name: "resize scales and sizes", opset: 13, node: node("Resize", []string{"x", "", "s", "z"}),
			ins: x4("N", 1, 2, 4), inits: []pb{f32("s", []int64{4}, 1, 1, 2, 2), i64("z", []int64{4}, 1, 1, 4, 8)}, errSub: "scales and sizes are both given"},
		{name: "resize opset 10", opset: 10, node: node("Resize", []string{"x", "s"}),
			ins: x4("N", 1, 2, 3), inits: []pb{f32("s", []int64{4}, 1, 1, 1, 0.5)},
			want: []string{"const %y_nearest: i64[1] = [0]", "%y = gather %x, %y_nearest {axis=3} : f32[N,1,2,1]"}},
		{name: "upsample opset 7", opset: 7, node: node("Upsample", []string{"x"}, pb(nil).str(attrName, "scales").varint(attrType, attrTypeFloats).msg(attrFloats, f32s(1, 1, 3))),
			ins: x4("N", 1, 2), want: []string{"const %y_nearest: i64[6] = [0,0,0,1,1,1]"}},
		// Pad, Split, GatherElements.
		{name: "pad edge and crop", opset: 13, node: node("Pad", []string{"x", "p"}, attrStringPB("mode", "edge")),
			ins: x4("N", 2, 3), inits: []pb{i64("p", []int64{6}, 0, -1, 0, 0, 0, 2)},
			want: []string{"%y_slice = slice %x {axis=1, start=1, end=2} : f32[N,1,3]", "const %y_pad: i64[5] = [0,1,2,2,2]", "%y = gather %y_slice, %y_pad {axis=2} : f32[N,1,5]"}},
		{name: "pad reflect opset 18 axes", opset: 18, node: node("Pad", []string{"x", "p", "", "a"}, attrStringPB("mode", "reflect")),
			ins: x4("N", 2, 3), inits: []pb{i64("p", []int64{2}, 2, 2), i64("a", []int64{1}, -1)},
			want: []string{"const %y_pad: i64[7] = [2,1,0,1,2,1,0]"}},
		{name: "pad wrap", opset: 19, node: node("Pad", []string{"x", "p"}, attrStringPB("mode", "wrap")),
			ins: x4("N", 3), inits: []pb{i64("p", []int64{4}, 0, 1, 0, 1)}, want: []string{"const %y_pad: i64[5] = [2,0,1,2,0]"}},
		{name: "split opset 1 input", opset: 1, node: nodePB("n", "Split", []string{"x", "s"}, []string{"y", "b"}, attrIntPB("axis", 1)),
			ins: x4("N", 5), inits: []pb{i64("s", []int64{2}, 2, 3)}, want: []string{"%y = slice %x {axis=1, start=0, end=2} : f32[N,2]"}},
		{name: "gather elements", opset: 13, node: node("GatherElements", []string{"d", "i"}, attrIntPB("axis", 1)),
			ins: []pb{xe("d", dtFloat, 2, 3)}, inits: []pb{i64("i", []int64{2, 2}, 2, -3, 1, 1)},
			want: []string{"%y_reshape = reshape %d {shape=[6]} : f32[6]", "const %y_flat: i64[2,2] = [2,0,4,4]", "%y = gather %y_reshape, %y_flat : f32[2,2]"}},
		{name: "gather elements out of range", opset: 13, node: node("GatherElements", []string{"d", "i"}),
			ins: []pb{xe("d", dtFloat, 2, 3)}, inits: []pb{i64("i", []int64{1, 1}, 2)}, errSub: "index 2 is out of range for axis 0 of size 2"},
	})
}

// f32s packs float32s as a repeated FLOAT field.
func f32s(vs ...float32) pb {
	var b pb
	for _, v := range vs {
		b = pb(protowire.AppendFixed32(b, math.Float32bits(v)))
	}
	return b
}
