/* conv_direct.c: direct f32 convolution (dilation 1, one group, NCHW) with register-blocked FMA
 * micro-kernels for AVX-512 and AVX2, chosen at run time by CPUID. No im2col matrix is built.
 *
 * Each sample's input is copied into a zero-bordered plane per channel of Hp x Wp (H and W plus
 * the padding), where tap (c, i, j) of an output position starting at s reads s + c * Hp * Wp +
 * i * Wp + j. Two families of micro-kernels (variant cpu_tiles) use it:
 *   channels: a tile is up to 6 (AVX2) or 12 (AVX-512) output positions x 16 output channels; per
 *     tap it loads the weights and broadcasts one input value per position, so positions can sit anywhere
 *     (any stride, any plane size) and none is computed for nothing. The weight gradient tiles
 *     taps x output channels over positions, with gy transposed to [positions][channels].
 *   positions: a tile is output channels x vectors of positions on
 *     the padded-width grid q = oh * Wp + ow (the columns ow >= Wo are computed and dropped), one
 *     contiguous shifted load per tap; stride 1 only.
 *   forward:          y  = sum over taps of w x shifted x
 *   backward-data:    gx = the forward kernel on gy with w transposed and flipped, padding k - 1 - p
 *                     (stride 1; strided layers leave grad x to conv.c's im2col)
 *   backward-weights: gw[co][tap] = sum over samples and positions of gy x shifted x
 * Samples run in parallel; the weight gradient sums fixed chunks of the batch (fixed by the batch
 * size alone) in chunk order, so results do not depend on the thread count. */
#include "conv_direct.h"
#include <immintrin.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- micro-kernels, once per ISA */
#define VTARGET __attribute__((target("avx512f,avx2,fma")))
#define SFX(name) name##_avx512
#define V __m512
#define VL 16
#define VZERO() _mm512_setzero_ps()
#define VLOAD(p) _mm512_loadu_ps(p)
#define VSTORE(p, v) _mm512_storeu_ps((p), (v))
#define VSET1(s) _mm512_set1_ps(s)
#define VFMA(a, b, c) _mm512_fmadd_ps((a), (b), (c))
#define VHSUM(v) _mm512_reduce_add_ps(v)
#define CB 6
#define RV 4
#define CBW 4
#define KB 5
#define CV_NV 1
#define CV_RMAX 12
#include "conv_direct_kern.inc"
#undef CV_NV
#undef CV_RMAX
#undef VTARGET
#undef SFX
#undef V
#undef VL
#undef VZERO
#undef VLOAD
#undef VSTORE
#undef VSET1
#undef VFMA
#undef VHSUM
#undef CB
#undef RV
#undef CBW
#undef KB

/* dst[0..3] += the sums of a[0..3]: two rounds of pairwise adds, then the two 128-bit halves */
__attribute__((target("avx2,fma"))) static inline void hsum4_add(float *dst, const __m256 *a) {
  __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a[0], a[1]), _mm256_hadd_ps(a[2], a[3]));
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  _mm_storeu_ps(dst, _mm_add_ps(_mm_loadu_ps(dst), s));
}
#define VTARGET __attribute__((target("avx2,fma")))
#define SFX(name) name##_avx2
#define V __m256
#define VL 8
#define VZERO() _mm256_setzero_ps()
#define VLOAD(p) _mm256_loadu_ps(p)
#define VSTORE(p, v) _mm256_storeu_ps((p), (v))
#define VSET1(s) _mm256_set1_ps(s)
#define VFMA(a, b, c) _mm256_fmadd_ps((a), (b), (c))
#define VHSUM_ADD(dst, acc) hsum4_add((dst), (acc))
#define CB 4
#define RV 3
#define CBW 3
#define KB 4
#define CV_NV 2
#define CV_RMAX 6
#include "conv_direct_kern.inc"

/* ---------------------------------------------------------------- ISA choice */
typedef void (*fwd_fn)(const float *, const int64_t *, int64_t, const float *, int64_t, int64_t, float *, int64_t);
typedef void (*wgrad_fn)(const float *, int64_t, const float *, int64_t, int64_t, int64_t, int64_t, const int64_t *,
                         int64_t, int64_t, float *, int64_t);
typedef void (*cv_fn)(const float *, const int64_t *, int64_t, int64_t, const float *, const int32_t *,
                      const int32_t *, int64_t, float *, int);
