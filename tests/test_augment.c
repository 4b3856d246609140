/* test_augment.c: augmentation pipelines: exact properties of each step (hflip twice = identity,
 * normalize values, a full-image crop = identity, solarize, grayscale, blur of a constant, erase
 * area, noise statistics, jitter factors), determinism by (seed, epoch, sample, view) and
 * independence from the thread count, per-image sample ids (vr_pipeline_apply_ids), and argument
 * errors. */
#include "testutil.h"

/* a C x H x W f32 image with values in [0, 1) */
static vr_tensor *img(int c, int h, int w, uint64_t seed) {
  vr_tensor *t = tu_rand(VR_F32, 3, TU_SHAPE(c, h, w), seed), *u = NULL;
  OK(vr_tensor_to_dtype(t, VR_F32, &u));
  float *p = vr_tensor_data(u);
  for (int64_t k = 0; k < vr_tensor_numel(u); k++) p[k] = 0.5f * (p[k] + 1);
  vr_tensor_free(t);
  return u;
}

static vr_tensor *run(vr_pipeline *p, vr_tensor *x, int oh, int ow, uint64_t seed, uint64_t epoch, uint64_t sample,
                      uint64_t view) {
  vr_tensor *y = NULL;
  OK(vr_pipeline_apply(p, x, oh, ow, seed, epoch, sample, view, &y));
  return y;
}

static double maxdiff(vr_tensor *a, vr_tensor *b) {
  ck_assert_int_eq(vr_tensor_numel(a), vr_tensor_numel(b));
  const float *x = vr_tensor_data(a), *y = vr_tensor_data(b);
  double m = 0;
  for (int64_t k = 0; k < vr_tensor_numel(a); k++) m = fmax(m, fabs((double)x[k] - y[k]));
  return m;
}

START_TEST(hflip) {
  vr_tensor *x = img(3, 5, 7, 1);
  vr_pipeline *p = NULL;
  OK(vr_pipeline_new(&p));
  OK(vr_pipeline_add_hflip(p, 1));
  vr_tensor *y = run(p, x, 0, 0, 1, 0, 0, 0);
  const float *a = vr_tensor_data(x), *b = vr_tensor_data(y);
  for (int c = 0; c < 3; c++)
    for (int i = 0; i < 5; i++)
      for (int j = 0; j < 7; j++) ck_assert(b[(c * 5 + i) * 7 + j] == a[(c * 5 + i) * 7 + 6 - j]);
  OK(vr_pipeline_add_hflip(p, 1));
  ck_assert_int_eq(vr_pipeline_length(p), 2);
  vr_tensor *z = run(p, x, 0, 0, 1, 0, 0, 0);
  ck_assert_double_eq(maxdiff(z, x), 0);
  vr_tensor_free(y);
  vr_tensor_free(z);
  /* p = 0 never flips; p = 0.5 flips about half the samples */
  vr_pipeline *q = NULL;
  OK(vr_pipeline_new(&q));
  OK(vr_pipeline_add_hflip(q, 0.5));
  int flips = 0;
  for (int s = 0; s < 400; s++) {
    vr_tensor *v = run(q, x, 0, 0, 9, 0, (uint64_t)s, 0);
    flips += maxdiff(v, x) > 0;
    vr_tensor_free(v);
  }
  ck_assert_msg(flips > 160 && flips < 240, "flips %d of 400", flips);
  vr_pipeline_free(q);
  vr_pipeline_free(p);
  vr_tensor_free(x);
}
END_TEST

