/* augment.c (CPU): the image augmentations of a vr_pipeline, one image at a time, and the
 * VR_OP_AUGMENT kernel that runs a pipeline over a batch (one image per OpenMP iteration).
 *
 * Randomness: step s of the pipeline draws its k-th uniform from Philox with key seed,
 * stream (epoch << 32 | view) and counter (sample << 32 | s << 24 | k), so a view depends only on
 * (seed, epoch, sample, view) and never on the thread that makes it. The geometry follows
 * torchvision (RandomResizedCrop, RandomErasing, ColorJitter) on float images in [0, 1]. The draws
 * and per-pixel formulas live in core/data/aug_math.h, shared with kernels/cuda/augment.cu, so the
 * GPU makes the same views. */
#include "cpu.h"
#include "../../core/data/aug_math.h"
#include <math.h>
#include <stdlib.h>

static float *grow(vr_aug_scratch *s, int k, size_t n) {
  if (s->cap[k] < n) {
    float *b = realloc(s->buf[k], n * sizeof(float));
    if (!b) return NULL;
    s->buf[k] = b;
    s->cap[k] = n;
  }
  return s->buf[k];
}

void vr_aug_scratch_free(vr_aug_scratch *s) {
  for (int k = 0; k < 3; k++) {
    free(s->buf[k]);
    s->buf[k] = NULL;
    s->cap[k] = 0;
  }
}

/* bilinear resize of the region (y0, x0, rh, rw) of src (c x h x w) to dst (c x oh x ow) */
static void resize_region(const float *src, int c, int h, int w, int y0, int x0, int rh, int rw, float *dst, int oh,
                          int ow) {
  double sy = (double)rh / oh, sx = (double)rw / ow;
  for (int y = 0; y < oh; y++) {
    vr_aug_tap ty = vr_aug_tap_at(y, sy, rh);
    for (int x = 0; x < ow; x++) {
      vr_aug_tap tx = vr_aug_tap_at(x, sx, rw);
      for (int ch = 0; ch < c; ch++)
        dst[((size_t)ch * oh + y) * ow + x] = vr_aug_bilinear(src + (size_t)ch * h * w, w, y0, x0, ty, tx);
    }
  }
}

static void gray_plane(const float *x, int hw, float *g) {
  for (int i = 0; i < hw; i++) g[i] = vr_aug_gray(x[i], x[hw + i], x[2 * hw + i]);
}

/* ColorJitter: brightness, contrast, saturation, hue in a random order */
static void jitter(const vr_aug_rng *r, const vr_aug_step *st, float *x, int c, int h, int w, float *tmp) {
  int hw = h * w, n = c * hw;
  vr_aug_jitter_plan j;
  vr_aug_jitter_params(r, st, c, &j);
  for (int oi = 0; oi < 4; oi++) {
    int which = j.order[oi];
    if (!j.act[which]) continue;
    float f = j.fac[which];
    if (which == 3) {
      for (int i = 0; i < hw; i++) vr_aug_hue_shift(&x[i], &x[hw + i], &x[2 * hw + i], f);
    } else if (which == 0) {
      for (int i = 0; i < n; i++) x[i] = vr_aug_clamp01(x[i] * f);
    } else if (which == 1) { /* blend with the mean of the grayscale image */
      double m = 0;
      if (c == 3) {
        gray_plane(x, hw, tmp);
        for (int i = 0; i < hw; i++) m += tmp[i];
      } else
        for (int i = 0; i < n; i++) m += x[i];
      float mean = (float)(m / (c == 3 ? hw : n));
      for (int i = 0; i < n; i++) x[i] = vr_aug_clamp01(f * x[i] + (1 - f) * mean);
    } else { /* saturation: blend with the grayscale image */
      gray_plane(x, hw, tmp);
      for (int ch = 0; ch < 3; ch++)
        for (int i = 0; i < hw; i++) x[ch * hw + i] = vr_aug_clamp01(f * x[ch * hw + i] + (1 - f) * tmp[i]);
    }
  }
}

