/* basic.cu: CUDA copy (strided, broadcast, any dtype pair), fill, arange and Philox random
 * kernels, plus the strided geometry the other families share. Conventions as the CPU
 * (kernels/cpu/basic.c): COPY in[0] -> out[0] same shape; FILL out[0] = f[0]; ARANGE out[0][k] =
 * f[0] + k f[1] (out contiguous 1-D); RAND sub = VR_RAND_*, i = {seed, stream, offset}, f = {a, b},
 * out contiguous, element k uses counter offset + k. Arithmetic that must match the CPU bit for
 * bit is written with _rn intrinsics so that nvcc does not contract it into FMAs (the C library
 * is built -std=c11, where GCC does not contract either). */
#include "common.cuh"
#include "../../core/philox.h"

void vr_cu_geom_init(vr_cu_geom *g, int nops, vr_tensor *const *ts) {
  memset(g, 0, sizeof *g);
  g->nops = nops;
  const vr_tensor *t0 = ts[0];
  g->numel = vr_tensor_numel(t0);
  int n = 0;
  for (int d = 0; d < t0->ndim; d++) {
    if (t0->shape[d] == 1) continue;
    g->shape[n] = t0->shape[d];
    for (int k = 0; k < nops; k++) g->st[k][n] = ts[k]->stride[d];
    n++;
  }
  if (n == 0) {
    g->shape[0] = 1;
    for (int k = 0; k < nops; k++) g->st[k][0] = 1;
    n = 1;
  }
  int m = 0;
  for (int d = 1; d < n; d++) {
    bool merge = true;
    for (int k = 0; k < nops && merge; k++) merge = g->st[k][m] == g->st[k][d] * g->shape[d];
    if (merge) {
      g->shape[m] *= g->shape[d];
      for (int k = 0; k < nops; k++) g->st[k][m] = g->st[k][d];
    } else {
      m++;
      g->shape[m] = g->shape[d];
      for (int k = 0; k < nops; k++) g->st[k][m] = g->st[k][d];
    }
  }
  g->ndim = m + 1;
  g->contiguous = g->ndim == 1;
  for (int k = 0; k < nops; k++) g->contiguous = g->contiguous && g->st[k][0] == 1;
}

namespace {

/* ---- copy ---- */
template <typename Ti, typename To, bool Contig>
__global__ void copy_kernel(To *__restrict__ o, const Ti *__restrict__ in, vr_cu_geom g) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < g.numel; i += (int64_t)gridDim.x * blockDim.x) {
    int64_t oo = Contig ? i : vr_cu_offset(g, 0, i), io = Contig ? i : vr_cu_offset(g, 1, i);
    o[oo] = vr_cu_conv<To>::store(vr_cu_conv<Ti>::load(in[io]));
  }
}
/* same dtype: move the bits */
template <typename U, bool Contig>
__global__ void move_kernel(U *__restrict__ o, const U *__restrict__ in, vr_cu_geom g) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < g.numel; i += (int64_t)gridDim.x * blockDim.x) {
    int64_t oo = Contig ? i : vr_cu_offset(g, 0, i), io = Contig ? i : vr_cu_offset(g, 1, i);
    o[oo] = in[io];
  }
}

template <typename U> vr_status launch_move(const vr_cu_geom &g, void *o, const void *in) {
  cudaStream_t s = vr_cuda_stream();
  if (g.contiguous)
    move_kernel<U, true><<<vr_cu_blocks(g.numel), VR_CU_THREADS, 0, s>>>((U *)o, (const U *)in, g);
  else
    move_kernel<U, false><<<vr_cu_blocks(g.numel), VR_CU_THREADS, 0, s>>>((U *)o, (const U *)in, g);
  VR_CU_LAUNCHED("move_kernel");
  return VR_OK;
}

