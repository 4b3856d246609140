/* test_linalg.c: vr_matmul and vr_linear against naive f64 loops, finite-difference gradients
 * (transposed and non-contiguous operands, broadcast batch dims, 1-D cases) and error messages;
 * vr_eigh and vr_svd on matrices with known decompositions, reconstructions, orthonormality,
 * rank-deficient and empty input, errors, and finite-difference gradients of every output. */
#include "testutil.h"
#include "../kernels/cpu/cpu.h" /* to watch the kernel args of VR_OP_MATMUL */

/* naive batched product of row-major buffers with broadcast batch dims (torch.matmul rules) */
static vr_tensor *ref_matmul(const vr_tensor *a, const vr_tensor *b) {
  int na = vr_tensor_ndim(a), nb = vr_tensor_ndim(b);
  int64_t as[8] = {0}, bs[8] = {0};
  int pa = 0, pb = 0;
  for (int d = 0; d < na; d++) as[d] = vr_tensor_size(a, d);
  for (int d = 0; d < nb; d++) bs[d] = vr_tensor_size(b, d);
  if (na == 1) { as[1] = as[0]; as[0] = 1; na = 2; pa = 1; }
  if (nb == 1) { bs[1] = 1; nb = 2; pb = 1; }
  int64_t m = as[na - 2], k = as[na - 1], n = bs[nb - 1];
  int nbd = (na > nb ? na : nb) - 2;
  int64_t bshape[8], nbatch = 1;
  for (int d = 0; d < nbd; d++) {
    int ja = d - (nbd - (na - 2)), jb = d - (nbd - (nb - 2));
    int64_t x = ja >= 0 ? as[ja] : 1, y = jb >= 0 ? bs[jb] : 1;
    bshape[d] = x == 1 ? y : x;
    nbatch *= bshape[d];
  }
  double *av = tu_values(a), *bv = tu_values(b);
  double *o = calloc((size_t)(nbatch * m * n + 1), sizeof(double));
  for (int64_t bi = 0; bi < nbatch; bi++) {
    int64_t r = bi, oa = 0, ob = 0, sa = m * k, sb = k * n;
    for (int d = nbd - 1; d >= 0; d--) {
      int64_t ix = r % bshape[d];
      r /= bshape[d];
      int ja = d - (nbd - (na - 2)), jb = d - (nbd - (nb - 2));
      if (ja >= 0) { oa += (as[ja] == 1 ? 0 : ix) * sa; sa *= as[ja]; }
      if (jb >= 0) { ob += (bs[jb] == 1 ? 0 : ix) * sb; sb *= bs[jb]; }
    }
    for (int64_t i = 0; i < m; i++)
      for (int64_t j = 0; j < n; j++) {
        double s = 0;
        for (int64_t q = 0; q < k; q++) s += av[oa + i * k + q] * bv[ob + q * n + j];
        o[bi * m * n + i * n + j] = s;
      }
  }
  int64_t os[8];
  int on = 0;
  for (int d = 0; d < nbd; d++) os[on++] = bshape[d];
  if (!pa) os[on++] = m;
  if (!pb) os[on++] = n;
  vr_tensor *t = NULL;
  ck_assert(vr_tensor_from_buffer(o, on, os, VR_F64, VR_CPU, &t) == VR_OK);
  free(av);
  free(bv);
  free(o);
  return t;
}

static void check_mm(vr_tensor *a, vr_tensor *b, double tol, const char *what) {
  vr_tensor *c = NULL, *r = ref_matmul(a, b);
  OK(vr_matmul(a, b, &c));
  tu_assert_close(c, r, tol, tol, what);
  vr_tensor_free(c);
  vr_tensor_free(r);
}

static vr_tensor *rnd(int nd, const int64_t *s, uint64_t seed) { return tu_rand(VR_F64, nd, s, seed); }

/* ---------------------------------------------------------------- values */

START_TEST(mm_2d_values) {
  vr_tensor *a = tu_tensor(VR_F64, 2, TU_SHAPE(2, 3), TU_VALS(1, 2, 3, 4, 5, 6));
  vr_tensor *b = tu_tensor(VR_F64, 2, TU_SHAPE(3, 2), TU_VALS(7, 8, 9, 10, 11, 12));
  vr_tensor *c = NULL;
  OK(vr_matmul(a, b, &c));
  tu_assert_values(c, TU_VALS(58, 64, 139, 154), 4, 1e-12, "2x3 . 3x2");
  vr_tensor_free(c);
  vr_tensor *r1 = rnd(2, TU_SHAPE(7, 11), 1), *r2 = rnd(2, TU_SHAPE(11, 5), 2);
  check_mm(r1, r2, 1e-12, "7x11 . 11x5");
  vr_tensor_free(a); vr_tensor_free(b); vr_tensor_free(r1); vr_tensor_free(r2);
}
END_TEST

START_TEST(mm_f32_values) {
  vr_tensor *a = tu_rand(VR_F32, 2, TU_SHAPE(67, 130), 3), *b = tu_rand(VR_F32, 2, TU_SHAPE(130, 45), 4);
  check_mm(a, b, 1e-4, "f32 67x130 . 130x45");
  vr_tensor *c = NULL;
  OK(vr_matmul(a, b, &c));
  ck_assert_int_eq(vr_tensor_dtype(c), VR_F32);
  vr_tensor_free(a); vr_tensor_free(b); vr_tensor_free(c);
}
END_TEST

START_TEST(mm_1d_cases) {
  vr_tensor *u = tu_tensor(VR_F64, 1, TU_SHAPE(3), TU_VALS(1, 2, 3));
  vr_tensor *v = tu_tensor(VR_F64, 1, TU_SHAPE(3), TU_VALS(4, -5, 6));
  vr_tensor *c = NULL;
  OK(vr_matmul(u, v, &c));
  ck_assert_int_eq(vr_tensor_ndim(c), 0);
  ck_assert(fabs(tu_item(c) - 12) < 1e-12);
  vr_tensor_free(c);
  vr_tensor *m = rnd(2, TU_SHAPE(3, 4), 5), *m2 = rnd(2, TU_SHAPE(4, 3), 6);
  check_mm(u, m, 1e-12, "1-D . 2-D");
  check_mm(m2, v, 1e-12, "2-D . 1-D");
  OK(vr_matmul(u, m, &c));
  ck_assert_int_eq(vr_tensor_ndim(c), 1);
  ck_assert_int_eq(vr_tensor_size(c, 0), 4);
  vr_tensor_free(c);
  vr_tensor_free(u); vr_tensor_free(v); vr_tensor_free(m); vr_tensor_free(m2);
}
END_TEST

START_TEST(mm_1d_batched) {
  vr_tensor *u = rnd(1, TU_SHAPE(4), 7), *b = rnd(3, TU_SHAPE(2, 4, 5), 8), *a = rnd(3, TU_SHAPE(2, 3, 4), 9);
  check_mm(u, b, 1e-12, "1-D . batched");
  check_mm(a, u, 1e-12, "batched . 1-D");
  vr_tensor_free(u); vr_tensor_free(b); vr_tensor_free(a);
}
END_TEST

START_TEST(mm_batched) {
  vr_tensor *a = rnd(3, TU_SHAPE(3, 4, 5), 10), *b = rnd(3, TU_SHAPE(3, 5, 2), 11);
  check_mm(a, b, 1e-12, "batched 3x4x5 . 3x5x2");
  vr_tensor *c = rnd(4, TU_SHAPE(2, 3, 4, 5), 12);
  check_mm(c, b, 1e-12, "batched 2x3x4x5 . 3x5x2");
  vr_tensor_free(a); vr_tensor_free(b); vr_tensor_free(c);
}
END_TEST

