package replicate_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"multigpu/graph"
	"multigpu/passes/replicate"
)

var update = flag.Bool("update", false, "rewrite the golden files in ../../golden")

// config is one golden configuration: the command-line flags it stands for
// and the options they mean.
type config struct {
	name  string
	flags string
	opts  replicate.Options
}

func gpus(n int) []int {
	ids := make([]int, n)
	for i := range ids {
		ids[i] = i
	}
	return ids
}

var configs = []config{
	{"gpus2", "--gpus 2", replicate.Options{GPUs: gpus(2)}},
	{"gpus3", "--gpus 3", replicate.Options{GPUs: gpus(3)}},
	{"gpus4", "--gpus 4", replicate.Options{GPUs: gpus(4)}},
	{"gpus8", "--gpus 8", replicate.Options{GPUs: gpus(8)}},
	{"gpus0_2_5", "--gpus 0,2,5", replicate.Options{GPUs: []int{0, 2, 5}}},
	{"merge_gpu0", "--gpus 2 --merge gpu:0", replicate.Options{GPUs: gpus(2), Merge: graph.GPUDevice(0)}},
	{"remainder", "--gpus 4 --split remainder", replicate.Options{GPUs: gpus(4), Split: graph.Remainder}},
	{"remainder_batch10", "--gpus 4 --split remainder --batch 10", replicate.Options{GPUs: gpus(4), Split: graph.Remainder, Batch: 10}},
	{"batch10", "--gpus 4 --batch 10", replicate.Options{GPUs: gpus(4), Batch: 10}},
	{"batch3_gpus4", "--gpus 4 --batch 3", replicate.Options{GPUs: gpus(4), Batch: 3}},
	{"bn_sync", "--gpus 2 --batchnorm sync", replicate.Options{GPUs: gpus(2), BatchNorm: replicate.BatchNormSync}},
	{"bn_per_replica", "--gpus 2 --batchnorm per-replica", replicate.Options{GPUs: gpus(2), BatchNorm: replicate.BatchNormPerReplica}},
	{"combine_merge", "--gpus 2 --combine merge", replicate.Options{GPUs: gpus(2), Combine: replicate.CombineMerge}},
	{"combine_allreduce", "--gpus 3 --combine allreduce", replicate.Options{GPUs: gpus(3), Combine: replicate.CombineAllreduce}},
	{"ranks2_gpus2", "--gpus 2 --ranks 2", replicate.Options{GPUs: gpus(2), Ranks: 2}},
}

func models(t testing.TB) []string {
	paths, err := filepath.Glob("../../testdata/*.graph")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no models in ../../testdata: %v", err)
	}
	return paths
}

func parseModel(t testing.TB, path string) *graph.Graph {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	g, err := graph.Parse("testdata/"+filepath.Base(path), src)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// golden renders the result of one rewrite as a golden file: a header
// naming the command, warnings as comments, then the graph or the error.
func golden(model string, c config, out *graph.Graph, warnings []string, err error) (text string, ext string) {
	var b strings.Builder
	b.WriteString("# rewrite testdata/" + model + ".graph " + c.flags + "\n")
	for _, w := range warnings {
		b.WriteString("# warning: " + w + "\n")
	}
	if err != nil {
		b.WriteString(err.Error() + "\n")
		return b.String(), ".err"
	}
	b.WriteString(graph.Format(out))
	return b.String(), ".graph"
}

// TestGolden compares the rewrite of every model under every configuration
// with golden/MODEL/CONFIG.graph (or .err for a refused rewrite).
func TestGolden(t *testing.T) {
	for _, path := range models(t) {
		model := strings.TrimSuffix(filepath.Base(path), ".graph")
		g := parseModel(t, path)
		for _, c := range configs {
			t.Run(model+"/"+c.name, func(t *testing.T) {
				out, warnings, err := replicate.Rewrite(g, c.opts)
				got, ext := golden(model, c, out, warnings, err)
				base := filepath.Join("../../golden", model, c.name)
				file := base + ext
				if *update {
					os.Remove(base + ".graph")
					os.Remove(base + ".err")
					if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
						t.Fatal(err)
					}
					return
				}
				want, rerr := os.ReadFile(file)
				if rerr != nil {
					t.Fatalf("%v (run go test ./... -update to create it); got:\n%s", rerr, got)
				}
				if diff := cmp.Diff(string(want), got); diff != "" {
					t.Errorf("%s differs (-want +got):\n%s\nrun go test ./... -update and review the diff", file, diff)
				}
				if ext == ".graph" {
					// The golden text itself parses and prints back unchanged.
					g2, err := graph.Parse(file, want)
					if err != nil {
						t.Fatalf("golden file does not parse: %v", err)
					}
					if printed := graph.Format(g2); !strings.HasSuffix(string(want), printed) {
						t.Errorf("golden file does not round-trip:\n%s", cmp.Diff(string(want), printed))
					}
				}
			})
		}
	}
}

// TestGoldenNoStrays fails on golden files that no model and configuration
// produce, so renamed cases do not leave dead files behind.
func TestGoldenNoStrays(t *testing.T) {
	known := map[string]bool{}
	for _, path := range models(t) {
		model := strings.TrimSuffix(filepath.Base(path), ".graph")
		for _, c := range configs {
			known[filepath.Join(model, c.name)] = true
		}
	}
	err := filepath.WalkDir("../../golden", func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel("../../golden", p)
		if !known[strings.TrimSuffix(strings.TrimSuffix(rel, ".graph"), ".err")] {
			if *update {
				return os.Remove(p)
			}
			t.Errorf("stray golden file %s", p)
		}
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
}

func TestGoldenDeterministic(t *testing.T) {
	for _, path := range models(t) {
		g := parseModel(t, path)
		a, _, errA := replicate.Rewrite(g, configs[3].opts)
		b, _, errB := replicate.Rewrite(g, configs[3].opts)
		if (errA == nil) != (errB == nil) {
			t.Fatalf("%s: errors differ: %v / %v", path, errA, errB)
		}
		if errA == nil && !bytes.Equal([]byte(graph.Format(a)), []byte(graph.Format(b))) {
			t.Errorf("%s: two rewrites print differently", path)
		}
	}
}
