/* bench_conv.c: `visreg bench conv [--net recipe|resnet18|vit|all] [--batch N] [--runs N] [--threads N]
 * [--isa auto|avx512|avx2|im2col]`: per-layer time of f32 conv2d forward and backward (grad x and
 * grad w; grad w only for a network's first layer, whose input needs no gradient) on the shapes
 * of the default recipe (batch 512: two views of 256), of ResNet-18 at 32 x 32 (batch 128) and of
 * ViT patch embeddings (7 x 7 patches of 28 x 28, 4 x 4 of 32 x 32; batch 128).
 * Medians of several runs after a warm-up, wall time and (cpu_ms) the process's CPU time over all
 * threads, which other processes on the same cores disturb less; bench/conv_torch.py times
 * PyTorch on the same shapes. The path column: im2col, the direct kernels' instruction set
 * (avx2, avx512), or wino (Winograd, kernels/cpu/conv_winograd.c). */
#include "../core/visreg.h"
#include "../kernels/cpu/conv_direct.h"
#include "../kernels/cpu/conv_winograd.h"
#include "commands.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct { const char *net; int64_t C, Co, H, k, s, p; int first; } layer;
static const layer layers[] = {
    {"recipe", 1, 16, 28, 3, 1, 1, 1},      {"recipe", 16, 32, 14, 3, 1, 1, 0},
    {"recipe", 32, 64, 7, 3, 1, 1, 0},      {"recipe", 64, 64, 7, 3, 1, 1, 0},
    {"resnet18", 3, 64, 32, 3, 1, 1, 1},    {"resnet18", 64, 64, 32, 3, 1, 1, 0},
    {"resnet18", 64, 128, 32, 3, 2, 1, 0},  {"resnet18", 64, 128, 32, 1, 2, 0, 0},
    {"resnet18", 128, 128, 16, 3, 1, 1, 0}, {"resnet18", 128, 256, 16, 3, 2, 1, 0},
    {"resnet18", 128, 256, 16, 1, 2, 0, 0}, {"resnet18", 256, 256, 8, 3, 1, 1, 0},
    {"resnet18", 256, 512, 8, 3, 2, 1, 0},  {"resnet18", 256, 512, 8, 1, 2, 0, 0},
    {"resnet18", 512, 512, 4, 3, 1, 1, 0},
    {"vit", 1, 192, 28, 7, 7, 0, 1},        {"vit", 3, 192, 32, 4, 4, 0, 1},
};

