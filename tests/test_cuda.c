/* test_cuda.c: what the CUDA backend adds beyond each op's parity (tests/test_ops.c drives every
 * op on every backend): host <-> device copies, Philox bits and generators across devices, sums
 * that repeat bit for bit, batch norm's kernel arguments (wanted gradients, strided running
 * statistics, misaligned buffers), convolution through cuDNN and through im2col, the caching
 * allocator's statistics, and errors that must not crash.
 *
 * Without a GPU each case prints "SKIP <case>: no CUDA device" and passes. Setting
 * VISREG_TEST_CUDA_AS_CPU=1 runs the whole harness with the CPU standing in for the GPU (CPU
 * against CPU), which checks the harness and the argument layouts on a machine without a GPU.
 * VISREG_TEST_ONLY=w1,w2 runs only the cases whose name holds one of the words; VISREG_TEST_QUICK=1 uses
 * smaller sizes (for compute-sanitizer); VISREG_TEST_VERBOSE=1 prints each comparison's max error.
 *
 * Tolerances (|cuda - cpu| <= atol + rtol |cpu|): f64 1e-10 relative, f32 1e-4, bf16 one
 * rounding step. */
#include "testutil.h"

static int have_dev(const char *name) {
  if (tu_dev_present()) return 1;
  printf("SKIP %s: no CUDA device\n", name);
  return 0;
}
/* Check names the function NAME_fn; print the test's own name */
static int have_dev_fn(const char *fn) {
  char name[96];
  snprintf(name, sizeof name, "%s", fn);
  size_t n = strlen(name);
  if (n > 3 && !strcmp(name + n - 3, "_fn")) name[n - 3] = 0;
  /* VISREG_TEST_ONLY=a,b: run only the cases whose name contains one of the words */
  const char *only = getenv("VISREG_TEST_ONLY");
  if (only && *only) {
    int hit = 0;
    char words[256];
    snprintf(words, sizeof words, "%s", only);
    for (char *save = NULL, *w = strtok_r(words, ",", &save); w && !hit; w = strtok_r(NULL, ",", &save))
      hit = strstr(name, w) != NULL;
    if (!hit) return 0;
  }
  return have_dev(name);
}
#undef NEED_DEV /* this suite's own: CUDA only, with a per-case report */
#define NEED_DEV() do { if (!have_dev_fn(__func__)) return; } while (0)

/* ---------------------------------------------------------------- tensors */

static vr_tensor *rnd(vr_dtype dt, int ndim, const int64_t *shape, uint64_t seed, double lo, double hi) {
  vr_generator *g = NULL;
  vr_tensor *t = NULL;
  OK(vr_generator_new(seed, 11, &g));
  OK(vr_rand_uniform(g, ndim, shape, lo, hi, vr_is_float(dt) ? dt : VR_F64, VR_CPU, &t));
  vr_generator_free(g);
  if (vr_is_float(dt)) return t;
  return tu_floor_to(t, dt); /* integers: whole numbers, through f64 */
}

/* the "large" size; VISREG_TEST_QUICK=1 (used under compute-sanitizer) shrinks it */
static int64_t BIG = 1000003;
#define SH(...) ((const int64_t[]){__VA_ARGS__})

/* ---------------------------------------------------------------- device API and basic kernels */

START_TEST(test_device_roundtrip) {
  NEED_DEV();
  int64_t n = BIG;
  float *h = malloc(sizeof(float) * (size_t)n), *back = malloc(sizeof(float) * (size_t)n);
  for (int64_t k = 0; k < n; k++) h[k] = (float)k * 0.5f - 3;
  vr_tensor *t = NULL, *c = NULL, *b = NULL;
  OK(vr_tensor_from_buffer(h, 1, &n, VR_F32, DEV, &t));
  ck_assert_int_eq(vr_tensor_device(t), DEV);
  OK(vr_tensor_to_buffer(t, back, sizeof(float) * (size_t)n));
  ck_assert(memcmp(h, back, sizeof(float) * (size_t)n) == 0);
  /* to_device both ways through copy_into, and a strided device tensor to the host */
  OK(vr_tensor_to_device(t, VR_CPU, &c));
  ck_assert(memcmp(vr_tensor_data(c), h, sizeof(float) * (size_t)n) == 0);
  vr_tensor *m = NULL, *mt = NULL, *mh = NULL, *ref = NULL;
  int64_t shp[2] = {37, 129};
  OK(vr_tensor_from_buffer(h, 2, shp, VR_F32, DEV, &m));
  OK(vr_transpose(m, 0, 1, &mt));
  OK(vr_tensor_to_device(mt, VR_CPU, &mh));
  vr_tensor *hm = NULL, *hmt = NULL;
  OK(vr_tensor_from_buffer(h, 2, shp, VR_F32, VR_CPU, &hm));
  OK(vr_transpose(hm, 0, 1, &hmt));
  OK(vr_contiguous(hmt, &ref));
  cmp(ref, mh, 0, 0, "transposed device tensor to host");
  vr_tensor_free(b);
  vr_tensor_free(m);
  vr_tensor_free(mt);
  vr_tensor_free(mh);
  vr_tensor_free(hm);
  vr_tensor_free(hmt);
  vr_tensor_free(ref);
  vr_tensor_free(t);
  vr_tensor_free(c);
  free(h);
  free(back);
}
END_TEST

