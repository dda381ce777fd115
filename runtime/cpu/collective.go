package cpu

// allreduceKernel combines its operands elementwise with op (sum, max or
// min), left to right: r0 + r1 + ... + r(N-1), each element accumulated
// in operand order, exactly what a sum over the axis of the operands
// stacked computes (reduceKernel starts from -0, and -0 + x == x).
func allreduceKernel[T float](op string) kernelFn {
	return func(ins []any, _ *runState) (any, error) {
		first := ins[0].([]T)
		out := make([]T, len(first))
		copy(out, first)
		for _, in := range ins[1:] {
			accumulateRow(op, out, in.([]T))
		}
		return out, nil
	}
}
