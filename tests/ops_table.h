/* ops_table.h: the cases tests/test_ops.c drives on every backend. A case is one front-end call
 * (the public API, as a recipe reaches the op) on inputs drawn from a spec, the kernel-table op it
 * exercises, the dtypes it runs in, and the inputs whose gradient is checked.
 *
 * Input specs: IN(kind, layout, lo, hi, shape...). Kinds: R real values uniform in [lo, hi); W whole
 * numbers in [lo, hi) (ties); S real values with NaN, -0, +0, +-inf sprinkled; IX i64 (IX32 i32)
 * indices in [lo, hi); MK u8 0/1 mask; U8 u8 whole numbers. R, W and S take the case's dtype. Layouts: C
 * contiguous; T the transpose of a contiguous tensor (strided); B stride 0 along dim 0 (broadcast);
 * O one element into its buffer (misaligned).
 *
 * A new op adds its rows here; test_ops's coverage case fails while a registered kernel (forward,
 * or backward: then a row with a gradient small enough for finite differences) has no row. */
#ifndef VISREG_OPS_TABLE_H
#define VISREG_OPS_TABLE_H
#include "testutil.h"

enum { K_R, K_W, K_S, K_IX, K_IX32, K_MK, K_U8 };
enum { L_C, L_T, L_B, L_O };
typedef struct op_in {
  int kind, layout, ndim;
  int64_t shape[4];
  double lo, hi;
} op_in;

/* dtype sets */
#define D_(t) (1u << (t))
#define FL (D_(VR_F32) | D_(VR_F64))
#define FLB (FL | D_(VR_BF16))
#define INTS (D_(VR_I32) | D_(VR_I64) | D_(VR_U8))
#define ALL (FLB | INTS)
/* flags: EXACT devices agree bit for bit; NO_FD no finite differences (ties, kinks, detached
 * terms); NO_REF f32 is not compared with f64 (values that round or tie differently by design) */
#define EXACT 1u
#define NO_FD 2u
#define NO_REF 4u
#define NO_REF_BF16 8u /* bf16 is not compared with f64 (long sums rounded to bf16 at each step) */

typedef struct op_case {
  const char *name;
  vr_op op;
  unsigned dtypes;
  tu_fn fn;
  unsigned grad;  /* inputs whose gradient is checked (bit k: input k) */
  unsigned flags;
  double tol;     /* f32 tolerance (relative and absolute) against f64 and across devices; 0: 1e-4 */
  int n_in;
  op_in in[6];
} op_case;

/* the backend and dtype a case runs in (the ctx of its fn) */
typedef struct op_env {
  vr_device dev;
  vr_dtype dt;
} op_env;
#define ENV ((const op_env *)ctx)

#define NARG_(_1, _2, _3, _4, N, ...) N
#define NARG(...) NARG_(__VA_ARGS__, 4, 3, 2, 1)
#define IN(kind, layout, lo, hi, ...) {K_##kind, L_##layout, NARG(__VA_ARGS__), {__VA_ARGS__}, lo, hi}
#define G0 1u
#define G1 2u
#define G2 4u
#define G3 8u

#define FN(name, ...) \
  static vr_status name(vr_tensor *const *in, void *ctx, vr_tensor **out) { (void)in; (void)ctx; return __VA_ARGS__; }

#define BIG 1000003 /* not a multiple of any block */

/* ---- tensors from nothing ---- */
FN(f_copy, vr_contiguous(in[0], out))
FN(f_to_bf16, vr_tensor_to_dtype(in[0], VR_BF16, out))
FN(f_to_f32, vr_tensor_to_dtype(in[0], VR_F32, out))
FN(f_fill, vr_tensor_full(2, (const int64_t[]){129, 37}, 3.14159, ENV->dt, ENV->dev, out))
FN(f_arange, vr_tensor_arange(-7.25, -7.25 + 0.125 * BIG, 0.125, ENV->dt, ENV->dev, out))
FN(f_arange_whole, vr_tensor_arange(0, 200, 1, ENV->dt, ENV->dev, out))
static vr_status rand_draw(void *ctx, int normal, vr_tensor **out) {
  vr_generator *g = NULL;
  vr_status s = vr_generator_new(1234567, 3, &g);
  if (s) return s;
  int64_t n = BIG;
  s = normal ? vr_rand_normal(g, 1, &n, 1, 3, ENV->dt, ENV->dev, out)
             : vr_rand_uniform(g, 1, &n, -2, 5, ENV->dt, ENV->dev, out);
  vr_generator_free(g);
  return s;
}
FN(f_rand_uniform, rand_draw(ctx, 0, out))
FN(f_rand_normal, rand_draw(ctx, 1, out))

/* ---- elementwise ---- */
FN(f_neg, vr_neg(in[0], out))
FN(f_exp, vr_exp(in[0], out))
FN(f_log, vr_log(in[0], out))
FN(f_sqrt, vr_sqrt(in[0], out))
FN(f_rsqrt, vr_rsqrt(in[0], out))
FN(f_abs, vr_abs(in[0], out))
FN(f_tanh, vr_tanh(in[0], out))
FN(f_sigmoid, vr_sigmoid(in[0], out))
FN(f_relu, vr_relu(in[0], out))
FN(f_gelu, vr_gelu(in[0], 0, out))
FN(f_gelu_tanh, vr_gelu(in[0], 1, out))
FN(f_sin, vr_sin(in[0], out))
FN(f_cos, vr_cos(in[0], out))
FN(f_square, vr_square(in[0], out))
FN(f_clamp, vr_clamp(in[0], -0.5, 0.75, out))
FN(f_erf, vr_erf(in[0], out))
FN(f_erfinv, vr_erfinv(in[0], out))
FN(f_add_scalar, vr_add_scalar(in[0], 1.75, out))
FN(f_mul_scalar, vr_mul_scalar(in[0], 1.75, out))
FN(f_rsub_scalar, vr_rsub_scalar(in[0], 1.75, out))
FN(f_rdiv_scalar, vr_rdiv_scalar(in[0], 1.75, out))
FN(f_pow_scalar, vr_pow_scalar(in[0], 2.5, out))
FN(f_add, vr_add(in[0], in[1], out))
FN(f_sub, vr_sub(in[0], in[1], out))
FN(f_mul, vr_mul(in[0], in[1], out))
FN(f_div, vr_div(in[0], in[1], out))
FN(f_pow, vr_pow(in[0], in[1], out))
FN(f_maximum, vr_maximum(in[0], in[1], out))
FN(f_minimum, vr_minimum(in[0], in[1], out))
FN(f_eq, vr_eq(in[0], in[1], out))
FN(f_gt, vr_gt(in[0], in[1], out))
FN(f_lt, vr_lt(in[0], in[1], out))
FN(f_where, vr_where(in[0], in[1], in[2], out))
/* in place: a copy of a, then a += 0.5 b */
static vr_status f_add_inplace(vr_tensor *const *in, void *ctx, vr_tensor **out) {
  vr_status s = vr_tensor_clone(in[0], out);
  return s ? s : vr_add_(*out, in[1], 0.5);
}

