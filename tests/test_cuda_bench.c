/* test_cuda_bench.c: a short timing table of the CUDA kernels (skipped without a GPU), so that
 * tools/gpu-check reports achieved bandwidth and matrix rate beside the card's ceilings (an H100
 * copies about 3 TB/s counting bytes read plus written). Each figure is the median of 7 timed
 * batches of launches after a warm-up, timed on the host around vr_cuda_synchronize. The only
 * checks are that every launch succeeds; correctness is test_cuda's. About 5 s on an H100. */
#include "testutil.h"
#include <time.h>

/* DEV: VISREG_TEST_CUDA_AS_CPU=1 has the CPU stand in (small sizes), to check the arguments without a GPU */
static void dev_sync(void) { OK(vr_device_get(DEV)->synchronize()); }

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}
static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* median seconds per launch of (op, bwd, a) */
static double time_op(vr_op op, int bwd, const vr_kernel_args *a, int reps) {
  double t[7];
  if (DEV == VR_CPU) reps = 1;
  for (int w = 0; w < 2; w++) OK(vr_dispatch(op, DEV, bwd, a));
  dev_sync();
  for (int b = 0; b < 7; b++) {
    double t0 = now_s();
    for (int r = 0; r < reps; r++) OK(vr_dispatch(op, DEV, bwd, a));
    dev_sync();
    t[b] = (now_s() - t0) / reps;
  }
  qsort(t, 7, sizeof *t, cmp_d);
  return t[3];
}

static vr_tensor *dev_rand(vr_dtype dt, int ndim, const int64_t *shape, uint64_t seed) {
  vr_generator *g = NULL;
  vr_tensor *t = NULL;
  OK(vr_generator_new(seed, 1, &g));
  OK(vr_rand_uniform(g, ndim, shape, -1, 1, dt, DEV, &t));
  vr_generator_free(g);
  return t;
}
static vr_tensor *dev_empty(vr_dtype dt, int ndim, const int64_t *shape) {
  vr_tensor *t = NULL;
  OK(vr_tensor_empty(ndim, shape, dt, DEV, &t));
  return t;
}

static void row_bw(const char *what, double s, double bytes) {
  printf("  %-44s %9.3f ms %9.1f GB/s\n", what, s * 1e3, bytes / s * 1e-9);
}
static void row_fl(const char *what, double s, double flops) {
  printf("  %-44s %9.3f ms %9.1f GFLOP/s\n", what, s * 1e3, flops / s * 1e-9);
}

