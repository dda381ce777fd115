// fake_cuda.cpp: the CUDA driver API calls of gorgonia.org/cu and
// runtime/cuda, on the host (see README).
#include <cuda.h>

#include <cstdint>
#include <mutex>
#include <set>
#include <utility>

#include "common.h"
#include "host_prelude.h"
#include "kernels.cu"

namespace {

constexpr int kDevices = 2;

struct Context {
	int device;
	int retained;
};
Context contexts[kDevices] = {{0, 0}, {1, 0}};
thread_local CUcontext current = nullptr;

std::mutex mu;
std::set<void *> device_blocks; // live cuMemAlloc blocks
std::set<void *> host_blocks;   // live cuMemHostAlloc blocks

// dec reads a kernel parameter of type P from what params[i] points to.
template <typename P> P dec(void *p) {
	static_assert(sizeof(P) == 8, "kernel parameters are 8 bytes");
	P v;
	std::memcpy(&v, p, sizeof v);
	return v;
}

template <typename... P, std::size_t... I>
void invoke(void (*f)(P...), void **a, std::index_sequence<I...>) {
	f(dec<P>(a[I])...);
}

template <typename... P>
void run(void (*f)(P...), void **a, unsigned grid, unsigned block) {
	gridDim = dim3{grid, 1, 1};
	blockDim = dim3{block, 1, 1};
	for (unsigned g = 0; g < grid; g++) {
		for (unsigned t = 0; t < block; t++) {
			blockIdx = dim3{g, 0, 0};
			threadIdx = dim3{t, 0, 0};
			invoke(f, a, std::index_sequence_for<P...>{});
		}
	}
}

struct Function {
	const char *name;
	void (*run)(void **, unsigned, unsigned);
};

#define ENTRY(name) {#name, [](void **a, unsigned g, unsigned b) { run(name, a, g, b); }},
Function functions[] = {KERNELS(ENTRY)};

int module_token;

void need_context(const char *call) { fake_check(current != nullptr, "%s without a current context", call); }

bool is_device(CUdeviceptr p, size_t n) {
	// Device pointers may point inside a block; checking the start is
	// enough to catch host pointers passed as device pointers.
	(void)n;
	return p != 0;
}

} // namespace

