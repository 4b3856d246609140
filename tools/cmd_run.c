/* cmd_run.c: `visreg run SCRIPT.lua [args]` runs any Lua script with the toolkit on its path; the
 * global `arg` is set as the lua interpreter does, and the script's folder is searched first by
 * require. A number (or false) returned by the script becomes the exit status. */
#include "../core/host.h"
#include "commands.h"
#include <stdio.h>

int vr_cmd_run(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: visreg run SCRIPT.lua [args]\n");
    return 2;
  }
  lua_State *L = vr_host_new();
  if (!L) return 1;
  vr_host_add_script_dir(L, argv[1]);
  int rc = vr_host_run_script(L, argv[1], argc - 2, argv + 2);
  vr_host_close(L);
  return rc;
}
