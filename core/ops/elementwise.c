/* elementwise.c: binary ops with broadcasting, scalar forms, unary maths, comparisons.
 *
 * How vr_kernel_args is filled (every device's kernels follow this):
 *  VR_OP_BINARY fwd: sub = VR_BIN_*; in = {a, b}, both already expanded (stride-0 views) to out's
 *    shape; out = {y}. a, b and y have one dtype, except comparisons (EQ/GT/LT) where y is u8.
 *    y may alias a exactly (vr_add_, vr_mul_scalar_ run in place: in[0] == out[0]); vr_add_ may
 *    also pass a b of another dtype (converted on load).
 *  VR_OP_BINARY bwd: sub = VR_BIN_MUL/DIV/POW/MAX/MIN; in = {grad_y, a, b} all of y's shape
 *    (a, b expanded); out = {grad_a, grad_b}, either may be NULL, both of y's shape (the front-end
 *    sums them down to the input shapes). MAX/MIN split the gradient in halves on ties (PyTorch).
 *    POW: grad_b is 0 where a == 0 and b >= 0 (PyTorch's convention), else grad * y * log(a).
 *  VR_OP_UNARY fwd: sub = VR_UN_*; in = {x}; out = {y} same shape and dtype; f[0] the scalar of the
 *    *_SCALAR variants and CLAMP's lower bound, f[1] CLAMP's upper bound (+-inf: no bound).
 *  VR_OP_UNARY bwd: sub, f as forward; in = {grad_y, x, y}, out = {grad_x}, all of x's shape.
 *
 * Mixed dtypes between a and b are an error (no implicit promotion); scalars are doubles.
 * Integer tensors are accepted by the ops that are exact on them (add, sub, mul, maximum,
 * minimum, comparisons, neg, abs, relu, square, clamp, add/mul/rsub_scalar); others need float.
 * On integer tensors a fractional scalar result is truncated toward zero and u8 wraps, as in C.
 * erf and erfinv are forward only (no tape node); erfinv is within ~1 ulp in f64 (Giles' start,
 * Halley steps on erf/erfc), so Gaussian quantiles sqrt(2) erfinv(2i/(B+1) - 1) match to 1e-15. */
#include "../internal.h"
#include <math.h>
#include <string.h>

/* stride-0 view of t broadcast to (nd, shape); no autograd */
static vr_status expand_raw(const vr_tensor *t, int nd, const int64_t *shape, vr_tensor **out) {
  int64_t st[VR_MAX_DIMS];
  int lead = nd - t->ndim;
  for (int i = 0; i < nd; i++) {
    int j = i - lead;
    st[i] = (j < 0 || (t->shape[j] == 1 && shape[i] != 1)) ? 0 : t->stride[j];
  }
  return vr_tensor_view_raw(t, nd, shape, st, t->offset, out);
}

/* a view of y without its grad_fn, for saving an op's output without a reference cycle */
static vr_status plain_view(const vr_tensor *y, vr_tensor **out) {
  return vr_tensor_view_raw(y, y->ndim, y->shape, y->stride, y->offset, out);
}

static bool bin_is_cmp(int kind) { return kind == VR_BIN_EQ || kind == VR_BIN_GT || kind == VR_BIN_LT; }
static bool bin_int_ok(int kind) { return kind != VR_BIN_DIV && kind != VR_BIN_POW; }

static const char *un_names[] = {"neg",  "exp",  "log",  "sqrt", "rsqrt",  "abs",        "tanh", "sigmoid",
                                 "relu", "gelu", "gelu", "sin",  "cos",    "square",     "clamp", "erf",
                                 "erfinv", "add_scalar", "mul_scalar", "rsub_scalar", "rdiv_scalar", "pow_scalar"};
static const char *bin_names[] = {"add", "sub", "mul", "div", "pow", "maximum", "minimum", "eq", "gt", "lt"};
#define N_OF(a) ((int)(sizeof(a) / sizeof *(a)))
const char *vr_unary_kind_name(int kind) { return kind >= 0 && kind < N_OF(un_names) ? un_names[kind] : "?"; }
const char *vr_binary_kind_name(int kind) { return kind >= 0 && kind < N_OF(bin_names) ? bin_names[kind] : "?"; }

/* ---------------------------------------------------------------- binary */

