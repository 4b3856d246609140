/* reduce.c: sum, mean, var, std, norm, max/min (values and indices), argmax/argmin.
 *
 * How vr_kernel_args is filled (every device's kernels follow this):
 *  VR_OP_SUM fwd: in = {x} (any strides); out = {y} of the keepdim shape (reduced dims have size
 *    1); i[0] = bitmask of the reduced dims of x; y = f[0] * sum. y has x's dtype, except integer
 *    x, which gives i64 (exact). Accumulate in double; deterministic whatever the thread count.
 *  VR_OP_VAR fwd: in = {x} float; out = {y} keepdim shape; i[0] bitmask; i[1] correction;
 *    y = sum (x - mean)^2 / (N - correction), two passes (mean first), in double.
 *  VR_OP_NORM fwd: in = {x} float; out = {y} keepdim shape; i[0] bitmask; f[0] = p > 0 (INFINITY
 *    for the max norm): y = (sum |x|^p)^(1/p), max |x| for p = inf.
 *  VR_OP_NORM bwd: in = {grad_y, x, y} with grad_y and y expanded (stride 0) to x's shape;
 *    out = {grad_x}; f[0] = p. grad_x = grad_y sign(x) |x|^(p-1) / y^(p-1) (0 where y = 0); for
 *    p = inf: grad_y sign(x) where |x| == y (the front-end has divided grad_y by the tie count).
 *  VR_OP_MAXMIN fwd: sub 0 max, 1 min; in = {x}; i[0] = dim (non-negative); out = {values,
 *    indices (i64)}, both of the keepdim shape. Ties: the first index; NaN wins (as in PyTorch).
 *  VR_OP_MAXMIN bwd: in = {grad_values, indices} (keepdim shape); out = {grad_x} of x's shape,
 *    written in full: zeros except grad_values at the selected indices; i[0] = dim.
 */
#include "../internal.h"
#include <math.h>
#include <string.h>

/* bitmask of reduced dims from (ndims, dims); ndims = 0 means all */
static vr_status dims_mask(const char *func, const vr_tensor *x, int ndims, const int *dims, int64_t *mask) {
  if (ndims < 0 || ndims > VR_MAX_DIMS)
    return vr_error_set(VR_E_ARG, func, __FILE__, __LINE__, "ndims: expected 0..%d, got %d", VR_MAX_DIMS, ndims);
  if (ndims == 0) {
    *mask = ((int64_t)1 << x->ndim) - 1;
    return VR_OK;
  }
  if (!dims) return vr_error_set(VR_E_ARG, func, __FILE__, __LINE__, "dims: expected %d dims, got NULL", ndims);
  int64_t m = 0;
  for (int k = 0; k < ndims; k++) {
    int d = vr_wrap_dim(dims[k], x->ndim);
    if (d < 0)
      return vr_error_set(VR_E_ARG, func, __FILE__, __LINE__, "dims[%d]: expected a dim in [%d, %d), got %d", k,
                          -(x->ndim ? x->ndim : 1), x->ndim ? x->ndim : 1, dims[k]);
    if (x->ndim == 0) continue;
    if ((m >> d) & 1)
      return vr_error_set(VR_E_ARG, func, __FILE__, __LINE__, "dims[%d]: dim %d appears twice", k, dims[k]);
    m |= (int64_t)1 << d;
  }
  *mask = m;
  return VR_OK;
}

static void keep_shape(const vr_tensor *x, int64_t mask, int64_t *shape) {
  for (int d = 0; d < x->ndim; d++) shape[d] = ((mask >> d) & 1) ? 1 : x->shape[d];
}

static int64_t reduced_count(const vr_tensor *x, int64_t mask) {
  int64_t n = 1;
  for (int d = 0; d < x->ndim; d++)
    if ((mask >> d) & 1) n *= x->shape[d];
  return n;
}

/* y (keepdim shape) viewed without the reduced dims; new reference, no autograd */
static vr_status drop_dims(vr_tensor *y, int64_t mask, vr_tensor **out) {
  int64_t shape[VR_MAX_DIMS], stride[VR_MAX_DIMS];
  int n = 0;
  for (int d = 0; d < y->ndim; d++) {
    if ((mask >> d) & 1) continue;
    shape[n] = y->shape[d];
    stride[n] = y->stride[d];
    n++;
  }
  return vr_tensor_view_raw(y, n, shape, stride, y->offset, out);
}

