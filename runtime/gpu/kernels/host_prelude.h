// host_prelude.h: what kernels.cu takes from CUDA, for compiling it with
// g++ as ordinary C++ (host.cpp). Threads run one after another.
#include <cmath>
#include <cstring>
#include <cstdint>

#define __global__
#define __device__
#define __forceinline__ inline

struct dim3 {
	unsigned int x, y, z;
};

// The emulated thread's coordinates: thread-local, since several
// goroutines (logical devices) launch kernels at once.
static thread_local dim3 threadIdx, blockIdx, blockDim, gridDim;

using std::erf;
using std::exp;
using std::fabs;
using std::log;
using std::pow;
using std::sqrt;
using std::tanh;

static inline float __int_as_float(int i) {
	float f;
	std::memcpy(&f, &i, sizeof f);
	return f;
}

static inline double __longlong_as_double(long long i) {
	double d;
	std::memcpy(&d, &i, sizeof d);
	return d;
}
