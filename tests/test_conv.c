/* test_conv.c: conv2d and 2-D pooling against naive f64 loops, finite-difference gradients
 * (stride, padding, dilation, groups, non-square, non-contiguous input) and error messages. */
#include "testutil.h"

typedef struct { int sh, sw, ph, pw, dh, dw, groups; } cv;

/* naive conv on row-major buffers */
static vr_tensor *ref_conv(const vr_tensor *x, const vr_tensor *w, const vr_tensor *b, const cv *p) {
  int64_t N = vr_tensor_size(x, 0), C = vr_tensor_size(x, 1), H = vr_tensor_size(x, 2), W = vr_tensor_size(x, 3);
  int64_t Co = vr_tensor_size(w, 0), kh = vr_tensor_size(w, 2), kw = vr_tensor_size(w, 3);
  int64_t Cg = C / p->groups, Cog = Co / p->groups;
  int64_t Ho = (H + 2 * p->ph - p->dh * (kh - 1) - 1) / p->sh + 1, Wo = (W + 2 * p->pw - p->dw * (kw - 1) - 1) / p->sw + 1;
  double *xv = tu_values(x), *wv = tu_values(w), *bv = b ? tu_values(b) : NULL;
  double *y = calloc((size_t)(N * Co * Ho * Wo), sizeof(double));
  for (int64_t n = 0; n < N; n++)
    for (int64_t co = 0; co < Co; co++) {
      int64_t g = co / Cog;
      for (int64_t oh = 0; oh < Ho; oh++)
        for (int64_t ow = 0; ow < Wo; ow++) {
          double s = bv ? bv[co] : 0;
          for (int64_t c = 0; c < Cg; c++)
            for (int64_t i = 0; i < kh; i++)
              for (int64_t j = 0; j < kw; j++) {
                int64_t ih = oh * p->sh - p->ph + i * p->dh, iw = ow * p->sw - p->pw + j * p->dw;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                s += xv[((n * C + g * Cg + c) * H + ih) * W + iw] * wv[((co * Cg + c) * kh + i) * kw + j];
              }
          y[((n * Co + co) * Ho + oh) * Wo + ow] = s;
        }
    }
  vr_tensor *t = NULL;
  ck_assert(vr_tensor_from_buffer(y, 4, (int64_t[]){N, Co, Ho, Wo}, VR_F64, VR_CPU, &t) == VR_OK);
  free(xv); free(wv); free(bv); free(y);
  return t;
}

static vr_status run_conv(vr_tensor *x, vr_tensor *w, vr_tensor *b, const cv *p, vr_tensor **y) {
  return vr_conv2d(x, w, b, p->sh, p->sw, p->ph, p->pw, p->dh, p->dw, p->groups, y);
}

static void check_conv(vr_tensor *x, vr_tensor *w, vr_tensor *b, cv p, double tol, const char *what) {
  vr_tensor *y = NULL, *r = ref_conv(x, w, b, &p);
  OK(run_conv(x, w, b, &p, &y));
  tu_assert_close(y, r, tol, tol, what);
  vr_tensor_free(y);
  vr_tensor_free(r);
}

static vr_tensor *rnd(int nd, const int64_t *s, uint64_t seed) { return tu_rand(VR_F64, nd, s, seed); }
#define FREE(...) do { vr_tensor *fr_[] = {__VA_ARGS__}; for (size_t q_ = 0; q_ < sizeof fr_ / sizeof *fr_; q_++) vr_tensor_free(fr_[q_]); } while (0)

/* ---------------------------------------------------------------- conv values */

START_TEST(conv_hand_values) {
  /* 1x1x3x3 input, 2x2 kernel of ones: sums of 2x2 windows */
  vr_tensor *x = tu_tensor(VR_F64, 4, TU_SHAPE(1, 1, 3, 3), TU_VALS(1, 2, 3, 4, 5, 6, 7, 8, 9));
  vr_tensor *w = tu_tensor(VR_F64, 4, TU_SHAPE(1, 1, 2, 2), TU_VALS(1, 1, 1, 1)), *y = NULL;
  vr_tensor *b = tu_tensor(VR_F64, 1, TU_SHAPE(1), TU_VALS(0.5));
  OK(vr_conv2d(x, w, b, 1, 1, 0, 0, 1, 1, 1, &y));
  tu_assert_values(y, TU_VALS(12.5, 16.5, 24.5, 28.5), 4, 1e-12, "2x2 box");
  FREE(x, w, b, y);
}
END_TEST