START_TEST(test_philox_identical) {
  NEED_DEV();
  /* uniform and integer draws: identical bits on every dtype; normal: identical to rounding of
   * the device's log/cos (1 ulp in f64) */
  static const vr_dtype dts[] = {VR_F32, VR_F64, VR_BF16};
  for (int i = 0; i < 3; i++) {
    vr_kernel_args u = {.n_out = 1, .sub = VR_RAND_UNIFORM, .i = {1234567, 3, 99}, .f = {-2, 5}};
    u.out[0] = poisoned(dts[i], 1, &BIG);
    run_cmp(VR_OP_RAND, 0, &u, 0, 0, "rand uniform");
    free_args(&u);
    vr_kernel_args n = {.n_out = 1, .sub = VR_RAND_NORMAL, .i = {42, 0, (int64_t)1 << 33}, .f = {1, 3}};
    n.out[0] = poisoned(dts[i], 1, &BIG);
    run_cmp(VR_OP_RAND, 0, &n, dts[i] == VR_F64 ? 1e-14 : dts[i] == VR_F32 ? 1e-6 : 1e-2, 1e-14, "rand normal");
    free_args(&n);
  }
  vr_kernel_args k = {.n_out = 1, .sub = VR_RAND_INT, .i = {7, 1, 0}, .f = {-1000, 1000000}};
  k.out[0] = poisoned(VR_I64, 1, &BIG);
  run_cmp(VR_OP_RAND, 0, &k, 0, 0, "rand int");
  free_args(&k);
  /* public generators advance identically */
  vr_generator *g1 = NULL, *g2 = NULL;
  OK(vr_generator_new(5, 2, &g1));
  OK(vr_generator_new(5, 2, &g2));
  vr_tensor *a = NULL, *b = NULL;
  for (int r = 0; r < 2; r++) {
    OK(vr_rand_uniform(g1, 2, SH(37, 129), 0, 1, VR_F64, VR_CPU, &a));
    OK(vr_rand_uniform(g2, 2, SH(37, 129), 0, 1, VR_F64, DEV, &b));
    cmp(a, b, 0, 0, "vr_rand_uniform across devices");
    vr_tensor_free(a);
    vr_tensor_free(b);
  }
  ck_assert_uint_eq(vr_generator_offset(g1), vr_generator_offset(g2));
  vr_generator_free(g1);
  vr_generator_free(g2);
}
END_TEST

/* ---------------------------------------------------------------- determinism */

START_TEST(test_sum_deterministic) {
  NEED_DEV();
  if (!vr_kernel_exists(VR_OP_SUM, DEV, 0)) {
    printf("SKIP %s: no sum kernel on %s\n", __func__, vr_device_name(DEV));
    return;
  }
  vr_tensor *x = rnd(VR_F32, 1, &BIG, 95, -1, 1), *xd = mirror(x, DEV);
  double first = 0;
  for (int r = 0; r < 3; r++) {
    vr_kernel_args a = {.n_in = 1, .n_out = 1, .i = {1}, .f = {1}};
    a.in[0] = xd;
    OK(vr_tensor_empty(1, SH(1), VR_F32, DEV, &a.out[0]));
    OK(vr_dispatch(VR_OP_SUM, DEV, 0, &a));
    double v = tu_item(a.out[0]);
    if (r == 0) first = v;
    ck_assert_msg(v == first, "sum run %d: %.9g vs %.9g", r, v, first);
    vr_tensor_free(a.out[0]);
  }
  vr_tensor_free(x);
  vr_tensor_free(xd);
}
END_TEST

