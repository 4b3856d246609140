/* test_reg_zpass.c: VISReg's passes over blocks of z (kernels/cpu/reg_zpass.c) give the bits of
 * their scalar formulas, written out here once more: whole 64-dim blocks take the AVX-512 path
 * where the CPU has it, partial blocks the plain one, and both must agree with the formula so
 * that results do not depend on the CPU. */
#include "testutil.h"
#include "../core/reg/reg.h"
#include <stdint.h>

#define ZP_B 37
#define ZP_D 70

static uint64_t zp_lcg(uint64_t *s) {
  *s = *s * 6364136223846793005ull + 1442695040888963407ull;
  return *s >> 11;
}
static double zp_unif(uint64_t *s) { return ((double)zp_lcg(s) + 0.5) / 9007199254740992.0; }

/* the formulas of reg_zpass.c for one dim d of a block, in the order the file computes them */
#define ZP_REF(T)                                                                                         \
  static void stats_ref_##T(const T *z0, int64_t B, int64_t D, double *mu, double *sg, double *is, T *x0) { \
    double sh = z0[0], m = 0, s2 = 0;                                                                    \
    for (int64_t b = 0; b < B; b++) {                                                                    \
      double x = z0[b * D] - sh;                                                                         \
      m += x;                                                                                            \
      s2 += x * x;                                                                                       \
    }                                                                                                    \
    double ms = m / (double)B, var = s2 / (double)B - ms * ms;                                           \
    *sg = sqrt(var > 0 ? var : 0) + 1e-6;                                                                \
    *mu = sh + ms;                                                                                       \
    *is = 1.0 / *sg;                                                                                     \
    for (int64_t b = 0; b < B; b++) x0[b * D] = (T)((z0[b * D] - *mu) * *is);                            \
  }                                                                                                      \
  static void grad_ref_##T(T *g0, const T *z0, int64_t B, int64_t D, double mu, double sg, double cc, double sc) { \
    double hm = 0, s = sg - 1e-6;                                                                        \
    for (int64_t b = 0; b < B; b++) hm += g0[b * D];                                                     \
    double is = 1.0 / sg, mul = s > 0 ? sc * (sg - 1) / s : 0.0;                                         \
    hm /= (double)B;                                                                                     \
    double add = cc * mu - mul * mu - hm / sg;                                                           \
    for (int64_t b = 0; b < B; b++) g0[b * D] = (T)((double)g0[b * D] * is + mul * (double)z0[b * D] + add); \
  }
ZP_REF(float)
ZP_REF(double)

#define ZP_CHECK(T, SFX)                                                                                    \
  static void check_##SFX(void) {                                                                          \
    uint64_t st = 99;                                                                                      \
    T *z = malloc(sizeof(T) * ZP_B * ZP_D), *x = malloc(sizeof(T) * ZP_B * ZP_D),                          \
      *xr = malloc(sizeof(T) * ZP_B * ZP_D), *g = malloc(sizeof(T) * ZP_B * ZP_D),                         \
      *gr = malloc(sizeof(T) * ZP_B * ZP_D);                                                               \
    double mu[ZP_D], sg[ZP_D], is[ZP_D], mr[ZP_D], sr[ZP_D], ir[ZP_D];                                     \
    for (int i = 0; i < ZP_B * ZP_D; i++) {                                                                \
      z[i] = (T)(3.0 * zp_unif(&st) - 1.0);                                                                \
      g[i] = gr[i] = (T)(zp_unif(&st) - 0.5);                                                              \
    }                                                                                                      \
    for (int64_t d0 = 0; d0 < ZP_D; d0 += 64) { /* a whole block, then 6 dims */                           \
      int64_t w = ZP_D - d0 < 64 ? ZP_D - d0 : 64;                                                         \
      vr_reg_zstats_##SFX(z + d0, ZP_B, ZP_D, w, mu + d0, sg + d0, is + d0, x + d0);                       \
      vr_reg_zgrad_##SFX(g + d0, z + d0, ZP_B, ZP_D, w, mu + d0, sg + d0, 0.25, 0.5);                      \
    }                                                                                                      \
    for (int64_t d = 0; d < ZP_D; d++) {                                                                   \
      stats_ref_##T(z + d, ZP_B, ZP_D, &mr[d], &sr[d], &ir[d], xr + d);                                    \
      grad_ref_##T(gr + d, z + d, ZP_B, ZP_D, mr[d], sr[d], 0.25, 0.5);                                    \
    }                                                                                                      \
    ck_assert_msg(!memcmp(mu, mr, sizeof mu) && !memcmp(sg, sr, sizeof sg) && !memcmp(is, ir, sizeof is),  \
                  #SFX ": mu, sigma or 1 / sigma differ from the formula");                                \
    ck_assert_msg(!memcmp(x, xr, sizeof(T) * ZP_B * ZP_D), #SFX ": zn differs from the formula");          \
    ck_assert_msg(!memcmp(g, gr, sizeof(T) * ZP_B * ZP_D), #SFX ": dL/dz differs from the formula");       \
    free(z);                                                                                               \
    free(x);                                                                                               \
    free(xr);                                                                                              \
    free(g);                                                                                               \
    free(gr);                                                                                              \
  }
ZP_CHECK(float, f32)
ZP_CHECK(double, f64)

START_TEST(passes_give_the_bits_of_their_formulas) {
  check_f32();
  check_f64();
}
END_TEST

static Suite *reg_zpass_suite(void) {
  Suite *s = suite_create("reg_zpass");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, passes_give_the_bits_of_their_formulas);
  suite_add_tcase(s, tc);
  return s;
}

VR_TEST_MAIN(reg_zpass_suite)
