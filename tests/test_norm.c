/* test_norm.c: batch norm (2-D and 4-D, training and eval, running-stat updates), layer norm
 * (over 1 and 2 dims) and dropout: values against naive double computations, finite-difference
 * gradients for every differentiable input, and the error messages. */
#include "testutil.h"

/* ---------------------------------------------------------------- naive references */

/* x is N x C x S row-major; w/b may be NULL; mean/var (biased) per channel are written */
static void naive_bn(const double *x, int64_t N, int64_t C, int64_t S, const double *w, const double *b, double eps,
                     double *y, double *mean, double *var) {
  for (int64_t c = 0; c < C; c++) {
    double s = 0, q = 0;
    for (int64_t n = 0; n < N; n++)
      for (int64_t k = 0; k < S; k++) s += x[(n * C + c) * S + k];
    double m = s / (double)(N * S);
    for (int64_t n = 0; n < N; n++)
      for (int64_t k = 0; k < S; k++) q += (x[(n * C + c) * S + k] - m) * (x[(n * C + c) * S + k] - m);
    double v = q / (double)(N * S);
    mean[c] = m;
    var[c] = v;
    for (int64_t n = 0; n < N; n++)
      for (int64_t k = 0; k < S; k++) {
        int64_t i = (n * C + c) * S + k;
        y[i] = (x[i] - m) / sqrt(v + eps) * (w ? w[c] : 1) + (b ? b[c] : 0);
      }
  }
}

/* rows of D elements; w/b of D */
static void naive_ln(const double *x, int64_t R, int64_t D, const double *w, const double *b, double eps, double *y) {
  for (int64_t r = 0; r < R; r++) {
    double s = 0, q = 0;
    for (int64_t d = 0; d < D; d++) s += x[r * D + d];
    double m = s / (double)D;
    for (int64_t d = 0; d < D; d++) q += (x[r * D + d] - m) * (x[r * D + d] - m);
    for (int64_t d = 0; d < D; d++)
      y[r * D + d] = (x[r * D + d] - m) / sqrt(q / (double)D + eps) * (w ? w[d] : 1) + (b ? b[d] : 0);
  }
}

static void free_all(int n, vr_tensor **ts) {
  for (int k = 0; k < n; k++) vr_tensor_free(ts[k]);
}

/* ---------------------------------------------------------------- batch norm: values */

START_TEST(bn_2d_hand_values) {
  vr_tensor *x = tu_tensor(VR_F64, 2, TU_SHAPE(4, 2), TU_VALS(1, 2, 3, 4, 5, 6, 7, 8));
  vr_tensor *w = tu_tensor(VR_F64, 1, TU_SHAPE(2), TU_VALS(2, 0.5)), *b = tu_tensor(VR_F64, 1, TU_SHAPE(2), TU_VALS(1, -1));
  vr_tensor *y = NULL;
  OK(vr_batch_norm(x, w, b, NULL, NULL, 1, 0.1, 0, &y));
  /* each column: mean 4 (5), biased var 5 */
  double r5 = sqrt(5.0);
  double e[8] = {2 * -3 / r5 + 1, 0.5 * -3 / r5 - 1, 2 * -1 / r5 + 1, 0.5 * -1 / r5 - 1,
                 2 * 1 / r5 + 1,  0.5 * 1 / r5 - 1,  2 * 3 / r5 + 1,  0.5 * 3 / r5 - 1};
  tu_assert_values(y, e, 8, 1e-14, "bn 2-D");
  vr_tensor *ts[] = {x, w, b, y};
  free_all(4, ts);
}
END_TEST

START_TEST(bn_4d_matches_naive) {
  vr_tensor *x = tu_rand(VR_F64, 4, TU_SHAPE(3, 4, 2, 5), 1), *w = tu_rand(VR_F64, 1, TU_SHAPE(4), 2);
  vr_tensor *b = tu_rand(VR_F64, 1, TU_SHAPE(4), 3), *y = NULL;
  OK(vr_batch_norm(x, w, b, NULL, NULL, 1, 0.1, 1e-5, &y));
  double *xv = tu_values(x), *wv = tu_values(w), *bv = tu_values(b), ye[120], m[4], v[4];
  naive_bn(xv, 3, 4, 10, wv, bv, 1e-5, ye, m, v);
  tu_assert_values(y, ye, 120, 1e-12, "bn 4-D");
  free(xv);
  free(wv);
  free(bv);
  vr_tensor *ts[] = {x, w, b, y};
  free_all(4, ts);
}
END_TEST

