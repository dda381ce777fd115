// Package vec holds the CPU backend's vector loops over float32: AVX-512
// assembly where the processor has it, Go elsewhere and for the tails.
// Each gives exactly the results of the scalar definition in its comment
// (the AXPY of Axpy fuses its multiply-add in the vector part; an element
// is in the vector part or the tail by its position alone, so a result
// does not depend on what else is computed with it).
package vec

import "math"

// Fast reports whether the assembly loops run on this processor: AVX-512F
// with FMA, and the OS saving its registers.
func Fast() bool { return hasAVX512 }

// AVX2 reports whether the processor and the OS support AVX2 and FMA (for
// the gemm's AVX2 micro-kernel; this package's loops are AVX-512 or Go).
func AVX2() bool { return hasAVX2 }

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

// Epi is what WindowSum does to each result after its last tap, in this
// order: add Bias (when HasBias; a rounded sum), relu (x if x > 0 or NaN,
// else +0), the IR's maximum with Lo (Max: x if x >= Lo or x is NaN,
// else Lo), its minimum with Hi (Min: x if x <= Hi or x is NaN, else Hi).
type Epi struct {
	HasBias, Relu, Max, Min bool
	Bias, Lo, Hi            float32
}

// winEpi is an Epi as windowSumAVX512 reads it: flags at 0 (2 bias, 4
// relu, 8 max, 16 min), bias at 8, lo at 12, hi at 16.
type winEpi struct {
	flags        int
	bias, lo, hi float32
}

// asm returns e as the assembly reads it.
func (e Epi) asm() winEpi {
	we := winEpi{bias: e.Bias, lo: e.Lo, hi: e.Hi}
	if e.HasBias {
		we.flags |= 2
	}
	if e.Relu {
		we.flags |= 4
	}
	if e.Max {
		we.flags |= 8
	}
	if e.Min {
		we.flags |= 16
	}
	return we
}

// checkWindow panics unless every src[offs[t]+q], q < n, is in range.
func checkWindow(n int, src []float32, offs []int) {
	for _, o := range offs {
		if o < 0 || n > 0 && o+n > len(src) {
			panic("vec: window outside its source")
		}
	}
}

// WindowSum sets dst[q], for q < len(dst), to the sum over taps t in
// order of w[t]*src[offs[t]+q], from +0, then applies e: with AVX-512 one
// chain of fused multiply-adds per element (every element, under a mask
// at the end), elsewhere a rounded product and a rounded sum per tap.
func WindowSum(dst, src []float32, offs []int, w []float32, e Epi) {
	n := len(dst)
	w = w[:len(offs)]
	checkWindow(n, src, offs)
	if n == 0 {
		return
	}
	slow := !hasAVX512 || len(offs) == 0 || e.Max && e.Lo != e.Lo || e.Min && e.Hi != e.Hi
	if !slow {
		we := e.asm()
		windowSumAVX512(&dst[0], &src[0], n, &offs[0], &w[0], len(offs), &we)
		return
	}
	if hasAVX512 && len(offs) > 0 {
		windowSumAVX512(&dst[0], &src[0], n, &offs[0], &w[0], len(offs), &winEpi{})
	} else {
		for q := range dst {
			var acc float32
			for t, o := range offs {
				acc += float32(w[t] * src[o+q])
			}
			dst[q] = acc
		}
	}
	epilogue(dst, e)
}

// epilogue applies e to dst with the separate loops.
func epilogue(dst []float32, e Epi) {
	if e.HasBias {
		AddScalar(dst, dst, e.Bias)
	}
	if e.Relu {
		Relu(dst, dst)
	}
	if e.Max {
		MaxScalar(dst, dst, e.Lo)
	}
	if e.Min {
		MinScalar(dst, dst, e.Hi)
	}
}

// WindowMax sets dst[q], for q < len(dst), to the IR's maximum over taps
// t in order, from -Inf, of src[offs[t]+q]: acc if acc >= v or acc is
// NaN, else v.
func WindowMax(dst, src []float32, offs []int) {
	n := len(dst)
	checkWindow(n, src, offs)
	if n == 0 {
		return
	}
	if hasAVX512 && len(offs) > 0 {
		windowMaxAVX512(&dst[0], &src[0], n, &offs[0], len(offs))
		return
	}
	for q := range dst {
		acc := float32(math.Inf(-1))
		for _, o := range offs {
			if v := src[o+q]; !(acc >= v || acc != acc) {
				acc = v
			}
		}
		dst[q] = acc
	}
}

// Every2 sets dst[i] = src[2*i] for i < len(dst) (src holds at least
// 2*len(dst)-1 elements).
func Every2(dst, src []float32) {
	n := len(dst)
	if n == 0 {
		return
	}
	_ = src[2*n-2]
	if hasAVX512 {
		every2AVX512(&dst[0], &src[0], n)
		return
	}
	for i := range dst {
		dst[i] = src[2*i]
	}
}

// Exp sets dst[i] = e^x[i] rounded to float32 from a float64 evaluation:
// with AVX-512 a degree-13 series after reducing by ln 2 (within about
// an ulp of float64, so float32(math.Exp(float64(x))) but for results a
// hair from halfway between two float32s), elsewhere math.Exp.
func Exp(dst, x []float32) {
	n := len(dst)
	x = x[:n]
	if n == 0 {
		return
	}
	if hasAVX512 {
		expAVX512(&dst[0], &x[0], n)
		return
	}
	for i, v := range x {
		dst[i] = float32(math.Exp(float64(v)))
	}
}

// Erf sets dst[i] = float32(math.Erf(float64(x[i]))): with AVX-512 Go's
// algorithm in float64, vectorized (its exps by Exp's series, so a result
// a hair from halfway between two float32s may round the other way),
// elsewhere math.Erf.
func Erf(dst, x []float32) {
	n := len(dst)
	x = x[:n]
	if n == 0 {
		return
	}
	if hasAVX512 {
		erfAVX512(&dst[0], &x[0], n)
		return
	}
	for i, v := range x {
		dst[i] = float32(math.Erf(float64(v)))
	}
}
