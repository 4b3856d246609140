/* pool.c: CPU max / average / adaptive-average 2-D pooling, forward and backward (args documented
 * in core/ops/pool.c). Planes (n, c) run in parallel; within a plane the order is fixed. */
#include "cpu.h"
#include <immintrin.h>
#include <math.h>

typedef struct { int64_t NC, H, W, Ho, Wo; } pgeo;

static pgeo geo_of(const vr_tensor *big, const vr_tensor *small) {
  pgeo g = {big->shape[0] * big->shape[1], big->shape[2], big->shape[3], small->shape[2], small->shape[3]};
  return g;
}

static vr_status check_dt(vr_dtype dt) {
  if (dt != VR_F32 && dt != VR_F64)
    return VR_FAIL(VR_E_UNSUPPORTED, "x: pooling on cpu supports f32 and f64, got %s", vr_dtype_name(dt));
  return VR_OK;
}

/* ---------------------------------------------------------------- max */

#define MAXPOOL_FWD(T, NAME)                                                                      \
  static void NAME(const pgeo *g, const int64_t *iv, const T *x, T *y, int64_t *idx) {           \
    int64_t kh = iv[0], kw = iv[1], sh = iv[2], sw = iv[3], ph = iv[4], pw = iv[5];             \
    _Pragma("omp parallel for schedule(static)") for (int64_t pl = 0; pl < g->NC; pl++) {        \
      const T *xp = x + pl * g->H * g->W;                                                        \
      for (int64_t oh = 0; oh < g->Ho; oh++)                                                     \
        for (int64_t ow = 0; ow < g->Wo; ow++) {                                                 \
          int64_t h0 = oh * sh - ph, w0 = ow * sw - pw;                                          \
          int64_t h1 = h0 + kh < g->H ? h0 + kh : g->H, w1 = w0 + kw < g->W ? w0 + kw : g->W;    \
          if (h0 < 0) h0 = 0;                                                                    \
          if (w0 < 0) w0 = 0;                                                                    \
          T best = -INFINITY;                                                                    \
          int64_t bi = h0 * g->W + w0;                                                           \
          for (int64_t ih = h0; ih < h1; ih++)                                                   \
            for (int64_t iw = w0; iw < w1; iw++) {                                               \
              T v = xp[ih * g->W + iw];                                                          \
              /* strict >: the first index wins ties; the first NaN wins over numbers */        \
              if (v > best || (isnan(v) && !isnan(best))) {                                      \
                best = v;                                                                        \
                bi = ih * g->W + iw;                                                             \
              }                                                                                  \
            }                                                                                    \
          int64_t o = (pl * g->Ho + oh) * g->Wo + ow;                                            \
          y[o] = best;                                                                           \
          idx[o] = bi;                                                                           \
        }                                                                                        \
    }                                                                                            \
  }
MAXPOOL_FWD(float, maxpool_fwd_f32)
MAXPOOL_FWD(double, maxpool_fwd_f64)

/* 2x2 windows at stride 2 without padding, f32: the windows tile the plane, so each output reads
 * two row pairs and the backward pass writes every input once (no zeroing pass, no scatter).
 * Same choice as the general loop: the first of the largest wins, the first NaN wins over numbers. */
static inline int takes(float v, float best) { return v > best || (v != v && best == best); }

/* the winners of a row's outputs ow .. ow + rem - 1 (rem <= 8; AVX2, masked loads past the
 * row's end): the four window elements of each as vectors, the choice made with the scalar rule's
 * comparisons as masks; *ki gets k = 0, 1, 2, 3 naming the winner (row k >> 1, column k & 1) */
