/* join.c: concat, stack and split.
 *
 * vr_kernel_args convention: these ops have no kernel of their own.
 *  - concat allocates the output and, for each input xs[k], runs VR_OP_COPY with in[0] = xs[k]
 *    (any strides) and out[0] = the raw view of the output at [offset_k, offset_k + size_k) along
 *    dim (the output's strides, so not contiguous unless dim is 0). Backward hands each input the
 *    matching view of the output gradient.
 *  - stack = unsqueeze every input at dim, then concat.
 *  - split = vr_narrow views (differentiable through view.c's slice backward). */
#include "../internal.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* autograd nodes hold at most VR_NODE_MAX_IN inputs; longer concats that need grad are a tree */
static vr_status concat_backward(vr_node *n, vr_tensor *gout, vr_tensor **gin) {
  int dim = (int)n->i[0];
  int64_t off = 0;
  for (int k = 0; k < n->n_in; k++) {
    int64_t len = n->in[k].shape[dim];
    if (vr_node_needs(n, k)) {
      int64_t shape[VR_MAX_DIMS];
      memcpy(shape, gout->shape, sizeof shape);
      shape[dim] = len;
      VR_TRY(vr_tensor_view_raw(gout, gout->ndim, shape, gout->stride, gout->offset + off * gout->stride[dim], &gin[k]));
    }
    off += len;
  }
  return VR_OK;
}

static vr_status check_present(const char *func, int n, vr_tensor *const *xs) {
  if (n < 1) return vr_error_set(VR_E_ARG, func, __FILE__, __LINE__, "n: expected at least 1 tensor, got %d", n);
  if (!xs) return vr_error_set(VR_E_ARG, func, __FILE__, __LINE__, "xs: expected %d tensors, got NULL", n);
  for (int k = 0; k < n; k++)
    if (!xs[k]) return vr_error_set(VR_E_ARG, func, __FILE__, __LINE__, "xs[%d]: expected a tensor, got NULL", k);
  return VR_OK;
}

/* checks that xs[k] matches xs[0] in everything but the size at skip_dim (stack: -1, all sizes) */
static vr_status check_inputs(const char *func, int n, vr_tensor *const *xs, int skip_dim) {
  const vr_tensor *a = xs[0];
  for (int k = 1; k < n; k++) {
    const vr_tensor *b = xs[k];
    if (b->dtype != a->dtype)
      return vr_error_set(VR_E_DTYPE, func, __FILE__, __LINE__, "xs[%d]: expected %s like xs[0], got %s", k,
                          vr_dtype_name(a->dtype), vr_dtype_name(b->dtype));
    if (b->device != a->device)
      return vr_error_set(VR_E_DEVICE, func, __FILE__, __LINE__, "xs[%d]: expected a tensor on %s like xs[0], got %s", k,
                          vr_device_name(a->device), vr_device_name(b->device));
    bool ok = b->ndim == a->ndim;
    for (int d = 0; ok && d < a->ndim; d++) ok = d == skip_dim || a->shape[d] == b->shape[d];
    if (!ok) {
      char b1[96], b2[96], b3[32] = "";
      if (skip_dim >= 0) snprintf(b3, sizeof b3, " except at dim %d", skip_dim);
      return vr_error_set(VR_E_SHAPE, func, __FILE__, __LINE__, "xs[%d]: expected shape %s like xs[0]%s, got %s", k,
                          vr_shape_str(a->ndim, a->shape, b1, sizeof b1), b3, vr_shape_str(b->ndim, b->shape, b2, sizeof b2));
    }
  }
  return VR_OK;
}

/* one node over n <= VR_NODE_MAX_IN inputs (or any n without grad) */
static vr_status concat_flat(int n, vr_tensor *const *xs, int dim, vr_tensor **out) {
  const vr_tensor *a = xs[0];
  int64_t shape[VR_MAX_DIMS];
  memcpy(shape, a->shape, sizeof shape);
  shape[dim] = 0;
  for (int k = 0; k < n; k++)
    if (__builtin_add_overflow(shape[dim], xs[k]->shape[dim], &shape[dim]))
      return VR_FAIL(VR_E_SHAPE, "xs: sizes at dim %d add up past 2^63", dim);
  vr_tensor *o = NULL, *v = NULL;
  vr_status st;
  VR_TRYG(vr_tensor_alloc(a->ndim, shape, a->dtype, a->device, &o));
  int64_t off = 0;
  for (int k = 0; k < n; k++) {
    int64_t len = xs[k]->shape[dim];
    if (len > 0 && vr_tensor_numel(xs[k]) > 0) {
      int64_t vs[VR_MAX_DIMS];
      memcpy(vs, o->shape, sizeof vs);
      vs[dim] = len;
      VR_TRYG(vr_tensor_view_raw(o, o->ndim, vs, o->stride, off * o->stride[dim], &v));
      vr_kernel_args ka = {.in = {xs[k]}, .n_in = 1, .out = {v}, .n_out = 1};
      VR_TRYG(vr_dispatch(VR_OP_COPY, o->device, 0, &ka));
      vr_tensor_free(v);
      v = NULL;
    }
    off += len;
  }
  int64_t iv[1] = {dim};
  VR_TRYG(vr_record("concat", concat_backward, n, (const vr_tensor *const *)xs, 0, NULL, NULL, 0, iv, 1, o, NULL));
  *out = o;
  o = NULL;
done:
  vr_tensor_free(v);
  vr_tensor_free(o);
  return st;
}

