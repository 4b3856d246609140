/* cmd_data.c: `visreg data pack SRC [--size 64] [--out CACHE] ...` and `visreg data info CACHE`:
 * folders of JPEG and PNG images decoded once into a packed cache (visreg.data_images, over
 * core/data/image_*.c). Ctrl-C stops the pack between images; running it again resumes. */
#include "../core/host.h"
#include "commands.h"

int vr_cmd_data(int argc, char **argv) {
  lua_State *L = vr_host_new();
  if (!L) return 1;
  vr_host_catch_sigint(1);
  int rc = vr_host_call_module(L, "visreg.data_images", "main", argc - 1, argv + 1);
  vr_host_catch_sigint(0);
  vr_host_close(L);
  return rc;
}
