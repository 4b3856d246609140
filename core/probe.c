/* probe.c: offline evaluation of frozen features.
 *  - linear probe: multinomial logistic regression on features standardised (f32, in place) with
 *    the training mean and std, fitted by full-batch L-BFGS (memory 10, backtracking Armijo line
 *    search) on mean cross-entropy + l2/2 |W|^2 (bias not penalised); each loss/gradient
 *    evaluation is one fused, multithreaded pass over the features.
 *  - kNN: the DINO / solo-learn weighted kNN: L2-normalised features, cosine similarity to every
 *    training feature, the k most similar vote for their class with weight exp(sim / T).
 * Both stop with VR_E_INTERRUPTED at a pending interrupt request (vr_interrupt_request), checked
 * between L-BFGS iterations and between blocks of 256 test rows. */
#include "internal.h"
#include <cblas.h>
#include <float.h>
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* features as a new host f32 row-major buffer (n x d) */
static vr_status feats(const char *func, const char *arg, const vr_tensor *x, float **buf, int64_t *n, int64_t *d) {
  if (!x) return vr_error_set(VR_E_ARG, func, __FILE__, __LINE__, "%s: expected a tensor, got NULL", arg);
  if (x->ndim != 2)
    return vr_error_set(VR_E_SHAPE, func, __FILE__, __LINE__, "%s: expected N x D features, got %d dims", arg, x->ndim);
  if (!vr_is_float(x->dtype))
    return vr_error_set(VR_E_DTYPE, func, __FILE__, __LINE__, "%s: expected a float tensor, got %s", arg,
                        vr_dtype_name(x->dtype));
  *n = x->shape[0];
  *d = x->shape[1];
  if (*n < 1 || *d < 1)
    return vr_error_set(VR_E_SHAPE, func, __FILE__, __LINE__, "%s: expected a non-empty N x D, got %lld x %lld", arg,
                        (long long)*n, (long long)*d);
  size_t nb = sizeof(float) * (size_t)(*n * *d);
  *buf = malloc(nb);
  if (!*buf) return vr_error_set(VR_E_OOM, func, __FILE__, __LINE__, "%s: out of host memory", arg);
  vr_tensor *f = NULL;
  vr_status st = vr_tensor_to_dtype(x, VR_F32, &f);
  if (!st) st = vr_tensor_to_buffer(f, *buf, nb);
  vr_tensor_free(f);
  if (st) {
    free(*buf);
    *buf = NULL;
  }
  return st;
}

static vr_status labels(const char *func, const char *arg, const vr_tensor *y, int64_t n, int64_t **buf) {
  if (!y) return vr_error_set(VR_E_ARG, func, __FILE__, __LINE__, "%s: expected a tensor, got NULL", arg);
  if (y->ndim != 1 || y->shape[0] != n)
    return vr_error_set(VR_E_SHAPE, func, __FILE__, __LINE__, "%s: expected %lld labels (1-D), got %lld in %d dims", arg,
                        (long long)n, (long long)vr_tensor_numel(y), y->ndim);
  if (y->dtype != VR_I64 && y->dtype != VR_I32)
    return vr_error_set(VR_E_DTYPE, func, __FILE__, __LINE__, "%s: expected i64 or i32, got %s", arg,
                        vr_dtype_name(y->dtype));
  *buf = malloc(sizeof(int64_t) * (size_t)n);
  if (!*buf) return vr_error_set(VR_E_OOM, func, __FILE__, __LINE__, "%s: out of host memory", arg);
  vr_tensor *l = NULL;
  vr_status st = vr_tensor_to_dtype(y, VR_I64, &l);
  if (!st) st = vr_tensor_to_buffer(l, *buf, sizeof(int64_t) * (size_t)n);
  vr_tensor_free(l);
  for (int64_t i = 0; i < n && !st; i++)
    if ((*buf)[i] < 0)
      st = vr_error_set(VR_E_VALUE, func, __FILE__, __LINE__, "%s: element %lld is %lld, expected a class >= 0", arg,
                        (long long)i, (long long)(*buf)[i]);
  if (st) {
    free(*buf);
    *buf = NULL;
  }
  return st;
}