__attribute__((target("avx2,fma"))) static inline __m256 pick2x2_avx2(const float *r0, const float *r1, int64_t ow,
                                                                     int rem, __m256i *ki) {
  const __m256i perm = _mm256_setr_epi32(0, 1, 4, 5, 2, 3, 6, 7);
  __m256 t0, t1, u0, u1;
  if (rem == 8) { /* plain loads where the row has them all */
    t0 = _mm256_loadu_ps(r0 + 2 * ow);
    t1 = _mm256_loadu_ps(r0 + 2 * ow + 8);
    u0 = _mm256_loadu_ps(r1 + 2 * ow);
    u1 = _mm256_loadu_ps(r1 + 2 * ow + 8);
  } else {
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(2 * rem), lane);
    __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(2 * rem - 8), lane);
    t0 = _mm256_maskload_ps(r0 + 2 * ow, m0);
    t1 = _mm256_maskload_ps(r0 + 2 * ow + 8, m1);
    u0 = _mm256_maskload_ps(r1 + 2 * ow, m0);
    u1 = _mm256_maskload_ps(r1 + 2 * ow + 8, m1);
  }
  /* even and odd columns, in the lane order 0 1 4 5 2 3 6 7 (fixed at the end) */
  __m256 v[4] = {_mm256_shuffle_ps(t0, t1, 0x88), _mm256_shuffle_ps(t0, t1, 0xdd), _mm256_shuffle_ps(u0, u1, 0x88),
                 _mm256_shuffle_ps(u0, u1, 0xdd)};
  __m256 best = v[0], k = _mm256_setzero_ps();
  for (int j = 1; j < 4; j++) {
    __m256 nan_v = _mm256_cmp_ps(v[j], v[j], _CMP_UNORD_Q), num_b = _mm256_cmp_ps(best, best, _CMP_ORD_Q);
    __m256 t = _mm256_or_ps(_mm256_cmp_ps(v[j], best, _CMP_GT_OQ), _mm256_and_ps(nan_v, num_b));
    best = _mm256_blendv_ps(best, v[j], t);
    k = _mm256_blendv_ps(k, _mm256_set1_ps((float)j), t);
  }
  *ki = _mm256_permutevar8x32_epi32(_mm256_cvtps_epi32(k), perm);
  return _mm256_permutevar8x32_ps(best, perm);
}

/* a row's outputs 8 at a time, with their flat indices */
__attribute__((target("avx2,fma"))) static void maxpool2_row_avx2(const float *r0, const float *r1, int64_t Wo,
                                                                  int64_t W, int64_t base, float *yo, int64_t *io) {
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  for (int64_t ow = 0; ow < Wo; ow += 8) {
    int rem = Wo - ow < 8 ? (int)(Wo - ow) : 8;
    __m256i ki;
    __m256 best = pick2x2_avx2(r0, r1, ow, rem, &ki);
    /* index: base + 2 ow + (k & 1) + (k >> 1) W */
    __m256i off = _mm256_add_epi32(_mm256_and_si256(ki, _mm256_set1_epi32(1)),
                                   _mm256_mullo_epi32(_mm256_srli_epi32(ki, 1), _mm256_set1_epi32((int)W)));
    off = _mm256_add_epi32(off, _mm256_add_epi32(lane, lane));
    __m256i b64 = _mm256_set1_epi64x(base + 2 * ow);
    __m256i i0 = _mm256_add_epi64(b64, _mm256_cvtepi32_epi64(_mm256_castsi256_si128(off)));
    __m256i i1 = _mm256_add_epi64(b64, _mm256_cvtepi32_epi64(_mm256_extracti128_si256(off, 1)));
    /* plain stores (the tail through a buffer): masked stores are microcoded and slow on some
     * cores (AMD Zen) */
    if (rem == 8) {
      _mm256_storeu_ps(yo + ow, best);
      _mm256_storeu_si256((__m256i *)(io + ow), i0);
      _mm256_storeu_si256((__m256i *)(io + ow + 4), i1);
      continue;
    }
    float yb[8];
    int64_t ib[8];
    _mm256_storeu_ps(yb, best);
    _mm256_storeu_si256((__m256i *)ib, i0);
    _mm256_storeu_si256((__m256i *)(ib + 4), i1);
    memcpy(yo + ow, yb, sizeof(float) * (size_t)rem);
    memcpy(io + ow, ib, sizeof(int64_t) * (size_t)rem);
  }
}

/* the 2x2 windows of `rows` output rows of x (rows of W), as the fused batch norm's pooling wants
 * them: out (rows x Wo) the largest of each (the first on ties, the first NaN over numbers), code
 * its place (row << 3 | column) | 0x80 where the gradient passes. 8 windows at a time, a row's
 * last ones as the last 8 again; rows of fewer than 8 with stores that run on into the next rows,
 * written later, but the last */
