/* view.c: views that share storage (view, reshape, permute, transpose, narrow, slice, select,
 * expand, squeeze, unsqueeze, flatten, contiguous, detach), each differentiable. */
#include "internal.h"
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- backward functions */

/* view-like ops: the gradient is the output gradient in the input's shape */
static vr_status reshape_backward(vr_node *n, vr_tensor *gout, vr_tensor **gin) {
  return vr_reshape(gout, n->in[0].ndim, n->in[0].shape, &gin[0]);
}

static vr_status permute_backward(vr_node *n, vr_tensor *gout, vr_tensor **gin) {
  int inv[VR_MAX_DIMS];
  for (int i = 0; i < gout->ndim; i++) inv[n->i[i]] = i;
  return vr_permute(gout, inv, &gin[0]);
}

/* slice-like ops: scatter the gradient into zeros of the input's shape. i[0] dim, i[1] start,
 * i[2] step, i[3] = 1 when the dim was removed (select). */
static vr_status slice_backward(vr_node *n, vr_tensor *gout, vr_tensor **gin) {
  const vr_edge *e = &n->in[0];
  vr_tensor *z = NULL, *v = NULL, *g = NULL;
  vr_status st;
  VR_TRYG(vr_tensor_zeros(e->ndim, e->shape, gout->dtype, gout->device, &z));
  int dim = (int)n->i[0];
  int64_t shape[VR_MAX_DIMS], stride[VR_MAX_DIMS];
  memcpy(shape, z->shape, sizeof shape);
  memcpy(stride, z->stride, sizeof stride);
  shape[dim] = n->i[3] ? 1 : gout->shape[dim];
  stride[dim] = z->stride[dim] * n->i[2];
  VR_TRYG(vr_tensor_view_raw(z, z->ndim, shape, stride, z->offset + n->i[1] * z->stride[dim], &v));
  if (n->i[3]) {
    VR_TRYG(vr_unsqueeze(gout, dim, &g));
  } else {
    vr_tensor_retain(gout);
    g = gout;
  }
  VR_TRYG(vr_copy_(v, g));
  gin[0] = z;
  z = NULL;
done:
  vr_tensor_free(z);
  vr_tensor_free(v);
  vr_tensor_free(g);
  return st;
}

static vr_status expand_backward(vr_node *n, vr_tensor *gout, vr_tensor **gin) {
  return vr_sum_to_shape(gout, n->in[0].ndim, n->in[0].shape, &gin[0]);
}

static vr_status identity_backward(vr_node *n, vr_tensor *gout, vr_tensor **gin) {
  (void)n;
  vr_tensor_retain(gout);
  gin[0] = gout;
  return VR_OK;
}

/* wraps a raw view and records its node */
static vr_status finish_view(const char *name, vr_backward_fn bw, const vr_tensor *t, int ndim, const int64_t *shape,
                             const int64_t *stride, int64_t offset, const int64_t *iv, int ni, vr_tensor **out) {
  vr_tensor *v = NULL;
  VR_TRY(vr_tensor_view_raw(t, ndim, shape, stride, offset, &v));
  vr_status st = vr_record(name, bw, 1, &t, 0, NULL, NULL, 0, iv, ni, v, NULL);
  if (st) {
    vr_tensor_free(v);
    return st;
  }
  *out = v;
  return VR_OK;
}

/* ---------------------------------------------------------------- view and reshape */

/* strides for viewing (shape, stride) as new_shape without a copy, or 0 when impossible
 * (the rule PyTorch's view follows: merged dims must be contiguous with each other) */
