/* conv.c: vr_conv2d (NCHW) and vr_conv2d_nhwc (channels-last), with stride, padding, dilation,
 * groups and an optional bias, and a fused backward kernel.
 *
 * VR_OP_CONV2D kernel args:
 *   i[0] stride_h, i[1] stride_w, i[2] pad_h, i[3] pad_w, i[4] dil_h, i[5] dil_w, i[6] groups,
 *   i[7] layout: 0 = NCHW, 1 = NHWC (channels-last, as PyTorch's memory_format=channels_last)
 *   (zero padding; output Ho = (H + 2 pad_h - dil_h (kh - 1) - 1) / stride_h + 1, likewise Wo).
 *   layout 0 (NCHW):
 *     forward:  in[0] = x [N, C, H, W], in[1] = w [Cout, C / groups, kh, kw], in[2] = bias [Cout]
 *               or NULL (n_in = 3); out[0] = y [N, Cout, Ho, Wo].
 *     backward: in[0] = grad_y [N, Cout, Ho, Wo], in[1] = x, in[2] = w; out[0] = grad_x,
 *               out[1] = grad_w, out[2] = grad_b (n_out = 3), each NULL when not wanted.
 *   layout 1 (NHWC): the same with every activation [N, H, W, C] and the weight [Cout, kh, kw, C/groups]:
 *     forward:  in[0] = x [N, H, W, C], in[1] = w [Cout, kh, kw, C / groups], in[2] = bias [Cout]
 *               or NULL; out[0] = y [N, Ho, Wo, Cout].
 *     backward: in[0] = grad_y [N, Ho, Wo, Cout], in[1] = x, in[2] = w; out[0] = grad_x
 *               [N, H, W, C], out[1] = grad_w [Cout, kh, kw, C / groups], out[2] = grad_b [Cout].
 *   Every tensor is contiguous (in its own layout) and the outputs are fresh; kernels overwrite
 *   every output element. Group g uses input channels [g C/groups, (g+1) C/groups) and output
 *   channels [g Cout/groups, (g+1) Cout/groups). grad_w sums over the batch in a fixed order.
 *   f32, f64 and bf16 (bf16 accumulates in f32; the CPU computes it in f32 and rounds).
 *
 * Autocast (core/autocast.c): with vr_autocast_set(VR_BF16), f32 x, weight and bias are cast to
 * bf16 through vr_tensor_to_dtype (bf16 x passes as it is) and the bf16 convolution's result is
 * returned in bf16, as PyTorch's autocast does: convolutional activations stay bf16 through batch
 * norm (f32 parameters), ReLU, residual adds and pooling, halving their memory traffic and saving
 * a cast at each end of every convolution; an op that meets f32 under autocast widens the bf16
 * operand (elementwise, cat). The recorded casts give f32 leaves f32 gradients. A permuted weight
 * view (nn.Conv2d in channels-last passes weight:permute(0, 2, 3, 1)) becomes one contiguous bf16
 * tensor in that one cast.
 */
#include "../internal.h"

static vr_status conv2d_backward(vr_node *nd, vr_tensor *g, vr_tensor **gin) {
  vr_tensor *x = NULL, *w = NULL, *gc = NULL;
  vr_tensor *outs[3] = {NULL, NULL, NULL};
  vr_status st;
  VR_TRYG(vr_node_saved(nd, 0, &x));
  VR_TRYG(vr_node_saved(nd, 1, &w));
  VR_TRYG(vr_contiguous_raw(g, &gc));
  if (vr_node_needs(nd, 0)) VR_TRYG(vr_tensor_alloc(x->ndim, x->shape, x->dtype, x->device, &outs[0]));
  if (vr_node_needs(nd, 1)) VR_TRYG(vr_tensor_alloc(w->ndim, w->shape, w->dtype, w->device, &outs[1]));
  if (vr_node_needs(nd, 2)) VR_TRYG(vr_tensor_alloc(1, &w->shape[0], w->dtype, w->device, &outs[2]));
  vr_kernel_args a = {.in = {gc, x, w}, .n_in = 3, .out = {outs[0], outs[1], outs[2]}, .n_out = 3};
  for (int k = 0; k < 8; k++) a.i[k] = nd->i[k];
  VR_TRYG(vr_dispatch(VR_OP_CONV2D, x->device, 1, &a));
  for (int k = 0; k < 3; k++) {
    gin[k] = outs[k];
    outs[k] = NULL;
  }
done:
  for (int k = 0; k < 3; k++) vr_tensor_free(outs[k]);
  vr_tensor_free(gc);
  return st;
}

