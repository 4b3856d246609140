/* test_sort.c: sort, argsort and topk: values and indices against an independent stable
 * reference, ties, descending order, NaN and signed zeros, every dtype, any dim, strided inputs,
 * thread-count independence, gradients, and the messages of bad calls. */
#include "testutil.h"

/* Reference: for each line along dim, a stable insertion sort of positions by value (NaN largest),
 * then the first k. Checks values and indices of the op exactly. */
static int ref_less(double a, double b, int desc) {
  if (desc) {
    double t = a;
    a = b;
    b = t;
  }
  if (isnan(a)) return 0;
  if (isnan(b)) return 1;
  return a < b;
}

static void check_sort(const vr_tensor *x, int dim, int desc, int64_t k, const vr_tensor *vals, const vr_tensor *idx,
                       const char *what) {
  int nd = vr_tensor_ndim(x);
  int d = dim < 0 ? dim + nd : dim;
  int64_t n = vr_tensor_size(x, d), outer = 1, inner = 1;
  for (int i = 0; i < d; i++) outer *= vr_tensor_size(x, i);
  for (int i = d + 1; i < nd; i++) inner *= vr_tensor_size(x, i);
  double *xv = tu_values(x), *vv = tu_values(vals), *iv = tu_values(idx);
  int64_t *pos = malloc(sizeof(int64_t) * (size_t)n);
  ck_assert_int_eq(vr_tensor_size(vals, d), k);
  ck_assert_int_eq(vr_tensor_dtype(idx), VR_I64);
  for (int64_t o = 0; o < outer; o++)
    for (int64_t i = 0; i < inner; i++) {
      for (int64_t j = 0; j < n; j++) {
        int64_t m = j;
        while (m > 0 && ref_less(xv[(o * n + j) * inner + i], xv[(o * n + pos[m - 1]) * inner + i], desc)) {
          pos[m] = pos[m - 1];
          m--;
        }
        pos[m] = j;
      }
      for (int64_t r = 0; r < k; r++) {
        double want = xv[(o * n + pos[r]) * inner + i], got = vv[(o * k + r) * inner + i];
        ck_assert_msg(iv[(o * k + r) * inner + i] == (double)pos[r], "%s: line (%lld, %lld) rank %lld: index %g, expected %lld",
                      what, (long long)o, (long long)i, (long long)r, iv[(o * k + r) * inner + i], (long long)pos[r]);
        ck_assert_msg(got == want || (isnan(got) && isnan(want)), "%s: rank %lld: value %g, expected %g", what,
                      (long long)r, got, want);
      }
    }
  free(pos);
  free(xv);
  free(vv);
  free(iv);
}

static void free_all_sort(int n, vr_tensor **ts) {
  for (int k = 0; k < n; k++) vr_tensor_free(ts[k]);
}

static void sort_and_check(const vr_tensor *x, int dim, int desc, const char *what) {
  vr_tensor *v = NULL, *i = NULL;
  OK(vr_sort(x, dim, desc, &v, &i));
  int d = dim < 0 ? dim + vr_tensor_ndim(x) : dim;
  check_sort(x, dim, desc, vr_tensor_size(x, d), v, i, what);
  vr_tensor_free(v);
  vr_tensor_free(i);
}

/* values with many ties: integers 0..m-1 */
static vr_tensor *ties(vr_dtype dt, int ndim, const int64_t *shape, int m, uint64_t seed) {
  vr_generator *g = NULL;
  vr_tensor *t = NULL;
  vr_generator_new(seed, 1, &g);
  vr_rand_int(g, ndim, shape, 0, m, dt, VR_CPU, &t);
  vr_generator_free(g);
  return t;
}

START_TEST(sort_small_values_and_indices) {
  vr_tensor *x = tu_tensor(VR_F32, 1, TU_SHAPE(5), TU_VALS(3, -1, 2, 10, 0)), *v = NULL, *i = NULL;
  OK(vr_sort(x, 0, 0, &v, &i));
  tu_assert_values(v, TU_VALS(-1, 0, 2, 3, 10), 5, 0, "ascending values");
  tu_assert_values(i, TU_VALS(1, 4, 2, 0, 3), 5, 0, "ascending indices");
  vr_tensor_free(v);
  vr_tensor_free(i);
  OK(vr_sort(x, -1, 1, &v, &i));
  tu_assert_values(v, TU_VALS(10, 3, 2, 0, -1), 5, 0, "descending values");
  tu_assert_values(i, TU_VALS(3, 0, 2, 4, 1), 5, 0, "descending indices");
  vr_tensor_free(v);
  vr_tensor_free(i);
  vr_tensor_free(x);
}
END_TEST

