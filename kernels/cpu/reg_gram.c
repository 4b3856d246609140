/* reg_gram.c: CPU kernels of the Gram-matrix regularizers (VICReg, its pooled variant, Barlow
 * Twins) and of the invariance term; conventions at the top of core/reg/vicreg.c, barlow.c and
 * invariance.c. D x D Gram matrices and their gradients go through BLAS; statistics are kept in
 * double. The float and double versions come from reg_gram.inc. */
#include "cpu.h"
#include "../../core/reg/reg.h"
#include <cblas.h>
#include <math.h>
#include <stdlib.h>

#define T float
#define SFX f32
#define GEMM cblas_sgemm
#include "reg_gram.inc"
#undef T
#undef SFX
#undef GEMM

#define T double
#define SFX f64
#define GEMM cblas_dgemm
#include "reg_gram.inc"
#undef T
#undef SFX
#undef GEMM

vr_status vr_cpu_vicreg_fwd(const vr_kernel_args *a) {
  return a->in[0]->dtype == VR_F32 ? vicreg_f32(a) : vicreg_f64(a);
}
vr_status vr_cpu_vicreg_pooled_fwd(const vr_kernel_args *a) {
  return a->in[0]->dtype == VR_F32 ? vicreg_pooled_f32(a) : vicreg_pooled_f64(a);
}
vr_status vr_cpu_barlow_fwd(const vr_kernel_args *a) {
  return a->in[0]->dtype == VR_F32 ? barlow_f32(a) : barlow_f64(a);
}
vr_status vr_cpu_invariance_fwd(const vr_kernel_args *a) {
  return a->in[0]->dtype == VR_F32 ? invariance_f32(a) : invariance_f64(a);
}
