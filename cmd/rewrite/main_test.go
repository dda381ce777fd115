package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"multigpu/graph"
)

const mlpSrc = `# a two-layer perceptron
graph mlp {
  input %x: f32[N,784]
  param %w1: f32[784,256]
  param %b1: f32[256]
  param %w2: f32[256,10]
  param %b2: f32[10]
  %h = matmul %x, %w1
  %hb = add %h, %b1
  %a = relu %hb
  %z = matmul %a, %w2
  %zb = add %z, %b2
  %y = softmax %zb {axis=1}
  output %y
}
`

// badSrc has two errors, both reported.
const badSrc = `graph bad {
  input %x: f32[N,4]
  %y = relu %q
  %z = frobnicate %x
  output %y
}
`

// runCmd runs the command in process and returns its exit status and output.
func runCmd(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

// writeModel writes src to a file in a fresh directory and returns its path.
func writeModel(t *testing.T, name, src string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func canonical(t *testing.T, name string, src []byte) string {
	t.Helper()
	g, err := graph.Parse(name, src)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return graph.Format(g)
}

// TestTestdataModels runs every model in testdata through the command, in
// both formats; a model named err_* must be refused.
func TestTestdataModels(t *testing.T) {
	models, err := filepath.Glob("../../testdata/*.graph")
	if err != nil {
		t.Fatal(err)
	}
	if len(models) == 0 {
		t.Fatal("no models in testdata/")
	}
	dot, dotErr := exec.LookPath("dot")
	for _, m := range models {
		t.Run(filepath.Base(m), func(t *testing.T) {
			src, err := os.ReadFile(m)
			if err != nil {
				t.Fatal(err)
			}
			code, out, errOut := runCmd(t, "", m)
			if strings.HasPrefix(filepath.Base(m), "err_") { // a model that must be refused
				if code != 2 || !strings.HasPrefix(errOut, m+":") {
					t.Errorf("exit %d, stderr:\n%s\nwant 2 and file:line:col: errors", code, errOut)
				}
				return
			}
			if code != 0 {
				t.Fatalf("text: exit %d, stderr:\n%s", code, errOut)
			}
			if want := canonical(t, m, src); out != want {
				t.Errorf("text output differs from graph.Format:\n got:\n%s\nwant:\n%s", out, want)
			}
			if again := canonical(t, m, []byte(out)); again != out {
				t.Errorf("output does not print back unchanged:\n%s\nthen:\n%s", out, again)
			}

			code, out, errOut = runCmd(t, "", "--format", "dot", m)
			if code != 0 {
				t.Fatalf("dot: exit %d, stderr:\n%s", code, errOut)
			}
			if !strings.HasPrefix(out, "digraph") {
				t.Errorf("dot output does not start with digraph:\n%s", out)
			}
			if testing.Short() || dotErr != nil {
				return // Graphviz checks the DOT in the full run only
			}
			cmd := exec.Command(dot, "-Tsvg")
			cmd.Stdin = strings.NewReader(out)
			var svgErr bytes.Buffer
			cmd.Stderr = &svgErr
			svg, err := cmd.Output()
			if err != nil || svgErr.Len() > 0 {
				t.Errorf("dot -Tsvg: %v\n%s\ninput:\n%s", err, svgErr.String(), out)
			}
			if !bytes.Contains(svg, []byte("<svg")) {
				t.Errorf("dot -Tsvg printed no SVG")
			}
		})
	}
}

func TestFlagPlacement(t *testing.T) {
	m := writeModel(t, "mlp.graph", mlpSrc)
	text := canonical(t, m, []byte(mlpSrc))
	_, dot, _ := runCmd(t, "", "--format=dot", m)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{m}, text},
		{[]string{"--format", "text", m}, text},
		{[]string{m, "--format", "text"}, text},
		{[]string{"-format", "dot", m}, dot},
		{[]string{"--format", "dot", m}, dot},
		{[]string{"--format=dot", m}, dot},
		{[]string{m, "--format=dot"}, dot},
		{[]string{m, "-format", "dot"}, dot},
		{[]string{"--verify-each", m, "--format", "dot"}, dot},
		{[]string{"--format", "text", m, "-verify-each", "--format", "dot"}, dot}, // last wins
		{[]string{"--format", "dot", "--", m}, dot},
		{[]string{"-o", "-", m}, text},
	} {
		code, out, errOut := runCmd(t, "", tc.args...)
		if code != 0 {
			t.Errorf("%q: exit %d, stderr:\n%s", tc.args, code, errOut)
			continue
		}
		if out != tc.want {
			t.Errorf("%q: wrong output:\n%s", tc.args, out)
		}
	}
}

