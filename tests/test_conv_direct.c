/* test_conv_direct.c: the direct f32 convolution kernels (kernels/cpu/conv_direct.c) on the AVX2
 * and the AVX-512 path, each forced through vr_cpu_conv_force_isa, and with both families of
 * micro-kernels (variant cpu_tiles: vectors of output channels or of positions): forward, backward-data and
 * backward-weights against the f64 reference path (im2col, itself checked by finite differences
 * in test_conv.c), a finite-difference check of the f32 kernels themselves, independence from
 * the thread count, and the shapes the direct path leaves to im2col (1x1; stride 2 without the
 * channel-vector kernels). */
#include "testutil.h"
#include "../kernels/cpu/conv_direct.h"

typedef struct { int64_t N, C, H, W, Co, kh, kw, ph, pw; const char *what; int64_t stride; } shape;

/* every shape class: the default recipe's layers, odd sizes, padding 0 and 1, non-square kernels,
 * channel counts that are no multiple of a block, batch 1, a batch that splits into uneven chunks */
static const shape shapes[] = {
    {2, 1, 28, 28, 16, 3, 3, 1, 1, "1->16 28x28 (recipe layer 1)", 1},
    {2, 16, 14, 14, 32, 3, 3, 1, 1, "16->32 14x14 (recipe layer 2)", 1},
    {2, 32, 7, 7, 64, 3, 3, 1, 1, "32->64 7x7 (recipe layer 3)", 1},
    {1, 3, 9, 11, 5, 3, 3, 1, 1, "batch 1, odd sizes, 3->5", 1},
    {2, 5, 8, 7, 7, 3, 3, 0, 0, "padding 0, 5->7", 1},
    {2, 4, 10, 9, 6, 5, 3, 2, 0, "5x3 kernel, padding 2x0", 1},
    {3, 3, 8, 8, 3, 2, 2, 1, 0, "2x2 kernel, padding 1x0", 1},
    {17, 2, 6, 7, 9, 3, 3, 1, 1, "batch 17 (uneven chunks), 2->9", 1},
    {2, 8, 6, 6, 20, 3, 3, 1, 1, "8->20 6x6 (a partial block of output channels)", 1},
    {3, 64, 7, 7, 64, 3, 3, 1, 1, "64->64 7x7 (recipe layer 4: taps in several chunks)", 1},
    {2, 6, 9, 8, 20, 3, 3, 1, 1, "stride 2, odd height, 6->20", 2},
    {3, 4, 11, 11, 16, 5, 5, 2, 2, "stride 3, 5x5 kernel", 3},
    {2, 40, 4, 4, 36, 3, 3, 1, 1, "4x4 planes, 40->36", 1},
    {2, 136, 3, 3, 132, 3, 3, 1, 1, "3x3 planes, 136->132 (past 128 x 128 channels)", 1},
    {16, 512, 4, 4, 512, 3, 3, 1, 1, "512->512 4x4, batch 16 (fewer chunks: partials past 64 MB)", 1},
    {2, 20, 9, 9, 8, 3, 3, 1, 1, "stride 2 with 20 input channels", 2},
    {3, 40, 8, 8, 36, 3, 3, 1, 1, "stride 2, 40->36 8x8 (a ResNet downsampling layer)", 2},
    {2, 3, 12, 12, 24, 4, 4, 0, 0, "4x4 patches, stride 4 (a patch embedding)", 4},
};

static vr_tensor *axpy(const vr_tensor *x, double a, const vr_tensor *v) { /* x + a v, f32 */
  vr_tensor *av = NULL, *o = NULL;
  OK(vr_mul_scalar(v, a, &av));
  OK(vr_add(x, av, &o));
  vr_tensor_free(av);
  return o;
}

/* the channel-vector kernels take every plane size and stride (strided: forward and grad w; grad x
 * by im2col); the position-vector ones stride 1 on planes of 36 and more */
static int takes_direct(const shape *s) {
  if (!strcmp(vr_variant("cpu_tiles"), "channels")) return 1;
  return s->stride == 1 && s->H * s->W >= 36 && s->C * s->Co <= 128 * 128;
}