typedef struct probe_in {
  float *xtr, *xte;
  int64_t *ytr, *yte;
  int64_t n, m, d;
  int C;
} probe_in;

static void probe_free(probe_in *p) {
  free(p->xtr);
  free(p->xte);
  free(p->ytr);
  free(p->yte);
}

static vr_status probe_load(const char *func, const vr_tensor *train_x, const vr_tensor *train_y,
                            const vr_tensor *test_x, const vr_tensor *test_y, int num_classes, probe_in *p) {
  memset(p, 0, sizeof *p);
  int64_t d2 = 0;
  vr_status st = VR_OK;
  if ((st = feats(func, "train_x", train_x, &p->xtr, &p->n, &p->d))) goto fail;
  if ((st = feats(func, "test_x", test_x, &p->xte, &p->m, &d2))) goto fail;
  if (d2 != p->d) {
    st = vr_error_set(VR_E_SHAPE, func, __FILE__, __LINE__, "test_x: expected %lld features like train_x, got %lld",
                      (long long)p->d, (long long)d2);
    goto fail;
  }
  if ((st = labels(func, "train_y", train_y, p->n, &p->ytr))) goto fail;
  if ((st = labels(func, "test_y", test_y, p->m, &p->yte))) goto fail;
  if (num_classes < 0) {
    st = vr_error_set(VR_E_ARG, func, __FILE__, __LINE__, "num_classes: expected >= 0, got %d", num_classes);
    goto fail;
  }
  int64_t mx = 0;
  for (int64_t i = 0; i < p->n; i++) mx = p->ytr[i] > mx ? p->ytr[i] : mx;
  for (int64_t i = 0; i < p->m; i++) mx = p->yte[i] > mx ? p->yte[i] : mx;
  if (num_classes && mx >= num_classes) {
    st = vr_error_set(VR_E_VALUE, func, __FILE__, __LINE__, "train_y, test_y: label %lld, expected < num_classes %d",
                      (long long)mx, num_classes);
    goto fail;
  }
  if (mx >= 100000) {
    st = vr_error_set(VR_E_VALUE, func, __FILE__, __LINE__, "train_y, test_y: label %lld is implausibly large",
                      (long long)mx);
    goto fail;
  }
  p->C = num_classes ? num_classes : (int)mx + 1;
  return VR_OK;
fail:
  probe_free(p);
  return st;
}

/* ---------------------------------------------------------------- linear probe */

/* The loss and gradient take one pass over the f32 features per evaluation: rows go four at a
 * time through logits (x W + b), softmax and the gradient update X^T (P - Y) while they are in L1,
 * so the N x D features are read from memory once (the two narrow GEMMs read them twice and are
 * memory-bound at C = 10). W is padded to CP (a multiple of 16) columns for 8-wide FMAs. Rows are
 * split into fixed chunks whose partial gradients are summed in chunk order: the result does not
 * depend on the thread count. */
enum { NR = 4, CB = 16, CHUNK = 2048 };

typedef struct lr_prob {
  const float *x;       /* n x d standardised */
  const int64_t *y;
  int64_t n, d;
  int C, CP;
  double l2;
  float *wp;            /* d x CP padded weights */
  float *bp;            /* CP bias */
  float *gpart;         /* nchunk x (d x CP + CP) partial gradients */
  double *lpart;        /* nchunk partial losses */
  int64_t nchunk;
} lr_prob;

/* z[r][:] += x_r W for NR rows (x rows of stride d), one 16-column block at offset j0.
 * Intrinsics: -std=c11 turns off FMA contraction, and the loops are load/FMA bound. */
