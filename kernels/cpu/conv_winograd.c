/* conv_winograd.c: f32 3 x 3 stride-1 convolution (dilation 1, one group, NCHW) by Winograd's
 * F(4 x 4, 3 x 3). Each 6 x 6 tile d of the padded input and each 3 x 3 filter g meet as
 *   y = A^T [(G g G^T) . (B^T d B)] A      (16 outputs from 36 products instead of 144),
 * and the products summed over the input channels are 36 gemms (OpenBLAS): for each point a of
 * the 6 x 6, M[a] [tiles x Co] = V[a] [tiles x C] U[a] [C x Co]. Samples go in groups sized so
 * that a group's V and M stay in cache; each sample is first laid out channels-last and padded
 * (a tile's 8 channels are one vector for the transforms), and its outputs go back to NCHW.
 * Backward-data is the same on grad_y, with the filters turned by 180 degrees and transposed and
 * padding 2 - p; the weight gradient sums (A gy A^T) . (B^T d B) over the tiles (run_gw). The
 * transforms' coefficients (up to 8, and 1/24 in G) cost some precision: the error stays within a
 * few 1e-5 of the outputs' scale on unit data, about 10x a direct sum's (tests/test_conv_winograd.c). */
#include "conv_winograd.h"
#include "conv_direct.h"
#include "cpu.h"
#include <cblas.h>
#include <immintrin.h>
#include <omp.h>
#include <stdlib.h>

#define WA 6                        /* a tile's side */
#define WM 4                        /* its outputs' side */
#define WP (WA * WA)                /* the points of a tile's product */
#define WINO_GROUP_FLOATS (1 << 21) /* V and M of a group of samples: 8 MB at most (one sample at least) */
#define WINO_GROUPS 8               /* groups a batch is cut into at least (as its samples allow) */
#define WINO_MIN_ROWS 64            /* tiles a group's gemms have at least (as the cache allows) */
#define WINO_MIN_CHANNELS 32        /* below, the transforms cost more than the gemms save (bench conv) */

bool vr_cpu_conv_winograd_ok(const vr_tensor *x, const vr_tensor *w, const int64_t *i) {
  if (x->dtype != VR_F32 || w->dtype != VR_F32 || vr_variants[VR_VARIANT_CPU_WINOGRAD] != VR_CPU_WINOGRAD_ON)
    return false;
  if (vr_cpu_conv_isa() == VR_CONV_ISA_NONE) return false; /* everything to im2col (a test's reference) */
  if (i[0] != 1 || i[1] != 1 || i[4] != 1 || i[5] != 1 || i[6] != 1 || i[7] != 0) return false;
  if (x->ndim != 4 || w->shape[2] != 3 || w->shape[3] != 3) return false;
  if (i[2] < 0 || i[2] > 2 || i[3] < 0 || i[3] > 2) return false; /* backward-data pads by 2 - p */
  if (x->shape[2] + 2 * i[2] < 3 || x->shape[3] + 2 * i[3] < 3) return false;
  return x->shape[1] >= WINO_MIN_CHANNELS && w->shape[0] >= WINO_MIN_CHANNELS;
}

/* ---------------------------------------------------------------- geometry */
typedef struct {
  int64_t N, C, H, W, Co, ph, pw; /* input [N, C, H, W], Co outputs, padding */
  int64_t Ho, Wo, th, tw, T;      /* output plane; tiles down, across and in all a sample */
  int64_t Hx, Wx, C8, Co8;        /* the padded channels-last plane; channel counts rounded up to 8 */
  int64_t group;                  /* samples a group */
} wgeo;

