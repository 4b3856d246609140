/* test_reg.c: the regularizers (VISReg, SWD, SIGReg, VICReg and its pooled variant, Barlow
 * Twins, the invariance term and the mixed objective) against the reference table of
 * shared/spec/REGULARIZERS.md, finite differences, the N(0, I) floor, the behaviour at collapse,
 * float32 against float64, chunking, thread-count independence and the error messages. */
#include "testutil.h"
#include "../core/reg/reg.h"
#include "../core/reg/slices.h"

/* ---------------------------------------------------------------- inputs */

/* the spec's closed-form z[v,b,d] (f64, or converted) */
static vr_tensor *ref_z(int64_t V, int64_t B, int64_t D, vr_dtype dt) {
  double *v = malloc(sizeof(double) * (size_t)(V * B * D));
  for (int64_t i = 0; i < V; i++)
    for (int64_t b = 0; b < B; b++)
      for (int64_t d = 0; d < D; d++)
        v[(i * B + b) * D + d] = sin(0.5 + 1.3 * i + 0.71 * b + 0.37 * d + 0.011 * b * d) * (1 + 0.25 * cos(0.2 * b + 0.9 * d));
  vr_tensor *t = NULL, *c = NULL;
  vr_tensor_from_buffer(v, 3, TU_SHAPE(V, B, D), VR_F64, VR_CPU, &t);
  free(v);
  if (dt == VR_F64) return t;
  vr_tensor_to_dtype(t, dt, &c);
  vr_tensor_free(t);
  return c;
}
static vr_tensor *ref_G(int64_t D, int64_t K) {
  double *v = malloc(sizeof(double) * (size_t)(D * K));
  for (int64_t d = 0; d < D; d++)
    for (int64_t k = 0; k < K; k++) v[d * K + k] = cos(0.3 + 0.9 * d + 1.7 * k + 0.05 * d * k);
  vr_tensor *t = NULL;
  vr_tensor_from_buffer(v, 2, TU_SHAPE(D, K), VR_F64, VR_CPU, &t);
  free(v);
  return t;
}
/* standard normal values from Philox */
static vr_tensor *normal(int ndim, const int64_t *shape, uint64_t seed, vr_dtype dt) {
  vr_generator *g = NULL;
  vr_tensor *t = NULL;
  vr_generator_new(seed, 3, &g);
  vr_rand_normal(g, ndim, shape, 0, 1, dt, VR_CPU, &t);
  vr_generator_free(g);
  return t;
}

/* ---------------------------------------------------------------- running a method */

enum { M_VISREG, M_SWD, M_SIGREG, M_VICREG_POOLED, M_VICREG, M_BARLOW, M_INV, M_COUNT };
static const char *mnames[] = {"visreg", "swd", "sigreg", "vicreg_pooled", "vicreg", "barlow", "invariance"};

typedef struct {
  int method;
  const vr_tensor *slices;
  double w[3];     /* visreg: scale, shape, center */
  double lambda;   /* < 0: the plain regularizer; else lambda L + (1 - lambda) L_inv */
  int global;      /* global views for the invariance term */
} mctx;

static vr_status reg_loss(const mctx *c, const vr_tensor *z, vr_tensor **out) {
  switch (c->method) {
  case M_VISREG: return vr_visreg(z, c->slices, 0, 0, 0, c->w[0], c->w[1], c->w[2], out, NULL);
  case M_SWD: return vr_swd(z, c->slices, 0, 0, 0, out);
  case M_SIGREG: return vr_sigreg(z, c->slices, 0, 0, 0, 17, 3.0, out);
  case M_VICREG_POOLED: return vr_vicreg_pooled(z, 25, 1, out, NULL);
  case M_VICREG: return vr_vicreg(z, 25, 25, 1, out, NULL);
  case M_BARLOW: return vr_barlow(z, 0.0051, out);
  default: return vr_invariance(z, c->global, out);
  }
}

static vr_status mixed(const mctx *c, const vr_tensor *z, vr_tensor **out) {
  if (c->lambda < 0) return reg_loss(c, z, out);
  vr_tensor *r = NULL, *i = NULL, *a = NULL, *b = NULL;
  vr_status st = reg_loss(c, z, &r);
  if (!st) st = vr_invariance(z, c->global, &i);
  if (!st) st = vr_mul_scalar(r, c->lambda, &a);
  if (!st) st = vr_mul_scalar(i, 1 - c->lambda, &b);
  if (!st) st = vr_add(a, b, out);
  vr_tensor_free(r);
  vr_tensor_free(i);
  vr_tensor_free(a);
  vr_tensor_free(b);
  return st;
}
static vr_status gc_fn(vr_tensor *const *in, void *ctx, vr_tensor **out) { return mixed(ctx, in[0], out); }

/* loss and dL/dz of one method on z (z is not modified) */
static double loss_and_grad(const mctx *c, vr_tensor *zin, double **grad) {
  vr_tensor *z = NULL, *L = NULL;
  OK(vr_tensor_clone(zin, &z));
  vr_tensor *zl = NULL;
  OK(vr_detach(z, &zl));
  OK(vr_tensor_set_requires_grad(zl, 1));
  OK(mixed(c, zl, &L));
  double v = tu_item(L);
  if (grad) {
    OK(vr_backward(L, NULL, 0));
    vr_tensor *g = vr_tensor_grad(zl);
    ck_assert_ptr_nonnull(g);
    *grad = tu_values(g);
    vr_tensor_free(g);
  }
  vr_tensor_free(L);
  vr_tensor_free(zl);
  vr_tensor_free(z);
  return v;
}