static inline void rows_logits(const float *restrict x, int64_t d, const float *restrict wp, int CP, int j0,
                               float z[NR][CB]) {
#if defined(__AVX2__) && defined(__FMA__)
  __m256 a00 = _mm256_setzero_ps(), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00, a31 = a00;
  for (int64_t k = 0; k < d; k++) {
    const float *w = wp + k * CP + j0;
    __m256 w0 = _mm256_loadu_ps(w), w1 = _mm256_loadu_ps(w + 8);
    __m256 x0 = _mm256_broadcast_ss(x + k), x1 = _mm256_broadcast_ss(x + d + k);
    __m256 x2 = _mm256_broadcast_ss(x + 2 * d + k), x3 = _mm256_broadcast_ss(x + 3 * d + k);
    a00 = _mm256_fmadd_ps(x0, w0, a00);
    a01 = _mm256_fmadd_ps(x0, w1, a01);
    a10 = _mm256_fmadd_ps(x1, w0, a10);
    a11 = _mm256_fmadd_ps(x1, w1, a11);
    a20 = _mm256_fmadd_ps(x2, w0, a20);
    a21 = _mm256_fmadd_ps(x2, w1, a21);
    a30 = _mm256_fmadd_ps(x3, w0, a30);
    a31 = _mm256_fmadd_ps(x3, w1, a31);
  }
  float acc[NR][CB];
  _mm256_storeu_ps(acc[0], a00);
  _mm256_storeu_ps(acc[0] + 8, a01);
  _mm256_storeu_ps(acc[1], a10);
  _mm256_storeu_ps(acc[1] + 8, a11);
  _mm256_storeu_ps(acc[2], a20);
  _mm256_storeu_ps(acc[2] + 8, a21);
  _mm256_storeu_ps(acc[3], a30);
  _mm256_storeu_ps(acc[3] + 8, a31);
#else
  float acc[NR][CB] = {{0}};
  for (int64_t k = 0; k < d; k++) {
    const float *w = wp + k * CP + j0;
    for (int r = 0; r < NR; r++) {
      float xv = x[r * d + k];
      for (int j = 0; j < CB; j++) acc[r][j] += xv * w[j];
    }
  }
#endif
  for (int r = 0; r < NR; r++)
    for (int j = 0; j < CB; j++) z[r][j] += acc[r][j];
}

/* g[k][j0:j0+16] += sum_r x_r[k] p[r][:] */
static inline void rows_grad(const float *restrict x, int64_t d, const float p[NR][CB], float *restrict g, int CP,
                             int j0) {
#if defined(__AVX2__) && defined(__FMA__)
  __m256 p00 = _mm256_loadu_ps(p[0]), p01 = _mm256_loadu_ps(p[0] + 8), p10 = _mm256_loadu_ps(p[1]),
         p11 = _mm256_loadu_ps(p[1] + 8), p20 = _mm256_loadu_ps(p[2]), p21 = _mm256_loadu_ps(p[2] + 8),
         p30 = _mm256_loadu_ps(p[3]), p31 = _mm256_loadu_ps(p[3] + 8);
  for (int64_t k = 0; k < d; k++) {
    float *gk = g + k * CP + j0;
    __m256 x0 = _mm256_broadcast_ss(x + k), x1 = _mm256_broadcast_ss(x + d + k);
    __m256 x2 = _mm256_broadcast_ss(x + 2 * d + k), x3 = _mm256_broadcast_ss(x + 3 * d + k);
    __m256 g0 = _mm256_loadu_ps(gk), g1 = _mm256_loadu_ps(gk + 8);
    g0 = _mm256_fmadd_ps(x0, p00, g0);
    g1 = _mm256_fmadd_ps(x0, p01, g1);
    g0 = _mm256_fmadd_ps(x1, p10, g0);
    g1 = _mm256_fmadd_ps(x1, p11, g1);
    g0 = _mm256_fmadd_ps(x2, p20, g0);
    g1 = _mm256_fmadd_ps(x2, p21, g1);
    g0 = _mm256_fmadd_ps(x3, p30, g0);
    g1 = _mm256_fmadd_ps(x3, p31, g1);
    _mm256_storeu_ps(gk, g0);
    _mm256_storeu_ps(gk + 8, g1);
  }
#else
  for (int64_t k = 0; k < d; k++) {
    float *gk = g + k * CP + j0;
    float x0 = x[k], x1 = x[d + k], x2 = x[2 * d + k], x3 = x[3 * d + k];
    for (int j = 0; j < CB; j++) gk[j] += x0 * p[0][j] + x1 * p[1][j] + x2 * p[2][j] + x3 * p[3][j];
  }
#endif
}