typedef void (*cvw_fn)(const float *, int64_t, const float *, int64_t, int64_t, const int32_t *, int64_t,
                       const int64_t *, const int32_t *, int64_t, float *, int64_t);
typedef struct {
  int cb, rv, vl, cbw, kb; /* the position-vector tiles: forward CB x RV, weight gradient CBW x KB */
  fwd_fn fwd;
  wgrad_fn wgrad;
  int cv_nv, cv_rmax; /* the output-channel-vector kernels: CV_NV vectors x CV_RMAX positions */
  cv_fn cv;
  cvw_fn cvw;
} isa_impl;
static const isa_impl impls[3] = {
    {0, 0, 0, 0, 0, NULL, NULL, 0, 0, NULL, NULL},
    {4, 3, 8, 3, 4, fwd_tiles_avx2, wgrad_tiles_avx2, 2, 6, cv_tiles_avx2, cvw_tiles_avx2},
    {6, 4, 16, 4, 5, fwd_tiles_avx512, wgrad_tiles_avx512, 1, 12, cv_tiles_avx512, cvw_tiles_avx512},
};

static int cpu_isa(void) {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return VR_CONV_ISA_AVX512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return VR_CONV_ISA_AVX2;
  return VR_CONV_ISA_NONE;
}
static int forced = VR_CONV_ISA_AUTO;

int vr_cpu_conv_isa(void) { return forced == VR_CONV_ISA_AUTO ? cpu_isa() : forced; }

int vr_cpu_conv_force_isa(int isa) {
  if (isa == VR_CONV_ISA_AUTO || (isa >= VR_CONV_ISA_NONE && isa <= cpu_isa())) forced = isa;
  return vr_cpu_conv_isa();
}

static bool channel_tiles(void) { return vr_variants[VR_VARIANT_CPU_TILES] == VR_CPU_TILES_CHANNELS; }

bool vr_cpu_conv_direct_ok(const vr_tensor *x, const vr_tensor *w, const int64_t *i) {
  if (x->dtype != VR_F32 || vr_cpu_conv_isa() == VR_CONV_ISA_NONE) return false;
  if (i[0] < 1 || i[1] < 1 || i[4] != 1 || i[5] != 1 || i[6] != 1 || i[7] != 0) return false;
  int64_t C = x->shape[1], Co = w->shape[0], kh = w->shape[2], kw = w->shape[3];
  if (C < 1 || Co < 1 || x->shape[2] < 1 || x->shape[3] < 1) return false;
  if (i[2] > kh - 1 || i[3] > kw - 1) return false;  /* backward-data pads by k - 1 - p */
  if (kh == 1 && kw == 1) return false;              /* a plain gemm on the plane (conv.c) */
  if (x->shape[2] + 2 * i[2] < kh || x->shape[3] + 2 * i[3] < kw) return false;
  /* where each beats im2col + gemm (bench conv): the channel tiles on any plane, channel count and
   * stride (positions are broadcast, so any step is one load; strided grad x stays with im2col);
   * the position tiles at stride 1 on planes of 36 and more and up to 128 x 128 channels */
  if (channel_tiles()) return true;
  return i[0] == 1 && i[1] == 1 && x->shape[2] * x->shape[3] >= 36 && C * Co <= 128 * 128;
}

bool vr_cpu_conv_direct_gx_ok(const int64_t *i) { return i[0] == 1 && i[1] == 1; }

/* ---------------------------------------------------------------- geometry */
typedef struct {
  int64_t C, H, W, Co, kh, kw, ph, pw, sh, sw; /* input [C, H, W], Co outputs, kernel, padding, stride */
  int64_t Hp, Wp, plane, Ho, Wo, Q, Qa, K, xlen;
} dgeo;

static dgeo make_dgeo(int64_t C, int64_t H, int64_t W, int64_t Co, int64_t kh, int64_t kw, int64_t ph, int64_t pw,
                      int64_t qblock) {
  dgeo g = {.C = C, .H = H, .W = W, .Co = Co, .kh = kh, .kw = kw, .ph = ph, .pw = pw, .sh = 1, .sw = 1};
  g.Hp = H + 2 * ph;
  g.Wp = W + 2 * pw;
  g.plane = g.Hp * g.Wp;
  g.Ho = g.Hp - kh + 1;
  g.Wo = g.Wp - kw + 1;
  g.Q = g.Ho * g.Wp;
  g.Qa = (g.Q + qblock - 1) / qblock * qblock;
  g.K = C * kh * kw;
  g.xlen = C * g.plane + g.Qa + kh * g.Wp + kw + 64; /* reads reach Qa + the last tap's offset */
  return g;
}

