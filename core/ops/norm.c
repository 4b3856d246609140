/* norm.c: batch normalisation and layer normalisation front-ends (fused kernels, hand-written
 * backward).
 *
 * vr_kernel_args, as every backend receives it. The front-end makes x, grad_y, weight and bias
 * contiguous; "stats" tensors are contiguous, in x's dtype (f32 when x is bf16). Batch norm takes
 * bf16 x with f32 weight and bias (autocast activations): y and grad_x in bf16, the parameter
 * grads in f32; kernels read the parameters in their own dtype.
 *
 * VR_OP_BATCHNORM forward: x is read as N x C x S (S = product of the dims after C, 1 for N x C)
 *   in   = {x, weight|NULL [C], bias|NULL [C], running_mean|NULL [C], running_var|NULL [C]}
 *          running_* are both given or both NULL; 1-D, any float dtype, ANY stride (use
 *          stride[0]); the kernel updates them in place when i[0] = 1 (the front-end bumps versions):
 *          running = (1 - f[0]) running + f[0] batch, with the unbiased variance (sum sq / (M - 1))
 *   out  = {y [x's shape], save_mean [C], save_invstd [C]}
 *   i[0] = 1: normalise with batch statistics (biased variance), 0: with running_* (eval)
 *   i[1] = N, i[2] = C, i[3] = S;  f[0] = momentum, f[1] = eps;  M = N S >= 2 when i[0] = 1
 *   save_mean/save_invstd hold the statistics used: batch ones, or running_mean and
 *   1/sqrt(running_var + eps) in eval.
 *   Fused activation (vr_batch_norm_act): in[5] = residual|NULL (x's shape and dtype, contiguous;
 *   n_in = 6), i[4] = 1: ReLU. y = act(xhat w + b + residual), rounded once to x's dtype by the GPU
 *   (the CPU rounds the batch norm, then adds and clamps, as the unfused ops do).
 * VR_OP_BATCHNORM backward:
 *   in   = {grad_y [x's shape], x, weight|NULL, save_mean, save_invstd}
 *   out  = {grad_x|NULL, grad_weight|NULL [C], grad_bias|NULL [C]} (NULL: not needed)
 *   i[0..3] as forward. With batch statistics grad_x = w invstd (g - mean(g) - xhat mean(g xhat)),
 *   with running ones grad_x = w invstd g; grad_weight = sum g xhat; grad_bias = sum g.
 *   Fused activation: i[4] = 1 (ReLU) with in[5] = y, the forward's output (n_in = 7): g is
 *   grad_y where y > 0, else 0 (ReLU's gradient, from the output as vr_relu's); out[3] =
 *   grad_residual|NULL (n_out = 4) receives g. i[5] = 1 (CPU only, ReLU without residual and
 *   S > 1): y was not kept (in[5] NULL) and the kernel tells y > 0 from x and in[6] = bias|NULL,
 *   by the forward's own arithmetic, which saves reading y.
 *   Pooled (vr_batch_norm_act_pool, CPU only, f32 and f64, no residual): i[6], i[7] = pool_h,
 *   pool_w (0: none), windows at that stride without padding. Forward: out[0] = the max-pooled
 *   output [N, C, H / pool_h, W / pool_w], out[3] = codes (u8, the same shape): the winner's place
 *   in its window (row << 3 | column, vr_max_pool2d's choice) | 0x80 where the gradient passes
 *   (ReLU's output > 0, or i[4] = 0). Backward: in[0] = the pooled output's gradient, in[5] NULL,
 *   in[6] = bias|NULL, in[7] = the codes (n_in = 8); out as the plain backward. The results are
 *   those of vr_batch_norm_act then vr_max_pool2d bit for bit.
 *
 * VR_OP_LAYERNORM forward: x is read as R rows of D = product of the last n_norm_dims dims
 *   in   = {x, weight|NULL [D], bias|NULL [D]}
 *   out  = {y [x's shape], save_mean [R], save_invstd [R]}
 *   i[0] = R, i[1] = D;  f[0] = eps  (biased variance)
 * VR_OP_LAYERNORM backward:
 *   in   = {grad_y, x, weight|NULL, save_mean, save_invstd}
 *   out  = {grad_x|NULL, grad_weight|NULL [D], grad_bias|NULL [D]}
 *   i[0] = R, i[1] = D. grad_weight/grad_bias are sums over rows (deterministic order).
 */
