/* dataset.c: in-memory image datasets (u8 N x C x H x W plus i64 labels): Fashion-MNIST / MNIST IDX
 * files (gzip via zlib or plain), the CIFAR-10/100 binary format, and derived datasets (index and
 * class subsets, long-tailed subsampling, label-free copies). */
#include "data.h"
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define vr_error_set_f(func, st, ...) vr_error_set((st), (func), __FILE__, __LINE__, __VA_ARGS__)
#define FMNIST_ROOT "/usr/share/datasets/fashion-mnist"

vr_status vr_dataset_make(vr_tensor *images, int64_t *labels, int num_classes, int has_labels, vr_dataset **out) {
  vr_dataset *d = calloc(1, sizeof *d);
  if (!d) {
    vr_tensor_free(images);
    free(labels);
    return VR_FAIL(VR_E_OOM, "dataset: out of host memory");
  }
  d->images = images;
  d->labels = labels;
  d->n = images->shape[0];
  d->c = images->shape[1];
  d->h = images->shape[2];
  d->w = images->shape[3];
  d->num_classes = has_labels ? num_classes : 0;
  d->has_labels = has_labels;
  *out = d;
  return VR_OK;
}

void vr_dataset_free(vr_dataset *d) {
  if (!d) return;
  vr_tensor_free(d->images);
  free(d->labels);
  free(d);
}

/* ---------------------------------------------------------------- reading files */

/* Files are read through zlib's gz layer (plain files pass through). A file's header declares how
 * many bytes follow; nothing is allocated for bytes that have not arrived: the payload buffer grows
 * as they come, never past the declared size, so that neither a short file nor a gzip bomb (a few
 * kilobytes that inflate to gigabytes) can make the reader allocate what the file does not hold,
 * and a declared size above the machine's memory is refused before anything is read. */

typedef struct gz_src {
  const char *func, *path;
  gzFile gz;
} gz_src;

static vr_status gz_open(const char *func, const char *path, gz_src *g) {
  g->func = func;
  g->path = path;
  g->gz = NULL;
  FILE *probe = fopen(path, "rb");
  if (!probe) return vr_error_set_f(func, VR_E_IO, "path: cannot open '%s': %s", path, strerror(errno));
  fclose(probe);
  g->gz = gzopen(path, "rb");
  if (!g->gz) return vr_error_set_f(func, VR_E_IO, "path: cannot open '%s'", path);
  gzbuffer(g->gz, 1 << 17);
  return VR_OK;
}

static void gz_close(gz_src *g) {
  if (g->gz) gzclose(g->gz);
  g->gz = NULL;
}

/* reads up to n bytes into dst; *got gets how many (fewer only at the end of the data); a damaged
 * or cut gzip stream is VR_E_FORMAT */
static vr_status gz_take(gz_src *g, void *dst, size_t n, size_t *got) {
  *got = 0;
  while (*got < n) {
    size_t ask = n - *got > (1u << 30) ? (1u << 30) : n - *got;
    int r = gzread(g->gz, (unsigned char *)dst + *got, (unsigned)ask);
    if (r < 0) {
      int e;
      const char *msg = gzerror(g->gz, &e);
      return vr_error_set_f(g->func, VR_E_FORMAT, "path: '%s' is a damaged gzip file: %s", g->path, msg);
    }
    if (r == 0) {
      /* a gzip stream cut short reads as the end with Z_BUF_ERROR */
      int e = Z_OK;
      gzerror(g->gz, &e);
      if (e != Z_OK && e != Z_STREAM_END)
        return vr_error_set_f(g->func, VR_E_FORMAT, "path: '%s' is a truncated gzip file", g->path);
      break;
    }
    *got += (size_t)r;
  }
  return VR_OK;
}

/* bytes of memory on this machine (0 when unknown) */
static uint64_t host_memory(void) {
  long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
  return pages > 0 && size > 0 ? (uint64_t)pages * (uint64_t)size : 0;
}

/* the rest of the data, at most max bytes, into a buffer grown as they arrive; *len gets how many.
 * exact: fewer than max bytes is a truncated file. More than max bytes is an error either way
 * (what: the message's description of the limit). */
