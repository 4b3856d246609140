/* test_reduce.c: sum, mean, var, std, norm, max/min, argmax/argmin: values, shapes, gradients
 * (contiguous, strided, several dims), accuracy of f32 accumulation, determinism across thread
 * counts, errors. */
#include "testutil.h"

typedef struct { int which, nd, dims[4], keep, corr; double p; } red_c;

static vr_status f_red(vr_tensor *const *in, void *ctx, vr_tensor **out) {
  const red_c *c = ctx;
  switch (c->which) {
  case 0: return vr_sum(in[0], c->nd, c->dims, c->keep, out);
  case 1: return vr_mean(in[0], c->nd, c->dims, c->keep, out);
  case 2: return vr_var(in[0], c->nd, c->dims, c->corr, c->keep, out);
  case 3: return vr_std(in[0], c->nd, c->dims, c->corr, c->keep, out);
  case 4: return vr_norm(in[0], c->p, c->nd, c->dims, c->keep, out);
  case 5: return vr_max(in[0], c->dims[0], c->keep, out, NULL);
  case 6: return vr_min(in[0], c->dims[0], c->keep, out, NULL);
  case 7: return vr_max_all(in[0], out);
  default: return vr_min_all(in[0], out);
  }
}

static void check_grad(const char *name, red_c c, vr_tensor *x) {
  tu_gradcheck(name, 1, &x, 0, f_red, &c, 1e-6, 1e-6);
  vr_tensor_free(x);
}

/* reference: sum over dim d of a contiguous row-major buffer */
static void ref_sum_dim(const double *v, int nd, const int64_t *shape, int d, double *out) {
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < d; i++) outer *= shape[i];
  for (int i = d + 1; i < nd; i++) inner *= shape[i];
  for (int64_t o = 0; o < outer; o++)
    for (int64_t i = 0; i < inner; i++) {
      double s = 0;
      for (int64_t r = 0; r < shape[d]; r++) s += v[(o * shape[d] + r) * inner + i];
      out[o * inner + i] = s;
    }
}

/* ---------------------------------------------------------------- sum and mean */

START_TEST(test_sum_all) {
  vr_tensor *x = tu_tensor(VR_F32, 2, TU_SHAPE(2, 3), TU_VALS(1, 2, 3, 4, 5, 6)), *y = NULL;
  OK(vr_sum(x, 0, NULL, 0, &y));
  ck_assert_int_eq(vr_tensor_ndim(y), 0);
  ck_assert(tu_item(y) == 21);
  vr_tensor_free(y);
  OK(vr_sum(x, 0, NULL, 1, &y));
  ck_assert_int_eq(vr_tensor_ndim(y), 2);
  ck_assert_int_eq(vr_tensor_size(y, 0), 1);
  ck_assert_int_eq(vr_tensor_size(y, 1), 1);
  vr_tensor_free(y);
  vr_tensor_free(x);
}
END_TEST

START_TEST(test_sum_dims_shapes) {
  vr_tensor *x = tu_tensor(VR_F64, 2, TU_SHAPE(2, 3), TU_VALS(1, 2, 3, 4, 5, 6)), *y = NULL;
  OK(vr_sum(x, 1, (int[]){0}, 0, &y));
  ck_assert_int_eq(vr_tensor_ndim(y), 1);
  tu_assert_values(y, TU_VALS(5, 7, 9), 3, 0, "sum dim 0");
  vr_tensor_free(y);
  OK(vr_sum(x, 1, (int[]){-1}, 1, &y));
  ck_assert_int_eq(vr_tensor_size(y, 0), 2);
  ck_assert_int_eq(vr_tensor_size(y, 1), 1);
  tu_assert_values(y, TU_VALS(6, 15), 2, 0, "sum dim -1 keepdim");
  vr_tensor_free(y);
  OK(vr_sum(x, 2, (int[]){1, 0}, 0, &y));
  ck_assert(tu_item(y) == 21);
  vr_tensor_free(y);
  vr_tensor_free(x);
}
END_TEST

