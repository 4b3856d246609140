/* cpu.h: what the CPU kernels share: a strided iterator, element load/store, and the
 * registration hooks of each kernel family. */
#ifndef VISREG_CPU_H
#define VISREG_CPU_H
#include "../../core/internal.h"
#include <string.h>

/* ---- strided iteration over same-shaped operands (broadcast dims have stride 0) ---- */
#define VR_ITER_MAX_OPS 4
typedef struct vr_iter {
  int ndim, nops;
  int64_t numel;
  int64_t shape[VR_MAX_DIMS];
  int64_t st[VR_ITER_MAX_OPS][VR_MAX_DIMS];
  char *base[VR_ITER_MAX_OPS];   /* byte pointer to element 0 of each operand */
  size_t esize[VR_ITER_MAX_OPS];
} vr_iter;

/* ts[0..nops) all of ts[0]'s shape; dims that are contiguous for every operand are merged */
void vr_iter_init(vr_iter *it, int nops, vr_tensor *const *ts);
/* One run of n elements along the innermost dim: p[k] points at its first element of operand k,
 * s[k] is that operand's stride in elements. */
typedef void (*vr_iter_run_fn)(void *ctx, char *const *p, const int64_t *s, int64_t n);
/* visits linear elements [lo, hi) as runs */
void vr_iter_runs(const vr_iter *it, int64_t lo, int64_t hi, vr_iter_run_fn run, void *ctx);
/* visits all elements, split over threads when numel >= grain */
void vr_iter_parallel(const vr_iter *it, int64_t grain, vr_iter_run_fn run, void *ctx);

/* ---- bf16 through f32 twins (kernels/cpu/bf16.c): runs fn with a's bf16 tensors widened to f32
 * and its bf16 outputs rounded once from fn's f32 ones; other tensors pass through as they are ---- */
vr_status vr_cpu_via_f32(const vr_kernel_args *a, vr_kernel_fn fn);
bool vr_cpu_any_bf16(const vr_kernel_args *a);

/* BLAS on one thread for the gemms of a parallel region (conv.c): saves OpenBLAS's thread count
 * and sets 1 (in a caller's parallel region it leaves the setting and returns 1); end restores it */
int vr_cpu_blas_serial_begin(void);
void vr_cpu_blas_serial_end(int prev);

/* 2x2 max pooling (pool.c) for the fused batch norm (norm.c): rows output rows from x (rows of W
 * elements), out (rows x Wo) the largest of each window (the first on ties, the first NaN over
 * numbers, as vr_max_pool2d), code its place in the window, row << 3 | column, | 0x80 where the
 * gradient passes (the largest > 0 when relu, always when not) */
void vr_cpu_maxpool2_codes(const float *x, int64_t W, int64_t rows, int64_t Wo, int relu, float *out, uint8_t *code);
/* its reverse: g (rows x Wo) into d's 2 rows x 2 Wo elements (rows of W) at the places the codes
 * name where a code's bit 7 is set (the gradient passes), +0 elsewhere */
void vr_cpu_maxpool2_uncodes(const float *g, const uint8_t *code, int64_t W, int64_t rows, int64_t Wo, float *d);

/* one element of es bytes (1, 2, 4 or 8) copied as bits */
static inline void vr_cpu_copy_elem(char *dst, const char *src, size_t es) {
  switch (es) {
  case 4: *(uint32_t *)dst = *(const uint32_t *)src; break;
  case 8: *(uint64_t *)dst = *(const uint64_t *)src; break;
  case 2: *(uint16_t *)dst = *(const uint16_t *)src; break;
  default: *dst = *src; break;
  }
}

/* a radix sort pass's histogram of 256 digit counts turned into each digit's first output slot */
static inline void vr_cpu_digit_offsets(uint32_t *h) {
  uint32_t sum = 0;
  for (int d = 0; d < 256; d++) {
    uint32_t c = h[d];
    h[d] = sum;
    sum += c;
  }
}

/* ---- kernel families: each kernels/cpu/<family>.c registers its kernels (register.c lists them
 * all: a missing family fails at link time) ---- */
void vr_cpu_register_basic(void);
void vr_cpu_register_elementwise(void);
void vr_cpu_register_where(void);
void vr_cpu_register_reduce(void);
void vr_cpu_register_linalg(void);
void vr_cpu_register_conv(void);
void vr_cpu_register_pool(void);
void vr_cpu_register_norm(void);
void vr_cpu_register_softmax(void);
void vr_cpu_register_index(void);
void vr_cpu_register_sort(void);
void vr_cpu_register_reg(void);
void vr_cpu_register_augment(void);
void vr_cpu_register_optim(void);
#endif
