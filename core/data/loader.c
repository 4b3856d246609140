/* loader.c: multi-view batch loader. Batch g of the run (g = epoch * batches_per_epoch + index)
 * holds samples perm_epoch[index*B ..] where perm_epoch is a Philox Fisher-Yates shuffle keyed by
 * (seed, epoch); view v of sample i is vr_augment_image(pipeline_v, image i, seed, epoch, i, v).
 * So every batch is a pure function of (seed, g) and the worker count changes nothing but speed.
 *
 * Threads: `workers` pthreads take the next unassigned batch number (up to `prefetch` ahead of the
 * consumer), build the whole batch, and park it in a slot; vr_loader_next waits for the batch it
 * needs. vr_loader_set_position bumps a generation counter, so batches in flight are dropped.
 * The loader holds its own reference to the dataset's images and a copy of its labels, so the dataset
 * may be freed before the loader (a garbage collector frees them in any order).
 *
 * Raw mode (vr_loader_set_raw): a batch holds its samples' u8 images (B x C x H x W, in batch order)
 * and no views; the caller makes the views, e.g. vr_pipeline_apply_ids(images, indices, epoch) on
 * the GPU, which gives exactly this loader's views. */
#include "data.h"
#include "../philox.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct view_spec {
  int h, w;
  vr_pipeline *p;
  int group, pos; /* consecutive views of one size share a group tensor */
} view_spec;

typedef struct slot {
  int state; /* 0 free, 1 being built, 2 ready */
  int64_t g;
  vr_batch *b;
} slot;

struct vr_batch {
  int nviews, ngroups;
  int64_t bsz, epoch, index;
  vr_tensor **groups; /* per group: nv x B x C x h x w */
  vr_tensor *images;  /* raw mode: u8 B x C x H x W; else NULL */
  int *group_of, *pos_of, *group_first;
  vr_tensor *labels, *indices;
};

struct vr_loader {
  vr_dataset *d; /* the loader's own handle: the images shared, the labels copied */
  int64_t B, nb;
  int64_t shard_rank, shard_size; /* vr_loader_set_shard: this rank's part of every batch */
  int shuffle, drop_last, workers, prefetch;
  int raw, used; /* raw mode; used: vr_loader_next has been called */
  uint64_t seed;
  int nviews, cap_views;
  view_spec *views;
  int started;
  /* consumer position */
  int64_t epoch, idx;
  /* shared with the workers, under mu */
  pthread_mutex_t mu;
  pthread_cond_t cv_work, cv_done;
  pthread_t *threads;
  int nthreads, stop;
  uint64_t gen;
  int64_t next_g, cons_g;
  slot *slots;
  vr_status worker_status;
  char worker_error[512];
  int64_t perm_epoch[2];
  int64_t *perm[2];
  int perm_next;
};

/* ---------------------------------------------------------------- batches */

void vr_batch_free(vr_batch *b) {
  if (!b) return;
  for (int k = 0; k < b->ngroups; k++) vr_tensor_free(b->groups[k]);
  free(b->groups);
  free(b->group_of);
  free(b->pos_of);
  free(b->group_first);
  vr_tensor_free(b->labels);
  vr_tensor_free(b->indices);
  vr_tensor_free(b->images);
  free(b);
}

int vr_batch_num_views(const vr_batch *b) { return b ? b->nviews : 0; }
int64_t vr_batch_size(const vr_batch *b) { return b ? b->bsz : 0; }
int64_t vr_batch_epoch(const vr_batch *b) { return b ? b->epoch : -1; }
int64_t vr_batch_index(const vr_batch *b) { return b ? b->index : -1; }

