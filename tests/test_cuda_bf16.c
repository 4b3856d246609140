/* test_cuda_bf16.c: the bf16 (mixed-precision) CUDA paths against the CPU: the f32 <-> bf16 casts
 * (bit-exact), the bf16 matmul through cuBLAS (plain, transposed, batched, broadcast, the linear
 * fold), conv2d forward and backward in bf16 through cuDNN and through the im2col fallback, batch
 * norm on bf16 activations with f32 parameters, and
 * autocast (vr_autocast_set) through the public API with autograd, as the trainer uses it.
 *
 * Both devices accumulate in f32 and round once to bf16, in different orders: results agree to
 * one bf16 ulp (rtol 2^-7) plus a small absolute term for values near zero; the casts are exact.
 * test_bf16_timing prints fwd+bwd times of f32 and autocast bf16 (a ResNet-18 conv, a GEMM).
 * Without a GPU each case prints "SKIP <case>: no CUDA device" and passes;
 * VISREG_TEST_CUDA_AS_CPU=1 runs the harness with the CPU standing in for the GPU. */
#include "testutil.h"
#include <time.h>


#define RTOL 0x1p-7 /* one bf16 ulp */

/* the CUDA emulator (tools/cuda-emu/run test_cuda_bf16) has no cuBLAS matmul kernel */
#define NEED_MATMUL()                                                                              \
  do {                                                                                             \
    if (!vr_kernel_exists(VR_OP_MATMUL, DEV, 0)) {                                                 \
      printf("SKIP %s: no matmul kernel on %s\n", __func__, vr_device_name(DEV));                  \
      return;                                                                                      \
    }                                                                                              \
  } while (0)

static vr_tensor *rnd(vr_dtype dt, int ndim, const int64_t *shape, uint64_t seed) {
  vr_generator *g = NULL;
  vr_tensor *t = NULL, *u = NULL;
  OK(vr_generator_new(seed, 17, &g));
  OK(vr_rand_uniform(g, ndim, shape, -1, 1, VR_F32, VR_CPU, &t));
  vr_generator_free(g);
  if (dt == VR_F32) return t;
  OK(vr_tensor_to_dtype(t, dt, &u));
  vr_tensor_free(t);
  return u;
}
static vr_tensor *to(const vr_tensor *t, vr_device d) {
  vr_tensor *o = NULL;
  OK(vr_tensor_to_device(t, d, &o));
  return o;
}
/* a leaf on DEV with t's values (a separate CPU tensor when the CPU stands in) */
static vr_tensor *dev_leaf(const vr_tensor *t) {
  vr_tensor *o = NULL, *c = NULL;
  if (DEV == VR_CPU) {
    OK(vr_tensor_clone(t, &c));
    OK(vr_detach(c, &o));
    vr_tensor_free(c);
  } else {
    o = to(t, DEV);
  }
  OK(vr_tensor_set_requires_grad(o, 1));
  return o;
}

/* the largest |value| of t */
static double maxabs(const vr_tensor *t) {
  double *v = tu_values(t), m = 0;
  for (int64_t k = 0; k < vr_tensor_numel(t); k++) m = fmax(m, fabs(v[k]));
  free(v);
  return m;
}

/* a result on DEV against the CPU's, as f64 values, |d - c| <= atol + rtol |c| */
static void cmp_dev(const vr_tensor *c, const vr_tensor *d, double rtol, double atol, const char *what) {
  ck_assert_msg(vr_tensor_dtype(c) == vr_tensor_dtype(d), "%s: dtype %s vs %s", what, vr_dtype_name(vr_tensor_dtype(c)),
                vr_dtype_name(vr_tensor_dtype(d)));
  vr_tensor *h = to(d, VR_CPU);
  double w = cmp(c, h, rtol, atol, what);
  vr_tensor_free(h);
  if (getenv("VISREG_TEST_VERBOSE")) printf("  %-56s max |diff| %.3g\n", what, w);
}

/* ---------------------------------------------------------------- casts */

