/* bench_losses.c: `visreg bench losses`: times forward + backward of each regularizer on a
 * random f32 V x B x D batch (median of repeated runs after warm-up; new slices every run, as in
 * training) and reports VISReg's time against the floor set by its two GEMMs (4 V B D K flops):
 * the same two sgemms, timed alternately with it. --scaling adds the time ratios
 * when B, D and K are each doubled. Without --B/--D/--K it runs the PyTorch peer's CPU sizes
 * (shared/peers/torch_anchor.py): (B, D, K) = (256, 512, 256) and (1024, 512, 1024), V = 2; with
 * --device cuda, its four GPU sizes (256, 2048, 256) .. (4096, 512, 4096). */
#include "../core/visreg.h"
#include "commands.h"
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}
static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}
static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_d);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* The floor of VISReg: its two GEMMs (4 V B D K flops), the forward projection and the backward
 * product as the kernel calls them, timed alone, alternately with the loss itself so that both see
 * the same machine load. On CUDA (through the public matmul, i.e. cuBLAS) the floor adds one read
 * and write of the projections (an elementwise pass over V B x K), the GPU floor the CUDA kernel is compared with. */
typedef struct {
  vr_device dev;
  float *x, *w, *p, *h;        /* CPU: host buffers for cblas */
  vr_tensor *tx, *tw, *twt;    /* CUDA: X (M x D), W (D x K) and its transposed view */
  int64_t M, D, K;
} gemm_pair;

static int gemm_pair_init(gemm_pair *g, vr_device dev, int64_t M, int64_t D, int64_t K) {
  memset(g, 0, sizeof *g);
  g->dev = dev, g->M = M, g->D = D, g->K = K;
  if (dev == VR_CUDA) {
    vr_generator *gen = NULL;
    int bad = vr_generator_new(2, 0, &gen) || vr_rand_normal(gen, 2, (int64_t[]){M, D}, 0, 1, VR_F32, dev, &g->tx) ||
              vr_rand_normal(gen, 2, (int64_t[]){D, K}, 0, 1, VR_F32, dev, &g->tw) || vr_transpose(g->tw, 0, 1, &g->twt);
    vr_generator_free(gen);
    return bad ? -1 : 0;
  }
  g->x = malloc(sizeof(float) * (size_t)(M * D));
  g->w = malloc(sizeof(float) * (size_t)(D * K));
  g->p = malloc(sizeof(float) * (size_t)(M * K));
  g->h = malloc(sizeof(float) * (size_t)(M * D));
  if (!g->x || !g->w || !g->p || !g->h) return -1;
  for (int64_t i = 0; i < M * D; i++) g->x[i] = (float)((i * 7 % 13) - 6) * 0.1f;
  for (int64_t i = 0; i < D * K; i++) g->w[i] = (float)((i * 5 % 11) - 5) * 0.1f;
  return 0;
}
static void gemm_pair_free(gemm_pair *g) {
  free(g->x);
  free(g->w);
  free(g->p);
  free(g->h);
  vr_tensor_free(g->twt);
  vr_tensor_free(g->tw);
  vr_tensor_free(g->tx);
}
static double gemm_pair_ms(gemm_pair *g) {
  if (g->dev == VR_CUDA) {
    vr_tensor *p = NULL, *h = NULL, *p2 = NULL;
    if (vr_cuda_synchronize()) return -1;
    double t0 = now_ms();
    int bad = vr_matmul(g->tx, g->tw, &p) || vr_matmul(p, g->twt, &h) || vr_mul_scalar(p, 2.0, &p2) ||
              vr_cuda_synchronize();
    double t = now_ms() - t0;
    vr_tensor_free(p);
    vr_tensor_free(h);
    vr_tensor_free(p2);
    return bad ? -1 : t;
  }
  int M = (int)g->M, D = (int)g->D, K = (int)g->K;
  double t0 = now_ms();
  /* exactly the kernel's calls (kernels/cpu/reg_sliced.inc, one chunk): P^T = W^T X^T, H = P W^T */
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasTrans, K, M, D, 1, g->w, K, g->x, D, 0, g->p, M);
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasTrans, M, D, K, 1, g->p, M, g->w, K, 0, g->h, D);
  return now_ms() - t0;
}

typedef struct {
  int64_t V, B, D, K;
  vr_device dev;
  int reps, warm;
} cfg;

static const char *all_methods[] = {"visreg", "swd", "sigreg", "vicreg", "vicreg_pooled", "barlow"};

static vr_status run_once(const char *m, vr_tensor *z, int64_t K, uint64_t step) {
  vr_tensor *L = NULL;
  vr_status st;
  if (!strcmp(m, "visreg")) st = vr_visreg(z, NULL, K, 0, step, 1, 1, 1, &L, NULL);
  else if (!strcmp(m, "swd")) st = vr_swd(z, NULL, K, 0, step, &L);
  else if (!strcmp(m, "sigreg")) st = vr_sigreg(z, NULL, K, 0, step, 17, 3.0, &L);
  else if (!strcmp(m, "vicreg")) st = vr_vicreg(z, 25, 25, 1, &L, NULL);
  else if (!strcmp(m, "vicreg_pooled") || !strcmp(m, "vicreg_repo")) st = vr_vicreg_pooled(z, 25, 1, &L, NULL);
  else st = vr_barlow(z, 0.0051, &L);
  if (!st) st = vr_backward(L, NULL, 0);
  vr_tensor_free(L);
  vr_tensor_set_grad(z, NULL);
  return st;
}