vr_status vr_batch_views(const vr_batch *b, int first, int n, vr_tensor **out) {
  VR_CHECK_OUT(out);
  *out = NULL;
  if (!b) return VR_FAIL(VR_E_ARG, "b: expected a batch, got NULL");
  if (b->images) return VR_FAIL(VR_E_ARG, "b: a raw batch holds no views (see vr_batch_images)");
  if (n < 1 || first < 0 || first + n > b->nviews)
    return VR_FAIL(VR_E_ARG, "first, n: expected views within 0..%d, got first %d, n %d", b->nviews - 1, first, n);
  int g = b->group_of[first];
  vr_tensor *t = b->groups[g];
  if (b->group_of[first + n - 1] == g) { /* one group: a view of its tensor */
    int64_t shape[5] = {n, t->shape[1], t->shape[2], t->shape[3], t->shape[4]};
    return vr_tensor_view_raw(t, 5, shape, t->stride, t->offset + b->pos_of[first] * t->stride[0], out);
  }
  for (int v = first; v < first + n; v++) {
    vr_tensor *tv = b->groups[b->group_of[v]];
    if (tv->shape[3] != t->shape[3] || tv->shape[4] != t->shape[4])
      return VR_FAIL(VR_E_SHAPE, "first, n: view %d is %lld x %lld, expected %lld x %lld like view %d", v,
                     (long long)tv->shape[3], (long long)tv->shape[4], (long long)t->shape[3], (long long)t->shape[4],
                     first);
  }
  /* views from several groups: a copy */
  int64_t shape[5] = {n, t->shape[1], t->shape[2], t->shape[3], t->shape[4]};
  VR_TRY(vr_tensor_alloc(5, shape, VR_F32, VR_CPU, out));
  size_t per = (size_t)(t->shape[1] * t->shape[2] * t->shape[3] * t->shape[4]);
  for (int v = first; v < first + n; v++) {
    vr_tensor *tv = b->groups[b->group_of[v]];
    memcpy((float *)vr_data(*out) + (size_t)(v - first) * per, (float *)vr_data(tv) + (size_t)b->pos_of[v] * per,
           per * sizeof(float));
  }
  return VR_OK;
}

vr_status vr_batch_view(const vr_batch *b, int view, vr_tensor **out) {
  VR_CHECK_OUT(out);
  *out = NULL;
  if (!b) return VR_FAIL(VR_E_ARG, "b: expected a batch, got NULL");
  if (b->images) return VR_FAIL(VR_E_ARG, "b: a raw batch holds no views (see vr_batch_images)");
  if (view < 0 || view >= b->nviews) return VR_FAIL(VR_E_ARG, "view: expected 0..%d, got %d", b->nviews - 1, view);
  vr_tensor *t = b->groups[b->group_of[view]];
  return vr_tensor_view_raw(t, 4, t->shape + 1, t->stride + 1, t->offset + b->pos_of[view] * t->stride[0], out);
}

vr_status vr_batch_labels(const vr_batch *b, vr_tensor **out) {
  VR_CHECK_OUT(out);
  if (!b) return VR_FAIL(VR_E_ARG, "b: expected a batch, got NULL");
  vr_tensor_retain(b->labels);
  *out = b->labels;
  return VR_OK;
}

vr_status vr_batch_indices(const vr_batch *b, vr_tensor **out) {
  VR_CHECK_OUT(out);
  if (!b) return VR_FAIL(VR_E_ARG, "b: expected a batch, got NULL");
  vr_tensor_retain(b->indices);
  *out = b->indices;
  return VR_OK;
}

vr_status vr_batch_images(const vr_batch *b, vr_tensor **out) {
  VR_CHECK_OUT(out);
  *out = NULL;
  if (!b) return VR_FAIL(VR_E_ARG, "b: expected a batch, got NULL");
  if (!b->images) return VR_FAIL(VR_E_ARG, "b: expected a batch of a raw loader (vr_loader_set_raw), got one with views");
  vr_tensor_retain(b->images);
  *out = b->images;
  return VR_OK;
}

/* ---------------------------------------------------------------- the loader */

