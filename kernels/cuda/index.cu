/* index.cu: CUDA index_select (fwd, bwd), gather, scatter_add and one_hot, with the argument
 * layout of core/ops/index.c (contiguous tensors, indices range-checked by the front-end).
 *
 * Determinism without float atomics, and the CPU's order of additions, so results match
 * kernels/cpu/index.c bit for bit:
 *  - index_select backward: grad_x[o, j, i] = sum of grad_out[o, k, i] over k with index[k] = j,
 *    k increasing. Short indices: each thread scans the index. Long ones: the (index[k], k) pairs are
 *    radix-sorted (stable), giving each destination row its run of k in order.
 *  - scatter_add: the output line at fixed non-dim coordinates receives the index's entries along
 *    dim in increasing order. Many lines: one thread per line (the CPU's loop). Few long lines:
 *    (line, destination) keys are radix-sorted with the entry's position, and one thread per output
 *    element adds its run in order. */
#include "scratch.cuh"
#include "sorting.cuh"

namespace {

/* ---------------------------------------------------------------- index_select */

template <typename U>
__global__ void isel_fwd_k(const U *__restrict__ x, U *__restrict__ o, const void *ix, int is64, int64_t n, int64_t K,
                           int64_t inner, int64_t total) {
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < total; e += (int64_t)gridDim.x * blockDim.x) {
    int64_t i = e % inner, r = e / inner, k = r % K, oo = r / K;
    o[e] = x[(oo * n + vr_cu_ix(ix, is64, k)) * inner + i];
  }
}

template <typename U> vr_status isel_fwd_launch(const vr_kernel_args *a, int64_t outer, int64_t n, int64_t K, int64_t inner) {
  int64_t total = outer * K * inner;
  isel_fwd_k<U><<<vr_cu_blocks(total), VR_CU_THREADS, 0, vr_cuda_stream()>>>(
      (const U *)vr_data(a->in[0]), (U *)vr_data(a->out[0]), vr_data(a->in[1]), a->in[1]->dtype == VR_I64, n, K, inner,
      total);
  VR_CU_LAUNCHED("index_select");
  return VR_OK;
}

void split3(const vr_tensor *t, int dim, int64_t *outer, int64_t *inner) {
  int64_t o = 1, i = 1;
  for (int d = 0; d < dim; d++) o *= t->shape[d];
  for (int d = dim + 1; d < t->ndim; d++) i *= t->shape[d];
  *outer = o;
  *inner = i;
}

vr_status index_select_fwd(const vr_kernel_args *a) {
  const vr_tensor *x = a->in[0];
  int dim = (int)a->i[0];
  int64_t outer, inner, n = x->shape[dim], K = a->out[0]->shape[dim];
  split3(x, dim, &outer, &inner);
  if (!outer || !K || !inner) return VR_OK;
  switch (vr_dtype_size(x->dtype)) {
  case 1: return isel_fwd_launch<uint8_t>(a, outer, n, K, inner);
  case 2: return isel_fwd_launch<uint16_t>(a, outer, n, K, inner);
  case 4: return isel_fwd_launch<uint32_t>(a, outer, n, K, inner);
  default: return isel_fwd_launch<uint64_t>(a, outer, n, K, inner);
  }
}

/* the CPU adds with vr_load/vr_store for bf16 (through double), f32 and f64 in their own type */
template <typename T> struct add_step {
  __device__ __forceinline__ static T add(T acc, T v) { return acc + v; }
};
template <> struct add_step<vr_bf16> {
  __device__ __forceinline__ static vr_bf16 add(vr_bf16 acc, vr_bf16 v) {
    return vr_cu_conv<vr_bf16>::store((double)vr_bf16_to_f(acc) + (double)vr_bf16_to_f(v));
  }
};
template <typename T> __device__ __forceinline__ T zero_of() { return (T)0; }
template <> __device__ __forceinline__ vr_bf16 zero_of<vr_bf16>() { return vr_bf16{0}; }

