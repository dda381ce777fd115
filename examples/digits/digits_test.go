package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"flag"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"multigpu/graph"
	"multigpu/runtime"
	"multigpu/tensorio"
	"multigpu/train"
)

var _ = flag.Bool("update", false, "no golden files here; declared so that go test ./... -update runs")

// csvPath finds digits.csv.gz: $DIGITS_CSV, data/ (where fetch.sh puts
// it), or where Debian's python3-sklearn installs it.
func csvPath(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("DIGITS_CSV"), "data/digits.csv.gz",
		"/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz"} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	msg := "digits.csv.gz not found: run examples/digits/fetch.sh (it extracts it from Debian's python3-sklearn package), or set DIGITS_CSV"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// TestDigits trains the example CNN on four fifths of the digits, the
// way README.md's command does (two replicas, Adam, batch 32, seed 1),
// and checks at least 95% accuracy on the held-out fifth.
func TestDigits(t *testing.T) {
	s, err := Load(csvPath(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Labels) != 1797 {
		t.Fatalf("%d samples, want 1797", len(s.Labels))
	}
	trainSet, testSet := s.Split()
	src, err := os.ReadFile("cnn.graph")
	if err != nil {
		t.Fatal(err)
	}
	g, err := graph.Parse("cnn.graph", src)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := train.New(g, train.Config{GPUs: []int{0, 1}, Optimizer: train.Optimizer{Kind: train.Adam, LR: 0.01}, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.SetWeights(runtime.RandomParams(g, 1)); err != nil {
		t.Fatal(err)
	}
	data, err := tr.NewDataset(trainSet.Arrays())
	if err != nil {
		t.Fatal(err)
	}
	epochs := 20
	if testing.Short() {
		epochs = 8
	}
	hist, err := tr.Fit(context.Background(), data, train.FitConfig{Epochs: epochs, Batch: 32})
	if err != nil {
		t.Fatal(err)
	}
	test := testSet.Arrays()
	acc, err := Accuracy(g, tr.Weights(), test["x"], test["t"])
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d epochs on %d samples, 2 replicas: loss %.4f -> %.4f, held-out accuracy %.2f%% of %d",
		epochs, data.Len(), hist[0].Loss, hist[len(hist)-1].Loss, 100*acc, len(testSet.Labels))
	if acc < 0.95 {
		t.Errorf("held-out accuracy %.2f%%, want at least 95%%", 100*acc)
	}
}

func TestParseAndSplit(t *testing.T) {
	row := strings.Repeat("1,", 64)
	s, err := parse("d.csv", strings.NewReader(row+"3\n"+row+"7\n\n"))
	if err != nil || len(s.Labels) != 2 || s.Labels[1] != 7 || s.Pixels[0][5] != 1 {
		t.Fatalf("%v %+v", err, s)
	}
	for _, c := range []struct{ src, want string }{
		{"1,2,3\n", "d.csv:1: expected 64 pixels and a label, found 3 fields"},
		{strings.Repeat("1,", 63) + "17,3\n", `d.csv:1: pixel 63: expected a number in 0..16, found "17"`},
		{row + "10\n", `d.csv:1: expected a label in 0..9, found "10"`},
		{"", "d.csv: no samples"},
	} {
		if _, err := parse("d.csv", strings.NewReader(c.src)); err == nil || err.Error() != c.want {
			t.Errorf("got %v, want %s", err, c.want)
		}
	}
	all := &Samples{}
	for i := 0; i < 12; i++ {
		all.Pixels = append(all.Pixels, [64]float32{float32(i)})
		all.Labels = append(all.Labels, i%10)
	}
	tr, te := all.Split()
	if len(tr.Labels) != 10 || len(te.Labels) != 2 || te.Pixels[0][0] != 4 || te.Pixels[1][0] != 9 {
		t.Errorf("split: %d and %d, held out %v %v", len(tr.Labels), len(te.Labels), te.Pixels[0][0], te.Pixels[1][0])
	}
	a := te.Arrays()
	if got := a["x"].Shape(); got[0] != 2 || got[1] != 1 || got[2] != 8 || got[3] != 8 {
		t.Errorf("x shape %v", got)
	}
	if x := a["x"].Data().([]float32); x[0] != 0.25 {
		t.Errorf("pixel 4 scaled to %v, want 0.25", x[0])
	}
	if tg := a["t"].Data().([]float32); tg[4] != 1 || tg[10+9] != 1 {
		t.Errorf("one-hot targets %v", tg)
	}
}

func TestPlot(t *testing.T) {
	log := "training ...\nepoch 1/3: loss 2.302585 (45 steps, 1438 samples, 0.1s)\nepoch 2/3: loss 0.5 (45 steps)\nepoch 3/3: loss 0.25 (45 steps)\nsaved\n"
	losses, err := ParseLosses(strings.NewReader(log))
	if err != nil || len(losses) != 3 || losses[2] != 0.25 {
		t.Fatalf("%v %v", losses, err)
	}
	if _, err := ParseLosses(strings.NewReader("nothing\n")); err == nil {
		t.Error("no error for a log without losses")
	}
	var buf bytes.Buffer
	if err := run([]string{"plot"}, strings.NewReader(log), &buf); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != 640 || b.Dy() != 400 {
		t.Errorf("image %v", b)
	}
	// The axis titles: every letter has a glyph, and each title is drawn
	// where it belongs (below the horizontal axis, above the vertical).
	for _, r := range xTitle + yTitle {
		if _, ok := glyphs[r]; !ok {
			t.Errorf("no glyph for %q of the axis titles", r)
		}
	}
	dark := func(r image.Rectangle) int {
		n := 0
		for y := r.Min.Y; y < r.Max.Y; y++ {
			for x := r.Min.X; x < r.Max.X; x++ {
				if c, _, _, _ := img.At(x, y).RGBA(); c < 0x8000 {
					n++
				}
			}
		}
		return n
	}
	if n := dark(image.Rect(300, 370, 380, 390)); n < 40 {
		t.Errorf("the horizontal axis title %q is not below the axis: %d dark pixels", xTitle, n)
	}
	if n := dark(image.Rect(30, 8, 90, 22)); n < 30 {
		t.Errorf("the vertical axis title %q is not above the axis: %d dark pixels", yTitle, n)
	}
}

func TestConvertAndEvaluate(t *testing.T) {
	dir := t.TempDir()
	row := strings.Repeat("8,", 64)
	var src strings.Builder
	for i := 0; i < 10; i++ {
		src.WriteString(row + string(rune('0'+i)) + "\n")
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(src.String()))
	zw.Close()
	csv := filepath.Join(dir, "d.csv.gz")
	if err := os.WriteFile(csv, gz.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run([]string{"convert", "-csv", csv, "-out", dir}, nil, &out); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != dir+": 8 samples for training, 2 held out\n" {
		t.Errorf("convert: %q", got)
	}
	src2, err := os.ReadFile("cnn.graph")
	if err != nil {
		t.Fatal(err)
	}
	g, err := graph.Parse("cnn.graph", src2)
	if err != nil {
		t.Fatal(err)
	}
	w := filepath.Join(dir, "w.npz")
	if err := tensorio.WriteArchive(w, runtime.RandomParams(g, 1)); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := run([]string{"evaluate", "-model", "cnn.graph", "-data", filepath.Join(dir, "test.npz"), "-weights", w}, nil, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "accuracy on "+filepath.Join(dir, "test.npz")+": ") || !strings.HasSuffix(out.String(), " of 2\n") {
		t.Errorf("evaluate: %q", out.String())
	}
}