START_TEST(conv_basic) {
  vr_tensor *x = rnd(4, TU_SHAPE(2, 3, 5, 6), 1), *w = rnd(4, TU_SHAPE(4, 3, 3, 3), 2), *b = rnd(1, TU_SHAPE(4), 3);
  check_conv(x, w, b, (cv){1, 1, 1, 1, 1, 1, 1}, 1e-12, "3x3 pad 1 with bias");
  check_conv(x, w, NULL, (cv){1, 1, 0, 0, 1, 1, 1}, 1e-12, "3x3 valid, no bias");
  FREE(x, w, b);
}
END_TEST

START_TEST(conv_stride_dilation_nonsquare) {
  vr_tensor *x = rnd(4, TU_SHAPE(2, 2, 9, 7), 4), *w = rnd(4, TU_SHAPE(3, 2, 3, 2), 5), *b = rnd(1, TU_SHAPE(3), 6);
  check_conv(x, w, b, (cv){2, 2, 1, 1, 1, 1, 1}, 1e-12, "stride 2");
  check_conv(x, w, b, (cv){1, 1, 2, 1, 2, 2, 1}, 1e-12, "dilation 2, padding");
  check_conv(x, w, b, (cv){2, 1, 2, 0, 2, 3, 1}, 1e-12, "mixed stride/pad/dilation");
  check_conv(x, w, b, (cv){3, 2, 1, 1, 1, 1, 1}, 1e-12, "stride 3x2");
  FREE(x, w, b);
}
END_TEST

START_TEST(conv_groups) {
  vr_tensor *x = rnd(4, TU_SHAPE(2, 4, 6, 5), 7), *w = rnd(4, TU_SHAPE(6, 2, 3, 3), 8), *b = rnd(1, TU_SHAPE(6), 9);
  check_conv(x, w, b, (cv){1, 1, 1, 1, 1, 1, 2}, 1e-12, "groups 2");
  vr_tensor *wd = rnd(4, TU_SHAPE(4, 1, 3, 3), 10);
  check_conv(x, wd, NULL, (cv){2, 1, 1, 1, 1, 1, 4}, 1e-12, "depthwise");
  FREE(x, w, b, wd);
}
END_TEST

START_TEST(conv_1x1) {
  vr_tensor *x = rnd(4, TU_SHAPE(3, 4, 5, 5), 11), *w = rnd(4, TU_SHAPE(6, 4, 1, 1), 12), *b = rnd(1, TU_SHAPE(6), 13);
  check_conv(x, w, b, (cv){1, 1, 0, 0, 1, 1, 1}, 1e-12, "1x1 direct");
  check_conv(x, w, b, (cv){2, 2, 0, 0, 1, 1, 1}, 1e-12, "1x1 stride 2");
  vr_tensor *w2 = rnd(4, TU_SHAPE(4, 2, 1, 1), 14);
  check_conv(x, w2, NULL, (cv){1, 1, 0, 0, 1, 1, 2}, 1e-12, "1x1 groups 2");
  FREE(x, w, b, w2);
}
END_TEST

START_TEST(conv_f32_and_noncontig) {
  vr_tensor *x = tu_rand(VR_F32, 4, TU_SHAPE(5, 3, 8, 8), 15), *w = tu_rand(VR_F32, 4, TU_SHAPE(8, 3, 3, 3), 16);
  vr_tensor *b = tu_rand(VR_F32, 1, TU_SHAPE(8), 17);
  check_conv(x, w, b, (cv){1, 1, 1, 1, 1, 1, 1}, 1e-5, "f32 3x3");
  vr_tensor *xs = tu_strided(4, TU_SHAPE(2, 3, 6, 7), 18), *wd = rnd(4, TU_SHAPE(2, 3, 3, 3), 19);
  check_conv(xs, wd, NULL, (cv){1, 1, 1, 1, 1, 1, 1}, 1e-12, "transposed-view input");
  FREE(x, w, b, xs, wd);
}
END_TEST