static vr_status concat_tree(int n, vr_tensor *const *xs, int dim, vr_tensor **out) {
  if (n <= VR_NODE_MAX_IN || !vr_needs_grad(n, (const vr_tensor *const *)xs)) return concat_flat(n, xs, dim, out);
  int groups = (n + VR_NODE_MAX_IN - 1) / VR_NODE_MAX_IN;
  vr_tensor *parts[VR_NODE_MAX_IN * 4] = {0}, **pp = parts;
  if (groups > (int)(sizeof parts / sizeof *parts)) {
    pp = calloc((size_t)groups, sizeof *pp);
    if (!pp) return VR_FAIL(VR_E_OOM, "xs: no host memory for %d groups", groups);
  }
  vr_status st = VR_OK;
  for (int g = 0; g < groups && !st; g++) {
    int lo = g * VR_NODE_MAX_IN, m = n - lo < VR_NODE_MAX_IN ? n - lo : VR_NODE_MAX_IN;
    st = concat_flat(m, xs + lo, dim, &pp[g]);
  }
  if (!st) st = concat_tree(groups, pp, dim, out);
  for (int g = 0; g < groups; g++) vr_tensor_free(pp[g]);
  if (pp != parts) free(pp);
  return st;
}

vr_status vr_concat(int n, vr_tensor *const *xs, int dim, vr_tensor **out) {
  VR_CHECK_OUT(out);
  VR_TRY(check_present(__func__, n, xs));
  int d = vr_wrap_dim(dim, xs[0]->ndim);
  if (xs[0]->ndim == 0) return VR_FAIL(VR_E_SHAPE, "xs[0]: expected at least 1 dim, got a 0-dim tensor");
  if (d < 0) return VR_FAIL(VR_E_ARG, "dim: expected a dim of a %d-dim tensor, got %d", xs[0]->ndim, dim);
  if (n <= 16 && vr_autocast_mixed(n, (const vr_tensor *const *)xs)) { /* bf16 meets f32 under autocast: widen */
    vr_tensor *w[16];
    VR_TRY(vr_autocast_widen(n, (const vr_tensor *const *)xs, w));
    vr_status st = vr_concat(n, w, dim, out);
    for (int k = 0; k < n; k++) vr_tensor_free(w[k]);
    return st;
  }
  VR_TRY(check_inputs(__func__, n, xs, d));
  return concat_tree(n, xs, d, out);
}

vr_status vr_stack(int n, vr_tensor *const *xs, int dim, vr_tensor **out) {
  VR_CHECK_OUT(out);
  VR_TRY(check_present(__func__, n, xs));
  VR_TRY(check_inputs(__func__, n, xs, -1));
  int nd = xs[0]->ndim;
  if (nd >= VR_MAX_DIMS) return VR_FAIL(VR_E_SHAPE, "xs[0]: expected fewer than %d dims, got %d", VR_MAX_DIMS, nd);
  int d = dim < 0 ? dim + nd + 1 : dim;
  if (d < 0 || d > nd) return VR_FAIL(VR_E_ARG, "dim: expected %d..%d for %d-dim inputs, got %d", -nd - 1, nd, nd, dim);
  vr_tensor *small[16] = {0}, **us = small;
  if (n > 16) {
    us = calloc((size_t)n, sizeof *us);
    if (!us) return VR_FAIL(VR_E_OOM, "xs: no host memory for %d views", n);
  }
  vr_status st = VR_OK;
  for (int k = 0; k < n && !st; k++) st = vr_unsqueeze(xs[k], d, &us[k]);
  if (!st) st = concat_tree(n, us, d, out);
  for (int k = 0; k < n; k++) vr_tensor_free(us[k]);
  if (us != small) free(us);
  return st;
}

vr_status vr_split(const vr_tensor *x, int n, const int64_t *sizes, int dim, vr_tensor **outs) {
  VR_CHECK_TENSOR(x);
  VR_CHECK_OUT(outs);
  if (n < 1) return VR_FAIL(VR_E_ARG, "n: expected at least 1 piece, got %d", n);
  if (!sizes) return VR_FAIL(VR_E_ARG, "sizes: expected %d sizes, got NULL", n);
  if (x->ndim == 0) return VR_FAIL(VR_E_SHAPE, "x: expected at least 1 dim, got a 0-dim tensor");
  int d = vr_wrap_dim(dim, x->ndim);
  if (d < 0) return VR_FAIL(VR_E_ARG, "dim: expected a dim of a %d-dim tensor, got %d", x->ndim, dim);
  for (int k = 0; k < n; k++)
    if (sizes[k] < 0) return VR_FAIL(VR_E_ARG, "sizes[%d]: expected a size >= 0, got %lld", k, (long long)sizes[k]);
  int64_t total = 0;
  for (int k = 0; k < n; k++) {
    if (sizes[k] > x->shape[d] - total)
      return VR_FAIL(VR_E_SHAPE, "sizes: expected sizes summing to %lld (the size of dim %d), got more (past it at sizes[%d])",
                     (long long)x->shape[d], d, k);
    total += sizes[k];
  }
  if (total != x->shape[d])
    return VR_FAIL(VR_E_SHAPE, "sizes: expected sizes summing to %lld (the size of dim %d), got %lld",
                   (long long)x->shape[d], d, (long long)total);
  int64_t off = 0;
  for (int k = 0; k < n; k++) {
    vr_status st = vr_narrow(x, d, off, sizes[k], &outs[k]);
    if (st) {
      for (int j = 0; j < k; j++) {
        vr_tensor_free(outs[j]);
        outs[j] = NULL;
      }
      return st;
    }
    off += sizes[k];
  }
  return VR_OK;
}
