/* softmax.c: CPU softmax / log-softmax along one dim and fused cross-entropy, forward and
 * backward. The argument layout is documented in core/ops/softmax.c; every tensor arrives
 * contiguous. A line is the D elements along the softmax dim (stride `inner`); lines are split
 * over threads and each is reduced in a fixed order, so results do not depend on the thread count. */
#include "cpu.h"
#include <math.h>
#include <stdlib.h>

static vr_status unsupported(const char *func, const char *arg, vr_dtype dt) {
  return vr_error_set(VR_E_UNSUPPORTED, func, __FILE__, __LINE__, "%s: dtype %s has no CPU kernel (f32, f64)", arg,
                      vr_dtype_name(dt));
}

static inline float exp_f32(float v) { return expf(v); }
static inline double exp_f64(double v) { return exp(v); }

typedef struct { const vr_kernel_args *a; int64_t outer, D, inner; } sm_ctx;

static inline double lanes_sum(const double *a) { return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7])); }

/* Line helpers over n elements at stride st; 8 independent lanes so that the loops vectorise
 * and the reduction order is fixed. Inlined, so st = 1 gets its own contiguous code. */
#define SM_LINES(T, SUF)                                                                                             \
  static inline T lmax_##SUF(const T *p, int64_t n, int64_t st) {                                                    \
    T m[8];                                                                                                          \
    for (int j = 0; j < 8; j++) m[j] = -INFINITY;                                                                    \
    int64_t k = 0;                                                                                                   \
    for (; k + 8 <= n; k += 8)                                                                                       \
      for (int j = 0; j < 8; j++) m[j] = p[(k + j) * st] > m[j] ? p[(k + j) * st] : m[j];                            \
    for (; k < n; k++) m[0] = p[k * st] > m[0] ? p[k * st] : m[0];                                                   \
    T r = m[0];                                                                                                      \
    for (int j = 1; j < 8; j++) r = m[j] > r ? m[j] : r;                                                             \
    if (isinf(r) && r < 0) r = 0; /* all -inf (or empty): avoid inf - inf */                                         \
    return r;                                                                                                        \
  }                                                                                                                  \
  /* sum of exp(p - mx); the terms go to q when q is not NULL */                                                   \
  static inline double lsumexp_##SUF(const T *p, T *q, int64_t n, int64_t st, T mx) {                                \
    double acc[8] = {0};                                                                                             \
    int64_t k = 0;                                                                                                   \
    for (; k + 8 <= n; k += 8)                                                                                       \
      for (int j = 0; j < 8; j++) {                                                                                  \
        T e = exp_##SUF(p[(k + j) * st] - mx);                                                                       \
        if (q) q[(k + j) * st] = e;                                                                                  \
        acc[j] += e;                                                                                                 \
      }                                                                                                              \
    for (; k < n; k++) {                                                                                             \
      T e = exp_##SUF(p[k * st] - mx);                                                                               \
      if (q) q[k * st] = e;                                                                                          \
      acc[k & 7] += e;                                                                                               \
    }                                                                                                                \
    return lanes_sum(acc);                                                                                           \
  }                                                                                                                  \
  /* sum of p (and of p * y when y is not NULL, returned in *py) */                                                  \
  static inline double lsum_##SUF(const T *p, const T *y, int64_t n, int64_t st, double *py) {                       \
    double a[8] = {0}, b[8] = {0};                                                                                   \
    int64_t k = 0;                                                                                                   \
    for (; k + 8 <= n; k += 8)                                                                                       \
      for (int j = 0; j < 8; j++) {                                                                                  \
        a[j] += p[(k + j) * st];                                                                                     \
        if (y) b[j] += (double)p[(k + j) * st] * y[(k + j) * st];                                                    \
      }                                                                                                              \
    for (; k < n; k++) {                                                                                             \
      a[k & 7] += p[k * st];                                                                                         \
      if (y) b[k & 7] += (double)p[k * st] * y[k * st];                                                              \
    }                                                                                                                \
    if (py) *py = lanes_sum(b);                                                                                      \
    return lanes_sum(a);                                                                                             \
  }                                                                                                                  \
  static inline void sm_line_fwd_##SUF(const T *p, T *q, int64_t D, int64_t st, int logsm) {                         \
    T mx = lmax_##SUF(p, D, st);                                                                                     \
    if (logsm) {                                                                                                     \
      T lse = (T)(mx + log(lsumexp_##SUF(p, NULL, D, st, mx)));                                                      \
      for (int64_t d = 0; d < D; d++) q[d * st] = p[d * st] - lse;                                                   \
    } else {                                                                                                         \
      T inv = (T)(1.0 / lsumexp_##SUF(p, q, D, st, mx));                                                             \
      for (int64_t d = 0; d < D; d++) q[d * st] *= inv;                                                              \
    }                                                                                                                \
  }                                                                                                                  \
  /* softmax: gx = y (g - sum(g y)); log-softmax: gx = g - exp(y) sum(g) */                                        \
  static inline void sm_line_bwd_##SUF(const T *g, const T *y, T *o, int64_t D, int64_t st, int logsm) {             \
    if (logsm) {                                                                                                     \
      T ts = (T)lsum_##SUF(g, NULL, D, st, NULL);                                                                    \
      for (int64_t d = 0; d < D; d++) o[d * st] = g[d * st] - exp_##SUF(y[d * st]) * ts;                             \
    } else {                                                                                                         \
      double gy;                                                                                                     \
      lsum_##SUF(g, y, D, st, &gy);                                                                                  \
      T ts = (T)gy;                                                                                                  \
      for (int64_t d = 0; d < D; d++) o[d * st] = y[d * st] * (g[d * st] - ts);                                      \
    }                                                                                                                \
  }

/* line l = o * inner + i starts at o * D * inner + i */
#define SM_KERNELS(T, SUF)                                                                                           \
  static void sm_fwd_##SUF(void *cv, int64_t lo, int64_t hi) {                                                       \
    const sm_ctx *c = cv;                                                                                            \
    int64_t D = c->D, in = c->inner;                                                                                 \
    int logsm = c->a->sub == 1;                                                                                      \
    const T *x = vr_data(c->a->in[0]);                                                                               \
    T *y = vr_data(c->a->out[0]);                                                                                    \
    for (int64_t l = lo; l < hi; l++) {                                                                              \
      int64_t base = (l / in) * D * in + l % in;                                                                     \
      if (in == 1) sm_line_fwd_##SUF(x + base, y + base, D, 1, logsm);                                               \
      else sm_line_fwd_##SUF(x + base, y + base, D, in, logsm);                                                      \
    }                                                                                                                \
  }                                                                                                                  \
  static void sm_bwd_##SUF(void *cv, int64_t lo, int64_t hi) {                                                       \
    const sm_ctx *c = cv;                                                                                            \
    int64_t D = c->D, in = c->inner;                                                                                 \
    int logsm = c->a->sub == 1;                                                                                      \
    const T *g = vr_data(c->a->in[0]), *y = vr_data(c->a->in[1]);                                                    \
    T *gx = vr_data(c->a->out[0]);                                                                                   \
    for (int64_t l = lo; l < hi; l++) {                                                                              \
      int64_t base = (l / in) * D * in + l % in;                                                                     \
      if (in == 1) sm_line_bwd_##SUF(g + base, y + base, gx + base, D, 1, logsm);                                    \
      else sm_line_bwd_##SUF(g + base, y + base, gx + base, D, in, logsm);                                           \
    }                                                                                                                \
  }

