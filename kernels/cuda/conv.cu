/* conv.cu: CUDA conv2d forward and backward with the argument layout of core/ops/conv.c
 * (i = {sh, sw, ph, pw, dh, dw, groups, layout}; layout 1: NHWC, x [N, H, W, C], w [Co, kh, kw, Cg],
 * y [N, Ho, Wo, Co]; fwd in = {x, w, bias or NULL}, out = {y}; bwd in = {grad_y, x, w}, out =
 * {grad_x, grad_w, grad_b}, each NULL when not wanted; all contiguous, every output element
 * overwritten).
 *
 * With cuDNN (VR_HAVE_CUDNN), in order:
 *  1. a cached execution plan of the graph API (conv_plan.cu): deterministic engines, host cost of
 *     a few us per call (the variant conv=legacy skips it);
 *  2. the legacy calls (conv_cudnn.cu) cudnnConvolutionForward / BackwardData / BackwardFilter, one handle per
 *     device bound to the backend's stream, algorithms from cuDNN's heuristics restricted to
 *     deterministic ones (cached per geometry; VISREG_CUDA_CONV_FIND=1 or benchmark mode: the
 *     fastest that cuDNN measures instead), workspace from the caching allocator;
 *  3. im2col + cuBLAS per sample (also without cuDNN, with the variant conv=im2col, or when cuDNN
 *     has no handle): grad_w accumulated over the batch in order on the stream, grad_x by a col2im
 *     gather (one thread per input pixel, fixed order); NHWC runs it on NCHW copies.
 * f32 runs without TF32 (CUDNN_FMA_MATH, or engines without tensor cores) unless VISREG_CUDA_TF32=1.
 * The bias is added by add_bias_k (one rounding); grad_b is a fixed-tree reduction per channel, in
 * double. Everything is deterministic.
 * bf16 (autocast): bf16 tensors, f32 compute, tensor-op math where available. Where cuDNN has no
 * deterministic bf16 algorithm, the convolution runs in f32 on f32 twins of the tensors (via_f32),
 * rounded once at the end; the im2col forward uses the bf16 cuBLAS GEMM, the im2col backward runs
 * in f32 so that grad_w is rounded once, not once per sample.
 * VISREG_CUDA_CONV_VERBOSE=1 prints each geometry's plan (engine) or legacy algorithm and math type. */
#include "conv.cuh"
#include "blockreduce.cuh"
#include <mutex>
#include <map>
#include <array>
#include <type_traits>
#include <stdlib.h>
#include <stdio.h>

vr_conv_geo vr_conv_geo_of(const vr_tensor *x, const vr_tensor *w, const int64_t *i) {
  vr_conv_geo g;
  g.nhwc = i[7] == 1;
  g.N = x->shape[0];
  g.C = x->shape[g.nhwc ? 3 : 1];
  g.H = x->shape[g.nhwc ? 1 : 2];
  g.W = x->shape[g.nhwc ? 2 : 3];
  g.Co = w->shape[0];
  g.kh = w->shape[g.nhwc ? 1 : 2];
  g.kw = w->shape[g.nhwc ? 2 : 3];
  g.sh = i[0];
  g.sw = i[1];
  g.ph = i[2];
  g.pw = i[3];
  g.dh = i[4];
  g.dw = i[5];
  g.G = i[6];
  g.Ho = (g.H + 2 * g.ph - g.dh * (g.kh - 1) - 1) / g.sh + 1;
  g.Wo = (g.W + 2 * g.pw - g.dw * (g.kw - 1) - 1) / g.sw + 1;
  g.Cg = g.C / g.G;
  g.Cog = g.Co / g.G;
  g.K = g.Cg * g.kh * g.kw;
  g.P = g.Ho * g.Wo;
  return g;
}

int vr_cu_conv_benchmark = -1; /* -1: from the environment (VISREG_CUDA_CONV_FIND) */