/* ---- reductions ---- */
FN(f_sum_all, vr_sum(in[0], 0, NULL, 0, out))
FN(f_sum_1, vr_sum(in[0], 1, (const int[]){1}, 0, out))
FN(f_sum_0, vr_sum(in[0], 1, (const int[]){0}, 1, out))
FN(f_sum_02, vr_sum(in[0], 2, (const int[]){0, 2}, 1, out))
FN(f_sum_13, vr_sum(in[0], 2, (const int[]){1, 3}, 0, out))
FN(f_mean_3, vr_mean(in[0], 1, (const int[]){3}, 0, out))
FN(f_var_all, vr_var(in[0], 0, NULL, 1, 0, out))
FN(f_var_0, vr_var(in[0], 1, (const int[]){0}, 1, 1, out))
FN(f_var_13, vr_var(in[0], 2, (const int[]){1, 3}, 0, 0, out))
FN(f_norm1, vr_norm(in[0], 1, 2, (const int[]){0, 2}, 1, out))
FN(f_norm2, vr_norm(in[0], 2, 2, (const int[]){0, 2}, 1, out))
FN(f_norm3, vr_norm(in[0], 3, 1, (const int[]){1}, 0, out))
FN(f_norminf, vr_norm(in[0], INFINITY, 1, (const int[]){1}, 0, out))
FN(f_norm2_all, vr_norm(in[0], 2, 0, NULL, 0, out))
FN(f_max0, vr_max(in[0], 0, 1, out, NULL))
FN(f_max1, vr_max(in[0], 1, 0, out, NULL))
FN(f_min2, vr_min(in[0], 2, 1, out, NULL))
FN(f_argmax1, vr_max(in[0], 1, 0, NULL, out))
FN(f_argmin2, vr_min(in[0], 2, 1, NULL, out))

/* ---- linear algebra ---- */
FN(f_matmul, vr_matmul(in[0], in[1], out))
/* the symmetric part of a square matrix */
static vr_status sym(const vr_tensor *a, vr_tensor **out) {
  vr_tensor *t = NULL, *s = NULL;
  vr_status st = vr_transpose(a, -1, -2, &t);
  if (!st) st = vr_add(a, t, &s);
  if (!st) st = vr_mul_scalar(s, 0.5, out);
  vr_tensor_free(t);
  vr_tensor_free(s);
  return st;
}
static vr_status f_eigvals(vr_tensor *const *in, void *ctx, vr_tensor **out) {
  vr_tensor *s = NULL;
  vr_status st = sym(in[0], &s);
  if (!st) st = vr_eigh(s, out, NULL);
  vr_tensor_free(s);
  return st;
}
FN(f_svals, vr_svd(in[0], NULL, out, NULL))

/* ---- convolution, pooling ---- */
FN(f_conv_s1p1, vr_conv2d(in[0], in[1], in[2], 1, 1, 1, 1, 1, 1, 1, out))
FN(f_conv_s2g2, vr_conv2d(in[0], in[1], in[2], 2, 2, 1, 1, 1, 1, 2, out))
FN(f_conv_dil_g3, vr_conv2d(in[0], in[1], NULL, 1, 2, 0, 1, 2, 1, 3, out))
FN(f_conv_1x1, vr_conv2d(in[0], in[1], in[2], 1, 1, 0, 0, 1, 1, 1, out))
FN(f_conv_nhwc, vr_conv2d_nhwc(in[0], in[1], in[2], 1, 1, 1, 1, 1, 1, 1, out))
FN(f_conv_nhwc_s2g2, vr_conv2d_nhwc(in[0], in[1], NULL, 2, 2, 1, 1, 1, 1, 2, out))
FN(f_maxpool_332, vr_max_pool2d(in[0], 3, 3, 2, 2, 1, 1, out))
FN(f_maxpool_222, vr_max_pool2d(in[0], 2, 2, 2, 2, 0, 0, out))
FN(f_maxpool_odd, vr_max_pool2d(in[0], 3, 2, 1, 3, 1, 0, out))
FN(f_avgpool_332, vr_avg_pool2d(in[0], 3, 3, 2, 2, 1, 1, 1, out))
FN(f_avgpool_odd, vr_avg_pool2d(in[0], 3, 2, 1, 3, 1, 0, 0, out))
FN(f_adaptive_1, vr_adaptive_avg_pool2d(in[0], 1, 1, out))
FN(f_adaptive_35, vr_adaptive_avg_pool2d(in[0], 3, 5, out))
FN(f_adaptive_77, vr_adaptive_avg_pool2d(in[0], 7, 7, out))
FN(f_adaptive_43, vr_adaptive_avg_pool2d(in[0], 4, 3, out))
FN(f_adaptive_55, vr_adaptive_avg_pool2d(in[0], 5, 5, out))
FN(f_maxpool_overlap, vr_max_pool2d(in[0], 4, 2, 3, 1, 2, 1, out))
FN(f_avgpool_overlap, vr_avg_pool2d(in[0], 3, 3, 1, 1, 1, 1, 0, out))

/* ---- normalisation ---- */
/* batch norm on copies of the running statistics (in[3], in[4]); training or eval */
static vr_status bn(vr_tensor *const *in, int training, const vr_tensor *residual, int act, vr_tensor **out) {
  vr_tensor *rm = NULL, *rv = NULL;
  vr_status s = vr_tensor_clone(in[3], &rm);
  if (!s) s = vr_tensor_clone(in[4], &rv);
  if (!s && act < 0) s = vr_batch_norm(in[0], in[1], in[2], rm, rv, training, 0.1, 1e-5, out);
  if (!s && act >= 0) s = vr_batch_norm_act(in[0], in[1], in[2], rm, rv, training, 0.1, 1e-5, residual, act, out);
  vr_tensor_free(rm);
  vr_tensor_free(rv);
  return s;
}
FN(f_bn_train, bn(in, 1, NULL, -1, out))
FN(f_bn_eval, bn(in, 0, NULL, -1, out))
FN(f_bn_relu, bn(in, 1, NULL, 1, out))
FN(f_bn_add_relu, bn(in, 1, in[5], 1, out))
FN(f_bn_add_eval, bn(in, 0, in[5], 0, out))
FN(f_ln, vr_layer_norm(in[0], 1, in[1], in[2], 1e-5, out))
FN(f_ln2, vr_layer_norm(in[0], 2, NULL, NULL, 1e-5, out))
FN(f_softmax1, vr_softmax(in[0], 1, out))
FN(f_softmax_last, vr_softmax(in[0], -1, out))
FN(f_log_softmax1, vr_log_softmax(in[0], 1, out))
FN(f_log_softmax_last, vr_log_softmax(in[0], -1, out))
FN(f_ce, vr_cross_entropy(in[0], in[1], 0, out))
FN(f_ce_smooth, vr_cross_entropy(in[0], in[1], 0.1, out))

/* ---- indexing, sorting ---- */
FN(f_index_select0, vr_index_select(in[0], 0, in[1], out))
FN(f_index_select1, vr_index_select(in[0], 1, in[1], out))
FN(f_index_select2, vr_index_select(in[0], 2, in[1], out))
FN(f_gather0, vr_gather(in[0], 0, in[1], out))
FN(f_gather1, vr_gather(in[0], 1, in[1], out))
FN(f_gather2, vr_gather(in[0], 2, in[1], out))
FN(f_scatter_add0, vr_scatter_add(in[0], 0, in[1], in[2], out))
FN(f_scatter_add1, vr_scatter_add(in[0], 1, in[1], in[2], out))
FN(f_scatter_add2, vr_scatter_add(in[0], 2, in[1], in[2], out))
FN(f_one_hot, vr_one_hot(in[0], 10, ENV->dt, out))
FN(f_sort1, vr_sort(in[0], 1, 0, out, NULL))
FN(f_sort1_desc, vr_sort(in[0], 1, 1, out, NULL))
FN(f_sort0, vr_sort(in[0], 0, 0, out, NULL))
FN(f_argsort1, vr_sort(in[0], 1, 0, NULL, out))
FN(f_argsort1_desc, vr_sort(in[0], 1, 1, NULL, out))
FN(f_argsort0_desc, vr_sort(in[0], 0, 1, NULL, out))
FN(f_topk1, vr_topk(in[0], 17, 1, 1, out, NULL))
FN(f_topk1_idx, vr_topk(in[0], 5, 1, 0, NULL, out))

/* ---- regularizers: z is V x B x D; K slices drawn from (seed, step) ---- */
FN(f_visreg, vr_visreg(in[0], NULL, 16, 7, 3, 1, 1, 1, out, NULL))
/* the shape term detaches sigma (its gradient is not the loss's derivative): finite differences
 * check the center and scale terms */