SM_LINES(float, f32)
SM_LINES(double, f64)
SM_KERNELS(float, f32)
SM_KERNELS(double, f64)

static int64_t line_grain(int64_t D) { return D >= 8192 ? 1 : 8192 / (D ? D : 1); }

static vr_status vr_cpu_softmax_fwd(const vr_kernel_args *a) {
  sm_ctx c = {a, a->i[0], a->i[1], a->i[2]};
  switch (a->in[0]->dtype) {
  case VR_F32: vr_parallel_for(c.outer * c.inner, line_grain(c.D), sm_fwd_f32, &c); return VR_OK;
  case VR_F64: vr_parallel_for(c.outer * c.inner, line_grain(c.D), sm_fwd_f64, &c); return VR_OK;
  default: return unsupported(__func__, "x", a->in[0]->dtype);
  }
}

static vr_status vr_cpu_softmax_bwd(const vr_kernel_args *a) {
  sm_ctx c = {a, a->i[0], a->i[1], a->i[2]};
  switch (a->in[1]->dtype) {
  case VR_F32: vr_parallel_for(c.outer * c.inner, line_grain(c.D), sm_bwd_f32, &c); return VR_OK;
  case VR_F64: vr_parallel_for(c.outer * c.inner, line_grain(c.D), sm_bwd_f64, &c); return VR_OK;
  default: return unsupported(__func__, "x", a->in[1]->dtype);
  }
}

/* ================================================================ cross-entropy */