static wgeo make_wgeo(int64_t N, int64_t C, int64_t H, int64_t W, int64_t Co, int64_t ph, int64_t pw) {
  wgeo g = {.N = N, .C = C, .H = H, .W = W, .Co = Co, .ph = ph, .pw = pw};
  g.Ho = H + 2 * ph - 2;
  g.Wo = W + 2 * pw - 2;
  g.th = (g.Ho + WM - 1) / WM;
  g.tw = (g.Wo + WM - 1) / WM;
  g.T = g.th * g.tw;
  g.Hx = WM * g.th + 2;
  g.Wx = WM * g.tw + 2;
  g.C8 = (C + 7) / 8 * 8;
  g.Co8 = (Co + 7) / 8 * 8;
  /* by the sizes alone (the gemms' shapes, so the results, do not depend on the thread count), and
   * at least WINO_GROUPS groups to share out when the batch has the samples */
  int64_t fit = WINO_GROUP_FLOATS / (WP * g.T * (g.C8 + g.Co8)), rows = (WINO_MIN_ROWS + g.T - 1) / g.T;
  g.group = fit < N / WINO_GROUPS ? fit : N / WINO_GROUPS;
  if (g.group < rows) g.group = rows < fit ? rows : fit; /* gemms of WINO_MIN_ROWS rows where they fit */
  if (g.group > N) g.group = N;
  if (g.group < 1) g.group = 1;
  return g;
}

/* ---------------------------------------------------------------- transforms */
/* G: the filter's transform (B^T and A^T, the input's and the output's, are spelt out in bt6 and at6) */
static const float G[WA][3] = {
    {1 / 4.0f, 0, 0},
    {-1 / 6.0f, -1 / 6.0f, -1 / 6.0f},
    {-1 / 6.0f, 1 / 6.0f, -1 / 6.0f},
    {1 / 24.0f, 1 / 12.0f, 1 / 6.0f},
    {1 / 24.0f, -1 / 12.0f, 1 / 6.0f},
    {0, 0, 1},
};

/* U[a][c][co] (C rows of Co8) = (G f G^T)[a] for the filter f from input channel c to output
 * channel co: w[co][c] (forward) or, flip, w[c][co] turned by 180 degrees (backward-data, whose
 * inputs are the forward's outputs). Eight output channels at a time, side by side in lanes. */
static void filter_transform(const float *w, const wgeo *g, bool flip, float *U) {
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < g->C; c++)
    for (int64_t co0 = 0; co0 < g->Co8; co0 += 8) {
      float k[9][8] = {{0}}, t[WA][3][8], u[8];
      for (int l = 0; l < 8 && co0 + l < g->Co; l++) {
        int64_t co = co0 + l;
        const float *f = flip ? w + (c * g->Co + co) * 9 : w + (co * g->C + c) * 9;
        for (int q = 0; q < 9; q++) k[q][l] = f[flip ? 8 - q : q];
      }
      for (int r = 0; r < WA; r++)
        for (int j = 0; j < 3; j++)
          for (int l = 0; l < 8; l++) t[r][j][l] = G[r][0] * k[j][l] + G[r][1] * k[3 + j][l] + G[r][2] * k[6 + j][l];
      for (int r = 0; r < WA; r++)
        for (int s = 0; s < WA; s++) {
          for (int l = 0; l < 8; l++) u[l] = t[r][0][l] * G[s][0] + t[r][1][l] * G[s][1] + t[r][2][l] * G[s][2];
          memcpy(U + ((r * WA + s) * g->C + c) * g->Co8 + co0, u, sizeof u);
        }
    }
}

/* r = B^T d on six vectors d[0], d[ds], ... (8 channels each), into r[0], r[rs], ... */
static inline void bt6(const __m256 *d, int ds, __m256 *r, int rs) {
  const __m256 two = _mm256_set1_ps(2), four = _mm256_set1_ps(4), five = _mm256_set1_ps(5);
  __m256 d0 = d[0], d1 = d[ds], d2 = d[2 * ds], d3 = d[3 * ds], d4 = d[4 * ds], d5 = d[5 * ds];
  __m256 d31 = _mm256_sub_ps(d3, d1), d42 = _mm256_sub_ps(d4, d2);
  r[0] = _mm256_fmadd_ps(four, d0, _mm256_fnmadd_ps(five, d2, d4));
  r[rs] = _mm256_fnmadd_ps(four, _mm256_add_ps(d1, d2), _mm256_add_ps(d3, d4));
  r[2 * rs] = _mm256_fmadd_ps(four, _mm256_sub_ps(d1, d2), _mm256_sub_ps(d4, d3));
  r[3 * rs] = _mm256_fmadd_ps(two, d31, d42);
  r[4 * rs] = _mm256_fnmadd_ps(two, d31, d42);
  r[5 * rs] = _mm256_fmadd_ps(four, d1, _mm256_fnmadd_ps(five, d3, d5));
}

