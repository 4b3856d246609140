/* norm.cu: CUDA batch normalisation and layer normalisation (fwd, bwd), with the argument layout
 * of core/ops/norm.c (x, grad_y, weight, bias contiguous; stats [C] or [R] in x's dtype, f32 for
 * bf16; running_* 1-D of any float dtype and stride, updated in place when training):
 *  BATCHNORM fwd: in = {x, w|NULL, b|NULL, running_mean|NULL, running_var|NULL}, out = {y,
 *    save_mean, save_invstd}; i = {training, N, C, S}; f = {momentum, eps}.
 *  BATCHNORM bwd: in = {grad_y, x, w|NULL, save_mean, save_invstd}, out = {grad_x|NULL,
 *    grad_w|NULL, grad_b|NULL}; i as fwd. w, b and their grads may be f32 beside bf16 x (autocast).
 *  The fused activation of vr_batch_norm_act, folded into the passes below: fwd in[5] = residual|NULL
 *    (n_in = 6), i[4] = ReLU: the normalising pass computes y = act(xhat w + b + residual) in double
 *    and rounds once to x's dtype (the CPU rounds the batch norm, then the add, as the unfused ops
 *    do: in f32/bf16 the two may differ by that one rounding of the add, and an output next to 0
 *    may land on either side of the ReLU). bwd i[4] = ReLU with in[5] = y, the forward's output:
 *    every pass that reads grad_y reads g = y > 0 ? grad_y : 0 instead (exact, as the CPU's), and
 *    the grad_x pass writes out[3] = grad_residual|NULL (n_out = 4) = g beside grad_x (alone when
 *    grad_x is not wanted). No pass over the activations is added for the activation.
 *  LAYERNORM fwd: in = {x, w|NULL [D], b|NULL [D]}, out = {y, save_mean [R], save_invstd [R]};
 *    i = {R, D}; f[0] eps.  bwd: in = {grad_y, x, w|NULL, save_mean, save_invstd}, out =
 *    {grad_x|NULL, grad_w|NULL, grad_b|NULL}.
 * Statistics: batch norm's over ranges of each channel, one block each, then added per channel in
 * range order (see bn_geo); with S == 1 (x [M, C]: channels-last activations, BatchNorm1d) over
 * chunks of rows instead, a warp reading consecutive channels (colsum.cuh's wide sums; bnl_*);
 * layer norm's one block per row, two passes in double, fixed trees;
 * layer norm's grad_w/grad_b: column sums spread over the GPU (colsum.cuh: chunks of 64 rows, partials
 * in double added in chunk order). Deterministic. */
#include "blockreduce.cuh"
#include "colsum.cuh"
#include <initializer_list>

