/* reduce.c: CPU reduction kernels (argument layout documented in core/ops/reduce.c).
 *
 * Determinism: each output is the fold, in order, of partial results over fixed blocks of
 * RBLOCK reduced elements. Threads split either the outputs or (few outputs, long reductions)
 * the blocks of one output, so the result never depends on the thread count. f32 inputs are
 * accumulated in double. */
/* FP exceptions are never inspected: let the compiler if-convert the NaN-aware selects and
 * inline floor, so the loops below vectorise (values are unchanged: no reassociation) */
#pragma GCC optimize("no-trapping-math")
#include "cpu.h"
#include <math.h>
#include <stdlib.h>

#define RBLOCK 8192

enum { RS_SUM, RS_SQDEV, RS_SQ, RS_ABS, RS_POWABS, RS_MAXABS };

typedef struct rplan {
  int nk, nr;
  int64_t kshape[VR_MAX_DIMS], kin[VR_MAX_DIMS], kout[VR_MAX_DIMS];
  int64_t rshape[VR_MAX_DIMS], rin[VR_MAX_DIMS];
  int64_t nout, nred;
  const char *x;
  vr_dtype xdt;
  size_t xes;
} rplan;

/* kept dims keep x's order; reduced dims are sorted by decreasing stride and merged where
 * contiguous, so the innermost reduced run is as long and as dense as the layout allows */
static void rplan_init(rplan *p, const vr_tensor *x, const vr_tensor *y, int64_t mask) {
  memset(p, 0, sizeof *p);
  p->x = (const char *)vr_data(x);
  p->xdt = x->dtype;
  p->xes = vr_dtype_size(x->dtype);
  p->nout = 1;
  p->nred = 1;
  for (int d = 0; d < x->ndim; d++) {
    if (x->shape[d] == 1) continue;
    if ((mask >> d) & 1) {
      p->rshape[p->nr] = x->shape[d];
      p->rin[p->nr] = x->stride[d];
      p->nr++;
      p->nred *= x->shape[d];
    } else {
      p->kshape[p->nk] = x->shape[d];
      p->kin[p->nk] = x->stride[d];
      p->kout[p->nk] = y ? y->stride[d] : 0;
      p->nk++;
      p->nout *= x->shape[d];
    }
  }
  for (int i = 1; i < p->nr; i++) /* insertion sort, stable */
    for (int j = i; j > 0 && llabs(p->rin[j - 1]) < llabs(p->rin[j]); j--) {
      int64_t t = p->rin[j]; p->rin[j] = p->rin[j - 1]; p->rin[j - 1] = t;
      t = p->rshape[j]; p->rshape[j] = p->rshape[j - 1]; p->rshape[j - 1] = t;
    }
  int m = 0;
  for (int d = 1; d < p->nr; d++) {
    if (p->rin[m] == p->rin[d] * p->rshape[d]) {
      p->rshape[m] *= p->rshape[d];
      p->rin[m] = p->rin[d];
    } else {
      m++;
      p->rshape[m] = p->rshape[d];
      p->rin[m] = p->rin[d];
    }
  }
  if (p->nr == 0) {
    p->rshape[0] = 1;
    p->rin[0] = 0;
  }
  p->nr = p->nr ? m + 1 : 1;
}

/* element offsets (in elements) of output o in x and in y */
static void rplan_out(const rplan *p, int64_t o, int64_t *xoff, int64_t *yoff) {
  int64_t xo = 0, yo = 0;
  for (int d = p->nk - 1; d >= 0; d--) {
    int64_t i = o % p->kshape[d];
    o /= p->kshape[d];
    xo += i * p->kin[d];
    yo += i * p->kout[d];
  }
  *xoff = xo;
  *yoff = yo;
}

typedef struct { int op; double mean, p; } racc;

static inline double rcombine(int op, double a, double b) { return op == RS_MAXABS ? (a > b || a != a ? a : b) : a + b; }

