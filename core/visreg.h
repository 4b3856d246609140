/* visreg.h: the one public header of libvisreg.
 *
 * Plain C declarations only (no macros in declarations, opaque handles, status returns), so that
 * tools/gen-cdef turns it into lua/visreg/cdef.lua for LuaJIT's ffi.cdef unchanged.
 *
 * Conventions:
 *  - every fallible function returns vr_status (0 = VR_OK); on failure vr_last_error() names the
 *    function, the argument, what was expected and what came, and the source location;
 *  - functions that make a tensor write a NEW reference to *out; release it with vr_tensor_free;
 *  - dims may be negative (counted from the end), as in PyTorch;
 *  - ops record an autograd node when grad mode is on and an input requires grad.
 */
#ifndef VISREG_H
#define VISREG_H

#include <stddef.h>
#include <stdint.h>

typedef struct vr_tensor vr_tensor;       /* opaque, refcounted */
typedef struct vr_generator vr_generator; /* opaque Philox generator */
typedef int vr_status;

enum vr_status_code {
  VR_OK = 0,
  VR_E_ARG = 1,         /* an argument out of range or malformed */
  VR_E_SHAPE = 2,       /* shapes do not agree */
  VR_E_DTYPE = 3,       /* wrong element type */
  VR_E_DEVICE = 4,      /* tensors on different devices, or no such device */
  VR_E_OOM = 5,         /* allocation failed */
  VR_E_IO = 6,          /* a file could not be read or written */
  VR_E_FORMAT = 7,      /* a file or string is malformed */
  VR_E_UNSUPPORTED = 8, /* no kernel for this (op, device, dtype) */
  VR_E_AUTOGRAD = 9,    /* backward misuse: freed graph, modified saved tensor, no grad */
  VR_E_CUDA = 10,       /* a CUDA or cuBLAS call failed */
  VR_E_VALUE = 11,      /* non-finite or otherwise invalid values */
  VR_E_INTERNAL = 12,
  VR_E_INTERRUPTED = 13 /* stopped by an interrupt request (Ctrl-C) */
};

typedef enum vr_dtype { VR_F32 = 0, VR_F64 = 1, VR_I32 = 2, VR_I64 = 3, VR_U8 = 4, VR_BF16 = 5 } vr_dtype;
typedef enum vr_device { VR_CPU = 0, VR_CUDA = 1 } vr_device;

/* ---- library ---- */
const char *vr_version(void);
const char *vr_last_error(void);
vr_status vr_last_status(void);
void vr_clear_error(void);
const char *vr_status_name(vr_status s);
const char *vr_dtype_name(vr_dtype dt);
size_t vr_dtype_size(vr_dtype dt);
int vr_num_threads(void);
void vr_set_num_threads(int n);
int vr_cuda_available(void);          /* 1 when the CUDA backend is compiled in and sees a GPU */
const char *vr_cuda_device_name(void); /* "" when none */
int vr_cuda_compiled(void);
/* The process-wide CPU settings the ops are fast with (core/cpu_defaults.c): idle OpenMP workers
 * sleep, OpenBLAS's idle workers sleep soon and use the CPU's AVX-512 or AVX2 kernels, and tensor
 * buffers stay in the heap. Each is left alone where the user set its variable. The host calls it
 * before libgomp and OpenBLAS start (a constructor of priority 101, as bin/visreg does); the
 * library never calls it. */
void vr_cpu_defaults(void);

/* The interrupt request (core/interrupt.c): a process-wide flag that a signal handler may set
 * (Ctrl-C, SIGTERM) and that long loops read: the probes stop with VR_E_INTERRUPTED (taking the
 * request, which clears it), the trainer saves a checkpoint between steps. */
int vr_interrupt_pending(void);
void vr_interrupt_request(void);
void vr_interrupt_clear(void);

/* ---- tensors: creation ---- */
vr_status vr_tensor_empty(int ndim, const int64_t *shape, vr_dtype dtype, vr_device device, vr_tensor **out);
vr_status vr_tensor_zeros(int ndim, const int64_t *shape, vr_dtype dtype, vr_device device, vr_tensor **out);
vr_status vr_tensor_ones(int ndim, const int64_t *shape, vr_dtype dtype, vr_device device, vr_tensor **out);
vr_status vr_tensor_full(int ndim, const int64_t *shape, double value, vr_dtype dtype, vr_device device, vr_tensor **out);
vr_status vr_tensor_arange(double start, double end, double step, vr_dtype dtype, vr_device device, vr_tensor **out);
vr_status vr_tensor_scalar(double value, vr_dtype dtype, vr_device device, vr_tensor **out);
/* copies count = prod(shape) elements of dtype from a host buffer */
vr_status vr_tensor_from_buffer(const void *data, int ndim, const int64_t *shape, vr_dtype dtype, vr_device device, vr_tensor **out);
/* writes the tensor's elements, in row-major order, to a host buffer of nbytes */
vr_status vr_tensor_to_buffer(const vr_tensor *t, void *data, size_t nbytes);
vr_status vr_tensor_clone(const vr_tensor *t, vr_tensor **out);       /* differentiable copy */
vr_status vr_tensor_to_dtype(const vr_tensor *t, vr_dtype dtype, vr_tensor **out);
vr_status vr_tensor_to_device(const vr_tensor *t, vr_device device, vr_tensor **out);

/* ---- tensors: handles and metadata ---- */
void vr_tensor_retain(vr_tensor *t);
void vr_tensor_free(vr_tensor *t);            /* drops one reference; NULL is ignored */
int vr_tensor_ndim(const vr_tensor *t);
int64_t vr_tensor_size(const vr_tensor *t, int dim);
int64_t vr_tensor_stride(const vr_tensor *t, int dim);
int64_t vr_tensor_numel(const vr_tensor *t);
int64_t vr_tensor_offset(const vr_tensor *t);
vr_dtype vr_tensor_dtype(const vr_tensor *t);
vr_device vr_tensor_device(const vr_tensor *t);
int vr_tensor_is_contiguous(const vr_tensor *t);
void *vr_tensor_data(vr_tensor *t);           /* host pointer to element 0 of the view (CPU only, else NULL) */
uint64_t vr_tensor_version(const vr_tensor *t);
int vr_tensor_shares_storage(const vr_tensor *a, const vr_tensor *b);
vr_status vr_tensor_item(const vr_tensor *t, double *value); /* one-element tensor */
vr_status vr_tensor_get(const vr_tensor *t, const int64_t *index, double *value);
vr_status vr_tensor_set(vr_tensor *t, const int64_t *index, double value);

