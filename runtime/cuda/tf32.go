package cuda

import "fmt"

// TF32 says whether cuBLAS may compute f32 matrix products (and so the
// backend's convolutions, which are products after im2col) on TF32 tensor
// cores: each input rounded to TF32's 10-bit mantissa, the products
// summed in f32. This file is built without the cudart tag too, so that
// the command line parses --tf32 in every build.
type TF32 int

// The TF32 modes of --tf32.
const (
	// TF32Off keeps f32 products in f32 (the default): --check's f32
	// tolerance holds.
	TF32Off TF32 = iota
	// TF32On asks cuBLAS for TF32 tensor-core math
	// (CUBLAS_TF32_TENSOR_OP_MATH) on every GPU; GPUs older than
	// Ampere have no TF32 and compute in f32.
	TF32On
	// TF32Auto is TF32On on GPUs of compute capability 8.0 (Ampere) and
	// up, TF32Off on older ones.
	TF32Auto
)

// ParseTF32 parses "off", "on" or "auto".
func ParseTF32(s string) (TF32, error) {
	switch s {
	case "off":
		return TF32Off, nil
	case "on":
		return TF32On, nil
	case "auto":
		return TF32Auto, nil
	}
	return TF32Off, fmt.Errorf("expected off, on or auto, found %q", s)
}

// String returns "off", "on" or "auto".
func (m TF32) String() string {
	switch m {
	case TF32On:
		return "on"
	case TF32Auto:
		return "auto"
	}
	return "off"
}

// Enabled reports whether m turns TF32 on for a GPU of compute capability
// major.minor.
func (m TF32) Enabled(major, minor int) bool {
	switch m {
	case TF32On:
		return true
	case TF32Auto:
		return major >= 8
	}
	return false
}

// The tolerance of an f32 result computed with TF32 against the same
// result computed in f32 (the CPU backend, or the GPU with TF32 off): an
// element agrees when it is within TF32Rel of its own magnitude plus
// TF32Scale of the largest magnitude in the tensor. Rounding both inputs
// of a product to 11 significant bits changes the product by up to 2^-10
// relative (about 1e-3; truncating instead of rounding, up to 2^-9), so a
// sum of products moves by up to that share of the sum of the products'
// magnitudes, which cancellation can make much larger than the sum
// itself: hence the term in the tensor's largest magnitude.
const (
	TF32Rel   = 1e-2
	TF32Scale = 2e-3
)
