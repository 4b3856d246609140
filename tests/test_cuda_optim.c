/* test_cuda_optim.c: the CUDA multi-tensor optimiser kernels (kernels/cuda/optim.cu) against the
 * CPU's through the public API: several fused AdamW steps over parameter lists of many sizes (one
 * empty, one spanning several chunks) with per-parameter decay and lr scales and the clip factor of
 * vr_grad_norm as grad_scale, as optim.lua runs them; the norm alone; and lists that come and go
 * (two optimisers alternating, more lists than the table cache holds).
 *
 * Without a GPU each case prints "SKIP <case>: no CUDA device" and passes; VISREG_TEST_CUDA_AS_CPU=1
 * runs the CPU against itself; tools/cuda-emu/run runs it against the emulated kernels. The CUDA
 * kernels round like the CPU (no fused multiply-adds), so the tolerances are a few ulps. */
/* the harness's run_cmp and poisoned outputs serve kernels with in/out tensors; not used here */
#pragma GCC diagnostic ignored "-Wunused-function"
#include "testutil.h"


#define MAXP 8
typedef struct plist {
  int n;
  vr_tensor *p[MAXP], *m[MAXP], *v[MAXP];       /* CPU */
  vr_tensor *dp[MAXP], *dm[MAXP], *dv[MAXP];    /* DEV */
  double wd[MAXP], ls[MAXP];
} plist;

static vr_tensor *rnd(vr_dtype dt, int64_t n, uint64_t seed, double scale) {
  vr_tensor *t = tu_rand(dt, 1, &n, seed), *u = NULL;
  OK(vr_mul_scalar(t, scale, &u));
  vr_tensor_free(t);
  return u;
}

static void plist_init(plist *L, vr_dtype dt, int n, const int64_t *numel, uint64_t seed) {
  memset(L, 0, sizeof *L);
  L->n = n;
  for (int k = 0; k < n; k++) {
    L->p[k] = rnd(dt, numel[k], seed + k, 1);
    OK(vr_tensor_zeros(1, &numel[k], dt, VR_CPU, &L->m[k]));
    OK(vr_tensor_zeros(1, &numel[k], dt, VR_CPU, &L->v[k]));
    L->dp[k] = mirror(L->p[k], DEV);
    L->dm[k] = mirror(L->m[k], DEV);
    L->dv[k] = mirror(L->v[k], DEV);
    L->wd[k] = k % 2 ? 0 : 0.05;
    L->ls[k] = k == 2 ? 2.0 : 1.0;
  }
}

static void plist_free(plist *L) {
  for (int k = 0; k < L->n; k++) {
    vr_tensor *ts[6] = {L->p[k], L->m[k], L->v[k], L->dp[k], L->dm[k], L->dv[k]};
    for (int j = 0; j < 6; j++) vr_tensor_free(ts[j]);
  }
}

/* one step on both devices with fresh gradients; clip > 0 clips through vr_grad_norm's factor */
static void plist_step(plist *L, vr_dtype dt, int step, double clip, uint64_t seed, double rtol, const char *what) {
  vr_tensor *g[MAXP], *dg[MAXP];
  for (int k = 0; k < L->n; k++) {
    g[k] = rnd(dt, vr_tensor_numel(L->p[k]), seed + 31 * step + k, 3);
    dg[k] = mirror(g[k], DEV);
  }
  vr_tensor *n = NULL, *c = NULL, *dn = NULL, *dc = NULL;
  if (clip > 0) {
    OK(vr_grad_norm(g, L->n, clip, &n, &c));
    OK(vr_grad_norm(dg, L->n, clip, &dn, &dc));
    char buf[128];
    snprintf(buf, sizeof buf, "%s step %d norm", what, step);
    cmp(n, dn, 1e-6, 0, buf);
    snprintf(buf, sizeof buf, "%s step %d clip factor", what, step);
    cmp(c, dc, 1e-6, 0, buf);
  }
  OK(vr_adamw_step(L->p, g, L->m, L->v, L->n, L->wd, L->ls, 1e-2, 0.9, 0.999, 1e-8, step, c));
  OK(vr_adamw_step(L->dp, dg, L->dm, L->dv, L->n, L->wd, L->ls, 1e-2, 0.9, 0.999, 1e-8, step, dc));
  OK(vr_device_get(DEV)->synchronize());
  for (int k = 0; k < L->n; k++) {
    char buf[128];
    snprintf(buf, sizeof buf, "%s step %d param %d", what, step, k);
    cmp(L->p[k], L->dp[k], rtol, rtol, buf);
    snprintf(buf, sizeof buf, "%s step %d exp_avg %d", what, step, k);
    cmp(L->m[k], L->dm[k], rtol, rtol, buf);
    snprintf(buf, sizeof buf, "%s step %d exp_avg_sq %d", what, step, k);
    cmp(L->v[k], L->dv[k], rtol, rtol, buf);
    vr_tensor_free(g[k]);
    vr_tensor_free(dg[k]);
  }
  vr_tensor_free(n);
  vr_tensor_free(c);
  vr_tensor_free(dn);
  vr_tensor_free(dc);
}