/* ---- views (share storage; differentiable) ---- */
vr_status vr_view(const vr_tensor *t, int ndim, const int64_t *shape, vr_tensor **out);    /* one dim may be -1 */
vr_status vr_reshape(const vr_tensor *t, int ndim, const int64_t *shape, vr_tensor **out); /* view when possible, else copy */
vr_status vr_permute(const vr_tensor *t, const int *perm, vr_tensor **out);
vr_status vr_transpose(const vr_tensor *t, int dim0, int dim1, vr_tensor **out);
vr_status vr_narrow(const vr_tensor *t, int dim, int64_t start, int64_t length, vr_tensor **out);
vr_status vr_slice(const vr_tensor *t, int dim, int64_t start, int64_t end, int64_t step, vr_tensor **out);
vr_status vr_select(const vr_tensor *t, int dim, int64_t index, vr_tensor **out);
vr_status vr_expand(const vr_tensor *t, int ndim, const int64_t *shape, vr_tensor **out); /* -1 keeps a size */
vr_status vr_squeeze(const vr_tensor *t, int dim, vr_tensor **out);
vr_status vr_unsqueeze(const vr_tensor *t, int dim, vr_tensor **out);
vr_status vr_flatten(const vr_tensor *t, int start_dim, int end_dim, vr_tensor **out);
vr_status vr_contiguous(const vr_tensor *t, vr_tensor **out); /* new reference to t itself when already contiguous */

/* ---- in-place (bump the version counter; not recorded by autograd) ---- */
vr_status vr_fill_(vr_tensor *t, double value);
vr_status vr_copy_(vr_tensor *dst, const vr_tensor *src);   /* src broadcast to dst; dtype converted */
vr_status vr_add_(vr_tensor *t, const vr_tensor *src, double alpha); /* t += alpha * src */
vr_status vr_mul_scalar_(vr_tensor *t, double s);

/* ---- random numbers: Philox 4x32-10 keyed by (seed, stream, counter) ----
 * Element i of a draw uses counter (offset + i); the generator's offset advances by the number
 * of elements drawn, so results do not depend on the thread count or the device. */
vr_status vr_generator_new(uint64_t seed, uint64_t stream, vr_generator **out);
void vr_generator_free(vr_generator *g);
uint64_t vr_generator_seed(const vr_generator *g);
uint64_t vr_generator_stream(const vr_generator *g);
uint64_t vr_generator_offset(const vr_generator *g);
void vr_generator_set_state(vr_generator *g, uint64_t seed, uint64_t stream, uint64_t offset);
vr_status vr_rand_uniform(vr_generator *g, int ndim, const int64_t *shape, double low, double high, vr_dtype dtype, vr_device device, vr_tensor **out);
vr_status vr_rand_normal(vr_generator *g, int ndim, const int64_t *shape, double mean, double std, vr_dtype dtype, vr_device device, vr_tensor **out);
vr_status vr_rand_int(vr_generator *g, int ndim, const int64_t *shape, int64_t low, int64_t high, vr_dtype dtype, vr_device device, vr_tensor **out);
vr_status vr_randperm(vr_generator *g, int64_t n, vr_device device, vr_tensor **out); /* i64 */
/* the raw stream: four 32-bit words for (key, counter); identical on every device */
void vr_philox4x32(uint64_t seed, uint64_t stream, uint64_t counter, uint32_t *out4);

/* ---- .npy files (float32, float64, int32, int64, uint8; C or Fortran order on read) ---- */
vr_status vr_npy_load(const char *path, vr_tensor **out);
vr_status vr_npy_save(const char *path, const vr_tensor *t);

/* ---- autograd ---- */
vr_status vr_tensor_set_requires_grad(vr_tensor *t, int requires_grad); /* leaves only */
int vr_tensor_requires_grad(const vr_tensor *t);
int vr_tensor_is_leaf(const vr_tensor *t);
vr_tensor *vr_tensor_grad(const vr_tensor *t);  /* new reference, or NULL when none */
void vr_tensor_set_grad(vr_tensor *t, vr_tensor *grad); /* takes its own reference; NULL clears */
const char *vr_tensor_grad_fn_name(const vr_tensor *t); /* "" for leaves */
vr_status vr_detach(const vr_tensor *t, vr_tensor **out);
/* grad may be NULL for a one-element root (gradient 1); retain_graph keeps saved tensors */
vr_status vr_backward(vr_tensor *root, const vr_tensor *grad, int retain_graph);
int vr_grad_enabled(void);
int vr_set_grad_enabled(int enabled); /* returns the previous mode (thread-local) */
/* mixed precision (thread-local, like PyTorch autocast): VR_BF16 makes vr_matmul, vr_linear and
 * vr_conv2d cast their f32 inputs to bf16 (differentiably), compute in bf16 with f32 accumulation
 * and cast the result back to f32; VR_F32 (the default) turns it off. Other ops and every
 * backward are unaffected. */
vr_status vr_autocast_set(vr_dtype dtype);
vr_dtype vr_autocast_get(void);

/* ---- elementwise, with broadcasting ---- */
vr_status vr_add(const vr_tensor *a, const vr_tensor *b, vr_tensor **out);
vr_status vr_sub(const vr_tensor *a, const vr_tensor *b, vr_tensor **out);
vr_status vr_mul(const vr_tensor *a, const vr_tensor *b, vr_tensor **out);
vr_status vr_div(const vr_tensor *a, const vr_tensor *b, vr_tensor **out);
vr_status vr_pow(const vr_tensor *a, const vr_tensor *b, vr_tensor **out);
vr_status vr_maximum(const vr_tensor *a, const vr_tensor *b, vr_tensor **out);
vr_status vr_minimum(const vr_tensor *a, const vr_tensor *b, vr_tensor **out);
vr_status vr_add_scalar(const vr_tensor *a, double s, vr_tensor **out);
vr_status vr_mul_scalar(const vr_tensor *a, double s, vr_tensor **out);
vr_status vr_rsub_scalar(const vr_tensor *a, double s, vr_tensor **out); /* s - a */
vr_status vr_rdiv_scalar(const vr_tensor *a, double s, vr_tensor **out); /* s / a */
vr_status vr_pow_scalar(const vr_tensor *a, double p, vr_tensor **out);  /* a ^ p */
vr_status vr_neg(const vr_tensor *a, vr_tensor **out);
vr_status vr_exp(const vr_tensor *a, vr_tensor **out);
vr_status vr_log(const vr_tensor *a, vr_tensor **out);
vr_status vr_sqrt(const vr_tensor *a, vr_tensor **out);
vr_status vr_rsqrt(const vr_tensor *a, vr_tensor **out);
vr_status vr_abs(const vr_tensor *a, vr_tensor **out);
vr_status vr_tanh(const vr_tensor *a, vr_tensor **out);
vr_status vr_sigmoid(const vr_tensor *a, vr_tensor **out);
vr_status vr_relu(const vr_tensor *a, vr_tensor **out);
vr_status vr_gelu(const vr_tensor *a, int tanh_approx, vr_tensor **out);
vr_status vr_sin(const vr_tensor *a, vr_tensor **out);
vr_status vr_cos(const vr_tensor *a, vr_tensor **out);
vr_status vr_square(const vr_tensor *a, vr_tensor **out);
vr_status vr_clamp(const vr_tensor *a, double lo, double hi, vr_tensor **out); /* +-inf for no bound */
vr_status vr_erf(const vr_tensor *a, vr_tensor **out);     /* forward only */
vr_status vr_erfinv(const vr_tensor *a, vr_tensor **out);  /* forward only */
/* comparisons give u8 masks; not differentiable */
vr_status vr_eq(const vr_tensor *a, const vr_tensor *b, vr_tensor **out);
vr_status vr_gt(const vr_tensor *a, const vr_tensor *b, vr_tensor **out);
vr_status vr_lt(const vr_tensor *a, const vr_tensor *b, vr_tensor **out);
vr_status vr_isfinite_all(const vr_tensor *a, int *all_finite);

