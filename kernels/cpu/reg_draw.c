/* reg_draw.c: the raw slice draws of the sliced regularizers on the CPU (the definition is
 * core/reg/slices.h: Philox words, Box-Muller by branch-free polynomials) and the column
 * normalisation, vectorised; every element has the bits of the scalar definition, so the CPU
 * and CUDA kernels draw the same slices. */
#include "cpu.h"
#include "../../core/reg/reg.h"
#include "../../core/reg/slices.h"
#include <math.h>

#ifdef __AVX2__
#include <immintrin.h>
/* eight lanes of vr_philox_block (counters p0 .. p0 + 7, the same bits): the 32 x 32 -> 64 bit
 * products of even and odd lanes by _mm256_mul_epu32, then blended back */
static void philox8(uint64_t seed, uint64_t stream, uint64_t p0, uint32_t *w0, uint32_t *w1, uint32_t *w2,
                    uint32_t *w3) {
  const __m256i sgn = _mm256_set1_epi32((int)0x80000000u);
  __m256i lo = _mm256_set1_epi32((int)(uint32_t)p0);
  __m256i c0 = _mm256_add_epi32(lo, _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  __m256i carry = _mm256_cmpgt_epi32(_mm256_xor_si256(lo, sgn), _mm256_xor_si256(c0, sgn)); /* low word wrapped */
  __m256i c1 = _mm256_sub_epi32(_mm256_set1_epi32((int)(uint32_t)(p0 >> 32)), carry);
  __m256i c2 = _mm256_set1_epi32((int)(uint32_t)stream), c3 = _mm256_set1_epi32((int)(uint32_t)(stream >> 32));
  const __m256i m0 = _mm256_set1_epi32((int)0xD2511F53u), m1 = _mm256_set1_epi32((int)0xCD9E8D57u);
  uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
  for (int r = 0; r < 10; r++) {
    __m256i pe0 = _mm256_mul_epu32(c0, m0), po0 = _mm256_mul_epu32(_mm256_srli_epi64(c0, 32), m0);
    __m256i pe1 = _mm256_mul_epu32(c2, m1), po1 = _mm256_mul_epu32(_mm256_srli_epi64(c2, 32), m1);
    __m256i lo0 = _mm256_blend_epi32(pe0, _mm256_slli_epi64(po0, 32), 0xAA);
    __m256i hi0 = _mm256_blend_epi32(_mm256_srli_epi64(pe0, 32), po0, 0xAA);
    __m256i lo1 = _mm256_blend_epi32(pe1, _mm256_slli_epi64(po1, 32), 0xAA);
    __m256i hi1 = _mm256_blend_epi32(_mm256_srli_epi64(pe1, 32), po1, 0xAA);
    c0 = _mm256_xor_si256(_mm256_xor_si256(hi1, c1), _mm256_set1_epi32((int)k0));
    c2 = _mm256_xor_si256(_mm256_xor_si256(hi0, c3), _mm256_set1_epi32((int)k1));
    c1 = lo1;
    c3 = lo0;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  _mm256_storeu_si256((__m256i *)w0, c0);
  _mm256_storeu_si256((__m256i *)w1, c1);
  _mm256_storeu_si256((__m256i *)w2, c2);
  _mm256_storeu_si256((__m256i *)w3, c3);
}
#endif

/* vr_philox_block for counters p0 .. p0 + m - 1 (m <= 256), eight lanes at a time where AVX2 is
 * there; returns the uniforms of vr_reg_slice_parts: u1 = 1 - u01(w0, w1) in (0, 1], u2 = u01(w2, w3).
 * u01(hi, lo) = (hi 2^21 + (lo >> 11)) 2^-53: both parts convert exactly to double (unsigned
 * 32-bit words as signed ones plus 2^31) and their sum is exact, so the vector path gives the
 * scalar definition's bits. */
static void philox_lanes(uint64_t seed, uint64_t stream, uint64_t p0, int64_t m, double *u1, double *u2) {
  int64_t i = 0;
#ifdef __AVX2__
  uint32_t c0[8], c1[8], c2[8], c3[8];
  const __m256i sgn = _mm256_set1_epi32((int)0x80000000u);
  const __m256d off = _mm256_set1_pd(2147483648.0), s21 = _mm256_set1_pd(2097152.0),
                s53 = _mm256_set1_pd(1.0 / 9007199254740992.0), one = _mm256_set1_pd(1.0);
  for (; i + 8 <= m; i += 8) {
    philox8(seed, stream, p0 + (uint64_t)i, c0, c1, c2, c3);
    for (int h = 0; h < 8; h += 4) {
      __m128i hi0 = _mm_loadu_si128((const __m128i *)(c0 + h)), lo0 = _mm_loadu_si128((const __m128i *)(c1 + h));
      __m128i hi1 = _mm_loadu_si128((const __m128i *)(c2 + h)), lo1 = _mm_loadu_si128((const __m128i *)(c3 + h));
      __m128i sg = _mm256_castsi256_si128(sgn);
      __m256d a0 = _mm256_add_pd(_mm256_cvtepi32_pd(_mm_xor_si128(hi0, sg)), off);
      __m256d b0 = _mm256_add_pd(_mm256_cvtepi32_pd(_mm_xor_si128(_mm_srli_epi32(lo0, 11), sg)), off);
      __m256d a1 = _mm256_add_pd(_mm256_cvtepi32_pd(_mm_xor_si128(hi1, sg)), off);
      __m256d b1 = _mm256_add_pd(_mm256_cvtepi32_pd(_mm_xor_si128(_mm_srli_epi32(lo1, 11), sg)), off);
      __m256d v0 = _mm256_mul_pd(_mm256_add_pd(_mm256_mul_pd(a0, s21), b0), s53);
      __m256d v1 = _mm256_mul_pd(_mm256_add_pd(_mm256_mul_pd(a1, s21), b1), s53);
      _mm256_storeu_pd(u1 + i + h, _mm256_sub_pd(one, v0));
      _mm256_storeu_pd(u2 + i + h, v1);
    }
  }
#endif
  for (; i < m; i++) {
    uint32_t w[4];
    vr_philox_block(seed, stream, p0 + (uint64_t)i, w);
    u1[i] = 1.0 - vr_philox_u01(w[0], w[1]);
    u2[i] = vr_philox_u01(w[2], w[3]);
  }
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define REG_X86_512 1
static int have_avx512(void) {
  static int v = -1;
  if (v < 0) {
    __builtin_cpu_init();
    v = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
  }
  return v;
}
/* philox_lanes sixteen counters at a time with AVX-512, each 32-bit word in a 64-bit lane: one
 * _mm512_mul_epu32 gives a whole 32 x 32 -> 64 bit product, whose low half is the next word as
 * it stands (the high halves of the lanes hold garbage that no later step reads: products and
 * the final conversion take the low halves). u01(hi, lo) = ((hi << 32 | lo) >> 11) 2^-53 is
 * exact, so these are the scalar definition's bits. */
__attribute__((target("avx512f,avx512dq,avx512vl"))) static void
philox_lanes_512(uint64_t seed, uint64_t stream, uint64_t p0, int64_t m, double *u1, double *u2) {
  int64_t i = 0;
  const __m512i m0 = _mm512_set1_epi64(0xD2511F53u), m1 = _mm512_set1_epi64(0xCD9E8D57u);
  const __m512i low = _mm512_set1_epi64(0xffffffffu), lanes = _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7);
  const __m512i s0 = _mm512_set1_epi64((uint32_t)stream), s1 = _mm512_set1_epi64((uint32_t)(stream >> 32));
  const __m512d s53 = _mm512_set1_pd(1.0 / 9007199254740992.0), one = _mm512_set1_pd(1.0);
  for (; i + 16 <= m; i += 16) {
    /* two sets of eight counters (a, b): words 0..3 of each */
    __m512i a0 = _mm512_add_epi64(_mm512_set1_epi64((long long)(p0 + (uint64_t)i)), lanes);
    __m512i b0 = _mm512_add_epi64(a0, _mm512_set1_epi64(8));
    __m512i a1 = _mm512_srli_epi64(a0, 32), b1 = _mm512_srli_epi64(b0, 32), a2 = s0, b2 = s0, a3 = s1, b3 = s1;
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int r = 0; r < 10; r++) {
      __m512i K0 = _mm512_set1_epi64(k0), K1 = _mm512_set1_epi64(k1);
      __m512i pa0 = _mm512_mul_epu32(a0, m0), pa1 = _mm512_mul_epu32(a2, m1);
      __m512i pb0 = _mm512_mul_epu32(b0, m0), pb1 = _mm512_mul_epu32(b2, m1);
      a0 = _mm512_ternarylogic_epi64(_mm512_srli_epi64(pa1, 32), a1, K0, 0x96); /* three-way xor */
      a2 = _mm512_ternarylogic_epi64(_mm512_srli_epi64(pa0, 32), a3, K1, 0x96);
      b0 = _mm512_ternarylogic_epi64(_mm512_srli_epi64(pb1, 32), b1, K0, 0x96);
      b2 = _mm512_ternarylogic_epi64(_mm512_srli_epi64(pb0, 32), b3, K1, 0x96);
      a1 = pa1;
      a3 = pa0;
      b1 = pb1;
      b3 = pb0;
      k0 += 0x9E3779B9u;
      k1 += 0xBB67AE85u;
    }
    /* (h << 32) | (l & low), shifted: 0xf8 = a | (b & c) */
#define PHILOX_U01(h, l)                                                                                        \
  _mm512_mul_pd(_mm512_cvtepu64_pd(_mm512_srli_epi64(_mm512_ternarylogic_epi64(_mm512_slli_epi64(h, 32), l, low, 0xf8), 11)), \
                s53)
    _mm512_storeu_pd(u1 + i, _mm512_sub_pd(one, PHILOX_U01(a0, a1)));
    _mm512_storeu_pd(u1 + i + 8, _mm512_sub_pd(one, PHILOX_U01(b0, b1)));
    _mm512_storeu_pd(u2 + i, PHILOX_U01(a2, a3));
    _mm512_storeu_pd(u2 + i + 8, PHILOX_U01(b2, b3));
#undef PHILOX_U01
  }
  if (i < m) philox_lanes(seed, stream, p0 + (uint64_t)i, m - i, u1 + i, u2 + i);
}
#endif

/* pairs p0 .. p0 + m - 1 (m <= 256): Philox words, then the branch-free log and sincos of
 * slices.h (vectorised): r2 = -2 log u1, c, sn = cos, sin of 2 pi u2. The roots and products
 * come with the stores (below), where sqrt() would not vectorise (errno). */
#define BOX_MULLER_BODY                                    \
  _Pragma("omp simd")                                      \
  for (int64_t i = 0; i < m; i++) {                        \
    r2[i] = -2.0 * vr_reg_log01(u1[i]);                    \
    vr_reg_sincos2pi(u2[i], &c[i], &sn[i]);                \
  }

static void box_muller(int64_t m, const double *u1, const double *u2, double *r2, double *c, double *sn) {
  BOX_MULLER_BODY
}

/* G[2 i] = (T)(sqrt(r2[i]) c[i]), G[2 i + 1] = (T)(sqrt(r2[i]) sn[i]) for the e = 2 m or 2 m - 1
 * elements of m pairs (the last pair of the matrix may be half used): the operations of
 * vr_reg_slice_pair, the root being the IEEE one in vectors too */
#define STORE_TAIL                                                \
  for (; 2 * i < e; i++) {                                        \
    double r = sqrt(r2[i]);                                       \
    G[2 * i] = r * c[i];                                          \
    if (2 * i + 1 < e) G[2 * i + 1] = r * sn[i];                  \
  }
static void store_f32(int64_t e, const double *r2, const double *c, const double *sn, float *G) {
  int64_t i = 0;
#ifdef __AVX2__
  for (; 2 * i + 8 <= e; i += 4) {
    __m256d r = _mm256_sqrt_pd(_mm256_loadu_pd(r2 + i));
    __m128 a = _mm256_cvtpd_ps(_mm256_mul_pd(r, _mm256_loadu_pd(c + i)));
    __m128 b = _mm256_cvtpd_ps(_mm256_mul_pd(r, _mm256_loadu_pd(sn + i)));
    _mm_storeu_ps(G + 2 * i, _mm_unpacklo_ps(a, b));
    _mm_storeu_ps(G + 2 * i + 4, _mm_unpackhi_ps(a, b));
  }
#endif
  STORE_TAIL
}
static void store_f64(int64_t e, const double *r2, const double *c, const double *sn, double *G) {
  int64_t i = 0;
#ifdef __AVX2__
  for (; 2 * i + 8 <= e; i += 4) {
    __m256d r = _mm256_sqrt_pd(_mm256_loadu_pd(r2 + i));
    __m256d a = _mm256_mul_pd(r, _mm256_loadu_pd(c + i)), b = _mm256_mul_pd(r, _mm256_loadu_pd(sn + i));
    __m256d lo = _mm256_unpacklo_pd(a, b), hi = _mm256_unpackhi_pd(a, b); /* a0 b0 a2 b2, a1 b1 a3 b3 */
    _mm256_storeu_pd(G + 2 * i, _mm256_permute2f128_pd(lo, hi, 0x20));
    _mm256_storeu_pd(G + 2 * i + 4, _mm256_permute2f128_pd(lo, hi, 0x31));
  }
#endif
  STORE_TAIL
}

#ifdef REG_X86_512
/* the same loops in 8-lane vectors where the CPU has AVX-512 (the build targets AVX2): the same
 * IEEE operations on more lanes, so the same bits (the test checks every element against the
 * scalar definition) */
#define AVX512_FN __attribute__((target("avx512f,avx512dq,avx512vl,prefer-vector-width=512"))) static void
AVX512_FN box_muller_512(int64_t m, const double *u1, const double *u2, double *r2, double *c, double *sn) {
  BOX_MULLER_BODY
}
AVX512_FN store_f32_512(int64_t e, const double *r2, const double *c, const double *sn, float *G) {
  int64_t i = 0;
  const __m256i lo = _mm256_setr_epi32(0, 8, 1, 9, 2, 10, 3, 11), hi = _mm256_setr_epi32(4, 12, 5, 13, 6, 14, 7, 15);
  for (; 2 * i + 16 <= e; i += 8) {
    __m512d r = _mm512_sqrt_pd(_mm512_loadu_pd(r2 + i));
    __m256 a = _mm512_cvtpd_ps(_mm512_mul_pd(r, _mm512_loadu_pd(c + i)));
    __m256 b = _mm512_cvtpd_ps(_mm512_mul_pd(r, _mm512_loadu_pd(sn + i)));
    _mm256_storeu_ps(G + 2 * i, _mm256_permutex2var_ps(a, lo, b));
    _mm256_storeu_ps(G + 2 * i + 8, _mm256_permutex2var_ps(a, hi, b));
  }
  STORE_TAIL
}
AVX512_FN store_f64_512(int64_t e, const double *r2, const double *c, const double *sn, double *G) {
  int64_t i = 0;
  const __m512i lo = _mm512_setr_epi64(0, 8, 1, 9, 2, 10, 3, 11), hi = _mm512_setr_epi64(4, 12, 5, 13, 6, 14, 7, 15);
  for (; 2 * i + 16 <= e; i += 8) {
    __m512d r = _mm512_sqrt_pd(_mm512_loadu_pd(r2 + i));
    __m512d a = _mm512_mul_pd(r, _mm512_loadu_pd(c + i)), b = _mm512_mul_pd(r, _mm512_loadu_pd(sn + i));
    _mm512_storeu_pd(G + 2 * i, _mm512_permutex2var_pd(a, lo, b));
    _mm512_storeu_pd(G + 2 * i + 8, _mm512_permutex2var_pd(a, hi, b));
  }
  STORE_TAIL
}
#else
#define box_muller_512 box_muller
#define philox_lanes_512 philox_lanes
#define store_f32_512 store_f32
#define store_f64_512 store_f64
static int have_avx512(void) { return 0; }
#endif

/* the drawing and normalising tasks. draw_block: pairs blk * 256 .. + 255 of the n = D K raw
 * elements, in place; norm_range: columns k0 .. k1 - 1 divided by (their norm + eps), each norm
 * summed over d in order (the same sums whatever the split into tasks) */
#define DC_ROWS 8                            /* rows drawn together by unit_cols */
#define DC_PAIRS (DC_ROWS * (VR_REG_COLS / 2 + 1))
#define REG_DRAW(SFX, T)                                                                              \
  static void draw_block_##SFX(uint64_t seed, uint64_t step, int64_t n, int64_t blk, T *G) {         \
    double u1[256], u2[256], r2[256], c[256], sn[256];                                                \
    int64_t np = (n + 1) / 2, p0 = blk * 256, m = np - p0 < 256 ? np - p0 : 256;                      \
    int64_t e = 2 * m < n - 2 * p0 ? 2 * m : n - 2 * p0; /* the last pair may be half used */        \
    if (have_avx512()) {                                                                              \
      philox_lanes_512(seed, step, (uint64_t)p0, m, u1, u2);                                          \
      box_muller_512(m, u1, u2, r2, c, sn);                                                           \
      store_##SFX##_512(e, r2, c, sn, G + 2 * p0);                                                    \
    } else {                                                                                          \
      philox_lanes(seed, step, (uint64_t)p0, m, u1, u2);                                              \
      box_muller(m, u1, u2, r2, c, sn);                                                               \
      store_##SFX(e, r2, c, sn, G + 2 * p0);                                                          \
    }                                                                                                 \
  }                                                                                                   \
  static void norm_range_##SFX(const T *G, int64_t D, int64_t K, int64_t k0, int64_t k1, double eps, T *W) { \
    double nrm[64] = {0};                                                                             \
    for (int64_t d = 0; d < D; d++) {                                                                 \
      const T *r = G + d * K;                                                                         \
      for (int64_t k = k0; k < k1; k++) nrm[k - k0] += (double)r[k] * r[k];                           \
    }                                                                                                 \
    for (int64_t k = k0; k < k1; k++) nrm[k - k0] = 1.0 / (sqrt(nrm[k - k0]) + eps);                  \
    for (int64_t d = 0; d < D; d++)                                                                   \
      for (int64_t k = k0; k < k1; k++) W[d * K + k] = (T)(G[d * K + k] * nrm[k - k0]);               \
  }                                                                                                   \
  void vr_reg_draw_##SFX(uint64_t seed, uint64_t step, int64_t D, int64_t K, T *G) {                  \
    int64_t n = D * K, nblk = ((n + 1) / 2 + 255) / 256;                                              \
    _Pragma("omp parallel for schedule(static) if (nblk > 16)")                                      \
    for (int64_t blk = 0; blk < nblk; blk++) draw_block_##SFX(seed, step, n, blk, G);                 \
  }                                                                                                   \
  void vr_reg_normalize_##SFX(const T *G, int64_t D, int64_t K, double eps, T *W) {                   \
    int64_t ncb = (K + 63) / 64;                                                                      \
    _Pragma("omp parallel for schedule(static) if (D * K > 65536)")                                  \
    for (int64_t cb = 0; cb < ncb; cb++)                                                              \
      norm_range_##SFX(G, D, K, cb * 64, cb * 64 + 64 < K ? cb * 64 + 64 : K, eps, W);               \
  }                                                                                                   \
  /* each row's columns k0 .. k1 - 1 are consecutive pairs (plus a half pair at an odd end),       \
   * drawn for DC_ROWS rows at a time into g, then copied: a pair may straddle two tasks, each      \
   * of which computes it and keeps its own half */                                                 \
  void vr_reg_unit_cols_##SFX(const T *G, uint64_t seed, uint64_t step, int64_t D, int64_t K, int64_t k0, \
                              int64_t k1, double eps, T *W) {                                         \
    if (!G) {                                                                                         \
      double u1[DC_PAIRS], u2[DC_PAIRS], r2[DC_PAIRS], c[DC_PAIRS], sn[DC_PAIRS];                     \
      T g[2 * (VR_REG_COLS / 2 + 1)];                                                                 \
      int avx = have_avx512();                                                                        \
      for (int64_t d0 = 0; d0 < D; d0 += DC_ROWS) {                                                   \
        int64_t nr = D - d0 < DC_ROWS ? D - d0 : DC_ROWS, off[DC_ROWS + 1], p0[DC_ROWS];              \
        off[0] = 0;                                                                                   \
        for (int64_t r = 0; r < nr; r++) {                                                            \
          int64_t e0 = (d0 + r) * K + k0, e1 = e0 + (k1 - k0), m;                                     \
          p0[r] = e0 / 2;                                                                             \
          m = (e1 + 1) / 2 - p0[r];                                                                   \
          if (avx) philox_lanes_512(seed, step, (uint64_t)p0[r], m, u1 + off[r], u2 + off[r]);        \
          else philox_lanes(seed, step, (uint64_t)p0[r], m, u1 + off[r], u2 + off[r]);                \
          off[r + 1] = off[r] + m;                                                                    \
        }                                                                                             \
        if (avx) box_muller_512(off[nr], u1, u2, r2, c, sn);                                          \
        else box_muller(off[nr], u1, u2, r2, c, sn);                                                  \
        for (int64_t r = 0; r < nr; r++) {                                                            \
          int64_t o = off[r], e0 = (d0 + r) * K + k0, e = 2 * (off[r + 1] - o);                       \
          /* whole pairs go straight to W, a half pair at either end through g */                   \
          T *to = e == k1 - k0 ? W + e0 : g;                                                          \
          if (avx) store_##SFX##_512(e, r2 + o, c + o, sn + o, to);                                   \
          else store_##SFX(e, r2 + o, c + o, sn + o, to);                                             \
          if (to == g) memcpy(W + e0, g + (e0 - 2 * p0[r]), sizeof(T) * (size_t)(k1 - k0));            \
        }                                                                                             \
      }                                                                                               \
    }                                                                                                 \
    norm_range_##SFX(G ? G : W, D, K, k0, k1, eps, W);                                                \
  }
REG_DRAW(f32, float)
REG_DRAW(f64, double)
