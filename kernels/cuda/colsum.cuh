/* colsum.cuh: column sums of (nmat, rows, cols) row-major arrays spread over the whole GPU, shared
 * by reg_colstats.cu, reg_gram.cu and norm.cu. One thread walking a whole column is latency-bound
 * (a few thousand threads for D columns), so the rows are cut into chunks of kRows: a block of
 * kCols columns x kLanes lanes per (column group, chunk, matrix); each thread adds the terms of rows
 * lane, lane + kLanes, ... of its chunk in double, the block adds its lanes in order, and a
 * per-column pass adds the chunks in order. Every sum has an order fixed by the shape alone, so
 * results do not vary from run to run or from GPU to GPU.
 *
 * sums() does it in one launch: each block counts itself done in a zeroed counter per (column
 * group, matrix) (vr_cuda_tickets), and the last block of a group adds the group's partials in
 * chunk order and finishes its columns (the threadFenceReduction pattern of the CUDA samples), so
 * a column pass costs one launch instead of two; which block adds does not change the order.
 * sums2() runs two independent passes in one launch (VISReg: the slices' norms beside the batch
 * statistics).
 *
 * A term functor F gives the two terms {x, y} of element i = (m rows + r) cols + col:
 *   __device__ double2 operator()(int64_t i, int64_t r, int64_t e) const     (e = m cols + col)
 * and may write element i of an array of the same shape (each element is visited exactly once,
 * e.g. to store a centred copy while summing its squares). A finish functor Fin gets each column's
 * totals: __device__ void operator()(int64_t e, double2 t) const.
 *
 * Wide chunks (wplan, wsums, wmap below): the same sums for one large contiguous [rows, cols]
 * matrix at memory bandwidth (batch norm on channels-last data: rows = N H W up to ~400k, cols = C),
 * where 64-row chunks would leave thousands of partials per column to add. */
#ifndef VISREG_CUDA_COLSUM_CUH
#define VISREG_CUDA_COLSUM_CUH
#include "scratch.cuh"
#include <stdlib.h>

