/* norm.cu: CUDA batch normalisation and layer normalisation (fwd, bwd), with the argument layout
 * of core/ops/norm.c (x, grad_y, weight, bias contiguous; stats [C] or [R] in x's dtype, f32 for
 * bf16; running_* 1-D of any float dtype and stride, updated in place when training):
 *  BATCHNORM fwd: in = {x, w|NULL, b|NULL, running_mean|NULL, running_var|NULL}, out = {y,
 *    save_mean, save_invstd}; i = {training, N, C, S}; f = {momentum, eps}.
 *  BATCHNORM bwd: in = {grad_y, x, w|NULL, save_mean, save_invstd}, out = {grad_x|NULL,
 *    grad_w|NULL, grad_b|NULL}; i as fwd.
 *  LAYERNORM fwd: in = {x, w|NULL [D], b|NULL [D]}, out = {y, save_mean [R], save_invstd [R]};
 *    i = {R, D}; f[0] eps.  bwd: in = {grad_y, x, w|NULL, save_mean, save_invstd}, out =
 *    {grad_x|NULL, grad_w|NULL, grad_b|NULL}.
 * Statistics: one block per channel (batch norm) or row (layer norm), two passes in double, fixed
 * trees; layer norm's grad_w/grad_b: one thread per column, rows in order. Deterministic. */
#include "blockreduce.cuh"

