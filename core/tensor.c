/* tensor.c: storage, tensor handles, creation, metadata, element access and conversions.
 * Views live in core/view.c; random tensors in core/rng.c. */
#include "internal.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- helpers */

int64_t vr_numel_of(int ndim, const int64_t *shape) {
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) n *= shape[i];
  return n;
}

bool vr_mul_checked(uint64_t a, uint64_t b, uint64_t *out) { return !__builtin_mul_overflow(a, b, out); }
bool vr_add_checked(uint64_t a, uint64_t b, uint64_t *out) { return !__builtin_add_overflow(a, b, out); }

/* 0: fine; 1: ndim out of range or NULL shape; 2: a negative size (at *bad); 3: too many elements */
static int shape_verdict(int ndim, const int64_t *shape, int64_t *numel, int *bad) {
  if (ndim < 0 || ndim > VR_MAX_DIMS || (ndim > 0 && !shape)) return 1;
  int64_t n = 1;
  int zero = 0;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] < 0) {
      *bad = i;
      return 2;
    }
    if (shape[i] == 0) zero = 1;
    else if (__builtin_mul_overflow(n, shape[i], &n) || n > VR_MAX_NUMEL)
      return 3;
  }
  *numel = zero ? 0 : n;
  return 0;
}

bool vr_numel_checked(int ndim, const int64_t *shape, int64_t *numel) {
  int bad = 0;
  return shape_verdict(ndim, shape, numel, &bad) == 0;
}

bool vr_nbytes_checked(int ndim, const int64_t *shape, vr_dtype dtype, uint64_t *nbytes) {
  int64_t n;
  return vr_numel_checked(ndim, shape, &n) && vr_mul_checked((uint64_t)n, vr_dtype_size(dtype), nbytes);
}

vr_status vr_shape_numel_at(const char *func, int ndim, const int64_t *shape, int64_t *numel) {
  int bad = 0;
  switch (shape_verdict(ndim, shape, numel, &bad)) {
  case 0: return VR_OK;
  case 1:
    if (ndim < 0 || ndim > VR_MAX_DIMS)
      return vr_error_set(VR_E_SHAPE, func, __FILE__, __LINE__, "ndim: expected 0..%d, got %d", VR_MAX_DIMS, ndim);
    return vr_error_set(VR_E_ARG, func, __FILE__, __LINE__, "shape: expected %d sizes, got NULL", ndim);
  case 2:
    return vr_error_set(VR_E_SHAPE, func, __FILE__, __LINE__, "shape[%d]: expected a size >= 0, got %lld", bad,
                        (long long)shape[bad]);
  default: {
    char b[200];
    return vr_error_set(VR_E_SHAPE, func, __FILE__, __LINE__,
                        "shape: %s has more than %lld elements (its sizes multiply past what a tensor can hold)",
                        vr_shape_str(ndim, shape, b, sizeof b), (long long)VR_MAX_NUMEL);
  }
  }
}

void vr_contiguous_strides(int ndim, const int64_t *shape, int64_t *stride) {
  int64_t s = 1;
  for (int i = ndim - 1; i >= 0; i--) {
    stride[i] = s;
    s *= shape[i] > 0 ? shape[i] : 1;
  }
}

bool vr_same_shape(const vr_tensor *a, const vr_tensor *b) {
  if (a->ndim != b->ndim) return false;
  for (int i = 0; i < a->ndim; i++)
    if (a->shape[i] != b->shape[i]) return false;
  return true;
}

const char *vr_shape_str(int ndim, const int64_t *shape, char *buf, size_t n) {
  size_t k = 0;
  k += (size_t)snprintf(buf + k, n - k, "[");
  for (int i = 0; i < ndim && k < n; i++)
    k += (size_t)snprintf(buf + k, n - k, i ? ", %lld" : "%lld", (long long)shape[i]);
  if (k < n) snprintf(buf + k, n - k, "]");
  return buf;
}

