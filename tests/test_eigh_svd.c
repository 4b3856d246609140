/* test_eigh_svd.c: vr_eigh and vr_svd on matrices with known decompositions, reconstructions,
 * orthonormality, rank-deficient and empty input, errors, and finite-difference gradients of
 * every output. */
#include "testutil.h"

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

static Suite *eigh_svd_suite(void) {
  Suite *s = suite_create("eigh_svd");
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

VR_TEST_MAIN(eigh_svd_suite)
