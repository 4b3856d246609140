/* reg_gram.cu: CUDA kernels of the covariance regularizers, VICReg (official, two views), the
 * pooled VICReg variant, Barlow Twins, and the invariance term, with the argument layout of
 * core/reg/vicreg.c, barlow.c and invariance.c and the CPU's formulas and roundings
 * (kernels/cpu/reg_gram.inc). Column statistics (means, sums of squares, the gradients' column
 * sums) are spread over the whole GPU by colsum.cuh: rows in chunks of 64, partial sums in double
 * added in a fixed order, a pass storing a centred or updated copy while it sums; passes that only
 * apply per-column coefficients are elementwise. Each covariance or cross-correlation is one cuBLAS
 * GEMM, its per-row terms one block per row, then added in a fixed tree; gradients by one GEMM and
 * the column passes. Scalars stay on the device (no host synchronisation); every sum has a fixed
 * order. */
#include "colsum.cuh"
#include "reg.cuh"

namespace {

using vr_colsum::each;
using vr_colsum::sums;

/* ---------------------------------------------------------------- shared pieces */

/* the column (view v, dim d) = v D + d of element i of a (V, B, D) array */
__device__ __forceinline__ int64_t col_of(int64_t i, int64_t B, int64_t D) { return i / (B * D) * D + i % D; }

/* column-sum terms (colsum.cuh): {r, 0} */
template <typename T> struct sum_t {
  const T *r;
  __device__ double2 operator()(int64_t i, int64_t, int64_t) const { return make_double2((double)r[i], 0.0); }
};
/* x = (T)(r - mean) stored; {0, x^2} of the rounded x */
template <typename T> struct center_t {
  const T *r;
  T *x;
  const double *mean;
  __device__ double2 operator()(int64_t i, int64_t, int64_t e) const {
    T v = (T)((double)r[i] - mean[e]);
    x[i] = v;
    return make_double2(0.0, (double)v * (double)v);
  }
};
/* {0, (z0 - z1)^2} */
template <typename T> struct sqdiff_t {
  const T *z0, *z1;
  __device__ double2 operator()(int64_t i, int64_t, int64_t) const {
    double e = (double)z0[i] - (double)z1[i];
    return make_double2(0.0, e * e);
  }
};
/* g = (T)(g + coef x) stored; {g, 0} of the rounded g */
template <typename T> struct var_grad_t {
  T *g;
  const T *x;
  const double *coef;
  __device__ double2 operator()(int64_t i, int64_t, int64_t e) const {
    T v = (T)((double)g[i] + coef[e] * (double)x[i]);
    g[i] = v;
    return make_double2((double)v, 0.0);
  }
};

/* column finishes: mean[e] = sum / n; out[e] = sum of the second terms */
struct mean_fin {
  double *mean;
  double n;
  __device__ void operator()(int64_t e, double2 t) const { mean[e] = t.x / n; }
};
struct second_fin {
  double *out;
  __device__ void operator()(int64_t e, double2 t) const { out[e] = t.y; }
};

/* from ss = sum x^2 of column d: mode 0 (VICReg, n = B): std = sqrt(ss/(n-1) + 1e-4); vv[d] =
 * relu(1 - std); coef[d] = -0.5 w / (D (n-1) std) where std < 1. mode 1 (pooled): r =
 * sqrt(ss/(n-1)), std = r + 1e-6, h = relu(1 - std), vv[d] = h^2, coef[d] = -2 w h / (D (n-1) r)
 * where r > 0. */
struct var_fin {
  int mode;
  int64_t n, D;
  double w;
  double *vv, *coef;
  __device__ void operator()(int64_t d, double2 t) const {
    double ss = t.y;
    if (mode == 0) {
      double sd = sqrt(ss / (double)(n - 1) + 1e-4);
      vv[d] = sd < 1 ? 1 - sd : 0;
      coef[d] = sd < 1 ? -0.5 * w / ((double)D * (double)(n - 1) * sd) : 0;
    } else {
      double r = sqrt(ss / (double)(n - 1)), sd = r + 1e-6, h = sd < 1 ? 1 - sd : 0;
      vv[d] = h * h;
      coef[d] = r > 0 ? -2.0 * w * h / ((double)D * (double)(n - 1) * r) : 0;
    }
  }
};

/* elementwise: g = (T)(g - mean of its column) (+ s (z0 - z1) for VICReg) over a (V, B, D) g */
template <typename T> struct uncenter_t {
  T *g;
  const double *mean;
  int64_t B, D;
  double s;
  const T *z0, *z1;
  __device__ void operator()(int64_t i) const {
    T v = (T)((double)g[i] - mean[col_of(i, B, D)]);
    if (z0) v = (T)((double)v + s * ((double)z0[i] - (double)z1[i]));
    g[i] = v;
  }
};

/* mean of the n x D rows r of each of nmat matrices, x = (T)(r - mean) and fin(e, {0, sum x^2}) */
template <typename T, typename Fin>
vr_status center(const T *r, int64_t nmat, int64_t n, int64_t D, T *x, double *mean, const Fin &fin) {
  VR_TRY(sums(sum_t<T>{r}, mean_fin{mean, (double)n}, nmat, n, D));
  return sums(center_t<T>{r, x, mean}, fin, nmat, n, D);
}

/* one block per row d of the D x D matrix C (coalesced), sums in a fixed tree */
const int kRowT = 256;
unsigned rows_grid(int64_t D) { return (unsigned)(D < 1 ? 1 : D < (1 << 20) ? D : (1 << 20)); }

/* rowbuf[d] = sum_{e != d} C_de^2, then C_dd = 0 */
template <typename T> __global__ void __launch_bounds__(kRowT) offdiag_k(T *C, int64_t D, double *rowbuf) {
  __shared__ double sh[kRowT];
  for (int64_t d = blockIdx.x; d < D; d += gridDim.x) {
    const T *row = C + d * D;
    double off = 0;
    for (int64_t e = threadIdx.x; e < D; e += blockDim.x)
      if (e != d) off += (double)row[e] * (double)row[e];
    off = vr_cu_reg_block_sum(off, sh);
    if (threadIdx.x == 0) {
      rowbuf[d] = off;
      C[d * D + d] = (T)0;
    }
  }
}

/* ---------------------------------------------------------------- VICReg (official) */

/* acc: 0 inv sum, 1 vv view 0, 2 vv view 1, 3 off view 0, 4 off view 1 */
template <typename T>
__global__ void vicreg_finish_k(const double *acc, double BD, double D, double wi, double wv, double wc, T *loss,
                                T *terms) {
  double inv = acc[0] / BD, var = 0, cov = 0;
  for (int v = 0; v < 2; v++) {
    var += 0.5 * acc[1 + v] / D;
    cov += acc[3 + v] / D;
  }
  *loss = (T)(wi * inv + wv * var + wc * cov);
  if (terms) {
    terms[0] = (T)inv;
    terms[1] = (T)var;
    terms[2] = (T)cov;
  }
}

template <typename T> vr_status vicreg_typed(const vr_kernel_args *a) {
  const vr_tensor *zt = a->in[0];
  vr_dtype dt = zt->dtype;
  int64_t B = zt->shape[1], D = zt->shape[2], BD = B * D;
  if (zt->shape[0] != 2) return VR_FAIL(VR_E_SHAPE, "z: expected 2 views, got %lld", (long long)zt->shape[0]);
  VR_TRY(vr_cu_reg_check_finite("vr_vicreg", zt));
  cudaStream_t st = vr_cuda_stream();
  const T *z = (const T *)vr_data(zt);
  T *grad = a->out[2] ? (T *)vr_data(a->out[2]) : nullptr;
  double wi = a->f[VR_VICREG_F_INV], wv = a->f[VR_VICREG_F_VAR], wc = a->f[VR_VICREG_F_COV];
  vr_cu_buf xb, Cb, mb, coefb, vvb, rowb, accb;
  VR_TRY(xb.get(sizeof(T) * (size_t)BD));
  VR_TRY(Cb.get(sizeof(T) * (size_t)(D * D)));
  VR_TRY(mb.get(sizeof(double) * (size_t)D));
  VR_TRY(coefb.get(sizeof(double) * (size_t)D));
  VR_TRY(vvb.get(sizeof(double) * (size_t)D));
  VR_TRY(rowb.get(sizeof(double) * (size_t)D));
  VR_TRY(accb.get(sizeof(double) * 5));
  double *acc = accb.as<double>(), *mean = mb.as<double>(), *coef = coefb.as<double>(), *rowbuf = rowb.as<double>();
  T *x = xb.as<T>(), *C = Cb.as<T>();
  VR_TRY(sums(sqdiff_t<T>{z, z + BD}, second_fin{rowbuf}, 1, B, D));
  VR_TRY(vr_cu_reg_sum(rowbuf, D, acc));
  for (int v = 0; v < 2; v++) {
    VR_TRY(center<T>(z + v * BD, 1, B, D, x, mean, var_fin{0, B, D, wv, vvb.as<double>(), coef}));
    VR_TRY(vr_cu_reg_sum(vvb.as<double>(), D, acc + 1 + v));
    VR_TRY(vr_cu_gemm_rm(dt, 1, 0, D, D, B, 1.0 / (double)(B - 1), x, D, x, D, 0.0, C, D));
    offdiag_k<T><<<rows_grid(D), kRowT, 0, st>>>(C, D, rowbuf);
    VR_CU_LAUNCHED("vicreg covariance");
    VR_TRY(vr_cu_reg_sum(rowbuf, D, acc + 3 + v));
    if (grad) {
      T *g = grad + v * BD;
      VR_TRY(vr_cu_gemm_rm(dt, 0, 0, B, D, D, 4.0 * wc / ((double)D * (double)(B - 1)), x, D, C, D, 0.0, g, D));
      double s = (v == 0 ? 2.0 : -2.0) * wi / (double)BD;
      VR_TRY(sums(var_grad_t<T>{g, x, coef}, mean_fin{mean, (double)B}, 1, B, D));
      VR_TRY(each(uncenter_t<T>{g, mean, B, D, s, z, z + BD}, BD));
    }
  }
  vicreg_finish_k<T><<<1, 1, 0, st>>>(acc, (double)BD, (double)D, wi, wv, wc, (T *)vr_data(a->out[0]),
                                      a->out[1] ? (T *)vr_data(a->out[1]) : nullptr);
  VR_CU_LAUNCHED("vicreg loss");
  return VR_OK;
}

/* ---------------------------------------------------------------- VICReg, pooled variant */

template <typename T>
__global__ void repo_finish_k(const double *acc, double D, double wv, double wc, T *loss, T *terms) {
  double var = acc[0] / D, cov = acc[1] / D;
  *loss = (T)(wv * var + wc * cov);
  if (terms) {
    terms[0] = (T)var;
    terms[1] = (T)cov;
  }
}

template <typename T> vr_status vicreg_pooled_typed(const vr_kernel_args *a) {
  const vr_tensor *zt = a->in[0];
  vr_dtype dt = zt->dtype;
  int64_t N = zt->shape[0] * zt->shape[1], D = zt->shape[2];
  VR_TRY(vr_cu_reg_check_finite("vr_vicreg_pooled", zt));
  cudaStream_t st = vr_cuda_stream();
  const T *z = (const T *)vr_data(zt);
  T *grad = a->out[2] ? (T *)vr_data(a->out[2]) : nullptr;
  double wv = a->f[VR_VICREG_POOLED_F_VAR], wc = a->f[VR_VICREG_POOLED_F_COV];
  vr_cu_buf xb, Cb, mb, coefb, vvb, rowb, accb;
  VR_TRY(xb.get(sizeof(T) * (size_t)(N * D)));
  VR_TRY(Cb.get(sizeof(T) * (size_t)(D * D)));
  VR_TRY(mb.get(sizeof(double) * (size_t)D));
  VR_TRY(coefb.get(sizeof(double) * (size_t)D));
  VR_TRY(vvb.get(sizeof(double) * (size_t)D));
  VR_TRY(rowb.get(sizeof(double) * (size_t)D));
  VR_TRY(accb.get(sizeof(double) * 2));
  double *acc = accb.as<double>(), *mean = mb.as<double>(), *coef = coefb.as<double>();
  T *x = xb.as<T>(), *C = Cb.as<T>();
  VR_TRY(center<T>(z, 1, N, D, x, mean, var_fin{1, N, D, wv, vvb.as<double>(), coef}));
  VR_TRY(vr_cu_reg_sum(vvb.as<double>(), D, acc));
  VR_TRY(vr_cu_gemm_rm(dt, 1, 0, D, D, N, 1.0 / (double)(N - 1), x, D, x, D, 0.0, C, D));
  offdiag_k<T><<<rows_grid(D), kRowT, 0, st>>>(C, D, rowb.as<double>());
  VR_CU_LAUNCHED("vicreg_pooled covariance");
  VR_TRY(vr_cu_reg_sum(rowb.as<double>(), D, acc + 1));
  if (grad) {
    VR_TRY(vr_cu_gemm_rm(dt, 0, 0, N, D, D, 4.0 * wc / ((double)D * (double)(N - 1)), x, D, C, D, 0.0, grad, D));
    VR_TRY(sums(var_grad_t<T>{grad, x, coef}, mean_fin{mean, (double)N}, 1, N, D));
    VR_TRY(each(uncenter_t<T>{grad, mean, N, D, 0.0, nullptr, nullptr}, N * D));
  }
  repo_finish_k<T><<<1, 1, 0, st>>>(acc, (double)D, wv, wc, (T *)vr_data(a->out[0]),
                                    a->out[1] ? (T *)vr_data(a->out[1]) : nullptr);
  VR_CU_LAUNCHED("vicreg_pooled loss");
  return VR_OK;
}

/* ---------------------------------------------------------------- Barlow Twins */

/* per (view, dim): rt = sqrt(sum x^2 / (B-1)), s = rt + 1e-6 */
struct barlow_std_fin {
  int64_t B;
  double *s, *rt;
  __device__ void operator()(int64_t e, double2 t) const {
    double r = sqrt(t.y / (double)(B - 1));
    rt[e] = r;
    s[e] = r + 1e-6;
  }
};
/* elementwise: zn = (T)(x / s), in place over the (V, B, D) centred x */
template <typename T> struct barlow_scale_t {
  T *zn;
  const double *s;
  int64_t B, D;
  __device__ void operator()(int64_t i) const { zn[i] = (T)((double)zn[i] / s[col_of(i, B, D)]); }
};

/* one block per row d of C: rowbuf[d] = the pair's loss terms of row d, and C overwritten with M = dl/dC */
template <typename T> __global__ void __launch_bounds__(kRowT) barlow_rows_k(T *C, int64_t D, double lam, double *rowbuf) {
  __shared__ double sh[kRowT];
  for (int64_t d = blockIdx.x; d < D; d += gridDim.x) {
    double l = 0;
    for (int64_t e = threadIdx.x; e < D; e += blockDim.x) {
      double c = (double)C[d * D + e];
      if (d == e) {
        l += (c - 1) * (c - 1);
        C[d * D + e] = (T)(2 * (c - 1));
      } else {
        l += lam * c * c;
        C[d * D + e] = (T)(2 * lam * c);
      }
    }
    l = vr_cu_reg_block_sum(l, sh);
    if (threadIdx.x == 0) rowbuf[d] = l;
  }
}

/* back through the standardisation (then the centring, uncenter_t): {g zn, 0}; per (view, dim)
 * t = sum_b g zn / ((B-1) rt) where rt > 0; g = (T)(g / s - t zn) stored, {g, 0} */
template <typename T> struct dot_t {
  const T *g, *zn;
  __device__ double2 operator()(int64_t i, int64_t, int64_t) const {
    return make_double2((double)g[i] * (double)zn[i], 0.0);
  }
};
struct barlow_t_fin {
  int64_t B;
  const double *rt;
  double *t;
  __device__ void operator()(int64_t e, double2 s) const { t[e] = rt[e] > 0 ? s.x / ((double)(B - 1) * rt[e]) : 0; }
};
template <typename T> struct barlow_back_t {
  T *g;
  const T *zn;
  const double *s, *t;
  __device__ double2 operator()(int64_t i, int64_t, int64_t e) const {
    T v = (T)((double)g[i] / s[e] - t[e] * (double)zn[i]);
    g[i] = v;
    return make_double2((double)v, 0.0);
  }
};

template <typename T> __global__ void barlow_finish_k(const double *pairs, int64_t np, T *loss) {
  double l = 0;
  for (int64_t p = 0; p < np; p++) l += pairs[p] / (double)np;
  *loss = (T)l;
}

template <typename T> vr_status barlow_typed(const vr_kernel_args *a) {
  const vr_tensor *zt = a->in[0];
  vr_dtype dt = zt->dtype;
  int64_t V = zt->shape[0], B = zt->shape[1], D = zt->shape[2], BD = B * D;
  if (V < 2) return VR_FAIL(VR_E_SHAPE, "z: expected V >= 2 views, got %lld", (long long)V);
  VR_TRY(vr_cu_reg_check_finite("vr_barlow", zt));
  cudaStream_t st = vr_cuda_stream();
  const T *z = (const T *)vr_data(zt);
  T *grad = a->out[2] ? (T *)vr_data(a->out[2]) : nullptr;
  double lam = a->f[VR_BARLOW_F_OFFDIAG], P = (double)(V - 1);
  vr_cu_buf znb, Cb, sb, rtb, mb, tb, rowb, pairb;
  VR_TRY(znb.get(sizeof(T) * (size_t)(V * BD)));
  VR_TRY(Cb.get(sizeof(T) * (size_t)(D * D)));
  VR_TRY(sb.get(sizeof(double) * (size_t)(V * D)));
  VR_TRY(rtb.get(sizeof(double) * (size_t)(V * D)));
  VR_TRY(mb.get(sizeof(double) * (size_t)(V * D)));
  VR_TRY(tb.get(sizeof(double) * (size_t)(V * D)));
  VR_TRY(rowb.get(sizeof(double) * (size_t)D));
  VR_TRY(pairb.get(sizeof(double) * (size_t)(V - 1)));
  T *zn = znb.as<T>(), *C = Cb.as<T>();
  double *s = sb.as<double>(), *rt = rtb.as<double>(), *mean = mb.as<double>();
  /* all views at once: centre, then scale by the column's std */
  VR_TRY(center<T>(z, V, B, D, zn, mean, barlow_std_fin{B, s, rt}));
  VR_TRY(each(barlow_scale_t<T>{zn, s, B, D}, V * BD));
  if (grad) VR_CU(cudaMemsetAsync(grad, 0, sizeof(T) * (size_t)(V * BD), st));
  for (int64_t v = 0; v + 1 < V; v++) {
    const T *x0 = zn + v * BD, *x1 = zn + (v + 1) * BD;
    VR_TRY(vr_cu_gemm_rm(dt, 1, 0, D, D, B, 1.0 / (double)B, x0, D, x1, D, 0.0, C, D));
    barlow_rows_k<T><<<rows_grid(D), kRowT, 0, st>>>(C, D, lam, rowb.as<double>());
    VR_CU_LAUNCHED("barlow cross-correlation");
    VR_TRY(vr_cu_reg_sum(rowb.as<double>(), D, pairb.as<double>() + v));
    if (grad) {
      double alpha = 1.0 / ((double)B * P);
      VR_TRY(vr_cu_gemm_rm(dt, 0, 1, B, D, D, alpha, x1, D, C, D, 1.0, grad + v * BD, D));
      VR_TRY(vr_cu_gemm_rm(dt, 0, 0, B, D, D, alpha, x0, D, C, D, 1.0, grad + (v + 1) * BD, D));
    }
  }
  if (grad) { /* all views at once */
    VR_TRY(sums(dot_t<T>{grad, zn}, barlow_t_fin{B, rt, tb.as<double>()}, V, B, D));
    VR_TRY(sums(barlow_back_t<T>{grad, zn, s, tb.as<double>()}, mean_fin{mean, (double)B}, V, B, D));
    VR_TRY(each(uncenter_t<T>{grad, mean, B, D, 0.0, nullptr, nullptr}, V * BD));
  }
  barlow_finish_k<T><<<1, 1, 0, st>>>(pairb.as<double>(), V - 1, (T *)vr_data(a->out[0]));
  VR_CU_LAUNCHED("barlow loss");
  (void)P;
  return VR_OK;
}

/* ---------------------------------------------------------------- invariance */

/* per element i of a view (the views walked in order); part[k] = the squared residuals of elements
 * [k kInvT, (k+1) kInvT) added in a fixed tree, for k < ceil(BD / kInvT) whatever the grid */
const int kInvT = 256;
template <typename T>
__global__ void __launch_bounds__(kInvT)
    invariance_k(const T *z, int64_t V, int64_t BD, int64_t G, double cg, double cm, T *grad, double *part) {
  __shared__ double sh[kInvT];
  int64_t nb = (BD + kInvT - 1) / kInvT;
  for (int64_t k = blockIdx.x; k < nb; k += gridDim.x) {
    int64_t i = k * kInvT + threadIdx.x;
    double m = 0, rs = 0, acc = 0;
    if (i < BD) {
      for (int64_t g = 0; g < G; g++) m += (double)z[g * BD + i];
      m /= (double)G;
      for (int64_t v = 0; v < V; v++) {
        double r = (double)z[v * BD + i] - m;
        acc += r * r;
        rs += r;
      }
      if (grad)
        for (int64_t v = 0; v < V; v++)
          grad[v * BD + i] = (T)(cg * ((double)z[v * BD + i] - m) - (v < G ? cm * rs : 0));
    }
    acc = vr_cu_reg_block_sum(acc, sh);
    if (threadIdx.x == 0) part[k] = acc;
  }
}
template <typename T> __global__ void invariance_finish_k(const double *s, double n, T *loss) { *loss = (T)(*s / n); }

template <typename T> vr_status invariance_typed(const vr_kernel_args *a) {
  const vr_tensor *zt = a->in[0];
  int64_t V = zt->shape[0], B = zt->shape[1], D = zt->shape[2], BD = B * D, G = a->i[VR_INVARIANCE_I_GLOBAL];
  if (G < 1 || G > V) return VR_FAIL(VR_E_ARG, "global_views: expected 1 <= G <= V = %lld, got %lld", (long long)V, (long long)G);
  VR_TRY(vr_cu_reg_check_finite("vr_invariance", zt));
  cudaStream_t st = vr_cuda_stream();
  vr_cu_buf partb, sb;
  int64_t nb = (BD + kInvT - 1) / kInvT;
  VR_TRY(partb.get(sizeof(double) * (size_t)nb));
  VR_TRY(sb.get(sizeof(double)));
  double n = (double)(V * BD), cg = 2.0 / n, cm = 2.0 / ((double)G * n);
  invariance_k<T><<<vr_cu_blocks(nb, 1), kInvT, 0, st>>>((const T *)vr_data(zt), V, BD, G, cg, cm,
                                                              a->out[2] ? (T *)vr_data(a->out[2]) : nullptr,
                                                              partb.as<double>());
  VR_CU_LAUNCHED("invariance");
  VR_TRY(vr_cu_reg_sum(partb.as<double>(), nb, sb.as<double>()));
  invariance_finish_k<T><<<1, 1, 0, st>>>(sb.as<double>(), n, (T *)vr_data(a->out[0]));
  VR_CU_LAUNCHED("invariance loss");
  return VR_OK;
}

#define VR_REG_SWITCH(fn)                                                                                          \
  switch (a->in[0]->dtype) {                                                                                       \
  case VR_F32: return fn<float>(a);                                                                                \
  case VR_F64: return fn<double>(a);                                                                               \
  default: return VR_CU_UNSUPPORTED_DTYPE("z", a->in[0]->dtype);                                                   \
  }

} // namespace

vr_status vr_cuda_vicreg_fwd(const vr_kernel_args *a) { VR_REG_SWITCH(vicreg_typed) }
vr_status vr_cuda_vicreg_pooled_fwd(const vr_kernel_args *a) { VR_REG_SWITCH(vicreg_pooled_typed) }
vr_status vr_cuda_barlow_fwd(const vr_kernel_args *a) { VR_REG_SWITCH(barlow_typed) }
vr_status vr_cuda_invariance_fwd(const vr_kernel_args *a) { VR_REG_SWITCH(invariance_typed) }
