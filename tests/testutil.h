/* testutil.h: helpers every Check suite shares: tensors from literals, comparisons, the f64
 * finite-difference gradient check, guard bytes, CUDA skips, the main() of a suite, and the
 * harness of the CUDA suites (the device under test, poisoned outputs, mirrors of a tensor on
 * it, and run_cmp, which runs one (op, bwd) kernel on both devices and compares). */
#ifndef VISREG_TESTUTIL_H
#define VISREG_TESTUTIL_H
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../core/visreg.h"
#include "../core/internal.h"

#define OK(expr) do { vr_status s_ = (expr); ck_assert_msg(s_ == VR_OK, "%s failed: %s", #expr, vr_last_error()); } while (0)
/* the call fails with status st and its message contains needle */
#define FAILS(expr, st, needle) do { vr_status s_ = (expr); \
    ck_assert_msg(s_ == (st), "%s: expected %s, got %s (%s)", #expr, vr_status_name(st), vr_status_name(s_), vr_last_error()); \
    ck_assert_msg(strstr(vr_last_error(), (needle)) != NULL, "%s: message '%s' lacks '%s'", #expr, vr_last_error(), (needle)); } while (0)

/* a suite is a host: the CPU settings bin/visreg runs with, before libgomp and OpenBLAS start; and
 * the kernel variants it runs with, VISREG_TEST_VARIANT=NAME=VALUE[,...] (vr_set_variants) */
__attribute__((constructor(101))) static void tu_host_defaults(void) {
  vr_cpu_defaults();
  if (vr_set_variants(getenv("VISREG_TEST_VARIANT")) != VR_OK) fprintf(stderr, "VISREG_TEST_VARIANT: %s\n", vr_last_error());
}

static inline vr_tensor *tu_tensor(vr_dtype dt, int ndim, const int64_t *shape, const double *vals) {
  vr_tensor *t;
  if (vr_tensor_zeros(ndim, shape, dt, VR_CPU, &t)) return NULL;
  int64_t n = vr_tensor_numel(t), idx[8] = {0};
  for (int64_t k = 0; k < n; k++) {
    int64_t r = k;
    for (int d = ndim - 1; d >= 0; d--) { idx[d] = r % shape[d]; r /= shape[d]; }
    vr_tensor_set(t, idx, vals[k]);
  }
  return t;
}
#define TU_SHAPE(...) ((const int64_t[]){__VA_ARGS__})
#define TU_VALS(...) ((const double[]){__VA_ARGS__})

/* deterministic pseudo-random f64 values in (-1, 1) */
static inline vr_tensor *tu_rand(vr_dtype dt, int ndim, const int64_t *shape, uint64_t seed) {
  vr_generator *g;
  vr_tensor *t = NULL;
  if (vr_generator_new(seed, 7, &g)) return NULL;
  vr_rand_uniform(g, ndim, shape, -1, 1, dt, VR_CPU, &t);
  vr_generator_free(g);
  return t;
}

/* all elements of t (any strides) as a new row-major f64 buffer */
static inline double *tu_values(const vr_tensor *t) {
  int64_t n = vr_tensor_numel(t);
  double *v = malloc(sizeof(double) * (size_t)(n ? n : 1));
  vr_tensor *d;
  if (vr_tensor_to_dtype(t, VR_F64, &d)) { free(v); return NULL; }
  vr_tensor_to_buffer(d, v, sizeof(double) * (size_t)n);
  vr_tensor_free(d);
  return v;
}

static inline double tu_item(const vr_tensor *t) {
  double v = NAN;
  vr_tensor_item(t, &v);
  return v;
}

/* asserts |a - b| <= atol + rtol |b| elementwise and equal shapes */
static inline void tu_assert_close(const vr_tensor *a, const vr_tensor *b, double rtol, double atol, const char *what) {
  ck_assert_msg(vr_tensor_ndim(a) == vr_tensor_ndim(b), "%s: ndim %d vs %d", what, vr_tensor_ndim(a), vr_tensor_ndim(b));
  for (int d = 0; d < vr_tensor_ndim(a); d++)
    ck_assert_msg(vr_tensor_size(a, d) == vr_tensor_size(b, d), "%s: size of dim %d: %lld vs %lld", what, d,
                  (long long)vr_tensor_size(a, d), (long long)vr_tensor_size(b, d));
  double *x = tu_values(a), *y = tu_values(b);
  int64_t n = vr_tensor_numel(a);
  for (int64_t k = 0; k < n; k++)
    ck_assert_msg(fabs(x[k] - y[k]) <= atol + rtol * fabs(y[k]) || (isnan(x[k]) && isnan(y[k])),
                  "%s: element %lld: %.12g vs expected %.12g", what, (long long)k, x[k], y[k]);
  free(x);
  free(y);
}

static inline void tu_assert_values(const vr_tensor *a, const double *expect, int64_t n, double tol, const char *what) {
  ck_assert_msg(vr_tensor_numel(a) == n, "%s: %lld elements, expected %lld", what, (long long)vr_tensor_numel(a), (long long)n);
  double *x = tu_values(a);
  for (int64_t k = 0; k < n; k++)
    ck_assert_msg(fabs(x[k] - expect[k]) <= tol * (1 + fabs(expect[k])), "%s: element %lld: %.12g vs expected %.12g",
                  what, (long long)k, x[k], expect[k]);
  free(x);
}

/* ---- finite-difference gradient check ----
 * f maps inputs to one output. Inputs flagged in `diff` (a bitmask; all float inputs when 0) must
 * be f64 leaves (any strides). Checks d<out, w>/d in[k] from backward against central
 * differences for a fixed random w. */
/* t converted to dtype dt (a new tensor) */
static inline vr_tensor *tu_to_dtype(const vr_tensor *t, vr_dtype dt) {
  vr_tensor *o = NULL;
  ck_assert_int_eq(vr_tensor_to_dtype(t, dt, &o), VR_OK);
  return o;
}

/* sum of a * b over all elements, in f64 */
static inline double tu_dot(const vr_tensor *a, const vr_tensor *b) {
  double *u = tu_values(a), *v = tu_values(b), s = 0;
  for (int64_t k = 0; k < vr_tensor_numel(a); k++) s += u[k] * v[k];
  free(u);
  free(v);
  return s;
}

/* y = conv2d(x, w) with stride st and padding ph x pw, then backward with gy: *gx and *gw are
 * the grads (x and w are left without requires_grad) */
static inline void tu_conv_and_grads(vr_tensor *x, vr_tensor *w, vr_tensor *gy, int64_t st, int64_t ph, int64_t pw,
                                     vr_tensor **y, vr_tensor **gx, vr_tensor **gw) {
  ck_assert_int_eq(vr_tensor_set_requires_grad(x, 1), VR_OK);
  ck_assert_int_eq(vr_tensor_set_requires_grad(w, 1), VR_OK);
  ck_assert_int_eq(vr_conv2d(x, w, NULL, st, st, ph, pw, 1, 1, 1, y), VR_OK);
  ck_assert_int_eq(vr_backward(*y, gy, 0), VR_OK);
  *gx = vr_tensor_grad(x);
  *gw = vr_tensor_grad(w);
  vr_tensor_set_grad(x, NULL);
  vr_tensor_set_grad(w, NULL);
  ck_assert_int_eq(vr_tensor_set_requires_grad(x, 0), VR_OK);
  ck_assert_int_eq(vr_tensor_set_requires_grad(w, 0), VR_OK);
}

typedef vr_status (*tu_fn)(vr_tensor *const *in, void *ctx, vr_tensor **out);

static inline double tu_dot_out(tu_fn f, vr_tensor *const *in, void *ctx, const double *w) {
  vr_tensor *o = NULL;
  int prev = vr_set_grad_enabled(0);
  vr_status s = f(in, ctx, &o);
  vr_set_grad_enabled(prev);
  ck_assert_msg(s == VR_OK, "gradcheck forward failed: %s", vr_last_error());
  double *v = tu_values(o), acc = 0;
  for (int64_t k = 0; k < vr_tensor_numel(o); k++) acc += v[k] * w[k];
  free(v);
  vr_tensor_free(o);
  return acc;
}

static inline void tu_gradcheck(const char *name, int n, vr_tensor *const *in, unsigned diff, tu_fn f, void *ctx,
                                double eps, double tol) {
  for (int k = 0; k < n; k++)
    if (in[k] && (diff ? (diff >> k) & 1 : vr_tensor_dtype(in[k]) == VR_F64)) {
      vr_tensor_set_grad(in[k], NULL);
      OK(vr_tensor_set_requires_grad(in[k], 1));
    }
  vr_tensor *o = NULL;
  vr_status s = f(in, ctx, &o);
  ck_assert_msg(s == VR_OK, "%s: forward failed: %s", name, vr_last_error());
  ck_assert_msg(vr_tensor_requires_grad(o), "%s: output does not require grad", name);
  int64_t no = vr_tensor_numel(o);
  vr_tensor *w = tu_rand(VR_F64, vr_tensor_ndim(o), (int64_t[]){vr_tensor_size(o, 0), vr_tensor_size(o, 1),
                         vr_tensor_size(o, 2), vr_tensor_size(o, 3), vr_tensor_size(o, 4), vr_tensor_size(o, 5),
                         vr_tensor_size(o, 6), vr_tensor_size(o, 7)}, 99);
  vr_tensor *wd;
  OK(vr_tensor_to_dtype(w, vr_tensor_dtype(o), &wd));
  s = vr_backward(o, wd, 0);
  ck_assert_msg(s == VR_OK, "%s: backward failed: %s", name, vr_last_error());
  double *wv = tu_values(w);
  for (int k = 0; k < n; k++) {
    if (!in[k] || !vr_tensor_requires_grad(in[k])) continue;
    vr_tensor *g = vr_tensor_grad(in[k]);
    ck_assert_msg(g != NULL, "%s: input %d got no gradient", name, k);
    double *gv = tu_values(g);
    int nd = vr_tensor_ndim(in[k]);
    int64_t ne = vr_tensor_numel(in[k]), idx[8] = {0};
    for (int64_t e = 0; e < ne; e++) {
      int64_t r = e;
      for (int d = nd - 1; d >= 0; d--) { idx[d] = r % vr_tensor_size(in[k], d); r /= vr_tensor_size(in[k], d); }
      double x0;
      vr_tensor_get(in[k], idx, &x0);
      vr_tensor_set(in[k], idx, x0 + eps);
      double fp = tu_dot_out(f, in, ctx, wv);
      vr_tensor_set(in[k], idx, x0 - eps);
      double fm = tu_dot_out(f, in, ctx, wv);
      vr_tensor_set(in[k], idx, x0);
      double num = (fp - fm) / (2 * eps);
      ck_assert_msg(fabs(gv[e] - num) <= tol * (1 + fabs(num)),
                    "%s: input %d element %lld: analytic %.10g vs numeric %.10g", name, k, (long long)e, gv[e], num);
    }
    free(gv);
    vr_tensor_free(g);
    vr_tensor_set_grad(in[k], NULL);
  }
  (void)no;
  free(wv);
  vr_tensor_free(w);
  vr_tensor_free(wd);
  vr_tensor_free(o);
}

/* a non-contiguous f64 view with the given shape: the transpose of a contiguous tensor (2-D and up),
 * values from seed. Caller frees the returned view only. */
static inline vr_tensor *tu_strided(int ndim, const int64_t *shape, uint64_t seed) {
  int64_t sw[8];
  for (int i = 0; i < ndim; i++) sw[i] = shape[i];
  if (ndim >= 2) { sw[ndim - 1] = shape[ndim - 2]; sw[ndim - 2] = shape[ndim - 1]; }
  vr_tensor *base = tu_rand(VR_F64, ndim, sw, seed), *v = NULL;
  if (ndim >= 2) vr_transpose(base, -1, -2, &v);
  else { vr_tensor_retain(base); v = base; }
  vr_tensor_free(base);
  return v;
}

/* ---- a fresh temporary folder per test: tcase_add_checked_fixture(tc, tu_tmpdir_setup,
 * tu_tmpdir_teardown); tu_dir holds its path and tu_in_dir(name) a path inside it (the last four
 * results stay valid) ---- */
static char tu_dir[256];
static inline void tu_tmpdir_setup(void) {
  snprintf(tu_dir, sizeof tu_dir, "/tmp/visreg_test_XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(tu_dir));
}
static inline void tu_tmpdir_teardown(void) {
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", tu_dir);
  ck_assert_int_eq(system(cmd), 0);
}
static inline const char *tu_in_dir(const char *name) {
  static char p[4][512];
  static int k;
  k = (k + 1) % 4;
  snprintf(p[k], sizeof p[k], "%s/%s", tu_dir, name);
  return p[k];
}

static inline int tu_have_cuda(void) { return vr_cuda_available(); }
#define TU_SKIP_NO_CUDA() do { if (!tu_have_cuda()) { printf("SKIP %s: no CUDA device\n", __func__); return; } } while (0)

/* main() of a suite file: VR_TEST_MAIN(my_suite) */
#define VR_TEST_MAIN(suite_fn) \
  int main(void) { \
    SRunner *sr = srunner_create(suite_fn()); \
    srunner_run_all(sr, CK_NORMAL); \
    int nf = srunner_ntests_failed(sr); \
    srunner_free(sr); \
    return nf ? 1 : 0; \
  }

/* ---- the CUDA suites: DEV (CUDA, or the CPU itself with VISREG_TEST_CUDA_AS_CPU=1), poisoned
 * outputs, mirrors of a tensor on DEV, the elementwise comparison, and run_cmp ---- */
static vr_device DEV = VR_CUDA;

/* NEED_DEV() at the top of a case: DEV is the CPU itself with VISREG_TEST_CUDA_AS_CPU=1, else CUDA
 * (the case skips with a SKIP line without a GPU); tu_dev_present() sets DEV and says whether it can run */
static inline int tu_dev_present(void) {
  const char *e = getenv("VISREG_TEST_CUDA_AS_CPU");
  DEV = e && e[0] == '1' ? VR_CPU : VR_CUDA;
  return DEV == VR_CPU || tu_have_cuda();
}
#ifndef NEED_DEV
#define NEED_DEV() do { if (!tu_dev_present()) { printf("SKIP %s: no CUDA device\n", __func__); return; } } while (0)
#endif
#ifndef SH
#define SH(...) ((const int64_t[]){__VA_ARGS__})
#endif

/* t's values rounded down to whole numbers, as a new tensor of dtype dt (t is freed) */
static inline vr_tensor *tu_floor_to(vr_tensor *t, vr_dtype dt) {
  int64_t n = vr_tensor_numel(t);
  double *v = malloc(sizeof(double) * (size_t)(n ? n : 1));
  OK(vr_tensor_to_buffer(t, v, sizeof(double) * (size_t)n));
  for (int64_t k = 0; k < n; k++) v[k] = floor(v[k]);
  vr_tensor *f = NULL, *u = NULL;
  OK(vr_tensor_from_buffer(v, t->ndim, t->shape, VR_F64, VR_CPU, &f));
  OK(vr_tensor_to_dtype(f, dt, &u));
  free(v);
  vr_tensor_free(f);
  vr_tensor_free(t);
  return u;
}

static inline vr_tensor *poisoned(vr_dtype dt, int ndim, const int64_t *shape) {
  vr_tensor *t = NULL;
  OK(vr_tensor_empty(ndim, shape, dt, VR_CPU, &t));
  OK(vr_fill_(t, vr_is_float(dt) ? NAN : 77));
  return t;
}

/* the same storage bytes and the same view on dev */
static inline vr_tensor *mirror(const vr_tensor *t, vr_device dev) {
  if (!t) return NULL;
  size_t es = vr_dtype_size(t->dtype);
  int64_t n = (int64_t)(t->storage->nbytes / es);
  int64_t n1 = n ? n : 1;
  vr_tensor *base = NULL, *v = NULL;
  OK(vr_tensor_empty(1, &n1, t->dtype, dev, &base));
  if (n) OK(vr_device_get(dev)->memcpy(base->storage->data, t->storage->data, (size_t)n * es, dev == VR_CPU ? 2 : 0));
  OK(vr_tensor_view_raw(base, t->ndim, t->shape, t->stride, t->offset, &v));
  vr_tensor_free(base);
  return v;
}

/* asserts |d - c| <= atol + rtol |c| elementwise (NaN matches NaN; exact compares also the sign of 0) */
static inline double cmp(const vr_tensor *c, const vr_tensor *d, double rtol, double atol, const char *what) {
  ck_assert_msg(vr_tensor_numel(c) == vr_tensor_numel(d), "%s: numel %lld vs %lld", what, (long long)vr_tensor_numel(c),
                (long long)vr_tensor_numel(d));
  double *x = tu_values(c), *y = tu_values(d), worst = 0;
  ck_assert_msg(x && y, "%s: could not read values: %s", what, vr_last_error());
  int64_t n = vr_tensor_numel(c);
  for (int64_t k = 0; k < n; k++) {
    if (isnan(x[k]) && isnan(y[k])) continue;
    double e = x[k] == y[k] ? 0 : fabs(x[k] - y[k]); /* equal infinities match */
    if (!(e == 0 || e <= atol + rtol * fabs(x[k])) || (rtol == 0 && atol == 0 && signbit(x[k]) != signbit(y[k])))
      ck_abort_msg("%s: element %lld: %s %.17g vs cpu %.17g", what, (long long)k, vr_device_name(d->device), y[k], x[k]);
    if (e > worst) worst = e;
  }
  free(x);
  free(y);
  return worst;
}

/* Runs (op, bwd) on the CPU with a and on DEV with mirrors of a's tensors; compares every output */
static inline int run_cmp(vr_op op, int bwd, vr_kernel_args *a, double rtol, double atol, const char *what) {
  if (!vr_kernel_exists(op, VR_CPU, bwd)) {
    printf("SKIP %s: no CPU kernel for %s%s to compare with\n", what, vr_op_name(op), bwd ? " backward" : "");
    return 0;
  }
  ck_assert_msg(vr_kernel_exists(op, DEV, bwd), "%s: no %s kernel for %s%s", what, vr_device_name(DEV), vr_op_name(op),
                bwd ? " backward" : "");
  vr_kernel_args d = *a;
  for (int k = 0; k < 8; k++) d.in[k] = mirror(a->in[k], DEV);
  for (int k = 0; k < 4; k++) d.out[k] = mirror(a->out[k], DEV);
  vr_status s1 = vr_dispatch(op, VR_CPU, bwd, a);
  ck_assert_msg(s1 == VR_OK, "%s: cpu kernel failed: %s", what, vr_last_error());
  vr_status s2 = vr_dispatch(op, DEV, bwd, &d);
  ck_assert_msg(s2 == VR_OK, "%s: %s kernel failed: %s", what, vr_device_name(DEV), vr_last_error());
  OK(vr_device_get(DEV)->synchronize());
  char buf[200];
  double worst = 0;
  for (int k = 0; k < 4; k++)
    if (a->out[k]) {
      snprintf(buf, sizeof buf, "%s out[%d]", what, k);
      double w = cmp(a->out[k], d.out[k], rtol, atol, buf);
      if (w > worst) worst = w;
    }
  for (int k = 0; k < 8; k++)
    if (a->in[k]) {
      snprintf(buf, sizeof buf, "%s in[%d] after", what, k);
      cmp(a->in[k], d.in[k], rtol, atol, buf);
    }
  for (int k = 0; k < 8; k++) vr_tensor_free(d.in[k]);
  for (int k = 0; k < 4; k++) vr_tensor_free(d.out[k]);
  if (getenv("VISREG_TEST_VERBOSE")) printf("  %-56s max |diff| %.3g\n", what, worst);
  return 1;
}

static inline void free_args(vr_kernel_args *a) {
  for (int k = 0; k < 8; k++) vr_tensor_free(a->in[k]);
  for (int k = 0; k < 4; k++) vr_tensor_free(a->out[k]);
  memset(a, 0, sizeof *a);
}
#endif