START_TEST(mm_broadcast_batch) {
  vr_tensor *a = rnd(4, TU_SHAPE(2, 1, 3, 4), 13), *b = rnd(3, TU_SHAPE(3, 4, 5), 14);
  check_mm(a, b, 1e-12, "2x1x3x4 . 3x4x5");
  vr_tensor *c = rnd(4, TU_SHAPE(1, 3, 4, 2), 15), *d = rnd(4, TU_SHAPE(2, 1, 3, 4), 16);
  check_mm(d, c, 1e-12, "2x1x3x4 . 1x3x4x2");
  vr_tensor *e = NULL;
  OK(vr_matmul(d, c, &e));
  ck_assert_int_eq(vr_tensor_size(e, 0), 2);
  ck_assert_int_eq(vr_tensor_size(e, 1), 3);
  vr_tensor_free(a); vr_tensor_free(b); vr_tensor_free(c); vr_tensor_free(d); vr_tensor_free(e);
}
END_TEST

START_TEST(mm_batched_times_2d) {
  /* folded into one GEMM when the batch is contiguous, looped when not */
  vr_tensor *a = rnd(3, TU_SHAPE(4, 3, 5), 17), *b = rnd(2, TU_SHAPE(5, 6), 18), *p = NULL, *q = NULL;
  check_mm(a, b, 1e-12, "4x3x5 . 5x6");
  OK(vr_permute(a, (int[]){1, 0, 2}, &p)); /* [3, 4, 5] with a non-foldable batch */
  check_mm(p, b, 1e-12, "permuted batch . 2-D");
  OK(vr_transpose(b, 0, 1, &q)); /* [6, 5] */
  vr_tensor *r = rnd(3, TU_SHAPE(2, 3, 6), 19);
  check_mm(r, q, 1e-12, "batched . transposed 2-D");
  vr_tensor_free(a); vr_tensor_free(b); vr_tensor_free(p); vr_tensor_free(q); vr_tensor_free(r);
}
END_TEST

START_TEST(mm_transposed_operands) {
  vr_tensor *a = tu_strided(2, TU_SHAPE(6, 4), 20), *b = tu_strided(2, TU_SHAPE(4, 7), 21);
  ck_assert(!vr_tensor_is_contiguous(a) && !vr_tensor_is_contiguous(b));
  check_mm(a, b, 1e-12, "A^T-view . B^T-view");
  vr_tensor *c = rnd(2, TU_SHAPE(6, 4), 22);
  check_mm(c, b, 1e-12, "A . B^T-view");
  vr_tensor *d = tu_strided(3, TU_SHAPE(3, 5, 4), 23), *e = tu_strided(3, TU_SHAPE(3, 4, 2), 24);
  check_mm(d, e, 1e-12, "batched transposed views");
  vr_tensor *f = tu_rand(VR_F32, 2, TU_SHAPE(40, 30), 25), *ft = NULL;
  OK(vr_transpose(f, 0, 1, &ft));
  check_mm(ft, f, 1e-4, "f32 F^T F");
  vr_tensor_free(a); vr_tensor_free(b); vr_tensor_free(c); vr_tensor_free(d); vr_tensor_free(e);
  vr_tensor_free(f); vr_tensor_free(ft);
}
END_TEST

START_TEST(mm_strided_general) {
  /* every other column: neither row-major nor transposed, so the front-end copies */
  vr_tensor *base = rnd(2, TU_SHAPE(5, 8), 26), *a = NULL, *b = rnd(2, TU_SHAPE(4, 3), 27), *v = NULL, *ex = NULL;
  OK(vr_slice(base, 1, 0, 8, 2, &a));
  check_mm(a, b, 1e-12, "column-strided a");
  OK(vr_select(base, 0, 1, &v));
  OK(vr_slice(v, 0, 0, 8, 2, &ex)); /* strided 1-D of 4 */
  check_mm(ex, b, 1e-12, "strided 1-D . 2-D");
  vr_tensor *e2 = NULL, *one = rnd(2, TU_SHAPE(1, 4), 28);
  OK(vr_expand(one, 2, TU_SHAPE(3, 4), &e2)); /* stride-0 rows */
  check_mm(e2, b, 1e-12, "expanded rows");
  vr_tensor_free(base); vr_tensor_free(a); vr_tensor_free(b); vr_tensor_free(v); vr_tensor_free(ex);
  vr_tensor_free(e2); vr_tensor_free(one);
}
END_TEST

START_TEST(mm_many_small_batches) {
  /* small matrices run one batch per thread */
  vr_tensor *a = tu_rand(VR_F32, 3, TU_SHAPE(64, 8, 9), 29), *b = tu_rand(VR_F32, 3, TU_SHAPE(64, 9, 7), 30);
  check_mm(a, b, 1e-5, "64 batches f32");
  vr_tensor_free(a); vr_tensor_free(b);
}
END_TEST

START_TEST(mm_empty) {
  vr_tensor *a = rnd(2, TU_SHAPE(3, 0), 31), *b = rnd(2, TU_SHAPE(0, 2), 32), *c = NULL;
  OK(vr_matmul(a, b, &c));
  tu_assert_values(c, TU_VALS(0, 0, 0, 0, 0, 0), 6, 0, "k = 0 gives zeros");
  vr_tensor_free(c);
  vr_tensor *d = rnd(2, TU_SHAPE(0, 4), 33), *e = rnd(2, TU_SHAPE(4, 2), 34);
  OK(vr_matmul(d, e, &c));
  ck_assert_int_eq(vr_tensor_numel(c), 0);
  ck_assert_int_eq(vr_tensor_size(c, 1), 2);
  vr_tensor_free(c);
  vr_tensor_free(a); vr_tensor_free(b); vr_tensor_free(d); vr_tensor_free(e);
}
END_TEST


/* a stand-in kernel that records what the front-end passes */
static struct { int calls; int64_t ta, tb, lda, ldb; int a_ndim; void *a_data, *b_data; } seen;
static vr_status spy_kernel(const vr_kernel_args *a) {
  seen.calls++;
  seen.ta = a->i[0]; seen.tb = a->i[1]; seen.lda = a->i[2]; seen.ldb = a->i[3];
  seen.a_ndim = a->in[0]->ndim;
  seen.a_data = vr_data(a->in[0]);
  seen.b_data = vr_data(a->in[1]);
  return VR_OK;
}

START_TEST(mm_transposed_no_copy) {
  vr_backends_init();
  vr_kernel_register(VR_OP_MATMUL, VR_CPU, spy_kernel, NULL);
  vr_tensor *a = rnd(2, TU_SHAPE(6, 4), 90), *b = rnd(2, TU_SHAPE(7, 4), 91), *at = NULL, *bt = NULL, *c = NULL;
  OK(vr_transpose(a, 0, 1, &at)); /* [4, 6], strides (1, 4) */
  OK(vr_transpose(b, 0, 1, &bt)); /* [4, 7], strides (1, 4) */
  memset(&seen, 0, sizeof seen);
  OK(vr_matmul(b, at, &c)); /* [7, 4] . [4, 6] */
  ck_assert_int_eq(seen.calls, 1);
  ck_assert(seen.ta == 0 && seen.tb == 1 && seen.lda == 4 && seen.ldb == 4);
  ck_assert_ptr_eq(seen.b_data, vr_tensor_data(a)); /* the transposed view itself, no copy */
  vr_tensor_free(c);
  vr_tensor *x = rnd(3, TU_SHAPE(5, 3, 4), 92);
  memset(&seen, 0, sizeof seen);
  OK(vr_matmul(x, bt, &c)); /* the linear layer: batch folded into one 15x4 . (7x4)^T gemm */
  ck_assert(seen.a_ndim == 2 && seen.ta == 0 && seen.tb == 1);
  ck_assert_ptr_eq(seen.a_data, vr_tensor_data(x));
  ck_assert_ptr_eq(seen.b_data, vr_tensor_data(b));
  vr_cpu_register_linalg();
  vr_tensor_free(c); vr_tensor_free(a); vr_tensor_free(b); vr_tensor_free(at); vr_tensor_free(bt); vr_tensor_free(x);
}
END_TEST

/* ---------------------------------------------------------------- gradients */

static vr_status f_mm(vr_tensor *const *in, void *ctx, vr_tensor **out) { return vr_matmul(in[0], in[1], out); }

static void grad_mm(vr_tensor *a, vr_tensor *b, const char *what) {
  vr_tensor *in[2] = {a, b};
  tu_gradcheck(what, 2, in, 0, f_mm, NULL, 1e-6, 1e-6);
}

