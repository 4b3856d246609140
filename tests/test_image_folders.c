/* test_image_folders.c: image folders: class folders and list files (labels, class names, counts;
 * bad lines and escaping paths refused with file:line), the packed cache equal to direct decoding,
 * a changed folder repacked, and a pack stopped by SIGINT then resumed giving the same bytes as an
 * uninterrupted one. */
#include "image_files.h"

extern void (*vr_image_pack_shard_hook)(int64_t shard);

/* ---------------------------------------------------------------- folders */

/* root/{apple,banana,cherry}: apple 100 JPEGs of varying sizes and colours, banana 90 PNGs (RGB,
 * 16-bit, palette, grey), cherry 60 JPEGs (grey, CMYK, EXIF-rotated) plus the 8 bad files
 * (in cherry/zbad/): 250 good images. expect[i] (the i-th file in sorted order) gets the colour */
typedef struct { int r, g, b; } rgb;
static void make_folder(const char *root, int with_bad) {
  char p[700];
  mkdir(root, 0777);
  const char *cls[3] = {"apple", "banana", "cherry"};
  for (int c = 0; c < 3; c++) {
    snprintf(p, sizeof p, "%s/%s", root, cls[c]);
    mkdir(p, 0777);
  }
  for (int i = 0; i < 100; i++) {
    snprintf(p, sizeof p, "%s/apple/a%03d.jpg", root, i);
    write_solid_jpeg(p, 40 + i % 7 * 9, 36 + i % 5 * 11, 180 + i % 50, 20 + i % 30, 20);
  }
  for (int i = 0; i < 90; i++) {
    snprintf(p, sizeof p, "%s/banana/b%03d.png", root, i);
    int w = 30 + i % 4 * 5, h = 28 + i % 3 * 6;
    static uint8_t buf[64 * 64 * 6];
    if (i % 3 == 0) write_solid_png(p, w, h, 230, 220, 40 + i);
    else if (i % 3 == 1) {
      for (int k = 0; k < w * h; k++) buf[6 * k] = buf[6 * k + 1] = 230, buf[6 * k + 2] = buf[6 * k + 3] = 220,
                                      buf[6 * k + 4] = buf[6 * k + 5] = (uint8_t)(40 + i); /* v * 257 */
      write_png(p, w, h, PNG_COLOR_TYPE_RGB, 16, buf, NULL, 0, 0);
    } else {
      png_color pal[2] = {{230, 220, (png_byte)(40 + i)}, {0, 0, 0}};
      memset(buf, 0, (size_t)w * h);
      write_png(p, w, h, PNG_COLOR_TYPE_PALETTE, 8, buf, pal, 2, 0);
    }
  }
  for (int i = 0; i < 60; i++) {
    snprintf(p, sizeof p, "%s/cherry/c%03d.jpg", root, i);
    static uint8_t buf[48 * 40 * 4];
    if (i % 3 == 0) {
      memset(buf, 60 + i, 48 * 40);
      write_jpeg(p, buf, 48, 40, TJPF_GRAY, NULL, 0);
    } else if (i % 3 == 1) {
      for (int k = 0; k < 48 * 40; k++) buf[4 * k] = 120, buf[4 * k + 1] = 10, buf[4 * k + 2] = 40, buf[4 * k + 3] = 255;
      write_jpeg(p, buf, 48, 40, TJPF_CMYK, NULL, 0);
    } else {
      unsigned char app1[64];
      size_t n = exif_app1(app1, 6, i % 2);
      for (int k = 0; k < 48 * 40; k++) buf[3 * k] = 120, buf[3 * k + 1] = 10, buf[3 * k + 2] = 40;
      write_jpeg(p, buf, 48, 40, TJPF_RGB, app1, n);
    }
  }
  if (with_bad) { /* in a subfolder sorted after the good files */
    snprintf(p, sizeof p, "%s/cherry/zbad", root);
    mkdir(p, 0777);
    write_bad_files(p);
  }
}

static int64_t file_index(const vr_image_set *s, const char *rel) {
  for (int64_t i = 0; i < vr_image_set_count(s); i++)
    if (!strcmp(vr_image_set_path(s, i), rel)) return i;
  return -1;
}