/* one chunk of rows [i0, i1): partial loss (sum over rows) and partial gradient of the sum */
static double lr_chunk(const lr_prob *p, int64_t i0, int64_t i1, float *g, float *tail) {
  int64_t d = p->d;
  int C = p->C, CP = p->CP;
  float *gb = g + d * CP;
  memset(g, 0, sizeof(float) * (size_t)(d * CP + CP));
  double loss = 0;
  for (int64_t i = i0; i < i1; i += NR) {
    int nr = i1 - i < NR ? (int)(i1 - i) : NR;
    const float *x = p->x + i * d;
    if (nr < NR) { /* last rows: a zero-padded copy */
      memset(tail, 0, sizeof(float) * (size_t)(NR * d));
      memcpy(tail, x, sizeof(float) * (size_t)(nr * d));
      x = tail;
    }
    float z[NR][CB];
    for (int j0 = 0; j0 < CP; j0 += CB) {
      for (int r = 0; r < NR; r++)
        for (int j = 0; j < CB; j++) z[r][j] = p->bp[j0 + j];
      rows_logits(x, d, p->wp, CP, j0, z);
      /* C > 16: keep the logits of every block (rare; C <= 16 is one block) */
      if (CP > CB) {
        float *zs = tail + NR * d + (size_t)j0 * NR;
        for (int r = 0; r < NR; r++)
          for (int j = 0; j < CB; j++) zs[r * CB + j] = z[r][j];
      }
    }
    float *zall = tail + NR * d; /* NR x CP logits when CP > 16, laid out block by block */
    for (int r = 0; r < nr; r++) {
      int64_t yi = p->y[i + r];
#define ZV(c) (CP > CB ? zall[((c) / CB) * NR * CB + r * CB + (c) % CB] : z[r][c])
      float mx = -FLT_MAX;
      for (int c = 0; c < C; c++) mx = ZV(c) > mx ? ZV(c) : mx;
      double s = 0;
      for (int c = 0; c < C; c++) s += exp((double)(ZV(c) - mx));
      loss += mx + log(s) - ZV(yi);
      for (int c = 0; c < C; c++) {
        float pc = (float)(exp((double)(ZV(c) - mx)) / s) - (c == yi);
        if (CP > CB)
          zall[(c / CB) * NR * CB + r * CB + c % CB] = pc;
        else
          z[r][c] = pc;
      }
#undef ZV
    }
    for (int j0 = 0; j0 < CP; j0 += CB) {
      float pr[NR][CB];
      for (int r = 0; r < NR; r++)
        for (int j = 0; j < CB; j++) {
          int c = j0 + j;
          float v = CP > CB ? zall[(size_t)j0 * NR + r * CB + j] : z[r][j];
          pr[r][j] = r < nr && c < C ? v : 0;
        }
      rows_grad(x, d, pr, g, CP, j0);
      for (int r = 0; r < NR; r++)
        for (int j = 0; j < CB; j++) gb[j0 + j] += pr[r][j];
    }
  }
  return loss;
}