START_TEST(mm_grad_2d) {
  vr_tensor *a = rnd(2, TU_SHAPE(3, 4), 40), *b = rnd(2, TU_SHAPE(4, 5), 41);
  grad_mm(a, b, "2-D");
  vr_tensor_free(a); vr_tensor_free(b);
}
END_TEST

START_TEST(mm_grad_transposed) {
  vr_tensor *a = tu_strided(2, TU_SHAPE(3, 4), 42), *b = tu_strided(2, TU_SHAPE(4, 5), 43);
  grad_mm(a, b, "transposed views");
  vr_tensor *base = rnd(2, TU_SHAPE(3, 8), 44), *c = NULL;
  OK(vr_slice(base, 1, 0, 8, 2, &c));
  vr_tensor *d = rnd(2, TU_SHAPE(4, 2), 45);
  grad_mm(c, d, "column-strided");
  vr_tensor_free(a); vr_tensor_free(b); vr_tensor_free(base); vr_tensor_free(c); vr_tensor_free(d);
}
END_TEST

START_TEST(mm_grad_1d) {
  vr_tensor *u = rnd(1, TU_SHAPE(4), 46), *v = rnd(1, TU_SHAPE(4), 47), *m = rnd(2, TU_SHAPE(4, 3), 48);
  vr_tensor *n = rnd(2, TU_SHAPE(2, 4), 49), *bt = rnd(3, TU_SHAPE(2, 4, 3), 50);
  grad_mm(u, v, "dot");
  grad_mm(u, m, "1-D . 2-D");
  grad_mm(n, v, "2-D . 1-D");
  grad_mm(u, bt, "1-D . batched");
  vr_tensor *w = rnd(1, TU_SHAPE(3), 51);
  grad_mm(bt, w, "batched . 1-D");
  vr_tensor_free(w);
  vr_tensor_free(u); vr_tensor_free(v); vr_tensor_free(m); vr_tensor_free(n); vr_tensor_free(bt);
}
END_TEST

START_TEST(mm_grad_batched_broadcast) {
  vr_tensor *a = rnd(4, TU_SHAPE(2, 1, 3, 4), 52), *b = rnd(3, TU_SHAPE(3, 4, 2), 53);
  grad_mm(a, b, "2x1x3x4 . 3x4x2");
  vr_tensor *c = rnd(3, TU_SHAPE(2, 3, 4), 54), *d = rnd(2, TU_SHAPE(4, 5), 55);
  grad_mm(c, d, "batched . 2-D (folded)");
  vr_tensor *f = rnd(2, TU_SHAPE(5, 4), 56);
  grad_mm(f, b, "2-D . batched");
  vr_tensor_free(f);
  vr_tensor *e = tu_strided(3, TU_SHAPE(2, 3, 4), 57);
  grad_mm(e, d, "transposed batched . 2-D");
  vr_tensor_free(a); vr_tensor_free(b); vr_tensor_free(c); vr_tensor_free(d); vr_tensor_free(e);
}
END_TEST

START_TEST(mm_grad_shared_operand) {
  /* a . a^T: the gradient from both uses accumulates */
  vr_tensor *a = rnd(2, TU_SHAPE(3, 4), 58);
  OK(vr_tensor_set_requires_grad(a, 1));
  vr_tensor *at = NULL, *c = NULL;
  OK(vr_transpose(a, 0, 1, &at));
  OK(vr_matmul(a, at, &c));
  vr_tensor *ones = NULL;
  OK(vr_tensor_ones(2, TU_SHAPE(3, 3), VR_F64, VR_CPU, &ones));
  OK(vr_backward(c, ones, 0));
  vr_tensor *g = vr_tensor_grad(a);
  /* d sum(A A^T) / dA_ij = 2 sum_k A_kj */
  double *av = tu_values(a), *gv = tu_values(g);
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 4; j++) {
      double s = 0;
      for (int k = 0; k < 3; k++) s += av[k * 4 + j];
      ck_assert(fabs(gv[i * 4 + j] - 2 * s) < 1e-12);
    }
  free(av); free(gv);
  vr_tensor_free(g); vr_tensor_free(at); vr_tensor_free(c); vr_tensor_free(ones); vr_tensor_free(a);
}
END_TEST

/* ---------------------------------------------------------------- linear */

START_TEST(linear_values) {
  vr_tensor *x = rnd(3, TU_SHAPE(2, 3, 4), 60), *w = rnd(2, TU_SHAPE(5, 4), 61), *b = rnd(1, TU_SHAPE(5), 62);
  vr_tensor *y = NULL;
  OK(vr_linear(x, w, b, &y));
  ck_assert_int_eq(vr_tensor_ndim(y), 3);
  ck_assert_int_eq(vr_tensor_size(y, 2), 5);
  double *xv = tu_values(x), *wv = tu_values(w), *bv = tu_values(b), *yv = tu_values(y);
  for (int r = 0; r < 6; r++)
    for (int o = 0; o < 5; o++) {
      double s = bv[o];
      for (int i = 0; i < 4; i++) s += xv[r * 4 + i] * wv[o * 4 + i];
      ck_assert_msg(fabs(yv[r * 5 + o] - s) < 1e-12, "linear row %d out %d", r, o);
    }
  free(xv); free(wv); free(bv); free(yv);
  vr_tensor_free(y);
  OK(vr_linear(x, w, NULL, &y));
  vr_tensor *r = NULL, *wt = NULL;
  OK(vr_transpose(w, 0, 1, &wt));
  r = ref_matmul(x, wt);
  tu_assert_close(y, r, 1e-12, 1e-12, "linear without bias");
  vr_tensor_free(r); vr_tensor_free(wt); vr_tensor_free(y);
  vr_tensor_free(x); vr_tensor_free(w); vr_tensor_free(b);
}
END_TEST

static vr_status f_lin(vr_tensor *const *in, void *ctx, vr_tensor **out) { return vr_linear(in[0], in[1], in[2], out); }

START_TEST(linear_grad) {
  vr_tensor *x = rnd(3, TU_SHAPE(2, 3, 4), 63), *w = rnd(2, TU_SHAPE(5, 4), 64), *b = rnd(1, TU_SHAPE(5), 65);
  vr_tensor *in[3] = {x, w, b};
  tu_gradcheck("linear 3-D x", 3, in, 0, f_lin, NULL, 1e-6, 1e-6);
  vr_tensor *x1 = rnd(1, TU_SHAPE(4), 66), *xs = tu_strided(2, TU_SHAPE(3, 4), 67);
  vr_tensor *in1[3] = {x1, w, NULL};
  tu_gradcheck("linear 1-D x, no bias", 3, in1, 0, f_lin, NULL, 1e-6, 1e-6);
  vr_tensor *in2[3] = {xs, w, b};
  tu_gradcheck("linear transposed x", 3, in2, 0, f_lin, NULL, 1e-6, 1e-6);
  vr_tensor_free(x); vr_tensor_free(w); vr_tensor_free(b); vr_tensor_free(x1); vr_tensor_free(xs);
}
END_TEST

/* ---------------------------------------------------------------- errors */

START_TEST(mm_error_inner) {
  vr_tensor *a = rnd(2, TU_SHAPE(2, 3), 70), *b = rnd(2, TU_SHAPE(4, 5), 71), *c = NULL;
  FAILS(vr_matmul(a, b, &c), VR_E_SHAPE, "[2, 3]");
  FAILS(vr_matmul(a, b, &c), VR_E_SHAPE, "[4, 5]");
  FAILS(vr_matmul(a, b, &c), VR_E_SHAPE, "vr_matmul");
  ck_assert_ptr_null(c);
  vr_tensor *u = rnd(1, TU_SHAPE(5), 72);
  FAILS(vr_matmul(a, u, &c), VR_E_SHAPE, "inner dimensions");
  vr_tensor_free(a); vr_tensor_free(b); vr_tensor_free(u);
}
END_TEST

