/* test_tensor.c: creation, metadata, views, copies, conversions, element access, Philox, .npy
 * and the error messages of the tensor layer. */
#include "testutil.h"
#include <unistd.h>

START_TEST(creates_filled_tensors) {
  vr_tensor *z = NULL, *o = NULL, *f = NULL;
  OK(vr_tensor_zeros(2, TU_SHAPE(2, 3), VR_F32, VR_CPU, &z));
  OK(vr_tensor_ones(1, TU_SHAPE(4), VR_F64, VR_CPU, &o));
  OK(vr_tensor_full(2, TU_SHAPE(2, 2), 2.5, VR_I64, VR_CPU, &f));
  ck_assert_int_eq(vr_tensor_ndim(z), 2);
  ck_assert_int_eq(vr_tensor_size(z, 1), 3);
  ck_assert_int_eq(vr_tensor_size(z, -1), 3);
  ck_assert_int_eq(vr_tensor_numel(z), 6);
  ck_assert(vr_tensor_is_contiguous(z));
  tu_assert_values(z, TU_VALS(0, 0, 0, 0, 0, 0), 6, 0, "zeros");
  tu_assert_values(o, TU_VALS(1, 1, 1, 1), 4, 0, "ones");
  tu_assert_values(f, TU_VALS(2, 2, 2, 2), 4, 0, "full i64 truncates");
  ck_assert_int_eq(vr_tensor_dtype(f), VR_I64);
  vr_tensor_free(z);
  vr_tensor_free(o);
  vr_tensor_free(f);
}
END_TEST

START_TEST(arange_and_scalar) {
  vr_tensor *a = NULL, *s = NULL, *e = NULL;
  OK(vr_tensor_arange(0, 5, 1, VR_F32, VR_CPU, &a));
  tu_assert_values(a, TU_VALS(0, 1, 2, 3, 4), 5, 0, "arange");
  vr_tensor_free(a);
  OK(vr_tensor_arange(1, 0, -0.25, VR_F64, VR_CPU, &a));
  tu_assert_values(a, TU_VALS(1, 0.75, 0.5, 0.25), 4, 0, "arange negative step");
  OK(vr_tensor_arange(3, 3, 1, VR_F64, VR_CPU, &e));
  ck_assert_int_eq(vr_tensor_numel(e), 0);
  OK(vr_tensor_scalar(7, VR_F64, VR_CPU, &s));
  ck_assert_int_eq(vr_tensor_ndim(s), 0);
  ck_assert_double_eq(tu_item(s), 7);
  FAILS(vr_tensor_arange(0, 1, 0, VR_F32, VR_CPU, &a), VR_E_ARG, "step");
  vr_tensor_free(a);
  vr_tensor_free(s);
  vr_tensor_free(e);
}
END_TEST

START_TEST(buffer_round_trip) {
  float in[6] = {1, 2, 3, 4, 5, 6}, out[6] = {0};
  vr_tensor *t = NULL;
  OK(vr_tensor_from_buffer(in, 2, TU_SHAPE(2, 3), VR_F32, VR_CPU, &t));
  OK(vr_tensor_to_buffer(t, out, sizeof out));
  ck_assert_mem_eq(in, out, sizeof in);
  FAILS(vr_tensor_to_buffer(t, out, 8), VR_E_ARG, "nbytes");
  vr_tensor_free(t);
}
END_TEST

