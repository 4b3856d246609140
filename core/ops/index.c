/* index.c: index_select, gather, scatter_add (out of place) and one_hot.
 *
 * Indices are i64 or i32, counted from 0 (no negative indices), and range-checked here, on the
 * host, before any kernel runs: kernels may trust them. Every tensor handed to a kernel is
 * contiguous (the front-end copies strided inputs), and out[0] is freshly allocated.
 *
 * vr_kernel_args per op (dim is already wrapped to 0..ndim-1):
 *  VR_OP_INDEX_SELECT fwd: in[0] x, in[1] index (1-D, K entries), out[0] = x's shape with K at dim;
 *                          i[0] dim. out[o, k, i] = x[o, index[k], i] viewing tensors as
 *                          [outer, size at dim, inner].
 *                     bwd: in[0] grad_out (out's shape), in[1] index, out[0] grad_x (x's shape, the
 *                          kernel writes every element: zeros, then adds); i[0] dim.
 *                          grad_x[o, index[k], i] += grad_out[o, k, i], k in increasing order.
 *  VR_OP_GATHER       fwd: in[0] x, in[1] index (x's ndim; index.shape[d] <= x.shape[d] for d != dim),
 *                          out[0] index's shape, x's dtype; i[0] dim.
 *                          out[p] = x[p with coordinate dim replaced by index[p]].
 *  VR_OP_SCATTER_ADD  fwd: in[0] x, in[1] index (x's ndim; index.shape[d] <= src.shape[d] for all d
 *                          and <= x.shape[d] for d != dim), in[2] src (x's dtype), out[0] x's shape;
 *                          i[0] dim. out = x, then out[p with dim -> index[p]] += src[p] for every
 *                          p in the index's shape, adding along dim in increasing order (no atomics).
 *  VR_OP_ONE_HOT      fwd: in[0] index (any shape), out[0] index's shape + [C] in the requested
 *                          dtype; i[0] C. out[..., c] = (c == index[...]).
 *
 * Backward: index_select uses its bwd kernel; gather's is scatter_add into zeros; scatter_add's is
 * grad_x = g and grad_src = gather(g) (zero-padded where src is larger than the index). */
#include "../internal.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- helpers */

static vr_status check_index_tensor(const char *func, const vr_tensor *index, const vr_tensor *x) {
  if (index->dtype != VR_I64 && index->dtype != VR_I32)
    return vr_error_set(VR_E_DTYPE, func, __FILE__, __LINE__, "index: expected an i64 or i32 tensor, got %s",
                        vr_dtype_name(index->dtype));
  if (index->device != x->device)
    return vr_error_set(VR_E_DEVICE, func, __FILE__, __LINE__, "index: expected a tensor on %s like x, got %s",
                        vr_device_name(x->device), vr_device_name(index->device));
  return VR_OK;
}

/* Every index value must be in 0..limit-1. Reads the values on the host (a copy for CUDA). */
static vr_status check_index_range(const char *func, const vr_tensor *index, int64_t limit, int dim) {
  char why[64];
  if (dim >= 0) snprintf(why, sizeof why, "dim %d of x has size %lld", dim, (long long)limit);
  else snprintf(why, sizeof why, "num_classes is %lld", (long long)limit);
  int64_t n = vr_tensor_numel(index);
  if (n == 0) return VR_OK;
  vr_tensor *h = NULL, *c = NULL;
  vr_status st;
  VR_TRYG(vr_tensor_to_device(index, VR_CPU, &h));
  VR_TRYG(vr_contiguous_raw(h, &c));
  const void *p = vr_data(c);
  int is64 = c->dtype == VR_I64;
  for (int64_t k = 0; k < n; k++) {
    int64_t v = is64 ? ((const int64_t *)p)[k] : ((const int32_t *)p)[k];
    if (v < 0 || v >= limit) {
      st = vr_error_set(VR_E_ARG, func, __FILE__, __LINE__,
                        "index: expected values in 0..%lld (%s), got %lld at element %lld", (long long)limit - 1,
                        why, (long long)v, (long long)k);
      goto done;
    }
  }
done:
  vr_tensor_free(c);
  vr_tensor_free(h);
  return st;
}

