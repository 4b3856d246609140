/* test_bn_act.c: vr_batch_norm_act, the fused batch norm + residual add + ReLU of the ResNet
 * block: on the CPU it must equal the unfused ops (batch norm, add, relu) bit for bit, forward,
 * running statistics and every gradient (x, weight, bias, residual); f64 finite differences;
 * bf16 under its tolerance; and clear errors. */
#include "testutil.h"
#include <stdbool.h>

typedef struct {
  int training, relu, with_res, affine;
} act_case;

/* y = relu?(bn(x) + r?) through the unfused public ops */
static vr_status unfused(vr_tensor *x, vr_tensor *w, vr_tensor *b, vr_tensor *rm, vr_tensor *rv, vr_tensor *r,
                         const act_case *c, vr_tensor **out) {
  vr_tensor *y = NULL, *s = NULL;
  vr_status st = vr_batch_norm(x, c->affine ? w : NULL, c->affine ? b : NULL, rm, rv, c->training, 0.1, 1e-5, &y);
  if (st) return st;
  if (c->with_res) {
    st = vr_add(y, r, &s);
    vr_tensor_free(y);
    if (st) return st;
    y = s;
  }
  if (c->relu) {
    st = vr_relu(y, &s);
    vr_tensor_free(y);
    if (st) return st;
    y = s;
  }
  *out = y;
  return VR_OK;
}

static vr_status fused(vr_tensor *x, vr_tensor *w, vr_tensor *b, vr_tensor *rm, vr_tensor *rv, vr_tensor *r,
                       const act_case *c, vr_tensor **out) {
  return vr_batch_norm_act(x, c->affine ? w : NULL, c->affine ? b : NULL, rm, rv, c->training, 0.1, 1e-5,
                           c->with_res ? r : NULL, c->relu, out);
}

/* |a - b| <= atol + rtol |b| except at most max_frac of the elements (bf16: where the two
 * roundings put an output on different sides of 0, ReLU's mask differs and so does the gradient) */
static void mostly_close(const vr_tensor *a, const vr_tensor *b, double rtol, double atol, double max_frac,
                         const char *what) {
  double *va = tu_values(a), *vb = tu_values(b);
  int64_t n = vr_tensor_numel(a), bad = 0;
  for (int64_t k = 0; k < n; k++) bad += !(fabs(va[k] - vb[k]) <= atol + rtol * fabs(vb[k]));
  ck_assert_msg((double)bad <= max_frac * (double)n, "%s: %lld of %lld elements differ", what, (long long)bad, (long long)n);
  free(va);
  free(vb);
}

/* forward, running stats and the grads of x, w, b, r of the fused op against the unfused ops,
 * within tol (0: bit for bit; bf16: all but 2% of the elements of x's and r's grads) */
