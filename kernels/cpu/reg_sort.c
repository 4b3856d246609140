/* reg_sort.c: the rank sort of the sliced regularizers: LSD radix sorts of (value, index)
 * pairs, stable (ties keep index order), 8-bit digits, passes whose digit is constant skipped.
 * Floats are mapped to unsigned keys with the same order (negatives bit-inverted). */
#include "cpu.h"
#include "../../core/reg/reg.h"
#include <math.h>

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

/* Short segments (B <= 65536, the usual batch sizes): two radix passes instead of four. A
 * 12- or 16-bit prefix q(x) = trunc((x - min) * qmax / (max - min)) is monotone in x (float rounding
 * and truncation never reverse an order), so the words q << 48 | key << 16 | index sort in the
 * order of key << 32 | index: sorting on q (two passes of 6- or 8-bit digits, stable) leaves only runs of equal
 * q out of order, rare for spread-out values, which an insertion pass over whole words puts
 * right. q spreads near-Gaussian projections evenly, unlike the float's top byte (a few
 * exponents). Returns NULL (the caller then runs the plain radix sort) for equal or non-finite
 * values, or when the insertion pass exceeds its budget (values crowded into a few q). */
static const uint64_t *sort_short(const float *x, int64_t n, uint64_t *work) {
  uint64_t *a = work, *b = work + n;
  float lo = x[0], hi = x[0];
  for (int64_t i = 1; i < n; i++) {
    lo = x[i] < lo ? x[i] : lo;
    hi = x[i] > hi ? x[i] : hi;
  }
  float span = hi - lo;
  if (!(span > 0) || !isfinite(span)) return NULL;
  /* digits of 6 bits for short segments (fewer bins to clear and sum), else 8 */
  int db = n <= 512 ? 6 : 8;
  uint32_t nb = 1u << db, dm = nb - 1, qmax = (1u << (2 * db)) - 1;
  float scale = (float)qmax / span, top = (float)qmax;
  uint32_t h0[256], h1[256];
  memset(h0, 0, sizeof(uint32_t) * nb);
  memset(h1, 0, sizeof(uint32_t) * nb);
  int bad = 0;
  for (int64_t i = 0; i < n; i++) {
    float f = (x[i] - lo) * scale;
    bad |= !(f >= 0.0f); /* NaN */
    f = f < top ? f : top;
    uint32_t q = (uint32_t)f;
    a[i] = ((uint64_t)q << 48) | ((uint64_t)key32(x[i]) << 16) | (uint64_t)i;
    h0[q & dm]++;
    h1[q >> db]++;
  }
  if (bad) return NULL;
  uint32_t s0 = 0, s1 = 0;
  for (uint32_t d = 0; d < nb; d++) {
    uint32_t c0 = h0[d], c1 = h1[d];
    h0[d] = s0;
    h1[d] = s1;
    s0 += c0;
    s1 += c1;
  }
  for (int64_t i = 0; i < n; i++) b[h0[(a[i] >> 48) & dm]++] = a[i];
  for (int64_t i = 0; i < n; i++) a[h1[b[i] >> (48 + db)]++] = b[i];
  int64_t budget = 4 * n;
  for (int64_t i = 1; i < n; i++) {
    uint64_t w = a[i];
    if (a[i - 1] <= w) continue;
    int64_t j = i;
    while (j > 0 && a[j - 1] > w) {
      a[j] = a[j - 1];
      j--;
    }
    a[j] = w;
    budget -= i - j;
    if (budget < 0) return NULL;
  }
  /* back to the common format, key << 32 | index */
  for (int64_t i = 0; i < n; i++) a[i] = ((a[i] << 16) & 0xffffffff00000000ull) | (a[i] & 0xffff);
  return a;
}

/* f32: key in the high half, index in the low half of one u64, sorted on bits 32..63; returns
 * the sorted words (in work or work + n) */
const uint64_t *vr_reg_sort_pairs_f32(const float *x, int64_t n, uint64_t *work) {
  if (n <= 256) {
    const uint64_t *s = vr_reg_sort_net_f32(x, n, work);
    if (s) return s;
  }
  if (n >= 64 && n <= 65536) {
    const uint64_t *s = sort_short(x, n, work);
    if (s) return s;
  }
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
    vr_cpu_digit_offsets(h);
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
    vr_cpu_digit_offsets(h);
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
