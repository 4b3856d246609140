/* elementwise.c: CPU kernels of VR_OP_BINARY and VR_OP_UNARY (argument layout documented in
 * core/ops/elementwise.c). f32 and f64 have typed loops (contiguous and broadcast-scalar runs
 * vectorise); other dtypes go through vr_load/vr_store in double. */
/* FP exceptions are never inspected: let the compiler if-convert the NaN-aware selects and
 * inline floor, so the loops below vectorise (values are unchanged: no reassociation) */
#pragma GCC optimize("no-trapping-math")
#include "cpu.h"
#include <math.h>

#define GRAIN 32768

/* ---------------------------------------------------------------- vectorisable expf */

/* Cephes' expf (about 1 ulp): x = n ln2 + r, a degree-6 polynomial in r, then 2^n applied in
 * two halves so that overflow gives inf and tiny results go through the denormals. Branch-free,
 * so loops over it vectorise (libm's expf does not without -ffast-math). */
static inline float vexpf(float x) {
  float xc = x > 89.0f ? 89.0f : x;
  xc = xc < -104.0f ? -104.0f : xc;
  xc = x != x ? 0.0f : xc; /* NaN: computed on 0, replaced below (keeps the int conversion defined) */
  float n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f; /* round to nearest */
  float r = xc - n * 0.693359375f + n * 2.12194440e-4f;
  float p = 1.9875691500E-4f;
  p = p * r + 1.3981999507E-3f;
  p = p * r + 8.3334519073E-3f;
  p = p * r + 4.1665795894E-2f;
  p = p * r + 1.6666665459E-1f;
  p = p * r + 5.0000001201E-1f;
  float y = p * r * r + r + 1.0f;
  int32_t ni = (int32_t)n, n1 = ni >> 1, n2 = ni - n1;
  uint32_t b1 = (uint32_t)(n1 + 127) << 23, b2 = (uint32_t)(n2 + 127) << 23;
  float s1, s2;
  memcpy(&s1, &b1, 4);
  memcpy(&s2, &b2, 4);
  y = y * s1 * s2;
  return x != x ? x : y;
}

/* ---------------------------------------------------------------- scalar maths in double */

static const double SQRT1_2 = 0.70710678118654752440, INV_SQRT_2PI = 0.39894228040143267794,
                    SQRT_2_OVER_PI = 0.79788456080286535588, GELU_C = 0.044715;

static inline double un_eval(int kind, double x, double c0, double c1) {
  switch (kind) {
  case VR_UN_NEG: return -x;
  case VR_UN_EXP: return exp(x);
  case VR_UN_LOG: return log(x);
  case VR_UN_SQRT: return sqrt(x);
  case VR_UN_RSQRT: return 1 / sqrt(x);
  case VR_UN_ABS: return fabs(x);
  case VR_UN_TANH: return tanh(x);
  case VR_UN_SIGMOID: return x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x));
  case VR_UN_RELU: return x > 0 ? x : (x != x ? x : 0);
  case VR_UN_GELU: return 0.5 * x * (1 + erf(x * SQRT1_2));
  case VR_UN_GELU_TANH: return 0.5 * x * (1 + tanh(SQRT_2_OVER_PI * (x + GELU_C * x * x * x)));
  case VR_UN_SIN: return sin(x);
  case VR_UN_COS: return cos(x);
  case VR_UN_SQUARE: return x * x;
  case VR_UN_CLAMP: return x < c0 ? c0 : (x > c1 ? c1 : x);
  case VR_UN_ERF: return erf(x);
  case VR_UN_ERFINV: return vr_erfinv_f64(x);
  case VR_UN_ADD_SCALAR: return x + c0;
  case VR_UN_MUL_SCALAR: return x * c0;
  case VR_UN_RSUB_SCALAR: return c0 - x;
  case VR_UN_RDIV_SCALAR: return c0 / x;
  case VR_UN_POW_SCALAR: return pow(x, c0);
  }
  return NAN;
}

