/* conv_winograd.h: the f32 3 x 3 stride-1 convolution of kernels/cpu/conv_winograd.c (Winograd's
 * F(4 x 4, 3 x 3)), used by kernels/cpu/conv.c for the forward and both gradients where it
 * applies. */
#ifndef VISREG_CONV_WINOGRAD_H
#define VISREG_CONV_WINOGRAD_H
#include "../../core/internal.h"

/* whether conv2d with these arguments (core/ops/conv.c's i[]) on x [N, C, H, W] and w [Co, C, kh, kw]
 * runs its forward and both gradients by Winograd (variant cpu_winograd=on: 3 x 3, stride 1, NCHW,
 * padding up to 2, and enough channels on both sides for its gemms to pay) */
bool vr_cpu_conv_winograd_ok(const vr_tensor *x, const vr_tensor *w, const int64_t *i);
/* y = conv(x, w) + b (b may be NULL) */
vr_status vr_cpu_conv_winograd_fwd(const vr_tensor *x, const vr_tensor *w, const vr_tensor *b, const int64_t *i,
                                   vr_tensor *y);
/* gx = the gradient of conv(x, w) with respect to x, from gy */
vr_status vr_cpu_conv_winograd_gx(const vr_tensor *gy, const vr_tensor *w, const int64_t *i, vr_tensor *gx);
/* gw = the gradient of conv(x, w) with respect to w, from gy (the bias gradient is the caller's) */
vr_status vr_cpu_conv_winograd_gw(const vr_tensor *gy, const vr_tensor *x, const int64_t *i, vr_tensor *gw);
#endif