START_TEST(creation_errors_name_the_argument) {
  vr_tensor *t = NULL;
  FAILS(vr_tensor_zeros(9, TU_SHAPE(1, 1, 1, 1, 1, 1, 1, 1, 1), VR_F32, VR_CPU, &t), VR_E_SHAPE, "ndim");
  FAILS(vr_tensor_zeros(2, TU_SHAPE(2, -3), VR_F32, VR_CPU, &t), VR_E_SHAPE, "shape[1]");
  FAILS(vr_tensor_zeros(1, TU_SHAPE(2), (vr_dtype)42, VR_CPU, &t), VR_E_DTYPE, "dtype");
  FAILS(vr_tensor_zeros(1, TU_SHAPE(2), VR_F32, VR_CPU, NULL), VR_E_ARG, "out");
  FAILS(vr_tensor_from_buffer(NULL, 1, TU_SHAPE(3), VR_F32, VR_CPU, &t), VR_E_ARG, "data");
  ck_assert_ptr_null(t);
  /* the message names the function and the source location */
  ck_assert_ptr_nonnull(strstr(vr_last_error(), "vr_tensor_from_buffer"));
  ck_assert_ptr_nonnull(strstr(vr_last_error(), "tensor.c:"));
}
END_TEST

START_TEST(cuda_absent_is_an_error_not_a_crash) {
  vr_tensor *t = NULL;
  if (vr_cuda_available()) return;
  FAILS(vr_tensor_zeros(1, TU_SHAPE(2), VR_F32, VR_CUDA, &t), VR_E_DEVICE, "cuda");
}
END_TEST

START_TEST(element_get_set_and_item) {
  vr_tensor *t = NULL;
  double v;
  OK(vr_tensor_zeros(2, TU_SHAPE(2, 3), VR_F64, VR_CPU, &t));
  uint64_t v0 = vr_tensor_version(t);
  OK(vr_tensor_set(t, TU_SHAPE(1, 2), 4.5));
  ck_assert(vr_tensor_version(t) > v0);
  OK(vr_tensor_get(t, TU_SHAPE(1, 2), &v));
  ck_assert_double_eq(v, 4.5);
  FAILS(vr_tensor_get(t, TU_SHAPE(2, 0), &v), VR_E_ARG, "index[0]");
  FAILS(vr_tensor_item(t, &v), VR_E_SHAPE, "one-element");
  vr_tensor_free(t);
}
END_TEST

START_TEST(view_shares_storage_and_infers) {
  vr_tensor *a = NULL, *v = NULL;
  OK(vr_tensor_arange(0, 12, 1, VR_F32, VR_CPU, &a));
  OK(vr_view(a, 3, TU_SHAPE(2, -1, 3), &v));
  ck_assert_int_eq(vr_tensor_size(v, 1), 2);
  ck_assert(vr_tensor_shares_storage(a, v));
  OK(vr_tensor_set(v, TU_SHAPE(1, 1, 2), -1));
  double x;
  OK(vr_tensor_get(a, TU_SHAPE(11), &x));
  ck_assert_double_eq(x, -1);
  vr_tensor *w = NULL;
  FAILS(vr_view(a, 2, TU_SHAPE(5, -1), &w), VR_E_SHAPE, "12 elements");
  FAILS(vr_view(a, 2, TU_SHAPE(-1, -1), &w), VR_E_SHAPE, "-1");
  vr_tensor_free(a);
  vr_tensor_free(v);
}
END_TEST

START_TEST(transpose_is_a_strided_view) {
  vr_tensor *a = NULL, *t = NULL, *c = NULL, *v = NULL;
  OK(vr_tensor_arange(0, 6, 1, VR_F64, VR_CPU, &a));
  OK(vr_view(a, 2, TU_SHAPE(2, 3), &v));
  OK(vr_transpose(v, 0, 1, &t));
  ck_assert_int_eq(vr_tensor_size(t, 0), 3);
  ck_assert_int_eq(vr_tensor_stride(t, 0), 1);
  ck_assert_int_eq(vr_tensor_stride(t, 1), 3);
  ck_assert(!vr_tensor_is_contiguous(t));
  tu_assert_values(t, TU_VALS(0, 3, 1, 4, 2, 5), 6, 0, "transpose");
  OK(vr_contiguous(t, &c));
  ck_assert(vr_tensor_is_contiguous(c));
  ck_assert(!vr_tensor_shares_storage(c, t));
  tu_assert_values(c, TU_VALS(0, 3, 1, 4, 2, 5), 6, 0, "contiguous");
  vr_tensor *w = NULL;
  FAILS(vr_view(t, 1, TU_SHAPE(6), &w), VR_E_SHAPE, "reshape");
  OK(vr_reshape(t, 1, TU_SHAPE(6), &w));
  tu_assert_values(w, TU_VALS(0, 3, 1, 4, 2, 5), 6, 0, "reshape copies");
  vr_tensor_free(a);
  vr_tensor_free(v);
  vr_tensor_free(t);
  vr_tensor_free(c);
  vr_tensor_free(w);
}
END_TEST