static int view_strides(int ndim, const int64_t *shape, const int64_t *stride, int nnew, const int64_t *nshape,
                        int64_t *nstride) {
  if (ndim == 0) {
    for (int i = 0; i < nnew; i++) nstride[i] = 1;
    return 1;
  }
  if (vr_numel_of(ndim, shape) == 0) {
    vr_contiguous_strides(nnew, nshape, nstride);
    return 1;
  }
  int view_d = nnew - 1;
  int64_t chunk = stride[ndim - 1], tn = 1, vn = 1;
  for (int d = ndim - 1; d >= 0; d--) {
    tn *= shape[d];
    if (d == 0 || (shape[d - 1] != 1 && stride[d - 1] != tn * chunk)) {
      while (view_d >= 0 && (vn < tn || nshape[view_d] == 1)) {
        nstride[view_d] = vn * chunk;
        vn *= nshape[view_d];
        view_d--;
      }
      if (vn != tn) return 0;
      if (d > 0) {
        chunk = stride[d - 1];
        tn = 1;
        vn = 1;
      }
    }
  }
  return view_d == -1;
}

static vr_status infer_shape(const char *func, const vr_tensor *t, int ndim, const int64_t *shape, int64_t *out) {
  if (ndim < 0 || ndim > VR_MAX_DIMS || (ndim && !shape))
    return vr_error_set(VR_E_SHAPE, func, __FILE__, __LINE__, "shape: expected 0..%d sizes, got %d", VR_MAX_DIMS, ndim);
  int infer = -1;
  int64_t known = 1, sizes[VR_MAX_DIMS], n = vr_tensor_numel(t);
  for (int i = 0; i < ndim; i++) {
    if (shape[i] == -1) {
      if (infer >= 0)
        return vr_error_set(VR_E_SHAPE, func, __FILE__, __LINE__, "shape: expected at most one -1, got two (dims %d and %d)",
                            infer, i);
      infer = i;
    } else if (shape[i] < 0) {
      return vr_error_set(VR_E_SHAPE, func, __FILE__, __LINE__, "shape[%d]: expected a size >= 0 or -1, got %lld", i,
                          (long long)shape[i]);
    }
    sizes[i] = shape[i] == -1 ? 1 : shape[i];
    out[i] = shape[i];
  }
  if (!vr_numel_checked(ndim, sizes, &known)) goto bad;
  if (infer >= 0) {
    if (known == 0 || n % known)
      goto bad;
    out[infer] = n / known;
  } else if (known != n) {
    goto bad;
  }
  return VR_OK;
bad:;
  char b1[96], b2[96];
  return vr_error_set(VR_E_SHAPE, func, __FILE__, __LINE__, "shape: expected %lld elements like the input %s, got %s",
                      (long long)n, vr_shape_str(t->ndim, t->shape, b1, sizeof b1), vr_shape_str(ndim, shape, b2, sizeof b2));
}

vr_status vr_view(const vr_tensor *t, int ndim, const int64_t *shape, vr_tensor **out) {
  VR_CHECK_TENSOR(t);
  VR_CHECK_OUT(out);
  int64_t ns[VR_MAX_DIMS], nst[VR_MAX_DIMS];
  VR_TRY(infer_shape(__func__, t, ndim, shape, ns));
  if (!view_strides(t->ndim, t->shape, t->stride, ndim, ns, nst))
    return VR_FAIL(VR_E_SHAPE, "t: its strides do not allow this view without a copy; use reshape or contiguous first");
  return finish_view("view", reshape_backward, t, ndim, ns, nst, t->offset, NULL, 0, out);
}

vr_status vr_reshape(const vr_tensor *t, int ndim, const int64_t *shape, vr_tensor **out) {
  VR_CHECK_TENSOR(t);
  VR_CHECK_OUT(out);
  int64_t ns[VR_MAX_DIMS], nst[VR_MAX_DIMS];
  VR_TRY(infer_shape(__func__, t, ndim, shape, ns));
  if (view_strides(t->ndim, t->shape, t->stride, ndim, ns, nst))
    return finish_view("reshape", reshape_backward, t, ndim, ns, nst, t->offset, NULL, 0, out);
  vr_tensor *c = NULL;
  VR_TRY(vr_contiguous(t, &c));
  vr_status st = vr_view(c, ndim, ns, out);
  vr_tensor_free(c);
  return st;
}

