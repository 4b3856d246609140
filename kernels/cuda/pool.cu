/* pool.cu: CUDA max / average / adaptive-average 2-D pooling, forward and backward, with the
 * argument layout of core/ops/pool.c (contiguous 4-D tensors; i = {kh, kw, sh, sw, ph, pw
 * [, count_include_pad]} or {out_h, out_w}).
 *
 * Forward: one thread per output, the window read in the CPU's order (average sums in double).
 * Backward is a gather: one thread per input pixel visits the outputs whose window holds it, in
 * increasing output order, which is the order in which kernels/cpu/pool.c adds into that pixel:
 * no atomics, and the same result bit for bit. f32 and f64 as the CPU; bf16 computes in float. */
#include "common.cuh"

namespace {

struct pgeo {
  int64_t NC, H, W, Ho, Wo;
  int64_t kh, kw, sh, sw, ph, pw, cip;
  int adaptive;
};

pgeo geo_of(const vr_tensor *big, const vr_tensor *small, const int64_t *iv, int kind) {
  pgeo g;
  memset(&g, 0, sizeof g);
  g.NC = big->shape[0] * big->shape[1];
  g.H = big->shape[2];
  g.W = big->shape[3];
  g.Ho = small->shape[2];
  g.Wo = small->shape[3];
  if (kind == 2) {
    g.adaptive = 1;
  } else {
    g.kh = iv[0];
    g.kw = iv[1];
    g.sh = iv[2];
    g.sw = iv[3];
    g.ph = iv[4];
    g.pw = iv[5];
    g.cip = kind == 1 ? iv[6] : 0;
  }
  return g;
}

/* the window of output (oh, ow), clipped to the input, and the average's divisor (as the CPU) */
struct win {
  int64_t h0, h1, w0, w1;
  double div;
};
__device__ __forceinline__ win window_of(const pgeo &g, int64_t oh, int64_t ow) {
  win r;
  if (g.adaptive) {
    r.h0 = oh * g.H / g.Ho;
    r.h1 = ((oh + 1) * g.H + g.Ho - 1) / g.Ho;
    r.w0 = ow * g.W / g.Wo;
    r.w1 = ((ow + 1) * g.W + g.Wo - 1) / g.Wo;
    r.div = (double)((r.h1 - r.h0) * (r.w1 - r.w0));
    return r;
  }
  r.h0 = oh * g.sh - g.ph;
  r.w0 = ow * g.sw - g.pw;
  r.h1 = r.h0 + g.kh < g.H + g.ph ? r.h0 + g.kh : g.H + g.ph;
  r.w1 = r.w0 + g.kw < g.W + g.pw ? r.w0 + g.kw : g.W + g.pw;
  double padded = (double)((r.h1 - r.h0) * (r.w1 - r.w0));
  if (r.h0 < 0) r.h0 = 0;
  if (r.w0 < 0) r.w0 = 0;
  if (r.h1 > g.H) r.h1 = g.H;
  if (r.w1 > g.W) r.w1 = g.W;
  r.div = g.cip ? padded : (double)((r.h1 - r.h0) * (r.w1 - r.w0));
  return r;
}

/* outputs along one axis whose window may hold input coordinate c (checked exactly by the caller) */
__device__ __forceinline__ void out_range(int64_t c, int64_t in, int64_t on, int64_t k, int64_t s, int64_t p, int adaptive,
                                          int64_t *lo, int64_t *hi) {
  int64_t a, b;
  if (adaptive) {
    a = c * on / in - 1;
    b = ((c + 1) * on + in - 1) / in;
  } else { /* o s - p <= c < o s - p + k */
    int64_t t = c + p - k + 1;
    a = t <= 0 ? 0 : (t + s - 1) / s;
    b = (c + p) / s;
  }
  *lo = a < 0 ? 0 : a;
  *hi = b > on - 1 ? on - 1 : b;
}

template <typename T> __device__ __forceinline__ bool is_nan(T v) { return v != v; }

/* ---- max ---- */
template <typename T>
__global__ void maxpool_fwd_k(const T *__restrict__ x, T *__restrict__ y, int64_t *__restrict__ idx, pgeo g) {
  typedef typename vr_cu_acc<T>::type C;
  int64_t total = g.NC * g.Ho * g.Wo;
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < total; e += (int64_t)gridDim.x * blockDim.x) {
    int64_t ow = e % g.Wo, r = e / g.Wo, oh = r % g.Ho, pl = r / g.Ho;
    const T *xp = x + pl * g.H * g.W;
    int64_t h0 = oh * g.sh - g.ph, w0 = ow * g.sw - g.pw;
    int64_t h1 = h0 + g.kh < g.H ? h0 + g.kh : g.H, w1 = w0 + g.kw < g.W ? w0 + g.kw : g.W;
    if (h0 < 0) h0 = 0;
    if (w0 < 0) w0 = 0;
    C best = -INFINITY;
    int64_t bi = h0 * g.W + w0;
    for (int64_t ih = h0; ih < h1; ih++)
      for (int64_t iw = w0; iw < w1; iw++) {
        C v = vr_cu_ld<T>(xp[ih * g.W + iw]);
        if (v > best || (is_nan(v) && !is_nan(best))) { /* first index on ties, first NaN wins */
          best = v;
          bi = ih * g.W + iw;
        }
      }
    y[e] = vr_cu_st<T>(best);
    idx[e] = bi;
  }
}

