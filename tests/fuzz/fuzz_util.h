/* fuzz_util.h: what the libFuzzer targets share: a private temporary folder, inputs written as
 * files (the readers take paths), gzip compression in memory, and walks over what a reader
 * returned that touch every byte it claims to hold (so that AddressSanitizer sees a size that
 * disagrees with the memory behind it). */
#ifndef VISREG_FUZZ_UTIL_H
#define VISREG_FUZZ_UTIL_H
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include "../../core/visreg.h"

static char fz_dir[256];
static char fz_names[8][320];
static int fz_nnames;

static inline void fz_cleanup(void) {
  for (int k = 0; k < fz_nnames; k++) unlink(fz_names[k]);
  if (fz_dir[0]) rmdir(fz_dir);
}

/* the folder is made once per process and removed at exit */
static inline const char *fz_path(const char *name) {
  if (!fz_dir[0]) {
    const char *t = getenv("TMPDIR");
    snprintf(fz_dir, sizeof fz_dir, "%s/visreg_fuzz_XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(fz_dir)) {
      perror("mkdtemp");
      abort();
    }
    atexit(fz_cleanup);
  }
  for (int k = 0; k < fz_nnames; k++)
    if (!strcmp(strrchr(fz_names[k], '/') + 1, name)) return fz_names[k];
  if (fz_nnames == 8) abort();
  snprintf(fz_names[fz_nnames], sizeof fz_names[0], "%s/%s", fz_dir, name);
  return fz_names[fz_nnames++];
}

static inline void fz_write(const char *path, const void *d, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f || (n && fwrite(d, 1, n, f) != n) || fclose(f)) {
    perror(path);
    abort();
  }
}

/* d gzip-compressed into a malloc'd buffer (*n gets its length) */
static inline unsigned char *fz_gzip(const void *d, size_t len, size_t *n) {
  z_stream z;
  memset(&z, 0, sizeof z);
  if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) abort();
  size_t cap = deflateBound(&z, (uLong)len) + 32;
  unsigned char *out = malloc(cap);
  z.next_in = (unsigned char *)(uintptr_t)d;
  z.avail_in = (uInt)len;
  z.next_out = out;
  z.avail_out = (uInt)cap;
  if (!out || deflate(&z, Z_FINISH) != Z_STREAM_END) abort();
  *n = z.total_out;
  deflateEnd(&z);
  return out;
}

/* every element of t read back through the API; the byte count it claims must be readable */
static inline void fz_touch_tensor(const vr_tensor *t) {
  int64_t n = vr_tensor_numel(t);
  if (n < 0) abort();
  size_t es = vr_dtype_size(vr_tensor_dtype(t));
  size_t nb = (size_t)n * es;
  unsigned char *buf = malloc(nb ? nb : 1);
  if (!buf) abort();
  if (vr_tensor_to_buffer(t, buf, nb) != VR_OK) abort();
  unsigned acc = 0;
  for (size_t k = 0; k < nb; k++) acc += buf[k];
  free(buf);
  /* the sizes multiply to numel */
  int64_t m = 1;
  for (int d = 0; d < vr_tensor_ndim(t); d++) m *= vr_tensor_size(t, d);
  if (m != n) abort();
  (void)acc;
}

/* opens a safetensors file and loads every tensor it names */
static inline void fz_ckpt_file(const char *path) {
  vr_ckpt_reader *r = NULL;
  if (vr_ckpt_open(path, &r) != VR_OK) {
    if (r) abort(); /* a failed open hands nothing back */
    return;
  }
  for (int k = 0; k < vr_ckpt_meta_count(r); k++) {
    const char *key = vr_ckpt_meta_key(r, k);
    if (!key || !vr_ckpt_meta(r, key)) abort();
  }
  for (int k = 0; k < vr_ckpt_count(r); k++) {
    const char *name = vr_ckpt_name(r, k);
    vr_tensor *t = NULL;
    if (!name || !vr_ckpt_has(r, name)) abort();
    if (vr_ckpt_load(r, name, &t) == VR_OK) {
      fz_touch_tensor(t);
      vr_tensor_free(t);
    }
  }
  vr_ckpt_close(r);
}

#endif
