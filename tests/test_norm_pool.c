/* test_norm_pool.c: the pooled batch norm, vr_batch_norm_act_pool (max_pool2d(act(batch_norm(x))),
 * one pass on the CPU): the output, the gradients of x, weight and bias and the running statistics
 * equal those of vr_batch_norm_act then vr_max_pool2d bit for bit, on every shape class (odd planes,
 * windows of 2 x 2, 3 x 3 and 2 x 3, batch 1, ties and NaN, training and eval, with and without
 * ReLU and affine parameters, f32 and f64), whatever the thread count; finite differences; the
 * cases it hands to the two ops (a band wider than the kernel's buffer, bf16); the errors. */
#include "testutil.h"
#include "../core/internal.h" /* VR_BN_POOL_BAND */

typedef struct {
  vr_dtype dt;
  int64_t N, C, H, W;
  int ph, pw, relu, training, affine, running;
  int ties; /* values on a coarse grid: many equal values, so that the first-of-the-largest rule matters */
} pool_case;

static void free_all(int n, vr_tensor **ts) {
  for (int k = 0; k < n; k++) vr_tensor_free(ts[k]);
}

/* x (values on a grid of 1/4 when ties), weight, bias for a case */
static vr_tensor *case_x(const pool_case *c, uint64_t seed) {
  vr_tensor *x = tu_rand(VR_F64, 4, TU_SHAPE(c->N, c->C, c->H, c->W), seed);
  if (c->ties) {
    double *v = tu_values(x);
    for (int64_t k = 0; k < vr_tensor_numel(x); k++) v[k] = round(4 * v[k]) / 4;
    vr_tensor_free(x);
    x = tu_tensor(VR_F64, 4, TU_SHAPE(c->N, c->C, c->H, c->W), v);
    free(v);
  }
  vr_tensor *o = tu_to_dtype(x, c->dt);
  vr_tensor_free(x);
  return o;
}

/* one run of the case, fused (whose output's node is named node) or as the two ops: the output,
 * the grads of x, weight, bias (from the same output weights) and the running statistics after it */
static void run_case(const pool_case *c, const char *node, vr_tensor **res) {
  int fused = node != NULL;
  vr_tensor *x = case_x(c, 41), *w = NULL, *b = NULL, *rm = NULL, *rv = NULL, *y = NULL;
  if (c->affine) {
    vr_tensor *w64 = tu_rand(VR_F64, 1, &c->C, 42), *b64 = tu_rand(VR_F64, 1, &c->C, 43);
    w = tu_to_dtype(w64, c->dt);
    b = tu_to_dtype(b64, c->dt);
    vr_tensor_free(w64);
    vr_tensor_free(b64);
    OK(vr_tensor_set_requires_grad(w, 1));
    OK(vr_tensor_set_requires_grad(b, 1));
  }
  if (c->running) {
    OK(vr_tensor_full(1, &c->C, 0.2, c->dt, VR_CPU, &rm));
    OK(vr_tensor_full(1, &c->C, 1.5, c->dt, VR_CPU, &rv));
  }
  OK(vr_tensor_set_requires_grad(x, 1));
  if (fused) {
    OK(vr_batch_norm_act_pool(x, w, b, rm, rv, c->training, 0.1, 1e-5, c->relu, c->ph, c->pw, &y));
    ck_assert_str_eq(vr_tensor_grad_fn_name(y), node);
  } else {
    vr_tensor *t = NULL;
    OK(vr_batch_norm_act(x, w, b, rm, rv, c->training, 0.1, 1e-5, NULL, c->relu, &t));
    OK(vr_max_pool2d(t, c->ph, c->pw, c->ph, c->pw, 0, 0, &y));
    vr_tensor_free(t);
  }
  vr_tensor *gw64 = tu_rand(VR_F64, 4, TU_SHAPE(vr_tensor_size(y, 0), vr_tensor_size(y, 1), vr_tensor_size(y, 2),
                                                vr_tensor_size(y, 3)), 44);
  vr_tensor *gy = tu_to_dtype(gw64, c->dt);
  OK(vr_backward(y, gy, 0));
  res[0] = y;
  res[1] = vr_tensor_grad(x);
  res[2] = w ? vr_tensor_grad(w) : NULL;
  res[3] = b ? vr_tensor_grad(b) : NULL;
  res[4] = rm;
  res[5] = rv;
  vr_tensor *ts[] = {x, w, b, gw64, gy};
  free_all(5, ts);
}

static void check_case(const pool_case *c, const char *node, const char *what) {
  static const char *names[6] = {"output", "grad x", "grad weight", "grad bias", "running mean", "running var"};
  vr_tensor *f[6], *u[6];
  run_case(c, node, f);
  run_case(c, NULL, u);
  for (int k = 0; k < 6; k++) {
    ck_assert_msg(!f[k] == !u[k], "%s: %s present in one run only", what, names[k]);
    if (!f[k]) continue;
    char msg[160];
    snprintf(msg, sizeof msg, "%s: %s", what, names[k]);
    tu_assert_close(f[k], u[k], 0, 0, msg);
  }
  free_all(6, f);
  free_all(6, u);
}

