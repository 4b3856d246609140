/* test_cuda_ops.c: CUDA paths that each op's parity case (tests/test_ops.c) does not reach: the
 * convolution's backward with only some gradients wanted, through cuDNN and through im2col; the
 * fused batch norm + add + ReLU with its running statistics; the regularizers' sliced paths at the
 * kernel level (3xTF32, ties in the projections) and their one-launch column sums run after run;
 * and a chain of ops through the public API on CUDA tensors.
 *
 * Without a GPU each case prints "SKIP <case>: no CUDA device" and passes. VISREG_TEST_CUDA_AS_CPU=1
 * runs the harness with the CPU standing in for the GPU (CPU against CPU), which checks the
 * argument layouts here on a machine without a GPU.
 *
 * conv2d compares at 1e-4 (f32) and 1e-10 (f64) relative, since cuDNN and OpenBLAS sum in
 * different orders. */
#include "testutil.h"

/* ---------------------------------------------------------------- tensors */

static vr_tensor *rnd(vr_dtype dt, int ndim, const int64_t *shape, uint64_t seed, double lo, double hi) {
  vr_generator *g = NULL;
  vr_tensor *t = NULL, *u = NULL;
  OK(vr_generator_new(seed, 13, &g));
  OK(vr_rand_uniform(g, ndim, shape, lo, hi, VR_F64, VR_CPU, &t));
  vr_generator_free(g);
  if (dt == VR_F64) return t;
  if (vr_is_float(dt)) {
    OK(vr_tensor_to_dtype(t, dt, &u));
    vr_tensor_free(t);
    return u;
  }
  return tu_floor_to(t, dt); /* integers: whole numbers, through f64 */
}

/* a public-API result on DEV against the same call on the CPU */
static void cmp_dev(const vr_tensor *cpu, const vr_tensor *dev, double rtol, double atol, const char *what) {
  ck_assert_msg(vr_tensor_device(dev) == DEV, "%s: result on %s, expected %s", what,
                vr_device_name(vr_tensor_device(dev)), vr_device_name(DEV));
  cmp(cpu, dev, rtol, atol, what);
}
static vr_tensor *to_dev(const vr_tensor *t) {
  vr_tensor *o = NULL;
  OK(vr_tensor_to_device(t, DEV, &o));
  return o;
}

/* ---------------------------------------------------------------- conv2d */

/* the backward with only some gradients wanted, through cuDNN and through the im2col fallback */
static void conv_case(vr_dtype d, const int64_t *q, int want, const char *path) {
  char what[200];
  double rtol = d == VR_F64 ? 1e-10 : 1e-4, atol = d == VR_F64 ? 1e-11 : 1e-4;
  int64_t N = q[0], C = q[1], H = q[2], W = q[3], Co = q[4], kh = q[5], kw = q[6], G = q[13];
  int64_t Ho = (H + 2 * q[9] - q[11] * (kh - 1) - 1) / q[7] + 1, Wo = (W + 2 * q[10] - q[12] * (kw - 1) - 1) / q[8] + 1;
  int64_t xs[4] = {N, C, H, W}, ws[4] = {Co, C / G, kh, kw}, ys[4] = {N, Co, Ho, Wo};
  vr_kernel_args a = {.n_in = 3, .n_out = 1, .i = {q[7], q[8], q[9], q[10], q[11], q[12], G}};
  a.in[0] = rnd(d, 4, xs, 120, -1, 1);
  a.in[1] = rnd(d, 4, ws, 121, -1, 1);
  a.in[2] = rnd(d, 1, &Co, 122, -1, 1);
  a.out[0] = poisoned(d, 4, ys);
  snprintf(what, sizeof what, "conv2d %s %s", vr_dtype_name(d), path);
  run_cmp(VR_OP_CONV2D, 0, &a, rtol, atol, what);
  vr_kernel_args b = {.n_in = 3, .n_out = 3, .i = {q[7], q[8], q[9], q[10], q[11], q[12], G}};
  b.in[0] = rnd(d, 4, ys, 123, -1, 1);
  b.in[1] = a.in[0];
  b.in[2] = a.in[1];
  vr_tensor_retain(b.in[1]);
  vr_tensor_retain(b.in[2]);
  if (want & 1) b.out[0] = poisoned(d, 4, xs);
  if (want & 2) b.out[1] = poisoned(d, 4, ws);
  if (want & 4) b.out[2] = poisoned(d, 1, &Co);
  snprintf(what, sizeof what, "conv2d backward %s %s grads %d", vr_dtype_name(d), path, want);
  run_cmp(VR_OP_CONV2D, 1, &b, rtol, atol, what);
  free_args(&b);
  free_args(&a);
}

