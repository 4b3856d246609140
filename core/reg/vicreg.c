/* vicreg.c: VICReg, the official two-view form (vr_vicreg) and the VISReg code's pooled,
 * squared-hinge variant (vr_vicreg_pooled).
 *
 * Kernel arguments of VR_OP_VICREG (every device implements the same):
 *   forward: in[0] = z, 2 x B x D contiguous (f32 or f64); f[INV] = w_inv, f[VAR] = w_var, f[COV] = w_cov.
 *            Per view x = z_v - mean_b z_v, std_d = sqrt(var_unbiased_d + 1e-4),
 *            var_v = mean_d relu(1 - std_d), cov_v = sum_{d != e} C_de^2 / D with C = x^T x / (B-1).
 *            out[0] = w_inv mean (z0 - z1)^2 + w_var (var_0 + var_1) / 2 + w_cov (cov_0 + cov_1),
 *            out[1] = terms {inv, var, cov} (unweighted, 3) or NULL, out[2] = dL/dz or NULL.
 * Kernel arguments of VR_OP_VICREG_POOLED:
 *   forward: in[0] = z, V x B x D contiguous, pooled into one N = V B row batch; f[VAR] = w_var,
 *            f[COV] = w_cov. x = z - mean, std_d = sqrt(var_unbiased_d) + 1e-6,
 *            var = mean_d relu(1 - std_d)^2, cov = sum_{d != e} C_de^2 / D with C = x^T x / (N-1).
 *            out[0] = w_var var + w_cov cov, out[1] = terms {var, cov} (2) or NULL, out[2] = dL/dz.
 *   backward (both): in[0] = upstream gradient (0-dim), in[1] = the saved dL/dz; out[0] = product.
 * The covariance gradient is 4 x C_off / (D (N - 1)); both gradients are already centred (x has
 * zero column means), so no mean correction is needed. */
#include "reg.h"
#include <math.h>

vr_status vr_vicreg(const vr_tensor *z, double w_inv, double w_var, double w_cov, vr_tensor **loss, vr_tensor **terms) {
  VR_CHECK_OUT(loss);
  *loss = NULL;
  if (terms) *terms = NULL;
  VR_TRY(vr_reg_check_z(__func__, z, 1));
  if (z->shape[0] != 2)
    return VR_FAIL(VR_E_SHAPE, "z: expected exactly V = 2 views for the official VICReg, got V = %lld "
                   "(vr_vicreg_pooled pools any number of views)", (long long)z->shape[0]);
  if (!isfinite(w_inv) || !isfinite(w_var) || !isfinite(w_cov))
    return VR_FAIL(VR_E_ARG, "w_inv, w_var, w_cov: expected finite weights, got %g, %g, %g", w_inv, w_var, w_cov);
  vr_tensor *zc = NULL;
  VR_TRY(vr_contiguous_raw(z, &zc));
  vr_kernel_args a = {.in = {zc}, .n_in = 1, .f = {[VR_VICREG_F_INV] = w_inv, [VR_VICREG_F_VAR] = w_var, [VR_VICREG_F_COV] = w_cov}};
  vr_status st = vr_reg_run("vicreg", VR_OP_VICREG, z, &a, 3, loss, terms);
  vr_tensor_free(zc);
  return st;
}

vr_status vr_vicreg_pooled(const vr_tensor *z, double w_var, double w_cov, vr_tensor **loss, vr_tensor **terms) {
  VR_CHECK_OUT(loss);
  *loss = NULL;
  if (terms) *terms = NULL;
  VR_TRY(vr_reg_check_z(__func__, z, 1));
  if (!isfinite(w_var) || !isfinite(w_cov))
    return VR_FAIL(VR_E_ARG, "w_var, w_cov: expected finite weights, got %g, %g", w_var, w_cov);
  vr_tensor *zc = NULL;
  VR_TRY(vr_contiguous_raw(z, &zc));
  vr_kernel_args a = {.in = {zc}, .n_in = 1, .f = {[VR_VICREG_POOLED_F_VAR] = w_var, [VR_VICREG_POOLED_F_COV] = w_cov}};
  vr_status st = vr_reg_run("vicreg_pooled", VR_OP_VICREG_POOLED, z, &a, 2, loss, terms);
  vr_tensor_free(zc);
  return st;
}