/* ---- reductions: dims[0..ndims) (ndims = 0: all dims) ---- */
vr_status vr_sum(const vr_tensor *x, int ndims, const int *dims, int keepdim, vr_tensor **out);
vr_status vr_mean(const vr_tensor *x, int ndims, const int *dims, int keepdim, vr_tensor **out);
/* correction 0: biased (population); 1: unbiased */
vr_status vr_var(const vr_tensor *x, int ndims, const int *dims, int correction, int keepdim, vr_tensor **out);
vr_status vr_std(const vr_tensor *x, int ndims, const int *dims, int correction, int keepdim, vr_tensor **out);
vr_status vr_norm(const vr_tensor *x, double p, int ndims, const int *dims, int keepdim, vr_tensor **out);
/* along one dim; indices are i64; either output pointer may be NULL */
vr_status vr_max(const vr_tensor *x, int dim, int keepdim, vr_tensor **values, vr_tensor **indices);
vr_status vr_min(const vr_tensor *x, int dim, int keepdim, vr_tensor **values, vr_tensor **indices);
vr_status vr_argmax(const vr_tensor *x, int dim, int keepdim, vr_tensor **out);
vr_status vr_argmin(const vr_tensor *x, int dim, int keepdim, vr_tensor **out);
vr_status vr_max_all(const vr_tensor *x, vr_tensor **out);
vr_status vr_min_all(const vr_tensor *x, vr_tensor **out);

/* ---- linear algebra ---- */
/* 1-D, 2-D and batched (batch dims broadcast); transposed views go to BLAS without a copy */
vr_status vr_matmul(const vr_tensor *a, const vr_tensor *b, vr_tensor **out);
/* y = x W^T + b, W is out_features x in_features, b may be NULL */
vr_status vr_linear(const vr_tensor *x, const vr_tensor *weight, const vr_tensor *bias, vr_tensor **out);
/* Decompositions of one 2-D f32 or f64 matrix (any strides; NaN or inf gives VR_E_VALUE), on
 * the CPU through LAPACK (OpenBLAS). CUDA tensors have no GPU kernel yet: the matrix is copied to
 * the host, decomposed there and the results copied back to the device (correct, not fast).
 * Differentiable as in PyTorch; the gradients assume distinct eigenvalues (singular values), and
 * for the svd's u and vh of a rectangular matrix, no zero singular value (else inf or NaN). */
/* symmetric eigendecomposition (torch.linalg.eigh, UPLO='L'): a is n x n and only its lower
 * triangle is read; values (n) ascending, vectors (n x n) holding the eigenvectors as columns,
 * a = vectors diag(values) vectors^T. vectors may be NULL (values only). LAPACK syevd. */
vr_status vr_eigh(const vr_tensor *a, vr_tensor **values, vr_tensor **vectors);
/* reduced singular value decomposition (torch.linalg.svd, full_matrices=False): a (m x n) =
 * u diag(s) vh with k = min(m, n), u m x k, s k (descending, >= 0), vh k x n. u and vh may be
 * NULL (s only, torch.linalg.svdvals). LAPACK gesdd. */
vr_status vr_svd(const vr_tensor *a, vr_tensor **u, vr_tensor **s, vr_tensor **vh);

/* ---- convolution and pooling (NCHW) ---- */
vr_status vr_conv2d(const vr_tensor *x, const vr_tensor *weight, const vr_tensor *bias,
                    int stride_h, int stride_w, int pad_h, int pad_w, int dil_h, int dil_w, int groups,
                    vr_tensor **out);
/* channels-last (as PyTorch's memory_format=torch.channels_last): x [N, H, W, C], weight
 * [Cout, kh, kw, C/groups], bias [Cout] or NULL; y [N, Ho, Wo, Cout]. Same checks and autocast as
 * vr_conv2d; the layout cuDNN's bf16 tensor-core convolutions work in without transposes. */
vr_status vr_conv2d_nhwc(const vr_tensor *x, const vr_tensor *weight, const vr_tensor *bias,
                         int stride_h, int stride_w, int pad_h, int pad_w, int dil_h, int dil_w, int groups,
                         vr_tensor **out);
vr_status vr_max_pool2d(const vr_tensor *x, int k_h, int k_w, int stride_h, int stride_w, int pad_h, int pad_w, vr_tensor **out);
vr_status vr_avg_pool2d(const vr_tensor *x, int k_h, int k_w, int stride_h, int stride_w, int pad_h, int pad_w,
                        int count_include_pad, vr_tensor **out);
vr_status vr_adaptive_avg_pool2d(const vr_tensor *x, int out_h, int out_w, vr_tensor **out);

/* ---- normalisation, softmax, losses, dropout ---- */
/* x: N x C or N x C x H x W. weight/bias/running_* may be NULL. In training, running stats are
 * updated in place with momentum (running = (1-m) running + m batch, unbiased var). */
vr_status vr_batch_norm(const vr_tensor *x, const vr_tensor *weight, const vr_tensor *bias,
                        vr_tensor *running_mean, vr_tensor *running_var, int training,
                        double momentum, double eps, vr_tensor **out);
/* y = act(batch_norm(x) + residual), fused (one pass over x on the GPU instead of three ops):
 * residual (x's shape and dtype; under autocast an f32 residual beside bf16 x runs the unfused ops,
 * widening as vr_add does) may be NULL; relu 1: max(0, .), 0: none. The ResNet block's
 * bn-ReLU and bn-add-ReLU. Gradients flow to x, weight, bias and residual. */
vr_status vr_batch_norm_act(const vr_tensor *x, const vr_tensor *weight, const vr_tensor *bias,
                            vr_tensor *running_mean, vr_tensor *running_var, int training, double momentum,
                            double eps, const vr_tensor *residual, int relu, vr_tensor **out);
