/* test_index.c: concat, stack, split, index_select, gather, scatter_add, where, masked_fill and
 * one_hot: values against hand-computed ones, strided inputs, gradients against finite
 * differences, determinism, and the messages of bad calls. */
#include "testutil.h"

static vr_tensor *idx64(int ndim, const int64_t *shape, const double *vals) { return tu_tensor(VR_I64, ndim, shape, vals); }

static void free_all(int n, vr_tensor **ts) {
  for (int k = 0; k < n; k++) vr_tensor_free(ts[k]);
}

/* ---------------------------------------------------------------- concat, stack, split */

START_TEST(concat_dim0_values) {
  vr_tensor *a = tu_tensor(VR_F32, 2, TU_SHAPE(2, 3), TU_VALS(1, 2, 3, 4, 5, 6));
  vr_tensor *b = tu_tensor(VR_F32, 2, TU_SHAPE(1, 3), TU_VALS(7, 8, 9)), *o = NULL;
  OK(vr_concat(2, (vr_tensor *[]){a, b}, 0, &o));
  ck_assert_int_eq(vr_tensor_size(o, 0), 3);
  tu_assert_values(o, TU_VALS(1, 2, 3, 4, 5, 6, 7, 8, 9), 9, 0, "concat dim 0");
  ck_assert(!vr_tensor_requires_grad(o));
  free_all(3, (vr_tensor *[]){a, b, o});
}
END_TEST

START_TEST(concat_last_dim_negative_and_strided) {
  vr_tensor *a = tu_tensor(VR_F64, 2, TU_SHAPE(2, 2), TU_VALS(1, 2, 3, 4));
  vr_tensor *b = tu_strided(2, TU_SHAPE(2, 3), 5), *o = NULL;
  ck_assert(!vr_tensor_is_contiguous(b));
  OK(vr_concat(2, (vr_tensor *[]){a, b}, -1, &o));
  ck_assert_int_eq(vr_tensor_size(o, 1), 5);
  for (int64_t i = 0; i < 2; i++)
    for (int64_t j = 0; j < 5; j++) {
      double got, want;
      OK(vr_tensor_get(o, (int64_t[]){i, j}, &got));
      if (j < 2) OK(vr_tensor_get(a, (int64_t[]){i, j}, &want));
      else OK(vr_tensor_get(b, (int64_t[]){i, j - 2}, &want));
      ck_assert_double_eq(got, want);
    }
  free_all(3, (vr_tensor *[]){a, b, o});
}
END_TEST

static vr_status f_concat(vr_tensor *const *in, void *ctx, vr_tensor **out) {
  int *p = ctx; /* p[0] n, p[1] dim */
  return vr_concat(p[0], in, p[1], out);
}

START_TEST(concat_gradcheck) {
  vr_tensor *in[3] = {tu_rand(VR_F64, 3, TU_SHAPE(2, 3, 2), 1), tu_strided(3, TU_SHAPE(2, 1, 2), 2),
                      tu_rand(VR_F64, 3, TU_SHAPE(2, 2, 2), 3)};
  int p[2] = {3, 1};
  tu_gradcheck("concat dim 1", 3, in, 0, f_concat, p, 1e-6, 1e-7);
  free_all(3, in);
}
END_TEST

START_TEST(concat_more_inputs_than_a_node_holds) {
  enum { N = 19 };
  vr_tensor *in[N];
  for (int k = 0; k < N; k++) in[k] = tu_rand(VR_F64, 1, TU_SHAPE(1 + k % 2), 10 + (uint64_t)k);
  int p[2] = {N, 0};
  tu_gradcheck("concat of 19", N, in, 0, f_concat, p, 1e-6, 1e-7);
  vr_tensor *o = NULL;
  OK(vr_concat(N, in, 0, &o));
  int64_t off = 0;
  for (int k = 0; k < N; k++)
    for (int64_t j = 0; j < vr_tensor_size(in[k], 0); j++, off++) {
      double a, b;
      OK(vr_tensor_get(o, &off, &a));
      OK(vr_tensor_get(in[k], &j, &b));
      ck_assert_double_eq(a, b);
    }
  ck_assert_int_eq(off, vr_tensor_numel(o));
  vr_tensor_free(o);
  free_all(N, in);
}
END_TEST

START_TEST(concat_errors_name_the_input) {
  vr_tensor *a = tu_rand(VR_F32, 2, TU_SHAPE(2, 3), 1), *b = tu_rand(VR_F64, 2, TU_SHAPE(2, 3), 2);
  vr_tensor *c = tu_rand(VR_F32, 2, TU_SHAPE(3, 3), 3), *d = tu_rand(VR_F32, 1, TU_SHAPE(3), 4), *o = NULL;
  FAILS(vr_concat(2, (vr_tensor *[]){a, b}, 0, &o), VR_E_DTYPE, "xs[1]: expected f32");
  FAILS(vr_concat(3, (vr_tensor *[]){a, a, c}, 1, &o), VR_E_SHAPE, "xs[2]: expected shape [2, 3] like xs[0] except at dim 1");
  FAILS(vr_concat(2, (vr_tensor *[]){a, d}, 0, &o), VR_E_SHAPE, "xs[1]");
  FAILS(vr_concat(2, (vr_tensor *[]){a, NULL}, 0, &o), VR_E_ARG, "xs[1]: expected a tensor");
  FAILS(vr_concat(0, (vr_tensor *[]){a}, 0, &o), VR_E_ARG, "n: expected at least 1");
  FAILS(vr_concat(1, (vr_tensor *[]){a}, 2, &o), VR_E_ARG, "dim");
  ck_assert_ptr_null(o);
  free_all(4, (vr_tensor *[]){a, b, c, d});
}
END_TEST

