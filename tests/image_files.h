/* image_files.h: image files written with TurboJPEG's and libpng's encoders for test_images.c and
 * test_image_folders.c (JPEGs of every kind, EXIF orientations, PNGs of every colour type, solid
 * colours, and the bad files a folder must skip), and the pixel checks they share. */
#ifndef VISREG_IMAGE_FILES_H
#define VISREG_IMAGE_FILES_H
#include "testutil.h"
#include <png.h>
#include <signal.h>
#include <sys/stat.h>
#include <turbojpeg.h>
#include <unistd.h>
#include <zlib.h>

static inline void write_file(const char *path, const void *b, size_t n) {
  FILE *f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  ck_assert_uint_eq(fwrite(b, 1, n, f), n);
  fclose(f);
}

static inline unsigned char *read_file(const char *path, size_t *n) {
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
static inline void jpeg_bytes(const uint8_t *px, int w, int h, int pf, int quality, unsigned char **out, unsigned long *n) {
  tjhandle t = tjInitCompress();
  ck_assert_ptr_nonnull(t);
  *out = NULL;
  *n = 0;
  int sub = pf == TJPF_GRAY ? TJSAMP_GRAY : TJSAMP_444;
  ck_assert_msg(!tjCompress2(t, px, w, 0, h, pf, out, n, sub, quality, 0), "tjCompress2: %s", tjGetErrorStr2(t));
  tjDestroy(t);
}

static inline void write_jpeg(const char *path, const uint8_t *px, int w, int h, int pf, const unsigned char *app1, size_t app1n) {
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
static inline size_t exif_app1(unsigned char *b, int orientation, int little) {
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
static inline void write_png(const char *path, int w, int h, int ct, int depth, const uint8_t *data, const png_color *pal,
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

static inline void write_solid_jpeg(const char *path, int w, int h, int r, int g, int b) {
  uint8_t *px = malloc((size_t)w * h * 3);
  for (int i = 0; i < w * h; i++) px[3 * i] = (uint8_t)r, px[3 * i + 1] = (uint8_t)g, px[3 * i + 2] = (uint8_t)b;
  write_jpeg(path, px, w, h, TJPF_RGB, NULL, 0);
  free(px);
}

static inline void write_solid_png(const char *path, int w, int h, int r, int g, int b) {
  uint8_t *px = malloc((size_t)w * h * 3);
  for (int i = 0; i < w * h; i++) px[3 * i] = (uint8_t)r, px[3 * i + 1] = (uint8_t)g, px[3 * i + 2] = (uint8_t)b;
  write_png(path, w, h, PNG_COLOR_TYPE_RGB, 8, px, NULL, 0, 0);
  free(px);
}

/* the mean of channel ch of a 3 x H x W u8 tensor, over the pixels [y0, y1) x [x0, x1) */
static inline double mean_px(vr_tensor *t, int ch, int y0, int y1, int x0, int x1) {
  const uint8_t *p = vr_tensor_data(t);
  int64_t H = vr_tensor_size(t, 1), W = vr_tensor_size(t, 2);
  double s = 0;
  for (int y = y0; y < y1; y++)
    for (int x = x0; x < x1; x++) s += p[(ch * H + y) * W + x];
  return s / ((y1 - y0) * (x1 - x0));
}

#define NEAR(a, b, tol, what) ck_assert_msg(fabs((double)(a) - (double)(b)) <= (tol), "%s: %g, expected %g", what, (double)(a), (double)(b))

static inline void check_solid(vr_tensor *t, int r, int g, int b, double tol, const char *what) {
  int64_t H = vr_tensor_size(t, 1), W = vr_tensor_size(t, 2);
  NEAR(mean_px(t, 0, 0, (int)H, 0, (int)W), r, tol, what);
  NEAR(mean_px(t, 1, 0, (int)H, 0, (int)W), g, tol, what);
  NEAR(mean_px(t, 2, 0, (int)H, 0, (int)W), b, tol, what);
}

/* the bad files of the folder tests: writes them into dir; returns how many */
static inline int write_bad_files(const char *dir) {
  char p[800];
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
#endif
