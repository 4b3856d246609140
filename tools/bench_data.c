/* bench_data.c: `visreg bench data DIR [--size 64] [--n 2000] [--make N] [--json]`: decode + resize
 * images/s on one core and on every core, the pack, and the loader's images/s from the packed cache
 * beside the same loader on in-memory tensors (visreg.data_images.bench). --make N first writes N
 * synthetic 500 x 375 JPEGs (quality 90, 4:2:0, ten classes of smooth colour fields with noise:
 * about photo-sized files) into DIR/class0..class9 with TurboJPEG, when DIR does not exist yet. */
#include "../core/host.h"
#include "commands.h"
#include <errno.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <turbojpeg.h>

static int make_folder(const char *dir, int n) {
  struct stat sb;
  if (!stat(dir, &sb)) {
    fprintf(stderr, "visreg bench data: '%s' exists: not writing images into it\n", dir);
    return 0;
  }
  enum { W = 500, H = 375, K = 10 };
  unsigned char *px = malloc((size_t)W * H * 3);
  tjhandle t = tjInitCompress();
  if (!px || !t || mkdir(dir, 0777)) {
    fprintf(stderr, "visreg bench data: cannot make '%s': %s\n", dir, strerror(errno));
    free(px);
    if (t) tjDestroy(t);
    return 1;
  }
  char path[4200];
  for (int c = 0; c < K; c++) {
    snprintf(path, sizeof path, "%s/class%d", dir, c);
    mkdir(path, 0777);
  }
  uint64_t r = 88172645463325252ull;
  for (int i = 0; i < n; i++) {
    int c = i % K;
    double fx = 0.01 + 0.004 * c + 0.001 * (i % 7), fy = 0.013 + 0.003 * (i % 5);
    for (int y = 0; y < H; y++)
      for (int x = 0; x < W; x++) {
        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
        for (int ch = 0; ch < 3; ch++) {
          double v = 128 + 90 * sin(fx * x * (ch + 1) + fy * y + c) * cos(fy * y * (3 - ch) - 0.5 * c) +
                     (double)((r >> (8 * ch)) & 31) - 16;
          px[((size_t)y * W + x) * 3 + ch] = (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
      }
    unsigned char *jpg = NULL;
    unsigned long len = 0;
    if (tjCompress2(t, px, W, 0, H, TJPF_RGB, &jpg, &len, TJSAMP_420, 90, 0)) {
      fprintf(stderr, "visreg bench data: %s\n", tjGetErrorStr2(t));
      break;
    }
    snprintf(path, sizeof path, "%s/class%d/img%05d.jpg", dir, c, i);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(jpg, 1, len, f) != len) fprintf(stderr, "visreg bench data: cannot write '%s'\n", path);
    if (f) fclose(f);
    tjFree(jpg);
  }
  tjDestroy(t);
  free(px);
  fprintf(stderr, "wrote %d JPEGs of %d x %d into '%s'\n", n, W, H, dir);
  return 0;
}

int vr_bench_data(int argc, char **argv) {
  /* --make N: taken out here, the rest goes to Lua */
  char **rest = malloc(sizeof(char *) * (size_t)(argc + 1));
  int nr = 0, make = 0;
  const char *dir = NULL;
  for (int k = 0; k < argc; k++) {
    if (k > 0 && !strcmp(argv[k], "--make") && k + 1 < argc) {
      make = atoi(argv[++k]);
      continue;
    }
    if (k > 0 && argv[k][0] != '-' && !dir && strcmp(argv[k - 1], "--size") && strcmp(argv[k - 1], "--n") &&
        strcmp(argv[k - 1], "--batch") && strcmp(argv[k - 1], "--batches") && strcmp(argv[k - 1], "--workers"))
      dir = argv[k];
    rest[nr++] = argv[k];
  }
  rest[nr] = NULL;
  if (make > 0 && dir && make_folder(dir, make)) {
    free(rest);
    return 1;
  }
  lua_State *L = vr_host_new();
  if (!L) {
    free(rest);
    return 1;
  }
  vr_host_catch_sigint(1);
  int rc = vr_host_call_module(L, "visreg.data_images", "bench", nr - 1, rest + 1);
  vr_host_catch_sigint(0);
  vr_host_close(L);
  free(rest);
  return rc;
}
