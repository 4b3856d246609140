/* index.c: CPU kernels for index_select (and its backward, an index_add into zeros), gather,
 * scatter_add and one_hot. The argument layout of each op is documented at the top of
 * core/ops/index.c and core/ops/where.c; the front-ends pass contiguous tensors and indices that
 * are already range-checked. Every kernel is deterministic: a thread owns whole output elements
 * and adds into them in a fixed order, so no atomics are needed. */
#include "cpu.h"
#include <stdlib.h>

/* index element k of a contiguous i32 or i64 tensor */
static inline int64_t ix_at(const void *p, int is64, int64_t k) {
  return is64 ? ((const int64_t *)p)[k] : (int64_t)((const int32_t *)p)[k];
}

/* x viewed as [outer, n, inner] around dim */
static void split_dims(const vr_tensor *t, int dim, int64_t *outer, int64_t *inner) {
  int64_t o = 1, i = 1;
  for (int d = 0; d < dim; d++) o *= t->shape[d];
  for (int d = dim + 1; d < t->ndim; d++) i *= t->shape[d];
  *outer = o;
  *inner = i;
}

/* ---------------------------------------------------------------- index_select */

typedef struct {
  const char *x;
  char *o;
  const void *ix;
  int is64;
  int64_t n, K, inner;
  size_t es;
  vr_dtype dt;
} isel_ctx;

/* rows r = (o, k) of the output: each is one contiguous run of inner elements */
static void isel_body(void *c, int64_t lo, int64_t hi) {
  const isel_ctx *s = c;
  size_t row = (size_t)s->inner * s->es;
  for (int64_t r = lo; r < hi; r++) {
    int64_t o = r / s->K, k = r % s->K, j = ix_at(s->ix, s->is64, k);
    memcpy(s->o + (size_t)r * row, s->x + (size_t)(o * s->n + j) * row, row);
  }
}

static int64_t grain_for(int64_t per_item) {
  int64_t g = (1 << 15) / (per_item > 0 ? per_item : 1);
  return g > 0 ? g : 1;
}

static vr_status vr_cpu_index_select_fwd(const vr_kernel_args *a) {
  const vr_tensor *x = a->in[0], *ix = a->in[1];
  vr_tensor *out = a->out[0];
  int dim = (int)a->i[0];
  isel_ctx s = {vr_data(x), vr_data(out), vr_data(ix), ix->dtype == VR_I64, x->shape[dim], out->shape[dim], 1,
                vr_dtype_size(x->dtype), x->dtype};
  int64_t outer;
  split_dims(x, dim, &outer, &s.inner);
  vr_parallel_for(outer * s.K, grain_for(s.inner), isel_body, &s);
  return VR_OK;
}

/* backward: gx[o, index[k], i] += g[o, k, i]. A task owns (o, a block of i, a range of destination
 * rows j) and runs k in increasing order, adding only the rows it owns: every output element is
 * summed in the same order whatever the thread count. Row ranges give parallelism when outer and
 * inner are small (the embedding-like case: dim 0 of a narrow matrix). */
#define ISEL_BLOCK 1024
typedef struct {
  isel_ctx s;
  int64_t nb, nr; /* inner blocks, row ranges */
} isel_bwd_ctx;

static void isel_bwd_body(void *c, int64_t lo, int64_t hi) {
  const isel_bwd_ctx *b = c;
  const isel_ctx *s = &b->s; /* x = gout (rows K), o = grad_x (rows n) */
  for (int64_t t = lo; t < hi; t++) {
    int64_t rr = t % b->nr, blk = (t / b->nr) % b->nb, o = t / (b->nr * b->nb);
    int64_t i0 = blk * ISEL_BLOCK, i1 = i0 + ISEL_BLOCK;
    if (i1 > s->inner) i1 = s->inner;
    int64_t len = i1 - i0, j0 = s->n * rr / b->nr, j1 = s->n * (rr + 1) / b->nr;
    for (int64_t j = j0; j < j1; j++)
      memset(s->o + (size_t)((o * s->n + j) * s->inner + i0) * s->es, 0, (size_t)len * s->es);
    for (int64_t k = 0; k < s->K; k++) {
      int64_t j = ix_at(s->ix, s->is64, k);
      if (j < j0 || j >= j1) continue;
      int64_t go = (o * s->K + k) * s->inner + i0, xo = (o * s->n + j) * s->inner + i0;
      if (s->dt == VR_F32) {
        const float *g = (const float *)s->x + go;
        float *d = (float *)s->o + xo;
        for (int64_t i = 0; i < len; i++) d[i] += g[i];
      } else if (s->dt == VR_F64) {
        const double *g = (const double *)s->x + go;
        double *d = (double *)s->o + xo;
        for (int64_t i = 0; i < len; i++) d[i] += g[i];
      } else {
        for (int64_t i = 0; i < len; i++) {
          char *d = s->o + (size_t)(xo + i) * s->es;
          vr_store(d, s->dt, vr_load(d, s->dt) + vr_load(s->x + (size_t)(go + i) * s->es, s->dt));
        }
      }
    }
  }
}

