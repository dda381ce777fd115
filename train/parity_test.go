package train_test

import (
	"context"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"

	"gorgonia.org/tensor"

	"multigpu/graph"
	"multigpu/runtime"
	"multigpu/runtime/host"
	"multigpu/train"
)

var _ = flag.Bool("update", false, "no golden files here; declared so that go test ./... -update runs")

// The models with a loss, and the classes of their one-hot targets.
var classifiers = []string{"mlp_classifier", "cnn_classifier", "bn_classifier", "transformer_classifier"}

// vocab is the number of rows of transformer_classifier's embedding table:
// its token ids are drawn in [0, vocab).
const vocab = 16

func loadModel(t testing.TB, name string, dt graph.DType) *graph.Graph {
	t.Helper()
	src, err := os.ReadFile("../testdata/" + name + ".graph")
	if err != nil {
		t.Fatal(err)
	}
	text := string(src)
	if dt == graph.F32 {
		text = strings.ReplaceAll(text, "f64[", "f32[")
	}
	g, err := graph.Parse("testdata/"+name+".graph", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// randomData returns n samples for g's inputs: x uniform in [-1, 1), t
// one-hot of a random class, integer inputs (token ids) uniform in
// [0, vocab).
func randomData(g *graph.Graph, n int, seed uint64) map[string]*tensor.Dense {
	r := rand.New(rand.NewPCG(seed, 1))
	out := map[string]*tensor.Dense{}
	for _, in := range g.Inputs() {
		shape := []int{n}
		for _, d := range in.Type.Shape[1:] {
			shape = append(shape, int(d.Size))
		}
		per := 1
		for _, d := range shape[1:] {
			per *= d
		}
		if in.Type.DType == graph.I64 {
			ids := make([]int64, n*per)
			for i := range ids {
				ids[i] = r.Int64N(vocab)
			}
			out[in.Name] = host.New(shape, ids)
			continue
		}
		data := make([]float64, n*per)
		for i := 0; i < n; i++ {
			if in.Name == "t" {
				data[i*per+r.IntN(per)] = 1
				continue
			}
			for j := 0; j < per; j++ {
				data[i*per+j] = 2*r.Float64() - 1
			}
		}
		out[in.Name] = host.New(shape, data)
	}
	return out
}

// trainSteps runs steps optimizer steps on shuffled batches of data and
// returns the weights.
func trainSteps(t testing.TB, g *graph.Graph, cfg train.Config, arrays map[string]*tensor.Dense, steps, batch int) map[string]*tensor.Dense {
	t.Helper()
	tr, err := train.New(g, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.SetWeights(runtime.RandomParams(g, 11)); err != nil {
		t.Fatal(err)
	}
	data, err := tr.NewDataset(arrays)
	if err != nil {
		t.Fatal(err)
	}
	for e := 0; tr.Steps() < steps; e++ {
		for _, idx := range train.Batches(train.Order(cfg.Seed, e, data.Len()), batch, false) {
			if tr.Steps() == steps {
				break
			}
			if _, err := tr.Step(context.Background(), data.Batch(idx)); err != nil {
				t.Fatalf("step %d: %v", tr.Steps()+1, err)
			}
		}
	}
	return tr.Weights()
}

// maxDiff returns the largest absolute and relative differences between
// two sets of weights, and whether every element is within rel*|want| +
// abs.
func maxDiff(want, got map[string]*tensor.Dense, rel, abs float64) (maxAbs, maxRel float64, where string, ok bool) {
	ok = true
	names := make([]string, 0, len(want))
	for name := range want {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		w, g := toF64(host.Data(want[name])), toF64(host.Data(got[name]))
		for i := range w {
			d := math.Abs(w[i] - g[i])
			if d > maxAbs {
				maxAbs = d
			}
			if r := d / math.Abs(w[i]); w[i] != 0 && r > maxRel {
				maxRel = r
				where = fmt.Sprintf("%%%s[%d]", name, i)
			}
			if !(d <= rel*math.Abs(w[i])+abs) {
				ok = false
			}
		}
	}
	return maxAbs, maxRel, where, ok
}

func toF64(data any) []float64 {
	switch d := data.(type) {
	case []float64:
		return d
	case []float32:
		out := make([]float64, len(d))
		for i, v := range d {
			out[i] = float64(v)
		}
		return out
	}
	panic(fmt.Sprintf("toF64 %T", data))
}

var optimizers = []train.Optimizer{
	{Kind: train.SGD, LR: 0.1},
	{Kind: train.Momentum, LR: 0.05},
	{Kind: train.Adam, LR: 0.01},
}

// TestParity trains every classifier for 20 steps on one device and
// data-parallel on N in {2, 3, 4} replicas, at a batch size no N divides,
// with a last batch of 2 (smaller than 3 or 4 replicas), for every
// optimizer: the f64 weights (and batchnorm's running statistics) agree
// within 1e-9 relative plus 1e-12 absolute. The f32 differences are
// logged.
func TestParity(t *testing.T) {
	const steps, batch, samples = 20, 7, 58 // 8 batches of 7, then 2
	ns := []int{2, 3, 4}
	for _, model := range classifiers {
		for _, opt := range optimizers {
			t.Run(model+"/"+opt.Kind, func(t *testing.T) {
				for _, dt := range []graph.DType{graph.F64, graph.F32} {
					g := loadModel(t, model, dt)
					arrays := randomData(g, samples, 5)
					cfg := train.Config{Optimizer: opt, Seed: 9}
					want := trainSteps(t, g, cfg, arrays, steps, batch)
					start := runtime.RandomParams(g, 11)
					if _, moved, _, _ := maxDiff(start, want, 0, 0); moved == 0 {
						t.Fatalf("%s: training did not change the weights", dt)
					}
					for _, n := range ns {
						if dt == graph.F32 && n != 3 {
							continue
						}
						cfg.GPUs = []int{0, 1, 2, 3}[:n]
						got := trainSteps(t, g, cfg, arrays, steps, batch)
						abs, rel, where, ok := maxDiff(want, got, 1e-9, 1e-12)
						t.Logf("%s N=%d: max |difference| %.3g, max relative %.3g (at %s)", dt, n, abs, rel, where)
						if dt == graph.F64 && !ok {
							t.Errorf("f64 N=%d: weights differ from one device's beyond 1e-9 relative + 1e-12 absolute: max %.3g absolute, %.3g relative at %s", n, abs, rel, where)
						}
					}
				}
			})
		}
	}
}

// Other layouts of the replicas train alike: the remainder split, the
// merge device one of the GPUs, another batch size.
func TestParityLayouts(t *testing.T) {
	g := loadModel(t, "bn_classifier", graph.F64)
	arrays := randomData(g, 45, 6)
	opt := train.Optimizer{Kind: train.Adam, LR: 0.01}
	for _, c := range []struct {
		name  string
		cfg   train.Config
		batch int
	}{
		{"remainder", train.Config{GPUs: []int{0, 1, 2}, Split: graph.Remainder}, 10},
		{"merge_gpu0", train.Config{GPUs: []int{0, 1}, Merge: graph.GPUDevice(0)}, 10},
		{"gpus_0_2_5_batch_4", train.Config{GPUs: []int{0, 2, 5}}, 4},
	} {
		t.Run(c.name, func(t *testing.T) {
			want := trainSteps(t, g, train.Config{Optimizer: opt, Seed: 3}, arrays, 20, c.batch)
			c.cfg.Optimizer, c.cfg.Seed = opt, 3
			got := trainSteps(t, g, c.cfg, arrays, 20, c.batch)
			if abs, rel, where, ok := maxDiff(want, got, 1e-9, 1e-12); !ok {
				t.Errorf("weights differ: max %.3g absolute, %.3g relative at %s", abs, rel, where)
			}
		})
	}
}
