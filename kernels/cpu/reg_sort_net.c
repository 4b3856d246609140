/* reg_sort_net.c: the rank sort of short segments (32 <= n <= 256, the usual B of the sliced
 * regularizers) as a bitonic network in AVX-512 registers, where the CPU has AVX-512; the
 * result is the radix sort's (reg_sort.c): the words key << 32 | index in ascending order.
 *
 * Why: a radix sort of 256 values costs about 18 cycles per value (scattered stores, histogram
 * dependencies); the network sorts 256 32-bit words held in 16 registers with no memory traffic.
 * Its words are the key's top 24 bits and the 8-bit index, so values sharing those 24 bits
 * (within about 2^-15 of each other, about one pair per segment of 256 normals) come out in
 * index order rather than value order; a check of the full (key, index) words and an insertion
 * pass over them put those right, which gives exactly the radix order. */
#include "cpu.h"
#include "../../core/reg/reg.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#include <immintrin.h>
#define NET_INLINE __attribute__((target("avx512f"), always_inline)) static inline

static int net_cpu(void) {
  static int v = -1;
  if (v < 0) {
    __builtin_cpu_init();
    v = __builtin_cpu_supports("avx512f");
  }
  return v;
}

/* lane l and lane l ^ d swapped, d = 8, 4, 2, 1 */
NET_INLINE __m512i net_partner(__m512i v, int d) {
  switch (d) {
  case 8: return _mm512_shuffle_i32x4(v, v, _MM_SHUFFLE(1, 0, 3, 2));
  case 4: return _mm512_shuffle_i32x4(v, v, _MM_SHUFFLE(2, 3, 0, 1));
  case 2: return _mm512_shuffle_epi32(v, _MM_PERM_BADC);
  default: return _mm512_shuffle_epi32(v, _MM_PERM_CDAB);
  }
}

/* lanes l with (l & d) != 0, d = 1, 2, 4, 8 */
NET_INLINE unsigned net_upper(int d) { return d == 1 ? 0xaaaau : d == 2 ? 0xccccu : d == 4 ? 0xf0f0u : 0xff00u; }

/* one layer (s, d) of the bitonic sort within registers (d <= 8): element e = 16 j + l meets
 * e ^ d and keeps the larger when it is the upper of the pair (e & d) in a block sorted
 * ascending ((e & s) == 0), or the lower in a descending one */
NET_INLINE void net_intra(__m512i *r, int s, int d) {
#pragma GCC unroll 16
  for (int j = 0; j < 16; j++) {
    unsigned desc = s <= 8 ? net_upper(s) : (16 * j & s) ? 0xffffu : 0;
    __m512i p = net_partner(r[j], d);
    r[j] = _mm512_mask_max_epu32(_mm512_min_epu32(r[j], p), (__mmask16)(net_upper(d) ^ desc), r[j], p);
  }
}

/* one layer (s, d) between registers (d >= 16): register j meets j + d / 16 */
NET_INLINE void net_inter(__m512i *r, int s, int d) {
  int dd = d / 16;
#pragma GCC unroll 16
  for (int j = 0; j < 16; j++) {
    if (j & dd) continue;
    int k = (j + dd) & 15; /* j + dd, in a form the bounds warning follows */
    __m512i lo = _mm512_min_epu32(r[j], r[k]), hi = _mm512_max_epu32(r[j], r[k]);
    int desc = (16 * j & s) != 0;
    r[j] = desc ? hi : lo;
    r[k] = desc ? lo : hi;
  }
}

/* the bitonic sort of the 256 words of r[0 .. 15] (element 16 j + l in lane l of r[j]): stages
 * s = 2 .. 256, each of layers d = s / 2 .. 1, written out so that r stays in registers */
#define NET_IN16(s) net_intra(r, s, 8), net_intra(r, s, 4), net_intra(r, s, 2), net_intra(r, s, 1)
NET_INLINE void net_sort256(__m512i *r) {
  net_intra(r, 2, 1);
  net_intra(r, 4, 2), net_intra(r, 4, 1);
  net_intra(r, 8, 4), net_intra(r, 8, 2), net_intra(r, 8, 1);
  NET_IN16(16);
  net_inter(r, 32, 16), NET_IN16(32);
  net_inter(r, 64, 32), net_inter(r, 64, 16), NET_IN16(64);
  net_inter(r, 128, 64), net_inter(r, 128, 32), net_inter(r, 128, 16), NET_IN16(128);
  net_inter(r, 256, 128), net_inter(r, 256, 64), net_inter(r, 256, 32), net_inter(r, 256, 16), NET_IN16(256);
}
#undef NET_IN16

