package graph

import (
	"bytes"
	"errors"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

func dotString(t *testing.T, g *Graph) string {
	t.Helper()
	var b bytes.Buffer
	if err := WriteDOT(&b, g); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestWriteDOTUnplaced(t *testing.T) {
	g := mustParse(t, "small.graph", []byte(body(
		"input %x: f32[N,4]",
		"param %w: f32[4,2]",
		"const %h: f32[] = 0.5",
		"%z = matmul %x, %w",
		"%s = mul %z, %h",
		"%y = softmax %s {axis=0}",
		"output %y, %z",
	)))
	want := `digraph "g" {
  graph [rankdir=TB, fontname="Helvetica"];
  node [shape=box, style=rounded, fontname="Helvetica", fontsize=10];
  edge [fontname="Helvetica", fontsize=9];
  n0 [label="%x\ninput\nf32[N,4]", shape=invhouse, style=""];
  n1 [label="%w\nparam\nf32[4,2]", shape=note, style=""];
  n2 [label="%h\nconst = 0.5\nf32[]", shape=plain];
  n3 [label="%z\nmatmul\nf32[N,2]\noutput 1", peripheries=2];
  n4 [label="%s\nmul\nf32[N,2]"];
  n5 [label="%y\nsoftmax {axis=0}\nf32[N,2]\noutput 0", peripheries=2];
  n0 -> n3 [headlabel="0"];
  n1 -> n3 [headlabel="1"];
  n3 -> n4 [headlabel="0"];
  n2 -> n4 [headlabel="1"];
  n4 -> n5;
}
`
	if got := dotString(t, g); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}

func TestWriteDOTClusters(t *testing.T) {
	// Devices appear out of order in the graph: clusters are still cpu,
	// gpu:0, gpu:1, gpu:10.
	g := mustParse(t, "placed.graph", []byte(body(
		"input %x: f32[N=4,3] @cpu",
		"%a = slice %x {axis=0, part=1, parts=3} @gpu:10",
		"%b = slice %x {axis=0, part=0, parts=3} @gpu:1",
		"%c = slice %x {axis=0, part=2, parts=3} @gpu:0",
		"%ra = relu %a @gpu:10",
		"%rb = relu %b @gpu:1",
		"%rc = relu %c @gpu:0",
		"%y = concat %rb, %ra, %rc {axis=0} @cpu",
		"output %y",
	)))
	got := dotString(t, g)
	re := regexp.MustCompile(`subgraph (\S+) \{\n    label="([^"]*)";`)
	var clusters []string
	for _, m := range re.FindAllStringSubmatch(got, -1) {
		clusters = append(clusters, m[1]+"="+m[2])
	}
	if want := "cluster_cpu=cpu cluster_gpu_0=gpu:0 cluster_gpu_1=gpu:1 cluster_gpu_10=gpu:10"; strings.Join(clusters, " ") != want {
		t.Fatalf("clusters %v, want %s\n%s", clusters, want, got)
	}
	// Every node sits in its device's cluster, in graph order.
	for _, tc := range []struct{ cluster, nodes string }{
		{"cluster_cpu", "n0 n7"},
		{"cluster_gpu_0", "n3 n6"},
		{"cluster_gpu_1", "n2 n5"},
		{"cluster_gpu_10", "n1 n4"},
	} {
		i := strings.Index(got, "subgraph "+tc.cluster+" {")
		j := strings.Index(got[i:], "\n  }\n")
		block := got[i : i+j]
		var ids []string
		for _, m := range regexp.MustCompile(`(?m)^    (n\d+) \[`).FindAllStringSubmatch(block, -1) {
			ids = append(ids, m[1])
		}
		if strings.Join(ids, " ") != tc.nodes {
			t.Errorf("%s holds %v, want %s", tc.cluster, ids, tc.nodes)
		}
	}
	for _, e := range []string{
		"  n0 -> n1 [style=dashed];\n",                                                // cpu -> gpu:10
		"  n1 -> n4;\n",                                                               // same device: solid
		"  n5 -> n7 [headlabel=\"0\", style=dashed];\n",                               // gpu:1 -> cpu, first operand
		"  n6 -> n7 [headlabel=\"2\", style=dashed];\n",                               // gpu:0 -> cpu, third operand
		"n7 [label=\"%y\\nconcat {axis=0}\\nf32[N=4,3]\\noutput 0\", peripheries=2];", // output marked
	} {
		if !strings.Contains(got, e) {
			t.Errorf("missing %q in\n%s", e, got)
		}
	}
	if got != dotString(t, g) || got != dotString(t, g.Clone()) {
		t.Fatal("WriteDOT is not deterministic")
	}
}

func TestDOTQuote(t *testing.T) {
	for in, want := range map[string]string{
		"":            `""`,
		"gpu:0":       `"gpu:0"`,
		"a\"b":        `"a\"b"`,
		`back\slash`:  `"back\\slash"`,
		"two\nlines":  `"two\nlines"`,
		"crlf\r\nend": `"crlf\nend"`,
	} {
		if got := dotQuote(in); got != want {
			t.Errorf("dotQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

type failWriter struct{}

var errWrite = errors.New("disk full")

func (failWriter) Write([]byte) (int, error) { return 0, errWrite }

func TestWriteDOTError(t *testing.T) {
	g := mustParse(t, "m.graph", testModels(t)[0].src)
	if err := WriteDOT(failWriter{}, g); !errors.Is(err, errWrite) {
		t.Fatalf("WriteDOT to a failing writer: %v", err)
	}
	if err := Print(failWriter{}, g); !errors.Is(err, errWrite) {
		t.Fatalf("Print to a failing writer: %v", err)
	}
}

// TestWriteDOTGraphviz runs every model's DOT through Graphviz's dot.
func TestWriteDOTGraphviz(t *testing.T) {
	dot, err := exec.LookPath("dot")
	if err != nil {
		t.Skip("Graphviz's dot is not installed (apt-get install graphviz): skipping the check that it accepts WriteDOT's output")
	}
	for _, m := range testModels(t) {
		t.Run(strings.TrimSuffix(m.name, ".graph"), func(t *testing.T) {
			src := dotString(t, mustParse(t, m.name, m.src))
			cmd := exec.Command(dot, "-Tsvg")
			cmd.Stdin = strings.NewReader(src)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil || stderr.Len() > 0 {
				t.Fatalf("dot -Tsvg: %v\n%s\ninput:\n%s", err, stderr.String(), src)
			}
			if !bytes.Contains(out, []byte("<svg")) {
				t.Fatalf("dot -Tsvg wrote no SVG")
			}
		})
	}
}
