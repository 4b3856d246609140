/* cmd_sweep.c: `visreg sweep FILE.yaml [options]` and `visreg sweep status DIR`. The arguments go
 * to visreg.sweep (lua/visreg/sweep/), which reads the file, checks every trial against the
 * recipe and runs the trials as `visreg train` processes; Ctrl-C (or SIGTERM) is forwarded to
 * them, so that each saves a checkpoint and the sweep can be resumed. */
#include "../core/host.h"
#include "commands.h"

int vr_cmd_sweep(int argc, char **argv) {
  lua_State *L = vr_host_new();
  if (!L) return 1;
  vr_host_catch_sigint(1);
  int rc = vr_host_call_module(L, "visreg.sweep", "main", argc - 1, argv + 1);
  vr_host_catch_sigint(0);
  vr_host_close(L);
  return rc;
}