START_TEST(bn_training_updates_running_stats) {
  vr_tensor *x = tu_rand(VR_F64, 4, TU_SHAPE(2, 3, 2, 2), 4), *y = NULL;
  vr_tensor *rm = tu_tensor(VR_F64, 1, TU_SHAPE(3), TU_VALS(0.5, 0.5, 0.5));
  vr_tensor *rv = tu_tensor(VR_F64, 1, TU_SHAPE(3), TU_VALS(2, 2, 2));
  uint64_t vm = vr_tensor_version(rm), vv = vr_tensor_version(rv);
  OK(vr_batch_norm(x, NULL, NULL, rm, rv, 1, 0.1, 1e-5, &y));
  double *xv = tu_values(x), ye[24], m[3], v[3], em[3], ev[3];
  naive_bn(xv, 2, 3, 4, NULL, NULL, 1e-5, ye, m, v);
  for (int c = 0; c < 3; c++) {
    em[c] = 0.9 * 0.5 + 0.1 * m[c];
    ev[c] = 0.9 * 2 + 0.1 * v[c] * 8.0 / 7.0; /* unbiased: M = 8 */
  }
  tu_assert_values(y, ye, 24, 1e-12, "normalised with the biased batch variance");
  tu_assert_values(rm, em, 3, 1e-14, "running_mean");
  tu_assert_values(rv, ev, 3, 1e-14, "running_var (unbiased)");
  ck_assert(vr_tensor_version(rm) > vm && vr_tensor_version(rv) > vv);
  free(xv);
  vr_tensor *ts[] = {x, y, rm, rv};
  free_all(4, ts);
}
END_TEST

START_TEST(bn_eval_uses_running_stats) {
  vr_tensor *x = tu_tensor(VR_F64, 2, TU_SHAPE(2, 2), TU_VALS(1, 2, 3, 4)), *y = NULL;
  vr_tensor *rm = tu_tensor(VR_F64, 1, TU_SHAPE(2), TU_VALS(1, -1)), *rv = tu_tensor(VR_F64, 1, TU_SHAPE(2), TU_VALS(4, 0.25));
  vr_tensor *w = tu_tensor(VR_F64, 1, TU_SHAPE(2), TU_VALS(3, 1)), *b = tu_tensor(VR_F64, 1, TU_SHAPE(2), TU_VALS(0, 10));
  uint64_t vm = vr_tensor_version(rm);
  OK(vr_batch_norm(x, w, b, rm, rv, 0, 0.1, 0, &y));
  tu_assert_values(y, TU_VALS(0, 10 + 3 / 0.5, 3 * 2 / 2.0, 10 + 5 / 0.5), 4, 1e-14, "eval");
  tu_assert_values(rm, TU_VALS(1, -1), 2, 0, "running_mean untouched");
  ck_assert_uint_eq(vr_tensor_version(rm), vm);
  vr_tensor *ts[] = {x, y, rm, rv, w, b};
  free_all(6, ts);
}
END_TEST

START_TEST(bn_without_running_stats_always_uses_batch) {
  vr_tensor *x = tu_rand(VR_F64, 2, TU_SHAPE(5, 3), 5), *y0 = NULL, *y1 = NULL;
  OK(vr_batch_norm(x, NULL, NULL, NULL, NULL, 0, 0.1, 1e-5, &y0));
  OK(vr_batch_norm(x, NULL, NULL, NULL, NULL, 1, 0.1, 1e-5, &y1));
  tu_assert_close(y0, y1, 0, 0, "eval without running stats");
  double *xv = tu_values(x), ye[15], m[3], v[3];
  naive_bn(xv, 5, 3, 1, NULL, NULL, 1e-5, ye, m, v);
  tu_assert_values(y0, ye, 15, 1e-12, "no affine");
  free(xv);
  vr_tensor *ts[] = {x, y0, y1};
  free_all(3, ts);
}
END_TEST

START_TEST(bn_f32_matches_f64) {
  vr_tensor *x = tu_rand(VR_F64, 4, TU_SHAPE(4, 3, 5, 5), 6), *xf = NULL, *y = NULL, *yf = NULL;
  vr_tensor *rm = NULL, *rv = NULL, *rmf = NULL, *rvf = NULL;
  OK(vr_tensor_zeros(1, TU_SHAPE(3), VR_F64, VR_CPU, &rm));
  OK(vr_tensor_ones(1, TU_SHAPE(3), VR_F64, VR_CPU, &rv));
  OK(vr_tensor_zeros(1, TU_SHAPE(3), VR_F32, VR_CPU, &rmf));
  OK(vr_tensor_ones(1, TU_SHAPE(3), VR_F32, VR_CPU, &rvf));
  OK(vr_tensor_to_dtype(x, VR_F32, &xf));
  OK(vr_batch_norm(x, NULL, NULL, rm, rv, 1, 0.1, 1e-5, &y));
  OK(vr_batch_norm(xf, NULL, NULL, rmf, rvf, 1, 0.1, 1e-5, &yf));
  ck_assert_int_eq(vr_tensor_dtype(yf), VR_F32);
  tu_assert_close(yf, y, 1e-5, 1e-5, "f32 output");
  tu_assert_close(rmf, rm, 1e-6, 1e-6, "f32 running mean");
  tu_assert_close(rvf, rv, 1e-6, 1e-6, "f32 running var");
  vr_tensor *ts[] = {x, xf, y, yf, rm, rv, rmf, rvf};
  free_all(8, ts);
}
END_TEST

/* f32 data far from zero with an outlier first in each channel (the value the one-pass statistics
 * shift by): mean, variance and y as the naive two-pass double computation of the same values */