FN(f_visreg_center_scale, vr_visreg(in[0], NULL, 16, 7, 3, 1, 0, 1, out, NULL))
FN(f_visreg_slices, vr_visreg(in[0], in[1], 0, 0, 0, 1, 0.5, 2, out, NULL))
FN(f_swd, vr_swd(in[0], NULL, 16, 7, 3, out))
FN(f_sigreg, vr_sigreg(in[0], NULL, 16, 7, 3, 17, 3, out))
FN(f_vicreg, vr_vicreg(in[0], 25, 25, 1, out, NULL))
FN(f_vicreg_pooled, vr_vicreg_pooled(in[0], 25, 1, out, NULL))
FN(f_barlow, vr_barlow(in[0], 0.005, out))
FN(f_invariance, vr_invariance(in[0], 2, out))
FN(f_invariance1, vr_invariance(in[0], 1, out))
FN(f_visreg_256, vr_visreg(in[0], NULL, 256, 11, 3, 1, 1, 1, out, NULL))

/* ---- augmentation, optimiser ---- */
static vr_status f_augment(vr_tensor *const *in, void *ctx, vr_tensor **out) {
  vr_pipeline *p = NULL;
  vr_status s = vr_pipeline_new(&p);
  if (!s) s = vr_pipeline_add_crop(p, 0.3, 1, 0.75, 4.0 / 3, 0, 0, 1);
  if (!s) s = vr_pipeline_add_hflip(p, 0.5);
  if (!s) s = vr_pipeline_add_jitter(p, 0.4, 0.4, 0, 0, 0.8);
  if (!s) s = vr_pipeline_add_blur(p, 0.1, 2, 0, 0.5);
  if (!s) s = vr_pipeline_add_solarize(p, 0.5, 0.2);
  if (!s) s = vr_pipeline_add_erase(p, 0.02, 0.33, 0.3, 3.3, 0.5, 0.5);
  if (!s) s = vr_pipeline_add_noise(p, 0.05, 0.5);
  if (!s) s = vr_pipeline_add_normalize(p, 1, (const double[]){0.286}, (const double[]){0.353});
  if (!s) s = vr_pipeline_apply_ids(p, in[0], in[1], 24, 20, 42, 3, 1, out);
  vr_pipeline_free(p);
  return s;
}
/* two AdamW steps on copies of the parameter and moments (in[0], in[2], in[3]) with grad in[1] */
static vr_status f_adamw(vr_tensor *const *in, void *ctx, vr_tensor **out) {
  vr_tensor *p = NULL, *m = NULL, *v = NULL, *va = NULL;
  vr_status s = vr_tensor_clone(in[0], &p);
  if (!s) s = vr_tensor_clone(in[2], &m);
  if (!s) s = vr_abs(in[3], &va);
  if (!s) s = vr_tensor_clone(va, &v);
  for (int64_t step = 1; step <= 2 && !s; step++)
    s = vr_adamw_step(&p, &in[1], &m, &v, 1, (const double[]){0.05}, NULL, 1e-2, 0.9, 0.999, 1e-8, step, NULL);
  vr_tensor_free(m);
  vr_tensor_free(v);
  vr_tensor_free(va);
  if (s) vr_tensor_free(p);
  else *out = p;
  return s;
}

/* ---- the table ---- */
#define UNARY(name, fn, lo, hi, grad, tol) \
  {name, VR_OP_UNARY, FL, fn, grad, 0, tol, 1, {IN(R, T, lo, hi, 37, 129)}}, \
  {name " (small)", VR_OP_UNARY, FL, fn, grad, 0, tol, 1, {IN(R, T, lo, hi, 3, 5)}}
#define BINARY(name, fn, lo, hi, grad) \
  {name, VR_OP_BINARY, FL, fn, grad, 0, 0, 2, {IN(R, T, lo, hi, 37, 129), IN(R, C, lo, hi, 1, 129)}}, \
  {name " (column, strided)", VR_OP_BINARY, FL, fn, grad, 0, 0, 2, {IN(R, C, lo, hi, 37, 1), IN(R, T, lo, hi, 37, 129)}}, \
  {name " (small)", VR_OP_BINARY, FL, fn, grad, 0, 0, 2, {IN(R, T, lo, hi, 3, 4), IN(R, C, lo, hi, 4)}}
#define CONV_IN(n, c, h, w) IN(R, C, -1, 1, n, c, h, w)

