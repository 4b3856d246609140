/* test_elementwise.c: binary ops with broadcasting, scalar forms, unary maths, comparisons,
 * in-place aliasing, fast f32 paths and error messages. */
#include "testutil.h"
#include <float.h>

typedef vr_status (*bin_fn)(const vr_tensor *, const vr_tensor *, vr_tensor **);
typedef vr_status (*un_fn)(const vr_tensor *, vr_tensor **);
typedef struct { bin_fn f; } bin_c;
typedef struct { un_fn f; } un_c;

static vr_status f_bin(vr_tensor *const *in, void *ctx, vr_tensor **out) { return ((bin_c *)ctx)->f(in[0], in[1], out); }
static vr_status f_un(vr_tensor *const *in, void *ctx, vr_tensor **out) { return ((un_c *)ctx)->f(in[0], out); }

/* x + 2: keeps log, sqrt, div and pow away from 0 */
static vr_tensor *shifted(vr_tensor *x, double s) {
  vr_tensor *y = NULL, *c = NULL;
  vr_add_scalar(x, s, &y);
  vr_tensor_free(x);
  vr_contiguous(y, &c); /* a fresh leaf */
  vr_tensor *leaf = NULL;
  vr_detach(c, &leaf);
  vr_tensor_free(y);
  vr_tensor_free(c);
  return leaf;
}

/* a leaf that is a transposed (non-contiguous) view, values shifted by s */
static vr_tensor *strided_shift(int nd, const int64_t *shape, uint64_t seed, double s) {
  vr_tensor *v = tu_strided(nd, shape, seed);
  if (s != 0) {
    vr_tensor *k = NULL;
    vr_tensor_full(0, NULL, s, VR_F64, VR_CPU, &k);
    vr_add_(v, k, 1.0);
    vr_tensor_free(k);
  }
  return v;
}

/* ---------------------------------------------------------------- forward values */

START_TEST(test_add_broadcast_values) {
  vr_tensor *a = tu_tensor(VR_F64, 2, TU_SHAPE(2, 3), TU_VALS(1, 2, 3, 4, 5, 6));
  vr_tensor *b = tu_tensor(VR_F64, 1, TU_SHAPE(3), TU_VALS(10, 20, 30)), *y = NULL;
  OK(vr_add(a, b, &y));
  tu_assert_values(y, TU_VALS(11, 22, 33, 14, 25, 36), 6, 0, "add");
  vr_tensor_free(y);
  OK(vr_add(b, a, &y));
  tu_assert_values(y, TU_VALS(11, 22, 33, 14, 25, 36), 6, 0, "add reversed");
  vr_tensor_free(y);
  vr_tensor_free(a);
  vr_tensor_free(b);
}
END_TEST

START_TEST(test_arith_values) {
  vr_tensor *a = tu_tensor(VR_F32, 1, TU_SHAPE(4), TU_VALS(1, -2, 3, 4));
  vr_tensor *b = tu_tensor(VR_F32, 1, TU_SHAPE(4), TU_VALS(2, 4, -8, 0.5)), *y = NULL;
  OK(vr_sub(a, b, &y)); tu_assert_values(y, TU_VALS(-1, -6, 11, 3.5), 4, 1e-7, "sub"); vr_tensor_free(y);
  OK(vr_mul(a, b, &y)); tu_assert_values(y, TU_VALS(2, -8, -24, 2), 4, 1e-7, "mul"); vr_tensor_free(y);
  OK(vr_div(a, b, &y)); tu_assert_values(y, TU_VALS(0.5, -0.5, -0.375, 8), 4, 1e-7, "div"); vr_tensor_free(y);
  OK(vr_maximum(a, b, &y)); tu_assert_values(y, TU_VALS(2, 4, 3, 4), 4, 0, "maximum"); vr_tensor_free(y);
  OK(vr_minimum(a, b, &y)); tu_assert_values(y, TU_VALS(1, -2, -8, 0.5), 4, 0, "minimum"); vr_tensor_free(y);
  vr_tensor_free(a);
  vr_tensor_free(b);
}
END_TEST

START_TEST(test_pow_values) {
  vr_tensor *a = tu_tensor(VR_F64, 1, TU_SHAPE(4), TU_VALS(2, 9, 0, -2));
  vr_tensor *b = tu_tensor(VR_F64, 1, TU_SHAPE(4), TU_VALS(3, 0.5, 2, 2)), *y = NULL;
  OK(vr_pow(a, b, &y));
  tu_assert_values(y, TU_VALS(8, 3, 0, 4), 4, 1e-15, "pow");
  vr_tensor_free(y);
  OK(vr_pow_scalar(a, 2, &y));
  tu_assert_values(y, TU_VALS(4, 81, 0, 4), 4, 1e-15, "pow_scalar");
  vr_tensor_free(y);
  vr_tensor_free(a);
  vr_tensor_free(b);
}
END_TEST

START_TEST(test_maxmin_nan) {
  vr_tensor *a = tu_tensor(VR_F64, 1, TU_SHAPE(3), TU_VALS(NAN, 1, 2));
  vr_tensor *b = tu_tensor(VR_F64, 1, TU_SHAPE(3), TU_VALS(0, NAN, 1)), *y = NULL;
  OK(vr_maximum(a, b, &y));
  double *v = tu_values(y);
  ck_assert(isnan(v[0]) && isnan(v[1]) && v[2] == 2);
  free(v);
  vr_tensor_free(y);
  OK(vr_minimum(a, b, &y));
  v = tu_values(y);
  ck_assert(isnan(v[0]) && isnan(v[1]) && v[2] == 1);
  free(v);
  vr_tensor_free(y);
  vr_tensor_free(a);
  vr_tensor_free(b);
}
END_TEST

START_TEST(test_broadcast_3d) {
  vr_tensor *a = tu_rand(VR_F64, 3, TU_SHAPE(3, 1, 4), 1), *b = tu_rand(VR_F64, 2, TU_SHAPE(5, 4), 2), *y = NULL;
  OK(vr_mul(a, b, &y));
  ck_assert_int_eq(vr_tensor_ndim(y), 3);
  ck_assert_int_eq(vr_tensor_size(y, 0), 3);
  ck_assert_int_eq(vr_tensor_size(y, 1), 5);
  ck_assert_int_eq(vr_tensor_size(y, 2), 4);
  double *av = tu_values(a), *bv = tu_values(b), *yv = tu_values(y);
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 5; j++)
      for (int k = 0; k < 4; k++) ck_assert(yv[(i * 5 + j) * 4 + k] == av[i * 4 + k] * bv[j * 4 + k]);
  free(av); free(bv); free(yv);
  vr_tensor_free(a); vr_tensor_free(b); vr_tensor_free(y);
}
END_TEST

