package graph

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// body wraps statements, one per line, in "graph g { ... }": the first
// statement is on line 2.
func body(lines ...string) string {
	return "graph g {\n  " + strings.Join(lines, "\n  ") + "\n}\n"
}

// parseErrors are malformed inputs and the exact errors Parse reports for
// them, as "file:line:col: message" (several separated by newlines). A want
// ending in "..." is a prefix.
var parseErrors = []struct {
	name, src, want string
}{
	// Types and dimensions.
	{"overflowing element count", body("input %x: f32[N,100000000000,100000000000]", "output %x"),
		"bad.graph:2:13: expected a shape whose element count fits in int64, found f32[N,100000000000,100000000000]"},
	{"overflowing bound", body("input %x: f32[N=4611686018427387904,4]", "output %x"),
		"bad.graph:2:13: expected a shape whose element count fits in int64, found f32[N=4611686018427387904,4]"},
	{"dimension beyond int64", body("input %x: f32[N,99999999999999999999]", "output %x"),
		"bad.graph:2:19: expected a positive dimension that fits in int64, found 99999999999999999999"},
	{"negative dim", body("input %x: f32[N,-3]", "output %x"),
		"bad.graph:2:19: expected a positive dimension, found -3"},
	{"zero dim", body("input %x: f32[N,0]", "output %x"),
		"bad.graph:2:19: expected a positive dimension, found 0"},
	{"zero bound", body("input %x: f32[N=0,4]", "output %x"),
		"bad.graph:2:19: expected a positive batch size, found 0"},
	{"two batch axes", body("input %x: f32[N,N]", "output %x"),
		"bad.graph:2:13: expected at most one batch axis, found N on axes 0 and 1"},
	{"share in an input", body("input %x: f32[N.0,4]", "output %x"),
		"bad.graph:2:13: expected an integer or the batch symbol in a declared type, found N.0"},
	{"multiple in an input", body("input %x: f32[N*2,4]", "output %x"),
		"bad.graph:2:13: expected an integer or the batch symbol in a declared type, found N*2"},
	{"bad share spelling", body("input %x: f32[N.x,4]", "output %x"),
		"bad.graph:2:17: expected a batch symbol (N) or a share of it (N.0), found N.x"},
	{"bound on a multiple", body("input %x: f32[N,4]", "%y = reshape %x {shape=[-1]} : f32[N*4=8]", "output %y"),
		"bad.graph:3:38: expected a bound only on a plain symbol, found N*4=8"},
	{"bad dtype", body("input %x: f16[N,4]", "output %x"),
		`bad.graph:2:13: expected an element type (f32, f64, i32, i64 or bool), found "f16"`},
	{"missing shape", body("input %x: f32", "output %x"),
		`bad.graph:2:16: expected "[", found end of line`},
	{"unclosed shape", body("input %x: f32[N,4 3]", "output %x"),
		`bad.graph:2:21: expected "," or "]", found "3"`},
	{"two batch symbols", body("input %x: f32[N,4]", "input %y: f32[B,4]", "output %x"),
		"bad.graph:3:13: expected the graph's batch symbol N, found B (a graph has one batch symbol)"},
	{"conflicting bounds", body("input %x: f32[N=10,4]", "input %y: f32[N=12,4]", "output %x"),
		"bad.graph:3:13: expected the batch bound as before (N=10), found N=12"},
	{"param with batch", body("param %w: f32[N,4]", "output %w"),
		"bad.graph:2:13: expected a batch-free type for param %w, found f32[N,4] (only inputs carry the batch)"},
	{"param with bad dim", body("param %w: f32[4,-1]", "output %w"),
		"bad.graph:2:19: expected a positive dimension, found -1"},

	// Consts.
	{"const element count", body("const %c: f32[3] = [1.0, 2.0]", "output %c"),
		"bad.graph:2:22: const %c: expected 3 elements for f32[3], found 2"},
	{"const with batch", body("const %c: f32[N] = [1.0]", "output %c"),
		"bad.graph:2:22: const %c: expected a concrete shape, found f32[N]"},
	{"const float for i32", body("const %c: i32[] = 1.5", "output %c"),
		"bad.graph:2:21: expected an integer literal for i32, found 1.5"},
	{"const i32 range", body("const %c: i32[] = 3000000000", "output %c"),
		"bad.graph:2:21: expected an i32, found 3e+09"},
	{"const bool", body("const %c: bool[] = 2", "output %c"),
		`bad.graph:2:22: expected a bool literal, found "2"`},
	{"const f32 range", body("const %c: f32[] = 1e99", "output %c"),
		"bad.graph:2:21: expected a number within f32 range, found 1e99"},
	{"const missing value", body("const %c: f32[]", "output %c"),
		`bad.graph:2:18: expected "=", found end of line`},
	{"const nested", body("const %c: f32[1] = [[1.0]]", "output %c"),
		`bad.graph:2:23: expected an f32 literal, found "["`},

	// Ops and operands.
	{"unknown op", body("input %x: f32[N,4]", "%y = frobnicate %x", "output %y"),
		`bad.graph:3:8: unknown op "frobnicate"; known ops: abs, add, ...`},
	{"missing op", body("input %x: f32[N,4]", "%y = %x", "output %y"),
		"bad.graph:3:8: expected an op name, found %x"},
	{"too many operands", body("input %x: f32[N,4]", "%y = relu %x, %x", "output %y"),
		"bad.graph:3:8: %y: relu: expected 1 operand, found 2"},
	{"too few operands", body("input %x: f32[N,4]", "%y = add %x", "output %y"),
		"bad.graph:3:8: %y: add: expected 2 operands, found 1"},
	{"no operands", body("input %x: f32[N,4]", "%y = relu", "output %y"),
		"bad.graph:3:12: expected an operand (%name), found end of line"},
	{"undefined value", body("input %x: f32[N,4]", "%y = relu %z", "output %y"),
		"bad.graph:3:13: undefined value %z"},
	{"cycle", body("input %x: f32[N,4]", "%a = relu %b", "%b = relu %a", "output %b"),
		"bad.graph:3:13: %b is used before its definition at 4:3 (values must be defined before their uses)"},
	{"self use", body("input %x: f32[N,4]", "%a = relu %a", "output %a"),
		"bad.graph:3:13: %a is used in its own definition (values must be defined before their uses)"},
	{"redefinition", body("input %x: f32[N,4]", "%x = relu %x", "output %x"),
		"bad.graph:3:3: expected a new name, found %x (already defined at 2:9)"},
	{"leaf redefinition", body("input %x: f32[N,4]", "param %x: f32[4]", "output %x"),
		"bad.graph:3:9: expected a new name, found %x (already defined at 2:9)"},
	{"matmul contraction", body("input %x: f32[N,4]", "param %w: f32[5,3]", "%y = matmul %x, %w", "output %y"),
		"bad.graph:4:8: %y: matmul: expected a second operand with 4 rows to contract with f32[N,4], found f32[5,3] (5 rows)"},
	{"matmul dtypes", body("input %x: f32[N,4]", "param %w: f64[4,3]", "%y = matmul %x, %w", "output %y"),
		"bad.graph:4:8: %y: matmul: expected numeric operands of one element type, found f32[N,4] and f64[4,3]"},
	{"broadcast batch against 5", body("input %x: f32[N,4]", "param %w: f32[5,4]", "%y = add %x, %w", "output %y"),
		"bad.graph:4:8: %y: add: cannot broadcast f32[N,4] with f32[5,4]: dimension N against 5 (a symbolic dimension broadcasts only against itself or 1)"},
	{"broadcast 3 against 4", body("input %x: f32[N,4]", "param %w: f32[3]", "%y = mul %x, %w", "output %y"),
		"bad.graph:4:8: %y: mul: cannot broadcast f32[N,4] with f32[3]: dimension 4 against 3"},
	{"reshape count", body("input %x: f32[N,4]", "%y = reshape %x {shape=[N,5]}", "output %y"),
		"bad.graph:3:8: %y: reshape: cannot reshape f32[N,4] (N*4 elements) to [N,5] (N*5 elements)"},
	{"reshape hole", body("input %x: f32[N,4]", "%y = reshape %x {shape=[-1,3]}", "output %y"),
		"bad.graph:3:8: %y: reshape: cannot reshape f32[N,4] to [-1,3]: N*4 elements do not divide by 3"},
	{"reshape unknown symbol", body("input %x: f32[N,4]", "%y = reshape %x {shape=[B,4]}", "output %y"),
		"bad.graph:3:8: %y: reshape: shape names B, which f32[N,4] does not have"},
	{"exp of ints", body("input %x: i32[N,4]", "%y = exp %x", "output %y"),
		"bad.graph:3:8: %y: exp: expected a floating-point operand, found i32[N,4]"},
	{"batchnorm operand", body("input %x: f32[N,4]", "%y = batchnorm %x, %x, %x, %x, %x", "output %y"),
		"bad.graph:3:8: %y: batchnorm: expected scale of type f32[4], found f32[N,4]"},
	{"pool on a matrix", body("input %x: f32[N,4]", "%y = maxpool2d %x {kernel=[2,2]}", "output %y"),
		"bad.graph:3:8: %y: maxpool2d: expected a floating-point x[N,C,H,W], found f32[N,4]"},
	{"conv window too big", body("input %x: f32[N,3,4,4]", "param %w: f32[2,3,5,5]", "%y = conv2d %x, %w", "output %y"),
		"bad.graph:4:8: %y: conv2d: window of 5 (dilated) does not fit height size 4 plus padding 0+0"},
	{"conv huge dilation", body("input %x: f32[N,3,4,4]", "param %w: f32[2,3,3,3]", "%y = conv2d %x, %w {dilation=[4611686018427387904,1]}", "output %y"),
		"bad.graph:4:8: %y: conv2d: expected a window and padding whose height size fits in int64, found kernel 3, dilation 4611686018427387904, padding 0+0"},
	{"conv huge pad", body("input %x: f32[N,3,4,4]", "param %w: f32[2,3,3,3]", "%y = conv2d %x, %w {pad=[9223372036854775807,0]}", "output %y"),
		"bad.graph:4:8: %y: conv2d: expected a window and padding whose height size fits in int64, found kernel 3, dilation 1, padding 9223372036854775807+9223372036854775807"},
	{"slice batch by start", body("input %x: f32[N,4]", "%y = slice %x {axis=0, start=0, end=2}", "output %y"),
		"bad.graph:3:8: %y: slice: cannot slice N by start and end: its size is known only at run time"},
	{"slice share of a feature axis", body("input %x: f32[N,4]", "%y = slice %x {axis=1, part=0, parts=2}", "output %y"),
		"bad.graph:3:8: %y: slice: expected the batch symbol on axis 1 for a share (part, parts), found 4"},
	{"slice empty share", body("input %x: f32[N=2,4]", "%y = slice %x {axis=0, part=0, parts=3}", "output %y"),
		"bad.graph:3:40: %y: slice: expected at most 2 parts for a batch of 2 (no empty share), found parts=3"},
	{"concat dtypes", body("input %x: f32[N,4]", "input %z: f64[N,4]", "%y = concat %x, %z {axis=1}", "output %y"),
		"bad.graph:4:8: %y: concat: expected operands like f32[N,4], found f64[N,4]"},

	// Attributes.
	{"softmax axis out of range", body("input %x: f32[N,4]", "%y = softmax %x {axis=5}", "output %y"),
		"bad.graph:3:25: %y: softmax: expected axis in [-2, 1] for rank 2, found axis=5"},
	{"negative pad", body("input %x: f32[N,3,8,8]", "param %w: f32[4,3,3,3]", "%y = conv2d %x, %w {pad=[-1,0]}", "output %y"),
		"bad.graph:4:27: %y: conv2d: expected non-negative padding, found pad=[-1,0]"},
	{"pad of three", body("input %x: f32[N,3,8,8]", "param %w: f32[4,3,3,3]", "%y = conv2d %x, %w {stride=[1,1,1]}", "output %y"),
		"bad.graph:4:30: %y: conv2d: expected 2 values for stride, found stride=[1,1,1]"},
	{"dropout rate", body("input %x: f32[N,4]", "%y = dropout %x {rate=1.5}", "output %y"),
		"bad.graph:3:25: %y: dropout: expected 0 <= rate < 1, found rate=1.5"},
	{"conv groups not dividing", body("input %x: f32[N,3,8,8]", "param %w: f32[4,1,3,3]", "%y = conv2d %x, %w {groups=2}", "output %y"),
		"bad.graph:4:30: %y: conv2d: expected groups dividing 3 input and 4 output channels, found groups=2"},
	{"pool pad", body("input %x: f32[N,3,8,8]", "%y = avgpool2d %x {kernel=[2,2], pad=[2,0]}", "output %y"),
		"bad.graph:3:40: %y: avgpool2d: expected padding smaller than the kernel [2,2], found pad=[2,0]"},
	{"transpose perm", body("input %x: f32[N,4]", "%y = transpose %x {perm=[0,0]}", "output %y"),
		"bad.graph:3:27: %y: transpose: expected a permutation of 0..1, found perm=[0,0]"},
	{"reduction axes", body("input %x: f32[N,4]", "%y = sum %x {axes=[1,1]}", "output %y"),
		"bad.graph:3:21: %y: sum: expected distinct axes, found axis 1 twice in axes=[1,1]"},
	{"reduction axis range", body("input %x: f32[N,4]", "%y = max %x {axes=[2]}", "output %y"),
		"bad.graph:3:21: %y: max: expected axes in [-2, 1] for rank 2, found axes=[2]"},
	{"flatten axis", body("input %x: f32[N,4]", "%y = flatten %x {axis=3}", "output %y"),
		"bad.graph:3:25: %y: flatten: expected axis in [0, 2] for rank 2, found axis=3"},
	{"missing required attribute", body("input %x: f32[N,4]", "%y = transpose %x", "output %y"),
		"bad.graph:3:8: %y: transpose: missing attribute perm (a list of integers)"},
	{"unknown attribute", body("input %x: f32[N,4]", "%y = relu %x {alpha=1}", "output %y"),
		`bad.graph:3:17: unknown attribute "alpha" for relu (it takes no attributes)`},
	{"unknown attribute lists known", body("input %x: f32[N,4]", "%y = leaky_relu %x {slope=1}", "output %y"),
		`bad.graph:3:23: unknown attribute "slope" for leaky_relu (it takes alpha)`},
	{"duplicate attribute", body("input %x: f32[N,4]", "%y = softmax %x {axis=1, axis=0}", "output %y"),
		"bad.graph:3:28: attribute axis given twice (first value at 3:25)"},
	{"attribute kind float for int", body("input %x: f32[N,4]", "%y = softmax %x {axis=1.5}", "output %y"),
		"bad.graph:3:25: attribute axis: expected an integer, found 1.5"},
	{"attribute kind bool for float", body("input %x: f32[N,4]", "%y = leaky_relu %x {alpha=true}", "output %y"),
		"bad.graph:3:29: attribute alpha: expected a number, found true"},
	{"attribute kind enum", body("input %x: f32[N,4]", "%y = dim %x {axis=0, dtype=bool}", "output %y"),
		"bad.graph:3:30: attribute dtype: expected one of f32, f64, i32, i64, found bool"},
	{"attribute kind string", body("input %x: f32[N,4]", `%y = softmax %x {axis="1"}`, "output %y"),
		`bad.graph:3:25: attribute axis: expected an integer, found "1"`},
	{"attribute int overflow", body("input %x: f32[N,4]", "%y = softmax %x {axis=99999999999999999999}", "output %y"),
		"bad.graph:3:25: expected an integer that fits in int64, found 99999999999999999999"},
	{"nested list", body("input %x: f32[N,4]", "%y = reshape %x {shape=[[1]]}", "output %y"),
		"bad.graph:3:27: expected a flat list, found a nested list"},
	{"attribute missing value", body("input %x: f32[N,4]", "%y = softmax %x {axis=}", "output %y"),
		`bad.graph:3:25: expected an attribute value, found "}"`},
	{"attribute unclosed", body("input %x: f32[N,4]", "%y = softmax %x {axis=1", "output %y"),
		`bad.graph:3:26: expected "," or "}", found end of line`},
	{"unterminated string", body("input %x: f32[N,4]", `%y = softmax %x {axis="abc}`, "output %y"),
		"bad.graph:3:25: expected an attribute value, found an unterminated string"},

	// Type annotations and devices.
	{"annotation mismatch", body("input %x: f32[N,4]", "%y = relu %x : f32[N,5]", "output %y"),
		"bad.graph:3:18: %y: relu infers type f32[N,4], found annotation f32[N,5]"},
	{"annotation dtype", body("input %x: f32[N,4]", "%y = relu %x : f64[N,4]", "output %y"),
		"bad.graph:3:18: %y: relu infers type f32[N,4], found annotation f64[N,4]"},
	{"annotation bound", body("input %x: f32[N=3,4]", "%y = relu %x : f32[N=4,4]", "output %y"),
		"bad.graph:3:18: %y: relu infers type f32[N=3,4], found annotation f32[N=4,4]"},
	{"bad device", body("input %x: f32[N,4] @tpu", "output %x"),
		`bad.graph:2:22: expected a device (cpu or gpu:K with K >= 0), found "tpu"`},
	{"bad gpu index", body("input %x: f32[N,4] @gpu:x", "output %x"),
		`bad.graph:2:27: expected a GPU index, found "x"`},
	{"negative gpu index", body("input %x: f32[N,4] @gpu:-1", "output %x"),
		`bad.graph:2:22: expected a device (cpu or gpu:K with K >= 0), found "gpu:-1"`},
	{"cross-device operand", body("input %x: f32[N,4] @gpu:0", "%y = relu %x @gpu:1", "output %y"),
		"bad.graph:3:3: %y: operand %x is on gpu:0, node is on gpu:1 (only slice, concat, copy and allreduce read across devices)"},
	{"partly placed", body("input %x: f32[N,4] @gpu:0", "%y = relu %x", "output %y"),
		"bad.graph:3:3: %y: no device, though 1 of 2 nodes are placed (place all or none)"},

	// Outputs and structure.
	{"missing output", body("input %x: f32[N,4]", "%y = relu %x"),
		`bad.graph:4:1: expected an output statement before "}" in graph g, found none`},
	{"output twice", body("input %x: f32[N,4]", "output %x", "output %x"),
		"bad.graph:4:3: expected one output statement, found a second (the first is at 3:3)"},
	{"output listed twice", body("input %x: f32[N,4]", "output %x, %x"),
		"bad.graph:3:14: %x is listed twice as an output"},
	{"output undefined", body("input %x: f32[N,4]", "output %y"),
		"bad.graph:3:10: undefined value %y"},
	{"empty output", body("input %x: f32[N,4]", "output"),
		"bad.graph:3:9: expected an output value (%name), found end of line"},
	{"unterminated graph", "graph g {\n  input %x: f32[N,4]\n  output %x\n",
		`bad.graph:4:1: expected "}" to close graph g, found end of file`},
	{"closing brace on a statement line", "graph g {\n  input %x: f32[N,4]\n  output %x }\n",
		`bad.graph:3:13: expected end of line before "}", found "}"`},
	{"text after the graph", body("input %x: f32[N,4]", "output %x") + "extra\n",
		`bad.graph:5:1: expected end of file after the graph, found "extra"`},
	{"empty file", "",
		`bad.graph:1:1: expected "graph", found end of file`},
	{"comments only", "# nothing here\n\n",
		`bad.graph:3:1: expected "graph", found end of file`},
	{"graph without name", "graph {\n}\n",
		`bad.graph:1:7: expected a graph name, found "{"`},
	{"statement after brace", "graph g { input %x: f32[N,4]\n  output %x\n}\n",
		`bad.graph:1:11: expected end of line after "{", found "input"`},
	{"empty graph", "graph g {\n}\n",
		`bad.graph:2:1: expected an output statement before "}" in graph g, found none`},
	{"unknown statement", body("input %x: f32[N,4]", "return %x", "output %x"),
		`bad.graph:3:3: expected a statement (input, param, const, output or %name = op ...), found "return"`},
	{"bad character", body("input %x: f32[N,4] $", "output %x"),
		`bad.graph:2:22: expected end of line, found unexpected character "$"`},
	{"bad utf-8 character", body("input %x: f32[N,4] é", "output %x"),
		`bad.graph:2:22: expected end of line, found unexpected character "é"`},
	{"empty value name", body("input %: f32[N,4]", "output %x"),
		"bad.graph:2:9: expected a value name after %, found %\nbad.graph:3:10: undefined value %x"},
	{"missing equals", body("input %x: f32[N,4]", "%y relu %x", "output %y"),
		`bad.graph:3:6: expected "=", found "relu"`},
}

