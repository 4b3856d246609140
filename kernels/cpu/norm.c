/* norm.c: CPU batch-norm and layer-norm kernels, fused forward and backward.
 * The argument layout is documented in core/ops/norm.c. x, grad_y, weight and bias arrive
 * contiguous; running stats are 1-D with any stride and any float dtype. Statistics are
 * accumulated in double in a fixed order, so results do not depend on the thread count. */
#include "cpu.h"
#include <math.h>
#include <stdlib.h>

static vr_status unsupported(const char *func, vr_dtype dt) {
  return vr_error_set(VR_E_UNSUPPORTED, func, __FILE__, __LINE__, "x: dtype %s has no CPU kernel (f32, f64)",
                      vr_dtype_name(dt));
}

/* element k of a 1-D tensor of any float dtype and stride */
static inline double ld1(const vr_tensor *t, int64_t k) {
  return vr_load((const char *)vr_data(t) + (size_t)(k * t->stride[0]) * vr_dtype_size(t->dtype), t->dtype);
}
static inline void st1(vr_tensor *t, int64_t k, double v) {
  vr_store((char *)vr_data(t) + (size_t)(k * t->stride[0]) * vr_dtype_size(t->dtype), t->dtype, v);
}

/* ================================================================ batch norm */

/* relu: forward applies vr_relu's ReLU as it writes y; mask: backward reads grad_y as zero where
 * mask (the forward's output) is not > 0; mask_from_x: backward tells the output's sign from x
 * (bn_coef, as the forward computed it) instead. All only with S > 1 and no residual
 * (vr_cpu_batchnorm_fwd, vr_cpu_batchnorm_bwd). */
/* The pooled batch norm (vr_batch_norm_act_pool): windows of kh x kw at that stride over planes of
 * W columns, Ho x Wo of them. The forward writes each window's largest output and a code, its place
 * (row << 3 | column) with BN_PASS set where the gradient passes (ReLU's output > 0, or no ReLU);
 * the backward unpools the output's gradient through the codes into the masked grad_y rows the
 * plain backward reads, so that both give the unfused ops' results bit for bit. */
typedef struct { int64_t kh, kw, H, W, Ho, Wo; void *y; uint8_t *code; const uint8_t *codes_in; } bn_pool;
#define BN_PASS 0x80
/* the rows of one band of windows, as y, live in a buffer of this many elements (core/ops/norm.c
 * pools unfused beyond it) */
#define BN_POOL_BAND VR_BN_POOL_BAND
typedef struct {
  const vr_kernel_args *a;
  int64_t N, C, S;
  int relu;
  const void *mask;
  int mask_from_x;
  const bn_pool *pool; /* the pooled batch norm's, or NULL */
} bn_ctx;

#define BN_TAKES(v, b) ((v) > (b) || ((v) != (v) && (b) == (b))) /* vr_max_pool2d's choice */
/* rows bands of windows (buf: their kh rows each, rows of W): yo (rows x Wo) the largest of each
 * window (the first on ties, the first NaN over numbers), co its place | BN_PASS where the
 * gradient passes (the largest > 0 after a ReLU, always without) */
#define BN_POOL_SCAN(T, SUF)                                                                                         \
  static void bn_pool_scan_##SUF(const T *buf, const bn_pool *p, int64_t rows, int relu, T *yo, uint8_t *co) {       \
    for (int64_t oh = 0; oh < rows; oh++, yo += p->Wo, co += p->Wo)                                                  \
      for (int64_t ow = 0; ow < p->Wo; ow++) {                                                                       \
        const T *w0 = buf + oh * p->kh * p->W + ow * p->kw;                                                          \
        T best = w0[0];                                                                                              \
        int k = 0;                                                                                                   \
        for (int r = 0; r < p->kh; r++)                                                                              \
          for (int c = 0; c < p->kw; c++)                                                                            \
            if (BN_TAKES(w0[r * p->W + c], best)) {                                                                  \
              best = w0[r * p->W + c];                                                                               \
              k = r << 3 | c;                                                                                        \
            }                                                                                                        \
        yo[ow] = best;                                                                                               \
        co[ow] = (uint8_t)(k | (!relu || best > 0 ? BN_PASS : 0));                                                   \
      }                                                                                                              \
  }
BN_POOL_SCAN(float, f32)
BN_POOL_SCAN(double, f64)
static void bn_pool_band_f32(const float *buf, const bn_pool *p, int64_t rows, int relu, float *yo, uint8_t *co) {
  if (p->kh == 2 && p->kw == 2) vr_cpu_maxpool2_codes(buf, p->W, rows, p->Wo, relu, yo, co);
  else bn_pool_scan_f32(buf, p, rows, relu, yo, co);
}
static void bn_pool_band_f64(const double *buf, const bn_pool *p, int64_t rows, int relu, double *yo, uint8_t *co) {
  bn_pool_scan_f64(buf, p, rows, relu, yo, co);
}

/* Channels are handled in blocks of BN_BLK. With S > 1 each channel's data is N runs of S
 * contiguous elements, summed into BN_LANES lane accumulators (vectorisable, fixed order; the
 * forward's mean and variance in one pass over x, from sums shifted by one of the channel's values);
 * with S = 1 (N x C) rows are walked once per pass and the block's channels accumulate side by side. */
#define BN_BLK 64

static inline double lanes(const double *a) { return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7])); }
/* the reductions of batch and layer norm keep BN_LANES accumulators: independent chains of adds
 * that the vector units run side by side (8 would leave them waiting on each add's latency) */
