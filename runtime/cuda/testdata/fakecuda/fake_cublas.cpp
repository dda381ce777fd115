// fake_cublas.cpp: cuBLAS's handle and strided batched gemm, on the host
// (see README). Arguments are checked as cuBLAS checks them. In TF32 math
// mode (CUBLAS_TF32_TENSOR_OP_MATH) the inputs of an f32 product are
// rounded to TF32, as tensor cores take them, so that the tolerance the
// backend states for TF32 is tested.
#include <cublas_v2.h>

#include <cstdint>

#include "common.h"

namespace {

struct Handle {
	cudaStream_t stream;
	cublasMath_t mode;
};

// tf32 rounds x to TF32: 10 explicit mantissa bits (of f32's 23), to
// nearest with ties away from zero (PTX's cvt.rna.tf32.f32). NaN and
// infinities pass unchanged.
float tf32(float x) {
	std::uint32_t u;
	std::memcpy(&u, &x, sizeof u);
	if ((u & 0x7f800000u) != 0x7f800000u) {
		u = (u + 0x1000u) & ~0x1fffu;
	}
	std::memcpy(&x, &u, sizeof x);
	return x;
}

template <typename T> T input(T x, bool) { return x; } // f64 has no TF32
template <> float input(float x, bool tensorOp) { return tensorOp ? tf32(x) : x; }

template <typename T>
cublasStatus_t gemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, const T *alpha,
		const T *a, int lda, long long sa, const T *b, int ldb, long long sb, const T *beta, T *c, int ldc, long long sc,
		int batch) {
	if (h == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
	fake_check(reinterpret_cast<Handle *>(h)->stream != nullptr, "gemm on a handle without a stream (the null stream)");
	const bool transA = ta != CUBLAS_OP_N, transB = tb != CUBLAS_OP_N;
	const bool tensorOp = (reinterpret_cast<Handle *>(h)->mode & CUBLAS_TF32_TENSOR_OP_MATH) == CUBLAS_TF32_TENSOR_OP_MATH;
	const int ar = transA ? k : m, br = transB ? n : k;
	if (m < 0 || n < 0 || k < 0 || batch < 0 || lda < (ar > 1 ? ar : 1) || ldb < (br > 1 ? br : 1) || ldc < (m > 1 ? m : 1))
		return CUBLAS_STATUS_INVALID_VALUE;
	for (int bi = 0; bi < batch; bi++) {
		const T *A = a + bi * sa, *B = b + bi * sb;
		T *C = c + bi * sc;
		for (int j = 0; j < n; j++) {
			for (int i = 0; i < m; i++) {
				T acc = 0;
				for (int l = 0; l < k; l++) {
					const T x = input(transA ? A[l + (long long)i * lda] : A[i + (long long)l * lda], tensorOp);
					const T y = input(transB ? B[j + (long long)l * ldb] : B[l + (long long)j * ldb], tensorOp);
					acc += x * y;
				}
				T &out = C[i + (long long)j * ldc];
				out = *beta == 0 ? *alpha * acc : *alpha * acc + *beta * out;
			}
		}
	}
	return CUBLAS_STATUS_SUCCESS;
}

} // namespace

extern "C" {

cublasStatus_t cublasCreate_v2(cublasHandle_t *h) {
	*h = reinterpret_cast<cublasHandle_t>(new Handle{nullptr, CUBLAS_DEFAULT_MATH});
	return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDestroy_v2(cublasHandle_t h) {
	if (h == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
	delete reinterpret_cast<Handle *>(h);
	return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetStream_v2(cublasHandle_t h, cudaStream_t s) {
	if (h == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
	reinterpret_cast<Handle *>(h)->stream = s;
	return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetMathMode(cublasHandle_t h, cublasMath_t mode) {
	if (h == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
	fake_check(mode == CUBLAS_DEFAULT_MATH || mode == CUBLAS_TF32_TENSOR_OP_MATH, "cublasSetMathMode(%d): the backend sets only CUBLAS_DEFAULT_MATH or CUBLAS_TF32_TENSOR_OP_MATH", int(mode));
	reinterpret_cast<Handle *>(h)->mode = mode;
	return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetMathMode(cublasHandle_t h, cublasMath_t *mode) {
	if (h == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
	*mode = reinterpret_cast<Handle *>(h)->mode;
	return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
		const float *alpha, const float *a, int lda, long long sa, const float *b, int ldb, long long sb,
		const float *beta, float *c, int ldc, long long sc, int batch) {
	return gemm(h, ta, tb, m, n, k, alpha, a, lda, sa, b, ldb, sb, beta, c, ldc, sc, batch);
}

cublasStatus_t cublasDgemmStridedBatched(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
		const double *alpha, const double *a, int lda, long long sa, const double *b, int ldb, long long sb,
		const double *beta, double *c, int ldc, long long sc, int batch) {
	return gemm(h, ta, tb, m, n, k, alpha, a, lda, sa, b, ldb, sb, beta, c, ldc, sc, batch);
}

} // extern "C"
