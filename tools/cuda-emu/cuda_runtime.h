/* a host emulation of the CUDA runtime for checking kernels' index math on the CPU */
#pragma once
#include <cstring>
#include <cstdlib>
#include <cmath>
#include <cstdint>
#include <thread>
#include <barrier>
#include <vector>
#include <functional>
#include <algorithm>
#include <atomic>
#include <mutex>
using std::isfinite;
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __restrict__ __restrict
struct emu_dim3 { unsigned x = 0, y = 1, z = 1; };
extern thread_local emu_dim3 threadIdx, blockIdx;
extern emu_dim3 blockDim, gridDim;
extern std::barrier<> *emu_bar;
extern unsigned char *emu_dynsmem;
inline void __syncthreads() { emu_bar->arrive_and_wait(); }
typedef void *cudaStream_t;
typedef int cudaError_t;
enum { cudaSuccess = 0 };
enum cudaMemcpyKind { cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost, cudaMemcpyDeviceToDevice };
enum { cudaFuncAttributeMaxDynamicSharedMemorySize = 8, cudaDevAttrMaxSharedMemoryPerBlockOptin = 97 };
inline cudaError_t cudaGetLastError() { return 0; }
inline const char *cudaGetErrorString(int) { return "emu"; }
inline const char *cudaGetErrorName(int) { return "emu"; }
inline cudaError_t cudaMemsetAsync(void *p, int v, size_t n, cudaStream_t) { memset(p, v, n); return 0; }
inline cudaError_t cudaMemset2DAsync(void *p, size_t pitch, int v, size_t w, size_t h, cudaStream_t) {
  for (size_t r = 0; r < h; r++) memset((char *)p + r * pitch, v, w);
  return 0;
}
inline cudaError_t cudaMemcpyAsync(void *d, const void *s, size_t n, int, cudaStream_t) { memcpy(d, s, n); return 0; }
inline cudaError_t cudaStreamSynchronize(cudaStream_t) { return 0; }
template <typename F> cudaError_t cudaFuncSetAttribute(F, int, int) { return 0; }
inline cudaError_t cudaGetDevice(int *d) { *d = 0; return 0; }
inline cudaError_t cudaDeviceGetAttribute(int *v, int, int) { *v = 232448; return 0; }
inline unsigned __float_as_uint(float f) { unsigned u; memcpy(&u, &f, 4); return u; }
inline float __uint_as_float(unsigned u) { float f; memcpy(&f, &u, 4); return f; }
inline long long __double_as_longlong(double d) { long long u; memcpy(&u, &d, 8); return u; }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dsub_rn(double a, double b) { return a - b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __dsqrt_rn(double a) { return std::sqrt(a); }
/* erfinv: Winitzki's guess and Newton steps (the device library's is not on the host) */
inline double erfinv(double y) {
  if (!(y > -1)) return y == -1 ? -INFINITY : NAN;
  if (!(y < 1)) return y == 1 ? INFINITY : NAN;
  double a = 0.147, l = std::log(1 - y * y), t = 2 / (M_PI * a) + l / 2;
  double x = std::copysign(std::sqrt(std::sqrt(t * t - l / a) - t), y);
  for (int i = 0; i < 4; i++) x -= (std::erf(x) - y) / (2 / std::sqrt(M_PI) * std::exp(-x * x));
  return x;
}
inline float erfinvf(float y) { return (float)erfinv(y); }
inline int atomicMin(int *p, int v) { static std::mutex m; std::lock_guard<std::mutex> l(m); int o = *p; if (v < o) *p = v; return o; }
/* grid capped at 3 blocks (every kernel here loops grid-stride); a block's threads are OS threads */
template <typename F> void emu_launch(long long grid, long long block, size_t shm, F f) {
  gridDim.x = (unsigned)(grid < 3 ? grid : 3);
  blockDim.x = (unsigned)block;
  std::vector<unsigned char> sm(shm + 16);
  emu_dynsmem = sm.data();
  for (unsigned b = 0; b < gridDim.x; b++) {
    std::barrier<> bar((std::ptrdiff_t)block);
    emu_bar = &bar;
    std::vector<std::thread> ts;
    for (unsigned t = 0; t < block; t++)
      ts.emplace_back([&, t, b] { threadIdx.x = t; blockIdx.x = b; f(); });
    for (auto &th : ts) th.join();
  }
}
