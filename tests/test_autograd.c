/* test_autograd.c: the tape engine (accumulation, retain_graph, no_grad, detach, the version
 * counter, aliasing of leaf gradients, deep graphs) and the gradients of every view op. */
#include "testutil.h"

static vr_tensor *leaf(int ndim, const int64_t *shape, uint64_t seed) {
  vr_tensor *t = tu_rand(VR_F64, ndim, shape, seed);
  vr_tensor_set_requires_grad(t, 1);
  return t;
}

static double grad_at(vr_tensor *t, int64_t k) {
  vr_tensor *g = vr_tensor_grad(t);
  ck_assert_ptr_nonnull(g);
  double *v = tu_values(g), r = v[k];
  free(v);
  vr_tensor_free(g);
  return r;
}

START_TEST(square_sum_gradient_and_accumulation) {
  vr_tensor *x = leaf(1, TU_SHAPE(5), 1), *sq = NULL, *y = NULL;
  OK(vr_mul(x, x, &sq));
  OK(vr_sum(sq, 0, NULL, 0, &y));
  ck_assert_str_eq(vr_tensor_grad_fn_name(y), vr_tensor_grad_fn_name(y)); /* named */
  ck_assert(vr_tensor_requires_grad(y) && !vr_tensor_is_leaf(y));
  OK(vr_backward(y, NULL, 1));
  double *xv = tu_values(x);
  for (int k = 0; k < 5; k++) ck_assert_double_eq_tol(grad_at(x, k), 2 * xv[k], 1e-15);
  OK(vr_backward(y, NULL, 0)); /* accumulates */
  for (int k = 0; k < 5; k++) ck_assert_double_eq_tol(grad_at(x, k), 4 * xv[k], 1e-15);
  FAILS(vr_backward(y, NULL, 0), VR_E_AUTOGRAD, "retain_graph");
  free(xv);
  vr_tensor_free(x);
  vr_tensor_free(sq);
  vr_tensor_free(y);
}
END_TEST

START_TEST(diamond_graph_sums_both_paths) {
  vr_tensor *a = leaf(1, TU_SHAPE(3), 2), *b = leaf(1, TU_SHAPE(3), 3), *ab = NULL, *z = NULL, *s = NULL;
  OK(vr_mul(a, b, &ab));
  OK(vr_add(ab, a, &z));
  OK(vr_sum(z, 0, NULL, 0, &s));
  OK(vr_backward(s, NULL, 0));
  double *av = tu_values(a), *bv = tu_values(b);
  for (int k = 0; k < 3; k++) {
    ck_assert_double_eq_tol(grad_at(a, k), bv[k] + 1, 1e-15);
    ck_assert_double_eq_tol(grad_at(b, k), av[k], 1e-15);
  }
  free(av);
  free(bv);
  vr_tensor *objs[] = {a, b, ab, z, s};
  for (int k = 0; k < 5; k++) vr_tensor_free(objs[k]);
}
END_TEST

START_TEST(leaf_gradients_do_not_alias) {
  vr_tensor *a = leaf(1, TU_SHAPE(4), 4), *b = leaf(1, TU_SHAPE(4), 5), *s = NULL, *t = NULL;
  OK(vr_add(a, b, &s));
  OK(vr_sum(s, 0, NULL, 0, &t));
  OK(vr_backward(t, NULL, 0));
  vr_tensor *ga = vr_tensor_grad(a);
  OK(vr_mul_scalar_(ga, 10));
  ck_assert_double_eq(grad_at(b, 0), 1);
  ck_assert_double_eq(grad_at(a, 0), 10);
  vr_tensor *objs[] = {a, b, s, t, ga};
  for (int k = 0; k < 5; k++) vr_tensor_free(objs[k]);
}
END_TEST