vr_status vr_flatten(const vr_tensor *t, int start_dim, int end_dim, vr_tensor **out) {
  VR_CHECK_TENSOR(t);
  VR_CHECK_OUT(out);
  if (t->ndim == 0) {
    int64_t one = 1;
    return vr_reshape(t, 1, &one, out);
  }
  int s = vr_wrap_dim(start_dim, t->ndim), e = vr_wrap_dim(end_dim, t->ndim);
  if (s < 0 || e < 0 || s > e)
    return VR_FAIL(VR_E_ARG, "start_dim, end_dim: expected dims within %d dims with start <= end, got %d, %d", t->ndim,
                   start_dim, end_dim);
  int64_t shape[VR_MAX_DIMS];
  int n = 0;
  for (int i = 0; i < s; i++) shape[n++] = t->shape[i];
  int64_t m = 1;
  for (int i = s; i <= e; i++) m *= t->shape[i];
  shape[n++] = m;
  for (int i = e + 1; i < t->ndim; i++) shape[n++] = t->shape[i];
  return vr_reshape(t, n, shape, out);
}

/* ---------------------------------------------------------------- permute and transpose */

vr_status vr_permute(const vr_tensor *t, const int *perm, vr_tensor **out) {
  VR_CHECK_TENSOR(t);
  VR_CHECK_OUT(out);
  if (t->ndim && !perm) return VR_FAIL(VR_E_ARG, "perm: expected %d dims, got NULL", t->ndim);
  int64_t shape[VR_MAX_DIMS], stride[VR_MAX_DIMS], iv[VR_MAX_DIMS];
  int seen[VR_MAX_DIMS] = {0};
  for (int i = 0; i < t->ndim; i++) {
    int d = vr_wrap_dim(perm[i], t->ndim);
    if (d < 0 || seen[d])
      return VR_FAIL(VR_E_ARG, "perm[%d]: expected each of 0..%d once, got %d", i, t->ndim - 1, perm[i]);
    seen[d] = 1;
    shape[i] = t->shape[d];
    stride[i] = t->stride[d];
    iv[i] = d;
  }
  return finish_view("permute", permute_backward, t, t->ndim, shape, stride, t->offset, iv, t->ndim, out);
}

vr_status vr_transpose(const vr_tensor *t, int dim0, int dim1, vr_tensor **out) {
  VR_CHECK_TENSOR(t);
  VR_CHECK_OUT(out);
  int a = vr_wrap_dim(dim0, t->ndim), b = vr_wrap_dim(dim1, t->ndim);
  if (a < 0 || b < 0 || t->ndim == 0)
    return VR_FAIL(VR_E_ARG, "dim0, dim1: expected dims of a %d-dim tensor, got %d, %d", t->ndim, dim0, dim1);
  int perm[VR_MAX_DIMS];
  for (int i = 0; i < t->ndim; i++) perm[i] = i;
  perm[a] = b;
  perm[b] = a;
  return vr_permute(t, perm, out);
}

/* ---------------------------------------------------------------- narrow, slice, select */