template <typename Ti, typename To> vr_status launch_copy(const vr_cu_geom &g, void *o, const void *in) {
  cudaStream_t s = vr_cuda_stream();
  if (g.contiguous)
    copy_kernel<Ti, To, true><<<vr_cu_blocks(g.numel), VR_CU_THREADS, 0, s>>>((To *)o, (const Ti *)in, g);
  else
    copy_kernel<Ti, To, false><<<vr_cu_blocks(g.numel), VR_CU_THREADS, 0, s>>>((To *)o, (const Ti *)in, g);
  VR_CU_LAUNCHED("copy_kernel");
  return VR_OK;
}

/* f32 <-> bf16 over dense 16-byte-aligned memory, 8 elements a thread in 16-byte accesses (the
 * autocast casts around each convolution are a fifth of a bf16 training step; one element a thread
 * ran at about a third of the memory bandwidth). Same rounding as vr_f_to_bf16. i < n / 8 vectors;
 * the tail goes to copy_kernel. */
__device__ __forceinline__ uint32_t bf16_pair(float lo, float hi) {
  return (uint32_t)vr_f_to_bf16(lo).x | ((uint32_t)vr_f_to_bf16(hi).x << 16);
}
__global__ void f32_to_bf16_vec(const float4 *__restrict__ in, uint4 *__restrict__ o, int64_t n8) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n8; i += (int64_t)gridDim.x * blockDim.x) {
    float4 a = in[2 * i], b = in[2 * i + 1];
    o[i] = make_uint4(bf16_pair(a.x, a.y), bf16_pair(a.z, a.w), bf16_pair(b.x, b.y), bf16_pair(b.z, b.w));
  }
}
__device__ __forceinline__ float bf16_lo(uint32_t u) { return __uint_as_float(u << 16); }
__device__ __forceinline__ float bf16_hi(uint32_t u) { return __uint_as_float(u & 0xffff0000u); }
__global__ void bf16_to_f32_vec(const uint4 *__restrict__ in, float4 *__restrict__ o, int64_t n8) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n8; i += (int64_t)gridDim.x * blockDim.x) {
    uint4 v = in[i];
    o[2 * i] = make_float4(bf16_lo(v.x), bf16_hi(v.x), bf16_lo(v.y), bf16_hi(v.y));
    o[2 * i + 1] = make_float4(bf16_lo(v.z), bf16_hi(v.z), bf16_lo(v.w), bf16_hi(v.w));
  }
}
/* the vector kernel for the first n - n % 8 elements when both sides are dense and aligned;
 * false when it does not apply */
bool try_cast_vec(const vr_cu_geom &g, vr_dtype di, vr_dtype dout, void *o, const void *in, vr_status *st) {
  bool f2b = di == VR_F32 && dout == VR_BF16, b2f = di == VR_BF16 && dout == VR_F32;
  if (!g.contiguous || !(f2b || b2f) || ((uintptr_t)o | (uintptr_t)in) % 16 || g.numel < 8) return false;
  int64_t n8 = g.numel / 8, rest = g.numel - 8 * n8;
  cudaStream_t s = vr_cuda_stream();
  if (f2b) f32_to_bf16_vec<<<vr_cu_blocks(n8), VR_CU_THREADS, 0, s>>>((const float4 *)in, (uint4 *)o, n8);
  else bf16_to_f32_vec<<<vr_cu_blocks(n8), VR_CU_THREADS, 0, s>>>((const uint4 *)in, (float4 *)o, n8);
  cudaError_t e = cudaGetLastError();
  *st = e == cudaSuccess ? VR_OK : VR_FAIL(VR_E_CUDA, "launch of the f32/bf16 cast: %s", cudaGetErrorString(e));
  if (*st != VR_OK || !rest) return true;
  vr_cu_geom t = g; /* the tail, element-wise */
  t.numel = rest;
  if (f2b) *st = launch_copy<float, vr_bf16>(t, (vr_bf16 *)o + 8 * n8, (const float *)in + 8 * n8);
  else *st = launch_copy<vr_bf16, float>(t, (float *)o + 8 * n8, (const vr_bf16 *)in + 8 * n8);
  return true;
}