START_TEST(permute_checks_and_inverts) {
  vr_tensor *a = tu_rand(VR_F32, 3, TU_SHAPE(2, 3, 4), 1), *p = NULL, *q = NULL;
  OK(vr_permute(a, (const int[]){2, 0, 1}, &p));
  ck_assert_int_eq(vr_tensor_size(p, 0), 4);
  ck_assert_int_eq(vr_tensor_size(p, 2), 3);
  OK(vr_permute(p, (const int[]){1, 2, 0}, &q));
  tu_assert_close(q, a, 0, 0, "permute round trip");
  vr_tensor *bad = NULL;
  FAILS(vr_permute(a, (const int[]){0, 0, 1}, &bad), VR_E_ARG, "perm[1]");
  FAILS(vr_transpose(a, 0, 3, &bad), VR_E_ARG, "dim0, dim1");
  vr_tensor_free(a);
  vr_tensor_free(p);
  vr_tensor_free(q);
}
END_TEST

START_TEST(narrow_slice_select) {
  vr_tensor *a = NULL, *m = NULL, *n = NULL, *s = NULL, *e = NULL;
  OK(vr_tensor_arange(0, 20, 1, VR_F64, VR_CPU, &a));
  OK(vr_view(a, 2, TU_SHAPE(4, 5), &m));
  OK(vr_narrow(m, 1, 1, 3, &n));
  tu_assert_values(n, TU_VALS(1, 2, 3, 6, 7, 8, 11, 12, 13, 16, 17, 18), 12, 0, "narrow");
  OK(vr_slice(m, 0, 0, 4, 2, &s));
  tu_assert_values(s, TU_VALS(0, 1, 2, 3, 4, 10, 11, 12, 13, 14), 10, 0, "slice step 2");
  vr_tensor_free(s);
  OK(vr_slice(m, 1, -2, 100, 1, &s));
  tu_assert_values(s, TU_VALS(3, 4, 8, 9, 13, 14, 18, 19), 8, 0, "slice negative start, clamped end");
  OK(vr_select(m, 0, -1, &e));
  ck_assert_int_eq(vr_tensor_ndim(e), 1);
  tu_assert_values(e, TU_VALS(15, 16, 17, 18, 19), 5, 0, "select");
  vr_tensor *bad = NULL;
  FAILS(vr_narrow(m, 1, 3, 3, &bad), VR_E_ARG, "start, length");
  FAILS(vr_select(m, 0, 4, &bad), VR_E_ARG, "index");
  FAILS(vr_slice(m, 2, 0, 1, 1, &bad), VR_E_ARG, "dim");
  vr_tensor *objs[] = {a, m, n, s, e};
  for (int i = 0; i < 5; i++) vr_tensor_free(objs[i]);
}
END_TEST