START_TEST(test_scalar_forms) {
  vr_tensor *a = tu_tensor(VR_F64, 1, TU_SHAPE(3), TU_VALS(1, 2, 4)), *y = NULL;
  OK(vr_add_scalar(a, 1.5, &y)); tu_assert_values(y, TU_VALS(2.5, 3.5, 5.5), 3, 0, "add_scalar"); vr_tensor_free(y);
  OK(vr_mul_scalar(a, -2, &y)); tu_assert_values(y, TU_VALS(-2, -4, -8), 3, 0, "mul_scalar"); vr_tensor_free(y);
  OK(vr_rsub_scalar(a, 1, &y)); tu_assert_values(y, TU_VALS(0, -1, -3), 3, 0, "rsub_scalar"); vr_tensor_free(y);
  OK(vr_rdiv_scalar(a, 2, &y)); tu_assert_values(y, TU_VALS(2, 1, 0.5), 3, 0, "rdiv_scalar"); vr_tensor_free(y);
  OK(vr_pow_scalar(a, 0.5, &y)); tu_assert_values(y, TU_VALS(1, sqrt(2), 2), 3, 1e-15, "pow_scalar"); vr_tensor_free(y);
  vr_tensor_free(a);
}
END_TEST

/* every unary op against libm, f64 exactly-ish and f32 to float precision */
typedef struct { const char *name; un_fn f; double (*ref)(double); double lo, hi; int differentiable; } un_case;
static double r_neg(double x) { return -x; }
static double r_rsqrt(double x) { return 1 / sqrt(x); }
static double r_sigmoid(double x) { return 1 / (1 + exp(-x)); }
static double r_relu(double x) { return x > 0 ? x : 0; }
static double r_gelu(double x) { return 0.5 * x * (1 + erf(x / sqrt(2))); }
static double r_gelu_tanh(double x) { return 0.5 * x * (1 + tanh(sqrt(2 / M_PI) * (x + 0.044715 * x * x * x))); }
static double r_square(double x) { return x * x; }
static vr_status gelu_t(const vr_tensor *a, vr_tensor **o) { return vr_gelu(a, 1, o); }
static vr_status gelu_e(const vr_tensor *a, vr_tensor **o) { return vr_gelu(a, 0, o); }
static const un_case UN[] = {
    {"neg", vr_neg, r_neg, -2, 2, 1},         {"exp", vr_exp, exp, -2, 2, 1},
    {"log", vr_log, log, 0.5, 3, 1},          {"sqrt", vr_sqrt, sqrt, 0.5, 3, 1},
    {"rsqrt", vr_rsqrt, r_rsqrt, 0.5, 3, 1},  {"abs", vr_abs, fabs, -2, 2, 1},
    {"tanh", vr_tanh, tanh, -2, 2, 1},        {"sigmoid", vr_sigmoid, r_sigmoid, -4, 4, 1},
    {"relu", vr_relu, r_relu, -2, 2, 1},      {"gelu", gelu_e, r_gelu, -3, 3, 1},
    {"gelu_tanh", gelu_t, r_gelu_tanh, -3, 3, 1}, {"sin", vr_sin, sin, -3, 3, 1},
    {"cos", vr_cos, cos, -3, 3, 1},           {"square", vr_square, r_square, -2, 2, 1},
    {"erf", vr_erf, erf, -3, 3, 0},
};
#define N_UN ((int)(sizeof UN / sizeof *UN))

/* values in [lo, hi] avoiding |x| < 0.05 (kinks of abs and relu) */
static vr_tensor *un_input(const un_case *c, vr_dtype dt, int strided, uint64_t seed) {
  vr_tensor *x = strided ? tu_strided(2, TU_SHAPE(3, 5), seed) : tu_rand(VR_F64, 2, TU_SHAPE(3, 5), seed);
  double *v = tu_values(x);
  int64_t idx[2];
  for (int k = 0; k < 15; k++) {
    double u = (v[k] + 1) / 2, t = c->lo + (c->hi - c->lo) * u;
    if (fabs(t) < 0.05) t = 0.3;
    idx[0] = k / 5;
    idx[1] = k % 5;
    vr_tensor_set(x, idx, t);
  }
  free(v);
  if (dt == VR_F64) return x;
  vr_tensor *y = NULL;
  vr_tensor_to_dtype(x, dt, &y);
  vr_tensor_free(x);
  return y;
}

START_TEST(test_unary_values) {
  for (int c = 0; c < N_UN; c++)
    for (int dt = 0; dt < 2; dt++) {
      vr_tensor *x = un_input(&UN[c], dt ? VR_F32 : VR_F64, c % 2, 10 + c), *y = NULL;
      OK(UN[c].f(x, &y));
      ck_assert_int_eq(vr_tensor_dtype(y), vr_tensor_dtype(x));
      double *xv = tu_values(x), *yv = tu_values(y);
      for (int k = 0; k < 15; k++) {
        double r = UN[c].ref(xv[k]);
        ck_assert_msg(fabs(yv[k] - r) <= (dt ? 2e-6 : 1e-14) * (1 + fabs(r)), "%s %s: x %g: %.17g vs %.17g", UN[c].name,
                      dt ? "f32" : "f64", xv[k], yv[k], r);
      }
      free(xv); free(yv);
      vr_tensor_free(x); vr_tensor_free(y);
    }
}
END_TEST

START_TEST(test_unary_grad_contig) {
  for (int c = 0; c < N_UN; c++) {
    if (!UN[c].differentiable) continue;
    vr_tensor *x = un_input(&UN[c], VR_F64, 0, 30 + c);
    un_c ctx = {UN[c].f};
    tu_gradcheck(UN[c].name, 1, &x, 0, f_un, &ctx, 1e-6, 1e-6);
    vr_tensor_free(x);
  }
}
END_TEST