START_TEST(folder_pack_load) {
  const char *root = tu_in_dir("imgs");
  make_folder(root, 1);
  vr_image_set *s;
  OK(vr_image_set_folder(root, NULL, &s));
  ck_assert_int_eq(vr_image_set_count(s), 258);
  ck_assert_int_eq(vr_image_set_num_classes(s), 3);
  ck_assert_str_eq(vr_image_set_class_name(s, 0), "apple");
  ck_assert_str_eq(vr_image_set_class_name(s, 2), "cherry");
  ck_assert_str_eq(vr_image_set_path(s, 0), "apple/a000.jpg");
  ck_assert_int_eq(vr_image_set_label(s, 150), 1);
  char cache[600];
  snprintf(cache, sizeof cache, "%s/cache", tu_dir);
  ck_assert_int_eq(vr_image_cache_valid(s, 24, cache), 0);
  OK(vr_image_pack(s, 24, cache, 2, 0, 0, 0));
  ck_assert_int_eq(vr_image_cache_valid(s, 24, cache), 1);
  char hash[17];
  OK(vr_image_set_hash(s, 24, hash));
  vr_dataset *d;
  OK(vr_image_cache_load(cache, hash, 3, 0, &d));
  ck_assert_int_eq(vr_dataset_count(d), 250);
  ck_assert(vr_dataset_channels(d) == 3 && vr_dataset_height(d) == 24 && vr_dataset_width(d) == 24);
  ck_assert_int_eq(vr_dataset_num_classes(d), 3);
  int64_t counts[3];
  OK(vr_dataset_class_counts(d, 3, counts));
  ck_assert(counts[0] == 100 && counts[1] == 90 && counts[2] == 60);
  /* every stored image equals the file decoded directly, and has its class's colour */
  int64_t o = 0;
  char p[800];
  for (int64_t i = 0; i < vr_image_set_count(s); i++) {
    snprintf(p, sizeof p, "%s/%s", root, vr_image_set_path(s, i));
    vr_tensor *t = NULL;
    if (vr_image_load(p, 24, &t)) continue; /* a bad file: left out of the dataset */
    ck_assert_msg(!memcmp(vr_tensor_data(t), vr_dataset_image_data(d, o), 3 * 24 * 24), "image %lld (%s) differs from direct decoding",
                  (long long)o, p);
    ck_assert_int_eq(vr_dataset_label(d, o), vr_image_set_label(s, i));
    vr_tensor_free(t);
    o++;
  }
  ck_assert_int_eq(o, 250);
  /* known content: apple a007 = (187, 27, 20); banana b004 (16-bit) = (230, 220, 44); cherry c000 grey 60;
   * c001 CMYK and c002 rotated = (120, 10, 40) */
  struct { const char *rel; int r, g, b; double tol; } known[] = {
      {"apple/a007.jpg", 187, 27, 20, 4}, {"banana/b004.png", 230, 220, 44, 0}, {"banana/b005.png", 230, 220, 45, 0},
      {"cherry/c000.jpg", 60, 60, 60, 2}, {"cherry/c001.jpg", 120, 10, 40, 5},  {"cherry/c002.jpg", 120, 10, 40, 5}};
  for (size_t k = 0; k < sizeof known / sizeof *known; k++) {
    int64_t i = file_index(s, known[k].rel), oi;
    ck_assert_int_ge(i, 0);
    oi = i; /* the bad files come last: the position among the decoded files is the same */
    int64_t sz[4] = {3, 24, 24};
    vr_tensor *t;
    OK(vr_tensor_from_buffer(vr_dataset_image_data(d, oi), 3, sz, VR_U8, VR_CPU, &t));
    check_solid(t, known[k].r, known[k].g, known[k].b, known[k].tol, known[k].rel);
    vr_tensor_free(t);
  }
  vr_dataset_free(d);
  /* skipped.txt names the 8 bad files with their reasons */
  snprintf(p, sizeof p, "%s/skipped.txt", cache);
  size_t n;
  char *sk = (char *)read_file(p, &n);
  ck_assert_ptr_nonnull(sk);
  sk[n] = 0;
  int lines = 0;
  for (char *c = sk; *c; c++) lines += *c == '\n';
  ck_assert_int_eq(lines, 8);
  ck_assert_ptr_nonnull(strstr(sk, "cherry/zbad/bomb.png\t"));
  ck_assert_ptr_nonnull(strstr(sk, "decompression bomb"));
  ck_assert_ptr_nonnull(strstr(sk, "cherry/zbad/zero.jpg\tempty file"));
  free(sk);
  /* strict: the pack stops at a bad file, and loading the lenient cache strictly is refused */
  snprintf(p, sizeof p, "%s/strict", tu_dir);
  FAILS(vr_image_pack(s, 24, p, 1, 1, 0, 0), VR_E_FORMAT, "strict");
  ck_assert_msg(strstr(vr_last_error(), "/cherry/"), "names the bad file: %s", vr_last_error());
  FAILS(vr_image_cache_load(cache, hash, 3, 1, &d), VR_E_FORMAT, "8 bad files");
  /* channels: luma, and auto (3: not every file is grey) */
  OK(vr_image_cache_load(cache, NULL, 1, 0, &d));
  ck_assert_int_eq(vr_dataset_channels(d), 1);
  vr_dataset_free(d);
  OK(vr_image_cache_load(cache, NULL, 0, 0, &d));
  ck_assert_int_eq(vr_dataset_channels(d), 3);
  /* a stratified held-out tenth: 10 + 9 + 6 */
  vr_dataset *te, *tr;
  OK(vr_dataset_holdout(d, 0.1, 1, &te));
  OK(vr_dataset_holdout(d, 0.1, 0, &tr));
  ck_assert_int_eq(vr_dataset_count(te), 25);
  ck_assert_int_eq(vr_dataset_count(tr), 225);
  OK(vr_dataset_class_counts(te, 3, counts));
  ck_assert(counts[0] == 10 && counts[1] == 9 && counts[2] == 6);
  vr_dataset_free(te);
  vr_dataset_free(tr);
  vr_dataset_free(d);
  vr_image_set_free(s);
}
END_TEST