START_TEST(stack_middle_dim_values) {
  vr_tensor *a = tu_tensor(VR_F32, 2, TU_SHAPE(2, 2), TU_VALS(1, 2, 3, 4));
  vr_tensor *b = tu_tensor(VR_F32, 2, TU_SHAPE(2, 2), TU_VALS(5, 6, 7, 8)), *o = NULL, *o2 = NULL;
  OK(vr_stack(2, (vr_tensor *[]){a, b}, 1, &o));
  ck_assert_int_eq(vr_tensor_ndim(o), 3);
  ck_assert_int_eq(vr_tensor_size(o, 1), 2);
  tu_assert_values(o, TU_VALS(1, 2, 5, 6, 3, 4, 7, 8), 8, 0, "stack dim 1");
  OK(vr_stack(2, (vr_tensor *[]){a, b}, -1, &o2));
  tu_assert_values(o2, TU_VALS(1, 5, 2, 6, 3, 7, 4, 8), 8, 0, "stack dim -1");
  free_all(4, (vr_tensor *[]){a, b, o, o2});
}
END_TEST

static vr_status f_stack(vr_tensor *const *in, void *ctx, vr_tensor **out) { return vr_stack(3, in, *(int *)ctx, out); }

START_TEST(stack_gradcheck) {
  vr_tensor *in[3] = {tu_rand(VR_F64, 2, TU_SHAPE(2, 3), 1), tu_strided(2, TU_SHAPE(2, 3), 2),
                      tu_rand(VR_F64, 2, TU_SHAPE(2, 3), 3)};
  for (int dim = 0; dim <= 2; dim++) tu_gradcheck("stack", 3, in, 0, f_stack, &dim, 1e-6, 1e-7);
  free_all(3, in);
}
END_TEST

START_TEST(stack_errors_name_the_input) {
  vr_tensor *a = tu_rand(VR_F32, 2, TU_SHAPE(2, 3), 1), *c = tu_rand(VR_F32, 2, TU_SHAPE(3, 2), 3), *o = NULL;
  FAILS(vr_stack(3, (vr_tensor *[]){a, a, c}, 0, &o), VR_E_SHAPE, "xs[2]: expected shape [2, 3] like xs[0], got [3, 2]");
  FAILS(vr_stack(2, (vr_tensor *[]){a, a}, 3, &o), VR_E_ARG, "dim: expected -3..2");
  free_all(2, (vr_tensor *[]){a, c});
}
END_TEST

START_TEST(split_gives_views) {
  vr_tensor *x = tu_tensor(VR_F32, 2, TU_SHAPE(2, 5), TU_VALS(0, 1, 2, 3, 4, 5, 6, 7, 8, 9)), *p[3] = {0};
  OK(vr_split(x, 3, TU_SHAPE(2, 0, 3), 1, p));
  ck_assert(vr_tensor_shares_storage(x, p[0]) && vr_tensor_shares_storage(x, p[2]));
  tu_assert_values(p[0], TU_VALS(0, 1, 5, 6), 4, 0, "piece 0");
  ck_assert_int_eq(vr_tensor_numel(p[1]), 0);
  tu_assert_values(p[2], TU_VALS(2, 3, 4, 7, 8, 9), 6, 0, "piece 2");
  free_all(3, p);
  vr_tensor_free(x);
}
END_TEST

static vr_status f_split(vr_tensor *const *in, void *ctx, vr_tensor **out) {
  vr_tensor *p[2] = {0};
  vr_status st = vr_split(in[0], 2, TU_SHAPE(1, 3), 0, p);
  /* recombine the pieces in the other order so both gradients are exercised */
  if (!st) st = vr_concat(2, (vr_tensor *[]){p[1], p[0]}, 0, out);
  free_all(2, p);
  return st;
}

START_TEST(split_gradcheck) {
  vr_tensor *x = tu_strided(2, TU_SHAPE(4, 3), 7);
  tu_gradcheck("split", 1, &x, 0, f_split, NULL, 1e-6, 1e-7);
  vr_tensor_free(x);
}
END_TEST

START_TEST(split_errors) {
  vr_tensor *x = tu_rand(VR_F32, 2, TU_SHAPE(4, 3), 1), *p[2] = {0};
  FAILS(vr_split(x, 2, TU_SHAPE(1, 2), 0, p), VR_E_SHAPE, "sizes: expected sizes summing to 4");
  FAILS(vr_split(x, 2, TU_SHAPE(5, -1), 0, p), VR_E_ARG, "sizes[1]");
  FAILS(vr_split(x, 1, TU_SHAPE(4), 2, p), VR_E_ARG, "dim");
  ck_assert_ptr_null(p[0]);
  vr_tensor_free(x);
}
END_TEST

/* ---------------------------------------------------------------- index_select */

START_TEST(index_select_values) {
  vr_tensor *x = tu_tensor(VR_F32, 2, TU_SHAPE(3, 2), TU_VALS(1, 2, 3, 4, 5, 6));
  vr_tensor *i64 = idx64(1, TU_SHAPE(4), TU_VALS(2, 0, 2, 1)), *i32 = tu_tensor(VR_I32, 1, TU_SHAPE(3), TU_VALS(1, 1, 0));
  vr_tensor *a = NULL, *b = NULL;
  OK(vr_index_select(x, 0, i64, &a));
  tu_assert_values(a, TU_VALS(5, 6, 1, 2, 5, 6, 3, 4), 8, 0, "rows");
  OK(vr_index_select(x, -1, i32, &b));
  tu_assert_values(b, TU_VALS(2, 2, 1, 4, 4, 3, 6, 6, 5), 9, 0, "columns, i32 index");
  free_all(5, (vr_tensor *[]){x, i64, i32, a, b});
}
END_TEST

