//go:build !amd64

package vec

const hasAVX512, hasAVX2 = false, false

func reluAVX512(dst, x *float32, n int)                 {}
func maxScalarAVX512(dst, x *float32, n int, y float32) {}
func minScalarAVX512(dst, x *float32, n int, y float32) {}
func addAVX512(dst, a, b *float32, n int)               {}
func addScalarAVX512(dst, x *float32, n int, y float32) {}
func axpyAVX512(dst, x *float32, n int, a float32)      {}

func windowSumAVX512(dst, src *float32, n int, offs *int, w *float32, taps int, e *winEpi) {}
func windowMaxAVX512(dst, src *float32, n int, offs *int, taps int)                        {}

func every2AVX512(dst, src *float32, n int) {}

func expAVX512(dst, x *float32, n int) {}

func erfAVX512(dst, x *float32, n int) {}

func depthwiseAVX512(dst, img *float32, rowOff *int64, tab *dwTap, w *float32, geom *dwGeom, e *winEpi) {
}

func maxpoolAVX512(dst, img *float32, rowOff *int64, tab *dwTap, geom *dwGeom) {}

func erfTableAVX512(dst, x *float32, n int, tab *[12][16]float64) {}

func softmaxRowsAVX512(dst, x *float32, rows, size int) {}

func arithAVX512(dst, a, b *float32, n, code int) {}

func sumRowAVX512(x *float32, n int) float32 { return 0 }
