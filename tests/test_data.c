/* test_data.c: datasets (Fashion-MNIST from the installed IDX .gz files, synthetic IDX and CIFAR
 * files written here, errors for missing and truncated files, subsets, long-tailed counts,
 * label-free mode) and the multi-view loader (batch shapes, drop_last, shuffling, determinism
 * across worker counts, views as a pure function of (seed, epoch, sample, view), exact resume, raw
 * mode's u8 batches whose vr_pipeline_apply_ids views equal the loader's). */
#include "testutil.h"
#include <unistd.h>
#include <zlib.h>


static void put_be32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)(v >> 24);
  p[1] = (unsigned char)(v >> 16);
  p[2] = (unsigned char)(v >> 8);
  p[3] = (unsigned char)v;
}

/* writes bytes, gzip-compressed when gz */
static void write_bytes(const char *path, const unsigned char *b, size_t n, int gz) {
  if (gz) {
    gzFile f = gzopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(gzwrite(f, b, (unsigned)n), (int)n);
    gzclose(f);
  } else {
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(b, 1, n, f), n);
    fclose(f);
  }
}

/* n images of h x w with pixel (i, y, x) = i*31 + y*7 + x (mod 256); label i % 3 */
static void write_idx(const char *ipath, const char *lpath, int n, int h, int w, int gz) {
  size_t isz = 16 + (size_t)n * h * w;
  unsigned char *b = malloc(isz), l[64];
  b[0] = b[1] = 0;
  b[2] = 8;
  b[3] = 3;
  put_be32(b + 4, (uint32_t)n);
  put_be32(b + 8, (uint32_t)h);
  put_be32(b + 12, (uint32_t)w);
  for (int i = 0; i < n; i++)
    for (int y = 0; y < h; y++)
      for (int x = 0; x < w; x++) b[16 + (i * h + y) * w + x] = (unsigned char)(i * 31 + y * 7 + x);
  write_bytes(ipath, b, isz, gz);
  l[0] = l[1] = 0;
  l[2] = 8;
  l[3] = 1;
  put_be32(l + 4, (uint32_t)n);
  for (int i = 0; i < n; i++) l[8 + i] = (unsigned char)(i % 3);
  write_bytes(lpath, l, 8 + (size_t)n, gz);
  free(b);
}

START_TEST(fashion_mnist) {
  vr_dataset *tr = NULL, *te = NULL;
  OK(vr_dataset_fashion_mnist(NULL, 1, &tr));
  OK(vr_dataset_fashion_mnist("/usr/share/datasets/fashion-mnist", 0, &te));
  ck_assert_int_eq(vr_dataset_count(tr), 60000);
  ck_assert_int_eq(vr_dataset_count(te), 10000);
  ck_assert(vr_dataset_channels(tr) == 1 && vr_dataset_height(tr) == 28 && vr_dataset_width(tr) == 28);
  ck_assert_int_eq(vr_dataset_num_classes(tr), 10);
  for (int c = 0; c < 10; c++) ck_assert_int_eq(vr_dataset_class_count(tr, c), 6000);
  /* the first labels and a row of the first image, as in the files */
  ck_assert(vr_dataset_label(tr, 0) == 9 && vr_dataset_label(tr, 1) == 0 && vr_dataset_label(tr, 3) == 3);
  ck_assert(vr_dataset_label(te, 0) == 9 && vr_dataset_label(te, 1) == 2);
  const uint8_t *im = vr_dataset_image_data(tr, 0);
  ck_assert(im[14 * 28 + 3] == 4 && im[14 * 28 + 12] == 237 && im[14 * 28 + 25] == 255);
  vr_tensor *x = NULL, *y = NULL, *f = NULL;
  OK(vr_dataset_images(te, &x));
  OK(vr_dataset_labels(te, &y));
  OK(vr_dataset_images_f32(te, &f));
  ck_assert(vr_tensor_ndim(x) == 4 && vr_tensor_size(x, 0) == 10000 && vr_tensor_dtype(x) == VR_U8);
  ck_assert(vr_tensor_dtype(y) == VR_I64 && vr_tensor_size(y, 0) == 10000);
  ck_assert(vr_tensor_dtype(f) == VR_F32);
  ck_assert_float_eq_tol(((float *)vr_tensor_data(f))[5], ((uint8_t *)vr_tensor_data(x))[5] / 255.0f, 1e-7);
  vr_tensor_free(x);
  vr_tensor_free(y);
  vr_tensor_free(f);
  /* long tail with ratio 100: 6000 .. 60 */
  vr_dataset *lt = NULL;
  OK(vr_dataset_long_tail(tr, 100, &lt));
  ck_assert_int_eq(vr_dataset_class_count(lt, 0), 6000);
  ck_assert_int_eq(vr_dataset_class_count(lt, 9), 60);
  ck_assert_int_eq(vr_dataset_class_count(lt, 4), (int64_t)(6000 * pow(0.01, 4.0 / 9)));
  vr_dataset_free(lt);
  vr_dataset_free(tr);
  vr_dataset_free(te);
}
END_TEST