/* o = A^T m on six vectors m[0], m[ms], ..., into four o[0], o[os], ... */
static inline void at6(const __m256 *m, int ms, __m256 *o, int os) {
  const __m256 two = _mm256_set1_ps(2), four = _mm256_set1_ps(4), eight = _mm256_set1_ps(8);
  __m256 s12 = _mm256_add_ps(m[ms], m[2 * ms]), d12 = _mm256_sub_ps(m[ms], m[2 * ms]);
  __m256 s34 = _mm256_add_ps(m[3 * ms], m[4 * ms]), d34 = _mm256_sub_ps(m[3 * ms], m[4 * ms]);
  o[0] = _mm256_add_ps(_mm256_add_ps(m[0], s12), s34);
  o[os] = _mm256_fmadd_ps(two, d34, d12);
  o[2 * os] = _mm256_fmadd_ps(four, s34, s12);
  o[3 * os] = _mm256_add_ps(_mm256_fmadd_ps(eight, d34, d12), m[5 * ms]);
}

/* r[i][j] <-> r[j][i] for eight vectors of eight */
static inline void transpose8(__m256 *r) {
  __m256 t[8], u[8];
  for (int k = 0; k < 8; k += 2) {
    t[k] = _mm256_unpacklo_ps(r[k], r[k + 1]);
    t[k + 1] = _mm256_unpackhi_ps(r[k], r[k + 1]);
  }
  for (int k = 0; k < 8; k += 4) {
    u[k] = _mm256_shuffle_ps(t[k], t[k + 2], 0x44);
    u[k + 1] = _mm256_shuffle_ps(t[k], t[k + 2], 0xee);
    u[k + 2] = _mm256_shuffle_ps(t[k + 1], t[k + 3], 0x44);
    u[k + 3] = _mm256_shuffle_ps(t[k + 1], t[k + 3], 0xee);
  }
  for (int k = 0; k < 4; k++) {
    r[k] = _mm256_permute2f128_ps(u[k], u[k + 4], 0x20);
    r[k + 4] = _mm256_permute2f128_ps(u[k], u[k + 4], 0x31);
  }
}

/* planes src [C][H][W] into dst [..][Wd][Cd] from row r0 and column c0 on; the rest of dst stays
 * as it is (zero: the padding, the tiles' overhang, the channels past C). Blocks of 8 channels x
 * 8 columns go through a register transpose. */
static void to_channels_last(const float *src, int64_t C, int64_t H, int64_t W, float *dst, int64_t Wd, int64_t Cd,
                             int64_t r0, int64_t c0) {
  for (int64_t cb = 0; cb < C; cb += 8) {
    int64_t nc = C - cb < 8 ? C - cb : 8;
    for (int64_t h = 0; h < H; h++) {
      float *row = dst + ((h + r0) * Wd + c0) * Cd + cb;
      const float *s = src + (cb * H + h) * W;
      int64_t w = 0;
      if (nc == 8)
        for (; w < W; w += 8) { /* the last 1 to 7 columns through masked loads (a 7 x 7 plane: all) */
          int64_t n = W - w < 8 ? W - w : 8;
          __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
          __m256 r[8];
          for (int k = 0; k < 8; k++) r[k] = _mm256_maskload_ps(s + k * H * W + w, m);
          transpose8(r);
          for (int j = 0; j < n; j++) _mm256_storeu_ps(row + (w + j) * Cd, r[j]);
        }
      for (int64_t k = 0; k < nc; k++)
        for (int64_t v = w; v < W; v++) row[v * Cd + k] = s[k * H * W + v];
    }
  }
}

