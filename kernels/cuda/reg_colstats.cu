/* reg_colstats.cu: the per-column passes of VISReg, spread over the whole GPU. A column pass over
 * an (m, rows, cols) array is latency-bound when one thread walks a whole column (a few thousand
 * threads for V x D columns), so the rows are cut into chunks: colsum.cuh's sums() adds each
 * column in double in a fixed order and finishes it in the same launch (the last block of each
 * column group), so results do not vary from run to run. Two launches a pass: the sums, then an
 * elementwise pass one block per row.
 *
 *   vr_cu_visreg_stats: mu, sigma = sqrt(biased var) + 1e-6 of each (view, dim) from sums shifted by
 *     the first row (as the CPU), then X = (z - mu) / sigma; the slices' column norms (drawn in the
 *     same launch, reg_slices.cuh) and their scaling, and the center and scale sums, ride along:
 *     two launches in all;
 *   vr_cu_visreg_grad: dz = H / s - mean_b H / s + mul z + add per (view, dim), H in place, the
 *     loss finished in the launch of its column sums.
 * Compiled with -fmad=false for the draws (reg_slices.cuh). */
#include "reg.cuh"
#include "reg_slices.cuh"

namespace {

/* {x', x'^2}, x' = x - x[row 0] of its column when shifted (for the variance), x itself otherwise */
template <typename T> struct colstat_t {
  const T *x;
  int64_t cols;
  bool shifted;
  __device__ double2 operator()(int64_t i, int64_t r, int64_t) const {
    double v = (double)x[i] - (shifted ? (double)x[i - r * cols] : 0.0);
    return make_double2(v, v * v);
  }
};

/* ---------------------------------------------------------------- VISReg statistics */

/* per (v, d) = e: mu, sigma from the shifted sums */
template <typename T> struct stats_fin {
  const T *z;
  int64_t B, D;
  double *mu, *sig;
  __device__ void operator()(int64_t e, double2 t) const {
    int64_t v = e / D, d = e - v * D;
    double ms = t.x / (double)B, var = t.y / (double)B - ms * ms;
    mu[e] = (double)z[v * B * D + d] + ms;
    sig[e] = sqrt(var > 0 ? var : 0) + 1e-6;
  }
};

/* one block per row (grid-stride), its threads across the D columns: no 64-bit division per element.
 * With lo (f32 for 3xTF32 GEMMs), X gets the TF32 high part and lo the rest (split_tf32 of reg_sliced.cu).
 * Two more jobs ride along, each saving a launch: rows VB .. VB + sl.D - 1 are the slices' rows
 * (W = G inv, G = sl.G or the raw draws already in W), and the last block adds acc[0] = sum mu^2,
 * acc[1] = sum (sigma - 1)^2 over the V D columns (a fixed tree). */
template <typename T>
__global__ void standardize_k(const T *z, int64_t VB, int64_t B, int64_t D, const double *mu, const double *sig, T *X,
                              T *lo, double *acc, vr_cu_slices_in sl) {
  __shared__ double sh[VR_CU_THREADS];
  if (blockIdx.x == gridDim.x - 1) {
    double c = 0, s = 0;
    for (int64_t i = threadIdx.x; i < VB / B * D; i += blockDim.x) {
      c += mu[i] * mu[i];
      s += (sig[i] - 1) * (sig[i] - 1);
    }
    c = vr_cu_reg_block_sum(c, sh);
    s = vr_cu_reg_block_sum(s, sh);
    if (threadIdx.x == 0) {
      acc[0] = c;
      acc[1] = s;
    }
  }
  for (int64_t r = blockIdx.x; r < VB + sl.D; r += gridDim.x) {
    if (r >= VB) {
      vr_cu_slice_scale_row(sl.G ? (const T *)sl.G : (const T *)sl.W, sl.inv, sl.K, (T *)sl.W, r - VB);
      continue;
    }
    const double *m = mu + r / B * D, *s = sig + r / B * D;
    for (int64_t d = threadIdx.x; d < D; d += blockDim.x) {
      T x = (T)(((double)z[r * D + d] - m[d]) * (1.0 / s[d]));
      if (lo) {
        float h = __uint_as_float(__float_as_uint((float)x) & 0xFFFFE000u);
        X[r * D + d] = (T)h;
        lo[r * D + d] = (T)((float)x - h);
      } else {
        X[r * D + d] = x;
      }
    }
  }
}
unsigned row_grid(int64_t rows) { return (unsigned)(rows < 1 ? 1 : rows < 65535 ? rows : 65535); }

/* ---------------------------------------------------------------- VISReg gradient */

/* per (v, d) = e: co = {1 / sigma, mul, add}, as the CPU (kernels/cpu/reg_sliced.inc) */
struct grad_fin {
  int64_t B;
  const double *mu, *sig;
  double cc, sc, *co;
  __device__ void operator()(int64_t e, double2 t) const {
    double hm = t.x / (double)B;
    double sg = sig[e], s = sg - 1e-6, m = mu[e];
    double mul = s > 0 ? sc * (sg - 1) / s : 0.0;
    co[3 * e] = 1.0 / sg;
    co[3 * e + 1] = mul;
    co[3 * e + 2] = cc * m - mul * m - hm / sg;
  }
};

template <typename T>
__global__ void grad_apply_k(T *g, const T *z, int64_t VB, int64_t B, int64_t D, const double *co) {
  for (int64_t r = blockIdx.x; r < VB; r += gridDim.x) {
    const double *c = co + 3 * (r / B * D);
    for (int64_t d = threadIdx.x; d < D; d += blockDim.x) {
      int64_t i = r * D + d;
      g[i] = (T)((double)g[i] * c[3 * d] + c[3 * d + 1] * (double)z[i] + c[3 * d + 2]);
    }
  }
}

template <typename T>
vr_status stats_typed(const T *z, int64_t V, int64_t B, int64_t D, double *mu, double *sig, double *acc, T *X, T *lo,
                      const vr_cu_slices_in &sl) {
  VR_TRY(vr_colsum::sums2(vr_cu_slice_terms<T>{(const T *)sl.G, (T *)sl.W, sl.seed, sl.step}, vr_cu_inv_norm_fin{sl.eps, sl.inv},
                          1, sl.D, sl.K, colstat_t<T>{z, D, true}, stats_fin<T>{z, B, D, mu, sig}, V, B, D));
  standardize_k<T><<<row_grid(V * B + sl.D), VR_CU_THREADS, 0, vr_cuda_stream()>>>(z, V * B, B, D, mu, sig, X, lo, acc, sl);
  VR_CU_LAUNCHED("visreg standardisation");
  return VR_OK;
}

template <typename T>
vr_status grad_typed(T *g, const T *z, int64_t V, int64_t B, int64_t D, const double *mu, const double *sig, double cc,
                     double sc, const vr_cu_loss_in &L) {
  vr_cu_buf cb;
  VR_TRY(cb.get(sizeof(double) * 3 * (size_t)(V * D)));
  VR_TRY(vr_colsum::sums2(vr_cu_part_terms{L.part}, vr_cu_loss_fin{L}, 1, L.n, 1, colstat_t<T>{g, D, false},
                          grad_fin{B, mu, sig, cc, sc, cb.as<double>()}, V, B, D));
  grad_apply_k<T><<<row_grid(V * B), VR_CU_THREADS, 0, vr_cuda_stream()>>>(g, z, V * B, B, D, cb.as<double>());
  VR_CU_LAUNCHED("visreg gradient");
  return VR_OK;
}

} // namespace

vr_status vr_cu_visreg_stats(vr_dtype dt, const void *z, int64_t V, int64_t B, int64_t D, double *mu, double *sig,
                             double *acc, void *X, void *Xlo, const vr_cu_slices_in &sl) {
  if (dt == VR_F32) return stats_typed<float>((const float *)z, V, B, D, mu, sig, acc, (float *)X, (float *)Xlo, sl);
  if (Xlo) return VR_FAIL(VR_E_INTERNAL, "Xlo: the TF32 split is for f32 only");
  return stats_typed<double>((const double *)z, V, B, D, mu, sig, acc, (double *)X, nullptr, sl);
}

vr_status vr_cu_visreg_grad(vr_dtype dt, void *g, const void *z, int64_t V, int64_t B, int64_t D, const double *mu,
                            const double *sig, double cc, double sc, const vr_cu_loss_in &L) {
  if (dt == VR_F32) return grad_typed<float>((float *)g, (const float *)z, V, B, D, mu, sig, cc, sc, L);
  return grad_typed<double>((double *)g, (const double *)z, V, B, D, mu, sig, cc, sc, L);
}
