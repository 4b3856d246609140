/* reg_sliced.cu: CUDA kernels of the sliced regularizers VISReg, SWD and SIGReg, with the
 * argument layout of core/reg/visreg.c, swd.c and sigreg.c and the CPU's chunked structure
 * (kernels/cpu/reg_sliced.inc):
 *
 *   W = unit-column slices (reg_draw.cu); VISReg: per (view, dim) mean and sigma in double
 *   (shifted sums), X = (z - mu) / sigma, center and scale terms, and W (drawn, its column norms
 *   and scaling) in two launches (reg_colstats.cu);
 *   for each chunk of c slices: P^T = W_c^T X^T (c x VB, one cuBLAS GEMM); one block per
 *   (slice, view) segment of B projections sorts them in shared memory (bitonic network on
 *   (key, position) words: ties keep index order, as the CPU's stable radix sort), sums
 *   (P - q_rank)^2 in a fixed tree and overwrites P with dL/dP through the ranks (SIGReg: the
 *   segment is read once into shared memory, then the Epps-Pulley sums of every knot and its
 *   gradient come from there); H += dL/dP W_c^T (GEMM,
 *   straight into dL/dz);
 *   VISReg's gradient through the standardisation (reg_colstats.cu, two launches), with the loss
 *   and terms summed from the device accumulators in the first of them (else alone, reg.cu). At
 *   (V, B, D, K) = (2, 256, 2048, 256) a forward and backward is 9 stream operations: 2 GEMMs and
 *   7 kernels, the autograd's included (few launches, as launch latency sets the time at that
 *   size).
 * f32 projections use 3xTF32 GEMMs at large sizes (use_3xtf32).
 * f32 segments of 129..8192 projections go to the register-tiled sort of reg_segsort.cu instead.
 * Segments longer than shared memory holds are ranked by a stable CUB radix sort over all the
 * chunk's segments ((segment, key) for f32; key then segment for f64). No host synchronisation;
 * every sum has a fixed order, so results do not vary from run to run. */
#include "reg.cuh"
#include <stdlib.h>

