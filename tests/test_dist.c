/* test_dist.c: the collectives (core/dist.c) on however many ranks run it: alone (make test: rank
 * 0 of 1, every collective the identity) and under mpirun -np 2 (tests/lua/test_dist.lua, with
 * CK_FORK=no so that MPI starts once a process). The expected values are written for N ranks:
 * sums of rank-dependent values, gathers in rank order, root's values after a broadcast, a
 * tensor larger than one bucket, and the errors for tensors a collective cannot take. */
#include "testutil.h"

static vr_tensor *filled(vr_dtype dt, int64_t n, double v) {
  vr_tensor *t = NULL;
  OK(vr_tensor_full(1, &n, v, dt, VR_CPU, &t));
  return t;
}

START_TEST(collectives) {
  OK(vr_dist_init());
  OK(vr_dist_init()); /* idempotent */
  int R = vr_dist_rank(), N = vr_dist_size();
  ck_assert_int_ge(N, 1);
  ck_assert(R >= 0 && R < N);
  ck_assert_str_eq(vr_dist_backend(), N > 1 ? "mpi" : (vr_dist_launcher() ? "mpi" : "none"));

  /* sums: two dtypes, several tensors in one bucket, one larger than a bucket (32 MiB) */
  vr_tensor *a = filled(VR_F32, 3, R + 1), *b = filled(VR_F32, 5, 2.5), *c = filled(VR_F64, 4, (R + 1) * 0.25);
  vr_tensor *big = filled(VR_F32, (int64_t)9 << 20, R + 1);
  vr_tensor *f32s[3] = { a, b, big };
  OK(vr_dist_all_reduce_sum(f32s, 3));
  OK(vr_dist_all_reduce_sum(&c, 1));
  double tri = N * (N + 1) / 2.0, v;
  int64_t i0 = 0, ilast = ((int64_t)9 << 20) - 1, i2 = 2, i4 = 4, i3 = 3;
  OK(vr_tensor_get(a, &i2, &v)); ck_assert_double_eq(v, tri);
  OK(vr_tensor_get(b, &i4, &v)); ck_assert_double_eq(v, 2.5 * N);
  OK(vr_tensor_get(c, &i3, &v)); ck_assert_double_eq(v, 0.25 * tri);
  OK(vr_tensor_get(big, &i0, &v)); ck_assert_double_eq(v, tri);
  OK(vr_tensor_get(big, &ilast, &v)); ck_assert_double_eq(v, tri);

  /* gather along dim 0, rank 0's rows first */
  vr_tensor *g = NULL, *mine = NULL;
  OK(vr_tensor_full(2, TU_SHAPE(2, 3), 10.0 * R, VR_F32, VR_CPU, &mine));
  OK(vr_dist_all_gather(mine, &g));
  ck_assert_int_eq(vr_tensor_size(g, 0), 2 * N);
  ck_assert_int_eq(vr_tensor_size(g, 1), 3);
  for (int r = 0; r < N; r++) {
    int64_t idx[2] = { 2 * r + 1, 2 };
    OK(vr_tensor_get(g, idx, &v));
    ck_assert_double_eq(v, 10.0 * r);
  }

  /* broadcast from the last rank; the largest flag */
  vr_tensor *bc = filled(VR_I64, 2, 100 + R);
  OK(vr_dist_broadcast(bc, N - 1));
  OK(vr_tensor_get(bc, &i0, &v));
  ck_assert_double_eq(v, 100 + N - 1);
  int64_t flags[2] = { R, R == 0 };
  OK(vr_dist_all_reduce_max(flags, 2));
  ck_assert_int_eq(flags[0], N - 1);
  ck_assert_int_eq(flags[1], 1);
  OK(vr_dist_barrier());
  vr_dist_set_timeout(5);
  ck_assert_double_eq(vr_dist_timeout(), 5);
  vr_dist_set_timeout(-1); /* no limit */
  ck_assert_double_eq(vr_dist_timeout(), 0);
  vr_dist_set_timeout(600);

  /* what a collective refuses, the same on every rank (so no rank waits for another) */
  vr_tensor *m = NULL, *mt = NULL, *ints = filled(VR_I32, 4, 1);
  OK(vr_tensor_zeros(2, TU_SHAPE(3, 4), VR_F32, VR_CPU, &m));
  OK(vr_transpose(m, 0, 1, &mt));
  FAILS(vr_dist_all_reduce_sum(&mt, 1), VR_E_ARG, "contiguous");
  FAILS(vr_dist_all_reduce_sum(&ints, 1), VR_E_DTYPE, "f32 or f64");
  vr_tensor *mixed[2] = { a, c };
  FAILS(vr_dist_all_reduce_sum(mixed, 2), VR_E_ARG, "ts[1]");
  FAILS(vr_dist_all_reduce_sum(NULL, 2), VR_E_ARG, "ts");
  FAILS(vr_dist_broadcast(bc, N), VR_E_ARG, "root");
  vr_tensor *s0 = NULL, *gs = NULL;
  OK(vr_tensor_scalar(1, VR_F32, VR_CPU, &s0));
  FAILS(vr_dist_all_gather(s0, &gs), VR_E_SHAPE, "scalar");
  ck_assert_ptr_null(gs);

  vr_tensor *all[] = { a, b, c, big, g, mine, bc, m, mt, ints, s0 };
  for (size_t k = 0; k < sizeof all / sizeof *all; k++) vr_tensor_free(all[k]);
  OK(vr_dist_finalize());
  ck_assert_int_eq(vr_dist_size(), 1);
}
END_TEST

static Suite *dist_suite(void) {
  Suite *s = suite_create("dist");
  TCase *tc = tcase_create("dist");
  tcase_add_test(tc, collectives);
  suite_add_tcase(s, tc);
  return s;
}

VR_TEST_MAIN(dist_suite)
