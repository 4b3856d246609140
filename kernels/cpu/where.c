/* where.c: the CPU kernel of VR_OP_WHERE (argument layout in core/ops/where.c): out = cond ? a : b
 * over any strides and broadcasts, element by element as bits (every dtype of the same size is
 * the same copy). */
#include "cpu.h"

static void where_run(void *c, char *const *p, const int64_t *s, int64_t n) {
  size_t es = *(const size_t *)c;
  const uint8_t *m = (const uint8_t *)p[1];
  if (es == 4) {
    uint32_t *o = (uint32_t *)p[0];
    const uint32_t *x = (const uint32_t *)p[2], *y = (const uint32_t *)p[3];
    if (s[0] == 1 && s[1] == 1 && s[2] == 1 && s[3] == 1) {
      for (int64_t k = 0; k < n; k++) o[k] = m[k] ? x[k] : y[k];
      return;
    }
    for (int64_t k = 0; k < n; k++) o[k * s[0]] = m[k * s[1]] ? x[k * s[2]] : y[k * s[3]];
    return;
  }
  if (es == 8) {
    uint64_t *o = (uint64_t *)p[0];
    const uint64_t *x = (const uint64_t *)p[2], *y = (const uint64_t *)p[3];
    for (int64_t k = 0; k < n; k++) o[k * s[0]] = m[k * s[1]] ? x[k * s[2]] : y[k * s[3]];
    return;
  }
  for (int64_t k = 0; k < n; k++)
    vr_cpu_copy_elem(p[0] + (size_t)(k * s[0]) * es, (m[k * s[1]] ? p[2] + (size_t)(k * s[2]) * es : p[3] + (size_t)(k * s[3]) * es),
              es);
}

static vr_status vr_cpu_where_fwd(const vr_kernel_args *a) {
  vr_tensor *ts[4] = {a->out[0], a->in[0], a->in[1], a->in[2]};
  vr_iter it;
  vr_iter_init(&it, 4, ts);
  size_t es = vr_dtype_size(a->out[0]->dtype);
  vr_iter_parallel(&it, 1 << 15, where_run, &es);
  return VR_OK;
}

void vr_cpu_register_where(void) { vr_kernel_register(VR_OP_WHERE, VR_CPU, vr_cpu_where_fwd, NULL); }
