/* test_autocast.c: bf16 mixed precision on the CPU: the f32 <-> bf16 casts (round to nearest
 * even, NaN kept), the bf16 matmul and conv2d kernels (f32 accumulation, one rounding), and the
 * autocast switch (vr_autocast_set) on vr_matmul, vr_linear and vr_conv2d: result dtypes, f32
 * gradients for f32 leaves, values against an f64 computation on the bf16-rounded operands (to
 * one bf16 rounding plus f32 accumulation error) and against the plain f32 result (~1e-2).
 * A gradcheck is not meaningful in bf16; the f64 reference on rounded operands replaces it. */
#include "testutil.h"
#include "../core/internal.h"

#define SH(...) ((const int64_t[]){__VA_ARGS__})

static vr_tensor *cast(const vr_tensor *t, vr_dtype dt) {
  vr_tensor *o = NULL;
  OK(vr_tensor_to_dtype(t, dt, &o));
  return o;
}
/* t rounded to bf16, as an f64 tensor */
static vr_tensor *rounded64(const vr_tensor *t) {
  int prev = vr_set_grad_enabled(0); /* a fresh leaf, not a view of t's graph */
  vr_tensor *b = cast(t, VR_BF16), *d = cast(b, VR_F64);
  vr_set_grad_enabled(prev);
  vr_tensor_free(b);
  return d;
}
static vr_tensor *leaf(vr_tensor *t) {
  OK(vr_tensor_set_requires_grad(t, 1));
  return t;
}
static vr_tensor *grad(const vr_tensor *t) {
  vr_tensor *g = vr_tensor_grad(t);
  ck_assert_msg(g != NULL, "no gradient");
  return g;
}

/* every element of got (f32) is a bf16 value and within one bf16 rounding (2^-8 relative) plus
 * f32 accumulation error (1e-5 of the largest |ref|) of the f64 reference */
static void assert_bf16_near(const vr_tensor *got, const vr_tensor *ref, double abs_frac, int bf16_values,
                             const char *what) {
  int64_t n = vr_tensor_numel(ref);
  ck_assert_msg(vr_tensor_numel(got) == n, "%s: numel %lld vs %lld", what, (long long)vr_tensor_numel(got), (long long)n);
  double *x = tu_values(got), *r = tu_values(ref), big = 0;
  for (int64_t k = 0; k < n; k++) big = fmax(big, fabs(r[k]));
  for (int64_t k = 0; k < n; k++) {
    float f = (float)x[k];
    ck_assert_msg(!bf16_values || vr_bf16_to_f32(vr_f32_to_bf16(f)) == f, "%s: element %lld = %.9g is not a bf16 value", what,
                  (long long)k, x[k]);
    double tol = ldexp(fabs(r[k]), -8) + abs_frac * big;
    ck_assert_msg(fabs(x[k] - r[k]) <= tol, "%s: element %lld: %.9g vs reference %.9g (tol %.3g)", what, (long long)k,
                  x[k], r[k], tol);
  }
  free(x);
  free(r);
}

static void assert_bf16_close(const vr_tensor *got, const vr_tensor *ref, const char *what) {
  assert_bf16_near(got, ref, 1e-5, 1, what);
}

/* ||got - ref|| <= rel ||ref|| */
static void assert_norm_close(const vr_tensor *got, const vr_tensor *ref, double rel, const char *what) {
  int64_t n = vr_tensor_numel(ref);
  double *x = tu_values(got), *r = tu_values(ref), d = 0, s = 0;
  for (int64_t k = 0; k < n; k++) {
    d += (x[k] - r[k]) * (x[k] - r[k]);
    s += r[k] * r[k];
  }
  ck_assert_msg(sqrt(d) <= rel * sqrt(s), "%s: relative error %.3g > %.3g", what, sqrt(d / (s ? s : 1)), rel);
  ck_assert_msg(sqrt(d) > 0 || n == 0 || s == 0, "%s: identical to f32: was bf16 used at all?", what);
  free(x);
  free(r);
}

/* sum(y * w): a scalar whose gradient with respect to y is w */
static vr_tensor *weighted_sum(const vr_tensor *y, const vr_tensor *w) {
  vr_tensor *p = NULL, *s = NULL;
  OK(vr_mul(y, w, &p));
  OK(vr_sum(p, 0, NULL, 0, &s));
  vr_tensor_free(p);
  return s;
}

/* ---------------------------------------------------------------- the switch */