START_TEST(idx_synthetic) {
  for (int gz = 0; gz < 2; gz++) {
    const char *ip = tu_in_dir(gz ? "im.gz" : "im"), *lp = tu_in_dir(gz ? "lb.gz" : "lb");
    write_idx(ip, lp, 5, 3, 4, gz);
    vr_dataset *d = NULL;
    OK(vr_dataset_idx(ip, lp, 0, &d));
    ck_assert(vr_dataset_count(d) == 5 && vr_dataset_height(d) == 3 && vr_dataset_width(d) == 4);
    ck_assert_int_eq(vr_dataset_num_classes(d), 3);
    for (int i = 0; i < 5; i++) {
      ck_assert_int_eq(vr_dataset_label(d, i), i % 3);
      const uint8_t *p = vr_dataset_image_data(d, i);
      for (int y = 0; y < 3; y++)
        for (int x = 0; x < 4; x++) ck_assert_int_eq(p[y * 4 + x], (uint8_t)(i * 31 + y * 7 + x));
    }
    ck_assert_int_eq(vr_dataset_label(d, 5), -1);
    ck_assert_ptr_null(vr_dataset_image_data(d, -1));
    vr_dataset_free(d);
    /* without labels: label-free */
    OK(vr_dataset_idx(ip, NULL, 0, &d));
    ck_assert(!vr_dataset_has_labels(d) && vr_dataset_num_classes(d) == 0 && vr_dataset_label(d, 0) == -1);
    vr_dataset_free(d);
  }
  /* a root folder with plain (gunzipped) Fashion-MNIST names */
  write_idx(tu_in_dir("t10k-images-idx3-ubyte"), tu_in_dir("t10k-labels-idx1-ubyte"), 4, 2, 2, 0);
  vr_dataset *d = NULL;
  OK(vr_dataset_fashion_mnist(tu_dir, 0, &d));
  ck_assert_int_eq(vr_dataset_count(d), 4);
  vr_dataset_free(d);
}
END_TEST

START_TEST(idx_errors) {
  vr_dataset *d = NULL;
  const char *missing = tu_in_dir("nothing-here.gz");
  FAILS(vr_dataset_idx(missing, NULL, 0, &d), VR_E_IO, missing);
  FAILS(vr_dataset_fashion_mnist("/nonexistent/fmnist", 1, &d), VR_E_IO, "/nonexistent/fmnist/train-images-idx3-ubyte.gz");
  /* gzip stream cut short */
  char ip[512], lp[512];
  snprintf(ip, sizeof ip, "%s/a.gz", tu_dir);
  snprintf(lp, sizeof lp, "%s/b.gz", tu_dir);
  write_idx(ip, lp, 50, 10, 10, 1);
  FILE *f = fopen(ip, "rb");
  unsigned char buf[8192];
  size_t n = fread(buf, 1, sizeof buf, f);
  fclose(f);
  const char *cut = tu_in_dir("cut.gz");
  write_bytes(cut, buf, n / 2, 0);
  FAILS(vr_dataset_idx(cut, lp, 0, &d), VR_E_FORMAT, cut);
  /* a complete file whose header promises more than it holds */
  unsigned char h[16 + 10] = {0, 0, 8, 3};
  put_be32(h + 4, 3);
  put_be32(h + 8, 2);
  put_be32(h + 12, 2);
  const char *shortf = tu_in_dir("short");
  write_bytes(shortf, h, sizeof h, 0);
  FAILS(vr_dataset_idx(shortf, NULL, 0, &d), VR_E_FORMAT, "truncated");
  FAILS(vr_dataset_idx(shortf, NULL, 0, &d), VR_E_FORMAT, shortf);
  h[2] = 0x0d;
  write_bytes(shortf, h, sizeof h, 0);
  FAILS(vr_dataset_idx(shortf, NULL, 0, &d), VR_E_FORMAT, "type");
  h[2] = 8;
  h[3] = 1;
  write_bytes(shortf, h, sizeof h, 0);
  FAILS(vr_dataset_idx(shortf, NULL, 0, &d), VR_E_FORMAT, "dims");
  /* labels of another length */
  char ipc[512], lpd[512];
  snprintf(ipc, sizeof ipc, "%s/c", tu_dir);
  snprintf(lpd, sizeof lpd, "%s/d", tu_dir);
  write_idx(ipc, lpd, 50, 2, 2, 0);
  write_idx(tu_in_dir("c4"), tu_in_dir("d4"), 4, 2, 2, 0);
  FAILS(vr_dataset_idx(ipc, tu_in_dir("d4"), 0, &d), VR_E_FORMAT, "labels");
  FAILS(vr_dataset_idx(ipc, tu_in_dir("d4"), 0, &d), VR_E_FORMAT, "vr_dataset_idx");
  ck_assert_ptr_null(d);
}
END_TEST