static void compare(vr_dtype dt, int ndim, const int64_t *shape, const act_case *c, double tol) {
  int64_t C = shape[1];
  vr_tensor *t[2][6]; /* per path: x, w, b, r, running_mean, running_var */
  for (int p = 0; p < 2; p++) {
    vr_tensor *x0 = tu_rand(VR_F64, ndim, shape, 11), *w0 = tu_rand(VR_F64, 1, &C, 12), *b0 = tu_rand(VR_F64, 1, &C, 13);
    vr_tensor *r0 = tu_rand(VR_F64, ndim, shape, 14);
    OK(vr_tensor_to_dtype(x0, dt, &t[p][0]));
    OK(vr_tensor_to_dtype(w0, dt == VR_BF16 ? VR_F32 : dt, &t[p][1]));
    OK(vr_tensor_to_dtype(b0, dt == VR_BF16 ? VR_F32 : dt, &t[p][2]));
    OK(vr_tensor_to_dtype(r0, dt, &t[p][3]));
    OK(vr_tensor_zeros(1, &C, VR_F32, VR_CPU, &t[p][4]));
    OK(vr_tensor_zeros(1, &C, VR_F32, VR_CPU, &t[p][5]));
    OK(vr_fill_(t[p][5], 1));
    for (int k = 0; k < 4; k++) OK(vr_tensor_set_requires_grad(t[p][k], 1));
    vr_tensor_free(x0);
    vr_tensor_free(w0);
    vr_tensor_free(b0);
    vr_tensor_free(r0);
  }
  vr_tensor *y[2] = {NULL, NULL};
  OK(unfused(t[0][0], t[0][1], t[0][2], t[0][4], t[0][5], t[0][3], c, &y[0]));
  OK(fused(t[1][0], t[1][1], t[1][2], t[1][4], t[1][5], t[1][3], c, &y[1]));
  ck_assert_str_eq(vr_tensor_grad_fn_name(y[1]), "batch_norm_act");
  char what[160];
  snprintf(what, sizeof what, "%s %dd training %d relu %d residual %d affine %d", vr_dtype_name(dt), ndim, c->training,
           c->relu, c->with_res, c->affine);
  tu_assert_close(y[1], y[0], tol, tol, what); /* bf16: rounded once (fused) or twice (unfused) */
  tu_assert_close(t[1][4], t[0][4], 0, 0, "running_mean");
  tu_assert_close(t[1][5], t[0][5], 0, 0, "running_var");
  vr_tensor *gy0 = tu_rand(VR_F64, ndim, shape, 21), *gy = NULL;
  OK(vr_tensor_to_dtype(gy0, dt, &gy));
  for (int p = 0; p < 2; p++) OK(vr_backward(y[p], gy, 0));
  static const char *names[4] = {"grad x", "grad weight", "grad bias", "grad residual"};
  for (int k = 0; k < 4; k++) {
    vr_tensor *g0 = vr_tensor_grad(t[0][k]), *g1 = vr_tensor_grad(t[1][k]);
    bool used = (k != 1 && k != 2) || c->affine;
    used = used && (k != 3 || c->with_res);
    if (used) {
      ck_assert_msg(g0 && g1, "%s: %s missing", what, names[k]);
      char w2[200];
      snprintf(w2, sizeof w2, "%s: %s", what, names[k]);
      /* bf16 with ReLU: one output rounded to the other side of 0 moves a channel's grad_w and
       * grad_b by g xhat, O(1): those are checked by the f32 and f64 cases (the same code) */
      if (dt == VR_BF16 && c->relu && (k == 0 || k == 3)) mostly_close(g1, g0, tol, tol, 0.02, w2);
      else if (!(dt == VR_BF16 && c->relu)) tu_assert_close(g1, g0, tol, tol, w2);
    } else {
      ck_assert_msg(!g1, "%s: %s should not be set", what, names[k]);
    }
    vr_tensor_free(g0);
    vr_tensor_free(g1);
  }
  for (int p = 0; p < 2; p++) {
    vr_tensor_free(y[p]);
    for (int k = 0; k < 6; k++) vr_tensor_free(t[p][k]);
  }
  vr_tensor_free(gy0);
  vr_tensor_free(gy);
}

static const act_case kCases[] = {
    {1, 1, 1, 1}, {1, 1, 0, 1}, {1, 0, 1, 1}, {1, 0, 0, 1}, {0, 1, 1, 1}, {0, 1, 0, 1}, {1, 1, 1, 0}, {0, 0, 1, 0},
};

START_TEST(test_bn_act_equals_unfused) {
  const int64_t s4[4] = {3, 5, 4, 3}, s2[2] = {37, 6};
  for (size_t k = 0; k < sizeof kCases / sizeof *kCases; k++) {
    compare(VR_F64, 4, s4, &kCases[k], 0);
    compare(VR_F32, 4, s4, &kCases[k], 0);
    compare(VR_F32, 2, s2, &kCases[k], 0); /* channels-last batch norm: [N H W, C] */
  }
}
END_TEST

START_TEST(test_bn_act_bf16) {
  /* bf16 x and residual with f32 parameters (autocast): the CPU computes in f32 and rounds once at
   * the end, so it may differ from the unfused ops' twice-rounded result by bf16 steps */
  const int64_t s4[4] = {4, 3, 5, 5};
  for (size_t k = 0; k < sizeof kCases / sizeof *kCases; k++) compare(VR_BF16, 4, s4, &kCases[k], 2e-2);
}
END_TEST

typedef struct {
  int relu;
} gc_ctx;

static vr_status bn_act_fn(vr_tensor *const *in, void *ctx, vr_tensor **out) {
  const gc_ctx *c = ctx;
  return vr_batch_norm_act(in[0], in[1], in[2], NULL, NULL, 1, 0.1, 1e-5, in[3], c->relu, out);
}

