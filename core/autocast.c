/* autocast.c: the thread-local mixed-precision switch (vr_autocast_set / vr_autocast_get).
 * The ops that honour it (vr_matmul, vr_conv2d, and vr_linear through vr_matmul) ask
 * vr_autocast_applies, cast their inputs with vr_autocast_cast (vr_tensor_to_dtype, so autograd
 * casts the gradients back to f32 for f32 leaves) and run in bf16 with f32 accumulation. matmul
 * and linear return f32; conv2d returns bf16, as PyTorch does, so convolutional activations stay
 * bf16 through batch norm (f32 parameters), ReLU, adds and pooling. Where a bf16 tensor meets an
 * f32 one under autocast (binary elementwise ops, concat) it is widened to f32 (vr_autocast_mixed,
 * vr_autocast_widen); outside autocast mixed dtypes stay an error. */
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

bool vr_autocast_mixed(int n, const vr_tensor *const *ts) {
  if (autocast_dtype == VR_F32) return false;
  bool low = false, f32 = false;
  for (int k = 0; k < n; k++) {
    if (!ts[k]) continue;
    if (ts[k]->dtype == autocast_dtype) low = true;
    else if (ts[k]->dtype == VR_F32) f32 = true;
    else return false;
  }
  return low && f32;
}

vr_status vr_autocast_widen(int n, const vr_tensor *const *ts, vr_tensor **wide) {
  for (int k = 0; k < n; k++) wide[k] = NULL;
  for (int k = 0; k < n; k++) {
    vr_status st = ts[k] ? vr_tensor_to_dtype(ts[k], VR_F32, &wide[k]) : VR_OK;
    if (st) {
      for (int j = 0; j < k; j++) vr_tensor_free(wide[j]);
      for (int j = 0; j < n; j++) wide[j] = NULL;
      return st;
    }
  }
  return VR_OK;
}