/* loss and gradient at theta = [W (d x C, row-major), b (C)] */
static double lr_eval(lr_prob *p, const double *theta, double *grad) {
  int64_t n = p->n, d = p->d, C = p->C, CP = p->CP, nw = d * C, gs = d * CP + CP;
  for (int64_t k = 0; k < d; k++)
    for (int64_t c = 0; c < CP; c++) p->wp[k * CP + c] = c < C ? (float)theta[k * C + c] : 0;
  for (int64_t c = 0; c < CP; c++) p->bp[c] = c < C ? (float)theta[nw + c] : 0;
  int ok = 1;
#pragma omp parallel
  {
    float *tail = malloc(sizeof(float) * (size_t)(NR * d + NR * CP));
    if (!tail) {
#pragma omp atomic write
      ok = 0;
    }
#pragma omp for schedule(dynamic, 1)
    for (int64_t ch = 0; ch < p->nchunk; ch++) {
      int64_t i0 = ch * CHUNK, i1 = i0 + CHUNK < n ? i0 + CHUNK : n;
      p->lpart[ch] = tail ? lr_chunk(p, i0, i1, p->gpart + ch * gs, tail) : 0;
    }
    free(tail);
  }
  if (!ok) return NAN;
  double loss = 0, reg = 0, inv = 1.0 / (double)n;
  for (int64_t ch = 0; ch < p->nchunk; ch++) loss += p->lpart[ch];
#pragma omp parallel for schedule(static)
  for (int64_t k = 0; k < d + 1; k++)
    for (int64_t c = 0; c < C; c++) {
      double s = 0;
      for (int64_t ch = 0; ch < p->nchunk; ch++) s += p->gpart[ch * gs + k * CP + c];
      grad[k * C + c] = s * inv + (k < d ? p->l2 * theta[k * C + c] : 0);
    }
  for (int64_t k = 0; k < nw; k++) reg += theta[k] * theta[k];
  return loss * inv + 0.5 * p->l2 * reg;
}

static double dot(const double *a, const double *b, int64_t n) {
  double s = 0;
  for (int64_t k = 0; k < n; k++) s += a[k] * b[k];
  return s;
}

/* L-BFGS (memory 10, backtracking Armijo). Stops like sklearn's lbfgs: max |grad| < 1e-4 on the
 * mean loss, or the loss falls by less than 1e-7 (relative) per iteration over the last 5, or the
 * line search fails (float noise near the optimum). Returns the iterations done; *interrupted
 * becomes 1 when a pending interrupt request stops it (the request is left for the caller to take). */
static int lbfgs(lr_prob *p, double *x, int64_t n, int max_iter, int *interrupted) {
  enum { M = 10, FW = 5 };
  double *g = calloc((size_t)n, sizeof(double)), *gn = calloc((size_t)n, sizeof(double)),
         *dir = calloc((size_t)n, sizeof(double)), *xn = calloc((size_t)n, sizeof(double)),
         *S = calloc((size_t)n * M, sizeof(double)), *Y = calloc((size_t)n * M, sizeof(double));
  double rho[M], alpha[M], fhist[FW + 1];
  int it = 0, evals = 1;
  if (!g || !gn || !dir || !xn || !S || !Y) goto done;
  double f = lr_eval(p, x, g);
  int hist = 0, head = 0;
  const char *verbose = getenv("VISREG_PROBE_VERBOSE");
  int verb = verbose && *verbose && *verbose != '0';
  const char *why = "max_iter";
  for (it = 0; it < max_iter; it++) {
    if (vr_interrupt_pending()) {
      *interrupted = 1;
      why = "interrupted";
      break;
    }
    double gmax = 0;
    for (int64_t k = 0; k < n; k++) gmax = fmax(gmax, fabs(g[k]));
    if (verb && it % 25 == 0)
      fprintf(stderr, "linear probe: iteration %d loss %.7f max |grad| %.3g evals %d\n", it, f, gmax, evals);
    fhist[it % (FW + 1)] = f;
    if (gmax < 1e-4) {
      why = "max |grad| < 1e-4";
      break;
    }
    if (it >= FW && fhist[(it - FW) % (FW + 1)] - f < FW * 1e-7 * fmax(1.0, fabs(f))) {
      why = "loss change < 1e-7";
      break;
    }
    /* two-loop recursion */
    for (int64_t k = 0; k < n; k++) dir[k] = -g[k];
    for (int h = 0; h < hist; h++) {
      int j = (head - 1 - h + M) % M;
      alpha[j] = rho[j] * dot(S + (size_t)j * n, dir, n);
      for (int64_t k = 0; k < n; k++) dir[k] -= alpha[j] * Y[(size_t)j * n + k];
    }
    double gamma = 1;
    if (hist) {
      int j = (head - 1 + M) % M;
      gamma = dot(S + (size_t)j * n, Y + (size_t)j * n, n) / dot(Y + (size_t)j * n, Y + (size_t)j * n, n);
    } else
      gamma = 1.0 / fmax(1.0, sqrt(dot(g, g, n)));
    for (int64_t k = 0; k < n; k++) dir[k] *= gamma;
    for (int h = hist - 1; h >= 0; h--) {
      int j = (head - 1 - h + M) % M;
      double b = rho[j] * dot(Y + (size_t)j * n, dir, n);
      for (int64_t k = 0; k < n; k++) dir[k] += S[(size_t)j * n + k] * (alpha[j] - b);
    }
    double gd = dot(g, dir, n);
    if (gd >= 0) { /* not a descent direction: restart from steepest descent */
      hist = 0;
      for (int64_t k = 0; k < n; k++) dir[k] = -g[k] / fmax(1.0, sqrt(dot(g, g, n)));
      gd = dot(g, dir, n);
    }
    double step = 1, fn = 0;
    int ok = 0;
    for (int ls = 0; ls < 30; ls++) {
      for (int64_t k = 0; k < n; k++) xn[k] = x[k] + step * dir[k];
      fn = lr_eval(p, xn, gn);
      evals++;
      if (fn <= f + 1e-4 * step * gd) {
        ok = 1;
        break;
      }
      step *= 0.5;
    }
    if (!ok) {
      why = "line search";
      break;
    }
    int j = head;
    for (int64_t k = 0; k < n; k++) {
      S[(size_t)j * n + k] = xn[k] - x[k];
      Y[(size_t)j * n + k] = gn[k] - g[k];
    }
    double sy = dot(S + (size_t)j * n, Y + (size_t)j * n, n);
    if (sy > 1e-12) {
      rho[j] = 1 / sy;
      head = (head + 1) % M;
      if (hist < M) hist++;
    }
    memcpy(x, xn, sizeof(double) * (size_t)n);
    memcpy(g, gn, sizeof(double) * (size_t)n);
    f = fn;
  }
  if (verb) fprintf(stderr, "linear probe: stopped (%s) after %d iterations, %d evaluations, loss %.7f\n", why, it, evals, f);
done:
  free(g);
  free(gn);
  free(dir);
  free(xn);
  free(S);
  free(Y);
  return it;
}

