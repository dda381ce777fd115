package replicate

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"multigpu/graph"
)

// BatchNormMode chooses what happens to batchnorm in training mode, whose
// statistics cross the batch.
type BatchNormMode string

// The batchnorm modes.
const (
	// BatchNormRefuse (the default) makes training-mode batchnorm an error
	// that names the node.
	BatchNormRefuse BatchNormMode = ""
	// BatchNormPerReplica computes statistics over each replica's share,
	// as Keras's multi_gpu_model did: not what one device computes.
	BatchNormPerReplica BatchNormMode = "per-replica"
	// BatchNormSync computes statistics over the whole batch (per-replica
	// partial sums combined on the merge device and copied back): exact.
	BatchNormSync BatchNormMode = "sync"
)

// ParseBatchNormMode returns the mode named s ("per-replica", "sync", or
// "refuse"/"" for the default).
func ParseBatchNormMode(s string) (BatchNormMode, error) {
	switch s {
	case "", "refuse":
		return BatchNormRefuse, nil
	case string(BatchNormPerReplica), string(BatchNormSync):
		return BatchNormMode(s), nil
	}
	return "", fmt.Errorf("expected a batchnorm mode (per-replica, sync or refuse), found %q", s)
}

// CombineMode chooses how values combined over the batch (sums, means,
// maxima and minima over it; gradients of weights) are combined.
type CombineMode string

// The combine modes.
const (
	// CombineAuto (the default) makes a combined value that the replicas
	// use again (synchronised batchnorm statistics, x - mean(x) over the
	// batch, gradients an optimizer step on the replicas reads) an
	// allreduce group on the replicas, and combines the rest (batch-free
	// outputs such as the loss) on the merge device.
	CombineAuto CombineMode = "auto"
	// CombineMerge concatenates every combination's partials on the merge
	// device, reduces them there, and copies the result back to the
	// replicas that use it (Keras's multi_gpu_model, PyTorch's
	// DataParallel).
	CombineMerge CombineMode = "merge"
	// CombineAllreduce makes every combination an allreduce group on the
	// replicas; the merge device gets a copy of one member's value where
	// it needs one (an output).
	CombineAllreduce CombineMode = "allreduce"
)

// ParseCombineMode returns the mode named s ("auto" or "" for the
// default, "merge", "allreduce").
func ParseCombineMode(s string) (CombineMode, error) {
	switch s {
	case "", string(CombineAuto):
		return CombineAuto, nil
	case string(CombineMerge), string(CombineAllreduce):
		return CombineMode(s), nil
	}
	return "", fmt.Errorf("--combine: expected auto, merge or allreduce, found %q", s)
}

// Options configures the replicate pass.
type Options struct {
	// GPUs lists the GPU indices to replicate across: at least two,
	// distinct, non-negative. Replica k runs on gpu:GPUs[k].
	GPUs []int
	// Merge is the device that holds the inputs and params, and computes
	// the concatenated outputs, combined reductions and batch-crossing
	// ops. The zero Device means cpu.
	Merge graph.Device
	// Split is the rule that divides the batch (default balanced).
	Split graph.SplitPolicy
	// Batch binds a symbolic batch to this size, so that slice bounds are
	// concrete; 0 leaves it as the model has it.
	Batch int64
	// BatchNorm chooses how training-mode batchnorm is replicated.
	BatchNorm BatchNormMode
	// Combine chooses where combinations over the batch happen (default
	// auto).
	Combine CombineMode
	// Available, when not nil, lists the devices that exist (on every
	// rank, by the rank's own names); asking for any other is an error.
	Available []graph.Device
	// Ranks is the number of processes (MPI ranks) the replicas span; 0
	// or 1 means this process alone. Every rank drives the GPUs listed,
	// so Ranks x len(GPUs) replicas run in all: replica k on rank
	// k / len(GPUs), on its GPU GPUs[k % len(GPUs)], as rankR/gpu:K
	// (graph.Device). The merge device has no rank: every rank holds the
	// inputs and params there and computes the merged values alike. With
	// several ranks, one GPU per rank is allowed.
	Ranks int
}

// replicaDevices returns the devices of the replicas, in replica order:
// the GPUs listed, on every rank in rank order when there are ranks.
func (o Options) replicaDevices() []graph.Device {
	if o.Ranks <= 1 {
		return gpuDevices(o.GPUs)
	}
	out := make([]graph.Device, 0, o.Ranks*len(o.GPUs))
	for r := range o.Ranks {
		for _, id := range o.GPUs {
			out = append(out, graph.GPUDevice(id).OnRank(r))
		}
	}
	return out
}

