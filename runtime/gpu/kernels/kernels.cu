// kernels.cu: the CUDA C kernels of the GPU backend (runtime/gpu plans the
// launches, runtime/cuda compiles this file with NVRTC at start, and
// host.cpp compiles it with g++ to run the same kernels on the CPU in
// tests).
//
// Rules that keep the three in step:
//  - No #include: NVRTC has no standard headers. Math functions are CUDA's
//    builtins (exp, log, tanh, sqrt, fabs on double).
//  - Every kernel parameter is 8 bytes (a pointer, i64, u64 or double):
//    gorgonia.org/cu's Launch copies 8 bytes per parameter, and the host
//    emulation decodes 8-byte words.
//  - Every kernel is a grid-stride loop over independent work items (no
//    shared memory, no synchronisation), so that any grid computes the same
//    result, and the emulation may run the threads one after another.
//  - Arithmetic follows runtime/cpu exactly: the same operations in the
//    same order (compiled without FMA contraction), transcendental
//    functions evaluated in double and rounded once, accumulation in the
//    element type in row-major order.
//  - Every kernel is declared extern "C" __global__ void NAME( on one line
//    and listed in KERNELS below.

typedef long long i64;
typedef unsigned long long u64;

#define GRID_LOOP(i, n) \
	for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (i64)blockDim.x * gridDim.x)

template <typename T> __device__ __forceinline__ T inf_();
template <> __device__ __forceinline__ float inf_<float>() { return __int_as_float(0x7f800000); }
template <> __device__ __forceinline__ double inf_<double>() { return __longlong_as_double(0x7ff0000000000000LL); }

// negzero_ is -0: the identity of sums (-0 + x == x for every x).
template <typename T> __device__ __forceinline__ T negzero_() { return -(T)0; }

// maximum_ and minimum_ are numpy's: NaN if either is NaN, a when equal.
template <typename T> __device__ __forceinline__ T maximum_(T a, T b) { return (a >= b || a != a) ? a : b; }
template <typename T> __device__ __forceinline__ T minimum_(T a, T b) { return (a <= b || a != a) ? a : b; }

// ---- elementwise ----------------------------------------------------------

// Binary op codes (runtime/gpu: binaryOps).
#define OP_ADD 0
#define OP_SUB 1
#define OP_MUL 2
#define OP_DIV 3
#define OP_MAXIMUM 4
#define OP_MINIMUM 5
#define OP_EQ 6
#define OP_NE 7
#define OP_LT 8
#define OP_LE 9
#define OP_GT 10
#define OP_GE 11
#define OP_POW 12

// binary: out[i] = a[.] op b[.] with numpy broadcasting (comparisons give
// 1 where they hold, else 0; with NaN only ne holds; pow is evaluated in
// double and rounded once). m holds rank, then the (collapsed) result
// shape, then a's and b's strides along it (0 where the operand repeats).
template <typename T>
__device__ void binary_(T *out, const T *a, const T *b, i64 n, const i64 *m, i64 op) {
	const i64 rank = m[0];
	const i64 *shape = m + 1, *as = shape + rank, *bs = as + rank;
	GRID_LOOP(i, n) {
		i64 r = i, oa = 0, ob = 0;
		for (i64 d = rank - 1; d >= 0; d--) {
			const i64 c = r % shape[d];
			r /= shape[d];
			oa += c * as[d];
			ob += c * bs[d];
		}
		const T x = a[oa], y = b[ob];
		T z;
		switch (op) {
		case OP_ADD: z = x + y; break;
		case OP_SUB: z = x - y; break;
		case OP_MUL: z = x * y; break;
		case OP_DIV: z = x / y; break;
		case OP_MAXIMUM: z = maximum_(x, y); break;
		case OP_MINIMUM: z = minimum_(x, y); break;
		case OP_EQ: z = x == y ? (T)1 : (T)0; break;
		case OP_NE: z = x != y ? (T)1 : (T)0; break;
		case OP_LT: z = x < y ? (T)1 : (T)0; break;
		case OP_LE: z = x <= y ? (T)1 : (T)0; break;
		case OP_GT: z = x > y ? (T)1 : (T)0; break;
		case OP_POW: z = (T)pow((double)x, (double)y); break;
		default: z = x >= y ? (T)1 : (T)0; break;
		}
		out[i] = z;
	}
}

extern "C" __global__ void binary_f32(float *out, const float *a, const float *b, i64 n, const i64 *m, i64 op) { binary_(out, a, b, n, m, op); }
extern "C" __global__ void binary_f64(double *out, const double *a, const double *b, i64 n, const i64 *m, i64 op) { binary_(out, a, b, n, m, op); }

// Unary op codes (runtime/gpu: unaryOps).
#define OP_NEG 0
#define OP_ABS 1
#define OP_EXP 2
#define OP_LOG 3
#define OP_SQRT 4
#define OP_RELU 5
#define OP_SIGMOID 6
#define OP_TANH 7
#define OP_LEAKY_RELU 8
#define OP_ERF 9