START_TEST(test_unary_grad_strided) {
  for (int c = 0; c < N_UN; c++) {
    if (!UN[c].differentiable) continue;
    vr_tensor *x = un_input(&UN[c], VR_F64, 1, 50 + c);
    un_c ctx = {UN[c].f};
    tu_gradcheck(UN[c].name, 1, &x, 0, f_un, &ctx, 1e-6, 1e-6);
    vr_tensor_free(x);
  }
}
END_TEST

START_TEST(test_unary_erf_forward_only) {
  vr_tensor *x = tu_rand(VR_F64, 1, TU_SHAPE(4), 3), *y = NULL;
  OK(vr_tensor_set_requires_grad(x, 1));
  OK(vr_erf(x, &y));
  ck_assert(!vr_tensor_requires_grad(y));
  vr_tensor_free(y);
  vr_tensor_free(x);
}
END_TEST

/* ---------------------------------------------------------------- scalar-parameter ops */

typedef struct { int which; double s, t; } sc_c;
static vr_status f_scalar(vr_tensor *const *in, void *ctx, vr_tensor **out) {
  const sc_c *c = ctx;
  switch (c->which) {
  case 0: return vr_add_scalar(in[0], c->s, out);
  case 1: return vr_mul_scalar(in[0], c->s, out);
  case 2: return vr_rsub_scalar(in[0], c->s, out);
  case 3: return vr_rdiv_scalar(in[0], c->s, out);
  case 4: return vr_pow_scalar(in[0], c->s, out);
  default: return vr_clamp(in[0], c->s, c->t, out);
  }
}

START_TEST(test_scalar_grads) {
  const sc_c cases[] = {{0, 1.5, 0}, {1, -3, 0}, {2, 2, 0}, {3, 1.5, 0}, {4, 3, 0}, {4, -1.5, 0}, {4, 0, 0},
                        {5, -0.5, 0.5}, {5, -INFINITY, 0.2}, {5, -0.2, INFINITY}};
  for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
    vr_tensor *x = strided_shift(2, TU_SHAPE(4, 3), 70 + k, cases[k].which >= 3 && cases[k].which <= 4 ? 2.0 : 0.0);
    tu_gradcheck("scalar op", 1, &x, 0, f_scalar, (void *)&cases[k], 1e-6, 1e-6);
    vr_tensor_free(x);
  }
}
END_TEST

START_TEST(test_clamp_values) {
  vr_tensor *x = tu_tensor(VR_F32, 1, TU_SHAPE(5), TU_VALS(-3, -1, 0, 1, 3)), *y = NULL;
  OK(vr_clamp(x, -1.5, 2, &y)); tu_assert_values(y, TU_VALS(-1.5, -1, 0, 1, 2), 5, 0, "clamp"); vr_tensor_free(y);
  OK(vr_clamp(x, -INFINITY, 0.5, &y)); tu_assert_values(y, TU_VALS(-3, -1, 0, 0.5, 0.5), 5, 0, "clamp hi"); vr_tensor_free(y);
  OK(vr_clamp(x, 0, INFINITY, &y)); tu_assert_values(y, TU_VALS(0, 0, 0, 1, 3), 5, 0, "clamp lo"); vr_tensor_free(y);
  FAILS(vr_clamp(x, 2, 1, &y), VR_E_ARG, "lo");
  vr_tensor_free(x);
}
END_TEST

START_TEST(test_gelu_known) {
  vr_tensor *x = tu_tensor(VR_F64, 1, TU_SHAPE(3), TU_VALS(-1, 0, 1)), *y = NULL;
  OK(vr_gelu(x, 0, &y));
  tu_assert_values(y, TU_VALS(-0.15865525393145707, 0, 0.8413447460685429), 3, 1e-15, "gelu erf");
  vr_tensor_free(y);
  OK(vr_gelu(x, 1, &y));
  tu_assert_values(y, TU_VALS(-0.15880800939172324, 0, 0.8411919906082768), 3, 1e-15, "gelu tanh");
  vr_tensor_free(y);
  vr_tensor_free(x);
}
END_TEST

/* ---------------------------------------------------------------- erf, erfinv */

START_TEST(test_erfinv_known) {
  vr_tensor *x = tu_tensor(VR_F64, 1, TU_SHAPE(7), TU_VALS(0, 0.5, -0.5, 0.9, 0.999, -0.999999, 1e-300)), *y = NULL;
  OK(vr_erfinv(x, &y));
  /* reference values from mpmath, 17 digits */
  const double ref[7] = {0, 0.47693627620446987338, -0.47693627620446987338, 1.1630871536766741628,
                         2.3267537655135244939, -3.4589107372754987775, 8.8622692545275801e-301};
  double *v = tu_values(y);
  for (int k = 0; k < 7; k++) ck_assert_msg(fabs(v[k] - ref[k]) <= 1e-14 * fabs(ref[k]) + 1e-300, "erfinv %d: %.17g vs %.17g", k, v[k], ref[k]);
  free(v);
  vr_tensor_free(x); vr_tensor_free(y);
  x = tu_tensor(VR_F64, 1, TU_SHAPE(4), TU_VALS(1, -1, 1.5, NAN));
  OK(vr_erfinv(x, &y));
  v = tu_values(y);
  ck_assert(isinf(v[0]) && v[0] > 0 && isinf(v[1]) && v[1] < 0 && isnan(v[2]) && isnan(v[3]));
  free(v);
  vr_tensor_free(x); vr_tensor_free(y);
}
END_TEST

/* Gaussian quantiles sqrt(2) erfinv(2i/(B+1) - 1): erf of the result gives back the argument */
START_TEST(test_erfinv_roundtrip) {
  const int B = 4097;
  vr_tensor *u = NULL, *x = NULL, *y = NULL;
  OK(vr_tensor_arange(1, B + 1, 1, VR_F64, VR_CPU, &u));
  OK(vr_mul_scalar(u, 2.0 / (B + 1), &x));
  vr_tensor_free(u);
  OK(vr_add_scalar(x, -1, &u));
  OK(vr_erfinv(u, &y));
  double *uv = tu_values(u), *yv = tu_values(y);
  for (int k = 0; k < B; k++) {
    double back = erf(yv[k]);
    /* the derivative of erfinv is sqrt(pi)/2 e^{x^2}: measure the error in x */
    double dx = (back - uv[k]) * 0.886226925452758 * exp(yv[k] * yv[k]);
    ck_assert_msg(fabs(dx) <= 2e-15 * (1 + fabs(yv[k])) + 1e-15, "erfinv(%.17g) = %.17g, error %.3g", uv[k], yv[k], dx);
  }
  vr_tensor *nu = NULL, *ny = NULL;
  OK(vr_neg(u, &nu));
  OK(vr_erfinv(nu, &ny));
  double *nv = tu_values(ny);
  for (int k = 0; k < B; k++) ck_assert_msg(nv[k] == -yv[k], "erfinv not odd at %d", k);
  free(nv);
  vr_tensor_free(nu); vr_tensor_free(ny);
  free(uv); free(yv);
  vr_tensor_free(x); vr_tensor_free(u); vr_tensor_free(y);
}
END_TEST