#include "../internal.h"
#include <math.h>

static vr_dtype stats_dtype(vr_dtype dt) { return dt == VR_BF16 ? VR_F32 : dt; }

/* a contiguous version of t, or NULL for NULL */
static vr_status contig_opt(const vr_tensor *t, vr_tensor **out) {
  *out = NULL;
  return t ? vr_contiguous_raw(t, out) : VR_OK;
}

/* grad_y as a contiguous tensor of dtype dt (gradients may arrive broadcast or converted) */
static vr_status prep_grad(vr_tensor *g, vr_dtype dt, vr_tensor **out) {
  if (g->dtype == dt) return vr_contiguous_raw(g, out);
  return vr_tensor_to_dtype(g, dt, out); /* always a fresh contiguous tensor */
}

/* shared by both norms: weight/bias (1 affine tensor) of the expected shape, dtype and device;
 * dtype rule: any float (false), x's (true), or x's or f32 when x is bf16 (PARAMS_F32_OK: batch
 * norm under autocast keeps bf16 activations with f32 parameters, as PyTorch does) */
#define PARAMS_F32_OK 2
static vr_status check_affine(const char *func, const char *name, const vr_tensor *x, const vr_tensor *t, int ndim,
                              const int64_t *shape, int same_dtype) {
  if (!t) return VR_OK;
  char b1[96], b2[96];
  if (!same_dtype && !vr_is_float(t->dtype))
    return vr_error_set(VR_E_DTYPE, func, __FILE__, __LINE__, "%s: expected a float tensor, got %s", name,
                        vr_dtype_name(t->dtype));
  bool mixed_ok = same_dtype == PARAMS_F32_OK && x->dtype == VR_BF16 && t->dtype == VR_F32;
  if (same_dtype && t->dtype != x->dtype && !mixed_ok)
    return vr_error_set(VR_E_DTYPE, func, __FILE__, __LINE__, "%s: expected %s like x, got %s", name,
                        vr_dtype_name(x->dtype), vr_dtype_name(t->dtype));
  if (t->device != x->device)
    return vr_error_set(VR_E_DEVICE, func, __FILE__, __LINE__, "%s: expected a tensor on %s like x, got %s", name,
                        vr_device_name(x->device), vr_device_name(t->device));
  bool same = t->ndim == ndim;
  for (int i = 0; same && i < ndim; i++) same = t->shape[i] == shape[i];
  if (!same)
    return vr_error_set(VR_E_SHAPE, func, __FILE__, __LINE__, "%s: expected shape %s, got %s", name,
                        vr_shape_str(ndim, shape, b1, sizeof b1), vr_shape_str(t->ndim, t->shape, b2, sizeof b2));
  return VR_OK;
}

/* what a batch norm's node saved beyond x, weight, mean and invstd */
enum { NORM_PLAIN, NORM_ACT, NORM_POOL };

/* the backward both norms share: x, weight, mean and invstd saved; the kernel (op, bwd) gives the
 * grads of x and of the affine parameters, whose shape is pnd dims of x's (from dim poff, or the
 * last pnd when poff < 0); when nothing flows (run false) the parameter grads are zeros.
 * NORM_ACT (vr_batch_norm_act): the output saved 5th when i[4] (ReLU) unless i[5] (the mask from
 * x), the bias 6th, and the residual's grad as gin[3]. NORM_POOL (vr_batch_norm_act_pool): the
 * pooling's codes saved 5th, the bias 6th. */
