/* autograd.c: the define-by-run tape. Ops record nodes (vr_record); vr_backward walks them in
 * topological order, accumulating gradients into non-leaf nodes and the .grad of leaves. */
#include "internal.h"
#include <stdlib.h>
#include <string.h>

static _Thread_local int grad_disabled; /* 0: grad mode on */
static uint64_t epoch_counter;

int vr_grad_enabled(void) { return !grad_disabled; }
int vr_set_grad_enabled(int enabled) {
  int prev = !grad_disabled;
  grad_disabled = !enabled;
  return prev;
}

bool vr_needs_grad(int n, const vr_tensor *const *ts) {
  if (grad_disabled) return false;
  for (int i = 0; i < n; i++)
    if (ts[i] && ts[i]->requires_grad) return true;
  return false;
}

/* ---------------------------------------------------------------- nodes */

vr_status vr_node_new(const char *name, vr_backward_fn bw, int n_in, const vr_tensor *const *inputs, vr_node **out) {
  if (n_in > VR_NODE_MAX_IN) return VR_FAIL(VR_E_INTERNAL, "%s: %d inputs, at most %d", name, n_in, VR_NODE_MAX_IN);
  vr_node *n = calloc(1, sizeof *n);
  if (!n) return VR_FAIL(VR_E_OOM, "node: out of host memory");
  n->refcount = 1;
  n->name = name;
  n->backward = bw;
  n->n_in = n_in;
  for (int k = 0; k < n_in; k++) {
    vr_tensor *t = (vr_tensor *)inputs[k];
    if (!t) continue;
    vr_edge *e = &n->in[k];
    e->ndim = t->ndim;
    memcpy(e->shape, t->shape, sizeof e->shape);
    e->dtype = t->dtype;
    if (!t->requires_grad) continue;
    if (t->grad_fn) {
      e->fn = t->grad_fn;
      __atomic_add_fetch(&e->fn->refcount, 1, __ATOMIC_RELAXED);
    } else {
      e->leaf = t;
      vr_tensor_retain(t);
    }
  }
  *out = n;
  return VR_OK;
}

int vr_node_save(vr_node *n, const vr_tensor *t) {
  int k = n->n_saved++;
  n->saved[k] = (vr_tensor *)t;
  if (t) {
    vr_tensor_retain((vr_tensor *)t);
    n->saved_version[k] = t->storage->version;
  }
  return k;
}

vr_status vr_node_saved(vr_node *n, int k, vr_tensor **t) {
  if (n->released)
    return VR_FAIL(VR_E_AUTOGRAD, "%s: its saved tensors were freed by an earlier backward; pass retain_graph to "
                   "backward twice", n->name);
  if (k < 0 || k >= n->n_saved) return VR_FAIL(VR_E_INTERNAL, "%s: no saved tensor %d", n->name, k);
  vr_tensor *s = n->saved[k];
  if (s && s->storage->version != n->saved_version[k])
    return VR_FAIL(VR_E_AUTOGRAD, "%s: a tensor saved for backward was modified in place (version %llu, saved at %llu)",
                   n->name, (unsigned long long)s->storage->version, (unsigned long long)n->saved_version[k]);
  *t = s;
  return VR_OK;
}

static void free_saved(vr_node *n) {
  for (int k = 0; k < n->n_saved; k++) {
    vr_tensor_free(n->saved[k]);
    n->saved[k] = NULL;
  }
  if (n->ctx && n->ctx_free) n->ctx_free(n->ctx);
  n->ctx = NULL;
  n->released = 1;
}

/* Freed iteratively: a long chain of nodes must not recurse once per node. */
static _Thread_local vr_node **dead;
static _Thread_local size_t n_dead, cap_dead;
static _Thread_local int draining;

void vr_node_release(vr_node *n) {
  if (!n || __atomic_sub_fetch(&n->refcount, 1, __ATOMIC_ACQ_REL) != 0) return;
  if (n_dead == cap_dead) {
    size_t cap = cap_dead ? cap_dead * 2 : 64;
    vr_node **d = realloc(dead, cap * sizeof *d);
    if (!d) return; /* leak rather than crash */
    dead = d;
    cap_dead = cap;
  }
  dead[n_dead++] = n;
  if (draining) return;
  draining = 1;
  while (n_dead) {
    vr_node *m = dead[--n_dead];
    free_saved(m);
    vr_tensor_free(m->grad_acc);
    for (int k = 0; k < m->n_in; k++) {
      vr_tensor_free(m->in[k].leaf);
      vr_node_release(m->in[k].fn);
    }
    free(m);
  }
  draining = 0;
}