__attribute__((target("avx2,fma"))) static void maxpool2_codes_avx2(const float *x, int64_t W, int64_t rows,
                                                                    int64_t Wo, int relu, float *out, uint8_t *code) {
  /* bit 7 where the gradient passes: the largest > 0 after a ReLU, always without */
  const __m256 keep_all = _mm256_castsi256_ps(_mm256_set1_epi32(relu ? 0 : -1));
  for (int64_t oh = 0; oh < rows; oh++, out += Wo, code += Wo) {
    const float *r0 = x + 2 * oh * W, *r1 = r0 + W;
    for (int64_t ow = 0; ow < Wo; ow += 8) {
      int64_t at = ow + 8 <= Wo || Wo < 8 ? ow : Wo - 8;
      int rem = Wo - at < 8 ? (int)(Wo - at) : 8;
      __m256i ki;
      __m256 best = pick2x2_avx2(r0, r1, at, rem, &ki);
      /* k = 2 r + c -> r << 3 | c, packed to bytes */
      ki = _mm256_or_si256(_mm256_slli_epi32(_mm256_srli_epi32(ki, 1), 3), _mm256_and_si256(ki, _mm256_set1_epi32(1)));
      __m256 passes = _mm256_or_ps(keep_all, _mm256_cmp_ps(best, _mm256_setzero_ps(), _CMP_GT_OQ));
      ki = _mm256_or_si256(ki, _mm256_and_si256(_mm256_castps_si256(passes), _mm256_set1_epi32(0x80)));
      __m128i k16 = _mm_packus_epi32(_mm256_castsi256_si128(ki), _mm256_extracti128_si256(ki, 1));
      __m128i k8 = _mm_packus_epi16(k16, k16);
      /* a short row's 8 run on into the next rows, written later; the call's last row may not */
      if (rem == 8 || oh * Wo + 8 <= rows * Wo) {
        _mm256_storeu_ps(out + at, best);
        _mm_storel_epi64((__m128i *)(code + at), k8);
        continue;
      }
      _mm256_maskstore_ps(out + at, _mm256_cmpgt_epi32(_mm256_set1_epi32(rem), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)),
                          best);
      uint64_t kw = (uint64_t)_mm_cvtsi128_si64(k8);
      for (int j = 0; j < rem; j++) code[at + j] = (uint8_t)(kw >> (8 * j));
    }
  }
}

void vr_cpu_maxpool2_codes(const float *x, int64_t W, int64_t rows, int64_t Wo, int relu, float *out, uint8_t *code) {
  if (__builtin_cpu_supports("avx2")) {
    maxpool2_codes_avx2(x, W, rows, Wo, relu, out, code);
    return;
  }
  for (int64_t oh = 0; oh < rows; oh++, out += Wo, code += Wo) {
    const float *r0 = x + 2 * oh * W, *r1 = r0 + W;
    for (int64_t ow = 0; ow < Wo; ow++) {
      float v[4] = {r0[2 * ow], r0[2 * ow + 1], r1[2 * ow], r1[2 * ow + 1]}, best = v[0];
      int k = 0;
      for (int j = 1; j < 4; j++)
        if (takes(v[j], best)) {
          best = v[j];
          k = j;
        }
      out[ow] = best;
      code[ow] = (uint8_t)((k >> 1) << 3 | (k & 1) | (!relu || best > 0 ? 0x80 : 0));
    }
  }
}

/* the reverse: rows x Wo gradients g into the 2 rows x 2 Wo elements of d (rows of W) at the places
 * the codes name, where a code's bit 7 is set; +0 elsewhere. Branch-free (the places are random), 8
 * windows at a time: a row's last ones as the last 8 again (the same values written twice); rows
 * of fewer than 8 with stores that run on into the rows after, written later, except at the end
 * (masked stores are slow on some cores, AMD Zen). Elements past 2 Wo columns or 2 rows hold
 * whatever was stored last: the caller zeroes them. */