START_TEST(test_erfinv_f32) {
  vr_tensor *x = tu_tensor(VR_F32, 1, TU_SHAPE(3), TU_VALS(0.25, -0.75, 0.99)), *y = NULL;
  OK(vr_erfinv(x, &y));
  ck_assert_int_eq(vr_tensor_dtype(y), VR_F32);
  tu_assert_values(y, TU_VALS(0.22531205501217810473, -0.81341984759761854169, 1.821386600900277775), 3, 1e-7, "erfinv f32");
  vr_tensor_free(x); vr_tensor_free(y);
}
END_TEST

/* ---------------------------------------------------------------- gradients of binary ops */

static void grad_bin(const char *name, bin_fn f, vr_tensor *a, vr_tensor *b) {
  bin_c c = {f};
  vr_tensor *in[2] = {a, b};
  tu_gradcheck(name, 2, in, 0, f_bin, &c, 1e-6, 1e-6);
  vr_tensor_free(a);
  vr_tensor_free(b);
}

START_TEST(test_grad_add_sub) {
  grad_bin("add contig", vr_add, tu_rand(VR_F64, 2, TU_SHAPE(3, 4), 1), tu_rand(VR_F64, 2, TU_SHAPE(3, 4), 2));
  grad_bin("add bcast", vr_add, tu_rand(VR_F64, 3, TU_SHAPE(3, 1, 4), 1), tu_rand(VR_F64, 2, TU_SHAPE(5, 4), 2));
  grad_bin("sub bcast", vr_sub, tu_rand(VR_F64, 3, TU_SHAPE(3, 1, 4), 3), tu_rand(VR_F64, 2, TU_SHAPE(5, 4), 4));
  grad_bin("sub strided", vr_sub, tu_strided(2, TU_SHAPE(3, 4), 5), tu_strided(2, TU_SHAPE(3, 4), 6));
}
END_TEST

START_TEST(test_grad_mul) {
  grad_bin("mul contig", vr_mul, tu_rand(VR_F64, 2, TU_SHAPE(3, 4), 1), tu_rand(VR_F64, 2, TU_SHAPE(3, 4), 2));
  grad_bin("mul strided", vr_mul, tu_strided(2, TU_SHAPE(3, 4), 3), tu_rand(VR_F64, 2, TU_SHAPE(3, 4), 4));
  grad_bin("mul bcast", vr_mul, tu_rand(VR_F64, 3, TU_SHAPE(3, 1, 4), 5), tu_rand(VR_F64, 2, TU_SHAPE(5, 4), 6));
  grad_bin("mul bcast strided", vr_mul, tu_strided(2, TU_SHAPE(5, 4), 7), tu_rand(VR_F64, 1, TU_SHAPE(4), 8));
}
END_TEST

START_TEST(test_grad_div) {
  grad_bin("div contig", vr_div, tu_rand(VR_F64, 2, TU_SHAPE(3, 4), 1), shifted(tu_rand(VR_F64, 2, TU_SHAPE(3, 4), 2), 2));
  grad_bin("div bcast", vr_div, tu_rand(VR_F64, 3, TU_SHAPE(3, 1, 4), 3), shifted(tu_rand(VR_F64, 2, TU_SHAPE(5, 4), 4), 2));
  grad_bin("div strided", vr_div, tu_strided(2, TU_SHAPE(3, 4), 5), strided_shift(2, TU_SHAPE(3, 4), 6, 2));
}
END_TEST

START_TEST(test_grad_pow) {
  grad_bin("pow contig", vr_pow, shifted(tu_rand(VR_F64, 2, TU_SHAPE(3, 4), 1), 2), tu_rand(VR_F64, 2, TU_SHAPE(3, 4), 2));
  grad_bin("pow bcast", vr_pow, shifted(tu_rand(VR_F64, 3, TU_SHAPE(3, 1, 4), 3), 2), tu_rand(VR_F64, 2, TU_SHAPE(5, 4), 4));
  grad_bin("pow strided", vr_pow, strided_shift(2, TU_SHAPE(3, 4), 5, 1.5), tu_strided(2, TU_SHAPE(3, 4), 6));
}
END_TEST

START_TEST(test_grad_maximum_minimum) {
  grad_bin("maximum", vr_maximum, tu_rand(VR_F64, 2, TU_SHAPE(3, 4), 1), tu_rand(VR_F64, 2, TU_SHAPE(3, 4), 2));
  grad_bin("minimum bcast", vr_minimum, tu_rand(VR_F64, 3, TU_SHAPE(3, 1, 4), 3), tu_rand(VR_F64, 2, TU_SHAPE(5, 4), 4));
  grad_bin("maximum strided", vr_maximum, tu_strided(2, TU_SHAPE(3, 4), 5), tu_strided(2, TU_SHAPE(3, 4), 6));
}
END_TEST

START_TEST(test_maximum_tie_grad) {
  vr_tensor *a = tu_tensor(VR_F64, 1, TU_SHAPE(3), TU_VALS(1, 2, 3)), *b = tu_tensor(VR_F64, 1, TU_SHAPE(3), TU_VALS(1, 5, 0));
  vr_tensor *y = NULL, *s = NULL;
  OK(vr_tensor_set_requires_grad(a, 1));
  OK(vr_tensor_set_requires_grad(b, 1));
  OK(vr_maximum(a, b, &y));
  OK(vr_sum(y, 0, NULL, 0, &s));
  OK(vr_backward(s, NULL, 0));
  vr_tensor *ga = vr_tensor_grad(a), *gb = vr_tensor_grad(b);
  tu_assert_values(ga, TU_VALS(0.5, 0, 1), 3, 0, "grad a");
  tu_assert_values(gb, TU_VALS(0.5, 1, 0), 3, 0, "grad b");
  vr_tensor_free(ga); vr_tensor_free(gb); vr_tensor_free(y); vr_tensor_free(s); vr_tensor_free(a); vr_tensor_free(b);
}
END_TEST

