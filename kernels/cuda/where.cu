/* where.cu: the CUDA kernel of VR_OP_WHERE (argument layout in core/ops/where.c): out = cond ? a : b
 * over any strides and broadcasts, element by element as bits (every dtype of the same size is
 * the same copy). */
#include "common.cuh"

namespace {

template <typename U>
__global__ void where_kernel(U *o, const uint8_t *c, const U *A, const U *B, vr_cu_geom g) {
  GRID_LOOP(i, g.numel) {
    bool t = c[vr_cu_offset(g, 1, i)] != 0;
    o[vr_cu_offset(g, 0, i)] = t ? A[vr_cu_offset(g, 2, i)] : B[vr_cu_offset(g, 3, i)];
  }
}
template <typename U> vr_status launch_where(const vr_kernel_args *a, const vr_cu_geom &g) {
  where_kernel<U><<<vr_cu_blocks(g.numel), VR_CU_THREADS, 0, vr_cuda_stream()>>>(
      (U *)vr_data(a->out[0]), (const uint8_t *)vr_data(a->in[0]), (const U *)vr_data(a->in[1]),
      (const U *)vr_data(a->in[2]), g);
  VR_CU_LAUNCHED("where_kernel");
  return VR_OK;
}
vr_status where_fwd(const vr_kernel_args *a) {
  if (a->in[0]->dtype != VR_U8) return VR_FAIL(VR_E_DTYPE, "cond: expected u8, got %s", vr_dtype_name(a->in[0]->dtype));
  vr_tensor *ts[4] = {a->out[0], a->in[0], a->in[1], a->in[2]};
  vr_cu_geom g;
  vr_cu_geom_init(&g, 4, ts);
  if (!g.numel) return VR_OK;
  switch (vr_dtype_size(a->out[0]->dtype)) {
  case 1: return launch_where<uint8_t>(a, g);
  case 2: return launch_where<uint16_t>(a, g);
  case 4: return launch_where<uint32_t>(a, g);
  default: return launch_where<uint64_t>(a, g);
  }
}

} // namespace

extern "C" {
vr_status vr_cuda_where_fwd(const vr_kernel_args *a) { return where_fwd(a); }
void vr_cuda_register_where(void) { vr_kernel_register(VR_OP_WHERE, VR_CUDA, vr_cuda_where_fwd, NULL); }
}