func TestParseArgs(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		model  string
		output string
		format format
		verify bool
	}{
		{[]string{"m.graph"}, "m.graph", "", formatText, false},
		{[]string{"-"}, "-", "", formatText, false},
		{[]string{"--", "-m.graph"}, "-m.graph", "", formatText, false},
		{[]string{"--", "--verify-each"}, "--verify-each", "", formatText, false},
		{[]string{"-o", "--", "m.graph"}, "m.graph", "--", formatText, false},
		{[]string{"-o=out", "--", "-x"}, "-x", "out", formatText, false},
		{[]string{"--verify-each", "--", "m"}, "m", "", formatText, true},
		{[]string{"m", "--output", "o", "--verify-each"}, "m", "o", formatText, true},
		{[]string{"m", "--output=o", "--format", "dot"}, "m", "o", formatDOT, false},
		{[]string{"-o", "x", "m", "-o", "y"}, "m", "y", formatText, false},
	} {
		o, err := parseArgs(tc.args)
		if err != nil {
			t.Errorf("%q: %v", tc.args, err)
			continue
		}
		if o.model != tc.model || o.output != tc.output || o.format != tc.format || o.verifyEach != tc.verify {
			t.Errorf("%q: got %+v", tc.args, *o)
		}
	}
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"--help"}, {"-help"}, {"m.graph", "--help"}, {"-h", "a", "b"}} {
		code, out, errOut := runCmd(t, "", args...)
		if code != 0 || !strings.HasPrefix(out, "usage: rewrite MODEL") || errOut != "" {
			t.Errorf("%q: exit %d, stdout:\n%s\nstderr:\n%s", args, code, out, errOut)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	m := writeModel(t, "mlp.graph", mlpSrc)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "no MODEL given"},
		{[]string{"--format", "dot"}, "no MODEL given"},
		{[]string{m, m}, "want exactly one MODEL, got 2"},
		{[]string{m, "--", m}, "want exactly one MODEL, got 2"},
		{[]string{"--bogus", m}, "flag provided but not defined: -bogus"},
		{[]string{m, "-x"}, "flag provided but not defined: -x"},
		{[]string{m, "--format", "svg"}, `unknown format "svg" (want text or dot)`},
		{[]string{"--format=", m}, `unknown format ""`},
		{[]string{m, "-o"}, "flag needs an argument: -o"},
		{[]string{m, "--verify-each=maybe"}, "invalid boolean value"},
	} {
		code, out, errOut := runCmd(t, "", tc.args...)
		if code != 2 {
			t.Errorf("%q: exit %d, want 2", tc.args, code)
		}
		if out != "" {
			t.Errorf("%q: wrote to stdout:\n%s", tc.args, out)
		}
		if !strings.HasPrefix(errOut, "rewrite: ") || !strings.Contains(errOut, tc.want) || !strings.Contains(errOut, "rewrite -help") {
			t.Errorf("%q: stderr %q, want it to contain %q and a hint", tc.args, errOut, tc.want)
		}
	}
}

func TestBadModel(t *testing.T) {
	bad := writeModel(t, "bad.graph", badSrc)
	code, out, errOut := runCmd(t, "", bad)
	if code != 2 || out != "" {
		t.Fatalf("exit %d, stdout %q; want 2 and nothing", code, out)
	}
	lines := strings.Split(strings.TrimSuffix(errOut, "\n"), "\n")
	re := regexp.MustCompile(`^` + regexp.QuoteMeta(bad) + `:\d+:\d+: \S`)
	if len(lines) != 2 {
		t.Errorf("want 2 errors, one per line, got:\n%s", errOut)
	}
	for _, l := range lines {
		if !re.MatchString(l) {
			t.Errorf("error line %q is not file:line:col: message", l)
		}
	}
	if !strings.HasPrefix(lines[0], bad+":3:") {
		t.Errorf("first error %q is not on line 3", lines[0])
	}

	code, _, errOut = runCmd(t, badSrc, "-")
	if code != 2 || !strings.HasPrefix(errOut, "<stdin>:3:") {
		t.Errorf("stdin: exit %d, stderr:\n%s", code, errOut)
	}

	missing := filepath.Join(t.TempDir(), "missing.graph")
	code, _, errOut = runCmd(t, "", missing)
	if code != 2 || !strings.Contains(errOut, "no such file") || !strings.Contains(errOut, missing) {
		t.Errorf("missing model: exit %d, stderr:\n%s", code, errOut)
	}
}