/* d y / d x times g, given x and y */
static inline double un_grad(int kind, double g, double x, double y, double c0, double c1) {
  switch (kind) {
  case VR_UN_NEG: return -g;
  case VR_UN_EXP: return g * y;
  case VR_UN_LOG: return g / x;
  case VR_UN_SQRT: return g * 0.5 / y;
  case VR_UN_RSQRT: return -0.5 * g * y * y * y;
  case VR_UN_ABS: return x > 0 ? g : (x < 0 ? -g : 0);
  case VR_UN_TANH: return g * (1 - y * y);
  case VR_UN_SIGMOID: return g * y * (1 - y);
  case VR_UN_RELU: return x > 0 ? g : 0;
  case VR_UN_GELU: return g * (0.5 * (1 + erf(x * SQRT1_2)) + x * INV_SQRT_2PI * exp(-0.5 * x * x));
  case VR_UN_GELU_TANH: {
    double t = tanh(SQRT_2_OVER_PI * (x + GELU_C * x * x * x));
    return g * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * SQRT_2_OVER_PI * (1 + 3 * GELU_C * x * x));
  }
  case VR_UN_SIN: return g * cos(x);
  case VR_UN_COS: return -g * sin(x);
  case VR_UN_SQUARE: return 2 * g * x;
  case VR_UN_CLAMP: return (x >= c0 && x <= c1) ? g : 0;
  case VR_UN_ERF: return g * 1.1283791670955126 * exp(-x * x);
  case VR_UN_ERFINV: return g * 0.88622692545275801 * exp(y * y);
  case VR_UN_ADD_SCALAR: return g;
  case VR_UN_MUL_SCALAR: return g * c0;
  case VR_UN_RSUB_SCALAR: return -g;
  case VR_UN_RDIV_SCALAR: return -g * c0 / (x * x);
  case VR_UN_POW_SCALAR: return c0 == 0 ? 0 : g * c0 * pow(x, c0 - 1);
  }
  return NAN;
}

static inline double bin_eval(int kind, double a, double b) {
  switch (kind) {
  case VR_BIN_ADD: return a + b;
  case VR_BIN_SUB: return a - b;
  case VR_BIN_MUL: return a * b;
  case VR_BIN_DIV: return a / b;
  case VR_BIN_POW: return pow(a, b);
  case VR_BIN_MAX: return (a > b || a != a) ? a : b;
  case VR_BIN_MIN: return (a < b || a != a) ? a : b;
  case VR_BIN_EQ: return a == b;
  case VR_BIN_GT: return a > b;
  case VR_BIN_LT: return a < b;
  }
  return NAN;
}

/* gradient of a binary op wrt a (which = 0) or b (which = 1) */
static inline double bin_grad(int kind, int which, double g, double a, double b) {
  switch (kind) {
  case VR_BIN_ADD: return g;
  case VR_BIN_SUB: return which ? -g : g;
  case VR_BIN_MUL: return which ? g * a : g * b;
  case VR_BIN_DIV: return which ? -g * a / (b * b) : g / b;
  case VR_BIN_POW:
    if (!which) return b == 0 ? 0 : g * b * pow(a, b - 1);
    return (a == 0 && b >= 0) ? 0 : g * pow(a, b) * log(a);
  case VR_BIN_MAX: {
    double s = which ? b : a, o = which ? a : b;
    return s > o ? g : (s == o ? 0.5 * g : 0);
  }
  case VR_BIN_MIN: {
    double s = which ? b : a, o = which ? a : b;
    return s < o ? g : (s == o ? 0.5 * g : 0);
  }
  }
  return 0;
}

/* ---------------------------------------------------------------- transposed operands */

/* When an operand is transposed relative to the iteration order (stride 1 on the next-to-inner
 * dim, a long stride on the inner one), walking rows touches a new cache line per element. Then
 * the last two dims are visited in TILE x TILE blocks, so every line fetched is used TILE times. */
#define TILE 32

static bool wants_tiles(const vr_iter *it) {
  int nd = it->ndim;
  if (nd < 2 || it->numel < 4096 || it->shape[nd - 1] < TILE || it->shape[nd - 2] < TILE) return false;
  for (int k = 0; k < it->nops; k++)
    if (it->st[k][nd - 2] == 1 && it->st[k][nd - 1] != 1) return true;
  return false;
}

typedef struct { const vr_iter *it; vr_iter_run_fn run; void *ctx; int64_t rtiles; } tile_ctx;

