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

/* vr_philox_block for counters p0 .. p0 + m - 1 (m <= 256) with the rounds outside the lanes, so
 * that the 32 x 32 -> 64 bit products vectorise; the same bits as vr_philox_block. Returns the
 * uniforms of vr_reg_slice_parts: u1 = 1 - u01(w0, w1) in (0, 1], u2 = u01(w2, w3). */
static void philox_lanes(uint64_t seed, uint64_t stream, uint64_t p0, int64_t m, double *u1, double *u2) {
  uint32_t c0[256], c1[256], c2[256], c3[256];
  for (int64_t i = 0; i < m; i++) {
    uint64_t ctr = p0 + (uint64_t)i;
    c0[i] = (uint32_t)ctr;
    c1[i] = (uint32_t)(ctr >> 32);
    c2[i] = (uint32_t)stream;
    c3[i] = (uint32_t)(stream >> 32);
  }
  uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
  for (int r = 0; r < 10; r++) {
    for (int64_t i = 0; i < m; i++) {
      uint64_t a = (uint64_t)0xD2511F53u * c0[i], b = (uint64_t)0xCD9E8D57u * c2[i];
      uint32_t n0 = (uint32_t)(b >> 32) ^ c1[i] ^ k0, n2 = (uint32_t)(a >> 32) ^ c3[i] ^ k1;
      c1[i] = (uint32_t)b;
      c3[i] = (uint32_t)a;
      c0[i] = n0;
      c2[i] = n2;
    }
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  for (int64_t i = 0; i < m; i++) {
    u1[i] = 1.0 - vr_philox_u01(c0[i], c1[i]);
    u2[i] = vr_philox_u01(c2[i], c3[i]);
  }
}

/* pairs p0 .. p0 + m - 1 (m <= 256) into g[0 .. 2m): Philox words, then the branch-free log and
 * sincos of slices.h (both vectorised), then the roots; the operations of vr_reg_slice_pair */
static void draw_block(uint64_t seed, uint64_t step, uint64_t p0, int64_t m, double *g) {
  double u1[256], u2[256], r2[256], c[256], sn[256];
  philox_lanes(seed, step, p0, m, u1, u2);
#pragma omp simd
  for (int64_t i = 0; i < m; i++) {
    r2[i] = -2.0 * vr_reg_log01(u1[i]);
    vr_reg_sincos2pi(u2[i], &c[i], &sn[i]);
  }
  for (int64_t i = 0; i < m; i++) {
    double r = sqrt(r2[i]);
    g[2 * i] = r * c[i];
    g[2 * i + 1] = r * sn[i];
  }
}

#define REG_DRAW(SFX, T)                                                                              \
  void vr_reg_draw_##SFX(uint64_t seed, uint64_t step, int64_t D, int64_t K, T *G) {                  \
    int64_t n = D * K, np = (n + 1) / 2, nblk = (np + 255) / 256;                                     \
    _Pragma("omp parallel for schedule(static) if (nblk > 16)")                                      \
    for (int64_t blk = 0; blk < nblk; blk++) {                                                        \
      double g[512];                                                                                  \
      int64_t p0 = blk * 256, m = np - p0 < 256 ? np - p0 : 256;                                      \
      draw_block(seed, step, (uint64_t)p0, m, g);                                                     \
      int64_t e = 2 * m < n - 2 * p0 ? 2 * m : n - 2 * p0; /* the last pair may be half used */      \
      for (int64_t i = 0; i < e; i++) G[2 * p0 + i] = (T)g[i];                                        \
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

/* Process-wide defaults for the two thread pools, set before either library starts.
 * libgomp's idle workers spin after each parallel region (GOMP_SPINCOUNT pause instructions,
 * milliseconds on recent Intel cores) while the pthread OpenBLAS starts its own threads for the
 * next GEMM: with few cores the spinning workers take the cores the GEMM needs (VISReg
 * forward+backward measured 3 to 6 times slower on 2 cores). Unless the user chose a policy,
 * idle workers sleep instead. A priority constructor runs before libgomp's (default priority)
 * one reads the environment, in the statically linked binary and test suites. */
__attribute__((constructor(101))) static void reg_omp_wait_policy(void) {
  if (!getenv("OMP_WAIT_POLICY") && !getenv("GOMP_SPINCOUNT")) setenv("OMP_WAIT_POLICY", "passive", 0);
  /* Debian's OpenBLAS 0.3.21 (DYNAMIC_ARCH) does not know recent Xeons (Sapphire and Emerald
   * Rapids) and falls back to its generic "Prescott" SSE3 kernels: sgemm then runs 2 to 3 times
   * slower than its AVX-512 kernels. Unless the user chose a core type, pick the kernels the CPU
   * supports. OpenBLAS reads the variable in its own (default priority) constructor. */
  if (!getenv("OPENBLAS_CORETYPE")) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512dq"))
      setenv("OPENBLAS_CORETYPE", "SkylakeX", 0);
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
      setenv("OPENBLAS_CORETYPE", "Haswell", 0);
  }
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
