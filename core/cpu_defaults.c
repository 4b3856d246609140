/* cpu_defaults.c: vr_cpu_defaults(), the process-wide settings the CPU ops are fast with: the OpenMP
 * and OpenBLAS thread pools, the OpenBLAS kernels, and the heap. The library never calls it: the
 * host (bin/visreg, the test suites) does, from a constructor that runs before libgomp's and
 * OpenBLAS's own constructors read their environment variables. */
#include "visreg.h"
#include <malloc.h>
#include <stdlib.h>

/* The two thread pools. libgomp's idle workers spin after each parallel region (GOMP_SPINCOUNT pause instructions,
 * milliseconds on recent Intel cores) while the pthread OpenBLAS starts its own threads for the
 * next GEMM: with few cores the spinning workers take the cores the GEMM needs (VISReg
 * forward+backward measured 3 to 6 times slower on 2 cores). Unless the user chose a policy,
 * idle workers sleep instead. */
static void thread_pool_defaults(void) {
  if (!getenv("OMP_WAIT_POLICY") && !getenv("GOMP_SPINCOUNT")) setenv("OMP_WAIT_POLICY", "passive", 0);
  /* Debian's OpenBLAS 0.3.21 (DYNAMIC_ARCH) does not know recent Xeons (Sapphire and Emerald
   * Rapids) and falls back to its generic "Prescott" SSE3 kernels: sgemm then runs 2 to 3 times
   * slower than its AVX-512 kernels. Unless the user chose a core type, pick the kernels the CPU
   * supports. OpenBLAS reads the variable in its own (default priority) constructor. */
  /* The pthread OpenBLAS's idle workers wait by calling sched_yield in a loop (2^28 cycles by
   * default) before they sleep: on 2 cores that took a quarter of the CPU time of VISReg's
   * forward+backward (perf: __sched_yield) from the OpenMP threads sorting between the GEMMs.
   * 2^4 cycles: they sleep almost at once (VISReg 1024 x 512 x 1024: 1.7x the GEMM floor instead
   * of 2.1 to 2.5x). Read by OpenBLAS's constructor, like the core type below. */
  if (!getenv("OPENBLAS_THREAD_TIMEOUT")) setenv("OPENBLAS_THREAD_TIMEOUT", "4", 0);
  if (!getenv("OPENBLAS_CORETYPE")) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512dq"))
      setenv("OPENBLAS_CORETYPE", "SkylakeX", 0);
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
      setenv("OPENBLAS_CORETYPE", "Haswell", 0);
  }
}

/* Tensor buffers of a few MB are allocated and freed at every op. glibc serves them with mmap and
 * unmaps them on free, so each new buffer pays a page fault per 4 KB page (a fresh 1024 x 1024
 * output costs a fifth of the sgemm that fills it). Keeping such buffers in the heap, and the heap
 * from being trimmed at every free, lets the next op reuse memory already mapped. */
static void heap_defaults(void) {
  mallopt(M_MMAP_THRESHOLD, 256 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
}

void vr_cpu_defaults(void) {
  thread_pool_defaults();
  heap_defaults();
}