START_TEST(test_autocast_switch) {
  ck_assert_int_eq(vr_autocast_get(), VR_F32);
  OK(vr_autocast_set(VR_BF16));
  ck_assert_int_eq(vr_autocast_get(), VR_BF16);
  FAILS(vr_autocast_set(VR_F64), VR_E_DTYPE, "dtype: expected f32 (off) or bf16, got f64");
  FAILS(vr_autocast_set((vr_dtype)42), VR_E_DTYPE, "dtype");
  ck_assert_int_eq(vr_autocast_get(), VR_BF16);
  OK(vr_autocast_set(VR_F32));
  ck_assert_int_eq(vr_autocast_get(), VR_F32);
}
END_TEST

/* ---------------------------------------------------------------- casts */

START_TEST(test_bf16_casts) {
  /* ties go to even; bf16 has 8 significant bits, so 1 + 2^-8 is half an ulp above 1 */
  const float in[] = {1.0f + 0x1p-8f, 1.0f + 3 * 0x1p-8f, -(1.0f + 0x1p-8f), 1.0f + 0x1p-8f + 0x1p-20f, 0x1.fffffep127f,
                      INFINITY, -INFINITY, 0.0f, -0.0f, 1e-40f};
  const float want[] = {1.0f, 1.0f + 0x1p-6f, -1.0f, 1.0f + 0x1p-7f, INFINITY, INFINITY, -INFINITY, 0.0f, -0.0f, 0};
  int n = (int)(sizeof in / sizeof *in);
  vr_tensor *t = NULL;
  OK(vr_tensor_from_buffer(in, 1, SH(n), VR_F32, VR_CPU, &t));
  vr_tensor *b = cast(t, VR_BF16), *back = cast(b, VR_F32);
  const float *o = vr_tensor_data(back);
  for (int k = 0; k < n - 1; k++)
    ck_assert_msg(o[k] == want[k] && signbit(o[k]) == signbit(want[k]), "element %d: %a -> %a, want %a", k, in[k], o[k],
                  want[k]);
  /* subnormals keep their top 16 bits too: 1e-40 = 0x000116c2 rounds down to 0x0001 = 2^-133 */
  ck_assert_msg(o[n - 1] == 0x1p-133f, "subnormal: %a", o[n - 1]);
  /* the generic path (vr_load/vr_store) agrees with the fast copy */
  for (int k = 0; k < n; k++) {
    uint16_t h = 0;
    vr_store(&h, VR_BF16, in[k]);
    ck_assert_uint_eq(h, ((const uint16_t *)vr_tensor_data(b))[k]);
  }
  /* NaNs stay NaN, whatever their payload (a plain increment would carry 0x7fffffff into -0) */
  uint32_t nans[3] = {0x7fffffffu, 0xffffffffu, 0x7f800001u};
  for (int k = 0; k < 3; k++) {
    float f;
    memcpy(&f, &nans[k], 4);
    ck_assert_msg(isnan(vr_bf16_to_f32(vr_f32_to_bf16(f))), "NaN %08x lost", nans[k]);
    uint16_t h = 0;
    vr_store(&h, VR_BF16, f);
    ck_assert_msg(isnan(vr_load(&h, VR_BF16)), "vr_store NaN %08x lost", nans[k]);
  }
  vr_tensor *tn = NULL, *bn = NULL;
  float fn;
  memcpy(&fn, &nans[0], 4);
  OK(vr_tensor_from_buffer(&fn, 1, SH(1), VR_F32, VR_CPU, &tn));
  bn = cast(tn, VR_BF16);
  ck_assert(isnan(tu_item(bn)));
  vr_tensor *objs[] = {t, b, back, tn, bn};
  for (size_t k = 0; k < sizeof objs / sizeof *objs; k++) vr_tensor_free(objs[k]);
}
END_TEST

/* ---------------------------------------------------------------- bf16 kernels without autocast */

