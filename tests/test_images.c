/* test_images.c: image folders. Every image is written here with TurboJPEG's and libpng's encoders
 * (RGB, grey, CMYK and EXIF-rotated JPEGs; 8- and 16-bit, palette, grey, grey+alpha, RGBA and
 * interlaced PNGs) and checked once decoded: pixels against the known content (within JPEG's
 * tolerance; exact area averages for a lossless gradient), every bad-file kind skipped with its
 * reason (empty, text, truncated, corrupt, 1 x 1, 30000 x 30000, a decompression bomb), class
 * folders and list files (labels, class names, counts; bad lines and escaping paths refused with
 * file:line), the packed cache equal to direct decoding, a changed folder repacked, and a pack
 * stopped by SIGINT then resumed giving the same bytes as an uninterrupted one. */
#include "testutil.h"
#include <png.h>
#include <signal.h>
#include <sys/stat.h>
#include <turbojpeg.h>
#include <unistd.h>
#include <zlib.h>

extern void (*vr_image_pack_shard_hook)(int64_t shard);

/* ---------------------------------------------------------------- writers */

static void write_file(const char *path, const void *b, size_t n) {
  FILE *f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  ck_assert_uint_eq(fwrite(b, 1, n, f), n);
  fclose(f);
}

static unsigned char *read_file(const char *path, size_t *n) {
  *n = 0;
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *b = malloc((size_t)len + 1);
  *n = fread(b, 1, (size_t)len, f);
  fclose(f);
  return b;
}

/* a JPEG of w x h pixels in pixel format pf; app1: an extra APP1 segment (with its marker) put after SOI */
static void jpeg_bytes(const uint8_t *px, int w, int h, int pf, int quality, unsigned char **out, unsigned long *n) {
  tjhandle t = tjInitCompress();
  ck_assert_ptr_nonnull(t);
  *out = NULL;
  *n = 0;
  int sub = pf == TJPF_GRAY ? TJSAMP_GRAY : TJSAMP_444;
  ck_assert_msg(!tjCompress2(t, px, w, 0, h, pf, out, n, sub, quality, 0), "tjCompress2: %s", tjGetErrorStr2(t));
  tjDestroy(t);
}

static void write_jpeg(const char *path, const uint8_t *px, int w, int h, int pf, const unsigned char *app1, size_t app1n) {
  unsigned char *j;
  unsigned long n;
  jpeg_bytes(px, w, h, pf, 95, &j, &n);
  FILE *f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  fwrite(j, 1, 2, f);
  if (app1) fwrite(app1, 1, app1n, f);
  fwrite(j + 2, 1, n - 2, f);
  fclose(f);
  tjFree(j);
}

