/* test_linalg.c: vr_matmul and vr_linear against naive f64 loops, finite-difference gradients
 * (transposed and non-contiguous operands, broadcast batch dims, 1-D cases) and error messages.
 * vr_eigh and vr_svd are test_eigh_svd.c's. */
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
  return s;
}

VR_TEST_MAIN(linalg_suite)