START_TEST(test_sum_3d_vs_reference) {
  const int64_t shape[3] = {4, 5, 6};
  vr_tensor *x = tu_rand(VR_F64, 3, shape, 3), *y = NULL;
  double *v = tu_values(x), ref[120];
  for (int d = 0; d < 3; d++) {
    OK(vr_sum(x, 1, &d, 0, &y));
    ref_sum_dim(v, 3, shape, d, ref);
    tu_assert_values(y, ref, 120 / shape[d], 1e-14, "sum dim");
    vr_tensor_free(y);
  }
  /* dims 0 and 2 together: sum over 0 of the sum over 2 */
  OK(vr_sum(x, 2, (int[]){0, 2}, 0, &y));
  double r2[20], r3[5];
  ref_sum_dim(v, 3, shape, 2, r2);
  ref_sum_dim(r2, 2, (int64_t[]){4, 5}, 0, r3);
  tu_assert_values(y, r3, 5, 1e-14, "sum dims 0, 2");
  vr_tensor_free(y);
  free(v);
  vr_tensor_free(x);
}
END_TEST

START_TEST(test_sum_strided) {
  vr_tensor *x = tu_strided(3, TU_SHAPE(3, 4, 5), 4), *c = NULL, *y = NULL, *yc = NULL;
  OK(vr_contiguous(x, &c));
  for (int d = 0; d < 3; d++) {
    OK(vr_sum(x, 1, &d, 1, &y));
    OK(vr_sum(c, 1, &d, 1, &yc));
    tu_assert_close(y, yc, 1e-14, 1e-14, "sum of a transposed view");
    vr_tensor_free(y); vr_tensor_free(yc);
  }
  vr_tensor_free(x); vr_tensor_free(c);
}
END_TEST

START_TEST(test_mean_values) {
  vr_tensor *x = tu_tensor(VR_F32, 2, TU_SHAPE(2, 2), TU_VALS(1, 2, 3, 5)), *y = NULL;
  OK(vr_mean(x, 0, NULL, 0, &y)); ck_assert(tu_item(y) == 2.75); vr_tensor_free(y);
  OK(vr_mean(x, 1, (int[]){1}, 0, &y)); tu_assert_values(y, TU_VALS(1.5, 4), 2, 0, "mean dim 1"); vr_tensor_free(y);
  vr_tensor_free(x);
}
END_TEST

START_TEST(test_sum_mean_grads) {
  check_grad("sum all", (red_c){0, 0, {0}, 0, 0, 0}, tu_rand(VR_F64, 2, TU_SHAPE(3, 4), 1));
  check_grad("sum dim", (red_c){0, 1, {1}, 0, 0, 0}, tu_rand(VR_F64, 3, TU_SHAPE(2, 3, 4), 2));
  check_grad("sum dims keep", (red_c){0, 2, {0, 2}, 1, 0, 0}, tu_rand(VR_F64, 3, TU_SHAPE(2, 3, 4), 3));
  check_grad("sum strided", (red_c){0, 1, {0}, 0, 0, 0}, tu_strided(2, TU_SHAPE(3, 4), 4));
  check_grad("mean all", (red_c){1, 0, {0}, 0, 0, 0}, tu_rand(VR_F64, 2, TU_SHAPE(3, 4), 5));
  check_grad("mean dims", (red_c){1, 2, {-1, 0}, 0, 0, 0}, tu_strided(3, TU_SHAPE(2, 3, 4), 6));
}
END_TEST

START_TEST(test_sum_int) {
  int64_t n = 4;
  vr_tensor *x = NULL, *y = NULL, *m = NULL;
  OK(vr_tensor_from_buffer((int32_t[]){1, 2, 3, 2000000000}, 1, &n, VR_I32, VR_CPU, &x));
  OK(vr_sum(x, 0, NULL, 0, &y));
  ck_assert_int_eq(vr_tensor_dtype(y), VR_I64);
  int64_t s = 0;
  OK(vr_tensor_to_buffer(y, &s, sizeof s));
  ck_assert(s == 2000000006LL);
  vr_tensor_free(y);
  /* counting a u8 mask */
  vr_tensor *t = NULL;
  OK(vr_tensor_full(1, &n, 1.5, VR_F32, VR_CPU, &t));
  OK(vr_gt(t, t, &m));
  OK(vr_sum(m, 0, NULL, 0, &y));
  ck_assert(tu_item(y) == 0);
  FAILS(vr_mean(x, 0, NULL, 0, &y), VR_E_DTYPE, "float");
  vr_tensor_free(y); vr_tensor_free(m); vr_tensor_free(t); vr_tensor_free(x);
}
END_TEST

