/* common.c: what every regularizer front-end shares: the accurate erfinv and the Gaussian
 * quantile targets (erfinv in core/mathfn.c), slice matrices (explicit or drawn from Philox), argument checks, and the
 * node whose backward scales the gradient the forward kernel computed (see reg.h). */
#include "reg.h"
#include <math.h>
#include <pthread.h>
#include <stdlib.h>

/* ---------------------------------------------------------------- erfinv and quantiles */

void vr_reg_quantiles(int64_t B, double *q) {
  /* y = 2i/(B+1) - 1, 1 + y = 2i/(B+1), 1 - y = 2(B+1-i)/(B+1); the targets are made exactly
   * antisymmetric (q_{B+1-i} = -q_i) */
  for (int64_t i = 1; i <= (B + 1) / 2; i++) {
    double opy = 2.0 * (double)i / (double)(B + 1), omy = 2.0 * (double)(B + 1 - i) / (double)(B + 1);
    double v = 2 * i == B + 1 ? 0.0 : 1.4142135623730951 * vr_erfinv_exact(opy - 1.0, opy, omy);
    q[i - 1] = v;
    q[B - i] = -v;
  }
}

vr_status vr_gauss_quantiles(int64_t B, vr_dtype dtype, vr_device device, vr_tensor **out) {
  VR_CHECK_OUT(out);
  *out = NULL;
  if (B < 1) return VR_FAIL(VR_E_ARG, "B: expected at least 1 target, got %lld", (long long)B);
  if (dtype != VR_F32 && dtype != VR_F64)
    return VR_FAIL(VR_E_DTYPE, "dtype: expected f32 or f64, got %s", vr_dtype_name(dtype));
  double *q = malloc(sizeof(double) * (size_t)B);
  if (!q) return VR_FAIL(VR_E_OOM, "B: could not allocate %lld targets", (long long)B);
  vr_reg_quantiles(B, q);
  vr_tensor *t = NULL;
  vr_status st = vr_tensor_from_buffer(q, 1, &B, VR_F64, device, &t);
  free(q);
  if (st) return st;
  if (dtype == VR_F64) {
    *out = t;
    return VR_OK;
  }
  st = vr_tensor_to_dtype(t, dtype, out);
  vr_tensor_free(t);
  return st;
}

/* The targets of a batch size, kept for the next step (a few (B, dtype, device) at a time): on a
 * GPU, building them each call costs host erfinvs, a copy to the device and a cast, which add up
 * when the loss itself takes 0.1 ms. The kernels only read them. */
enum { TARGETS_KEPT = 8 };
static struct {
  int64_t B;
  vr_dtype dtype;
  vr_device device;
  vr_tensor *t;
} kept[TARGETS_KEPT];
static int kept_next, kept_atexit;
static pthread_mutex_t kept_mu = PTHREAD_MUTEX_INITIALIZER;

static void free_kept(void) { /* at exit, before the CUDA allocator hands its memory back */
  pthread_mutex_lock(&kept_mu);
  for (int k = 0; k < TARGETS_KEPT; k++) {
    vr_tensor_free(kept[k].t);
    kept[k].t = NULL;
  }
  pthread_mutex_unlock(&kept_mu);
}

vr_status vr_reg_targets(int64_t B, vr_dtype dtype, vr_device device, vr_tensor **out) {
  VR_CHECK_OUT(out);
  *out = NULL;
  pthread_mutex_lock(&kept_mu);
  for (int k = 0; k < TARGETS_KEPT; k++)
    if (kept[k].t && kept[k].B == B && kept[k].dtype == dtype && kept[k].device == device) {
      vr_tensor_retain(kept[k].t);
      *out = kept[k].t;
      break;
    }
  pthread_mutex_unlock(&kept_mu);
  if (*out) return VR_OK;
  VR_TRY(vr_gauss_quantiles(B, dtype, device, out));
  pthread_mutex_lock(&kept_mu);
  if (!kept_atexit) kept_atexit = atexit(free_kept) == 0;
  if (kept_atexit) {
    vr_tensor_free(kept[kept_next].t);
    kept[kept_next].B = B, kept[kept_next].dtype = dtype, kept[kept_next].device = device, kept[kept_next].t = *out;
    vr_tensor_retain(*out);
    kept_next = (kept_next + 1) % TARGETS_KEPT;
  }
  pthread_mutex_unlock(&kept_mu);
  return VR_OK;
}