/* a * b + a: the gradient of a accumulates from two uses */
START_TEST(test_grad_chain_reuse) {
  vr_tensor *a = tu_rand(VR_F64, 2, TU_SHAPE(2, 3), 1), *b = tu_rand(VR_F64, 1, TU_SHAPE(3), 2);
  OK(vr_tensor_set_requires_grad(a, 1));
  vr_tensor *m = NULL, *y = NULL, *s = NULL;
  OK(vr_mul(a, b, &m));
  OK(vr_add(m, a, &y));
  OK(vr_sum(y, 0, NULL, 0, &s));
  OK(vr_backward(s, NULL, 0));
  vr_tensor *g = vr_tensor_grad(a);
  double *bv = tu_values(b), *gv = tu_values(g);
  for (int k = 0; k < 6; k++) ck_assert(fabs(gv[k] - (bv[k % 3] + 1)) < 1e-15);
  ck_assert(vr_tensor_grad(b) == NULL);
  free(bv); free(gv);
  vr_tensor_free(g); vr_tensor_free(m); vr_tensor_free(y); vr_tensor_free(s); vr_tensor_free(a); vr_tensor_free(b);
}
END_TEST

/* a saved input modified in place makes backward fail with VR_E_AUTOGRAD */
START_TEST(test_saved_modified) {
  vr_tensor *a = tu_rand(VR_F64, 1, TU_SHAPE(3), 1), *b = tu_rand(VR_F64, 1, TU_SHAPE(3), 2), *y = NULL, *s = NULL;
  OK(vr_tensor_set_requires_grad(a, 1));
  OK(vr_mul(a, b, &y));
  OK(vr_sum(y, 0, NULL, 0, &s));
  OK(vr_mul_scalar_(b, 2));
  FAILS(vr_backward(s, NULL, 0), VR_E_AUTOGRAD, "modified in place");
  vr_tensor_free(y); vr_tensor_free(s); vr_tensor_free(a); vr_tensor_free(b);
}
END_TEST

/* the saved output of exp modified in place is detected too */
START_TEST(test_saved_output_modified) {
  vr_tensor *a = tu_rand(VR_F64, 1, TU_SHAPE(3), 1), *y = NULL, *s = NULL;
  OK(vr_tensor_set_requires_grad(a, 1));
  OK(vr_exp(a, &y));
  OK(vr_sum(y, 0, NULL, 0, &s));
  int prev = vr_set_grad_enabled(0);
  OK(vr_mul_scalar_(y, 2));
  vr_set_grad_enabled(prev);
  FAILS(vr_backward(s, NULL, 0), VR_E_AUTOGRAD, "modified in place");
  vr_tensor_free(y); vr_tensor_free(s); vr_tensor_free(a);
}
END_TEST

/* ---------------------------------------------------------------- comparisons, isfinite */

START_TEST(test_comparisons) {
  vr_tensor *a = tu_tensor(VR_F32, 2, TU_SHAPE(2, 2), TU_VALS(1, 2, 3, 4)), *b = tu_tensor(VR_F32, 1, TU_SHAPE(2), TU_VALS(2, 2));
  vr_tensor *y = NULL;
  OK(vr_eq(a, b, &y)); ck_assert_int_eq(vr_tensor_dtype(y), VR_U8); tu_assert_values(y, TU_VALS(0, 1, 0, 0), 4, 0, "eq"); vr_tensor_free(y);
  OK(vr_gt(a, b, &y)); tu_assert_values(y, TU_VALS(0, 0, 1, 1), 4, 0, "gt"); vr_tensor_free(y);
  OK(vr_lt(a, b, &y)); tu_assert_values(y, TU_VALS(1, 0, 0, 0), 4, 0, "lt"); vr_tensor_free(y);
  OK(vr_tensor_set_requires_grad(a, 1));
  OK(vr_gt(a, b, &y)); ck_assert(!vr_tensor_requires_grad(y)); vr_tensor_free(y);
  vr_tensor_free(a); vr_tensor_free(b);
}
END_TEST

START_TEST(test_isfinite_all) {
  vr_tensor *a = tu_tensor(VR_F32, 1, TU_SHAPE(3), TU_VALS(1, -1e30, 0));
  int ok = 0;
  OK(vr_isfinite_all(a, &ok)); ck_assert_int_eq(ok, 1);
  int64_t i = 1;
  OK(vr_tensor_set(a, &i, INFINITY)); OK(vr_isfinite_all(a, &ok)); ck_assert_int_eq(ok, 0);
  OK(vr_tensor_set(a, &i, NAN)); OK(vr_isfinite_all(a, &ok)); ck_assert_int_eq(ok, 0);
  OK(vr_tensor_set(a, &i, -INFINITY)); OK(vr_isfinite_all(a, &ok)); ck_assert_int_eq(ok, 0);
  FAILS(vr_isfinite_all(a, NULL), VR_E_ARG, "all_finite");
  vr_tensor_free(a);
  vr_tensor *n = NULL;
  OK(vr_tensor_zeros(1, TU_SHAPE(4), VR_I64, VR_CPU, &n));
  OK(vr_isfinite_all(n, &ok)); ck_assert_int_eq(ok, 1);
  vr_tensor_free(n);
}
END_TEST

/* ---------------------------------------------------------------- in place */

START_TEST(test_inplace_add_alias) {
  vr_tensor *t = tu_tensor(VR_F32, 2, TU_SHAPE(2, 3), TU_VALS(1, 2, 3, 4, 5, 6));
  vr_tensor *b = tu_tensor(VR_F32, 1, TU_SHAPE(3), TU_VALS(1, 1, 2));
  uint64_t v0 = vr_tensor_version(t);
  OK(vr_add_(t, b, 0.5));
  tu_assert_values(t, TU_VALS(1.5, 2.5, 4, 4.5, 5.5, 7), 6, 0, "add_");
  ck_assert(vr_tensor_version(t) > v0);
  OK(vr_add_(t, t, 1.0)); /* src aliases the destination */
  tu_assert_values(t, TU_VALS(3, 5, 8, 9, 11, 14), 6, 0, "add_ self");
  OK(vr_mul_scalar_(t, -1));
  tu_assert_values(t, TU_VALS(-3, -5, -8, -9, -11, -14), 6, 0, "mul_scalar_");
  vr_tensor_free(t); vr_tensor_free(b);
}
END_TEST