/* f32 inputs are accumulated in double: a long sum of 0.1f loses nothing visible */
START_TEST(test_sum_f32_accuracy) {
  const int64_t n = 1000000;
  vr_tensor *x = NULL, *y = NULL;
  OK(vr_tensor_full(1, &n, 0.1, VR_F32, VR_CPU, &x));
  OK(vr_sum(x, 0, NULL, 0, &y));
  double expect = (double)n * (double)0.1f;
  ck_assert_msg(fabs(tu_item(y) - expect) <= 1e-7 * expect, "sum %.10g vs %.10g", tu_item(y), expect);
  vr_tensor_free(y);
  OK(vr_mean(x, 0, NULL, 0, &y));
  ck_assert(fabs(tu_item(y) - 0.1f) <= 1e-8);
  vr_tensor_free(y); vr_tensor_free(x);
}
END_TEST

/* bitwise equal results with 1, 2 and 3 threads: long reductions (blocks split), outer-dim
 * reductions (column tiles whose width depends on the thread count) */
START_TEST(test_sum_deterministic) {
  const int64_t n = 3 * 100003;
  vr_tensor *x = tu_rand(VR_F32, 1, &n, 9), *x2 = NULL, *x3 = tu_rand(VR_F32, 2, TU_SHAPE(4000, 40), 10);
  OK(vr_view(x, 2, TU_SHAPE(3, 100003), &x2));
  int prev = vr_num_threads();
  double ref[7] = {0};
  for (int nt = 1; nt <= 3; nt++) {
    vr_set_num_threads(nt);
    vr_tensor *y = NULL, *y2 = NULL, *v = NULL, *nm = NULL, *c = NULL, *cv = NULL, *cm = NULL;
    OK(vr_sum(x, 0, NULL, 0, &y));
    OK(vr_sum(x2, 1, (int[]){0}, 0, &y2)); /* over the outer dim */
    OK(vr_var(x, 0, NULL, 1, 0, &v));
    OK(vr_norm(x2, 2, 1, (int[]){1}, 0, &nm));
    OK(vr_sum(x3, 1, (int[]){0}, 0, &c));
    OK(vr_var(x3, 1, (int[]){0}, 1, 0, &cv));
    OK(vr_max(x3, 0, 0, &cm, NULL));
    double *yv = tu_values(y2), *nv = tu_values(nm), *cvv = tu_values(c), *vv = tu_values(cv), *mv = tu_values(cm);
    double got[7] = {tu_item(y), yv[777], tu_item(v), nv[1], 0, 0, 0};
    for (int k = 0; k < 40; k++) got[4] += cvv[k] * (k + 1), got[5] += vv[k] * (k + 1), got[6] += mv[k] * (k + 1);
    free(yv); free(nv); free(cvv); free(vv); free(mv);
    for (int k = 0; k < 7; k++) {
      if (nt == 1) ref[k] = got[k];
      else ck_assert_msg(got[k] == ref[k], "threads %d: result %d %.17g vs %.17g", nt, k, got[k], ref[k]);
    }
    vr_tensor_free(y); vr_tensor_free(y2); vr_tensor_free(v); vr_tensor_free(nm);
    vr_tensor_free(c); vr_tensor_free(cv); vr_tensor_free(cm);
  }
  vr_set_num_threads(prev);
  vr_tensor_free(x); vr_tensor_free(x2); vr_tensor_free(x3);
}
END_TEST

/* a large reduction over the outer dim (column sums) against a plain loop */
START_TEST(test_sum_outer_large) {
  const int64_t shape[2] = {300, 257};
  vr_tensor *x = tu_rand(VR_F64, 2, shape, 12), *y = NULL;
  OK(vr_sum(x, 1, (int[]){0}, 0, &y));
  double *v = tu_values(x), ref[257];
  ref_sum_dim(v, 2, shape, 0, ref);
  tu_assert_values(y, ref, 257, 1e-13, "column sums");
  free(v);
  vr_tensor_free(x); vr_tensor_free(y);
}
END_TEST

/* reductions over the outer dim (column path) agree with the same reductions over the inner
 * dim of the transposed copy (row path) */
