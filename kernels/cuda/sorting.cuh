/* sorting.cuh: what the CUDA sorts share (sort.cu, index.cu, pool.cu, the regularizers' rank
 * sorts): sort keys that order exactly as the CPU's (kernels/cpu/sort.c), in-shared-memory bitonic
 * sorts, the one CUB radix sort instantiation (sort.cu), the runs of a sorted key array (index.cu),
 * and index loads. */
#ifndef VISREG_CUDA_SORTING_CUH
#define VISREG_CUDA_SORTING_CUH
#include "common.cuh"

/* ---- sort keys: unsigned integers whose order is the value order (NaN largest, -0 as +0) ---- */
__device__ __forceinline__ uint32_t vr_cu_key_f32(float v) {
  uint32_t u = __float_as_uint(v);
  if (v != v) return 0xFFFFFFFFu;
  if ((u & 0x7FFFFFFFu) == 0) u = 0;
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}
__device__ __forceinline__ uint64_t vr_cu_key_f64(double v) {
  uint64_t u = (uint64_t)__double_as_longlong(v);
  if (v != v) return ~(uint64_t)0;
  if ((u & 0x7FFFFFFFFFFFFFFFull) == 0) u = 0;
  return (u & 0x8000000000000000ull) ? ~u : (u | 0x8000000000000000ull);
}

/* index element k of a contiguous i32 or i64 tensor */
__device__ __forceinline__ int64_t vr_cu_ix(const void *p, int is64, int64_t k) {
  return is64 ? ((const int64_t *)p)[k] : (int64_t)((const int32_t *)p)[k];
}

/* Bitonic sort, ascending, of the block's shared array s[0, nseg * P): every P-aligned segment
 * (P a power of two) is sorted on its own. Words must be distinct for a unique result (callers pack
 * a position into the low bits). Called by every thread of the block; ends with a barrier. */
__device__ __forceinline__ void vr_cu_bitonic_u64(uint64_t *s, int total, int P) {
  for (int k = 2; k <= P; k <<= 1)
    for (int j = k >> 1; j > 0; j >>= 1) {
      __syncthreads();
      for (int t = threadIdx.x; t < total / 2; t += blockDim.x) {
        int i = 2 * t - (t & (j - 1)); /* the lower element of the t-th pair at distance j */
        int l = i + j;
        bool up = ((i & (P - 1)) & k) == 0;
        uint64_t a = s[i], b = s[l];
        if ((a > b) == up) {
          s[i] = b;
          s[l] = a;
        }
      }
    }
  __syncthreads();
}
/* the same for (64-bit key, 32-bit position) pairs held in two arrays, ordered by (key, position) */
__device__ __forceinline__ void vr_cu_bitonic_kp(uint64_t *key, uint32_t *pos, int total, int P) {
  for (int k = 2; k <= P; k <<= 1)
    for (int j = k >> 1; j > 0; j >>= 1) {
      __syncthreads();
      for (int t = threadIdx.x; t < total / 2; t += blockDim.x) {
        int i = 2 * t - (t & (j - 1));
        int l = i + j;
        bool up = ((i & (P - 1)) & k) == 0;
        uint64_t a = key[i], b = key[l];
        uint32_t pa = pos[i], pb = pos[l];
        bool gt = a > b || (a == b && pa > pb);
        if (gt == up) {
          key[i] = b;
          key[l] = a;
          pos[i] = pb;
          pos[l] = pa;
        }
      }
    }
  __syncthreads();
}

static inline int vr_cu_pow2_at_least(int64_t n) {
  int p = 1;
  while (p < n) p <<= 1;
  return p;
}
static inline int vr_cu_bits_for(uint64_t n) { /* bits needed to hold values 0..n-1 */
  int b = 0;
  while (b < 64 && (n - 1) >> b) b++;
  return b;
}

/* Stable LSD radix sort of n (key, value) pairs on bits [0, end_bit) of the keys (CUB), on the
 * backend's stream. keys/vals hold the input; the result is in *keys_out and *vals_out, which point to
 * either the input or the alt buffers (all four of n elements). Defined in sort.cu. */
vr_status vr_cu_radix_pairs(uint64_t *keys, uint64_t *keys_alt, int64_t *vals, int64_t *vals_alt, int64_t n,
                            int end_bit, uint64_t **keys_out, int64_t **vals_out);

/* CSR of a sorted key array: for every key value v in [0, nkeys), [start[v], end[v]) is its run
 * in sorted (both zeroed first). Defined in index.cu. */
vr_status vr_cu_runs(const uint64_t *sorted, int64_t n, int64_t nkeys, int64_t *start, int64_t *end);
#endif