extern "C" {

CUresult cuInit(unsigned int flags) { return flags == 0 ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE; }

CUresult cuDriverGetVersion(int *v) {
	*v = 11080;
	return CUDA_SUCCESS;
}

CUresult cuDeviceGetCount(int *n) {
	*n = kDevices;
	return CUDA_SUCCESS;
}

CUresult cuDeviceGet(CUdevice *d, int ordinal) {
	if (ordinal < 0 || ordinal >= kDevices) return CUDA_ERROR_INVALID_DEVICE;
	*d = ordinal;
	return CUDA_SUCCESS;
}

CUresult cuDeviceGetName(char *name, int len, CUdevice d) {
	if (d < 0 || d >= kDevices) return CUDA_ERROR_INVALID_DEVICE;
	std::snprintf(name, len, "Fake GPU %d (host emulation)", d);
	return CUDA_SUCCESS;
}

CUresult cuDeviceTotalMem(size_t *bytes, CUdevice d) {
	if (d < 0 || d >= kDevices) return CUDA_ERROR_INVALID_DEVICE;
	*bytes = size_t(8) << 30;
	return CUDA_SUCCESS;
}

CUresult cuDeviceGetAttribute(int *v, CUdevice_attribute a, CUdevice d) {
	if (d < 0 || d >= kDevices) return CUDA_ERROR_INVALID_DEVICE;
	switch (a) {
	case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR: *v = 9; break;
	case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR: *v = 0; break;
	case CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT: *v = 2; break;
	default: *v = 0;
	}
	return CUDA_SUCCESS;
}

CUresult cuDevicePrimaryCtxRetain(CUcontext *c, CUdevice d) {
	if (d < 0 || d >= kDevices) return CUDA_ERROR_INVALID_DEVICE;
	std::lock_guard<std::mutex> l(mu);
	contexts[d].retained++;
	*c = reinterpret_cast<CUcontext>(&contexts[d]);
	return CUDA_SUCCESS;
}

CUresult cuDevicePrimaryCtxRelease(CUdevice d) {
	if (d < 0 || d >= kDevices) return CUDA_ERROR_INVALID_DEVICE;
	std::lock_guard<std::mutex> l(mu);
	fake_check(contexts[d].retained > 0, "primary context of device %d released more often than retained", d);
	contexts[d].retained--;
	return CUDA_SUCCESS;
}

CUresult cuCtxSetCurrent(CUcontext c) {
	current = c;
	return CUDA_SUCCESS;
}

CUresult cuCtxGetCurrent(CUcontext *c) {
	*c = current;
	return CUDA_SUCCESS;
}

CUresult cuCtxSynchronize(void) {
	need_context("cuCtxSynchronize");
	return CUDA_SUCCESS;
}

CUresult cuModuleLoadData(CUmodule *m, const void *image) {
	need_context("cuModuleLoadData");
	fake_check(image != nullptr && std::strlen(static_cast<const char *>(image)) > 0, "cuModuleLoadData of an empty image");
	*m = reinterpret_cast<CUmodule>(&module_token);
	return CUDA_SUCCESS;
}

CUresult cuModuleGetFunction(CUfunction *f, CUmodule m, const char *name) {
	need_context("cuModuleGetFunction");
	fake_check(m == reinterpret_cast<CUmodule>(&module_token), "cuModuleGetFunction on a module not loaded");
	for (Function &fn : functions) {
		if (std::strcmp(fn.name, name) == 0) {
			*f = reinterpret_cast<CUfunction>(&fn);
			return CUDA_SUCCESS;
		}
	}
	return CUDA_ERROR_NOT_FOUND;
}

CUresult cuModuleUnload(CUmodule m) {
	need_context("cuModuleUnload");
	fake_check(m == reinterpret_cast<CUmodule>(&module_token), "cuModuleUnload of a module not loaded");
	return CUDA_SUCCESS;
}

CUresult cuMemAlloc(CUdeviceptr *p, size_t n) {
	need_context("cuMemAlloc");
	if (n == 0) return CUDA_ERROR_INVALID_VALUE;
	void *q = std::malloc(n);
	if (q == nullptr) return CUDA_ERROR_OUT_OF_MEMORY;
	std::memset(q, 0xff, n);
	std::lock_guard<std::mutex> l(mu);
	device_blocks.insert(q);
	*p = reinterpret_cast<CUdeviceptr>(q);
	return CUDA_SUCCESS;
}

CUresult cuMemFree(CUdeviceptr p) {
	need_context("cuMemFree");
	std::lock_guard<std::mutex> l(mu);
	void *q = reinterpret_cast<void *>(p);
	fake_check(device_blocks.erase(q) == 1, "cuMemFree of %p, which cuMemAlloc did not return", q);
	std::free(q);
	return CUDA_SUCCESS;
}

CUresult cuMemHostAlloc(void **p, size_t n, unsigned int flags) {
	need_context("cuMemHostAlloc");
	(void)flags;
	*p = std::malloc(n);
	if (*p == nullptr) return CUDA_ERROR_OUT_OF_MEMORY;
	std::lock_guard<std::mutex> l(mu);
	host_blocks.insert(*p);
	return CUDA_SUCCESS;
}

CUresult cuMemFreeHost(void *p) {
	std::lock_guard<std::mutex> l(mu);
	fake_check(host_blocks.erase(p) == 1, "cuMemFreeHost of %p, which cuMemHostAlloc did not return", p);
	std::free(p);
	return CUDA_SUCCESS;
}

CUresult cuStreamCreate(CUstream *s, unsigned int flags) {
	need_context("cuStreamCreate");
	(void)flags;
	*s = reinterpret_cast<CUstream>(new int(0));
	return CUDA_SUCCESS;
}

CUresult cuStreamDestroy(CUstream s) {
	fake_check(s != nullptr, "cuStreamDestroy of the null stream");
	delete reinterpret_cast<int *>(s);
	return CUDA_SUCCESS;
}

CUresult cuStreamSynchronize(CUstream s) {
	need_context("cuStreamSynchronize");
	(void)s;
	return CUDA_SUCCESS;
}

CUresult cuStreamWaitEvent(CUstream s, CUevent e, unsigned int flags) {
	need_context("cuStreamWaitEvent");
	fake_check(s != nullptr && e != nullptr && flags == 0, "cuStreamWaitEvent(%p, %p, %u)", (void *)s, (void *)e, flags);
	return CUDA_SUCCESS;
}

CUresult cuEventCreate(CUevent *e, unsigned int flags) {
	need_context("cuEventCreate");
	(void)flags;
	*e = reinterpret_cast<CUevent>(new int(0));
	return CUDA_SUCCESS;
}

CUresult cuEventRecord(CUevent e, CUstream s) {
	need_context("cuEventRecord");
	fake_check(e != nullptr && s != nullptr, "cuEventRecord(%p, %p)", (void *)e, (void *)s);
	return CUDA_SUCCESS;
}

CUresult cuEventQuery(CUevent e) {
	fake_check(e != nullptr, "cuEventQuery of a null event");
	return CUDA_SUCCESS;
}

CUresult cuEventDestroy(CUevent e) {
	fake_check(e != nullptr, "cuEventDestroy of a null event");
	delete reinterpret_cast<int *>(e);
	return CUDA_SUCCESS;
}

CUresult cuMemcpyHtoD(CUdeviceptr dst, const void *src, size_t n) {
	need_context("cuMemcpyHtoD");
	fake_check(is_device(dst, n), "cuMemcpyHtoD to a null device pointer");
	std::memcpy(reinterpret_cast<void *>(dst), src, n);
	return CUDA_SUCCESS;
}

CUresult cuMemcpyDtoH(void *dst, CUdeviceptr src, size_t n) {
	need_context("cuMemcpyDtoH");
	fake_check(is_device(src, n), "cuMemcpyDtoH from a null device pointer");
	std::memcpy(dst, reinterpret_cast<void *>(src), n);
	return CUDA_SUCCESS;
}

CUresult cuMemcpyHtoDAsync(CUdeviceptr dst, const void *src, size_t n, CUstream s) {
	fake_check(s != nullptr, "cuMemcpyHtoDAsync on the null stream");
	std::lock_guard<std::mutex> l(mu);
	fake_check(host_blocks.count(const_cast<void *>(src)) == 1, "cuMemcpyHtoDAsync from %p, not pinned memory from cuMemHostAlloc", src);
	return cuMemcpyHtoD(dst, src, n);
}

CUresult cuMemcpyDtoHAsync(void *dst, CUdeviceptr src, size_t n, CUstream s) {
	fake_check(s != nullptr, "cuMemcpyDtoHAsync on the null stream");
	{
		std::lock_guard<std::mutex> l(mu);
		fake_check(host_blocks.count(dst) == 1, "cuMemcpyDtoHAsync to %p, not pinned memory from cuMemHostAlloc", dst);
	}
	return cuMemcpyDtoH(dst, src, n);
}

CUresult cuMemcpyDtoDAsync(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s) {
	need_context("cuMemcpyDtoDAsync");
	fake_check(s != nullptr && is_device(dst, n) && is_device(src, n), "cuMemcpyDtoDAsync");
	std::memmove(reinterpret_cast<void *>(dst), reinterpret_cast<void *>(src), n);
	return CUDA_SUCCESS;
}

CUresult cuMemcpyPeerAsync(CUdeviceptr dst, CUcontext dc, CUdeviceptr src, CUcontext sc, size_t n, CUstream s) {
	need_context("cuMemcpyPeerAsync");
	fake_check(s != nullptr && dc != nullptr && sc != nullptr && dc != sc, "cuMemcpyPeerAsync between contexts %p and %p", (void *)dc, (void *)sc);
	std::memmove(reinterpret_cast<void *>(dst), reinterpret_cast<void *>(src), n);
	return CUDA_SUCCESS;
}

CUresult cuLaunchKernel(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx, unsigned int by,
		unsigned int bz, unsigned int shared, CUstream s, void **params, void **extra) {
	need_context("cuLaunchKernel");
	fake_check(gx >= 1 && gx <= 65535 * 1024 && gy == 1 && gz == 1 && bx >= 1 && bx <= 1024 && by == 1 && bz == 1,
			"cuLaunchKernel with grid %ux%ux%u, block %ux%ux%u", gx, gy, gz, bx, by, bz);
	fake_check(shared == 0 && s != nullptr && params != nullptr && extra == nullptr, "cuLaunchKernel arguments");
	Function *fn = reinterpret_cast<Function *>(f);
	fn->run(params, gx, bx);
	return CUDA_SUCCESS;
}

} // extern "C"