START_TEST(test_column_vs_row_paths) {
  vr_tensor *x = tu_rand(VR_F32, 2, TU_SHAPE(50, 40), 13), *t = NULL, *tc = NULL, *a = NULL, *b = NULL;
  OK(vr_transpose(x, 0, 1, &t));
  OK(vr_contiguous(t, &tc));
  for (int op = 0; op < 5; op++) {
    int d0 = 0, d1 = 1;
    switch (op) {
    case 0: OK(vr_sum(x, 1, &d0, 0, &a)); OK(vr_sum(tc, 1, &d1, 0, &b)); break;
    case 1: OK(vr_mean(x, 1, &d0, 0, &a)); OK(vr_mean(tc, 1, &d1, 0, &b)); break;
    case 2: OK(vr_var(x, 1, &d0, 1, 0, &a)); OK(vr_var(tc, 1, &d1, 1, 0, &b)); break;
    case 3: OK(vr_norm(x, 2, 1, &d0, 0, &a)); OK(vr_norm(tc, 2, 1, &d1, 0, &b)); break;
    default: OK(vr_norm(x, 1, 1, &d0, 0, &a)); OK(vr_norm(tc, 1, 1, &d1, 0, &b)); break;
    }
    tu_assert_close(a, b, 1e-6, 1e-7, "column vs row");
    vr_tensor_free(a); vr_tensor_free(b);
  }
  vr_tensor_free(x); vr_tensor_free(t); vr_tensor_free(tc);
}
END_TEST

/* ---------------------------------------------------------------- var, std */

START_TEST(test_var_std_values) {
  vr_tensor *x = tu_tensor(VR_F64, 2, TU_SHAPE(2, 4), TU_VALS(1, 2, 3, 4, 2, 4, 6, 8)), *y = NULL;
  OK(vr_var(x, 1, (int[]){1}, 1, 0, &y)); tu_assert_values(y, TU_VALS(5.0 / 3, 20.0 / 3), 2, 1e-15, "var unbiased"); vr_tensor_free(y);
  OK(vr_var(x, 1, (int[]){1}, 0, 0, &y)); tu_assert_values(y, TU_VALS(1.25, 5), 2, 1e-15, "var biased"); vr_tensor_free(y);
  OK(vr_std(x, 1, (int[]){1}, 0, 1, &y));
  ck_assert_int_eq(vr_tensor_size(y, 1), 1);
  tu_assert_values(y, TU_VALS(sqrt(1.25), sqrt(5)), 2, 1e-15, "std biased keepdim");
  vr_tensor_free(y);
  OK(vr_var(x, 0, NULL, 1, 0, &y));
  /* mean 3.75; squares of deviations sum to 37.5 */
  ck_assert(fabs(tu_item(y) - 37.5 / 7) < 1e-14);
  vr_tensor_free(y);
  vr_tensor_free(x);
}
END_TEST

/* two passes keep f32 data with a large offset accurate */
START_TEST(test_var_offset_accuracy) {
  const int64_t n = 10000;
  vr_tensor *r = tu_rand(VR_F32, 1, &n, 5), *x = NULL, *y = NULL, *r64 = NULL, *y64 = NULL;
  OK(vr_add_scalar(r, 1e4, &x));
  OK(vr_var(x, 0, NULL, 1, 0, &y));
  OK(vr_tensor_to_dtype(x, VR_F64, &r64));
  OK(vr_var(r64, 0, NULL, 1, 0, &y64));
  ck_assert_msg(fabs(tu_item(y) - tu_item(y64)) <= 1e-6 * tu_item(y64), "%.10g vs %.10g", tu_item(y), tu_item(y64));
  vr_tensor_free(r); vr_tensor_free(x); vr_tensor_free(y); vr_tensor_free(r64); vr_tensor_free(y64);
}
END_TEST

START_TEST(test_var_grads) {
  check_grad("var all unbiased", (red_c){2, 0, {0}, 0, 1, 0}, tu_rand(VR_F64, 2, TU_SHAPE(3, 4), 1));
  check_grad("var dim biased", (red_c){2, 1, {1}, 0, 0, 0}, tu_rand(VR_F64, 3, TU_SHAPE(2, 3, 4), 2));
  check_grad("var dims keep strided", (red_c){2, 2, {0, 2}, 1, 1, 0}, tu_strided(3, TU_SHAPE(2, 3, 4), 3));
  check_grad("std dim", (red_c){3, 1, {0}, 0, 1, 0}, tu_rand(VR_F64, 2, TU_SHAPE(5, 3), 4));
  check_grad("std all strided", (red_c){3, 0, {0}, 0, 0, 0}, tu_strided(2, TU_SHAPE(3, 4), 5));
}
END_TEST

/* ---------------------------------------------------------------- norm */