/* standardise x (n x d) in place with mean and inverse std (constant features become 0) */
static void standardise(float *x, int64_t n, int64_t d, const double *mean, const double *isd) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++)
    for (int64_t k = 0; k < d; k++) x[i * d + k] = (float)((x[i * d + k] - mean[k]) * isd[k]);
}

/* training mean and inverse std per feature, summed over fixed row blocks in order */
static void moments(const float *x, int64_t n, int64_t d, double *mean, double *isd) {
#pragma omp parallel for schedule(static)
  for (int64_t k0 = 0; k0 < d; k0 += 64) {
    int64_t k1 = k0 + 64 < d ? k0 + 64 : d;
    for (int64_t i = 0; i < n; i++)
      for (int64_t k = k0; k < k1; k++) mean[k] += x[i * d + k];
    for (int64_t k = k0; k < k1; k++) mean[k] /= (double)n;
    for (int64_t i = 0; i < n; i++)
      for (int64_t k = k0; k < k1; k++) {
        double v = x[i * d + k] - mean[k];
        isd[k] += v * v;
      }
    for (int64_t k = k0; k < k1; k++) {
      double s = sqrt(isd[k] / (double)n);
      isd[k] = s > 1e-8 ? 1 / s : 0;
    }
  }
}

/* the probe behind vr_linear_probe and vr_linear_probe_classify; func names the entry in messages */
static vr_status linear_probe(const char *func, const vr_tensor *train_x, const vr_tensor *train_y,
                              const vr_tensor *test_x, const vr_tensor *test_y, int num_classes, double l2, int max_iter,
                              vr_tensor **pred, double *accuracy) {
  if (pred) *pred = NULL;
  if (!(l2 >= 0) || !isfinite(l2))
    return vr_error_set(VR_E_ARG, func, __FILE__, __LINE__, "l2: expected a finite value >= 0, got %g", l2);
  if (max_iter < 0)
    return vr_error_set(VR_E_ARG, func, __FILE__, __LINE__, "max_iter: expected >= 0 (0: 300), got %d", max_iter);
  probe_in p;
  VR_TRY(probe_load(func, train_x, train_y, test_x, test_y, num_classes, &p));
  int64_t n = p.n, m = p.m, d = p.d, C = p.C, CP = (C + CB - 1) / CB * CB, nchunk = (n + CHUNK - 1) / CHUNK;
  vr_status st = VR_OK;
  double *mean = calloc((size_t)d, sizeof(double)), *sd = calloc((size_t)d, sizeof(double));
  double *theta = calloc((size_t)(d * C + C), sizeof(double)), *lpart = calloc((size_t)nchunk, sizeof(double));
  float *logits = malloc(sizeof(float) * (size_t)(m * C)), *wf = malloc(sizeof(float) * (size_t)(d * C));
  float *wp = malloc(sizeof(float) * (size_t)(d * CP + CP));
  float *gpart = malloc(sizeof(float) * (size_t)(nchunk * (d * CP + CP)));
  if (!mean || !sd || !theta || !lpart || !logits || !wf || !wp || !gpart) {
    st = VR_FAIL(VR_E_OOM, "train_x: out of host memory for a %lld x %lld probe", (long long)d, (long long)C);
    goto done;
  }
  moments(p.xtr, n, d, mean, sd);
  standardise(p.xtr, n, d, mean, sd);
  standardise(p.xte, m, d, mean, sd);
  lr_prob lp = {p.xtr, p.ytr, n, d, (int)C, (int)CP, l2, wp, wp + d * CP, gpart, lpart, nchunk};
  int stopped = 0, iters = lbfgs(&lp, theta, d * C + C, max_iter ? max_iter : 300, &stopped);
  if (stopped) {
    vr_interrupt_clear();
    st = vr_error_set(VR_E_INTERRUPTED, func, __FILE__, __LINE__, "interrupted after %d L-BFGS iterations", iters);
    goto done;
  }
  for (int64_t k = 0; k < d * C; k++) wf[k] = (float)theta[k];
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)C, (int)d, 1.0f, p.xte, (int)d, wf, (int)C, 0.0f,
              logits, (int)C);
  int64_t *out = NULL;
  if (pred) {
    if ((st = vr_tensor_empty(1, &m, VR_I64, VR_CPU, pred))) goto done;
    out = vr_tensor_data(*pred);
  }
  int64_t correct = 0;
  for (int64_t i = 0; i < m; i++) {
    int64_t best = 0;
    for (int64_t c = 1; c < C; c++)
      if (logits[i * C + c] + theta[d * C + c] > logits[i * C + best] + theta[d * C + best]) best = c;
    correct += best == p.yte[i];
    if (out) out[i] = best;
  }
  if (accuracy) *accuracy = (double)correct / (double)m;