/* The checks below report under the public function's name (func), not conv2d_impl's. */
#undef VR_FAIL
#define VR_FAIL(st, ...) vr_error_set((st), func, __FILE__, __LINE__, __VA_ARGS__)

/* layout 0: NCHW, 1: NHWC. cd, hd, wd: the dims of C, H, W in x (and of Cout, Ho, Wo in y);
 * wc, wh, ww: the dims of C/groups, kh, kw in the weight. */
static vr_status conv2d_impl(const char *func, const vr_tensor *x, const vr_tensor *weight, const vr_tensor *bias,
                             int stride_h, int stride_w, int pad_h, int pad_w, int dil_h, int dil_w, int groups,
                             int layout, vr_tensor **out) {
  VR_CHECK_TENSOR(x);
  VR_CHECK_TENSOR(weight);
  VR_CHECK_OUT(out);
  const vr_tensor *ins3[3] = {x, weight, bias};
  if (x->device == weight->device && (!bias || bias->device == x->device) && vr_autocast_applies(3, ins3)) {
    vr_tensor *c[3] = {NULL, NULL, NULL};
    vr_status st = vr_autocast_cast(3, ins3, c);
    if (!st) st = conv2d_impl(func, c[0], c[1], c[2], stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups, layout, out);
    for (int k = 0; k < 3; k++) vr_tensor_free(c[k]);
    return st;
  }
  VR_CHECK_FLOAT(x);
  VR_CHECK_SAME_DEVICE(x, weight);
  VR_CHECK_SAME_DTYPE(x, weight);
  const int cd = layout ? 3 : 1, hd = layout ? 1 : 2, wd = layout ? 2 : 3;
  const int wc = layout ? 3 : 1, wh = layout ? 1 : 2, ww = layout ? 2 : 3;
  const char *xdims = layout ? "[N, H, W, C]" : "[N, C, H, W]";
  const char *wdims = layout ? "[Cout, kh, kw, C/groups]" : "[Cout, C/groups, kh, kw]";
  char s1[96], s2[96];
  vr_shape_str(x->ndim, x->shape, s1, sizeof s1);
  vr_shape_str(weight->ndim, weight->shape, s2, sizeof s2);
  if (x->ndim != 4) return VR_FAIL(VR_E_SHAPE, "x: expected 4 dims %s, got %s", xdims, s1);
  if (weight->ndim != 4) return VR_FAIL(VR_E_SHAPE, "weight: expected 4 dims %s, got %s", wdims, s2);
  if (stride_h < 1 || stride_w < 1)
    return VR_FAIL(VR_E_ARG, "stride_h, stride_w: expected >= 1, got %d, %d", stride_h, stride_w);
  if (pad_h < 0 || pad_w < 0) return VR_FAIL(VR_E_ARG, "pad_h, pad_w: expected >= 0, got %d, %d", pad_h, pad_w);
  if (dil_h < 1 || dil_w < 1) return VR_FAIL(VR_E_ARG, "dil_h, dil_w: expected >= 1, got %d, %d", dil_h, dil_w);
  if (groups < 1) return VR_FAIL(VR_E_ARG, "groups: expected >= 1, got %d", groups);
  int64_t C = x->shape[cd], Co = weight->shape[0], kh = weight->shape[wh], kw = weight->shape[ww];
  if (C % groups)
    return VR_FAIL(VR_E_SHAPE, "x: expected in_channels divisible by groups = %d, got %lld channels (x %s %s)", groups,
                   (long long)C, xdims, s1);
  if (Co % groups)
    return VR_FAIL(VR_E_SHAPE, "weight: expected out_channels divisible by groups = %d, got %lld (weight %s %s)", groups,
                   (long long)Co, wdims, s2);
  if (weight->shape[wc] * groups != C)
    return VR_FAIL(VR_E_SHAPE,
                   "weight: expected dim %d = in_channels / groups = %lld (x %s %s, groups %d), got weight %s %s", wc,
                   (long long)(C / groups), xdims, s1, groups, wdims, s2);
  if (kh < 1 || kw < 1) return VR_FAIL(VR_E_SHAPE, "weight: expected a kernel of at least 1x1, got %s", s2);
  int64_t H = x->shape[hd], W = x->shape[wd];
  int64_t ekh = (int64_t)dil_h * (kh - 1) + 1, ekw = (int64_t)dil_w * (kw - 1) + 1;
  if (H + 2 * pad_h < ekh || W + 2 * pad_w < ekw)
    return VR_FAIL(VR_E_SHAPE, "x: padded input %lldx%lld is smaller than the dilated kernel %lldx%lld (x %s, weight %s)",
                   (long long)(H + 2 * pad_h), (long long)(W + 2 * pad_w), (long long)ekh, (long long)ekw, s1, s2);
  if (bias) {
    VR_CHECK_SAME_DEVICE(x, bias);
    VR_CHECK_SAME_DTYPE(x, bias);
    if (bias->ndim != 1 || bias->shape[0] != Co)
      return VR_FAIL(VR_E_SHAPE, "bias: expected [%lld] (out_channels), got %s", (long long)Co,
                     vr_shape_str(bias->ndim, bias->shape, s1, sizeof s1));
  }
  int64_t Ho = (H + 2 * pad_h - ekh) / stride_h + 1, Wo = (W + 2 * pad_w - ekw) / stride_w + 1;
  int64_t oshape[4];
  oshape[0] = x->shape[0];
  oshape[cd] = Co;
  oshape[hd] = Ho;
  oshape[wd] = Wo;
  int64_t iv[8] = {stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups, layout};
  vr_tensor *xc = NULL, *wc_ = NULL, *bc = NULL, *y = NULL;
  vr_status st;
  VR_TRYG(vr_contiguous_raw(x, &xc));
  VR_TRYG(vr_contiguous_raw(weight, &wc_));
  if (bias) VR_TRYG(vr_contiguous_raw(bias, &bc));
  VR_TRYG(vr_tensor_alloc(4, oshape, x->dtype, x->device, &y));
  if (vr_tensor_numel(y) > 0) {
    vr_kernel_args a = {.in = {xc, wc_, bc}, .n_in = 3, .out = {y}, .n_out = 1};
    for (int k = 0; k < 8; k++) a.i[k] = iv[k];
    VR_TRYG(vr_dispatch(VR_OP_CONV2D, x->device, 0, &a));
  }
  const vr_tensor *ins[3] = {x, weight, bias}, *saved[2] = {xc, wc_};
  VR_TRYG(vr_record(layout ? "conv2d_nhwc" : "conv2d", conv2d_backward, 3, ins, 2, saved, NULL, 0, iv, 8, y, NULL));
  *out = y;
  y = NULL;
done:
  vr_tensor_free(xc);
  vr_tensor_free(wc_);
  vr_tensor_free(bc);
  vr_tensor_free(y);
  return st;
}
#undef VR_FAIL
#define VR_FAIL(st, ...) vr_error_set((st), __func__, __FILE__, __LINE__, __VA_ARGS__)

vr_status vr_conv2d(const vr_tensor *x, const vr_tensor *weight, const vr_tensor *bias, int stride_h, int stride_w,
                    int pad_h, int pad_w, int dil_h, int dil_w, int groups, vr_tensor **out) {
  return conv2d_impl(__func__, x, weight, bias, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups, 0, out);
}

vr_status vr_conv2d_nhwc(const vr_tensor *x, const vr_tensor *weight, const vr_tensor *bias, int stride_h,
                         int stride_w, int pad_h, int pad_w, int dil_h, int dil_w, int groups, vr_tensor **out) {
  return conv2d_impl(__func__, x, weight, bias, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups, 1, out);
}
