/* cmd_report.c: `visreg report DIR [--out FILE]`: a run folder's or a sweep folder's page as one
 * self-contained HTML file (visreg.report.main, lua/visreg/report/). */
#include "../core/host.h"
#include "commands.h"

int vr_cmd_report(int argc, char **argv) {
  lua_State *L = vr_host_new();
  if (!L) return 1;
  int rc = vr_host_call_module(L, "visreg.report", "main", argc - 1, argv + 1);
  vr_host_close(L);
  return rc;
}
