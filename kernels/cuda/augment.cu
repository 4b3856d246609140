/* augment.cu: VR_OP_AUGMENT on CUDA, the GPU twin of kernels/cpu/augment.c with the argument
 * layout of core/data/augment.c (in[0] u8/f32 N x C x H x W, in[1] optional i64 sample ids,
 * out[0] f32 N x C x oh x ow, i = {seed, epoch, sample of image 0, view}, ctx the host pipeline).
 *
 * One block per image (grid-stride over the batch). Pipelines of up to 12 steps travel in the
 * kernel's arguments (no host-to-device copy per call). Thread 0 draws a step's random parameters
 * into shared memory with the CPU's own code (core/data/aug_math.h: same Philox counters, same
 * torchvision searches); the block then applies the step to the image held in three scratch
 * buffers (cur, nxt, tmp: shared memory when they fit, else a global slice per block). Every
 * output value is computed by one thread with the CPU's formula and operation order, and the file
 * is built with -fmad=false, so the views equal the CPU's up to the device's double log / exp / cos
 * (the noise values and, at a rounding boundary, a crop size). The contrast mean is summed in
 * double by one thread in the CPU's order (a fixed tree above 4096 values). */
#include "blockreduce.cuh"
#include "scratch.cuh"
#include "../../core/data/aug_math.h"