START_TEST(test_conv2d_paths) {
  NEED_DEV();
  /* {N, C, H, W, Cout, kh, kw, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups} */
  static const int64_t geo[][14] = {{3, 4, 9, 11, 6, 3, 3, 2, 1, 1, 1, 1, 2, 2}, {2, 8, 7, 7, 8, 1, 1, 1, 1, 0, 0, 1, 1, 8},
                                    {5, 3, 6, 5, 4, 2, 3, 1, 2, 1, 0, 1, 1, 1}};
  const char *conv0 = vr_variant("conv"); /* the suite's own (VISREG_TEST_VARIANT) */
  for (int path = 0; path < 2; path++) {
    if (path) vr_set_variant("conv", "im2col");
    for (int dt = 0; dt < 2; dt++)
      for (int g = 0; g < 3; g++)
        for (int k = 0; k < 3; k++) { /* grad_x only, grad_w only, all three */
          static const int wants[3] = {1, 2, 7};
          conv_case(dt ? VR_F64 : VR_F32, geo[g], wants[k], path ? "im2col" : "default");
        }
    vr_set_variant("conv", conv0);
  }
}
END_TEST

/* conv2d through the public API with autograd on CUDA tensors */
START_TEST(test_conv2d_api) {
  NEED_DEV();
  vr_tensor *x = rnd(VR_F64, 4, SH(2, 3, 8, 8), 130, -1, 1), *w = rnd(VR_F64, 4, SH(5, 3, 3, 3), 131, -1, 1);
  vr_tensor *b = rnd(VR_F64, 1, SH(5), 132, -1, 1), *xd = to_dev(x), *wd = to_dev(w), *bd = to_dev(b);
  vr_tensor *ins[6] = {x, w, b, xd, wd, bd};
  for (int k = 0; k < 6; k++) OK(vr_tensor_set_requires_grad(ins[k], 1));
  vr_tensor *y = NULL, *yd = NULL, *p = NULL, *pd = NULL, *s = NULL, *sd = NULL;
  OK(vr_conv2d(x, w, b, 1, 1, 1, 1, 1, 1, 1, &y));
  OK(vr_conv2d(xd, wd, bd, 1, 1, 1, 1, 1, 1, 1, &yd));
  cmp_dev(y, yd, 1e-10, 1e-11, "vr_conv2d");
  OK(vr_max_pool2d(y, 2, 2, 2, 2, 0, 0, &p));
  OK(vr_max_pool2d(yd, 2, 2, 2, 2, 0, 0, &pd));
  OK(vr_sum(p, 0, NULL, 0, &s));
  OK(vr_sum(pd, 0, NULL, 0, &sd));
  OK(vr_backward(s, NULL, 0));
  OK(vr_backward(sd, NULL, 0));
  for (int k = 0; k < 3; k++) {
    vr_tensor *g = vr_tensor_grad(ins[k]), *gd = vr_tensor_grad(ins[k + 3]);
    cmp_dev(g, gd, 1e-10, 1e-11, k == 0 ? "conv2d grad x" : k == 1 ? "conv2d grad w" : "conv2d grad b");
    vr_tensor_free(g);
    vr_tensor_free(gd);
  }
  vr_tensor *objs[] = {x, w, b, xd, wd, bd, y, yd, p, pd, s, sd};
  for (size_t k = 0; k < sizeof objs / sizeof *objs; k++) vr_tensor_free(objs[k]);
}
END_TEST


/* ---------------------------------------------------------------- fused batch norm + add + ReLU */