/* ---------------------------------------------------------------- normalisation */

START_TEST(test_batchnorm) {
  NEED_DEV();
  char what[96];
  static const int64_t geo[][3] = {{37, 129, 1}, {8, 13, 37}, {2, 3, 40001}};
  for (int dt = 0; dt < 2; dt++) {
    vr_dtype d = dt ? VR_F64 : VR_F32;
    double rtol = dt ? 1e-10 : 1e-4, atol = dt ? 1e-11 : 1e-5;
    for (int g = 0; g < 3; g++)
      for (int training = 0; training < 2; training++)
        for (int affine = 0; affine < 2; affine++) {
          int64_t N = geo[g][0], C = geo[g][1], S = geo[g][2];
          int64_t xs[3] = {N, C, S};
          vr_kernel_args a = {.n_in = 5, .n_out = 3, .i = {training, N, C, S}, .f = {0.1, 1e-5}};
          a.in[0] = rnd(d, S > 1 ? 3 : 2, xs, 140 + (uint64_t)g, -2, 3);
          if (affine) {
            a.in[1] = rnd(d, 1, &C, 141, 0.5, 1.5);
            a.in[2] = rnd(d, 1, &C, 142, -1, 1);
          }
          a.in[3] = rnd(d, 1, &C, 143, -0.5, 0.5);
          /* running_var with a stride of 2 */
          vr_tensor *rv2 = rnd(d, 1, SH(2 * C), 144, 0.5, 2);
          OK(vr_slice(rv2, 0, 0, 2 * C, 2, &a.in[4]));
          vr_tensor_free(rv2);
          a.out[0] = poisoned(d, a.in[0]->ndim, a.in[0]->shape);
          a.out[1] = poisoned(d, 1, &C);
          a.out[2] = poisoned(d, 1, &C);
          snprintf(what, sizeof what, "batch norm %s g%d training %d affine %d", vr_dtype_name(d), g, training, affine);
          if (run_cmp(VR_OP_BATCHNORM, 0, &a, rtol, atol, what)) {
            for (int outs = 0; outs < 2; outs++) {
              vr_kernel_args b = {.n_in = 5, .n_out = 3, .i = {training, N, C, S}, .f = {0.1, 1e-5}};
              b.in[0] = rnd(d, a.in[0]->ndim, a.in[0]->shape, 145, -1, 1);
              b.in[1] = a.in[0];
              b.in[2] = a.in[1];
              b.in[3] = a.out[1];
              b.in[4] = a.out[2];
              for (int k = 1; k < 5; k++) vr_tensor_retain(b.in[k]);
              b.out[0] = poisoned(d, a.in[0]->ndim, a.in[0]->shape);
              if (outs) {
                b.out[1] = poisoned(d, 1, &C);
                b.out[2] = poisoned(d, 1, &C);
              }
              snprintf(what, sizeof what, "batch norm backward %s g%d training %d affine %d", vr_dtype_name(d), g, training, affine);
              run_cmp(VR_OP_BATCHNORM, 1, &b, rtol * 10, atol * 10, what);
              free_args(&b);
            }
          }
          free_args(&a);
        }
  }
}
END_TEST

/* channels-last batch norm (S == 1, x [M, C]: the NHWC path): 16-byte vectors (C a multiple of
 * 4 f32 / 2 f64), scalar columns (C = 7 f32 / 519 f64 ... not a multiple), many chunks of rows,
 * two column groups (C = 2048 f32: 512 vectors), one chunk (3 x 16); data far from 0 (mean 1000,
 * std 1) against cancellation; x misaligned by one element (the scalar path on any C) */
