/* where.cu: CUDA where(cond, a, b) with the argument layout of core/ops/where.c: in[0] cond (u8),
 * in[1] a, in[2] b, each a view expanded to out's shape (stride 0 on broadcast dims, any strides
 * otherwise); out[0] contiguous, a's dtype. out = cond != 0 ? a : b. Elements are moved as bits, so
 * every dtype is exact. */
#include "more.cuh"

namespace {

template <typename U, bool Contig>
__global__ void where_k(U *__restrict__ o, const uint8_t *__restrict__ c, const U *__restrict__ x, const U *__restrict__ y,
                        vr_cu_geom g) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < g.numel; i += (int64_t)gridDim.x * blockDim.x) {
    if (Contig) {
      o[i] = c[i] ? x[i] : y[i];
    } else {
      o[vr_cu_offset(g, 0, i)] = c[vr_cu_offset(g, 1, i)] ? x[vr_cu_offset(g, 2, i)] : y[vr_cu_offset(g, 3, i)];
    }
  }
}

template <typename U> vr_status where_launch(const vr_kernel_args *a, const vr_cu_geom &g) {
  cudaStream_t s = vr_cuda_stream();
  U *o = (U *)vr_data(a->out[0]);
  const uint8_t *c = (const uint8_t *)vr_data(a->in[0]);
  const U *x = (const U *)vr_data(a->in[1]), *y = (const U *)vr_data(a->in[2]);
  if (g.contiguous)
    where_k<U, true><<<vr_cu_blocks(g.numel), VR_CU_THREADS, 0, s>>>(o, c, x, y, g);
  else
    where_k<U, false><<<vr_cu_blocks(g.numel), VR_CU_THREADS, 0, s>>>(o, c, x, y, g);
  VR_CU_LAUNCHED("where");
  return VR_OK;
}

vr_status where_fwd(const vr_kernel_args *a) {
  if (a->in[0]->dtype != VR_U8) return VR_FAIL(VR_E_DTYPE, "cond: expected u8, got %s", vr_dtype_name(a->in[0]->dtype));
  vr_tensor *ts[4] = {a->out[0], a->in[0], a->in[1], a->in[2]};
  vr_cu_geom g;
  vr_cu_geom_init(&g, 4, ts);
  if (!g.numel) return VR_OK;
  switch (vr_dtype_size(a->out[0]->dtype)) {
  case 1: return where_launch<uint8_t>(a, g);
  case 2: return where_launch<uint16_t>(a, g);
  case 4: return where_launch<uint32_t>(a, g);
  default: return where_launch<uint64_t>(a, g);
  }
}

} // namespace

extern "C" vr_status vr_cuda_where_fwd(const vr_kernel_args *a) { return where_fwd(a); }
