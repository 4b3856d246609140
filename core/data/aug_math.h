/* aug_math.h: the arithmetic of one augmentation step that the CPU kernel (kernels/cpu/augment.c)
 * and the CUDA kernel (kernels/cuda/augment.cu) share, so that both devices draw the same random
 * parameters and compute the same pixels: the Philox draws, the torchvision parameter searches
 * (RandomResizedCrop, RandomErasing, ColorJitter order and factors, the blur kernel) and the
 * per-pixel formulas (bilinear sampling, grayscale, HSV). Compiled as C and as CUDA (VR_HD);
 * the CUDA file is built with -fmad=false so its products and sums round as the C build's.
 *
 * Randomness: step s draws its k-th uniform from Philox with key seed, stream
 * (epoch << 32 | view) and counter (sample << 32 | s << 24 | k), so a view depends only on
 * (seed, epoch, sample, view). */
#ifndef VISREG_AUG_MATH_H
#define VISREG_AUG_MATH_H
#include "data.h"
#include "../philox.h"

typedef struct vr_aug_rng {
  uint64_t seed, stream, base;
} vr_aug_rng;

VR_HD vr_aug_rng vr_aug_rng_make(uint64_t seed, uint64_t epoch, uint64_t view) {
  vr_aug_rng r;
  r.seed = seed;
  r.stream = (epoch << 32) | (view & 0xffffffffu);
  r.base = 0;
  return r;
}
/* selects step si of sample */
VR_HD void vr_aug_rng_step(vr_aug_rng *r, uint64_t sample, int si) {
  r->base = (sample << 32) | ((uint64_t)(si & 0xff) << 24);
}

