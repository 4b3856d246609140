/* cmd_eval.c: `visreg eval DIR_OR_CHECKPOINT [--device D] [--out FILE]`: linear probe and kNN of a
 * trained encoder, through visreg.cli.eval (lua/visreg/cli.lua). */
#include "../core/host.h"
#include "commands.h"

int vr_cmd_eval(int argc, char **argv) {
  lua_State *L = vr_host_new();
  if (!L) return 1;
  int rc = vr_host_call_module(L, "visreg.cli", "eval", argc - 1, argv + 1);
  vr_host_close(L);
  return rc;
}