START_TEST(conv_threads_deterministic) {
  /* grad_w must not depend on the thread count */
  vr_tensor *x = tu_rand(VR_F32, 4, TU_SHAPE(37, 3, 6, 6), 20), *w = tu_rand(VR_F32, 4, TU_SHAPE(4, 3, 3, 3), 21);
  vr_tensor *g[2] = {NULL, NULL};
  int prev = vr_num_threads();
  for (int r = 0; r < 2; r++) {
    vr_set_num_threads(r == 0 ? 1 : 3);
    OK(vr_tensor_set_requires_grad(w, 1));
    vr_tensor *y = NULL, *s = NULL;
    OK(vr_conv2d(x, w, NULL, 1, 1, 1, 1, 1, 1, 1, &y));
    OK(vr_tensor_ones(4, TU_SHAPE(37, 4, 6, 6), VR_F32, VR_CPU, &s));
    OK(vr_backward(y, s, 0));
    g[r] = vr_tensor_grad(w);
    vr_tensor_set_grad(w, NULL);
    FREE(y, s);
  }
  vr_set_num_threads(prev);
  tu_assert_close(g[0], g[1], 0, 0, "grad_w with 1 and 3 threads");
  FREE(x, w, g[0], g[1]);
}
END_TEST

START_TEST(conv_empty_batch) {
  vr_tensor *x = rnd(4, TU_SHAPE(0, 2, 5, 5), 25), *w = rnd(4, TU_SHAPE(3, 2, 3, 3), 26), *b = rnd(1, TU_SHAPE(3), 27);
  vr_tensor *y = NULL, *g = NULL;
  OK(vr_tensor_set_requires_grad(w, 1));
  OK(vr_tensor_set_requires_grad(b, 1));
  OK(vr_conv2d(x, w, b, 1, 1, 1, 1, 1, 1, 1, &y));
  ck_assert_int_eq(vr_tensor_numel(y), 0);
  ck_assert_int_eq(vr_tensor_size(y, 1), 3);
  OK(vr_tensor_zeros(4, TU_SHAPE(0, 3, 5, 5), VR_F64, VR_CPU, &g));
  OK(vr_backward(y, g, 0));
  vr_tensor *gw = vr_tensor_grad(w), *gb = vr_tensor_grad(b);
  double *v = tu_values(gw);
  for (int k = 0; k < 54; k++) ck_assert(v[k] == 0);
  free(v);
  tu_assert_values(gb, TU_VALS(0, 0, 0), 3, 0, "grad_b of an empty batch");
  FREE(x, w, b, y, g, gw, gb);
}
END_TEST

/* ---------------------------------------------------------------- conv gradients */

static vr_status f_conv(vr_tensor *const *in, void *ctx, vr_tensor **out) {
  return run_conv(in[0], in[1], in[2], ctx, out);
}
static void grad_conv(vr_tensor *x, vr_tensor *w, vr_tensor *b, cv p, const char *what) {
  vr_tensor *in[3] = {x, w, b};
  tu_gradcheck(what, 3, in, 0, f_conv, &p, 1e-6, 1e-6);
}

START_TEST(conv_grad_basic) {
  vr_tensor *x = rnd(4, TU_SHAPE(2, 2, 4, 5), 30), *w = rnd(4, TU_SHAPE(3, 2, 3, 3), 31), *b = rnd(1, TU_SHAPE(3), 32);
  grad_conv(x, w, b, (cv){1, 1, 1, 1, 1, 1, 1}, "3x3 pad 1");
  grad_conv(x, w, NULL, (cv){1, 1, 0, 0, 1, 1, 1}, "3x3 valid, no bias");
  FREE(x, w, b);
}
END_TEST

START_TEST(conv_grad_stride_dilation) {
  vr_tensor *x = rnd(4, TU_SHAPE(2, 2, 7, 6), 33), *w = rnd(4, TU_SHAPE(2, 2, 3, 2), 34), *b = rnd(1, TU_SHAPE(2), 35);
  grad_conv(x, w, b, (cv){2, 2, 1, 1, 1, 1, 1}, "stride 2 non-square");
  grad_conv(x, w, b, (cv){1, 2, 2, 1, 2, 2, 1}, "dilation 2 padding");
  FREE(x, w, b);
}
END_TEST

START_TEST(conv_grad_groups) {
  vr_tensor *x = rnd(4, TU_SHAPE(2, 4, 5, 5), 36), *w = rnd(4, TU_SHAPE(4, 2, 3, 3), 37), *b = rnd(1, TU_SHAPE(4), 38);
  grad_conv(x, w, b, (cv){2, 1, 1, 1, 2, 1, 2}, "groups 2, stride 2, dilation 2");
  FREE(x, w, b);
}
END_TEST

