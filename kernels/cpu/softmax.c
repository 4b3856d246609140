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
      const T *p = x + base;                                                                                         \
      T *q = y + base;                                                                                               \
      T mx = -INFINITY;                                                                                              \
      for (int64_t d = 0; d < D; d++)                                                                                \
        if (p[d * in] > mx) mx = p[d * in];                                                                          \
      if (isinf(mx) && mx < 0) mx = 0; /* all -inf: avoid inf - inf */                                               \
      double sum = 0;                                                                                                \
      if (logsm) {                                                                                                   \
        for (int64_t d = 0; d < D; d++) sum += exp_##SUF(p[d * in] - mx);                                            \
        T lse = (T)(mx + log(sum));                                                                                  \
        for (int64_t d = 0; d < D; d++) q[d * in] = p[d * in] - lse;                                                 \
      } else {                                                                                                       \
        for (int64_t d = 0; d < D; d++) {                                                                            \
          T e = exp_##SUF(p[d * in] - mx);                                                                           \
          q[d * in] = e;                                                                                             \
          sum += e;                                                                                                  \
        }                                                                                                            \
        T inv = (T)(1.0 / sum);                                                                                      \
        for (int64_t d = 0; d < D; d++) q[d * in] *= inv;                                                            \
      }                                                                                                              \
    }                                                                                                                \
  }                                                                                                                  \
  /* softmax: gx = y (g - sum(g y)); log-softmax: gx = g - exp(y) sum(g) */                                        \
  static void sm_bwd_##SUF(void *cv, int64_t lo, int64_t hi) {                                                       \
    const sm_ctx *c = cv;                                                                                            \
    int64_t D = c->D, in = c->inner;                                                                                 \
    int logsm = c->a->sub == 1;                                                                                      \
    const T *g = vr_data(c->a->in[0]), *y = vr_data(c->a->in[1]);                                                    \
    T *gx = vr_data(c->a->out[0]);                                                                                   \
    for (int64_t l = lo; l < hi; l++) {                                                                              \
      int64_t base = (l / in) * D * in + l % in;                                                                     \
      const T *gp = g + base, *yp = y + base;                                                                        \
      T *o = gx + base;                                                                                              \
      double s = 0;                                                                                                  \
      if (logsm) {                                                                                                   \
        for (int64_t d = 0; d < D; d++) s += gp[d * in];                                                             \
        T ts = (T)s;                                                                                                 \
        for (int64_t d = 0; d < D; d++) o[d * in] = gp[d * in] - exp_##SUF(yp[d * in]) * ts;                         \
      } else {                                                                                                       \
        for (int64_t d = 0; d < D; d++) s += (double)gp[d * in] * yp[d * in];                                        \
        T ts = (T)s;                                                                                                 \
        for (int64_t d = 0; d < D; d++) o[d * in] = yp[d * in] * (gp[d * in] - ts);                                  \
      }                                                                                                              \
    }                                                                                                                \
  }

SM_KERNELS(float, f32)
SM_KERNELS(double, f64)

static int64_t line_grain(int64_t D) { return D >= 8192 ? 1 : 8192 / (D ? D : 1); }

static vr_status sm_fwd(const vr_kernel_args *a) {
  sm_ctx c = {a, a->i[0], a->i[1], a->i[2]};
  switch (a->in[0]->dtype) {
  case VR_F32: vr_parallel_for(c.outer * c.inner, line_grain(c.D), sm_fwd_f32, &c); return VR_OK;
  case VR_F64: vr_parallel_for(c.outer * c.inner, line_grain(c.D), sm_fwd_f64, &c); return VR_OK;
  default: return unsupported(__func__, "x", a->in[0]->dtype);
  }
}

static vr_status sm_bwd(const vr_kernel_args *a) {
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
      T mx = -INFINITY;                                                                                              \
      double sx = 0, se = 0;                                                                                         \
      for (int64_t k = 0; k < C; k++) {                                                                              \
        if (p[k] > mx) mx = p[k];                                                                                    \
        sx += p[k];                                                                                                  \
      }                                                                                                              \
      if (isinf(mx) && mx < 0) mx = 0;                                                                               \
      for (int64_t k = 0; k < C; k++) se += exp_##SUF(p[k] - mx);                                                    \
      double lse = (double)mx + log(se);                                                                             \
      lse_out[n] = (T)lse;                                                                                           \
      double nll = lse - (double)p[t[n]];                                                                            \
      c->row[n] = eps == 0 ? nll : (1 - eps) * nll + eps * (lse - sx / (double)C);                                   \
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

static vr_status ce_fwd(const vr_kernel_args *a) {
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

static vr_status ce_bwd(const vr_kernel_args *a) {
  vr_dtype dt = a->in[1]->dtype;
  if (dt != VR_F32 && dt != VR_F64) return unsupported(__func__, "logits", dt);
  ce_ctx c = {a, a->i[0], a->i[1], NULL};
  vr_parallel_for(c.N, line_grain(c.C), dt == VR_F32 ? ce_bwd_f32 : ce_bwd_f64, &c);
  return VR_OK;
}

void vr_cpu_register_softmax(void) {
  vr_kernel_register(VR_OP_SOFTMAX, VR_CPU, sm_fwd, sm_bwd);
  vr_kernel_register(VR_OP_CROSS_ENTROPY, VR_CPU, ce_fwd, ce_bwd);
}