void vr_node_attach(vr_node *n, vr_tensor *out) {
  vr_node_release(out->grad_fn);
  out->grad_fn = n;
  out->requires_grad = 1;
}

vr_status vr_record(const char *name, vr_backward_fn bw, int n_in, const vr_tensor *const *inputs, int n_saved,
                    const vr_tensor *const *saved, const double *f, int nf, const int64_t *iv, int ni, vr_tensor *out,
                    vr_node **node) {
  if (node) *node = NULL;
  if (!vr_needs_grad(n_in, inputs)) return VR_OK;
  if (n_saved > VR_NODE_MAX_SAVED || nf > 8 || ni > 16)
    return VR_FAIL(VR_E_INTERNAL, "%s: too many saved values", name);
  vr_node *n = NULL;
  VR_TRY(vr_node_new(name, bw, n_in, inputs, &n));
  for (int k = 0; k < n_saved; k++) vr_node_save(n, saved[k]);
  for (int k = 0; k < nf; k++) n->f[k] = f[k];
  for (int k = 0; k < ni; k++) n->i[k] = iv[k];
  vr_node_attach(n, out);
  if (node) *node = n;
  return VR_OK;
}

/* ---------------------------------------------------------------- tensor-side API */

vr_status vr_tensor_set_requires_grad(vr_tensor *t, int requires_grad) {
  VR_CHECK_TENSOR(t);
  if (t->grad_fn)
    return VR_FAIL(VR_E_AUTOGRAD, "t: expected a leaf tensor, got the output of %s; detach it first", t->grad_fn->name);
  if (requires_grad && !vr_is_float(t->dtype))
    return VR_FAIL(VR_E_DTYPE, "t: only float tensors can require grad, got %s", vr_dtype_name(t->dtype));
  t->requires_grad = requires_grad ? 1 : 0;
  return VR_OK;
}
int vr_tensor_requires_grad(const vr_tensor *t) { return t && t->requires_grad; }
int vr_tensor_is_leaf(const vr_tensor *t) { return t && !t->grad_fn; }
vr_tensor *vr_tensor_grad(const vr_tensor *t) {
  if (!t || !t->grad) return NULL;
  vr_tensor_retain(t->grad);
  return t->grad;
}
void vr_tensor_set_grad(vr_tensor *t, vr_tensor *grad) {
  if (!t) return;
  vr_tensor_retain(grad);
  vr_tensor_free(t->grad);
  t->grad = grad;
}
const char *vr_tensor_grad_fn_name(const vr_tensor *t) { return (t && t->grad_fn) ? t->grad_fn->name : ""; }

/* ---------------------------------------------------------------- the engine */

/* slot += g, out of place (gradients may alias each other); consumes g */
static vr_status accumulate(vr_tensor **slot, vr_tensor *g) {
  if (!*slot) {
    *slot = g;
    return VR_OK;
  }
  vr_tensor *s = NULL;
  vr_status st = vr_add(*slot, g, &s);
  vr_tensor_free(g);
  if (st) return st;
  vr_tensor_free(*slot);
  *slot = s;
  return VR_OK;
}

/* a leaf's .grad must own its memory: later in-place updates (clipping) must not reach other tensors */
static vr_status accumulate_leaf(vr_tensor *leaf, vr_tensor *g) {
  vr_tensor *own = g;
  if (g->refcount > 1 || g->storage->refcount > 1 || !vr_tensor_is_contiguous(g) || g->dtype != leaf->dtype) {
    vr_status st = vr_tensor_alloc(leaf->ndim, leaf->shape, leaf->dtype, leaf->device, &own);
    if (!st) st = vr_copy_(own, g);
    vr_tensor_free(g);
    if (st) {
      vr_tensor_free(own);
      return st;
    }
  }
  if (!leaf->grad) {
    leaf->grad = own;
    return VR_OK;
  }
  vr_status st = vr_add_(leaf->grad, own, 1.0);
  vr_tensor_free(own);
  return st;
}

static vr_status check_grad_shape(const vr_node *n, int k, const vr_tensor *g) {
  const vr_edge *e = &n->in[k];
  bool ok = g->ndim == e->ndim;
  for (int i = 0; ok && i < e->ndim; i++) ok = g->shape[i] == e->shape[i];
  if (ok) return VR_OK;
  char b1[96], b2[96];
  return VR_FAIL(VR_E_INTERNAL, "%s backward: input %d: expected a gradient of shape %s, got %s", n->name, k,
                 vr_shape_str(e->ndim, e->shape, b1, sizeof b1), vr_shape_str(g->ndim, g->shape, b2, sizeof b2));
}

