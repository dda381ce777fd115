package host

// Strides returns the row-major strides of shape.
func Strides(shape []int) []int {
	st := make([]int, len(shape))
	s := 1
	for i := len(shape) - 1; i >= 0; i-- {
		st[i] = s
		s *= shape[i]
	}
	return st
}

// BroadcastStrides returns, for an operand of shape in broadcast to out,
// the operand's stride along every axis of out (0 where it repeats).
func BroadcastStrides(in, out []int) []int {
	st := Strides(in)
	bs := make([]int, len(out))
	off := len(out) - len(in)
	for i := range out {
		j := i - off
		if j >= 0 && in[j] == out[i] {
			bs[i] = st[j]
		}
	}
	return bs
}

// Collapse merges adjacent axes that every operand walks contiguously, so
// that inner loops run long. shape is the result's; each of strs is one
// operand's strides along it.
func Collapse(shape []int, strs ...[]int) ([]int, [][]int) {
	outShape := []int{}
	outStr := make([][]int, len(strs))
	for i := 0; i < len(shape); i++ {
		if shape[i] == 1 {
			continue
		}
		k := len(outShape) - 1
		merge := k >= 0
		for s := range strs {
			if merge && outStr[s][k] != strs[s][i]*shape[i] {
				merge = false
			}
		}
		if merge {
			outShape[k] *= shape[i]
			for s := range strs {
				outStr[s][k] = strs[s][i]
			}
			continue
		}
		outShape = append(outShape, shape[i])
		for s := range strs {
			outStr[s] = append(outStr[s], strs[s][i])
		}
	}
	if len(outShape) == 0 {
		outShape = []int{1}
		for s := range strs {
			outStr[s] = []int{0}
		}
	}
	return outShape, outStr
}
