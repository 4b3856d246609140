/* sort.cu: CUDA VR_OP_SORT (sort, argsort, topk), with the argument layout of core/ops/sort.c:
 *   in[0] x contiguous (f32, f64, bf16, i32, i64, u8); out[0] values, out[1] indices (i64), both
 *   contiguous, x's shape with k at dim; i = {dim, descending, k}. Stable in both directions; NaN
 *   is the largest value; -0 sorts equal to +0.
 * As the CPU kernel: keys become unsigned integers in value order (floats: sign flip or full
 * complement, NaN the largest key, -0 as +0; descending: the complement), then each line is
 * stably sorted as (key, position) pairs, here by CUB's segmented stable sort, and the first k
 * entries are written back with the original values. */
#include "common.cuh"
#include <cub/device/device_segmented_sort.cuh>

namespace {

__device__ __forceinline__ uint32_t key_of_f32(float v) {
  uint32_t u = __float_as_uint(v);
  if (v != v) return 0xFFFFFFFFu;
  if ((u & 0x7FFFFFFFu) == 0) u = 0;
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}
__device__ __forceinline__ uint64_t key_of_f64(double v) {
  uint64_t u = (uint64_t)__double_as_longlong(v);
  if (v != v) return ~(uint64_t)0;
  if ((u & 0x7FFFFFFFFFFFFFFFull) == 0) u = 0;
  return (u & 0x8000000000000000ull) ? ~u : (u | 0x8000000000000000ull);
}
template <typename T, typename K> __device__ __forceinline__ K key_of(T v);
template <> __device__ __forceinline__ uint32_t key_of<float, uint32_t>(float v) { return key_of_f32(v); }
template <> __device__ __forceinline__ uint32_t key_of<vr_bf16, uint32_t>(vr_bf16 v) { return key_of_f32(vr_bf16_to_f(v)); }
template <> __device__ __forceinline__ uint64_t key_of<double, uint64_t>(double v) { return key_of_f64(v); }
template <> __device__ __forceinline__ uint32_t key_of<int32_t, uint32_t>(int32_t v) { return (uint32_t)v ^ 0x80000000u; }
template <> __device__ __forceinline__ uint32_t key_of<uint8_t, uint32_t>(uint8_t v) { return v; }
template <> __device__ __forceinline__ uint64_t key_of<int64_t, uint64_t>(int64_t v) { return (uint64_t)v ^ 0x8000000000000000ull; }

template <typename T> struct key_type { typedef uint32_t type; };
template <> struct key_type<double> { typedef uint64_t type; };
template <> struct key_type<int64_t> { typedef uint64_t type; };

/* line l = (o, i) of [outer, D, inner] goes to segment l, position d */
template <typename T, typename K>
__global__ void make_keys(const T *x, K *keys, int32_t *pos, int64_t outer, int64_t D, int64_t inner, int desc) {
  int64_t n = outer * D * inner;
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < n; e += (int64_t)gridDim.x * blockDim.x) {
    int64_t d = e % D, l = e / D, o = l / inner, i = l - o * inner;
    K k = key_of<T, K>(x[(o * D + d) * inner + i]);
    keys[e] = desc ? (K)~k : k;
    pos[e] = (int32_t)d;
  }
}
__global__ void make_offsets(int64_t *off, int64_t nseg, int64_t D) {
  for (int64_t s = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; s <= nseg; s += (int64_t)gridDim.x * blockDim.x)
    off[s] = s * D;
}
template <typename T>
__global__ void write_out(const T *x, const int32_t *pos, T *vals, int64_t *idx, int64_t outer, int64_t D, int64_t inner,
                          int64_t k) {
  int64_t n = outer * k * inner;
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < n; e += (int64_t)gridDim.x * blockDim.x) {
    int64_t i = e % inner, j = (e / inner) % k, o = e / (inner * k);
    int64_t l = o * inner + i;
    int64_t p = pos[l * D + j];
    vals[e] = x[(o * D + p) * inner + i];
    idx[e] = p;
  }
}