/* vr_add_ converts a src of another dtype; u8 arithmetic wraps like C */
START_TEST(test_inplace_mixed_dtype) {
  vr_tensor *t = tu_tensor(VR_F32, 1, TU_SHAPE(3), TU_VALS(1, 2, 3)), *s = tu_tensor(VR_F64, 1, TU_SHAPE(3), TU_VALS(0.5, 0.25, -1));
  OK(vr_add_(t, s, 2.0));
  tu_assert_values(t, TU_VALS(2, 2.5, 1), 3, 0, "f32 += 2 * f64");
  vr_tensor_free(t); vr_tensor_free(s);
  vr_tensor *u = tu_tensor(VR_U8, 1, TU_SHAPE(3), TU_VALS(0, 1, 255)), *y = NULL;
  OK(vr_neg(u, &y));
  tu_assert_values(y, TU_VALS(0, 255, 1), 3, 0, "u8 neg wraps");
  vr_tensor_free(y); vr_tensor_free(u);
}
END_TEST

START_TEST(test_inplace_strided) {
  vr_tensor *base = tu_tensor(VR_F64, 2, TU_SHAPE(2, 3), TU_VALS(1, 2, 3, 4, 5, 6)), *t = NULL;
  OK(vr_transpose(base, 0, 1, &t)); /* 3 x 2, strides (1, 3) */
  vr_tensor *b = tu_tensor(VR_F64, 2, TU_SHAPE(3, 1), TU_VALS(10, 20, 30));
  OK(vr_add_(t, b, 1.0));
  tu_assert_values(base, TU_VALS(11, 22, 33, 14, 25, 36), 6, 0, "add_ through a transposed view");
  OK(vr_mul_scalar_(t, 2));
  tu_assert_values(base, TU_VALS(22, 44, 66, 28, 50, 72), 6, 0, "mul_scalar_ strided");
  vr_tensor_free(t); vr_tensor_free(b); vr_tensor_free(base);
}
END_TEST

/* ---------------------------------------------------------------- fast paths */

/* the f32 loops (contiguous, broadcast scalar, strided) agree with f64 */
START_TEST(test_f32_fast_paths) {
  const int64_t n = 100003;
  vr_tensor *a = tu_rand(VR_F32, 1, &n, 1), *b = tu_rand(VR_F32, 1, &n, 2), *y = NULL;
  vr_tensor *a64 = NULL, *b64 = NULL, *y64 = NULL, *yc = NULL;
  OK(vr_tensor_to_dtype(a, VR_F64, &a64));
  OK(vr_tensor_to_dtype(b, VR_F64, &b64));
  bin_fn fs[] = {vr_add, vr_sub, vr_mul, vr_div, vr_maximum, vr_minimum};
  for (int k = 0; k < 6; k++) {
    OK(fs[k](a, b, &y));
    OK(fs[k](a64, b64, &y64));
    OK(vr_tensor_to_dtype(y64, VR_F32, &yc)); /* f32 ops round once, like the f64 result rounded */
    tu_assert_close(y, yc, k == 3 ? 1e-6 : 0, 0, "f32 binary");
    vr_tensor_free(y); vr_tensor_free(y64); vr_tensor_free(yc);
  }
  un_fn us[] = {vr_exp, vr_tanh, vr_sigmoid, vr_relu, vr_square, vr_sin};
  for (int k = 0; k < 6; k++) {
    OK(us[k](a, &y));
    OK(us[k](a64, &y64));
    tu_assert_close(y, y64, 1e-6, 1e-7, "f32 unary");
    vr_tensor_free(y); vr_tensor_free(y64);
  }
  /* scalar broadcast on either side and a strided operand */
  vr_tensor *s = tu_tensor(VR_F32, 0, NULL, TU_VALS(0.25)), *v = NULL;
  OK(vr_mul(a, s, &y)); OK(vr_mul_scalar(a, 0.25, &y64)); tu_assert_close(y, y64, 0, 0, "a * scalar tensor");
  vr_tensor_free(y); vr_tensor_free(y64);
  OK(vr_sub(s, a, &y)); OK(vr_rsub_scalar(a, 0.25, &y64)); tu_assert_close(y, y64, 0, 0, "scalar tensor - a");
  vr_tensor_free(y); vr_tensor_free(y64);
  OK(vr_slice(a, 0, 1, n, 2, &v));
  OK(vr_add(v, v, &y)); OK(vr_mul_scalar(v, 2, &y64)); tu_assert_close(y, y64, 0, 0, "strided add");
  vr_tensor_free(y); vr_tensor_free(y64); vr_tensor_free(v); vr_tensor_free(s);
  vr_tensor_free(a); vr_tensor_free(b); vr_tensor_free(a64); vr_tensor_free(b64);
}
END_TEST

/* the vectorised f32 exp: about 1 ulp over the whole range, inf/0 at the ends, NaN kept */
START_TEST(test_f32_exp_range) {
  const int64_t n = 20001;
  vr_tensor *x = NULL, *y = NULL, *sg = NULL;
  OK(vr_tensor_arange(-104, 89.0 + 1e-9, 193.0 / (n - 1), VR_F32, VR_CPU, &x));
  OK(vr_exp(x, &y));
  OK(vr_sigmoid(x, &sg));
  float *xv = vr_tensor_data(x), *yv = vr_tensor_data(y), *sv = vr_tensor_data(sg);
  for (int64_t k = 0; k < vr_tensor_numel(x); k++) {
    float r = (float)exp((double)xv[k]);
    ck_assert_msg(fabsf(yv[k] - r) <= 3e-7f * r + 3e-45f || (isinf(r) && isinf(yv[k])), "exp(%.9g) = %.9g vs %.9g", xv[k], yv[k], r);
    double sr = 1 / (1 + exp(-(double)xv[k]));
    ck_assert_msg(fabs(sv[k] - sr) <= 5e-7 * sr + 1e-37, "sigmoid(%.9g) = %.9g vs %.9g", xv[k], sv[k], sr);
  }
  vr_tensor_free(x); vr_tensor_free(y); vr_tensor_free(sg);
  x = tu_tensor(VR_F32, 1, TU_SHAPE(5), TU_VALS(INFINITY, -INFINITY, NAN, 0, 88.7));
  OK(vr_exp(x, &y));
  yv = vr_tensor_data(y);
  ck_assert(isinf(yv[0]) && yv[1] <= 1.5e-45f && isnan(yv[2]) && yv[3] == 1 && isfinite(yv[4]));
  vr_tensor_free(x); vr_tensor_free(y);
}
END_TEST

