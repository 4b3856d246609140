/* profile.c: the op profiler. With VISREG_PROFILE=1 in the environment (or vr_profile_enable(1)),
 * vr_dispatch times every top-level kernel call (calls made by a kernel are inside its parent's
 * time) and vr_profile_report prints, per (op, variant, direction, dtypes, device), the calls, the
 * device time and the host time spent in the call, sorted by device time, beside the wall time
 * since the last reset. Device time comes from a pair of backend events around the call (CUDA
 * events on the stream), read back in batches so that profiling syncs rarely; where the backend
 * has no events (the CPU) it is the host time. Device time well below wall time means the step
 * is bound by the host (launches, Lua, the loader), not by kernels. */
#include "internal.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PROF_ENTRIES 512
#define PROF_PENDING 2048

typedef struct {
  int op, bwd, sub, dev;
  vr_dtype din, dout;
  int64_t calls;
  double host_s, dev_ms;
} prof_entry;

typedef struct {
  int entry, dev;
  void *ev0, *ev1;
} prof_pending;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int enabled = -1; /* -1: not read from the environment yet */
static prof_entry entries[PROF_ENTRIES];
static int n_entries, dropped;
static prof_pending pending[PROF_PENDING];
static int n_pending;
static double t_reset;
static _Thread_local int depth;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* VISREG_PROFILE is a comma-separated list: "1" (the op table) and "phases" (the CUDA
 * regularizers' phase times) */
static int profile_has(const char *word) {
  const char *e = getenv("VISREG_PROFILE");
  size_t n = strlen(word);
  for (const char *p = e; p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
    if (!strncmp(p, word, n) && (p[n] == ',' || p[n] == 0)) return 1;
  return 0;
}

int vr_profile_enabled(void) {
  if (enabled < 0) {
    enabled = profile_has("1");
    t_reset = now_s();
  }
  return enabled;
}

int vr_profile_phases(void) {
  static int on = -1;
  if (on < 0) on = profile_has("phases");
  return on;
}

void vr_profile_enable(int on) {
  vr_profile_enabled();
  enabled = on != 0;
}

/* the entry of this key, made when new; -1 when the table is full (counted as dropped) */
static int entry_of(int op, int bwd, int sub, int dev, vr_dtype din, vr_dtype dout) {
  for (int k = 0; k < n_entries; k++) {
    prof_entry *e = &entries[k];
    if (e->op == op && e->bwd == bwd && e->sub == sub && e->dev == dev && e->din == din && e->dout == dout) return k;
  }
  if (n_entries == PROF_ENTRIES) return -1;
  entries[n_entries] = (prof_entry){op, bwd, sub, dev, din, dout, 0, 0, 0};
  return n_entries++;
}

/* reads back the pending event pairs (waits for the last); called with mu held */
static void resolve_pending(void) {
  for (int k = 0; k < n_pending; k++) {
    prof_pending *p = &pending[k];
    const vr_device_api *api = vr_device_get((vr_device)p->dev);
    double ms = 0;
    if (api && api->event_elapsed && api->event_elapsed(p->ev0, p->ev1, &ms) == VR_OK) entries[p->entry].dev_ms += ms;
    if (api && api->event_free) {
      api->event_free(p->ev0);
      api->event_free(p->ev1);
    }
  }
  n_pending = 0;
}

vr_status vr_profile_call(vr_op op, vr_device dev, int backward, const vr_kernel_args *a, vr_kernel_fn fn) {
  if (depth > 0) return fn(a);
  const vr_device_api *api = vr_device_get(dev);
  int events = api && api->event_record && api->event_elapsed;
  void *ev0 = NULL, *ev1 = NULL;
  if (events && api->event_record(&ev0) != VR_OK) events = 0;
  depth++;
  double t0 = now_s();
  vr_status st = fn(a);
  double dt = now_s() - t0;
  depth--;
  if (events && api->event_record(&ev1) != VR_OK) {
    if (api->event_free) api->event_free(ev0);
    events = 0;
  }
  vr_dtype din = a->n_in > 0 && a->in[0] ? a->in[0]->dtype : (vr_dtype)-1;
  vr_dtype dout = a->n_out > 0 && a->out[0] ? a->out[0]->dtype : (vr_dtype)-1;
  pthread_mutex_lock(&mu);
  int e = entry_of(op, backward, a->sub, dev, din, dout);
  if (e < 0) {
    dropped++;
  } else {
    entries[e].calls++;
    entries[e].host_s += dt;
    if (!events) entries[e].dev_ms += 1e3 * dt;
  }
  if (events && e >= 0) {
    if (n_pending == PROF_PENDING) resolve_pending();
    pending[n_pending++] = (prof_pending){e, (int)dev, ev0, ev1};
  } else if (events && api->event_free) {
    api->event_free(ev0);
    api->event_free(ev1);
  }
  pthread_mutex_unlock(&mu);
  return st;
}

void vr_profile_reset(void) {
  vr_profile_enabled();
  pthread_mutex_lock(&mu);
  resolve_pending();
  n_entries = 0;
  dropped = 0;
  t_reset = now_s();
  pthread_mutex_unlock(&mu);
}

/* the variant's name where the op has named variants */
static const char *sub_name(int op, int sub) {
  if (op == VR_OP_UNARY) return vr_unary_kind_name(sub);
  if (op == VR_OP_BINARY) return vr_binary_kind_name(sub);
  return NULL;
}

/* "op" or "op.variant" as the report names it */
static void entry_name(const prof_entry *e, char *name, size_t n) {
  const char *sn = sub_name(e->op, e->sub);
  if (sn) snprintf(name, n, "%s.%s", vr_op_name((vr_op)e->op), sn);
  else if (e->sub) snprintf(name, n, "%s.%d", vr_op_name((vr_op)e->op), e->sub);
  else snprintf(name, n, "%s", vr_op_name((vr_op)e->op));
}

int64_t vr_profile_calls(const char *name, int backward, double *device_ms) {
  int64_t calls = 0;
  double ms = 0;
  pthread_mutex_lock(&mu);
  resolve_pending();
  for (int k = 0; k < n_entries; k++) {
    char en[64];
    entry_name(&entries[k], en, sizeof en);
    if (entries[k].bwd != (backward != 0) || strcmp(en, name)) continue;
    calls += entries[k].calls;
    ms += entries[k].dev_ms;
  }
  pthread_mutex_unlock(&mu);
  if (device_ms) *device_ms = ms;
  return calls;
}

static int by_device_time(const void *x, const void *y) {
  double a = ((const prof_entry *)x)->dev_ms, b = ((const prof_entry *)y)->dev_ms;
  return a < b ? 1 : a > b ? -1 : 0;
}

static const char *dtype_or_dash(vr_dtype d) { return (int)d < 0 ? "-" : vr_dtype_name(d); }

void vr_profile_report(void) {
  if (!vr_profile_enabled() && n_entries == 0) return;
  for (int d = 0; d < 2; d++) { /* every device's queued work, so that the events are complete */
    const vr_device_api *api = vr_device_get((vr_device)d);
    if (api && api->synchronize) api->synchronize();
  }
  pthread_mutex_lock(&mu);
  resolve_pending();
  double wall = now_s() - t_reset, dev_total = 0, host_total = 0;
  int64_t calls = 0;
  prof_entry sorted[PROF_ENTRIES];
  memcpy(sorted, entries, sizeof(prof_entry) * (size_t)n_entries);
  qsort(sorted, (size_t)n_entries, sizeof(prof_entry), by_device_time);
  for (int k = 0; k < n_entries; k++) {
    dev_total += sorted[k].dev_ms;
    host_total += sorted[k].host_s;
    calls += sorted[k].calls;
  }
  fprintf(stderr, "visreg profile: %.1f ms wall since reset, %.1f ms device time in %lld op calls, %.1f ms host time in them\n",
          1e3 * wall, dev_total, (long long)calls, 1e3 * host_total);
  fprintf(stderr, "%-28s %-4s %-5s %-9s %8s %10s %6s %10s %9s\n", "op", "dir", "dev", "dtypes", "calls", "device ms",
          "%", "host ms", "us/call");
  for (int k = 0; k < n_entries; k++) {
    prof_entry *e = &sorted[k];
    char name[64], dts[32];
    entry_name(e, name, sizeof name);
    snprintf(dts, sizeof dts, "%s>%s", dtype_or_dash(e->din), dtype_or_dash(e->dout));
    fprintf(stderr, "%-28s %-4s %-5s %-9s %8lld %10.2f %6.1f %10.2f %9.1f\n", name, e->bwd ? "bwd" : "fwd",
            vr_device_name((vr_device)e->dev), dts, (long long)e->calls, e->dev_ms,
            dev_total > 0 ? 100.0 * e->dev_ms / dev_total : 0.0, 1e3 * e->host_s,
            e->calls ? 1e3 * e->dev_ms / (double)e->calls : 0.0);
  }
  if (dropped) fprintf(stderr, "(%d calls not counted: more than %d kinds)\n", dropped, PROF_ENTRIES);
  pthread_mutex_unlock(&mu);
}