/* g of the output's shape (keepdim or not) as a view of the keepdim shape */
static vr_status grad_keepdim(vr_tensor *g, const vr_edge *in, int64_t mask, vr_tensor **out) {
  int64_t shape[VR_MAX_DIMS];
  for (int d = 0; d < in->ndim; d++) shape[d] = ((mask >> d) & 1) ? 1 : in->shape[d];
  return vr_reshape(g, in->ndim, shape, out);
}

/* runs the kernel into a keepdim-shaped y, then returns y or its reduced view */
static vr_status finish(vr_tensor *y, int64_t mask, int keepdim, vr_tensor **out) {
  if (keepdim) {
    *out = y;
    return VR_OK;
  }
  vr_status st = drop_dims(y, mask, out);
  vr_tensor_free(y);
  return st;
}

/* ---------------------------------------------------------------- sum and mean */

/* i[0] mask; f[0] scale: the gradient is scale * grad broadcast back to x's shape */
static vr_status sum_backward(vr_node *n, vr_tensor *gout, vr_tensor **gin) {
  vr_tensor *gk = NULL, *e = NULL;
  vr_status st;
  VR_TRYG(grad_keepdim(gout, &n->in[0], n->i[0], &gk));
  VR_TRYG(vr_expand(gk, n->in[0].ndim, n->in[0].shape, &e));
  if (n->f[0] != 1.0) VR_TRYG(vr_mul_scalar(e, n->f[0], &gin[0]));
  else VR_TRYG(vr_contiguous(e, &gin[0]));
done:
  vr_tensor_free(gk);
  vr_tensor_free(e);
  return st;
}

static vr_status sum_impl(const char *func, const vr_tensor *x, int ndims, const int *dims, int keepdim, int mean,
                          vr_tensor **out) {
  if (!x) return vr_error_set(VR_E_ARG, func, __FILE__, __LINE__, "x: expected a tensor, got NULL");
  if (!out) return vr_error_set(VR_E_ARG, func, __FILE__, __LINE__, "out: expected an output pointer, got NULL");
  if (mean && !vr_is_float(x->dtype))
    return vr_error_set(VR_E_DTYPE, func, __FILE__, __LINE__, "x: expected a float tensor, got %s",
                        vr_dtype_name(x->dtype));
  int64_t mask = 0, shape[VR_MAX_DIMS];
  VR_TRY(dims_mask(func, x, ndims, dims, &mask));
  keep_shape(x, mask, shape);
  int64_t cnt = reduced_count(x, mask);
  double scale = mean ? 1.0 / (double)cnt : 1.0;
  vr_tensor *y = NULL;
  vr_status st;
  VR_TRYG(vr_tensor_alloc(x->ndim, shape, vr_is_float(x->dtype) ? x->dtype : VR_I64, x->device, &y));
  if (vr_tensor_numel(y) > 0) {
    vr_kernel_args k = {.in = {(vr_tensor *)x}, .n_in = 1, .out = {y}, .n_out = 1, .i = {mask}, .f = {scale}};
    VR_TRYG(vr_dispatch(VR_OP_SUM, x->device, 0, &k));
  }
  VR_TRYG(finish(y, mask, keepdim, out));
  y = NULL;
  if (vr_is_float(x->dtype)) {
    st = vr_record(mean ? "mean" : "sum", sum_backward, 1, &x, 0, NULL, &scale, 1, &mask, 1, *out, NULL);
    if (st) {
      vr_tensor_free(*out);
      *out = NULL;
    }
  }
done:
  vr_tensor_free(y);
  return st;
}

vr_status vr_sum(const vr_tensor *x, int ndims, const int *dims, int keepdim, vr_tensor **out) {
  return sum_impl(__func__, x, ndims, dims, keepdim, 0, out);
}
vr_status vr_mean(const vr_tensor *x, int ndims, const int *dims, int keepdim, vr_tensor **out) {
  return sum_impl(__func__, x, ndims, dims, keepdim, 1, out);
}

/* the dims of a bitmask, for calling the public reductions in backward */
static int mask_dims(int ndim, int64_t mask, int *dims) {
  int n = 0;
  for (int d = 0; d < ndim; d++)
    if ((mask >> d) & 1) dims[n++] = d;
  return n;
}

/* ---------------------------------------------------------------- var and std */