vr_status vr_slice(const vr_tensor *t, int dim, int64_t start, int64_t end, int64_t step, vr_tensor **out) {
  VR_CHECK_TENSOR(t);
  VR_CHECK_OUT(out);
  int d = vr_wrap_dim(dim, t->ndim);
  if (d < 0 || t->ndim == 0) return VR_FAIL(VR_E_ARG, "dim: expected a dim of a %d-dim tensor, got %d", t->ndim, dim);
  if (step < 1) return VR_FAIL(VR_E_ARG, "step: expected >= 1, got %lld", (long long)step);
  int64_t n = t->shape[d];
  if (start < 0) start += n;
  if (end < 0) end += n;
  if (end > n) end = n;
  if (start < 0 || start > n)
    return VR_FAIL(VR_E_ARG, "start: expected 0..%lld on dim %d, got %lld", (long long)n, d, (long long)start);
  if (end < start) end = start;
  /* a step past the size takes one element at most, as a step of the size does (and keeps
   * stride x step within the tensor's extent) */
  if (step > n) step = n > 0 ? n : 1;
  int64_t shape[VR_MAX_DIMS], stride[VR_MAX_DIMS];
  memcpy(shape, t->shape, sizeof shape);
  memcpy(stride, t->stride, sizeof stride);
  shape[d] = end == start ? 0 : (end - start - 1) / step + 1;
  stride[d] = t->stride[d] * step;
  int64_t iv[4] = {d, start, step, 0};
  return finish_view("slice", slice_backward, t, t->ndim, shape, stride, t->offset + start * t->stride[d], iv, 4, out);
}

vr_status vr_narrow(const vr_tensor *t, int dim, int64_t start, int64_t length, vr_tensor **out) {
  VR_CHECK_TENSOR(t);
  VR_CHECK_OUT(out);
  int d = vr_wrap_dim(dim, t->ndim);
  if (d < 0 || t->ndim == 0) return VR_FAIL(VR_E_ARG, "dim: expected a dim of a %d-dim tensor, got %d", t->ndim, dim);
  if (start < 0 || length < 0 || start > t->shape[d] || length > t->shape[d] - start)
    return VR_FAIL(VR_E_ARG, "start, length: expected a range within 0..%lld on dim %d, got start %lld length %lld",
                   (long long)t->shape[d], d, (long long)start, (long long)length);
  return vr_slice(t, d, start, start + length, 1, out);
}

vr_status vr_select(const vr_tensor *t, int dim, int64_t index, vr_tensor **out) {
  VR_CHECK_TENSOR(t);
  VR_CHECK_OUT(out);
  int d = vr_wrap_dim(dim, t->ndim);
  if (d < 0 || t->ndim == 0) return VR_FAIL(VR_E_ARG, "dim: expected a dim of a %d-dim tensor, got %d", t->ndim, dim);
  int64_t n = t->shape[d];
  if (index < -n || index >= n)
    return VR_FAIL(VR_E_ARG, "index: expected %lld..%lld on dim %d, got %lld", (long long)-n, (long long)n - 1, d,
                   (long long)index);
  if (index < 0) index += n;
  int64_t shape[VR_MAX_DIMS], stride[VR_MAX_DIMS];
  int k = 0;
  for (int i = 0; i < t->ndim; i++)
    if (i != d) {
      shape[k] = t->shape[i];
      stride[k++] = t->stride[i];
    }
  int64_t iv[4] = {d, index, 1, 1};
  return finish_view("select", slice_backward, t, k, shape, stride, t->offset + index * t->stride[d], iv, 4, out);
}

/* ---------------------------------------------------------------- expand, squeeze, unsqueeze */

vr_status vr_expand(const vr_tensor *t, int ndim, const int64_t *shape, vr_tensor **out) {
  VR_CHECK_TENSOR(t);
  VR_CHECK_OUT(out);
  if (ndim < t->ndim || ndim > VR_MAX_DIMS || (ndim && !shape))
    return VR_FAIL(VR_E_SHAPE, "shape: expected %d..%d sizes, got %d", t->ndim, VR_MAX_DIMS, ndim);
  int64_t ns[VR_MAX_DIMS], st[VR_MAX_DIMS];
  for (int i = 0; i < ndim; i++) {
    int j = i - (ndim - t->ndim);
    int64_t want = shape[i];
    if (j < 0) {
      if (want < 0) return VR_FAIL(VR_E_SHAPE, "shape[%d]: expected a size for a new dim, got %lld", i, (long long)want);
      ns[i] = want;
      st[i] = 0;
    } else if (want == -1 || want == t->shape[j]) {
      ns[i] = t->shape[j];
      st[i] = t->stride[j];
    } else if (t->shape[j] == 1 && want >= 0) {
      ns[i] = want;
      st[i] = 0;
    } else {
      return VR_FAIL(VR_E_SHAPE, "shape[%d]: expected %lld or any size where the input has 1, got %lld", i,
                     (long long)t->shape[j], (long long)want);
    }
  }
  int64_t n;
  VR_TRY(vr_shape_numel(ndim, ns, &n));
  return finish_view("expand", expand_backward, t, ndim, ns, st, t->offset, NULL, 0, out);
}

