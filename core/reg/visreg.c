/* visreg.c: the VISReg regularizer, center + scale + sliced shape (shared/spec/REGULARIZERS.md).
 *
 * Kernel arguments of VR_OP_VISREG (every device implements the same):
 *   forward: in[0] = z, V x B x D contiguous (f32 or f64)
 *            in[1] = G, the raw D x K slice matrix, contiguous, z's dtype, or NULL: then the
 *                    kernel draws it from Philox (core/reg/slices.h) with i[SEED] = seed,
 *                    i[STEP] = step, i[K] = K; either way it normalises the columns,
 *                    W[:, k] = G[:, k] / (||G[:, k]|| + f[EPS])
 *            in[2] = q, the B quantile targets (vr_gauss_quantiles), z's dtype
 *            f[SCALE] = w_scale, f[SHAPE] = w_shape, f[CENTER] = w_center, f[EPS] = slice eps (1e-12)
 *            i[CHUNK] = slices per chunk (0: the kernel chooses); memory is O(V B D + V B chunk)
 *            out[0] = loss (0-dim), out[1] = terms {center, scale, shape} (3) or NULL,
 *            out[2] = dL/dz for an upstream gradient of 1 (V x B x D) or NULL when not needed.
 *            A non-finite z gives VR_E_VALUE.
 *   backward: in[0] = upstream gradient (0-dim), in[1] = the saved dL/dz; out[0] = their product.
 * The sort's backward is the scatter through the ranks: g[b, k] = 2 w_shape (P[b, k] - q_r(b)) /
 * (V B K), h = g W^T, dL/dz = (h - mean_b h) / sigma + center and scale terms. */
#include "reg.h"
#include <math.h>

vr_status vr_visreg(const vr_tensor *z, const vr_tensor *slices, int64_t K, uint64_t seed, uint64_t step,
                    double w_scale, double w_shape, double w_center, vr_tensor **loss, vr_tensor **terms) {
  VR_CHECK_OUT(loss);
  *loss = NULL;
  if (terms) *terms = NULL;
  VR_TRY(vr_reg_check_z(__func__, z, 1));
  int64_t k = 0;
  VR_TRY(vr_reg_check_slices(__func__, z, slices, K, &k));
  if (!isfinite(w_scale) || !isfinite(w_shape) || !isfinite(w_center))
    return VR_FAIL(VR_E_ARG, "w_scale, w_shape, w_center: expected finite weights, got %g, %g, %g", w_scale, w_shape,
                   w_center);
  vr_tensor *zc = NULL, *G = NULL, *q = NULL;
  vr_status st = VR_OK;
  VR_TRYG(vr_contiguous_raw(z, &zc));
  VR_TRYG(vr_reg_raw_slices(z, slices, &G));
  VR_TRYG(vr_reg_targets(z->shape[1], z->dtype, z->device, &q));
  vr_kernel_args a = {.in = {zc, G, q}, .n_in = 3, .f = {[VR_VISREG_F_SCALE] = w_scale, [VR_VISREG_F_SHAPE] = w_shape, [VR_VISREG_F_CENTER] = w_center, [VR_VISREG_F_EPS] = 1e-12},
                      .i = {[VR_SLICED_I_CHUNK] = 0, [VR_SLICED_I_SEED] = (int64_t)seed, [VR_SLICED_I_STEP] = (int64_t)step, [VR_SLICED_I_K] = k}};
  st = vr_reg_run("visreg", VR_OP_VISREG, z, &a, 3, loss, terms);
done:
  vr_tensor_free(zc);
  vr_tensor_free(G);
  vr_tensor_free(q);
  return st;
}