/* float bits to the unsigned key of the same order: negatives bit-inverted, positives with the
 * sign bit set */
NET_INLINE __m512i net_key(__m512i u) {
  return _mm512_xor_si512(u, _mm512_or_si512(_mm512_srai_epi32(u, 31), _mm512_set1_epi32((int)0x80000000u)));
}

/* lanes 16 j .. 16 j + 15 that hold one of the n values */
NET_INLINE __mmask16 net_live(int64_t n, int j) {
  int64_t left = n - 16 * j;
  return left >= 16 ? (__mmask16)0xffff : left <= 0 ? (__mmask16)0 : (__mmask16)((1u << left) - 1);
}

/* words (key & ~255) | i of the n values, padded with all-ones words (after every real one:
 * their index would be 255 >= n), sorted; then the full words key << 32 | i in out[0 .. n).
 * Returns whether some neighbours are out of order (values that share a 24-bit prefix). */
__attribute__((target("avx512f"))) static int net_words(const float *x, int64_t n, uint64_t *out) {
  __m512i r[16];
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512i top = _mm512_set1_epi32((int)0xffffff00u), low = _mm512_set1_epi32(255);
#pragma GCC unroll 16
  for (int j = 0; j < 16; j++) {
    __mmask16 in = net_live(n, j);
    __m512i key = net_key(_mm512_maskz_loadu_epi32(in, x + 16 * j));
    __m512i word = _mm512_or_si512(_mm512_and_si512(key, top), _mm512_add_epi32(lane, _mm512_set1_epi32(16 * j)));
    r[j] = _mm512_mask_mov_epi32(_mm512_set1_epi32(-1), in, word);
  }
  net_sort256(r);
  /* the full keys come back from the values (a gather by index); each word is checked against
   * its predecessor (the last one of the previous vector shifted in) */
  __m512i last = _mm512_setzero_si512();
  __mmask8 bad = 0;
#pragma GCC unroll 16
  for (int j = 0; j < 16; j++) {
    __mmask16 in = net_live(n, j);
    if (!in) break;
    __m512i idx = _mm512_and_si512(r[j], low);
    __m512i key = net_key(_mm512_mask_i32gather_epi32(_mm512_setzero_si512(), in, idx, x, 4));
#pragma GCC unroll 2
    for (int h = 0; h < 2; h++) {
      __m256i ih = h ? _mm512_extracti64x4_epi64(idx, 1) : _mm512_castsi512_si256(idx);
      __m256i kh = h ? _mm512_extracti64x4_epi64(key, 1) : _mm512_castsi512_si256(key);
      __m512i w = _mm512_or_si512(_mm512_slli_epi64(_mm512_cvtepu32_epi64(kh), 32), _mm512_cvtepu32_epi64(ih));
      __mmask8 live = (__mmask8)(in >> (8 * h));
      bad |= _mm512_mask_cmplt_epu64_mask(live, w, _mm512_alignr_epi64(w, last, 7));
      _mm512_mask_storeu_epi64(out + 16 * j + 8 * h, live, w);
      last = w;
    }
  }
  return bad != 0;
}

const uint64_t *vr_reg_sort_net_f32(const float *x, int64_t n, uint64_t *work) {
  if (n < 32 || n > 256 || !net_cpu()) return NULL;
  uint64_t *a = work;
  if (!net_words(x, n, a)) return a;
  /* values sharing a 24-bit prefix: insertion over the full words, with a budget (the radix
   * sort serves segments crowded into few prefixes) */
  int64_t budget = 4 * n;
  for (int64_t i = 1; i < n; i++) {
    uint64_t v = a[i];
    if (a[i - 1] <= v) continue;
    int64_t j = i;
    while (j > 0 && a[j - 1] > v) {
      a[j] = a[j - 1];
      j--;
    }
    a[j] = v;
    budget -= i - j;
    if (budget < 0) return NULL;
  }
  return a;
}
#else
const uint64_t *vr_reg_sort_net_f32(const float *x, int64_t n, uint64_t *work) {
  (void)x;
  (void)n;
  (void)work;
  return NULL;
}
#endif