/* accumulates one run of n elements with stride s; 8 independent lanes in a fixed order so
 * that the loop vectorises and the result does not depend on anything but the data */
#define RUN_LANES(T, F)                                                        \
  do {                                                                         \
    const T *X = (const T *)ptr;                                               \
    double l[8] = {0, 0, 0, 0, 0, 0, 0, 0};                                    \
    int64_t k = 0;                                                             \
    if (s == 1)                                                                \
      for (; k + 8 <= n; k += 8)                                               \
        for (int j = 0; j < 8; j++) { double v = (double)X[k + j]; l[j] += (F); } \
    double acc = ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7])); \
    for (; k < n; k++) { double v = (double)X[k * s]; acc += (F); }            \
    return acc;                                                                \
  } while (0)

static double run_acc(const racc *a, const char *ptr, vr_dtype dt, int64_t s, int64_t n) {
  const double m = a->mean;
  if (dt == VR_F32) {
    switch (a->op) {
    case RS_SUM: RUN_LANES(float, v);
    case RS_SQDEV: RUN_LANES(float, (v - m) * (v - m));
    case RS_SQ: RUN_LANES(float, v * v);
    case RS_ABS: RUN_LANES(float, fabs(v));
    default: break;
    }
  } else if (dt == VR_F64) {
    switch (a->op) {
    case RS_SUM: RUN_LANES(double, v);
    case RS_SQDEV: RUN_LANES(double, (v - m) * (v - m));
    case RS_SQ: RUN_LANES(double, v * v);
    case RS_ABS: RUN_LANES(double, fabs(v));
    default: break;
    }
  }
  size_t e = vr_dtype_size(dt);
  double acc = a->op == RS_MAXABS ? 0 : 0;
  for (int64_t k = 0; k < n; k++) {
    double v = vr_load(ptr + k * s * (int64_t)e, dt);
    switch (a->op) {
    case RS_SUM: acc += v; break;
    case RS_SQDEV: acc += (v - m) * (v - m); break;
    case RS_SQ: acc += v * v; break;
    case RS_ABS: acc += fabs(v); break;
    case RS_POWABS: acc += pow(fabs(v), a->p); break;
    case RS_MAXABS: acc = rcombine(RS_MAXABS, acc, fabs(v)); break;
    }
  }
  return acc;
}

/* the fold over reduced elements [r0, r1) of the output whose x offset is xoff */
static double racc_range(const rplan *p, const racc *a, int64_t xoff, int64_t r0, int64_t r1) {
  int nr = p->nr, in = nr - 1;
  int64_t idx[VR_MAX_DIMS], rem = r0;
  for (int d = nr - 1; d >= 0; d--) {
    idx[d] = rem % p->rshape[d];
    rem /= p->rshape[d];
  }
  double acc = 0;
  int64_t pos = r0;
  while (pos < r1) {
    int64_t off = xoff;
    for (int d = 0; d < nr; d++) off += idx[d] * p->rin[d];
    int64_t n = p->rshape[in] - idx[in];
    if (n > r1 - pos) n = r1 - pos;
    acc = rcombine(a->op, acc, run_acc(a, p->x + off * (int64_t)p->xes, p->xdt, p->rin[in], n));
    pos += n;
    idx[in] += n;
    for (int d = in; d > 0 && idx[d] >= p->rshape[d]; d--) {
      idx[d] = 0;
      idx[d - 1]++;
    }
  }
  return acc;
}

/* the value of one output, block by block */
static double racc_out(const rplan *p, const racc *a, int64_t xoff) {
  double acc = 0;
  for (int64_t r = 0; r < p->nred; r += RBLOCK)
    acc = rcombine(a->op, acc, racc_range(p, a, xoff, r, r + RBLOCK < p->nred ? r + RBLOCK : p->nred));
  return acc;
}