START_TEST(expand_squeeze_unsqueeze_flatten) {
  vr_tensor *a = tu_tensor(VR_F64, 2, TU_SHAPE(3, 1), TU_VALS(1, 2, 3)), *e = NULL, *s = NULL, *u = NULL, *f = NULL;
  OK(vr_expand(a, 3, TU_SHAPE(2, -1, 4), &e));
  ck_assert_int_eq(vr_tensor_stride(e, 0), 0);
  ck_assert_int_eq(vr_tensor_stride(e, 2), 0);
  tu_assert_values(e, TU_VALS(1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3), 24, 0, "expand");
  vr_tensor *bad = NULL;
  FAILS(vr_expand(a, 2, TU_SHAPE(4, 1), &bad), VR_E_SHAPE, "shape[0]");
  OK(vr_squeeze(a, 1, &s));
  ck_assert_int_eq(vr_tensor_ndim(s), 1);
  FAILS(vr_squeeze(a, 0, &bad), VR_E_SHAPE, "size 1");
  OK(vr_unsqueeze(s, 0, &u));
  ck_assert_int_eq(vr_tensor_size(u, 0), 1);
  ck_assert_int_eq(vr_tensor_size(u, 1), 3);
  OK(vr_flatten(e, 0, -1, &f));
  ck_assert_int_eq(vr_tensor_ndim(f), 1);
  ck_assert_int_eq(vr_tensor_size(f, 0), 24);
  vr_tensor *objs[] = {a, e, s, u, f};
  for (int i = 0; i < 5; i++) vr_tensor_free(objs[i]);
}
END_TEST

START_TEST(copy_converts_and_broadcasts) {
  vr_tensor *d = NULL, *src = tu_tensor(VR_F64, 1, TU_SHAPE(3), TU_VALS(1.5, -2.5, 3.25)), *i = NULL;
  OK(vr_tensor_zeros(2, TU_SHAPE(2, 3), VR_F32, VR_CPU, &d));
  OK(vr_copy_(d, src));
  tu_assert_values(d, TU_VALS(1.5, -2.5, 3.25, 1.5, -2.5, 3.25), 6, 0, "broadcast copy");
  OK(vr_tensor_to_dtype(src, VR_I32, &i));
  tu_assert_values(i, TU_VALS(1, -2, 3), 3, 0, "f64 to i32 truncates");
  vr_tensor *bad = tu_rand(VR_F32, 1, TU_SHAPE(4), 2);
  FAILS(vr_copy_(d, bad), VR_E_SHAPE, "broadcasts");
  vr_tensor *bf = NULL, *back = NULL;
  OK(vr_tensor_to_dtype(src, VR_BF16, &bf));
  OK(vr_tensor_to_dtype(bf, VR_F64, &back));
  tu_assert_values(back, TU_VALS(1.5, -2.5, 3.25), 3, 0, "bf16 round trip of exact values");
  vr_tensor *objs[] = {d, src, i, bad, bf, back};
  for (int k = 0; k < 6; k++) vr_tensor_free(objs[k]);
}
END_TEST

START_TEST(fill_on_a_strided_view) {
  vr_tensor *a = NULL, *m = NULL, *c = NULL;
  OK(vr_tensor_zeros(2, TU_SHAPE(3, 4), VR_F32, VR_CPU, &a));
  OK(vr_narrow(a, 1, 1, 2, &m));
  OK(vr_fill_(m, 9));
  tu_assert_values(a, TU_VALS(0, 9, 9, 0, 0, 9, 9, 0, 0, 9, 9, 0), 12, 0, "fill through a view");
  OK(vr_tensor_clone(m, &c));
  ck_assert(!vr_tensor_shares_storage(c, m));
  tu_assert_values(c, TU_VALS(9, 9, 9, 9, 9, 9), 6, 0, "clone");
  vr_tensor_free(a);
  vr_tensor_free(m);
  vr_tensor_free(c);
}
END_TEST

START_TEST(philox_matches_the_known_answer) {
  /* Random123's known-answer test for philox4x32-10: counter 0 and key 0 */
  uint32_t w[4];
  vr_philox4x32(0, 0, 0, w);
  ck_assert_uint_eq(w[0], 0x6627e8d5u);
  ck_assert_uint_eq(w[1], 0xe169c58du);
  ck_assert_uint_eq(w[2], 0xbc57ac4cu);
  ck_assert_uint_eq(w[3], 0x9b00dbd8u);
}
END_TEST