/* the family a layer runs: the channel tiles unless the variant says positions, or the layer has
 * few taps at stride 1 on a plane the position tiles take (a first layer: its channel tiles would
 * spend more on scattering their outputs, or transposing gy, than on the taps) */
static bool use_channel_tiles(const dgeo *g) {
  if (!channel_tiles()) return false;
  bool unit = g->sh == 1 && g->sw == 1;
  return g->K >= 32 || !unit || g->H * g->W < 36;
}

/* g with strides sh x sw (the channel-vector kernels only: the positions' step in the padded input) */
static dgeo strided(dgeo g, int64_t sh, int64_t sw) {
  g.sh = sh;
  g.sw = sw;
  g.Ho = (g.Hp - g.kh) / sh + 1;
  g.Wo = (g.Wp - g.kw) / sw + 1;
  return g;
}

/* starts[0..nt]: n items cut into nt runs as even as they go (no run much shorter than the rest) */
static void even_starts(int32_t *starts, int64_t n, int64_t nt) {
  for (int64_t t = 0; t <= nt; t++) starts[t] = (int32_t)(n * t / nt);
}

/* pos[p]: where output position p (of Ho x Wo) starts in the padded input plane */
static void out_positions(const dgeo *g, int32_t *pos) {
  for (int64_t p = 0; p < g->Ho * g->Wo; p++) pos[p] = (int32_t)((p / g->Wo) * g->sh * g->Wp + (p % g->Wo) * g->sw);
}

static void tap_offsets(const dgeo *g, int64_t *offs, int64_t n) {
  int64_t kk = g->kh * g->kw;
  for (int64_t k = 0; k < n; k++) {
    int64_t kq = k < g->K ? k : 0, c = kq / kk, t = kq % kk;
    offs[k] = c * g->plane + (t / g->kw) * g->Wp + t % g->kw;
  }
}

/* n floats from src to dst (one row of a plane) */
static inline void copy_row(float *restrict dst, const float *restrict src, int64_t n) {
  for (int64_t k = 0; k < n; k++) dst[k] = src[k];
}

/* x [C, H, W] into the interior of xp (whose borders stay zero) */
static void pad_in(const dgeo *g, const float *x, float *xp) {
  for (int64_t c = 0; c < g->C; c++)
    for (int64_t h = 0; h < g->H; h++)
      copy_row(xp + c * g->plane + (h + g->ph) * g->Wp + g->pw, x + (c * g->H + h) * g->W, g->W);
}

static float *zalloc(size_t n) {
  float *p = aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64);
  if (p) memset(p, 0, n * sizeof(float));
  return p;
}

/* y [N, Co, Ho, Wo] = conv(x [N, C, H, W], wt) + b, wt [Co][K] read through get(wt, co, k) */
typedef float (*wget_fn)(const float *w, const dgeo *g, int64_t co, int64_t k);
static float w_plain(const float *w, const dgeo *g, int64_t co, int64_t k) { return w[co * g->K + k]; }
/* the backward-data weight: w [Cx, Cy, kh, kw] seen as [Cy][Cx * kh * kw] with taps flipped */
static float w_flipped(const float *w, const dgeo *g, int64_t co, int64_t k) {
  int64_t kk = g->kh * g->kw, c = k / kk, t = kk - 1 - k % kk;
  return w[(c * g->Co + co) * kk + t];
}

/* ---------------------------------------------------------------- the batch loops */
/* fn(ctx, xp, buf, n) for every sample n, in parallel: xp holds sample n's padded planes (geometry
 * g) and buf is a zeroed scratch of buflen floats, both the thread's own */
typedef void (*sample_fn)(const void *ctx, const float *xp, float *buf, int64_t n);
static vr_status each_sample(const dgeo *g, int64_t N, const float *x, int64_t buflen, sample_fn fn, const void *ctx) {
  int failed = 0;
#pragma omp parallel if (N > 1)
  {
    float *xp = zalloc((size_t)g->xlen), *buf = zalloc((size_t)buflen);
    if (!xp || !buf) {
#pragma omp atomic write
      failed = 1;
    }
#pragma omp for schedule(dynamic, 1)
    for (int64_t n = 0; n < N; n++) {
      if (!xp || !buf) continue;
      pad_in(g, x + n * g->C * g->H * g->W, xp);
      fn(ctx, xp, buf, n);
    }
    free(xp);
    free(buf);
  }
  if (failed) return VR_FAIL(VR_E_OOM, "x: no memory for the padded planes (%lld floats)", (long long)(g->xlen + buflen));
  return VR_OK;
}

