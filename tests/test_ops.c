/* test_ops.c: every op of the kernel table on every backend, from the cases of tests/ops_table.h.
 *
 * For each case and each of its dtypes, the front-end call runs on the CPU and on each other
 * backend (CUDA when a GPU is present; VISREG_TEST_CUDA_AS_CPU=1 runs that pass on the CPU, which
 * checks the harness without a GPU) on the same values and layouts; outputs, and the gradients of
 * the case's inputs for one fixed random output weighting, must agree with the CPU's (outputs bit
 * for bit for EXACT cases; a backend without a kernel the call needs skips the case with a SKIP
 * line; tools/cuda-emu/run test_ops runs the CUDA kernels emulated on the CPU). On the CPU, f32 and bf16 results must agree with f64 within the case's
 * tolerance, and gradients small enough are checked against central finite differences in f64.
 * The coverage case fails when a registered (op, device) kernel has no case, or a backward kernel
 * has no case whose gradient goes through finite differences.
 *
 * Tolerances (|x - ref| <= tol (1 + |ref|)): f64 1e-10 across devices; f32 1e-4 (or the case's);
 * bf16 one rounding step (1/128) across devices, 1/32 against f64; gradients ten times that.
 * VISREG_TEST_ONLY=w1,w2 runs only the cases whose name holds one of the words; VISREG_TEST_VERBOSE=1 prints each comparison's worst
 * difference. */
#include "ops_table.h"

static int selected(const char *name) {
  const char *only = getenv("VISREG_TEST_ONLY");
  if (!only || !*only) return 1;
  char words[256];
  snprintf(words, sizeof words, "%s", only);
  for (char *save = NULL, *w = strtok_r(words, ",", &save); w; w = strtok_r(NULL, ",", &save))
    if (strstr(name, w)) return 1;
  return 0;
}

/* ---- inputs ---- */
static vr_dtype input_dtype(const op_in *s, vr_dtype dt) {
  return s->kind == K_IX ? VR_I64 : s->kind == K_IX32 ? VR_I32 : s->kind == K_MK || s->kind == K_U8 ? VR_U8 : dt;
}

/* input k of case c in dtype dt on dev, laid out as its spec says (flat: contiguous instead of a
 * broadcast, for finite differences); the values depend on (case, k) only */
static vr_tensor *make_input(int ci, int k, vr_dtype dt, vr_device dev, int flat) {
  const op_in *s = &OP_CASES[ci].in[k];
  int nd = s->ndim, layout = s->layout;
  if (flat && layout == L_B) layout = L_C;
  int64_t st[4];
  memcpy(st, s->shape, sizeof st);
  if (layout == L_T && nd >= 2) { st[nd - 1] = s->shape[nd - 2]; st[nd - 2] = s->shape[nd - 1]; }
  if (layout == L_B) st[0] = 1;
  int64_t n = vr_numel_of(nd, st), n1 = n + (layout == L_O);
  vr_generator *g = NULL;
  vr_tensor *v = NULL, *t = NULL, *d = NULL, *out = NULL;
  OK(vr_generator_new(1000 + (uint64_t)ci * 8 + (uint64_t)k, 17, &g));
  OK(vr_rand_uniform(g, 1, &n1, s->lo, s->hi, VR_F64, VR_CPU, &v));
  vr_generator_free(g);
  double *x = vr_tensor_data(v);
  for (int64_t e = 0; e < n1; e++) {
    if (s->kind == K_W || s->kind == K_IX || s->kind == K_IX32 || s->kind == K_U8) x[e] = floor(x[e]);
    if (s->kind == K_MK) x[e] = x[e] < 1 ? 0 : 1;
    if (s->kind == K_S && e % 7 == 0) {
      static const double sp[5] = {NAN, -0.0, 0.0, INFINITY, -INFINITY};
      x[e] = sp[(e / 7) % 5];
    }
  }
  OK(vr_tensor_to_dtype(v, input_dtype(s, dt), &t));
  OK(vr_tensor_to_device(t, dev, &d));
  int64_t str[4];
  int64_t m = 1;
  for (int i = nd - 1; i >= 0; i--) str[i] = m, m *= st[i];
  if (layout == L_O) {
    OK(vr_tensor_view_raw(d, nd, st, str, 1, &out));
  } else if (layout == L_T && nd >= 2) {
    vr_tensor *c = NULL;
    OK(vr_tensor_view_raw(d, nd, st, str, 0, &c));
    OK(vr_transpose(c, -1, -2, &out));
    vr_tensor_free(c);
  } else if (layout == L_B) {
    vr_tensor *c = NULL;
    OK(vr_tensor_view_raw(d, nd, st, str, 0, &c));
    OK(vr_expand(c, nd, s->shape, &out));
    vr_tensor_free(c);
  } else {
    OK(vr_tensor_view_raw(d, nd, st, str, 0, &out));
  }
  vr_tensor_free(v);
  vr_tensor_free(t);
  vr_tensor_free(d);
  return out;
}