START_TEST(test_bf16_cast_parity) {
  NEED_DEV();
  /* ties, near-overflow, infinities, subnormals, NaN payloads */
  uint32_t bits[] = {0x3f808000u, 0x3f818000u, 0xbf808000u, 0x3f808001u, 0x7f7fffffu, 0x7f800000u, 0xff800000u,
                     0x00000000u, 0x80000000u, 0x00012345u, 0x7fffffffu, 0xffffffffu, 0x7f800001u, 0x7fc00000u};
  int n = (int)(sizeof bits / sizeof *bits);
  /* the specials three times over, so that each sits in an 8-wide vector of the dense cast too;
   * 4099 random values: vectors and a tail; an odd-offset view: the element-wise path */
  uint32_t rep[3 * sizeof bits / sizeof *bits];
  for (int k = 0; k < 3 * n; k++) rep[k] = bits[(k + k / n) % n];
  vr_tensor *c = NULL, *c3 = NULL, *r = rnd(VR_F32, 1, SH(4099), 1), *odd = NULL, *cb = NULL, *db = NULL, *dd = NULL,
            *back = NULL, *dback = NULL;
  OK(vr_tensor_from_buffer(bits, 1, SH(n), VR_F32, VR_CPU, &c));
  OK(vr_tensor_from_buffer(rep, 1, SH(3 * n), VR_F32, VR_CPU, &c3));
  OK(vr_narrow(r, 0, 3, 4000, &odd));
  vr_tensor *srcs[4] = {c, c3, r, odd};
  for (int k = 0; k < 4; k++) {
    vr_tensor *full = to(srcs[k] == odd ? r : srcs[k], DEV);
    if (srcs[k] == odd) OK(vr_narrow(full, 0, 3, 4000, &dd));
    else { dd = full; vr_tensor_retain(full); }
    vr_tensor_free(full);
    OK(vr_tensor_to_dtype(srcs[k], VR_BF16, &cb));
    OK(vr_tensor_to_dtype(dd, VR_BF16, &db));
    cmp_dev(cb, db, 0, 0, "f32 -> bf16");
    OK(vr_tensor_to_dtype(cb, VR_F32, &back));
    OK(vr_tensor_to_dtype(db, VR_F32, &dback));
    cmp_dev(back, dback, 0, 0, "bf16 -> f32");
    vr_tensor *objs[] = {dd, cb, db, back, dback};
    for (size_t j = 0; j < sizeof objs / sizeof *objs; j++) vr_tensor_free(objs[j]);
  }
  vr_tensor_free(c);
  vr_tensor_free(c3);
  vr_tensor_free(odd);
  vr_tensor_free(r);
}
END_TEST

/* ---------------------------------------------------------------- matmul */

START_TEST(test_bf16_matmul_parity) {
  NEED_DEV();
  NEED_MATMUL();
  /* {ndim a, ndim b, shape a, shape b, transpose a's last two dims, transpose b's} */
  struct { int na, nb; int64_t sa[3], sb[3]; int ta, tb; } cs[] = {
      {2, 2, {64, 96}, {96, 48}, 0, 0},  {2, 2, {64, 96}, {96, 48}, 1, 0}, {2, 2, {33, 70}, {70, 17}, 0, 1},
      {2, 2, {33, 70}, {70, 17}, 1, 1},  {3, 2, {4, 16, 40}, {40, 24}, 0, 0}, /* the linear fold */
      {3, 3, {5, 8, 40}, {5, 40, 12}, 0, 0}, {3, 3, {5, 8, 40}, {1, 40, 12}, 0, 1}, {1, 2, {40}, {40, 9}, 0, 0},
      {2, 2, {256, 512}, {512, 128}, 0, 1}};
  for (size_t c = 0; c < sizeof cs / sizeof *cs; c++) {
    vr_tensor *a = rnd(VR_BF16, cs[c].na, cs[c].sa, 10 + c), *b = rnd(VR_BF16, cs[c].nb, cs[c].sb, 20 + c);
    if (cs[c].ta) { /* the same logical matrix stored transposed */
      vr_tensor *t = NULL, *u = NULL;
      OK(vr_transpose(a, -1, -2, &t));
      OK(vr_contiguous(t, &u));
      vr_tensor_free(t);
      vr_tensor_free(a);
      OK(vr_transpose(u, -1, -2, &a));
      vr_tensor_free(u);
    }
    if (cs[c].tb) {
      vr_tensor *t = NULL, *u = NULL;
      OK(vr_transpose(b, -1, -2, &t));
      OK(vr_contiguous(t, &u));
      vr_tensor_free(t);
      vr_tensor_free(b);
      OK(vr_transpose(u, -1, -2, &b));
      vr_tensor_free(u);
    }
    vr_tensor *ad = mirror(a, DEV), *bd = mirror(b, DEV), *y = NULL, *yd = NULL;
    OK(vr_matmul(a, b, &y));
    OK(vr_matmul(ad, bd, &yd));
    char what[96];
    snprintf(what, sizeof what, "bf16 matmul case %zu", c);
    cmp_dev(y, yd, RTOL, 1e-3, what);
    vr_tensor *objs[] = {a, b, ad, bd, y, yd};
    for (size_t k = 0; k < sizeof objs / sizeof *objs; k++) vr_tensor_free(objs[k]);
  }
}
END_TEST