static double norm2(const double *g, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; i++) s += g[i] * g[i];
  return sqrt(s);
}

#define CLOSE(x, y, rtol, what) \
  ck_assert_msg(fabs((x) - (y)) <= (rtol) * fabs(y), "%s: %.12g vs expected %.12g (rel %.3g)", what, (double)(x), \
                (double)(y), fabs((x) - (y)) / fabs(y))

/* ---------------------------------------------------------------- reference table */

START_TEST(closed_form_inputs_match_the_spec) {
  vr_tensor *z = ref_z(3, 16, 8, VR_F64), *G = ref_G(8, 4);
  double *zv = tu_values(z), *gv = tu_values(G);
  const double ez[] = {0.5992819233, 0.8831075586, 0.8920629730, 0.7733872634};
  const double eg[] = {0.9553364891, 0.3623577545, -0.5048461046, -0.9899924966};
  for (int k = 0; k < 4; k++) {
    ck_assert_double_eq_tol(zv[k], ez[k], 1e-10);
    ck_assert_double_eq_tol(gv[k * 4], eg[k], 1e-10);
  }
  free(zv);
  free(gv);
  vr_tensor_free(z);
  vr_tensor_free(G);
}
END_TEST

static const struct {
  int method;
  double value, gnorm, jepa, g0[3];
} table[] = {
    {M_VISREG, 1.4324645553e-01, 4.4214079108e-02, 1.7960797450e-01, {-3.859271958e-03, -4.015963991e-03, -1.053796751e-03}},
    {M_SWD, 9.9203230602e-02, 5.7429350645e-02, 1.3996907206e-01, {2.165127572e-05, -1.264854067e-03, -1.065111053e-03}},
    {M_SIGREG, 1.5834118458e+00, 8.1557127797e-01, 1.4757568258e+00, {1.489686521e-02, 3.578847197e-03, -8.381603843e-03}},
    {M_VICREG_POOLED, 2.8500020031e+00, 5.4270844580e-01, 2.6156879673e+00, {-2.878829394e-02, -6.088939242e-02, -6.733683246e-02}},
    {M_VICREG, 2.7103631285e+01, 4.8889570881e+00, 0, {-3.058243749e-01, -1.359890594e-01, 2.138476809e-02}},
    {M_BARLOW, 4.6426149030e+00, 9.7785380960e-01, 4.2290395772e+00, {-7.909656092e-02, -7.946186143e-02, -5.621267728e-02}},
};

START_TEST(reference_table_rows) {
  int r = _i;
  int V = table[r].method == M_VICREG ? 2 : 3;
  vr_tensor *z = ref_z(V, 16, 8, VR_F64), *G = ref_G(8, 4);
  mctx c = {.method = table[r].method, .slices = G, .w = {1, 1, 1}, .lambda = -1, .global = 2};
  double *g = NULL;
  double v = loss_and_grad(&c, z, &g);
  char what[64];
  snprintf(what, sizeof what, "%s value", mnames[c.method]);
  CLOSE(v, table[r].value, 1e-6, what);
  snprintf(what, sizeof what, "%s |g|", mnames[c.method]);
  CLOSE(norm2(g, V * 16 * 8), table[r].gnorm, 1e-6, what);
  for (int k = 0; k < 3; k++) {
    snprintf(what, sizeof what, "%s g[0,0,%d]", mnames[c.method], k);
    CLOSE(g[k], table[r].g0[k], 1e-6, what);
  }
  free(g);
  if (table[r].jepa != 0) {
    c.lambda = 0.9;
    v = loss_and_grad(&c, z, NULL);
    snprintf(what, sizeof what, "%s jepa", mnames[c.method]);
    CLOSE(v, table[r].jepa, 1e-6, what);
  }
  vr_tensor_free(z);
  vr_tensor_free(G);
}
END_TEST

START_TEST(visreg_terms_weights_and_invariance) {
  vr_tensor *z = ref_z(3, 16, 8, VR_F64), *G = ref_G(8, 4), *L = NULL, *T = NULL;
  OK(vr_visreg(z, G, 4, 0, 0, 1, 1, 1, &L, &T));
  ck_assert_int_eq(vr_tensor_ndim(L), 0);
  ck_assert_int_eq(vr_tensor_ndim(T), 1);
  ck_assert_int_eq(vr_tensor_size(T, 0), 3);
  ck_assert(!vr_tensor_requires_grad(T));
  double *t = tu_values(T);
  CLOSE(t[0], 2.381574649e-03, 1e-6, "center");
  CLOSE(t[1], 8.759492759e-02, 1e-6, "scale");
  CLOSE(t[2], 5.326995329e-02, 1e-6, "shape");
  CLOSE(tu_item(L), t[0] + t[1] + t[2], 1e-14, "total = sum of terms");
  free(t);
  vr_tensor_free(L);
  vr_tensor_free(T);
  OK(vr_visreg(z, G, 0, 0, 0, 0.5, 2, 0.5, &L, NULL));
  CLOSE(tu_item(L), 1.515281577e-01, 1e-6, "weights (0.5, 2, 0.5)");
  vr_tensor_free(L);
  OK(vr_invariance(z, 2, &L));
  CLOSE(tu_item(L), 5.068616452e-01, 1e-6, "L_inv");
  vr_tensor_free(L);
  vr_tensor_free(z);
  vr_tensor_free(G);
}
END_TEST