START_TEST(bn_f32_statistics_far_from_zero) {
  enum { N = 6, C = 2, S = 250, E = N * C * S };
  double *xv = malloc(sizeof(double) * E), *ye = malloc(sizeof(double) * E), m[C], v[C];
  uint64_t st = 12345;
  for (int i = 0; i < E; i++) {
    st = st * 6364136223846793005ULL + 1442695040888963407ULL;
    xv[i] = (double)(float)(1000.0 + 0.25 * ((double)(st >> 11) / 9007199254740992.0 - 0.5));
  }
  for (int c = 0; c < C; c++) xv[c * S] = (double)(float)(1000.0 + 40.0 * (c + 1));
  vr_tensor *x = tu_tensor(VR_F32, 3, TU_SHAPE(N, C, S), xv), *y = NULL;
  OK(vr_batch_norm(x, NULL, NULL, NULL, NULL, 1, 0.1, 1e-5, &y));
  naive_bn(xv, N, C, S, NULL, NULL, 1e-5, ye, m, v);
  tu_assert_values(y, ye, E, 2e-4, "bn f32 far from zero");
  free(xv);
  free(ye);
  vr_tensor *ts[] = {x, y};
  free_all(2, ts);
}
END_TEST

START_TEST(bn_strided_running_stats) {
  /* running stats as a stride-2 view of a bigger buffer: updated in place through the view */
  vr_tensor *x = tu_rand(VR_F64, 2, TU_SHAPE(6, 3), 7), *y = NULL, *buf = NULL, *rm = NULL, *rv = NULL;
  OK(vr_tensor_zeros(1, TU_SHAPE(12), VR_F64, VR_CPU, &buf));
  OK(vr_slice(buf, 0, 0, 6, 2, &rm));
  OK(vr_slice(buf, 0, 6, 12, 2, &rv));
  OK(vr_batch_norm(x, NULL, NULL, rm, rv, 1, 1.0, 1e-5, &y));
  double *xv = tu_values(x), ye[18], m[3], v[3], b[12] = {0};
  naive_bn(xv, 6, 3, 1, NULL, NULL, 1e-5, ye, m, v);
  for (int c = 0; c < 3; c++) {
    b[2 * c] = m[c];
    b[6 + 2 * c] = v[c] * 6.0 / 5.0;
  }
  tu_assert_values(buf, b, 12, 1e-14, "momentum 1 through strided views");
  free(xv);
  vr_tensor *ts[] = {x, y, buf, rm, rv};
  free_all(5, ts);
}
END_TEST

/* ---------------------------------------------------------------- batch norm: gradients */

typedef struct { int training, with_running; } bn_cfg;

static vr_status bn_fn(vr_tensor *const *in, void *ctx, vr_tensor **out) {
  const bn_cfg *c = ctx;
  vr_tensor *rm = NULL, *rv = NULL;
  int64_t C = vr_tensor_size(in[0], 1);
  if (c->with_running) {
    /* fresh running stats each call, so every evaluation sees the same ones */
    vr_tensor_full(1, &C, 0.2, VR_F64, VR_CPU, &rm);
    vr_tensor_full(1, &C, 1.5, VR_F64, VR_CPU, &rv);
  }
  vr_status st = vr_batch_norm(in[0], in[1], in[2], rm, rv, c->training, 0.1, 1e-5, out);
  vr_tensor_free(rm);
  vr_tensor_free(rv);
  return st;
}

static void bn_gradcheck(const char *name, vr_tensor *x, int affine, bn_cfg cfg) {
  int64_t C = vr_tensor_size(x, 1);
  vr_tensor *w = affine ? tu_rand(VR_F64, 1, &C, 11) : NULL, *b = affine ? tu_rand(VR_F64, 1, &C, 12) : NULL;
  vr_tensor *in[3] = {x, w, b};
  tu_gradcheck(name, 3, in, 0, bn_fn, &cfg, 1e-6, 1e-6);
  vr_tensor_free(w);
  vr_tensor_free(b);
}

START_TEST(bn_grad_2d_training) {
  vr_tensor *x = tu_rand(VR_F64, 2, TU_SHAPE(5, 3), 20);
  bn_gradcheck("bn 2-D train", x, 1, (bn_cfg){1, 1});
  vr_tensor_free(x);
}
END_TEST

START_TEST(bn_grad_4d_training) {
  vr_tensor *x = tu_rand(VR_F64, 4, TU_SHAPE(2, 3, 2, 3), 21);
  bn_gradcheck("bn 4-D train", x, 1, (bn_cfg){1, 0});
  vr_tensor_free(x);
}
END_TEST

START_TEST(bn_grad_noncontiguous) {
  vr_tensor *x2 = tu_strided(2, TU_SHAPE(4, 3), 22), *x4 = tu_strided(4, TU_SHAPE(2, 2, 3, 2), 23);
  ck_assert(!vr_tensor_is_contiguous(x2) && !vr_tensor_is_contiguous(x4));
  bn_gradcheck("bn 2-D strided", x2, 1, (bn_cfg){1, 1});
  bn_gradcheck("bn 4-D strided", x4, 1, (bn_cfg){1, 0});
  vr_tensor_free(x2);
  vr_tensor_free(x4);
}
END_TEST