START_TEST(conv_grad_1x1_and_noncontig) {
  vr_tensor *x = rnd(4, TU_SHAPE(2, 3, 3, 4), 39), *w = rnd(4, TU_SHAPE(2, 3, 1, 1), 40), *b = rnd(1, TU_SHAPE(2), 41);
  grad_conv(x, w, b, (cv){1, 1, 0, 0, 1, 1, 1}, "1x1 direct");
  vr_tensor *xs = tu_strided(4, TU_SHAPE(2, 3, 4, 5), 42), *w3 = rnd(4, TU_SHAPE(2, 3, 2, 2), 43);
  grad_conv(xs, w3, NULL, (cv){1, 1, 1, 0, 1, 1, 1}, "transposed-view input");
  FREE(x, w, b, xs, w3);
}
END_TEST

START_TEST(conv_grad_only_weight) {
  /* x without requires_grad: only grad_w and grad_b are made */
  vr_tensor *x = rnd(4, TU_SHAPE(2, 2, 4, 4), 44), *w = rnd(4, TU_SHAPE(3, 2, 3, 3), 45), *b = rnd(1, TU_SHAPE(3), 46);
  vr_tensor *in[3] = {x, w, b};
  tu_gradcheck("weight and bias only", 3, in, 6, f_conv, &(cv){1, 1, 1, 1, 1, 1, 1}, 1e-6, 1e-6);
  ck_assert_ptr_null(vr_tensor_grad(x));
  FREE(x, w, b);
}
END_TEST

/* ---------------------------------------------------------------- conv errors */

START_TEST(conv_errors) {
  vr_tensor *x = rnd(4, TU_SHAPE(1, 3, 5, 5), 50), *w = rnd(4, TU_SHAPE(4, 3, 3, 3), 51), *y = NULL;
  vr_tensor *x3 = rnd(3, TU_SHAPE(3, 5, 5), 52), *wg = rnd(4, TU_SHAPE(4, 1, 3, 3), 53), *b = rnd(1, TU_SHAPE(5), 54);
  vr_tensor *wbig = rnd(4, TU_SHAPE(4, 3, 7, 7), 55), *wf = tu_rand(VR_F32, 4, TU_SHAPE(4, 3, 3, 3), 56);
  FAILS(vr_conv2d(x, wg, NULL, 1, 1, 0, 0, 1, 1, 2, &y), VR_E_SHAPE, "in_channels divisible by groups");
  FAILS(vr_conv2d(x, wg, NULL, 1, 1, 0, 0, 1, 1, 1, &y), VR_E_SHAPE, "weight: expected dim 1");
  FAILS(vr_conv2d(x3, w, NULL, 1, 1, 0, 0, 1, 1, 1, &y), VR_E_SHAPE, "x: expected 4 dims");
  FAILS(vr_conv2d(x, w, NULL, 0, 1, 0, 0, 1, 1, 1, &y), VR_E_ARG, "stride_h");
  FAILS(vr_conv2d(x, w, NULL, 1, 1, -1, 0, 1, 1, 1, &y), VR_E_ARG, "pad_h");
  FAILS(vr_conv2d(x, w, NULL, 1, 1, 0, 0, 0, 1, 1, &y), VR_E_ARG, "dil_h");
  FAILS(vr_conv2d(x, w, NULL, 1, 1, 0, 0, 1, 1, 0, &y), VR_E_ARG, "groups");
  FAILS(vr_conv2d(x, w, b, 1, 1, 0, 0, 1, 1, 1, &y), VR_E_SHAPE, "bias: expected [4]");
  FAILS(vr_conv2d(x, wbig, NULL, 1, 1, 0, 0, 1, 1, 1, &y), VR_E_SHAPE, "smaller than the dilated kernel");
  FAILS(vr_conv2d(x, w, NULL, 1, 1, 0, 0, 3, 2, 1, &y), VR_E_SHAPE, "dilated kernel 7x5");
  FAILS(vr_conv2d(x, wf, NULL, 1, 1, 0, 0, 1, 1, 1, &y), VR_E_DTYPE, "weight");
  FAILS(vr_conv2d(NULL, w, NULL, 1, 1, 0, 0, 1, 1, 1, &y), VR_E_ARG, "x:");
  ck_assert_ptr_null(y);
  FREE(x, w, x3, wg, b, wbig, wf);
}
END_TEST

/* ---------------------------------------------------------------- pooling references */

typedef struct { int kh, kw, sh, sw, ph, pw, incl; } pl;