#define BN_LANES 32
static inline double bn_lanes(const double *a) {
  double t[BN_LANES / 8];
  for (int k = 0; k < BN_LANES / 8; k++) t[k] = lanes(a + 8 * k);
  return (t[0] + t[1]) + (t[2] + t[3]);
}

/* grad_y through ReLU's mask: zero where the output m is not > 0 */
static inline float bn_sel_f(float m, float v) { return m > 0 ? v : 0.0f; } /* both read: a vector select */
static inline double bn_sel_d(double m, double v) { return m > 0 ? v : 0.0; }
#define BN_SEL(m, v) _Generic((v), float: bn_sel_f, default: bn_sel_d)((m), (v))
/* the parts a masked row is read in: a multiple of BN_LANES */
#define BN_ROW 1024
#define BN_LDOT(T, NAME)                                                                                             \
  static inline void NAME(const T *g, const T *x, int64_t n, double m, double *ag, double *agx) {                    \
    int64_t k = 0;                                                                                                   \
    for (; k + BN_LANES <= n; k += BN_LANES)                                                                         \
      for (int j = 0; j < BN_LANES; j++) {                                                                           \
        ag[j] += g[k + j];                                                                                           \
        agx[j] += g[k + j] * (x[k + j] - m);                                                                         \
      }                                                                                                              \
    for (; k + 8 <= n; k += 8)                                                                                       \
      for (int j = 0; j < 8; j++) {                                                                                  \
        ag[j] += g[k + j];                                                                                           \
        agx[j] += g[k + j] * (x[k + j] - m);                                                                         \
      }                                                                                                              \
    for (; k < n; k++) {                                                                                             \
      ag[k & (BN_LANES - 1)] += g[k];                                                                                \
      agx[k & (BN_LANES - 1)] += g[k] * (x[k] - m);                                                                  \
    }                                                                                                                \
  }

/* channel ch's y = x sc + sh, from the statistics as saved (rounded to x's dtype), so that the
 * backward recomputes the forward's y bit for bit from x, w, b and the saved mean and invstd */
#define BN_COEF(T, SUF)                                                                                              \
  static inline void bn_coef_##SUF(const T *w, const T *b, const T *sm, const T *si, int64_t ch, double *sc,         \
                                   double *sh) {                                                                     \
    *sc = (w ? (double)w[ch] : 1.0) * (double)si[ch];                                                                \
    *sh = (b ? (double)b[ch] : 0.0) - (double)sm[ch] * *sc;                                                          \
  }
BN_COEF(float, f32)
BN_COEF(double, f64)

/* the unpooling of a whole f32 plane of 2x2 windows, each element written once */
static void bn_unpool2_f32(float *d, const float *gq, const uint8_t *cq, const bn_pool *p) {
  int64_t W = p->W;
  vr_cpu_maxpool2_uncodes(gq, cq, W, p->Ho, p->Wo, d);
  if (W & 1)
    for (int64_t h = 0; h < 2 * p->Ho; h++) d[h * W + W - 1] = 0;
  if (p->H & 1) memset(d + (p->H - 1) * W, 0, sizeof(float) * (size_t)W);
}

