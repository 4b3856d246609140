/* reduce.c: CPU reduction kernels (argument layout documented in core/ops/reduce.c).
 *
 * Determinism: each output is the fold, in order, of partial results over fixed blocks of
 * RBLOCK reduced elements. Threads split either the outputs or (few outputs, long reductions)
 * the blocks of one output, so the result never depends on the thread count. f32 inputs are
 * accumulated in double. */
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

/* res[o] = fold over x's reduced elements for every output o */
static vr_status reduce_all(const rplan *p, const racc *a, const double *mean, double *res) {
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

static vr_status sum_fwd(const vr_kernel_args *a) {
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

static vr_status var_fwd(const vr_kernel_args *a) {
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

static vr_status norm_fwd(const vr_kernel_args *a) {
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
  size_t e = vr_dtype_size(nc->dt);
  /* p: {grad_x, grad_y, x, y} */
  for (int64_t k = 0; k < n; k++) {
    double g = vr_load(p[1] + k * s[1] * (int64_t)e, nc->dt), x = vr_load(p[2] + k * s[2] * (int64_t)e, nc->dt),
           y = vr_load(p[3] + k * s[3] * (int64_t)e, nc->dt);
    vr_store(p[0] + k * s[0] * (int64_t)e, nc->dt, norm_grad(nc->p, g, x, y));
  }
}

static vr_status norm_bwd(const vr_kernel_args *a) {
  vr_tensor *ts[4] = {a->out[0], a->in[0], a->in[1], a->in[2]};
  normb_ctx nc = {a->f[0], a->in[1]->dtype};
  vr_iter it;
  vr_iter_init(&it, 4, ts);
  vr_iter_parallel(&it, 1 << 14, normb_run, &nc);
  return VR_OK;
}

/* ---------------------------------------------------------------- max / min along a dim */

typedef struct { rplan pv, pi; int is_min; vr_tensor *v, *ix; } mm_ctx;

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
      /* typed: NaN wins, then the first extreme */
#define MM_SCAN(T)                                                                     {                                                                                      const T *X = (const T *)p->x + xo;                                                   T b = X[0];                                                                          for (int64_t r = 1; r < n && b == b; r++) {                                            T v = X[r * rs];                                                                     if (v != v || (m->is_min ? v < b : v > b)) { b = v; bi = r; }                      }                                                                                    best = b;                                                                          }
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

static vr_status maxmin_fwd(const vr_kernel_args *a) {
  mm_ctx m;
  int64_t mask = (int64_t)1 << a->i[0];
  rplan_init(&m.pv, a->in[0], a->out[0], mask);
  rplan_init(&m.pi, a->in[0], a->out[1], mask);
  m.is_min = a->sub == 1;
  m.v = a->out[0];
  m.ix = a->out[1];
  int64_t grain = (1 << 14) / (m.pv.nred ? m.pv.nred : 1);
  vr_parallel_for(m.pv.nout, grain < 1 ? 1 : grain, mm_body, &m);
  return VR_OK;
}

static vr_status maxmin_bwd(const vr_kernel_args *a) {
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
  vr_kernel_register(VR_OP_SUM, VR_CPU, sum_fwd, NULL);
  vr_kernel_register(VR_OP_VAR, VR_CPU, var_fwd, NULL);
  vr_kernel_register(VR_OP_NORM, VR_CPU, norm_fwd, norm_bwd);
  vr_kernel_register(VR_OP_MAXMIN, VR_CPU, maxmin_fwd, maxmin_bwd);
}
