/* test_cuda_augment.c: the CUDA augmentation kernel (kernels/cuda/augment.cu) against the CPU
 * kernel with the same vr_kernel_args: every step type on its own and in full pipelines, 1 and 3
 * channels, odd sizes, u8 and f32 input, with and without sample ids, resized outputs, images too
 * large for shared memory, and the public vr_pipeline_apply / vr_pipeline_apply_ids on CUDA
 * tensors. The random parameters are the same on both devices (core/data/aug_math.h), so views
 * agree to 1e-4 (the device's double log / exp / cos differ from glibc's in the last bits only).
 *
 * Without a GPU each case prints "SKIP <case>: no CUDA device" and passes;
 * VISREG_TEST_CUDA_AS_CPU=1 runs the harness CPU against CPU; tools/cuda-emu/run runs it against
 * the CUDA kernel emulated on the CPU. */
#include "testutil.h"
#include <time.h>


#define ATOL 1e-4

/* N x C x H x W images: u8 from a hash, or f32 in [0, 1] */
static vr_tensor *images(int64_t n, int c, int h, int w, int u8, uint32_t salt) {
  int64_t shape[4] = {n, c, h, w};
  vr_tensor *t = NULL;
  OK(vr_tensor_empty(4, shape, u8 ? VR_U8 : VR_F32, VR_CPU, &t));
  int64_t m = vr_tensor_numel(t);
  for (int64_t k = 0; k < m; k++) {
    uint32_t v = (uint32_t)(k * 2654435761u + salt * 40503u);
    v ^= v >> 15;
    v *= 2246822519u;
    v ^= v >> 13;
    if (u8) ((uint8_t *)vr_tensor_data(t))[k] = (uint8_t)(v >> 24);
    else ((float *)vr_tensor_data(t))[k] = (float)(v >> 8) / 16777216.0f;
  }
  return t;
}

static vr_tensor *ids_of(int64_t n, uint64_t salt) {
  vr_tensor *t = NULL;
  OK(vr_tensor_empty(1, &n, VR_I64, VR_CPU, &t));
  int64_t *p = vr_tensor_data(t);
  for (int64_t k = 0; k < n; k++) p[k] = (int64_t)((k * 7919 + salt * 104729) % 60000) + (k == 1 ? (1LL << 40) : 0);
  return t;
}

/* one pipeline kind for the table below */
typedef struct pcase {
  const char *name;
  void (*build)(vr_pipeline *p, int c);
} pcase;

