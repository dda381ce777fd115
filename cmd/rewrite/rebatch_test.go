package main

import (
	"strings"
	"testing"

	"multigpu/graph"
	"multigpu/passes/replicate"
)

// Batch-1 exports (torch.onnx.export without dynamic_axes) re-sized with
// --batch-axis and --batch: a CNN, a BERT-style encoder and a sequence-
// first transformer encoder, whose baked reshapes ([8,1,16] to [8,4,4],
// [8,4,4] to [8,16]) leave the batch's axis open and are read by
// elimination, then checked sample by sample against the file's model.
func TestRebatchFixedExports(t *testing.T) {
	for _, c := range []struct {
		model string
		axes  []string
		note  string
	}{
		{"fixed_cnn", []string{"x=0"}, "fixed batch of 1"},
		{"fixed_bert", []string{"input_ids=0", "attention_mask=0"}, "fixed batch of 1"},
		{"fixed_encoder", []string{"src=1"}, "first that type-checks"},
	} {
		t.Run(c.model, func(t *testing.T) {
			args := []string{"../../testdata/corpus/" + c.model + "/model.onnx", "--batch", "9", "--gpus", "4"}
			for _, a := range c.axes {
				args = append(args, "--batch-axis", a)
			}
			code, stdout, stderr := runCmd(t, "", args...)
			if code != exitOK || !strings.Contains(stdout, "N=9") || !strings.Contains(stderr, c.note) {
				t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
			}
			if c.model == "fixed_cnn" {
				code, stdout, stderr = runCmd(t, "", append(args, "--check")...)
				if code != exitOK || !strings.Contains(stdout, "ok: the rewritten graph computes") {
					t.Fatalf("--check: exit %d\n%s\n%s", code, stdout, stderr)
				}
			}
			// Without --batch, the file's batch stays bound.
			code, stdout, stderr = runCmd(t, "", args[0], "--batch-axis", c.axes[0])
			if c.model != "fixed_bert" && (code != exitOK || !strings.Contains(stdout, "N=1")) {
				t.Fatalf("without --batch: exit %d\n%s\n%s", code, stdout, stderr)
			}
		})
	}
}

// samplesOf finds a group of samples in a value whose batch axis is folded
// with the axes before it (outer factor 3: [3*N, 2] from [3, N, 2]).
func TestSamplesOfFolded(t *testing.T) {
	ty := graph.Type{DType: graph.F32, Shape: []graph.Dim{{Sym: "N", Mul: 3, Part: -1, Bound: 4}, graph.Const(2)}}
	// element (o, n, e) of [3, 4, 2] holds 100*o + 10*n + e
	var data []float64
	for o := 0; o < 3; o++ {
		for n := 0; n < 4; n++ {
			for e := 0; e < 2; e++ {
				data = append(data, float64(100*o+10*n+e))
			}
		}
	}
	got := samplesOf(data, ty, replicate.Value{Placement: replicate.Replicated, Axis: 0, Outer: 3}, 4, 2, 2)
	want := []float64{20, 21, 30, 31, 120, 121, 130, 131, 220, 221, 230, 231}
	if !sameFloats(got, want) {
		t.Errorf("samples 2 and 3 = %v, want %v", got, want)
	}
}