START_TEST(random_draws_are_reproducible_and_thread_independent) {
  vr_generator *g1 = NULL, *g2 = NULL;
  vr_tensor *a = NULL, *b = NULL, *c = NULL;
  OK(vr_generator_new(42, 0, &g1));
  OK(vr_generator_new(42, 0, &g2));
  int nt = vr_num_threads();
  OK(vr_rand_normal(g1, 1, TU_SHAPE(100000), 0, 1, VR_F64, VR_CPU, &a));
  vr_set_num_threads(1);
  OK(vr_rand_normal(g2, 1, TU_SHAPE(100000), 0, 1, VR_F64, VR_CPU, &b));
  vr_set_num_threads(nt);
  tu_assert_close(a, b, 0, 0, "same seed, other thread count");
  ck_assert_uint_eq(vr_generator_offset(g1), 100000);
  OK(vr_rand_normal(g1, 1, TU_SHAPE(100000), 0, 1, VR_F64, VR_CPU, &c));
  double *x = tu_values(a), *y = tu_values(c), m = 0, v = 0;
  int same = 0;
  for (int i = 0; i < 100000; i++) {
    m += x[i];
    v += x[i] * x[i];
    same += x[i] == y[i];
  }
  m /= 1e5;
  v = v / 1e5 - m * m;
  ck_assert_msg(fabs(m) < 0.02 && fabs(v - 1) < 0.02, "normal moments: mean %g var %g", m, v);
  ck_assert_int_lt(same, 5);
  free(x);
  free(y);
  vr_tensor *objs[] = {a, b, c};
  for (int k = 0; k < 3; k++) vr_tensor_free(objs[k]);
  vr_generator_free(g1);
  vr_generator_free(g2);
}
END_TEST

START_TEST(uniform_int_and_randperm) {
  vr_generator *g = NULL;
  vr_tensor *u = NULL, *r = NULL, *p = NULL;
  OK(vr_generator_new(3, 1, &g));
  OK(vr_rand_uniform(g, 1, TU_SHAPE(10000), 2, 5, VR_F32, VR_CPU, &u));
  double *x = tu_values(u), lo = 1e9, hi = -1e9;
  for (int i = 0; i < 10000; i++) { lo = fmin(lo, x[i]); hi = fmax(hi, x[i]); }
  ck_assert(lo >= 2 && hi < 5 && lo < 2.01 && hi > 4.99);
  free(x);
  OK(vr_rand_int(g, 1, TU_SHAPE(1000), -3, 4, VR_I64, VR_CPU, &r));
  x = tu_values(r);
  int seen[7] = {0};
  for (int i = 0; i < 1000; i++) {
    ck_assert(x[i] >= -3 && x[i] < 4 && x[i] == floor(x[i]));
    seen[(int)x[i] + 3] = 1;
  }
  for (int k = 0; k < 7; k++) ck_assert(seen[k]);
  free(x);
  OK(vr_randperm(g, 50, VR_CPU, &p));
  x = tu_values(p);
  int hit[50] = {0}, moved = 0;
  for (int i = 0; i < 50; i++) { hit[(int)x[i]]++; moved += x[i] != i; }
  for (int i = 0; i < 50; i++) ck_assert_int_eq(hit[i], 1);
  ck_assert_int_gt(moved, 30);
  free(x);
  vr_tensor *bad = NULL;
  FAILS(vr_rand_int(g, 1, TU_SHAPE(3), 4, 4, VR_I64, VR_CPU, &bad), VR_E_ARG, "low, high");
  FAILS(vr_rand_uniform(NULL, 1, TU_SHAPE(3), 0, 1, VR_F32, VR_CPU, &bad), VR_E_ARG, "g");
  vr_tensor_free(u);
  vr_tensor_free(r);
  vr_tensor_free(p);
  vr_generator_free(g);
}
END_TEST