START_TEST(test_norm_values) {
  vr_tensor *x = tu_tensor(VR_F64, 2, TU_SHAPE(2, 2), TU_VALS(3, -4, 1, -2)), *y = NULL;
  OK(vr_norm(x, 2, 1, (int[]){1}, 0, &y)); tu_assert_values(y, TU_VALS(5, sqrt(5)), 2, 1e-15, "norm 2"); vr_tensor_free(y);
  OK(vr_norm(x, 1, 1, (int[]){1}, 0, &y)); tu_assert_values(y, TU_VALS(7, 3), 2, 1e-15, "norm 1"); vr_tensor_free(y);
  OK(vr_norm(x, INFINITY, 1, (int[]){1}, 0, &y)); tu_assert_values(y, TU_VALS(4, 2), 2, 0, "norm inf"); vr_tensor_free(y);
  OK(vr_norm(x, 3, 0, NULL, 0, &y)); ck_assert(fabs(tu_item(y) - cbrt(27 + 64 + 1 + 8)) < 1e-14); vr_tensor_free(y);
  OK(vr_norm(x, 0.5, 0, NULL, 0, &y));
  double e = sqrt(3) + 2 + 1 + sqrt(2);
  ck_assert(fabs(tu_item(y) - e * e) < 1e-13);
  vr_tensor_free(y);
  vr_tensor_free(x);
}
END_TEST

START_TEST(test_norm_grads) {
  check_grad("norm 2 all", (red_c){4, 0, {0}, 0, 0, 2}, tu_rand(VR_F64, 2, TU_SHAPE(3, 4), 1));
  check_grad("norm 2 dim strided", (red_c){4, 1, {1}, 1, 0, 2}, tu_strided(2, TU_SHAPE(3, 4), 2));
  check_grad("norm 1 dim", (red_c){4, 1, {0}, 0, 0, 1}, tu_rand(VR_F64, 2, TU_SHAPE(3, 4), 3));
  check_grad("norm 3", (red_c){4, 2, {0, 2}, 0, 0, 3}, tu_rand(VR_F64, 3, TU_SHAPE(2, 3, 4), 4));
  check_grad("norm 1.5 strided", (red_c){4, 0, {0}, 0, 0, 1.5}, tu_strided(2, TU_SHAPE(4, 3), 5));
  check_grad("norm inf", (red_c){4, 1, {1}, 0, 0, INFINITY}, tu_rand(VR_F64, 2, TU_SHAPE(3, 5), 6));
}
END_TEST

/* with |x| tied at the max, the inf-norm gradient is shared; the 2-norm of zeros has gradient 0 */
START_TEST(test_norm_ties_and_zero) {
  vr_tensor *x = tu_tensor(VR_F64, 1, TU_SHAPE(4), TU_VALS(2, -2, 1, 0)), *y = NULL;
  OK(vr_tensor_set_requires_grad(x, 1));
  OK(vr_norm(x, INFINITY, 0, NULL, 0, &y));
  OK(vr_backward(y, NULL, 0));
  vr_tensor *g = vr_tensor_grad(x);
  tu_assert_values(g, TU_VALS(0.5, -0.5, 0, 0), 4, 0, "inf-norm ties");
  vr_tensor_free(g); vr_tensor_free(y); vr_tensor_free(x);
  OK(vr_tensor_zeros(1, TU_SHAPE(3), VR_F64, VR_CPU, &x));
  OK(vr_tensor_set_requires_grad(x, 1));
  OK(vr_norm(x, 2, 0, NULL, 0, &y));
  OK(vr_backward(y, NULL, 0));
  g = vr_tensor_grad(x);
  tu_assert_values(g, TU_VALS(0, 0, 0), 3, 0, "norm of zeros");
  vr_tensor_free(g); vr_tensor_free(y); vr_tensor_free(x);
}
END_TEST

/* ---------------------------------------------------------------- max, min */