/* vr_batch_norm_act on DEV against the CPU through the public API (f64, f32: forward, running
 * stats, grads of x, w, b, residual), both layouts of the kernels (N x C x S and channels-last
 * [M, C]); then the backward kernel alone in bf16 with the CPU's output as the ReLU mask (the
 * CPU rounds the normalisation, then the add, before the ReLU; the GPU rounds once after both,
 * so an output next to 0 may land on either side) */
static void bn_act_case(vr_dtype dt, int ndim, const int64_t *shape, int relu, int with_res) {
  char what[160];
  snprintf(what, sizeof what, "batch_norm_act %s %dd relu %d residual %d", vr_dtype_name(dt), ndim, relu, with_res);
  double rtol = dt == VR_F64 ? 1e-10 : 1e-4, atol = dt == VR_F64 ? 1e-11 : 1e-5;
  int64_t C = shape[1];
  vr_tensor *x = rnd(dt, ndim, shape, 150, -2, 3), *r = rnd(dt, ndim, shape, 151, -1, 1);
  vr_tensor *w = rnd(dt, 1, &C, 152, 0.5, 1.5), *b = rnd(dt, 1, &C, 153, -0.5, 0.5);
  vr_tensor *rm = rnd(dt, 1, &C, 154, -0.1, 0.1), *rv = rnd(dt, 1, &C, 155, 0.9, 1.1);
  vr_tensor *xd = to_dev(x), *rd = to_dev(r), *wd = to_dev(w), *bd = to_dev(b), *rmd = to_dev(rm), *rvd = to_dev(rv);
  vr_tensor *leaves[8] = {x, w, b, r, xd, wd, bd, rd};
  for (int k = 0; k < 8; k++) OK(vr_tensor_set_requires_grad(leaves[k], 1));
  vr_tensor *y = NULL, *yd = NULL, *gy = rnd(dt, ndim, shape, 156, -1, 1), *gyd = to_dev(gy);
  OK(vr_batch_norm_act(x, w, b, rm, rv, 1, 0.1, 1e-5, with_res ? r : NULL, relu, &y));
  OK(vr_batch_norm_act(xd, wd, bd, rmd, rvd, 1, 0.1, 1e-5, with_res ? rd : NULL, relu, &yd));
  cmp_dev(y, yd, rtol, atol, what);
  cmp_dev(rm, rmd, rtol, atol, "running_mean");
  cmp_dev(rv, rvd, rtol, atol, "running_var");
  OK(vr_backward(y, gy, 0));
  OK(vr_backward(yd, gyd, 0));
  static const char *names[4] = {"grad x", "grad weight", "grad bias", "grad residual"};
  for (int k = 0; k < 4; k++) {
    if (k == 3 && !with_res) continue;
    vr_tensor *g = vr_tensor_grad(leaves[k]), *gd = vr_tensor_grad(leaves[k + 4]);
    char w2[200];
    snprintf(w2, sizeof w2, "%s: %s", what, names[k]);
    ck_assert_msg(g && gd, "%s missing", w2);
    cmp_dev(g, gd, rtol * 10, atol * 10, w2);
    vr_tensor_free(g);
    vr_tensor_free(gd);
  }
  vr_tensor *objs[] = {x, r, w, b, rm, rv, xd, rd, wd, bd, rmd, rvd, y, yd, gy, gyd};
  for (size_t k = 0; k < sizeof objs / sizeof *objs; k++) vr_tensor_free(objs[k]);
}

