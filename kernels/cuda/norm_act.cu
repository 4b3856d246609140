/* norm_act.cu: the fused activation of VR_OP_BATCHNORM (vr_batch_norm_act; layout in
 * core/ops/norm.c): forward i[4] = ReLU and in[5] = the residual, y = act(bn(x) + residual);
 * backward i[4] with in[5] = the forward's output, g = grad_y where it is > 0, and out[3] =
 * grad_residual = g. Around the plain batch-norm kernels of norm.cu: the forward adds and clamps in
 * one pass after the normalisation (in f32, one rounding; the normalisation rounded once before,
 * as the separate ops do), the backward masks grad_y in one pass (writing grad_residual beside it)
 * before the plain backward. That is one pass over the activations for the add and the ReLU in
 * each direction instead of two or three. */
#include "common.cuh"

namespace {

template <typename T> __global__ void act_fwd_k(T *y, const T *__restrict__ r, int relu, int64_t n) {
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < n; e += (int64_t)gridDim.x * blockDim.x) {
    typename vr_cu_acc<T>::type v = vr_cu_ld<T>(y[e]);
    if (r) v += vr_cu_ld<T>(r[e]);
    if (relu && !(v > 0) && v == v) v = 0; /* vr_relu's: NaN kept, -0 to +0 */
    y[e] = vr_cu_st<T>(v);
  }
}

/* g = grad_y where out > 0, else 0; gr (may be NULL) = g */
template <typename T>
__global__ void act_bwd_k(const T *__restrict__ gy, const T *__restrict__ out, T *g, T *gr, int relu, int64_t n) {
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < n; e += (int64_t)gridDim.x * blockDim.x) {
    T v = gy[e];
    if (relu && !(vr_cu_ld<T>(out[e]) > 0)) v = vr_cu_st<T>(0);
    g[e] = v;
    if (gr) gr[e] = v;
  }
}

template <typename T> vr_status act_fwd(const vr_kernel_args *a) {
  int64_t n = vr_tensor_numel(a->out[0]);
  const vr_tensor *r = a->n_in > 5 ? a->in[5] : nullptr;
  act_fwd_k<T><<<vr_cu_blocks(n), VR_CU_THREADS, 0, vr_cuda_stream()>>>((T *)vr_data(a->out[0]),
                                                                        r ? (const T *)vr_data(r) : nullptr, (int)a->i[4], n);
  VR_CU_LAUNCHED("batch norm activation");
  return VR_OK;
}

template <typename T> vr_status act_bwd(const vr_kernel_args *a, vr_tensor *g) {
  int64_t n = vr_tensor_numel(g);
  vr_tensor *gr = a->n_out > 3 ? a->out[3] : nullptr;
  const T *out = a->i[4] ? (const T *)vr_data(a->in[5]) : nullptr;
  act_bwd_k<T><<<vr_cu_blocks(n), VR_CU_THREADS, 0, vr_cuda_stream()>>>(
      (const T *)vr_data(a->in[0]), out, (T *)vr_data(g), gr ? (T *)vr_data(gr) : nullptr, (int)a->i[4], n);
  VR_CU_LAUNCHED("batch norm activation backward");
  return VR_OK;
}

} // namespace

vr_status vr_cu_bn_act_fwd(const vr_kernel_args *a, vr_status (*plain)(const vr_kernel_args *)) {
  VR_TRY(plain(a));
  const vr_tensor *r = a->n_in > 5 ? a->in[5] : nullptr;
  if (!r && !a->i[4]) return VR_OK;
  if (!vr_tensor_numel(a->out[0])) return VR_OK;
  VR_CU_FLOAT_SWITCH(a->out[0]->dtype, "x", return act_fwd<T>(a));
  return VR_OK;
}

vr_status vr_cu_bn_act_bwd(const vr_kernel_args *a, vr_status (*plain)(const vr_kernel_args *)) {
  vr_tensor *gr = a->n_out > 3 ? a->out[3] : nullptr;
  if (!a->i[4] && !gr) return plain(a);
  vr_tensor *g = nullptr;
  VR_TRY(vr_tensor_alloc_like(a->in[0], &g));
  vr_status st = VR_OK;
  if (vr_tensor_numel(g)) switch (g->dtype) { /* float dtypes only (the front-end checks) */
    case VR_F32: st = act_bwd<float>(a, g); break;
    case VR_F64: st = act_bwd<double>(a, g); break;
    default: st = act_bwd<vr_bf16>(a, g); break;
    }
  if (!st) {
    vr_kernel_args b = *a;
    b.in[0] = g;
    st = plain(&b);
  }
  vr_tensor_free(g);
  return st;
}