START_TEST(normalize) {
  vr_tensor *x = img(3, 4, 4, 2);
  vr_pipeline *p = NULL;
  OK(vr_pipeline_new(&p));
  OK(vr_pipeline_add_normalize(p, 3, TU_VALS(0.1, 0.2, 0.3), TU_VALS(0.5, 0.25, 2)));
  vr_tensor *y = run(p, x, 0, 0, 0, 0, 0, 0);
  const float *a = vr_tensor_data(x), *b = vr_tensor_data(y);
  const double m[3] = {0.1, 0.2, 0.3}, s[3] = {0.5, 0.25, 2};
  for (int c = 0; c < 3; c++)
    for (int k = 0; k < 16; k++) ck_assert(fabs(b[c * 16 + k] - (a[c * 16 + k] - m[c]) / s[c]) < 1e-5);
  vr_tensor_free(y);
  /* one value for every channel; u8 input is divided by 255 */
  vr_pipeline *q = NULL;
  OK(vr_pipeline_new(&q));
  OK(vr_pipeline_add_normalize(q, 1, TU_VALS(0.286), TU_VALS(0.353)));
  vr_tensor *u = tu_tensor(VR_U8, 3, TU_SHAPE(1, 1, 3), TU_VALS(0, 128, 255));
  y = run(q, u, 0, 0, 0, 0, 0, 0);
  tu_assert_values(y, TU_VALS(-0.286 / 0.353, (128 / 255.0 - 0.286) / 0.353, (1 - 0.286) / 0.353), 3, 1e-6, "u8");
  vr_tensor_free(y);
  /* a 3-channel normalize does not fit a 1-channel image */
  FAILS(vr_pipeline_apply(p, u, 0, 0, 0, 0, 0, 0, &y), VR_E_SHAPE, "channels");
  vr_tensor_free(u);
  vr_pipeline_free(p);
  vr_pipeline_free(q);
  vr_tensor_free(x);
}
END_TEST

START_TEST(crop) {
  vr_tensor *x = img(3, 9, 9, 3);
  vr_pipeline *p = NULL;
  OK(vr_pipeline_new(&p));
  OK(vr_pipeline_add_crop(p, 1, 1, 1, 1, 0, 0, 1));
  for (int s = 0; s < 5; s++) {
    vr_tensor *y = run(p, x, 0, 0, 4, 1, (uint64_t)s, 0);
    ck_assert_msg(maxdiff(y, x) < 1e-6, "full crop differs by %g", maxdiff(y, x));
    vr_tensor_free(y);
  }
  vr_pipeline_free(p);
  /* a random crop of a constant image resized to another size stays constant */
  vr_tensor *c = NULL;
  OK(vr_tensor_full(3, TU_SHAPE(1, 20, 30), 0.25, VR_F32, VR_CPU, &c));
  OK(vr_pipeline_new(&p));
  OK(vr_pipeline_add_crop(p, 0.08, 1, 3.0 / 4, 4.0 / 3, 0, 0, 1));
  vr_tensor *y = run(p, c, 12, 16, 5, 0, 0, 0);
  ck_assert_int_eq(vr_tensor_size(y, 1), 12);
  ck_assert_int_eq(vr_tensor_size(y, 2), 16);
  const float *v = vr_tensor_data(y);
  for (int k = 0; k < 12 * 16; k++) ck_assert(fabs(v[k] - 0.25) < 1e-6);
  vr_tensor_free(y);
  /* crops of a horizontal ramp are monotone and stay within the ramp's range */
  vr_tensor *r = NULL;
  OK(vr_tensor_zeros(3, TU_SHAPE(1, 16, 16), VR_F32, VR_CPU, &r));
  float *rp = vr_tensor_data(r);
  for (int i = 0; i < 16; i++)
    for (int j = 0; j < 16; j++) rp[i * 16 + j] = (float)j / 15;
  for (int s = 0; s < 20; s++) {
    y = run(p, r, 8, 8, 6, 0, (uint64_t)s, 0);
    v = vr_tensor_data(y);
    for (int i = 0; i < 8; i++)
      for (int j = 1; j < 8; j++) ck_assert(v[i * 8 + j] >= v[i * 8 + j - 1] - 1e-6 && v[i * 8 + j] <= 1 + 1e-6);
    vr_tensor_free(y);
  }
  /* a batch: image k is sample base + k */
  vr_tensor *b = tu_rand(VR_F32, 4, TU_SHAPE(3, 1, 16, 16), 8), *b1 = NULL, *y1 = NULL;
  y = run(p, b, 8, 8, 6, 2, 10, 1);
  OK(vr_select(b, 0, 1, &b1));
  y1 = run(p, b1, 8, 8, 6, 2, 11, 1);
  const float *yb = vr_tensor_data(y), *ys = vr_tensor_data(y1);
  for (int k = 0; k < 64; k++) ck_assert(yb[64 + k] == ys[k]);
  vr_tensor_free(b);
  vr_tensor_free(b1);
  vr_tensor_free(y);
  vr_tensor_free(y1);
  vr_tensor_free(r);
  vr_tensor_free(c);
  vr_pipeline_free(p);
  vr_tensor_free(x);
}
END_TEST