/* tile (ti, tj) of xt into row `row` of V [WP][ldt][C8] */
static void tile_in(const float *xt, const wgeo *g, int64_t ti, int64_t tj, float *V, int64_t ldt, int64_t row) {
  const float *base = xt + (ti * WM * g->Wx + tj * WM) * g->C8;
  for (int64_t c = 0; c < g->C8; c += 8) {
    __m256 d[WP], t[WP];
    for (int r = 0; r < WA; r++)
      for (int s = 0; s < WA; s++) d[r * WA + s] = _mm256_loadu_ps(base + (r * g->Wx + s) * g->C8 + c);
    for (int s = 0; s < WA; s++) bt6(d + s, WA, t + s, WA);       /* down each column */
    for (int r = 0; r < WA; r++) bt6(t + r * WA, 1, d + r * WA, 1); /* along each row */
    for (int a = 0; a < WP; a++) _mm256_storeu_ps(V + (a * ldt + row) * g->C8 + c, d[a]);
  }
}

/* sample xs [C][H][W], laid out in xt, into the rows from `row` on of V: its tiles, in order */
static void sample_in(const float *xs, const wgeo *g, float *xt, float *V, int64_t ldt, int64_t row) {
  to_channels_last(xs, g->C, g->H, g->W, xt, g->Wx, g->C8, g->ph, g->pw);
  for (int64_t ti = 0; ti < g->th; ti++)
    for (int64_t tj = 0; tj < g->tw; tj++) tile_in(xt, g, ti, tj, V, ldt, row + ti * g->tw + tj);
}

/* row `row` of M [WP][ldt][Co8] out as tile (ti, tj) of yt [th * 4][tw * 4][Co8] */
static void tile_out(const float *M, const wgeo *g, int64_t ldt, int64_t row, float *yt, int64_t ti, int64_t tj) {
  float *base = yt + (ti * WM * g->tw * WM + tj * WM) * g->Co8;
  for (int64_t co = 0; co < g->Co8; co += 8) {
    __m256 m[WP], t[WM * WA], o[WM * WM];
    for (int a = 0; a < WP; a++) m[a] = _mm256_loadu_ps(M + (a * ldt + row) * g->Co8 + co);
    for (int s = 0; s < WA; s++) at6(m + s, WA, t + s, WA);       /* down each column */
    for (int i = 0; i < WM; i++) at6(t + i * WA, 1, o + i * WM, 1); /* along each row */
    for (int i = 0; i < WM; i++)
      for (int j = 0; j < WM; j++) _mm256_storeu_ps(base + (i * g->tw * WM + j) * g->Co8 + co, o[i * WM + j]);
  }
}

/* yt [th * 4][tw * 4][Co8] into sample y [Co][Ho][Wo] with the bias; blocks of 8 positions x 8
 * channels through a register transpose */
static void to_nchw(const float *yt, const wgeo *g, const float *b, float *y) {
  for (int64_t cb = 0; cb < g->Co; cb += 8) {
    int64_t nc = g->Co - cb < 8 ? g->Co - cb : 8;
    for (int64_t h = 0; h < g->Ho; h++) {
      const float *src = yt + h * g->tw * WM * g->Co8 + cb;
      float *dst = y + (cb * g->Ho + h) * g->Wo;
      int64_t w = 0;
      /* a row's last 1 to 7 positions as 8 too where the overhang stays in the channel's plane: it
       * lands on the next rows, written after (masked stores are slow on AMD Zen) */
      if (nc == 8)
        for (; w < g->Wo && h * g->Wo + w + 8 <= g->Ho * g->Wo; w += 8) {
          int64_t n = g->Wo - w < 8 ? g->Wo - w : 8;
          __m256 r[8];
          for (int j = 0; j < 8; j++) r[j] = j < n ? _mm256_loadu_ps(src + (w + j) * g->Co8) : _mm256_setzero_ps();
          transpose8(r);
          for (int k = 0; k < 8; k++)
            _mm256_storeu_ps(dst + k * g->Ho * g->Wo + w, _mm256_add_ps(r[k], _mm256_set1_ps(b ? b[cb + k] : 0.0f)));
        }
      for (int64_t k = 0; k < nc; k++) {
        float bv = b ? b[cb + k] : 0.0f;
        for (int64_t v = w; v < g->Wo; v++) dst[k * g->Ho * g->Wo + v] = src[v * g->Co8 + k] + bv;
      }
    }
  }
}

/* ---------------------------------------------------------------- the batch */