START_TEST(folder_errors) {
  const char *root = tu_in_dir("f");
  char p[600];
  mkdir(root, 0777);
  vr_image_set *s = NULL;
  FAILS(vr_image_set_folder(root, NULL, &s), VR_E_ARG, "no class folders");
  snprintf(p, sizeof p, "%s/cat", root);
  mkdir(p, 0777);
  snprintf(p, sizeof p, "%s/cat/1.png", root);
  write_solid_png(p, 16, 16, 1, 2, 3);
  snprintf(p, sizeof p, "%s/dog", root);
  mkdir(p, 0777);
  FAILS(vr_image_set_folder(root, NULL, &s), VR_E_ARG, "/dog' holds no files");
  snprintf(p, sizeof p, "%s/dog/.hidden.png", root);
  write_solid_png(p, 16, 16, 1, 2, 3);
  FAILS(vr_image_set_folder(root, NULL, &s), VR_E_ARG, "/dog' holds no files");
  snprintf(p, sizeof p, "%s/dog/sub", root);
  mkdir(p, 0777);
  snprintf(p, sizeof p, "%s/dog/sub/2.png", root);
  write_solid_png(p, 16, 16, 1, 2, 3);
  OK(vr_image_set_folder(root, NULL, &s));
  ck_assert_int_eq(vr_image_set_count(s), 2);
  ck_assert_str_eq(vr_image_set_path(s, 1), "dog/sub/2.png");
  /* a validation folder with a class the training folder lacks */
  const char *val = tu_in_dir("v");
  mkdir(val, 0777);
  snprintf(p, sizeof p, "%s/eel", val);
  mkdir(p, 0777);
  snprintf(p, sizeof p, "%s/eel/1.png", val);
  write_solid_png(p, 16, 16, 1, 2, 3);
  vr_image_set *v = NULL;
  FAILS(vr_image_set_folder(val, s, &v), VR_E_ARG, "is not a class of");
  snprintf(p, sizeof p, "%s/eel", val);
  char q[600];
  snprintf(q, sizeof q, "%s/dog", val);
  ck_assert_int_eq(rename(p, q), 0);
  OK(vr_image_set_folder(val, s, &v));
  ck_assert_int_eq(vr_image_set_label(v, 0), 1);
  vr_image_set_free(v);
  vr_image_set_free(s);
  FAILS(vr_image_set_folder(tu_in_dir("missing"), NULL, &s), VR_E_IO, "missing");
}
END_TEST

