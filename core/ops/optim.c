/* optim.c: front-ends of the multi-tensor optimiser ops (vr_adamw_step, vr_grad_norm).
 *
 * Both dispatch VR_OP_ADAMW with the tensor lists in a->ctx (a vr_multi_tensor_args, internal.h):
 *  sub 0, the fused AdamW step: ctx t = {params, grads, exp_avg, exp_avg_sq}, n tensors each, all
 *    contiguous (grads made so here), one float dtype, one device; ctx wd, lr_scale: n values each.
 *    f[0] lr, f[1] beta1, f[2] beta2, f[3] eps, f[4] 1 - beta1^step, f[5] 1 / sqrt(1 - beta2^step);
 *    in[0] the one-element grad_scale or NULL. Writes params, exp_avg, exp_avg_sq in place.
 *  sub 1, the global 2-norm: ctx t[0] = the n tensors (contiguous); f[0] max_norm; out[0] the 0-dim
 *    norm, out[1] the 0-dim clip factor min(1, max_norm / (norm + 1e-6)), 1 when max_norm <= 0.
 * Kernels split every tensor into chunks of VR_MT_CHUNK elements (internal to each backend); the
 * norm sums each chunk in double, then the chunks' sums in chunk order, so the result does not
 * depend on the thread count. No autograd: these are updates made with grad mode off. */
#include "../internal.h"
#include <math.h>
#include <stdlib.h>

static vr_status check_list(const char *what, vr_tensor *const *ts, int n, const vr_tensor *ref, int need_contig) {
  if (!ts) return VR_FAIL(VR_E_ARG, "%s: expected an array of %d tensors, got NULL", what, n);
  for (int k = 0; k < n; k++) {
    const vr_tensor *t = ts[k];
    if (!t) return VR_FAIL(VR_E_ARG, "%s[%d]: expected a tensor, got NULL", what, k);
    if (t->dtype != VR_F32 && t->dtype != VR_F64)
      return VR_FAIL(VR_E_DTYPE, "%s[%d]: expected f32 or f64, got %s", what, k, vr_dtype_name(t->dtype));
    if (ref && t->dtype != ref->dtype)
      return VR_FAIL(VR_E_DTYPE, "%s[%d]: expected %s like params[0], got %s", what, k, vr_dtype_name(ref->dtype),
                     vr_dtype_name(t->dtype));
    if (ref && t->device != ref->device)
      return VR_FAIL(VR_E_DEVICE, "%s[%d]: expected a tensor on %s like params[0], got %s", what, k,
                     vr_device_name(ref->device), vr_device_name(t->device));
    if (need_contig && !vr_tensor_is_contiguous(t))
      return VR_FAIL(VR_E_ARG, "%s[%d]: expected a contiguous tensor (it is updated in place)", what, k);
  }
  return VR_OK;
}

static vr_status check_shapes(const char *what, vr_tensor *const *ts, vr_tensor *const *params, int n) {
  for (int k = 0; k < n; k++)
    if (!vr_same_shape(ts[k], params[k])) {
      char b1[96], b2[96];
      return VR_FAIL(VR_E_SHAPE, "%s[%d]: expected shape %s like params[%d], got %s", what, k,
                     vr_shape_str(params[k]->ndim, params[k]->shape, b1, sizeof b1), k,
                     vr_shape_str(ts[k]->ndim, ts[k]->shape, b2, sizeof b2));
    }
  return VR_OK;
}

/* contiguous versions of ts (new references) in *out (n entries, caller frees) */
static vr_status contiguous_list(vr_tensor *const *ts, int n, vr_tensor ***out) {
  vr_tensor **c = calloc((size_t)n, sizeof *c);
  if (!c) return VR_FAIL(VR_E_OOM, "n: could not allocate %d pointers", n);
  for (int k = 0; k < n; k++) {
    vr_status st = vr_contiguous_raw(ts[k], &c[k]);
    if (st != VR_OK) {
      for (int j = 0; j < k; j++) vr_tensor_free(c[j]);
      free(c);
      return st;
    }
  }
  *out = c;
  return VR_OK;
}

static void free_list(vr_tensor **c, int n) {
  if (!c) return;
  for (int k = 0; k < n; k++) vr_tensor_free(c[k]);
  free(c);
}