/* the EXIF APP1 segment with one Orientation entry, big- or little-endian TIFF */
static size_t exif_app1(unsigned char *b, int orientation, int little) {
  static const unsigned char be[] = {0xFF, 0xE1, 0x00, 0x22, 'E', 'x', 'i', 'f', 0, 0, 'M', 'M', 0, 42, 0, 0, 0, 8,
                                     0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0};
  static const unsigned char le[] = {0xFF, 0xE1, 0x00, 0x22, 'E', 'x', 'i', 'f', 0, 0, 'I', 'I', 42, 0, 8, 0, 0, 0,
                                     1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  memcpy(b, little ? le : be, sizeof be);
  if (little) b[28] = (unsigned char)orientation;
  else b[29] = (unsigned char)orientation;
  return sizeof be;
}

/* a PNG from packed rows (depth 16: big-endian samples) */
static void write_png(const char *path, int w, int h, int ct, int depth, const uint8_t *data, const png_color *pal,
                      int npal, int interlace) {
  FILE *f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  png_structp p = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
  png_infop info = png_create_info_struct(p);
  ck_assert(p && info);
  ck_assert(!setjmp(png_jmpbuf(p)));
  png_init_io(p, f);
  png_set_IHDR(p, info, (png_uint_32)w, (png_uint_32)h, depth, ct, interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  if (pal) png_set_PLTE(p, info, pal, npal);
  png_write_info(p, info);
  int ch = ct == PNG_COLOR_TYPE_RGB ? 3 : ct == PNG_COLOR_TYPE_RGBA ? 4 : ct == PNG_COLOR_TYPE_GRAY_ALPHA ? 2 : 1;
  size_t rowbytes = ((size_t)w * ch * depth + 7) / 8;
  png_bytep *rows = malloc(sizeof(png_bytep) * (size_t)h);
  for (int y = 0; y < h; y++) rows[y] = (png_bytep)data + (size_t)y * rowbytes;
  png_write_image(p, rows);
  png_write_end(p, NULL);
  png_destroy_write_struct(&p, &info);
  free(rows);
  fclose(f);
}

static void write_solid_jpeg(const char *path, int w, int h, int r, int g, int b) {
  uint8_t *px = malloc((size_t)w * h * 3);
  for (int i = 0; i < w * h; i++) px[3 * i] = (uint8_t)r, px[3 * i + 1] = (uint8_t)g, px[3 * i + 2] = (uint8_t)b;
  write_jpeg(path, px, w, h, TJPF_RGB, NULL, 0);
  free(px);
}

static void write_solid_png(const char *path, int w, int h, int r, int g, int b) {
  uint8_t *px = malloc((size_t)w * h * 3);
  for (int i = 0; i < w * h; i++) px[3 * i] = (uint8_t)r, px[3 * i + 1] = (uint8_t)g, px[3 * i + 2] = (uint8_t)b;
  write_png(path, w, h, PNG_COLOR_TYPE_RGB, 8, px, NULL, 0, 0);
  free(px);
}

/* the mean of channel ch of a 3 x H x W u8 tensor, over the pixels [y0, y1) x [x0, x1) */
static double mean_px(vr_tensor *t, int ch, int y0, int y1, int x0, int x1) {
  const uint8_t *p = vr_tensor_data(t);
  int64_t H = vr_tensor_size(t, 1), W = vr_tensor_size(t, 2);
  double s = 0;
  for (int y = y0; y < y1; y++)
    for (int x = x0; x < x1; x++) s += p[(ch * H + y) * W + x];
  return s / ((y1 - y0) * (x1 - x0));
}

#define NEAR(a, b, tol, what) ck_assert_msg(fabs((double)(a) - (double)(b)) <= (tol), "%s: %g, expected %g", what, (double)(a), (double)(b))

static void check_solid(vr_tensor *t, int r, int g, int b, double tol, const char *what) {
  int64_t H = vr_tensor_size(t, 1), W = vr_tensor_size(t, 2);
  NEAR(mean_px(t, 0, 0, (int)H, 0, (int)W), r, tol, what);
  NEAR(mean_px(t, 1, 0, (int)H, 0, (int)W), g, tol, what);
  NEAR(mean_px(t, 2, 0, (int)H, 0, (int)W), b, tol, what);
}

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

/* the bad files of the folder tests: writes them into dir; returns how many */
static int write_bad_files(const char *dir) {
  char p[600];
  snprintf(p, sizeof p, "%s/zero.jpg", dir);
  write_file(p, "", 0);
  snprintf(p, sizeof p, "%s/notes.txt", dir);
  write_file(p, "not an image\n", 13);
  /* truncated JPEG: the first half of a valid one */
  uint8_t px[48 * 40 * 3];
  for (int i = 0; i < 48 * 40 * 3; i++) px[i] = (uint8_t)(i * 7);
  unsigned char *j;
  unsigned long n;
  jpeg_bytes(px, 48, 40, TJPF_RGB, 90, &j, &n);
  snprintf(p, sizeof p, "%s/truncated.jpg", dir);
  write_file(p, j, n / 2);
  /* corrupt: JPEG magic, then garbage */
  unsigned char junk[600];
  for (int i = 0; i < 600; i++) junk[i] = (unsigned char)(i * 131 + 7);
  junk[0] = 0xFF, junk[1] = 0xD8, junk[2] = 0xFF, junk[3] = 0xDB;
  snprintf(p, sizeof p, "%s/corrupt.jpg", dir);
  write_file(p, junk, sizeof junk);
  /* 30000 x 30000 declared in the frame header of a small JPEG */
  unsigned char *big = malloc(n);
  memcpy(big, j, n);
  for (unsigned long k = 2; k + 9 < n; k++)
    if (big[k] == 0xFF && big[k + 1] == 0xC0) {
      big[k + 5] = 30000 >> 8, big[k + 6] = 30000 & 255, big[k + 7] = 30000 >> 8, big[k + 8] = 30000 & 255;
      break;
    }
  snprintf(p, sizeof p, "%s/huge.jpg", dir);
  write_file(p, big, n);
  free(big);
  tjFree(j);
  /* 1 x 1 PNG */
  uint8_t one[3] = {1, 2, 3};
  snprintf(p, sizeof p, "%s/tiny.png", dir);
  write_png(p, 1, 1, PNG_COLOR_TYPE_RGB, 8, one, NULL, 0, 0);
  /* decompression bomb: a 16 x 16 PNG whose IHDR (with a valid CRC) declares 16000 x 16000 */
  uint8_t sq[16 * 16 * 3] = {0};
  snprintf(p, sizeof p, "%s/bomb.png", dir);
  write_png(p, 16, 16, PNG_COLOR_TYPE_RGB, 8, sq, NULL, 0, 0);
  size_t bn;
  unsigned char *b = read_file(p, &bn);
  b[16] = 0, b[17] = 0, b[18] = 16000 >> 8, b[19] = 16000 & 255;
  b[20] = 0, b[21] = 0, b[22] = 16000 >> 8, b[23] = 16000 & 255;
  uLong crc = crc32(0, b + 12, 17);
  b[29] = (unsigned char)(crc >> 24), b[30] = (unsigned char)(crc >> 16), b[31] = (unsigned char)(crc >> 8), b[32] = (unsigned char)crc;
  write_file(p, b, bn);
  free(b);
  /* truncated PNG */
  write_solid_png(tu_in_dir("whole.png"), 40, 40, 5, 5, 5);
  b = read_file(tu_in_dir("whole.png"), &bn);
  snprintf(p, sizeof p, "%s/cut.png", dir);
  write_file(p, b, bn - 30);
  free(b);
  unlink(tu_in_dir("whole.png"));
  return 8;
}

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
VR_TEST_MAIN(images_suite)
