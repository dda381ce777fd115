package devmap

import (
	"errors"
	"flag"
	"fmt"
	"testing"

	"multigpu/graph"
	"multigpu/runtime/backend"
	"multigpu/runtime/cpu"
)

var _ = flag.Bool("update", false, "rewrite golden files (none in this package)")

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		phys     map[int]int
	}{
		{"gpu:0-3=0", "gpu:0-3=0", map[int]int{0: 0, 1: 0, 2: 0, 3: 0}},
		{"gpu:0=0,gpu:1=0", "gpu:0-1=0", map[int]int{0: 0, 1: 0}},
		{"gpu:0-3=0-3", "gpu:0-3=0-3", map[int]int{0: 0, 1: 1, 2: 2, 3: 3}},
		{" gpu:2=1 , gpu:0=0 ", "gpu:0=0,gpu:2=1", map[int]int{0: 0, 2: 1}},
		{"0-1=1", "gpu:0-1=1", map[int]int{0: 1, 1: 1}},
		{"gpu:0-1=0,gpu:2-3=1", "gpu:0-1=0,gpu:2-3=1", map[int]int{0: 0, 1: 0, 2: 1, 3: 1}},
		{"gpu:0-2=2-4,gpu:3=0", "gpu:0-2=2-4,gpu:3=0", map[int]int{0: 2, 1: 3, 2: 4, 3: 0}},
		{"gpu:0=1,gpu:1=0", "gpu:0=1,gpu:1=0", map[int]int{0: 1, 1: 0}},
		{"gpu:5=5", "gpu:5=5", map[int]int{5: 5}},
	} {
		m, err := Parse(tc.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		if got := m.String(); got != tc.want {
			t.Errorf("Parse(%q).String() = %q, want %q", tc.in, got, tc.want)
		}
		if m.Len() != len(tc.phys) {
			t.Errorf("Parse(%q).Len() = %d, want %d", tc.in, m.Len(), len(tc.phys))
		}
		for k, p := range tc.phys {
			if got, ok := m.Physical(k); !ok || got != p {
				t.Errorf("Parse(%q).Physical(%d) = %d, %v; want %d", tc.in, k, got, ok, p)
			}
		}
		if _, ok := m.Physical(99); ok {
			t.Errorf("Parse(%q).Physical(99) reports a mapping", tc.in)
		}
		back, err := Parse(m.String())
		if err != nil || back.String() != m.String() {
			t.Errorf("Parse(%q) does not round-trip: %q, %v", m.String(), back.String(), err)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "expected a device map such as gpu:0-3=0 (LOGICAL=PHYSICAL, comma-separated), found nothing"},
		{"gpu:0", `"gpu:0": expected LOGICAL=PHYSICAL, such as gpu:0-3=0`},
		{"gpu:0=0,,gpu:1=0", `expected LOGICAL=PHYSICAL entries separated by single commas, found an empty entry in "gpu:0=0,,gpu:1=0"`},
		{"gpu:3-0=0", `"gpu:3-0=0": expected a range A-B with A <= B, found "3-0"`},
		{"gpu:0-3=0-1", `"gpu:0-3=0-1": expected one physical GPU or a range of 4 (one per logical GPU), found 2`},
		{"gpu:0-3=0,gpu:2=1", `"gpu:2=1": gpu:2 is already mapped by "gpu:0-3=0"`},
		{"cpu=0", `"cpu=0": expected a logical GPU gpu:K or range gpu:A-B (such as gpu:0-3), found "cpu"`},
		{"gpu:-1=0", `"gpu:-1=0": expected a logical GPU gpu:K or range gpu:A-B (such as gpu:0-3), found "-1"`},
		{"gpu:0=gpu:0", `"gpu:0=gpu:0": expected a physical GPU ordinal P or range C-D (such as 0 or 0-3), found "gpu:0"`},
		{"gpu:0=x", `"gpu:0=x": expected a physical GPU ordinal P or range C-D (such as 0 or 0-3), found "x"`},
		{"gpu:01=0", `"gpu:01=0": expected a logical GPU gpu:K or range gpu:A-B (such as gpu:0-3), found "01"`},
		{"gpu:0-99999=0", `"gpu:0-99999=0": expected GPU indices below 65536, found 99999`},
	} {
		_, err := Parse(tc.in)
		if err == nil {
			t.Errorf("Parse(%q) succeeded, want error %q", tc.in, tc.want)
			continue
		}
		if err.Error() != tc.want {
			t.Errorf("Parse(%q) error:\n got %q\nwant %q", tc.in, err, tc.want)
		}
	}
}

func gpus(ks ...int) []graph.Device {
	out := make([]graph.Device, len(ks))
	for i, k := range ks {
		out[i] = graph.GPUDevice(k)
	}
	return out
}

