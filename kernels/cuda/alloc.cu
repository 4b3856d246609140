/* alloc.cu: the CUDA device API (allocation, copies, synchronisation), the one stream, and the
 * caching allocator.
 *
 * Blocks are rounded up to size classes (512 B below 1 MiB, 2 MiB above) and, when freed, kept
 * in a cache keyed by size; an allocation takes the smallest cached block that fits and is at
 * most twice the request (small) or the request plus 8 MiB (large). Every kernel and copy runs
 * on one stream, so a block freed and handed out again is ordered after its last use without
 * synchronising. A failed cudaMalloc empties the cache and tries once more. VISREG_CUDA_CACHE=0
 * turns caching off (every free is a cudaFree). Host-to-device copies go through pinned staging
 * buffers, so they return before the transfer ends and large batches overlap with kernels. */
#include "common.cuh"
#include <map>
#include <mutex>
#include <unordered_map>
#include <stdlib.h>

namespace {

const size_t kSmallLimit = (size_t)1 << 20;
const size_t kSmallRound = 512;
const size_t kLargeRound = (size_t)2 << 20;
const size_t kStageBytes = (size_t)4 << 20; /* one pinned staging buffer */
const int kStages = 4;

struct Alloc {
  std::mutex mu;
  bool init = false, caching = true;
  cudaStream_t stream = nullptr;
  std::multimap<size_t, void *> cached;      /* size -> free block */
  std::unordered_map<void *, size_t> live;    /* block -> its size */
  int64_t allocated = 0, reserved = 0, peak = 0, n_malloc = 0, n_free = 0, n_hits = 0;
  /* pinned staging ring for host-to-device copies */
  void *stage[kStages] = {};
  cudaEvent_t stage_done[kStages] = {};
  int stage_next = 0;
  bool stage_ok = false, stage_failed = false; /* failed: copies go pageable */
  /* zeroed block counters of the one-launch reductions (vr_cuda_tickets) */
  unsigned *tickets = nullptr;
  size_t n_tickets = 0;
};
Alloc A;

size_t round_size(size_t n) {
  if (n <= kSmallLimit) return (n + kSmallRound - 1) / kSmallRound * kSmallRound;
  return (n + kLargeRound - 1) / kLargeRound * kLargeRound;
}

vr_status empty_cache_locked(void);

/* at exit: the cached blocks and the staging buffers go back to the driver, so a leak check
 * (compute-sanitizer --leak-check full) reports only memory the program still held. Registered
 * after the runtime's first call, so it runs before the runtime's own teardown. */
void release_at_exit(void) {
  std::lock_guard<std::mutex> lock(A.mu);
  if (!A.init) return;
  if (cudaStreamSynchronize(A.stream) != cudaSuccess) return; /* a broken context: leave it */
  empty_cache_locked();
  A.caching = false; /* a tensor freed by a later exit hook goes straight back to the driver */
  const char *rep = getenv("VISREG_CUDA_EXIT_REPORT"); /* what a leak check will report as ours */
  if (rep && rep[0] == '1')
    fprintf(stderr, "visreg cuda at exit: %lld bytes held by live tensors\n", (long long)A.allocated);
  for (int k = 0; k < kStages; k++) {
    if (A.stage[k]) cudaFreeHost(A.stage[k]);
    if (A.stage_done[k]) cudaEventDestroy(A.stage_done[k]);
    A.stage[k] = nullptr;
    A.stage_done[k] = nullptr;
  }
  A.stage_ok = false;
  A.stage_failed = true; /* a copy after this point goes pageable */
  if (A.tickets) cudaFree(A.tickets);
  A.tickets = nullptr;
  A.n_tickets = 0;
  cudaGetLastError();
}

/* called with the lock held */
vr_status ensure_init(void) {
  if (A.init) return VR_OK;
  const char *env = getenv("VISREG_CUDA_CACHE");
  A.caching = !(env && env[0] == '0');
  VR_CU(cudaStreamCreateWithFlags(&A.stream, cudaStreamNonBlocking));
  A.init = true;
  atexit(release_at_exit);
  return VR_OK;
}

/* frees every cached block; lock held */
vr_status empty_cache_locked(void) {
  cudaError_t first = cudaSuccess;
  for (auto &kv : A.cached) {
    cudaError_t e = cudaFree(kv.second);
    if (e != cudaSuccess && first == cudaSuccess) first = e;
    A.reserved -= (int64_t)kv.first;
    A.n_free++;
  }
  A.cached.clear();
  VR_CU(first);
  return VR_OK;
}

vr_status cu_alloc(size_t nbytes, void **ptr) {
  std::lock_guard<std::mutex> lock(A.mu);
  VR_TRY(ensure_init());
  size_t sz = round_size(nbytes ? nbytes : 1);
  void *p = nullptr;
  if (A.caching) {
    auto it = A.cached.lower_bound(sz);
    size_t limit = sz <= kSmallLimit ? 2 * sz : sz + ((size_t)8 << 20);
    if (it != A.cached.end() && it->first <= limit) {
      p = it->second;
      sz = it->first;
      A.cached.erase(it);
      A.n_hits++;
    }
  }
  if (!p) {
    cudaError_t e = cudaMalloc(&p, sz);
    if (e != cudaSuccess) {
      cudaGetLastError(); /* clear the sticky-less OOM so later launches do not report it */
      VR_TRY(empty_cache_locked());
      e = cudaMalloc(&p, sz);
    }
    if (e != cudaSuccess) {
      cudaGetLastError();
      return VR_FAIL(VR_E_OOM, "cuda: could not allocate %zu bytes (%s; %lld bytes in use, %lld reserved)", nbytes,
                     cudaGetErrorString(e), (long long)A.allocated, (long long)A.reserved);
    }
    A.n_malloc++;
    A.reserved += (int64_t)sz;
  }
  A.live[p] = sz;
  A.allocated += (int64_t)sz;
  if (A.allocated > A.peak) A.peak = A.allocated;
  *ptr = p;
  return VR_OK;
}

void cu_release(void *ptr, size_t nbytes) {
  (void)nbytes;
  if (!ptr) return;
  std::lock_guard<std::mutex> lock(A.mu);
  auto it = A.live.find(ptr);
  if (it == A.live.end()) return; /* not ours: ignore rather than crash */
  size_t sz = it->second;
  A.live.erase(it);
  A.allocated -= (int64_t)sz;
  if (A.caching) {
    A.cached.emplace(sz, ptr);
  } else {
    cudaFree(ptr); /* synchronises the device, so pending kernels finish first */
    A.reserved -= (int64_t)sz;
    A.n_free++;
  }
}

/* lock held */
vr_status stage_init(void) {
  if (A.stage_ok) return VR_OK;
  if (A.stage_failed) return VR_E_CUDA;
  for (int k = 0; k < kStages; k++) {
    if (!A.stage[k] && cudaHostAlloc(&A.stage[k], kStageBytes, cudaHostAllocDefault) != cudaSuccess) {
      A.stage[k] = nullptr;
      A.stage_failed = true;
    }
    if (!A.stage_done[k] && cudaEventCreateWithFlags(&A.stage_done[k], cudaEventDisableTiming) != cudaSuccess) {
      A.stage_done[k] = nullptr;
      A.stage_failed = true;
    }
  }
  if (A.stage_failed) {
    cudaGetLastError();
    return VR_FAIL(VR_E_CUDA, "cuda: pinned staging buffers could not be allocated");
  }
  A.stage_ok = true;
  return VR_OK;
}

/* host -> device through the pinned ring: each chunk waits only for the earlier use of its buffer */
vr_status h2d_staged(void *dst, const void *src, size_t n) {
  std::lock_guard<std::mutex> lock(A.mu);
  VR_TRY(ensure_init());
  if (stage_init() != VR_OK) { /* no pinned memory: a pageable copy (returns once src is read) */
    vr_clear_error();
    cudaGetLastError();
    VR_CU(cudaMemcpyAsync(dst, src, n, cudaMemcpyHostToDevice, A.stream));
    return VR_OK;
  }
  size_t done = 0;
  while (done < n) {
    size_t c = n - done < kStageBytes ? n - done : kStageBytes;
    int k = A.stage_next;
    A.stage_next = (k + 1) % kStages;
    VR_CU(cudaEventSynchronize(A.stage_done[k]));
    memcpy(A.stage[k], (const char *)src + done, c);
    VR_CU(cudaMemcpyAsync((char *)dst + done, A.stage[k], c, cudaMemcpyHostToDevice, A.stream));
    VR_CU(cudaEventRecord(A.stage_done[k], A.stream));
    done += c;
  }
  return VR_OK;
}

vr_status cu_memcpy(void *dst, const void *src, size_t nbytes, int kind) {
  if (!nbytes) return VR_OK;
  cudaStream_t s = vr_cuda_stream();
  if (!s) return VR_FAIL(VR_E_CUDA, "cuda: the stream could not be created: %s", vr_last_error());
  switch (kind) {
  case 0:
    if (nbytes <= ((size_t)256 << 20)) return h2d_staged(dst, src, nbytes);
    /* very large: pageable copy (returns once the host buffer has been read) */
    VR_CU(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyHostToDevice, s));
    return VR_OK;
  case 1:
    VR_CU(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDeviceToHost, s));
    VR_CU(cudaStreamSynchronize(s));
    return VR_OK;
  case 2:
    VR_CU(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDeviceToDevice, s));
    return VR_OK;
  default:
    return VR_FAIL(VR_E_INTERNAL, "kind: expected 0, 1 or 2, got %d", kind);
  }
}