START_TEST(index_select_strided_and_integer) {
  vr_tensor *x = tu_strided(3, TU_SHAPE(2, 4, 3), 3), *ix = idx64(1, TU_SHAPE(2), TU_VALS(3, 0)), *o = NULL;
  OK(vr_index_select(x, 1, ix, &o));
  for (int64_t a = 0; a < 2; a++)
    for (int64_t k = 0; k < 2; k++)
      for (int64_t c = 0; c < 3; c++) {
        double got, want;
        OK(vr_tensor_get(o, (int64_t[]){a, k, c}, &got));
        OK(vr_tensor_get(x, (int64_t[]){a, k ? 0 : 3, c}, &want));
        ck_assert_double_eq(got, want);
      }
  vr_tensor *xi = tu_tensor(VR_I64, 1, TU_SHAPE(3), TU_VALS(10, -20, 30)), *oi = NULL;
  vr_tensor_free(ix);
  ix = idx64(1, TU_SHAPE(2), TU_VALS(1, 2));
  OK(vr_index_select(xi, 0, ix, &oi));
  tu_assert_values(oi, TU_VALS(-20, 30), 2, 0, "i64 data");
  free_all(5, (vr_tensor *[]){x, ix, o, xi, oi});
}
END_TEST

typedef struct { vr_tensor *ix; int dim; } isel_arg;
static vr_status f_index_select(vr_tensor *const *in, void *ctx, vr_tensor **out) {
  isel_arg *p = ctx;
  return vr_index_select(in[0], p->dim, p->ix, out);
}

START_TEST(index_select_gradcheck_with_repeats) {
  vr_tensor *ix = idx64(1, TU_SHAPE(5), TU_VALS(1, 0, 1, 1, 2));
  for (int dim = 0; dim < 3; dim++) {
    isel_arg ctx = {ix, dim};
    vr_tensor *x = tu_rand(VR_F64, 3, TU_SHAPE(3, 3, 3), 20 + (uint64_t)dim), *xs = tu_strided(3, TU_SHAPE(3, 4, 3), 30);
    tu_gradcheck("index_select", 1, &x, 0, f_index_select, &ctx, 1e-6, 1e-7);
    tu_gradcheck("index_select strided", 1, &xs, 0, f_index_select, &ctx, 1e-6, 1e-7);
    free_all(2, (vr_tensor *[]){x, xs});
  }
  vr_tensor_free(ix);
}
END_TEST

START_TEST(index_select_errors) {
  vr_tensor *x = tu_rand(VR_F32, 2, TU_SHAPE(4, 3), 1), *o = NULL;
  vr_tensor *bad = idx64(1, TU_SHAPE(3), TU_VALS(0, 5, 1)), *neg = idx64(1, TU_SHAPE(1), TU_VALS(-1));
  vr_tensor *fl = tu_tensor(VR_F32, 1, TU_SHAPE(1), TU_VALS(0)), *two = idx64(2, TU_SHAPE(1, 1), TU_VALS(0));
  FAILS(vr_index_select(x, 0, bad, &o), VR_E_ARG, "index: expected values in 0..3 (dim 0 of x has size 4), got 5 at element 1");
  FAILS(vr_index_select(x, 1, neg, &o), VR_E_ARG, "got -1");
  FAILS(vr_index_select(x, 0, fl, &o), VR_E_DTYPE, "index: expected an i64 or i32 tensor, got f32");
  FAILS(vr_index_select(x, 0, two, &o), VR_E_SHAPE, "index: expected 1 dim");
  FAILS(vr_index_select(x, 2, neg, &o), VR_E_ARG, "dim");
  FAILS(vr_index_select(NULL, 0, neg, &o), VR_E_ARG, "x: expected a tensor");
  ck_assert_ptr_null(o);
  free_all(5, (vr_tensor *[]){x, bad, neg, fl, two});
}
END_TEST

/* ---------------------------------------------------------------- gather and scatter_add */

START_TEST(gather_values) {
  vr_tensor *x = tu_tensor(VR_F32, 2, TU_SHAPE(2, 3), TU_VALS(1, 2, 3, 4, 5, 6));
  vr_tensor *i1 = idx64(2, TU_SHAPE(2, 2), TU_VALS(2, 0, 1, 1)), *i0 = idx64(2, TU_SHAPE(1, 3), TU_VALS(1, 0, 1));
  vr_tensor *a = NULL, *b = NULL;
  OK(vr_gather(x, 1, i1, &a));
  tu_assert_values(a, TU_VALS(3, 1, 5, 5), 4, 0, "gather dim 1");
  OK(vr_gather(x, 0, i0, &b));
  tu_assert_values(b, TU_VALS(4, 2, 6), 3, 0, "gather dim 0");
  free_all(5, (vr_tensor *[]){x, i1, i0, a, b});
}
END_TEST

