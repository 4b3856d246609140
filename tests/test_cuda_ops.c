/* test_cuda_ops.c: the second group of CUDA kernels (index_select, gather, scatter_add, one_hot,
 * sort, where, pooling, conv2d, the regularizers) against the CPU kernel of the same op, called with
 * the same vr_kernel_args, plus a few paths through the public API on CUDA tensors.
 *
 * Without a GPU each case prints "SKIP <case>: no CUDA device" and passes. VISREG_TEST_CUDA_AS_CPU=1
 * runs the harness with the CPU standing in for the GPU (CPU against CPU), which checks the
 * argument layouts here on a machine without a GPU.
 *
 * Index, sort, where, one_hot and pooling are exact (the CUDA kernels add in the CPU's order and
 * move elements as bits); conv2d compares at 1e-4 (f32) and 1e-10 (f64) relative, since cuDNN and
 * OpenBLAS sum in different orders. */
#include "cuda_parity.h"


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

/* values rounded to a grid of step q: many ties */
static vr_tensor *rnd_ties(vr_dtype dt, int ndim, const int64_t *shape, uint64_t seed, double q) {
  vr_tensor *t = rnd(VR_F64, ndim, shape, seed, -1, 1), *u = NULL;
  double *v = vr_tensor_data(t);
  for (int64_t k = 0; k < vr_tensor_numel(t); k++) v[k] = round(v[k] / q) * q;
  OK(vr_tensor_to_dtype(t, dt, &u));
  vr_tensor_free(t);
  return u;
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

/* ---------------------------------------------------------------- index_select */

START_TEST(test_index_select) {
  NEED_DEV();
  char what[160];
  static const vr_dtype dts[] = {VR_F32, VR_F64, VR_BF16, VR_I64, VR_U8};
  const int64_t xs[3] = {5, 37, 9};
  for (int t = 0; t < 5; t++)
    for (int dim = 0; dim < 3; dim++)
      for (int i32 = 0; i32 < 2; i32++) {
        int64_t K = dim == 1 ? 50 : 7, os[3] = {xs[0], xs[1], xs[2]};
        os[dim] = K;
        vr_kernel_args a = {.n_in = 2, .n_out = 1, .i = {dim}};
        a.in[0] = rnd(dts[t], 3, xs, 10 + (uint64_t)t, -100, 100);
        a.in[1] = rnd(i32 ? VR_I32 : VR_I64, 1, &K, 11 + (uint64_t)dim, 0, (double)xs[dim]);
        a.out[0] = poisoned(dts[t], 3, os);
        snprintf(what, sizeof what, "index_select %s dim %d %s", vr_dtype_name(dts[t]), dim, i32 ? "i32" : "i64");
        run_cmp(VR_OP_INDEX_SELECT, 0, &a, 0, 0, what);
        free_args(&a);
      }
}
END_TEST

START_TEST(test_index_select_backward) {
  NEED_DEV();
  char what[160];
  static const vr_dtype dts[] = {VR_F32, VR_F64, VR_BF16};
  /* K = 20: threads scan the index; K = 3000: the sorted-runs path. Few destinations: many repeats */
  static const int64_t Ks[] = {20, 3000};
  for (int t = 0; t < 3; t++)
    for (int kk = 0; kk < 2; kk++)
      for (int dim = 0; dim < 2; dim++) {
        int64_t xs[2] = {dim == 0 ? 40 : 6, dim == 0 ? 33 : 40}, K = Ks[kk], gs[2] = {xs[0], xs[1]};
        gs[dim] = K;
        vr_kernel_args a = {.n_in = 2, .n_out = 1, .i = {dim}};
        a.in[0] = rnd(dts[t], 2, gs, 20 + (uint64_t)t, -1, 1);
        a.in[1] = rnd(kk ? VR_I64 : VR_I32, 1, &K, 21 + (uint64_t)kk, 0, 37); /* rows 37..39 get nothing */
        a.out[0] = poisoned(dts[t], 2, xs);
        snprintf(what, sizeof what, "index_select backward %s K %lld dim %d", vr_dtype_name(dts[t]), (long long)K, dim);
        run_cmp(VR_OP_INDEX_SELECT, 1, &a, 0, 0, what);
        free_args(&a);
      }
}
END_TEST

/* ---------------------------------------------------------------- gather, scatter_add, one_hot */

START_TEST(test_gather) {
  NEED_DEV();
  char what[160];
  static const vr_dtype dts[] = {VR_F32, VR_F64, VR_BF16, VR_I32, VR_U8};
  const int64_t xs[3] = {6, 7, 8};
  for (int t = 0; t < 5; t++)
    for (int dim = 0; dim < 3; dim++) {
      int64_t is[3] = {5, 6, 4};
      is[dim] = 11; /* longer than x along dim: repeats */
      vr_kernel_args a = {.n_in = 2, .n_out = 1, .i = {dim}};
      a.in[0] = rnd(dts[t], 3, xs, 30 + (uint64_t)t, -50, 50);
      a.in[1] = rnd(t % 2 ? VR_I32 : VR_I64, 3, is, 31 + (uint64_t)dim, 0, (double)xs[dim]);
      a.out[0] = poisoned(dts[t], 3, is);
      snprintf(what, sizeof what, "gather %s dim %d", vr_dtype_name(dts[t]), dim);
      run_cmp(VR_OP_GATHER, 0, &a, 0, 0, what);
      free_args(&a);
    }
}
END_TEST

START_TEST(test_scatter_add) {
  NEED_DEV();
  char what[160];
  static const vr_dtype dts[] = {VR_F32, VR_F64, VR_BF16};
  for (int t = 0; t < 3; t++) {
    /* many short lines (one thread a line), src larger than the index */
    for (int dim = 0; dim < 3; dim++) {
      int64_t xs[3] = {6, 7, 8}, is[3] = {5, 6, 4}, ss[3] = {6, 7, 9};
      is[dim] = 9;
      ss[dim] = 10;
      vr_kernel_args a = {.n_in = 3, .n_out = 1, .i = {dim}};
      a.in[0] = rnd(dts[t], 3, xs, 40, -1, 1);
      a.in[1] = rnd(VR_I64, 3, is, 41 + (uint64_t)dim, 0, (double)xs[dim]);
      a.in[2] = rnd(dts[t], 3, ss, 42, -1, 1);
      a.out[0] = poisoned(dts[t], 3, xs);
      snprintf(what, sizeof what, "scatter_add %s dim %d (lines)", vr_dtype_name(dts[t]), dim);
      run_cmp(VR_OP_SCATTER_ADD, 0, &a, 0, 0, what);
      free_args(&a);
    }
    /* few long lines: the sorted-runs path, along the last and the first dim */
    for (int dim = 0; dim < 2; dim++) {
      int64_t xs[2] = {3, 3}, is[2] = {3, 3};
      xs[dim] = 50;
      is[dim] = 2000;
      vr_kernel_args a = {.n_in = 3, .n_out = 1, .i = {dim}};
      a.in[0] = rnd(dts[t], 2, xs, 43, -1, 1);
      a.in[1] = rnd(VR_I32, 2, is, 44, 0, 45); /* 45..49 untouched */
      a.in[2] = rnd(dts[t], 2, is, 45, -1, 1);
      a.out[0] = poisoned(dts[t], 2, xs);
      snprintf(what, sizeof what, "scatter_add %s dim %d (runs)", vr_dtype_name(dts[t]), dim);
      run_cmp(VR_OP_SCATTER_ADD, 0, &a, 0, 0, what);
      free_args(&a);
    }
  }
}
END_TEST

START_TEST(test_one_hot) {
  NEED_DEV();
  static const vr_dtype dts[] = {VR_F32, VR_F64, VR_BF16, VR_I32, VR_I64, VR_U8};
  for (int t = 0; t < 6; t++) {
    vr_kernel_args a = {.n_in = 1, .n_out = 1, .i = {10}};
    a.in[0] = rnd(t % 2 ? VR_I32 : VR_I64, 2, SH(7, 5), 50, 0, 10);
    a.out[0] = poisoned(dts[t], 3, SH(7, 5, 10));
    run_cmp(VR_OP_ONE_HOT, 0, &a, 0, 0, vr_dtype_name(dts[t]));
    free_args(&a);
  }
}
END_TEST

/* ---------------------------------------------------------------- sort */

/* sorts x along dim on both devices, for sort (k = n) and topk (k < n), both directions */
static void sort_case(vr_tensor *x, int dim, const char *name) {
  char what[200];
  int64_t n = x->shape[dim];
  int64_t ks[2] = {n, n > 3 ? n / 3 : n};
  for (int desc = 0; desc < 2; desc++)
    for (int q = 0; q < 2; q++) {
      int64_t shape[8];
      memcpy(shape, x->shape, sizeof(int64_t) * (size_t)x->ndim);
      shape[dim] = ks[q];
      vr_kernel_args a = {.n_in = 1, .n_out = 2, .i = {dim, desc, ks[q]}};
      a.in[0] = x;
      vr_tensor_retain(x);
      a.out[0] = poisoned(x->dtype, x->ndim, shape);
      a.out[1] = poisoned(VR_I64, x->ndim, shape);
      snprintf(what, sizeof what, "sort %s dim %d desc %d k %lld", name, dim, desc, (long long)ks[q]);
      run_cmp(VR_OP_SORT, 0, &a, 0, 0, what);
      free_args(&a);
    }
}

/* x with NaN, -0, +0, infinities sprinkled (float dtypes) */
static vr_tensor *with_specials(vr_tensor *x) {
  if (!vr_is_float(x->dtype)) return x;
  vr_tensor *d = NULL, *o = NULL;
  OK(vr_tensor_to_dtype(x, VR_F64, &d));
  double *v = vr_tensor_data(d);
  int64_t n = vr_tensor_numel(d);
  for (int64_t k = 0; k < n; k += 7) v[k] = (k / 7) % 5 == 0 ? NAN : (k / 7) % 5 == 1 ? -0.0 : (k / 7) % 5 == 2 ? 0.0 :
                                           (k / 7) % 5 == 3 ? INFINITY : -INFINITY;
  OK(vr_tensor_to_dtype(d, x->dtype, &o));
  vr_tensor_free(d);
  vr_tensor_free(x);
  return o;
}

START_TEST(test_sort_short) {
  NEED_DEV();
  static const vr_dtype dts[] = {VR_F32, VR_F64, VR_BF16, VR_I32, VR_I64, VR_U8};
  char name[64];
  for (int t = 0; t < 6; t++) {
    vr_dtype d = dts[t];
    /* ties everywhere (grid of 0.05 or small integers), specials; lines of 1, 100 and 4096 */
    vr_tensor *x = vr_is_float(d) ? with_specials(rnd_ties(d, 2, SH(33, 100), 60 + (uint64_t)t, 0.05))
                                  : rnd(d, 2, SH(33, 100), 60 + (uint64_t)t, d == VR_U8 ? 0 : -20, 20);
    snprintf(name, sizeof name, "%s [33, 100]", vr_dtype_name(d));
    sort_case(x, 1, name);
    sort_case(x, 0, name); /* strided lines */
    vr_tensor_free(x);
    x = vr_is_float(d) ? with_specials(rnd_ties(d, 2, SH(3, 4096), 70, 0.01)) : rnd(d, 2, SH(3, 4096), 70, 0, 100);
    snprintf(name, sizeof name, "%s [3, 4096]", vr_dtype_name(d));
    sort_case(x, 1, name);
    vr_tensor_free(x);
    x = rnd(d, 3, SH(4, 1, 5), 71, 0, 50);
    snprintf(name, sizeof name, "%s n = 1", vr_dtype_name(d));
    sort_case(x, 1, name);
    vr_tensor_free(x);
  }
}
END_TEST

START_TEST(test_sort_long) {
  NEED_DEV();
  static const vr_dtype dts[] = {VR_F32, VR_F64, VR_BF16, VR_I32, VR_I64, VR_U8};
  char name[64];
  for (int t = 0; t < 6; t++) {
    vr_dtype d = dts[t];
    vr_tensor *x = vr_is_float(d) ? with_specials(rnd_ties(d, 2, SH(3, 5001), 80 + (uint64_t)t, 0.001))
                                  : rnd(d, 2, SH(3, 5001), 80 + (uint64_t)t, 0, 200);
    snprintf(name, sizeof name, "%s [3, 5001]", vr_dtype_name(d));
    sort_case(x, 1, name);
    vr_tensor_free(x);
    x = rnd(d, 2, SH(9000, 2), 90, 0, 100); /* strided long lines */
    snprintf(name, sizeof name, "%s [9000, 2]", vr_dtype_name(d));
    sort_case(x, 0, name);
    vr_tensor_free(x);
  }
}
END_TEST

/* the public sort and its backward (scatter_add) on CUDA tensors */
START_TEST(test_sort_api) {
  NEED_DEV();
  vr_tensor *x = rnd_ties(VR_F64, 2, SH(4, 6000), 95, 0.01), *xd = to_dev(x);
  OK(vr_tensor_set_requires_grad(x, 1));
  OK(vr_tensor_set_requires_grad(xd, 1));
  vr_tensor *v = NULL, *i = NULL, *vd = NULL, *id = NULL, *w = rnd(VR_F64, 2, SH(4, 6000), 96, -1, 1), *wd = to_dev(w);
  OK(vr_sort(x, 1, 1, &v, &i));
  OK(vr_sort(xd, 1, 1, &vd, &id));
  cmp_dev(v, vd, 0, 0, "vr_sort values");
  cmp_dev(i, id, 0, 0, "vr_sort indices");
  OK(vr_backward(v, w, 0));
  OK(vr_backward(vd, wd, 0));
  vr_tensor *g = vr_tensor_grad(x), *gd = vr_tensor_grad(xd);
  cmp_dev(g, gd, 0, 0, "vr_sort backward");
  vr_tensor *tk = NULL, *tkd = NULL;
  OK(vr_topk(x, 17, 1, 1, &tk, NULL));
  OK(vr_topk(xd, 17, 1, 1, &tkd, NULL));
  cmp_dev(tk, tkd, 0, 0, "vr_topk");
  vr_tensor *objs[] = {x, xd, v, i, vd, id, w, wd, g, gd, tk, tkd};
  for (size_t k = 0; k < sizeof objs / sizeof *objs; k++) vr_tensor_free(objs[k]);
}
END_TEST

/* ---------------------------------------------------------------- where */

START_TEST(test_where_views) {
  NEED_DEV();
  static const vr_dtype dts[] = {VR_F32, VR_F64, VR_BF16, VR_I64, VR_U8};
  for (int t = 0; t < 5; t++) {
    /* cond [4, 1, 6] broadcast, a a transposed view, b a row broadcast */
    vr_tensor *c = rnd(VR_U8, 3, SH(4, 1, 6), 100, 0, 2), *ab = rnd(dts[t], 3, SH(4, 6, 5), 101, 0, 100),
              *b = rnd(dts[t], 1, SH(6), 102, 0, 100);
    vr_kernel_args a = {.n_in = 3, .n_out = 1};
    OK(vr_tensor_view_raw(c, 3, SH(4, 5, 6), SH(6, 0, 1), 0, &a.in[0]));
    OK(vr_transpose(ab, 1, 2, &a.in[1]));
    OK(vr_tensor_view_raw(b, 3, SH(4, 5, 6), SH(0, 0, 1), 0, &a.in[2]));
    a.out[0] = poisoned(dts[t], 3, SH(4, 5, 6));
    run_cmp(VR_OP_WHERE, 0, &a, 0, 0, vr_dtype_name(dts[t]));
    free_args(&a);
    vr_tensor_free(c);
    vr_tensor_free(ab);
    vr_tensor_free(b);
  }
}
END_TEST

/* ---------------------------------------------------------------- pooling */

START_TEST(test_pool_specials) {
  NEED_DEV();
  char what[160];
  /* NaN and -inf in the windows, ties; {N, C, H, W, kh, kw, sh, sw, ph, pw} with overlapping windows */
  static const int64_t geo[][10] = {{2, 3, 11, 10, 3, 3, 1, 1, 1, 1}, {1, 2, 9, 13, 4, 2, 3, 1, 2, 1}};
  for (int dt = 0; dt < 2; dt++) {
    vr_dtype d = dt ? VR_F64 : VR_F32;
    for (int g = 0; g < 2; g++) {
      const int64_t *q = geo[g];
      int64_t Ho = (q[2] + 2 * q[8] - q[4]) / q[6] + 1, Wo = (q[3] + 2 * q[9] - q[5]) / q[7] + 1;
      int64_t ys[4] = {q[0], q[1], Ho, Wo};
      vr_kernel_args a = {.n_in = 1, .n_out = 2, .i = {q[4], q[5], q[6], q[7], q[8], q[9]}};
      a.in[0] = with_specials(rnd_ties(d, 4, q, 110 + (uint64_t)g, 0.25));
      a.out[0] = poisoned(d, 4, ys);
      a.out[1] = poisoned(VR_I64, 4, ys);
      snprintf(what, sizeof what, "max pool specials %s g%d", vr_dtype_name(d), g);
      if (run_cmp(VR_OP_MAXPOOL2D, 0, &a, 0, 0, what)) {
        vr_kernel_args b = {.n_in = 2, .n_out = 1, .i = {q[4], q[5], q[6], q[7], q[8], q[9]}};
        b.in[0] = rnd(d, 4, ys, 111, -1, 1);
        b.in[1] = a.out[1];
        vr_tensor_retain(b.in[1]);
        b.out[0] = poisoned(d, 4, q);
        snprintf(what, sizeof what, "max pool backward (overlapping) %s g%d", vr_dtype_name(d), g);
        run_cmp(VR_OP_MAXPOOL2D, 1, &b, 0, 0, what);
        free_args(&b);
      }
      free_args(&a);
      for (int cip = 0; cip < 2; cip++) {
        vr_kernel_args b = {.n_in = 1, .n_out = 1, .i = {q[4], q[5], q[6], q[7], q[8], q[9], cip}};
        b.in[0] = rnd(d, 4, ys, 112, -1, 1);
        b.out[0] = poisoned(d, 4, q);
        snprintf(what, sizeof what, "avg pool backward (overlapping) %s g%d include_pad %d", vr_dtype_name(d), g, cip);
        run_cmp(VR_OP_AVGPOOL2D, 1, &b, 0, 0, what);
        free_args(&b);
      }
    }
    /* adaptive, bins that overlap (7 -> 4, 10 -> 3) and that are empty-free upsampling (3 -> 5) */
    static const int64_t ad[][4] = {{7, 10, 4, 3}, {3, 3, 5, 5}};
    for (int k = 0; k < 2; k++) {
      int64_t xs[4] = {2, 3, ad[k][0], ad[k][1]}, ys[4] = {2, 3, ad[k][2], ad[k][3]};
      vr_kernel_args f = {.n_in = 1, .n_out = 1, .i = {ys[2], ys[3]}};
      f.in[0] = rnd(d, 4, xs, 113, -1, 1);
      f.out[0] = poisoned(d, 4, ys);
      snprintf(what, sizeof what, "adaptive avg pool %s case %d", vr_dtype_name(d), k);
      run_cmp(VR_OP_ADAPTIVE_AVGPOOL2D, 0, &f, 0, 0, what);
      free_args(&f);
      vr_kernel_args b = {.n_in = 1, .n_out = 1, .i = {ys[2], ys[3]}};
      b.in[0] = rnd(d, 4, ys, 114, -1, 1);
      b.out[0] = poisoned(d, 4, xs);
      snprintf(what, sizeof what, "adaptive avg pool backward %s case %d", vr_dtype_name(d), k);
      run_cmp(VR_OP_ADAPTIVE_AVGPOOL2D, 1, &b, 0, 0, what);
      free_args(&b);
    }
  }
}
END_TEST

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

START_TEST(test_reg_gram) {
  NEED_DEV();
  for (int dt = 0; dt < 2; dt++) {
    vr_dtype d = dt ? VR_F64 : VR_F32;
    reg_case(VR_OP_VICREG, d, 2, 33, 20, 0, 0, 3, (const double[8]){25, 25, 1}, (const int64_t[16]){0}, "vicreg");
    reg_case(VR_OP_VICREG_POOLED, d, 3, 17, 12, 0, 0, 2, (const double[8]){25, 1}, (const int64_t[16]){0}, "vicreg_pooled");
    reg_case(VR_OP_BARLOW, d, 3, 40, 10, 0, 0, 0, (const double[8]){0.005}, (const int64_t[16]){0}, "barlow");
    reg_case(VR_OP_INVARIANCE, d, 4, 30, 7, 0, 0, 0, (const double[8]){0}, (const int64_t[16]){2}, "invariance");
    /* the column passes over several chunks of 64 rows and an odd number of columns (two groups of 32) */
    reg_case(VR_OP_VICREG, d, 2, 300, 37, 0, 0, 3, (const double[8]){25, 25, 1}, (const int64_t[16]){0}, "vicreg chunks");
    reg_case(VR_OP_VICREG_POOLED, d, 3, 100, 37, 0, 0, 2, (const double[8]){25, 1}, (const int64_t[16]){0},
             "vicreg_pooled chunks");
    reg_case(VR_OP_BARLOW, d, 3, 300, 37, 0, 0, 0, (const double[8]){0.005}, (const int64_t[16]){0}, "barlow chunks");
    reg_case(VR_OP_INVARIANCE, d, 3, 300, 37, 0, 0, 0, (const double[8]){0}, (const int64_t[16]){1}, "invariance chunks");
  }
}
END_TEST

/* the public VISReg on a CUDA tensor with drawn slices: loss, terms and the gradient of z */
START_TEST(test_visreg_api) {
  NEED_DEV();
  vr_tensor *z = rnd(VR_F64, 3, SH(2, 128, 32), 150, -1, 1), *zd = to_dev(z);
  OK(vr_tensor_set_requires_grad(z, 1));
  OK(vr_tensor_set_requires_grad(zd, 1));
  vr_tensor *l = NULL, *ld = NULL, *t = NULL, *td = NULL;
  OK(vr_visreg(z, NULL, 256, 11, 3, 1, 1, 1, &l, &t));
  OK(vr_visreg(zd, NULL, 256, 11, 3, 1, 1, 1, &ld, &td));
  cmp_dev(l, ld, 1e-9, 1e-12, "vr_visreg loss");
  cmp_dev(t, td, 1e-9, 1e-12, "vr_visreg terms");
  OK(vr_backward(l, NULL, 0));
  OK(vr_backward(ld, NULL, 0));
  vr_tensor *g = vr_tensor_grad(z), *gd = vr_tensor_grad(zd);
  cmp_dev(g, gd, 1e-8, 1e-12, "vr_visreg grad");
  vr_tensor *objs[] = {z, zd, l, ld, t, td, g, gd};
  for (size_t k = 0; k < sizeof objs / sizeof *objs; k++) vr_tensor_free(objs[k]);
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
  tcase_add_test(tc, test_index_select);
  tcase_add_test(tc, test_index_select_backward);
  tcase_add_test(tc, test_gather);
  tcase_add_test(tc, test_scatter_add);
  tcase_add_test(tc, test_one_hot);
  tcase_add_test(tc, test_sort_short);
  tcase_add_test(tc, test_sort_long);
  tcase_add_test(tc, test_sort_api);
  tcase_add_test(tc, test_where_views);
  tcase_add_test(tc, test_pool_specials);
  tcase_add_test(tc, test_conv2d_paths);
  tcase_add_test(tc, test_conv2d_api);
  tcase_add_test(tc, test_batch_norm_act);
  tcase_add_test(tc, test_reg_sliced);
  tcase_add_test(tc, test_reg_gram);
  tcase_add_test(tc, test_visreg_api);
  tcase_add_test(tc, test_colsum_one_launch_repeats);
  suite_add_tcase(s, tc);
  return s;
}

VR_TEST_MAIN(cuda_ops_suite)