namespace {

typedef vr_conv_geo geo;
geo make_geo(const vr_tensor *x, const vr_tensor *w, const int64_t *i) { return vr_conv_geo_of(x, w, i); }

/* ---------------------------------------------------------------- bias */

/* y's channel of element e: (e / P) % Co in NCHW, e % Co in NHWC (P = 1 there) */
template <typename T> __global__ void add_bias_k(T *y, const T *__restrict__ b, int64_t Co, int64_t P, int64_t total) {
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < total; e += (int64_t)gridDim.x * blockDim.x) {
    int64_t co = (e / P) % Co;
    y[e] = vr_cu_st<T>(vr_cu_ld<T>(y[e]) + vr_cu_ld<T>(b[co]));
  }
}

/* grad_b[co] = sum over n, p of grad_y[n, co, p] (NHWC: grad_y[n, p, co]): one block per
 * channel, fixed tree, double */
template <typename T>
__global__ void bias_grad_k(const T *__restrict__ gy, T *gb, int64_t N, int64_t Co, int64_t P, bool nhwc) {
  __shared__ double sh[256];
  for (int64_t co = blockIdx.x; co < Co; co += gridDim.x) {
    double s = 0;
    for (int64_t e = threadIdx.x; e < N * P; e += blockDim.x) {
      int64_t n = e / P, p = e - n * P;
      s += vr_cu_conv<T>::load(gy[nhwc ? e * Co + co : (n * Co + co) * P + p]);
    }
    s = vr_cu_block_reduce<vr_cu_sum_op>(s, sh);
    if (threadIdx.x == 0) gb[co] = vr_cu_conv<T>::store(s);
  }
}

template <typename T> vr_status bias_grad(const geo &g, const void *gy, void *gb) {
  unsigned grid = (unsigned)(g.Co < 65535 ? (g.Co < 1 ? 1 : g.Co) : 65535);
  bias_grad_k<T><<<grid, 256, 0, vr_cuda_stream()>>>((const T *)gy, (T *)gb, g.N, g.Co, g.P, g.nhwc);
  VR_CU_LAUNCHED("conv2d bias grad");
  return VR_OK;
}

/* ---------------------------------------------------------------- im2col + cuBLAS */

/* col [C kh kw, P] of one sample: rows (c, i, j), so group g's K rows are contiguous */
template <typename T> __global__ void im2col_k(const T *__restrict__ x, T *__restrict__ col, geo g) {
  int64_t total = g.C * g.kh * g.kw * g.P;
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < total; e += (int64_t)gridDim.x * blockDim.x) {
    int64_t p = e % g.P, r = e / g.P, j = r % g.kw, r2 = r / g.kw, i = r2 % g.kh, c = r2 / g.kh;
    int64_t oh = p / g.Wo, ow = p - oh * g.Wo;
    int64_t ih = oh * g.sh - g.ph + i * g.dh, iw = ow * g.sw - g.pw + j * g.dw;
    col[e] = (ih >= 0 && ih < g.H && iw >= 0 && iw < g.W) ? x[(c * g.H + ih) * g.W + iw] : vr_cu_st<T>(0);
  }
}

/* grad_x of one sample from dcol [C kh kw, P]: each input pixel sums its taps, (i, j) in order */
template <typename T> __global__ void col2im_k(const T *__restrict__ col, T *__restrict__ gx, geo g) {
  typedef typename vr_cu_acc<T>::type A;
  int64_t total = g.C * g.H * g.W;
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < total; e += (int64_t)gridDim.x * blockDim.x) {
    int64_t iw = e % g.W, r = e / g.W, ih = r % g.H, c = r / g.H;
    A acc = 0;
    for (int64_t i = 0; i < g.kh; i++) {
      int64_t th = ih + g.ph - i * g.dh;
      if (th < 0 || th % g.sh) continue;
      int64_t oh = th / g.sh;
      if (oh >= g.Ho) continue;
      for (int64_t j = 0; j < g.kw; j++) {
        int64_t tw = iw + g.pw - j * g.dw;
        if (tw < 0 || tw % g.sw) continue;
        int64_t ow = tw / g.sw;
        if (ow >= g.Wo) continue;
        acc += vr_cu_ld<T>(col[((c * g.kh + i) * g.kw + j) * g.P + oh * g.Wo + ow]);
      }
    }
    gx[e] = vr_cu_st<T>(acc);
  }
}

