/* linalg.c: vr_matmul (1-D, 2-D and batched with broadcast batch dims, like torch.matmul) and
 * vr_linear, whose backward composes vr_matmul with transposed views; vr_eigh and vr_svd (their
 * kernel args and backward at the end of this file).
 *
 * VR_OP_MATMUL kernel args (forward only; every backend implements this):
 *   in[0] = A  [batch..., m, k]     in[1] = B  [batch..., k, n]     out[0] = C  [batch..., m, n]
 *   - A, B and C have the same ndim (2 + nb) and the same batch sizes; batch strides of A and B
 *     may be 0 (broadcast). The front-end merges batch dims where it can, so nb is usually 0 or 1
 *     (a strided batch: cublasGemmStridedBatched fits; nb > 1 needs a loop over the outer dims).
 *   - C is freshly allocated: each of its matrices is row-major and dense (ldc = n).
 *   - Each matrix of A is either row-major (column stride 1, row stride lda) or stored as its
 *     transpose (row stride 1, column stride lda); likewise B. No other layout reaches a kernel.
 *   - i[0] = trans_a (0: row-major, 1: transposed), i[1] = trans_b, i[2] = lda, i[3] = ldb,
 *     i[4] = ldc (= n). Leading dims are valid for BLAS (>= max(1, stored row length)).
 *     In row-major cblas terms: C_b = op(A_b) op(B_b) with op = trans flag, for every batch b.
 *     (cuBLAS is column-major: compute C^T = op(B)^T op(A)^T with the operands swapped.)
 *   - A, B, C share one dtype (f32, f64 or bf16; bf16 accumulates in f32). k == 0 gives zeros.
 *
 * Autocast (core/autocast.c): with vr_autocast_set(VR_BF16), vr_matmul (and so vr_linear) casts
 * f32 operands to bf16 through vr_tensor_to_dtype, runs the bf16 matmul above and casts the bf16
 * result back to f32. The graph is cast -> bf16 matmul -> cast, so the backward runs the recorded
 * bf16 GEMMs and hands f32 gradients to f32 leaves. The backward itself ignores autocast.
 */
#include "../internal.h"
#include <stdlib.h>
#include <string.h>

/* BLAS layout of an r x c matrix with strides (sr, sc): row-major or transposed, with its ld.
 * Returns 0 when neither fits (then the caller makes the operand contiguous). */
static int mat_layout(int64_t r, int64_t c, int64_t sr, int64_t sc, int64_t *trans, int64_t *ld) {
  int64_t cmin = c > 1 ? c : 1, rmin = r > 1 ? r : 1;
  if ((sc == 1 || c <= 1) && (r <= 1 || sr >= cmin)) {
    *trans = 0;
    *ld = r <= 1 ? cmin : sr;
    return 1;
  }
  if ((sr == 1 || r <= 1) && (c <= 1 || sc >= rmin)) {
    *trans = 1;
    *ld = c <= 1 ? rmin : sc;
    return 1;
  }
  return 0;
}

/* the (rows, cols) strides of t's matrix; a 1-D a is a 1 x k row, a 1-D b a k x 1 column */
static void mat_strides(const vr_tensor *t, int is_b, int64_t *r, int64_t *c, int64_t *sr, int64_t *sc) {
  int n = t->ndim;
  if (n == 1) {
    if (is_b) { *r = t->shape[0]; *c = 1; *sr = t->stride[0]; *sc = 1; }
    else { *r = 1; *c = t->shape[0]; *sr = t->shape[0]; *sc = t->stride[0]; }
    return;
  }
  *r = t->shape[n - 2];
  *c = t->shape[n - 1];
  *sr = t->stride[n - 2];
  *sc = t->stride[n - 1];
}

/* ---------------------------------------------------------------- backward */