int vr_wrap_dim(int dim, int ndim) {
  int n = ndim > 0 ? ndim : 1;
  if (dim < -n || dim >= n) return -1;
  return dim < 0 ? dim + n : dim;
}

static vr_status check_shape(const char *func, int ndim, const int64_t *shape) {
  int64_t n;
  return vr_shape_numel_at(func, ndim, shape, &n);
}

static vr_status check_dtype_device(const char *func, vr_dtype dt, vr_device dev) {
  if (dt < VR_F32 || dt > VR_BF16)
    return vr_error_set(VR_E_DTYPE, func, __FILE__, __LINE__, "dtype: expected a vr_dtype, got %d", (int)dt);
  if (!vr_device_get(dev))
    return vr_error_set(VR_E_DEVICE, func, __FILE__, __LINE__, "device: %s is not available in this build or machine",
                        vr_device_name(dev));
  return VR_OK;
}

/* ---------------------------------------------------------------- storage */

static vr_status storage_new(size_t nbytes, vr_device dev, vr_storage **out) {
  const vr_device_api *api = vr_device_get(dev);
  if (!api) return VR_FAIL(VR_E_DEVICE, "device: %s is not available", vr_device_name(dev));
  vr_storage *s = calloc(1, sizeof *s);
  if (!s) return VR_FAIL(VR_E_OOM, "storage: out of host memory");
  s->nbytes = nbytes;
  s->device = dev;
  s->refcount = 1;
  vr_status st = api->alloc(nbytes ? nbytes : 1, &s->data);
  if (st) {
    free(s);
    return st;
  }
  *out = s;
  return VR_OK;
}

static void storage_release(vr_storage *s) {
  if (!s) return;
  if (__atomic_sub_fetch(&s->refcount, 1, __ATOMIC_ACQ_REL) == 0) {
    const vr_device_api *api = vr_device_get(s->device);
    if (api) api->release(s->data, s->nbytes ? s->nbytes : 1);
    free(s);
  }
}

/* ---------------------------------------------------------------- handles */

void vr_tensor_retain(vr_tensor *t) {
  if (t) __atomic_add_fetch(&t->refcount, 1, __ATOMIC_RELAXED);
}

void vr_tensor_free(vr_tensor *t) {
  if (!t) return;
  if (__atomic_sub_fetch(&t->refcount, 1, __ATOMIC_ACQ_REL) != 0) return;
  storage_release(t->storage);
  vr_tensor_free(t->grad);
  vr_node_release(t->grad_fn);
  free(t);
}

/* every tensor, fresh or a view, is made here: its shape is checked (no size negative, at most
 * VR_MAX_NUMEL elements), so that code holding a tensor can multiply its sizes freely */
static vr_status tensor_wrap(const char *func, vr_storage *s, int ndim, const int64_t *shape, const int64_t *stride,
                             int64_t offset, vr_dtype dt, vr_tensor **out) {
  int64_t n;
  VR_TRY(vr_shape_numel_at(func, ndim, shape, &n));
  vr_tensor *t = calloc(1, sizeof *t);
  if (!t) return VR_FAIL(VR_E_OOM, "tensor: out of host memory");
  t->refcount = 1;
  t->storage = s;
  t->offset = offset;
  t->ndim = ndim;
  for (int i = 0; i < ndim; i++) {
    t->shape[i] = shape[i];
    t->stride[i] = stride[i];
  }
  t->dtype = dt;
  t->device = s->device;
  *out = t;
  return VR_OK;
}

vr_status vr_tensor_alloc(int ndim, const int64_t *shape, vr_dtype dtype, vr_device device, vr_tensor **out) {
  int64_t stride[VR_MAX_DIMS], n;
  VR_TRY(vr_shape_numel(ndim, shape, &n));
  vr_contiguous_strides(ndim, shape, stride);
  uint64_t nbytes;
  if (!vr_mul_checked((uint64_t)n, vr_dtype_size(dtype), &nbytes) || nbytes > SIZE_MAX)
    return VR_FAIL(VR_E_SHAPE, "shape: %lld elements of %s do not fit in memory", (long long)n, vr_dtype_name(dtype));
  vr_storage *s = NULL;
  VR_TRY(storage_new((size_t)nbytes, device, &s));
  vr_status st = tensor_wrap(__func__, s, ndim, shape, stride, 0, dtype, out);
  if (st) storage_release(s);
  return st;
}

