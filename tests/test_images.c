/* test_images.c: image decoding. Every image is written here with TurboJPEG's and libpng's
 * encoders (RGB, grey, CMYK and EXIF-rotated JPEGs; 8- and 16-bit, palette, grey, grey+alpha, RGBA
 * and interlaced PNGs) and checked once decoded: pixels against the known content (within JPEG's
 * tolerance; exact area averages for a lossless gradient), and every bad-file kind skipped with its
 * reason (empty, text, truncated, corrupt, 1 x 1, 30000 x 30000, a decompression bomb). Folders of
 * images are test_image_folders.c's. */
#include "image_files.h"

/* ---------------------------------------------------------------- decoding */

START_TEST(decode_jpeg_kinds) {
  vr_tensor *t;
  /* RGB, full size and at 16 px */
  write_solid_jpeg(tu_in_dir("rgb.jpg"), 64, 48, 200, 40, 90);
  OK(vr_image_load(tu_in_dir("rgb.jpg"), 0, &t));
  ck_assert(vr_tensor_size(t, 0) == 3 && vr_tensor_size(t, 1) == 48 && vr_tensor_size(t, 2) == 64);
  check_solid(t, 200, 40, 90, 3, "rgb jpeg");
  vr_tensor_free(t);
  OK(vr_image_load(tu_in_dir("rgb.jpg"), 16, &t));
  ck_assert(vr_tensor_size(t, 1) == 16 && vr_tensor_size(t, 2) == 16);
  check_solid(t, 200, 40, 90, 3, "rgb jpeg at 16 px");
  vr_tensor_free(t);
  /* a large JPEG goes through DCT scaling: the colour survives */
  write_solid_jpeg(tu_in_dir("big.jpg"), 512, 384, 30, 160, 220);
  OK(vr_image_load(tu_in_dir("big.jpg"), 32, &t));
  ck_assert(vr_tensor_size(t, 1) == 32);
  check_solid(t, 30, 160, 220, 3, "DCT-scaled jpeg");
  vr_tensor_free(t);
  /* grey: expanded to three equal channels */
  uint8_t g[40 * 32];
  memset(g, 77, sizeof g);
  write_jpeg(tu_in_dir("grey.jpg"), g, 40, 32, TJPF_GRAY, NULL, 0);
  OK(vr_image_load(tu_in_dir("grey.jpg"), 16, &t));
  check_solid(t, 77, 77, 77, 2, "grey jpeg");
  vr_tensor_free(t);
  /* CMYK (Adobe's inverted convention, as libjpeg writes it): C K / 255 = R */
  uint8_t cmyk[32 * 32 * 4];
  for (int i = 0; i < 32 * 32; i++) cmyk[4 * i] = 200, cmyk[4 * i + 1] = 50, cmyk[4 * i + 2] = 100, cmyk[4 * i + 3] = 255;
  write_jpeg(tu_in_dir("cmyk.jpg"), cmyk, 32, 32, TJPF_CMYK, NULL, 0);
  OK(vr_image_load(tu_in_dir("cmyk.jpg"), 16, &t));
  check_solid(t, 200, 50, 100, 4, "cmyk jpeg");
  vr_tensor_free(t);
}
END_TEST

START_TEST(decode_exif_orientation) {
  /* 64 x 32: left half red, right half blue */
  uint8_t px[64 * 32 * 3];
  for (int y = 0; y < 32; y++)
    for (int x = 0; x < 64; x++) {
      uint8_t *p = px + (y * 64 + x) * 3;
      p[0] = x < 32 ? 255 : 0;
      p[1] = 0;
      p[2] = x < 32 ? 0 : 255;
    }
  unsigned char app1[64];
  vr_tensor *t;
  /* 6: rotate 90 clockwise: 32 wide, 64 high, the left (red) half on top */
  size_t n = exif_app1(app1, 6, 0);
  write_jpeg(tu_in_dir("o6.jpg"), px, 64, 32, TJPF_RGB, app1, n);
  OK(vr_image_load(tu_in_dir("o6.jpg"), 0, &t));
  ck_assert(vr_tensor_size(t, 1) == 64 && vr_tensor_size(t, 2) == 32);
  NEAR(mean_px(t, 0, 4, 28, 4, 28), 255, 6, "orientation 6: top red");
  NEAR(mean_px(t, 2, 36, 60, 4, 28), 255, 6, "orientation 6: bottom blue");
  vr_tensor_free(t);
  /* 8: rotate 90 counter-clockwise: the left (red) half at the bottom (little-endian TIFF) */
  n = exif_app1(app1, 8, 1);
  write_jpeg(tu_in_dir("o8.jpg"), px, 64, 32, TJPF_RGB, app1, n);
  OK(vr_image_load(tu_in_dir("o8.jpg"), 0, &t));
  ck_assert(vr_tensor_size(t, 1) == 64 && vr_tensor_size(t, 2) == 32);
  NEAR(mean_px(t, 0, 36, 60, 4, 28), 255, 6, "orientation 8: bottom red");
  NEAR(mean_px(t, 2, 4, 28, 4, 28), 255, 6, "orientation 8: top blue");
  vr_tensor_free(t);
  /* 3: rotate 180: red on the right */
  n = exif_app1(app1, 3, 0);
  write_jpeg(tu_in_dir("o3.jpg"), px, 64, 32, TJPF_RGB, app1, n);
  OK(vr_image_load(tu_in_dir("o3.jpg"), 0, &t));
  ck_assert(vr_tensor_size(t, 1) == 32 && vr_tensor_size(t, 2) == 64);
  NEAR(mean_px(t, 0, 4, 28, 36, 60), 255, 6, "orientation 3: right red");
  vr_tensor_free(t);
  /* 2: mirrored: red on the right too, same size */
  n = exif_app1(app1, 2, 1);
  write_jpeg(tu_in_dir("o2.jpg"), px, 64, 32, TJPF_RGB, app1, n);
  OK(vr_image_load(tu_in_dir("o2.jpg"), 0, &t));
  NEAR(mean_px(t, 2, 4, 28, 4, 28), 255, 6, "orientation 2: left blue");
  vr_tensor_free(t);
}
END_TEST