START_TEST(test_batchnorm_rows) {
  NEED_DEV();
  char what[120];
  static const int64_t geo[][2] = {{4099, 64}, {1000, 8}, {257, 520}, {512, 2048}, {3, 16}, {301, 7}};
  for (int dt = 0; dt < 2; dt++) {
    vr_dtype d = dt ? VR_F64 : VR_F32;
    double rtol = dt ? 1e-10 : 1e-4, atol = dt ? 1e-11 : 1e-5;
    for (int g = 0; g < 6; g++)
      for (int var = 0; var < 4; var++) { /* bit 0: training, bit 1: affine; offset data when both */
        int training = var & 1, affine = var >> 1, offset = training && affine, skew = (g & 1) && !offset;
        int64_t M = geo[g][0], C = geo[g][1], xs[2] = {M, C};
        /* 512 x 2048 (~10 s a comparison in the CUDA emulator): training with offset data, and f32 eval misaligned */
        const int big = M * C > 500000;
        if (big && var != 3 && !(var == 2 && !dt)) continue;
        vr_kernel_args a = {.n_in = 5, .n_out = 3, .i = {training, M, C, 1}, .f = {0.1, 1e-5}};
        vr_tensor *x = offset ? rnd(d, 2, xs, 170 + (uint64_t)g, 1000 - 1.7, 1000 + 1.7) : rnd(d, 2, xs, 170 + (uint64_t)g, -2, 3);
        if (skew) { /* the same values one element into a larger buffer */
          int64_t n1 = M * C + 1;
          vr_tensor *base = rnd(d, 1, &n1, 171, -2, 3);
          OK(vr_tensor_view_raw(base, 2, xs, (const int64_t[]){C, 1}, 1, &a.in[0]));
          vr_tensor_free(base);
          vr_tensor_free(x);
        } else {
          a.in[0] = x;
        }
        if (affine) {
          a.in[1] = rnd(d, 1, &C, 172, 0.5, 1.5);
          a.in[2] = rnd(d, 1, &C, 173, -1, 1);
        }
        a.in[3] = rnd(d, 1, &C, 174, offset ? 999 : -0.5, offset ? 1001 : 0.5);
        vr_tensor *rv2 = rnd(d, 1, SH(2 * C), 175, 0.5, 2);
        OK(vr_slice(rv2, 0, 0, 2 * C, 2, &a.in[4]));
        vr_tensor_free(rv2);
        a.out[0] = poisoned(d, 2, xs);
        a.out[1] = poisoned(d, 1, &C);
        a.out[2] = poisoned(d, 1, &C);
        snprintf(what, sizeof what, "batch norm rows %s %lldx%lld training %d affine %d%s%s", vr_dtype_name(d), (long long)M,
                 (long long)C, training, affine, offset ? " mean 1000" : "", skew ? " misaligned" : "");
        if (run_cmp(VR_OP_BATCHNORM, 0, &a, rtol, atol, what)) {
          /* grad_x and both parameter grads; on small shapes also grad_x alone, the parameter grads alone */
          for (int outs = 0; outs < (M * C > 100000 ? 1 : 3); outs++) {
            vr_kernel_args b = {.n_in = 5, .n_out = 3, .i = {training, M, C, 1}, .f = {0.1, 1e-5}};
            b.in[0] = rnd(d, 2, xs, 176, -1, 1);
            b.in[1] = a.in[0];
            b.in[2] = a.in[1];
            b.in[3] = a.out[1];
            b.in[4] = a.out[2];
            for (int k = 1; k < 5; k++) vr_tensor_retain(b.in[k]);
            if (outs < 2) b.out[0] = poisoned(d, 2, xs);
            if (outs != 1) {
              b.out[1] = poisoned(d, 1, &C);
              b.out[2] = poisoned(d, 1, &C);
            }
            snprintf(what, sizeof what, "batch norm rows backward %s %lldx%lld training %d affine %d outs %d%s", vr_dtype_name(d),
                     (long long)M, (long long)C, training, affine, outs, offset ? " mean 1000" : "");
            run_cmp(VR_OP_BATCHNORM, 1, &b, rtol * 10, atol * 10, what);
            free_args(&b);
          }
        }
        free_args(&a);
      }
  }
}
END_TEST

/* the fused activation of vr_batch_norm_act at the kernel level (forward i[4] = ReLU, in[5] =
 * residual; backward i[4] with in[5] = the forward's output as the ReLU mask, out[3] =
 * grad_residual): N x C x S and channels-last (S == 1: 16-byte vectors at C = 64, scalar columns
 * at C = 7, and a residual or grad_residual one element into its buffer, which must turn the
 * vectors off), f32 and f64. var: bit 0 training, bit 1 affine; ReLU and residual both, except
 * var 1 (ReLU alone) and var 2 (residual alone). Backward outs: 0 every grad, 1 grad_x and
 * grad_residual, 2 the parameter grads and grad_residual (no grad_x: the residual's grad is still
 * written). The backward's mask is the CPU's output, so both devices mask the same elements. */
