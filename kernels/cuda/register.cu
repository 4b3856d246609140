/* register.cu: the CUDA backend's entry points: whether it is compiled and sees a GPU, the
 * device's name, and registration of the device API and every CUDA kernel in the op table.
 * Without a driver or a GPU, cudaGetDeviceCount fails or reports 0: the backend then registers
 * nothing and CUDA tensors report "device: cuda is not available". */
#include "common.cuh"
#include <mutex>
#include <stdio.h>

namespace {
std::once_flag probe_once;
int have_gpu = 0;
char gpu_name[640] = "";

void probe(void) {
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess || n <= 0) {
    cudaGetLastError(); /* no driver / no device: not an error for a CPU-only run */
    return;
  }
  cudaDeviceProp p;
  if (cudaGetDeviceProperties(&p, 0) != cudaSuccess || cudaSetDevice(0) != cudaSuccess) {
    cudaGetLastError();
    return;
  }
  snprintf(gpu_name, sizeof gpu_name, "%.200s (sm_%d%d, %d SMs, %.1f GiB)", p.name, p.major, p.minor,
           p.multiProcessorCount, (double)p.totalGlobalMem / (1024.0 * 1024.0 * 1024.0));
  have_gpu = 1;
}
} // namespace

extern "C" {

int vr_cuda_compiled(void) { return 1; }

int vr_cuda_available(void) {
  std::call_once(probe_once, probe);
  return have_gpu;
}

const char *vr_cuda_device_name(void) {
  std::call_once(probe_once, probe);
  return gpu_name;
}

void vr_cuda_register(void) {
  if (!vr_cuda_available()) return;
  vr_cuda_register_alloc();
  vr_cuda_register_basic();
  vr_cuda_register_elementwise();
  vr_cuda_register_where();
  vr_cuda_register_reduce();
  vr_cuda_register_linalg();
  vr_cuda_register_softmax();
  vr_cuda_register_norm();
  vr_cuda_register_pool();
  vr_cuda_register_conv();
  vr_cuda_register_index();
  vr_cuda_register_sort();
  vr_cuda_register_reg();
  vr_cuda_register_optim();
  vr_cuda_register_augment();
}

} // extern "C"
