/* reg_gram.cu: CUDA kernels of the covariance regularizers, VICReg (official, two views), the
 * pooled VICReg variant, Barlow Twins, and the invariance term, with the argument layout of
 * core/reg/vicreg.c, barlow.c and invariance.c and the CPU's formulas and roundings
 * (kernels/cpu/reg_gram.inc): column statistics one thread per dim with rows in order, each
 * covariance or cross-correlation one cuBLAS GEMM, its off-diagonal sum per row then in a fixed
 * tree, gradients by one GEMM and a per-dim pass. Scalars stay on the device (no host
 * synchronisation); every sum has a fixed order. */
#include "reg.cuh"

namespace {

/* ---------------------------------------------------------------- shared pieces */

/* per column d of the n x D rows r: mean (double), x = (T)(r - mean), ss = sum x^2 over the rounded x */
template <typename T> __global__ void center_k(const T *r, int64_t n, int64_t D, T *x, double *ss) {
  for (int64_t d = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; d < D; d += (int64_t)gridDim.x * blockDim.x) {
    double m = 0, s = 0;
    for (int64_t b = 0; b < n; b++) m += (double)r[b * D + d];
    m /= (double)n;
    for (int64_t b = 0; b < n; b++) {
      T v = (T)((double)r[b * D + d] - m);
      x[b * D + d] = v;
      s += (double)v * (double)v;
    }
    ss[d] = s;
  }
}

/* rowbuf[d] = sum_{e != d} C_de^2 (row in order), then C_dd = 0 */
template <typename T> __global__ void offdiag_k(T *C, int64_t D, double *rowbuf) {
  for (int64_t d = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; d < D; d += (int64_t)gridDim.x * blockDim.x) {
    double off = 0;
    for (int64_t e = 0; e < D; e++)
      if (e != d) off += (double)C[d * D + e] * (double)C[d * D + e];
    rowbuf[d] = off;
    C[d * D + d] = (T)0;
  }
}

/* mode 0 (VICReg, n = B): std = sqrt(ss/(n-1) + 1e-4); vv[d] = relu(1 - std); coefficient
 * -0.5 w / (D (n-1) std) where std < 1. mode 1 (pooled): r = sqrt(ss/(n-1)), std = r + 1e-6,
 * h = relu(1 - std), vv[d] = h^2, coefficient -2 w h / (D (n-1) r) where r > 0. ss is overwritten
 * with the coefficient. */
__global__ void var_terms_k(int mode, double *ss, int64_t n, int64_t D, double w, double *vv) {
  for (int64_t d = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; d < D; d += (int64_t)gridDim.x * blockDim.x) {
    if (mode == 0) {
      double sd = sqrt(ss[d] / (double)(n - 1) + 1e-4);
      vv[d] = sd < 1 ? 1 - sd : 0;
      ss[d] = sd < 1 ? -0.5 * w / ((double)D * (double)(n - 1) * sd) : 0;
    } else {
      double r = sqrt(ss[d] / (double)(n - 1)), sd = r + 1e-6, h = sd < 1 ? 1 - sd : 0;
      vv[d] = h * h;
      ss[d] = r > 0 ? -2.0 * w * h / ((double)D * (double)(n - 1) * r) : 0;
    }
  }
}

/* per column: g = (T)(g + coef x); then g = (T)(g - mean_b g) (+ s (z0 - z1) for VICReg) */
template <typename T>
__global__ void var_grad_k(T *g, const T *x, const double *coef, int64_t n, int64_t D, double s, const T *z0,
                           const T *z1) {
  for (int64_t d = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; d < D; d += (int64_t)gridDim.x * blockDim.x) {
    double m = 0, c = coef[d];
    for (int64_t b = 0; b < n; b++) {
      T v = (T)((double)g[b * D + d] + c * (double)x[b * D + d]);
      g[b * D + d] = v;
      m += (double)v;
    }
    m /= (double)n;
    for (int64_t b = 0; b < n; b++) {
      int64_t i = b * D + d;
      T v = (T)((double)g[i] - m);
      if (z0) v = (T)((double)v + s * ((double)z0[i] - (double)z1[i]));
      g[i] = v;
    }
  }
}

/* colbuf[d] = sum_b (z0 - z1)^2 over column d */
template <typename T> __global__ void inv_cols_k(const T *z0, const T *z1, int64_t B, int64_t D, double *colbuf) {
  for (int64_t d = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; d < D; d += (int64_t)gridDim.x * blockDim.x) {
    double s = 0;
    for (int64_t b = 0; b < B; b++) {
      double e = (double)z0[b * D + d] - (double)z1[b * D + d];
      s += e * e;
    }
    colbuf[d] = s;
  }
}

unsigned cols_grid(int64_t D) { return vr_cu_blocks(D, 128); }

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
  double wi = a->f[0], wv = a->f[1], wc = a->f[2];
  vr_cu_buf xb, Cb, ssb, vvb, rowb, accb;
  VR_TRY(xb.get(sizeof(T) * (size_t)BD));
  VR_TRY(Cb.get(sizeof(T) * (size_t)(D * D)));
  VR_TRY(ssb.get(sizeof(double) * (size_t)D));
  VR_TRY(vvb.get(sizeof(double) * (size_t)D));
  VR_TRY(rowb.get(sizeof(double) * (size_t)D));
  VR_TRY(accb.get(sizeof(double) * 5));
  double *acc = accb.as<double>();
  T *x = xb.as<T>(), *C = Cb.as<T>();
  inv_cols_k<T><<<cols_grid(D), 128, 0, st>>>(z, z + BD, B, D, rowb.as<double>());
  VR_CU_LAUNCHED("vicreg invariance");
  VR_TRY(vr_cu_reg_sum(rowb.as<double>(), D, acc));
  for (int v = 0; v < 2; v++) {
    center_k<T><<<cols_grid(D), 128, 0, st>>>(z + v * BD, B, D, x, ssb.as<double>());
    VR_CU_LAUNCHED("vicreg centring");
    var_terms_k<<<cols_grid(D), 128, 0, st>>>(0, ssb.as<double>(), B, D, wv, vvb.as<double>());
    VR_CU_LAUNCHED("vicreg variance");
    VR_TRY(vr_cu_reg_sum(vvb.as<double>(), D, acc + 1 + v));
    VR_TRY(vr_cu_gemm_rm(dt, 1, 0, D, D, B, 1.0 / (double)(B - 1), x, D, x, D, 0.0, C, D));
    offdiag_k<T><<<cols_grid(D), 128, 0, st>>>(C, D, rowb.as<double>());
    VR_CU_LAUNCHED("vicreg covariance");
    VR_TRY(vr_cu_reg_sum(rowb.as<double>(), D, acc + 3 + v));
    if (grad) {
      T *g = grad + v * BD;
      VR_TRY(vr_cu_gemm_rm(dt, 0, 0, B, D, D, 4.0 * wc / ((double)D * (double)(B - 1)), x, D, C, D, 0.0, g, D));
      double s = (v == 0 ? 2.0 : -2.0) * wi / (double)BD;
      var_grad_k<T><<<cols_grid(D), 128, 0, st>>>(g, x, ssb.as<double>(), B, D, s, z, z + BD);
      VR_CU_LAUNCHED("vicreg gradient");
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

template <typename T> vr_status vicreg_repo_typed(const vr_kernel_args *a) {
  const vr_tensor *zt = a->in[0];
  vr_dtype dt = zt->dtype;
  int64_t N = zt->shape[0] * zt->shape[1], D = zt->shape[2];
  VR_TRY(vr_cu_reg_check_finite("vr_vicreg_repo", zt));
  cudaStream_t st = vr_cuda_stream();
  const T *z = (const T *)vr_data(zt);
  T *grad = a->out[2] ? (T *)vr_data(a->out[2]) : nullptr;
  double wv = a->f[0], wc = a->f[1];
  vr_cu_buf xb, Cb, ssb, vvb, rowb, accb;
  VR_TRY(xb.get(sizeof(T) * (size_t)(N * D)));
  VR_TRY(Cb.get(sizeof(T) * (size_t)(D * D)));
  VR_TRY(ssb.get(sizeof(double) * (size_t)D));
  VR_TRY(vvb.get(sizeof(double) * (size_t)D));
  VR_TRY(rowb.get(sizeof(double) * (size_t)D));
  VR_TRY(accb.get(sizeof(double) * 2));
  double *acc = accb.as<double>();
  T *x = xb.as<T>(), *C = Cb.as<T>();
  center_k<T><<<cols_grid(D), 128, 0, st>>>(z, N, D, x, ssb.as<double>());
  VR_CU_LAUNCHED("vicreg_repo centring");
  var_terms_k<<<cols_grid(D), 128, 0, st>>>(1, ssb.as<double>(), N, D, wv, vvb.as<double>());
  VR_CU_LAUNCHED("vicreg_repo variance");
  VR_TRY(vr_cu_reg_sum(vvb.as<double>(), D, acc));
  VR_TRY(vr_cu_gemm_rm(dt, 1, 0, D, D, N, 1.0 / (double)(N - 1), x, D, x, D, 0.0, C, D));
  offdiag_k<T><<<cols_grid(D), 128, 0, st>>>(C, D, rowb.as<double>());
  VR_CU_LAUNCHED("vicreg_repo covariance");
  VR_TRY(vr_cu_reg_sum(rowb.as<double>(), D, acc + 1));
  if (grad) {
    VR_TRY(vr_cu_gemm_rm(dt, 0, 0, N, D, D, 4.0 * wc / ((double)D * (double)(N - 1)), x, D, C, D, 0.0, grad, D));
    var_grad_k<T><<<cols_grid(D), 128, 0, st>>>(grad, x, ssb.as<double>(), N, D, 0.0, (const T *)nullptr,
                                                (const T *)nullptr);
    VR_CU_LAUNCHED("vicreg_repo gradient");
  }
  repo_finish_k<T><<<1, 1, 0, st>>>(acc, (double)D, wv, wc, (T *)vr_data(a->out[0]),
                                    a->out[1] ? (T *)vr_data(a->out[1]) : nullptr);
  VR_CU_LAUNCHED("vicreg_repo loss");
  return VR_OK;
}

/* ---------------------------------------------------------------- Barlow Twins */

/* per column of one view: x = z - mean, rt = sqrt(sum x^2 / (B-1)), s = rt + 1e-6, zn = (T)(x / s) */
template <typename T>
__global__ void standardize_k(const T *z, int64_t B, int64_t D, T *zn, double *s, double *rt) {
  for (int64_t d = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; d < D; d += (int64_t)gridDim.x * blockDim.x) {
    double m = 0, ss = 0;
    for (int64_t b = 0; b < B; b++) m += (double)z[b * D + d];
    m /= (double)B;
    for (int64_t b = 0; b < B; b++) {
      T v = (T)((double)z[b * D + d] - m);
      zn[b * D + d] = v;
      ss += (double)v * (double)v;
    }
    double r = sqrt(ss / (double)(B - 1)), sd = r + 1e-6;
    rt[d] = r;
    s[d] = sd;
    for (int64_t b = 0; b < B; b++) zn[b * D + d] = (T)((double)zn[b * D + d] / sd);
  }
}

/* per row of C: the pair's loss terms, and C overwritten with M = dl/dC */
template <typename T> __global__ void barlow_rows_k(T *C, int64_t D, double lam, double *rowbuf) {
  for (int64_t d = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; d < D; d += (int64_t)gridDim.x * blockDim.x) {
    double l = 0;
    for (int64_t e = 0; e < D; e++) {
      double c = (double)C[d * D + e];
      if (d == e) {
        l += (c - 1) * (c - 1);
        C[d * D + e] = (T)(2 * (c - 1));
      } else {
        l += lam * c * c;
        C[d * D + e] = (T)(2 * lam * c);
      }
    }
    rowbuf[d] = l;
  }
}

/* per column: back through the standardisation, then the centring */
template <typename T>
__global__ void barlow_grad_k(T *g, const T *zn, const double *s, const double *rt, int64_t B, int64_t D) {
  for (int64_t d = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; d < D; d += (int64_t)gridDim.x * blockDim.x) {
    double t = 0;
    for (int64_t b = 0; b < B; b++) t += (double)g[b * D + d] * (double)zn[b * D + d];
    t = rt[d] > 0 ? t / ((double)(B - 1) * rt[d]) : 0;
    double m = 0;
    for (int64_t b = 0; b < B; b++) {
      T v = (T)((double)g[b * D + d] / s[d] - t * (double)zn[b * D + d]);
      g[b * D + d] = v;
      m += (double)v;
    }
    m /= (double)B;
    for (int64_t b = 0; b < B; b++) g[b * D + d] = (T)((double)g[b * D + d] - m);
  }
}

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
  double lam = a->f[0], P = (double)(V - 1);
  vr_cu_buf znb, Cb, sb, rtb, rowb, pairb;
  VR_TRY(znb.get(sizeof(T) * (size_t)(V * BD)));
  VR_TRY(Cb.get(sizeof(T) * (size_t)(D * D)));
  VR_TRY(sb.get(sizeof(double) * (size_t)(V * D)));
  VR_TRY(rtb.get(sizeof(double) * (size_t)(V * D)));
  VR_TRY(rowb.get(sizeof(double) * (size_t)D));
  VR_TRY(pairb.get(sizeof(double) * (size_t)(V - 1)));
  T *zn = znb.as<T>(), *C = Cb.as<T>();
  for (int64_t v = 0; v < V; v++) {
    standardize_k<T><<<cols_grid(D), 128, 0, st>>>(z + v * BD, B, D, zn + v * BD, sb.as<double>() + v * D,
                                                   rtb.as<double>() + v * D);
    VR_CU_LAUNCHED("barlow standardisation");
  }
  if (grad) VR_CU(cudaMemsetAsync(grad, 0, sizeof(T) * (size_t)(V * BD), st));
  for (int64_t v = 0; v + 1 < V; v++) {
    const T *x0 = zn + v * BD, *x1 = zn + (v + 1) * BD;
    VR_TRY(vr_cu_gemm_rm(dt, 1, 0, D, D, B, 1.0 / (double)B, x0, D, x1, D, 0.0, C, D));
    barlow_rows_k<T><<<cols_grid(D), 128, 0, st>>>(C, D, lam, rowb.as<double>());
    VR_CU_LAUNCHED("barlow cross-correlation");
    VR_TRY(vr_cu_reg_sum(rowb.as<double>(), D, pairb.as<double>() + v));
    if (grad) {
      double alpha = 1.0 / ((double)B * P);
      VR_TRY(vr_cu_gemm_rm(dt, 0, 1, B, D, D, alpha, x1, D, C, D, 1.0, grad + v * BD, D));
      VR_TRY(vr_cu_gemm_rm(dt, 0, 0, B, D, D, alpha, x0, D, C, D, 1.0, grad + (v + 1) * BD, D));
    }
  }
  if (grad)
    for (int64_t v = 0; v < V; v++) {
      barlow_grad_k<T><<<cols_grid(D), 128, 0, st>>>(grad + v * BD, zn + v * BD, sb.as<double>() + v * D,
                                                     rtb.as<double>() + v * D, B, D);
      VR_CU_LAUNCHED("barlow gradient");
    }
  barlow_finish_k<T><<<1, 1, 0, st>>>(pairb.as<double>(), V - 1, (T *)vr_data(a->out[0]));
  VR_CU_LAUNCHED("barlow loss");
  (void)P;
  return VR_OK;
}

/* ---------------------------------------------------------------- invariance */

template <typename T>
__global__ void invariance_k(const T *z, int64_t V, int64_t BD, int64_t G, double cg, double cm, T *grad, double *part) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < BD; i += (int64_t)gridDim.x * blockDim.x) {
    double m = 0, rs = 0, acc = 0;
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
    part[i] = acc;
  }
}
template <typename T> __global__ void invariance_finish_k(const double *s, double n, T *loss) { *loss = (T)(*s / n); }

