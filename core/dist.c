/* dist.c: the collectives of data-parallel training (vr_dist_*, core/visreg.h). One process that no
 * launcher started is rank 0 of 1 and every collective is the identity; under mpirun or srun the
 * ranks join through MPI (core/dist_mpi.c), and CUDA tensors go through NCCL once vr_dist_use_nccl
 * has opened it (kernels/cuda/dist_nccl.cu), else through host memory and MPI.
 *
 * Tensors are moved in buckets: vr_dist_all_reduce_sum packs many tensors (the gradients) into one
 * buffer of at most BUCKET bytes per call to the transport. */
#include "dist.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define BUCKET ((size_t)32 << 20)

static struct {
  int ready, rank, size, local_rank;
  const vr_dist_ops *ops; /* NULL alone */
} D = { 0, 0, 1, 0, NULL };

/* ---------------------------------------------------------------- the watchdog
 * A rank that stops (its process exits) ends the job through the launcher; a rank that hangs, or a
 * machine that drops out without its processes exiting, would leave the others waiting in a
 * collective for ever. So every host collective is timed: a watchdog thread ends this process
 * with a message when one has waited longer than the timeout (vr_dist_set_timeout; 0: no limit),
 * and the launcher then ends the others. It exits without an MPI call (MPI runs on the main thread
 * only). NCCL's collectives are queued on the GPU and are not timed. */
static double timeout_s = 600;
static int64_t wait_since_ns; /* 0: not in a collective (atomic) */

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *watchdog(void *arg) {
  (void)arg;
  for (;;) {
    struct timespec nap = { 0, 100000000 };
    nanosleep(&nap, NULL);
    int64_t since = __atomic_load_n(&wait_since_ns, __ATOMIC_RELAXED);
    double limit = timeout_s;
    if (since && limit > 0 && (now_ns() - since) / 1e9 > limit) {
      fprintf(stderr, "visreg: rank %d of %d has waited %.0f s for the other ranks in a collective (a rank hangs or its "
              "machine dropped out): ending the job\n", D.rank, D.size, limit);
      fflush(stderr);
      _exit(1);
    }
  }
  return NULL;
}

static const vr_dist_ops *real;
static void wait_begin(void) { __atomic_store_n(&wait_since_ns, now_ns(), __ATOMIC_RELAXED); }
static void wait_end(void) { __atomic_store_n(&wait_since_ns, 0, __ATOMIC_RELAXED); }
#define WATCHED(call) do { wait_begin(); vr_status st_ = (call); wait_end(); return st_; } while (0)
static vr_status w_all_reduce_sum(void *buf, size_t count, vr_dtype dt) { WATCHED(real->all_reduce_sum(buf, count, dt)); }
static vr_status w_all_reduce_max_i64(int64_t *buf, size_t count) { WATCHED(real->all_reduce_max_i64(buf, count)); }
static vr_status w_all_gather(const void *send, void *recv, size_t nbytes) { WATCHED(real->all_gather(send, recv, nbytes)); }
static vr_status w_broadcast(void *buf, size_t nbytes, int root) { WATCHED(real->broadcast(buf, nbytes, root)); }
static vr_status w_barrier(void) { WATCHED(real->barrier()); }
static void w_abort(int code) { real->abort(code); }
static vr_status w_finalize(void) { WATCHED(real->finalize()); }
static vr_dist_ops watched = { NULL, w_all_reduce_sum, w_all_reduce_max_i64, w_all_gather, w_broadcast, w_barrier, w_abort,
                               w_finalize };

void vr_dist_set_timeout(double seconds) { timeout_s = seconds > 0 ? seconds : 0; }
double vr_dist_timeout(void) { return timeout_s; }

