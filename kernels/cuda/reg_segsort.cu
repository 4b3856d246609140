/* reg_segsort.cu: the sorted-segment pass of VISReg and SWD for f32 segments of 129..8192
 * projections, a register-tiled bitonic sort (one block of 256 threads per segment).
 *
 * The segment is padded to P = 256 R words (key << 32 | position, as seg_sort_k in reg_sliced.cu,
 * so ties keep index order) and thread t holds words t R .. t R + R - 1 in registers. A bitonic
 * step at distance j runs in registers when j < R, through warp shuffles when j < 32 R, and through
 * shared memory (padded against bank conflicts) only above that: for P = 4096, 6 of the 78 steps
 * touch shared memory instead of all of them. The sorted keys give back the projections exactly,
 * so the loss reads no global memory after the sort; the gradient is written through the ranks. */
#include "reg.cuh"
#include <stdlib.h>

namespace {

const int kThreads = 256;

__device__ __forceinline__ uint64_t key_of(float v) { /* raw bits, negatives inverted: -0 below +0 */
  uint32_t u = __float_as_uint(v);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}
__device__ __forceinline__ float value_of(uint64_t w) {
  uint32_t k = (uint32_t)(w >> 32);
  return __uint_as_float((k & 0x80000000u) ? (k ^ 0x80000000u) : ~k);
}
__host__ __device__ __forceinline__ int pad(int i) { return i + (i >> 4); } /* one spare word per 16 (host: smem size) */
/* the kept word of a compare-exchange: the smaller when keep_min */
__device__ __forceinline__ uint64_t pick(uint64_t a, uint64_t b, bool keep_min) { return (a < b) == keep_min ? a : b; }

template <int R>
__global__ void __launch_bounds__(kThreads) reg_sort_k(float *Pt, int64_t nseg, int64_t B, const float *q, double coef,
                                                       int grad, double *part, float *lo) {
  extern __shared__ uint64_t sw[];
  __shared__ double red[kThreads];
  const int P = kThreads * R, t = threadIdx.x, base = t * R;
  uint64_t v[R];
  for (int64_t s = blockIdx.x; s < nseg; s += gridDim.x) {
    float *seg = Pt + s * B;
    /* coalesced load into shared memory, then each thread takes its R consecutive words */
    for (int i = t; i < P; i += kThreads) sw[pad(i)] = i < B ? (key_of(seg[i]) << 32) | (uint32_t)i : ~(uint64_t)0;
    __syncthreads();
#pragma unroll
    for (int r = 0; r < R; r++) v[r] = sw[pad(base + r)];
    for (int k = 2; k <= P; k <<= 1) {
      int j = k >> 1;
      for (; j >= 32 * R; j >>= 1) { /* partner in another warp: through shared memory */
        __syncthreads();
#pragma unroll
        for (int r = 0; r < R; r++) sw[pad(base + r)] = v[r];
        __syncthreads();
        bool up = (base & k) == 0, lower = (base & j) == 0;
#pragma unroll
        for (int r = 0; r < R; r++) v[r] = pick(v[r], sw[pad((base + r) ^ j)], lower == up);
      }
      for (; j >= R; j >>= 1) { /* partner in this warp: a shuffle */
        int m = j / R;
        bool up = (base & k) == 0, lower = (t & m) == 0;
#pragma unroll
        for (int r = 0; r < R; r++) v[r] = pick(v[r], __shfl_xor_sync(0xffffffffu, v[r], m), lower == up);
      }
#pragma unroll
      for (int jj = R / 2; jj >= 1; jj >>= 1) { /* partner in this thread */
        if (jj > j) continue;
#pragma unroll
        for (int r = 0; r < R; r++)
          if ((r & jj) == 0) {
            bool up = ((base + r) & k) == 0;
            uint64_t a = v[r], b = v[r | jj];
            v[r] = pick(a, b, up);
            v[r | jj] = pick(a, b, !up);
          }
      }
    }
    double acc = 0;
#pragma unroll
    for (int r = 0; r < R; r++) {
      int i = base + r;
      if (i < B) {
        double d = (double)value_of(v[r]) - (double)q[i];
        acc += d * d;
        if (grad) {
          float g = (float)(coef * d);
          uint32_t b = (uint32_t)v[r];
          if (lo) { /* 3xTF32: the high part here, the rest in lo */
            float h = __uint_as_float(__float_as_uint(g) & 0xFFFFE000u);
            seg[b] = h;
            lo[s * B + b] = g - h;
          } else {
            seg[b] = g;
          }
        }
      }
    }
    acc = vr_cu_reg_block_sum(acc, red); /* ends with a barrier: sw is free again */
    if (t == 0) part[s] = acc;
  }
}

template <int R>
vr_status launch(float *Pt, int64_t nseg, int64_t B, const float *q, double coef, int grad, double *part, float *lo) {
  size_t smem = sizeof(uint64_t) * (size_t)pad(kThreads * R);
  if (smem + sizeof(double) * kThreads > vr_cu_smem_optin()) return VR_FAIL(VR_E_UNSUPPORTED, "B: %lld is too long", (long long)B);
  if (smem > 48 * 1024) VR_CU(cudaFuncSetAttribute(reg_sort_k<R>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
  unsigned grid = (unsigned)(nseg < 65535 ? nseg : 65535);
  reg_sort_k<R><<<grid, kThreads, smem, vr_cuda_stream()>>>(Pt, nseg, B, q, coef, grad, part, lo);
  VR_CU_LAUNCHED("sorted segments (registers)");
  return VR_OK;
}

} // namespace

/* the variant sort=shared sends every segment to the shared-memory sort of reg_sliced.cu */
int vr_cu_seg_sort_f32_fits(int64_t B) {
  if (vr_variants[VR_VARIANT_SORT]) return 0;
  return B > 128 && B <= 32 * kThreads;
}

vr_status vr_cu_seg_sort_f32(float *Pt, int64_t nseg, int64_t B, const float *q, double coef, int grad, double *part,
                             float *lo) {
  if (nseg < 1) return VR_OK;
  switch (vr_cu_pow2_at_least(B) / kThreads) {
  case 1: return launch<1>(Pt, nseg, B, q, coef, grad, part, lo);
  case 2: return launch<2>(Pt, nseg, B, q, coef, grad, part, lo);
  case 4: return launch<4>(Pt, nseg, B, q, coef, grad, part, lo);
  case 8: return launch<8>(Pt, nseg, B, q, coef, grad, part, lo);
  case 16: return launch<16>(Pt, nseg, B, q, coef, grad, part, lo);
  case 32: return launch<32>(Pt, nseg, B, q, coef, grad, part, lo);
  default: return VR_FAIL(VR_E_UNSUPPORTED, "B: %lld projections per segment is outside 129..8192", (long long)B);
  }
}