static void blur(double sigma, int ks, float *x, int c, int h, int w, float *tmp) {
  float kern[257];
  int rad = vr_aug_blur_kernel(sigma, ks, kern);
  for (int ch = 0; ch < c; ch++) {
    float *p = x + (size_t)ch * h * w;
    for (int y = 0; y < h; y++) /* horizontal into tmp */
      for (int xx = 0; xx < w; xx++) {
        float a = 0;
        for (int k = -rad; k <= rad; k++) a += kern[k + rad] * p[y * w + vr_aug_reflect(xx + k, w)];
        tmp[y * w + xx] = a;
      }
    for (int y = 0; y < h; y++) /* vertical back into p */
      for (int xx = 0; xx < w; xx++) {
        float a = 0;
        for (int k = -rad; k <= rad; k++) a += kern[k + rad] * tmp[vr_aug_reflect(y + k, h) * w + xx];
        p[y * w + xx] = a;
      }
  }
}

/* torchvision RandomErasing: value fills every channel */
static void erase(const vr_aug_rng *r, const vr_aug_step *st, float *x, int c, int h, int w) {
  int y0, x0, eh, ew;
  if (!vr_aug_erase_params(r, st, h, w, &y0, &x0, &eh, &ew)) return;
  for (int ch = 0; ch < c; ch++)
    for (int y = y0; y < y0 + eh; y++)
      for (int xx = x0; xx < x0 + ew; xx++) x[((size_t)ch * h + y) * w + xx] = (float)st->f[4];
}

vr_status vr_augment_image(const vr_pipeline *p, const void *src, int src_u8, int c, int h, int w, float *dst, int oh,
                           int ow, uint64_t seed, uint64_t epoch, uint64_t sample, uint64_t view, vr_aug_scratch *s) {
  if (oh <= 0) oh = h;
  if (ow <= 0) ow = w;
  /* crops and resizes may grow the image beyond both sizes */
  size_t big = vr_aug_scratch_floats(p->steps, p->n, c, h, w, oh, ow);
  float *cur = grow(s, 0, big), *nxt = grow(s, 1, big), *tmp = grow(s, 2, big);
  if (!cur || !nxt || !tmp) return VR_FAIL(VR_E_OOM, "augment: out of host memory");
  size_t n = (size_t)c * h * w;
  if (src_u8)
    for (size_t i = 0; i < n; i++) cur[i] = ((const uint8_t *)src)[i] * (1.0f / 255.0f);
  else
    memcpy(cur, src, n * sizeof(float));
  vr_aug_rng r = vr_aug_rng_make(seed, epoch, view);
  for (int si = 0; si < p->n; si++) {
    const vr_aug_step *st = &p->steps[si];
    vr_aug_rng_step(&r, sample, si);
    int hw = h * w;
    int on = vr_aug_step_on(&r, st);
    switch (st->kind) {
    case VR_AUG_CROP:
    case VR_AUG_RESIZE: {
      int th, tw;
      vr_aug_step_size(st, oh, ow, &th, &tw);
      int y0 = 0, x0 = 0, ch = h, cw = w;
      if (st->kind == VR_AUG_CROP && on) vr_aug_crop_params(&r, st, h, w, &y0, &x0, &ch, &cw);
      resize_region(cur, c, h, w, y0, x0, ch, cw, nxt, th, tw);
      float *t = cur;
      cur = nxt;
      nxt = t;
      h = th;
      w = tw;
      break;
    }
    case VR_AUG_HFLIP:
      if (on)
        for (int ch = 0; ch < c; ch++)
          for (int y = 0; y < h; y++) {
            float *row = cur + ((size_t)ch * h + y) * w;
            for (int a = 0, b = w - 1; a < b; a++, b--) {
              float t = row[a];
              row[a] = row[b];
              row[b] = t;
            }
          }
      break;
    case VR_AUG_JITTER:
      if (on) jitter(&r, st, cur, c, h, w, tmp);
      break;
    case VR_AUG_GRAY:
      if (on && c == 3) {
        gray_plane(cur, hw, tmp);
        for (int ch = 0; ch < 3; ch++) memcpy(cur + (size_t)ch * hw, tmp, (size_t)hw * sizeof(float));
      }
      break;
    case VR_AUG_BLUR:
      if (on) blur(vr_aug_uni(&r, 1, st->f[0], st->f[1]), (int)st->f[2], cur, c, h, w, tmp);
      break;
    case VR_AUG_SOLARIZE:
      if (on)
        for (int i = 0; i < c * hw; i++)
          if (cur[i] >= st->f[0]) cur[i] = 1 - cur[i];
      break;
    case VR_AUG_ERASE:
      if (on) erase(&r, st, cur, c, h, w);
      break;
    case VR_AUG_NOISE:
      if (on)
        for (int i = 0; i < c * hw; i++) cur[i] += (float)(st->f[0] * vr_aug_normal(&r, (uint64_t)i));
      break;
    case VR_AUG_NORMALIZE:
      for (int ch = 0; ch < c; ch++) {
        int k = st->n_ch == 1 ? 0 : ch;
        float m = (float)st->mean[k], is = (float)(1.0 / st->std[k]);
        for (int i = 0; i < hw; i++) cur[(size_t)ch * hw + i] = (cur[(size_t)ch * hw + i] - m) * is;
      }
      break;
    }
  }
  if (h != oh || w != ow) resize_region(cur, c, h, w, 0, 0, h, w, dst, oh, ow);
  else memcpy(dst, cur, (size_t)c * h * w * sizeof(float));
  return VR_OK;
}

