/* test_softmax.c: softmax and log-softmax along any dim (values, numerical stability,
 * gradients) and the fused cross-entropy loss (with and without label smoothing, the target
 * range check, gradients, errors). */
#include "testutil.h"

static void free_all(int n, vr_tensor **ts) {
  for (int k = 0; k < n; k++) vr_tensor_free(ts[k]);
}

/* naive softmax of row-major x (outer x D x inner) along the middle dim, in double */
static void naive_softmax(const double *x, int64_t outer, int64_t D, int64_t inner, int logsm, double *y) {
  for (int64_t o = 0; o < outer; o++)
    for (int64_t i = 0; i < inner; i++) {
      double mx = -INFINITY, s = 0;
      for (int64_t d = 0; d < D; d++) mx = fmax(mx, x[(o * D + d) * inner + i]);
      for (int64_t d = 0; d < D; d++) s += exp(x[(o * D + d) * inner + i] - mx);
      for (int64_t d = 0; d < D; d++) {
        double v = x[(o * D + d) * inner + i] - mx;
        y[(o * D + d) * inner + i] = logsm ? v - log(s) : exp(v) / s;
      }
    }
}

/* ---------------------------------------------------------------- softmax values */

START_TEST(softmax_last_dim_hand_values) {
  vr_tensor *x = tu_tensor(VR_F64, 2, TU_SHAPE(2, 3), TU_VALS(0, 0, 0, 1, 2, 3)), *y = NULL;
  OK(vr_softmax(x, -1, &y));
  double s = 1 + exp(1) + exp(2);
  tu_assert_values(y, TU_VALS(1 / 3.0, 1 / 3.0, 1 / 3.0, 1 / s, exp(1) / s, exp(2) / s), 6, 1e-15, "softmax rows");
  vr_tensor_free(x);
  vr_tensor_free(y);
}
END_TEST

START_TEST(softmax_dim0_hand_values) {
  vr_tensor *x = tu_tensor(VR_F64, 2, TU_SHAPE(2, 2), TU_VALS(0, 5, log(3.0), 5)), *y = NULL;
  OK(vr_softmax(x, 0, &y));
  tu_assert_values(y, TU_VALS(0.25, 0.5, 0.75, 0.5), 4, 1e-15, "softmax columns");
  vr_tensor_free(x);
  vr_tensor_free(y);
}
END_TEST

START_TEST(softmax_middle_dim_matches_naive) {
  vr_tensor *x = tu_rand(VR_F64, 3, TU_SHAPE(3, 4, 5), 1), *y = NULL, *ly = NULL;
  OK(vr_softmax(x, 1, &y));
  OK(vr_log_softmax(x, -2, &ly));
  double *xv = tu_values(x), e[60], le[60];
  naive_softmax(xv, 3, 4, 5, 0, e);
  naive_softmax(xv, 3, 4, 5, 1, le);
  tu_assert_values(y, e, 60, 1e-14, "softmax dim 1");
  tu_assert_values(ly, le, 60, 1e-14, "log_softmax dim 1");
  free(xv);
  vr_tensor *ts[] = {x, y, ly};
  free_all(3, ts);
}
END_TEST

START_TEST(softmax_is_numerically_stable) {
  vr_tensor *x = tu_tensor(VR_F32, 1, TU_SHAPE(3), TU_VALS(1000, 1001, 1002)), *y = NULL, *ly = NULL;
  vr_tensor *n = tu_tensor(VR_F64, 1, TU_SHAPE(2), TU_VALS(-1e4, 0)), *ln = NULL;
  OK(vr_softmax(x, 0, &y));
  OK(vr_log_softmax(x, 0, &ly));
  OK(vr_log_softmax(n, 0, &ln));
  double s = 1 + exp(1) + exp(2);
  tu_assert_values(y, TU_VALS(1 / s, exp(1) / s, exp(2) / s), 3, 1e-6, "softmax of large logits");
  double s2 = 1 + exp(-1) + exp(-2); /* log_softmax = x - 1002 - log s2 */
  tu_assert_values(ly, TU_VALS(-2 - log(s2), -1 - log(s2), -log(s2)), 3, 1e-4, "log_softmax of large logits (f32 ulp 6e-5)");
  tu_assert_values(ln, TU_VALS(-1e4, 0), 2, 1e-12, "log_softmax keeps -1e4 (no log(0))");
  int fin = 0;
  OK(vr_isfinite_all(ly, &fin));
  ck_assert(fin);
  vr_tensor *ts[] = {x, y, ly, n, ln};
  free_all(5, ts);
}
END_TEST