START_TEST(bn_grad_eval_and_no_affine) {
  vr_tensor *x = tu_rand(VR_F64, 4, TU_SHAPE(2, 3, 2, 2), 24);
  bn_gradcheck("bn 4-D eval", x, 1, (bn_cfg){0, 1});
  bn_gradcheck("bn 4-D no affine", x, 0, (bn_cfg){1, 0});
  vr_tensor *x2 = tu_rand(VR_F64, 2, TU_SHAPE(3, 4), 25);
  bn_gradcheck("bn 2-D eval", x2, 1, (bn_cfg){0, 1});
  vr_tensor_free(x);
  vr_tensor_free(x2);
}
END_TEST

START_TEST(bn_grad_weight_only_input) {
  /* only weight requires grad: backward computes just its gradient */
  vr_tensor *x = tu_rand(VR_F64, 2, TU_SHAPE(4, 2), 26), *w = tu_rand(VR_F64, 1, TU_SHAPE(2), 27);
  vr_tensor *in[3] = {x, w, NULL};
  bn_cfg cfg = {1, 0};
  tu_gradcheck("bn weight only", 3, in, 2u, bn_fn, &cfg, 1e-6, 1e-6);
  ck_assert(!vr_tensor_requires_grad(x));
  vr_tensor_free(x);
  vr_tensor_free(w);
}
END_TEST

START_TEST(bn_saved_weight_modified_is_an_error) {
  vr_tensor *x = tu_rand(VR_F64, 2, TU_SHAPE(4, 2), 28), *w = tu_rand(VR_F64, 1, TU_SHAPE(2), 29), *y = NULL;
  OK(vr_tensor_set_requires_grad(x, 1));
  OK(vr_tensor_set_requires_grad(w, 1));
  OK(vr_batch_norm(x, w, NULL, NULL, NULL, 1, 0.1, 1e-5, &y));
  ck_assert_str_eq(vr_tensor_grad_fn_name(y), "batch_norm");
  OK(vr_fill_(w, 1.0));
  vr_tensor *g = NULL;
  OK(vr_tensor_ones(2, TU_SHAPE(4, 2), VR_F64, VR_CPU, &g));
  FAILS(vr_backward(y, g, 0), VR_E_AUTOGRAD, "modified in place");
  vr_tensor *ts[] = {x, w, y, g};
  free_all(4, ts);
}
END_TEST

START_TEST(bn_no_grad_mode_records_nothing) {
  vr_tensor *x = tu_rand(VR_F64, 2, TU_SHAPE(4, 2), 30), *y = NULL;
  OK(vr_tensor_set_requires_grad(x, 1));
  int prev = vr_set_grad_enabled(0);
  OK(vr_batch_norm(x, NULL, NULL, NULL, NULL, 1, 0.1, 1e-5, &y));
  vr_set_grad_enabled(prev);
  ck_assert(!vr_tensor_requires_grad(y));
  vr_tensor_free(x);
  vr_tensor_free(y);
}
END_TEST

START_TEST(bn_errors) {
  vr_tensor *x = tu_rand(VR_F64, 2, TU_SHAPE(4, 3), 31), *x1 = tu_rand(VR_F64, 1, TU_SHAPE(4), 32), *y = NULL;
  vr_tensor *w2 = tu_rand(VR_F64, 1, TU_SHAPE(2), 33), *wf = tu_rand(VR_F32, 1, TU_SHAPE(3), 34);
  vr_tensor *r3 = tu_rand(VR_F64, 1, TU_SHAPE(3), 35), *xi = NULL, *one = tu_rand(VR_F64, 4, TU_SHAPE(1, 3, 1, 1), 36);
  OK(vr_tensor_zeros(2, TU_SHAPE(4, 3), VR_I64, VR_CPU, &xi));
  FAILS(vr_batch_norm(NULL, NULL, NULL, NULL, NULL, 1, 0.1, 1e-5, &y), VR_E_ARG, "x: expected a tensor");
  FAILS(vr_batch_norm(x, NULL, NULL, NULL, NULL, 1, 0.1, 1e-5, NULL), VR_E_ARG, "out");
  FAILS(vr_batch_norm(x1, NULL, NULL, NULL, NULL, 1, 0.1, 1e-5, &y), VR_E_SHAPE, "x: expected N x C");
  FAILS(vr_batch_norm(xi, NULL, NULL, NULL, NULL, 1, 0.1, 1e-5, &y), VR_E_DTYPE, "x: expected a float tensor");
  FAILS(vr_batch_norm(x, w2, NULL, NULL, NULL, 1, 0.1, 1e-5, &y), VR_E_SHAPE, "weight: expected shape [3], got [2]");
  FAILS(vr_batch_norm(x, NULL, wf, NULL, NULL, 1, 0.1, 1e-5, &y), VR_E_DTYPE, "bias: expected f64 like x, got f32");
  FAILS(vr_batch_norm(x, NULL, NULL, r3, NULL, 1, 0.1, 1e-5, &y), VR_E_ARG, "running_var: expected a tensor");
  FAILS(vr_batch_norm(x, NULL, NULL, r3, w2, 1, 0.1, 1e-5, &y), VR_E_SHAPE, "running_var: expected shape [3]");
  FAILS(vr_batch_norm(x, NULL, NULL, r3, xi, 1, 0.1, 1e-5, &y), VR_E_DTYPE, "running_var: expected a float tensor");
  FAILS(vr_batch_norm(x, NULL, NULL, NULL, NULL, 1, 0.1, -1, &y), VR_E_ARG, "eps");
  FAILS(vr_batch_norm(x, NULL, NULL, r3, r3, 1, 1.5, 1e-5, &y), VR_E_ARG, "momentum: expected a value in [0, 1]");
  FAILS(vr_batch_norm(one, NULL, NULL, NULL, NULL, 1, 0.1, 1e-5, &y), VR_E_SHAPE, "more than 1 value per channel");
  ck_assert_ptr_null(y);
  vr_tensor *ts[] = {x, x1, w2, wf, r3, xi, one};
  free_all(7, ts);
}
END_TEST

