// Package devmap maps the logical GPUs a placed graph names (gpu:0,
// gpu:1, ...) onto the physical GPUs of the machine, finds those GPUs, and
// opens a runtime backend for every device a graph uses: the host backend
// for cpu, the CUDA backend (built with -tags cudart) for each GPU.
//
// A device map is written as --device-map takes it: comma-separated
// entries LOGICAL=PHYSICAL, where LOGICAL is gpu:K or a range gpu:A-B and
// PHYSICAL is a CUDA device ordinal P or a range C-D of the same length.
// gpu:0-3=0 runs four logical GPUs on physical GPU 0 (so that a machine
// with one GPU can run a four-GPU rewrite); gpu:0=0,gpu:1=0 says the same
// for two; gpu:0-3=0-3 is the identity on four GPUs.
package devmap

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"multigpu/graph"
)

// Map sends logical GPU indices to physical GPU ordinals. The zero Map is
// empty; an empty Map means the identity (gpu:K runs on GPU K).
type Map struct {
	logical  []int // sorted
	physical []int // physical[i] is the ordinal logical[i] runs on
}

// Identity returns the map gpu:K=K for K in [0, n).
func Identity(n int) Map {
	var m Map
	for k := range n {
		m.logical = append(m.logical, k)
		m.physical = append(m.physical, k)
	}
	return m
}

// Len returns the number of logical GPUs in m.
func (m Map) Len() int { return len(m.logical) }

// IsEmpty reports whether m maps nothing (and so means the identity).
func (m Map) IsEmpty() bool { return len(m.logical) == 0 }

// Physical returns the ordinal logical GPU k runs on. An empty map sends k
// to k; otherwise a k that m does not name reports false.
func (m Map) Physical(k int) (int, bool) {
	if m.IsEmpty() {
		return k, k >= 0
	}
	i, ok := slices.BinarySearch(m.logical, k)
	if !ok {
		return 0, false
	}
	return m.physical[i], true
}

// Logical returns the logical GPUs m names, ascending.
func (m Map) Logical() []graph.Device {
	out := make([]graph.Device, len(m.logical))
	for i, k := range m.logical {
		out[i] = graph.GPUDevice(k)
	}
	return out
}

// PhysicalOrdinals returns the distinct physical ordinals m uses,
// ascending.
func (m Map) PhysicalOrdinals() []int {
	out := slices.Clone(m.physical)
	slices.Sort(out)
	return slices.Compact(out)
}

// String returns m in canonical --device-map form: runs of consecutive
// logical GPUs on one physical GPU, or on consecutive ones, as ranges
// ("gpu:0-3=0", "gpu:0-1=2-3,gpu:4=0").
func (m Map) String() string {
	var parts []string
	for i := 0; i < len(m.logical); {
		lo, plo := m.logical[i], m.physical[i]
		step := -1 // 0: every logical GPU of the run on plo; 1: on plo, plo+1, ...
		j := i + 1
		for ; j < len(m.logical) && m.logical[j] == lo+(j-i); j++ {
			d := m.physical[j] - plo
			if step < 0 && (d == 0 || d == 1) {
				step = d
			}
			if step < 0 || d != step*(j-i) {
				break
			}
		}
		hi, phi := m.logical[j-1], m.physical[j-1]
		switch {
		case lo == hi:
			parts = append(parts, fmt.Sprintf("gpu:%d=%d", lo, plo))
		case step == 0:
			parts = append(parts, fmt.Sprintf("gpu:%d-%d=%d", lo, hi, plo))
		default:
			parts = append(parts, fmt.Sprintf("gpu:%d-%d=%d-%d", lo, hi, plo, phi))
		}
		i = j
	}
	return strings.Join(parts, ",")
}

// maxIndex bounds logical and physical indices (and so the size of a
// range), as --gpus bounds GPU counts.
const maxIndex = 1 << 16

// Parse reads a --device-map value. Errors quote the entry at fault.
func Parse(s string) (Map, error) {
	var m Map
	if strings.TrimSpace(s) == "" {
		return m, fmt.Errorf("expected a device map such as gpu:0-3=0 (LOGICAL=PHYSICAL, comma-separated), found nothing")
	}
	from := map[int]string{} // logical GPU -> the entry that maps it
	for _, entry := range strings.Split(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			return Map{}, fmt.Errorf("expected LOGICAL=PHYSICAL entries separated by single commas, found an empty entry in %q", s)
		}
		lhs, rhs, ok := strings.Cut(entry, "=")
		if !ok {
			return Map{}, fmt.Errorf("%q: expected LOGICAL=PHYSICAL, such as gpu:0-3=0", entry)
		}
		lo, hi, err := parseRange(strings.TrimSpace(lhs), true)
		if err != nil {
			return Map{}, fmt.Errorf("%q: %v", entry, err)
		}
		plo, phi, err := parseRange(strings.TrimSpace(rhs), false)
		if err != nil {
			return Map{}, fmt.Errorf("%q: %v", entry, err)
		}
		if plo != phi && phi-plo != hi-lo {
			return Map{}, fmt.Errorf("%q: expected one physical GPU or a range of %d (one per logical GPU), found %d", entry, hi-lo+1, phi-plo+1)
		}
		for k := lo; k <= hi; k++ {
			if prev, dup := from[k]; dup {
				return Map{}, fmt.Errorf("%q: gpu:%d is already mapped by %q", entry, k, prev)
			}
			from[k] = entry
			p := plo
			if plo != phi {
				p = plo + (k - lo)
			}
			m.logical = append(m.logical, k)
			m.physical = append(m.physical, p)
		}
	}
	m.sort()
	return m, nil
}