START_TEST(vicreg_terms_are_unweighted) {
  vr_tensor *z = ref_z(2, 16, 8, VR_F64), *L = NULL, *T = NULL, *L2 = NULL, *T2 = NULL;
  OK(vr_vicreg(z, 25, 25, 1, &L, &T));
  double *t = tu_values(T);
  CLOSE(tu_item(L), 25 * t[0] + 25 * t[1] + t[2], 1e-12, "vicreg total");
  OK(vr_vicreg_pooled(z, 25, 1, &L2, &T2));
  double *t2 = tu_values(T2);
  CLOSE(tu_item(L2), 25 * t2[0] + t2[1], 1e-12, "vicreg_pooled total");
  free(t);
  free(t2);
  vr_tensor *objs[] = {z, L, T, L2, T2};
  for (int k = 0; k < 5; k++) vr_tensor_free(objs[k]);
}
END_TEST

/* ---------------------------------------------------------------- quantiles and slices */

START_TEST(quantiles_are_accurate) {
  vr_tensor *q = NULL;
  OK(vr_gauss_quantiles(3, VR_F64, VR_CPU, &q));
  double *v = tu_values(q);
  ck_assert_double_eq_tol(v[0], -0.67448975019608171, 1e-15);
  ck_assert_double_eq(v[1], 0.0);
  ck_assert_double_eq(v[2], -v[0]);
  free(v);
  vr_tensor_free(q);
  OK(vr_gauss_quantiles(999, VR_F64, VR_CPU, &q)); /* i = 1: Phi^-1(0.001) */
  v = tu_values(q);
  ck_assert_double_eq_tol(v[0], -3.0902323061678132, 1e-14);
  ck_assert_double_eq_tol(v[499], 0.0, 1e-300);
  free(v);
  vr_tensor_free(q);
  OK(vr_gauss_quantiles(1000000, VR_F64, VR_CPU, &q)); /* far tail */
  v = tu_values(q);
  ck_assert_double_eq_tol(v[0], -4.7534245109110635, 1e-13);
  free(v);
  vr_tensor_free(q);
  /* erf(erfinv(y)) = y across the range, including near +-1 */
  const double ys[] = {-0.999999, -0.99, -0.7, -0.3, 0, 1e-9, 0.25, 0.5, 0.9, 0.9999, 0.99999999};
  for (size_t k = 0; k < sizeof ys / sizeof *ys; k++) {
    double x = vr_erfinv_f64(ys[k]);
    double back = fabs(ys[k]) > 0.5 ? copysign(1 - erfc(fabs(x)), x) : erf(x);
    ck_assert_msg(fabs(back - ys[k]) <= 2e-16 * (1 + fabs(ys[k])), "erf(erfinv(%g)) = %.17g", ys[k], back);
  }
  ck_assert_double_eq_tol(vr_erfinv_f64(0.5), 0.47693627620446987, 1e-16);
  ck_assert(isinf(vr_erfinv_f64(1.0)) && isnan(vr_erfinv_f64(1.5)));
  OK(vr_gauss_quantiles(5, VR_F32, VR_CPU, &q));
  ck_assert_int_eq(vr_tensor_dtype(q), VR_F32);
  vr_tensor_free(q);
  FAILS(vr_gauss_quantiles(0, VR_F64, VR_CPU, &q), VR_E_ARG, "B");
}
END_TEST

/* the targets the front-ends keep between calls: the same numbers as vr_gauss_quantiles for every
 * (B, dtype) asked for, also once more have been asked for than are kept */
START_TEST(kept_targets_match_fresh_ones) {
  const int64_t Bs[] = {3, 256, 257, 5, 1000, 7, 8, 9, 10, 11, 12, 256, 3};
  for (int round = 0; round < 2; round++)
    for (size_t k = 0; k < sizeof Bs / sizeof *Bs; k++) {
      vr_dtype dt = (k + round) % 2 ? VR_F32 : VR_F64;
      vr_tensor *kept = NULL, *fresh = NULL, *again = NULL;
      OK(vr_reg_targets(Bs[k], dt, VR_CPU, &kept));
      OK(vr_gauss_quantiles(Bs[k], dt, VR_CPU, &fresh));
      ck_assert_int_eq(vr_tensor_dtype(kept), dt);
      ck_assert_int_eq(vr_tensor_numel(kept), Bs[k]);
      double *a = tu_values(kept), *b = tu_values(fresh);
      for (int64_t i = 0; i < Bs[k]; i++) ck_assert_msg(a[i] == b[i], "B %lld [%lld]", (long long)Bs[k], (long long)i);
      free(a);
      free(b);
      OK(vr_reg_targets(Bs[k], dt, VR_CPU, &again)); /* asked again at once: the kept tensor */
      ck_assert(vr_tensor_shares_storage(kept, again));
      vr_tensor_free(again);
      vr_tensor_free(fresh);
      vr_tensor_free(kept);
    }
}
END_TEST