static vr_status gz_rest(gz_src *g, uint64_t max, int exact, const char *what, unsigned char **out, size_t *len) {
  *out = NULL;
  *len = 0;
  uint64_t mem = host_memory();
  if (exact && mem && max > mem)
    return vr_error_set_f(g->func, VR_E_FORMAT, "path: '%s' declares %llu data bytes (%s), more than this machine's memory (%llu bytes)",
                          g->path, (unsigned long long)max, what, (unsigned long long)mem);
  if (max > SIZE_MAX / 2) max = SIZE_MAX / 2;
  size_t cap = max < (1u << 20) ? (size_t)max : (1u << 20), n = 0;
  unsigned char *buf = malloc(cap ? cap : 1);
  if (!buf) return vr_error_set_f(g->func, VR_E_OOM, "'%s': out of host memory", g->path);
  vr_status st = VR_OK;
  for (;;) {
    if (n == cap) {
      if (n == max) break;
      size_t nc = cap > max / 2 ? (size_t)max : cap * 2;
      unsigned char *q = realloc(buf, nc);
      if (!q) {
        st = vr_error_set_f(g->func, VR_E_OOM, "'%s': out of host memory after %zu bytes", g->path, n);
        goto fail;
      }
      buf = q;
      cap = nc;
    }
    size_t got;
    st = gz_take(g, buf + n, cap - n, &got);
    if (st) goto fail;
    n += got;
    if (n < cap) break; /* the end of the data */
  }
  if (n == max) { /* one byte more would be past what the header declares */
    unsigned char extra;
    size_t got;
    st = gz_take(g, &extra, 1, &got);
    if (st) goto fail;
    if (got) {
      st = vr_error_set_f(g->func, VR_E_FORMAT, "path: '%s' holds more than %llu data bytes (%s)", g->path,
                          (unsigned long long)max, what);
      goto fail;
    }
  } else if (exact) {
    st = vr_error_set_f(g->func, VR_E_FORMAT, "path: '%s' is truncated: its header promises %llu data bytes (%s), the file has %zu",
                        g->path, (unsigned long long)max, what, n);
    goto fail;
  }
  *out = buf;
  *len = n;
  return VR_OK;
fail:
  free(buf);
  return st;
}

