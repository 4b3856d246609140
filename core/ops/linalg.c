/* linalg.c: vr_matmul (1-D, 2-D and batched with broadcast batch dims, like torch.matmul) and
 * vr_linear. The backward composes vr_matmul with transposed views.
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