typedef struct {
  const rplan *p;
  const racc *a;
  double *res;        /* one per output (outputs split) or per block (blocks split) */
  const double *mean; /* per-output means for RS_SQDEV, or NULL */
  int64_t xoff;       /* blocks split: the output's x offset */
} rjob;

static void outs_body(void *c, int64_t lo, int64_t hi) {
  const rjob *j = c;
  for (int64_t o = lo; o < hi; o++) {
    int64_t xo, yo;
    rplan_out(j->p, o, &xo, &yo);
    racc a = *j->a;
    if (j->mean) a.mean = j->mean[o];
    j->res[o] = racc_out(j->p, &a, xo);
  }
}

static void blocks_body(void *c, int64_t lo, int64_t hi) {
  const rjob *j = c;
  for (int64_t b = lo; b < hi; b++) {
    int64_t r0 = b * RBLOCK, r1 = r0 + RBLOCK < j->p->nred ? r0 + RBLOCK : j->p->nred;
    j->res[b] = racc_range(j->p, j->a, j->xoff, r0, r1);
  }
}

/* ---- column path: the innermost kept dim is contiguous in x (e.g. sums over the batch dim of
 * N x D). A job owns a tile of COLT consecutive outputs and walks the reduced elements in order,
 * updating the tile's accumulators with one contiguous, vectorisable row at a time. */
#define COLT 512

typedef struct {
  const rplan *p;
  const racc *a;
  const double *mean;
  double *res;
  int64_t K, ntiles, tile;
} cjob;

#define COL_LOOP(T, F)                                                      \
  do {                                                                      \
    const T *X = (const T *)j->p->x + xo + off;                             \
    for (int64_t c = 0; c < len; c++) { double v = (double)X[c]; acc[c] += (F); } \
  } while (0)

static void col_body(void *ctx, int64_t lo, int64_t hi) {
  const cjob *j = ctx;
  const rplan *p = j->p;
  double acc[COLT], mu[COLT];
  for (int64_t job = lo; job < hi; job++) {
    int64_t g = job / j->ntiles, c0 = (job % j->ntiles) * j->tile;
    int64_t len = j->K - c0 < j->tile ? j->K - c0 : j->tile, o0 = g * j->K + c0, xo, yo;
    rplan_out(p, o0, &xo, &yo);
    for (int64_t c = 0; c < len; c++) {
      acc[c] = 0;
      mu[c] = j->mean ? j->mean[o0 + c] : 0;
    }
    int64_t idx[VR_MAX_DIMS] = {0};
    for (int64_t r = 0; r < p->nred; r++) {
      int64_t off = 0;
      for (int d = 0; d < p->nr; d++) off += idx[d] * p->rin[d];
      if (p->xdt == VR_F32) {
        switch (j->a->op) {
        case RS_SUM: COL_LOOP(float, v); break;
        case RS_SQDEV: COL_LOOP(float, (v - mu[c]) * (v - mu[c])); break;
        case RS_SQ: COL_LOOP(float, v * v); break;
        default: COL_LOOP(float, fabs(v)); break;
        }
      } else {
        switch (j->a->op) {
        case RS_SUM: COL_LOOP(double, v); break;
        case RS_SQDEV: COL_LOOP(double, (v - mu[c]) * (v - mu[c])); break;
        case RS_SQ: COL_LOOP(double, v * v); break;
        default: COL_LOOP(double, fabs(v)); break;
        }
      }
      for (int d = p->nr - 1; d >= 0; d--) {
        if (++idx[d] < p->rshape[d]) break;
        idx[d] = 0;
      }
    }
    for (int64_t c = 0; c < len; c++) j->res[o0 + c] = acc[c];
  }
}

/* tiles narrow enough to give every thread work; each output is still one thread's ordered
 * walk over the reduced elements, so the tile size never changes a result */
static int64_t col_tile(const rplan *p, int64_t K) {
  int64_t groups = p->nout / K, nt = vr_num_threads(), per = (K * groups + nt - 1) / nt / groups;
  int64_t t = per < COLT ? (per + 15) / 16 * 16 : COLT;
  return t < 16 ? 16 : t > COLT ? COLT : t;
}