static vr_status norm_backward(vr_node *n, vr_tensor *gout, vr_tensor **gin, vr_op op, int pnd, int poff, int niv,
                               bool run, int mode) {
  vr_tensor *x = NULL, *w = NULL, *mean = NULL, *invstd = NULL, *y = NULL, *b = NULL, *codes = NULL, *g = NULL;
  bool fused = mode == NORM_ACT;
  VR_TRY(vr_node_saved(n, 0, &x));
  VR_TRY(vr_node_saved(n, 1, &w));
  VR_TRY(vr_node_saved(n, 2, &mean));
  VR_TRY(vr_node_saved(n, 3, &invstd));
  if (fused && n->i[4] && !n->i[5]) VR_TRY(vr_node_saved(n, 4, &y));
  if (mode == NORM_POOL) VR_TRY(vr_node_saved(n, 4, &codes));
  if (mode != NORM_PLAIN) VR_TRY(vr_node_saved(n, 5, &b));
  VR_TRY(prep_grad(gout, x->dtype, &g));
  vr_status st = VR_OK;
  vr_tensor *gx = NULL, *gw = NULL, *gb = NULL, *gr = NULL;
  const int64_t *pshape = x->shape + (poff < 0 ? x->ndim - pnd : poff);
  if (vr_node_needs(n, 0)) VR_TRYG(vr_tensor_alloc_like(x, &gx));
  /* the parameter grads in the parameters' dtypes (f32 beside bf16 x under autocast) */
  if (vr_node_needs(n, 1)) VR_TRYG(vr_tensor_alloc(pnd, pshape, n->in[1].dtype, x->device, &gw));
  if (vr_node_needs(n, 2)) VR_TRYG(vr_tensor_alloc(pnd, pshape, n->in[2].dtype, x->device, &gb));
  if (fused && vr_node_needs(n, 3)) VR_TRYG(vr_tensor_alloc_like(x, &gr));
  if (run) {
    vr_kernel_args a = {.in = {g, x, w, mean, invstd, y, b, codes},
                        .n_in = mode == NORM_POOL ? 8 : fused ? 7 : 5,
                        .out = {gx, gw, gb, gr},
                        .n_out = fused ? 4 : 3};
    memcpy(a.i, n->i, sizeof(int64_t) * (size_t)niv);
    VR_TRYG(vr_dispatch(op, x->device, 1, &a));
  } else {
    if (gw) VR_TRYG(vr_fill_(gw, 0));
    if (gb) VR_TRYG(vr_fill_(gb, 0));
  }
  gin[0] = gx;
  gin[1] = gw;
  gin[2] = gb;
  if (fused) gin[3] = gr;
  gx = gw = gb = gr = NULL;
done:
  vr_tensor_free(g);
  vr_tensor_free(gx);
  vr_tensor_free(gw);
  vr_tensor_free(gb);
  vr_tensor_free(gr);
  return st;
}

/* ---------------------------------------------------------------- batch norm */

/* i = {batch statistics, N, C, S}; the parameters are [C] = x's dim 1 */
static vr_status bn_backward(vr_node *n, vr_tensor *gout, vr_tensor **gin) {
  return norm_backward(n, gout, gin, VR_OP_BATCHNORM, 1, 1, 4, n->i[2] > 0, NORM_PLAIN);
}

/* the fused batch norm's: i = {batch statistics, N, C, S, relu, mask from x}; saved x, weight,
 * mean, invstd, (relu, no mask from x) the output and the bias; inputs x, weight, bias, residual */
static vr_status bn_act_backward(vr_node *n, vr_tensor *gout, vr_tensor **gin) {
  return norm_backward(n, gout, gin, VR_OP_BATCHNORM, 1, 1, 6, n->i[2] > 0, NORM_ACT);
}

/* the pooled batch norm's: i = {batch statistics, N, C, S, relu, 0, pool_h, pool_w}; saved x,
 * weight, mean, invstd, the pooling's codes and the bias; inputs x, weight, bias */
static vr_status bn_pool_backward(vr_node *n, vr_tensor *gout, vr_tensor **gin) {
  return norm_backward(n, gout, gin, VR_OP_BATCHNORM, 1, 1, 8, n->i[2] > 0, NORM_POOL);
}

/* The checks below report under the public function's name (func). */
#undef VR_FAIL
#define VR_FAIL(st, ...) vr_error_set((st), func, __FILE__, __LINE__, __VA_ARGS__)

/* the CPU pools in the batch norm's own pass (f32 and f64 throughout, more than one value a
 * channel, windows of at most 8 x 8 whose rows fit the kernel's band buffer); elsewhere the ops
 * run one after the other */
static bool pool_fused(const vr_tensor *x, const vr_tensor *weight, const vr_tensor *bias, const int *pool) {
  bool dt = x->dtype == VR_F32 || x->dtype == VR_F64;
  return x->device == VR_CPU && dt && (!weight || weight->dtype == x->dtype) && (!bias || bias->dtype == x->dtype) &&
         x->shape[2] * x->shape[3] > 1 && pool[0] <= 8 && pool[1] <= 8 && pool[0] * x->shape[3] <= VR_BN_POOL_BAND;
}

/* vr_batch_norm (fused false), vr_batch_norm_act (fused true: residual and relu) and
 * vr_batch_norm_act_pool (fused, pool = {pool_h, pool_w}: the output max-pooled) */