template <typename T>
__device__ void unary_(T *out, const T *x, i64 n, i64 op, double alpha) {
	const T a = (T)alpha;
	GRID_LOOP(i, n) {
		const T v = x[i];
		T z;
		switch (op) {
		case OP_NEG: z = -v; break;
		case OP_ABS: z = (T)fabs((double)v); break;
		case OP_EXP: z = (T)exp((double)v); break;
		case OP_LOG: z = (T)log((double)v); break;
		case OP_SQRT: z = (T)sqrt((double)v); break;
		case OP_RELU: z = (v > 0 || v != v) ? v : (T)0; break;
		case OP_SIGMOID: z = (T)(1.0 / (1.0 + exp(-(double)v))); break;
		case OP_TANH: z = (T)tanh((double)v); break;
		case OP_ERF: z = (T)erf((double)v); break;
		default: z = v > 0 ? v : a * v; break;
		}
		out[i] = z;
	}
}

extern "C" __global__ void unary_f32(float *out, const float *x, i64 n, i64 op, double alpha) { unary_(out, x, n, op, alpha); }
extern "C" __global__ void unary_f64(double *out, const double *x, i64 n, i64 op, double alpha) { unary_(out, x, n, op, alpha); }

// ---- reductions -------------------------------------------------------------

// Reduction op codes (runtime/gpu: reduceOps).
#define OP_SUM 0
#define OP_MEAN 1
#define OP_MAX 2
#define OP_MIN 3

// reduce: one thread per result element, accumulating its operands in
// row-major order (as runtime/cpu does). m holds the kept axes (count,
// sizes, strides in x) and the reduced axes (count, sizes, strides in x);
// the last reduced axis is walked innermost.
template <typename T>
__device__ void reduce_(T *out, const T *x, i64 outN, const i64 *m, i64 op, i64 count) {
	const i64 kr = m[0];
	const i64 *ks = m + 1, *kst = ks + kr;
	const i64 rr = kst[kr];
	const i64 *rs = kst + kr + 1, *rst = rs + rr;
	const i64 last = rr > 0 ? rs[rr - 1] : 1, lastStr = rr > 0 ? rst[rr - 1] : 0;
	const i64 rows = last > 0 ? count / last : 0;
	GRID_LOOP(o, outN) {
		i64 r = o, base = 0;
		for (i64 d = kr - 1; d >= 0; d--) {
			base += (r % ks[d]) * kst[d];
			r /= ks[d];
		}
		T acc = op == OP_MAX ? -inf_<T>() : op == OP_MIN ? inf_<T>() : negzero_<T>();
		for (i64 q = 0; q < rows; q++) {
			i64 off = base, t = q;
			for (i64 d = rr - 2; d >= 0; d--) {
				off += (t % rs[d]) * rst[d];
				t /= rs[d];
			}
			const T *p = x + off;
			if (op == OP_MAX) {
				for (i64 j = 0; j < last; j++) acc = maximum_(acc, p[j * lastStr]);
			} else if (op == OP_MIN) {
				for (i64 j = 0; j < last; j++) acc = minimum_(acc, p[j * lastStr]);
			} else {
				for (i64 j = 0; j < last; j++) acc += p[j * lastStr];
			}
		}
		if (op == OP_MEAN) acc /= (T)count;
		out[o] = acc;
	}
}

extern "C" __global__ void reduce_f32(float *out, const float *x, i64 outN, const i64 *m, i64 op, i64 count) { reduce_(out, x, outN, m, op, count); }
extern "C" __global__ void reduce_f64(double *out, const double *x, i64 outN, const i64 *m, i64 op, i64 count) { reduce_(out, x, outN, m, op, count); }

// softmax: along the middle axis of x[outer, size, inner], one thread per
// (outer, inner) pair: e = exp(x - max), y = e / sum(e), or, for
// log_softmax, y = (x - max) - log(sum(e)).
template <typename T>
__device__ void softmax_(T *out, const T *x, i64 outer, i64 size, i64 inner, i64 logsm) {
	GRID_LOOP(t, outer * inner) {
		const i64 o = t / inner, i = t % inner;
		const T *px = x + o * size * inner + i;
		T *po = out + o * size * inner + i;
		T mx = -inf_<T>();
		for (i64 k = 0; k < size; k++) mx = maximum_(mx, px[k * inner]);
		T s = negzero_<T>();
		for (i64 k = 0; k < size; k++) {
			const T e = (T)exp((double)(px[k * inner] - mx));
			s += e;
			po[k * inner] = e;
		}
		if (logsm) {
			s = (T)log((double)s);
			for (i64 k = 0; k < size; k++) po[k * inner] = (px[k * inner] - mx) - s;
		} else {
			for (i64 k = 0; k < size; k++) po[k * inner] = po[k * inner] / s;
		}
	}
}