/* ---- one run: outputs and gradients as f64 host values ---- */
typedef struct op_result {
  int64_t n, gn[6];
  double *v, *g[6];
} op_result;

static void result_free(op_result *r) {
  free(r->v);
  for (int k = 0; k < 6; k++) free(r->g[k]);
  memset(r, 0, sizeof *r);
}

/* runs case ci in dt on dev into r; 0 (with a SKIP line) when dev has no kernel for an op the
 * case's call or its backward needs besides its own (a build without that kernel) */
static int run_case(int ci, vr_dtype dt, vr_device dev, op_result *r) {
  const op_case *c = &OP_CASES[ci];
  memset(r, 0, sizeof *r);
  op_env env = {dev, dt};
  vr_tensor *in[6] = {0};
  int prev = vr_set_grad_enabled(0);
  for (int k = 0; k < c->n_in; k++) in[k] = make_input(ci, k, dt, dev, 0);
  vr_set_grad_enabled(prev);
  int grad = c->grad && vr_is_float(dt);
  for (int k = 0; k < c->n_in; k++)
    if (grad && ((c->grad >> k) & 1)) OK(vr_tensor_set_requires_grad(in[k], 1));
  vr_tensor *o = NULL;
  vr_status s = c->fn(in, &env, &o);
  if (s == VR_E_UNSUPPORTED && dev != VR_CPU) {
    printf("SKIP %s %s on %s: %s\n", c->name, vr_dtype_name(dt), vr_device_name(dev), vr_last_error());
    for (int k = 0; k < c->n_in; k++) vr_tensor_free(in[k]);
    return 0;
  }
  ck_assert_msg(s == VR_OK, "%s %s on %s: %s", c->name, vr_dtype_name(dt), vr_device_name(dev), vr_last_error());
  ck_assert_msg(vr_tensor_device(o) == dev, "%s: result on %s, expected %s", c->name,
                vr_device_name(vr_tensor_device(o)), vr_device_name(dev));
  r->n = vr_tensor_numel(o);
  r->v = tu_values(o);
  if (grad) {
    int64_t shape[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    for (int d = 0; d < vr_tensor_ndim(o); d++) shape[d] = vr_tensor_size(o, d);
    vr_tensor *w = tu_rand(VR_F64, vr_tensor_ndim(o), shape, 99), *wt = NULL, *wd = NULL;
    OK(vr_tensor_to_dtype(w, vr_tensor_dtype(o), &wt));
    OK(vr_tensor_to_device(wt, dev, &wd));
    s = vr_backward(o, wd, 0);
    if (s == VR_E_UNSUPPORTED && dev != VR_CPU) {
      printf("SKIP %s %s backward on %s: %s\n", c->name, vr_dtype_name(dt), vr_device_name(dev), vr_last_error());
      vr_tensor *objs[] = {w, wt, wd, o};
      for (int k = 0; k < 4; k++) vr_tensor_free(objs[k]);
      for (int k = 0; k < c->n_in; k++) vr_tensor_free(in[k]);
      result_free(r);
      return 0;
    }
    ck_assert_msg(s == VR_OK, "%s %s backward on %s: %s", c->name, vr_dtype_name(dt), vr_device_name(dev), vr_last_error());
    for (int k = 0; k < c->n_in; k++) {
      if (!((c->grad >> k) & 1)) continue;
      vr_tensor *gk = vr_tensor_grad(in[k]);
      ck_assert_msg(gk != NULL, "%s: input %d got no gradient", c->name, k);
      r->gn[k] = vr_tensor_numel(gk);
      r->g[k] = tu_values(gk);
      vr_tensor_free(gk);
    }
    vr_tensor_free(w);
    vr_tensor_free(wt);
    vr_tensor_free(wd);
  }
  vr_tensor_free(o);
  for (int k = 0; k < c->n_in; k++) vr_tensor_free(in[k]);
  return 1;
}

/* |x - ref| <= tol (1 + |ref|) elementwise; NaN matches NaN, equal infinities match, and with
 * tol 0 the sign of zero must match too */
static void compare(const char *what, const double *x, const double *ref, int64_t n, double tol) {
  double worst = 0;
  for (int64_t e = 0; e < n; e++) {
    if (isnan(x[e]) && isnan(ref[e])) continue;
    double d = x[e] == ref[e] ? 0 : fabs(x[e] - ref[e]);
    if ((d != 0 && !(d <= tol * (1 + fabs(ref[e])))) || (tol == 0 && signbit(x[e]) != signbit(ref[e])))
      ck_abort_msg("%s: element %lld: %.17g vs %.17g (tolerance %g)", what, (long long)e, x[e], ref[e], tol);
    if (d > worst) worst = d;
  }
  if (getenv("VISREG_TEST_VERBOSE")) printf("  %-72s max |diff| %.3g\n", what, worst);
}

static void compare_results(const char *what, const op_result *a, const op_result *ref, double tol, double gtol) {
  char buf[200];
  ck_assert_msg(a->n == ref->n, "%s: %lld elements vs %lld", what, (long long)a->n, (long long)ref->n);
  compare(what, a->v, ref->v, a->n, tol);
  for (int k = 0; k < 6; k++)
    if (ref->g[k]) {
      snprintf(buf, sizeof buf, "%s, gradient of input %d", what, k);
      ck_assert_msg(a->g[k] && a->gn[k] == ref->gn[k], "%s: missing or misshapen", buf);
      compare(buf, a->g[k], ref->g[k], a->gn[k], gtol);
    }
}

/* the tolerance across devices in dtype dt; outputs of EXACT cases must match bit for bit, their
 * gradients (sums over broadcast dimensions, in each device's order) within it */
static double dtype_tol(const op_case *c, vr_dtype dt) {
  if (dt == VR_F64) return 1e-10;
  if (dt == VR_BF16) return 1.0 / 128;
  return c->tol > 0 ? c->tol : 1e-4;
}

/* finite differences are affordable: at most 2000 perturbed elements, each a forward */
static int fd_affordable(const op_case *c) {
  if (!c->grad || (c->flags & NO_FD) || !(c->dtypes & D_(VR_F64))) return 0;
  int64_t perturbed = 0, total = 0;
  for (int k = 0; k < c->n_in; k++) {
    int64_t n = vr_numel_of(c->in[k].ndim, c->in[k].shape);
    total += n;
    if ((c->grad >> k) & 1) perturbed += n;
  }
  return perturbed <= 2000 && perturbed * total <= 4000000;
}

START_TEST(test_case) {
  const op_case *c = &OP_CASES[_i];
  if (!selected(c->name)) return;
  int other = tu_dev_present(); /* the CPU, then DEV */
  char what[200];
  op_result f64 = {0};
  if (c->dtypes & D_(VR_F64)) run_case(_i, VR_F64, VR_CPU, &f64);
  for (vr_dtype dt = VR_F32; dt <= VR_BF16; dt++) {
    if (!(c->dtypes & D_(dt))) continue;
    op_result cpu = {0}, dev = {0};
    if (dt == VR_F64) cpu = f64;
    else run_case(_i, dt, VR_CPU, &cpu);
    /* f32 and bf16 against f64 on the CPU */
    if ((dt == VR_F32 || dt == VR_BF16) && f64.v && !(c->flags & NO_REF) && !(dt == VR_BF16 && (c->flags & NO_REF_BF16))) {
      snprintf(what, sizeof what, "%s: cpu %s against f64", c->name, vr_dtype_name(dt));
      double tol = dt == VR_BF16 ? 1.0 / 32 : c->tol > 0 ? c->tol : 1e-4;
      compare_results(what, &cpu, &f64, tol, tol * 10);
    }
    /* the other backend against the CPU in the same dtype */
    if (!other) {
      if (dt == VR_F32 && _i == 0) printf("SKIP %s: no CUDA device\n", "test_ops on cuda");
    } else if (!vr_kernel_exists(c->op, DEV, 0)) {
      printf("SKIP %s: no %s kernel for %s\n", c->name, vr_device_name(DEV), vr_op_name(c->op));
    } else {
      snprintf(what, sizeof what, "%s: %s %s against cpu", c->name, DEV == VR_CPU ? "cuda-as-cpu" : "cuda", vr_dtype_name(dt));
      if (run_case(_i, dt, DEV, &dev))
        compare_results(what, &dev, &cpu, (c->flags & EXACT) ? 0 : dtype_tol(c, dt), dtype_tol(c, dt) * 10);
      result_free(&dev);
    }
    if (dt != VR_F64) result_free(&cpu);
  }
  result_free(&f64);
  /* finite differences in f64 on the CPU */
  if (fd_affordable(c)) {
    vr_tensor *in[6] = {0};
    op_env env = {VR_CPU, VR_F64};
    for (int k = 0; k < c->n_in; k++) in[k] = make_input(_i, k, VR_F64, VR_CPU, 1);
    tu_gradcheck(c->name, c->n_in, in, c->grad, c->fn, &env, 1e-6, 1e-5);
    for (int k = 0; k < c->n_in; k++) vr_tensor_free(in[k]);
  }
}
END_TEST

/* every registered kernel has a case; every backward kernel a case through finite differences */
START_TEST(test_coverage) {
  char missing[4096] = "";
  size_t used = 0;
  int cases = 0, fd = 0;
  for (int op = 0; op < VR_OP_COUNT; op++)
    for (vr_device dev = VR_CPU; dev <= VR_CUDA; dev++)
      for (int bwd = 0; bwd < 2; bwd++) {
        if (!vr_kernel_exists((vr_op)op, dev, bwd)) continue;
        int found = 0;
        for (int k = 0; k < N_OP_CASES && !found; k++)
          found = (int)OP_CASES[k].op == op && (!bwd || fd_affordable(&OP_CASES[k]));
        if (!found && used < sizeof missing - 80)
          used += (size_t)snprintf(missing + used, sizeof missing - used, " %s%s on %s;", vr_op_name((vr_op)op),
                                   bwd ? " backward (a case with finite differences)" : "", vr_device_name(dev));
      }
  for (int k = 0; k < N_OP_CASES; k++) {
    cases++;
    fd += fd_affordable(&OP_CASES[k]);
    ck_assert_msg(vr_kernel_exists(OP_CASES[k].op, VR_CPU, 0), "case %s: %s has no CPU kernel to compare with",
                  OP_CASES[k].name, vr_op_name(OP_CASES[k].op));
  }
  ck_assert_msg(used == 0, "registered kernels without a case in tests/ops_table.h:%s", missing);
  printf("test_ops: %d cases, %d with finite differences\n", cases, fd);
}
END_TEST

static Suite *ops_suite(void) {
  Suite *s = suite_create("ops");
  TCase *tc = tcase_create("ops");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, test_coverage);
  tcase_add_loop_test(tc, test_case, 0, N_OP_CASES);
  suite_add_tcase(s, tc);
  return s;
}

VR_TEST_MAIN(ops_suite)