static double clock_s(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}
static double now(void) { return clock_s(CLOCK_MONOTONIC); }
static double cpu_now(void) { return clock_s(CLOCK_PROCESS_CPUTIME_ID); } /* all threads */
static int cmp_dbl(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}
static double median(double *t, int n) {
  qsort(t, (size_t)n, sizeof *t, cmp_dbl);
  return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

/* median forward and backward seconds of one layer, and the median CPU seconds (all threads) of both */
static int time_layer(const layer *l, int64_t N, int runs, double *tf, double *tb, double *tc) {
  int64_t Ho = (l->H + 2 * l->p - l->k) / l->s + 1;
  vr_generator *g = NULL;
  vr_tensor *x = NULL, *w = NULL, *gy = NULL;
  double f[64], b[64], cp[64];
  int rc = 1;
  if (vr_generator_new(0, 0, &g) || vr_rand_uniform(g, 4, (int64_t[]){N, l->C, l->H, l->H}, -1, 1, VR_F32, VR_CPU, &x) ||
      vr_rand_uniform(g, 4, (int64_t[]){l->Co, l->C, l->k, l->k}, -0.1, 0.1, VR_F32, VR_CPU, &w) ||
      vr_rand_uniform(g, 4, (int64_t[]){N, l->Co, Ho, Ho}, -1, 1, VR_F32, VR_CPU, &gy) ||
      vr_tensor_set_requires_grad(w, 1) || (!l->first && vr_tensor_set_requires_grad(x, 1)))
    goto done;
  for (int r = -2; r < runs; r++) {
    vr_tensor *y = NULL;
    double c0 = cpu_now(), t0 = now();
    if (vr_conv2d(x, w, NULL, l->s, l->s, l->p, l->p, 1, 1, 1, &y)) goto done;
    double t1 = now();
    vr_status st = vr_backward(y, gy, 0);
    double t2 = now(), c2 = cpu_now();
    vr_tensor_free(y);
    vr_tensor_set_grad(x, NULL);
    vr_tensor_set_grad(w, NULL);
    if (st) goto done;
    if (r >= 0) {
      f[r] = t1 - t0;
      b[r] = t2 - t1;
      cp[r] = c2 - c0;
    }
  }
  *tf = median(f, runs);
  *tb = median(b, runs);
  *tc = median(cp, runs);
  rc = 0;
done:
  if (rc) fprintf(stderr, "bench conv: %s\n", vr_last_error());
  vr_tensor_free(x);
  vr_tensor_free(w);
  vr_tensor_free(gy);
  vr_generator_free(g);
  return rc;
}

int vr_bench_conv(int argc, char **argv) {
  const char *net = "all", *isa = "auto";
  int64_t batch = 0;
  int runs = 5;
  for (int k = 1; k < argc; k++) {
    if (!strcmp(argv[k], "--net") && k + 1 < argc) net = argv[++k];
    else if (!strcmp(argv[k], "--batch") && k + 1 < argc) batch = atoll(argv[++k]);
    else if (!strcmp(argv[k], "--runs") && k + 1 < argc) runs = atoi(argv[++k]);
    else if (!strcmp(argv[k], "--threads") && k + 1 < argc) vr_set_num_threads(atoi(argv[++k]));
    else if (!strcmp(argv[k], "--isa") && k + 1 < argc) isa = argv[++k];
    else {
      fprintf(stderr, "usage: visreg bench conv [--net recipe|resnet18|vit|all] [--batch N] [--runs N] [--threads N] "
                      "[--isa auto|avx512|avx2|im2col]\n");
      return 2;
    }
  }
  if (runs < 1) runs = 1;
  if (runs > 64) runs = 64;
  int want = !strcmp(isa, "avx512") ? VR_CONV_ISA_AVX512 : !strcmp(isa, "avx2") ? VR_CONV_ISA_AVX2
           : !strcmp(isa, "im2col") ? VR_CONV_ISA_NONE : VR_CONV_ISA_AUTO;
  if (vr_cpu_conv_force_isa(want) != want && want != VR_CONV_ISA_AUTO) {
    fprintf(stderr, "bench conv: this CPU cannot run --isa %s\n", isa);
    return 2;
  }
  static const char *names[] = {"im2col", "avx2", "avx512"};
  printf("visreg bench conv: %d threads, direct kernels: %s, median of %d runs after 2 warm-up\n", vr_num_threads(),
         names[vr_cpu_conv_isa()], runs);
  printf("%-9s %5s %5s %5s %3s %2s %2s %6s  %9s %9s %9s %8s %9s\n", "net", "N", "C", "Co", "HxW", "k", "s", "path",
         "fwd_ms", "bwd_ms", "total_ms", "GFLOP/s", "cpu_ms");
  static const char *nets[] = {"recipe", "resnet18", "vit"};
  enum { NNETS = sizeof nets / sizeof *nets };
  double sum[NNETS] = {0}, csum[NNETS] = {0};
  for (size_t k = 0; k < sizeof layers / sizeof *layers; k++) {
    const layer *l = &layers[k];
    if (strcmp(net, "all") && strcmp(net, l->net)) continue;
    int64_t N = batch > 0 ? batch : !strcmp(l->net, "recipe") ? 512 : 128;
    double tf, tb, tc;
    if (time_layer(l, N, runs, &tf, &tb, &tc)) return 1;
    int64_t Ho = (l->H + 2 * l->p - l->k) / l->s + 1;
    double fl = 2.0 * N * l->Co * l->C * l->k * l->k * Ho * Ho * (l->first ? 2 : 3);
    int64_t iv[8] = {l->s, l->s, l->p, l->p, 1, 1, 1, 0};
    vr_tensor *xs = NULL, *ws = NULL;
    const char *path = "im2col";
    if (!vr_tensor_zeros(4, (int64_t[]){1, l->C, l->H, l->H}, VR_F32, VR_CPU, &xs) &&
        !vr_tensor_zeros(4, (int64_t[]){l->Co, l->C, l->k, l->k}, VR_F32, VR_CPU, &ws)) {
      if (vr_cpu_conv_winograd_ok(xs, ws, iv)) path = "wino";
      else if (vr_cpu_conv_direct_ok(xs, ws, iv)) path = names[vr_cpu_conv_isa()];
    }
    vr_tensor_free(xs);
    vr_tensor_free(ws);
    printf("%-9s %5lld %5lld %5lld %3lld %2lld %2lld %6s  %9.2f %9.2f %9.2f %8.1f %9.2f\n", l->net, (long long)N,
           (long long)l->C, (long long)l->Co, (long long)l->H, (long long)l->k, (long long)l->s,
           path, tf * 1e3, tb * 1e3, (tf + tb) * 1e3, fl / (tf + tb) * 1e-9, tc * 1e3);
    for (int t = 0; t < NNETS; t++)
      if (!strcmp(l->net, nets[t])) {
        sum[t] += tf + tb;
        csum[t] += tc;
      }
  }
  for (int t = 0; t < NNETS; t++)
    if (sum[t] > 0) printf("%s layers in all: %.2f ms, cpu %.2f ms\n", nets[t], sum[t] * 1e3, csum[t] * 1e3);
  return 0;
}