START_TEST(drawn_slices_follow_seed_and_step) {
  vr_tensor *W = NULL, *W2 = NULL;
  OK(vr_draw_slices(6, 5, 7, 3, 1e-12, VR_F64, VR_CPU, &W));
  double *w = tu_values(W);
  for (int k = 0; k < 5; k++) { /* unit columns */
    double s = 0;
    for (int d = 0; d < 6; d++) s += w[d * 5 + k] * w[d * 5 + k];
    ck_assert_double_eq_tol(s, 1.0, 1e-11);
  }
  /* element j = d K + k: Box-Muller pair j / 2 of Philox (seed, stream = step), cos for even j */
  double r[30];
  for (int p = 0; p < 15; p++) vr_reg_slice_pair(7, 3, (uint64_t)p, &r[2 * p], &r[2 * p + 1]);
  for (int k = 0; k < 5; k++) { /* every element: the vectorised lanes and the scalar tail */
    double n = 0;
    for (int d = 0; d < 6; d++) n += r[d * 5 + k] * r[d * 5 + k];
    for (int d = 0; d < 6; d++) ck_assert_double_eq_tol(w[d * 5 + k], r[d * 5 + k] / sqrt(n), 1e-12);
  }
  for (int j = 0; j < 30; j++) ck_assert(fabs(r[j]) < 6);
  /* a larger draw (many 8-lane and 256-pair blocks) against the scalar definition */
  vr_tensor *big = NULL;
  OK(vr_draw_slices(40, 100, 11, 5, 0, VR_F64, VR_CPU, &big));
  double *bv = tu_values(big), *col = malloc(sizeof(double) * 4000);
  for (int p = 0; p < 2000; p++) vr_reg_slice_pair(11, 5, (uint64_t)p, &col[2 * p], &col[2 * p + 1]);
  for (int k = 0; k < 100; k++) {
    double n = 0;
    for (int d = 0; d < 40; d++) n += col[d * 100 + k] * col[d * 100 + k];
    for (int d = 0; d < 40; d++) ck_assert_double_eq_tol(bv[d * 100 + k], col[d * 100 + k] / sqrt(n), 1e-14);
  }
  free(bv);
  free(col);
  vr_tensor_free(big);
  OK(vr_draw_slices(6, 5, 7, 4, 1e-12, VR_F64, VR_CPU, &W2));
  double *w2 = tu_values(W2);
  ck_assert(w2[0] != w[0]);
  free(w);
  free(w2);
  vr_tensor_free(W2);
  /* the op with (seed, step) uses exactly these slices; a new step gives a new loss */
  vr_tensor *z = normal(3, TU_SHAPE(2, 12, 6), 5, VR_F64), *L1 = NULL, *L2 = NULL, *L3 = NULL, *L4 = NULL;
  OK(vr_visreg(z, NULL, 5, 7, 3, 1, 1, 1, &L1, NULL));
  OK(vr_visreg(z, W, 5, 0, 0, 1, 1, 1, &L2, NULL));
  OK(vr_visreg(z, NULL, 5, 7, 3, 1, 1, 1, &L3, NULL));
  OK(vr_visreg(z, NULL, 5, 7, 4, 1, 1, 1, &L4, NULL));
  CLOSE(tu_item(L1), tu_item(L2), 1e-10, "drawn vs explicit slices");
  ck_assert_double_eq(tu_item(L1), tu_item(L3));
  ck_assert(tu_item(L1) != tu_item(L4));
  vr_tensor *objs[] = {W, z, L1, L2, L3, L4};
  for (int k = 0; k < 6; k++) vr_tensor_free(objs[k]);
}
END_TEST

/* ---------------------------------------------------------------- gradients */

/* full finite-difference checks for every method whose gradient is the exact derivative */
START_TEST(gradcheck_each_method) {
  int m = _i; /* M_SWD .. M_INV */
  int V = m == M_VICREG ? 2 : 3;
  vr_tensor *G = normal(2, TU_SHAPE(4, 3), 11, VR_F64);
  mctx c = {.method = m, .slices = G, .w = {1, 1, 1}, .lambda = -1, .global = 2};
  vr_tensor *z = normal(3, TU_SHAPE(V, 6, 4), 20 + m, VR_F64);
  char name[64];
  snprintf(name, sizeof name, "%s contiguous", mnames[m]);
  tu_gradcheck(name, 1, &z, 0, gc_fn, &c, 1e-6, 1e-6);
  vr_tensor_free(z);
  z = tu_strided(3, TU_SHAPE(V, 6, 4), 30 + m); /* non-contiguous */
  snprintf(name, sizeof name, "%s strided", mnames[m]);
  tu_gradcheck(name, 1, &z, 0, gc_fn, &c, 1e-6, 1e-6);
  vr_tensor_free(z);
  if (m != M_INV && m != M_VICREG) { /* the mixed objective */
    z = normal(3, TU_SHAPE(3, 6, 4), 40 + m, VR_F64);
    c.lambda = 0.7;
    snprintf(name, sizeof name, "%s mixed", mnames[m]);
    tu_gradcheck(name, 1, &z, 0, gc_fn, &c, 1e-6, 1e-6);
    vr_tensor_free(z);
  }
  vr_tensor_free(G);
}
END_TEST