namespace vr_colsum {

const int kCols = 32, kLanes = 8, kRows = 64; /* block: 32 columns x 8 lanes; a chunk: 64 rows */
inline int64_t chunks(int64_t rows) { return (rows + kRows - 1) / kRows; }

struct no_fin { /* the Fin of a partials-only launch (never called; fin_k finishes) */
  __device__ void operator()(int64_t, double2) const {}
};

/* the partials of column e = m cols + col, added in chunk order (read past L1: another block of
 * the same kernel may have written them) */
__device__ __forceinline__ double2 total(const double2 *part, int64_t nch, int64_t cols, int64_t e) {
  int64_t m = e / cols, col = e - m * cols;
  double a = 0, b = 0;
  for (int64_t c = 0; c < nch; c++) {
    double2 p = __ldcg(part + (m * nch + c) * cols + col);
    a += p.x;
    b += p.y;
  }
  return make_double2(a, b);
}

/* one column-sum job: nmat (rows x cols) matrices, nch = chunks(rows) chunks walked by gy blocks,
 * gx groups of kCols columns; part == NULL (one chunk): fin(e, totals) at once; else
 * part[(m nch + c) cols + col] = the chunk's sums, and with done (zeroed counters, gx per matrix)
 * the group's last block to finish calls fin(e, total(...)) for the group's columns and sets its
 * counter back to zero */
template <typename F, typename Fin> struct job {
  F f;
  Fin fin;
  int64_t nmat, rows, cols, nch, gx, gy;
  double2 *part;
  unsigned *done;
};
template <typename F, typename Fin>
job<F, Fin> job_of(const F &f, const Fin &fin, int64_t nmat, int64_t rows, int64_t cols, double2 *part, unsigned *done) {
  int64_t nch = chunks(rows);
  return {f, fin, nmat, rows, cols, nch, (cols + kCols - 1) / kCols, nch < 65535 ? nch : 65535, part, done};
}

/* block (bx, by) of matrix m of job j (s1, s2, last: the kernel's shared memory) */
template <typename J>
__device__ __forceinline__ void part_block(const J &j, int64_t m, int64_t bx, int64_t by, double (*s1)[kCols],
                                           double (*s2)[kCols], bool &last) {
  int64_t col = bx * kCols + threadIdx.x, e = m * j.cols + col;
  for (int64_t c = by; c < j.nch; c += j.gy) {
    double a = 0, b = 0;
    if (col < j.cols) {
      int64_t r1 = (c + 1) * kRows < j.rows ? (c + 1) * kRows : j.rows;
      for (int64_t r = c * kRows + threadIdx.y; r < r1; r += kLanes) {
        double2 t = j.f((m * j.rows + r) * j.cols + col, r, e);
        a += t.x;
        b += t.y;
      }
    }
    s1[threadIdx.y][threadIdx.x] = a;
    s2[threadIdx.y][threadIdx.x] = b;
    __syncthreads();
    if (threadIdx.y == 0 && col < j.cols) {
      for (int l = 1; l < kLanes; l++) {
        a += s1[l][threadIdx.x];
        b += s2[l][threadIdx.x];
      }
      if (j.part)
        j.part[(m * j.nch + c) * j.cols + col] = make_double2(a, b);
      else
        j.fin(e, make_double2(a, b));
    }
    __syncthreads(); /* s1, s2 are reused by the next chunk */
  }
  if (!j.part || !j.done) return;
  unsigned *count = j.done + m * j.gx + bx;
  __threadfence(); /* this block's partials are visible to the group's last block */
  __syncthreads();
  if (threadIdx.x == 0 && threadIdx.y == 0) {
    __threadfence(); /* cumulative: the other threads' partials, ordered by the barrier, before the count */
    last = atomicAdd(count, 1u) == (unsigned)j.gy - 1;
  }
  __syncthreads();
  if (!last) return;
  __threadfence();
  if (threadIdx.y == 0 && col < j.cols) j.fin(e, total(j.part, j.nch, j.cols, e));
  if (threadIdx.x == 0 && threadIdx.y == 0) *count = 0; /* ready for the next kernel */
}

/* grid (gx, gy, nmat) */
template <typename J> __global__ void __launch_bounds__(kCols *kLanes) part_k(J j) {
  __shared__ double s1[kLanes][kCols], s2[kLanes][kCols];
  __shared__ bool last;
  part_block(j, blockIdx.z, blockIdx.x, blockIdx.y, s1, s2, last);
}

/* two independent jobs in one launch: grid (max gx, max gy, nmat1 + nmat2); a block outside its
 * job's extent leaves at once */
template <typename J1, typename J2> __global__ void __launch_bounds__(kCols *kLanes) part2_k(J1 j1, J2 j2) {
  __shared__ double s1[kLanes][kCols], s2[kLanes][kCols];
  __shared__ bool last;
  int64_t z = blockIdx.z, bx = blockIdx.x, by = blockIdx.y;
  if (z < j1.nmat) {
    if (bx < j1.gx && by < j1.gy) part_block(j1, z, bx, by, s1, s2, last);
  } else if (bx < j2.gx && by < j2.gy) {
    part_block(j2, z - j1.nmat, bx, by, s1, s2, last);
  }
}

template <typename Fin> __global__ void fin_k(Fin fin, const double2 *part, int64_t n, int64_t nch, int64_t cols) {
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < n; e += (int64_t)gridDim.x * blockDim.x)
    fin(e, total(part, nch, cols, e));
}

template <typename J> vr_status launch(const J &j) {
  if (j.nmat > 65535) return VR_FAIL(VR_E_UNSUPPORTED, "x: %lld matrices, more than 65535", (long long)j.nmat);
  dim3 grid((unsigned)j.gx, (unsigned)j.gy, (unsigned)j.nmat); /* more chunks than gy: the blocks loop over them */
  part_k<J><<<grid, dim3(kCols, kLanes), 0, vr_cuda_stream()>>>(j);
  VR_CU_LAUNCHED("column partial sums");
  return VR_OK;
}

/* the variant colsums=two: the partials' kernel, then fin_k (two launches), to compare */
inline bool one_launch() { return vr_variants[VR_VARIANT_COLSUMS] == 0; }

/* fin(e, {sum_r f.x, sum_r f.y}) for every column e of the nmat matrices in one launch (the
 * partials in scratch; two launches if the counters cannot be had); rows == 0 gives fin(e, {0, 0}) */