/* CIFAR records: label byte(s) then R, G, B planes; pixel = (record * 13 + channel * 5 + k) mod 256 */
static void write_cifar(const char *path, int nrec, int label_bytes, int first) {
  size_t rec = (size_t)label_bytes + 3072;
  unsigned char *b = malloc(rec * (size_t)nrec);
  for (int r = 0; r < nrec; r++) {
    unsigned char *p = b + rec * (size_t)r;
    int id = first + r;
    p[0] = (unsigned char)(id % (label_bytes == 2 ? 20 : 10));
    if (label_bytes == 2) p[1] = (unsigned char)(id % 100);
    for (int c = 0; c < 3; c++)
      for (int k = 0; k < 1024; k++) p[label_bytes + c * 1024 + k] = (unsigned char)(id * 13 + c * 5 + k);
  }
  write_bytes(path, b, rec * (size_t)nrec, 0);
  free(b);
}

START_TEST(cifar) {
  char name[64];
  for (int k = 1; k <= 5; k++) {
    snprintf(name, sizeof name, "data_batch_%d.bin", k);
    write_cifar(tu_in_dir(name), 3, 1, (k - 1) * 3);
  }
  write_cifar(tu_in_dir("test_batch.bin"), 2, 1, 100);
  vr_dataset *d = NULL;
  OK(vr_dataset_cifar10(tu_dir, 1, &d));
  ck_assert(vr_dataset_count(d) == 15 && vr_dataset_channels(d) == 3 && vr_dataset_height(d) == 32);
  ck_assert_int_eq(vr_dataset_num_classes(d), 10);
  ck_assert_int_eq(vr_dataset_label(d, 13), 3);
  const uint8_t *p = vr_dataset_image_data(d, 7);
  ck_assert(p[0] == (uint8_t)(7 * 13) && p[1024 + 33] == (uint8_t)(7 * 13 + 5 + 33) && p[2048 + 1023] == (uint8_t)(7 * 13 + 10 + 1023));
  vr_dataset_free(d);
  OK(vr_dataset_cifar10(tu_dir, 0, &d));
  ck_assert_int_eq(vr_dataset_count(d), 2);
  vr_dataset_free(d);
  write_cifar(tu_in_dir("train.bin"), 4, 2, 37);
  OK(vr_dataset_cifar100(tu_dir, 1, 0, &d));
  ck_assert(vr_dataset_num_classes(d) == 100 && vr_dataset_label(d, 1) == 38);
  vr_dataset_free(d);
  OK(vr_dataset_cifar100(tu_dir, 1, 1, &d));
  ck_assert(vr_dataset_num_classes(d) == 20 && vr_dataset_label(d, 1) == 18);
  ck_assert_int_eq(vr_dataset_image_data(d, 0)[0], (uint8_t)(37 * 13));
  vr_dataset_free(d);
  /* a record cut short; a missing batch */
  FILE *f = fopen(tu_in_dir("test_batch.bin"), "ab");
  fputc(1, f);
  fclose(f);
  FAILS(vr_dataset_cifar10(tu_dir, 0, &d), VR_E_FORMAT, "test_batch.bin");
  unlink(tu_in_dir("data_batch_4.bin"));
  FAILS(vr_dataset_cifar10(tu_dir, 1, &d), VR_E_IO, "data_batch_4.bin");
  ck_assert_ptr_null(d);
}
END_TEST

