/* iter.c: the strided iterator the CPU kernels share. */
#include "cpu.h"

void vr_iter_init(vr_iter *it, int nops, vr_tensor *const *ts) {
  memset(it, 0, sizeof *it);
  it->nops = nops;
  const vr_tensor *t0 = ts[0];
  it->numel = vr_tensor_numel(t0);
  for (int k = 0; k < nops; k++) {
    it->base[k] = (char *)vr_data(ts[k]);
    it->esize[k] = vr_dtype_size(ts[k]->dtype);
  }
  /* drop size-1 dims, then merge a dim into the next-inner one when contiguous for every operand */
  int n = 0;
  for (int d = 0; d < t0->ndim; d++) {
    if (t0->shape[d] == 1) continue;
    it->shape[n] = t0->shape[d];
    for (int k = 0; k < nops; k++) it->st[k][n] = ts[k]->stride[d];
    n++;
  }
  if (n == 0) {
    it->shape[0] = 1;
    for (int k = 0; k < nops; k++) it->st[k][0] = 1;
    n = 1;
  }
  int m = 0;
  for (int d = 1; d < n; d++) {
    int merge = 1;
    for (int k = 0; k < nops && merge; k++) merge = it->st[k][m] == it->st[k][d] * it->shape[d];
    if (merge) {
      it->shape[m] *= it->shape[d];
      for (int k = 0; k < nops; k++) it->st[k][m] = it->st[k][d];
    } else {
      m++;
      it->shape[m] = it->shape[d];
      for (int k = 0; k < nops; k++) it->st[k][m] = it->st[k][d];
    }
  }
  it->ndim = m + 1;
}

void vr_iter_runs(const vr_iter *it, int64_t lo, int64_t hi, vr_iter_run_fn run, void *ctx) {
  if (lo >= hi) return;
  int nd = it->ndim, inner = nd - 1;
  int64_t idx[VR_MAX_DIMS];
  int64_t rem = lo;
  for (int d = nd - 1; d >= 0; d--) {
    idx[d] = rem % it->shape[d];
    rem /= it->shape[d];
  }
  char *p[VR_ITER_MAX_OPS];
  int64_t s[VR_ITER_MAX_OPS];
  for (int k = 0; k < it->nops; k++) s[k] = it->st[k][inner];
  int64_t pos = lo;
  while (pos < hi) {
    for (int k = 0; k < it->nops; k++) {
      int64_t off = 0;
      for (int d = 0; d < nd; d++) off += idx[d] * it->st[k][d];
      p[k] = it->base[k] + off * (int64_t)it->esize[k];
    }
    int64_t n = it->shape[inner] - idx[inner];
    if (n > hi - pos) n = hi - pos;
    run(ctx, p, s, n);
    pos += n;
    idx[inner] += n;
    for (int d = inner; d > 0 && idx[d] >= it->shape[d]; d--) {
      idx[d] = 0;
      idx[d - 1]++;
    }
  }
}

typedef struct {
  const vr_iter *it;
  vr_iter_run_fn run;
  void *ctx;
} par_ctx;

static void par_body(void *c, int64_t lo, int64_t hi) {
  par_ctx *pc = c;
  vr_iter_runs(pc->it, lo, hi, pc->run, pc->ctx);
}

void vr_iter_parallel(const vr_iter *it, int64_t grain, vr_iter_run_fn run, void *ctx) {
  par_ctx pc = {it, run, ctx};
  vr_parallel_for(it->numel, grain, par_body, &pc);
}
