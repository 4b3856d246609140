/* sort.c: the CPU sort kernel (VR_OP_SORT), stable, along one dim, for sort, argsort and topk.
 *
 * Each line (a fixed position in the other dims) is sorted on its own, lines in parallel. Keys are
 * mapped to unsigned integers whose order is the value order (floats: flip the sign bit, or all
 * bits for negatives; NaN canonicalised to the largest key, -0 to +0; descending: the complement),
 * then sorted as (key, position) pairs by an LSD radix sort with 8-bit digits, which is stable, so
 * ties keep their original order in both directions. Digits where every key agrees are skipped.
 * Short lines use insertion sort. 32-bit keys (f32, bf16, i32, u8) are packed with their position
 * into one 64-bit word and take 4 passes at most; 64-bit keys (f64, i64) carry a separate position
 * array and take 8. This is also the model for the regularizers' per-column sorts.
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
DEFINE_SORT(radix64, uint64_t, 8)

/* 32-bit keys travel packed with their position, (key << 32) | pos, so each pass moves one word;
 * the packed words are distinct, so sorting them sorts by key and then by position (stable). */
static uint64_t *packed_sort(uint64_t *k, uint64_t *k2, int64_t n) {
  if (n <= SORT_INSERTION_MAX) {
    for (int64_t i = 1; i < n; i++) {
      uint64_t v = k[i];
      int64_t j = i - 1;
      while (j >= 0 && k[j] > v) {
        k[j + 1] = k[j];
        j--;
      }
      k[j + 1] = v;
    }
    return k;
  }
  uint32_t hist[4][256];
  memset(hist, 0, sizeof hist);
  for (int64_t i = 0; i < n; i++) {
    uint64_t v = k[i];
    hist[0][(v >> 32) & 255]++;
    hist[1][(v >> 40) & 255]++;
    hist[2][(v >> 48) & 255]++;
    hist[3][v >> 56]++;
  }
  for (int b = 0; b < 4; b++) {
    uint32_t *h = hist[b];
    int sh = 32 + 8 * b;
    if (h[(k[0] >> sh) & 255] == (uint32_t)n) continue; /* every key has this digit */
    vr_cpu_digit_offsets(h);
    for (int64_t i = 0; i < n; i++) {
      uint64_t v = k[i];
      k2[h[(v >> sh) & 255]++] = v;
    }
    uint64_t *t = k;
    k = k2;
    k2 = t;
  }
  return k;
}

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

/* Lines along a non-last dim are strided: a task takes a group of up to SORT_GROUP neighbouring
 * lines (consecutive positions in the inner dims), so that loading keys and writing results walk
 * memory in runs of the group's width instead of one element per cache line. */
#define SORT_GROUP 16