START_TEST(gather_strided_smaller_index) {
  vr_tensor *x = tu_strided(3, TU_SHAPE(3, 4, 5), 9), *o = NULL;
  vr_tensor *ix = idx64(3, TU_SHAPE(2, 3, 2), TU_VALS(4, 0, 1, 1, 3, 2, 0, 0, 4, 4, 2, 1));
  OK(vr_gather(x, 2, ix, &o));
  int64_t k = 0;
  double *iv = tu_values(ix);
  for (int64_t a = 0; a < 2; a++)
    for (int64_t b = 0; b < 3; b++)
      for (int64_t c = 0; c < 2; c++, k++) {
        double got, want;
        OK(vr_tensor_get(o, (int64_t[]){a, b, c}, &got));
        OK(vr_tensor_get(x, (int64_t[]){a, b, (int64_t)iv[k]}, &want));
        ck_assert_double_eq(got, want);
      }
  free(iv);
  free_all(3, (vr_tensor *[]){x, ix, o});
}
END_TEST

static vr_status f_gather(vr_tensor *const *in, void *ctx, vr_tensor **out) {
  return vr_gather(in[0], 1, (vr_tensor *)ctx, out);
}

START_TEST(gather_gradcheck) {
  vr_tensor *ix = idx64(2, TU_SHAPE(3, 4), TU_VALS(0, 0, 2, 1, 1, 1, 1, 1, 2, 0, 2, 0));
  vr_tensor *x = tu_rand(VR_F64, 2, TU_SHAPE(3, 3), 1), *xs = tu_strided(2, TU_SHAPE(4, 3), 2);
  tu_gradcheck("gather", 1, &x, 0, f_gather, ix, 1e-6, 1e-7);
  tu_gradcheck("gather strided, smaller index", 1, &xs, 0, f_gather, ix, 1e-6, 1e-7);
  free_all(3, (vr_tensor *[]){ix, x, xs});
}
END_TEST

START_TEST(scatter_add_values_with_duplicates) {
  vr_tensor *x = tu_tensor(VR_F32, 2, TU_SHAPE(2, 3), TU_VALS(1, 1, 1, 1, 1, 1));
  vr_tensor *ix = idx64(2, TU_SHAPE(2, 2), TU_VALS(0, 0, 2, 1));
  vr_tensor *src = tu_tensor(VR_F32, 2, TU_SHAPE(2, 2), TU_VALS(10, 20, 30, 40)), *o = NULL, *o0 = NULL;
  OK(vr_scatter_add(x, 1, ix, src, &o));
  tu_assert_values(o, TU_VALS(31, 1, 1, 1, 41, 31), 6, 0, "scatter_add dim 1");
  tu_assert_values(x, TU_VALS(1, 1, 1, 1, 1, 1), 6, 0, "x untouched");
  vr_tensor *ix0 = idx64(2, TU_SHAPE(2, 2), TU_VALS(1, 0, 0, 1));
  OK(vr_scatter_add(x, 0, ix0, src, &o0));
  tu_assert_values(o0, TU_VALS(31, 21, 1, 11, 41, 1), 6, 0, "scatter_add dim 0");
  vr_tensor *xi = tu_tensor(VR_I64, 1, TU_SHAPE(2), TU_VALS(5, 5)), *ii = idx64(1, TU_SHAPE(3), TU_VALS(1, 1, 0));
  vr_tensor *si = tu_tensor(VR_I64, 1, TU_SHAPE(3), TU_VALS(1, 2, 3)), *oi = NULL;
  OK(vr_scatter_add(xi, 0, ii, si, &oi));
  tu_assert_values(oi, TU_VALS(8, 8), 2, 0, "i64 scatter_add");
  free_all(10, (vr_tensor *[]){x, ix, src, o, o0, xi, ii, si, oi, ix0});
}
END_TEST

static vr_status f_scatter(vr_tensor *const *in, void *ctx, vr_tensor **out) {
  return vr_scatter_add(in[0], 0, (vr_tensor *)ctx, in[1], out);
}

START_TEST(scatter_add_gradcheck) {
  vr_tensor *ix = idx64(2, TU_SHAPE(3, 2), TU_VALS(1, 0, 1, 2, 3, 2));
  vr_tensor *in[2] = {tu_strided(2, TU_SHAPE(4, 2), 1), tu_rand(VR_F64, 2, TU_SHAPE(3, 2), 2)};
  tu_gradcheck("scatter_add", 2, in, 0, f_scatter, ix, 1e-6, 1e-7);
  vr_tensor *big[2] = {tu_rand(VR_F64, 2, TU_SHAPE(4, 2), 3), tu_strided(2, TU_SHAPE(5, 3), 4)};
  tu_gradcheck("scatter_add, src larger than index", 2, big, 0, f_scatter, ix, 1e-6, 1e-7);
  free_all(5, (vr_tensor *[]){ix, in[0], in[1], big[0], big[1]});
}
END_TEST