vr_status vr_loader_new(const vr_dataset *d, int64_t batch, int shuffle, int drop_last, uint64_t seed, int workers,
                        int prefetch, vr_loader **out) {
  VR_CHECK_OUT(out);
  *out = NULL;
  if (!d) return VR_FAIL(VR_E_ARG, "d: expected a dataset, got NULL");
  if (batch < 1) return VR_FAIL(VR_E_ARG, "batch: expected >= 1, got %lld", (long long)batch);
  if (workers < 0 || workers > 64) return VR_FAIL(VR_E_ARG, "workers: expected 0..64, got %d", workers);
  if (prefetch < 0 || prefetch > 64) return VR_FAIL(VR_E_ARG, "prefetch: expected 0..64, got %d", prefetch);
  int64_t nb = drop_last ? d->n / batch : (d->n + batch - 1) / batch;
  if (nb < 1)
    return VR_FAIL(VR_E_ARG, "batch: %lld is larger than the dataset (%lld images) with drop_last: no batches",
                   (long long)batch, (long long)d->n);
  vr_loader *l = calloc(1, sizeof *l);
  int64_t *labels = malloc(sizeof(int64_t) * (size_t)(d->n ? d->n : 1));
  if (!l || !labels) {
    free(l);
    free(labels);
    return VR_FAIL(VR_E_OOM, "loader: out of host memory");
  }
  memcpy(labels, d->labels, sizeof(int64_t) * (size_t)d->n);
  vr_tensor_retain(d->images);
  vr_status st = vr_dataset_make(d->images, labels, d->num_classes, d->has_labels, &l->d); /* takes both */
  if (st) {
    free(l);
    return st;
  }
  l->B = batch;
  l->nb = nb;
  l->shuffle = shuffle;
  l->drop_last = drop_last;
  l->seed = seed;
  l->workers = workers;
  l->prefetch = workers ? (prefetch > workers ? prefetch : workers + 1) : 0;
  l->perm_epoch[0] = l->perm_epoch[1] = -1;
  l->shard_size = 1;
  pthread_mutex_init(&l->mu, NULL);
  pthread_cond_init(&l->cv_work, NULL);
  pthread_cond_init(&l->cv_done, NULL);
  *out = l;
  return VR_OK;
}

static void stop_workers(vr_loader *l) {
  if (!l->started) return;
  pthread_mutex_lock(&l->mu);
  l->stop = 1;
  pthread_cond_broadcast(&l->cv_work);
  pthread_mutex_unlock(&l->mu);
  for (int k = 0; k < l->nthreads; k++) pthread_join(l->threads[k], NULL);
  free(l->threads);
  l->threads = NULL;
  l->nthreads = 0;
  for (int k = 0; k < l->prefetch; k++) vr_batch_free(l->slots[k].b);
  free(l->slots);
  l->slots = NULL;
  l->started = 0;
  l->stop = 0;
}

void vr_loader_free(vr_loader *l) {
  if (!l) return;
  stop_workers(l);
  for (int k = 0; k < l->nviews; k++) vr_pipeline_free(l->views[k].p);
  free(l->views);
  free(l->perm[0]);
  free(l->perm[1]);
  pthread_mutex_destroy(&l->mu);
  pthread_cond_destroy(&l->cv_work);
  pthread_cond_destroy(&l->cv_done);
  vr_dataset_free(l->d);
  free(l);
}

vr_status vr_loader_add_view(vr_loader *l, int out_h, int out_w, const vr_pipeline *p) {
  if (!l) return VR_FAIL(VR_E_ARG, "l: expected a loader, got NULL");
  if (l->started) return VR_FAIL(VR_E_ARG, "l: views must be added before the first vr_loader_next");
  if (out_h < 0 || out_w < 0 || out_h > 4096 || out_w > 4096)
    return VR_FAIL(VR_E_ARG, "out_h, out_w: expected 0..4096 (0: the image size), got %d, %d", out_h, out_w);
  if (l->nviews >= 64) return VR_FAIL(VR_E_ARG, "l: a loader holds at most 64 views");
  if (p) VR_TRY(vr_pipeline_check_channels(__func__, p, l->d->c));
  if (l->nviews == l->cap_views) {
    int cap = l->cap_views ? 2 * l->cap_views : 4;
    view_spec *v = realloc(l->views, sizeof *v * (size_t)cap);
    if (!v) return VR_FAIL(VR_E_OOM, "l: out of host memory");
    l->views = v;
    l->cap_views = cap;
  }
  view_spec *v = &l->views[l->nviews];
  v->h = out_h ? out_h : (int)l->d->h;
  v->w = out_w ? out_w : (int)l->d->w;
  VR_TRY(vr_pipeline_copy(p, &v->p));
  if (l->nviews && l->views[l->nviews - 1].h == v->h && l->views[l->nviews - 1].w == v->w) {
    v->group = l->views[l->nviews - 1].group;
    v->pos = l->views[l->nviews - 1].pos + 1;
  } else {
    v->group = l->nviews ? l->views[l->nviews - 1].group + 1 : 0;
    v->pos = 0;
  }
  l->nviews++;
  return VR_OK;
}