/* VISReg's center and scale terms: exact derivatives (shape weight 0) */
START_TEST(gradcheck_visreg_center_scale) {
  vr_tensor *G = normal(2, TU_SHAPE(4, 3), 11, VR_F64), *z = normal(3, TU_SHAPE(2, 6, 4), 50, VR_F64);
  mctx c = {.method = M_VISREG, .slices = G, .w = {0.7, 0, 1.3}, .lambda = -1, .global = 1};
  tu_gradcheck("visreg center+scale", 1, &z, 0, gc_fn, &c, 1e-6, 1e-6);
  vr_tensor_free(z);
  vr_tensor_free(G);
}
END_TEST

/* The shape term detaches sigma, so its gradient is the derivative along directions that keep
 * every sigma[v, d] fixed to first order: delta with sum_b (z - mu)[v, b, d] delta[v, b, d] = 0.
 * Central differences along such directions (mu may move) must match <dL/dz, delta>. */
static void directional_check(const mctx *c, vr_tensor *z, int ndir, double tol) {
  int64_t V = vr_tensor_size(z, 0), B = vr_tensor_size(z, 1), D = vr_tensor_size(z, 2), n = V * B * D;
  double *g = NULL;
  loss_and_grad(c, z, &g);
  double *zv = tu_values(z), *dl = malloc(sizeof(double) * (size_t)n), *zp = malloc(sizeof(double) * (size_t)n);
  for (int r = 0; r < ndir; r++) {
    vr_tensor *dt = normal(3, TU_SHAPE(V, B, D), 100 + r, VR_F64);
    double *dv = tu_values(dt);
    vr_tensor_free(dt);
    for (int64_t v = 0; v < V; v++)
      for (int64_t d = 0; d < D; d++) {
        double mu = 0, cc = 0, cd = 0;
        for (int64_t b = 0; b < B; b++) mu += zv[(v * B + b) * D + d] / (double)B;
        for (int64_t b = 0; b < B; b++) {
          double x = zv[(v * B + b) * D + d] - mu;
          cc += x * x;
          cd += x * dv[(v * B + b) * D + d];
        }
        for (int64_t b = 0; b < B; b++) dv[(v * B + b) * D + d] -= cd / cc * (zv[(v * B + b) * D + d] - mu);
      }
    double eps = 1e-6, f[2];
    for (int s = 0; s < 2; s++) {
      for (int64_t i = 0; i < n; i++) zp[i] = zv[i] + (s ? -eps : eps) * dv[i];
      vr_tensor *zt = NULL, *L = NULL;
      OK(vr_tensor_from_buffer(zp, 3, TU_SHAPE(V, B, D), VR_F64, VR_CPU, &zt));
      OK(mixed(c, zt, &L));
      f[s] = tu_item(L);
      vr_tensor_free(L);
      vr_tensor_free(zt);
    }
    double num = (f[0] - f[1]) / (2 * eps), ana = 0;
    for (int64_t i = 0; i < n; i++) ana += g[i] * dv[i];
    ck_assert_msg(fabs(num - ana) <= tol * (1e-3 + fabs(num)), "direction %d: analytic %.10g vs numeric %.10g", r, ana,
                  num);
    free(dv);
  }
  free(g);
  free(zv);
  free(dl);
  free(zp);
}

START_TEST(gradcheck_visreg_shape_sigma_detached) {
  vr_tensor *G = normal(2, TU_SHAPE(5, 4), 12, VR_F64), *z = normal(3, TU_SHAPE(2, 7, 5), 60, VR_F64);
  mctx c = {.method = M_VISREG, .slices = G, .w = {0.5, 2, 0.5}, .lambda = -1, .global = 1};
  directional_check(&c, z, 12, 1e-6);
  c.lambda = 0.6; /* the mixed objective */
  directional_check(&c, z, 12, 1e-6);
  /* with sigma detached the full derivative differs: a direction that scales a column changes
   * sigma, and the finite difference then disagrees (guards against a non-detached backward) */
  vr_tensor_free(z);
  vr_tensor_free(G);
}
END_TEST

/* ---------------------------------------------------------------- behaviour */

START_TEST(visreg_floor_on_gaussian_data) {
  const int64_t Bs[] = {64, 1024};
  for (int k = 0; k < 2; k++) {
    int64_t B = Bs[k], D = 32, K = 256;
    vr_tensor *z = normal(3, TU_SHAPE(1, B, D), 70 + k, VR_F64), *L = NULL, *T = NULL;
    OK(vr_visreg(z, NULL, K, 1, 0, 1, 1, 1, &L, &T));
    double v = tu_item(L), floor = 3.3 / (double)B;
    ck_assert_msg(v > 0.6 * floor && v < 1.5 * floor, "B = %lld: loss %.5g, expected about %.5g", (long long)B, v, floor);
    printf("N(0, I) floor: B = %lld: VISReg %.4g (3.3 / B = %.4g)\n", (long long)B, v, floor);
    vr_tensor_free(L);
    vr_tensor_free(T);
    vr_tensor_free(z);
  }
}
END_TEST

/* mean per-row norm of dL/dz on unit rows scaled by r (V=2, B=64, D=512, K=64) */
static double collapse_grad(int method, double r) {
  int64_t V = 2, B = 64, D = 512, K = 64;
  vr_tensor *u = normal(3, TU_SHAPE(V, B, D), 80, VR_F64), *G = normal(2, TU_SHAPE(D, K), 81, VR_F64);
  double *x = tu_values(u);
  for (int64_t i = 0; i < V * B; i++) {
    double s = norm2(x + i * D, D);
    for (int64_t d = 0; d < D; d++) x[i * D + d] *= r / s;
  }
  vr_tensor *z = NULL;
  OK(vr_tensor_from_buffer(x, 3, TU_SHAPE(V, B, D), VR_F64, VR_CPU, &z));
  mctx c = {.method = method, .slices = G, .w = {1, 1, 1}, .lambda = -1, .global = 2};
  double *g = NULL, acc = 0;
  loss_and_grad(&c, z, &g);
  for (int64_t i = 0; i < V * B; i++) acc += norm2(g + i * D, D);
  free(g);
  free(x);
  vr_tensor_free(u);
  vr_tensor_free(G);
  vr_tensor_free(z);
  return acc / (double)(V * B);
}