namespace {

const int kThreads = 256;                       /* a power of two (block reduction) */
const size_t kSmemLimit = 40 << 10;             /* dynamic shared memory used for the scratch */
const size_t kGlobalScratch = (size_t)256 << 20; /* at most this much global scratch */
const int kSeqMean = 4096;                      /* contrast means up to this many values: one thread */
const int kInlineSteps = 12;                    /* pipelines up to this long travel in the kernel's arguments */

/* one step's parameters, drawn by thread 0 */
struct plan {
  int on;
  int y0, x0, rh, rw; /* crop region, or the erase rectangle */
  int found;          /* erase: a rectangle fitted */
  float mean;         /* contrast: the image's mean */
  vr_aug_jitter_plan j;
  int rad;
  float kern[257];
};

struct aug_args {
  const void *src;
  int u8;
  const int64_t *ids;
  uint64_t sample0, seed, epoch, view;
  int64_t n;
  int c, h, w, oh, ow;
  const vr_aug_step *steps; /* longer pipelines: the steps in device memory, else NULL */
  vr_aug_step inl[kInlineSteps];
  int nsteps;
  float *out, *scratch;
  size_t big;
  int smem;
};
static_assert(sizeof(aug_args) <= 4000, "the kernel's arguments must fit in 4 KB");

/* dst (c x oh x ow) = the bilinear resize of the region (y0, x0, rh, rw) of src (c x h x w) */
__device__ void resize_block(const float *src, int c, int h, int w, int y0, int x0, int rh, int rw, float *dst,
                             int oh, int ow) {
  double sy = (double)rh / oh, sx = (double)rw / ow;
  int n = c * oh * ow;
  for (int e = threadIdx.x; e < n; e += blockDim.x) {
    int x = e % ow, y = (e / ow) % oh, ch = e / (ow * oh);
    dst[e] = vr_aug_bilinear(src + (size_t)ch * h * w, w, y0, x0, vr_aug_tap_at(y, sy, rh), vr_aug_tap_at(x, sx, rw));
  }
}

/* the contrast mean: the mean of the grayscale image (3 channels) or of all values, as the CPU */
__device__ float contrast_mean(const float *x, int c, int hw, plan *P, double *red) {
  int n = c == 3 ? hw : c * hw;
  if (n <= kSeqMean) {
    if (threadIdx.x == 0) {
      double m = 0;
      if (c == 3)
        for (int i = 0; i < hw; i++) m += vr_aug_gray(x[i], x[hw + i], x[2 * hw + i]);
      else
        for (int i = 0; i < n; i++) m += x[i];
      P->mean = (float)(m / n);
    }
    __syncthreads();
    float m = P->mean;
    __syncthreads(); /* P is rewritten by the next step */
    return m;
  }
  double part = 0;
  for (int i = threadIdx.x; i < n; i += blockDim.x)
    part += c == 3 ? (double)vr_aug_gray(x[i], x[hw + i], x[2 * hw + i]) : (double)x[i];
  double m = vr_cu_block_reduce<vr_cu_sum_op, double>(part, red);
  return (float)(m / n);
}

__global__ void augment_kernel(aug_args a) {
  extern __shared__ float vr_aug_smem[];
  __shared__ plan P;
  __shared__ vr_aug_step S; /* the current step */
  __shared__ double red[kThreads];
  float *buf = a.smem ? vr_aug_smem : a.scratch + (size_t)blockIdx.x * 3 * a.big;
  const int tid = threadIdx.x, nt = blockDim.x;
  vr_aug_rng r = vr_aug_rng_make(a.seed, a.epoch, a.view);
  for (int64_t img = blockIdx.x; img < a.n; img += gridDim.x) {
    float *cur = buf, *nxt = buf + a.big, *tmp = buf + 2 * a.big;
    int c = a.c, h = a.h, w = a.w;
    int n0 = c * h * w;
    if (a.u8) {
      const uint8_t *s = (const uint8_t *)a.src + (size_t)img * n0;
      for (int i = tid; i < n0; i += nt) cur[i] = s[i] * (1.0f / 255.0f);
    } else {
      const float *s = (const float *)a.src + (size_t)img * n0;
      for (int i = tid; i < n0; i += nt) cur[i] = s[i];
    }
    uint64_t sample = a.ids ? (uint64_t)a.ids[img] : a.sample0 + (uint64_t)img;
    for (int si = 0; si < a.nsteps; si++) {
      const vr_aug_step *st = &S;
      vr_aug_rng_step(&r, sample, si);
      __syncthreads(); /* the last step's pixels are written and P, S are free */
      if (tid == 0) {
        S = a.steps ? a.steps[si] : a.inl[si];
        const int kind = S.kind;
        P.on = vr_aug_step_on(&r, st);
        P.y0 = P.x0 = 0;
        P.rh = h;
        P.rw = w;
        if (P.on) {
          if (kind == VR_AUG_CROP) vr_aug_crop_params(&r, st, h, w, &P.y0, &P.x0, &P.rh, &P.rw);
          else if (kind == VR_AUG_JITTER) vr_aug_jitter_params(&r, st, c, &P.j);
          else if (kind == VR_AUG_BLUR) P.rad = vr_aug_blur_kernel(vr_aug_uni(&r, 1, st->f[0], st->f[1]), (int)st->f[2], P.kern);
          else if (kind == VR_AUG_ERASE) P.found = vr_aug_erase_params(&r, st, h, w, &P.y0, &P.x0, &P.rh, &P.rw);
        }
      }
      __syncthreads();
      const int on = P.on, hw = h * w, n = c * hw, kind = S.kind;
      switch (kind) {
      case VR_AUG_CROP:
      case VR_AUG_RESIZE: {
        int th, tw;
        vr_aug_step_size(st, a.oh, a.ow, &th, &tw);
        resize_block(cur, c, h, w, P.y0, P.x0, P.rh, P.rw, nxt, th, tw);
        float *t = cur;
        cur = nxt;
        nxt = t;
        h = th;
        w = tw;
        break;
      }
      case VR_AUG_HFLIP:
        if (on) {
          int half = w / 2, pairs = c * h * half;
          for (int e = tid; e < pairs; e += nt) {
            float *row = cur + (size_t)(e / half) * w;
            int x = e % half;
            float t = row[x];
            row[x] = row[w - 1 - x];
            row[w - 1 - x] = t;
          }
        }
        break;
      case VR_AUG_JITTER:
        if (on)
          for (int oi = 0; oi < 4; oi++) {
            int which = P.j.order[oi];
            if (!P.j.act[which]) continue;
            float f = P.j.fac[which];
            if (which == 3) {
              for (int i = tid; i < hw; i += nt) vr_aug_hue_shift(&cur[i], &cur[hw + i], &cur[2 * hw + i], f);
            } else if (which == 0) {
              for (int i = tid; i < n; i += nt) cur[i] = vr_aug_clamp01(cur[i] * f);
            } else if (which == 1) {
              float mean = contrast_mean(cur, c, hw, &P, red);
              for (int i = tid; i < n; i += nt) cur[i] = vr_aug_clamp01(f * cur[i] + (1 - f) * mean);
            } else { /* saturation (3 channels): each pixel blends with its own gray value */
              for (int i = tid; i < hw; i += nt) {
                float g = vr_aug_gray(cur[i], cur[hw + i], cur[2 * hw + i]);
                for (int ch = 0; ch < 3; ch++)
                  cur[ch * hw + i] = vr_aug_clamp01(f * cur[ch * hw + i] + (1 - f) * g);
              }
            }
            __syncthreads();
          }
        break;
      case VR_AUG_GRAY:
        if (on && c == 3)
          for (int i = tid; i < hw; i += nt) {
            float g = vr_aug_gray(cur[i], cur[hw + i], cur[2 * hw + i]);
            cur[i] = cur[hw + i] = cur[2 * hw + i] = g;
          }
        break;
      case VR_AUG_BLUR:
        if (on) {
          const int rad = P.rad;
          for (int e = tid; e < n; e += nt) { /* horizontal into tmp */
            int x = e % w;
            const float *row = cur + (e - x);
            float acc = 0;
            for (int k = -rad; k <= rad; k++) acc += P.kern[k + rad] * row[vr_aug_reflect(x + k, w)];
            tmp[e] = acc;
          }
          __syncthreads();
          for (int e = tid; e < n; e += nt) { /* vertical back into cur */
            int x = e % w, y = (e / w) % h;
            const float *plane = tmp + (size_t)(e / hw) * hw;
            float acc = 0;
            for (int k = -rad; k <= rad; k++) acc += P.kern[k + rad] * plane[vr_aug_reflect(y + k, h) * w + x];
            cur[e] = acc;
          }
        }
        break;
      case VR_AUG_SOLARIZE:
        if (on)
          for (int i = tid; i < n; i += nt)
            if (cur[i] >= st->f[0]) cur[i] = 1 - cur[i];
        break;
      case VR_AUG_ERASE:
        if (on && P.found) {
          int eh = P.rh, ew = P.rw, m = c * eh * ew;
          float v = (float)st->f[4];
          for (int e = tid; e < m; e += nt) {
            int x = e % ew, y = (e / ew) % eh, ch = e / (ew * eh);
            cur[((size_t)ch * h + P.y0 + y) * w + P.x0 + x] = v;
          }
        }
        break;
      case VR_AUG_NOISE:
        if (on)
          for (int i = tid; i < n; i += nt) cur[i] += (float)(st->f[0] * vr_aug_normal(&r, (uint64_t)i));
        break;
      case VR_AUG_NORMALIZE:
        for (int i = tid; i < n; i += nt) {
          int k = st->n_ch == 1 ? 0 : i / hw;
          float m = (float)st->mean[k], is = (float)(1.0 / st->std[k]);
          cur[i] = (cur[i] - m) * is;
        }
        break;
      }
    }
    __syncthreads();
    float *dst = a.out + (size_t)img * c * a.oh * a.ow;
    if (h != a.oh || w != a.ow) resize_block(cur, c, h, w, 0, 0, h, w, dst, a.oh, a.ow);
    else
      for (int i = tid; i < c * h * w; i += nt) dst[i] = cur[i];
    __syncthreads(); /* the next image reuses the buffers */
  }
}

vr_status vr_cuda_augment_fwd(const vr_kernel_args *a) {
  const vr_tensor *x = a->in[0];
  vr_tensor *y = a->out[0];
  const vr_pipeline *p = (const vr_pipeline *)a->ctx;
  if (!p) return VR_FAIL(VR_E_INTERNAL, "ctx: expected the pipeline, got NULL");
  if (x->dtype != VR_U8 && x->dtype != VR_F32) return VR_CU_UNSUPPORTED_DTYPE("images", x->dtype);
  aug_args g;
  memset(&g, 0, sizeof g);
  g.n = x->shape[0];
  g.c = (int)x->shape[1];
  g.h = (int)x->shape[2];
  g.w = (int)x->shape[3];
  g.oh = (int)y->shape[2];
  g.ow = (int)y->shape[3];
  if (g.n <= 0) return VR_OK;
  if ((int64_t)g.c * g.h * g.w > INT32_MAX / 2 || (int64_t)g.c * g.oh * g.ow > INT32_MAX / 2)
    return VR_FAIL(VR_E_UNSUPPORTED, "images: an image of %lld values is too large for the CUDA kernel",
                   (long long)g.c * g.h * g.w);
  g.u8 = x->dtype == VR_U8;
  g.src = vr_data(x);
  g.ids = a->in[1] ? (const int64_t *)vr_data(a->in[1]) : nullptr;
  g.seed = (uint64_t)a->i[0];
  g.epoch = (uint64_t)a->i[1];
  g.sample0 = (uint64_t)a->i[2];
  g.view = (uint64_t)a->i[3];
  g.out = (float *)vr_data(y);
  g.nsteps = p->n;
  g.big = vr_aug_scratch_floats(p->steps, p->n, g.c, g.h, g.w, g.oh, g.ow);
  if (g.big > (size_t)INT32_MAX / 2)
    return VR_FAIL(VR_E_UNSUPPORTED, "p: a step makes an image of %zu values, too large for the CUDA kernel", g.big);
  vr_cu_buf steps, scratch;
  if (p->n <= kInlineSteps) { /* the steps, as they are (a plain C struct), in the arguments: no copy */
    if (p->n) memcpy(g.inl, p->steps, sizeof(vr_aug_step) * (size_t)p->n);
  } else {
    size_t bytes = sizeof(vr_aug_step) * (size_t)p->n;
    VR_TRY(steps.get(bytes));
    VR_TRY(vr_device_get(VR_CUDA)->memcpy(steps.p, p->steps, bytes, 0));
    g.steps = steps.as<vr_aug_step>();
  }
  size_t per_block = 3 * g.big * sizeof(float);
  int64_t grid = g.n < 65535 ? g.n : 65535;
  size_t smem = 0;
  if (per_block <= kSmemLimit) {
    g.smem = 1;
    smem = per_block;
  } else {
    int64_t cap = (int64_t)(kGlobalScratch / per_block);
    if (cap < 1) cap = 1;
    if (grid > cap) grid = cap;
    VR_TRY(scratch.get(per_block * (size_t)grid));
    g.scratch = scratch.as<float>();
  }
  augment_kernel<<<(unsigned)grid, kThreads, smem, vr_cuda_stream()>>>(g);
  VR_CU_LAUNCHED("augment_kernel");
  return VR_OK;
}

} // namespace

extern "C" void vr_cuda_register_augment(void) { vr_kernel_register(VR_OP_AUGMENT, VR_CUDA, vr_cuda_augment_fwd, NULL); }