/* out[0..1] row 0's 16 elements, out[2..3] row 1's, of the 8 windows of g and the codes */
__attribute__((target("avx2,fma"))) static inline void unpool8_avx2(__m256 g, uint64_t codes, __m256 *out) {
  const __m256i low = _mm256_set1_epi32(0x7f), pass = _mm256_set1_epi32(0x80);
  __m256i k = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128((int64_t)codes));
  __m256 v = _mm256_and_ps(g, _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(k, pass), pass)));
  k = _mm256_and_si256(k, low);
  __m256 a = _mm256_and_ps(v, _mm256_castsi256_ps(_mm256_cmpeq_epi32(k, _mm256_setzero_si256())));
  __m256 b = _mm256_and_ps(v, _mm256_castsi256_ps(_mm256_cmpeq_epi32(k, _mm256_set1_epi32(1))));
  __m256 c = _mm256_and_ps(v, _mm256_castsi256_ps(_mm256_cmpeq_epi32(k, _mm256_set1_epi32(8))));
  __m256 e = _mm256_and_ps(v, _mm256_castsi256_ps(_mm256_cmpeq_epi32(k, _mm256_set1_epi32(9))));
  /* interleaved: a, b (row 0) and c, e (row 1), lanes 0-3 then 4-7 */
  __m256 lo = _mm256_unpacklo_ps(a, b), hi = _mm256_unpackhi_ps(a, b);
  out[0] = _mm256_permute2f128_ps(lo, hi, 0x20);
  out[1] = _mm256_permute2f128_ps(lo, hi, 0x31);
  lo = _mm256_unpacklo_ps(c, e);
  hi = _mm256_unpackhi_ps(c, e);
  out[2] = _mm256_permute2f128_ps(lo, hi, 0x20);
  out[3] = _mm256_permute2f128_ps(lo, hi, 0x31);
}

__attribute__((target("avx2,fma"))) static void maxpool2_uncodes_avx2(const float *g, const uint8_t *code,
                                                                      int64_t W, int64_t rows, int64_t Wo, float *d) {
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  __m256 o[4];
  for (int64_t oh = 0; oh < rows; oh++, g += Wo, code += Wo) {
    float *r0 = d + 2 * oh * W, *r1 = r0 + W;
    if (Wo >= 8) {
      for (int64_t ow = 0; ow < Wo; ow += 8) {
        int64_t at = ow + 8 <= Wo ? ow : Wo - 8;
        uint64_t c8;
        memcpy(&c8, code + at, 8);
        unpool8_avx2(_mm256_loadu_ps(g + at), c8, o);
        _mm256_storeu_ps(r0 + 2 * at, o[0]);
        _mm256_storeu_ps(r0 + 2 * at + 8, o[1]);
        _mm256_storeu_ps(r1 + 2 * at, o[2]);
        _mm256_storeu_ps(r1 + 2 * at + 8, o[3]);
      }
      continue;
    }
    uint64_t c8 = 0; /* built in a register: bytes stored and read back as a word would stall */
    for (int64_t j = 0; j < Wo; j++) c8 |= (uint64_t)code[j] << (8 * j);
    unpool8_avx2(_mm256_maskload_ps(g, _mm256_cmpgt_epi32(_mm256_set1_epi32((int)Wo), lane)), c8, o);
    if ((2 * oh + 1) * W + 16 <= 2 * rows * W) {
      _mm256_storeu_ps(r0, o[0]);
      _mm256_storeu_ps(r0 + 8, o[1]);
      _mm256_storeu_ps(r1, o[2]);
      _mm256_storeu_ps(r1 + 8, o[3]);
    } else {
      __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(2 * Wo)), lane);
      __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(2 * Wo - 8)), lane);
      _mm256_maskstore_ps(r0, m0, o[0]);
      _mm256_maskstore_ps(r0 + 8, m1, o[1]);
      _mm256_maskstore_ps(r1, m0, o[2]);
      _mm256_maskstore_ps(r1 + 8, m1, o[3]);
    }
  }
}

void vr_cpu_maxpool2_uncodes(const float *g, const uint8_t *code, int64_t W, int64_t rows, int64_t Wo, float *d) {
  if (__builtin_cpu_supports("avx2")) {
    maxpool2_uncodes_avx2(g, code, W, rows, Wo, d);
    return;
  }
  for (int64_t oh = 0; oh < rows; oh++, g += Wo, code += Wo) {
    float *r0 = d + 2 * oh * W, *r1 = r0 + W;
    for (int64_t ow = 0; ow < Wo; ow++) {
      int k = code[ow] & 0x7f;
      float v = code[ow] & 0x80 ? g[ow] : 0.0f;
      r0[2 * ow] = k == 0 ? v : 0.0f;
      r0[2 * ow + 1] = k == 1 ? v : 0.0f;
      r1[2 * ow] = k == 8 ? v : 0.0f;
      r1[2 * ow + 1] = k == 9 ? v : 0.0f;
    }
  }
}

