/* fuzz_ckpt_json.c: the JSON header of a safetensors file, the input being the JSON text itself
 * (the length prefix is written for it, so that every input reaches the JSON parser); bytes after
 * the input's last NUL are the data section */
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  size_t hlen = size, dlen = 0;
  const uint8_t *nul = size ? memrchr(data, 0, size) : NULL;
  if (nul) {
    hlen = (size_t)(nul - data);
    dlen = size - hlen - 1;
  }
  unsigned char *file = malloc(8 + size + 1);
  if (!file) abort();
  for (int k = 0; k < 8; k++) file[k] = (unsigned char)((uint64_t)hlen >> (8 * k));
  memcpy(file + 8, data, hlen);
  if (dlen) memcpy(file + 8 + hlen, nul + 1, dlen);
  const char *path = fz_path("j.safetensors");
  fz_write(path, file, 8 + hlen + dlen);
  free(file);
  fz_ckpt_file(path);
  return 0;
}