/* The weight gradient's batch loop. The batch is cut into at most 16 chunks fixed by N alone, each
 * summed into its own partial (part + c * wsize), so the result does not depend on the thread
 * count. Within a chunk, samples go through the micro-kernels in groups small enough for the
 * group's data to stay in a core's cache while every tile of gw passes over them (the caller
 * says how many): prep(ctx, n, gb) lays out sample n's gy in gb (gs floats a sample), then
 * run(ctx, xp, gb, nn, partial) runs the kernels over the group's nn samples. */
typedef struct {
  void (*prep)(const void *ctx, int64_t n, float *gb);
  void (*run)(const void *ctx, const float *xp, const float *gb, int64_t nn, float *partial);
} group_fns;
static vr_status each_group(const dgeo *g, int64_t N, const float *x, int64_t gs, int64_t nch, int64_t group,
                            float *part, int64_t wsize, group_fns fns, const void *ctx) {
  int64_t per = (N + nch - 1) / nch;
  group = group < 1 ? 1 : group > per ? per : group;
  int failed = 0;
#pragma omp parallel if (nch > 1)
  {
    float *xp = zalloc((size_t)(group * g->xlen)), *gb = zalloc((size_t)(group * gs));
    if (!xp || !gb) {
#pragma omp atomic write
      failed = 1;
    }
#pragma omp for schedule(dynamic, 1)
    for (int64_t c = 0; c < nch; c++) {
      if (!xp || !gb) continue;
      int64_t n1 = N * (c + 1) / nch;
      for (int64_t n0 = N * c / nch; n0 < n1; n0 += group) {
        int64_t nn = n1 - n0 < group ? n1 - n0 : group;
        for (int64_t n = n0; n < n0 + nn; n++) {
          pad_in(g, x + n * g->C * g->H * g->W, xp + (n - n0) * g->xlen);
          fns.prep(ctx, n, gb + (n - n0) * gs);
        }
        fns.run(ctx, xp, gb, nn, part + c * wsize);
      }
    }
    free(xp);
    free(gb);
  }
  if (failed)
    return VR_FAIL(VR_E_OOM, "x: no memory for the padded planes (%lld floats)", (long long)(group * (g->xlen + gs)));
  return VR_OK;
}

/* ---------------------------------------------------------------- forward */
/* what a forward sample needs: the packed weights and the tiles (cv: channel tiles, else position tiles) */
typedef struct {
  const isa_impl *im;
  const dgeo *g;
  const float *wpk, *b;
  float *y;
  const int64_t *offs;
  const int32_t *pos, *tstart;
  int64_t blk, nblk;   /* the packed weights' blocks of output channels: size, count */
  int64_t nt, kc, nqb; /* channel tiles: tiles, taps a chunk; position tiles: vectors of positions */
} fwd_ctx;

/* channel tiles: the tiles accumulate into yb [Co blocks][P][NVL] over chunks of taps (a chunk's
 * weights stay in L1), then yb goes out as NCHW with the bias */
static void fwd_cv_sample(const void *cv, const float *xp, float *yb, int64_t n) {
  const fwd_ctx *c = cv;
  const dgeo *g = c->g;
  int64_t P = g->Ho * g->Wo, nvl = c->blk;
  for (int64_t k0 = 0; k0 < g->K; k0 += c->kc)
    for (int64_t cob = 0; cob < c->nblk; cob++)
      c->im->cv(xp, c->offs, k0, k0 + c->kc < g->K ? k0 + c->kc : g->K, c->wpk + cob * g->K * nvl, c->pos,
                c->tstart, c->nt, yb + cob * P * nvl, k0 > 0);
  float *yn = c->y + n * g->Co * P;
  for (int64_t co = 0; co < g->Co; co++) {
    const float *src = yb + (co / nvl) * P * nvl + co % nvl;
    float bv = c->b ? c->b[co] : 0.0f, *dst = yn + co * P;
    for (int64_t p = 0; p < P; p++) dst[p] = src[p * nvl] + bv;
  }
}