const char *vr_dist_launcher(void) {
  const char *s;
  if ((s = getenv("OMPI_COMM_WORLD_SIZE")) && *s) return "mpirun";
  if ((s = getenv("PMI_SIZE")) && *s) return "mpirun";
  if ((s = getenv("PMIX_RANK")) && *s) return "mpirun";
  /* srun sets SLURM_NTASKS and SLURM_PROCID in each task; sbatch alone sets SLURM_NTASKS but the
   * batch script is no task (no SLURM_PROCID or one task) */
  if ((s = getenv("SLURM_PROCID")) && *s && (s = getenv("SLURM_NTASKS")) && atoi(s) > 1) return "srun";
  return NULL;
}

vr_status vr_dist_init(void) {
  if (D.ready) return VR_OK;
  if (vr_dist_launcher()) {
    VR_TRY(vr_dist_mpi_open(&real, &D.rank, &D.size, &D.local_rank));
    watched.name = real->name;
    D.ops = &watched;
    pthread_t t;
    if (pthread_create(&t, NULL, watchdog, NULL) == 0) pthread_detach(t);
  }
  D.ready = 1;
  return VR_OK;
}
int vr_dist_rank(void) { return D.rank; }
int vr_dist_size(void) { return D.size; }
int vr_dist_local_rank(void) { return D.local_rank; }
const char *vr_dist_backend(void) {
  return !D.ops ? (vr_nccl_ready() ? "nccl" : "none") : vr_nccl_ready() ? "mpi+nccl" : "mpi";
}

vr_status vr_dist_use_nccl(void) {
  if (vr_nccl_ready()) return VR_OK;
  /* alone: a communicator of one rank (no id to send), so that the GPU path can be checked on a
   * machine without MPI */
  return vr_nccl_open(D.rank, D.size, D.local_rank, D.ops ? D.ops->broadcast : NULL);
}

static vr_status check_tensor(const char *what, int i, const vr_tensor *t, int need_float) {
  if (!t) return VR_FAIL(VR_E_ARG, "%s[%d]: expected a tensor, got NULL", what, i);
  if (!vr_tensor_is_contiguous(t)) return VR_FAIL(VR_E_ARG, "%s[%d]: expected a contiguous tensor", what, i);
  if (need_float && t->dtype != VR_F32 && t->dtype != VR_F64)
    return VR_FAIL(VR_E_DTYPE, "%s[%d]: expected f32 or f64, got %s", what, i, vr_dtype_name(t->dtype));
  return VR_OK;
}

/* copies nbytes between host or device memory of dev (kind as vr_device_api.memcpy) */
static vr_status copy(vr_device dev, void *dst, const void *src, size_t nbytes, int kind) {
  if (nbytes == 0) return VR_OK;
  if (dev == VR_CPU) {
    memcpy(dst, src, nbytes);
    return VR_OK;
  }
  const vr_device_api *api = vr_device_get(dev);
  if (!api) return VR_FAIL(VR_E_DEVICE, "no %s device", dev == VR_CUDA ? "cuda" : "cpu");
  return api->memcpy(dst, src, nbytes, kind);
}

/* the buffer a bucket is packed in: device memory under NCCL, else host memory */
static vr_status bucket_reduce(vr_device dev, void *buf, size_t count, vr_dtype dt) {
  if (dev == VR_CUDA && vr_nccl_ready()) return vr_nccl_all_reduce_sum(buf, count, dt);
  return D.ops->all_reduce_sum(buf, count, dt);
}