START_TEST(npy_round_trip_and_errors) {
  char path[] = "/tmp/visreg_npy_XXXXXX";
  int fd = mkstemp(path);
  ck_assert_int_ge(fd, 0);
  close(fd);
  vr_tensor *a = tu_rand(VR_F32, 3, TU_SHAPE(2, 3, 4), 5), *t = NULL, *b = NULL;
  OK(vr_transpose(a, 0, 2, &t)); /* saved in C order from a strided view */
  OK(vr_npy_save(path, t));
  OK(vr_npy_load(path, &b));
  ck_assert_int_eq(vr_tensor_dtype(b), VR_F32);
  tu_assert_close(b, t, 0, 0, "npy round trip");
  vr_tensor_free(b);
  vr_tensor *i = NULL;
  OK(vr_tensor_arange(0, 5, 1, VR_I64, VR_CPU, &i));
  OK(vr_npy_save(path, i));
  OK(vr_npy_load(path, &b));
  tu_assert_close(b, i, 0, 0, "npy i64");
  vr_tensor_free(b);
  /* truncate the file: the loader says so */
  FILE *f = fopen(path, "r+b");
  ck_assert_ptr_nonnull(f);
  ck_assert_int_eq(ftruncate(fileno(f), 100), 0);
  fclose(f);
  FAILS(vr_npy_load(path, &b), VR_E_FORMAT, "truncated");
  f = fopen(path, "wb");
  fputs("not a numpy file at all", f);
  fclose(f);
  FAILS(vr_npy_load(path, &b), VR_E_FORMAT, "magic");
  remove(path);
  FAILS(vr_npy_load("/nonexistent/z.npy", &b), VR_E_IO, "/nonexistent/z.npy");
  vr_tensor_free(a);
  vr_tensor_free(t);
  vr_tensor_free(i);
}
END_TEST

START_TEST(npy_reads_fortran_order) {
  /* a 2x3 float64 array written by numpy with order='F': column-major data */
  char path[] = "/tmp/visreg_npyf_XXXXXX";
  int fd = mkstemp(path);
  const char *hdr = "{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3), }";
  char buf[128];
  int n = snprintf(buf, sizeof buf, "%s", hdr);
  int total = 10 + n + 1, pad = (64 - total % 64) % 64;
  unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(n + pad + 1), 0};
  FILE *f = fdopen(fd, "wb");
  fwrite(pre, 1, 10, f);
  fwrite(buf, 1, (size_t)n, f);
  for (int i = 0; i < pad; i++) fputc(' ', f);
  fputc('\n', f);
  double colmajor[6] = {1, 4, 2, 5, 3, 6};
  fwrite(colmajor, sizeof(double), 6, f);
  fclose(f);
  vr_tensor *t = NULL;
  OK(vr_npy_load(path, &t));
  tu_assert_values(t, TU_VALS(1, 2, 3, 4, 5, 6), 6, 0, "fortran order");
  ck_assert_int_eq(vr_tensor_size(t, 0), 2);
  remove(path);
  vr_tensor_free(t);
}
END_TEST

Suite *tensor_suite(void) {
  Suite *s = suite_create("tensor");
  TCase *c = tcase_create("core");
  tcase_add_test(c, creates_filled_tensors);
  tcase_add_test(c, arange_and_scalar);
  tcase_add_test(c, buffer_round_trip);
  tcase_add_test(c, creation_errors_name_the_argument);
  tcase_add_test(c, cuda_absent_is_an_error_not_a_crash);
  tcase_add_test(c, element_get_set_and_item);
  tcase_add_test(c, view_shares_storage_and_infers);
  tcase_add_test(c, transpose_is_a_strided_view);
  tcase_add_test(c, permute_checks_and_inverts);
  tcase_add_test(c, narrow_slice_select);
  tcase_add_test(c, expand_squeeze_unsqueeze_flatten);
  tcase_add_test(c, copy_converts_and_broadcasts);
  tcase_add_test(c, fill_on_a_strided_view);
  tcase_add_test(c, philox_matches_the_known_answer);
  tcase_add_test(c, random_draws_are_reproducible_and_thread_independent);
  tcase_add_test(c, uniform_int_and_randperm);
  tcase_add_test(c, npy_round_trip_and_errors);
  tcase_add_test(c, npy_reads_fortran_order);
  suite_add_tcase(s, c);
  return s;
}

VR_TEST_MAIN(tensor_suite)