/* ---------------------------------------------------------------- conv2d */

/* q = {N, C, H, W, Cout, kh, kw, sh, sw, ph, pw, dh, dw, groups}; bias: with a bias (the bf16 bias
 * add rounds twice on CUDA after cuDNN, once on the CPU: a looser absolute tolerance) */
/* nhwc: channels-last (i[7] = 1): x [N, H, W, C], w [Cout, kh, kw, C/g], y [N, Ho, Wo, Cout] */
static void conv_case_layout(const int64_t *q, int want, int bias, const char *path, int nhwc) {
  char what[200];
  int64_t N = q[0], C = q[1], H = q[2], W = q[3], Co = q[4], kh = q[5], kw = q[6], G = q[13];
  int64_t Ho = (H + 2 * q[9] - q[11] * (kh - 1) - 1) / q[7] + 1, Wo = (W + 2 * q[10] - q[12] * (kw - 1) - 1) / q[8] + 1;
  int64_t xs[4] = {N, C, H, W}, ws[4] = {Co, C / G, kh, kw}, ys[4] = {N, Co, Ho, Wo};
  if (nhwc) {
    int64_t xh[4] = {N, H, W, C}, wh[4] = {Co, kh, kw, C / G}, yh[4] = {N, Ho, Wo, Co};
    memcpy(xs, xh, sizeof xs);
    memcpy(ws, wh, sizeof ws);
    memcpy(ys, yh, sizeof ys);
  }
  /* |y| grows like sqrt(K); the absolute term is a fraction of an ulp of the typical value */
  double scale = sqrt((double)(C / G * kh * kw)), atol = (bias ? 4e-3 : 1e-3) * scale;
  vr_kernel_args a = {.n_in = 3, .n_out = 1, .i = {q[7], q[8], q[9], q[10], q[11], q[12], G, nhwc}};
  a.in[0] = rnd(VR_BF16, 4, xs, 120);
  a.in[1] = rnd(VR_BF16, 4, ws, 121);
  a.in[2] = bias ? rnd(VR_BF16, 1, &Co, 122) : NULL;
  a.out[0] = poisoned(VR_BF16, 4, ys);
  snprintf(what, sizeof what, "bf16 conv2d%s %s N%lld C%lld %lldx%lld Co%lld k%lldx%lld g%lld%s", nhwc ? " nhwc" : "", path, (long long)N,
           (long long)C, (long long)H, (long long)W, (long long)Co, (long long)kh, (long long)kw, (long long)G,
           bias ? " bias" : "");
  run_cmp(VR_OP_CONV2D, 0, &a, RTOL, atol, what);
  vr_kernel_args b = {.n_in = 3, .n_out = 3, .i = {q[7], q[8], q[9], q[10], q[11], q[12], G, nhwc}};
  b.in[0] = rnd(VR_BF16, 4, ys, 123);
  b.in[1] = a.in[0];
  b.in[2] = a.in[1];
  vr_tensor_retain(b.in[1]);
  vr_tensor_retain(b.in[2]);
  if (want & 1) b.out[0] = poisoned(VR_BF16, 4, xs);
  if (want & 2) b.out[1] = poisoned(VR_BF16, 4, ws);
  if (want & 4) b.out[2] = poisoned(VR_BF16, 1, &Co);
  /* grad_w and grad_b sum N Ho Wo terms */
  double bscale = sqrt((double)(N * Ho * Wo)) + scale;
  snprintf(what, sizeof what, "bf16 conv2d%s backward %s N%lld C%lld Co%lld k%lldx%lld g%lld grads %d", nhwc ? " nhwc" : "", path, (long long)N,
           (long long)C, (long long)Co, (long long)kh, (long long)kw, (long long)G, want);
  run_cmp(VR_OP_CONV2D, 1, &b, RTOL, 1e-3 * bscale, what);
  free_args(&b);
  free_args(&a);
}

