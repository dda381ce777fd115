// Command ort compares the CPU backend of multigpu's runtime with ONNX
// Runtime's CPU provider on the same models, inputs and thread counts.
//
// It is a module of its own (bench/ort/go.mod), so that the product never
// depends on ONNX Runtime or on cgo. ONNX Runtime's shared library comes
// from the onnxruntime-node npm package:
//
//	cd /tmp/ort && npm pack onnxruntime-node && tar xzf onnxruntime-node-*.tgz
//	/usr/bin/python3 bench/ort/export.py /tmp/ort/models   # ResNet-18, MobileNetV2, the MLP, bert_256
//	cd bench/ort && go run . -lib /tmp/ort/package/bin/napi-v6/linux/x64/libonnxruntime.so.1 \
//	    -models /tmp/ort/models
//
// For each model and thread count it checks that both engines' outputs
// agree, then runs them in turn, -runs rounds of a burst of each engine
// (one untimed run, then -burst timed ones: the steady state of each, its
// threads awake and the other's idle), interleaved so that both see the
// same machine load, and prints the median time per batch of each and
// the median of the per-round ratios. With -peak it runs
// each engine on MobileNetV2 at batch 64 in a process of its own and
// prints its peak resident memory (VmHWM).
package main

import (
	"context"
	"flag"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	ort "github.com/yalue/onnxruntime_go"
	"gorgonia.org/tensor"

	"multigpu/graph"
	"multigpu/onnx"
	"multigpu/onnx/corpus"
	"multigpu/runtime"
	"multigpu/runtime/host"
)

// input is one input of a benchmark model: its ONNX name, shape and
// element type (f32 normal; i64 ids in [0, high), or all ones for a mask).
type input struct {
	name  string
	shape []int64
	i64   bool
	high  int64
}

// model is one row of the comparison.
type model struct {
	name   string
	file   string // relative to -models, or to the repository for the corpus
	corpus string // the corpus entry, for its import options
	inputs []input
}

func models(batch func(string, int64) int64) []model {
	b := func(name string, def int64) int64 { return batch(name, def) }
	return []model{
		{name: "resnet18", file: "resnet18.onnx", inputs: []input{{name: "x", shape: []int64{b("resnet18", 8), 3, 224, 224}}}},
		{name: "mobilenet_v2", file: "mobilenet_v2.onnx", inputs: []input{{name: "x", shape: []int64{b("mobilenet_v2", 8), 3, 224, 224}}}},
		{name: "mlp", file: "mlp.onnx", inputs: []input{{name: "x", shape: []int64{b("mlp", 64), 784}}}},
		{name: "bert", corpus: "bert", inputs: []input{
			{name: "input_ids", shape: []int64{b("bert", 8), 16}, i64: true, high: 100},
			{name: "attention_mask", shape: []int64{b("bert", 8), 16}, i64: true}}},
		{name: "bert_256", file: "bert_256.onnx", inputs: []input{
			{name: "input_ids", shape: []int64{b("bert_256", 8), 128}, i64: true, high: 1000},
			{name: "attention_mask", shape: []int64{b("bert_256", 8), 128}, i64: true}}},
	}
}

func main() {
	lib := flag.String("lib", os.Getenv("ORT_LIB"), "ONNX Runtime's shared library (libonnxruntime.so.1)")
	dir := flag.String("models", "/tmp/cpu-speed/models", "folder of resnet18.onnx, mobilenet_v2.onnx and mlp.onnx (export.py)")
	repo := flag.String("repo", "../..", "the multigpu repository (for testdata/corpus)")
	runs := flag.Int("runs", 10, "rounds of bursts of each engine per row")
	threadList := flag.String("threads", "1,2", "thread counts")
	only := flag.String("only", "", "comma-separated models to run (default: all)")
	batches := flag.String("batch", "", "NAME=B,... batch sizes other than the defaults")
	peak := flag.Bool("peak", false, "measure peak memory of MobileNetV2 at batch 64 per engine, each in a process of its own")
	child := flag.String("child", "", "run one engine (ours or ort) on -only for -runs runs and print VmHWM")
	layers := flag.Bool("layers", false, "with -child ours: print the time of the nodes taking most, per run")
	inproc := flag.Bool("inproc", false, "time both engines in this process, bursts interleaved (default: each burst in a child process of its own)")
	gap := flag.Duration("gap", 50*time.Millisecond, "with -inproc: pause before each burst, so that the other engine's threads have stopped spinning")
	burst := flag.Int("burst", 3, "timed runs of one engine in a row, after one untimed, before the other's")
	profile := flag.String("cpuprofile", "", "with -child ours: write a CPU profile of the runs after the first to this file")
	flag.Parse()
	if err := run(*lib, *dir, *repo, *runs, *threadList, *only, *batches, *peak, *child, *profile, *burst, *gap, *layers, *inproc); err != nil {
		fmt.Fprintln(os.Stderr, "ort:", err)
		os.Exit(1)
	}
}