vr_status vr_squeeze(const vr_tensor *t, int dim, vr_tensor **out) {
  VR_CHECK_TENSOR(t);
  VR_CHECK_OUT(out);
  int d = vr_wrap_dim(dim, t->ndim);
  if (d < 0 || t->ndim == 0) return VR_FAIL(VR_E_ARG, "dim: expected a dim of a %d-dim tensor, got %d", t->ndim, dim);
  if (t->shape[d] != 1)
    return VR_FAIL(VR_E_SHAPE, "dim: expected a dim of size 1, got size %lld at dim %d", (long long)t->shape[d], d);
  int64_t shape[VR_MAX_DIMS], stride[VR_MAX_DIMS];
  int k = 0;
  for (int i = 0; i < t->ndim; i++)
    if (i != d) {
      shape[k] = t->shape[i];
      stride[k++] = t->stride[i];
    }
  return finish_view("squeeze", reshape_backward, t, k, shape, stride, t->offset, NULL, 0, out);
}

vr_status vr_unsqueeze(const vr_tensor *t, int dim, vr_tensor **out) {
  VR_CHECK_TENSOR(t);
  VR_CHECK_OUT(out);
  if (t->ndim >= VR_MAX_DIMS) return VR_FAIL(VR_E_SHAPE, "t: expected fewer than %d dims, got %d", VR_MAX_DIMS, t->ndim);
  int d = dim < 0 ? dim + t->ndim + 1 : dim;
  if (d < 0 || d > t->ndim) return VR_FAIL(VR_E_ARG, "dim: expected %d..%d, got %d", -t->ndim - 1, t->ndim, dim);
  int64_t shape[VR_MAX_DIMS], stride[VR_MAX_DIMS];
  int k = 0;
  for (int i = 0; i <= t->ndim; i++) {
    if (i == d) {
      shape[k] = 1;
      stride[k++] = (i < t->ndim) ? t->stride[i] * t->shape[i] : 1;
    }
    if (i < t->ndim) {
      shape[k] = t->shape[i];
      stride[k++] = t->stride[i];
    }
  }
  return finish_view("unsqueeze", reshape_backward, t, k, shape, stride, t->offset, NULL, 0, out);
}

/* ---------------------------------------------------------------- contiguous and detach */

vr_status vr_contiguous(const vr_tensor *t, vr_tensor **out) {
  VR_CHECK_TENSOR(t);
  VR_CHECK_OUT(out);
  if (vr_tensor_is_contiguous(t)) {
    vr_tensor_retain((vr_tensor *)t);
    *out = (vr_tensor *)t;
    return VR_OK;
  }
  vr_tensor *c = NULL;
  VR_TRY(vr_contiguous_raw(t, &c));
  vr_status st = vr_record("contiguous", identity_backward, 1, &t, 0, NULL, NULL, 0, NULL, 0, c, NULL);
  if (st) {
    vr_tensor_free(c);
    return st;
  }
  *out = c;
  return VR_OK;
}

vr_status vr_detach(const vr_tensor *t, vr_tensor **out) {
  VR_CHECK_TENSOR(t);
  VR_CHECK_OUT(out);
  return vr_tensor_view_raw(t, t->ndim, t->shape, t->stride, t->offset, out);
}