/* gradients of y's shape from the fused backward kernel; either output pointer may be NULL */
static vr_status binary_bwd_kernel(int kind, vr_tensor *gout, vr_tensor *a, vr_tensor *b, vr_tensor **ga,
                                   vr_tensor **gb) {
  vr_tensor *ae = NULL, *be = NULL, *oa = NULL, *ob = NULL;
  vr_status st;
  VR_TRYG(expand_raw(a, gout->ndim, gout->shape, &ae));
  VR_TRYG(expand_raw(b, gout->ndim, gout->shape, &be));
  if (ga) VR_TRYG(vr_tensor_alloc_like(gout, &oa));
  if (gb) VR_TRYG(vr_tensor_alloc_like(gout, &ob));
  vr_kernel_args k = {.in = {gout, ae, be}, .n_in = 3, .out = {oa, ob}, .n_out = 2, .sub = kind};
  VR_TRYG(vr_dispatch(VR_OP_BINARY, gout->device, 1, &k));
  if (ga) { *ga = oa; oa = NULL; }
  if (gb) { *gb = ob; ob = NULL; }
done:
  vr_tensor_free(ae);
  vr_tensor_free(be);
  vr_tensor_free(oa);
  vr_tensor_free(ob);
  return st;
}

static vr_status binary_backward(vr_node *n, vr_tensor *gout, vr_tensor **gin) {
  int kind = (int)n->i[0];
  vr_tensor *a = NULL, *b = NULL, *ga = NULL, *gb = NULL;
  vr_status st = VR_OK;
  bool na = vr_node_needs(n, 0), nb = vr_node_needs(n, 1);
  if (kind == VR_BIN_ADD || kind == VR_BIN_SUB) {
    if (na) { vr_tensor_retain(gout); ga = gout; }
    if (nb) {
      if (kind == VR_BIN_ADD) { vr_tensor_retain(gout); gb = gout; }
      else VR_TRYG(vr_neg(gout, &gb));
    }
  } else {
    VR_TRYG(vr_node_saved(n, 0, &a));
    VR_TRYG(vr_node_saved(n, 1, &b));
    VR_TRYG(binary_bwd_kernel(kind, gout, a, b, na ? &ga : NULL, nb ? &gb : NULL));
  }
  if (na) VR_TRYG(vr_sum_to_shape(ga, n->in[0].ndim, n->in[0].shape, &gin[0]));
  if (nb) VR_TRYG(vr_sum_to_shape(gb, n->in[1].ndim, n->in[1].shape, &gin[1]));
done:
  vr_tensor_free(ga);
  vr_tensor_free(gb);
  return st;
}

static vr_status binary(const char *func, int kind, const vr_tensor *a, const vr_tensor *b, vr_tensor **out) {
  if (!a) return vr_error_set(VR_E_ARG, func, __FILE__, __LINE__, "a: expected a tensor, got NULL");
  if (!b) return vr_error_set(VR_E_ARG, func, __FILE__, __LINE__, "b: expected a tensor, got NULL");
  if (!out) return vr_error_set(VR_E_ARG, func, __FILE__, __LINE__, "out: expected an output pointer, got NULL");
  if (a->device != b->device)
    return vr_error_set(VR_E_DEVICE, func, __FILE__, __LINE__, "b: expected a tensor on %s like a, got %s",
                        vr_device_name(a->device), vr_device_name(b->device));
  if (a->dtype != b->dtype)
    return vr_error_set(VR_E_DTYPE, func, __FILE__, __LINE__,
                        "b: expected %s like a, got %s (no implicit promotion: convert one with vr_tensor_to_dtype)",
                        vr_dtype_name(a->dtype), vr_dtype_name(b->dtype));
  if (!vr_is_float(a->dtype) && !bin_int_ok(kind))
    return vr_error_set(VR_E_DTYPE, func, __FILE__, __LINE__, "a: expected a float tensor, got %s",
                        vr_dtype_name(a->dtype));
  int nd = 0;
  int64_t shape[VR_MAX_DIMS];
  VR_TRY(vr_broadcast_shape(func, a, b, &nd, shape));
  vr_tensor *y = NULL, *ae = NULL, *be = NULL;
  vr_status st;
  VR_TRYG(vr_tensor_alloc(nd, shape, bin_is_cmp(kind) ? VR_U8 : a->dtype, a->device, &y));
  VR_TRYG(expand_raw(a, nd, shape, &ae));
  VR_TRYG(expand_raw(b, nd, shape, &be));
  if (vr_numel_of(nd, shape) > 0) {
    vr_kernel_args k = {.in = {ae, be}, .n_in = 2, .out = {y}, .n_out = 1, .sub = kind};
    VR_TRYG(vr_dispatch(VR_OP_BINARY, a->device, 0, &k));
  }
  if (!bin_is_cmp(kind) && vr_is_float(a->dtype)) {
    const vr_tensor *ins[2] = {a, b};
    bool save = kind != VR_BIN_ADD && kind != VR_BIN_SUB;
    int64_t iv = kind;
    VR_TRYG(vr_record(bin_names[kind], binary_backward, 2, ins, save ? 2 : 0, ins, NULL, 0, &iv, 1, y, NULL));
  }
  *out = y;
  y = NULL;
done:
  vr_tensor_free(y);
  vr_tensor_free(ae);
  vr_tensor_free(be);
  return st;
}