func run(lib, dir, repo string, runs int, threadList, only, batches string, peak bool, child, profile string, burst int, gap time.Duration, layers, inproc bool) error {
	if lib == "" {
		return fmt.Errorf("give -lib or ORT_LIB: the path of libonnxruntime.so.1")
	}
	sizes := map[string]int64{}
	for _, kv := range strings.Split(batches, ",") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return fmt.Errorf("-batch %s: %v", kv, err)
			}
			sizes[k] = n
		}
	}
	all := models(func(name string, def int64) int64 {
		if b, ok := sizes[name]; ok {
			return b
		}
		return def
	})
	var threads []int
	for _, s := range strings.Split(threadList, ",") {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return fmt.Errorf("-threads: expected thread counts such as 1,2, found %q", threadList)
		}
		threads = append(threads, n)
	}
	if peak {
		return peakMemory(lib, dir, repo)
	}
	ort.SetSharedLibraryPath(lib)
	if err := ort.InitializeEnvironment(); err != nil {
		return fmt.Errorf("ONNX Runtime: %v", err)
	}
	defer ort.DestroyEnvironment()
	if child != "" {
		return runChild(child, all, only, dir, repo, runs, threads[0], profile, layers)
	}
	fmt.Printf("| model | batch | threads | multigpu | ONNX Runtime | ratio |\n|---|---|---|---|---|---|\n")
	for _, m := range all {
		if only != "" && !slices.Contains(strings.Split(only, ","), m.name) {
			continue
		}
		for _, t := range threads {
			var r *result
			var err error
			if inproc {
				r, err = compare(m, dir, repo, runs, t, burst, gap)
			} else {
				r, err = compareProcs(m, lib, dir, repo, runs, t, burst, batches)
			}
			if err != nil {
				return fmt.Errorf("%s, %d threads: %v", m.name, t, err)
			}
			fmt.Printf("| %s | %d | %d | %s | %s | %.2fx |\n", m.name, m.inputs[0].shape[0], t,
				ms(r.ours), ms(r.theirs), r.ratio)
		}
	}
	return nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/1e6) }

// engines are one model loaded in both engines with the same inputs.
type engines struct {
	ex      *runtime.Executor
	feeds   map[string]*tensor.Dense
	outName map[string]string // IR output name by ONNX name
	sess    *ort.DynamicAdvancedSession
	ins     []ort.Value
	outs    []string
	clock   *layerClock // with -layers
}

// layerClock adds up the time of each node of our runs: from the call
// before it to the call before the next (or the end of the run).
type layerClock struct {
	last  time.Time
	node  *graph.Node
	total map[*graph.Node]time.Duration
	order []*graph.Node
}

func (c *layerClock) before(_ context.Context, _ graph.Device, n *graph.Node) error {
	c.stop()
	c.last, c.node = time.Now(), n
	return nil
}

// stop charges the time since the last call to its node.
func (c *layerClock) stop() {
	if c.node != nil {
		if _, ok := c.total[c.node]; !ok {
			c.order = append(c.order, c.node)
		}
		c.total[c.node] += time.Since(c.last)
		c.node = nil
	}
}

