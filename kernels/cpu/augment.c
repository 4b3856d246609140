/* augment.c (CPU): the image augmentations of a vr_pipeline, one image at a time, and the
 * VR_OP_AUGMENT kernel that runs a pipeline over a batch (one image per OpenMP iteration).
 *
 * Randomness: step s of the pipeline draws its k-th uniform from Philox with key seed,
 * stream (epoch << 32 | view) and counter (sample << 32 | s << 24 | k), so a view depends only on
 * (seed, epoch, sample, view) and never on the thread that makes it. The geometry follows
 * torchvision (RandomResizedCrop, RandomErasing, ColorJitter) on float images in [0, 1]. */
#include "cpu.h"
#include "../../core/data/data.h"
#include "../../core/philox.h"
#include <math.h>
#include <stdlib.h>

typedef struct rng {
  uint64_t seed, stream, base;
} rng;

/* the k-th uniform in [0, 1) of the current step */
static double U(const rng *r, uint64_t k) {
  uint32_t w[4];
  vr_philox_block(r->seed, r->stream, r->base | (k >> 1), w);
  return (k & 1) ? vr_philox_u01(w[2], w[3]) : vr_philox_u01(w[0], w[1]);
}
static double uni(const rng *r, uint64_t k, double lo, double hi) { return lo + (hi - lo) * U(r, k); }
/* integer in [0, n) */
static int randint(const rng *r, uint64_t k, int n) {
  int v = (int)(U(r, k) * n);
  return v >= n ? n - 1 : v;
}
/* standard normal number k (one Philox block each) */
static double normal(const rng *r, uint64_t k) {
  uint32_t w[4];
  vr_philox_block(r->seed, r->stream, r->base | (k + 64), w);
  double u1 = 1.0 - vr_philox_u01(w[0], w[1]), u2 = vr_philox_u01(w[2], w[3]);
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

static float clamp01(float x) { return x < 0 ? 0 : x > 1 ? 1 : x; }

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

/* bilinear resize of the region (y0, x0, rh, rw) of src (c x h x w) to dst (c x oh x ow), half-pixel
 * centres (align_corners = False); a region of the output's size is copied exactly */
static void resize_region(const float *src, int c, int h, int w, int y0, int x0, int rh, int rw, float *dst, int oh,
                          int ow) {
  double sy = (double)rh / oh, sx = (double)rw / ow;
  for (int y = 0; y < oh; y++) {
    double fy = (y + 0.5) * sy - 0.5;
    if (fy < 0) fy = 0;
    int iy = (int)fy;
    if (iy > rh - 1) iy = rh - 1;
    int iy1 = iy + 1 < rh ? iy + 1 : rh - 1;
    float ay = (float)(fy - iy);
    for (int x = 0; x < ow; x++) {
      double fx = (x + 0.5) * sx - 0.5;
      if (fx < 0) fx = 0;
      int ix = (int)fx;
      if (ix > rw - 1) ix = rw - 1;
      int ix1 = ix + 1 < rw ? ix + 1 : rw - 1;
      float ax = (float)(fx - ix);
      for (int ch = 0; ch < c; ch++) {
        const float *p = src + (size_t)ch * h * w;
        float a = p[(size_t)(y0 + iy) * w + x0 + ix], b = p[(size_t)(y0 + iy) * w + x0 + ix1];
        float cc = p[(size_t)(y0 + iy1) * w + x0 + ix], d = p[(size_t)(y0 + iy1) * w + x0 + ix1];
        float top = a + (b - a) * ax, bot = cc + (d - cc) * ax;
        dst[((size_t)ch * oh + y) * ow + x] = top + (bot - top) * ay;
      }
    }
  }
}

/* torchvision RandomResizedCrop.get_params */
static void crop_params(const rng *r, const vr_aug_step *st, int h, int w, int *y0, int *x0, int *ch, int *cw) {
  double area = (double)h * w, lr0 = log(st->f[2]), lr1 = log(st->f[3]);
  for (int t = 0; t < 10; t++) {
    double ta = area * uni(r, 4 * t + 1, st->f[0], st->f[1]);
    double ar = exp(uni(r, 4 * t + 2, lr0, lr1));
    int cw_ = (int)lround(sqrt(ta * ar)), ch_ = (int)lround(sqrt(ta / ar));
    if (cw_ > 0 && cw_ <= w && ch_ > 0 && ch_ <= h) {
      *y0 = randint(r, 4 * t + 3, h - ch_ + 1);
      *x0 = randint(r, 4 * t + 4, w - cw_ + 1);
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

static void gray_plane(const float *x, int hw, float *g) {
  for (int i = 0; i < hw; i++) g[i] = 0.299f * x[i] + 0.587f * x[hw + i] + 0.114f * x[2 * hw + i];
}

static void rgb_to_hsv(float r, float g, float b, float *h, float *s, float *v) {
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

static void hsv_to_rgb(float h, float s, float v, float *r, float *g, float *b) {
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

/* ColorJitter: brightness, contrast, saturation, hue in a random order */
static void jitter(const rng *r, const vr_aug_step *st, float *x, int c, int h, int w, float *tmp) {
  int hw = h * w, n = c * hw, order[4] = {0, 1, 2, 3};
  for (int i = 3; i > 0; i--) { /* Fisher-Yates from draws 5..7 */
    int j = randint(r, (uint64_t)(8 - i), i + 1), t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  for (int oi = 0; oi < 4; oi++) {
    int which = order[oi];
    double amt = st->f[which];
    if (amt <= 0) continue;
    if ((which == 2 || which == 3) && c != 3) continue;
    if (which == 3) {
      float dh = (float)uni(r, 4, -amt, amt);
      for (int i = 0; i < hw; i++) {
        float hh, ss, vv;
        rgb_to_hsv(x[i], x[hw + i], x[2 * hw + i], &hh, &ss, &vv);
        hh = hh + dh;
        hh -= floorf(hh);
        hsv_to_rgb(hh, ss, vv, &x[i], &x[hw + i], &x[2 * hw + i]);
      }
      continue;
    }
    float f = (float)uni(r, which + 1, fmax(0.0, 1 - amt), 1 + amt);
    if (which == 0) {
      for (int i = 0; i < n; i++) x[i] = clamp01(x[i] * f);
    } else if (which == 1) { /* blend with the mean of the grayscale image */
      double m = 0;
      if (c == 3) {
        gray_plane(x, hw, tmp);
        for (int i = 0; i < hw; i++) m += tmp[i];
      } else
        for (int i = 0; i < n; i++) m += x[i];
      float mean = (float)(m / (c == 3 ? hw : n));
      for (int i = 0; i < n; i++) x[i] = clamp01(f * x[i] + (1 - f) * mean);
    } else { /* saturation: blend with the grayscale image */
      gray_plane(x, hw, tmp);
      for (int ch = 0; ch < 3; ch++)
        for (int i = 0; i < hw; i++) x[ch * hw + i] = clamp01(f * x[ch * hw + i] + (1 - f) * tmp[i]);
    }
  }
}

static int reflect(int i, int n) {
  if (n == 1) return 0;
  int period = 2 * (n - 1);
  i %= period;
  if (i < 0) i += period;
  return i < n ? i : period - i;
}

static void blur(double sigma, int ks, float *x, int c, int h, int w, float *tmp) {
  if (ks <= 0) ks = 2 * (int)ceil(3 * sigma) + 1;
  if (ks % 2 == 0) ks++;
  int rad = ks / 2;
  float kern[257];
  if (rad > 128) rad = 128;
  double sum = 0;
  for (int k = -rad; k <= rad; k++) sum += kern[k + rad] = (float)exp(-0.5 * k * k / (sigma * sigma));
  for (int k = 0; k <= 2 * rad; k++) kern[k] = (float)(kern[k] / sum);
  for (int ch = 0; ch < c; ch++) {
    float *p = x + (size_t)ch * h * w;
    for (int y = 0; y < h; y++) /* horizontal into tmp */
      for (int xx = 0; xx < w; xx++) {
        float a = 0;
        for (int k = -rad; k <= rad; k++) a += kern[k + rad] * p[y * w + reflect(xx + k, w)];
        tmp[y * w + xx] = a;
      }
    for (int y = 0; y < h; y++) /* vertical back into p */
      for (int xx = 0; xx < w; xx++) {
        float a = 0;
        for (int k = -rad; k <= rad; k++) a += kern[k + rad] * tmp[reflect(y + k, h) * w + xx];
        p[y * w + xx] = a;
      }
  }
}

/* torchvision RandomErasing.get_params: value fills every channel */
static void erase(const rng *r, const vr_aug_step *st, float *x, int c, int h, int w) {
  double area = (double)h * w, lr0 = log(st->f[2]), lr1 = log(st->f[3]);
  for (int t = 0; t < 10; t++) {
    double ea = area * uni(r, 4 * t + 1, st->f[0], st->f[1]);
    double ar = exp(uni(r, 4 * t + 2, lr0, lr1));
    int eh = (int)lround(sqrt(ea * ar)), ew = (int)lround(sqrt(ea / ar));
    if (!(eh < h && ew < w) || eh <= 0 || ew <= 0) continue;
    int y0 = randint(r, 4 * t + 3, h - eh + 1), x0 = randint(r, 4 * t + 4, w - ew + 1);
    for (int ch = 0; ch < c; ch++)
      for (int y = y0; y < y0 + eh; y++)
        for (int xx = x0; xx < x0 + ew; xx++) x[((size_t)ch * h + y) * w + xx] = (float)st->f[4];
    return;
  }
}

vr_status vr_augment_image(const vr_pipeline *p, const void *src, int src_u8, int c, int h, int w, float *dst, int oh,
                           int ow, uint64_t seed, uint64_t epoch, uint64_t sample, uint64_t view, vr_aug_scratch *s) {
  if (oh <= 0) oh = h;
  if (ow <= 0) ow = w;
  size_t big = (size_t)c * (size_t)(h > oh ? h : oh) * (size_t)(w > ow ? w : ow);
  /* crops and resizes may grow the image beyond both sizes */
  for (int k = 0; k < p->n; k++)
    if (p->steps[k].kind == VR_AUG_CROP || p->steps[k].kind == VR_AUG_RESIZE) {
      size_t sz = (size_t)c * (size_t)(p->steps[k].out_h ? p->steps[k].out_h : oh) *
                  (size_t)(p->steps[k].out_w ? p->steps[k].out_w : ow);
      if (sz > big) big = sz;
    }
  float *cur = grow(s, 0, big), *nxt = grow(s, 1, big), *tmp = grow(s, 2, big);
  if (!cur || !nxt || !tmp) return VR_FAIL(VR_E_OOM, "augment: out of host memory");
  size_t n = (size_t)c * h * w;
  if (src_u8)
    for (size_t i = 0; i < n; i++) cur[i] = ((const uint8_t *)src)[i] * (1.0f / 255.0f);
  else
    memcpy(cur, src, n * sizeof(float));
  rng r = {seed, (epoch << 32) | (view & 0xffffffffu), 0};
  for (int si = 0; si < p->n; si++) {
    const vr_aug_step *st = &p->steps[si];
    r.base = (sample << 32) | ((uint64_t)(si & 0xff) << 24);
    int hw = h * w;
    bool on = st->kind == VR_AUG_NORMALIZE || st->kind == VR_AUG_RESIZE || U(&r, 0) < st->p;
    switch (st->kind) {
    case VR_AUG_CROP:
    case VR_AUG_RESIZE: {
      int th = st->out_h ? st->out_h : oh, tw = st->out_w ? st->out_w : ow;
      int y0 = 0, x0 = 0, ch = h, cw = w;
      if (st->kind == VR_AUG_CROP && on) crop_params(&r, st, h, w, &y0, &x0, &ch, &cw);
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
      if (on) blur(uni(&r, 1, st->f[0], st->f[1]), (int)st->f[2], cur, c, h, w, tmp);
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
        for (int i = 0; i < c * hw; i++) cur[i] += (float)(st->f[0] * normal(&r, (uint64_t)i));
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

/* VR_OP_AUGMENT: in[0] images N x C x H x W contiguous (u8 or f32), out[0] f32 N x C x oh x ow
 * contiguous, i[0] seed, i[1] epoch, i[2] sample of image 0, i[3] view, ctx the vr_pipeline */
static vr_status augment_fwd(const vr_kernel_args *a) {
  const vr_tensor *x = a->in[0];
  vr_tensor *y = a->out[0];
  const vr_pipeline *p = a->ctx;
  int64_t n = x->shape[0];
  int c = (int)x->shape[1], h = (int)x->shape[2], w = (int)x->shape[3], oh = (int)y->shape[2], ow = (int)y->shape[3];
  int u8 = x->dtype == VR_U8;
  size_t esz = vr_dtype_size(x->dtype), in_sz = (size_t)c * h * w, out_sz = (size_t)c * oh * ow;
  const char *src = vr_data(x);
  float *dst = vr_data(y);
  vr_status st = VR_OK;
#pragma omp parallel
  {
    vr_aug_scratch s = {0};
#pragma omp for schedule(dynamic, 4)
    for (int64_t k = 0; k < n; k++) {
      vr_status r = vr_augment_image(p, src + (size_t)k * in_sz * esz, u8, c, h, w, dst + (size_t)k * out_sz, oh, ow,
                                     (uint64_t)a->i[0], (uint64_t)a->i[1], (uint64_t)a->i[2] + (uint64_t)k,
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

void vr_cpu_register_augment(void) { vr_kernel_register(VR_OP_AUGMENT, VR_CPU, augment_fwd, NULL); }
