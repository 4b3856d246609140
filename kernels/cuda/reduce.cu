/* reduce.cu: CUDA reductions SUM, VAR, NORM (fwd, bwd) and MAXMIN (fwd, bwd), with the argument
 * layout of core/ops/reduce.c:
 *  SUM fwd: in = {x}; out = {y} keepdim shape; i[0] bitmask of reduced dims; y = f[0] * sum;
 *    integer x gives i64 (exact).
 *  VAR fwd: i[0] bitmask, i[1] correction; y = sum (x - mean)^2 / max(N - correction, 0).
 *  NORM fwd: i[0] bitmask, f[0] = p (INFINITY: max |x|). bwd: in = {grad_y, x, y} (grad_y, y
 *    expanded to x's shape), out = {grad_x}, f[0] = p.
 *  MAXMIN fwd: sub 0 max / 1 min along dim i[0]; out = {values, indices (i64)} keepdim; ties: the
 *    first index; NaN wins. bwd: in = {grad_values, indices} keepdim, out = {grad_x} (zeros except
 *    at the indices), i[0] = dim.
 * Deterministic: every output is reduced in a fixed order: a thread per output walks its elements
 * in order (outer reductions), or a block per output gives each thread a fixed strided subset and
 * merges them in a fixed shared-memory tree (inner reductions); when either leaves the GPU idle,
 * each output is split into fixed chunks whose states a second kernel merges in chunk order. The
 * chunking depends only on the shapes, never on timing. No atomics. Accumulation in double
 * (int64 for integer sums); variance by Welford within a thread and Chan's merge between them. */
#include "common.cuh"
#include <math.h>