// print prints the nodes taking most time per run, and the time by op.
func (c *layerClock) print(runs int) {
	nodes := slices.Clone(c.order)
	slices.SortFunc(nodes, func(a, b *graph.Node) int { return int(c.total[b] - c.total[a]) })
	var all time.Duration
	byOp := map[string]time.Duration{}
	for _, n := range nodes {
		all += c.total[n]
		byOp[n.Op] += c.total[n]
	}
	per := func(d time.Duration) string { return fmt.Sprintf("%8.3f ms", float64(d)/float64(runs)/1e6) }
	fmt.Printf("total %s per run over %d nodes\n", per(all), len(nodes))
	ops := slices.Collect(maps.Keys(byOp))
	slices.SortFunc(ops, func(a, b string) int { return int(byOp[b] - byOp[a]) })
	for _, op := range ops {
		fmt.Printf("  %s  %s\n", per(byOp[op]), op)
	}
	for _, n := range nodes[:min(40, len(nodes))] {
		fmt.Printf("  %s  %-10s %s %v %v\n", per(c.total[n]), n.Op, n.Name, n.Type, n.Attrs)
	}
}

func (m model) path(dir, repo string) string {
	if m.corpus != "" {
		return filepath.Join(repo, "testdata", "corpus", m.corpus, "model.onnx")
	}
	return filepath.Join(dir, m.file)
}

// load imports m for the runtime (threads threads) and opens it in ONNX
// Runtime (threads intra-op threads, sequential execution), both fed the
// same seeded inputs.
func load(m model, dir, repo string, threads int, ours, theirs, layers bool) (*engines, error) {
	path := m.path(dir, repo)
	e := &engines{outName: map[string]string{}}
	if layers {
		e.clock = &layerClock{total: map[*graph.Node]time.Duration{}}
	}
	var im *onnx.Model
	var err error
	if m.corpus != "" {
		man, err := corpus.ReadManifest(filepath.Join(repo, "testdata", "corpus"))
		if err != nil {
			return nil, err
		}
		var entry *corpus.Entry
		for i := range man.Models {
			if man.Models[i].Name == m.corpus {
				entry = &man.Models[i]
			}
		}
		if entry == nil {
			return nil, fmt.Errorf("no corpus entry %s", m.corpus)
		}
		im, err = entry.Import(filepath.Join(repo, "testdata", "corpus"), entry.Dims)
		if err != nil {
			return nil, err
		}
	} else if im, err = onnx.ImportFile(path, onnx.Options{}); err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var positional []*tensor.Dense
	var inNames []string
	for _, in := range m.inputs {
		shape := make([]int, len(in.shape))
		n := 1
		for i, d := range in.shape {
			shape[i], n = int(d), n*int(d)
		}
		inNames = append(inNames, in.name)
		if in.i64 {
			data := make([]int64, n)
			for i := range data {
				data[i] = 1
				if in.high > 0 {
					data[i] = rng.Int64N(in.high)
				}
			}
			positional = append(positional, host.New(shape, data))
			if theirs {
				t, err := ort.NewTensor(ort.NewShape(in.shape...), data)
				if err != nil {
					return nil, err
				}
				e.ins = append(e.ins, t)
			}
			continue
		}
		data := make([]float32, n)
		for i := range data {
			data[i] = float32(rng.NormFloat64())
		}
		positional = append(positional, host.New(shape, data))
		if theirs {
			t, err := ort.NewTensor(ort.NewShape(in.shape...), data)
			if err != nil {
				return nil, err
			}
			e.ins = append(e.ins, t)
		}
	}
	for _, o := range im.Outputs {
		e.outs = append(e.outs, o.ONNX)
		e.outName[o.ONNX] = o.IR
	}
	if ours {
		if e.feeds, err = im.Bind(positional); err != nil {
			return nil, err
		}
		opts := runtime.Options{Threads: threads}
		if e.clock != nil {
			opts.BeforeNode = e.clock.before
		}
		if e.ex, err = runtime.New(im.Graph, opts); err != nil {
			return nil, err
		}
		if err := e.ex.SetParams(im.Weights); err != nil {
			return nil, err
		}
	}
	if theirs {
		opts, err := ort.NewSessionOptions()
		if err != nil {
			return nil, err
		}
		defer opts.Destroy()
		if err := opts.SetIntraOpNumThreads(threads); err != nil {
			return nil, err
		}
		if err := opts.SetInterOpNumThreads(1); err != nil {
			return nil, err
		}
		if e.sess, err = ort.NewDynamicAdvancedSession(path, inNames, e.outs, opts); err != nil {
			return nil, err
		}
	}
	return e, nil
}