static vr_tensor *poisoned_skew(vr_dtype dt, int ndim, const int64_t *shape, int skew) {
  if (!skew) return poisoned(dt, ndim, shape);
  int64_t n1 = vr_numel_of(ndim, shape) + 1, st[8];
  for (int k = ndim - 1, m = 1; k >= 0; k--) st[k] = m, m *= (int)shape[k];
  vr_tensor *base = poisoned(dt, 1, &n1), *v = NULL;
  OK(vr_tensor_view_raw(base, ndim, shape, st, 1, &v));
  vr_tensor_free(base);
  return v;
}
START_TEST(test_batchnorm_act) {
  NEED_DEV();
  char what[160];
  static const int64_t geo[][3] = {{8, 13, 37}, {1000, 64, 1}, {301, 7, 1}, {3, 5, 2001}};
  for (int dt = 0; dt < 2; dt++) {
    vr_dtype d = dt ? VR_F64 : VR_F32;
    double rtol = dt ? 1e-10 : 1e-4, atol = dt ? 1e-11 : 1e-5;
    for (int g = 0; g < 4; g++)
      for (int var = 0; var < 4; var++) {
        int training = var & 1, affine = var >> 1, relu = var != 2, res = var != 1;
        int64_t N = geo[g][0], C = geo[g][1], S = geo[g][2], xs[3] = {N, C, S};
        int nd = S > 1 ? 3 : 2, skew = S == 1 && C == 64 && var == 3; /* misaligned residual and grad_residual */
        vr_kernel_args a = {.n_in = 6, .n_out = 3, .i = {training, N, C, S, relu}, .f = {0.1, 1e-5}};
        a.in[0] = rnd(d, nd, xs, 190 + (uint64_t)g, -2, 3);
        if (affine) {
          a.in[1] = rnd(d, 1, &C, 191, 0.5, 1.5);
          a.in[2] = rnd(d, 1, &C, 192, -1, 1);
        }
        a.in[3] = rnd(d, 1, &C, 193, -0.5, 0.5);
        a.in[4] = rnd(d, 1, &C, 194, 0.5, 2);
        if (res && skew) {
          int64_t n1 = N * C * S + 1;
          vr_tensor *base = rnd(d, 1, &n1, 195, -1, 1);
          OK(vr_tensor_view_raw(base, nd, xs, (const int64_t[]){C * S, S, 1}, 1, &a.in[5]));
          vr_tensor_free(base);
        } else if (res) {
          a.in[5] = rnd(d, nd, xs, 195, -1, 1);
        }
        a.out[0] = poisoned(d, nd, xs);
        a.out[1] = poisoned(d, 1, &C);
        a.out[2] = poisoned(d, 1, &C);
        snprintf(what, sizeof what, "batch norm act %s %lldx%lldx%lld training %d affine %d relu %d residual %d%s", vr_dtype_name(d),
                 (long long)N, (long long)C, (long long)S, training, affine, relu, res, skew ? " misaligned" : "");
        if (!run_cmp(VR_OP_BATCHNORM, 0, &a, rtol, atol, what)) {
          free_args(&a);
          continue;
        }
        for (int outs = 0; outs < 3; outs++) {
          vr_kernel_args b = {.n_in = 6, .n_out = 4, .i = {training, N, C, S, relu}};
          b.in[0] = rnd(d, nd, xs, 196, -1, 1);
          b.in[1] = a.in[0];
          b.in[2] = a.in[1];
          b.in[3] = a.out[1];
          b.in[4] = a.out[2];
          if (relu) b.in[5] = a.out[0]; /* the CPU's output: the same mask on both devices */
          for (int k = 1; k < 6; k++) vr_tensor_retain(b.in[k]);
          if (outs < 2) b.out[0] = poisoned(d, nd, xs);
          if (outs != 1) {
            b.out[1] = poisoned(d, 1, &C);
            b.out[2] = poisoned(d, 1, &C);
          }
          if (res || outs == 2) b.out[3] = poisoned_skew(d, nd, xs, skew && outs == 1);
          snprintf(what, sizeof what, "batch norm act backward %s %lldx%lldx%lld training %d affine %d relu %d outs %d%s",
                   vr_dtype_name(d), (long long)N, (long long)C, (long long)S, training, affine, relu, outs,
                   skew && outs == 1 ? " misaligned" : "");
          run_cmp(VR_OP_BATCHNORM, 1, &b, rtol * 10, atol * 10, what);
          free_args(&b);
        }
        free_args(&a);
      }
  }
}
END_TEST

