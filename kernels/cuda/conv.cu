/* conv.cu: CUDA conv2d forward and backward with the argument layout of core/ops/conv.c
 * (i = {sh, sw, ph, pw, dh, dw, groups, layout}; layout 1: NHWC, x [N, H, W, C], w [Co, kh, kw, Cg],
 * y [N, Ho, Wo, Co]; fwd in = {x, w, bias or NULL}, out = {y}; bwd in = {grad_y, x, w}, out =
 * {grad_x, grad_w, grad_b}, each NULL when not wanted; all contiguous, every output element
 * overwritten).
 *
 * With cuDNN (VR_HAVE_CUDNN), in order:
 *  1. a cached execution plan of the graph API (conv_plan.cu): deterministic engines, host cost of
 *     a few us per call (the variant conv=legacy skips it);
 *  2. the legacy calls cudnnConvolutionForward / BackwardData / BackwardFilter, one handle per
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

namespace {
int conv_benchmark = -1; /* -1: from the environment (VISREG_CUDA_CONV_FIND) */

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

/* ---------------------------------------------------------------- cuDNN */
#ifdef VR_HAVE_CUDNN

bool tf32_allowed(void) {
  const char *e = getenv("VISREG_CUDA_TF32");
  return e && e[0] == '1';
}
/* benchmark mode (vr_cuda_set_conv_benchmark, or VISREG_CUDA_CONV_FIND=1): each geometry's
 * algorithm is the fastest deterministic one that cuDNN measures on the first call (like
 * torch.backends.cudnn.benchmark), not the heuristics' first */
bool find_mode(void) {
  if (conv_benchmark >= 0) return conv_benchmark == 1;
  const char *e = getenv("VISREG_CUDA_CONV_FIND");
  return e && e[0] == '1';
}
bool force_im2col(void) { return vr_variants[VR_VARIANT_CONV] == VR_CONV_IM2COL; }

#define VR_DNN(call)                                                                                     \
  do {                                                                                                   \
    cudnnStatus_t vr_dnn_s_ = (call);                                                                    \
    if (vr_dnn_s_ != CUDNN_STATUS_SUCCESS)                                                               \
      return vr_error_set(VR_E_CUDA, __func__, __FILE__, __LINE__, "%s: %s", #call,                      \
                          cudnnGetErrorString(vr_dnn_s_));                                               \
  } while (0)

/* statuses that mean "cuDNN cannot do this call here" (fall back), not a fault: NOT_SUPPORTED and
 * BAD_PARAM with their cuDNN 9 sub-codes, and a cnn sub-library that does not load */
bool dnn_soft(cudnnStatus_t s) {
  int c = CUDNN_STATUS_CATEGORY((int)s);
  return c == CUDNN_STATUS_NOT_SUPPORTED || c == CUDNN_STATUS_BAD_PARAM || s == CUDNN_STATUS_SUBLIBRARY_LOADING_FAILED ||
         s == CUDNN_STATUS_SUBLIBRARY_VERSION_MISMATCH;
}
bool dnn_verbose(void) { return getenv("VISREG_CUDA_CONV_VERBOSE") != nullptr; }

/* VR_OK on success; VR_E_UNSUPPORTED for a soft status (the caller falls back; said when verbose);
 * else the error, recorded against func */
