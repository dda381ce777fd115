// Package kernels holds the CUDA C source of the GPU backend's kernels
// (kernels.cu, compiled at start by runtime/cuda through NVRTC) and a host
// emulation that compiles the same source with the C++ compiler and runs
// its kernels on the CPU, so that tests check the kernels without a GPU.
package kernels

import (
	_ "embed"
	"regexp"
)

//go:embed kernels.cu
var source string

// Source returns the CUDA C source of the kernels.
func Source() string { return source }

// Names returns the name of every kernel in Source, in order of
// definition.
func Names() []string {
	var names []string
	for _, m := range kernelDecl.FindAllStringSubmatch(source, -1) {
		names = append(names, m[1])
	}
	return names
}

var kernelDecl = regexp.MustCompile(`(?m)^extern "C" __global__ void (\w+)\(`)
