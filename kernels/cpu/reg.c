/* reg.c: the CPU column of the regularizer ops (VR_OP_VISREG .. VR_OP_INVARIANCE), the shared
 * backward kernel (the forward already computed dL/dz; backward scales it by the upstream
 * gradient), and the finite check of z (the slice draws are in reg_draw.c).
 * The kernel-args convention of each op is documented at the top of its front-end in core/reg/,
 * its slots named in core/reg/reg_args.h.
 *
 * The regularizers on the CPU, file by file:
 *   reg.c              registration, the shared backward, the finite check
 *   reg_sliced.c/.inc  VISReg, SWD and SIGReg: projections by GEMM, rank sort, terms, gradient
 *   reg_draw.c         their slice matrices, drawn from Philox (core/reg/slices.h)
 *   reg_zpass.c        VISReg's passes over z by blocks of dims (centre and scale terms)
 *   reg_sort.c         the rank sort (radix), reg_sort_net.c the short segments' AVX-512 network
 *   reg_gram.c/.inc    VICReg (two views and pooled), Barlow Twins and the invariance term */
#include "cpu.h"
#include "../../core/reg/reg.h"
#include <math.h>
#include <stdlib.h>

vr_status vr_cpu_visreg_fwd(const vr_kernel_args *a);
vr_status vr_cpu_swd_fwd(const vr_kernel_args *a);
vr_status vr_cpu_sigreg_fwd(const vr_kernel_args *a);
vr_status vr_cpu_vicreg_fwd(const vr_kernel_args *a);
vr_status vr_cpu_vicreg_pooled_fwd(const vr_kernel_args *a);
vr_status vr_cpu_barlow_fwd(const vr_kernel_args *a);
vr_status vr_cpu_invariance_fwd(const vr_kernel_args *a);

/* out[0] = in[0] (0-dim upstream gradient) * in[1] (the saved dL/dz, contiguous) */
static vr_status vr_cpu_reg_bwd(const vr_kernel_args *a) {
  const vr_tensor *go = a->in[0], *g = a->in[1];
  vr_tensor *o = a->out[0];
  double s = vr_load(vr_data(go), go->dtype);
  int64_t n = vr_tensor_numel(g);
  if (s == 1.0) { /* the usual case, the loss itself is differentiated */
    memcpy(vr_data(o), vr_data(g), (size_t)n * vr_dtype_size(g->dtype));
    return VR_OK;
  }
  if (g->dtype == VR_F32) {
    const float *x = vr_data(g);
    float *y = vr_data(o), sf = (float)s;
#pragma omp parallel for schedule(static) if (n > (1 << 16))
    for (int64_t i = 0; i < n; i++) y[i] = sf * x[i];
  } else {
    const double *x = vr_data(g);
    double *y = vr_data(o);
#pragma omp parallel for schedule(static) if (n > (1 << 16))
    for (int64_t i = 0; i < n; i++) y[i] = s * x[i];
  }
  return VR_OK;
}


/* the index of x's first non-finite element, -1 when none (a parallel test first: the usual case) */
#define FIRST_NONFINITE(T)                                                        \
  static int64_t first_nonfinite_##T(const T *x, int64_t n) {                     \
    int any = 0;                                                                  \
    _Pragma("omp parallel for schedule(static) reduction(| : any) if (n > (1 << 18))") \
    for (int64_t i = 0; i < n; i++) any |= !isfinite(x[i]);                       \
    for (int64_t i = 0; any && i < n; i++)                                        \
      if (!isfinite(x[i])) return i;                                              \
    return -1;                                                                    \
  }
FIRST_NONFINITE(float)
FIRST_NONFINITE(double)

vr_status vr_reg_check_finite(const char *func, const vr_tensor *z) {
  int64_t n = vr_tensor_numel(z);
  int64_t bad = z->dtype == VR_F32 ? first_nonfinite_float(vr_data(z), n) : first_nonfinite_double(vr_data(z), n);
  if (bad < 0) return VR_OK;
  double v = vr_load((const char *)vr_data(z) + bad * vr_dtype_size(z->dtype), z->dtype);
  int64_t D = z->shape[z->ndim - 1], B = z->ndim >= 2 ? z->shape[z->ndim - 2] : 1;
  return vr_error_set(VR_E_VALUE, func, __FILE__, __LINE__,
                      "z: expected finite values, got %g at [%lld, %lld, %lld]", v, (long long)(bad / (B * D)),
                      (long long)(bad / D % B), (long long)(bad % D));
}

void vr_cpu_register_reg(void) {
  vr_kernel_register(VR_OP_VISREG, VR_CPU, vr_cpu_visreg_fwd, vr_cpu_reg_bwd);
  vr_kernel_register(VR_OP_SWD, VR_CPU, vr_cpu_swd_fwd, vr_cpu_reg_bwd);
  vr_kernel_register(VR_OP_SIGREG, VR_CPU, vr_cpu_sigreg_fwd, vr_cpu_reg_bwd);
  vr_kernel_register(VR_OP_VICREG, VR_CPU, vr_cpu_vicreg_fwd, vr_cpu_reg_bwd);
  vr_kernel_register(VR_OP_VICREG_POOLED, VR_CPU, vr_cpu_vicreg_pooled_fwd, vr_cpu_reg_bwd);
  vr_kernel_register(VR_OP_BARLOW, VR_CPU, vr_cpu_barlow_fwd, vr_cpu_reg_bwd);
  vr_kernel_register(VR_OP_INVARIANCE, VR_CPU, vr_cpu_invariance_fwd, vr_cpu_reg_bwd);
}