static void conv_case(const int64_t *q, int want, int bias, const char *path) { conv_case_layout(q, want, bias, path, 0); }

START_TEST(test_bf16_conv2d_parity) {
  NEED_DEV();
  /* {N, C, H, W, Cout, kh, kw, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups}: the ResNet-18
   * shapes (3x3 pad 1, 1x1 stride-2 shortcut, the cifar stem) and odd ones (groups, dilation) */
  static const int64_t geo[][14] = {{8, 64, 14, 14, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1}, {8, 64, 14, 14, 128, 1, 1, 2, 2, 0, 0, 1, 1, 1},
                                    {8, 1, 28, 28, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1},  {4, 128, 7, 7, 128, 3, 3, 2, 2, 1, 1, 1, 1, 1},
                                    {3, 4, 9, 11, 6, 3, 3, 2, 1, 1, 1, 1, 2, 2},    {2, 8, 7, 7, 8, 1, 1, 1, 1, 0, 0, 1, 1, 8}};
  const char *conv0 = vr_variant("conv"); /* the suite's own (VISREG_TEST_VARIANT) */
  for (int path = 0; path < 2; path++) {
    if (path) vr_set_variant("conv", "im2col");
    for (size_t g = 0; g < sizeof geo / sizeof *geo; g++) {
      conv_case(geo[g], 7, 0, path ? "im2col" : "default");
      if (g == 0 || g == 4) {
        conv_case(geo[g], 1, 1, path ? "im2col" : "default");
        conv_case(geo[g], 2, 0, path ? "im2col" : "default");
      }
    }
    vr_set_variant("conv", conv0);
  }
}
END_TEST

/* channels-last: the ResNet-18 shapes of the GPU recipe (cuDNN's NHWC tensor-core path) */
START_TEST(test_bf16_conv2d_nhwc_parity) {
  NEED_DEV();
  static const int64_t geo[][14] = {{8, 64, 14, 14, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1}, {8, 64, 14, 14, 128, 1, 1, 2, 2, 0, 0, 1, 1, 1},
                                    {8, 1, 28, 28, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1},  {4, 128, 7, 7, 128, 3, 3, 2, 2, 1, 1, 1, 1, 1},
                                    {3, 4, 9, 11, 6, 3, 3, 2, 1, 1, 1, 1, 2, 2}};
  for (size_t g = 0; g < sizeof geo / sizeof *geo; g++) conv_case_layout(geo[g], 7, g == 0, "default", 1);
  conv_case_layout(geo[0], 2, 0, "default", 1);
}
END_TEST

/* ---------------------------------------------------------------- batch norm on bf16 activations */

/* x bf16 with f32 weight, bias and running statistics (autocast activations): y and grad_x bf16
 * (one rounding of the f32-accurate value on both devices), stats and parameter grads f32; the
 * running statistics are updated in place on both. Shapes of the ResNet recipe and odd ones. */
