/* reg_sort.c: the rank sort of the sliced regularizers: LSD radix sorts of (value, index)
 * pairs, stable (ties keep index order), 8-bit digits, passes whose digit is constant skipped.
 * Floats are mapped to unsigned keys with the same order (negatives bit-inverted). */
#include "cpu.h"
#include "../../core/reg/reg.h"

static inline uint32_t key32(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}
static inline uint64_t key64(double f) {
  uint64_t u;
  memcpy(&u, &f, 8);
  return (u & 0x8000000000000000ull) ? ~u : (u | 0x8000000000000000ull);
}

/* f32: key in the high half, index in the low half of one u64, sorted on bits 32..63; returns
 * the sorted words (in work or work + n) */
const uint64_t *vr_reg_sort_pairs_f32(const float *x, int64_t n, uint64_t *work) {
  uint64_t *a = work, *b = work + n;
  uint32_t hist[4][256];
  memset(hist, 0, sizeof hist);
  for (int64_t i = 0; i < n; i++) {
    uint32_t k = key32(x[i]);
    a[i] = ((uint64_t)k << 32) | (uint32_t)i;
    hist[0][k & 255]++;
    hist[1][(k >> 8) & 255]++;
    hist[2][(k >> 16) & 255]++;
    hist[3][k >> 24]++;
  }
  for (int p = 0; p < 4; p++) {
    int sh = 32 + 8 * p;
    uint32_t *h = hist[p];
    if (h[(a[0] >> sh) & 255] == (uint32_t)n) continue;
    uint32_t sum = 0;
    for (int d = 0; d < 256; d++) {
      uint32_t c = h[d];
      h[d] = sum;
      sum += c;
    }
    for (int64_t i = 0; i < n; i++) b[h[(a[i] >> sh) & 255]++] = a[i];
    uint64_t *t = a;
    a = b;
    b = t;
  }
  return a;
}

void vr_reg_argsort_f32(const float *x, int64_t n, uint32_t *perm, uint64_t *work, uint32_t *iwork) {
  (void)iwork;
  const uint64_t *a = vr_reg_sort_pairs_f32(x, n, work);
  for (int64_t i = 0; i < n; i++) perm[i] = (uint32_t)a[i];
}

/* f64: keys and indices in separate arrays, eight passes */
void vr_reg_argsort_f64(const double *x, int64_t n, uint32_t *perm, uint64_t *work, uint32_t *iwork) {
  uint64_t *a = work, *b = work + n;
  uint32_t *ia = iwork, *ib = iwork + n;
  uint32_t hist[8][256];
  memset(hist, 0, sizeof hist);
  for (int64_t i = 0; i < n; i++) {
    uint64_t k = key64(x[i]);
    a[i] = k;
    ia[i] = (uint32_t)i;
    for (int p = 0; p < 8; p++) hist[p][(k >> (8 * p)) & 255]++;
  }
  for (int p = 0; p < 8; p++) {
    int sh = 8 * p;
    uint32_t *h = hist[p];
    if (h[(a[0] >> sh) & 255] == (uint32_t)n) continue;
    uint32_t sum = 0;
    for (int d = 0; d < 256; d++) {
      uint32_t c = h[d];
      h[d] = sum;
      sum += c;
    }
    for (int64_t i = 0; i < n; i++) {
      uint32_t pos = h[(a[i] >> sh) & 255]++;
      b[pos] = a[i];
      ib[pos] = ia[i];
    }
    uint64_t *t = a;
    a = b;
    b = t;
    uint32_t *it = ia;
    ia = ib;
    ib = it;
  }
  memcpy(perm, ia, sizeof(uint32_t) * (size_t)n);
}