/* ---------------------------------------------------------------- index_select */

static vr_status index_select_backward(vr_node *n, vr_tensor *gout, vr_tensor **gin) {
  vr_tensor *index = NULL, *g = NULL, *gx = NULL;
  vr_status st;
  VR_TRYG(vr_node_saved(n, 0, &index));
  VR_TRYG(vr_contiguous_raw(gout, &g));
  VR_TRYG(vr_tensor_alloc(n->in[0].ndim, n->in[0].shape, gout->dtype, gout->device, &gx));
  if (vr_tensor_numel(gx)) {
    vr_kernel_args a = {.in = {g, index}, .n_in = 2, .out = {gx}, .n_out = 1, .i = {n->i[0]}};
    VR_TRYG(vr_dispatch(VR_OP_INDEX_SELECT, gout->device, 1, &a));
  }
  gin[0] = gx;
  gx = NULL;
done:
  vr_tensor_free(g);
  vr_tensor_free(gx);
  return st;
}

/* the shared tail of index_select and gather, once the arguments are checked: contiguous inputs,
 * an output of the given shape, the kernel, and a node saving the index for backward */
static vr_status run_indexed(vr_op op, const char *name, vr_backward_fn bw, const vr_tensor *x, const vr_tensor *index,
                             int d, int ndim, const int64_t *shape, vr_tensor **out) {
  vr_tensor *xc = NULL, *ic = NULL, *o = NULL;
  vr_status st;
  VR_TRYG(vr_contiguous_raw(x, &xc));
  VR_TRYG(vr_contiguous_raw(index, &ic));
  VR_TRYG(vr_tensor_alloc(ndim, shape, x->dtype, x->device, &o));
  if (vr_tensor_numel(o)) {
    vr_kernel_args a = {.in = {xc, ic}, .n_in = 2, .out = {o}, .n_out = 1, .i = {d}};
    VR_TRYG(vr_dispatch(op, x->device, 0, &a));
  }
  int64_t iv[1] = {d};
  const vr_tensor *saved[1] = {ic};
  VR_TRYG(vr_record(name, bw, 1, &x, 1, saved, NULL, 0, iv, 1, o, NULL));
  *out = o;
  o = NULL;
done:
  vr_tensor_free(xc);
  vr_tensor_free(ic);
  vr_tensor_free(o);
  return st;
}

static vr_status index_select_impl(const char *func, const vr_tensor *x, int dim, const vr_tensor *index,
                                   vr_tensor **out) {
  if (x->ndim == 0) return vr_error_set(VR_E_SHAPE, func, __FILE__, __LINE__, "x: expected at least 1 dim, got 0");
  int d = vr_wrap_dim(dim, x->ndim);
  if (d < 0)
    return vr_error_set(VR_E_ARG, func, __FILE__, __LINE__, "dim: expected a dim of a %d-dim tensor, got %d", x->ndim,
                        dim);
  VR_TRY(check_index_tensor(func, index, x));
  if (index->ndim != 1)
    return vr_error_set(VR_E_SHAPE, func, __FILE__, __LINE__, "index: expected 1 dim, got %d", index->ndim);
  VR_TRY(check_index_range(func, index, x->shape[d], d));
  int64_t shape[VR_MAX_DIMS];
  memcpy(shape, x->shape, sizeof shape);
  shape[d] = index->shape[0];
  return run_indexed(VR_OP_INDEX_SELECT, "index_select", index_select_backward, x, index, d, x->ndim, shape, out);
}

vr_status vr_index_select(const vr_tensor *x, int dim, const vr_tensor *index, vr_tensor **out) {
  VR_CHECK_TENSOR(x);
  VR_CHECK_TENSOR(index);
  VR_CHECK_OUT(out);
  return index_select_impl(__func__, x, dim, index, out);
}

/* ---------------------------------------------------------------- gather and scatter_add */