START_TEST(test_bf16_matmul_kernel) {
  /* plain, transposed operand, batched with a broadcast operand, vector, k = 0 */
  struct { int na, nb; int64_t sa[3], sb[3]; int ta; } cs[] = {
      {2, 2, {7, 33}, {33, 5}, 0}, {2, 2, {7, 33}, {33, 5}, 1}, {3, 2, {3, 4, 9}, {9, 6}, 0},
      {3, 3, {2, 4, 9}, {1, 9, 6}, 0}, {1, 2, {9}, {9, 4}, 0}, {2, 2, {3, 0}, {0, 4}, 0}};
  for (size_t c = 0; c < sizeof cs / sizeof *cs; c++) {
    vr_tensor *a = tu_rand(VR_F32, cs[c].na, cs[c].sa, 10 + c), *b = tu_rand(VR_F32, cs[c].nb, cs[c].sb, 20 + c);
    if (cs[c].ta) { /* a stored transposed: a view of a [k, m] tensor */
      vr_tensor *s = tu_rand(VR_F32, 2, SH(cs[c].sa[1], cs[c].sa[0]), 30 + c);
      vr_tensor_free(a);
      OK(vr_transpose(s, 0, 1, &a));
      vr_tensor_free(s);
    }
    vr_tensor *ab = cast(a, VR_BF16), *bb = cast(b, VR_BF16), *y = NULL, *a64 = rounded64(a), *b64 = rounded64(b),
              *r = NULL;
    OK(vr_matmul(ab, bb, &y));
    ck_assert_int_eq(vr_tensor_dtype(y), VR_BF16);
    OK(vr_matmul(a64, b64, &r));
    char what[64];
    snprintf(what, sizeof what, "bf16 matmul case %zu", c);
    assert_bf16_close(y, r, what);
    vr_tensor *objs[] = {a, b, ab, bb, y, a64, b64, r};
    for (size_t k = 0; k < sizeof objs / sizeof *objs; k++) vr_tensor_free(objs[k]);
  }
}
END_TEST

START_TEST(test_bf16_conv_kernel) {
  /* {N, C, H, W, Co, kh, kw, stride, pad, dil, groups, bias} */
  static const int g[][12] = {{2, 3, 7, 6, 4, 3, 3, 1, 1, 1, 1, 1}, {3, 4, 9, 9, 6, 3, 3, 2, 1, 2, 2, 0},
                              {2, 8, 5, 5, 8, 1, 1, 1, 0, 1, 1, 1}};
  for (size_t c = 0; c < sizeof g / sizeof *g; c++) {
    const int *q = g[c];
    vr_tensor *x = tu_rand(VR_F32, 4, SH(q[0], q[1], q[2], q[3]), 40 + c);
    vr_tensor *w = tu_rand(VR_F32, 4, SH(q[4], q[1] / q[10], q[5], q[6]), 50 + c);
    vr_tensor *b = q[11] ? tu_rand(VR_F32, 1, SH(q[4]), 60 + c) : NULL;
    vr_tensor *xb = leaf(cast(x, VR_BF16)), *wb = leaf(cast(w, VR_BF16)), *bb = b ? leaf(cast(b, VR_BF16)) : NULL;
    vr_tensor *x64 = leaf(rounded64(x)), *w64 = leaf(rounded64(w)), *b64 = b ? leaf(rounded64(b)) : NULL;
    vr_tensor *y = NULL, *r = NULL;
    OK(vr_conv2d(xb, wb, bb, q[7], q[7], q[8], q[8], q[9], q[9], q[10], &y));
    OK(vr_conv2d(x64, w64, b64, q[7], q[7], q[8], q[8], q[9], q[9], q[10], &r));
    ck_assert_int_eq(vr_tensor_dtype(y), VR_BF16);
    char what[64];
    snprintf(what, sizeof what, "bf16 conv2d case %zu", c);
    assert_bf16_close(y, r, what);
    /* backward with a bf16 upstream gradient: the f64 reference sees the same rounded values */
    int64_t ys[4];
    for (int d = 0; d < 4; d++) ys[d] = vr_tensor_size(y, d);
    /* sum(f64(y) * u64): the upstream gradient of y is u64 cast to bf16, exactly u's rounding */
    vr_tensor *u = tu_rand(VR_F32, 4, ys, 70 + c), *ub = cast(y, VR_F64), *u64 = rounded64(u);
    vr_tensor *s = weighted_sum(ub, u64), *s64 = weighted_sum(r, u64);
    OK(vr_backward(s, NULL, 0));
    OK(vr_backward(s64, NULL, 0));
    vr_tensor *ls[3] = {xb, wb, bb}, *ls64[3] = {x64, w64, b64};
    for (int k = 0; k < 3; k++) {
      if (!ls[k]) continue;
      vr_tensor *gk = grad(ls[k]), *g64 = grad(ls64[k]);
      ck_assert_int_eq(vr_tensor_dtype(gk), VR_BF16);
      snprintf(what, sizeof what, "bf16 conv2d case %zu grad %d", c, k);
      assert_bf16_close(gk, g64, what);
      vr_tensor_free(gk);
      vr_tensor_free(g64);
    }
    vr_tensor *objs[] = {x, w, b, xb, wb, bb, x64, w64, b64, y, r, u, ub, u64, s, s64};
    for (size_t k = 0; k < sizeof objs / sizeof *objs; k++) vr_tensor_free(objs[k]);
  }
}
END_TEST

/* ---------------------------------------------------------------- autocast */

