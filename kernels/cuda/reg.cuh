/* reg.cuh: what the CUDA regularizer kernels share (reg.cu, reg_draw.cu, reg_sliced.cu,
 * reg_gram.cu). Kernel-args conventions: the top of each front-end in core/reg/. Every scalar the
 * loss needs stays on the device (double accumulators), so no kernel synchronises with the host. */
#ifndef VISREG_CUDA_REG_CUH
#define VISREG_CUDA_REG_CUH
#include "../../core/reg/reg_args.h"
#include "gemm.cuh"
#include "scratch.cuh"
#include "sorting.cuh"

/* *out = sum of x[0, n) in a fixed tree (one block): deterministic */
vr_status vr_cu_reg_sum(const double *x, int64_t n, double *out);
/* W (D x K, dtype dt) = the kernel's unit-column slices: in[1] (raw, normalised here) or, when
 * in[1] is NULL, drawn from Philox (i[2] seed, i[3] step, i[4] K) exactly as the CPU does;
 * _check: in[1]'s shape and dtype */
vr_status vr_cu_reg_slices(const vr_kernel_args *a, vr_dtype dt, int64_t D, int64_t K, double eps, void *W);
vr_status vr_cu_reg_slices_check(const vr_kernel_args *a, vr_dtype dt, int64_t D, int64_t K);
/* W[r, :] = G[r, :] inv (the block's threads across the K columns; G may be W) */
template <typename T>
__device__ __forceinline__ void vr_cu_slice_scale_row(const T *G, const double *inv, int64_t K, T *W, int64_t r) {
  for (int64_t k = threadIdx.x; k < K; k += blockDim.x) W[r * K + k] = (T)((double)G[r * K + k] * inv[k]);
}
/* VR_E_VALUE when z holds a non-finite value; only with VISREG_CUDA_CHECK_FINITE=1 (it reads a
 * flag back, a host synchronisation); otherwise non-finite inputs give a NaN loss */
vr_status vr_cu_reg_check_finite(const char *func, const vr_tensor *z);
/* the largest dynamic shared memory a block may opt into on the current device */
size_t vr_cu_smem_optin(void);

/* The loss of a sliced regularizer from its device sums: the n segment sums part[] (added as one
 * column of n rows, a colsum.cuh job, so it can share a launch) and, for VISReg, the center and
 * scale sums acc[0..1]. loss = total / div (SWD, SIGReg); VISReg: ws scale + wsh shape + wc center
 * with shape = total / div, and its terms {center, scale, shape} when terms is not NULL. loss and
 * terms: dtype dt (f32 or f64). vr_cu_reg_loss launches it alone. */
struct vr_cu_loss_in {
  const double *part, *acc;
  int64_t n;
  bool visreg;
  double div, VD, ws, wsh, wc;
  vr_dtype dt;
  void *loss, *terms;
};
struct vr_cu_part_terms {
  const double *part;
  __device__ double2 operator()(int64_t i, int64_t, int64_t) const { return make_double2(part[i], 0.0); }
};
struct vr_cu_loss_fin {
  vr_cu_loss_in in;
  __device__ void put(void *p, int k, double v) const {
    if (in.dt == VR_F32) ((float *)p)[k] = (float)v;
    else ((double *)p)[k] = v;
  }
  __device__ void operator()(int64_t, double2 t) const { /* round-to-nearest products: no FMA, wherever compiled */
    double shape = t.x / in.div, l = shape;
    if (in.visreg) {
      double center = in.acc[0] / in.VD, scale = in.acc[1] / in.VD;
      l = __dadd_rn(__dadd_rn(__dmul_rn(in.ws, scale), __dmul_rn(in.wsh, shape)), __dmul_rn(in.wc, center));
      if (in.terms) {
        put(in.terms, 0, center);
        put(in.terms, 1, scale);
        put(in.terms, 2, shape);
      }
    }
    put(in.loss, 0, l);
  }
};
vr_status vr_cu_reg_loss(const vr_cu_loss_in &L);

/* the column passes (reg_colstats.cu), dt f32 or f64: VISReg's mu, sigma (V x D doubles), the
 * center and scale sums acc[0..1] and X = (z - mu) / sigma (with Xlo, f32 only: X's TF32 high part
 * in X and the rest in Xlo, for 3xTF32 GEMMs), with the slices W = G / (column norm + eps) made in
 * the same two launches (G: the raw D x K matrix, or NULL to draw it from seed and step; inv: K
 * doubles of scratch); VISReg's gradient through the standardisation, in place on g = H, with the
 * loss L finished in the same launch as its column sums */
struct vr_cu_slices_in {
  const void *G;
  void *W;
  double *inv, eps;
  uint64_t seed, step;
  int64_t D, K;
};
vr_status vr_cu_visreg_stats(vr_dtype dt, const void *z, int64_t V, int64_t B, int64_t D, double *mu, double *sig,
                             double *acc, void *X, void *Xlo, const vr_cu_slices_in &sl);
vr_status vr_cu_visreg_grad(vr_dtype dt, void *g, const void *z, int64_t V, int64_t B, int64_t D, const double *mu,
                            const double *sig, double cc, double sc, const vr_cu_loss_in &L);

/* the sorted-segment pass of VISReg and SWD for f32 (reg_segsort.cu): nseg segments of B
 * projections in Pt; part[s] = sum_i (P_sorted_i - q_i)^2 and, with grad, P = coef (P - q_rank)
 * in place (with lo: P gets dL/dP's TF32 high part and lo the rest). For 128 < B <= 8192
 * (vr_cu_seg_sort_f32_fits) */
int vr_cu_seg_sort_f32_fits(int64_t B);
vr_status vr_cu_seg_sort_f32(float *Pt, int64_t nseg, int64_t B, const float *q, double coef, int grad, double *part,
                             float *lo);

/* kernels in reg_sliced.cu and reg_gram.cu */
vr_status vr_cuda_visreg_fwd(const vr_kernel_args *a);
vr_status vr_cuda_swd_fwd(const vr_kernel_args *a);
vr_status vr_cuda_sigreg_fwd(const vr_kernel_args *a);
vr_status vr_cuda_vicreg_fwd(const vr_kernel_args *a);
vr_status vr_cuda_vicreg_pooled_fwd(const vr_kernel_args *a);
vr_status vr_cuda_barlow_fwd(const vr_kernel_args *a);
vr_status vr_cuda_invariance_fwd(const vr_kernel_args *a);

/* VISREG_PROFILE=phases: device time between marks, printed to stderr by report() (a host
 * synchronisation, so only for measuring); off, each call is one branch */
struct vr_cu_phases {
  bool on = false;
  int n = 0;
  cudaEvent_t ev[16];
  const char *name[16];
  vr_cu_phases();
  void mark(const char *what);
  void report(const char *what);
  ~vr_cu_phases();
};

/* block-wide double sum in a fixed tree (blockDim.x a power of two, sh of blockDim.x) */
__device__ __forceinline__ double vr_cu_reg_block_sum(double v, double *sh) {
  sh[threadIdx.x] = v;
  __syncthreads();
  for (int w = blockDim.x / 2; w > 0; w >>= 1) {
    if ((int)threadIdx.x < w) sh[threadIdx.x] += sh[threadIdx.x + w];
    __syncthreads();
  }
  double r = sh[0];
  __syncthreads();
  return r;
}
#endif
