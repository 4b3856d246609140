/* fuzz_cifar.c: the CIFAR-10/100 binary readers on arbitrary bytes. The first byte picks: bit 0
 * CIFAR-100 (test.bin) rather than CIFAR-10 (test_batch.bin), bit 1 coarse labels, bit 2 gzips the
 * file here (zlib reads it transparently whatever its name). */
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  unsigned mode = data[0];
  data++;
  size--;
  const char *path = fz_path((mode & 1) ? "test.bin" : "test_batch.bin");
  if (mode & 4) {
    size_t zn;
    unsigned char *z = fz_gzip(data, size, &zn);
    fz_write(path, z, zn);
    free(z);
  } else {
    fz_write(path, data, size);
  }
  char root[300];
  snprintf(root, sizeof root, "%.*s", (int)(strrchr(path, '/') - path), path);
  vr_dataset *d = NULL;
  vr_status st = (mode & 1) ? vr_dataset_cifar100(root, 0, (mode >> 1) & 1, &d) : vr_dataset_cifar10(root, 0, &d);
  if (st == VR_OK) {
    for (int64_t i = 0; i < vr_dataset_count(d); i++) {
      const uint8_t *p = vr_dataset_image_data(d, i);
      if (!p || vr_dataset_label(d, i) < 0 || vr_dataset_label(d, i) >= vr_dataset_num_classes(d)) abort();
      volatile unsigned acc = p[0] + p[3 * 32 * 32 - 1];
      (void)acc;
    }
    vr_dataset_free(d);
  } else if (d) {
    abort();
  }
  return 0;
}