static vr_status bn_impl(const char *func, const vr_tensor *x, const vr_tensor *weight, const vr_tensor *bias,
                         vr_tensor *running_mean, vr_tensor *running_var, int training, double momentum, double eps,
                         bool fused, const vr_tensor *residual, int relu, const int *pool, vr_tensor **out) {
  VR_CHECK_TENSOR(x);
  VR_CHECK_OUT(out);
  VR_CHECK_FLOAT(x);
  if (x->ndim < 2)
    return VR_FAIL(VR_E_SHAPE, "x: expected N x C or N x C x H x W (2 or more dims), got %d dims", x->ndim);
  int64_t N = x->shape[0], C = x->shape[1], S = vr_numel_of(x->ndim - 2, x->shape + 2);
  VR_TRY(check_affine(func, "weight", x, weight, 1, &C, PARAMS_F32_OK));
  VR_TRY(check_affine(func, "bias", x, bias, 1, &C, PARAMS_F32_OK));
  if (!running_mean != !running_var)
    return VR_FAIL(VR_E_ARG, "%s: expected a tensor when %s is given, got NULL", running_mean ? "running_var" : "running_mean",
                   running_mean ? "running_mean" : "running_var");
  VR_TRY(check_affine(func, "running_mean", x, running_mean, 1, &C, false));
  VR_TRY(check_affine(func, "running_var", x, running_var, 1, &C, false));
  if (relu != 0 && relu != 1) return VR_FAIL(VR_E_ARG, "relu: expected 0 or 1, got %d", relu);
  if (residual && vr_autocast_mixed(2, (const vr_tensor *const[]){x, residual})) {
    /* bf16 activation meets an f32 residual under autocast: the unfused ops, whose add widens */
    vr_tensor *y = NULL, *s = NULL;
    vr_status st = vr_batch_norm(x, weight, bias, running_mean, running_var, training, momentum, eps, &y);
    if (!st) st = vr_add(y, residual, &s);
    vr_tensor_free(y);
    if (!st && relu) {
      st = vr_relu(s, out);
      vr_tensor_free(s);
    } else if (!st) {
      *out = s;
    }
    return st;
  }
  if (residual) {
    char b1[96], b2[96];
    if (residual->dtype != x->dtype)
      return VR_FAIL(VR_E_DTYPE, "residual: expected %s like x, got %s", vr_dtype_name(x->dtype),
                     vr_dtype_name(residual->dtype));
    if (residual->device != x->device)
      return VR_FAIL(VR_E_DEVICE, "residual: expected a tensor on %s like x, got %s", vr_device_name(x->device),
                     vr_device_name(residual->device));
    if (!vr_same_shape(residual, x))
      return VR_FAIL(VR_E_SHAPE, "residual: expected x's shape %s, got %s", vr_shape_str(x->ndim, x->shape, b1, sizeof b1),
                     vr_shape_str(residual->ndim, residual->shape, b2, sizeof b2));
  }
  if (!(eps >= 0) || isinf(eps)) return VR_FAIL(VR_E_ARG, "eps: expected a finite value >= 0, got %g", eps);
  bool batch_stats = training || !running_mean;
  bool update = training && running_mean;
  if (update && !(momentum >= 0 && momentum <= 1))
    return VR_FAIL(VR_E_ARG, "momentum: expected a value in [0, 1], got %g", momentum);
  if (batch_stats && N * S < 2)
    return VR_FAIL(VR_E_SHAPE, "x: expected more than 1 value per channel with batch statistics, got N x spatial = %lld",
                   (long long)(N * S));
  int ph = pool ? pool[0] : 0, pw = pool ? pool[1] : 0;
  if (pool) {
    if (ph < 1 || pw < 1) return VR_FAIL(VR_E_ARG, "pool_h, pool_w: expected >= 1, got %d, %d", ph, pw);
    if (x->ndim != 4) return VR_FAIL(VR_E_SHAPE, "x: expected N x C x H x W to pool, got %d dims", x->ndim);
    if (x->shape[2] < ph || x->shape[3] < pw)
      return VR_FAIL(VR_E_SHAPE, "x: planes of %lldx%lld are smaller than the pooling window %dx%d",
                     (long long)x->shape[2], (long long)x->shape[3], ph, pw);
    if (!pool_fused(x, weight, bias, pool)) {
      vr_tensor *t = NULL;
      vr_status st = bn_impl(func, x, weight, bias, running_mean, running_var, training, momentum, eps, true, NULL, relu,
                             NULL, &t);
      if (!st) st = vr_max_pool2d(t, ph, pw, ph, pw, 0, 0, out);
      vr_tensor_free(t);
      return st;
    }
  }
  vr_tensor *xc = NULL, *wc = NULL, *bc = NULL, *rc = NULL, *y = NULL, *yv = NULL, *mean = NULL, *invstd = NULL;
  vr_tensor *codes = NULL;
  vr_status st = VR_OK;
  VR_TRYG(vr_contiguous_raw(x, &xc));
  VR_TRYG(contig_opt(weight, &wc));
  VR_TRYG(contig_opt(bias, &bc));
  VR_TRYG(contig_opt(residual, &rc));
  if (pool) { /* the pooled output and each window's code (core/ops/norm.c's VR_OP_BATCHNORM) */
    int64_t pshape[4] = {N, C, x->shape[2] / ph, x->shape[3] / pw};
    VR_TRYG(vr_tensor_alloc(4, pshape, x->dtype, x->device, &y));
    VR_TRYG(vr_tensor_alloc(4, pshape, VR_U8, x->device, &codes));
  } else {
    VR_TRYG(vr_tensor_alloc_like(xc, &y));
  }
  VR_TRYG(vr_tensor_alloc(1, &C, stats_dtype(x->dtype), x->device, &mean));
  VR_TRYG(vr_tensor_alloc(1, &C, stats_dtype(x->dtype), x->device, &invstd));
  if (C > 0 && vr_tensor_numel(x) > 0) {
    vr_kernel_args a = {.in = {xc, wc, bc, running_mean, running_var, rc},
                        .n_in = fused ? 6 : 5,
                        .out = {y, mean, invstd, codes},
                        .n_out = pool ? 4 : 3,
                        .i = {batch_stats, N, C, S, relu, 0, ph, pw},
                        .f = {momentum, eps}};
    VR_TRYG(vr_dispatch(VR_OP_BATCHNORM, x->device, 0, &a));
  }
  if (update) {
    vr_tensor_bump_version(running_mean);
    vr_tensor_bump_version(running_var);
  }
  /* the CPU's backward tells ReLU's mask from x where its forward applied ReLU itself: y need not
   * be kept (the next layer or a pooling may free it) */
  int mask_from_x = relu && !residual && S > 1 && x->device == VR_CPU && !pool;
  int64_t iv[8] = {batch_stats, N, C, S, relu, mask_from_x, ph, pw};
  if (pool) {
    const vr_tensor *ins[3] = {x, weight, bias}, *saved[6] = {xc, wc, mean, invstd, codes, bc};
    VR_TRYG(vr_record("batch_norm_act_pool", bn_pool_backward, 3, ins, 6, saved, NULL, 0, iv, 8, y, NULL));
  } else if (!fused) {
    const vr_tensor *ins[3] = {x, weight, bias}, *saved[4] = {xc, wc, mean, invstd};
    VR_TRYG(vr_record("batch_norm", bn_backward, 3, ins, 4, saved, NULL, 0, iv, 4, y, NULL));
  } else {
    const vr_tensor *ins[4] = {x, weight, bias, residual};
    if (relu && !mask_from_x && vr_needs_grad(4, ins)) /* ReLU's mask: a view of y without its grad_fn (no cycle) */
      VR_TRYG(vr_tensor_view_raw(y, y->ndim, y->shape, y->stride, y->offset, &yv));
    const vr_tensor *saved[6] = {xc, wc, mean, invstd, yv, bc};
    VR_TRYG(vr_record("batch_norm_act", bn_act_backward, 4, ins, 6, saved, NULL, 0, iv, 6, y, NULL));
  }
  *out = y;
  y = NULL;
done:
  vr_tensor_free(xc);
  vr_tensor_free(wc);
  vr_tensor_free(bc);
  vr_tensor_free(rc);
  vr_tensor_free(y);
  vr_tensor_free(yv);
  vr_tensor_free(mean);
  vr_tensor_free(invstd);
  vr_tensor_free(codes);
  return st;
}