vr_status cu_sync(void) {
  cudaStream_t s = vr_cuda_stream();
  if (!s) return VR_FAIL(VR_E_CUDA, "cuda: the stream could not be created");
  VR_CU(cudaStreamSynchronize(s));
  return VR_OK;
}

/* the op profiler's events (core/profile.c): timing events on the stream */
vr_status cu_event_record(void **ev) {
  cudaStream_t s = vr_cuda_stream();
  if (!s) return VR_FAIL(VR_E_CUDA, "cuda: the stream could not be created");
  cudaEvent_t e;
  VR_CU(cudaEventCreate(&e));
  cudaError_t r = cudaEventRecord(e, s);
  if (r != cudaSuccess) {
    cudaEventDestroy(e);
    return VR_FAIL(VR_E_CUDA, "cudaEventRecord: %s", cudaGetErrorString(r));
  }
  *ev = (void *)e;
  return VR_OK;
}
vr_status cu_event_elapsed(void *start, void *end, double *ms) {
  float f = 0;
  VR_CU(cudaEventSynchronize((cudaEvent_t)end));
  VR_CU(cudaEventElapsedTime(&f, (cudaEvent_t)start, (cudaEvent_t)end));
  *ms = f;
  return VR_OK;
}
void cu_event_free(void *ev) { cudaEventDestroy((cudaEvent_t)ev); }

} // namespace