namespace {

const int kRedThreads = 256;

struct red_geom {
  int nk, nr;
  int64_t O, R;
  int64_t kshape[VR_MAX_DIMS], kin[VR_MAX_DIMS], kout[VR_MAX_DIMS], kout2[VR_MAX_DIMS];
  int64_t rshape[VR_MAX_DIMS], rin[VR_MAX_DIMS];
};

/* kept dims (x and up to two outputs) and reduced dims (x only), size-1 dims dropped, mergeable
 * neighbours merged */
void red_geom_init(red_geom *g, const vr_tensor *x, const vr_tensor *y, const vr_tensor *y2, int64_t mask) {
  memset(g, 0, sizeof *g);
  g->O = 1;
  g->R = 1;
  for (int d = 0; d < x->ndim; d++) {
    int64_t n = x->shape[d];
    if (n == 1) continue;
    if ((mask >> d) & 1) {
      g->R *= n;
      int m = g->nr - 1;
      if (m >= 0 && g->rin[m] == x->stride[d] * n) {
        g->rshape[m] *= n;
        g->rin[m] = x->stride[d];
      } else {
        g->rshape[g->nr] = n;
        g->rin[g->nr] = x->stride[d];
        g->nr++;
      }
    } else {
      g->O *= n;
      int64_t s2 = y2 ? y2->stride[d] : 0;
      int m = g->nk - 1;
      if (m >= 0 && g->kin[m] == x->stride[d] * n && g->kout[m] == y->stride[d] * n && g->kout2[m] == s2 * n) {
        g->kshape[m] *= n;
        g->kin[m] = x->stride[d];
        g->kout[m] = y->stride[d];
        g->kout2[m] = s2;
      } else {
        g->kshape[g->nk] = n;
        g->kin[g->nk] = x->stride[d];
        g->kout[g->nk] = y->stride[d];
        g->kout2[g->nk] = s2;
        g->nk++;
      }
    }
  }
}

__device__ __forceinline__ void k_offsets(const red_geom &g, int64_t o, int64_t &xo, int64_t &yo, int64_t &yo2) {
  xo = yo = yo2 = 0;
  for (int d = g.nk - 1; d >= 0; d--) {
    int64_t n = g.kshape[d], q = o / n, i = o - q * n;
    xo += i * g.kin[d];
    yo += i * g.kout[d];
    yo2 += i * g.kout2[d];
    o = q;
  }
}
__device__ __forceinline__ int64_t r_offset(const red_geom &g, int64_t r) {
  int64_t off = 0;
  for (int d = g.nr - 1; d >= 0; d--) {
    int64_t n = g.rshape[d], q = r / n;
    off += (r - q * n) * g.rin[d];
    r = q;
  }
  return off;
}

struct red_params {
  double f0;      /* SUM scale; NORM p */
  int64_t corr;   /* VAR correction */
  int is_min;     /* MAXMIN */
};

/* ---- the operations: state S, add one element, merge (a before b), write the result ---- */
template <typename T> struct SumOp {
  typedef double S;
  __device__ static S init() { return 0.0; }
  __device__ static void add(S &s, T v, int64_t, const red_params &) { s += vr_cu_conv<T>::load(v); }
  __device__ static void merge(S &a, const S &b, const red_params &) { a += b; }
  __device__ static void write(const S &s, void *y, int64_t yo, void *, int64_t, int64_t, const red_params &p) {
    ((T *)y)[yo] = vr_cu_conv<T>::store(p.f0 * s);
  }
};
/* integer x: exact int64 sum, i64 output */
template <typename T> struct SumIntOp {
  typedef int64_t S;
  __device__ static S init() { return 0; }
  __device__ static void add(S &s, T v, int64_t, const red_params &) { s += (int64_t)v; }
  __device__ static void merge(S &a, const S &b, const red_params &) { a += b; }
  __device__ static void write(const S &s, void *y, int64_t yo, void *, int64_t, int64_t, const red_params &p) {
    ((int64_t *)y)[yo] = p.f0 == 1.0 ? s : (int64_t)(p.f0 * (double)s);
  }
};
struct Welford {
  double n, mean, m2;
};
template <typename T> struct VarOp {
  typedef Welford S;
  __device__ static S init() { return Welford{0, 0, 0}; }
  __device__ static void add(S &s, T v, int64_t, const red_params &) {
    double x = vr_cu_conv<T>::load(v);
    s.n += 1;
    double d = x - s.mean;
    s.mean += d / s.n;
    s.m2 += d * (x - s.mean);
  }
  __device__ static void merge(S &a, const S &b, const red_params &) {
    if (b.n == 0) return;
    if (a.n == 0) {
      a = b;
      return;
    }
    double n = a.n + b.n, d = b.mean - a.mean;
    a.mean += d * (b.n / n);
    a.m2 += b.m2 + d * d * (a.n * b.n / n);
    a.n = n;
  }
  __device__ static void write(const S &s, void *y, int64_t yo, void *, int64_t, int64_t R, const red_params &p) {
    double den = (double)(R - p.corr);
    if (den < 0) den = 0;
    ((T *)y)[yo] = vr_cu_conv<T>::store(s.m2 / den);
  }
};
template <typename T> struct NormOp {
  typedef double S;
  __device__ static S init() { return 0.0; }
  __device__ static void add(S &s, T v, int64_t, const red_params &p) {
    double x = fabs(vr_cu_conv<T>::load(v));
    if (isinf(p.f0)) s = (x > s || x != x) ? x : s;
    else if (p.f0 == 2) s += x * x;
    else if (p.f0 == 1) s += x;
    else s += pow(x, p.f0);
  }
  __device__ static void merge(S &a, const S &b, const red_params &p) {
    if (isinf(p.f0)) a = (b > a || b != b) ? b : a;
    else a += b;
  }
  __device__ static void write(const S &s, void *y, int64_t yo, void *, int64_t, int64_t, const red_params &p) {
    double r = isinf(p.f0) ? s : p.f0 == 2 ? sqrt(s) : p.f0 == 1 ? s : pow(s, 1.0 / p.f0);
    ((T *)y)[yo] = vr_cu_conv<T>::store(r);
  }
};
struct ArgState {
  double v;
  int64_t i; /* -1: empty */
};
template <typename T> struct MaxMinOp {
  typedef ArgState S;
  __device__ static S init() { return ArgState{0, -1}; }
  /* true when b should replace a: NaN wins, then the extreme, then the first index */
  __device__ static bool better(const S &a, const S &b, int is_min) {
    if (b.i < 0) return false;
    if (a.i < 0) return true;
    bool an = a.v != a.v, bn = b.v != b.v;
    if (an || bn) return bn && (!an || b.i < a.i);
    if (b.v == a.v) return b.i < a.i;
    return is_min ? b.v < a.v : b.v > a.v;
  }
  __device__ static void add(S &s, T v, int64_t r, const red_params &p) {
    S b{vr_cu_conv<T>::load(v), r};
    if (better(s, b, p.is_min)) s = b;
  }
  __device__ static void merge(S &a, const S &b, const red_params &p) {
    if (better(a, b, p.is_min)) a = b;
  }
  __device__ static void write(const S &s, void *y, int64_t yo, void *y2, int64_t yo2, int64_t, const red_params &) {
    ((T *)y)[yo] = vr_cu_conv<T>::store(s.v);
    ((int64_t *)y2)[yo2] = s.i < 0 ? 0 : s.i;
  }
};
/* i64 max/min must stay exact: keep the value as int64 */
struct ArgStateI {
  int64_t v, i;
};
template <typename T> struct MaxMinIntOp {
  typedef ArgStateI S;
  __device__ static S init() { return ArgStateI{0, -1}; }
  __device__ static bool better(const S &a, const S &b, int is_min) {
    if (b.i < 0) return false;
    if (a.i < 0) return true;
    if (b.v == a.v) return b.i < a.i;
    return is_min ? b.v < a.v : b.v > a.v;
  }
  __device__ static void add(S &s, T v, int64_t r, const red_params &p) {
    S b{(int64_t)v, r};
    if (better(s, b, p.is_min)) s = b;
  }
  __device__ static void merge(S &a, const S &b, const red_params &p) {
    if (better(a, b, p.is_min)) a = b;
  }
  __device__ static void write(const S &s, void *y, int64_t yo, void *y2, int64_t yo2, int64_t, const red_params &) {
    ((T *)y)[yo] = (T)s.v;
    ((int64_t *)y2)[yo2] = s.i < 0 ? 0 : s.i;
  }
};

/* one thread per (output, chunk), elements in order; C == 1 writes the result, else the chunk's
 * state goes to part[o * C + c]. Consecutive threads take consecutive outputs (coalesced when the
 * kept dims are the inner ones). */
template <typename Op, typename T>
__global__ void red_thread_kernel(const T *x, void *y, void *y2, red_geom g, red_params p, int64_t C, typename Op::S *part) {
  for (int64_t t = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; t < g.O * C; t += (int64_t)gridDim.x * blockDim.x) {
    int64_t c = t / g.O, o = t - c * g.O;
    int64_t lo = g.R * c / C, hi = g.R * (c + 1) / C;
    int64_t xo, yo, yo2;
    k_offsets(g, o, xo, yo, yo2);
    typename Op::S s = Op::init();
    for (int64_t r = lo; r < hi; r++) Op::add(s, x[xo + r_offset(g, r)], r, p);
    if (C == 1) Op::write(s, y, yo, y2, yo2, g.R, p);
    else part[o * C + c] = s;
  }
}

/* one block per (output, chunk): thread t takes elements lo+t, lo+t+T, ... then a fixed tree.
 * C == 1: writes the result; else the chunk's state goes to part[o * C + c]. */
template <typename Op, typename T>
__global__ void red_block_kernel(const T *x, void *y, void *y2, red_geom g, red_params p, int64_t C,
                                 typename Op::S *part) {
  __shared__ typename Op::S sh[kRedThreads];
  for (int64_t b = blockIdx.x; b < g.O * C; b += gridDim.x) {
    int64_t o = b / C, c = b - o * C;
    int64_t lo = g.R * c / C, hi = g.R * (c + 1) / C;
    int64_t xo, yo, yo2;
    k_offsets(g, o, xo, yo, yo2);
    typename Op::S s = Op::init();
    for (int64_t r = lo + threadIdx.x; r < hi; r += blockDim.x) Op::add(s, x[xo + r_offset(g, r)], r, p);
    sh[threadIdx.x] = s;
    __syncthreads();
    for (int w = blockDim.x / 2; w > 0; w >>= 1) {
      if ((int)threadIdx.x < w) Op::merge(sh[threadIdx.x], sh[threadIdx.x + w], p);
      __syncthreads();
    }
    if (threadIdx.x == 0) {
      if (C == 1) Op::write(sh[0], y, yo, y2, yo2, g.R, p);
      else part[b] = sh[0];
    }
    __syncthreads();
  }
}

/* merges each output's C chunk states in chunk order */
template <typename Op>
__global__ void red_merge_kernel(void *y, void *y2, red_geom g, red_params p, int64_t C, const typename Op::S *part) {
  for (int64_t o = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; o < g.O; o += (int64_t)gridDim.x * blockDim.x) {
    int64_t xo, yo, yo2;
    k_offsets(g, o, xo, yo, yo2);
    typename Op::S s = part[o * C];
    for (int64_t c = 1; c < C; c++) Op::merge(s, part[o * C + c], p);
    Op::write(s, y, yo, y2, yo2, g.R, p);
  }
}

template <typename Op, typename T>
vr_status run_reduce(const vr_tensor *x, vr_tensor *y, vr_tensor *y2, int64_t mask, red_params p) {
  red_geom g;
  red_geom_init(&g, x, y, y2, mask);
  if (g.O == 0) return VR_OK;
  cudaStream_t s = vr_cuda_stream();
  const T *xp = (const T *)vr_data(x);
  void *yp = vr_data(y), *y2p = y2 ? vr_data(y2) : nullptr;
  bool inner_reduced = g.nr > 0 && g.rin[g.nr - 1] == 1;
  typedef typename Op::S S;
  S *part = nullptr;
  int64_t C = 1;
  cudaError_t e = cudaSuccess;
  if (g.R <= 16 || (!inner_reduced && g.O >= 2048)) {
    /* thread per output; when that leaves the GPU idle, split each output's elements into C
     * fixed chunks (at least 16 elements each, about 64K threads in all) merged in order */
    if (g.O < 65536 && g.R >= 64) {
      C = (65536 + g.O - 1) / g.O;
      if (C > g.R / 16) C = g.R / 16;
      if (C > 1024) C = 1024;
      if (C < 1) C = 1;
    }
    if (C > 1) VR_TRY(vr_cuda_scratch(sizeof(S) * (size_t)(g.O * C), (void **)&part));
    red_thread_kernel<Op, T><<<vr_cu_blocks(g.O * C), VR_CU_THREADS, 0, s>>>(xp, yp, y2p, g, p, C, part);
    e = cudaGetLastError();
  } else {
    /* few outputs over many elements: split each into chunks of at least 16K elements, ~1024 blocks in all */
    if (g.O < 512 && g.R >= ((int64_t)1 << 16)) {
      C = 1024 / g.O;
      int64_t cmax = g.R >> 14;
      if (C > cmax) C = cmax;
      if (C < 1) C = 1;
    }
    if (C > 1) VR_TRY(vr_cuda_scratch(sizeof(S) * (size_t)(g.O * C), (void **)&part));
    int64_t nb = g.O * C;
    unsigned grid = (unsigned)(nb < ((int64_t)1 << 20) ? nb : ((int64_t)1 << 20));
    red_block_kernel<Op, T><<<grid, kRedThreads, 0, s>>>(xp, yp, y2p, g, p, C, part);
    e = cudaGetLastError();
  }
  if (e == cudaSuccess && C > 1) {
    red_merge_kernel<Op><<<vr_cu_blocks(g.O), VR_CU_THREADS, 0, s>>>(yp, y2p, g, p, C, part);
    e = cudaGetLastError();
  }
  if (part) vr_cuda_scratch_free(part, sizeof(S) * (size_t)(g.O * C));
  if (e != cudaSuccess)
    return VR_FAIL(VR_E_CUDA, "launch of the reduction kernels: %s (%s)", cudaGetErrorString(e), cudaGetErrorName(e));
  return VR_OK;
}

vr_status sum_fwd(const vr_kernel_args *a) {
  red_params p = {a->f[0], 0, 0};
  const vr_tensor *x = a->in[0];
  vr_tensor *y = a->out[0];
  if (vr_is_int(x->dtype)) {
    if (y->dtype != VR_I64) return VR_FAIL(VR_E_DTYPE, "out[0]: expected i64 for an integer sum, got %s", vr_dtype_name(y->dtype));
    switch (x->dtype) {
    case VR_I32: return run_reduce<SumIntOp<int32_t>, int32_t>(x, y, nullptr, a->i[0], p);
    case VR_I64: return run_reduce<SumIntOp<int64_t>, int64_t>(x, y, nullptr, a->i[0], p);
    default: return run_reduce<SumIntOp<uint8_t>, uint8_t>(x, y, nullptr, a->i[0], p);
    }
  }
  VR_CU_FLOAT_SWITCH(x->dtype, "x", return (run_reduce<SumOp<T>, T>(x, y, nullptr, a->i[0], p)));
  return VR_OK;
}

vr_status var_fwd(const vr_kernel_args *a) {
  red_params p = {0, a->i[1], 0};
  VR_CU_FLOAT_SWITCH(a->in[0]->dtype, "x", return (run_reduce<VarOp<T>, T>(a->in[0], a->out[0], nullptr, a->i[0], p)));
  return VR_OK;
}

vr_status norm_fwd(const vr_kernel_args *a) {
  red_params p = {a->f[0], 0, 0};
  VR_CU_FLOAT_SWITCH(a->in[0]->dtype, "x", return (run_reduce<NormOp<T>, T>(a->in[0], a->out[0], nullptr, a->i[0], p)));
  return VR_OK;
}

__device__ __forceinline__ double norm_grad(double p, double g, double x, double y) {
  if (y == 0 || x == 0) return 0;
  double sg = x > 0 ? g : -g;
  if (isinf(p)) return fabs(x) == y ? sg : 0;
  if (p == 2) return g * x / y;
  if (p == 1) return sg;
  return sg * pow(fabs(x) / y, p - 1);
}
template <typename T>
__global__ void norm_bwd_kernel(T *gx, const T *gy, const T *x, const T *y, vr_cu_geom g, double p) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < g.numel; i += (int64_t)gridDim.x * blockDim.x) {
    double r = norm_grad(p, vr_cu_conv<T>::load(gy[vr_cu_offset(g, 1, i)]), vr_cu_conv<T>::load(x[vr_cu_offset(g, 2, i)]),
                         vr_cu_conv<T>::load(y[vr_cu_offset(g, 3, i)]));
    gx[vr_cu_offset(g, 0, i)] = vr_cu_conv<T>::store(r);
  }
}
vr_status norm_bwd(const vr_kernel_args *a) {
  vr_tensor *ts[4] = {a->out[0], a->in[0], a->in[1], a->in[2]};
  vr_cu_geom g;
  vr_cu_geom_init(&g, 4, ts);
  if (!g.numel) return VR_OK;
  VR_CU_FLOAT_SWITCH(a->in[1]->dtype, "x",
                     norm_bwd_kernel<T><<<vr_cu_blocks(g.numel), VR_CU_THREADS, 0, vr_cuda_stream()>>>(
                         (T *)vr_data(a->out[0]), (const T *)vr_data(a->in[0]), (const T *)vr_data(a->in[1]),
                         (const T *)vr_data(a->in[2]), g, a->f[0]));
  VR_CU_LAUNCHED("norm_bwd_kernel");
  return VR_OK;
}