static bool col_ok(const rplan *p, const racc *a) {
  return p->nk >= 1 && p->kin[p->nk - 1] == 1 && p->kshape[p->nk - 1] >= 16 && p->nred > 1 &&
         (p->xdt == VR_F32 || p->xdt == VR_F64) &&
         (a->op == RS_SUM || a->op == RS_SQDEV || a->op == RS_SQ || a->op == RS_ABS);
}

/* res[o] = fold over x's reduced elements for every output o */
static vr_status reduce_all(const rplan *p, const racc *a, const double *mean, double *res) {
  if (col_ok(p, a)) {
    int64_t K = p->kshape[p->nk - 1], tile = col_tile(p, K), ntiles = (K + tile - 1) / tile;
    cjob j = {p, a, mean, res, K, ntiles, tile};
    int64_t njobs = (p->nout / K) * ntiles, work = (K < tile ? K : tile) * p->nred;
    int64_t grain = (1 << 15) / (work ? work : 1);
    vr_parallel_for(njobs, grain < 1 ? 1 : grain, col_body, &j);
    return VR_OK;
  }
  int64_t nblocks = (p->nred + RBLOCK - 1) / RBLOCK;
  if (p->nout >= 2 * (int64_t)vr_num_threads() || nblocks <= 1) {
    int64_t grain = (1 << 15) / (p->nred ? p->nred : 1);
    rjob j = {p, a, res, mean, 0};
    vr_parallel_for(p->nout, grain < 1 ? 1 : grain, outs_body, &j);
    return VR_OK;
  }
  double *part = malloc(sizeof(double) * (size_t)nblocks);
  if (!part) return VR_FAIL(VR_E_OOM, "reduce: out of host memory");
  for (int64_t o = 0; o < p->nout; o++) {
    int64_t xo, yo;
    rplan_out(p, o, &xo, &yo);
    racc ao = *a;
    if (mean) ao.mean = mean[o];
    rjob j = {p, &ao, part, NULL, xo};
    vr_parallel_for(nblocks, 1, blocks_body, &j);
    double acc = 0;
    for (int64_t b = 0; b < nblocks; b++) acc = rcombine(a->op, acc, part[b]);
    res[o] = acc;
  }
  free(part);
  return VR_OK;
}

/* writes res[o] into y (keepdim shape, any dtype) */
static void store_outs(const rplan *p, vr_tensor *y, const double *res) {
  char *yb = (char *)vr_data(y);
  size_t e = vr_dtype_size(y->dtype);
  for (int64_t o = 0; o < p->nout; o++) {
    int64_t xo, yo;
    rplan_out(p, o, &xo, &yo);
    if (y->dtype == VR_I64 && vr_is_int(p->xdt)) continue; /* written exactly by the caller */
    vr_store(yb + yo * (int64_t)e, y->dtype, res[o]);
  }
}

/* ---------------------------------------------------------------- sum */

static vr_status vr_cpu_sum_fwd(const vr_kernel_args *a) {
  rplan p;
  rplan_init(&p, a->in[0], a->out[0], a->i[0]);
  vr_tensor *y = a->out[0];
  if (vr_is_int(p.xdt) && y->dtype == VR_I64) { /* exact integer sums */
    char *yb = (char *)vr_data(y);
    for (int64_t o = 0; o < p.nout; o++) {
      int64_t xo, yo, acc = 0, idx[VR_MAX_DIMS] = {0};
      rplan_out(&p, o, &xo, &yo);
      for (int64_t r = 0; r < p.nred; r++) {
        int64_t off = xo;
        for (int d = 0; d < p.nr; d++) off += idx[d] * p.rin[d];
        acc += (int64_t)vr_load(p.x + off * (int64_t)p.xes, p.xdt);
        for (int d = p.nr - 1; d >= 0; d--) {
          if (++idx[d] < p.rshape[d]) break;
          idx[d] = 0;
        }
      }
      ((int64_t *)yb)[yo] = acc;
    }
    return VR_OK;
  }
  double *res = malloc(sizeof(double) * (size_t)(p.nout ? p.nout : 1));
  if (!res) return VR_FAIL(VR_E_OOM, "sum: out of host memory");
  racc ac = {RS_SUM, 0, 0};
  vr_status st = reduce_all(&p, &ac, NULL, res);
  if (!st) {
    for (int64_t o = 0; o < p.nout; o++) res[o] *= a->f[0];
    store_outs(&p, y, res);
  }
  free(res);
  return st;
}

