/* sigreg.c: SIGReg (LeJEPA): the Epps-Pulley statistic of each slice of raw z against N(0, 1).
 *
 * Kernel arguments of VR_OP_SIGREG (every device implements the same):
 *   forward: in[0] = z, V x B x D contiguous (f32 or f64); in[1] = G, raw D x K slices,
 *            contiguous, z's dtype, or NULL: then drawn by the kernel (core/reg/slices.h) from
 *            i[SEED] = seed, i[STEP] = step, i[K] = K; normalised by the kernel with f[EPS] (1e-12):
 *            W[:, k] = G[:, k] / (||G[:, k]|| + f[EPS]).
 *            f[TMAX] = t_max; i[CHUNK] = slices per chunk (0: the kernel chooses); i[KNOTS] = knots (>= 2).
 *            Knots t_j = t_max j / (knots - 1), trapezoid weights a_0 = a_last = dt, interior
 *            2 dt, phi_j = exp(-t_j^2 / 2). Per view and slice, x = z W,
 *            T = B sum_j a_j phi_j ((mean_b cos(t_j x) - phi_j)^2 + (mean_b sin(t_j x))^2);
 *            out[0] = mean over views and slices of T (0-dim), out[1] = NULL,
 *            out[2] = dL/dz (upstream 1) or NULL.
 *   backward: in[0] = upstream gradient (0-dim), in[1] = the saved dL/dz; out[0] = their product.
 * dT/dx_b = sum_j 2 a_j phi_j t_j (S_j cos(t_j x_b) - (C_j - phi_j) sin(t_j x_b)); dL/dz = g W^T. */
#include "reg.h"
#include <math.h>

vr_status vr_sigreg(const vr_tensor *z, const vr_tensor *slices, int64_t K, uint64_t seed, uint64_t step, int knots,
                    double t_max, vr_tensor **loss) {
  VR_CHECK_OUT(loss);
  *loss = NULL;
  VR_TRY(vr_reg_check_z(__func__, z, 1));
  int64_t k = 0;
  VR_TRY(vr_reg_check_slices(__func__, z, slices, K, &k));
  if (knots < 2 || knots > 4096) return VR_FAIL(VR_E_ARG, "knots: expected 2 <= knots <= 4096, got %d", knots);
  if (!(t_max > 0) || !isfinite(t_max)) return VR_FAIL(VR_E_ARG, "t_max: expected a finite t_max > 0, got %g", t_max);
  vr_tensor *zc = NULL, *G = NULL;
  vr_status st = VR_OK;
  VR_TRYG(vr_contiguous_raw(z, &zc));
  VR_TRYG(vr_reg_raw_slices(z, slices, &G));
  vr_kernel_args a = {.in = {zc, G}, .n_in = 2, .f = {[VR_SIGREG_F_TMAX] = t_max, [VR_SIGREG_F_EPS] = 1e-12},
                      .i = {[VR_SLICED_I_CHUNK] = 0, [VR_SIGREG_I_KNOTS] = knots, [VR_SLICED_I_SEED] = (int64_t)seed, [VR_SLICED_I_STEP] = (int64_t)step, [VR_SLICED_I_K] = k}};
  st = vr_reg_run("sigreg", VR_OP_SIGREG, z, &a, 0, loss, NULL);
done:
  vr_tensor_free(zc);
  vr_tensor_free(G);
  return st;
}
