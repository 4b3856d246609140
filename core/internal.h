/* internal.h: what the op front-ends, the autograd engine and the kernels share.
 * Not part of the public API (core/visreg.h). Kernels include it; it includes no CUDA header. */
#ifndef VISREG_INTERNAL_H
#define VISREG_INTERNAL_H

#include "visreg.h"
#include <stdbool.h>
#include <stdarg.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VR_MAX_DIMS 8

/* ---------------------------------------------------------------- storage and tensors */

typedef struct vr_storage {
  void *data;
  size_t nbytes;
  vr_device device;
  int refcount;      /* atomic */
  uint64_t version;  /* bumped by every in-place write; autograd compares it */
} vr_storage;

typedef struct vr_node vr_node;

struct vr_tensor {
  int refcount;      /* atomic */
  vr_storage *storage;
  int64_t offset;    /* in elements */
  int ndim;
  int64_t shape[VR_MAX_DIMS];
  int64_t stride[VR_MAX_DIMS]; /* in elements; 0 for broadcast dims */
  vr_dtype dtype;
  vr_device device;
  int requires_grad;
  vr_tensor *grad;   /* leaves: accumulated gradient */
  vr_node *grad_fn;  /* non-leaves: the node that made it */
};

static inline void *vr_data(const vr_tensor *t) {
  return (char *)t->storage->data + (size_t)t->offset * vr_dtype_size(t->dtype);
}
static inline bool vr_is_float(vr_dtype d) { return d == VR_F32 || d == VR_F64 || d == VR_BF16; }
static inline bool vr_is_int(vr_dtype d) { return d == VR_I32 || d == VR_I64 || d == VR_U8; }
/* ---- bf16 <-> f32: round to nearest even, NaN kept a (quiet) NaN, as PyTorch ---- */
static inline uint16_t vr_f32_to_bf16(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
  u += 0x7fff + ((u >> 16) & 1);
  return (uint16_t)(u >> 16);
}
static inline float vr_bf16_to_f32(uint16_t h) {
  uint32_t u = (uint32_t)h << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}
/* ---- element access as double (the generic, slow path) ---- */
static inline double vr_load(const void *p, vr_dtype dt) {
  switch (dt) {
  case VR_F32: return *(const float *)p;
  case VR_F64: return *(const double *)p;
  case VR_I32: return *(const int32_t *)p;
  case VR_I64: return (double)*(const int64_t *)p;
  case VR_U8: return *(const uint8_t *)p;
  case VR_BF16: return vr_bf16_to_f32(*(const uint16_t *)p);
  }
  return 0;
}
static inline void vr_store(void *p, vr_dtype dt, double v) {
  switch (dt) {
  case VR_F32: *(float *)p = (float)v; break;
  case VR_F64: *(double *)p = v; break;
  case VR_I32: *(int32_t *)p = (int32_t)v; break;
  case VR_I64: *(int64_t *)p = (int64_t)v; break;
  case VR_U8: *(uint8_t *)p = (uint8_t)v; break;
  case VR_BF16: *(uint16_t *)p = vr_f32_to_bf16((float)v); break;
  }
}
/* erfinv(y) to about 1 ulp (core/mathfn.c); the _exact form takes 1 + y and 1 - y computed
 * exactly by the caller, for accuracy in the tails */
double vr_erfinv_f64(double y);
double vr_erfinv_exact(double y, double opy, double omy);
/* ---- sizes: every tensor's shape, and every size read from a file, goes through these ----
 * A tensor holds at most VR_MAX_NUMEL elements, so that numel x the largest dtype size (8 bytes)
 * fits an int64: the byte count of any tensor (view or not) is then safe to compute anywhere.
 * The sizes of a shape are multiplied with zeros counted as ones, so that every partial product
 * (contiguous strides, a flattened run of dims) is bounded too, even for tensors of 0 elements. */
#define VR_MAX_NUMEL (INT64_MAX / 8)
/* the element count of ndim sizes into *numel; false (and *numel untouched) when ndim is outside
 * 0..VR_MAX_DIMS, shape is NULL with ndim > 0, a size is negative, or the sizes multiply past
 * VR_MAX_NUMEL. No message: file readers say which file and field was wrong. */