/* index: x's ndim, index.shape[d] <= x.shape[d] for d != dim (and <= src.shape[d] for all d) */
static vr_status check_gather_shapes(const char *func, const vr_tensor *x, const vr_tensor *index, const vr_tensor *src,
                                     int d) {
  char b1[96], b2[96];
  if (index->ndim != x->ndim)
    return vr_error_set(VR_E_SHAPE, func, __FILE__, __LINE__, "index: expected %d dims like x, got %d", x->ndim,
                        index->ndim);
  for (int i = 0; i < x->ndim; i++)
    if (i != d && index->shape[i] > x->shape[i])
      return vr_error_set(VR_E_SHAPE, func, __FILE__, __LINE__,
                          "index: expected sizes <= x's %s except at dim %d, got %s (dim %d)",
                          vr_shape_str(x->ndim, x->shape, b1, sizeof b1), d,
                          vr_shape_str(index->ndim, index->shape, b2, sizeof b2), i);
  if (!src) return VR_OK;
  if (src->ndim != x->ndim)
    return vr_error_set(VR_E_SHAPE, func, __FILE__, __LINE__, "src: expected %d dims like x, got %d", x->ndim, src->ndim);
  for (int i = 0; i < x->ndim; i++)
    if (index->shape[i] > src->shape[i])
      return vr_error_set(VR_E_SHAPE, func, __FILE__, __LINE__, "src: expected sizes >= index's %s, got %s (dim %d)",
                          vr_shape_str(index->ndim, index->shape, b1, sizeof b1),
                          vr_shape_str(src->ndim, src->shape, b2, sizeof b2), i);
  return VR_OK;
}

static vr_status gather_backward(vr_node *n, vr_tensor *gout, vr_tensor **gin) {
  vr_tensor *index = NULL, *z = NULL;
  VR_TRY(vr_node_saved(n, 0, &index));
  VR_TRY(vr_tensor_zeros(n->in[0].ndim, n->in[0].shape, gout->dtype, gout->device, &z));
  vr_status st = vr_scatter_add(z, (int)n->i[0], index, gout, &gin[0]);
  vr_tensor_free(z);
  return st;
}

vr_status vr_gather(const vr_tensor *x, int dim, const vr_tensor *index, vr_tensor **out) {
  VR_CHECK_TENSOR(x);
  VR_CHECK_TENSOR(index);
  VR_CHECK_OUT(out);
  if (x->ndim == 0) return VR_FAIL(VR_E_SHAPE, "x: expected at least 1 dim, got 0");
  int d = vr_wrap_dim(dim, x->ndim);
  if (d < 0) return VR_FAIL(VR_E_ARG, "dim: expected a dim of a %d-dim tensor, got %d", x->ndim, dim);
  VR_TRY(check_index_tensor(__func__, index, x));
  VR_TRY(check_gather_shapes(__func__, x, index, NULL, d));
  VR_TRY(check_index_range(__func__, index, x->shape[d], d));
  return run_indexed(VR_OP_GATHER, "gather", gather_backward, x, index, d, index->ndim, index->shape, out);
}

static vr_status scatter_add_backward(vr_node *n, vr_tensor *gout, vr_tensor **gin) {
  vr_tensor *index = NULL, *gs = NULL, *z = NULL, *v = NULL;
  vr_status st = VR_OK;
  if (vr_node_needs(n, 0)) {
    vr_tensor_retain(gout);
    gin[0] = gout;
  }
  if (!vr_node_needs(n, 1)) return VR_OK;
  VR_TRYG(vr_node_saved(n, 0, &index));
  VR_TRYG(vr_gather(gout, (int)n->i[0], index, &gs));
  const vr_edge *e = &n->in[1];
  bool same = true;
  for (int i = 0; i < e->ndim; i++) same = same && e->shape[i] == gs->shape[i];
  if (same) {
    gin[1] = gs;
    gs = NULL;
    goto done;
  }
  /* src larger than the index: its other elements got no gradient */
  VR_TRYG(vr_tensor_zeros(e->ndim, e->shape, gout->dtype, gout->device, &z));
  VR_TRYG(vr_tensor_view_raw(z, z->ndim, gs->shape, z->stride, 0, &v));
  VR_TRYG(vr_copy_(v, gs));
  gin[1] = z;
  z = NULL;
done:
  vr_tensor_free(gs);
  vr_tensor_free(z);
  vr_tensor_free(v);
  return st;
}