static void b_crop(vr_pipeline *p, int c) { OK(vr_pipeline_add_crop(p, 0.08, 1, 0.75, 4.0 / 3, 0, 0, 1)); }
static void b_crop_sized(vr_pipeline *p, int c) { OK(vr_pipeline_add_crop(p, 0.3, 1, 0.5, 2, 20, 22, 0.7)); }
static void b_crop_fallback(vr_pipeline *p, int c) { OK(vr_pipeline_add_crop(p, 0.9, 1, 3, 4, 0, 0, 1)); }
static void b_resize(vr_pipeline *p, int c) { OK(vr_pipeline_add_resize(p, 19, 23)); }
static void b_hflip(vr_pipeline *p, int c) {
  OK(vr_pipeline_add_hflip(p, 1));
  OK(vr_pipeline_add_hflip(p, 0.5));
}
static void b_bright(vr_pipeline *p, int c) { OK(vr_pipeline_add_jitter(p, 0.8, 0, 0, 0, 1)); }
static void b_contrast(vr_pipeline *p, int c) { OK(vr_pipeline_add_jitter(p, 0, 0.8, 0, 0, 1)); }
static void b_saturation(vr_pipeline *p, int c) { OK(vr_pipeline_add_jitter(p, 0, 0, 0.8, 0, 1)); }
static void b_hue(vr_pipeline *p, int c) { OK(vr_pipeline_add_jitter(p, 0, 0, 0, 0.4, 1)); }
static void b_jitter(vr_pipeline *p, int c) { OK(vr_pipeline_add_jitter(p, 0.4, 0.4, 0.3, 0.1, 0.8)); }
static void b_gray(vr_pipeline *p, int c) {
  OK(vr_pipeline_add_jitter(p, 0, 0, 0, 0.2, 1));
  OK(vr_pipeline_add_grayscale(p, 1));
}
static void b_blur(vr_pipeline *p, int c) {
  OK(vr_pipeline_add_blur(p, 0.1, 2, 0, 1));
  OK(vr_pipeline_add_blur(p, 1, 3, 7, 0.5));
}
static void b_solarize(vr_pipeline *p, int c) {
  OK(vr_pipeline_add_jitter(p, 0.3, 0, 0, 0, 1));
  OK(vr_pipeline_add_solarize(p, 0.5, 1));
}
static void b_erase(vr_pipeline *p, int c) {
  OK(vr_pipeline_add_erase(p, 0.02, 0.33, 0.3, 3.3, 0.5, 1));
  OK(vr_pipeline_add_erase(p, 0.5, 0.9, 0.3, 3.3, -1, 0.5));
}
static void b_noise(vr_pipeline *p, int c) { OK(vr_pipeline_add_noise(p, 0.1, 1)); }
static void b_normalize(vr_pipeline *p, int c) {
  if (c == 3) OK(vr_pipeline_add_normalize(p, 3, (const double[]){0.4, 0.5, 0.6}, (const double[]){0.2, 0.25, 0.3}));
  else OK(vr_pipeline_add_normalize(p, 1, (const double[]){0.286}, (const double[]){0.353}));
}
/* everything, each step with probability < 1, as a recipe would */
static void b_full(vr_pipeline *p, int c) {
  OK(vr_pipeline_add_crop(p, 0.2, 1, 0.75, 1.33, 0, 0, 0.9));
  OK(vr_pipeline_add_hflip(p, 0.5));
  OK(vr_pipeline_add_jitter(p, 0.4, 0.4, 0.3, 0.1, 0.8));
  OK(vr_pipeline_add_grayscale(p, 0.3));
  OK(vr_pipeline_add_blur(p, 0.1, 2, 0, 0.5));
  OK(vr_pipeline_add_solarize(p, 0.5, 0.3));
  OK(vr_pipeline_add_erase(p, 0.02, 0.3, 0.3, 3.3, 0.5, 0.5));
  OK(vr_pipeline_add_noise(p, 0.05, 0.5));
  OK(vr_pipeline_add_resize(p, 20, 18));
  b_normalize(p, c);
}
/* the Fashion-MNIST recipe's view */
static void b_recipe(vr_pipeline *p, int c) {
  OK(vr_pipeline_add_crop(p, 0.3, 1, 0.75, 4.0 / 3, 0, 0, 1));
  OK(vr_pipeline_add_hflip(p, 0.5));
  OK(vr_pipeline_add_jitter(p, 0.4, 0.4, 0, 0, 0.8));
  OK(vr_pipeline_add_solarize(p, 0.5, 0.2));
  b_normalize(p, c);
}

/* 15 steps: more than the kernel's arguments carry (the steps go to device memory) */
static void b_long(vr_pipeline *p, int c) {
  b_full(p, c);
  OK(vr_pipeline_add_hflip(p, 0.5));
  OK(vr_pipeline_add_jitter(p, 0.2, 0.2, 0.2, 0.05, 0.5));
  OK(vr_pipeline_add_blur(p, 0.5, 1, 3, 0.5));
  OK(vr_pipeline_add_noise(p, 0.01, 0.5));
  OK(vr_pipeline_add_solarize(p, 0.1, 0.5));
  ck_assert_int_eq(vr_pipeline_length(p), 15);
}

static const pcase PIPES[] = {
    {"crop", b_crop},         {"crop_sized", b_crop_sized}, {"crop_fallback", b_crop_fallback},
    {"resize", b_resize},     {"hflip", b_hflip},           {"brightness", b_bright},
    {"contrast", b_contrast}, {"saturation", b_saturation}, {"hue", b_hue},
    {"jitter", b_jitter},     {"grayscale", b_gray},        {"blur", b_blur},
    {"solarize", b_solarize}, {"erase", b_erase},           {"noise", b_noise},
    {"normalize", b_normalize}, {"full", b_full},           {"recipe", b_recipe},
    {"long", b_long},
};

/* image geometry: channels, size, dtype, the view's size (0: the input's), sample ids or not */
typedef struct geo {
  int c, h, w, u8, oh, ow, ids;
} geo;

