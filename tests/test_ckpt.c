/* test_ckpt.c: safetensors checkpoints: round trip of every dtype with metadata, the on-disk
 * layout, a file written by hand as another tool would, and the validation errors (missing,
 * truncated, bad JSON, offsets out of range, wrong sizes). */
#include "testutil.h"
#include <stdint.h>
#include <unistd.h>


static void write_file(const char *path, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  ck_assert_uint_eq(fwrite(data, 1, n, f), n);
  fclose(f);
}

static unsigned char *read_file(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  ck_assert_ptr_nonnull(f);
  fseek(f, 0, SEEK_END);
  *n = (size_t)ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *b = malloc(*n + 1);
  ck_assert_uint_eq(fread(b, 1, *n, f), *n);
  fclose(f);
  return b;
}

/* a safetensors file from a JSON header and data bytes */
static void write_st(const char *path, const char *json, const void *data, size_t n) {
  size_t h = strlen(json);
  unsigned char *b = malloc(8 + h + n + 1);
  for (int k = 0; k < 8; k++) b[k] = (unsigned char)((uint64_t)h >> (8 * k));
  memcpy(b + 8, json, h);
  if (n) memcpy(b + 8 + h, data, n);
  write_file(path, b, 8 + h + n);
  free(b);
}

static vr_status save_sample(const char *path) {
  vr_ckpt_writer *w = NULL;
  OK(vr_ckpt_writer_new(&w));
  vr_tensor *a = tu_rand(VR_F32, 2, TU_SHAPE(3, 4), 1), *b = tu_rand(VR_F64, 1, TU_SHAPE(5), 2);
  vr_tensor *c = tu_tensor(VR_I64, 1, TU_SHAPE(3), TU_VALS(-1, 7, 1e12));
  vr_tensor *d = tu_tensor(VR_I32, 2, TU_SHAPE(2, 1), TU_VALS(-5, 6));
  vr_tensor *e = tu_tensor(VR_U8, 1, TU_SHAPE(4), TU_VALS(0, 1, 254, 255));
  vr_tensor *at = NULL, *s = NULL;
  OK(vr_transpose(a, 0, 1, &at)); /* non-contiguous: saved as its 4 x 3 values */
  OK(vr_tensor_scalar(2.5, VR_F32, VR_CPU, &s));
  OK(vr_ckpt_writer_add(w, "model.w", a));
  OK(vr_ckpt_writer_add(w, "model.wt", at));
  OK(vr_ckpt_writer_add(w, "opt.b", b));
  OK(vr_ckpt_writer_add(w, "step", c));
  OK(vr_ckpt_writer_add(w, "i32", d));
  OK(vr_ckpt_writer_add(w, "bytes", e));
  OK(vr_ckpt_writer_add(w, "scalar", s));
  FAILS(vr_ckpt_writer_add(w, "step", c), VR_E_ARG, "already");
  FAILS(vr_ckpt_writer_add(w, "__metadata__", c), VR_E_ARG, "reserved");
  OK(vr_ckpt_writer_add_meta(w, "recipe", "return { lr = 1e-3, name = \"a\\tb\" }\n"));
  OK(vr_ckpt_writer_add_meta(w, "epoch", "3"));
  OK(vr_ckpt_writer_add_meta(w, "epoch", "4"));
  vr_status st = vr_ckpt_writer_save(w, path);
  vr_ckpt_writer_free(w);
  vr_tensor_free(a);
  vr_tensor_free(b);
  vr_tensor_free(c);
  vr_tensor_free(d);
  vr_tensor_free(e);
  vr_tensor_free(at);
  vr_tensor_free(s);
  return st;
}

