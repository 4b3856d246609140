/* image_decode.c: JPEG (TurboJPEG) and PNG (libpng) files to RGB pixels, and the short-side resize
 * with centre crop that the packer stores.
 *
 * Every file is checked before anything is allocated for its pixels: the declared width and height
 * (read from the JPEG frame header or the PNG IHDR) must lie in [VR_IMG_MIN_SIDE, VR_IMG_MAX_SIDE]
 * and their product (after JPEG's DCT scaling) under VR_IMG_MAX_PIXELS, computed in 64 bits; so a
 * decompression bomb (a small file declaring a huge image) is refused from its header. A failure
 * is one line in `why`, never an exit.
 *
 * JPEG: grey stays one channel, YCbCr/RGB come out RGB, CMYK/YCCK are decoded as CMYK and turned
 * into RGB (inverted Adobe CMYK when the file has an Adobe APP14 marker, as Photoshop writes and
 * libjpeg writes for every CMYK file: R = C K / 255; plain CMYK otherwise: R = (255-C)(255-K)/255).
 * The EXIF Orientation tag (APP1 "Exif", TIFF IFD0 tag 0x0112) is read here and applied. When the
 * stored image is much larger than the target, the decoder's DCT-domain scaling (1/8 .. 7/8) picks
 * the smallest scale whose short side is still >= the target, and the area filter does the rest.
 * libjpeg's warnings (extraneous bytes, corrupt entropy data that still decodes) are accepted, as
 * other decoders do; "premature end of data" (a truncated file) is not.
 *
 * PNG: 1/2/4/8/16-bit grey, grey+alpha, RGB, RGBA and palette; 16-bit scaled to 8 with rounding,
 * palette and low-bit grey expanded, alpha (and tRNS) dropped: the stored colour is kept as is. */
#include "image.h"
#include <errno.h>
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <turbojpeg.h>

struct vr_img_decoder {
  tjhandle tj;
  vr_img img, tmp;      /* decoded image; orientation / CMYK scratch */
  unsigned char *file;  /* file bytes */
  size_t file_cap;
};

vr_img_decoder *vr_img_decoder_new(void) {
  vr_img_decoder *d = calloc(1, sizeof *d);
  if (!d) return NULL;
  d->tj = tjInitDecompress();
  if (!d->tj) {
    free(d);
    return NULL;
  }
  return d;
}

void vr_img_decoder_free(vr_img_decoder *d) {
  if (!d) return;
  if (d->tj) tjDestroy(d->tj);
  free(d->img.px);
  free(d->tmp.px);
  free(d->file);
  free(d);
}

static int fail(char *why, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *why, size_t n, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, n, fmt, ap);
  va_end(ap);
  return -1;
}

/* bytes for w x h x c, 0 when over the limits (64-bit arithmetic: sides are < 2^31) */
static int check_dims(int64_t w, int64_t h, char *why, size_t n) {
  if (w < VR_IMG_MIN_SIDE || h < VR_IMG_MIN_SIDE)
    return fail(why, n, "image is %lld x %lld pixels, smaller than %d on a side", (long long)w, (long long)h,
                VR_IMG_MIN_SIDE);
  if (w > VR_IMG_MAX_SIDE || h > VR_IMG_MAX_SIDE)
    return fail(why, n, "image is %lld x %lld pixels, more than %d on a side", (long long)w, (long long)h,
                VR_IMG_MAX_SIDE);
  return 0;
}

static int img_reserve(vr_img *im, int w, int h, int c, char *why, size_t n) {
  int64_t px = (int64_t)w * h;
  if (px > VR_IMG_MAX_PIXELS)
    return fail(why, n, "image is %d x %d pixels (%lld Mpx decoded), more than the %lld Mpx limit (a decompression bomb?)",
                w, h, (long long)(px >> 20), (long long)(VR_IMG_MAX_PIXELS >> 20));
  size_t need = (size_t)px * (size_t)c;
  if (need > im->cap) {
    uint8_t *p = realloc(im->px, need);
    if (!p) return fail(why, n, "out of memory for %d x %d x %d pixels", w, h, c);
    im->px = p;
    im->cap = need;
  }
  im->w = w;
  im->h = h;
  im->c = c;
  return 0;
}