START_TEST(log_softmax_hand_values_and_f32) {
  vr_tensor *x = tu_tensor(VR_F64, 2, TU_SHAPE(2, 2), TU_VALS(1, 1, 0, log(3.0))), *y = NULL, *xf = NULL, *yf = NULL;
  OK(vr_log_softmax(x, 1, &y));
  tu_assert_values(y, TU_VALS(-log(2.0), -log(2.0), -log(4.0), log(0.75)), 4, 1e-15, "log_softmax rows");
  OK(vr_tensor_to_dtype(x, VR_F32, &xf));
  OK(vr_log_softmax(xf, 1, &yf));
  ck_assert_int_eq(vr_tensor_dtype(yf), VR_F32);
  tu_assert_close(yf, y, 1e-6, 1e-6, "f32 log_softmax");
  vr_tensor *ts[] = {x, y, xf, yf};
  free_all(4, ts);
}
END_TEST

START_TEST(softmax_strided_equals_contiguous) {
  vr_tensor *x = tu_strided(3, TU_SHAPE(2, 5, 3), 2), *xc = NULL, *y = NULL, *yc = NULL;
  OK(vr_contiguous(x, &xc));
  for (int dim = 0; dim < 3; dim++) {
    OK(vr_softmax(x, dim, &y));
    OK(vr_softmax(xc, dim, &yc));
    tu_assert_close(y, yc, 0, 1e-16, "strided softmax");
    vr_tensor_free(y);
    vr_tensor_free(yc);
  }
  vr_tensor_free(x);
  vr_tensor_free(xc);
}
END_TEST

START_TEST(softmax_large_f32_rows_sum_to_one) {
  /* enough rows to split over threads */
  vr_tensor *x = tu_rand(VR_F32, 2, TU_SHAPE(512, 100), 3), *y = NULL;
  OK(vr_softmax(x, 1, &y));
  double *v = tu_values(y);
  for (int r = 0; r < 512; r++) {
    double s = 0;
    for (int c = 0; c < 100; c++) s += v[r * 100 + c];
    ck_assert_double_eq_tol(s, 1.0, 1e-5);
  }
  free(v);
  vr_tensor_free(x);
  vr_tensor_free(y);
}
END_TEST

START_TEST(softmax_ce_deterministic_across_thread_counts) {
  vr_tensor *x = tu_rand(VR_F32, 2, TU_SHAPE(2000, 50), 4), *t = NULL;
  vr_generator *gen = NULL;
  OK(vr_generator_new(3, 0, &gen));
  OK(vr_rand_int(gen, 1, TU_SHAPE(2000), 0, 50, VR_I64, VR_CPU, &t));
  OK(vr_tensor_set_requires_grad(x, 1));
  vr_tensor *y[2] = {NULL, NULL}, *l[2] = {NULL, NULL}, *g[2] = {NULL, NULL};
  int prev = vr_num_threads();
  for (int r = 0; r < 2; r++) {
    vr_set_num_threads(r ? 4 : 1);
    OK(vr_log_softmax(x, 1, &y[r]));
    OK(vr_cross_entropy(x, t, 0.1, &l[r]));
    OK(vr_backward(l[r], NULL, 0));
    g[r] = vr_tensor_grad(x);
    vr_tensor_set_grad(x, NULL);
  }
  vr_set_num_threads(prev);
  tu_assert_close(y[1], y[0], 0, 0, "log_softmax across threads");
  tu_assert_close(l[1], l[0], 0, 0, "cross_entropy across threads");
  tu_assert_close(g[1], g[0], 0, 0, "cross_entropy grad across threads");
  vr_tensor *ts[] = {x, t, y[0], y[1], l[0], l[1], g[0], g[1]};
  free_all(8, ts);
  vr_generator_free(gen);
}
END_TEST

/* ---------------------------------------------------------------- softmax gradients */

typedef struct { int dim, log; } sm_cfg;
static vr_status sm_fn(vr_tensor *const *in, void *ctx, vr_tensor **out) {
  const sm_cfg *c = ctx;
  return c->log ? vr_log_softmax(in[0], c->dim, out) : vr_softmax(in[0], c->dim, out);
}

