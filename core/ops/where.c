/* where.c: where(cond, a, b) with broadcasting, and masked_fill on top of it.
 *
 * vr_kernel_args for VR_OP_WHERE (fwd only):
 *   in[0] cond (u8), in[1] a, in[2] b: each a raw view expanded to out's shape (stride 0 on
 *         broadcast dims, otherwise the caller's strides: not contiguous in general)
 *   out[0] contiguous, the broadcast shape, a's dtype (= b's).  out = cond != 0 ? a : b.
 * Backward: grad_a = where(cond, g, 0) and grad_b = where(cond, 0, g), each summed to its input's
 * shape (vr_sum_to_shape). masked_fill(x, mask, v) = where(mask, v, x) with mask broadcast to x. */
#include "../internal.h"
#include <string.h>

/* raw (no autograd) view of t expanded to shape (t must broadcast to it) */
static vr_status expand_raw(const vr_tensor *t, int ndim, const int64_t *shape, vr_tensor **out) {
  int64_t st[VR_MAX_DIMS];
  for (int i = 0; i < ndim; i++) {
    int j = i - (ndim - t->ndim);
    st[i] = (j < 0 || t->shape[j] != shape[i] || t->shape[j] == 1) ? 0 : t->stride[j];
  }
  return vr_tensor_view_raw(t, ndim, shape, st, t->offset, out);
}

/* shape of the broadcast of n tensors; names[k] is used in the message */
static vr_status broadcast_n(const char *func, int n, const vr_tensor *const *ts, const char *const *names, int *ndim,
                             int64_t *shape) {
  int nd = 0;
  for (int k = 0; k < n; k++)
    if (ts[k]->ndim > nd) nd = ts[k]->ndim;
  for (int i = 0; i < nd; i++) shape[i] = 1;
  for (int k = 0; k < n; k++)
    for (int i = 0; i < nd; i++) {
      int j = i - (nd - ts[k]->ndim);
      if (j < 0) continue;
      int64_t s = ts[k]->shape[j];
      if (s == shape[i] || s == 1) continue;
      if (shape[i] != 1) {
        char b1[96];
        return vr_error_set(VR_E_SHAPE, func, __FILE__, __LINE__,
                            "%s: expected a shape that broadcasts with the others, got %s (size %lld at dim %d where "
                            "the others have %lld)",
                            names[k], vr_shape_str(ts[k]->ndim, ts[k]->shape, b1, sizeof b1), (long long)s, i,
                            (long long)shape[i]);
      }
      shape[i] = s;
    }
  *ndim = nd;
  return VR_OK;
}

static vr_status where_backward(vr_node *n, vr_tensor *gout, vr_tensor **gin) {
  vr_tensor *cond = NULL, *zero = NULL, *t = NULL;
  vr_status st;
  VR_TRYG(vr_node_saved(n, 0, &cond));
  VR_TRYG(vr_tensor_zeros(0, NULL, gout->dtype, gout->device, &zero));
  for (int k = 0; k < 2; k++) {
    if (!vr_node_needs(n, k)) continue;
    VR_TRYG(vr_where(cond, k == 0 ? gout : zero, k == 0 ? zero : gout, &t));
    VR_TRYG(vr_sum_to_shape(t, n->in[k].ndim, n->in[k].shape, &gin[k]));
    vr_tensor_free(t);
    t = NULL;
  }
done:
  vr_tensor_free(zero);
  vr_tensor_free(t);
  return st;
}

vr_status vr_where(const vr_tensor *cond, const vr_tensor *a, const vr_tensor *b, vr_tensor **out) {
  VR_CHECK_TENSOR(cond);
  VR_CHECK_TENSOR(a);
  VR_CHECK_TENSOR(b);
  VR_CHECK_OUT(out);
  if (cond->dtype != VR_U8) return VR_FAIL(VR_E_DTYPE, "cond: expected a u8 mask, got %s", vr_dtype_name(cond->dtype));
  VR_CHECK_SAME_DTYPE(a, b);
  VR_CHECK_SAME_DEVICE(a, b);
  VR_CHECK_SAME_DEVICE(a, cond);
  const vr_tensor *ts[3] = {cond, a, b};
  static const char *const names[3] = {"cond", "a", "b"};
  int nd = 0;
  int64_t shape[VR_MAX_DIMS];
  VR_TRY(broadcast_n(__func__, 3, ts, names, &nd, shape));
  vr_tensor *o = NULL, *e[3] = {0};
  vr_status st;
  VR_TRYG(vr_tensor_alloc(nd, shape, a->dtype, a->device, &o));
  if (vr_tensor_numel(o)) {
    for (int k = 0; k < 3; k++) VR_TRYG(expand_raw(ts[k], nd, shape, &e[k]));
    vr_kernel_args ka = {.in = {e[0], e[1], e[2]}, .n_in = 3, .out = {o}, .n_out = 1};
    VR_TRYG(vr_dispatch(VR_OP_WHERE, a->device, 0, &ka));
  }
  const vr_tensor *inputs[2] = {a, b}, *saved[1] = {cond};
  VR_TRYG(vr_record("where", where_backward, 2, inputs, 1, saved, NULL, 0, NULL, 0, o, NULL));
  *out = o;
  o = NULL;
done:
  for (int k = 0; k < 3; k++) vr_tensor_free(e[k]);
  vr_tensor_free(o);
  return st;
}

vr_status vr_masked_fill(const vr_tensor *x, const vr_tensor *mask, double value, vr_tensor **out) {
  VR_CHECK_TENSOR(x);
  VR_CHECK_TENSOR(mask);
  VR_CHECK_OUT(out);
  if (mask->dtype != VR_U8) return VR_FAIL(VR_E_DTYPE, "mask: expected a u8 mask, got %s", vr_dtype_name(mask->dtype));
  VR_CHECK_SAME_DEVICE(x, mask);
  bool ok = mask->ndim <= x->ndim;
  for (int i = 0; ok && i < mask->ndim; i++) {
    int64_t s = mask->shape[i], t = x->shape[i + x->ndim - mask->ndim];
    ok = s == t || s == 1;
  }
  if (!ok) {
    char b1[96], b2[96];
    return VR_FAIL(VR_E_SHAPE, "mask: expected a shape that broadcasts to x's %s, got %s",
                   vr_shape_str(x->ndim, x->shape, b1, sizeof b1), vr_shape_str(mask->ndim, mask->shape, b2, sizeof b2));
  }
  vr_tensor *v = NULL;
  VR_TRY(vr_tensor_full(0, NULL, value, x->dtype, x->device, &v));
  vr_status st = vr_where(mask, v, x, out);
  vr_tensor_free(v);
  return st;
}
