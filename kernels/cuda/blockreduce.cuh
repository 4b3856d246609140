/* blockreduce.cuh: deterministic block-wide reductions (fixed shared-memory tree, no atomics) and
 * loads of small parameter tensors of any float dtype. blockDim.x must be a power of two <= 1024. */
#ifndef VISREG_CUDA_BLOCKREDUCE_CUH
#define VISREG_CUDA_BLOCKREDUCE_CUH
#include "common.cuh"

struct vr_cu_sum_op {
  template <typename C> __device__ __forceinline__ static C apply(C a, C b) { return a + b; }
};
struct vr_cu_max_op {
  template <typename C> __device__ __forceinline__ static C apply(C a, C b) { return (b > a || b != b) ? b : a; }
};

/* every thread passes its value; every thread gets the block's result. sh holds blockDim.x values. */
template <typename Op, typename C> __device__ C vr_cu_block_reduce(C v, C *sh) {
  sh[threadIdx.x] = v;
  __syncthreads();
  for (int w = blockDim.x / 2; w > 0; w >>= 1) {
    if ((int)threadIdx.x < w) sh[threadIdx.x] = Op::apply(sh[threadIdx.x], sh[threadIdx.x + w]);
    __syncthreads();
  }
  C r = sh[0];
  __syncthreads(); /* sh may be reused right after */
  return r;
}

/* element i of a 1-D tensor of any float dtype given by pointer to element 0 and stride */
__device__ __forceinline__ double vr_cu_ld_any(const void *p, int dt, int64_t i) {
  switch (dt) {
  case VR_F32: return ((const float *)p)[i];
  case VR_F64: return ((const double *)p)[i];
  case VR_BF16: return vr_bf16_to_f(((const vr_bf16 *)p)[i]);
  }
  return 0;
}
__device__ __forceinline__ void vr_cu_st_any(void *p, int dt, int64_t i, double v) {
  switch (dt) {
  case VR_F32: ((float *)p)[i] = (float)v; break;
  case VR_F64: ((double *)p)[i] = v; break;
  case VR_BF16: ((vr_bf16 *)p)[i] = vr_f_to_bf16((float)v); break;
  }
}
#endif