START_TEST(test_f32_grad_matches_f64) {
  vr_tensor *x = tu_rand(VR_F32, 2, TU_SHAPE(64, 33), 4), *x64 = NULL;
  OK(vr_tensor_to_dtype(x, VR_F64, &x64));
  un_fn us[] = {vr_relu, vr_tanh, vr_sigmoid, vr_exp, vr_square, gelu_e, gelu_t};
  for (int k = 0; k < 7; k++) {
    vr_tensor *xs[2] = {x, x64}, *g[2];
    for (int j = 0; j < 2; j++) {
      vr_tensor *y = NULL, *s = NULL;
      OK(vr_tensor_set_requires_grad(xs[j], 1));
      OK(us[k](xs[j], &y));
      OK(vr_sum(y, 0, NULL, 0, &s));
      OK(vr_backward(s, NULL, 0));
      g[j] = vr_tensor_grad(xs[j]);
      vr_tensor_set_grad(xs[j], NULL);
      vr_tensor_free(y); vr_tensor_free(s);
    }
    tu_assert_close(g[0], g[1], 1e-5, 1e-6, "f32 unary grad");
    vr_tensor_free(g[0]); vr_tensor_free(g[1]);
  }
  vr_tensor_free(x); vr_tensor_free(x64);
}
END_TEST

/* transposed operands go through the tiled walk: values, a broadcast, and the backward kernels */
START_TEST(test_transposed_tiles) {
  vr_tensor *base = tu_rand(VR_F32, 3, TU_SHAPE(3, 70, 45), 31), *a = NULL, *b = tu_rand(VR_F32, 3, TU_SHAPE(3, 45, 70), 32);
  vr_tensor *r = tu_rand(VR_F32, 2, TU_SHAPE(1, 70), 33), *y = NULL, *z = NULL, *e = NULL;
  OK(vr_transpose(base, 1, 2, &a)); /* 3 x 45 x 70, strides (3150, 1, 45) */
  OK(vr_mul(a, b, &y));
  OK(vr_add(a, r, &z));
  OK(vr_exp(a, &e));
  double *av = tu_values(a), *bv = tu_values(b), *rv = tu_values(r), *yv = tu_values(y), *zv = tu_values(z), *ev = tu_values(e);
  for (int k = 0; k < 3 * 45 * 70; k++) {
    ck_assert_msg(yv[k] == (double)(float)(av[k] * bv[k]), "mul %d", k);
    ck_assert_msg(zv[k] == (double)(float)(av[k] + rv[k % 70]), "add %d", k);
    ck_assert_msg(fabs(ev[k] - exp(av[k])) <= 3e-7 * exp(av[k]), "exp %d", k);
  }
  free(av); free(bv); free(rv); free(yv); free(zv); free(ev);
  vr_tensor_free(y); vr_tensor_free(z); vr_tensor_free(e);
  /* gradients through the tiled backward kernels match the contiguous computation */
  vr_tensor *ac = NULL, *g[2] = {NULL, NULL};
  OK(vr_contiguous(a, &ac));
  vr_tensor *leaves[2] = {base, ac};
  for (int k = 0; k < 2; k++) {
    vr_tensor *v = NULL, *m = NULL, *t = NULL, *s = NULL;
    OK(vr_tensor_set_requires_grad(leaves[k], 1));
    if (k == 0) OK(vr_transpose(base, 1, 2, &v));
    else { vr_tensor_retain(ac); v = ac; }
    OK(vr_mul(v, b, &m));
    OK(vr_tanh(m, &t));
    OK(vr_sum(t, 0, NULL, 0, &s));
    OK(vr_backward(s, NULL, 0));
    vr_tensor *gl = vr_tensor_grad(leaves[k]);
    if (k == 0) OK(vr_transpose(gl, 1, 2, &g[0]));
    else { vr_tensor_retain(gl); g[1] = gl; }
    vr_tensor_free(gl); vr_tensor_free(v); vr_tensor_free(m); vr_tensor_free(t); vr_tensor_free(s);
  }
  tu_assert_close(g[0], g[1], 0, 0, "tiled backward");
  vr_tensor_free(g[0]); vr_tensor_free(g[1]); vr_tensor_free(ac);
  vr_tensor_free(base); vr_tensor_free(a); vr_tensor_free(b); vr_tensor_free(r);
}
END_TEST

/* ---------------------------------------------------------------- integers, empty, 0-dim */

START_TEST(test_int_ops) {
  int64_t n = 3;
  vr_tensor *a = NULL, *b = NULL, *y = NULL;
  OK(vr_tensor_from_buffer((int64_t[]){(int64_t)1 << 60, -5, 7}, 1, &n, VR_I64, VR_CPU, &a));
  OK(vr_tensor_from_buffer((int64_t[]){1, 2, -3}, 1, &n, VR_I64, VR_CPU, &b));
  OK(vr_add(a, b, &y));
  int64_t out[3];
  OK(vr_tensor_to_buffer(y, out, sizeof out));
  ck_assert(out[0] == ((int64_t)1 << 60) + 1 && out[1] == -3 && out[2] == 4);
  vr_tensor_free(y);
  OK(vr_maximum(a, b, &y)); OK(vr_tensor_to_buffer(y, out, sizeof out)); ck_assert(out[1] == 2 && out[2] == 7); vr_tensor_free(y);
  OK(vr_neg(b, &y)); OK(vr_tensor_to_buffer(y, out, sizeof out)); ck_assert(out[0] == -1 && out[2] == 3); vr_tensor_free(y);
  OK(vr_gt(a, b, &y)); tu_assert_values(y, TU_VALS(1, 0, 1), 3, 0, "int gt"); vr_tensor_free(y);
  FAILS(vr_div(a, b, &y), VR_E_DTYPE, "expected a float tensor, got i64");
  vr_tensor_free(a); vr_tensor_free(b);
}
END_TEST