START_TEST(pooled_equals_the_two_ops) {
  const pool_case cases[] = {
      {VR_F32, 4, 3, 8, 8, 2, 2, 1, 1, 1, 1, 0},   {VR_F32, 3, 5, 9, 7, 2, 2, 1, 1, 1, 1, 0},
      {VR_F32, 2, 4, 9, 9, 3, 3, 1, 1, 1, 0, 0},   {VR_F32, 2, 3, 7, 11, 2, 3, 1, 1, 0, 1, 0},
      {VR_F32, 1, 6, 6, 6, 2, 2, 1, 1, 1, 1, 0},   {VR_F32, 4, 3, 10, 10, 2, 2, 1, 1, 1, 1, 1},
      {VR_F32, 3, 2, 8, 9, 2, 2, 0, 1, 1, 1, 1},   {VR_F32, 3, 3, 8, 8, 2, 2, 1, 0, 1, 1, 0},
      {VR_F32, 2, 3, 5, 5, 1, 1, 1, 1, 1, 0, 0},   {VR_F32, 2, 2, 40, 1030, 2, 2, 1, 1, 1, 1, 0},
      {VR_F32, 3, 4, 28, 28, 2, 2, 1, 1, 1, 1, 1}, {VR_F32, 2, 3, 16, 17, 2, 2, 1, 1, 1, 1, 0},
      {VR_F32, 3, 4, 14, 14, 2, 2, 1, 1, 1, 1, 1}, {VR_F32, 2, 3, 4, 6, 2, 2, 1, 1, 1, 1, 0},
      {VR_F32, 2, 3, 5, 4, 2, 2, 1, 1, 1, 1, 0},   {VR_F32, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 0},
      {VR_F64, 3, 5, 9, 7, 2, 2, 1, 1, 1, 1, 0},   {VR_F64, 2, 4, 9, 9, 3, 2, 0, 1, 1, 1, 1},
      {VR_F64, 3, 3, 8, 8, 2, 2, 1, 0, 0, 1, 0},
  };
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    const pool_case *c = &cases[k];
    char what[160];
    snprintf(what, sizeof what, "%s %lldx%lldx%lldx%lld pool %dx%d relu %d training %d affine %d ties %d",
             vr_dtype_name(c->dt), (long long)c->N, (long long)c->C, (long long)c->H, (long long)c->W, c->ph, c->pw,
             c->relu, c->training, c->affine, c->ties);
    check_case(c, "batch_norm_act_pool", what);
  }
}
END_TEST

/* NaN wins its window as in vr_max_pool2d, and the ReLU keeps it (the gradient does not pass) */
START_TEST(pooled_nan_as_the_two_ops) {
  for (int relu = 0; relu < 2; relu++) {
    vr_tensor *x = tu_rand(VR_F32, 4, TU_SHAPE(2, 2, 4, 4), 45), *yf = NULL, *t = NULL, *yu = NULL;
    OK(vr_tensor_set(x, TU_SHAPE(1, 1, 2, 3), NAN));
    OK(vr_batch_norm_act_pool(x, NULL, NULL, NULL, NULL, 0, 0.1, 1e-5, relu, 2, 2, &yf));
    OK(vr_batch_norm_act(x, NULL, NULL, NULL, NULL, 0, 0.1, 1e-5, NULL, relu, &t));
    OK(vr_max_pool2d(t, 2, 2, 2, 2, 0, 0, &yu));
    double v = 0;
    OK(vr_tensor_get(yf, TU_SHAPE(1, 1, 1, 1), &v));
    ck_assert_msg(isnan(v), "the NaN's window gives NaN (relu %d)", relu);
    tu_assert_close(yf, yu, 0, 0, "NaN input: output");
    vr_tensor *ts[] = {x, yf, t, yu};
    free_all(4, ts);
  }
}
END_TEST

START_TEST(pooled_same_across_thread_counts) {
  const pool_case c = {VR_F32, 8, 8, 12, 12, 2, 2, 1, 1, 1, 1, 1};
  vr_tensor *r[2][6];
  int prev = vr_num_threads();
  for (int k = 0; k < 2; k++) {
    vr_set_num_threads(k ? 4 : 1);
    run_case(&c, "batch_norm_act_pool", r[k]);
  }
  vr_set_num_threads(prev);
  for (int k = 0; k < 6; k++) tu_assert_close(r[1][k], r[0][k], 0, 0, "threads 1 and 4");
  free_all(6, r[0]);
  free_all(6, r[1]);
}
END_TEST

typedef struct { int training, relu, ph, pw; } pool_cfg;