/* saved x; i[0] mask; f[0] = 2 / (N - correction): grad_x = f[0] (x - mean) grad */
static vr_status var_backward(vr_node *n, vr_tensor *gout, vr_tensor **gin) {
  vr_tensor *x = NULL, *m = NULL, *d = NULL, *gk = NULL, *t = NULL;
  vr_status st;
  int dims[VR_MAX_DIMS];
  VR_TRYG(vr_node_saved(n, 0, &x));
  int nd = mask_dims(x->ndim, n->i[0], dims);
  if (nd == 0 && x->ndim > 0) { /* nothing reduced: var of one element is 0 or NaN */
    VR_TRYG(vr_mul_scalar(x, 0.0, &t));
    VR_TRYG(vr_mul(t, gout, &gin[0]));
    goto done;
  }
  VR_TRYG(vr_mean(x, nd, dims, 1, &m));
  VR_TRYG(vr_sub(x, m, &d));
  VR_TRYG(grad_keepdim(gout, &n->in[0], n->i[0], &gk));
  VR_TRYG(vr_mul(d, gk, &t));
  VR_TRYG(vr_mul_scalar(t, n->f[0], &gin[0]));
done:
  vr_tensor_free(m);
  vr_tensor_free(d);
  vr_tensor_free(gk);
  vr_tensor_free(t);
  return st;
}

static vr_status var_impl(const char *func, const vr_tensor *x, int ndims, const int *dims, int correction,
                          int keepdim, vr_tensor **out) {
  if (!x) return vr_error_set(VR_E_ARG, func, __FILE__, __LINE__, "x: expected a tensor, got NULL");
  if (!out) return vr_error_set(VR_E_ARG, func, __FILE__, __LINE__, "out: expected an output pointer, got NULL");
  if (!vr_is_float(x->dtype))
    return vr_error_set(VR_E_DTYPE, func, __FILE__, __LINE__, "x: expected a float tensor, got %s",
                        vr_dtype_name(x->dtype));
  if (correction < 0)
    return vr_error_set(VR_E_ARG, func, __FILE__, __LINE__, "correction: expected >= 0, got %d", correction);
  int64_t mask = 0, shape[VR_MAX_DIMS];
  VR_TRY(dims_mask(func, x, ndims, dims, &mask));
  keep_shape(x, mask, shape);
  double f = 2.0 / (double)(reduced_count(x, mask) - correction);
  vr_tensor *y = NULL;
  vr_status st;
  VR_TRYG(vr_tensor_alloc(x->ndim, shape, x->dtype, x->device, &y));
  if (vr_tensor_numel(y) > 0) {
    vr_kernel_args k = {.in = {(vr_tensor *)x}, .n_in = 1, .out = {y}, .n_out = 1, .i = {mask, correction}};
    VR_TRYG(vr_dispatch(VR_OP_VAR, x->device, 0, &k));
  }
  VR_TRYG(finish(y, mask, keepdim, out));
  y = NULL;
  st = vr_record("var", var_backward, 1, &x, 1, &x, &f, 1, &mask, 1, *out, NULL);
  if (st) {
    vr_tensor_free(*out);
    *out = NULL;
  }
done:
  vr_tensor_free(y);
  return st;
}

vr_status vr_var(const vr_tensor *x, int ndims, const int *dims, int correction, int keepdim, vr_tensor **out) {
  return var_impl(__func__, x, ndims, dims, correction, keepdim, out);
}

vr_status vr_std(const vr_tensor *x, int ndims, const int *dims, int correction, int keepdim, vr_tensor **out) {
  vr_tensor *v = NULL;
  VR_TRY(var_impl(__func__, x, ndims, dims, correction, keepdim, &v));
  vr_status st = vr_sqrt(v, out);
  vr_tensor_free(v);
  return st;
}

/* ---------------------------------------------------------------- norm */