template <typename T> vr_status invariance_typed(const vr_kernel_args *a) {
  const vr_tensor *zt = a->in[0];
  int64_t V = zt->shape[0], B = zt->shape[1], D = zt->shape[2], BD = B * D, G = a->i[0];
  if (G < 1 || G > V) return VR_FAIL(VR_E_ARG, "global_views: expected 1 <= G <= V = %lld, got %lld", (long long)V, (long long)G);
  VR_TRY(vr_cu_reg_check_finite("vr_invariance", zt));
  cudaStream_t st = vr_cuda_stream();
  vr_cu_buf partb, sb;
  VR_TRY(partb.get(sizeof(double) * (size_t)BD));
  VR_TRY(sb.get(sizeof(double)));
  double n = (double)(V * BD), cg = 2.0 / n, cm = 2.0 / ((double)G * n);
  invariance_k<T><<<vr_cu_blocks(BD), VR_CU_THREADS, 0, st>>>((const T *)vr_data(zt), V, BD, G, cg, cm,
                                                              a->out[2] ? (T *)vr_data(a->out[2]) : nullptr,
                                                              partb.as<double>());
  VR_CU_LAUNCHED("invariance");
  VR_TRY(vr_cu_reg_sum(partb.as<double>(), BD, sb.as<double>()));
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

vr_status vr_cu_vicreg_fwd(const vr_kernel_args *a) { VR_REG_SWITCH(vicreg_typed) }
vr_status vr_cu_vicreg_repo_fwd(const vr_kernel_args *a) { VR_REG_SWITCH(vicreg_repo_typed) }
vr_status vr_cu_barlow_fwd(const vr_kernel_args *a) { VR_REG_SWITCH(barlow_typed) }
vr_status vr_cu_invariance_fwd(const vr_kernel_args *a) { VR_REG_SWITCH(invariance_typed) }