static vr_status vr_cpu_index_select_bwd(const vr_kernel_args *a) {
  const vr_tensor *g = a->in[0], *ix = a->in[1];
  vr_tensor *gx = a->out[0];
  int dim = (int)a->i[0];
  isel_bwd_ctx b = {{vr_data(g), vr_data(gx), vr_data(ix), ix->dtype == VR_I64, gx->shape[dim], g->shape[dim], 1,
                     vr_dtype_size(gx->dtype), gx->dtype},
                    1, 1};
  int64_t outer;
  split_dims(gx, dim, &outer, &b.s.inner);
  b.nb = (b.s.inner + ISEL_BLOCK - 1) / ISEL_BLOCK;
  /* split the destination rows when there are fewer (o, block) tasks than threads and enough work */
  int64_t nt = vr_num_threads(), work = b.s.K * (b.s.inner < ISEL_BLOCK ? b.s.inner : ISEL_BLOCK);
  if (outer * b.nb < nt && work >= (1 << 15)) {
    b.nr = (nt + outer * b.nb - 1) / (outer * b.nb);
    if (b.nr > b.s.n) b.nr = b.s.n;
  }
  vr_parallel_for(outer * b.nb * b.nr, grain_for(work / b.nr + b.s.n), isel_bwd_body, &b);
  return VR_OK;
}

/* ---------------------------------------------------------------- gather */

typedef struct {
  const char *x;
  char *o;
  const void *ix;
  int is64, dim, ndim;
  int64_t shape[VR_MAX_DIMS];   /* the index's (= the output's) shape */
  int64_t xst[VR_MAX_DIMS];     /* x's contiguous strides */
  size_t es;
} gather_ctx;

/* out[p] = x[coords of p with coordinate dim replaced by index[p]] */
static void gather_body(void *c, int64_t lo, int64_t hi) {
  const gather_ctx *s = c;
  int64_t co[VR_MAX_DIMS], xoff = 0, r = lo;
  for (int d = s->ndim - 1; d >= 0; d--) {
    co[d] = r % s->shape[d];
    r /= s->shape[d];
    if (d != s->dim) xoff += co[d] * s->xst[d];
  }
  for (int64_t p = lo; p < hi; p++) {
    int64_t j = ix_at(s->ix, s->is64, p);
    vr_cpu_copy_elem(s->o + (size_t)p * s->es, s->x + (size_t)(xoff + j * s->xst[s->dim]) * s->es, s->es);
    for (int d = s->ndim - 1; d >= 0; d--) {
      co[d]++;
      if (d != s->dim) xoff += s->xst[d];
      if (co[d] < s->shape[d]) break;
      if (d != s->dim) xoff -= co[d] * s->xst[d];
      co[d] = 0;
    }
  }
}

static vr_status vr_cpu_gather_fwd(const vr_kernel_args *a) {
  const vr_tensor *x = a->in[0], *ix = a->in[1];
  vr_tensor *out = a->out[0];
  gather_ctx s = {vr_data(x), vr_data(out), vr_data(ix), ix->dtype == VR_I64, (int)a->i[0], ix->ndim, {0}, {0},
                  vr_dtype_size(x->dtype)};
  memcpy(s.shape, ix->shape, sizeof s.shape);
  vr_contiguous_strides(x->ndim, x->shape, s.xst);
  vr_parallel_for(vr_tensor_numel(ix), 1 << 14, gather_body, &s);
  return VR_OK;
}

/* ---------------------------------------------------------------- scatter_add */

typedef struct {
  char *o;
  const char *src;
  const void *ix;
  int is64, dim, ndim;
  int64_t ishape[VR_MAX_DIMS];
  int64_t ost[VR_MAX_DIMS], sst[VR_MAX_DIMS], ist[VR_MAX_DIMS];
  int64_t lines; /* prod of the index's sizes except dim */
  vr_dtype dt;
} scatter_ctx;

/* A task owns the output line at fixed non-dim coordinates and adds the index's entries along dim
 * in order: lines are disjoint, so the result does not depend on the thread count. */