START_TEST(list_files) {
  const char *root = tu_in_dir("lt");
  char p[600];
  mkdir(root, 0777);
  snprintf(p, sizeof p, "%s/x", root);
  mkdir(p, 0777);
  for (int i = 0; i < 6; i++) {
    snprintf(p, sizeof p, "%s/x/%d.png", root, i);
    write_solid_png(p, 16, 16, 40 * i, 0, 0);
  }
  snprintf(p, sizeof p, "%s/x/with space.png", root);
  write_solid_png(p, 16, 16, 9, 9, 9);
  const char *list = tu_in_dir("train.txt");
  const char *good = "# ImageNet-LT style\nx/0.png 0\nx/1.png 2\n\nx/2.png 1\r\nx/with space.png 1\n";
  write_file(list, good, strlen(good));
  vr_image_set *s = NULL;
  OK(vr_image_set_list(root, list, 0, &s));
  ck_assert_int_eq(vr_image_set_count(s), 4);
  ck_assert_int_eq(vr_image_set_num_classes(s), 3);
  ck_assert_int_eq(vr_image_set_label(s, 1), 2);
  ck_assert_str_eq(vr_image_set_path(s, 3), "x/with space.png");
  ck_assert_str_eq(vr_image_set_class_name(s, 2), "2");
  vr_image_set_free(s);
  static const struct { const char *text, *needle; int nc; } bad[] = {
      {"x/0.png 0\nx/1.png 1\n../../etc/passwd 0\n", "train.txt:3: path '../../etc/passwd' leaves the root", 0},
      {"x/0.png 0\n/etc/passwd 1\n", "train.txt:2: path '/etc/passwd' leaves the root", 0},
      {"x/../../x/0.png 0\n", "train.txt:1: path 'x/../../x/0.png' leaves the root", 0},
      {"x/0.png 0\nx/1.png one\n", "train.txt:2: label 'one'", 0},
      {"x/0.png 0\nx/1.png -1\n", "train.txt:2: label '-1'", 0},
      {"x/0.png 0\nx/1.png 3\n", "train.txt:2: label 3 of 'x/1.png' is out of range", 3},
      {"x/0.png 0\nx/1.png\n", "train.txt:2: expected 'relative/path label'", 0},
      {"x/0.png 0\nx/9.png 1\n", "train.txt:2: '", 0},
      {"# nothing\n", "lists no images", 0},
  };
  for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
    write_file(list, bad[k].text, strlen(bad[k].text));
    s = NULL;
    vr_status st = vr_image_set_list(root, list, bad[k].nc, &s);
    ck_assert_msg(st != VR_OK, "case %zu accepted", k);
    ck_assert_msg(strstr(vr_last_error(), bad[k].needle), "case %zu: '%s' lacks '%s'", k, vr_last_error(), bad[k].needle);
    ck_assert_ptr_null(s);
  }
}
END_TEST

/* ---------------------------------------------------------------- the cache's life */

static int same_file(const char *a, const char *b) {
  size_t na = 0, nb = 0;
  unsigned char *x = read_file(a, &na), *y = read_file(b, &nb);
  int same = x && y && na == nb && !memcmp(x, y, na);
  free(x);
  free(y);
  return same;
}

START_TEST(repack_on_change) {
  const char *root = tu_in_dir("r");
  make_folder(root, 0);
  char cache[600], p[700];
  snprintf(cache, sizeof cache, "%s/cache", tu_dir);
  vr_image_set *s;
  OK(vr_image_set_folder(root, NULL, &s));
  char h0[17], h1[17];
  OK(vr_image_set_hash(s, 16, h0));
  OK(vr_image_pack(s, 16, cache, 2, 0, 0, 0));
  /* another size is another cache */
  ck_assert_int_eq(vr_image_cache_valid(s, 20, cache), 0);
  vr_image_set_free(s);
  /* added */
  snprintf(p, sizeof p, "%s/apple/zzz.png", root);
  write_solid_png(p, 20, 20, 1, 1, 1);
  OK(vr_image_set_folder(root, NULL, &s));
  OK(vr_image_set_hash(s, 16, h1));
  ck_assert_str_ne(h0, h1);
  ck_assert_int_eq(vr_image_cache_valid(s, 16, cache), 0);
  vr_dataset *d;
  FAILS(vr_image_cache_load(cache, h1, 3, 0, &d), VR_E_FORMAT, "the source changed");
  OK(vr_image_pack(s, 16, cache, 2, 0, 0, 0));
  OK(vr_image_cache_load(cache, h1, 3, 0, &d));
  ck_assert_int_eq(vr_dataset_count(d), 251);
  vr_dataset_free(d);
  vr_image_set_free(s);
  /* modified (another size) */
  snprintf(p, sizeof p, "%s/banana/b000.png", root);
  write_solid_png(p, 33, 20, 1, 1, 1);
  OK(vr_image_set_folder(root, NULL, &s));
  ck_assert_int_eq(vr_image_cache_valid(s, 16, cache), 0);
  OK(vr_image_pack(s, 16, cache, 2, 0, 0, 0));
  OK(vr_image_cache_load(cache, NULL, 3, 0, &d));
  ck_assert_int_eq(vr_dataset_label(d, 100), 0);
  ck_assert_int_eq(vr_dataset_label(d, 101), 1);
  ck_assert_int_lt(vr_dataset_image_data(d, 101)[0], 5); /* b000 is now (1, 1, 1): after the 101 apples */
  vr_dataset_free(d);
  vr_image_set_free(s);
  /* removed: the result equals a fresh pack of the folder, byte for byte */
  snprintf(p, sizeof p, "%s/apple/a050.jpg", root);
  unlink(p);
  OK(vr_image_set_folder(root, NULL, &s));
  ck_assert_int_eq(vr_image_cache_valid(s, 16, cache), 0);
  OK(vr_image_pack(s, 16, cache, 1, 0, 0, 0));
  char fresh[600];
  snprintf(fresh, sizeof fresh, "%s/fresh", tu_dir);
  OK(vr_image_pack(s, 16, fresh, 2, 0, 0, 0));
  char a[800], b[800];
  snprintf(a, sizeof a, "%s/index.txt", cache);
  snprintf(b, sizeof b, "%s/index.txt", fresh);
  ck_assert(same_file(a, b));
  for (int k = 0; k < 16; k++) {
    snprintf(a, sizeof a, "%s/shard-%06d.bin", cache, k);
    snprintf(b, sizeof b, "%s/shard-%06d.bin", fresh, k);
    ck_assert_int_eq(access(a, F_OK) == 0, access(b, F_OK) == 0);
    if (!access(a, F_OK)) ck_assert_msg(same_file(a, b), "shard %d differs", k);
  }
  vr_image_set_free(s);
}
END_TEST

