/* pool.cu: CUDA max_pool2d, avg_pool2d and adaptive_avg_pool2d (fwd, bwd), with the argument
 * layout of core/ops/pool.c (every tensor contiguous 4-D [N, C, H, W]; outputs fresh):
 *   MAXPOOL2D i = {kh, kw, sh, sw, ph, pw}; fwd out = {y, indices i64 (ih W + iw in the plane,
 *     the first on ties, NaN wins)}; bwd in = {grad_y, indices}, out = {grad_x}.
 *   AVGPOOL2D i = {kh, kw, sh, sw, ph, pw, count_include_pad}; ADAPTIVE_AVGPOOL2D i = {oh, ow},
 *     bin i covers [floor(i H / oh), ceil((i + 1) H / oh)).
 * Forward: one thread per output. Backward gathers instead of scattering: one thread per input
 * element sums the outputs whose window holds it, in (oh, ow) order, the order the CPU adds in,
 * so there are no atomics and the result is deterministic. */
#include "common.cuh"

namespace {

struct pgeo {
  int64_t NC, H, W, Ho, Wo;
  int64_t kh, kw, sh, sw, ph, pw, cip;
};
pgeo geo_of(const vr_tensor *x, const vr_tensor *y, const int64_t *iv, int nparams) {
  pgeo g;
  memset(&g, 0, sizeof g);
  g.NC = x->shape[0] * x->shape[1];
  g.H = x->shape[2];
  g.W = x->shape[3];
  g.Ho = y->shape[2];
  g.Wo = y->shape[3];
  if (nparams >= 6) {
    g.kh = iv[0], g.kw = iv[1], g.sh = iv[2], g.sw = iv[3], g.ph = iv[4], g.pw = iv[5];
    g.cip = nparams > 6 ? iv[6] : 0;
  }
  return g;
}

#define LOOP(i, n) for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < (n); i += (int64_t)gridDim.x * blockDim.x)

/* ---- max ---- */
template <typename T> __global__ void max_fwd(const T *x, T *y, int64_t *idx, pgeo g) {
  typedef typename vr_cu_acc<T>::type C;
  LOOP(o, g.NC * g.Ho * g.Wo) {
    int64_t ow = o % g.Wo, oh = (o / g.Wo) % g.Ho, pl = o / (g.Wo * g.Ho);
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
        if (v > best || (v != v && best == best)) {
          best = v;
          bi = ih * g.W + iw;
        }
      }
    y[o] = vr_cu_st<T>(best);
    idx[o] = bi;
  }
}
/* outputs whose window [o s - p, o s - p + k) holds i: o in [lo, hi] */
__device__ __forceinline__ void win_range(int64_t i, int64_t k, int64_t s, int64_t p, int64_t n, int64_t &lo, int64_t &hi) {
  int64_t a = i + p - k + 1;
  lo = a <= 0 ? 0 : (a + s - 1) / s;
  hi = (i + p) / s;
  if (hi > n - 1) hi = n - 1;
}
template <typename T> __global__ void max_bwd(const T *gy, const int64_t *idx, T *gx, pgeo g) {
  LOOP(e, g.NC * g.H * g.W) {
    int64_t iw = e % g.W, ih = (e / g.W) % g.H, pl = e / (g.W * g.H);
    int64_t ol, oh_hi, wl, ow_hi;
    win_range(ih, g.kh, g.sh, g.ph, g.Ho, ol, oh_hi);
    win_range(iw, g.kw, g.sw, g.pw, g.Wo, wl, ow_hi);
    const int64_t base = pl * g.Ho * g.Wo, me = ih * g.W + iw;
    T acc = vr_cu_st<T>(0);
    typename vr_cu_acc<T>::type s = 0;
    for (int64_t oh = ol; oh <= oh_hi; oh++)
      for (int64_t ow = wl; ow <= ow_hi; ow++) {
        int64_t o = base + oh * g.Wo + ow;
        if (idx[o] == me) s += vr_cu_ld<T>(gy[o]);
      }
    acc = vr_cu_st<T>(s);
    gx[e] = acc;
  }
}

