/* a host emulation of the CUDA runtime for checking kernels' index math on the CPU */
#pragma once
#include <cstring>
#include <cstdio>
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
#define __launch_bounds__(...)
#define __restrict__ __restrict
struct emu_dim3 {
  unsigned x = 0, y = 1, z = 1;
  emu_dim3(unsigned x_ = 0, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
typedef emu_dim3 dim3;
struct double2 { double x, y; };
inline double2 make_double2(double x, double y) { return {x, y}; }
struct float4 { float x, y, z, w; };
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
struct uint4 { unsigned x, y, z, w; };
inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return {x, y, z, w}; }
extern thread_local emu_dim3 threadIdx, blockIdx;
extern emu_dim3 blockDim, gridDim;
extern std::barrier<> *emu_bar;
extern unsigned char *emu_dynsmem;
inline void __syncthreads() { emu_bar->arrive_and_wait(); }
/* a warp shuffle: every thread of the block takes part (uniform control flow), blocks run one at a time */
extern uint64_t emu_shfl_buf[1024];
template <typename T> T __shfl_xor_sync(unsigned, T v, int m) {
  static_assert(sizeof(T) <= 8, "emu shuffle: 8 bytes at most");
  unsigned t = threadIdx.x + threadIdx.y * blockDim.x + threadIdx.z * blockDim.x * blockDim.y;
  memcpy(&emu_shfl_buf[t], &v, sizeof(T));
  emu_bar->arrive_and_wait();
  T r;
  memcpy(&r, &emu_shfl_buf[t ^ (unsigned)m], sizeof(T));
  emu_bar->arrive_and_wait();
  return r;
}
typedef void *cudaStream_t;
typedef void *cudaEvent_t; /* events: no timing on the host */
inline int cudaEventCreate(cudaEvent_t *e) { *e = nullptr; return 0; }
inline int cudaEventRecord(cudaEvent_t, cudaStream_t) { return 0; }
inline int cudaEventSynchronize(cudaEvent_t) { return 0; }
inline int cudaEventElapsedTime(float *ms, cudaEvent_t, cudaEvent_t) { *ms = 0; return 0; }
inline int cudaEventDestroy(cudaEvent_t) { return 0; }
typedef int cudaError_t;
enum { cudaSuccess = 0 };
enum cudaMemcpyKind { cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost, cudaMemcpyDeviceToDevice };
enum { cudaFuncAttributeMaxDynamicSharedMemorySize = 8, cudaDevAttrMaxSharedMemoryPerBlockOptin = 97, cudaDevAttrComputeCapabilityMajor = 75 };
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
inline unsigned atomicAdd(unsigned *p, unsigned v) { static std::mutex m; std::lock_guard<std::mutex> l(m); unsigned o = *p; *p += v; return o; }
inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }
template <typename T> T __ldcg(const T *p) { return *p; }
/* a 1-D grid is capped at 3 blocks (those kernels loop grid-stride); a dim3 grid runs whole; a
 * block's threads are OS threads */
template <typename I> emu_dim3 emu_grid(I n) { return emu_dim3((unsigned)(n < 3 ? n : 3)); }
inline emu_dim3 emu_grid(emu_dim3 g) { return g; }
template <typename I> emu_dim3 emu_block(I n) { return emu_dim3((unsigned)n); }
inline emu_dim3 emu_block(emu_dim3 b) { return b; }
/* EMU_TRACE=1: each launch's kernel name on stderr (to count the launches of an op) */
template <typename G, typename K, typename F> void emu_launch(const char *name, G grid, K block, size_t shm, F f) {
  static const char *trace = getenv("EMU_TRACE");
  if (trace && trace[0] == '1') fprintf(stderr, "emu launch %s\n", name);
  gridDim = emu_grid(grid);
  blockDim = emu_block(block);
  unsigned nt = blockDim.x * blockDim.y * blockDim.z;
  std::vector<unsigned char> sm(shm + 16);
  emu_dynsmem = sm.data();
  /* EMU_BLOCK_ORDER=reverse runs the blocks last to first (a block that waits for the others, as
   * the column sums' last block does, must not rely on the launch order) */
  static const char *order = getenv("EMU_BLOCK_ORDER");
  bool rev = order && !strcmp(order, "reverse");
  unsigned nb = gridDim.x * gridDim.y * gridDim.z;
  for (unsigned i = 0; i < nb; i++) {
    unsigned b = rev ? nb - 1 - i : i, bx = b % gridDim.x, by = b / gridDim.x % gridDim.y, bz = b / (gridDim.x * gridDim.y);
    std::barrier<> bar((std::ptrdiff_t)nt);
    emu_bar = &bar;
    std::vector<std::thread> ts;
    for (unsigned t = 0; t < nt; t++)
      ts.emplace_back([&, t, bx, by, bz] {
        threadIdx = emu_dim3(t % blockDim.x, t / blockDim.x % blockDim.y, t / (blockDim.x * blockDim.y));
        blockIdx = emu_dim3(bx, by, bz);
        f();
      });
    for (auto &th : ts) th.join();
  }
}
