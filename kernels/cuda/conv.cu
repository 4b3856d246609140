/* conv.cu: CUDA conv2d (fwd, bwd) as im2col + cuBLAS, with the argument layout of core/ops/conv.c:
 *   i = {stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups}
 *   fwd: in = {x [N, C, H, W], w [Co, C/G, kh, kw], bias [Co] | NULL}, out = {y [N, Co, Ho, Wo]}
 *   bwd: in = {grad_y, x, w}, out = {grad_x | NULL, grad_w | NULL, grad_b | NULL}
 *   every tensor contiguous, outputs fresh and overwritten in full.
 * Images go in chunks (the column buffer stays under 256 MiB). Per chunk and group:
 *   y_n = W_g cols_n                       (strided-batched GEMM, W shared)
 *   part_n = gy_n cols_n^T, grad_w += sum_n part_n   (partials summed in image order)
 *   dcols_n = W_g^T gy_n, then col2im by gathering (each input element sums its taps in order)
 * grad_b: one block per output channel, fixed tree. Deterministic, no atomics. f32 and f64. */
#include "blockreduce.cuh"
#include <cublas_v2.h>

vr_status vr_cuda_cublas(cublasHandle_t *h); /* linalg.cu */

namespace {

struct cgeo {
  int64_t N, C, H, W, Co, kh, kw, Ho, Wo;
  int64_t sh, sw, ph, pw, dh, dw, G, Cg, Cog, K, P;
};
cgeo geo_of(const vr_tensor *x, const vr_tensor *w, const vr_tensor *y, const int64_t *iv) {
  cgeo g;
  g.N = x->shape[0], g.C = x->shape[1], g.H = x->shape[2], g.W = x->shape[3];
  g.Co = w->shape[0], g.kh = w->shape[2], g.kw = w->shape[3];
  g.Ho = y->shape[2], g.Wo = y->shape[3];
  g.sh = iv[0], g.sw = iv[1], g.ph = iv[2], g.pw = iv[3], g.dh = iv[4], g.dw = iv[5], g.G = iv[6] > 0 ? iv[6] : 1;
  g.Cg = g.C / g.G, g.Cog = g.Co / g.G;
  g.K = g.Cg * g.kh * g.kw;
  g.P = g.Ho * g.Wo;
  return g;
}

#define LOOP(i, n) for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < (n); i += (int64_t)gridDim.x * blockDim.x)

/* cols[l][k][p] for images n0 .. n0+nb-1 of group grp */
template <typename T> __global__ void im2col(const T *x, T *cols, cgeo g, int64_t n0, int64_t nb, int64_t grp) {
  LOOP(e, nb * g.K * g.P) {
    int64_t p = e % g.P, k = (e / g.P) % g.K, l = e / (g.P * g.K);
    int64_t j = k % g.kw, i = (k / g.kw) % g.kh, c = k / (g.kw * g.kh);
    int64_t ow = p % g.Wo, oh = p / g.Wo;
    int64_t ih = oh * g.sh - g.ph + i * g.dh, iw = ow * g.sw - g.pw + j * g.dw;
    T v = (T)0;
    if (ih >= 0 && ih < g.H && iw >= 0 && iw < g.W) v = x[(((n0 + l) * g.C + grp * g.Cg + c) * g.H + ih) * g.W + iw];
    cols[e] = v;
  }
}
/* grad_x of images n0.. for group grp from dcols[l][k][p]: each element sums its taps in (i, j) order */
template <typename T> __global__ void col2im(const T *dcols, T *gx, cgeo g, int64_t n0, int64_t nb, int64_t grp) {
  LOOP(e, nb * g.Cg * g.H * g.W) {
    int64_t iw = e % g.W, ih = (e / g.W) % g.H, c = (e / (g.W * g.H)) % g.Cg, l = e / (g.W * g.H * g.Cg);
    T s = (T)0;
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
        s += dcols[(l * g.K + (c * g.kh + i) * g.kw + j) * g.P + oh * g.Wo + ow];
      }
    }
    gx[(((n0 + l) * g.C + grp * g.Cg + c) * g.H + ih) * g.W + iw] = s;
  }
}
template <typename T> __global__ void add_bias(T *y, const T *b, int64_t total, int64_t Co, int64_t P) {
  LOOP(e, total) y[e] += b[(e / P) % Co];
}
/* gw (+)= sum over l of part[l] (Cog x K each), in l order */
template <typename T> __global__ void sum_parts(const T *part, T *gw, int64_t nb, int64_t n, int first) {
  LOOP(e, n) {
    T s = first ? (T)0 : gw[e];
    for (int64_t l = 0; l < nb; l++) s += part[l * n + e];
    gw[e] = s;
  }
}
template <typename T> __global__ void bias_grad(const T *gy, T *gb, cgeo g) {
  __shared__ double sh[256];
  for (int64_t co = blockIdx.x; co < g.Co; co += gridDim.x) {
    double s = 0;
    for (int64_t m = threadIdx.x; m < g.N * g.P; m += blockDim.x) {
      int64_t n = m / g.P, p = m - n * g.P;
      s += (double)gy[(n * g.Co + co) * g.P + p];
    }
    s = vr_cu_block_reduce<vr_cu_sum_op>(s, sh);
    if (threadIdx.x == 0) gb[co] = (T)s;
  }
}