/* max_pool2d(act(batch_norm(x)), (pool_h, pool_w)) with windows at that stride and no padding, x
 * N x C x H x W: on the CPU one pass writes only the pooled output (and a byte a window for the
 * backward) instead of y, then the pooling's reads of it; the same results as the two ops, which run
 * one after the other elsewhere. relu 1: max(0, .), 0: none. A ConvNet's bn-ReLU-pool. */
vr_status vr_batch_norm_act_pool(const vr_tensor *x, const vr_tensor *weight, const vr_tensor *bias,
                                 vr_tensor *running_mean, vr_tensor *running_var, int training, double momentum,
                                 double eps, int relu, int pool_h, int pool_w, vr_tensor **out);
/* normalises over the last n_norm_dims dims; weight/bias (that shape) may be NULL */
vr_status vr_layer_norm(const vr_tensor *x, int n_norm_dims, const vr_tensor *weight, const vr_tensor *bias,
                        double eps, vr_tensor **out);
vr_status vr_softmax(const vr_tensor *x, int dim, vr_tensor **out);
vr_status vr_log_softmax(const vr_tensor *x, int dim, vr_tensor **out);
/* logits N x C, target i64 of N class indices; mean over N */
vr_status vr_cross_entropy(const vr_tensor *logits, const vr_tensor *target, double label_smoothing, vr_tensor **out);
vr_status vr_dropout(const vr_tensor *x, double p, int training, vr_generator *g, vr_tensor **out);

/* ---- joining, splitting, indexing, sorting ---- */
vr_status vr_concat(int n, vr_tensor *const *xs, int dim, vr_tensor **out);
vr_status vr_stack(int n, vr_tensor *const *xs, int dim, vr_tensor **out);
/* n pieces of the given sizes along dim (views); outs must hold n pointers */
vr_status vr_split(const vr_tensor *x, int n, const int64_t *sizes, int dim, vr_tensor **outs);
vr_status vr_index_select(const vr_tensor *x, int dim, const vr_tensor *index, vr_tensor **out);
vr_status vr_gather(const vr_tensor *x, int dim, const vr_tensor *index, vr_tensor **out);
/* out = x with src added at index along dim (out of place) */
vr_status vr_scatter_add(const vr_tensor *x, int dim, const vr_tensor *index, const vr_tensor *src, vr_tensor **out);
/* stable; values and/or indices may be NULL */
vr_status vr_sort(const vr_tensor *x, int dim, int descending, vr_tensor **values, vr_tensor **indices);
vr_status vr_argsort(const vr_tensor *x, int dim, int descending, vr_tensor **out);
vr_status vr_topk(const vr_tensor *x, int64_t k, int dim, int largest, vr_tensor **values, vr_tensor **indices);
vr_status vr_where(const vr_tensor *cond, const vr_tensor *a, const vr_tensor *b, vr_tensor **out);
vr_status vr_masked_fill(const vr_tensor *x, const vr_tensor *mask, double value, vr_tensor **out);
vr_status vr_one_hot(const vr_tensor *index, int64_t num_classes, vr_dtype dtype, vr_tensor **out);

/* ---- regularizers (core/reg/; formulas in shared/spec/REGULARIZERS.md) ----
 * z is V x B x D (views x batch x dims), f32 or f64. slices is the raw D x K matrix (each method
 * normalises its columns) or NULL: then K slices are drawn from Philox keyed by (seed, step), a
 * new set for every step. Each returns a scalar loss tensor, differentiable in z. terms, where
 * given, receives a detached 1-D tensor of the method's terms (VISReg: center, scale, shape). */
vr_status vr_visreg(const vr_tensor *z, const vr_tensor *slices, int64_t K, uint64_t seed, uint64_t step,
                    double w_scale, double w_shape, double w_center, vr_tensor **loss, vr_tensor **terms);
vr_status vr_swd(const vr_tensor *z, const vr_tensor *slices, int64_t K, uint64_t seed, uint64_t step, vr_tensor **loss);
vr_status vr_sigreg(const vr_tensor *z, const vr_tensor *slices, int64_t K, uint64_t seed, uint64_t step,
                    int knots, double t_max, vr_tensor **loss);
/* official two-view VICReg: w_inv * mean (z0-z1)^2 + w_var * var + w_cov * cov; terms: inv, var, cov */
vr_status vr_vicreg(const vr_tensor *z, double w_inv, double w_var, double w_cov, vr_tensor **loss, vr_tensor **terms);
/* the VISReg code's pooled squared-hinge variant: w_var * var + w_cov * cov; terms: var, cov */
vr_status vr_vicreg_pooled(const vr_tensor *z, double w_var, double w_cov, vr_tensor **loss, vr_tensor **terms);
vr_status vr_barlow(const vr_tensor *z, double offdiag_weight, vr_tensor **loss);
/* mean over views, batch and dims of (z - mean of the first global_views views)^2 */
vr_status vr_invariance(const vr_tensor *z, int global_views, vr_tensor **loss);
/* the i-th of B Gaussian quantile targets, sqrt(2) erfinv(2i/(B+1) - 1), i = 1..B, as a B-vector */
vr_status vr_gauss_quantiles(int64_t B, vr_dtype dtype, vr_device device, vr_tensor **out);
/* unit-column D x K slice matrix from Philox keyed by (seed, step) */
vr_status vr_draw_slices(int64_t D, int64_t K, uint64_t seed, uint64_t step, double eps, vr_dtype dtype, vr_device device, vr_tensor **out);


/* ---- optimisers (core/ops/optim.c): multi-tensor updates, one kernel launch per call ----
 * vr_adamw_step is torch.optim.AdamW over n parameters at once. For each parameter k and element,
 * with g = grad * grad_scale and lr_k = lr * lr_scale[k]:
 *   p -= lr_k wd[k] p;  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
 *   p -= lr_k / (1 - b1^step) * m / (sqrt(v) / sqrt(1 - b2^step) + eps)
 * params, exp_avg and exp_avg_sq are contiguous, of one float dtype (f32, f64) and device, and are
 * updated in place; grads have the params' shapes (any strides). weight_decay and lr_scale hold n
 * values each, or are NULL (0 and 1). grad_scale is NULL or a one-element float tensor on the
 * params' device (vr_grad_norm's clip factor), read by the kernel: nothing returns to the host. */
vr_status vr_adamw_step(vr_tensor *const *params, vr_tensor *const *grads, vr_tensor *const *exp_avg,
                        vr_tensor *const *exp_avg_sq, int n, const double *weight_decay, const double *lr_scale,
                        double lr, double beta1, double beta2, double eps, int64_t step, const vr_tensor *grad_scale);