START_TEST(softmax_grad_last_dim_and_dim0) {
  vr_tensor *x = tu_rand(VR_F64, 2, TU_SHAPE(3, 4), 10);
  vr_tensor *in[1] = {x};
  sm_cfg last = {-1, 0}, first = {0, 0};
  tu_gradcheck("softmax dim -1", 1, in, 0, sm_fn, &last, 1e-6, 1e-6);
  tu_gradcheck("softmax dim 0", 1, in, 0, sm_fn, &first, 1e-6, 1e-6);
  vr_tensor_free(x);
}
END_TEST

START_TEST(log_softmax_grad_last_dim_and_dim0) {
  vr_tensor *x = tu_rand(VR_F64, 2, TU_SHAPE(3, 4), 11);
  vr_tensor *in[1] = {x};
  sm_cfg last = {-1, 1}, first = {0, 1};
  tu_gradcheck("log_softmax dim -1", 1, in, 0, sm_fn, &last, 1e-6, 1e-6);
  tu_gradcheck("log_softmax dim 0", 1, in, 0, sm_fn, &first, 1e-6, 1e-6);
  vr_tensor_free(x);
}
END_TEST

START_TEST(softmax_grad_noncontiguous_middle_dim) {
  vr_tensor *x = tu_strided(3, TU_SHAPE(2, 3, 4), 12);
  ck_assert(!vr_tensor_is_contiguous(x));
  vr_tensor *in[1] = {x};
  sm_cfg c1 = {1, 0}, c2 = {1, 1}, c3 = {-1, 0};
  tu_gradcheck("softmax strided dim 1", 1, in, 0, sm_fn, &c1, 1e-6, 1e-6);
  tu_gradcheck("log_softmax strided dim 1", 1, in, 0, sm_fn, &c2, 1e-6, 1e-6);
  tu_gradcheck("softmax strided dim -1", 1, in, 0, sm_fn, &c3, 1e-6, 1e-6);
  vr_tensor_free(x);
}
END_TEST

START_TEST(softmax_output_modified_in_place_is_an_error) {
  vr_tensor *x = tu_rand(VR_F64, 1, TU_SHAPE(4), 13), *y = NULL, *g = NULL;
  OK(vr_tensor_set_requires_grad(x, 1));
  OK(vr_softmax(x, 0, &y));
  ck_assert_str_eq(vr_tensor_grad_fn_name(y), "softmax");
  OK(vr_mul_scalar_(y, 2.0));
  OK(vr_tensor_ones(1, TU_SHAPE(4), VR_F64, VR_CPU, &g));
  FAILS(vr_backward(y, g, 0), VR_E_AUTOGRAD, "modified in place");
  vr_tensor *ts[] = {x, y, g};
  free_all(3, ts);
}
END_TEST

START_TEST(softmax_of_0dim_is_one) {
  vr_tensor *x = NULL, *y = NULL;
  OK(vr_tensor_scalar(3.5, VR_F64, VR_CPU, &x));
  OK(vr_softmax(x, 0, &y));
  ck_assert_int_eq(vr_tensor_ndim(y), 0);
  ck_assert_double_eq(tu_item(y), 1.0);
  vr_tensor_free(x);
  vr_tensor_free(y);
}
END_TEST

START_TEST(softmax_errors) {
  vr_tensor *x = tu_rand(VR_F64, 2, TU_SHAPE(2, 3), 14), *xi = NULL, *y = NULL;
  OK(vr_tensor_zeros(1, TU_SHAPE(3), VR_I32, VR_CPU, &xi));
  FAILS(vr_softmax(x, 2, &y), VR_E_ARG, "dim: expected a dim in [-2, 1] for x with 2 dims, got 2");
  FAILS(vr_log_softmax(x, -3, &y), VR_E_ARG, "vr_log_softmax: dim");
  FAILS(vr_softmax(xi, 0, &y), VR_E_DTYPE, "x: expected a float tensor, got i32");
  FAILS(vr_softmax(NULL, 0, &y), VR_E_ARG, "x: expected a tensor");
  FAILS(vr_log_softmax(x, 0, NULL), VR_E_ARG, "out");
  ck_assert_ptr_null(y);
  vr_tensor_free(x);
  vr_tensor_free(xi);
}
END_TEST

/* ---------------------------------------------------------------- cross-entropy */

