/* softmax.cu: CUDA softmax / log_softmax (fwd, bwd) and the fused cross-entropy loss (fwd, bwd),
 * with the argument layout of core/ops/softmax.c (every tensor contiguous):
 *  SOFTMAX sub 0 softmax, 1 log_softmax; x read as outer x D x inner; i = {outer, D, inner};
 *    fwd in = {x}, out = {y}; bwd in = {grad_y, y}, out = {grad_x}.
 *  CROSS_ENTROPY fwd: in = {logits N x C, target i64 [N]}, out = {loss [] , lse [N]}, i = {N, C},
 *    f[0] label smoothing; bwd: in = {grad_loss [], logits, target, lse}, out = {grad_logits}.
 * Lines with inner == 1 get one block each (fixed trees); strided lines one thread each (in
 * order). The loss is summed over rows by one block in a fixed tree: deterministic. f32 and bf16
 * compute elementwise in float, f64 in double; line sums and the cross-entropy terms in double. */
#include "blockreduce.cuh"

namespace {

const int kT = 256;

__device__ __forceinline__ float m_exp(float x) { return expf(x); }
__device__ __forceinline__ double m_exp(double x) { return exp(x); }
__device__ __forceinline__ float m_log(float x) { return logf(x); }
__device__ __forceinline__ double m_log(double x) { return log(x); }

/* ---- softmax, one block per row (inner == 1) ---- */
template <typename T>
__global__ void softmax_rows(const T *x, T *y, int64_t rows, int64_t D, int log_sm) {
  typedef typename vr_cu_acc<T>::type C;
  __shared__ double sh[kT];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T *xr = x + r * D;
    T *yr = y + r * D;
    double mxd = -INFINITY;
    for (int64_t d = threadIdx.x; d < D; d += blockDim.x) mxd = vr_cu_max_op::apply(mxd, (double)vr_cu_ld<T>(xr[d]));
    C mx = (C)vr_cu_block_reduce<vr_cu_max_op>(mxd, sh);
    double sd = 0; /* sums in double, as the CPU */
    for (int64_t d = threadIdx.x; d < D; d += blockDim.x) sd += (double)m_exp(vr_cu_ld<T>(xr[d]) - mx);
    C s = (C)vr_cu_block_reduce<vr_cu_sum_op>(sd, sh);
    C ls = m_log(s);
    for (int64_t d = threadIdx.x; d < D; d += blockDim.x) {
      C v = vr_cu_ld<T>(xr[d]) - mx;
      yr[d] = vr_cu_st<T>(log_sm ? v - ls : m_exp(v) / s);
    }
  }
}
/* ---- softmax, one thread per strided line ---- */
template <typename T>
__global__ void softmax_lines(const T *x, T *y, int64_t outer, int64_t D, int64_t inner, int log_sm) {
  typedef typename vr_cu_acc<T>::type C;
  for (int64_t l = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; l < outer * inner; l += (int64_t)gridDim.x * blockDim.x) {
    int64_t o = l / inner, i = l - o * inner, base = o * D * inner + i;
    C mx = -INFINITY;
    for (int64_t d = 0; d < D; d++) mx = vr_cu_max_op::apply(mx, vr_cu_ld<T>(x[base + d * inner]));
    double sd = 0;
    for (int64_t d = 0; d < D; d++) sd += (double)m_exp(vr_cu_ld<T>(x[base + d * inner]) - mx);
    C s = (C)sd;
    C ls = m_log(s);
    for (int64_t d = 0; d < D; d++) {
      C v = vr_cu_ld<T>(x[base + d * inner]) - mx;
      y[base + d * inner] = vr_cu_st<T>(log_sm ? v - ls : m_exp(v) / s);
    }
  }
}

