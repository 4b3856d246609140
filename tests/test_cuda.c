/* test_cuda.c: every (op, CUDA) kernel against the CPU kernel of the same op, called with the same
 * vr_kernel_args (forward and backward), on contiguous, strided and broadcast operands and sizes
 * that are not multiples of a block (1000003 elements, 37 x 129); Philox bits across devices;
 * the caching allocator's statistics; errors that must not crash.
 *
 * Without a GPU each case prints "SKIP <case>: no CUDA device" and passes. Setting
 * VISREG_TEST_CUDA_AS_CPU=1 runs the whole harness with the CPU standing in for the GPU (CPU
 * against CPU), which checks the harness and the argument layouts on a machine without a GPU.
 * VISREG_TEST_ONLY=w1,w2 runs only the cases whose name holds one of the words; VISREG_TEST_QUICK=1 uses
 * smaller sizes (for compute-sanitizer); VISREG_TEST_VERBOSE=1 prints each comparison's max error.
 *
 * Tolerances (|cuda - cpu| <= atol + rtol |cpu|): f64 1e-12 relative (1e-10 where a reduction
 * order differs), f32 1e-5 relative for elementwise maths (CUDA's float functions are within
 * 2 ulp, glibc's within 1), 1e-4 for reductions and matrix products, bf16 one rounding step. */
#include "cuda_parity.h"