extern "C" __global__ void softmax_f32(float *out, const float *x, i64 outer, i64 size, i64 inner, i64 logsm) { softmax_(out, x, outer, size, inner, logsm); }
extern "C" __global__ void softmax_f64(double *out, const double *x, i64 outer, i64 size, i64 inner, i64 logsm) { softmax_(out, x, outer, size, inner, logsm); }

// ---- moving elements --------------------------------------------------------

// copy: dst[.] = src[.] over a shape, both strided: m holds rank, the
// shape, src's strides and dst's strides (in elements). Transpose, slice
// and concat are copies; W is the element width.
template <typename W>
__device__ void copy_(W *dst, const W *src, i64 n, const i64 *m) {
	const i64 rank = m[0];
	const i64 *shape = m + 1, *ss = shape + rank, *ds = ss + rank;
	GRID_LOOP(i, n) {
		i64 r = i, os = 0, od = 0;
		for (i64 d = rank - 1; d >= 0; d--) {
			const i64 c = r % shape[d];
			r /= shape[d];
			os += c * ss[d];
			od += c * ds[d];
		}
		dst[od] = src[os];
	}
}

extern "C" __global__ void copy_u8(unsigned char *dst, const unsigned char *src, i64 n, const i64 *m) { copy_(dst, src, n, m); }
extern "C" __global__ void copy_u32(unsigned int *dst, const unsigned int *src, i64 n, const i64 *m) { copy_(dst, src, n, m); }
extern "C" __global__ void copy_u64(u64 *dst, const u64 *src, i64 n, const i64 *m) { copy_(dst, src, n, m); }

// fill: dst[i] = bits (the value's bit pattern), for dim and empty products.
template <typename W>
__device__ void fill_(W *dst, i64 n, u64 bits) {
	GRID_LOOP(i, n) { dst[i] = (W)bits; }
}

extern "C" __global__ void fill_u8(unsigned char *dst, i64 n, u64 bits) { fill_(dst, n, bits); }
extern "C" __global__ void fill_u32(unsigned int *dst, i64 n, u64 bits) { fill_(dst, n, bits); }
extern "C" __global__ void fill_u64(u64 *dst, i64 n, u64 bits) { fill_(dst, n, bits); }

// ---- convolution and pooling ------------------------------------------------

// Window geometry in m (runtime/gpu: window.meta).
#define W_C 0
#define W_H 1
#define W_W 2
#define W_KH 3
#define W_KW 4
#define W_SH 5
#define W_SW 6
#define W_PT 7
#define W_PL 8
#define W_DH 9
#define W_DW 10
#define W_OH 11
#define W_OW 12
#define W_CG 13

// im2col: the patches of channels [c0, c0+CG) of nb samples of x[.,C,H,W]
// as cols[b][k][p] (or, kmajor, cols[k][b][p]) with k = (c*KH+kh)*KW+kw
// and p = oh*OW+ow, zero outside the image.
template <typename T>
__device__ void im2col_(T *cols, const T *x, i64 nb, i64 c0, const i64 *m, i64 kmajor) {
	const i64 C = m[W_C], H = m[W_H], W = m[W_W], KH = m[W_KH], KW = m[W_KW];
	const i64 OH = m[W_OH], OW = m[W_OW], CG = m[W_CG];
	GRID_LOOP(t, nb * CG * KH * KW * OH * OW) {
		i64 r = t, b, c, kh, kw;
		const i64 ow = r % OW; r /= OW;
		const i64 oh = r % OH; r /= OH;
		if (kmajor) {
			b = r % nb; r /= nb;
			kw = r % KW; r /= KW;
			kh = r % KH; r /= KH;
			c = r;
		} else {
			kw = r % KW; r /= KW;
			kh = r % KH; r /= KH;
			c = r % CG; r /= CG;
			b = r;
		}
		const i64 ih = oh * m[W_SH] - m[W_PT] + kh * m[W_DH];
		const i64 iw = ow * m[W_SW] - m[W_PL] + kw * m[W_DW];
		T v = 0;
		if (ih >= 0 && ih < H && iw >= 0 && iw < W) v = x[((b * C + c0 + c) * H + ih) * W + iw];
		cols[t] = v;
	}
}

extern "C" __global__ void im2col_f32(float *cols, const float *x, i64 nb, i64 c0, const i64 *m, i64 kmajor) { im2col_(cols, x, nb, c0, m, kmajor); }
extern "C" __global__ void im2col_f64(double *cols, const double *x, i64 nb, i64 c0, const i64 *m, i64 kmajor) { im2col_(cols, x, nb, c0, m, kmajor); }

