/* cuda_stub.c: the CUDA entry points of a build without the CUDA backend (make CUDA=0). */
#include "internal.h"

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