vr_status vr_loader_set_raw(vr_loader *l, int raw) {
  if (!l) return VR_FAIL(VR_E_ARG, "l: expected a loader, got NULL");
  if (l->used) return VR_FAIL(VR_E_ARG, "l: raw mode must be set before the first vr_loader_next");
  l->raw = raw != 0;
  return VR_OK;
}

vr_status vr_loader_set_shard(vr_loader *l, int rank, int size) {
  if (!l) return VR_FAIL(VR_E_ARG, "l: expected a loader, got NULL");
  if (l->used) return VR_FAIL(VR_E_ARG, "l: the shard must be set before the first vr_loader_next");
  if (size < 1 || rank < 0 || rank >= size) return VR_FAIL(VR_E_ARG, "rank, size: expected 0 <= rank < size, got %d, %d", rank, size);
  if (!l->drop_last || l->B % size)
    return VR_FAIL(VR_E_ARG, "size: expected the batch (%lld) to split evenly over %d ranks, with drop_last",
                   (long long)l->B, size);
  l->shard_rank = rank;
  l->shard_size = size;
  return VR_OK;
}

int vr_loader_raw(const vr_loader *l) { return l ? l->raw : 0; }
int vr_loader_num_views(const vr_loader *l) { return l ? l->nviews : 0; }
int64_t vr_loader_num_batches(const vr_loader *l) { return l ? l->nb : 0; }
int64_t vr_loader_epoch(const vr_loader *l) { return l ? l->epoch : -1; }
int64_t vr_loader_batch_index(const vr_loader *l) { return l ? l->idx : -1; }

/* the permutation of an epoch (cached for two epochs); call with mu held */
static const int64_t *perm_of(vr_loader *l, int64_t epoch) {
  for (int k = 0; k < 2; k++)
    if (l->perm_epoch[k] == epoch) return l->perm[k];
  int k = l->perm_next;
  l->perm_next ^= 1;
  int64_t n = l->d->n;
  if (!l->perm[k]) l->perm[k] = malloc(sizeof(int64_t) * (size_t)n);
  if (!l->perm[k]) return NULL;
  int64_t *p = l->perm[k];
  for (int64_t i = 0; i < n; i++) p[i] = i;
  if (l->shuffle)
    for (int64_t i = n - 1; i > 0; i--) {
      uint32_t w[4];
      vr_philox_block(l->seed, ((uint64_t)epoch << 32) | 0xffffffffu, (uint64_t)i, w);
      uint64_t r = ((uint64_t)w[0] << 32) | w[1];
      int64_t j = (int64_t)(r % (uint64_t)(i + 1)), t = p[i];
      p[i] = p[j];
      p[j] = t;
    }
  l->perm_epoch[k] = epoch;
  return p;
}

typedef struct build_ctx {
  const vr_loader *l;
  vr_batch *b;
  const int64_t *idx;
  vr_status st;
} build_ctx;

/* builds samples [lo, hi) of every view */
static void build_range(void *ctx, int64_t lo, int64_t hi) {
  build_ctx *c = ctx;
  const vr_loader *l = c->l;
  const vr_dataset *d = l->d;
  vr_aug_scratch s = {0};
  for (int v = 0; v < l->nviews; v++) {
    const view_spec *vs = &l->views[v];
    vr_tensor *t = c->b->groups[vs->group];
    float *base = (float *)vr_data(t) + (size_t)vs->pos * (size_t)t->stride[0];
    size_t per = (size_t)(d->c * vs->h * vs->w);
    for (int64_t k = lo; k < hi; k++) {
      vr_status st = vr_augment_image(vs->p, vr_dataset_image_data(d, c->idx[k]), 1, (int)d->c, (int)d->h, (int)d->w,
                                      base + (size_t)k * per, vs->h, vs->w, l->seed, (uint64_t)c->b->epoch,
                                      (uint64_t)c->idx[k], (uint64_t)v, &s);
      if (st) __atomic_store_n(&c->st, st, __ATOMIC_RELAXED);
    }
  }
  vr_aug_scratch_free(&s);
}