/* ---------------------------------------------------------------- var */

static vr_status vr_cpu_var_fwd(const vr_kernel_args *a) {
  rplan p;
  rplan_init(&p, a->in[0], a->out[0], a->i[0]);
  size_t n = (size_t)(p.nout ? p.nout : 1);
  double *mean = malloc(sizeof(double) * n), *res = malloc(sizeof(double) * n);
  vr_status st = VR_OK;
  if (!mean || !res) {
    st = VR_FAIL(VR_E_OOM, "var: out of host memory");
    goto done;
  }
  racc sum = {RS_SUM, 0, 0}, dev = {RS_SQDEV, 0, 0};
  VR_TRYG(reduce_all(&p, &sum, NULL, mean));
  for (int64_t o = 0; o < p.nout; o++) mean[o] /= (double)p.nred;
  VR_TRYG(reduce_all(&p, &dev, mean, res));
  double den = (double)(p.nred - a->i[1]);
  if (den < 0) den = 0;
  for (int64_t o = 0; o < p.nout; o++) res[o] /= den;
  store_outs(&p, a->out[0], res);
done:
  free(mean);
  free(res);
  return st;
}

/* ---------------------------------------------------------------- norm */

static vr_status vr_cpu_norm_fwd(const vr_kernel_args *a) {
  rplan p;
  rplan_init(&p, a->in[0], a->out[0], a->i[0]);
  double pn = a->f[0];
  double *res = malloc(sizeof(double) * (size_t)(p.nout ? p.nout : 1));
  if (!res) return VR_FAIL(VR_E_OOM, "norm: out of host memory");
  racc ac = {isinf(pn) ? RS_MAXABS : pn == 2 ? RS_SQ : pn == 1 ? RS_ABS : RS_POWABS, 0, pn};
  vr_status st = reduce_all(&p, &ac, NULL, res);
  if (!st) {
    for (int64_t o = 0; o < p.nout; o++) {
      if (ac.op == RS_SQ) res[o] = sqrt(res[o]);
      else if (ac.op == RS_POWABS) res[o] = pow(res[o], 1 / pn);
    }
    store_outs(&p, a->out[0], res);
  }
  free(res);
  return st;
}

typedef struct { double p; vr_dtype dt; } normb_ctx;

static inline double norm_grad(double p, double g, double x, double y) {
  if (y == 0 || x == 0) return 0;
  double sg = x > 0 ? g : -g;
  if (isinf(p)) return fabs(x) == y ? sg : 0;
  if (p == 2) return g * x / y;
  if (p == 1) return sg;
  return sg * pow(fabs(x) / y, p - 1);
}