/* backward, short index: thread per grad_x element scans index[0..K) */
template <typename T>
__global__ void isel_bwd_scan(const T *__restrict__ g, T *__restrict__ gx, const void *ix, int is64, int64_t n, int64_t K,
                              int64_t inner, int64_t total) {
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < total; e += (int64_t)gridDim.x * blockDim.x) {
    int64_t i = e % inner, r = e / inner, j = r % n, oo = r / n;
    T acc = zero_of<T>();
    for (int64_t k = 0; k < K; k++)
      if (vr_cu_ix(ix, is64, k) == j) acc = add_step<T>::add(acc, g[(oo * K + k) * inner + i]);
    gx[e] = acc;
  }
}
/* backward, long index: runs of k per destination row from the sorted pairs */
template <typename T>
__global__ void isel_bwd_runs(const T *__restrict__ g, T *__restrict__ gx, const int64_t *ks, const int64_t *start,
                              const int64_t *end, int64_t n, int64_t K, int64_t inner, int64_t total) {
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < total; e += (int64_t)gridDim.x * blockDim.x) {
    int64_t i = e % inner, r = e / inner, j = r % n, oo = r / n;
    T acc = zero_of<T>();
    for (int64_t q = start[j]; q < end[j]; q++) acc = add_step<T>::add(acc, g[(oo * K + ks[q]) * inner + i]);
    gx[e] = acc;
  }
}

__global__ void ix_to_pairs(const void *ix, int is64, int64_t K, uint64_t *keys, int64_t *vals) {
  for (int64_t k = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; k < K; k += (int64_t)gridDim.x * blockDim.x) {
    keys[k] = (uint64_t)vr_cu_ix(ix, is64, k);
    vals[k] = k;
  }
}

const int64_t kScanMax = 64; /* up to this many index entries, threads scan instead of sorting */

template <typename T> vr_status isel_bwd_typed(const vr_kernel_args *a, int64_t outer, int64_t n, int64_t K, int64_t inner) {
  const vr_tensor *ix = a->in[1];
  int is64 = ix->dtype == VR_I64;
  int64_t total = outer * n * inner;
  cudaStream_t s = vr_cuda_stream();
  if (K <= kScanMax) {
    isel_bwd_scan<T><<<vr_cu_blocks(total), VR_CU_THREADS, 0, s>>>((const T *)vr_data(a->in[0]), (T *)vr_data(a->out[0]),
                                                                   vr_data(ix), is64, n, K, inner, total);
    VR_CU_LAUNCHED("index_select backward");
    return VR_OK;
  }
  vr_cu_buf kb, kb2, vb, vb2, st, en;
  VR_TRY(kb.get(8 * (size_t)K));
  VR_TRY(kb2.get(8 * (size_t)K));
  VR_TRY(vb.get(8 * (size_t)K));
  VR_TRY(vb2.get(8 * (size_t)K));
  VR_TRY(st.get(8 * (size_t)n));
  VR_TRY(en.get(8 * (size_t)n));
  ix_to_pairs<<<vr_cu_blocks(K), VR_CU_THREADS, 0, s>>>(vr_data(ix), is64, K, kb.as<uint64_t>(), vb.as<int64_t>());
  VR_CU_LAUNCHED("index pairs");
  uint64_t *ko = nullptr;
  int64_t *vo = nullptr;
  VR_TRY(vr_cu_radix_pairs(kb.as<uint64_t>(), kb2.as<uint64_t>(), vb.as<int64_t>(), vb2.as<int64_t>(), K,
                           vr_cu_bits_for((uint64_t)n), &ko, &vo));
  VR_TRY(vr_cu_runs(ko, K, n, st.as<int64_t>(), en.as<int64_t>()));
  isel_bwd_runs<T><<<vr_cu_blocks(total), VR_CU_THREADS, 0, s>>>((const T *)vr_data(a->in[0]), (T *)vr_data(a->out[0]),
                                                                 vo, st.as<int64_t>(), en.as<int64_t>(), n, K, inner,
                                                                 total);
  VR_CU_LAUNCHED("index_select backward");
  return VR_OK;
}

vr_status index_select_bwd(const vr_kernel_args *a) {
  vr_tensor *gx = a->out[0];
  int dim = (int)a->i[0];
  int64_t outer, inner, n = gx->shape[dim], K = a->in[0]->shape[dim];
  split3(gx, dim, &outer, &inner);
  if (!outer || !n || !inner) return VR_OK;
  VR_CU_FLOAT_SWITCH(gx->dtype, "grad_x", return isel_bwd_typed<T>(a, outer, n, K, inner));
  return VR_OK;
}

/* ---------------------------------------------------------------- gather */

