/* bench_losses.c: `visreg bench losses`: times forward + backward of each regularizer on a
 * random f32 V x B x D batch (median of repeated runs after warm-up; new slices every run, as in
 * training), measures the sgemm rate at the shape of the projection GEMM and reports VISReg's
 * time against the floor set by its two GEMMs (4 V B D K flops). --scaling adds the time ratios
 * when B, D and K are each doubled. Without --B/--D/--K it runs the PyTorch peer's CPU sizes
 * (shared/peers/torch_anchor.py): (B, D, K) = (256, 512, 256) and (1024, 512, 1024), V = 2. */
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

typedef struct {
  int64_t V, B, D, K;
  vr_device dev;
  int reps, warm;
} cfg;

static const char *all_methods[] = {"visreg", "swd", "sigreg", "vicreg", "vicreg_repo", "barlow"};

static vr_status run_once(const char *m, vr_tensor *z, int64_t K, uint64_t step) {
  vr_tensor *L = NULL;
  vr_status st;
  if (!strcmp(m, "visreg")) st = vr_visreg(z, NULL, K, 0, step, 1, 1, 1, &L, NULL);
  else if (!strcmp(m, "swd")) st = vr_swd(z, NULL, K, 0, step, &L);
  else if (!strcmp(m, "sigreg")) st = vr_sigreg(z, NULL, K, 0, step, 17, 3.0, &L);
  else if (!strcmp(m, "vicreg")) st = vr_vicreg(z, 25, 25, 1, &L, NULL);
  else if (!strcmp(m, "vicreg_repo")) st = vr_vicreg_repo(z, 25, 1, &L, NULL);
  else st = vr_barlow(z, 0.0051, &L);
  if (!st) st = vr_backward(L, NULL, 0);
  vr_tensor_free(L);
  vr_tensor_set_grad(z, NULL);
  return st;
}

/* median ms of forward + backward, or a negative value on error */
static double time_method(const char *m, const cfg *c, int64_t B, int64_t D, int64_t K) {
  vr_generator *g = NULL;
  vr_tensor *z = NULL;
  if (vr_generator_new(1, 0, &g) || vr_rand_normal(g, 3, (int64_t[]){c->V, B, D}, 0, 1, VR_F32, c->dev, &z)) {
    vr_generator_free(g);
    return -1;
  }
  vr_generator_free(g);
  vr_tensor_set_requires_grad(z, 1);
  double *ts = malloc(sizeof(double) * (size_t)c->reps), r = -1;
  uint64_t step = 0;
  for (int i = 0; i < c->warm; i++)
    if (run_once(m, z, K, step++)) goto done;
  for (int i = 0; i < c->reps; i++) {
    double t0 = now_ms();
    if (run_once(m, z, K, step++)) goto done;
    ts[i] = now_ms() - t0;
  }
  r = median(ts, c->reps);
done:
  free(ts);
  vr_tensor_free(z);
  return r;
}

/* sgemm GFLOP/s at the projection's shape: (V B x D) times (D x K) */
static double sgemm_rate(int64_t M, int64_t Kd, int64_t N) {
  float *a = malloc(sizeof(float) * (size_t)(M * Kd)), *b = malloc(sizeof(float) * (size_t)(Kd * N)),
        *cc = malloc(sizeof(float) * (size_t)(M * N));
  for (int64_t i = 0; i < M * Kd; i++) a[i] = (float)((i * 7 % 13) - 6) * 0.1f;
  for (int64_t i = 0; i < Kd * N; i++) b[i] = (float)((i * 5 % 11) - 5) * 0.1f;
  double ts[9];
  for (int i = 0; i < 11; i++) {
    double t0 = now_ms();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)M, (int)N, (int)Kd, 1, a, (int)Kd, b, (int)N, 0, cc,
                (int)N);
    if (i >= 2) ts[i - 2] = now_ms() - t0;
  }
  free(a);
  free(b);
  free(cc);
  return 2.0 * (double)M * (double)Kd * (double)N / (median(ts, 9) * 1e6);
}

