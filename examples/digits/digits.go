package main

import (
	"bufio"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"gorgonia.org/tensor"

	"multigpu/graph"
	"multigpu/runtime"
	"multigpu/runtime/host"
	"multigpu/train"
)

// Samples are the 8x8 digits: pixels in 0..16, row-major, and labels.
type Samples struct {
	Pixels [][64]float32
	Labels []int
}

// Load reads scikit-learn's digits.csv.gz: 1,797 lines of 64 pixels
// (0..16) and a label (0..9).
func Load(path string) (*Samples, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return parse(path, zr)
}

func parse(path string, r io.Reader) (*Samples, error) {
	s := &Samples{}
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		fields := strings.Split(strings.TrimSpace(sc.Text()), ",")
		if len(fields) == 1 && fields[0] == "" {
			continue
		}
		if len(fields) != 65 {
			return nil, fmt.Errorf("%s:%d: expected 64 pixels and a label, found %d fields", path, line, len(fields))
		}
		var px [64]float32
		for i, f := range fields[:64] {
			v, err := strconv.ParseFloat(f, 64)
			if err != nil || v < 0 || v > 16 {
				return nil, fmt.Errorf("%s:%d: pixel %d: expected a number in 0..16, found %q", path, line, i, f)
			}
			px[i] = float32(v)
		}
		label, err := strconv.ParseFloat(fields[64], 64)
		if err != nil || label < 0 || label > 9 || label != float64(int(label)) {
			return nil, fmt.Errorf("%s:%d: expected a label in 0..9, found %q", path, line, fields[64])
		}
		s.Pixels = append(s.Pixels, px)
		s.Labels = append(s.Labels, int(label))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	if len(s.Labels) == 0 {
		return nil, fmt.Errorf("%s: no samples", path)
	}
	return s, nil
}

// Split holds out every fifth sample (indices 4, 9, 14, ...) for testing
// and returns the rest for training: deterministic, and every class is in
// both in about its share.
func (s *Samples) Split() (trainSet, testSet *Samples) {
	trainSet, testSet = &Samples{}, &Samples{}
	for i := range s.Labels {
		dst := trainSet
		if i%5 == 4 {
			dst = testSet
		}
		dst.Pixels = append(dst.Pixels, s.Pixels[i])
		dst.Labels = append(dst.Labels, s.Labels[i])
	}
	return trainSet, testSet
}

// Arrays returns the samples as the model's inputs: x f32[N,1,8,8], the
// pixels scaled to [0, 1], and t f32[N,10], the labels one-hot.
func (s *Samples) Arrays() map[string]*tensor.Dense {
	n := len(s.Labels)
	x, t := make([]float32, n*64), make([]float32, n*10)
	for i, px := range s.Pixels {
		for j, v := range px {
			x[i*64+j] = v / 16
		}
		t[i*10+s.Labels[i]] = 1
	}
	return map[string]*tensor.Dense{"x": host.New([]int{n, 1, 8, 8}, x), "t": host.New([]int{n, 10}, t)}
}

// Accuracy returns the share of samples whose most probable class under
// the model (its output y, in inference mode) is their label.
func Accuracy(g *graph.Graph, weights map[string]*tensor.Dense, x, t *tensor.Dense) (float64, error) {
	inf, err := train.InferenceGraph(g, "y")
	if err != nil {
		return 0, err
	}
	e, err := runtime.New(inf, runtime.Options{})
	if err != nil {
		return 0, err
	}
	ps := map[string]*tensor.Dense{}
	for _, p := range inf.Params() {
		ps[p.Name] = weights[p.Name]
	}
	if err := e.SetParams(ps); err != nil {
		return 0, err
	}
	in := map[string]*tensor.Dense{"x": x}
	if inf.Lookup("t") != nil {
		in["t"] = t
	}
	out, err := e.Run(context.Background(), in)
	if err != nil {
		return 0, err
	}
	y := host.Float64s(out["y"])
	labels := host.Float64s(t)
	n := host.Shape(t)[0]
	k := len(labels) / n
	correct := 0
	for i := 0; i < n; i++ {
		if argmax(y[i*k:(i+1)*k]) == argmax(labels[i*k:(i+1)*k]) {
			correct++
		}
	}
	return float64(correct) / float64(n), nil
}

func argmax(v []float64) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}