static int have_dev(const char *name) {
  const char *e = getenv("VISREG_TEST_CUDA_AS_CPU");
  DEV = (e && e[0] == '1') ? VR_CPU : VR_CUDA;
  if (DEV == VR_CUDA && !vr_cuda_available()) {
    printf("SKIP %s: no CUDA device\n", name);
    return 0;
  }
  return 1;
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

/* a transposed (non-contiguous) view of shape [.., r, c] */
static vr_tensor *rnd_t(vr_dtype dt, int ndim, const int64_t *shape, uint64_t seed, double lo, double hi) {
  int64_t sw[8];
  for (int i = 0; i < ndim; i++) sw[i] = shape[i];
  sw[ndim - 1] = shape[ndim - 2];
  sw[ndim - 2] = shape[ndim - 1];
  vr_tensor *b = rnd(dt, ndim, sw, seed, lo, hi), *v = NULL;
  OK(vr_transpose(b, -1, -2, &v));
  vr_tensor_free(b);
  return v;
}

/* a stride-0 view of t broadcast to (ndim, shape) */
static vr_tensor *bcast(vr_tensor *t, int ndim, const int64_t *shape) {
  int64_t st[8];
  int lead = ndim - t->ndim;
  for (int i = 0; i < ndim; i++) {
    int j = i - lead;
    st[i] = (j < 0 || (t->shape[j] == 1 && shape[i] != 1)) ? 0 : t->stride[j];
  }
  vr_tensor *v = NULL;
  OK(vr_tensor_view_raw(t, ndim, shape, st, t->offset, &v));
  return v;
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

START_TEST(test_copy_dtypes) {
  NEED_DEV();
  static const vr_dtype dts[] = {VR_F32, VR_F64, VR_I32, VR_I64, VR_U8, VR_BF16};
  char what[96];
  for (int i = 0; i < 6; i++)
    for (int o = 0; o < 6; o++) {
      /* whole numbers in [0, 200): exact in every dtype */
      vr_kernel_args a = {.n_in = 1, .n_out = 1};
      a.in[0] = rnd_t(dts[i], 2, SH(37, 129), 3 + (uint64_t)i, 0, 200);
      a.out[0] = poisoned(dts[o], 2, SH(37, 129));
      snprintf(what, sizeof what, "copy %s -> %s (strided)", vr_dtype_name(dts[i]), vr_dtype_name(dts[o]));
      run_cmp(VR_OP_COPY, 0, &a, 0, 0, what);
      free_args(&a);
    }
  /* fractional values f32/f64 -> bf16 (rounding to nearest even must match) */
  for (int i = 0; i < 2; i++) {
    vr_kernel_args a = {.n_in = 1, .n_out = 1};
    a.in[0] = rnd(dts[i], 1, &BIG, 5, -1000, 1000);
    a.out[0] = poisoned(VR_BF16, 1, &BIG);
    run_cmp(VR_OP_COPY, 0, &a, 0, 0, i ? "copy f64 -> bf16" : "copy f32 -> bf16");
    free_args(&a);
  }
  /* broadcast source (stride 0) into a strided destination */
  vr_kernel_args a = {.n_in = 1, .n_out = 1};
  vr_tensor *row = rnd(VR_F32, 2, SH(1, 129), 9, -1, 1);
  a.in[0] = bcast(row, 3, SH(5, 37, 129));
  vr_tensor_free(row);
  vr_tensor *dst = poisoned(VR_F32, 3, SH(5, 129, 37));
  OK(vr_transpose(dst, 1, 2, &a.out[0]));
  vr_tensor_free(dst);
  run_cmp(VR_OP_COPY, 0, &a, 0, 0, "copy broadcast -> strided");
  free_args(&a);
  /* large contiguous f64 -> f32 */
  vr_kernel_args b = {.n_in = 1, .n_out = 1};
  b.in[0] = rnd(VR_F64, 1, &BIG, 10, -5, 5);
  b.out[0] = poisoned(VR_F32, 1, &BIG);
  run_cmp(VR_OP_COPY, 0, &b, 0, 0, "copy f64 -> f32 (1000003)");
  free_args(&b);
}
END_TEST

START_TEST(test_fill_arange) {
  NEED_DEV();
  static const vr_dtype dts[] = {VR_F32, VR_F64, VR_I32, VR_I64, VR_U8, VR_BF16};
  for (int i = 0; i < 6; i++) {
    vr_kernel_args a = {.n_out = 1, .f = {3.14159}};
    vr_tensor *base = poisoned(dts[i], 2, SH(129, 37));
    OK(vr_transpose(base, 0, 1, &a.out[0]));
    vr_tensor_free(base);
    run_cmp(VR_OP_FILL, 0, &a, 0, 0, "fill (strided)");
    free_args(&a);
    vr_kernel_args r = {.n_out = 1, .f = {-7.25, 0.125}};
    r.out[0] = poisoned(dts[i], 1, &BIG);
    if (dts[i] == VR_U8 || dts[i] == VR_BF16) r.f[0] = 0, r.f[1] = 0.0001;
    run_cmp(VR_OP_ARANGE, 0, &r, 0, 0, "arange");
    free_args(&r);
  }
  /* through the public API */
  vr_tensor *x = NULL, *y = NULL;
  OK(vr_tensor_arange(0.5, 1000.5, 0.25, VR_F64, VR_CPU, &x));
  OK(vr_tensor_arange(0.5, 1000.5, 0.25, VR_F64, DEV, &y));
  cmp(x, y, 0, 0, "vr_tensor_arange");
  vr_tensor_free(x);
  vr_tensor_free(y);
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

/* ---------------------------------------------------------------- elementwise */

/* input range for each unary kind, inside its domain */
static void un_range(int kind, double *lo, double *hi) {
  *lo = -3, *hi = 3;
  if (kind == VR_UN_LOG || kind == VR_UN_SQRT || kind == VR_UN_RSQRT || kind == VR_UN_POW_SCALAR ||
      kind == VR_UN_RDIV_SCALAR)
    *lo = 0.1, *hi = 4;
  if (kind == VR_UN_ERFINV) *lo = -0.95, *hi = 0.95;
}

START_TEST(test_unary) {
  NEED_DEV();
  char what[96];
  for (int dt = 0; dt < 2; dt++) {
    vr_dtype d = dt ? VR_F64 : VR_F32;
    double rtol = dt ? 1e-12 : 1e-5, atol = dt ? 1e-13 : 1e-6;
    for (int kind = VR_UN_NEG; kind <= VR_UN_POW_SCALAR; kind++) {
      double lo, hi;
      un_range(kind, &lo, &hi);
      double f0 = kind == VR_UN_CLAMP ? -0.5 : kind == VR_UN_POW_SCALAR ? 2.5 : 1.75, f1 = 0.75;
      for (int strided = 0; strided < 2; strided++) {
        int nd = strided ? 2 : 1;
        const int64_t *shape = strided ? SH(37, 129) : &BIG;
        vr_kernel_args a = {.n_in = 1, .n_out = 1, .sub = kind, .f = {f0, f1}};
        a.in[0] = strided ? rnd_t(d, nd, shape, 20 + (uint64_t)kind, lo, hi) : rnd(d, nd, shape, 20 + (uint64_t)kind, lo, hi);
        a.out[0] = poisoned(d, nd, shape);
        snprintf(what, sizeof what, "unary %d %s%s", kind, vr_dtype_name(d), strided ? " strided" : "");
        run_cmp(VR_OP_UNARY, 0, &a, rtol, atol, what);
        if (kind != VR_UN_ERF && kind != VR_UN_ERFINV) {
          vr_kernel_args b = {.n_in = 3, .n_out = 1, .sub = kind, .f = {f0, f1}};
          b.in[0] = strided ? rnd_t(d, nd, shape, 50, -1, 1) : rnd(d, nd, shape, 50, -1, 1);
          b.in[1] = a.in[0];
          b.in[2] = a.out[0]; /* y from the CPU forward */
          vr_tensor_retain(b.in[1]);
          vr_tensor_retain(b.in[2]);
          b.out[0] = poisoned(d, nd, shape);
          snprintf(what, sizeof what, "unary %d backward %s%s", kind, vr_dtype_name(d), strided ? " strided" : "");
          run_cmp(VR_OP_UNARY, 1, &b, rtol * 10, atol * 10, what);
          free_args(&b);
        }
        free_args(&a);
      }
    }
  }
  /* bf16 and integers */
  vr_kernel_args a = {.n_in = 1, .n_out = 1, .sub = VR_UN_EXP};
  a.in[0] = rnd(VR_BF16, 1, &BIG, 3, -2, 2);
  a.out[0] = poisoned(VR_BF16, 1, &BIG);
  run_cmp(VR_OP_UNARY, 0, &a, 1e-2, 1e-2, "unary exp bf16");
  free_args(&a);
  /* the bf16 activations of autocast: relu forward and backward, the residual add */
  vr_kernel_args r = {.n_in = 1, .n_out = 1, .sub = VR_UN_RELU};
  r.in[0] = rnd(VR_BF16, 1, &BIG, 5, -2, 2);
  r.out[0] = poisoned(VR_BF16, 1, &BIG);
  run_cmp(VR_OP_UNARY, 0, &r, 0, 0, "unary relu bf16");
  vr_kernel_args rb = {.n_in = 3, .n_out = 1, .sub = VR_UN_RELU};
  rb.in[0] = rnd(VR_BF16, 1, &BIG, 6, -1, 1);
  rb.in[1] = r.in[0];
  rb.in[2] = r.out[0];
  vr_tensor_retain(rb.in[1]);
  vr_tensor_retain(rb.in[2]);
  rb.out[0] = poisoned(VR_BF16, 1, &BIG);
  run_cmp(VR_OP_UNARY, 1, &rb, 0, 0, "unary relu backward bf16");
  free_args(&rb);
  vr_kernel_args ad = {.n_in = 2, .n_out = 1, .sub = VR_BIN_ADD};
  ad.in[0] = r.in[0];
  vr_tensor_retain(ad.in[0]);
  ad.in[1] = rnd(VR_BF16, 1, &BIG, 7, -2, 2);
  ad.out[0] = poisoned(VR_BF16, 1, &BIG);
  run_cmp(VR_OP_BINARY, 0, &ad, 0x1p-8, 0, "binary add bf16"); /* one rounding of the exact sum */
  free_args(&ad);
  free_args(&r);
  static const int ikinds[] = {VR_UN_NEG, VR_UN_ABS, VR_UN_SQUARE, VR_UN_ADD_SCALAR, VR_UN_MUL_SCALAR};
  for (int k = 0; k < 5; k++) {
    vr_kernel_args b = {.n_in = 1, .n_out = 1, .sub = ikinds[k], .f = {3}};
    b.in[0] = rnd_t(VR_I64, 2, SH(37, 129), 4, -1000, 1000);
    b.out[0] = poisoned(VR_I64, 2, SH(37, 129));
    run_cmp(VR_OP_UNARY, 0, &b, 0, 0, "unary i64");
    free_args(&b);
  }
}
END_TEST

START_TEST(test_binary) {
  NEED_DEV();
  char what[96];
  for (int dt = 0; dt < 2; dt++) {
    vr_dtype d = dt ? VR_F64 : VR_F32;
    double rtol = dt ? 1e-12 : 1e-5, atol = dt ? 1e-13 : 1e-6;
    for (int kind = VR_BIN_ADD; kind <= VR_BIN_LT; kind++) {
      double lo = kind == VR_BIN_POW ? 0.1 : -2, hi = 2;
      for (int layout = 0; layout < 3; layout++) {
        /* 0: contiguous 1000003; 1: strided a, broadcast row b; 2: broadcast column a, strided b */
        vr_kernel_args a = {.n_in = 2, .n_out = 1, .sub = kind};
        int nd = layout ? 2 : 1;
        const int64_t *shape = layout ? SH(37, 129) : &BIG;
        if (layout == 0) {
          a.in[0] = rnd(d, 1, &BIG, 60 + (uint64_t)kind, lo, hi);
          a.in[1] = rnd(d, 1, &BIG, 61 + (uint64_t)kind, lo, hi);
          if (kind == VR_BIN_EQ) { /* some equal pairs */
            vr_tensor_free(a.in[1]);
            a.in[1] = a.in[0];
            vr_tensor_retain(a.in[1]);
          }
        } else if (layout == 1) {
          a.in[0] = rnd_t(d, 2, shape, 62, lo, hi);
          vr_tensor *r = rnd(d, 2, SH(1, 129), 63, lo, hi);
          a.in[1] = bcast(r, 2, shape);
          vr_tensor_free(r);
        } else {
          vr_tensor *c = rnd(d, 2, SH(37, 1), 64, lo, hi);
          a.in[0] = bcast(c, 2, shape);
          vr_tensor_free(c);
          a.in[1] = rnd_t(d, 2, shape, 65, lo, hi);
        }
        a.out[0] = poisoned(kind >= VR_BIN_EQ ? VR_U8 : d, nd, shape);
        snprintf(what, sizeof what, "binary %d %s layout %d", kind, vr_dtype_name(d), layout);
        run_cmp(VR_OP_BINARY, 0, &a, rtol, atol, what);
        if (kind <= VR_BIN_MIN) {
          for (int which = 0; which < 3; which++) { /* both grads, grad_a only, grad_b only */
            vr_kernel_args b = {.n_in = 3, .n_out = 2, .sub = kind};
            b.in[0] = layout ? rnd_t(d, 2, shape, 66, -1, 1) : rnd(d, 1, shape, 66, -1, 1);
            b.in[1] = a.in[0];
            b.in[2] = a.in[1];
            vr_tensor_retain(b.in[1]);
            vr_tensor_retain(b.in[2]);
            if (which != 2) b.out[0] = poisoned(d, nd, shape);
            if (which != 1) b.out[1] = poisoned(d, nd, shape);
            snprintf(what, sizeof what, "binary %d backward %s layout %d grads %d", kind, vr_dtype_name(d), layout, which);
            run_cmp(VR_OP_BINARY, 1, &b, rtol * 10, atol * 10, what);
            free_args(&b);
          }
        }
        free_args(&a);
      }
    }
  }
  /* integers: exact */
  static const vr_dtype its[] = {VR_I32, VR_I64, VR_U8};
  static const int ikinds[] = {VR_BIN_ADD, VR_BIN_SUB, VR_BIN_MUL, VR_BIN_MAX, VR_BIN_MIN, VR_BIN_EQ, VR_BIN_GT, VR_BIN_LT};
  for (int t = 0; t < 3; t++)
    for (int k = 0; k < 8; k++) {
      if (its[t] == VR_U8 && ikinds[k] == VR_BIN_SUB) continue; /* negative results: C leaves u8 conversion undefined */
      vr_kernel_args a = {.n_in = 2, .n_out = 1, .sub = ikinds[k]};
      double lo = its[t] == VR_U8 ? 0 : -100, hi = its[t] == VR_U8 ? 16 : 100;
      a.in[0] = rnd_t(its[t], 2, SH(37, 129), 70, lo, hi);
      a.in[1] = rnd(its[t], 2, SH(37, 129), 71, lo, hi);
      a.out[0] = poisoned(ikinds[k] >= VR_BIN_EQ ? VR_U8 : its[t], 2, SH(37, 129));
      snprintf(what, sizeof what, "binary %d %s", ikinds[k], vr_dtype_name(its[t]));
      run_cmp(VR_OP_BINARY, 0, &a, 0, 0, what);
      free_args(&a);
    }
  /* in place: out aliases in[0] */
  vr_kernel_args p = {.n_in = 2, .n_out = 1, .sub = VR_BIN_ADD};
  p.in[0] = rnd(VR_F32, 1, &BIG, 72, -1, 1);
  p.in[1] = rnd(VR_F32, 1, &BIG, 73, -1, 1);
  p.out[0] = p.in[0];
  vr_tensor_retain(p.out[0]);
  /* mirrors of in[0] and out[0] would be two buffers: alias them on the device too */
  if (vr_kernel_exists(VR_OP_BINARY, VR_CPU, 0)) {
    vr_kernel_args d = p;
    d.in[0] = mirror(p.in[0], DEV);
    d.in[1] = mirror(p.in[1], DEV);
    d.out[0] = d.in[0];
    OK(vr_dispatch(VR_OP_BINARY, VR_CPU, 0, &p));
    OK(vr_dispatch(VR_OP_BINARY, DEV, 0, &d));
    cmp(p.out[0], d.out[0], 1e-6, 1e-7, "binary add in place");
    vr_tensor_free(d.in[0]);
    vr_tensor_free(d.in[1]);
  }
  free_args(&p);
}
END_TEST

START_TEST(test_where) {
  NEED_DEV();
  vr_kernel_args a = {.n_in = 3, .n_out = 1};
  vr_tensor *c = rnd(VR_U8, 2, SH(37, 1), 80, 0, 2);
  a.in[0] = bcast(c, 2, SH(37, 129));
  vr_tensor_free(c);
  a.in[1] = rnd_t(VR_F32, 2, SH(37, 129), 81, -1, 1);
  vr_tensor *b = rnd(VR_F32, 1, SH(129), 82, -1, 1);
  a.in[2] = bcast(b, 2, SH(37, 129));
  vr_tensor_free(b);
  a.out[0] = poisoned(VR_F32, 2, SH(37, 129));
  run_cmp(VR_OP_WHERE, 0, &a, 0, 0, "where broadcast");
  free_args(&a);
  vr_kernel_args d = {.n_in = 3, .n_out = 1};
  d.in[0] = rnd(VR_U8, 1, &BIG, 83, 0, 2);
  d.in[1] = rnd(VR_F64, 1, &BIG, 84, -1, 1);
  d.in[2] = rnd(VR_F64, 1, &BIG, 85, -1, 1);
  d.out[0] = poisoned(VR_F64, 1, &BIG);
  run_cmp(VR_OP_WHERE, 0, &d, 0, 0, "where f64 1000003");
  free_args(&d);
}
END_TEST

/* ---------------------------------------------------------------- reductions */

static vr_tensor *keep_out(vr_dtype dt, const vr_tensor *x, int64_t mask) {
  int64_t shape[8];
  for (int i = 0; i < x->ndim; i++) shape[i] = ((mask >> i) & 1) ? 1 : x->shape[i];
  return poisoned(dt, x->ndim, shape);
}

START_TEST(test_sum_var_norm) {
  NEED_DEV();
  char what[128];
  static const int64_t masks[] = {0xF, 0x1, 0x2, 0x8, 0x5, 0xA, 0x6};
  for (int dt = 0; dt < 2; dt++) {
    vr_dtype d = dt ? VR_F64 : VR_F32;
    double rtol = dt ? 1e-10 : 1e-4, atol = dt ? 1e-12 : 1e-5;
    for (int strided = 0; strided < 2; strided++) {
      vr_tensor *x = strided ? rnd_t(d, 4, SH(5, 37, 3, 129), 90, -1, 1) : rnd(d, 4, SH(5, 37, 3, 129), 90, -1, 1);
      for (int m = 0; m < 7; m++) {
        vr_kernel_args a = {.n_in = 1, .n_out = 1, .i = {masks[m]}, .f = {0.5}};
        a.in[0] = x;
        vr_tensor_retain(x);
        a.out[0] = keep_out(d, x, masks[m]);
        snprintf(what, sizeof what, "sum %s mask %llx%s", vr_dtype_name(d), (unsigned long long)masks[m], strided ? " strided" : "");
        run_cmp(VR_OP_SUM, 0, &a, rtol, atol, what);
        vr_tensor_free(a.out[0]);
        a.out[0] = keep_out(d, x, masks[m]);
        a.i[1] = 1;
        snprintf(what, sizeof what, "var %s mask %llx%s", vr_dtype_name(d), (unsigned long long)masks[m], strided ? " strided" : "");
        run_cmp(VR_OP_VAR, 0, &a, rtol, atol, what);
        static const double ps[] = {1, 2, 3, INFINITY};
        for (int p = 0; p < 4; p++) {
          vr_tensor_free(a.out[0]);
          a.out[0] = keep_out(d, x, masks[m]);
          a.f[0] = ps[p];
          snprintf(what, sizeof what, "norm p=%g %s mask %llx", ps[p], vr_dtype_name(d), (unsigned long long)masks[m]);
          if (run_cmp(VR_OP_NORM, 0, &a, rtol, atol, what) && m == 4) {
            vr_kernel_args b = {.n_in = 3, .n_out = 1, .f = {ps[p]}, .i = {masks[m]}};
            vr_tensor *g = rnd(d, x->ndim, a.out[0]->shape, 91, -1, 1);
            b.in[0] = bcast(g, x->ndim, x->shape);
            b.in[1] = x;
            vr_tensor_retain(x);
            b.in[2] = bcast(a.out[0], x->ndim, x->shape);
            b.out[0] = poisoned(d, x->ndim, x->shape);
            snprintf(what, sizeof what, "norm backward p=%g %s", ps[p], vr_dtype_name(d));
            run_cmp(VR_OP_NORM, 1, &b, rtol * 10, atol * 10, what);
            vr_tensor_free(g);
            free_args(&b);
          }
        }
        free_args(&a);
      }
      vr_tensor_free(x);
    }
    /* one output over 1000003 elements (the split path), and few outputs over many */
    vr_kernel_args a = {.n_in = 1, .n_out = 1, .i = {1}, .f = {1}};
    a.in[0] = rnd(d, 1, &BIG, 92, -1, 1);
    a.out[0] = poisoned(d, 1, SH(1));
    run_cmp(VR_OP_SUM, 0, &a, rtol, atol, "sum of 1000003");
    vr_tensor_free(a.out[0]);
    a.out[0] = poisoned(d, 1, SH(1));
    run_cmp(VR_OP_VAR, 0, &a, rtol, atol, "var of 1000003");
    free_args(&a);
    vr_kernel_args c = {.n_in = 1, .n_out = 1, .i = {2}, .f = {1}};
    c.in[0] = rnd(d, 2, SH(3, 333337), 93, -1, 1);
    c.out[0] = poisoned(d, 2, SH(3, 1));
    run_cmp(VR_OP_SUM, 0, &c, rtol, atol, "sum 3 x 333337 over dim 1");
    free_args(&c);
    /* outer reductions: thread per output split into chunks, and block per output split */
    static const int64_t outer[][2] = {{3001, 2053}, {333337, 3}};
    for (int q = 0; q < 2; q++) {
      vr_tensor *x = rnd(d, 2, outer[q], 96, -1, 1);
      vr_kernel_args e = {.n_in = 1, .n_out = 1, .i = {1, 1}, .f = {1}};
      e.in[0] = x;
      e.out[0] = keep_out(d, x, 1);
      snprintf(what, sizeof what, "sum %s %lldx%lld over dim 0", vr_dtype_name(d), (long long)outer[q][0], (long long)outer[q][1]);
      run_cmp(VR_OP_SUM, 0, &e, rtol, atol, what);
      vr_tensor_free(e.out[0]);
      e.out[0] = keep_out(d, x, 1);
      snprintf(what, sizeof what, "var %s %lldx%lld over dim 0", vr_dtype_name(d), (long long)outer[q][0], (long long)outer[q][1]);
      run_cmp(VR_OP_VAR, 0, &e, rtol, atol, what);
      vr_kernel_args mm = {.n_in = 1, .n_out = 2, .i = {0}};
      mm.in[0] = x;
      vr_tensor_retain(x);
      mm.out[0] = keep_out(d, x, 1);
      mm.out[1] = keep_out(VR_I64, x, 1);
      snprintf(what, sizeof what, "max %s %lldx%lld over dim 0", vr_dtype_name(d), (long long)outer[q][0], (long long)outer[q][1]);
      run_cmp(VR_OP_MAXMIN, 0, &mm, 0, 0, what);
      free_args(&mm);
      free_args(&e);
    }
  }
  /* integer sums are exact and i64 */
  vr_kernel_args s = {.n_in = 1, .n_out = 1, .i = {0x2}, .f = {1}};
  s.in[0] = rnd_t(VR_I32, 2, SH(37, 129), 94, -1000, 1000);
  s.out[0] = poisoned(VR_I64, 2, SH(37, 1));
  run_cmp(VR_OP_SUM, 0, &s, 0, 0, "sum i32 -> i64");
  free_args(&s);
}
END_TEST

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

START_TEST(test_maxmin) {
  NEED_DEV();
  char what[96];
  for (int dt = 0; dt < 3; dt++) {
    vr_dtype d = dt == 0 ? VR_F32 : dt == 1 ? VR_F64 : VR_I64;
    for (int dim = 0; dim < 3; dim++)
      for (int sub = 0; sub < 2; sub++) {
        /* whole numbers in a small range: many ties, the first index must win */
        vr_tensor *x = rnd_t(d, 3, SH(7, 37, 129), 100 + (uint64_t)dim, -20, 20);
        vr_kernel_args a = {.n_in = 1, .n_out = 2, .sub = sub, .i = {dim}};
        a.in[0] = x;
        a.out[0] = keep_out(d, x, (int64_t)1 << dim);
        a.out[1] = keep_out(VR_I64, x, (int64_t)1 << dim);
        if (vr_is_int(d)) {
          snprintf(what, sizeof what, "%s %s dim %d", sub ? "min" : "max", vr_dtype_name(d), dim);
          run_cmp(VR_OP_MAXMIN, 0, &a, 0, 0, what);
        } else {
          /* round the float values so that ties occur */
          vr_tensor *r = rnd(VR_I64, 3, SH(7, 37, 129), 100 + (uint64_t)dim, -20, 20), *rf = NULL;
          OK(vr_tensor_to_dtype(r, d, &rf));
          vr_tensor_free(a.in[0]);
          a.in[0] = rf;
          vr_tensor_free(r);
          snprintf(what, sizeof what, "%s %s dim %d", sub ? "min" : "max", vr_dtype_name(d), dim);
          if (run_cmp(VR_OP_MAXMIN, 0, &a, 0, 0, what)) {
            vr_kernel_args b = {.n_in = 2, .n_out = 1, .i = {dim}};
            b.in[0] = rnd(d, 3, a.out[0]->shape, 101, -1, 1);
            b.in[1] = a.out[1];
            vr_tensor_retain(b.in[1]);
            b.out[0] = poisoned(d, 3, SH(7, 37, 129));
            snprintf(what, sizeof what, "%s backward %s dim %d", sub ? "min" : "max", vr_dtype_name(d), dim);
            run_cmp(VR_OP_MAXMIN, 1, &b, 0, 0, what);
            free_args(&b);
          }
        }
        free_args(&a);
      }
  }
  /* one long row (block path) */
  vr_kernel_args a = {.n_in = 1, .n_out = 2, .sub = 0, .i = {1}};
  a.in[0] = rnd(VR_F32, 2, SH(2, 500001), 102, -1, 1);
  a.out[0] = poisoned(VR_F32, 2, SH(2, 1));
  a.out[1] = poisoned(VR_I64, 2, SH(2, 1));
  run_cmp(VR_OP_MAXMIN, 0, &a, 0, 0, "max of 2 x 500001");
  free_args(&a);
}
END_TEST

/* ---------------------------------------------------------------- matmul */

/* C_b = op(A_b) op(B_b) in double on the host, as the reference (no CPU kernel needed) */
static vr_tensor *matmul_ref(const vr_tensor *A, const vr_tensor *B, int ta, int tb, int64_t m, int64_t n, int64_t k, int64_t batch) {
  double *a = tu_values(A), *b = tu_values(B);
  vr_tensor *C = NULL;
  OK(vr_tensor_zeros(3, SH(batch, m, n), VR_F64, VR_CPU, &C));
  double *c = vr_tensor_data(C);
  /* tu_values gives the logical (row-major over the view) elements of A [batch, ra, ca] */
  int64_t ra = ta ? k : m, ca = ta ? m : k, rb = tb ? n : k, cb = tb ? k : n;
  for (int64_t q = 0; q < batch; q++)
    for (int64_t i = 0; i < m; i++)
      for (int64_t j = 0; j < n; j++) {
        double s = 0;
        for (int64_t l = 0; l < k; l++) {
          double av = ta ? a[q * ra * ca + l * ca + i] : a[q * ra * ca + i * ca + l];
          double bv = tb ? b[q * rb * cb + j * cb + l] : b[q * rb * cb + l * cb + j];
          s += av * bv;
        }
        c[(q * m + i) * n + j] = s;
      }
  free(a);
  free(b);
  return C;
}

/* the stored matrix of an operand: [batch, r, c] contiguous; trans: the op transposes it */
START_TEST(test_matmul) {
  NEED_DEV();
  if (!vr_kernel_exists(VR_OP_MATMUL, DEV, 0)) {
    printf("SKIP %s: no matmul kernel on %s\n", __func__, vr_device_name(DEV));
    return;
  }
  char what[128];
  static const int64_t dims[][4] = {{1, 37, 129, 65}, {3, 37, 129, 65}, {5, 1, 257, 3}, {2, 64, 64, 64}, {1, 5, 0, 7}};
  for (int dt = 0; dt < 2; dt++) {
    vr_dtype d = dt ? VR_F64 : VR_F32;
    double rtol = dt ? 1e-12 : 1e-4, atol = dt ? 1e-12 : 1e-4;
    for (int c = 0; c < 5; c++)
      for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
          for (int bb = 0; bb < 2; bb++) { /* bb: B broadcast over the batch (stride 0) */
            int64_t batch = dims[c][0], m = dims[c][1], k = dims[c][2], n = dims[c][3];
            vr_tensor *A = rnd(d, 3, SH(batch, ta ? k : m, ta ? m : k), 110, -1, 1);
            vr_tensor *Bs = rnd(d, 3, SH(bb ? 1 : batch, tb ? n : k, tb ? k : n), 111, -1, 1);
            vr_tensor *B = bb ? bcast(Bs, 3, SH(batch, tb ? n : k, tb ? k : n)) : (vr_tensor_retain(Bs), Bs);
            vr_tensor *ref = matmul_ref(A, B, ta, tb, m, n, k, batch);
            /* logical views [batch, m, k] and [batch, k, n] with the transposed storage */
            vr_tensor *Av = NULL, *Bv = NULL, *Ad = NULL, *Bd = NULL, *C = NULL, *Ch = NULL;
            if (ta) OK(vr_transpose(A, 1, 2, &Av)); else { vr_tensor_retain(A); Av = A; }
            if (tb) OK(vr_transpose(B, 1, 2, &Bv)); else { vr_tensor_retain(B); Bv = B; }
            Ad = mirror(Av, DEV);
            Bd = mirror(Bv, DEV);
            OK(vr_tensor_empty(3, SH(batch, m, n), d, DEV, &C));
            vr_kernel_args a = {.in = {Ad, Bd}, .n_in = 2, .out = {C}, .n_out = 1,
                                .i = {ta, tb, ta ? (m > 1 ? m : 1) : (k > 1 ? k : 1), tb ? (k > 1 ? k : 1) : (n > 1 ? n : 1), n}};
            OK(vr_dispatch(VR_OP_MATMUL, DEV, 0, &a));
            OK(vr_tensor_to_device(C, VR_CPU, &Ch));
            snprintf(what, sizeof what, "matmul %s b%lld m%lld k%lld n%lld ta%d tb%d bcast%d", vr_dtype_name(d),
                     (long long)batch, (long long)m, (long long)k, (long long)n, ta, tb, bb);
            cmp(ref, Ch, rtol, atol, what);
            vr_tensor_free(A); vr_tensor_free(Bs); vr_tensor_free(B); vr_tensor_free(ref);
            vr_tensor_free(Av); vr_tensor_free(Bv); vr_tensor_free(Ad); vr_tensor_free(Bd);
            vr_tensor_free(C); vr_tensor_free(Ch);
          }
  }
}
END_TEST

/* ---------------------------------------------------------------- softmax, cross entropy */

START_TEST(test_softmax_ce) {
  NEED_DEV();
  char what[96];
  static const int64_t geo[][3] = {{37, 129, 1}, {5, 37, 129}, {3, 100003, 1}, {1000, 10, 1}};
  for (int dt = 0; dt < 2; dt++) {
    vr_dtype d = dt ? VR_F64 : VR_F32;
    double rtol = dt ? 1e-12 : 1e-5, atol = dt ? 1e-13 : 1e-6;
    for (int g = 0; g < 4; g++)
      for (int sub = 0; sub < 2; sub++) {
        const int64_t *q = geo[g];
        vr_kernel_args a = {.n_in = 1, .n_out = 1, .sub = sub, .i = {q[0], q[1], q[2]}};
        a.in[0] = rnd(d, 3, q, 120 + (uint64_t)g, -5, 5);
        a.out[0] = poisoned(d, 3, q);
        snprintf(what, sizeof what, "%s %s %lldx%lldx%lld", sub ? "log_softmax" : "softmax", vr_dtype_name(d),
                 (long long)q[0], (long long)q[1], (long long)q[2]);
        if (run_cmp(VR_OP_SOFTMAX, 0, &a, rtol, atol, what)) {
          vr_kernel_args b = {.n_in = 2, .n_out = 1, .sub = sub, .i = {q[0], q[1], q[2]}};
          b.in[0] = rnd(d, 3, q, 121, -1, 1);
          b.in[1] = a.out[0];
          vr_tensor_retain(b.in[1]);
          b.out[0] = poisoned(d, 3, q);
          snprintf(what, sizeof what, "%s backward %s g%d", sub ? "log_softmax" : "softmax", vr_dtype_name(d), g);
          run_cmp(VR_OP_SOFTMAX, 1, &b, rtol * 10, atol * 10, what);
          free_args(&b);
        }
        free_args(&a);
      }
    static const int64_t ce[][2] = {{37, 129}, {1000, 10}, {3, 100003}};
    for (int c = 0; c < 3; c++)
      for (int ls = 0; ls < 2; ls++) {
        int64_t N = ce[c][0], C = ce[c][1];
        vr_kernel_args a = {.n_in = 2, .n_out = 2, .i = {N, C}, .f = {ls ? 0.1 : 0}};
        a.in[0] = rnd(d, 2, ce[c], 130, -4, 4);
        a.in[1] = rnd(VR_I64, 1, &N, 131, 0, (double)C);
        a.out[0] = poisoned(d, 0, NULL);
        a.out[1] = poisoned(d, 1, &N);
        snprintf(what, sizeof what, "cross entropy %s %lldx%lld smoothing %d", vr_dtype_name(d), (long long)N, (long long)C, ls);
        if (run_cmp(VR_OP_CROSS_ENTROPY, 0, &a, rtol * 10, atol * 10, what)) {
          vr_kernel_args b = {.n_in = 4, .n_out = 1, .i = {N, C}, .f = {a.f[0]}};
          b.in[0] = rnd(d, 0, NULL, 132, 0.5, 2);
          b.in[1] = a.in[0];
          b.in[2] = a.in[1];
          b.in[3] = a.out[1];
          for (int k = 1; k < 4; k++) vr_tensor_retain(b.in[k]);
          b.out[0] = poisoned(d, 2, ce[c]);
          snprintf(what, sizeof what, "cross entropy backward %s c%d smoothing %d", vr_dtype_name(d), c, ls);
          run_cmp(VR_OP_CROSS_ENTROPY, 1, &b, rtol * 10, atol * 10, what);
          free_args(&b);
        }
        free_args(&a);
      }
  }
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

START_TEST(test_layernorm) {
  NEED_DEV();
  char what[96];
  /* grad_w, grad_b: one chunk of rows, 16 and 5 chunks of 64 rows (37 columns: two groups of 32) */
  static const int64_t geo[][2] = {{37, 129}, {1000, 10}, {300, 37}, {3, 100003}};
  for (int dt = 0; dt < 2; dt++) {
    vr_dtype d = dt ? VR_F64 : VR_F32;
    double rtol = dt ? 1e-10 : 1e-4, atol = dt ? 1e-11 : 1e-5;
    for (int g = 0; g < 4; g++)
      for (int affine = 0; affine < 2; affine++) {
        int64_t R = geo[g][0], D = geo[g][1];
        vr_kernel_args a = {.n_in = 3, .n_out = 3, .i = {R, D}, .f = {1e-5}};
        a.in[0] = rnd(d, 2, geo[g], 150, -2, 3);
        if (affine) {
          a.in[1] = rnd(d, 1, &D, 151, 0.5, 1.5);
          a.in[2] = rnd(d, 1, &D, 152, -1, 1);
        }
        a.out[0] = poisoned(d, 2, geo[g]);
        a.out[1] = poisoned(d, 1, &R);
        a.out[2] = poisoned(d, 1, &R);
        snprintf(what, sizeof what, "layer norm %s %lldx%lld affine %d", vr_dtype_name(d), (long long)R, (long long)D, affine);
        if (run_cmp(VR_OP_LAYERNORM, 0, &a, rtol, atol, what)) {
          vr_kernel_args b = {.n_in = 5, .n_out = 3, .i = {R, D}, .f = {1e-5}};
          b.in[0] = rnd(d, 2, geo[g], 153, -1, 1);
          b.in[1] = a.in[0];
          b.in[2] = a.in[1];
          b.in[3] = a.out[1];
          b.in[4] = a.out[2];
          for (int k = 1; k < 5; k++) vr_tensor_retain(b.in[k]);
          b.out[0] = poisoned(d, 2, geo[g]);
          if (affine) {
            b.out[1] = poisoned(d, 1, &D);
            b.out[2] = poisoned(d, 1, &D);
          }
          snprintf(what, sizeof what, "layer norm backward %s %lldx%lld affine %d", vr_dtype_name(d), (long long)R, (long long)D, affine);
          run_cmp(VR_OP_LAYERNORM, 1, &b, rtol * 10, atol * 10, what);
          free_args(&b);
        }
        free_args(&a);
      }
  }
}
END_TEST

/* ---------------------------------------------------------------- pooling and convolution */

START_TEST(test_pool) {
  NEED_DEV();
  char what[128];
  /* {N, C, H, W, kh, kw, sh, sw, ph, pw} */
  static const int64_t geo[][10] = {{2, 3, 37, 29, 3, 3, 2, 2, 1, 1}, {1, 5, 8, 8, 2, 2, 2, 2, 0, 0}, {3, 2, 13, 17, 3, 2, 1, 3, 1, 0}};
  for (int dt = 0; dt < 3; dt++) { /* f32, f64, and bf16 (autocast activations; one or two roundings) */
    vr_dtype d = dt == 2 ? VR_BF16 : dt ? VR_F64 : VR_F32;
    double rtol = dt == 2 ? 0x1p-7 : dt ? 1e-12 : 1e-5, atol = dt == 2 ? 1e-2 : dt ? 1e-13 : 1e-6;
    for (int g = 0; g < 3; g++) {
      const int64_t *q = geo[g];
      int64_t Ho = (q[2] + 2 * q[8] - q[4]) / q[6] + 1, Wo = (q[3] + 2 * q[9] - q[5]) / q[7] + 1;
      int64_t ys[4] = {q[0], q[1], Ho, Wo};
      vr_kernel_args a = {.n_in = 1, .n_out = 2, .i = {q[4], q[5], q[6], q[7], q[8], q[9]}};
      /* whole numbers: ties, the first index must win */
      vr_tensor *xi = rnd(VR_I64, 4, q, 160 + (uint64_t)g, -5, 5);
      OK(vr_tensor_to_dtype(xi, d, &a.in[0]));
      vr_tensor_free(xi);
      a.out[0] = poisoned(d, 4, ys);
      a.out[1] = poisoned(VR_I64, 4, ys);
      snprintf(what, sizeof what, "max pool %s g%d", vr_dtype_name(d), g);
      if (run_cmp(VR_OP_MAXPOOL2D, 0, &a, 0, 0, what)) {
        vr_kernel_args b = {.n_in = 2, .n_out = 1, .i = {q[4], q[5], q[6], q[7], q[8], q[9]}};
        b.in[0] = rnd(d, 4, ys, 161, -1, 1);
        b.in[1] = a.out[1];
        vr_tensor_retain(b.in[1]);
        b.out[0] = poisoned(d, 4, q);
        snprintf(what, sizeof what, "max pool backward %s g%d", vr_dtype_name(d), g);
        run_cmp(VR_OP_MAXPOOL2D, 1, &b, rtol, atol, what);
        free_args(&b);
      }
      free_args(&a);
      for (int cip = 0; cip < 2; cip++) {
        vr_kernel_args c = {.n_in = 1, .n_out = 1, .i = {q[4], q[5], q[6], q[7], q[8], q[9], cip}};
        c.in[0] = rnd(d, 4, q, 162, -1, 1);
        c.out[0] = poisoned(d, 4, ys);
        snprintf(what, sizeof what, "avg pool %s g%d include_pad %d", vr_dtype_name(d), g, cip);
        if (run_cmp(VR_OP_AVGPOOL2D, 0, &c, rtol, atol, what)) {
          vr_kernel_args b = {.n_in = 1, .n_out = 1, .i = {q[4], q[5], q[6], q[7], q[8], q[9], cip}};
          b.in[0] = rnd(d, 4, ys, 163, -1, 1);
          b.out[0] = poisoned(d, 4, q);
          snprintf(what, sizeof what, "avg pool backward %s g%d include_pad %d", vr_dtype_name(d), g, cip);
          run_cmp(VR_OP_AVGPOOL2D, 1, &b, rtol, atol, what);
          free_args(&b);
        }
        free_args(&c);
      }
      static const int64_t outs[][2] = {{1, 1}, {3, 5}, {7, 7}};
      for (int o = 0; o < 3; o++) {
        int64_t as[4] = {q[0], q[1], outs[o][0], outs[o][1]};
        vr_kernel_args c = {.n_in = 1, .n_out = 1, .i = {outs[o][0], outs[o][1]}};
        c.in[0] = rnd(d, 4, q, 164, -1, 1);
        c.out[0] = poisoned(d, 4, as);
        snprintf(what, sizeof what, "adaptive avg pool %s g%d -> %lldx%lld", vr_dtype_name(d), g, (long long)as[2], (long long)as[3]);
        if (run_cmp(VR_OP_ADAPTIVE_AVGPOOL2D, 0, &c, rtol, atol, what)) {
          vr_kernel_args b = {.n_in = 1, .n_out = 1, .i = {outs[o][0], outs[o][1]}};
          b.in[0] = rnd(d, 4, as, 165, -1, 1);
          b.out[0] = poisoned(d, 4, q);
          snprintf(what, sizeof what, "adaptive avg pool backward %s g%d o%d", vr_dtype_name(d), g, o);
          run_cmp(VR_OP_ADAPTIVE_AVGPOOL2D, 1, &b, rtol, atol, what);
          free_args(&b);
        }
        free_args(&c);
      }
    }
  }
}
END_TEST

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

/* channels-last (i[7] = 1): x [N, H, W, C], w [Cout, kh, kw, C/g], y [N, Ho, Wo, Cout], f32 */
START_TEST(test_conv2d_nhwc) {
  NEED_DEV();
  char what[160];
  /* {N, C, H, W, Cout, kh, kw, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups} */
  static const int64_t geo[][14] = {{2, 3, 17, 13, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1},
                                    {3, 4, 16, 16, 6, 3, 3, 2, 2, 1, 1, 1, 1, 2},
                                    {1, 6, 11, 9, 6, 3, 2, 1, 2, 0, 1, 2, 1, 3},
                                    {4, 16, 8, 8, 32, 1, 1, 2, 2, 0, 0, 1, 1, 1},
                                    {4, 1, 28, 28, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1}};
  vr_dtype d = VR_F32;
  for (int g = 0; g < 5; g++)
    for (int bias = 0; bias < 2; bias++) {
      const int64_t *q = geo[g];
      int64_t N = q[0], C = q[1], H = q[2], W = q[3], Co = q[4], kh = q[5], kw = q[6], G = q[13];
      int64_t Ho = (H + 2 * q[9] - q[11] * (kh - 1) - 1) / q[7] + 1, Wo = (W + 2 * q[10] - q[12] * (kw - 1) - 1) / q[8] + 1;
      int64_t xs[4] = {N, H, W, C}, ws[4] = {Co, kh, kw, C / G}, ys[4] = {N, Ho, Wo, Co};
      vr_kernel_args a = {.n_in = 3, .n_out = 1, .i = {q[7], q[8], q[9], q[10], q[11], q[12], G, 1}};
      a.in[0] = rnd(d, 4, xs, 175 + (uint64_t)g, -1, 1);
      a.in[1] = rnd(d, 4, ws, 176, -1, 1);
      if (bias) a.in[2] = rnd(d, 1, &Co, 177, -1, 1);
      a.out[0] = poisoned(d, 4, ys);
      snprintf(what, sizeof what, "conv2d nhwc %s g%d bias %d", vr_dtype_name(d), g, bias);
      if (run_cmp(VR_OP_CONV2D, 0, &a, 1e-4, 1e-4, what)) {
        vr_kernel_args b = {.n_in = 3, .n_out = 3, .i = {q[7], q[8], q[9], q[10], q[11], q[12], G, 1}};
        b.in[0] = rnd(d, 4, ys, 178, -1, 1);
        b.in[1] = a.in[0];
        b.in[2] = a.in[1];
        vr_tensor_retain(b.in[1]);
        vr_tensor_retain(b.in[2]);
        b.out[0] = poisoned(d, 4, xs);
        b.out[1] = poisoned(d, 4, ws);
        if (bias) b.out[2] = poisoned(d, 1, &Co);
        snprintf(what, sizeof what, "conv2d nhwc backward %s g%d bias %d", vr_dtype_name(d), g, bias);
        run_cmp(VR_OP_CONV2D, 1, &b, 1e-4, 1e-4, what);
        free_args(&b);
      }
      free_args(&a);
    }
}
END_TEST

/* ---------------------------------------------------------------- sorting and indexing */

START_TEST(test_sort) {
  NEED_DEV();
  char what[128];
  static const vr_dtype dts[] = {VR_F32, VR_F64, VR_BF16, VR_I32, VR_I64, VR_U8};
  for (int t = 0; t < 6; t++)
    for (int dim = 0; dim < 3; dim++)
      for (int desc = 0; desc < 2; desc++) {
        int64_t shp[3] = {7, 37, 129};
        /* whole numbers: many ties, stability shows in the indices */
        vr_tensor *xi = rnd(VR_I64, 3, shp, 180 + (uint64_t)dim, vr_dtype_size(dts[t]) == 1 ? 0 : -30, 30), *x = NULL;
        OK(vr_tensor_to_dtype(xi, dts[t], &x));
        vr_tensor_free(xi);
        if (t == 0 && dim == 2) { /* NaN and signed zeros */
          OK(vr_tensor_set(x, SH(0, 0, 3), NAN));
          OK(vr_tensor_set(x, SH(0, 0, 4), -0.0));
          OK(vr_tensor_set(x, SH(0, 0, 5), 0.0));
        }
        int64_t k = dim == 1 ? 5 : shp[dim];
        int64_t os[3] = {shp[0], shp[1], shp[2]};
        os[dim] = k;
        vr_kernel_args a = {.n_in = 1, .n_out = 2, .i = {dim, desc, k}};
        a.in[0] = x;
        a.out[0] = poisoned(dts[t], 3, os);
        a.out[1] = poisoned(VR_I64, 3, os);
        snprintf(what, sizeof what, "sort %s dim %d desc %d k %lld", vr_dtype_name(dts[t]), dim, desc, (long long)k);
        run_cmp(VR_OP_SORT, 0, &a, 0, 0, what);
        free_args(&a);
      }
  /* one long line */
  vr_kernel_args a = {.n_in = 1, .n_out = 2, .i = {0, 0, BIG}};
  a.in[0] = rnd(VR_F32, 1, &BIG, 181, -1, 1);
  a.out[0] = poisoned(VR_F32, 1, &BIG);
  a.out[1] = poisoned(VR_I64, 1, &BIG);
  run_cmp(VR_OP_SORT, 0, &a, 0, 0, "sort f32 1000003");
  free_args(&a);
}
END_TEST

START_TEST(test_index_ops) {
  NEED_DEV();
  char what[128];
  for (int dt = 0; dt < 2; dt++) {
    vr_dtype d = dt ? VR_F64 : VR_F32;
    for (int dim = 0; dim < 3; dim++)
      for (int i64 = 0; i64 < 2; i64++) {
        int64_t shp[3] = {5, 37, 29}, K = 41;
        vr_tensor *x = rnd(d, 3, shp, 190, -1, 1);
        vr_tensor *ix = rnd(i64 ? VR_I64 : VR_I32, 1, &K, 191, 0, (double)shp[dim]); /* repeats */
        int64_t os[3] = {shp[0], shp[1], shp[2]};
        os[dim] = K;
        vr_kernel_args a = {.n_in = 2, .n_out = 1, .i = {dim}};
        a.in[0] = x;
        a.in[1] = ix;
        a.out[0] = poisoned(d, 3, os);
        snprintf(what, sizeof what, "index_select %s dim %d %s", vr_dtype_name(d), dim, i64 ? "i64" : "i32");
        if (run_cmp(VR_OP_INDEX_SELECT, 0, &a, 0, 0, what)) {
          vr_kernel_args b = {.n_in = 2, .n_out = 1, .i = {dim}};
          b.in[0] = rnd(d, 3, os, 192, -1, 1);
          b.in[1] = ix;
          vr_tensor_retain(ix);
          b.out[0] = poisoned(d, 3, shp);
          snprintf(what, sizeof what, "index_select backward %s dim %d", vr_dtype_name(d), dim);
          run_cmp(VR_OP_INDEX_SELECT, 1, &b, 0, 0, what);
          free_args(&b);
        }
        free_args(&a);
        /* gather / scatter_add with an index smaller than x and src */
        int64_t is[3] = {4, 30, 20};
        vr_tensor *gi = rnd(i64 ? VR_I64 : VR_I32, 3, is, 193, 0, (double)shp[dim]);
        vr_kernel_args g = {.n_in = 2, .n_out = 1, .i = {dim}};
        g.in[0] = rnd(d, 3, shp, 194, -1, 1);
        g.in[1] = gi;
        g.out[0] = poisoned(d, 3, is);
        snprintf(what, sizeof what, "gather %s dim %d", vr_dtype_name(d), dim);
        run_cmp(VR_OP_GATHER, 0, &g, 0, 0, what);
        vr_kernel_args sa = {.n_in = 3, .n_out = 1, .i = {dim}};
        sa.in[0] = rnd(d, 3, shp, 195, -1, 1);
        sa.in[1] = gi;
        vr_tensor_retain(gi);
        sa.in[2] = rnd(d, 3, SH(5, 31, 22), 196, -1, 1);
        sa.out[0] = poisoned(d, 3, shp);
        snprintf(what, sizeof what, "scatter_add %s dim %d", vr_dtype_name(d), dim);
        run_cmp(VR_OP_SCATTER_ADD, 0, &sa, 0, 0, what);
        free_args(&sa);
        free_args(&g);
      }
  }
  vr_kernel_args o = {.n_in = 1, .n_out = 1, .i = {10}};
  o.in[0] = rnd(VR_I64, 2, SH(37, 13), 197, 0, 10);
  o.out[0] = poisoned(VR_F32, 3, SH(37, 13, 10));
  run_cmp(VR_OP_ONE_HOT, 0, &o, 0, 0, "one_hot");
  free_args(&o);
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
  tcase_add_test(tc, test_copy_dtypes);
  tcase_add_test(tc, test_fill_arange);
  tcase_add_test(tc, test_philox_identical);
  tcase_add_test(tc, test_unary);
  tcase_add_test(tc, test_binary);
  tcase_add_test(tc, test_where);
  tcase_add_test(tc, test_sum_var_norm);
  tcase_add_test(tc, test_sum_deterministic);
  tcase_add_test(tc, test_maxmin);
  tcase_add_test(tc, test_matmul);
  tcase_add_test(tc, test_softmax_ce);
  tcase_add_test(tc, test_batchnorm);
  tcase_add_test(tc, test_batchnorm_rows);
  tcase_add_test(tc, test_batchnorm_act);
  tcase_add_test(tc, test_layernorm);
  tcase_add_test(tc, test_pool);
  tcase_add_test(tc, test_conv2d);
  tcase_add_test(tc, test_conv2d_nhwc);
  tcase_add_test(tc, test_sort);
  tcase_add_test(tc, test_index_ops);
  tcase_add_test(tc, test_allocator_stats);
  tcase_add_test(tc, test_errors_no_crash);
  suite_add_tcase(s, tc);
  return s;
}

VR_TEST_MAIN(cuda_suite)