START_TEST(sort_ties_are_stable_both_directions) {
  vr_tensor *x = tu_tensor(VR_F32, 1, TU_SHAPE(7), TU_VALS(2, 1, 2, 1, 3, 2, 1)), *i = NULL, *j = NULL;
  OK(vr_argsort(x, 0, 0, &i));
  tu_assert_values(i, TU_VALS(1, 3, 6, 0, 2, 5, 4), 7, 0, "ascending ties keep order");
  OK(vr_argsort(x, 0, 1, &j));
  tu_assert_values(j, TU_VALS(4, 0, 2, 5, 1, 3, 6), 7, 0, "descending ties keep order");
  vr_tensor_free(i);
  vr_tensor_free(j);
  vr_tensor_free(x);
  /* long lines take the radix path */
  vr_tensor *t = ties(VR_F32, 2, TU_SHAPE(3, 1000), 5, 1);
  sort_and_check(t, 1, 0, "radix ties ascending");
  sort_and_check(t, 1, 1, "radix ties descending");
  vr_tensor_free(t);
}
END_TEST

START_TEST(sort_f32_random_long_lines) {
  vr_tensor *x = tu_rand(VR_F32, 2, TU_SHAPE(4, 5000), 2);
  sort_and_check(x, 1, 0, "f32 ascending");
  sort_and_check(x, -1, 1, "f32 descending");
  vr_tensor_free(x);
}
END_TEST

START_TEST(sort_f64_random_and_ties) {
  vr_tensor *x = tu_rand(VR_F64, 2, TU_SHAPE(3, 777), 3), *t = ties(VR_F64, 1, TU_SHAPE(300), 3, 4);
  sort_and_check(x, 1, 0, "f64 ascending");
  sort_and_check(x, 1, 1, "f64 descending");
  sort_and_check(t, 0, 0, "f64 ties ascending");
  sort_and_check(t, 0, 1, "f64 ties descending");
  vr_tensor_free(x);
  vr_tensor_free(t);
}
END_TEST

START_TEST(sort_integer_dtypes) {
  vr_tensor *a = tu_tensor(VR_I32, 1, TU_SHAPE(6), TU_VALS(5, -7, 0, 2147483647, -2147483648.0, 5));
  vr_tensor *b = tu_tensor(VR_I64, 1, TU_SHAPE(5), TU_VALS(-1e15, 3, -2, 1e15, 3));
  vr_tensor *c = tu_tensor(VR_U8, 1, TU_SHAPE(5), TU_VALS(200, 3, 255, 0, 3));
  vr_tensor *big = ties(VR_I32, 1, TU_SHAPE(500), 1000, 5);
  vr_tensor *all[] = {a, b, c, big};
  for (int k = 0; k < 4; k++) {
    sort_and_check(all[k], 0, 0, "int ascending");
    sort_and_check(all[k], 0, 1, "int descending");
  }
  vr_tensor *v = NULL;
  OK(vr_sort(a, 0, 0, &v, NULL));
  tu_assert_values(v, TU_VALS(-2147483648.0, -7, 0, 5, 5, 2147483647), 6, 0, "i32 extremes");
  vr_tensor_free(v);
  for (int k = 0; k < 4; k++) vr_tensor_free(all[k]);
}
END_TEST

START_TEST(sort_nan_and_signed_zero) {
  vr_tensor *x = tu_tensor(VR_F32, 1, TU_SHAPE(6), TU_VALS(1, NAN, -0.0, 0.0, -INFINITY, -0.0)), *v = NULL, *i = NULL;
  OK(vr_sort(x, 0, 0, &v, &i));
  tu_assert_values(i, TU_VALS(4, 2, 3, 5, 0, 1), 6, 0, "NaN last, zeros equal and stable");
  double *vv = tu_values(v);
  ck_assert(isnan(vv[5]) && signbit(vv[1]) && !signbit(vv[2]) && signbit(vv[3]));
  free(vv);
  vr_tensor_free(v);
  vr_tensor_free(i);
  OK(vr_argsort(x, 0, 1, &i));
  tu_assert_values(i, TU_VALS(1, 0, 2, 3, 5, 4), 6, 0, "NaN first descending");
  vr_tensor_free(i);
  vr_tensor *y = tu_rand(VR_F64, 1, TU_SHAPE(100), 6);
  OK(vr_tensor_set(y, TU_SHAPE(17), NAN));
  OK(vr_tensor_set(y, TU_SHAPE(50), NAN));
  sort_and_check(y, 0, 0, "f64 with NaN");
  sort_and_check(y, 0, 1, "f64 with NaN descending");
  vr_tensor_free(y);
  vr_tensor_free(x);
}
END_TEST

