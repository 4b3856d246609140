/* sort.cu: the CUDA sort kernel (VR_OP_SORT: sort, argsort, topk), stable, along one dim, with the
 * argument layout of core/ops/sort.c (in[0] x contiguous; out[0] values, out[1] i64 indices,
 * contiguous with k along dim; i[0] dim, i[1] descending, i[2] k).
 *
 * The order is the CPU's (kernels/cpu/sort.c) exactly: keys mapped to unsigned integers (NaN
 * largest, -0 as +0, complemented for descending) and ties broken by position, so both devices
 * give the same permutation and the values are read back from x (NaN payloads and -0 survive).
 *  - Lines up to 4096 elements: one block sorts one or more lines in shared memory with a bitonic
 *    network over distinct words: (key32 << 32 | position) for 32-bit keys, (key64, position)
 *    pairs for f64 and i64.
 *  - Longer lines: a stable LSD radix sort over all lines at once (CUB): 32-bit keys carry the line
 *    in their upper bits ((line << 32) | key, one sort); 64-bit keys are sorted with the element's
 *    flat position, then stably by line.
 * vr_cu_radix_pairs is the one CUB instantiation of the backend (also used by index.cu and the
 * regularizers), to keep compile time down. */
#include "scratch.cuh"
#include "sorting.cuh"
#include <cub/device/device_radix_sort.cuh>

vr_status vr_cu_radix_pairs(uint64_t *keys, uint64_t *keys_alt, int64_t *vals, int64_t *vals_alt, int64_t n,
                            int end_bit, uint64_t **keys_out, int64_t **vals_out) {
  *keys_out = keys;
  *vals_out = vals;
  if (n <= 1) return VR_OK;
  if (end_bit < 1) end_bit = 1;
  if (end_bit > 64) end_bit = 64;
  cub::DoubleBuffer<uint64_t> kb(keys, keys_alt);
  cub::DoubleBuffer<int64_t> vb(vals, vals_alt);
  cudaStream_t s = vr_cuda_stream();
  size_t tmp = 0;
  VR_CU(cub::DeviceRadixSort::SortPairs(nullptr, tmp, kb, vb, n, 0, end_bit, s));
  vr_cu_buf t;
  VR_TRY(t.get(tmp));
  VR_CU(cub::DeviceRadixSort::SortPairs(t.p, tmp, kb, vb, n, 0, end_bit, s));
  *keys_out = kb.Current();
  *vals_out = vb.Current();
  return VR_OK;
}

