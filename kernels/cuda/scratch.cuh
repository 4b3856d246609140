/* scratch.cuh: scratch buffers that free themselves (stream-ordered through the caching allocator)
 * and a launch check for paths that must free scratch before returning. */
#ifndef VISREG_CUDA_SCRATCH_CUH
#define VISREG_CUDA_SCRATCH_CUH
#include "common.cuh"

/* a failed launch as VR_E_CUDA (for paths that must free scratch before returning) */
static inline vr_status vr_cu_launch_status(const char *func, const char *file, int line, const char *what) {
  cudaError_t e = cudaGetLastError();
  if (e == cudaSuccess) return VR_OK;
  return vr_error_set(VR_E_CUDA, func, file, line, "launch of %s: %s (%s)", what, cudaGetErrorString(e),
                      cudaGetErrorName(e));
}
#define VR_CU_LAUNCH_ST(what) vr_cu_launch_status(__func__, __FILE__, __LINE__, what)

/* scratch that frees itself (stream-ordered through the caching allocator) */
struct vr_cu_buf {
  void *p = nullptr;
  size_t n = 0;
  vr_status get(size_t bytes) {
    n = bytes ? bytes : 1;
    return vr_cuda_scratch(n, &p);
  }
  template <typename T> T *as() const { return (T *)p; }
  ~vr_cu_buf() {
    if (p) vr_cuda_scratch_free(p, n);
  }
  vr_cu_buf() = default;
  vr_cu_buf(const vr_cu_buf &) = delete;
  vr_cu_buf &operator=(const vr_cu_buf &) = delete;
};
#endif
