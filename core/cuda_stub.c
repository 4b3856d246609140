/* cuda_stub.c: the CUDA entry points of a build without the CUDA backend (make CUDA=0). */
#include "internal.h"

void vr_cuda_register(void) {}
int vr_cuda_compiled(void) { return 0; }
int vr_cuda_available(void) { return 0; }
const char *vr_cuda_device_name(void) { return ""; }