static uint32_t be32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* reads an IDX file of u8 with want_ndim dims: dims[] gets the sizes, *payload (malloc'd) the
 * dims' product of bytes, checked against what the file holds */
static vr_status idx_read(const char *func, const char *path, int want_ndim, int64_t *dims, unsigned char **payload) {
  *payload = NULL;
  gz_src g;
  VR_TRY(gz_open(func, path, &g));
  vr_status st = VR_OK;
  unsigned char h[4 + 4 * 3];
  size_t got, len;
  VR_TRYG(gz_take(&g, h, 4, &got));
  if (got < 4) {
    st = vr_error_set_f(func, VR_E_FORMAT, "path: '%s' is truncated: %zu bytes, no IDX header", path, got);
    goto done;
  }
  if (h[0] != 0 || h[1] != 0) {
    st = vr_error_set_f(func, VR_E_FORMAT, "path: '%s' is not an IDX file (bad magic %02x%02x)", path, h[0], h[1]);
    goto done;
  }
  if (h[2] != 0x08) {
    st = vr_error_set_f(func, VR_E_FORMAT, "path: '%s': expected IDX type 0x08 (unsigned byte), got 0x%02x", path, h[2]);
    goto done;
  }
  if (h[3] != want_ndim) {
    st = vr_error_set_f(func, VR_E_FORMAT, "path: '%s': expected %d IDX dims, got %d", path, want_ndim, h[3]);
    goto done;
  }
  VR_TRYG(gz_take(&g, h + 4, 4 * (size_t)want_ndim, &got));
  if (got < 4 * (size_t)want_ndim) {
    st = vr_error_set_f(func, VR_E_FORMAT, "path: '%s' is truncated: %zu bytes, header needs %zu", path, 4 + got,
                        4 + 4 * (size_t)want_ndim);
    goto done;
  }
  for (int k = 0; k < want_ndim; k++) dims[k] = be32(h + 4 + 4 * k);
  char what[160];
  vr_shape_str(want_ndim, dims, what, sizeof what);
  int64_t total;
  if (!vr_numel_checked(want_ndim, dims, &total)) {
    st = vr_error_set_f(func, VR_E_FORMAT, "path: '%s': IDX dims %s multiply past %lld bytes, not a real file", path, what,
                        (long long)VR_MAX_NUMEL);
    goto done;
  }
  char desc[200];
  snprintf(desc, sizeof desc, "IDX dims %s", what);
  VR_TRYG(gz_rest(&g, (uint64_t)total, 1, desc, payload, &len));
done:
  gz_close(&g);
  return st;
}

vr_status vr_dataset_idx(const char *images_path, const char *labels_path, int num_classes, vr_dataset **out) {
  VR_CHECK_OUT(out);
  *out = NULL;
  if (!images_path) return VR_FAIL(VR_E_ARG, "images_path: expected a file name, got NULL");
  if (num_classes < 0) return VR_FAIL(VR_E_ARG, "num_classes: expected >= 0, got %d", num_classes);
  vr_status st = VR_OK;
  unsigned char *ipay = NULL, *lpay = NULL;
  int64_t *labels = NULL;
  vr_tensor *img = NULL;
  int64_t idims[3], ldims[1];
  VR_TRYG(idx_read(__func__, images_path, 3, idims, &ipay));
  if (idims[1] < 1 || idims[2] < 1) {
    st = VR_FAIL(VR_E_FORMAT, "images_path: '%s' holds images of %lld x %lld pixels, expected at least 1 x 1", images_path,
                 (long long)idims[1], (long long)idims[2]);
    goto done;
  }
  if (labels_path) {
    VR_TRYG(idx_read(__func__, labels_path, 1, ldims, &lpay));
    if (ldims[0] != idims[0]) {
      st = VR_FAIL(VR_E_FORMAT, "labels_path: '%s' has %lld labels, expected %lld like '%s'", labels_path,
                   (long long)ldims[0], (long long)idims[0], images_path);
      goto done;
    }
  }
  /* the images are there (idx_read checked), so n labels are no more than the pixels read */
  int64_t shape[4] = {idims[0], 1, idims[1], idims[2]};
  VR_TRYG(vr_tensor_alloc(4, shape, VR_U8, VR_CPU, &img));
  memcpy(vr_data(img), ipay, (size_t)vr_tensor_numel(img));
  labels = malloc(sizeof(int64_t) * (size_t)(idims[0] ? idims[0] : 1));
  if (!labels) {
    st = VR_FAIL(VR_E_OOM, "labels: out of host memory");
    goto done;
  }
  int maxl = -1;
  for (int64_t i = 0; i < idims[0]; i++) {
    labels[i] = lpay ? lpay[i] : -1;
    if (labels[i] > maxl) maxl = (int)labels[i];
  }
  if (lpay && num_classes && maxl >= num_classes) {
    st = VR_FAIL(VR_E_FORMAT, "labels_path: '%s' has label %d, expected < num_classes %d", labels_path, maxl, num_classes);
    goto done;
  }
  st = vr_dataset_make(img, labels, lpay ? (num_classes ? num_classes : maxl + 1) : 0, lpay != NULL, out);
  img = NULL;
  labels = NULL;
done:
  free(ipay);
  free(lpay);
  free(labels);
  vr_tensor_free(img);
  return st;
}

static const char *root_or(const char *root, const char *dflt) { return root && *root ? root : dflt; }

vr_status vr_dataset_fashion_mnist(const char *root, int train, vr_dataset **out) {
  VR_CHECK_OUT(out);
  *out = NULL;
  root = root_or(root, FMNIST_ROOT);
  char ip[4096], lp[4096];
  const char *pre = train ? "train" : "t10k";
  snprintf(ip, sizeof ip, "%s/%s-images-idx3-ubyte.gz", root, pre);
  snprintf(lp, sizeof lp, "%s/%s-labels-idx1-ubyte.gz", root, pre);
  /* plain (already gunzipped) files are accepted too */
  FILE *f = fopen(ip, "rb");
  if (f) fclose(f);
  else {
    char alt[4096];
    snprintf(alt, sizeof alt, "%s/%s-images-idx3-ubyte", root, pre);
    if ((f = fopen(alt, "rb"))) {
      fclose(f);
      memcpy(ip, alt, sizeof alt);
      snprintf(lp, sizeof lp, "%s/%s-labels-idx1-ubyte", root, pre);
    }
  }
  return vr_dataset_idx(ip, lp, 10, out);
}

/* CIFAR records: [coarse] label, 3072 bytes (R, G, B planes of 32 x 32); a file holds at most
 * 50000 (CIFAR-100's train.bin; CIFAR-10's batches hold 10000) */
#define CIFAR_MAX_RECORDS 50000
#define CIFAR_MAX_RECORDS_S "50000"
static vr_status cifar_load(const char *func, const char *root, const char *const *files, int nfiles, int label_bytes,
                            int label_pick, int num_classes, vr_dataset **out) {
  const size_t rec = (size_t)label_bytes + 3072;
  vr_status st = VR_OK;
  unsigned char *bufs[8] = {0};
  size_t lens[8] = {0};
  int64_t n = 0;
  vr_tensor *img = NULL;
  int64_t *labels = NULL;
  char path[4096];
  for (int k = 0; k < nfiles; k++) {
    snprintf(path, sizeof path, "%s/%s", root, files[k]);
    gz_src g;
    st = gz_open(func, path, &g);
    if (!st) st = gz_rest(&g, (uint64_t)CIFAR_MAX_RECORDS * rec, 0, "the largest CIFAR file holds " CIFAR_MAX_RECORDS_S " records",
                          &bufs[k], &lens[k]);
    gz_close(&g);
    if (st) goto done;
    if (lens[k] == 0 || lens[k] % rec) {
      st = vr_error_set(VR_E_FORMAT, func, __FILE__, __LINE__,
                        "root: '%s' has %zu bytes, expected a whole number of %zu-byte CIFAR records (truncated?)",
                        path, lens[k], rec);
      goto done;
    }
    n += (int64_t)(lens[k] / rec);
  }
  int64_t shape[4] = {n, 3, 32, 32};
  VR_TRYG(vr_tensor_alloc(4, shape, VR_U8, VR_CPU, &img));
  labels = malloc(sizeof(int64_t) * (size_t)n);
  if (!labels) {
    st = VR_FAIL(VR_E_OOM, "labels: out of host memory");
    goto done;
  }
  uint8_t *dst = vr_data(img);
  int64_t i = 0;
  for (int k = 0; k < nfiles; k++)
    for (size_t r = 0; r < lens[k] / rec; r++, i++) {
      const unsigned char *p = bufs[k] + r * rec;
      labels[i] = p[label_pick];
      if (labels[i] >= num_classes) {
        snprintf(path, sizeof path, "%s/%s", root, files[k]);
        st = vr_error_set(VR_E_FORMAT, func, __FILE__, __LINE__, "root: '%s' record %zu has label %lld, expected < %d",
                          path, r, (long long)labels[i], num_classes);
        goto done;
      }
      memcpy(dst + (size_t)i * 3072, p + label_bytes, 3072);
    }
  st = vr_dataset_make(img, labels, num_classes, 1, out);
  img = NULL;
  labels = NULL;
done:
  for (int k = 0; k < nfiles; k++) free(bufs[k]);
  vr_tensor_free(img);
  free(labels);
  return st;
}

vr_status vr_dataset_cifar10(const char *root, int train, vr_dataset **out) {
  VR_CHECK_OUT(out);
  *out = NULL;
  if (!root || !*root) return VR_FAIL(VR_E_ARG, "root: expected the cifar-10-batches-bin folder, got none");
  static const char *const tr[] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin",
                                   "data_batch_5.bin"};
  static const char *const te[] = {"test_batch.bin"};
  return cifar_load(__func__, root, train ? tr : te, train ? 5 : 1, 1, 0, 10, out);
}