/* the global 2-norm of n tensors of one float dtype and device, summed in a fixed order on their
 * device, as a 0-dim tensor of that dtype; clip (may be NULL) receives the 0-dim factor
 * min(1, max_norm / (norm + 1e-6)) (1 when max_norm <= 0), as torch.nn.utils.clip_grad_norm_ */
vr_status vr_grad_norm(vr_tensor *const *tensors, int n, double max_norm, vr_tensor **norm, vr_tensor **clip);

/* ---- data, augmentation, loader, checkpoints, probes (core/data/, core/ckpt_write.c, ckpt_read.c, core/probe.c) ---- */
typedef struct vr_dataset vr_dataset;         /* opaque: u8 images N x C x H x W and i64 labels in memory */
typedef struct vr_pipeline vr_pipeline;       /* opaque: a list of augmentation specs */
typedef struct vr_loader vr_loader;           /* opaque: multi-view batch loader with worker threads */
typedef struct vr_batch vr_batch;             /* opaque: one multi-view batch */
typedef struct vr_ckpt_writer vr_ckpt_writer; /* opaque: (name, tensor) pairs and metadata to save */
typedef struct vr_ckpt_reader vr_ckpt_reader; /* opaque: an opened, validated safetensors file */

/* datasets. root NULL or "" means the default (/usr/share/datasets/fashion-mnist for Fashion-MNIST).
 * train 1: the training split, 0: the test split. A missing or truncated file gives VR_E_IO or
 * VR_E_FORMAT naming the path. */
vr_status vr_dataset_fashion_mnist(const char *root, int train, vr_dataset **out);
/* IDX files (idx3 u8 images, idx1 u8 labels), gzip-compressed or plain; labels_path may be NULL */
vr_status vr_dataset_idx(const char *images_path, const char *labels_path, int num_classes, vr_dataset **out);
/* CIFAR binary format: root holds data_batch_1..5.bin and test_batch.bin (CIFAR-10) or train.bin and
 * test.bin (CIFAR-100; coarse 1 selects the 20 coarse labels) */
vr_status vr_dataset_cifar10(const char *root, int train, vr_dataset **out);
vr_status vr_dataset_cifar100(const char *root, int train, int coarse, vr_dataset **out);
/* from tensors: images u8 N x C x H x W (or N x H x W), labels i64/i32 N or NULL (label-free) */
vr_status vr_dataset_from_tensors(const vr_tensor *images, const vr_tensor *labels, int num_classes, vr_dataset **out);
void vr_dataset_free(vr_dataset *d);
int64_t vr_dataset_count(const vr_dataset *d);
int64_t vr_dataset_channels(const vr_dataset *d);
int64_t vr_dataset_height(const vr_dataset *d);
int64_t vr_dataset_width(const vr_dataset *d);
int vr_dataset_num_classes(const vr_dataset *d);   /* 0 in label-free mode */
int vr_dataset_has_labels(const vr_dataset *d);
int64_t vr_dataset_label(const vr_dataset *d, int64_t index); /* -1 when unlabeled or out of range */
const uint8_t *vr_dataset_image_data(const vr_dataset *d, int64_t index); /* C*H*W bytes, or NULL */
/* u8 N x C x H x W (a new reference to the dataset's own tensor: do not modify) */
vr_status vr_dataset_images(const vr_dataset *d, vr_tensor **out);
/* f32 N x C x H x W with values u8 / 255 */
vr_status vr_dataset_images_f32(const vr_dataset *d, vr_tensor **out);
vr_status vr_dataset_labels(const vr_dataset *d, vr_tensor **out); /* i64 N (-1 when unlabeled) */
/* derived datasets (new handles holding copies of the chosen images) */
vr_status vr_dataset_subset(const vr_dataset *d, int64_t n, const int64_t *indices, vr_dataset **out);
vr_status vr_dataset_head(const vr_dataset *d, int64_t n, vr_dataset **out); /* the first n images */
/* keeps the listed classes; relabel 1 maps classes[k] to label k */
vr_status vr_dataset_class_subset(const vr_dataset *d, int n, const int *classes, int relabel, vr_dataset **out);
/* long-tailed: class c keeps floor(n_max * imbalance^(-c/(C-1))) images (its first ones, in order) */
vr_status vr_dataset_long_tail(const vr_dataset *d, double imbalance, vr_dataset **out);
vr_status vr_dataset_unlabeled(const vr_dataset *d, vr_dataset **out); /* label-free copy */
int64_t vr_dataset_class_count(const vr_dataset *d, int cls);

/* augmentation pipelines. Images are f32 in [0, 1] (u8 inputs are divided by 255) as C x H x W.
 * Each step runs with probability p. Randomness is a pure function of (seed, epoch, sample, view,
 * step index) through Philox, so the same inputs give the same views whatever the thread count. */
vr_status vr_pipeline_new(vr_pipeline **out);
void vr_pipeline_free(vr_pipeline *p);
int vr_pipeline_length(const vr_pipeline *p);
/* random resized crop (bilinear): area fraction in [scale_lo, scale_hi], aspect ratio log-uniform in
 * [ratio_lo, ratio_hi]; out_h/out_w 0 means the view's size. With probability 1-p: the whole image resized. */
vr_status vr_pipeline_add_crop(vr_pipeline *p, double scale_lo, double scale_hi, double ratio_lo, double ratio_hi,
                               int out_h, int out_w, double prob);
vr_status vr_pipeline_add_resize(vr_pipeline *p, int out_h, int out_w); /* whole image, bilinear */
vr_status vr_pipeline_add_hflip(vr_pipeline *p, double prob);
/* colour jitter in random order, as torchvision: factors drawn from [max(0, 1-x), 1+x], hue from [-h, h];
 * saturation and hue apply to 3-channel images only */
vr_status vr_pipeline_add_jitter(vr_pipeline *p, double brightness, double contrast, double saturation, double hue,
                                 double prob);
vr_status vr_pipeline_add_grayscale(vr_pipeline *p, double prob);
/* sigma uniform in [sigma_lo, sigma_hi]; kernel_size 0: 2*ceil(3 sigma)+1; reflect padding */
vr_status vr_pipeline_add_blur(vr_pipeline *p, double sigma_lo, double sigma_hi, int kernel_size, double prob);
vr_status vr_pipeline_add_solarize(vr_pipeline *p, double threshold, double prob); /* x >= t -> 1 - x */
/* random erasing (Zhong et al.): area fraction in [scale_lo, scale_hi], log-uniform ratio, filled with value */
vr_status vr_pipeline_add_erase(vr_pipeline *p, double scale_lo, double scale_hi, double ratio_lo, double ratio_hi,
                                double value, double prob);
