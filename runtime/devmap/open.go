package devmap

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	"multigpu/graph"
	"multigpu/runtime/backend"
	"multigpu/runtime/cpu"
	"multigpu/runtime/cuda"
)

// GPU describes one physical GPU.
type GPU struct {
	// Ordinal is the CUDA device ordinal.
	Ordinal int
	// Name is the device's name ("NVIDIA H100 80GB HBM3").
	Name string
	// Memory is the device's memory in bytes.
	Memory int64
	// Major and Minor are the compute capability.
	Major, Minor int
}

// String returns "0: NVIDIA H100 80GB HBM3 (sm_90, 79.1 GiB)".
func (g GPU) String() string {
	return fmt.Sprintf("%d: %s (sm_%d%d, %.1f GiB)", g.Ordinal, g.Name, g.Major, g.Minor, float64(g.Memory)/(1<<30))
}

// ErrNoCUDA is returned by Discover, and for every GPU a Set is asked for,
// in a binary built without the cudart tag.
var ErrNoCUDA = errors.New("no GPUs: built without -tags cudart; build with `go build -tags cudart ./cmd/rewrite` on a machine with CUDA")

// Discover lists the machine's GPUs, by ordinal. Built without -tags cudart
// it returns ErrNoCUDA; built with it, a machine without a CUDA driver
// never gets here (gorgonia.org/cu ends the process at start).
func Discover() ([]GPU, error) { return discover() }

// physical is one physical GPU, opened: it serves any number of logical
// devices, each with its own streams.
type physical interface {
	Device(place graph.Device) (backend.Device, error)
	Close() error
}

// Set opens and holds the backends of the devices a run uses: the host
// backend for cpu, and for each gpu:K the GPU the map sends it to. Each
// physical GPU is opened once, however many logical GPUs run on it. Its
// methods are safe for concurrent use.
type Set struct {
	m    Map
	open func(ordinal int) (physical, error)

	mu   sync.Mutex
	phys map[int]physical
	devs map[graph.Device]backend.Device
}

// Open returns a Set that runs gpu:K on the physical GPU m maps it to (an
// empty m: GPU K). GPUs are opened on first use; Close releases them.
func Open(m Map) *Set { return OpenWith(m, Options{}) }

// Options configure the GPUs a Set opens.
type Options struct {
	// TF32 says whether f32 matrix products and convolutions use TF32
	// tensor cores (cuda.TF32Off, the default, TF32On or TF32Auto).
	TF32 cuda.TF32
}

// OpenWith returns a Set as Open does, whose GPUs are opened with opts.
func OpenWith(m Map, opts Options) *Set {
	return newSet(m, func(ordinal int) (physical, error) { return openPhysical(ordinal, opts) })
}

func newSet(m Map, open func(int) (physical, error)) *Set {
	return &Set{m: m, open: open, phys: map[int]physical{}, devs: map[graph.Device]backend.Device{}}
}

// Devices returns the backend of device d. It has the signature of
// runtime.Options.Devices.
func (s *Set) Devices(d graph.Device) (backend.Device, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if dev := s.devs[d]; dev != nil {
		return dev, nil
	}
	var dev backend.Device
	switch d.Kind {
	case graph.CPU:
		dev = cpu.New(d)
	case graph.GPU:
		ord, ok := s.m.Physical(d.Index)
		if !ok {
			return nil, fmt.Errorf("%s is not in the device map %s", d, s.m)
		}
		p := s.phys[ord]
		if p == nil {
			var err error
			if p, err = s.open(ord); err != nil {
				return nil, fmt.Errorf("%s (physical GPU %d): %w", d, ord, err)
			}
			s.phys[ord] = p
		}
		var err error
		if dev, err = p.Device(d); err != nil {
			return nil, fmt.Errorf("%s (physical GPU %d): %w", d, ord, err)
		}
	default:
		return nil, fmt.Errorf("no backend for an unplaced device")
	}
	s.devs[d] = dev
	return dev, nil
}

// Close releases every physical GPU the set opened. Buffers and programs
// of its devices must not be used after.
func (s *Set) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for _, ord := range slices.Sorted(maps.Keys(s.phys)) {
		if err := s.phys[ord].Close(); err != nil {
			errs = append(errs, fmt.Errorf("physical GPU %d: %w", ord, err))
		}
	}
	s.phys, s.devs = map[int]physical{}, map[graph.Device]backend.Device{}
	return errors.Join(errs...)
}
