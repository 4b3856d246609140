/* cmd_bench.c: `visreg bench ops|losses|train|data|conv`, dispatching to tools/bench_*.c. */
#include "commands.h"
#include <stdio.h>
#include <string.h>

int vr_cmd_bench(int argc, char **argv) {
  static const struct { const char *name; int (*fn)(int, char **); } benches[] = {
      {"ops", vr_bench_ops}, {"losses", vr_bench_losses}, {"train", vr_bench_train}, {"data", vr_bench_data},
      {"conv", vr_bench_conv}};
  if (argc < 2) {
    fprintf(stderr, "usage: visreg bench ops|losses|train|data|conv [options]\n");
    return 2;
  }
  for (size_t k = 0; k < sizeof benches / sizeof *benches; k++)
    if (!strcmp(argv[1], benches[k].name)) {
      if (!benches[k].fn) {
        fprintf(stderr, "visreg bench: '%s' is not in this build\n", argv[1]);
        return 2;
      }
      return benches[k].fn(argc - 1, argv + 1);
    }
  fprintf(stderr, "visreg bench: unknown benchmark '%s' (ops, losses, train, data, conv)\n", argv[1]);
  return 2;
}
