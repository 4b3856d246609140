/* reg_draw.cu: the slice matrices of the sliced regularizers on the device, the same numbers as
 * the CPU (kernels/cpu/reg_draw.c): the raw draws through core/reg/slices.h (Philox, Box-Muller with
 * branch-free polynomials), then the column normalisation W = G / (||G|| + eps), norms summed in
 * double. Two launches: the column sums of squares (reg_slices.cuh's functors through colsum.cuh's
 * sums(), which also finishes each column's 1 / (norm + eps)) draw G into W as they read it, then
 * W is scaled in place. VISReg does both inside its statistics passes (reg_colstats.cu). Compiled
 * with -fmad=false (see reg_slices.cuh). */
#include "reg.cuh"
#include "reg_slices.cuh"

namespace {

/* W = G inv row by row (G may be W) */
template <typename T> __global__ void col_scale_k(const T *G, const double *inv, int64_t D, int64_t K, T *W) {
  for (int64_t r = blockIdx.x; r < D; r += gridDim.x) vr_cu_slice_scale_row(G, inv, K, W, r);
}

template <typename T> vr_status slices_typed(const vr_kernel_args *a, int64_t D, int64_t K, double eps, T *W) {
  const T *G = a->in[1] ? (const T *)vr_data(a->in[1]) : nullptr;
  vr_cu_buf ib;
  VR_TRY(ib.get(sizeof(double) * (size_t)K));
  VR_TRY(vr_colsum::sums(vr_cu_slice_terms<T>{G, W, (uint64_t)a->i[VR_SLICED_I_SEED], (uint64_t)a->i[VR_SLICED_I_STEP]},
                         vr_cu_inv_norm_fin{eps, ib.as<double>()}, 1, D, K));
  col_scale_k<T><<<(unsigned)(D < 65535 ? D : 65535), VR_CU_THREADS, 0, vr_cuda_stream()>>>(G ? G : W, ib.as<double>(), D,
                                                                                              K, W);
  VR_CU_LAUNCHED("slice normalisation");
  return VR_OK;
}

} // namespace

vr_status vr_cu_reg_slices_check(const vr_kernel_args *a, vr_dtype dt, int64_t D, int64_t K) {
  if (a->in[1] && (a->in[1]->dtype != dt || a->in[1]->ndim != 2 || a->in[1]->shape[0] != D || a->in[1]->shape[1] != K))
    return VR_FAIL(VR_E_SHAPE, "slices: expected a contiguous %lld x %lld %s matrix", (long long)D, (long long)K,
                   vr_dtype_name(dt));
  return VR_OK;
}

vr_status vr_cu_reg_slices(const vr_kernel_args *a, vr_dtype dt, int64_t D, int64_t K, double eps, void *W) {
  VR_TRY(vr_cu_reg_slices_check(a, dt, D, K));
  if (dt == VR_F32) return slices_typed<float>(a, D, K, eps, (float *)W);
  return slices_typed<double>(a, D, K, eps, (double *)W);
}