vr_status vr_pipeline_add_noise(vr_pipeline *p, double std, double prob); /* x += N(0, std^2) */
/* (x - mean[c]) / std[c]; n is 1 (all channels) or the channel count */
vr_status vr_pipeline_add_normalize(vr_pipeline *p, int n, const double *mean, const double *std);
/* runs the pipeline on image (C x H x W) or images (N x C x H x W; image k is sample sample+k), u8 or
 * f32, on the CPU or CUDA (the views are made on the images' device, the same views on both);
 * out is f32 (N x) C x out_h x out_w (out_h/out_w 0: the input's size) on the images' device */
vr_status vr_pipeline_apply(const vr_pipeline *p, const vr_tensor *images, int out_h, int out_w, uint64_t seed,
                            uint64_t epoch, uint64_t sample, uint64_t view, vr_tensor **out);
/* the same with each image's sample given: ids is i64 with one entry per image (image k is sample
 * ids[k]), on the CPU or the images' device; with a raw loader (vr_loader_set_raw) the batch's
 * vr_batch_images, vr_batch_indices and vr_batch_epoch give the loader's own views */
vr_status vr_pipeline_apply_ids(const vr_pipeline *p, const vr_tensor *images, const vr_tensor *ids, int out_h,
                                int out_w, uint64_t seed, uint64_t epoch, uint64_t view, vr_tensor **out);

/* loader: batches of B samples, shuffled per epoch from (seed, epoch) when shuffle is 1; every sample
 * gives one image per view; workers threads prefetch up to prefetch whole batches (workers 0: the
 * batch is made in vr_loader_next on the calling thread). */
vr_status vr_loader_new(const vr_dataset *d, int64_t batch, int shuffle, int drop_last, uint64_t seed, int workers,
                        int prefetch, vr_loader **out);
void vr_loader_free(vr_loader *l);
/* appends a view (its index = number of views before it) of out_h x out_w (0: the image size) made by
 * pipeline p (copied, so p may be freed after; NULL: the image resized). Consecutive views of one size
 * share one tensor (see vr_batch_views). Add every view before the first vr_loader_next. */
vr_status vr_loader_add_view(vr_loader *l, int out_h, int out_w, const vr_pipeline *p);
int vr_loader_num_views(const vr_loader *l);
int64_t vr_loader_num_batches(const vr_loader *l); /* per epoch */
int64_t vr_loader_epoch(const vr_loader *l);
int64_t vr_loader_batch_index(const vr_loader *l); /* the next batch to be returned in this epoch */
/* moves to (epoch, batch index) for exact resume; in-flight batches are dropped */
vr_status vr_loader_set_position(vr_loader *l, int64_t epoch, int64_t batch_index);
/* the next batch, or *out = NULL at the end of the epoch (the loader then moves to (epoch + 1, 0)) */
vr_status vr_loader_next(vr_loader *l, vr_batch **out);
void vr_batch_free(vr_batch *b);
int vr_batch_num_views(const vr_batch *b);
int64_t vr_batch_size(const vr_batch *b);
int64_t vr_batch_epoch(const vr_batch *b);
int64_t vr_batch_index(const vr_batch *b);
vr_status vr_batch_view(const vr_batch *b, int view, vr_tensor **out);  /* f32 B x C x H x W */
/* f32 n x B x C x H x W for views first..first+n-1 (they must share a size) */
vr_status vr_batch_views(const vr_batch *b, int first, int n, vr_tensor **out);
vr_status vr_batch_labels(const vr_batch *b, vr_tensor **out);  /* i64 B (-1 when unlabeled) */
vr_status vr_batch_indices(const vr_batch *b, vr_tensor **out); /* i64 B: dataset indices */
/* raw mode (before the first vr_loader_next; 0 by default): batches hold the un-augmented images
 * instead of views (vr_batch_num_views is 0 and no view is made; the shuffling is the same), for
 * views made elsewhere, e.g. on the GPU with vr_pipeline_apply_ids */
vr_status vr_loader_set_raw(vr_loader *l, int raw);
int vr_loader_raw(const vr_loader *l);
/* data-parallel: batch g of every epoch is the same global batch of B samples as one process's,
 * and this loader gives rank's part of it (samples rank*B/size .. (rank+1)*B/size - 1). B must split
 * evenly and drop_last be on. Set before the first vr_loader_next. */
vr_status vr_loader_set_shard(vr_loader *l, int rank, int size);
vr_status vr_batch_images(const vr_batch *b, vr_tensor **out); /* raw batches: u8 B x C x H x W */

/* checkpoints: safetensors files (F32, F64, I64, I32, U8, BF16), written atomically (tmp + fsync +
 * rename). Tensors are copied to host memory when added. */
vr_status vr_ckpt_writer_new(vr_ckpt_writer **out);
void vr_ckpt_writer_free(vr_ckpt_writer *w);
vr_status vr_ckpt_writer_add(vr_ckpt_writer *w, const char *name, const vr_tensor *t);
vr_status vr_ckpt_writer_add_meta(vr_ckpt_writer *w, const char *key, const char *value);
vr_status vr_ckpt_writer_save(vr_ckpt_writer *w, const char *path);
/* opens and validates the whole file (header, dtypes, shapes, offsets, size) */
vr_status vr_ckpt_open(const char *path, vr_ckpt_reader **out);
void vr_ckpt_close(vr_ckpt_reader *r);
int vr_ckpt_count(const vr_ckpt_reader *r);
const char *vr_ckpt_name(const vr_ckpt_reader *r, int i);  /* in file order; NULL out of range */
int vr_ckpt_has(const vr_ckpt_reader *r, const char *name);
vr_status vr_ckpt_load(vr_ckpt_reader *r, const char *name, vr_tensor **out); /* CPU tensor */
int vr_ckpt_meta_count(const vr_ckpt_reader *r);
const char *vr_ckpt_meta_key(const vr_ckpt_reader *r, int i);
const char *vr_ckpt_meta(const vr_ckpt_reader *r, const char *key); /* NULL when absent */

/* probes on frozen features: train_x N x D and test_x M x D (f32 or f64, any device), labels i64/i32.
 * num_classes 0: 1 + the largest label. Both stop with VR_E_INTERRUPTED at an interrupt request. */
/* multinomial logistic regression on standardised features, full-batch L-BFGS with L2 penalty l2 on the
 * weights (mean loss + l2/2 |W|^2), up to max_iter iterations (0: 300; it stops earlier at max |grad| < 1e-4
 * or a stalled loss); accuracy on test in [0, 1].
 * l2 = 1e-3 gives about 84.7% on raw Fashion-MNIST pixels */
vr_status vr_linear_probe(const vr_tensor *train_x, const vr_tensor *train_y, const vr_tensor *test_x,
                          const vr_tensor *test_y, int num_classes, double l2, int max_iter, double *accuracy);
/* the same probe, also giving each test row's predicted class (pred: i64 M on the CPU; either output
 * may be NULL) */