START_TEST(gradient_at_collapse) {
  double sig1 = collapse_grad(M_SIGREG, 1), sig0 = collapse_grad(M_SIGREG, 1e-4);
  double vis1 = collapse_grad(M_VISREG, 1), vis0 = collapse_grad(M_VISREG, 1e-4);
  double swd0 = collapse_grad(M_SWD, 1e-4), vic0 = collapse_grad(M_VICREG_POOLED, 1e-4);
  printf("collapse (mean row |dL/dz|, r = 1 -> 1e-4): sigreg %.3g -> %.3g, visreg %.3g -> %.3g, swd %.3g, vicreg_pooled %.3g\n",
         sig1, sig0, vis1, vis0, swd0, vic0);
  ck_assert_msg(sig1 / sig0 > 3e3 && sig1 / sig0 < 3e4, "SIGReg shrinks %.4g-fold (%.4g -> %.4g)", sig1 / sig0, sig1, sig0);
  ck_assert_msg(sig0 > 1e-7 && sig0 < 1e-5, "SIGReg at r = 1e-4: %.4g, expected about 1e-6", sig0);
  ck_assert_msg(vis0 / vis1 >= 100, "VISReg grows only %.4g-fold (%.4g -> %.4g)", vis0 / vis1, vis1, vis0);
  ck_assert_msg(vis0 > 30 && vis0 < 200, "VISReg at r = 1e-4: %.4g, expected about 76", vis0);
  ck_assert_msg(swd0 > 5e-4 && swd0 < 8e-3, "SWD at r = 1e-4: %.4g, expected about 0.002", swd0);
  ck_assert_msg(vic0 > 5e-3 && vic0 < 5e-2, "VICReg at r = 1e-4: %.4g, expected about 0.017", vic0);
}
END_TEST

/* float32 agrees with float64 at B = 1024, D = 512, K = 1024 */
START_TEST(float32_matches_float64_at_scale) {
  int64_t V = 2, B = 1024, D = 512, K = 1024;
  vr_tensor *z64 = normal(3, TU_SHAPE(V, B, D), 90, VR_F64), *G = normal(2, TU_SHAPE(D, K), 91, VR_F64);
  vr_tensor *z32 = NULL, *G32 = NULL;
  OK(vr_tensor_to_dtype(z64, VR_F32, &z32));
  OK(vr_tensor_to_dtype(G, VR_F32, &G32));
  const int methods[] = {M_VISREG, M_SWD, M_SIGREG};
  for (int k = 0; k < 3; k++) {
    mctx c64 = {.method = methods[k], .slices = G, .w = {1, 1, 1}, .lambda = -1}, c32 = c64;
    c32.slices = G32;
    double *g64 = NULL, *g32 = NULL;
    double l64 = loss_and_grad(&c64, z64, &g64), l32 = loss_and_grad(&c32, z32, &g32);
    double n64 = norm2(g64, V * B * D), n32 = norm2(g32, V * B * D), diff = 0;
    for (int64_t i = 0; i < V * B * D; i++) diff += (g32[i] - g64[i]) * (g32[i] - g64[i]);
    char what[64];
    snprintf(what, sizeof what, "%s f32 loss", mnames[methods[k]]);
    CLOSE(l32, l64, 1e-4, what);
    snprintf(what, sizeof what, "%s f32 |g|", mnames[methods[k]]);
    CLOSE(n32, n64, 1e-4, what);
    /* elementwise, the sorted methods differ by more: float32 rounding of the projections (about
     * 1e-6) swaps a few neighbouring ranks (spacing about 2.5 / B), which moves those entries of
     * dL/dP by a quantile step; about 5e-4 of the norm at this size */
    double tol = methods[k] == M_SIGREG ? 1e-4 : 2e-3;
    ck_assert_msg(sqrt(diff) <= tol * n64, "%s: |g32 - g64| / |g64| = %.3g", mnames[methods[k]], sqrt(diff) / n64);
    free(g64);
    free(g32);
  }
  vr_tensor *objs[] = {z64, G, z32, G32};
  for (int k = 0; k < 4; k++) vr_tensor_free(objs[k]);
}
END_TEST

