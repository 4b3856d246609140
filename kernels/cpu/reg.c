/* reg.c: the CPU column of the regularizer ops (VR_OP_VISREG .. VR_OP_INVARIANCE), the shared
 * backward kernel (the forward already computed dL/dz; backward scales it by the upstream
 * gradient), and helpers: the finite check of z and the column normalisation of the slices.
 * The kernel-args convention of each op is documented at the top of its front-end in core/reg/. */
#include "cpu.h"
#include "../../core/reg/reg.h"
#include "../../core/reg/slices.h"
#include <math.h>
#include <stdlib.h>

vr_status vr_cpu_visreg_fwd(const vr_kernel_args *a);
vr_status vr_cpu_swd_fwd(const vr_kernel_args *a);
vr_status vr_cpu_sigreg_fwd(const vr_kernel_args *a);
vr_status vr_cpu_vicreg_fwd(const vr_kernel_args *a);
vr_status vr_cpu_vicreg_repo_fwd(const vr_kernel_args *a);
vr_status vr_cpu_barlow_fwd(const vr_kernel_args *a);
vr_status vr_cpu_invariance_fwd(const vr_kernel_args *a);

/* out[0] = in[0] (0-dim upstream gradient) * in[1] (the saved dL/dz, contiguous) */
static vr_status reg_bwd(const vr_kernel_args *a) {
  const vr_tensor *go = a->in[0], *g = a->in[1];
  vr_tensor *o = a->out[0];
  double s = vr_load(vr_data(go), go->dtype);
  int64_t n = vr_tensor_numel(g);
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


vr_status vr_reg_check_finite(const char *func, const vr_tensor *z) {
  int64_t n = vr_tensor_numel(z), bad = -1;
  if (z->dtype == VR_F32) {
    const float *x = vr_data(z);
    int any = 0;
#pragma omp parallel for schedule(static) reduction(| : any) if (n > (1 << 18))
    for (int64_t i = 0; i < n; i++) any |= !isfinite(x[i]);
    if (any)
      for (int64_t i = 0; i < n && bad < 0; i++)
        if (!isfinite(x[i])) bad = i;
  } else {
    const double *x = vr_data(z);
    int any = 0;
#pragma omp parallel for schedule(static) reduction(| : any) if (n > (1 << 18))
    for (int64_t i = 0; i < n; i++) any |= !isfinite(x[i]);
    if (any)
      for (int64_t i = 0; i < n && bad < 0; i++)
        if (!isfinite(x[i])) bad = i;
  }
  if (bad < 0) return VR_OK;
  double v = vr_load((const char *)vr_data(z) + bad * vr_dtype_size(z->dtype), z->dtype);
  int64_t D = z->shape[z->ndim - 1], B = z->ndim >= 2 ? z->shape[z->ndim - 2] : 1;
  return vr_error_set(VR_E_VALUE, func, __FILE__, __LINE__,
                      "z: expected finite values, got %g at [%lld, %lld, %lld]", v, (long long)(bad / (B * D)),
                      (long long)(bad / D % B), (long long)(bad % D));
}

/* the draws in blocks of 256 pairs: the Philox and polynomial part vectorises, the roots follow */
#define REG_DRAW(SFX, T)                                                                              \
  void vr_reg_draw_##SFX(uint64_t seed, uint64_t step, int64_t D, int64_t K, T *G) {                  \
    int64_t n = D * K, np = (n + 1) / 2, nblk = (np + 255) / 256;                                     \
    _Pragma("omp parallel for schedule(static) if (nblk > 16)")                                      \
    for (int64_t blk = 0; blk < nblk; blk++) {                                                        \
      double r2[256], c[256], s[256];                                                                 \
      int64_t p0 = blk * 256, m = np - p0 < 256 ? np - p0 : 256;                                      \
      _Pragma("omp simd")                                                                            \
      for (int64_t i = 0; i < m; i++) vr_reg_slice_parts(seed, step, (uint64_t)(p0 + i), &r2[i], &c[i], &s[i]); \
      for (int64_t i = 0; i < m; i++) {                                                               \
        double r = sqrt(r2[i]);                                                                       \
        int64_t j = 2 * (p0 + i);                                                                     \
        G[j] = (T)(r * c[i]);                                                                         \
        if (j + 1 < n) G[j + 1] = (T)(r * s[i]);                                                      \
      }                                                                                               \
    }                                                                                                 \
  }                                                                                                   \
  void vr_reg_normalize_##SFX(const T *G, int64_t D, int64_t K, double eps, T *W) {                   \
    double *nrm = calloc((size_t)K, sizeof(double));                                                  \
    if (!nrm) return; /* unreachable for sane sizes */                                                \
    for (int64_t d = 0; d < D; d++)                                                                   \
      for (int64_t k = 0; k < K; k++) nrm[k] += (double)G[d * K + k] * G[d * K + k];                  \
    for (int64_t k = 0; k < K; k++) nrm[k] = 1.0 / (sqrt(nrm[k]) + eps);                              \
    _Pragma("omp parallel for schedule(static) if (D * K > 65536)")                                  \
    for (int64_t d = 0; d < D; d++)                                                                   \
      for (int64_t k = 0; k < K; k++) W[d * K + k] = (T)(G[d * K + k] * nrm[k]);                      \
    free(nrm);                                                                                        \
  }
REG_DRAW(f32, float)
REG_DRAW(f64, double)

/* libgomp's idle workers spin after each parallel region (GOMP_SPINCOUNT pause instructions,
 * milliseconds on recent Intel cores) while the pthread OpenBLAS starts its own threads for the
 * next GEMM: with few cores the spinning workers take the cores the GEMM needs (VISReg
 * forward+backward measured 3 to 6 times slower on 2 cores). Unless the user chose a policy,
 * idle workers sleep instead. A priority constructor runs before libgomp's (default priority)
 * one reads the environment, in the statically linked binary and test suites. */
__attribute__((constructor(101))) static void reg_omp_wait_policy(void) {
  if (!getenv("OMP_WAIT_POLICY") && !getenv("GOMP_SPINCOUNT")) setenv("OMP_WAIT_POLICY", "passive", 0);
}

void vr_cpu_register_reg(void) {
  vr_kernel_register(VR_OP_VISREG, VR_CPU, vr_cpu_visreg_fwd, reg_bwd);
  vr_kernel_register(VR_OP_SWD, VR_CPU, vr_cpu_swd_fwd, reg_bwd);
  vr_kernel_register(VR_OP_SIGREG, VR_CPU, vr_cpu_sigreg_fwd, reg_bwd);
  vr_kernel_register(VR_OP_VICREG, VR_CPU, vr_cpu_vicreg_fwd, reg_bwd);
  vr_kernel_register(VR_OP_VICREG_REPO, VR_CPU, vr_cpu_vicreg_repo_fwd, reg_bwd);
  vr_kernel_register(VR_OP_BARLOW, VR_CPU, vr_cpu_barlow_fwd, reg_bwd);
  vr_kernel_register(VR_OP_INVARIANCE, VR_CPU, vr_cpu_invariance_fwd, reg_bwd);
}