static void bn_act_bwd_bf16(int ndim, const int64_t *shape) {
  int64_t C = shape[1], N = shape[0], S = ndim == 4 ? shape[2] * shape[3] : 1;
  vr_kernel_args f = {.n_in = 6, .n_out = 3, .i = {1, N, C, S, 1}, .f = {0.1, 1e-5}};
  f.in[0] = rnd(VR_BF16, ndim, shape, 160, -2, 3);
  f.in[1] = rnd(VR_F32, 1, &C, 161, 0.5, 1.5);
  f.in[2] = rnd(VR_F32, 1, &C, 162, -0.5, 0.5);
  f.in[5] = rnd(VR_BF16, ndim, shape, 163, -1, 1);
  f.out[0] = poisoned(VR_BF16, ndim, shape);
  f.out[1] = poisoned(VR_F32, 1, &C);
  f.out[2] = poisoned(VR_F32, 1, &C);
  OK(vr_dispatch(VR_OP_BATCHNORM, VR_CPU, 0, &f));
  vr_kernel_args b = {.n_in = 6, .n_out = 4, .i = {1, N, C, S, 1}};
  b.in[0] = rnd(VR_BF16, ndim, shape, 164, -1, 1);
  b.in[1] = f.in[0];
  b.in[2] = f.in[1];
  b.in[3] = f.out[1];
  b.in[4] = f.out[2];
  b.in[5] = f.out[0];
  for (int k = 1; k < 6; k++) vr_tensor_retain(b.in[k]);
  b.out[0] = poisoned(VR_BF16, ndim, shape);
  b.out[1] = poisoned(VR_F32, 1, &C);
  b.out[2] = poisoned(VR_F32, 1, &C);
  b.out[3] = poisoned(VR_BF16, ndim, shape);
  run_cmp(VR_OP_BATCHNORM, 1, &b, 2e-2, 1e-2 * sqrt((double)(N * S)), ndim == 4 ? "batch_norm_act bwd bf16 NCHW" : "batch_norm_act bwd bf16 [M, C]");
  free_args(&b);
  free_args(&f);
}

START_TEST(test_batch_norm_act) {
  NEED_DEV();
  const int64_t s4[4] = {4, 8, 5, 7}, s2[2] = {1500, 64};
  for (int relu = 0; relu < 2; relu++)
    for (int res = 0; res < 2; res++) {
      if (!relu && !res) continue;
      bn_act_case(VR_F64, 4, s4, relu, res);
      bn_act_case(VR_F32, 4, s4, relu, res);
      bn_act_case(VR_F32, 2, s2, relu, res);
    }
  bn_act_bwd_bf16(4, s4);
  bn_act_bwd_bf16(2, s2);
}
END_TEST

/* ---------------------------------------------------------------- regularizers */

/* runs op's forward with dL/dz on both devices, then its backward (upstream 0.75); with ties > 0,
 * row b of each view repeats row b % ties, so the projections hold ties */
static void reg_case_ties(vr_op op, vr_dtype d, int64_t V, int64_t B, int64_t D, int64_t K, int drawn, int n_terms,
                          const double *f, const int64_t *iv, int ties, const char *name) {
  char what[200];
  double rtol = d == VR_F64 ? 1e-9 : 2e-4, atol = d == VR_F64 ? 1e-12 : 1e-6;
  int sliced = op == VR_OP_VISREG || op == VR_OP_SWD || op == VR_OP_SIGREG;
  vr_kernel_args a = {.n_in = 3, .n_out = 3};
  memcpy(a.f, f, sizeof a.f);
  memcpy(a.i, iv, sizeof a.i);
  a.in[0] = rnd(d, 3, SH(V, B, D), 140 + (uint64_t)B, -2, 2);
  if (ties > 0) {
    char *z = vr_data(a.in[0]);
    size_t row = (size_t)D * vr_dtype_size(d);
    for (int64_t v = 0; v < V; v++)
      for (int64_t b = ties; b < B; b++) memcpy(z + (size_t)(v * B + b) * row, z + (size_t)(v * B + b % ties) * row, row);
  }
  if (sliced && !drawn) a.in[1] = rnd(d, 2, SH(D, K), 141, -1, 1);
  if (op == VR_OP_VISREG || op == VR_OP_SWD) OK(vr_gauss_quantiles(B, d, VR_CPU, &a.in[2]));
  a.out[0] = poisoned(d, 0, NULL);
  if (n_terms) a.out[1] = poisoned(d, 1, SH(n_terms));
  a.out[2] = poisoned(d, 3, SH(V, B, D));
  snprintf(what, sizeof what, "%s %s V%lld B%lld D%lld K%lld%s%s", name, vr_dtype_name(d), (long long)V, (long long)B,
           (long long)D, (long long)K, drawn ? " drawn" : "", ties ? " ties" : "");
  if (run_cmp(op, 0, &a, rtol, atol, what)) {
    vr_kernel_args b = {.n_in = 2, .n_out = 1};
    OK(vr_tensor_full(0, NULL, 0.75, d, VR_CPU, &b.in[0]));
    b.in[1] = a.out[2];
    vr_tensor_retain(b.in[1]);
    b.out[0] = poisoned(d, 3, SH(V, B, D));
    snprintf(what, sizeof what, "%s backward %s", name, vr_dtype_name(d));
    run_cmp(op, 1, &b, rtol, atol, what);
    free_args(&b);
  }
  free_args(&a);
}
static void reg_case(vr_op op, vr_dtype d, int64_t V, int64_t B, int64_t D, int64_t K, int drawn, int n_terms,
                     const double *f, const int64_t *iv, const char *name) {
  reg_case_ties(op, d, V, B, D, K, drawn, n_terms, f, iv, 0, name);
}