/* position tiles: yp [Co][Qa] on the padded-width grid, its columns ow < Wo out with the bias */
static void fwd_pv_sample(const void *cv, const float *xp, float *yp, int64_t n) {
  const fwd_ctx *c = cv;
  const dgeo *g = c->g;
  int64_t P = g->Ho * g->Wo;
  c->im->fwd(xp, c->offs, g->K, c->wpk, c->nblk, c->nqb, yp, g->Qa);
  float *yn = c->y + n * g->Co * P;
  for (int64_t co = 0; co < g->Co; co++) {
    float bv = c->b ? c->b[co] : 0.0f;
    for (int64_t oh = 0; oh < g->Ho; oh++) {
      const float *src = yp + co * g->Qa + oh * g->Wp;
      float *dst = yn + co * P + oh * g->Wo;
      for (int64_t ow = 0; ow < g->Wo; ow++) dst[ow] = src[ow] + bv;
    }
  }
}

/* y = conv(x, w) + b with either family of tiles (the position tiles take stride 1). The weights are
 * packed in blocks of `blk` output channels, [Co / blk][K][blk], read through get(w, g, co, k).
 * Channel tiles cut each sample's P = Ho * Wo positions into runs of at most cv_rmax. */
#define CV_WCHUNK_BYTES (16 * 1024)
static vr_status run_fwd(const isa_impl *im, const dgeo *g, int64_t N, const float *x, const float *w, wget_fn get,
                         const float *b, float *y) {
  bool cv = use_channel_tiles(g);
  int64_t P = g->Ho * g->Wo, blk = cv ? im->cv_nv * im->vl : im->cb, nblk = (g->Co + blk - 1) / blk;
  fwd_ctx c = {.im = im, .g = g, .b = b, .y = y, .blk = blk, .nblk = nblk};
  c.nt = cv ? (P + im->cv_rmax - 1) / im->cv_rmax : 0;
  c.kc = CV_WCHUNK_BYTES / (blk * (int64_t)sizeof(float));
  c.nqb = g->Qa / (im->rv * im->vl);
  float *wpk = zalloc((size_t)(nblk * g->K * blk));
  int64_t *offs = malloc(sizeof(int64_t) * (size_t)g->K);
  int32_t *pos = cv ? malloc(sizeof(int32_t) * (size_t)P) : NULL;
  int32_t *tstart = cv ? malloc(sizeof(int32_t) * (size_t)(c.nt + 1)) : NULL;
  vr_status st = VR_OK;
  if (!wpk || !offs || (cv && (!pos || !tstart)))
    st = VR_FAIL(VR_E_OOM, "w: no memory for the packed weights (%lld floats)", (long long)(nblk * g->K * blk));
  else {
    for (int64_t co = 0; co < g->Co; co++)
      for (int64_t k = 0; k < g->K; k++) wpk[((co / blk) * g->K + k) * blk + co % blk] = get(w, g, co, k);
    tap_offsets(g, offs, g->K);
    if (cv) {
      out_positions(g, pos);
      even_starts(tstart, P, c.nt);
    }
    c.wpk = wpk;
    c.offs = offs;
    c.pos = pos;
    c.tstart = tstart;
    st = cv ? each_sample(g, N, x, nblk * P * blk, fwd_cv_sample, &c)
            : each_sample(g, N, x, nblk * blk * g->Qa, fwd_pv_sample, &c);
  }
  free(wpk);
  free(offs);
  free(pos);
  free(tstart);
  return st;
}

vr_status vr_cpu_conv_direct_fwd(const vr_tensor *x, const vr_tensor *w, const vr_tensor *b, const int64_t *i,
                                 vr_tensor *y) {
  const isa_impl *im = &impls[vr_cpu_conv_isa()];
  dgeo g = strided(make_dgeo(x->shape[1], x->shape[2], x->shape[3], w->shape[0], w->shape[2], w->shape[3], i[2], i[3],
                             im->rv * im->vl),
                   i[0], i[1]);
  return run_fwd(im, &g, x->shape[0], vr_data(x), vr_data(w), w_plain, b ? vr_data(b) : NULL, vr_data(y));
}

