package graph

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"testing"
	"time"
)

// chainNodes is the size of the generated graph the benchmarks use.
const chainNodes = 200_000

// chainSource returns a graph of n nodes, one long dependency chain of
// alternating relu and add (with a param): the deepest graph of its size.
func chainSource(n int) []byte {
	var b bytes.Buffer
	b.Grow(n * 40)
	b.WriteString("# chain: a generated chain of relu and add\ngraph chain {\n  input %x: f32[N,16]\n  param %b: f32[16]\n")
	prev := "x"
	for i := 2; i < n; i++ {
		name := "v" + strconv.Itoa(i)
		if i%2 == 0 {
			fmt.Fprintf(&b, "  %%%s = relu %%%s\n", name, prev)
		} else {
			fmt.Fprintf(&b, "  %%%s = add %%%s, %%b : f32[N,16]\n", name, prev)
		}
		prev = name
	}
	fmt.Fprintf(&b, "  output %%%s\n}\n", prev)
	return b.Bytes()
}

// TestChain parses, verifies, prints, clones and exports a long chain:
// nothing may recurse as deep as the graph, and the round trip must hold.
func TestChain(t *testing.T) {
	n := chainNodes
	if testing.Short() {
		n = 20_000
	}
	src := chainSource(n)
	start := time.Now()
	g, err := Parse("chain.graph", src)
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Nodes) != n {
		t.Fatalf("%d nodes, want %d", len(g.Nodes), n)
	}
	if err := Verify(g); err != nil {
		t.Fatal(err)
	}
	out := Format(g)
	t.Logf("%d nodes: parse+verify+print in %v", n, time.Since(start))
	g2, err := Parse("chain.graph", []byte(out))
	if err != nil {
		t.Fatal(err)
	}
	if Format(g2) != out {
		t.Fatal("chain does not round-trip")
	}
	if Format(g.Clone()) != out {
		t.Fatal("clone of the chain prints differently")
	}
	if err := WriteDOT(io.Discard, g); err != nil {
		t.Fatal(err)
	}
	if users := g.Users(); len(users[g.Lookup("b")]) != (n-2)/2 {
		t.Fatalf("%%b has %d users, want %d", len(users[g.Lookup("b")]), (n-2)/2)
	}
}

func reportPerNode(b *testing.B, n int) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/node")
}

// BenchmarkParse measures Parse, which includes its final Verify.
func BenchmarkParse(b *testing.B) {
	src := chainSource(chainNodes)
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse("chain.graph", src); err != nil {
			b.Fatal(err)
		}
	}
	reportPerNode(b, chainNodes)
}

func BenchmarkVerify(b *testing.B) {
	g, err := Parse("chain.graph", chainSource(chainNodes))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := Verify(g); err != nil {
			b.Fatal(err)
		}
	}
	reportPerNode(b, chainNodes)
}

func BenchmarkPrint(b *testing.B) {
	g, err := Parse("chain.graph", chainSource(chainNodes))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := Print(io.Discard, g); err != nil {
			b.Fatal(err)
		}
	}
	reportPerNode(b, chainNodes)
}

func BenchmarkClone(b *testing.B) {
	g, err := Parse("chain.graph", chainSource(chainNodes))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		g.Clone()
	}
	reportPerNode(b, chainNodes)
}

func BenchmarkWriteDOT(b *testing.B) {
	g, err := Parse("chain.graph", chainSource(chainNodes))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := WriteDOT(io.Discard, g); err != nil {
			b.Fatal(err)
		}
	}
	reportPerNode(b, chainNodes)
}

// BenchmarkParseVerifyPrint is the whole trip the command makes: parse
// (with its Verify), an explicit Verify, and print.
func BenchmarkParseVerifyPrint(b *testing.B) {
	src := chainSource(chainNodes)
	b.ReportAllocs()
	for b.Loop() {
		g, err := Parse("chain.graph", src)
		if err != nil {
			b.Fatal(err)
		}
		if err := Verify(g); err != nil {
			b.Fatal(err)
		}
		if err := Print(io.Discard, g); err != nil {
			b.Fatal(err)
		}
	}
	reportPerNode(b, chainNodes)
}