static vr_status run(const wgeo *g, const float *x, const float *U, const float *b, float *y) {
  int64_t ngroups = (g->N + g->group - 1) / g->group, ldt = g->group * g->T;
  int failed = 0, prev = vr_cpu_blas_serial_begin(); /* each gemm on one thread: the same sums on any count */
#pragma omp parallel if (ngroups > 1)
  {
    /* zeroed where something is read that no step writes: xt's border, M's channels past Co */
    float *xt = calloc((size_t)(g->Hx * g->Wx * g->C8), sizeof(float));
    float *V = malloc(sizeof(float) * (size_t)(WP * ldt * g->C8));
    float *M = g->Co8 > g->Co ? calloc((size_t)(WP * ldt * g->Co8), sizeof(float))
                              : malloc(sizeof(float) * (size_t)(WP * ldt * g->Co8));
    float *yt = malloc(sizeof(float) * (size_t)(g->th * g->tw * WM * WM * g->Co8));
    if (!xt || !V || !M || !yt) {
#pragma omp atomic write
      failed = 1;
    }
#pragma omp for schedule(dynamic, 1)
    for (int64_t gi = 0; gi < ngroups; gi++) {
      if (!xt || !V || !M || !yt) continue;
      int64_t n0 = gi * g->group, nn = g->N - n0 < g->group ? g->N - n0 : g->group;
      for (int64_t j = 0; j < nn; j++) sample_in(x + (n0 + j) * g->C * g->H * g->W, g, xt, V, ldt, j * g->T);
      for (int64_t a = 0; a < WP; a++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(nn * g->T), (int)g->Co, (int)g->C, 1.0f,
                    V + a * ldt * g->C8, (int)g->C8, U + a * g->C * g->Co8, (int)g->Co8, 0.0f, M + a * ldt * g->Co8,
                    (int)g->Co8);
      for (int64_t j = 0; j < nn; j++) {
        for (int64_t ti = 0; ti < g->th; ti++)
          for (int64_t tj = 0; tj < g->tw; tj++) tile_out(M, g, ldt, j * g->T + ti * g->tw + tj, yt, ti, tj);
        to_nchw(yt, g, b, y + (n0 + j) * g->Co * g->Ho * g->Wo);
      }
    }
    free(xt);
    free(V);
    free(M);
    free(yt);
  }
  vr_cpu_blas_serial_end(prev);
  if (failed)
    return VR_FAIL(VR_E_OOM, "x: no memory for the Winograd tiles of %lld samples (%lld floats)", (long long)g->group,
                   (long long)(WP * ldt * (g->C8 + g->Co8)));
  return VR_OK;
}

static vr_status transform_and_run(const wgeo *g, const float *w, bool flip, const float *in, const float *b,
                                   float *out) {
  if (g->N == 0) return VR_OK;
  float *U = calloc((size_t)(WP * g->C * g->Co8), sizeof(float));
  if (!U) return VR_FAIL(VR_E_OOM, "w: no memory for the transformed filters (%lld floats)", (long long)(WP * g->C * g->Co8));
  filter_transform(w, g, flip, U);
  vr_status st = run(g, in, U, b, out);
  free(U);
  return st;
}

/* ---------------------------------------------------------------- the weight gradient */
/* gw[co][c] = sum over samples and tiles of gy's 4 x 4 tile correlated with x's 6 x 6 one, which
 * the forward's identity turns into gw = G^T [sum (A gy A^T) . (B^T d B)] G: the sums are 36 gemms
 * over the tiles, M[a] [C x Co] += V[a]^T GY[a], and G^T M G comes once at the end. */

/* r = A g on four vectors g[0], g[gs], ... into six r[0], r[rs], ... (A = the transpose of A^T) */
static inline void a4(const __m256 *g, int gs, __m256 *r, int rs) {
  const __m256 two = _mm256_set1_ps(2), four = _mm256_set1_ps(4), eight = _mm256_set1_ps(8);
  __m256 g0 = g[0], g1 = g[gs], g2 = g[2 * gs], g3 = g[3 * gs];
  __m256 e = _mm256_add_ps(g0, g2), o = _mm256_add_ps(g1, g3);
  __m256 e4 = _mm256_fmadd_ps(four, g2, g0), o8 = _mm256_fmadd_ps(eight, g3, _mm256_mul_ps(two, g1));
  r[0] = g0;
  r[rs] = _mm256_add_ps(e, o);
  r[2 * rs] = _mm256_sub_ps(e, o);
  r[3 * rs] = _mm256_add_ps(e4, o8);
  r[4 * rs] = _mm256_sub_ps(e4, o8);
  r[5 * rs] = g3;
}

