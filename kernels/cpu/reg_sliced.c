/* reg_sliced.c: CPU kernels of the sliced regularizers, VISReg, SWD and SIGReg (conventions at
 * the top of core/reg/visreg.c, swd.c, sigreg.c). The slices are processed in chunks of c
 * columns: P^T = W_c^T X^T (c x VB, one GEMM), each (slice, view) row segment of B values is
 * ranked (radix sort) or Epps-Pulley-summed in parallel and overwritten with dL/dP, and
 * H += (dL/dP) W_c^T (one GEMM). Memory: O(V B D + V B c + D K). Per-segment losses are summed
 * in a fixed order, so the result does not depend on the thread count. The float and double
 * versions come from reg_sliced.inc. */
#include "cpu.h"
#include "../../core/reg/reg.h"
#include <cblas.h>
#include <math.h>
#include <stdlib.h>

enum { SL_VISREG = 0, SL_SWD = 1, SL_SIGREG = 2 };

/* elements of the P^T chunk buffer when the kernel chooses the chunk */
#define SL_CHUNK_BUDGET ((int64_t)1 << 21)

static int64_t sl_chunk(int64_t want, int64_t K, int64_t VB) {
  int64_t c = want > 0 ? want : SL_CHUNK_BUDGET / VB;
  if (c < 1) c = 1;
  if (c > K) c = K;
  return c;
}

#define T float
#define SFX f32
#define GEMM cblas_sgemm
#define ARGSORT vr_reg_argsort_f32
#define SL_PAIRS
#include "reg_sliced.inc"
#undef SL_PAIRS
#undef T
#undef SFX
#undef GEMM
#undef ARGSORT

#define T double
#define SFX f64
#define GEMM cblas_dgemm
#define ARGSORT vr_reg_argsort_f64
#include "reg_sliced.inc"
#undef T
#undef SFX
#undef GEMM
#undef ARGSORT

static vr_status sliced(const vr_kernel_args *a, int mode) {
  return a->in[0]->dtype == VR_F32 ? sliced_f32(a, mode) : sliced_f64(a, mode);
}
vr_status vr_cpu_visreg_fwd(const vr_kernel_args *a) { return sliced(a, SL_VISREG); }
vr_status vr_cpu_swd_fwd(const vr_kernel_args *a) { return sliced(a, SL_SWD); }
vr_status vr_cpu_sigreg_fwd(const vr_kernel_args *a) { return sliced(a, SL_SIGREG); }
