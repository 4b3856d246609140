/* bf16.c: bf16 on the CPU for kernels written for f32 (conv2d, batch norm, pooling): the kernel runs
 * on f32 twins of the bf16 tensors (widening is exact) and its f32 outputs are rounded once into the
 * bf16 outputs (nearest even). Tensors of other dtypes pass through untouched, so a kernel that
 * updates an f32 input in place (batch norm's running statistics) still does. Correct, not fast:
 * bf16 is for the tensor cores; on the CPU it exists so that autocast recipes run anywhere. */
#include "cpu.h"

static vr_status copy_to(const vr_tensor *src, vr_tensor *dst) {
  vr_kernel_args c = {.in = {(vr_tensor *)src}, .n_in = 1, .out = {dst}, .n_out = 1};
  return vr_dispatch(VR_OP_COPY, VR_CPU, 0, &c);
}

vr_status vr_cpu_via_f32(const vr_kernel_args *a, vr_kernel_fn fn) {
  vr_kernel_args f = *a;
  vr_tensor *twin_in[8] = {NULL}, *twin_out[4] = {NULL};
  vr_status st = VR_OK;
  for (int k = 0; k < a->n_in && !st; k++) {
    if (!a->in[k] || a->in[k]->dtype != VR_BF16) continue;
    st = vr_tensor_alloc(a->in[k]->ndim, a->in[k]->shape, VR_F32, VR_CPU, &twin_in[k]);
    if (!st) st = copy_to(a->in[k], twin_in[k]);
    f.in[k] = twin_in[k];
  }
  for (int k = 0; k < a->n_out && !st; k++) {
    if (!a->out[k] || a->out[k]->dtype != VR_BF16) continue;
    st = vr_tensor_alloc(a->out[k]->ndim, a->out[k]->shape, VR_F32, VR_CPU, &twin_out[k]);
    f.out[k] = twin_out[k];
  }
  if (!st) st = fn(&f);
  for (int k = 0; k < a->n_out && !st; k++)
    if (twin_out[k]) st = copy_to(twin_out[k], a->out[k]);
  for (int k = 0; k < 8; k++) vr_tensor_free(twin_in[k]);
  for (int k = 0; k < 4; k++) vr_tensor_free(twin_out[k]);
  return st;
}

/* a kernel's args hold a bf16 tensor */
bool vr_cpu_any_bf16(const vr_kernel_args *a) {
  for (int k = 0; k < a->n_in; k++)
    if (a->in[k] && a->in[k]->dtype == VR_BF16) return true;
  for (int k = 0; k < a->n_out; k++)
    if (a->out[k] && a->out[k]->dtype == VR_BF16) return true;
  return false;
}