/* backward: softmax gx = y (g - sum g y); log_softmax gx = g - exp(y) sum g */
template <typename T>
__global__ void softmax_bwd_rows(const T *g, const T *y, T *gx, int64_t rows, int64_t D, int log_sm) {
  typedef typename vr_cu_acc<T>::type C;
  __shared__ double sh[kT];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T *gr = g + r * D, *yr = y + r * D;
    T *o = gx + r * D;
    double sd = 0;
    for (int64_t d = threadIdx.x; d < D; d += blockDim.x)
      sd += log_sm ? (double)vr_cu_ld<T>(gr[d]) : (double)vr_cu_ld<T>(gr[d]) * (double)vr_cu_ld<T>(yr[d]);
    C s = (C)vr_cu_block_reduce<vr_cu_sum_op>(sd, sh);
    for (int64_t d = threadIdx.x; d < D; d += blockDim.x) {
      C gv = vr_cu_ld<T>(gr[d]), yv = vr_cu_ld<T>(yr[d]);
      o[d] = vr_cu_st<T>(log_sm ? gv - m_exp(yv) * s : yv * (gv - s));
    }
  }
}
template <typename T>
__global__ void softmax_bwd_lines(const T *g, const T *y, T *gx, int64_t outer, int64_t D, int64_t inner, int log_sm) {
  typedef typename vr_cu_acc<T>::type C;
  for (int64_t l = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; l < outer * inner; l += (int64_t)gridDim.x * blockDim.x) {
    int64_t o = l / inner, i = l - o * inner, base = o * D * inner + i;
    double sd = 0;
    for (int64_t d = 0; d < D; d++) {
      int64_t k = base + d * inner;
      sd += log_sm ? (double)vr_cu_ld<T>(g[k]) : (double)vr_cu_ld<T>(g[k]) * (double)vr_cu_ld<T>(y[k]);
    }
    C s = (C)sd;
    for (int64_t d = 0; d < D; d++) {
      int64_t k = base + d * inner;
      C gv = vr_cu_ld<T>(g[k]), yv = vr_cu_ld<T>(y[k]);
      gx[k] = vr_cu_st<T>(log_sm ? gv - m_exp(yv) * s : yv * (gv - s));
    }
  }
}

unsigned grid_rows(int64_t rows) { return (unsigned)(rows < (1 << 20) ? (rows < 1 ? 1 : rows) : (1 << 20)); }

vr_status softmax_fwd(const vr_kernel_args *a) {
  int64_t outer = a->i[0], D = a->i[1], inner = a->i[2];
  if (outer * D * inner == 0) return VR_OK;
  cudaStream_t s = vr_cuda_stream();
  int lsm = a->sub == 1;
  if (inner == 1) {
    VR_CU_FLOAT_SWITCH(a->in[0]->dtype, "x",
                       softmax_rows<T><<<grid_rows(outer), kT, 0, s>>>((const T *)vr_data(a->in[0]), (T *)vr_data(a->out[0]), outer, D, lsm));
  } else {
    VR_CU_FLOAT_SWITCH(a->in[0]->dtype, "x",
                       softmax_lines<T><<<vr_cu_blocks(outer * inner), VR_CU_THREADS, 0, s>>>(
                           (const T *)vr_data(a->in[0]), (T *)vr_data(a->out[0]), outer, D, inner, lsm));
  }
  VR_CU_LAUNCHED("softmax");
  return VR_OK;
}

vr_status softmax_bwd(const vr_kernel_args *a) {
  int64_t outer = a->i[0], D = a->i[1], inner = a->i[2];
  if (outer * D * inner == 0) return VR_OK;
  cudaStream_t s = vr_cuda_stream();
  int lsm = a->sub == 1;
  if (inner == 1) {
    VR_CU_FLOAT_SWITCH(a->in[0]->dtype, "grad_y",
                       softmax_bwd_rows<T><<<grid_rows(outer), kT, 0, s>>>((const T *)vr_data(a->in[0]), (const T *)vr_data(a->in[1]),
                                                                         (T *)vr_data(a->out[0]), outer, D, lsm));
  } else {
    VR_CU_FLOAT_SWITCH(a->in[0]->dtype, "grad_y",
                       softmax_bwd_lines<T><<<vr_cu_blocks(outer * inner), VR_CU_THREADS, 0, s>>>(
                           (const T *)vr_data(a->in[0]), (const T *)vr_data(a->in[1]), (T *)vr_data(a->out[0]), outer, D,
                           inner, lsm));
  }
  VR_CU_LAUNCHED("softmax backward");
  return VR_OK;
}