#define BN_KERNELS(T, SUF)                                                                                           \
  static inline void lsum_##SUF(const T *p, int64_t n, double *acc) {                                                \
    int64_t k = 0;                                                                                                   \
    for (; k + BN_LANES <= n; k += BN_LANES)                                                                         \
      for (int j = 0; j < BN_LANES; j++) acc[j] += p[k + j];                                                         \
    for (; k + 8 <= n; k += 8)                                                                                       \
      for (int j = 0; j < 8; j++) acc[j] += p[k + j];                                                                \
    for (; k < n; k++) acc[k & (BN_LANES - 1)] += p[k];                                                              \
  }                                                                                                                  \
  static inline void lsq_##SUF(const T *p, int64_t n, double m, double *acc) {                                       \
    int64_t k = 0;                                                                                                   \
    for (; k + BN_LANES <= n; k += BN_LANES)                                                                         \
      for (int j = 0; j < BN_LANES; j++) acc[j] += (p[k + j] - m) * (p[k + j] - m);                                  \
    for (; k + 8 <= n; k += 8)                                                                                       \
      for (int j = 0; j < 8; j++) acc[j] += (p[k + j] - m) * (p[k + j] - m);                                         \
    for (; k < n; k++) acc[k & (BN_LANES - 1)] += (p[k] - m) * (p[k] - m);                                           \
  }                                                                                                                  \
  BN_LDOT(T, ldot_##SUF)                                                                                             \
  /* d = g where the forward's output is > 0, else 0: the output read from mk, or (mk NULL)                          \
   * recomputed from x as x ts + tsh, the forward's arithmetic (bn_affine) */                                        \
  static inline void bn_masked_##SUF(T *d, const T *g, const T *x, const T *mk, int64_t n, T ts, T tsh) {            \
    if (mk)                                                                                                          \
      for (int64_t s = 0; s < n; s++) d[s] = BN_SEL(mk[s], g[s]);                                                    \
    else                                                                                                             \
      for (int64_t s = 0; s < n; s++) d[s] = BN_SEL(x[s] * ts + tsh, g[s]);                                          \
  }                                                                                                                  \
  /* sums of d = p - K and of d^2 (K: a value of the channel, so that the shifted sums do not cancel) */             \
  static inline void lmom_##SUF(const T *p, int64_t n, double K, double *a1, double *a2) {                           \
    int64_t k = 0;                                                                                                   \
    for (; k + BN_LANES <= n; k += BN_LANES)                                                                         \
      for (int j = 0; j < BN_LANES; j++) {                                                                           \
        double d = p[k + j] - K;                                                                                     \
        a1[j] += d;                                                                                                  \
        a2[j] += d * d;                                                                                              \
      }                                                                                                              \
    for (; k + 8 <= n; k += 8) { /* the lanes k & (BN_LANES - 1) on, as one at a time would, but vectorized */       \
      double *b1 = a1 + (k & (BN_LANES - 1)), *b2 = a2 + (k & (BN_LANES - 1));                                       \
      for (int j = 0; j < 8; j++) {                                                                                  \
        double d = p[k + j] - K;                                                                                     \
        b1[j] += d;                                                                                                  \
        b2[j] += d * d;                                                                                              \
      }                                                                                                              \
    }                                                                                                                \
    for (; k < n; k++) {                                                                                             \
      double d = p[k] - K;                                                                                           \
      a1[k & (BN_LANES - 1)] += d;                                                                                   \
      a2[k & (BN_LANES - 1)] += d * d;                                                                               \
    }                                                                                                                \
  }                                                                                                                  \
  /* S > 1: per channel of [c0, c0+nb), the mean and the sum of squared deviations in one pass over x */             \
  static void bn_moments_##SUF(const T *x, int64_t N, int64_t C, int64_t S, int64_t c0, int64_t nb, double *mean,    \
                               double *sq) {                                                                         \
    double M = (double)(N * S);                                                                                      \
    for (int64_t j = 0; j < nb; j++) {                                                                               \
      double a1[BN_LANES] = {0}, a2[BN_LANES] = {0}, K = x[(c0 + j) * S];                                            \
      for (int64_t n = 0; n < N; n++) lmom_##SUF(x + (n * C + c0 + j) * S, S, K, a1, a2);                            \
      double s1 = bn_lanes(a1), s2 = bn_lanes(a2);                                                                   \
      mean[j] = K + s1 / M;                                                                                          \
      sq[j] = s2 - s1 * (s1 / M);                                                                                    \
      if (!(sq[j] > 0)) sq[j] = sq[j] != sq[j] ? sq[j] : 0; /* rounding below 0; NaN kept */                         \
    }                                                                                                                \
  }                                                                                                                  \
  /* S = 1 (N x C rows), per channel of [c0, c0+nb): sum (or with mean given, sum of squared deviations) */          \
  static void bn_reduce_rows_##SUF(const T *x, int64_t N, int64_t C, int64_t c0, int64_t nb, const double *mean,     \
                                   double *out) {                                                                    \
    for (int64_t j = 0; j < nb; j++) out[j] = 0;                                                                     \
    for (int64_t n = 0; n < N; n++) {                                                                                \
      const T *r = x + n * C + c0;                                                                                   \
      if (mean)                                                                                                      \
        for (int64_t j = 0; j < nb; j++) out[j] += (r[j] - mean[j]) * (r[j] - mean[j]);                              \
      else                                                                                                           \
        for (int64_t j = 0; j < nb; j++) out[j] += r[j];                                                             \
    }                                                                                                                \
  }                                                                                                                  \
  /* q = p ts + tsh over n elements, then vr_relu's ReLU when relu (NaN kept, -0 to +0): the forward's               \
   * arithmetic, which the pooled forward and the backward's mask from x repeat bit for bit */                       \
  static inline void bn_affine_row_##SUF(const T *p, T *q, int64_t n, T ts, T tsh, int relu) {                       \
    if (relu)                                                                                                        \
      for (int64_t s = 0; s < n; s++) {                                                                              \
        T v = p[s] * ts + tsh;                                                                                       \
        q[s] = v > 0 ? v : (v != v ? v : (T)0);                                                                      \
      }                                                                                                              \
    else                                                                                                             \
      for (int64_t s = 0; s < n; s++) q[s] = p[s] * ts + tsh;                                                        \
  }                                                                                                                  \
  /* o = x * sc + sh per channel (sc, sh in double) */                                                               \
  static void bn_affine_##SUF(const T *x, T *o, int64_t N, int64_t C, int64_t S, int64_t c0, int64_t nb,             \
                              const double *sc, const double *sh, int relu) {                                        \
    for (int64_t n = 0; n < N; n++) {                                                                                \
      if (S == 1) {                                                                                                  \
        const T *r = x + n * C + c0;                                                                                 \
        T *q = o + n * C + c0;                                                                                       \
        for (int64_t j = 0; j < nb; j++) q[j] = (T)(r[j] * sc[j] + sh[j]);                                           \
        continue;                                                                                                    \
      }                                                                                                              \
      for (int64_t j = 0; j < nb; j++)                                                                               \
        bn_affine_row_##SUF(x + (n * C + c0 + j) * S, o + (n * C + c0 + j) * S, S, (T)sc[j], (T)sh[j], relu);        \
    }                                                                                                                \
  }                                                                                                                  \
  /* the pooled forward of channels [c0, c0+nb): per chunk of bands of windows (as many as buf holds),               \
   * their rows as y (bn_affine's arithmetic) into buf, then each window's largest and its code */                   \
  static void bn_affine_pool_##SUF(const T *x, const bn_pool *p, int64_t N, int64_t C, int64_t S, int64_t c0,        \
                                   int64_t nb, const double *sc, const double *sh, int relu) {                       \
    T buf[BN_POOL_BAND], *yq = p->y;                                                                                 \
    int64_t W = p->W, band = p->kh * W, Wo = p->Wo, per = BN_POOL_BAND / band;                                       \
    for (int64_t n = 0; n < N; n++)                                                                                  \
      for (int64_t j = 0; j < nb; j++) {                                                                             \
        const T *xp = x + (n * C + c0 + j) * S;                                                                      \
        int64_t q = (n * C + c0 + j) * p->Ho * Wo;                                                                   \
        T ts = (T)sc[j], tsh = (T)sh[j];                                                                             \
        for (int64_t oh = 0; oh < p->Ho; oh += per) {                                                                \
          int64_t rows = p->Ho - oh < per ? p->Ho - oh : per, len = rows * band, o = q + oh * Wo;                    \
          bn_affine_row_##SUF(xp + oh * band, buf, len, ts, tsh, relu);                                              \
          bn_pool_band_##SUF(buf, p, rows, relu, yq + o, p->code + o);                                               \
        }                                                                                                            \
      }                                                                                                              \
  }                                                                                                                  \
  /* d = the masked grad_y of a plane's elements [s0, s0+len): gq (the pooled output's gradient) at                  \
   * the windows' winners that pass, 0 elsewhere */                                                                  \
  static inline void bn_unpool_##SUF(T *d, const T *gq, const uint8_t *cq, int64_t s0, int64_t len,                  \
                                     const bn_pool *p) {                                                             \
    int64_t W = p->W, kh = p->kh, kw = p->kw, Wo = p->Wo;                                                            \
    if (sizeof(T) == 4 && kh == 2 && kw == 2 && s0 == 0 && len == p->H * W) {                                        \
      bn_unpool2_f32((float *)d, (const float *)gq, cq, p);                                                          \
      return;                                                                                                        \
    }                                                                                                                \
    memset(d, 0, sizeof(T) * (size_t)len);                                                                           \
    int64_t oh1 = (s0 + len - 1) / W / kh;                                                                           \
    if (oh1 > p->Ho - 1) oh1 = p->Ho - 1;                                                                            \
    for (int64_t oh = s0 / W / kh; oh <= oh1; oh++)                                                                  \
      for (int64_t ow = 0; ow < Wo; ow++) {                                                                          \
        int k = cq[oh * Wo + ow];                                                                                    \
        int64_t e = (oh * kh + (k >> 3 & 7)) * W + ow * kw + (k & 7) - s0;                                           \
        if ((k & BN_PASS) && e >= 0 && e < len) d[e] = gq[oh * Wo + ow];                                             \
      }                                                                                                              \
  }                                                                                                                  \
  static void bn_fwd_##SUF(void *cv, int64_t lo, int64_t hi) {                                                       \
    const bn_ctx *c = cv;                                                                                            \
    const vr_kernel_args *a = c->a;                                                                                  \
    const T *x = vr_data(a->in[0]);                                                                                  \
    const T *w = a->in[1] ? vr_data(a->in[1]) : NULL, *b = a->in[2] ? vr_data(a->in[2]) : NULL;                      \
    vr_tensor *rm = a->in[3], *rv = a->in[4];                                                                        \
    T *y = vr_data(a->out[0]), *sm = vr_data(a->out[1]), *si = vr_data(a->out[2]);                                   \
    int64_t N = c->N, C = c->C, S = c->S, M = N * S;                                                                 \
    double mom = a->f[0], eps = a->f[1];                                                                             \
    double mean[BN_BLK], sq[BN_BLK], sc[BN_BLK], sh[BN_BLK];                                                         \
    for (int64_t c0 = lo; c0 < hi; c0 += BN_BLK) {                                                                   \
      int64_t nb = hi - c0 < BN_BLK ? hi - c0 : BN_BLK;                                                              \
      if (a->i[0] && S > 1)                                                                                          \
        bn_moments_##SUF(x, N, C, S, c0, nb, mean, sq);                                                              \
      else if (a->i[0]) {                                                                                            \
        bn_reduce_rows_##SUF(x, N, C, c0, nb, NULL, mean);                                                           \
        for (int64_t j = 0; j < nb; j++) mean[j] /= (double)M;                                                       \
        bn_reduce_rows_##SUF(x, N, C, c0, nb, mean, sq);                                                             \
      }                                                                                                              \
      for (int64_t j = 0; j < nb; j++) {                                                                             \
        int64_t ch = c0 + j;                                                                                         \
        double invstd;                                                                                               \
        if (a->i[0]) {                                                                                               \
          invstd = 1.0 / sqrt(sq[j] / (double)M + eps);                                                              \
          if (rm) {                                                                                                  \
            st1(rm, ch, (1 - mom) * ld1(rm, ch) + mom * mean[j]);                                                    \
            st1(rv, ch, (1 - mom) * ld1(rv, ch) + mom * sq[j] / (double)(M - 1));                                    \
          }                                                                                                          \
        } else {                                                                                                     \
          mean[j] = ld1(rm, ch);                                                                                     \
          invstd = 1.0 / sqrt(ld1(rv, ch) + eps);                                                                    \
        }                                                                                                            \
        sm[ch] = (T)mean[j];                                                                                         \
        si[ch] = (T)invstd;                                                                                          \
        bn_coef_##SUF(w, b, sm, si, ch, &sc[j], &sh[j]);                                                             \
      }                                                                                                              \
      if (c->pool)                                                                                                   \
        bn_affine_pool_##SUF(x, c->pool, N, C, S, c0, nb, sc, sh, c->relu);                                          \
      else                                                                                                           \
        bn_affine_##SUF(x, y, N, C, S, c0, nb, sc, sh, c->relu);                                                     \
    }                                                                                                                \
  }                                                                                                                  \
  static void bn_bwd_##SUF(void *cv, int64_t lo, int64_t hi) {                                                       \
    const bn_ctx *c = cv;                                                                                            \
    const vr_kernel_args *a = c->a;                                                                                  \
    const T *g = vr_data(a->in[0]), *x = vr_data(a->in[1]);                                                          \
    const T *w = a->in[2] ? vr_data(a->in[2]) : NULL;                                                                \
    const T *sm = vr_data(a->in[3]), *si = vr_data(a->in[4]);                                                        \
    T *gx = a->out[0] ? vr_data(a->out[0]) : NULL;                                                                   \
    const T *mk = c->mask, *bias = c->mask_from_x && a->in[6] ? vr_data(a->in[6]) : NULL;                            \
    T *gw = a->out[1] ? vr_data(a->out[1]) : NULL, *gb = a->out[2] ? vr_data(a->out[2]) : NULL;                      \
    int64_t N = c->N, C = c->C, S = c->S, M = N * S;                                                                 \
    double mean[BN_BLK], sg[BN_BLK], sgx[BN_BLK], k1[BN_BLK], k2[BN_BLK], wi[BN_BLK];                                \
    T ts[BN_BLK], tsh[BN_BLK]; /* mask_from_x: y = x ts + tsh, as the forward computed it */                         \
    T gvb[BN_ROW];             /* a part of a row of the masked grad_y */                                            \
    const bn_pool *pl = c->pool; /* pooled: g is the pooled output's gradient, unpooled by the codes */              \
    int64_t Sq = pl ? pl->Ho * pl->Wo : S;                                                                           \
    bool masked = mk || c->mask_from_x || pl;                                                                        \
    for (int64_t c0 = lo; c0 < hi; c0 += BN_BLK) {                                                                   \
      int64_t nb = hi - c0 < BN_BLK ? hi - c0 : BN_BLK;                                                              \
      for (int64_t j = 0; j < nb; j++) {                                                                             \
        mean[j] = sm[c0 + j];                                                                                        \
        if (c->mask_from_x) {                                                                                        \
          double a1, a0;                                                                                             \
          bn_coef_##SUF(w, bias, sm, si, c0 + j, &a1, &a0);                                                          \
          ts[j] = (T)a1;                                                                                             \
          tsh[j] = (T)a0;                                                                                            \
        }                                                                                                            \
      }                                                                                                              \
      if (S == 1) {                                                                                                  \
        for (int64_t j = 0; j < nb; j++) sg[j] = sgx[j] = 0;                                                         \
        for (int64_t n = 0; n < N; n++) {                                                                            \
          const T *gr = g + n * C + c0, *xr = x + n * C + c0;                                                        \
          for (int64_t j = 0; j < nb; j++) {                                                                         \
            sg[j] += gr[j];                                                                                          \
            sgx[j] += gr[j] * (xr[j] - mean[j]);                                                                     \
          }                                                                                                          \
        }                                                                                                            \
      } else {                                                                                                       \
        for (int64_t j = 0; j < nb; j++) {                                                                           \
          double ag[BN_LANES] = {0}, agx[BN_LANES] = {0};                                                            \
          for (int64_t n = 0; n < N; n++) {                                                                          \
            int64_t off = (n * C + c0 + j) * S, pq = (n * C + c0 + j) * Sq;                                          \
            if (!masked) {                                                                                           \
              ldot_##SUF(g + off, x + off, S, mean[j], ag, agx);                                                     \
              continue;                                                                                              \
            }                                                                                                        \
            /* parts of BN_ROW (a multiple of BN_LANES): each element meets the lane it would unparted */            \
            for (int64_t s0 = 0; s0 < S; s0 += BN_ROW) {                                                             \
              int64_t len = S - s0 < BN_ROW ? S - s0 : BN_ROW;                                                       \
              const T *xp = x + off + s0;                                                                            \
              if (pl)                                                                                                \
                bn_unpool_##SUF(gvb, g + pq, pl->codes_in + pq, s0, len, pl);                                        \
              else                                                                                                   \
                bn_masked_##SUF(gvb, g + off + s0, xp, mk ? mk + off + s0 : NULL, len, ts[j], tsh[j]);               \
              ldot_##SUF(gvb, xp, len, mean[j], ag, agx);                                                            \
            }                                                                                                        \
          }                                                                                                          \
          sg[j] = bn_lanes(ag);                                                                                      \
          sgx[j] = bn_lanes(agx);                                                                                    \
        }                                                                                                            \
      }                                                                                                              \
      for (int64_t j = 0; j < nb; j++) {                                                                             \
        double invstd = si[c0 + j];                                                                                  \
        if (gb) gb[c0 + j] = (T)sg[j];                                                                               \
        if (gw) gw[c0 + j] = (T)(sgx[j] * invstd);                                                                   \
        wi[j] = (w ? (double)w[c0 + j] : 1.0) * invstd;                                                              \
        /* batch stats: gx = w invstd (g - mean(g) - xhat mean(g xhat)); running stats: gx = w invstd g */           \
        k1[j] = a->i[0] ? sg[j] / (double)M : 0.0;                                                                   \
        k2[j] = a->i[0] ? sgx[j] * invstd * invstd / (double)M : 0.0;                                                \
      }                                                                                                              \
      if (!gx) continue;                                                                                             \
      for (int64_t n = 0; n < N; n++) {                                                                              \
        if (S == 1) {                                                                                                \
          const T *gr = g + n * C + c0, *xr = x + n * C + c0;                                                        \
          T *o = gx + n * C + c0;                                                                                    \
          for (int64_t j = 0; j < nb; j++) o[j] = (T)(wi[j] * (gr[j] - k1[j] - (xr[j] - mean[j]) * k2[j]));          \
          continue;                                                                                                  \
        }                                                                                                            \
        for (int64_t j = 0; j < nb; j++) {                                                                           \
          int64_t off = (n * C + c0 + j) * S, pq = (n * C + c0 + j) * Sq;                                            \
          const T *gp = g + (pl ? pq : off), *xp = x + off;                                                          \
          T *o = gx + off;                                                                                           \
          double m = mean[j], q1 = k1[j], q2 = k2[j], s0 = wi[j];                                                    \
          if (masked) { /* the masked row first, then the plain formula over it: two loops that vectorize */         \
            if (pl)                                                                                                  \
              bn_unpool_##SUF(o, gp, pl->codes_in + pq, 0, S, pl);                                                   \
            else                                                                                                     \
              bn_masked_##SUF(o, gp, xp, mk ? mk + off : NULL, S, ts[j], tsh[j]);                                    \
            for (int64_t s = 0; s < S; s++) o[s] = (T)(s0 * (o[s] - q1 - (xp[s] - m) * q2));                         \
          } else                                                                                                     \
            for (int64_t s = 0; s < S; s++) o[s] = (T)(s0 * (gp[s] - q1 - (xp[s] - m) * q2));                        \
        }                                                                                                            \
      }                                                                                                              \
    }                                                                                                                \
  }

