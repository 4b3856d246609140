/* test_conv_winograd.c: the f32 3 x 3 stride-1 convolution by Winograd's F(4x4, 3x3)
 * (kernels/cpu/conv_winograd.c): forward, backward-data and backward-weights against the f64 reference path
 * (im2col, itself checked by finite differences in test_conv.c) on every shape class (planes
 * that are no multiple of the 4 x 4 tile, padding 0, 1 and 2, channel counts that are no multiple
 * of 8, batch 1, batches cut into uneven groups, one-tile planes), a finite-difference check of
 * the f32 path, the same bits on 1 and 2 threads, the same values as the direct kernels (variant
 * cpu_winograd=off) within the tolerance of a reordered sum, and the shapes it leaves to them. */
#include "testutil.h"
#include "../kernels/cpu/conv_winograd.h"

typedef struct { int64_t N, C, H, W, Co, ph, pw; const char *what; } shape;

static const shape shapes[] = {
    {2, 32, 7, 7, 64, 1, 1, "32->64 7x7 (recipe layer 3: tiles past the plane)"},
    {2, 64, 7, 7, 64, 1, 1, "64->64 7x7 (recipe layer 4)"},
    {1, 33, 9, 10, 37, 1, 1, "batch 1, 33->37, 9x10"},
    {3, 40, 6, 5, 36, 0, 0, "padding 0, 40->36, 6x5"},
    {2, 32, 5, 8, 48, 2, 2, "padding 2 (backward-data pads 0)"},
    {2, 36, 8, 6, 40, 1, 0, "padding 1 x 0"},
    {3, 64, 4, 4, 64, 1, 1, "4x4 planes: one tile a sample"},
    {17, 32, 8, 8, 32, 1, 1, "batch 17 (uneven groups)"},
    {4, 128, 16, 16, 128, 1, 1, "128->128 16x16 (ResNet-18)"},
    {2, 256, 8, 8, 256, 1, 1, "256->256 8x8 (ResNet-18)"},
};

START_TEST(winograd_shapes) {
  const shape *s = &shapes[_i];
  char what[160];
  int64_t Ho = s->H + 2 * s->ph - 2, Wo = s->W + 2 * s->pw - 2;
  vr_tensor *x = tu_rand(VR_F32, 4, TU_SHAPE(s->N, s->C, s->H, s->W), 1);
  vr_tensor *w = tu_rand(VR_F32, 4, TU_SHAPE(s->Co, s->C, 3, 3), 2);
  vr_tensor *gy = tu_rand(VR_F32, 4, TU_SHAPE(s->N, s->Co, Ho, Wo), 3);
  /* the reference sees the same values (f32 exactly in f64) */
  vr_tensor *xr = tu_to_dtype(x, VR_F64), *wr = tu_to_dtype(w, VR_F64), *gyr = tu_to_dtype(gy, VR_F64);
  const int64_t iv[8] = {1, 1, s->ph, s->pw, 1, 1, 1, 0};
  ck_assert_msg(vr_cpu_conv_winograd_ok(x, w, iv), "%s: takes Winograd", s->what);
  vr_tensor *y, *gx, *gw, *yr, *gxr, *gwr;
  tu_conv_and_grads(xr, wr, gyr, 1, s->ph, s->pw, &yr, &gxr, &gwr);
  tu_conv_and_grads(x, w, gy, 1, s->ph, s->pw, &y, &gx, &gw);
  /* the reference's own scale: a sum of C * 9 (Co * 9 for grad x) products of unit values */
  double tol = 2e-5 * sqrt((double)(s->C * 9)), tolx = 2e-5 * sqrt((double)(s->Co * 9));
  double tolw = 2e-5 * sqrt((double)(s->N * Ho * Wo));
  snprintf(what, sizeof what, "%s: forward", s->what);
  tu_assert_close(y, yr, tol, tol, what);
  snprintf(what, sizeof what, "%s: grad x", s->what);
  tu_assert_close(gx, gxr, tolx, tolx, what);
  snprintf(what, sizeof what, "%s: grad w", s->what);
  tu_assert_close(gw, gwr, tolw, tolw, what);

  /* finite differences of the f32 forward: conv is linear in x, so <gy, conv(x + v) - conv(x - v)> / 2 = <gx, v> */
  vr_tensor *v = tu_rand(VR_F32, 4, TU_SHAPE(s->N, s->C, s->H, s->W), 4), *p = NULL, *m = NULL, *yp = NULL, *ym = NULL;
  OK(vr_add(x, v, &p));
  OK(vr_sub(x, v, &m));
  OK(vr_conv2d(p, w, NULL, 1, 1, s->ph, s->pw, 1, 1, 1, &yp));
  OK(vr_conv2d(m, w, NULL, 1, 1, s->ph, s->pw, 1, 1, 1, &ym));
  double num = (tu_dot(gy, yp) - tu_dot(gy, ym)) / 2, ana = tu_dot(gx, v);
  double scale = sqrt((double)vr_tensor_numel(yp)) * sqrt((double)(s->C * 9));
  ck_assert_msg(fabs(num - ana) <= 1e-5 * scale, "%s: finite difference in x: numeric %.8g vs analytic %.8g", s->what,
                num, ana);
  /* and in w: <gy, conv(x, w + u) - conv(x, w - u)> / 2 = <gw, u> */
  vr_tensor *u = tu_rand(VR_F32, 4, TU_SHAPE(s->Co, s->C, 3, 3), 5), *wp = NULL, *wm = NULL, *yu = NULL, *yd = NULL;
  OK(vr_add(w, u, &wp));
  OK(vr_sub(w, u, &wm));
  OK(vr_conv2d(x, wp, NULL, 1, 1, s->ph, s->pw, 1, 1, 1, &yu));
  OK(vr_conv2d(x, wm, NULL, 1, 1, s->ph, s->pw, 1, 1, 1, &yd));
  num = (tu_dot(gy, yu) - tu_dot(gy, yd)) / 2;
  ana = tu_dot(gw, u);
  ck_assert_msg(fabs(num - ana) <= 1e-5 * scale, "%s: finite difference in w: numeric %.8g vs analytic %.8g", s->what,
                num, ana);

  /* the same bits on 1 and 2 threads */
  int prev = vr_num_threads();
  vr_set_num_threads(prev == 1 ? 2 : 1);
  vr_tensor *y2, *gx2, *gw2;
  tu_conv_and_grads(x, w, gy, 1, s->ph, s->pw, &y2, &gx2, &gw2);
  vr_set_num_threads(prev);
  snprintf(what, sizeof what, "%s: thread count", s->what);
  tu_assert_close(y2, y, 0, 0, what);
  tu_assert_close(gx2, gx, 0, 0, what);
  tu_assert_close(gw2, gw, 0, 0, what);

  /* the direct kernels' values within a reordered sum's tolerance */
  OK(vr_set_variant("cpu_winograd", "off"));
  ck_assert(!vr_cpu_conv_winograd_ok(x, w, iv));
  vr_tensor *y3, *gx3, *gw3;
  tu_conv_and_grads(x, w, gy, 1, s->ph, s->pw, &y3, &gx3, &gw3);
  OK(vr_set_variant("cpu_winograd", "on"));
  snprintf(what, sizeof what, "%s: as the direct kernels", s->what);
  tu_assert_close(y, y3, tol, tol, what);
  tu_assert_close(gx, gx3, tolx, tolx, what);
  tu_assert_close(gw, gw3, tolw, tolw, what);
  vr_tensor *all[] = {x, w, gy, xr, wr, gyr, y, gx, gw, yr, gxr, gwr, v, p, m, yp, ym, u, wp, wm, yu, yd,
                      y2, gx2, gw2, y3, gx3, gw3};
  for (size_t k = 0; k < sizeof all / sizeof *all; k++) vr_tensor_free(all[k]);
}
END_TEST

