/* rng.c: the Philox generator handle and random tensors. A draw of n elements uses counters
 * offset .. offset+n-1 and advances the offset by n, whatever the device or thread count. */
#include "internal.h"
#include "philox.h"
#include <stdlib.h>

struct vr_generator {
  uint64_t seed, stream, offset;
};

vr_status vr_generator_new(uint64_t seed, uint64_t stream, vr_generator **out) {
  VR_CHECK_OUT(out);
  vr_generator *g = calloc(1, sizeof *g);
  if (!g) return VR_FAIL(VR_E_OOM, "generator: out of host memory");
  g->seed = seed;
  g->stream = stream;
  *out = g;
  return VR_OK;
}
void vr_generator_free(vr_generator *g) { free(g); }
uint64_t vr_generator_seed(const vr_generator *g) { return g ? g->seed : 0; }
uint64_t vr_generator_stream(const vr_generator *g) { return g ? g->stream : 0; }
uint64_t vr_generator_offset(const vr_generator *g) { return g ? g->offset : 0; }
void vr_generator_set_state(vr_generator *g, uint64_t seed, uint64_t stream, uint64_t offset) {
  if (!g) return;
  g->seed = seed;
  g->stream = stream;
  g->offset = offset;
}

void vr_philox4x32(uint64_t seed, uint64_t stream, uint64_t counter, uint32_t *out4) {
  vr_philox_block(seed, stream, counter, out4);
}

static vr_status draw(const char *func, vr_generator *g, int ndim, const int64_t *shape, int kind, double a, double b,
                      vr_dtype dtype, vr_device device, vr_tensor **out) {
  if (!g) return vr_error_set(VR_E_ARG, func, __FILE__, __LINE__, "g: expected a generator, got NULL");
  if (!out) return vr_error_set(VR_E_ARG, func, __FILE__, __LINE__, "out: expected an output pointer, got NULL");
  vr_tensor *t = NULL;
  VR_TRY(vr_tensor_empty(ndim, shape, dtype, device, &t));
  int64_t n = vr_tensor_numel(t);
  vr_kernel_args k = {.out = {t}, .n_out = 1, .sub = kind, .i = {(int64_t)g->seed, (int64_t)g->stream, (int64_t)g->offset},
                      .f = {a, b}};
  vr_status st = n ? vr_dispatch(VR_OP_RAND, device, 0, &k) : VR_OK;
  if (st) {
    vr_tensor_free(t);
    return st;
  }
  g->offset += (uint64_t)n;
  *out = t;
  return VR_OK;
}

vr_status vr_rand_uniform(vr_generator *g, int ndim, const int64_t *shape, double low, double high, vr_dtype dtype,
                          vr_device device, vr_tensor **out) {
  if (!(low <= high)) return VR_FAIL(VR_E_ARG, "low, high: expected low <= high, got %g, %g", low, high);
  if (!vr_is_float(dtype)) return VR_FAIL(VR_E_DTYPE, "dtype: expected a float dtype, got %s", vr_dtype_name(dtype));
  return draw(__func__, g, ndim, shape, VR_RAND_UNIFORM, low, high, dtype, device, out);
}

vr_status vr_rand_normal(vr_generator *g, int ndim, const int64_t *shape, double mean, double std, vr_dtype dtype,
                         vr_device device, vr_tensor **out) {
  if (!(std >= 0)) return VR_FAIL(VR_E_ARG, "std: expected >= 0, got %g", std);
  if (!vr_is_float(dtype)) return VR_FAIL(VR_E_DTYPE, "dtype: expected a float dtype, got %s", vr_dtype_name(dtype));
  return draw(__func__, g, ndim, shape, VR_RAND_NORMAL, mean, std, dtype, device, out);
}

vr_status vr_rand_int(vr_generator *g, int ndim, const int64_t *shape, int64_t low, int64_t high, vr_dtype dtype,
                      vr_device device, vr_tensor **out) {
  if (low >= high)
    return VR_FAIL(VR_E_ARG, "low, high: expected low < high, got %lld, %lld", (long long)low, (long long)high);
  return draw(__func__, g, ndim, shape, VR_RAND_INT, (double)low, (double)high, dtype, device, out);
}

vr_status vr_randperm(vr_generator *g, int64_t n, vr_device device, vr_tensor **out) {
  VR_CHECK_OUT(out);
  if (!g) return VR_FAIL(VR_E_ARG, "g: expected a generator, got NULL");
  if (n < 0) return VR_FAIL(VR_E_ARG, "n: expected >= 0, got %lld", (long long)n);
  vr_tensor *t = NULL;
  VR_TRY(vr_tensor_alloc(1, &n, VR_I64, VR_CPU, &t));
  int64_t *p = vr_data(t);
  for (int64_t i = 0; i < n; i++) p[i] = i;
  /* Fisher-Yates, swap i with a Philox draw in [0, i] */
  for (int64_t i = n - 1; i > 0; i--) {
    int64_t j = (int64_t)vr_philox_sample(g->seed, g->stream, g->offset + (uint64_t)i, VR_RAND_INT, 0, (double)(i + 1));
    int64_t tmp = p[i];
    p[i] = p[j];
    p[j] = tmp;
  }
  g->offset += (uint64_t)n;
  if (device == VR_CPU) {
    *out = t;
    return VR_OK;
  }
  vr_status st = vr_tensor_to_device(t, device, out);
  vr_tensor_free(t);
  return st;
}