START_TEST(pixel_ops) {
  vr_tensor *x = img(3, 8, 8, 4), *y = NULL;
  const float *a = vr_tensor_data(x);
  vr_pipeline *p = NULL;
  /* solarize */
  OK(vr_pipeline_new(&p));
  OK(vr_pipeline_add_solarize(p, 0.5, 1));
  y = run(p, x, 0, 0, 0, 0, 0, 0);
  const float *b = vr_tensor_data(y);
  for (int k = 0; k < 192; k++) ck_assert(b[k] == (a[k] >= 0.5f ? 1 - a[k] : a[k]));
  vr_tensor_free(y);
  vr_pipeline_free(p);
  /* grayscale: three equal channels, the luma of the input */
  OK(vr_pipeline_new(&p));
  OK(vr_pipeline_add_grayscale(p, 1));
  y = run(p, x, 0, 0, 0, 0, 0, 0);
  b = vr_tensor_data(y);
  for (int k = 0; k < 64; k++) {
    float g = 0.299f * a[k] + 0.587f * a[64 + k] + 0.114f * a[128 + k];
    ck_assert(fabs(b[k] - g) < 1e-6 && b[64 + k] == b[k] && b[128 + k] == b[k]);
  }
  vr_tensor_free(y);
  vr_pipeline_free(p);
  /* blur keeps a constant image, lowers the variance of noise, and keeps the mean roughly */
  OK(vr_pipeline_new(&p));
  OK(vr_pipeline_add_blur(p, 0.5, 2, 0, 1));
  vr_tensor *c = NULL;
  OK(vr_tensor_full(3, TU_SHAPE(3, 8, 8), 0.7, VR_F32, VR_CPU, &c));
  y = run(p, c, 0, 0, 1, 0, 0, 0);
  b = vr_tensor_data(y);
  for (int k = 0; k < 192; k++) ck_assert(fabs(b[k] - 0.7) < 1e-5);
  vr_tensor_free(y);
  y = run(p, x, 0, 0, 1, 0, 0, 0);
  b = vr_tensor_data(y);
  double va = 0, vb = 0, ma = 0, mb = 0;
  for (int k = 0; k < 192; k++) ma += a[k] / 192, mb += b[k] / 192;
  for (int k = 0; k < 192; k++) va += (a[k] - ma) * (a[k] - ma), vb += (b[k] - mb) * (b[k] - mb);
  ck_assert_msg(vb < 0.8 * va && fabs(ma - mb) < 0.05, "blur: var %g -> %g, mean %g -> %g", va, vb, ma, mb);
  vr_tensor_free(y);
  vr_tensor_free(c);
  vr_pipeline_free(p);
  /* erase: a rectangle of the given value, its area within the scale range */
  OK(vr_pipeline_new(&p));
  OK(vr_pipeline_add_erase(p, 0.1, 0.3, 0.5, 2, -3, 1));
  vr_tensor *big = img(1, 20, 20, 5);
  for (int s = 0; s < 20; s++) {
    y = run(p, big, 0, 0, 2, 0, (uint64_t)s, 0);
    b = vr_tensor_data(y);
    int n = 0;
    for (int k = 0; k < 400; k++) n += b[k] == -3.0f;
    ck_assert_msg(n >= 0.05 * 400 && n <= 0.35 * 400, "erased %d of 400", n);
    vr_tensor_free(y);
  }
  vr_tensor_free(big);
  vr_pipeline_free(p);
  /* gaussian noise: mean ~0, std ~ the given one */
  OK(vr_pipeline_new(&p));
  OK(vr_pipeline_add_noise(p, 0.1, 1));
  OK(vr_tensor_zeros(3, TU_SHAPE(1, 64, 64), VR_F32, VR_CPU, &c));
  y = run(p, c, 0, 0, 3, 0, 0, 0);
  b = vr_tensor_data(y);
  double m = 0, s2 = 0;
  for (int k = 0; k < 4096; k++) m += b[k] / 4096, s2 += (double)b[k] * b[k] / 4096;
  ck_assert_msg(fabs(m) < 0.01 && fabs(sqrt(s2) - 0.1) < 0.01, "noise mean %g std %g", m, sqrt(s2));
  vr_tensor_free(y);
  vr_tensor_free(c);
  vr_pipeline_free(p);
  vr_tensor_free(x);
}
END_TEST

