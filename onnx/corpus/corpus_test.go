package corpus

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"gorgonia.org/tensor"

	"multigpu/graph"
	"multigpu/onnx"
	"multigpu/passes/replicate"
	"multigpu/runtime"
)

// The repository's tests all accept -update (go test ./... -update); the
// corpus has no golden files: export.py writes it.
var _ = flag.Bool("update", false, "rewrite golden files (none in this package)")

// table, when set, is where TestCorpus writes the README's markdown table
// of the corpus ("-" for standard output).
var table = flag.String("table", "", "write the corpus table (markdown) to this file, - for standard output")

// root is the corpus directory, relative to this package.
const root = "../../testdata/corpus"

// GPU counts of the rewrites, the batch sizes of the reference data, and
// the configuration the FLOP share is measured at (as --gpus 4 --explain,
// whose batch defaults to 64).
var (
	fullGPUs     = [][]int{{0, 1}, {0, 1, 2}}
	shortGPUs    = [][]int{{0, 1}}
	batches      = []string{"1", "7"}
	explainGPUs  = []int{0, 1, 2, 3}
	explainBatch = int64(64)
)

// result is what the survey found for one model. Each step runs only when
// the ones it needs succeeded; a nil error is a success.
type result struct {
	e         Entry
	gpus      [][]int
	importErr error
	// match: the original graph against PyTorch, per batch.
	match map[string]error
	// rewrite: per GPU count; same: the rewrite against the original, per
	// GPU count and batch ("2/7").
	rewrite map[int]error
	same    map[string]error
	share   float64
	// shareErr says why the share could not be measured.
	shareErr error
	// panicked holds what a panic in the importer, the pass or the
	// runtime said.
	panicked error
}

// stages lists the result's checks in order with their errors.
func (r *result) stages() []struct {
	what string
	err  error
} {
	type st = struct {
		what string
		err  error
	}
	if r.panicked != nil {
		return []st{{"panic", r.panicked}}
	}
	out := []st{{"import", r.importErr}}
	if r.importErr != nil {
		return out
	}
	for _, b := range batches {
		out = append(out, st{"batch " + b + " against PyTorch", r.match[b]})
	}
	for _, g := range r.gpus {
		out = append(out, st{fmt.Sprintf("rewrite for %d GPUs", len(g)), r.rewrite[len(g)]})
		if r.rewrite[len(g)] != nil {
			continue
		}
		for _, b := range batches {
			k := fmt.Sprintf("%d/%s", len(g), b)
			out = append(out, st{fmt.Sprintf("%d GPUs at batch %s against one device", len(g), b), r.same[k]})
		}
	}
	if r.e.MinShare > 0 {
		err := r.shareErr
		if err == nil && r.share < r.e.MinShare {
			err = fmt.Errorf("%.1f%% of the FLOPs on the replicas, expected at least %.0f%%", 100*r.share, 100*r.e.MinShare)
		}
		out = append(out, st{"FLOPs on the replicas", err})
	}
	return out
}

// failure returns the first failed check, or "" when all passed.
func (r *result) failure() string {
	for _, s := range r.stages() {
		if s.err != nil {
			return s.what + ": " + s.err.Error()
		}
	}
	return ""
}

// survey runs every check on one model. A panic is reported as the
// model's failure, so that one model cannot stop the survey.
func survey(e Entry, gpus [][]int) (r *result) {
	r = &result{e: e, gpus: gpus, match: map[string]error{}, rewrite: map[int]error{}, same: map[string]error{}, share: -1}
	defer func() {
		if p := recover(); p != nil {
			r.panicked = fmt.Errorf("%v", p)
			r.shareErr = r.panicked
		}
	}()
	opts, err := e.Options(e.Dims)
	if err != nil {
		r.importErr = err
		return r
	}
	m, err := onnx.ImportFile(filepath.Join(root, e.File), opts)
	if err != nil {
		r.importErr = err
		r.shareErr = errors.New("no import")
		return r
	}
	feeds := map[string]map[string]*tensor.Dense{}
	want := map[string]map[string]*tensor.Dense{}
	for _, b := range batches {
		feeds[b], want[b], err = e.Load(root, m, b)
		if err != nil {
			r.match[b] = err
		}
	}
	// The original graph, against PyTorch.
	orig := map[string]map[string]*tensor.Dense{}
	ex, err := newExecutor(m.Graph, m)
	for _, b := range batches {
		if r.match[b] != nil {
			continue
		}
		if err != nil {
			r.match[b] = err
			continue
		}
		got, err := ex.Run(context.Background(), feeds[b])
		if err != nil {
			r.match[b] = err
			continue
		}
		orig[b] = got
		r.match[b] = CompareOutputs(m, got, want[b], e.Atol, e.Rtol)
	}
	// The rewrites, against the original graph, bit for bit. A graph whose
	// batch is bound (a fixed-batch export) is rewritten per batch size,
	// which rebinds its batch; a symbolic batch is rewritten once.
	_, bound := m.Graph.Batch()
	for _, g := range gpus {
		var rewritten *graph.Graph
		var ex *runtime.Executor
		for _, b := range batches {
			k := fmt.Sprintf("%d/%s", len(g), b)
			if rewritten == nil || bound > 0 {
				opts := replicate.Options{GPUs: g}
				if bound > 0 {
					opts.Batch = batchSize(b)
				}
				var err error
				rewritten, _, err = replicate.Rewrite(m.Graph, opts)
				if err != nil {
					r.rewrite[len(g)] = err
					break
				}
				if ex, err = newExecutor(rewritten, m); err != nil {
					r.same[k] = err
					rewritten = nil
					continue
				}
			}
			if orig[b] == nil {
				r.same[k] = errors.New("the original graph did not run")
				continue
			}
			got, err := ex.Run(context.Background(), feeds[b])
			if err != nil {
				r.same[k] = err
				continue
			}
			r.same[k] = CompareOutputs(m, got, orig[b], 0, 0)
		}
	}
	if len(e.ExplainDims) > 0 {
		if opts, err = e.Options(e.ExplainDims); err == nil {
			m, err = onnx.ImportFile(filepath.Join(root, e.File), opts)
		}
		if err != nil {
			r.shareErr = err
			return r
		}
	}
	r.share, r.shareErr = flopShare(m.Graph)
	return r
}