START_TEST(test_empty_and_scalar) {
  vr_tensor *e = NULL, *y = NULL, *s = tu_tensor(VR_F64, 0, NULL, TU_VALS(3));
  OK(vr_tensor_zeros(2, TU_SHAPE(0, 4), VR_F32, VR_CPU, &e));
  OK(vr_exp(e, &y)); ck_assert_int_eq(vr_tensor_numel(y), 0); vr_tensor_free(y);
  vr_tensor *e1 = NULL;
  OK(vr_tensor_zeros(1, TU_SHAPE(4), VR_F32, VR_CPU, &e1));
  OK(vr_add(e, e1, &y)); ck_assert_int_eq(vr_tensor_size(y, 0), 0); vr_tensor_free(y);
  OK(vr_mul(s, s, &y)); ck_assert_int_eq(vr_tensor_ndim(y), 0); ck_assert(tu_item(y) == 9); vr_tensor_free(y);
  vr_tensor_free(e); vr_tensor_free(e1); vr_tensor_free(s);
}
END_TEST

/* ---------------------------------------------------------------- errors */

START_TEST(test_err_shape) {
  vr_tensor *a = tu_rand(VR_F32, 2, TU_SHAPE(3, 4), 1), *b = tu_rand(VR_F32, 2, TU_SHAPE(3, 5), 2), *y = NULL;
  FAILS(vr_add(a, b, &y), VR_E_SHAPE, "[3, 4]");
  ck_assert(strstr(vr_last_error(), "[3, 5]") != NULL);
  ck_assert(strstr(vr_last_error(), "vr_add") != NULL);
  FAILS(vr_mul(b, a, &y), VR_E_SHAPE, "vr_mul");
  ck_assert(y == NULL);
  vr_tensor_free(a); vr_tensor_free(b);
}
END_TEST

START_TEST(test_err_dtype) {
  vr_tensor *a = tu_rand(VR_F32, 1, TU_SHAPE(3), 1), *b = tu_rand(VR_F64, 1, TU_SHAPE(3), 2), *i = NULL, *y = NULL;
  FAILS(vr_add(a, b, &y), VR_E_DTYPE, "b: expected f32 like a, got f64");
  OK(vr_tensor_zeros(1, TU_SHAPE(3), VR_I32, VR_CPU, &i));
  FAILS(vr_exp(i, &y), VR_E_DTYPE, "vr_exp: a: expected a float tensor, got i32");
  FAILS(vr_log(i, &y), VR_E_DTYPE, "float");
  FAILS(vr_gelu(i, 0, &y), VR_E_DTYPE, "float");
  FAILS(vr_erfinv(i, &y), VR_E_DTYPE, "float");
  vr_tensor_free(a); vr_tensor_free(b); vr_tensor_free(i);
}
END_TEST

START_TEST(test_err_null) {
  vr_tensor *a = tu_rand(VR_F32, 1, TU_SHAPE(3), 1), *y = NULL;
  FAILS(vr_add(NULL, a, &y), VR_E_ARG, "a: expected a tensor");
  FAILS(vr_add(a, NULL, &y), VR_E_ARG, "b: expected a tensor");
  FAILS(vr_add(a, a, NULL), VR_E_ARG, "out");
  FAILS(vr_exp(NULL, &y), VR_E_ARG, "a: expected a tensor");
  FAILS(vr_exp(a, NULL), VR_E_ARG, "out");
  FAILS(vr_mul_scalar(NULL, 2, &y), VR_E_ARG, "vr_mul_scalar");
  vr_tensor_free(a);
}
END_TEST

Suite *elementwise_suite(void) {
  Suite *s = suite_create("elementwise");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_add_broadcast_values);
  tcase_add_test(tc, test_arith_values);
  tcase_add_test(tc, test_pow_values);
  tcase_add_test(tc, test_maxmin_nan);
  tcase_add_test(tc, test_broadcast_3d);
  tcase_add_test(tc, test_scalar_forms);
  tcase_add_test(tc, test_unary_values);
  tcase_add_test(tc, test_unary_grad_contig);
  tcase_add_test(tc, test_unary_grad_strided);
  tcase_add_test(tc, test_unary_erf_forward_only);
  tcase_add_test(tc, test_scalar_grads);
  tcase_add_test(tc, test_clamp_values);
  tcase_add_test(tc, test_gelu_known);
  tcase_add_test(tc, test_erfinv_known);
  tcase_add_test(tc, test_erfinv_roundtrip);
  tcase_add_test(tc, test_erfinv_f32);
  tcase_add_test(tc, test_grad_add_sub);
  tcase_add_test(tc, test_grad_mul);
  tcase_add_test(tc, test_grad_div);
  tcase_add_test(tc, test_grad_pow);
  tcase_add_test(tc, test_grad_maximum_minimum);
  tcase_add_test(tc, test_maximum_tie_grad);
  tcase_add_test(tc, test_grad_chain_reuse);
  tcase_add_test(tc, test_saved_modified);
  tcase_add_test(tc, test_saved_output_modified);
  tcase_add_test(tc, test_comparisons);
  tcase_add_test(tc, test_isfinite_all);
  tcase_add_test(tc, test_inplace_add_alias);
  tcase_add_test(tc, test_inplace_mixed_dtype);
  tcase_add_test(tc, test_inplace_strided);
  tcase_add_test(tc, test_f32_fast_paths);
  tcase_add_test(tc, test_f32_exp_range);
  tcase_add_test(tc, test_f32_grad_matches_f64);
  tcase_add_test(tc, test_transposed_tiles);
  tcase_add_test(tc, test_int_ops);
  tcase_add_test(tc, test_empty_and_scalar);
  tcase_add_test(tc, test_err_shape);
  tcase_add_test(tc, test_err_dtype);
  tcase_add_test(tc, test_err_null);
  suite_add_tcase(s, tc);
  return s;
}

VR_TEST_MAIN(elementwise_suite)