template <typename T> vr_status im2col_fwd(const vr_kernel_args *a, const geo &g) {
  cudaStream_t s = vr_cuda_stream();
  vr_dtype dt = a->in[0]->dtype;
  const T *x = (const T *)vr_data(a->in[0]), *w = (const T *)vr_data(a->in[1]);
  T *y = (T *)vr_data(a->out[0]);
  vr_cu_buf col;
  VR_TRY(col.get(sizeof(T) * (size_t)(g.C * g.kh * g.kw * g.P)));
  for (int64_t n = 0; n < g.N; n++) {
    im2col_k<T><<<vr_cu_blocks(g.C * g.kh * g.kw * g.P), VR_CU_THREADS, 0, s>>>(x + n * g.C * g.H * g.W, col.as<T>(), g);
    VR_CU_LAUNCHED("im2col");
    for (int64_t gi = 0; gi < g.G; gi++) /* y_g [Cog, P] = W_g [Cog, K] col_g [K, P] */
      VR_TRY(vr_cu_gemm_rm(dt, 0, 0, g.Cog, g.P, g.K, 1.0, w + gi * g.Cog * g.K, g.K, col.as<T>() + gi * g.K * g.P, g.P,
                           0.0, y + (n * g.Co + gi * g.Cog) * g.P, g.P));
  }
  return VR_OK;
}

template <typename T> vr_status im2col_bwd(const vr_kernel_args *a, const geo &g) {
  cudaStream_t s = vr_cuda_stream();
  vr_dtype dt = a->in[1]->dtype;
  const T *gy = (const T *)vr_data(a->in[0]), *x = (const T *)vr_data(a->in[1]), *w = (const T *)vr_data(a->in[2]);
  T *gx = a->out[0] ? (T *)vr_data(a->out[0]) : nullptr, *gw = a->out[1] ? (T *)vr_data(a->out[1]) : nullptr;
  int64_t ncol = g.C * g.kh * g.kw * g.P;
  vr_cu_buf col;
  VR_TRY(col.get(sizeof(T) * (size_t)ncol));
  for (int64_t n = 0; n < g.N; n++) {
    const T *gyn = gy + n * g.Co * g.P;
    if (gw) { /* gw_g [Cog, K] (+)= gy_g [Cog, P] col_g^T [P, K], samples in order */
      im2col_k<T><<<vr_cu_blocks(ncol), VR_CU_THREADS, 0, s>>>(x + n * g.C * g.H * g.W, col.as<T>(), g);
      VR_CU_LAUNCHED("im2col");
      for (int64_t gi = 0; gi < g.G; gi++)
        VR_TRY(vr_cu_gemm_rm(dt, 0, 1, g.Cog, g.K, g.P, 1.0, gyn + gi * g.Cog * g.P, g.P, col.as<T>() + gi * g.K * g.P,
                             g.P, n == 0 ? 0.0 : 1.0, gw + gi * g.Cog * g.K, g.K));
    }
    if (gx) { /* dcol_g [K, P] = W_g^T [K, Cog] gy_g [Cog, P], then gathered into the planes */
      for (int64_t gi = 0; gi < g.G; gi++)
        VR_TRY(vr_cu_gemm_rm(dt, 1, 0, g.K, g.P, g.Cog, 1.0, w + gi * g.Cog * g.K, g.K, gyn + gi * g.Cog * g.P, g.P, 0.0,
                             col.as<T>() + gi * g.K * g.P, g.P));
      col2im_k<T><<<vr_cu_blocks(g.C * g.H * g.W), VR_CU_THREADS, 0, s>>>(col.as<T>(), gx + n * g.C * g.H * g.W, g);
      VR_CU_LAUNCHED("col2im");
    }
  }
  return VR_OK;
}