static vr_status matmul_backward(vr_node *nd, vr_tensor *g, vr_tensor **gin) {
  vr_tensor *a = NULL, *b = NULL, *a1 = NULL, *b1 = NULL, *g1 = NULL, *t = NULL, *p = NULL, *s = NULL;
  vr_tensor *af = NULL, *gf = NULL;
  vr_status st;
  vr_dtype cast = vr_autocast_get(); /* the recorded dtypes rule the backward, not the switch */
  vr_autocast_set(VR_F32);
  VR_TRYG(vr_node_saved(nd, 0, &a));
  VR_TRYG(vr_node_saved(nd, 1, &b));
  /* promote 1-D operands and put the removed dims back into g */
  if (a->ndim == 1) VR_TRYG(vr_unsqueeze(a, 0, &a1));
  else { vr_tensor_retain(a); a1 = a; }
  if (b->ndim == 1) VR_TRYG(vr_unsqueeze(b, -1, &b1));
  else { vr_tensor_retain(b); b1 = b; }
  vr_tensor_retain(g);
  g1 = g;
  if (b->ndim == 1) { VR_TRYG(vr_unsqueeze(g1, -1, &t)); vr_tensor_free(g1); g1 = t; t = NULL; }
  if (a->ndim == 1) { VR_TRYG(vr_unsqueeze(g1, -2, &t)); vr_tensor_free(g1); g1 = t; t = NULL; }

  if (vr_node_needs(nd, 0)) { /* grad_a = g b^T, summed over a's broadcast batch dims */
    VR_TRYG(vr_transpose(b1, -1, -2, &t));
    VR_TRYG(vr_matmul(g1, t, &p));
    VR_TRYG(vr_sum_to_shape(p, a1->ndim, a1->shape, &s));
    VR_TRYG(vr_reshape(s, a->ndim, a->shape, &gin[0]));
    vr_tensor_free(t); vr_tensor_free(p); vr_tensor_free(s);
    t = p = s = NULL;
  }
  if (vr_node_needs(nd, 1)) { /* grad_b = a^T g, summed over b's broadcast batch dims */
    if (b1->ndim == 2 && a1->ndim > 2) {
      /* b shared by every batch: one GEMM over the flattened batch, [k, B*m] x [B*m, n] */
      int64_t fa[2] = {-1, a1->shape[a1->ndim - 1]}, fg[2] = {-1, g1->shape[g1->ndim - 1]};
      VR_TRYG(vr_reshape(a1, 2, fa, &af));
      VR_TRYG(vr_reshape(g1, 2, fg, &gf));
      VR_TRYG(vr_transpose(af, 0, 1, &t));
      VR_TRYG(vr_matmul(t, gf, &s));
    } else {
      VR_TRYG(vr_transpose(a1, -1, -2, &t));
      VR_TRYG(vr_matmul(t, g1, &p));
      VR_TRYG(vr_sum_to_shape(p, b1->ndim, b1->shape, &s));
    }
    VR_TRYG(vr_reshape(s, b->ndim, b->shape, &gin[1]));
  }
  st = VR_OK;
done:
  vr_autocast_set(cast);
  vr_tensor_free(a1); vr_tensor_free(b1); vr_tensor_free(g1); vr_tensor_free(t);
  vr_tensor_free(p); vr_tensor_free(s); vr_tensor_free(af); vr_tensor_free(gf);
  return st;
}

/* ---------------------------------------------------------------- forward */

/* Dispatches C = A B for the (possibly promoted, broadcast) operands into the fresh output o,
 * whose storage is contiguous [batch..., m, n]. */