vr_status vr_batch_norm(const vr_tensor *x, const vr_tensor *weight, const vr_tensor *bias, vr_tensor *running_mean,
                        vr_tensor *running_var, int training, double momentum, double eps, vr_tensor **out) {
  return bn_impl(__func__, x, weight, bias, running_mean, running_var, training, momentum, eps, false, NULL, 0, NULL, out);
}

vr_status vr_batch_norm_act(const vr_tensor *x, const vr_tensor *weight, const vr_tensor *bias, vr_tensor *running_mean,
                            vr_tensor *running_var, int training, double momentum, double eps, const vr_tensor *residual,
                            int relu, vr_tensor **out) {
  return bn_impl(__func__, x, weight, bias, running_mean, running_var, training, momentum, eps, true, residual, relu,
                 NULL, out);
}

vr_status vr_batch_norm_act_pool(const vr_tensor *x, const vr_tensor *weight, const vr_tensor *bias,
                                 vr_tensor *running_mean, vr_tensor *running_var, int training, double momentum,
                                 double eps, int relu, int pool_h, int pool_w, vr_tensor **out) {
  int pool[2] = {pool_h, pool_w};
  return bn_impl(__func__, x, weight, bias, running_mean, running_var, training, momentum, eps, true, NULL, relu, pool,
                 out);
}