namespace {

const int kT = 256;
const int kBnT = 1024; /* batch norm: few channels over many elements each, so wide blocks */

struct vec1 { /* a 1-D parameter tensor: pointer to element 0, stride, dtype; p == NULL: absent */
  const void *p;
  int64_t st;
  int dt;
};
vec1 vec_of(const vr_tensor *t) {
  vec1 v = {nullptr, 0, VR_F32};
  if (t) {
    v.p = vr_data(t);
    v.st = t->ndim ? t->stride[0] : 0;
    v.dt = t->dtype;
  }
  return v;
}
__device__ __forceinline__ double vget(const vec1 &v, int64_t i, double dflt) {
  return v.p ? vr_cu_ld_any(v.p, v.dt, i * v.st) : dflt;
}
__device__ __forceinline__ void vset(const vec1 &v, int64_t i, double x) { vr_cu_st_any((void *)v.p, v.dt, i * v.st, x); }

/* element (n, c, s) of an N x C x S tensor */
__device__ __forceinline__ int64_t bn_idx(int64_t m, int64_t c, int64_t C, int64_t S) {
  int64_t n = m / S, s = m - n * S;
  return (n * C + c) * S + s;
}

template <typename T, typename St>
__global__ void __launch_bounds__(kBnT) bn_stats(const T *x, int64_t N, int64_t C, int64_t S, int training, vec1 w, vec1 b, vec1 rm, vec1 rv,
                         double mom, double eps, St *smean, St *sinv, double *scale, double *shift) {
  __shared__ double sh[kBnT];
  int64_t M = N * S;
  for (int64_t c = blockIdx.x; c < C; c += gridDim.x) {
    double mean, invstd;
    if (training) {
      double s = 0;
      for (int64_t m = threadIdx.x; m < M; m += blockDim.x) s += vr_cu_conv<T>::load(x[bn_idx(m, c, C, S)]);
      mean = vr_cu_block_reduce<vr_cu_sum_op>(s, sh) / (double)M;
      double q = 0;
      for (int64_t m = threadIdx.x; m < M; m += blockDim.x) {
        double d = vr_cu_conv<T>::load(x[bn_idx(m, c, C, S)]) - mean;
        q += d * d;
      }
      q = vr_cu_block_reduce<vr_cu_sum_op>(q, sh);
      invstd = 1.0 / sqrt(q / (double)M + eps);
      if (threadIdx.x == 0 && rm.p) {
        vset(rm, c, (1 - mom) * vget(rm, c, 0) + mom * mean);
        vset(rv, c, (1 - mom) * vget(rv, c, 0) + mom * q / (double)(M - 1));
      }
    } else {
      mean = vget(rm, c, 0);
      invstd = 1.0 / sqrt(vget(rv, c, 1) + eps);
    }
    if (threadIdx.x == 0) {
      double sc = vget(w, c, 1.0) * invstd;
      scale[c] = sc;
      shift[c] = vget(b, c, 0.0) - mean * sc;
      smean[c] = (St)mean;
      sinv[c] = (St)invstd;
    }
  }
}
template <typename T>
__global__ void bn_apply(const T *x, T *y, int64_t total, int64_t C, int64_t S, const double *scale, const double *shift) {
  for (int64_t k = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; k < total; k += (int64_t)gridDim.x * blockDim.x) {
    int64_t c = (k / S) % C;
    y[k] = vr_cu_conv<T>::store(vr_cu_conv<T>::load(x[k]) * scale[c] + shift[c]);
  }
}

unsigned grid_of(int64_t n) { return (unsigned)(n < 1 ? 1 : (n < (1 << 20) ? n : (1 << 20))); }

template <typename T> vr_status bn_fwd_typed(const vr_kernel_args *a) {
  typedef typename vr_cu_acc<T>::type St;
  int training = (int)a->i[0];
  int64_t N = a->i[1], C = a->i[2], S = a->i[3];
  if (!C) return VR_OK;
  if (!training && (!a->in[3] || !a->in[4])) return VR_FAIL(VR_E_ARG, "running_mean, running_var: expected tensors in eval mode, got NULL");
  cudaStream_t s = vr_cuda_stream();
  double *buf = nullptr;
  size_t nb = sizeof(double) * 2 * (size_t)C;
  VR_TRY(vr_cuda_scratch(nb, (void **)&buf));
  bn_stats<T, St><<<grid_of(C), kBnT, 0, s>>>((const T *)vr_data(a->in[0]), N, C, S, training, vec_of(a->in[1]),
                                             vec_of(a->in[2]), vec_of(a->in[3]), vec_of(a->in[4]), a->f[0], a->f[1],
                                             (St *)vr_data(a->out[1]), (St *)vr_data(a->out[2]), buf, buf + C);
  cudaError_t e = cudaGetLastError();
  int64_t total = N * C * S;
  if (e == cudaSuccess && total) {
    bn_apply<T><<<vr_cu_blocks(total), VR_CU_THREADS, 0, s>>>((const T *)vr_data(a->in[0]), (T *)vr_data(a->out[0]), total, C,
                                                               S, buf, buf + C);
    e = cudaGetLastError();
  }
  vr_cuda_scratch_free(buf, nb);
  if (e != cudaSuccess) return VR_FAIL(VR_E_CUDA, "launch of batch norm: %s (%s)", cudaGetErrorString(e), cudaGetErrorName(e));
  return VR_OK;
}

/* per channel: sg = sum g, sgx = sum g (x - mean); grad_b, grad_w, and the grad_x coefficients */
template <typename T, typename St>
__global__ void __launch_bounds__(kBnT) bn_bwd_stats(const T *g, const T *x, int64_t N, int64_t C, int64_t S, int training, vec1 w,
                             const St *smean, const St *sinv, T *gw, T *gb, double *k) {
  __shared__ double sh[kBnT];
  int64_t M = N * S;
  for (int64_t c = blockIdx.x; c < C; c += gridDim.x) {
    double mean = (double)smean[c], invstd = (double)sinv[c];
    double sg = 0, sgx = 0;
    for (int64_t m = threadIdx.x; m < M; m += blockDim.x) {
      int64_t i = bn_idx(m, c, C, S);
      double gv = vr_cu_conv<T>::load(g[i]);
      sg += gv;
      sgx += gv * (vr_cu_conv<T>::load(x[i]) - mean);
    }
    sg = vr_cu_block_reduce<vr_cu_sum_op>(sg, sh);
    sgx = vr_cu_block_reduce<vr_cu_sum_op>(sgx, sh);
    if (threadIdx.x == 0) {
      if (gb) gb[c] = vr_cu_conv<T>::store(sg);
      if (gw) gw[c] = vr_cu_conv<T>::store(sgx * invstd);
      k[4 * c] = vget(w, c, 1.0) * invstd;
      k[4 * c + 1] = training ? sg / (double)M : 0.0;
      k[4 * c + 2] = training ? sgx * invstd * invstd / (double)M : 0.0;
      k[4 * c + 3] = mean;
    }
  }
}
template <typename T>
__global__ void bn_bwd_apply(const T *g, const T *x, T *gx, int64_t total, int64_t C, int64_t S, const double *k) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
    int64_t c = (i / S) % C;
    const double *q = k + 4 * c;
    double v = q[0] * (vr_cu_conv<T>::load(g[i]) - q[1] - (vr_cu_conv<T>::load(x[i]) - q[3]) * q[2]);
    gx[i] = vr_cu_conv<T>::store(v);
  }
}