namespace {

enum { SL_VISREG = 0, SL_SWD = 1, SL_SIGREG = 2 };
const int kSegThreads = 256;

/* ---------------------------------------------------------------- sorted segments (VISReg, SWD) */

/* the rank keys of kernels/cpu/reg_sort.c: raw bits (negatives inverted), so -0 ranks below +0 there too */
__device__ __forceinline__ uint64_t proj_key(float v) {
  uint32_t u = __float_as_uint(v);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}
__device__ __forceinline__ uint64_t proj_key(double v) {
  uint64_t u = (uint64_t)__double_as_longlong(v);
  return (u & 0x8000000000000000ull) ? ~u : (u | 0x8000000000000000ull);
}

/* one block per segment of B values (P = the power of two >= B). Shared: P words (f32: key << 32 |
 * position) or P keys + P positions (f64). part[s] = sum_i (P[perm i] - q_i)^2; with grad,
 * seg[b] = coef (P[b] - q_rank(b)). */
template <typename T>
__global__ void seg_sort_k(T *Pt, int64_t nseg, int64_t B, int P, const T *q, double coef, int grad, double *part) {
  extern __shared__ uint64_t smem[];
  __shared__ double red[kSegThreads];
  const bool wide = sizeof(T) == 8;
  uint32_t *pos = (uint32_t *)(smem + P);
  for (int64_t s = blockIdx.x; s < nseg; s += gridDim.x) {
    T *seg = Pt + s * B;
    for (int i = threadIdx.x; i < P; i += blockDim.x) {
      if (wide) {
        smem[i] = i < B ? proj_key(seg[i]) : ~(uint64_t)0;
        pos[i] = (uint32_t)i; /* padding: positions >= B sort after equal real keys */
      } else {
        smem[i] = i < B ? (proj_key(seg[i]) << 32) | (uint32_t)i : ~(uint64_t)0;
      }
    }
    if (wide)
      vr_cu_bitonic_kp(smem, pos, P, P);
    else
      vr_cu_bitonic_u64(smem, P, P);
    double acc = 0;
    for (int i = threadIdx.x; i < B; i += blockDim.x) {
      int64_t b = wide ? (int64_t)pos[i] : (int64_t)(smem[i] & 0xFFFFFFFFu);
      double d = (double)seg[b] - (double)q[i];
      acc += d * d;
      if (grad) seg[b] = (T)(coef * d); /* b is read and written by this thread only */
    }
    acc = vr_cu_reg_block_sum(acc, red);
    if (threadIdx.x == 0) part[s] = acc;
  }
}

/* long segments: radix-sorted (key, element) pairs; e = s B + i is rank i of segment s */
template <typename T> __global__ void long_keys_k(const T *Pt, int64_t n, int64_t B, uint64_t *keys, int64_t *vals) {
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < n; e += (int64_t)gridDim.x * blockDim.x) {
    uint64_t k = proj_key(Pt[e]);
    keys[e] = sizeof(T) == 8 ? k : ((uint64_t)(e / B) << 32) | k;
    vals[e] = e;
  }
}
__global__ void seg_keys_k(const int64_t *vals, uint64_t *keys, int64_t B, int64_t n) {
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < n; e += (int64_t)gridDim.x * blockDim.x)
    keys[e] = (uint64_t)(vals[e] / B);
}
/* per rank: the squared difference, and the gradient written through the rank */
template <typename T>
__global__ void long_rank_k(T *Pt, const int64_t *sorted, int64_t n, int64_t B, const T *q, double coef, int grad,
                            double *sq) {
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < n; e += (int64_t)gridDim.x * blockDim.x) {
    int64_t src = sorted[e], i = e % B;
    double d = (double)Pt[src] - (double)q[i];
    sq[e] = d * d;
    if (grad) Pt[src] = (T)(coef * d);
  }
}
/* part[s] = sum of the segment's squares in a fixed tree */
__global__ void seg_sum_k(const double *sq, int64_t nseg, int64_t B, double *part) {
  __shared__ double red[kSegThreads];
  for (int64_t s = blockIdx.x; s < nseg; s += gridDim.x) {
    double acc = 0;
    for (int64_t i = threadIdx.x; i < B; i += blockDim.x) acc += sq[s * B + i];
    acc = vr_cu_reg_block_sum(acc, red);
    if (threadIdx.x == 0) part[s] = acc;
  }
}

/* ---------------------------------------------------------------- Epps-Pulley segments (SIGReg) */

/* ep[j] = a_j phi_j, ep[J + j] = phi_j, ep[2J + j] = 2 a_j phi_j t_j / (V K) */
__global__ void ep_k(int J, double dt, double VK, double *ep) {
  for (int j = threadIdx.x; j < J; j += blockDim.x) {
    double t = dt * j, phi = exp(-0.5 * t * t), w = (j == 0 || j == J - 1) ? dt : 2 * dt;
    ep[j] = w * phi;
    ep[J + j] = phi;
    ep[2 * J + j] = 2.0 * w * phi * t / VK;
  }
}

/* two block-wide double sums at once, fixed tree (sh holds 2 blockDim.x) */
__device__ __forceinline__ void block_sum2(double *a, double *b, double *sh) {
  int n = blockDim.x;
  sh[threadIdx.x] = *a;
  sh[n + threadIdx.x] = *b;
  __syncthreads();
  for (int w = n / 2; w > 0; w >>= 1) {
    if ((int)threadIdx.x < w) {
      sh[threadIdx.x] += sh[threadIdx.x + w];
      sh[n + threadIdx.x] += sh[n + threadIdx.x + w];
    }
    __syncthreads();
  }
  *a = sh[0];
  *b = sh[n];
  __syncthreads();
}

/* one block per segment, read from global memory once: the B projections are staged in shared
 * memory (as double) when they fit (stage = 1), then for every knot the block sums cos and sin of
 * t_j x over the segment; part[s] = B sum_j a_j phi_j ((C_j - phi_j)^2 + S_j^2); with grad,
 * seg[b] = sum_j (gs_j cos + gc_j sin)(t_j x_b). Shared: 2 J coefficients, then B values. */
