/* conv.c: CPU conv2d forward and backward by im2col + OpenBLAS gemm (args documented in
 * core/ops/conv.c). Samples run in parallel on OpenMP threads, each gemm on one BLAS thread;
 * 1x1 stride-1 unpadded convolutions skip im2col. f32 convolutions go to the direct kernels of
 * conv_direct.c instead where vr_cpu_conv_direct_ok says, and 3x3 stride-1 ones with many channels
 * to Winograd's (conv_winograd.c). grad_w sums per-chunk partials in chunk order,
 * the chunks fixed by the batch size alone, so results do not depend on the thread count.
 * A batch too small to fill the threads runs sample by sample with multithreaded gemms.
 * bf16 (autocast, and the reference for the CUDA bf16 convolution): inputs widened to f32 (exact),
 * the f32 kernel (f32 accumulation), outputs rounded to bf16 (nearest even).
 * Channels-last (i[7] = 1): x and w permuted into NCHW scratch copies, the NCHW kernel, the
 * results permuted back: simple and exact; CPU speed does not matter for this layout (it is
 * cuDNN's fast layout on the GPU). */
#include "conv_direct.h"
#include "conv_winograd.h"
#include "cpu.h"
#include <cblas.h>
#include <omp.h>
#include <stdlib.h>

typedef struct {
  int64_t N, C, H, W, Co, kh, kw, Ho, Wo, sh, sw, ph, pw, dh, dw, G, Cg, Cog, K, P;
  int direct; /* 1x1, stride 1, no padding: the input plane is the column matrix */
} geo;

static geo make_geo(const vr_tensor *x, const vr_tensor *w, const int64_t *i) {
  geo g;
  g.N = x->shape[0]; g.C = x->shape[1]; g.H = x->shape[2]; g.W = x->shape[3];
  g.Co = w->shape[0]; g.kh = w->shape[2]; g.kw = w->shape[3];
  g.sh = i[0]; g.sw = i[1]; g.ph = i[2]; g.pw = i[3]; g.dh = i[4]; g.dw = i[5]; g.G = i[6];
  g.Ho = (g.H + 2 * g.ph - g.dh * (g.kh - 1) - 1) / g.sh + 1;
  g.Wo = (g.W + 2 * g.pw - g.dw * (g.kw - 1) - 1) / g.sw + 1;
  g.Cg = g.C / g.G; g.Cog = g.Co / g.G;
  g.K = g.Cg * g.kh * g.kw; g.P = g.Ho * g.Wo;
  g.direct = g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.ph == 0 && g.pw == 0;
  return g;
}

/* row-major gemm in either precision: C = alpha op(A) op(B) + beta C */
static void gemm(vr_dtype dt, int ta, int tb, int64_t m, int64_t n, int64_t k, const void *A, int64_t lda,
                 const void *B, int64_t ldb, double beta, void *C, int64_t ldc) {
  enum CBLAS_TRANSPOSE tA = ta ? CblasTrans : CblasNoTrans, tB = tb ? CblasTrans : CblasNoTrans;
  if (dt == VR_F32)
    cblas_sgemm(CblasRowMajor, tA, tB, (int)m, (int)n, (int)k, 1.0f, A, (int)lda, B, (int)ldb, (float)beta, C, (int)ldc);
  else
    cblas_dgemm(CblasRowMajor, tA, tB, (int)m, (int)n, (int)k, 1.0, A, (int)lda, B, (int)ldb, beta, C, (int)ldc);
}

/* im2col: x holds Cg planes of H x W; col is K x P. col2im adds a K x P matrix back into the
 * planes (which the caller zeroed). */
