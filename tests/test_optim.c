/* test_optim.c: the multi-tensor optimiser ops on the CPU: vr_adamw_step against a hand-written
 * per-element AdamW (decoupled decay on some parameters only, lr scales, bias correction over
 * several steps, a grad_scale tensor, a non-contiguous gradient, a tensor spanning several chunks),
 * vr_grad_norm and its clip factor (also independent of the thread count), and the error cases. */
#include "testutil.h"
#include <math.h>

#define NP 4
static const int64_t sizes[NP][2] = {{3, 1}, {2, 5}, {1, 40000}, {7, 1}};

typedef struct ref_state {
  double *p[NP], *m[NP], *v[NP];
} ref_state;

/* the reference: PyTorch's AdamW, one element at a time in double */
static void ref_step(ref_state *r, double *const *g, const double *wd, const double *ls, double lr, double b1, double b2,
                     double eps, int step, double scale) {
  for (int k = 0; k < NP; k++) {
    int64_t n = sizes[k][0] * sizes[k][1];
    double lrk = lr * ls[k];
    for (int64_t i = 0; i < n; i++) {
      double gi = g[k][i] * scale;
      r->p[k][i] *= 1 - lrk * wd[k];
      r->m[k][i] = b1 * r->m[k][i] + (1 - b1) * gi;
      r->v[k][i] = b2 * r->v[k][i] + (1 - b2) * gi * gi;
      double mh = r->m[k][i] / (1 - pow(b1, step)), vh = r->v[k][i] / (1 - pow(b2, step));
      r->p[k][i] -= lrk * mh / (sqrt(vh) + eps);
    }
  }
}

static void check_adamw(vr_dtype dt, double tol) {
  vr_tensor *p[NP], *g[NP], *m[NP], *v[NP];
  ref_state r;
  const double wd[NP] = {0.1, 0, 0.05, 0}, ls[NP] = {1, 2, 0.5, 1};
  for (int k = 0; k < NP; k++) {
    int64_t shape[2] = {sizes[k][0], sizes[k][1]};
    vr_tensor *p64 = tu_rand(VR_F64, 2, shape, 100 + k);
    OK(vr_tensor_to_dtype(p64, dt, &p[k]));
    vr_tensor_free(p64);
    OK(vr_tensor_zeros(2, shape, dt, VR_CPU, &m[k]));
    OK(vr_tensor_zeros(2, shape, dt, VR_CPU, &v[k]));
    r.p[k] = tu_values(p[k]);
    r.m[k] = calloc((size_t)(shape[0] * shape[1]), sizeof(double));
    r.v[k] = calloc((size_t)(shape[0] * shape[1]), sizeof(double));
  }
  const double lr = 1e-2, b1 = 0.9, b2 = 0.999, eps = 1e-8;
  for (int step = 1; step <= 4; step++) {
    double *gv[NP];
    for (int k = 0; k < NP; k++) {
      int64_t shape[2] = {sizes[k][0], sizes[k][1]};
      vr_tensor *g64 = NULL;
      if (k == 1) g64 = tu_strided(2, shape, 200 + 10 * step + k); /* a non-contiguous gradient */
      else g64 = tu_rand(VR_F64, 2, shape, 200 + 10 * step + k);
      OK(vr_tensor_to_dtype(g64, dt, &g[k]));
      if (k == 1 && dt == VR_F64) ck_assert(!vr_tensor_is_contiguous(g[k]));
      vr_tensor_free(g64);
      gv[k] = tu_values(g[k]);
    }
    double scale = step % 2 ? 1.0 : 0.375;
    vr_tensor *gs = NULL;
    if (step % 2 == 0) OK(vr_tensor_scalar(scale, VR_F32, VR_CPU, &gs));
    ref_step(&r, gv, wd, ls, step == 3 ? 0 : lr, b1, b2, eps, step, scale);
    OK(vr_adamw_step(p, g, m, v, NP, wd, ls, step == 3 ? 0 : lr, b1, b2, eps, step, gs));
    vr_tensor_free(gs);
    for (int k = 0; k < NP; k++) {
      vr_tensor_free(g[k]);
      free(gv[k]);
    }
  }
  for (int k = 0; k < NP; k++) {
    int64_t n = sizes[k][0] * sizes[k][1];
    char what[64];
    snprintf(what, sizeof what, "%s param %d", vr_dtype_name(dt), k);
    tu_assert_values(p[k], r.p[k], n, tol, what);
    snprintf(what, sizeof what, "%s exp_avg %d", vr_dtype_name(dt), k);
    tu_assert_values(m[k], r.m[k], n, tol, what);
    snprintf(what, sizeof what, "%s exp_avg_sq %d", vr_dtype_name(dt), k);
    tu_assert_values(v[k], r.v[k], n, tol, what);
    vr_tensor_free(p[k]);
    vr_tensor_free(m[k]);
    vr_tensor_free(v[k]);
    free(r.p[k]);
    free(r.m[k]);
    free(r.v[k]);
  }
}

