/* fuzz_npy.c: vr_npy_load on arbitrary bytes (a .npy file: magic, version, header dict, data) */
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = fz_path("f.npy");
  fz_write(path, data, size);
  vr_tensor *t = NULL;
  if (vr_npy_load(path, &t) == VR_OK) {
    fz_touch_tensor(t);
    vr_tensor_free(t);
  }
  return 0;
}