static void sort_body(void *c, int64_t lo, int64_t hi) {
  sort_ctx *s = c;
  int64_t n = s->n, inner = s->inner, kk = s->k;
  int64_t G = inner == 1 ? 1 : SORT_GROUP, ng = (inner + G - 1) / G;
  size_t es = vr_dtype_size(s->dt);
  int wide = wide_key(s->dt);
  /* scratch: two word buffers per line (packed words, or wide keys plus two position buffers) */
  size_t m = (size_t)(n ? n : 1) * (size_t)G;
  char *buf = malloc(m * (wide ? 24 : 16));
  if (!buf) {
    __atomic_store_n(&s->st, VR_E_OOM, __ATOMIC_RELAXED);
    return;
  }
  uint64_t *k1 = (uint64_t *)buf, *k2 = k1 + m;
  uint32_t *p1 = (uint32_t *)(k2 + m), *p2 = p1 + m;
  uint64_t *res[SORT_GROUP];
  uint32_t *perm[SORT_GROUP];
  uint32_t flip32 = s->desc ? 0xFFFFFFFFu : 0;
  uint64_t flip64 = s->desc ? ~(uint64_t)0 : 0;
  for (int64_t t = lo; t < hi; t++) {
    int64_t o = t / ng, i0 = (t % ng) * G, gc = inner - i0 < G ? inner - i0 : G;
    const char *xb = s->x + (size_t)(o * n * inner + i0) * es;
    /* keys: line g of the group lives at [g n, (g + 1) n); one loop per dtype */
#define KEYS(T, PACKED_EXPR, WIDE_EXPR)                                                                        \
  for (int64_t j = 0; j < n; j++) {                                                                            \
    const T *row = (const T *)(xb + (size_t)(j * inner) * es);                                                 \
    for (int64_t g = 0; g < gc; g++) {                                                                         \
      T e = row[g];                                                                                            \
      size_t at = (size_t)(g * n + j);                                                                         \
      if (wide) {                                                                                              \
        k1[at] = (WIDE_EXPR) ^ flip64;                                                                         \
        p1[at] = (uint32_t)j;                                                                                  \
      } else {                                                                                                 \
        k1[at] = (uint64_t)((PACKED_EXPR) ^ flip32) << 32 | (uint64_t)j;                                       \
      }                                                                                                        \
    }                                                                                                          \
  }
    switch (s->dt) {
    case VR_F32: KEYS(float, key_f32(e), 0) break;
    case VR_BF16: KEYS(uint16_t, key_f32((float)vr_load(&e, VR_BF16)), 0) break;
    case VR_U8: KEYS(uint8_t, (uint32_t)e, 0) break;
    case VR_I32: KEYS(int32_t, (uint32_t)e ^ 0x80000000u, 0) break;
    case VR_F64: KEYS(double, 0, key_f64(e)) break;
    default: KEYS(int64_t, 0, (uint64_t)e ^ (1ull << 63)) break;
    }
#undef KEYS
    for (int64_t g = 0; g < gc; g++) {
      if (wide) perm[g] = radix64(k1 + g * n, p1 + g * n, k2 + g * n, p2 + g * n, n);
      else res[g] = packed_sort(k1 + g * n, k2 + g * n, n);
    }
    /* the first k of each line: values read back from x, so NaN payloads and -0 survive */
    char *vb = s->vals + (size_t)(o * kk * inner + i0) * es;
    int64_t *ib = s->idx + o * kk * inner + i0;
#define WRITE(T, POS)                                                                                          \
  for (int64_t r = 0; r < kk; r++) {                                                                           \
    T *vrow = (T *)(vb + (size_t)(r * inner) * es);                                                            \
    int64_t *irow = ib + r * inner;                                                                            \
    for (int64_t g = 0; g < gc; g++) {                                                                         \
      int64_t q = (int64_t)(POS);                                                                              \
      vrow[g] = ((const T *)(xb + (size_t)(q * inner) * es))[g];                                               \
      irow[g] = q;                                                                                             \
    }                                                                                                          \
  }
    if (wide) {
      WRITE(uint64_t, perm[g][r])
    } else if (es == 4) {
      WRITE(uint32_t, res[g][r] & 0xFFFFFFFFu)
    } else if (es == 2) {
      WRITE(uint16_t, res[g][r] & 0xFFFFFFFFu)
    } else {
      WRITE(uint8_t, res[g][r] & 0xFFFFFFFFu)
    }
#undef WRITE
  }
  free(buf);
}

static vr_status vr_cpu_sort_fwd(const vr_kernel_args *a) {
  const vr_tensor *x = a->in[0];
  int dim = (int)a->i[0];
  int64_t outer = 1, inner = 1, n = x->ndim ? x->shape[dim] : 1;
  for (int d = 0; d < dim; d++) outer *= x->shape[d];
  for (int d = dim + 1; d < x->ndim; d++) inner *= x->shape[d];
  sort_ctx s = {vr_data(x), vr_data(a->out[0]), vr_data(a->out[1]), n, a->i[2], inner, (int)a->i[1], x->dtype, VR_OK};
  if (outer * inner == 0 || s.k == 0) return VR_OK;
  int64_t G = inner == 1 ? 1 : SORT_GROUP, tasks = outer * ((inner + G - 1) / G);
  int64_t grain = (1 << 14) / (n * G > 0 ? n * G : 1);
  vr_parallel_for(tasks, grain > 0 ? grain : 1, sort_body, &s);
  if (s.st) return VR_FAIL(VR_E_OOM, "x: no host memory for the sort's scratch (%lld elements a line)", (long long)n);
  return VR_OK;
}

void vr_cpu_register_sort(void) { vr_kernel_register(VR_OP_SORT, VR_CPU, vr_cpu_sort_fwd, NULL); }
