/* swd.c: the plain sliced Wasserstein distance to N(0, 1) on raw z (no centring, no scaling).
 *
 * Kernel arguments of VR_OP_SWD (every device implements the same):
 *   forward: in[0] = z, V x B x D contiguous (f32 or f64); in[1] = G, raw D x K slices,
 *            contiguous, z's dtype, or NULL: then drawn by the kernel (core/reg/slices.h) from
 *            i[SEED] = seed, i[STEP] = step, i[K] = K; normalised by the kernel with f[EPS] (1e-6):
 *            W[:, k] = G[:, k] / (||G[:, k]|| + f[EPS]); in[2] = q, the B quantile targets.
 *            i[CHUNK] = slices per chunk (0: the kernel chooses).
 *            out[0] = loss (0-dim), out[1] = NULL, out[2] = dL/dz (upstream 1) or NULL.
 *   backward: in[0] = upstream gradient (0-dim), in[1] = the saved dL/dz; out[0] = their product.
 * L = mean_{v,i,k} (sort_b (z W)[v, :, k]_i - q_i)^2; dL/dz = g W^T with g scattered through
 * the ranks, g[b, k] = 2 (P[b, k] - q_r(b)) / (V B K). */
#include "reg.h"

vr_status vr_swd(const vr_tensor *z, const vr_tensor *slices, int64_t K, uint64_t seed, uint64_t step,
                 vr_tensor **loss) {
  VR_CHECK_OUT(loss);
  *loss = NULL;
  VR_TRY(vr_reg_check_z(__func__, z, 1));
  int64_t k = 0;
  VR_TRY(vr_reg_check_slices(__func__, z, slices, K, &k));
  vr_tensor *zc = NULL, *G = NULL, *q = NULL;
  vr_status st = VR_OK;
  VR_TRYG(vr_contiguous_raw(z, &zc));
  VR_TRYG(vr_reg_raw_slices(z, slices, &G));
  VR_TRYG(vr_reg_targets(z->shape[1], z->dtype, z->device, &q));
  vr_kernel_args a = {.in = {zc, G, q}, .n_in = 3, .f = {[VR_VISREG_F_SHAPE] = 1, [VR_VISREG_F_EPS] = 1e-6},
                      .i = {[VR_SLICED_I_CHUNK] = 0, [VR_SLICED_I_SEED] = (int64_t)seed, [VR_SLICED_I_STEP] = (int64_t)step, [VR_SLICED_I_K] = k}};
  st = vr_reg_run("swd", VR_OP_SWD, z, &a, 0, loss, NULL);
done:
  vr_tensor_free(zc);
  vr_tensor_free(G);
  vr_tensor_free(q);
  return st;
}