/* tile (ti, tj) of gyt [th * 4][tw * 4][Co8] into row `row` of GY [WP][ldt][Co8] as A gy A^T */
static void tile_gy(const float *gyt, const wgeo *g, int64_t ti, int64_t tj, float *GY, int64_t ldt, int64_t row) {
  const float *base = gyt + (ti * WM * g->tw * WM + tj * WM) * g->Co8;
  for (int64_t co = 0; co < g->Co8; co += 8) {
    __m256 d[WM * WM], t[WA * WM], u[WP];
    for (int i = 0; i < WM; i++)
      for (int j = 0; j < WM; j++) d[i * WM + j] = _mm256_loadu_ps(base + (i * g->tw * WM + j) * g->Co8 + co);
    for (int j = 0; j < WM; j++) a4(d + j, WM, t + j, WM);       /* down each column */
    for (int r = 0; r < WA; r++) a4(t + r * WM, 1, u + r * WA, 1); /* along each row */
    for (int a = 0; a < WP; a++) _mm256_storeu_ps(GY + (a * ldt + row) * g->Co8 + co, u[a]);
  }
}

/* gw[co][c] = G^T M G for M[a][c][co] (C rows of Co8), eight output channels at a time */
static void weight_out(const float *M, const wgeo *g, float *gw) {
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < g->C; c++)
    for (int64_t co0 = 0; co0 < g->Co; co0 += 8) {
      float m[WP][8], t[3][WA][8], o[9][8];
      for (int a = 0; a < WP; a++) memcpy(m[a], M + (a * g->C + c) * g->Co8 + co0, sizeof m[a]);
      for (int i = 0; i < 3; i++)
        for (int s = 0; s < WA; s++)
          for (int l = 0; l < 8; l++) {
            float v = 0;
            for (int r = 0; r < WA; r++) v += G[r][i] * m[r * WA + s][l];
            t[i][s][l] = v;
          }
      for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
          for (int l = 0; l < 8; l++) {
            float v = 0;
            for (int s = 0; s < WA; s++) v += t[i][s][l] * G[s][j];
            o[i * 3 + j][l] = v;
          }
      for (int l = 0; l < 8 && co0 + l < g->Co; l++)
        for (int q = 0; q < 9; q++) gw[((co0 + l) * g->C + c) * 9 + q] = o[q][l];
    }
}

/* The batch is cut into chunks fixed by N and the sizes alone, each summed into its own M, the
 * chunks' Ms summed in chunk order: the result does not depend on the thread count. Chunks: at
 * most 16, of WINO_CHUNK_TILES tiles or more (the gemms' depth; two chunks at least, to share
 * out), fewer while their Ms pass WINO_PARTIALS_BYTES. */