func TestParseErrors(t *testing.T) {
	if len(parseErrors) < 30 {
		t.Fatalf("only %d malformed inputs", len(parseErrors))
	}
	for _, tc := range parseErrors {
		t.Run(tc.name, func(t *testing.T) {
			g, err := Parse("bad.graph", []byte(tc.src))
			if err == nil {
				t.Fatalf("Parse accepted:\n%s\nprinting:\n%s", tc.src, Format(g))
			}
			if g != nil {
				t.Errorf("Parse returned a graph with its error")
			}
			var list ErrorList
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("error is a %T, want a non-empty ErrorList: %v", err, err)
			}
			got := err.Error()
			if want, ok := strings.CutSuffix(tc.want, "..."); ok {
				if !strings.HasPrefix(got, want) {
					t.Fatalf("source:\n%s\ngot  %s\nwant %s...", tc.src, got, want)
				}
				return
			}
			if got != tc.want {
				t.Fatalf("source:\n%s\ngot  %s\nwant %s", tc.src, got, tc.want)
			}
		})
	}
}

// TestParseErrorsTogether checks that independent errors in one file are
// all reported, sorted by position, each once.
func TestParseErrorsTogether(t *testing.T) {
	src := body(
		"input %x: f32[N,4]",
		"%y = relu %x {alpha=1}", // line 3
		"param %w: f32[N,4]",     // line 4
		"%z = relu %y",           // line 5: %y failed, not reported again
		"%x = neg %x",            // line 6
		"%u = exp %q",            // line 7
		"output %z",
	)
	_, err := Parse("bad.graph", []byte(src))
	want := `bad.graph:3:17: unknown attribute "alpha" for relu (it takes no attributes)
bad.graph:4:13: expected a batch-free type for param %w, found f32[N,4] (only inputs carry the batch)
bad.graph:6:3: expected a new name, found %x (already defined at 2:9)
bad.graph:7:12: undefined value %q`
	if err == nil || err.Error() != want {
		t.Fatalf("got\n%v\nwant\n%s", err, want)
	}
}