static const op_case OP_CASES[] = {
    /* copy, fill, arange, rand */
    {"copy strided", VR_OP_COPY, ALL, f_copy, 0, EXACT, 0, 1, {IN(W, T, 0, 200, 37, 129)}},
    {"copy broadcast", VR_OP_COPY, FLB, f_copy, 0, EXACT, 0, 1, {IN(R, B, -1, 1, 5, 37, 129)}},
    {"copy to bf16", VR_OP_COPY, FL, f_to_bf16, 0, EXACT, 0, 1, {IN(R, C, -1000, 1000, BIG)}},
    {"copy to f32", VR_OP_COPY, FL, f_to_f32, 0, EXACT, 0, 1, {IN(R, C, -5, 5, BIG)}},
    {"fill", VR_OP_FILL, ALL, f_fill, 0, EXACT, 0, 0, {{0}}},
    {"arange", VR_OP_ARANGE, FL, f_arange, 0, EXACT, 0, 0, {{0}}},
    {"arange whole numbers", VR_OP_ARANGE, ALL, f_arange_whole, 0, EXACT, 0, 0, {{0}}},
    {"rand uniform", VR_OP_RAND, FLB, f_rand_uniform, 0, EXACT | NO_REF, 0, 0, {{0}}},
    {"rand normal", VR_OP_RAND, FLB, f_rand_normal, 0, NO_REF, 1e-5, 0, {{0}}},
    /* unary: strided 37 x 129 and a small one for finite differences */
    UNARY("neg", f_neg, -3, 3, G0, 0), UNARY("exp", f_exp, -3, 3, G0, 0), UNARY("log", f_log, 0.1, 4, G0, 0),
    UNARY("sqrt", f_sqrt, 0.1, 4, G0, 0), UNARY("rsqrt", f_rsqrt, 0.1, 4, G0, 0), UNARY("abs", f_abs, -3, 3, G0, 0),
    UNARY("tanh", f_tanh, -3, 3, G0, 0), UNARY("sigmoid", f_sigmoid, -3, 3, G0, 0), UNARY("relu", f_relu, -3, 3, G0, 0),
    UNARY("gelu", f_gelu, -3, 3, G0, 0), UNARY("gelu tanh", f_gelu_tanh, -3, 3, G0, 0), UNARY("sin", f_sin, -3, 3, G0, 0),
    UNARY("cos", f_cos, -3, 3, G0, 0), UNARY("square", f_square, -3, 3, G0, 0), UNARY("clamp", f_clamp, -3, 3, G0, 0),
    UNARY("erf", f_erf, -3, 3, 0, 0), UNARY("erfinv", f_erfinv, -0.95, 0.95, 0, 1e-3),
    UNARY("add scalar", f_add_scalar, -3, 3, G0, 0), UNARY("mul scalar", f_mul_scalar, -3, 3, G0, 0),
    UNARY("rsub scalar", f_rsub_scalar, -3, 3, G0, 0), UNARY("rdiv scalar", f_rdiv_scalar, 0.1, 4, G0, 0),
    UNARY("pow scalar", f_pow_scalar, 0.1, 4, G0, 0),
    {"exp 1000003", VR_OP_UNARY, FLB, f_exp, G0, 0, 0, 1, {IN(R, C, -2, 2, BIG)}},
    {"relu 1000003", VR_OP_UNARY, FLB, f_relu, G0, 0, 0, 1, {IN(R, C, -2, 2, BIG)}},
    {"unary integers", VR_OP_UNARY, D_(VR_I64) | D_(VR_I32), f_neg, 0, EXACT, 0, 1, {IN(W, T, -1000, 1000, 37, 129)}},
    {"square integers", VR_OP_UNARY, D_(VR_I64), f_square, 0, EXACT, 0, 1, {IN(W, T, -1000, 1000, 37, 129)}},
    {"abs integers", VR_OP_UNARY, D_(VR_I64), f_abs, 0, EXACT, 0, 1, {IN(W, T, -1000, 1000, 37, 129)}},
    /* binary: strided with a broadcast row, a broadcast column with a strided operand, small */
    BINARY("add", f_add, -2, 2, G0 | G1), BINARY("sub", f_sub, -2, 2, G0 | G1), BINARY("mul", f_mul, -2, 2, G0 | G1),
    BINARY("div", f_div, 0.5, 2, G0 | G1), BINARY("pow", f_pow, 0.1, 2, G0 | G1),
    BINARY("maximum", f_maximum, -2, 2, G0 | G1), BINARY("minimum", f_minimum, -2, 2, G0 | G1),
    BINARY("eq", f_eq, -2, 2, 0), BINARY("gt", f_gt, -2, 2, 0), BINARY("lt", f_lt, -2, 2, 0),
    {"eq ties", VR_OP_BINARY, FL, f_eq, 0, EXACT, 0, 2, {IN(W, C, 0, 3, 37, 129), IN(W, T, 0, 3, 37, 129)}},
    {"add 1000003", VR_OP_BINARY, FLB, f_add, G0 | G1, 0, 0, 2, {IN(R, C, -2, 2, BIG), IN(R, C, -2, 2, BIG)}},
    {"mul 1000003", VR_OP_BINARY, FL, f_mul, G0 | G1, 0, 0, 2, {IN(R, C, -2, 2, BIG), IN(R, C, -2, 2, BIG)}},
    {"add misaligned", VR_OP_BINARY, FLB, f_add, G0 | G1, 0, 0, 2, {IN(R, O, -2, 2, BIG), IN(R, O, -2, 2, BIG)}},
    {"add in place", VR_OP_BINARY, FL, f_add_inplace, 0, 0, 0, 2, {IN(R, C, -1, 1, BIG), IN(R, C, -1, 1, BIG)}},
    {"add integers", VR_OP_BINARY, INTS, f_add, 0, EXACT, 0, 2, {IN(W, T, 0, 16, 37, 129), IN(W, C, 0, 16, 37, 129)}},
    {"sub integers", VR_OP_BINARY, D_(VR_I32) | D_(VR_I64), f_sub, 0, EXACT, 0, 2,
     {IN(W, T, -100, 100, 37, 129), IN(W, C, -100, 100, 37, 129)}},
    {"mul integers", VR_OP_BINARY, INTS, f_mul, 0, EXACT, 0, 2, {IN(W, T, 0, 16, 37, 129), IN(W, C, 0, 16, 37, 129)}},
    {"maximum integers", VR_OP_BINARY, INTS, f_maximum, 0, EXACT, 0, 2, {IN(W, T, 0, 16, 37, 129), IN(W, C, 0, 16, 37, 129)}},
    {"minimum integers", VR_OP_BINARY, INTS, f_minimum, 0, EXACT, 0, 2, {IN(W, T, 0, 16, 37, 129), IN(W, C, 0, 16, 37, 129)}},
    {"gt integers", VR_OP_BINARY, INTS, f_gt, 0, EXACT, 0, 2, {IN(W, T, 0, 16, 37, 129), IN(W, C, 0, 16, 37, 129)}},
    {"lt integers", VR_OP_BINARY, INTS, f_lt, 0, EXACT, 0, 2, {IN(W, T, 0, 16, 37, 129), IN(W, C, 0, 16, 37, 129)}},
    {"eq integers", VR_OP_BINARY, INTS, f_eq, 0, EXACT, 0, 2, {IN(W, T, 0, 4, 37, 129), IN(W, C, 0, 4, 37, 129)}},
    /* where: a broadcast condition column, a strided a, a broadcast row b */
    {"where", VR_OP_WHERE, ALL, f_where, G1 | G2, EXACT, 0, 3,
     {IN(MK, C, 0, 2, 37, 1), IN(W, T, 0, 100, 37, 129), IN(W, C, 0, 100, 129)}},
    {"where views", VR_OP_WHERE, ALL, f_where, 0, EXACT, 0, 3,
     {IN(MK, B, 0, 2, 4, 5, 6), IN(W, T, 0, 100, 4, 5, 6), IN(W, B, 0, 100, 4, 5, 6)}},
    {"where 1000003", VR_OP_WHERE, FL, f_where, 0, EXACT, 0, 3,
     {IN(MK, C, 0, 2, BIG), IN(R, C, -1, 1, BIG), IN(R, C, -1, 1, BIG)}},
    {"where (small)", VR_OP_WHERE, FL, f_where, G1 | G2, 0, 0, 3,
     {IN(MK, C, 0, 2, 3, 1), IN(R, T, -1, 1, 3, 4), IN(R, C, -1, 1, 4)}},
    /* sums, variances, norms over a strided 4-D tensor, long lines and many outputs */
    {"sum all", VR_OP_SUM, FL, f_sum_all, G0, 0, 0, 1, {IN(R, T, -1, 1, 5, 37, 3, 129)}},
    {"sum dims 0 2", VR_OP_SUM, FL, f_sum_02, G0, 0, 0, 1, {IN(R, T, -1, 1, 5, 37, 3, 129)}},
    {"sum dims 1 3", VR_OP_SUM, FL, f_sum_13, G0, 0, 0, 1, {IN(R, C, -1, 1, 5, 37, 3, 129)}},
    {"mean dim 3", VR_OP_SUM, FL, f_mean_3, G0, 0, 0, 1, {IN(R, T, -1, 1, 5, 37, 3, 129)}},
    {"sum of 1000003", VR_OP_SUM, FL, f_sum_all, 0, 0, 0, 1, {IN(R, C, -1, 1, BIG)}},
    {"sum 3 x 333337 over dim 1", VR_OP_SUM, FL, f_sum_1, 0, 0, 0, 1, {IN(R, C, -1, 1, 3, 333337)}},
    {"sum 3001 x 2053 over dim 0", VR_OP_SUM, FL, f_sum_0, 0, 0, 0, 1, {IN(R, C, -1, 1, 3001, 2053)}},
    {"sum 333337 x 3 over dim 0", VR_OP_SUM, FL, f_sum_0, 0, 0, 0, 1, {IN(R, C, -1, 1, 333337, 3)}},
    {"sum integers", VR_OP_SUM, D_(VR_I32) | D_(VR_I64), f_sum_1, 0, EXACT, 0, 1, {IN(W, T, -1000, 1000, 37, 129)}},
    {"sum (small)", VR_OP_SUM, FL, f_sum_02, G0, 0, 0, 1, {IN(R, T, -1, 1, 2, 3, 2, 4)}},
    {"var all", VR_OP_VAR, FL, f_var_all, G0, 0, 0, 1, {IN(R, T, -1, 1, 5, 37, 3, 129)}},
    {"var dims 1 3", VR_OP_VAR, FL, f_var_13, G0, 0, 0, 1, {IN(R, T, -1, 1, 5, 37, 3, 129)}},
    {"var of 1000003", VR_OP_VAR, FL, f_var_all, 0, 0, 0, 1, {IN(R, C, -1, 1, BIG)}},
    {"var 3001 x 2053 over dim 0", VR_OP_VAR, FL, f_var_0, 0, 0, 0, 1, {IN(R, C, -1, 1, 3001, 2053)}},
    {"var 333337 x 3 over dim 0", VR_OP_VAR, FL, f_var_0, 0, 0, 0, 1, {IN(R, C, -1, 1, 333337, 3)}},
    {"var (small)", VR_OP_VAR, FL, f_var_13, G0, 0, 0, 1, {IN(R, T, -1, 1, 2, 3, 2, 4)}},
    {"norm p=1", VR_OP_NORM, FL, f_norm1, G0, 0, 0, 1, {IN(R, T, -1, 1, 5, 37, 3, 129)}},
    {"norm p=2", VR_OP_NORM, FL, f_norm2, G0, 0, 0, 1, {IN(R, T, -1, 1, 5, 37, 3, 129)}},
    {"norm p=3", VR_OP_NORM, FL, f_norm3, G0, 0, 0, 1, {IN(R, T, -1, 1, 37, 129)}},
    {"norm p=inf", VR_OP_NORM, FL, f_norminf, G0, NO_FD, 0, 1, {IN(R, T, -1, 1, 37, 129)}},
    {"norm of 1000003", VR_OP_NORM, FL, f_norm2_all, G0, 0, 0, 1, {IN(R, C, -1, 1, BIG)}},
    {"norm p=1 (small)", VR_OP_NORM, FL, f_norm1, G0, 0, 0, 1, {IN(R, T, -1, 1, 2, 3, 2, 4)}},
    {"norm p=3 (small)", VR_OP_NORM, FL, f_norm3, G0, 0, 0, 1, {IN(R, T, -1, 1, 3, 4)}},
    {"norm p=inf (small)", VR_OP_NORM, FL, f_norminf, G0, 0, 0, 1, {IN(R, T, -1, 1, 3, 4)}},
    /* max and min: ties (the first index wins), long rows, and values for finite differences */
    {"max dim 0 ties", VR_OP_MAXMIN, FL | D_(VR_I64), f_max0, G0, EXACT | NO_FD, 0, 1, {IN(W, T, -20, 20, 7, 37, 129)}},
    {"max dim 1 ties", VR_OP_MAXMIN, FL | D_(VR_I64), f_max1, G0, EXACT | NO_FD, 0, 1, {IN(W, T, -20, 20, 7, 37, 129)}},
    {"min dim 2 ties", VR_OP_MAXMIN, FL | D_(VR_I64), f_min2, G0, EXACT | NO_FD, 0, 1, {IN(W, T, -20, 20, 7, 37, 129)}},
    {"argmax dim 1 ties", VR_OP_MAXMIN, FL | D_(VR_I64), f_argmax1, 0, EXACT, 0, 1, {IN(W, T, -20, 20, 7, 37, 129)}},
    {"argmin dim 2 ties", VR_OP_MAXMIN, FL | D_(VR_I64), f_argmin2, 0, EXACT, 0, 1, {IN(W, T, -20, 20, 7, 37, 129)}},
    {"max of 2 x 500001", VR_OP_MAXMIN, FL, f_max1, 0, EXACT, 0, 1, {IN(R, C, -1, 1, 2, 500001)}},
    {"argmax of 2 x 500001", VR_OP_MAXMIN, FL, f_argmax1, 0, EXACT, 0, 1, {IN(R, C, -1, 1, 2, 500001)}},
    {"max 3001 x 2053 over dim 0", VR_OP_MAXMIN, FL, f_max0, 0, EXACT, 0, 1, {IN(R, C, -1, 1, 3001, 2053)}},
    {"max (small)", VR_OP_MAXMIN, FL, f_max1, G0, 0, 0, 1, {IN(R, T, -1, 1, 3, 4, 5)}},
    {"min (small)", VR_OP_MAXMIN, FL, f_min2, G0, 0, 0, 1, {IN(R, C, -1, 1, 3, 4, 5)}},
    /* matmul: batched, transposed operands, a broadcast batch, an empty inner dimension */
    {"matmul 37x129 @ 129x65", VR_OP_MATMUL, FL, f_matmul, G0 | G1, 0, 0, 2,
     {IN(R, C, -1, 1, 37, 129), IN(R, C, -1, 1, 129, 65)}},
    {"matmul batched transposed", VR_OP_MATMUL, FL, f_matmul, G0 | G1, 0, 0, 2,
     {IN(R, T, -1, 1, 3, 37, 129), IN(R, T, -1, 1, 3, 129, 65)}},
    {"matmul broadcast batch", VR_OP_MATMUL, FL, f_matmul, G0 | G1, 0, 0, 2,
     {IN(R, C, -1, 1, 3, 37, 129), IN(R, B, -1, 1, 3, 129, 65)}},
    {"matmul one row", VR_OP_MATMUL, FL, f_matmul, G0 | G1, 0, 0, 2, {IN(R, C, -1, 1, 5, 1, 257), IN(R, T, -1, 1, 5, 257, 3)}},
    {"matmul 64^3", VR_OP_MATMUL, FL, f_matmul, G0 | G1, 0, 0, 2, {IN(R, T, -1, 1, 2, 64, 64), IN(R, C, -1, 1, 2, 64, 64)}},
    {"matmul (small)", VR_OP_MATMUL, FL, f_matmul, G0 | G1, 0, 0, 2, {IN(R, T, -1, 1, 2, 3, 4), IN(R, C, -1, 1, 2, 4, 5)}},
    {"eigh values", VR_OP_EIGH, FL, f_eigvals, G0, 0, 1e-3, 1, {IN(R, C, -1, 1, 6, 6)}},
    {"eigh values batched", VR_OP_EIGH, FL, f_eigvals, 0, 0, 1e-3, 1, {IN(R, C, -1, 1, 33, 33)}},
    {"svd values", VR_OP_SVD, FL, f_svals, G0, 0, 1e-3, 1, {IN(R, C, -1, 1, 7, 5)}},
    {"svd values wide", VR_OP_SVD, FL, f_svals, 0, 0, 1e-3, 1, {IN(R, T, -1, 1, 20, 45)}},
    /* convolution: padding, stride and groups, dilation, 1 x 1, channels-last */
    {"conv2d 3x3", VR_OP_CONV2D, FL, f_conv_s1p1, G0 | G1 | G2, 0, 0, 3,
     {CONV_IN(2, 3, 17, 13), CONV_IN(8, 3, 3, 3), IN(R, C, -1, 1, 8)}},
    {"conv2d stride 2 groups 2", VR_OP_CONV2D, FL, f_conv_s2g2, G0 | G1 | G2, 0, 0, 3,
     {CONV_IN(3, 4, 16, 16), CONV_IN(6, 2, 3, 3), IN(R, C, -1, 1, 6)}},
    {"conv2d dilated groups 3", VR_OP_CONV2D, FL, f_conv_dil_g3, G0 | G1, 0, 0, 2, {CONV_IN(1, 6, 11, 9), CONV_IN(6, 2, 3, 2)}},
    {"conv2d 1x1", VR_OP_CONV2D, FL, f_conv_1x1, G0 | G1 | G2, 0, 0, 3,
     {CONV_IN(4, 16, 8, 8), CONV_IN(32, 16, 1, 1), IN(R, C, -1, 1, 32)}},
    {"conv2d nhwc", VR_OP_CONV2D, D_(VR_F32), f_conv_nhwc, G0 | G1 | G2, 0, 0, 3,
     {CONV_IN(2, 17, 13, 3), CONV_IN(8, 3, 3, 3), IN(R, C, -1, 1, 8)}},
    {"conv2d nhwc 28x28", VR_OP_CONV2D, D_(VR_F32), f_conv_nhwc, G0 | G1 | G2, 0, 0, 3,
     {CONV_IN(4, 28, 28, 1), CONV_IN(16, 3, 3, 1), IN(R, C, -1, 1, 16)}},
    {"conv2d nhwc stride 2 groups 2", VR_OP_CONV2D, D_(VR_F32), f_conv_nhwc_s2g2, G0 | G1, 0, 0, 2,
     {CONV_IN(3, 16, 16, 4), CONV_IN(6, 3, 3, 2)}},
    {"conv2d (small)", VR_OP_CONV2D, FL, f_conv_s2g2, G0 | G1 | G2, 0, 0, 3,
     {CONV_IN(1, 2, 5, 4), CONV_IN(2, 1, 3, 3), IN(R, C, -1, 1, 2)}},
    /* pooling: ties (the first index wins), NaN and infinities in the windows, finite differences */
    {"max pool 3x3 stride 2 ties", VR_OP_MAXPOOL2D, FLB, f_maxpool_332, G0, EXACT | NO_FD, 0, 1, {IN(W, C, -5, 5, 2, 3, 37, 29)}},
    {"max pool 2x2", VR_OP_MAXPOOL2D, FLB, f_maxpool_222, G0, EXACT | NO_FD, 0, 1, {IN(W, C, -5, 5, 1, 5, 8, 8)}},
    {"max pool 3x2 odd strides", VR_OP_MAXPOOL2D, FLB, f_maxpool_odd, G0, EXACT | NO_FD, 0, 1, {IN(W, T, -5, 5, 3, 2, 13, 17)}},
    {"max pool specials", VR_OP_MAXPOOL2D, FL, f_maxpool_332, 0, EXACT, 0, 1, {IN(S, C, -1, 1, 2, 3, 11, 10)}},
    {"max pool specials overlapping", VR_OP_MAXPOOL2D, FL, f_maxpool_overlap, 0, EXACT, 0, 1, {IN(S, C, -1, 1, 1, 2, 9, 13)}},
    {"max pool overlapping ties", VR_OP_MAXPOOL2D, FL, f_maxpool_overlap, G0, EXACT | NO_FD, 0, 1,
     {IN(W, C, -4, 4, 1, 2, 9, 13)}},
    {"max pool (small)", VR_OP_MAXPOOL2D, FL, f_maxpool_332, G0, 0, 0, 1, {IN(R, C, -1, 1, 1, 2, 5, 4)}},
    {"avg pool 3x3 stride 2", VR_OP_AVGPOOL2D, FLB, f_avgpool_332, G0, 0, 0, 1, {IN(R, C, -1, 1, 2, 3, 37, 29)}},
    {"avg pool 3x2 odd strides", VR_OP_AVGPOOL2D, FLB, f_avgpool_odd, G0, 0, 0, 1, {IN(R, T, -1, 1, 3, 2, 13, 17)}},
    {"avg pool overlapping", VR_OP_AVGPOOL2D, FL, f_avgpool_overlap, G0, 0, 0, 1, {IN(R, C, -1, 1, 2, 3, 11, 10)}},
    {"avg pool (small)", VR_OP_AVGPOOL2D, FL, f_avgpool_odd, G0, 0, 0, 1, {IN(R, C, -1, 1, 1, 2, 5, 4)}},
    {"adaptive avg pool 1x1", VR_OP_ADAPTIVE_AVGPOOL2D, FLB, f_adaptive_1, G0, 0, 0, 1, {IN(R, C, -1, 1, 2, 3, 37, 29)}},
    {"adaptive avg pool 3x5", VR_OP_ADAPTIVE_AVGPOOL2D, FLB, f_adaptive_35, G0, 0, 0, 1, {IN(R, T, -1, 1, 3, 2, 13, 17)}},
    {"adaptive avg pool 7x7", VR_OP_ADAPTIVE_AVGPOOL2D, FLB, f_adaptive_77, G0, 0, 0, 1, {IN(R, C, -1, 1, 1, 5, 8, 8)}},
    {"adaptive avg pool overlapping bins", VR_OP_ADAPTIVE_AVGPOOL2D, FL, f_adaptive_43, G0, 0, 0, 1,
     {IN(R, C, -1, 1, 2, 3, 7, 10)}},
    {"adaptive avg pool upsampling", VR_OP_ADAPTIVE_AVGPOOL2D, FL, f_adaptive_55, G0, 0, 0, 1, {IN(R, C, -1, 1, 2, 3, 3, 3)}},
    {"adaptive avg pool (small)", VR_OP_ADAPTIVE_AVGPOOL2D, FL, f_adaptive_35, G0, 0, 0, 1, {IN(R, C, -1, 1, 1, 2, 5, 7)}},
    /* batch norm: training and eval, N x C x S and rows (the channels-last path), fused activation */
/* x, weight, bias, running mean, running var (C_ channels), residual */
#define BN_IN(lo, hi, ...) {IN(R, C, lo, hi, __VA_ARGS__), IN(R, C, 0.5, 1.5, C_), IN(R, C, -1, 1, C_), \
                            IN(R, C, -0.5, 0.5, C_), IN(R, C, 0.5, 2, C_), IN(R, C, -1, 1, __VA_ARGS__)}