template <typename T>
__global__ void seg_ep_k(T *Pt, int64_t nseg, int64_t B, int J, double dt, const double *ep, int grad, int stage,
                         double *part) {
  extern __shared__ double coef[]; /* gc[0, J), gs[J, 2J), then the staged values */
  __shared__ double red[2 * kSegThreads];
  double *xs = coef + 2 * J;
  const double *ew = ep, *phi = ep + J, *eg = ep + 2 * J;
  double inv_b = 1.0 / (double)B;
  for (int64_t s = blockIdx.x; s < nseg; s += gridDim.x) {
    T *seg = Pt + s * B;
    if (stage) {
      for (int64_t b = threadIdx.x; b < B; b += blockDim.x) xs[b] = (double)seg[b];
      __syncthreads();
    }
    double stat = 0;
    for (int j = 0; j < J; j++) {
      double t = dt * j, c = 0, sn = 0;
      for (int64_t b = threadIdx.x; b < B; b += blockDim.x) {
        double sv, cv;
        sincos(t * (stage ? xs[b] : (double)seg[b]), &sv, &cv);
        c += cv;
        sn += sv;
      }
      block_sum2(&c, &sn, red);
      c = c * inv_b - phi[j];
      sn *= inv_b;
      stat += ew[j] * (c * c + sn * sn);
      if (threadIdx.x == 0) {
        coef[j] = -eg[j] * c;
        coef[J + j] = eg[j] * sn;
      }
    }
    __syncthreads(); /* coefficients visible; every value of seg read */
    if (grad)
      for (int64_t b = threadIdx.x; b < B; b += blockDim.x) {
        double x = stage ? xs[b] : (double)seg[b], g = 0;
        for (int j = 1; j < J; j++) {
          double sv, cv;
          sincos(dt * j * x, &sv, &cv);
          g += coef[J + j] * cv + coef[j] * sv;
        }
        seg[b] = (T)g;
      }
    if (threadIdx.x == 0) part[s] = (double)B * stat;
    __syncthreads();
  }
}

/* ---------------------------------------------------------------- 3xTF32 projections */

/* x = hi + lo with hi holding TF32's 10 mantissa bits (the low 13 cleared) and lo = x - hi exactly;
 * hi may be x itself */
__global__ void split_tf32_k(const float *x, int64_t n, float *hi, float *lo) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    float v = x[i], h = __uint_as_float(__float_as_uint(v) & 0xFFFFE000u);
    hi[i] = h;
    lo[i] = v - h;
  }
}
vr_status split_tf32(const float *x, int64_t n, float *hi, float *lo) {
  split_tf32_k<<<vr_cu_blocks(n), VR_CU_THREADS, 0, vr_cuda_stream()>>>(x, n, hi, lo);
  VR_CU_LAUNCHED("3xTF32 split");
  return VR_OK;
}

/* f32 projections on TF32 tensor cores in three products (gemm.cu: an SGEMM's precision) on
 * sm_80 and later when the GEMMs are large enough to pay for the splits; the variant 3xtf32=off
 * turns it off, =on on at every size (core/variants.c) */
bool use_3xtf32(int64_t VB, int64_t D, int64_t K) {
  static int major = -1;
  if (major < 0) {
    int dev = 0, v = 0;
    major = cudaGetDevice(&dev) == cudaSuccess && cudaDeviceGetAttribute(&v, cudaDevAttrComputeCapabilityMajor, dev) == cudaSuccess ? v : 0;
    cudaGetLastError();
  }
  if (major < 8) return false;
  if (vr_variants[VR_VARIANT_3XTF32] == VR_3XTF32_OFF) return false;
  if (vr_variants[VR_VARIANT_3XTF32] == VR_3XTF32_ON) return true;
  return (double)VB * (double)D * (double)K >= 2147483648.0;
}

/* ---------------------------------------------------------------- the driver */

unsigned seg_grid(int64_t nseg) { return (unsigned)(nseg < 65535 ? (nseg < 1 ? 1 : nseg) : 65535); }

/* How a chunk's segments are ranked: SIGReg's Epps-Pulley pass over each segment in shared memory;
 * for VISReg and SWD the register-tiled sort (f32, reg_segsort.cu), the shared-memory sort, or a
 * CUB radix sort over the whole chunk for segments longer than shared memory holds. */