START_TEST(test_cuda_bench) {
  if (!tu_dev_present()) {
    printf("SKIP test_cuda_bench: no CUDA device\n");
    return;
  }
  const int big = DEV == VR_CUDA;
  const int64_t S = big ? 8192 : 1024, n = S * S, sq[2] = {S, S};
  const int64_t bnN = big ? 256 : 16, bnS = big ? 4096 : 1024;
  printf("%s kernel timings on %s\n", big ? "CUDA" : "CPU (standing in)", big ? vr_cuda_device_name() : "cpu");
  const double fb = 4.0 * (double)n;
  vr_tensor *x = dev_rand(VR_F32, 1, &n, 1), *y = dev_rand(VR_F32, 1, &n, 2), *o = dev_empty(VR_F32, 1, &n);
  vr_kernel_args a = {.in = {x}, .n_in = 1, .out = {o}, .n_out = 1};
  row_bw("copy f32 64M (read + write)", time_op(VR_OP_COPY, 0, &a, 10), 2 * fb);
  vr_tensor *o64 = dev_empty(VR_F64, 1, &n);
  a.out[0] = o64;
  row_bw("copy f32 -> f64 64M", time_op(VR_OP_COPY, 0, &a, 10), 3 * fb);
  vr_tensor_free(o64);
  a.out[0] = o;
  a.f[0] = 1.5;
  vr_kernel_args fl = {.out = {o}, .n_out = 1, .f = {1.5}};
  row_bw("fill f32 64M", time_op(VR_OP_FILL, 0, &fl, 10), fb);
  vr_kernel_args rn = {.out = {o}, .n_out = 1, .sub = VR_RAND_NORMAL, .i = {1, 2, 3}, .f = {0, 1}};
  row_bw("rand normal f32 64M (write)", time_op(VR_OP_RAND, 0, &rn, 5), fb);
  vr_kernel_args un = {.in = {x}, .n_in = 1, .out = {o}, .n_out = 1, .sub = VR_UN_EXP};
  row_bw("unary exp f32 64M", time_op(VR_OP_UNARY, 0, &un, 10), 2 * fb);
  vr_kernel_args bi = {.in = {x, y}, .n_in = 2, .out = {o}, .n_out = 1, .sub = VR_BIN_ADD};
  row_bw("binary add f32 64M", time_op(VR_OP_BINARY, 0, &bi, 10), 3 * fb);
  vr_kernel_args ub = {.in = {y, x, o}, .n_in = 3, .out = {o}, .n_out = 1, .sub = VR_UN_TANH};
  row_bw("unary tanh backward f32 64M", time_op(VR_OP_UNARY, 1, &ub, 10), 3 * fb);

  /* 2-D: broadcast, transpose, reductions, softmax */
  vr_tensor *m = NULL, *mt = NULL, *row = dev_rand(VR_F32, 2, (const int64_t[]){1, S}, 3), *rb = NULL, *om = NULL;
  OK(vr_view(x, 2, sq, &m));
  OK(vr_view(o, 2, sq, &om));
  OK(vr_expand(row, 2, sq, &rb));
  vr_kernel_args bb = {.in = {m, rb}, .n_in = 2, .out = {om}, .n_out = 1, .sub = VR_BIN_MUL};
  row_bw("binary mul [8192,8192] x [1,8192] (broadcast)", time_op(VR_OP_BINARY, 0, &bb, 10), 2 * fb);
  OK(vr_transpose(m, 0, 1, &mt));
  vr_kernel_args tc = {.in = {mt}, .n_in = 1, .out = {om}, .n_out = 1};
  row_bw("copy transposed [8192,8192]", time_op(VR_OP_COPY, 0, &tc, 5), 2 * fb);
  vr_tensor *s1 = dev_empty(VR_F32, 1, (const int64_t[]){1});
  vr_kernel_args sa = {.in = {x}, .n_in = 1, .out = {s1}, .n_out = 1, .i = {1}, .f = {1}};
  row_bw("sum all f32 64M", time_op(VR_OP_SUM, 0, &sa, 10), fb);
  vr_tensor *s0 = dev_empty(VR_F32, 2, (const int64_t[]){1, S}), *s2 = dev_empty(VR_F32, 2, (const int64_t[]){S, 1});
  vr_kernel_args sd0 = {.in = {m}, .n_in = 1, .out = {s0}, .n_out = 1, .i = {1}, .f = {1}};
  row_bw("sum [8192,8192] over dim 0", time_op(VR_OP_SUM, 0, &sd0, 10), fb);
  vr_kernel_args sd1 = {.in = {m}, .n_in = 1, .out = {s2}, .n_out = 1, .i = {2}, .f = {1}};
  row_bw("sum [8192,8192] over dim 1", time_op(VR_OP_SUM, 0, &sd1, 10), fb);
  vr_kernel_args va = {.in = {m}, .n_in = 1, .out = {s0}, .n_out = 1, .i = {1, 1}};
  row_bw("var [8192,8192] over dim 0", time_op(VR_OP_VAR, 0, &va, 10), fb);
  vr_tensor *ix = dev_empty(VR_I64, 2, (const int64_t[]){S, 1});
  vr_kernel_args mx = {.in = {m}, .n_in = 1, .out = {s2, ix}, .n_out = 2, .i = {1}};
  row_bw("max [8192,8192] along dim 1", time_op(VR_OP_MAXMIN, 0, &mx, 10), fb);
  vr_kernel_args sm = {.in = {m}, .n_in = 1, .out = {om}, .n_out = 1, .i = {S, S, 1}};
  row_bw("softmax [8192,8192] rows", time_op(VR_OP_SOFTMAX, 0, &sm, 10), 2 * fb);
  vr_tensor *lse = dev_empty(VR_F32, 1, &S), *loss = dev_empty(VR_F32, 0, NULL), *tg = NULL;
  vr_generator *g = NULL;
  OK(vr_generator_new(4, 0, &g));
  OK(vr_rand_int(g, 1, &S, 0, S, VR_I64, DEV, &tg));
  vr_generator_free(g);
  vr_kernel_args ce = {.in = {m, tg}, .n_in = 2, .out = {loss, lse}, .n_out = 2, .i = {S, S}, .f = {0.1}};
  row_bw("cross entropy [8192,8192]", time_op(VR_OP_CROSS_ENTROPY, 0, &ce, 10), fb);
  vr_tensor *mean = dev_empty(VR_F32, 1, &S), *inv = dev_empty(VR_F32, 1, &S);
  vr_kernel_args ln = {.in = {m}, .n_in = 3, .out = {om, mean, inv}, .n_out = 3, .i = {S, S}, .f = {1e-5}};
  row_bw("layer norm [8192,8192]", time_op(VR_OP_LAYERNORM, 0, &ln, 10), 2 * fb);
  vr_tensor *bx = NULL, *by = NULL;
  OK(vr_view(x, 3, (const int64_t[]){bnN, 64, bnS}, &bx));
  OK(vr_view(o, 3, (const int64_t[]){bnN, 64, bnS}, &by));
  vr_tensor *bm = dev_empty(VR_F32, 1, (const int64_t[]){64}), *bs = dev_empty(VR_F32, 1, (const int64_t[]){64});
  vr_kernel_args bn = {.in = {bx}, .n_in = 5, .out = {by, bm, bs}, .n_out = 3, .i = {1, bnN, 64, bnS}, .f = {0.1, 1e-5}};
  row_bw("batch norm train [256,64,4096]", time_op(VR_OP_BATCHNORM, 0, &bn, 5), 2 * fb);
  /* channels-last (S = 1) in bf16 with f32 statistics, as the GPU recipe's first stage: x [512*28*28, 64];
   * GB/s counts x read and y written once (the sums read x once more) */
  const int64_t rM = big ? 512 * 28 * 28 : 4096, rne = rM * 64;
  vr_tensor *rx = dev_rand(VR_BF16, 2, (const int64_t[]){rM, 64}, 7), *ry = dev_empty(VR_BF16, 2, (const int64_t[]){rM, 64});
  vr_tensor *rg = dev_rand(VR_BF16, 2, (const int64_t[]){rM, 64}, 8), *rgx = dev_empty(VR_BF16, 2, (const int64_t[]){rM, 64});
  vr_tensor *rw = dev_rand(VR_F32, 1, (const int64_t[]){64}, 9), *rwg = dev_empty(VR_F32, 1, (const int64_t[]){64});
  vr_tensor *rbg = dev_empty(VR_F32, 1, (const int64_t[]){64});
  vr_kernel_args rbn = {.in = {rx, rw}, .n_in = 5, .out = {ry, bm, bs}, .n_out = 3, .i = {1, rM, 64, 1}, .f = {0.1, 1e-5}};
  row_bw("batch norm train [401408,64] bf16 S=1", time_op(VR_OP_BATCHNORM, 0, &rbn, 10), 2 * 2.0 * (double)rne);
  vr_kernel_args rbb = {.in = {rg, rx, rw, bm, bs}, .n_in = 5, .out = {rgx, rwg, rbg}, .n_out = 3, .i = {1, rM, 64, 1}};
  row_bw("batch norm bwd [401408,64] bf16 S=1 (g,x,gx)", time_op(VR_OP_BATCHNORM, 1, &rbb, 10), 3 * 2.0 * (double)rne);
  /* the fused residual add + ReLU (vr_batch_norm_act) folded into the same passes: GB/s counts x, r
   * read and y written once forward; g, y, x read and grad_x, grad_residual written once backward */
  vr_tensor *rr = dev_rand(VR_BF16, 2, (const int64_t[]){rM, 64}, 10), *rgr = dev_empty(VR_BF16, 2, (const int64_t[]){rM, 64});
  vr_kernel_args rfa = {.in = {rx, rw, NULL, NULL, NULL, rr}, .n_in = 6, .out = {ry, bm, bs}, .n_out = 3, .i = {1, rM, 64, 1, 1},
                        .f = {0.1, 1e-5}};
  row_bw("bn+add+relu train [401408,64] bf16 S=1", time_op(VR_OP_BATCHNORM, 0, &rfa, 10), 3 * 2.0 * (double)rne);
  vr_kernel_args rfb = {.in = {rg, rx, rw, bm, bs, ry}, .n_in = 6, .out = {rgx, rwg, rbg, rgr}, .n_out = 4, .i = {1, rM, 64, 1, 1}};
  row_bw("bn+add+relu bwd [401408,64] bf16 S=1", time_op(VR_OP_BATCHNORM, 1, &rfb, 10), 5 * 2.0 * (double)rne);
  vr_tensor *rall[] = {rx, ry, rg, rgx, rw, rwg, rbg, rr, rgr};
  for (size_t k = 0; k < sizeof rall / sizeof *rall; k++) vr_tensor_free(rall[k]);

  /* matrix products */
  const int64_t sizes[] = {big ? 1024 : 128, big ? 4096 : 256};
  for (int k = 0; k < 2; k++) {
    int64_t s = sizes[k];
    for (int dt = 0; dt < 2; dt++) {
      vr_dtype d = dt ? VR_F64 : VR_F32;
      if (dt && s > 2048) s = 2048;
      int64_t sh[2] = {s, s};
      vr_tensor *A = dev_rand(d, 2, sh, 5), *B = dev_rand(d, 2, sh, 6), *C = dev_empty(d, 2, sh);
      vr_kernel_args mm = {.in = {A, B}, .n_in = 2, .out = {C}, .n_out = 1, .i = {0, 0, s, s, s}};
      char what[64];
      snprintf(what, sizeof what, "matmul %s %lld^3", vr_dtype_name(d), (long long)s);
      row_fl(what, time_op(VR_OP_MATMUL, 0, &mm, s > 2048 ? 5 : 20), 2.0 * (double)s * (double)s * (double)s);
      vr_tensor_free(A);
      vr_tensor_free(B);
      vr_tensor_free(C);
    }
  }
  if (big)
    printf("  cuda memory: %lld B allocated, %lld reserved, peak %lld, %lld cudaMalloc calls, %lld cache hits\n",
         (long long)vr_cuda_memory_allocated(), (long long)vr_cuda_memory_reserved(), (long long)vr_cuda_memory_peak(),
         (long long)vr_cuda_malloc_count(), (long long)vr_cuda_cache_hits());

  vr_tensor *all[] = {x, y, o, m, mt, row, rb, om, s1, s0, s2, ix, lse, loss, tg, mean, inv, bx, by, bm, bs};
  for (size_t k = 0; k < sizeof all / sizeof *all; k++) vr_tensor_free(all[k]);
}
END_TEST

static Suite *bench_suite(void) {
  Suite *s = suite_create("cuda_bench");
  TCase *tc = tcase_create("timings");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_cuda_bench);
  suite_add_tcase(s, tc);
  return s;
}

VR_TEST_MAIN(bench_suite)
