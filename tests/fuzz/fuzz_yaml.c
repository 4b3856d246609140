/* fuzz_yaml.c: vr_yaml_parse on arbitrary bytes, then a walk over every node through the API */
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  vr_yaml *y = NULL;
  if (vr_yaml_parse((const char *)data, size, "fuzz.yaml", &y) != VR_OK) {
    if (y) abort();
    return 0;
  }
  int n = vr_yaml_count(y), root = vr_yaml_root(y);
  if (root >= n) abort();
  unsigned acc = 0;
  for (int k = 0; k < n; k++) {
    int kind = vr_yaml_kind(y, k);
    acc += (unsigned)vr_yaml_line(y, k) + (unsigned)vr_yaml_column(y, k) + (unsigned)vr_yaml_plain(y, k);
    if (kind == VR_YAML_SCALAR) {
      const char *s = vr_yaml_text(y, k);
      size_t len = vr_yaml_length(y, k);
      if (!s || s[len] != 0) abort();
      for (size_t i = 0; i < len; i++) acc += (unsigned char)s[i];
    } else if (kind == VR_YAML_SEQ || kind == VR_YAML_MAP) {
      for (int i = 0; i < vr_yaml_size(y, k); i++) {
        int item = vr_yaml_item(y, k, i);
        if (item < 0 || item >= n) abort();
        if (kind == VR_YAML_MAP) {
          int key = vr_yaml_key(y, k, i);
          if (key < 0 || key >= n || vr_yaml_kind(y, key) != VR_YAML_SCALAR) abort();
        }
      }
    } else {
      abort();
    }
  }
  (void)acc;
  vr_yaml_free(y);
  return 0;
}
