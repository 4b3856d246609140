/* elementwise.cu: CUDA kernels of VR_OP_UNARY, VR_OP_BINARY (fwd and bwd) and VR_OP_WHERE, with
 * the argument layout of core/ops/elementwise.c:
 *  BINARY fwd: sub VR_BIN_*; in = {a, b} expanded to out's shape; out = {y}; comparisons write u8;
 *    y may alias a exactly (in-place ops).
 *  BINARY bwd: sub; in = {grad_y, a, b} of y's shape; out = {grad_a, grad_b}, either may be NULL.
 *    MAX/MIN split ties in halves; POW: grad_b = 0 where a == 0 and b >= 0.
 *  UNARY fwd: sub VR_UN_*; in = {x}; out = {y}; f[0] scalar / clamp low, f[1] clamp high.
 *  UNARY bwd: in = {grad_y, x, y}; out = {grad_x}.
 *  WHERE fwd: in = {cond (u8), a, b} expanded to out's shape; out = {y}.
 * f32 and bf16 compute in float, f64 in double, integers in int64 (div, pow and the transcendental
 * ops in double, as the CPU does). Every operand may be strided or broadcast (stride 0). */
#include "common.cuh"

namespace {

/* float/double overloads of the maths the kernels use */
__device__ __forceinline__ float m_exp(float x) { return expf(x); }
__device__ __forceinline__ double m_exp(double x) { return exp(x); }
__device__ __forceinline__ float m_log(float x) { return logf(x); }
__device__ __forceinline__ double m_log(double x) { return log(x); }
__device__ __forceinline__ float m_sqrt(float x) { return sqrtf(x); }
__device__ __forceinline__ double m_sqrt(double x) { return sqrt(x); }
__device__ __forceinline__ float m_abs(float x) { return fabsf(x); }
__device__ __forceinline__ double m_abs(double x) { return fabs(x); }
__device__ __forceinline__ float m_tanh(float x) { return tanhf(x); }
__device__ __forceinline__ double m_tanh(double x) { return tanh(x); }
__device__ __forceinline__ float m_erf(float x) { return erff(x); }
__device__ __forceinline__ double m_erf(double x) { return erf(x); }
__device__ __forceinline__ float m_erfinv(float x) { return erfinvf(x); }
__device__ __forceinline__ double m_erfinv(double x) { return erfinv(x); }
__device__ __forceinline__ float m_sin(float x) { return sinf(x); }
__device__ __forceinline__ double m_sin(double x) { return sin(x); }
__device__ __forceinline__ float m_cos(float x) { return cosf(x); }
__device__ __forceinline__ double m_cos(double x) { return cos(x); }
__device__ __forceinline__ float m_pow(float x, float y) { return powf(x, y); }
__device__ __forceinline__ double m_pow(double x, double y) { return pow(x, y); }

template <typename C> __device__ C un_eval(int kind, C x, C c0, C c1) {
  const C SQRT1_2 = (C)0.70710678118654752440, SQRT_2_OVER_PI = (C)0.79788456080286535588, GELU_C = (C)0.044715;
  switch (kind) {
  case VR_UN_NEG: return -x;
  case VR_UN_EXP: return m_exp(x);
  case VR_UN_LOG: return m_log(x);
  case VR_UN_SQRT: return m_sqrt(x);
  case VR_UN_RSQRT: return (C)1 / m_sqrt(x);
  case VR_UN_ABS: return m_abs(x);
  case VR_UN_TANH: return m_tanh(x);
  case VR_UN_SIGMOID: return x >= 0 ? (C)1 / ((C)1 + m_exp(-x)) : m_exp(x) / ((C)1 + m_exp(x));
  case VR_UN_RELU: return x > 0 ? x : (x != x ? x : (C)0);
  case VR_UN_GELU: return (C)0.5 * x * ((C)1 + m_erf(x * SQRT1_2));
  case VR_UN_GELU_TANH: return (C)0.5 * x * ((C)1 + m_tanh(SQRT_2_OVER_PI * (x + GELU_C * x * x * x)));
  case VR_UN_SIN: return m_sin(x);
  case VR_UN_COS: return m_cos(x);
  case VR_UN_SQUARE: return x * x;
  case VR_UN_CLAMP: return x < c0 ? c0 : (x > c1 ? c1 : x);
  case VR_UN_ERF: return m_erf(x);
  case VR_UN_ERFINV: return m_erfinv(x);
  case VR_UN_ADD_SCALAR: return x + c0;
  case VR_UN_MUL_SCALAR: return x * c0;
  case VR_UN_RSUB_SCALAR: return c0 - x;
  case VR_UN_RDIV_SCALAR: return c0 / x;
  case VR_UN_POW_SCALAR: return c0 == (C)2 ? x * x : m_pow(x, c0);
  }
  return (C)NAN;
}

template <typename C> __device__ C un_grad(int kind, C g, C x, C y, C c0, C c1) {
  const C SQRT1_2 = (C)0.70710678118654752440, INV_SQRT_2PI = (C)0.39894228040143267794,
          SQRT_2_OVER_PI = (C)0.79788456080286535588, GELU_C = (C)0.044715;
  switch (kind) {
  case VR_UN_NEG: return -g;
  case VR_UN_EXP: return g * y;
  case VR_UN_LOG: return g / x;
  case VR_UN_SQRT: return g * (C)0.5 / y;
  case VR_UN_RSQRT: return (C)-0.5 * g * y * y * y;
  case VR_UN_ABS: return x > 0 ? g : (x < 0 ? -g : (C)0);
  case VR_UN_TANH: return g * ((C)1 - y * y);
  case VR_UN_SIGMOID: return g * y * ((C)1 - y);
  case VR_UN_RELU: return x > 0 ? g : (C)0;
  case VR_UN_GELU:
    return g * ((C)0.5 * ((C)1 + m_erf(x * SQRT1_2)) + x * INV_SQRT_2PI * m_exp((C)-0.5 * x * x));
  case VR_UN_GELU_TANH: {
    C t = m_tanh(SQRT_2_OVER_PI * (x + GELU_C * x * x * x));
    return g * ((C)0.5 * ((C)1 + t) + (C)0.5 * x * ((C)1 - t * t) * SQRT_2_OVER_PI * ((C)1 + (C)3 * GELU_C * x * x));
  }
  case VR_UN_SIN: return g * m_cos(x);
  case VR_UN_COS: return -g * m_sin(x);
  case VR_UN_SQUARE: return (C)2 * g * x;
  case VR_UN_CLAMP: return (x >= c0 && x <= c1) ? g : (C)0;
  case VR_UN_ERF: return g * (C)1.1283791670955126 * m_exp(-x * x);
  case VR_UN_ERFINV: return g * (C)0.88622692545275801 * m_exp(y * y);
  case VR_UN_ADD_SCALAR: return g;
  case VR_UN_MUL_SCALAR: return g * c0;
  case VR_UN_RSUB_SCALAR: return -g;
  case VR_UN_RDIV_SCALAR: return -g * c0 / (x * x);
  case VR_UN_POW_SCALAR: return c0 == (C)0 ? (C)0 : g * c0 * m_pow(x, c0 - (C)1);
  }
  return (C)NAN;
}

/* ---- unary ---- */
template <typename T, bool Contig>
__global__ void unary_kernel(T *o, const T *x, vr_cu_geom g, int kind, double c0, double c1) {
  typedef typename vr_cu_acc<T>::type C;
  GRID_LOOP(i, g.numel) {
    int64_t oo = Contig ? i : vr_cu_offset(g, 0, i), xo = Contig ? i : vr_cu_offset(g, 1, i);
    o[oo] = vr_cu_st<T>(un_eval<C>(kind, vr_cu_ld<T>(x[xo]), (C)c0, (C)c1));
  }
}
/* integers through double, u8 wrapping like C as the CPU does */
template <typename T>
__global__ void unary_int_kernel(T *o, const T *x, vr_cu_geom g, int kind, double c0, double c1) {
  GRID_LOOP(i, g.numel) {
    double r = un_eval<double>(kind, (double)x[vr_cu_offset(g, 1, i)], c0, c1);
    if (sizeof(T) == 1 && r < 0) r = fmod(r, 256.0) + 256.0;
    o[vr_cu_offset(g, 0, i)] = (T)(int64_t)r;
  }
}

template <typename T> vr_status launch_unary(const vr_kernel_args *a, const vr_cu_geom &g) {
  T *o = (T *)vr_data(a->out[0]);
  const T *x = (const T *)vr_data(a->in[0]);
  cudaStream_t s = vr_cuda_stream();
  if (g.contiguous)
    unary_kernel<T, true><<<vr_cu_blocks(g.numel), VR_CU_THREADS, 0, s>>>(o, x, g, a->sub, a->f[0], a->f[1]);
  else
    unary_kernel<T, false><<<vr_cu_blocks(g.numel), VR_CU_THREADS, 0, s>>>(o, x, g, a->sub, a->f[0], a->f[1]);
  VR_CU_LAUNCHED("unary_kernel");
  return VR_OK;
}
template <typename T> vr_status launch_unary_int(const vr_kernel_args *a, const vr_cu_geom &g) {
  unary_int_kernel<T><<<vr_cu_blocks(g.numel), VR_CU_THREADS, 0, vr_cuda_stream()>>>(
      (T *)vr_data(a->out[0]), (const T *)vr_data(a->in[0]), g, a->sub, a->f[0], a->f[1]);
  VR_CU_LAUNCHED("unary_int_kernel");
  return VR_OK;
}

vr_status unary_fwd(const vr_kernel_args *a) {
  if (a->sub < VR_UN_NEG || a->sub > VR_UN_POW_SCALAR) return VR_FAIL(VR_E_ARG, "sub: expected a VR_UN_* kind, got %d", a->sub);
  vr_tensor *ts[2] = {a->out[0], a->in[0]};
  vr_cu_geom g;
  vr_cu_geom_init(&g, 2, ts);
  if (!g.numel) return VR_OK;
  switch (a->in[0]->dtype) {
  case VR_F32: return launch_unary<float>(a, g);
  case VR_F64: return launch_unary<double>(a, g);
  case VR_BF16: return launch_unary<vr_bf16>(a, g);
  case VR_I32: return launch_unary_int<int32_t>(a, g);
  case VR_I64: return launch_unary_int<int64_t>(a, g);
  case VR_U8: return launch_unary_int<uint8_t>(a, g);
  }
  return VR_CU_UNSUPPORTED_DTYPE("x", a->in[0]->dtype);
}

template <typename T>
__global__ void unary_bwd_kernel(T *o, const T *gy, const T *x, const T *y, vr_cu_geom g, int kind, double c0, double c1) {
  typedef typename vr_cu_acc<T>::type C;
  GRID_LOOP(i, g.numel) {
    int64_t oo, go, xo, yo;
    if (g.contiguous) {
      oo = go = xo = yo = i;
    } else {
      oo = vr_cu_offset(g, 0, i), go = vr_cu_offset(g, 1, i), xo = vr_cu_offset(g, 2, i), yo = vr_cu_offset(g, 3, i);
    }
    o[oo] = vr_cu_st<T>(un_grad<C>(kind, vr_cu_ld<T>(gy[go]), vr_cu_ld<T>(x[xo]), vr_cu_ld<T>(y[yo]), (C)c0, (C)c1));
  }
}

vr_status unary_bwd(const vr_kernel_args *a) {
  if (a->sub < VR_UN_NEG || a->sub > VR_UN_POW_SCALAR) return VR_FAIL(VR_E_ARG, "sub: expected a VR_UN_* kind, got %d", a->sub);
  vr_tensor *x = a->in[1] ? a->in[1] : a->in[0], *y = a->in[2] ? a->in[2] : x;
  vr_tensor *ts[4] = {a->out[0], a->in[0], x, y};
  vr_cu_geom g;
  vr_cu_geom_init(&g, 4, ts);
  if (!g.numel) return VR_OK;
  VR_CU_FLOAT_SWITCH(a->in[0]->dtype, "grad_y",
                     unary_bwd_kernel<T><<<vr_cu_blocks(g.numel), VR_CU_THREADS, 0, vr_cuda_stream()>>>(
                         (T *)vr_data(a->out[0]), (const T *)vr_data(a->in[0]), (const T *)vr_data(x),
                         (const T *)vr_data(y), g, a->sub, a->f[0], a->f[1]));
  VR_CU_LAUNCHED("unary_bwd_kernel");
  return VR_OK;
}

/* ---- binary ---- */
template <typename C> __device__ __forceinline__ C bin_eval(int kind, C x, C y) {
  switch (kind) {
  case VR_BIN_ADD: return x + y;
  case VR_BIN_SUB: return x - y;
  case VR_BIN_MUL: return x * y;
  case VR_BIN_DIV: return x / y;
  case VR_BIN_POW: return m_pow(x, y);
  case VR_BIN_MAX: return (x > y || x != x) ? x : y;
  case VR_BIN_MIN: return (x < y || x != x) ? x : y;
  }
  return x;
}
template <> __device__ __forceinline__ int64_t bin_eval<int64_t>(int kind, int64_t x, int64_t y) {
  switch (kind) {
  case VR_BIN_ADD: return x + y;
  case VR_BIN_SUB: return x - y;
  case VR_BIN_MUL: return x * y;
  case VR_BIN_DIV: return (int64_t)((double)x / (double)y);
  case VR_BIN_POW: return (int64_t)pow((double)x, (double)y);
  case VR_BIN_MAX: return x > y ? x : y;
  case VR_BIN_MIN: return x < y ? x : y;
  }
  return x;
}
template <typename T> struct bin_calc { typedef typename vr_cu_acc<T>::type type; };
template <> struct bin_calc<int32_t> { typedef int64_t type; };
template <> struct bin_calc<uint8_t> { typedef int64_t type; };
template <typename T> __device__ __forceinline__ typename bin_calc<T>::type bin_ld(T v) { return (typename bin_calc<T>::type)vr_cu_ld<T>(v); }
template <typename T> __device__ __forceinline__ T bin_st(typename bin_calc<T>::type v) { return vr_cu_st<T>(v); }
template <> __device__ __forceinline__ int32_t bin_st<int32_t>(int64_t v) { return (int32_t)v; }
template <> __device__ __forceinline__ uint8_t bin_st<uint8_t>(int64_t v) { return (uint8_t)v; }

template <typename T, bool Contig>
__global__ void binary_kernel(T *o, const T *A, const T *B, vr_cu_geom g, int kind) {
  typedef typename bin_calc<T>::type C;
  GRID_LOOP(i, g.numel) {
    int64_t oo = Contig ? i : vr_cu_offset(g, 0, i), ao = Contig ? i : vr_cu_offset(g, 1, i),
            bo = Contig ? i : vr_cu_offset(g, 2, i);
    o[oo] = bin_st<T>(bin_eval<C>(kind, bin_ld<T>(A[ao]), bin_ld<T>(B[bo])));
  }
}
template <typename T>
__global__ void compare_kernel(uint8_t *o, const T *A, const T *B, vr_cu_geom g, int kind) {
  typedef typename bin_calc<T>::type C;
  GRID_LOOP(i, g.numel) {
    C x = bin_ld<T>(A[vr_cu_offset(g, 1, i)]), y = bin_ld<T>(B[vr_cu_offset(g, 2, i)]);
    o[vr_cu_offset(g, 0, i)] = kind == VR_BIN_EQ ? x == y : kind == VR_BIN_GT ? x > y : x < y;
  }
}

template <typename T> vr_status launch_binary(const vr_kernel_args *a, const vr_cu_geom &g) {
  cudaStream_t s = vr_cuda_stream();
  const T *A = (const T *)vr_data(a->in[0]), *B = (const T *)vr_data(a->in[1]);
  if (a->sub >= VR_BIN_EQ) {
    compare_kernel<T><<<vr_cu_blocks(g.numel), VR_CU_THREADS, 0, s>>>((uint8_t *)vr_data(a->out[0]), A, B, g, a->sub);
    VR_CU_LAUNCHED("compare_kernel");
    return VR_OK;
  }
  T *o = (T *)vr_data(a->out[0]);
  if (g.contiguous)
    binary_kernel<T, true><<<vr_cu_blocks(g.numel), VR_CU_THREADS, 0, s>>>(o, A, B, g, a->sub);
  else
    binary_kernel<T, false><<<vr_cu_blocks(g.numel), VR_CU_THREADS, 0, s>>>(o, A, B, g, a->sub);
  VR_CU_LAUNCHED("binary_kernel");
  return VR_OK;
}

vr_status binary_fwd(const vr_kernel_args *a) {
  if (a->sub < VR_BIN_ADD || a->sub > VR_BIN_LT) return VR_FAIL(VR_E_ARG, "sub: expected a VR_BIN_* kind, got %d", a->sub);
  if (a->in[0]->dtype != a->in[1]->dtype)
    return VR_FAIL(VR_E_DTYPE, "b: expected %s like a, got %s", vr_dtype_name(a->in[0]->dtype), vr_dtype_name(a->in[1]->dtype));
  vr_tensor *ts[3] = {a->out[0], a->in[0], a->in[1]};
  vr_cu_geom g;
  vr_cu_geom_init(&g, 3, ts);
  if (!g.numel) return VR_OK;
  VR_CU_ALL_SWITCH(a->in[0]->dtype, "a", return launch_binary<T>(a, g));
  return VR_OK;
}

template <typename C> __device__ __forceinline__ C bin_grad(int kind, int which, C g, C a, C b) {
  switch (kind) {
  case VR_BIN_ADD: return g;
  case VR_BIN_SUB: return which ? -g : g;
  case VR_BIN_MUL: return which ? g * a : g * b;
  case VR_BIN_DIV: return which ? -g * a / (b * b) : g / b;
  case VR_BIN_POW:
    if (!which) return b == (C)0 ? (C)0 : g * b * m_pow(a, b - (C)1);
    return (a == (C)0 && b >= (C)0) ? (C)0 : g * m_pow(a, b) * m_log(a);
  case VR_BIN_MAX: {
    C s = which ? b : a, o = which ? a : b;
    return s > o ? g : (s == o ? (C)0.5 * g : (C)0);
  }
  case VR_BIN_MIN: {
    C s = which ? b : a, o = which ? a : b;
    return s < o ? g : (s == o ? (C)0.5 * g : (C)0);
  }
  }
  return (C)0;
}

template <typename T>
__global__ void binary_bwd_kernel(T *ga, T *gb, const T *G, const T *A, const T *B, vr_cu_geom g, int kind) {
  typedef typename vr_cu_acc<T>::type C;
  GRID_LOOP(i, g.numel) {
    C gv = vr_cu_ld<T>(G[vr_cu_offset(g, 1, i)]), av = vr_cu_ld<T>(A[vr_cu_offset(g, 2, i)]),
      bv = vr_cu_ld<T>(B[vr_cu_offset(g, 3, i)]);
    if (ga) ga[vr_cu_offset(g, 0, i)] = vr_cu_st<T>(bin_grad<C>(kind, 0, gv, av, bv));
    if (gb) gb[vr_cu_offset(g, 4, i)] = vr_cu_st<T>(bin_grad<C>(kind, 1, gv, av, bv));
  }
}

vr_status binary_bwd(const vr_kernel_args *a) {
  if (a->sub < VR_BIN_ADD || a->sub > VR_BIN_MIN)
    return VR_FAIL(VR_E_ARG, "sub: expected a differentiable VR_BIN_* kind, got %d", a->sub);
  vr_tensor *oa = a->out[0], *ob = a->out[1];
  if (!oa && !ob) return VR_OK;
  /* one geometry over {grad_a, grad_y, a, b, grad_b}; an absent output borrows the other's strides */
  vr_tensor *ts[5] = {oa ? oa : ob, a->in[0], a->in[1], a->in[2], ob ? ob : oa};
  vr_cu_geom g;
  vr_cu_geom_init(&g, 5, ts);
  if (!g.numel) return VR_OK;
  VR_CU_FLOAT_SWITCH(a->in[0]->dtype, "grad_y",
                     binary_bwd_kernel<T><<<vr_cu_blocks(g.numel), VR_CU_THREADS, 0, vr_cuda_stream()>>>(
                         oa ? (T *)vr_data(oa) : nullptr, ob ? (T *)vr_data(ob) : nullptr, (const T *)vr_data(a->in[0]),
                         (const T *)vr_data(a->in[1]), (const T *)vr_data(a->in[2]), g, a->sub));
  VR_CU_LAUNCHED("binary_bwd_kernel");
  return VR_OK;
}

} // namespace

extern "C" {
vr_status vr_cuda_unary_fwd(const vr_kernel_args *a) { return unary_fwd(a); }
vr_status vr_cuda_unary_bwd(const vr_kernel_args *a) { return unary_bwd(a); }
vr_status vr_cuda_binary_fwd(const vr_kernel_args *a) { return binary_fwd(a); }
vr_status vr_cuda_binary_bwd(const vr_kernel_args *a) { return binary_bwd(a); }

void vr_cuda_register_elementwise(void) {
  vr_kernel_register(VR_OP_UNARY, VR_CUDA, vr_cuda_unary_fwd, vr_cuda_unary_bwd);
  vr_kernel_register(VR_OP_BINARY, VR_CUDA, vr_cuda_binary_fwd, vr_cuda_binary_bwd);
}
}