static vr_tensor *targets(int n, const int64_t *t) {
  vr_tensor *r = NULL;
  vr_tensor_from_buffer(t, 1, (int64_t[]){n}, VR_I64, VR_CPU, &r);
  return r;
}

/* mean over rows of (1-eps)(lse - x_t) + eps (lse - mean_c x_c), in double */
static double naive_ce(const double *x, const int64_t *t, int64_t N, int64_t C, double eps) {
  double acc = 0;
  for (int64_t n = 0; n < N; n++) {
    double mx = -INFINITY, s = 0, sx = 0;
    for (int64_t c = 0; c < C; c++) mx = fmax(mx, x[n * C + c]);
    for (int64_t c = 0; c < C; c++) {
      s += exp(x[n * C + c] - mx);
      sx += x[n * C + c];
    }
    double lse = mx + log(s);
    acc += (1 - eps) * (lse - x[n * C + t[n]]) + eps * (lse - sx / (double)C);
  }
  return acc / (double)N;
}

START_TEST(ce_hand_values) {
  /* row 0 uniform over 4 classes: log 4; row 1: p(target) = 1/2 */
  vr_tensor *x = tu_tensor(VR_F64, 2, TU_SHAPE(2, 4), TU_VALS(0, 0, 0, 0, log(3.0), 0, 0, 0));
  vr_tensor *t = targets(2, (int64_t[]){2, 0}), *l = NULL;
  OK(vr_cross_entropy(x, t, 0, &l));
  ck_assert_int_eq(vr_tensor_ndim(l), 0);
  ck_assert_double_eq_tol(tu_item(l), (log(4.0) + log(2.0)) / 2, 1e-15);
  vr_tensor *ts[] = {x, t, l};
  free_all(3, ts);
}
END_TEST

START_TEST(ce_label_smoothing_values) {
  vr_tensor *x = tu_tensor(VR_F64, 2, TU_SHAPE(1, 3), TU_VALS(1, 2, 3));
  vr_tensor *t = targets(1, (int64_t[]){0}), *l = NULL;
  OK(vr_cross_entropy(x, t, 0.3, &l));
  double lse = log(exp(1) + exp(2) + exp(3));
  /* (1-eps) nll + eps mean_c(-log p_c) = 0.7 (lse - 1) + 0.3 (lse - 2) */
  ck_assert_double_eq_tol(tu_item(l), 0.7 * (lse - 1) + 0.3 * (lse - 2), 1e-14);
  vr_tensor_free(l);
  OK(vr_cross_entropy(x, t, 1.0, &l)); /* all smoothing: no dependence on the target */
  ck_assert_double_eq_tol(tu_item(l), lse - 2, 1e-14);
  vr_tensor *ts[] = {x, t, l};
  free_all(3, ts);
}
END_TEST

START_TEST(ce_matches_naive_and_log_softmax) {
  int64_t tv[6] = {0, 4, 2, 2, 1, 3};
  vr_tensor *x = tu_rand(VR_F64, 2, TU_SHAPE(6, 5), 20), *t = targets(6, tv), *l = NULL, *ls = NULL;
  OK(vr_cross_entropy(x, t, 0.1, &l));
  double *xv = tu_values(x);
  ck_assert_double_eq_tol(tu_item(l), naive_ce(xv, tv, 6, 5, 0.1), 1e-14);
  /* without smoothing: mean of -log_softmax at the target */
  vr_tensor_free(l);
  OK(vr_cross_entropy(x, t, 0, &l));
  OK(vr_log_softmax(x, 1, &ls));
  double *lv = tu_values(ls), nll = 0;
  for (int n = 0; n < 6; n++) nll -= lv[n * 5 + tv[n]];
  ck_assert_double_eq_tol(tu_item(l), nll / 6, 1e-14);
  free(xv);
  free(lv);
  vr_tensor *ts[] = {x, t, l, ls};
  free_all(4, ts);
}
END_TEST

START_TEST(ce_f32_and_large_logits) {
  int64_t tv[3] = {1, 0, 2};
  vr_tensor *x = tu_tensor(VR_F32, 2, TU_SHAPE(3, 3), TU_VALS(1000, 1001, 999, -500, -501, -502, 0, 0, 80));
  vr_tensor *t = targets(3, tv), *l = NULL;
  OK(vr_cross_entropy(x, t, 0.2, &l));
  ck_assert_int_eq(vr_tensor_dtype(l), VR_F32);
  double xv[9] = {1000, 1001, 999, -500, -501, -502, 0, 0, 80};
  ck_assert_double_eq_tol(tu_item(l), naive_ce(xv, tv, 3, 3, 0.2), 1e-4);
  vr_tensor *ts[] = {x, t, l};
  free_all(3, ts);
}
END_TEST