static vr_status matmul_launch(const vr_tensor *a, const vr_tensor *b, int nbd, const int64_t *bshape, int64_t m,
                               int64_t k, int64_t n, vr_tensor *o) {
  int64_t ar, ac, asr, asc, br, bc, bsr, bsc, ta, tb, lda, ldb;
  mat_strides(a, 0, &ar, &ac, &asr, &asc);
  mat_strides(b, 1, &br, &bc, &bsr, &bsc);
  if (!mat_layout(ar, ac, asr, asc, &ta, &lda) || !mat_layout(br, bc, bsr, bsc, &tb, &ldb))
    return VR_FAIL(VR_E_INTERNAL, "a, b: operand layout not BLAS-compatible after contiguous");
  int aba = a->ndim > 2 ? a->ndim - 2 : 0, bba = b->ndim > 2 ? b->ndim - 2 : 0;
  int64_t shp[VR_MAX_DIMS], sa[VR_MAX_DIMS], sb[VR_MAX_DIMS], sc[VR_MAX_DIMS];
  int nb = 0;

  /* A's batch dims fold into its rows when B has none (the linear layer): one big GEMM */
  int fold = bba == 0 && aba > 0 && ta == 0;
  int64_t M = 1, rs = 0, expect = 0;
  int first = 1;
  for (int d = a->ndim - 2; d >= 0 && fold; d--) {
    M *= a->shape[d];
    if (a->shape[d] == 1) continue;
    if (first) rs = a->stride[d], first = 0;
    else if (a->stride[d] != expect) fold = 0;
    expect = a->stride[d] * a->shape[d];
  }
  if (fold && M > 1 && rs < (k > 1 ? k : 1)) fold = 0;
  if (fold) {
    m = M;
    lda = M > 1 ? rs : (k > 1 ? k : 1);
  } else {
    /* batch strides, 0 where broadcast; merge neighbours that are contiguous for all three */
    int64_t cs = m * n;
    int64_t tsa[VR_MAX_DIMS], tsb[VR_MAX_DIMS], tsc[VR_MAX_DIMS];
    for (int d = nbd - 1; d >= 0; d--) {
      int ja = d - (nbd - aba), jb = d - (nbd - bba);
      tsa[d] = (ja >= 0 && a->shape[ja] != 1) ? a->stride[ja] : 0;
      tsb[d] = (jb >= 0 && b->shape[jb] != 1) ? b->stride[jb] : 0;
      tsc[d] = cs;
      cs *= bshape[d];
    }
    for (int d = 0; d < nbd; d++) {
      if (bshape[d] == 1) continue;
      if (nb > 0 && sa[nb - 1] == tsa[d] * bshape[d] && sb[nb - 1] == tsb[d] * bshape[d] &&
          sc[nb - 1] == tsc[d] * bshape[d]) {
        shp[nb - 1] *= bshape[d];
        sa[nb - 1] = tsa[d];
        sb[nb - 1] = tsb[d];
        sc[nb - 1] = tsc[d];
        continue;
      }
      shp[nb] = bshape[d];
      sa[nb] = tsa[d];
      sb[nb] = tsb[d];
      sc[nb] = tsc[d];
      nb++;
    }
  }
  shp[nb] = m; shp[nb + 1] = k;
  sa[nb] = ta ? 1 : lda; sa[nb + 1] = ta ? lda : 1;
  vr_tensor *A = NULL, *B = NULL, *C = NULL;
  vr_status st;
  VR_TRYG(vr_tensor_view_raw(a, nb + 2, shp, sa, a->offset, &A));
  shp[nb] = k; shp[nb + 1] = n;
  sb[nb] = tb ? 1 : ldb; sb[nb + 1] = tb ? ldb : 1;
  VR_TRYG(vr_tensor_view_raw(b, nb + 2, shp, sb, b->offset, &B));
  shp[nb] = m; shp[nb + 1] = n;
  sc[nb] = n; sc[nb + 1] = 1;
  VR_TRYG(vr_tensor_view_raw(o, nb + 2, shp, sc, o->offset, &C));
  vr_kernel_args args = {.in = {A, B}, .n_in = 2, .out = {C}, .n_out = 1,
                         .i = {ta, tb, lda, ldb, n > 1 ? n : 1}};
  st = vr_dispatch(VR_OP_MATMUL, o->device, 0, &args);
done:
  vr_tensor_free(A);
  vr_tensor_free(B);
  vr_tensor_free(C);
  return st;
}

/* the autocast path: bf16 copies of a and b, the bf16 matmul, its result cast to f32 */
static vr_status matmul_autocast(const vr_tensor *a, const vr_tensor *b, vr_tensor **out) {
  const vr_tensor *ins[2] = {a, b};
  vr_tensor *c[2] = {NULL, NULL}, *y = NULL;
  vr_status st;
  VR_TRYG(vr_autocast_cast(2, ins, c));
  VR_TRYG(vr_matmul(c[0], c[1], &y));
  VR_TRYG(vr_tensor_to_dtype(y, VR_F32, out));
done:
  vr_tensor_free(c[0]);
  vr_tensor_free(c[1]);
  vr_tensor_free(y);
  return st;
}