/* forward and backward of f through threads = 1 and threads = 4 must agree bit for bit */
static void same_across_threads(const char *name, vr_tensor *x, vr_status (*f)(vr_tensor *x, vr_tensor **y)) {
  vr_tensor *y[2] = {NULL, NULL}, *g[2] = {NULL, NULL}, *w = NULL;
  int prev = vr_num_threads();
  OK(vr_tensor_set_requires_grad(x, 1));
  for (int r = 0; r < 2; r++) {
    vr_set_num_threads(r ? 4 : 1);
    OK(f(x, &y[r]));
    if (!w) w = tu_rand(vr_tensor_dtype(x), vr_tensor_ndim(y[r]), (int64_t[]){vr_tensor_size(y[r], 0),
                        vr_tensor_size(y[r], 1), vr_tensor_size(y[r], 2), vr_tensor_size(y[r], 3)}, 77);
    OK(vr_backward(y[r], w, 0));
    g[r] = vr_tensor_grad(x);
    vr_tensor_set_grad(x, NULL);
  }
  vr_set_num_threads(prev);
  tu_assert_close(y[1], y[0], 0, 0, name);
  tu_assert_close(g[1], g[0], 0, 0, name);
  vr_tensor *ts[] = {y[0], y[1], g[0], g[1], w};
  free_all(5, ts);
}
static vr_status bn_plain(vr_tensor *x, vr_tensor **y) { return vr_batch_norm(x, NULL, NULL, NULL, NULL, 1, 0.1, 1e-5, y); }
static vr_status ln_plain(vr_tensor *x, vr_tensor **y) { return vr_layer_norm(x, 1, NULL, NULL, 1e-5, y); }

START_TEST(norms_deterministic_across_thread_counts) {
  vr_tensor *x4 = tu_rand(VR_F32, 4, TU_SHAPE(8, 64, 8, 8), 37), *x2 = tu_rand(VR_F32, 2, TU_SHAPE(4096, 64), 38);
  vr_tensor *xl = tu_rand(VR_F64, 2, TU_SHAPE(1024, 64), 39);
  same_across_threads("bn 4-D threads", x4, bn_plain);
  same_across_threads("bn 2-D threads", x2, bn_plain);
  same_across_threads("ln threads", xl, ln_plain);
  vr_tensor *ts[] = {x4, x2, xl};
  free_all(3, ts);
}
END_TEST

/* ---------------------------------------------------------------- layer norm */

START_TEST(ln_1dim_hand_values) {
  vr_tensor *x = tu_tensor(VR_F64, 2, TU_SHAPE(2, 3), TU_VALS(1, 2, 3, 2, 4, 6)), *y = NULL;
  OK(vr_layer_norm(x, 1, NULL, NULL, 0, &y));
  double a = sqrt(1.5); /* row 0: mean 2, var 2/3: (x - 2) / sqrt(2/3) */
  tu_assert_values(y, TU_VALS(-a, 0, a, -a, 0, a), 6, 1e-14, "layer norm rows");
  vr_tensor_free(x);
  vr_tensor_free(y);
}
END_TEST

START_TEST(ln_2dims_matches_naive) {
  vr_tensor *x = tu_rand(VR_F64, 3, TU_SHAPE(3, 4, 5), 40), *w = tu_rand(VR_F64, 2, TU_SHAPE(4, 5), 41);
  vr_tensor *b = tu_rand(VR_F64, 2, TU_SHAPE(4, 5), 42), *y = NULL, *y1 = NULL;
  OK(vr_layer_norm(x, 2, w, b, 1e-5, &y));
  double *xv = tu_values(x), *wv = tu_values(w), *bv = tu_values(b), ye[60];
  naive_ln(xv, 3, 20, wv, bv, 1e-5, ye);
  tu_assert_values(y, ye, 60, 1e-12, "layer norm over 2 dims");
  OK(vr_layer_norm(x, 1, NULL, NULL, 1e-5, &y1));
  naive_ln(xv, 12, 5, NULL, NULL, 1e-5, ye);
  tu_assert_values(y1, ye, 60, 1e-12, "layer norm over 1 dim");
  free(xv);
  free(wv);
  free(bv);
  vr_tensor *ts[] = {x, w, b, y, y1};
  free_all(5, ts);
}
END_TEST