START_TEST(mm_error_batch) {
  vr_tensor *a = rnd(3, TU_SHAPE(2, 3, 4), 73), *b = rnd(3, TU_SHAPE(3, 4, 5), 74), *c = NULL;
  FAILS(vr_matmul(a, b, &c), VR_E_SHAPE, "batch dims do not broadcast");
  FAILS(vr_matmul(a, b, &c), VR_E_SHAPE, "[3, 4, 5]");
  vr_tensor_free(a); vr_tensor_free(b);
}
END_TEST

START_TEST(mm_error_args) {
  vr_tensor *a = rnd(2, TU_SHAPE(2, 3), 75), *f = tu_rand(VR_F32, 2, TU_SHAPE(3, 2), 76), *c = NULL, *s = NULL, *i = NULL;
  FAILS(vr_matmul(a, f, &c), VR_E_DTYPE, "b:");
  FAILS(vr_matmul(NULL, a, &c), VR_E_ARG, "a:");
  FAILS(vr_matmul(a, a, NULL), VR_E_ARG, "out");
  OK(vr_tensor_scalar(2, VR_F64, VR_CPU, &s));
  FAILS(vr_matmul(s, a, &c), VR_E_SHAPE, "a: expected at least 1 dim");
  OK(vr_tensor_zeros(2, TU_SHAPE(3, 2), VR_I64, VR_CPU, &i));
  FAILS(vr_matmul(a, i, &c), VR_E_DTYPE, "b: expected a float tensor");
  vr_tensor_free(a); vr_tensor_free(f); vr_tensor_free(s); vr_tensor_free(i);
}
END_TEST

START_TEST(linear_errors) {
  vr_tensor *x = rnd(2, TU_SHAPE(2, 4), 77), *w = rnd(2, TU_SHAPE(5, 3), 78), *w1 = rnd(1, TU_SHAPE(4), 79);
  vr_tensor *w2 = rnd(2, TU_SHAPE(5, 4), 80), *b = rnd(1, TU_SHAPE(4), 81), *y = NULL;
  FAILS(vr_linear(x, w, NULL, &y), VR_E_SHAPE, "in_features = 3");
  FAILS(vr_linear(x, w1, NULL, &y), VR_E_SHAPE, "weight: expected 2 dims");
  FAILS(vr_linear(x, w2, b, &y), VR_E_SHAPE, "bias: expected [5]");
  FAILS(vr_linear(NULL, w2, b, &y), VR_E_ARG, "x:");
  vr_tensor_free(x); vr_tensor_free(w); vr_tensor_free(w1); vr_tensor_free(w2); vr_tensor_free(b);
}
END_TEST

/* ---------------------------------------------------------------- eigh and svd */

/* row-major product of dense f64 buffers: c (m x n) = op(a) op(b), op = transpose when t* */
static void dmm(const double *a, int ta, const double *b, int tb, double *c, int m, int k, int n) {
  for (int i = 0; i < m; i++)
    for (int j = 0; j < n; j++) {
      double s = 0;
      for (int q = 0; q < k; q++) s += (ta ? a[q * m + i] : a[i * k + q]) * (tb ? b[j * k + q] : b[q * n + j]);
      c[i * n + j] = s;
    }
}

/* the k x k Gram matrix of the columns (cols = 1) or rows of x (r x c) is the identity to tol */
static void assert_orthonormal(const vr_tensor *x, int cols, double tol, const char *what) {
  int r = (int)vr_tensor_size(x, 0), c = (int)vr_tensor_size(x, 1), k = cols ? c : r;
  double *v = tu_values(x), *g = malloc(sizeof(double) * (size_t)(k * k + 1));
  if (cols) dmm(v, 1, v, 0, g, c, r, c);
  else dmm(v, 0, v, 1, g, r, c, r);
  for (int i = 0; i < k; i++)
    for (int j = 0; j < k; j++)
      ck_assert_msg(fabs(g[i * k + j] - (i == j)) <= tol, "%s: Gram[%d][%d] = %.12g", what, i, j, g[i * k + j]);
  free(v);
  free(g);
}

/* a symmetric n x n matrix (x + x^T of random values), dtype dt */
static vr_tensor *rand_sym(vr_dtype dt, int n, uint64_t seed) {
  vr_tensor *x = tu_rand(VR_F64, 2, TU_SHAPE(n, n), seed), *xt = NULL, *s = NULL, *o = NULL;
  OK(vr_transpose(x, 0, 1, &xt));
  OK(vr_add(x, xt, &s));
  OK(vr_tensor_to_dtype(s, dt, &o));
  vr_tensor_free(x); vr_tensor_free(xt); vr_tensor_free(s);
  return o;
}

/* |a - V diag(L) V^T| <= tol, V orthonormal, L ascending */
static void check_eigh(const vr_tensor *a, double tol, const char *what) {
  vr_tensor *L = NULL, *V = NULL, *L2 = NULL;
  OK(vr_eigh(a, &L, &V));
  int n = (int)vr_tensor_size(a, 0);
  ck_assert_int_eq(vr_tensor_dtype(L), vr_tensor_dtype(a));
  ck_assert_int_eq(vr_tensor_dtype(V), vr_tensor_dtype(a));
  ck_assert(vr_tensor_ndim(L) == 1 && vr_tensor_size(L, 0) == n);
  ck_assert(vr_tensor_ndim(V) == 2 && vr_tensor_size(V, 0) == n && vr_tensor_size(V, 1) == n);
  double *av = tu_values(a), *lv = tu_values(L), *vv = tu_values(V), *sc = malloc(sizeof(double) * (size_t)(n * n));
  double *r = malloc(sizeof(double) * (size_t)(n * n)), scale = 1;
  for (int i = 0; i < n * n; i++) scale = fmax(scale, fabs(av[i]));
  for (int i = 0; i + 1 < n; i++) ck_assert_msg(lv[i] <= lv[i + 1], "%s: values not ascending at %d", what, i);
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++) sc[i * n + j] = vv[i * n + j] * lv[j];
  dmm(sc, 0, vv, 1, r, n, n, n);
  for (int i = 0; i < n * n; i++)
    ck_assert_msg(fabs(r[i] - av[i]) <= tol * scale, "%s: V diag(L) V^T element %d: %.12g vs %.12g", what, i, r[i], av[i]);
  assert_orthonormal(V, 1, tol, what);
  OK(vr_eigh(a, &L2, NULL)); /* values only: the same values */
  tu_assert_close(L2, L, 0, tol * scale, what);
  free(av); free(lv); free(vv); free(sc); free(r);
  vr_tensor_free(L); vr_tensor_free(V); vr_tensor_free(L2);
}

/* |a - U diag(S) Vh| <= tol, U and Vh orthonormal, S descending and >= 0, reduced shapes */
static void check_svd(const vr_tensor *a, double tol, const char *what) {
  vr_tensor *U = NULL, *S = NULL, *Vh = NULL, *S2 = NULL;
  OK(vr_svd(a, &U, &S, &Vh));
  int m = (int)vr_tensor_size(a, 0), n = (int)vr_tensor_size(a, 1), k = m < n ? m : n;
  ck_assert(vr_tensor_dtype(U) == vr_tensor_dtype(a) && vr_tensor_dtype(S) == vr_tensor_dtype(a) &&
            vr_tensor_dtype(Vh) == vr_tensor_dtype(a));
  ck_assert_msg(vr_tensor_size(U, 0) == m && vr_tensor_size(U, 1) == k, "%s: u shape", what);
  ck_assert_msg(vr_tensor_ndim(S) == 1 && vr_tensor_size(S, 0) == k, "%s: s shape", what);
  ck_assert_msg(vr_tensor_size(Vh, 0) == k && vr_tensor_size(Vh, 1) == n, "%s: vh shape", what);
  double *av = tu_values(a), *uv = tu_values(U), *sv = tu_values(S), *hv = tu_values(Vh), scale = 1;
  double *us = malloc(sizeof(double) * (size_t)(m * k + 1)), *r = malloc(sizeof(double) * (size_t)(m * n + 1));
  for (int i = 0; i < m * n; i++) scale = fmax(scale, fabs(av[i]));
  for (int i = 0; i < k; i++) ck_assert_msg(sv[i] >= 0, "%s: s[%d] = %g < 0", what, i, sv[i]);
  for (int i = 0; i + 1 < k; i++) ck_assert_msg(sv[i] >= sv[i + 1], "%s: s not descending at %d", what, i);
  for (int i = 0; i < m; i++)
    for (int j = 0; j < k; j++) us[i * k + j] = uv[i * k + j] * sv[j];
  dmm(us, 0, hv, 0, r, m, k, n);
  for (int i = 0; i < m * n; i++)
    ck_assert_msg(fabs(r[i] - av[i]) <= tol * scale, "%s: U diag(S) Vh element %d: %.12g vs %.12g", what, i, r[i], av[i]);
  assert_orthonormal(U, 1, tol, what);
  assert_orthonormal(Vh, 0, tol, what);
  OK(vr_svd(a, NULL, &S2, NULL)); /* s only: the same values */
  tu_assert_close(S2, S, 0, tol * scale, what);
  free(av); free(uv); free(sv); free(hv); free(us); free(r);
  vr_tensor_free(U); vr_tensor_free(S); vr_tensor_free(Vh); vr_tensor_free(S2);
}

