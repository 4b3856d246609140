/* test_reg_sort.c: the rank sort of the sliced regularizers (kernels/cpu/reg_sort.c) against a
 * comparison sort: its network path for 32..256 values (reg_sort_net.c, where the CPU has
 * AVX-512: 24-bit prefixes, an insertion fix-up), its short-segment path (a 12/16-bit value
 * prefix, two passes, an insertion fix-up) and their fallbacks (equal values, non-finite values,
 * crowded values) must all give the plain radix order: ascending float order, -0 before +0,
 * ties by index. */
#include "testutil.h"
#include "../core/reg/reg.h"
#include <stdint.h>

static uint32_t ref_key(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}
static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* the sorted words equal the comparison-sorted (key, index) words, and perm matches */
static void check_sort(const float *x, int64_t n, const char *what) {
  uint64_t *work = malloc(sizeof(uint64_t) * 2 * (size_t)n), *ref = malloc(sizeof(uint64_t) * (size_t)n);
  uint32_t *perm = malloc(sizeof(uint32_t) * (size_t)n), *iw = malloc(sizeof(uint32_t) * 2 * (size_t)n);
  for (int64_t i = 0; i < n; i++) ref[i] = ((uint64_t)ref_key(x[i]) << 32) | (uint64_t)i;
  qsort(ref, (size_t)n, sizeof *ref, cmp_u64);
  const uint64_t *s = vr_reg_sort_pairs_f32(x, n, work);
  for (int64_t i = 0; i < n; i++) {
    ck_assert_msg(s[i] == ref[i], "%s (n = %lld): word %lld differs", what, (long long)n, (long long)i);
    float v = vr_reg_key_value_f32(s[i]), want = x[(uint32_t)s[i]];
    ck_assert_msg(!memcmp(&v, &want, 4), "%s: value %lld does not decode", what, (long long)i);
  }
  vr_reg_argsort_f32(x, n, perm, work, iw);
  for (int64_t i = 0; i < n; i++) ck_assert_msg(perm[i] == (uint32_t)ref[i], "%s: perm %lld", what, (long long)i);
  free(work);
  free(ref);
  free(perm);
  free(iw);
}

static uint64_t lcg(uint64_t *s) {
  *s = *s * 6364136223846793005ull + 1442695040888963407ull;
  return *s >> 11;
}
static double unif(uint64_t *s) { return ((double)lcg(s) + 0.5) / 9007199254740992.0; }

START_TEST(sort_matches_a_comparison_sort) {
  int64_t sizes[] = {1, 2, 31, 32, 33, 63, 64, 100, 129, 255, 256, 257, 512, 513, 1024, 4096, 70000};
  uint64_t st = 12345;
  for (size_t t = 0; t < sizeof sizes / sizeof *sizes; t++) {
    int64_t n = sizes[t];
    float *x = malloc(sizeof(float) * (size_t)n);
    /* near Gaussian, as the projections */
    for (int64_t i = 0; i < n; i++) x[i] = (float)(sqrt(-2 * log(unif(&st))) * cos(6.283185307179586 * unif(&st)));
    check_sort(x, n, "gaussian");
    /* many ties and signed zeros */
    for (int64_t i = 0; i < n; i++) x[i] = (float)((int)(lcg(&st) % 7) - 3) * 0.5f;
    for (int64_t i = 0; i < n; i += 5) x[i] = (i / 5) % 2 ? -0.0f : 0.0f;
    check_sort(x, n, "ties");
    /* all equal */
    for (int64_t i = 0; i < n; i++) x[i] = 1.5f;
    check_sort(x, n, "equal");
    /* one far outlier: every other value shares one prefix (the budget, then the radix sort) */
    for (int64_t i = 0; i < n; i++) x[i] = (float)unif(&st);
    x[n / 2] = 1e30f;
    check_sort(x, n, "outlier");
    /* values close together, differing in their last bits only */
    for (int64_t i = 0; i < n; i++) x[i] = 1.0f + (float)(lcg(&st) % 1000) * 1.1920929e-7f;
    check_sort(x, n, "close");
    /* infinities and a NaN-free overflow range */
    for (int64_t i = 0; i < n; i++) x[i] = (float)(unif(&st) - 0.5);
    if (n > 3) {
      x[1] = INFINITY;
      x[2] = -INFINITY;
    }
    check_sort(x, n, "infinite");
    /* NaNs sort by their bits like any key */
    for (int64_t i = 0; i < n; i++) x[i] = (float)(unif(&st) - 0.5);
    x[n / 3] = NAN;
    x[n - 1] = -NAN;
    check_sort(x, n, "nan");
    /* neighbours one ulp apart in the reverse of index order (same 24-bit prefix: the network's
     * fix-up pass orders them) */
    for (int64_t i = 0; i < n; i++) x[i] = (float)(sqrt(-2 * log(unif(&st))) * cos(6.283185307179586 * unif(&st)));
    for (int64_t i = 0; i + 1 < n; i += 9) x[i] = nextafterf(x[i + 1], INFINITY);
    check_sort(x, n, "near pairs");
    free(x);
  }
}
END_TEST

static Suite *reg_sort_suite(void) {
  Suite *s = suite_create("reg_sort");
  TCase *tc = tcase_create("reg_sort");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, sort_matches_a_comparison_sort);
  suite_add_tcase(s, tc);
  return s;
}

VR_TEST_MAIN(reg_sort_suite)