START_TEST(ln_f32_and_strided_values) {
  vr_tensor *x = tu_strided(3, TU_SHAPE(2, 3, 4), 43), *xc = NULL, *xf = NULL, *y = NULL, *yc = NULL, *yf = NULL;
  OK(vr_contiguous(x, &xc));
  OK(vr_tensor_to_dtype(x, VR_F32, &xf));
  OK(vr_layer_norm(x, 1, NULL, NULL, 1e-5, &y));
  OK(vr_layer_norm(xc, 1, NULL, NULL, 1e-5, &yc));
  OK(vr_layer_norm(xf, 1, NULL, NULL, 1e-5, &yf));
  tu_assert_close(y, yc, 0, 1e-15, "strided equals contiguous");
  tu_assert_close(yf, yc, 1e-5, 1e-5, "f32");
  vr_tensor *ts[] = {x, xc, xf, y, yc, yf};
  free_all(6, ts);
}
END_TEST

typedef struct { int nd; } ln_cfg;
static vr_status ln_fn(vr_tensor *const *in, void *ctx, vr_tensor **out) {
  return vr_layer_norm(in[0], ((ln_cfg *)ctx)->nd, in[1], in[2], 1e-5, out);
}

START_TEST(ln_grad_1dim) {
  vr_tensor *x = tu_rand(VR_F64, 2, TU_SHAPE(3, 5), 44), *w = tu_rand(VR_F64, 1, TU_SHAPE(5), 45);
  vr_tensor *b = tu_rand(VR_F64, 1, TU_SHAPE(5), 46);
  vr_tensor *in[3] = {x, w, b};
  ln_cfg c = {1};
  tu_gradcheck("ln 1 dim", 3, in, 0, ln_fn, &c, 1e-6, 1e-6);
  vr_tensor *ts[] = {x, w, b};
  free_all(3, ts);
}
END_TEST

START_TEST(ln_grad_2dims) {
  vr_tensor *x = tu_rand(VR_F64, 3, TU_SHAPE(2, 3, 4), 47), *w = tu_rand(VR_F64, 2, TU_SHAPE(3, 4), 48);
  vr_tensor *b = tu_rand(VR_F64, 2, TU_SHAPE(3, 4), 49);
  vr_tensor *in[3] = {x, w, b};
  ln_cfg c = {2};
  tu_gradcheck("ln 2 dims", 3, in, 0, ln_fn, &c, 1e-6, 1e-6);
  vr_tensor *ts[] = {x, w, b};
  free_all(3, ts);
}
END_TEST

START_TEST(ln_grad_noncontiguous_and_no_affine) {
  vr_tensor *x = tu_strided(3, TU_SHAPE(2, 4, 3), 50), *w = tu_strided(2, TU_SHAPE(4, 3), 51);
  ck_assert(!vr_tensor_is_contiguous(x) && !vr_tensor_is_contiguous(w));
  vr_tensor *in[3] = {x, w, NULL};
  ln_cfg c2 = {2}, c1 = {1};
  tu_gradcheck("ln strided, weight only", 3, in, 0, ln_fn, &c2, 1e-6, 1e-6);
  vr_tensor *in1[3] = {x, NULL, NULL};
  tu_gradcheck("ln strided, no affine", 3, in1, 0, ln_fn, &c1, 1e-6, 1e-6);
  vr_tensor_free(x);
  vr_tensor_free(w);
}
END_TEST

START_TEST(ln_errors) {
  vr_tensor *x = tu_rand(VR_F64, 2, TU_SHAPE(2, 3), 52), *w = tu_rand(VR_F64, 1, TU_SHAPE(2), 53), *y = NULL;
  vr_tensor *wf = tu_rand(VR_F32, 1, TU_SHAPE(3), 54);
  FAILS(vr_layer_norm(NULL, 1, NULL, NULL, 1e-5, &y), VR_E_ARG, "x: expected a tensor");
  FAILS(vr_layer_norm(x, 0, NULL, NULL, 1e-5, &y), VR_E_ARG, "n_norm_dims: expected 1 to 2");
  FAILS(vr_layer_norm(x, 3, NULL, NULL, 1e-5, &y), VR_E_ARG, "got 3");
  FAILS(vr_layer_norm(x, 1, w, NULL, 1e-5, &y), VR_E_SHAPE, "weight: expected shape [3], got [2]");
  FAILS(vr_layer_norm(x, 2, NULL, wf, 1e-5, &y), VR_E_DTYPE, "bias: expected f64 like x");
  FAILS(vr_layer_norm(x, 1, NULL, NULL, NAN, &y), VR_E_ARG, "eps");
  ck_assert_ptr_null(y);
  vr_tensor *ts[] = {x, w, wf};
  free_all(3, ts);
}
END_TEST