static void maxpool2_fwd_f32(const pgeo *g, const float *x, float *y, int64_t *idx) {
  int avx2 = __builtin_cpu_supports("avx2") && g->W < (1 << 30);
#pragma omp parallel for schedule(static)
  for (int64_t pl = 0; pl < g->NC; pl++) {
    const float *xp = x + pl * g->H * g->W;
    for (int64_t oh = 0; oh < g->Ho; oh++) {
      const float *r0 = xp + 2 * oh * g->W, *r1 = r0 + g->W;
      float *yo = y + (pl * g->Ho + oh) * g->Wo;
      int64_t *io = idx + (pl * g->Ho + oh) * g->Wo, base = 2 * oh * g->W;
      if (avx2) {
        maxpool2_row_avx2(r0, r1, g->Wo, g->W, base, yo, io);
        continue;
      }
      for (int64_t ow = 0; ow < g->Wo; ow++) {
        float a = r0[2 * ow], b = r0[2 * ow + 1], c = r1[2 * ow], d = r1[2 * ow + 1], best = a;
        int64_t bi = base + 2 * ow;
        if (takes(b, best)) { best = b; bi = base + 2 * ow + 1; }
        if (takes(c, best)) { best = c; bi = base + g->W + 2 * ow; }
        if (takes(d, best)) { best = d; bi = base + g->W + 2 * ow + 1; }
        yo[ow] = best;
        io[ow] = bi;
      }
    }
  }
}

static void maxpool2_bwd_f32(const pgeo *g, const float *gy, const int64_t *idx, float *gx) {
#pragma omp parallel for schedule(static)
  for (int64_t pl = 0; pl < g->NC; pl++) {
    float *gp = gx + pl * g->H * g->W;
    for (int64_t oh = 0; oh < g->Ho; oh++) {
      float *r0 = gp + 2 * oh * g->W, *r1 = r0 + g->W;
      const float *go = gy + (pl * g->Ho + oh) * g->Wo;
      const int64_t *io = idx + (pl * g->Ho + oh) * g->Wo, base = 2 * oh * g->W;
      /* each window's two pairs as 64-bit words (the bits of grad_y or of +0), so that the loop
       * vectorizes over windows */
      const int64_t W = g->W, Wo = g->Wo;
      for (int64_t ow = 0; ow < Wo; ow++) {
        int64_t k = io[ow] - base - 2 * ow; /* 0, 1, W, W + 1 */
        uint32_t vb;
        memcpy(&vb, go + ow, 4);
        uint64_t v = vb, top = (k == 0 ? v : 0) | (k == 1 ? v : 0) << 32;
        uint64_t bot = (k == W ? v : 0) | (k == W + 1 ? v : 0) << 32;
        memcpy(r0 + 2 * ow, &top, 8);
        memcpy(r1 + 2 * ow, &bot, 8);
      }
      for (int64_t w = 2 * g->Wo; w < g->W; w++) r0[w] = r1[w] = 0.0f; /* an odd last column */
    }
    if (2 * g->Ho < g->H) memset(gp + 2 * g->Ho * g->W, 0, sizeof(float) * (size_t)((g->H - 2 * g->Ho) * g->W));
  }
}

static int is_pool2(const int64_t *iv) {
  return iv[0] == 2 && iv[1] == 2 && iv[2] == 2 && iv[3] == 2 && iv[4] == 0 && iv[5] == 0;
}

static vr_status maxpool_fwd(const vr_kernel_args *a) {
  VR_TRY(check_dt(a->in[0]->dtype));
  pgeo g = geo_of(a->in[0], a->out[0]);
  if (a->in[0]->dtype == VR_F32 && is_pool2(a->i) && g.Ho == g.H / 2 && g.Wo == g.W / 2)
    maxpool2_fwd_f32(&g, vr_data(a->in[0]), vr_data(a->out[0]), vr_data(a->out[1]));
  else if (a->in[0]->dtype == VR_F32)
    maxpool_fwd_f32(&g, a->i, vr_data(a->in[0]), vr_data(a->out[0]), vr_data(a->out[1]));
  else
    maxpool_fwd_f64(&g, a->i, vr_data(a->in[0]), vr_data(a->out[0]), vr_data(a->out[1]));
  return VR_OK;
}

