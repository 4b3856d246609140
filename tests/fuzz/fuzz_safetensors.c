/* fuzz_safetensors.c: vr_ckpt_open and vr_ckpt_load of every tensor on arbitrary bytes (a
 * safetensors file: 8-byte header length, JSON header, data) */
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = fz_path("f.safetensors");
  fz_write(path, data, size);
  fz_ckpt_file(path);
  return 0;
}
