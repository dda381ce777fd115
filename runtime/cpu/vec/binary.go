package vec

// The operations of Binary.
const (
	OpAdd = iota
	OpSub
	OpMul
	OpDiv
)

// Binary sets dst[i] = a[i*sa] op b[i*sb] for op one of OpAdd, OpSub,
// OpMul, OpDiv (one IEEE float32 operation each, the vector part as the
// scalar one), where sa and sb are 0 (one value for all i) or 1 (one
// value per i). It reports false, doing nothing, for other ops or strides.
func Binary(op int, dst, a, b []float32, sa, sb int) bool {
	n := len(dst)
	if op < OpAdd || op > OpDiv || sa < 0 || sa > 1 || sb < 0 || sb > 1 {
		return false
	}
	if n == 0 {
		return true
	}
	_, _ = a[(n-1)*sa], b[(n-1)*sb]
	if hasAVX512 && sa+sb > 0 {
		arithAVX512(&dst[0], &a[0], &b[0], n, op*4+sa*2+sb)
		return true
	}
	ia, ib := 0, 0
	for i := range dst {
		x, y := a[ia], b[ib]
		switch op {
		case OpAdd:
			dst[i] = x + y
		case OpSub:
			dst[i] = x - y
		case OpMul:
			dst[i] = x * y
		case OpDiv:
			dst[i] = x / y
		}
		ia += sa
		ib += sb
	}
	return true
}