START_TEST(jitter) {
  /* brightness only on one channel: every unclipped pixel scales by the same factor in [0.6, 1.4] */
  vr_tensor *x = img(1, 6, 6, 6);
  const float *a = vr_tensor_data(x);
  vr_pipeline *p = NULL;
  OK(vr_pipeline_new(&p));
  OK(vr_pipeline_add_jitter(p, 0.4, 0, 0, 0, 1));
  for (int s = 0; s < 10; s++) {
    vr_tensor *y = run(p, x, 0, 0, 7, 0, (uint64_t)s, 0);
    const float *b = vr_tensor_data(y);
    double f = -1;
    for (int k = 0; k < 36; k++) {
      if (b[k] >= 1 || a[k] < 0.05) continue;
      double r = b[k] / a[k];
      if (f < 0) f = r;
      ck_assert(fabs(r - f) < 1e-4);
    }
    ck_assert(f >= 0.6 - 1e-6 && f <= 1.4 + 1e-6);
    vr_tensor_free(y);
  }
  vr_pipeline_free(p);
  /* full colour jitter on RGB stays in [0, 1]; saturation 0-factor-free hue shift keeps the luma range */
  vr_tensor *c = img(3, 6, 6, 7);
  OK(vr_pipeline_new(&p));
  OK(vr_pipeline_add_jitter(p, 0.4, 0.4, 0.4, 0.1, 1));
  vr_tensor *y = run(p, c, 0, 0, 8, 0, 0, 0);
  const float *b = vr_tensor_data(y);
  for (int k = 0; k < 108; k++) ck_assert(b[k] >= 0 && b[k] <= 1);
  ck_assert(maxdiff(y, c) > 1e-3);
  vr_tensor_free(y);
  vr_pipeline_free(p);
  vr_tensor_free(c);
  vr_tensor_free(x);
}
END_TEST

static vr_pipeline *full_pipeline(void) {
  vr_pipeline *p = NULL;
  OK(vr_pipeline_new(&p));
  OK(vr_pipeline_add_crop(p, 0.2, 1, 0.75, 1.33, 0, 0, 1));
  OK(vr_pipeline_add_hflip(p, 0.5));
  OK(vr_pipeline_add_jitter(p, 0.4, 0.4, 0.2, 0.1, 0.8));
  OK(vr_pipeline_add_grayscale(p, 0.2));
  OK(vr_pipeline_add_blur(p, 0.1, 2, 0, 0.5));
  OK(vr_pipeline_add_solarize(p, 0.5, 0.2));
  OK(vr_pipeline_add_noise(p, 0.05, 0.5));
  OK(vr_pipeline_add_erase(p, 0.02, 0.2, 0.3, 3.3, 0, 0.25));
  OK(vr_pipeline_add_normalize(p, 3, TU_VALS(0.5, 0.5, 0.5), TU_VALS(0.25, 0.25, 0.25)));
  return p;
}

START_TEST(determinism) {
  vr_pipeline *p = full_pipeline();
  vr_tensor *x = tu_rand(VR_F32, 4, TU_SHAPE(16, 3, 12, 12), 9), *xu = NULL;
  OK(vr_tensor_to_dtype(x, VR_U8, &xu)); /* values 0 (and some truncated to 0): fine, any u8 content */
  int prev = vr_num_threads();
  vr_set_num_threads(1);
  vr_tensor *y1 = run(p, x, 10, 10, 42, 3, 100, 1);
  vr_set_num_threads(prev > 1 ? prev : 2);
  vr_tensor *y2 = run(p, x, 10, 10, 42, 3, 100, 1);
  vr_set_num_threads(prev);
  ck_assert_double_eq(maxdiff(y1, y2), 0);
  /* each key changes the views */
  vr_tensor *ys = run(p, x, 10, 10, 43, 3, 100, 1), *ye = run(p, x, 10, 10, 42, 4, 100, 1);
  vr_tensor *yv = run(p, x, 10, 10, 42, 3, 100, 2), *yn = run(p, x, 10, 10, 42, 3, 101, 1);
  ck_assert(maxdiff(y1, ys) > 0.1 && maxdiff(y1, ye) > 0.1 && maxdiff(y1, yv) > 0.1 && maxdiff(y1, yn) > 0.1);
  /* a pipeline copy made later gives the same views */
  vr_pipeline *q = full_pipeline();
  vr_tensor *yq = run(q, x, 10, 10, 42, 3, 100, 1);
  ck_assert_double_eq(maxdiff(y1, yq), 0);
  vr_tensor_free(yq);
  vr_pipeline_free(q);
  vr_tensor *yu = run(p, xu, 0, 0, 1, 0, 0, 0);
  ck_assert_int_eq(vr_tensor_size(yu, 3), 12);
  vr_tensor_free(yu);
  vr_tensor_free(y1);
  vr_tensor_free(y2);
  vr_tensor_free(ys);
  vr_tensor_free(ye);
  vr_tensor_free(yv);
  vr_tensor_free(yn);
  vr_tensor_free(x);
  vr_tensor_free(xu);
  vr_pipeline_free(p);
}
END_TEST

