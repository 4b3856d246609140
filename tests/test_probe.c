/* test_probe.c: the linear probe and the weighted kNN on separable synthetic features and on a
 * Fashion-MNIST subset (raw pixels, well above chance), plus argument errors and the interrupt
 * request. With VISREG_FULL_PROBE=1 it also measures both probes on the full raw Fashion-MNIST
 * (slow; the reference numbers are about 84.7% linear and 85.7% kNN). */
#include "testutil.h"
#include <time.h>

/* n points of dim d around C class centres; label i % C */
static void blobs(int64_t n, int64_t d, int C, double spread, uint64_t seed, vr_tensor **x, vr_tensor **y) {
  vr_tensor *noise = tu_rand(VR_F32, 2, TU_SHAPE(n, d), seed), *ctr = tu_rand(VR_F32, 2, TU_SHAPE(C, d), 1234);
  OK(vr_tensor_empty(1, TU_SHAPE(n), VR_I64, VR_CPU, y));
  float *p = vr_tensor_data(noise), *c = vr_tensor_data(ctr);
  int64_t *l = vr_tensor_data(*y);
  for (int64_t i = 0; i < n; i++) {
    l[i] = i % C;
    for (int64_t k = 0; k < d; k++) p[i * d + k] = (float)(3 * c[l[i] * d + k] + spread * p[i * d + k]);
  }
  *x = noise;
  vr_tensor_free(ctr);
}

START_TEST(synthetic) {
  vr_tensor *xtr = NULL, *ytr = NULL, *xte = NULL, *yte = NULL;
  blobs(600, 16, 4, 1.0, 1, &xtr, &ytr);
  blobs(200, 16, 4, 1.0, 2, &xte, &yte);
  double acc = 0;
  OK(vr_linear_probe(xtr, ytr, xte, yte, 0, 1e-4, 200, &acc));
  ck_assert_msg(acc > 0.97, "linear probe %g", acc);
  { /* the predictions agree with the accuracy and the labels */
    vr_tensor *pred = NULL;
    double acc2 = 0;
    OK(vr_linear_probe_classify(xtr, ytr, xte, yte, 0, 1e-4, 200, &pred, &acc2));
    ck_assert_double_eq(acc2, acc);
    ck_assert_int_eq(vr_tensor_dtype(pred), VR_I64);
    ck_assert_int_eq(vr_tensor_numel(pred), 200);
    const int64_t *pp = vr_tensor_data(pred), *yy = vr_tensor_data(yte);
    int64_t right = 0;
    for (int i = 0; i < 200; i++) right += pp[i] == yy[i];
    ck_assert_double_eq_tol((double)right / 200, acc, 1e-12);
    vr_tensor_free(pred);
    OK(vr_linear_probe_classify(xtr, ytr, xte, yte, 0, 1e-4, 20, NULL, NULL)); /* both outputs optional */
  }
  OK(vr_knn_probe(xtr, ytr, xte, yte, 0, 20, 0.07, &acc));
  ck_assert_msg(acc > 0.97, "knn %g", acc);
  /* f64 features and i32 labels work too */
  vr_tensor *x64 = NULL, *y32 = NULL;
  OK(vr_tensor_to_dtype(xte, VR_F64, &x64));
  OK(vr_tensor_to_dtype(yte, VR_I32, &y32));
  OK(vr_knn_probe(xtr, ytr, x64, y32, 4, 5, 0.1, &acc));
  ck_assert_msg(acc > 0.97, "knn f64 %g", acc);
  /* more than 16 classes (several 16-column blocks) and a row count that is not a multiple of 4 */
  vr_tensor *mtr = NULL, *mytr = NULL, *mte = NULL, *myte = NULL;
  blobs(803, 24, 21, 1.0, 3, &mtr, &mytr);
  blobs(301, 24, 21, 1.0, 4, &mte, &myte);
  OK(vr_linear_probe(mtr, mytr, mte, myte, 0, 1e-4, 200, &acc));
  ck_assert_msg(acc > 0.95, "linear probe, 21 classes %g", acc);
  OK(vr_linear_probe(mtr, mytr, mte, myte, 23, 0, 0, &acc)); /* 2 empty classes, default max_iter */
  ck_assert_msg(acc > 0.95, "linear probe, 23 classes %g", acc);
  vr_tensor_free(mtr);
  vr_tensor_free(mytr);
  vr_tensor_free(mte);
  vr_tensor_free(myte);
  /* pure noise features: about chance */
  vr_tensor_free(x64);
  vr_tensor_free(y32);
  vr_tensor *rnd = tu_rand(VR_F32, 2, TU_SHAPE(800, 16), 5), *rtr = NULL, *rte = NULL;
  OK(vr_narrow(rnd, 0, 0, 600, &rtr));
  OK(vr_narrow(rnd, 0, 600, 200, &rte));
  OK(vr_linear_probe(rtr, ytr, rte, yte, 0, 1e-3, 100, &acc));
  ck_assert_msg(acc > 0.1 && acc < 0.45, "linear probe on noise %g", acc);
  vr_tensor_free(rnd);
  vr_tensor_free(rtr);
  vr_tensor_free(rte);
  vr_tensor_free(xtr);
  vr_tensor_free(ytr);
  vr_tensor_free(xte);
  vr_tensor_free(yte);
}
END_TEST

