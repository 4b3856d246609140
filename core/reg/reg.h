/* reg.h: what the regularizer front-ends (core/reg/) and their CPU kernels (kernels/cpu/reg_*.c)
 * share: the accurate erfinv and quantile targets, argument checks, the common autograd
 * backward, and the CPU rank sort. Formulas: shared/spec/REGULARIZERS.md.
 *
 * The design every regularizer follows: the forward kernel computes the loss, its terms and,
 * when autograd needs it, dL/dz for an upstream gradient of 1 (it already holds every
 * intermediate: the projections, the sort ranks, the Gram matrices). The node saves that
 * gradient (V x B x D, the size of z) and its backward calls the op's _bwd kernel, which scales
 * it by the upstream gradient. So a training step does the GEMMs and sorts once, and nothing of
 * size V x B x K outlives the forward call. */
#ifndef VISREG_REG_H
#define VISREG_REG_H
#include "../internal.h"
#include "reg_args.h"
#include <string.h>

/* q[i-1] = sqrt(2) erfinv(2i/(B+1) - 1), i = 1..B, in double */
void vr_reg_quantiles(int64_t B, double *q);
/* vr_gauss_quantiles(B, dtype, device), kept from an earlier call when there was one: a shared
 * tensor, read-only (vr_tensor_free it as usual) */
vr_status vr_reg_targets(int64_t B, vr_dtype dtype, vr_device device, vr_tensor **out);

/* checks shared by the front-ends; func names the public function in the messages */
vr_status vr_reg_check_z(const char *func, const vr_tensor *z, int64_t min_views);
/* slices: D x K raw matrix (or NULL with K >= 1); *k_out receives the number of slices */
vr_status vr_reg_check_slices(const char *func, const vr_tensor *z, const vr_tensor *slices, int64_t K,
                              int64_t *k_out);
/* slices made contiguous in z's dtype, or *out = NULL when slices is NULL: the kernel then draws
 * the raw matrix itself (slices.h) from i[SEED] = seed, i[STEP] = step, i[K] = K */
vr_status vr_reg_raw_slices(const vr_tensor *z, const vr_tensor *slices, vr_tensor **out);

/* Runs the forward kernel of op and wraps its outputs. The caller fills a (in, f, i) and the
 * number of terms; this allocates out[0] = loss (0-dim), out[1] = terms (n_terms, or NULL when
 * n_terms is 0 or terms is NULL) and out[2] = dL/dz (only when z needs grad), dispatches, and
 * records the node whose backward scales the saved gradient. */
vr_status vr_reg_run(const char *name, vr_op op, const vr_tensor *z, vr_kernel_args *a, int n_terms,
                     vr_tensor **loss, vr_tensor **terms);

/* ---- CPU helpers for the kernels ---- */
/* rank sort of n values (stable: ties keep index order). perm[i] receives the index of the i-th
 * smallest. work must hold 2 n uint64 and 2 n uint32 */
void vr_reg_argsort_f32(const float *x, int64_t n, uint32_t *perm, uint64_t *work, uint32_t *iwork);
/* the f32 sort's own output: n words (order key << 32 | index), ascending, in work or work + n
 * (work holds 2 n); vr_reg_key_value_f32 gives back the value of a word */
const uint64_t *vr_reg_sort_pairs_f32(const float *x, int64_t n, uint64_t *work);
static inline float vr_reg_key_value_f32(uint64_t w) {
  uint32_t k = (uint32_t)(w >> 32), u = (k & 0x80000000u) ? (k & 0x7fffffffu) : ~k;
  float f;
  memcpy(&f, &u, 4);
  return f;
}
/* the same words for 32 <= n <= 256 from a bitonic network in AVX-512 registers (in work), or
 * NULL (no AVX-512, another n, or values crowded into a few 24-bit prefixes): reg_sort_net.c */
const uint64_t *vr_reg_sort_net_f32(const float *x, int64_t n, uint64_t *work);
void vr_reg_argsort_f64(const double *x, int64_t n, uint32_t *perm, uint64_t *work, uint32_t *iwork);
/* VR_E_VALUE naming func when z (contiguous, f32 or f64, n elements) holds a NaN or an infinity */
vr_status vr_reg_check_finite(const char *func, const vr_tensor *z);
/* the raw D x K slice matrix of (seed, step) (slices.h), in parallel */
void vr_reg_draw_f32(uint64_t seed, uint64_t step, int64_t D, int64_t K, float *G);
void vr_reg_draw_f64(uint64_t seed, uint64_t step, int64_t D, int64_t K, double *G);
/* W[d, k] = G[d, k] / (||G[:, k]|| + eps), norms in double; W may be G */
void vr_reg_normalize_f32(const float *G, int64_t D, int64_t K, double eps, float *W);
void vr_reg_normalize_f64(const double *G, int64_t D, int64_t K, double eps, double *W);
/* one task of a kernel's own parallel region: columns k0 .. k1 - 1 (k1 - k0 <= VR_REG_COLS) of
 * W = the D x K slices, G's when G is given, else the drawn ones of (seed, step), divided by
 * (their norm + eps): the same bits as draw then normalize. The columns of a task stay in its
 * core's cache from the draw to the normalisation. */
#define VR_REG_COLS 64
/* VISReg's passes over a block of w <= 64 dims of one view of z (rows D apart), reg_zpass.c:
 * zstats writes mu, sigma, 1 / sigma of the block and zn = (z - mu) / sigma into x0; zgrad turns
 * the block g0 of dL/dP W^T into dL/dz (cc, sc: the center and scale terms' coefficients) */
void vr_reg_zstats_f32(const float *z0, int64_t B, int64_t D, int64_t w, double *mu, double *sig, double *isg, float *x0);
void vr_reg_zstats_f64(const double *z0, int64_t B, int64_t D, int64_t w, double *mu, double *sig, double *isg,
                       double *x0);
void vr_reg_zgrad_f32(float *g0, const float *z0, int64_t B, int64_t D, int64_t w, const double *mu, const double *sig,
                      double cc, double sc);
void vr_reg_zgrad_f64(double *g0, const double *z0, int64_t B, int64_t D, int64_t w, const double *mu,
                      const double *sig, double cc, double sc);
void vr_reg_unit_cols_f32(const float *G, uint64_t seed, uint64_t step, int64_t D, int64_t K, int64_t k0, int64_t k1,
                          double eps, float *W);
void vr_reg_unit_cols_f64(const double *G, uint64_t seed, uint64_t step, int64_t D, int64_t K, int64_t k0, int64_t k1,
                          double eps, double *W);
#endif