struct gshape {
  int ndim, dim;
  int64_t shape[VR_MAX_DIMS]; /* the index's = the output's */
  int64_t xst[VR_MAX_DIMS];   /* x's contiguous strides */
};

template <typename U>
__global__ void gather_k(const U *__restrict__ x, U *__restrict__ o, const void *ix, int is64, gshape g, int64_t total) {
  for (int64_t p = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; p < total; p += (int64_t)gridDim.x * blockDim.x) {
    int64_t r = p, off = 0;
    for (int d = g.ndim - 1; d >= 0; d--) {
      int64_t c = r % g.shape[d];
      r /= g.shape[d];
      off += (d == g.dim ? vr_cu_ix(ix, is64, p) : c) * g.xst[d];
    }
    o[p] = x[off];
  }
}

vr_status gather_fwd(const vr_kernel_args *a) {
  const vr_tensor *x = a->in[0], *ix = a->in[1];
  gshape g;
  memset(&g, 0, sizeof g);
  g.ndim = ix->ndim;
  g.dim = (int)a->i[0];
  memcpy(g.shape, ix->shape, sizeof g.shape);
  vr_contiguous_strides(x->ndim, x->shape, g.xst);
  int64_t total = vr_tensor_numel(ix);
  if (!total) return VR_OK;
  int is64 = ix->dtype == VR_I64;
  cudaStream_t s = vr_cuda_stream();
  const void *xp = vr_data(x), *ip = vr_data(ix);
  void *op = vr_data(a->out[0]);
  unsigned nb = vr_cu_blocks(total);
  switch (vr_dtype_size(x->dtype)) {
  case 1: gather_k<uint8_t><<<nb, VR_CU_THREADS, 0, s>>>((const uint8_t *)xp, (uint8_t *)op, ip, is64, g, total); break;
  case 2: gather_k<uint16_t><<<nb, VR_CU_THREADS, 0, s>>>((const uint16_t *)xp, (uint16_t *)op, ip, is64, g, total); break;
  case 4: gather_k<uint32_t><<<nb, VR_CU_THREADS, 0, s>>>((const uint32_t *)xp, (uint32_t *)op, ip, is64, g, total); break;
  default: gather_k<uint64_t><<<nb, VR_CU_THREADS, 0, s>>>((const uint64_t *)xp, (uint64_t *)op, ip, is64, g, total); break;
  }
  VR_CU_LAUNCHED("gather");
  return VR_OK;
}

/* ---------------------------------------------------------------- scatter_add */

struct sgeo {
  int ndim, dim;
  int64_t ishape[VR_MAX_DIMS];
  int64_t ost[VR_MAX_DIMS], sst[VR_MAX_DIMS], ist[VR_MAX_DIMS];
  int64_t lines, m, n; /* lines: prod of the index's sizes but dim; m its size at dim; n out's size at dim */
};

/* offsets (out, src, index) of line l at position 0 along dim */
__device__ __forceinline__ void line_offsets(const sgeo &g, int64_t l, int64_t *oo, int64_t *so, int64_t *io) {
  int64_t r = l, a = 0, b = 0, c = 0;
  for (int d = g.ndim - 1; d >= 0; d--) {
    if (d == g.dim) continue;
    int64_t cd = r % g.ishape[d];
    r /= g.ishape[d];
    a += cd * g.ost[d];
    b += cd * g.sst[d];
    c += cd * g.ist[d];
  }
  *oo = a;
  *so = b;
  *io = c;
}

/* one thread per line, entries along dim in order: the CPU's loop */
template <typename T>
__global__ void scatter_lines(T *o, const T *__restrict__ src, const void *ix, int is64, sgeo g) {
  for (int64_t l = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; l < g.lines; l += (int64_t)gridDim.x * blockDim.x) {
    int64_t oo, so, io;
    line_offsets(g, l, &oo, &so, &io);
    int64_t os = g.ost[g.dim], ss = g.sst[g.dim], is = g.ist[g.dim];
    for (int64_t j = 0; j < g.m; j++) {
      T *d = o + oo + vr_cu_ix(ix, is64, io + j * is) * os;
      *d = add_step<T>::add(*d, src[so + j * ss]);
    }
  }
}

