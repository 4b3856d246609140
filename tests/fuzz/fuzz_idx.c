/* fuzz_idx.c: vr_dataset_idx (IDX images and labels, plain or gzip) on arbitrary bytes.
 * The first byte picks how the rest is written: bit 0 gzips the images file here (so that mutated
 * IDX data also goes through zlib), bit 1 adds a labels file (its length in the next two bytes,
 * taken from the end), bit 2 gzips the labels, bit 3 cuts the last (byte 4) bytes off the gzip
 * data. Seeds that are gzip files already take mode 0. */
#include "fuzz_util.h"

static void write_maybe_gz(const char *path, const uint8_t *d, size_t n, int gz, size_t cut) {
  if (!gz) {
    fz_write(path, d, n);
    return;
  }
  size_t zn;
  unsigned char *z = fz_gzip(d, n, &zn);
  fz_write(path, z, cut < zn ? zn - cut : 0);
  free(z);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 4) return 0;
  unsigned mode = data[0];
  size_t llen = (size_t)data[1] << 8 | data[2], cut = (mode & 8) ? data[3] : 0;
  data += 4;
  size -= 4;
  const char *ip = fz_path("images"), *lp = fz_path("labels");
  if (mode & 2) {
    if (llen > size) llen = size;
    write_maybe_gz(ip, data, size - llen, mode & 1, cut);
    write_maybe_gz(lp, data + size - llen, llen, mode & 4, cut);
  } else {
    write_maybe_gz(ip, data, size, mode & 1, cut);
  }
  vr_dataset *d = NULL;
  if (vr_dataset_idx(ip, (mode & 2) ? lp : NULL, (mode >> 4) & 15, &d) == VR_OK) {
    int64_t n = vr_dataset_count(d);
    size_t px = (size_t)(vr_dataset_channels(d) * vr_dataset_height(d) * vr_dataset_width(d));
    unsigned acc = 0;
    for (int64_t i = 0; i < n; i++) {
      const uint8_t *p = vr_dataset_image_data(d, i);
      if (!p) abort();
      acc += p[0] + p[px - 1];
      acc += (unsigned)vr_dataset_label(d, i);
    }
    vr_tensor *t = NULL;
    if (vr_dataset_images(d, &t) == VR_OK) {
      fz_touch_tensor(t);
      vr_tensor_free(t);
    }
    (void)acc;
    vr_dataset_free(d);
  } else if (d) {
    abort();
  }
  return 0;
}
