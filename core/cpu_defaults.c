/* cpu_defaults.c: process-wide defaults for the OpenMP and OpenBLAS thread pools and kernels,
 * set before either library reads its environment. Every CPU op benefits, not only the regularizers. */
#include <stdlib.h>

/* Process-wide defaults for the two thread pools, set before either library starts.
 * libgomp's idle workers spin after each parallel region (GOMP_SPINCOUNT pause instructions,
 * milliseconds on recent Intel cores) while the pthread OpenBLAS starts its own threads for the
 * next GEMM: with few cores the spinning workers take the cores the GEMM needs (VISReg
 * forward+backward measured 3 to 6 times slower on 2 cores). Unless the user chose a policy,
 * idle workers sleep instead. A priority constructor runs before libgomp's (default priority)
 * one reads the environment, in the statically linked binary and test suites. */
__attribute__((constructor(101))) static void reg_omp_wait_policy(void) {
  if (!getenv("OMP_WAIT_POLICY") && !getenv("GOMP_SPINCOUNT")) setenv("OMP_WAIT_POLICY", "passive", 0);
  /* Debian's OpenBLAS 0.3.21 (DYNAMIC_ARCH) does not know recent Xeons (Sapphire and Emerald
   * Rapids) and falls back to its generic "Prescott" SSE3 kernels: sgemm then runs 2 to 3 times
   * slower than its AVX-512 kernels. Unless the user chose a core type, pick the kernels the CPU
   * supports. OpenBLAS reads the variable in its own (default priority) constructor. */
  if (!getenv("OPENBLAS_CORETYPE")) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512dq"))
      setenv("OPENBLAS_CORETYPE", "SkylakeX", 0);
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
      setenv("OPENBLAS_CORETYPE", "Haswell", 0);
  }
}