static void check_shape(const shape *s, int isa) {
  char what[160];
  int64_t st = s->stride;
  int64_t Ho = (s->H + 2 * s->ph - s->kh) / st + 1, Wo = (s->W + 2 * s->pw - s->kw) / st + 1;
  vr_tensor *x64 = tu_rand(VR_F64, 4, TU_SHAPE(s->N, s->C, s->H, s->W), 1);
  vr_tensor *w64 = tu_rand(VR_F64, 4, TU_SHAPE(s->Co, s->C, s->kh, s->kw), 2);
  vr_tensor *gy64 = tu_rand(VR_F64, 4, TU_SHAPE(s->N, s->Co, Ho, Wo), 3);
  vr_tensor *x = tu_to_dtype(x64, VR_F32), *w = tu_to_dtype(w64, VR_F32), *gy = tu_to_dtype(gy64, VR_F32);
  /* the f32 values exactly in f64: the reference sees the same inputs */
  vr_tensor *xr = tu_to_dtype(x, VR_F64), *wr = tu_to_dtype(w, VR_F64), *gyr = tu_to_dtype(gy, VR_F64);
  vr_tensor *y, *gx, *gw, *yr, *gxr, *gwr;
  ck_assert_int_eq(vr_cpu_conv_force_isa(VR_CONV_ISA_NONE), VR_CONV_ISA_NONE);
  tu_conv_and_grads(xr, wr, gyr, s->stride, s->ph, s->pw, &yr, &gxr, &gwr);
  ck_assert_int_eq(vr_cpu_conv_force_isa(isa), isa);
  const int64_t iv[8] = {st, st, s->ph, s->pw, 1, 1, 1, 0};
  snprintf(what, sizeof what, "%s: takes the direct path", s->what);
  ck_assert_msg(vr_cpu_conv_direct_ok(x, w, iv) == (takes_direct(s) != 0), "%s", what);
  tu_conv_and_grads(x, w, gy, s->stride, s->ph, s->pw, &y, &gx, &gw);
  double tol = 2e-5 * sqrt((double)(s->C * s->kh * s->kw)), tolw = 2e-5 * sqrt((double)(s->N * Ho * Wo));
  snprintf(what, sizeof what, "%s, isa %d: forward", s->what, isa);
  tu_assert_close(y, yr, tol, tol, what);
  snprintf(what, sizeof what, "%s, isa %d: grad x", s->what, isa);
  tu_assert_close(gx, gxr, tol, tol, what);
  snprintf(what, sizeof what, "%s, isa %d: grad w", s->what, isa);
  tu_assert_close(gw, gwr, tolw, tolw, what);

  /* finite differences of the f32 forward kernel: conv is linear in x and in w, so the central
   * difference <gy, conv(x + v, w) - conv(x - v, w)> / 2 is <gx, v> up to f32 rounding (w alike) */
  vr_tensor *vx = tu_rand(VR_F32, 4, TU_SHAPE(s->N, s->C, s->H, s->W), 4);
  vr_tensor *vw = tu_rand(VR_F32, 4, TU_SHAPE(s->Co, s->C, s->kh, s->kw), 5);
  for (int which = 0; which < 2; which++) {
    vr_tensor *v = which ? vw : vx, *base = which ? w : x, *p = axpy(base, 1, v), *m = axpy(base, -1, v);
    vr_tensor *yp = NULL, *ym = NULL;
    OK(vr_conv2d(which ? x : p, which ? p : w, NULL, st, st, s->ph, s->pw, 1, 1, 1, &yp));
    OK(vr_conv2d(which ? x : m, which ? m : w, NULL, st, st, s->ph, s->pw, 1, 1, 1, &ym));
    double num = (tu_dot(gy, yp) - tu_dot(gy, ym)) / 2, ana = tu_dot(which ? gw : gx, v);
    double scale = sqrt((double)vr_tensor_numel(yp)) * sqrt((double)(s->C * s->kh * s->kw));
    ck_assert_msg(fabs(num - ana) <= 1e-5 * scale, "%s, isa %d: finite difference in %s: numeric %.8g vs analytic %.8g",
                  s->what, isa, which ? "w" : "x", num, ana);
    vr_tensor_free(p);
    vr_tensor_free(m);
    vr_tensor_free(yp);
    vr_tensor_free(ym);
  }

  /* the same bits with 1 and 2 threads */
  int prev = vr_num_threads();
  vr_set_num_threads(prev == 1 ? 2 : 1);
  vr_tensor *y2, *gx2, *gw2;
  tu_conv_and_grads(x, w, gy, s->stride, s->ph, s->pw, &y2, &gx2, &gw2);
  vr_set_num_threads(prev);
  snprintf(what, sizeof what, "%s, isa %d: thread count", s->what, isa);
  tu_assert_close(y2, y, 0, 0, what);
  tu_assert_close(gx2, gx, 0, 0, what);
  tu_assert_close(gw2, gw, 0, 0, what);
  vr_tensor *all[] = {x64, w64, gy64, x, w, gy, xr, wr, gyr, y, gx, gw, yr, gxr, gwr, vx, vw, y2, gx2, gw2};
  for (size_t k = 0; k < sizeof all / sizeof *all; k++) vr_tensor_free(all[k]);
}

static int have_isa(int isa) {
  int got = vr_cpu_conv_force_isa(isa);
  vr_cpu_conv_force_isa(VR_CONV_ISA_AUTO);
  return got == isa;
}