typedef struct { vr_tensor *t; double eps; } ce_cfg;
static vr_status ce_fn(vr_tensor *const *in, void *ctx, vr_tensor **out) {
  const ce_cfg *c = ctx;
  return vr_cross_entropy(in[0], c->t, c->eps, out);
}

START_TEST(ce_grad_without_smoothing) {
  vr_tensor *x = tu_rand(VR_F64, 2, TU_SHAPE(4, 5), 21), *t = targets(4, (int64_t[]){4, 0, 1, 4});
  vr_tensor *in[1] = {x};
  ce_cfg c = {t, 0};
  tu_gradcheck("ce", 1, in, 0, ce_fn, &c, 1e-6, 1e-6);
  vr_tensor_free(x);
  vr_tensor_free(t);
}
END_TEST

START_TEST(ce_grad_with_smoothing) {
  vr_tensor *x = tu_rand(VR_F64, 2, TU_SHAPE(3, 6), 22), *t = targets(3, (int64_t[]){5, 2, 0});
  vr_tensor *in[1] = {x};
  ce_cfg c = {t, 0.25};
  tu_gradcheck("ce smoothing", 1, in, 0, ce_fn, &c, 1e-6, 1e-6);
  vr_tensor_free(x);
  vr_tensor_free(t);
}
END_TEST

START_TEST(ce_grad_noncontiguous) {
  vr_tensor *x = tu_strided(2, TU_SHAPE(5, 3), 23), *t = targets(5, (int64_t[]){0, 1, 2, 1, 0});
  ck_assert(!vr_tensor_is_contiguous(x));
  vr_tensor *in[1] = {x};
  ce_cfg c = {t, 0.1};
  tu_gradcheck("ce strided", 1, in, 0, ce_fn, &c, 1e-6, 1e-6);
  vr_tensor_free(x);
  vr_tensor_free(t);
}
END_TEST

START_TEST(ce_grad_is_softmax_minus_onehot_over_n) {
  vr_tensor *x = tu_rand(VR_F64, 2, TU_SHAPE(2, 3), 24), *t = targets(2, (int64_t[]){1, 2}), *l = NULL, *p = NULL;
  OK(vr_tensor_set_requires_grad(x, 1));
  OK(vr_cross_entropy(x, t, 0, &l));
  ck_assert_str_eq(vr_tensor_grad_fn_name(l), "cross_entropy");
  OK(vr_backward(l, NULL, 0));
  OK(vr_softmax(x, 1, &p));
  vr_tensor *g = vr_tensor_grad(x);
  double *gv = tu_values(g), *pv = tu_values(p);
  for (int n = 0; n < 2; n++)
    for (int c = 0; c < 3; c++)
      ck_assert_double_eq_tol(gv[n * 3 + c], (pv[n * 3 + c] - (c == (n ? 2 : 1))) / 2, 1e-15);
  free(gv);
  free(pv);
  vr_tensor *ts[] = {x, t, l, p, g};
  free_all(5, ts);
}
END_TEST

START_TEST(ce_target_out_of_range_names_the_index) {
  vr_tensor *x = tu_rand(VR_F64, 2, TU_SHAPE(4, 3), 25), *l = NULL;
  vr_tensor *t = targets(4, (int64_t[]){0, 2, 3, 1}), *tn = targets(4, (int64_t[]){0, -1, 0, 0});
  FAILS(vr_cross_entropy(x, t, 0, &l), VR_E_ARG, "target: expected class indices in [0, 3), got 3 at index 2");
  FAILS(vr_cross_entropy(x, tn, 0, &l), VR_E_ARG, "got -1 at index 1");
  ck_assert(strstr(vr_last_error(), "vr_cross_entropy") != NULL);
  ck_assert_ptr_null(l);
  vr_tensor *ts[] = {x, t, tn};
  free_all(3, ts);
}
END_TEST

