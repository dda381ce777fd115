package graph

import (
	"fmt"
	"strconv"
	"strings"
)

// Device is where a node runs: the host CPU or one GPU, of the process
// itself or of one rank of a job across processes (MPI).
// The zero Device means "not placed" (a single-device model may carry none).
//
// A device of a rank is spelled with the rank first: rank1/gpu:0 is the
// first GPU rank 1 drives (the index counts the rank's own GPUs; which
// GPU of its node that is depends on its local rank, and is the
// runtime's business). In a graph across ranks, a device without a rank
// (cpu, gpu:0) is one that every rank has: each runs the nodes placed
// there itself, on its own device of that name, and computes the same
// values (the merge device, which holds the inputs and params on every
// rank).
type Device struct {
	Kind  DeviceKind
	Index int
	rank  int // the rank plus one; 0 for a device of every rank
}

// DeviceKind tells the CPU from a GPU.
type DeviceKind uint8

// The kinds of device.
const (
	NoDevice DeviceKind = iota
	CPU
	GPU
)

// HostCPU is the host's CPU device.
var HostCPU = Device{Kind: CPU}

// GPUDevice returns the device gpu:i.
func GPUDevice(i int) Device { return Device{Kind: GPU, Index: i} }

// OnRank returns d on rank r (r >= 0): OnRank(1) of gpu:0 is rank1/gpu:0.
func (d Device) OnRank(r int) Device {
	d.rank = r + 1
	return d
}

// Rank returns the rank d belongs to, and false for a device of every
// rank (or of a process that is not one of several).
func (d Device) Rank() (int, bool) { return d.rank - 1, d.rank > 0 }

// Local returns d without its rank: the device as its rank names it.
func (d Device) Local() Device {
	d.rank = 0
	return d
}

// IsSet reports whether d names a device.
func (d Device) IsSet() bool { return d.Kind != NoDevice }

// String returns the spelling of d without the leading '@': "cpu", "gpu:3",
// "rank1/gpu:0", or "" for no device.
func (d Device) String() string {
	var s string
	switch d.Kind {
	case CPU:
		s = "cpu"
	case GPU:
		s = "gpu:" + strconv.Itoa(d.Index)
	default:
		return ""
	}
	if r, ok := d.Rank(); ok {
		return "rank" + strconv.Itoa(r) + "/" + s
	}
	return s
}

// CompareDevices orders devices: those of every rank first, then by
// rank; within one, cpu first, then GPUs by index.
func CompareDevices(a, b Device) int {
	if a.rank != b.rank {
		return a.rank - b.rank
	}
	if a.Kind != b.Kind {
		return int(a.Kind) - int(b.Kind)
	}
	return a.Index - b.Index
}

// ParseDevice parses "cpu", "gpu:K", or either after "rankR/".
func ParseDevice(s string) (Device, error) {
	rest, ok := strings.CutPrefix(s, "rank")
	if !ok {
		return parseLocalDevice(s)
	}
	if r, dev, ok := strings.Cut(rest, "/"); ok {
		n, nerr := strconv.Atoi(r)
		d, derr := parseLocalDevice(dev)
		if nerr == nil && n >= 0 && r == strconv.Itoa(n) && derr == nil {
			return d.OnRank(n), nil
		}
	}
	return Device{}, fmt.Errorf("expected a device (cpu or gpu:K with K >= 0, or either after rankR/), found %q", s)
}

func parseLocalDevice(s string) (Device, error) {
	if s == "cpu" {
		return HostCPU, nil
	}
	if rest, ok := strings.CutPrefix(s, "gpu:"); ok {
		n, err := strconv.Atoi(rest)
		if err == nil && n >= 0 && rest == strconv.Itoa(n) {
			return GPUDevice(n), nil
		}
	}
	return Device{}, fmt.Errorf("expected a device (cpu or gpu:K with K >= 0), found %q", s)
}
