/* autocast.c: the thread-local mixed-precision switch (vr_autocast_set / vr_autocast_get).
 * The ops that honour it (vr_matmul, vr_conv2d, and vr_linear through vr_matmul) ask
 * vr_autocast_applies, cast their inputs with vr_autocast_cast (vr_tensor_to_dtype, so autograd
 * casts the gradients back to f32 for f32 leaves), run in bf16 with f32 accumulation, and cast the
 * result back to f32: everything downstream (norms, activations, losses) stays f32, only the
 * GEMM and convolution operands and their outputs pass through bf16. */
#include "internal.h"

static _Thread_local vr_dtype autocast_dtype = VR_F32;

vr_status vr_autocast_set(vr_dtype dtype) {
  if (dtype != VR_F32 && dtype != VR_BF16)
    return VR_FAIL(VR_E_DTYPE, "dtype: expected f32 (off) or bf16, got %s",
                   (int)dtype >= VR_F32 && (int)dtype <= VR_BF16 ? vr_dtype_name(dtype) : "an unknown dtype");
  autocast_dtype = dtype;
  return VR_OK;
}

vr_dtype vr_autocast_get(void) { return autocast_dtype; }

bool vr_autocast_applies(int n, const vr_tensor *const *ts) {
  if (autocast_dtype == VR_F32) return false;
  bool any = false;
  for (int k = 0; k < n; k++) {
    if (!ts[k]) continue;
    if (ts[k]->dtype == VR_F32) any = true;
    else if (ts[k]->dtype != autocast_dtype) return false;
  }
  return any;
}

vr_status vr_autocast_cast(int n, const vr_tensor *const *ts, vr_tensor **casted) {
  for (int k = 0; k < n; k++) casted[k] = NULL;
  for (int k = 0; k < n; k++) {
    if (!ts[k]) continue;
    vr_status st = vr_tensor_to_dtype(ts[k], autocast_dtype, &casted[k]);
    if (st) {
      for (int j = 0; j < k; j++) vr_tensor_free(casted[j]);
      for (int j = 0; j < n; j++) casted[j] = NULL;
      return st;
    }
  }
  return VR_OK;
}