/* |<column j of V, e>| = 1 for a unit vector e of length n */
static void assert_column_is(const vr_tensor *V, int j, const double *e, double tol, const char *what) {
  int n = (int)vr_tensor_size(V, 0);
  double *v = tu_values(V), d = 0;
  for (int i = 0; i < n; i++) d += v[i * n + j] * e[i];
  ck_assert_msg(fabs(fabs(d) - 1) <= tol, "%s: column %d: |<v, e>| = %.12g", what, j, fabs(d));
  free(v);
}

START_TEST(eigh_known) {
  const vr_dtype dts[2] = {VR_F64, VR_F32};
  for (int q = 0; q < 2; q++) {
    double tol = dts[q] == VR_F64 ? 1e-12 : 1e-5, r2 = sqrt(2.0);
    vr_tensor *d = tu_tensor(dts[q], 2, TU_SHAPE(3, 3), TU_VALS(3, 0, 0, 0, -1, 0, 0, 0, 2)), *L = NULL, *V = NULL;
    OK(vr_eigh(d, &L, &V));
    tu_assert_values(L, TU_VALS(-1, 2, 3), 3, tol, "diag: values ascending");
    assert_column_is(V, 0, TU_VALS(0, 1, 0), tol, "diag");
    assert_column_is(V, 1, TU_VALS(0, 0, 1), tol, "diag");
    assert_column_is(V, 2, TU_VALS(1, 0, 0), tol, "diag");
    vr_tensor_free(L); vr_tensor_free(V);
    /* [[2, 1], [1, 2]]: 1 with (1, -1)/sqrt 2, 3 with (1, 1)/sqrt 2 */
    vr_tensor *b = tu_tensor(dts[q], 2, TU_SHAPE(2, 2), TU_VALS(2, 1, 1, 2));
    OK(vr_eigh(b, &L, &V));
    tu_assert_values(L, TU_VALS(1, 3), 2, tol, "2x2 values");
    assert_column_is(V, 0, TU_VALS(1 / r2, -1 / r2), tol, "2x2");
    assert_column_is(V, 1, TU_VALS(1 / r2, 1 / r2), tol, "2x2");
    vr_tensor_free(L); vr_tensor_free(V);
    /* the second difference matrix: 2 - 2 cos(k pi / 4), vectors sin(j k pi / 4) */
    vr_tensor *t = tu_tensor(dts[q], 2, TU_SHAPE(3, 3), TU_VALS(2, -1, 0, -1, 2, -1, 0, -1, 2));
    OK(vr_eigh(t, &L, &V));
    tu_assert_values(L, TU_VALS(2 - r2, 2, 2 + r2), 3, tol, "tridiagonal values");
    assert_column_is(V, 0, TU_VALS(0.5, r2 / 2, 0.5), tol, "tridiagonal");
    assert_column_is(V, 1, TU_VALS(1 / r2, 0, -1 / r2), tol, "tridiagonal");
    assert_column_is(V, 2, TU_VALS(0.5, -r2 / 2, 0.5), tol, "tridiagonal");
    vr_tensor_free(L); vr_tensor_free(V);
    /* a 1 x 1 matrix */
    vr_tensor *one = tu_tensor(dts[q], 2, TU_SHAPE(1, 1), TU_VALS(-4));
    OK(vr_eigh(one, &L, &V));
    tu_assert_values(L, TU_VALS(-4), 1, 0, "1x1 value");
    tu_assert_values(V, TU_VALS(1), 1, 0, "1x1 vector");
    vr_tensor_free(L); vr_tensor_free(V);
    vr_tensor_free(d); vr_tensor_free(b); vr_tensor_free(t); vr_tensor_free(one);
  }
}
END_TEST

START_TEST(eigh_reconstruct) {
  int sizes[4] = {2, 5, 17, 64};
  for (int q = 0; q < 4; q++) {
    vr_tensor *a = rand_sym(VR_F64, sizes[q], 200 + q), *f = rand_sym(VR_F32, sizes[q], 210 + q);
    check_eigh(a, 1e-12, "f64 random symmetric");
    check_eigh(f, 2e-5, "f32 random symmetric");
    vr_tensor_free(a); vr_tensor_free(f);
  }
  /* a repeated eigenvalue: still orthonormal vectors */
  vr_tensor *i3 = tu_tensor(VR_F64, 2, TU_SHAPE(3, 3), TU_VALS(1, 0, 0, 0, 1, 0, 0, 0, 5));
  check_eigh(i3, 1e-12, "repeated eigenvalue");
  vr_tensor_free(i3);
}
END_TEST

START_TEST(eigh_lower_triangle) {
  /* only the lower triangle counts: garbage above the diagonal changes nothing */
  vr_tensor *a = rand_sym(VR_F64, 6, 220), *g = NULL, *L = NULL, *La = NULL, *V = NULL, *Va = NULL;
  OK(vr_tensor_clone(a, &g));
  for (int64_t i = 0; i < 6; i++)
    for (int64_t j = i + 1; j < 6; j++) OK(vr_tensor_set(g, (int64_t[]){i, j}, 100.0 * (double)(i + 2 * j)));
  OK(vr_eigh(a, &La, &Va));
  OK(vr_eigh(g, &L, &V));
  tu_assert_close(L, La, 0, 1e-12, "upper triangle ignored: values");
  tu_assert_close(V, Va, 0, 1e-12, "upper triangle ignored: vectors");
  vr_tensor_free(L); vr_tensor_free(V);
  /* a transposed view: its lower triangle is the base's upper one */
  vr_tensor *base = NULL, *view = NULL;
  OK(vr_tensor_clone(a, &base));
  for (int64_t i = 0; i < 6; i++)
    for (int64_t j = 0; j < i; j++) OK(vr_tensor_set(base, (int64_t[]){i, j}, -50.0 - (double)j));
  OK(vr_transpose(base, 0, 1, &view));
  ck_assert(!vr_tensor_is_contiguous(view));
  OK(vr_eigh(view, &L, &V));
  tu_assert_close(L, La, 0, 1e-12, "transposed view: values");
  tu_assert_close(V, Va, 0, 1e-12, "transposed view: vectors");
  vr_tensor_free(L); vr_tensor_free(V); vr_tensor_free(La); vr_tensor_free(Va);
  vr_tensor_free(a); vr_tensor_free(g); vr_tensor_free(base); vr_tensor_free(view);
}
END_TEST