/* bf16 on the im2col path: the backward runs in f32 on f32 twins of the tensors (one rounding at
 * the end, as cuDNN and the CPU do; a bf16 GEMM with beta = 1 would round grad_w once per sample) */
template <typename F> vr_status via_f32(const vr_kernel_args *a, F fn) {
  vr_kernel_args f = *a;
  vr_status st = VR_OK;
  for (int k = 0; k < 8; k++) f.in[k] = nullptr;
  for (int k = 0; k < 4; k++) f.out[k] = nullptr;
  for (int k = 0; k < a->n_in && !st; k++) {
    if (!a->in[k]) continue;
    st = vr_tensor_alloc(a->in[k]->ndim, a->in[k]->shape, VR_F32, a->in[k]->device, &f.in[k]);
    vr_kernel_args c = {};
    c.in[0] = a->in[k];
    c.n_in = 1;
    c.out[0] = f.in[k];
    c.n_out = 1;
    if (!st) st = vr_dispatch(VR_OP_COPY, a->in[k]->device, 0, &c);
  }
  for (int k = 0; k < a->n_out && !st; k++)
    if (a->out[k]) st = vr_tensor_alloc(a->out[k]->ndim, a->out[k]->shape, VR_F32, a->out[k]->device, &f.out[k]);
  if (!st) st = fn(&f);
  for (int k = 0; k < a->n_out && !st; k++)
    if (a->out[k]) {
      vr_kernel_args c = {};
      c.in[0] = f.out[k];
      c.n_in = 1;
      c.out[0] = a->out[k];
      c.n_out = 1;
      st = vr_dispatch(VR_OP_COPY, a->out[k]->device, 0, &c);
    }
  for (int k = 0; k < 8; k++) vr_tensor_free(f.in[k]);
  for (int k = 0; k < 4; k++) vr_tensor_free(f.out[k]);
  return st;
}

/* ---------------------------------------------------------------- NHWC without cuDNN */

/* out[n, b, a] = in[n, a, b]: NHWC -> NCHW with (A, B) = (H W, C), filters [Co, kh kw, Cg] ->
 * [Co, Cg, kh kw], and back with A and B swapped */
template <typename T> __global__ void swap_last2_k(const T *__restrict__ in, T *__restrict__ out, int64_t N, int64_t A, int64_t B) {
  int64_t total = N * A * B;
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < total; e += (int64_t)gridDim.x * blockDim.x) {
    int64_t a = e % A, r = e / A, b = r % B, n = r / B;
    out[e] = in[(n * A + a) * B + b];
  }
}

vr_status swap_last2(const vr_tensor *in, vr_tensor *out, int64_t N, int64_t A, int64_t B) {
  int64_t total = N * A * B;
  if (!total) return VR_OK;
  VR_CU_FLOAT_SWITCH(in->dtype, "x", {
    swap_last2_k<T><<<vr_cu_blocks(total), VR_CU_THREADS, 0, vr_cuda_stream()>>>((const T *)vr_data(in), (T *)vr_data(out), N,
                                                                                 A, B);
    VR_CU_LAUNCHED("conv2d nhwc transpose");
  });
  return VR_OK;
}

/* an NHWC call without cuDNN: the NCHW code on transposed copies (x, w and grad_y in; y, grad_x and
 * grad_w out; bias and grad_b need none). fwd: a = {x, w, b} -> {y}; bwd: a = {gy, x, w} -> {gx, gw, gb}. */