template <typename F, typename Fin> vr_status sums(const F &f, const Fin &fin, int64_t nmat, int64_t rows, int64_t cols) {
  if (nmat <= 0 || cols <= 0) return VR_OK;
  int64_t nch = chunks(rows > 0 ? rows : 0);
  if (nch == 1) return launch(job_of(f, fin, nmat, rows, cols, nullptr, nullptr));
  vr_cu_buf pb;
  if (nch > 1) {
    VR_TRY(pb.get(sizeof(double2) * (size_t)(nmat * nch * cols)));
    unsigned *done = nullptr;
    if (one_launch() && vr_cuda_tickets((size_t)(nmat * ((cols + kCols - 1) / kCols)), &done) == VR_OK)
      return launch(job_of(f, fin, nmat, rows, cols, pb.as<double2>(), done));
    vr_clear_error();
    VR_TRY(launch(job_of(f, no_fin(), nmat, rows, cols, pb.as<double2>(), nullptr)));
  }
  fin_k<Fin><<<vr_cu_blocks(nmat * cols), VR_CU_THREADS, 0, vr_cuda_stream()>>>(fin, pb.as<double2>(), nmat * cols, nch,
                                                                                 cols);
  VR_CU_LAUNCHED("column totals");
  return VR_OK;
}

/* sums(f1, fin1, ...) and sums(f2, fin2, ...) of two independent jobs in one launch (one after the
 * other when either has no rows, or without counters) */
template <typename F1, typename Fin1, typename F2, typename Fin2>
vr_status sums2(const F1 &f1, const Fin1 &fin1, int64_t nmat1, int64_t rows1, int64_t cols1, const F2 &f2, const Fin2 &fin2,
                int64_t nmat2, int64_t rows2, int64_t cols2) {
  int64_t g1 = nmat1 * ((cols1 + kCols - 1) / kCols), g2 = nmat2 * ((cols2 + kCols - 1) / kCols);
  unsigned *done = nullptr;
  if (nmat1 <= 0 || cols1 <= 0 || nmat2 <= 0 || cols2 <= 0 || rows1 <= 0 || rows2 <= 0 || !one_launch() ||
      nmat1 + nmat2 > 65535 || vr_cuda_tickets((size_t)(g1 + g2), &done) != VR_OK) {
    vr_clear_error();
    VR_TRY(sums(f1, fin1, nmat1, rows1, cols1));
    return sums(f2, fin2, nmat2, rows2, cols2);
  }
  vr_cu_buf pb1, pb2; /* one chunk: no partials, the block finishes its columns at once */
  if (chunks(rows1) > 1) VR_TRY(pb1.get(sizeof(double2) * (size_t)(nmat1 * chunks(rows1) * cols1)));
  if (chunks(rows2) > 1) VR_TRY(pb2.get(sizeof(double2) * (size_t)(nmat2 * chunks(rows2) * cols2)));
  auto j1 = job_of(f1, fin1, nmat1, rows1, cols1, pb1.as<double2>(), done);
  auto j2 = job_of(f2, fin2, nmat2, rows2, cols2, pb2.as<double2>(), done + g1);
  dim3 grid((unsigned)(j1.gx > j2.gx ? j1.gx : j2.gx), (unsigned)(j1.gy > j2.gy ? j1.gy : j2.gy), (unsigned)(nmat1 + nmat2));
  typedef decltype(j1) J1;
  typedef decltype(j2) J2;
  part2_k<J1, J2><<<grid, dim3(kCols, kLanes), 0, vr_cuda_stream()>>>(j1, j2);
  VR_CU_LAUNCHED("column sums of two jobs");
  return VR_OK;
}

template <typename F> __global__ void each_k(F f, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) f(i);
}
/* f(i) for i in [0, n): __device__ void operator()(int64_t i) const */
template <typename F> vr_status each(const F &f, int64_t n) {
  if (n <= 0) return VR_OK;
  each_k<F><<<vr_cu_blocks(n), VR_CU_THREADS, 0, vr_cuda_stream()>>>(f, n);
  VR_CU_LAUNCHED("elementwise pass");
  return VR_OK;
}

