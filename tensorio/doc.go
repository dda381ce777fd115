// Package tensorio reads and writes tensors as standard files: NumPy .npy
// and .npz, safetensors, and the ONNX TensorProto .pb files of ONNX's test
// data.
//
// The in-memory type is *tensor.Dense from gorgonia.org/tensor with a
// Float32, Float64, Int32, Int64 or Bool backing. A 0-d array (NumPy shape
// (), safetensors shape [], TensorProto without dims) becomes a Dense of
// shape tensor.ScalarShape(), that is Shape{} with Dims() == 0, whose Data()
// returns the element itself rather than a one-element slice; a Dense of
// shape (1) stays a vector. Arrays with a zero-length dimension, such as
// NumPy's shape (0, 3), are refused with an error: gorgonia.org/tensor
// panics when asked to build them.
//
// Files are written little-endian in C order; big-endian and Fortran-order
// .npy files are converted on read. Views and transposed tensors are
// written in their logical order; masks are ignored. Every error from a file names it and
// says what was expected and what was found, and a header that declares
// more data than the file holds is refused before the declared size is
// allocated.
//
// Writers that replace a file do so atomically through AtomicWrite, which
// other packages may use for their own outputs.
package tensorio
