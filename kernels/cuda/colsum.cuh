/* colsum.cuh: column sums of (nmat, rows, cols) row-major arrays spread over the whole GPU, shared
 * by reg_colstats.cu, reg_gram.cu and norm.cu. One thread walking a whole column is latency-bound
 * (a few thousand threads for D columns), so the rows are cut into chunks of kRows: a block of
 * kCols columns x kLanes lanes per (column group, chunk, matrix); each thread adds the terms of rows
 * lane, lane + kLanes, ... of its chunk in double, the block adds its lanes in order, and a
 * per-column pass adds the chunks in order. Every sum has an order fixed by the shape alone, so
 * results do not vary from run to run or from GPU to GPU.
 *
 * A term functor F gives the two terms {x, y} of element i = (m rows + r) cols + col:
 *   __device__ double2 operator()(int64_t i, int64_t r, int64_t e) const     (e = m cols + col)
 * and may write element i of an array of the same shape (each element is visited exactly once,
 * e.g. to store a centred copy while summing its squares). A finish functor Fin gets each column's
 * totals: __device__ void operator()(int64_t e, double2 t) const. */
#ifndef VISREG_CUDA_COLSUM_CUH
#define VISREG_CUDA_COLSUM_CUH
#include "more.cuh"

namespace vr_colsum {

const int kCols = 32, kLanes = 8, kRows = 64; /* block: 32 columns x 8 lanes; a chunk: 64 rows */
inline int64_t chunks(int64_t rows) { return (rows + kRows - 1) / kRows; }

struct no_fin { /* the Fin of vr_colsum::partials (never called) */
  __device__ void operator()(int64_t, double2) const {}
};

/* part == NULL (one chunk): fin(e, totals); else part[(m nch + c) cols + col] = the chunk's sums */
template <typename F, typename Fin>
__global__ void __launch_bounds__(kCols *kLanes)
    part_k(F f, Fin fin, int64_t rows, int64_t cols, int64_t nch, double2 *part) {
  __shared__ double s1[kLanes][kCols], s2[kLanes][kCols];
  int64_t m = blockIdx.z, col = (int64_t)blockIdx.x * kCols + threadIdx.x, e = m * cols + col;
  for (int64_t c = blockIdx.y; c < nch; c += gridDim.y) {
    double a = 0, b = 0;
    if (col < cols) {
      int64_t r1 = (c + 1) * kRows < rows ? (c + 1) * kRows : rows;
      for (int64_t r = c * kRows + threadIdx.y; r < r1; r += kLanes) {
        double2 t = f((m * rows + r) * cols + col, r, e);
        a += t.x;
        b += t.y;
      }
    }
    s1[threadIdx.y][threadIdx.x] = a;
    s2[threadIdx.y][threadIdx.x] = b;
    __syncthreads();
    if (threadIdx.y == 0 && col < cols) {
      for (int l = 1; l < kLanes; l++) {
        a += s1[l][threadIdx.x];
        b += s2[l][threadIdx.x];
      }
      if (part)
        part[(m * nch + c) * cols + col] = make_double2(a, b);
      else
        fin(e, make_double2(a, b));
    }
    __syncthreads(); /* s1, s2 are reused by the next chunk */
  }
}

/* the partials of column e = m cols + col, added in chunk order */
__device__ __forceinline__ double2 total(const double2 *part, int64_t nch, int64_t cols, int64_t e) {
  int64_t m = e / cols, col = e - m * cols;
  double a = 0, b = 0;
  for (int64_t c = 0; c < nch; c++) {
    double2 p = part[(m * nch + c) * cols + col];
    a += p.x;
    b += p.y;
  }
  return make_double2(a, b);
}

template <typename Fin> __global__ void fin_k(Fin fin, const double2 *part, int64_t n, int64_t nch, int64_t cols) {
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < n; e += (int64_t)gridDim.x * blockDim.x)
    fin(e, total(part, nch, cols, e));
}

template <typename F, typename Fin>
vr_status launch(const F &f, const Fin &fin, int64_t nmat, int64_t rows, int64_t cols, double2 *part) {
  int64_t nch = chunks(rows), gy = nch < 65535 ? nch : 65535; /* more chunks: the blocks loop over them */
  if (nmat > 65535) return VR_FAIL(VR_E_UNSUPPORTED, "x: %lld matrices, more than 65535", (long long)nmat);
  dim3 grid((unsigned)((cols + kCols - 1) / kCols), (unsigned)gy, (unsigned)nmat);
  part_k<F, Fin><<<grid, dim3(kCols, kLanes), 0, vr_cuda_stream()>>>(f, fin, rows, cols, nch, part);
  VR_CU_LAUNCHED("column partial sums");
  return VR_OK;
}

/* part[(m chunks(rows) + c) cols + col] = the sums of f's terms over chunk c of column col of
 * matrix m (nmat chunks(rows) cols double2); read them back with total() */
template <typename F> vr_status partials(const F &f, int64_t nmat, int64_t rows, int64_t cols, double2 *part) {
  if (nmat <= 0 || rows <= 0 || cols <= 0) return VR_OK;
  return launch(f, no_fin(), nmat, rows, cols, part);
}

/* fin(e, {sum_r f.x, sum_r f.y}) for every column e of the nmat matrices: one launch when
 * rows <= kRows, else two (the partials in scratch); rows == 0 gives fin(e, {0, 0}) */
template <typename F, typename Fin> vr_status sums(const F &f, const Fin &fin, int64_t nmat, int64_t rows, int64_t cols) {
  if (nmat <= 0 || cols <= 0) return VR_OK;
  int64_t nch = chunks(rows > 0 ? rows : 0);
  if (nch == 1) return launch(f, fin, nmat, rows, cols, (double2 *)nullptr);
  vr_cu_buf pb;
  if (nch > 1) {
    VR_TRY(pb.get(sizeof(double2) * (size_t)(nmat * nch * cols)));
    VR_TRY(launch(f, fin, nmat, rows, cols, pb.as<double2>()));
  }
  fin_k<Fin><<<vr_cu_blocks(nmat * cols), VR_CU_THREADS, 0, vr_cuda_stream()>>>(fin, pb.as<double2>(), nmat * cols, nch,
                                                                                 cols);
  VR_CU_LAUNCHED("column totals");
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

} // namespace vr_colsum
#endif
