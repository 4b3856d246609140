/* test_hostile.c: files and shapes written as an attacker would: sizes whose product overflows
 * 2^63 or wraps to a small number, negative sizes, too many dims, lengths and offsets past the end
 * of the file, shapes that disagree with the bytes, truncated and bomb-like gzip data. Every case
 * must come back as a status with a message naming the file and the field, without a crash and
 * without allocating what the file does not hold. */
#include "testutil.h"
#include <stdint.h>
#include <sys/resource.h>
#include <unistd.h>
#include <zlib.h>

static void write_file(const char *path, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  ck_assert_uint_eq(fwrite(data, 1, n, f), n);
  fclose(f);
}

static void write_gz(const char *path, const void *data, size_t n) {
  gzFile f = gzopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  ck_assert_int_eq(gzwrite(f, data, (unsigned)n), (int)n);
  gzclose(f);
}

/* the peak resident memory of this process, in MiB */
static long peak_mib(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss / 1024;
}

/* ---------------------------------------------------------------- tensors */

START_TEST(tensor_shapes) {
  vr_tensor *t = NULL;
  int64_t big = (int64_t)1 << 62;
  /* 2^62 x 4 = 2^64: wraps to 0 elements without the check */
  FAILS(vr_tensor_zeros(2, TU_SHAPE(big, 4), VR_F32, VR_CPU, &t), VR_E_SHAPE, "elements");
  FAILS(vr_tensor_zeros(2, TU_SHAPE(big, 4), VR_F32, VR_CPU, &t), VR_E_SHAPE, "vr_tensor_full");
  ck_assert_ptr_null(t);
  /* 3074457345618258603 x 6 = 2^64 + 2: wraps to 2 elements */
  FAILS(vr_tensor_empty(2, TU_SHAPE(3074457345618258603LL, 6), VR_F32, VR_CPU, &t), VR_E_SHAPE, "elements");
  /* no overflow, but more elements than any tensor may hold (bytes would pass 2^63) */
  FAILS(vr_tensor_empty(1, TU_SHAPE(INT64_MAX), VR_U8, VR_CPU, &t), VR_E_SHAPE, "elements");
  FAILS(vr_tensor_empty(1, TU_SHAPE(((int64_t)1 << 60) + 1), VR_U8, VR_CPU, &t), VR_E_SHAPE, "elements");
  /* a zero does not hide an overflowing product of the other sizes */
  FAILS(vr_tensor_empty(3, TU_SHAPE(0, big, 4), VR_F32, VR_CPU, &t), VR_E_SHAPE, "elements");
  FAILS(vr_tensor_ones(2, TU_SHAPE(-4, 4), VR_F32, VR_CPU, &t), VR_E_SHAPE, "shape[0]");
  FAILS(vr_tensor_from_buffer("x", 2, TU_SHAPE(big, 4), VR_U8, VR_CPU, &t), VR_E_SHAPE, "elements");
  FAILS(vr_tensor_arange(0, 1e30, 1, VR_F32, VR_CPU, &t), VR_E_ARG, "at most");
  FAILS(vr_tensor_arange(0, INFINITY, 1, VR_F32, VR_CPU, &t), VR_E_ARG, "finite");
  vr_generator *g = NULL;
  OK(vr_generator_new(1, 0, &g));
  FAILS(vr_rand_uniform(g, 2, TU_SHAPE(big, 4), 0, 1, VR_F32, VR_CPU, &t), VR_E_SHAPE, "elements");
  vr_generator_free(g);
  ck_assert_ptr_null(t);
  /* views: expand, view and reshape compute sizes too */
  vr_tensor *one = NULL, *empty = NULL, *v = NULL;
  OK(vr_tensor_zeros(1, TU_SHAPE(1), VR_F32, VR_CPU, &one));
  FAILS(vr_expand(one, 2, TU_SHAPE(big, 4), &v), VR_E_SHAPE, "vr_expand");
  FAILS(vr_expand(one, 3, TU_SHAPE(1 << 30, 1 << 30, 1 << 30), &v), VR_E_SHAPE, "elements");
  OK(vr_expand(one, 2, TU_SHAPE(1 << 20, 1 << 20), &v)); /* large, but held: a stride-0 view */
  ck_assert_int_eq(vr_tensor_numel(v), (int64_t)1 << 40);
  vr_tensor_free(v);
  v = NULL;
  OK(vr_tensor_zeros(2, TU_SHAPE(0, 3), VR_F32, VR_CPU, &empty));
  FAILS(vr_view(empty, 3, TU_SHAPE(big, 4, 0), &v), VR_E_SHAPE, "vr_view");
  FAILS(vr_reshape(empty, 3, TU_SHAPE(big, 4, 0), &v), VR_E_SHAPE, "vr_reshape");
  FAILS(vr_reshape(one, 3, TU_SHAPE(big, 4, -1), &v), VR_E_SHAPE, "vr_reshape");
  OK(vr_reshape(empty, 2, TU_SHAPE(3, 0), &v));
  ck_assert_int_eq(vr_tensor_numel(v), 0);
  vr_tensor_free(v);
  v = NULL;
  /* ranges whose ends would overflow: narrow, slice with a huge step, split sizes, concat */
  vr_tensor *x = NULL, *parts[2] = {NULL, NULL};
  OK(vr_tensor_zeros(1, TU_SHAPE(4), VR_F32, VR_CPU, &x));
  FAILS(vr_narrow(x, 0, 1, INT64_MAX, &v), VR_E_ARG, "start, length");
  OK(vr_slice(x, 0, 1, 4, INT64_MAX, &v));
  ck_assert_int_eq(vr_tensor_numel(v), 1);
  vr_tensor_free(v);
  v = NULL;
  FAILS(vr_split(x, 2, TU_SHAPE(INT64_MAX, 2), 0, parts), VR_E_SHAPE, "sizes summing to 4");
  vr_tensor *wide = NULL, *many[16];
  OK(vr_expand(one, 1, TU_SHAPE((int64_t)1 << 59), &wide));
  for (int k = 0; k < 16; k++) many[k] = wide;
  FAILS(vr_concat(16, many, 0, &v), VR_E_SHAPE, "add up past");
  ck_assert_ptr_null(v);
  vr_tensor_free(wide);
  vr_tensor_free(x);
  vr_tensor_free(one);
  vr_tensor_free(empty);
}
END_TEST