/* raw pixels in [0, 1] as N x 784 features. full: the train and test splits; else (fast) the first
 * ntr images of the test split for training and the next nte for testing */
static void fmnist(int full, int64_t ntr, int64_t nte, vr_tensor **xtr, vr_tensor **ytr, vr_tensor **xte,
                   vr_tensor **yte) {
  vr_dataset *tr = NULL, *te = NULL, *a = NULL, *b = NULL;
  const char *root = getenv("VISREG_FMNIST_ROOT"); /* NULL: the installed copy */
  OK(vr_dataset_fashion_mnist(root, 0, &te));
  if (full) OK(vr_dataset_fashion_mnist(root, 1, &tr));
  int64_t *idx = malloc(sizeof(int64_t) * (size_t)(ntr + nte));
  for (int64_t k = 0; k < ntr + nte; k++) idx[k] = k;
  OK(vr_dataset_subset(full ? tr : te, ntr, idx, &a));
  OK(vr_dataset_subset(te, nte, full ? idx : idx + ntr, &b));
  free(idx);
  vr_tensor *ia = NULL, *ib = NULL;
  OK(vr_dataset_images_f32(a, &ia));
  OK(vr_dataset_images_f32(b, &ib));
  OK(vr_flatten(ia, 1, -1, xtr));
  OK(vr_flatten(ib, 1, -1, xte));
  OK(vr_dataset_labels(a, ytr));
  OK(vr_dataset_labels(b, yte));
  vr_tensor_free(ia);
  vr_tensor_free(ib);
  vr_dataset_free(tr);
  vr_dataset_free(te);
  vr_dataset_free(a);
  vr_dataset_free(b);
}

START_TEST(fmnist_subset) {
  vr_tensor *xtr = NULL, *ytr = NULL, *xte = NULL, *yte = NULL;
  fmnist(0, 2000, 500, &xtr, &ytr, &xte, &yte);
  double lin = 0, knn = 0;
  OK(vr_linear_probe(xtr, ytr, xte, yte, 10, 1e-3, 60, &lin));
  OK(vr_knn_probe(xtr, ytr, xte, yte, 10, 20, 0.07, &knn));
  printf("fmnist 2000/500 raw pixels: linear %.4f knn %.4f\n", lin, knn);
  ck_assert_msg(lin > 0.75, "linear probe %g", lin);
  ck_assert_msg(knn > 0.75, "knn %g", knn);
  vr_tensor_free(xtr);
  vr_tensor_free(ytr);
  vr_tensor_free(xte);
  vr_tensor_free(yte);
}
END_TEST

static double secs(const struct timespec *t0) {
  struct timespec t1;
  clock_gettime(CLOCK_MONOTONIC, &t1);
  return (t1.tv_sec - t0->tv_sec) + 1e-9 * (t1.tv_nsec - t0->tv_nsec);
}

/* relu(x R) with a fixed Gaussian R (784 x d): stand-in encoder features of width d */
static vr_tensor *random_features(const vr_tensor *x, int64_t d) {
  int64_t in = vr_tensor_size(x, 1);
  vr_tensor *r = tu_rand(VR_F32, 2, TU_SHAPE(in, d), 99), *h = NULL, *f = NULL;
  OK(vr_matmul(x, r, &h));
  OK(vr_relu(h, &f));
  vr_tensor_free(r);
  vr_tensor_free(h);
  return f;
}

/* VISREG_FULL_PROBE=1: both probes on full Fashion-MNIST raw pixels (=linear: the linear probe
 * only). VISREG_PROBE_L2: a comma list of penalties (default 1e-3, which gives the reference
 * 84.7%; "skip" skips the linear probe); VISREG_PROBE_ITERS: max_iter (default 0: the library's);
 * VISREG_PROBE_DIM=d: the linear probe on relu(x R) random features of width d instead of pixels
 * (the cost of a d-wide encoder's probe). kNN runs on pixels in [0, 1] and on pixels normalised
 * with the dataset mean and std (0.286, 0.353), as a torchvision pipeline gives them. */