/* vr_pipeline_apply_ids: image k is sample ids[k]; consecutive ids are vr_pipeline_apply */
START_TEST(sample_ids) {
  vr_pipeline *p = full_pipeline();
  vr_tensor *x = tu_rand(VR_F32, 4, TU_SHAPE(5, 3, 11, 9), 4), *xu = NULL, *y = NULL, *z = NULL;
  OK(vr_tensor_to_dtype(x, VR_U8, &xu));
  int64_t idv[5] = {17, 3, 1LL << 33, 3, 0};
  vr_tensor *ids = NULL, *seq = NULL;
  OK(vr_tensor_from_buffer(idv, 1, TU_SHAPE(5), VR_I64, VR_CPU, &ids));
  for (int u = 0; u < 2; u++) {
    vr_tensor *in = u ? xu : x;
    OK(vr_pipeline_apply_ids(p, in, ids, 8, 7, 42, 3, 1, &y));
    ck_assert(vr_tensor_ndim(y) == 4 && vr_tensor_size(y, 0) == 5 && vr_tensor_size(y, 2) == 8 && vr_tensor_size(y, 3) == 7);
    for (int k = 0; k < 5; k++) { /* image k alone, as sample ids[k] */
      vr_tensor *one = NULL, *r = NULL, *yk = NULL;
      OK(vr_select(in, 0, k, &one));
      OK(vr_pipeline_apply(p, one, 8, 7, 42, 3, (uint64_t)idv[k], 1, &r));
      OK(vr_select(y, 0, k, &yk));
      ck_assert_double_eq(maxdiff(r, yk), 0);
      vr_tensor_free(one);
      vr_tensor_free(r);
      vr_tensor_free(yk);
    }
    vr_tensor_free(y);
  }
  /* ids 100..104 equal sample 100; a strided ids view works */
  int64_t sv[10] = {100, -1, 101, -1, 102, -1, 103, -1, 104, -1};
  vr_tensor *sbase = NULL;
  OK(vr_tensor_from_buffer(sv, 1, TU_SHAPE(10), VR_I64, VR_CPU, &sbase));
  OK(vr_slice(sbase, 0, 0, 10, 2, &seq));
  OK(vr_pipeline_apply_ids(p, x, seq, 0, 0, 42, 3, 1, &y));
  OK(vr_pipeline_apply(p, x, 0, 0, 42, 3, 100, 1, &z));
  ck_assert_double_eq(maxdiff(y, z), 0);
  vr_tensor_free(y);
  vr_tensor_free(z);
  y = NULL;
  /* one C x H x W image and one id */
  vr_tensor *one = NULL, *id1 = NULL;
  OK(vr_select(x, 0, 2, &one));
  OK(vr_select(ids, 0, 2, &id1));
  OK(vr_pipeline_apply_ids(p, one, id1, 0, 0, 42, 3, 1, &y));
  ck_assert_int_eq(vr_tensor_ndim(y), 3);
  vr_tensor_free(y);
  y = NULL;
  /* errors name the ids */
  vr_tensor *idf = NULL, *id4 = NULL;
  OK(vr_tensor_to_dtype(ids, VR_F32, &idf));
  OK(vr_narrow(ids, 0, 0, 4, &id4));
  FAILS(vr_pipeline_apply_ids(p, x, NULL, 0, 0, 0, 0, 0, &y), VR_E_ARG, "ids");
  FAILS(vr_pipeline_apply_ids(p, x, idf, 0, 0, 0, 0, 0, &y), VR_E_DTYPE, "ids");
  FAILS(vr_pipeline_apply_ids(p, x, id4, 0, 0, 0, 0, 0, &y), VR_E_SHAPE, "ids");
  FAILS(vr_pipeline_apply_ids(p, one, ids, 0, 0, 0, 0, 0, &y), VR_E_SHAPE, "ids");
  FAILS(vr_pipeline_apply_ids(NULL, x, ids, 0, 0, 0, 0, 0, &y), VR_E_ARG, "p:");
  ck_assert_ptr_null(y);
  vr_tensor *objs[] = {x, xu, ids, seq, sbase, one, id1, idf, id4};
  for (size_t k = 0; k < sizeof objs / sizeof *objs; k++) vr_tensor_free(objs[k]);
  vr_pipeline_free(p);
}
END_TEST