/* VR_OP_AUGMENT: in[0] images N x C x H x W contiguous (u8 or f32), in[1] NULL or the sample ids
 * (i64 N, contiguous), out[0] f32 N x C x oh x ow contiguous, i[0] seed, i[1] epoch, i[2] sample of
 * image 0 (image k is sample i[2] + k when in[1] is NULL), i[3] view, ctx the vr_pipeline */
static vr_status vr_cpu_augment_fwd(const vr_kernel_args *a) {
  const vr_tensor *x = a->in[0];
  vr_tensor *y = a->out[0];
  const vr_pipeline *p = a->ctx;
  int64_t n = x->shape[0];
  int c = (int)x->shape[1], h = (int)x->shape[2], w = (int)x->shape[3], oh = (int)y->shape[2], ow = (int)y->shape[3];
  int u8 = x->dtype == VR_U8;
  size_t esz = vr_dtype_size(x->dtype), in_sz = (size_t)c * h * w, out_sz = (size_t)c * oh * ow;
  const char *src = vr_data(x);
  const int64_t *ids = a->in[1] ? (const int64_t *)vr_data(a->in[1]) : NULL;
  float *dst = vr_data(y);
  vr_status st = VR_OK;
#pragma omp parallel
  {
    vr_aug_scratch s = {0};
#pragma omp for schedule(dynamic, 4)
    for (int64_t k = 0; k < n; k++) {
      vr_status r = vr_augment_image(p, src + (size_t)k * in_sz * esz, u8, c, h, w, dst + (size_t)k * out_sz, oh, ow,
                                     (uint64_t)a->i[0], (uint64_t)a->i[1], ids ? (uint64_t)ids[k] : (uint64_t)a->i[2] + (uint64_t)k,
                                     (uint64_t)a->i[3], &s);
      if (r) {
#pragma omp critical
        st = r;
      }
    }
    vr_aug_scratch_free(&s);
  }
  return st;
}

void vr_cpu_register_augment(void) { vr_kernel_register(VR_OP_AUGMENT, VR_CPU, vr_cpu_augment_fwd, NULL); }
