/* dropout.c: inverted dropout composed from public ops, so it runs on every device.
 *
 * No kernel of its own (no vr_kernel_args): the keep mask is drawn with vr_rand_uniform from
 * the caller's Philox generator (element k uses counter offset + k, offset advances by numel),
 * an element is kept when u >= p, and kept elements are scaled by 1/(1-p). The output is
 * vr_mul(x, mask), whose node saves the mask: backward is grad * mask, the same mask.
 */
#include "../internal.h"
#include <math.h>

vr_status vr_dropout(const vr_tensor *x, double p, int training, vr_generator *g, vr_tensor **out) {
  VR_CHECK_TENSOR(x);
  VR_CHECK_OUT(out);
  VR_CHECK_FLOAT(x);
  if (!(p >= 0 && p <= 1)) return VR_FAIL(VR_E_ARG, "p: expected a probability in [0, 1], got %g", p);
  if (!training || p == 0) {
    vr_tensor_retain((vr_tensor *)x);
    *out = (vr_tensor *)x;
    return VR_OK;
  }
  vr_tensor *mask = NULL, *u = NULL, *pt = NULL, *drop = NULL, *dropf = NULL;
  vr_status st = VR_OK;
  if (p == 1) {
    /* everything dropped: still a product, so the gradient (zero) reaches x */
    VR_TRYG(vr_tensor_zeros(x->ndim, x->shape, x->dtype, x->device, &mask));
  } else {
    if (!g) return VR_FAIL(VR_E_ARG, "g: expected a generator in training with p = %g, got NULL", p);
    int prev = vr_set_grad_enabled(0);
    /* u in f64 whatever x's dtype: the mask for a seed does not depend on the precision */
    st = vr_rand_uniform(g, x->ndim, x->shape, 0, 1, VR_F64, x->device, &u);
    if (!st) st = vr_tensor_scalar(p, VR_F64, x->device, &pt);
    if (!st) st = vr_lt(u, pt, &drop);                     /* u8: 1 where dropped */
    if (!st) st = vr_tensor_to_dtype(drop, x->dtype, &dropf);
    if (!st) st = vr_rsub_scalar(dropf, 1.0, &mask);      /* 1 where kept */
    if (!st) st = vr_mul_scalar_(mask, 1.0 / (1.0 - p)); /* inverted dropout scale */
    vr_set_grad_enabled(prev);
    if (st) goto done;
  }
  VR_TRYG(vr_mul(x, mask, out));
done:
  vr_tensor_free(mask);
  vr_tensor_free(u);
  vr_tensor_free(pt);
  vr_tensor_free(drop);
  vr_tensor_free(dropf);
  return st;
}