vr_status vr_dist_all_reduce_sum(vr_tensor *const *ts, int n) {
  if (n < 0 || (n > 0 && !ts)) return VR_FAIL(VR_E_ARG, "ts: expected %d tensors, got NULL", n);
  for (int i = 0; i < n; i++) {
    VR_TRY(check_tensor("ts", i, ts[i], 1));
    if (ts[i]->dtype != ts[0]->dtype || ts[i]->device != ts[0]->device)
      return VR_FAIL(VR_E_ARG, "ts[%d]: expected %s on the device of ts[0] like it, got %s", i,
                     vr_dtype_name(ts[0]->dtype), vr_dtype_name(ts[i]->dtype));
  }
  if (n == 0 || (!D.ops && !(ts[0]->device == VR_CUDA && vr_nccl_ready()))) return VR_OK;
  vr_device dev = ts[0]->device;
  vr_dtype dt = ts[0]->dtype;
  size_t es = vr_dtype_size(dt);
  int on_device = dev == VR_CUDA && vr_nccl_ready();
  int kin = on_device ? 2 : 1, kout = on_device ? 2 : 0; /* device->device, or through the host */
  vr_tensor *dbuf = NULL;
  void *buf = NULL;
  vr_status st = VR_OK;
  if (on_device) {
    int64_t cnt = (int64_t)(BUCKET / es);
    VR_TRY(vr_tensor_empty(1, &cnt, dt, VR_CUDA, &dbuf));
    buf = vr_data(dbuf);
  } else if (!(buf = malloc(BUCKET))) {
    return VR_FAIL(VR_E_OOM, "out of host memory for a %zu-byte bucket", BUCKET);
  }
  int i = 0;
  while (i < n && !st) {
    /* a bucket: whole tensors while they fit; one larger than the bucket goes alone, in pieces */
    size_t first_bytes = (size_t)vr_tensor_numel(ts[i]) * es;
    if (first_bytes > BUCKET) {
      char *p = vr_data(ts[i]);
      for (size_t at = 0; at < first_bytes && !st; at += BUCKET) {
        size_t nb = first_bytes - at < BUCKET ? first_bytes - at : BUCKET;
        if (dev == VR_CPU) st = D.ops->all_reduce_sum(p + at, nb / es, dt);
        else if (!(st = copy(dev, buf, p + at, nb, kin)) && !(st = bucket_reduce(dev, buf, nb / es, dt)))
          st = copy(dev, p + at, buf, nb, kout);
      }
      i++;
      continue;
    }
    int j = i;
    size_t used = 0;
    for (; j < n; j++) {
      size_t nb = (size_t)vr_tensor_numel(ts[j]) * es;
      if (used + nb > BUCKET) break;
      if ((st = copy(dev, (char *)buf + used, vr_data(ts[j]), nb, kin))) break;
      used += nb;
    }
    if (!st) st = bucket_reduce(dev, buf, used / es, dt);
    used = 0;
    for (int k = i; k < j && !st; k++) {
      size_t nb = (size_t)vr_tensor_numel(ts[k]) * es;
      st = copy(dev, vr_data(ts[k]), (char *)buf + used, nb, kout);
      used += nb;
    }
    i = j;
  }
  for (int k = 0; k < n && !st; k++) ts[k]->storage->version++;
  if (dbuf) vr_tensor_free(dbuf);
  else free(buf);
  return st;
}

vr_status vr_dist_all_gather(const vr_tensor *t, vr_tensor **out) {
  VR_CHECK_OUT(out);
  *out = NULL;
  VR_TRY(check_tensor("t", 0, t, 0));
  if (t->ndim < 1) return VR_FAIL(VR_E_SHAPE, "t: expected at least 1 dim, got a scalar");
  int64_t shape[VR_MAX_DIMS];
  memcpy(shape, t->shape, sizeof(int64_t) * (size_t)t->ndim);
  shape[0] *= D.size;
  vr_tensor *o = NULL;
  VR_TRY(vr_tensor_empty(t->ndim, shape, t->dtype, t->device, &o));
  size_t nb = (size_t)vr_tensor_numel(t) * vr_dtype_size(t->dtype);
  vr_status st = VR_OK;
  if (t->device == VR_CUDA && vr_nccl_ready()) {
    st = vr_nccl_all_gather(vr_data(t), vr_data(o), nb);
  } else if (!D.ops) {
    st = copy(t->device, vr_data(o), vr_data(t), nb, 2);
  } else if (t->device == VR_CPU) {
    st = D.ops->all_gather(vr_data(t), vr_data(o), nb);
  } else { /* a device tensor through the host */
    char *h = malloc(nb * (size_t)(D.size + 1) + 1);
    if (!h) st = VR_FAIL(VR_E_OOM, "out of host memory for the gather (%zu bytes)", nb * (size_t)(D.size + 1));
    if (!st) st = copy(t->device, h, vr_data(t), nb, 1);
    if (!st) st = D.ops->all_gather(h, h + nb, nb);
    if (!st) st = copy(t->device, vr_data(o), h + nb, nb * (size_t)D.size, 0);
    free(h);
  }
  if (st) {
    vr_tensor_free(o);
    return st;
  }
  *out = o;
  return VR_OK;
}