// TestParseErrorAfterLine checks that a statement that fails once its line
// is read (a shape error) does not take the next statement with it.
func TestParseErrorAfterLine(t *testing.T) {
	src := body(
		"input %x: f32[N,4]",
		"%y = softmax %x {axis=5}",
		"%z = relu %x",
		"%w = exp %z : f32[N,5]",
		"%v = neg %z",
		"output %v",
	)
	_, err := Parse("bad.graph", []byte(src))
	want := "bad.graph:3:25: %y: softmax: expected axis in [-2, 1] for rank 2, found axis=5\n" +
		"bad.graph:5:17: %w: exp infers type f32[N,4], found annotation f32[N,5]"
	if err == nil || err.Error() != want {
		t.Fatalf("got\n%v\nwant\n%s", err, want)
	}
}

// TestParseErrorsSorted checks the order of errors found in different
// phases: a verifier error early in the file comes before a parse error
// late in it only when both are reported; parse errors alone are sorted.
func TestParseErrorsSorted(t *testing.T) {
	src := body(
		"input %x: f32[N,4]",
		"%b = relu %a", // line 3: used before its definition on line 5
		"%c = relu %zz",
		"%a = relu %x",
		"output %b",
		"output %b", // line 7
	)
	_, err := Parse("bad.graph", []byte(src))
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("got %v", err)
	}
	want := []string{
		"bad.graph:3:13: %a is used before its definition at 5:3 (values must be defined before their uses)",
		"bad.graph:4:13: undefined value %zz",
		"bad.graph:7:3: expected one output statement, found a second (the first is at 6:3)",
	}
	if len(list) != len(want) {
		t.Fatalf("got %d errors:\n%v", len(list), err)
	}
	for i, e := range list {
		if e.Error() != want[i] {
			t.Errorf("error %d: got %s, want %s", i, e, want[i])
		}
	}
}