vr_status vr_linear_probe_classify(const vr_tensor *train_x, const vr_tensor *train_y, const vr_tensor *test_x,
                                   const vr_tensor *test_y, int num_classes, double l2, int max_iter, vr_tensor **pred,
                                   double *accuracy);
/* weighted kNN (DINO / solo-learn): cosine similarity, the k nearest vote with exp(sim / temperature) */
vr_status vr_knn_probe(const vr_tensor *train_x, const vr_tensor *train_y, const vr_tensor *test_x,
                       const vr_tensor *test_y, int num_classes, int k, double temperature, double *accuracy);
/* the same kNN, also giving each test row's predicted class (pred: i64 M on the CPU; either output
 * may be NULL) */
vr_status vr_knn_classify(const vr_tensor *train_x, const vr_tensor *train_y, const vr_tensor *test_x,
                          const vr_tensor *test_y, int num_classes, int k, double temperature, vr_tensor **pred,
                          double *accuracy);

/* ---- YAML documents (core/yaml.c, on libyaml): configuration files such as sweep grids ----
 * A parsed document is a tree of nodes numbered 0..count-1 in file order. An alias is the id of
 * the anchored node itself (a node may thus be the child of several containers; recursive aliases
 * are refused). Every error is VR_E_FORMAT (VR_E_IO: a file that cannot be read) with a message
 * "NAME:LINE:COLUMN: what is wrong": libyaml's syntax errors, a tab used for indentation, a
 * duplicate key (keys are compared by text), a key that is not a scalar, a second document, an
 * unknown alias, a tag other than !!str, !!seq and !!map, nesting deeper than 64 levels, more than
 * 1,000,000 nodes and aliases. Accessors given a bad node return 0, -1 or NULL. */
typedef struct vr_yaml vr_yaml; /* opaque: a parsed YAML document */
enum vr_yaml_kind { VR_YAML_SCALAR = 1, VR_YAML_SEQ = 2, VR_YAML_MAP = 3 };
/* name (NULL: "<string>") stands for the text in messages, usually the file's path */
vr_status vr_yaml_parse(const char *text, size_t len, const char *name, vr_yaml **out);
vr_status vr_yaml_load(const char *path, vr_yaml **out); /* reads the whole file, then parses it */
void vr_yaml_free(vr_yaml *y);
int vr_yaml_count(const vr_yaml *y);                 /* nodes in the document */
int vr_yaml_root(const vr_yaml *y);                  /* -1 for an empty document */
int vr_yaml_kind(const vr_yaml *y, int node);        /* a vr_yaml_kind, 0 for a bad node */
const char *vr_yaml_text(const vr_yaml *y, int node); /* a scalar's text (NUL-terminated); NULL otherwise */
size_t vr_yaml_length(const vr_yaml *y, int node);   /* its length in bytes (the text may hold NULs) */
int vr_yaml_plain(const vr_yaml *y, int node);       /* 1: an unquoted scalar without tag (resolve it) */
int vr_yaml_size(const vr_yaml *y, int node);        /* items of a sequence, pairs of a map */
int vr_yaml_item(const vr_yaml *y, int node, int i); /* item i of a sequence, value of pair i of a map */
int vr_yaml_key(const vr_yaml *y, int node, int i);  /* key of pair i of a map (file order) */
int vr_yaml_line(const vr_yaml *y, int node);        /* 1-based line and column where the node starts */
int vr_yaml_column(const vr_yaml *y, int node);

/* ---- CUDA memory (the caching allocator of kernels/cuda/alloc.cu; all 0 without CUDA) ----
 * Bytes are counted in the allocator's size classes (512 B below 1 MiB, 2 MiB above).
 * allocated: held by live tensors; reserved: allocated plus the cache; peak: the most allocated
 * since start or the last reset; malloc count: cudaMalloc calls made. VISREG_CUDA_CACHE=0 in the
 * environment turns caching off. */
int64_t vr_cuda_memory_allocated(void);
int64_t vr_cuda_memory_reserved(void);
int64_t vr_cuda_memory_peak(void);
int64_t vr_cuda_malloc_count(void);
int64_t vr_cuda_cache_hits(void);
int vr_cuda_caching_enabled(void);
void vr_cuda_reset_peak(void);
vr_status vr_cuda_empty_cache(void);   /* frees every cached block (after the stream's pending work) */
vr_status vr_cuda_synchronize(void);   /* waits for the stream's pending work; reports async faults */
/* 1: each convolution geometry runs the fastest deterministic cuDNN algorithm measured on its first
 * call (torch.backends.cudnn.benchmark); 0: cuDNN's heuristic choice. Default: VISREG_CUDA_CONV_FIND=1 or 0 */
void vr_cuda_set_conv_benchmark(int on);

/* ---- kernel variants (core/variants.c), for tests and benchmarks ----
 * Paths that give the same results up to rounding, chosen by NAME and VALUE (the first value is
 * the default): conv = cudnn | legacy | im2col (CUDA convolutions: cached cuDNN plans, cuDNN's
 * legacy calls, im2col + cuBLAS), 3xtf32 = auto | off | on (VISReg's CUDA projections),
 * colsums = one | two (CUDA column sums in one launch or two), sort = register | shared (the CUDA
 * rank sort), bn_act = fused | unfused (nn's batch norm + ReLU, read when nn is loaded),
 * cpu_tiles = channels | positions (the CPU direct convolution's micro-kernels), cpu_winograd =
 * on | off (the CPU's 3 x 3 stride-1 convolutions of 32 channels and more by Winograd F(4x4, 3x3)).
 * VR_E_ARG names an unknown name or value. set_variants takes "NAME=VALUE[,NAME=VALUE...]";
 * vr_variant gives the current value (NULL for an unknown name). */
vr_status vr_set_variant(const char *name, const char *value);
vr_status vr_set_variants(const char *list);
const char *vr_variant(const char *name);

/* ---- child processes (core/proc.c): the sweep driver runs each trial as a `visreg train` ----
 * spawn starts argv[0] (searched in PATH) with argv (NULL-terminated) in a process group of its
 * own, so that a terminal's Ctrl-C reaches only the driver, which forwards it; env (NULL or
 * NULL-terminated "NAME=value" strings) is added to the driver's environment; stdout and stderr
 * are appended to log_path (NULL: inherited). wait reports *done = 1 and *status (the exit code,
 * or 128 + the signal number) once the child has ended; block = 0 returns at once. signal sends
 * sig to the child's process group. */
vr_status vr_proc_spawn(const char *const *argv, const char *const *env, const char *log_path, int64_t *pid);
vr_status vr_proc_wait(int64_t pid, int block, int *done, int *status);
vr_status vr_proc_signal(int64_t pid, int sig);
int vr_proc_alive(int64_t pid); /* 1 while a process of that id exists (any process, not only a child) */
void vr_sleep(double seconds);
int vr_cpu_count(void); /* processors this process may run on */