vr_status vr_add(const vr_tensor *a, const vr_tensor *b, vr_tensor **out) { return binary(__func__, VR_BIN_ADD, a, b, out); }
vr_status vr_sub(const vr_tensor *a, const vr_tensor *b, vr_tensor **out) { return binary(__func__, VR_BIN_SUB, a, b, out); }
vr_status vr_mul(const vr_tensor *a, const vr_tensor *b, vr_tensor **out) { return binary(__func__, VR_BIN_MUL, a, b, out); }
vr_status vr_div(const vr_tensor *a, const vr_tensor *b, vr_tensor **out) { return binary(__func__, VR_BIN_DIV, a, b, out); }
vr_status vr_pow(const vr_tensor *a, const vr_tensor *b, vr_tensor **out) { return binary(__func__, VR_BIN_POW, a, b, out); }
vr_status vr_maximum(const vr_tensor *a, const vr_tensor *b, vr_tensor **out) { return binary(__func__, VR_BIN_MAX, a, b, out); }
vr_status vr_minimum(const vr_tensor *a, const vr_tensor *b, vr_tensor **out) { return binary(__func__, VR_BIN_MIN, a, b, out); }
vr_status vr_eq(const vr_tensor *a, const vr_tensor *b, vr_tensor **out) { return binary(__func__, VR_BIN_EQ, a, b, out); }
vr_status vr_gt(const vr_tensor *a, const vr_tensor *b, vr_tensor **out) { return binary(__func__, VR_BIN_GT, a, b, out); }
vr_status vr_lt(const vr_tensor *a, const vr_tensor *b, vr_tensor **out) { return binary(__func__, VR_BIN_LT, a, b, out); }

/* ---------------------------------------------------------------- unary */

static bool un_int_ok(int kind) {
  return kind == VR_UN_NEG || kind == VR_UN_ABS || kind == VR_UN_RELU || kind == VR_UN_SQUARE || kind == VR_UN_CLAMP ||
         kind == VR_UN_ADD_SCALAR || kind == VR_UN_MUL_SCALAR || kind == VR_UN_RSUB_SCALAR;
}
static bool un_differentiable(int kind) { return kind != VR_UN_ERF && kind != VR_UN_ERFINV; }

static vr_status unary_backward(vr_node *n, vr_tensor *gout, vr_tensor **gin) {
  vr_tensor *x = NULL, *y = NULL, *gx = NULL;
  vr_status st;
  VR_TRYG(vr_node_saved(n, 0, &x));
  VR_TRYG(vr_node_saved(n, 1, &y));
  VR_TRYG(vr_tensor_alloc_like(x, &gx));
  vr_kernel_args k = {.in = {gout, x, y}, .n_in = 3, .out = {gx}, .n_out = 1, .sub = (int)n->i[0],
                      .f = {n->f[0], n->f[1]}};
  if (vr_tensor_numel(gx) > 0) VR_TRYG(vr_dispatch(VR_OP_UNARY, gout->device, 1, &k));
  gin[0] = gx;
  gx = NULL;
done:
  vr_tensor_free(gx);
  return st;
}

static vr_status unary(const char *func, int kind, const vr_tensor *a, double f0, double f1, vr_tensor **out) {
  if (!a) return vr_error_set(VR_E_ARG, func, __FILE__, __LINE__, "a: expected a tensor, got NULL");
  if (!out) return vr_error_set(VR_E_ARG, func, __FILE__, __LINE__, "out: expected an output pointer, got NULL");
  if (!vr_is_float(a->dtype) && !un_int_ok(kind))
    return vr_error_set(VR_E_DTYPE, func, __FILE__, __LINE__, "a: expected a float tensor, got %s",
                        vr_dtype_name(a->dtype));
  vr_tensor *y = NULL, *yv = NULL;
  vr_status st;
  VR_TRYG(vr_tensor_alloc_like(a, &y));
  if (vr_tensor_numel(a) > 0) {
    vr_kernel_args k = {.in = {(vr_tensor *)a}, .n_in = 1, .out = {y}, .n_out = 1, .sub = kind, .f = {f0, f1}};
    VR_TRYG(vr_dispatch(VR_OP_UNARY, a->device, 0, &k));
  }
  if (un_differentiable(kind) && vr_is_float(a->dtype) && vr_needs_grad(1, &a)) {
    VR_TRYG(plain_view(y, &yv));
    const vr_tensor *saved[2] = {a, yv};
    double f[2] = {f0, f1};
    int64_t iv = kind;
    VR_TRYG(vr_record(un_names[kind], unary_backward, 1, &a, 2, saved, f, 2, &iv, 1, y, NULL));
  }
  *out = y;
  y = NULL;
done:
  vr_tensor_free(y);
  vr_tensor_free(yv);
  return st;
}