BN_KERNELS(float, f32)
BN_KERNELS(double, f64)

/* channels are independent: split them over threads, a few per chunk when channels are small */
static int64_t bn_grain(int64_t M) { return M >= 32768 ? 1 : 32768 / (M ? M : 1); }

/* The fused activation of vr_batch_norm_act (i[4] ReLU, in[5] the residual or, backward, the
 * output) as one pass beside the plain kernels where there is a residual or one value a channel
 * (S = 1); otherwise the plain kernels apply it as they go (bn_ctx's relu and mask), with the same
 * arithmetic, so that results are those of the unfused ops (batch norm, add, relu) bit for bit.
 * Forward: y = act(y + r) in place. Backward: dst = grad_y, zeroed where the output is not > 0. */
typedef struct { const void *src, *aux; void *dst; int relu; vr_dtype dt; } act_ctx;
#define ACT_PARTS(T, SUF)                                                                                            \
  static void act_fwd_##SUF(const act_ctx *c, int64_t lo, int64_t hi) { /* y = act(y + r), r = aux */                \
    T *y = c->dst;                                                                                                   \
    const T *r = c->aux;                                                                                             \
    for (int64_t e = lo; e < hi; e++) {                                                                              \
      T v = r ? y[e] + r[e] : y[e];                                                                                  \
      y[e] = !c->relu || v > 0 ? v : (v != v ? v : (T)0); /* vr_relu's: NaN kept, -0 to +0 */                        \
    }                                                                                                                \
  }                                                                                                                  \
  static void act_bwd_##SUF(const act_ctx *c, int64_t lo, int64_t hi) { /* dst = src where aux > 0 (aux: output) */  \
    const T *g = c->src, *out = c->aux;                                                                              \
    T *d = c->dst;                                                                                                   \
    if (out)                                                                                                         \
      for (int64_t e = lo; e < hi; e++) d[e] = out[e] > 0 ? g[e] : (T)0;                                             \
    else                                                                                                             \
      for (int64_t e = lo; e < hi; e++) d[e] = g[e];                                                                 \
  }
