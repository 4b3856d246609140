/* sort.c: sort, argsort and topk along one dim. Stable: equal keys keep their original order in
 * both directions; NaN sorts as the largest value (last ascending, first descending).
 *
 * vr_kernel_args for VR_OP_SORT (fwd only):
 *   in[0]  x, contiguous (the front-end copies strided inputs), f32, f64, bf16, i32, i64 or u8
 *   out[0] values, contiguous, x's dtype, x's shape with k at dim
 *   out[1] indices, contiguous i64, the same shape: positions along dim in x
 *   i[0] dim (wrapped; 0 for a 0-dim x), i[1] descending (0/1), i[2] k (= the size at dim for sort)
 * The kernel sorts each line independently (lines in parallel) and writes its first k entries.
 *
 * Backward (values only; indices are not differentiable): grad_x = scatter_add(zeros like x, dim,
 * indices, grad_values), device-neutral through the scatter/gather ops. */
#include "../internal.h"
#include <string.h>

static vr_status sort_backward(vr_node *n, vr_tensor *gout, vr_tensor **gin) {
  vr_tensor *idx = NULL, *z = NULL;
  VR_TRY(vr_node_saved(n, 0, &idx));
  const vr_edge *e = &n->in[0];
  if (e->ndim == 0) { /* a 0-dim sort is the identity */
    vr_tensor_retain(gout);
    gin[0] = gout;
    return VR_OK;
  }
  VR_TRY(vr_tensor_zeros(e->ndim, e->shape, gout->dtype, gout->device, &z));
  vr_status st = vr_scatter_add(z, (int)n->i[0], idx, gout, &gin[0]);
  vr_tensor_free(z);
  return st;
}

/* the shared body of sort and topk: k entries along d of the (descending) sort */
static vr_status sort_impl(const char *func, const char *name, const vr_tensor *x, int dim, int64_t k, int k_given,
                           int descending, vr_tensor **values, vr_tensor **indices) {
  if (!x) return vr_error_set(VR_E_ARG, func, __FILE__, __LINE__, "x: expected a tensor, got NULL");
  if (!values && !indices)
    return vr_error_set(VR_E_ARG, func, __FILE__, __LINE__, "values, indices: expected at least one output, got NULL");
  if (x->dtype != VR_F32 && x->dtype != VR_F64 && x->dtype != VR_BF16 && x->dtype != VR_I32 && x->dtype != VR_I64 &&
      x->dtype != VR_U8)
    return vr_error_set(VR_E_DTYPE, func, __FILE__, __LINE__, "x: expected a sortable dtype, got %s",
                        vr_dtype_name(x->dtype));
  int d = vr_wrap_dim(dim, x->ndim);
  if (d < 0)
    return vr_error_set(VR_E_ARG, func, __FILE__, __LINE__, "dim: expected a dim of a %d-dim tensor, got %d", x->ndim,
                        dim);
  int64_t n = x->ndim ? x->shape[d] : 1;
  if (n > (int64_t)UINT32_MAX)
    return vr_error_set(VR_E_ARG, func, __FILE__, __LINE__, "x: expected at most %lld elements along dim %d, got %lld",
                        (long long)UINT32_MAX, d, (long long)n);
  if (!k_given) k = n;
  if (k < 0 || k > n)
    return vr_error_set(VR_E_ARG, func, __FILE__, __LINE__, "k: expected 0..%lld (the size of dim %d), got %lld",
                        (long long)n, d, (long long)k);
  int64_t shape[VR_MAX_DIMS];
  memcpy(shape, x->shape, sizeof shape);
  if (x->ndim) shape[d] = k;
  vr_tensor *xc = NULL, *v = NULL, *ix = NULL;
  vr_status st;
  VR_TRYG(vr_contiguous_raw(x, &xc));
  VR_TRYG(vr_tensor_alloc(x->ndim, shape, x->dtype, x->device, &v));
  VR_TRYG(vr_tensor_alloc(x->ndim, shape, VR_I64, x->device, &ix));
  if (vr_tensor_numel(v)) {
    vr_kernel_args a = {.in = {xc}, .n_in = 1, .out = {v, ix}, .n_out = 2, .i = {d, descending ? 1 : 0, k}};
    VR_TRYG(vr_dispatch(VR_OP_SORT, x->device, 0, &a));
  }
  if (values) {
    int64_t iv[1] = {d};
    const vr_tensor *saved[1] = {ix};
    VR_TRYG(vr_record(name, sort_backward, 1, &x, 1, saved, NULL, 0, iv, 1, v, NULL));
    *values = v;
    v = NULL;
  }
  if (indices) {
    *indices = ix;
    ix = NULL;
  }
done:
  vr_tensor_free(xc);
  vr_tensor_free(v);
  vr_tensor_free(ix);
  return st;
}

vr_status vr_sort(const vr_tensor *x, int dim, int descending, vr_tensor **values, vr_tensor **indices) {
  return sort_impl(__func__, "sort", x, dim, 0, 0, descending, values, indices);
}

vr_status vr_argsort(const vr_tensor *x, int dim, int descending, vr_tensor **out) {
  VR_CHECK_OUT(out);
  return sort_impl(__func__, "argsort", x, dim, 0, 0, descending, NULL, out);
}

vr_status vr_topk(const vr_tensor *x, int64_t k, int dim, int largest, vr_tensor **values, vr_tensor **indices) {
  return sort_impl(__func__, "topk", x, dim, k, 1, largest, values, indices);
}
