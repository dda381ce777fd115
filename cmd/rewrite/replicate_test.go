package main

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var _ = flag.Bool("update", false, "rewrite golden files (the replicate goldens are written by passes/replicate)")

// TestGoldenCommands runs the command line each golden file names in its
// header and compares what it prints with the file: the CLI and the
// library agree, flag for flag.
func TestGoldenCommands(t *testing.T) {
	files, err := filepath.Glob("../../golden/*/*")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		header, body, _ := strings.Cut(string(data), "\n")
		args, ok := strings.CutPrefix(header, "# rewrite ")
		if !ok {
			t.Fatalf("%s: header %q does not name a command", file, header)
		}
		var warnings []string
		for strings.HasPrefix(body, "# warning: ") {
			var w string
			w, body, _ = strings.Cut(body, "\n")
			warnings = append(warnings, "rewrite: warning: replicate: "+strings.TrimPrefix(w, "# warning: ")+"\n")
		}
		fields := strings.Fields(args)
		fields[0] = filepath.Join("../..", fields[0])
		t.Run(file, func(t *testing.T) {
			code, stdout, stderr := runCmd(t, "", fields...)
			if strings.HasSuffix(file, ".err") {
				if code != exitUsage || stdout != "" {
					t.Fatalf("exit %d, stdout %q; want exit 2 and nothing on stdout", code, stdout)
				}
				// The CLI names the file as given on its command line.
				want := strings.ReplaceAll(body, "testdata/", "../../testdata/")
				if !strings.Contains(stderr, strings.TrimSpace(want)) {
					t.Errorf("stderr:\n%s\nwant it to contain:\n%s", stderr, want)
				}
				return
			}
			if code != exitOK || stdout != body {
				t.Errorf("exit %d; stdout differs from %s:\n%s\nstderr: %s", code, file, stdout, stderr)
			}
			if stderr != strings.Join(warnings, "") {
				t.Errorf("stderr %q, want %q", stderr, strings.Join(warnings, ""))
			}
		})
	}
}

func TestReplicateFlags(t *testing.T) {
	mlp := "../../testdata/mlp.graph"
	cases := []struct {
		args []string
		code int
		want string // on stderr, or stdout when code is 0
	}{
		{[]string{mlp, "--gpus", "1"}, exitUsage, "rewrite: --gpus: expected at least 2 GPUs (data parallelism needs two or more), found 1\n"},
		{[]string{mlp, "--gpus", "0,0"}, exitUsage, "rewrite: --gpus: expected distinct GPU indices, found gpu:0 twice\n"},
		{[]string{mlp, "--gpus=-1,2"}, exitUsage, "rewrite: --gpus: expected non-negative GPU indices, found -1\n"},
		{[]string{mlp, "--merge", "gpu:0"}, exitUsage, "rewrite: --merge configures the replicate pass: give --gpus too\n"},
		{[]string{mlp, "--gpus", "2", "--merge", "tpu"}, exitUsage, `rewrite: --merge: expected a device (cpu or gpu:K with K >= 0), found "tpu"` + "\n"},
		{[]string{mlp, "--gpus", "2", "--split", "even"}, exitUsage, `rewrite: --split: expected a split policy (balanced or remainder), found "even"` + "\n"},
		{[]string{mlp, "--gpus", "2", "--batch", "-4"}, exitUsage, "rewrite: --batch: expected a positive batch size, found -4\n"},
		{[]string{mlp, "--gpus", "2", "--batchnorm", "mean"}, exitUsage, `rewrite: --batchnorm: expected a batchnorm mode (per-replica, sync or refuse), found "mean"` + "\n"},
		{[]string{mlp, "--gpus", "4", "--available", "0,1"}, exitUsage, "rewrite: replicate: devices not available: gpu:2, gpu:3; expected gpu:0, gpu:1, gpu:2, gpu:3, cpu, available: gpu:0, gpu:1\n"},
		{[]string{"--gpus", "4", "--available", "gpu:0,gpu:1,gpu:2,gpu:3", mlp, "--verify-each"}, exitOK, "graph mlp {\n"},
	}
	for _, c := range cases {
		code, stdout, stderr := runCmd(t, "", c.args...)
		got := stderr
		if c.code == exitOK {
			got = stdout
		}
		if code != c.code || !strings.HasPrefix(got, c.want) {
			t.Errorf("rewrite %s: exit %d\nstdout %q\nstderr %q\nwant exit %d and %q", strings.Join(c.args, " "), code, stdout, stderr, c.code, c.want)
		}
	}
}

func TestExplain(t *testing.T) {
	code, stdout, stderr := runCmd(t, "", "../../testdata/softmax_over_batch.graph", "--gpus", "2", "--explain")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		"the batch is symbolic: costs at batch 64",
		"device    nodes        FLOPs  share",
		"gpu:0 ", "gpu:1 ", "cpu ",
		"warning: 40% of the FLOPs run on the merge device cpu, not in parallel; it needs the whole batch at %att = softmax (../../testdata/softmax_over_batch.graph:6:3)",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("--explain output lacks %q:\n%s", want, stdout)
		}
	}
	// A model that parallelises well gets no warning; -o still writes the graph.
	out := filepath.Join(t.TempDir(), "cnn.graph")
	code, stdout, stderr = runCmd(t, "", "../../testdata/cnn.graph", "--gpus", "4", "--batch", "512", "--explain", "-o", out)
	if code != exitOK || strings.Contains(stdout, "warning") || !strings.Contains(stdout, "batch 512, merge device cpu") {
		t.Errorf("exit %d, stdout:\n%s\nstderr: %s", code, stdout, stderr)
	}
	if data, err := os.ReadFile(out); err != nil || !strings.HasPrefix(string(data), "graph cnn {") {
		t.Errorf("-o with --explain: %v %q", err, data)
	}
}