START_TEST(fmnist_full) {
  const char *e = getenv("VISREG_FULL_PROBE");
  if (!e || !*e || !strcmp(e, "0")) {
    printf("SKIP fmnist_full: set VISREG_FULL_PROBE=1 to measure the probes on full Fashion-MNIST\n");
    return;
  }
  int lin_only = !strcmp(e, "linear");
  vr_tensor *xtr = NULL, *ytr = NULL, *xte = NULL, *yte = NULL;
  fmnist(1, 60000, 10000, &xtr, &ytr, &xte, &yte);
  const char *l2s = getenv("VISREG_PROBE_L2") ? getenv("VISREG_PROBE_L2") : "1e-3";
  int iters = getenv("VISREG_PROBE_ITERS") ? atoi(getenv("VISREG_PROBE_ITERS")) : 0;
  int64_t dim = getenv("VISREG_PROBE_DIM") ? atoll(getenv("VISREG_PROBE_DIM")) : 0;
  struct timespec t0;
  double lin = 1, knn = 1, knn_n = 1;
  if (strcmp(l2s, "skip")) {
    vr_tensor *ftr = dim ? random_features(xtr, dim) : xtr, *fte = dim ? random_features(xte, dim) : xte;
    char what[32];
    snprintf(what, sizeof what, dim ? "relu random %lld" : "raw pixels", (long long)dim);
    double best = 0, total = 0;
    for (const char *q = l2s; *q;) {
      char *end = NULL;
      double l2 = strtod(q, &end);
      clock_gettime(CLOCK_MONOTONIC, &t0);
      OK(vr_linear_probe(ftr, ytr, fte, yte, 10, l2, iters, &lin));
      double t = secs(&t0);
      total += t;
      best = lin > best ? lin : best;
      printf("fmnist full %s: linear probe (l2 %g, max_iter %d) %.4f in %.1f s\n", what, l2, iters, lin, t);
      fflush(stdout);
      q = *end == ',' ? end + 1 : end;
      if (end == q && *q) break;
    }
    printf("fmnist full %s: linear probe best %.4f, %.1f s in all\n", what, best, total);
    lin = dim ? 1 : best;
    if (dim) {
      vr_tensor_free(ftr);
      vr_tensor_free(fte);
    }
  }
  if (!lin_only) {
    clock_gettime(CLOCK_MONOTONIC, &t0);
    OK(vr_knn_probe(xtr, ytr, xte, yte, 10, 20, 0.07, &knn));
    printf("fmnist full raw pixels in [0, 1]: knn (k 20, T 0.07) %.4f in %.1f s\n", knn, secs(&t0));
    fflush(stdout);
    vr_tensor *a = NULL, *b = NULL, *c = NULL, *d = NULL;
    OK(vr_add_scalar(xtr, -0.286, &a));
    OK(vr_mul_scalar(a, 1 / 0.353, &b));
    OK(vr_add_scalar(xte, -0.286, &c));
    OK(vr_mul_scalar(c, 1 / 0.353, &d));
    OK(vr_knn_probe(b, ytr, d, yte, 10, 20, 0.07, &knn_n));
    printf("fmnist full pixels normalised (x - 0.286) / 0.353: knn (k 20, T 0.07) %.4f\n", knn_n);
    vr_tensor_free(a);
    vr_tensor_free(b);
    vr_tensor_free(c);
    vr_tensor_free(d);
  }
  ck_assert(lin > 0.84 && knn > 0.84 && knn_n > 0.85);
  vr_tensor_free(xtr);
  vr_tensor_free(ytr);
  vr_tensor_free(xte);
  vr_tensor_free(yte);
}
END_TEST

