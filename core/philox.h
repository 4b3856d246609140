/* philox.h: Philox 4x32-10 (Salmon et al., SC'11), shared by the CPU and CUDA kernels so that
 * both devices draw the same numbers. Key = seed; counter = (element counter, stream). */
#ifndef VISREG_PHILOX_H
#define VISREG_PHILOX_H
#include <stdint.h>
#include <math.h>

#ifdef __CUDACC__
#define VR_HD __host__ __device__ __forceinline__
#else
#define VR_HD static inline
#endif

VR_HD void vr_philox_block(uint64_t seed, uint64_t stream, uint64_t counter, uint32_t out[4]) {
  uint32_t c0 = (uint32_t)counter, c1 = (uint32_t)(counter >> 32), c2 = (uint32_t)stream, c3 = (uint32_t)(stream >> 32);
  uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
  for (int r = 0; r < 10; r++) {
    uint64_t p0 = (uint64_t)0xD2511F53u * c0, p1 = (uint64_t)0xCD9E8D57u * c2;
    uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0, n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
    c1 = (uint32_t)p1;
    c3 = (uint32_t)p0;
    c0 = n0;
    c2 = n2;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
}

/* uniform in [0, 1) with 53 random bits */
VR_HD double vr_philox_u01(uint32_t hi, uint32_t lo) {
  return (double)((((uint64_t)hi << 32) | lo) >> 11) * (1.0 / 9007199254740992.0);
}

/* the k-th number of the stream, as the RAND kernels compute it (kind: 0 uniform, 1 normal, 2 int) */
VR_HD double vr_philox_sample(uint64_t seed, uint64_t stream, uint64_t counter, int kind, double a, double b) {
  uint32_t w[4];
  vr_philox_block(seed, stream, counter, w);
  if (kind == 0) return a + (b - a) * vr_philox_u01(w[0], w[1]);
  if (kind == 1) {
    double u1 = 1.0 - vr_philox_u01(w[0], w[1]); /* (0, 1] */
    double u2 = vr_philox_u01(w[2], w[3]);
    return a + b * sqrt(-2.0 * log(u1)) * cos(6.283185307179586476925 * u2);
  }
  uint64_t range = (uint64_t)(b - a);
  uint64_t r = ((uint64_t)w[0] << 32) | w[1];
  return a + (double)(range ? r % range : 0);
}
#endif