START_TEST(test_max_min_values) {
  vr_tensor *x = tu_tensor(VR_F32, 2, TU_SHAPE(2, 4), TU_VALS(1, 5, 5, 0, -1, -3, 2, -3)), *v = NULL, *i = NULL;
  OK(vr_max(x, 1, 0, &v, &i));
  tu_assert_values(v, TU_VALS(5, 2), 2, 0, "max values");
  ck_assert_int_eq(vr_tensor_dtype(i), VR_I64);
  tu_assert_values(i, TU_VALS(1, 2), 2, 0, "max indices: first of ties");
  vr_tensor_free(v); vr_tensor_free(i);
  OK(vr_min(x, 1, 1, &v, &i));
  ck_assert_int_eq(vr_tensor_size(v, 1), 1);
  tu_assert_values(v, TU_VALS(0, -3), 2, 0, "min values");
  tu_assert_values(i, TU_VALS(3, 1), 2, 0, "min indices");
  vr_tensor_free(v); vr_tensor_free(i);
  OK(vr_max(x, 0, 0, &v, &i));
  tu_assert_values(v, TU_VALS(1, 5, 5, 0), 4, 0, "max dim 0");
  tu_assert_values(i, TU_VALS(0, 0, 0, 0), 4, 0, "max dim 0 indices");
  vr_tensor_free(v); vr_tensor_free(i);
  vr_tensor_free(x);
}
END_TEST

START_TEST(test_argmax_argmin) {
  vr_tensor *x = tu_strided(2, TU_SHAPE(5, 7), 3), *a = NULL, *v = NULL;
  OK(vr_argmax(x, -1, 0, &a));
  double *xv = tu_values(x), *av = tu_values(a);
  for (int r = 0; r < 5; r++) {
    int best = 0;
    for (int c = 1; c < 7; c++) if (xv[r * 7 + c] > xv[r * 7 + best]) best = c;
    ck_assert_int_eq((int)av[r], best);
  }
  free(av);
  vr_tensor_free(a);
  OK(vr_argmin(x, 0, 1, &a));
  ck_assert_int_eq(vr_tensor_size(a, 0), 1);
  av = tu_values(a);
  for (int c = 0; c < 7; c++) {
    int best = 0;
    for (int r = 1; r < 5; r++) if (xv[r * 7 + c] < xv[best * 7 + c]) best = r;
    ck_assert_int_eq((int)av[c], best);
  }
  free(av); free(xv);
  vr_tensor_free(a);
  OK(vr_max(x, 1, 0, &v, NULL)); /* values only */
  vr_tensor_free(v);
  vr_tensor_free(x);
}
END_TEST

START_TEST(test_max_nan_and_int) {
  vr_tensor *x = tu_tensor(VR_F64, 1, TU_SHAPE(4), TU_VALS(1, NAN, 3, NAN)), *v = NULL, *i = NULL;
  OK(vr_max(x, 0, 0, &v, &i));
  ck_assert(isnan(tu_item(v)));
  ck_assert(tu_item(i) == 1);
  vr_tensor_free(v); vr_tensor_free(i); vr_tensor_free(x);
  int64_t n = 3;
  OK(vr_tensor_from_buffer((int64_t[]){5, ((int64_t)1 << 62) + 1, -7}, 1, &n, VR_I64, VR_CPU, &x));
  OK(vr_max(x, 0, 0, &v, &i));
  int64_t mv = 0;
  OK(vr_tensor_to_buffer(v, &mv, sizeof mv));
  ck_assert(mv == ((int64_t)1 << 62) + 1);
  ck_assert(tu_item(i) == 1);
  vr_tensor_free(v); vr_tensor_free(i); vr_tensor_free(x);
}
END_TEST

/* the column and row paths of max/min agree, ties and NaN included */
START_TEST(test_max_column_vs_row) {
  vr_tensor *x = tu_rand(VR_F32, 2, TU_SHAPE(40, 33), 21), *t = NULL, *tc = NULL;
  OK(vr_tensor_set(x, TU_SHAPE(3, 5), 5));
  OK(vr_tensor_set(x, TU_SHAPE(30, 5), 5)); /* tie: first index 3 wins */
  OK(vr_tensor_set(x, TU_SHAPE(7, 6), NAN));
  OK(vr_tensor_set(x, TU_SHAPE(9, 6), NAN));
  OK(vr_tensor_set(x, TU_SHAPE(2, 7), -5));
  OK(vr_transpose(x, 0, 1, &t));
  OK(vr_contiguous(t, &tc));
  for (int mn = 0; mn < 2; mn++) {
    vr_tensor *va = NULL, *ia = NULL, *vb = NULL, *ib = NULL;
    OK((mn ? vr_min : vr_max)(x, 0, 0, &va, &ia));
    OK((mn ? vr_min : vr_max)(tc, 1, 0, &vb, &ib));
    tu_assert_close(va, vb, 0, 0, "values");
    tu_assert_close(ia, ib, 0, 0, "indices");
    double *iv = tu_values(ia);
    if (!mn) ck_assert(iv[5] == 3);
    ck_assert(iv[6] == 7);
    if (mn) ck_assert(iv[7] == 2);
    free(iv);
    vr_tensor_free(va); vr_tensor_free(ia); vr_tensor_free(vb); vr_tensor_free(ib);
  }
  /* long rows (the 16-lane pass) with the extreme late, a tie, and a NaN */
  const int64_t n = 1000;
  vr_tensor *r = tu_rand(VR_F64, 1, &n, 22), *v = NULL, *i = NULL;
  OK(vr_tensor_set(r, TU_SHAPE(777), 3));
  OK(vr_tensor_set(r, TU_SHAPE(901), 3));
  OK(vr_max(r, 0, 0, &v, &i));
  ck_assert(tu_item(v) == 3 && tu_item(i) == 777);
  vr_tensor_free(v); vr_tensor_free(i);
  OK(vr_tensor_set(r, TU_SHAPE(500), NAN));
  OK(vr_min(r, 0, 0, &v, &i));
  ck_assert(isnan(tu_item(v)) && tu_item(i) == 500);
  vr_tensor_free(v); vr_tensor_free(i); vr_tensor_free(r);
  vr_tensor_free(x); vr_tensor_free(t); vr_tensor_free(tc);
}
END_TEST