enum rank_path { RANK_EP, RANK_REGISTERS, RANK_SHARED, RANK_RADIX };
struct rank_plan {
  rank_path path;
  int P;                           /* the power of two >= B */
  size_t smem;                     /* dynamic shared memory of a segment's block */
  int stage;                       /* SIGReg: the segment staged in shared memory */
  vr_cu_buf kb, kb2, vb, vb2, sqb; /* RANK_RADIX: keys, values and squares of the chunk */
};

template <typename T> vr_status plan_ranking(int mode, int64_t B, int J, int64_t chunk_values, rank_plan *r) {
  r->P = vr_cu_pow2_at_least(B);
  r->smem = mode == SL_SIGREG ? 16 * (size_t)J : (size_t)r->P * (sizeof(T) == 8 ? 12 : 8);
  size_t optin = vr_cu_smem_optin(), static_smem = sizeof(double) * 2 * kSegThreads;
  bool in_smem = r->smem + static_smem <= optin;
  r->stage = mode == SL_SIGREG && r->smem + 8 * (size_t)B + static_smem <= optin;
  if (r->stage) r->smem += 8 * (size_t)B;
  if (mode == SL_SIGREG && !in_smem) return VR_FAIL(VR_E_UNSUPPORTED, "knots: %d knots need more shared memory", J);
  if (in_smem && r->smem + static_smem > 48 * 1024) { /* static + dynamic above the default 48 KB */
    if (mode == SL_SIGREG) VR_CU(cudaFuncSetAttribute(seg_ep_k<T>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)r->smem));
    else VR_CU(cudaFuncSetAttribute(seg_sort_k<T>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)r->smem));
  }
  if (!in_smem) {
    size_t n = (size_t)chunk_values;
    VR_TRY(r->kb.get(8 * n));
    VR_TRY(r->kb2.get(8 * n));
    VR_TRY(r->vb.get(8 * n));
    VR_TRY(r->vb2.get(8 * n));
    VR_TRY(r->sqb.get(8 * n));
  }
  bool reg_sort = sizeof(T) == 4 && mode != SL_SIGREG && vr_cu_seg_sort_f32_fits(B);
  r->path = mode == SL_SIGREG ? RANK_EP : reg_sort ? RANK_REGISTERS : in_smem ? RANK_SHARED : RANK_RADIX;
  return VR_OK;
}

/* what ranking a chunk needs beside its projections Pt (nseg segments of B): SIGReg's knots (J,
 * their spacing dt and the ep table), the targets q and the gradient's coefficient (VISReg, SWD),
 * whether the gradient is wanted, the segments' sums out and, for the register sort with 3xTF32,
 * where dL/dP's low part goes */
template <typename T> struct rank_args {
  int64_t B;
  int J;
  double dt;
  const double *ep;
  const T *q;
  double coef;
  bool grad;
  float *grad_lo;
};

