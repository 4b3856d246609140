/* pool.c: max_pool2d, avg_pool2d and adaptive_avg_pool2d over [N, C, H, W] (or [C, H, W]), each
 * with a backward kernel.
 *
 * Kernel args (every tensor contiguous and 4-D: a 3-D input is passed as [1, C, H, W]; outputs
 * are fresh and the kernels overwrite every element, grad_x included):
 *   VR_OP_MAXPOOL2D          i = {kh, kw, stride_h, stride_w, pad_h, pad_w}; padding is -inf.
 *       fwd: in[0] = x; out[0] = y [N, C, Ho, Wo], out[1] = indices (i64, same shape): the flat
 *            index ih * W + iw of the max within its plane, the first one on ties.
 *       bwd: in[0] = grad_y, in[1] = indices; out[0] = grad_x [N, C, H, W].
 *   VR_OP_AVGPOOL2D          i = {kh, kw, stride_h, stride_w, pad_h, pad_w, count_include_pad}
 *       fwd: in[0] = x; out[0] = y.   bwd: in[0] = grad_y; out[0] = grad_x.
 *       The divisor is PyTorch's: the window clipped to the padded input when count_include_pad,
 *       else to the input.
 *   VR_OP_ADAPTIVE_AVGPOOL2D i = {out_h, out_w}; bin i covers [floor(i H / oh), ceil((i+1) H / oh)).
 *       fwd: in[0] = x; out[0] = y.   bwd: in[0] = grad_y; out[0] = grad_x.
 *   Ho = (H + 2 pad_h - kh) / stride_h + 1 (floor), likewise Wo.
 */
#include "../internal.h"

/* a raw 4-D view of a 3-D or 4-D tensor */
static vr_status as4d(const vr_tensor *t, vr_tensor **out) {
  if (t->ndim == 4) {
    vr_tensor_retain((vr_tensor *)t);
    *out = (vr_tensor *)t;
    return VR_OK;
  }
  int64_t shape[4] = {1, t->shape[0], t->shape[1], t->shape[2]};
  int64_t stride[4] = {t->shape[0] * t->stride[0], t->stride[0], t->stride[1], t->stride[2]};
  return vr_tensor_view_raw(t, 4, shape, stride, t->offset, out);
}

static vr_status check_x(const char *func, const vr_tensor *x) {
  char s[96];
  if (!vr_is_float(x->dtype))
    return vr_error_set(VR_E_DTYPE, func, __FILE__, __LINE__, "x: expected a float tensor, got %s",
                        vr_dtype_name(x->dtype));
  if (x->ndim != 3 && x->ndim != 4)
    return vr_error_set(VR_E_SHAPE, func, __FILE__, __LINE__, "x: expected 3 or 4 dims ([N,] C, H, W), got %s",
                        vr_shape_str(x->ndim, x->shape, s, sizeof s));
  return VR_OK;
}

static vr_status check_window(const char *func, const vr_tensor *x, int kh, int kw, int sh, int sw, int ph, int pw,
                              int64_t *ho, int64_t *wo) {
  if (kh < 1 || kw < 1)
    return vr_error_set(VR_E_ARG, func, __FILE__, __LINE__, "k_h, k_w: expected >= 1, got %d, %d", kh, kw);
  if (sh < 1 || sw < 1)
    return vr_error_set(VR_E_ARG, func, __FILE__, __LINE__, "stride_h, stride_w: expected >= 1, got %d, %d", sh, sw);
  if (ph < 0 || pw < 0 || ph > kh / 2 || pw > kw / 2)
    return vr_error_set(VR_E_ARG, func, __FILE__, __LINE__,
                        "pad_h, pad_w: expected 0 <= pad <= kernel / 2 (%d, %d), got %d, %d", kh / 2, kw / 2, ph, pw);
  int64_t H = x->shape[x->ndim - 2], W = x->shape[x->ndim - 1];
  if (H + 2 * ph < kh || W + 2 * pw < kw)
    return vr_error_set(VR_E_SHAPE, func, __FILE__, __LINE__,
                        "x: padded input %lldx%lld is smaller than the kernel %dx%d", (long long)(H + 2 * ph),
                        (long long)(W + 2 * pw), kh, kw);
  *ho = (H + 2 * ph - kh) / sh + 1;
  *wo = (W + 2 * pw - kw) / sw + 1;
  return VR_OK;
}