template <typename F> vr_status via_nchw(const vr_kernel_args *a, const geo &g, bool bwd, F fn) {
  geo n = g;
  n.nhwc = false;
  vr_kernel_args c = *a;
  c.i[7] = 0;
  vr_tensor *tmp[6] = {nullptr, nullptr, nullptr, nullptr, nullptr, nullptr};
  const int64_t xs[4] = {g.N, g.C, g.H, g.W}, ws[4] = {g.Co, g.Cg, g.kh, g.kw}, ys[4] = {g.N, g.Co, g.Ho, g.Wo};
  const int64_t *in_shape[3] = {bwd ? ys : xs, bwd ? xs : ws, bwd ? ws : nullptr};
  const int64_t *out_shape[2] = {bwd ? xs : ys, bwd ? ws : nullptr};
  vr_status st = VR_OK;
  for (int k = 0; k < 3 && !st; k++) /* inputs: [N, A, B] with B the channels (Cg for filters) */
    if (in_shape[k] && a->in[k]) {
      st = vr_tensor_alloc(4, in_shape[k], a->in[k]->dtype, a->in[k]->device, &tmp[k]);
      const int64_t *sh = in_shape[k];
      if (!st) st = swap_last2(a->in[k], tmp[k], sh[0], sh[2] * sh[3], sh[1]);
      c.in[k] = tmp[k];
    }
  for (int k = 0; k < 2 && !st; k++)
    if (out_shape[k] && a->out[k]) {
      st = vr_tensor_alloc(4, out_shape[k], a->out[k]->dtype, a->out[k]->device, &tmp[3 + k]);
      c.out[k] = tmp[3 + k];
    }
  if (!st) st = fn(&c, n);
  for (int k = 0; k < 2 && !st; k++)
    if (tmp[3 + k]) {
      const int64_t *sh = out_shape[k];
      st = swap_last2(tmp[3 + k], a->out[k], sh[0], sh[1], sh[2] * sh[3]);
    }
  for (int k = 0; k < 6; k++) vr_tensor_free(tmp[k]);
  return st;
}

#ifdef VR_HAVE_CUDNN
bool force_im2col(void) { return vr_variants[VR_VARIANT_CONV] == VR_CONV_IM2COL; }
vr_status dnn_fwd(const vr_kernel_args *a, const geo &g) { return vr_cudnn_conv_fwd(a, g); }
vr_status dnn_bwd(const vr_kernel_args *a, const geo &g) { return vr_cudnn_conv_bwd(a, g); }
#endif

/* ---------------------------------------------------------------- entry points */

template <typename T> vr_status fwd_typed(const vr_kernel_args *a, const geo &g) {
  vr_tensor *y = a->out[0];
  int64_t ny = vr_tensor_numel(y);
  if (!ny) return VR_OK;
  cudaStream_t s = vr_cuda_stream();
  if (g.K == 0) { /* no input channels: y = bias (or 0) */
    VR_CU(cudaMemsetAsync(vr_data(y), 0, (size_t)ny * sizeof(T), s));
  } else {
    bool done = false;
#ifdef VR_HAVE_CUDNN
    if (!force_im2col()) {
      vr_status st = dnn_fwd(a, g);
      if (st != VR_OK && st != VR_E_UNSUPPORTED) return st;
      done = st == VR_OK;
      if (!done && std::is_same<T, vr_bf16>::value) { /* no bf16 algorithm: cuDNN in f32 on f32 twins beats im2col */
        st = via_f32(a, [&g](const vr_kernel_args *f) { return dnn_fwd(f, g); });
        if (st != VR_OK && st != VR_E_UNSUPPORTED) return st;
        done = st == VR_OK;
      }
    }
#endif
    if (!done && g.nhwc) VR_TRY(via_nchw(a, g, false, [](const vr_kernel_args *c, const geo &n) { return im2col_fwd<T>(c, n); }));
    else if (!done) VR_TRY(im2col_fwd<T>(a, g));
  }
  if (a->in[2]) {
    add_bias_k<T><<<vr_cu_blocks(ny), VR_CU_THREADS, 0, s>>>((T *)vr_data(y), (const T *)vr_data(a->in[2]), g.Co,
                                                             g.nhwc ? 1 : g.P, ny);
    VR_CU_LAUNCHED("conv2d bias");
  }
  return VR_OK;
}