#define IM2COL(T, NAME)                                                                              \
  static void NAME(const geo *g, const T *x, T *col) {                                               \
    for (int64_t c = 0; c < g->Cg; c++)                                                              \
      for (int64_t i = 0; i < g->kh; i++)                                                            \
        for (int64_t j = 0; j < g->kw; j++) {                                                        \
          T *dst = col + ((c * g->kh + i) * g->kw + j) * g->P;                                       \
          const T *plane = x + c * g->H * g->W;                                                      \
          /* valid output columns: 0 <= ow*sw - pw + j*dw < W */                                     \
          int64_t off = j * g->dw - g->pw, lo = 0, hi = g->Wo;                                       \
          while (lo < g->Wo && lo * g->sw + off < 0) lo++;                                           \
          while (hi > lo && (hi - 1) * g->sw + off >= g->W) hi--;                                    \
          for (int64_t oh = 0; oh < g->Ho; oh++, dst += g->Wo) {                                     \
            int64_t ih = oh * g->sh - g->ph + i * g->dh;                                             \
            if (ih < 0 || ih >= g->H) {                                                              \
              memset(dst, 0, sizeof(T) * (size_t)g->Wo);                                             \
              continue;                                                                              \
            }                                                                                        \
            const T *src = plane + ih * g->W + off;                                                  \
            for (int64_t ow = 0; ow < lo; ow++) dst[ow] = 0;                                         \
            if (g->sw == 1) memcpy(dst + lo, src + lo, sizeof(T) * (size_t)(hi - lo));               \
            else                                                                                     \
              for (int64_t ow = lo; ow < hi; ow++) dst[ow] = src[ow * g->sw];                        \
            for (int64_t ow = hi; ow < g->Wo; ow++) dst[ow] = 0;                                     \
          }                                                                                          \
        }                                                                                            \
  }
#define COL2IM(T, NAME)                                                                              \
  static void NAME(const geo *g, const T *col, T *x) {                                               \
    for (int64_t c = 0; c < g->Cg; c++)                                                              \
      for (int64_t i = 0; i < g->kh; i++)                                                            \
        for (int64_t j = 0; j < g->kw; j++) {                                                        \
          const T *src = col + ((c * g->kh + i) * g->kw + j) * g->P;                                 \
          T *plane = x + c * g->H * g->W;                                                            \
          int64_t off = j * g->dw - g->pw, lo = 0, hi = g->Wo;                                       \
          while (lo < g->Wo && lo * g->sw + off < 0) lo++;                                           \
          while (hi > lo && (hi - 1) * g->sw + off >= g->W) hi--;                                    \
          for (int64_t oh = 0; oh < g->Ho; oh++, src += g->Wo) {                                     \
            int64_t ih = oh * g->sh - g->ph + i * g->dh;                                             \
            if (ih < 0 || ih >= g->H) continue;                                                      \
            T *dst = plane + ih * g->W + off;                                                        \
            for (int64_t ow = lo; ow < hi; ow++) dst[ow * g->sw] += src[ow];                         \
          }                                                                                          \
        }                                                                                            \
  }
IM2COL(float, im2col_f32)
IM2COL(double, im2col_f64)
COL2IM(float, col2im_f32)
COL2IM(double, col2im_f64)

static void im2col(vr_dtype dt, const geo *g, const void *x, void *col) {
  if (dt == VR_F32) im2col_f32(g, x, col);
  else im2col_f64(g, x, col);
}
static void col2im(vr_dtype dt, const geo *g, const void *col, void *x) {
  if (dt == VR_F32) col2im_f32(g, col, x);
  else col2im_f64(g, col, x);
}

/* Parallel regions run their gemms on one BLAS thread each; this saves and restores OpenBLAS's
 * own thread count around them (OpenBLAS 0.3.21 has no per-call setting). */
int vr_cpu_blas_serial_begin(void) {
  if (omp_in_parallel()) return 1; /* a caller's parallel region: leave the process-wide setting */
  int prev = openblas_get_num_threads();
  if (prev != 1) openblas_set_num_threads(1);
  return prev;
}
void vr_cpu_blas_serial_end(int prev) {
  if (prev != 1) openblas_set_num_threads(prev);
}