static void normb_run(void *c, char *const *p, const int64_t *s, int64_t n) {
  const normb_ctx *nc = c;
  /* p: {grad_x, grad_y, x, y} */
#define NORMB_TYPED(T)                                                                        \
  {                                                                                           \
    T *o = (T *)p[0];                                                                         \
    const T *G = (const T *)p[1], *X = (const T *)p[2], *Y = (const T *)p[3];                 \
    for (int64_t k = 0; k < n; k++) o[k * s[0]] = (T)norm_grad(nc->p, G[k * s[1]], X[k * s[2]], Y[k * s[3]]); \
    return;                                                                                   \
  }
  if (nc->dt == VR_F32) NORMB_TYPED(float)
  if (nc->dt == VR_F64) NORMB_TYPED(double)
#undef NORMB_TYPED
  size_t e = vr_dtype_size(nc->dt);
  for (int64_t k = 0; k < n; k++) {
    double g = vr_load(p[1] + k * s[1] * (int64_t)e, nc->dt), x = vr_load(p[2] + k * s[2] * (int64_t)e, nc->dt),
           y = vr_load(p[3] + k * s[3] * (int64_t)e, nc->dt);
    vr_store(p[0] + k * s[0] * (int64_t)e, nc->dt, norm_grad(nc->p, g, x, y));
  }
}

static vr_status vr_cpu_norm_bwd(const vr_kernel_args *a) {
  vr_tensor *ts[4] = {a->out[0], a->in[0], a->in[1], a->in[2]};
  normb_ctx nc = {a->f[0], a->in[1]->dtype};
  vr_iter it;
  vr_iter_init(&it, 4, ts);
  vr_iter_parallel(&it, 1 << 14, normb_run, &nc);
  return VR_OK;
}

/* ---------------------------------------------------------------- max / min along a dim */

typedef struct { rplan pv, pi; int is_min; vr_tensor *v, *ix; } mm_ctx;

/* contiguous scans in 16 independent lanes, which the compiler turns into vector min/max
 * (a NaN never enters a lane: any_nan looks for it separately) */
#define SCAN_FNS(T)                                                                    \
  static T scan_max_##T(const T *X, int64_t n) {                                       \
    T l[16];                                                                           \
    for (int j = 0; j < 16; j++) l[j] = X[j];                                          \
    int64_t r = 16;                                                                    \
    for (; r + 16 <= n; r += 16)                                                       \
      for (int j = 0; j < 16; j++) l[j] = X[r + j] > l[j] ? X[r + j] : l[j];           \
    for (; r < n; r++) l[0] = X[r] > l[0] ? X[r] : l[0];                               \
    T b = l[0];                                                                        \
    for (int j = 1; j < 16; j++) b = l[j] > b ? l[j] : b;                              \
    return b;                                                                          \
  }                                                                                    \
  static T scan_min_##T(const T *X, int64_t n) {                                       \
    T l[16];                                                                           \
    for (int j = 0; j < 16; j++) l[j] = X[j];                                          \
    int64_t r = 16;                                                                    \
    for (; r + 16 <= n; r += 16)                                                       \
      for (int j = 0; j < 16; j++) l[j] = X[r + j] < l[j] ? X[r + j] : l[j];           \
    for (; r < n; r++) l[0] = X[r] < l[0] ? X[r] : l[0];                               \
    T b = l[0];                                                                        \
    for (int j = 1; j < 16; j++) b = l[j] < b ? l[j] : b;                              \
    return b;                                                                          \
  }                                                                                    \
  static int any_nan_##T(const T *X, int64_t n) {                                      \
    int any = 0;                                                                       \
    for (int64_t r = 0; r < n; r++) any |= X[r] != X[r];                               \
    return any;                                                                        \
  }
SCAN_FNS(float)
SCAN_FNS(double)