vr_status vr_dataset_cifar100(const char *root, int train, int coarse, vr_dataset **out) {
  VR_CHECK_OUT(out);
  *out = NULL;
  if (!root || !*root) return VR_FAIL(VR_E_ARG, "root: expected the cifar-100-binary folder, got none");
  static const char *const tr[] = {"train.bin"};
  static const char *const te[] = {"test.bin"};
  return cifar_load(__func__, root, train ? tr : te, 1, 2, coarse ? 0 : 1, coarse ? 20 : 100, out);
}

vr_status vr_dataset_from_tensors(const vr_tensor *images, const vr_tensor *labels, int num_classes, vr_dataset **out) {
  VR_CHECK_OUT(out);
  *out = NULL;
  VR_CHECK_TENSOR(images);
  if (images->dtype != VR_U8) return VR_FAIL(VR_E_DTYPE, "images: expected u8, got %s", vr_dtype_name(images->dtype));
  if (images->ndim != 3 && images->ndim != 4)
    return VR_FAIL(VR_E_SHAPE, "images: expected N x C x H x W or N x H x W, got %d dims", images->ndim);
  if (images->device != VR_CPU) return VR_FAIL(VR_E_DEVICE, "images: expected a CPU tensor, got %s", vr_device_name(images->device));
  if (num_classes < 0) return VR_FAIL(VR_E_ARG, "num_classes: expected >= 0, got %d", num_classes);
  int64_t n = images->shape[0];
  if (labels) {
    if (labels->ndim != 1 || labels->shape[0] != n)
      return VR_FAIL(VR_E_SHAPE, "labels: expected %lld labels (1-D), got %lld elements in %d dims", (long long)n,
                     (long long)vr_tensor_numel(labels), labels->ndim);
    if (labels->dtype != VR_I64 && labels->dtype != VR_I32)
      return VR_FAIL(VR_E_DTYPE, "labels: expected i64 or i32, got %s", vr_dtype_name(labels->dtype));
  }
  int64_t *lab = malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
  if (!lab) return VR_FAIL(VR_E_OOM, "labels: out of host memory");
  int maxl = -1;
  if (labels) {
    vr_tensor *l64 = NULL;
    vr_status st = vr_tensor_to_dtype(labels, VR_I64, &l64);
    if (!st) st = vr_tensor_to_buffer(l64, lab, sizeof(int64_t) * (size_t)n);
    vr_tensor_free(l64);
    if (st) {
      free(lab);
      return st;
    }
    for (int64_t i = 0; i < n; i++) {
      if (lab[i] < 0 || (num_classes && lab[i] >= num_classes)) {
        free(lab);
        return VR_FAIL(VR_E_VALUE, "labels: element %lld is %lld, expected 0..%d", (long long)i, (long long)lab[i],
                       num_classes ? num_classes - 1 : 2147483647);
      }
      if (lab[i] > maxl) maxl = (int)lab[i];
    }
  } else
    for (int64_t i = 0; i < n; i++) lab[i] = -1;
  int64_t shape[4] = {n, images->ndim == 4 ? images->shape[1] : 1, images->shape[images->ndim - 2],
                      images->shape[images->ndim - 1]};
  vr_tensor *img = NULL, *src = NULL;
  vr_status st = vr_tensor_alloc(4, shape, VR_U8, VR_CPU, &img);
  if (!st) st = vr_contiguous_raw(images, &src);
  if (!st) memcpy(vr_data(img), vr_data(src), (size_t)vr_tensor_numel(img));
  vr_tensor_free(src);
  if (st) {
    vr_tensor_free(img);
    free(lab);
    return st;
  }
  return vr_dataset_make(img, lab, labels ? (num_classes ? num_classes : maxl + 1) : 0, labels != NULL, out);
}

