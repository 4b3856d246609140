/* linalg.cu: VR_OP_MATMUL through cuBLAS, with the argument layout of core/ops/linalg.c:
 *   in[0] = A [batch..., m, k], in[1] = B [batch..., k, n], out[0] = C [batch..., m, n], one
 *   ndim 2 + nb; batch strides of A and B may be 0; C fresh and dense (ldc = n);
 *   i[0] trans_a, i[1] trans_b, i[2] lda, i[3] ldb, i[4] ldc; row-major C_b = op(A_b) op(B_b).
 * cuBLAS is column-major, so it computes C^T = op(B)^T op(A)^T: the operands swap, a row-major
 * matrix is its own transpose seen column-major, and the trans flags carry over unchanged.
 * The last batch dim goes to cublas*GemmStridedBatched, outer batch dims loop on the host.
 * f32 runs without TF32 unless VISREG_CUDA_TF32=1; bf16 accumulates in f32 (cublasGemmEx). */
#include "common.cuh"
#include <cublas_v2.h>
#include <mutex>
#include <stdlib.h>

namespace {

std::mutex handle_mu;
cublasHandle_t handle = nullptr;

const char *cublas_str(cublasStatus_t s) { return cublasGetStatusString(s); }

#define VR_CUBLAS(call)                                                                                  \
  do {                                                                                                   \
    cublasStatus_t vr_cb_s_ = (call);                                                                    \
    if (vr_cb_s_ != CUBLAS_STATUS_SUCCESS)                                                               \
      return vr_error_set(VR_E_CUDA, __func__, __FILE__, __LINE__, "%s: %s", #call, cublas_str(vr_cb_s_)); \
  } while (0)

/* at exit, so that a leak check sees cuBLAS's workspace returned (runs before the allocator's
 * release and the runtime's teardown, which were registered earlier) */
void destroy_handle_at_exit(void) {
  std::lock_guard<std::mutex> lock(handle_mu);
  if (handle) cublasDestroy(handle);
  handle = nullptr;
}

vr_status get_handle(cublasHandle_t *out) {
  std::lock_guard<std::mutex> lock(handle_mu);
  if (!handle) {
    cublasHandle_t h = nullptr;
    VR_CUBLAS(cublasCreate(&h));
    cublasStatus_t s = cublasSetStream(h, vr_cuda_stream());
    const char *tf32 = getenv("VISREG_CUDA_TF32");
    if (s == CUBLAS_STATUS_SUCCESS)
      /* bf16 GEMMs: no split-K partial sums rounded to bf16 (seen as 1-2 ulp double rounding on an
       * H200 in the im2col conv), so the output is rounded once as on the CPU */
      s = cublasSetMathMode(h, (cublasMath_t)(((tf32 && tf32[0] == '1') ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH) |
                                              CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION));
    if (s != CUBLAS_STATUS_SUCCESS) {
      cublasDestroy(h);
      return VR_FAIL(VR_E_CUDA, "cublas setup: %s", cublas_str(s));
    }
    handle = h;
    atexit(destroy_handle_at_exit);
  }
  *out = handle;
  return VR_OK;
}

template <typename T>
vr_status gemm(cublasHandle_t h, cublasOperation_t ob, cublasOperation_t oa, int n, int m, int k, const T *B, int ldb,
               long long sb, const T *A, int lda, long long sa, T *C, int ldc, long long sc, int batch);

template <>
vr_status gemm<float>(cublasHandle_t h, cublasOperation_t ob, cublasOperation_t oa, int n, int m, int k, const float *B,
                      int ldb, long long sb, const float *A, int lda, long long sa, float *C, int ldc, long long sc,
                      int batch) {
  const float one = 1, zero = 0;
  VR_CUBLAS(cublasSgemmStridedBatched(h, ob, oa, n, m, k, &one, B, ldb, sb, A, lda, sa, &zero, C, ldc, sc, batch));
  return VR_OK;
}
template <>
vr_status gemm<double>(cublasHandle_t h, cublasOperation_t ob, cublasOperation_t oa, int n, int m, int k,
                       const double *B, int ldb, long long sb, const double *A, int lda, long long sa, double *C,
                       int ldc, long long sc, int batch) {
  const double one = 1, zero = 0;
  VR_CUBLAS(cublasDgemmStridedBatched(h, ob, oa, n, m, k, &one, B, ldb, sb, A, lda, sa, &zero, C, ldc, sc, batch));
  return VR_OK;
}
template <>
vr_status gemm<vr_bf16>(cublasHandle_t h, cublasOperation_t ob, cublasOperation_t oa, int n, int m, int k,
                        const vr_bf16 *B, int ldb, long long sb, const vr_bf16 *A, int lda, long long sa, vr_bf16 *C,
                        int ldc, long long sc, int batch) {
  const float one = 1, zero = 0;
  VR_CUBLAS(cublasGemmStridedBatchedEx(h, ob, oa, n, m, k, &one, B, CUDA_R_16BF, ldb, sb, A, CUDA_R_16BF, lda, sa,
                                       &zero, C, CUDA_R_16BF, ldc, sc, batch, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
  return VR_OK;
}

template <typename T> vr_status matmul_typed(const vr_kernel_args *a, cublasHandle_t h) {
  const vr_tensor *A = a->in[0], *B = a->in[1];
  vr_tensor *C = a->out[0];
  int nd = C->ndim, nb = nd - 2;
  int64_t m = C->shape[nd - 2], n = C->shape[nd - 1], k = A->shape[nd - 1];
  cublasOperation_t oa = a->i[0] ? CUBLAS_OP_T : CUBLAS_OP_N, ob = a->i[1] ? CUBLAS_OP_T : CUBLAS_OP_N;
  int64_t lda = a->i[2], ldb = a->i[3], ldc = a->i[4];
  const int64_t big = INT32_MAX;
  if (m > big || n > big || k > big || lda > big || ldb > big || ldc > big)
    return VR_FAIL(VR_E_UNSUPPORTED, "C: sizes beyond 2^31 are not supported by the CUDA matmul");
  /* last batch dim strided-batched; outer ones looped */
  int64_t inner = nb >= 1 ? C->shape[nd - 3] : 1;
  int64_t sa = nb >= 1 ? A->stride[nd - 3] : 0, sb = nb >= 1 ? B->stride[nd - 3] : 0, sc = nb >= 1 ? C->stride[nd - 3] : 0;
  int64_t outer = 1;
  for (int d = 0; d < nb - 1; d++) outer *= C->shape[d];
  for (int64_t o = 0; o < outer; o++) {
    int64_t r = o, oa_off = 0, ob_off = 0, oc_off = 0;
    for (int d = nb - 2; d >= 0; d--) {
      int64_t i = r % C->shape[d];
      r /= C->shape[d];
      oa_off += i * A->stride[d];
      ob_off += i * B->stride[d];
      oc_off += i * C->stride[d];
    }
    for (int64_t b0 = 0; b0 < inner; b0 += 65535) { /* batch counts stay modest per call */
      int cnt = (int)(inner - b0 < 65535 ? inner - b0 : 65535);
      VR_TRY(gemm<T>(h, ob, oa, (int)n, (int)m, (int)k, (const T *)vr_data(B) + ob_off + b0 * sb, (int)ldb, sb,
                     (const T *)vr_data(A) + oa_off + b0 * sa, (int)lda, sa, (T *)vr_data(C) + oc_off + b0 * sc, (int)ldc,
                     sc, cnt));
    }
  }
  return VR_OK;
}

vr_status matmul_fwd(const vr_kernel_args *a) {
  const vr_tensor *A = a->in[0], *B = a->in[1];
  vr_tensor *C = a->out[0];
  if (C->ndim < 2 || A->ndim != C->ndim || B->ndim != C->ndim)
    return VR_FAIL(VR_E_SHAPE, "A, B, C: expected one ndim >= 2, got %d, %d, %d", A->ndim, B->ndim, C->ndim);
  if (A->dtype != C->dtype || B->dtype != C->dtype)
    return VR_FAIL(VR_E_DTYPE, "A, B: expected %s like C, got %s, %s", vr_dtype_name(C->dtype), vr_dtype_name(A->dtype),
                   vr_dtype_name(B->dtype));
  int64_t numel = vr_tensor_numel(C);
  if (!numel) return VR_OK;
  if (A->shape[A->ndim - 1] == 0) { /* k == 0: zeros */
    VR_CU(cudaMemsetAsync(vr_data(C), 0, (size_t)numel * vr_dtype_size(C->dtype), vr_cuda_stream()));
    return VR_OK;
  }
  cublasHandle_t h = nullptr;
  VR_TRY(get_handle(&h));
  VR_CU_FLOAT_SWITCH(C->dtype, "C", return matmul_typed<T>(a, h));
  return VR_OK;
}

} // namespace

/* for other CUDA families (conv's im2col path) */
vr_status vr_cuda_cublas(cublasHandle_t *h) { return get_handle(h); }

extern "C" {
vr_status vr_cuda_matmul_fwd(const vr_kernel_args *a) { return matmul_fwd(a); }
void vr_cuda_register_linalg(void) { vr_kernel_register(VR_OP_MATMUL, VR_CUDA, vr_cuda_matmul_fwd, NULL); }
}