/* ---- average: the window of output (oh, ow) and its divisor, as the CPU computes them ---- */
struct win {
  int64_t h0, h1, w0, w1;
  double div;
};
__device__ __forceinline__ win avg_window(const pgeo &g, int64_t oh, int64_t ow) {
  win r;
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
__device__ __forceinline__ win adaptive_window(const pgeo &g, int64_t oh, int64_t ow) {
  win r;
  r.h0 = oh * g.H / g.Ho;
  r.h1 = ((oh + 1) * g.H + g.Ho - 1) / g.Ho;
  r.w0 = ow * g.W / g.Wo;
  r.w1 = ((ow + 1) * g.W + g.Wo - 1) / g.Wo;
  r.div = (double)((r.h1 - r.h0) * (r.w1 - r.w0));
  return r;
}
template <typename T, bool Adaptive> __global__ void avg_fwd(const T *x, T *y, pgeo g) {
  LOOP(o, g.NC * g.Ho * g.Wo) {
    int64_t ow = o % g.Wo, oh = (o / g.Wo) % g.Ho, pl = o / (g.Wo * g.Ho);
    const T *xp = x + pl * g.H * g.W;
    win r = Adaptive ? adaptive_window(g, oh, ow) : avg_window(g, oh, ow);
    double s = 0;
    for (int64_t ih = r.h0; ih < r.h1; ih++)
      for (int64_t iw = r.w0; iw < r.w1; iw++) s += vr_cu_conv<T>::load(xp[ih * g.W + iw]);
    y[o] = vr_cu_conv<T>::store(s / r.div);
  }
}
/* adaptive bins that may hold i: [lo, hi] (membership is checked exactly by the caller) */
__device__ __forceinline__ void bin_range(int64_t i, int64_t n_in, int64_t n_out, int64_t &lo, int64_t &hi) {
  lo = i == 0 ? 0 : ((i - 1) * n_out) / n_in - 1;
  if (lo < 0) lo = 0;
  hi = ((i + 1) * n_out) / n_in;
  if (hi > n_out - 1) hi = n_out - 1;
}
template <typename T, bool Adaptive> __global__ void avg_bwd(const T *gy, T *gx, pgeo g) {
  typedef typename vr_cu_acc<T>::type C;
  LOOP(e, g.NC * g.H * g.W) {
    int64_t iw = e % g.W, ih = (e / g.W) % g.H, pl = e / (g.W * g.H);
    int64_t ol, oh_hi, wl, ow_hi;
    if (Adaptive) {
      bin_range(ih, g.H, g.Ho, ol, oh_hi);
      bin_range(iw, g.W, g.Wo, wl, ow_hi);
    } else {
      win_range(ih, g.kh, g.sh, g.ph, g.Ho, ol, oh_hi);
      win_range(iw, g.kw, g.sw, g.pw, g.Wo, wl, ow_hi);
    }
    C s = 0;
    for (int64_t oh = ol; oh <= oh_hi; oh++)
      for (int64_t ow = wl; ow <= ow_hi; ow++) {
        win r = Adaptive ? adaptive_window(g, oh, ow) : avg_window(g, oh, ow);
        if (ih < r.h0 || ih >= r.h1 || iw < r.w0 || iw >= r.w1) continue;
        /* as the CPU: the share is rounded to T, then added in T */
        s += vr_cu_ld<T>(vr_cu_conv<T>::store(vr_cu_conv<T>::load(gy[(pl * g.Ho + oh) * g.Wo + ow]) / r.div));
      }
    gx[e] = vr_cu_st<T>(s);
  }
}

vr_status check4(const vr_tensor *t, const char *what) {
  if (t->ndim != 4) return VR_FAIL(VR_E_SHAPE, "%s: expected 4 dims [N, C, H, W], got %d", what, t->ndim);
  return VR_OK;
}

vr_status maxpool_fwd(const vr_kernel_args *a) {
  VR_TRY(check4(a->in[0], "x"));
  pgeo g = geo_of(a->in[0], a->out[0], a->i, 6);
  int64_t n = g.NC * g.Ho * g.Wo;
  if (!n) return VR_OK;
  VR_CU_FLOAT_SWITCH(a->in[0]->dtype, "x",
                     max_fwd<T><<<vr_cu_blocks(n), VR_CU_THREADS, 0, vr_cuda_stream()>>>(
                         (const T *)vr_data(a->in[0]), (T *)vr_data(a->out[0]), (int64_t *)vr_data(a->out[1]), g));
  VR_CU_LAUNCHED("max_pool2d");
  return VR_OK;
}
vr_status maxpool_bwd(const vr_kernel_args *a) {
  VR_TRY(check4(a->out[0], "grad_x"));
  pgeo g = geo_of(a->out[0], a->in[0], a->i, 6);
  int64_t n = g.NC * g.H * g.W;
  if (!n) return VR_OK;
  VR_CU_FLOAT_SWITCH(a->in[0]->dtype, "grad_y",
                     max_bwd<T><<<vr_cu_blocks(n), VR_CU_THREADS, 0, vr_cuda_stream()>>>(
                         (const T *)vr_data(a->in[0]), (const int64_t *)vr_data(a->in[1]), (T *)vr_data(a->out[0]), g));
  VR_CU_LAUNCHED("max_pool2d backward");
  return VR_OK;
}
template <bool Adaptive> vr_status avg_fwd_launch(const vr_kernel_args *a) {
  VR_TRY(check4(a->in[0], "x"));
  pgeo g = geo_of(a->in[0], a->out[0], a->i, Adaptive ? 0 : 7);
  int64_t n = g.NC * g.Ho * g.Wo;
  if (!n) return VR_OK;
  VR_CU_FLOAT_SWITCH(a->in[0]->dtype, "x",
                     (avg_fwd<T, Adaptive><<<vr_cu_blocks(n), VR_CU_THREADS, 0, vr_cuda_stream()>>>(
                         (const T *)vr_data(a->in[0]), (T *)vr_data(a->out[0]), g)));
  VR_CU_LAUNCHED("avg_pool2d");
  return VR_OK;
}
template <bool Adaptive> vr_status avg_bwd_launch(const vr_kernel_args *a) {
  VR_TRY(check4(a->out[0], "grad_x"));
  pgeo g = geo_of(a->out[0], a->in[0], a->i, Adaptive ? 0 : 7);
  int64_t n = g.NC * g.H * g.W;
  if (!n) return VR_OK;
  VR_CU_FLOAT_SWITCH(a->in[0]->dtype, "grad_y",
                     (avg_bwd<T, Adaptive><<<vr_cu_blocks(n), VR_CU_THREADS, 0, vr_cuda_stream()>>>(
                         (const T *)vr_data(a->in[0]), (T *)vr_data(a->out[0]), g)));
  VR_CU_LAUNCHED("avg_pool2d backward");
  return VR_OK;
}

} // namespace