vr_status vr_tensor_alloc_like(const vr_tensor *t, vr_tensor **out) {
  return vr_tensor_alloc(t->ndim, t->shape, t->dtype, t->device, out);
}

vr_status vr_tensor_view_raw(const vr_tensor *t, int ndim, const int64_t *shape, const int64_t *stride, int64_t offset,
                             vr_tensor **out) {
  __atomic_add_fetch(&t->storage->refcount, 1, __ATOMIC_RELAXED);
  vr_status st = tensor_wrap(__func__, t->storage, ndim, shape, stride, offset, t->dtype, out);
  if (st) storage_release(t->storage);
  return st;
}

void vr_tensor_bump_version(vr_tensor *t) { __atomic_add_fetch(&t->storage->version, 1, __ATOMIC_RELAXED); }

/* ---------------------------------------------------------------- metadata */

int vr_tensor_ndim(const vr_tensor *t) { return t ? t->ndim : 0; }
int64_t vr_tensor_size(const vr_tensor *t, int dim) {
  if (!t) return -1;
  int d = vr_wrap_dim(dim, t->ndim);
  return (d < 0 || t->ndim == 0) ? (t->ndim == 0 && d == 0 ? 1 : -1) : t->shape[d];
}
int64_t vr_tensor_stride(const vr_tensor *t, int dim) {
  if (!t) return -1;
  int d = vr_wrap_dim(dim, t->ndim);
  return (d < 0 || t->ndim == 0) ? -1 : t->stride[d];
}
int64_t vr_tensor_numel(const vr_tensor *t) { return t ? vr_numel_of(t->ndim, t->shape) : 0; }
int64_t vr_tensor_offset(const vr_tensor *t) { return t ? t->offset : 0; }
vr_dtype vr_tensor_dtype(const vr_tensor *t) { return t ? t->dtype : VR_F32; }
vr_device vr_tensor_device(const vr_tensor *t) { return t ? t->device : VR_CPU; }
uint64_t vr_tensor_version(const vr_tensor *t) { return t ? t->storage->version : 0; }
int vr_tensor_shares_storage(const vr_tensor *a, const vr_tensor *b) { return a && b && a->storage == b->storage; }

int vr_tensor_is_contiguous(const vr_tensor *t) {
  if (!t) return 0;
  int64_t s = 1;
  for (int i = t->ndim - 1; i >= 0; i--) {
    if (t->shape[i] == 1) continue;
    if (t->stride[i] != s) return 0;
    s *= t->shape[i];
  }
  return 1;
}

void *vr_tensor_data(vr_tensor *t) { return (t && t->device == VR_CPU) ? vr_data(t) : NULL; }

/* ---------------------------------------------------------------- creation */

vr_status vr_tensor_empty(int ndim, const int64_t *shape, vr_dtype dtype, vr_device device, vr_tensor **out) {
  VR_CHECK_OUT(out);
  VR_TRY(check_shape(__func__, ndim, shape));
  VR_TRY(check_dtype_device(__func__, dtype, device));
  return vr_tensor_alloc(ndim, shape, dtype, device, out);
}

vr_status vr_tensor_full(int ndim, const int64_t *shape, double value, vr_dtype dtype, vr_device device, vr_tensor **out) {
  VR_CHECK_OUT(out);
  VR_TRY(check_shape(__func__, ndim, shape));
  VR_TRY(check_dtype_device(__func__, dtype, device));
  vr_tensor *t = NULL;
  VR_TRY(vr_tensor_alloc(ndim, shape, dtype, device, &t));
  vr_status st = vr_fill_(t, value);
  if (st) {
    vr_tensor_free(t);
    return st;
  }
  *out = t;
  return VR_OK;
}