/* keys (line, destination) = l n + index, values = position j along dim; entries in line order */
__global__ void scatter_pairs(const void *ix, int is64, sgeo g, uint64_t *keys, int64_t *vals) {
  int64_t total = g.lines * g.m;
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < total; e += (int64_t)gridDim.x * blockDim.x) {
    int64_t l = e / g.m, j = e - l * g.m, oo, so, io;
    line_offsets(g, l, &oo, &so, &io);
    keys[e] = (uint64_t)(l * g.n + vr_cu_ix(ix, is64, io + j * g.ist[g.dim]));
    vals[e] = j;
  }
}

/* one thread per (line, destination): adds its run of src entries, j increasing */
template <typename T>
__global__ void scatter_runs(T *o, const T *__restrict__ src, const int64_t *js, const int64_t *start, const int64_t *end,
                             sgeo g) {
  int64_t total = g.lines * g.n;
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < total; e += (int64_t)gridDim.x * blockDim.x) {
    int64_t q0 = start[e], q1 = end[e];
    if (q0 == q1) continue;
    int64_t l = e / g.n, dst = e - l * g.n, oo, so, io;
    line_offsets(g, l, &oo, &so, &io);
    T *d = o + oo + dst * g.ost[g.dim];
    T acc = *d;
    for (int64_t q = q0; q < q1; q++) acc = add_step<T>::add(acc, src[so + js[q] * g.sst[g.dim]]);
    *d = acc;
  }
}

template <typename T> vr_status scatter_typed(const vr_kernel_args *a, const sgeo &g) {
  cudaStream_t s = vr_cuda_stream();
  const vr_tensor *ix = a->in[1];
  int is64 = ix->dtype == VR_I64;
  T *o = (T *)vr_data(a->out[0]);
  const T *src = (const T *)vr_data(a->in[2]);
  /* many lines, or short ones: the CPU's loop, one thread a line */
  if (g.lines >= 16384 || g.m <= 256) {
    scatter_lines<T><<<vr_cu_blocks(g.lines), VR_CU_THREADS, 0, s>>>(o, src, vr_data(ix), is64, g);
    VR_CU_LAUNCHED("scatter_add");
    return VR_OK;
  }
  int64_t N = g.lines * g.m, nk = g.lines * g.n;
  vr_cu_buf kb, kb2, vb, vb2, st, en;
  VR_TRY(kb.get(8 * (size_t)N));
  VR_TRY(kb2.get(8 * (size_t)N));
  VR_TRY(vb.get(8 * (size_t)N));
  VR_TRY(vb2.get(8 * (size_t)N));
  VR_TRY(st.get(8 * (size_t)nk));
  VR_TRY(en.get(8 * (size_t)nk));
  scatter_pairs<<<vr_cu_blocks(N), VR_CU_THREADS, 0, s>>>(vr_data(ix), is64, g, kb.as<uint64_t>(), vb.as<int64_t>());
  VR_CU_LAUNCHED("scatter pairs");
  uint64_t *ko = nullptr;
  int64_t *vo = nullptr;
  VR_TRY(vr_cu_radix_pairs(kb.as<uint64_t>(), kb2.as<uint64_t>(), vb.as<int64_t>(), vb2.as<int64_t>(), N,
                           vr_cu_bits_for((uint64_t)nk), &ko, &vo));
  VR_TRY(vr_cu_runs(ko, N, nk, st.as<int64_t>(), en.as<int64_t>()));
  scatter_runs<T><<<vr_cu_blocks(nk), VR_CU_THREADS, 0, s>>>(o, src, vo, st.as<int64_t>(), en.as<int64_t>(), g);
  VR_CU_LAUNCHED("scatter_add");
  return VR_OK;
}