cudaStream_t vr_cuda_stream(void) {
  std::lock_guard<std::mutex> lock(A.mu);
  if (ensure_init() != VR_OK) return nullptr;
  return A.stream;
}

vr_status vr_cuda_scratch(size_t nbytes, void **ptr) { return cu_alloc(nbytes, ptr); }
void vr_cuda_scratch_free(void *ptr, size_t nbytes) { cu_release(ptr, nbytes); }

vr_status vr_cuda_tickets(size_t n, unsigned **ptr) {
  std::lock_guard<std::mutex> lock(A.mu);
  VR_TRY(ensure_init());
  if (n > A.n_tickets) {
    size_t want = n < 4096 ? 4096 : (n + 4095) / 4096 * 4096;
    unsigned *p = nullptr;
    if (cudaMalloc(&p, want * sizeof(unsigned)) != cudaSuccess) {
      cudaGetLastError();
      return VR_FAIL(VR_E_OOM, "cuda: could not allocate %zu block counters", want);
    }
    VR_CU(cudaMemsetAsync(p, 0, want * sizeof(unsigned), A.stream));
    if (A.tickets) { /* no kernel may still count in the old ones (a non-blocking stream: wait for it first) */
      cudaError_t e = cudaStreamSynchronize(A.stream);
      if (e != cudaSuccess) {
        cudaFree(p);
        return VR_FAIL(VR_E_CUDA, "cuda: %s while growing the block counters", cudaGetErrorString(e));
      }
      cudaFree(A.tickets);
    }
    A.tickets = p;
    A.n_tickets = want;
  }
  *ptr = A.tickets;
  return VR_OK;
}

extern "C" {

void vr_cuda_register_alloc(void) {
  static const vr_device_api api = {cu_alloc, cu_release, cu_memcpy, cu_sync, cu_event_record, cu_event_elapsed,
                                    cu_event_free};
  vr_device_register(VR_CUDA, &api);
}

/* ---- public statistics (core/visreg.h, "CUDA memory") ---- */
int64_t vr_cuda_memory_allocated(void) {
  std::lock_guard<std::mutex> lock(A.mu);
  return A.allocated;
}
int64_t vr_cuda_memory_reserved(void) {
  std::lock_guard<std::mutex> lock(A.mu);
  return A.reserved;
}
int64_t vr_cuda_memory_peak(void) {
  std::lock_guard<std::mutex> lock(A.mu);
  return A.peak;
}
int64_t vr_cuda_malloc_count(void) {
  std::lock_guard<std::mutex> lock(A.mu);
  return A.n_malloc;
}
int64_t vr_cuda_cache_hits(void) {
  std::lock_guard<std::mutex> lock(A.mu);
  return A.n_hits;
}
int vr_cuda_caching_enabled(void) {
  std::lock_guard<std::mutex> lock(A.mu);
  if (!A.init) {
    const char *env = getenv("VISREG_CUDA_CACHE");
    return !(env && env[0] == '0');
  }
  return A.caching ? 1 : 0;
}
void vr_cuda_reset_peak(void) {
  std::lock_guard<std::mutex> lock(A.mu);
  A.peak = A.allocated;
}
vr_status vr_cuda_empty_cache(void) {
  if (!vr_cuda_available()) return VR_OK;
  std::lock_guard<std::mutex> lock(A.mu);
  if (A.init) VR_CU(cudaStreamSynchronize(A.stream));
  return empty_cache_locked();
}
vr_status vr_cuda_synchronize(void) {
  if (!vr_cuda_available()) return VR_OK;
  return cu_sync();
}

} // extern "C"
