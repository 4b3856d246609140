/* basic.c: CPU copy (with dtype conversion), fill, arange and Philox random kernels, and the
 * CPU memory functions. */
#include "cpu.h"
#include "../../core/philox.h"
#include <stdlib.h>

/* ---- memory: 64-byte aligned host buffers ---- */
static vr_status cpu_alloc(size_t nbytes, void **ptr) {
  size_t n = (nbytes + 63) & ~(size_t)63;
  void *p = aligned_alloc(64, n);
  if (!p) return VR_FAIL(VR_E_OOM, "cpu: could not allocate %zu bytes", nbytes);
  *ptr = p;
  return VR_OK;
}
static void cpu_release(void *ptr, size_t nbytes) {
  (void)nbytes;
  free(ptr);
}
static vr_status cpu_memcpy(void *dst, const void *src, size_t nbytes, int kind) {
  (void)kind;
  memmove(dst, src, nbytes);
  return VR_OK;
}
static vr_status cpu_sync(void) { return VR_OK; }

/* ---- copy ---- */
typedef struct { vr_dtype din, dout; } copy_ctx;

static void copy_run(void *c, char *const *p, const int64_t *s, int64_t n) {
  const copy_ctx *cc = c;
  char *o = p[0], *i = p[1];
  if (cc->din == cc->dout) {
    size_t es = vr_dtype_size(cc->din);
    if (s[0] == 1 && s[1] == 1) {
      memcpy(o, i, (size_t)n * es);
      return;
    }
    if (es == 4) {
      for (int64_t k = 0; k < n; k++) ((uint32_t *)o)[k * s[0]] = ((const uint32_t *)i)[k * s[1]];
      return;
    }
    if (es == 8) {
      for (int64_t k = 0; k < n; k++) ((uint64_t *)o)[k * s[0]] = ((const uint64_t *)i)[k * s[1]];
      return;
    }
  }
  if (cc->din == VR_F32 && cc->dout == VR_F64) {
    for (int64_t k = 0; k < n; k++) ((double *)o)[k * s[0]] = ((const float *)i)[k * s[1]];
    return;
  }
  if (cc->din == VR_F64 && cc->dout == VR_F32) {
    for (int64_t k = 0; k < n; k++) ((float *)o)[k * s[0]] = (float)((const double *)i)[k * s[1]];
    return;
  }
  if (cc->din == VR_F32 && cc->dout == VR_BF16) { /* the autocast casts: no detour through double */
    for (int64_t k = 0; k < n; k++) ((uint16_t *)o)[k * s[0]] = vr_f32_to_bf16(((const float *)i)[k * s[1]]);
    return;
  }
  if (cc->din == VR_BF16 && cc->dout == VR_F32) {
    for (int64_t k = 0; k < n; k++) ((float *)o)[k * s[0]] = vr_bf16_to_f32(((const uint16_t *)i)[k * s[1]]);
    return;
  }
  size_t ei = vr_dtype_size(cc->din), eo = vr_dtype_size(cc->dout);
  for (int64_t k = 0; k < n; k++) vr_store(o + k * s[0] * eo, cc->dout, vr_load(i + k * s[1] * ei, cc->din));
}

static vr_status vr_cpu_copy_fwd(const vr_kernel_args *a) {
  vr_tensor *ts[2] = {a->out[0], a->in[0]};
  vr_iter it;
  vr_iter_init(&it, 2, ts);
  copy_ctx cc = {a->in[0]->dtype, a->out[0]->dtype};
  vr_iter_parallel(&it, 1 << 16, copy_run, &cc);
  return VR_OK;
}

/* ---- fill ---- */
typedef struct { vr_dtype dt; double v; } fill_ctx;
static void fill_run(void *c, char *const *p, const int64_t *s, int64_t n) {
  const fill_ctx *fc = c;
  if (fc->dt == VR_F32) {
    float v = (float)fc->v;
    for (int64_t k = 0; k < n; k++) ((float *)p[0])[k * s[0]] = v;
  } else {
    size_t es = vr_dtype_size(fc->dt);
    for (int64_t k = 0; k < n; k++) vr_store(p[0] + k * s[0] * es, fc->dt, fc->v);
  }
}
static vr_status vr_cpu_fill_fwd(const vr_kernel_args *a) {
  vr_iter it;
  vr_iter_init(&it, 1, a->out);
  fill_ctx fc = {a->out[0]->dtype, a->f[0]};
  vr_iter_parallel(&it, 1 << 16, fill_run, &fc);
  return VR_OK;
}

/* ---- arange (out is contiguous and 1-D) ---- */
static vr_status vr_cpu_arange_fwd(const vr_kernel_args *a) {
  vr_tensor *t = a->out[0];
  char *p = vr_data(t);
  size_t es = vr_dtype_size(t->dtype);
  int64_t n = vr_tensor_numel(t);
  for (int64_t k = 0; k < n; k++) vr_store(p + k * es, t->dtype, a->f[0] + (double)k * a->f[1]);
  return VR_OK;
}

/* ---- random (out is contiguous): element k uses counter offset + k ---- */
typedef struct { const vr_kernel_args *a; } rand_ctx;
static void rand_body(void *c, int64_t lo, int64_t hi) {
  const vr_kernel_args *a = ((rand_ctx *)c)->a;
  vr_tensor *t = a->out[0];
  char *p = vr_data(t);
  size_t es = vr_dtype_size(t->dtype);
  uint64_t seed = (uint64_t)a->i[0], stream = (uint64_t)a->i[1], off = (uint64_t)a->i[2];
  for (int64_t k = lo; k < hi; k++)
    vr_store(p + k * es, t->dtype, vr_philox_sample(seed, stream, off + (uint64_t)k, a->sub, a->f[0], a->f[1]));
}
static vr_status vr_cpu_rand_fwd(const vr_kernel_args *a) {
  rand_ctx rc = {a};
  vr_parallel_for(vr_tensor_numel(a->out[0]), 1 << 14, rand_body, &rc);
  return VR_OK;
}

void vr_cpu_register_basic(void) {
  static const vr_device_api api = {cpu_alloc, cpu_release, cpu_memcpy, cpu_sync, NULL, NULL, NULL}; /* no events: host time */
  vr_device_register(VR_CPU, &api);
  vr_kernel_register(VR_OP_COPY, VR_CPU, vr_cpu_copy_fwd, NULL);
  vr_kernel_register(VR_OP_FILL, VR_CPU, vr_cpu_fill_fwd, NULL);
  vr_kernel_register(VR_OP_ARANGE, VR_CPU, vr_cpu_arange_fwd, NULL);
  vr_kernel_register(VR_OP_RAND, VR_CPU, vr_cpu_rand_fwd, NULL);
}