START_TEST(errors) {
  vr_pipeline *p = NULL;
  OK(vr_pipeline_new(&p));
  FAILS(vr_pipeline_add_hflip(p, 1.5), VR_E_ARG, "prob");
  FAILS(vr_pipeline_add_hflip(NULL, 0.5), VR_E_ARG, "p:");
  FAILS(vr_pipeline_add_crop(p, 0.5, 0.2, 0.75, 1.33, 0, 0, 1), VR_E_ARG, "scale");
  FAILS(vr_pipeline_add_crop(p, 0.2, 1, 0, 1.33, 0, 0, 1), VR_E_ARG, "ratio");
  FAILS(vr_pipeline_add_crop(p, 0.2, 1, 0.75, 1.33, -1, 0, 1), VR_E_ARG, "out_h");
  FAILS(vr_pipeline_add_blur(p, 0, 1, 0, 1), VR_E_ARG, "sigma");
  FAILS(vr_pipeline_add_blur(p, 0.1, 1, 4, 1), VR_E_ARG, "kernel_size");
  FAILS(vr_pipeline_add_jitter(p, -1, 0, 0, 0, 1), VR_E_ARG, "brightness");
  FAILS(vr_pipeline_add_jitter(p, 0, 0, 0, 0.7, 1), VR_E_ARG, "hue");
  FAILS(vr_pipeline_add_normalize(p, 2, TU_VALS(0, 0), TU_VALS(1, 0)), VR_E_ARG, "std");
  FAILS(vr_pipeline_add_normalize(p, 9, TU_VALS(0), TU_VALS(1)), VR_E_ARG, "n:");
  FAILS(vr_pipeline_add_noise(p, -1, 1), VR_E_ARG, "std");
  FAILS(vr_pipeline_add_erase(p, 0.1, 2, 0.3, 3, 0, 1), VR_E_ARG, "scale");
  ck_assert_int_eq(vr_pipeline_length(p), 0);
  vr_tensor *x = tu_rand(VR_F64, 3, TU_SHAPE(1, 4, 4), 1), *y = NULL, *v = tu_rand(VR_F32, 2, TU_SHAPE(4, 4), 1);
  FAILS(vr_pipeline_apply(p, x, 0, 0, 0, 0, 0, 0, &y), VR_E_DTYPE, "images");
  FAILS(vr_pipeline_apply(p, v, 0, 0, 0, 0, 0, 0, &y), VR_E_SHAPE, "images");
  FAILS(vr_pipeline_apply(NULL, v, 0, 0, 0, 0, 0, 0, &y), VR_E_ARG, "p:");
  ck_assert_ptr_null(y);
  vr_tensor_free(x);
  vr_tensor_free(v);
  vr_pipeline_free(p);
}
END_TEST

static Suite *augment_suite(void) {
  Suite *s = suite_create("augment");
  TCase *tc = tcase_create("pipeline");
  tcase_add_test(tc, hflip);
  tcase_add_test(tc, normalize);
  tcase_add_test(tc, crop);
  tcase_add_test(tc, pixel_ops);
  tcase_add_test(tc, jitter);
  tcase_add_test(tc, determinism);
  tcase_add_test(tc, sample_ids);
  tcase_add_test(tc, errors);
  suite_add_tcase(s, tc);
  return s;
}
VR_TEST_MAIN(augment_suite)