static vr_tensor *ref_pool(const vr_tensor *x, const pl *p, int is_max) {
  int64_t N = vr_tensor_size(x, 0), C = vr_tensor_size(x, 1), H = vr_tensor_size(x, 2), W = vr_tensor_size(x, 3);
  int64_t Ho = (H + 2 * p->ph - p->kh) / p->sh + 1, Wo = (W + 2 * p->pw - p->kw) / p->sw + 1;
  double *xv = tu_values(x), *y = calloc((size_t)(N * C * Ho * Wo), sizeof(double));
  for (int64_t q = 0; q < N * C; q++)
    for (int64_t oh = 0; oh < Ho; oh++)
      for (int64_t ow = 0; ow < Wo; ow++) {
        double best = -INFINITY, s = 0;
        int cnt = 0, all = 0;
        for (int i = 0; i < p->kh; i++)
          for (int j = 0; j < p->kw; j++) {
            int64_t ih = oh * p->sh - p->ph + i, iw = ow * p->sw - p->pw + j;
            if (ih < H + p->ph && iw < W + p->pw) all++; /* inside the padded input */
            if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
            double v = xv[(q * H + ih) * W + iw];
            if (v > best) best = v;
            s += v;
            cnt++;
          }
        y[(q * Ho + oh) * Wo + ow] = is_max ? best : s / (p->incl ? all : cnt);
      }
  vr_tensor *t = NULL;
  ck_assert(vr_tensor_from_buffer(y, 4, (int64_t[]){N, C, Ho, Wo}, VR_F64, VR_CPU, &t) == VR_OK);
  free(xv); free(y);
  return t;
}

static vr_tensor *ref_adaptive(const vr_tensor *x, int oh_, int ow_) {
  int64_t N = vr_tensor_size(x, 0), C = vr_tensor_size(x, 1), H = vr_tensor_size(x, 2), W = vr_tensor_size(x, 3);
  double *xv = tu_values(x), *y = calloc((size_t)(N * C * oh_ * ow_), sizeof(double));
  for (int64_t q = 0; q < N * C; q++)
    for (int64_t i = 0; i < oh_; i++)
      for (int64_t j = 0; j < ow_; j++) {
        int64_t h0 = (int64_t)floor((double)(i * H) / oh_), h1 = (int64_t)ceil((double)((i + 1) * H) / oh_);
        int64_t w0 = (int64_t)floor((double)(j * W) / ow_), w1 = (int64_t)ceil((double)((j + 1) * W) / ow_);
        double s = 0;
        for (int64_t a = h0; a < h1; a++)
          for (int64_t b = w0; b < w1; b++) s += xv[(q * H + a) * W + b];
        y[(q * oh_ + i) * ow_ + j] = s / (double)((h1 - h0) * (w1 - w0));
      }
  vr_tensor *t = NULL;
  ck_assert(vr_tensor_from_buffer(y, 4, (int64_t[]){N, C, oh_, ow_}, VR_F64, VR_CPU, &t) == VR_OK);
  free(xv); free(y);
  return t;
}

static vr_status f_max(vr_tensor *const *in, void *ctx, vr_tensor **out) {
  const pl *p = ctx;
  return vr_max_pool2d(in[0], p->kh, p->kw, p->sh, p->sw, p->ph, p->pw, out);
}
static vr_status f_avg(vr_tensor *const *in, void *ctx, vr_tensor **out) {
  const pl *p = ctx;
  return vr_avg_pool2d(in[0], p->kh, p->kw, p->sh, p->sw, p->ph, p->pw, p->incl, out);
}
static vr_status f_adapt(vr_tensor *const *in, void *ctx, vr_tensor **out) {
  const int *o = ctx;
  return vr_adaptive_avg_pool2d(in[0], o[0], o[1], out);
}

static void check_pool(vr_tensor *x, pl p, int is_max, const char *what) {
  vr_tensor *y = NULL, *r = ref_pool(x, &p, is_max);
  OK(is_max ? f_max(&x, &p, &y) : f_avg(&x, &p, &y));
  tu_assert_close(y, r, 1e-12, 1e-12, what);
  FREE(y, r);
}

