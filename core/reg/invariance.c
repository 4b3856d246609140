/* invariance.c: the invariance term, every view against the mean of the G global views (not
 * detached): L = mean_{v,b,d} (z[v,b,d] - m[b,d])^2, m = mean_{g<G} z[g]. The training objective
 * mixes it with a regularizer, lambda L_reg + (1 - lambda) L_inv, by composing public ops
 * (vr_mul_scalar, vr_add); see tools/cmd_loss.c.
 *
 * Kernel arguments of VR_OP_INVARIANCE (every device implements the same):
 *   forward: in[0] = z, V x B x D contiguous (f32 or f64); i[GLOBAL] = G, 1 <= G <= V.
 *            out[0] = L (0-dim), out[1] = NULL, out[2] = dL/dz or NULL:
 *            dL/dz_v = 2 (z_v - m) / (V B D) - [v < G] 2 sum_u (z_u - m) / (G V B D).
 *   backward: in[0] = upstream gradient (0-dim), in[1] = the saved dL/dz; out[0] = their product. */
#include "reg.h"

vr_status vr_invariance(const vr_tensor *z, int global_views, vr_tensor **loss) {
  VR_CHECK_OUT(loss);
  *loss = NULL;
  VR_TRY(vr_reg_check_z(__func__, z, 1));
  if (global_views < 1 || global_views > z->shape[0])
    return VR_FAIL(VR_E_ARG, "global_views: expected 1 <= G <= V = %lld, got %d", (long long)z->shape[0],
                   global_views);
  vr_tensor *zc = NULL;
  VR_TRY(vr_contiguous_raw(z, &zc));
  vr_kernel_args a = {.in = {zc}, .n_in = 1, .i = {[VR_INVARIANCE_I_GLOBAL] = global_views}};
  vr_status st = vr_reg_run("invariance", VR_OP_INVARIANCE, z, &a, 0, loss, NULL);
  vr_tensor_free(zc);
  return st;
}