vr_status vr_scatter_add(const vr_tensor *x, int dim, const vr_tensor *index, const vr_tensor *src, vr_tensor **out) {
  VR_CHECK_TENSOR(x);
  VR_CHECK_TENSOR(index);
  VR_CHECK_TENSOR(src);
  VR_CHECK_OUT(out);
  if (x->ndim == 0) return VR_FAIL(VR_E_SHAPE, "x: expected at least 1 dim, got 0");
  int d = vr_wrap_dim(dim, x->ndim);
  if (d < 0) return VR_FAIL(VR_E_ARG, "dim: expected a dim of a %d-dim tensor, got %d", x->ndim, dim);
  VR_CHECK_SAME_DTYPE(x, src);
  VR_CHECK_SAME_DEVICE(x, src);
  VR_TRY(check_index_tensor(__func__, index, x));
  VR_TRY(check_gather_shapes(__func__, x, index, src, d));
  VR_TRY(check_index_range(__func__, index, x->shape[d], d));
  vr_tensor *xc = NULL, *ic = NULL, *sc = NULL, *o = NULL;
  vr_status st;
  VR_TRYG(vr_contiguous_raw(x, &xc));
  VR_TRYG(vr_contiguous_raw(index, &ic));
  VR_TRYG(vr_contiguous_raw(src, &sc));
  VR_TRYG(vr_tensor_alloc(x->ndim, x->shape, x->dtype, x->device, &o));
  if (vr_tensor_numel(o)) {
    vr_kernel_args a = {.in = {xc, ic, sc}, .n_in = 3, .out = {o}, .n_out = 1, .i = {d}};
    VR_TRYG(vr_dispatch(VR_OP_SCATTER_ADD, x->device, 0, &a));
  }
  int64_t iv[1] = {d};
  const vr_tensor *inputs[2] = {x, src}, *saved[1] = {ic};
  VR_TRYG(vr_record("scatter_add", scatter_add_backward, 2, inputs, 1, saved, NULL, 0, iv, 1, o, NULL));
  *out = o;
  o = NULL;
done:
  vr_tensor_free(xc);
  vr_tensor_free(ic);
  vr_tensor_free(sc);
  vr_tensor_free(o);
  return st;
}

/* ---------------------------------------------------------------- one_hot */

vr_status vr_one_hot(const vr_tensor *index, int64_t num_classes, vr_dtype dtype, vr_tensor **out) {
  VR_CHECK_TENSOR(index);
  VR_CHECK_OUT(out);
  if (index->dtype != VR_I64 && index->dtype != VR_I32)
    return VR_FAIL(VR_E_DTYPE, "index: expected an i64 or i32 tensor, got %s", vr_dtype_name(index->dtype));
  if (index->ndim >= VR_MAX_DIMS)
    return VR_FAIL(VR_E_SHAPE, "index: expected fewer than %d dims, got %d", VR_MAX_DIMS, index->ndim);
  if ((int)dtype < VR_F32 || (int)dtype > VR_BF16) return VR_FAIL(VR_E_DTYPE, "dtype: expected a dtype, got %d", dtype);
  if (num_classes < 1) return VR_FAIL(VR_E_ARG, "num_classes: expected >= 1, got %lld", (long long)num_classes);
  VR_TRY(check_index_range(__func__, index, num_classes, -1));
  int64_t shape[VR_MAX_DIMS];
  memcpy(shape, index->shape, sizeof(int64_t) * (size_t)index->ndim);
  shape[index->ndim] = num_classes;
  vr_tensor *ic = NULL, *o = NULL;
  vr_status st;
  VR_TRYG(vr_contiguous_raw(index, &ic));
  VR_TRYG(vr_tensor_alloc(index->ndim + 1, shape, dtype, index->device, &o));
  if (vr_tensor_numel(o)) {
    vr_kernel_args a = {.in = {ic}, .n_in = 1, .out = {o}, .n_out = 1, .i = {num_classes}};
    VR_TRYG(vr_dispatch(VR_OP_ONE_HOT, index->device, 0, &a));
  }
  *out = o;
  o = NULL;
done:
  vr_tensor_free(ic);
  vr_tensor_free(o);
  return st;
}