START_TEST(svd_known) {
  const vr_dtype dts[2] = {VR_F64, VR_F32};
  for (int q = 0; q < 2; q++) {
    double tol = dts[q] == VR_F64 ? 1e-12 : 1e-5;
    vr_tensor *U = NULL, *S = NULL, *Vh = NULL;
    /* diag(3, -2): s = (3, 2), the sign goes to a vector */
    vr_tensor *d = tu_tensor(dts[q], 2, TU_SHAPE(2, 2), TU_VALS(3, 0, 0, -2));
    OK(vr_svd(d, &U, &S, &Vh));
    tu_assert_values(S, TU_VALS(3, 2), 2, tol, "diag(3, -2)");
    assert_column_is(U, 0, TU_VALS(1, 0), tol, "diag u");
    vr_tensor_free(U); vr_tensor_free(S); vr_tensor_free(Vh);
    /* a rotation scaled by 2: both singular values 2 */
    double c = cos(0.7), sn = sin(0.7);
    vr_tensor *r = tu_tensor(dts[q], 2, TU_SHAPE(2, 2), TU_VALS(2 * c, -2 * sn, 2 * sn, 2 * c));
    OK(vr_svd(r, NULL, &S, NULL));
    tu_assert_values(S, TU_VALS(2, 2), 2, tol, "2 x rotation");
    vr_tensor_free(S);
    check_svd(r, tol, "2 x rotation");
    /* [[3, 0], [4, 5]]: A^T A = [[25, 20], [20, 25]] has eigenvalues 45 and 5 */
    vr_tensor *b = tu_tensor(dts[q], 2, TU_SHAPE(2, 2), TU_VALS(3, 0, 4, 5));
    OK(vr_svd(b, NULL, &S, NULL));
    tu_assert_values(S, TU_VALS(sqrt(45.0), sqrt(5.0)), 2, tol, "[[3, 0], [4, 5]]");
    vr_tensor_free(S);
    /* tall and wide with known values: [[1, 0], [0, 2], [0, 0]] and its transpose */
    vr_tensor *t = tu_tensor(dts[q], 2, TU_SHAPE(3, 2), TU_VALS(1, 0, 0, 2, 0, 0)), *w = NULL;
    OK(vr_svd(t, NULL, &S, NULL));
    tu_assert_values(S, TU_VALS(2, 1), 2, tol, "tall 3x2");
    vr_tensor_free(S);
    OK(vr_transpose(t, 0, 1, &w));
    OK(vr_svd(w, &U, &S, &Vh));
    tu_assert_values(S, TU_VALS(2, 1), 2, tol, "wide 2x3 (a transposed view)");
    ck_assert(vr_tensor_size(U, 0) == 2 && vr_tensor_size(U, 1) == 2 && vr_tensor_size(Vh, 0) == 2 &&
              vr_tensor_size(Vh, 1) == 3);
    vr_tensor_free(U); vr_tensor_free(S); vr_tensor_free(Vh);
    vr_tensor_free(d); vr_tensor_free(r); vr_tensor_free(b); vr_tensor_free(t); vr_tensor_free(w);
  }
}
END_TEST

START_TEST(svd_reconstruct) {
  int shapes[6][2] = {{9, 4}, {4, 9}, {6, 6}, {1, 5}, {5, 1}, {70, 33}};
  for (int q = 0; q < 6; q++) {
    vr_tensor *a = tu_rand(VR_F64, 2, TU_SHAPE(shapes[q][0], shapes[q][1]), 230 + q);
    vr_tensor *f = tu_rand(VR_F32, 2, TU_SHAPE(shapes[q][0], shapes[q][1]), 240 + q);
    char what[64];
    snprintf(what, sizeof what, "f64 %dx%d", shapes[q][0], shapes[q][1]);
    check_svd(a, 1e-12, what);
    snprintf(what, sizeof what, "f32 %dx%d", shapes[q][0], shapes[q][1]);
    check_svd(f, 2e-5, what);
    vr_tensor_free(a); vr_tensor_free(f);
  }
  /* non-contiguous: a column-strided slice */
  vr_tensor *base = tu_rand(VR_F64, 2, TU_SHAPE(5, 8), 250), *sl = NULL;
  OK(vr_slice(base, 1, 0, 8, 2, &sl));
  check_svd(sl, 1e-12, "column-strided 5x4");
  vr_tensor_free(base); vr_tensor_free(sl);
}
END_TEST

START_TEST(svd_rank_deficient) {
  /* x y^T has one singular value |x| |y|, the others 0 */
  double x[5] = {1, -2, 0.5, 3, 1}, y[4] = {2, 0, -1, 1}, v[20], nx = 0, ny = 0;
  for (int i = 0; i < 5; i++) nx += x[i] * x[i];
  for (int j = 0; j < 4; j++) ny += y[j] * y[j];
  for (int i = 0; i < 5; i++)
    for (int j = 0; j < 4; j++) v[i * 4 + j] = x[i] * y[j];
  const vr_dtype dts[2] = {VR_F64, VR_F32};
  for (int q = 0; q < 2; q++) {
    double tol = dts[q] == VR_F64 ? 1e-12 : 2e-5;
    vr_tensor *a = tu_tensor(dts[q], 2, TU_SHAPE(5, 4), v), *S = NULL;
    OK(vr_svd(a, NULL, &S, NULL));
    tu_assert_values(S, TU_VALS(sqrt(nx * ny), 0, 0, 0), 4, tol * 10, "rank 1");
    vr_tensor_free(S);
    check_svd(a, tol, "rank 1 reconstruction");
    vr_tensor *z = NULL;
    OK(vr_tensor_zeros(2, TU_SHAPE(3, 4), dts[q], VR_CPU, &z));
    OK(vr_svd(z, NULL, &S, NULL));
    tu_assert_values(S, TU_VALS(0, 0, 0), 3, 0, "zero matrix");
    vr_tensor_free(S);
    check_svd(z, tol, "zero matrix reconstruction");
    /* eigh of a rank-deficient Gram matrix: zeros at the bottom */
    vr_tensor *at = NULL, *g = NULL, *L = NULL;
    OK(vr_transpose(a, 0, 1, &at));
    OK(vr_matmul(at, a, &g));
    OK(vr_eigh(g, &L, NULL));
    tu_assert_values(L, TU_VALS(0, 0, 0, nx * ny), 4, tol * 100, "eigh of a rank-1 Gram matrix");
    vr_tensor_free(a); vr_tensor_free(z); vr_tensor_free(at); vr_tensor_free(g); vr_tensor_free(L);
  }
}
END_TEST

START_TEST(eigh_svd_empty) {
  vr_tensor *e = NULL, *L = NULL, *V = NULL, *U = NULL, *S = NULL, *Vh = NULL;
  OK(vr_tensor_zeros(2, TU_SHAPE(0, 0), VR_F64, VR_CPU, &e));
  OK(vr_eigh(e, &L, &V));
  ck_assert(vr_tensor_size(L, 0) == 0 && vr_tensor_size(V, 0) == 0 && vr_tensor_size(V, 1) == 0);
  vr_tensor_free(L); vr_tensor_free(V); vr_tensor_free(e);
  OK(vr_tensor_zeros(2, TU_SHAPE(0, 3), VR_F32, VR_CPU, &e));
  OK(vr_svd(e, &U, &S, &Vh));
  ck_assert(vr_tensor_size(S, 0) == 0);
  ck_assert(vr_tensor_size(U, 0) == 0 && vr_tensor_size(U, 1) == 0);
  ck_assert(vr_tensor_size(Vh, 0) == 0 && vr_tensor_size(Vh, 1) == 3);
  vr_tensor_free(U); vr_tensor_free(S); vr_tensor_free(Vh); vr_tensor_free(e);
}
END_TEST

