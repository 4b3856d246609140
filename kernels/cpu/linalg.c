/* linalg.c: the CPU matmul kernel: one OpenBLAS gemm per batch matrix (args documented in
 * core/ops/linalg.c). Transposed operands go to BLAS with the trans flag, never copied.
 * bf16 (the autocast path and the reference for the CUDA bf16 GEMM): the operands are widened to
 * dense f32 copies (exact), multiplied by the f32 gemm (f32 accumulation) and the result rounded
 * to bf16 (nearest even). Correct rather than fast.
 * Also eigh and svd through OpenBLAS's LAPACK (syevd, gesdd), and their host-staged entries in the
 * CUDA column. */
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

static vr_status vr_cpu_matmul_fwd(const vr_kernel_args *a) {
  if (a->out[0]->dtype == VR_BF16) {
    if (a->in[0]->dtype != VR_BF16 || a->in[1]->dtype != VR_BF16)
      return VR_FAIL(VR_E_DTYPE, "A, B: expected bf16 like C, got %s, %s", vr_dtype_name(a->in[0]->dtype),
                     vr_dtype_name(a->in[1]->dtype));
    return matmul_bf16(a);
  }
  return matmul_fwd(a);
}


/* ---------------------------------------------------------------- eigh and svd through LAPACK
 *
 * OpenBLAS carries LAPACK (reference Fortran built with gfortran) but Debian ships no lapack.h
 * beside it, so the Fortran prototypes are declared here: every argument by reference, 32-bit
 * integers (OpenBLAS's default interface), the hidden lengths of the character arguments last.
 * Fortran is column-major: a row-major buffer read column-major is the matrix's transpose.
 */
#include <math.h>
#include <stdlib.h>

void ssyevd_(const char *jobz, const char *uplo, const int *n, float *a, const int *lda, float *w, float *work,
             const int *lwork, int *iwork, const int *liwork, int *info, size_t jobz_len, size_t uplo_len);
void dsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w, double *work,
             const int *lwork, int *iwork, const int *liwork, int *info, size_t jobz_len, size_t uplo_len);
void sgesdd_(const char *jobz, const int *m, const int *n, float *a, const int *lda, float *s, float *u,
             const int *ldu, float *vt, const int *ldvt, float *work, const int *lwork, int *iwork, int *info,
             size_t jobz_len);
void dgesdd_(const char *jobz, const int *m, const int *n, double *a, const int *lda, double *s, double *u,
             const int *ldu, double *vt, const int *ldvt, double *work, const int *lwork, int *iwork, int *info,
             size_t jobz_len);

/* Some of OpenBLAS's LAPACK routines (dormbr, dormqr, ... which syevd and gesdd call) join two
 * option strings for ILAENV with libgfortran's _gfortran_concat_string; that is the only symbol
 * of the Fortran runtime they need, and linking libgfortran statically drags in its whole I/O
 * library (and libquadmath). This is that function (gfortran >= 8: lengths are size_t); weak, so
 * a program that links libgfortran gets the original. */
__attribute__((weak)) void _gfortran_concat_string(size_t destlen, char *dest, size_t len1, const char *s1,
                                                    size_t len2, const char *s2);
__attribute__((weak)) void _gfortran_concat_string(size_t destlen, char *dest, size_t len1, const char *s1,
                                                    size_t len2, const char *s2) {
  if (len1 >= destlen) {
    memcpy(dest, s1, destlen);
    return;
  }
  memcpy(dest, s1, len1);
  dest += len1;
  destlen -= len1;
  if (len2 >= destlen) {
    memcpy(dest, s2, destlen);
    return;
  }
  memcpy(dest, s2, len2);
  memset(dest + len2, ' ', destlen - len2);
}

/* the first non-finite element of a dense row-major rows x cols matrix (its lower triangle only
 * when asked), as a linear index, or -1. Such values (and a failure to converge) are the caller's
 * errors: those messages name the public function (vr_eigh, vr_svd). */
static int64_t first_nonfinite(const void *p, vr_dtype dt, int64_t rows, int64_t cols, int lower) {
  for (int64_t i = 0; i < rows; i++)
    for (int64_t j = 0; j < (lower && i + 1 < cols ? i + 1 : cols); j++) {
      int64_t k = i * cols + j;
      double v = dt == VR_F32 ? (double)((const float *)p)[k] : ((const double *)p)[k];
      if (!isfinite(v)) return k;
    }
  return -1;
}