/* part[s] = segment s's sum; with grad, Pt overwritten by dL/dP */
template <typename T> vr_status rank_chunk(rank_plan &r, const rank_args<T> &x, T *Pt, int64_t nseg, double *part) {
  cudaStream_t st = vr_cuda_stream();
  int64_t B = x.B;
  switch (r.path) {
  case RANK_EP:
    seg_ep_k<T><<<seg_grid(nseg), kSegThreads, r.smem, st>>>(Pt, nseg, B, x.J, x.dt, x.ep, x.grad, r.stage, part);
    VR_CU_LAUNCHED("sigreg segments");
    return VR_OK;
  case RANK_REGISTERS:
    return vr_cu_seg_sort_f32((float *)Pt, nseg, B, (const float *)x.q, x.coef, x.grad, part, x.grad_lo);
  case RANK_SHARED:
    seg_sort_k<T><<<seg_grid(nseg), kSegThreads, r.smem, st>>>(Pt, nseg, B, r.P, x.q, x.coef, x.grad, part);
    VR_CU_LAUNCHED("sorted segments");
    return VR_OK;
  case RANK_RADIX: break;
  }
  int64_t n = nseg * B;
  long_keys_k<T><<<vr_cu_blocks(n), VR_CU_THREADS, 0, st>>>(Pt, n, B, r.kb.as<uint64_t>(), r.vb.as<int64_t>());
  VR_CU_LAUNCHED("segment keys");
  uint64_t *ko = nullptr;
  int64_t *vo = nullptr;
  int sbits = vr_cu_bits_for((uint64_t)nseg);
  if (sizeof(T) == 4) {
    VR_TRY(vr_cu_radix_pairs(r.kb.as<uint64_t>(), r.kb2.as<uint64_t>(), r.vb.as<int64_t>(), r.vb2.as<int64_t>(), n, 32 + sbits,
                             &ko, &vo));
  } else {
    VR_TRY(vr_cu_radix_pairs(r.kb.as<uint64_t>(), r.kb2.as<uint64_t>(), r.vb.as<int64_t>(), r.vb2.as<int64_t>(), n, 64, &ko,
                             &vo));
    if (nseg > 1) {
      uint64_t *kalt = ko == r.kb.as<uint64_t>() ? r.kb2.as<uint64_t>() : r.kb.as<uint64_t>();
      int64_t *valt = vo == r.vb.as<int64_t>() ? r.vb2.as<int64_t>() : r.vb.as<int64_t>();
      seg_keys_k<<<vr_cu_blocks(n), VR_CU_THREADS, 0, st>>>(vo, ko, B, n);
      VR_CU_LAUNCHED("segment ids");
      VR_TRY(vr_cu_radix_pairs(ko, kalt, vo, valt, n, sbits, &ko, &vo));
    }
  }
  long_rank_k<T><<<vr_cu_blocks(n), VR_CU_THREADS, 0, st>>>(Pt, vo, n, B, x.q, x.coef, x.grad, r.sqb.as<double>());
  VR_CU_LAUNCHED("ranked segments");
  seg_sum_k<<<seg_grid(nseg), kSegThreads, 0, st>>>(r.sqb.as<double>(), nseg, B, part);
  VR_CU_LAUNCHED("segment sums");
  return VR_OK;
}

/* The two GEMMs of a chunk of slices [k0, k0 + kc): P^T = W_c^T X^T and dL/dz (+)= dL/dP W_c^T,
 * in z's dtype or, f32 with x3, in 3xTF32 from the operands' high and low parts */
template <typename T> struct projections {
  vr_dtype dt;
  bool x3;
  int64_t VB, D, K;
  const T *W, *X;
  const float *Wh, *Wl, *Xh, *Xl;
};
template <typename T> vr_status project(const projections<T> &p, int64_t k0, int64_t kc, T *Pt) {
  if (p.x3) return vr_cu_gemm_rm_3xtf32(1, 1, kc, p.VB, p.D, 1.0, p.Wh + k0, p.Wl + k0, p.K, p.Xh, p.Xl, p.D, 0.0, (float *)Pt, p.VB);
  return vr_cu_gemm_rm(p.dt, 1, 1, kc, p.VB, p.D, 1.0, p.W + k0, p.K, p.X, p.D, 0.0, Pt, p.VB);
}
/* dL/dP is in Pt; with x3, its low part in Gl (the register sort wrote it: split_done) or split here */
template <typename T>
vr_status project_back(const projections<T> &p, int64_t k0, int64_t kc, T *Pt, float *Gl, bool split_done, T *grad) {
  double beta = k0 == 0 ? 0.0 : 1.0;
  if (p.x3) {
    if (!split_done) VR_TRY(split_tf32((const float *)Pt, kc * p.VB, (float *)Pt, Gl));
    return vr_cu_gemm_rm_3xtf32(1, 1, p.VB, p.D, kc, 1.0, (const float *)Pt, Gl, p.VB, p.Wh + k0, p.Wl + k0, p.K, beta,
                                (float *)grad, p.D);
  }
  return vr_cu_gemm_rm(p.dt, 1, 1, p.VB, p.D, kc, 1.0, Pt, p.VB, p.W + k0, p.K, beta, grad, p.D);
}

/* The driver: slices, (VISReg) statistics, then per chunk the projections, their ranking and the
 * gradient's GEMM, then the loss; phase marks for VISREG_PROFILE=phases. */