func (m *Map) sort() {
	idx := make([]int, len(m.logical))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return m.logical[a] - m.logical[b] })
	l, p := make([]int, len(idx)), make([]int, len(idx))
	for i, j := range idx {
		l[i], p[i] = m.logical[j], m.physical[j]
	}
	m.logical, m.physical = l, p
}

// parseRange reads K or A-B; logical sides carry the gpu: prefix.
func parseRange(s string, logical bool) (lo, hi int, err error) {
	what := "a physical GPU ordinal P or range C-D (such as 0 or 0-3)"
	if logical {
		what = "a logical GPU gpu:K or range gpu:A-B (such as gpu:0-3)"
		rest, ok := strings.CutPrefix(s, "gpu:")
		if !ok {
			if _, err := strconv.Atoi(strings.Split(s, "-")[0]); err == nil {
				rest = s // a bare index is accepted, as --available accepts it
			} else {
				return 0, 0, fmt.Errorf("expected %s, found %q", what, s)
			}
		}
		s = rest
	}
	a, b, isRange := strings.Cut(s, "-")
	lo, err = parseIndex(a)
	if err != nil {
		return 0, 0, fmt.Errorf("expected %s, found %q", what, s)
	}
	hi = lo
	if isRange {
		if hi, err = parseIndex(b); err != nil {
			return 0, 0, fmt.Errorf("expected %s, found %q", what, s)
		}
		if hi < lo {
			return 0, 0, fmt.Errorf("expected a range A-B with A <= B, found %q", s)
		}
	}
	if hi >= maxIndex {
		return 0, 0, fmt.Errorf("expected GPU indices below %d, found %d", maxIndex, hi)
	}
	return lo, hi, nil
}

func parseIndex(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || s != strconv.Itoa(n) {
		return 0, fmt.Errorf("not an index")
	}
	return n, nil
}

// Check validates m against the physical GPUs found (ordinals 0 to
// count-1) and the logical GPUs a graph uses: every one must be mapped
// onto a GPU that exists. An empty m maps gpu:K to GPU K.
func (m Map) Check(count int, used []graph.Device) error {
	var errs []string
	for i, k := range m.logical {
		if p := m.physical[i]; p >= count {
			errs = append(errs, fmt.Sprintf("gpu:%d is mapped to physical GPU %d, but %s", k, p, found(count)))
		}
	}
	for _, d := range used {
		if d.Kind != graph.GPU {
			continue
		}
		p, ok := m.Physical(d.Index)
		switch {
		case !ok:
			errs = append(errs, fmt.Sprintf("%s is not in the device map %s", d, m))
		case m.IsEmpty() && p >= count:
			hint := ""
			if count > 0 {
				hint = fmt.Sprintf("; run several logical GPUs on one with --device-map, such as gpu:0-%d=0", maxGPU(used))
			}
			errs = append(errs, fmt.Sprintf("%s needs physical GPU %d, but %s%s", d, p, found(count), hint))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

func maxGPU(ds []graph.Device) int {
	hi := 0
	for _, d := range ds {
		if d.Kind == graph.GPU {
			hi = max(hi, d.Index)
		}
	}
	return hi
}

// found describes count physical GPUs: "this machine has 2 GPUs (0, 1)".
func found(count int) string {
	switch count {
	case 0:
		return "this machine has no GPU"
	case 1:
		return "this machine has 1 GPU (0)"
	}
	ids := make([]string, count)
	for i := range ids {
		ids[i] = strconv.Itoa(i)
	}
	return fmt.Sprintf("this machine has %d GPUs (%s)", count, strings.Join(ids, ", "))
}

// Available returns the logical GPUs that can run, given count physical
// GPUs: the mapped logical GPUs whose physical GPU exists, or gpu:0 to
// gpu:count-1 for an empty m. It is the default of --available.
func (m Map) Available(count int) []graph.Device {
	if m.IsEmpty() {
		out := make([]graph.Device, count)
		for k := range out {
			out[k] = graph.GPUDevice(k)
		}
		return out
	}
	var out []graph.Device
	for i, k := range m.logical {
		if m.physical[i] < count {
			out = append(out, graph.GPUDevice(k))
		}
	}
	return out
}