func batchSize(b string) int64 {
	var n int64
	fmt.Sscan(b, &n)
	return n
}

// flopShare returns the share of the FLOPs on the replicas of the rewrite
// for explainGPUs at explainBatch.
func flopShare(g *graph.Graph) (float64, error) {
	opts := replicate.Options{GPUs: explainGPUs, Batch: explainBatch}
	out, _, err := replicate.Rewrite(g, opts)
	if err != nil {
		return -1, err
	}
	ex, err := replicate.Explain(g, out, opts)
	if err != nil {
		return -1, err
	}
	var total, merge int64
	for _, d := range ex.Devices {
		total += d.FLOPs
		if d.Device == ex.Merge {
			merge += d.FLOPs
		}
	}
	if total == 0 {
		return -1, errors.New("no FLOPs")
	}
	return float64(total-merge) / float64(total), nil
}

// newExecutor compiles g, m's graph or a rewrite of it, on the CPU backend
// with its params from m's weights.
func newExecutor(g *graph.Graph, m *onnx.Model) (*runtime.Executor, error) {
	ex, err := runtime.New(g, runtime.Options{})
	if err != nil {
		return nil, err
	}
	if err := ex.SetParams(m.ParamsOf(g)); err != nil {
		return nil, err
	}
	return ex, nil
}

// TestCorpus surveys the corpus: every model under the full run, one model
// per family (the first that is expected to pass) rewritten for 2 GPUs
// under -short. It fails for models expected to pass that do not, and logs
// the status of the others.
func TestCorpus(t *testing.T) {
	m, err := ReadManifest(root)
	if err != nil {
		t.Fatal(err)
	}
	gpus := fullGPUs
	models := m.Models
	if testing.Short() {
		gpus = shortGPUs
		models = onePerFamily(models)
	}
	var results []*result
	for _, e := range models {
		t.Run(e.Name, func(t *testing.T) {
			r := survey(e, gpus)
			results = append(results, r)
			fail := r.failure()
			switch {
			case e.Expect == "pass" && fail != "":
				t.Errorf("%s (%s) is expected to pass: %s", e.Name, e.File, fail)
			case e.Expect == "pass":
			case fail == "":
				t.Logf("%s passes now; mark it \"expect\": \"pass\" in manifest.json (was %q)", e.Name, e.Expect)
			default:
				t.Logf("%s: %s (expected: %s)", e.Name, clip(fail, 400), e.Expect)
			}
			if r.shareErr == nil {
				t.Logf("%s: %.1f%% of the FLOPs on the replicas (%d GPUs, batch %d)", e.Name, 100*r.share, len(explainGPUs), explainBatch)
			}
		})
	}
	if *table != "" {
		w := io.Writer(os.Stdout)
		if *table != "-" {
			f, err := os.Create(*table)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			w = f
		}
		if err := writeTable(w, m, results); err != nil {
			t.Fatal(err)
		}
	}
}

// onePerFamily picks one model per family: the first expected to pass, or
// the family's first.
func onePerFamily(models []Entry) []Entry {
	return PerFamily(models, func(e, kept Entry) bool { return kept.Expect != "pass" && e.Expect == "pass" })
}