/* ---------------------------------------------------------------- .npy */

/* a version 1 .npy file with the given header dict and n data bytes (zeros) */
static void write_npy(const char *path, const char *dict, size_t n) {
  char h[512];
  int len = snprintf(h, sizeof h, "%s", dict);
  while ((10 + len + 1) % 64) h[len++] = ' ';
  h[len++] = '\n';
  unsigned char *b = calloc(1, 10 + (size_t)len + n);
  memcpy(b, "\x93NUMPY\x01\x00", 8);
  b[8] = (unsigned char)(len & 0xff);
  b[9] = (unsigned char)(len >> 8);
  memcpy(b + 10, h, (size_t)len);
  write_file(path, b, 10 + (size_t)len + n);
  free(b);
}

START_TEST(npy) {
  char p[512], fifo[512];
  snprintf(p, sizeof p, "%s", tu_in_dir("z.npy"));
  snprintf(fifo, sizeof fifo, "%s", tu_in_dir("fifo"));
  vr_tensor *t = NULL;
  /* the shape of the report: given to `visreg loss barlow --z` it corrupted the heap */
  write_npy(p, "{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4, 1), }", 16);
  FAILS(vr_npy_load(p, &t), VR_E_FORMAT, p);
  FAILS(vr_npy_load(p, &t), VR_E_FORMAT, "shape [4611686018427387904, 4, 1] has more than");
  /* a product that wraps to 2 elements, whose 8 bytes are there */
  write_npy(p, "{'descr': '<f4', 'fortran_order': False, 'shape': (3074457345618258603, 6), }", 8);
  FAILS(vr_npy_load(p, &t), VR_E_FORMAT, "elements");
  /* elements that fit, bytes (x 8) that do not */
  write_npy(p, "{'descr': '<f8', 'fortran_order': False, 'shape': (2305843009213693952,), }", 0);
  FAILS(vr_npy_load(p, &t), VR_E_FORMAT, "elements");
  write_npy(p, "{'descr': '|u1', 'fortran_order': True, 'shape': (0, 4294967296, 4294967296), }", 0);
  FAILS(vr_npy_load(p, &t), VR_E_FORMAT, "elements");
  /* declared bytes past the end: refused before the tensor is allocated */
  write_npy(p, "{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776,), }", 8);
  long before = peak_mib();
  FAILS(vr_npy_load(p, &t), VR_E_FORMAT, "truncated: shape [1099511627776] of <f4 needs 4398046511104 data bytes, the file holds 8");
  ck_assert_int_lt(peak_mib() - before, 64);
  write_npy(p, "{'descr': '<f4', 'fortran_order': False, 'shape': (-1, 2), }", 8);
  FAILS(vr_npy_load(p, &t), VR_E_FORMAT, "shape[0] is negative");
  write_npy(p, "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", 8);
  FAILS(vr_npy_load(p, &t), VR_E_FORMAT, "shape[0] is out of range");
  write_npy(p, "{'descr': '|u1', 'fortran_order': False, 'shape': (1, 1, 1, 1, 1, 1, 1, 1, 1), }", 1);
  FAILS(vr_npy_load(p, &t), VR_E_FORMAT, "more than 8 dims");
  write_npy(p, "{'descr': '|u1', 'fortran_order': False, 'shape': (2, }", 2);
  FAILS(vr_npy_load(p, &t), VR_E_FORMAT, "shape");
  /* header lengths past the end */
  write_file(p, "\x93NUMPY\x01\x00\xff\xff{}", 12);
  FAILS(vr_npy_load(p, &t), VR_E_FORMAT, "header length 65535, only 2 bytes follow");
  write_file(p, "\x93NUMPY\x02\x00\xff\xff\xff\xff{}", 14);
  FAILS(vr_npy_load(p, &t), VR_E_FORMAT, "header length");
  ck_assert_ptr_null(t);
  /* a valid file still loads, from a pipe too (read as the bytes come) */
  write_npy(p, "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 3), }", 24);
  OK(vr_npy_load(p, &t));
  ck_assert_int_eq(vr_tensor_numel(t), 6);
  vr_tensor_free(t);
  t = NULL;
  char cmd[1200];
  snprintf(cmd, sizeof cmd, "mkfifo %s", fifo);
  ck_assert_int_eq(system(cmd), 0);
  snprintf(cmd, sizeof cmd, "cat %s > %s &", p, fifo);
  ck_assert_int_eq(system(cmd), 0);
  OK(vr_npy_load(fifo, &t));
  ck_assert_int_eq(vr_tensor_numel(t), 6);
  vr_tensor_free(t);
  t = NULL;
  /* a pipe cut short */
  write_npy(p, "{'descr': '<i4', 'fortran_order': False, 'shape': (1000000,), }", 24);
  snprintf(cmd, sizeof cmd, "cat %s > %s &", p, fifo);
  ck_assert_int_eq(system(cmd), 0);
  FAILS(vr_npy_load(fifo, &t), VR_E_FORMAT, "truncated");
}
END_TEST