START_TEST(decode_png_kinds) {
  vr_tensor *t;
  enum { W = 24, H = 20 };
  static uint8_t buf[W * H * 8];
  /* 16-bit RGB: 0x8080 scales to 128 exactly, 0xFFFF to 255, 0x0101 to 1 */
  for (int i = 0; i < W * H; i++) {
    uint8_t *p = buf + i * 6;
    p[0] = p[1] = 0x80;
    p[2] = p[3] = 0xFF;
    p[4] = p[5] = 0x01;
  }
  write_png(tu_in_dir("rgb16.png"), W, H, PNG_COLOR_TYPE_RGB, 16, buf, NULL, 0, 0);
  OK(vr_image_load(tu_in_dir("rgb16.png"), 0, &t));
  check_solid(t, 128, 255, 1, 0, "16-bit png");
  vr_tensor_free(t);
  /* palette */
  png_color pal[3] = {{10, 20, 30}, {250, 240, 230}, {0, 128, 255}};
  for (int i = 0; i < W * H; i++) buf[i] = 2;
  write_png(tu_in_dir("pal.png"), W, H, PNG_COLOR_TYPE_PALETTE, 8, buf, pal, 3, 0);
  OK(vr_image_load(tu_in_dir("pal.png"), 16, &t));
  check_solid(t, 0, 128, 255, 0, "palette png");
  vr_tensor_free(t);
  /* grey 8-bit and 1-bit (all ones: 255) */
  memset(buf, 99, W * H);
  write_png(tu_in_dir("grey.png"), W, H, PNG_COLOR_TYPE_GRAY, 8, buf, NULL, 0, 0);
  OK(vr_image_load(tu_in_dir("grey.png"), 0, &t));
  check_solid(t, 99, 99, 99, 0, "grey png");
  vr_tensor_free(t);
  memset(buf, 0xFF, W * H);
  write_png(tu_in_dir("grey1.png"), W, H, PNG_COLOR_TYPE_GRAY, 1, buf, NULL, 0, 0);
  OK(vr_image_load(tu_in_dir("grey1.png"), 0, &t));
  check_solid(t, 255, 255, 255, 0, "1-bit grey png");
  vr_tensor_free(t);
  /* grey + alpha and RGBA: alpha dropped, the colour kept */
  for (int i = 0; i < W * H; i++) buf[2 * i] = 150, buf[2 * i + 1] = 0;
  write_png(tu_in_dir("ga.png"), W, H, PNG_COLOR_TYPE_GRAY_ALPHA, 8, buf, NULL, 0, 0);
  OK(vr_image_load(tu_in_dir("ga.png"), 0, &t));
  check_solid(t, 150, 150, 150, 0, "grey+alpha png");
  vr_tensor_free(t);
  for (int i = 0; i < W * H; i++) buf[4 * i] = 1, buf[4 * i + 1] = 2, buf[4 * i + 2] = 3, buf[4 * i + 3] = 17;
  write_png(tu_in_dir("rgba.png"), W, H, PNG_COLOR_TYPE_RGBA, 8, buf, NULL, 0, 1);
  OK(vr_image_load(tu_in_dir("rgba.png"), 0, &t));
  check_solid(t, 1, 2, 3, 0, "interlaced RGBA png");
  vr_tensor_free(t);
}
END_TEST

/* area averaging on a lossless gradient: 64 x 32 with R = 4x, G = 8y; at 16 px the short side halves
 * and the centre 32 columns (16..47) are kept: output (i, j) averages 2 x 2 source pixels */