static void tile_body(void *c, int64_t lo, int64_t hi) {
  const tile_ctx *tc = c;
  const vr_iter *it = tc->it;
  int nd = it->ndim;
  int64_t R = it->shape[nd - 2], C = it->shape[nd - 1], s[VR_ITER_MAX_OPS];
  char *p[VR_ITER_MAX_OPS];
  for (int k = 0; k < it->nops; k++) s[k] = it->st[k][nd - 1];
  for (int64_t job = lo; job < hi; job++) {
    int64_t outer = job / tc->rtiles, i0 = (job % tc->rtiles) * TILE, i1 = i0 + TILE < R ? i0 + TILE : R;
    int64_t base[VR_ITER_MAX_OPS] = {0}, rem = outer;
    for (int d = nd - 3; d >= 0; d--) {
      int64_t idx = rem % it->shape[d];
      rem /= it->shape[d];
      for (int k = 0; k < it->nops; k++) base[k] += idx * it->st[k][d];
    }
    for (int64_t j0 = 0; j0 < C; j0 += TILE) {
      int64_t n = C - j0 < TILE ? C - j0 : TILE;
      for (int64_t i = i0; i < i1; i++) {
        for (int k = 0; k < it->nops; k++)
          p[k] = it->base[k] + (base[k] + i * it->st[k][nd - 2] + j0 * s[k]) * (int64_t)it->esize[k];
        tc->run(tc->ctx, p, s, n);
      }
    }
  }
}

/* vr_iter_parallel, tiled when an operand is transposed */
static void iter_run_all(const vr_iter *it, int64_t grain, vr_iter_run_fn run, void *ctx) {
  if (!wants_tiles(it)) {
    vr_iter_parallel(it, grain, run, ctx);
    return;
  }
  int nd = it->ndim;
  int64_t rtiles = (it->shape[nd - 2] + TILE - 1) / TILE, outer = it->numel / (it->shape[nd - 2] * it->shape[nd - 1]);
  tile_ctx tc = {it, run, ctx, rtiles};
  int64_t per = TILE * it->shape[nd - 1], g = grain / (per ? per : 1);
  vr_parallel_for(outer * rtiles, g < 1 ? 1 : g, tile_body, &tc);
}

/* ---------------------------------------------------------------- binary forward */

/* dt, dtb: the operands' dtypes (equal from the front-end; vr_add_ may pass a different src) */
typedef struct { int kind; vr_dtype dt, dtb, odt; } bin_ctx;

/* o = EXPR(x, y) over a run; contiguous and broadcast-scalar cases get their own loops so
 * that the compiler vectorises them */
#define BIN_RUN(T, TO, EXPR)                                                                        \
  do {                                                                                              \
    TO *o = (TO *)p[0];                                                                             \
    const T *A = (const T *)p[1], *B = (const T *)p[2];                                            \
    if (s[0] == 1 && s[1] == 1 && s[2] == 1) {                                                      \
      for (int64_t k = 0; k < n; k++) { T x = A[k], y = B[k]; o[k] = (TO)(EXPR); }                  \
    } else if (s[0] == 1 && s[1] == 1 && s[2] == 0) {                                               \
      const T y = B[0];                                                                             \
      for (int64_t k = 0; k < n; k++) { T x = A[k]; o[k] = (TO)(EXPR); }                            \
    } else if (s[0] == 1 && s[1] == 0 && s[2] == 1) {                                               \
      const T x = A[0];                                                                             \
      for (int64_t k = 0; k < n; k++) { T y = B[k]; o[k] = (TO)(EXPR); }                            \
    } else {                                                                                        \
      for (int64_t k = 0; k < n; k++) { T x = A[k * s[1]], y = B[k * s[2]]; o[k * s[0]] = (TO)(EXPR); } \
    }                                                                                               \
  } while (0)

#define BIN_TYPED(T, POW)                                                        \
  switch (kind) {                                                                \
  case VR_BIN_ADD: BIN_RUN(T, T, x + y); return;                                 \
  case VR_BIN_SUB: BIN_RUN(T, T, x - y); return;                                 \
  case VR_BIN_MUL: BIN_RUN(T, T, x * y); return;                                 \
  case VR_BIN_DIV: BIN_RUN(T, T, x / y); return;                                 \
  case VR_BIN_POW: BIN_RUN(T, T, POW(x, y)); return;                             \
  case VR_BIN_MAX: BIN_RUN(T, T, (x > y || x != x) ? x : y); return;             \
  case VR_BIN_MIN: BIN_RUN(T, T, (x < y || x != x) ? x : y); return;             \
  case VR_BIN_EQ: BIN_RUN(T, uint8_t, x == y); return;                           \
  case VR_BIN_GT: BIN_RUN(T, uint8_t, x > y); return;                            \
  case VR_BIN_LT: BIN_RUN(T, uint8_t, x < y); return;                            \
  }