template <typename T> vr_status bn_bwd_typed(const vr_kernel_args *a) {
  typedef typename vr_cu_acc<T>::type St;
  int training = (int)a->i[0];
  int64_t N = a->i[1], C = a->i[2], S = a->i[3];
  if (!C) return VR_OK;
  cudaStream_t s = vr_cuda_stream();
  double *k = nullptr;
  size_t nb = sizeof(double) * 4 * (size_t)C;
  VR_TRY(vr_cuda_scratch(nb, (void **)&k));
  bn_bwd_stats<T, St><<<grid_of(C), kBnT, 0, s>>>(
      (const T *)vr_data(a->in[0]), (const T *)vr_data(a->in[1]), N, C, S, training, vec_of(a->in[2]),
      (const St *)vr_data(a->in[3]), (const St *)vr_data(a->in[4]), a->out[1] ? (T *)vr_data(a->out[1]) : nullptr,
      a->out[2] ? (T *)vr_data(a->out[2]) : nullptr, k);
  cudaError_t e = cudaGetLastError();
  int64_t total = N * C * S;
  if (e == cudaSuccess && a->out[0] && total) {
    bn_bwd_apply<T><<<vr_cu_blocks(total), VR_CU_THREADS, 0, s>>>((const T *)vr_data(a->in[0]), (const T *)vr_data(a->in[1]),
                                                                   (T *)vr_data(a->out[0]), total, C, S, k);
    e = cudaGetLastError();
  }
  vr_cuda_scratch_free(k, nb);
  if (e != cudaSuccess) return VR_FAIL(VR_E_CUDA, "launch of batch norm backward: %s (%s)", cudaGetErrorString(e), cudaGetErrorName(e));
  return VR_OK;
}

/* ---- layer norm ---- */
template <typename T, typename St>
__global__ void ln_fwd(const T *x, T *y, int64_t R, int64_t D, vec1 w, vec1 b, double eps, St *smean, St *sinv) {
  __shared__ double sh[kT];
  for (int64_t r = blockIdx.x; r < R; r += gridDim.x) {
    const T *xr = x + r * D;
    T *yr = y + r * D;
    double s = 0;
    for (int64_t d = threadIdx.x; d < D; d += blockDim.x) s += vr_cu_conv<T>::load(xr[d]);
    double mean = vr_cu_block_reduce<vr_cu_sum_op>(s, sh) / (double)D;
    double q = 0;
    for (int64_t d = threadIdx.x; d < D; d += blockDim.x) {
      double v = vr_cu_conv<T>::load(xr[d]) - mean;
      q += v * v;
    }
    double invstd = 1.0 / sqrt(vr_cu_block_reduce<vr_cu_sum_op>(q, sh) / (double)D + eps);
    for (int64_t d = threadIdx.x; d < D; d += blockDim.x)
      yr[d] = vr_cu_conv<T>::store((vr_cu_conv<T>::load(xr[d]) - mean) * invstd * vget(w, d, 1.0) + vget(b, d, 0.0));
    if (threadIdx.x == 0) {
      smean[r] = (St)mean;
      sinv[r] = (St)invstd;
    }
  }
}
template <typename T, typename St>
__global__ void ln_bwd_x(const T *g, const T *x, T *gx, int64_t R, int64_t D, vec1 w, const St *smean, const St *sinv) {
  __shared__ double sh[kT];
  for (int64_t r = blockIdx.x; r < R; r += gridDim.x) {
    const T *gr = g + r * D, *xr = x + r * D;
    double mean = (double)smean[r], invstd = (double)sinv[r];
    double a1 = 0, a2 = 0;
    for (int64_t d = threadIdx.x; d < D; d += blockDim.x) {
      double gw = vr_cu_conv<T>::load(gr[d]) * vget(w, d, 1.0);
      a1 += gw;
      a2 += gw * (vr_cu_conv<T>::load(xr[d]) - mean) * invstd;
    }
    a1 = vr_cu_block_reduce<vr_cu_sum_op>(a1, sh) / (double)D;
    a2 = vr_cu_block_reduce<vr_cu_sum_op>(a2, sh) / (double)D;
    for (int64_t d = threadIdx.x; d < D; d += blockDim.x) {
      double gw = vr_cu_conv<T>::load(gr[d]) * vget(w, d, 1.0), xh = (vr_cu_conv<T>::load(xr[d]) - mean) * invstd;
      gx[r * D + d] = vr_cu_conv<T>::store(invstd * (gw - a1 - xh * a2));
    }
  }
}
template <typename T, typename St>
__global__ void ln_bwd_w(const T *g, const T *x, T *gw, T *gb, int64_t R, int64_t D, const St *smean, const St *sinv) {
  for (int64_t d = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; d < D; d += (int64_t)gridDim.x * blockDim.x) {
    double sw = 0, sb = 0;
    for (int64_t r = 0; r < R; r++) {
      double gv = vr_cu_conv<T>::load(g[r * D + d]);
      sb += gv;
      sw += gv * (vr_cu_conv<T>::load(x[r * D + d]) - (double)smean[r]) * (double)sinv[r];
    }
    if (gw) gw[d] = vr_cu_conv<T>::store(sw);
    if (gb) gb[d] = vr_cu_conv<T>::store(sb);
  }
}