START_TEST(maxpool_values) {
  vr_tensor *x = rnd(4, TU_SHAPE(2, 3, 7, 6), 60);
  check_pool(x, (pl){3, 3, 2, 2, 1, 1, 0}, 1, "3x3 s2 p1");
  check_pool(x, (pl){2, 2, 2, 2, 0, 0, 0}, 1, "2x2 s2");
  check_pool(x, (pl){3, 2, 1, 2, 1, 0, 0}, 1, "3x2 non-square");
  vr_tensor *xf = tu_rand(VR_F32, 4, TU_SHAPE(2, 2, 5, 5), 61);
  check_pool(xf, (pl){3, 3, 2, 2, 1, 1, 0}, 1, "f32");
  /* all-negative input with padding: padding is -inf, never 0 */
  vr_tensor *neg = tu_tensor(VR_F64, 4, TU_SHAPE(1, 1, 2, 2), TU_VALS(-4, -3, -2, -1)), *y = NULL;
  OK(vr_max_pool2d(neg, 3, 3, 1, 1, 1, 1, &y));
  tu_assert_values(y, TU_VALS(-1, -1, -1, -1), 4, 0, "-inf padding");
  FREE(x, xf, neg, y);
}
END_TEST

START_TEST(maxpool_2x2_f32) {
  /* the f32 2x2 stride-2 path against the general f64 loop: odd sizes (a dropped last row and
   * column), ties (values rounded to a coarse grid), a NaN and -inf, and the gradient's scatter */
  const int64_t hw[][2] = {{28, 28}, {7, 9}, {2, 3}};
  for (size_t c = 0; c < sizeof hw / sizeof *hw; c++) {
    int64_t H = hw[c][0], W = hw[c][1], Ho = H / 2, Wo = W / 2;
    vr_tensor *r = tu_rand(VR_F64, 4, TU_SHAPE(2, 3, H, W), 60 + c), *x64 = NULL, *x32 = NULL;
    OK(vr_mul_scalar(r, 4, &x64));
    double *v = tu_values(x64);
    for (int64_t k = 0; k < 2 * 3 * H * W; k++) v[k] = floor(v[k]);
    v[1] = NAN;
    v[W + 2 < H * W ? W + 2 : 0] = -INFINITY;
    vr_tensor_free(x64);
    OK(vr_tensor_from_buffer(v, 4, TU_SHAPE(2, 3, H, W), VR_F64, VR_CPU, &x64));
    free(v);
    OK(vr_tensor_to_dtype(x64, VR_F32, &x32));
    vr_tensor *y[2], *gx[2], *g64 = tu_rand(VR_F64, 4, TU_SHAPE(2, 3, Ho, Wo), 70 + c), *g32 = NULL;
    OK(vr_tensor_to_dtype(g64, VR_F32, &g32));
    vr_tensor *xs[2] = {x64, x32}, *gs[2] = {g64, g32};
    for (int d = 0; d < 2; d++) {
      OK(vr_tensor_set_requires_grad(xs[d], 1));
      OK(vr_max_pool2d(xs[d], 2, 2, 2, 2, 0, 0, &y[d]));
      OK(vr_backward(y[d], gs[d], 0));
      gx[d] = vr_tensor_grad(xs[d]);
    }
    tu_assert_close(y[1], y[0], 0, 0, "max pool 2x2 f32 values");
    tu_assert_close(gx[1], gx[0], 1e-7, 0, "max pool 2x2 f32 gradient");
    FREE(r, x64, x32, y[0], y[1], gx[0], gx[1], g64, g32);
  }
}
END_TEST

START_TEST(maxpool_ties_first_index) {
  /* a constant plane: each window's gradient goes to its first (top-left) element */
  vr_tensor *x = NULL, *y = NULL, *g = NULL;
  OK(vr_tensor_full(4, TU_SHAPE(1, 1, 4, 4), 2.0, VR_F64, VR_CPU, &x));
  OK(vr_tensor_set_requires_grad(x, 1));
  OK(vr_max_pool2d(x, 2, 2, 2, 2, 0, 0, &y));
  OK(vr_tensor_ones(4, TU_SHAPE(1, 1, 2, 2), VR_F64, VR_CPU, &g));
  OK(vr_backward(y, g, 0));
  vr_tensor *gx = vr_tensor_grad(x);
  tu_assert_values(gx, TU_VALS(1, 0, 1, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0), 16, 0, "first index on ties");
  FREE(x, y, g, gx);
}
END_TEST

