/* optim.cu: CUDA kernels of the multi-tensor optimiser ops (VR_OP_ADAMW; core/ops/optim.c documents
 * the arguments), each ONE launch over all tensors of a parameter list:
 *  - sub 0, the fused AdamW step: one block per chunk of CHUNK elements of one tensor (grid-stride
 *    over the chunk table), the arithmetic of kernels/cpu/optim.c in the element type with
 *    round-to-nearest intrinsics (no fused multiply-adds), so that it matches the CPU bit for bit;
 *  - sub 1, the global 2-norm: a block per chunk sums its squares in double (fixed tree), then one
 *    block sums the chunk sums in a fixed order and writes the norm and the clip factor.
 * The grad_scale scalar is read by the kernel: no value comes back to the host.
 *
 * The device tables (tensor pointers, sizes, lr scales, decays; the chunk table; the chunk sums)
 * are built on the host once per parameter list and kept in a small cache keyed by the table's
 * contents, so a training step uploads nothing: a lookup is a comparison of n host records. lr
 * and the largest weight decay are kernel arguments (the table holds lr scales and decays relative
 * to the largest), so lr and weight-decay schedules do not change the table. */
#include "blockreduce.cuh"
#include <pthread.h>
#include <stdlib.h>
#include <cmath>

#define CHUNK 16384
#define THREADS 256
#define CACHE_SLOTS 8