// TestParseErrorLimit checks that a file full of errors reports the first
// ten and stops.
func TestParseErrorLimit(t *testing.T) {
	var lines []string
	for i := range 50 {
		lines = append(lines, fmt.Sprintf("%%y%d = relu %%undefined", i))
	}
	_, err := Parse("bad.graph", []byte(body(append(lines, "output %y0")...)))
	var list ErrorList
	if !errors.As(err, &list) || len(list) != maxErrors {
		t.Fatalf("got %d errors, want %d: %v", len(list), maxErrors, err)
	}
	if list[0].Pos.Line != 2 || list[maxErrors-1].Pos.Line != maxErrors+1 {
		t.Fatalf("errors not the first ten in order: %v", err)
	}
}

// TestParseLateBound checks that an input binding the batch after nodes
// were computed from an unbound input gives every node the bound type.
func TestParseLateBound(t *testing.T) {
	src := body(
		"input %x: f32[N,4]",
		"%a = relu %x",
		"%s = slice %x {axis=0, part=1, parts=2, split=remainder}",
		"input %z: f32[N=5,4]",
		"%b = add %a, %z",
		"output %b, %s",
	)
	g := mustParse(t, "late.graph", []byte(src))
	want := body(
		"input %x: f32[N=5,4]",
		"%a = relu %x : f32[N=5,4]",
		"%s = slice %x {axis=0, part=1, parts=2, split=remainder} : f32[N.1=3,4]",
		"input %z: f32[N=5,4]",
		"%b = add %a, %z : f32[N=5,4]",
		"output %b, %s",
	)
	if got := Format(g); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	_, err := Parse("late.graph", []byte(body(
		"input %x: f32[N,4]",
		"%s = slice %x {axis=0, part=2, parts=3}",
		"input %z: f32[N=2,4]",
		"output %s",
	)))
	if err == nil || err.Error() != "late.graph:3:3: %s: slice: expected at most 2 parts for a batch of 2 (no empty share), found parts=3 (once this input binds the batch to N=2)" {
		t.Fatalf("got %v", err)
	}
}

