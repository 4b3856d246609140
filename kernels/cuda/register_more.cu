/* register_more.cu: registers the second group of CUDA kernels (index, sort, pooling, conv,
 * regularizers, augmentations; WHERE is elementwise.cu's) in the op table. Called by core/dispatch.c after vr_cuda_register (weak hook, see
 * core/internal.h); registers nothing when no GPU is present, like vr_cuda_register. */
#include "more.cuh"

extern "C" {
vr_status vr_cuda_index_select_fwd(const vr_kernel_args *a);
vr_status vr_cuda_index_select_bwd(const vr_kernel_args *a);
vr_status vr_cuda_gather_fwd(const vr_kernel_args *a);
vr_status vr_cuda_scatter_add_fwd(const vr_kernel_args *a);
vr_status vr_cuda_one_hot_fwd(const vr_kernel_args *a);
vr_status vr_cuda_sort_fwd(const vr_kernel_args *a);
vr_status vr_cuda_max_pool2d_fwd(const vr_kernel_args *a);
vr_status vr_cuda_max_pool2d_bwd(const vr_kernel_args *a);
vr_status vr_cuda_avg_pool2d_fwd(const vr_kernel_args *a);
vr_status vr_cuda_avg_pool2d_bwd(const vr_kernel_args *a);
vr_status vr_cuda_adaptive_avg_pool2d_fwd(const vr_kernel_args *a);
vr_status vr_cuda_adaptive_avg_pool2d_bwd(const vr_kernel_args *a);
vr_status vr_cuda_conv2d_fwd(const vr_kernel_args *a);
vr_status vr_cuda_conv2d_bwd(const vr_kernel_args *a);
/* the regularizers (reg.cu), weak so that this file links while they are absent */
void vr_cuda_register_reg(void) __attribute__((weak));
/* the multi-tensor optimiser ops (optim.cu), weak likewise */
void vr_cuda_register_optim(void) __attribute__((weak));
/* the augmentations (augment.cu), weak likewise */
void vr_cuda_register_augment(void) __attribute__((weak));

void vr_cuda_register_more(void) {
  if (!vr_cuda_available()) return;
  vr_kernel_register(VR_OP_INDEX_SELECT, VR_CUDA, vr_cuda_index_select_fwd, vr_cuda_index_select_bwd);
  vr_kernel_register(VR_OP_GATHER, VR_CUDA, vr_cuda_gather_fwd, NULL);
  vr_kernel_register(VR_OP_SCATTER_ADD, VR_CUDA, vr_cuda_scatter_add_fwd, NULL);
  vr_kernel_register(VR_OP_ONE_HOT, VR_CUDA, vr_cuda_one_hot_fwd, NULL);
  vr_kernel_register(VR_OP_SORT, VR_CUDA, vr_cuda_sort_fwd, NULL);
  vr_kernel_register(VR_OP_MAXPOOL2D, VR_CUDA, vr_cuda_max_pool2d_fwd, vr_cuda_max_pool2d_bwd);
  vr_kernel_register(VR_OP_AVGPOOL2D, VR_CUDA, vr_cuda_avg_pool2d_fwd, vr_cuda_avg_pool2d_bwd);
  vr_kernel_register(VR_OP_ADAPTIVE_AVGPOOL2D, VR_CUDA, vr_cuda_adaptive_avg_pool2d_fwd, vr_cuda_adaptive_avg_pool2d_bwd);
  vr_kernel_register(VR_OP_CONV2D, VR_CUDA, vr_cuda_conv2d_fwd, vr_cuda_conv2d_bwd);
  if (vr_cuda_register_reg) vr_cuda_register_reg();
  if (vr_cuda_register_optim) vr_cuda_register_optim();
  if (vr_cuda_register_augment) vr_cuda_register_augment();
}
}