ACT_PARTS(float, f32)
ACT_PARTS(double, f64)
static void act_fwd_part(void *cv, int64_t lo, int64_t hi) {
  const act_ctx *c = cv;
  if (c->dt == VR_F32) act_fwd_f32(c, lo, hi);
  else act_fwd_f64(c, lo, hi);
}
static void act_bwd_part(void *cv, int64_t lo, int64_t hi) {
  const act_ctx *c = cv;
  if (c->dt == VR_F32) act_bwd_f32(c, lo, hi);
  else act_bwd_f64(c, lo, hi);
}

/* the pooled batch norm's windows (i[6] x i[7]) over x's planes, as many as pooled has */
static bn_pool bn_pool_of(const vr_kernel_args *a, const vr_tensor *x, const vr_tensor *pooled) {
  return (bn_pool){a->i[6], a->i[7], x->shape[2], x->shape[3], pooled->shape[2], pooled->shape[3], NULL, NULL, NULL};
}

static vr_status vr_cpu_batchnorm_fwd(const vr_kernel_args *a) {
  if (vr_cpu_any_bf16(a)) return vr_cpu_via_f32(a, vr_cpu_batchnorm_fwd); /* bf16 x (autocast), f32 parameters */
  const vr_tensor *r = a->n_in > 5 ? a->in[5] : NULL;
  bn_ctx c = {a, a->i[1], a->i[2], a->i[3], a->i[4] && !r && a->i[3] > 1, NULL, 0, NULL};
  bn_pool pool = {0};
  if (a->i[6] > 0) { /* out[0] the pooled output, out[3] the codes */
    pool = bn_pool_of(a, a->in[0], a->out[0]);
    pool.y = vr_data(a->out[0]);
    pool.code = vr_data(a->out[3]);
    c.pool = &pool;
  }
  switch (a->in[0]->dtype) {
  case VR_F32: vr_parallel_for(c.C, bn_grain(c.N * c.S), bn_fwd_f32, &c); break;
  case VR_F64: vr_parallel_for(c.C, bn_grain(c.N * c.S), bn_fwd_f64, &c); break;
  default: return unsupported(__func__, a->in[0]->dtype);
  }
  if (r || (a->i[4] && !c.relu)) {
    act_ctx ac = {NULL, r ? vr_data(r) : NULL, vr_data(a->out[0]), (int)a->i[4], a->in[0]->dtype};
    vr_parallel_for(vr_tensor_numel(a->out[0]), 1 << 15, act_fwd_part, &ac);
  }
  return VR_OK;
}