START_TEST(test_autocast_matmul) {
  vr_tensor *a = leaf(tu_rand(VR_F32, 2, SH(6, 40), 1)), *b = leaf(tu_rand(VR_F32, 2, SH(40, 5), 2));
  vr_tensor *a32 = leaf(tu_rand(VR_F32, 2, SH(6, 40), 1)), *b32 = leaf(tu_rand(VR_F32, 2, SH(40, 5), 2));
  vr_tensor *a64 = leaf(rounded64(a)), *b64 = leaf(rounded64(b));
  vr_tensor *u = tu_rand(VR_F32, 2, SH(6, 5), 3), *u64 = rounded64(u);
  vr_tensor *y = NULL, *y32 = NULL, *r = NULL;
  OK(vr_autocast_set(VR_BF16));
  OK(vr_matmul(a, b, &y));
  OK(vr_autocast_set(VR_F32));
  OK(vr_matmul(a32, b32, &y32));
  OK(vr_matmul(a64, b64, &r));
  ck_assert_int_eq(vr_tensor_dtype(y), VR_F32);
  ck_assert_str_eq(vr_tensor_grad_fn_name(y), "tensor_to_dtype");
  assert_bf16_close(y, r, "autocast matmul");
  assert_norm_close(y, y32, 1e-2, "autocast matmul vs f32");
  /* backward: the f32 upstream gradient is rounded to bf16 by the output cast's backward */
  vr_tensor *s = weighted_sum(y, u), *s32 = weighted_sum(y32, u), *s64 = weighted_sum(r, u64);
  OK(vr_backward(s, NULL, 0));
  OK(vr_backward(s32, NULL, 0));
  OK(vr_backward(s64, NULL, 0));
  vr_tensor *ga = grad(a), *gb = grad(b), *ga32 = grad(a32), *gb32 = grad(b32), *ga64 = grad(a64), *gb64 = grad(b64);
  ck_assert_int_eq(vr_tensor_dtype(ga), VR_F32);
  ck_assert_int_eq(vr_tensor_dtype(gb), VR_F32);
  assert_bf16_close(ga, ga64, "autocast matmul grad a");
  assert_bf16_close(gb, gb64, "autocast matmul grad b");
  assert_norm_close(ga, ga32, 1e-2, "autocast matmul grad a vs f32");
  assert_norm_close(gb, gb32, 1e-2, "autocast matmul grad b vs f32");
  vr_tensor *objs[] = {a, b, a32, b32, a64, b64, u, u64, y, y32, r, s, s32, s64, ga, gb, ga32, gb32, ga64, gb64};
  for (size_t k = 0; k < sizeof objs / sizeof *objs; k++) vr_tensor_free(objs[k]);
}
END_TEST