vr_status vr_matmul(const vr_tensor *a, const vr_tensor *b, vr_tensor **out) {
  VR_CHECK_TENSOR(a);
  VR_CHECK_TENSOR(b);
  VR_CHECK_OUT(out);
  if (a->device == b->device && vr_autocast_applies(2, (const vr_tensor *const[]){a, b})) return matmul_autocast(a, b, out);
  VR_CHECK_FLOAT(a);
  VR_CHECK_FLOAT(b);
  VR_CHECK_SAME_DEVICE(a, b);
  VR_CHECK_SAME_DTYPE(a, b);
  char s1[96], s2[96];
  vr_shape_str(a->ndim, a->shape, s1, sizeof s1);
  vr_shape_str(b->ndim, b->shape, s2, sizeof s2);
  if (a->ndim == 0) return VR_FAIL(VR_E_SHAPE, "a: expected at least 1 dim, got a 0-dim tensor (b is %s)", s2);
  if (b->ndim == 0) return VR_FAIL(VR_E_SHAPE, "b: expected at least 1 dim, got a 0-dim tensor (a is %s)", s1);
  int64_t k = a->shape[a->ndim - 1];
  int64_t kb = b->ndim == 1 ? b->shape[0] : b->shape[b->ndim - 2];
  if (k != kb)
    return VR_FAIL(VR_E_SHAPE, "a, b: inner dimensions differ: a %s has %lld columns, b %s has %lld rows", s1,
                   (long long)k, s2, (long long)kb);
  int64_t m = a->ndim == 1 ? 1 : a->shape[a->ndim - 2];
  int64_t n = b->ndim == 1 ? 1 : b->shape[b->ndim - 1];
  int aba = a->ndim > 2 ? a->ndim - 2 : 0, bba = b->ndim > 2 ? b->ndim - 2 : 0;
  int nbd = aba > bba ? aba : bba;
  int64_t bshape[VR_MAX_DIMS], oshape[VR_MAX_DIMS];
  for (int d = 0; d < nbd; d++) {
    int ja = d - (nbd - aba), jb = d - (nbd - bba);
    int64_t x = ja >= 0 ? a->shape[ja] : 1, y = jb >= 0 ? b->shape[jb] : 1;
    if (x != y && x != 1 && y != 1)
      return VR_FAIL(VR_E_SHAPE, "a, b: batch dims do not broadcast: a %s, b %s (batch dim %d: %lld vs %lld)", s1, s2,
                     d, (long long)x, (long long)y);
    bshape[d] = x == 1 ? y : x;
  }
  int on = 0;
  for (int d = 0; d < nbd; d++) oshape[on++] = bshape[d];
  if (a->ndim > 1) oshape[on++] = m;
  if (b->ndim > 1) oshape[on++] = n;

  vr_tensor *ac = NULL, *bc = NULL, *o = NULL;
  vr_status st;
  int64_t r, c, sr, sc, tr, ld;
  mat_strides(a, 0, &r, &c, &sr, &sc);
  if (mat_layout(r, c, sr, sc, &tr, &ld)) { vr_tensor_retain((vr_tensor *)a); ac = (vr_tensor *)a; }
  else VR_TRYG(vr_contiguous_raw(a, &ac));
  mat_strides(b, 1, &r, &c, &sr, &sc);
  if (mat_layout(r, c, sr, sc, &tr, &ld)) { vr_tensor_retain((vr_tensor *)b); bc = (vr_tensor *)b; }
  else VR_TRYG(vr_contiguous_raw(b, &bc));
  VR_TRYG(vr_tensor_alloc(on, oshape, a->dtype, a->device, &o));
  if (vr_tensor_numel(o) > 0) VR_TRYG(matmul_launch(ac, bc, nbd, bshape, m, k, n, o));
  const vr_tensor *ins[2] = {a, b};
  VR_TRYG(vr_record("matmul", matmul_backward, 2, ins, 2, ins, NULL, 0, NULL, 0, o, NULL));
  *out = o;
  o = NULL;
done:
  vr_tensor_free(ac);
  vr_tensor_free(bc);
  vr_tensor_free(o);
  return st;
}

vr_status vr_linear(const vr_tensor *x, const vr_tensor *weight, const vr_tensor *bias, vr_tensor **out) {
  VR_CHECK_TENSOR(x);
  VR_CHECK_TENSOR(weight);
  VR_CHECK_OUT(out);
  VR_CHECK_FLOAT(x);
  VR_CHECK_SAME_DEVICE(x, weight);
  /* under autocast x and weight may mix f32 and bf16 (vr_matmul casts both); y is then f32 */
  bool cast = vr_autocast_applies(2, (const vr_tensor *const[]){x, weight});
  if (!cast) VR_CHECK_SAME_DTYPE(x, weight);
  vr_dtype ydt = cast ? VR_F32 : x->dtype;
  char s1[96], s2[96];
  if (weight->ndim != 2)
    return VR_FAIL(VR_E_SHAPE, "weight: expected 2 dims [out_features, in_features], got %s",
                   vr_shape_str(weight->ndim, weight->shape, s2, sizeof s2));
  if (x->ndim < 1) return VR_FAIL(VR_E_SHAPE, "x: expected at least 1 dim, got a 0-dim tensor");
  if (x->shape[x->ndim - 1] != weight->shape[1])
    return VR_FAIL(VR_E_SHAPE, "x: expected a last dim of in_features = %lld (weight %s), got x %s",
                   (long long)weight->shape[1], vr_shape_str(weight->ndim, weight->shape, s2, sizeof s2),
                   vr_shape_str(x->ndim, x->shape, s1, sizeof s1));
  if (bias) {
    VR_CHECK_SAME_DEVICE(x, bias);
    if (bias->dtype != ydt)
      return VR_FAIL(VR_E_DTYPE, "bias: expected %s like the output%s, got %s", vr_dtype_name(ydt),
                     cast ? " (f32 under autocast)" : "", vr_dtype_name(bias->dtype));
    if (bias->ndim != 1 || bias->shape[0] != weight->shape[0])
      return VR_FAIL(VR_E_SHAPE, "bias: expected [%lld] (out_features), got %s", (long long)weight->shape[0],
                     vr_shape_str(bias->ndim, bias->shape, s1, sizeof s1));
  }
  vr_tensor *wt = NULL, *y = NULL;
  vr_status st;
  VR_TRYG(vr_transpose(weight, 0, 1, &wt)); /* a transposed view: BLAS reads it with the trans flag */
  VR_TRYG(vr_matmul(x, wt, &y));
  if (bias) {
    VR_TRYG(vr_add(y, bias, out));
  } else {
    *out = y;
    y = NULL;
  }
done:
  vr_tensor_free(wt);
  vr_tensor_free(y);
  return st;
}