START_TEST(no_grad_records_nothing) {
  vr_tensor *x = leaf(1, TU_SHAPE(3), 6), *y = NULL;
  int prev = vr_set_grad_enabled(0);
  ck_assert(prev);
  ck_assert(!vr_grad_enabled());
  OK(vr_mul(x, x, &y));
  vr_set_grad_enabled(prev);
  ck_assert(!vr_tensor_requires_grad(y));
  FAILS(vr_backward(y, NULL, 0), VR_E_AUTOGRAD, "requires grad");
  vr_tensor_free(x);
  vr_tensor_free(y);
}
END_TEST

START_TEST(detach_shares_storage_without_grad) {
  vr_tensor *x = leaf(1, TU_SHAPE(3), 7), *y = NULL, *d = NULL;
  OK(vr_mul_scalar(x, 2, &y));
  OK(vr_detach(y, &d));
  ck_assert(!vr_tensor_requires_grad(d));
  ck_assert(vr_tensor_is_leaf(d));
  ck_assert(vr_tensor_shares_storage(d, y));
  vr_tensor_free(x);
  vr_tensor_free(y);
  vr_tensor_free(d);
}
END_TEST

START_TEST(in_place_change_of_a_saved_tensor_is_an_error) {
  vr_tensor *x = leaf(1, TU_SHAPE(3), 8), *y = NULL, *s = NULL;
  OK(vr_mul(x, x, &y));
  OK(vr_sum(y, 0, NULL, 0, &s));
  OK(vr_fill_(x, 1.0));
  FAILS(vr_backward(s, NULL, 0), VR_E_AUTOGRAD, "modified in place");
  vr_tensor_free(x);
  vr_tensor_free(y);
  vr_tensor_free(s);
}
END_TEST

START_TEST(misuse_gets_clear_messages) {
  vr_tensor *x = leaf(1, TU_SHAPE(3), 9), *y = NULL, *i = NULL, *g = NULL;
  OK(vr_mul_scalar(x, 3, &y));
  FAILS(vr_tensor_set_requires_grad(y, 0), VR_E_AUTOGRAD, "leaf");
  FAILS(vr_backward(y, NULL, 0), VR_E_ARG, "3 elements");
  OK(vr_tensor_zeros(1, TU_SHAPE(2), VR_F64, VR_CPU, &g));
  FAILS(vr_backward(y, g, 0), VR_E_SHAPE, "grad");
  OK(vr_tensor_zeros(1, TU_SHAPE(2), VR_I64, VR_CPU, &i));
  FAILS(vr_tensor_set_requires_grad(i, 1), VR_E_DTYPE, "float");
  vr_tensor_free(x);
  vr_tensor_free(y);
  vr_tensor_free(i);
  vr_tensor_free(g);
}
END_TEST

START_TEST(explicit_output_gradient) {
  vr_tensor *x = leaf(1, TU_SHAPE(3), 10), *y = NULL, *g = tu_tensor(VR_F64, 1, TU_SHAPE(3), TU_VALS(1, -2, 0.5));
  OK(vr_mul_scalar(x, 3, &y));
  OK(vr_backward(y, g, 0));
  ck_assert_double_eq_tol(grad_at(x, 1), -6, 1e-15);
  ck_assert_double_eq_tol(grad_at(x, 2), 1.5, 1e-15);
  vr_tensor_free(x);
  vr_tensor_free(y);
  vr_tensor_free(g);
}
END_TEST

START_TEST(a_deep_chain_frees_without_recursion) {
  vr_tensor *x = leaf(1, TU_SHAPE(2), 11), *y = NULL;
  vr_tensor_retain(x);
  y = x;
  for (int k = 0; k < 200000; k++) {
    vr_tensor *z = NULL;
    OK(vr_mul_scalar(y, 1.0, &z));
    vr_tensor_free(y);
    y = z;
  }
  vr_tensor *s = NULL;
  OK(vr_sum(y, 0, NULL, 0, &s));
  OK(vr_backward(s, NULL, 0));
  ck_assert_double_eq_tol(grad_at(x, 0), 1, 1e-12);
  vr_tensor_free(y);
  vr_tensor_free(s);
  vr_tensor_free(x);
}
END_TEST

/* ---- view gradients: f(x) = g(view(x)) with a non-linear g, checked by finite differences ---- */