namespace { /* internal linkage: no template or type here can meet another file's of the same name */

struct mt_tensor {
  void *p, *g, *m, *v;
  int64_t numel;
  double lr_scale, wd;
};
struct mt_chunk {
  int64_t tensor, start;
};

/* ---- round-to-nearest arithmetic without contraction (plain operators in the CPU emulator) ---- */
#ifdef __CUDA_ARCH__
__device__ __forceinline__ float mul_rn(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ float add_rn(float a, float b) { return __fadd_rn(a, b); }
__device__ __forceinline__ float sub_rn(float a, float b) { return __fsub_rn(a, b); }
__device__ __forceinline__ float div_rn(float a, float b) { return __fdiv_rn(a, b); }
__device__ __forceinline__ float sqrt_rn(float a) { return __fsqrt_rn(a); }
__device__ __forceinline__ double mul_rn(double a, double b) { return __dmul_rn(a, b); }
__device__ __forceinline__ double add_rn(double a, double b) { return __dadd_rn(a, b); }
__device__ __forceinline__ double sub_rn(double a, double b) { return __dsub_rn(a, b); }
__device__ __forceinline__ double div_rn(double a, double b) { return __ddiv_rn(a, b); }
__device__ __forceinline__ double sqrt_rn(double a) { return __dsqrt_rn(a); }
#else
template <typename T> static inline T mul_rn(T a, T b) { return a * b; }
template <typename T> static inline T add_rn(T a, T b) { return a + b; }
template <typename T> static inline T sub_rn(T a, T b) { return a - b; }
template <typename T> static inline T div_rn(T a, T b) { return a / b; }
template <typename T> static inline T sqrt_rn(T a) { return std::sqrt(a); }
#endif

template <typename T>
__global__ void adamw_kernel(const mt_tensor *tt, const mt_chunk *ch, int64_t nch, const void *sp, int sdt, double lr,
                             double wd_max, double b1d, double b2d, double epsd, double bc1, double ibc2d) {
  const T s = sp ? (T)vr_cu_ld_any(sp, sdt, 0) : (T)1;
  const T b1 = (T)b1d, omb1 = (T)(1 - b1d), b2 = (T)b2d, omb2 = (T)(1 - b2d), eps = (T)epsd, ibc2 = (T)ibc2d;
  for (int64_t c = blockIdx.x; c < nch; c += gridDim.x) {
    const mt_tensor t = tt[ch[c].tensor];
    const double lrk = lr * t.lr_scale;
    const T decay = (T)(1 - lrk * (wd_max * t.wd)), step = (T)(lrk / bc1);
    const int64_t lo = ch[c].start, hi = lo + CHUNK < t.numel ? lo + CHUNK : t.numel;
    T *p = (T *)t.p, *m = (T *)t.m, *v = (T *)t.v;
    const T *gr = (const T *)t.g;
    for (int64_t i = lo + threadIdx.x; i < hi; i += blockDim.x) {
      T g = mul_rn(gr[i], s);
      T pv = mul_rn(p[i], decay);
      T mv = add_rn(mul_rn(b1, m[i]), mul_rn(omb1, g));
      T vv = add_rn(mul_rn(b2, v[i]), mul_rn(omb2, mul_rn(g, g)));
      T den = add_rn(mul_rn(sqrt_rn(vv), ibc2), eps);
      m[i] = mv;
      v[i] = vv;
      p[i] = sub_rn(pv, mul_rn(step, div_rn(mv, den)));
    }
  }
}

/* part[c] = the sum of squares of chunk c, in double */
template <typename T> __global__ void sumsq_kernel(const mt_tensor *tt, const mt_chunk *ch, int64_t nch, double *part) {
  __shared__ double sh[THREADS];
  for (int64_t c = blockIdx.x; c < nch; c += gridDim.x) {
    const mt_tensor t = tt[ch[c].tensor];
    const int64_t lo = ch[c].start, hi = lo + CHUNK < t.numel ? lo + CHUNK : t.numel;
    const T *x = (const T *)t.g;
    double acc = 0;
    for (int64_t i = lo + threadIdx.x; i < hi; i += blockDim.x) acc += (double)x[i] * (double)x[i];
    double r = vr_cu_block_reduce<vr_cu_sum_op>(acc, sh);
    if (threadIdx.x == 0) part[c] = r;
  }
}

/* one block: the norm and the clip factor from the chunk sums, summed in a fixed order */
template <typename T> __global__ void norm_final_kernel(const double *part, int64_t nch, double max_norm, T *norm, T *clip) {
  __shared__ double sh[THREADS];
  double acc = 0;
  for (int64_t c = threadIdx.x; c < nch; c += blockDim.x) acc += part[c];
  double total = vr_cu_block_reduce<vr_cu_sum_op>(acc, sh);
  if (threadIdx.x == 0) {
    double nv = sqrt(total);
    double f = 1;
    if (max_norm > 0) {
      f = max_norm / (nv + 1e-6);
      if (f > 1) f = 1;
    }
    *norm = (T)nv;
    *clip = (T)f;
  }
}

/* ---- the table cache ---- */
struct mt_entry {
  int kind, n;     /* kind 0: step, 1: norm; n 0: empty slot */
  mt_tensor *key;  /* n host records, the table's contents */
  int64_t nch;
  void *dev;       /* tensors, then chunks, then nch doubles of chunk sums */
  size_t bytes, chunk_off, part_off;
  uint64_t used;
};
static mt_entry cache[CACHE_SLOTS];
static uint64_t clock_;
static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;

static size_t align16(size_t x) { return (x + 15) / 16 * 16; }

/* the device tables for key (n records); *e points at the cache's entry (valid under cache_mu) */
static vr_status tables_for(int kind, const mt_tensor *key, int n, mt_entry **e) {
  mt_entry *hit = NULL, *victim = &cache[0];
  for (int k = 0; k < CACHE_SLOTS; k++) {
    mt_entry *c = &cache[k];
    if (c->n == n && c->kind == kind && !memcmp(c->key, key, sizeof(mt_tensor) * (size_t)n)) {
      hit = c;
      break;
    }
    if (c->n == 0) { /* the first empty slot, else the least recently used */
      if (victim->n != 0) victim = c;
    } else if (victim->n != 0 && c->used < victim->used) {
      victim = c;
    }
  }
  if (hit) {
    hit->used = ++clock_;
    *e = hit;
    return VR_OK;
  }
  int64_t nch = 0;
  for (int k = 0; k < n; k++) nch += (key[k].numel + CHUNK - 1) / CHUNK;
  size_t chunk_off = align16(sizeof(mt_tensor) * (size_t)n);
  size_t part_off = align16(chunk_off + sizeof(mt_chunk) * (size_t)nch);
  size_t bytes = part_off + (kind == 1 ? sizeof(double) * (size_t)nch : 0);
  char *host = (char *)calloc(1, bytes);
  mt_tensor *hkey = (mt_tensor *)malloc(sizeof(mt_tensor) * (size_t)n);
  if (!host || !hkey) {
    free(host);
    free(hkey);
    return vr_error_set(VR_E_OOM, __func__, __FILE__, __LINE__, "tables: could not allocate %zu bytes", bytes);
  }
  memcpy(hkey, key, sizeof(mt_tensor) * (size_t)n);
  memcpy(host, key, sizeof(mt_tensor) * (size_t)n);
  mt_chunk *ch = (mt_chunk *)(host + chunk_off);
  int64_t c = 0;
  for (int k = 0; k < n; k++)
    for (int64_t s = 0; s < key[k].numel; s += CHUNK) ch[c++] = mt_chunk{k, s};
  void *dev = NULL;
  vr_status st = vr_cuda_scratch(bytes, &dev);
  if (st != VR_OK) {
    free(host);
    free(hkey);
    return st;
  }
  cudaError_t ce = cudaMemcpyAsync(dev, host, part_off, cudaMemcpyHostToDevice, vr_cuda_stream());
  free(host);
  if (ce != cudaSuccess) {
    vr_cuda_scratch_free(dev, bytes);
    free(hkey);
    return vr_error_set(VR_E_CUDA, __func__, __FILE__, __LINE__, "cudaMemcpyAsync of the tables: %s",
                        cudaGetErrorString(ce));
  }
  /* the evicted tables are freed in stream order: kernels queued before still read them */
  if (victim->n) vr_cuda_scratch_free(victim->dev, victim->bytes);
  free(victim->key);
  *victim = mt_entry{kind, n, hkey, nch, dev, bytes, chunk_off, part_off, ++clock_};
  *e = victim;
  return VR_OK;
}

static vr_status launch(const vr_kernel_args *a, const mt_entry *e, double wd_max) {
  const vr_multi_tensor_args *mt = (const vr_multi_tensor_args *)a->ctx;
  const mt_tensor *tt = (const mt_tensor *)e->dev;
  const mt_chunk *ch = (const mt_chunk *)((char *)e->dev + e->chunk_off);
  cudaStream_t s = vr_cuda_stream();
  unsigned blocks = vr_cu_blocks(e->nch * THREADS, THREADS);
  vr_dtype dt = mt->t[0][0]->dtype;
  if (e->nch == 0) { /* only empty tensors: the norm is 0 */
    if (a->sub == 1) {
      double *part = (double *)((char *)e->dev + e->part_off);
      if (dt == VR_F32)
        norm_final_kernel<float><<<1, THREADS, 0, s>>>(part, 0, a->f[0], (float *)vr_data(a->out[0]), (float *)vr_data(a->out[1]));
      else
        norm_final_kernel<double><<<1, THREADS, 0, s>>>(part, 0, a->f[0], (double *)vr_data(a->out[0]), (double *)vr_data(a->out[1]));
      VR_CU_LAUNCHED("norm_final_kernel");
    }
    return VR_OK;
  }
  if (a->sub == 1) {
    double *part = (double *)((char *)e->dev + e->part_off);
    if (dt == VR_F32) {
      sumsq_kernel<float><<<blocks, THREADS, 0, s>>>(tt, ch, e->nch, part);
      VR_CU_LAUNCHED("sumsq_kernel");
      norm_final_kernel<float><<<1, THREADS, 0, s>>>(part, e->nch, a->f[0], (float *)vr_data(a->out[0]), (float *)vr_data(a->out[1]));
    } else {
      sumsq_kernel<double><<<blocks, THREADS, 0, s>>>(tt, ch, e->nch, part);
      VR_CU_LAUNCHED("sumsq_kernel");
      norm_final_kernel<double><<<1, THREADS, 0, s>>>(part, e->nch, a->f[0], (double *)vr_data(a->out[0]), (double *)vr_data(a->out[1]));
    }
    VR_CU_LAUNCHED("norm_final_kernel");
    return VR_OK;
  }
  const void *sp = a->in[0] ? vr_data(a->in[0]) : NULL;
  int sdt = a->in[0] ? (int)a->in[0]->dtype : 0;
  if (dt == VR_F32)
    adamw_kernel<float><<<blocks, THREADS, 0, s>>>(tt, ch, e->nch, sp, sdt, a->f[0], wd_max, a->f[1], a->f[2], a->f[3], a->f[4], a->f[5]);
  else
    adamw_kernel<double><<<blocks, THREADS, 0, s>>>(tt, ch, e->nch, sp, sdt, a->f[0], wd_max, a->f[1], a->f[2], a->f[3], a->f[4], a->f[5]);
  VR_CU_LAUNCHED("adamw_kernel");
  return VR_OK;
}

} // namespace

static vr_status vr_cuda_adamw_fwd(const vr_kernel_args *a) {
  const vr_multi_tensor_args *mt = (const vr_multi_tensor_args *)a->ctx;
  int n = mt->n;
  vr_dtype dt = mt->t[0][0]->dtype;
  if (dt != VR_F32 && dt != VR_F64) return VR_CU_UNSUPPORTED_DTYPE("adamw", dt);
  mt_tensor *key = (mt_tensor *)calloc((size_t)n, sizeof(mt_tensor));
  if (!key) return vr_error_set(VR_E_OOM, __func__, __FILE__, __LINE__, "n: could not allocate %d records", n);
  /* decays are kept relative to the largest, which goes to the kernel as an argument: a schedule
   * of the weight decay then changes no table */
  double wd_max = 0;
  if (a->sub != 1)
    for (int k = 0; k < n; k++) wd_max = fabs(mt->wd[k]) > wd_max ? fabs(mt->wd[k]) : wd_max;
  for (int k = 0; k < n; k++) {
    mt_tensor r;
    memset(&r, 0, sizeof r);
    if (a->sub == 1) {
      r.g = vr_data(mt->t[0][k]);
    } else {
      r.p = vr_data(mt->t[0][k]);
      r.g = vr_data(mt->t[1][k]);
      r.m = vr_data(mt->t[2][k]);
      r.v = vr_data(mt->t[3][k]);
      r.lr_scale = mt->lr_scale[k];
      r.wd = wd_max > 0 ? mt->wd[k] / wd_max : 0;
    }
    r.numel = vr_tensor_numel(mt->t[0][k]);
    key[k] = r;
  }
  pthread_mutex_lock(&cache_mu);
  mt_entry *e = NULL;
  vr_status st = tables_for(a->sub == 1 ? 1 : 0, key, n, &e);
  if (st == VR_OK) st = launch(a, e, wd_max);
  pthread_mutex_unlock(&cache_mu);
  free(key);
  return st;
}

extern "C" void vr_cuda_register_optim(void) { vr_kernel_register(VR_OP_ADAMW, VR_CUDA, vr_cuda_adamw_fwd, NULL); }
