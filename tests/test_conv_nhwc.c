/* test_conv_nhwc.c: vr_conv2d_nhwc (channels-last) against vr_conv2d on the same data permuted:
 * forward and the gradients of x, weight and bias for stride, padding, dilation, groups, with and
 * without bias, f32, f64 and bf16; a permuted weight view (what nn.Conv2d passes); finite
 * differences on the NHWC op itself; error messages. */
#include "testutil.h"

typedef struct { int sh, sw, ph, pw, dh, dw, groups; } cv;

#define FREE(...) do { vr_tensor *fr_[] = {__VA_ARGS__}; for (size_t q_ = 0; q_ < sizeof fr_ / sizeof *fr_; q_++) vr_tensor_free(fr_[q_]); } while (0)

static const int TO_NHWC[4] = {0, 2, 3, 1}, TO_NCHW[4] = {0, 3, 1, 2};

/* a contiguous copy of t permuted by perm (no autograd history) */
static vr_tensor *perm_copy(const vr_tensor *t, const int *perm) {
  vr_tensor *v = NULL, *c = NULL;
  int prev = vr_set_grad_enabled(0);
  OK(vr_permute(t, perm, &v));
  OK(vr_tensor_clone(v, &c));
  vr_set_grad_enabled(prev);
  vr_tensor_free(v);
  return c;
}

static vr_status conv_nchw(vr_tensor *x, vr_tensor *w, vr_tensor *b, const cv *p, vr_tensor **y) {
  return vr_conv2d(x, w, b, p->sh, p->sw, p->ph, p->pw, p->dh, p->dw, p->groups, y);
}
static vr_status conv_nhwc(vr_tensor *x, vr_tensor *w, vr_tensor *b, const cv *p, vr_tensor **y) {
  return vr_conv2d_nhwc(x, w, b, p->sh, p->sw, p->ph, p->pw, p->dh, p->dw, p->groups, y);
}

/* x [N, C, H, W] and w [Cout, C/g, kh, kw] in NCHW; runs both layouts and compares y and every
 * gradient (the NHWC ones permuted back) */
static void parity(vr_dtype dt, const int64_t *xs, const int64_t *ws, int bias, cv p, double tol, uint64_t seed,
                   const char *what) {
  vr_tensor *x = tu_rand(dt, 4, xs, seed), *w = tu_rand(dt, 4, ws, seed + 1);
  vr_tensor *b = bias ? tu_rand(dt, 1, &ws[0], seed + 2) : NULL;
  vr_tensor *xh = perm_copy(x, TO_NHWC), *wh = perm_copy(w, TO_NHWC), *bh = NULL;
  if (b) OK(vr_tensor_clone(b, &bh));
  vr_tensor *ins[6] = {x, w, b, xh, wh, bh};
  for (int k = 0; k < 6; k++)
    if (ins[k]) OK(vr_tensor_set_requires_grad(ins[k], 1));
  vr_tensor *y = NULL, *yh = NULL;
  OK(conv_nchw(x, w, b, &p, &y));
  OK(conv_nhwc(xh, wh, bh, &p, &yh));
  ck_assert_int_eq(vr_tensor_ndim(yh), 4);
  vr_tensor *yp = perm_copy(yh, TO_NCHW);
  char msg[160];
  snprintf(msg, sizeof msg, "%s: forward", what);
  tu_assert_close(yp, y, tol, tol, msg);
  /* the same upstream gradient in both layouts */
  int64_t ys[4] = {vr_tensor_size(y, 0), vr_tensor_size(y, 1), vr_tensor_size(y, 2), vr_tensor_size(y, 3)};
  vr_tensor *gy = tu_rand(dt, 4, ys, seed + 3), *gyh = perm_copy(gy, TO_NHWC);
  OK(vr_backward(y, gy, 0));
  OK(vr_backward(yh, gyh, 0));
  vr_tensor *gx = vr_tensor_grad(x), *gw = vr_tensor_grad(w), *gxh = vr_tensor_grad(xh), *gwh = vr_tensor_grad(wh);
  ck_assert_ptr_nonnull(gxh);
  ck_assert_ptr_nonnull(gwh);
  ck_assert_int_eq(vr_tensor_size(gwh, 3), ws[1]); /* grad_w in the weight's own [Cout, kh, kw, C/g] */
  vr_tensor *gxp = perm_copy(gxh, TO_NCHW), *gwp = perm_copy(gwh, TO_NCHW);
  snprintf(msg, sizeof msg, "%s: grad x", what);
  tu_assert_close(gxp, gx, tol, tol, msg);
  snprintf(msg, sizeof msg, "%s: grad w", what);
  tu_assert_close(gwp, gw, tol, tol, msg);
  if (b) {
    vr_tensor *gb = vr_tensor_grad(b), *gbh = vr_tensor_grad(bh);
    snprintf(msg, sizeof msg, "%s: grad bias", what);
    tu_assert_close(gbh, gb, tol, tol, msg);
    FREE(gb, gbh);
  }
  FREE(x, w, b, xh, wh, bh, y, yh, yp, gy, gyh, gx, gw, gxh, gwh, gxp, gwp);
}