START_TEST(test_bf16_batchnorm_mixed_parity) {
  NEED_DEV();
  static const int64_t geo[][3] = {{16, 64, 784}, {8, 128, 49}, {5, 7, 13}, {33, 3, 1}};
  for (size_t g = 0; g < sizeof geo / sizeof *geo; g++) {
    int64_t N = geo[g][0], C = geo[g][1], S = geo[g][2], xs[3] = {N, C, S};
    char what[96];
    vr_kernel_args a = {.n_in = 5, .n_out = 3, .i = {1, N, C, S}, .f = {0.1, 1e-5}};
    a.in[0] = rnd(VR_BF16, 3, xs, 160);
    a.in[1] = rnd(VR_F32, 1, &C, 161);
    a.in[2] = rnd(VR_F32, 1, &C, 162);
    a.in[3] = rnd(VR_F32, 1, &C, 163);
    vr_tensor *u = rnd(VR_F32, 1, &C, 164); /* in (-1, 1): |u| is a variance */
    OK(vr_abs(u, &a.in[4]));
    vr_tensor_free(u);
    a.out[0] = poisoned(VR_BF16, 3, xs);
    a.out[1] = poisoned(VR_F32, 1, &C);
    a.out[2] = poisoned(VR_F32, 1, &C);
    snprintf(what, sizeof what, "bf16 batch norm, f32 parameters, N%lld C%lld S%lld", (long long)N, (long long)C, (long long)S);
    run_cmp(VR_OP_BATCHNORM, 0, &a, RTOL, 1e-2, what);
    vr_kernel_args b = {.n_in = 5, .n_out = 3, .i = {1, N, C, S}};
    b.in[0] = rnd(VR_BF16, 3, xs, 165);
    b.in[1] = a.in[0];
    b.in[2] = a.in[1];
    b.in[3] = a.out[1];
    b.in[4] = a.out[2];
    for (int k = 1; k < 5; k++) vr_tensor_retain(b.in[k]);
    b.out[0] = poisoned(VR_BF16, 3, xs);
    b.out[1] = poisoned(VR_F32, 1, &C);
    b.out[2] = poisoned(VR_F32, 1, &C);
    snprintf(what, sizeof what, "bf16 batch norm backward, f32 parameters, N%lld C%lld S%lld", (long long)N, (long long)C,
             (long long)S);
    run_cmp(VR_OP_BATCHNORM, 1, &b, RTOL, 1e-2 * sqrt((double)(N * S)), what);
    free_args(&b);
    free_args(&a);
  }
}
END_TEST

/* channels-last batch norm (S == 1, x [M, C] bf16, f32 parameters: the NHWC path): 8-wide vectors
 * (C a multiple of 8), scalar columns (C = 7, or x one element into its buffer), several chunks of
 * rows and column groups; data far from 0 (mean 1000: bf16 steps of 4 there) against cancellation */
static vr_tensor *rnd_in(vr_dtype dt, int ndim, const int64_t *shape, uint64_t seed, double lo, double hi) {
  vr_generator *g = NULL;
  vr_tensor *t = NULL, *u = NULL;
  OK(vr_generator_new(seed, 17, &g));
  OK(vr_rand_uniform(g, ndim, shape, lo, hi, VR_F32, VR_CPU, &t));
  vr_generator_free(g);
  if (dt == VR_F32) return t;
  OK(vr_tensor_to_dtype(t, dt, &u));
  vr_tensor_free(t);
  return u;
}
START_TEST(test_bf16_batchnorm_rows_parity) {
  NEED_DEV();
  static const int64_t geo[][2] = {{4099, 64}, {1000, 8}, {257, 520}, {512, 2048}, {3, 16}, {301, 7}};
  for (size_t g = 0; g < sizeof geo / sizeof *geo; g++)
    for (int var = 0; var < 4; var++) { /* bit 0: training, bit 1: affine; offset data when both */
      int training = var & 1, affine = var >> 1, offset = training && affine, skew = (g & 1) && !offset;
      int64_t M = geo[g][0], C = geo[g][1], xs[2] = {M, C};
      if (M * C > 500000 && var != 3) continue; /* ~10 s a comparison in the CUDA emulator */
      char what[120];
      vr_kernel_args a = {.n_in = 5, .n_out = 3, .i = {training, M, C, 1}, .f = {0.1, 1e-5}};
      if (skew) { /* one element into a larger buffer: the scalar path */
        int64_t n1 = M * C + 1;
        vr_tensor *base = rnd_in(VR_BF16, 1, &n1, 180 + g, -2, 3);
        OK(vr_tensor_view_raw(base, 2, xs, (const int64_t[]){C, 1}, 1, &a.in[0]));
        vr_tensor_free(base);
      } else {
        a.in[0] = rnd_in(VR_BF16, 2, xs, 180 + g, offset ? 996 : -2, offset ? 1004 : 3);
      }
      if (affine) {
        a.in[1] = rnd_in(VR_F32, 1, &C, 181, 0.5, 1.5);
        a.in[2] = rnd_in(VR_F32, 1, &C, 182, -1, 1);
      }
      a.in[3] = rnd_in(VR_F32, 1, &C, 183, offset ? 999 : -0.5, offset ? 1001 : 0.5);
      a.in[4] = rnd_in(VR_F32, 1, &C, 184, 0.5, 2);
      a.out[0] = poisoned(VR_BF16, 2, xs);
      a.out[1] = poisoned(VR_F32, 1, &C);
      a.out[2] = poisoned(VR_F32, 1, &C);
      snprintf(what, sizeof what, "bf16 batch norm rows %lldx%lld training %d affine %d%s%s", (long long)M, (long long)C, training,
               affine, offset ? " mean 1000" : "", skew ? " misaligned" : "");
      if (run_cmp(VR_OP_BATCHNORM, 0, &a, RTOL, 1e-2, what)) {
        vr_kernel_args b = {.n_in = 5, .n_out = 3, .i = {training, M, C, 1}};
        b.in[0] = rnd_in(VR_BF16, 2, xs, 185, -1, 1);
        b.in[1] = a.in[0];
        b.in[2] = a.in[1];
        b.in[3] = a.out[1];
        b.in[4] = a.out[2];
        for (int k = 1; k < 5; k++) vr_tensor_retain(b.in[k]);
        b.out[0] = poisoned(VR_BF16, 2, xs);
        b.out[1] = poisoned(VR_F32, 1, &C);
        b.out[2] = poisoned(VR_F32, 1, &C);
        snprintf(what, sizeof what, "bf16 batch norm rows backward %lldx%lld training %d affine %d%s", (long long)M, (long long)C,
                 training, affine, offset ? " mean 1000" : "");
        run_cmp(VR_OP_BATCHNORM, 1, &b, RTOL, 1e-2 * sqrt((double)M), what);
        free_args(&b);
      }
      free_args(&a);
    }
}
END_TEST