START_TEST(sort_along_every_dim_of_3d) {
  vr_tensor *x = ties(VR_F32, 3, TU_SHAPE(4, 40, 6), 9, 7);
  for (int d = 0; d < 3; d++) {
    sort_and_check(x, d, 0, "3-D ascending");
    sort_and_check(x, d, 1, "3-D descending");
  }
  vr_tensor_free(x);
}
END_TEST

START_TEST(sort_strided_input) {
  vr_tensor *x = tu_strided(3, TU_SHAPE(3, 50, 4), 8);
  ck_assert(!vr_tensor_is_contiguous(x));
  for (int d = 0; d < 3; d++) sort_and_check(x, d, d == 1, "strided");
  vr_tensor *f = NULL, *e = NULL, *v = NULL;
  OK(vr_tensor_to_dtype(x, VR_F32, &f));
  OK(vr_expand(f, 4, TU_SHAPE(2, 3, 50, 4), &e)); /* a broadcast (stride 0) dim */
  OK(vr_sort(e, 2, 0, &v, NULL));
  ck_assert_int_eq(vr_tensor_ndim(v), 4);
  sort_and_check(e, 2, 0, "expanded");
  vr_tensor_free(v);
  vr_tensor_free(e);
  vr_tensor_free(f);
  vr_tensor_free(x);
}
END_TEST

START_TEST(sort_bf16) {
  vr_tensor *x = NULL, *xb = NULL;
  x = tu_tensor(VR_F32, 1, TU_SHAPE(4), TU_VALS(0.5, -2, 8, 0.25));
  OK(vr_tensor_to_dtype(x, VR_BF16, &xb));
  vr_tensor *i = NULL;
  OK(vr_argsort(xb, 0, 0, &i));
  tu_assert_values(i, TU_VALS(1, 3, 0, 2), 4, 0, "bf16");
  vr_tensor_free(i);
  vr_tensor_free(xb);
  vr_tensor_free(x);
}
END_TEST

START_TEST(argsort_matches_sort_indices) {
  vr_tensor *x = ties(VR_F64, 2, TU_SHAPE(5, 64), 4, 9), *i1 = NULL, *i2 = NULL;
  OK(vr_sort(x, 0, 1, NULL, &i1));
  OK(vr_argsort(x, 0, 1, &i2));
  tu_assert_close(i1, i2, 0, 0, "argsort vs sort");
  ck_assert(!vr_tensor_requires_grad(i2));
  vr_tensor_free(i1);
  vr_tensor_free(i2);
  vr_tensor_free(x);
}
END_TEST

START_TEST(topk_largest_and_smallest) {
  vr_tensor *x = tu_tensor(VR_F32, 2, TU_SHAPE(2, 5), TU_VALS(3, 9, 1, 9, 4, 0, -5, 2, 8, 2)), *v = NULL, *i = NULL;
  OK(vr_topk(x, 3, 1, 1, &v, &i));
  tu_assert_values(v, TU_VALS(9, 9, 4, 8, 2, 2), 6, 0, "top 3 values, sorted");
  tu_assert_values(i, TU_VALS(1, 3, 4, 3, 2, 4), 6, 0, "top 3 indices, ties in order");
  vr_tensor_free(v);
  vr_tensor_free(i);
  OK(vr_topk(x, 2, -1, 0, &v, &i));
  tu_assert_values(v, TU_VALS(1, 3, -5, 0), 4, 0, "bottom 2");
  tu_assert_values(i, TU_VALS(2, 0, 1, 0), 4, 0, "bottom 2 indices");
  vr_tensor_free(v);
  vr_tensor_free(i);
  OK(vr_topk(x, 0, 1, 1, &v, NULL));
  ck_assert_int_eq(vr_tensor_numel(v), 0);
  vr_tensor_free(v);
  vr_tensor_free(x);
}
END_TEST

START_TEST(topk_long_lines_and_middle_dim) {
  vr_tensor *x = tu_rand(VR_F32, 3, TU_SHAPE(3, 2000, 2), 10), *t = ties(VR_F32, 2, TU_SHAPE(2, 300), 6, 11);
  int64_t ks[] = {1, 17, 2000};
  for (int k = 0; k < 3; k++)
    for (int largest = 0; largest < 2; largest++) {
      vr_tensor *v = NULL, *i = NULL;
      OK(vr_topk(x, ks[k], 1, largest, &v, &i));
      check_sort(x, 1, largest, ks[k], v, i, "topk 3-D");
      vr_tensor_free(v);
      vr_tensor_free(i);
      OK(vr_topk(t, ks[k] > 300 ? 300 : ks[k], 1, largest, &v, &i));
      check_sort(t, 1, largest, ks[k] > 300 ? 300 : ks[k], v, i, "topk ties");
      vr_tensor_free(v);
      vr_tensor_free(i);
    }
  vr_tensor_free(x);
  vr_tensor_free(t);
}
END_TEST

