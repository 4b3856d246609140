/* cmd_loss.c: `visreg loss METHOD --z Z.npy ...`: evaluates one regularizer on a V x B x D array
 * (.npy, float32 or float64, computed in that dtype), optionally mixed with the invariance term,
 * writes dL/dz with --grad-out and prints one JSON line: the loss, the method's terms, and the
 * Frobenius norm of dL/dz. Non-finite inputs (--z, --slices) are refused; a result that is not
 * finite (an overflow) is printed as null, with the reason in "error", and the status is 1. */
#include "../core/visreg.h"
#include "commands.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f) {
  fprintf(f,
          "usage: visreg loss METHOD --z Z.npy [options]\n"
          "  METHOD            visreg, swd, sigreg, vicreg, barlow (vicreg_pooled: vicreg --pooled)\n"
          "  --z Z.npy         V x B x D projections, float32 or float64 (the loss is computed in that dtype)\n"
          "  --slices G.npy    raw D x K slice matrix (each method normalises its columns); default: drawn\n"
          "  --K K             slices drawn from Philox (seed, step) when --slices is absent (default 1024)\n"
          "  --seed S --step T the key of the drawn slices (default 0, 0)\n"
          "  --weights LIST    visreg: scale,shape,center (1,1,1); vicreg: inv,var,cov (25,25,1);\n"
          "                    vicreg --pooled: var,cov (25,1); barlow: offdiag (0.0051)\n"
          "  --pooled          vicreg: the VISReg code's pooled squared-hinge variant\n"
          "  --knots N --t-max T   sigreg quadrature (17, 3)\n"
          "  --lambda L        mix: L * loss + (1 - L) * invariance\n"
          "  --global-views G  views averaged for the invariance target (default min(2, V))\n"
          "  --grad-out F.npy  write dL/dz (z's shape and dtype)\n");
}

static int parse_list(const char *s, double *w, int max) {
  int n = 0;
  char *end = NULL;
  while (*s && n < max) {
    w[n++] = strtod(s, &end);
    if (end == s) return -1;
    s = end;
    if (*s == ',') s++;
    else if (*s) return -1;
  }
  return *s ? -1 : n;
}

/* the first element of t that is NaN or infinite: 1 and its index and value, 0 when all are finite
 * (-1 when t cannot be read) */
static int first_nonfinite(const vr_tensor *t, int64_t *at, double *val) {
  int all = 1;
  if (vr_isfinite_all(t, &all)) return -1;
  if (all) return 0;
  vr_tensor *t64 = NULL;
  int64_t n = vr_tensor_numel(t);
  double *buf = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
  int found = -1;
  if (buf && !vr_tensor_to_dtype(t, VR_F64, &t64) && !vr_tensor_to_buffer(t64, buf, sizeof(double) * (size_t)n)) {
    found = 0;
    for (int64_t k = 0; k < n && !found; k++)
      if (!isfinite(buf[k])) *at = k, *val = buf[k], found = 1;
  }
  free(buf);
  vr_tensor_free(t64);
  return found;
}

/* a JSON number, or null (noting name in the list of non-finite results) */
static char bad[256];
static void put_num(const char *name, double v) {
  if (isfinite(v)) {
    printf("%.17g", v);
    return;
  }
  printf("null");
  size_t len = strlen(bad);
  snprintf(bad + len, sizeof bad - len, "%s%s (%s)", len ? ", " : "", name, isnan(v) ? "nan" : v > 0 ? "inf" : "-inf");
}

static int fail(const char *what) {
  fprintf(stderr, "visreg loss: %s%s%s\n", what, *vr_last_error() ? ": " : "", vr_last_error());
  return 1;
}