// TestParseAccepts checks forms the format allows that the models in
// ../testdata do not show, by their canonical print.
func TestParseAccepts(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{ // annotations may leave out the bound; blank lines and comments anywhere
			"# c\n\ngraph g {   # c\n\n  input %x: f32[N=3,4] # c\n  %y = relu %x : f32[N,4]\n\n  output %y\n}\n# c\n",
			body("input %x: f32[N=3,4]", "%y = relu %x : f32[N=3,4]", "output %y"),
		},
		{ // default attributes are dropped, others put in the op's order; ints widen to floats
			body("input %x: f32[N,4]", "param %s: f32[4]", "%y = batchnorm %x, %s, %s, %s, %s {training=true, epsilon=1, axis=1}", "output %y"),
			body("input %x: f32[N,4]", "param %s: f32[4]", "%y = batchnorm %x, %s, %s, %s, %s {epsilon=1.0, training=true} : f32[N,4]", "output %y"),
		},
		{ // a batch bound on a later input binds the earlier ones
			body("input %x: f32[N,4]", "input %z: f32[3,N=7]", "output %x, %z"),
			body("input %x: f32[N=7,4]", "input %z: f32[3,N=7]", "output %x, %z"),
		},
		{ // consts of every dtype, scalars and lists
			body("const %a: f32[2] = [1, -2.5e-3]", "const %b: i64[] = -7", "const %c: bool[2] = [true,false]", "const %d: f64[] = 1e300", "output %a, %b, %c, %d"),
			body("const %a: f32[2] = [1.0,-0.0025]", "const %b: i64[] = -7", "const %c: bool[2] = [true,false]", "const %d: f64[] = 1e+300", "output %a, %b, %c, %d"),
		},
		{ // names may hold dots and digits; the graph may be empty but for an output
			"graph g.v2 {\n  input %0: f32[5]\n  %a.b.1 = neg %0\n  output %a.b.1\n}\n",
			"graph g.v2 {\n  input %0: f32[5]\n  %a.b.1 = neg %0 : f32[5]\n  output %a.b.1\n}\n",
		},
		{ // CRLF line ends
			"graph g {\r\n  input %x: f32[N,4]\r\n  output %x\r\n}\r\n",
			body("input %x: f32[N,4]", "output %x"),
		},
	} {
		g, err := Parse("ok.graph", []byte(tc.src))
		if err != nil {
			t.Errorf("Parse(\n%s): %v", tc.src, err)
			continue
		}
		if got := Format(g); got != tc.want {
			t.Errorf("source\n%s\ngot\n%s\nwant\n%s", tc.src, got, tc.want)
		}
	}
}