/* the backward of a summed tensor: every rank's loss depended on the sum, so each rank's input
 * gets the sum over the ranks of the gradients that reached the sum */
static vr_status all_reduce_backward(vr_node *n, vr_tensor *gout, vr_tensor **gin) {
  (void)n;
  vr_tensor *g = NULL;
  VR_TRY(vr_tensor_clone(gout, &g));
  vr_status st = vr_dist_all_reduce_sum(&g, 1);
  if (st) {
    vr_tensor_free(g);
    return st;
  }
  gin[0] = g;
  return VR_OK;
}

vr_status vr_dist_all_reduce_sum_ad(const vr_tensor *x, vr_tensor **out) {
  VR_CHECK_OUT(out);
  *out = NULL;
  VR_CHECK_TENSOR(x);
  vr_tensor *y = NULL;
  int grad = vr_needs_grad(1, &x);
  int was = vr_set_grad_enabled(0);
  vr_status st = vr_tensor_clone(x, &y);
  vr_set_grad_enabled(was);
  if (!st) st = vr_dist_all_reduce_sum(&y, 1);
  if (!st && grad) st = vr_record("dist_all_reduce", all_reduce_backward, 1, &x, 0, NULL, NULL, 0, NULL, 0, y, NULL);
  if (st) {
    vr_tensor_free(y);
    return st;
  }
  *out = y;
  return VR_OK;
}

vr_status vr_dist_broadcast(vr_tensor *t, int root) {
  VR_TRY(check_tensor("t", 0, t, 0));
  if (root < 0 || root >= D.size) return VR_FAIL(VR_E_ARG, "root: expected 0..%d, got %d", D.size - 1, root);
  int nccl = t->device == VR_CUDA && vr_nccl_ready();
  if (!D.ops && !nccl) return VR_OK;
  size_t nb = (size_t)vr_tensor_numel(t) * vr_dtype_size(t->dtype);
  vr_status st;
  if (nccl) st = vr_nccl_broadcast(vr_data(t), nb, root);
  else if (t->device == VR_CPU) st = D.ops->broadcast(vr_data(t), nb, root);
  else {
    char *h = malloc(nb + 1);
    if (!h) return VR_FAIL(VR_E_OOM, "out of host memory for the broadcast (%zu bytes)", nb);
    st = copy(t->device, h, vr_data(t), nb, 1);
    if (!st) st = D.ops->broadcast(h, nb, root);
    if (!st) st = copy(t->device, vr_data(t), h, nb, 0);
    free(h);
  }
  if (!st) t->storage->version++;
  return st;
}

vr_status vr_dist_all_reduce_max(int64_t *values, int n) {
  if (n < 0 || (n > 0 && !values)) return VR_FAIL(VR_E_ARG, "values: expected %d values, got NULL", n);
  if (!D.ops || n == 0) return VR_OK;
  return D.ops->all_reduce_max_i64(values, (size_t)n);
}

vr_status vr_dist_barrier(void) { return D.ops ? D.ops->barrier() : VR_OK; }

void vr_dist_abort(int code) {
  if (D.ops) D.ops->abort(code);
}

vr_status vr_dist_finalize(void) {
  vr_nccl_close();
  if (!D.ops) return VR_OK;
  vr_status st = D.ops->finalize();
  D.ops = NULL;
  D.rank = 0;
  D.size = 1;
  return st;
}