/* 10 classes x per images of 1 x 2 x 2, image i filled with i mod 256, label i / per */
static vr_dataset *synthetic(int per, int c, int h, int w) {
  int64_t n = 10 * per;
  vr_tensor *x = NULL, *y = NULL;
  OK(vr_tensor_empty(4, TU_SHAPE(n, c, h, w), VR_U8, VR_CPU, &x));
  OK(vr_tensor_empty(1, TU_SHAPE(n), VR_I64, VR_CPU, &y));
  uint8_t *px = vr_tensor_data(x);
  int64_t *py = vr_tensor_data(y);
  int64_t sz = (int64_t)c * h * w;
  for (int64_t i = 0; i < n; i++) {
    for (int64_t k = 0; k < sz; k++) px[i * sz + k] = (uint8_t)((i * 7 + k * 3) & 255);
    py[i] = i / per;
  }
  vr_dataset *d = NULL;
  OK(vr_dataset_from_tensors(x, y, 10, &d));
  vr_tensor_free(x);
  vr_tensor_free(y);
  return d;
}

START_TEST(derived) {
  vr_dataset *d = synthetic(100, 1, 2, 2), *lt = NULL, *lt2 = NULL, *cs = NULL, *un = NULL, *sub = NULL;
  OK(vr_dataset_long_tail(d, 10, &lt));
  int64_t total = 0;
  for (int c = 0; c < 10; c++) {
    int64_t want = (int64_t)(100 * pow(0.1, c / 9.0));
    ck_assert_int_eq(vr_dataset_class_count(lt, c), want);
    total += want;
  }
  ck_assert_int_eq(vr_dataset_count(lt), total);
  OK(vr_dataset_long_tail(d, 10, &lt2)); /* deterministic */
  ck_assert_int_eq(memcmp(vr_dataset_image_data(lt, 0), vr_dataset_image_data(lt2, 0), (size_t)(4 * total)), 0);
  OK(vr_dataset_class_subset(d, 2, (const int[]){7, 3}, 1, &cs));
  ck_assert(vr_dataset_count(cs) == 200 && vr_dataset_num_classes(cs) == 2);
  ck_assert(vr_dataset_label(cs, 0) == 1 && vr_dataset_label(cs, 199) == 0);
  ck_assert_int_eq(vr_dataset_image_data(cs, 0)[0], vr_dataset_image_data(d, 300)[0]);
  vr_dataset_free(cs);
  OK(vr_dataset_class_subset(d, 1, (const int[]){4}, 0, &cs));
  ck_assert(vr_dataset_count(cs) == 100 && vr_dataset_label(cs, 5) == 4 && vr_dataset_num_classes(cs) == 10);
  OK(vr_dataset_unlabeled(d, &un));
  ck_assert(!vr_dataset_has_labels(un) && vr_dataset_count(un) == 1000 && vr_dataset_label(un, 3) == -1);
  OK(vr_dataset_subset(d, 3, (const int64_t[]){999, 0, 5}, &sub));
  ck_assert(vr_dataset_label(sub, 0) == 9 && vr_dataset_image_data(sub, 2)[0] == vr_dataset_image_data(d, 5)[0]);
  vr_dataset *h = NULL;
  OK(vr_dataset_head(d, 10, &h));
  ck_assert_int_eq(vr_dataset_count(h), 10);
  vr_dataset_free(h);
  /* errors */
  vr_dataset *e = NULL;
  FAILS(vr_dataset_long_tail(d, 0.5, &e), VR_E_ARG, "imbalance");
  FAILS(vr_dataset_long_tail(un, 10, &e), VR_E_ARG, "label-free");
  FAILS(vr_dataset_class_subset(d, 2, (const int[]){3, 3}, 1, &e), VR_E_ARG, "distinct");
  FAILS(vr_dataset_class_subset(d, 1, (const int[]){10}, 1, &e), VR_E_ARG, "classes");
  FAILS(vr_dataset_subset(d, 1, (const int64_t[]){1000}, &e), VR_E_ARG, "indices");
  FAILS(vr_dataset_head(d, 1001, &e), VR_E_ARG, "n:");
  vr_tensor *bad = NULL;
  OK(vr_tensor_zeros(2, TU_SHAPE(3, 3), VR_F32, VR_CPU, &bad));
  FAILS(vr_dataset_from_tensors(bad, NULL, 0, &e), VR_E_DTYPE, "images");
  vr_tensor_free(bad);
  ck_assert_ptr_null(e);
  vr_dataset_free(d);
  vr_dataset_free(lt);
  vr_dataset_free(lt2);
  vr_dataset_free(cs);
  vr_dataset_free(un);
  vr_dataset_free(sub);
}
END_TEST