static void parity_all(vr_dtype dt, double tol) {
  parity(dt, TU_SHAPE(2, 3, 5, 6), TU_SHAPE(4, 3, 3, 3), 1, (cv){1, 1, 1, 1, 1, 1, 1}, tol, 10, "3x3 pad 1, bias");
  parity(dt, TU_SHAPE(2, 3, 5, 6), TU_SHAPE(4, 3, 3, 3), 0, (cv){1, 1, 0, 0, 1, 1, 1}, tol, 20, "3x3 valid, no bias");
  parity(dt, TU_SHAPE(2, 2, 9, 7), TU_SHAPE(3, 2, 3, 2), 1, (cv){2, 2, 1, 1, 1, 1, 1}, tol, 30, "stride 2");
  parity(dt, TU_SHAPE(2, 2, 9, 7), TU_SHAPE(3, 2, 3, 2), 1, (cv){1, 2, 2, 1, 2, 2, 1}, tol, 40, "dilation 2, padding");
  parity(dt, TU_SHAPE(2, 4, 6, 5), TU_SHAPE(6, 2, 3, 3), 1, (cv){1, 1, 1, 1, 1, 1, 2}, tol, 50, "groups 2");
  parity(dt, TU_SHAPE(2, 4, 6, 5), TU_SHAPE(4, 2, 3, 3), 0, (cv){2, 1, 1, 1, 2, 1, 2}, tol, 60, "groups 2, stride 2, dilation 2");
  parity(dt, TU_SHAPE(3, 4, 5, 5), TU_SHAPE(6, 4, 1, 1), 1, (cv){1, 1, 0, 0, 1, 1, 1}, tol, 70, "1x1 direct");
  parity(dt, TU_SHAPE(3, 4, 5, 5), TU_SHAPE(6, 4, 1, 1), 0, (cv){2, 2, 0, 0, 1, 1, 1}, tol, 80, "1x1 stride 2");
  parity(dt, TU_SHAPE(17, 3, 6, 6), TU_SHAPE(5, 3, 3, 3), 1, (cv){1, 1, 1, 1, 1, 1, 1}, tol, 90, "batch 17 (chunked grad_w)");
}

START_TEST(nhwc_parity_f64) { parity_all(VR_F64, 1e-12); }
END_TEST

START_TEST(nhwc_parity_f32) { parity_all(VR_F32, 1e-5); }
END_TEST

/* bf16: the CPU computes both layouts with the same f32 gemms on the same values: bit-identical */
START_TEST(nhwc_parity_bf16) {
  parity(VR_BF16, TU_SHAPE(2, 4, 6, 5), TU_SHAPE(6, 2, 3, 3), 1, (cv){1, 1, 1, 1, 1, 1, 2}, 0, 100, "bf16 groups 2");
  parity(VR_BF16, TU_SHAPE(2, 3, 7, 6), TU_SHAPE(4, 3, 3, 3), 0, (cv){2, 2, 1, 1, 1, 1, 1}, 0, 110, "bf16 stride 2");
}
END_TEST

/* nn.Conv2d in channels-last keeps its weight [Cout, C/g, kh, kw] and passes the view
 * permute(0, 2, 3, 1): the gradient reaches the weight in its own shape, equal to NCHW's */