/* median ms of forward + backward, or a negative value on error; with gp, the GEMM pair is timed
 * before each run and its median stored in *gemm_ms */
static double time_method(const char *m, const cfg *c, int64_t B, int64_t D, int64_t K, gemm_pair *gp,
                          double *gemm_ms) {
  vr_generator *g = NULL;
  vr_tensor *z = NULL;
  if (vr_generator_new(1, 0, &g) || vr_rand_normal(g, 3, (int64_t[]){c->V, B, D}, 0, 1, VR_F32, c->dev, &z)) {
    vr_generator_free(g);
    return -1;
  }
  vr_generator_free(g);
  vr_tensor_set_requires_grad(z, 1);
  double *ts = malloc(sizeof(double) * (size_t)c->reps), *tg = malloc(sizeof(double) * (size_t)c->reps), r = -1;
  uint64_t step = 0;
  for (int i = 0; i < c->warm; i++) {
    if (gp) gemm_pair_ms(gp);
    if (run_once(m, z, K, step++)) goto done;
  }
  for (int i = 0; i < c->reps; i++) {
    if (gp) tg[i] = gemm_pair_ms(gp);
    /* device work is asynchronous: time from an idle device to the end of the step's kernels */
    if (c->dev == VR_CUDA && vr_cuda_synchronize()) goto done;
    double t0 = now_ms();
    if (run_once(m, z, K, step++)) goto done;
    if (c->dev == VR_CUDA && vr_cuda_synchronize()) goto done;
    ts[i] = now_ms() - t0;
  }
  r = median(ts, c->reps);
  if (gp) *gemm_ms = median(tg, c->reps);
done:
  free(ts);
  free(tg);
  vr_tensor_free(z);
  return r;
}

static void usage(void) {
  fprintf(stderr, "usage: visreg bench losses [--V 2] [--B N --D N --K N] [--methods visreg,swd,sigreg,vicreg,"
                  "vicreg_pooled,barlow] [--reps 7] [--warmup 2] [--threads N] [--scaling] [--json] [--device cpu|cuda]\n");
}