/* VR_E_VALUE naming the first non-finite element of the rows x cols matrix a (lower: only its
 * lower triangle is read), reported as func's; VR_OK when every element read is finite */
static vr_status check_finite(const char *func, const vr_tensor *a, int64_t rows, int64_t cols, int lower) {
  int64_t bad = first_nonfinite(vr_data((vr_tensor *)a), a->dtype, rows, cols, lower);
  if (bad < 0) return VR_OK;
  return vr_error_set(VR_E_VALUE, func, __FILE__, __LINE__, "a: expected finite values, got %g at [%lld, %lld]",
                      vr_load((char *)vr_data((vr_tensor *)a) + (size_t)bad * vr_dtype_size(a->dtype), a->dtype),
                      (long long)(bad / cols), (long long)(bad % cols));
}

/* a LAPACK workspace size from a query's answer (a float for f32: round up, then a margin) */
static vr_status work_size(double q, int64_t at_least, int *out) {
  double w = ceil(q * (1 + 1e-6)) + 1;
  if (w < (double)at_least) w = (double)at_least;
  if (!(w <= (double)INT_MAX))
    return VR_FAIL(VR_E_UNSUPPORTED, "a: LAPACK workspace of %.0f elements beyond 32-bit sizes", w);
  *out = (int)w;
  return VR_OK;
}

static void *work_alloc(size_t count, size_t es) { return malloc((count ? count : 1) * es); }

/* VR_OP_EIGH on the CPU: syevd. A row-major n x n buffer read column-major is A^T, whose upper
 * triangle is A's lower one: uplo 'U' reads A's lower triangle. The eigenvectors come back as the
 * columns of a column-major matrix, i.e. as the rows of the row-major buffer, hence the transpose. */
static vr_status vr_cpu_eigh_fwd(const vr_kernel_args *a) {
  vr_tensor *A = a->in[0], *L = a->out[0], *V = a->n_out > 1 ? a->out[1] : NULL;
  vr_dtype dt = A->dtype;
  int64_t n64 = A->shape[0];
  if (dt != VR_F32 && dt != VR_F64)
    return VR_FAIL(VR_E_UNSUPPORTED, "a: eigh on cpu supports f32 and f64, got %s", vr_dtype_name(dt));
  if (n64 > 46340) /* n * n must fit LAPACK's 32-bit sizes */
    return VR_FAIL(VR_E_UNSUPPORTED, "a: eigh of a %lld x %lld matrix is beyond 32-bit LAPACK sizes", (long long)n64,
                   (long long)n64);
  if (n64 == 0) return VR_OK;
  size_t es = vr_dtype_size(dt), nn = (size_t)(n64 * n64);
  vr_status fin = check_finite("vr_eigh", A, n64, n64, 1);
  if (fin) return fin;
  int n = (int)n64, lwork = -1, liwork = -1, info = 0, iq = 0;
  const char *jobz = V ? "V" : "N";
  void *m = V ? vr_data(V) : work_alloc(nn, es), *work = NULL;
  int *iwork = NULL;
  vr_status st = VR_OK;
  if (!m) return VR_FAIL(VR_E_OOM, "a: out of host memory for a %d x %d work matrix", n, n);
  memcpy(m, vr_data(A), nn * es);
  blas_follow_threads();
  double q;
  if (dt == VR_F32) {
    float fq = 0;
    ssyevd_(jobz, "U", &n, m, &n, vr_data(L), &fq, &lwork, &iq, &liwork, &info, 1, 1);
    q = fq;
  } else {
    dsyevd_(jobz, "U", &n, m, &n, vr_data(L), &q, &lwork, &iq, &liwork, &info, 1, 1);
  }
  if (info != 0) {
    st = VR_FAIL(VR_E_INTERNAL, "a: LAPACK %ssyevd workspace query: info %d", dt == VR_F32 ? "s" : "d", info);
    goto done;
  }
  VR_TRYG(work_size(q, 1, &lwork));
  liwork = iq > 1 ? iq : 1;
  work = work_alloc((size_t)lwork, es);
  iwork = work_alloc((size_t)liwork, sizeof(int));
  if (!work || !iwork) {
    st = VR_FAIL(VR_E_OOM, "a: out of host memory for the LAPACK workspace (%d elements)", lwork);
    goto done;
  }
  if (dt == VR_F32) ssyevd_(jobz, "U", &n, m, &n, vr_data(L), work, &lwork, iwork, &liwork, &info, 1, 1);
  else dsyevd_(jobz, "U", &n, m, &n, vr_data(L), work, &lwork, iwork, &liwork, &info, 1, 1);
  if (info < 0) {
    st = VR_FAIL(VR_E_INTERNAL, "a: LAPACK %ssyevd: argument %d had an illegal value", dt == VR_F32 ? "s" : "d", -info);
    goto done;
  }
  if (info > 0) {
    st = vr_error_set(VR_E_VALUE, "vr_eigh", __FILE__, __LINE__,
                      "a: did not converge (LAPACK %ssyevd info %d: the %d x %d matrix is too ill-conditioned or "
                      "has too many repeated eigenvalues)", dt == VR_F32 ? "s" : "d", info, n, n);
    goto done;
  }
  if (V) { /* rows -> columns */
    for (int i = 0; i < n; i++)
      for (int j = i + 1; j < n; j++) {
        if (dt == VR_F32) {
          float *f = m, t = f[(size_t)i * n + j];
          f[(size_t)i * n + j] = f[(size_t)j * n + i];
          f[(size_t)j * n + i] = t;
        } else {
          double *d = m, t = d[(size_t)i * n + j];
          d[(size_t)i * n + j] = d[(size_t)j * n + i];
          d[(size_t)j * n + i] = t;
        }
      }
  }
done:
  if (!V) free(m);
  free(work);
  free(iwork);
  return st;
}