START_TEST(test_max_min_grads) {
  check_grad("max dim", (red_c){5, 1, {1}, 0, 0, 0}, tu_rand(VR_F64, 2, TU_SHAPE(3, 5), 1));
  check_grad("max dim 0 keep strided", (red_c){5, 1, {0}, 1, 0, 0}, tu_strided(2, TU_SHAPE(4, 3), 2));
  check_grad("min dim 3d", (red_c){6, 1, {1}, 0, 0, 0}, tu_rand(VR_F64, 3, TU_SHAPE(2, 4, 3), 3));
  check_grad("max_all", (red_c){7, 0, {0}, 0, 0, 0}, tu_rand(VR_F64, 2, TU_SHAPE(3, 4), 4));
  check_grad("min_all strided", (red_c){8, 0, {0}, 0, 0, 0}, tu_strided(2, TU_SHAPE(3, 4), 5));
}
END_TEST

START_TEST(test_max_all_values) {
  vr_tensor *x = tu_tensor(VR_F32, 2, TU_SHAPE(2, 3), TU_VALS(1, 9, -4, 9, 0, 2)), *y = NULL;
  OK(vr_max_all(x, &y)); ck_assert_int_eq(vr_tensor_ndim(y), 0); ck_assert(tu_item(y) == 9); vr_tensor_free(y);
  OK(vr_min_all(x, &y)); ck_assert(tu_item(y) == -4); vr_tensor_free(y);
  /* the gradient goes to the first maximum */
  vr_tensor *x64 = NULL;
  OK(vr_tensor_to_dtype(x, VR_F64, &x64));
  OK(vr_tensor_set_requires_grad(x64, 1));
  OK(vr_max_all(x64, &y));
  OK(vr_backward(y, NULL, 0));
  vr_tensor *g = vr_tensor_grad(x64);
  tu_assert_values(g, TU_VALS(0, 1, 0, 0, 0, 0), 6, 0, "max_all grad");
  vr_tensor_free(g); vr_tensor_free(y); vr_tensor_free(x64); vr_tensor_free(x);
}
END_TEST

START_TEST(test_scalar_input) {
  vr_tensor *s = tu_tensor(VR_F64, 0, NULL, TU_VALS(4)), *y = NULL, *i = NULL;
  OK(vr_sum(s, 0, NULL, 0, &y)); ck_assert(tu_item(y) == 4); vr_tensor_free(y);
  OK(vr_sum(s, 1, (int[]){0}, 1, &y)); ck_assert_int_eq(vr_tensor_ndim(y), 0); vr_tensor_free(y);
  OK(vr_max(s, 0, 0, &y, &i)); ck_assert(tu_item(y) == 4 && tu_item(i) == 0); vr_tensor_free(y); vr_tensor_free(i);
  OK(vr_norm(s, 2, 0, NULL, 0, &y)); ck_assert(tu_item(y) == 4); vr_tensor_free(y);
  vr_tensor_free(s);
}
END_TEST