static vr_status check_dtype(vr_dtype dt) {
  if (dt != VR_F32 && dt != VR_F64)
    return VR_FAIL(VR_E_UNSUPPORTED, "x: conv2d on cpu supports f32, f64 and bf16, got %s", vr_dtype_name(dt));
  return VR_OK;
}

static vr_status conv2d_fwd(const vr_kernel_args *a) {
  const vr_tensor *x = a->in[0], *w = a->in[1], *b = a->in[2];
  vr_tensor *y = a->out[0];
  vr_dtype dt = x->dtype;
  VR_TRY(check_dtype(dt));
  if (vr_cpu_conv_winograd_ok(x, w, a->i)) return vr_cpu_conv_winograd_fwd(x, w, b, a->i, y);
  if (vr_cpu_conv_direct_ok(x, w, a->i)) return vr_cpu_conv_direct_fwd(x, w, b, a->i, y);
  geo g = make_geo(x, w, a->i);
  size_t es = vr_dtype_size(dt);
  const char *px = vr_data(x), *pw = vr_data(w), *pb = b ? vr_data(b) : NULL;
  char *py = vr_data(y);
  /* batch-parallel with one BLAS thread each when the batch can fill the threads; otherwise
   * samples in turn, each gemm on all of BLAS's threads (same results: BLAS splits m and n only) */
  if (!omp_in_parallel() && openblas_get_num_threads() != omp_get_max_threads())
    openblas_set_num_threads(omp_get_max_threads()); /* BLAS follows vr_set_num_threads */
  int par = g.N >= omp_get_max_threads();
  int failed = 0, prev = par ? vr_cpu_blas_serial_begin() : 1;
#pragma omp parallel if (par)
  {
    void *col = g.direct ? NULL : malloc((size_t)(g.K * g.P) * es + 64);
    if (!g.direct && !col) {
#pragma omp atomic write
      failed = 1;
    }
#pragma omp for schedule(dynamic, 1)
    for (int64_t n = 0; n < g.N; n++) {
      if (!g.direct && !col) continue;
      for (int64_t gi = 0; gi < g.G; gi++) {
        const char *xg = px + (size_t)((n * g.C + gi * g.Cg) * g.H * g.W) * es;
        char *yg = py + (size_t)((n * g.Co + gi * g.Cog) * g.P) * es;
        const void *B = xg;
        if (!g.direct) {
          im2col(dt, &g, xg, col);
          B = col;
        }
        gemm(dt, 0, 0, g.Cog, g.P, g.K, pw + (size_t)(gi * g.Cog * g.K) * es, g.K, B, g.P, 0.0, yg, g.P);
      }
      if (pb)
        for (int64_t co = 0; co < g.Co; co++) {
          size_t o = (size_t)((n * g.Co + co) * g.P);
          if (dt == VR_F32) {
            float v = ((const float *)pb)[co], *r = (float *)py + o;
            for (int64_t p = 0; p < g.P; p++) r[p] += v;
          } else {
            double v = ((const double *)pb)[co], *r = (double *)py + o;
            for (int64_t p = 0; p < g.P; p++) r[p] += v;
          }
        }
    }
    free(col);
  }
  vr_cpu_blas_serial_end(prev);
  if (failed) return VR_FAIL(VR_E_OOM, "x: no memory for the im2col buffer (%lld elements)", (long long)(g.K * g.P));
  return VR_OK;
}