/* ---- the op profiler (core/profile.c): VISREG_PROFILE=1 in the environment turns it on ----
 * (VISREG_PROFILE=phases: the CUDA regularizers' phase times instead; 1,phases: both) ----
 * Counts each kernel call's device and host time per (op, variant, direction, dtypes, device);
 * report prints the table (stderr) sorted by device time, beside the wall time since reset. */
void vr_profile_enable(int on);
int vr_profile_enabled(void);
void vr_profile_reset(void);
void vr_profile_report(void);
/* calls counted since the reset for one row name ("conv2d", "binary.add"), and their device ms */
int64_t vr_profile_calls(const char *name, int backward, double *device_ms);

/* ---- image folders (core/data/image_*.c): JPEG and PNG files decoded once into a packed cache ----
 * An image set is the list of files a dataset is made of, with labels and class names. */
typedef struct vr_image_set vr_image_set; /* opaque */
/* root/CLASS/...: class folders sorted bytewise give labels 0..K-1, files found recursively (names
 * starting with '.' ignored); an empty class folder is refused. classes_from (NULL or another set):
 * its class names give the labels (a val/ split), and a class folder it lacks is refused. */
vr_status vr_image_set_folder(const char *root, const vr_image_set *classes_from, vr_image_set **out);
/* a list file of "relative/path label" lines (blank and '#' lines skipped) under root; a malformed or
 * out-of-range label, a path leaving root (absolute, '..') or a missing file is refused with
 * list_path:line. num_classes 0: the largest label + 1; class names are "0", "1", ... */
vr_status vr_image_set_list(const char *root, const char *list_path, int num_classes, vr_image_set **out);
vr_status vr_image_set_rename_classes(vr_image_set *s, int n, const char *const *names);
void vr_image_set_free(vr_image_set *s);
int64_t vr_image_set_count(const vr_image_set *s);
int vr_image_set_num_classes(const vr_image_set *s);
const char *vr_image_set_root(const vr_image_set *s);
const char *vr_image_set_class_name(const vr_image_set *s, int cls);
const char *vr_image_set_path(const vr_image_set *s, int64_t index); /* relative to the root */
int64_t vr_image_set_label(const vr_image_set *s, int64_t index);
/* 16 hex digits and a NUL into hex17: the hash of the cache format, size, class names and every
 * file's path, label, byte size and mtime: what names and validates a packed cache */
vr_status vr_image_set_hash(const vr_image_set *s, int size, char *hex17);
/* one file decoded as the packer does: u8 3 x size x size (short side resized with area averaging,
 * centre crop); size 0: the whole image (3 x H x W) with its EXIF orientation applied */
vr_status vr_image_load(const char *path, int size, vr_tensor **out);
/* decodes every file of s once (threads 0: every core) into cache_dir: shards, skipped.txt and
 * index.txt (see core/data/image_pack.c). Resumes an interrupted pack; repacks a cache of another
 * hash. A bad file is skipped (a line on stderr when verbose) unless strict, which stops at it.
 * per_shard 0: chosen from the count. verbose: progress, ETA and a summary on stderr. */
vr_status vr_image_pack(const vr_image_set *s, int size, const char *cache_dir, int threads, int strict, int per_shard,
                        int verbose);
/* 1 when cache_dir holds a finished cache of s at size */
int vr_image_cache_valid(const vr_image_set *s, int size, const char *cache_dir);
/* the decoded images of a cache as a dataset (skipped files left out). expect_hash: NULL or the set's
 * hash (else VR_E_FORMAT). channels 3, 1 (luma) or 0 (1 when every file was grey, else 3). strict 1
 * refuses a cache that skipped files. */
vr_status vr_image_cache_load(const char *cache_dir, const char *expect_hash, int channels, int strict, vr_dataset **out);
/* decodes (and resizes) the first limit files (0: all) on threads threads without storing them */
vr_status vr_image_decode_bench(const vr_image_set *s, int size, int threads, int64_t limit, double *seconds,
                                int64_t *decoded, int64_t *failed);
/* images per class into counts[0..n) (n >= the class count) */
vr_status vr_dataset_class_counts(const vr_dataset *d, int n, int64_t *counts);
/* a stratified split: in each class, image j (in order) is held out when
 * floor((j+1) f + 1/2) > floor(j f + 1/2) (with f = 0.1: images 4, 14, 24, ... of each class);
 * held_out 1 gives those images, 0 the others */
vr_status vr_dataset_holdout(const vr_dataset *d, double fraction, int held_out, vr_dataset **out);


/* ---- data-parallel collectives (core/dist.c) ----
 * A process started by mpirun (Open MPI) or srun is one rank of a job; vr_dist_init joins it
 * (libmpi is opened then, at run time). Alone, it is rank 0 of 1 and every collective returns its
 * input. Tensors must be contiguous; CUDA tensors go through NCCL after vr_dist_use_nccl, else
 * through host memory. Every rank must call each collective in the same order. */
vr_status vr_dist_init(void); /* idempotent */
int vr_dist_rank(void);
int vr_dist_size(void);
int vr_dist_local_rank(void);            /* the rank among those on this machine */
const char *vr_dist_launcher(void);      /* "mpirun", "srun" or NULL (one process) */
const char *vr_dist_backend(void);       /* "none", "mpi" or "mpi+nccl" */
vr_status vr_dist_use_nccl(void);        /* NCCL for CUDA tensors (one GPU per local rank) */
/* in place: each tensor becomes the sum of its copies on every rank (f32 or f64, one dtype and
 * device); the tensors are packed into buckets of 32 MiB */
vr_status vr_dist_all_reduce_sum(vr_tensor *const *ts, int n);
/* the ranks' tensors (same shape) concatenated along dim 0, rank 0's first */
vr_status vr_dist_all_gather(const vr_tensor *t, vr_tensor **out);
/* differentiable: the sum over the ranks of x (a new tensor); its gradient is the sum over the
 * ranks of the gradients that reach the result (synchronized batch norm's statistics) */
vr_status vr_dist_all_reduce_sum_ad(const vr_tensor *x, vr_tensor **out);
vr_status vr_dist_broadcast(vr_tensor *t, int root); /* in place: root's values on every rank */
vr_status vr_dist_all_reduce_max(int64_t *values, int n); /* in place, host integers (flags) */
vr_status vr_dist_barrier(void);
/* a collective that waits longer than this for the other ranks ends the process with a message
 * (the launcher then ends the others): a hung rank stops the job; 0: no limit; default 600 s */
void vr_dist_set_timeout(double seconds);
double vr_dist_timeout(void);
void vr_dist_abort(int code);            /* ends every rank of the job (nothing alone) */
vr_status vr_dist_finalize(void);        /* leaves the job (after the last collective) */

#endif