#define C_ 13
    {"batch norm training", VR_OP_BATCHNORM, FL, f_bn_train, G0 | G1 | G2, 0, 0, 5, BN_IN(-2, 3, 8, 13, 37)},
    {"batch norm eval", VR_OP_BATCHNORM, FL, f_bn_eval, G0 | G1 | G2, 0, 0, 5, BN_IN(-2, 3, 8, 13, 37)},
    {"batch norm relu", VR_OP_BATCHNORM, FL, f_bn_relu, G0 | G1 | G2, 0, 0, 5, BN_IN(-2, 3, 8, 13, 37)},
    {"batch norm add relu", VR_OP_BATCHNORM, FL, f_bn_add_relu, G0 | G1 | G2 | (1u << 5), 0, 0, 6, BN_IN(-2, 3, 8, 13, 37)},
#undef C_
#define C_ 64
    {"batch norm rows", VR_OP_BATCHNORM, FL, f_bn_train, G0 | G1 | G2, 0, 0, 5, BN_IN(-2, 3, 4099, 64)},
    {"batch norm rows mean 1000", VR_OP_BATCHNORM, FL, f_bn_train, G0 | G1 | G2, 0, 1e-3, 5, BN_IN(998.3, 1001.7, 1000, 64)},
    {"batch norm rows add relu", VR_OP_BATCHNORM, FL, f_bn_add_relu, G0 | G1 | G2 | (1u << 5), 0, 0, 6, BN_IN(-2, 3, 1000, 64)},
    {"batch norm rows add eval", VR_OP_BATCHNORM, FL, f_bn_add_eval, G0 | G1 | G2 | (1u << 5), 0, 0, 6, BN_IN(-2, 3, 1000, 64)},
    {"batch norm rows misaligned", VR_OP_BATCHNORM, FL, f_bn_add_relu, G0 | G1 | G2 | (1u << 5), 0, 0, 6,
     {IN(R, O, -2, 3, 1000, 64), IN(R, C, 0.5, 1.5, 64), IN(R, C, -1, 1, 64), IN(R, C, -0.5, 0.5, 64),
      IN(R, C, 0.5, 2, 64), IN(R, O, -1, 1, 1000, 64)}},
