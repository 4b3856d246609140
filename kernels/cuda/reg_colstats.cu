/* reg_colstats.cu: the per-column passes of the sliced regularizers, spread over the whole GPU.
 * A column pass over an (m, rows, cols) array is latency-bound when one thread walks a whole column
 * (a few thousand threads for V x D columns), so the rows are cut into chunks of kRows: one thread
 * per (column, lane) sums its rows in double, the block adds its 8 lanes in a fixed order and writes
 * one partial per (matrix, chunk, column); a second kernel adds the partials in chunk order (the
 * machinery is colsum.cuh's, shared with reg_gram.cu and norm.cu). Every sum has a fixed order, so
 * results do not vary from run to run.
 *
 *   vr_cu_visreg_stats: mu, sigma = sqrt(biased var) + 1e-6 of each (view, dim) from sums shifted by
 *     the first row (as the CPU), the center and scale sums, and X = (z - mu) / sigma;
 *   vr_cu_visreg_grad: dz = H / s - mean_b H / s + mul z + add per (view, dim), H in place;
 *   vr_cu_col_normalize: W = G / (||G||_col + eps). */
#include "colsum.cuh"
#include "reg.cuh"

namespace {

/* the chunked column sums are colsum.cuh's: part[(m nch + c) cols + col], read back with col_total */
using vr_colsum::chunks;
using vr_colsum::kRows;
enum { SUM_SHIFTED = 0, SUM = 1, SUM_SQ = 2 };

/* {x', x'^2}, x' = x - x[row 0] for SUM_SHIFTED, x itself otherwise */
template <typename T> struct colstat_t {
  const T *x;
  int64_t cols;
  int mode;
  __device__ double2 operator()(int64_t i, int64_t r, int64_t) const {
    double v = (double)x[i] - (mode == SUM_SHIFTED ? (double)x[i - r * cols] : 0.0);
    return make_double2(v, v * v);
  }
};
template <typename T> vr_status partials(const T *x, int64_t nmat, int64_t rows, int64_t cols, int mode, double2 *part) {
  return vr_colsum::partials(colstat_t<T>{x, cols, mode}, nmat, rows, cols, part);
}
__device__ __forceinline__ double2 col_total(const double2 *part, int64_t nch, int64_t cols, int64_t e) {
  return vr_colsum::total(part, nch, cols, e);
}

/* ---------------------------------------------------------------- VISReg statistics */

template <typename T>
__global__ void stats_finish_k(const double2 *part, const T *z, int64_t V, int64_t B, int64_t D, double *mu, double *sig) {
  int64_t nch = (B + kRows - 1) / kRows;
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < V * D; e += (int64_t)gridDim.x * blockDim.x) {
    double2 t = col_total(part, nch, D, e);
    int64_t v = e / D, d = e - v * D;
    double ms = t.x / (double)B, var = t.y / (double)B - ms * ms;
    mu[e] = (double)z[v * B * D + d] + ms;
    sig[e] = sqrt(var > 0 ? var : 0) + 1e-6;
  }
}