template <typename T> vr_status sort_typed(const vr_kernel_args *a) {
  typedef typename key_type<T>::type K;
  const vr_tensor *x = a->in[0];
  int dim = (int)a->i[0];
  int desc = (int)a->i[1];
  int64_t k = a->i[2];
  int64_t D = x->ndim ? x->shape[dim] : 1, outer = 1, inner = 1;
  for (int d = 0; d < dim && d < x->ndim; d++) outer *= x->shape[d];
  for (int d = dim + 1; d < x->ndim; d++) inner *= x->shape[d];
  int64_t n = outer * D * inner, nseg = outer * inner;
  if (!n || !k) return VR_OK;
  if (n > INT32_MAX || D > INT32_MAX) return VR_FAIL(VR_E_UNSUPPORTED, "x: CUDA sort supports up to 2^31 elements, got %lld", (long long)n);
  cudaStream_t s = vr_cuda_stream();
  vr_status st = VR_OK;
  K *k1 = nullptr, *k2 = nullptr;
  int32_t *p1 = nullptr, *p2 = nullptr;
  int64_t *off = nullptr;
  void *tmp = nullptr;
  size_t tmp_bytes = 0;
  size_t kb = sizeof(K) * (size_t)n, pb = sizeof(int32_t) * (size_t)n, ob = sizeof(int64_t) * (size_t)(nseg + 1);
  cudaError_t e = cudaSuccess;
  VR_TRYG(vr_cuda_scratch(kb, (void **)&k1));
  VR_TRYG(vr_cuda_scratch(kb, (void **)&k2));
  VR_TRYG(vr_cuda_scratch(pb, (void **)&p1));
  VR_TRYG(vr_cuda_scratch(pb, (void **)&p2));
  VR_TRYG(vr_cuda_scratch(ob, (void **)&off));
  make_keys<T, K><<<vr_cu_blocks(n), VR_CU_THREADS, 0, s>>>((const T *)vr_data(x), k1, p1, outer, D, inner, desc);
  make_offsets<<<vr_cu_blocks(nseg + 1), VR_CU_THREADS, 0, s>>>(off, nseg, D);
  e = cudaGetLastError();
  if (e == cudaSuccess)
    e = cub::DeviceSegmentedSort::StableSortPairs(nullptr, tmp_bytes, k1, k2, p1, p2, (int)n, (int)nseg, off, off + 1, s);
  if (e == cudaSuccess) {
    st = vr_cuda_scratch(tmp_bytes ? tmp_bytes : 1, &tmp);
    if (st) goto done;
    e = cub::DeviceSegmentedSort::StableSortPairs(tmp, tmp_bytes, k1, k2, p1, p2, (int)n, (int)nseg, off, off + 1, s);
  }
  if (e == cudaSuccess) {
    write_out<T><<<vr_cu_blocks(outer * k * inner), VR_CU_THREADS, 0, s>>>(
        (const T *)vr_data(x), p2, (T *)vr_data(a->out[0]), (int64_t *)vr_data(a->out[1]), outer, D, inner, k);
    e = cudaGetLastError();
  }
  if (e != cudaSuccess) st = VR_FAIL(VR_E_CUDA, "sort: %s (%s)", cudaGetErrorString(e), cudaGetErrorName(e));
done:
  if (k1) vr_cuda_scratch_free(k1, kb);
  if (k2) vr_cuda_scratch_free(k2, kb);
  if (p1) vr_cuda_scratch_free(p1, pb);
  if (p2) vr_cuda_scratch_free(p2, pb);
  if (off) vr_cuda_scratch_free(off, ob);
  if (tmp) vr_cuda_scratch_free(tmp, tmp_bytes ? tmp_bytes : 1);
  return st;
}

vr_status sort_fwd(const vr_kernel_args *a) {
  if (a->out[1]->dtype != VR_I64) return VR_FAIL(VR_E_DTYPE, "out[1]: expected i64 indices, got %s", vr_dtype_name(a->out[1]->dtype));
  switch (a->in[0]->dtype) {
  case VR_F32: return sort_typed<float>(a);
  case VR_F64: return sort_typed<double>(a);
  case VR_BF16: return sort_typed<vr_bf16>(a);
  case VR_I32: return sort_typed<int32_t>(a);
  case VR_I64: return sort_typed<int64_t>(a);
  case VR_U8: return sort_typed<uint8_t>(a);
  }
  return VR_CU_UNSUPPORTED_DTYPE("x", a->in[0]->dtype);
}

} // namespace

extern "C" {
vr_status vr_cuda_sort_fwd(const vr_kernel_args *a) { return sort_fwd(a); }
void vr_cuda_register_sort(void) { vr_kernel_register(VR_OP_SORT, VR_CUDA, vr_cuda_sort_fwd, NULL); }
}