// col2im: channels [c0, c0+CG) of nb samples of dx[.,C,H,W] from
// cols[b][k][p] (im2col's layout): each element sums the column elements
// taken from it, in order of kh and kw (as runtime/cpu adds them up).
template <typename T>
__device__ void col2im_(T *x, const T *cols, i64 nb, i64 c0, const i64 *m) {
	const i64 C = m[W_C], H = m[W_H], W = m[W_W], KH = m[W_KH], KW = m[W_KW];
	const i64 SH = m[W_SH], SW = m[W_SW], PT = m[W_PT], PL = m[W_PL], DH = m[W_DH], DW = m[W_DW];
	const i64 OH = m[W_OH], OW = m[W_OW], CG = m[W_CG];
	GRID_LOOP(t, nb * CG * H * W) {
		i64 r = t;
		const i64 iw = r % W; r /= W;
		const i64 ih = r % H; r /= H;
		const i64 c = r % CG;
		const i64 b = r / CG;
		T acc = 0;
		for (i64 kh = 0; kh < KH; kh++) {
			const i64 nh = ih + PT - kh * DH;
			if (nh < 0 || nh % SH != 0 || nh / SH >= OH) continue;
			const i64 oh = nh / SH;
			for (i64 kw = 0; kw < KW; kw++) {
				const i64 nw = iw + PL - kw * DW;
				if (nw < 0 || nw % SW != 0 || nw / SW >= OW) continue;
				acc += cols[(((b * CG + c) * KH + kh) * KW + kw) * OH * OW + oh * OW + nw / SW];
			}
		}
		x[((b * C + c0 + c) * H + ih) * W + iw] = acc;
	}
}

extern "C" __global__ void col2im_f32(float *x, const float *cols, i64 nb, i64 c0, const i64 *m) { col2im_(x, cols, nb, c0, m); }
extern "C" __global__ void col2im_f64(double *x, const double *cols, i64 nb, i64 c0, const i64 *m) { col2im_(x, cols, nb, c0, m); }

// bias: out[n][c][p] += b[c] for out of n elements, o channels of hw.
template <typename T>
__device__ void bias_(T *out, const T *b, i64 n, i64 o, i64 hw) {
	GRID_LOOP(i, n) { out[i] += b[(i / hw) % o]; }
}

extern "C" __global__ void bias_f32(float *out, const float *b, i64 n, i64 o, i64 hw) { bias_(out, b, n, o, hw); }
extern "C" __global__ void bias_f64(double *out, const double *b, i64 n, i64 o, i64 hw) { bias_(out, b, n, o, hw); }

// pool: max or average over each window of x[N*C, H, W] (padded positions
// take no part: an average divides by the positions inside the image).
template <typename T>
__device__ void pool_(T *out, const T *x, i64 n, const i64 *m, i64 isMax) {
	const i64 H = m[W_H], W = m[W_W], KH = m[W_KH], KW = m[W_KW];
	const i64 OH = m[W_OH], OW = m[W_OW];
	GRID_LOOP(t, n) {
		const i64 ow = t % OW, oh = (t / OW) % OH, p = t / (OW * OH);
		const T *img = x + p * H * W;
		const i64 h0 = oh * m[W_SH] - m[W_PT], w0 = ow * m[W_SW] - m[W_PL];
		const i64 hlo = h0 > 0 ? h0 : 0, hhi = h0 + KH < H ? h0 + KH : H;
		const i64 wlo = w0 > 0 ? w0 : 0, whi = w0 + KW < W ? w0 + KW : W;
		T acc;
		if (isMax) {
			acc = -inf_<T>();
			for (i64 h = hlo; h < hhi; h++)
				for (i64 w = wlo; w < whi; w++) acc = maximum_(acc, img[h * W + w]);
		} else {
			acc = negzero_<T>();
			for (i64 h = hlo; h < hhi; h++)
				for (i64 w = wlo; w < whi; w++) acc += img[h * W + w];
			acc /= (T)((hhi - hlo) * (whi - wlo));
		}
		out[t] = acc;
	}
}

extern "C" __global__ void pool_f32(float *out, const float *x, i64 n, const i64 *m, i64 isMax) { pool_(out, x, n, m, isMax); }
extern "C" __global__ void pool_f64(double *out, const double *x, i64 n, const i64 *m, i64 isMax) { pool_(out, x, n, m, isMax); }