static vr_status vr_cpu_batchnorm_bwd(const vr_kernel_args *a) {
  if (vr_cpu_any_bf16(a)) return vr_cpu_via_f32(a, vr_cpu_batchnorm_bwd);
  vr_dtype dt = a->in[1]->dtype;
  if (dt != VR_F32 && dt != VR_F64) return unsupported(__func__, dt);
  vr_tensor *gr = a->n_out > 3 ? a->out[3] : NULL, *geff = NULL;
  vr_kernel_args b = *a;
  bn_ctx c = {&b, a->i[1], a->i[2], a->i[3], 0, NULL, 0, NULL};
  bn_pool pool = {0};
  if (a->i[6] > 0) { /* in[0] the pooled output's gradient, in[7] the forward's codes */
    pool = bn_pool_of(a, a->in[1], a->in[0]);
    pool.codes_in = vr_data(a->in[7]);
    c.pool = &pool;
  } else if (a->i[4] && a->i[5]) c.mask_from_x = 1; /* the mask from x, as the forward computed y: no pass of its own */
  else if (a->i[4] && !gr && c.S > 1) c.mask = vr_data(a->in[5]); /* read through the mask, no pass of its own */
  else if (a->i[4] || gr) { /* the activation's gradient g, written into grad_residual when wanted, feeds the plain backward */
    if (!gr) VR_TRY(vr_tensor_alloc_like(a->in[0], &geff));
    vr_tensor *dst = gr ? gr : geff;
    act_ctx ac = {vr_data(a->in[0]), a->i[4] ? vr_data(a->in[5]) : NULL, vr_data(dst), 1, dt};
    vr_parallel_for(vr_tensor_numel(dst), 1 << 15, act_bwd_part, &ac);
    b.in[0] = dst;
  }
  vr_parallel_for(c.C, bn_grain(c.N * c.S), dt == VR_F32 ? bn_bwd_f32 : bn_bwd_f64, &c);
  vr_tensor_free(geff);
  return VR_OK;
}

