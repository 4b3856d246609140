/* test_cuda_dist.c: the NCCL path of the collectives (kernels/cuda/dist_nccl.cu) on one GPU: a
 * process alone opens a communicator of one rank (vr_dist_use_nccl), and CUDA tensors then go
 * through NCCL: a sum, a gather and a broadcast give their input back, a tensor larger than a
 * bucket included. Skipped (and says so) without a GPU or without libnccl; tools/gpu-check runs
 * it on the GPU machine. Several GPUs are not checked here. */
#include "testutil.h"

static vr_tensor *on_gpu(int64_t n, double base) {
  vr_tensor *h = NULL, *d = NULL;
  OK(vr_tensor_arange(base, base + (double)n, 1, VR_F32, VR_CPU, &h));
  OK(vr_tensor_to_device(h, VR_CUDA, &d));
  vr_tensor_free(h);
  return d;
}

static double at(const vr_tensor *d, int64_t i) {
  vr_tensor *h = NULL;
  OK(vr_tensor_to_device(d, VR_CPU, &h));
  double v = 0;
  int64_t idx[1] = { i };
  if (vr_tensor_ndim(h) == 2) {
    int64_t idx2[2] = { i / vr_tensor_size(h, 1), i % vr_tensor_size(h, 1) };
    OK(vr_tensor_get(h, idx2, &v));
  } else {
    OK(vr_tensor_get(h, idx, &v));
  }
  vr_tensor_free(h);
  return v;
}

START_TEST(nccl_one_rank) {
  TU_SKIP_NO_CUDA();
  OK(vr_dist_init());
  if (vr_dist_size() != 1) {
    printf("SKIP %s: run alone (the multi-rank path is tests/lua/test_dist.lua's)\n", __func__);
    return;
  }
  if (vr_dist_use_nccl() != VR_OK) {
    printf("SKIP %s: NCCL could not be opened: %s\n", __func__, vr_last_error());
    return;
  }
  ck_assert_str_eq(vr_dist_backend(), "nccl");
  int64_t big_n = ((int64_t)9 << 20) + 3; /* past one 32 MiB bucket of f32 */
  vr_tensor *a = on_gpu(5, 1), *big = on_gpu(big_n, 0);
  vr_tensor *ts[2] = { a, big };
  OK(vr_dist_all_reduce_sum(ts, 2));
  ck_assert_double_eq(at(a, 4), 5);
  ck_assert_double_eq(at(big, big_n - 1), (double)(big_n - 1));
  vr_tensor *m = NULL, *g = NULL;
  OK(vr_view(a, 2, TU_SHAPE(1, 5), &m));
  OK(vr_dist_all_gather(m, &g));
  ck_assert_int_eq(vr_tensor_size(g, 0), 1);
  ck_assert_double_eq(at(g, 3), 4);
  OK(vr_dist_broadcast(a, 0));
  ck_assert_double_eq(at(a, 0), 1);
  OK(vr_cuda_synchronize());
  vr_tensor_free(a);
  vr_tensor_free(big);
  vr_tensor_free(m);
  vr_tensor_free(g);
  OK(vr_dist_finalize());
  ck_assert_str_eq(vr_dist_backend(), "none");
}
END_TEST

static Suite *cuda_dist_suite(void) {
  Suite *s = suite_create("cuda_dist");
  TCase *tc = tcase_create("cuda_dist");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, nccl_one_rank);
  suite_add_tcase(s, tc);
  return s;
}

VR_TEST_MAIN(cuda_dist_suite)