vr_status vr_tensor_zeros(int ndim, const int64_t *shape, vr_dtype dtype, vr_device device, vr_tensor **out) {
  return vr_tensor_full(ndim, shape, 0.0, dtype, device, out);
}
vr_status vr_tensor_ones(int ndim, const int64_t *shape, vr_dtype dtype, vr_device device, vr_tensor **out) {
  return vr_tensor_full(ndim, shape, 1.0, dtype, device, out);
}
vr_status vr_tensor_scalar(double value, vr_dtype dtype, vr_device device, vr_tensor **out) {
  return vr_tensor_full(0, NULL, value, dtype, device, out);
}

vr_status vr_tensor_arange(double start, double end, double step, vr_dtype dtype, vr_device device, vr_tensor **out) {
  VR_CHECK_OUT(out);
  if (step == 0 || !isfinite(step) || !isfinite(start) || !isfinite(end))
    return VR_FAIL(VR_E_ARG, "step: expected a finite non-zero step and finite bounds, got start %g end %g step %g",
                   start, end, step);
  VR_TRY(check_dtype_device(__func__, dtype, device));
  double n = ceil((end - start) / step);
  if (!(n <= (double)VR_MAX_NUMEL))
    return VR_FAIL(VR_E_ARG, "start, end, step: %g elements from %g to %g by %g, expected at most %lld", n, start, end,
                   step, (long long)VR_MAX_NUMEL);
  int64_t len = n > 0 ? (int64_t)n : 0;
  vr_tensor *t = NULL;
  VR_TRY(vr_tensor_alloc(1, &len, dtype, device, &t));
  vr_kernel_args a = {.out = {t}, .n_out = 1, .f = {start, step}};
  vr_status st = len ? vr_dispatch(VR_OP_ARANGE, device, 0, &a) : VR_OK;
  if (st) {
    vr_tensor_free(t);
    return st;
  }
  *out = t;
  return VR_OK;
}

vr_status vr_tensor_from_buffer(const void *data, int ndim, const int64_t *shape, vr_dtype dtype, vr_device device,
                                vr_tensor **out) {
  VR_CHECK_OUT(out);
  int64_t n;
  VR_TRY(vr_shape_numel(ndim, shape, &n));
  VR_TRY(check_dtype_device(__func__, dtype, device));
  if (n && !data) return VR_FAIL(VR_E_ARG, "data: expected a buffer of %lld elements, got NULL", (long long)n);
  vr_tensor *t = NULL;
  VR_TRY(vr_tensor_alloc(ndim, shape, dtype, device, &t));
  size_t nbytes = (size_t)n * vr_dtype_size(dtype);
  vr_status st = nbytes ? vr_device_get(device)->memcpy(t->storage->data, data, nbytes, device == VR_CPU ? 2 : 0) : VR_OK;
  if (st) {
    vr_tensor_free(t);
    return st;
  }
  *out = t;
  return VR_OK;
}

vr_status vr_tensor_to_buffer(const vr_tensor *t, void *data, size_t nbytes) {
  VR_CHECK_TENSOR(t);
  size_t need = (size_t)vr_tensor_numel(t) * vr_dtype_size(t->dtype);
  if (nbytes < need) return VR_FAIL(VR_E_ARG, "nbytes: expected at least %zu, got %zu", need, nbytes);
  if (!need) return VR_OK;
  if (!data) return VR_FAIL(VR_E_ARG, "data: expected a buffer, got NULL");
  vr_tensor *c = NULL;
  VR_TRY(vr_contiguous_raw(t, &c));
  vr_status st = vr_device_get(c->device)->memcpy(data, vr_data(c), need, c->device == VR_CPU ? 2 : 1);
  vr_tensor_free(c);
  return st;
}

/* ---------------------------------------------------------------- in-place */

vr_status vr_fill_(vr_tensor *t, double value) {
  VR_CHECK_TENSOR(t);
  vr_kernel_args a = {.out = {t}, .n_out = 1, .f = {value}};
  if (vr_tensor_numel(t)) VR_TRY(vr_dispatch(VR_OP_FILL, t->device, 0, &a));
  vr_tensor_bump_version(t);
  return VR_OK;
}