#define VR_CUBLAS(call)                                                                                        \
  do {                                                                                                         \
    cublasStatus_t vr_cb_s_ = (call);                                                                          \
    if (vr_cb_s_ != CUBLAS_STATUS_SUCCESS)                                                                     \
      return vr_error_set(VR_E_CUDA, __func__, __FILE__, __LINE__, "%s: %s", #call, cublasGetStatusString(vr_cb_s_)); \
  } while (0)

/* column-major C = op(A) op(B), batched with strides */
vr_status gemm(cublasHandle_t h, cublasOperation_t oa, cublasOperation_t ob, int64_t m, int64_t n, int64_t k, const float *A,
               int64_t lda, int64_t sa, const float *B, int64_t ldb, int64_t sb, float *C, int64_t ldc, int64_t sc, int64_t batch) {
  const float one = 1, zero = 0;
  VR_CUBLAS(cublasSgemmStridedBatched(h, oa, ob, (int)m, (int)n, (int)k, &one, A, (int)lda, sa, B, (int)ldb, sb, &zero, C,
                                      (int)ldc, sc, (int)batch));
  return VR_OK;
}
vr_status gemm(cublasHandle_t h, cublasOperation_t oa, cublasOperation_t ob, int64_t m, int64_t n, int64_t k, const double *A,
               int64_t lda, int64_t sa, const double *B, int64_t ldb, int64_t sb, double *C, int64_t ldc, int64_t sc, int64_t batch) {
  const double one = 1, zero = 0;
  VR_CUBLAS(cublasDgemmStridedBatched(h, oa, ob, (int)m, (int)n, (int)k, &one, A, (int)lda, sa, B, (int)ldb, sb, &zero, C,
                                      (int)ldc, sc, (int)batch));
  return VR_OK;
}

/* images per chunk: the column buffer (and the grad_w partials) under 256 MiB */
int64_t chunk_of(const cgeo &g, size_t es) {
  int64_t per = (g.K * g.P + g.Cog * g.K) * (int64_t)es;
  int64_t nb = per > 0 ? ((int64_t)256 << 20) / per : g.N;
  if (nb < 1) nb = 1;
  if (nb > g.N) nb = g.N;
  if (nb > 65535) nb = 65535;
  return nb;
}

#define CU_OK(expr, what)                                                                               \
  do {                                                                                                  \
    cudaError_t e_ = (expr);                                                                            \
    if (e_ == cudaSuccess) e_ = cudaGetLastError();                                                     \
    if (e_ != cudaSuccess) {                                                                            \
      st = VR_FAIL(VR_E_CUDA, "%s: %s (%s)", what, cudaGetErrorString(e_), cudaGetErrorName(e_));       \
      goto done;                                                                                        \
    }                                                                                                   \
  } while (0)

template <typename T> vr_status conv_fwd_typed(const vr_kernel_args *a) {
  const vr_tensor *x = a->in[0], *w = a->in[1], *b = a->in[2];
  vr_tensor *y = a->out[0];
  cgeo g = geo_of(x, w, y, a->i);
  int64_t total = g.N * g.Co * g.P;
  if (!total) return VR_OK;
  cudaStream_t s = vr_cuda_stream();
  vr_status st = VR_OK;
  T *cols = nullptr;
  int64_t nb = chunk_of(g, sizeof(T));
  size_t cb = sizeof(T) * (size_t)(nb * g.K * g.P);
  cublasHandle_t h = nullptr;
  if (g.K == 0) { /* no taps: bias only */
    VR_CU(cudaMemsetAsync(vr_data(y), 0, sizeof(T) * (size_t)total, s));
  } else {
    VR_TRY(vr_cuda_cublas(&h));
    VR_TRY(vr_cuda_scratch(cb, (void **)&cols));
    for (int64_t n0 = 0; n0 < g.N; n0 += nb) {
      int64_t cnt = g.N - n0 < nb ? g.N - n0 : nb;
      for (int64_t grp = 0; grp < g.G; grp++) {
        im2col<T><<<vr_cu_blocks(cnt * g.K * g.P), VR_CU_THREADS, 0, s>>>((const T *)vr_data(x), cols, g, n0, cnt, grp);
        CU_OK(cudaSuccess, "im2col");
        /* y_n^T (P x Cog, ld P) = cols_n^T (P x K: cols row-major K x P, ld P) * W_g^T (K x Cog: W row-major Cog x K) */
        T *yp = (T *)vr_data(y) + (n0 * g.Co + grp * g.Cog) * g.P;
        const T *wp = (const T *)vr_data(w) + grp * g.Cog * g.K;
        VR_TRYG(gemm(h, CUBLAS_OP_N, CUBLAS_OP_N, g.P, g.Cog, g.K, cols, g.P, g.K * g.P, wp, g.K, 0, yp, g.P, g.Co * g.P, cnt));
      }
    }
  }
  if (b) {
    add_bias<T><<<vr_cu_blocks(total), VR_CU_THREADS, 0, s>>>((T *)vr_data(y), (const T *)vr_data(b), total, g.Co, g.P);
    CU_OK(cudaSuccess, "bias");
  }
done:
  if (cols) vr_cuda_scratch_free(cols, cb);
  return st;
}

template <typename T> vr_status conv_bwd_typed(const vr_kernel_args *a) {
  const vr_tensor *gy = a->in[0], *x = a->in[1], *w = a->in[2];
  vr_tensor *gx = a->out[0], *gw = a->out[1], *gb = a->out[2];
  cgeo g = geo_of(x, w, gy, a->i);
  cudaStream_t s = vr_cuda_stream();
  vr_status st = VR_OK;
  T *cols = nullptr, *part = nullptr;
  int64_t nb = chunk_of(g, sizeof(T));
  size_t cb = sizeof(T) * (size_t)(nb * g.K * g.P), pb = sizeof(T) * (size_t)(nb * g.Cog * g.K);
  cublasHandle_t h = nullptr;
  if (gb) {
    if (g.Co) {
      bias_grad<T><<<(unsigned)(g.Co < 65535 ? g.Co : 65535), 256, 0, s>>>((const T *)vr_data(gy), (T *)vr_data(gb), g);
      CU_OK(cudaSuccess, "bias gradient");
    }
  }
  if (gw && vr_tensor_numel(gw)) {
    if (!g.N || !g.P) VR_CU(cudaMemsetAsync(vr_data(gw), 0, sizeof(T) * (size_t)vr_tensor_numel(gw), s));
  }
  if (gx && vr_tensor_numel(gx)) {
    if (!g.K || !g.Co || !g.P) VR_CU(cudaMemsetAsync(vr_data(gx), 0, sizeof(T) * (size_t)vr_tensor_numel(gx), s));
  }
  if (!g.N || !g.K || !g.P || !g.Co) goto done;
  VR_TRYG(vr_cuda_cublas(&h));
  VR_TRYG(vr_cuda_scratch(cb, (void **)&cols));
  if (gw) VR_TRYG(vr_cuda_scratch(pb, (void **)&part));
  for (int64_t n0 = 0; n0 < g.N; n0 += nb) {
    int64_t cnt = g.N - n0 < nb ? g.N - n0 : nb;
    for (int64_t grp = 0; grp < g.G; grp++) {
      const T *gyp = (const T *)vr_data(gy) + (n0 * g.Co + grp * g.Cog) * g.P;
      const T *wp = (const T *)vr_data(w) + grp * g.Cog * g.K;
      if (gw) {
        im2col<T><<<vr_cu_blocks(cnt * g.K * g.P), VR_CU_THREADS, 0, s>>>((const T *)vr_data(x), cols, g, n0, cnt, grp);
        CU_OK(cudaSuccess, "im2col");
        /* part_n^T (K x Cog, ld K) = cols_n (K x P: op T of the P x K view) * gy_n^T (P x Cog, ld P) */
        VR_TRYG(gemm(h, CUBLAS_OP_T, CUBLAS_OP_N, g.K, g.Cog, g.P, cols, g.P, g.K * g.P, gyp, g.P, g.Co * g.P, part, g.K,
                     g.Cog * g.K, cnt));
        T *gwp = (T *)vr_data(gw) + grp * g.Cog * g.K;
        sum_parts<T><<<vr_cu_blocks(g.Cog * g.K), VR_CU_THREADS, 0, s>>>(part, gwp, cnt, g.Cog * g.K, n0 == 0);
        CU_OK(cudaSuccess, "grad_w partial sums");
      }
      if (gx) {
        /* dcols_n^T (P x K, ld P) = gy_n^T (P x Cog, ld P) * W_g (Cog x K: op T of the K x Cog view) */
        VR_TRYG(gemm(h, CUBLAS_OP_N, CUBLAS_OP_T, g.P, g.K, g.Cog, gyp, g.P, g.Co * g.P, wp, g.K, 0, cols, g.P, g.K * g.P, cnt));
        col2im<T><<<vr_cu_blocks(cnt * g.Cg * g.H * g.W), VR_CU_THREADS, 0, s>>>(cols, (T *)vr_data(gx), g, n0, cnt, grp);
        CU_OK(cudaSuccess, "col2im");
      }
    }
  }
done:
  if (cols) vr_cuda_scratch_free(cols, cb);
  if (part) vr_cuda_scratch_free(part, pb);
  return st;
}

vr_status conv_fwd(const vr_kernel_args *a) {
  switch (a->in[0]->dtype) {
  case VR_F32: return conv_fwd_typed<float>(a);
  case VR_F64: return conv_fwd_typed<double>(a);
  default: return VR_CU_UNSUPPORTED_DTYPE("x", a->in[0]->dtype);
  }
}
vr_status conv_bwd(const vr_kernel_args *a) {
  switch (a->in[1]->dtype) {
  case VR_F32: return conv_bwd_typed<float>(a);
  case VR_F64: return conv_bwd_typed<double>(a);
  default: return VR_CU_UNSUPPORTED_DTYPE("x", a->in[1]->dtype);
  }
}

} // namespace

extern "C" {
vr_status vr_cuda_conv2d_fwd(const vr_kernel_args *a) { return conv_fwd(a); }
vr_status vr_cuda_conv2d_bwd(const vr_kernel_args *a) { return conv_bwd(a); }
void vr_cuda_register_conv(void) { vr_kernel_register(VR_OP_CONV2D, VR_CUDA, vr_cuda_conv2d_fwd, vr_cuda_conv2d_bwd); }
}
