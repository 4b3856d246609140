/* augment.c: building augmentation pipelines (vr_pipeline_add_*) and running one over images
 * (vr_pipeline_apply and vr_pipeline_apply_ids, the front-end of VR_OP_AUGMENT).
 *
 * VR_OP_AUGMENT kernel args: in[0] images N x C x H x W, contiguous, u8 or f32, on the CPU or CUDA;
 * in[1] NULL, or the sample ids: i64 N, contiguous, on the images' device (image k is sample
 * in[1][k]); out[0] f32 N x C x out_h x out_w, contiguous, on the images' device; i[0] seed,
 * i[1] epoch, i[2] sample index of image 0 (image k is sample i[2] + k when in[1] is NULL), i[3]
 * view; ctx the (const) vr_pipeline, in host memory (the CUDA kernel uploads its steps). The
 * per-image work is vr_augment_image in kernels/cpu/augment.c, which the loader's worker threads
 * also call; kernels/cuda/augment.cu does the same arithmetic (core/data/aug_math.h).
 *
 * Step parameters (vr_aug_step.f): crop {scale_lo, scale_hi, ratio_lo, ratio_hi}; jitter
 * {brightness, contrast, saturation, hue}; blur {sigma_lo, sigma_hi, kernel_size}; solarize
 * {threshold}; erase {scale_lo, scale_hi, ratio_lo, ratio_hi, value}; noise {std}. */
#include "data.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

vr_status vr_pipeline_new(vr_pipeline **out) {
  VR_CHECK_OUT(out);
  *out = calloc(1, sizeof(vr_pipeline));
  if (!*out) return VR_FAIL(VR_E_OOM, "pipeline: out of host memory");
  return VR_OK;
}

void vr_pipeline_free(vr_pipeline *p) {
  if (!p) return;
  free(p->steps);
  free(p);
}

int vr_pipeline_length(const vr_pipeline *p) { return p ? p->n : 0; }

vr_status vr_pipeline_copy(const vr_pipeline *src, vr_pipeline **out) {
  VR_TRY(vr_pipeline_new(out));
  if (!src || !src->n) return VR_OK;
  (*out)->steps = malloc(sizeof(vr_aug_step) * (size_t)src->n);
  if (!(*out)->steps) {
    vr_pipeline_free(*out);
    *out = NULL;
    return VR_FAIL(VR_E_OOM, "pipeline: out of host memory");
  }
  memcpy((*out)->steps, src->steps, sizeof(vr_aug_step) * (size_t)src->n);
  (*out)->n = (*out)->cap = src->n;
  return VR_OK;
}

static vr_status push(const char *func, vr_pipeline *p, const vr_aug_step *s) {
  if (!p) return vr_error_set(VR_E_ARG, func, __FILE__, __LINE__, "p: expected a pipeline, got NULL");
  if (!(s->p >= 0 && s->p <= 1))
    return vr_error_set(VR_E_ARG, func, __FILE__, __LINE__, "prob: expected a probability in [0, 1], got %g", s->p);
  if (p->n >= 255) return vr_error_set(VR_E_ARG, func, __FILE__, __LINE__, "p: a pipeline holds at most 255 steps");
  if (p->n == p->cap) {
    int cap = p->cap ? 2 * p->cap : 8;
    vr_aug_step *st = realloc(p->steps, sizeof *st * (size_t)cap);
    if (!st) return vr_error_set(VR_E_OOM, func, __FILE__, __LINE__, "p: out of host memory");
    p->steps = st;
    p->cap = cap;
  }
  p->steps[p->n++] = *s;
  return VR_OK;
}

static int range_ok(double lo, double hi, double min, double max) { return lo >= min && hi <= max && lo <= hi; }