START_TEST(round_trip) {
  const char *path = tu_in_dir("a.safetensors");
  OK(save_sample(path));
  ck_assert_int_ne(access(tu_in_dir("a.safetensors.tmp"), F_OK), 0);
  vr_ckpt_reader *r = NULL;
  OK(vr_ckpt_open(path, &r));
  ck_assert_int_eq(vr_ckpt_count(r), 7);
  ck_assert_str_eq(vr_ckpt_name(r, 0), "model.w");
  ck_assert_str_eq(vr_ckpt_name(r, 6), "scalar");
  ck_assert_ptr_null(vr_ckpt_name(r, 7));
  ck_assert(vr_ckpt_has(r, "opt.b") && !vr_ckpt_has(r, "nope"));
  ck_assert_int_eq(vr_ckpt_meta_count(r), 2);
  ck_assert_str_eq(vr_ckpt_meta(r, "recipe"), "return { lr = 1e-3, name = \"a\\tb\" }\n");
  ck_assert_str_eq(vr_ckpt_meta(r, "epoch"), "4");
  ck_assert_ptr_null(vr_ckpt_meta(r, "missing"));
  vr_tensor *a = tu_rand(VR_F32, 2, TU_SHAPE(3, 4), 1), *at = NULL, *x = NULL;
  OK(vr_transpose(a, 0, 1, &at));
  OK(vr_ckpt_load(r, "model.w", &x));
  ck_assert_int_eq(vr_tensor_dtype(x), VR_F32);
  tu_assert_close(x, a, 0, 0, "model.w");
  vr_tensor_free(x);
  OK(vr_ckpt_load(r, "model.wt", &x));
  tu_assert_close(x, at, 0, 0, "model.wt");
  vr_tensor_free(x);
  vr_tensor *b = tu_rand(VR_F64, 1, TU_SHAPE(5), 2);
  OK(vr_ckpt_load(r, "opt.b", &x));
  ck_assert_int_eq(vr_tensor_dtype(x), VR_F64);
  tu_assert_close(x, b, 0, 0, "opt.b");
  vr_tensor_free(x);
  OK(vr_ckpt_load(r, "step", &x));
  ck_assert_int_eq(vr_tensor_dtype(x), VR_I64);
  tu_assert_values(x, TU_VALS(-1, 7, 1e12), 3, 0, "step");
  vr_tensor_free(x);
  OK(vr_ckpt_load(r, "i32", &x));
  ck_assert_int_eq(vr_tensor_dtype(x), VR_I32);
  ck_assert_int_eq(vr_tensor_ndim(x), 2);
  tu_assert_values(x, TU_VALS(-5, 6), 2, 0, "i32");
  vr_tensor_free(x);
  OK(vr_ckpt_load(r, "bytes", &x));
  tu_assert_values(x, TU_VALS(0, 1, 254, 255), 4, 0, "bytes");
  vr_tensor_free(x);
  OK(vr_ckpt_load(r, "scalar", &x));
  ck_assert_int_eq(vr_tensor_ndim(x), 0);
  ck_assert_double_eq(tu_item(x), 2.5);
  vr_tensor_free(x);
  FAILS(vr_ckpt_load(r, "nope", &x), VR_E_ARG, "nope");
  vr_ckpt_close(r);
  vr_tensor_free(a);
  vr_tensor_free(at);
  vr_tensor_free(b);
}
END_TEST

/* the bytes on disk follow the safetensors layout */
START_TEST(layout) {
  const char *path = tu_in_dir("l.safetensors");
  vr_ckpt_writer *w = NULL;
  OK(vr_ckpt_writer_new(&w));
  vr_tensor *t = tu_tensor(VR_F32, 1, TU_SHAPE(2), TU_VALS(1, -2));
  OK(vr_ckpt_writer_add(w, "t", t));
  OK(vr_ckpt_writer_add_meta(w, "k", "v"));
  OK(vr_ckpt_writer_save(w, path));
  vr_ckpt_writer_free(w);
  vr_tensor_free(t);
  size_t n;
  unsigned char *b = read_file(path, &n);
  uint64_t h = 0;
  for (int k = 7; k >= 0; k--) h = h << 8 | b[k];
  ck_assert_uint_eq(h % 8, 0);
  ck_assert_uint_eq(n, 8 + h + 8);
  const char *want = "{\"__metadata__\":{\"k\":\"v\"},\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
  ck_assert_int_eq(memcmp(b + 8, want, strlen(want)), 0);
  float v[2];
  memcpy(v, b + 8 + h, 8);
  ck_assert(v[0] == 1.0f && v[1] == -2.0f);
  free(b);
}
END_TEST

/* a file as another writer makes it: whitespace, unknown keys, tensors out of order, escapes */
START_TEST(foreign_file) {
  const char *path = tu_in_dir("f.safetensors");
  const char *json = "{ \"b\" : {\"shape\": [1], \"dtype\": \"I64\", \"data_offsets\": [8, 16], \"extra\": [1, {\"x\": null}]},\n"
                     "  \"a\\u00e9\\\"q\": {\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[0,8]},"
                     "  \"__metadata__\": {\"format\": \"pt\"}}";
  unsigned char data[16];
  double x = 3.25;
  int64_t y = -9;
  memcpy(data, &x, 8);
  memcpy(data + 8, &y, 8);
  write_st(path, json, data, 16);
  vr_ckpt_reader *r = NULL;
  OK(vr_ckpt_open(path, &r));
  ck_assert_int_eq(vr_ckpt_count(r), 2);
  ck_assert_str_eq(vr_ckpt_name(r, 1), "a\xc3\xa9\"q");
  ck_assert_str_eq(vr_ckpt_meta(r, "format"), "pt");
  vr_tensor *t = NULL;
  OK(vr_ckpt_load(r, "a\xc3\xa9\"q", &t));
  ck_assert_double_eq(tu_item(t), 3.25);
  vr_tensor_free(t);
  OK(vr_ckpt_load(r, "b", &t));
  ck_assert_double_eq(tu_item(t), -9);
  vr_tensor_free(t);
  vr_ckpt_close(r);
}
END_TEST