/* the fused batch norm + residual + ReLU (vr_batch_norm_act's kernel arguments) on bf16 x with f32
 * parameters: N x C x S and channels-last (8-wide vectors at C = 64, scalar at C = 7), training
 * and eval. The forward rounds once on the GPU and after the normalisation and the add on the CPU:
 * outputs agree to one bf16 ulp plus the small absolute term, and an output next to 0 may be
 * clamped on one side only (a difference far below that term). The backward takes the CPU's output
 * as the ReLU mask on both devices, so it compares the same masked gradient. */
START_TEST(test_bf16_batchnorm_act_parity) {
  NEED_DEV();
  static const int64_t geo[][3] = {{8, 64, 49}, {4099, 64, 1}, {301, 7, 1}};
  for (size_t g = 0; g < sizeof geo / sizeof *geo; g++)
    for (int training = 0; training < 2; training++) {
      int64_t N = geo[g][0], C = geo[g][1], S = geo[g][2], xs[3] = {N, C, S};
      int nd = S > 1 ? 3 : 2;
      char what[120];
      vr_kernel_args a = {.n_in = 6, .n_out = 3, .i = {training, N, C, S, 1}, .f = {0.1, 1e-5}};
      a.in[0] = rnd_in(VR_BF16, nd, xs, 190 + g, -2, 3);
      a.in[1] = rnd_in(VR_F32, 1, &C, 191, 0.5, 1.5);
      a.in[2] = rnd_in(VR_F32, 1, &C, 192, -1, 1);
      a.in[3] = rnd_in(VR_F32, 1, &C, 193, -0.5, 0.5);
      a.in[4] = rnd_in(VR_F32, 1, &C, 194, 0.5, 2);
      a.in[5] = rnd_in(VR_BF16, nd, xs, 195, -1, 1);
      a.out[0] = poisoned(VR_BF16, nd, xs);
      a.out[1] = poisoned(VR_F32, 1, &C);
      a.out[2] = poisoned(VR_F32, 1, &C);
      snprintf(what, sizeof what, "bf16 batch norm + residual + relu %lldx%lldx%lld training %d", (long long)N, (long long)C,
               (long long)S, training);
      if (run_cmp(VR_OP_BATCHNORM, 0, &a, RTOL, 1e-2, what)) {
        vr_kernel_args b = {.n_in = 6, .n_out = 4, .i = {training, N, C, S, 1}};
        b.in[0] = rnd_in(VR_BF16, nd, xs, 196, -1, 1);
        b.in[1] = a.in[0];
        b.in[2] = a.in[1];
        b.in[3] = a.out[1];
        b.in[4] = a.out[2];
        b.in[5] = a.out[0];
        for (int k = 1; k < 6; k++) vr_tensor_retain(b.in[k]);
        b.out[0] = poisoned(VR_BF16, nd, xs);
        b.out[1] = poisoned(VR_F32, 1, &C);
        b.out[2] = poisoned(VR_F32, 1, &C);
        b.out[3] = poisoned(VR_BF16, nd, xs);
        snprintf(what, sizeof what, "bf16 batch norm + residual + relu backward %lldx%lldx%lld training %d", (long long)N,
                 (long long)C, (long long)S, training);
        run_cmp(VR_OP_BATCHNORM, 1, &b, RTOL, 1e-2 * sqrt((double)(N * S)), what);
        free_args(&b);
      }
      free_args(&a);
    }
}
END_TEST

