/* fuzz_image_list.c: the "relative/path label" list parser on arbitrary bytes: malformed lines, labels
 * out of range, paths that leave the root, absurd lengths. The root holds one real file, a.png. */
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *list = fz_path("list.txt");
  const char *img = fz_path("a.png");
  static int made;
  if (!made) {
    /* the files a list may name: an empty a.png is enough, the parser does not decode */
    fz_write(img, (const uint8_t *)"", 0);
    made = 1;
  }
  fz_write(list, data, size);
  char root[320];
  snprintf(root, sizeof root, "%s", img);
  *strrchr(root, '/') = 0;
  vr_image_set *s = NULL;
  if (vr_image_set_list(root, list, 0, &s) == VR_OK) {
    for (int64_t i = 0; i < vr_image_set_count(s); i++) {
      const char *p = vr_image_set_path(s, i);
      /* a path outside the root must have been refused */
      if (!p || p[0] == '/' || !strncmp(p, "../", 3) || strstr(p, "/../") || !strcmp(p, "..")) abort();
      (void)vr_image_set_label(s, i);
    }
    vr_image_set_free(s);
  }
  return 0;
}