template <typename T>
__global__ void maxpool_bwd_k(const T *__restrict__ gy, const int64_t *__restrict__ idx, T *__restrict__ gx, pgeo g) {
  typedef typename vr_cu_acc<T>::type C;
  int64_t total = g.NC * g.H * g.W;
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < total; e += (int64_t)gridDim.x * blockDim.x) {
    int64_t iw = e % g.W, r = e / g.W, ih = r % g.H, pl = r / g.H;
    int64_t me = ih * g.W + iw, oh0, oh1, ow0, ow1;
    out_range(ih, g.H, g.Ho, g.kh, g.sh, g.ph, 0, &oh0, &oh1);
    out_range(iw, g.W, g.Wo, g.kw, g.sw, g.pw, 0, &ow0, &ow1);
    const int64_t base = pl * g.Ho * g.Wo;
    C acc = 0;
    for (int64_t oh = oh0; oh <= oh1; oh++)
      for (int64_t ow = ow0; ow <= ow1; ow++) {
        int64_t o = base + oh * g.Wo + ow;
        if (idx[o] == me) acc += vr_cu_ld<T>(gy[o]);
      }
    gx[e] = vr_cu_st<T>(acc);
  }
}

/* ---- average (fixed and adaptive) ---- */
template <typename T> __global__ void avg_fwd_k(const T *__restrict__ x, T *__restrict__ y, pgeo g) {
  int64_t total = g.NC * g.Ho * g.Wo;
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < total; e += (int64_t)gridDim.x * blockDim.x) {
    int64_t ow = e % g.Wo, r = e / g.Wo, oh = r % g.Ho, pl = r / g.Ho;
    const T *xp = x + pl * g.H * g.W;
    win w = window_of(g, oh, ow);
    double s = 0;
    for (int64_t ih = w.h0; ih < w.h1; ih++)
      for (int64_t iw = w.w0; iw < w.w1; iw++) s += vr_cu_conv<T>::load(xp[ih * g.W + iw]);
    y[e] = vr_cu_conv<T>::store(s / w.div);
  }
}

template <typename T> __global__ void avg_bwd_k(const T *__restrict__ gy, T *__restrict__ gx, pgeo g) {
  typedef typename vr_cu_acc<T>::type C;
  int64_t total = g.NC * g.H * g.W;
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < total; e += (int64_t)gridDim.x * blockDim.x) {
    int64_t iw = e % g.W, r = e / g.W, ih = r % g.H, pl = r / g.H;
    int64_t oh0, oh1, ow0, ow1;
    out_range(ih, g.H, g.Ho, g.kh, g.sh, g.ph, g.adaptive, &oh0, &oh1);
    out_range(iw, g.W, g.Wo, g.kw, g.sw, g.pw, g.adaptive, &ow0, &ow1);
    const int64_t base = pl * g.Ho * g.Wo;
    C acc = 0;
    for (int64_t oh = oh0; oh <= oh1; oh++)
      for (int64_t ow = ow0; ow <= ow1; ow++) {
        win w = window_of(g, oh, ow);
        if (ih < w.h0 || ih >= w.h1 || iw < w.w0 || iw >= w.w1) continue;
        acc += (C)(vr_cu_conv<T>::load(gy[base + oh * g.Wo + ow]) / w.div);
      }
    gx[e] = vr_cu_st<T>(acc);
  }
}