/* saved x and y (keepdim, no grad_fn); i[0] mask; f[0] p */
static vr_status norm_backward(vr_node *n, vr_tensor *gout, vr_tensor **gin) {
  vr_tensor *x = NULL, *y = NULL, *gk = NULL, *ge = NULL, *ye = NULL, *gx = NULL;
  vr_tensor *ax = NULL, *tie = NULL, *tief = NULL, *cnt = NULL, *gd = NULL;
  vr_status st;
  double p = n->f[0];
  VR_TRYG(vr_node_saved(n, 0, &x));
  VR_TRYG(vr_node_saved(n, 1, &y));
  VR_TRYG(grad_keepdim(gout, &n->in[0], n->i[0], &gk));
  VR_TRYG(vr_expand(y, x->ndim, x->shape, &ye));
  if (isinf(p)) { /* the gradient is shared evenly between the tied maxima */
    int dims[VR_MAX_DIMS];
    int nd = mask_dims(x->ndim, n->i[0], dims);
    VR_TRYG(vr_abs(x, &ax));
    VR_TRYG(vr_eq(ax, ye, &tie));
    VR_TRYG(vr_tensor_to_dtype(tie, x->dtype, &tief));
    if (nd) VR_TRYG(vr_sum(tief, nd, dims, 1, &cnt));
    else { vr_tensor_retain(tief); cnt = tief; }
    VR_TRYG(vr_div(gk, cnt, &gd));
    vr_tensor_free(gk);
    gk = gd;
    gd = NULL;
  }
  VR_TRYG(vr_expand(gk, x->ndim, x->shape, &ge));
  VR_TRYG(vr_tensor_alloc_like(x, &gx));
  vr_kernel_args k = {.in = {ge, x, ye}, .n_in = 3, .out = {gx}, .n_out = 1, .f = {p}, .i = {n->i[0]}};
  if (vr_tensor_numel(gx) > 0) VR_TRYG(vr_dispatch(VR_OP_NORM, x->device, 1, &k));
  gin[0] = gx;
  gx = NULL;
done:
  vr_tensor_free(gk);
  vr_tensor_free(ge);
  vr_tensor_free(ye);
  vr_tensor_free(gx);
  vr_tensor_free(ax);
  vr_tensor_free(tie);
  vr_tensor_free(tief);
  vr_tensor_free(cnt);
  vr_tensor_free(gd);
  return st;
}

vr_status vr_norm(const vr_tensor *x, double p, int ndims, const int *dims, int keepdim, vr_tensor **out) {
  VR_CHECK_TENSOR(x);
  VR_CHECK_OUT(out);
  VR_CHECK_FLOAT(x);
  if (!(p > 0)) return VR_FAIL(VR_E_ARG, "p: expected p > 0 (INFINITY for the max norm), got %g", p);
  int64_t mask = 0, shape[VR_MAX_DIMS];
  VR_TRY(dims_mask(__func__, x, ndims, dims, &mask));
  keep_shape(x, mask, shape);
  vr_tensor *y = NULL, *yv = NULL;
  vr_status st;
  VR_TRYG(vr_tensor_alloc(x->ndim, shape, x->dtype, x->device, &y));
  if (vr_tensor_numel(y) > 0) {
    vr_kernel_args k = {.in = {(vr_tensor *)x}, .n_in = 1, .out = {y}, .n_out = 1, .i = {mask}, .f = {p}};
    VR_TRYG(vr_dispatch(VR_OP_NORM, x->device, 0, &k));
  }
  VR_TRYG(vr_tensor_view_raw(y, y->ndim, y->shape, y->stride, y->offset, &yv));
  VR_TRYG(finish(y, mask, keepdim, out));
  y = NULL;
  const vr_tensor *saved[2] = {x, yv};
  st = vr_record("norm", norm_backward, 1, &x, 2, saved, &p, 1, &mask, 1, *out, NULL);
  if (st) {
    vr_tensor_free(*out);
    *out = NULL;
  }
done:
  vr_tensor_free(y);
  vr_tensor_free(yv);
  return st;
}

/* ---------------------------------------------------------------- max and min */

/* saved indices (keepdim); i[0] dim */
static vr_status maxmin_backward(vr_node *n, vr_tensor *gout, vr_tensor **gin) {
  vr_tensor *ix = NULL, *gk = NULL, *gx = NULL;
  vr_status st;
  int64_t dim = n->i[0];
  VR_TRYG(vr_node_saved(n, 0, &ix));
  VR_TRYG(grad_keepdim(gout, &n->in[0], (int64_t)1 << dim, &gk));
  VR_TRYG(vr_tensor_alloc(n->in[0].ndim, n->in[0].shape, gout->dtype, gout->device, &gx));
  vr_kernel_args k = {.in = {gk, ix}, .n_in = 2, .out = {gx}, .n_out = 1, .i = {dim}};
  VR_TRYG(vr_dispatch(VR_OP_MAXMIN, gout->device, 1, &k));
  gin[0] = gx;
  gx = NULL;
done:
  vr_tensor_free(gk);
  vr_tensor_free(gx);
  return st;
}