START_TEST(resize_area_exact) {
  static uint8_t px[64 * 32 * 3];
  for (int y = 0; y < 32; y++)
    for (int x = 0; x < 64; x++) {
      uint8_t *p = px + (y * 64 + x) * 3;
      p[0] = (uint8_t)(4 * x);
      p[1] = (uint8_t)(8 * y);
      p[2] = 7;
    }
  write_png(tu_in_dir("grad.png"), 64, 32, PNG_COLOR_TYPE_RGB, 8, px, NULL, 0, 0);
  vr_tensor *t;
  OK(vr_image_load(tu_in_dir("grad.png"), 16, &t));
  const uint8_t *o = vr_tensor_data(t);
  for (int j = 0; j < 16; j++)
    for (int i = 0; i < 16; i++) {
      ck_assert_int_eq(o[j * 16 + i], 66 + 8 * i);          /* (4 (16+2i) + 4 (17+2i)) / 2 */
      ck_assert_int_eq(o[256 + j * 16 + i], 4 + 16 * j);    /* (8 (2j) + 8 (2j+1)) / 2 */
      ck_assert_int_eq(o[512 + j * 16 + i], 7);
    }
  vr_tensor_free(t);
  /* enlarging (bilinear): a solid image stays solid */
  write_solid_png(tu_in_dir("small.png"), 10, 12, 11, 22, 33);
  OK(vr_image_load(tu_in_dir("small.png"), 40, &t));
  check_solid(t, 11, 22, 33, 0, "enlarged png");
  vr_tensor_free(t);
}
END_TEST


START_TEST(bad_files) {
  mkdir(tu_in_dir("bad"), 0777);
  write_bad_files(tu_in_dir("bad"));
  static const struct { const char *name, *needle; } cases[] = {
      {"zero.jpg", "empty file"},           {"notes.txt", "not a JPEG or PNG"},  {"truncated.jpg", "truncated JPEG"},
      {"corrupt.jpg", "JPEG"},              {"huge.jpg", "more than 16384"},     {"tiny.png", "smaller than 8"},
      {"bomb.png", "decompression bomb"},   {"cut.png", "PNG"},
  };
  for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
    char p[600];
    snprintf(p, sizeof p, "%s/bad/%s", tu_dir, cases[k].name);
    vr_tensor *t = NULL;
    FAILS(vr_image_load(p, 32, &t), VR_E_FORMAT, cases[k].needle);
    ck_assert_msg(strstr(vr_last_error(), cases[k].name), "the message names the file: %s", vr_last_error());
    ck_assert_ptr_null(t);
  }
}
END_TEST

/* damaged copies of a JPEG (with EXIF) and a PNG: random bytes changed, cut at random lengths, a
 * declared size patched; each decodes or fails with a message, never crashes (run it under `make asan`) */
START_TEST(mutations) {
  uint8_t px[40 * 36 * 3];
  for (int i = 0; i < 40 * 36 * 3; i++) px[i] = (uint8_t)(i * 13 + i / 97);
  unsigned char app1[64];
  size_t an = exif_app1(app1, 7, 0);
  write_jpeg(tu_in_dir("m.jpg"), px, 40, 36, TJPF_RGB, app1, an);
  write_png(tu_in_dir("m.png"), 40, 36, PNG_COLOR_TYPE_RGB, 8, px, NULL, 0, 1);
  const char *src[2] = {"m.jpg", "m.png"};
  uint64_t r = 12345;
  int ok = 0, bad = 0;
  for (int f = 0; f < 2; f++) {
    size_t n;
    unsigned char *orig = read_file(tu_in_dir(src[f]), &n);
    unsigned char *b = malloc(n);
    for (int k = 0; k < 300; k++) {
      memcpy(b, orig, n);
      size_t len = n;
      r ^= r << 13, r ^= r >> 7, r ^= r << 17;
      if (k % 3 == 0) len = 1 + r % n; /* cut */
      else
        for (int m = 0; m < 1 + k % 4; m++) {
          r ^= r << 13, r ^= r >> 7, r ^= r << 17;
          b[r % n] = (unsigned char)(r >> 32);
        }
      write_file(tu_in_dir("mut.bin"), b, len);
      vr_tensor *t = NULL;
      vr_status st = vr_image_load(tu_in_dir("mut.bin"), 16, &t);
      ck_assert_msg(st == VR_OK || st == VR_E_FORMAT, "%s mutation %d: %s", src[f], k, vr_last_error());
      if (st == VR_OK) ck_assert(vr_tensor_size(t, 1) == 16 && vr_tensor_size(t, 2) == 16);
      ok += st == VR_OK;
      bad += st != VR_OK;
      vr_tensor_free(t);
    }
    free(b);
    free(orig);
  }
  ck_assert(ok > 0 && bad > 0);
}
END_TEST

static Suite *images_suite(void) {
  Suite *s = suite_create("images");
  TCase *tc = tcase_create("decode");
  tcase_add_checked_fixture(tc, tu_tmpdir_setup, tu_tmpdir_teardown);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, decode_jpeg_kinds);
  tcase_add_test(tc, decode_exif_orientation);
  tcase_add_test(tc, decode_png_kinds);
  tcase_add_test(tc, resize_area_exact);
  tcase_add_test(tc, bad_files);
  tcase_add_test(tc, mutations);
  suite_add_tcase(s, tc);
  return s;
}
VR_TEST_MAIN(images_suite)
