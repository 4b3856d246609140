/* barlow.c: Barlow Twins over consecutive view pairs.
 *
 * Kernel arguments of VR_OP_BARLOW (every device implements the same):
 *   forward: in[0] = z, V x B x D contiguous (f32 or f64), V >= 2; f[OFFDIAG] = off-diagonal weight.
 *            Per view zn = (z - mean_b z) / (std_unbiased + 1e-6); for pairs (v, v+1),
 *            C = zn_v^T zn_{v+1} / B, l = sum_d (C_dd - 1)^2 + f[OFFDIAG] sum_{d != e} C_de^2.
 *            out[0] = mean of l over the V - 1 pairs, out[1] = NULL, out[2] = dL/dz or NULL.
 *   backward: in[0] = upstream gradient (0-dim), in[1] = the saved dL/dz; out[0] = their product.
 * With M = dl/dC (2 (C_dd - 1) on the diagonal, 2 f[OFFDIAG] C_de off it), dl/dzn_v = zn_{v+1} M^T / B,
 * dl/dzn_{v+1} = zn_v M / B, then back through the standardisation. */
#include "reg.h"
#include <math.h>

vr_status vr_barlow(const vr_tensor *z, double offdiag_weight, vr_tensor **loss) {
  VR_CHECK_OUT(loss);
  *loss = NULL;
  VR_TRY(vr_reg_check_z(__func__, z, 1));
  if (z->shape[0] < 2)
    return VR_FAIL(VR_E_SHAPE, "z: expected V >= 2 views (Barlow Twins pairs consecutive views), got V = %lld",
                   (long long)z->shape[0]);
  if (!isfinite(offdiag_weight))
    return VR_FAIL(VR_E_ARG, "offdiag_weight: expected a finite weight, got %g", offdiag_weight);
  vr_tensor *zc = NULL;
  VR_TRY(vr_contiguous_raw(z, &zc));
  vr_kernel_args a = {.in = {zc}, .n_in = 1, .f = {[VR_BARLOW_F_OFFDIAG] = offdiag_weight}};
  vr_status st = vr_reg_run("barlow", VR_OP_BARLOW, z, &a, 0, loss, NULL);
  vr_tensor_free(zc);
  return st;
}