vr_status maxmin_fwd(const vr_kernel_args *a) {
  const vr_tensor *x = a->in[0];
  if (a->i[0] < 0 || (x->ndim && a->i[0] >= x->ndim)) return VR_FAIL(VR_E_ARG, "i[0]: dim %lld out of range", (long long)a->i[0]);
  if (a->out[1]->dtype != VR_I64) return VR_FAIL(VR_E_DTYPE, "out[1]: expected i64 indices, got %s", vr_dtype_name(a->out[1]->dtype));
  int64_t mask = x->ndim ? (int64_t)1 << a->i[0] : 0;
  red_params p = {0, 0, a->sub == 1};
  switch (x->dtype) {
  case VR_I32: return run_reduce<MaxMinIntOp<int32_t>, int32_t>(x, a->out[0], a->out[1], mask, p);
  case VR_I64: return run_reduce<MaxMinIntOp<int64_t>, int64_t>(x, a->out[0], a->out[1], mask, p);
  case VR_U8: return run_reduce<MaxMinIntOp<uint8_t>, uint8_t>(x, a->out[0], a->out[1], mask, p);
  default: break;
  }
  VR_CU_FLOAT_SWITCH(x->dtype, "x", return (run_reduce<MaxMinOp<T>, T>(x, a->out[0], a->out[1], mask, p)));
  return VR_OK;
}