static void mm_body(void *c, int64_t lo, int64_t hi) {
  const mm_ctx *m = c;
  const rplan *p = &m->pv;
  int64_t n = p->rshape[0], rs = p->rin[0];
  char *vb = (char *)vr_data(m->v);
  int64_t *ib = (int64_t *)vr_data(m->ix);
  size_t ve = vr_dtype_size(m->v->dtype);
  for (int64_t o = lo; o < hi; o++) {
    int64_t xo, vo, xo2, io;
    rplan_out(p, o, &xo, &vo);
    rplan_out(&m->pi, o, &xo2, &io);
    int64_t bi = 0;
    double best;
    if (p->xdt == VR_F32 || p->xdt == VR_F64) {
      /* typed, two passes: a branch-free (vectorisable) pass finds the extreme and whether a NaN
       * is present, a second finds the first index holding it (NaN wins, as in PyTorch) */
#define MM_SCAN(T)                                                                   \
  {                                                                                  \
    const T *X = (const T *)p->x + xo;                                               \
    T b = X[0];                                                                      \
    int nan = 0;                                                                     \
    int64_t r = 0;                                                                   \
    if (rs == 1 && n >= 16) {                                                        \
      b = m->is_min ? scan_min_##T(X, n) : scan_max_##T(X, n);                       \
      nan = any_nan_##T(X, n);                                                       \
      r = n;                                                                         \
    }                                                                                \
    if (m->is_min)                                                                   \
      for (; r < n; r++) { T v = X[r * rs]; nan |= v != v; b = v < b ? v : b; }      \
    else                                                                             \
      for (; r < n; r++) { T v = X[r * rs]; nan |= v != v; b = v > b ? v : b; }      \
    if (nan) {                                                                       \
      while (X[bi * rs] == X[bi * rs]) bi++;                                         \
      b = X[bi * rs];                                                                \
    } else {                                                                         \
      while (X[bi * rs] != b) bi++;                                                  \
    }                                                                                \
    best = b;                                                                        \
  }
      if (p->xdt == VR_F32) MM_SCAN(float) else MM_SCAN(double)
#undef MM_SCAN
    } else {
      best = vr_load(p->x + xo * (int64_t)p->xes, p->xdt);
      for (int64_t r = 1; r < n; r++) {
        double v = vr_load(p->x + (xo + r * rs) * (int64_t)p->xes, p->xdt);
        if (m->is_min ? v < best : v > best) { best = v; bi = r; }
      }
      if (p->xdt == VR_I64) { /* exact */
        ((int64_t *)vb)[vo] = ((const int64_t *)p->x)[xo + bi * rs];
        ib[io] = bi;
        continue;
      }
    }
    vr_store(vb + vo * (int64_t)ve, m->v->dtype, best);
    ib[io] = bi;
  }
}

/* column path: dim is not the innermost and the innermost kept dim is contiguous: a job keeps
 * the running extremes of a tile of consecutive outputs */
typedef struct { const mm_ctx *m; int64_t K, ntiles, tile; } mmc_job;

#define MMC_LOOP(T)                                                                            \
  do {                                                                                         \
    const T *X = (const T *)p->x + xo;                                                         \
    T b[COLT];                                                                                 \
    for (int64_t c = 0; c < len; c++) { b[c] = X[c]; bi[c] = 0; }                              \
    for (int64_t r = 1; r < n; r++)                                                            \
      for (int64_t c = 0; c < len; c++) {                                                      \
        T v = X[r * rs + c];                                                                   \
        int take = (m->is_min ? v < b[c] : v > b[c]) | ((v != v) & (b[c] == b[c]));             \
        b[c] = take ? v : b[c];                                                                \
        bi[c] = take ? r : bi[c];                                                              \
      }                                                                                        \
    for (int64_t c = 0; c < len; c++) best[c] = b[c];                                          \
  } while (0)

static void mmc_body(void *ctx, int64_t lo, int64_t hi) {
  const mmc_job *j = ctx;
  const mm_ctx *m = j->m;
  const rplan *p = &m->pv;
  int64_t n = p->rshape[0], rs = p->rin[0], bi[COLT];
  double best[COLT];
  char *vb = (char *)vr_data(m->v);
  int64_t *ib = (int64_t *)vr_data(m->ix);
  size_t ve = vr_dtype_size(m->v->dtype);
  int64_t vs = m->pv.kout[p->nk - 1], is = m->pi.kout[p->nk - 1];
  for (int64_t job = lo; job < hi; job++) {
    int64_t g = job / j->ntiles, c0 = (job % j->ntiles) * j->tile;
    int64_t len = j->K - c0 < j->tile ? j->K - c0 : j->tile, o0 = g * j->K + c0, xo, vo, xo2, io;
    rplan_out(p, o0, &xo, &vo);
    rplan_out(&m->pi, o0, &xo2, &io);
    if (p->xdt == VR_F32) MMC_LOOP(float);
    else MMC_LOOP(double);
    for (int64_t c = 0; c < len; c++) {
      vr_store(vb + (vo + c * vs) * (int64_t)ve, m->v->dtype, best[c]);
      ib[io + c * is] = bi[c];
    }
  }
}

