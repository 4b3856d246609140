/* bench_data.c: `visreg bench data DIR [--size 64] [--n 2000] [--json]`: decode + resize images/s
 * per core and on every core, the pack, and the loader's images/s from the packed cache beside the
 * same loader on in-memory tensors (visreg.data_images.bench). */
#include "../core/host.h"
#include "commands.h"

int vr_bench_data(int argc, char **argv) {
  lua_State *L = vr_host_new();
  if (!L) return 1;
  vr_host_catch_sigint(1);
  int rc = vr_host_call_module(L, "visreg.data_images", "bench", argc - 1, argv + 1);
  vr_host_catch_sigint(0);
  vr_host_close(L);
  return rc;
}
