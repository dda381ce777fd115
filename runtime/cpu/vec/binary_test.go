package vec

import (
	"math"
	"math/rand/v2"
	"testing"
)

// Binary gives the scalar operation's bits for every op and stride, at
// lengths around the vector widths, on special values, and in place.
func TestBinaryMatchesScalar(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	specials := []float32{0, float32(math.Copysign(0, -1)), float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)),
		1e-40, -1e-40, 3e38, -3e38, 1, -1}
	vals := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			if r.IntN(4) == 0 {
				v[i] = specials[r.IntN(len(specials))]
			} else {
				v[i] = float32(r.NormFloat64())
			}
		}
		return v
	}
	ref := func(op int, x, y float32) float32 {
		switch op {
		case OpAdd:
			return x + y
		case OpSub:
			return x - y
		case OpMul:
			return x * y
		}
		return x / y
	}
	for op := OpAdd; op <= OpDiv; op++ {
		for _, st := range [][2]int{{1, 1}, {1, 0}, {0, 1}, {0, 0}} {
			for _, n := range []int{0, 1, 5, 15, 16, 17, 31, 32, 33, 47, 48, 64, 70} {
				a, b := vals(max(n, 1)), vals(max(n, 1))
				for _, y := range specials[:3] {
					if st[1] == 0 {
						b[0] = y
					}
					dst := make([]float32, n)
					if !Binary(op, dst, a, b, st[0], st[1]) {
						t.Fatalf("op %d strides %v: not done", op, st)
					}
					for i := range dst {
						if want := ref(op, a[i*st[0]], b[i*st[1]]); !same(dst[i], want) {
							t.Fatalf("op %d strides %v n %d: element %d = %g, want %g", op, st, n, i, dst[i], want)
						}
					}
					if st[0] == 1 && n > 0 {
						in := append([]float32(nil), a[:n]...)
						Binary(op, in, in, b, 1, st[1])
						for i := range in {
							if !same(in[i], dst[i]) {
								t.Fatalf("op %d strides %v n %d in place: element %d = %g, want %g", op, st, n, i, in[i], dst[i])
							}
						}
					}
				}
			}
		}
	}
	if Binary(7, nil, nil, nil, 1, 1) || Binary(OpAdd, nil, nil, nil, 2, 1) {
		t.Error("Binary accepted an unknown op or stride")
	}
}