static void bin_run(void *c, char *const *p, const int64_t *s, int64_t n) {
  const bin_ctx *bc = c;
  int kind = bc->kind;
  if (bc->dt == bc->dtb) {
    if (bc->dt == VR_F32) { BIN_TYPED(float, powf) }
    if (bc->dt == VR_F64) { BIN_TYPED(double, pow) }
  }
  size_t ei = vr_dtype_size(bc->dt), eb = vr_dtype_size(bc->dtb), eo = vr_dtype_size(bc->odt);
  for (int64_t k = 0; k < n; k++) {
    double x = vr_load(p[1] + k * s[1] * (int64_t)ei, bc->dt), y = vr_load(p[2] + k * s[2] * (int64_t)eb, bc->dtb);
    double r = bin_eval(kind, x, y);
    if (bc->dt == VR_I64 && bc->dtb == VR_I64 && (kind == VR_BIN_ADD || kind == VR_BIN_SUB || kind == VR_BIN_MUL)) {
      /* exact 64-bit integer arithmetic, not via double */
      int64_t xi = *(const int64_t *)(p[1] + k * s[1] * 8), yi = *(const int64_t *)(p[2] + k * s[2] * 8);
      *(int64_t *)(p[0] + k * s[0] * 8) = kind == VR_BIN_ADD ? xi + yi : kind == VR_BIN_SUB ? xi - yi : xi * yi;
      continue;
    }
    vr_store(p[0] + k * s[0] * (int64_t)eo, bc->odt, r);
  }
}

static vr_status vr_cpu_binary_fwd(const vr_kernel_args *a) {
  vr_tensor *ts[3] = {a->out[0], a->in[0], a->in[1]};
  bin_ctx bc = {a->sub, a->in[0]->dtype, a->in[1]->dtype, a->out[0]->dtype};
  vr_iter it;
  vr_iter_init(&it, 3, ts);
  iter_run_all(&it, GRAIN, bin_run, &bc);
  return VR_OK;
}

/* ---------------------------------------------------------------- binary backward */

typedef struct { int kind, which; vr_dtype dt; } binb_ctx;

static void binb_run(void *c, char *const *p, const int64_t *s, int64_t n) {
  const binb_ctx *bc = c;
  /* p: {grad, g, a, b} */
  if (bc->dt == VR_F32) {
    float *o = (float *)p[0];
    const float *G = (const float *)p[1], *A = (const float *)p[2], *B = (const float *)p[3];
    if (bc->kind == VR_BIN_MUL && s[0] == 1 && s[1] == 1 && s[2] == 1 && s[3] == 1) {
      const float *O = bc->which ? A : B;
      for (int64_t k = 0; k < n; k++) o[k] = G[k] * O[k];
      return;
    }
    for (int64_t k = 0; k < n; k++)
      o[k * s[0]] = (float)bin_grad(bc->kind, bc->which, G[k * s[1]], A[k * s[2]], B[k * s[3]]);
    return;
  }
  if (bc->dt == VR_F64) {
    double *o = (double *)p[0];
    const double *G = (const double *)p[1], *A = (const double *)p[2], *B = (const double *)p[3];
    for (int64_t k = 0; k < n; k++) o[k * s[0]] = bin_grad(bc->kind, bc->which, G[k * s[1]], A[k * s[2]], B[k * s[3]]);
    return;
  }
  size_t e = vr_dtype_size(bc->dt);
  for (int64_t k = 0; k < n; k++) {
    double g = vr_load(p[1] + k * s[1] * (int64_t)e, bc->dt), x = vr_load(p[2] + k * s[2] * (int64_t)e, bc->dt),
           y = vr_load(p[3] + k * s[3] * (int64_t)e, bc->dt);
    vr_store(p[0] + k * s[0] * (int64_t)e, bc->dt, bin_grad(bc->kind, bc->which, g, x, y));
  }
}