START_TEST(test_adamw_f64) { check_adamw(VR_F64, 1e-13); }
END_TEST
START_TEST(test_adamw_f32) { check_adamw(VR_F32, 2e-6); }
END_TEST

/* with zero gradients only the decay moves the weights; without decay nothing moves */
START_TEST(test_adamw_decay_only) {
  vr_tensor *p[2], *g[2], *m[2], *v[2];
  for (int k = 0; k < 2; k++) {
    p[k] = tu_tensor(VR_F64, 1, TU_SHAPE(2), TU_VALS(1.0, -2.0));
    OK(vr_tensor_zeros(1, TU_SHAPE(2), VR_F64, VR_CPU, &g[k]));
    OK(vr_tensor_zeros(1, TU_SHAPE(2), VR_F64, VR_CPU, &m[k]));
    OK(vr_tensor_zeros(1, TU_SHAPE(2), VR_F64, VR_CPU, &v[k]));
  }
  uint64_t v0 = vr_tensor_version(p[0]);
  OK(vr_adamw_step(p, g, m, v, 2, (const double[]){0.5, 0}, NULL, 0.1, 0.9, 0.999, 1e-8, 1, NULL));
  tu_assert_values(p[0], TU_VALS(0.95, -1.9), 2, 1e-15, "decayed by lr * wd");
  tu_assert_values(p[1], TU_VALS(1.0, -2.0), 2, 0, "no decay");
  ck_assert(vr_tensor_version(p[0]) > v0);
  for (int k = 0; k < 2; k++) {
    vr_tensor_free(p[k]);
    vr_tensor_free(g[k]);
    vr_tensor_free(m[k]);
    vr_tensor_free(v[k]);
  }
}
END_TEST

START_TEST(test_grad_norm) {
  vr_tensor *t[3] = {tu_tensor(VR_F64, 1, TU_SHAPE(1), TU_VALS(3.0)), tu_tensor(VR_F64, 2, TU_SHAPE(1, 2), TU_VALS(0.0, 4.0)),
                     tu_strided(2, TU_SHAPE(3, 4), 5)};
  double ss = 25;
  double *x = tu_values(t[2]);
  for (int k = 0; k < 12; k++) ss += x[k] * x[k];
  free(x);
  vr_tensor *n = NULL, *c = NULL;
  OK(vr_grad_norm(t, 3, 1.0, &n, &c));
  ck_assert_int_eq(vr_tensor_ndim(n), 0);
  ck_assert_int_eq(vr_tensor_dtype(n), VR_F64);
  ck_assert_double_eq_tol(tu_item(n), sqrt(ss), 1e-14);
  ck_assert_double_eq_tol(tu_item(c), 1.0 / (sqrt(ss) + 1e-6), 1e-14);
  vr_tensor_free(n);
  vr_tensor_free(c);
  OK(vr_grad_norm(t, 2, 10.0, &n, &c));
  ck_assert_double_eq_tol(tu_item(n), 5.0, 1e-15);
  ck_assert_double_eq(tu_item(c), 1.0); /* below the limit */
  vr_tensor_free(n);
  vr_tensor_free(c);
  OK(vr_grad_norm(t, 2, 0, &n, NULL)); /* no limit; clip not asked for */
  ck_assert_double_eq_tol(tu_item(n), 5.0, 1e-15);
  vr_tensor_free(n);
  for (int k = 0; k < 3; k++) vr_tensor_free(t[k]);
}
END_TEST