/* ---------------------------------------------------------------- accessors */

int64_t vr_dataset_count(const vr_dataset *d) { return d ? d->n : 0; }
int64_t vr_dataset_channels(const vr_dataset *d) { return d ? d->c : 0; }
int64_t vr_dataset_height(const vr_dataset *d) { return d ? d->h : 0; }
int64_t vr_dataset_width(const vr_dataset *d) { return d ? d->w : 0; }
int vr_dataset_num_classes(const vr_dataset *d) { return d ? d->num_classes : 0; }
int vr_dataset_has_labels(const vr_dataset *d) { return d ? d->has_labels : 0; }
int64_t vr_dataset_label(const vr_dataset *d, int64_t i) { return d && i >= 0 && i < d->n ? d->labels[i] : -1; }
const uint8_t *vr_dataset_image_data(const vr_dataset *d, int64_t i) {
  if (!d || i < 0 || i >= d->n) return NULL;
  return (const uint8_t *)vr_data(d->images) + (size_t)(i * d->c * d->h * d->w);
}
int64_t vr_dataset_class_count(const vr_dataset *d, int cls) {
  if (!d || !d->has_labels) return 0;
  int64_t k = 0;
  for (int64_t i = 0; i < d->n; i++) k += d->labels[i] == cls;
  return k;
}