/* ---------------------------------------------------------------- autocast through the API */

/* conv -> relu -> linear under autocast, the loss in f32: forward and every gradient on both devices */
START_TEST(test_autocast_api_parity) {
  NEED_DEV();
  NEED_MATMUL();
  vr_tensor *x = rnd(VR_F32, 4, SH(4, 3, 10, 10), 140), *w = rnd(VR_F32, 4, SH(8, 3, 3, 3), 141);
  vr_tensor *b = rnd(VR_F32, 1, SH(8), 142), *lw = rnd(VR_F32, 2, SH(5, 8 * 5 * 5), 143), *lb = rnd(VR_F32, 1, SH(5), 144);
  vr_tensor *cpu[5] = {x, w, b, lw, lb}, *dev[5];
  for (int k = 0; k < 5; k++) {
    dev[k] = dev_leaf(cpu[k]);
    OK(vr_tensor_set_requires_grad(cpu[k], 1));
  }
  vr_tensor *out[2] = {NULL, NULL}, *loss[2] = {NULL, NULL};
  for (int d = 0; d < 2; d++) {
    vr_tensor **p = d ? dev : cpu;
    vr_tensor *y = NULL, *r = NULL, *f = NULL, *z = NULL, *sq = NULL;
    OK(vr_autocast_set(VR_BF16));
    OK(vr_conv2d(p[0], p[1], p[2], 2, 2, 1, 1, 1, 1, 1, &y));
    OK(vr_relu(y, &r));
    OK(vr_flatten(r, 1, -1, &f));
    OK(vr_linear(f, p[3], p[4], &z));
    OK(vr_autocast_set(VR_F32));
    ck_assert_int_eq(vr_tensor_dtype(z), VR_F32);
    OK(vr_square(z, &sq));
    OK(vr_sum(sq, 0, NULL, 0, &loss[d]));
    OK(vr_backward(loss[d], NULL, 0));
    out[d] = z;
    vr_tensor *objs[] = {y, r, f, sq};
    for (size_t k = 0; k < sizeof objs / sizeof *objs; k++) vr_tensor_free(objs[k]);
  }
  /* two bf16 stages: a rounding flip in the conv can move the linear's result by an ulp or two */
  cmp_dev(out[0], out[1], 4 * RTOL, 0x1p-6 * maxabs(out[0]), "autocast forward");
  cmp_dev(loss[0], loss[1], 4 * RTOL, 0, "autocast loss");
  static const char *names[5] = {"grad x", "grad w", "grad b", "grad linear w", "grad linear b"};
  for (int k = 0; k < 5; k++) {
    vr_tensor *g = vr_tensor_grad(cpu[k]), *gd = vr_tensor_grad(dev[k]);
    ck_assert_msg(g && gd, "%s missing", names[k]);
    ck_assert_int_eq(vr_tensor_dtype(gd), VR_F32);
    char what[64];
    snprintf(what, sizeof what, "autocast %s", names[k]);
    cmp_dev(g, gd, 4 * RTOL, 0x1p-6 * maxabs(g), what);
    vr_tensor_free(g);
    vr_tensor_free(gd);
  }
  for (int k = 0; k < 5; k++) {
    vr_tensor_free(cpu[k]);
    vr_tensor_free(dev[k]);
  }
  for (int d = 0; d < 2; d++) {
    vr_tensor_free(out[d]);
    vr_tensor_free(loss[d]);
  }
}
END_TEST

/* ---------------------------------------------------------------- timing (printed, not asserted) */

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* ms per forward + backward of y = conv2d(x, w) (kind 0) or x w (kind 1), sum(y) as the loss,
 * with autocast off or on, as the trainer runs it (casts included) */