/* runs pipeline pc on images of geometry g through the kernel on both devices */
static void parity(const pcase *pc, geo g, int64_t n, uint64_t seed, uint64_t epoch, uint64_t view) {
  vr_pipeline *p = NULL;
  OK(vr_pipeline_new(&p));
  pc->build(p, g.c);
  int oh = g.oh ? g.oh : g.h, ow = g.ow ? g.ow : g.w;
  vr_kernel_args a = {.n_in = g.ids ? 2 : 1, .n_out = 1,
                      .i = {(int64_t)seed, (int64_t)epoch, 1000, (int64_t)view}, .ctx = p};
  a.in[0] = images(n, g.c, g.h, g.w, g.u8, (uint32_t)(seed + 3 * view));
  if (g.ids) a.in[1] = ids_of(n, seed);
  a.out[0] = poisoned(VR_F32, 4, (const int64_t[]){n, g.c, oh, ow});
  char what[200];
  snprintf(what, sizeof what, "augment %s %s %dx%dx%d -> %dx%d%s", pc->name, g.u8 ? "u8" : "f32", g.c, g.h, g.w, oh, ow,
           g.ids ? " ids" : "");
  run_cmp(VR_OP_AUGMENT, 0, &a, 0, ATOL, what);
  free_args(&a);
  vr_pipeline_free(p);
}

static const geo GEOS[] = {
    {1, 28, 28, 1, 0, 0, 1},  /* Fashion-MNIST */
    {3, 13, 17, 0, 0, 0, 0},  /* odd, f32 */
    {3, 32, 32, 1, 24, 20, 1}, /* CIFAR, a smaller view */
    {1, 7, 5, 1, 9, 11, 0},   /* tiny, a larger view */
    {3, 1, 6, 0, 2, 3, 1},    /* one row */
};

START_TEST(test_steps) {
  NEED_DEV();
  for (size_t k = 0; k < sizeof PIPES / sizeof *PIPES; k++)
    for (size_t g = 0; g < sizeof GEOS / sizeof *GEOS; g++) parity(&PIPES[k], GEOS[g], 5, 42 + k, 3, g % 2);
}
END_TEST

/* images whose scratch does not fit in shared memory, and a contrast mean over more than 4096 values
 * (the CUDA kernel's tree reduction) */
START_TEST(test_large) {
  NEED_DEV();
  const geo big3 = {3, 48, 40, 1, 0, 0, 1}, big1 = {1, 70, 70, 1, 64, 72, 1}, bigf = {3, 40, 45, 0, 50, 30, 0};
  for (size_t k = 0; k < sizeof PIPES / sizeof *PIPES; k++) {
    const char *nm = PIPES[k].name;
    if (strcmp(nm, "full") && strcmp(nm, "contrast") && strcmp(nm, "jitter") && strcmp(nm, "blur") &&
        strcmp(nm, "crop_sized"))
      continue;
    parity(&PIPES[k], big3, 4, 7, 1, 0);
    parity(&PIPES[k], big1, 4, 8, 2, 1);
    parity(&PIPES[k], bigf, 3, 9, 0, 2);
  }
}
END_TEST

/* many images (more than one image per block), large seeds, epochs and views */
START_TEST(test_batch_keys) {
  NEED_DEV();
  parity(&PIPES[16], (geo){1, 28, 28, 1, 0, 0, 1}, 300, 0xdeadbeefcafeull, 123456, 7);
  parity(&PIPES[17], (geo){1, 28, 28, 1, 0, 0, 0}, 300, 1, (1ull << 31) - 1, 0xffffffffu);
  parity(&PIPES[18], (geo){3, 20, 24, 1, 0, 0, 1}, 9, 5, 6, 7);
  /* an empty pipeline: u8 / 255 copied, or resized */
  vr_pipeline *p = NULL;
  OK(vr_pipeline_new(&p));
  vr_kernel_args a = {.n_in = 1, .n_out = 1, .i = {1, 2, 3, 4}, .ctx = p};
  a.in[0] = images(3, 2, 9, 10, 1, 5);
  a.out[0] = poisoned(VR_F32, 4, (const int64_t[]){3, 2, 12, 7});
  run_cmp(VR_OP_AUGMENT, 0, &a, 0, ATOL, "augment empty pipeline, 2 channels, resized");
  free_args(&a);
  vr_pipeline_free(p);
}
END_TEST

