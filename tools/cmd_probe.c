/* cmd_probe.c: `visreg probe RUN_DIR [--json]`: the metric table of a trained run's test
 * embeddings without a REPL session (visreg.probing.main). */
#include "../core/host.h"
#include "commands.h"

int vr_cmd_probe(int argc, char **argv) {
  lua_State *L = vr_host_new();
  if (!L) return 1;
  int rc = vr_host_call_module(L, "visreg.probing", "main", argc - 1, argv + 1);
  vr_host_close(L);
  return rc;
}