/* batched with a broadcast operand, a vector, a transposed view and mixed f32/bf16 operands */
START_TEST(test_autocast_matmul_shapes) {
  struct { int na, nb; int64_t sa[3], sb[3]; } cs[] = {{3, 2, {2, 3, 17}, {17, 4}}, {3, 3, {2, 3, 17}, {1, 17, 4}},
                                                      {1, 2, {17}, {17, 4}}, {2, 1, {3, 17}, {17}}};
  for (size_t c = 0; c < sizeof cs / sizeof *cs; c++) {
    vr_tensor *a = leaf(tu_rand(VR_F32, cs[c].na, cs[c].sa, 80 + c)), *b = leaf(tu_rand(VR_F32, cs[c].nb, cs[c].sb, 90 + c));
    vr_tensor *a64 = leaf(rounded64(a)), *b64 = leaf(rounded64(b)), *y = NULL, *r = NULL;
    OK(vr_autocast_set(VR_BF16));
    OK(vr_matmul(a, b, &y));
    OK(vr_autocast_set(VR_F32));
    OK(vr_matmul(a64, b64, &r));
    ck_assert_int_eq(vr_tensor_dtype(y), VR_F32);
    ck_assert_int_eq(vr_tensor_ndim(y), vr_tensor_ndim(r));
    char what[64];
    snprintf(what, sizeof what, "autocast matmul shape case %zu", c);
    assert_bf16_close(y, r, what);
    vr_tensor *s = NULL, *s64 = NULL;
    OK(vr_sum(y, 0, NULL, 0, &s));
    OK(vr_sum(r, 0, NULL, 0, &s64));
    OK(vr_backward(s, NULL, 0));
    OK(vr_backward(s64, NULL, 0));
    vr_tensor *ga = grad(a), *gb = grad(b), *ga64 = grad(a64), *gb64 = grad(b64);
    ck_assert_int_eq(vr_tensor_dtype(ga), VR_F32);
    ck_assert_int_eq(vr_tensor_dtype(gb), VR_F32);
    assert_bf16_close(ga, ga64, what);
    /* case 1 sums b's gradient over the broadcast batch in bf16: two roundings of larger partials */
    assert_bf16_near(gb, gb64, c == 1 ? 0x1p-7 : 1e-5, 1, what);
    vr_tensor *objs[] = {a, b, a64, b64, y, r, s, s64, ga, gb, ga64, gb64};
    for (size_t k = 0; k < sizeof objs / sizeof *objs; k++) vr_tensor_free(objs[k]);
  }
  /* a transposed view, and an f32 operand beside a bf16 one: both cast, result f32 */
  vr_tensor *s = tu_rand(VR_F32, 2, SH(9, 4), 100), *t = NULL, *bb = NULL, *bf = tu_rand(VR_F32, 2, SH(9, 3), 101);
  OK(vr_transpose(s, 0, 1, &t));
  bb = cast(bf, VR_BF16);
  vr_tensor *y = NULL, *r = NULL, *t64 = rounded64(t), *b64 = rounded64(bf);
  OK(vr_autocast_set(VR_BF16));
  OK(vr_matmul(t, bb, &y));
  OK(vr_autocast_set(VR_F32));
  OK(vr_matmul(t64, b64, &r));
  ck_assert_int_eq(vr_tensor_dtype(y), VR_F32);
  assert_bf16_close(y, r, "autocast matmul mixed");
  /* without autocast the mixed pair is an error naming b */
  vr_tensor *z = NULL;
  FAILS(vr_matmul(t, bb, &z), VR_E_DTYPE, "b: expected f32 like a, got bf16");
  /* f64 is not autocast */
  vr_tensor *p = NULL;
  OK(vr_autocast_set(VR_BF16));
  OK(vr_matmul(t64, b64, &p));
  OK(vr_autocast_set(VR_F32));
  ck_assert_int_eq(vr_tensor_dtype(p), VR_F64);
  tu_assert_close(p, r, 0, 0, "f64 under autocast");
  vr_tensor *objs[] = {s, t, bb, bf, y, r, t64, b64, p};
  for (size_t k = 0; k < sizeof objs / sizeof *objs; k++) vr_tensor_free(objs[k]);
}
END_TEST

START_TEST(test_autocast_linear) {
  vr_tensor *x = leaf(tu_rand(VR_F32, 2, SH(8, 24), 110)), *w = leaf(tu_rand(VR_F32, 2, SH(5, 24), 111));
  vr_tensor *b = leaf(tu_rand(VR_F32, 1, SH(5), 112));
  vr_tensor *x64 = leaf(rounded64(x)), *w64 = leaf(rounded64(w)), *b64 = NULL, *y = NULL, *r = NULL, *m = NULL;
  vr_tensor *bd = NULL;
  OK(vr_detach(b, &bd));
  OK(vr_tensor_to_dtype(bd, VR_F64, &b64));
  vr_tensor_free(bd);
  OK(vr_tensor_set_requires_grad(b64, 1));
  OK(vr_autocast_set(VR_BF16));
  OK(vr_linear(x, w, b, &y));
  OK(vr_autocast_set(VR_F32));
  OK(vr_linear(x64, w64, b64, &r));
  ck_assert_int_eq(vr_tensor_dtype(y), VR_F32);
  /* the bias is added in f32 after the cast: y - b is the bf16 product, up to the f32 addition */
  OK(vr_sub(y, b, &m));
  vr_tensor *r0 = NULL;
  OK(vr_sub(r, b64, &r0));
  assert_bf16_near(m, r0, 1e-5, 0, "autocast linear (product)");
  vr_tensor *s = NULL, *s64 = NULL;
  OK(vr_sum(y, 0, NULL, 0, &s));
  OK(vr_sum(r, 0, NULL, 0, &s64));
  OK(vr_backward(s, NULL, 0));
  OK(vr_backward(s64, NULL, 0));
  vr_tensor *gx = grad(x), *gw = grad(w), *gb = grad(b), *gx64 = grad(x64), *gw64 = grad(w64), *gb64 = grad(b64);
  ck_assert_int_eq(vr_tensor_dtype(gx), VR_F32);
  ck_assert_int_eq(vr_tensor_dtype(gw), VR_F32);
  ck_assert_int_eq(vr_tensor_dtype(gb), VR_F32);
  assert_bf16_close(gx, gx64, "autocast linear grad x");
  assert_bf16_close(gw, gw64, "autocast linear grad w");
  tu_assert_close(gb, gb64, 0, 0, "autocast linear grad b (f32, exact)");
  /* a bf16 bias is refused under autocast: the output is f32 */
  vr_tensor *bb = cast(b, VR_BF16), *z = NULL;
  OK(vr_autocast_set(VR_BF16));
  FAILS(vr_linear(x, w, bb, &z), VR_E_DTYPE, "bias: expected f32 like the output (f32 under autocast), got bf16");
  OK(vr_autocast_set(VR_F32));
  vr_tensor *objs[] = {x, w, b, x64, w64, b64, y, r, m, r0, s, s64, gx, gw, gb, gx64, gw64, gb64, bb};
  for (size_t k = 0; k < sizeof objs / sizeof *objs; k++) vr_tensor_free(objs[k]);
}
END_TEST