done:
  free(mean);
  free(sd);
  free(theta);
  free(lpart);
  free(logits);
  free(wf);
  free(wp);
  free(gpart);
  probe_free(&p);
  return st;
}

vr_status vr_linear_probe(const vr_tensor *train_x, const vr_tensor *train_y, const vr_tensor *test_x,
                          const vr_tensor *test_y, int num_classes, double l2, int max_iter, double *accuracy) {
  if (!accuracy) return VR_FAIL(VR_E_ARG, "accuracy: expected an output pointer, got NULL");
  return linear_probe(__func__, train_x, train_y, test_x, test_y, num_classes, l2, max_iter, NULL, accuracy);
}

vr_status vr_linear_probe_classify(const vr_tensor *train_x, const vr_tensor *train_y, const vr_tensor *test_x,
                                   const vr_tensor *test_y, int num_classes, double l2, int max_iter, vr_tensor **pred,
                                   double *accuracy) {
  return linear_probe(__func__, train_x, train_y, test_x, test_y, num_classes, l2, max_iter, pred, accuracy);
}

/* ---------------------------------------------------------------- kNN */

static void l2_normalise(float *x, int64_t n, int64_t d) {
  for (int64_t i = 0; i < n; i++) {
    double s = 0;
    for (int64_t k = 0; k < d; k++) s += (double)x[i * d + k] * x[i * d + k];
    float inv = (float)(1 / fmax(sqrt(s), 1e-12));
    for (int64_t k = 0; k < d; k++) x[i * d + k] *= inv;
  }
}