// TestParseNeverPanics feeds every prefix of every model, and every model
// with one byte changed at many places, to Parse; none may panic, and
// whatever parses must print back the same.
func TestParseNeverPanics(t *testing.T) {
	models := testModels(t)
	step := 1
	if testing.Short() {
		step = 7
	}
	subst := []byte("%[]{}=,:@*\n\"-.#0Nx")
	for _, m := range models {
		for i := 0; i <= len(m.src); i += step {
			checkParse(t, m.src[:i])
			if i < len(m.src) {
				mut := append([]byte(nil), m.src...)
				mut[i] = subst[i%len(subst)]
				checkParse(t, mut)
				checkParse(t, append(append([]byte(nil), m.src[:i]...), m.src[i+1:]...))
			}
		}
	}
	for _, tc := range parseErrors {
		checkParse(t, []byte(tc.src))
	}
}

// checkParse parses src and, when it succeeds, checks the round trip and
// Verify. It is the property FuzzParse checks too.
func checkParse(t testing.TB, src []byte) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("Parse panicked: %v\nsource:\n%s", r, src)
		}
	}()
	g, err := Parse("fuzz.graph", src)
	if err != nil {
		var list ErrorList
		if !errors.As(err, &list) || len(list) == 0 {
			t.Fatalf("Parse error is a %T, not a non-empty ErrorList: %v", err, err)
		}
		for _, e := range list {
			if e.File != "fuzz.graph" || !e.Pos.IsValid() && e.Pos != (Pos{}) || e.Msg == "" {
				t.Fatalf("malformed error %q\nsource:\n%s", e, src)
			}
		}
		if g != nil {
			t.Fatalf("Parse returned a graph and an error")
		}
		return
	}
	if err := Verify(g); err != nil {
		t.Fatalf("Parse returned a graph Verify rejects: %v\nsource:\n%s", err, src)
	}
	first := Format(g)
	g2, err := Parse("fuzz.graph", []byte(first))
	if err != nil {
		t.Fatalf("printed graph does not parse: %v\nsource:\n%s\nprinted:\n%s", err, src, first)
	}
	if second := Format(g2); second != first {
		t.Fatalf("print(parse(print(g))) != print(g)\nsource:\n%s\nfirst:\n%s\nsecond:\n%s", src, first, second)
	}
	if c := Format(g.Clone()); c != first {
		t.Fatalf("Clone prints differently:\n%s\nvs\n%s", first, c)
	}
}

// TestParseDeepNesting checks that deeply nested brackets are refused at
// once instead of recursing: no input makes the parser recurse.
func TestParseDeepNesting(t *testing.T) {
	deep := strings.Repeat("[", 1<<20)
	for _, tc := range []struct{ src, want string }{
		{body("input %x: f32[N,4]", "%y = reshape %x {shape="+deep+"}", "output %y"),
			"bad.graph:3:27: expected a flat list, found a nested list"},
		{body("const %c: f32[1] = "+deep, "output %c"),
			`bad.graph:2:23: expected an f32 literal, found "["`},
		{body("input %x: f32"+deep, "output %x"),
			`bad.graph:2:17: expected a dimension (an integer or the batch symbol), found "["`},
	} {
		_, err := Parse("bad.graph", []byte(tc.src))
		if err == nil || err.Error() != tc.want {
			t.Errorf("got %v, want %s", err, tc.want)
		}
	}
}