/* VR_OP_SVD on the CPU: gesdd on A^T (A's row-major buffer read column-major, n x m, lda n).
 * A^T = U' S V'^T gives A = V' S U'^T: LAPACK's U' (n x k, ldu n) read row-major is vh (k x n)
 * and its V'^T (k x m, ldvt k) read row-major is u (m x k), so both land in place. */
static vr_status vr_cpu_svd_fwd(const vr_kernel_args *a) {
  vr_tensor *A = a->in[0], *S = a->out[0], *U = a->n_out > 1 ? a->out[1] : NULL, *VH = a->n_out > 2 ? a->out[2] : NULL;
  vr_dtype dt = A->dtype;
  int64_t m64 = A->shape[0], n64 = A->shape[1], k64 = m64 < n64 ? m64 : n64;
  if (dt != VR_F32 && dt != VR_F64)
    return VR_FAIL(VR_E_UNSUPPORTED, "a: svd on cpu supports f32 and f64, got %s", vr_dtype_name(dt));
  if ((U == NULL) != (VH == NULL)) return VR_FAIL(VR_E_INTERNAL, "u, vh: expected both or neither");
  if (m64 > INT_MAX || n64 > INT_MAX || m64 * n64 > INT_MAX)
    return VR_FAIL(VR_E_UNSUPPORTED, "a: svd of a %lld x %lld matrix is beyond 32-bit LAPACK sizes", (long long)m64,
                   (long long)n64);
  if (k64 == 0) return VR_OK;
  size_t es = vr_dtype_size(dt), mn = (size_t)(m64 * n64);
  vr_status fin = check_finite("vr_svd", A, m64, n64, 0);
  if (fin) return fin;
  /* LAPACK's view: M' = n rows, N' = m columns */
  int M = (int)n64, N = (int)m64, k = (int)k64, lwork = -1, info = 0, ldu = M, ldvt = k;
  const char *jobz = U ? "S" : "N";
  void *w = work_alloc(mn, es), *work = NULL;
  int *iwork = malloc(sizeof(int) * 8 * (size_t)k);
  void *pu = U ? vr_data(VH) : NULL, *pvt = U ? vr_data(U) : NULL;
  float fdummy[1];
  double ddummy[1];
  vr_status st = VR_OK;
  if (!w || !iwork) {
    st = VR_FAIL(VR_E_OOM, "a: out of host memory for a %d x %d work matrix", N, M);
    goto done;
  }
  if (!U) { /* not referenced with jobz 'N', but the leading dims must still be >= 1 */
    pu = dt == VR_F32 ? (void *)fdummy : (void *)ddummy;
    pvt = pu;
    ldu = ldvt = 1;
  }
  memcpy(w, vr_data(A), mn * es);
  blas_follow_threads();
  double q;
  if (dt == VR_F32) {
    float fq = 0;
    sgesdd_(jobz, &M, &N, w, &M, vr_data(S), pu, &ldu, pvt, &ldvt, &fq, &lwork, iwork, &info, 1);
    q = fq;
  } else {
    dgesdd_(jobz, &M, &N, w, &M, vr_data(S), pu, &ldu, pvt, &ldvt, &q, &lwork, iwork, &info, 1);
  }
  if (info != 0) {
    st = VR_FAIL(VR_E_INTERNAL, "a: LAPACK %sgesdd workspace query: info %d", dt == VR_F32 ? "s" : "d", info);
    goto done;
  }
  VR_TRYG(work_size(q, 1, &lwork));
  work = work_alloc((size_t)lwork, es);
  if (!work) {
    st = VR_FAIL(VR_E_OOM, "a: out of host memory for the LAPACK workspace (%d elements)", lwork);
    goto done;
  }
  if (dt == VR_F32) sgesdd_(jobz, &M, &N, w, &M, vr_data(S), pu, &ldu, pvt, &ldvt, work, &lwork, iwork, &info, 1);
  else dgesdd_(jobz, &M, &N, w, &M, vr_data(S), pu, &ldu, pvt, &ldvt, work, &lwork, iwork, &info, 1);
  if (info < 0)
    st = VR_FAIL(VR_E_INTERNAL, "a: LAPACK %sgesdd: argument %d had an illegal value", dt == VR_F32 ? "s" : "d", -info);
  else if (info > 0)
    st = vr_error_set(VR_E_VALUE, "vr_svd", __FILE__, __LINE__,
                      "a: did not converge (LAPACK %sgesdd info %d on the %d x %d matrix)", dt == VR_F32 ? "s" : "d",
                      info, N, M);
done:
  free(w);
  free(work);
  free(iwork);
  return st;
}