/* ---- cross entropy ---- */
/* one block per row: lse, and the row's loss term into rowloss[n] (double) */
template <typename T, typename S>
__global__ void ce_rows(const T *x, const int64_t *t, S *lse, double *rowloss, int64_t N, int64_t C, double eps) {
  __shared__ double sh[kT];
  for (int64_t n = blockIdx.x; n < N; n += gridDim.x) {
    const T *xr = x + n * C;
    double mx = -INFINITY;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) mx = vr_cu_max_op::apply(mx, vr_cu_conv<T>::load(xr[c]));
    mx = vr_cu_block_reduce<vr_cu_max_op>(mx, sh);
    double s = 0, sx = 0;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
      double v = vr_cu_conv<T>::load(xr[c]);
      s += exp(v - mx);
      sx += v;
    }
    s = vr_cu_block_reduce<vr_cu_sum_op>(s, sh);
    sx = vr_cu_block_reduce<vr_cu_sum_op>(sx, sh);
    if (threadIdx.x == 0) {
      double l = mx + log(s);
      double xt = vr_cu_conv<T>::load(xr[t[n]]);
      lse[n] = (S)l;
      rowloss[n] = (1 - eps) * (l - xt) + eps * (l - sx / (double)C);
    }
  }
}
/* loss = sum rowloss / N, one block, fixed tree */
template <typename T> __global__ void __launch_bounds__(1024) ce_total(const double *rowloss, T *loss, int64_t N) {
  __shared__ double sh[1024];
  double s = 0;
  for (int64_t n = threadIdx.x; n < N; n += blockDim.x) s += rowloss[n];
  s = vr_cu_block_reduce<vr_cu_sum_op>(s, sh);
  if (threadIdx.x == 0) loss[0] = vr_cu_conv<T>::store(N ? s / (double)N : NAN);
}
template <typename T, typename S>
__global__ void ce_bwd(const T *gl, const T *x, const int64_t *t, const S *lse, T *gx, int64_t N, int64_t C, double eps) {
  double g = vr_cu_conv<T>::load(gl[0]) / (double)N;
  for (int64_t k = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; k < N * C; k += (int64_t)gridDim.x * blockDim.x) {
    int64_t n = k / C, c = k - n * C;
    double p = exp(vr_cu_conv<T>::load(x[k]) - (double)lse[n]);
    gx[k] = vr_cu_conv<T>::store(g * (p - eps / (double)C - (c == t[n] ? 1 - eps : 0)));
  }
}

template <typename T> vr_status ce_fwd_typed(const vr_kernel_args *a) {
  typedef typename vr_cu_acc<T>::type S;
  int64_t N = a->i[0], C = a->i[1];
  cudaStream_t s = vr_cuda_stream();
  double *rowloss = nullptr;
  VR_TRY(vr_cuda_scratch(sizeof(double) * (size_t)(N ? N : 1), (void **)&rowloss));
  if (N) ce_rows<T, S><<<grid_rows(N), kT, 0, s>>>((const T *)vr_data(a->in[0]), (const int64_t *)vr_data(a->in[1]),
                                                   (S *)vr_data(a->out[1]), rowloss, N, C, a->f[0]);
  cudaError_t e = cudaGetLastError();
  if (e == cudaSuccess) {
    ce_total<T><<<1, 1024, 0, s>>>(rowloss, (T *)vr_data(a->out[0]), N);
    e = cudaGetLastError();
  }
  vr_cuda_scratch_free(rowloss, sizeof(double) * (size_t)(N ? N : 1));
  if (e != cudaSuccess) return VR_FAIL(VR_E_CUDA, "launch of cross entropy: %s (%s)", cudaGetErrorString(e), cudaGetErrorName(e));
  return VR_OK;
}

vr_status ce_fwd(const vr_kernel_args *a) {
  if (a->in[1]->dtype != VR_I64) return VR_FAIL(VR_E_DTYPE, "target: expected i64, got %s", vr_dtype_name(a->in[1]->dtype));
  VR_CU_FLOAT_SWITCH(a->in[0]->dtype, "logits", return ce_fwd_typed<T>(a));
  return VR_OK;
}

vr_status ce_bwd_launch(const vr_kernel_args *a) {
  int64_t N = a->i[0], C = a->i[1];
  if (!N || !C) return VR_OK;
  VR_CU_FLOAT_SWITCH(a->in[1]->dtype, "logits",
                     typedef typename vr_cu_acc<T>::type S;
                     ce_bwd<T, S><<<vr_cu_blocks(N * C), VR_CU_THREADS, 0, vr_cuda_stream()>>>(
                         (const T *)vr_data(a->in[0]), (const T *)vr_data(a->in[1]), (const int64_t *)vr_data(a->in[2]),
                         (const S *)vr_data(a->in[3]), (T *)vr_data(a->out[0]), N, C, a->f[0]));
  VR_CU_LAUNCHED("ce_bwd");
  return VR_OK;
}

} // namespace

extern "C" {
vr_status vr_cuda_softmax_fwd(const vr_kernel_args *a) { return softmax_fwd(a); }
vr_status vr_cuda_softmax_bwd(const vr_kernel_args *a) { return softmax_bwd(a); }
vr_status vr_cuda_cross_entropy_fwd(const vr_kernel_args *a) { return ce_fwd(a); }
vr_status vr_cuda_cross_entropy_bwd(const vr_kernel_args *a) { return ce_bwd_launch(a); }
void vr_cuda_register_softmax(void) {
  vr_kernel_register(VR_OP_SOFTMAX, VR_CUDA, vr_cuda_softmax_fwd, vr_cuda_softmax_bwd);
  vr_kernel_register(VR_OP_CROSS_ENTROPY, VR_CUDA, vr_cuda_cross_entropy_fwd, vr_cuda_cross_entropy_bwd);
}
}