static void usage(void) {
  fprintf(stderr, "usage: visreg bench losses [--V 2] [--B N --D N --K N] [--methods visreg,swd,sigreg,vicreg,"
                  "vicreg_repo,barlow] [--reps 7] [--warmup 2] [--threads N] [--scaling] [--json] [--device cpu|cuda]\n");
}

int vr_bench_losses(int argc, char **argv) {
  cfg c = {.V = 2, .dev = VR_CPU, .reps = 7, .warm = 2};
  int64_t B = 0, D = 0, K = 0;
  int json = 0, scaling = 0;
  char methods[256] = "visreg,swd,sigreg,vicreg,vicreg_repo,barlow";
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
  int64_t sizes[2][3] = {{256, 512, 256}, {1024, 512, 1024}};
  int nsizes = 2;
  if (B || D || K) {
    sizes[0][0] = B ? B : 256;
    sizes[0][1] = D ? D : 512;
    sizes[0][2] = K ? K : 256;
    nsizes = 1;
  }
  if (!json)
    printf("# visreg bench losses: %s, %d threads, f32, V = %lld, forward+backward median of %d after %d warm-up\n",
           c.dev == VR_CPU ? "cpu" : vr_cuda_device_name(), vr_num_threads(), (long long)c.V, c.reps, c.warm);
  if (!json && !scaling)
    printf("%-12s %6s %6s %6s %12s %12s %10s\n", "method", "B", "D", "K", "fwd+bwd ms", "gemm floor", "x floor");
  if (!json && scaling)
    printf("%-12s %6s %6s %6s %12s %8s %8s %8s\n", "method", "B", "D", "K", "fwd+bwd ms", "2B", "2D", "2K");
  int rc = 0;
  for (int s = 0; s < nsizes; s++) {
    int64_t b = sizes[s][0], d = sizes[s][1], k = sizes[s][2];
    double rate = c.dev == VR_CPU ? sgemm_rate(c.V * b, d, k) : 0; /* GFLOP/s */
    double floor_ms = rate > 0 ? 4.0 * (double)c.V * b * d * k / (rate * 1e6) : 0;
    char list[256];
    snprintf(list, sizeof list, "%s", methods);
    for (char *save = NULL, *m = strtok_r(list, ",", &save); m; m = strtok_r(NULL, ",", &save)) {
      int known = 0;
      for (size_t i = 0; i < sizeof all_methods / sizeof *all_methods; i++) known |= !strcmp(m, all_methods[i]);
      if (!known) {
        fprintf(stderr, "visreg bench losses: unknown method '%s'\n", m);
        return 2;
      }
      if (!strcmp(m, "vicreg") && c.V != 2) continue; /* the official form takes two views */
      double t = time_method(m, &c, b, d, k);
      if (t < 0) {
        fprintf(stderr, "visreg bench losses: %s: %s\n", m, vr_last_error());
        rc = 1;
        continue;
      }
      int sliced = !strcmp(m, "visreg") || !strcmp(m, "swd") || !strcmp(m, "sigreg");
      double r2[3] = {0, 0, 0};
      if (scaling) {
        r2[0] = time_method(m, &c, 2 * b, d, k) / t;
        r2[1] = time_method(m, &c, b, 2 * d, k) / t;
        r2[2] = sliced ? time_method(m, &c, b, d, 2 * k) / t : 1.0;
      }
      if (json) {
        printf("{\"loss\": \"%s\", \"device\": \"%s\", \"threads\": %d, \"V\": %lld, \"B\": %lld, \"D\": %lld, \"K\": %lld, "
               "\"fwd_bwd_ms\": %.4f",
               m, c.dev == VR_CPU ? "cpu" : "cuda", vr_num_threads(), (long long)c.V, (long long)b, (long long)d,
               (long long)k, t);
        if (rate > 0 && !strcmp(m, "visreg"))
          printf(", \"sgemm_gflops\": %.2f, \"gemm_floor_ms\": %.4f, \"x_floor\": %.3f", rate, floor_ms, t / floor_ms);
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
      fflush(stdout);
    }
    if (!json && rate > 0) printf("# sgemm %.1f GFLOP/s at %lld x %lld x %lld\n", rate, (long long)(c.V * b), (long long)d, (long long)k);
  }
  return rc;
}
