/* reg_sliced.c: CPU kernels of the sliced regularizers, VISReg, SWD and SIGReg (conventions at
 * the top of core/reg/visreg.c, swd.c, sigreg.c). The slices are processed in chunks of c
 * columns: P^T = W_c^T X^T (c x VB, one GEMM), each (slice, view) row segment of B values is
 * ranked (radix sort) or Epps-Pulley-summed in parallel and overwritten with dL/dP, and
 * H += (dL/dP) W_c^T (one GEMM). Memory: O(V B D + V B c + D K). Per-segment losses are summed
 * in a fixed order, so the result does not depend on the thread count. The float and double
 * versions come from reg_sliced.inc. */
#include "cpu.h"
#include "../../core/reg/reg.h"
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <stdlib.h>

enum { SL_VISREG = 0, SL_SWD = 1, SL_SIGREG = 2 };

/* elements of the P^T chunk buffer when the kernel chooses the chunk */
#define SL_CHUNK_BUDGET ((int64_t)1 << 21)

static int64_t sl_chunk(int64_t want, int64_t K, int64_t VB) {
  int64_t c = want > 0 ? want : SL_CHUNK_BUDGET / VB;
  if (c < 1) c = 1;
  if (c > K) c = K;
  return c;
}

static size_t sl_align(size_t n) { return (n + 63) & ~(size_t)63; }

/* The work buffers of a call (slices, normalised z, the projection chunk, sort scratch) are one
 * block, kept between calls: a training step calls with the same sizes every time, and a fresh
 * block of several MB costs its page faults (mmap'd memory) on every call. A few blocks are
 * cached under a lock (calls may come from several threads); larger ones than SL_WS_KEEP are
 * freed. The cache is reachable, so leak checkers do not count it. */
#define SL_WS_SLOTS 4
#define SL_WS_KEEP ((size_t)256 << 20)
static pthread_mutex_t sl_ws_mu = PTHREAD_MUTEX_INITIALIZER;
static void *sl_ws_p[SL_WS_SLOTS];
static size_t sl_ws_n[SL_WS_SLOTS];

static void *sl_ws_take(size_t bytes, size_t *cap) {
  void *p = NULL;
  pthread_mutex_lock(&sl_ws_mu);
  int best = -1;
  for (int i = 0; i < SL_WS_SLOTS; i++)
    if (sl_ws_p[i] && sl_ws_n[i] >= bytes && (best < 0 || sl_ws_n[i] < sl_ws_n[best])) best = i;
  if (best >= 0) {
    p = sl_ws_p[best];
    *cap = sl_ws_n[best];
    sl_ws_p[best] = NULL;
  }
  pthread_mutex_unlock(&sl_ws_mu);
  if (!p) {
    p = aligned_alloc(64, bytes < 64 ? 64 : sl_align(bytes));
    *cap = bytes;
  }
  return p;
}

/* back to the cache: an empty slot, else in place of the smallest smaller block */
static void sl_ws_give(void *p, size_t cap) {
  void *drop = p;
  if (cap <= SL_WS_KEEP) {
    pthread_mutex_lock(&sl_ws_mu);
    int slot = -1;
    for (int i = 0; i < SL_WS_SLOTS && slot < 0; i++)
      if (!sl_ws_p[i]) slot = i;
    if (slot < 0)
      for (int i = 0; i < SL_WS_SLOTS; i++)
        if (sl_ws_n[i] < cap && (slot < 0 || sl_ws_n[i] < sl_ws_n[slot])) slot = i;
    if (slot >= 0) {
      drop = sl_ws_p[slot];
      sl_ws_p[slot] = p;
      sl_ws_n[slot] = cap;
    }
    pthread_mutex_unlock(&sl_ws_mu);
  }
  free(drop);
}

/* The end of a parallel region's work, called by every thread after its last (nowait) loop.
 * Idle libgomp workers sleep (OMP_WAIT_POLICY=passive, core/cpu_defaults.c), in the barrier at
 * the end of a region too; when the master reaches that barrier before a worker, it sleeps
 * until the worker wakes it, and that wake-up took 20 to 35 us per region on 2 cores here: a
 * tenth of VISReg's time outside the GEMMs at B = 256. So the master waits for the others'
 * arrival by spinning, at most SL_SPIN pauses (about 25 us; then it sleeps as before, e.g. when
 * a worker lost its core to another process), and reaches the barrier last, which costs no
 * sleep. done: a counter set to 0 before the region. */
#define SL_SPIN 1024
static void sl_arrive(int *done) {
  int nt = omp_get_num_threads();
  if (omp_get_thread_num()) {
    __atomic_add_fetch(done, 1, __ATOMIC_RELEASE);
    return;
  }
  for (int i = 0; i < SL_SPIN && __atomic_load_n(done, __ATOMIC_ACQUIRE) < nt - 1; i++) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
  }
}

#define T float
#define SFX f32
#define GEMM cblas_sgemm
#define ARGSORT vr_reg_argsort_f32
#define SL_PAIRS
#include "reg_sliced.inc"
#undef SL_PAIRS
#undef T
#undef SFX
#undef GEMM
#undef ARGSORT

#define T double
#define SFX f64
#define GEMM cblas_dgemm
#define ARGSORT vr_reg_argsort_f64
#include "reg_sliced.inc"
#undef T
#undef SFX
#undef GEMM
#undef ARGSORT

static vr_status sliced(const vr_kernel_args *a, int mode) {
  return a->in[0]->dtype == VR_F32 ? sliced_f32(a, mode) : sliced_f64(a, mode);
}
vr_status vr_cpu_visreg_fwd(const vr_kernel_args *a) { return sliced(a, SL_VISREG); }
vr_status vr_cpu_swd_fwd(const vr_kernel_args *a) { return sliced(a, SL_SWD); }
vr_status vr_cpu_sigreg_fwd(const vr_kernel_args *a) { return sliced(a, SL_SIGREG); }