/* The CUDA column's eigh and svd until a cuSOLVER kernel exists (the CUDA backend registers after
 * this one and would replace them): the inputs are copied to host tensors, the CPU kernel runs
 * there, and its results are copied into the device outputs. */
static vr_status host_staged(const vr_kernel_args *a, vr_kernel_fn fn) {
  vr_kernel_args h = *a;
  vr_status st = VR_OK;
  for (int k = 0; k < 8; k++) h.in[k] = NULL;
  for (int k = 0; k < 4; k++) h.out[k] = NULL;
  for (int k = 0; k < a->n_in; k++) {
    VR_TRYG(vr_tensor_alloc(a->in[k]->ndim, a->in[k]->shape, a->in[k]->dtype, VR_CPU, &h.in[k]));
    VR_TRYG(vr_copy_(h.in[k], a->in[k]));
  }
  for (int k = 0; k < a->n_out; k++)
    VR_TRYG(vr_tensor_alloc(a->out[k]->ndim, a->out[k]->shape, a->out[k]->dtype, VR_CPU, &h.out[k]));
  VR_TRYG(fn(&h));
  for (int k = 0; k < a->n_out; k++) VR_TRYG(vr_copy_(a->out[k], h.out[k]));
done:
  for (int k = 0; k < 8; k++) vr_tensor_free(h.in[k]);
  for (int k = 0; k < 4; k++) vr_tensor_free(h.out[k]);
  return st;
}
static vr_status vr_cuda_eigh_fwd(const vr_kernel_args *a) { return host_staged(a, vr_cpu_eigh_fwd); }
static vr_status vr_cuda_svd_fwd(const vr_kernel_args *a) { return host_staged(a, vr_cpu_svd_fwd); }

void vr_cpu_register_linalg(void) {
  vr_kernel_register(VR_OP_MATMUL, VR_CPU, vr_cpu_matmul_fwd, NULL);
  vr_kernel_register(VR_OP_EIGH, VR_CPU, vr_cpu_eigh_fwd, NULL);
  vr_kernel_register(VR_OP_SVD, VR_CPU, vr_cpu_svd_fwd, NULL);
  vr_kernel_register(VR_OP_EIGH, VR_CUDA, vr_cuda_eigh_fwd, NULL);
  vr_kernel_register(VR_OP_SVD, VR_CUDA, vr_cuda_svd_fwd, NULL);
}