vr_status vr_dataset_images(const vr_dataset *d, vr_tensor **out) {
  VR_CHECK_OUT(out);
  if (!d) return VR_FAIL(VR_E_ARG, "d: expected a dataset, got NULL");
  vr_tensor_retain(d->images);
  *out = d->images;
  return VR_OK;
}

vr_status vr_dataset_images_f32(const vr_dataset *d, vr_tensor **out) {
  VR_CHECK_OUT(out);
  if (!d) return VR_FAIL(VR_E_ARG, "d: expected a dataset, got NULL");
  VR_TRY(vr_tensor_alloc(4, d->images->shape, VR_F32, VR_CPU, out));
  const uint8_t *s = vr_data(d->images);
  float *o = vr_data(*out);
  int64_t n = vr_tensor_numel(*out);
  for (int64_t i = 0; i < n; i++) o[i] = s[i] * (1.0f / 255.0f);
  return VR_OK;
}

vr_status vr_dataset_labels(const vr_dataset *d, vr_tensor **out) {
  VR_CHECK_OUT(out);
  if (!d) return VR_FAIL(VR_E_ARG, "d: expected a dataset, got NULL");
  return vr_tensor_from_buffer(d->labels, 1, &d->n, VR_I64, VR_CPU, out);
}

/* ---------------------------------------------------------------- derived datasets */

/* copies the chosen images; labels are passed through map (NULL: kept) */
static vr_status take(const vr_dataset *d, int64_t n, const int64_t *idx, const int *map, int num_classes,
                      int has_labels, vr_dataset **out) {
  int64_t shape[4] = {n, d->c, d->h, d->w};
  vr_tensor *img = NULL;
  VR_TRY(vr_tensor_alloc(4, shape, VR_U8, VR_CPU, &img));
  int64_t *lab = malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
  if (!lab) {
    vr_tensor_free(img);
    return VR_FAIL(VR_E_OOM, "labels: out of host memory");
  }
  size_t isz = (size_t)(d->c * d->h * d->w);
  const uint8_t *src = vr_data(d->images);
  uint8_t *dst = vr_data(img);
  for (int64_t k = 0; k < n; k++) {
    memcpy(dst + (size_t)k * isz, src + (size_t)idx[k] * isz, isz);
    int64_t l = d->labels[idx[k]];
    lab[k] = !has_labels ? -1 : map ? map[l] : l;
  }
  return vr_dataset_make(img, lab, num_classes, has_labels, out);
}

vr_status vr_dataset_subset(const vr_dataset *d, int64_t n, const int64_t *indices, vr_dataset **out) {
  VR_CHECK_OUT(out);
  *out = NULL;
  if (!d) return VR_FAIL(VR_E_ARG, "d: expected a dataset, got NULL");
  if (n < 0 || (n > 0 && !indices)) return VR_FAIL(VR_E_ARG, "n, indices: expected n >= 0 indices, got n = %lld%s", (long long)n, indices ? "" : " and NULL");
  for (int64_t k = 0; k < n; k++)
    if (indices[k] < 0 || indices[k] >= d->n)
      return VR_FAIL(VR_E_ARG, "indices: element %lld is %lld, expected 0..%lld", (long long)k, (long long)indices[k],
                     (long long)d->n - 1);
  return take(d, n, indices, NULL, d->num_classes, d->has_labels, out);
}

vr_status vr_dataset_head(const vr_dataset *d, int64_t n, vr_dataset **out) {
  VR_CHECK_OUT(out);
  *out = NULL;
  if (!d) return VR_FAIL(VR_E_ARG, "d: expected a dataset, got NULL");
  if (n < 0 || n > d->n) return VR_FAIL(VR_E_ARG, "n: expected 0..%lld, got %lld", (long long)d->n, (long long)n);
  int64_t *idx = malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
  if (!idx) return VR_FAIL(VR_E_OOM, "indices: out of host memory");
  for (int64_t k = 0; k < n; k++) idx[k] = k;
  vr_status st = take(d, n, idx, NULL, d->num_classes, d->has_labels, out);
  free(idx);
  return st;
}