/* ---------------------------------------------------------------- slices */

vr_status vr_draw_slices(int64_t D, int64_t K, uint64_t seed, uint64_t step, double eps, vr_dtype dtype,
                         vr_device device, vr_tensor **out) {
  VR_CHECK_OUT(out);
  *out = NULL;
  if (D < 1) return VR_FAIL(VR_E_ARG, "D: expected at least 1 dim, got %lld", (long long)D);
  if (K < 1) return VR_FAIL(VR_E_ARG, "K: expected at least 1 slice, got %lld", (long long)K);
  if (!(eps >= 0) || !isfinite(eps)) return VR_FAIL(VR_E_ARG, "eps: expected a finite eps >= 0, got %g", eps);
  if (dtype != VR_F32 && dtype != VR_F64)
    return VR_FAIL(VR_E_DTYPE, "dtype: expected f32 or f64, got %s", vr_dtype_name(dtype));
  /* drawn in the requested dtype and normalised on the host, exactly as the kernels do */
  vr_tensor *w = NULL;
  VR_TRY(vr_tensor_alloc(2, (int64_t[]){D, K}, dtype, VR_CPU, &w));
  if (dtype == VR_F32) {
    vr_reg_draw_f32(seed, step, D, K, vr_data(w));
    vr_reg_normalize_f32(vr_data(w), D, K, eps, vr_data(w));
  } else {
    vr_reg_draw_f64(seed, step, D, K, vr_data(w));
    vr_reg_normalize_f64(vr_data(w), D, K, eps, vr_data(w));
  }
  if (device == VR_CPU) {
    *out = w;
    return VR_OK;
  }
  vr_status st = vr_tensor_to_device(w, device, out);
  vr_tensor_free(w);
  return st;
}

vr_status vr_reg_raw_slices(const vr_tensor *z, const vr_tensor *slices, vr_tensor **out) {
  *out = NULL;
  if (!slices) return VR_OK;
  if (slices->dtype == z->dtype) return vr_contiguous_raw(slices, out);
  vr_tensor *c = NULL;
  VR_TRY(vr_tensor_alloc(slices->ndim, slices->shape, z->dtype, z->device, &c));
  vr_status st = vr_copy_(c, slices); /* converts the dtype; not recorded */
  if (st) {
    vr_tensor_free(c);
    return st;
  }
  *out = c;
  return VR_OK;
}

/* ---------------------------------------------------------------- checks */

vr_status vr_reg_check_z(const char *func, const vr_tensor *z, int64_t min_views) {
  if (!z) return vr_error_set(VR_E_ARG, func, __FILE__, __LINE__, "z: expected a V x B x D tensor, got NULL");
  if (z->dtype != VR_F32 && z->dtype != VR_F64)
    return vr_error_set(VR_E_DTYPE, func, __FILE__, __LINE__, "z: expected f32 or f64, got %s",
                        vr_dtype_name(z->dtype));
  char buf[96];
  if (z->ndim != 3)
    return vr_error_set(VR_E_SHAPE, func, __FILE__, __LINE__, "z: expected 3 dims (V x B x D), got %d dims %s",
                        z->ndim, vr_shape_str(z->ndim, z->shape, buf, sizeof buf));
  if (z->shape[0] < min_views)
    return vr_error_set(VR_E_SHAPE, func, __FILE__, __LINE__, "z: expected V >= %lld views, got V = %lld",
                        (long long)min_views, (long long)z->shape[0]);
  if (z->shape[1] < 2)
    return vr_error_set(VR_E_SHAPE, func, __FILE__, __LINE__, "z: expected a batch of B >= 2 samples, got B = %lld",
                        (long long)z->shape[1]);
  if (z->shape[2] < 1)
    return vr_error_set(VR_E_SHAPE, func, __FILE__, __LINE__, "z: expected D >= 1 dims, got D = %lld",
                        (long long)z->shape[2]);
  if (z->shape[0] * z->shape[1] > (int64_t)1 << 30 || z->shape[2] > (int64_t)1 << 30)
    return vr_error_set(VR_E_SHAPE, func, __FILE__, __LINE__, "z: expected V B and D below 2^30, got %s",
                        vr_shape_str(z->ndim, z->shape, buf, sizeof buf));
  return VR_OK;
}