vr_status vr_add_scalar(const vr_tensor *a, double s, vr_tensor **out) { return unary(__func__, VR_UN_ADD_SCALAR, a, s, 0, out); }
vr_status vr_mul_scalar(const vr_tensor *a, double s, vr_tensor **out) { return unary(__func__, VR_UN_MUL_SCALAR, a, s, 0, out); }
vr_status vr_rsub_scalar(const vr_tensor *a, double s, vr_tensor **out) { return unary(__func__, VR_UN_RSUB_SCALAR, a, s, 0, out); }
vr_status vr_rdiv_scalar(const vr_tensor *a, double s, vr_tensor **out) { return unary(__func__, VR_UN_RDIV_SCALAR, a, s, 0, out); }
vr_status vr_pow_scalar(const vr_tensor *a, double p, vr_tensor **out) { return unary(__func__, VR_UN_POW_SCALAR, a, p, 0, out); }
vr_status vr_neg(const vr_tensor *a, vr_tensor **out) { return unary(__func__, VR_UN_NEG, a, 0, 0, out); }
vr_status vr_exp(const vr_tensor *a, vr_tensor **out) { return unary(__func__, VR_UN_EXP, a, 0, 0, out); }
vr_status vr_log(const vr_tensor *a, vr_tensor **out) { return unary(__func__, VR_UN_LOG, a, 0, 0, out); }
vr_status vr_sqrt(const vr_tensor *a, vr_tensor **out) { return unary(__func__, VR_UN_SQRT, a, 0, 0, out); }
vr_status vr_rsqrt(const vr_tensor *a, vr_tensor **out) { return unary(__func__, VR_UN_RSQRT, a, 0, 0, out); }
vr_status vr_abs(const vr_tensor *a, vr_tensor **out) { return unary(__func__, VR_UN_ABS, a, 0, 0, out); }
vr_status vr_tanh(const vr_tensor *a, vr_tensor **out) { return unary(__func__, VR_UN_TANH, a, 0, 0, out); }
vr_status vr_sigmoid(const vr_tensor *a, vr_tensor **out) { return unary(__func__, VR_UN_SIGMOID, a, 0, 0, out); }
vr_status vr_relu(const vr_tensor *a, vr_tensor **out) { return unary(__func__, VR_UN_RELU, a, 0, 0, out); }
vr_status vr_gelu(const vr_tensor *a, int tanh_approx, vr_tensor **out) {
  return unary(__func__, tanh_approx ? VR_UN_GELU_TANH : VR_UN_GELU, a, 0, 0, out);
}
vr_status vr_sin(const vr_tensor *a, vr_tensor **out) { return unary(__func__, VR_UN_SIN, a, 0, 0, out); }
vr_status vr_cos(const vr_tensor *a, vr_tensor **out) { return unary(__func__, VR_UN_COS, a, 0, 0, out); }
vr_status vr_square(const vr_tensor *a, vr_tensor **out) { return unary(__func__, VR_UN_SQUARE, a, 0, 0, out); }
vr_status vr_clamp(const vr_tensor *a, double lo, double hi, vr_tensor **out) {
  if (isnan(lo) || isnan(hi) || lo > hi)
    return VR_FAIL(VR_E_ARG, "lo, hi: expected lo <= hi (+-inf for no bound), got %g, %g", lo, hi);
  return unary(__func__, VR_UN_CLAMP, a, lo, hi, out);
}
vr_status vr_erf(const vr_tensor *a, vr_tensor **out) { return unary(__func__, VR_UN_ERF, a, 0, 0, out); }
vr_status vr_erfinv(const vr_tensor *a, vr_tensor **out) { return unary(__func__, VR_UN_ERFINV, a, 0, 0, out); }

/* 0 * x is NaN exactly where x is not finite, so one device-neutral sum answers the question */
vr_status vr_isfinite_all(const vr_tensor *a, int *all_finite) {
  VR_CHECK_TENSOR(a);
  if (!all_finite) return VR_FAIL(VR_E_ARG, "all_finite: expected an output pointer, got NULL");
  if (!vr_is_float(a->dtype) || vr_tensor_numel(a) == 0) {
    *all_finite = 1;
    return VR_OK;
  }
  int prev = vr_set_grad_enabled(0);
  vr_tensor *z = NULL, *s = NULL;
  double v = 0;
  vr_status st;
  VR_TRYG(vr_mul_scalar(a, 0.0, &z));
  VR_TRYG(vr_sum(z, 0, NULL, 0, &s));
  VR_TRYG(vr_tensor_item(s, &v));
  *all_finite = v == 0;
done:
  vr_set_grad_enabled(prev);
  vr_tensor_free(z);
  vr_tensor_free(s);
  return st;
}
