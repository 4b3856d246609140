/* test_cuda_profile.c: the op profiler (core/profile.c): calls counted per op, variant and direction,
 * only while it is on, a reset that starts the count over, nested kernel calls inside their
 * parent, and device time from the backend's events on CUDA (skipped without a GPU). */
#include "testutil.h"

static vr_tensor *ramp(vr_device dev, int requires_grad) {
  vr_tensor *t = NULL, *d = NULL;
  OK(vr_tensor_arange(-3, 3, 0.5, VR_F32, VR_CPU, &t));
  if (dev == VR_CPU) {
    OK(vr_tensor_set_requires_grad(t, requires_grad));
    return t;
  }
  OK(vr_tensor_to_device(t, dev, &d));
  vr_tensor_free(t);
  OK(vr_tensor_set_requires_grad(d, requires_grad));
  return d;
}

/* y = relu(a + b) twice, the backward of the last sum: 2 adds, 2 relus forward, 1 relu backward */
static void run_ops(vr_device dev) {
  vr_tensor *a = ramp(dev, 1), *b = ramp(dev, 0), *s = NULL, *r = NULL, *r2 = NULL, *l = NULL;
  OK(vr_add(a, b, &s));
  OK(vr_relu(s, &r));
  vr_tensor_free(s);
  OK(vr_add(a, b, &s));
  OK(vr_relu(s, &r2));
  OK(vr_sum(r2, 0, NULL, 0, &l));
  OK(vr_backward(l, NULL, 0));
  vr_tensor *objs[] = {a, b, s, r, r2, l};
  for (size_t k = 0; k < sizeof objs / sizeof *objs; k++) vr_tensor_free(objs[k]);
}

START_TEST(counts_calls_per_op_and_direction) {
  vr_profile_enable(1);
  vr_profile_reset();
  run_ops(VR_CPU);
  double ms = -1;
  ck_assert_int_eq(vr_profile_calls("binary.add", 0, &ms), 2);
  ck_assert(ms >= 0);
  ck_assert_int_eq(vr_profile_calls("unary.relu", 0, NULL), 2);
  ck_assert_int_eq(vr_profile_calls("unary.relu", 1, NULL), 1);
  ck_assert_int_eq(vr_profile_calls("binary.add", 1, NULL), 0);
  ck_assert_int_eq(vr_profile_calls("no_such_op", 0, NULL), 0);
  vr_profile_report(); /* the table on stderr */
  vr_profile_reset();
  ck_assert_int_eq(vr_profile_calls("binary.add", 0, NULL), 0);
  vr_profile_enable(0);
  run_ops(VR_CPU);
  ck_assert_int_eq(vr_profile_calls("binary.add", 0, NULL), 0);
}
END_TEST

START_TEST(cuda_time_comes_from_events) {
  TU_SKIP_NO_CUDA();
  vr_profile_enable(1);
  vr_profile_reset();
  run_ops(VR_CUDA);
  double ms = -1;
  ck_assert_int_eq(vr_profile_calls("binary.add", 0, &ms), 2);
  ck_assert(ms > 0 && ms < 1e3);
  ck_assert_int_eq(vr_profile_calls("unary.relu", 1, NULL), 1);
  vr_profile_report();
  vr_profile_enable(0);
}
END_TEST

Suite *profile_suite(void) {
  Suite *s = suite_create("profile");
  TCase *c = tcase_create("core");
  tcase_add_test(c, counts_calls_per_op_and_direction);
  tcase_add_test(c, cuda_time_comes_from_events);
  suite_add_tcase(s, c);
  return s;
}

VR_TEST_MAIN(profile_suite)