namespace {

const int kT = 256;

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

/* element (n, c, s) of an N x C x S tensor. The batch-norm kernels take the index type I:
 * uint32_t when the tensor has fewer than 2^31 elements (the usual case), since 64-bit division
 * costs several times a 32-bit one and these per-element divisions bound the kernels */
template <typename I> __device__ __forceinline__ I bn_idx(I m, I c, I C, I S) {
  I n = m / S, s = m - n * S;
  return (n * C + c) * S + s;
}
bool bn_small(int64_t total) { return total < ((int64_t)1 << 31); } /* grid strides (< 2^28) cannot wrap */

/* the fused activation: vr_relu's rule (NaN kept, -0 to +0) when relu */
__device__ __forceinline__ double bn_relu(double v, int relu) { return relu && !(v > 0) && v == v ? 0.0 : v; }
/* ReLU's gradient from the forward's output: g = grad_y where y > 0, else 0; y == NULL: no ReLU */
template <typename T, typename I> __device__ __forceinline__ double bn_g(const T *g, const T *y, I i) {
  double v = vr_cu_conv<T>::load(g[i]);
  return y && !(vr_cu_conv<T>::load(y[i]) > 0) ? 0.0 : v;
}
/* the fused activation's tensors: forward residual (NULL: none) and ReLU; backward the ReLU mask
 * y (NULL: no ReLU) and grad_residual (NULL: not wanted) */
const vr_tensor *bn_in5(const vr_kernel_args *a) { return a->n_in > 5 ? a->in[5] : nullptr; }
vr_tensor *bn_out3(const vr_kernel_args *a) { return a->n_out > 3 ? a->out[3] : nullptr; }
template <typename T> const T *ptr_or_null(const vr_tensor *t) { return t ? (const T *)vr_data(t) : nullptr; }

/* Batch-norm statistics are spread over the GPU: channel c's N S elements are cut into `split`
 * ranges, one block each (grid split x C), which writes its partial sums in double; a per-channel
 * pass adds them in range order. Forward sums are shifted by the channel's first element (one pass,
 * no cancellation for data far from 0). Deterministic: every sum has a fixed order. */
struct bn_geo {
  int64_t N, C, S, M, per; /* M = N S elements per channel, per = elements per range */
  int split;
};
bn_geo bn_geo_of(int64_t N, int64_t C, int64_t S) {
  bn_geo g = {N, C, S, N * S, 0, 1};
  int64_t want = (4 * 132 + C - 1) / C, most = (g.M + 4095) / 4096; /* ~4 blocks per SM, >= 4096 elements each */
  if (want > most) want = most;
  if (want > 1024) want = 1024;
  g.split = (int)(want < 1 ? 1 : want);
  g.per = (g.M + g.split - 1) / g.split;
  return g;
}
/* the range of block (blockIdx.x, channel blockIdx.y) */
__device__ __forceinline__ void bn_range(const bn_geo &g, int64_t *m0, int64_t *m1) {
  *m0 = blockIdx.x * g.per;
  *m1 = *m0 + g.per < g.M ? *m0 + g.per : g.M;
}

/* part[c split + r] = {sum x', sum x'^2}, x' = x - x[0, c, 0] */
template <typename T, typename I> __global__ void __launch_bounds__(kT) bn_part(const T *x, bn_geo g, double2 *part) {
  __shared__ double sh[kT];
  int64_t c = blockIdx.y, m0, m1;
  bn_range(g, &m0, &m1);
  double sft = vr_cu_conv<T>::load(x[c * g.S]), s1 = 0, s2 = 0;
  for (I m = (I)m0 + threadIdx.x; m < (I)m1; m += blockDim.x) {
    double v = vr_cu_conv<T>::load(x[bn_idx<I>(m, (I)c, (I)g.C, (I)g.S)]) - sft;
    s1 += v;
    s2 += v * v;
  }
  s1 = vr_cu_block_reduce<vr_cu_sum_op>(s1, sh);
  s2 = vr_cu_block_reduce<vr_cu_sum_op>(s2, sh);
  if (threadIdx.x == 0) part[c * g.split + blockIdx.x] = make_double2(s1, s2);
}

/* the per-channel parameters of the forward: the running statistics, momentum and eps, and where
 * y = x scale + shift's coefficients go (double[C] each) */
struct bn_par {
  vec1 w, b, rm, rv;
  double mom, eps;
  int training;
  int64_t M; /* elements per channel */
  double *scale, *shift;
};
/* channel c: mean and invstd (training: from the sums s1, s2 of x - x0 with x0 the channel's first
 * element; else the running statistics), the running update, and the coefficients */
template <typename St>
__device__ __forceinline__ void bn_chan(const bn_par &q, int64_t c, double x0, double s1, double s2, St *smean, St *sinv) {
  double mean, invstd;
  if (q.training) {
    double ms = s1 / (double)q.M, var = s2 / (double)q.M - ms * ms;
    if (var < 0) var = 0;
    mean = q.M ? x0 + ms : ms; /* no elements: 0 / 0 as the CPU */
    invstd = 1.0 / sqrt(var + q.eps);
    if (q.rm.p) {
      vset(q.rm, c, (1 - q.mom) * vget(q.rm, c, 0) + q.mom * mean);
      vset(q.rv, c, (1 - q.mom) * vget(q.rv, c, 0) + q.mom * var * (double)q.M / (double)(q.M - 1));
    }
  } else {
    mean = vget(q.rm, c, 0);
    invstd = 1.0 / sqrt(vget(q.rv, c, 1) + q.eps);
  }
  double sc = vget(q.w, c, 1.0) * invstd;
  q.scale[c] = sc;
  q.shift[c] = vget(q.b, c, 0.0) - mean * sc;
  smean[c] = (St)mean;
  sinv[c] = (St)invstd;
}
/* per channel, from the range partials (training) or the running statistics */
template <typename T, typename St>
__global__ void bn_stats(const T *x, bn_geo g, const double2 *part, bn_par q, St *smean, St *sinv) {
  for (int64_t c = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; c < g.C; c += (int64_t)gridDim.x * blockDim.x) {
    double s1 = 0, s2 = 0, x0 = 0;
    if (q.training) {
      for (int r = 0; r < g.split; r++) {
        s1 += part[c * g.split + r].x;
        s2 += part[c * g.split + r].y;
      }
      if (g.M) x0 = vr_cu_conv<T>::load(x[c * g.S]);
    }
    bn_chan<St>(q, c, x0, s1, s2, smean, sinv);
  }
}
/* y = act(x scale + shift + r), r == NULL: no residual; rounded once */
template <typename T, typename I>
__global__ void bn_apply(const T *x, const T *r, int relu, T *y, I total, I C, I S, const double *scale, const double *shift) {
  for (I k = blockIdx.x * (I)blockDim.x + threadIdx.x; k < total; k += (I)gridDim.x * blockDim.x) {
    I c = (k / S) % C;
    double v = vr_cu_conv<T>::load(x[k]) * scale[c] + shift[c];
    if (r) v += vr_cu_conv<T>::load(r[k]);
    y[k] = vr_cu_conv<T>::store(bn_relu(v, relu));
  }
}

bn_par bn_par_of(const vr_kernel_args *a, int64_t M, double *buf) {
  return bn_par{vec_of(a->in[1]), vec_of(a->in[2]), vec_of(a->in[3]), vec_of(a->in[4]), a->f[0], a->f[1], (int)a->i[0], M, buf,
                buf + a->i[2]};
}

/* channels-last data (S == 1), below */
bool bn_rows(int64_t S) { return S == 1; }
template <typename T> vr_status bnl_fwd(const vr_kernel_args *a);
template <typename T> vr_status bnl_bwd(const vr_kernel_args *a);

unsigned grid_of(int64_t n) { return (unsigned)(n < 1 ? 1 : (n < (1 << 20) ? n : (1 << 20))); }

template <typename T> vr_status bn_fwd_typed(const vr_kernel_args *a) {
  typedef typename vr_cu_acc<T>::type St;
  int training = (int)a->i[0];
  int64_t N = a->i[1], C = a->i[2], S = a->i[3];
  if (!C) return VR_OK;
  if (!training && (!a->in[3] || !a->in[4])) return VR_FAIL(VR_E_ARG, "running_mean, running_var: expected tensors in eval mode, got NULL");
  if (bn_rows(S)) return bnl_fwd<T>(a);
  cudaStream_t s = vr_cuda_stream();
  bn_geo geo = bn_geo_of(N, C, S);
  if (C > 65535) return VR_FAIL(VR_E_UNSUPPORTED, "x: %lld channels, more than 65535", (long long)C);
  double *buf = nullptr;
  size_t nb = sizeof(double) * 2 * (size_t)C + (training ? sizeof(double2) * (size_t)(C * geo.split) : 0);
  VR_TRY(vr_cuda_scratch(nb, (void **)&buf));
  double2 *part = (double2 *)(buf + 2 * C);
  cudaError_t e = cudaSuccess;
  const bool small = bn_small(N * C * S);
  if (training && geo.M > 0) {
    if (small) bn_part<T, uint32_t><<<dim3((unsigned)geo.split, (unsigned)C), kT, 0, s>>>((const T *)vr_data(a->in[0]), geo, part);
    else bn_part<T, int64_t><<<dim3((unsigned)geo.split, (unsigned)C), kT, 0, s>>>((const T *)vr_data(a->in[0]), geo, part);
    e = cudaGetLastError();
  } else if (training) {
    e = cudaMemsetAsync(part, 0, sizeof(double2) * (size_t)(C * geo.split), s);
  }
  if (e == cudaSuccess) {
    bn_stats<T, St><<<vr_cu_blocks(C), VR_CU_THREADS, 0, s>>>((const T *)vr_data(a->in[0]), geo, part, bn_par_of(a, geo.M, buf),
                                                             (St *)vr_data(a->out[1]), (St *)vr_data(a->out[2]));
    e = cudaGetLastError();
  }
  int64_t total = N * C * S;
  if (e == cudaSuccess && total) {
    const T *x = (const T *)vr_data(a->in[0]), *r = ptr_or_null<T>(bn_in5(a));
    const int relu = (int)a->i[4];
    T *y = (T *)vr_data(a->out[0]);
    if (small)
      bn_apply<T, uint32_t><<<vr_cu_blocks(total), VR_CU_THREADS, 0, s>>>(x, r, relu, y, (uint32_t)total, (uint32_t)C, (uint32_t)S,
                                                                         buf, buf + C);
    else
      bn_apply<T, int64_t><<<vr_cu_blocks(total), VR_CU_THREADS, 0, s>>>(x, r, relu, y, total, C, S, buf, buf + C);
    e = cudaGetLastError();
  }
  vr_cuda_scratch_free(buf, nb);
  if (e != cudaSuccess) return VR_FAIL(VR_E_CUDA, "launch of batch norm: %s (%s)", cudaGetErrorString(e), cudaGetErrorName(e));
  return VR_OK;
}

/* part[c split + r] = {sum g, sum g (x - mean)} over block r's range of channel c (g masked by y
 * when y != NULL: bn_g) */
template <typename T, typename St, typename I>
__global__ void __launch_bounds__(kT) bn_bwd_part(const T *g, const T *y, const T *x, bn_geo geo, const St *smean, double2 *part) {
  __shared__ double sh[kT];
  int64_t c = blockIdx.y, m0, m1;
  bn_range(geo, &m0, &m1);
  double mean = (double)smean[c], sg = 0, sgx = 0;
  for (I m = (I)m0 + threadIdx.x; m < (I)m1; m += blockDim.x) {
    I i = bn_idx<I>(m, (I)c, (I)geo.C, (I)geo.S);
    double gv = bn_g<T, I>(g, y, i);
    sg += gv;
    sgx += gv * (vr_cu_conv<T>::load(x[i]) - mean);
  }
  sg = vr_cu_block_reduce<vr_cu_sum_op>(sg, sh);
  sgx = vr_cu_block_reduce<vr_cu_sum_op>(sgx, sh);
  if (threadIdx.x == 0) part[c * geo.split + blockIdx.x] = make_double2(sg, sgx);
}
/* channel c: grad_b, grad_w, and the grad_x coefficients k[4c ..] from the sums sg = sum g,
 * sgx = sum g (x - mean) */
template <typename St>
__device__ __forceinline__ void bn_bwd_chan(int64_t c, double sg, double sgx, int64_t M, int training, vec1 w, const St *smean,
                                            const St *sinv, vec1 gw, vec1 gb, double *k) {
  double mean = (double)smean[c], invstd = (double)sinv[c];
  if (gb.p) vset(gb, c, sg); /* in the parameters' dtype: f32 beside bf16 x under autocast */
  if (gw.p) vset(gw, c, sgx * invstd);
  k[4 * c] = vget(w, c, 1.0) * invstd;
  k[4 * c + 1] = training ? sg / (double)M : 0.0;
  k[4 * c + 2] = training ? sgx * invstd * invstd / (double)M : 0.0;
  k[4 * c + 3] = mean;
}
template <typename T, typename St>
__global__ void bn_bwd_stats(bn_geo geo, const double2 *part, int training, vec1 w, const St *smean, const St *sinv, vec1 gw,
                             vec1 gb, double *k) {
  for (int64_t c = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; c < geo.C; c += (int64_t)gridDim.x * blockDim.x) {
    double sg = 0, sgx = 0;
    for (int r = 0; r < geo.split; r++) {
      sg += part[c * geo.split + r].x;
      sgx += part[c * geo.split + r].y;
    }
    bn_bwd_chan<St>(c, sg, sgx, geo.M, training, w, smean, sinv, gw, gb, k);
  }
}
/* grad_x = k0 (g - k1 - (x - k3) k2) (gx == NULL: not wanted), grad_residual = g (gr == NULL: not
 * wanted); g masked by y when y != NULL */
template <typename T, typename I>
__global__ void bn_bwd_apply(const T *g, const T *y, const T *x, T *gx, T *gr, I total, I C, I S, const double *k) {
  for (I i = blockIdx.x * (I)blockDim.x + threadIdx.x; i < total; i += (I)gridDim.x * blockDim.x) {
    double gv = bn_g<T, I>(g, y, i);
    if (gr) gr[i] = vr_cu_conv<T>::store(gv);
    if (gx) {
      I c = (i / S) % C;
      const double *q = k + 4 * c;
      gx[i] = vr_cu_conv<T>::store(q[0] * (gv - q[1] - (vr_cu_conv<T>::load(x[i]) - q[3]) * q[2]));
    }
  }
}

template <typename T> vr_status bn_bwd_typed(const vr_kernel_args *a) {
  typedef typename vr_cu_acc<T>::type St;
  int training = (int)a->i[0];
  int64_t N = a->i[1], C = a->i[2], S = a->i[3];
  if (!C) return VR_OK;
  if (bn_rows(S)) return bnl_bwd<T>(a);
  cudaStream_t s = vr_cuda_stream();
  bn_geo geo = bn_geo_of(N, C, S);
  if (C > 65535) return VR_FAIL(VR_E_UNSUPPORTED, "x: %lld channels, more than 65535", (long long)C);
  double *k = nullptr;
  size_t nb = sizeof(double) * 4 * (size_t)C + sizeof(double2) * (size_t)(C * geo.split);
  VR_TRY(vr_cuda_scratch(nb, (void **)&k));
  double2 *part = (double2 *)(k + 4 * C);
  cudaError_t e = cudaSuccess;
  const bool small = bn_small(N * C * S);
  const T *gy = (const T *)vr_data(a->in[0]), *x = (const T *)vr_data(a->in[1]);
  const T *y = a->i[4] ? (const T *)vr_data(bn_in5(a)) : nullptr; /* the ReLU mask */
  T *gx = a->out[0] ? (T *)vr_data(a->out[0]) : nullptr, *gr = bn_out3(a) ? (T *)vr_data(bn_out3(a)) : nullptr;
  /* the sums feed grad_w, grad_b and, with batch statistics, grad_x */
  const bool terms = a->out[1] || a->out[2] || (training && gx);
  if (geo.M > 0 && terms) {
    const dim3 grid((unsigned)geo.split, (unsigned)C);
    if (small) bn_bwd_part<T, St, uint32_t><<<grid, kT, 0, s>>>(gy, y, x, geo, (const St *)vr_data(a->in[3]), part);
    else bn_bwd_part<T, St, int64_t><<<grid, kT, 0, s>>>(gy, y, x, geo, (const St *)vr_data(a->in[3]), part);
    e = cudaGetLastError();
  } else {
    e = cudaMemsetAsync(part, 0, sizeof(double2) * (size_t)(C * geo.split), s);
  }
  if (e == cudaSuccess) {
    bn_bwd_stats<T, St><<<vr_cu_blocks(C), VR_CU_THREADS, 0, s>>>(
        geo, part, training, vec_of(a->in[2]), (const St *)vr_data(a->in[3]), (const St *)vr_data(a->in[4]),
        vec_of(a->out[1]), vec_of(a->out[2]), k);
    e = cudaGetLastError();
  }
  int64_t total = N * C * S;
  if (e == cudaSuccess && (gx || gr) && total) {
    if (small)
      bn_bwd_apply<T, uint32_t><<<vr_cu_blocks(total), VR_CU_THREADS, 0, s>>>(gy, y, x, gx, gr, (uint32_t)total, (uint32_t)C,
                                                                             (uint32_t)S, k);
    else
      bn_bwd_apply<T, int64_t><<<vr_cu_blocks(total), VR_CU_THREADS, 0, s>>>(gy, y, x, gx, gr, total, C, S, k);
    e = cudaGetLastError();
  }
  vr_cuda_scratch_free(k, nb);
  if (e != cudaSuccess) return VR_FAIL(VR_E_CUDA, "launch of batch norm backward: %s (%s)", cudaGetErrorString(e), cudaGetErrorName(e));
  return VR_OK;
}

/* ---- batch norm on channels-last data: x is [M, C] row-major (S == 1) ----
 * The channel-range kernels above give a block one channel, whose elements lie C apart when S == 1:
 * a warp would read 32 scattered elements. Here a warp reads consecutive channels of the same rows
 * (16-byte loads when C is a multiple of 16 bytes' worth and the tensors are aligned) through the
 * wide column sums of colsum.cuh: per-(chunk, channel) partials in double, added per channel in a
 * fixed order by a small kernel that also computes the channel's statistics (bn_chan / bn_bwd_chan,
 * shared with the kernels above), then one elementwise pass with the channel coefficients held in registers.
 * Forward (training): 1 read of x for the sums, 1 read + 1 write for y; backward: 2 reads (g, x)
 * for the sums, 2 reads + 1 write for grad_x. The fused activation adds the residual's read to the
 * forward's second pass, and the read of y (the ReLU mask) to both backward passes, and
 * grad_residual's write to the second.
 * Rule: every C when S == 1. The lanes of a block walk rows when C is small (gv = C / V vectors
 * per row, 256 / gv rows at once), so its reads stay contiguous for any C, and the per-channel
 * ranges are never better: they read elements C apart for every C > 1. */

/* V consecutive elements as doubles, and back: one 16-byte access when V sizeof(T) == 16 (the
 * caller checked the alignment), else V scalar ones */
template <typename T, int V> __device__ __forceinline__ void ldv(const T *p, double (&o)[V]) {
  if constexpr (V * sizeof(T) == 16) {
    uint4 u = *(const uint4 *)p;
    T e[V];
    memcpy(e, &u, 16);
#pragma unroll
    for (int k = 0; k < V; k++) o[k] = vr_cu_conv<T>::load(e[k]);
  } else {
#pragma unroll
    for (int k = 0; k < V; k++) o[k] = vr_cu_conv<T>::load(p[k]);
  }
}
template <typename T, int V> __device__ __forceinline__ void stv(T *p, const double (&o)[V]) {
  if constexpr (V * sizeof(T) == 16) {
    T e[V];
#pragma unroll
    for (int k = 0; k < V; k++) e[k] = vr_cu_conv<T>::store(o[k]);
    uint4 u;
    memcpy(&u, e, 16);
    *(uint4 *)p = u;
  } else {
#pragma unroll
    for (int k = 0; k < V; k++) p[k] = vr_cu_conv<T>::store(o[k]);
  }
}
template <typename T, int V> __device__ __forceinline__ void ldc(const double *p, double (&o)[V]) {
#pragma unroll
  for (int k = 0; k < V; k++) o[k] = p[k];
}

/* forward sums {x - x0, (x - x0)^2}, x0 the channel's first element (row 0): one pass, no
 * cancellation for data far from 0 */
template <typename T, int V_, typename I_> struct bnl_fwd_terms {
  static const int V = V_;
  typedef I_ I;
  struct st {
    double x0[V];
  };
  const T *x;
  __device__ st setup(int64_t c0) const {
    st s;
    ldv<T, V>(x + c0, s.x0);
    return s;
  }
  __device__ void add(I i, const st &s, double (&a)[V], double (&b)[V]) const {
    double v[V];
    ldv<T, V>(x + i, v);
#pragma unroll
    for (int k = 0; k < V; k++) {
      double d = v[k] - s.x0[k];
      a[k] += d;
      b[k] += d * d;
    }
  }
};
template <typename T, typename St> struct bnl_fwd_fin {
  const T *x;
  bn_par q;
  St *smean, *sinv;
  __device__ void operator()(int64_t c, double2 t) const {
    bn_chan<St>(q, c, q.M ? vr_cu_conv<T>::load(x[c]) : 0.0, t.x, t.y, smean, sinv);
  }
};
/* every channel, eval mode: from the running statistics */
template <typename T, typename St> __global__ void bnl_eval_stats(bn_par q, int64_t C, St *smean, St *sinv) {
  for (int64_t c = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; c < C; c += (int64_t)gridDim.x * blockDim.x)
    bn_chan<St>(q, c, 0.0, 0.0, 0.0, smean, sinv);
}
/* ReLU's gradient on V elements: g = 0 where y (NULL: no ReLU) is not > 0 */
template <typename T, int V> __device__ __forceinline__ void mask_g(const T *y, double (&g)[V]) {
  if (!y) return;
  double yv[V];
  ldv<T, V>(y, yv);
#pragma unroll
  for (int k = 0; k < V; k++)
    if (!(yv[k] > 0)) g[k] = 0;
}

/* y = act(x scale + shift + r) (r == NULL: no residual), rounded once */
template <typename T, int V_, typename I_> struct bnl_fwd_apply {
  static const int V = V_;
  typedef I_ I;
  struct st {
    double sc[V], sh[V];
  };
  const T *x, *r;
  int relu;
  T *y;
  const double *scale, *shift;
  __device__ st setup(int64_t c0) const {
    st s;
    ldc<T, V>(scale + c0, s.sc);
    ldc<T, V>(shift + c0, s.sh);
    return s;
  }
  __device__ void operator()(I i, const st &s) const {
    double v[V];
    ldv<T, V>(x + i, v);
#pragma unroll
    for (int k = 0; k < V; k++) v[k] = v[k] * s.sc[k] + s.sh[k];
    if (r) {
      double rv[V];
      ldv<T, V>(r + i, rv);
#pragma unroll
      for (int k = 0; k < V; k++) v[k] += rv[k];
    }
#pragma unroll
    for (int k = 0; k < V; k++) v[k] = bn_relu(v[k], relu);
    stv<T, V>(y + i, v);
  }
};

/* backward sums {g, g (x - mean)}, g masked by y (NULL: no ReLU) */
template <typename T, typename St, int V_, typename I_> struct bnl_bwd_terms {
  static const int V = V_;
  typedef I_ I;
  struct st {
    double mean[V];
  };
  const T *g, *y, *x;
  const St *smean;
  __device__ st setup(int64_t c0) const {
    st s;
#pragma unroll
    for (int k = 0; k < V; k++) s.mean[k] = (double)smean[c0 + k];
    return s;
  }
  __device__ void add(I i, const st &s, double (&a)[V], double (&b)[V]) const {
    double gv[V], xv[V];
    ldv<T, V>(g + i, gv);
    mask_g<T, V>(y ? y + i : nullptr, gv);
    ldv<T, V>(x + i, xv);
#pragma unroll
    for (int k = 0; k < V; k++) {
      a[k] += gv[k];
      b[k] += gv[k] * (xv[k] - s.mean[k]);
    }
  }
};
template <typename St> struct bnl_bwd_fin {
  int64_t M;
  int training;
  vec1 w, gw, gb;
  const St *smean, *sinv;
  double *k;
  __device__ void operator()(int64_t c, double2 t) const { bn_bwd_chan<St>(c, t.x, t.y, M, training, w, smean, sinv, gw, gb, k); }
};
/* grad_x = k0 (g - k1 - (x - k3) k2), the coefficients of bn_bwd_chan, and grad_residual = g;
 * g masked by y (NULL: no ReLU); gx, gr NULL: not wanted */
template <typename T, int V_, typename I_> struct bnl_bwd_apply {
  static const int V = V_;
  typedef I_ I;
  struct st {
    double q0[V], q1[V], q2[V], q3[V];
  };
  const T *g, *y, *x;
  T *gx, *gr;
  const double *k;
  __device__ st setup(int64_t c0) const {
    st s;
#pragma unroll
    for (int j = 0; j < V; j++) {
      const double *q = k + 4 * (c0 + j);
      s.q0[j] = q[0];
      s.q1[j] = q[1];
      s.q2[j] = q[2];
      s.q3[j] = q[3];
    }
    return s;
  }
  __device__ void operator()(I i, const st &s) const {
    double gv[V], xv[V];
    ldv<T, V>(g + i, gv);
    mask_g<T, V>(y ? y + i : nullptr, gv);
    if (gr) stv<T, V>(gr + i, gv);
    if (!gx) return;
    ldv<T, V>(x + i, xv);
#pragma unroll
    for (int j = 0; j < V; j++) gv[j] = s.q0[j] * (gv[j] - s.q1[j] - (xv[j] - s.q3[j]) * s.q2[j]);
    stv<T, V>(gx + i, gv);
  }
};

/* 16-byte vectors when C allows and every tensor the pass touches is aligned (a view may start
 * anywhere); the index type: 32 bits under 2^31 elements (bn_small) */
bool al16(const void *p) { return ((uintptr_t)p & 15) == 0; }
template <typename T> bool bnl_vec(int64_t C, std::initializer_list<const void *> ps) {
  if (C % (int64_t)(16 / sizeof(T))) return false;
  for (const void *p : ps)
    if (p && !al16(p)) return false;
  return true;
}

template <typename T, int V, typename I> vr_status bnl_fwd_run(const vr_kernel_args *a, double *buf) {
  typedef typename vr_cu_acc<T>::type St;
  int64_t M = a->i[1], C = a->i[2];
  const T *x = (const T *)vr_data(a->in[0]);
  St *sm = (St *)vr_data(a->out[1]), *si = (St *)vr_data(a->out[2]);
  vr_colsum::wplan p = vr_colsum::wplan_of(M, C, V);
  bn_par q = bn_par_of(a, M, buf);
  if (q.training) {
    VR_TRY(vr_colsum::wsums(bnl_fwd_terms<T, V, I>{x}, bnl_fwd_fin<T, St>{x, q, sm, si}, p));
  } else {
    bnl_eval_stats<T, St><<<vr_cu_blocks(C), VR_CU_THREADS, 0, vr_cuda_stream()>>>(q, C, sm, si);
    VR_CU_LAUNCHED("batch norm statistics");
  }
  return vr_colsum::wmap(bnl_fwd_apply<T, V, I>{x, ptr_or_null<T>(bn_in5(a)), (int)a->i[4], (T *)vr_data(a->out[0]), buf, buf + C},
                        p);
}
template <typename T> vr_status bnl_fwd(const vr_kernel_args *a) {
  constexpr int VW = 16 / sizeof(T);
  int64_t M = a->i[1], C = a->i[2];
  double *buf = nullptr;
  size_t nb = sizeof(double) * 2 * (size_t)C;
  VR_TRY(vr_cuda_scratch(nb, (void **)&buf));
  const bool vec = bnl_vec<T>(C, {vr_data(a->in[0]), vr_data(a->out[0]), bn_in5(a) ? vr_data(bn_in5(a)) : nullptr}),
             small = bn_small(M * C);
  vr_status st = vec ? (small ? bnl_fwd_run<T, VW, uint32_t>(a, buf) : bnl_fwd_run<T, VW, int64_t>(a, buf))
                     : (small ? bnl_fwd_run<T, 1, uint32_t>(a, buf) : bnl_fwd_run<T, 1, int64_t>(a, buf));
  vr_cuda_scratch_free(buf, nb);
  return st;
}

template <typename T, int V, typename I> vr_status bnl_bwd_run(const vr_kernel_args *a, double *k) {
  typedef typename vr_cu_acc<T>::type St;
  int training = (int)a->i[0];
  int64_t M = a->i[1], C = a->i[2];
  const T *g = (const T *)vr_data(a->in[0]), *x = (const T *)vr_data(a->in[1]);
  const T *y = a->i[4] ? (const T *)vr_data(bn_in5(a)) : nullptr; /* the ReLU mask */
  T *gx = a->out[0] ? (T *)vr_data(a->out[0]) : nullptr, *gr = bn_out3(a) ? (T *)vr_data(bn_out3(a)) : nullptr;
  const St *sm = (const St *)vr_data(a->in[3]), *si = (const St *)vr_data(a->in[4]);
  vr_colsum::wplan p = vr_colsum::wplan_of(M, C, V);
  /* the sums feed grad_w, grad_b and, with batch statistics, grad_x */
  bool terms = a->out[1] || a->out[2] || (training && gx);
  VR_TRY(vr_colsum::wsums(bnl_bwd_terms<T, St, V, I>{g, y, x, sm},
                          bnl_bwd_fin<St>{M, training, vec_of(a->in[2]), vec_of(a->out[1]), vec_of(a->out[2]), sm, si, k}, p,
                          terms));
  if (!gx && !gr) return VR_OK;
  return vr_colsum::wmap(bnl_bwd_apply<T, V, I>{g, y, x, gx, gr, k}, p);
}
template <typename T> vr_status bnl_bwd(const vr_kernel_args *a) {
  constexpr int VW = 16 / sizeof(T);
  int64_t M = a->i[1], C = a->i[2];
  double *k = nullptr;
  size_t nb = sizeof(double) * 4 * (size_t)C;
  VR_TRY(vr_cuda_scratch(nb, (void **)&k));
  const vr_tensor *y = a->i[4] ? bn_in5(a) : nullptr, *gr = bn_out3(a);
  const bool vec = bnl_vec<T>(C, {vr_data(a->in[0]), vr_data(a->in[1]), a->out[0] ? vr_data(a->out[0]) : nullptr,
                                  y ? vr_data(y) : nullptr, gr ? vr_data(gr) : nullptr}),
             small = bn_small(M * C);
  vr_status st = vec ? (small ? bnl_bwd_run<T, VW, uint32_t>(a, k) : bnl_bwd_run<T, VW, int64_t>(a, k))
                     : (small ? bnl_bwd_run<T, 1, uint32_t>(a, k) : bnl_bwd_run<T, 1, int64_t>(a, k));
  vr_cuda_scratch_free(k, nb);
  return st;
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
/* grad_w, grad_b: column sums (colsum.cuh) of the terms {g, g (x - mean_r) invstd_r} */
template <typename T, typename St> struct ln_w_terms {
  const T *g, *x;
  const St *smean, *sinv;
  __device__ double2 operator()(int64_t i, int64_t r, int64_t) const {
    double gv = vr_cu_conv<T>::load(g[i]);
    return make_double2(gv, gv * (vr_cu_conv<T>::load(x[i]) - (double)smean[r]) * (double)sinv[r]);
  }
};
template <typename T> struct ln_w_fin {
  T *gw, *gb;
  __device__ void operator()(int64_t d, double2 t) const {
    if (gw) gw[d] = vr_cu_conv<T>::store(t.y);
    if (gb) gb[d] = vr_cu_conv<T>::store(t.x);
  }
};

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
  if ((a->out[1] || a->out[2]) && D)
    VR_TRY(vr_colsum::sums(ln_w_terms<T, St>{g, x, sm, si},
                           ln_w_fin<T>{a->out[1] ? (T *)vr_data(a->out[1]) : nullptr,
                                       a->out[2] ? (T *)vr_data(a->out[2]) : nullptr},
                           1, R, D));
  return VR_OK;
}

vr_status bn_fwd(const vr_kernel_args *a) {
  VR_CU_FLOAT_SWITCH(a->in[0]->dtype, "x", return bn_fwd_typed<T>(a));
  return VR_OK;
}
vr_status bn_bwd(const vr_kernel_args *a) {
  if (a->i[4] && !bn_in5(a)) return VR_FAIL(VR_E_ARG, "y: expected the forward's output (in[5]) with relu, got NULL");
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