template <typename T> vr_status bwd_typed(const vr_kernel_args *a, const geo &g) {
  cudaStream_t s = vr_cuda_stream();
  vr_tensor *gx = a->out[0], *gw = a->out[1], *gb = a->out[2];
  if (gb && g.Co) {
    if (g.N * g.P == 0) VR_CU(cudaMemsetAsync(vr_data(gb), 0, (size_t)g.Co * sizeof(T), s));
    else VR_TRY(bias_grad<T>(g, vr_data(a->in[0]), vr_data(gb)));
  }
  int64_t nx = gx ? vr_tensor_numel(gx) : 0, nw = gw ? vr_tensor_numel(gw) : 0;
  if (!nx && !nw) return VR_OK;
  if (g.N == 0 || g.P == 0 || g.K == 0 || g.Co == 0) { /* nothing flows: zeros */
    if (nx) VR_CU(cudaMemsetAsync(vr_data(gx), 0, (size_t)nx * sizeof(T), s));
    if (nw) VR_CU(cudaMemsetAsync(vr_data(gw), 0, (size_t)nw * sizeof(T), s));
    return VR_OK;
  }
  vr_kernel_args b = *a; /* the grads that have elements; grad_b is done */
  b.out[0] = nx ? gx : nullptr;
  b.out[1] = nw ? gw : nullptr;
  b.out[2] = nullptr;
#ifdef VR_HAVE_CUDNN
  if (!force_im2col()) {
    vr_status st = dnn_bwd(&b, g);
    if (st == VR_OK) return VR_OK;
    if (st != VR_E_UNSUPPORTED) return st;
  }
#endif
  if (getenv("VISREG_CUDA_CONV_VERBOSE"))
    fprintf(stderr, "visreg conv2d bwd %s N%lld C%lld %lldx%lld Co%lld: no cuDNN algorithm, %s\n", vr_dtype_name(a->in[1]->dtype),
            (long long)g.N, (long long)g.C, (long long)g.H, (long long)g.W, (long long)g.Co,
            std::is_same<T, vr_bf16>::value ? "f32 twins" : "im2col");
  if (std::is_same<T, vr_bf16>::value) /* f32 twins in the call's layout: cuDNN in f32 if it has an algorithm, else im2col */
    return via_f32(&b, [&g](const vr_kernel_args *f32) {
#ifdef VR_HAVE_CUDNN
      if (!force_im2col()) {
        vr_status st = dnn_bwd(f32, g);
        if (st != VR_E_UNSUPPORTED) return st;
      }
#endif
      if (!g.nhwc) return im2col_bwd<float>(f32, g);
      return via_nchw(f32, g, true, [](const vr_kernel_args *c, const geo &n) { return im2col_bwd<float>(c, n); });
    });
  if (!g.nhwc) return im2col_bwd<T>(&b, g);
  return via_nchw(&b, g, true, [](const vr_kernel_args *c, const geo &n) { return im2col_bwd<T>(c, n); });
}

vr_status conv_fwd(const vr_kernel_args *a) {
  geo g = make_geo(a->in[0], a->in[1], a->i);
  VR_CU_FLOAT_SWITCH(a->in[0]->dtype, "x", return fwd_typed<T>(a, g));
  return VR_OK;
}
vr_status conv_bwd(const vr_kernel_args *a) {
  geo g = make_geo(a->in[1], a->in[2], a->i);
  VR_CU_FLOAT_SWITCH(a->in[1]->dtype, "x", return bwd_typed<T>(a, g));
  return VR_OK;
}

} // namespace

extern "C" {
void vr_cuda_set_conv_benchmark(int on) { vr_cu_conv_benchmark = on ? 1 : 0; }
vr_status vr_cuda_conv2d_fwd(const vr_kernel_args *a) { return conv_fwd(a); }
vr_status vr_cuda_conv2d_bwd(const vr_kernel_args *a) { return conv_bwd(a); }
void vr_cuda_register_conv(void) { vr_kernel_register(VR_OP_CONV2D, VR_CUDA, vr_cuda_conv2d_fwd, vr_cuda_conv2d_bwd); }
}