/* ---------------------------------------------------------------- loader */

static vr_pipeline *aug(void) {
  vr_pipeline *p = NULL;
  OK(vr_pipeline_new(&p));
  OK(vr_pipeline_add_crop(p, 0.3, 1, 0.75, 1.33, 0, 0, 1));
  OK(vr_pipeline_add_hflip(p, 0.5));
  OK(vr_pipeline_add_jitter(p, 0.4, 0.4, 0, 0, 0.8));
  OK(vr_pipeline_add_normalize(p, 1, TU_VALS(0.5), TU_VALS(0.25)));
  return p;
}

/* 2 global views 8 x 8, 1 local view 4 x 4 */
static vr_loader *loader(vr_dataset *d, int64_t B, int drop_last, int workers) {
  vr_loader *l = NULL;
  OK(vr_loader_new(d, B, 1, drop_last, 77, workers, 3, &l));
  vr_pipeline *g = aug(), *lo = NULL;
  OK(vr_pipeline_new(&lo));
  OK(vr_pipeline_add_crop(lo, 0.05, 0.3, 0.75, 1.33, 0, 0, 1));
  OK(vr_loader_add_view(l, 8, 8, g));
  OK(vr_loader_add_view(l, 8, 8, g));
  OK(vr_loader_add_view(l, 4, 4, lo));
  vr_pipeline_free(g);
  vr_pipeline_free(lo);
  return l;
}

/* a checksum of all views, labels and indices of a batch */
static double digest(vr_batch *b) {
  double s = 0;
  for (int v = 0; v < vr_batch_num_views(b); v++) {
    vr_tensor *t = NULL;
    OK(vr_batch_view(b, v, &t));
    const float *p = vr_tensor_data(t);
    for (int64_t k = 0; k < vr_tensor_numel(t); k++) s += p[k] * (double)((k % 97) + 1) * (v + 1);
    vr_tensor_free(t);
  }
  vr_tensor *ix = NULL;
  OK(vr_batch_indices(b, &ix));
  for (int64_t k = 0; k < vr_tensor_numel(ix); k++) s += (double)((int64_t *)vr_tensor_data(ix))[k] * (k + 1) * 1e3;
  vr_tensor_free(ix);
  return s;
}

