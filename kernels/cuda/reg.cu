/* reg.cu: the CUDA column of the regularizer ops (VR_OP_VISREG .. VR_OP_INVARIANCE): registration,
 * the shared backward (the forward already computed dL/dz for an upstream gradient of 1; backward
 * scales it by the upstream gradient, read on the device), the deterministic sum, the sliced
 * regularizers' loss, the optional finite check and the shared-memory limit.
 *
 * The regularizers on CUDA, file by file (the same work as the CPU's kernels/cpu/reg*.c):
 *   reg.cu, reg.cuh    registration, the shared backward, loss sums, phase timers
 *   reg_sliced.cu      VISReg, SWD and SIGReg: projections, rank sorts, terms, gradient
 *   reg_draw.cu        their slice matrices (reg_slices.cuh: the column pass it shares)
 *   reg_colstats.cu    VISReg's per-column statistics of z (centre and scale terms)
 *   reg_segsort.cu     the register-tiled sort of the projections' segments
 *   gemm.cu            the GEMMs, plain and 3xTF32
 *   reg_gram.cu        VICReg (two views and pooled), Barlow Twins and the invariance term */
#include "reg.cuh"
#include "blockreduce.cuh"
#include "colsum.cuh"
#include <mutex>
#include <stdio.h>
#include <stdlib.h>

namespace {

/* out = s * g, s the 0-dim upstream gradient of any float dtype, read as double and rounded to T
 * (as the CPU: f32 multiplies in float) */
template <typename T> __global__ void scale_k(const void *go, int godt, const T *g, T *o, int64_t n) {
  T s = (T)vr_cu_ld_any(go, godt, 0);
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    o[i] = s * g[i];
}

vr_status vr_cuda_reg_bwd(const vr_kernel_args *a) {
  const vr_tensor *go = a->in[0], *g = a->in[1];
  vr_tensor *o = a->out[0];
  int64_t n = vr_tensor_numel(g);
  if (!n) return VR_OK;
  if (!vr_is_float(go->dtype)) return VR_FAIL(VR_E_DTYPE, "grad: expected a float tensor, got %s", vr_dtype_name(go->dtype));
  cudaStream_t s = vr_cuda_stream();
  if (g->dtype == VR_F32)
    scale_k<float><<<vr_cu_blocks(n), VR_CU_THREADS, 0, s>>>(vr_data(go), (int)go->dtype, (const float *)vr_data(g),
                                                             (float *)vr_data(o), n);
  else if (g->dtype == VR_F64)
    scale_k<double><<<vr_cu_blocks(n), VR_CU_THREADS, 0, s>>>(vr_data(go), (int)go->dtype, (const double *)vr_data(g),
                                                              (double *)vr_data(o), n);
  else
    return VR_CU_UNSUPPORTED_DTYPE("grad", g->dtype);
  VR_CU_LAUNCHED("regularizer backward");
  return VR_OK;
}

__global__ void sum_k(const double *x, int64_t n, double *out) {
  __shared__ double sh[1024];
  double acc = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) acc += x[i];
  acc = vr_cu_reg_block_sum(acc, sh);
  if (threadIdx.x == 0) *out = acc;
}

template <typename T> __global__ void nonfinite_k(const T *x, int64_t n, int *flag) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    if (!isfinite((double)x[i])) atomicMin(flag, (int)(i < 0x7FFFFFFF ? i : 0x7FFFFFFF)); /* integer: exact */
}

std::once_flag smem_once;
size_t smem_max = 48 * 1024;

} // namespace

vr_status vr_cu_reg_loss(const vr_cu_loss_in &L) {
  return vr_colsum::sums(vr_cu_part_terms{L.part}, vr_cu_loss_fin{L}, 1, L.n, 1);
}

vr_status vr_cu_reg_sum(const double *x, int64_t n, double *out) {
  sum_k<<<1, 1024, 0, vr_cuda_stream()>>>(x, n, out);
  VR_CU_LAUNCHED("regularizer sum");
  return VR_OK;
}