static vr_status conv2d_bwd(const vr_kernel_args *a) {
  const vr_tensor *gy = a->in[0], *x = a->in[1], *w = a->in[2];
  vr_tensor *gx = a->out[0], *gw = a->out[1], *gb = a->out[2];
  vr_dtype dt = x->dtype;
  VR_TRY(check_dtype(dt));
  geo g = make_geo(x, w, a->i);
  size_t es = vr_dtype_size(dt);
  const char *pgy = vr_data(gy), *px = vr_data(x), *pw = vr_data(w);
  char *pgx = gx ? vr_data(gx) : NULL, *pgw = gw ? vr_data(gw) : NULL;

  if (gb) { /* per channel, in batch order */
#pragma omp parallel for schedule(static)
    for (int64_t co = 0; co < g.Co; co++) {
      double s = 0;
      for (int64_t n = 0; n < g.N; n++) {
        size_t o = (size_t)((n * g.Co + co) * g.P);
        if (dt == VR_F32)
          for (int64_t p = 0; p < g.P; p++) s += ((const float *)pgy)[o + p];
        else
          for (int64_t p = 0; p < g.P; p++) s += ((const double *)pgy)[o + p];
      }
      vr_store((char *)vr_data(gb) + (size_t)co * es, dt, s);
    }
  }
  if (vr_cpu_conv_winograd_ok(x, w, a->i)) {
    if (gx) VR_TRY(vr_cpu_conv_winograd_gx(gy, w, a->i, gx));
    if (gw) VR_TRY(vr_cpu_conv_winograd_gw(gy, x, a->i, gw));
    return VR_OK;
  }
  if (!gx && !gw) return VR_OK;
  if (vr_cpu_conv_direct_ok(x, w, a->i)) { /* strided: grad w direct, grad x by im2col below */
    bool gx_direct = vr_cpu_conv_direct_gx_ok(a->i);
    VR_TRY(vr_cpu_conv_direct_bwd(gy, x, w, a->i, gx_direct ? gx : NULL, gw));
    if (gx_direct || !gx) return VR_OK;
    gw = NULL;
    pgw = NULL;
  }
  if (gx && vr_tensor_numel(gx) > 0) memset(pgx, 0, (size_t)vr_tensor_numel(gx) * es);
  int64_t wsize = g.Co * g.K;
  if (gw && wsize > 0) memset(pgw, 0, (size_t)wsize * es);
  if (g.N == 0 || wsize == 0 || g.P == 0) return VR_OK;

  /* fixed chunks of the batch; chunk 0 accumulates straight into gw, the others into partials */
  int64_t nch = g.N < 16 ? g.N : 16;
  while (gw && nch > 1 && (double)(nch - 1) * (double)wsize * (double)es > 256e6) nch--;
  char *part = NULL;
  if (gw && nch > 1) {
    part = malloc((size_t)((nch - 1) * wsize) * es);
    if (!part) return VR_FAIL(VR_E_OOM, "weight: no memory for grad_w partials (%lld elements)", (long long)(nch * wsize));
  }
  if (!omp_in_parallel() && openblas_get_num_threads() != omp_get_max_threads())
    openblas_set_num_threads(omp_get_max_threads());
  int par = nch >= omp_get_max_threads() || nch == 16;
  int failed = 0, prev = par ? vr_cpu_blas_serial_begin() : 1;
#pragma omp parallel if (par)
  {
    int need_col = !g.direct;
    void *col = need_col ? malloc((size_t)(g.K * g.P) * es + 64) : NULL;
    if (need_col && !col) {
#pragma omp atomic write
      failed = 1;
    }
#pragma omp for schedule(dynamic, 1)
    for (int64_t c = 0; c < nch; c++) {
      if (need_col && !col) continue;
      char *dw = !gw ? NULL : c == 0 ? pgw : part + (size_t)((c - 1) * wsize) * es;
      int64_t n0 = g.N * c / nch, n1 = g.N * (c + 1) / nch;
      for (int64_t n = n0; n < n1; n++)
        for (int64_t gi = 0; gi < g.G; gi++) {
          const char *xg = px + (size_t)((n * g.C + gi * g.Cg) * g.H * g.W) * es;
          const char *gyg = pgy + (size_t)((n * g.Co + gi * g.Cog) * g.P) * es;
          const char *wg = pw + (size_t)(gi * g.Cog * g.K) * es;
          if (gw) { /* dW_g += gy_g [Cog, P] col^T [P, K] */
            const void *B = xg;
            if (!g.direct) {
              im2col(dt, &g, xg, col);
              B = col;
            }
            gemm(dt, 0, 1, g.Cog, g.K, g.P, gyg, g.P, B, g.P, n == n0 ? 0.0 : 1.0,
                 dw + (size_t)(gi * g.Cog * g.K) * es, g.K);
          }
          if (gx) { /* dcol = W_g^T [K, Cog] gy_g [Cog, P], scattered back into the planes */
            char *gxg = pgx + (size_t)((n * g.C + gi * g.Cg) * g.H * g.W) * es;
            if (g.direct) {
              gemm(dt, 1, 0, g.K, g.P, g.Cog, wg, g.K, gyg, g.P, 0.0, gxg, g.P);
            } else {
              gemm(dt, 1, 0, g.K, g.P, g.Cog, wg, g.K, gyg, g.P, 0.0, col, g.P);
              col2im(dt, &g, col, gxg);
            }
          }
        }
    }
    free(col);
  }
  vr_cpu_blas_serial_end(prev);
  if (!failed && part) { /* gw += partials, in chunk order */
#pragma omp parallel for schedule(static)
    for (int64_t e = 0; e < wsize; e++) {
      if (dt == VR_F32) {
        float s = ((float *)pgw)[e];
        for (int64_t c = 1; c < nch; c++) s += ((const float *)part)[(c - 1) * wsize + e];
        ((float *)pgw)[e] = s;
      } else {
        double s = ((double *)pgw)[e];
        for (int64_t c = 1; c < nch; c++) s += ((const double *)part)[(c - 1) * wsize + e];
        ((double *)pgw)[e] = s;
      }
    }
  }
  free(part);
  if (failed) return VR_FAIL(VR_E_OOM, "x: no memory for the im2col buffer (%lld elements)", (long long)(g.K * g.P));
  return VR_OK;
}

