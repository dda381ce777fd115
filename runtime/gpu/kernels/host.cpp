//go:build cgo

// host.cpp: runs the kernels of kernels.cu on the CPU (see host.go).

// Like NVRTC with --fmad=false: no fused multiply-add (cgo does not allow
// the flag on the command line).
#pragma GCC optimize("fp-contract=off")
#include "host_prelude.h"
#include "kernels.cu"

#include <cstddef>
#include <utility>

#include "host.h"

namespace {

// dec turns an 8-byte word into a kernel parameter of type P, as CUDA
// would read the 8 bytes gorgonia.org/cu copies for it.
template <typename P> struct dec {
	static P get(u64 w) {
		static_assert(sizeof(P) == 8, "kernel parameters are 8 bytes");
		P p;
		std::memcpy(&p, &w, 8);
		return p;
	}
};

template <typename... P, std::size_t... I>
void invoke(void (*f)(P...), const u64 *a, std::index_sequence<I...>) {
	f(dec<P>::get(a[I])...);
}

// call runs kernel f once per emulated thread of the grid.
template <typename... P>
int call(void (*f)(P...), const u64 *a, int n, unsigned grid, unsigned block) {
	if (n != (int)sizeof...(P)) return (int)sizeof...(P) + 1;
	gridDim = dim3{grid, 1, 1};
	blockDim = dim3{block, 1, 1};
	for (unsigned g = 0; g < grid; g++) {
		for (unsigned t = 0; t < block; t++) {
			blockIdx = dim3{g, 0, 0};
			threadIdx = dim3{t, 0, 0};
			invoke(f, a, std::index_sequence_for<P...>{});
		}
	}
	return 0;
}

struct entry {
	const char *name;
	int (*run)(const u64 *, int, unsigned, unsigned);
};

#define ENTRY(name) {#name, [](const u64 *a, int n, unsigned g, unsigned b) { return call(name, a, n, g, b); }},
const entry table[] = {KERNELS(ENTRY)};

} // namespace

extern "C" int host_launch(const char *name, const unsigned long long *args, int nargs, unsigned grid, unsigned block) {
	for (const entry &e : table) {
		if (std::strcmp(e.name, name) == 0) return e.run(args, nargs, grid, block);
	}
	return -1;
}

extern "C" int host_kernel_count(void) { return (int)(sizeof table / sizeof table[0]); }

extern "C" const char *host_kernel_name(int i) { return table[i].name; }