/* ---------------------------------------------------------------- eigh and svd
 *
 * VR_OP_EIGH kernel args: in[0] = A, a dense row-major n x n f32 or f64 matrix (n >= 1) of which
 * only the lower triangle is read; out[0] = values (n, ascending); with n_out = 2, out[1] = the
 * vectors (dense n x n, the eigenvectors as columns); n_out = 1: values only.
 * VR_OP_SVD kernel args: in[0] = A, a dense row-major m x n f32 or f64 matrix, k = min(m, n) >= 1;
 * out[0] = s (k, descending); with n_out = 3, out[1] = u (dense m x k) and out[2] = vh (dense
 * k x n); n_out = 1: s only.
 * Kernels report non-finite input and non-convergence as VR_E_VALUE. The CUDA column's entries are
 * host-staged CPU kernels (kernels/cpu/linalg.c) until a cuSOLVER one exists.
 *
 * Autograd: each output gets its own node. The backward of a decomposition is linear in the
 * output gradients, so the sum over the outputs' nodes that the engine accumulates into a's
 * gradient is PyTorch's formula with every output gradient at once; an output nobody uses costs
 * nothing. With F_ij = 1 / (x_j - x_i) off the diagonal and 0 on it:
 *   eigh: values  gA = V diag(gL) V^T
 *         vectors gA = V (F o (V^T gV - gV^T V) / 2) V^T            (x = the eigenvalues)
 *   svd:  s       gA = U diag(gS) Vh
 *         u       gA = U ((F o (U^T gU - gU^T U)) diag(S)) Vh + [m > k] (I - U U^T) gU S^-1 Vh
 *         vh      gA = U (diag(S) (F o (Vh gVh^T - gVh Vh^T))) Vh + [n > k] U S^-1 gVh (I - Vh^T Vh)
 *                                                                 (x = the squared singular values)
 * The saved outputs are second handles onto their storage (no cycle through the output's node;
 * in-place writes to an output are still caught by its version).
 */

/* F above as a k x k tensor like x (dtype, device): x is read on the host, squared when asked */
static vr_status recip_gaps(const vr_tensor *x, int squared, vr_tensor **out) {
  int64_t k = x->shape[0];
  double *v = malloc(sizeof(double) * (size_t)(k ? k : 1));
  void *f = malloc(vr_dtype_size(x->dtype) * (size_t)(k > 0 ? k * k : 1));
  vr_tensor *xd = NULL;
  vr_status st;
  if (!v || !f) {
    st = VR_FAIL(VR_E_OOM, "x: out of host memory for a %lld x %lld matrix", (long long)k, (long long)k);
    goto done;
  }
  VR_TRYG(vr_tensor_to_dtype(x, VR_F64, &xd));
  VR_TRYG(vr_tensor_to_buffer(xd, v, sizeof(double) * (size_t)k));
  for (int64_t i = 0; i < k; i++) {
    if (squared) v[i] *= v[i];
  }
  for (int64_t i = 0; i < k; i++)
    for (int64_t j = 0; j < k; j++)
      vr_store((char *)f + (size_t)(i * k + j) * vr_dtype_size(x->dtype), x->dtype, i == j ? 0.0 : 1.0 / (v[j] - v[i]));
  VR_TRYG(vr_tensor_from_buffer(f, 2, (int64_t[]){k, k}, x->dtype, x->device, out));
done:
  free(v);
  free(f);
  vr_tensor_free(xd);
  return st;
}