/* each ISA with the channel-vector micro-kernels (the default), then with the position-vector ones */
static void check_isa(int isa, const char *name, const char *tiles, int i) {
  if (!have_isa(isa)) {
    static int told[3];
    if (!told[isa]++) fprintf(stderr, "test_conv_direct: this CPU has no %s; the %s kernels are not run\n", name, name);
    return;
  }
  OK(vr_set_variant("cpu_tiles", tiles));
  OK(vr_set_variant("cpu_winograd", "off")); /* the direct kernels, not Winograd's (test_conv_winograd.c) */
  check_shape(&shapes[i], isa);
  OK(vr_set_variant("cpu_tiles", "channels"));
  OK(vr_set_variant("cpu_winograd", "on"));
}

START_TEST(direct_avx2) { check_isa(VR_CONV_ISA_AVX2, "AVX2", "channels", _i); }
END_TEST

START_TEST(direct_avx2_positions) { check_isa(VR_CONV_ISA_AVX2, "AVX2", "positions", _i); }
END_TEST

START_TEST(direct_avx512) { check_isa(VR_CONV_ISA_AVX512, "AVX-512", "channels", _i); }
END_TEST

START_TEST(direct_avx512_positions) { check_isa(VR_CONV_ISA_AVX512, "AVX-512", "positions", _i); }
END_TEST

START_TEST(direct_declines) {
  /* stride 2, 1x1, dilation, groups, f64 and channels-last stay on im2col + gemm */
  vr_tensor *x = tu_rand(VR_F32, 4, TU_SHAPE(2, 4, 8, 8), 1), *w = tu_rand(VR_F32, 4, TU_SHAPE(4, 4, 3, 3), 2);
  vr_tensor *w1 = tu_rand(VR_F32, 4, TU_SHAPE(4, 4, 1, 1), 3), *x64 = tu_rand(VR_F64, 4, TU_SHAPE(2, 4, 8, 8), 4);
  ck_assert(vr_cpu_conv_direct_ok(x, w, (int64_t[]){1, 1, 1, 1, 1, 1, 1, 0}));
  OK(vr_set_variant("cpu_tiles", "positions")); /* stride 2: the channel-vector kernels only */
  ck_assert(!vr_cpu_conv_direct_ok(x, w, (int64_t[]){2, 2, 1, 1, 1, 1, 1, 0}));
  OK(vr_set_variant("cpu_tiles", "channels"));
  ck_assert(!vr_cpu_conv_direct_ok(x, w1, (int64_t[]){1, 1, 0, 0, 1, 1, 1, 0}));
  ck_assert(!vr_cpu_conv_direct_ok(x, w, (int64_t[]){1, 1, 1, 1, 2, 2, 1, 0}));
  ck_assert(!vr_cpu_conv_direct_ok(x, w, (int64_t[]){1, 1, 1, 1, 1, 1, 2, 0}));
  ck_assert(!vr_cpu_conv_direct_ok(x, w, (int64_t[]){1, 1, 1, 1, 1, 1, 1, 1}));
  ck_assert(!vr_cpu_conv_direct_ok(x64, w, (int64_t[]){1, 1, 1, 1, 1, 1, 1, 0}));
  ck_assert(!vr_cpu_conv_direct_ok(x, w, (int64_t[]){1, 1, 3, 1, 1, 1, 1, 0})); /* padding > k - 1 */
  ck_assert_int_eq(vr_cpu_conv_force_isa(VR_CONV_ISA_NONE), VR_CONV_ISA_NONE);
  ck_assert(!vr_cpu_conv_direct_ok(x, w, (int64_t[]){1, 1, 1, 1, 1, 1, 1, 0}));
  ck_assert_int_eq(vr_cpu_conv_force_isa(99), VR_CONV_ISA_NONE); /* refused: the setting stays */
  vr_cpu_conv_force_isa(VR_CONV_ISA_AUTO);
  vr_tensor *all[] = {x, w, w1, x64};
  for (size_t k = 0; k < sizeof all / sizeof *all; k++) vr_tensor_free(all[k]);
}
END_TEST

static Suite *conv_direct_suite(void) {
  Suite *s = suite_create("conv_direct");
  TCase *c = tcase_create("direct");
  tcase_set_timeout(c, 120);
  int n = (int)(sizeof shapes / sizeof *shapes);
  tcase_add_loop_test(c, direct_avx2, 0, n);
  tcase_add_loop_test(c, direct_avx2_positions, 0, n);
  tcase_add_loop_test(c, direct_avx512, 0, n);
  tcase_add_loop_test(c, direct_avx512_positions, 0, n);
  tcase_add_test(c, direct_declines);
  suite_add_tcase(s, c);
  return s;
}

VR_TEST_MAIN(conv_direct_suite)