namespace {

const int kShortMax = 4096; /* longest line sorted in shared memory */
const int kThreads = 512;

/* the key of element e of dtype dt (before the descending flip) */
template <typename T> struct keyof;
template <> struct keyof<float> {
  static const bool wide = false;
  __device__ static uint64_t k(float v) { return vr_cu_key_f32(v); }
};
template <> struct keyof<vr_bf16> {
  static const bool wide = false;
  __device__ static uint64_t k(vr_bf16 v) { return vr_cu_key_f32(vr_bf16_to_f(v)); }
};
template <> struct keyof<uint8_t> {
  static const bool wide = false;
  __device__ static uint64_t k(uint8_t v) { return v; }
};
template <> struct keyof<int32_t> {
  static const bool wide = false;
  __device__ static uint64_t k(int32_t v) { return (uint32_t)v ^ 0x80000000u; }
};
template <> struct keyof<double> {
  static const bool wide = true;
  __device__ static uint64_t k(double v) { return vr_cu_key_f64(v); }
};
template <> struct keyof<int64_t> {
  static const bool wide = true;
  __device__ static uint64_t k(int64_t v) { return (uint64_t)v ^ (1ull << 63); }
};

struct sgeom {
  int64_t n, k, inner, lines; /* lines = outer * inner; line l = (o, i) */
  int desc;
};

__device__ __forceinline__ int64_t line_base(const sgeom &g, int64_t l) {
  int64_t o = l / g.inner, i = l - o * g.inner;
  return o * g.n * g.inner + i;
}
__device__ __forceinline__ int64_t out_base(const sgeom &g, int64_t l) {
  int64_t o = l / g.inner, i = l - o * g.inner;
  return o * g.k * g.inner + i;
}

/* short lines, 32-bit keys: L lines of P (power of two) slots per block, packed words */
template <typename T>
__global__ void sort_short_packed(const T *__restrict__ x, T *__restrict__ vals, int64_t *__restrict__ idx, sgeom g,
                                  int P, int L) {
  extern __shared__ uint64_t sw[];
  uint32_t flip = g.desc ? 0xFFFFFFFFu : 0u;
  for (int64_t l0 = (int64_t)blockIdx.x * L; l0 < g.lines; l0 += (int64_t)gridDim.x * L) {
    for (int t = threadIdx.x; t < L * P; t += blockDim.x) {
      int seg = t / P, j = t - seg * P;
      int64_t l = l0 + seg;
      uint64_t w = ~(uint64_t)0; /* padding sorts last */
      if (l < g.lines && j < g.n) w = ((uint64_t)((uint32_t)keyof<T>::k(x[line_base(g, l) + (int64_t)j * g.inner]) ^ flip) << 32) | (uint32_t)j;
      sw[t] = w;
    }
    vr_cu_bitonic_u64(sw, L * P, P);
    for (int t = threadIdx.x; t < L * P; t += blockDim.x) {
      int seg = t / P, r = t - seg * P;
      int64_t l = l0 + seg;
      if (l >= g.lines || r >= g.k) continue;
      int64_t pos = (int64_t)(sw[t] & 0xFFFFFFFFu);
      int64_t ob = out_base(g, l) + (int64_t)r * g.inner;
      vals[ob] = x[line_base(g, l) + pos * g.inner];
      idx[ob] = pos;
    }
    __syncthreads();
  }
}

/* short lines, 64-bit keys: (key, position) pairs */
template <typename T>
__global__ void sort_short_wide(const T *__restrict__ x, T *__restrict__ vals, int64_t *__restrict__ idx, sgeom g, int P,
                                int L) {
  extern __shared__ uint64_t sk[];
  uint32_t *sp = (uint32_t *)(sk + L * P);
  uint64_t flip = g.desc ? ~(uint64_t)0 : 0;
  for (int64_t l0 = (int64_t)blockIdx.x * L; l0 < g.lines; l0 += (int64_t)gridDim.x * L) {
    for (int t = threadIdx.x; t < L * P; t += blockDim.x) {
      int seg = t / P, j = t - seg * P;
      int64_t l = l0 + seg;
      uint64_t kk = ~(uint64_t)0;
      if (l < g.lines && j < g.n) kk = keyof<T>::k(x[line_base(g, l) + (int64_t)j * g.inner]) ^ flip;
      sk[t] = kk;
      sp[t] = (uint32_t)j; /* padding has positions >= n: after every real key equal to ~0 */
    }
    vr_cu_bitonic_kp(sk, sp, L * P, P);
    for (int t = threadIdx.x; t < L * P; t += blockDim.x) {
      int seg = t / P, r = t - seg * P;
      int64_t l = l0 + seg;
      if (l >= g.lines || r >= g.k) continue;
      int64_t pos = sp[t];
      int64_t ob = out_base(g, l) + (int64_t)r * g.inner;
      vals[ob] = x[line_base(g, l) + pos * g.inner];
      idx[ob] = pos;
    }
    __syncthreads();
  }
}

/* long lines: keys and values for the radix sort, element e = l n + j */
template <typename T>
__global__ void long_keys(const T *__restrict__ x, uint64_t *keys, int64_t *vals, sgeom g) {
  int64_t total = g.lines * g.n;
  uint64_t flip = keyof<T>::wide ? (g.desc ? ~(uint64_t)0 : 0) : (g.desc ? 0xFFFFFFFFull : 0);
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < total; e += (int64_t)gridDim.x * blockDim.x) {
    int64_t l = e / g.n, j = e - l * g.n;
    uint64_t k = keyof<T>::k(x[line_base(g, l) + j * g.inner]) ^ flip;
    if (keyof<T>::wide) {
      keys[e] = k;
      vals[e] = e;
    } else {
      keys[e] = ((uint64_t)l << 32) | k;
      vals[e] = j;
    }
  }
}
/* 64-bit keys, after the sort by key: the line of each element as the next key */
__global__ void line_keys(const int64_t *vals, uint64_t *keys, int64_t n, int64_t total) {
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < total; e += (int64_t)gridDim.x * blockDim.x)
    keys[e] = (uint64_t)(vals[e] / n);
}
/* sorted values (positions, or flat positions when wide) to the outputs */
template <typename T>
__global__ void long_write(const T *__restrict__ x, const int64_t *sorted, T *vals, int64_t *idx, sgeom g, int wide) {
  int64_t total = g.lines * g.k;
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < total; e += (int64_t)gridDim.x * blockDim.x) {
    int64_t l = e / g.k, r = e - l * g.k;
    int64_t v = sorted[l * g.n + r], pos = wide ? v - l * g.n : v;
    int64_t ob = out_base(g, l) + r * g.inner;
    vals[ob] = x[line_base(g, l) + pos * g.inner];
    idx[ob] = pos;
  }
}