START_TEST(maxpool_grad) {
  vr_tensor *x = rnd(4, TU_SHAPE(2, 2, 6, 5), 62), *xs = tu_strided(4, TU_SHAPE(1, 2, 5, 6), 63);
  tu_gradcheck("max 3x3 s2 p1", 1, &x, 0, f_max, &(pl){3, 3, 2, 2, 1, 1, 0}, 1e-6, 1e-6);
  tu_gradcheck("max overlapping s1", 1, &x, 0, f_max, &(pl){2, 3, 1, 1, 1, 1, 0}, 1e-6, 1e-6);
  tu_gradcheck("max transposed view", 1, &xs, 0, f_max, &(pl){2, 2, 2, 2, 0, 0, 0}, 1e-6, 1e-6);
  FREE(x, xs);
}
END_TEST

START_TEST(avgpool_values) {
  vr_tensor *x = rnd(4, TU_SHAPE(2, 3, 7, 6), 64);
  check_pool(x, (pl){3, 3, 2, 2, 1, 1, 1}, 0, "count_include_pad");
  check_pool(x, (pl){3, 3, 2, 2, 1, 1, 0}, 0, "exclude pad");
  check_pool(x, (pl){2, 3, 2, 1, 1, 1, 1}, 0, "non-square include pad");
  check_pool(x, (pl){2, 2, 2, 2, 0, 0, 0}, 0, "no padding");
  vr_tensor *o = NULL;
  OK(vr_tensor_ones(4, TU_SHAPE(1, 1, 3, 3), VR_F64, VR_CPU, &o));
  vr_tensor *y = NULL;
  OK(vr_avg_pool2d(o, 3, 3, 1, 1, 1, 1, 1, &y));
  tu_assert_values(y, TU_VALS(4. / 9, 6. / 9, 4. / 9, 6. / 9, 1, 6. / 9, 4. / 9, 6. / 9, 4. / 9), 9, 1e-12, "ones incl");
  vr_tensor_free(y);
  OK(vr_avg_pool2d(o, 3, 3, 1, 1, 1, 1, 0, &y));
  tu_assert_values(y, TU_VALS(1, 1, 1, 1, 1, 1, 1, 1, 1), 9, 1e-12, "ones excl");
  FREE(x, o, y);
}
END_TEST

START_TEST(avgpool_grad) {
  vr_tensor *x = rnd(4, TU_SHAPE(2, 2, 5, 6), 65), *xs = tu_strided(4, TU_SHAPE(1, 2, 5, 4), 66);
  tu_gradcheck("avg incl pad", 1, &x, 0, f_avg, &(pl){3, 3, 2, 2, 1, 1, 1}, 1e-6, 1e-6);
  tu_gradcheck("avg excl pad", 1, &x, 0, f_avg, &(pl){3, 2, 1, 2, 1, 1, 0}, 1e-6, 1e-6);
  tu_gradcheck("avg transposed view", 1, &xs, 0, f_avg, &(pl){2, 2, 1, 1, 0, 0, 1}, 1e-6, 1e-6);
  FREE(x, xs);
}
END_TEST

START_TEST(adaptive_values) {
  vr_tensor *x = rnd(4, TU_SHAPE(2, 3, 7, 5), 67), *y = NULL, *r = NULL;
  int shapes[][2] = {{3, 2}, {1, 1}, {7, 5}, {4, 4}, {5, 3}};
  for (int s = 0; s < 5; s++) {
    OK(vr_adaptive_avg_pool2d(x, shapes[s][0], shapes[s][1], &y));
    r = ref_adaptive(x, shapes[s][0], shapes[s][1]);
    tu_assert_close(y, r, 1e-12, 1e-12, "adaptive");
    FREE(y, r);
  }
  /* 3-D input: [C, H, W] */
  vr_tensor *x3 = rnd(3, TU_SHAPE(2, 6, 6), 68);
  OK(vr_adaptive_avg_pool2d(x3, 1, 1, &y));
  ck_assert_int_eq(vr_tensor_ndim(y), 3);
  double *xv = tu_values(x3), *yv = tu_values(y), m = 0;
  for (int k = 0; k < 36; k++) m += xv[k];
  ck_assert(fabs(yv[0] - m / 36) < 1e-12);
  free(xv); free(yv);
  FREE(x, x3, y);
}
END_TEST

START_TEST(adaptive_grad) {
  vr_tensor *x = rnd(4, TU_SHAPE(2, 2, 7, 5), 69), *x3 = tu_strided(3, TU_SHAPE(2, 5, 6), 70);
  tu_gradcheck("adaptive 3x2 (overlapping bins)", 1, &x, 0, f_adapt, (int[]){3, 2}, 1e-6, 1e-6);
  tu_gradcheck("adaptive 3-D transposed", 1, &x3, 0, f_adapt, (int[]){2, 4}, 1e-6, 1e-6);
  FREE(x, x3);
}
END_TEST