static vr_status build_batch(vr_loader *l, int64_t g, int parallel, vr_batch **out) {
  *out = NULL;
  int64_t epoch = g / l->nb, index = g % l->nb;
  int64_t start = index * l->B, bsz = l->d->n - start < l->B ? l->d->n - start : l->B;
  if (l->shard_size > 1) { /* drop_last: every batch is whole, and splits evenly */
    bsz = l->B / l->shard_size;
    start += l->shard_rank * bsz;
  }
  pthread_mutex_lock(&l->mu);
  const int64_t *perm = perm_of(l, epoch);
  vr_tensor *indices = NULL, *labels = NULL;
  vr_status st = VR_OK;
  if (!perm) st = VR_FAIL(VR_E_OOM, "loader: out of host memory for the permutation");
  else st = vr_tensor_from_buffer(perm + start, 1, &bsz, VR_I64, VR_CPU, &indices);
  pthread_mutex_unlock(&l->mu);
  if (st) return st;
  vr_batch *b = calloc(1, sizeof *b);
  int nv = l->raw ? 0 : l->nviews, ng = nv ? l->views[nv - 1].group + 1 : 0;
  if (b) {
    b->groups = calloc((size_t)(ng ? ng : 1), sizeof(vr_tensor *));
    b->group_of = calloc((size_t)(nv ? nv : 1), sizeof(int));
    b->pos_of = calloc((size_t)(nv ? nv : 1), sizeof(int));
  }
  if (!b || !b->groups || !b->group_of || !b->pos_of) {
    vr_batch_free(b);
    vr_tensor_free(indices);
    return VR_FAIL(VR_E_OOM, "loader: out of host memory for a batch");
  }
  b->nviews = nv;
  b->ngroups = ng;
  b->bsz = bsz;
  b->epoch = epoch;
  b->index = index;
  b->indices = indices;
  const int64_t *idx = vr_data(indices);
  VR_TRYG(vr_tensor_alloc(1, &bsz, VR_I64, VR_CPU, &labels));
  b->labels = labels;
  for (int64_t k = 0; k < bsz; k++) ((int64_t *)vr_data(labels))[k] = l->d->labels[idx[k]];
  if (l->raw) { /* the samples' images, in batch order */
    const vr_dataset *d = l->d;
    int64_t shape[4] = {bsz, d->c, d->h, d->w};
    size_t per = (size_t)(d->c * d->h * d->w);
    VR_TRYG(vr_tensor_alloc(4, shape, VR_U8, VR_CPU, &b->images));
    for (int64_t k = 0; k < bsz; k++)
      memcpy((uint8_t *)vr_data(b->images) + (size_t)k * per, vr_dataset_image_data(d, idx[k]), per);
    goto done;
  }
  for (int v = 0; v < l->nviews; v++) {
    const view_spec *vs = &l->views[v];
    b->group_of[v] = vs->group;
    b->pos_of[v] = vs->pos;
    if (v + 1 == l->nviews || l->views[v + 1].group != vs->group) {
      int64_t shape[5] = {vs->pos + 1, bsz, l->d->c, vs->h, vs->w};
      VR_TRYG(vr_tensor_alloc(5, shape, VR_F32, VR_CPU, &b->groups[vs->group]));
    }
  }
  build_ctx c = {l, b, idx, VR_OK};
  if (parallel) vr_parallel_for(bsz, 1, build_range, &c);
  else build_range(&c, 0, bsz);
  st = c.st;
done:
  if (st) vr_batch_free(b);
  else *out = b;
  return st;
}

static void *worker_main(void *arg) {
  vr_loader *l = arg;
  pthread_mutex_lock(&l->mu);
  for (;;) {
    if (l->stop) break;
    int s = -1;
    if (l->next_g < l->cons_g + l->prefetch)
      for (int k = 0; k < l->prefetch; k++)
        if (l->slots[k].state == 0) {
          s = k;
          break;
        }
    if (s < 0) {
      pthread_cond_wait(&l->cv_work, &l->mu);
      continue;
    }
    int64_t g = l->next_g++;
    uint64_t gen = l->gen;
    l->slots[s].state = 1;
    l->slots[s].g = g;
    pthread_mutex_unlock(&l->mu);
    vr_batch *b = NULL;
    vr_status st = build_batch(l, g, 0, &b);
    const char *msg = st ? vr_last_error() : "";
    pthread_mutex_lock(&l->mu);
    if (gen != l->gen) { /* the position moved while we built: drop it */
      vr_batch_free(b);
      continue;
    }
    if (st && !l->worker_status) {
      l->worker_status = st;
      snprintf(l->worker_error, sizeof l->worker_error, "%s", msg);
    }
    l->slots[s].b = b;
    l->slots[s].state = 2;
    pthread_cond_broadcast(&l->cv_done);
  }
  pthread_mutex_unlock(&l->mu);
  return NULL;
}