START_TEST(test_reg_sliced) {
  NEED_DEV();
  for (int dt = 0; dt < 2; dt++) {
    vr_dtype d = dt ? VR_F64 : VR_F32;
    for (int drawn = 0; drawn < 2; drawn++) {
      /* VISReg: one chunk and chunks of 7 slices */
      for (int64_t chunk = 0; chunk <= 7; chunk += 7) {
        reg_case(VR_OP_VISREG, d, 2, 64, 16, 40, drawn, 3, (const double[8]){0.5, 1, 2, 1e-12},
                 (const int64_t[16]){chunk, 0, 1234, 5, 40}, "visreg");
        reg_case(VR_OP_SWD, d, 3, 50, 9, 20, drawn, 0, (const double[8]){0, 1, 0, 1e-6},
                 (const int64_t[16]){chunk, 0, 99, 2, 20}, "swd");
        reg_case(VR_OP_SIGREG, d, 2, 40, 8, 30, drawn, 0, (const double[8]){3, 1e-12},
                 (const int64_t[16]){chunk, 17, 7, 1, 30}, "sigreg");
      }
    }
    /* segments beyond 48 KB of shared memory (opt-in) and beyond shared memory (radix path) */
    reg_case(VR_OP_VISREG, d, 1, 5000, 4, 3, 1, 3, (const double[8]){1, 1, 1, 1e-12}, (const int64_t[16]){0, 0, 3, 4, 3},
             "visreg long");
    reg_case(VR_OP_SWD, d, 2, 20000, 3, 2, 1, 0, (const double[8]){0, 1, 0, 1e-6}, (const int64_t[16]){0, 0, 3, 4, 2},
             "swd longer");
  }
  /* f32 segments of 129..8192: the register-tiled sort, every tile width (R = 1 .. 16), with ties */
  const int64_t lens[] = {129, 256, 300, 1000, 2048, 4096};
  for (int n = 0; n < 6; n++)
    reg_case_ties(VR_OP_VISREG, VR_F32, 2, lens[n], 5, 3, 1, 3, (const double[8]){1, 1, 1, 1e-12},
                  (const int64_t[16]){0, 0, 8, 9, 3}, n % 2 ? 11 : 0, "visreg tiles");
  reg_case_ties(VR_OP_SWD, VR_F32, 3, 777, 6, 2, 0, 0, (const double[8]){0, 1, 0, 1e-6}, (const int64_t[16]){0, 0, 3, 4, 2},
                5, "swd tiles");
  /* f32 projections through 3xTF32 GEMMs (forced; on its own above 2^31 V B D K), chunked and not */
  vr_set_variant("3xtf32", "on");
  for (int64_t chunk = 0; chunk <= 5; chunk += 5) {
    reg_case(VR_OP_VISREG, VR_F32, 2, 300, 37, 11, 1, 3, (const double[8]){1, 1, 1, 1e-12},
             (const int64_t[16]){chunk, 0, 5, 6, 11}, "visreg 3xtf32");
    reg_case(VR_OP_SIGREG, VR_F32, 2, 40, 8, 30, 0, 0, (const double[8]){3, 1e-12}, (const int64_t[16]){chunk, 17, 7, 1, 30},
             "sigreg 3xtf32");
  }
  vr_set_variant("3xtf32", "auto");
}
END_TEST