/* the chunked kernel gives the result of the one-chunk kernel, whatever the chunk size */
START_TEST(chunking_does_not_change_the_result) {
  vr_tensor *z = normal(3, TU_SHAPE(2, 20, 6), 95, VR_F64), *G = normal(2, TU_SHAPE(6, 7), 96, VR_F64), *q = NULL;
  OK(vr_gauss_quantiles(20, VR_F64, VR_CPU, &q));
  const vr_op ops[] = {VR_OP_VISREG, VR_OP_SWD, VR_OP_SIGREG};
  for (int k = 0; k < 3; k++) {
    double ref = 0, *gref = NULL;
    for (int64_t chunk = 7; chunk >= 1; chunk -= 3) {
      vr_tensor *L = NULL, *g = NULL;
      OK(vr_tensor_empty(0, NULL, VR_F64, VR_CPU, &L));
      OK(vr_tensor_empty(3, TU_SHAPE(2, 20, 6), VR_F64, VR_CPU, &g));
      vr_kernel_args a = {.in = {z, G, q}, .n_in = 3, .out = {L, NULL, g}, .n_out = 3, .f = {1, 1, 1, 1e-12},
                          .i = {chunk, 17}};
      if (ops[k] == VR_OP_SIGREG) {
        a.f[0] = 3;
        a.f[1] = 1e-12;
        a.n_in = 2;
      }
      OK(vr_dispatch(ops[k], VR_CPU, 0, &a));
      double *gv = tu_values(g);
      if (!gref) {
        ref = tu_item(L);
        gref = gv;
      } else {
        CLOSE(tu_item(L), ref, 1e-13, "chunked loss");
        for (int64_t i = 0; i < 240; i++) ck_assert_double_eq_tol(gv[i], gref[i], 1e-15);
        free(gv);
      }
      vr_tensor_free(L);
      vr_tensor_free(g);
    }
    free(gref);
  }
  vr_tensor_free(z);
  vr_tensor_free(G);
  vr_tensor_free(q);
}
END_TEST

/* the same bits whatever the thread count */
START_TEST(thread_count_does_not_change_the_result) {
  vr_tensor *z = normal(3, TU_SHAPE(2, 128, 32), 97, VR_F32);
  int nt = vr_num_threads();
  for (int m = 0; m < M_COUNT; m++) {
    mctx c = {.method = m, .slices = NULL, .w = {1, 1, 1}, .lambda = -1, .global = 1};
    vr_tensor *G = normal(2, TU_SHAPE(32, 64), 98, VR_F32);
    c.slices = G;
    double *g1 = NULL, *g2 = NULL;
    vr_set_num_threads(1);
    double l1 = loss_and_grad(&c, z, &g1);
    vr_set_num_threads(nt > 1 ? nt : 2);
    double l2 = loss_and_grad(&c, z, &g2);
    ck_assert_msg(l1 == l2, "%s: %.17g vs %.17g", mnames[m], l1, l2);
    ck_assert_msg(!memcmp(g1, g2, sizeof(double) * 2 * 128 * 32), "%s: gradients differ", mnames[m]);
    free(g1);
    free(g2);
    vr_tensor_free(G);
  }
  vr_set_num_threads(nt);
  vr_tensor_free(z);
}
END_TEST

/* backward scales by the upstream gradient, and no node is recorded without grad */
START_TEST(backward_scales_and_no_grad_records_nothing) {
  vr_tensor *z = normal(3, TU_SHAPE(2, 8, 4), 99, VR_F64), *G = normal(2, TU_SHAPE(4, 5), 100, VR_F64);
  mctx c = {.method = M_SWD, .slices = G, .lambda = -1};
  double *g = NULL;
  loss_and_grad(&c, z, &g);
  vr_tensor *L = NULL, *w = NULL;
  OK(vr_tensor_set_requires_grad(z, 1));
  OK(vr_swd(z, G, 5, 0, 0, &L));
  ck_assert_str_eq(vr_tensor_grad_fn_name(L), "swd");
  OK(vr_tensor_scalar(-2.5, VR_F64, VR_CPU, &w));
  OK(vr_backward(L, w, 0));
  vr_tensor *gz = vr_tensor_grad(z);
  double *gv = tu_values(gz);
  for (int i = 0; i < 64; i++) ck_assert_double_eq_tol(gv[i], -2.5 * g[i], 1e-16);
  free(gv);
  free(g);
  vr_tensor_free(gz);
  vr_tensor_free(L);
  int prev = vr_set_grad_enabled(0);
  OK(vr_swd(z, G, 5, 0, 0, &L));
  ck_assert(!vr_tensor_requires_grad(L));
  vr_set_grad_enabled(prev);
  vr_tensor_free(L);
  vr_tensor_free(w);
  vr_tensor_free(z);
  vr_tensor_free(G);
}
END_TEST

/* ---------------------------------------------------------------- errors */