static vr_status vr_cpu_maxmin_fwd(const vr_kernel_args *a) {
  mm_ctx m;
  int64_t mask = (int64_t)1 << a->i[0];
  rplan_init(&m.pv, a->in[0], a->out[0], mask);
  rplan_init(&m.pi, a->in[0], a->out[1], mask);
  m.is_min = a->sub == 1;
  m.v = a->out[0];
  m.ix = a->out[1];
  const rplan *p = &m.pv;
  if (p->nk >= 1 && p->kin[p->nk - 1] == 1 && p->kshape[p->nk - 1] >= 16 && p->nred > 1 &&
      (p->xdt == VR_F32 || p->xdt == VR_F64)) {
    int64_t K = p->kshape[p->nk - 1], tile = col_tile(p, K), ntiles = (K + tile - 1) / tile;
    mmc_job j = {&m, K, ntiles, tile};
    int64_t work = (K < tile ? K : tile) * p->nred, grain = (1 << 15) / (work ? work : 1);
    vr_parallel_for((p->nout / K) * ntiles, grain < 1 ? 1 : grain, mmc_body, &j);
    return VR_OK;
  }
  int64_t grain = (1 << 14) / (m.pv.nred ? m.pv.nred : 1);
  vr_parallel_for(m.pv.nout, grain < 1 ? 1 : grain, mm_body, &m);
  return VR_OK;
}

static vr_status vr_cpu_maxmin_bwd(const vr_kernel_args *a) {
  vr_tensor *gx = a->out[0], *g = a->in[0], *ix = a->in[1];
  int64_t dim = a->i[0], mask = (int64_t)1 << dim;
  rplan pg, pi;
  rplan_init(&pg, gx, g, mask);
  rplan_init(&pi, gx, ix, mask);
  /* zero gx (any strides) through the copy-free path: a fill by element */
  vr_kernel_args z = {.out = {gx}, .n_out = 1, .f = {0}};
  VR_TRY(vr_dispatch(VR_OP_FILL, VR_CPU, 0, &z));
  char *gb = (char *)vr_data(gx);
  const char *gin = (const char *)vr_data(g);
  const int64_t *ib = (const int64_t *)vr_data(ix);
  size_t e = vr_dtype_size(gx->dtype);
  int64_t ds = gx->ndim ? gx->stride[dim] : 0;
  for (int64_t o = 0; o < pg.nout; o++) {
    int64_t xo, go, xo2, io;
    rplan_out(&pg, o, &xo, &go);
    rplan_out(&pi, o, &xo2, &io);
    int64_t k = ib[io];
    vr_store(gb + (xo + k * ds) * (int64_t)e, gx->dtype, vr_load(gin + go * (int64_t)e, g->dtype));
  }
  return VR_OK;
}

void vr_cpu_register_reduce(void) {
  vr_kernel_register(VR_OP_SUM, VR_CPU, vr_cpu_sum_fwd, NULL);
  vr_kernel_register(VR_OP_VAR, VR_CPU, vr_cpu_var_fwd, NULL);
  vr_kernel_register(VR_OP_NORM, VR_CPU, vr_cpu_norm_fwd, vr_cpu_norm_bwd);
  vr_kernel_register(VR_OP_MAXMIN, VR_CPU, vr_cpu_maxmin_fwd, vr_cpu_maxmin_bwd);
}