/* the k-th uniform in [0, 1) of the current step */
VR_HD double vr_aug_U(const vr_aug_rng *r, uint64_t k) {
  uint32_t w[4];
  vr_philox_block(r->seed, r->stream, r->base | (k >> 1), w);
  return (k & 1) ? vr_philox_u01(w[2], w[3]) : vr_philox_u01(w[0], w[1]);
}
VR_HD double vr_aug_uni(const vr_aug_rng *r, uint64_t k, double lo, double hi) { return lo + (hi - lo) * vr_aug_U(r, k); }
/* integer in [0, n) */
VR_HD int vr_aug_randint(const vr_aug_rng *r, uint64_t k, int n) {
  int v = (int)(vr_aug_U(r, k) * n);
  return v >= n ? n - 1 : v;
}
/* standard normal number k (one Philox block each) */
VR_HD double vr_aug_normal(const vr_aug_rng *r, uint64_t k) {
  uint32_t w[4];
  vr_philox_block(r->seed, r->stream, r->base | (k + 64), w);
  double u1 = 1.0 - vr_philox_u01(w[0], w[1]), u2 = vr_philox_u01(w[2], w[3]);
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* whether step st acts (normalize and resize always do) */
VR_HD int vr_aug_step_on(const vr_aug_rng *r, const vr_aug_step *st) {
  return st->kind == VR_AUG_NORMALIZE || st->kind == VR_AUG_RESIZE || vr_aug_U(r, 0) < st->p;
}

/* the size a crop or resize step makes inside a view of oh x ow */
VR_HD void vr_aug_step_size(const vr_aug_step *st, int oh, int ow, int *th, int *tw) {
  *th = st->out_h ? st->out_h : oh;
  *tw = st->out_w ? st->out_w : ow;
}

VR_HD float vr_aug_clamp01(float x) { return x < 0 ? 0 : x > 1 ? 1 : x; }

/* torchvision RandomResizedCrop.get_params */
VR_HD void vr_aug_crop_params(const vr_aug_rng *r, const vr_aug_step *st, int h, int w, int *y0, int *x0, int *ch,
                              int *cw) {
  double area = (double)h * w, lr0 = log(st->f[2]), lr1 = log(st->f[3]);
  for (int t = 0; t < 10; t++) {
    double ta = area * vr_aug_uni(r, 4 * t + 1, st->f[0], st->f[1]);
    double ar = exp(vr_aug_uni(r, 4 * t + 2, lr0, lr1));
    int cw_ = (int)lround(sqrt(ta * ar)), ch_ = (int)lround(sqrt(ta / ar));
    if (cw_ > 0 && cw_ <= w && ch_ > 0 && ch_ <= h) {
      *y0 = vr_aug_randint(r, 4 * t + 3, h - ch_ + 1);
      *x0 = vr_aug_randint(r, 4 * t + 4, w - cw_ + 1);
      *ch = ch_;
      *cw = cw_;
      return;
    }
  }
  /* fallback: the central crop with the ratio clamped to the range */
  double in_ratio = (double)w / h;
  int cw_, ch_;
  if (in_ratio < st->f[2]) {
    cw_ = w;
    ch_ = (int)lround(w / st->f[2]);
  } else if (in_ratio > st->f[3]) {
    ch_ = h;
    cw_ = (int)lround(h * st->f[3]);
  } else {
    cw_ = w;
    ch_ = h;
  }
  if (ch_ < 1) ch_ = 1;
  if (cw_ < 1) cw_ = 1;
  *y0 = (h - ch_) / 2;
  *x0 = (w - cw_) / 2;
  *ch = ch_;
  *cw = cw_;
}

/* torchvision RandomErasing.get_params; 0 when no rectangle fits in 10 tries */
VR_HD int vr_aug_erase_params(const vr_aug_rng *r, const vr_aug_step *st, int h, int w, int *y0, int *x0, int *eh,
                              int *ew) {
  double area = (double)h * w, lr0 = log(st->f[2]), lr1 = log(st->f[3]);
  for (int t = 0; t < 10; t++) {
    double ea = area * vr_aug_uni(r, 4 * t + 1, st->f[0], st->f[1]);
    double ar = exp(vr_aug_uni(r, 4 * t + 2, lr0, lr1));
    int eh_ = (int)lround(sqrt(ea * ar)), ew_ = (int)lround(sqrt(ea / ar));
    if (!(eh_ < h && ew_ < w) || eh_ <= 0 || ew_ <= 0) continue;
    *y0 = vr_aug_randint(r, 4 * t + 3, h - eh_ + 1);
    *x0 = vr_aug_randint(r, 4 * t + 4, w - ew_ + 1);
    *eh = eh_;
    *ew = ew_;
    return 1;
  }
  return 0;
}

/* ColorJitter: the order of brightness (0), contrast (1), saturation (2), hue (3) and, for each one
 * that acts, its factor (hue: the shift); act[k] 0 when it is off (amount 0, or colour on c != 3) */
typedef struct vr_aug_jitter_plan {
  int order[4], act[4];
  float fac[4];
} vr_aug_jitter_plan;

VR_HD void vr_aug_jitter_params(const vr_aug_rng *r, const vr_aug_step *st, int c, vr_aug_jitter_plan *j) {
  for (int k = 0; k < 4; k++) j->order[k] = k;
  for (int i = 3; i > 0; i--) { /* Fisher-Yates from draws 5..7 */
    int k = vr_aug_randint(r, (uint64_t)(8 - i), i + 1), t = j->order[i];
    j->order[i] = j->order[k];
    j->order[k] = t;
  }
  for (int which = 0; which < 4; which++) {
    double amt = st->f[which];
    j->act[which] = !(amt <= 0) && !((which == 2 || which == 3) && c != 3);
    j->fac[which] = 0;
    if (!j->act[which]) continue;
    if (which == 3) j->fac[3] = (float)vr_aug_uni(r, 4, -amt, amt);
    else j->fac[which] = (float)vr_aug_uni(r, (uint64_t)which + 1, fmax(0.0, 1 - amt), 1 + amt);
  }
}

/* the normalised Gaussian kernel of blur (kern holds 257); returns its radius */
VR_HD int vr_aug_blur_kernel(double sigma, int ks, float *kern) {
  if (ks <= 0) ks = 2 * (int)ceil(3 * sigma) + 1;
  if (ks % 2 == 0) ks++;
  int rad = ks / 2;
  if (rad > 128) rad = 128;
  double sum = 0;
  for (int k = -rad; k <= rad; k++) sum += kern[k + rad] = (float)exp(-0.5 * k * k / (sigma * sigma));
  for (int k = 0; k <= 2 * rad; k++) kern[k] = (float)(kern[k] / sum);
  return rad;
}

VR_HD int vr_aug_reflect(int i, int n) {
  if (n == 1) return 0;
  int period = 2 * (n - 1);
  i %= period;
  if (i < 0) i += period;
  return i < n ? i : period - i;
}

VR_HD float vr_aug_gray(float r, float g, float b) { return 0.299f * r + 0.587f * g + 0.114f * b; }

VR_HD void vr_aug_rgb_to_hsv(float r, float g, float b, float *h, float *s, float *v) {
  float mx = fmaxf(r, fmaxf(g, b)), mn = fminf(r, fminf(g, b)), d = mx - mn;
  *v = mx;
  *s = mx > 0 ? d / mx : 0;
  if (d <= 0) {
    *h = 0;
    return;
  }
  float hh;
  if (mx == r) hh = (g - b) / d;
  else if (mx == g) hh = 2 + (b - r) / d;
  else hh = 4 + (r - g) / d;
  hh /= 6;
  if (hh < 0) hh += 1;
  *h = hh;
}

VR_HD void vr_aug_hsv_to_rgb(float h, float s, float v, float *r, float *g, float *b) {
  float hh = h * 6;
  int i = (int)floorf(hh);
  float f = hh - i, p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
  switch (((i % 6) + 6) % 6) {
  case 0: *r = v; *g = t; *b = p; break;
  case 1: *r = q; *g = v; *b = p; break;
  case 2: *r = p; *g = v; *b = t; break;
  case 3: *r = p; *g = q; *b = v; break;
  case 4: *r = t; *g = p; *b = v; break;
  default: *r = v; *g = p; *b = q; break;
  }
}

/* shifts the hue of one RGB pixel by dh (a fraction of the circle) */
VR_HD void vr_aug_hue_shift(float *r, float *g, float *b, float dh) {
  float hh, ss, vv;
  vr_aug_rgb_to_hsv(*r, *g, *b, &hh, &ss, &vv);
  hh = hh + dh;
  hh -= floorf(hh);
  vr_aug_hsv_to_rgb(hh, ss, vv, r, g, b);
}

/* bilinear sampling along one axis, half-pixel centres (align_corners = False): output position y of
 * n outputs over a region of r inputs (scale r / n) reads inputs i0, i1 with weight a on i1 */
typedef struct vr_aug_tap {
  int i0, i1;
  float a;
} vr_aug_tap;
VR_HD vr_aug_tap vr_aug_tap_at(int y, double scale, int r) {
  double f = (y + 0.5) * scale - 0.5;
  if (f < 0) f = 0;
  vr_aug_tap t;
  t.i0 = (int)f;
  if (t.i0 > r - 1) t.i0 = r - 1;
  t.i1 = t.i0 + 1 < r ? t.i0 + 1 : r - 1;
  t.a = (float)(f - t.i0);
  return t;
}
/* the bilinear value of plane p (row length w) at the taps, offset by the region's corner */
VR_HD float vr_aug_bilinear(const float *p, int w, int y0, int x0, vr_aug_tap ty, vr_aug_tap tx) {
  float a = p[(size_t)(y0 + ty.i0) * w + x0 + tx.i0], b = p[(size_t)(y0 + ty.i0) * w + x0 + tx.i1];
  float cc = p[(size_t)(y0 + ty.i1) * w + x0 + tx.i0], d = p[(size_t)(y0 + ty.i1) * w + x0 + tx.i1];
  float top = a + (b - a) * tx.a, bot = cc + (d - cc) * tx.a;
  return top + (bot - top) * ty.a;
}

/* floats of scratch one image needs in each of its three buffers: c x the largest size it takes */
VR_HD size_t vr_aug_scratch_floats(const vr_aug_step *steps, int n, int c, int h, int w, int oh, int ow) {
  size_t big = (size_t)c * (size_t)(h > oh ? h : oh) * (size_t)(w > ow ? w : ow);
  for (int k = 0; k < n; k++)
    if (steps[k].kind == VR_AUG_CROP || steps[k].kind == VR_AUG_RESIZE) {
      size_t sz = (size_t)c * (size_t)(steps[k].out_h ? steps[k].out_h : oh) *
                  (size_t)(steps[k].out_w ? steps[k].out_w : ow);
      if (sz > big) big = sz;
    }
  return big;
}
#endif