/* ---------------------------------------------------------------- weight gradient */
/* what the weight gradient's groups need */
typedef struct {
  const isa_impl *im;
  const dgeo *g;
  const float *gy;
  const int64_t *offs;
  const int32_t *pos, *kstart;
  int64_t nvl, ncob, Coa, nt, Qv, Ka; /* channel tiles: nvl .. nt; position tiles: Coa, Qv, Ka */
} wgrad_ctx;

/* position tiles: gy on the padded-width grid [Coa][Qv] (zero in the dropped columns) */
static void wgrad_pv_prep(const void *cv, int64_t n, float *gb) {
  const wgrad_ctx *c = cv;
  const dgeo *g = c->g;
  const float *gyn = c->gy + n * g->Co * g->Ho * g->Wo;
  for (int64_t co = 0; co < g->Co; co++)
    for (int64_t oh = 0; oh < g->Ho; oh++)
      copy_row(gb + co * c->Qv + oh * g->Wp, gyn + (co * g->Ho + oh) * g->Wo, g->Wo);
}
static void wgrad_pv_run(const void *cv, const float *xp, const float *gb, int64_t nn, float *partial) {
  const wgrad_ctx *c = cv;
  const isa_impl *im = c->im;
  im->wgrad(xp, c->g->xlen, gb, c->Coa * c->Qv, c->Qv, c->Qv / im->vl, nn, c->offs, c->Coa / im->cbw,
            c->Ka / im->kb, partial, c->Ka);
}

/* channel tiles: gy transposed into blocks [Co / NVL][P][NVL] (nvl sequential reads, one
 * sequential write) */
static void wgrad_cv_prep(const void *cv, int64_t n, float *gb) {
  const wgrad_ctx *c = cv;
  const dgeo *g = c->g;
  int64_t P = g->Ho * g->Wo, nvl = c->nvl;
  const float *gyn = c->gy + n * g->Co * P;
  for (int64_t cob = 0; cob < c->ncob; cob++) {
    int64_t nj = g->Co - cob * nvl < nvl ? g->Co - cob * nvl : nvl;
    const float *src = gyn + cob * nvl * P;
    float *dst = gb + cob * P * nvl;
    for (int64_t p = 0; p < P; p++)
      for (int64_t j = 0; j < nj; j++) dst[p * nvl + j] = src[j * P + p];
  }
}
static void wgrad_cv_run(const void *cv, const float *xp, const float *gb, int64_t nn, float *partial) {
  const wgrad_ctx *c = cv;
  int64_t P = c->g->Ho * c->g->Wo;
  for (int64_t cob = 0; cob < c->ncob; cob++)
    c->im->cvw(xp, c->g->xlen, gb + cob * P * c->nvl, c->ncob * P * c->nvl, nn, c->pos, P, c->offs, c->kstart, c->nt,
               partial + cob * c->nvl, c->Coa);
}

/* gw [Co][K] from gy [N, Co, Ho, Wo] and x [N, C, H, W] (g: the forward geometry). Channel tiles
 * (taps x a block of output channels) keep partials [K][Coa] and take groups whose gy block of
 * one output-channel block stays in L1 across the taps (the partials pass through memory once a
 * group, so groups are as large as that allows); position tiles (output channels x taps, on the
 * padded-width grid, stride 1) keep partials [Coa][Ka] and take groups whose padded planes stay
 * in L2. At most 16 chunks, fewer where their partials would pass 64 MB (deep layers: 512 x 512
 * x 3 x 3 is 9 MB a chunk); the chunks' partials are summed in chunk order. With few taps (a
 * first layer), transposing gy for the channel tiles costs more than they save (use_channel_tiles). */