static vr_status vr_cpu_binary_bwd(const vr_kernel_args *a) {
  for (int which = 0; which < 2; which++) {
    if (!a->out[which]) continue;
    vr_tensor *ts[4] = {a->out[which], a->in[0], a->in[1], a->in[2]};
    binb_ctx bc = {a->sub, which, a->in[0]->dtype};
    vr_iter it;
    vr_iter_init(&it, 4, ts);
    iter_run_all(&it, GRAIN, binb_run, &bc);
  }
  return VR_OK;
}

/* ---------------------------------------------------------------- unary forward */

typedef struct { int kind; vr_dtype dt; double c0, c1; } un_ctx;

#define UN_RUN(T, EXPR)                                                           \
  do {                                                                            \
    T *o = (T *)p[0];                                                             \
    const T *X = (const T *)p[1];                                                 \
    if (s[0] == 1 && s[1] == 1) {                                                 \
      for (int64_t k = 0; k < n; k++) { T x = X[k]; o[k] = (T)(EXPR); }           \
    } else {                                                                      \
      for (int64_t k = 0; k < n; k++) { T x = X[k * s[1]]; o[k * s[0]] = (T)(EXPR); } \
    }                                                                             \
  } while (0)

static void un_run(void *c, char *const *p, const int64_t *s, int64_t n) {
  const un_ctx *u = c;
  if (u->dt == VR_F32) {
    const float c0 = (float)u->c0, c1 = (float)u->c1;
    switch (u->kind) {
    case VR_UN_NEG: UN_RUN(float, -x); return;
    case VR_UN_EXP: UN_RUN(float, vexpf(x)); return;
    case VR_UN_LOG: UN_RUN(float, logf(x)); return;
    case VR_UN_SQRT: UN_RUN(float, sqrtf(x)); return;
    case VR_UN_RSQRT: UN_RUN(float, 1.0f / sqrtf(x)); return;
    case VR_UN_ABS: UN_RUN(float, fabsf(x)); return;
    case VR_UN_TANH: UN_RUN(float, tanhf(x)); return;
    case VR_UN_SIGMOID: UN_RUN(float, 1.0f / (1.0f + vexpf(-x))); return;
    case VR_UN_RELU: UN_RUN(float, x > 0 ? x : (x != x ? x : 0.0f)); return;
    case VR_UN_GELU: UN_RUN(float, 0.5f * x * (1.0f + erff(x * (float)SQRT1_2))); return;
    case VR_UN_GELU_TANH:
      UN_RUN(float, 0.5f * x * (1.0f + tanhf((float)SQRT_2_OVER_PI * (x + (float)GELU_C * x * x * x)))); return;
    case VR_UN_SIN: UN_RUN(float, sinf(x)); return;
    case VR_UN_COS: UN_RUN(float, cosf(x)); return;
    case VR_UN_SQUARE: UN_RUN(float, x * x); return;
    case VR_UN_CLAMP: UN_RUN(float, x < c0 ? c0 : (x > c1 ? c1 : x)); return;
    case VR_UN_ADD_SCALAR: UN_RUN(float, x + c0); return;
    case VR_UN_MUL_SCALAR: UN_RUN(float, x * c0); return;
    case VR_UN_RSUB_SCALAR: UN_RUN(float, c0 - x); return;
    case VR_UN_RDIV_SCALAR: UN_RUN(float, c0 / x); return;
    case VR_UN_POW_SCALAR:
      if (u->c0 == 2) UN_RUN(float, x * x);
      else UN_RUN(float, powf(x, c0));
      return;
    default: UN_RUN(float, un_eval(u->kind, x, u->c0, u->c1)); return; /* erf, erfinv in double */
    }
  }
  if (u->dt == VR_F64) {
    const double c0 = u->c0, c1 = u->c1;
    switch (u->kind) {
    case VR_UN_NEG: UN_RUN(double, -x); return;
    case VR_UN_ABS: UN_RUN(double, fabs(x)); return;
    case VR_UN_RELU: UN_RUN(double, x > 0 ? x : (x != x ? x : 0.0)); return;
    case VR_UN_SQUARE: UN_RUN(double, x * x); return;
    case VR_UN_ADD_SCALAR: UN_RUN(double, x + c0); return;
    case VR_UN_MUL_SCALAR: UN_RUN(double, x * c0); return;
    case VR_UN_RSUB_SCALAR: UN_RUN(double, c0 - x); return;
    default: UN_RUN(double, un_eval(u->kind, x, c0, c1)); return;
    }
  }
  size_t e = vr_dtype_size(u->dt);
  bool is_int = vr_is_int(u->dt);
  for (int64_t k = 0; k < n; k++) {
    double x = vr_load(p[1] + k * s[1] * (int64_t)e, u->dt);
    double r = un_eval(u->kind, x, u->c0, u->c1);
    if (is_int && u->dt == VR_U8 && r < 0) r = fmod(r, 256) + 256; /* u8 wraps like C */
    vr_store(p[0] + k * s[0] * (int64_t)e, u->dt, r);
  }
}