/* ---------------------------------------------------------------- safetensors */

/* a safetensors file: header length (declared, or the JSON's when 0), JSON, data bytes (zeros) */
static void write_st(const char *path, uint64_t declared, const char *json, size_t n) {
  size_t h = strlen(json);
  unsigned char *b = calloc(1, 8 + h + n);
  uint64_t len = declared ? declared : h;
  for (int k = 0; k < 8; k++) b[k] = (unsigned char)(len >> (8 * k));
  memcpy(b + 8, json, h);
  write_file(path, b, 8 + h + n);
  free(b);
}

START_TEST(safetensors) {
  const char *p = tu_in_dir("x.safetensors");
  vr_ckpt_reader *r = NULL;
  /* dtype x shape disagrees with data_offsets */
  write_st(p, 0, "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8);
  FAILS(vr_ckpt_open(p, &r), VR_E_FORMAT, "tensor 'a' has data_offsets [0, 8], expected 12 bytes for its dtype F32 and shape [3]");
  /* shapes whose byte counts wrap to 0: [0, 0] would match */
  write_st(p, 0, "{\"a\":{\"dtype\":\"U8\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,0]}}", 0);
  FAILS(vr_ckpt_open(p, &r), VR_E_FORMAT, "tensor 'a' has shape [4294967296, 4294967296], more than");
  write_st(p, 0, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1099511627776,4194304],\"data_offsets\":[0,0]}}", 0);
  FAILS(vr_ckpt_open(p, &r), VR_E_FORMAT, "more than");
  write_st(p, 0, "{\"a\":{\"dtype\":\"F64\",\"shape\":[1099511627776,1099511627776,4],\"data_offsets\":[0,0]}}", 0);
  FAILS(vr_ckpt_open(p, &r), VR_E_FORMAT, "more than");
  write_st(p, 0, "{\"a\":{\"dtype\":\"U8\",\"shape\":[1099511627777],\"data_offsets\":[0,1]}}", 1);
  FAILS(vr_ckpt_open(p, &r), VR_E_FORMAT, "tensor 'a': shape[0] is 1099511627777, implausibly large");
  write_st(p, 0, "{\"a\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", 1);
  FAILS(vr_ckpt_open(p, &r), VR_E_FORMAT, "more than 8 dims");
  /* offsets past the end of the file, at the end of the 64-bit range, reversed */
  write_st(p, 0, "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8);
  FAILS(vr_ckpt_open(p, &r), VR_E_FORMAT, "truncated: tensor 'a' ends at data byte 16, the file holds 8");
  write_st(p, 0, "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[18446744073709551614,18446744073709551615]}}", 1);
  FAILS(vr_ckpt_open(p, &r), VR_E_FORMAT, "truncated");
  write_st(p, 0, "{\"a\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[8,0]}}", 8);
  FAILS(vr_ckpt_open(p, &r), VR_E_FORMAT, "data_offsets [8, 0]");
  write_st(p, 0, "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,184467440737095516150]}}", 1);
  FAILS(vr_ckpt_open(p, &r), VR_E_FORMAT, "integer overflow");
  /* overlapping; out of order but covering the data once is fine */
  write_st(p, 0, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[2,6]}}", 8);
  FAILS(vr_ckpt_open(p, &r), VR_E_FORMAT, "overlap");
  write_st(p, 0, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4);
  FAILS(vr_ckpt_open(p, &r), VR_E_FORMAT, "overlap");
  write_st(p, 0, "{\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]},\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8);
  OK(vr_ckpt_open(p, &r));
  vr_ckpt_close(r);
  r = NULL;
  /* an empty tensor at the offset where a non-empty one starts, in either order */
  write_st(p, 0, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"e\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[0,0]}}", 4);
  OK(vr_ckpt_open(p, &r));
  vr_tensor *t = NULL;
  OK(vr_ckpt_load(r, "e", &t));
  ck_assert_int_eq(vr_tensor_numel(t), 0);
  vr_tensor_free(t);
  vr_ckpt_close(r);
  r = NULL;
  /* header lengths past the end, absurd, or too small */
  write_st(p, (uint64_t)1 << 32, "{}", 0);
  FAILS(vr_ckpt_open(p, &r), VR_E_FORMAT, "header length 4294967296, only 2 bytes follow");
  write_st(p, UINT64_MAX, "{}", 0);
  FAILS(vr_ckpt_open(p, &r), VR_E_FORMAT, "header length 18446744073709551615");
  write_st(p, 1, "{", 0);
  FAILS(vr_ckpt_open(p, &r), VR_E_FORMAT, "header length 1 is not plausible");
  write_file(p, "\x02\x00", 2);
  FAILS(vr_ckpt_open(p, &r), VR_E_FORMAT, "no safetensors header length");
  /* names: twice, bad escapes, a NUL */
  write_st(p, 0, "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}", 2);
  FAILS(vr_ckpt_open(p, &r), VR_E_FORMAT, "tensor 'a' appears twice");
  write_st(p, 0, "{\"a\\u0zz0\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1);
  FAILS(vr_ckpt_open(p, &r), VR_E_FORMAT, "4 hex digits");
  write_st(p, 0, "{\"a\\u0000b\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1);
  FAILS(vr_ckpt_open(p, &r), VR_E_FORMAT, "NUL");
  /* not a regular file */
  FAILS(vr_ckpt_open(tu_dir, &r), VR_E_IO, "not a regular file");
  ck_assert_ptr_null(r);
}
END_TEST

/* many tensors: the header is read in about linear time (names checked once, sorted) */
START_TEST(safetensors_many) {
  const char *p = tu_in_dir("many.safetensors");
  int n = 200000;
  size_t cap = (size_t)n * 64 + 16, k = 0;
  char *json = malloc(cap);
  k += (size_t)snprintf(json + k, cap - k, "{");
  for (int i = 0; i < n; i++)
    k += (size_t)snprintf(json + k, cap - k, "%s\"t%d\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]}", i ? "," : "", i);
  snprintf(json + k, cap - k, "}");
  write_st(p, 0, json, 0);
  free(json);
  vr_ckpt_reader *r = NULL;
  OK(vr_ckpt_open(p, &r));
  ck_assert_int_eq(vr_ckpt_count(r), n);
  ck_assert_str_eq(vr_ckpt_name(r, n - 1), "t199999");
  vr_ckpt_close(r);
}
END_TEST

/* ---------------------------------------------------------------- IDX and gzip */

static size_t idx_header(unsigned char *h, int ndim, const uint32_t *dims) {
  h[0] = h[1] = 0;
  h[2] = 8;
  h[3] = (unsigned char)ndim;
  for (int k = 0; k < ndim; k++) {
    h[4 + 4 * k] = (unsigned char)(dims[k] >> 24);
    h[5 + 4 * k] = (unsigned char)(dims[k] >> 16);
    h[6 + 4 * k] = (unsigned char)(dims[k] >> 8);
    h[7 + 4 * k] = (unsigned char)dims[k];
  }
  return 4 + 4 * (size_t)ndim;
}

START_TEST(idx) {
  const char *ip = tu_in_dir("images"), *gp = tu_in_dir("images.gz"), *lp = tu_in_dir("labels");
  unsigned char b[64] = {0};
  vr_dataset *d = NULL;
  /* 2^22 x 2^21 x 2^21 = 2^64: wraps to 0 bytes, which the 4 payload bytes "cover" */
  size_t h = idx_header(b, 3, (const uint32_t[]){1u << 22, 1u << 21, 1u << 21});
  write_file(ip, b, h + 4);
  FAILS(vr_dataset_idx(ip, NULL, 0, &d), VR_E_FORMAT, ip);
  FAILS(vr_dataset_idx(ip, NULL, 0, &d), VR_E_FORMAT, "IDX dims [4194304, 2097152, 2097152] multiply past");
  h = idx_header(b, 3, (const uint32_t[]){UINT32_MAX, UINT32_MAX, UINT32_MAX});
  write_file(ip, b, h + 1);
  FAILS(vr_dataset_idx(ip, NULL, 0, &d), VR_E_FORMAT, "multiply past");
  /* no images of 0 pixels: 2^32 - 1 labels for nothing */
  h = idx_header(b, 3, (const uint32_t[]){UINT32_MAX, 0, 28});
  write_file(ip, b, h);
  FAILS(vr_dataset_idx(ip, NULL, 0, &d), VR_E_FORMAT, "images of 0 x 28 pixels");
  /* declared: 1 GiB; there: 4 bytes. Refused without allocating the rest */
  h = idx_header(b, 3, (const uint32_t[]){256, 2048, 2048});
  write_file(ip, b, h + 4);
  long before = peak_mib();
  FAILS(vr_dataset_idx(ip, NULL, 0, &d), VR_E_FORMAT, "truncated: its header promises 1073741824 data bytes (IDX dims [256, 2048, 2048]), the file has 4");
  write_gz(gp, b, h + 4);
  FAILS(vr_dataset_idx(gp, NULL, 0, &d), VR_E_FORMAT, "the file has 4");
  ck_assert_int_lt(peak_mib() - before, 64);
  /* declared: 2.8e14 bytes, past any machine's memory: refused before reading */
  h = idx_header(b, 3, (const uint32_t[]){65535, 65535, 65535});
  write_file(ip, b, h + 4);
  FAILS(vr_dataset_idx(ip, NULL, 0, &d), VR_E_FORMAT, "more than this machine's memory");
  /* more bytes than the header declares */
  h = idx_header(b, 3, (const uint32_t[]){2, 2, 2});
  write_file(ip, b, h + 9);
  FAILS(vr_dataset_idx(ip, NULL, 0, &d), VR_E_FORMAT, "holds more than 8 data bytes");
  /* labels: a header cut short, counts that disagree */
  write_file(ip, b, h + 8);
  size_t lh = idx_header(b + 32, 1, (const uint32_t[]){3});
  write_file(lp, b + 32, lh + 3);
  FAILS(vr_dataset_idx(ip, lp, 0, &d), VR_E_FORMAT, "has 3 labels, expected 2");
  write_file(lp, b + 32, 6);
  FAILS(vr_dataset_idx(ip, lp, 0, &d), VR_E_FORMAT, "truncated: 6 bytes, header needs 8");
  ck_assert_ptr_null(d);
  OK(vr_dataset_idx(ip, NULL, 0, &d));
  ck_assert_int_eq(vr_dataset_count(d), 2);
  vr_dataset_free(d);
}
END_TEST

START_TEST(gzip) {
  const char *gp = tu_in_dir("images.gz"), *cut = tu_in_dir("cut.gz");
  unsigned char b[64] = {0};
  vr_dataset *d = NULL;
  size_t h = idx_header(b, 3, (const uint32_t[]){3, 2, 2});
  write_gz(gp, b, h + 12);
  OK(vr_dataset_idx(gp, NULL, 0, &d));
  vr_dataset_free(d);
  d = NULL;
  /* truncated gzip: inside the deflate data, and just the trailer (CRC and length) missing */
  FILE *f = fopen(gp, "rb");
  unsigned char z[256];
  size_t zn = fread(z, 1, sizeof z, f);
  fclose(f);
  write_file(cut, z, zn / 2);
  FAILS(vr_dataset_idx(cut, NULL, 0, &d), VR_E_FORMAT, cut);
  write_file(cut, z, zn - 4);
  FAILS(vr_dataset_idx(cut, NULL, 0, &d), VR_E_FORMAT, "truncated gzip");
  /* corrupt deflate data */
  z[zn / 2] ^= 0x55;
  z[zn / 2 + 1] ^= 0xaa;
  write_file(cut, z, zn);
  FAILS(vr_dataset_idx(cut, NULL, 0, &d), VR_E_FORMAT, cut);
  /* gzip bombs: 64 MiB of zeros (64 KiB on disk) behind a header declaring 8 bytes, and behind
   * one declaring 2^32 - 1 images of 1 x 1 pixel: neither reads (nor keeps) more than declared */
  size_t mb = 64u << 20;
  unsigned char *zeros = calloc(1, mb);
  gzFile g = gzopen(gp, "wb1");
  h = idx_header(b, 3, (const uint32_t[]){2, 2, 2});
  gzwrite(g, b, (unsigned)h);
  gzwrite(g, zeros, (unsigned)mb);
  gzclose(g);
  long before = peak_mib();
  FAILS(vr_dataset_idx(gp, NULL, 0, &d), VR_E_FORMAT, "holds more than 8 data bytes");
  ck_assert_int_lt(peak_mib() - before, 16);
  g = gzopen(gp, "wb1");
  h = idx_header(b, 3, (const uint32_t[]){UINT32_MAX, 1, 1});
  gzwrite(g, b, (unsigned)h);
  gzwrite(g, zeros, (unsigned)mb);
  gzclose(g);
  FAILS(vr_dataset_idx(gp, NULL, 0, &d), VR_E_FORMAT, "promises 4294967295 data bytes");
  free(zeros);
  ck_assert_ptr_null(d);
}
END_TEST

START_TEST(cifar) {
  unsigned char rec[3073] = {3};
  vr_dataset *d = NULL;
  const char *p = tu_in_dir("test_batch.bin");
  write_gz(p, rec, sizeof rec); /* gzip data under a .bin name is read too */
  OK(vr_dataset_cifar10(tu_dir, 0, &d));
  ck_assert_int_eq(vr_dataset_count(d), 1);
  vr_dataset_free(d);
  d = NULL;
  write_file(p, rec, sizeof rec - 1);
  FAILS(vr_dataset_cifar10(tu_dir, 0, &d), VR_E_FORMAT, "3072 bytes, expected a whole number of 3073-byte CIFAR records");
  rec[0] = 10;
  write_file(p, rec, sizeof rec);
  FAILS(vr_dataset_cifar10(tu_dir, 0, &d), VR_E_FORMAT, "label 10");
  write_file(p, rec, 0);
  FAILS(vr_dataset_cifar10(tu_dir, 0, &d), VR_E_FORMAT, "0 bytes");
  ck_assert_ptr_null(d);
}
END_TEST

Suite *hostile_suite(void) {
  Suite *s = suite_create("hostile");
  TCase *tc = tcase_create("hostile");
  tcase_add_checked_fixture(tc, tu_tmpdir_setup, tu_tmpdir_teardown);
  tcase_add_test(tc, tensor_shapes);
  tcase_add_test(tc, npy);
  tcase_add_test(tc, safetensors);
  tcase_add_test(tc, safetensors_many);
  tcase_add_test(tc, idx);
  tcase_add_test(tc, gzip);
  tcase_add_test(tc, cifar);
  suite_add_tcase(s, tc);
  return s;
}

VR_TEST_MAIN(hostile_suite)