/* the same bits whatever the thread count */
START_TEST(scatter_and_index_select_backward_are_deterministic) {
  vr_generator *g = NULL;
  OK(vr_generator_new(3, 0, &g));
  vr_tensor *ix = NULL, *src = NULL, *x = NULL, *r1 = NULL, *r2 = NULL, *gx1 = NULL, *gx2 = NULL;
  OK(vr_rand_int(g, 2, TU_SHAPE(4000, 16), 0, 7, VR_I64, VR_CPU, &ix));
  OK(vr_rand_normal(g, 2, TU_SHAPE(4000, 16), 0, 1, VR_F32, VR_CPU, &src));
  OK(vr_tensor_zeros(2, TU_SHAPE(7, 16), VR_F32, VR_CPU, &x));
  int nt = vr_num_threads();
  vr_set_num_threads(1);
  OK(vr_scatter_add(x, 0, ix, src, &r1));
  vr_set_num_threads(nt > 1 ? nt : 2);
  OK(vr_scatter_add(x, 0, ix, src, &r2));
  vr_set_num_threads(nt);
  tu_assert_close(r1, r2, 0, 0, "scatter_add threads");
  /* index_select backward through autograd */
  vr_tensor *w = NULL, *sel = NULL, *flat = NULL;
  OK(vr_rand_normal(g, 2, TU_SHAPE(7, 16), 0, 1, VR_F32, VR_CPU, &w));
  OK(vr_tensor_set_requires_grad(w, 1));
  OK(vr_flatten(ix, 0, -1, &flat));
  for (int rep = 0; rep < 2; rep++) {
    vr_set_num_threads(rep ? (nt > 1 ? nt : 2) : 1);
    vr_tensor *gout = NULL;
    OK(vr_index_select(w, 0, flat, &sel));
    OK(vr_tensor_ones(2, TU_SHAPE(64000, 16), VR_F32, VR_CPU, &gout));
    OK(vr_backward(sel, gout, 0));
    if (rep) gx2 = vr_tensor_grad(w);
    else gx1 = vr_tensor_grad(w);
    vr_tensor_set_grad(w, NULL);
    free_all(2, (vr_tensor *[]){sel, gout});
  }
  vr_set_num_threads(nt);
  tu_assert_close(gx1, gx2, 0, 0, "index_select backward threads");
  free_all(10, (vr_tensor *[]){ix, src, x, r1, r2, gx1, gx2, w, flat, NULL});
  vr_generator_free(g);
}
END_TEST

START_TEST(gather_scatter_errors) {
  vr_tensor *x = tu_rand(VR_F32, 2, TU_SHAPE(2, 3), 1), *o = NULL;
  vr_tensor *ix = idx64(2, TU_SHAPE(2, 2), TU_VALS(0, 3, 1, 1)), *ok = idx64(2, TU_SHAPE(2, 2), TU_VALS(0, 2, 1, 1));
  vr_tensor *ix1 = idx64(1, TU_SHAPE(2), TU_VALS(0, 1)), *big = idx64(2, TU_SHAPE(3, 1), TU_VALS(0, 0, 0));
  vr_tensor *s64 = tu_rand(VR_F64, 2, TU_SHAPE(2, 2), 2), *small = tu_rand(VR_F32, 2, TU_SHAPE(2, 1), 3);
  FAILS(vr_gather(x, 1, ix, &o), VR_E_ARG, "index: expected values in 0..2 (dim 1 of x has size 3), got 3 at element 1");
  FAILS(vr_gather(x, 1, ix1, &o), VR_E_SHAPE, "index: expected 2 dims like x");
  FAILS(vr_gather(x, 1, big, &o), VR_E_SHAPE, "index: expected sizes <= x's [2, 3] except at dim 1");
  FAILS(vr_scatter_add(x, 1, ok, s64, &o), VR_E_DTYPE, "src: expected f32 like x, got f64");
  FAILS(vr_scatter_add(x, 1, ok, small, &o), VR_E_SHAPE, "src: expected sizes >= index's [2, 2]");
  FAILS(vr_scatter_add(x, 0, ok, x, &o), VR_E_ARG, "index: expected values in 0..1 (dim 0 of x has size 2), got 2");
  FAILS(vr_scatter_add(x, 1, ok, NULL, &o), VR_E_ARG, "src: expected a tensor");
  ck_assert_ptr_null(o);
  free_all(7, (vr_tensor *[]){x, ix, ok, ix1, big, s64, small});
}
END_TEST

/* stride-0 (broadcast) views go through every op like any other strides */
static vr_status f_expand_concat_gather(vr_tensor *const *in, void *ctx, vr_tensor **out) {
  vr_tensor *e = NULL, *c = NULL;
  vr_status st = vr_expand(in[0], 2, TU_SHAPE(3, 4), &e);
  if (!st) st = vr_concat(2, (vr_tensor *[]){e, in[1]}, 0, &c);
  if (!st) st = vr_gather(c, 1, (vr_tensor *)ctx, out);
  vr_tensor_free(e);
  vr_tensor_free(c);
  return st;
}

START_TEST(broadcast_views_as_inputs) {
  vr_tensor *b = tu_tensor(VR_F32, 2, TU_SHAPE(1, 3), TU_VALS(1, 2, 3)), *e = NULL, *o = NULL, *c = NULL;
  vr_tensor *ix = idx64(1, TU_SHAPE(2), TU_VALS(3, 0));
  OK(vr_expand(b, 2, TU_SHAPE(4, 3), &e));
  OK(vr_index_select(e, 0, ix, &o));
  tu_assert_values(o, TU_VALS(1, 2, 3, 1, 2, 3), 6, 0, "index_select of an expanded view");
  OK(vr_concat(2, (vr_tensor *[]){e, b}, 0, &c));
  tu_assert_values(c, TU_VALS(1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3), 15, 0, "concat of an expanded view");
  vr_tensor *gi = idx64(2, TU_SHAPE(5, 2), TU_VALS(3, 0, 1, 1, 2, 0, 0, 3, 2, 2));
  vr_tensor *in[2] = {tu_rand(VR_F64, 1, TU_SHAPE(4), 1), tu_strided(2, TU_SHAPE(2, 4), 2)};
  tu_gradcheck("expand+concat+gather", 2, in, 0, f_expand_concat_gather, gi, 1e-6, 1e-7);
  free_all(9, (vr_tensor *[]){b, e, o, c, ix, gi, in[0], in[1], NULL});
}
END_TEST

/* ---------------------------------------------------------------- where, masked_fill, one_hot */

