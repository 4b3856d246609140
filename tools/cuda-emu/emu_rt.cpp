/* emu_rt.cpp: the emulator's runtime: thread and block indices, scratch memory, a naive GEMM for
 * vr_cu_gemm_rm, a generic COPY, and a host-memory "CUDA" device whose kernel column holds the
 * emulated kernels. See tools/cuda-emu/run. */
#include "kernels/cuda/gemm.cuh"
#include <cstdio>
thread_local emu_dim3 threadIdx, blockIdx;
emu_dim3 blockDim, gridDim;
uint64_t emu_shfl_buf[1024];
std::barrier<> *emu_bar;
unsigned char *emu_dynsmem;
cudaStream_t vr_cuda_stream(void) { return nullptr; }
/* device memory: 64-byte aligned; under EMU_SAN=1 exactly the size asked for, so AddressSanitizer
 * catches a kernel that reads or writes past the end of a buffer */
static void *emu_mem(size_t n, size_t slack) {
#if defined(__SANITIZE_ADDRESS__)
  (void)slack;
  void *p = nullptr;
  return posix_memalign(&p, 64, n ? n : 1) ? nullptr : p;
#else
  return aligned_alloc(64, (n + 63) / 64 * 64 + slack);
#endif
}
vr_status vr_cuda_scratch(size_t n, void **p) { *p = emu_mem(n, 0); memset(*p, 0xCD, n); return VR_OK; }
void vr_cuda_scratch_free(void *p, size_t) { free(p); }
vr_status vr_cuda_tickets(size_t n, unsigned **p) { /* zeroed counters, grown on demand (never freed) */
  static std::vector<unsigned> t;
  if (t.size() < n) t.assign(n, 0u);
  *p = t.data();
  return VR_OK;
}
template <typename T> static void gemm_t(int ta, int tb, int64_t m, int64_t n, int64_t k, double alpha, const T *A, int64_t lda,
                                         const T *B, int64_t ldb, double beta, T *C, int64_t ldc) {
  for (int64_t i = 0; i < m; i++)
    for (int64_t j = 0; j < n; j++) {
      double s = 0;
      for (int64_t p = 0; p < k; p++) s += (double)(ta ? A[p * lda + i] : A[i * lda + p]) * (double)(tb ? B[j * ldb + p] : B[p * ldb + j]);
      C[i * ldc + j] = (T)(alpha * s + (beta == 0 ? 0 : beta * (double)C[i * ldc + j]));
    }
}
/* bf16 as cuBLAS's GemmEx with f32 compute: products summed wide, one rounding to bf16 */
static void gemm_bf16(int ta, int tb, int64_t m, int64_t n, int64_t k, double alpha, const vr_bf16 *A, int64_t lda,
                      const vr_bf16 *B, int64_t ldb, double beta, vr_bf16 *C, int64_t ldc) {
  for (int64_t i = 0; i < m; i++)
    for (int64_t j = 0; j < n; j++) {
      double s = 0;
      for (int64_t p = 0; p < k; p++)
        s += (double)vr_bf16_to_f(ta ? A[p * lda + i] : A[i * lda + p]) * (double)vr_bf16_to_f(tb ? B[j * ldb + p] : B[p * ldb + j]);
      C[i * ldc + j] = vr_f_to_bf16((float)(alpha * s + (beta == 0 ? 0 : beta * (double)vr_bf16_to_f(C[i * ldc + j]))));
    }
}
vr_status vr_cu_gemm_rm(vr_dtype dt, int ta, int tb, int64_t m, int64_t n, int64_t k, double alpha, const void *A, int64_t lda,
                        const void *B, int64_t ldb, double beta, void *C, int64_t ldc) {
  if (dt == VR_F32) gemm_t<float>(ta, tb, m, n, k, alpha, (const float *)A, lda, (const float *)B, ldb, beta, (float *)C, ldc);
  else if (dt == VR_F64) gemm_t<double>(ta, tb, m, n, k, alpha, (const double *)A, lda, (const double *)B, ldb, beta, (double *)C, ldc);
  else if (dt == VR_BF16) gemm_bf16(ta, tb, m, n, k, alpha, (const vr_bf16 *)A, lda, (const vr_bf16 *)B, ldb, beta, (vr_bf16 *)C, ldc);
  else return VR_FAIL(VR_E_UNSUPPORTED, "emu gemm dtype");
  return VR_OK;
}
/* TF32 tensor cores read each float with 10 mantissa bits (rounded to nearest here) */
static double tf32(float x) {
  uint32_t u;
  memcpy(&u, &x, 4);
  u = (u + 0xFFFu + ((u >> 13) & 1u)) & 0xFFFFE000u;
  float r;
  memcpy(&r, &u, 4);
  return r;
}
vr_status vr_cu_gemm_rm_3xtf32(int ta, int tb, int64_t m, int64_t n, int64_t k, double alpha, const float *Ah,
                               const float *Al, int64_t lda, const float *Bh, const float *Bl, int64_t ldb, double beta,
                               float *C, int64_t ldc) {
  for (int64_t i = 0; i < m; i++)
    for (int64_t j = 0; j < n; j++) {
      double s = 0;
      for (int64_t p = 0; p < k; p++) {
        int64_t ia = ta ? p * lda + i : i * lda + p, ib = tb ? j * ldb + p : p * ldb + j;
        s += tf32(Al[ia]) * tf32(Bh[ib]) + tf32(Ah[ia]) * tf32(Bl[ib]) + tf32(Ah[ia]) * tf32(Bh[ib]);
      }
      C[i * ldc + j] = (float)(alpha * s + (beta == 0 ? 0 : beta * (double)C[i * ldc + j]));
    }
  return VR_OK;
}
extern "C" {
int emu_avail(void) { return 1; }
void vr_cuda_register_basic(void);
void vr_cuda_register_elementwise(void);
void vr_cuda_register_reduce(void);
void vr_cuda_register_norm(void);
void vr_cuda_register_index(void);
void vr_cuda_register_sort(void);
void vr_cuda_register_pool(void);
void vr_cuda_register_conv(void);
void vr_cuda_register_reg(void);
void vr_cuda_register_optim(void);
void vr_cuda_register_augment(void);
}
static double ld(const void *p, vr_dtype dt) {
  switch (dt) {
  case VR_F32: return *(const float *)p; case VR_F64: return *(const double *)p; case VR_I32: return *(const int32_t *)p;
  case VR_I64: return (double)*(const int64_t *)p; case VR_U8: return *(const uint8_t *)p;
  default: { uint32_t u = (uint32_t)*(const uint16_t *)p << 16; float f; memcpy(&f, &u, 4); return f; }
  }
}
static void st(void *p, vr_dtype dt, double v) {
  switch (dt) {
  case VR_F32: *(float *)p = (float)v; break; case VR_F64: *(double *)p = v; break; case VR_I32: *(int32_t *)p = (int32_t)v; break;
  case VR_I64: *(int64_t *)p = (int64_t)v; break; case VR_U8: *(uint8_t *)p = (uint8_t)v; break;
  default: { float f = (float)v; uint32_t u; memcpy(&u, &f, 4); u += 0x7fff + ((u >> 16) & 1); *(uint16_t *)p = (uint16_t)(u >> 16); }
  }
}
/* generic strided copy between any dtypes (the CUDA column's COPY) */
static vr_status emu_copy(const vr_kernel_args *a) {
  const vr_tensor *s = a->in[0]; vr_tensor *d = a->out[0];
  int64_t n = vr_tensor_numel(d), idx[8] = {0};
  for (int64_t e = 0; e < n; e++) {
    int64_t r = e, so = s->offset, dof = d->offset;
    for (int k = d->ndim - 1; k >= 0; k--) { idx[k] = r % d->shape[k]; r /= d->shape[k]; so += idx[k] * s->stride[k]; dof += idx[k] * d->stride[k]; }
    st((char *)d->storage->data + dof * vr_dtype_size(d->dtype), d->dtype,
             ld((char *)s->storage->data + so * vr_dtype_size(s->dtype), s->dtype));
  }
  return VR_OK;
}
static vr_status h_alloc(size_t n, void **p) {
  *p = n >> 40 ? nullptr : emu_mem(n, 64); /* a terabyte or more: no such device */
  return *p ? VR_OK : VR_FAIL(VR_E_OOM, "emu: could not allocate %zu bytes", n);
}
static void h_free(void *p, size_t) { free(p); }
static vr_status h_copy(void *d, const void *s, size_t n, int) { memcpy(d, s, n); return VR_OK; }
static vr_status h_sync(void) { return VR_OK; }
__attribute__((constructor(200))) static void emu_register(void) {
  static const vr_device_api api = {h_alloc, h_free, h_copy, h_sync, nullptr, nullptr, nullptr};
  vr_backends_init();
  vr_device_register(VR_CUDA, &api);
  vr_kernel_register(VR_OP_COPY, VR_CUDA, emu_copy, NULL);
  /* the foundation's basic, elementwise and reduction kernels, for the public-API cases */
  vr_cuda_register_basic();
  vr_cuda_register_elementwise();
  vr_cuda_register_where();
  vr_cuda_register_reduce();
  vr_cuda_register_norm();
  /* index, sort, pooling, conv, regularizers, optimizer, augmentations, as on a GPU */
  vr_cuda_register_index();
  vr_cuda_register_sort();
  vr_cuda_register_pool();
  vr_cuda_register_conv();
  vr_cuda_register_reg();
  vr_cuda_register_optim();
  vr_cuda_register_augment();
}
