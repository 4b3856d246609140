/* bench_ops.c: `visreg bench ops [--quick] [--runs N] [--threads N]`: GFLOP/s of f32 matmul through
 * vr_matmul and through cblas_sgemm directly on the same buffers, and of conv2d forward+backward
 * (batch 256, 64->64 channels, 28x28, 3x3, padding 1) beside the sgemm rate. Each figure is the
 * median of several timed runs after a warm-up; the sgemm reference runs interleaved with what it
 * is compared to, so that a shared machine's load weighs on both alike. */
#include "../core/visreg.h"
#include "commands.h"
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_dbl(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}
static double median(double *t, int n) {
  qsort(t, (size_t)n, sizeof *t, cmp_dbl);
  return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

#define BENCH_TRY(expr) do { if ((expr) != VR_OK) { fprintf(stderr, "bench ops: %s\n", vr_last_error()); goto fail; } } while (0)

int vr_bench_ops(int argc, char **argv) {
  int quick = 0, runs = 5;
  for (int k = 1; k < argc; k++) {
    if (!strcmp(argv[k], "--quick")) quick = 1;
    else if (!strcmp(argv[k], "--runs") && k + 1 < argc) runs = atoi(argv[++k]);
    else if (!strcmp(argv[k], "--threads") && k + 1 < argc) vr_set_num_threads(atoi(argv[++k]));
    else {
      fprintf(stderr, "usage: visreg bench ops [--quick] [--runs N] [--threads N]\n");
      return 2;
    }
  }
  if (runs < 1) runs = 1;
  if (runs > 64) runs = 64;
  const int warm = 2;
  double t[64];
  int rc = 1;
  vr_generator *g = NULL;
  vr_tensor *A = NULL, *B = NULL, *C = NULL, *x = NULL, *w = NULL, *y = NULL, *gy = NULL;
  BENCH_TRY(vr_generator_new(0, 0, &g));
  printf("visreg bench ops%s: %d threads, median of %d runs after %d warm-up\n", quick ? " --quick" : "",
         vr_num_threads(), runs, warm);

  /* ---- matmul ---- */
  int64_t n = quick ? 256 : 1024;
  int64_t sq[2] = {n, n};
  BENCH_TRY(vr_rand_uniform(g, 2, sq, -1, 1, VR_F32, VR_CPU, &A));
  BENCH_TRY(vr_rand_uniform(g, 2, sq, -1, 1, VR_F32, VR_CPU, &B));
  BENCH_TRY(vr_tensor_zeros(2, sq, VR_F32, VR_CPU, &C));
  double flops = 2.0 * n * n * n, tb[64];
  const float *pa = vr_tensor_data(A), *pb = vr_tensor_data(B);
  float *pc = vr_tensor_data(C);
  /* the two alternate, so that load from other processes weighs on both alike */
  for (int r = -warm; r < runs; r++) {
    vr_tensor *o = NULL;
    double t0 = now();
    BENCH_TRY(vr_matmul(A, B, &o));
    double t1 = now();
    vr_tensor_free(o);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)n, (int)n, 1.0f, pa, (int)n, pb, (int)n, 0.0f,
                pc, (int)n);
    double t2 = now();
    if (r >= 0) {
      t[r] = t1 - t0;
      tb[r] = t2 - t1;
    }
  }
  double mm = flops / median(t, runs) * 1e-9;
  double blas = flops / median(tb, runs) * 1e-9;
  printf("matmul f32 %lldx%lldx%lld  vr_matmul    %8.1f GFLOP/s\n", (long long)n, (long long)n, (long long)n, mm);
  printf("matmul f32 %lldx%lldx%lld  cblas_sgemm  %8.1f GFLOP/s\n", (long long)n, (long long)n, (long long)n, blas);
  printf("matmul ratio vr_matmul / cblas_sgemm = %.2f (target >= 0.90)\n", mm / blas);

  /* ---- conv2d forward + backward ---- */
  int64_t N = quick ? 16 : 256, Ci = 64, Co = 64, H = 28, W = 28;
  int64_t xs[4] = {N, Ci, H, W}, ws[4] = {Co, Ci, 3, 3}, ys[4] = {N, Co, H, W};
  BENCH_TRY(vr_rand_uniform(g, 4, xs, -1, 1, VR_F32, VR_CPU, &x));
  BENCH_TRY(vr_rand_uniform(g, 4, ws, -0.1, 0.1, VR_F32, VR_CPU, &w));
  BENCH_TRY(vr_rand_uniform(g, 4, ys, -1, 1, VR_F32, VR_CPU, &gy));
  BENCH_TRY(vr_tensor_set_requires_grad(x, 1));
  BENCH_TRY(vr_tensor_set_requires_grad(w, 1));
  double cflops = 3.0 * 2.0 * N * Co * Ci * 9 * H * W;
  double tf[64];
  for (int r = -warm; r < runs; r++) {
    double t0 = now();
    BENCH_TRY(vr_conv2d(x, w, NULL, 1, 1, 1, 1, 1, 1, 1, &y));
    double t1 = now();
    BENCH_TRY(vr_backward(y, gy, 0));
    double t2 = now();
    vr_tensor_free(y);
    y = NULL;
    vr_tensor_set_grad(x, NULL);
    vr_tensor_set_grad(w, NULL);
    /* an sgemm between conv runs: the reference rate under the same load */
    double t3 = now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)n, (int)n, 1.0f, pa, (int)n, pb, (int)n, 0.0f,
                pc, (int)n);
    double t4 = now();
    if (r >= 0) {
      t[r] = t2 - t0;
      tf[r] = t1 - t0;
      tb[r] = t4 - t3;
    }
  }
  double conv = cflops / median(t, runs) * 1e-9, convf = cflops / 3 / median(tf, runs) * 1e-9;
  double blas2 = flops / median(tb, runs) * 1e-9;
  printf("conv2d f32 N=%lld %lld->%lld %lldx%lld 3x3 pad 1  forward      %8.1f GFLOP/s\n", (long long)N,
         (long long)Ci, (long long)Co, (long long)H, (long long)W, convf);
  printf("conv2d f32 N=%lld %lld->%lld %lldx%lld 3x3 pad 1  fwd+bwd      %8.1f GFLOP/s (3 x forward flops)\n",
         (long long)N, (long long)Ci, (long long)Co, (long long)H, (long long)W, conv);
  printf("cblas_sgemm %lld^3 between the conv runs             %8.1f GFLOP/s\n", (long long)n, blas2);
  printf("conv2d ratio fwd+bwd / cblas_sgemm = %.2f (target >= 0.60)\n", conv / blas2);
  rc = 0;
fail:
  vr_tensor_free(A);
  vr_tensor_free(B);
  vr_tensor_free(C);
  vr_tensor_free(x);
  vr_tensor_free(w);
  vr_tensor_free(y);
  vr_tensor_free(gy);
  vr_generator_free(g);
  return rc;
}