template <typename Ti> vr_status copy_from(const vr_cu_geom &g, vr_dtype dout, void *o, const void *in) {
  VR_CU_ALL_SWITCH(dout, "out[0]", return (launch_copy<Ti, T>(g, o, in)));
  return VR_OK;
}

vr_status copy_fwd(const vr_kernel_args *a) {
  vr_tensor *ts[2] = {a->out[0], a->in[0]};
  vr_cu_geom g;
  vr_cu_geom_init(&g, 2, ts);
  if (!g.numel) return VR_OK;
  vr_dtype di = a->in[0]->dtype, dout = a->out[0]->dtype;
  void *o = vr_data(a->out[0]);
  const void *in = vr_data(a->in[0]);
  if (di == dout) {
    if (g.contiguous) {
      VR_CU(cudaMemcpyAsync(o, in, (size_t)g.numel * vr_dtype_size(di), cudaMemcpyDeviceToDevice, vr_cuda_stream()));
      return VR_OK;
    }
    switch (vr_dtype_size(di)) {
    case 1: return launch_move<uint8_t>(g, o, in);
    case 2: return launch_move<uint16_t>(g, o, in);
    case 4: return launch_move<uint32_t>(g, o, in);
    default: return launch_move<uint64_t>(g, o, in);
    }
  }
  vr_status st;
  if (try_cast_vec(g, di, dout, o, in, &st)) return st;
  VR_CU_ALL_SWITCH(di, "in[0]", return copy_from<T>(g, dout, o, in));
  return VR_OK;
}

/* ---- fill: the value is converted on the host exactly as vr_store does, then its bits are spread ---- */
template <typename U, bool Contig> __global__ void fill_kernel(U *__restrict__ o, U v, vr_cu_geom g) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < g.numel; i += (int64_t)gridDim.x * blockDim.x)
    o[Contig ? i : vr_cu_offset(g, 0, i)] = v;
}
template <typename U> vr_status launch_fill(const vr_cu_geom &g, void *o, const unsigned char *bits) {
  U v;
  memcpy(&v, bits, sizeof v);
  cudaStream_t s = vr_cuda_stream();
  if (g.contiguous)
    fill_kernel<U, true><<<vr_cu_blocks(g.numel), VR_CU_THREADS, 0, s>>>((U *)o, v, g);
  else
    fill_kernel<U, false><<<vr_cu_blocks(g.numel), VR_CU_THREADS, 0, s>>>((U *)o, v, g);
  VR_CU_LAUNCHED("fill_kernel");
  return VR_OK;
}

void host_store(unsigned char *p, vr_dtype dt, double v) {
  switch (dt) {
  case VR_F32: { float x = (float)v; memcpy(p, &x, 4); break; }
  case VR_F64: memcpy(p, &v, 8); break;
  case VR_I32: { int32_t x = (int32_t)v; memcpy(p, &x, 4); break; }
  case VR_I64: { int64_t x = (int64_t)v; memcpy(p, &x, 8); break; }
  case VR_U8: p[0] = (uint8_t)v; break;
  case VR_BF16: { vr_bf16 x = vr_f_to_bf16((float)v); memcpy(p, &x, 2); break; }
  }
}

vr_status fill_fwd(const vr_kernel_args *a) {
  vr_cu_geom g;
  vr_cu_geom_init(&g, 1, a->out);
  if (!g.numel) return VR_OK;
  unsigned char bits[8] = {0};
  vr_dtype dt = a->out[0]->dtype;
  host_store(bits, dt, a->f[0]);
  void *o = vr_data(a->out[0]);
  switch (vr_dtype_size(dt)) {
  case 1: return launch_fill<uint8_t>(g, o, bits);
  case 2: return launch_fill<uint16_t>(g, o, bits);
  case 4: return launch_fill<uint32_t>(g, o, bits);
  default: return launch_fill<uint64_t>(g, o, bits);
  }
}