static void scatter_body(void *c, int64_t lo, int64_t hi) {
  const scatter_ctx *s = c;
  size_t es = vr_dtype_size(s->dt);
  int64_t m = s->ishape[s->dim];
  for (int64_t l = lo; l < hi; l++) {
    int64_t r = l, oo = 0, so = 0, io = 0;
    for (int d = s->ndim - 1; d >= 0; d--) {
      if (d == s->dim) continue;
      int64_t cd = r % s->ishape[d];
      r /= s->ishape[d];
      oo += cd * s->ost[d];
      so += cd * s->sst[d];
      io += cd * s->ist[d];
    }
    int64_t os = s->ost[s->dim], ss = s->sst[s->dim], is = s->ist[s->dim];
    if (s->dt == VR_F32) {
      float *o = (float *)s->o + oo;
      const float *v = (const float *)s->src + so;
      for (int64_t j = 0; j < m; j++) o[ix_at(s->ix, s->is64, io + j * is) * os] += v[j * ss];
    } else if (s->dt == VR_F64) {
      double *o = (double *)s->o + oo;
      const double *v = (const double *)s->src + so;
      for (int64_t j = 0; j < m; j++) o[ix_at(s->ix, s->is64, io + j * is) * os] += v[j * ss];
    } else {
      for (int64_t j = 0; j < m; j++) {
        char *d = s->o + (size_t)(oo + ix_at(s->ix, s->is64, io + j * is) * os) * es;
        vr_store(d, s->dt, vr_load(d, s->dt) + vr_load(s->src + (size_t)(so + j * ss) * es, s->dt));
      }
    }
  }
}

static vr_status vr_cpu_scatter_add_fwd(const vr_kernel_args *a) {
  const vr_tensor *x = a->in[0], *ix = a->in[1], *src = a->in[2];
  vr_tensor *out = a->out[0];
  if (x->storage != out->storage)
    memcpy(vr_data(out), vr_data(x), (size_t)vr_tensor_numel(x) * vr_dtype_size(x->dtype));
  scatter_ctx s = {vr_data(out), vr_data(src), vr_data(ix), ix->dtype == VR_I64, (int)a->i[0], ix->ndim, {0}, {0}, {0},
                   {0}, 1, out->dtype};
  memcpy(s.ishape, ix->shape, sizeof s.ishape);
  vr_contiguous_strides(out->ndim, out->shape, s.ost);
  vr_contiguous_strides(src->ndim, src->shape, s.sst);
  vr_contiguous_strides(ix->ndim, ix->shape, s.ist);
  for (int d = 0; d < ix->ndim; d++)
    if (d != s.dim) s.lines *= ix->shape[d];
  if (vr_tensor_numel(ix) == 0) return VR_OK;
  vr_parallel_for(s.lines, grain_for(ix->shape[s.dim]), scatter_body, &s);
  return VR_OK;
}

/* ---------------------------------------------------------------- one_hot */

typedef struct {
  char *o;
  const void *ix;
  int is64;
  int64_t C;
  vr_dtype dt;
} onehot_ctx;

static void onehot_body(void *c, int64_t lo, int64_t hi) {
  const onehot_ctx *s = c;
  size_t es = vr_dtype_size(s->dt);
  memset(s->o + (size_t)(lo * s->C) * es, 0, (size_t)((hi - lo) * s->C) * es);
  for (int64_t r = lo; r < hi; r++) vr_store(s->o + (size_t)(r * s->C + ix_at(s->ix, s->is64, r)) * es, s->dt, 1.0);
}

static vr_status vr_cpu_one_hot_fwd(const vr_kernel_args *a) {
  onehot_ctx s = {vr_data(a->out[0]), vr_data(a->in[0]), a->in[0]->dtype == VR_I64, a->i[0], a->out[0]->dtype};
  vr_parallel_for(vr_tensor_numel(a->in[0]), grain_for(s.C), onehot_body, &s);
  return VR_OK;
}

void vr_cpu_register_index(void) {
  vr_kernel_register(VR_OP_INDEX_SELECT, VR_CPU, vr_cpu_index_select_fwd, vr_cpu_index_select_bwd);
  vr_kernel_register(VR_OP_GATHER, VR_CPU, vr_cpu_gather_fwd, NULL);
  vr_kernel_register(VR_OP_SCATTER_ADD, VR_CPU, vr_cpu_scatter_add_fwd, NULL);
  vr_kernel_register(VR_OP_ONE_HOT, VR_CPU, vr_cpu_one_hot_fwd, NULL);
}