/* ---- wide chunks ----
 * A thread reads V consecutive columns at once (V elements of 16 bytes in all when the caller can:
 * cols % V == 0 and aligned pointers; else V = 1). A block of kW threads holds gv column vectors
 * x `lanes` rows (gv = min(cols / V, kW), lanes = kW / gv), so its warps read whole rows, i.e.
 * contiguous memory, whatever cols is. Rows are cut into nch chunks of rpc rows, enough chunks for
 * about 4 blocks per SM (H200: 132 SMs) and at least 4 rows per lane; grid (nch, column groups).
 * Each lane adds its rows in row order in double, the block adds its lanes in lane order, and
 * wtotal_k adds a column's chunks in a fixed order: plan and orders follow from (rows, cols, V)
 * alone, so the sums do not vary from run to run.
 *
 * A functor F of the wide kernels has: static const int V; typedef I (uint32_t when the matrix has
 * < 2^31 elements, else int64_t: the index of an element); a per-thread column state
 * `struct st` filled once by  __device__ st setup(int64_t col0) const  (col0: the thread's first
 * column, a multiple of V); and, for wsums, __device__ void add(I i, const st &, double (&a)[V],
 * double (&b)[V]) const, which adds the two terms of elements i .. i + V - 1 (columns col0 ..) to
 * a, b; for wmap, __device__ void operator()(I i, const st &) const, which handles them. */
const int kW = 256;
struct wplan {
  int64_t rows, cols, cv, rpc, nch; /* column vectors per row, rows per chunk, chunks */
  int V, gv, lanes, groups;         /* column vectors per block, lanes over rows, column groups */
};
/* cols > 0, cols % V == 0 */
inline wplan wplan_of(int64_t rows, int64_t cols, int V) {
  wplan p;
  p.rows = rows > 0 ? rows : 0;
  p.cols = cols;
  p.V = V;
  p.cv = cols / V;
  p.gv = (int)(p.cv < kW ? p.cv : kW);
  p.lanes = kW / p.gv;
  p.groups = (int)((p.cv + p.gv - 1) / p.gv);
  int64_t want = (4 * 132 + p.groups - 1) / p.groups, rpc = (p.rows + want - 1) / want;
  if (rpc < 4 * p.lanes) rpc = 4 * p.lanes;
  p.rpc = (rpc + p.lanes - 1) / p.lanes * p.lanes;
  p.nch = (p.rows + p.rpc - 1) / p.rpc;
  return p;
}

/* the rows of this thread's lane in its block's chunk: n rows from element i, step elements apart;
 * col0 its first column; false for a thread with nothing to do */
struct wspan {
  int64_t i, step, col0;
  int n;
};
__device__ __forceinline__ bool wspan_of(const wplan &p, wspan *w) {
  int t = threadIdx.x, j = t % p.gv, l = t / p.gv;
  int64_t vc = (int64_t)blockIdx.y * p.gv + j, r = (int64_t)blockIdx.x * p.rpc + l;
  int64_t r1 = ((int64_t)blockIdx.x + 1) * p.rpc < p.rows ? ((int64_t)blockIdx.x + 1) * p.rpc : p.rows;
  if (l >= p.lanes || vc >= p.cv || r >= r1) return false;
  w->col0 = vc * p.V;
  w->i = r * p.cols + w->col0;
  w->step = p.lanes * p.cols;
  w->n = (int)((r1 - 1 - r) / p.lanes) + 1;
  return true;
}

/* part[chunk cols + col] = the chunk's sums of column col (every column of the block's group) */
template <typename F> __global__ void __launch_bounds__(kW) wpart_k(F f, wplan p, double2 *part) {
  constexpr int V = F::V;
  typedef typename F::I I;
  __shared__ double s1[kW * V], s2[kW * V];
  double a[V], b[V];
#pragma unroll
  for (int k = 0; k < V; k++) a[k] = b[k] = 0;
  wspan w;
  if (wspan_of(p, &w)) {
    const typename F::st s = f.setup(w.col0);
    I i = (I)w.i, sp = (I)w.step;
    int q = 0;
    for (; q + 4 <= w.n; q += 4, i += 4 * sp) { /* four independent loads in flight; adds in row order */
      f.add(i, s, a, b);
      f.add(i + sp, s, a, b);
      f.add(i + 2 * sp, s, a, b);
      f.add(i + 3 * sp, s, a, b);
    }
    for (; q < w.n; q++, i += sp) f.add(i, s, a, b);
  }
  const int t = threadIdx.x;
#pragma unroll
  for (int k = 0; k < V; k++) {
    s1[t * V + k] = a[k];
    s2[t * V + k] = b[k];
  }
  __syncthreads();
  const int width = p.gv * V; /* columns of the group; lane l's column q sits at s[l width + q] */
  const int64_t c0 = (int64_t)blockIdx.y * width;
  for (int q = t; q < width && c0 + q < p.cols; q += kW) {
    double x = 0, y = 0;
    for (int l = 0; l < p.lanes; l++) {
      x += s1[l * width + q];
      y += s2[l * width + q];
    }
    part[(int64_t)blockIdx.x * p.cols + c0 + q] = make_double2(x, y);
  }
}