/* ================================================================ layer norm */

typedef struct { const vr_kernel_args *a; int64_t R, D; } ln_ctx;

#define LN_KERNELS(T, SUF)                                                                                           \
  static void ln_fwd_##SUF(void *cv, int64_t lo, int64_t hi) {                                                       \
    const ln_ctx *c = cv;                                                                                            \
    const vr_kernel_args *a = c->a;                                                                                  \
    int64_t D = c->D;                                                                                                \
    const T *x = vr_data(a->in[0]);                                                                                  \
    const T *w = a->in[1] ? vr_data(a->in[1]) : NULL, *b = a->in[2] ? vr_data(a->in[2]) : NULL;                      \
    T *y = vr_data(a->out[0]), *sm = vr_data(a->out[1]), *si = vr_data(a->out[2]);                                   \
    for (int64_t r = lo; r < hi; r++) {                                                                              \
      const T *p = x + r * D;                                                                                        \
      T *q = y + r * D;                                                                                              \
      double acc[BN_LANES] = {0}, acq[BN_LANES] = {0};                                                               \
      lsum_##SUF(p, D, acc);                                                                                         \
      double mean = bn_lanes(acc) / (double)D;                                                                       \
      lsq_##SUF(p, D, mean, acq);                                                                                    \
      double invstd = 1.0 / sqrt(bn_lanes(acq) / (double)D + a->f[0]);                                               \
      T tm = (T)mean, ti = (T)invstd;                                                                                \
      for (int64_t d = 0; d < D; d++) {                                                                              \
        T v = (p[d] - tm) * ti;                                                                                      \
        if (w) v *= w[d];                                                                                            \
        if (b) v += b[d];                                                                                            \
        q[d] = v;                                                                                                    \
      }                                                                                                              \
      sm[r] = tm;                                                                                                    \
      si[r] = ti;                                                                                                    \
    }                                                                                                                \
  }                                                                                                                  \
  /* grad_x, row by row: gx = invstd (dh - mean(dh) - xhat mean(dh xhat)), dh = g w */                               \
  static void ln_bwd_x_##SUF(void *cv, int64_t lo, int64_t hi) {                                                     \
    const ln_ctx *c = cv;                                                                                            \
    const vr_kernel_args *a = c->a;                                                                                  \
    int64_t D = c->D;                                                                                                \
    const T *g = vr_data(a->in[0]), *x = vr_data(a->in[1]);                                                          \
    const T *w = a->in[2] ? vr_data(a->in[2]) : NULL;                                                                \
    const T *sm = vr_data(a->in[3]), *si = vr_data(a->in[4]);                                                        \
    T *gx = vr_data(a->out[0]);                                                                                      \
    for (int64_t r = lo; r < hi; r++) {                                                                              \
      const T *gp = g + r * D, *xp = x + r * D;                                                                      \
      double mean = sm[r], invstd = si[r], a1[8] = {0}, a2[8] = {0};                                                 \
      int64_t d = 0;                                                                                                 \
      for (; d + 8 <= D; d += 8)                                                                                     \
        for (int j = 0; j < 8; j++) {                                                                                \
          double dh = w ? (double)gp[d + j] * w[d + j] : (double)gp[d + j];                                          \
          a1[j] += dh;                                                                                               \
          a2[j] += dh * (xp[d + j] - mean);                                                                          \
        }                                                                                                            \
      for (; d < D; d++) {                                                                                           \
        double dh = w ? (double)gp[d] * w[d] : (double)gp[d];                                                        \
        a1[d & 7] += dh;                                                                                             \
        a2[d & 7] += dh * (xp[d] - mean);                                                                            \
      }                                                                                                              \
      double s1 = lanes(a1) / (double)D, s2 = lanes(a2) * invstd / (double)D;                                        \
      for (d = 0; d < D; d++) {                                                                                      \
        double dh = w ? (double)gp[d] * w[d] : (double)gp[d];                                                        \
        gx[r * D + d] = (T)(invstd * (dh - s1 - (xp[d] - mean) * invstd * s2));                                      \
      }                                                                                                              \
    }                                                                                                                \
  }                                                                                                                  \
  /* grad_w, grad_b, by blocks of columns, rows summed in order (deterministic) */                                   \
  static void ln_bwd_wb_##SUF(void *cv, int64_t lo, int64_t hi) {                                                    \
    const ln_ctx *c = cv;                                                                                            \
    const vr_kernel_args *a = c->a;                                                                                  \
    int64_t D = c->D, R = c->R;                                                                                      \
    const T *g = vr_data(a->in[0]), *x = vr_data(a->in[1]);                                                          \
    const T *sm = vr_data(a->in[3]), *si = vr_data(a->in[4]);                                                        \
    T *gw = a->out[1] ? vr_data(a->out[1]) : NULL, *gb = a->out[2] ? vr_data(a->out[2]) : NULL;                      \
    enum { BLK = 256 };                                                                                              \
    double accw[BLK], accb[BLK];                                                                                     \
    for (int64_t d0 = lo; d0 < hi; d0 += BLK) {                                                                      \
      int64_t nd = hi - d0 < BLK ? hi - d0 : BLK;                                                                    \
      for (int64_t k = 0; k < nd; k++) accw[k] = accb[k] = 0;                                                        \
      for (int64_t r = 0; r < R; r++) {                                                                              \
        const T *gp = g + r * D + d0, *xp = x + r * D + d0;                                                          \
        double mean = sm[r], invstd = si[r];                                                                         \
        for (int64_t k = 0; k < nd; k++) {                                                                           \
          accw[k] += gp[k] * (xp[k] - mean) * invstd;                                                                \
          accb[k] += gp[k];                                                                                          \
        }                                                                                                            \
      }                                                                                                              \
      for (int64_t k = 0; k < nd; k++) {                                                                             \
        if (gw) gw[d0 + k] = (T)accw[k];                                                                             \
        if (gb) gb[d0 + k] = (T)accb[k];                                                                             \
      }                                                                                                              \
    }                                                                                                                \
  }