START_TEST(pool_3d_input) {
  vr_tensor *x = rnd(3, TU_SHAPE(2, 5, 5), 71), *y = NULL;
  OK(vr_max_pool2d(x, 2, 2, 2, 2, 0, 0, &y));
  ck_assert_int_eq(vr_tensor_ndim(y), 3);
  ck_assert_int_eq(vr_tensor_size(y, 2), 2);
  vr_tensor_free(y);
  tu_gradcheck("max 3-D", 1, &x, 0, f_max, &(pl){3, 3, 1, 1, 1, 1, 0}, 1e-6, 1e-6);
  tu_gradcheck("avg 3-D", 1, &x, 0, f_avg, &(pl){3, 3, 2, 2, 1, 1, 0}, 1e-6, 1e-6);
  vr_tensor_free(x);
}
END_TEST

START_TEST(pool_errors) {
  vr_tensor *x = rnd(4, TU_SHAPE(1, 1, 4, 4), 72), *x2 = rnd(2, TU_SHAPE(4, 4), 73), *y = NULL, *xi = NULL;
  FAILS(vr_max_pool2d(x, 2, 2, 2, 2, 2, 0, &y), VR_E_ARG, "pad_h, pad_w: expected 0 <= pad <= kernel / 2");
  FAILS(vr_max_pool2d(x, 0, 2, 2, 2, 0, 0, &y), VR_E_ARG, "k_h");
  FAILS(vr_max_pool2d(x, 2, 2, 0, 2, 0, 0, &y), VR_E_ARG, "stride_h");
  FAILS(vr_max_pool2d(x, 5, 5, 1, 1, 0, 0, &y), VR_E_SHAPE, "smaller than the kernel 5x5");
  FAILS(vr_avg_pool2d(x2, 2, 2, 2, 2, 0, 0, 1, &y), VR_E_SHAPE, "x: expected 3 or 4 dims");
  FAILS(vr_adaptive_avg_pool2d(x, 0, 2, &y), VR_E_ARG, "out_h");
  OK(vr_tensor_zeros(4, TU_SHAPE(1, 1, 4, 4), VR_I64, VR_CPU, &xi));
  FAILS(vr_max_pool2d(xi, 2, 2, 2, 2, 0, 0, &y), VR_E_DTYPE, "x: expected a float tensor");
  FAILS(vr_max_pool2d(NULL, 2, 2, 2, 2, 0, 0, &y), VR_E_ARG, "x:");
  ck_assert_ptr_null(y);
  FREE(x, x2, xi);
}
END_TEST

static Suite *conv_suite(void) {
  Suite *s = suite_create("conv");
  TCase *c = tcase_create("conv2d");
  tcase_set_timeout(c, 60);
  tcase_add_test(c, conv_hand_values);
  tcase_add_test(c, conv_basic);
  tcase_add_test(c, conv_stride_dilation_nonsquare);
  tcase_add_test(c, conv_groups);
  tcase_add_test(c, conv_1x1);
  tcase_add_test(c, conv_f32_and_noncontig);
  tcase_add_test(c, conv_threads_deterministic);
  tcase_add_test(c, conv_empty_batch);
  tcase_add_test(c, conv_grad_basic);
  tcase_add_test(c, conv_grad_stride_dilation);
  tcase_add_test(c, conv_grad_groups);
  tcase_add_test(c, conv_grad_1x1_and_noncontig);
  tcase_add_test(c, conv_grad_only_weight);
  tcase_add_test(c, conv_errors);
  suite_add_tcase(s, c);
  TCase *p = tcase_create("pool");
  tcase_set_timeout(p, 60);
  tcase_add_test(p, maxpool_values);
  tcase_add_test(p, maxpool_ties_first_index);
  tcase_add_test(p, maxpool_2x2_f32);
  tcase_add_test(p, maxpool_grad);
  tcase_add_test(p, avgpool_values);
  tcase_add_test(p, avgpool_grad);
  tcase_add_test(p, adaptive_values);
  tcase_add_test(p, adaptive_grad);
  tcase_add_test(p, pool_3d_input);
  tcase_add_test(p, pool_errors);
  suite_add_tcase(s, p);
  return s;
}

VR_TEST_MAIN(conv_suite)
