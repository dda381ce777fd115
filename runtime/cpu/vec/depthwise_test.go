package vec

import (
	"math"
	"math/rand/v2"
	"testing"
)

// Plane.Conv gives, for every result, the bits of WindowSum over the
// taps it sees (+0 outside the image): random geometries (kernels 1 to 5,
// strides, padding, dilation, planes narrower and wider than a vector),
// special values in the image and the filter, and every epilogue.
func TestDepthwiseMatchesWindowSum(t *testing.T) {
	if !Fast() {
		t.Skip("no AVX-512 on this processor: the convolution runs on padded planes instead (NewPlane returns nil)")
	}
	r := rand.New(rand.NewPCG(3, 4))
	nan := float32(math.NaN())
	planes := 0
	for iter := range 400 {
		h, w := 1+r.IntN(40), 1+r.IntN(40)
		kh, kw := 1+r.IntN(5), 1+r.IntN(5)
		sh, sw := 1+r.IntN(3), 1+r.IntN(2)
		dh, dw := 1+r.IntN(2), 1+r.IntN(2)
		pt, pl, pb, pr := r.IntN(3), r.IntN(3), r.IntN(3), r.IntN(3)
		oh := (h+pt+pb-(kh-1)*dh-1)/sh + 1
		ow := (w+pl+pr-(kw-1)*dw-1)/sw + 1
		if oh < 1 || ow < 1 {
			continue
		}
		img, filt := values(h*w, r), values(kh*kw, r)
		if iter%3 != 0 { // mostly finite filters, so that results are not all NaN
			for i := range filt {
				if filt[i] != filt[i] || math.IsInf(float64(filt[i]), 0) {
					filt[i] = 0.5
				}
			}
		}
		e := Epi{HasBias: r.IntN(2) == 0, Relu: r.IntN(2) == 0, Max: r.IntN(2) == 0, Min: r.IntN(2) == 0,
			Bias: float32(r.NormFloat64()), Lo: -1, Hi: 2}
		if iter%7 == 0 {
			e.Lo = nan
		}
		planes++
		d := NewPlane(h, w, kh, kw, sh, sw, pt, pl, dh, dw, oh, ow)
		if d == nil {
			t.Fatalf("NewPlane(%d, %d, ...) = nil with AVX-512", h, w)
		}
		got := make([]float32, oh*ow+1)
		got[oh*ow] = 42 // not written
		d.Conv(got, img, filt, e)
		if got[oh*ow] != 42 {
			t.Fatalf("Plane wrote past its %d results", oh*ow)
		}
		taps := make([]float32, kh*kw)
		offs := make([]int, kh*kw)
		for i := range offs {
			offs[i] = i
		}
		want := make([]float32, 1)
		for y := range oh {
			for x := range ow {
				for i := range kh {
					for j := range kw {
						ih, iw := y*sh-pt+i*dh, x*sw-pl+j*dw
						taps[i*kw+j] = 0
						if ih >= 0 && ih < h && iw >= 0 && iw < w {
							taps[i*kw+j] = img[ih*w+iw]
						}
					}
				}
				WindowSum(want, taps, offs, filt, e)
				if g := got[y*ow+x]; !same(g, want[0]) {
					t.Fatalf("%dx%d image, %dx%d kernel, stride %dx%d, dilation %dx%d, pad %d,%d: result (%d, %d) = %v, want %v",
						h, w, kh, kw, sh, sw, dh, dw, pt, pl, y, x, g, want[0])
				}
			}
		}
	}
	if planes < 200 {
		t.Errorf("only %d of 400 geometries had results", planes)
	}
}

// Plane.Max gives, for every result, the bits of WindowMax over the taps
// inside the image, on random geometries with NaN, infinities and both
// zeros in the image.
func TestPlaneMaxMatchesWindowMax(t *testing.T) {
	if !Fast() {
		t.Skip("no AVX-512 on this processor: pooling runs on padded planes instead (NewPlane returns nil)")
	}
	r := rand.New(rand.NewPCG(5, 6))
	planes := 0
	for range 400 {
		h, w := 1+r.IntN(40), 1+r.IntN(40)
		kh, kw := 1+r.IntN(4), 1+r.IntN(4)
		sh, sw := 1+r.IntN(3), 1+r.IntN(2)
		dh, dw := 1+r.IntN(2), 1+r.IntN(2)
		pt, pl, pb, pr := r.IntN(min(kh, 3)), r.IntN(min(kw, 3)), r.IntN(min(kh, 3)), r.IntN(min(kw, 3))
		oh := (h+pt+pb-(kh-1)*dh-1)/sh + 1
		ow := (w+pl+pr-(kw-1)*dw-1)/sw + 1
		if oh < 1 || ow < 1 {
			continue
		}
		planes++
		img := values(h*w, r)
		d := NewPlane(h, w, kh, kw, sh, sw, pt, pl, dh, dw, oh, ow)
		got := make([]float32, oh*ow+1)
		got[oh*ow] = 42
		d.Max(got, img)
		if got[oh*ow] != 42 {
			t.Fatalf("Max wrote past its %d results", oh*ow)
		}
		var taps []float32
		want := make([]float32, 1)
		for y := range oh {
			for x := range ow {
				taps = taps[:0]
				for i := range kh {
					for j := range kw {
						ih, iw := y*sh-pt+i*dh, x*sw-pl+j*dw
						if ih >= 0 && ih < h && iw >= 0 && iw < w {
							taps = append(taps, img[ih*w+iw])
						}
					}
				}
				offs := make([]int, len(taps))
				for i := range offs {
					offs[i] = i
				}
				want[0] = float32(math.Inf(-1))
				if len(taps) > 0 {
					WindowMax(want, taps, offs)
				}
				if g := got[y*ow+x]; !same(g, want[0]) {
					t.Fatalf("%dx%d image, %dx%d window, stride %dx%d, dilation %dx%d, pad %d,%d: result (%d, %d) = %v, want %v",
						h, w, kh, kw, sh, sw, dh, dw, pt, pl, y, x, g, want[0])
				}
			}
		}
	}
	if planes < 200 {
		t.Errorf("only %d of 400 geometries had results", planes)
	}
}
