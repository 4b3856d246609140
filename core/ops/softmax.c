/* softmax.c: softmax and log-softmax along one dim, and the fused cross-entropy loss.
 *
 * vr_kernel_args, as every backend receives it (the front-end makes every tensor contiguous):
 *
 * VR_OP_SOFTMAX forward, sub 0 softmax, sub 1 log_softmax: x is read as outer x D x inner, D the
 *   size of the softmax dim; line (o, i) holds elements o D inner + d inner + i, d < D
 *   in   = {x};  out = {y [x's shape]}
 *   i[0] = outer, i[1] = D, i[2] = inner. Subtract the line's max first (numerically stable).
 * VR_OP_SOFTMAX backward, same sub:
 *   in   = {grad_y, y (the forward's output)};  out = {grad_x}
 *   i[0..2] as forward. softmax: gx = y (g - sum_d g y); log_softmax: gx = g - exp(y) sum_d g.
 *
 * VR_OP_CROSS_ENTROPY forward: logits N x C (N >= 1, C >= 1), target i64 [N] with every value in [0, C)
 *   (the front-end has checked the range, on the host)
 *   in   = {logits, target};  out = {loss [] (0-dim, logits' dtype), lse [N] (log-sum-exp per row)}
 *   i[0] = N, i[1] = C;  f[0] = label smoothing eps in [0, 1]
 *   loss = (1/N) sum_n [(1 - eps)(lse_n - x_{n,t_n}) + eps (lse_n - (1/C) sum_c x_{n,c})]
 *   (PyTorch's definition). The sum over rows must be deterministic.
 * VR_OP_CROSS_ENTROPY backward:
 *   in   = {grad_loss [] (0-dim), logits, target, lse};  out = {grad_logits [N x C]}
 *   i[0..1], f[0] as forward. grad = (g/N)(softmax - eps/C - (1 - eps) onehot(t)).
 */
#include "../internal.h"
#include <math.h>

static vr_status prep_grad(vr_tensor *g, vr_dtype dt, vr_tensor **out) {
  if (g->dtype == dt) return vr_contiguous_raw(g, out);
  return vr_tensor_to_dtype(g, dt, out);
}

/* ---------------------------------------------------------------- softmax, log_softmax */

static vr_status sm_backward(vr_node *n, vr_tensor *gout, vr_tensor **gin) {
  vr_tensor *y = NULL, *g = NULL, *gx = NULL;
  VR_TRY(vr_node_saved(n, 0, &y));
  VR_TRY(prep_grad(gout, y->dtype, &g));
  vr_status st = VR_OK;
  VR_TRYG(vr_tensor_alloc_like(y, &gx));
  if (vr_tensor_numel(y) > 0) {
    vr_kernel_args a = {.in = {g, y}, .n_in = 2, .out = {gx}, .n_out = 1, .i = {n->i[0], n->i[1], n->i[2]},
                        .sub = (int)n->i[3]};
    VR_TRYG(vr_dispatch(VR_OP_SOFTMAX, y->device, 1, &a));
  }
  gin[0] = gx;
  gx = NULL;
done:
  vr_tensor_free(g);
  vr_tensor_free(gx);
  return st;
}

static vr_status softmax_common(const char *func, const vr_tensor *x, int dim, int sub, vr_tensor **out) {
  if (!x) return vr_error_set(VR_E_ARG, func, __FILE__, __LINE__, "x: expected a tensor, got NULL");
  if (!out) return vr_error_set(VR_E_ARG, func, __FILE__, __LINE__, "out: expected an output pointer, got NULL");
  if (!vr_is_float(x->dtype))
    return vr_error_set(VR_E_DTYPE, func, __FILE__, __LINE__, "x: expected a float tensor, got %s",
                        vr_dtype_name(x->dtype));
  int d = vr_wrap_dim(dim, x->ndim);
  if (d < 0) {
    int n = x->ndim > 0 ? x->ndim : 1;
    return vr_error_set(VR_E_ARG, func, __FILE__, __LINE__, "dim: expected a dim in [%d, %d] for x with %d dims, got %d",
                        -n, n - 1, x->ndim, dim);
  }
  int64_t outer = 1, D = 1, inner = 1;
  if (x->ndim > 0) {
    outer = vr_numel_of(d, x->shape);
    D = x->shape[d];
    inner = vr_numel_of(x->ndim - d - 1, x->shape + d + 1);
  }
  vr_tensor *xc = NULL, *y = NULL, *yv = NULL;
  vr_status st = VR_OK;
  VR_TRYG(vr_contiguous_raw(x, &xc));
  VR_TRYG(vr_tensor_alloc_like(xc, &y));
  if (vr_tensor_numel(y) > 0) {
    vr_kernel_args a = {.in = {xc}, .n_in = 1, .out = {y}, .n_out = 1, .i = {outer, D, inner}, .sub = sub};
    VR_TRYG(vr_dispatch(VR_OP_SOFTMAX, x->device, 0, &a));
  }
  /* backward needs y; saving y's own handle would make a cycle (y -> node -> y), so the node
   * keeps a second handle onto y's storage, which still sees in-place writes through the version */
  if (vr_needs_grad(1, (const vr_tensor *const *)&x))
    VR_TRYG(vr_tensor_view_raw(y, y->ndim, y->shape, y->stride, y->offset, &yv));
  const vr_tensor *ins[1] = {x}, *saved[1] = {yv};
  int64_t iv[4] = {outer, D, inner, sub};
  VR_TRYG(vr_record(sub ? "log_softmax" : "softmax", sm_backward, 1, ins, 1, saved, NULL, 0, iv, 4, y, NULL));
  *out = y;
  y = NULL;
done:
  vr_tensor_free(xc);
  vr_tensor_free(y);
  vr_tensor_free(yv);
  return st;
}