/* the one-launch column sums (colsum.cuh: the last block of each column group finishes it, with
 * block counters shared by every kernel) on real hardware: VISReg and VICReg at sizes with many
 * blocks per group, three times over with the same draw: the same bits every time (a block that
 * finished early or a counter left non-zero would change them), and the CPU's values, with and
 * without a gradient (f64: in f32 a sort's ranks swap on rounding at this size, which moves single
 * gradient elements by percents) */
START_TEST(test_colsum_one_launch_repeats) {
  NEED_DEV();
  vr_tensor *z = rnd(VR_F64, 3, SH(2, 512, 256), 160, -1, 1), *zd = to_dev(z);
  OK(vr_tensor_set_requires_grad(z, 1));
  OK(vr_tensor_set_requires_grad(zd, 1));
  for (int m = 0; m < 2; m++) {
    const char *name = m ? "vr_vicreg" : "vr_visreg";
    vr_tensor *l = NULL, *t = NULL;
    OK(m ? vr_vicreg(z, 25, 25, 1, &l, &t) : vr_visreg(z, NULL, 128, 11, 3, 1, 1, 1, &l, &t));
    OK(vr_backward(l, NULL, 0));
    vr_tensor *g = vr_tensor_grad(z);
    vr_tensor_set_grad(z, NULL); /* (zd may be z itself with the CPU standing in) */
    double *first[3] = {0};
    for (int rep = 0; rep < 3; rep++) {
      vr_tensor *ld = NULL, *td = NULL;
      OK(m ? vr_vicreg(zd, 25, 25, 1, &ld, &td) : vr_visreg(zd, NULL, 128, 11, 3, 1, 1, 1, &ld, &td));
      OK(vr_backward(ld, NULL, 0));
      vr_tensor *gd = vr_tensor_grad(zd);
      const vr_tensor *got[3] = {ld, td, gd};
      char what[96];
      snprintf(what, sizeof what, "%s: loss, terms, grad", name);
      cmp_dev(l, ld, 1e-9, 1e-12, what);
      cmp_dev(t, td, 1e-9, 1e-12, what);
      cmp_dev(g, gd, 1e-8, 1e-12, what);
      for (int k = 0; k < 3; k++) {
        double *v = tu_values(got[k]);
        if (!rep) {
          first[k] = v;
          continue;
        }
        for (int64_t i = 0; i < vr_tensor_numel(got[k]); i++)
          ck_assert_msg(v[i] == first[k][i], "%s: output %d, element %lld: run %d gave %.9g, run 0 %.9g", name, k,
                        (long long)i, rep, v[i], first[k][i]);
        free(v);
      }
      vr_tensor_set_grad(zd, NULL);
      vr_tensor_free(gd);
      vr_tensor_free(ld);
      vr_tensor_free(td);
    }
    for (int k = 0; k < 3; k++) free(first[k]);
    { /* without a gradient the loss is finished by a launch of its own (VISReg) */
      int prev = vr_set_grad_enabled(0);
      vr_tensor *ln = NULL, *tn = NULL;
      OK(m ? vr_vicreg(zd, 25, 25, 1, &ln, &tn) : vr_visreg(zd, NULL, 128, 11, 3, 1, 1, 1, &ln, &tn));
      vr_set_grad_enabled(prev);
      cmp_dev(l, ln, 1e-9, 1e-12, "no grad: loss");
      cmp_dev(t, tn, 1e-9, 1e-12, "no grad: terms");
      vr_tensor_free(ln);
      vr_tensor_free(tn);
    }
    vr_tensor_free(g);
    vr_tensor_free(l);
    vr_tensor_free(t);
  }
  vr_tensor_free(z);
  vr_tensor_free(zd);
}
END_TEST

static Suite *cuda_ops_suite(void) {
  Suite *s = suite_create("cuda_ops");
  TCase *tc = tcase_create("parity");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, test_conv2d_paths);
  tcase_add_test(tc, test_conv2d_api);
  tcase_add_test(tc, test_batch_norm_act);
  tcase_add_test(tc, test_reg_sliced);
  tcase_add_test(tc, test_colsum_one_launch_repeats);
  suite_add_tcase(s, tc);
  return s;
}

VR_TEST_MAIN(cuda_ops_suite)
