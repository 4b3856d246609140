/* cmd_train.c: `visreg train RECIPE.lua [--set key.path=value ...] [--out DIR] [--resume DIR]
 * [--device cpu|cuda|auto]`. The arguments go to visreg.cli.train (lua/visreg/cli.lua), which
 * parses them, loads the recipe and runs the trainer; Ctrl-C asks the trainer to save a
 * checkpoint and stop. */
#include "../core/host.h"
#include "commands.h"

int vr_cmd_train(int argc, char **argv) {
  lua_State *L = vr_host_new();
  if (!L) return 1;
  vr_host_catch_sigint(1);
  int rc = vr_host_call_module(L, "visreg.cli", "train", argc - 1, argv + 1);
  vr_host_catch_sigint(0);
  vr_host_close(L);
  return rc;
}