static void weight_view(int autocast) {
  cv p = {1, 1, 1, 1, 1, 1, 1};
  vr_tensor *x = tu_rand(VR_F32, 4, TU_SHAPE(2, 3, 6, 6), 120), *w = tu_rand(VR_F32, 4, TU_SHAPE(4, 3, 3, 3), 121);
  vr_tensor *xh = perm_copy(x, TO_NHWC), *w2 = NULL, *wv = NULL, *y = NULL, *yh = NULL;
  OK(vr_tensor_clone(w, &w2));
  OK(vr_tensor_set_requires_grad(w, 1));
  OK(vr_tensor_set_requires_grad(w2, 1));
  if (autocast) OK(vr_autocast_set(VR_BF16));
  OK(vr_permute(w2, TO_NHWC, &wv));
  ck_assert(!vr_tensor_is_contiguous(wv));
  OK(conv_nchw(x, w, NULL, &p, &y));
  OK(conv_nhwc(xh, wv, NULL, &p, &yh));
  OK(vr_autocast_set(VR_F32));
  ck_assert_int_eq(vr_tensor_dtype(yh), autocast ? VR_BF16 : VR_F32);
  vr_tensor *yp = perm_copy(yh, TO_NCHW);
  tu_assert_close(yp, y, 0, autocast ? 0 : 1e-5, "permuted weight view: forward");
  int64_t ys[4] = {2, 4, 6, 6};
  vr_tensor *gy = tu_rand(vr_tensor_dtype(y), 4, ys, 122), *gyh = perm_copy(gy, TO_NHWC);
  OK(vr_backward(y, gy, 0));
  OK(vr_backward(yh, gyh, 0));
  vr_tensor *g = vr_tensor_grad(w), *g2 = vr_tensor_grad(w2);
  ck_assert_int_eq(vr_tensor_dtype(g2), VR_F32);
  ck_assert_int_eq(vr_tensor_size(g2, 1), 3);
  ck_assert_int_eq(vr_tensor_size(g2, 3), 3);
  tu_assert_close(g2, g, autocast ? 0 : 1e-5, autocast ? 0 : 1e-5, "permuted weight view: grad in the weight's shape");
  FREE(x, w, xh, w2, wv, y, yh, yp, gy, gyh, g, g2);
}

START_TEST(nhwc_weight_view_f32) { weight_view(0); }
END_TEST

START_TEST(nhwc_weight_view_autocast) { weight_view(1); }
END_TEST

/* ---------------------------------------------------------------- finite differences */

static vr_status f_nhwc(vr_tensor *const *in, void *ctx, vr_tensor **out) { return conv_nhwc(in[0], in[1], in[2], ctx, out); }

START_TEST(nhwc_gradcheck) {
  vr_tensor *x = tu_rand(VR_F64, 4, TU_SHAPE(2, 4, 5, 4), 130), *w = tu_rand(VR_F64, 4, TU_SHAPE(3, 3, 2, 4), 131);
  vr_tensor *b = tu_rand(VR_F64, 1, TU_SHAPE(3), 132);
  vr_tensor *in[3] = {x, w, b};
  tu_gradcheck("nhwc 3x2 pad 1", 3, in, 0, f_nhwc, &(cv){1, 1, 1, 1, 1, 1, 1}, 1e-6, 1e-6);
  tu_gradcheck("nhwc stride 2 dilation 2", 3, in, 0, f_nhwc, &(cv){2, 1, 2, 1, 2, 1, 1}, 1e-6, 1e-6);
  vr_tensor *wg = tu_rand(VR_F64, 4, TU_SHAPE(4, 3, 3, 2), 133), *in2[3] = {x, wg, NULL};
  tu_gradcheck("nhwc groups 2, no bias", 3, in2, 0, f_nhwc, &(cv){1, 1, 1, 1, 1, 1, 2}, 1e-6, 1e-6);
  /* a non-contiguous input: a transposed view of [N, W, H, C] */
  vr_tensor *base = tu_rand(VR_F64, 4, TU_SHAPE(2, 4, 5, 4), 134), *xs = NULL;
  OK(vr_transpose(base, 1, 2, &xs));
  vr_tensor *in3[3] = {xs, w, b};
  tu_gradcheck("nhwc transposed-view input", 3, in3, 1, f_nhwc, &(cv){1, 1, 1, 1, 1, 1, 1}, 1e-6, 1e-6);
  FREE(x, w, b, wg, base, xs);
}
END_TEST