/* ---------------------------------------------------------------- convolution */

START_TEST(test_conv2d) {
  NEED_DEV();
  char what[160];
  /* {N, C, H, W, Cout, kh, kw, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups} */
  static const int64_t geo[][14] = {{2, 3, 17, 13, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1},
                                    {3, 4, 16, 16, 6, 3, 3, 2, 2, 1, 1, 1, 1, 2},
                                    {1, 6, 11, 9, 6, 3, 2, 1, 2, 0, 1, 2, 1, 3},
                                    {4, 16, 8, 8, 32, 1, 1, 1, 1, 0, 0, 1, 1, 1}};
  /* f32 twice: through cuDNN where the build has it, and through im2col */
  const char *conv0 = vr_variant("conv"); /* the suite's own (VISREG_TEST_VARIANT) */
  for (int dt = 0; dt < 3; dt++) {
    vr_dtype d = dt == 2 ? VR_F64 : VR_F32;
    /* read by every conv call: the variant conv=im2col forces the im2col path */
    vr_set_variant("conv", dt == 0 ? conv0 : "im2col");
    double rtol = d == VR_F64 ? 1e-10 : 1e-4, atol = d == VR_F64 ? 1e-11 : 1e-4;
    for (int g = 0; g < 4; g++)
      for (int bias = 0; bias < 2; bias++) {
        const int64_t *q = geo[g];
        int64_t N = q[0], C = q[1], H = q[2], W = q[3], Co = q[4], kh = q[5], kw = q[6], G = q[13];
        int64_t Ho = (H + 2 * q[9] - q[11] * (kh - 1) - 1) / q[7] + 1, Wo = (W + 2 * q[10] - q[12] * (kw - 1) - 1) / q[8] + 1;
        int64_t xs[4] = {N, C, H, W}, ws[4] = {Co, C / G, kh, kw}, ys[4] = {N, Co, Ho, Wo};
        vr_kernel_args a = {.n_in = 3, .n_out = 1, .i = {q[7], q[8], q[9], q[10], q[11], q[12], G}};
        a.in[0] = rnd(d, 4, xs, 170 + (uint64_t)g, -1, 1);
        a.in[1] = rnd(d, 4, ws, 171, -1, 1);
        if (bias) a.in[2] = rnd(d, 1, &Co, 172, -1, 1);
        a.out[0] = poisoned(d, 4, ys);
        snprintf(what, sizeof what, "conv2d %s%s g%d bias %d", vr_dtype_name(d), dt == 0 ? " (cudnn)" : "", g, bias);
        if (run_cmp(VR_OP_CONV2D, 0, &a, rtol, atol, what)) {
          vr_kernel_args b = {.n_in = 3, .n_out = 3, .i = {q[7], q[8], q[9], q[10], q[11], q[12], G}};
          b.in[0] = rnd(d, 4, ys, 173, -1, 1);
          b.in[1] = a.in[0];
          b.in[2] = a.in[1];
          vr_tensor_retain(b.in[1]);
          vr_tensor_retain(b.in[2]);
          b.out[0] = poisoned(d, 4, xs);
          b.out[1] = poisoned(d, 4, ws);
          if (bias) b.out[2] = poisoned(d, 1, &Co);
          snprintf(what, sizeof what, "conv2d backward %s%s g%d bias %d", vr_dtype_name(d), dt == 0 ? " (cudnn)" : "", g, bias);
          run_cmp(VR_OP_CONV2D, 1, &b, rtol, atol, what);
          free_args(&b);
        }
        free_args(&a);
      }
  }
  vr_set_variant("conv", conv0);
}
END_TEST

/* ---------------------------------------------------------------- allocator and errors */