template <typename T> vr_status ln_fwd_typed(const vr_kernel_args *a) {
  typedef typename vr_cu_acc<T>::type St;
  int64_t R = a->i[0], D = a->i[1];
  if (!R) return VR_OK;
  ln_fwd<T, St><<<grid_of(R), kT, 0, vr_cuda_stream()>>>((const T *)vr_data(a->in[0]), (T *)vr_data(a->out[0]), R, D,
                                                         vec_of(a->in[1]), vec_of(a->in[2]), a->f[0],
                                                         (St *)vr_data(a->out[1]), (St *)vr_data(a->out[2]));
  VR_CU_LAUNCHED("layer norm");
  return VR_OK;
}
template <typename T> vr_status ln_bwd_typed(const vr_kernel_args *a) {
  typedef typename vr_cu_acc<T>::type St;
  int64_t R = a->i[0], D = a->i[1];
  cudaStream_t s = vr_cuda_stream();
  const T *g = (const T *)vr_data(a->in[0]), *x = (const T *)vr_data(a->in[1]);
  const St *sm = (const St *)vr_data(a->in[3]), *si = (const St *)vr_data(a->in[4]);
  if (a->out[0] && R && D) {
    ln_bwd_x<T, St><<<grid_of(R), kT, 0, s>>>(g, x, (T *)vr_data(a->out[0]), R, D, vec_of(a->in[2]), sm, si);
    VR_CU_LAUNCHED("layer norm backward (x)");
  }
  if ((a->out[1] || a->out[2]) && D) {
    ln_bwd_w<T, St><<<vr_cu_blocks(D), VR_CU_THREADS, 0, s>>>(g, x, a->out[1] ? (T *)vr_data(a->out[1]) : nullptr,
                                                             a->out[2] ? (T *)vr_data(a->out[2]) : nullptr, R, D, sm, si);
    VR_CU_LAUNCHED("layer norm backward (weight)");
  }
  return VR_OK;
}

vr_status bn_fwd(const vr_kernel_args *a) {
  VR_CU_FLOAT_SWITCH(a->in[0]->dtype, "x", return bn_fwd_typed<T>(a));
  return VR_OK;
}
vr_status bn_bwd(const vr_kernel_args *a) {
  VR_CU_FLOAT_SWITCH(a->in[1]->dtype, "x", return bn_bwd_typed<T>(a));
  return VR_OK;
}
vr_status lnorm_fwd(const vr_kernel_args *a) {
  VR_CU_FLOAT_SWITCH(a->in[0]->dtype, "x", return ln_fwd_typed<T>(a));
  return VR_OK;
}
vr_status lnorm_bwd(const vr_kernel_args *a) {
  VR_CU_FLOAT_SWITCH(a->in[1]->dtype, "x", return ln_bwd_typed<T>(a));
  return VR_OK;
}

} // namespace

extern "C" {
vr_status vr_cuda_batchnorm_fwd(const vr_kernel_args *a) { return bn_fwd(a); }
vr_status vr_cuda_batchnorm_bwd(const vr_kernel_args *a) { return bn_bwd(a); }
vr_status vr_cuda_layernorm_fwd(const vr_kernel_args *a) { return lnorm_fwd(a); }
vr_status vr_cuda_layernorm_bwd(const vr_kernel_args *a) { return lnorm_bwd(a); }
void vr_cuda_register_norm(void) {
  vr_kernel_register(VR_OP_BATCHNORM, VR_CUDA, vr_cuda_batchnorm_fwd, vr_cuda_batchnorm_bwd);
  vr_kernel_register(VR_OP_LAYERNORM, VR_CUDA, vr_cuda_layernorm_fwd, vr_cuda_layernorm_bwd);
}
}