START_TEST(ce_errors) {
  vr_tensor *x = tu_rand(VR_F64, 2, TU_SHAPE(2, 3), 26), *x1 = tu_rand(VR_F64, 1, TU_SHAPE(3), 27), *l = NULL;
  vr_tensor *t = targets(2, (int64_t[]){0, 1}), *t3 = targets(3, (int64_t[]){0, 1, 2}), *ti = NULL, *x0 = NULL;
  OK(vr_tensor_zeros(1, TU_SHAPE(2), VR_I32, VR_CPU, &ti));
  OK(vr_tensor_zeros(2, TU_SHAPE(2, 0), VR_F64, VR_CPU, &x0));
  FAILS(vr_cross_entropy(x1, t, 0, &l), VR_E_SHAPE, "logits: expected N x C (2 dims), got 1 dims");
  FAILS(vr_cross_entropy(x, t3, 0, &l), VR_E_SHAPE, "target: expected shape [2] (N of logits), got [3]");
  FAILS(vr_cross_entropy(x, ti, 0, &l), VR_E_DTYPE, "target: expected i64 class indices, got i32");
  FAILS(vr_cross_entropy(t, t, 0, &l), VR_E_DTYPE, "logits: expected a float tensor");
  FAILS(vr_cross_entropy(x, t, -0.1, &l), VR_E_ARG, "label_smoothing: expected a value in [0, 1], got -0.1");
  FAILS(vr_cross_entropy(x, t, 1.1, &l), VR_E_ARG, "label_smoothing");
  FAILS(vr_cross_entropy(x0, t, 0, &l), VR_E_SHAPE, "at least 1 class");
  FAILS(vr_cross_entropy(x, NULL, 0, &l), VR_E_ARG, "target: expected a tensor");
  vr_tensor *xe = NULL, *te = NULL;
  OK(vr_tensor_zeros(2, TU_SHAPE(0, 3), VR_F64, VR_CPU, &xe));
  OK(vr_tensor_zeros(1, TU_SHAPE(0), VR_I64, VR_CPU, &te));
  OK(vr_cross_entropy(xe, te, 0, &l)); /* empty batch: NaN, like PyTorch */
  ck_assert(isnan(tu_item(l)));
  vr_tensor_free(l);
  l = NULL;
  vr_tensor_free(xe);
  vr_tensor_free(te);
  ck_assert_ptr_null(l);
  vr_tensor *ts[] = {x, x1, t, t3, ti, x0};
  free_all(6, ts);
}
END_TEST

static Suite *softmax_suite(void) {
  Suite *s = suite_create("softmax");
  TCase *sm = tcase_create("softmax");
  tcase_add_test(sm, softmax_last_dim_hand_values);
  tcase_add_test(sm, softmax_dim0_hand_values);
  tcase_add_test(sm, softmax_middle_dim_matches_naive);
  tcase_add_test(sm, softmax_is_numerically_stable);
  tcase_add_test(sm, log_softmax_hand_values_and_f32);
  tcase_add_test(sm, softmax_strided_equals_contiguous);
  tcase_add_test(sm, softmax_large_f32_rows_sum_to_one);
  tcase_add_test(sm, softmax_ce_deterministic_across_thread_counts);
  tcase_add_test(sm, softmax_grad_last_dim_and_dim0);
  tcase_add_test(sm, log_softmax_grad_last_dim_and_dim0);
  tcase_add_test(sm, softmax_grad_noncontiguous_middle_dim);
  tcase_add_test(sm, softmax_output_modified_in_place_is_an_error);
  tcase_add_test(sm, softmax_of_0dim_is_one);
  tcase_add_test(sm, softmax_errors);
  suite_add_tcase(s, sm);
  TCase *ce = tcase_create("cross_entropy");
  tcase_add_test(ce, ce_hand_values);
  tcase_add_test(ce, ce_label_smoothing_values);
  tcase_add_test(ce, ce_matches_naive_and_log_softmax);
  tcase_add_test(ce, ce_f32_and_large_logits);
  tcase_add_test(ce, ce_grad_without_smoothing);
  tcase_add_test(ce, ce_grad_with_smoothing);
  tcase_add_test(ce, ce_grad_noncontiguous);
  tcase_add_test(ce, ce_grad_is_softmax_minus_onehot_over_n);
  tcase_add_test(ce, ce_target_out_of_range_names_the_index);
  tcase_add_test(ce, ce_errors);
  suite_add_tcase(s, ce);
  return s;
}

VR_TEST_MAIN(softmax_suite)
