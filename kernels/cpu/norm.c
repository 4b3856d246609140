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

typedef struct { const vr_kernel_args *a; int64_t N, C, S; } bn_ctx;

/* T: element type of x, y, weight, bias, save_mean, save_invstd */
#define BN_KERNELS(T, SUF)                                                                                           \
  static void bn_fwd_##SUF(void *cv, int64_t lo, int64_t hi) {                                                       \
    const bn_ctx *c = cv;                                                                                            \
    const vr_kernel_args *a = c->a;                                                                                  \
    const T *x = vr_data(a->in[0]);                                                                                  \
    const T *w = a->in[1] ? vr_data(a->in[1]) : NULL, *b = a->in[2] ? vr_data(a->in[2]) : NULL;                      \
    vr_tensor *rm = a->in[3], *rv = a->in[4];                                                                        \
    T *y = vr_data(a->out[0]), *sm = vr_data(a->out[1]), *si = vr_data(a->out[2]);                                   \
    int64_t N = c->N, C = c->C, S = c->S, M = N * S;                                                                 \
    double mom = a->f[0], eps = a->f[1];                                                                             \
    for (int64_t ch = lo; ch < hi; ch++) {                                                                           \
      double mean, invstd;                                                                                           \
      if (a->i[0]) {                                                                                                 \
        double sum = 0, sq = 0;                                                                                      \
        for (int64_t n = 0; n < N; n++) {                                                                            \
          const T *p = x + (n * C + ch) * S;                                                                         \
          for (int64_t s = 0; s < S; s++) sum += p[s];                                                               \
        }                                                                                                            \
        mean = sum / (double)M;                                                                                      \
        for (int64_t n = 0; n < N; n++) {                                                                            \
          const T *p = x + (n * C + ch) * S;                                                                         \
          for (int64_t s = 0; s < S; s++) {                                                                          \
            double d = p[s] - mean;                                                                                  \
            sq += d * d;                                                                                             \
          }                                                                                                          \
        }                                                                                                            \
        invstd = 1.0 / sqrt(sq / (double)M + eps);                                                                   \
        if (rm) {                                                                                                    \
          st1(rm, ch, (1 - mom) * ld1(rm, ch) + mom * mean);                                                         \
          st1(rv, ch, (1 - mom) * ld1(rv, ch) + mom * sq / (double)(M - 1));                                         \
        }                                                                                                            \
      } else {                                                                                                       \
        mean = ld1(rm, ch);                                                                                          \
        invstd = 1.0 / sqrt(ld1(rv, ch) + eps);                                                                      \
      }                                                                                                              \
      double scale = (w ? (double)w[ch] : 1.0) * invstd;                                                             \
      double shift = (b ? (double)b[ch] : 0.0) - mean * scale;                                                       \
      T ts = (T)scale, tsh = (T)shift;                                                                               \
      for (int64_t n = 0; n < N; n++) {                                                                              \
        const T *p = x + (n * C + ch) * S;                                                                           \
        T *q = y + (n * C + ch) * S;                                                                                 \
        for (int64_t s = 0; s < S; s++) q[s] = p[s] * ts + tsh;                                                      \
      }                                                                                                              \
      sm[ch] = (T)mean;                                                                                              \
      si[ch] = (T)invstd;                                                                                            \
    }                                                                                                                \
  }                                                                                                                  \
  static void bn_bwd_##SUF(void *cv, int64_t lo, int64_t hi) {                                                       \
    const bn_ctx *c = cv;                                                                                            \
    const vr_kernel_args *a = c->a;                                                                                  \
    const T *g = vr_data(a->in[0]), *x = vr_data(a->in[1]);                                                          \
    const T *w = a->in[2] ? vr_data(a->in[2]) : NULL;                                                                \
    const T *sm = vr_data(a->in[3]), *si = vr_data(a->in[4]);                                                        \
    T *gx = a->out[0] ? vr_data(a->out[0]) : NULL;                                                                   \
    T *gw = a->out[1] ? vr_data(a->out[1]) : NULL, *gb = a->out[2] ? vr_data(a->out[2]) : NULL;                      \
    int64_t N = c->N, C = c->C, S = c->S, M = N * S;                                                                 \
    for (int64_t ch = lo; ch < hi; ch++) {                                                                           \
      double mean = sm[ch], invstd = si[ch], sg = 0, sgx = 0;                                                        \
      for (int64_t n = 0; n < N; n++) {                                                                              \
        const T *gp = g + (n * C + ch) * S, *xp = x + (n * C + ch) * S;                                              \
        for (int64_t s = 0; s < S; s++) {                                                                            \
          sg += gp[s];                                                                                               \
          sgx += gp[s] * (xp[s] - mean);                                                                             \
        }                                                                                                            \
      }                                                                                                              \
      if (gb) gb[ch] = (T)sg;                                                                                        \
      if (gw) gw[ch] = (T)(sgx * invstd);                                                                            \
      if (!gx) continue;                                                                                             \
      double wi = (w ? (double)w[ch] : 1.0) * invstd;                                                                \
      /* batch stats: gx = w invstd (g - mean(g) - xhat mean(g xhat)); running stats: gx = w invstd g */         \
      double k1 = a->i[0] ? sg / (double)M : 0.0, k2 = a->i[0] ? sgx * invstd * invstd / (double)M : 0.0;            \
      for (int64_t n = 0; n < N; n++) {                                                                              \
        const T *gp = g + (n * C + ch) * S, *xp = x + (n * C + ch) * S;                                              \
        T *o = gx + (n * C + ch) * S;                                                                                \
        for (int64_t s = 0; s < S; s++) o[s] = (T)(wi * (gp[s] - k1 - (xp[s] - mean) * k2));                         \
      }                                                                                                              \
    }                                                                                                                \
  }