/* expands src to dst's shape (no autograd); src must broadcast */
static vr_status expand_to(const char *func, const vr_tensor *src, const vr_tensor *dst, vr_tensor **out) {
  int64_t stride[VR_MAX_DIMS];
  if (src->ndim > dst->ndim) goto bad;
  for (int i = 0; i < dst->ndim; i++) {
    int j = i - (dst->ndim - src->ndim);
    if (j < 0) {
      stride[i] = 0;
    } else if (src->shape[j] == dst->shape[i]) {
      stride[i] = src->shape[j] == 1 ? 0 : src->stride[j];
    } else if (src->shape[j] == 1) {
      stride[i] = 0;
    } else {
      goto bad;
    }
  }
  return vr_tensor_view_raw(src, dst->ndim, dst->shape, stride, src->offset, out);
bad:;
  char b1[96], b2[96];
  return vr_error_set(VR_E_SHAPE, func, __FILE__, __LINE__, "src: expected a shape that broadcasts to %s, got %s",
                      vr_shape_str(dst->ndim, dst->shape, b1, sizeof b1), vr_shape_str(src->ndim, src->shape, b2, sizeof b2));
}

/* copies src (same shape or broadcastable) into dst, across devices too */
static vr_status copy_into(const char *func, vr_tensor *dst, const vr_tensor *src) {
  vr_tensor *e = NULL, *tmp = NULL, *host = NULL;
  vr_status st = expand_to(func, src, dst, &e);
  if (st) return st;
  if (vr_tensor_numel(dst) == 0) goto done;
  if (e->device != dst->device) {
    /* move a contiguous copy of src's elements to dst's device, then convert there */
    VR_TRYG(vr_contiguous_raw(src, &host));
    VR_TRYG(vr_tensor_alloc(host->ndim, host->shape, host->dtype, dst->device, &tmp));
    size_t nb = (size_t)vr_tensor_numel(host) * vr_dtype_size(host->dtype);
    const vr_device_api *api = vr_device_get(dst->device == VR_CPU ? host->device : dst->device);
    VR_TRYG(api->memcpy(vr_data(tmp), vr_data(host), nb, dst->device == VR_CPU ? 1 : 0));
    vr_tensor_free(e);
    e = NULL;
    VR_TRYG(expand_to(func, tmp, dst, &e));
  }
  vr_kernel_args a = {.in = {e}, .n_in = 1, .out = {dst}, .n_out = 1};
  st = vr_dispatch(VR_OP_COPY, dst->device, 0, &a);
done:
  vr_tensor_free(e);
  vr_tensor_free(tmp);
  vr_tensor_free(host);
  return st;
}

vr_status vr_copy_(vr_tensor *dst, const vr_tensor *src) {
  VR_CHECK_TENSOR(dst);
  VR_CHECK_TENSOR(src);
  VR_TRY(copy_into(__func__, dst, src));
  vr_tensor_bump_version(dst);
  return VR_OK;
}

vr_status vr_contiguous_raw(const vr_tensor *t, vr_tensor **out) {
  if (vr_tensor_is_contiguous(t)) {
    vr_tensor_retain((vr_tensor *)t);
    *out = (vr_tensor *)t;
    return VR_OK;
  }
  vr_tensor *c = NULL;
  VR_TRY(vr_tensor_alloc_like(t, &c));
  vr_status st = copy_into(__func__, c, t);
  if (st) {
    vr_tensor_free(c);
    return st;
  }
  *out = c;
  return VR_OK;
}

