/* slices.h: the raw slice draws, shared by the CPU kernels and (as device code) the CUDA ones so
 * that both devices draw identical slices. Element j = d K + k of the raw D x K matrix of a step
 * comes from the Philox block (seed, stream = step, counter = j / 2) by Box-Muller: with u1 in
 * (0, 1] from words 0-1 and u2 in [0, 1) from words 2-3, r = sqrt(-2 log u1), even j take
 * r cos(2 pi u2) and odd j take r sin(2 pi u2). Columns are then divided by (their norm + eps). */
#ifndef VISREG_REG_SLICES_H
#define VISREG_REG_SLICES_H
#include "../philox.h"

/* the two normals of pair p (elements 2p and 2p + 1) */
VR_HD void vr_reg_slice_pair(uint64_t seed, uint64_t step, uint64_t p, double *n0, double *n1) {
  uint32_t w[4];
  vr_philox_block(seed, step, p, w);
  double u1 = 1.0 - vr_philox_u01(w[0], w[1]), u2 = vr_philox_u01(w[2], w[3]);
  double r = sqrt(-2.0 * log(u1)), a = 6.283185307179586476925 * u2;
  *n0 = r * cos(a);
  *n1 = r * sin(a);
}
#endif