START_TEST(loader_batches) {
  vr_dataset *d = synthetic(3, 1, 6, 6); /* 30 images */
  vr_loader *l = loader(d, 8, 0, 0);
  ck_assert_int_eq(vr_loader_num_batches(l), 4);
  ck_assert_int_eq(vr_loader_num_views(l), 3);
  int seen[30] = {0};
  int64_t sizes[4];
  for (int k = 0; k < 4; k++) {
    vr_batch *b = NULL;
    OK(vr_loader_next(l, &b));
    ck_assert_ptr_nonnull(b);
    sizes[k] = vr_batch_size(b);
    ck_assert(vr_batch_epoch(b) == 0 && vr_batch_index(b) == k);
    vr_tensor *g = NULL, *lv = NULL, *y = NULL, *ix = NULL, *v1 = NULL;
    OK(vr_batch_views(b, 0, 2, &g));
    ck_assert(vr_tensor_ndim(g) == 5 && vr_tensor_size(g, 0) == 2 && vr_tensor_size(g, 1) == sizes[k]);
    ck_assert(vr_tensor_size(g, 2) == 1 && vr_tensor_size(g, 3) == 8 && vr_tensor_size(g, 4) == 8);
    OK(vr_batch_view(b, 2, &lv));
    ck_assert(vr_tensor_ndim(lv) == 4 && vr_tensor_size(lv, 0) == sizes[k] && vr_tensor_size(lv, 3) == 4);
    FAILS(vr_batch_views(b, 1, 2, &v1), VR_E_SHAPE, "view 2");
    OK(vr_batch_view(b, 1, &v1));
    ck_assert_int_eq(((float *)vr_tensor_data(v1))[3], ((float *)vr_tensor_data(g))[sizes[k] * 64 + 3]);
    OK(vr_batch_labels(b, &y));
    OK(vr_batch_indices(b, &ix));
    for (int64_t i = 0; i < sizes[k]; i++) {
      int64_t id = ((int64_t *)vr_tensor_data(ix))[i];
      seen[id]++;
      ck_assert_int_eq(((int64_t *)vr_tensor_data(y))[i], id / 3);
      /* view 0 of sample id is the pipeline's view (seed 77, epoch 0, sample id, view 0) */
      if (i == 1) {
        vr_tensor *im = NULL, *ref = NULL, *one = NULL;
        OK(vr_dataset_images(d, &im));
        OK(vr_select(im, 0, id, &one));
        vr_pipeline *p = aug();
        OK(vr_pipeline_apply(p, one, 8, 8, 77, 0, (uint64_t)id, 0, &ref));
        const float *a = vr_tensor_data(g), *r = vr_tensor_data(ref);
        for (int q = 0; q < 64; q++) ck_assert(a[64 + q] == r[q]);
        vr_pipeline_free(p);
        vr_tensor_free(im);
        vr_tensor_free(one);
        vr_tensor_free(ref);
      }
    }
    vr_tensor_free(g);
    vr_tensor_free(lv);
    vr_tensor_free(v1);
    vr_tensor_free(y);
    vr_tensor_free(ix);
    vr_batch_free(b);
  }
  ck_assert(sizes[0] == 8 && sizes[3] == 6);
  for (int i = 0; i < 30; i++) ck_assert_int_eq(seen[i], 1);
  vr_batch *b = NULL;
  OK(vr_loader_next(l, &b));
  ck_assert_ptr_null(b);
  ck_assert(vr_loader_epoch(l) == 1 && vr_loader_batch_index(l) == 0);
  /* the next epoch is shuffled differently */
  OK(vr_loader_next(l, &b));
  ck_assert(vr_batch_epoch(b) == 1);
  vr_batch_free(b);
  vr_loader_free(l);
  /* drop_last */
  l = loader(d, 8, 1, 0);
  ck_assert_int_eq(vr_loader_num_batches(l), 3);
  vr_loader_free(l);
  vr_loader *e = NULL;
  FAILS(vr_loader_new(d, 31, 0, 1, 0, 0, 0, &e), VR_E_ARG, "batch");
  FAILS(vr_loader_new(d, 0, 0, 1, 0, 0, 0, &e), VR_E_ARG, "batch");
  OK(vr_loader_new(d, 4, 0, 0, 0, 0, 0, &e));
  FAILS(vr_loader_next(e, &b), VR_E_ARG, "view");
  vr_pipeline *p3 = NULL;
  OK(vr_pipeline_new(&p3));
  OK(vr_pipeline_add_normalize(p3, 3, TU_VALS(0, 0, 0), TU_VALS(1, 1, 1)));
  FAILS(vr_loader_add_view(e, 4, 4, p3), VR_E_SHAPE, "channels");
  FAILS(vr_loader_set_position(e, 0, 9), VR_E_ARG, "batch_index");
  vr_pipeline_free(p3);
  vr_loader_free(e);
  vr_dataset_free(d);
}
END_TEST

