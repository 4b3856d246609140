/* conv_direct.h: the direct f32 convolution of kernels/cpu/conv_direct.c (dilation 1,
 * one group, NCHW), used by kernels/cpu/conv.c where it applies; and its test hook. */
#ifndef VISREG_CONV_DIRECT_H
#define VISREG_CONV_DIRECT_H
#include "../../core/internal.h"

/* instruction sets of the direct kernels; VR_CONV_ISA_NONE leaves every convolution to im2col */
enum { VR_CONV_ISA_AUTO = -1, VR_CONV_ISA_NONE = 0, VR_CONV_ISA_AVX2 = 1, VR_CONV_ISA_AVX512 = 2 };

/* Test and benchmark hook: run the direct kernels with this instruction set (VR_CONV_ISA_AUTO: the
 * best the CPU has, chosen by CPUID). Returns the set in effect afterwards; one the CPU lacks is
 * refused (the setting stays). */
int vr_cpu_conv_force_isa(int isa);
/* the instruction set the direct kernels use now */
int vr_cpu_conv_isa(void);

/* whether conv2d with these arguments (core/ops/conv.c's i[]) on x [N, C, H, W] and w [Co, C, kh, kw]
 * runs on the direct kernels */
bool vr_cpu_conv_direct_ok(const vr_tensor *x, const vr_tensor *w, const int64_t *i);
/* whether its backward-data runs on the direct kernels too (stride 1; otherwise conv.c's im2col) */
bool vr_cpu_conv_direct_gx_ok(const int64_t *i);
/* y = conv(x, w) + b (b may be NULL) */
vr_status vr_cpu_conv_direct_fwd(const vr_tensor *x, const vr_tensor *w, const vr_tensor *b, const int64_t *i,
                                 vr_tensor *y);
/* gx and gw from gy (either output may be NULL); the bias gradient is the caller's */
vr_status vr_cpu_conv_direct_bwd(const vr_tensor *gy, const vr_tensor *x, const vr_tensor *w, const int64_t *i,
                                 vr_tensor *gx, vr_tensor *gw);
#endif
