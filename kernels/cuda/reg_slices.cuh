/* reg_slices.cuh: the column pass of the slice matrices as colsum.cuh functors, shared by
 * reg_draw.cu (SWD, SIGReg: its own launch) and reg_colstats.cu (VISReg: in the launch of its
 * statistics). The draws are core/reg/slices.h's, the CPU's numbers, which holds only in files
 * compiled with -fmad=false (see the Makefile): no product-sum fused into an FMA, as in the C build. */
#ifndef VISREG_CUDA_REG_SLICES_CUH
#define VISREG_CUDA_REG_SLICES_CUH
#include "../../core/reg/slices.h"
#include "colsum.cuh"

/* the terms {g, g^2} of element i of the raw D x K matrix: drawn (element i of the Philox pair
 * i / 2, stored in W) when G is NULL, else read from G */
template <typename T> struct vr_cu_slice_terms {
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
struct vr_cu_inv_norm_fin { /* inv[k] = 1 / (||G[:, k]|| + eps) */
  double eps, *inv;
  __device__ void operator()(int64_t k, double2 t) const { inv[k] = 1.0 / (sqrt(t.y) + eps); }
};
#endif