func (e *engines) close() {
	if e.sess != nil {
		e.sess.Destroy()
	}
	for _, v := range e.ins {
		v.Destroy()
	}
}

// runOurs runs the runtime once and returns its outputs by ONNX name.
func (e *engines) runOurs() (map[string][]float32, error) {
	out, err := e.ex.Run(context.Background(), e.feeds)
	if e.clock != nil {
		e.clock.stop()
	}
	if err != nil {
		return nil, err
	}
	res := map[string][]float32{}
	for onnxName, ir := range e.outName {
		if d, ok := host.Data(out[ir]).([]float32); ok {
			res[onnxName] = d
		}
	}
	return res, nil
}

// runTheirs runs ONNX Runtime once and returns its outputs by name.
func (e *engines) runTheirs(keep bool) (map[string][]float32, error) {
	outs := make([]ort.Value, len(e.outs))
	if err := e.sess.Run(e.ins, outs); err != nil {
		return nil, err
	}
	res := map[string][]float32{}
	for i, v := range outs {
		if t, ok := v.(*ort.Tensor[float32]); ok && keep {
			res[e.outs[i]] = slices.Clone(t.GetData())
		}
		v.Destroy()
	}
	return res, nil
}

type result struct {
	ours, theirs time.Duration
	ratio        float64
}

func median[T int64 | float64 | time.Duration](xs []T) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// compare loads m in both engines at threads threads, checks their
// outputs agree and times runs interleaved runs of each.
func compare(m model, dir, repo string, runs, threads, burst int, gap time.Duration) (*result, error) {
	e, err := load(m, dir, repo, threads, true, true, false)
	if err != nil {
		return nil, err
	}
	defer e.close()
	if err := agree(e); err != nil {
		return nil, err
	}
	// Runs come in bursts, one engine's then the other's, the first run
	// of each burst untimed: each engine is timed in its steady state (its
	// threads awake, the other engine's idle), and both see the same load.
	var ours, theirs []time.Duration
	var ratios []float64
	timeBurst := func(run func() error) (time.Duration, error) {
		var ds []time.Duration
		time.Sleep(gap)
		for k := range burst + 1 {
			t0 := time.Now()
			if err := run(); err != nil {
				return 0, err
			}
			if k > 0 {
				ds = append(ds, time.Since(t0))
			}
		}
		return median(ds), nil
	}
	runOurs := func() error { _, err := e.runOurs(); return err }
	runTheirs := func() error { _, err := e.runTheirs(false); return err }
	for range runs {
		d0, err := timeBurst(runOurs)
		if err != nil {
			return nil, err
		}
		d1, err := timeBurst(runTheirs)
		if err != nil {
			return nil, err
		}
		ours, theirs = append(ours, d0), append(theirs, d1)
		ratios = append(ratios, float64(d0)/float64(d1))
	}
	return &result{ours: median(ours), theirs: median(theirs), ratio: median(ratios)}, nil
}

// agree runs both engines of e once and checks that their outputs agree.
func agree(e *engines) error {
	a, err := e.runOurs()
	if err != nil {
		return err
	}
	b, err := e.runTheirs(true)
	if err != nil {
		return err
	}
	for name, want := range b {
		got := a[name]
		if len(got) != len(want) {
			return fmt.Errorf("output %s: %d elements, ONNX Runtime %d", name, len(got), len(want))
		}
		var worst, scale float64
		for i := range want {
			worst = max(worst, math.Abs(float64(got[i])-float64(want[i])))
			scale = max(scale, math.Abs(float64(want[i])))
		}
		if worst > 1e-3*max(scale, 1) {
			return fmt.Errorf("output %s differs from ONNX Runtime's by %g (largest magnitude %g)", name, worst, scale)
		}
	}
	return nil
}