int vr_bench_losses(int argc, char **argv) {
  cfg c = {.V = 2, .dev = VR_CPU, .reps = 7, .warm = 2};
  int64_t B = 0, D = 0, K = 0;
  int json = 0, scaling = 0;
  char methods[256] = "visreg,swd,sigreg,vicreg,vicreg_pooled,barlow";
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--json")) json = 1;
    else if (!strcmp(a, "--scaling")) scaling = 1;
    else if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(); return 0; }
    else if (!v) { fprintf(stderr, "visreg bench losses: %s needs a value\n", a); usage(); return 2; }
    else {
      i++;
      long long n = atoll(v);
      if (!strcmp(a, "--V")) c.V = n;
      else if (!strcmp(a, "--B")) B = n;
      else if (!strcmp(a, "--D")) D = n;
      else if (!strcmp(a, "--K")) K = n;
      else if (!strcmp(a, "--reps")) c.reps = (int)n;
      else if (!strcmp(a, "--warmup")) c.warm = (int)n;
      else if (!strcmp(a, "--threads")) vr_set_num_threads((int)n);
      else if (!strcmp(a, "--methods")) snprintf(methods, sizeof methods, "%s", v);
      else if (!strcmp(a, "--device")) {
        if (!strcmp(v, "cpu")) c.dev = VR_CPU;
        else if (!strcmp(v, "cuda")) c.dev = VR_CUDA;
        else { fprintf(stderr, "visreg bench losses: --device: expected cpu or cuda, got '%s'\n", v); return 2; }
      } else { fprintf(stderr, "visreg bench losses: unknown option '%s'\n", a); usage(); return 2; }
    }
  }
  if (c.V < 1 || c.reps < 1 || c.warm < 0 || B < 0 || D < 0 || K < 0) {
    fprintf(stderr, "visreg bench losses: expected V >= 1, reps >= 1, warmup >= 0 and positive sizes\n");
    return 2;
  }
  if (c.dev == VR_CUDA && !vr_cuda_available()) {
    fprintf(stderr, "visreg bench losses: --device cuda: no CUDA device in this build or machine\n");
    return 2;
  }
  /* the peer's sizes (shared/peers/torch_anchor.py): its CPU pair, or its four CUDA sizes */
  int64_t sizes[4][3] = {{256, 512, 256}, {1024, 512, 1024}};
  int nsizes = 2;
  if (c.dev == VR_CUDA) {
    int64_t gpu[4][3] = {{256, 2048, 256}, {1024, 2048, 1024}, {4096, 2048, 1024}, {4096, 512, 4096}};
    memcpy(sizes, gpu, sizeof gpu);
    nsizes = 4;
  }
  if (B || D || K) {
    sizes[0][0] = B ? B : 256;
    sizes[0][1] = D ? D : 512;
    sizes[0][2] = K ? K : 256;
    nsizes = 1;
  }
  if (!json)
    printf("# visreg bench losses: %s, %d threads, OpenBLAS %s, f32, V = %lld, forward+backward median of %d after %d "
           "warm-up\n", c.dev == VR_CPU ? "cpu" : vr_cuda_device_name(), vr_num_threads(), openblas_get_corename(),
           (long long)c.V, c.reps, c.warm);
  if (!json && !scaling)
    printf("%-12s %6s %6s %6s %12s %12s %10s\n", "method", "B", "D", "K", "fwd+bwd ms", "gemm floor", "x floor");
  if (!json && scaling)
    printf("%-12s %6s %6s %6s %12s %8s %8s %8s\n", "method", "B", "D", "K", "fwd+bwd ms", "2B", "2D", "2K");
  int rc = 0;
  for (int s = 0; s < nsizes; s++) {
    int64_t b = sizes[s][0], d = sizes[s][1], k = sizes[s][2];
    char list[256];
    snprintf(list, sizeof list, "%s", methods);
    for (char *save = NULL, *m = strtok_r(list, ",", &save); m; m = strtok_r(NULL, ",", &save)) {
      int known = 0;
      for (size_t i = 0; i < sizeof all_methods / sizeof *all_methods; i++) known |= !strcmp(m, all_methods[i]) || !strcmp(m, "vicreg_repo");
      if (!known) {
        fprintf(stderr, "visreg bench losses: unknown method '%s'\n", m);
        return 2;
      }
      if (!strcmp(m, "vicreg") && c.V != 2) continue; /* the official form takes two views */
      gemm_pair gp;
      int with_floor = !strcmp(m, "visreg") && !gemm_pair_init(&gp, c.dev, c.V * b, d, k);
      if (!with_floor && !strcmp(m, "visreg")) gemm_pair_free(&gp);
      double floor_ms = 0, rate = 0;
      double t = time_method(m, &c, b, d, k, with_floor ? &gp : NULL, &floor_ms);
      if (with_floor) {
        gemm_pair_free(&gp);
        rate = 4.0 * (double)c.V * b * d * k / (floor_ms * 1e6); /* GFLOP/s */
      }
      if (t < 0) {
        fprintf(stderr, "visreg bench losses: %s: %s\n", m, vr_last_error());
        rc = 1;
        continue;
      }
      int sliced = !strcmp(m, "visreg") || !strcmp(m, "swd") || !strcmp(m, "sigreg");
      double r2[3] = {0, 0, 0};
      if (scaling) {
        r2[0] = time_method(m, &c, 2 * b, d, k, NULL, NULL) / t;
        r2[1] = time_method(m, &c, b, 2 * d, k, NULL, NULL) / t;
        r2[2] = sliced ? time_method(m, &c, b, d, 2 * k, NULL, NULL) / t : 1.0;
      }
      if (json) {
        printf("{\"loss\": \"%s\", \"device\": \"%s\", \"threads\": %d, \"V\": %lld, \"B\": %lld, \"D\": %lld, \"K\": %lld, "
               "\"fwd_bwd_ms\": %.4f",
               m, c.dev == VR_CPU ? "cpu" : "cuda", vr_num_threads(), (long long)c.V, (long long)b, (long long)d,
               (long long)k, t);
        if (rate > 0 && !strcmp(m, "visreg"))
          printf(", \"sgemm_gflops\": %.2f, \"openblas_core\": \"%s\", \"gemm_floor_ms\": %.4f, \"x_floor\": %.3f", rate,
                 openblas_get_corename(), floor_ms, t / floor_ms);
        if (scaling) printf(", \"ratio_2B\": %.3f, \"ratio_2D\": %.3f, \"ratio_2K\": %.3f", r2[0], r2[1], r2[2]);
        printf("}\n");
      } else if (scaling) {
        char k2[16] = "-";
        if (sliced) snprintf(k2, sizeof k2, "%.2f", r2[2]);
        printf("%-12s %6lld %6lld %6lld %12.3f %8.2f %8.2f %8s\n", m, (long long)b, (long long)d, (long long)k, t, r2[0],
               r2[1], k2);
      } else if (!strcmp(m, "visreg") && rate > 0) {
        printf("%-12s %6lld %6lld %6lld %12.3f %12.3f %10.2f\n", m, (long long)b, (long long)d, (long long)k, t, floor_ms,
               t / floor_ms);
      } else {
        printf("%-12s %6lld %6lld %6lld %12.3f %12s %10s\n", m, (long long)b, (long long)d, (long long)k, t, "", "");
      }
      if (!json && rate > 0)
        printf("# the floor: two %s of VISReg's flops (%lld x %lld x %lld)%s, %.1f GFLOP/s, timed alternately\n",
               c.dev == VR_CUDA ? "cuBLAS GEMMs" : "sgemms", (long long)(c.V * b), (long long)d, (long long)k,
               c.dev == VR_CUDA ? " + one pass over the projections" : "", rate);
      fflush(stdout);
    }
  }
  return rc;
}