static void on_sigint(int sig) { vr_interrupt_request(); }
static void interrupt_after_2(int64_t shard) {
  static int seen;
  if (++seen == 3) raise(SIGINT);
}

START_TEST(resume_after_sigint) {
  const char *root = tu_in_dir("s");
  make_folder(root, 1);
  vr_image_set *s;
  OK(vr_image_set_folder(root, NULL, &s));
  char ref[600], cut[600];
  snprintf(ref, sizeof ref, "%s/ref", tu_dir);
  snprintf(cut, sizeof cut, "%s/cut", tu_dir);
  OK(vr_image_pack(s, 20, ref, 2, 0, 16, 0));
  struct sigaction sa = {0}, old;
  sa.sa_handler = on_sigint;
  sigaction(SIGINT, &sa, &old);
  vr_image_pack_shard_hook = interrupt_after_2;
  FAILS(vr_image_pack(s, 20, cut, 2, 0, 16, 0), VR_E_INTERRUPTED, "run it again to resume");
  vr_image_pack_shard_hook = NULL;
  sigaction(SIGINT, &old, NULL);
  char a[800], b[800];
  snprintf(b, sizeof b, "%s/index.txt", cut);
  ck_assert_int_ne(access(b, F_OK), 0); /* unfinished: no index */
  int have = 0;
  for (int k = 0; k < 17; k++) {
    snprintf(b, sizeof b, "%s/shard-%06d.bin", cut, k);
    have += !access(b, F_OK);
  }
  ck_assert_int_ge(have, 3);
  ck_assert_int_lt(have, 17);
  /* a stray temporary file from a killed run is cleaned up */
  snprintf(b, sizeof b, "%s/shard-000016.bin.tmp.1.16", cut);
  write_file(b, "x", 1);
  OK(vr_image_pack(s, 20, cut, 1, 0, 16, 0));
  ck_assert_int_ne(access(b, F_OK), 0);
  static const char *files[] = {"index.txt", "skipped.txt"};
  for (int k = 0; k < 2; k++) {
    snprintf(a, sizeof a, "%s/%s", ref, files[k]);
    snprintf(b, sizeof b, "%s/%s", cut, files[k]);
    ck_assert_msg(same_file(a, b), "%s differs", files[k]);
  }
  for (int k = 0; k < 17; k++) {
    snprintf(a, sizeof a, "%s/shard-%06d.bin", ref, k);
    snprintf(b, sizeof b, "%s/shard-%06d.bin", cut, k);
    ck_assert_msg(same_file(a, b), "shard %d differs", k);
  }
  vr_image_set_free(s);
}
END_TEST

static Suite *image_folders_suite(void) {
  Suite *s = suite_create("image_folders");
  TCase *tf = tcase_create("folders");
  tcase_add_checked_fixture(tf, tu_tmpdir_setup, tu_tmpdir_teardown);
  tcase_set_timeout(tf, 120);
  tcase_add_test(tf, folder_pack_load);
  tcase_add_test(tf, folder_errors);
  tcase_add_test(tf, list_files);
  tcase_add_test(tf, repack_on_change);
  tcase_add_test(tf, resume_after_sigint);
  suite_add_tcase(s, tf);
  return s;
}
VR_TEST_MAIN(image_folders_suite)