/* ---------------------------------------------------------------- errors */

START_TEST(nhwc_errors) {
  vr_tensor *x = tu_rand(VR_F64, 4, TU_SHAPE(1, 5, 5, 3), 140), *w = tu_rand(VR_F64, 4, TU_SHAPE(4, 3, 3, 3), 141);
  vr_tensor *x3 = tu_rand(VR_F64, 3, TU_SHAPE(5, 5, 3), 142), *w3 = tu_rand(VR_F64, 3, TU_SHAPE(4, 3, 3), 143);
  vr_tensor *wc = tu_rand(VR_F64, 4, TU_SHAPE(4, 3, 3, 2), 144), *b = tu_rand(VR_F64, 1, TU_SHAPE(5), 145);
  vr_tensor *wf = tu_rand(VR_F32, 4, TU_SHAPE(4, 3, 3, 3), 146), *y = NULL;
  FAILS(vr_conv2d_nhwc(x3, w, NULL, 1, 1, 0, 0, 1, 1, 1, &y), VR_E_SHAPE, "vr_conv2d_nhwc: x: expected 4 dims [N, H, W, C]");
  FAILS(vr_conv2d_nhwc(x, w3, NULL, 1, 1, 0, 0, 1, 1, 1, &y), VR_E_SHAPE,
        "vr_conv2d_nhwc: weight: expected 4 dims [Cout, kh, kw, C/groups]");
  FAILS(vr_conv2d_nhwc(x, wc, NULL, 1, 1, 0, 0, 1, 1, 1, &y), VR_E_SHAPE,
        "weight: expected dim 3 = in_channels / groups = 3");
  FAILS(vr_conv2d_nhwc(x, wc, NULL, 1, 1, 0, 0, 1, 1, 1, &y), VR_E_SHAPE, "[Cout, kh, kw, C/groups]");
  FAILS(vr_conv2d_nhwc(x, w, NULL, 1, 1, 0, 0, 1, 1, 2, &y), VR_E_SHAPE, "x: expected in_channels divisible by groups");
  FAILS(vr_conv2d_nhwc(x, w, b, 1, 1, 0, 0, 1, 1, 1, &y), VR_E_SHAPE, "bias: expected [4]");
  FAILS(vr_conv2d_nhwc(x, w, NULL, 0, 1, 0, 0, 1, 1, 1, &y), VR_E_ARG, "vr_conv2d_nhwc: stride_h");
  FAILS(vr_conv2d_nhwc(x, w, NULL, 1, 1, 0, 0, 3, 3, 1, &y), VR_E_SHAPE, "smaller than the dilated kernel");
  FAILS(vr_conv2d_nhwc(x, wf, NULL, 1, 1, 0, 0, 1, 1, 1, &y), VR_E_DTYPE, "weight");
  FAILS(vr_conv2d_nhwc(NULL, w, NULL, 1, 1, 0, 0, 1, 1, 1, &y), VR_E_ARG, "vr_conv2d_nhwc: x:");
  /* the NCHW entry still names its own layout and function */
  FAILS(vr_conv2d(x3, w, NULL, 1, 1, 0, 0, 1, 1, 1, &y), VR_E_SHAPE, "vr_conv2d: x: expected 4 dims [N, C, H, W]");
  ck_assert_ptr_null(y);
  FREE(x, w, x3, w3, wc, b, wf);
}
END_TEST

static Suite *conv_nhwc_suite(void) {
  Suite *s = suite_create("conv_nhwc");
  TCase *c = tcase_create("conv_nhwc");
  tcase_set_timeout(c, 60);
  tcase_add_test(c, nhwc_parity_f64);
  tcase_add_test(c, nhwc_parity_f32);
  tcase_add_test(c, nhwc_parity_bf16);
  tcase_add_test(c, nhwc_weight_view_f32);
  tcase_add_test(c, nhwc_weight_view_autocast);
  tcase_add_test(c, nhwc_gradcheck);
  tcase_add_test(c, nhwc_errors);
  suite_add_tcase(s, c);
  return s;
}

VR_TEST_MAIN(conv_nhwc_suite)