#define CV_GROUP_BYTES (64 * 1024)
#define PV_GROUP_BYTES (192 * 1024)
#define PARTIALS_BYTES (64 << 20)
static vr_status run_wgrad(const isa_impl *im, const dgeo *g, int64_t N, const float *gy, const float *x, float *gw) {
  bool cv = use_channel_tiles(g);
  int64_t P = g->Ho * g->Wo, nch = N < 16 ? N : 16, group;
  wgrad_ctx c = {.im = im, .g = g, .gy = gy};
  dgeo gx = *g;
  int64_t wsize, gs;
  if (cv) {
    c.nvl = im->cv_nv * im->vl;
    c.ncob = (g->Co + c.nvl - 1) / c.nvl;
    c.Coa = c.ncob * c.nvl;
    c.nt = (g->K + im->cv_rmax - 1) / im->cv_rmax;
    c.Ka = g->K;
    gs = c.ncob * P * c.nvl;
  } else {
    c.Coa = (g->Co + im->cbw - 1) / im->cbw * im->cbw;
    c.Ka = (g->K + im->kb - 1) / im->kb * im->kb;
    c.Qv = (g->Q + im->vl - 1) / im->vl * im->vl;
    gx.xlen = g->C * g->plane + c.Qv + g->kh * g->Wp + g->kw + 64; /* reads reach Qv + the last tap */
    gs = c.Coa * c.Qv;
  }
  c.g = &gx;
  wsize = c.Coa * c.Ka;
  while (nch > 2 && nch * wsize * (int64_t)sizeof(float) > PARTIALS_BYTES) nch--;
  group = cv ? CV_GROUP_BYTES / (P * c.nvl * (int64_t)sizeof(float))
             : PV_GROUP_BYTES / ((gx.xlen + gs) * (int64_t)sizeof(float));
  float *part = calloc((size_t)(nch * wsize), sizeof(float));
  int64_t *offs = malloc(sizeof(int64_t) * (size_t)c.Ka);
  int32_t *pos = cv ? malloc(sizeof(int32_t) * (size_t)P) : NULL;
  int32_t *kstart = cv ? malloc(sizeof(int32_t) * (size_t)(c.nt + 1)) : NULL;
  vr_status st = VR_OK;
  if (!part || !offs || (cv && (!pos || !kstart)))
    st = VR_FAIL(VR_E_OOM, "weight: no memory for grad_w partials (%lld floats)", (long long)(nch * wsize));
  else {
    tap_offsets(g, offs, c.Ka);
    if (cv) {
      out_positions(g, pos);
      even_starts(kstart, g->K, c.nt);
    }
    c.offs = offs;
    c.pos = pos;
    c.kstart = kstart;
    group_fns fns = cv ? (group_fns){wgrad_cv_prep, wgrad_cv_run} : (group_fns){wgrad_pv_prep, wgrad_pv_run};
    st = each_group(&gx, N, x, gs, nch, group, part, wsize, fns, &c);
  }
  if (st == VR_OK) /* in chunk order; channel tiles: each row of taps read along its channels */
#pragma omp parallel for schedule(static)
    for (int64_t k = 0; k < g->K; k++)
      for (int64_t co = 0; co < g->Co; co++) {
        int64_t e = cv ? k * c.Coa + co : co * c.Ka + k;
        float s = part[e];
        for (int64_t ch = 1; ch < nch; ch++) s += part[ch * wsize + e];
        gw[co * g->K + k] = s;
      }
  free(part);
  free(offs);
  free(pos);
  free(kstart);
  return st;
}

vr_status vr_cpu_conv_direct_bwd(const vr_tensor *gy, const vr_tensor *x, const vr_tensor *w, const int64_t *i,
                                 vr_tensor *gx, vr_tensor *gw) {
  const isa_impl *im = &impls[vr_cpu_conv_isa()];
  int64_t N = x->shape[0], C = x->shape[1], Co = w->shape[0], kh = w->shape[2], kw = w->shape[3];
  dgeo g = strided(make_dgeo(C, x->shape[2], x->shape[3], Co, kh, kw, i[2], i[3], im->rv * im->vl), i[0], i[1]);
  if (gx && vr_tensor_numel(gx) > 0 && !vr_cpu_conv_direct_gx_ok(i))
    return VR_FAIL(VR_E_ARG, "gx: the direct backward-data takes stride 1, got %lldx%lld", (long long)i[0], (long long)i[1]);
  if (gw && vr_tensor_numel(gw) > 0) {
    if (N == 0 || g.Ho * g.Wo == 0) memset(vr_data(gw), 0, sizeof(float) * (size_t)vr_tensor_numel(gw));
    else VR_TRY(run_wgrad(im, &g, N, vr_data(gy), vr_data(x), vr_data(gw)));
  }
  if (gx && vr_tensor_numel(gx) > 0) {
    /* gy [N, Co, Ho, Wo] convolved with the flipped, transposed w at padding k - 1 - p gives [N, C, H, W] */
    dgeo b = make_dgeo(Co, g.Ho, g.Wo, C, kh, kw, kh - 1 - i[2], kw - 1 - i[3], im->rv * im->vl);
    VR_TRY(run_fwd(im, &b, N, vr_data(gy), vr_data(w), w_flipped, NULL, vr_data(gx)));
  }
  return VR_OK;
}