int vr_cmd_loss(int argc, char **argv) {
  if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const char *method = argv[1], *zpath = NULL, *gpath = NULL, *gout = NULL, *wlist = NULL;
  long long K = 1024, knots = 17, global = -1;
  unsigned long long seed = 0, step = 0;
  double lambda = NAN, tmax = 3.0;
  int pooled = 0;
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--pooled")) {
      pooled = 1;
      continue;
    }
    if (!v) {
      fprintf(stderr, "visreg loss: %s needs a value\n", a);
      return 2;
    }
    i++;
    char *end = NULL;
    if (!strcmp(a, "--z")) zpath = v;
    else if (!strcmp(a, "--slices")) gpath = v;
    else if (!strcmp(a, "--grad-out")) gout = v;
    else if (!strcmp(a, "--weights")) wlist = v;
    else if (!strcmp(a, "--K")) K = strtoll(v, &end, 10);
    else if (!strcmp(a, "--seed")) seed = strtoull(v, &end, 10);
    else if (!strcmp(a, "--step")) step = strtoull(v, &end, 10);
    else if (!strcmp(a, "--knots")) knots = strtoll(v, &end, 10);
    else if (!strcmp(a, "--t-max")) tmax = strtod(v, &end);
    else if (!strcmp(a, "--lambda")) lambda = strtod(v, &end);
    else if (!strcmp(a, "--global-views")) global = strtoll(v, &end, 10);
    else {
      fprintf(stderr, "visreg loss: unknown option '%s'\n", a);
      usage(stderr);
      return 2;
    }
    if (end && (*end || end == v)) {
      fprintf(stderr, "visreg loss: %s: expected a number, got '%s'\n", a, v);
      return 2;
    }
  }
  if (!strcmp(method, "vicreg_pooled") || !strcmp(method, "vicreg_repo")) { /* vicreg_repo: its former name */
    method = "vicreg";
    pooled = 1;
  }
  int m = !strcmp(method, "visreg") ? 0 : !strcmp(method, "swd") ? 1 : !strcmp(method, "sigreg") ? 2
        : !strcmp(method, "vicreg") ? 3 : !strcmp(method, "barlow") ? 4 : -1;
  if (m < 0) {
    fprintf(stderr, "visreg loss: METHOD: expected visreg, swd, sigreg, vicreg or barlow, got '%s'\n", method);
    return 2;
  }
  if (!zpath) {
    fprintf(stderr, "visreg loss: --z: expected a V x B x D .npy file\n");
    return 2;
  }
  if (!isnan(lambda) && !(lambda >= 0 && lambda <= 1)) {
    fprintf(stderr, "visreg loss: --lambda: expected 0 <= lambda <= 1, got %g\n", lambda);
    return 2;
  }
  if (knots < 2 || knots > 4096) {
    fprintf(stderr, "visreg loss: --knots: expected 2 <= knots <= 4096, got %lld\n", knots);
    return 2;
  }
  /* default weights per method, overridden by --weights */
  double w[3] = {1, 1, 1};
  int nw_expect = 3;
  if (m == 3 && !pooled) w[0] = 25, w[1] = 25, w[2] = 1;
  if (m == 3 && pooled) w[0] = 25, w[1] = 1, nw_expect = 2;
  if (m == 4) w[0] = 0.0051, nw_expect = 1;
  if (m == 1 || m == 2) nw_expect = 0;
  if (wlist) {
    double ws[3];
    int n = parse_list(wlist, ws, 3);
    if (n != nw_expect) {
      fprintf(stderr, "visreg loss: --weights: expected %d comma-separated numbers for %s%s, got '%s'\n", nw_expect,
              method, pooled ? " --pooled" : "", wlist);
      return 2;
    }
    for (int k = 0; k < n; k++) w[k] = ws[k];
  }

  int rc = 1;
  vr_tensor *z = NULL, *G = NULL, *L = NULL, *T = NULL, *I = NULL, *a = NULL, *b = NULL, *tot = NULL, *g = NULL;
  if (vr_npy_load(zpath, &z)) { rc = fail(zpath); goto done; }
  if (vr_tensor_dtype(z) != VR_F32 && vr_tensor_dtype(z) != VR_F64) {
    fprintf(stderr, "visreg loss: %s: expected float32 or float64, got %s\n", zpath, vr_dtype_name(vr_tensor_dtype(z)));
    goto done;
  }
  if (gpath && vr_npy_load(gpath, &G)) { rc = fail(gpath); goto done; }
  for (int k = 0; k < 2; k++) { /* NaN or infinity in an input is refused, naming where it is */
    const vr_tensor *in = k ? G : z;
    int64_t at = 0;
    double val = 0;
    int found = in ? first_nonfinite(in, &at, &val) : 0;
    if (found < 0) { rc = fail(k ? gpath : zpath); goto done; }
    if (found) {
      fprintf(stderr, "visreg loss: %s %s: expected finite values, got %s at element %lld\n", k ? "--slices" : "--z",
              k ? gpath : zpath, isnan(val) ? "nan" : val > 0 ? "inf" : "-inf", (long long)at);
      goto done;
    }
  }
  if (vr_tensor_set_requires_grad(z, 1)) { rc = fail("z"); goto done; }
  int64_t V = vr_tensor_ndim(z) == 3 ? vr_tensor_size(z, 0) : 0;
  int gv = global > 0 ? (int)global : (V >= 2 ? 2 : 1);
  vr_status st;
  const char *tnames[3] = {NULL, NULL, NULL};
  int nt = 0;
  switch (m) {
  case 0:
    st = vr_visreg(z, G, G ? 0 : K, seed, step, w[0], w[1], w[2], &L, &T);
    tnames[0] = "center", tnames[1] = "scale", tnames[2] = "shape", nt = 3;
    break;
  case 1: st = vr_swd(z, G, G ? 0 : K, seed, step, &L); break;
  case 2: st = vr_sigreg(z, G, G ? 0 : K, seed, step, (int)knots, tmax, &L); break;
  case 3:
    if (pooled) {
      st = vr_vicreg_pooled(z, w[0], w[1], &L, &T);
      tnames[0] = "var", tnames[1] = "cov", nt = 2;
    } else {
      st = vr_vicreg(z, w[0], w[1], w[2], &L, &T);
      tnames[0] = "inv", tnames[1] = "var", tnames[2] = "cov", nt = 3;
    }
    break;
  default: st = vr_barlow(z, w[0], &L); break;
  }
  if (st) { rc = fail(method); goto done; }
  vr_tensor *root = L;
  if (!isnan(lambda)) {
    if (vr_invariance(z, gv, &I) || vr_mul_scalar(L, lambda, &a) || vr_mul_scalar(I, 1 - lambda, &b) ||
        vr_add(a, b, &tot)) {
      rc = fail("invariance");
      goto done;
    }
    root = tot;
  }
  if (vr_backward(root, NULL, 0)) { rc = fail("backward"); goto done; }
  g = vr_tensor_grad(z);
  if (!g) { fprintf(stderr, "visreg loss: no gradient reached z\n"); goto done; }
  int64_t n = vr_tensor_numel(g);
  double *gv64 = malloc(sizeof(double) * (size_t)n), gn = 0, v = 0;
  vr_tensor *g64 = NULL;
  if (!gv64 || vr_tensor_to_dtype(g, VR_F64, &g64) || vr_tensor_to_buffer(g64, gv64, sizeof(double) * (size_t)n)) {
    free(gv64);
    vr_tensor_free(g64);
    rc = fail("grad");
    goto done;
  }
  for (int64_t k = 0; k < n; k++) gn += gv64[k] * gv64[k];
  if (!isfinite(gn)) { /* the norm of a gradient that overflowed: say which */
    int any = 0;
    for (int64_t k = 0; k < n && !any; k++) any = !isfinite(gv64[k]);
    if (!any) gn = INFINITY; /* finite parts whose squares overflow a double */
  }
  free(gv64);
  vr_tensor_free(g64);
  if (gout && vr_npy_save(gout, g)) { rc = fail(gout); goto done; }
  vr_tensor_item(root, &v);
  printf("{\"method\": \"%s%s\", \"dtype\": \"%s\", \"V\": %lld, \"B\": %lld, \"D\": %lld", m == 3 && pooled ? "vicreg_pooled" : method,
         "", vr_tensor_dtype(z) == VR_F32 ? "float32" : "float64", (long long)V, (long long)vr_tensor_size(z, 1),
         (long long)vr_tensor_size(z, 2));
  if (m <= 2) printf(", \"K\": %lld", (long long)(G ? vr_tensor_size(G, 1) : K));
  bad[0] = 0;
  printf(", \"loss\": ");
  put_num("loss", v);
  if (nt) {
    double tv[3] = {0, 0, 0};
    vr_tensor *t64 = NULL;
    if (!vr_tensor_to_dtype(T, VR_F64, &t64)) vr_tensor_to_buffer(t64, tv, sizeof(double) * (size_t)nt);
    vr_tensor_free(t64);
    printf(", \"terms\": {");
    for (int k = 0; k < nt; k++) {
      printf("%s\"%s\": ", k ? ", " : "", tnames[k]);
      char tn[32];
      snprintf(tn, sizeof tn, "terms.%s", tnames[k]);
      put_num(tn, tv[k]);
    }
    printf("}");
  }
  if (!isnan(lambda)) {
    double r = 0, iv = 0;
    vr_tensor_item(L, &r);
    vr_tensor_item(I, &iv);
    printf(", \"lambda\": %.17g, \"global_views\": %d, \"reg\": ", lambda, gv);
    put_num("reg", r);
    printf(", \"inv\": ");
    put_num("inv", iv);
  }
  printf(", \"grad_norm\": ");
  put_num("grad_norm", sqrt(gn));
  rc = 0;
  if (bad[0]) { /* an overflow: null above, the reason here and on stderr, status 1 */
    printf(", \"error\": \"not finite: %s; the computation overflowed %s\"", bad,
           vr_tensor_dtype(z) == VR_F32 ? "float32" : "float64");
    fprintf(stderr, "visreg loss: not finite: %s (the computation overflowed %s)\n", bad,
            vr_tensor_dtype(z) == VR_F32 ? "float32" : "float64");
    rc = 1;
  }
  printf("}\n");
done:;
  vr_tensor *objs[] = {z, G, L, T, I, a, b, tot, g};
  for (size_t k = 0; k < sizeof objs / sizeof *objs; k++) vr_tensor_free(objs[k]);
  return rc;
}
