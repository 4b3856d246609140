/* reg_draw.cu: the slice matrices of the sliced regularizers on the device, the same numbers as
 * the CPU (kernels/cpu/reg_draw.c): the raw draws through core/reg/slices.h (Philox, Box-Muller with
 * branch-free polynomials), then the column normalisation W = G / (||G|| + eps), norms summed in
 * double. Two launches: the column sums of squares (colsum.cuh's sums(), which also finishes each
 * column's 1 / (norm + eps)) draw G into W as they read it, then W is scaled in place (VISReg
 * leaves that to its standardisation pass, reg_colstats.cu). This file is
 * compiled with -fmad=false (see the Makefile) so that no product-sum is fused into an FMA, which
 * the C build (-std=c11) never does either. */
#include "colsum.cuh"
#include "reg.cuh"
#include "../../core/reg/slices.h"

namespace {

/* the terms {g, g^2} of element i of G: drawn (element i of the Philox pair i / 2, stored in W)
 * when G is NULL, else read from G */
template <typename T> struct slice_terms {
  const T *G;
  T *W;
  uint64_t seed, step;
  __device__ double2 operator()(int64_t i, int64_t, int64_t) const {
    T g;
    if (G) {
      g = G[i];
    } else {
      double n0, n1;
      vr_reg_slice_pair(seed, step, (uint64_t)(i >> 1), &n0, &n1);
      g = (T)(i & 1 ? n1 : n0);
      W[i] = g;
    }
    double v = (double)g;
    return make_double2(v, v * v);
  }
};
struct inv_norm_fin { /* inv[k] = 1 / (||G[:, k]|| + eps) */
  double eps, *inv;
  __device__ void operator()(int64_t k, double2 t) const { inv[k] = 1.0 / (sqrt(t.y) + eps); }
};

/* W = G inv row by row (G may be W) */
template <typename T> __global__ void col_scale_k(const T *G, const double *inv, int64_t D, int64_t K, T *W) {
  for (int64_t r = blockIdx.x; r < D; r += gridDim.x) vr_cu_slice_scale_row(G, inv, K, W, r);
}

template <typename T> vr_status slices_typed(const vr_kernel_args *a, int64_t D, int64_t K, double eps, T *W, double *inv) {
  const T *G = a->in[1] ? (const T *)vr_data(a->in[1]) : nullptr;
  vr_cu_buf ib;
  if (!inv) VR_TRY(ib.get(sizeof(double) * (size_t)K));
  double *iv = inv ? inv : ib.as<double>();
  VR_TRY(vr_colsum::sums(slice_terms<T>{G, W, (uint64_t)a->i[2], (uint64_t)a->i[3]}, inv_norm_fin{eps, iv}, 1, D, K));
  if (inv) return VR_OK; /* the caller scales */
  col_scale_k<T><<<(unsigned)(D < 65535 ? D : 65535), VR_CU_THREADS, 0, vr_cuda_stream()>>>(G ? G : W, iv, D, K, W);
  VR_CU_LAUNCHED("slice normalisation");
  return VR_OK;
}

} // namespace

vr_status vr_cu_reg_slices(const vr_kernel_args *a, vr_dtype dt, int64_t D, int64_t K, double eps, void *W, double *inv) {
  if (a->in[1] && (a->in[1]->dtype != dt || a->in[1]->ndim != 2 || a->in[1]->shape[0] != D || a->in[1]->shape[1] != K))
    return VR_FAIL(VR_E_SHAPE, "slices: expected a contiguous %lld x %lld %s matrix", (long long)D, (long long)K,
                   vr_dtype_name(dt));
  if (dt == VR_F32) return slices_typed<float>(a, D, K, eps, (float *)W, inv);
  return slices_typed<double>(a, D, K, eps, (double *)W, inv);
}
