package replicate_test

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"

	"multigpu/graph"
	"multigpu/passes/replicate"
)

// TestProperties checks, for every model and every GPU count from 2 to 8,
// that the rewrite verifies, uses only the devices asked for, and clones
// every batch-parallel node exactly once per replica.
func TestProperties(t *testing.T) {
	for _, path := range models(t) {
		g := parseModel(t, path)
		an, aerr := replicate.Analyze(g, replicate.BatchNormSync)
		for n := 2; n <= 8; n++ {
			for _, merge := range []graph.Device{graph.HostCPU, graph.GPUDevice(0)} {
				opts := replicate.Options{GPUs: gpus(n), BatchNorm: replicate.BatchNormSync, Merge: merge}
				out, _, err := replicate.Rewrite(g, opts)
				if err != nil {
					if len(g.Devices()) > 1 && strings.Contains(err.Error(), "already placed") {
						continue
					}
					t.Fatalf("%s --gpus %d: %v", path, n, err)
				}
				if aerr != nil {
					t.Fatalf("%s: Analyze failed but Rewrite did not: %v", path, aerr)
				}
				checkRewrite(t, path, g, an, out, opts)
			}
		}
	}
}

func checkRewrite(t *testing.T, path string, src *graph.Graph, an *replicate.Analysis, out *graph.Graph, opts replicate.Options) {
	t.Helper()
	if err := graph.Verify(out); err != nil {
		t.Fatalf("%s: rewrite does not verify: %v", path, err)
	}
	allowed := map[graph.Device]int{opts.Merge: -1}
	for k, id := range opts.GPUs {
		allowed[graph.GPUDevice(id)] = k
	}
	for _, n := range out.Nodes {
		if _, ok := allowed[n.Device]; !ok {
			t.Errorf("%s: %%%s is on %s, which was not asked for", path, n.Name, n.Device)
		}
	}
	// Outputs keep their names and order.
	if len(out.Outputs) != len(src.Outputs) {
		t.Fatalf("%s: %d outputs, want %d", path, len(out.Outputs), len(src.Outputs))
	}
	for i, o := range src.Outputs {
		if out.Outputs[i].Name != o.Name || out.Outputs[i].Device != opts.Merge {
			t.Errorf("%s: output %d is %%%s on %s, want %%%s on %s", path, i, out.Outputs[i].Name, out.Outputs[i].Device, o.Name, opts.Merge)
		}
		if !out.Outputs[i].Type.Equal(o.Type) {
			t.Errorf("%s: output %%%s has type %s, want %s", path, o.Name, out.Outputs[i].Type, o.Type)
		}
	}
	// Each batch-parallel node: exactly one clone per replica, same op, on
	// the replica's GPU.
	replicas := len(opts.GPUs)
	srcNames := map[string]bool{}
	for _, n := range src.Nodes {
		srcNames[n.Name] = true
	}
	for _, n := range src.Nodes {
		if n.IsLeaf() || an.Of(n).Placement != replicate.Replicated {
			continue
		}
		for k := 0; k < replicas; k++ {
			c := out.Lookup(n.Name + ".r" + itoa(k))
			if c == nil || c.Op != n.Op || c.Device != graph.GPUDevice(opts.GPUs[k]) {
				t.Errorf("%s: replica %d of %%%s missing or wrong: %+v", path, k, n.Name, c)
			}
		}
	}
	// Every computation on a GPU that is not the merge device derives from
	// a node of the source graph, by name.
	for _, n := range out.Nodes {
		k, ok := allowed[n.Device]
		if !ok || k < 0 || n.Device == opts.Merge || n.Op == "copy" || n.Op == "slice" {
			continue
		}
		base := strings.TrimSuffix(n.Name, ".r"+itoa(k))
		if base == n.Name {
			t.Errorf("%s: %%%s on %s lacks the replica suffix .r%d", path, n.Name, n.Device, k)
			continue
		}
		for !srcNames[base] && strings.Contains(base, ".") {
			base = base[:strings.LastIndexByte(base, '.')]
		}
		if !srcNames[base] {
			t.Errorf("%s: %%%s on %s derives from no source node", path, n.Name, n.Device)
		}
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// TestSlicesCoverBatch checks that the shares of every input cover the
// batch exactly once, in order, with no empty share, for every batch size
// from 1 to 40, every GPU count from 2 to 8 and both split policies.
func TestSlicesCoverBatch(t *testing.T) {
	sizes := make([]int64, 40)
	for i := range sizes {
		sizes[i] = int64(i + 1)
	}
	counts := []int{2, 3, 4, 5, 6, 7, 8}
	if testing.Short() {
		sizes = []int64{1, 2, 3, 7, 8, 9, 10, 31, 40}
		counts = []int{2, 3, 8}
	}
	for _, path := range models(t) {
		g := parseModel(t, path)
		if len(g.Devices()) > 1 {
			continue
		}
		_, bound := g.Batch()
		for _, policy := range []graph.SplitPolicy{graph.Balanced, graph.Remainder} {
			for _, n := range counts {
				for _, b := range sizes {
					if bound != 0 && b != bound {
						continue
					}
					opts := replicate.Options{GPUs: gpus(n), Split: policy, Batch: b, BatchNorm: replicate.BatchNormSync}
					out, warnings, err := replicate.Rewrite(g, opts)
					if err != nil {
						t.Fatalf("%s --gpus %d --batch %d --split %s: %v", path, n, b, policy, err)
					}
					if want := min(int(b), n); want < n && len(warnings) == 0 {
						t.Errorf("%s --gpus %d --batch %d: no warning about %d replicas", path, n, b, want)
					}
					checkCover(t, path, out, b, min(int(b), n))
				}
			}
		}
		if bound == 0 {
			// A symbolic rewrite: the runtime resolves shares by the same
			// rule, so the rule itself must cover every batch.
			for _, b := range sizes {
				for _, n := range counts {
					if int64(n) <= b {
						checkRule(t, b, n)
					}
				}
			}
		}
	}
}

func checkCover(t *testing.T, path string, out *graph.Graph, b int64, replicas int) {
	t.Helper()
	byInput := map[string][]*graph.Node{}
	for _, n := range out.Nodes {
		if _, share := n.Attrs.Get("part"); n.Op == "slice" && share {
			byInput[n.Args[0].Name] = append(byInput[n.Args[0].Name], n)
		}
	}
	for in, shares := range byInput {
		if len(shares) != replicas {
			t.Errorf("%s batch %d: %%%s has %d shares, want %d", path, b, in, len(shares), replicas)
		}
		slices.SortFunc(shares, func(x, y *graph.Node) int { return int(x.IntAttr("part", 0) - y.IntAttr("part", 0)) })
		next := int64(0)
		for k, s := range shares {
			start, end := s.IntAttr("start", -1), s.IntAttr("end", -1)
			if s.IntAttr("part", -1) != int64(k) || start != next || end <= start {
				t.Errorf("%s batch %d: share %d of %%%s is [%d, %d), want to start at %d and be non-empty", path, b, k, in, start, end, next)
			}
			next = end
		}
		if next != b {
			t.Errorf("%s batch %d: shares of %%%s end at %d", path, b, in, next)
		}
	}
}

func checkRule(t *testing.T, b int64, n int) {
	for _, policy := range []graph.SplitPolicy{graph.Balanced, graph.Remainder} {
		next := int64(0)
		for k := 0; k < n; k++ {
			s, e := graph.SplitBounds(b, n, k, policy)
			if s != next || e <= s {
				t.Fatalf("SplitBounds(%d, %d, %d, %s) = [%d, %d), want to start at %d, non-empty", b, n, k, policy, s, e, next)
			}
			next = e
		}
		if next != b {
			t.Fatalf("SplitBounds(%d, %d, ·, %s) ends at %d", b, n, policy, next)
		}
	}
}

// TestOptionErrors checks the messages for bad device requests.
func TestOptionErrors(t *testing.T) {
	g := parseModel(t, "../../testdata/mlp.graph")
	cases := []struct {
		opts replicate.Options
		want string
	}{
		{replicate.Options{GPUs: []int{0}}, "--gpus: expected at least 2 GPUs (data parallelism needs two or more), found 1 (gpu:0)"},
		{replicate.Options{}, "--gpus: expected at least 2 GPUs (data parallelism needs two or more), found 0 ()"},
		{replicate.Options{GPUs: []int{0, 0}}, "--gpus: expected distinct GPU indices, found gpu:0 twice"},
		{replicate.Options{GPUs: []int{1, -2}}, "--gpus: expected non-negative GPU indices, found -2"},
		{replicate.Options{GPUs: []int{0, 2, 5}, Available: []graph.Device{graph.GPUDevice(0), graph.GPUDevice(1), graph.GPUDevice(2)}},
			"devices not available: gpu:5; expected gpu:0, gpu:2, gpu:5, cpu, available: gpu:0, gpu:1, gpu:2"},
		{replicate.Options{GPUs: []int{0, 1}, Available: []graph.Device{}},
			"devices not available: gpu:0, gpu:1; expected gpu:0, gpu:1, cpu, available: none"},
		{replicate.Options{GPUs: []int{0, 1}, Merge: graph.GPUDevice(3), Available: []graph.Device{graph.GPUDevice(0), graph.GPUDevice(1)}},
			"devices not available: gpu:3; expected gpu:0, gpu:1, gpu:3, available: gpu:0, gpu:1"},
		{replicate.Options{GPUs: []int{0, 1}, Split: "random"}, `expected a split policy (balanced or remainder), found "random"`},
		{replicate.Options{GPUs: []int{0, 1}, BatchNorm: "avg"}, `expected a batchnorm mode (per-replica, sync or refuse), found "avg"`},
		{replicate.Options{GPUs: []int{0, 1}, Batch: -3}, "--batch: expected a positive batch size, found -3"},
	}
	for _, c := range cases {
		_, _, err := replicate.Rewrite(g, c.opts)
		if err == nil || err.Error() != c.want {
			t.Errorf("Rewrite(%+v):\n got %v\nwant %s", c.opts, err, c.want)
		}
	}
}

func TestParseGPUs(t *testing.T) {
	good := map[string][]int{"2": {0, 1}, "4": {0, 1, 2, 3}, "0,2,5": {0, 2, 5}, " 3 , 1 ": {3, 1}}
	for in, want := range good {
		got, err := replicate.ParseGPUs(in)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("ParseGPUs(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	bad := map[string]string{
		"1":     "--gpus: expected at least 2 GPUs (data parallelism needs two or more), found 1",
		"0":     "--gpus: expected at least 2 GPUs (data parallelism needs two or more), found 0",
		"-4":    "--gpus: expected at least 2 GPUs (data parallelism needs two or more), found -4",
		"two":   `--gpus: expected a GPU count (2 or more) or a list of GPU indices such as 0,2,5, found "two"`,
		"0,0":   "--gpus: expected distinct GPU indices, found gpu:0 twice",
		"1,-1":  "--gpus: expected non-negative GPU indices, found -1",
		"3,":    `--gpus: expected GPU indices (non-negative integers) in "3,", found ""`,
		"":      "--gpus: expected a GPU count (2 or more) or a list of GPU indices such as 0,2,5, found nothing",
		"2,x,4": `--gpus: expected GPU indices (non-negative integers) in "2,x,4", found "x"`,
	}
	for in, want := range bad {
		_, err := replicate.ParseGPUs(in)
		if err == nil || err.Error() != want {
			t.Errorf("ParseGPUs(%q):\n got %v\nwant %s", in, err, want)
		}
	}
}

// TestRefusals: what the pass refuses, with errors that name the node.
func TestRefusals(t *testing.T) {
	cases := []struct{ src, want string }{
		{`graph bn {
  input %x: f32[N,4]
  param %s: f32[4]
  %y = batchnorm %x, %s, %s, %s, %s {training=true}
  output %y
}
`, "bn.graph:4:3: %y: batchnorm with training=true normalises with statistics of the whole batch; choose --batchnorm sync (exact: statistics over all replicas) or --batchnorm per-replica (each replica's own statistics, as Keras did)"},
		{`graph nobatch {
  input %x: f32[3,4]
  %y = relu %x
  output %y
}
`, "graph nobatch: no input carries a batch axis, so there is nothing to split (give an input's batch axis a symbol, as in f32[N,784])"},
		{`graph placed {
  input %x: f32[N,4] @cpu
  %y = relu %x @cpu
  %z = copy %y @gpu:1
  output %z
}
`, "graph placed is already placed on several devices (cpu, gpu:1): replicate expects a single-device graph"},
	}
	for _, c := range cases {
		name := strings.Fields(c.src)[1]
		g, err := graph.Parse(name+".graph", []byte(c.src))
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = replicate.Rewrite(g, replicate.Options{GPUs: gpus(2)})
		if err == nil || err.Error() != c.want {
			t.Errorf("%s:\n got %v\nwant %s", name, err, c.want)
		}
		var ge *graph.Error
		if strings.HasPrefix(c.want, name+".graph:") && !errors.As(err, &ge) {
			t.Errorf("%s: error is not a positioned *graph.Error", name)
		}
	}
}

// TestNameCollisions: generated names never collide with the model's own.
func TestNameCollisions(t *testing.T) {
	src := `graph clash {
  input %x: f32[N,4]
  input %x.r0: f32[N,4]
  const %m.r1: f32[] = 2.0
  %m = mean %x {axes=[0]}
  %m.count = relu %x.r0
  %y = sub %x, %m
  %z = mul %y, %m.r1
  output %z, %m.count
}
`
	g, err := graph.Parse("clash.graph", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	// Combined on the replicas (the default), the names are fresh too.
	ar, _, err := replicate.Rewrite(g, replicate.Options{GPUs: gpus(2)})
	if err != nil {
		t.Fatal(err)
	}
	if err := graph.Verify(ar); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"x", "x.r0", "m.r1", "m.count"} {
		if c := ar.Lookup(name); c == nil || c.Device != graph.HostCPU {
			t.Errorf("allreduce: %%%s: want the original on cpu, found %+v", name, c)
		}
	}
	out, _, err := replicate.Rewrite(g, replicate.Options{GPUs: gpus(2), Combine: replicate.CombineMerge})
	if err != nil {
		t.Fatal(err)
	}
	if err := graph.Verify(out); err != nil {
		t.Fatal(err)
	}
	// On the merge device every original name still names the original
	// value (a mean is now the division of the combined sum by the count).
	want := map[string]string{"x": "input", "x.r0": "input", "m.r1": "const", "m": "div", "m.count": "concat", "z": "concat"}
	for name, op := range want {
		if c := out.Lookup(name); c == nil || c.Op != op || c.Device != graph.HostCPU {
			t.Errorf("%%%s: want a %s on cpu, found %+v", name, op, c)
		}
	}
}