START_TEST(sort_does_not_depend_on_thread_count) {
  vr_tensor *x = ties(VR_F32, 2, TU_SHAPE(64, 700), 50, 12), *v1 = NULL, *i1 = NULL, *v2 = NULL, *i2 = NULL;
  int nt = vr_num_threads();
  vr_set_num_threads(1);
  OK(vr_sort(x, 1, 1, &v1, &i1));
  vr_set_num_threads(nt > 1 ? nt : 2);
  OK(vr_sort(x, 1, 1, &v2, &i2));
  vr_set_num_threads(nt);
  tu_assert_close(v1, v2, 0, 0, "values");
  tu_assert_close(i1, i2, 0, 0, "indices");
  vr_tensor *all[] = {x, v1, i1, v2, i2};
  for (int k = 0; k < 5; k++) vr_tensor_free(all[k]);
}
END_TEST

START_TEST(sort_edge_shapes) {
  vr_tensor *s = NULL, *v = NULL, *i = NULL, *e = NULL;
  OK(vr_tensor_scalar(4.5, VR_F32, VR_CPU, &s));
  OK(vr_sort(s, 0, 0, &v, &i));
  ck_assert_int_eq(vr_tensor_ndim(v), 0);
  ck_assert_double_eq(tu_item(v), 4.5);
  ck_assert_double_eq(tu_item(i), 0);
  vr_tensor_free(v);
  vr_tensor_free(i);
  OK(vr_tensor_zeros(2, TU_SHAPE(3, 0), VR_F64, VR_CPU, &e));
  OK(vr_sort(e, 1, 0, &v, &i));
  ck_assert_int_eq(vr_tensor_numel(v), 0);
  ck_assert_int_eq(vr_tensor_size(i, 0), 3);
  vr_tensor_free(v);
  vr_tensor_free(i);
  OK(vr_sort(e, 0, 0, &v, NULL)); /* lines of length 3, but none of them */
  vr_tensor_free(v);
  vr_tensor_free(e);
  vr_tensor_free(s);
}
END_TEST

static vr_status f_sort(vr_tensor *const *in, void *ctx, vr_tensor **out) {
  int *p = ctx; /* dim, descending */
  return vr_sort(in[0], p[0], p[1], out, NULL);
}
static vr_status f_topk(vr_tensor *const *in, void *ctx, vr_tensor **out) {
  int *p = ctx; /* dim, largest, k */
  return vr_topk(in[0], p[2], p[0], p[1], out, NULL);
}

START_TEST(sort_values_gradcheck) {
  vr_tensor *x = tu_rand(VR_F64, 2, TU_SHAPE(3, 40), 13), *xs = tu_strided(3, TU_SHAPE(3, 4, 5), 14);
  for (int desc = 0; desc < 2; desc++) {
    int p[2] = {1, desc};
    tu_gradcheck("sort", 1, &x, 0, f_sort, p, 1e-6, 1e-7);
    for (int d = 0; d < 3; d++) {
      int q[2] = {d, desc};
      tu_gradcheck("sort strided", 1, &xs, 0, f_sort, q, 1e-6, 1e-7);
    }
  }
  vr_tensor_free(x);
  vr_tensor_free(xs);
}
END_TEST

START_TEST(topk_values_gradcheck) {
  vr_tensor *x = tu_rand(VR_F64, 2, TU_SHAPE(4, 50), 15), *xs = tu_strided(3, TU_SHAPE(2, 6, 5), 16);
  for (int largest = 0; largest < 2; largest++) {
    int p[3] = {1, largest, 7};
    tu_gradcheck("topk", 1, &x, 0, f_topk, p, 1e-6, 1e-7);
    int q[3] = {1, largest, 3};
    tu_gradcheck("topk strided", 1, &xs, 0, f_topk, q, 1e-6, 1e-7);
  }
  /* a gradient reaches only the selected elements */
  vr_tensor *y = tu_tensor(VR_F64, 1, TU_SHAPE(5), TU_VALS(0.1, 0.5, 0.3, 0.9, 0.2)), *v = NULL, *w = NULL, *g = NULL;
  OK(vr_tensor_set_requires_grad(y, 1));
  OK(vr_topk(y, 2, 0, 1, &v, NULL));
  ck_assert_str_eq(vr_tensor_grad_fn_name(v), "topk");
  w = tu_tensor(VR_F64, 1, TU_SHAPE(2), TU_VALS(10, 20));
  OK(vr_backward(v, w, 0));
  g = vr_tensor_grad(y);
  tu_assert_values(g, TU_VALS(0, 20, 0, 10, 0), 5, 0, "topk gradient");
  vr_tensor *all[] = {x, xs, y, v, w, g};
  for (int k = 0; k < 6; k++) vr_tensor_free(all[k]);
}
END_TEST