static vr_status maxmin(const char *func, int is_min, const vr_tensor *x, int dim, int keepdim, vr_tensor **values,
                        vr_tensor **indices) {
  if (!x) return vr_error_set(VR_E_ARG, func, __FILE__, __LINE__, "x: expected a tensor, got NULL");
  if (!values && !indices)
    return vr_error_set(VR_E_ARG, func, __FILE__, __LINE__, "values, indices: expected at least one output pointer, got NULL");
  int d = vr_wrap_dim(dim, x->ndim);
  if (d < 0)
    return vr_error_set(VR_E_ARG, func, __FILE__, __LINE__, "dim: expected a dim in [%d, %d), got %d",
                        -(x->ndim ? x->ndim : 1), x->ndim ? x->ndim : 1, dim);
  if (x->ndim == 0) { /* a scalar is its own max, at index 0 */
    vr_status st = VR_OK;
    if (values) st = vr_tensor_clone(x, values);
    if (!st && indices) st = vr_tensor_zeros(0, NULL, VR_I64, x->device, indices);
    return st;
  }
  if (x->shape[d] == 0)
    return vr_error_set(VR_E_SHAPE, func, __FILE__, __LINE__, "x: expected a non-empty dim %d, got size 0", dim);
  int64_t mask = (int64_t)1 << d, shape[VR_MAX_DIMS];
  keep_shape(x, mask, shape);
  vr_tensor *v = NULL, *ix = NULL, *vo = NULL, *io = NULL;
  vr_status st;
  VR_TRYG(vr_tensor_alloc(x->ndim, shape, x->dtype, x->device, &v));
  VR_TRYG(vr_tensor_alloc(x->ndim, shape, VR_I64, x->device, &ix));
  if (vr_tensor_numel(v) > 0) {
    vr_kernel_args k = {.in = {(vr_tensor *)x}, .n_in = 1, .out = {v, ix}, .n_out = 2, .i = {d}, .sub = is_min};
    VR_TRYG(vr_dispatch(VR_OP_MAXMIN, x->device, 0, &k));
  }
  if (values && vr_is_float(x->dtype)) {
    int64_t iv = d;
    const vr_tensor *saved = ix;
    VR_TRYG(vr_record(is_min ? "min" : "max", maxmin_backward, 1, &x, 1, &saved, NULL, 0, &iv, 1, v, NULL));
  }
  if (keepdim) {
    vr_tensor_retain(v);
    vo = v;
    vr_tensor_retain(ix);
    io = ix;
  } else {
    VR_TRYG(vr_squeeze(v, d, &vo)); /* differentiable: the node stays on v */
    VR_TRYG(drop_dims(ix, mask, &io));
  }
  if (values) { *values = vo; vo = NULL; }
  if (indices) { *indices = io; io = NULL; }
done:
  vr_tensor_free(v);
  vr_tensor_free(ix);
  vr_tensor_free(vo);
  vr_tensor_free(io);
  return st;
}

vr_status vr_max(const vr_tensor *x, int dim, int keepdim, vr_tensor **values, vr_tensor **indices) {
  return maxmin(__func__, 0, x, dim, keepdim, values, indices);
}
vr_status vr_min(const vr_tensor *x, int dim, int keepdim, vr_tensor **values, vr_tensor **indices) {
  return maxmin(__func__, 1, x, dim, keepdim, values, indices);
}
vr_status vr_argmax(const vr_tensor *x, int dim, int keepdim, vr_tensor **out) {
  VR_CHECK_OUT(out);
  return maxmin(__func__, 0, x, dim, keepdim, NULL, out);
}
vr_status vr_argmin(const vr_tensor *x, int dim, int keepdim, vr_tensor **out) {
  VR_CHECK_OUT(out);
  return maxmin(__func__, 1, x, dim, keepdim, NULL, out);
}

/* over all elements: the flattened tensor's max along dim 0; the gradient goes to the first
 * extreme element */
static vr_status maxmin_all(const char *func, int is_min, const vr_tensor *x, vr_tensor **out) {
  if (!x) return vr_error_set(VR_E_ARG, func, __FILE__, __LINE__, "x: expected a tensor, got NULL");
  if (!out) return vr_error_set(VR_E_ARG, func, __FILE__, __LINE__, "out: expected an output pointer, got NULL");
  if (vr_tensor_numel(x) == 0)
    return vr_error_set(VR_E_SHAPE, func, __FILE__, __LINE__, "x: expected a non-empty tensor, got 0 elements");
  vr_tensor *f = NULL;
  int64_t n = -1;
  VR_TRY(vr_reshape(x, 1, &n, &f));
  vr_status st = maxmin(func, is_min, f, 0, 0, out, NULL);
  vr_tensor_free(f);
  return st;
}
vr_status vr_max_all(const vr_tensor *x, vr_tensor **out) { return maxmin_all(__func__, 0, x, out); }
vr_status vr_min_all(const vr_tensor *x, vr_tensor **out) { return maxmin_all(__func__, 1, x, out); }
