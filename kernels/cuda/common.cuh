/* common.cuh: what the CUDA kernels share: error checks that become VR_E_CUDA, the stream, the
 * strided geometry (the device twin of kernels/cpu/iter.c), dtype dispatch, bf16 conversion that
 * rounds exactly as the CPU does, and the registration hooks of each family. */
#ifndef VISREG_CUDA_COMMON_CUH
#define VISREG_CUDA_COMMON_CUH
#include <cuda_runtime.h>
#include <stdint.h>
#include <string.h>
/* visreg.h has no extern "C" of its own: give its declarations C linkage here */
extern "C" {
#include "../../core/visreg.h"
}
#include "../../core/internal.h"

/* ---- errors: a failed CUDA call records "func: CALL: cuda error string (file:line)" ---- */
#define VR_CU(call)                                                                                     \
  do {                                                                                                  \
    cudaError_t vr_cu_e_ = (call);                                                                      \
    if (vr_cu_e_ != cudaSuccess)                                                                        \
      return vr_error_set(VR_E_CUDA, __func__, __FILE__, __LINE__, "%s: %s (%s)", #call,                \
                          cudaGetErrorString(vr_cu_e_), cudaGetErrorName(vr_cu_e_));                    \
  } while (0)
/* after a launch: catches bad configurations and earlier asynchronous faults */
#define VR_CU_LAUNCHED(name)                                                                            \
  do {                                                                                                  \
    cudaError_t vr_cu_e_ = cudaGetLastError();                                                          \
    if (vr_cu_e_ != cudaSuccess)                                                                        \
      return vr_error_set(VR_E_CUDA, __func__, __FILE__, __LINE__, "launch of %s: %s (%s)", name,        \
                          cudaGetErrorString(vr_cu_e_), cudaGetErrorName(vr_cu_e_));                    \
  } while (0)
#define VR_CU_UNSUPPORTED_DTYPE(what, dt)                                                               \
  vr_error_set(VR_E_UNSUPPORTED, __func__, __FILE__, __LINE__, "%s: no CUDA kernel for dtype %s", what, \
               vr_dtype_name(dt))

/* ---- the stream every kernel and copy runs on (kernels/cuda/alloc.cu) ---- */
cudaStream_t vr_cuda_stream(void);
/* scratch device memory through the caching allocator (freed in stream order) */
vr_status vr_cuda_scratch(size_t nbytes, void **ptr);
void vr_cuda_scratch_free(void *ptr, size_t nbytes);
/* n zeroed block counters on the device, shared by every kernel (they run one after another on
 * the one stream): a kernel that counts in them must leave them zero when it ends (colsum.cuh) */
vr_status vr_cuda_tickets(size_t n, unsigned **ptr);

/* ---- launch geometry ---- */
#define VR_CU_THREADS 256
static inline unsigned vr_cu_blocks(int64_t n, int threads = VR_CU_THREADS) {
  int64_t b = (n + threads - 1) / threads;
  if (b > (int64_t)1 << 20) b = (int64_t)1 << 20; /* kernels loop grid-stride beyond this */
  return (unsigned)(b < 1 ? 1 : b);
}

/* a grid-stride loop over [0, n): every kernel launched with vr_cu_blocks(n) blocks */
#define GRID_LOOP(i, n) \
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < (n); i += (int64_t)gridDim.x * blockDim.x)

/* ---- strided geometry over same-shaped operands (stride 0 for broadcast dims) ---- */
#define VR_CU_MAX_OPS 5
struct vr_cu_geom {
  int ndim, nops;
  int64_t numel;
  int64_t shape[VR_MAX_DIMS];
  int64_t st[VR_CU_MAX_OPS][VR_MAX_DIMS];
  bool contiguous; /* every operand is dense row-major over numel elements */
};
/* ts[0..nops) all of ts[0]'s shape: size-1 dims dropped, dims merged where contiguous for all */
void vr_cu_geom_init(vr_cu_geom *g, int nops, vr_tensor *const *ts);

/* element offset (in elements) of linear index i for operand k */
__device__ __forceinline__ int64_t vr_cu_offset(const vr_cu_geom &g, int k, int64_t i) {
  int64_t off = 0;
  for (int d = g.ndim - 1; d >= 0; d--) {
    int64_t s = g.shape[d];
    int64_t q = i / s;
    off += (i - q * s) * g.st[k][d];
    i = q;
  }
  return off;
}

