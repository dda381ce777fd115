package graph

import (
	"fmt"
	"strconv"
	"strings"
)

// Device is where a node runs: the host CPU or one GPU.
// The zero Device means "not placed" (a single-device model may carry none).
type Device struct {
	Kind  DeviceKind
	Index int
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

// IsSet reports whether d names a device.
func (d Device) IsSet() bool { return d.Kind != NoDevice }

// String returns the spelling of d without the leading '@': "cpu", "gpu:3",
// or "" for no device.
func (d Device) String() string {
	switch d.Kind {
	case CPU:
		return "cpu"
	case GPU:
		return "gpu:" + strconv.Itoa(d.Index)
	}
	return ""
}

// ParseDevice parses "cpu" or "gpu:K".
func ParseDevice(s string) (Device, error) {
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