// poolgrad: dx[N*C, H, W] from dy[N*C, OH, OW] for max pooling (dy goes to
// the element maxpool2d kept: the first maximum of the window, a NaN once
// met) or average pooling (dy shared evenly by the window's positions
// inside the image). Each element sums what it gets from the windows that
// hold it, in window order (as runtime/cpu adds them up).
template <typename T>
__device__ void poolgrad_(T *dx, const T *x, const T *dy, i64 n, const i64 *m, i64 isMax) {
	const i64 H = m[W_H], W = m[W_W], KH = m[W_KH], KW = m[W_KW];
	const i64 SH = m[W_SH], SW = m[W_SW], PT = m[W_PT], PL = m[W_PL];
	const i64 OH = m[W_OH], OW = m[W_OW];
	GRID_LOOP(t, n) {
		const i64 iw = t % W, ih = (t / W) % H, p = t / (W * H);
		const T *g = dy + p * OH * OW;
		const i64 lh = ih + PT - KH + 1, lw = iw + PL - KW + 1;
		const i64 ohlo = lh <= 0 ? 0 : (lh + SH - 1) / SH, owlo = lw <= 0 ? 0 : (lw + SW - 1) / SW;
		const i64 ohhi = (ih + PT) / SH < OH - 1 ? (ih + PT) / SH : OH - 1;
		const i64 owhi = (iw + PL) / SW < OW - 1 ? (iw + PL) / SW : OW - 1;
		T acc = 0;
		for (i64 oh = ohlo; oh <= ohhi; oh++) {
			const i64 h0 = oh * SH - PT;
			const i64 hlo = h0 > 0 ? h0 : 0, hhi = h0 + KH < H ? h0 + KH : H;
			for (i64 ow = owlo; ow <= owhi; ow++) {
				const i64 w0 = ow * SW - PL;
				const i64 wlo = w0 > 0 ? w0 : 0, whi = w0 + KW < W ? w0 + KW : W;
				if (isMax) {
					const T *img = x + p * H * W;
					i64 best = hlo * W + wlo;
					T mx = img[best];
					for (i64 h = hlo; h < hhi; h++)
						for (i64 w = wlo; w < whi; w++) {
							const T v = img[h * W + w];
							if (!(mx >= v || mx != mx)) {
								mx = v;
								best = h * W + w;
							}
						}
					if (best == ih * W + iw) acc += g[oh * OW + ow];
				} else {
					acc += g[oh * OW + ow] / (T)((hhi - hlo) * (whi - wlo));
				}
			}
		}
		dx[t] = acc;
	}
}

extern "C" __global__ void poolgrad_f32(float *dx, const float *x, const float *dy, i64 n, const i64 *m, i64 isMax) { poolgrad_(dx, x, dy, n, m, isMax); }
extern "C" __global__ void poolgrad_f64(double *dx, const double *x, const double *dy, i64 n, const i64 *m, i64 isMax) { poolgrad_(dx, x, dy, n, m, isMax); }

// ---- normalisation and dropout ----------------------------------------------

// bnstats: per channel k of x[outer, c, inner], the mean and the biased
// variance (two passes), summing in row-major order.
template <typename T>
__device__ void bnstats_(T *mean, T *var, const T *x, i64 outer, i64 c, i64 inner) {
	GRID_LOOP(k, c) {
		const T count = (T)(outer * inner);
		T s = negzero_<T>();
		for (i64 o = 0; o < outer; o++) {
			const T *p = x + (o * c + k) * inner;
			for (i64 i = 0; i < inner; i++) s += p[i];
		}
		const T mu = s / count;
		T v = negzero_<T>();
		for (i64 o = 0; o < outer; o++) {
			const T *p = x + (o * c + k) * inner;
			for (i64 i = 0; i < inner; i++) {
				const T d = p[i] - mu;
				v += d * d;
			}
		}
		mean[k] = mu;
		var[k] = v / count;
	}
}

extern "C" __global__ void bnstats_f32(float *mean, float *var, const float *x, i64 outer, i64 c, i64 inner) { bnstats_(mean, var, x, outer, c, inner); }
extern "C" __global__ void bnstats_f64(double *mean, double *var, const double *x, i64 outer, i64 c, i64 inner) { bnstats_(mean, var, x, outer, c, inner); }

// bnapply: (x - mean) / sqrt(var + epsilon) * scale + bias per channel.
template <typename T>
__device__ void bnapply_(T *out, const T *x, const T *scale, const T *bias, const T *mean, const T *var, i64 n, i64 c, i64 inner, double eps) {
	const T e = (T)eps;
	GRID_LOOP(i, n) {
		const i64 k = (i / inner) % c;
		const T d = (T)sqrt((double)(var[k] + e));
		out[i] = (x[i] - mean[k]) / d * scale[k] + bias[k];
	}
}

extern "C" __global__ void bnapply_f32(float *out, const float *x, const float *scale, const float *bias, const float *mean, const float *var, i64 n, i64 c, i64 inner, double eps) { bnapply_(out, x, scale, bias, mean, var, n, c, inner, eps); }
extern "C" __global__ void bnapply_f64(double *out, const double *x, const double *scale, const double *bias, const double *mean, const double *var, i64 n, i64 c, i64 inner, double eps) { bnapply_(out, x, scale, bias, mean, var, n, c, inner, eps); }