static const int64_t sizes[6] = {5, 16384, 40001, 0, 1, 300};

static void steps_case(vr_dtype dt, double rtol) {
  plist L;
  plist_init(&L, dt, 6, sizes, 11);
  for (int step = 1; step <= 3; step++) {
    for (int k = 0; k < L.n; k += 2) L.wd[k] = 0.05 * step; /* a weight-decay schedule */
    plist_step(&L, dt, step, step == 2 ? 1.0 : 0, 100, rtol, vr_dtype_name(dt));
  }
  plist_free(&L);
}

START_TEST(test_adamw_f32) {
  NEED_DEV();
  steps_case(VR_F32, 1e-6);
}
END_TEST
START_TEST(test_adamw_f64) {
  NEED_DEV();
  steps_case(VR_F64, 1e-13);
}
END_TEST

START_TEST(test_grad_norm) {
  NEED_DEV();
  for (int d = 0; d < 2; d++) {
    vr_dtype dt = d ? VR_F64 : VR_F32;
    vr_tensor *g[3], *dg[3];
    const int64_t n[3] = {70000, 3, 129};
    for (int k = 0; k < 3; k++) {
      g[k] = rnd(dt, n[k], 7 + k, 1);
      dg[k] = mirror(g[k], DEV);
    }
    for (int j = 0; j < 3; j++) {
      double max_norm = j == 0 ? 0 : j == 1 ? 1.0 : 1e6;
      vr_tensor *a = NULL, *c = NULL, *da = NULL, *dc = NULL;
      OK(vr_grad_norm(g, 3, max_norm, &a, &c));
      OK(vr_grad_norm(dg, 3, max_norm, &da, &dc));
      ck_assert_int_eq(vr_tensor_device(da), DEV);
      cmp(a, da, d ? 1e-13 : 1e-6, 0, "norm");
      cmp(c, dc, d ? 1e-13 : 1e-6, 0, "clip factor");
      vr_tensor_free(a);
      vr_tensor_free(c);
      vr_tensor_free(da);
      vr_tensor_free(dc);
    }
    for (int k = 0; k < 3; k++) {
      vr_tensor_free(g[k]);
      vr_tensor_free(dg[k]);
    }
  }
}
END_TEST

/* two optimisers alternating, then more parameter lists than the table cache's slots */
START_TEST(test_table_cache) {
  NEED_DEV();
  plist A, B;
  const int64_t sa[3] = {10, 20000, 3}, sb[2] = {7, 9};
  plist_init(&A, VR_F32, 3, sa, 1);
  plist_init(&B, VR_F32, 2, sb, 2);
  for (int step = 1; step <= 3; step++) {
    plist_step(&A, VR_F32, step, 0.5, 10, 1e-6, "list A");
    plist_step(&B, VR_F32, step, 0, 20, 1e-6, "list B");
  }
  plist_free(&B);
  plist L[10];
  for (int j = 0; j < 10; j++) {
    const int64_t s[2] = {3 + j, 17};
    plist_init(&L[j], VR_F32, 2, s, 50 + j);
  }
  for (int step = 1; step <= 2; step++)
    for (int j = 0; j < 10; j++) plist_step(&L[j], VR_F32, step, 0, 70 + j, 1e-6, "many lists");
  plist_step(&A, VR_F32, 4, 0.5, 10, 1e-6, "list A after eviction");
  for (int j = 0; j < 10; j++) plist_free(&L[j]);
  plist_free(&A);
}
END_TEST

static Suite *cuda_optim_suite(void) {
  Suite *s = suite_create("cuda_optim");
  TCase *tc = tcase_create("parity");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, test_adamw_f32);
  tcase_add_test(tc, test_adamw_f64);
  tcase_add_test(tc, test_grad_norm);
  tcase_add_test(tc, test_table_cache);
  suite_add_tcase(s, tc);
  return s;
}

VR_TEST_MAIN(cuda_optim_suite)
