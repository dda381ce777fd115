// Package vec holds the CPU backend's vector loops over float32: AVX-512
// assembly where the processor has it, Go elsewhere and for the tails.
// Each gives exactly the results of the scalar definition in its comment
// (the AXPY of Axpy fuses its multiply-add in the vector part; an element
// is in the vector part or the tail by its position alone, so a result
// does not depend on what else is computed with it).
package vec

// Fast reports whether the assembly loops run on this processor.
func Fast() bool { return hasAVX512 }

// Relu sets dst[i] = x[i] if x[i] > 0 or x[i] is NaN, else +0.
func Relu(dst, x []float32) {
	n := len(dst)
	x = x[:n]
	done := 0
	if hasAVX512 && n >= 16 {
		done = n &^ 15
		reluAVX512(&dst[0], &x[0], done)
	}
	for i := done; i < n; i++ {
		if v := x[i]; v > 0 || v != v {
			dst[i] = v
		} else {
			dst[i] = 0
		}
	}
}

// MaxScalar sets dst[i] = x[i] if x[i] >= y or x[i] is NaN, else y (the
// IR's maximum with a scalar second operand).
func MaxScalar(dst, x []float32, y float32) {
	n := len(dst)
	x = x[:n]
	done := 0
	if hasAVX512 && n >= 16 && y == y {
		done = n &^ 15
		maxScalarAVX512(&dst[0], &x[0], done, y)
	}
	for i := done; i < n; i++ {
		if v := x[i]; v >= y || v != v {
			dst[i] = v
		} else {
			dst[i] = y
		}
	}
}

// MinScalar sets dst[i] = x[i] if x[i] <= y or x[i] is NaN, else y.
func MinScalar(dst, x []float32, y float32) {
	n := len(dst)
	x = x[:n]
	done := 0
	if hasAVX512 && n >= 16 && y == y {
		done = n &^ 15
		minScalarAVX512(&dst[0], &x[0], done, y)
	}
	for i := done; i < n; i++ {
		if v := x[i]; v <= y || v != v {
			dst[i] = v
		} else {
			dst[i] = y
		}
	}
}

// Add sets dst[i] = a[i] + b[i].
func Add(dst, a, b []float32) {
	n := len(dst)
	a, b = a[:n], b[:n]
	done := 0
	if hasAVX512 && n >= 16 {
		done = n &^ 15
		addAVX512(&dst[0], &a[0], &b[0], done)
	}
	for i := done; i < n; i++ {
		dst[i] = a[i] + b[i]
	}
}

// AddScalar sets dst[i] = x[i] + y.
func AddScalar(dst, x []float32, y float32) {
	n := len(dst)
	x = x[:n]
	done := 0
	if hasAVX512 && n >= 16 {
		done = n &^ 15
		addScalarAVX512(&dst[0], &x[0], done, y)
	}
	for i := done; i < n; i++ {
		dst[i] = x[i] + y
	}
}

// Axpy sets dst[i] += a*x[i]: one fused multiply-add per element in the
// vector part (the first len(dst) &^ 15 elements where the assembly runs),
// a rounded product and a rounded sum in the tail.
func Axpy(dst, x []float32, a float32) {
	n := len(dst)
	x = x[:n]
	done := 0
	if hasAVX512 && n >= 16 {
		done = n &^ 15
		axpyAVX512(&dst[0], &x[0], done, a)
	}
	for i := done; i < n; i++ {
		dst[i] += float32(a * x[i])
	}
}
