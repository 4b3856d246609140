/* optim.c: CPU kernels of the multi-tensor optimiser ops (VR_OP_ADAMW, core/ops/optim.c documents
 * the arguments): the fused AdamW step and the global 2-norm with its clip factor. Every tensor is
 * cut into chunks of CHUNK elements; OpenMP runs the chunks of all tensors together. The norm sums
 * each chunk in double and then the chunk sums in order: the same result for any thread count.
 * The step's arithmetic is kernels/cuda/optim.cu's, in the element type. */
#include "cpu.h"
#include <math.h>
#include <stdlib.h>

#define CHUNK 16384

typedef struct chunk {
  int tensor;
  int64_t start;
} chunk;

/* the chunk table of n tensors (numel from ts); *nch its length; NULL on OOM (or no elements) */
static chunk *chunks_of(vr_tensor *const *ts, int n, int64_t *nch) {
  int64_t c = 0;
  for (int k = 0; k < n; k++) c += (vr_tensor_numel(ts[k]) + CHUNK - 1) / CHUNK;
  *nch = c;
  chunk *t = malloc(sizeof(chunk) * (size_t)(c ? c : 1));
  if (!t) return NULL;
  c = 0;
  for (int k = 0; k < n; k++)
    for (int64_t s = 0; s < vr_tensor_numel(ts[k]); s += CHUNK) t[c++] = (chunk){k, s};
  return t;
}

#define DEFINE_ADAMW(T, SQRT)                                                                            \
  static void adamw_##T(const vr_multi_tensor_args *mt, const chunk *ch, int64_t nch, const double *f, \
                        double scale) {                                                                 \
    const T b1 = (T)f[1], omb1 = (T)(1 - f[1]), b2 = (T)f[2], omb2 = (T)(1 - f[2]), eps = (T)f[3];     \
    const T ibc2 = (T)f[5], s = (T)scale;                                                               \
    _Pragma("omp parallel for schedule(static)") for (int64_t c = 0; c < nch; c++) {                    \
      int k = ch[c].tensor;                                                                             \
      double lr = f[0] * mt->lr_scale[k];                                                               \
      const T decay = (T)(1 - lr * mt->wd[k]), step = (T)(lr / f[4]);                                   \
      int64_t lo = ch[c].start, hi = lo + CHUNK, ne = vr_tensor_numel(mt->t[0][k]);                     \
      if (hi > ne) hi = ne;                                                                             \
      T *p = vr_data(mt->t[0][k]), *m = vr_data(mt->t[2][k]), *v = vr_data(mt->t[3][k]);                \
      const T *gr = vr_data(mt->t[1][k]);                                                               \
      for (int64_t i = lo; i < hi; i++) {                                                               \
        T g = gr[i] * s;                                                                                \
        T pv = p[i] * decay;                                                                            \
        T mv = b1 * m[i] + omb1 * g;                                                                    \
        T vv = b2 * v[i] + omb2 * (g * g);                                                              \
        T den = SQRT(vv) * ibc2 + eps;                                                                  \
        m[i] = mv;                                                                                      \
        v[i] = vv;                                                                                      \
        p[i] = pv - step * (mv / den);                                                                  \
      }                                                                                                 \
    }                                                                                                   \
  }
DEFINE_ADAMW(float, sqrtf)
DEFINE_ADAMW(double, sqrt)

static vr_status vr_cpu_adamw_fwd(const vr_kernel_args *a) {
  const vr_multi_tensor_args *mt = a->ctx;
  if (a->sub == 1) { /* the global norm */
    int64_t nch = 0;
    chunk *ch = chunks_of(mt->t[0], mt->n, &nch);
    double *part = malloc(sizeof(double) * (size_t)(nch ? nch : 1));
    if (!ch || !part) {
      free(ch);
      free(part);
      return VR_FAIL(VR_E_OOM, "norm: could not allocate %lld chunk sums", (long long)nch);
    }
    vr_dtype dt = mt->t[0][0]->dtype;
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < nch; c++) {
      const vr_tensor *t = mt->t[0][ch[c].tensor];
      int64_t lo = ch[c].start, hi = lo + CHUNK, ne = vr_tensor_numel(t);
      if (hi > ne) hi = ne;
      double s = 0;
      if (dt == VR_F32) {
        const float *x = vr_data(t);
        for (int64_t i = lo; i < hi; i++) s += (double)x[i] * x[i];
      } else {
        const double *x = vr_data(t);
        for (int64_t i = lo; i < hi; i++) s += x[i] * x[i];
      }
      part[c] = s;
    }
    double total = 0;
    for (int64_t c = 0; c < nch; c++) total += part[c];
    free(ch);
    free(part);
    double norm = sqrt(total), max_norm = a->f[0];
    double clip = max_norm > 0 ? fmin(1.0, max_norm / (norm + 1e-6)) : 1.0;
    vr_store(vr_data(a->out[0]), a->out[0]->dtype, norm);
    vr_store(vr_data(a->out[1]), a->out[1]->dtype, clip);
    return VR_OK;
  }
  double scale = a->in[0] ? vr_load(vr_data(a->in[0]), a->in[0]->dtype) : 1.0;
  int64_t nch = 0;
  chunk *ch = chunks_of(mt->t[0], mt->n, &nch);
  if (!ch) return VR_FAIL(VR_E_OOM, "adamw: could not allocate %lld chunks", (long long)nch);
  if (mt->t[0][0]->dtype == VR_F32) adamw_float(mt, ch, nch, a->f, scale);
  else adamw_double(mt, ch, nch, a->f, scale);
  free(ch);
  return VR_OK;
}

void vr_cpu_register_optim(void) { vr_kernel_register(VR_OP_ADAMW, VR_CPU, vr_cpu_adamw_fwd, NULL); }