/* the public front-end on device tensors: ids on the CPU or on the device, one image or a batch */
START_TEST(test_api) {
  NEED_DEV();
  vr_pipeline *p = NULL;
  OK(vr_pipeline_new(&p));
  b_full(p, 3);
  vr_tensor *x = images(6, 3, 21, 19, 1, 9), *ids = ids_of(6, 4), *xd = NULL, *idd = NULL;
  OK(vr_tensor_to_device(x, DEV, &xd));
  OK(vr_tensor_to_device(ids, DEV, &idd));
  vr_tensor *yc = NULL, *yd = NULL, *yd2 = NULL, *zc = NULL, *zd = NULL, *one = NULL, *oned = NULL, *y1 = NULL, *y1d = NULL;
  OK(vr_pipeline_apply_ids(p, x, ids, 16, 15, 11, 2, 1, &yc));
  OK(vr_pipeline_apply_ids(p, xd, ids, 16, 15, 11, 2, 1, &yd));
  OK(vr_pipeline_apply_ids(p, xd, idd, 16, 15, 11, 2, 1, &yd2));
  ck_assert_int_eq(vr_tensor_device(yd), DEV);
  cmp(yc, yd, 0, ATOL, "apply_ids, CPU ids");
  cmp(yc, yd2, 0, ATOL, "apply_ids, device ids");
  OK(vr_pipeline_apply(p, x, 0, 0, 5, 6, 70, 2, &zc));
  OK(vr_pipeline_apply(p, xd, 0, 0, 5, 6, 70, 2, &zd));
  cmp(zc, zd, 0, ATOL, "apply, consecutive samples");
  OK(vr_select(xd, 0, 2, &oned));
  OK(vr_select(x, 0, 2, &one));
  OK(vr_pipeline_apply(p, one, 0, 0, 5, 6, 72, 2, &y1));
  OK(vr_pipeline_apply(p, oned, 0, 0, 5, 6, 72, 2, &y1d));
  ck_assert_int_eq(vr_tensor_ndim(y1d), 3);
  cmp(y1, y1d, 0, ATOL, "apply, one image at an offset");
  vr_tensor *objs[] = {x, ids, xd, idd, yc, yd, yd2, zc, zd, one, oned, y1, y1d};
  for (size_t k = 0; k < sizeof objs / sizeof *objs; k++) vr_tensor_free(objs[k]);
  vr_pipeline_free(p);
}
END_TEST

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}

/* throughput of the Fashion-MNIST recipe's view (printed, not checked): 512 u8 28 x 28 images with
 * shuffled ids, on DEV and on the CPU kernel */
START_TEST(test_throughput) {
  NEED_DEV();
  vr_pipeline *p = NULL;
  OK(vr_pipeline_new(&p));
  b_recipe(p, 1);
  vr_tensor *x = images(512, 1, 28, 28, 1, 3), *ids = ids_of(512, 2), *xd = NULL, *idd = NULL, *y = NULL;
  OK(vr_tensor_to_device(x, DEV, &xd));
  OK(vr_tensor_to_device(ids, DEV, &idd));
  double rate[2] = {0, 0};
  for (int dev = 0; dev < 2; dev++) {
    vr_tensor *in = dev ? xd : x, *id = dev ? idd : ids;
    vr_device d = dev ? DEV : VR_CPU;
    OK(vr_pipeline_apply_ids(p, in, id, 0, 0, 1, 0, 0, &y)); /* warm-up */
    vr_tensor_free(y);
    OK(vr_device_get(d)->synchronize());
    int reps = dev ? 5 : 2;
    double t0 = now_s();
    for (int k = 0; k < reps; k++) {
      OK(vr_pipeline_apply_ids(p, in, id, 0, 0, 1, (uint64_t)k, 0, &y));
      vr_tensor_free(y);
    }
    OK(vr_device_get(d)->synchronize());
    rate[dev] = reps * 512 / (now_s() - t0);
  }
  printf("augment throughput (recipe view, 512 x 1 x 28 x 28 u8): %s %.0f img/s, cpu %.0f img/s\n", vr_device_name(DEV),
         rate[1], rate[0]);
  vr_tensor *objs[] = {x, ids, xd, idd};
  for (size_t k = 0; k < sizeof objs / sizeof *objs; k++) vr_tensor_free(objs[k]);
  vr_pipeline_free(p);
}
END_TEST

static Suite *cuda_augment_suite(void) {
  Suite *s = suite_create("cuda_augment");
  TCase *tc = tcase_create("parity");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, test_steps);
  tcase_add_test(tc, test_large);
  tcase_add_test(tc, test_batch_keys);
  tcase_add_test(tc, test_api);
  tcase_add_test(tc, test_throughput);
  suite_add_tcase(s, tc);
  return s;
}

VR_TEST_MAIN(cuda_augment_suite)