START_TEST(test_autocast_conv2d) {
  vr_tensor *x = leaf(tu_rand(VR_F32, 4, SH(2, 3, 8, 7), 120)), *w = leaf(tu_rand(VR_F32, 4, SH(4, 3, 3, 3), 121));
  vr_tensor *b = leaf(tu_rand(VR_F32, 1, SH(4), 122));
  vr_tensor *x32 = leaf(tu_rand(VR_F32, 4, SH(2, 3, 8, 7), 120)), *w32 = leaf(tu_rand(VR_F32, 4, SH(4, 3, 3, 3), 121));
  vr_tensor *b32 = leaf(tu_rand(VR_F32, 1, SH(4), 122));
  vr_tensor *x64 = leaf(rounded64(x)), *w64 = leaf(rounded64(w)), *b64 = leaf(rounded64(b));
  vr_tensor *y = NULL, *y32 = NULL, *r = NULL;
  OK(vr_autocast_set(VR_BF16));
  OK(vr_conv2d(x, w, b, 2, 1, 1, 1, 1, 1, 1, &y));
  OK(vr_autocast_set(VR_F32));
  OK(vr_conv2d(x32, w32, b32, 2, 1, 1, 1, 1, 1, 1, &y32));
  OK(vr_conv2d(x64, w64, b64, 2, 1, 1, 1, 1, 1, 1, &r));
  /* conv2d keeps its autocast result in bf16 (as PyTorch); widened here for the f32 checks */
  ck_assert_int_eq(vr_tensor_dtype(y), VR_BF16);
  vr_tensor *yb = y;
  y = NULL;
  OK(vr_tensor_to_dtype(yb, VR_F32, &y));
  vr_tensor_free(yb);
  assert_bf16_close(y, r, "autocast conv2d");
  assert_norm_close(y, y32, 1e-2, "autocast conv2d vs f32");
  int64_t ys[4];
  for (int d = 0; d < 4; d++) ys[d] = vr_tensor_size(y, d);
  vr_tensor *u = tu_rand(VR_F32, 4, ys, 123), *u64 = rounded64(u);
  vr_tensor *s = weighted_sum(y, u), *s32 = weighted_sum(y32, u), *s64 = weighted_sum(r, u64);
  OK(vr_backward(s, NULL, 0));
  OK(vr_backward(s32, NULL, 0));
  OK(vr_backward(s64, NULL, 0));
  vr_tensor *ls[3] = {x, w, b}, *ls32[3] = {x32, w32, b32}, *ls64[3] = {x64, w64, b64};
  for (int k = 0; k < 3; k++) {
    vr_tensor *g = grad(ls[k]), *g32 = grad(ls32[k]), *g64 = grad(ls64[k]);
    char what[64];
    snprintf(what, sizeof what, "autocast conv2d grad %d", k);
    ck_assert_int_eq(vr_tensor_dtype(g), VR_F32);
    assert_bf16_close(g, g64, what);
    assert_norm_close(g, g32, 1e-2, what);
    vr_tensor_free(g);
    vr_tensor_free(g32);
    vr_tensor_free(g64);
  }
  vr_tensor *objs[] = {x, w, b, x32, w32, b32, x64, w64, b64, y, y32, r, u, u64, s, s32, s64};
  for (size_t k = 0; k < sizeof objs / sizeof *objs; k++) vr_tensor_free(objs[k]);
}
END_TEST