START_TEST(sort_errors) {
  vr_tensor *x = tu_rand(VR_F32, 2, TU_SHAPE(3, 4), 1), *v = NULL, *i = NULL;
  FAILS(vr_topk(x, 5, 1, 1, &v, &i), VR_E_ARG, "k: expected 0..4 (the size of dim 1), got 5");
  FAILS(vr_topk(x, -1, 0, 1, &v, &i), VR_E_ARG, "k: expected 0..3");
  FAILS(vr_sort(x, 2, 0, &v, &i), VR_E_ARG, "dim: expected a dim of a 2-dim tensor, got 2");
  FAILS(vr_sort(x, 0, 0, NULL, NULL), VR_E_ARG, "values, indices: expected at least one output");
  FAILS(vr_sort(NULL, 0, 0, &v, &i), VR_E_ARG, "x: expected a tensor");
  FAILS(vr_argsort(x, 0, 0, NULL), VR_E_ARG, "out");
  ck_assert_ptr_null(v);
  ck_assert_ptr_null(i);
  vr_tensor_free(x);
}
END_TEST

/* CUDA against CPU: values and indices exactly (the sort is stable on both); skips without a GPU
 * or while VR_OP_SORT has no CUDA kernel */
START_TEST(cuda_parity) {
  TU_SKIP_NO_CUDA();
  vr_tensor *x = ties(VR_F32, 3, TU_SHAPE(7, 1500, 3), 40, 21), *xc = NULL;
  OK(vr_tensor_to_device(x, VR_CUDA, &xc));
  for (int d = 0; d < 3; d++)
    for (int desc = 0; desc < 2; desc++) {
      vr_tensor *v = NULL, *i = NULL, *vc = NULL, *ic = NULL;
      OK(vr_sort(x, d, desc, &v, &i));
      vr_status st = vr_topk(xc, vr_tensor_size(x, d) / 2, d, desc, &vc, &ic);
      if (st == VR_E_UNSUPPORTED) {
        printf("SKIP sort on cuda: %s\n", vr_last_error());
        free_all_sort(2, (vr_tensor *[]){v, i});
        goto out;
      }
      OK(st);
      check_sort(x, d, desc, vr_tensor_size(x, d) / 2, vc, ic, "cuda topk");
      vr_tensor_free(vc);
      vr_tensor_free(ic);
      OK(vr_sort(xc, d, desc, &vc, &ic));
      tu_assert_close(vc, v, 0, 0, "cuda sort values");
      tu_assert_close(ic, i, 0, 0, "cuda sort indices");
      free_all_sort(4, (vr_tensor *[]){v, i, vc, ic});
    }
out:
  vr_tensor_free(x);
  vr_tensor_free(xc);
}
END_TEST

Suite *sort_suite(void) {
  Suite *s = suite_create("sort");
  TCase *c = tcase_create("sort");
  tcase_set_timeout(c, 60);
  tcase_add_test(c, sort_small_values_and_indices);
  tcase_add_test(c, sort_ties_are_stable_both_directions);
  tcase_add_test(c, sort_f32_random_long_lines);
  tcase_add_test(c, sort_f64_random_and_ties);
  tcase_add_test(c, sort_integer_dtypes);
  tcase_add_test(c, sort_nan_and_signed_zero);
  tcase_add_test(c, sort_along_every_dim_of_3d);
  tcase_add_test(c, sort_strided_input);
  tcase_add_test(c, sort_bf16);
  tcase_add_test(c, argsort_matches_sort_indices);
  tcase_add_test(c, topk_largest_and_smallest);
  tcase_add_test(c, topk_long_lines_and_middle_dim);
  tcase_add_test(c, sort_does_not_depend_on_thread_count);
  tcase_add_test(c, sort_edge_shapes);
  tcase_add_test(c, sort_values_gradcheck);
  tcase_add_test(c, topk_values_gradcheck);
  tcase_add_test(c, sort_errors);
  tcase_add_test(c, cuda_parity);
  suite_add_tcase(s, c);
  return s;
}

VR_TEST_MAIN(sort_suite)
