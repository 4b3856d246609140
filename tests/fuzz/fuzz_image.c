/* fuzz_image.c: the image decoder on arbitrary bytes (JPEG through TurboJPEG with its DCT scaling and
 * EXIF orientation, PNG through libpng), then the short-side resize and centre crop the packer does */
#include "fuzz_util.h"
#include "../../core/data/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static vr_img_decoder *d;
  static uint8_t out[3 * 32 * 32];
  if (!d && !(d = vr_img_decoder_new())) abort();
  const vr_img *im = NULL;
  int grey = 0;
  char why[256];
  /* the first byte picks the target side (0: full size), so DCT-domain scaling is reached too */
  int target = size ? (data[0] % 4) * 16 : 0;
  if (vr_img_decode(d, size ? data + 1 : data, size ? size - 1 : 0, target, &im, &grey, why, sizeof why) == 0) {
    unsigned sum = 0;
    for (size_t i = 0; i < (size_t)im->w * im->h * im->c; i++) sum += im->px[i];
    vr_img_fit(im, 32, out);
    for (size_t i = 0; i < sizeof out; i++) sum += out[i];
    if (sum == 0xdeadbeef) fprintf(stderr, " "); /* keeps the reads */
  }
  return 0;
}
