/* slices.h: the raw slice draws, shared by the CPU kernels and (as device code) the CUDA ones so
 * that both devices draw identical slices. Element j = d K + k of the raw D x K matrix of a step
 * comes from the Philox block (seed, stream = step, counter = j / 2) by Box-Muller: with u1 in
 * (0, 1] from words 0-1 and u2 in [0, 1) from words 2-3, r = sqrt(-2 log u1), even j take
 * r cos(2 pi u2) and odd j take r sin(2 pi u2). Columns are then divided by (their norm + eps).
 * log, cos and sin are evaluated here by branch-free polynomials (errors near 1e-16), so that
 * the CPU loop vectorises and every device computes the same numbers. */
#ifndef VISREG_REG_SLICES_H
#define VISREG_REG_SLICES_H
#include "../philox.h"
#include <string.h>

/* log(u) for u in (0, 1]: u = m 2^e with m in [sqrt(1/2), sqrt(2)), log m = 2 atanh(s), s = (m-1)/(m+1) */
VR_HD double vr_reg_log01(double u) {
  uint64_t b, mb, eb;
  memcpy(&b, &u, 8);
  mb = (b & 0x000fffffffffffffull) | 0x3ff0000000000000ull;
  /* the exponent as a double without an int64 conversion (none in AVX2): 2^52 + e, minus 2^52 */
  eb = 0x4330000000000000ull | (b >> 52 & 0x7ff);
  double m, ef;
  memcpy(&m, &mb, 8);
  memcpy(&ef, &eb, 8);
  ef -= 4503599627370496.0 + 1023.0;
  double big = (double)(int)(m * 0.70710678118654752); /* 1 when m >= sqrt(2) (either side is fine at the edge) */
  m *= 1.0 - 0.5 * big; /* arithmetic, not a branch: big is random */
  ef += big;
  double s = (m - 1.0) / (m + 1.0), s2 = s * s; /* |s| <= 0.1716 */
  double p = 1.0 / 23;
  p = 1.0 / 21 + s2 * p;
  p = 1.0 / 19 + s2 * p;
  p = 1.0 / 17 + s2 * p;
  p = 1.0 / 15 + s2 * p;
  p = 1.0 / 13 + s2 * p;
  p = 1.0 / 11 + s2 * p;
  p = 1.0 / 9 + s2 * p;
  p = 1.0 / 7 + s2 * p;
  p = 1.0 / 5 + s2 * p;
  p = 1.0 / 3 + s2 * p;
  p = 1.0 + s2 * p;
  return ef * 0.6931471805599453094 + 2.0 * s * p;
}

/* cos and sin of 2 pi u for u in [0, 1): quadrant q = round(4u), x = (4u - q) pi / 2 in [-pi/4, pi/4] */
VR_HD void vr_reg_sincos2pi(double u, double *c, double *s) {
  double t = 4.0 * u, q = (double)(int)(t + 0.5), x = (t - q) * 1.5707963267948966192, x2 = x * x;
  double sn;
  sn = x + x * x2 * (-1.0 / 6.0 + x2 * (1.0 / 120.0 + x2 * (-1.0 / 5040.0 + x2 * (1.0 / 362880.0 + x2 * (-1.0 / 39916800.0 +
       x2 * (1.0 / 6227020800.0 + x2 * (-1.0 / 1307674368000.0 + x2 * (1.0 / 355687428096000.0))))))));
  double cs = 1.0 + x2 * (-0.5 + x2 * (1.0 / 24.0 + x2 * (-1.0 / 720.0 + x2 * (1.0 / 40320.0 + x2 * (-1.0 / 3628800.0 +
              x2 * (1.0 / 479001600.0 + x2 * (-1.0 / 87178291200.0 + x2 * (1.0 / 20922789888000.0))))))));
  /* rotate by k quarter turns: k odd swaps cos and sin, then k = 1, 2 negate the cosine and
   * k = 2, 3 the sine; arithmetic selects, not branches (k is random), and int conversions
   * rather than floor (values are >= 0), so that the loop vectorises */
  double k = q - 4.0 * (double)(int)(0.25 * q);          /* q mod 4, exact */
  double half = (double)(int)(0.5 * k), odd = k - 2.0 * half; /* k = 2 half + odd */
  double ev = 1.0 - odd; /* exact selects: one product is 0, the other exact */
  double rc = ev * cs + odd * sn, rs = ev * sn + odd * cs;
  *c = rc * (1.0 - k * (3.0 - k)); /* k = 1, 2: -1 */
  *s = rs * (1.0 - 2.0 * half);    /* k = 2, 3: -1 */
}

/* pair p before the root: r^2 = -2 log u1, and cos, sin of 2 pi u2 */
VR_HD void vr_reg_slice_parts(uint64_t seed, uint64_t step, uint64_t p, double *r2, double *c, double *s) {
  uint32_t w[4];
  vr_philox_block(seed, step, p, w);
  double u1 = 1.0 - vr_philox_u01(w[0], w[1]), u2 = vr_philox_u01(w[2], w[3]);
  *r2 = -2.0 * vr_reg_log01(u1);
  vr_reg_sincos2pi(u2, c, s);
}

/* the two normals of pair p (elements 2p and 2p + 1) */
VR_HD void vr_reg_slice_pair(uint64_t seed, uint64_t step, uint64_t p, double *n0, double *n1) {
  double r2, c, s;
  vr_reg_slice_parts(seed, step, p, &r2, &c, &s);
  double r = sqrt(r2);
  *n0 = r * c;
  *n1 = r * s;
}
#endif