vr_status vr_add_(vr_tensor *t, const vr_tensor *src, double alpha) {
  VR_CHECK_TENSOR(t);
  VR_CHECK_TENSOR(src);
  VR_CHECK_SAME_DEVICE(t, src);
  vr_tensor *e = NULL, *scaled = NULL;
  VR_TRY(expand_to(__func__, src, t, &e));
  vr_status st = VR_OK;
  int prev = vr_set_grad_enabled(0);
  if (alpha != 1.0) {
    VR_TRYG(vr_mul_scalar(e, alpha, &scaled));
  }
  vr_kernel_args a = {.in = {t, scaled ? scaled : e}, .n_in = 2, .out = {t}, .n_out = 1, .sub = VR_BIN_ADD};
  VR_TRYG(vr_dispatch(VR_OP_BINARY, t->device, 0, &a));
  vr_tensor_bump_version(t);
done:
  vr_set_grad_enabled(prev);
  vr_tensor_free(e);
  vr_tensor_free(scaled);
  return st;
}

vr_status vr_mul_scalar_(vr_tensor *t, double s) {
  VR_CHECK_TENSOR(t);
  vr_tensor *k = NULL;
  VR_TRY(vr_tensor_full(0, NULL, s, t->dtype, t->device, &k));
  vr_tensor *e = NULL;
  vr_status st = expand_to(__func__, k, t, &e);
  if (!st) {
    vr_kernel_args a = {.in = {t, e}, .n_in = 2, .out = {t}, .n_out = 1, .sub = VR_BIN_MUL};
    st = vr_dispatch(VR_OP_BINARY, t->device, 0, &a);
  }
  if (!st) vr_tensor_bump_version(t);
  vr_tensor_free(e);
  vr_tensor_free(k);
  return st;
}

/* ---------------------------------------------------------------- element access */

static vr_status element_offset(const char *func, const vr_tensor *t, const int64_t *index, int64_t *off) {
  int64_t o = t->offset;
  for (int i = 0; i < t->ndim; i++) {
    if (!index || index[i] < 0 || index[i] >= t->shape[i])
      return vr_error_set(VR_E_ARG, func, __FILE__, __LINE__, "index[%d]: expected 0..%lld, got %lld", i,
                          (long long)t->shape[i] - 1, index ? (long long)index[i] : -1LL);
    o += index[i] * t->stride[i];
  }
  *off = o;
  return VR_OK;
}

vr_status vr_tensor_get(const vr_tensor *t, const int64_t *index, double *value) {
  VR_CHECK_TENSOR(t);
  VR_CHECK_OUT(value);
  int64_t off;
  VR_TRY(element_offset(__func__, t, index, &off));
  size_t es = vr_dtype_size(t->dtype);
  unsigned char buf[8];
  const void *p = (const char *)t->storage->data + (size_t)off * es;
  if (t->device != VR_CPU) {
    VR_TRY(vr_device_get(t->device)->memcpy(buf, p, es, 1));
    p = buf;
  }
  *value = vr_load(p, t->dtype);
  return VR_OK;
}

vr_status vr_tensor_set(vr_tensor *t, const int64_t *index, double value) {
  VR_CHECK_TENSOR(t);
  int64_t off;
  VR_TRY(element_offset(__func__, t, index, &off));
  size_t es = vr_dtype_size(t->dtype);
  void *p = (char *)t->storage->data + (size_t)off * es;
  if (t->device != VR_CPU) {
    unsigned char buf[8];
    vr_store(buf, t->dtype, value);
    VR_TRY(vr_device_get(t->device)->memcpy(p, buf, es, 0));
  } else {
    vr_store(p, t->dtype, value);
  }
  vr_tensor_bump_version(t);
  return VR_OK;
}

vr_status vr_tensor_item(const vr_tensor *t, double *value) {
  VR_CHECK_TENSOR(t);
  if (vr_tensor_numel(t) != 1)
    return VR_FAIL(VR_E_SHAPE, "t: expected a one-element tensor, got %lld elements", (long long)vr_tensor_numel(t));
  int64_t zero[VR_MAX_DIMS] = {0};
  return vr_tensor_get(t, zero, value);
}

/* ---------------------------------------------------------------- conversions (differentiable) */