func TestStdin(t *testing.T) {
	code, out, errOut := runCmd(t, mlpSrc, "-", "--format", "text")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if want := canonical(t, "x", []byte(mlpSrc)); out != want {
		t.Errorf("got:\n%s\nwant:\n%s", out, want)
	}
}

// listDir returns the names in dir, sorted.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestOutputFile(t *testing.T) {
	m := writeModel(t, "mlp.graph", mlpSrc)
	dir := t.TempDir()
	out := filepath.Join(dir, "out.graph")
	for _, args := range [][]string{{m, "-o", out}, {"--output", out, m}, {"--output=" + out, m}} {
		os.Remove(out)
		code, stdout, errOut := runCmd(t, "", args...)
		if code != 0 || stdout != "" || errOut != "" {
			t.Fatalf("%q: exit %d, stdout %q, stderr %q", args, code, stdout, errOut)
		}
		got, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if want := canonical(t, m, []byte(mlpSrc)); string(got) != want {
			t.Errorf("%q: file holds:\n%s\nwant:\n%s", args, got, want)
		}
		if fi, _ := os.Stat(out); fi.Mode().Perm() != 0o644 {
			t.Errorf("%q: new file has mode %v, want 0644", args, fi.Mode().Perm())
		}
		if names := listDir(t, dir); !slices.Equal(names, []string{"out.graph"}) {
			t.Errorf("%q: directory holds %q", args, names)
		}
	}

	// Replacing a file keeps its mode.
	if err := os.WriteFile(out, []byte("old\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(out, 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runCmd(t, "", m, "-o", out, "--format", "dot"); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	got, _ := os.ReadFile(out)
	if !bytes.HasPrefix(got, []byte("digraph")) {
		t.Errorf("file not replaced by DOT:\n%s", got)
	}
	if fi, _ := os.Stat(out); fi.Mode().Perm() != 0o600 {
		t.Errorf("replaced file has mode %v, want 0600", fi.Mode().Perm())
	}
}

func TestOutputUntouchedOnFailure(t *testing.T) {
	bad := writeModel(t, "bad.graph", badSrc)
	good := writeModel(t, "mlp.graph", mlpSrc)
	dir := t.TempDir()
	out := filepath.Join(dir, "keep.graph")
	old := []byte("precious contents\n")
	if err := os.WriteFile(out, old, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{bad, "-o", out},
		{"-o", out, filepath.Join(dir, "missing.graph")},
		{"-o", out, good, "--format", "png"},
		{"-o", out, good, good},
		{"-o", out},
	} {
		code, stdout, errOut := runCmd(t, "", args...)
		if code != 2 || stdout != "" || errOut == "" {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want 2 and an error", args, code, stdout, errOut)
		}
		got, err := os.ReadFile(out)
		if err != nil || !bytes.Equal(got, old) {
			t.Errorf("%q: output file changed to %q (%v)", args, got, err)
		}
		if names := listDir(t, dir); !slices.Equal(names, []string{"keep.graph"}) {
			t.Errorf("%q: directory holds %q", args, names)
		}
	}
}

func TestOutputMissingDir(t *testing.T) {
	m := writeModel(t, "mlp.graph", mlpSrc)
	dir := t.TempDir()
	out := filepath.Join(dir, "no", "such", "dir", "out.graph")
	code, stdout, errOut := runCmd(t, "", m, "-o", out)
	if code != 1 || stdout != "" {
		t.Errorf("exit %d, stdout %q; want 1 and nothing", code, stdout)
	}
	if !strings.HasPrefix(errOut, "rewrite: ") || !strings.Contains(errOut, filepath.Join(dir, "no", "such", "dir")) || strings.Count(errOut, "\n") != 1 {
		t.Errorf("stderr %q: want one line naming the directory", errOut)
	}
	if names := listDir(t, dir); len(names) != 0 {
		t.Errorf("directory holds %q", names)
	}

	// A directory where the file should be is refused, before any work,
	// as a usage error.
	code, _, errOut = runCmd(t, "", m, "-o", dir)
	if code != 2 || !strings.Contains(errOut, "expected a file, found a directory") {
		t.Errorf("-o DIR: exit %d, stderr %q", code, errOut)
	}
}
