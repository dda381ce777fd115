package main

import (
	"os"
	"strings"
	"testing"
)

// placedTwoGPUsSource is the single-device model that
// testdata/placed_two_gpus.graph is the rewrite of.
const placedTwoGPUsSource = `graph placed_two_gpus {
  input %x: f32[N,784]
  param %w1: f32[784,10]
  param %b1: f32[10]
  %h = matmul %x, %w1
  %z = add %h, %b1
  %y = softmax %z {axis=1}
  output %y
}
`

// testdata/placed_two_gpus.graph is what the rewrite prints for its
// source on two GPUs at batch 10, its comment line aside.
func TestPlacedTwoGPUsIsTheRewrite(t *testing.T) {
	file, err := os.ReadFile("../../testdata/placed_two_gpus.graph")
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, line := range strings.SplitAfter(string(file), "\n") {
		if !strings.HasPrefix(line, "#") {
			want = append(want, line)
		}
	}
	code, got, stderr := runCmd(t, placedTwoGPUsSource, "-", "--gpus", "2", "--batch", "10")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if strings.Join(want, "") != got {
		t.Errorf("testdata/placed_two_gpus.graph is not what the rewrite prints; it prints:\n%s", got)
	}
}
