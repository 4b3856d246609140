/* cmd_bench.c: `visreg bench ops|losses|train|data|conv [--variant NAME=VALUE ...]`, dispatching to
 * tools/bench_*.c. --variant (any number, anywhere after the benchmark's name) chooses a kernel
 * path before the benchmark starts (vr_set_variant: conv=legacy, 3xtf32=off, colsums=two,
 * sort=shared, bn_act=unfused, cpu_tiles=positions,
 * cpu_winograd=off), to time it beside the default. */
#include "../core/visreg.h"
#include "commands.h"
#include <stdio.h>
#include <string.h>

int vr_cmd_bench(int argc, char **argv) {
  static const struct { const char *name; int (*fn)(int, char **); } benches[] = {
      {"ops", vr_bench_ops}, {"losses", vr_bench_losses}, {"train", vr_bench_train}, {"data", vr_bench_data},
      {"conv", vr_bench_conv}};
  if (argc < 2) {
    fprintf(stderr, "usage: visreg bench ops|losses|train|data|conv [--variant NAME=VALUE ...] [options]\n");
    return 2;
  }
  int n = 0;
  for (int k = 0; k < argc; k++) {
    if (k >= 2 && !strcmp(argv[k], "--variant")) {
      if (k + 1 == argc || vr_set_variants(argv[k + 1]) != VR_OK) {
        fprintf(stderr, "visreg bench: --variant: %s\n", k + 1 == argc ? "expected NAME=VALUE" : vr_last_error());
        return 2;
      }
      k++;
      continue;
    }
    argv[n++] = argv[k];
  }
  argc = n;
  for (size_t k = 0; k < sizeof benches / sizeof *benches; k++)
    if (!strcmp(argv[1], benches[k].name)) return benches[k].fn(argc - 1, argv + 1);
  fprintf(stderr, "visreg bench: unknown benchmark '%s' (ops, losses, train, data, conv)\n", argv[1]);
  return 2;
}