/* ---------------------------------------------------------------- channels-last */
/* dst [A, D, B, Cc] = src [A, B, Cc, D] permuted (0, 3, 1, 2): NHWC -> NCHW with (A, B, Cc, D) =
 * (N, H, W, C), and the weight [Cout, kh, kw, Cg] -> [Cout, Cg, kh, kw] alike */
static void to_nchw(size_t es, const char *src, char *dst, int64_t A, int64_t B, int64_t Cc, int64_t D) {
  int64_t plane = B * Cc;
#pragma omp parallel for schedule(static) if (A * plane * D > 65536)
  for (int64_t a = 0; a < A; a++)
    for (int64_t p = 0; p < plane; p++) {
      const char *s = src + (size_t)((a * plane + p) * D) * es;
      for (int64_t d = 0; d < D; d++) {
        char *t = dst + (size_t)((a * D + d) * plane + p) * es;
        if (es == 4) memcpy(t, s + (size_t)d * 4, 4);
        else memcpy(t, s + (size_t)d * 8, 8);
      }
    }
}
/* the inverse: dst [A, B, Cc, D] = src [A, D, B, Cc] permuted (0, 2, 3, 1) */
static void to_nhwc(size_t es, const char *src, char *dst, int64_t A, int64_t B, int64_t Cc, int64_t D) {
  int64_t plane = B * Cc;
#pragma omp parallel for schedule(static) if (A * plane * D > 65536)
  for (int64_t a = 0; a < A; a++)
    for (int64_t p = 0; p < plane; p++) {
      char *t = dst + (size_t)((a * plane + p) * D) * es;
      for (int64_t d = 0; d < D; d++) {
        const char *s = src + (size_t)((a * D + d) * plane + p) * es;
        if (es == 4) memcpy(t + (size_t)d * 4, s, 4);
        else memcpy(t + (size_t)d * 8, s, 8);
      }
    }
}