START_TEST(errors) {
  vr_tensor *x = tu_rand(VR_F32, 2, TU_SHAPE(10, 4), 1), *x3 = tu_rand(VR_F32, 2, TU_SHAPE(10, 3), 2);
  vr_tensor *y = tu_tensor(VR_I64, 1, TU_SHAPE(10), TU_VALS(0, 1, 0, 1, 0, 1, 0, 1, 0, 1));
  vr_tensor *yb = tu_tensor(VR_I64, 1, TU_SHAPE(3), TU_VALS(0, 1, 0));
  vr_tensor *yn = tu_tensor(VR_I64, 1, TU_SHAPE(10), TU_VALS(0, 1, 0, 1, 0, 1, 0, 1, 0, -1));
  vr_tensor *yf = tu_rand(VR_F32, 1, TU_SHAPE(10), 3), *v = tu_rand(VR_F32, 1, TU_SHAPE(10), 3);
  double acc;
  FAILS(vr_linear_probe(x, y, x3, y, 0, 0, 10, &acc), VR_E_SHAPE, "test_x");
  FAILS(vr_linear_probe(x, yb, x, y, 0, 0, 10, &acc), VR_E_SHAPE, "train_y");
  FAILS(vr_linear_probe(x, y, x, yn, 0, 0, 10, &acc), VR_E_VALUE, "test_y");
  FAILS(vr_linear_probe(x, yf, x, y, 0, 0, 10, &acc), VR_E_DTYPE, "train_y");
  FAILS(vr_linear_probe(v, y, x, y, 0, 0, 10, &acc), VR_E_SHAPE, "train_x");
  FAILS(vr_linear_probe(x, y, x, y, 0, -1, 10, &acc), VR_E_ARG, "l2");
  FAILS(vr_linear_probe(x, y, x, y, 1, 0, 10, &acc), VR_E_VALUE, "num_classes");
  FAILS(vr_knn_probe(x, y, x, y, 0, 0, 0.07, &acc), VR_E_ARG, "k:");
  FAILS(vr_knn_probe(x, y, x, y, 0, 5, 0, &acc), VR_E_ARG, "temperature");
  FAILS(vr_knn_probe(NULL, y, x, y, 0, 5, 0.1, &acc), VR_E_ARG, "train_x");
  /* k larger than the training set is clamped */
  OK(vr_knn_probe(x, y, x, y, 0, 50, 0.07, &acc));
  vr_tensor_free(x);
  vr_tensor_free(x3);
  vr_tensor_free(y);
  vr_tensor_free(yb);
  vr_tensor_free(yn);
  vr_tensor_free(yf);
  vr_tensor_free(v);
}
END_TEST

/* a pending interrupt request stops both probes with VR_E_INTERRUPTED and is taken (cleared); with
 * none pending they run as usual */
START_TEST(interrupt) {
  vr_tensor *xtr = NULL, *ytr = NULL, *xte = NULL, *yte = NULL;
  blobs(300, 8, 3, 1.0, 1, &xtr, &ytr);
  blobs(100, 8, 3, 1.0, 2, &xte, &yte);
  double acc = -1;
  ck_assert_str_eq(vr_status_name(VR_E_INTERRUPTED), "VR_E_INTERRUPTED");
  ck_assert_int_eq(vr_interrupt_pending(), 0);
  vr_interrupt_request();
  ck_assert_int_eq(vr_interrupt_pending(), 1);
  FAILS(vr_linear_probe(xtr, ytr, xte, yte, 0, 1e-4, 100, &acc), VR_E_INTERRUPTED, "vr_linear_probe: interrupted");
  ck_assert_int_eq(vr_interrupt_pending(), 0);
  ck_assert(acc == -1);
  vr_interrupt_request();
  FAILS(vr_knn_probe(xtr, ytr, xte, yte, 0, 5, 0.07, &acc), VR_E_INTERRUPTED, "interrupted during the kNN search");
  ck_assert_int_eq(vr_interrupt_pending(), 0);
  ck_assert(acc == -1);
  /* a request that is cleared before the call changes nothing */
  vr_interrupt_request();
  vr_interrupt_clear();
  OK(vr_linear_probe(xtr, ytr, xte, yte, 0, 1e-4, 100, &acc));
  ck_assert_msg(acc > 0.95, "linear probe %g", acc);
  OK(vr_knn_probe(xtr, ytr, xte, yte, 0, 5, 0.07, &acc));
  ck_assert_msg(acc > 0.95, "knn %g", acc);
  vr_tensor_free(xtr);
  vr_tensor_free(ytr);
  vr_tensor_free(xte);
  vr_tensor_free(yte);
}
END_TEST

static Suite *probe_suite(void) {
  Suite *s = suite_create("probe");
  TCase *tc = tcase_create("probes");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, synthetic);
  tcase_add_test(tc, fmnist_subset);
  tcase_add_test(tc, fmnist_full);
  tcase_add_test(tc, errors);
  tcase_add_test(tc, interrupt);
  suite_add_tcase(s, tc);
  return s;
}
VR_TEST_MAIN(probe_suite)