START_TEST(where_broadcasts) {
  vr_tensor *c = tu_tensor(VR_U8, 2, TU_SHAPE(2, 3), TU_VALS(1, 0, 1, 0, 0, 1));
  vr_tensor *a = tu_tensor(VR_F32, 2, TU_SHAPE(2, 1), TU_VALS(10, 20));
  vr_tensor *b = tu_tensor(VR_F32, 1, TU_SHAPE(3), TU_VALS(1, 2, 3)), *o = NULL, *o2 = NULL;
  OK(vr_where(c, a, b, &o));
  tu_assert_values(o, TU_VALS(10, 2, 10, 1, 2, 20), 6, 0, "where");
  vr_tensor *c1 = tu_tensor(VR_U8, 1, TU_SHAPE(1), TU_VALS(0));
  OK(vr_where(c1, a, b, &o2)); /* the broadcast of all three */
  ck_assert_int_eq(vr_tensor_size(o2, 0), 2);
  tu_assert_values(o2, TU_VALS(1, 2, 3, 1, 2, 3), 6, 0, "where all false");
  free_all(6, (vr_tensor *[]){c, a, b, o, o2, c1});
}
END_TEST

START_TEST(where_strided_f64_and_u8_data) {
  vr_tensor *a = tu_strided(2, TU_SHAPE(3, 4), 1), *b = tu_strided(2, TU_SHAPE(3, 4), 2), *o = NULL, *c = NULL, *t = NULL;
  vr_tensor *cb = tu_tensor(VR_U8, 2, TU_SHAPE(4, 3), TU_VALS(1, 0, 0, 1, 1, 0, 0, 0, 1, 1, 1, 1));
  OK(vr_transpose(cb, 0, 1, &c));
  vr_tensor_free(cb);
  OK(vr_where(c, a, b, &o));
  for (int64_t i = 0; i < 3; i++)
    for (int64_t j = 0; j < 4; j++) {
      double m, got, want;
      OK(vr_tensor_get(c, (int64_t[]){i, j}, &m));
      OK(vr_tensor_get(m ? a : b, (int64_t[]){i, j}, &want));
      OK(vr_tensor_get(o, (int64_t[]){i, j}, &got));
      ck_assert_double_eq(got, want);
    }
  vr_tensor *ua = tu_tensor(VR_U8, 1, TU_SHAPE(2), TU_VALS(7, 8)), *ub = tu_tensor(VR_U8, 1, TU_SHAPE(1), TU_VALS(9));
  vr_tensor *cm = tu_tensor(VR_U8, 1, TU_SHAPE(2), TU_VALS(0, 1));
  OK(vr_where(cm, ua, ub, &t));
  tu_assert_values(t, TU_VALS(9, 8), 2, 0, "u8 where");
  free_all(8, (vr_tensor *[]){a, b, o, t, ua, ub, cm, c});
}
END_TEST

static vr_status f_where(vr_tensor *const *in, void *ctx, vr_tensor **out) {
  return vr_where((vr_tensor *)ctx, in[0], in[1], out);
}

START_TEST(where_gradcheck_broadcast) {
  vr_tensor *c = tu_tensor(VR_U8, 2, TU_SHAPE(3, 4), TU_VALS(1, 0, 1, 0, 0, 0, 1, 1, 1, 0, 0, 1));
  vr_tensor *in[2] = {tu_rand(VR_F64, 2, TU_SHAPE(3, 1), 1), tu_rand(VR_F64, 1, TU_SHAPE(4), 2)};
  tu_gradcheck("where broadcast", 2, in, 0, f_where, c, 1e-6, 1e-7);
  vr_tensor *st[2] = {tu_strided(2, TU_SHAPE(3, 4), 3), tu_rand(VR_F64, 2, TU_SHAPE(3, 4), 4)};
  tu_gradcheck("where strided", 2, st, 0, f_where, c, 1e-6, 1e-7);
  vr_tensor *in3[2] = {tu_rand(VR_F64, 3, TU_SHAPE(2, 3, 4), 5), tu_rand(VR_F64, 0, NULL, 6)};
  tu_gradcheck("where, scalar b, cond broadcast", 2, in3, 0, f_where, c, 1e-6, 1e-7);
  free_all(7, (vr_tensor *[]){c, in[0], in[1], st[0], st[1], in3[0], in3[1]});
}
END_TEST

START_TEST(where_errors) {
  vr_tensor *a = tu_rand(VR_F32, 2, TU_SHAPE(2, 3), 1), *b64 = tu_rand(VR_F64, 2, TU_SHAPE(2, 3), 2);
  vr_tensor *b4 = tu_rand(VR_F32, 1, TU_SHAPE(4), 3), *cf = tu_rand(VR_F32, 2, TU_SHAPE(2, 3), 4);
  vr_tensor *c = tu_tensor(VR_U8, 1, TU_SHAPE(3), TU_VALS(1, 0, 1)), *o = NULL;
  FAILS(vr_where(cf, a, a, &o), VR_E_DTYPE, "cond: expected a u8 mask, got f32");
  FAILS(vr_where(c, a, b64, &o), VR_E_DTYPE, "b: expected f32 like a, got f64");
  FAILS(vr_where(c, a, b4, &o), VR_E_SHAPE, "b: expected a shape that broadcasts with the others, got [4]");
  FAILS(vr_where(c, NULL, a, &o), VR_E_ARG, "a: expected a tensor");
  FAILS(vr_masked_fill(b4, c, 0, &o), VR_E_SHAPE, "mask: expected a shape that broadcasts to x's [4], got [3]");
  FAILS(vr_masked_fill(a, cf, 0, &o), VR_E_DTYPE, "mask: expected a u8 mask");
  ck_assert_ptr_null(o);
  free_all(5, (vr_tensor *[]){a, b64, b4, cf, c});
}
END_TEST

