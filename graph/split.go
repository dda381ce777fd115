package graph

import "fmt"

// SplitPolicy is the rule that divides a batch among replicas.
type SplitPolicy string

// The split policies.
const (
	// Balanced gives parts that differ by at most one, larger parts first
	// (10 over 4: 3,3,2,2).
	Balanced SplitPolicy = "balanced"
	// Remainder is Keras's rule: step B/N, the last part takes the rest
	// (10 over 4: 2,2,2,4).
	Remainder SplitPolicy = "remainder"
)

// ParseSplitPolicy returns the policy named s.
func ParseSplitPolicy(s string) (SplitPolicy, error) {
	switch SplitPolicy(s) {
	case Balanced, Remainder:
		return SplitPolicy(s), nil
	}
	return "", fmt.Errorf("expected a split policy (balanced or remainder), found %q", s)
}

// Replicas returns how many replicas run a batch of b over n devices:
// min(b, n), so that no replica is empty.
func Replicas(b int64, n int) int {
	if b < int64(n) {
		return int(b)
	}
	return n
}

// SplitBounds returns the [start, end) of part p when a batch of b is split
// into parts parts by policy. It panics unless 0 <= p < parts <= b.
func SplitBounds(b int64, parts, p int, policy SplitPolicy) (start, end int64) {
	if parts <= 0 || p < 0 || p >= parts || int64(parts) > b {
		panic(fmt.Sprintf("graph.SplitBounds(%d, %d, %d): need 0 <= part < parts <= batch", b, parts, p))
	}
	n := int64(parts)
	i := int64(p)
	if policy == Remainder {
		step := b / n
		start = i * step
		end = start + step
		if p == parts-1 {
			end = b
		}
		return start, end
	}
	q, r := b/n, b%n
	start = i*q + min(i, r)
	end = start + q
	if i < r {
		end++
	}
	return start, end
}