vr_status vr_adamw_step(vr_tensor *const *params, vr_tensor *const *grads, vr_tensor *const *exp_avg,
                        vr_tensor *const *exp_avg_sq, int n, const double *weight_decay, const double *lr_scale,
                        double lr, double beta1, double beta2, double eps, int64_t step, const vr_tensor *grad_scale) {
  if (n < 1) return VR_FAIL(VR_E_ARG, "n: expected at least 1 parameter, got %d", n);
  VR_TRY(check_list("params", params, n, NULL, 1));
  const vr_tensor *ref = params[0];
  VR_TRY(check_list("params", params, n, ref, 1));
  VR_TRY(check_list("grads", grads, n, ref, 0));
  VR_TRY(check_list("exp_avg", exp_avg, n, ref, 1));
  VR_TRY(check_list("exp_avg_sq", exp_avg_sq, n, ref, 1));
  VR_TRY(check_shapes("grads", grads, params, n));
  VR_TRY(check_shapes("exp_avg", exp_avg, params, n));
  VR_TRY(check_shapes("exp_avg_sq", exp_avg_sq, params, n));
  if (!(lr >= 0) || !isfinite(lr)) return VR_FAIL(VR_E_ARG, "lr: expected a finite value >= 0, got %g", lr);
  if (!(beta1 >= 0 && beta1 < 1)) return VR_FAIL(VR_E_ARG, "beta1: expected a value in [0, 1), got %g", beta1);
  if (!(beta2 >= 0 && beta2 < 1)) return VR_FAIL(VR_E_ARG, "beta2: expected a value in [0, 1), got %g", beta2);
  if (!(eps >= 0) || !isfinite(eps)) return VR_FAIL(VR_E_ARG, "eps: expected a finite value >= 0, got %g", eps);
  if (step < 1) return VR_FAIL(VR_E_ARG, "step: expected a count >= 1, got %lld", (long long)step);
  if (grad_scale) {
    VR_CHECK_FLOAT(grad_scale);
    if (grad_scale->dtype == VR_BF16) return VR_FAIL(VR_E_DTYPE, "grad_scale: expected f32 or f64, got bf16");
    if (vr_tensor_numel(grad_scale) != 1)
      return VR_FAIL(VR_E_SHAPE, "grad_scale: expected one element, got %lld", (long long)vr_tensor_numel(grad_scale));
    if (grad_scale->device != ref->device)
      return VR_FAIL(VR_E_DEVICE, "grad_scale: expected a tensor on %s like params[0], got %s",
                     vr_device_name(ref->device), vr_device_name(grad_scale->device));
  }
  for (int k = 0; k < n; k++) {
    if (weight_decay && !isfinite(weight_decay[k]))
      return VR_FAIL(VR_E_ARG, "weight_decay[%d]: expected a finite value, got %g", k, weight_decay[k]);
    if (lr_scale && !isfinite(lr_scale[k]))
      return VR_FAIL(VR_E_ARG, "lr_scale[%d]: expected a finite value, got %g", k, lr_scale[k]);
  }
  vr_status st = VR_OK;
  vr_tensor **g = NULL;
  double *wd = NULL, *ls = NULL;
  VR_TRYG(contiguous_list(grads, n, &g));
  wd = malloc(sizeof(double) * (size_t)n);
  ls = malloc(sizeof(double) * (size_t)n);
  if (!wd || !ls) {
    st = VR_FAIL(VR_E_OOM, "n: could not allocate %d values", n);
    goto done;
  }
  for (int k = 0; k < n; k++) {
    wd[k] = weight_decay ? weight_decay[k] : 0;
    ls[k] = lr_scale ? lr_scale[k] : 1;
  }
  vr_multi_tensor_args mt = {.n = n, .t = {params, g, exp_avg, exp_avg_sq}, .wd = wd, .lr_scale = ls};
  vr_kernel_args a = {0};
  a.ctx = &mt;
  a.sub = 0;
  a.f[0] = lr;
  a.f[1] = beta1;
  a.f[2] = beta2;
  a.f[3] = eps;
  a.f[4] = 1 - pow(beta1, (double)step);
  a.f[5] = 1 / sqrt(1 - pow(beta2, (double)step));
  if (grad_scale) {
    a.in[0] = (vr_tensor *)grad_scale;
    a.n_in = 1;
  }
  VR_TRYG(vr_dispatch(VR_OP_ADAMW, ref->device, 0, &a));
  for (int k = 0; k < n; k++) {
    vr_tensor_bump_version(params[k]);
    vr_tensor_bump_version(exp_avg[k]);
    vr_tensor_bump_version(exp_avg_sq[k]);
  }
done:
  free_list(g, n);
  free(wd);
  free(ls);
  return st;
}

vr_status vr_grad_norm(vr_tensor *const *tensors, int n, double max_norm, vr_tensor **norm, vr_tensor **clip) {
  VR_CHECK_OUT(norm);
  if (n < 1) return VR_FAIL(VR_E_ARG, "n: expected at least 1 tensor, got %d", n);
  if (isnan(max_norm)) return VR_FAIL(VR_E_ARG, "max_norm: expected a number, got %g", max_norm);
  VR_TRY(check_list("tensors", tensors, n, NULL, 0));
  const vr_tensor *ref = tensors[0];
  for (int k = 0; k < n; k++) {
    if (tensors[k]->dtype != ref->dtype)
      return VR_FAIL(VR_E_DTYPE, "tensors[%d]: expected %s like tensors[0], got %s", k, vr_dtype_name(ref->dtype),
                     vr_dtype_name(tensors[k]->dtype));
    if (tensors[k]->device != ref->device)
      return VR_FAIL(VR_E_DEVICE, "tensors[%d]: expected a tensor on %s like tensors[0], got %s", k,
                     vr_device_name(ref->device), vr_device_name(tensors[k]->device));
  }
  vr_status st = VR_OK;
  vr_tensor **c = NULL, *nt = NULL, *ct = NULL;
  VR_TRYG(contiguous_list(tensors, n, &c));
  VR_TRYG(vr_tensor_alloc(0, NULL, ref->dtype, ref->device, &nt));
  VR_TRYG(vr_tensor_alloc(0, NULL, ref->dtype, ref->device, &ct));
  vr_multi_tensor_args mt = {.n = n, .t = {c, NULL, NULL, NULL}};
  vr_kernel_args a = {0};
  a.ctx = &mt;
  a.sub = 1;
  a.f[0] = max_norm;
  a.out[0] = nt;
  a.out[1] = ct;
  a.n_out = 2;
  VR_TRYG(vr_dispatch(VR_OP_ADAMW, ref->device, 0, &a));
  *norm = nt;
  nt = NULL;
  if (clip) {
    *clip = ct;
    ct = NULL;
  }
done:
  free_list(c, n);
  vr_tensor_free(nt);
  vr_tensor_free(ct);
  return st;
}