START_TEST(test_empty_reductions) {
  vr_tensor *e = NULL, *y = NULL, *v = NULL;
  OK(vr_tensor_zeros(2, TU_SHAPE(0, 3), VR_F32, VR_CPU, &e));
  OK(vr_sum(e, 1, (int[]){0}, 0, &y)); tu_assert_values(y, TU_VALS(0, 0, 0), 3, 0, "sum over empty"); vr_tensor_free(y);
  OK(vr_sum(e, 1, (int[]){1}, 0, &y)); ck_assert_int_eq(vr_tensor_numel(y), 0); vr_tensor_free(y);
  FAILS(vr_max(e, 0, 0, &v, NULL), VR_E_SHAPE, "non-empty");
  FAILS(vr_max_all(e, &v), VR_E_SHAPE, "non-empty");
  vr_tensor_free(e);
}
END_TEST

/* ---------------------------------------------------------------- errors */

START_TEST(test_reduce_errors) {
  vr_tensor *x = tu_rand(VR_F32, 2, TU_SHAPE(3, 4), 1), *y = NULL, *i32 = NULL;
  FAILS(vr_sum(x, 1, (int[]){2}, 0, &y), VR_E_ARG, "dims[0]: expected a dim in [-2, 2), got 2");
  FAILS(vr_sum(x, 2, (int[]){1, -1}, 0, &y), VR_E_ARG, "appears twice");
  FAILS(vr_sum(x, -1, NULL, 0, &y), VR_E_ARG, "ndims");
  FAILS(vr_sum(x, 1, NULL, 0, &y), VR_E_ARG, "dims");
  FAILS(vr_sum(NULL, 0, NULL, 0, &y), VR_E_ARG, "x: expected a tensor");
  FAILS(vr_mean(x, 0, NULL, 0, NULL), VR_E_ARG, "out");
  FAILS(vr_norm(x, 0, 0, NULL, 0, &y), VR_E_ARG, "p: expected p > 0");
  FAILS(vr_norm(x, -1, 0, NULL, 0, &y), VR_E_ARG, "p");
  FAILS(vr_var(x, 0, NULL, -1, 0, &y), VR_E_ARG, "correction");
  FAILS(vr_max(x, 5, 0, &y, NULL), VR_E_ARG, "dim: expected a dim in [-2, 2), got 5");
  FAILS(vr_max(x, 0, 0, NULL, NULL), VR_E_ARG, "output pointer");
  FAILS(vr_argmax(x, 0, 0, NULL), VR_E_ARG, "out");
  OK(vr_tensor_zeros(1, TU_SHAPE(3), VR_I32, VR_CPU, &i32));
  FAILS(vr_var(i32, 0, NULL, 1, 0, &y), VR_E_DTYPE, "x: expected a float tensor, got i32");
  FAILS(vr_norm(i32, 2, 0, NULL, 0, &y), VR_E_DTYPE, "float");
  vr_tensor_free(x); vr_tensor_free(i32);
}
END_TEST

Suite *reduce_suite(void) {
  Suite *s = suite_create("reduce");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_sum_all);
  tcase_add_test(tc, test_sum_dims_shapes);
  tcase_add_test(tc, test_sum_3d_vs_reference);
  tcase_add_test(tc, test_sum_strided);
  tcase_add_test(tc, test_mean_values);
  tcase_add_test(tc, test_sum_mean_grads);
  tcase_add_test(tc, test_sum_int);
  tcase_add_test(tc, test_sum_f32_accuracy);
  tcase_add_test(tc, test_sum_deterministic);
  tcase_add_test(tc, test_sum_outer_large);
  tcase_add_test(tc, test_column_vs_row_paths);
  tcase_add_test(tc, test_var_std_values);
  tcase_add_test(tc, test_var_offset_accuracy);
  tcase_add_test(tc, test_var_grads);
  tcase_add_test(tc, test_norm_values);
  tcase_add_test(tc, test_norm_grads);
  tcase_add_test(tc, test_norm_ties_and_zero);
  tcase_add_test(tc, test_max_min_values);
  tcase_add_test(tc, test_argmax_argmin);
  tcase_add_test(tc, test_max_nan_and_int);
  tcase_add_test(tc, test_max_column_vs_row);
  tcase_add_test(tc, test_max_min_grads);
  tcase_add_test(tc, test_max_all_values);
  tcase_add_test(tc, test_scalar_input);
  tcase_add_test(tc, test_empty_reductions);
  tcase_add_test(tc, test_reduce_errors);
  suite_add_tcase(s, tc);
  return s;
}

VR_TEST_MAIN(reduce_suite)