bool vr_numel_checked(int ndim, const int64_t *shape, int64_t *numel);
/* the same with a VR_E_SHAPE (VR_E_ARG for a NULL shape) message naming func and the bad size */
vr_status vr_shape_numel_at(const char *func, int ndim, const int64_t *shape, int64_t *numel);
#define vr_shape_numel(ndim, shape, numel) vr_shape_numel_at(__func__, (ndim), (shape), (numel))
/* a * b and a + b into *out; false on overflow (a byte count, an offset past a file's end) */
bool vr_mul_checked(uint64_t a, uint64_t b, uint64_t *out);
bool vr_add_checked(uint64_t a, uint64_t b, uint64_t *out);
/* bytes of a shape of dtype: vr_numel_checked, then numel x the dtype's size, checked */
bool vr_nbytes_checked(int ndim, const int64_t *shape, vr_dtype dtype, uint64_t *nbytes);
/* the product of the sizes of a shape already checked (a tensor's own, or part of it) */
int64_t vr_numel_of(int ndim, const int64_t *shape);
void vr_contiguous_strides(int ndim, const int64_t *shape, int64_t *stride);
bool vr_same_shape(const vr_tensor *a, const vr_tensor *b);
/* "[3, 4, 5]" into buf */
const char *vr_shape_str(int ndim, const int64_t *shape, char *buf, size_t n);
/* normalise a possibly negative dim; returns -1 when out of range */
int vr_wrap_dim(int dim, int ndim);

/* new tensor with fresh contiguous storage on device (not zeroed) */
vr_status vr_tensor_alloc(int ndim, const int64_t *shape, vr_dtype dtype, vr_device device, vr_tensor **out);
/* alloc shaped like t (same dtype and device) */
vr_status vr_tensor_alloc_like(const vr_tensor *t, vr_tensor **out);
/* new view onto t's storage with the given geometry (no autograd) */
vr_status vr_tensor_view_raw(const vr_tensor *t, int ndim, const int64_t *shape, const int64_t *stride,
                             int64_t offset, vr_tensor **out);
void vr_tensor_bump_version(vr_tensor *t);
/* contiguous copy (or new ref to t when contiguous) without autograd */
vr_status vr_contiguous_raw(const vr_tensor *t, vr_tensor **out);
/* broadcast shapes of a and b into out (ndim_out); VR_E_SHAPE on mismatch (message names func) */
vr_status vr_broadcast_shape(const char *func, const vr_tensor *a, const vr_tensor *b, int *ndim, int64_t *shape);
/* sums g over broadcast dims so that it has the given shape (used by backward of broadcasting ops) */
vr_status vr_sum_to_shape(vr_tensor *g, int ndim, const int64_t *shape, vr_tensor **out);

/* ---------------------------------------------------------------- errors */