vr_status vr_dataset_class_subset(const vr_dataset *d, int n, const int *classes, int relabel, vr_dataset **out) {
  VR_CHECK_OUT(out);
  *out = NULL;
  if (!d) return VR_FAIL(VR_E_ARG, "d: expected a dataset, got NULL");
  if (!d->has_labels) return VR_FAIL(VR_E_ARG, "d: expected a labelled dataset, got a label-free one");
  if (n <= 0 || !classes) return VR_FAIL(VR_E_ARG, "n, classes: expected at least one class, got %d", n);
  int *map = malloc(sizeof(int) * (size_t)d->num_classes);
  if (!map) return VR_FAIL(VR_E_OOM, "classes: out of host memory");
  for (int c = 0; c < d->num_classes; c++) map[c] = -1;
  for (int k = 0; k < n; k++) {
    if (classes[k] < 0 || classes[k] >= d->num_classes || map[classes[k]] >= 0) {
      int c = classes[k];
      free(map);
      return VR_FAIL(VR_E_ARG, "classes: element %d is %d, expected distinct classes 0..%d", k, c, d->num_classes - 1);
    }
    map[classes[k]] = relabel ? k : classes[k];
  }
  int64_t m = 0;
  int64_t *idx = malloc(sizeof(int64_t) * (size_t)(d->n ? d->n : 1));
  if (!idx) {
    free(map);
    return VR_FAIL(VR_E_OOM, "indices: out of host memory");
  }
  for (int64_t i = 0; i < d->n; i++)
    if (map[d->labels[i]] >= 0) idx[m++] = i;
  vr_status st = take(d, m, idx, map, relabel ? n : d->num_classes, 1, out);
  free(idx);
  free(map);
  return st;
}

vr_status vr_dataset_long_tail(const vr_dataset *d, double imbalance, vr_dataset **out) {
  VR_CHECK_OUT(out);
  *out = NULL;
  if (!d) return VR_FAIL(VR_E_ARG, "d: expected a dataset, got NULL");
  if (!d->has_labels) return VR_FAIL(VR_E_ARG, "d: expected a labelled dataset, got a label-free one");
  if (!(imbalance >= 1)) return VR_FAIL(VR_E_ARG, "imbalance: expected a ratio >= 1, got %g", imbalance);
  int C = d->num_classes;
  int64_t *keep = calloc((size_t)C, sizeof(int64_t)), nmax = 0;
  int64_t *idx = malloc(sizeof(int64_t) * (size_t)(d->n ? d->n : 1));
  if (!keep || !idx) {
    free(keep);
    free(idx);
    return VR_FAIL(VR_E_OOM, "long tail: out of host memory");
  }
  for (int c = 0; c < C; c++) {
    int64_t k = vr_dataset_class_count(d, c);
    if (k > nmax) nmax = k;
  }
  /* the same rule as the LT-CIFAR code: n_max * (1/r)^(c/(C-1)), truncated */
  for (int c = 0; c < C; c++) keep[c] = C > 1 ? (int64_t)(nmax * pow(1.0 / imbalance, (double)c / (C - 1))) : nmax;
  int64_t m = 0;
  for (int64_t i = 0; i < d->n; i++) {
    int64_t l = d->labels[i];
    if (keep[l] > 0) {
      keep[l]--;
      idx[m++] = i;
    }
  }
  vr_status st = take(d, m, idx, NULL, C, 1, out);
  free(keep);
  free(idx);
  return st;
}

vr_status vr_dataset_unlabeled(const vr_dataset *d, vr_dataset **out) {
  VR_CHECK_OUT(out);
  *out = NULL;
  if (!d) return VR_FAIL(VR_E_ARG, "d: expected a dataset, got NULL");
  int64_t *idx = malloc(sizeof(int64_t) * (size_t)(d->n ? d->n : 1));
  if (!idx) return VR_FAIL(VR_E_OOM, "indices: out of host memory");
  for (int64_t k = 0; k < d->n; k++) idx[k] = k;
  vr_status st = take(d, d->n, idx, NULL, 0, 0, out);
  free(idx);
  return st;
}