static vr_status start_workers(vr_loader *l) {
  l->slots = calloc((size_t)l->prefetch, sizeof(slot));
  l->threads = calloc((size_t)l->workers, sizeof(pthread_t));
  if (!l->slots || !l->threads) {
    free(l->slots);
    free(l->threads);
    l->slots = NULL;
    l->threads = NULL;
    return VR_FAIL(VR_E_OOM, "loader: out of host memory");
  }
  l->next_g = l->cons_g = l->epoch * l->nb + l->idx;
  l->started = 1;
  for (int k = 0; k < l->workers; k++) {
    if (pthread_create(&l->threads[k], NULL, worker_main, l)) {
      stop_workers(l);
      return VR_FAIL(VR_E_INTERNAL, "loader: cannot start worker thread %d", k);
    }
    l->nthreads++;
  }
  return VR_OK;
}

vr_status vr_loader_set_position(vr_loader *l, int64_t epoch, int64_t batch_index) {
  if (!l) return VR_FAIL(VR_E_ARG, "l: expected a loader, got NULL");
  if (epoch < 0 || epoch >= (1LL << 31)) return VR_FAIL(VR_E_ARG, "epoch: expected 0..2^31-1, got %lld", (long long)epoch);
  if (batch_index < 0 || batch_index > l->nb)
    return VR_FAIL(VR_E_ARG, "batch_index: expected 0..%lld, got %lld", (long long)l->nb, (long long)batch_index);
  pthread_mutex_lock(&l->mu);
  l->epoch = epoch;
  l->idx = batch_index;
  if (l->started) {
    l->gen++;
    for (int k = 0; k < l->prefetch; k++) {
      vr_batch_free(l->slots[k].b);
      l->slots[k].b = NULL;
      l->slots[k].state = 0;
    }
    l->next_g = l->cons_g = epoch * l->nb + batch_index;
    l->worker_status = VR_OK;
    pthread_cond_broadcast(&l->cv_work);
  }
  pthread_mutex_unlock(&l->mu);
  return VR_OK;
}

vr_status vr_loader_next(vr_loader *l, vr_batch **out) {
  VR_CHECK_OUT(out);
  *out = NULL;
  if (!l) return VR_FAIL(VR_E_ARG, "l: expected a loader, got NULL");
  if (!l->nviews && !l->raw)
    return VR_FAIL(VR_E_ARG, "l: expected at least one view (vr_loader_add_view) or raw mode, got neither");
  l->used = 1;
  if (l->idx == l->nb) { /* end of the epoch */
    l->epoch++;
    l->idx = 0;
    return VR_OK;
  }
  int64_t g = l->epoch * l->nb + l->idx;
  if (!l->workers) {
    VR_TRY(build_batch(l, g, 1, out));
    l->idx++;
    return VR_OK;
  }
  if (!l->started) VR_TRY(start_workers(l));
  pthread_mutex_lock(&l->mu);
  vr_status st = VR_OK;
  for (;;) {
    int s = -1;
    for (int k = 0; k < l->prefetch; k++)
      if (l->slots[k].state == 2 && l->slots[k].g == g) s = k;
    if (s >= 0) {
      *out = l->slots[s].b;
      l->slots[s].b = NULL;
      l->slots[s].state = 0;
      if (!*out) { /* the worker failed: report it, and retry this batch on the next call */
        st = vr_error_set(l->worker_status ? l->worker_status : VR_E_INTERNAL, __func__, __FILE__, __LINE__,
                          "loader worker failed: %s", l->worker_error);
        l->gen++;
        for (int k = 0; k < l->prefetch; k++) {
          vr_batch_free(l->slots[k].b);
          l->slots[k].b = NULL;
          l->slots[k].state = 0;
        }
        l->next_g = l->cons_g = g;
        l->worker_status = VR_OK;
      }
      break;
    }
    pthread_cond_wait(&l->cv_done, &l->mu);
  }
  if (!st) {
    l->cons_g = g + 1;
    l->idx++;
  }
  pthread_cond_broadcast(&l->cv_work);
  pthread_mutex_unlock(&l->mu);
  return st;
}