LN_KERNELS(float, f32)
LN_KERNELS(double, f64)

static int64_t row_grain(int64_t D) { return D >= 16384 ? 1 : 16384 / (D ? D : 1); }

static vr_status vr_cpu_layernorm_fwd(const vr_kernel_args *a) {
  ln_ctx c = {a, a->i[0], a->i[1]};
  switch (a->in[0]->dtype) {
  case VR_F32: vr_parallel_for(c.R, row_grain(c.D), ln_fwd_f32, &c); return VR_OK;
  case VR_F64: vr_parallel_for(c.R, row_grain(c.D), ln_fwd_f64, &c); return VR_OK;
  default: return unsupported(__func__, a->in[0]->dtype);
  }
}

static vr_status vr_cpu_layernorm_bwd(const vr_kernel_args *a) {
  ln_ctx c = {a, a->i[0], a->i[1]};
  vr_dtype dt = a->in[1]->dtype;
  if (dt != VR_F32 && dt != VR_F64) return unsupported(__func__, dt);
  int64_t wgrain = row_grain(c.R) < 256 ? 256 : row_grain(c.R);
  if (a->out[0]) vr_parallel_for(c.R, row_grain(c.D), dt == VR_F32 ? ln_bwd_x_f32 : ln_bwd_x_f64, &c);
  if (a->out[1] || a->out[2]) vr_parallel_for(c.D, wgrain, dt == VR_F32 ? ln_bwd_wb_f32 : ln_bwd_wb_f64, &c);
  return VR_OK;
}

void vr_cpu_register_norm(void) {
  vr_kernel_register(VR_OP_BATCHNORM, VR_CPU, vr_cpu_batchnorm_fwd, vr_cpu_batchnorm_bwd);
  vr_kernel_register(VR_OP_LAYERNORM, VR_CPU, vr_cpu_layernorm_fwd, vr_cpu_layernorm_bwd);
}