/* ---------------------------------------------------------------- dropout */

START_TEST(dropout_identity_when_not_training_or_p0) {
  vr_tensor *x = tu_rand(VR_F32, 2, TU_SHAPE(3, 4), 60), *y = NULL, *z = NULL;
  OK(vr_dropout(x, 0.5, 0, NULL, &y));
  ck_assert_ptr_eq(y, x); /* a new reference to x itself */
  vr_generator *g = NULL;
  OK(vr_generator_new(1, 0, &g));
  OK(vr_dropout(x, 0, 1, g, &z));
  ck_assert_ptr_eq(z, x);
  ck_assert_uint_eq(vr_generator_offset(g), 0);
  vr_tensor_free(y);
  vr_tensor_free(z);
  vr_tensor_free(x);
  vr_generator_free(g);
}
END_TEST

START_TEST(dropout_p1_gives_zeros_and_zero_grad) {
  vr_tensor *x = tu_rand(VR_F64, 1, TU_SHAPE(6), 61), *y = NULL, *s = NULL;
  OK(vr_tensor_set_requires_grad(x, 1));
  OK(vr_dropout(x, 1, 1, NULL, &y));
  tu_assert_values(y, TU_VALS(0, 0, 0, 0, 0, 0), 6, 0, "p = 1");
  OK(vr_sum(y, 0, NULL, 0, &s));
  OK(vr_backward(s, NULL, 0));
  vr_tensor *g = vr_tensor_grad(x);
  ck_assert_ptr_nonnull(g);
  tu_assert_values(g, TU_VALS(0, 0, 0, 0, 0, 0), 6, 0, "grad of p = 1");
  vr_tensor *ts[] = {x, y, s, g};
  free_all(4, ts);
}
END_TEST

START_TEST(dropout_statistics) {
  int64_t n = 100000;
  vr_tensor *x = NULL, *y = NULL;
  OK(vr_tensor_full(1, &n, 2.0, VR_F32, VR_CPU, &x));
  vr_generator *g = NULL;
  OK(vr_generator_new(123, 0, &g));
  OK(vr_dropout(x, 0.3, 1, g, &y));
  ck_assert_uint_eq(vr_generator_offset(g), (uint64_t)n); /* one draw per element */
  double *v = tu_values(y);
  int64_t zeros = 0, bad = 0;
  for (int64_t k = 0; k < n; k++) {
    if (v[k] == 0) zeros++;
    else if (fabs(v[k] - 2.0 / 0.7) > 1e-6) bad++;
  }
  ck_assert_int_eq(bad, 0); /* kept elements scaled by 1/(1-p) */
  double frac = (double)zeros / (double)n; /* binomial sd ~ 0.0015 */
  ck_assert_msg(fabs(frac - 0.3) < 0.01, "dropped fraction %g, expected 0.3", frac);
  free(v);
  vr_tensor_free(x);
  vr_tensor_free(y);
  vr_generator_free(g);
}
END_TEST

START_TEST(dropout_deterministic_by_seed) {
  vr_tensor *x = tu_rand(VR_F64, 2, TU_SHAPE(16, 16), 62), *xf = NULL, *a = NULL, *b = NULL, *c = NULL, *d = NULL, *e = NULL;
  OK(vr_tensor_to_dtype(x, VR_F32, &xf));
  vr_generator *g1 = NULL, *g2 = NULL, *g3 = NULL;
  OK(vr_generator_new(5, 0, &g1));
  OK(vr_generator_new(5, 0, &g2));
  OK(vr_generator_new(6, 0, &g3));
  OK(vr_dropout(x, 0.5, 1, g1, &a));
  OK(vr_dropout(x, 0.5, 1, g2, &b));
  OK(vr_dropout(x, 0.5, 1, g3, &c));
  OK(vr_dropout(x, 0.5, 1, g1, &d)); /* the generator moved on: a new mask */
  vr_generator_set_state(g2, 5, 0, 0);
  OK(vr_dropout(xf, 0.5, 1, g2, &e)); /* same seed, f32: same mask */
  tu_assert_close(a, b, 0, 0, "same seed");
  tu_assert_close(e, a, 1e-6, 1e-6, "same mask in f32");
  double *av = tu_values(a), *cv = tu_values(c), *dv = tu_values(d);
  int diff_c = 0, diff_d = 0;
  for (int k = 0; k < 256; k++) {
    diff_c += (av[k] == 0) != (cv[k] == 0);
    diff_d += (av[k] == 0) != (dv[k] == 0);
  }
  ck_assert_int_gt(diff_c, 50);
  ck_assert_int_gt(diff_d, 50);
  free(av);
  free(cv);
  free(dv);
  vr_tensor *ts[] = {x, xf, a, b, c, d, e};
  free_all(7, ts);
  vr_generator_free(g1);
  vr_generator_free(g2);
  vr_generator_free(g3);
}
END_TEST