#undef VR_FAIL
#define VR_FAIL(st, ...) vr_error_set((st), __func__, __FILE__, __LINE__, __VA_ARGS__)

/* ---------------------------------------------------------------- layer norm */

/* i = {R, D, n_norm_dims}; the parameters have the shape of the normalised (last) dims */
static vr_status ln_backward(vr_node *n, vr_tensor *gout, vr_tensor **gin) {
  return norm_backward(n, gout, gin, VR_OP_LAYERNORM, (int)n->i[2], -1, 2, n->i[0] > 0 && n->i[1] > 0, NORM_PLAIN);
}

vr_status vr_layer_norm(const vr_tensor *x, int n_norm_dims, const vr_tensor *weight, const vr_tensor *bias, double eps,
                        vr_tensor **out) {
  VR_CHECK_TENSOR(x);
  VR_CHECK_OUT(out);
  VR_CHECK_FLOAT(x);
  if (n_norm_dims < 1 || n_norm_dims > x->ndim)
    return VR_FAIL(VR_E_ARG, "n_norm_dims: expected 1 to %d for x with %d dims, got %d", x->ndim, x->ndim, n_norm_dims);
  const int64_t *nshape = x->shape + x->ndim - n_norm_dims;
  VR_TRY(check_affine(__func__, "weight", x, weight, n_norm_dims, nshape, true));
  VR_TRY(check_affine(__func__, "bias", x, bias, n_norm_dims, nshape, true));
  if (!(eps >= 0) || isinf(eps)) return VR_FAIL(VR_E_ARG, "eps: expected a finite value >= 0, got %g", eps);
  int64_t D = vr_numel_of(n_norm_dims, nshape), R = vr_numel_of(x->ndim - n_norm_dims, x->shape);
  vr_tensor *xc = NULL, *wc = NULL, *bc = NULL, *y = NULL, *mean = NULL, *invstd = NULL;
  vr_status st = VR_OK;
  VR_TRYG(vr_contiguous_raw(x, &xc));
  VR_TRYG(contig_opt(weight, &wc));
  VR_TRYG(contig_opt(bias, &bc));
  VR_TRYG(vr_tensor_alloc_like(xc, &y));
  VR_TRYG(vr_tensor_alloc(1, &R, stats_dtype(x->dtype), x->device, &mean));
  VR_TRYG(vr_tensor_alloc(1, &R, stats_dtype(x->dtype), x->device, &invstd));
  if (R > 0 && D > 0) {
    vr_kernel_args a = {.in = {xc, wc, bc}, .n_in = 3, .out = {y, mean, invstd}, .n_out = 3, .i = {R, D}, .f = {eps}};
    VR_TRYG(vr_dispatch(VR_OP_LAYERNORM, x->device, 0, &a));
  }
  const vr_tensor *ins[3] = {x, weight, bias}, *saved[4] = {xc, wc, mean, invstd};
  int64_t iv[3] = {R, D, n_norm_dims};
  VR_TRYG(vr_record("layer_norm", ln_backward, 3, ins, 4, saved, NULL, 0, iv, 3, y, NULL));
  *out = y;
  y = NULL;
done:
  vr_tensor_free(xc);
  vr_tensor_free(wc);
  vr_tensor_free(bc);
  vr_tensor_free(y);
  vr_tensor_free(mean);
  vr_tensor_free(invstd);
  return st;
}
