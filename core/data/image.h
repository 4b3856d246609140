/* image.h: what the image decoder (image_decode.c), the file sets (image_folder.c) and the packer
 * (image_pack.c) share. Not public: core/visreg.h has the vr_image_* API. */
#ifndef VISREG_IMAGE_H
#define VISREG_IMAGE_H
#include "data.h"
#include <stddef.h>
#include <stdint.h>

/* the bounds a file's declared size must meet before anything is allocated for it */
#define VR_IMG_MIN_SIDE 8                 /* smaller images are skipped (icons, 1 x 1 trackers) */
#define VR_IMG_MAX_SIDE 16384             /* either side */
#define VR_IMG_MAX_PIXELS (1ll << 26)     /* 64 Mpx decoded (after JPEG's DCT scaling): 192 MiB as RGB */
#define VR_IMG_MAX_FILE (512ll << 20)     /* bytes in one file */
#define VR_IMG_MAX_SIZE 4096              /* the stored side (size) */
#define VR_IMG_MAX_CLASSES 100000         /* labels in a list (as the probes accept): a class table each */

/* a decoded image: h x w x c interleaved (c 1 or 3), orientation applied */
typedef struct vr_img {
  uint8_t *px;
  int w, h, c;
  size_t cap;
} vr_img;

/* per-thread decoder state (a TurboJPEG handle, reused buffers) */
typedef struct vr_img_decoder vr_img_decoder;
vr_img_decoder *vr_img_decoder_new(void);
void vr_img_decoder_free(vr_img_decoder *d);

/* Decodes a JPEG or PNG held in memory; target_short > 0 lets JPEG decode at a DCT-domain reduced
 * scale whose short side stays >= target_short. Returns 0, or -1 with why (one line) filled.
 * *grey: 1 when the file stores a single grey channel. The image lives in the decoder until the
 * next call. */
int vr_img_decode(vr_img_decoder *d, const unsigned char *buf, size_t len, int target_short, const vr_img **out,
                  int *grey, char *why, size_t whylen);
/* reads and decodes a file (the same checks, plus empty, unreadable and oversized files) */
int vr_img_decode_file(vr_img_decoder *d, const char *path, int target_short, const vr_img **out, int *grey, char *why,
                       size_t whylen);
/* the short side resized to size (area averaging when shrinking, bilinear when enlarging), then
 * the centre size x size crop, as planar 3 x size x size u8 (grey expanded) */
void vr_img_fit(const vr_img *im, int size, uint8_t *out);
/* file -> 3 x size x size; 0 or -1 with why */
int vr_img_load_fit(vr_img_decoder *d, const char *path, int size, uint8_t *out, int *grey, char *why, size_t whylen);

/* FNV-1a 64 */
static inline uint64_t vr_fnv1a(uint64_t h, const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
  return h;
}
#define VR_FNV_INIT 14695981039346656037ull

struct vr_image_set {
  char *root;          /* as given, no trailing slash */
  int64_t n, cap;
  char **paths;        /* relative to root */
  int64_t *labels;
  int64_t *sizes;      /* bytes, from stat */
  int64_t *mtimes;     /* ns */
  int num_classes;
  char **class_names;
};
#endif