vr_status vr_pipeline_add_crop(vr_pipeline *p, double scale_lo, double scale_hi, double ratio_lo, double ratio_hi,
                               int out_h, int out_w, double prob) {
  if (!range_ok(scale_lo, scale_hi, 0, 1) || scale_hi <= 0)
    return VR_FAIL(VR_E_ARG, "scale_lo, scale_hi: expected 0 <= lo <= hi <= 1, got %g, %g", scale_lo, scale_hi);
  if (!(ratio_lo > 0) || !(ratio_lo <= ratio_hi) || !isfinite(ratio_hi))
    return VR_FAIL(VR_E_ARG, "ratio_lo, ratio_hi: expected 0 < lo <= hi, got %g, %g", ratio_lo, ratio_hi);
  if (out_h < 0 || out_w < 0 || out_h > 4096 || out_w > 4096)
    return VR_FAIL(VR_E_ARG, "out_h, out_w: expected 0..4096 (0: the view's size), got %d, %d", out_h, out_w);
  vr_aug_step s = {.kind = VR_AUG_CROP, .p = prob, .f = {scale_lo, scale_hi, ratio_lo, ratio_hi}, .out_h = out_h,
                   .out_w = out_w};
  return push(__func__, p, &s);
}

vr_status vr_pipeline_add_resize(vr_pipeline *p, int out_h, int out_w) {
  if (out_h < 0 || out_w < 0 || out_h > 4096 || out_w > 4096)
    return VR_FAIL(VR_E_ARG, "out_h, out_w: expected 0..4096 (0: the view's size), got %d, %d", out_h, out_w);
  vr_aug_step s = {.kind = VR_AUG_RESIZE, .p = 1, .out_h = out_h, .out_w = out_w};
  return push(__func__, p, &s);
}

vr_status vr_pipeline_add_hflip(vr_pipeline *p, double prob) {
  vr_aug_step s = {.kind = VR_AUG_HFLIP, .p = prob};
  return push(__func__, p, &s);
}

vr_status vr_pipeline_add_jitter(vr_pipeline *p, double brightness, double contrast, double saturation, double hue,
                                 double prob) {
  if (!(brightness >= 0) || !(contrast >= 0) || !(saturation >= 0))
    return VR_FAIL(VR_E_ARG, "brightness, contrast, saturation: expected >= 0, got %g, %g, %g", brightness, contrast,
                   saturation);
  if (!(hue >= 0 && hue <= 0.5)) return VR_FAIL(VR_E_ARG, "hue: expected 0..0.5, got %g", hue);
  vr_aug_step s = {.kind = VR_AUG_JITTER, .p = prob, .f = {brightness, contrast, saturation, hue}};
  return push(__func__, p, &s);
}

vr_status vr_pipeline_add_grayscale(vr_pipeline *p, double prob) {
  vr_aug_step s = {.kind = VR_AUG_GRAY, .p = prob};
  return push(__func__, p, &s);
}

vr_status vr_pipeline_add_blur(vr_pipeline *p, double sigma_lo, double sigma_hi, int kernel_size, double prob) {
  if (!(sigma_lo > 0) || !(sigma_lo <= sigma_hi) || sigma_hi > 40)
    return VR_FAIL(VR_E_ARG, "sigma_lo, sigma_hi: expected 0 < lo <= hi <= 40, got %g, %g", sigma_lo, sigma_hi);
  if (kernel_size < 0 || kernel_size > 255 || (kernel_size && kernel_size % 2 == 0))
    return VR_FAIL(VR_E_ARG, "kernel_size: expected 0 (automatic) or an odd size up to 255, got %d", kernel_size);
  vr_aug_step s = {.kind = VR_AUG_BLUR, .p = prob, .f = {sigma_lo, sigma_hi, kernel_size}};
  return push(__func__, p, &s);
}

vr_status vr_pipeline_add_solarize(vr_pipeline *p, double threshold, double prob) {
  if (!isfinite(threshold)) return VR_FAIL(VR_E_ARG, "threshold: expected a finite value, got %g", threshold);
  vr_aug_step s = {.kind = VR_AUG_SOLARIZE, .p = prob, .f = {threshold}};
  return push(__func__, p, &s);
}

vr_status vr_pipeline_add_erase(vr_pipeline *p, double scale_lo, double scale_hi, double ratio_lo, double ratio_hi,
                                double value, double prob) {
  if (!range_ok(scale_lo, scale_hi, 0, 1))
    return VR_FAIL(VR_E_ARG, "scale_lo, scale_hi: expected 0 <= lo <= hi <= 1, got %g, %g", scale_lo, scale_hi);
  if (!(ratio_lo > 0) || !(ratio_lo <= ratio_hi) || !isfinite(ratio_hi))
    return VR_FAIL(VR_E_ARG, "ratio_lo, ratio_hi: expected 0 < lo <= hi, got %g, %g", ratio_lo, ratio_hi);
  if (!isfinite(value)) return VR_FAIL(VR_E_ARG, "value: expected a finite value, got %g", value);
  vr_aug_step s = {.kind = VR_AUG_ERASE, .p = prob, .f = {scale_lo, scale_hi, ratio_lo, ratio_hi, value}};
  return push(__func__, p, &s);
}

