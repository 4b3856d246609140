/* gemm.cu: a row-major GEMM on cuBLAS for the conv fallback and the regularizers:
 * C[m, n] = alpha op(A) op(B) + beta C, op(A) m x k, op(B) k x n, leading dims as stored (row-major).
 * cuBLAS is column-major, so it computes C^T = op(B)^T op(A)^T with the operands swapped; the
 * transpose flags carry over unchanged. The handle is linalg.cu's (the backend's stream; TF32 only
 * when VISREG_CUDA_TF32=1). f32, f64, and bf16 accumulating in f32. */
#include "gemm.cuh"
#include <cublas_v2.h>

vr_status vr_cuda_cublas(cublasHandle_t *h); /* kernels/cuda/linalg.cu */

/* cuBLAS takes int sizes: VR_E_UNSUPPORTED beyond them; else the handle */
static vr_status gemm_setup(int64_t m, int64_t n, int64_t k, int64_t lda, int64_t ldb, int64_t ldc, cublasHandle_t *h) {
  const int64_t big = INT32_MAX;
  if (m > big || n > big || k > big || lda > big || ldb > big || ldc > big)
    return VR_FAIL(VR_E_UNSUPPORTED, "C: GEMM sizes beyond 2^31 are not supported on CUDA");
  return vr_cuda_cublas(h);
}

vr_status vr_cu_gemm_rm(vr_dtype dt, int ta, int tb, int64_t m, int64_t n, int64_t k, double alpha, const void *A,
                        int64_t lda, const void *B, int64_t ldb, double beta, void *C, int64_t ldc) {
  if (m == 0 || n == 0) return VR_OK;
  cublasHandle_t h = nullptr;
  VR_TRY(gemm_setup(m, n, k, lda, ldb, ldc, &h));
  cublasOperation_t oa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, ob = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
  cublasStatus_t s;
  if (k == 0) { /* op(A) op(B) is empty: C = beta C, for beta 0 or 1 */
    if (beta == 0) {
      size_t es = vr_dtype_size(dt);
      VR_CU(cudaMemset2DAsync(C, (size_t)ldc * es, 0, (size_t)n * es, (size_t)m, vr_cuda_stream()));
      return VR_OK;
    }
    if (beta == 1) return VR_OK;
    return VR_FAIL(VR_E_INTERNAL, "k: 0 with beta %g is not supported", beta);
  }
  switch (dt) {
  case VR_F32: {
    float al = (float)alpha, be = (float)beta;
    s = cublasSgemm(h, ob, oa, (int)n, (int)m, (int)k, &al, (const float *)B, (int)ldb, (const float *)A, (int)lda, &be,
                    (float *)C, (int)ldc);
    break;
  }
  case VR_F64:
    s = cublasDgemm(h, ob, oa, (int)n, (int)m, (int)k, &alpha, (const double *)B, (int)ldb, (const double *)A, (int)lda,
                    &beta, (double *)C, (int)ldc);
    break;
  case VR_BF16: {
    float al = (float)alpha, be = (float)beta;
    s = cublasGemmEx(h, ob, oa, (int)n, (int)m, (int)k, &al, B, CUDA_R_16BF, (int)ldb, A, CUDA_R_16BF, (int)lda, &be, C,
                     CUDA_R_16BF, (int)ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    break;
  }
  default: return VR_CU_UNSUPPORTED_DTYPE("A", dt);
  }
  if (s != CUBLAS_STATUS_SUCCESS) return VR_FAIL(VR_E_CUDA, "cublas gemm (%lld x %lld x %lld): %s", (long long)m,
                                                 (long long)n, (long long)k, cublasGetStatusString(s));
  return VR_OK;
}

/* C = alpha (Ah Bh + Ah Bl + Al Bh) + beta C in f32 on TF32 tensor cores ("3xTF32"): with
 * A = Ah + Al and B = Bh + Bl split so that Ah, Bh hold TF32's 10 mantissa bits (reg_sliced.cu),
 * the three products carry every bit a float product has but the Al Bl term (2^-22 relative),
 * accumulated in f32: the precision of an SGEMM at the tensor cores' rate. The small terms go
 * first so that the large one is added last. */
vr_status vr_cu_gemm_rm_3xtf32(int ta, int tb, int64_t m, int64_t n, int64_t k, double alpha, const float *Ah,
                               const float *Al, int64_t lda, const float *Bh, const float *Bl, int64_t ldb, double beta,
                               float *C, int64_t ldc) {
  if (m == 0 || n == 0) return VR_OK;
  if (k == 0) return vr_cu_gemm_rm(VR_F32, ta, tb, m, n, k, alpha, Ah, lda, Bh, ldb, beta, C, ldc);
  cublasHandle_t h = nullptr;
  VR_TRY(gemm_setup(m, n, k, lda, ldb, ldc, &h));
  cublasOperation_t oa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, ob = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
  const float *as[3] = {Al, Ah, Ah}, *bs[3] = {Bh, Bl, Bh};
  float al = (float)alpha;
  for (int t = 0; t < 3; t++) {
    float be = t == 0 ? (float)beta : 1.0f;
    cublasStatus_t s = cublasGemmEx(h, ob, oa, (int)n, (int)m, (int)k, &al, bs[t], CUDA_R_32F, (int)ldb, as[t], CUDA_R_32F,
                                    (int)lda, &be, C, CUDA_R_32F, (int)ldc, CUBLAS_COMPUTE_32F_FAST_TF32, CUBLAS_GEMM_DEFAULT);
    if (s != CUBLAS_STATUS_SUCCESS)
      return VR_FAIL(VR_E_CUDA, "cublas 3xTF32 gemm (%lld x %lld x %lld): %s", (long long)m, (long long)n, (long long)k,
                     cublasGetStatusString(s));
  }
  return VR_OK;
}
