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