extern "C" {
vr_status vr_cuda_maxpool2d_fwd(const vr_kernel_args *a) { return maxpool_fwd(a); }
vr_status vr_cuda_maxpool2d_bwd(const vr_kernel_args *a) { return maxpool_bwd(a); }
vr_status vr_cuda_avgpool2d_fwd(const vr_kernel_args *a) { return avg_fwd_launch<false>(a); }
vr_status vr_cuda_avgpool2d_bwd(const vr_kernel_args *a) { return avg_bwd_launch<false>(a); }
vr_status vr_cuda_adaptive_avgpool2d_fwd(const vr_kernel_args *a) { return avg_fwd_launch<true>(a); }
vr_status vr_cuda_adaptive_avgpool2d_bwd(const vr_kernel_args *a) { return avg_bwd_launch<true>(a); }
void vr_cuda_register_pool(void) {
  vr_kernel_register(VR_OP_MAXPOOL2D, VR_CUDA, vr_cuda_maxpool2d_fwd, vr_cuda_maxpool2d_bwd);
  vr_kernel_register(VR_OP_AVGPOOL2D, VR_CUDA, vr_cuda_avgpool2d_fwd, vr_cuda_avgpool2d_bwd);
  vr_kernel_register(VR_OP_ADAPTIVE_AVGPOOL2D, VR_CUDA, vr_cuda_adaptive_avgpool2d_fwd, vr_cuda_adaptive_avgpool2d_bwd);
}
}