/* ---------------------------------------------------------------- JPEG markers */

static unsigned rd16(const unsigned char *p, int le) { return le ? p[0] | p[1] << 8 : p[0] << 8 | p[1]; }
static uint32_t rd32(const unsigned char *p, int le) {
  return le ? (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24
            : (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* the Orientation tag (1..8) of an "Exif\0\0" APP1 payload, 1 when absent or malformed */
static int exif_orientation(const unsigned char *p, size_t n) {
  if (n < 14 || memcmp(p, "Exif\0\0", 6)) return 1;
  const unsigned char *t = p + 6;
  size_t tn = n - 6;
  int le;
  if (!memcmp(t, "II*\0", 4)) le = 1;
  else if (!memcmp(t, "MM\0*", 4)) le = 0;
  else return 1;
  uint32_t ifd = rd32(t + 4, le);
  if (ifd > tn || tn - ifd < 2) return 1;
  unsigned count = rd16(t + ifd, le);
  for (unsigned k = 0; k < count; k++) {
    size_t e = (size_t)ifd + 2 + 12 * (size_t)k;
    if (e + 12 > tn) return 1;
    if (rd16(t + e, le) == 0x0112) {
      unsigned type = rd16(t + e + 2, le);
      unsigned v = type == 3 ? rd16(t + e + 8, le) : type == 4 ? rd32(t + e + 8, le) : 1;
      return v >= 1 && v <= 8 ? (int)v : 1;
    }
  }
  return 1;
}

/* walks the markers before the first scan: EXIF orientation and the Adobe APP14 marker */
static void jpeg_markers(const unsigned char *b, size_t n, int *orientation, int *adobe) {
  *orientation = 1;
  *adobe = 0;
  size_t i = 2;
  while (i + 4 <= n) {
    if (b[i] != 0xFF) return;
    unsigned m = b[i + 1];
    if (m == 0xFF) {
      i++;
      continue;
    }
    if (m == 0xD8 || (m >= 0xD0 && m <= 0xD7) || m == 0x01) {
      i += 2;
      continue;
    }
    if (m == 0xDA || m == 0xD9) return; /* start of scan, end of image */
    size_t len = rd16(b + i + 2, 0);
    if (len < 2 || i + 2 + len > n) return;
    const unsigned char *p = b + i + 4;
    size_t pn = len - 2;
    if (m == 0xE1 && *orientation == 1) *orientation = exif_orientation(p, pn);
    if (m == 0xEE && pn >= 5 && !memcmp(p, "Adobe", 5)) *adobe = 1;
    i += 2 + len;
  }
}

/* im (w x h) -> out in display orientation (EXIF 2..8) */
static int orient(const vr_img *im, int o, vr_img *out, char *why, size_t wn) {
  int w = im->w, h = im->h, c = im->c, swap = o >= 5;
  if (img_reserve(out, swap ? h : w, swap ? w : h, c, why, wn)) return -1;
  int W = out->w, H = out->h;
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++) {
      int sx, sy;
      switch (o) {
      case 2: sx = w - 1 - x; sy = y; break;
      case 3: sx = w - 1 - x; sy = h - 1 - y; break;
      case 4: sx = x; sy = h - 1 - y; break;
      case 5: sx = y; sy = x; break;
      case 6: sx = y; sy = h - 1 - x; break;
      case 7: sx = w - 1 - y; sy = h - 1 - x; break;
      case 8: sx = w - 1 - y; sy = x; break;
      default: sx = x; sy = y; break;
      }
      memcpy(out->px + ((size_t)y * W + x) * c, im->px + ((size_t)sy * w + sx) * c, (size_t)c);
    }
  return 0;
}

static void swap_img(vr_img *a, vr_img *b) {
  vr_img t = *a;
  *a = *b;
  *b = t;
}

static int decode_jpeg(vr_img_decoder *d, const unsigned char *buf, size_t len, int target, int *grey, char *why,
                       size_t wn) {
  int w, h, sub, cs;
  if (len > 0xFFFFFFFFul) return fail(why, wn, "JPEG file too large");
  if (tjDecompressHeader3(d->tj, buf, (unsigned long)len, &w, &h, &sub, &cs))
    return fail(why, wn, "not a readable JPEG: %s", tjGetErrorStr2(d->tj));
  if (check_dims(w, h, why, wn)) return -1;
  /* the smallest DCT scale (<= 1) whose short side still reaches the target */
  int nsf = 0, sw = w, sh = h;
  tjscalingfactor *sf = tjGetScalingFactors(&nsf);
  if (target > 0 && sf) {
    int best = -1;
    for (int k = 0; k < nsf; k++) {
      if (sf[k].num > sf[k].denom) continue;
      int a = TJSCALED(w, sf[k]), b = TJSCALED(h, sf[k]);
      int s = a < b ? a : b;
      if (s < target) continue;
      if (best < 0 || (int64_t)a * b < (int64_t)sw * sh) {
        best = k;
        sw = a;
        sh = b;
      }
    }
  }
  int cmyk = cs == TJCS_CMYK || cs == TJCS_YCCK;
  int c = cs == TJCS_GRAY ? 1 : cmyk ? 4 : 3;
  int pf = c == 1 ? TJPF_GRAY : cmyk ? TJPF_CMYK : TJPF_RGB;
  vr_img *dst = cmyk ? &d->tmp : &d->img;
  if (img_reserve(dst, sw, sh, c, why, wn)) return -1;
  if (tjDecompress2(d->tj, buf, (unsigned long)len, dst->px, sw, 0, sh, pf, TJFLAG_LIMITSCANS)) {
    const char *msg = tjGetErrorStr2(d->tj);
    int warning = tjGetErrorCode(d->tj) == TJERR_WARNING;
    if (!warning) return fail(why, wn, "corrupt JPEG: %s", msg);
    if (strcasestr(msg, "premature end")) return fail(why, wn, "truncated JPEG: %s", msg);
    tjDestroy(d->tj); /* accepted with a warning: a fresh handle for the next file */
    d->tj = tjInitDecompress();
  }
  int o, adobe;
  jpeg_markers(buf, len, &o, &adobe);
  if (cmyk) {
    if (img_reserve(&d->img, sw, sh, 3, why, wn)) return -1;
    const uint8_t *s = d->tmp.px;
    uint8_t *p = d->img.px;
    for (size_t i = 0, n = (size_t)sw * sh; i < n; i++, s += 4, p += 3) {
      unsigned C = s[0], M = s[1], Y = s[2], K = s[3];
      if (!adobe) C = 255 - C, M = 255 - M, Y = 255 - Y, K = 255 - K;
      p[0] = (uint8_t)((C * K + 127) / 255);
      p[1] = (uint8_t)((M * K + 127) / 255);
      p[2] = (uint8_t)((Y * K + 127) / 255);
    }
  }
  *grey = c == 1;
  if (o != 1) {
    if (orient(&d->img, o, &d->tmp, why, wn)) return -1;
    swap_img(&d->img, &d->tmp);
  }
  return 0;
}

/* ---------------------------------------------------------------- PNG */

typedef struct png_src {
  const unsigned char *p;
  size_t n, at;
  char *why;
  size_t wn;
  jmp_buf jb;
} png_src;

static void png_read_mem(png_structp png, png_bytep out, png_size_t n) {
  png_src *s = png_get_io_ptr(png);
  if (n > s->n - s->at) png_error(png, "file ends early (truncated PNG)");
  memcpy(out, s->p + s->at, n);
  s->at += n;
}
static void png_err(png_structp png, png_const_charp msg) {
  png_src *s = png_get_error_ptr(png);
  snprintf(s->why, s->wn, "corrupt PNG: %s", msg);
  longjmp(s->jb, 1);
}
static void png_warn(png_structp png, png_const_charp msg) {}

static int decode_png(vr_img_decoder *d, const unsigned char *buf, size_t len, int *grey, char *why, size_t wn) {
  /* IHDR must come first: check the declared size before libpng allocates anything for it */
  if (len < 33 || memcmp(buf + 12, "IHDR", 4)) return fail(why, wn, "truncated PNG: no IHDR chunk");
  int64_t w = rd32(buf + 16, 0), h = rd32(buf + 20, 0);
  if (check_dims(w, h, why, wn)) return -1;
  if (w * h > VR_IMG_MAX_PIXELS)
    return fail(why, wn, "image is %lld x %lld pixels (%lld Mpx decoded), more than the %lld Mpx limit (a decompression bomb?)",
                (long long)w, (long long)h, (long long)((w * h) >> 20), (long long)(VR_IMG_MAX_PIXELS >> 20));
  png_src src = {.p = buf, .n = len, .at = 0, .why = why, .wn = wn};
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, png_err, png_warn);
  if (!png) return fail(why, wn, "out of memory for the PNG decoder");
  png_infop info = png_create_info_struct(png);
  png_bytep *volatile rows = NULL;
  if (!info) {
    png_destroy_read_struct(&png, NULL, NULL);
    return fail(why, wn, "out of memory for the PNG decoder");
  }
  if (setjmp(src.jb)) {
    png_destroy_read_struct(&png, &info, NULL);
    free(rows);
    return -1;
  }
  png_set_user_limits(png, VR_IMG_MAX_SIDE, VR_IMG_MAX_SIDE);
  png_set_chunk_malloc_max(png, 64 << 20);
  png_set_read_fn(png, &src, png_read_mem);
  png_read_info(png, info);
  png_uint_32 pw, ph;
  int depth, ct, il;
  png_get_IHDR(png, info, &pw, &ph, &depth, &ct, &il, NULL, NULL);
  int g = ct == PNG_COLOR_TYPE_GRAY || ct == PNG_COLOR_TYPE_GRAY_ALPHA;
  if (ct == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (ct == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  if (depth == 16) png_set_scale_16(png);
  if (ct & PNG_COLOR_MASK_ALPHA) png_set_strip_alpha(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  int c = png_get_channels(png, info);
  if ((c != 1 && c != 3) || png_get_rowbytes(png, info) != (size_t)pw * c) png_error(png, "unexpected pixel layout");
  if (img_reserve(&d->img, (int)pw, (int)ph, c, why, wn)) {
    png_destroy_read_struct(&png, &info, NULL);
    return -1;
  }
  rows = malloc(sizeof(png_bytep) * ph);
  if (!rows) png_error(png, "out of memory for row pointers");
  for (png_uint_32 y = 0; y < ph; y++) rows[y] = d->img.px + (size_t)y * pw * c;
  png_read_image(png, rows);
  png_read_end(png, NULL);
  png_destroy_read_struct(&png, &info, NULL);
  free(rows);
  *grey = g;
  return 0;
}

/* ---------------------------------------------------------------- entry points */

int vr_img_decode(vr_img_decoder *d, const unsigned char *buf, size_t len, int target_short, const vr_img **out,
                  int *grey, char *why, size_t whylen) {
  *out = NULL;
  *grey = 0;
  if (!d->tj && !(d->tj = tjInitDecompress())) return fail(why, whylen, "out of memory for the JPEG decoder");
  if (len == 0) return fail(why, whylen, "empty file (0 bytes)");
  int r;
  if (len >= 3 && buf[0] == 0xFF && buf[1] == 0xD8 && buf[2] == 0xFF) {
    r = decode_jpeg(d, buf, len, target_short, grey, why, whylen);
    /* a failed decode can leave the handle in a state that changes how the next file reads: a
     * fresh one keeps every file's result independent of the files before it */
    if (r) {
      tjDestroy(d->tj);
      d->tj = tjInitDecompress(); /* NULL (out of memory): retried, and reported, on the next call */
    }
  }
  else if (len >= 8 && !memcmp(buf, "\x89PNG\r\n\x1a\n", 8))
    r = decode_png(d, buf, len, grey, why, whylen);
  else
    return fail(why, whylen, "not a JPEG or PNG file (starts with %02x %02x %02x %02x)", buf[0], len > 1 ? buf[1] : 0,
                len > 2 ? buf[2] : 0, len > 3 ? buf[3] : 0);
  if (r) return r;
  *out = &d->img;
  return 0;
}

int vr_img_decode_file(vr_img_decoder *d, const char *path, int target_short, const vr_img **out, int *grey, char *why,
                       size_t whylen) {
  *out = NULL;
  FILE *f = fopen(path, "rb");
  if (!f) return fail(why, whylen, "cannot open: %s", strerror(errno));
  struct stat st;
  if (fstat(fileno(f), &st) || !S_ISREG(st.st_mode)) {
    fclose(f);
    return fail(why, whylen, "not a regular file");
  }
  if (st.st_size > VR_IMG_MAX_FILE) {
    fclose(f);
    return fail(why, whylen, "file of %lld bytes, more than the %lld MiB limit", (long long)st.st_size,
                (long long)(VR_IMG_MAX_FILE >> 20));
  }
  size_t n = (size_t)st.st_size;
  if (n + 1 > d->file_cap) {
    unsigned char *p = realloc(d->file, n + 1);
    if (!p) {
      fclose(f);
      return fail(why, whylen, "out of memory for %zu file bytes", n);
    }
    d->file = p;
    d->file_cap = n + 1;
  }
  size_t got = fread(d->file, 1, n, f);
  int err = ferror(f);
  fclose(f);
  if (err) return fail(why, whylen, "read error");
  return vr_img_decode(d, d->file, got, target_short, out, grey, why, whylen);
}

/* ---------------------------------------------------------------- resize and crop */

/* one output sample's taps: source indices first..first+n-1 with weights w[] (summing to 1) */
typedef struct taps {
  int *first, *n;
  float *w;
  int maxn;
} taps;

/* the out samples of an axis of src_len source pixels: output i covers source [start + i/s, start + (i+1)/s)
 * (s = scale); area weights when s < 1, bilinear (pixel centres) when s >= 1 */
static int make_taps(int src_len, double s, double start, int out, taps *t) {
  int maxn = s < 1 ? (int)ceil(1 / s) + 2 : 2;
  t->maxn = maxn;
  t->first = malloc(sizeof(int) * (size_t)out);
  t->n = malloc(sizeof(int) * (size_t)out);
  t->w = calloc((size_t)out * (size_t)maxn, sizeof(float));
  if (!t->first || !t->n || !t->w) return -1;
  for (int i = 0; i < out; i++) {
    float *w = t->w + (size_t)i * maxn;
    if (s < 1) {
      double a = start + i / s, b = start + (i + 1) / s;
      if (a < 0) a = 0;
      if (b > src_len) b = src_len;
      int j0 = (int)floor(a), j1 = (int)ceil(b);
      if (j1 > src_len) j1 = src_len;
      if (j1 <= j0) j1 = j0 + 1;
      if (j1 - j0 > maxn) j1 = j0 + maxn;
      double sum = 0;
      for (int j = j0; j < j1; j++) {
        double lo = a > j ? a : j, hi = b < j + 1 ? b : j + 1;
        double v = hi > lo ? hi - lo : 0;
        w[j - j0] = (float)v;
        sum += v;
      }
      for (int j = j0; j < j1; j++) w[j - j0] = sum > 0 ? (float)(w[j - j0] / sum) : 1.0f / (j1 - j0);
      t->first[i] = j0;
      t->n[i] = j1 - j0;
    } else {
      double x = start + (i + 0.5) / s - 0.5;
      int j0 = (int)floor(x);
      double f = x - j0;
      int a = j0 < 0 ? 0 : j0 > src_len - 1 ? src_len - 1 : j0;
      int b = j0 + 1 < 0 ? 0 : j0 + 1 > src_len - 1 ? src_len - 1 : j0 + 1;
      if (a == b || f == 0) {
        t->first[i] = a;
        t->n[i] = 1;
        w[0] = 1;
      } else {
        t->first[i] = a;
        t->n[i] = 2;
        w[0] = (float)(1 - f);
        w[1] = (float)f;
      }
    }
  }
  return 0;
}

static void free_taps(taps *t) {
  free(t->first);
  free(t->n);
  free(t->w);
}

void vr_img_fit(const vr_img *im, int size, uint8_t *out) {
  int w = im->w, h = im->h, c = im->c;
  int shortside = w < h ? w : h;
  double s = (double)size / shortside;
  /* the crop window in source pixels: size / s wide, centred */
  double span = size / s;
  double x0 = (w - span) / 2, y0 = (h - span) / 2;
  taps tx = {0}, ty = {0};
  float *rows = NULL;
  int ok = !make_taps(w, s, x0, size, &tx) && !make_taps(h, s, y0, size, &ty);
  /* source rows the crop reads */
  int r0 = h, r1 = 0;
  for (int i = 0; ok && i < size; i++) {
    if (ty.first[i] < r0) r0 = ty.first[i];
    if (ty.first[i] + ty.n[i] > r1) r1 = ty.first[i] + ty.n[i];
  }
  if (ok) rows = malloc(sizeof(float) * (size_t)(r1 - r0) * (size_t)size * (size_t)c);
  if (!ok || !rows) { /* out of memory for a few KiB: a grey image rather than a crash */
    memset(out, 128, (size_t)3 * size * size);
    free_taps(&tx);
    free_taps(&ty);
    free(rows);
    return;
  }
  /* horizontal pass over the rows in use */
  for (int y = r0; y < r1; y++) {
    const uint8_t *src = im->px + (size_t)y * w * c;
    float *dst = rows + (size_t)(y - r0) * size * c;
    for (int i = 0; i < size; i++) {
      const float *wt = tx.w + (size_t)i * tx.maxn;
      const uint8_t *p = src + (size_t)tx.first[i] * c;
      if (c == 3) {
        float a = 0, b = 0, g = 0;
        for (int k = 0; k < tx.n[i]; k++, p += 3) {
          a += wt[k] * p[0];
          b += wt[k] * p[1];
          g += wt[k] * p[2];
        }
        dst[3 * i] = a;
        dst[3 * i + 1] = b;
        dst[3 * i + 2] = g;
      } else {
        float a = 0;
        for (int k = 0; k < tx.n[i]; k++) a += wt[k] * p[k];
        dst[i] = a;
      }
    }
  }
  /* vertical pass into planar 3 x size x size */
  size_t plane = (size_t)size * size;
  for (int j = 0; j < size; j++) {
    const float *wt = ty.w + (size_t)j * ty.maxn;
    for (int i = 0; i < size; i++)
      for (int ch = 0; ch < c; ch++) {
        float a = 0;
        for (int k = 0; k < ty.n[j]; k++) a += wt[k] * rows[((size_t)(ty.first[j] + k - r0) * size + i) * c + ch];
        long v = lrintf(a);
        uint8_t u = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        if (c == 3) out[ch * plane + (size_t)j * size + i] = u;
        else out[(size_t)j * size + i] = out[plane + (size_t)j * size + i] = out[2 * plane + (size_t)j * size + i] = u;
      }
  }
  free(rows);
  free_taps(&tx);
  free_taps(&ty);
}

int vr_img_load_fit(vr_img_decoder *d, const char *path, int size, uint8_t *out, int *grey, char *why, size_t whylen) {
  const vr_img *im;
  if (vr_img_decode_file(d, path, size, &im, grey, why, whylen)) return -1;
  vr_img_fit(im, size, out);
  return 0;
}

/* ---------------------------------------------------------------- public */

vr_status vr_image_load(const char *path, int size, vr_tensor **out) {
  VR_CHECK_OUT(out);
  *out = NULL;
  if (!path) return VR_FAIL(VR_E_ARG, "path: expected a file name, got NULL");
  if (size < 0 || size > VR_IMG_MAX_SIZE) return VR_FAIL(VR_E_ARG, "size: expected 0..%d, got %d", VR_IMG_MAX_SIZE, size);
  vr_img_decoder *d = vr_img_decoder_new();
  if (!d) return VR_FAIL(VR_E_OOM, "out of host memory for the image decoder");
  char why[512];
  const vr_img *im;
  int grey;
  vr_status st = VR_OK;
  if (vr_img_decode_file(d, path, size, &im, &grey, why, sizeof why)) {
    st = VR_FAIL(VR_E_FORMAT, "path: '%s': %s", path, why);
    goto done;
  }
  int h = size ? size : im->h, w = size ? size : im->w;
  int64_t shape[3] = {3, h, w};
  VR_TRYG(vr_tensor_alloc(3, shape, VR_U8, VR_CPU, out));
  uint8_t *o = vr_data(*out);
  if (size) vr_img_fit(im, size, o);
  else {
    size_t plane = (size_t)h * w;
    for (size_t i = 0; i < plane; i++)
      for (int ch = 0; ch < 3; ch++) o[ch * plane + i] = im->px[i * im->c + (im->c == 3 ? ch : 0)];
  }
done:
  vr_img_decoder_free(d);
  return st;
}