vr_status scatter_add_fwd(const vr_kernel_args *a) {
  const vr_tensor *x = a->in[0], *ix = a->in[1], *src = a->in[2];
  vr_tensor *out = a->out[0];
  int64_t numel = vr_tensor_numel(out);
  if (!numel) return VR_OK;
  if (x->storage != out->storage)
    VR_CU(cudaMemcpyAsync(vr_data(out), vr_data(x), (size_t)numel * vr_dtype_size(x->dtype), cudaMemcpyDeviceToDevice,
                          vr_cuda_stream()));
  if (!vr_tensor_numel(ix)) return VR_OK;
  sgeo g;
  memset(&g, 0, sizeof g);
  g.ndim = ix->ndim;
  g.dim = (int)a->i[0];
  memcpy(g.ishape, ix->shape, sizeof g.ishape);
  vr_contiguous_strides(out->ndim, out->shape, g.ost);
  vr_contiguous_strides(src->ndim, src->shape, g.sst);
  vr_contiguous_strides(ix->ndim, ix->shape, g.ist);
  g.lines = 1;
  for (int d = 0; d < ix->ndim; d++)
    if (d != g.dim) g.lines *= ix->shape[d];
  g.m = ix->shape[g.dim];
  g.n = out->shape[g.dim];
  switch (out->dtype) {
  case VR_F32: return scatter_typed<float>(a, g);
  case VR_F64: return scatter_typed<double>(a, g);
  case VR_BF16: return scatter_typed<vr_bf16>(a, g);
  default: return VR_CU_UNSUPPORTED_DTYPE("x", out->dtype);
  }
}

/* ---------------------------------------------------------------- one_hot */

template <typename T>
__global__ void one_hot_k(T *o, const void *ix, int is64, int64_t C, int64_t total) {
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < total; e += (int64_t)gridDim.x * blockDim.x) {
    int64_t r = e / C, c = e - r * C;
    o[e] = vr_cu_conv<T>::store(vr_cu_ix(ix, is64, r) == c ? 1.0 : 0.0);
  }
}

vr_status one_hot_fwd(const vr_kernel_args *a) {
  int64_t C = a->i[0], total = vr_tensor_numel(a->out[0]);
  if (!total) return VR_OK;
  int is64 = a->in[0]->dtype == VR_I64;
  VR_CU_ALL_SWITCH(a->out[0]->dtype, "out",
                   one_hot_k<T><<<vr_cu_blocks(total), VR_CU_THREADS, 0, vr_cuda_stream()>>>(
                       (T *)vr_data(a->out[0]), vr_data(a->in[0]), is64, C, total));
  VR_CU_LAUNCHED("one_hot");
  return VR_OK;
}

/* ---------------------------------------------------------------- runs of a sorted key array */

__global__ void runs_k(const uint64_t *k, int64_t n, int64_t *start, int64_t *end) {
  for (int64_t p = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; p < n; p += (int64_t)gridDim.x * blockDim.x) {
    uint64_t v = k[p];
    if (p == 0 || k[p - 1] != v) start[v] = p;
    if (p == n - 1 || k[p + 1] != v) end[v] = p + 1;
  }
}

} // namespace

vr_status vr_cu_runs(const uint64_t *sorted, int64_t n, int64_t nkeys, int64_t *start, int64_t *end) {
  cudaStream_t s = vr_cuda_stream();
  VR_CU(cudaMemsetAsync(start, 0, 8 * (size_t)nkeys, s));
  VR_CU(cudaMemsetAsync(end, 0, 8 * (size_t)nkeys, s));
  if (!n) return VR_OK;
  runs_k<<<vr_cu_blocks(n), VR_CU_THREADS, 0, s>>>(sorted, n, start, end);
  VR_CU_LAUNCHED("runs");
  return VR_OK;
}

extern "C" {
vr_status vr_cuda_index_select_fwd(const vr_kernel_args *a) { return index_select_fwd(a); }
vr_status vr_cuda_index_select_bwd(const vr_kernel_args *a) { return index_select_bwd(a); }
vr_status vr_cuda_gather_fwd(const vr_kernel_args *a) { return gather_fwd(a); }
vr_status vr_cuda_scatter_add_fwd(const vr_kernel_args *a) { return scatter_add_fwd(a); }
vr_status vr_cuda_one_hot_fwd(const vr_kernel_args *a) { return one_hot_fwd(a); }
void vr_cuda_register_index(void) {
  vr_kernel_register(VR_OP_INDEX_SELECT, VR_CUDA, vr_cuda_index_select_fwd, vr_cuda_index_select_bwd);
  vr_kernel_register(VR_OP_GATHER, VR_CUDA, vr_cuda_gather_fwd, NULL);
  vr_kernel_register(VR_OP_SCATTER_ADD, VR_CUDA, vr_cuda_scatter_add_fwd, NULL);
  vr_kernel_register(VR_OP_ONE_HOT, VR_CUDA, vr_cuda_one_hot_fwd, NULL);
}
}