/* grad mode off: still autocast; autocast off: f32 exactly; backward ignores the switch */
START_TEST(test_autocast_modes) {
  vr_tensor *a = leaf(tu_rand(VR_F32, 2, SH(4, 30), 130)), *b = leaf(tu_rand(VR_F32, 2, SH(30, 3), 131));
  vr_tensor *y = NULL, *yp = NULL, *ya = NULL;
  int prev = vr_set_grad_enabled(0);
  OK(vr_autocast_set(VR_BF16));
  OK(vr_matmul(a, b, &ya));
  OK(vr_autocast_set(VR_F32));
  vr_set_grad_enabled(prev);
  ck_assert_int_eq(vr_tensor_dtype(ya), VR_F32);
  ck_assert_int_eq(vr_tensor_requires_grad(ya), 0);
  double *v = tu_values(ya);
  for (int k = 0; k < 12; k++) ck_assert((double)vr_bf16_to_f32(vr_f32_to_bf16((float)v[k])) == v[k]);
  free(v);
  /* an f32 graph recorded with autocast off, its backward run with autocast on: plain f32 */
  OK(vr_matmul(a, b, &y));
  vr_tensor *ad = NULL, *bd = NULL;
  OK(vr_detach(a, &ad));
  OK(vr_detach(b, &bd));
  OK(vr_matmul(ad, bd, &yp));
  tu_assert_close(y, yp, 0, 0, "autocast off");
  ck_assert_str_eq(vr_tensor_grad_fn_name(y), "matmul");
  vr_tensor *s = NULL;
  OK(vr_sum(y, 0, NULL, 0, &s));
  OK(vr_autocast_set(VR_BF16));
  OK(vr_backward(s, NULL, 0));
  ck_assert_int_eq(vr_autocast_get(), VR_BF16); /* restored by the backward */
  OK(vr_autocast_set(VR_F32));
  vr_tensor *ga = grad(a), *ones = NULL, *bt = NULL, *ref = NULL;
  OK(vr_tensor_ones(2, SH(4, 3), VR_F32, VR_CPU, &ones));
  OK(vr_transpose(bd, 0, 1, &bt));
  OK(vr_matmul(ones, bt, &ref));
  tu_assert_close(ga, ref, 0, 0, "f32 backward under autocast");
  vr_tensor *objs[] = {a, b, y, yp, ya, ad, bd, s, ga, ones, bt, ref};
  for (size_t k = 0; k < sizeof objs / sizeof *objs; k++) vr_tensor_free(objs[k]);
}
END_TEST

/* ---------------------------------------------------------------- bf16 activations */

/* a residual block as the ResNet recipe runs it: conv -> batch norm -> relu, + the block input,
 * pooled, a linear head; under autocast the activations stay bf16 up to the head, batch norm keeps
 * f32 parameters and running statistics; the f32 leaves get f32 gradients close to the f32 run */
static vr_tensor *block_loss(vr_tensor *const *p, vr_tensor *rm, vr_tensor *rv, int autocast, vr_dtype *dts) {
  vr_tensor *c = NULL, *n = NULL, *r = NULL, *xin = NULL, *a = NULL, *pl = NULL, *f = NULL, *z = NULL, *zf = NULL;
  OK(vr_autocast_set(autocast ? VR_BF16 : VR_F32));
  if (autocast) OK(vr_tensor_to_dtype(p[0], VR_BF16, &xin)); /* the block input: an earlier block's bf16 output */
  else {
    xin = p[0];
    vr_tensor_retain(xin);
  }
  OK(vr_conv2d(xin, p[1], NULL, 1, 1, 1, 1, 1, 1, 1, &c));
  OK(vr_batch_norm(c, p[2], p[3], rm, rv, 1, 0.1, 1e-5, &n));
  OK(vr_relu(n, &r));
  OK(vr_add(r, xin, &a));
  OK(vr_adaptive_avg_pool2d(a, 1, 1, &pl));
  OK(vr_flatten(pl, 1, -1, &f));
  OK(vr_linear(f, p[4], NULL, &z));
  OK(vr_autocast_set(VR_F32));
  dts[0] = vr_tensor_dtype(c), dts[1] = vr_tensor_dtype(n), dts[2] = vr_tensor_dtype(a), dts[3] = vr_tensor_dtype(z);
  vr_tensor *u = tu_rand(VR_F32, 2, SH(vr_tensor_size(z, 0), vr_tensor_size(z, 1)), 131);
  vr_tensor *l = weighted_sum(z, u);
  vr_tensor *objs[] = {c, n, r, xin, a, pl, f, z, zf, u};
  for (size_t k = 0; k < sizeof objs / sizeof *objs; k++) vr_tensor_free(objs[k]);
  return l;
}