/* grad_x[..., idx, ...] = grad_values[...]; g: {grad_x with dim squeezed, grad_values, indices} */
template <typename T>
__global__ void maxmin_bwd_kernel(T *gx, const T *gv, const int64_t *ix, vr_cu_geom g, int64_t dstride) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < g.numel; i += (int64_t)gridDim.x * blockDim.x)
    gx[vr_cu_offset(g, 0, i) + ix[vr_cu_offset(g, 2, i)] * dstride] = gv[vr_cu_offset(g, 1, i)];
}
vr_status maxmin_bwd(const vr_kernel_args *a) {
  vr_tensor *gx = a->out[0], *gv = a->in[0], *ix = a->in[1];
  if (!vr_tensor_numel(gx)) return VR_OK;
  vr_kernel_args z;
  memset(&z, 0, sizeof z);
  z.out[0] = gx;
  z.n_out = 1;
  VR_TRY(vr_dispatch(VR_OP_FILL, VR_CUDA, 0, &z));
  if (!vr_tensor_numel(gv)) return VR_OK;
  int dim = (int)a->i[0];
  vr_tensor sq = *gx; /* grad_x's geometry over the keepdim shape */
  int64_t dstride = 0;
  if (gx->ndim) {
    dstride = gx->stride[dim];
    sq.shape[dim] = 1;
  }
  vr_tensor *ts[3] = {&sq, gv, ix};
  vr_cu_geom g;
  vr_cu_geom_init(&g, 3, ts);
  VR_CU_FLOAT_SWITCH(gx->dtype, "grad_x",
                     maxmin_bwd_kernel<T><<<vr_cu_blocks(g.numel), VR_CU_THREADS, 0, vr_cuda_stream()>>>(
                         (T *)vr_data(gx), (const T *)vr_data(gv), (const int64_t *)vr_data(ix), g, dstride));
  VR_CU_LAUNCHED("maxmin_bwd_kernel");
  return VR_OK;
}

} // namespace

extern "C" {
vr_status vr_cuda_sum_fwd(const vr_kernel_args *a) { return sum_fwd(a); }
vr_status vr_cuda_var_fwd(const vr_kernel_args *a) { return var_fwd(a); }
vr_status vr_cuda_norm_fwd(const vr_kernel_args *a) { return norm_fwd(a); }
vr_status vr_cuda_norm_bwd(const vr_kernel_args *a) { return norm_bwd(a); }
vr_status vr_cuda_maxmin_fwd(const vr_kernel_args *a) { return maxmin_fwd(a); }
vr_status vr_cuda_maxmin_bwd(const vr_kernel_args *a) { return maxmin_bwd(a); }

void vr_cuda_register_reduce(void) {
  vr_kernel_register(VR_OP_SUM, VR_CUDA, vr_cuda_sum_fwd, NULL);
  vr_kernel_register(VR_OP_VAR, VR_CUDA, vr_cuda_var_fwd, NULL);
  vr_kernel_register(VR_OP_NORM, VR_CUDA, vr_cuda_norm_fwd, vr_cuda_norm_bwd);
  vr_kernel_register(VR_OP_MAXMIN, VR_CUDA, vr_cuda_maxmin_fwd, vr_cuda_maxmin_bwd);
}
}
