/* sort.c: the CPU sort kernel (VR_OP_SORT), stable, along one dim, for sort, argsort and topk.
 *
 * Each line (a fixed position in the other dims) is sorted on its own, lines in parallel. Keys are
 * mapped to unsigned integers whose order is the value order (floats: flip the sign bit, or all
 * bits for negatives; NaN canonicalised to the largest key, -0 to +0; descending: the complement),
 * then sorted as (key, position) pairs by an LSD radix sort with 8-bit digits, which is stable, so
 * ties keep their original order in both directions. Digits where every key agrees are skipped.
 * Short lines use insertion sort. 32-bit keys (f32, bf16, i32, u8) take 4 passes at most, 64-bit
 * keys (f64, i64) 8. This is also the model for the regularizers' per-column sorts.
 *
 * Arguments (see core/ops/sort.c): in[0] x contiguous; out[0] values and out[1] indices (i64),
 * both contiguous with x's shape except k along dim; i[0] dim, i[1] descending, i[2] k. */
#include "cpu.h"
#include <stdlib.h>

#define SORT_INSERTION_MAX 32

/* ---- key maps ---- */
static inline uint32_t key_f32(float v) {
  uint32_t u;
  memcpy(&u, &v, 4);
  if (v != v) return 0xFFFFFFFFu;
  if ((u & 0x7FFFFFFFu) == 0) u = 0;
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}
static inline uint64_t key_f64(double v) {
  uint64_t u;
  memcpy(&u, &v, 8);
  if (v != v) return ~(uint64_t)0;
  if ((u & 0x7FFFFFFFFFFFFFFFull) == 0) u = 0;
  return (u & 0x8000000000000000ull) ? ~u : (u | 0x8000000000000000ull);
}

/* ---- radix sorts of (key, position) pairs; return the buffers holding the result ---- */
#define DEFINE_SORT(NAME, KT, NBYTES)                                                                          \
  static void NAME##_insertion(KT *k, uint32_t *p, int64_t n) {                                                \
    for (int64_t i = 1; i < n; i++) {                                                                          \
      KT kk = k[i];                                                                                            \
      uint32_t pp = p[i];                                                                                      \
      int64_t j = i - 1;                                                                                       \
      while (j >= 0 && k[j] > kk) { /* strict: equal keys stay in order */                                     \
        k[j + 1] = k[j];                                                                                       \
        p[j + 1] = p[j];                                                                                       \
        j--;                                                                                                   \
      }                                                                                                        \
      k[j + 1] = kk;                                                                                           \
      p[j + 1] = pp;                                                                                           \
    }                                                                                                          \
  }                                                                                                            \
  static uint32_t *NAME(KT *k, uint32_t *p, KT *k2, uint32_t *p2, int64_t n) {                                 \
    if (n <= SORT_INSERTION_MAX) {                                                                             \
      NAME##_insertion(k, p, n);                                                                               \
      return p;                                                                                                \
    }                                                                                                          \
    int64_t hist[NBYTES][256];                                                                                 \
    memset(hist, 0, sizeof hist);                                                                              \
    for (int64_t i = 0; i < n; i++)                                                                            \
      for (int b = 0; b < NBYTES; b++) hist[b][(k[i] >> (8 * b)) & 255]++;                                     \
    for (int b = 0; b < NBYTES; b++) {                                                                         \
      int64_t *h = hist[b];                                                                                    \
      if (h[(k[0] >> (8 * b)) & 255] == n) continue; /* every key has this digit */                            \
      int64_t sum = 0;                                                                                         \
      for (int d = 0; d < 256; d++) {                                                                          \
        int64_t c = h[d];                                                                                      \
        h[d] = sum;                                                                                            \
        sum += c;                                                                                              \
      }                                                                                                        \
      for (int64_t i = 0; i < n; i++) {                                                                        \
        int64_t dst = h[(k[i] >> (8 * b)) & 255]++;                                                            \
        k2[dst] = k[i];                                                                                        \
        p2[dst] = p[i];                                                                                        \
      }                                                                                                        \
      KT *tk = k;                                                                                              \
      k = k2;                                                                                                  \
      k2 = tk;                                                                                                 \
      uint32_t *tp = p;                                                                                        \
      p = p2;                                                                                                  \
      p2 = tp;                                                                                                 \
    }                                                                                                          \
    return p;                                                                                                  \
  }
DEFINE_SORT(radix32, uint32_t, 4)
DEFINE_SORT(radix64, uint64_t, 8)

typedef struct {
  const char *x;
  char *vals;
  int64_t *idx;
  int64_t n, k, inner;
  int desc;
  vr_dtype dt;
  vr_status st;
} sort_ctx;