#define WINO_CHUNK_TILES 128
#define WINO_PARTIALS_BYTES (160 << 20)
static vr_status run_gw(const wgeo *g, const float *x, const float *gy, float *gw) {
  int64_t msize = WP * g->C * g->Co8, nch = g->N * g->T / WINO_CHUNK_TILES, ldt = g->group * g->T;
  if (nch > 16) nch = 16;
  if (nch < 2) nch = 2;
  if (nch > g->N) nch = g->N;
  while (nch > 1 && nch * msize * (int64_t)sizeof(float) > WINO_PARTIALS_BYTES) nch--;
  float *part = calloc((size_t)(nch * msize), sizeof(float));
  if (!part) return VR_FAIL(VR_E_OOM, "w: no memory for the weight gradient's partial sums (%lld floats)", (long long)(nch * msize));
  int failed = 0, prev = vr_cpu_blas_serial_begin();
#pragma omp parallel if (nch > 1)
  {
    /* zeroed where something is read that no step writes: the borders and overhangs of xt and gyt */
    float *xt = calloc((size_t)(g->Hx * g->Wx * g->C8), sizeof(float));
    float *gyt = calloc((size_t)(g->th * g->tw * WM * WM * g->Co8), sizeof(float));
    float *V = malloc(sizeof(float) * (size_t)(WP * ldt * g->C8)), *GY = malloc(sizeof(float) * (size_t)(WP * ldt * g->Co8));
    if (!xt || !gyt || !V || !GY) {
#pragma omp atomic write
      failed = 1;
    }
#pragma omp for schedule(dynamic, 1)
    for (int64_t ch = 0; ch < nch; ch++) {
      if (!xt || !gyt || !V || !GY) continue;
      float *M = part + ch * msize;
      int64_t n1 = g->N * (ch + 1) / nch;
      for (int64_t n0 = g->N * ch / nch; n0 < n1; n0 += g->group) {
        int64_t nn = n1 - n0 < g->group ? n1 - n0 : g->group;
        for (int64_t j = 0; j < nn; j++) {
          int64_t n = n0 + j, row = j * g->T;
          sample_in(x + n * g->C * g->H * g->W, g, xt, V, ldt, row);
          to_channels_last(gy + n * g->Co * g->Ho * g->Wo, g->Co, g->Ho, g->Wo, gyt, g->tw * WM, g->Co8, 0, 0);
          for (int64_t ti = 0; ti < g->th; ti++)
            for (int64_t tj = 0; tj < g->tw; tj++) tile_gy(gyt, g, ti, tj, GY, ldt, row + ti * g->tw + tj);
        }
        for (int64_t a = 0; a < WP; a++)
          cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)g->C, (int)g->Co, (int)(nn * g->T), 1.0f,
                      V + a * ldt * g->C8, (int)g->C8, GY + a * ldt * g->Co8, (int)g->Co8, 1.0f, M + a * g->C * g->Co8,
                      (int)g->Co8);
      }
    }
    free(xt);
    free(gyt);
    free(V);
    free(GY);
  }
  vr_cpu_blas_serial_end(prev);
  if (!failed) {
    /* in blocks, each chunk's block added in chunk order: runs that vectorize, the same sums */
#pragma omp parallel for schedule(static)
    for (int64_t e0 = 0; e0 < msize; e0 += 4096) {
      int64_t e1 = e0 + 4096 < msize ? e0 + 4096 : msize;
      for (int64_t ch = 1; ch < nch; ch++)
        for (int64_t e = e0; e < e1; e++) part[e] += part[ch * msize + e];
    }
    weight_out(part, g, gw);
  }
  free(part);
  if (failed)
    return VR_FAIL(VR_E_OOM, "x: no memory for the Winograd tiles of %lld samples (%lld floats)", (long long)g->group,
                   (long long)(WP * ldt * (g->C8 + g->Co8)));
  return VR_OK;
}

vr_status vr_cpu_conv_winograd_fwd(const vr_tensor *x, const vr_tensor *w, const vr_tensor *b, const int64_t *i,
                                   vr_tensor *y) {
  wgeo g = make_wgeo(x->shape[0], x->shape[1], x->shape[2], x->shape[3], w->shape[0], i[2], i[3]);
  return transform_and_run(&g, vr_data(w), false, vr_data(x), b ? vr_data(b) : NULL, vr_data(y));
}

vr_status vr_cpu_conv_winograd_gx(const vr_tensor *gy, const vr_tensor *w, const int64_t *i, vr_tensor *gx) {
  wgeo g = make_wgeo(gy->shape[0], gy->shape[1], gy->shape[2], gy->shape[3], w->shape[1], 2 - i[2], 2 - i[3]);
  return transform_and_run(&g, vr_data(w), true, vr_data(gy), NULL, vr_data(gx));
}

vr_status vr_cpu_conv_winograd_gw(const vr_tensor *gy, const vr_tensor *x, const int64_t *i, vr_tensor *gw) {
  wgeo g = make_wgeo(x->shape[0], x->shape[1], x->shape[2], x->shape[3], gw->shape[0], i[2], i[3]);
  if (g.N == 0) return vr_fill_(gw, 0);
  return run_gw(&g, vr_data(x), vr_data(gy), vr_data(gw));
}