START_TEST(winograd_declines) {
  /* few channels, stride 2, other kernels, padding 3, dilation, groups, channels-last and f64 stay direct or im2col */
  vr_tensor *x = tu_rand(VR_F32, 4, TU_SHAPE(2, 32, 8, 8), 1), *w = tu_rand(VR_F32, 4, TU_SHAPE(32, 32, 3, 3), 2);
  vr_tensor *xs = tu_rand(VR_F32, 4, TU_SHAPE(2, 16, 8, 8), 3), *ws = tu_rand(VR_F32, 4, TU_SHAPE(32, 16, 3, 3), 4);
  vr_tensor *w5 = tu_rand(VR_F32, 4, TU_SHAPE(32, 32, 5, 5), 5), *x64 = tu_rand(VR_F64, 4, TU_SHAPE(2, 32, 8, 8), 6);
  vr_tensor *wf = tu_rand(VR_F32, 4, TU_SHAPE(16, 32, 3, 3), 7);
  ck_assert(vr_cpu_conv_winograd_ok(x, w, (int64_t[]){1, 1, 1, 1, 1, 1, 1, 0}));
  ck_assert(!vr_cpu_conv_winograd_ok(xs, ws, (int64_t[]){1, 1, 1, 1, 1, 1, 1, 0}));
  ck_assert(!vr_cpu_conv_winograd_ok(x, wf, (int64_t[]){1, 1, 1, 1, 1, 1, 1, 0}));
  ck_assert(!vr_cpu_conv_winograd_ok(x, w, (int64_t[]){2, 2, 1, 1, 1, 1, 1, 0}));
  ck_assert(!vr_cpu_conv_winograd_ok(x, w5, (int64_t[]){1, 1, 2, 2, 1, 1, 1, 0}));
  ck_assert(!vr_cpu_conv_winograd_ok(x, w, (int64_t[]){1, 1, 3, 3, 1, 1, 1, 0}));
  ck_assert(!vr_cpu_conv_winograd_ok(x, w, (int64_t[]){1, 1, 1, 1, 2, 2, 1, 0}));
  ck_assert(!vr_cpu_conv_winograd_ok(x, w, (int64_t[]){1, 1, 1, 1, 1, 1, 2, 0}));
  ck_assert(!vr_cpu_conv_winograd_ok(x, w, (int64_t[]){1, 1, 1, 1, 1, 1, 1, 1}));
  ck_assert(!vr_cpu_conv_winograd_ok(x64, w, (int64_t[]){1, 1, 1, 1, 1, 1, 1, 0}));
  vr_tensor *all[] = {x, w, xs, ws, w5, x64, wf};
  for (size_t k = 0; k < sizeof all / sizeof *all; k++) vr_tensor_free(all[k]);
}
END_TEST

static Suite *conv_winograd_suite(void) {
  Suite *s = suite_create("conv_winograd");
  TCase *c = tcase_create("winograd");
  tcase_set_timeout(c, 120);
  tcase_add_loop_test(c, winograd_shapes, 0, (int)(sizeof shapes / sizeof *shapes));
  tcase_add_test(c, winograd_declines);
  suite_add_tcase(s, c);
  return s;
}

VR_TEST_MAIN(conv_winograd_suite)
