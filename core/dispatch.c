/* dispatch.c: the (op, device) kernel table, the per-device memory functions, and threads.
 * Backends fill their column at start-up; front-ends call vr_dispatch and never name a device. */
#include "internal.h"
#include <pthread.h>
#include <omp.h>

#define VR_DEVICE_COUNT 2

static vr_kernel_fn table[VR_OP_COUNT][VR_DEVICE_COUNT][2];
static vr_device_api devices[VR_DEVICE_COUNT];
static int device_present[VR_DEVICE_COUNT];
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static const char *op_names[VR_OP_COUNT] = {
    "copy", "fill", "arange", "rand", "unary", "binary", "where", "sum", "var", "maxmin", "norm",
    "matmul", "eigh", "svd", "conv2d", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "batch_norm",
    "layer_norm", "softmax", "cross_entropy", "index_select", "gather", "scatter_add", "sort",
    "one_hot", "visreg", "swd", "sigreg", "vicreg", "vicreg_pooled", "barlow", "invariance",
    "augment", "adamw"};

const char *vr_op_name(vr_op op) { return (op >= 0 && op < VR_OP_COUNT) ? op_names[op] : "?"; }

static void init_backends(void) {
  vr_cpu_register();
  vr_cuda_register();
}
void vr_backends_init(void) { pthread_once(&init_once, init_backends); }

void vr_kernel_register(vr_op op, vr_device dev, vr_kernel_fn fwd, vr_kernel_fn bwd) {
  if (op < 0 || op >= VR_OP_COUNT || dev < 0 || dev >= VR_DEVICE_COUNT) return;
  table[op][dev][0] = fwd;
  table[op][dev][1] = bwd;
}

int vr_kernel_exists(vr_op op, vr_device dev, int backward) {
  vr_backends_init();
  return op >= 0 && op < VR_OP_COUNT && dev >= 0 && dev < VR_DEVICE_COUNT && table[op][dev][backward ? 1 : 0];
}

vr_status vr_dispatch(vr_op op, vr_device dev, int backward, const vr_kernel_args *a) {
  vr_backends_init();
  if (op < 0 || op >= VR_OP_COUNT || dev < 0 || dev >= VR_DEVICE_COUNT)
    return VR_FAIL(VR_E_INTERNAL, "op %d on device %d: no such entry", (int)op, (int)dev);
  vr_kernel_fn fn = table[op][dev][backward ? 1 : 0];
  if (!fn)
    return VR_FAIL(VR_E_UNSUPPORTED, "%s%s: no kernel on %s", vr_op_name(op), backward ? " backward" : "",
                   vr_device_name(dev));
  if (vr_profile_enabled()) return vr_profile_call(op, dev, backward, a, fn);
  return fn(a);
}

void vr_device_register(vr_device dev, const vr_device_api *api) {
  if (dev < 0 || dev >= VR_DEVICE_COUNT || !api) return;
  devices[dev] = *api;
  device_present[dev] = 1;
}

const vr_device_api *vr_device_get(vr_device dev) {
  vr_backends_init();
  if (dev < 0 || dev >= VR_DEVICE_COUNT || !device_present[dev]) return NULL;
  return &devices[dev];
}

/* ---- threads ---- */

int vr_num_threads(void) { return omp_get_max_threads(); }
void vr_set_num_threads(int n) {
  if (n > 0) omp_set_num_threads(n);
}

void vr_parallel_for(int64_t n, int64_t grain, void (*fn)(void *ctx, int64_t lo, int64_t hi), void *ctx) {
  if (n <= 0) return;
  if (grain < 1) grain = 1;
  int nt = omp_get_max_threads();
  int64_t chunks = (n + grain - 1) / grain;
  if (chunks > nt) chunks = nt;
  if (chunks <= 1 || omp_in_parallel()) {
    fn(ctx, 0, n);
    return;
  }
#pragma omp parallel for num_threads((int)chunks) schedule(static, 1)
  for (int64_t c = 0; c < chunks; c++) {
    int64_t lo = n * c / chunks, hi = n * (c + 1) / chunks;
    fn(ctx, lo, hi);
  }
}