// compareProcs checks that both engines' outputs agree on m at threads
// threads, then times them each in a process of its own, in turn: runs
// rounds of one child per engine running burst+1 times, the first
// untimed. No engine's threads, awake or spinning, share the machine with
// the other's timed runs.
func compareProcs(m model, lib, dir, repo string, runs, threads, burst int, batches string) (*result, error) {
	e, err := load(m, dir, repo, threads, true, true, false)
	if err != nil {
		return nil, err
	}
	err = agree(e)
	e.close()
	if err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	child := func(eng string) (time.Duration, error) {
		cmd := exec.Command(self, "-lib", lib, "-models", dir, "-repo", repo, "-only", m.name, "-batch", batches,
			"-runs", strconv.Itoa(burst+1), "-threads", strconv.Itoa(threads), "-child", eng)
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			return 0, fmt.Errorf("%s child: %v", eng, err)
		}
		for _, line := range strings.Split(string(out), "\n") {
			if v, ok := strings.CutPrefix(line, "median "); ok {
				ns, err := strconv.ParseInt(strings.TrimSuffix(v, " ns"), 10, 64)
				return time.Duration(ns), err
			}
		}
		return 0, fmt.Errorf("%s child printed no time: %q", eng, out)
	}
	var ours, theirs []time.Duration
	var ratios []float64
	for range runs {
		d0, err := child("ours")
		if err != nil {
			return nil, err
		}
		d1, err := child("ort")
		if err != nil {
			return nil, err
		}
		ours, theirs = append(ours, d0), append(theirs, d1)
		ratios = append(ratios, float64(d0)/float64(d1))
	}
	return &result{ours: median(ours), theirs: median(theirs), ratio: median(ratios)}, nil
}

// peakMemory runs each engine on MobileNetV2 at batch 64 in a child
// process and prints their peak resident memory.
func peakMemory(lib, dir, repo string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	fmt.Printf("| engine | MobileNetV2 batch 64, peak resident memory (VmHWM) |\n|---|---|\n")
	for _, eng := range []string{"ours", "ort"} {
		cmd := exec.Command(self, "-lib", lib, "-models", dir, "-repo", repo, "-only", "mobilenet_v2",
			"-batch", "mobilenet_v2=64", "-runs", "3", "-threads", "2", "-child", eng)
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			return fmt.Errorf("%s: %v", eng, err)
		}
		peak := "?"
		for _, line := range strings.Split(string(out), "\n") {
			if v, ok := strings.CutPrefix(line, "VmHWM: "); ok {
				peak = v
			}
		}
		fmt.Printf("| %s | %s |\n", eng, peak)
	}
	return nil
}

// runChild runs one engine on the model named by only and prints the
// process's VmHWM.
func runChild(eng string, all []model, only, dir, repo string, runs, threads int, profile string, layers bool) error {
	for _, m := range all {
		if m.name != only {
			continue
		}
		e, err := load(m, dir, repo, threads, eng == "ours", eng == "ort", layers)
		if err != nil {
			return err
		}
		var times []time.Duration
		var before, after goruntime.MemStats
		for r := range runs {
			if r == 1 {
				goruntime.ReadMemStats(&before)
			}
			if r == 1 && e.clock != nil { // the first run compiles
				e.clock.total, e.clock.order = map[*graph.Node]time.Duration{}, nil
			}
			if r == 1 && profile != "" {
				f, err := os.Create(profile)
				if err != nil {
					return err
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					return err
				}
				defer pprof.StopCPUProfile()
			}
			t0 := time.Now()
			if eng == "ours" {
				_, err = e.runOurs()
			} else {
				_, err = e.runTheirs(false)
			}
			if err != nil {
				return err
			}
			if r > 0 {
				times = append(times, time.Since(t0))
			}
		}
		if len(times) > 0 {
			goruntime.ReadMemStats(&after)
			fmt.Printf("median %d ns\n", median(times))
			fmt.Printf("allocs %.1f per run, %.1f MB\n", float64(after.Mallocs-before.Mallocs)/float64(len(times)),
				float64(after.TotalAlloc-before.TotalAlloc)/float64(len(times))/1e6)
		}
		if e.clock != nil {
			e.clock.print(runs - 1)
		}
		status, err := os.ReadFile("/proc/self/status")
		if err != nil {
			return err
		}
		for _, line := range strings.Split(string(status), "\n") {
			if strings.HasPrefix(line, "VmHWM:") {
				fmt.Println(strings.Join(strings.Fields(line), " "))
			}
		}
		return nil
	}
	return fmt.Errorf("no model %q", only)
}