START_TEST(test_bn_act_gradcheck) {
  int64_t shape[4] = {3, 4, 2, 3}, C = 4;
  vr_tensor *in[4] = {tu_rand(VR_F64, 4, shape, 31), tu_rand(VR_F64, 1, &C, 32), tu_rand(VR_F64, 1, &C, 33),
                      tu_rand(VR_F64, 4, shape, 34)};
  gc_ctx c = {1};
  tu_gradcheck("batch_norm_act relu residual", 4, in, 0, bn_act_fn, &c, 1e-6, 1e-5);
  c.relu = 0;
  tu_gradcheck("batch_norm_act residual", 4, in, 0, bn_act_fn, &c, 1e-6, 1e-5);
  vr_tensor_free(in[3]);
  in[3] = NULL; /* no residual */
  c.relu = 1;
  tu_gradcheck("batch_norm_act relu", 4, in, 0, bn_act_fn, &c, 1e-6, 1e-5);
  for (int k = 0; k < 3; k++) vr_tensor_free(in[k]);
}
END_TEST

START_TEST(test_bn_act_errors) {
  int64_t shape[4] = {2, 3, 2, 2}, other[4] = {2, 3, 2, 3}, C = 3;
  vr_tensor *x = tu_rand(VR_F32, 4, shape, 41), *r = tu_rand(VR_F32, 4, other, 42), *rd = tu_rand(VR_F64, 4, shape, 43);
  vr_tensor *w = tu_rand(VR_F32, 1, &C, 44), *y = NULL;
  FAILS(vr_batch_norm_act(x, w, NULL, NULL, NULL, 1, 0.1, 1e-5, r, 1, &y), VR_E_SHAPE, "vr_batch_norm_act: residual: expected x's shape");
  FAILS(vr_batch_norm_act(x, w, NULL, NULL, NULL, 1, 0.1, 1e-5, rd, 1, &y), VR_E_DTYPE, "residual: expected f32 like x");
  FAILS(vr_batch_norm_act(x, w, NULL, NULL, NULL, 1, 0.1, 1e-5, NULL, 2, &y), VR_E_ARG, "relu: expected 0 or 1");
  FAILS(vr_batch_norm_act(NULL, w, NULL, NULL, NULL, 1, 0.1, 1e-5, NULL, 1, &y), VR_E_ARG, "x");
  ck_assert_ptr_null(y);
  vr_tensor_free(x);
  vr_tensor_free(r);
  vr_tensor_free(rd);
  vr_tensor_free(w);
}
END_TEST

START_TEST(test_bn_act_autocast_mixed) {
  /* under autocast a bf16 activation with an f32 residual takes the unfused ops, whose add widens */
  int64_t shape[4] = {2, 3, 4, 4}, C = 3;
  vr_tensor *x0 = tu_rand(VR_F32, 4, shape, 51), *r = tu_rand(VR_F32, 4, shape, 52), *w = tu_rand(VR_F32, 1, &C, 53);
  vr_tensor *x = NULL, *y = NULL, *t = NULL, *s = NULL, *y0 = NULL;
  OK(vr_tensor_to_dtype(x0, VR_BF16, &x));
  vr_dtype prev = vr_autocast_get();
  OK(vr_autocast_set(VR_BF16));
  OK(vr_batch_norm_act(x, w, NULL, NULL, NULL, 1, 0.1, 1e-5, r, 1, &y));
  OK(vr_batch_norm(x, w, NULL, NULL, NULL, 1, 0.1, 1e-5, &t));
  OK(vr_add(t, r, &s));
  OK(vr_relu(s, &y0));
  OK(vr_autocast_set(prev));
  ck_assert_int_eq(vr_tensor_dtype(y), VR_F32);
  tu_assert_close(y, y0, 0, 0, "autocast bf16 x + f32 residual");
  vr_tensor *objs[] = {x0, r, w, x, y, t, s, y0};
  for (size_t k = 0; k < sizeof objs / sizeof *objs; k++) vr_tensor_free(objs[k]);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("bn_act");
  TCase *tc = tcase_create("bn_act");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_bn_act_equals_unfused);
  tcase_add_test(tc, test_bn_act_bf16);
  tcase_add_test(tc, test_bn_act_gradcheck);
  tcase_add_test(tc, test_bn_act_errors);
  tcase_add_test(tc, test_bn_act_autocast_mixed);
  suite_add_tcase(s, tc);
  return s;
}

VR_TEST_MAIN(suite)