/* ---- arange ---- */
template <typename T> __global__ void arange_kernel(T *__restrict__ o, int64_t n, double start, double step) {
  for (int64_t k = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; k < n; k += (int64_t)gridDim.x * blockDim.x)
    o[k] = vr_cu_conv<T>::store(__dadd_rn(start, __dmul_rn((double)k, step)));
}
vr_status arange_fwd(const vr_kernel_args *a) {
  vr_tensor *t = a->out[0];
  int64_t n = vr_tensor_numel(t);
  if (!n) return VR_OK;
  VR_CU_ALL_SWITCH(t->dtype, "out[0]",
                   arange_kernel<T><<<vr_cu_blocks(n), VR_CU_THREADS, 0, vr_cuda_stream()>>>((T *)vr_data(t), n, a->f[0], a->f[1]));
  VR_CU_LAUNCHED("arange_kernel");
  return VR_OK;
}

/* ---- random: vr_philox_sample of core/philox.h, with the arithmetic pinned to round-to-nearest ---- */
__device__ __forceinline__ double sample(uint64_t seed, uint64_t stream, uint64_t counter, int kind, double a, double b) {
  uint32_t w[4];
  vr_philox_block(seed, stream, counter, w);
  if (kind == 0) return __dadd_rn(a, __dmul_rn(__dsub_rn(b, a), vr_philox_u01(w[0], w[1])));
  if (kind == 1) {
    double u1 = __dsub_rn(1.0, vr_philox_u01(w[0], w[1]));
    double u2 = vr_philox_u01(w[2], w[3]);
    double r = __dsqrt_rn(__dmul_rn(-2.0, log(u1)));
    return __dadd_rn(a, __dmul_rn(__dmul_rn(b, r), cos(__dmul_rn(6.283185307179586476925, u2))));
  }
  uint64_t range = (uint64_t)(b - a);
  uint64_t r = ((uint64_t)w[0] << 32) | w[1];
  return __dadd_rn(a, (double)(range ? r % range : 0));
}

template <typename T>
__global__ void rand_kernel(T *__restrict__ o, int64_t n, uint64_t seed, uint64_t stream, uint64_t off, int kind,
                            double a, double b) {
  for (int64_t k = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; k < n; k += (int64_t)gridDim.x * blockDim.x)
    o[k] = vr_cu_conv<T>::store(sample(seed, stream, off + (uint64_t)k, kind, a, b));
}
vr_status rand_fwd(const vr_kernel_args *a) {
  vr_tensor *t = a->out[0];
  int64_t n = vr_tensor_numel(t);
  if (!n) return VR_OK;
  if (a->sub < 0 || a->sub > 2) return VR_FAIL(VR_E_ARG, "sub: expected a VR_RAND_* kind, got %d", a->sub);
  VR_CU_ALL_SWITCH(t->dtype, "out[0]",
                   rand_kernel<T><<<vr_cu_blocks(n), VR_CU_THREADS, 0, vr_cuda_stream()>>>(
                       (T *)vr_data(t), n, (uint64_t)a->i[0], (uint64_t)a->i[1], (uint64_t)a->i[2], a->sub, a->f[0], a->f[1]));
  VR_CU_LAUNCHED("rand_kernel");
  return VR_OK;
}

} // namespace

extern "C" vr_status vr_cuda_copy_fwd(const vr_kernel_args *a) { return copy_fwd(a); }
extern "C" vr_status vr_cuda_fill_fwd(const vr_kernel_args *a) { return fill_fwd(a); }
extern "C" vr_status vr_cuda_arange_fwd(const vr_kernel_args *a) { return arange_fwd(a); }
extern "C" vr_status vr_cuda_rand_fwd(const vr_kernel_args *a) { return rand_fwd(a); }

extern "C" void vr_cuda_register_basic(void) {
  vr_kernel_register(VR_OP_COPY, VR_CUDA, vr_cuda_copy_fwd, NULL);
  vr_kernel_register(VR_OP_FILL, VR_CUDA, vr_cuda_fill_fwd, NULL);
  vr_kernel_register(VR_OP_ARANGE, VR_CUDA, vr_cuda_arange_fwd, NULL);
  vr_kernel_register(VR_OP_RAND, VR_CUDA, vr_cuda_rand_fwd, NULL);
}