/* fin(col, column col's totals): a block of kCols columns x kTotLanes lanes; lane l adds chunks
 * l, l + kTotLanes, ... in order, the block adds its lanes in order (coalesced: a warp reads 32
 * consecutive columns of a chunk; ~500 chunks make ~16 loads a thread) */
const int kTotLanes = 32;
template <typename Fin>
__global__ void __launch_bounds__(kCols *kTotLanes) wtotal_k(Fin fin, const double2 *part, int64_t nch, int64_t cols) {
  __shared__ double s1[kTotLanes][kCols], s2[kTotLanes][kCols];
  const int tx = threadIdx.x, ty = threadIdx.y;
  for (int64_t c0 = (int64_t)blockIdx.x * kCols; c0 < cols; c0 += (int64_t)gridDim.x * kCols) {
    int64_t c = c0 + tx;
    double x = 0, y = 0;
    if (c < cols)
#pragma unroll 4
      for (int64_t k = ty; k < nch; k += kTotLanes) {
        double2 v = part[k * cols + c];
        x += v.x;
        y += v.y;
      }
    s1[ty][tx] = x;
    s2[ty][tx] = y;
    __syncthreads();
    if (ty == 0 && c < cols) {
      for (int l = 1; l < kTotLanes; l++) {
        x += s1[l][tx];
        y += s2[l][tx];
      }
      fin(c, make_double2(x, y));
    }
    __syncthreads(); /* s1, s2 are reused by the next columns */
  }
}

/* every element once, with the wide geometry (the column state stays in registers) */
template <typename F> __global__ void __launch_bounds__(kW) wmap_k(F f, wplan p) {
  typedef typename F::I I;
  wspan w;
  if (!wspan_of(p, &w)) return;
  const typename F::st s = f.setup(w.col0);
  I i = (I)w.i, sp = (I)w.step;
  int q = 0;
  for (; q + 4 <= w.n; q += 4, i += 4 * sp) {
    f(i, s);
    f(i + sp, s);
    f(i + 2 * sp, s);
    f(i + 3 * sp, s);
  }
  for (; q < w.n; q++, i += sp) f(i, s);
}

inline vr_status wcheck(const wplan &p) {
  if (p.groups > 65535) return VR_FAIL(VR_E_UNSUPPORTED, "x: %lld columns, more than %lld", (long long)p.cols, 65535LL * kW * p.V);
  return VR_OK;
}

/* fin(col, {sum f.a, sum f.b}) for every column (p.V == F::V); with terms false, or no rows,
 * fin(col, {0, 0}) without reading the matrix */
template <typename F, typename Fin> vr_status wsums(const F &f, const Fin &fin, const wplan &p, bool terms = true) {
  VR_TRY(wcheck(p));
  int64_t nch = terms ? p.nch : 0;
  vr_cu_buf pb;
  if (nch) {
    VR_TRY(pb.get(sizeof(double2) * (size_t)(nch * p.cols)));
    wpart_k<F><<<dim3((unsigned)nch, (unsigned)p.groups), kW, 0, vr_cuda_stream()>>>(f, p, pb.as<double2>());
    VR_CU_LAUNCHED("column partial sums (wide)");
  }
  int64_t ng = (p.cols + kCols - 1) / kCols;
  wtotal_k<Fin><<<(unsigned)(ng < 65535 ? ng : 65535), dim3(kCols, kTotLanes), 0, vr_cuda_stream()>>>(fin, pb.as<double2>(), nch,
                                                                                                      p.cols);
  VR_CU_LAUNCHED("column totals (wide)");
  return VR_OK;
}
template <typename F> vr_status wmap(const F &f, const wplan &p) {
  VR_TRY(wcheck(p));
  if (!p.nch) return VR_OK;
  wmap_k<F><<<dim3((unsigned)p.nch, (unsigned)p.groups), kW, 0, vr_cuda_stream()>>>(f, p);
  VR_CU_LAUNCHED("elementwise pass (wide)");
  return VR_OK;
}

} // namespace vr_colsum
#endif