static int wide_key(vr_dtype dt) { return dt == VR_F64 || dt == VR_I64; }

static void sort_body(void *c, int64_t lo, int64_t hi) {
  sort_ctx *s = c;
  int64_t n = s->n, inner = s->inner;
  size_t es = vr_dtype_size(s->dt), kb = wide_key(s->dt) ? 8 : 4;
  /* scratch for one line: two key buffers and two position buffers */
  char *buf = malloc((size_t)(n ? n : 1) * 2 * (kb + 4));
  if (!buf) {
    s->st = VR_E_OOM;
    return;
  }
  void *k1 = buf, *k2 = buf + (size_t)n * kb;
  uint32_t *p1 = (uint32_t *)(buf + 2 * (size_t)n * kb), *p2 = p1 + n;
  uint32_t flip32 = s->desc ? 0xFFFFFFFFu : 0;
  uint64_t flip64 = s->desc ? ~(uint64_t)0 : 0;
  for (int64_t l = lo; l < hi; l++) {
    int64_t o = l / inner, i = l % inner;
    const char *xl = s->x + (size_t)(o * n * inner + i) * es;
    for (int64_t j = 0; j < n; j++) p1[j] = (uint32_t)j;
    uint32_t *perm;
    switch (s->dt) {
    case VR_F32: {
      const float *x = (const float *)xl;
      uint32_t *k = k1;
      if (inner == 1)
        for (int64_t j = 0; j < n; j++) k[j] = key_f32(x[j]) ^ flip32;
      else
        for (int64_t j = 0; j < n; j++) k[j] = key_f32(x[j * inner]) ^ flip32;
      perm = radix32(k, p1, k2, p2, n);
      break;
    }
    case VR_BF16: case VR_U8: case VR_I32: {
      uint32_t *k = k1;
      for (int64_t j = 0; j < n; j++) {
        const char *e = xl + (size_t)(j * inner) * es;
        uint32_t key = s->dt == VR_BF16 ? key_f32((float)vr_load(e, VR_BF16))
                       : s->dt == VR_U8 ? *(const uint8_t *)e
                                        : (uint32_t)*(const int32_t *)e ^ 0x80000000u;
        k[j] = key ^ flip32;
      }
      perm = radix32(k, p1, k2, p2, n);
      break;
    }
    default: {
      uint64_t *k = k1;
      for (int64_t j = 0; j < n; j++) {
        const char *e = xl + (size_t)(j * inner) * es;
        uint64_t key = s->dt == VR_F64 ? key_f64(*(const double *)e) : (uint64_t)*(const int64_t *)e ^ (1ull << 63);
        k[j] = key ^ flip64;
      }
      perm = radix64(k, p1, k2, p2, n);
      break;
    }
    }
    /* write the first k: values read back from x, so NaN payloads and -0 survive */
    char *vl = s->vals + (size_t)(o * s->k * inner + i) * es;
    int64_t *il = s->idx + o * s->k * inner + i;
    if (s->dt == VR_F32) {
      const float *x = (const float *)xl;
      float *v = (float *)vl;
      for (int64_t r = 0; r < s->k; r++) {
        v[r * inner] = x[(int64_t)perm[r] * inner];
        il[r * inner] = perm[r];
      }
    } else {
      for (int64_t r = 0; r < s->k; r++) {
        memcpy(vl + (size_t)(r * inner) * es, xl + (size_t)((int64_t)perm[r] * inner) * es, es);
        il[r * inner] = perm[r];
      }
    }
  }
  free(buf);
}

static vr_status sort_fwd(const vr_kernel_args *a) {
  const vr_tensor *x = a->in[0];
  int dim = (int)a->i[0];
  int64_t outer = 1, inner = 1, n = x->ndim ? x->shape[dim] : 1;
  for (int d = 0; d < dim; d++) outer *= x->shape[d];
  for (int d = dim + 1; d < x->ndim; d++) inner *= x->shape[d];
  sort_ctx s = {vr_data(x), vr_data(a->out[0]), vr_data(a->out[1]), n, a->i[2], inner, (int)a->i[1], x->dtype, VR_OK};
  if (outer * inner == 0 || s.k == 0) return VR_OK;
  int64_t grain = (1 << 14) / (n > 0 ? n : 1);
  vr_parallel_for(outer * inner, grain > 0 ? grain : 1, sort_body, &s);
  if (s.st) return VR_FAIL(VR_E_OOM, "x: no host memory for the sort's scratch (%lld elements a line)", (long long)n);
  return VR_OK;
}

void vr_cpu_register_sort(void) { vr_kernel_register(VR_OP_SORT, VR_CPU, sort_fwd, NULL); }