static vr_status vr_cpu_unary_fwd(const vr_kernel_args *a) {
  vr_tensor *ts[2] = {a->out[0], a->in[0]};
  un_ctx u = {a->sub, a->in[0]->dtype, a->f[0], a->f[1]};
  vr_iter it;
  vr_iter_init(&it, 2, ts);
  iter_run_all(&it, GRAIN, un_run, &u);
  return VR_OK;
}

/* ---------------------------------------------------------------- unary backward */

static void unb_run(void *c, char *const *p, const int64_t *s, int64_t n) {
  const un_ctx *u = c;
  /* p: {grad_x, grad_y, x, y} */
  if (u->dt == VR_F32) {
    float *o = (float *)p[0];
    const float *G = (const float *)p[1], *X = (const float *)p[2], *Y = (const float *)p[3];
    if (s[0] == 1 && s[1] == 1 && s[2] == 1 && s[3] == 1) {
      switch (u->kind) {
      case VR_UN_RELU: for (int64_t k = 0; k < n; k++) o[k] = X[k] > 0 ? G[k] : 0.0f; return;
      case VR_UN_MUL_SCALAR: { float c0 = (float)u->c0; for (int64_t k = 0; k < n; k++) o[k] = G[k] * c0; return; }
      case VR_UN_SQUARE: for (int64_t k = 0; k < n; k++) o[k] = 2.0f * G[k] * X[k]; return;
      case VR_UN_EXP: for (int64_t k = 0; k < n; k++) o[k] = G[k] * Y[k]; return;
      case VR_UN_TANH: for (int64_t k = 0; k < n; k++) o[k] = G[k] * (1.0f - Y[k] * Y[k]); return;
      case VR_UN_SIGMOID: for (int64_t k = 0; k < n; k++) o[k] = G[k] * Y[k] * (1.0f - Y[k]); return;
      default: break;
      }
    }
    for (int64_t k = 0; k < n; k++)
      o[k * s[0]] = (float)un_grad(u->kind, G[k * s[1]], X[k * s[2]], Y[k * s[3]], u->c0, u->c1);
    return;
  }
  if (u->dt == VR_F64) {
    double *o = (double *)p[0];
    const double *G = (const double *)p[1], *X = (const double *)p[2], *Y = (const double *)p[3];
    for (int64_t k = 0; k < n; k++) o[k * s[0]] = un_grad(u->kind, G[k * s[1]], X[k * s[2]], Y[k * s[3]], u->c0, u->c1);
    return;
  }
  size_t e = vr_dtype_size(u->dt);
  for (int64_t k = 0; k < n; k++) {
    double g = vr_load(p[1] + k * s[1] * (int64_t)e, u->dt), x = vr_load(p[2] + k * s[2] * (int64_t)e, u->dt),
           y = vr_load(p[3] + k * s[3] * (int64_t)e, u->dt);
    vr_store(p[0] + k * s[0] * (int64_t)e, u->dt, un_grad(u->kind, g, x, y, u->c0, u->c1));
  }
}

static vr_status vr_cpu_unary_bwd(const vr_kernel_args *a) {
  vr_tensor *ts[4] = {a->out[0], a->in[0], a->in[1], a->in[2]};
  un_ctx u = {a->sub, a->in[0]->dtype, a->f[0], a->f[1]};
  vr_iter it;
  vr_iter_init(&it, 4, ts);
  iter_run_all(&it, GRAIN, unb_run, &u);
  return VR_OK;
}

void vr_cpu_register_elementwise(void) {
  vr_kernel_register(VR_OP_BINARY, VR_CPU, vr_cpu_binary_fwd, vr_cpu_binary_bwd);
  vr_kernel_register(VR_OP_UNARY, VR_CPU, vr_cpu_unary_fwd, vr_cpu_unary_bwd);
}