template <typename T> vr_status sort_typed(const vr_kernel_args *a, const sgeom &g) {
  cudaStream_t s = vr_cuda_stream();
  const T *x = (const T *)vr_data(a->in[0]);
  T *vals = (T *)vr_data(a->out[0]);
  int64_t *idx = (int64_t *)vr_data(a->out[1]);
  const bool wide = keyof<T>::wide;
  if (g.n <= kShortMax) {
    int P = vr_cu_pow2_at_least(g.n);
    int L = kShortMax / P; /* lines per block: fill the shared array */
    if ((int64_t)L > g.lines) L = (int)g.lines;
    size_t shm = (size_t)L * P * (wide ? 12 : 8);
    int64_t nblk = (g.lines + L - 1) / L;
    unsigned grid = (unsigned)(nblk < (1 << 20) ? nblk : (1 << 20));
    int threads = L * P / 2 < kThreads ? L * P / 2 : kThreads;
    if (threads < 32) threads = 32;
    if (wide)
      sort_short_wide<T><<<grid, threads, shm, s>>>(x, vals, idx, g, P, L);
    else
      sort_short_packed<T><<<grid, threads, shm, s>>>(x, vals, idx, g, P, L);
    VR_CU_LAUNCHED("sort (shared memory)");
    return VR_OK;
  }
  int64_t N = g.lines * g.n;
  vr_cu_buf kb, kb2, vb, vb2;
  VR_TRY(kb.get(8 * (size_t)N));
  VR_TRY(kb2.get(8 * (size_t)N));
  VR_TRY(vb.get(8 * (size_t)N));
  VR_TRY(vb2.get(8 * (size_t)N));
  long_keys<T><<<vr_cu_blocks(N), VR_CU_THREADS, 0, s>>>(x, kb.as<uint64_t>(), vb.as<int64_t>(), g);
  VR_CU_LAUNCHED("sort keys");
  uint64_t *ko = nullptr;
  int64_t *vo = nullptr;
  int lbits = vr_cu_bits_for((uint64_t)g.lines);
  if (!wide) {
    if (lbits > 32) return VR_FAIL(VR_E_UNSUPPORTED, "x: more than 2^32 lines to sort");
    VR_TRY(vr_cu_radix_pairs(kb.as<uint64_t>(), kb2.as<uint64_t>(), vb.as<int64_t>(), vb2.as<int64_t>(), N, 32 + lbits,
                             &ko, &vo));
  } else {
    VR_TRY(vr_cu_radix_pairs(kb.as<uint64_t>(), kb2.as<uint64_t>(), vb.as<int64_t>(), vb2.as<int64_t>(), N, 64, &ko, &vo));
    if (g.lines > 1) {
      uint64_t *kalt = ko == kb.as<uint64_t>() ? kb2.as<uint64_t>() : kb.as<uint64_t>();
      int64_t *valt = vo == vb.as<int64_t>() ? vb2.as<int64_t>() : vb.as<int64_t>();
      line_keys<<<vr_cu_blocks(N), VR_CU_THREADS, 0, s>>>(vo, ko, g.n, N);
      VR_CU_LAUNCHED("sort line keys");
      VR_TRY(vr_cu_radix_pairs(ko, kalt, vo, valt, N, lbits, &ko, &vo));
    }
  }
  long_write<T><<<vr_cu_blocks(g.lines * g.k), VR_CU_THREADS, 0, s>>>(x, vo, vals, idx, g, wide ? 1 : 0);
  VR_CU_LAUNCHED("sort write");
  return VR_OK;
}

vr_status sort_fwd(const vr_kernel_args *a) {
  const vr_tensor *x = a->in[0];
  int dim = (int)a->i[0];
  int64_t outer = 1, inner = 1, n = x->ndim ? x->shape[dim] : 1;
  for (int d = 0; d < dim; d++) outer *= x->shape[d];
  for (int d = dim + 1; d < x->ndim; d++) inner *= x->shape[d];
  sgeom g = {n, a->i[2], inner, outer * inner, (int)a->i[1]};
  if (g.lines == 0 || g.k == 0 || n == 0) return VR_OK;
  if (a->out[1]->dtype != VR_I64)
    return VR_FAIL(VR_E_DTYPE, "indices: expected i64, got %s", vr_dtype_name(a->out[1]->dtype));
  switch (x->dtype) {
  case VR_F32: return sort_typed<float>(a, g);
  case VR_F64: return sort_typed<double>(a, g);
  case VR_BF16: return sort_typed<vr_bf16>(a, g);
  case VR_I32: return sort_typed<int32_t>(a, g);
  case VR_I64: return sort_typed<int64_t>(a, g);
  case VR_U8: return sort_typed<uint8_t>(a, g);
  default: return VR_CU_UNSUPPORTED_DTYPE("x", x->dtype);
  }
}

} // namespace

extern "C" {
vr_status vr_cuda_sort_fwd(const vr_kernel_args *a) { return sort_fwd(a); }
void vr_cuda_register_sort(void) { vr_kernel_register(VR_OP_SORT, VR_CUDA, vr_cuda_sort_fwd, NULL); }
}