#define MAXPOOL_BWD(T, NAME)                                                                      \
  static void NAME(const pgeo *g, const T *gy, const int64_t *idx, T *gx) {                      \
    _Pragma("omp parallel for schedule(static)") for (int64_t pl = 0; pl < g->NC; pl++) {        \
      T *gp = gx + pl * g->H * g->W;                                                             \
      memset(gp, 0, sizeof(T) * (size_t)(g->H * g->W));                                          \
      const int64_t o = pl * g->Ho * g->Wo;                                                      \
      for (int64_t k = 0; k < g->Ho * g->Wo; k++) gp[idx[o + k]] += gy[o + k];                   \
    }                                                                                            \
  }
MAXPOOL_BWD(float, maxpool_bwd_f32)
MAXPOOL_BWD(double, maxpool_bwd_f64)

static vr_status maxpool_bwd(const vr_kernel_args *a) {
  VR_TRY(check_dt(a->in[0]->dtype));
  pgeo g = geo_of(a->out[0], a->in[0]);
  if (a->in[0]->dtype == VR_F32 && is_pool2(a->i) && g.Ho == g.H / 2 && g.Wo == g.W / 2)
    maxpool2_bwd_f32(&g, vr_data(a->in[0]), vr_data(a->in[1]), vr_data(a->out[0]));
  else if (a->in[0]->dtype == VR_F32) maxpool_bwd_f32(&g, vr_data(a->in[0]), vr_data(a->in[1]), vr_data(a->out[0]));
  else maxpool_bwd_f64(&g, vr_data(a->in[0]), vr_data(a->in[1]), vr_data(a->out[0]));
  return VR_OK;
}

/* ---------------------------------------------------------------- average (fixed and adaptive) */

/* the window of output (oh, ow) and its divisor */
typedef struct { int64_t h0, h1, w0, w1; double div; } win;

static win avg_window(const pgeo *g, const int64_t *iv, int64_t oh, int64_t ow) {
  int64_t kh = iv[0], kw = iv[1], sh = iv[2], sw = iv[3], ph = iv[4], pw = iv[5];
  win r;
  r.h0 = oh * sh - ph;
  r.w0 = ow * sw - pw;
  r.h1 = r.h0 + kh < g->H + ph ? r.h0 + kh : g->H + ph;
  r.w1 = r.w0 + kw < g->W + pw ? r.w0 + kw : g->W + pw;
  double padded = (double)((r.h1 - r.h0) * (r.w1 - r.w0));
  if (r.h0 < 0) r.h0 = 0;
  if (r.w0 < 0) r.w0 = 0;
  if (r.h1 > g->H) r.h1 = g->H;
  if (r.w1 > g->W) r.w1 = g->W;
  r.div = iv[6] ? padded : (double)((r.h1 - r.h0) * (r.w1 - r.w0));
  return r;
}

static win adaptive_window(const pgeo *g, int64_t oh, int64_t ow) {
  win r;
  r.h0 = oh * g->H / g->Ho;
  r.h1 = ((oh + 1) * g->H + g->Ho - 1) / g->Ho;
  r.w0 = ow * g->W / g->Wo;
  r.w1 = ((ow + 1) * g->W + g->Wo - 1) / g->Wo;
  r.div = (double)((r.h1 - r.h0) * (r.w1 - r.w0));
  return r;
}

#define AVG_FWD(T, NAME)                                                                          \
  static void NAME(const pgeo *g, const int64_t *iv, int adaptive, const T *x, T *y) {           \
    _Pragma("omp parallel for schedule(static)") for (int64_t pl = 0; pl < g->NC; pl++) {        \
      const T *xp = x + pl * g->H * g->W;                                                        \
      for (int64_t oh = 0; oh < g->Ho; oh++)                                                     \
        for (int64_t ow = 0; ow < g->Wo; ow++) {                                                 \
          win r = adaptive ? adaptive_window(g, oh, ow) : avg_window(g, iv, oh, ow);             \
          double s = 0;                                                                          \
          for (int64_t ih = r.h0; ih < r.h1; ih++)                                               \
            for (int64_t iw = r.w0; iw < r.w1; iw++) s += xp[ih * g->W + iw];                    \
          y[(pl * g->Ho + oh) * g->Wo + ow] = (T)(s / r.div);                                    \
        }                                                                                        \
    }                                                                                            \
  }