START_TEST(eigh_svd_errors) {
  vr_tensor *r = tu_rand(VR_F64, 2, TU_SHAPE(2, 3), 260), *c = tu_rand(VR_F64, 3, TU_SHAPE(2, 3, 3), 261);
  vr_tensor *v1 = tu_rand(VR_F64, 1, TU_SHAPE(4), 262), *i = NULL, *h = NULL, *nan = NULL, *inf = NULL;
  vr_tensor *L = NULL, *V = NULL, *U = NULL, *S = NULL, *Vh = NULL;
  OK(vr_tensor_zeros(2, TU_SHAPE(3, 3), VR_I64, VR_CPU, &i));
  OK(vr_tensor_zeros(2, TU_SHAPE(3, 3), VR_BF16, VR_CPU, &h));
  FAILS(vr_eigh(r, &L, &V), VR_E_SHAPE, "a: expected a square matrix, got [2, 3]");
  FAILS(vr_eigh(r, &L, &V), VR_E_SHAPE, "vr_eigh");
  ck_assert(L == NULL && V == NULL);
  FAILS(vr_eigh(c, &L, NULL), VR_E_SHAPE, "expected a 2-D matrix, got 3 dims [2, 3, 3]");
  FAILS(vr_eigh(v1, &L, NULL), VR_E_SHAPE, "2-D");
  FAILS(vr_eigh(i, &L, &V), VR_E_DTYPE, "a: expected an f32 or f64 matrix, got i64");
  FAILS(vr_eigh(h, &L, &V), VR_E_DTYPE, "got bf16");
  FAILS(vr_eigh(NULL, &L, &V), VR_E_ARG, "a:");
  FAILS(vr_eigh(r, NULL, &V), VR_E_ARG, "values");
  FAILS(vr_svd(c, &U, &S, &Vh), VR_E_SHAPE, "vr_svd: a: expected a 2-D matrix");
  ck_assert(U == NULL && S == NULL && Vh == NULL);
  FAILS(vr_svd(v1, NULL, &S, NULL), VR_E_SHAPE, "[4]");
  FAILS(vr_svd(i, NULL, &S, NULL), VR_E_DTYPE, "got i64");
  FAILS(vr_svd(r, &U, NULL, &Vh), VR_E_ARG, "s:");
  FAILS(vr_svd(NULL, NULL, &S, NULL), VR_E_ARG, "a:");
  /* non-finite values are refused before LAPACK sees them */
  nan = tu_tensor(VR_F64, 2, TU_SHAPE(2, 2), TU_VALS(1, 0, NAN, 1));
  inf = tu_tensor(VR_F32, 2, TU_SHAPE(2, 3), TU_VALS(1, 0, 2, 3, INFINITY, 1));
  FAILS(vr_eigh(nan, &L, &V), VR_E_VALUE, "vr_eigh: a: expected finite values, got nan at [1, 0]");
  OK(vr_tensor_set(nan, (int64_t[]){1, 0}, 0.0)); /* above the diagonal: not read */
  OK(vr_tensor_set(nan, (int64_t[]){0, 1}, NAN));
  OK(vr_eigh(nan, &L, NULL));
  tu_assert_values(L, TU_VALS(1, 1), 2, 1e-12, "a NaN above the diagonal is not read");
  vr_tensor_free(L);
  L = NULL;
  FAILS(vr_svd(nan, &U, &S, &Vh), VR_E_VALUE, "vr_svd: a: expected finite values, got nan at [0, 1]");
  FAILS(vr_svd(inf, NULL, &S, NULL), VR_E_VALUE, "got inf at [1, 1]");
  ck_assert(L == NULL && V == NULL && U == NULL && S == NULL && Vh == NULL);
  vr_tensor_free(r); vr_tensor_free(c); vr_tensor_free(v1); vr_tensor_free(i); vr_tensor_free(h);
  vr_tensor_free(nan); vr_tensor_free(inf);
}
END_TEST

/* functions of x for the gradient checks; eigh reads a symmetric matrix made of x */
static vr_status sym_of(const vr_tensor *x, vr_tensor **out) {
  vr_tensor *t = NULL;
  vr_status s = vr_transpose(x, 0, 1, &t);
  if (!s) s = vr_add(x, t, out);
  vr_tensor_free(t);
  return s;
}
enum { G_VALUES, G_VALUES_ONLY, G_VEC_SQ, G_VEC_RECON, G_VEC_PROJ, G_S, G_S_ONLY, G_U_SQ, G_VH_SQ, G_UUT, G_VTV,
       G_USVH };
static vr_status f_decomp(vr_tensor *const *in, void *ctx, vr_tensor **out) {
  int kind = *(const int *)ctx;
  vr_tensor *a = NULL, *L = NULL, *V = NULL, *U = NULL, *S = NULL, *Vh = NULL, *t1 = NULL, *t2 = NULL, *t3 = NULL;
  vr_status s = VR_OK;
  if (kind <= G_VEC_PROJ) {
    if ((s = sym_of(in[0], &a))) goto done;
    if ((s = vr_eigh(a, &L, kind == G_VALUES_ONLY ? NULL : &V))) goto done;
    switch (kind) {
    case G_VALUES: case G_VALUES_ONLY: vr_tensor_retain(L); *out = L; break;
    case G_VEC_SQ: s = vr_mul(V, V, out); break; /* (V o V): the sign of each column cancels */
    case G_VEC_RECON: /* V diag(L) V^T: both outputs, the result is a itself */
      if (!(s = vr_unsqueeze(L, 0, &t1)) && !(s = vr_mul(V, t1, &t2)) && !(s = vr_transpose(V, 0, 1, &t3)))
        s = vr_matmul(t2, t3, out);
      break;
    case G_VEC_PROJ: /* V[:, :2] V[:, :2]^T: the projector on the two lowest eigenvectors */
      if (!(s = vr_narrow(V, 1, 0, 2, &t1)) && !(s = vr_transpose(t1, 0, 1, &t2))) s = vr_matmul(t1, t2, out);
      break;
    }
  } else {
    int only = kind == G_S_ONLY;
    if ((s = vr_svd(in[0], only ? NULL : &U, &S, only ? NULL : &Vh))) goto done;
    switch (kind) {
    case G_S: case G_S_ONLY: vr_tensor_retain(S); *out = S; break;
    case G_U_SQ: s = vr_mul(U, U, out); break;
    case G_VH_SQ: s = vr_mul(Vh, Vh, out); break;
    case G_UUT: if (!(s = vr_transpose(U, 0, 1, &t1))) s = vr_matmul(U, t1, out); break;
    case G_VTV: if (!(s = vr_transpose(Vh, 0, 1, &t1))) s = vr_matmul(t1, Vh, out); break;
    case G_USVH: /* U diag(S) Vh = x: every output's node at once */
      if (!(s = vr_unsqueeze(S, 0, &t1)) && !(s = vr_mul(U, t1, &t2))) s = vr_matmul(t2, Vh, out);
      break;
    }
  }
done:
  vr_tensor_free(a); vr_tensor_free(L); vr_tensor_free(V); vr_tensor_free(U); vr_tensor_free(S);
  vr_tensor_free(Vh); vr_tensor_free(t1); vr_tensor_free(t2); vr_tensor_free(t3);
  return s;
}

START_TEST(eigh_grad) {
  const char *names[] = {"eigh values", "eigh values only", "eigh (V o V)", "eigh V diag(L) V^T",
                         "eigh projector on 2 eigenvectors"};
  for (int kind = G_VALUES; kind <= G_VEC_PROJ; kind++) {
    vr_tensor *x = tu_rand(VR_F64, 2, TU_SHAPE(5, 5), 270 + kind);
    tu_gradcheck(names[kind], 1, &x, 0, f_decomp, &kind, 1e-6, 1e-6);
    vr_tensor_free(x);
  }
  int kind = G_VEC_SQ;
  vr_tensor *x = tu_strided(2, TU_SHAPE(4, 4), 279); /* a transposed view */
  tu_gradcheck("eigh (V o V) of a transposed view", 1, &x, 0, f_decomp, &kind, 1e-6, 1e-6);
  vr_tensor_free(x);
}
END_TEST

START_TEST(svd_grad) {
  const char *names[] = {"svd s", "svd s only", "svd (U o U)", "svd (Vh o Vh)", "svd U U^T", "svd Vh^T Vh",
                         "svd U diag(S) Vh"};
  int shapes[3][2] = {{5, 3}, {3, 5}, {4, 4}};
  for (int q = 0; q < 3; q++)
    for (int kind = G_S; kind <= G_USVH; kind++) {
      vr_tensor *x = tu_rand(VR_F64, 2, TU_SHAPE(shapes[q][0], shapes[q][1]), 280 + 10 * q + kind);
      char what[96];
      snprintf(what, sizeof what, "%s, %dx%d", names[kind - G_S], shapes[q][0], shapes[q][1]);
      tu_gradcheck(what, 1, &x, 0, f_decomp, &kind, 1e-6, 1e-6);
      vr_tensor_free(x);
    }
}
END_TEST