START_TEST(bad_input_gets_a_clear_error) {
  vr_tensor *L = NULL, *T = NULL;
  vr_tensor *z = normal(3, TU_SHAPE(3, 8, 4), 1, VR_F64), *G = normal(2, TU_SHAPE(4, 5), 2, VR_F64);
  vr_tensor *z0 = NULL, *zb = NULL, *z2 = NULL, *zi = NULL;
  OK(vr_tensor_zeros(3, TU_SHAPE(0, 8, 4), VR_F64, VR_CPU, &z0));
  OK(vr_tensor_zeros(3, TU_SHAPE(2, 1, 4), VR_F64, VR_CPU, &zb));
  OK(vr_tensor_zeros(2, TU_SHAPE(8, 4), VR_F64, VR_CPU, &z2));
  OK(vr_tensor_zeros(3, TU_SHAPE(2, 8, 4), VR_I32, VR_CPU, &zi));
  FAILS(vr_visreg(NULL, G, 5, 0, 0, 1, 1, 1, &L, NULL), VR_E_ARG, "vr_visreg: z");
  FAILS(vr_visreg(z0, G, 5, 0, 0, 1, 1, 1, &L, NULL), VR_E_SHAPE, "V >= 1");
  FAILS(vr_swd(zb, NULL, 5, 0, 0, &L), VR_E_SHAPE, "B >= 2");
  FAILS(vr_sigreg(z2, NULL, 5, 0, 0, 17, 3, &L), VR_E_SHAPE, "3 dims");
  FAILS(vr_barlow(zi, 0.0051, &L), VR_E_DTYPE, "f32 or f64");
  FAILS(vr_visreg(z, NULL, 0, 0, 0, 1, 1, 1, &L, NULL), VR_E_ARG, "K: expected 1 <= K");
  FAILS(vr_swd(z, NULL, -3, 0, 0, &L), VR_E_ARG, "K:");
  vr_tensor *Gbad = normal(2, TU_SHAPE(3, 5), 3, VR_F64);
  FAILS(vr_visreg(z, Gbad, 5, 0, 0, 1, 1, 1, &L, NULL), VR_E_SHAPE, "slices: expected a D x K matrix with D = 4");
  FAILS(vr_sigreg(z, G, 6, 0, 0, 17, 3, &L), VR_E_SHAPE, "K = 6 columns");
  FAILS(vr_sigreg(z, G, 5, 0, 0, 1, 3, &L), VR_E_ARG, "knots");
  FAILS(vr_sigreg(z, G, 5, 0, 0, 17, -1, &L), VR_E_ARG, "t_max");
  FAILS(vr_vicreg(z, 25, 25, 1, &L, &T), VR_E_SHAPE, "exactly V = 2 views");
  vr_tensor *z1 = normal(3, TU_SHAPE(1, 8, 4), 4, VR_F64);
  FAILS(vr_barlow(z1, 0.0051, &L), VR_E_SHAPE, "V >= 2");
  FAILS(vr_invariance(z, 4, &L), VR_E_ARG, "global_views");
  FAILS(vr_invariance(z, 0, &L), VR_E_ARG, "global_views");
  FAILS(vr_visreg(z, G, 5, 0, 0, NAN, 1, 1, &L, NULL), VR_E_ARG, "w_scale");
  /* non-finite values in z, for every method */
  OK(vr_tensor_set(z, TU_SHAPE(1, 2, 3), NAN));
  FAILS(vr_visreg(z, G, 5, 0, 0, 1, 1, 1, &L, NULL), VR_E_VALUE, "z: expected finite values, got nan at [1, 2, 3]");
  FAILS(vr_swd(z, G, 5, 0, 0, &L), VR_E_VALUE, "vr_swd: z: expected finite");
  FAILS(vr_sigreg(z, G, 5, 0, 0, 17, 3, &L), VR_E_VALUE, "finite");
  FAILS(vr_vicreg_pooled(z, 25, 1, &L, NULL), VR_E_VALUE, "finite");
  FAILS(vr_barlow(z, 0.0051, &L), VR_E_VALUE, "finite");
  FAILS(vr_invariance(z, 1, &L), VR_E_VALUE, "finite");
  OK(vr_tensor_set(z, TU_SHAPE(1, 2, 3), INFINITY));
  FAILS(vr_visreg(z, G, 5, 0, 0, 1, 1, 1, &L, NULL), VR_E_VALUE, "inf");
  vr_tensor *zv = NULL;
  OK(vr_narrow(z, 0, 1, 2, &zv));
  FAILS(vr_vicreg(zv, 25, 25, 1, &L, NULL), VR_E_VALUE, "vr_vicreg: z: expected finite");
  FAILS(vr_draw_slices(4, 0, 0, 0, 1e-12, VR_F64, VR_CPU, &L), VR_E_ARG, "K");
  vr_tensor *objs[] = {z, G, z0, zb, z2, zi, Gbad, z1, zv};
  for (int k = 0; k < 9; k++) vr_tensor_free(objs[k]);
}
END_TEST

static Suite *reg_suite(void) {
  Suite *s = suite_create("reg");
  TCase *tc = tcase_create("reg");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, closed_form_inputs_match_the_spec);
  tcase_add_loop_test(tc, reference_table_rows, 0, (int)(sizeof table / sizeof *table));
  tcase_add_test(tc, visreg_terms_weights_and_invariance);
  tcase_add_test(tc, vicreg_terms_are_unweighted);
  tcase_add_test(tc, quantiles_are_accurate);
  tcase_add_test(tc, kept_targets_match_fresh_ones);
  tcase_add_test(tc, drawn_slices_follow_seed_and_step);
  tcase_add_loop_test(tc, gradcheck_each_method, M_SWD, M_COUNT);
  tcase_add_test(tc, gradcheck_visreg_center_scale);
  tcase_add_test(tc, gradcheck_visreg_shape_sigma_detached);
  tcase_add_test(tc, visreg_floor_on_gaussian_data);
  tcase_add_test(tc, gradient_at_collapse);
  tcase_add_test(tc, float32_matches_float64_at_scale);
  tcase_add_test(tc, chunking_does_not_change_the_result);
  tcase_add_test(tc, thread_count_does_not_change_the_result);
  tcase_add_test(tc, backward_scales_and_no_grad_records_nothing);
  tcase_add_test(tc, bad_input_gets_a_clear_error);
  suite_add_tcase(s, tc);
  return s;
}

VR_TEST_MAIN(reg_suite)
