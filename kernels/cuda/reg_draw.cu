/* reg_draw.cu: the slice matrices of the sliced regularizers on the device, the same numbers as
 * the CPU (kernels/cpu/reg_draw.c): the raw draws through core/reg/slices.h (Philox, Box-Muller with
 * branch-free polynomials), then the column normalisation W = G / (||G|| + eps) of reg_colstats.cu
 * (norms summed in double). This file is compiled with -fmad=false (see the Makefile) so that no
 * product-sum is fused into an FMA, which the C build (-std=c11) never does either. */
#include "reg.cuh"
#include "../../core/reg/slices.h"

namespace {

template <typename T> __global__ void draw_k(uint64_t seed, uint64_t step, int64_t n, T *G) {
  int64_t np = (n + 1) / 2;
  for (int64_t p = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; p < np; p += (int64_t)gridDim.x * blockDim.x) {
    double n0, n1;
    vr_reg_slice_pair(seed, step, (uint64_t)p, &n0, &n1);
    G[2 * p] = (T)n0;
    if (2 * p + 1 < n) G[2 * p + 1] = (T)n1;
  }
}

template <typename T> vr_status slices_typed(const vr_kernel_args *a, int64_t D, int64_t K, double eps, T *W) {
  cudaStream_t s = vr_cuda_stream();
  const T *G = W;
  if (a->in[1]) {
    G = (const T *)vr_data(a->in[1]);
  } else {
    draw_k<T><<<vr_cu_blocks((D * K + 1) / 2), VR_CU_THREADS, 0, s>>>((uint64_t)a->i[2], (uint64_t)a->i[3], D * K, W);
    VR_CU_LAUNCHED("slice draw");
  }
  return vr_cu_col_normalize(sizeof(T) == 8 ? VR_F64 : VR_F32, G, D, K, eps, W);
}

} // namespace

vr_status vr_cu_reg_slices(const vr_kernel_args *a, vr_dtype dt, int64_t D, int64_t K, double eps, void *W) {
  if (a->in[1] && (a->in[1]->dtype != dt || a->in[1]->ndim != 2 || a->in[1]->shape[0] != D || a->in[1]->shape[1] != K))
    return VR_FAIL(VR_E_SHAPE, "slices: expected a contiguous %lld x %lld %s matrix", (long long)D, (long long)K,
                   vr_dtype_name(dt));
  if (dt == VR_F32) return slices_typed<float>(a, D, K, eps, (float *)W);
  return slices_typed<double>(a, D, K, eps, (double *)W);
}