/* x^T y, x y^T (views: BLAS reads them with the trans flag) */
static vr_status mm_tn(const vr_tensor *x, const vr_tensor *y, vr_tensor **out) {
  vr_tensor *t = NULL;
  VR_TRY(vr_transpose(x, 0, 1, &t));
  vr_status st = vr_matmul(t, y, out);
  vr_tensor_free(t);
  return st;
}
static vr_status mm_nt(const vr_tensor *x, const vr_tensor *y, vr_tensor **out) {
  vr_tensor *t = NULL;
  VR_TRY(vr_transpose(y, 0, 1, &t));
  vr_status st = vr_matmul(x, t, out);
  vr_tensor_free(t);
  return st;
}
/* x - x^T */
static vr_status skew(const vr_tensor *x, vr_tensor **out) {
  vr_tensor *t = NULL;
  VR_TRY(vr_transpose(x, 0, 1, &t));
  vr_status st = vr_sub(x, t, out);
  vr_tensor_free(t);
  return st;
}
/* x with each column j scaled by d[j] (dim 0) or each row i by d[i] (dim 1: d as a column) */
static vr_status scale_by(const vr_tensor *x, const vr_tensor *d, int as_column, vr_tensor **out) {
  vr_tensor *t = NULL;
  VR_TRY(vr_unsqueeze(d, as_column ? 1 : 0, &t));
  vr_status st = vr_mul(x, t, out);
  vr_tensor_free(t);
  return st;
}
static vr_status divide_by(const vr_tensor *x, const vr_tensor *d, int as_column, vr_tensor **out) {
  vr_tensor *t = NULL;
  VR_TRY(vr_unsqueeze(d, as_column ? 1 : 0, &t));
  vr_status st = vr_div(x, t, out);
  vr_tensor_free(t);
  return st;
}
/* x y z */
static vr_status mm3(const vr_tensor *x, const vr_tensor *y, const vr_tensor *z, vr_tensor **out) {
  vr_tensor *t = NULL;
  VR_TRY(vr_matmul(x, y, &t));
  vr_status st = vr_matmul(t, z, out);
  vr_tensor_free(t);
  return st;
}

#define FREE_ALL(arr) for (size_t q_ = 0; q_ < sizeof(arr) / sizeof *(arr); q_++) vr_tensor_free((arr)[q_])

/* values: gA = (V diag(gL)) V^T */
static vr_status eigh_values_backward(vr_node *nd, vr_tensor *g, vr_tensor **gin) {
  vr_tensor *V = NULL, *t[1] = {NULL};
  vr_status st;
  VR_TRYG(vr_node_saved(nd, 0, &V));
  VR_TRYG(scale_by(V, g, 0, &t[0]));
  VR_TRYG(mm_nt(t[0], V, &gin[0]));
done:
  FREE_ALL(t);
  return st;
}

/* vectors: gA = V (F o (V^T gV - gV^T V) / 2) V^T */
static vr_status eigh_vectors_backward(vr_node *nd, vr_tensor *g, vr_tensor **gin) {
  vr_tensor *V = NULL, *L = NULL, *t[6] = {NULL};
  vr_status st;
  VR_TRYG(vr_node_saved(nd, 0, &V));
  VR_TRYG(vr_node_saved(nd, 1, &L));
  VR_TRYG(mm_tn(V, g, &t[0]));
  VR_TRYG(skew(t[0], &t[1]));
  VR_TRYG(recip_gaps(L, 0, &t[2]));
  VR_TRYG(vr_mul(t[1], t[2], &t[3]));
  VR_TRYG(vr_mul_scalar(t[3], 0.5, &t[4]));
  VR_TRYG(vr_transpose(V, 0, 1, &t[5]));
  VR_TRYG(mm3(V, t[4], t[5], &gin[0]));
done:
  FREE_ALL(t);
  return st;
}

/* s: gA = (U diag(gS)) Vh */
static vr_status svd_s_backward(vr_node *nd, vr_tensor *g, vr_tensor **gin) {
  vr_tensor *U = NULL, *Vh = NULL, *t[1] = {NULL};
  vr_status st;
  VR_TRYG(vr_node_saved(nd, 0, &U));
  VR_TRYG(vr_node_saved(nd, 2, &Vh));
  VR_TRYG(scale_by(U, g, 0, &t[0]));
  VR_TRYG(vr_matmul(t[0], Vh, &gin[0]));
done:
  FREE_ALL(t);
  return st;
}

/* u: gA = [U ((F o (U^T gU - gU^T U)) diag(S)) + (gU S^-1 - U (U^T gU S^-1))] Vh, the bracketed
 * second term only for a tall matrix (m > k; for m = k, U U^T = I) */