BN_KERNELS(float, f32)
BN_KERNELS(double, f64)

/* channels are independent: split them over threads, a few per chunk when channels are small */
static int64_t bn_grain(int64_t M) { return M >= 32768 ? 1 : 32768 / (M ? M : 1); }

static vr_status bn_fwd(const vr_kernel_args *a) {
  bn_ctx c = {a, a->i[1], a->i[2], a->i[3]};
  switch (a->in[0]->dtype) {
  case VR_F32: vr_parallel_for(c.C, bn_grain(c.N * c.S), bn_fwd_f32, &c); return VR_OK;
  case VR_F64: vr_parallel_for(c.C, bn_grain(c.N * c.S), bn_fwd_f64, &c); return VR_OK;
  default: return unsupported(__func__, a->in[0]->dtype);
  }
}

static vr_status bn_bwd(const vr_kernel_args *a) {
  bn_ctx c = {a, a->i[1], a->i[2], a->i[3]};
  switch (a->in[1]->dtype) {
  case VR_F32: vr_parallel_for(c.C, bn_grain(c.N * c.S), bn_bwd_f32, &c); return VR_OK;
  case VR_F64: vr_parallel_for(c.C, bn_grain(c.N * c.S), bn_bwd_f64, &c); return VR_OK;
  default: return unsupported(__func__, a->in[1]->dtype);
  }
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
      double sum = 0, sq = 0;                                                                                        \
      for (int64_t d = 0; d < D; d++) sum += p[d];                                                                   \
      double mean = sum / (double)D;                                                                                 \
      for (int64_t d = 0; d < D; d++) {                                                                              \
        double e = p[d] - mean;                                                                                      \
        sq += e * e;                                                                                                 \
      }                                                                                                              \
      double invstd = 1.0 / sqrt(sq / (double)D + a->f[0]);                                                          \
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
  /* grad_x, row by row: gx = invstd (dh - mean(dh) - xhat mean(dh xhat)), dh = g w */                              \
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
      double mean = sm[r], invstd = si[r], s1 = 0, s2 = 0;                                                           \
      for (int64_t d = 0; d < D; d++) {                                                                              \
        double dh = w ? (double)gp[d] * w[d] : (double)gp[d];                                                        \
        s1 += dh;                                                                                                    \
        s2 += dh * (xp[d] - mean) * invstd;                                                                          \
      }                                                                                                              \
      s1 /= (double)D;                                                                                               \
      s2 /= (double)D;                                                                                               \
      for (int64_t d = 0; d < D; d++) {                                                                              \
        double dh = w ? (double)gp[d] * w[d] : (double)gp[d];                                                        \
        gx[r * D + d] = (T)(invstd * (dh - s1 - (xp[d] - mean) * invstd * s2));                                      \
      }                                                                                                              \
    }                                                                                                                \
  }                                                                                                                  \
  /* grad_w, grad_b, by blocks of columns, rows summed in order (deterministic) */                                 \
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

static vr_status ln_fwd(const vr_kernel_args *a) {
  ln_ctx c = {a, a->i[0], a->i[1]};
  switch (a->in[0]->dtype) {
  case VR_F32: vr_parallel_for(c.R, row_grain(c.D), ln_fwd_f32, &c); return VR_OK;
  case VR_F64: vr_parallel_for(c.R, row_grain(c.D), ln_fwd_f64, &c); return VR_OK;
  default: return unsupported(__func__, a->in[0]->dtype);
  }
}

static vr_status ln_bwd(const vr_kernel_args *a) {
  ln_ctx c = {a, a->i[0], a->i[1]};
  vr_dtype dt = a->in[1]->dtype;
  if (dt != VR_F32 && dt != VR_F64) return unsupported(__func__, dt);
  int64_t wgrain = row_grain(c.R) < 256 ? 256 : row_grain(c.R);
  if (a->out[0]) vr_parallel_for(c.R, row_grain(c.D), dt == VR_F32 ? ln_bwd_x_f32 : ln_bwd_x_f64, &c);
  if (a->out[1] || a->out[2]) vr_parallel_for(c.D, wgrain, dt == VR_F32 ? ln_bwd_wb_f32 : ln_bwd_wb_f64, &c);
  return VR_OK;
}

void vr_cpu_register_norm(void) {
  vr_kernel_register(VR_OP_BATCHNORM, VR_CPU, bn_fwd, bn_bwd);
  vr_kernel_register(VR_OP_LAYERNORM, VR_CPU, ln_fwd, ln_bwd);
}