vr_status vr_error_set(vr_status st, const char *func, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* VR_FAIL(VR_E_SHAPE, "x: expected 2 dims, got %d", n): records "func: x: ... (file:line)" and
 * returns the status. */
#define VR_FAIL(st, ...) vr_error_set((st), __func__, __FILE__, __LINE__, __VA_ARGS__)
#define VR_TRY(expr) do { vr_status vr_try_s_ = (expr); if (vr_try_s_ != VR_OK) return vr_try_s_; } while (0)
/* goto-style: sets the local `st` and jumps to `done` */
#define VR_TRYG(expr) do { st = (expr); if (st != VR_OK) goto done; } while (0)
/* VR_E_INTERRUPTED ("func: interrupted WHAT (file:line)") when an interrupt is pending, taking it
 * (the flag is cleared); VR_OK otherwise. For the long loops, between units of work. */
vr_status vr_interrupt_check(const char *func, const char *file, int line, const char *what);
#define VR_INTERRUPTED(what) vr_interrupt_check(__func__, __FILE__, __LINE__, (what))

#define VR_CHECK_TENSOR(t) \
  do { if (!(t)) return VR_FAIL(VR_E_ARG, "%s: expected a tensor, got NULL", #t); } while (0)
#define VR_CHECK_OUT(o) \
  do { if (!(o)) return VR_FAIL(VR_E_ARG, "%s: expected an output pointer, got NULL", #o); } while (0)
#define VR_CHECK_FLOAT(t) \
  do { if (!vr_is_float((t)->dtype)) return VR_FAIL(VR_E_DTYPE, "%s: expected a float tensor, got %s", #t, vr_dtype_name((t)->dtype)); } while (0)
#define VR_CHECK_SAME_DEVICE(a, b) \
  do { if ((a)->device != (b)->device) return VR_FAIL(VR_E_DEVICE, "%s: expected a tensor on %s like %s, got %s", #b, \
       vr_device_name((a)->device), #a, vr_device_name((b)->device)); } while (0)
#define VR_CHECK_SAME_DTYPE(a, b) \
  do { if ((a)->dtype != (b)->dtype) return VR_FAIL(VR_E_DTYPE, "%s: expected %s like %s, got %s", #b, \
       vr_dtype_name((a)->dtype), #a, vr_dtype_name((b)->dtype)); } while (0)
#define VR_CHECK_NDIM(t, n) \
  do { if ((t)->ndim != (n)) return VR_FAIL(VR_E_SHAPE, "%s: expected %d dims, got %d", #t, (n), (t)->ndim); } while (0)
const char *vr_device_name(vr_device d);

/* ---------------------------------------------------------------- kernels and the op table */

/* Every kernel of every device takes this. in/out are tensors on the kernel's device with any
 * strides unless the op's front-end promises contiguity; f and i carry scalar parameters as the
 * op's front-end documents them; sub selects a variant within an op family. */
typedef struct vr_kernel_args {
  vr_tensor *in[8];
  int n_in;
  vr_tensor *out[4];
  int n_out;
  double f[8];
  int64_t i[16];
  int sub;
  void *ctx;
} vr_kernel_args;

typedef vr_status (*vr_kernel_fn)(const vr_kernel_args *a);

/* the CPU's pooled batch norm (vr_batch_norm_act_pool) lays the kh rows of a band of windows out in a
 * buffer of this many elements; wider bands run the unfused ops */
#define VR_BN_POOL_BAND 4096

typedef enum vr_op {
  /* tensor basics (core/tensor.c, core/rng.c) */
  VR_OP_COPY,            /* in[0] -> out[0], same shape (in may have stride-0 dims), any dtypes */
  VR_OP_FILL,            /* out[0] = f[0] */
  VR_OP_ARANGE,          /* out[0][k] = f[0] + k f[1] */
  VR_OP_RAND,            /* sub: VR_RAND_*; i[0] seed, i[1] stream, i[2] offset; f[0], f[1] params */
  /* elementwise (core/ops/elementwise.c) */
  VR_OP_UNARY,           /* sub: VR_UN_*; f[0..1] scalars; bwd: in = {grad_out, x, y}, out = {grad_x} */
  VR_OP_BINARY,          /* sub: VR_BIN_*; in[0], in[1] already expanded to out's shape */
  VR_OP_WHERE,           /* in: cond(u8), a, b expanded to out's shape */
  /* reductions (core/ops/reduce.c) */
  VR_OP_SUM,             /* in[0] -> out[0] (keepdim shape); i[0] = bitmask of reduced dims; f[0] scale */
  VR_OP_VAR,             /* in[0] -> out[0] (keepdim shape); i[0] bitmask; i[1] correction */
  VR_OP_MAXMIN,          /* sub 0 max, 1 min; along dim i[0]; out = {values, indices(i64)} keepdim */
  VR_OP_NORM,
  /* linear algebra (core/ops/linalg.c) */
  VR_OP_MATMUL,          /* out[b] = op(in0[b]) op(in1[b]); see core/ops/linalg.c */
  VR_OP_EIGH,            /* symmetric eigendecomposition; see core/ops/linalg.c */
  VR_OP_SVD,             /* reduced singular value decomposition; see core/ops/linalg.c */
  /* conv and pooling (core/ops/conv.c, core/ops/pool.c) */
  VR_OP_CONV2D,
  VR_OP_MAXPOOL2D,
  VR_OP_AVGPOOL2D,
  VR_OP_ADAPTIVE_AVGPOOL2D,
  /* normalisation and losses (core/ops/norm.c, core/ops/softmax.c) */
  VR_OP_BATCHNORM,
  VR_OP_LAYERNORM,
  VR_OP_SOFTMAX,         /* sub 0 softmax, 1 log_softmax */
  VR_OP_CROSS_ENTROPY,
  /* indexing and sorting (core/ops/index.c, core/ops/sort.c) */
  VR_OP_INDEX_SELECT,
  VR_OP_GATHER,
  VR_OP_SCATTER_ADD,
  VR_OP_SORT,
  VR_OP_ONE_HOT,
  /* regularizers (core/reg/) */
  VR_OP_VISREG,
  VR_OP_SWD,
  VR_OP_SIGREG,
  VR_OP_VICREG,
  VR_OP_VICREG_POOLED,
  VR_OP_BARLOW,
  VR_OP_INVARIANCE,
  /* data and optimisers (core/data/, core/optim.c) */
  VR_OP_AUGMENT,
  VR_OP_ADAMW,
  VR_OP_COUNT
} vr_op;

enum vr_rand_kind { VR_RAND_UNIFORM = 0, VR_RAND_NORMAL = 1, VR_RAND_INT = 2 };
/* VR_OP_BINARY variants; comparisons write u8 */
enum vr_binary_kind { VR_BIN_ADD, VR_BIN_SUB, VR_BIN_MUL, VR_BIN_DIV, VR_BIN_POW, VR_BIN_MAX, VR_BIN_MIN,
                      VR_BIN_EQ, VR_BIN_GT, VR_BIN_LT };
/* VR_OP_UNARY variants; *_SCALAR and CLAMP read f[0] (and f[1]) */
enum vr_unary_kind { VR_UN_NEG, VR_UN_EXP, VR_UN_LOG, VR_UN_SQRT, VR_UN_RSQRT, VR_UN_ABS, VR_UN_TANH,
                     VR_UN_SIGMOID, VR_UN_RELU, VR_UN_GELU, VR_UN_GELU_TANH, VR_UN_SIN, VR_UN_COS,
                     VR_UN_SQUARE, VR_UN_CLAMP, VR_UN_ERF, VR_UN_ERFINV, VR_UN_ADD_SCALAR,
                     VR_UN_MUL_SCALAR, VR_UN_RSUB_SCALAR, VR_UN_RDIV_SCALAR, VR_UN_POW_SCALAR };

/* VR_OP_ADAMW's tensor lists, passed in a->ctx (core/ops/optim.c documents the args): t[0..3] are
 * params, grads, exp_avg, exp_avg_sq for sub 0 (the fused step); t[0] alone for sub 1 (the norm) */
typedef struct vr_multi_tensor_args {
  int n;
  vr_tensor *const *t[4];
  const double *wd, *lr_scale; /* n values each (sub 0) */
} vr_multi_tensor_args;

const char *vr_op_name(vr_op op);
/* Each backend fills its column of the table at start-up (vr_cpu_register, vr_cuda_register). */
void vr_kernel_register(vr_op op, vr_device dev, vr_kernel_fn fwd, vr_kernel_fn bwd);
/* Runs the (op, device) kernel; VR_E_UNSUPPORTED with a message when the device has none. */
vr_status vr_dispatch(vr_op op, vr_device dev, int backward, const vr_kernel_args *a);
int vr_kernel_exists(vr_op op, vr_device dev, int backward);
/* vr_dispatch's path when the profiler is on (core/profile.c): runs fn and counts its time */
vr_status vr_profile_call(vr_op op, vr_device dev, int backward, const vr_kernel_args *a, vr_kernel_fn fn);
/* the names of the VR_OP_UNARY / VR_OP_BINARY variants (core/ops/elementwise.c) */
const char *vr_unary_kind_name(int kind);
const char *vr_binary_kind_name(int kind);
void vr_backends_init(void); /* idempotent; called by every allocation path */

/* Per-device memory functions, filled by each backend. */
typedef struct vr_device_api {
  vr_status (*alloc)(size_t nbytes, void **ptr);
  void (*release)(void *ptr, size_t nbytes);
  /* kind: 0 host->device, 1 device->host, 2 device->device */
  vr_status (*memcpy)(void *dst, const void *src, size_t nbytes, int kind);
  vr_status (*synchronize)(void);
  /* optional, for the op profiler (core/profile.c): an event recorded now in the device's queue,
   * the milliseconds between two (waits for the second), and its release */
  vr_status (*event_record)(void **ev);
  vr_status (*event_elapsed)(void *start, void *end, double *ms);
  void (*event_free)(void *ev);
} vr_device_api;
void vr_device_register(vr_device dev, const vr_device_api *api);
const vr_device_api *vr_device_get(vr_device dev); /* NULL when the device is absent */

void vr_cpu_register(void);
void vr_cuda_register(void); /* no-op stub when built without CUDA */

/* ---------------------------------------------------------------- autograd */

#define VR_NODE_MAX_IN 8
#define VR_NODE_MAX_SAVED 8

/* Computes the gradients of the node's inputs from the gradient of its output. gin[k] is set only
 * where vr_node_needs(n, k); the engine releases what it receives. Runs with grad mode off. */
typedef vr_status (*vr_backward_fn)(vr_node *n, vr_tensor *gout, vr_tensor **gin);

typedef struct vr_edge {
  vr_node *fn;        /* the input's grad_fn (strong ref), or NULL */
  vr_tensor *leaf;    /* the input itself when it is a leaf that requires grad (strong ref) */
  int ndim;           /* the input's shape, so backward can shape its gradient */
  int64_t shape[VR_MAX_DIMS];
  vr_dtype dtype;
} vr_edge;

struct vr_node {
  int refcount;
  const char *name;
  vr_backward_fn backward;
  int n_in;
  vr_edge in[VR_NODE_MAX_IN];
  int n_saved;
  vr_tensor *saved[VR_NODE_MAX_SAVED];
  uint64_t saved_version[VR_NODE_MAX_SAVED];
  double f[8];
  int64_t i[16];
  void *ctx;                 /* op-private state, freed by ctx_free */
  void (*ctx_free)(void *ctx);
  int released;              /* saved tensors freed after backward */
  /* engine scratch */
  vr_tensor *grad_acc;
  int pending;
  uint64_t mark;
};

/* true when grad mode is on and any of the n tensors requires grad */
bool vr_needs_grad(int n, const vr_tensor *const *ts);
/* A node for an op with n_in inputs (NULL entries allowed); edges are taken from the inputs. */
vr_status vr_node_new(const char *name, vr_backward_fn bw, int n_in, const vr_tensor *const *inputs, vr_node **out);
/* Saves t for backward (takes a reference, records its version); returns the slot. */
int vr_node_save(vr_node *n, const vr_tensor *t);
/* The saved tensor in slot k, or VR_E_AUTOGRAD when it was modified in place or released. */
vr_status vr_node_saved(vr_node *n, int k, vr_tensor **t);
/* Makes out the node's output (out->grad_fn = n, requires_grad); consumes the caller's node ref. */
void vr_node_attach(vr_node *n, vr_tensor *out);
static inline bool vr_node_needs(const vr_node *n, int k) { return n->in[k].fn || n->in[k].leaf; }
void vr_node_release(vr_node *n);
/* Convenience for front-ends: if grad is needed for inputs, make a node with the saved tensors
 * and attach it to out. saved may hold NULLs. */
vr_status vr_record(const char *name, vr_backward_fn bw, int n_in, const vr_tensor *const *inputs,
                    int n_saved, const vr_tensor *const *saved, const double *f, int nf,
                    const int64_t *iv, int ni, vr_tensor *out, vr_node **node);

/* ---------------------------------------------------------------- autocast (core/autocast.c) */
/* true when autocast is on, some of the n tensors (NULLs skipped) is f32 and every one is f32 or
 * the autocast dtype: the op then runs on vr_autocast_cast copies and casts its result to f32 */
bool vr_autocast_applies(int n, const vr_tensor *const *ts);
/* casted[k] = ts[k] in the autocast dtype (differentiable; a new reference; NULL stays NULL) */
vr_status vr_autocast_cast(int n, const vr_tensor *const *ts, vr_tensor **casted);
/* true when autocast is on and the n tensors mix f32 with the autocast dtype: the op widens them
 * (vr_autocast_widen) and runs in f32, as PyTorch promotes bf16 meeting f32 */
bool vr_autocast_mixed(int n, const vr_tensor *const *ts);
/* wide[k] = ts[k] in f32 (differentiable; a new reference) */
vr_status vr_autocast_widen(int n, const vr_tensor *const *ts, vr_tensor **wide);

/* ---------------------------------------------------------------- kernel variants */
/* The paths chosen by vr_set_variant (core/variants.c): each entry is its value's index, 0 the
 * default. Kernels read them at each call. */
typedef enum {
  VR_VARIANT_CONV, VR_VARIANT_3XTF32, VR_VARIANT_COLSUMS, VR_VARIANT_SORT, VR_VARIANT_BN_ACT, VR_VARIANT_CPU_TILES,
  VR_VARIANT_CPU_WINOGRAD, VR_VARIANT_N
} vr_variant_id;
enum { VR_CONV_CUDNN, VR_CONV_CUDNN_LEGACY, VR_CONV_IM2COL };
enum { VR_3XTF32_AUTO, VR_3XTF32_OFF, VR_3XTF32_ON };
enum { VR_CPU_TILES_CHANNELS, VR_CPU_TILES_POSITIONS };
enum { VR_CPU_WINOGRAD_ON, VR_CPU_WINOGRAD_OFF };
extern int vr_variants[VR_VARIANT_N];
/* VISREG_PROFILE holds "phases": the CUDA regularizers print the device time of each phase */
int vr_profile_phases(void);

/* ---------------------------------------------------------------- threads */
/* Runs fn(ctx, lo, hi) over [0, n) split into contiguous chunks on the library's threads. */
void vr_parallel_for(int64_t n, int64_t grain, void (*fn)(void *ctx, int64_t lo, int64_t hi), void *ctx);

#ifdef __cplusplus
}
#endif
#endif