// ParseGPUs reads a --gpus value: a count N (>= 2, meaning gpu:0..gpu:N-1)
// or a comma-separated list of distinct indices ("0,2,5").
func ParseGPUs(s string) ([]int, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, fmt.Errorf("--gpus: expected a GPU count (2 or more) or a list of GPU indices such as 0,2,5, found nothing")
	}
	if !strings.Contains(s, ",") {
		n, err := strconv.Atoi(s)
		if err != nil {
			return nil, fmt.Errorf("--gpus: expected a GPU count (2 or more) or a list of GPU indices such as 0,2,5, found %q", s)
		}
		if n < 2 {
			return nil, fmt.Errorf("--gpus: expected at least 2 GPUs (data parallelism needs two or more), found %d", n)
		}
		if n > 1<<16 {
			return nil, fmt.Errorf("--gpus: expected at most %d GPUs, found %d", 1<<16, n)
		}
		ids := make([]int, n)
		for i := range ids {
			ids[i] = i
		}
		return ids, nil
	}
	var ids []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("--gpus: expected GPU indices (non-negative integers) in %q, found %q", s, f)
		}
		ids = append(ids, n)
	}
	return ids, checkGPUs(ids)
}

func checkGPUs(ids []int) error {
	if len(ids) < 2 {
		return fmt.Errorf("--gpus: expected at least 2 GPUs (data parallelism needs two or more), found %d (%s)", len(ids), devList(gpuDevices(ids)))
	}
	for i, id := range ids {
		if id < 0 {
			return fmt.Errorf("--gpus: expected non-negative GPU indices, found %d", id)
		}
		if slices.Contains(ids[:i], id) {
			return fmt.Errorf("--gpus: expected distinct GPU indices, found gpu:%d twice", id)
		}
	}
	return nil
}

func gpuDevices(ids []int) []graph.Device {
	out := make([]graph.Device, len(ids))
	for i, id := range ids {
		out[i] = graph.GPUDevice(id)
	}
	return out
}

func devList(ds []graph.Device) string {
	s := make([]string, len(ds))
	for i, d := range ds {
		s[i] = d.String()
	}
	return strings.Join(s, ", ")
}

// ParseDevices reads a comma-separated device list such as "gpu:0,gpu:1"
// (a bare index K means gpu:K).
func ParseDevices(s string) ([]graph.Device, error) {
	var out []graph.Device
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if n, err := strconv.Atoi(f); err == nil && n >= 0 {
			out = append(out, graph.GPUDevice(n))
			continue
		}
		d, err := graph.ParseDevice(f)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// check validates the options and fills in defaults.
func (o Options) check() (Options, error) {
	if o.Ranks < 0 || o.Ranks > 1<<16 {
		return o, fmt.Errorf("ranks: expected 1 to %d processes, found %d", 1<<16, o.Ranks)
	}
	// One GPU per rank is enough across ranks: two or more replicas in
	// all.
	onePerRank := o.Ranks > 1 && len(o.GPUs) == 1 && o.GPUs[0] >= 0
	if err := checkGPUs(o.GPUs); err != nil && !onePerRank {
		return o, err
	}
	if o.Merge.IsSet() {
		if _, ok := o.Merge.Rank(); ok {
			return o, fmt.Errorf("--merge: expected a device of every rank (cpu or gpu:K), found %s", o.Merge)
		}
	}
	if !o.Merge.IsSet() {
		o.Merge = graph.HostCPU
	}
	if o.Split == "" {
		o.Split = graph.Balanced
	}
	if _, err := graph.ParseSplitPolicy(string(o.Split)); err != nil {
		return o, err
	}
	if _, err := ParseBatchNormMode(string(o.BatchNorm)); err != nil {
		return o, err
	}
	var err error
	if o.Combine, err = ParseCombineMode(string(o.Combine)); err != nil {
		return o, err
	}
	if o.Batch < 0 {
		return o, fmt.Errorf("--batch: expected a positive batch size, found %d", o.Batch)
	}
	if o.Available != nil {
		want := append(gpuDevices(o.GPUs), o.Merge)
		var missing []graph.Device
		for _, d := range want {
			if d.Kind == graph.GPU && !slices.Contains(o.Available, d) && !slices.Contains(missing, d) {
				missing = append(missing, d)
			}
		}
		if len(missing) > 0 {
			avail := devList(o.Available)
			if avail == "" {
				avail = "none"
			}
			return o, fmt.Errorf("devices not available: %s; expected %s, available: %s", devList(missing), devList(want), avail)
		}
	}
	return o, nil
}