static vr_status convert_backward(vr_node *n, vr_tensor *gout, vr_tensor **gin) {
  /* i[0]: the input's dtype; i[1]: its device */
  vr_tensor *a = NULL;
  VR_TRY(vr_tensor_to_device(gout, (vr_device)n->i[1], &a));
  vr_status st = vr_tensor_to_dtype(a, (vr_dtype)n->i[0], &gin[0]);
  vr_tensor_free(a);
  return st;
}

static vr_status convert(const char *func, const vr_tensor *t, vr_dtype dtype, vr_device device, int force_copy,
                         vr_tensor **out) {
  if (!force_copy && t->dtype == dtype && t->device == device) {
    vr_tensor_retain((vr_tensor *)t);
    *out = (vr_tensor *)t;
    return VR_OK;
  }
  VR_TRY(check_dtype_device(func, dtype, device));
  vr_tensor *c = NULL;
  VR_TRY(vr_tensor_alloc(t->ndim, t->shape, dtype, device, &c));
  vr_status st = copy_into(func, c, t);
  int64_t iv[2] = {t->dtype, t->device};
  if (!st && vr_is_float(dtype) && vr_is_float(t->dtype))
    st = vr_record(func + 3, convert_backward, 1, &t, 0, NULL, NULL, 0, iv, 2, c, NULL);
  if (st) {
    vr_tensor_free(c);
    return st;
  }
  *out = c;
  return VR_OK;
}

vr_status vr_tensor_clone(const vr_tensor *t, vr_tensor **out) {
  VR_CHECK_TENSOR(t);
  VR_CHECK_OUT(out);
  return convert(__func__, t, t->dtype, t->device, 1, out);
}
vr_status vr_tensor_to_dtype(const vr_tensor *t, vr_dtype dtype, vr_tensor **out) {
  VR_CHECK_TENSOR(t);
  VR_CHECK_OUT(out);
  return convert(__func__, t, dtype, t->device, 0, out);
}
vr_status vr_tensor_to_device(const vr_tensor *t, vr_device device, vr_tensor **out) {
  VR_CHECK_TENSOR(t);
  VR_CHECK_OUT(out);
  return convert(__func__, t, t->dtype, device, 0, out);
}

/* ---------------------------------------------------------------- broadcasting */

vr_status vr_broadcast_shape(const char *func, const vr_tensor *a, const vr_tensor *b, int *ndim, int64_t *shape) {
  int n = a->ndim > b->ndim ? a->ndim : b->ndim;
  for (int i = 0; i < n; i++) {
    int ia = i - (n - a->ndim), ib = i - (n - b->ndim);
    int64_t sa = ia >= 0 ? a->shape[ia] : 1, sb = ib >= 0 ? b->shape[ib] : 1;
    if (sa != sb && sa != 1 && sb != 1) {
      char b1[96], b2[96];
      return vr_error_set(VR_E_SHAPE, func, __FILE__, __LINE__,
                          "b: expected a shape that broadcasts with a's %s, got %s (dim %d: %lld vs %lld)",
                          vr_shape_str(a->ndim, a->shape, b1, sizeof b1), vr_shape_str(b->ndim, b->shape, b2, sizeof b2),
                          i, (long long)sa, (long long)sb);
    }
    shape[i] = sa == 1 ? sb : sa;
  }
  *ndim = n;
  return VR_OK;
}

vr_status vr_sum_to_shape(vr_tensor *g, int ndim, const int64_t *shape, vr_tensor **out) {
  int dims[VR_MAX_DIMS], nd = 0, lead = g->ndim - ndim;
  for (int i = 0; i < g->ndim; i++) {
    int j = i - lead;
    if (j < 0 || (shape[j] == 1 && g->shape[i] != 1)) dims[nd++] = i;
  }
  if (nd == 0) {
    vr_tensor_retain(g);
    *out = g;
    return VR_OK;
  }
  vr_tensor *s = NULL;
  VR_TRY(vr_sum(g, nd, dims, 1, &s));
  vr_status st = vr_reshape(s, ndim, shape, out);
  vr_tensor_free(s);
  return st;
}