template <typename T> vr_status sliced_typed(const vr_kernel_args *a, int mode) {
  static const char *names[] = {"vr_visreg", "vr_swd", "vr_sigreg"};
  const vr_tensor *zt = a->in[0];
  vr_dtype dt = zt->dtype;
  int64_t V = zt->shape[0], B = zt->shape[1], D = zt->shape[2], K = a->in[1] ? a->in[1]->shape[1] : a->i[VR_SLICED_I_K], VB = V * B;
  if (K < 1) return VR_FAIL(VR_E_ARG, "K: expected at least 1 slice, got %lld", (long long)K);
  VR_TRY(vr_cu_reg_check_finite(names[mode], zt));
  cudaStream_t st = vr_cuda_stream();
  const T *z = (const T *)vr_data(zt);
  T *grad = a->out[2] ? (T *)vr_data(a->out[2]) : nullptr;
  double eps = VR_SLICED_EPS(a, mode == SL_SIGREG);
  int J = mode == SL_SIGREG ? (int)a->i[VR_SIGREG_I_KNOTS] : 0;
  if (mode == SL_SIGREG && (J < 2 || J > 4096)) return VR_FAIL(VR_E_ARG, "knots: expected 2..4096, got %d", J);

  /* chunk of slices: the caller's, or P^T of at most 2^24 elements */
  int64_t chunk = a->i[VR_SLICED_I_CHUNK] > 0 ? a->i[VR_SLICED_I_CHUNK] : ((int64_t)1 << 24) / VB;
  if (chunk < 1) chunk = 1;
  if (chunk > K) chunk = K;

  vr_cu_buf Wb, Xb, mub, sigb, accb, Ptb, partb, epb, invb;
  VR_TRY(Wb.get(sizeof(T) * (size_t)(D * K)));
  vr_cu_phases ph;
  ph.mark("start");
  if (mode != SL_VISREG) VR_TRY(vr_cu_reg_slices(a, dt, D, K, eps, Wb.p)); /* VISReg: with its statistics */
  ph.mark("slices");
  VR_TRY(accb.get(sizeof(double) * 2)); /* center sum, scale sum */
  VR_TRY(Ptb.get(sizeof(T) * (size_t)(chunk * VB)));
  VR_TRY(partb.get(sizeof(double) * (size_t)(K * V)));
  double *acc = accb.as<double>();
  const T *X = z;
  bool x3 = sizeof(T) == 4 && use_3xtf32(VB, D, K); /* 3xTF32 projections: operands split as hi + lo */
  vr_cu_buf Wlb, Xhb, Xlb, Glb;
  if (x3) VR_TRY(Xlb.get(sizeof(float) * (size_t)(VB * D)));
  if (mode == SL_VISREG) {
    VR_TRY(mub.get(sizeof(double) * (size_t)(V * D)));
    VR_TRY(sigb.get(sizeof(double) * (size_t)(V * D)));
    VR_TRY(Xb.get(sizeof(T) * (size_t)(VB * D)));
    VR_TRY(vr_cu_reg_slices_check(a, dt, D, K));
    VR_TRY(invb.get(sizeof(double) * (size_t)K));
    vr_cu_slices_in sl = {a->in[1] ? vr_data(a->in[1]) : nullptr, Wb.p, invb.as<double>(), eps, (uint64_t)a->i[VR_SLICED_I_SEED],
                          (uint64_t)a->i[VR_SLICED_I_STEP], D, K};
    /* the slices are made in the same two launches; with 3xTF32, X's high part goes to Xb and the
     * rest to Xlb in the same pass */
    VR_TRY(vr_cu_visreg_stats(dt, z, V, B, D, mub.as<double>(), sigb.as<double>(), acc, Xb.p, x3 ? Xlb.p : nullptr, sl));
    ph.mark("stats");
    X = Xb.as<T>();
  }
  if (mode == SL_SIGREG) {
    VR_TRY(epb.get(sizeof(double) * 3 * (size_t)J));
    ep_k<<<1, 256, 0, st>>>(J, a->f[VR_SIGREG_F_TMAX] / (J - 1), (double)(V * K), epb.as<double>());
    VR_CU_LAUNCHED("sigreg knots");
  }

  rank_plan rp;
  VR_TRY(plan_ranking<T>(mode, B, J, chunk * VB, &rp));
  double coef = mode == SL_SIGREG ? 0 : 2.0 * a->f[VR_VISREG_F_SHAPE] / (double)(VB * K);
  const T *q = mode == SL_SIGREG ? nullptr : (const T *)vr_data(a->in[2]);
  const T *W = Wb.as<T>();
  T *Pt = Ptb.as<T>();
  /* 3xTF32: W split once in place (its high part), X split by the statistics pass (VISReg) or here,
   * dL/dP by the register sort or after the segment pass */
  projections<T> pj = {dt, x3, VB, D, K, W, X, (const float *)W, nullptr, (const float *)X, nullptr};
  if (x3) {
    VR_TRY(Wlb.get(sizeof(float) * (size_t)(D * K)));
    VR_TRY(split_tf32((const float *)W, D * K, (float *)Wb.p, Wlb.as<float>()));
    if (mode != SL_VISREG) {
      VR_TRY(Xhb.get(sizeof(float) * (size_t)(VB * D)));
      VR_TRY(split_tf32((const float *)X, VB * D, Xhb.as<float>(), Xlb.as<float>()));
      pj.Xh = Xhb.as<float>();
    }
    pj.Wl = Wlb.as<float>(), pj.Xl = Xlb.as<float>();
    if (grad) VR_TRY(Glb.get(sizeof(float) * (size_t)(chunk * VB)));
    ph.mark("split");
  }
  rank_args<T> ra = {B, J, mode == SL_SIGREG ? a->f[VR_SIGREG_F_TMAX] / (J - 1) : 0.0, epb.as<double>(), q, coef,
                     grad != nullptr, x3 && grad ? Glb.as<float>() : nullptr};

  for (int64_t k0 = 0; k0 < K; k0 += chunk) {
    int64_t kc = K - k0 < chunk ? K - k0 : chunk;
    /* P^T (kc x VB) = W_c^T X^T: row k holds the V segments of slice k0 + k */
    VR_TRY(project(pj, k0, kc, Pt));
    if (k0 == 0) ph.mark("gemm");
    VR_TRY(rank_chunk(rp, ra, Pt, kc * V, partb.as<double>() + k0 * V));
    if (k0 == 0) ph.mark("segments");
    /* H (VB x D) += dL/dP W_c^T, straight into dL/dz */
    if (grad) VR_TRY(project_back(pj, k0, kc, Pt, x3 ? Glb.as<float>() : nullptr, rp.path == RANK_REGISTERS, grad));
    if (k0 == 0) ph.mark("gemm back");
  }
  /* the loss: SIGReg total / (V K), SWD total / (V B K), VISReg's shape term likewise */
  vr_cu_loss_in L = {partb.as<double>(), acc, K * V, mode == SL_VISREG, (double)(mode == SL_SIGREG ? V * K : VB * K),
                     (double)(V * D), a->f[VR_VISREG_F_SCALE], a->f[VR_VISREG_F_SHAPE], a->f[VR_VISREG_F_CENTER], dt, vr_data(a->out[0]),
                     mode == SL_VISREG && a->out[1] ? vr_data(a->out[1]) : nullptr};
  if (grad && mode == SL_VISREG) { /* the loss in the launch of the gradient's column sums */
    double cc = 2.0 * a->f[VR_VISREG_F_CENTER] / (double)(V * D * B), sc = 2.0 * a->f[VR_VISREG_F_SCALE] / (double)(V * D * B);
    VR_TRY(vr_cu_visreg_grad(dt, grad, z, V, B, D, mub.as<double>(), sigb.as<double>(), cc, sc, L));
    ph.mark("grad");
  } else {
    VR_TRY(vr_cu_reg_loss(L));
  }
  ph.mark("end");
  ph.report(names[mode]);
  return VR_OK;
}

vr_status sliced(const vr_kernel_args *a, int mode) {
  switch (a->in[0]->dtype) {
  case VR_F32: return sliced_typed<float>(a, mode);
  case VR_F64: return sliced_typed<double>(a, mode);
  default: return VR_CU_UNSUPPORTED_DTYPE("z", a->in[0]->dtype);
  }
}

} // namespace

vr_status vr_cuda_visreg_fwd(const vr_kernel_args *a) { return sliced(a, SL_VISREG); }
vr_status vr_cuda_swd_fwd(const vr_kernel_args *a) { return sliced(a, SL_SWD); }
vr_status vr_cuda_sigreg_fwd(const vr_kernel_args *a) { return sliced(a, SL_SIGREG); }