static vr_status dropout_fn(vr_tensor *const *in, void *ctx, vr_tensor **out) {
  vr_generator *g = ctx;
  vr_generator_set_state(g, 9, 1, 0); /* the same mask on every evaluation */
  return vr_dropout(in[0], 0.4, 1, g, out);
}

START_TEST(dropout_grad_reuses_mask) {
  vr_tensor *x = tu_strided(2, TU_SHAPE(5, 4), 63), *y = NULL, *w = NULL;
  vr_generator *g = NULL;
  OK(vr_generator_new(9, 1, &g));
  vr_tensor *in[1] = {x};
  tu_gradcheck("dropout", 1, in, 0, dropout_fn, g, 1e-6, 1e-6);
  /* gradient = mask / (1 - p): zero exactly where the output is zero */
  OK(vr_tensor_set_requires_grad(x, 1));
  OK(dropout_fn(in, g, &y));
  OK(vr_tensor_ones(2, TU_SHAPE(5, 4), VR_F64, VR_CPU, &w));
  OK(vr_backward(y, w, 0));
  vr_tensor *gr = vr_tensor_grad(x);
  double *yv = tu_values(y), *gv = tu_values(gr);
  for (int k = 0; k < 20; k++) ck_assert_double_eq_tol(gv[k], yv[k] == 0 ? 0 : 1 / 0.6, 1e-12);
  free(yv);
  free(gv);
  vr_tensor *ts[] = {x, y, w, gr};
  free_all(4, ts);
  vr_generator_free(g);
}
END_TEST

START_TEST(dropout_errors) {
  vr_tensor *x = tu_rand(VR_F32, 1, TU_SHAPE(4), 64), *xi = NULL, *y = NULL;
  OK(vr_tensor_zeros(1, TU_SHAPE(4), VR_I64, VR_CPU, &xi));
  vr_generator *g = NULL;
  OK(vr_generator_new(1, 0, &g));
  FAILS(vr_dropout(x, -0.1, 1, g, &y), VR_E_ARG, "p: expected a probability in [0, 1], got -0.1");
  FAILS(vr_dropout(x, 1.5, 0, g, &y), VR_E_ARG, "got 1.5");
  FAILS(vr_dropout(x, NAN, 1, g, &y), VR_E_ARG, "p: expected");
  FAILS(vr_dropout(x, 0.5, 1, NULL, &y), VR_E_ARG, "g: expected a generator");
  FAILS(vr_dropout(xi, 0.5, 1, g, &y), VR_E_DTYPE, "x: expected a float tensor");
  FAILS(vr_dropout(NULL, 0.5, 1, g, &y), VR_E_ARG, "x: expected a tensor");
  ck_assert_ptr_null(y);
  vr_tensor_free(x);
  vr_tensor_free(xi);
  vr_generator_free(g);
}
END_TEST

static Suite *norm_suite(void) {
  Suite *s = suite_create("norm");
  TCase *bn = tcase_create("batch_norm");
  tcase_add_test(bn, bn_2d_hand_values);
  tcase_add_test(bn, bn_4d_matches_naive);
  tcase_add_test(bn, bn_training_updates_running_stats);
  tcase_add_test(bn, bn_eval_uses_running_stats);
  tcase_add_test(bn, bn_without_running_stats_always_uses_batch);
  tcase_add_test(bn, bn_f32_matches_f64);
  tcase_add_test(bn, bn_f32_statistics_far_from_zero);
  tcase_add_test(bn, bn_strided_running_stats);
  tcase_add_test(bn, bn_grad_2d_training);
  tcase_add_test(bn, bn_grad_4d_training);
  tcase_add_test(bn, bn_grad_noncontiguous);
  tcase_add_test(bn, bn_grad_eval_and_no_affine);
  tcase_add_test(bn, bn_grad_weight_only_input);
  tcase_add_test(bn, bn_saved_weight_modified_is_an_error);
  tcase_add_test(bn, bn_no_grad_mode_records_nothing);
  tcase_add_test(bn, bn_errors);
  tcase_add_test(bn, norms_deterministic_across_thread_counts);
  suite_add_tcase(s, bn);
  TCase *ln = tcase_create("layer_norm");
  tcase_add_test(ln, ln_1dim_hand_values);
  tcase_add_test(ln, ln_2dims_matches_naive);
  tcase_add_test(ln, ln_f32_and_strided_values);
  tcase_add_test(ln, ln_grad_1dim);
  tcase_add_test(ln, ln_grad_2dims);
  tcase_add_test(ln, ln_grad_noncontiguous_and_no_affine);
  tcase_add_test(ln, ln_errors);
  suite_add_tcase(s, ln);
  TCase *dr = tcase_create("dropout");
  tcase_add_test(dr, dropout_identity_when_not_training_or_p0);
  tcase_add_test(dr, dropout_p1_gives_zeros_and_zero_grad);
  tcase_add_test(dr, dropout_statistics);
  tcase_add_test(dr, dropout_deterministic_by_seed);
  tcase_add_test(dr, dropout_grad_reuses_mask);
  tcase_add_test(dr, dropout_errors);
  suite_add_tcase(s, dr);
  return s;
}

VR_TEST_MAIN(norm_suite)