size_t vr_cu_smem_optin(void) {
  std::call_once(smem_once, [] {
    int dev = 0, v = 0;
    if (cudaGetDevice(&dev) == cudaSuccess &&
        cudaDeviceGetAttribute(&v, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev) == cudaSuccess && v > 0)
      smem_max = (size_t)v;
    cudaGetLastError();
  });
  return smem_max;
}

vr_status vr_cu_reg_check_finite(const char *func, const vr_tensor *z) {
  const char *e = getenv("VISREG_CUDA_CHECK_FINITE");
  if (!(e && e[0] == '1')) return VR_OK;
  int64_t n = vr_tensor_numel(z);
  if (!n) return VR_OK;
  vr_cu_buf f;
  VR_TRY(f.get(sizeof(int)));
  cudaStream_t s = vr_cuda_stream();
  VR_CU(cudaMemsetAsync(f.p, 0x7F, sizeof(int), s)); /* 0x7F7F7F7F: none */
  if (z->dtype == VR_F32)
    nonfinite_k<float><<<vr_cu_blocks(n), VR_CU_THREADS, 0, s>>>((const float *)vr_data(z), n, f.as<int>());
  else
    nonfinite_k<double><<<vr_cu_blocks(n), VR_CU_THREADS, 0, s>>>((const double *)vr_data(z), n, f.as<int>());
  VR_CU_LAUNCHED("finite check");
  int bad = 0;
  VR_CU(cudaMemcpyAsync(&bad, f.p, sizeof(int), cudaMemcpyDeviceToHost, s));
  VR_CU(cudaStreamSynchronize(s));
  if (bad == 0x7F7F7F7F) return VR_OK;
  int64_t D = z->shape[2], B = z->shape[1];
  return vr_error_set(VR_E_VALUE, func, __FILE__, __LINE__, "z: expected finite values, got a non-finite value at [%lld, %lld, %lld]",
                      (long long)(bad / (B * D)), (long long)(bad / D % B), (long long)(bad % D));
}

vr_cu_phases::vr_cu_phases() {
  on = vr_profile_phases();
}
void vr_cu_phases::mark(const char *what) {
  if (!on || n == 16 || cudaEventCreate(&ev[n]) != cudaSuccess) return;
  name[n] = what;
  cudaEventRecord(ev[n++], vr_cuda_stream());
}
void vr_cu_phases::report(const char *what) {
  if (!on || n < 2) return;
  cudaEventSynchronize(ev[n - 1]);
  float total = 0;
  cudaEventElapsedTime(&total, ev[0], ev[n - 1]);
  fprintf(stderr, "%s phases (ms, total %.3f):", what, total);
  for (int i = 1; i < n; i++) {
    float ms = 0;
    cudaEventElapsedTime(&ms, ev[i - 1], ev[i]);
    fprintf(stderr, " %s %.3f", name[i], ms);
  }
  fprintf(stderr, "\n");
}
vr_cu_phases::~vr_cu_phases() {
  for (int i = 0; i < n; i++) cudaEventDestroy(ev[i]);
}

extern "C" void vr_cuda_register_reg(void) {
  vr_kernel_register(VR_OP_VISREG, VR_CUDA, vr_cuda_visreg_fwd, vr_cuda_reg_bwd);
  vr_kernel_register(VR_OP_SWD, VR_CUDA, vr_cuda_swd_fwd, vr_cuda_reg_bwd);
  vr_kernel_register(VR_OP_SIGREG, VR_CUDA, vr_cuda_sigreg_fwd, vr_cuda_reg_bwd);
  vr_kernel_register(VR_OP_VICREG, VR_CUDA, vr_cuda_vicreg_fwd, vr_cuda_reg_bwd);
  vr_kernel_register(VR_OP_VICREG_POOLED, VR_CUDA, vr_cuda_vicreg_pooled_fwd, vr_cuda_reg_bwd);
  vr_kernel_register(VR_OP_BARLOW, VR_CUDA, vr_cuda_barlow_fwd, vr_cuda_reg_bwd);
  vr_kernel_register(VR_OP_INVARIANCE, VR_CUDA, vr_cuda_invariance_fwd, vr_cuda_reg_bwd);
}