START_TEST(test_autocast_bf16_activations) {
  vr_tensor *p[2][5], *rm[2], *rv[2];
  const int64_t *shapes[5] = {SH(4, 6, 5, 5), SH(6, 6, 3, 3), SH(6), SH(6), SH(3, 6)};
  const int nd[5] = {4, 4, 1, 1, 2};
  for (int run = 0; run < 2; run++) {
    for (int k = 0; k < 5; k++) p[run][k] = leaf(tu_rand(VR_F32, nd[k], shapes[k], 140 + (uint64_t)k));
    OK(vr_tensor_zeros(1, SH(6), VR_F32, VR_CPU, &rm[run]));
    OK(vr_tensor_ones(1, SH(6), VR_F32, VR_CPU, &rv[run]));
  }
  vr_dtype d16[4], d32[4];
  vr_tensor *l16 = block_loss(p[0], rm[0], rv[0], 1, d16), *l32 = block_loss(p[1], rm[1], rv[1], 0, d32);
  ck_assert_int_eq(d16[0], VR_BF16); /* conv */
  ck_assert_int_eq(d16[1], VR_BF16); /* batch norm */
  ck_assert_int_eq(d16[2], VR_BF16); /* relu + residual */
  ck_assert_int_eq(d16[3], VR_F32);  /* linear: f32 out */
  for (int k = 0; k < 4; k++) ck_assert_int_eq(d32[k], VR_F32);
  assert_norm_close(rm[0], rm[1], 2e-2, "running mean under autocast");
  assert_norm_close(rv[0], rv[1], 2e-2, "running var under autocast");
  assert_norm_close(l16, l32, 3e-2, "block loss");
  OK(vr_backward(l16, NULL, 0));
  OK(vr_backward(l32, NULL, 0));
  const char *names[5] = {"x", "conv weight", "bn weight", "bn bias", "linear weight"};
  for (int k = 0; k < 5; k++) {
    vr_tensor *g16 = grad(p[0][k]), *g32 = grad(p[1][k]);
    char what[64];
    snprintf(what, sizeof what, "autocast block grad of %s", names[k]);
    ck_assert_msg(vr_tensor_dtype(g16) == VR_F32, "%s: dtype %s", what, vr_dtype_name(vr_tensor_dtype(g16)));
    assert_norm_close(g16, g32, 5e-2, what);
    vr_tensor_free(g16);
    vr_tensor_free(g32);
  }
  for (int run = 0; run < 2; run++) {
    for (int k = 0; k < 5; k++) vr_tensor_free(p[run][k]);
    vr_tensor_free(rm[run]);
    vr_tensor_free(rv[run]);
  }
  vr_tensor_free(l16);
  vr_tensor_free(l32);
}
END_TEST

/* bf16 meeting f32: widened to f32 under autocast (add, concat), an error outside it */
START_TEST(test_autocast_widens_mixed_dtypes) {
  vr_tensor *a = tu_rand(VR_F32, 2, SH(3, 4), 150), *b = tu_rand(VR_F32, 2, SH(3, 4), 151);
  vr_tensor *ab = cast(a, VR_BF16), *y = NULL, *r = NULL, *ref = NULL, *a32 = cast(ab, VR_F32);
  FAILS(vr_add(ab, b, &y), VR_E_DTYPE, "no implicit promotion");
  OK(vr_autocast_set(VR_BF16));
  OK(vr_add(ab, b, &y));
  vr_tensor *xs[2] = {ab, b};
  OK(vr_concat(2, xs, 0, &r));
  OK(vr_autocast_set(VR_F32));
  ck_assert_int_eq(vr_tensor_dtype(y), VR_F32);
  ck_assert_int_eq(vr_tensor_dtype(r), VR_F32);
  OK(vr_add(a32, b, &ref));
  tu_assert_close(y, ref, 0, 0, "widened add"); /* the same f32 sum of the bf16-rounded a */
  ck_assert_int_eq(vr_tensor_size(r, 0), 6);
  vr_tensor *objs[] = {a, b, ab, y, r, ref, a32};
  for (size_t k = 0; k < sizeof objs / sizeof *objs; k++) vr_tensor_free(objs[k]);
}
END_TEST

static Suite *autocast_suite(void) {
  Suite *s = suite_create("autocast");
  TCase *tc = tcase_create("bf16");
  tcase_add_test(tc, test_autocast_switch);
  tcase_add_test(tc, test_bf16_casts);
  tcase_add_test(tc, test_bf16_matmul_kernel);
  tcase_add_test(tc, test_bf16_conv_kernel);
  tcase_add_test(tc, test_autocast_matmul);
  tcase_add_test(tc, test_autocast_matmul_shapes);
  tcase_add_test(tc, test_autocast_linear);
  tcase_add_test(tc, test_autocast_conv2d);
  tcase_add_test(tc, test_autocast_bf16_activations);
  tcase_add_test(tc, test_autocast_widens_mixed_dtypes);
  tcase_add_test(tc, test_autocast_modes);
  suite_add_tcase(s, tc);
  return s;
}

VR_TEST_MAIN(autocast_suite)