START_TEST(test_allocator_stats) {
  NEED_DEV();
  if (DEV != VR_CUDA) return; /* statistics are the CUDA allocator's */
  OK(vr_cuda_synchronize());
  OK(vr_cuda_empty_cache());
  int64_t a0 = vr_cuda_memory_allocated(), r0 = vr_cuda_memory_reserved(), m0 = vr_cuda_malloc_count();
  ck_assert_int_eq(r0, a0); /* nothing cached after empty_cache */
  vr_tensor *t = NULL, *u = NULL;
  OK(vr_tensor_empty(1, SH(1000), VR_F32, VR_CUDA, &t)); /* 4000 B -> 4096 B class */
  ck_assert_int_eq(vr_cuda_memory_allocated() - a0, 4096);
  ck_assert_int_eq(vr_cuda_malloc_count() - m0, 1);
  ck_assert(vr_cuda_memory_peak() >= vr_cuda_memory_allocated());
  vr_tensor_free(t);
  ck_assert_int_eq(vr_cuda_memory_allocated(), a0);
  if (vr_cuda_caching_enabled()) {
    ck_assert_int_eq(vr_cuda_memory_reserved() - r0, 4096); /* kept in the cache */
    int64_t hits = vr_cuda_cache_hits();
    OK(vr_tensor_empty(1, SH(900), VR_F32, VR_CUDA, &u)); /* same class: reused, no cudaMalloc */
    ck_assert_int_eq(vr_cuda_malloc_count() - m0, 1);
    ck_assert_int_eq(vr_cuda_cache_hits() - hits, 1);
    vr_tensor_free(u);
    /* large blocks round to 2 MiB */
    OK(vr_tensor_empty(1, SH(3 << 20), VR_U8, VR_CUDA, &t));
    ck_assert_int_eq(vr_cuda_memory_allocated() - a0, 4 << 20);
    vr_tensor_free(t);
    OK(vr_cuda_empty_cache());
    ck_assert_int_eq(vr_cuda_memory_reserved(), vr_cuda_memory_allocated());
  } else {
    ck_assert_int_eq(vr_cuda_memory_reserved(), r0);
  }
  vr_cuda_reset_peak();
  ck_assert_int_eq(vr_cuda_memory_peak(), vr_cuda_memory_allocated());
}
END_TEST

START_TEST(test_errors_no_crash) {
  NEED_DEV();
  if (DEV != VR_CUDA) return;
  /* far beyond any GPU: VR_E_OOM with a message, and the device keeps working */
  vr_tensor *t = NULL;
  FAILS(vr_tensor_empty(1, SH((int64_t)1 << 50), VR_U8, VR_CUDA, &t), VR_E_OOM, "could not allocate");
  ck_assert_ptr_null(t);
  OK(vr_tensor_zeros(1, SH(1000), VR_F32, VR_CUDA, &t));
  double v = -1;
  OK(vr_tensor_get(t, SH(999), &v));
  ck_assert(v == 0);
  vr_tensor_free(t);
  OK(vr_cuda_synchronize());
}
END_TEST

START_TEST(test_cuda_reports) {
  /* always runs: the build reports itself consistently */
  ck_assert_int_eq(vr_cuda_compiled() == 0 || vr_cuda_compiled() == 1, 1);
  if (!vr_cuda_available()) {
    ck_assert_str_eq(vr_cuda_device_name(), "");
    vr_tensor *t = NULL;
    FAILS(vr_tensor_empty(1, SH(4), VR_F32, VR_CUDA, &t), VR_E_DEVICE, "cuda");
    ck_assert_int_eq(vr_cuda_memory_allocated(), 0);
    OK(vr_cuda_empty_cache());
  } else {
    ck_assert(strlen(vr_cuda_device_name()) > 0);
    printf("cuda device: %s\n", vr_cuda_device_name());
  }
}
END_TEST

static Suite *cuda_suite(void) {
  const char *q = getenv("VISREG_TEST_QUICK");
  if (q && q[0] == '1') BIG = 10007;
  Suite *s = suite_create("cuda");
  TCase *tc = tcase_create("kernels");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, test_cuda_reports);
  tcase_add_test(tc, test_device_roundtrip);
  tcase_add_test(tc, test_philox_identical);
  tcase_add_test(tc, test_sum_deterministic);
  tcase_add_test(tc, test_batchnorm);
  tcase_add_test(tc, test_batchnorm_rows);
  tcase_add_test(tc, test_batchnorm_act);
  tcase_add_test(tc, test_conv2d);
  tcase_add_test(tc, test_allocator_stats);
  tcase_add_test(tc, test_errors_no_crash);
  suite_add_tcase(s, tc);
  return s;
}

VR_TEST_MAIN(cuda_suite)