__device__ __forceinline__ u64 splitmix_(u64 z) {
	z += 0x9e3779b97f4a7c15ULL;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

// mix4_ is runtime/cpu's mix of four words.
__device__ __forceinline__ u64 mix4_(u64 a, u64 b, u64 c, u64 d) {
	u64 h = 0x9e3779b97f4a7c15ULL;
	h = splitmix_(h ^ a);
	h = splitmix_(h ^ b);
	h = splitmix_(h ^ c);
	return splitmix_(h ^ d);
}

// dropout: element e of x[outer, size, inner] (size the batch axis, of mul
// rows per sample) is kept when the hash of (seed, key, global sample,
// index within the sample) clears threshold, and scaled by 1/keep; else
// zeroed. m holds batched, size, inner, mul, offset, threshold.
template <typename T>
__device__ void dropout_(T *out, const T *x, i64 n, u64 seed, u64 key, const i64 *m, double keep) {
	const i64 batched = m[0], size = m[1], inner = m[2], mul = m[3], offset = m[4];
	const u64 threshold = (u64)m[5];
	const T ks = (T)keep;
	GRID_LOOP(e, n) {
		i64 sample = 0, within = e;
		if (batched) {
			const i64 r = e % inner, t = (e / inner) % size, o = e / (inner * size);
			sample = offset + t / mul;
			within = (o * mul + t % mul) * inner + r;
		}
		const u64 h = mix4_(seed, key, (u64)sample, (u64)within);
		out[e] = (h >> 11) >= threshold ? x[e] / ks : (T)0;
	}
}

extern "C" __global__ void dropout_f32(float *out, const float *x, i64 n, u64 seed, u64 key, const i64 *m, double keep) { dropout_(out, x, n, seed, key, m, keep); }
extern "C" __global__ void dropout_f64(double *out, const double *x, i64 n, u64 seed, u64 key, const i64 *m, double keep) { dropout_(out, x, n, seed, key, m, keep); }

// KERNELS lists every kernel (the host emulation builds its table from it).
#define KERNELS(X) \
	X(binary_f32) X(binary_f64) X(unary_f32) X(unary_f64) \
	X(reduce_f32) X(reduce_f64) X(softmax_f32) X(softmax_f64) \
	X(copy_u8) X(copy_u32) X(copy_u64) X(fill_u8) X(fill_u32) X(fill_u64) \
	X(im2col_f32) X(im2col_f64) X(col2im_f32) X(col2im_f64) X(bias_f32) X(bias_f64) \
	X(pool_f32) X(pool_f64) X(poolgrad_f32) X(poolgrad_f64) \
	X(bnstats_f32) X(bnstats_f64) X(bnapply_f32) X(bnapply_f64) \
	X(dropout_f32) X(dropout_f64) \
	X(gather_u8) X(gather_u32) X(gather_u64) X(gathergrad_f32) X(gathergrad_f64) \
	X(arg_f32) X(arg_f64) X(arg_i32) X(arg_i64) \
	X(cmp_f32) X(cmp_f64) X(cmp_i32) X(cmp_i64) X(cmp_u8) X(logic_u8) \
	X(where_u8) X(where_u32) X(where_u64) \
	X(cast_f32) X(cast_f64) X(cast_i32) X(cast_i64) X(cast_u8)

// ---- indexing ---------------------------------------------------------------

// index_ returns indices[k] (i64 when idx64, else i32) made non-negative
// (a negative index counts from the end), or -1 when it is out of
// [-rows, rows): then status[0] = 1 and status[1] = the index, which the
// backend reports after the program has run.
__device__ __forceinline__ i64 index_(const void *indices, i64 k, i64 idx64, i64 rows, i64 *status) {
	const i64 v = idx64 ? ((const i64 *)indices)[k] : (i64)((const int *)indices)[k];
	if (v < -rows || v >= rows) {
		status[0] = 1;
		status[1] = v;
		return -1;
	}
	return v < 0 ? v + rows : v;
}

// gather: out[o][q][j] = data[o][indices[q]][j] for data[outer, rows,
// inner] and k indices (0 where an index is out of range); W is the
// element width.
template <typename W>
__device__ void gather_(W *out, const W *data, const void *indices, i64 n, i64 rows, i64 k, i64 inner, i64 idx64, i64 *status) {
	GRID_LOOP(i, n) {
		const i64 j = i % inner, t = i / inner, q = t % k, o = t / k;
		const i64 r = index_(indices, q, idx64, rows, status);
		out[i] = r < 0 ? (W)0 : data[(o * rows + r) * inner + j];
	}
}

extern "C" __global__ void gather_u8(unsigned char *out, const unsigned char *data, const void *indices, i64 n, i64 rows, i64 k, i64 inner, i64 idx64, i64 *status) { gather_(out, data, indices, n, rows, k, inner, idx64, status); }
extern "C" __global__ void gather_u32(unsigned int *out, const unsigned int *data, const void *indices, i64 n, i64 rows, i64 k, i64 inner, i64 idx64, i64 *status) { gather_(out, data, indices, n, rows, k, inner, idx64, status); }
extern "C" __global__ void gather_u64(u64 *out, const u64 *data, const void *indices, i64 n, i64 rows, i64 k, i64 inner, i64 idx64, i64 *status) { gather_(out, data, indices, n, rows, k, inner, idx64, status); }

// gathergrad: out[outer, rows, inner] is zeros with dy[o][q][j] added at
// out[o][indices[q]][j], one thread per (o, j) walking the indices in
// order (as runtime/cpu adds them up); n is outer * inner.
template <typename T>
__device__ void gathergrad_(T *out, const void *indices, const T *dy, i64 n, i64 rows, i64 k, i64 inner, i64 idx64, i64 *status) {
	GRID_LOOP(t, n) {
		const i64 j = t % inner, o = t / inner;
		T *col = out + o * rows * inner + j;
		for (i64 r = 0; r < rows; r++) col[r * inner] = (T)0;
		for (i64 q = 0; q < k; q++) {
			const i64 r = index_(indices, q, idx64, rows, status);
			if (r >= 0) col[r * inner] += dy[(o * k + q) * inner + j];
		}
	}
}

extern "C" __global__ void gathergrad_f32(float *out, const void *indices, const float *dy, i64 n, i64 rows, i64 k, i64 inner, i64 idx64, i64 *status) { gathergrad_(out, indices, dy, n, rows, k, inner, idx64, status); }
extern "C" __global__ void gathergrad_f64(double *out, const void *indices, const double *dy, i64 n, i64 rows, i64 k, i64 inner, i64 idx64, i64 *status) { gathergrad_(out, indices, dy, n, rows, k, inner, idx64, status); }

// arg: argmax (isMax) or argmin along the middle axis of x[outer, size,
// inner], one thread per (outer, inner) pair: the index of the first
// extreme, or of the first NaN; n is outer * inner.
template <typename T>
__device__ void arg_(i64 *out, const T *x, i64 n, i64 size, i64 inner, i64 isMax) {
	GRID_LOOP(t, n) {
		const i64 i = t % inner, o = t / inner;
		i64 at = 0;
		if (size > 0) {
			const T *p = x + o * size * inner + i;
			T best = p[0];
			for (i64 q = 1; q < size && best == best; q++) {
				const T v = p[q * inner];
				if (v != v || (isMax ? v > best : v < best)) {
					best = v;
					at = q;
				}
			}
		}
		out[t] = at;
	}
}

extern "C" __global__ void arg_f32(i64 *out, const float *x, i64 n, i64 size, i64 inner, i64 isMax) { arg_(out, x, n, size, inner, isMax); }
extern "C" __global__ void arg_f64(i64 *out, const double *x, i64 n, i64 size, i64 inner, i64 isMax) { arg_(out, x, n, size, inner, isMax); }
extern "C" __global__ void arg_i32(i64 *out, const int *x, i64 n, i64 size, i64 inner, i64 isMax) { arg_(out, x, n, size, inner, isMax); }
extern "C" __global__ void arg_i64(i64 *out, const i64 *x, i64 n, i64 size, i64 inner, i64 isMax) { arg_(out, x, n, size, inner, isMax); }

// ---- comparisons, logic, where, cast ------------------------------------------

// bcast_ returns the offsets in operands of element i of a broadcast result,
// for ops whose m holds rank, the (collapsed) result shape, then k
// operands' strides along it.
__device__ __forceinline__ void bcast_(i64 i, const i64 *m, i64 k, i64 *off) {
	const i64 rank = m[0];
	const i64 *shape = m + 1;
	for (i64 s = 0; s < k; s++) off[s] = 0;
	for (i64 d = rank - 1; d >= 0; d--) {
		const i64 c = i % shape[d];
		i /= shape[d];
		for (i64 s = 0; s < k; s++) off[s] += c * shape[rank * (s + 1) + d];
	}
}

// cmp: out[i] = a[.] op b[.] as a bool (1 or 0) with numpy broadcasting, op
// one of OP_EQ, OP_LT, OP_LE, OP_GT, OP_GE (the binary op codes); m as
// binary's. cmp_u8 compares bools (equal only).
template <typename T>
__device__ void cmp_(unsigned char *out, const T *a, const T *b, i64 n, const i64 *m, i64 op) {
	GRID_LOOP(i, n) {
		i64 off[2];
		bcast_(i, m, 2, off);
		const T x = a[off[0]], y = b[off[1]];
		bool z;
		switch (op) {
		case OP_EQ: z = x == y; break;
		case OP_LT: z = x < y; break;
		case OP_LE: z = x <= y; break;
		case OP_GT: z = x > y; break;
		default: z = x >= y; break;
		}
		out[i] = z ? 1 : 0;
	}
}

extern "C" __global__ void cmp_f32(unsigned char *out, const float *a, const float *b, i64 n, const i64 *m, i64 op) { cmp_(out, a, b, n, m, op); }
extern "C" __global__ void cmp_f64(unsigned char *out, const double *a, const double *b, i64 n, const i64 *m, i64 op) { cmp_(out, a, b, n, m, op); }
extern "C" __global__ void cmp_i32(unsigned char *out, const int *a, const int *b, i64 n, const i64 *m, i64 op) { cmp_(out, a, b, n, m, op); }
extern "C" __global__ void cmp_i64(unsigned char *out, const i64 *a, const i64 *b, i64 n, const i64 *m, i64 op) { cmp_(out, a, b, n, m, op); }
extern "C" __global__ void cmp_u8(unsigned char *out, const unsigned char *a, const unsigned char *b, i64 n, const i64 *m, i64 op) { cmp_(out, a, b, n, m, op); }

// Logic op codes (runtime/gpu: logicOps).
#define OP_AND 0
#define OP_OR 1
#define OP_XOR 2
#define OP_NOT 3

// logic: out[i] = a[.] op b[.] on bools (bytes 0 or 1) with numpy
// broadcasting; not reads only a. m as binary's.
extern "C" __global__ void logic_u8(unsigned char *out, const unsigned char *a, const unsigned char *b, i64 n, const i64 *m, i64 op) {
	GRID_LOOP(i, n) {
		i64 off[2];
		bcast_(i, m, 2, off);
		const bool x = a[off[0]] != 0, y = b[off[1]] != 0;
		bool z;
		switch (op) {
		case OP_AND: z = x && y; break;
		case OP_OR: z = x || y; break;
		case OP_XOR: z = x != y; break;
		default: z = !x; break;
		}
		out[i] = z ? 1 : 0;
	}
}

// where: out[i] = c[.] ? a[.] : b[.] with numpy broadcasting of all three;
// m holds rank, the result shape, then c's, a's and b's strides. W is the
// element width.
template <typename W>
__device__ void where_(W *out, const unsigned char *c, const W *a, const W *b, i64 n, const i64 *m) {
	GRID_LOOP(i, n) {
		i64 off[3];
		bcast_(i, m, 3, off);
		out[i] = c[off[0]] ? a[off[1]] : b[off[2]];
	}
}

extern "C" __global__ void where_u8(unsigned char *out, const unsigned char *c, const unsigned char *a, const unsigned char *b, i64 n, const i64 *m) { where_(out, c, a, b, n, m); }
extern "C" __global__ void where_u32(unsigned int *out, const unsigned char *c, const unsigned int *a, const unsigned int *b, i64 n, const i64 *m) { where_(out, c, a, b, n, m); }
extern "C" __global__ void where_u64(u64 *out, const unsigned char *c, const u64 *a, const u64 *b, i64 n, const i64 *m) { where_(out, c, a, b, n, m); }

// Element type codes of cast (graph.DType's numbering).
#define DT_F32 1
#define DT_F64 2
#define DT_I32 3
#define DT_I64 4

template <typename S> __device__ __forceinline__ bool isfloat_() { return false; }
template <> __device__ __forceinline__ bool isfloat_<float>() { return true; }
template <> __device__ __forceinline__ bool isfloat_<double>() { return true; }

// toi32_ and toi64_ convert as runtime/cpu does: floats truncate toward
// zero, saturating at the range, NaN giving 0; integers keep their low
// bits.
template <typename S> __device__ __forceinline__ int toi32_(S v) {
	if (!isfloat_<S>()) return (int)v;
	const double f = (double)v;
	return f != f ? 0 : f >= 2147483648.0 ? 2147483647 : f <= -2147483648.0 ? (-2147483647 - 1) : (int)f;
}

template <typename S> __device__ __forceinline__ i64 toi64_(S v) {
	if (!isfloat_<S>()) return (i64)v;
	const double f = (double)v;
	return f != f ? 0 : f >= 9223372036854775808.0 ? 0x7fffffffffffffffLL : f <= -9223372036854775808.0 ? (-0x7fffffffffffffffLL - 1) : (i64)f;
}

// cast: out[i] = x[i] converted to the element type to (ONNX Cast, as
// runtime/cpu: see toi32_; to bool is x != 0; a bool source is 0 or 1).
// The suffix names the source type.
template <typename S>
__device__ void cast_(void *out, const S *x, i64 n, i64 to) {
	GRID_LOOP(i, n) {
		const S v = x[i];
		switch (to) {
		case DT_F32: ((float *)out)[i] = (float)v; break;
		case DT_F64: ((double *)out)[i] = (double)v; break;
		case DT_I32: ((int *)out)[i] = toi32_(v); break;
		case DT_I64: ((i64 *)out)[i] = toi64_(v); break;
		default: ((unsigned char *)out)[i] = v != 0 ? 1 : 0; break;
		}
	}
}

extern "C" __global__ void cast_f32(void *out, const float *x, i64 n, i64 to) { cast_(out, x, n, to); }
extern "C" __global__ void cast_f64(void *out, const double *x, i64 n, i64 to) { cast_(out, x, n, to); }
extern "C" __global__ void cast_i32(void *out, const int *x, i64 n, i64 to) { cast_(out, x, n, to); }
extern "C" __global__ void cast_i64(void *out, const i64 *x, i64 n, i64 to) { cast_(out, x, n, to); }
extern "C" __global__ void cast_u8(void *out, const unsigned char *x, i64 n, i64 to) { cast_(out, x, n, to); }
