/* gemm.cuh: row-major GEMMs on cuBLAS for the regularizers and the convolutions (gemm.cu):
 * plain, and 3xTF32 (f32 precision on TF32 tensor cores). */
#ifndef VISREG_CUDA_GEMM_CUH
#define VISREG_CUDA_GEMM_CUH
#include "common.cuh"

/* row-major C[m, n] = alpha op(A) op(B) + beta C on cuBLAS (f32, f64, bf16); gemm.cu */
vr_status vr_cu_gemm_rm(vr_dtype dt, int ta, int tb, int64_t m, int64_t n, int64_t k, double alpha, const void *A,
                        int64_t lda, const void *B, int64_t ldb, double beta, void *C, int64_t ldc);

/* C = alpha (Ah Bh + Ah Bl + Al Bh) + beta C on TF32 tensor cores, operands split as hi + lo (f32
 * precision at the tensor cores' rate); gemm.cu */
vr_status vr_cu_gemm_rm_3xtf32(int ta, int tb, int64_t m, int64_t n, int64_t k, double alpha, const float *Ah,
                               const float *Al, int64_t lda, const float *Bh, const float *Bl, int64_t ldb, double beta,
                               float *C, int64_t ldc);
#endif