typedef struct { const vr_kernel_args *a; int64_t N, C; double *row; } ce_ctx;

/* per row: lse = log sum exp x; loss = (1-eps)(lse - x_t) + eps (lse - mean_c x_c) */
#define CE_KERNELS(T, SUF)                                                                                           \
  static void ce_fwd_##SUF(void *cv, int64_t lo, int64_t hi) {                                                       \
    const ce_ctx *c = cv;                                                                                            \
    int64_t C = c->C;                                                                                                \
    double eps = c->a->f[0];                                                                                         \
    const T *x = vr_data(c->a->in[0]);                                                                               \
    const int64_t *t = vr_data(c->a->in[1]);                                                                         \
    T *lse_out = vr_data(c->a->out[1]);                                                                              \
    for (int64_t n = lo; n < hi; n++) {                                                                              \
      const T *p = x + n * C;                                                                                        \
      T mx = lmax_##SUF(p, C, 1);                                                                                    \
      double lse = (double)mx + log(lsumexp_##SUF(p, NULL, C, 1, mx));                                               \
      lse_out[n] = (T)lse;                                                                                           \
      double nll = lse - (double)p[t[n]];                                                                            \
      c->row[n] = eps == 0 ? nll : (1 - eps) * nll + eps * (lse - lsum_##SUF(p, NULL, C, 1, NULL) / (double)C);     \
    }                                                                                                                \
  }                                                                                                                  \
  static void ce_bwd_##SUF(void *cv, int64_t lo, int64_t hi) {                                                       \
    const ce_ctx *c = cv;                                                                                            \
    int64_t C = c->C;                                                                                                \
    double eps = c->a->f[0];                                                                                         \
    const T *x = vr_data(c->a->in[1]), *lse = vr_data(c->a->in[3]);                                                  \
    const int64_t *t = vr_data(c->a->in[2]);                                                                         \
    T *gx = vr_data(c->a->out[0]);                                                                                   \
    double g = vr_load(vr_data(c->a->in[0]), c->a->in[0]->dtype) / (double)c->N;                                     \
    T tg = (T)g, off = (T)(g * eps / (double)C), hit = (T)(g * (1 - eps));                                           \
    for (int64_t n = lo; n < hi; n++) {                                                                              \
      const T *p = x + n * C;                                                                                        \
      T *o = gx + n * C;                                                                                             \
      T l = lse[n];                                                                                                  \
      for (int64_t k = 0; k < C; k++) o[k] = tg * exp_##SUF(p[k] - l) - off;                                         \
      o[t[n]] -= hit;                                                                                                \
    }                                                                                                                \
  }

CE_KERNELS(float, f32)
CE_KERNELS(double, f64)

static vr_status vr_cpu_cross_entropy_fwd(const vr_kernel_args *a) {
  vr_dtype dt = a->in[0]->dtype;
  if (dt != VR_F32 && dt != VR_F64) return unsupported(__func__, "logits", dt);
  int64_t N = a->i[0];
  ce_ctx c = {a, N, a->i[1], malloc(sizeof(double) * (size_t)(N ? N : 1))};
  if (!c.row) return VR_FAIL(VR_E_OOM, "cross_entropy: could not allocate %lld row losses", (long long)N);
  vr_parallel_for(N, line_grain(c.C), dt == VR_F32 ? ce_fwd_f32 : ce_fwd_f64, &c);
  double sum = 0; /* summed in row order: deterministic */
  for (int64_t n = 0; n < N; n++) sum += c.row[n];
  free(c.row);
  vr_store(vr_data(a->out[0]), a->out[0]->dtype, sum / (double)N);
  return VR_OK;
}

static vr_status vr_cpu_cross_entropy_bwd(const vr_kernel_args *a) {
  vr_dtype dt = a->in[1]->dtype;
  if (dt != VR_F32 && dt != VR_F64) return unsupported(__func__, "logits", dt);
  ce_ctx c = {a, a->i[0], a->i[1], NULL};
  vr_parallel_for(c.N, line_grain(c.C), dt == VR_F32 ? ce_bwd_f32 : ce_bwd_f64, &c);
  return VR_OK;
}

void vr_cpu_register_softmax(void) {
  vr_kernel_register(VR_OP_SOFTMAX, VR_CPU, vr_cpu_softmax_fwd, vr_cpu_softmax_bwd);
  vr_kernel_register(VR_OP_CROSS_ENTROPY, VR_CPU, vr_cpu_cross_entropy_fwd, vr_cpu_cross_entropy_bwd);
}