#undef C_
#define C_ 7
    {"batch norm rows C = 7", VR_OP_BATCHNORM, FL, f_bn_train, G0 | G1 | G2, 0, 0, 5, BN_IN(-2, 3, 301, 7)},
#undef C_
#define C_ 3
    {"batch norm long lines", VR_OP_BATCHNORM, FL, f_bn_train, G0 | G1 | G2, 0, 0, 5, BN_IN(-2, 3, 2, 3, 40001)},
    {"batch norm (small)", VR_OP_BATCHNORM, FL, f_bn_train, G0 | G1 | G2, 0, 0, 5, BN_IN(-2, 3, 4, 3, 5)},
    {"batch norm add relu (small)", VR_OP_BATCHNORM, FL, f_bn_add_relu, G0 | G1 | G2 | (1u << 5), 0, 0, 6, BN_IN(-2, 3, 4, 3, 5)},
#undef C_
#undef BN_IN
    {"layer norm", VR_OP_LAYERNORM, FL, f_ln, G0 | G1 | G2, 0, 0, 3,
     {IN(R, C, -2, 3, 37, 129), IN(R, C, 0.5, 1.5, 129), IN(R, C, -1, 1, 129)}},
    {"layer norm 1000 x 10", VR_OP_LAYERNORM, FL, f_ln, G0 | G1 | G2, 0, 0, 3,
     {IN(R, C, -2, 3, 1000, 10), IN(R, C, 0.5, 1.5, 10), IN(R, C, -1, 1, 10)}},
    {"layer norm 300 x 37", VR_OP_LAYERNORM, FL, f_ln, G0 | G1 | G2, 0, 0, 3,
     {IN(R, C, -2, 3, 300, 37), IN(R, C, 0.5, 1.5, 37), IN(R, C, -1, 1, 37)}},
    {"layer norm long rows", VR_OP_LAYERNORM, FL, f_ln2, G0, 0, 0, 1, {IN(R, C, -2, 3, 3, 7, 14287)}},
    {"layer norm (small)", VR_OP_LAYERNORM, FL, f_ln, G0 | G1 | G2, 0, 0, 3,
     {IN(R, C, -2, 3, 4, 5), IN(R, C, 0.5, 1.5, 5), IN(R, C, -1, 1, 5)}},
    /* softmax along the last and a middle dim, long rows; cross entropy with label smoothing */
    {"softmax 37 x 129", VR_OP_SOFTMAX, FL, f_softmax1, G0, 0, 0, 1, {IN(R, C, -5, 5, 37, 129)}},
    {"softmax middle dim", VR_OP_SOFTMAX, FL, f_softmax1, G0, 0, 0, 1, {IN(R, C, -5, 5, 5, 37, 129)}},
    {"softmax 3 x 100003", VR_OP_SOFTMAX, FL, f_softmax_last, G0, 0, 0, 1, {IN(R, C, -5, 5, 3, 100003)}},
    {"log_softmax 1000 x 10", VR_OP_SOFTMAX, FL, f_log_softmax_last, G0, 0, 0, 1, {IN(R, C, -5, 5, 1000, 10)}},
    {"log_softmax middle dim", VR_OP_SOFTMAX, FL, f_log_softmax1, G0, 0, 0, 1, {IN(R, C, -5, 5, 5, 37, 129)}},
    {"softmax (small)", VR_OP_SOFTMAX, FL, f_softmax1, G0, 0, 0, 1, {IN(R, T, -5, 5, 2, 3, 4)}},
    {"log_softmax (small)", VR_OP_SOFTMAX, FL, f_log_softmax_last, G0, 0, 0, 1, {IN(R, C, -5, 5, 3, 4)}},
    {"cross entropy 37 x 129", VR_OP_CROSS_ENTROPY, FL, f_ce, G0, 0, 0, 2, {IN(R, C, -4, 4, 37, 129), IN(IX, C, 0, 129, 37)}},
    {"cross entropy smoothing", VR_OP_CROSS_ENTROPY, FL, f_ce_smooth, G0, 0, 0, 2,
     {IN(R, C, -4, 4, 1000, 10), IN(IX, C, 0, 10, 1000)}},
    {"cross entropy 3 x 100003", VR_OP_CROSS_ENTROPY, FL, f_ce_smooth, G0, 0, 0, 2,
     {IN(R, C, -4, 4, 3, 100003), IN(IX, C, 0, 100003, 3)}},
    {"cross entropy (small)", VR_OP_CROSS_ENTROPY, FL, f_ce_smooth, G0, 0, 0, 2, {IN(R, C, -4, 4, 3, 5), IN(IX, C, 0, 5, 3)}},
    /* indexing: every dim, repeated indices, the sorted-runs path of the backward (K = 3000) */
    {"index_select dim 0", VR_OP_INDEX_SELECT, ALL, f_index_select0, G0, EXACT, 0, 2,
     {IN(W, C, 0, 100, 5, 37, 9), IN(IX, C, 0, 5, 7)}},
    {"index_select dim 1", VR_OP_INDEX_SELECT, ALL, f_index_select1, G0, EXACT, 0, 2,
     {IN(W, T, 0, 100, 5, 37, 9), IN(IX, C, 0, 37, 50)}},
    {"index_select dim 2", VR_OP_INDEX_SELECT, ALL, f_index_select2, G0, EXACT, 0, 2,
     {IN(W, C, 0, 100, 5, 37, 9), IN(IX, C, 0, 9, 7)}},
    {"index_select backward runs", VR_OP_INDEX_SELECT, FLB, f_index_select0, G0, 0, 0, 2,
     {IN(R, C, -1, 1, 40, 33), IN(IX, C, 0, 37, 3000)}},
    {"index_select backward runs dim 1", VR_OP_INDEX_SELECT, FLB, f_index_select1, G0, 0, 0, 2,
     {IN(R, C, -1, 1, 6, 40), IN(IX, C, 0, 37, 3000)}},
    {"index_select i32 indices", VR_OP_INDEX_SELECT, ALL, f_index_select1, G0, EXACT, 0, 2,
     {IN(W, C, 0, 100, 5, 37, 9), IN(IX32, C, 0, 37, 50)}},
    {"index_select (small)", VR_OP_INDEX_SELECT, FL, f_index_select1, G0, 0, 0, 2, {IN(R, C, -1, 1, 3, 4), IN(IX, C, 0, 4, 6)}},
    {"gather dim 0", VR_OP_GATHER, ALL, f_gather0, G0, EXACT, 0, 2, {IN(W, C, 0, 50, 6, 7, 8), IN(IX, C, 0, 6, 11, 6, 4)}},
    {"gather dim 1", VR_OP_GATHER, ALL, f_gather1, G0, EXACT, 0, 2, {IN(W, T, 0, 50, 6, 7, 8), IN(IX, C, 0, 7, 5, 11, 4)}},
    {"gather dim 2", VR_OP_GATHER, ALL, f_gather2, G0, EXACT, 0, 2, {IN(W, C, 0, 50, 6, 7, 8), IN(IX, C, 0, 8, 5, 6, 11)}},
    {"gather i32 indices", VR_OP_GATHER, ALL, f_gather2, G0, EXACT, 0, 2,
     {IN(W, C, 0, 50, 6, 7, 8), IN(IX32, C, 0, 8, 5, 6, 11)}},
    {"gather (small)", VR_OP_GATHER, FL, f_gather1, G0, 0, 0, 2, {IN(R, C, -1, 1, 3, 4), IN(IX, C, 0, 4, 3, 6)}},
    {"scatter_add dim 0", VR_OP_SCATTER_ADD, FLB, f_scatter_add0, G0 | G2, 0, 0, 3,
     {IN(R, C, -1, 1, 6, 7, 8), IN(IX, C, 0, 6, 9, 6, 4), IN(R, C, -1, 1, 10, 7, 9)}},
    {"scatter_add dim 1", VR_OP_SCATTER_ADD, FLB, f_scatter_add1, G0 | G2, 0, 0, 3,
     {IN(R, C, -1, 1, 6, 7, 8), IN(IX, C, 0, 7, 5, 9, 4), IN(R, C, -1, 1, 6, 10, 9)}},
    {"scatter_add dim 2", VR_OP_SCATTER_ADD, FLB, f_scatter_add2, G0 | G2, 0, 0, 3,
     {IN(R, C, -1, 1, 6, 7, 8), IN(IX, C, 0, 8, 5, 6, 9), IN(R, C, -1, 1, 6, 7, 10)}},
    {"scatter_add runs dim 1", VR_OP_SCATTER_ADD, FLB, f_scatter_add1, G0 | G2, NO_REF_BF16, 0, 3,
     {IN(R, C, -1, 1, 3, 50), IN(IX, C, 0, 45, 3, 2000), IN(R, C, -1, 1, 3, 2000)}},
    {"scatter_add runs dim 0", VR_OP_SCATTER_ADD, FLB, f_scatter_add0, G0 | G2, NO_REF_BF16, 0, 3,
     {IN(R, C, -1, 1, 50, 3), IN(IX, C, 0, 45, 2000, 3), IN(R, C, -1, 1, 2000, 3)}},
    {"scatter_add runs i32 indices", VR_OP_SCATTER_ADD, FLB, f_scatter_add1, G0 | G2, NO_REF_BF16, 0, 3,
     {IN(R, C, -1, 1, 3, 50), IN(IX32, C, 0, 45, 3, 2000), IN(R, C, -1, 1, 3, 2000)}},
    {"scatter_add (small)", VR_OP_SCATTER_ADD, FL, f_scatter_add1, G0 | G2, 0, 0, 3,
     {IN(R, C, -1, 1, 3, 4), IN(IX, C, 0, 4, 3, 5), IN(R, C, -1, 1, 3, 6)}},
    {"one_hot", VR_OP_ONE_HOT, ALL, f_one_hot, 0, EXACT, 0, 1, {IN(IX, C, 0, 10, 37, 13)}},
    /* sorting: ties (stability shows in the indices), specials, short, long and strided lines */
    {"sort [33, 100]", VR_OP_SORT, ALL, f_sort1, G0, EXACT | NO_FD, 0, 1, {IN(W, C, 0, 20, 33, 100)}},
    {"sort [33, 100] descending", VR_OP_SORT, ALL, f_sort1_desc, 0, EXACT, 0, 1, {IN(W, C, 0, 20, 33, 100)}},
    {"argsort [33, 100]", VR_OP_SORT, ALL, f_argsort1, 0, EXACT, 0, 1, {IN(W, C, 0, 20, 33, 100)}},
    {"argsort strided lines descending", VR_OP_SORT, ALL, f_argsort0_desc, 0, EXACT, 0, 1, {IN(W, C, 0, 20, 33, 100)}},
    {"sort specials", VR_OP_SORT, FLB, f_sort1, 0, EXACT, 0, 1, {IN(S, C, -1, 1, 33, 100)}},
    {"argsort specials descending", VR_OP_SORT, FLB, f_argsort1_desc, 0, EXACT | NO_REF, 0, 1, {IN(S, C, -1, 1, 3, 4096)}},
    {"argsort [3, 4096]", VR_OP_SORT, ALL, f_argsort1, 0, EXACT, 0, 1, {IN(W, C, 0, 100, 3, 4096)}},
    {"argsort [3, 5001]", VR_OP_SORT, ALL, f_argsort1, 0, EXACT, 0, 1, {IN(W, C, 0, 200, 3, 5001)}},
    {"argsort [9000, 2] dim 0", VR_OP_SORT, ALL, f_argsort0_desc, 0, EXACT, 0, 1, {IN(W, C, 0, 100, 9000, 2)}},
    {"sort lines of 1", VR_OP_SORT, ALL, f_sort1, 0, EXACT, 0, 1, {IN(W, C, 0, 50, 4, 1, 5)}},
    {"sort 1000003", VR_OP_SORT, D_(VR_F32), f_sort0, 0, EXACT, 0, 1, {IN(R, C, -1, 1, BIG)}},
    {"sort backward [4, 6000]", VR_OP_SORT, FL, f_sort1_desc, G0, NO_FD, 0, 1, {IN(W, C, 0, 100, 4, 6000)}},
    {"topk", VR_OP_SORT, ALL, f_topk1, G0, EXACT | NO_FD, 0, 1, {IN(W, T, 0, 100, 4, 600)}},
    {"topk indices smallest", VR_OP_SORT, ALL, f_topk1_idx, 0, EXACT, 0, 1, {IN(W, C, 0, 100, 4, 600)}},
    {"sort (small)", VR_OP_SORT, FL, f_sort1, G0, 0, 0, 1, {IN(R, T, -1, 1, 3, 5)}},
    /* regularizers: z V x B x D */
    {"visreg", VR_OP_VISREG, FL, f_visreg, G0, NO_FD, 1e-3, 1, {IN(R, C, -1, 1, 2, 64, 24)}},
    {"visreg given slices", VR_OP_VISREG, FL, f_visreg_slices, G0, 0, 1e-3, 2,
     {IN(R, T, -1, 1, 2, 64, 24), IN(R, C, -1, 1, 24, 16)}},
    {"swd", VR_OP_SWD, FL, f_swd, G0, 0, 1e-3, 1, {IN(R, C, -1, 1, 2, 64, 24)}},
    {"sigreg", VR_OP_SIGREG, FL, f_sigreg, G0, 0, 1e-3, 1, {IN(R, C, -1, 1, 2, 64, 24)}},
    {"vicreg", VR_OP_VICREG, FL, f_vicreg, G0, 0, 1e-3, 1, {IN(R, C, -1, 1, 2, 64, 24)}},
    {"vicreg pooled", VR_OP_VICREG_POOLED, FL, f_vicreg_pooled, G0, 0, 1e-3, 1, {IN(R, C, -1, 1, 2, 64, 24)}},
    {"barlow", VR_OP_BARLOW, FL, f_barlow, G0, 0, 1e-3, 1, {IN(R, C, -1, 1, 2, 64, 24)}},
    {"invariance", VR_OP_INVARIANCE, FL, f_invariance, G0, 0, 1e-3, 1, {IN(R, C, -1, 1, 4, 64, 24)}},
    {"visreg 256 slices", VR_OP_VISREG, FL, f_visreg_256, G0, NO_FD, 1e-3, 1, {IN(R, C, -1, 1, 2, 128, 32)}},
    /* the column passes over several chunks of 64 rows and an odd number of columns */
    {"vicreg chunks", VR_OP_VICREG, FL, f_vicreg, G0, 0, 1e-3, 1, {IN(R, C, -1, 1, 2, 300, 37)}},
    {"vicreg pooled chunks", VR_OP_VICREG_POOLED, FL, f_vicreg_pooled, G0, 0, 1e-3, 1, {IN(R, C, -1, 1, 3, 100, 37)}},
    {"barlow chunks", VR_OP_BARLOW, FL, f_barlow, G0, 0, 1e-3, 1, {IN(R, C, -1, 1, 3, 300, 37)}},
    {"invariance chunks", VR_OP_INVARIANCE, FL, f_invariance1, G0, 0, 1e-3, 1, {IN(R, C, -1, 1, 3, 300, 37)}},
    {"visreg center and scale (small)", VR_OP_VISREG, FL, f_visreg_center_scale, G0, 0, 1e-3, 1, {IN(R, C, -1, 1, 2, 8, 4)}},
    {"swd (small)", VR_OP_SWD, FL, f_swd, G0, 0, 1e-3, 1, {IN(R, C, -1, 1, 2, 8, 4)}},
    {"sigreg (small)", VR_OP_SIGREG, FL, f_sigreg, G0, 0, 1e-3, 1, {IN(R, C, -1, 1, 2, 8, 4)}},
    {"vicreg (small)", VR_OP_VICREG, FL, f_vicreg, G0, 0, 1e-3, 1, {IN(R, C, -1, 1, 2, 8, 4)}},
    {"vicreg pooled (small)", VR_OP_VICREG_POOLED, FL, f_vicreg_pooled, G0, 0, 1e-3, 1, {IN(R, C, -1, 1, 2, 8, 4)}},
    {"barlow (small)", VR_OP_BARLOW, FL, f_barlow, G0, 0, 1e-3, 1, {IN(R, C, -1, 1, 2, 8, 4)}},
    {"invariance (small)", VR_OP_INVARIANCE, FL, f_invariance, G0, 0, 1e-3, 1, {IN(R, C, -1, 1, 3, 8, 4)}},
    /* augmentation of u8 images with their sample ids; AdamW */
    {"augment", VR_OP_AUGMENT, D_(VR_F32), f_augment, 0, NO_REF, 1e-5, 2,
     {IN(U8, C, 0, 256, 5, 1, 28, 28), IN(IX, C, 0, 60000, 5)}},
    {"adamw", VR_OP_ADAMW, FL, f_adamw, 0, 0, 0, 4,
     {IN(R, C, -1, 1, 37, 129), IN(R, T, -1, 1, 37, 129), IN(R, C, -0.1, 0.1, 37, 129), IN(R, C, 0, 0.01, 37, 129)}},
};
#define N_OP_CASES ((int)(sizeof OP_CASES / sizeof *OP_CASES))
#endif