START_TEST(errors) {
  vr_ckpt_reader *r = NULL;
  const char *missing = tu_in_dir("missing.safetensors");
  FAILS(vr_ckpt_open(missing, &r), VR_E_IO, missing);
  /* truncated: cut the data section short */
  const char *path = tu_in_dir("t.safetensors");
  OK(save_sample(path));
  size_t n;
  unsigned char *b = read_file(path, &n);
  const char *cut = tu_in_dir("cut.safetensors");
  write_file(cut, b, n - 3);
  FAILS(vr_ckpt_open(cut, &r), VR_E_FORMAT, "truncated");
  FAILS(vr_ckpt_open(cut, &r), VR_E_FORMAT, cut);
  /* cut inside the header */
  write_file(cut, b, 20);
  FAILS(vr_ckpt_open(cut, &r), VR_E_FORMAT, "truncated");
  write_file(cut, b, 5);
  FAILS(vr_ckpt_open(cut, &r), VR_E_FORMAT, "truncated");
  free(b);
  const char *bad = tu_in_dir("bad.safetensors");
  unsigned char z[8] = {0};
  write_st(bad, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]", z, 8);
  FAILS(vr_ckpt_open(bad, &r), VR_E_FORMAT, "bad JSON");
  write_st(bad, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}} x", z, 8);
  FAILS(vr_ckpt_open(bad, &r), VR_E_FORMAT, "bad JSON");
  write_st(bad, "{\"a\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]}}", z, 4);
  FAILS(vr_ckpt_open(bad, &r), VR_E_FORMAT, "F16");
  write_st(bad, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,16]}}", z, 8);
  FAILS(vr_ckpt_open(bad, &r), VR_E_FORMAT, "expected 8 bytes");
  write_st(bad, "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", z, 8);
  FAILS(vr_ckpt_open(bad, &r), VR_E_FORMAT, "ends at data byte 16");
  write_st(bad, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[2,6]}}", z, 8);
  FAILS(vr_ckpt_open(bad, &r), VR_E_FORMAT, "overlap");
  write_st(bad, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", z, 8);
  FAILS(vr_ckpt_open(bad, &r), VR_E_FORMAT, "cover 4");
  write_st(bad, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", z, 0);
  FAILS(vr_ckpt_open(bad, &r), VR_E_FORMAT, "data_offsets");
  write_st(bad, "{\"__metadata__\":{\"k\":3}}", z, 0);
  FAILS(vr_ckpt_open(bad, &r), VR_E_FORMAT, "strings");
  unsigned char huge[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, '{', '}'};
  write_file(bad, huge, 10);
  FAILS(vr_ckpt_open(bad, &r), VR_E_FORMAT, "header length");
  ck_assert_ptr_null(r);
  /* saving into a missing folder fails and leaves nothing */
  vr_ckpt_writer *w = NULL;
  OK(vr_ckpt_writer_new(&w));
  FAILS(vr_ckpt_writer_save(w, "/nonexistent_dir_vr/x.safetensors"), VR_E_IO, "nonexistent_dir_vr");
  FAILS(vr_ckpt_writer_add(w, NULL, NULL), VR_E_ARG, "name");
  vr_ckpt_writer_free(w);
}
END_TEST

/* overwriting keeps a complete file at every moment: the old one until the rename */
START_TEST(overwrite) {
  const char *path = tu_in_dir("o.safetensors");
  OK(save_sample(path));
  vr_ckpt_writer *w = NULL;
  OK(vr_ckpt_writer_new(&w));
  vr_tensor *t = tu_tensor(VR_F32, 1, TU_SHAPE(1), TU_VALS(7));
  OK(vr_ckpt_writer_add(w, "only", t));
  OK(vr_ckpt_writer_save(w, path));
  vr_ckpt_writer_free(w);
  vr_tensor_free(t);
  vr_ckpt_reader *r = NULL;
  OK(vr_ckpt_open(path, &r));
  ck_assert_int_eq(vr_ckpt_count(r), 1);
  ck_assert_int_eq(vr_ckpt_meta_count(r), 0);
  vr_ckpt_close(r);
}
END_TEST

static Suite *ckpt_suite(void) {
  Suite *s = suite_create("ckpt");
  TCase *tc = tcase_create("safetensors");
  tcase_add_checked_fixture(tc, tu_tmpdir_setup, tu_tmpdir_teardown);
  tcase_add_test(tc, round_trip);
  tcase_add_test(tc, layout);
  tcase_add_test(tc, foreign_file);
  tcase_add_test(tc, errors);
  tcase_add_test(tc, overwrite);
  suite_add_tcase(s, tc);
  return s;
}
VR_TEST_MAIN(ckpt_suite)
