package replicate

import "math"

// satAdd is a + b for non-negative counts, saturated at math.MaxInt64
// (--explain's FLOPs and bytes never wrap around).
func satAdd(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// satMul is the product of non-negative counts, saturated at
// math.MaxInt64.
func satMul(xs ...int64) int64 {
	p := int64(1)
	for _, x := range xs {
		if x == 0 {
			return 0
		}
		if p > math.MaxInt64/x {
			p = math.MaxInt64
			continue
		}
		p *= x
	}
	return p
}
