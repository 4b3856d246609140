/* conv.cuh: what conv.cu (the convolution entry points, im2col, the legacy cuDNN calls) and
 * conv_plan.cu (cuDNN execution plans, cached per geometry) share: the geometry of one call. */
#ifndef VISREG_CUDA_CONV_CUH
#define VISREG_CUDA_CONV_CUH
#include "gemm.cuh"
#include "scratch.cuh"
#ifdef VR_HAVE_CUDNN
#include <cudnn.h>
#endif

/* one convolution: sizes, stride, padding, dilation, groups; nhwc: x [N, H, W, C], w [Co, kh, kw,
 * Cg], y [N, Ho, Wo, Co] (VR_OP_CONV2D's i[7] = 1), else NCHW */
struct vr_conv_geo {
  int64_t N, C, H, W, Co, kh, kw, Ho, Wo, sh, sw, ph, pw, dh, dw, G, Cg, Cog, K, P;
  bool nhwc;
};

/* the geometry of a call, from x, w and the op's integer arguments i[0..8) */
vr_conv_geo vr_conv_geo_of(const vr_tensor *x, const vr_tensor *w, const int64_t *i);

/* benchmark mode (vr_cuda_set_conv_benchmark): 1 on, 0 off, -1 from VISREG_CUDA_CONV_FIND */
extern int vr_cu_conv_benchmark;

#ifdef VR_HAVE_CUDNN
/* conv2d forward and backward (conv.cu's argument layout) through cuDNN (conv_cudnn.cu): VR_OK
 * done; VR_E_UNSUPPORTED (no message kept): no deterministic algorithm, fall back to im2col */
vr_status vr_cudnn_conv_fwd(const vr_kernel_args *a, const vr_conv_geo &g);
vr_status vr_cudnn_conv_bwd(const vr_kernel_args *a, const vr_conv_geo &g);

enum { VR_CONV_FWD = 0, VR_CONV_BWD_DATA = 1, VR_CONV_BWD_FILTER = 2 };

/* Runs one direction through a cached cuDNN execution plan (graph API): dir FWD y = conv(x, w),
 * BWD_DATA x = conv^T(y = grad_y, w), BWD_FILTER w = grad_w from x and y = grad_y; the output is
 * overwritten. measure: choose the plan by timing the candidates on the first call (benchmark
 * mode); tf32: f32 may use tensor cores. VR_OK: done; VR_E_UNSUPPORTED (no message kept): no
 * deterministic plan for this call (or pointers less aligned than the plans assume), fall back. */
vr_status vr_cudnn_plan_run(cudnnHandle_t h, const vr_conv_geo &g, vr_dtype dt, int dir, void *x, void *w, void *y,
                            bool measure, bool tf32);
#endif
#endif