START_TEST(masked_fill_values) {
  vr_tensor *x = tu_tensor(VR_F32, 2, TU_SHAPE(2, 3), TU_VALS(1, 2, 3, 4, 5, 6));
  vr_tensor *m = tu_tensor(VR_U8, 1, TU_SHAPE(3), TU_VALS(0, 1, 0)), *o = NULL, *oi = NULL;
  OK(vr_masked_fill(x, m, -100, &o));
  tu_assert_values(o, TU_VALS(1, -100, 3, 4, -100, 6), 6, 0, "masked_fill");
  vr_tensor *xi = tu_tensor(VR_I32, 1, TU_SHAPE(3), TU_VALS(1, 2, 3));
  OK(vr_masked_fill(xi, m, 42, &oi));
  tu_assert_values(oi, TU_VALS(1, 42, 3), 3, 0, "masked_fill i32");
  free_all(5, (vr_tensor *[]){x, m, o, xi, oi});
}
END_TEST

static vr_status f_masked(vr_tensor *const *in, void *ctx, vr_tensor **out) {
  return vr_masked_fill(in[0], (vr_tensor *)ctx, 3.5, out);
}

START_TEST(masked_fill_gradcheck) {
  vr_tensor *m = tu_tensor(VR_U8, 2, TU_SHAPE(4, 1), TU_VALS(1, 0, 0, 1));
  vr_tensor *x = tu_strided(2, TU_SHAPE(4, 3), 1);
  tu_gradcheck("masked_fill", 1, &x, 0, f_masked, m, 1e-6, 1e-7);
  /* the gradient is zero exactly where the mask is set */
  vr_tensor *o = NULL, *w = NULL, *g = NULL;
  OK(vr_tensor_set_requires_grad(x, 1));
  OK(vr_masked_fill(x, m, 0, &o));
  OK(vr_tensor_ones(2, TU_SHAPE(4, 3), VR_F64, VR_CPU, &w));
  OK(vr_backward(o, w, 0));
  g = vr_tensor_grad(x);
  tu_assert_values(g, TU_VALS(0, 0, 0, 1, 1, 1, 1, 1, 1, 0, 0, 0), 12, 0, "mask gradient");
  free_all(5, (vr_tensor *[]){m, x, o, w, g});
}
END_TEST

START_TEST(one_hot_values_and_errors) {
  vr_tensor *ix = tu_tensor(VR_I32, 2, TU_SHAPE(2, 2), TU_VALS(0, 2, 1, 2)), *o = NULL, *bad = NULL;
  OK(vr_one_hot(ix, 3, VR_F32, &o));
  ck_assert_int_eq(vr_tensor_ndim(o), 3);
  ck_assert_int_eq(vr_tensor_dtype(o), VR_F32);
  tu_assert_values(o, TU_VALS(1, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 1), 12, 0, "one_hot");
  vr_tensor *o8 = NULL;
  OK(vr_one_hot(ix, 4, VR_U8, &o8));
  tu_assert_values(o8, TU_VALS(1, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 1, 0), 16, 0, "one_hot u8");
  FAILS(vr_one_hot(ix, 2, VR_F32, &bad), VR_E_ARG, "index: expected values in 0..1 (num_classes is 2), got 2 at element 1");
  FAILS(vr_one_hot(ix, 0, VR_F32, &bad), VR_E_ARG, "num_classes: expected >= 1");
  FAILS(vr_one_hot(o, 3, VR_F32, &bad), VR_E_DTYPE, "index: expected an i64 or i32 tensor");
  ck_assert_ptr_null(bad);
  free_all(3, (vr_tensor *[]){ix, o, o8});
}
END_TEST

/* ---------------------------------------------------------------- CUDA parity */

/* runs op on CPU inputs and on their CUDA copies and compares; skips (and says so) without a GPU
 * or while the op has no CUDA kernel */
typedef vr_status (*op_fn)(vr_tensor *const *in, vr_tensor **out);
static void parity(const char *name, int n, vr_tensor *const *in, op_fn f, double tol) {
  vr_tensor *cin[4] = {0}, *ref = NULL, *got = NULL;
  for (int k = 0; k < n; k++) OK(vr_tensor_to_device(in[k], VR_CUDA, &cin[k]));
  OK(f(in, &ref));
  vr_status st = f(cin, &got);
  if (st == VR_E_UNSUPPORTED) printf("SKIP %s on cuda: %s\n", name, vr_last_error());
  else {
    ck_assert_msg(st == VR_OK, "%s on cuda: %s", name, vr_last_error());
    ck_assert_int_eq(vr_tensor_device(got), VR_CUDA);
    tu_assert_close(got, ref, tol, tol, name);
  }
  for (int k = 0; k < n; k++) vr_tensor_free(cin[k]);
  vr_tensor_free(ref);
  vr_tensor_free(got);
}
static vr_status p_concat(vr_tensor *const *in, vr_tensor **out) { return vr_concat(2, in, 1, out); }
static vr_status p_stack(vr_tensor *const *in, vr_tensor **out) { return vr_stack(2, in, 0, out); }
static vr_status p_index_select(vr_tensor *const *in, vr_tensor **out) { return vr_index_select(in[0], 0, in[1], out); }
static vr_status p_gather(vr_tensor *const *in, vr_tensor **out) { return vr_gather(in[0], 1, in[1], out); }
static vr_status p_scatter_add(vr_tensor *const *in, vr_tensor **out) { return vr_scatter_add(in[0], 1, in[1], in[2], out); }
static vr_status p_where(vr_tensor *const *in, vr_tensor **out) { return vr_where(in[2], in[0], in[1], out); }
static vr_status p_one_hot(vr_tensor *const *in, vr_tensor **out) { return vr_one_hot(in[0], 70, VR_F32, out); }
/* index_select backward: the gradient of sum(w * index_select(x)) with respect to x */
static vr_status p_index_select_bwd(vr_tensor *const *in, vr_tensor **out) {
  vr_tensor *x = NULL, *y = NULL;
  vr_status st = vr_tensor_clone(in[0], &x);
  if (!st) st = vr_detach(x, &y);
  vr_tensor_free(x);
  x = y;
  y = NULL;
  if (!st) st = vr_tensor_set_requires_grad(x, 1);
  if (!st) st = vr_index_select(x, 0, in[1], &y);
  if (!st) st = vr_backward(y, in[2], 0);
  if (!st) *out = vr_tensor_grad(x);
  vr_tensor_free(x);
  vr_tensor_free(y);
  return st;
}