vr_status vr_pipeline_add_noise(vr_pipeline *p, double std, double prob) {
  if (!(std >= 0) || !isfinite(std)) return VR_FAIL(VR_E_ARG, "std: expected a finite value >= 0, got %g", std);
  vr_aug_step s = {.kind = VR_AUG_NOISE, .p = prob, .f = {std}};
  return push(__func__, p, &s);
}

vr_status vr_pipeline_add_normalize(vr_pipeline *p, int n, const double *mean, const double *std) {
  if (n < 1 || n > VR_AUG_MAX_CH) return VR_FAIL(VR_E_ARG, "n: expected 1..%d channels, got %d", VR_AUG_MAX_CH, n);
  if (!mean || !std) return VR_FAIL(VR_E_ARG, "mean, std: expected arrays of %d values, got NULL", n);
  vr_aug_step s = {.kind = VR_AUG_NORMALIZE, .p = 1, .n_ch = n};
  for (int k = 0; k < n; k++) {
    if (!(std[k] > 0) || !isfinite(mean[k]))
      return VR_FAIL(VR_E_ARG, "std: element %d is %g (mean %g), expected std > 0 and a finite mean", k, std[k], mean[k]);
    s.mean[k] = mean[k];
    s.std[k] = std[k];
  }
  return push(__func__, p, &s);
}

/* normalize steps must match the channel count */
vr_status vr_pipeline_check_channels(const char *func, const vr_pipeline *p, int64_t c) {
  for (int k = 0; k < p->n; k++)
    if (p->steps[k].kind == VR_AUG_NORMALIZE && p->steps[k].n_ch != 1 && p->steps[k].n_ch != c)
      return vr_error_set(VR_E_SHAPE, func, __FILE__, __LINE__,
                          "p: step %d normalizes %d channels, expected 1 or %lld like the images", k, p->steps[k].n_ch,
                          (long long)c);
  return VR_OK;
}

