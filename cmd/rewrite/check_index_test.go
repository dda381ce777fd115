package main

import (
	"path/filepath"
	"strings"
	"testing"

	"gorgonia.org/tensor"

	"multigpu/tensorio"
)

// --check draws integer inputs that reach a gather's indices (through
// reshape, transpose, slice, concat, expand, cast) in range, refuses other
// integer inputs unless --input gives them, and takes the batch from the
// inputs given.
func TestCheckIndexInputs(t *testing.T) {
	model := writeModel(t, "emb.graph", `graph emb {
  input %ids: i64[N,6]
  input %pos: i32[3]
  param %table: f32[9,4]
  param %posemb: f32[5,4]
  %t = transpose %ids {perm=[1,0]}
  %s = slice %t {axis=0, start=1, end=4}
  %back = transpose %s {perm=[1,0]}
  %r = reshape %back {shape=[N,3]}
  %e = gather %table, %r
  %pc = cast %pos {to=i64}
  %pp = concat %pc, %pc {axis=0}
  %px = expand %pp {shape=[1,6]}
  %pe = gather %posemb, %px
  %pe3 = slice %pe {axis=1, start=0, end=3}
  %y = add %e, %pe3
  output %y
}
`)
	for _, gpus := range []string{"2", "3"} {
		code, stdout, stderr := runCmd(t, "", model, "--gpus", gpus, "--check", "--random-weights", "--seed", "4")
		if code != exitOK || !strings.Contains(stdout, "ok: the rewritten graph computes what the original computes") {
			t.Errorf("--gpus %s: exit %d\n%s%s", gpus, code, stdout, stderr)
		}
	}

	counts := writeModel(t, "counts.graph", `graph counts {
  input %x: f32[N,2]
  input %n: i64[N,2]
  %nf = cast %n {to=f32}
  %y = mul %x, %nf
  output %y
}
`)
	code, _, stderr := runCmd(t, "", counts, "--gpus", "2", "--check")
	if want := "input %n (i64[N,2]) indexes no gather: --check draws it in {0, 1}, as an attention mask; give other values with --input n=FILE"; code != exitOK || !strings.Contains(stderr, want) {
		t.Errorf("integer input that indexes nothing: exit %d, %q; want a note %q", code, stderr, want)
	}
	dir := t.TempDir()
	n := filepath.Join(dir, "n.npy")
	if err := tensorio.WriteFileAtomic(n, tensor.New(tensor.WithShape(4, 2), tensor.WithBacking([]int64{1, 2, 3, 4, 5, 6, 7, 8}))); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCmd(t, "", counts, "--gpus", "3", "--check", "--input", "n="+n)
	if code != exitOK || !strings.Contains(stdout, "check counts: batch 4 split 2,1,1 over 3 replicas") {
		t.Errorf("--input n: exit %d\n%s%s", code, stdout, stderr)
	}
}