vr_status dnn_status(cudnnStatus_t s, const char *call, const char *func, int line) {
  if (s == CUDNN_STATUS_SUCCESS) return VR_OK;
  if (!dnn_soft(s)) return vr_error_set(VR_E_CUDA, func, __FILE__, line, "%s: %s", call, cudnnGetErrorString(s));
  if (dnn_verbose()) fprintf(stderr, "visreg conv2d: %s: %s, falling back\n", call, cudnnGetErrorString(s));
  return VR_E_UNSUPPORTED;
}
/* VR_DNN, but a soft status is VR_E_UNSUPPORTED */
#define VR_DNN_SOFT(call)                                                     \
  do {                                                                        \
    vr_status vr_dnn_st_ = dnn_status((call), #call, __func__, __LINE__);     \
    if (vr_dnn_st_ != VR_OK) return vr_dnn_st_;                               \
  } while (0)

std::mutex dnn_mu;
cudnnHandle_t dnn_handle[16];
bool dnn_handle_made; /* the exit hook is registered */
bool dnn_broken[16]; /* cudnnCreate failed (e.g. a cuDNN runtime that does not match): im2col from then on */

/* at exit, so that a leak check sees cuDNN's buffers returned */
void destroy_handles_at_exit(void) {
  std::lock_guard<std::mutex> lock(dnn_mu);
  for (int d = 0; d < 16; d++)
    if (dnn_handle[d]) {
      cudnnDestroy(dnn_handle[d]);
      dnn_handle[d] = nullptr;
    }
}

/* VR_OK with a handle bound to the backend's stream; VR_E_UNSUPPORTED (no message) when cuDNN
 * cannot be used on this device, so that the caller falls back to im2col */
vr_status dnn_get(cudnnHandle_t *out) {
  int dev = 0;
  VR_CU(cudaGetDevice(&dev));
  if (dev < 0 || dev >= 16) return VR_E_UNSUPPORTED;
  std::lock_guard<std::mutex> lock(dnn_mu);
  if (dnn_broken[dev]) return VR_E_UNSUPPORTED;
  if (!dnn_handle[dev]) {
    cudnnHandle_t h = nullptr;
    if (cudnnCreate(&h) != CUDNN_STATUS_SUCCESS) {
      dnn_broken[dev] = true;
      cudaGetLastError();
      return VR_E_UNSUPPORTED;
    }
    cudnnStatus_t st = cudnnSetStream(h, vr_cuda_stream());
    if (st != CUDNN_STATUS_SUCCESS) {
      cudnnDestroy(h);
      return VR_FAIL(VR_E_CUDA, "cudnnSetStream: %s", cudnnGetErrorString(st));
    }
    if (!dnn_handle_made) atexit(destroy_handles_at_exit);
    dnn_handle_made = true;
    dnn_handle[dev] = h;
  }
  *out = dnn_handle[dev];
  return VR_OK;
}

/* descriptors that destroy themselves */
struct dnn_desc {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  ~dnn_desc() {
    if (x) cudnnDestroyTensorDescriptor(x);
    if (y) cudnnDestroyTensorDescriptor(y);
    if (w) cudnnDestroyFilterDescriptor(w);
    if (conv) cudnnDestroyConvolutionDescriptor(conv);
  }
};

cudnnDataType_t dnn_type(vr_dtype dt) {
  return dt == VR_F64 ? CUDNN_DATA_DOUBLE : dt == VR_BF16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT;
}
cudnnMathType_t dnn_math(vr_dtype dt) {
  if (dt == VR_F32) return tf32_allowed() ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH;
  if (dt == VR_BF16) return CUDNN_TENSOR_OP_MATH; /* bf16 is for the tensor cores */
  return CUDNN_DEFAULT_MATH;
}

vr_status dnn_setup(dnn_desc &d, const geo &g, vr_dtype dt) {
  const int64_t big = INT32_MAX;
  if (g.N > big || g.C > big || g.H > big || g.W > big || g.Co > big || g.N * g.C * g.H * g.W > big ||
      g.N * g.Co * g.P > big)
    return VR_FAIL(VR_E_UNSUPPORTED, "x: tensors of 2^31 elements or more are not supported by the cuDNN path");
  cudnnDataType_t t = dnn_type(dt);
  VR_DNN_SOFT(cudnnCreateTensorDescriptor(&d.x));
  VR_DNN_SOFT(cudnnCreateTensorDescriptor(&d.y));
  VR_DNN_SOFT(cudnnCreateFilterDescriptor(&d.w));
  VR_DNN_SOFT(cudnnCreateConvolutionDescriptor(&d.conv));
  cudnnTensorFormat_t f = g.nhwc ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW; /* NHWC filters: [Co, kh, kw, Cg] */
  VR_DNN_SOFT(cudnnSetTensor4dDescriptor(d.x, f, t, (int)g.N, (int)g.C, (int)g.H, (int)g.W));
  VR_DNN_SOFT(cudnnSetTensor4dDescriptor(d.y, f, t, (int)g.N, (int)g.Co, (int)g.Ho, (int)g.Wo));
  VR_DNN_SOFT(cudnnSetFilter4dDescriptor(d.w, t, f, (int)g.Co, (int)g.Cg, (int)g.kh, (int)g.kw));
  VR_DNN_SOFT(cudnnSetConvolution2dDescriptor(d.conv, (int)g.ph, (int)g.pw, (int)g.sh, (int)g.sw, (int)g.dh, (int)g.dw,
                                         CUDNN_CROSS_CORRELATION,
                                         dt == VR_F64 ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT));
  VR_DNN_SOFT(cudnnSetConvolutionGroupCount(d.conv, (int)g.G));
  VR_DNN_SOFT(cudnnSetConvolutionMathType(d.conv, dnn_math(dt)));
  return VR_OK;
}

/* the chosen algorithm of each (geometry, dtype, direction, math, device); -1: none usable; -2:
 * choose again on the next call, without the algorithms in bad (bit per algorithm) that cuDNN
 * refused to run */
struct algo_pick {
  int algo;
  cudnnMathType_t math;
  size_t ws;
  unsigned bad;
};
std::mutex algo_mu;
std::map<std::array<int64_t, 20>, algo_pick> algo_cache;

std::array<int64_t, 20> algo_key(const geo &g, vr_dtype dt, int dir) {
  int dev = 0;
  cudaGetDevice(&dev); /* checked by dnn_get */
  return {g.N, g.C, g.H, g.W, g.Co, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw, g.G, (int64_t)dt, dir,
          (int64_t)dnn_math(dt), (int64_t)find_mode(), g.nhwc, dev};
}

const size_t kMaxWorkspace = (size_t)1 << 30;

/* accepts a heuristic's entry: it ran, is deterministic, fits, and needs no tensor-op math for f32
 * unless TF32 is allowed (strict f32 then runs it with CUDNN_FMA_MATH: DEFAULT_MATH would allow
 * TF32 on Ampere and later) */
template <typename Perf> bool acceptable(const Perf &p, vr_dtype dt) {
  if (p.status != CUDNN_STATUS_SUCCESS || p.determinism != CUDNN_DETERMINISTIC || p.memory > kMaxWorkspace) return false;
  if (p.mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION) return false; /* may round inputs down to fp16 */
  if (dt == VR_F32 && !tf32_allowed() && p.mathType != CUDNN_FMA_MATH && p.mathType != CUDNN_DEFAULT_MATH) return false;
  return true;
}

cudnnMathType_t exec_math(cudnnMathType_t m, vr_dtype dt) {
  return (dt == VR_F32 && !tf32_allowed()) ? CUDNN_FMA_MATH : m;
}

/* the acceptable entries in the order to try them: from the heuristics (measured = false), for
 * bf16 the tensor-op entries first; for strict f32 the entries that cuDNN reported (and timed) with
 * FMA math first, since every f32 entry runs with FMA math here; else cuDNN's order (fastest first
 * when measured). Returns how many. */
template <typename Perf> int candidates(const Perf *p, int got, vr_dtype dt, bool measured, algo_pick *out) {
  bool strict = dt == VR_F32 && !tf32_allowed();
  int n = 0;
  for (int pass = 0; pass < 2; pass++)
    for (int k = 0; k < got; k++) {
      if (!acceptable(p[k], dt)) continue;
      bool first = dt == VR_BF16 && !measured ? p[k].mathType == CUDNN_TENSOR_OP_MATH
                   : strict                   ? p[k].mathType == CUDNN_FMA_MATH
                                              : true;
      if (first == (pass == 0)) out[n++] = {(int)p[k].algo, exec_math(p[k].mathType, dt), p[k].memory, 0};
    }
  return n;
}

/* the workspace of algo with the math type that d.conv has now (the one it will run with) */
cudnnStatus_t dnn_ws_size(cudnnHandle_t h, const dnn_desc &d, int dir, int algo, size_t *ws) {
  if (dir == 0) return cudnnGetConvolutionForwardWorkspaceSize(h, d.x, d.w, d.conv, d.y, (cudnnConvolutionFwdAlgo_t)algo, ws);
  if (dir == 1)
    return cudnnGetConvolutionBackwardDataWorkspaceSize(h, d.w, d.y, d.conv, d.x, (cudnnConvolutionBwdDataAlgo_t)algo, ws);
  return cudnnGetConvolutionBackwardFilterWorkspaceSize(h, d.x, d.y, d.conv, d.w, (cudnnConvolutionBwdFilterAlgo_t)algo, ws);
}

/* a choice that cuDNN then refuses to run: choose again on the next call, without it */
void forget_algo(const geo &g, vr_dtype dt, int dir, int algo) {
  if (dnn_verbose()) fprintf(stderr, "visreg conv2d dir %d %s: algo %d refused\n", dir, vr_dtype_name(dt), algo);
  std::lock_guard<std::mutex> lock(algo_mu);
  algo_pick &e = algo_cache[algo_key(g, dt, dir)];
  if (algo >= 0 && algo < 32) e.bad |= 1u << algo;
  e.algo = -2;
}

/* the status of a convolution call: a soft status (NOT_SUPPORTED, or a bad param for this
 * algorithm) means "fall back" for this call, and the next call chooses again without this
 * algorithm; other failures are errors */
#define VR_DNN_RUN(call, dir, algo)                                           \
  do {                                                                        \
    vr_status vr_dnn_st_ = dnn_status((call), #call, __func__, __LINE__);     \
    if (vr_dnn_st_ == VR_E_UNSUPPORTED) forget_algo(g, dt, dir, algo);        \
    if (vr_dnn_st_ != VR_OK) return vr_dnn_st_;                               \
  } while (0)

/* dir 0 forward, 1 backward data, 2 backward filter; a: the call's tensors, which find mode runs
 * the candidates on (each writes only the output that the call then overwrites) */
vr_status pick_algo(cudnnHandle_t h, const dnn_desc &d, const geo &g, vr_dtype dt, int dir, const vr_kernel_args *a,
                    algo_pick *out) {
  auto key = algo_key(g, dt, dir);
  unsigned bad = 0;
  {
    std::lock_guard<std::mutex> lock(algo_mu);
    auto it = algo_cache.find(key);
    if (it != algo_cache.end() && it->second.algo != -2) {
      *out = it->second;
      return VR_OK;
    }
    if (it != algo_cache.end()) bad = it->second.bad;
  }
  const int kMax = 16; /* Find may list an algorithm once per math type: 2 x 8 */
  int got = 0, nc = 0;
  algo_pick cand[kMax];
  cudnnStatus_t qs;
  const char *qname;
  if (find_mode()) {
    const size_t find_ws = (size_t)256 << 20;
    vr_cu_buf ws;
    VR_TRY(ws.get(find_ws));
    if (dir == 0) {
      cudnnConvolutionFwdAlgoPerf_t p[kMax];
      qname = "cudnnFindConvolutionForwardAlgorithmEx";
      qs = cudnnFindConvolutionForwardAlgorithmEx(h, d.x, vr_data(a->in[0]), d.w, vr_data(a->in[1]), d.conv, d.y,
                                                  vr_data(a->out[0]), kMax, &got, p, ws.p, find_ws);
      if (qs == CUDNN_STATUS_SUCCESS) nc = candidates(p, got, dt, true, cand);
    } else if (dir == 1) {
      cudnnConvolutionBwdDataAlgoPerf_t p[kMax];
      qname = "cudnnFindConvolutionBackwardDataAlgorithmEx";
      qs = cudnnFindConvolutionBackwardDataAlgorithmEx(h, d.w, vr_data(a->in[2]), d.y, vr_data(a->in[0]), d.conv, d.x,
                                                       vr_data(a->out[0]), kMax, &got, p, ws.p, find_ws);
      if (qs == CUDNN_STATUS_SUCCESS) nc = candidates(p, got, dt, true, cand);
    } else {
      cudnnConvolutionBwdFilterAlgoPerf_t p[kMax];
      qname = "cudnnFindConvolutionBackwardFilterAlgorithmEx";
      qs = cudnnFindConvolutionBackwardFilterAlgorithmEx(h, d.x, vr_data(a->in[1]), d.y, vr_data(a->in[0]), d.conv, d.w,
                                                         vr_data(a->out[1]), kMax, &got, p, ws.p, find_ws);
      if (qs == CUDNN_STATUS_SUCCESS) nc = candidates(p, got, dt, true, cand);
    }
  } else if (dir == 0) {
    cudnnConvolutionFwdAlgoPerf_t p[kMax];
    qname = "cudnnGetConvolutionForwardAlgorithm_v7";
    qs = cudnnGetConvolutionForwardAlgorithm_v7(h, d.x, d.w, d.conv, d.y, kMax, &got, p);
    if (qs == CUDNN_STATUS_SUCCESS) nc = candidates(p, got, dt, false, cand);
  } else if (dir == 1) {
    cudnnConvolutionBwdDataAlgoPerf_t p[kMax];
    qname = "cudnnGetConvolutionBackwardDataAlgorithm_v7";
    qs = cudnnGetConvolutionBackwardDataAlgorithm_v7(h, d.w, d.y, d.conv, d.x, kMax, &got, p);
    if (qs == CUDNN_STATUS_SUCCESS) nc = candidates(p, got, dt, false, cand);
  } else {
    cudnnConvolutionBwdFilterAlgoPerf_t p[kMax];
    qname = "cudnnGetConvolutionBackwardFilterAlgorithm_v7";
    qs = cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, d.x, d.y, d.conv, d.w, kMax, &got, p);
    if (qs == CUDNN_STATUS_SUCCESS) nc = candidates(p, got, dt, false, cand);
  }
  vr_status qst = dnn_status(qs, qname, __func__, __LINE__); /* soft: no algorithm (cached as such) */
  if (qst != VR_OK && qst != VR_E_UNSUPPORTED) return qst;
  /* the first candidate not refused before whose workspace, asked again with the math type that it
   * runs with, cuDNN gives and that fits */
  algo_pick pick = {-1, dnn_math(dt), 0, bad};
  for (int k = 0; k < nc && pick.algo < 0; k++) {
    size_t ws = 0;
    if (cand[k].algo < 32 && (bad >> cand[k].algo & 1u)) continue;
    if (cudnnSetConvolutionMathType(d.conv, cand[k].math) != CUDNN_STATUS_SUCCESS ||
        dnn_ws_size(h, d, dir, cand[k].algo, &ws) != CUDNN_STATUS_SUCCESS || ws > kMaxWorkspace)
      continue;
    pick = cand[k];
    pick.ws = ws > cand[k].ws ? ws : cand[k].ws;
    pick.bad = bad;
  }
  if (dnn_verbose()) /* which algorithm and math each geometry got (tensor ops: math 1) */
    fprintf(stderr, "visreg conv2d %s %s N%lld C%lld %lldx%lld Co%lld k%lldx%lld s%lld g%lld: algo %d math %d ws %zu%s\n",
            dir == 0 ? "fwd" : dir == 1 ? "bwd-data" : "bwd-filter", vr_dtype_name(dt), (long long)g.N, (long long)g.C,
            (long long)g.H, (long long)g.W, (long long)g.Co, (long long)g.kh, (long long)g.kw, (long long)g.sh,
            (long long)g.G, pick.algo, (int)pick.math, pick.ws, pick.algo < 0 ? " (no deterministic algorithm)" : "");
  std::lock_guard<std::mutex> lock(algo_mu);
  algo_cache[key] = pick;
  *out = pick;
  return VR_OK;
}

/* alpha/beta are double for double data, float otherwise */
struct scal {
  double d1 = 1, d0 = 0;
  float f1 = 1, f0 = 0;
  const void *one(vr_dtype dt) const { return dt == VR_F64 ? (const void *)&d1 : (const void *)&f1; }
  const void *zero(vr_dtype dt) const { return dt == VR_F64 ? (const void *)&d0 : (const void *)&f0; }
};

/* VR_OK: done; VR_E_UNSUPPORTED (no message kept): cuDNN has no deterministic algorithm, use im2col */
vr_status dnn_fwd(const vr_kernel_args *a, const geo &g) {
  vr_dtype dt = a->in[0]->dtype;
  cudnnHandle_t h = nullptr;
  VR_TRY(dnn_get(&h));
  vr_status ps = vr_cudnn_plan_run(h, g, dt, VR_CONV_FWD, vr_data(a->in[0]), vr_data(a->in[1]), vr_data(a->out[0]),
                                   find_mode(), tf32_allowed());
  if (ps != VR_E_UNSUPPORTED) return ps;
  dnn_desc d;
  VR_TRY(dnn_setup(d, g, dt));
  algo_pick p;
  VR_TRY(pick_algo(h, d, g, dt, 0, a, &p));
  if (p.algo < 0) return VR_E_UNSUPPORTED;
  VR_DNN(cudnnSetConvolutionMathType(d.conv, p.math));
  vr_cu_buf ws;
  if (p.ws) VR_TRY(ws.get(p.ws));
  scal s;
  VR_DNN_RUN(cudnnConvolutionForward(h, s.one(dt), d.x, vr_data(a->in[0]), d.w, vr_data(a->in[1]), d.conv,
                                 (cudnnConvolutionFwdAlgo_t)p.algo, ws.p, p.ws, s.zero(dt), d.y, vr_data(a->out[0])),
             0, p.algo);
  return VR_OK;
}

vr_status dnn_bwd(const vr_kernel_args *a, const geo &g) {
  vr_dtype dt = a->in[1]->dtype;
  cudnnHandle_t h = nullptr;
  VR_TRY(dnn_get(&h));
  vr_kernel_args rest = *a; /* what the cached plans cannot do goes to the legacy calls */
  if (a->out[0]) {
    vr_status ps = vr_cudnn_plan_run(h, g, dt, VR_CONV_BWD_DATA, vr_data(a->out[0]), vr_data(a->in[2]),
                                     vr_data(a->in[0]), find_mode(), tf32_allowed());
    if (ps == VR_OK) rest.out[0] = nullptr;
    else if (ps != VR_E_UNSUPPORTED) return ps;
  }
  if (a->out[1]) {
    vr_status ps = vr_cudnn_plan_run(h, g, dt, VR_CONV_BWD_FILTER, vr_data(a->in[1]), vr_data(a->out[1]),
                                     vr_data(a->in[0]), find_mode(), tf32_allowed());
    if (ps == VR_OK) rest.out[1] = nullptr;
    else if (ps != VR_E_UNSUPPORTED) return ps;
  }
  if (!rest.out[0] && !rest.out[1]) return VR_OK;
  a = &rest;
  dnn_desc d; /* legacy descriptors only when a plan could not do it (their host time per call) */
  VR_TRY(dnn_setup(d, g, dt));
  algo_pick pd = {-1, CUDNN_DEFAULT_MATH, 0, 0}, pf = {-1, CUDNN_DEFAULT_MATH, 0, 0};
  if (a->out[0]) VR_TRY(pick_algo(h, d, g, dt, 1, a, &pd));
  if (a->out[1]) VR_TRY(pick_algo(h, d, g, dt, 2, a, &pf));
  if ((a->out[0] && pd.algo < 0) || (a->out[1] && pf.algo < 0)) return VR_E_UNSUPPORTED;
  scal s;
  if (a->out[0]) {
    VR_DNN(cudnnSetConvolutionMathType(d.conv, pd.math));
    vr_cu_buf ws;
    if (pd.ws) VR_TRY(ws.get(pd.ws));
    VR_DNN_RUN(cudnnConvolutionBackwardData(h, s.one(dt), d.w, vr_data(a->in[2]), d.y, vr_data(a->in[0]), d.conv,
                                        (cudnnConvolutionBwdDataAlgo_t)pd.algo, ws.p, pd.ws, s.zero(dt), d.x,
                                        vr_data(a->out[0])),
               1, pd.algo);
  }
  if (a->out[1]) {
    VR_DNN(cudnnSetConvolutionMathType(d.conv, pf.math));
    vr_cu_buf ws;
    if (pf.ws) VR_TRY(ws.get(pf.ws));
    VR_DNN_RUN(cudnnConvolutionBackwardFilter(h, s.one(dt), d.x, vr_data(a->in[1]), d.y, vr_data(a->in[0]), d.conv,
                                          (cudnnConvolutionBwdFilterAlgo_t)pf.algo, ws.p, pf.ws, s.zero(dt), d.w,
                                          vr_data(a->out[1])),
               2, pf.algo);
  }
  return VR_OK;
}
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
void vr_cuda_set_conv_benchmark(int on) { conv_benchmark = on ? 1 : 0; }
vr_status vr_cuda_conv2d_fwd(const vr_kernel_args *a) { return conv_fwd(a); }
vr_status vr_cuda_conv2d_bwd(const vr_kernel_args *a) { return conv_bwd(a); }
void vr_cuda_register_conv(void) { vr_kernel_register(VR_OP_CONV2D, VR_CUDA, vr_cuda_conv2d_fwd, vr_cuda_conv2d_bwd); }
}