vr_status vr_knn_probe(const vr_tensor *train_x, const vr_tensor *train_y, const vr_tensor *test_x,
                       const vr_tensor *test_y, int num_classes, int k, double temperature, double *accuracy) {
  if (!accuracy) return VR_FAIL(VR_E_ARG, "accuracy: expected an output pointer, got NULL");
  return vr_knn_classify(train_x, train_y, test_x, test_y, num_classes, k, temperature, NULL, accuracy);
}

vr_status vr_knn_classify(const vr_tensor *train_x, const vr_tensor *train_y, const vr_tensor *test_x,
                          const vr_tensor *test_y, int num_classes, int k, double temperature, vr_tensor **pred,
                          double *accuracy) {
  if (k < 1 || k > 1000) return VR_FAIL(VR_E_ARG, "k: expected 1..1000, got %d", k);
  if (!(temperature > 0) || !isfinite(temperature))
    return VR_FAIL(VR_E_ARG, "temperature: expected a finite value > 0, got %g", temperature);
  probe_in p;
  VR_TRY(probe_load(__func__, train_x, train_y, test_x, test_y, num_classes, &p));
  int64_t n = p.n, m = p.m, d = p.d, C = p.C, kk = k < n ? k : n;
  const int64_t chunk = 256;
  vr_status st = VR_OK;
  float *sim = malloc(sizeof(float) * (size_t)(chunk * n));
  if (!sim) {
    probe_free(&p);
    return VR_FAIL(VR_E_OOM, "train_x: out of host memory for a %lld x %lld similarity block", (long long)chunk,
                   (long long)n);
  }
  int64_t *out = NULL;
  if (pred) {
    *pred = NULL;
    if ((st = vr_tensor_empty(1, &m, VR_I64, VR_CPU, pred))) {
      free(sim);
      probe_free(&p);
      return st;
    }
    out = vr_tensor_data(*pred);
  }
  l2_normalise(p.xtr, n, d);
  l2_normalise(p.xte, m, d);
  int64_t correct = 0;
  for (int64_t r0 = 0; r0 < m; r0 += chunk) {
    if ((st = VR_INTERRUPTED("during the kNN search"))) break;
    int64_t rows = m - r0 < chunk ? m - r0 : chunk;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)n, (int)d, 1.0f, p.xte + r0 * d, (int)d,
                p.xtr, (int)d, 0.0f, sim, (int)n);
#pragma omp parallel for reduction(+ : correct) schedule(dynamic, 8)
    for (int64_t r = 0; r < rows; r++) {
      const float *s = sim + r * n;
      float topv[1000];
      int64_t topi[1000];
      int64_t have = 0;
      /* the kk largest, kept sorted in descending order (ties: lower index first) */
      for (int64_t j = 0; j < n; j++) {
        float v = s[j];
        if (have == kk && v <= topv[kk - 1]) continue;
        int64_t pos = have < kk ? have++ : kk - 1;
        while (pos > 0 && topv[pos - 1] < v) {
          topv[pos] = topv[pos - 1];
          topi[pos] = topi[pos - 1];
          pos--;
        }
        topv[pos] = v;
        topi[pos] = j;
      }
      double votes[1024], *vv = votes;
      double *heap = NULL;
      if (C > 1024) vv = heap = calloc((size_t)C, sizeof(double));
      if (!vv) continue;
      for (int64_t c = 0; c < C; c++) vv[c] = 0;
      for (int64_t t = 0; t < have; t++) vv[p.ytr[topi[t]]] += exp(topv[t] / temperature);
      int64_t best = 0;
      for (int64_t c = 1; c < C; c++)
        if (vv[c] > vv[best]) best = c;
      correct += best == p.yte[r0 + r];
      if (out) out[r0 + r] = best;
      free(heap);
    }
  }
  if (!st && accuracy) *accuracy = (double)correct / (double)m;
  free(sim);
  probe_free(&p);
  return st;
}