/* a fixed summation order: the same bits with 1 and 2 threads, over several chunks */
START_TEST(test_grad_norm_threads) {
  vr_tensor *t[2] = {tu_rand(VR_F32, 1, TU_SHAPE(100003), 1), tu_rand(VR_F32, 1, TU_SHAPE(33), 2)};
  vr_tensor *n1 = NULL, *n2 = NULL;
  int nt = vr_num_threads();
  vr_set_num_threads(1);
  OK(vr_grad_norm(t, 2, 0, &n1, NULL));
  vr_set_num_threads(2);
  OK(vr_grad_norm(t, 2, 0, &n2, NULL));
  vr_set_num_threads(nt);
  ck_assert(tu_item(n1) == tu_item(n2));
  double *x = tu_values(t[0]), ss = 0;
  for (int k = 0; k < 100003; k++) ss += x[k] * x[k];
  free(x);
  x = tu_values(t[1]);
  for (int k = 0; k < 33; k++) ss += x[k] * x[k];
  free(x);
  ck_assert_double_eq_tol(tu_item(n1), sqrt(ss), 1e-5 * sqrt(ss));
  vr_tensor_free(n1);
  vr_tensor_free(n2);
  vr_tensor_free(t[0]);
  vr_tensor_free(t[1]);
}
END_TEST

