// Package cuda runs the GPU backend (package runtime/gpu) on NVIDIA GPUs
// through gorgonia.org/cu: one primary context per physical GPU, the
// kernels of package runtime/gpu/kernels compiled for it at start with
// NVRTC, cuBLAS for matrix products, and for every logical device a stream
// of its own with its own cuBLAS handle and pinned host buffers for
// transfers.
//
// Everything but this file is built only with -tags cudart (not cuda:
// under that tag gorgonia switches itself into its own CUDA mode). A
// binary built with the tag needs the CUDA driver to start, because
// gorgonia.org/cu initialises the driver when the program starts and ends
// the process when there is none; tests included. On a machine with a GPU,
// go test -tags cudart ./runtime/cuda/... runs the GPU checks. Without
// one, CI runs the test binary against stand-ins for libcuda, libcublas
// and libnvrtc that run the kernels on the host (testdata/fakecuda).
package cuda