func TestCheck(t *testing.T) {
	four, _ := Parse("gpu:0-3=0")
	two, _ := Parse("gpu:0-1=0-1")
	for _, tc := range []struct {
		m     Map
		count int
		used  []graph.Device
		want  string
	}{
		{four, 1, append(gpus(0, 1, 2, 3), graph.HostCPU), ""},
		{four, 0, gpus(0), "gpu:0 is mapped to physical GPU 0, but this machine has no GPU; gpu:1 is mapped to physical GPU 0, but this machine has no GPU; gpu:2 is mapped to physical GPU 0, but this machine has no GPU; gpu:3 is mapped to physical GPU 0, but this machine has no GPU"},
		{four, 1, gpus(0, 4), "gpu:4 is not in the device map gpu:0-3=0"},
		{two, 1, gpus(0, 1), "gpu:1 is mapped to physical GPU 1, but this machine has 1 GPU (0)"},
		{Map{}, 2, gpus(0, 1), ""},
		{Map{}, 2, gpus(0, 1, 2, 3), "gpu:2 needs physical GPU 2, but this machine has 2 GPUs (0, 1); run several logical GPUs on one with --device-map, such as gpu:0-3=0; gpu:3 needs physical GPU 3, but this machine has 2 GPUs (0, 1); run several logical GPUs on one with --device-map, such as gpu:0-3=0"},
		{Map{}, 0, gpus(0), "gpu:0 needs physical GPU 0, but this machine has no GPU"},
	} {
		err := tc.m.Check(tc.count, tc.used)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tc.want {
			t.Errorf("%q.Check(%d, %v):\n got %q\nwant %q", tc.m, tc.count, tc.used, got, tc.want)
		}
	}
}

func TestAvailable(t *testing.T) {
	m, _ := Parse("gpu:0-1=0,gpu:2-3=1")
	for _, tc := range []struct {
		m     Map
		count int
		want  string
	}{
		{m, 2, "[gpu:0 gpu:1 gpu:2 gpu:3]"},
		{m, 1, "[gpu:0 gpu:1]"},
		{m, 0, "[]"},
		{Map{}, 3, "[gpu:0 gpu:1 gpu:2]"},
		{Identity(2), 2, "[gpu:0 gpu:1]"},
	} {
		if got := fmt.Sprint(tc.m.Available(tc.count)); got != tc.want {
			t.Errorf("%q.Available(%d) = %s, want %s", tc.m, tc.count, got, tc.want)
		}
	}
	if got := fmt.Sprint(m.Logical(), m.PhysicalOrdinals()); got != "[gpu:0 gpu:1 gpu:2 gpu:3] [0 1]" {
		t.Errorf("Logical, PhysicalOrdinals = %s", got)
	}
	if got := Identity(3).String(); got != "gpu:0-2=0-2" {
		t.Errorf("Identity(3) = %s", got)
	}
}

// fakeGPU stands in for a physical GPU: its logical devices are host
// backends.
type fakeGPU struct {
	ord    int
	served []graph.Device
	closed int
}

func (f *fakeGPU) Device(place graph.Device) (backend.Device, error) {
	f.served = append(f.served, place)
	return cpu.New(place), nil
}

func (f *fakeGPU) Close() error { f.closed++; return nil }

func TestSet(t *testing.T) {
	m, _ := Parse("gpu:0-3=0,gpu:4=1")
	opened := map[int]*fakeGPU{}
	s := newSet(m, func(ord int) (physical, error) {
		if ord == 1 {
			return nil, errors.New("out of order")
		}
		f := &fakeGPU{ord: ord}
		opened[ord] = f
		return f, nil
	})
	for _, d := range append(gpus(0, 1, 2, 3, 0), graph.HostCPU) {
		dev, err := s.Devices(d)
		if err != nil {
			t.Fatalf("Devices(%s): %v", d, err)
		}
		if dev.Place() != d {
			t.Errorf("Devices(%s).Place() = %s", d, dev.Place())
		}
	}
	if len(opened) != 1 || fmt.Sprint(opened[0].served) != "[gpu:0 gpu:1 gpu:2 gpu:3]" {
		t.Errorf("physical GPU 0 served %v (opened %d GPUs); want gpu:0 to gpu:3, each once", opened[0].served, len(opened))
	}
	if _, err := s.Devices(graph.GPUDevice(4)); err == nil || err.Error() != "gpu:4 (physical GPU 1): out of order" {
		t.Errorf("Devices(gpu:4) error = %v", err)
	}
	if _, err := s.Devices(graph.GPUDevice(5)); err == nil || err.Error() != "gpu:5 is not in the device map gpu:0-3=0,gpu:4=1" {
		t.Errorf("Devices(gpu:5) error = %v", err)
	}
	if err := s.Close(); err != nil || opened[0].closed != 1 {
		t.Errorf("Close: %v, closed %d times", err, opened[0].closed)
	}
}

func TestGPUString(t *testing.T) {
	g := GPU{Ordinal: 1, Name: "NVIDIA H100 80GB HBM3", Memory: 85 << 30, Major: 9, Minor: 0}
	if got := g.String(); got != "1: NVIDIA H100 80GB HBM3 (sm_90, 85.0 GiB)" {
		t.Errorf("String() = %q", got)
	}
}
