/* linalg.c: the CPU matmul kernel: one OpenBLAS gemm per batch matrix (args documented in
 * core/ops/linalg.c). Transposed operands go to BLAS with the trans flag, never copied.
 * bf16 (the autocast path and the reference for the CUDA bf16 GEMM): the operands are widened to
 * dense f32 copies (exact), multiplied by the f32 gemm (f32 accumulation) and the result rounded
 * to bf16 (nearest even). Correct rather than fast. */
#include "cpu.h"
#include <cblas.h>
#include <limits.h>
#include <omp.h>

/* OpenBLAS runs a gemm on one thread when m*n*k is at most this (SMP_THRESHOLD_MIN * 4 in its
 * interface/gemm.c); below it we spread the batch over our threads instead. */
#define VR_GEMM_SMALL 262144.0

/* OpenBLAS keeps its own thread count; follow the library's (vr_set_num_threads) so that one
 * setting governs every kernel. Only outside parallel regions: it is a process-wide setting. */
static void blas_follow_threads(void) {
  if (omp_in_parallel()) return;
  int want = omp_get_max_threads();
  if (openblas_get_num_threads() != want) openblas_set_num_threads(want);
}

static vr_status matmul_fwd(const vr_kernel_args *a) {
  vr_tensor *A = a->in[0], *B = a->in[1], *C = a->out[0];
  int nd = C->ndim, nbd = nd - 2;
  int64_t m = C->shape[nd - 2], n = C->shape[nd - 1], k = A->shape[nd - 1];
  int ta = (int)a->i[0], tb = (int)a->i[1];
  int64_t lda = a->i[2], ldb = a->i[3], ldc = a->i[4];
  vr_dtype dt = C->dtype;
  if (dt != VR_F32 && dt != VR_F64)
    return VR_FAIL(VR_E_UNSUPPORTED, "C: matmul on cpu supports f32, f64 and bf16, got %s", vr_dtype_name(dt));
  if (m > INT_MAX || n > INT_MAX || k > INT_MAX || lda > INT_MAX || ldb > INT_MAX || ldc > INT_MAX)
    return VR_FAIL(VR_E_UNSUPPORTED, "C: matrix sizes beyond 32-bit BLAS indices (m %lld, n %lld, k %lld)",
                   (long long)m, (long long)n, (long long)k);
  int64_t nbatch = 1;
  for (int d = 0; d < nbd; d++) nbatch *= C->shape[d];
  if (m == 0 || n == 0 || nbatch == 0) return VR_OK;
  size_t es = vr_dtype_size(dt);
  char *pa = vr_data(A), *pb = vr_data(B), *pc = vr_data(C);
  blas_follow_threads();
  int par = nbatch > 1 && (double)m * (double)n * (double)(k ? k : 1) <= VR_GEMM_SMALL;
#pragma omp parallel for if (par) schedule(static)
  for (int64_t bi = 0; bi < nbatch; bi++) {
    int64_t oa = 0, ob = 0, oc = 0, r = bi;
    for (int d = nbd - 1; d >= 0; d--) {
      int64_t ix = r % C->shape[d];
      r /= C->shape[d];
      oa += ix * A->stride[d];
      ob += ix * B->stride[d];
      oc += ix * C->stride[d];
    }
    char *c = pc + (size_t)oc * es;
    if (k == 0) {
      for (int64_t row = 0; row < m; row++) memset(c + (size_t)(row * ldc) * es, 0, (size_t)n * es);
      continue;
    }
    enum CBLAS_TRANSPOSE tA = ta ? CblasTrans : CblasNoTrans, tB = tb ? CblasTrans : CblasNoTrans;
    if (dt == VR_F32)
      cblas_sgemm(CblasRowMajor, tA, tB, (int)m, (int)n, (int)k, 1.0f, (const float *)(pa + (size_t)oa * es), (int)lda,
                  (const float *)(pb + (size_t)ob * es), (int)ldb, 0.0f, (float *)c, (int)ldc);
    else
      cblas_dgemm(CblasRowMajor, tA, tB, (int)m, (int)n, (int)k, 1.0, (const double *)(pa + (size_t)oa * es), (int)lda,
                  (const double *)(pb + (size_t)ob * es), (int)ldb, 0.0, (double *)c, (int)ldc);
  }
  return VR_OK;
}

/* a dense f32 copy of t (any strides, stride-0 dims materialised) */
static vr_status widen(const vr_tensor *t, vr_tensor **out) {
  VR_TRY(vr_tensor_alloc(t->ndim, t->shape, VR_F32, VR_CPU, out));
  vr_kernel_args c = {.in = {(vr_tensor *)t}, .n_in = 1, .out = {*out}, .n_out = 1};
  return vr_dispatch(VR_OP_COPY, VR_CPU, 0, &c);
}

static vr_status matmul_bf16(const vr_kernel_args *a) {
  vr_tensor *A = NULL, *B = NULL, *C = NULL;
  vr_status st;
  int nd = a->out[0]->ndim;
  int64_t k = a->in[0]->shape[nd - 1], n = a->out[0]->shape[nd - 1];
  VR_TRYG(widen(a->in[0], &A));
  VR_TRYG(widen(a->in[1], &B));
  VR_TRYG(vr_tensor_alloc(nd, a->out[0]->shape, VR_F32, VR_CPU, &C));
  vr_kernel_args f = {.in = {A, B}, .n_in = 2, .out = {C}, .n_out = 1,
                      .i = {0, 0, k > 1 ? k : 1, n > 1 ? n : 1, n > 1 ? n : 1}};
  VR_TRYG(matmul_fwd(&f));
  vr_kernel_args c = {.in = {C}, .n_in = 1, .out = {a->out[0]}, .n_out = 1};
  VR_TRYG(vr_dispatch(VR_OP_COPY, VR_CPU, 0, &c));
done:
  vr_tensor_free(A);
  vr_tensor_free(B);
  vr_tensor_free(C);
  return st;
}

static vr_status matmul_any(const vr_kernel_args *a) {
  if (a->out[0]->dtype == VR_BF16) {
    if (a->in[0]->dtype != VR_BF16 || a->in[1]->dtype != VR_BF16)
      return VR_FAIL(VR_E_DTYPE, "A, B: expected bf16 like C, got %s, %s", vr_dtype_name(a->in[0]->dtype),
                     vr_dtype_name(a->in[1]->dtype));
    return matmul_bf16(a);
  }
  return matmul_fwd(a);
}

void vr_cpu_register_linalg(void) { vr_kernel_register(VR_OP_MATMUL, VR_CPU, matmul_any, NULL); }
