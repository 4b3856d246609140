/* bench_train.c: `visreg bench train RECIPE.lua --steps N [--warmup W] [--device cpu|cuda|auto]
 * [--set key=value ...] [--json]`: time per training step and images per second of a recipe's run,
 * built as `visreg train` builds it. The work is in visreg.bench (lua/visreg/bench.lua), which runs
 * visreg.trainer's bench entry point. */
#include "../core/host.h"
#include "commands.h"

int vr_bench_train(int argc, char **argv) {
  lua_State *L = vr_host_new();
  if (!L) return 1;
  int rc = vr_host_call_module(L, "visreg.bench", "train", argc - 1, argv + 1);
  vr_host_close(L);
  return rc;
}