static vr_status pool_fn(vr_tensor *const *in, void *ctx, vr_tensor **out) {
  const pool_cfg *c = ctx;
  vr_tensor *rm = NULL, *rv = NULL;
  int64_t C = vr_tensor_size(in[0], 1);
  vr_tensor_full(1, &C, 0.2, VR_F64, VR_CPU, &rm);
  vr_tensor_full(1, &C, 1.5, VR_F64, VR_CPU, &rv);
  vr_status st = vr_batch_norm_act_pool(in[0], in[1], in[2], rm, rv, c->training, 0.1, 1e-5, c->relu, c->ph, c->pw, out);
  vr_tensor_free(rm);
  vr_tensor_free(rv);
  return st;
}

START_TEST(pooled_finite_differences) {
  const pool_cfg cfgs[] = {{1, 1, 2, 2}, {1, 0, 3, 2}, {0, 1, 2, 2}};
  for (int k = 0; k < 3; k++) {
    vr_tensor *x = tu_rand(VR_F64, 4, TU_SHAPE(2, 3, 6, 5), 46 + k);
    vr_tensor *w = tu_rand(VR_F64, 1, TU_SHAPE(3), 50), *b = tu_rand(VR_F64, 1, TU_SHAPE(3), 51);
    vr_tensor *in[3] = {x, w, b};
    tu_gradcheck("pooled batch norm", 3, in, 0, pool_fn, (void *)&cfgs[k], 1e-6, 1e-6);
    vr_tensor *ts[] = {x, w, b};
    free_all(3, ts);
  }
}
END_TEST

/* where the kernel does not pool (a band of rows wider than its buffer, bf16), the two ops run:
 * the same results, their nodes */
START_TEST(pooled_hands_over_to_the_two_ops) {
  int64_t wide = VR_BN_POOL_BAND / 2 + 3;
  pool_case c = {VR_F32, 2, 2, 4, wide, 2, 2, 1, 1, 1, 1, 0};
  check_case(&c, "max_pool2d", "a band wider than the buffer");
  vr_tensor *x = tu_rand(VR_F32, 4, TU_SHAPE(2, 2, 4, wide), 52), *y = NULL, *xb = NULL, *yb = NULL;
  OK(vr_tensor_set_requires_grad(x, 1));
  OK(vr_batch_norm_act_pool(x, NULL, NULL, NULL, NULL, 1, 0.1, 1e-5, 1, 2, 2, &y));
  ck_assert_str_eq(vr_tensor_grad_fn_name(y), "max_pool2d");
  OK(vr_tensor_to_dtype(x, VR_BF16, &xb));
  OK(vr_batch_norm_act_pool(xb, NULL, NULL, NULL, NULL, 1, 0.1, 1e-5, 1, 2, 2, &yb));
  ck_assert_str_eq(vr_tensor_grad_fn_name(yb), "max_pool2d");
  ck_assert_int_eq(vr_tensor_dtype(yb), VR_BF16);
  vr_tensor *ts[] = {x, y, xb, yb};
  free_all(4, ts);
}
END_TEST

START_TEST(pooled_errors) {
  vr_tensor *x = tu_rand(VR_F32, 4, TU_SHAPE(2, 3, 4, 4), 53), *x2 = tu_rand(VR_F32, 2, TU_SHAPE(4, 3), 54), *y = NULL;
  FAILS(vr_batch_norm_act_pool(NULL, NULL, NULL, NULL, NULL, 1, 0.1, 1e-5, 1, 2, 2, &y), VR_E_ARG, "x: expected a tensor");
  FAILS(vr_batch_norm_act_pool(x, NULL, NULL, NULL, NULL, 1, 0.1, 1e-5, 1, 0, 2, &y), VR_E_ARG,
        "pool_h, pool_w: expected >= 1, got 0, 2");
  FAILS(vr_batch_norm_act_pool(x2, NULL, NULL, NULL, NULL, 1, 0.1, 1e-5, 1, 2, 2, &y), VR_E_SHAPE,
        "x: expected N x C x H x W to pool, got 2 dims");
  FAILS(vr_batch_norm_act_pool(x, NULL, NULL, NULL, NULL, 1, 0.1, 1e-5, 1, 5, 2, &y), VR_E_SHAPE,
        "planes of 4x4 are smaller than the pooling window 5x2");
  FAILS(vr_batch_norm_act_pool(x, NULL, NULL, NULL, NULL, 1, 0.1, 1e-5, 2, 2, 2, &y), VR_E_ARG, "relu: expected 0 or 1");
  ck_assert_ptr_null(y);
  vr_tensor_free(x);
  vr_tensor_free(x2);
}
END_TEST

static Suite *norm_pool_suite(void) {
  Suite *s = suite_create("norm_pool");
  TCase *t = tcase_create("pooled batch norm");
  tcase_set_timeout(t, 120);
  tcase_add_test(t, pooled_equals_the_two_ops);
  tcase_add_test(t, pooled_nan_as_the_two_ops);
  tcase_add_test(t, pooled_same_across_thread_counts);
  tcase_add_test(t, pooled_finite_differences);
  tcase_add_test(t, pooled_hands_over_to_the_two_ops);
  tcase_add_test(t, pooled_errors);
  suite_add_tcase(s, t);
  return s;
}

VR_TEST_MAIN(norm_pool_suite)