/* Runs a pooling forward: out0 of x's leading dims + [ho, wo], optionally out1 (i64 indices). */
static vr_status pool_run(vr_op op, const vr_tensor *x, int64_t ho, int64_t wo, const int64_t *iv, int ni,
                          vr_tensor **y, vr_tensor **idx) {
  int64_t shape[4];
  int nd = x->ndim;
  for (int d = 0; d < nd - 2; d++) shape[d] = x->shape[d];
  shape[nd - 2] = ho;
  shape[nd - 1] = wo;
  vr_tensor *xc = NULL, *x4 = NULL, *y4 = NULL, *i4 = NULL;
  vr_status st;
  VR_TRYG(vr_contiguous_raw(x, &xc));
  VR_TRYG(as4d(xc, &x4));
  VR_TRYG(vr_tensor_alloc(nd, shape, x->dtype, x->device, y));
  VR_TRYG(as4d(*y, &y4));
  if (idx) {
    VR_TRYG(vr_tensor_alloc(nd, shape, VR_I64, x->device, idx));
    VR_TRYG(as4d(*idx, &i4));
  }
  if (vr_tensor_numel(*y) > 0) {
    vr_kernel_args a = {.in = {x4}, .n_in = 1, .out = {y4, i4}, .n_out = idx ? 2 : 1};
    for (int k = 0; k < ni; k++) a.i[k] = iv[k];
    VR_TRYG(vr_dispatch(op, x->device, 0, &a));
  }
done:
  if (st) {
    vr_tensor_free(*y);
    *y = NULL;
    if (idx) {
      vr_tensor_free(*idx);
      *idx = NULL;
    }
  }
  vr_tensor_free(xc);
  vr_tensor_free(x4);
  vr_tensor_free(y4);
  vr_tensor_free(i4);
  return st;
}

/* shared backward: grad_x of the input's shape from the op's bwd kernel; saved slot 0 (if any)
 * is passed as in[1] */
static vr_status pool_backward(vr_node *nd, vr_tensor *g, vr_tensor **gin, vr_op op) {
  vr_tensor *gc = NULL, *g4 = NULL, *gx = NULL, *gx4 = NULL, *s = NULL, *s4 = NULL;
  vr_status st;
  const vr_edge *e = &nd->in[0];
  if (nd->n_saved > 0) {
    VR_TRYG(vr_node_saved(nd, 0, &s));
    VR_TRYG(as4d(s, &s4));
  }
  VR_TRYG(vr_contiguous_raw(g, &gc));
  VR_TRYG(as4d(gc, &g4));
  VR_TRYG(vr_tensor_alloc(e->ndim, e->shape, g->dtype, g->device, &gx));
  VR_TRYG(as4d(gx, &gx4));
  if (vr_tensor_numel(gx) > 0) {
    vr_kernel_args a = {.in = {g4, s4}, .n_in = s4 ? 2 : 1, .out = {gx4}, .n_out = 1};
    for (int k = 0; k < 8; k++) a.i[k] = nd->i[k];
    VR_TRYG(vr_dispatch(op, g->device, 1, &a));
  }
  gin[0] = gx;
  gx = NULL;
done:
  vr_tensor_free(gc);
  vr_tensor_free(g4);
  vr_tensor_free(gx);
  vr_tensor_free(gx4);
  vr_tensor_free(s4);
  return st;
}
static vr_status maxpool_backward(vr_node *nd, vr_tensor *g, vr_tensor **gin) {
  return pool_backward(nd, g, gin, VR_OP_MAXPOOL2D);
}
static vr_status avgpool_backward(vr_node *nd, vr_tensor *g, vr_tensor **gin) {
  return pool_backward(nd, g, gin, VR_OP_AVGPOOL2D);
}
static vr_status adaptive_backward(vr_node *nd, vr_tensor *g, vr_tensor **gin) {
  return pool_backward(nd, g, gin, VR_OP_ADAPTIVE_AVGPOOL2D);
}