START_TEST(cuda_parity) {
  TU_SKIP_NO_CUDA();
  vr_generator *g = NULL;
  OK(vr_generator_new(5, 0, &g));
  vr_tensor *a = NULL, *b = NULL, *ix = NULL, *gix = NULL, *src = NULL, *c = NULL, *w = NULL;
  OK(vr_rand_normal(g, 2, TU_SHAPE(300, 70), 0, 1, VR_F32, VR_CPU, &a));
  OK(vr_rand_normal(g, 2, TU_SHAPE(300, 70), 0, 1, VR_F32, VR_CPU, &b));
  OK(vr_rand_int(g, 1, TU_SHAPE(500), 0, 300, VR_I64, VR_CPU, &ix));
  OK(vr_rand_int(g, 2, TU_SHAPE(300, 90), 0, 70, VR_I64, VR_CPU, &gix));
  OK(vr_rand_normal(g, 2, TU_SHAPE(300, 90), 0, 1, VR_F32, VR_CPU, &src));
  OK(vr_rand_int(g, 2, TU_SHAPE(300, 70), 0, 2, VR_U8, VR_CPU, &c));
  OK(vr_rand_normal(g, 2, TU_SHAPE(500, 70), 0, 1, VR_F32, VR_CPU, &w));
  parity("concat", 2, (vr_tensor *[]){a, b}, p_concat, 0);
  parity("stack", 2, (vr_tensor *[]){a, b}, p_stack, 0);
  parity("index_select", 2, (vr_tensor *[]){a, ix}, p_index_select, 0);
  parity("index_select backward", 3, (vr_tensor *[]){a, ix, w}, p_index_select_bwd, 1e-5);
  parity("gather", 2, (vr_tensor *[]){a, gix}, p_gather, 0);
  parity("scatter_add", 3, (vr_tensor *[]){a, gix, src}, p_scatter_add, 1e-5);
  parity("where", 3, (vr_tensor *[]){a, b, c}, p_where, 0);
  parity("one_hot", 1, (vr_tensor *[]){gix}, p_one_hot, 0);
  free_all(7, (vr_tensor *[]){a, b, ix, gix, src, c, w});
  vr_generator_free(g);
}
END_TEST

Suite *index_suite(void) {
  Suite *s = suite_create("index");
  TCase *j = tcase_create("join");
  tcase_set_timeout(j, 60);
  tcase_add_test(j, concat_dim0_values);
  tcase_add_test(j, concat_last_dim_negative_and_strided);
  tcase_add_test(j, concat_gradcheck);
  tcase_add_test(j, concat_more_inputs_than_a_node_holds);
  tcase_add_test(j, concat_errors_name_the_input);
  tcase_add_test(j, stack_middle_dim_values);
  tcase_add_test(j, stack_gradcheck);
  tcase_add_test(j, stack_errors_name_the_input);
  tcase_add_test(j, split_gives_views);
  tcase_add_test(j, split_gradcheck);
  tcase_add_test(j, split_errors);
  suite_add_tcase(s, j);
  TCase *c = tcase_create("index");
  tcase_set_timeout(c, 60);
  tcase_add_test(c, index_select_values);
  tcase_add_test(c, index_select_strided_and_integer);
  tcase_add_test(c, index_select_gradcheck_with_repeats);
  tcase_add_test(c, index_select_errors);
  tcase_add_test(c, gather_values);
  tcase_add_test(c, gather_strided_smaller_index);
  tcase_add_test(c, gather_gradcheck);
  tcase_add_test(c, scatter_add_values_with_duplicates);
  tcase_add_test(c, scatter_add_gradcheck);
  tcase_add_test(c, scatter_and_index_select_backward_are_deterministic);
  tcase_add_test(c, gather_scatter_errors);
  tcase_add_test(c, broadcast_views_as_inputs);
  suite_add_tcase(s, c);
  TCase *w = tcase_create("where");
  tcase_set_timeout(w, 60);
  tcase_add_test(w, where_broadcasts);
  tcase_add_test(w, where_strided_f64_and_u8_data);
  tcase_add_test(w, where_gradcheck_broadcast);
  tcase_add_test(w, where_errors);
  tcase_add_test(w, masked_fill_values);
  tcase_add_test(w, masked_fill_gradcheck);
  tcase_add_test(w, one_hot_values_and_errors);
  suite_add_tcase(s, w);
  TCase *g = tcase_create("cuda");
  tcase_set_timeout(g, 60);
  tcase_add_test(g, cuda_parity);
  suite_add_tcase(s, g);
  return s;
}

VR_TEST_MAIN(index_suite)