func clip(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// writeTable writes the markdown table of the corpus (one row per model:
// imports, rewrites, matches PyTorch, bit-identical rewrite, share of the
// FLOPs on the replicas, the first failure), and the ONNX op types the
// corpus holds that the importer does not map, with the models that hold
// them.
func writeTable(w io.Writer, m *Manifest, results []*result) error {
	yes := func(err error) string {
		if err == nil {
			return "yes"
		}
		return "no"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Corpus exported by PyTorch %s (torchvision %s); rewrites for %s GPUs, runs at batch %s; FLOPs on the replicas at --gpus %d --batch %d",
		m.Torch, m.Torchvision, gpuList(results), strings.Join(batches, " and "), len(explainGPUs), explainBatch)
	var at []string
	for _, r := range results {
		var dims []string
		for k, v := range r.e.ExplainDims {
			dims = append(dims, fmt.Sprintf("--dim %s=%d", k, v))
		}
		if len(dims) > 0 {
			sort.Strings(dims)
			at = append(at, r.e.Name+" at "+strings.Join(dims, " "))
		}
	}
	if len(at) > 0 {
		fmt.Fprintf(&b, " (%s)", strings.Join(at, ", "))
	}
	b.WriteString(".\n\n")
	b.WriteString("| model | family | opset | imports | rewrites | matches PyTorch | rewrite bit-identical | FLOPs on replicas | first failure |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|\n")
	passing := 0
	for _, r := range results {
		e := r.e
		rewrites, match, same := "", "", ""
		if r.importErr == nil {
			rewrites, match, same = "yes", "yes", "yes"
			for _, g := range r.gpus {
				if r.rewrite[len(g)] != nil {
					rewrites = "no"
				}
			}
			for _, err := range r.match {
				match = yes(err)
				if err != nil {
					break
				}
			}
			for _, err := range r.same {
				if err != nil {
					same = "no"
				}
			}
			if rewrites == "no" {
				same = ""
			}
		}
		share := ""
		if r.shareErr == nil {
			share = fmt.Sprintf("%.1f%%", 100*r.share)
		}
		fail := r.failure()
		if fail == "" {
			passing++
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %s | %s | %s | %s | %s | %s |\n", e.Name, e.Family, e.Opset, yes(r.importErr), rewrites, match, same, share, cell(fail))
	}
	fmt.Fprintf(&b, "\n%d of %d models pass every check.\n", passing, len(results))
	supported := onnx.SupportedOps()
	missing := map[string][]string{}
	hist := map[string]int{}
	for _, e := range m.Models {
		for op, n := range e.Ops {
			hist[op] += n
			if !slices.Contains(supported, op) {
				missing[op] = append(missing[op], e.Name)
			}
		}
	}
	if len(missing) > 0 {
		ops := make([]string, 0, len(missing))
		for op := range missing {
			ops = append(ops, op)
		}
		sort.Slice(ops, func(i, j int) bool {
			if len(missing[ops[i]]) != len(missing[ops[j]]) {
				return len(missing[ops[i]]) > len(missing[ops[j]])
			}
			return ops[i] < ops[j]
		})
		b.WriteString("\nONNX op types of the corpus the importer does not map:\n\n| op | models |\n|---|---|\n")
		for _, op := range ops {
			fmt.Fprintf(&b, "| %s | %d: %s |\n", op, len(missing[op]), strings.Join(missing[op], ", "))
		}
	}
	ops := make([]string, 0, len(hist))
	for op := range hist {
		ops = append(ops, op)
	}
	sort.Slice(ops, func(i, j int) bool {
		return hist[ops[i]] > hist[ops[j]] || hist[ops[i]] == hist[ops[j]] && ops[i] < ops[j]
	})
	b.WriteString("\nONNX op types of the corpus, by node count:")
	for _, op := range ops {
		fmt.Fprintf(&b, " %s %d,", op, hist[op])
	}
	s := strings.TrimSuffix(b.String(), ",") + "\n"
	_, err := io.WriteString(w, s)
	return err
}

func gpuList(results []*result) string {
	if len(results) == 0 {
		return ""
	}
	var s []string
	for _, g := range results[0].gpus {
		s = append(s, fmt.Sprint(len(g)))
	}
	return strings.Join(s, " and ")
}

// cell makes a failure fit a markdown table cell: without the file's name
// and the list of supported ops that an unsupported op's error carries.
func cell(s string) string {
	if i := strings.Index(s, "model.onnx: "); i >= 0 {
		s = s[:strings.LastIndex(s[:i], ": ")+2] + strings.TrimPrefix(s[i+len("model.onnx: "):], "onnx: ")
	}
	if i := strings.Index(s, "; supported ops: "); i >= 0 {
		s = s[:i]
	}
	s = clip(s, 200)
	return strings.ReplaceAll(s, "|", "\\|")
}