#define AVG_BWD(T, NAME)                                                                          \
  static void NAME(const pgeo *g, const int64_t *iv, int adaptive, const T *gy, T *gx) {         \
    _Pragma("omp parallel for schedule(static)") for (int64_t pl = 0; pl < g->NC; pl++) {        \
      T *gp = gx + pl * g->H * g->W;                                                             \
      memset(gp, 0, sizeof(T) * (size_t)(g->H * g->W));                                          \
      for (int64_t oh = 0; oh < g->Ho; oh++)                                                     \
        for (int64_t ow = 0; ow < g->Wo; ow++) {                                                 \
          win r = adaptive ? adaptive_window(g, oh, ow) : avg_window(g, iv, oh, ow);             \
          T v = (T)(gy[(pl * g->Ho + oh) * g->Wo + ow] / r.div);                                 \
          for (int64_t ih = r.h0; ih < r.h1; ih++)                                               \
            for (int64_t iw = r.w0; iw < r.w1; iw++) gp[ih * g->W + iw] += v;                    \
        }                                                                                        \
    }                                                                                            \
  }
AVG_FWD(float, avg_fwd_f32)
AVG_FWD(double, avg_fwd_f64)
AVG_BWD(float, avg_bwd_f32)
AVG_BWD(double, avg_bwd_f64)

static vr_status avg_fwd_any(const vr_kernel_args *a, int adaptive) {
  VR_TRY(check_dt(a->in[0]->dtype));
  pgeo g = geo_of(a->in[0], a->out[0]);
  if (a->in[0]->dtype == VR_F32) avg_fwd_f32(&g, a->i, adaptive, vr_data(a->in[0]), vr_data(a->out[0]));
  else avg_fwd_f64(&g, a->i, adaptive, vr_data(a->in[0]), vr_data(a->out[0]));
  return VR_OK;
}
static vr_status avg_bwd_any(const vr_kernel_args *a, int adaptive) {
  VR_TRY(check_dt(a->in[0]->dtype));
  pgeo g = geo_of(a->out[0], a->in[0]);
  if (a->in[0]->dtype == VR_F32) avg_bwd_f32(&g, a->i, adaptive, vr_data(a->in[0]), vr_data(a->out[0]));
  else avg_bwd_f64(&g, a->i, adaptive, vr_data(a->in[0]), vr_data(a->out[0]));
  return VR_OK;
}
static vr_status avgpool_fwd(const vr_kernel_args *a) { return avg_fwd_any(a, 0); }
static vr_status avgpool_bwd(const vr_kernel_args *a) { return avg_bwd_any(a, 0); }
static vr_status adaptive_fwd(const vr_kernel_args *a) { return avg_fwd_any(a, 1); }
static vr_status adaptive_bwd(const vr_kernel_args *a) { return avg_bwd_any(a, 1); }

/* bf16 (activations under autocast) through f32 twins */
#define BF16_TOO(name, fn) \
  static vr_status name(const vr_kernel_args *a) { return vr_cpu_any_bf16(a) ? vr_cpu_via_f32(a, fn) : fn(a); }
BF16_TOO(vr_cpu_max_pool2d_fwd, maxpool_fwd)
BF16_TOO(vr_cpu_max_pool2d_bwd, maxpool_bwd)
BF16_TOO(vr_cpu_avg_pool2d_fwd, avgpool_fwd)
BF16_TOO(vr_cpu_avg_pool2d_bwd, avgpool_bwd)
BF16_TOO(vr_cpu_adaptive_avg_pool2d_fwd, adaptive_fwd)
BF16_TOO(vr_cpu_adaptive_avg_pool2d_bwd, adaptive_bwd)

void vr_cpu_register_pool(void) {
  vr_kernel_register(VR_OP_MAXPOOL2D, VR_CPU, vr_cpu_max_pool2d_fwd, vr_cpu_max_pool2d_bwd);
  vr_kernel_register(VR_OP_AVGPOOL2D, VR_CPU, vr_cpu_avg_pool2d_fwd, vr_cpu_avg_pool2d_bwd);
  vr_kernel_register(VR_OP_ADAPTIVE_AVGPOOL2D, VR_CPU, vr_cpu_adaptive_avg_pool2d_fwd, vr_cpu_adaptive_avg_pool2d_bwd);
}
