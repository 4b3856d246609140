/* cuda_parity.h: the harness the CUDA suites share: DEV (CUDA, or the CPU itself with
 * VISREG_TEST_CUDA_AS_CPU=1), poisoned outputs, mirrors of a tensor on DEV, the elementwise
 * comparison and run_cmp, which runs one (op, bwd) kernel on both devices and compares. */
#ifndef VISREG_CUDA_PARITY_H
#define VISREG_CUDA_PARITY_H
#include "testutil.h"
#include "../core/internal.h"

static vr_device DEV = VR_CUDA;

/* NEED_DEV() at the top of a case: DEV is the CPU itself with VISREG_TEST_CUDA_AS_CPU=1, else CUDA
 * (the case skips with a SKIP line without a GPU). test_cuda.c defines its own before including. */
#ifndef NEED_DEV
static inline int as_cpu(void) {
  const char *e = getenv("VISREG_TEST_CUDA_AS_CPU");
  return e && e[0] == '1';
}
#define NEED_DEV()                                                                                 \
  do {                                                                                             \
    DEV = as_cpu() ? VR_CPU : VR_CUDA;                                                             \
    if (DEV == VR_CUDA) TU_SKIP_NO_CUDA();                                                         \
  } while (0)
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

static vr_tensor *poisoned(vr_dtype dt, int ndim, const int64_t *shape) {
  vr_tensor *t = NULL;
  OK(vr_tensor_empty(ndim, shape, dt, VR_CPU, &t));
  OK(vr_fill_(t, vr_is_float(dt) ? NAN : 77));
  return t;
}

/* the same storage bytes and the same view on dev */
static vr_tensor *mirror(const vr_tensor *t, vr_device dev) {
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
static double cmp(const vr_tensor *c, const vr_tensor *d, double rtol, double atol, const char *what) {
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
static int run_cmp(vr_op op, int bwd, vr_kernel_args *a, double rtol, double atol, const char *what) {
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

static void free_args(vr_kernel_args *a) {
  for (int k = 0; k < 8; k++) vr_tensor_free(a->in[k]);
  for (int k = 0; k < 4; k++) vr_tensor_free(a->out[k]);
  memset(a, 0, sizeof *a);
}
#endif
