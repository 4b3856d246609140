/* cuda_stub.c: the CUDA entry points of a build without the CUDA backend (make CUDA=0). */
#include "internal.h"
#include "dist.h"

void vr_cuda_register(void) {}
int vr_cuda_compiled(void) { return 0; }
int vr_cuda_available(void) { return 0; }
const char *vr_cuda_device_name(void) { return ""; }

/* CUDA memory statistics of a CPU-only build: nothing is ever allocated */
int64_t vr_cuda_memory_allocated(void) { return 0; }
int64_t vr_cuda_memory_reserved(void) { return 0; }
int64_t vr_cuda_memory_peak(void) { return 0; }
int64_t vr_cuda_malloc_count(void) { return 0; }
int64_t vr_cuda_cache_hits(void) { return 0; }
int vr_cuda_caching_enabled(void) { return 0; }
void vr_cuda_reset_peak(void) {}
vr_status vr_cuda_empty_cache(void) { return VR_OK; }
vr_status vr_cuda_synchronize(void) { return VR_OK; }
/* weak: the CUDA emulator (tools/cuda-emu) links conv.cu beside this file */
__attribute__((weak)) void vr_cuda_set_conv_benchmark(int on) { (void)on; }

/* NCCL: absent in a CPU-only build (CUDA tensors do not exist there) */
vr_status vr_nccl_open(int rank, int size, int local_rank, vr_status (*bcast)(void *buf, size_t nbytes, int root)) {
  (void)rank, (void)size, (void)local_rank, (void)bcast;
  return VR_FAIL(VR_E_UNSUPPORTED, "NCCL: this build has no CUDA backend");
}
int vr_nccl_ready(void) { return 0; }
vr_status vr_nccl_all_reduce_sum(void *buf, size_t count, vr_dtype dt) { return VR_FAIL(VR_E_UNSUPPORTED, "NCCL: no CUDA backend"); }
vr_status vr_nccl_all_gather(const void *send, void *recv, size_t nbytes) { return VR_FAIL(VR_E_UNSUPPORTED, "NCCL: no CUDA backend"); }
vr_status vr_nccl_broadcast(void *buf, size_t nbytes, int root) { return VR_FAIL(VR_E_UNSUPPORTED, "NCCL: no CUDA backend"); }
void vr_nccl_close(void) {}