static vr_status svd_u_backward(vr_node *nd, vr_tensor *g, vr_tensor **gin) {
  vr_tensor *U = NULL, *S = NULL, *Vh = NULL, *t[10] = {NULL};
  vr_status st;
  VR_TRYG(vr_node_saved(nd, 0, &U));
  VR_TRYG(vr_node_saved(nd, 1, &S));
  VR_TRYG(vr_node_saved(nd, 2, &Vh));
  VR_TRYG(mm_tn(U, g, &t[0]));
  VR_TRYG(skew(t[0], &t[1]));
  VR_TRYG(recip_gaps(S, 1, &t[2]));
  VR_TRYG(vr_mul(t[1], t[2], &t[3]));
  VR_TRYG(scale_by(t[3], S, 0, &t[4]));
  VR_TRYG(vr_matmul(U, t[4], &t[5])); /* m x k */
  if (U->shape[0] > U->shape[1]) {
    VR_TRYG(divide_by(g, S, 0, &t[6]));  /* gU S^-1 */
    VR_TRYG(mm_tn(U, t[6], &t[7]));      /* U^T gU S^-1 */
    VR_TRYG(vr_matmul(U, t[7], &t[8]));
    VR_TRYG(vr_sub(t[6], t[8], &t[9]));
    vr_tensor_free(t[7]);
    t[7] = NULL;
    VR_TRYG(vr_add(t[5], t[9], &t[7]));
    VR_TRYG(vr_matmul(t[7], Vh, &gin[0]));
  } else {
    VR_TRYG(vr_matmul(t[5], Vh, &gin[0]));
  }
done:
  FREE_ALL(t);
  return st;
}

/* vh: gA = U [(diag(S) (F o (Vh gVh^T - gVh Vh^T))) Vh + (S^-1 gVh - (S^-1 gVh Vh^T) Vh)], the
 * second term only for a wide matrix (n > k) */
static vr_status svd_vh_backward(vr_node *nd, vr_tensor *g, vr_tensor **gin) {
  vr_tensor *U = NULL, *S = NULL, *Vh = NULL, *t[10] = {NULL};
  vr_status st;
  VR_TRYG(vr_node_saved(nd, 0, &U));
  VR_TRYG(vr_node_saved(nd, 1, &S));
  VR_TRYG(vr_node_saved(nd, 2, &Vh));
  VR_TRYG(mm_nt(Vh, g, &t[0]));
  VR_TRYG(skew(t[0], &t[1]));
  VR_TRYG(recip_gaps(S, 1, &t[2]));
  VR_TRYG(vr_mul(t[1], t[2], &t[3]));
  VR_TRYG(scale_by(t[3], S, 1, &t[4]));
  VR_TRYG(vr_matmul(t[4], Vh, &t[5])); /* k x n */
  if (Vh->shape[1] > Vh->shape[0]) {
    VR_TRYG(divide_by(g, S, 1, &t[6]));  /* S^-1 gVh */
    VR_TRYG(mm_nt(t[6], Vh, &t[7]));     /* S^-1 gVh Vh^T */
    VR_TRYG(vr_matmul(t[7], Vh, &t[8]));
    VR_TRYG(vr_sub(t[6], t[8], &t[9]));
    vr_tensor_free(t[7]);
    t[7] = NULL;
    VR_TRYG(vr_add(t[5], t[9], &t[7]));
    VR_TRYG(vr_matmul(U, t[7], &gin[0]));
  } else {
    VR_TRYG(vr_matmul(U, t[5], &gin[0]));
  }
done:
  FREE_ALL(t);
  return st;
}

/* a: a 2-D f32 or f64 matrix (square when asked) */
static vr_status check_matrix(const char *func, const vr_tensor *a, int square) {
  char buf[96];
  if (a->dtype != VR_F32 && a->dtype != VR_F64)
    return vr_error_set(VR_E_DTYPE, func, __FILE__, __LINE__, "a: expected an f32 or f64 matrix, got %s",
                        vr_dtype_name(a->dtype));
  if (a->ndim != 2)
    return vr_error_set(VR_E_SHAPE, func, __FILE__, __LINE__, "a: expected a 2-D matrix, got %d dims %s", a->ndim,
                        vr_shape_str(a->ndim, a->shape, buf, sizeof buf));
  if (square && a->shape[0] != a->shape[1])
    return vr_error_set(VR_E_SHAPE, func, __FILE__, __LINE__, "a: expected a square matrix, got %s",
                        vr_shape_str(a->ndim, a->shape, buf, sizeof buf));
  return VR_OK;
}

/* a second handle onto t's storage, without t's node */
static vr_status plain_view(const vr_tensor *t, vr_tensor **out) {
  return vr_tensor_view_raw(t, t->ndim, t->shape, t->stride, t->offset, out);
}