vr_status vr_softmax(const vr_tensor *x, int dim, vr_tensor **out) { return softmax_common(__func__, x, dim, 0, out); }
vr_status vr_log_softmax(const vr_tensor *x, int dim, vr_tensor **out) {
  return softmax_common(__func__, x, dim, 1, out);
}

/* ---------------------------------------------------------------- cross-entropy */

static vr_status ce_backward(vr_node *n, vr_tensor *gout, vr_tensor **gin) {
  vr_tensor *x = NULL, *t = NULL, *lse = NULL, *g = NULL, *gx = NULL;
  VR_TRY(vr_node_saved(n, 0, &x));
  VR_TRY(vr_node_saved(n, 1, &t));
  VR_TRY(vr_node_saved(n, 2, &lse));
  VR_TRY(prep_grad(gout, x->dtype, &g));
  vr_status st = VR_OK;
  VR_TRYG(vr_tensor_alloc_like(x, &gx));
  if (vr_tensor_numel(x) > 0) {
    vr_kernel_args a = {.in = {g, x, t, lse}, .n_in = 4, .out = {gx}, .n_out = 1, .i = {n->i[0], n->i[1]},
                        .f = {n->f[0]}};
    VR_TRYG(vr_dispatch(VR_OP_CROSS_ENTROPY, x->device, 1, &a));
  }
  gin[0] = gx;
  gx = NULL;
done:
  vr_tensor_free(g);
  vr_tensor_free(gx);
  return st;
}

/* every class index in [0, C), read on the host so that each backend can trust it */
static vr_status check_targets(const vr_tensor *tc, int64_t C) {
  vr_tensor *h = NULL;
  if (tc->device == VR_CPU) {
    h = (vr_tensor *)tc;
    vr_tensor_retain(h);
  } else {
    VR_TRY(vr_tensor_to_device(tc, VR_CPU, &h));
  }
  const int64_t *p = vr_data(h);
  int64_t N = vr_tensor_numel(h);
  vr_status st = VR_OK;
  for (int64_t k = 0; k < N; k++)
    if (p[k] < 0 || p[k] >= C) {
      st = vr_error_set(VR_E_ARG, "vr_cross_entropy", __FILE__, __LINE__,
                        "target: expected class indices in [0, %lld), got %lld at index %lld", (long long)C,
                        (long long)p[k], (long long)k);
      break;
    }
  vr_tensor_free(h);
  return st;
}

vr_status vr_cross_entropy(const vr_tensor *logits, const vr_tensor *target, double label_smoothing, vr_tensor **out) {
  VR_CHECK_TENSOR(logits);
  VR_CHECK_TENSOR(target);
  VR_CHECK_OUT(out);
  VR_CHECK_FLOAT(logits);
  if (logits->ndim != 2) return VR_FAIL(VR_E_SHAPE, "logits: expected N x C (2 dims), got %d dims", logits->ndim);
  int64_t N = logits->shape[0], C = logits->shape[1];
  if (C < 1) return VR_FAIL(VR_E_SHAPE, "logits: expected at least 1 class, got C = 0");
  if (target->dtype != VR_I64)
    return VR_FAIL(VR_E_DTYPE, "target: expected i64 class indices, got %s", vr_dtype_name(target->dtype));
  VR_CHECK_SAME_DEVICE(logits, target);
  if (target->ndim != 1 || target->shape[0] != N) {
    char b[96];
    return VR_FAIL(VR_E_SHAPE, "target: expected shape [%lld] (N of logits), got %s", (long long)N,
                   vr_shape_str(target->ndim, target->shape, b, sizeof b));
  }
  if (!(label_smoothing >= 0 && label_smoothing <= 1))
    return VR_FAIL(VR_E_ARG, "label_smoothing: expected a value in [0, 1], got %g", label_smoothing);
  vr_tensor *xc = NULL, *tc = NULL, *loss = NULL, *lse = NULL;
  vr_status st = VR_OK;
  VR_TRYG(vr_contiguous_raw(target, &tc));
  VR_TRYG(check_targets(tc, C));
  VR_TRYG(vr_contiguous_raw(logits, &xc));
  VR_TRYG(vr_tensor_alloc(0, NULL, logits->dtype, logits->device, &loss));
  VR_TRYG(vr_tensor_alloc(1, &N, logits->dtype == VR_BF16 ? VR_F32 : logits->dtype, logits->device, &lse));
  if (N == 0) {
    VR_TRYG(vr_fill_(loss, NAN)); /* the mean of nothing, as in PyTorch */
  } else {
    vr_kernel_args a = {.in = {xc, tc}, .n_in = 2, .out = {loss, lse}, .n_out = 2, .i = {N, C}, .f = {label_smoothing}};
    VR_TRYG(vr_dispatch(VR_OP_CROSS_ENTROPY, logits->device, 0, &a));
  }
  const vr_tensor *ins[1] = {logits}, *saved[3] = {xc, tc, lse};
  double fv[1] = {label_smoothing};
  int64_t iv[2] = {N, C};
  VR_TRYG(vr_record("cross_entropy", ce_backward, 1, ins, 3, saved, fv, 1, iv, 2, loss, NULL));
  *out = loss;
  loss = NULL;
done:
  vr_tensor_free(xc);
  vr_tensor_free(tc);
  vr_tensor_free(loss);
  vr_tensor_free(lse);
  return st;
}