START_TEST(test_errors) {
  vr_tensor *p[2], *g[2], *m[2], *v[2];
  for (int k = 0; k < 2; k++) {
    OK(vr_tensor_zeros(1, TU_SHAPE(3), VR_F32, VR_CPU, &p[k]));
    OK(vr_tensor_zeros(1, TU_SHAPE(3), VR_F32, VR_CPU, &g[k]));
    OK(vr_tensor_zeros(1, TU_SHAPE(3), VR_F32, VR_CPU, &m[k]));
    OK(vr_tensor_zeros(1, TU_SHAPE(3), VR_F32, VR_CPU, &v[k]));
  }
  FAILS(vr_adamw_step(p, g, m, v, 0, NULL, NULL, 0.1, 0.9, 0.999, 1e-8, 1, NULL), VR_E_ARG, "n: expected at least 1");
  FAILS(vr_adamw_step(NULL, g, m, v, 2, NULL, NULL, 0.1, 0.9, 0.999, 1e-8, 1, NULL), VR_E_ARG, "params");
  FAILS(vr_adamw_step(p, g, m, v, 2, NULL, NULL, 0.1, 0.9, 0.999, 1e-8, 0, NULL), VR_E_ARG, "step");
  FAILS(vr_adamw_step(p, g, m, v, 2, NULL, NULL, 0.1, 1.0, 0.999, 1e-8, 1, NULL), VR_E_ARG, "beta1");
  FAILS(vr_adamw_step(p, g, m, v, 2, NULL, NULL, -1, 0.9, 0.999, 1e-8, 1, NULL), VR_E_ARG, "lr");
  /* a gradient of another shape */
  vr_tensor *bad = NULL, *keep = g[1];
  OK(vr_tensor_zeros(1, TU_SHAPE(4), VR_F32, VR_CPU, &bad));
  g[1] = bad;
  FAILS(vr_adamw_step(p, g, m, v, 2, NULL, NULL, 0.1, 0.9, 0.999, 1e-8, 1, NULL), VR_E_SHAPE, "grads[1]: expected shape [3]");
  vr_tensor_free(bad);
  /* another dtype */
  OK(vr_tensor_zeros(1, TU_SHAPE(3), VR_F64, VR_CPU, &bad));
  g[1] = bad;
  FAILS(vr_adamw_step(p, g, m, v, 2, NULL, NULL, 0.1, 0.9, 0.999, 1e-8, 1, NULL), VR_E_DTYPE, "grads[1]: expected f32");
  vr_tensor_free(bad);
  g[1] = keep;
  keep = v[0];
  OK(vr_tensor_zeros(1, TU_SHAPE(3), VR_I64, VR_CPU, &bad));
  v[0] = bad;
  FAILS(vr_adamw_step(p, g, m, v, 2, NULL, NULL, 0.1, 0.9, 0.999, 1e-8, 1, NULL), VR_E_DTYPE, "exp_avg_sq[0]");
  vr_tensor_free(bad);
  v[0] = keep;
  /* a non-contiguous parameter */
  vr_tensor *base = NULL, *sl = NULL;
  OK(vr_tensor_zeros(1, TU_SHAPE(6), VR_F32, VR_CPU, &base));
  OK(vr_slice(base, 0, 0, 6, 2, &sl));
  keep = p[1];
  p[1] = sl;
  FAILS(vr_adamw_step(p, g, m, v, 2, NULL, NULL, 0.1, 0.9, 0.999, 1e-8, 1, NULL), VR_E_ARG, "params[1]: expected a contiguous");
  p[1] = keep;
  vr_tensor_free(sl);
  vr_tensor_free(base);
  /* grad_scale: one element, a float */
  vr_tensor *gs = NULL;
  OK(vr_tensor_zeros(1, TU_SHAPE(2), VR_F32, VR_CPU, &gs));
  FAILS(vr_adamw_step(p, g, m, v, 2, NULL, NULL, 0.1, 0.9, 0.999, 1e-8, 1, gs), VR_E_SHAPE, "grad_scale: expected one element");
  vr_tensor_free(gs);
  FAILS(vr_adamw_step(p, g, m, v, 2, (const double[]){0, NAN}, NULL, 0.1, 0.9, 0.999, 1e-8, 1, NULL), VR_E_ARG,
        "weight_decay[1]");
  /* a CUDA tensor among CPU ones, where there is a GPU */
  if (vr_cuda_available()) {
    OK(vr_tensor_zeros(1, TU_SHAPE(3), VR_F32, VR_CUDA, &bad));
    keep = m[1];
    m[1] = bad;
    FAILS(vr_adamw_step(p, g, m, v, 2, NULL, NULL, 0.1, 0.9, 0.999, 1e-8, 1, NULL), VR_E_DEVICE, "exp_avg[1]");
    m[1] = keep;
    vr_tensor_free(bad);
  }
  /* the norm */
  vr_tensor *n = NULL;
  FAILS(vr_grad_norm(g, 0, 1, &n, NULL), VR_E_ARG, "n: expected at least 1");
  FAILS(vr_grad_norm(g, 2, 1, NULL, NULL), VR_E_ARG, "norm");
  OK(vr_tensor_zeros(1, TU_SHAPE(3), VR_F64, VR_CPU, &bad));
  keep = g[1];
  g[1] = bad;
  FAILS(vr_grad_norm(g, 2, 1, &n, NULL), VR_E_DTYPE, "tensors[1]");
  g[1] = keep;
  vr_tensor_free(bad);
  ck_assert_ptr_null(n);
  for (int k = 0; k < 2; k++) {
    vr_tensor_free(p[k]);
    vr_tensor_free(g[k]);
    vr_tensor_free(m[k]);
    vr_tensor_free(v[k]);
  }
}
END_TEST

static Suite *optim_suite(void) {
  Suite *s = suite_create("optim");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, test_adamw_f64);
  tcase_add_test(tc, test_adamw_f32);
  tcase_add_test(tc, test_adamw_decay_only);
  tcase_add_test(tc, test_grad_norm);
  tcase_add_test(tc, test_grad_norm_threads);
  tcase_add_test(tc, test_errors);
  suite_add_tcase(s, tc);
  return s;
}

VR_TEST_MAIN(optim_suite)