static vr_status finish(const char *name, vr_backward_fn bw, const vr_tensor *x, vr_tensor *saved, const int64_t *iv,
                        int ni, vr_tensor *y, vr_tensor **out) {
  const vr_tensor *sv[1] = {saved};
  vr_status st = vr_record(name, bw, 1, &x, saved ? 1 : 0, sv, NULL, 0, iv, ni, y, NULL);
  if (st) {
    vr_tensor_free(y);
    return st;
  }
  *out = y;
  return VR_OK;
}

vr_status vr_max_pool2d(const vr_tensor *x, int k_h, int k_w, int stride_h, int stride_w, int pad_h, int pad_w,
                        vr_tensor **out) {
  VR_CHECK_TENSOR(x);
  VR_CHECK_OUT(out);
  VR_TRY(check_x(__func__, x));
  int64_t ho, wo;
  VR_TRY(check_window(__func__, x, k_h, k_w, stride_h, stride_w, pad_h, pad_w, &ho, &wo));
  int64_t iv[6] = {k_h, k_w, stride_h, stride_w, pad_h, pad_w};
  vr_tensor *y = NULL, *idx = NULL;
  VR_TRY(pool_run(VR_OP_MAXPOOL2D, x, ho, wo, iv, 6, &y, &idx));
  vr_status st = finish("max_pool2d", maxpool_backward, x, idx, iv, 6, y, out);
  vr_tensor_free(idx);
  return st;
}

vr_status vr_avg_pool2d(const vr_tensor *x, int k_h, int k_w, int stride_h, int stride_w, int pad_h, int pad_w,
                        int count_include_pad, vr_tensor **out) {
  VR_CHECK_TENSOR(x);
  VR_CHECK_OUT(out);
  VR_TRY(check_x(__func__, x));
  int64_t ho, wo;
  VR_TRY(check_window(__func__, x, k_h, k_w, stride_h, stride_w, pad_h, pad_w, &ho, &wo));
  int64_t iv[7] = {k_h, k_w, stride_h, stride_w, pad_h, pad_w, count_include_pad ? 1 : 0};
  vr_tensor *y = NULL;
  VR_TRY(pool_run(VR_OP_AVGPOOL2D, x, ho, wo, iv, 7, &y, NULL));
  return finish("avg_pool2d", avgpool_backward, x, NULL, iv, 7, y, out);
}

vr_status vr_adaptive_avg_pool2d(const vr_tensor *x, int out_h, int out_w, vr_tensor **out) {
  VR_CHECK_TENSOR(x);
  VR_CHECK_OUT(out);
  VR_TRY(check_x(__func__, x));
  if (out_h < 1 || out_w < 1) return VR_FAIL(VR_E_ARG, "out_h, out_w: expected >= 1, got %d, %d", out_h, out_w);
  int64_t H = x->shape[x->ndim - 2], W = x->shape[x->ndim - 1];
  if (H < 1 || W < 1) return VR_FAIL(VR_E_SHAPE, "x: expected H, W >= 1, got %lldx%lld", (long long)H, (long long)W);
  int64_t iv[2] = {out_h, out_w};
  vr_tensor *y = NULL;
  VR_TRY(pool_run(VR_OP_ADAPTIVE_AVGPOOL2D, x, out_h, out_w, iv, 2, &y, NULL));
  return finish("adaptive_avg_pool2d", adaptive_backward, x, NULL, iv, 2, y, out);
}