typedef struct { vr_node **v; size_t n, cap; } node_list;
static int list_push(node_list *l, vr_node *n) {
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 64;
    vr_node **v = realloc(l->v, cap * sizeof *v);
    if (!v) return -1;
    l->v = v;
    l->cap = cap;
  }
  l->v[l->n++] = n;
  return 0;
}

vr_status vr_backward(vr_tensor *root, const vr_tensor *grad, int retain_graph) {
  VR_CHECK_TENSOR(root);
  if (!root->requires_grad)
    return VR_FAIL(VR_E_AUTOGRAD, "root: expected a tensor that requires grad, got one that does not");
  vr_tensor *g0 = NULL;
  if (grad) {
    if (!vr_same_shape(grad, root)) {
      char b1[96], b2[96];
      return VR_FAIL(VR_E_SHAPE, "grad: expected shape %s like root, got %s", vr_shape_str(root->ndim, root->shape, b1, 96),
                     vr_shape_str(grad->ndim, grad->shape, b2, 96));
    }
    VR_TRY(vr_tensor_to_device(grad, root->device, &g0));
  } else {
    if (vr_tensor_numel(root) != 1)
      return VR_FAIL(VR_E_ARG, "grad: expected a gradient for a root of %lld elements, got NULL",
                     (long long)vr_tensor_numel(root));
    VR_TRY(vr_tensor_ones(root->ndim, root->shape, root->dtype, root->device, &g0));
  }
  int prev = vr_set_grad_enabled(0);
  vr_status st = VR_OK;
  node_list all = {0}, ready = {0};
  if (!root->grad_fn) {
    st = accumulate_leaf(root, g0);
    goto done;
  }
  /* find the graph and count each node's consumers */
  uint64_t ep = __atomic_add_fetch(&epoch_counter, 1, __ATOMIC_RELAXED);
  vr_node *r = root->grad_fn;
  r->mark = ep;
  r->pending = 0;
  if (list_push(&ready, r)) goto oom;
  while (ready.n) {
    vr_node *n = ready.v[--ready.n];
    if (list_push(&all, n)) goto oom;
    for (int k = 0; k < n->n_in; k++) {
      vr_node *c = n->in[k].fn;
      if (!c) continue;
      if (c->mark != ep) {
        c->mark = ep;
        c->pending = 0;
        if (list_push(&ready, c)) goto oom;
      }
      c->pending++;
    }
  }
  r->grad_acc = g0;
  g0 = NULL;
  if (list_push(&ready, r)) goto oom;
  while (ready.n && !st) {
    vr_node *n = ready.v[--ready.n];
    vr_tensor *gout = n->grad_acc;
    n->grad_acc = NULL;
    vr_tensor *gin[VR_NODE_MAX_IN] = {0};
    if (gout) {
      if (n->released)
        st = VR_FAIL(VR_E_AUTOGRAD, "%s: the graph was freed by an earlier backward; pass retain_graph to call backward "
                     "twice", n->name);
      else
        st = n->backward(n, gout, gin);
    }
    vr_tensor_free(gout);
    for (int k = 0; k < n->n_in; k++) {
      vr_edge *e = &n->in[k];
      if (gin[k] && !st && !vr_node_needs(n, k)) {
        vr_tensor_free(gin[k]);
        gin[k] = NULL;
      }
      if (gin[k] && !st) st = check_grad_shape(n, k, gin[k]);
      if (gin[k] && !st) {
        if (e->fn) st = accumulate(&e->fn->grad_acc, gin[k]);
        else st = accumulate_leaf(e->leaf, gin[k]);
      } else {
        vr_tensor_free(gin[k]);
      }
      if (e->fn && --e->fn->pending == 0 && !st)
        if (list_push(&ready, e->fn)) goto oom;
    }
    if (!retain_graph) free_saved(n);
  }
  goto done;
oom:
  st = VR_FAIL(VR_E_OOM, "backward: out of host memory");
done:
  for (size_t i = 0; i < all.n; i++) {
    vr_tensor_free(all.v[i]->grad_acc);
    all.v[i]->grad_acc = NULL;
  }
  vr_tensor_free(g0);
  free(all.v);
  free(ready.v);
  vr_set_grad_enabled(prev);
  return st;
}