/* an NCHW scratch copy of the NHWC-shaped t (NULL stays NULL; out may be wanted empty) */
static vr_status nchw_copy(const vr_tensor *t, int fill, vr_tensor **out) {
  *out = NULL;
  if (!t) return VR_OK;
  int64_t sh[4] = {t->shape[0], t->shape[3], t->shape[1], t->shape[2]};
  VR_TRY(vr_tensor_alloc(4, sh, t->dtype, VR_CPU, out));
  if (fill)
    to_nchw(vr_dtype_size(t->dtype), vr_data(t), vr_data(*out), t->shape[0], t->shape[1], t->shape[2], t->shape[3]);
  return VR_OK;
}
static void nhwc_back(const vr_tensor *src, vr_tensor *dst) { /* src NCHW scratch -> dst NHWC */
  if (src && dst)
    to_nhwc(vr_dtype_size(dst->dtype), vr_data(src), vr_data(dst), dst->shape[0], dst->shape[1], dst->shape[2],
            dst->shape[3]);
}

static vr_status conv2d_fwd_nhwc(const vr_kernel_args *a) {
  vr_kernel_args f = *a;
  vr_tensor *x = NULL, *w = NULL, *y = NULL;
  vr_status st;
  VR_TRY(check_dtype(a->in[0]->dtype));
  f.i[7] = 0;
  VR_TRYG(nchw_copy(a->in[0], 1, &x));
  VR_TRYG(nchw_copy(a->in[1], 1, &w));
  VR_TRYG(nchw_copy(a->out[0], 0, &y));
  f.in[0] = x;
  f.in[1] = w;
  f.out[0] = y;
  VR_TRYG(conv2d_fwd(&f));
  nhwc_back(y, a->out[0]);
done:
  vr_tensor_free(x);
  vr_tensor_free(w);
  vr_tensor_free(y);
  return st;
}

static vr_status conv2d_bwd_nhwc(const vr_kernel_args *a) {
  vr_kernel_args f = *a;
  vr_tensor *gy = NULL, *x = NULL, *w = NULL, *gx = NULL, *gw = NULL;
  vr_status st;
  VR_TRY(check_dtype(a->in[1]->dtype));
  f.i[7] = 0;
  VR_TRYG(nchw_copy(a->in[0], 1, &gy));
  VR_TRYG(nchw_copy(a->in[1], 1, &x));
  VR_TRYG(nchw_copy(a->in[2], 1, &w));
  VR_TRYG(nchw_copy(a->out[0], 0, &gx));
  VR_TRYG(nchw_copy(a->out[1], 0, &gw));
  f.in[0] = gy;
  f.in[1] = x;
  f.in[2] = w;
  f.out[0] = gx;
  f.out[1] = gw; /* out[2] (grad_b [Cout]) has no layout */
  VR_TRYG(conv2d_bwd(&f));
  nhwc_back(gx, a->out[0]);
  nhwc_back(gw, a->out[1]);
done:
  vr_tensor_free(gy);
  vr_tensor_free(x);
  vr_tensor_free(w);
  vr_tensor_free(gx);
  vr_tensor_free(gw);
  return st;
}

static vr_status conv2d_fwd_layout(const vr_kernel_args *a) {
  return a->i[7] ? conv2d_fwd_nhwc(a) : conv2d_fwd(a);
}
static vr_status conv2d_bwd_layout(const vr_kernel_args *a) {
  return a->i[7] ? conv2d_bwd_nhwc(a) : conv2d_bwd(a);
}

static vr_status vr_cpu_conv2d_fwd(const vr_kernel_args *a) {
  return a->in[0]->dtype == VR_BF16 ? vr_cpu_via_f32(a, conv2d_fwd_layout) : conv2d_fwd_layout(a);
}
static vr_status vr_cpu_conv2d_bwd(const vr_kernel_args *a) {
  return a->in[1]->dtype == VR_BF16 ? vr_cpu_via_f32(a, conv2d_bwd_layout) : conv2d_bwd_layout(a);
}

void vr_cpu_register_conv(void) { vr_kernel_register(VR_OP_CONV2D, VR_CPU, vr_cpu_conv2d_fwd, vr_cpu_conv2d_bwd); }
