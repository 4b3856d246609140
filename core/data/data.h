/* data.h: what the core/data sources and kernels/cpu/augment.c share: the dataset and pipeline structs and
 * the per-image augmentation entry point. Not public. */
#ifndef VISREG_DATA_H
#define VISREG_DATA_H
#include "../internal.h"

struct vr_dataset {
  vr_tensor *images;   /* u8 N x C x H x W, contiguous */
  int64_t *labels;     /* N entries; -1 when unlabeled */
  int64_t n, c, h, w;
  int num_classes;     /* 0 when unlabeled */
  int has_labels;
};

/* a new dataset that owns images (takes the reference) and labels (takes the malloc'd array) */
vr_status vr_dataset_make(vr_tensor *images, int64_t *labels, int num_classes, int has_labels, vr_dataset **out);

enum vr_aug_kind { VR_AUG_CROP, VR_AUG_RESIZE, VR_AUG_HFLIP, VR_AUG_JITTER, VR_AUG_GRAY, VR_AUG_BLUR,
                   VR_AUG_SOLARIZE, VR_AUG_ERASE, VR_AUG_NOISE, VR_AUG_NORMALIZE };

#define VR_AUG_MAX_CH 4
typedef struct vr_aug_step {
  int kind;
  double p;            /* probability */
  double f[6];         /* kind-specific parameters (see core/data/augment.c) */
  int out_h, out_w;    /* crop / resize size; 0: the view's size */
  int n_ch;            /* normalize: 1 or the channel count */
  double mean[VR_AUG_MAX_CH], std[VR_AUG_MAX_CH];
} vr_aug_step;

struct vr_pipeline {
  int n, cap;
  vr_aug_step *steps;
};

/* copies src's steps into a new pipeline */
vr_status vr_pipeline_copy(const vr_pipeline *src, vr_pipeline **out);
/* VR_E_SHAPE when a normalize step does not fit c channels */
vr_status vr_pipeline_check_channels(const char *func, const vr_pipeline *p, int64_t c);

/* Runs p on one image. src: c x h x w, u8 (divided by 255) or f32; dst: f32 c x oh x ow. scratch is
 * reused between calls (free with free() once done). Randomness keyed by (seed, epoch, sample, view). */
typedef struct vr_aug_scratch {
  float *buf[3];
  size_t cap[3];
} vr_aug_scratch;
vr_status vr_augment_image(const vr_pipeline *p, const void *src, int src_u8, int c, int h, int w, float *dst, int oh,
                           int ow, uint64_t seed, uint64_t epoch, uint64_t sample, uint64_t view, vr_aug_scratch *s);
void vr_aug_scratch_free(vr_aug_scratch *s);
#endif
