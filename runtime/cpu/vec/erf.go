package vec

import "math"

// ErfTable sets dst[i] to erf(x[i]) rounded to float32 from a float64
// evaluation: x[i] times g(|x[i]|), where g(a) = erf(a)/a is its
// polynomial of degree 11 in t = a - c on a's interval of [0, 4) of width
// 1/4 centred on c (erf_gen.py's table, within an ulp of float64 of g), in
// Horner's form with fused multiply-adds (math.FMA); ±1 for |x| >= 4 and
// NaN for NaN. The float64 result is within about 2 ulp of erf(x), and
// rounded to float32 it is float32(math.Erf(float64(x))) for every float32
// x (checked over all 2^32 of them: MULTIGPU_ERF_ALL=1 go test -run
// TestErfTableIsErf). The assembly (8 elements a vector, the 16 entries
// of each coefficient looked up by a permute) and the Go loop give the
// same bits.
func ErfTable(dst, x []float32) {
	n := len(dst)
	x = x[:n]
	if n == 0 {
		return
	}
	if hasAVX512 {
		erfTableAVX512(&dst[0], &x[0], n, &erfTab)
		return
	}
	for i, v := range x {
		dst[i] = erfTable1(v)
	}
}

// erfTable1 is ErfTable of one element.
func erfTable1(v float32) float32 {
	x := float64(v)
	a := math.Abs(x)
	if !(a < 4) {
		if a != a {
			return v
		}
		return float32(math.Copysign(1, x))
	}
	f := math.Floor(a * 4)
	i := int(f)
	t := a - (f*0.25 + 0.125)
	p := erfTab[len(erfTab)-1][i]
	for j := len(erfTab) - 2; j >= 0; j-- {
		p = math.FMA(p, t, erfTab[j][i])
	}
	return float32(x * p)
}
