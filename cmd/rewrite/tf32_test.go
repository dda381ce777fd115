package main

import (
	"math"
	"strings"
	"testing"

	"multigpu/runtime/host"
)

// --tf32 takes off, on or auto; on needs the GPUs, which --backend cpu
// rules out.
func TestTF32Flag(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--tf32", "maybe"}, 2, `--tf32: expected off, on or auto, found "maybe"`},
		{[]string{"--tf32", "on", "--backend", "cpu"}, 2, "--tf32 on: TF32 is a mode of the GPUs' matrix products"},
		{[]string{"--tf32", "auto", "--backend", "cpu"}, 0, ""},
		{[]string{"--tf32=off"}, 0, ""},
	} {
		code, _, stderr := runCmd(t, "", append([]string{"../../testdata/mlp.graph"}, c.args...)...)
		if code != c.code || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and %q", c.args, code, stderr, c.code, c.want)
		}
	}
}

// With TF32, --check's f32 tolerance is TF32's: 1e-2 of each element plus
// 2e-3 of the output's largest magnitude; without, 1e-5 plus 1e-7.
func TestCompareTF32(t *testing.T) {
	want := host.New([]int{3}, []float32{1, -4, 0.001})
	for _, c := range []struct {
		got       []float32
		f32, tf32 bool
	}{
		{[]float32{1, -4, 0.001}, true, true},
		{[]float32{1.000005, -4, 0.001}, true, true},
		{[]float32{1.005, -4, 0.001}, false, true},            // 5e-3 relative
		{[]float32{1, -4.03, 0.001}, false, true},             // 7.5e-3 relative
		{[]float32{1, -4, 0.008}, false, true},                // 7e-3 off: within 2e-3 * 4
		{[]float32{1, -4, 0.01}, false, false},                // 9e-3 off: beyond 8e-3 + 1e-5
		{[]float32{1.02, -4, 0.001}, false, false},            // 2e-2 relative
		{[]float32{1, -4, float32(math.NaN())}, false, false}, // NaN against a number
	} {
		for _, tf32 := range []bool{false, true} {
			r, err := compareWithin(want, host.New([]int{3}, c.got), tf32)
			if err != nil {
				t.Fatal(err)
			}
			if exp := map[bool]bool{false: c.f32, true: c.tf32}[tf32]; r.withinBounds != exp {
				t.Errorf("%v with tf32=%v: within bounds %v, want %v", c.got, tf32, r.withinBounds, exp)
			}
		}
	}
}
