/* reg_zpass.c: VISReg's two passes over z by blocks of at most 64 dims of one view (tasks of
 * the kernel's parallel regions, kernels/cpu/reg_sliced.inc): the statistics and the
 * standardised zn before the GEMMs, the gradient's final form after them. Both are sums and
 * products in double over B rows; where the CPU has AVX-512 they run in 8-lane vectors (the 64
 * sums of a block then fit in registers): the same IEEE operations in the same order, so the
 * same bits as the AVX2 build. */
#include "cpu.h"
#include "../../core/reg/reg.h"
#include <math.h>

/* z0: the block's first element (rows D apart, w <= 64 dims); mu, sig, isg: its w entries;
 * x0: zn's block. mu, sigma in double from one pass of sums shifted by the first row (no
 * cancellation worth speaking of: the shift is one sample, a few sigma from the mean), then
 * zn = (z - mu) / sigma while the block is in cache. */
#define ZSTATS_BODY                                                                     \
  double sh[64], m[64] = {0}, s2[64] = {0}, is[64];                                      \
  for (int64_t d = 0; d < w; d++) sh[d] = z0[d];                                        \
  for (int64_t b = 0; b < B; b++) {                                                     \
    const T *row = z0 + b * D;                                                          \
    for (int64_t d = 0; d < w; d++) {                                                   \
      double x = row[d] - sh[d];                                                        \
      m[d] += x;                                                                        \
      s2[d] += x * x;                                                                   \
    }                                                                                   \
  }                                                                                     \
  for (int64_t d = 0; d < w; d++) {                                                     \
    double ms = m[d] / (double)B, var = s2[d] / (double)B - ms * ms;                    \
    double sg = sqrt(var > 0 ? var : 0) + 1e-6;                                         \
    m[d] = sh[d] + ms;                                                                  \
    is[d] = 1.0 / sg;                                                                   \
    mu[d] = m[d];                                                                       \
    sig[d] = sg;                                                                        \
    isg[d] = is[d];                                                                     \
  }                                                                                     \
  for (int64_t b = 0; b < B; b++) {                                                     \
    const T *row = z0 + b * D;                                                          \
    T *o = x0 + b * D;                                                                  \
    for (int64_t d = 0; d < w; d++) o[d] = (T)((row[d] - m[d]) * is[d]);                \
  }

/* g0: the block of dL/dP W^T (H), overwritten with dL/dz =
 * (H - mean_b H) / sigma + 2 w_c mu / (V D B) + 2 w_s (sigma - 1) (z - mu) / (V D B s),
 * cc = 2 w_c / (V D B), sc = 2 w_s / (V D B) */
#define ZGRAD_BODY                                                                      \
  double hm[64] = {0}, is[64], add[64], mul[64];                                        \
  for (int64_t b = 0; b < B; b++) {                                                     \
    const T *row = g0 + b * D;                                                          \
    for (int64_t d = 0; d < w; d++) hm[d] += row[d];                                    \
  }                                                                                     \
  for (int64_t d = 0; d < w; d++) {                                                     \
    double sg = sig[d], s = sg - 1e-6, m = mu[d];                                       \
    is[d] = 1.0 / sg;                                                                   \
    hm[d] /= (double)B;                                                                 \
    mul[d] = s > 0 ? sc * (sg - 1) / s : 0.0;                                           \
    add[d] = cc * m - mul[d] * m - hm[d] / sg;                                          \
  }                                                                                     \
  for (int64_t b = 0; b < B; b++) {                                                     \
    T *row = g0 + b * D;                                                                \
    const T *zr = z0 + b * D;                                                           \
    for (int64_t d = 0; d < w; d++)                                                     \
      row[d] = (T)((double)row[d] * is[d] + mul[d] * (double)zr[d] + add[d]);           \
  }

#define ZSTATS_ARGS(T) const T *z0, int64_t B, int64_t D, int64_t w, double *mu, double *sig, double *isg, T *x0
#define ZGRAD_ARGS(T)                                                                                          \
  T *g0, const T *z0, int64_t B, int64_t D, int64_t w, const double *mu, const double *sig, double cc, double sc

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define ZP_512 __attribute__((target("avx512f,avx512dq,avx512vl,prefer-vector-width=512"))) static void
static int zp_avx512(void) {
  static int v = -1;
  if (v < 0) {
    __builtin_cpu_init();
    v = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
  }
  return v;
}
/* the AVX-512 versions for whole blocks (w = 64, a constant: the block's sums stay in registers) */
#define ZP_PASSES(SFX, T)                                                                                      \
  static void zstats_##SFX(ZSTATS_ARGS(T)) { ZSTATS_BODY }                                                     \
  ZP_512 zstats_512_##SFX(const T *z0, int64_t B, int64_t D, double *mu, double *sig, double *isg, T *x0) {    \
    const int64_t w = 64;                                                                                      \
    ZSTATS_BODY                                                                                                \
  }                                                                                                            \
  static void zgrad_##SFX(ZGRAD_ARGS(T)) { ZGRAD_BODY }                                                        \
  ZP_512 zgrad_512_##SFX(T *g0, const T *z0, int64_t B, int64_t D, const double *mu, const double *sig,        \
                         double cc, double sc) {                                                               \
    const int64_t w = 64;                                                                                      \
    ZGRAD_BODY                                                                                                 \
  }                                                                                                            \
  void vr_reg_zstats_##SFX(ZSTATS_ARGS(T)) {                                                                   \
    if (w == 64 && zp_avx512()) zstats_512_##SFX(z0, B, D, mu, sig, isg, x0);                                  \
    else zstats_##SFX(z0, B, D, w, mu, sig, isg, x0);                                                          \
  }                                                                                                            \
  void vr_reg_zgrad_##SFX(ZGRAD_ARGS(T)) {                                                                     \
    if (w == 64 && zp_avx512()) zgrad_512_##SFX(g0, z0, B, D, mu, sig, cc, sc);                                \
    else zgrad_##SFX(g0, z0, B, D, w, mu, sig, cc, sc);                                                        \
  }
#else
#define ZP_PASSES(SFX, T)                                                                                      \
  void vr_reg_zstats_##SFX(ZSTATS_ARGS(T)) { ZSTATS_BODY }                                                     \
  void vr_reg_zgrad_##SFX(ZGRAD_ARGS(T)) { ZGRAD_BODY }
#endif

#define T float
ZP_PASSES(f32, float)
#undef T
#define T double
ZP_PASSES(f64, double)
#undef T