vr_status vr_eigh(const vr_tensor *a, vr_tensor **values, vr_tensor **vectors) {
  if (values) *values = NULL;
  if (vectors) *vectors = NULL;
  VR_CHECK_TENSOR(a);
  VR_CHECK_OUT(values);
  VR_TRY(check_matrix(__func__, a, 1));
  int64_t n = a->shape[0];
  bool need = vr_needs_grad(1, &a), want = vectors || need; /* the backward of values needs V */
  vr_tensor *ac = NULL, *L = NULL, *V = NULL, *Lv = NULL, *Vv = NULL;
  vr_status st;
  VR_TRYG(vr_contiguous_raw(a, &ac));
  VR_TRYG(vr_tensor_alloc(1, &n, a->dtype, a->device, &L));
  if (want) VR_TRYG(vr_tensor_alloc(2, (int64_t[]){n, n}, a->dtype, a->device, &V));
  if (n > 0) {
    vr_kernel_args k = {.in = {ac}, .n_in = 1, .out = {L, V}, .n_out = want ? 2 : 1};
    VR_TRYG(vr_dispatch(VR_OP_EIGH, a->device, 0, &k));
  }
  if (need) {
    VR_TRYG(plain_view(V, &Vv));
    VR_TRYG(plain_view(L, &Lv));
    VR_TRYG(vr_record("eigh", eigh_values_backward, 1, &a, 1, (const vr_tensor *const[]){Vv}, NULL, 0, NULL, 0, L,
                      NULL));
    if (vectors)
      VR_TRYG(vr_record("eigh", eigh_vectors_backward, 1, &a, 2, (const vr_tensor *const[]){Vv, Lv}, NULL, 0, NULL, 0,
                        V, NULL));
  }
  *values = L;
  L = NULL;
  if (vectors) {
    *vectors = V;
    V = NULL;
  }
done:
  vr_tensor_free(ac);
  vr_tensor_free(L);
  vr_tensor_free(V);
  vr_tensor_free(Lv);
  vr_tensor_free(Vv);
  return st;
}

vr_status vr_svd(const vr_tensor *a, vr_tensor **u, vr_tensor **s, vr_tensor **vh) {
  if (u) *u = NULL;
  if (s) *s = NULL;
  if (vh) *vh = NULL;
  VR_CHECK_TENSOR(a);
  VR_CHECK_OUT(s);
  VR_TRY(check_matrix(__func__, a, 0));
  int64_t m = a->shape[0], n = a->shape[1], k = m < n ? m : n;
  bool need = vr_needs_grad(1, &a), want = u || vh || need; /* the backward of s needs u and vh */
  vr_tensor *ac = NULL, *S = NULL, *U = NULL, *VH = NULL, *Sv = NULL, *Uv = NULL, *VHv = NULL;
  vr_status st;
  VR_TRYG(vr_contiguous_raw(a, &ac));
  VR_TRYG(vr_tensor_alloc(1, &k, a->dtype, a->device, &S));
  if (want) {
    VR_TRYG(vr_tensor_alloc(2, (int64_t[]){m, k}, a->dtype, a->device, &U));
    VR_TRYG(vr_tensor_alloc(2, (int64_t[]){k, n}, a->dtype, a->device, &VH));
  }
  if (k > 0) {
    vr_kernel_args ka = {.in = {ac}, .n_in = 1, .out = {S, U, VH}, .n_out = want ? 3 : 1};
    VR_TRYG(vr_dispatch(VR_OP_SVD, a->device, 0, &ka));
  }
  if (need) {
    VR_TRYG(plain_view(S, &Sv));
    VR_TRYG(plain_view(U, &Uv));
    VR_TRYG(plain_view(VH, &VHv));
    const vr_tensor *saved[3] = {Uv, Sv, VHv};
    VR_TRYG(vr_record("svd", svd_s_backward, 1, &a, 3, saved, NULL, 0, NULL, 0, S, NULL));
    if (u) VR_TRYG(vr_record("svd", svd_u_backward, 1, &a, 3, saved, NULL, 0, NULL, 0, U, NULL));
    if (vh) VR_TRYG(vr_record("svd", svd_vh_backward, 1, &a, 3, saved, NULL, 0, NULL, 0, VH, NULL));
  }
  *s = S;
  S = NULL;
  if (u) {
    *u = U;
    U = NULL;
  }
  if (vh) {
    *vh = VH;
    VH = NULL;
  }
done:
  vr_tensor_free(ac);
  vr_tensor_free(S);
  vr_tensor_free(U);
  vr_tensor_free(VH);
  vr_tensor_free(Sv);
  vr_tensor_free(Uv);
  vr_tensor_free(VHv);
  return st;
}