static vr_status square(vr_tensor *v, vr_tensor **out) { return vr_mul(v, v, out); }

static vr_status f_permute_slice(vr_tensor *const *in, void *ctx, vr_tensor **out) {
  vr_tensor *p = NULL, *s = NULL;
  vr_status st = vr_permute(in[0], (const int[]){2, 0, 1}, &p);
  if (!st) st = vr_slice(p, 1, 1, 4, 2, &s);
  if (!st) st = square(s, out);
  vr_tensor_free(p);
  vr_tensor_free(s);
  return st;
}
static vr_status f_select_expand(vr_tensor *const *in, void *ctx, vr_tensor **out) {
  vr_tensor *s = NULL, *u = NULL, *e = NULL;
  vr_status st = vr_select(in[0], 1, -1, &s);
  if (!st) st = vr_unsqueeze(s, 0, &u);
  if (!st) st = vr_expand(u, 3, (int64_t[]){3, -1, -1}, &e);
  if (!st) st = square(e, out);
  vr_tensor_free(s);
  vr_tensor_free(u);
  vr_tensor_free(e);
  return st;
}
static vr_status f_reshape_narrow(vr_tensor *const *in, void *ctx, vr_tensor **out) {
  vr_tensor *r = NULL, *n = NULL, *c = NULL, *q = NULL;
  vr_status st = vr_reshape(in[0], 2, (int64_t[]){-1, 2}, &r);
  if (!st) st = vr_narrow(r, 0, 1, 3, &n);
  if (!st) st = vr_contiguous(n, &c);
  if (!st) st = vr_flatten(c, 0, -1, &q);
  if (!st) st = square(q, out);
  vr_tensor_free(r);
  vr_tensor_free(n);
  vr_tensor_free(c);
  vr_tensor_free(q);
  return st;
}
static vr_status f_convert(vr_tensor *const *in, void *ctx, vr_tensor **out) {
  vr_tensor *c = NULL, *t = NULL;
  vr_status st = vr_tensor_clone(in[0], &c);
  if (!st) st = vr_transpose(c, 0, 1, &t);
  if (!st) st = square(t, out);
  vr_tensor_free(c);
  vr_tensor_free(t);
  return st;
}

START_TEST(view_gradients_match_finite_differences) {
  vr_tensor *x = tu_rand(VR_F64, 3, TU_SHAPE(2, 3, 5), 12);
  tu_gradcheck("permute+slice", 1, &x, 0, f_permute_slice, NULL, 1e-6, 1e-7);
  tu_gradcheck("select+expand", 1, &x, 0, f_select_expand, NULL, 1e-6, 1e-7);
  vr_tensor *t = tu_strided(2, TU_SHAPE(4, 3), 13);
  tu_gradcheck("strided reshape+narrow", 1, &t, 0, f_reshape_narrow, NULL, 1e-6, 1e-7);
  tu_gradcheck("clone+transpose", 1, &t, 0, f_convert, NULL, 1e-6, 1e-7);
  vr_tensor_free(x);
  vr_tensor_free(t);
}
END_TEST

Suite *autograd_suite(void) {
  Suite *s = suite_create("autograd");
  TCase *c = tcase_create("engine");
  tcase_set_timeout(c, 60);
  tcase_add_test(c, square_sum_gradient_and_accumulation);
  tcase_add_test(c, diamond_graph_sums_both_paths);
  tcase_add_test(c, leaf_gradients_do_not_alias);
  tcase_add_test(c, no_grad_records_nothing);
  tcase_add_test(c, detach_shares_storage_without_grad);
  tcase_add_test(c, in_place_change_of_a_saved_tensor_is_an_error);
  tcase_add_test(c, misuse_gets_clear_messages);
  tcase_add_test(c, explicit_output_gradient);
  tcase_add_test(c, a_deep_chain_frees_without_recursion);
  tcase_add_test(c, view_gradients_match_finite_differences);
  suite_add_tcase(s, c);
  return s;
}

VR_TEST_MAIN(autograd_suite)