/* the shared tail of vr_pipeline_apply and vr_pipeline_apply_ids; ids NULL: samples sample.. */
static vr_status apply(const char *func, const vr_pipeline *p, const vr_tensor *images, const vr_tensor *ids,
                       int out_h, int out_w, uint64_t seed, uint64_t epoch, uint64_t sample, uint64_t view,
                       vr_tensor **out) {
  if (!out) return vr_error_set(VR_E_ARG, func, __FILE__, __LINE__, "out: expected an output pointer, got NULL");
  *out = NULL;
  if (!p) return vr_error_set(VR_E_ARG, func, __FILE__, __LINE__, "p: expected a pipeline, got NULL");
  if (!images) return vr_error_set(VR_E_ARG, func, __FILE__, __LINE__, "images: expected a tensor, got NULL");
  if (images->ndim != 3 && images->ndim != 4)
    return vr_error_set(VR_E_SHAPE, func, __FILE__, __LINE__, "images: expected C x H x W or N x C x H x W, got %d dims",
                        images->ndim);
  if (images->dtype != VR_U8 && images->dtype != VR_F32)
    return vr_error_set(VR_E_DTYPE, func, __FILE__, __LINE__, "images: expected u8 or f32, got %s",
                        vr_dtype_name(images->dtype));
  if (images->device != VR_CPU && images->device != VR_CUDA)
    return vr_error_set(VR_E_DEVICE, func, __FILE__, __LINE__, "images: expected a CPU or CUDA tensor, got %s",
                        vr_device_name(images->device));
  if (out_h < 0 || out_w < 0 || out_h > 4096 || out_w > 4096)
    return vr_error_set(VR_E_ARG, func, __FILE__, __LINE__,
                        "out_h, out_w: expected 0..4096 (0: the input's size), got %d, %d", out_h, out_w);
  int b = images->ndim == 4;
  int64_t shape[4] = {b ? images->shape[0] : 1, images->shape[b], images->shape[b + 1], images->shape[b + 2]};
  if (shape[2] < 1 || shape[3] < 1 || shape[2] > 65536 || shape[3] > 65536)
    return vr_error_set(VR_E_SHAPE, func, __FILE__, __LINE__,
                        "images: expected images of 1..65536 pixels a side, got H = %lld, W = %lld",
                        (long long)shape[2], (long long)shape[3]);
  VR_TRY(vr_pipeline_check_channels(func, p, shape[1]));
  if (ids) {
    if (ids->dtype != VR_I64)
      return vr_error_set(VR_E_DTYPE, func, __FILE__, __LINE__, "ids: expected i64, got %s", vr_dtype_name(ids->dtype));
    if (ids->ndim > 1 || vr_tensor_numel(ids) != shape[0])
      return vr_error_set(VR_E_SHAPE, func, __FILE__, __LINE__, "ids: expected %lld sample ids (one per image), got %d dims of %lld",
                          (long long)shape[0], ids->ndim, (long long)vr_tensor_numel(ids));
    if (ids->device != VR_CPU && ids->device != images->device)
      return vr_error_set(VR_E_DEVICE, func, __FILE__, __LINE__, "ids: expected a CPU or %s tensor like images, got %s",
                          vr_device_name(images->device), vr_device_name(ids->device));
  }
  vr_tensor *x = NULL, *x4 = NULL, *y = NULL, *id = NULL, *idc = NULL;
  vr_status st = VR_OK;
  VR_TRYG(vr_contiguous_raw(images, &x));
  int64_t cs[4];
  vr_contiguous_strides(4, shape, cs);
  VR_TRYG(vr_tensor_view_raw(x, 4, shape, cs, x->offset, &x4));
  if (ids) { /* contiguous i64 N on the images' device */
    int64_t n1 = shape[0], s1 = 1;
    if (ids->device != images->device) VR_TRYG(vr_tensor_to_device(ids, images->device, &id));
    VR_TRYG(vr_contiguous_raw(id ? id : ids, &idc));
    vr_tensor_free(id);
    id = NULL;
    VR_TRYG(vr_tensor_view_raw(idc, 1, &n1, &s1, idc->offset, &id));
  }
  int64_t oshape[4] = {shape[0], shape[1], out_h ? out_h : shape[2], out_w ? out_w : shape[3]};
  VR_TRYG(vr_tensor_alloc(4, oshape, VR_F32, images->device, &y));
  vr_kernel_args a = {.in = {x4, id}, .n_in = id ? 2 : 1, .out = {y}, .n_out = 1,
                      .i = {(int64_t)seed, (int64_t)epoch, (int64_t)sample, (int64_t)view}, .ctx = (void *)p};
  if (shape[0] > 0) VR_TRYG(vr_dispatch(VR_OP_AUGMENT, images->device, 0, &a));
  if (!b) {
    vr_tensor *y3 = NULL;
    int64_t ys[3];
    vr_contiguous_strides(3, oshape + 1, ys);
    VR_TRYG(vr_tensor_view_raw(y, 3, oshape + 1, ys, 0, &y3));
    vr_tensor_free(y);
    y = y3;
  }
  *out = y;
  y = NULL;
done:
  vr_tensor_free(x);
  vr_tensor_free(x4);
  vr_tensor_free(y);
  vr_tensor_free(id);
  vr_tensor_free(idc);
  return st;
}

vr_status vr_pipeline_apply(const vr_pipeline *p, const vr_tensor *images, int out_h, int out_w, uint64_t seed,
                            uint64_t epoch, uint64_t sample, uint64_t view, vr_tensor **out) {
  return apply(__func__, p, images, NULL, out_h, out_w, seed, epoch, sample, view, out);
}

vr_status vr_pipeline_apply_ids(const vr_pipeline *p, const vr_tensor *images, const vr_tensor *ids, int out_h,
                                int out_w, uint64_t seed, uint64_t epoch, uint64_t view, vr_tensor **out) {
  if (out) *out = NULL;
  if (!ids) return VR_FAIL(VR_E_ARG, "ids: expected an i64 tensor of sample ids, got NULL");
  return apply(__func__, p, images, ids, out_h, out_w, seed, epoch, 0, view, out);
}
