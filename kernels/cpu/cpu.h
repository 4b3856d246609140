/* cpu.h: what the CPU kernels share: a strided iterator, element load/store, and the
 * registration hooks of each kernel family. */
#ifndef VISREG_CPU_H
#define VISREG_CPU_H
#include "../../core/internal.h"
#include <string.h>

/* ---- strided iteration over same-shaped operands (broadcast dims have stride 0) ---- */
#define VR_ITER_MAX_OPS 4
typedef struct vr_iter {
  int ndim, nops;
  int64_t numel;
  int64_t shape[VR_MAX_DIMS];
  int64_t st[VR_ITER_MAX_OPS][VR_MAX_DIMS];
  char *base[VR_ITER_MAX_OPS];   /* byte pointer to element 0 of each operand */
  size_t esize[VR_ITER_MAX_OPS];
} vr_iter;

/* ts[0..nops) all of ts[0]'s shape; dims that are contiguous for every operand are merged */
void vr_iter_init(vr_iter *it, int nops, vr_tensor *const *ts);
/* One run of n elements along the innermost dim: p[k] points at its first element of operand k,
 * s[k] is that operand's stride in elements. */
typedef void (*vr_iter_run_fn)(void *ctx, char *const *p, const int64_t *s, int64_t n);
/* visits linear elements [lo, hi) as runs */
void vr_iter_runs(const vr_iter *it, int64_t lo, int64_t hi, vr_iter_run_fn run, void *ctx);
/* visits all elements, split over threads when numel >= grain */
void vr_iter_parallel(const vr_iter *it, int64_t grain, vr_iter_run_fn run, void *ctx);

/* ---- element access as double (the generic, slow path) ---- */
static inline double vr_load(const void *p, vr_dtype dt) {
  switch (dt) {
  case VR_F32: return *(const float *)p;
  case VR_F64: return *(const double *)p;
  case VR_I32: return *(const int32_t *)p;
  case VR_I64: return (double)*(const int64_t *)p;
  case VR_U8: return *(const uint8_t *)p;
  case VR_BF16: {
    uint32_t u = (uint32_t)(*(const uint16_t *)p) << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
  }
  }
  return 0;
}
static inline void vr_store(void *p, vr_dtype dt, double v) {
  switch (dt) {
  case VR_F32: *(float *)p = (float)v; break;
  case VR_F64: *(double *)p = v; break;
  case VR_I32: *(int32_t *)p = (int32_t)v; break;
  case VR_I64: *(int64_t *)p = (int64_t)v; break;
  case VR_U8: *(uint8_t *)p = (uint8_t)v; break;
  case VR_BF16: {
    float f = (float)v;
    uint32_t u;
    memcpy(&u, &f, 4);
    u += 0x7fff + ((u >> 16) & 1);
    *(uint16_t *)p = (uint16_t)(u >> 16);
    break;
  }
  }
}

/* ---- kernel families: each kernels/cpu/<family>.c defines its hook; weak so that the library
 * links while a family is absent (its ops then report VR_E_UNSUPPORTED) ---- */
#define VR_CPU_FAMILY(name) void vr_cpu_register_##name(void) __attribute__((weak))
VR_CPU_FAMILY(basic);
VR_CPU_FAMILY(elementwise);
VR_CPU_FAMILY(reduce);
VR_CPU_FAMILY(linalg);
VR_CPU_FAMILY(conv);
VR_CPU_FAMILY(pool);
VR_CPU_FAMILY(norm);
VR_CPU_FAMILY(softmax);
VR_CPU_FAMILY(index);
VR_CPU_FAMILY(sort);
VR_CPU_FAMILY(reg);
VR_CPU_FAMILY(augment);
VR_CPU_FAMILY(optim);
#endif