/* ---- bf16 stored as raw uint16, converted exactly like kernels/cpu/cpu.h ---- */
struct vr_bf16 {
  uint16_t x;
};
__host__ __device__ __forceinline__ float vr_bf16_to_f(vr_bf16 v) {
#ifdef __CUDA_ARCH__
  return __uint_as_float((uint32_t)v.x << 16);
#else
  uint32_t u = (uint32_t)v.x << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
#endif
}
__host__ __device__ __forceinline__ vr_bf16 vr_f_to_bf16(float f) {
#ifdef __CUDA_ARCH__
  uint32_t u = __float_as_uint(f);
#else
  uint32_t u;
  memcpy(&u, &f, 4);
#endif
  vr_bf16 r;
  if ((u & 0x7fffffffu) > 0x7f800000u) { /* NaN stays a quiet NaN, as the CPU */
    r.x = (uint16_t)((u >> 16) | 0x40);
    return r;
  }
  u += 0x7fff + ((u >> 16) & 1); /* round to nearest even, as the CPU */
  r.x = (uint16_t)(u >> 16);
  return r;
}

/* load as double / store from double: the generic path, identical to vr_load/vr_store */
template <typename T> struct vr_cu_conv {
  __device__ __forceinline__ static double load(T v) { return (double)v; }
  __device__ __forceinline__ static T store(double v) { return (T)v; }
};
template <> struct vr_cu_conv<vr_bf16> {
  __device__ __forceinline__ static double load(vr_bf16 v) { return (double)vr_bf16_to_f(v); }
  __device__ __forceinline__ static vr_bf16 store(double v) { return vr_f_to_bf16((float)v); }
};
template <> struct vr_cu_conv<float> {
  __device__ __forceinline__ static double load(float v) { return (double)v; }
  __device__ __forceinline__ static float store(double v) { return (float)v; }
};

/* the arithmetic type of an element type: float for f32 and bf16, double for f64 */
template <typename T> struct vr_cu_acc { typedef T type; };
template <> struct vr_cu_acc<vr_bf16> { typedef float type; };
template <typename T> __device__ __forceinline__ typename vr_cu_acc<T>::type vr_cu_ld(T v) { return v; }
template <> __device__ __forceinline__ float vr_cu_ld<vr_bf16>(vr_bf16 v) { return vr_bf16_to_f(v); }
template <typename T> __device__ __forceinline__ T vr_cu_st(typename vr_cu_acc<T>::type v) { return v; }
template <> __device__ __forceinline__ vr_bf16 vr_cu_st<vr_bf16>(float v) { return vr_f_to_bf16(v); }

/* calls F::template run<T>(args...) for the float dtypes; returns VR_E_UNSUPPORTED otherwise */
#define VR_CU_FLOAT_SWITCH(dt, what, ...)                        \
  switch (dt) {                                                  \
  case VR_F32: { typedef float T; __VA_ARGS__; } break;          \
  case VR_F64: { typedef double T; __VA_ARGS__; } break;         \
  case VR_BF16: { typedef vr_bf16 T; __VA_ARGS__; } break;       \
  default: return VR_CU_UNSUPPORTED_DTYPE(what, dt);             \
  }
#define VR_CU_ALL_SWITCH(dt, what, ...)                          \
  switch (dt) {                                                  \
  case VR_F32: { typedef float T; __VA_ARGS__; } break;          \
  case VR_F64: { typedef double T; __VA_ARGS__; } break;         \
  case VR_BF16: { typedef vr_bf16 T; __VA_ARGS__; } break;       \
  case VR_I32: { typedef int32_t T; __VA_ARGS__; } break;        \
  case VR_I64: { typedef int64_t T; __VA_ARGS__; } break;        \
  case VR_U8: { typedef uint8_t T; __VA_ARGS__; } break;         \
  default: return VR_CU_UNSUPPORTED_DTYPE(what, dt);             \
  }

/* ---- families: each kernels/cuda/<family>.cu registers its kernels (register.cu lists them all:
 * a missing family fails at link time) ---- */
extern "C" {
void vr_cuda_register_alloc(void);
void vr_cuda_register_basic(void);
void vr_cuda_register_elementwise(void);
void vr_cuda_register_where(void);
void vr_cuda_register_reduce(void);
void vr_cuda_register_linalg(void);
void vr_cuda_register_softmax(void);
void vr_cuda_register_norm(void);
void vr_cuda_register_pool(void);
void vr_cuda_register_conv(void);
void vr_cuda_register_index(void);
void vr_cuda_register_sort(void);
void vr_cuda_register_reg(void);
void vr_cuda_register_optim(void);
void vr_cuda_register_augment(void);
}
#endif