/* acc[0] = sum mu^2, acc[1] = sum (sigma - 1)^2 over V D (one block of 1024) */
__global__ void center_scale_k(const double *mu, const double *sig, int64_t n, double *acc) {
  __shared__ double sh[1024];
  double c = 0, s = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
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

/* one block per row (grid-stride), its threads across the D columns: no 64-bit division per element.
 * With lo (f32 for 3xTF32 GEMMs), X gets the TF32 high part and lo the rest (split_tf32 of reg_sliced.cu) */
template <typename T>
__global__ void standardize_k(const T *z, int64_t VB, int64_t B, int64_t D, const double *mu, const double *sig, T *X,
                              T *lo) {
  for (int64_t r = blockIdx.x; r < VB; r += gridDim.x) {
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

/* per (v, d): co = {1 / sigma, mul, add}, as the CPU (kernels/cpu/reg_sliced.inc) */
__global__ void grad_coef_k(const double2 *part, int64_t V, int64_t B, int64_t D, const double *mu, const double *sig,
                            double cc, double sc, double *co) {
  int64_t nch = (B + kRows - 1) / kRows;
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < V * D; e += (int64_t)gridDim.x * blockDim.x) {
    double hm = col_total(part, nch, D, e).x / (double)B;
    double sg = sig[e], s = sg - 1e-6, m = mu[e];
    double mul = s > 0 ? sc * (sg - 1) / s : 0.0;
    co[3 * e] = 1.0 / sg;
    co[3 * e + 1] = mul;
    co[3 * e + 2] = cc * m - mul * m - hm / sg;
  }
}

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

/* ---------------------------------------------------------------- slice normalisation */

/* inv[k] = 1 / (||G[:, k]|| + eps), then W = G inv row by row */
__global__ void col_inv_k(const double2 *part, int64_t D, int64_t K, double eps, double *inv) {
  int64_t nch = (D + kRows - 1) / kRows;
  for (int64_t k = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; k < K; k += (int64_t)gridDim.x * blockDim.x)
    inv[k] = 1.0 / (sqrt(col_total(part, nch, K, k).y) + eps);
}
template <typename T> __global__ void col_scale_k(const T *G, const double *inv, int64_t D, int64_t K, T *W) {
  for (int64_t r = blockIdx.x; r < D; r += gridDim.x)
    for (int64_t k = threadIdx.x; k < K; k += blockDim.x) W[r * K + k] = (T)((double)G[r * K + k] * inv[k]);
}

template <typename T>
vr_status stats_typed(const T *z, int64_t V, int64_t B, int64_t D, double *mu, double *sig, double *acc, T *X, T *lo) {
  cudaStream_t st = vr_cuda_stream();
  vr_cu_buf pb;
  VR_TRY(pb.get(sizeof(double2) * (size_t)(V * chunks(B) * D)));
  VR_TRY(partials<T>(z, V, B, D, SUM_SHIFTED, pb.as<double2>()));
  stats_finish_k<T><<<vr_cu_blocks(V * D), VR_CU_THREADS, 0, st>>>(pb.as<double2>(), z, V, B, D, mu, sig);
  VR_CU_LAUNCHED("visreg statistics");
  center_scale_k<<<1, 1024, 0, st>>>(mu, sig, V * D, acc);
  VR_CU_LAUNCHED("visreg center and scale");
  standardize_k<T><<<row_grid(V * B), VR_CU_THREADS, 0, st>>>(z, V * B, B, D, mu, sig, X, lo);
  VR_CU_LAUNCHED("visreg standardisation");
  return VR_OK;
}

template <typename T>
vr_status grad_typed(T *g, const T *z, int64_t V, int64_t B, int64_t D, const double *mu, const double *sig, double cc,
                     double sc) {
  cudaStream_t st = vr_cuda_stream();
  vr_cu_buf pb, cb;
  VR_TRY(pb.get(sizeof(double2) * (size_t)(V * chunks(B) * D)));
  VR_TRY(cb.get(sizeof(double) * 3 * (size_t)(V * D)));
  VR_TRY(partials<T>(g, V, B, D, SUM, pb.as<double2>()));
  grad_coef_k<<<vr_cu_blocks(V * D), VR_CU_THREADS, 0, st>>>(pb.as<double2>(), V, B, D, mu, sig, cc, sc, cb.as<double>());
  VR_CU_LAUNCHED("visreg gradient coefficients");
  grad_apply_k<T><<<row_grid(V * B), VR_CU_THREADS, 0, st>>>(g, z, V * B, B, D, cb.as<double>());
  VR_CU_LAUNCHED("visreg gradient");
  return VR_OK;
}

template <typename T> vr_status normalize_typed(const T *G, int64_t D, int64_t K, double eps, T *W) {
  cudaStream_t st = vr_cuda_stream();
  vr_cu_buf pb, ib;
  VR_TRY(pb.get(sizeof(double2) * (size_t)(chunks(D) * K)));
  VR_TRY(ib.get(sizeof(double) * (size_t)K));
  VR_TRY(partials<T>(G, 1, D, K, SUM_SQ, pb.as<double2>()));
  col_inv_k<<<vr_cu_blocks(K), VR_CU_THREADS, 0, st>>>(pb.as<double2>(), D, K, eps, ib.as<double>());
  VR_CU_LAUNCHED("slice norms");
  col_scale_k<T><<<row_grid(D), VR_CU_THREADS, 0, st>>>(G, ib.as<double>(), D, K, W);
  VR_CU_LAUNCHED("slice normalisation");
  return VR_OK;
}

} // namespace

vr_status vr_cu_visreg_stats(vr_dtype dt, const void *z, int64_t V, int64_t B, int64_t D, double *mu, double *sig,
                             double *acc, void *X, void *Xlo) {
  if (dt == VR_F32) return stats_typed<float>((const float *)z, V, B, D, mu, sig, acc, (float *)X, (float *)Xlo);
  if (Xlo) return VR_FAIL(VR_E_INTERNAL, "Xlo: the TF32 split is for f32 only");
  return stats_typed<double>((const double *)z, V, B, D, mu, sig, acc, (double *)X, nullptr);
}

vr_status vr_cu_visreg_grad(vr_dtype dt, void *g, const void *z, int64_t V, int64_t B, int64_t D, const double *mu,
                            const double *sig, double cc, double sc) {
  if (dt == VR_F32) return grad_typed<float>((float *)g, (const float *)z, V, B, D, mu, sig, cc, sc);
  return grad_typed<double>((double *)g, (const double *)z, V, B, D, mu, sig, cc, sc);
}

vr_status vr_cu_col_normalize(vr_dtype dt, const void *G, int64_t D, int64_t K, double eps, void *W) {
  if (dt == VR_F32) return normalize_typed<float>((const float *)G, D, K, eps, (float *)W);
  return normalize_typed<double>((const double *)G, D, K, eps, (double *)W);
}