START_TEST(eigh_svd_autograd_misc) {
  vr_tensor *x = tu_rand(VR_F64, 2, TU_SHAPE(4, 3), 300), *U = NULL, *S = NULL, *Vh = NULL, *L = NULL, *V = NULL;
  OK(vr_tensor_set_requires_grad(x, 1));
  OK(vr_svd(x, &U, &S, &Vh));
  ck_assert_str_eq(vr_tensor_grad_fn_name(S), "svd");
  ck_assert_str_eq(vr_tensor_grad_fn_name(U), "svd");
  ck_assert_str_eq(vr_tensor_grad_fn_name(Vh), "svd");
  /* s is saved for the backward of u: writing into it is caught */
  OK(vr_mul_scalar_(S, 2.0));
  vr_tensor *sum = NULL;
  OK(vr_sum(U, 0, NULL, 0, &sum));
  FAILS(vr_backward(sum, NULL, 0), VR_E_AUTOGRAD, "modified in place");
  vr_tensor_free(sum); vr_tensor_free(U); vr_tensor_free(S); vr_tensor_free(Vh);
  /* no grad mode: no node, and the values-only paths compute no vectors */
  int prev = vr_set_grad_enabled(0);
  OK(vr_svd(x, NULL, &S, NULL));
  ck_assert(!vr_tensor_requires_grad(S));
  vr_set_grad_enabled(prev);
  vr_tensor_free(S);
  vr_tensor *a = rand_sym(VR_F64, 4, 301);
  OK(vr_tensor_set_requires_grad(a, 1));
  OK(vr_eigh(a, &L, &V));
  ck_assert_str_eq(vr_tensor_grad_fn_name(L), "eigh");
  ck_assert_str_eq(vr_tensor_grad_fn_name(V), "eigh");
  /* d sum(L) / dA = V V^T = I (the trace) */
  OK(vr_sum(L, 0, NULL, 0, &sum));
  OK(vr_backward(sum, NULL, 0));
  vr_tensor *g = vr_tensor_grad(a);
  tu_assert_values(g, TU_VALS(1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1), 16, 1e-12, "d trace / dA = I");
  vr_tensor_free(g); vr_tensor_free(sum); vr_tensor_free(L); vr_tensor_free(V); vr_tensor_free(a);
  vr_tensor_free(x);
}
END_TEST

START_TEST(eigh_svd_table) {
  /* one entry per device: the CPU kernels and the CUDA column's host-staged ones */
  ck_assert(vr_kernel_exists(VR_OP_EIGH, VR_CPU, 0) && vr_kernel_exists(VR_OP_SVD, VR_CPU, 0));
  ck_assert(vr_kernel_exists(VR_OP_EIGH, VR_CUDA, 0) && vr_kernel_exists(VR_OP_SVD, VR_CUDA, 0));
}
END_TEST

START_TEST(eigh_svd_cuda) {
  TU_SKIP_NO_CUDA();
  vr_tensor *a = rand_sym(VR_F32, 24, 310), *x = tu_rand(VR_F32, 2, TU_SHAPE(40, 12), 311), *ad = NULL, *xd = NULL;
  vr_tensor *L = NULL, *V = NULL, *Ld = NULL, *Vd = NULL, *U = NULL, *S = NULL, *Vh = NULL, *Ud = NULL, *Sd = NULL,
            *Vhd = NULL;
  OK(vr_tensor_to_device(a, VR_CUDA, &ad));
  OK(vr_tensor_to_device(x, VR_CUDA, &xd));
  OK(vr_eigh(a, &L, &V));
  OK(vr_eigh(ad, &Ld, &Vd));
  ck_assert(vr_tensor_device(Ld) == VR_CUDA && vr_tensor_device(Vd) == VR_CUDA);
  tu_assert_close(Ld, L, 0, 1e-5, "cuda eigh values");
  tu_assert_close(Vd, V, 0, 1e-4, "cuda eigh vectors (the same LAPACK call)");
  OK(vr_svd(x, &U, &S, &Vh));
  OK(vr_svd(xd, &Ud, &Sd, &Vhd));
  ck_assert(vr_tensor_device(Ud) == VR_CUDA && vr_tensor_device(Sd) == VR_CUDA && vr_tensor_device(Vhd) == VR_CUDA);
  tu_assert_close(Sd, S, 0, 1e-5, "cuda svd s");
  tu_assert_close(Ud, U, 0, 1e-4, "cuda svd u");
  tu_assert_close(Vhd, Vh, 0, 1e-4, "cuda svd vh");
  /* the backward runs on the device: d sum(s) / dx = U Vh */
  vr_tensor *sum = NULL, *g = NULL, *ref = NULL;
  OK(vr_tensor_set_requires_grad(xd, 1));
  vr_tensor_free(Sd);
  OK(vr_svd(xd, NULL, &Sd, NULL));
  OK(vr_sum(Sd, 0, NULL, 0, &sum));
  OK(vr_backward(sum, NULL, 0));
  g = vr_tensor_grad(xd);
  ck_assert(g && vr_tensor_device(g) == VR_CUDA);
  OK(vr_matmul(U, Vh, &ref));
  tu_assert_close(g, ref, 0, 1e-4, "cuda d sum(s) / dx = U Vh");
  vr_tensor_free(sum); vr_tensor_free(g); vr_tensor_free(ref);
  vr_tensor_free(a); vr_tensor_free(x); vr_tensor_free(ad); vr_tensor_free(xd);
  vr_tensor_free(L); vr_tensor_free(V); vr_tensor_free(Ld); vr_tensor_free(Vd);
  vr_tensor_free(U); vr_tensor_free(S); vr_tensor_free(Vh); vr_tensor_free(Ud); vr_tensor_free(Sd); vr_tensor_free(Vhd);
}
END_TEST

static Suite *linalg_suite(void) {
  Suite *s = suite_create("linalg");
  TCase *t = tcase_create("matmul");
  tcase_set_timeout(t, 60);
  tcase_add_test(t, mm_2d_values);
  tcase_add_test(t, mm_f32_values);
  tcase_add_test(t, mm_1d_cases);
  tcase_add_test(t, mm_1d_batched);
  tcase_add_test(t, mm_batched);
  tcase_add_test(t, mm_broadcast_batch);
  tcase_add_test(t, mm_batched_times_2d);
  tcase_add_test(t, mm_transposed_operands);
  tcase_add_test(t, mm_strided_general);
  tcase_add_test(t, mm_transposed_no_copy);
  tcase_add_test(t, mm_many_small_batches);
  tcase_add_test(t, mm_empty);
  tcase_add_test(t, mm_grad_2d);
  tcase_add_test(t, mm_grad_transposed);
  tcase_add_test(t, mm_grad_1d);
  tcase_add_test(t, mm_grad_batched_broadcast);
  tcase_add_test(t, mm_grad_shared_operand);
  tcase_add_test(t, linear_values);
  tcase_add_test(t, linear_grad);
  tcase_add_test(t, mm_error_inner);
  tcase_add_test(t, mm_error_batch);
  tcase_add_test(t, mm_error_args);
  tcase_add_test(t, linear_errors);
  suite_add_tcase(s, t);
  TCase *d = tcase_create("eigh_svd");
  tcase_set_timeout(d, 120);
  tcase_add_test(d, eigh_known);
  tcase_add_test(d, eigh_reconstruct);
  tcase_add_test(d, eigh_lower_triangle);
  tcase_add_test(d, svd_known);
  tcase_add_test(d, svd_reconstruct);
  tcase_add_test(d, svd_rank_deficient);
  tcase_add_test(d, eigh_svd_empty);
  tcase_add_test(d, eigh_svd_errors);
  tcase_add_test(d, eigh_grad);
  tcase_add_test(d, svd_grad);
  tcase_add_test(d, eigh_svd_autograd_misc);
  tcase_add_test(d, eigh_svd_table);
  tcase_add_test(d, eigh_svd_cuda);
  suite_add_tcase(s, d);
  return s;
}

VR_TEST_MAIN(linalg_suite)