/* the same batches whatever the worker count; resume from any position */
START_TEST(loader_workers_resume) {
  vr_dataset *d = synthetic(5, 1, 6, 6); /* 50 images, 7 batches of 8 (last 2) */
  double ref[2][7];
  vr_loader *l = loader(d, 8, 0, 0);
  for (int e = 0; e < 2; e++) {
    for (int k = 0; k < 7; k++) {
      vr_batch *b = NULL;
      OK(vr_loader_next(l, &b));
      ref[e][k] = digest(b);
      vr_batch_free(b);
    }
    vr_batch *b = NULL;
    OK(vr_loader_next(l, &b));
    ck_assert_ptr_null(b);
  }
  ck_assert(ref[0][0] != ref[1][0]);
  vr_loader_free(l);
  for (int workers = 1; workers <= 3; workers += 2) {
    l = loader(d, 8, 0, workers);
    for (int e = 0; e < 2; e++) {
      for (int k = 0; k < 7; k++) {
        vr_batch *b = NULL;
        OK(vr_loader_next(l, &b));
        ck_assert_msg(digest(b) == ref[e][k], "workers %d: epoch %d batch %d differs", workers, e, k);
        vr_batch_free(b);
      }
      vr_batch *b = NULL;
      OK(vr_loader_next(l, &b));
      ck_assert_ptr_null(b);
    }
    /* resume in the middle while batches are in flight */
    OK(vr_loader_set_position(l, 1, 4));
    ck_assert(vr_loader_epoch(l) == 1 && vr_loader_batch_index(l) == 4);
    vr_batch *b = NULL;
    OK(vr_loader_next(l, &b));
    ck_assert(digest(b) == ref[1][4] && vr_batch_index(b) == 4);
    vr_batch_free(b);
    OK(vr_loader_set_position(l, 0, 6));
    OK(vr_loader_next(l, &b));
    ck_assert(digest(b) == ref[0][6]);
    vr_batch_free(b);
    OK(vr_loader_next(l, &b));
    ck_assert_ptr_null(b);
    OK(vr_loader_next(l, &b));
    ck_assert(digest(b) == ref[1][0]);
    vr_batch_free(b);
    vr_loader_free(l);
  }
  /* a fresh loader set to (1, 2) before its first batch */
  l = loader(d, 8, 0, 2);
  OK(vr_loader_set_position(l, 1, 2));
  vr_batch *b = NULL;
  OK(vr_loader_next(l, &b));
  ck_assert(digest(b) == ref[1][2]);
  vr_batch_free(b);
  vr_loader_free(l);
  vr_dataset_free(d);
}
END_TEST

/* the dataset freed before the loader, with workers building batches: the loader keeps what it
 * reads (a garbage collector may free the two in any order) */
START_TEST(loader_outlives_dataset) {
  vr_dataset *d = synthetic(5, 1, 6, 6);
  vr_loader *l = loader(d, 8, 0, 0);
  vr_batch *b = NULL;
  OK(vr_loader_next(l, &b));
  double first = digest(b);
  vr_batch_free(b);
  vr_loader_free(l);
  l = loader(d, 8, 0, 3);
  vr_dataset_free(d);
  OK(vr_loader_next(l, &b));
  ck_assert(digest(b) == first);
  vr_batch_free(b);
  for (int k = 0; k < 4; k++) {
    OK(vr_loader_next(l, &b));
    ck_assert_ptr_nonnull(b);
    vr_batch_free(b);
  }
  vr_loader_free(l); /* workers are building the next batches */
}
END_TEST

/* raw mode: the same samples in the same order as the augmenting loader, their u8 images, and
 * vr_pipeline_apply_ids(images, indices, epoch, view) gives the augmenting loader's views exactly */