/* kind: 0 max, 1 average, 2 adaptive average */
template <typename T> vr_status pool_fwd_typed(const vr_kernel_args *a, int kind) {
  pgeo g = geo_of(a->in[0], a->out[0], a->i, kind);
  int64_t total = g.NC * g.Ho * g.Wo;
  if (!total) return VR_OK;
  cudaStream_t s = vr_cuda_stream();
  const T *x = (const T *)vr_data(a->in[0]);
  T *y = (T *)vr_data(a->out[0]);
  if (kind == 0) {
    if (a->out[1]->dtype != VR_I64) return VR_FAIL(VR_E_DTYPE, "indices: expected i64, got %s", vr_dtype_name(a->out[1]->dtype));
    maxpool_fwd_k<T><<<vr_cu_blocks(total), VR_CU_THREADS, 0, s>>>(x, y, (int64_t *)vr_data(a->out[1]), g);
  } else {
    avg_fwd_k<T><<<vr_cu_blocks(total), VR_CU_THREADS, 0, s>>>(x, y, g);
  }
  VR_CU_LAUNCHED(kind == 0 ? "max_pool2d" : "avg_pool2d");
  return VR_OK;
}

template <typename T> vr_status pool_bwd_typed(const vr_kernel_args *a, int kind) {
  pgeo g = geo_of(a->out[0], a->in[0], a->i, kind);
  int64_t total = g.NC * g.H * g.W;
  if (!total) return VR_OK;
  cudaStream_t s = vr_cuda_stream();
  const T *gy = (const T *)vr_data(a->in[0]);
  T *gx = (T *)vr_data(a->out[0]);
  if (g.Ho * g.Wo == 0) { /* no outputs: no gradient reaches the input */
    VR_CU(cudaMemsetAsync(gx, 0, (size_t)total * sizeof(T), s));
    return VR_OK;
  }
  if (kind == 0) {
    if (a->in[1]->dtype != VR_I64) return VR_FAIL(VR_E_DTYPE, "indices: expected i64, got %s", vr_dtype_name(a->in[1]->dtype));
    maxpool_bwd_k<T><<<vr_cu_blocks(total), VR_CU_THREADS, 0, s>>>(gy, (const int64_t *)vr_data(a->in[1]), gx, g);
  } else {
    avg_bwd_k<T><<<vr_cu_blocks(total), VR_CU_THREADS, 0, s>>>(gy, gx, g);
  }
  VR_CU_LAUNCHED(kind == 0 ? "max_pool2d backward" : "avg_pool2d backward");
  return VR_OK;
}

vr_status pool_fwd(const vr_kernel_args *a, int kind) {
  VR_CU_FLOAT_SWITCH(a->in[0]->dtype, "x", return pool_fwd_typed<T>(a, kind));
  return VR_OK;
}
vr_status pool_bwd(const vr_kernel_args *a, int kind) {
  VR_CU_FLOAT_SWITCH(a->in[0]->dtype, "grad_y", return pool_bwd_typed<T>(a, kind));
  return VR_OK;
}

} // namespace

extern "C" {
vr_status vr_cuda_max_pool2d_fwd(const vr_kernel_args *a) { return pool_fwd(a, 0); }
vr_status vr_cuda_max_pool2d_bwd(const vr_kernel_args *a) { return pool_bwd(a, 0); }
vr_status vr_cuda_avg_pool2d_fwd(const vr_kernel_args *a) { return pool_fwd(a, 1); }
vr_status vr_cuda_avg_pool2d_bwd(const vr_kernel_args *a) { return pool_bwd(a, 1); }
vr_status vr_cuda_adaptive_avg_pool2d_fwd(const vr_kernel_args *a) { return pool_fwd(a, 2); }
vr_status vr_cuda_adaptive_avg_pool2d_bwd(const vr_kernel_args *a) { return pool_bwd(a, 2); }
void vr_cuda_register_pool(void) {
  vr_kernel_register(VR_OP_MAXPOOL2D, VR_CUDA, vr_cuda_max_pool2d_fwd, vr_cuda_max_pool2d_bwd);
  vr_kernel_register(VR_OP_AVGPOOL2D, VR_CUDA, vr_cuda_avg_pool2d_fwd, vr_cuda_avg_pool2d_bwd);
  vr_kernel_register(VR_OP_ADAPTIVE_AVGPOOL2D, VR_CUDA, vr_cuda_adaptive_avg_pool2d_fwd, vr_cuda_adaptive_avg_pool2d_bwd);
}
}