vr_status vr_reg_check_slices(const char *func, const vr_tensor *z, const vr_tensor *slices, int64_t K,
                              int64_t *k_out) {
  if (!slices) {
    if (K < 1 || K > (int64_t)1 << 30)
      return vr_error_set(VR_E_ARG, func, __FILE__, __LINE__, "K: expected 1 <= K <= 2^30 slices, got %lld",
                          (long long)K);
    *k_out = K;
    return VR_OK;
  }
  char buf[96];
  if (!vr_is_float(slices->dtype) || slices->dtype == VR_BF16)
    return vr_error_set(VR_E_DTYPE, func, __FILE__, __LINE__, "slices: expected f32 or f64, got %s",
                        vr_dtype_name(slices->dtype));
  if (slices->device != z->device)
    return vr_error_set(VR_E_DEVICE, func, __FILE__, __LINE__, "slices: expected a tensor on %s like z, got %s",
                        vr_device_name(z->device), vr_device_name(slices->device));
  if (slices->ndim != 2 || slices->shape[0] != z->shape[2] || slices->shape[1] < 1)
    return vr_error_set(VR_E_SHAPE, func, __FILE__, __LINE__,
                        "slices: expected a D x K matrix with D = %lld (z's last dim) and K >= 1, got %s",
                        (long long)z->shape[2], vr_shape_str(slices->ndim, slices->shape, buf, sizeof buf));
  if (K > 0 && slices->shape[1] != K)
    return vr_error_set(VR_E_SHAPE, func, __FILE__, __LINE__,
                        "slices: expected K = %lld columns (the K argument), got %s", (long long)K,
                        vr_shape_str(slices->ndim, slices->shape, buf, sizeof buf));
  if (K < 0) return vr_error_set(VR_E_ARG, func, __FILE__, __LINE__, "K: expected K >= 0, got %lld", (long long)K);
  *k_out = slices->shape[1];
  return VR_OK;
}

/* ---------------------------------------------------------------- running the op */

static vr_status reg_backward(vr_node *n, vr_tensor *gout, vr_tensor **gin) {
  vr_tensor *g = NULL, *gz = NULL;
  VR_TRY(vr_node_saved(n, 0, &g));
  VR_TRY(vr_tensor_alloc_like(g, &gz));
  vr_kernel_args a = {.in = {gout, g}, .n_in = 2, .out = {gz}, .n_out = 1};
  vr_status st = vr_dispatch((vr_op)n->i[0], g->device, 1, &a);
  if (st) {
    vr_tensor_free(gz);
    return st;
  }
  gin[0] = gz;
  return VR_OK;
}

vr_status vr_reg_run(const char *name, vr_op op, const vr_tensor *z, vr_kernel_args *a, int n_terms,
                     vr_tensor **loss, vr_tensor **terms) {
  vr_tensor *L = NULL, *T = NULL, *G = NULL;
  vr_status st = VR_OK;
  int need = vr_needs_grad(1, &z);
  VR_TRYG(vr_tensor_alloc(0, NULL, z->dtype, z->device, &L));
  if (n_terms > 0 && terms) VR_TRYG(vr_tensor_alloc(1, (int64_t[]){n_terms}, z->dtype, z->device, &T));
  if (need) VR_TRYG(vr_tensor_alloc(z->ndim, z->shape, z->dtype, z->device, &G));
  a->out[0] = L;
  a->out[1] = T;
  a->out[2] = G;
  a->n_out = 3;
  VR_TRYG(vr_dispatch(op, z->device, 0, a));
  if (need) VR_TRYG(vr_record(name, reg_backward, 1, &z, 1, (const vr_tensor *const *)&G, NULL, 0,
                              (const int64_t[]){op}, 1, L, NULL));
  *loss = L;
  L = NULL;
  if (terms) {
    *terms = T;
    T = NULL;
  }
done:
  vr_tensor_free(L);
  vr_tensor_free(T);
  vr_tensor_free(G);
  return st;
}