START_TEST(loader_raw) {
  vr_dataset *d = synthetic(5, 1, 6, 6); /* 50 images, 7 batches of 8 (last 2) */
  vr_tensor *all = NULL;
  OK(vr_dataset_images(d, &all));
  vr_pipeline *g = aug(), *lo = NULL;
  OK(vr_pipeline_new(&lo));
  OK(vr_pipeline_add_crop(lo, 0.05, 0.3, 0.75, 1.33, 0, 0, 1));
  for (int workers = 0; workers <= 2; workers += 2) {
    vr_loader *l = loader(d, 8, 0, 0), *r = NULL;
    OK(vr_loader_new(d, 8, 1, 0, 77, workers, 3, &r));
    ck_assert_int_eq(vr_loader_raw(r), 0);
    OK(vr_loader_set_raw(r, 1));
    ck_assert_int_eq(vr_loader_raw(r), 1);
    OK(vr_loader_set_position(l, 0, 5));
    OK(vr_loader_set_position(r, 0, 5));
    for (int k = 0; k < 5; k++) { /* batches 5, 6 of epoch 0, the end, batches 0, 1 of epoch 1 */
      vr_batch *bl = NULL, *br = NULL;
      OK(vr_loader_next(l, &bl));
      OK(vr_loader_next(r, &br));
      if (k == 2) {
        ck_assert(bl == NULL && br == NULL);
        continue;
      }
      ck_assert(vr_batch_epoch(br) == vr_batch_epoch(bl) && vr_batch_index(br) == vr_batch_index(bl));
      ck_assert_int_eq(vr_batch_num_views(br), 0);
      vr_tensor *im = NULL, *ix = NULL, *ixl = NULL, *y = NULL, *yl = NULL, *v = NULL, *ref = NULL, *bad = NULL;
      OK(vr_batch_images(br, &im));
      OK(vr_batch_indices(br, &ix));
      OK(vr_batch_indices(bl, &ixl));
      OK(vr_batch_labels(br, &y));
      OK(vr_batch_labels(bl, &yl));
      int64_t n = vr_batch_size(br);
      ck_assert(vr_tensor_dtype(im) == VR_U8 && vr_tensor_ndim(im) == 4 && vr_tensor_size(im, 0) == n);
      ck_assert(vr_tensor_size(im, 1) == 1 && vr_tensor_size(im, 2) == 6 && vr_tensor_size(im, 3) == 6);
      for (int64_t i = 0; i < n; i++) {
        int64_t id = ((int64_t *)vr_tensor_data(ix))[i];
        ck_assert_int_eq(id, ((int64_t *)vr_tensor_data(ixl))[i]);
        ck_assert_int_eq(((int64_t *)vr_tensor_data(y))[i], ((int64_t *)vr_tensor_data(yl))[i]);
        ck_assert(!memcmp((uint8_t *)vr_tensor_data(im) + i * 36, (uint8_t *)vr_tensor_data(all) + id * 36, 36));
      }
      for (int view = 0; view < 3; view++) { /* the loader's views from the raw batch */
        int sz = view < 2 ? 8 : 4;
        OK(vr_batch_view(bl, view, &v));
        OK(vr_pipeline_apply_ids(view < 2 ? g : lo, im, ix, sz, sz, 77, (uint64_t)vr_batch_epoch(br), (uint64_t)view,
                                 &ref));
        ck_assert_int_eq(vr_tensor_numel(ref), vr_tensor_numel(v));
        ck_assert(!memcmp(vr_tensor_data(ref), vr_tensor_data(v), sizeof(float) * (size_t)vr_tensor_numel(v)));
        vr_tensor_free(v);
        vr_tensor_free(ref);
        v = ref = NULL;
      }
      FAILS(vr_batch_view(br, 0, &bad), VR_E_ARG, "raw");
      FAILS(vr_batch_views(br, 0, 1, &bad), VR_E_ARG, "raw");
      FAILS(vr_batch_images(bl, &bad), VR_E_ARG, "raw");
      vr_tensor *objs[] = {im, ix, ixl, y, yl};
      for (size_t q = 0; q < sizeof objs / sizeof *objs; q++) vr_tensor_free(objs[q]);
      vr_batch_free(bl);
      vr_batch_free(br);
    }
    FAILS(vr_loader_set_raw(r, 0), VR_E_ARG, "before the first");
    vr_loader_free(l);
    vr_loader_free(r);
  }
  FAILS(vr_loader_set_raw(NULL, 1), VR_E_ARG, "l:");
  vr_pipeline_free(g);
  vr_pipeline_free(lo);
  vr_tensor_free(all);
  vr_dataset_free(d);
}
END_TEST

static Suite *data_suite(void) {
  Suite *s = suite_create("data");
  TCase *tc = tcase_create("datasets");
  tcase_add_checked_fixture(tc, tu_tmpdir_setup, tu_tmpdir_teardown);
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, fashion_mnist);
  tcase_add_test(tc, idx_synthetic);
  tcase_add_test(tc, idx_errors);
  tcase_add_test(tc, cifar);
  tcase_add_test(tc, derived);
  suite_add_tcase(s, tc);
  TCase *tl = tcase_create("loader");
  tcase_add_test(tl, loader_batches);
  tcase_add_test(tl, loader_workers_resume);
  tcase_add_test(tl, loader_raw);
  tcase_add_test(tl, loader_outlives_dataset);
  suite_add_tcase(s, tl);
  return s;
}
VR_TEST_MAIN(data_suite)