static double time_op(int kind, int autocast, vr_tensor *x, vr_tensor *w) {
  double t0 = 0;
  for (int it = 0; it < 7; it++) {
    if (it == 2) {
      OK(vr_device_get(DEV)->synchronize());
      t0 = now_s();
    }
    vr_tensor *y = NULL, *s = NULL;
    OK(vr_autocast_set(autocast ? VR_BF16 : VR_F32));
    if (kind == 0) OK(vr_conv2d(x, w, NULL, 1, 1, 1, 1, 1, 1, 1, &y));
    else OK(vr_matmul(x, w, &y));
    OK(vr_autocast_set(VR_F32));
    OK(vr_sum(y, 0, NULL, 0, &s));
    OK(vr_backward(s, NULL, 0));
    vr_tensor_set_grad(x, NULL);
    vr_tensor_set_grad(w, NULL);
    vr_tensor_free(y);
    vr_tensor_free(s);
  }
  OK(vr_device_get(DEV)->synchronize());
  return (now_s() - t0) / 5 * 1e3;
}

START_TEST(test_bf16_timing) {
  NEED_DEV();
  NEED_MATMUL();
  int small = DEV == VR_CPU; /* the CPU standing in: tiny sizes, only to run the code */
  struct { int kind; int nd; int64_t xs[4], ws[4]; const char *name; double gflop; } cs[] = {
      {0, 4, {256, 64, 28, 28}, {64, 64, 3, 3}, "conv2d 3x3 64->64 28x28 N256", 3 * 2.0 * 256 * 64 * 64 * 9 * 784 / 1e9},
      {0, 4, {256, 128, 14, 14}, {128, 128, 3, 3}, "conv2d 3x3 128->128 14x14 N256", 3 * 2.0 * 256 * 128 * 128 * 9 * 196 / 1e9},
      {1, 2, {4096, 4096}, {4096, 4096}, "matmul 4096^3", 3 * 2.0 * 4096.0 * 4096 * 4096 / 1e9}};
  if (small) {
    cs[0].xs[0] = cs[1].xs[0] = 2;
    cs[2].xs[0] = cs[2].xs[1] = cs[2].ws[0] = cs[2].ws[1] = 64;
  }
  for (size_t c = 0; c < sizeof cs / sizeof *cs; c++) {
    vr_tensor *xh = rnd(VR_F32, cs[c].nd, cs[c].xs, 150 + c), *wh = rnd(VR_F32, cs[c].nd, cs[c].ws, 160 + c);
    vr_tensor *x = dev_leaf(xh), *w = dev_leaf(wh);
    double f32 = time_op(cs[c].kind, 0, x, w), bf16 = time_op(cs[c].kind, 1, x, w);
    printf("TIMING%s %-34s fwd+bwd: f32 %8.3f ms (%6.1f TFLOP/s), autocast bf16 %8.3f ms (%6.1f TFLOP/s), %.1fx\n",
           small ? " (cpu, tiny sizes: ignore)" : "", cs[c].name, f32, cs[c].gflop / f32, bf16, cs[c].gflop / bf16, f32 / bf16);
    vr_tensor *objs[] = {xh, wh, x, w};
    for (size_t k = 0; k < sizeof objs / sizeof *objs; k++) vr_tensor_free(objs[k]);
  }
}
END_TEST

static Suite *cuda_bf16_suite(void) {
  Suite *s = suite_create("cuda_bf16");
  TCase *tc = tcase_create("parity");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, test_bf16_cast_parity);
  tcase_add_test(tc, test_bf16_matmul_parity);
  tcase_add_test(tc, test_bf16_conv2d_parity);
  tcase_add_test(tc, test_bf16_conv2d_nhwc_parity);
  tcase_add_test(tc, test_bf16_batchnorm_mixed_parity);
  tcase_add_test(tc, test_bf16_batchnorm_rows_parity);
  tcase_add_test(tc, test_bf16_batchnorm_act_parity);
  tcase_add_test(tc, test_autocast_api_parity);
  tcase_add_test(tc, test_bf16_timing);
  suite_add_tcase(s, tc);
  return s;
}

VR_TEST_MAIN(cuda_bf16_suite)
