/* index.cu: CUDA index_select (fwd, bwd), gather, scatter_add and one_hot, with the argument
 * layout of core/ops/index.c: every tensor contiguous, indices i64 or i32 already range-checked,
 * out[0] fresh; i[0] = dim (wrapped), one_hot: i[0] = C.
 *   INDEX_SELECT fwd: out[o, k, i] = x[o, index[k], i]; bwd: grad_x = 0, then
 *     grad_x[o, index[k], i] += grad_out[o, k, i] with k increasing.
 *   GATHER: out[p] = x[p with dim -> index[p]] over the index's shape.
 *   SCATTER_ADD: out = x, then out[p with dim -> index[p]] += src[p] over the index's shape,
 *     adding along dim in increasing order.
 *   ONE_HOT: out[..., c] = (c == index[...]).
 * The accumulating kernels give each thread one line and walk it in order: no atomics,
 * deterministic, the CPU's order. */
#include "common.cuh"

namespace {

#define LOOP(i, n) for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < (n); i += (int64_t)gridDim.x * blockDim.x)

__device__ __forceinline__ int64_t ld_index(const void *p, int is64, int64_t k) {
  return is64 ? ((const int64_t *)p)[k] : (int64_t)((const int32_t *)p)[k];
}

/* outer / size at dim / inner of a contiguous tensor */
void split3(const vr_tensor *t, int dim, int64_t *outer, int64_t *n, int64_t *inner) {
  *outer = 1, *inner = 1, *n = t->ndim ? t->shape[dim] : 1;
  for (int d = 0; d < dim && d < t->ndim; d++) *outer *= t->shape[d];
  for (int d = dim + 1; d < t->ndim; d++) *inner *= t->shape[d];
}

/* ---- index_select ---- */
template <typename U>
__global__ void isel_fwd(const U *x, U *out, const void *ix, int is64, int64_t outer, int64_t nx, int64_t K, int64_t inner) {
  LOOP(e, outer * K * inner) {
    int64_t i = e % inner, k = (e / inner) % K, o = e / (inner * K);
    out[e] = x[(o * nx + ld_index(ix, is64, k)) * inner + i];
  }
}
template <typename T>
__global__ void isel_bwd(const T *g, T *gx, const void *ix, int is64, int64_t outer, int64_t nx, int64_t K, int64_t inner) {
  typedef typename vr_cu_acc<T>::type C;
  (void)sizeof(C);
  LOOP(l, outer * inner) {
    int64_t o = l / inner, i = l - o * inner;
    for (int64_t r = 0; r < nx; r++) gx[(o * nx + r) * inner + i] = vr_cu_st<T>(0);
    for (int64_t k = 0; k < K; k++) {
      int64_t dst = (o * nx + ld_index(ix, is64, k)) * inner + i;
      gx[dst] = vr_cu_st<T>(vr_cu_ld<T>(gx[dst]) + vr_cu_ld<T>(g[(o * K + k) * inner + i]));
    }
  }
}

template <typename U> vr_status launch_isel(const vr_kernel_args *a, int64_t outer, int64_t nx, int64_t K, int64_t inner) {
  isel_fwd<U><<<vr_cu_blocks(outer * K * inner), VR_CU_THREADS, 0, vr_cuda_stream()>>>(
      (const U *)vr_data(a->in[0]), (U *)vr_data(a->out[0]), vr_data(a->in[1]), a->in[1]->dtype == VR_I64, outer, nx, K, inner);
  VR_CU_LAUNCHED("index_select");
  return VR_OK;
}

vr_status index_select_fwd(const vr_kernel_args *a) {
  int dim = (int)a->i[0];
  int64_t outer, nx, inner, K = vr_tensor_numel(a->in[1]);
  split3(a->in[0], dim, &outer, &nx, &inner);
  if (!outer || !K || !inner) return VR_OK;
  switch (vr_dtype_size(a->in[0]->dtype)) {
  case 1: return launch_isel<uint8_t>(a, outer, nx, K, inner);
  case 2: return launch_isel<uint16_t>(a, outer, nx, K, inner);
  case 4: return launch_isel<uint32_t>(a, outer, nx, K, inner);
  default: return launch_isel<uint64_t>(a, outer, nx, K, inner);
  }
}
vr_status index_select_bwd(const vr_kernel_args *a) {
  int dim = (int)a->i[0];
  vr_tensor *gx = a->out[0];
  int64_t outer, nx, inner, K = vr_tensor_numel(a->in[1]);
  split3(gx, dim, &outer, &nx, &inner);
  if (!vr_tensor_numel(gx)) return VR_OK;
  VR_CU_FLOAT_SWITCH(gx->dtype, "grad_x",
                     isel_bwd<T><<<vr_cu_blocks(outer * inner), VR_CU_THREADS, 0, vr_cuda_stream()>>>(
                         (const T *)vr_data(a->in[0]), (T *)vr_data(gx), vr_data(a->in[1]), a->in[1]->dtype == VR_I64, outer,
                         nx, K, inner));
  VR_CU_LAUNCHED("index_select backward");
  return VR_OK;
}

/* ---- gather / scatter_add: shapes and contiguous strides of up to 8 dims ---- */
struct nd {
  int ndim, dim;
  int64_t shape[VR_MAX_DIMS];   /* the index's shape */
  int64_t xs[VR_MAX_DIMS];      /* strides of x (gather) or out (scatter) */
  int64_t ss[VR_MAX_DIMS];      /* strides of src (scatter) */
};
nd nd_of(const vr_tensor *index, const vr_tensor *x, const vr_tensor *src, int dim) {
  nd g;
  memset(&g, 0, sizeof g);
  g.ndim = index->ndim;
  g.dim = dim;
  for (int d = 0; d < index->ndim; d++) {
    g.shape[d] = index->shape[d];
    g.xs[d] = x->stride[d];
    g.ss[d] = src ? src->stride[d] : 0;
  }
  return g;
}
template <typename U> __global__ void gather_k(const U *x, U *out, const void *ix, int is64, nd g, int64_t n) {
  LOOP(e, n) {
    int64_t r = e, off = 0;
    for (int d = g.ndim - 1; d >= 0; d--) {
      int64_t c = r % g.shape[d];
      r /= g.shape[d];
      off += (d == g.dim ? ld_index(ix, is64, e) : c) * g.xs[d];
    }
    out[e] = x[off];
  }
}
template <typename U> vr_status launch_gather(const vr_kernel_args *a, const nd &g, int64_t n) {
  gather_k<U><<<vr_cu_blocks(n), VR_CU_THREADS, 0, vr_cuda_stream()>>>((const U *)vr_data(a->in[0]), (U *)vr_data(a->out[0]),
                                                                        vr_data(a->in[1]), a->in[1]->dtype == VR_I64, g, n);
  VR_CU_LAUNCHED("gather");
  return VR_OK;
}
vr_status gather_fwd(const vr_kernel_args *a) {
  const vr_tensor *x = a->in[0], *ix = a->in[1];
  int64_t n = vr_tensor_numel(ix);
  if (!n) return VR_OK;
  nd g = nd_of(ix, x, nullptr, (int)a->i[0]);
  if (ix->ndim == 0) return VR_FAIL(VR_E_SHAPE, "index: expected at least 1 dim");
  switch (vr_dtype_size(x->dtype)) {
  case 1: return launch_gather<uint8_t>(a, g, n);
  case 2: return launch_gather<uint16_t>(a, g, n);
  case 4: return launch_gather<uint32_t>(a, g, n);
  default: return launch_gather<uint64_t>(a, g, n);
  }
}

/* one thread per line of the index along dim; the line's additions in order */
template <typename T> __global__ void scatter_k(T *out, const T *src, const void *ix, int is64, nd g, int64_t lines) {
  typedef typename vr_cu_acc<T>::type C;
  int64_t L = g.shape[g.dim];
  LOOP(l, lines) {
    /* coordinates of line l over the index's dims without dim */
    int64_t r = l, ob = 0, sb = 0, ib = 0, istride = 1, ist_dim = 0;
    for (int d = g.ndim - 1; d >= 0; d--) {
      if (d == g.dim) {
        ist_dim = istride;
        istride *= g.shape[d];
        continue;
      }
      int64_t c = r % g.shape[d];
      r /= g.shape[d];
      ob += c * g.xs[d];
      sb += c * g.ss[d];
      ib += c * istride;
      istride *= g.shape[d];
    }
    for (int64_t j = 0; j < L; j++) {
      int64_t t = ld_index(ix, is64, ib + j * ist_dim);
      T *dst = out + ob + t * g.xs[g.dim];
      *dst = vr_cu_st<T>((C)vr_cu_ld<T>(*dst) + (C)vr_cu_ld<T>(src[sb + j * g.ss[g.dim]]));
    }
  }
}
vr_status scatter_add_fwd(const vr_kernel_args *a) {
  const vr_tensor *x = a->in[0], *ix = a->in[1], *src = a->in[2];
  vr_tensor *out = a->out[0];
  cudaStream_t s = vr_cuda_stream();
  size_t nb = (size_t)vr_tensor_numel(x) * vr_dtype_size(x->dtype);
  if (nb) VR_CU(cudaMemcpyAsync(vr_data(out), vr_data(x), nb, cudaMemcpyDeviceToDevice, s));
  int64_t n = vr_tensor_numel(ix);
  if (!n) return VR_OK;
  if (ix->ndim == 0) return VR_FAIL(VR_E_SHAPE, "index: expected at least 1 dim");
  int dim = (int)a->i[0];
  nd g = nd_of(ix, out, src, dim);
  int64_t lines = n / ix->shape[dim];
  int is64 = ix->dtype == VR_I64;
  switch (out->dtype) {
  case VR_F32: scatter_k<float><<<vr_cu_blocks(lines), VR_CU_THREADS, 0, s>>>((float *)vr_data(out), (const float *)vr_data(src), vr_data(ix), is64, g, lines); break;
  case VR_F64: scatter_k<double><<<vr_cu_blocks(lines), VR_CU_THREADS, 0, s>>>((double *)vr_data(out), (const double *)vr_data(src), vr_data(ix), is64, g, lines); break;
  case VR_BF16: scatter_k<vr_bf16><<<vr_cu_blocks(lines), VR_CU_THREADS, 0, s>>>((vr_bf16 *)vr_data(out), (const vr_bf16 *)vr_data(src), vr_data(ix), is64, g, lines); break;
  case VR_I32: scatter_k<int32_t><<<vr_cu_blocks(lines), VR_CU_THREADS, 0, s>>>((int32_t *)vr_data(out), (const int32_t *)vr_data(src), vr_data(ix), is64, g, lines); break;
  case VR_I64: scatter_k<int64_t><<<vr_cu_blocks(lines), VR_CU_THREADS, 0, s>>>((int64_t *)vr_data(out), (const int64_t *)vr_data(src), vr_data(ix), is64, g, lines); break;
  case VR_U8: scatter_k<uint8_t><<<vr_cu_blocks(lines), VR_CU_THREADS, 0, s>>>((uint8_t *)vr_data(out), (const uint8_t *)vr_data(src), vr_data(ix), is64, g, lines); break;
  }
  VR_CU_LAUNCHED("scatter_add");
  return VR_OK;
}

/* ---- one_hot ---- */
template <typename T> __global__ void one_hot_k(T *out, const void *ix, int is64, int64_t n, int64_t C) {
  LOOP(e, n * C) {
    int64_t c = e % C, p = e / C;
    out[e] = vr_cu_conv<T>::store(ld_index(ix, is64, p) == c ? 1.0 : 0.0);
  }
}
vr_status one_hot_fwd(const vr_kernel_args *a) {
  int64_t n = vr_tensor_numel(a->in[0]), C = a->i[0];
  if (!n || !C) return VR_OK;
  VR_CU_ALL_SWITCH(a->out[0]->dtype, "out[0]",
                   one_hot_k<T><<<vr_cu_blocks(n * C), VR_CU_THREADS, 0, vr_cuda_stream()>>>(
                       (T *)vr_data(a->out[0]), vr_data(a->in[0]), a->in[0]->dtype == VR_I64, n, C));
  VR_CU_LAUNCHED("one_hot");
  return VR_OK;
}

} // namespace

extern "C" {
vr_status vr_cuda_index_select_fwd(const vr_kernel_args *a) { return index_select_fwd(a); }
vr_status vr_cuda_index_select_bwd(const vr_kernel_args *a) { return index_select_bwd(a); }
vr_status vr_cuda_gather_fwd(const vr_kernel_args *a) { return gather_fwd(a); }
vr_status vr_cuda_scatter_add_fwd(const vr_kernel_args *a) { return scatter_add_fwd(a); }
vr_status vr_cuda_one_hot_fwd(const vr_kernel_args *a) { return one_hot_fwd(a); }
void vr_cuda_register_index(void) {
  vr_kernel_register(VR_OP_INDEX_SELECT, VR_CUDA, vr_cuda_index_select_fwd, vr_cuda_index_select_bwd);
  vr_kernel_register(VR_OP_GATHER, VR_CUDA, vr_cuda_gather_fwd, NULL);
  vr_kernel_register(VR_OP_SCATTER_ADD, VR_CUDA, vr_cuda_scatter_add_fwd, NULL);
  vr_kernel_register(VR_OP_ONE_HOT, VR_CUDA, vr_cuda_one_hot_fwd, NULL);
}
}
