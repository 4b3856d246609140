/* conv_cudnn.cu: conv2d through cuDNN for conv.cu: first a cached execution plan of the graph API
 * (conv_plan.cu), else the legacy calls cudnnConvolutionForward / BackwardData / BackwardFilter,
 * one handle per device bound to the backend's stream, algorithms from cuDNN's heuristics
 * restricted to deterministic ones (cached per geometry; benchmark mode: the fastest that cuDNN
 * measures instead), workspace from the caching allocator. VR_E_UNSUPPORTED (no message kept)
 * where cuDNN has no deterministic algorithm: the caller falls back to im2col. */
#include "conv.cuh"
#ifdef VR_HAVE_CUDNN
#include <array>
#include <map>
#include <mutex>
#include <stdio.h>
#include <stdlib.h>

namespace {
typedef vr_conv_geo geo;


bool tf32_allowed(void) {
  const char *e = getenv("VISREG_CUDA_TF32");
  return e && e[0] == '1';
}
/* benchmark mode (vr_cuda_set_conv_benchmark, or VISREG_CUDA_CONV_FIND=1): each geometry's
 * algorithm is the fastest deterministic one that cuDNN measures on the first call (like
 * torch.backends.cudnn.benchmark), not the heuristics' first */
bool find_mode(void) {
  if (vr_cu_conv_benchmark >= 0) return vr_cu_conv_benchmark == 1;
  const char *e = getenv("VISREG_CUDA_CONV_FIND");
  return e && e[0] == '1';
}

#define VR_DNN(call)                                                                                     \
  do {                                                                                                   \
    cudnnStatus_t vr_dnn_s_ = (call);                                                                    \
    if (vr_dnn_s_ != CUDNN_STATUS_SUCCESS)                                                               \
      return vr_error_set(VR_E_CUDA, __func__, __FILE__, __LINE__, "%s: %s", #call,                      \
                          cudnnGetErrorString(vr_dnn_s_));                                               \
  } while (0)

/* statuses that mean "cuDNN cannot do this call here" (fall back), not a fault: NOT_SUPPORTED and
 * BAD_PARAM with their cuDNN 9 sub-codes, and a cnn sub-library that does not load */
bool dnn_soft(cudnnStatus_t s) {
  int c = CUDNN_STATUS_CATEGORY((int)s);
  return c == CUDNN_STATUS_NOT_SUPPORTED || c == CUDNN_STATUS_BAD_PARAM || s == CUDNN_STATUS_SUBLIBRARY_LOADING_FAILED ||
         s == CUDNN_STATUS_SUBLIBRARY_VERSION_MISMATCH;
}
bool dnn_verbose(void) { return getenv("VISREG_CUDA_CONV_VERBOSE") != nullptr; }

/* VR_OK on success; VR_E_UNSUPPORTED for a soft status (the caller falls back; said when verbose);
 * else the error, recorded against func */
vr_status dnn_status(cudnnStatus_t s, const char *call, const char *func, int line) {
  if (s == CUDNN_STATUS_SUCCESS) return VR_OK;
  if (!dnn_soft(s)) return vr_error_set(VR_E_CUDA, func, __FILE__, line, "%s: %s", call, cudnnGetErrorString(s));
  if (dnn_verbose()) fprintf(stderr, "visreg conv2d: %s: %s, falling back\n", call, cudnnGetErrorString(s));
  return VR_E_UNSUPPORTED;
}
/* VR_DNN, but a soft status is VR_E_UNSUPPORTED */
#define VR_DNN_SOFT(call)                                                     \
  do {                                                                        \
    vr_status vr_dnn_st_ = dnn_status((call), #call, __func__, __LINE__);     \
    if (vr_dnn_st_ != VR_OK) return vr_dnn_st_;                               \
  } while (0)

std::mutex dnn_mu;
cudnnHandle_t dnn_handle[16];
bool dnn_handle_made; /* the exit hook is registered */
bool dnn_broken[16]; /* cudnnCreate failed (e.g. a cuDNN runtime that does not match): im2col from then on */

/* at exit, so that a leak check sees cuDNN's buffers returned */
void destroy_handles_at_exit(void) {
  std::lock_guard<std::mutex> lock(dnn_mu);
  for (int d = 0; d < 16; d++)
    if (dnn_handle[d]) {
      cudnnDestroy(dnn_handle[d]);
      dnn_handle[d] = nullptr;
    }
}

/* VR_OK with a handle bound to the backend's stream; VR_E_UNSUPPORTED (no message) when cuDNN
 * cannot be used on this device, so that the caller falls back to im2col */
vr_status dnn_get(cudnnHandle_t *out) {
  int dev = 0;
  VR_CU(cudaGetDevice(&dev));
  if (dev < 0 || dev >= 16) return VR_E_UNSUPPORTED;
  std::lock_guard<std::mutex> lock(dnn_mu);
  if (dnn_broken[dev]) return VR_E_UNSUPPORTED;
  if (!dnn_handle[dev]) {
    cudnnHandle_t h = nullptr;
    if (cudnnCreate(&h) != CUDNN_STATUS_SUCCESS) {
      dnn_broken[dev] = true;
      cudaGetLastError();
      return VR_E_UNSUPPORTED;
    }
    cudnnStatus_t st = cudnnSetStream(h, vr_cuda_stream());
    if (st != CUDNN_STATUS_SUCCESS) {
      cudnnDestroy(h);
      return VR_FAIL(VR_E_CUDA, "cudnnSetStream: %s", cudnnGetErrorString(st));
    }
    if (!dnn_handle_made) atexit(destroy_handles_at_exit);
    dnn_handle_made = true;
    dnn_handle[dev] = h;
  }
  *out = dnn_handle[dev];
  return VR_OK;
}

/* descriptors that destroy themselves */
struct dnn_desc {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  ~dnn_desc() {
    if (x) cudnnDestroyTensorDescriptor(x);
    if (y) cudnnDestroyTensorDescriptor(y);
    if (w) cudnnDestroyFilterDescriptor(w);
    if (conv) cudnnDestroyConvolutionDescriptor(conv);
  }
};

cudnnDataType_t dnn_type(vr_dtype dt) {
  return dt == VR_F64 ? CUDNN_DATA_DOUBLE : dt == VR_BF16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT;
}
cudnnMathType_t dnn_math(vr_dtype dt) {
  if (dt == VR_F32) return tf32_allowed() ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH;
  if (dt == VR_BF16) return CUDNN_TENSOR_OP_MATH; /* bf16 is for the tensor cores */
  return CUDNN_DEFAULT_MATH;
}

vr_status dnn_setup(dnn_desc &d, const geo &g, vr_dtype dt) {
  const int64_t big = INT32_MAX;
  if (g.N > big || g.C > big || g.H > big || g.W > big || g.Co > big || g.N * g.C * g.H * g.W > big ||
      g.N * g.Co * g.P > big)
    return VR_FAIL(VR_E_UNSUPPORTED, "x: tensors of 2^31 elements or more are not supported by the cuDNN path");
  cudnnDataType_t t = dnn_type(dt);
  VR_DNN_SOFT(cudnnCreateTensorDescriptor(&d.x));
  VR_DNN_SOFT(cudnnCreateTensorDescriptor(&d.y));
  VR_DNN_SOFT(cudnnCreateFilterDescriptor(&d.w));
  VR_DNN_SOFT(cudnnCreateConvolutionDescriptor(&d.conv));
  cudnnTensorFormat_t f = g.nhwc ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW; /* NHWC filters: [Co, kh, kw, Cg] */
  VR_DNN_SOFT(cudnnSetTensor4dDescriptor(d.x, f, t, (int)g.N, (int)g.C, (int)g.H, (int)g.W));
  VR_DNN_SOFT(cudnnSetTensor4dDescriptor(d.y, f, t, (int)g.N, (int)g.Co, (int)g.Ho, (int)g.Wo));
  VR_DNN_SOFT(cudnnSetFilter4dDescriptor(d.w, t, f, (int)g.Co, (int)g.Cg, (int)g.kh, (int)g.kw));
  VR_DNN_SOFT(cudnnSetConvolution2dDescriptor(d.conv, (int)g.ph, (int)g.pw, (int)g.sh, (int)g.sw, (int)g.dh, (int)g.dw,
                                         CUDNN_CROSS_CORRELATION,
                                         dt == VR_F64 ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT));
  VR_DNN_SOFT(cudnnSetConvolutionGroupCount(d.conv, (int)g.G));
  VR_DNN_SOFT(cudnnSetConvolutionMathType(d.conv, dnn_math(dt)));
  return VR_OK;
}

/* the chosen algorithm of each (geometry, dtype, direction, math, device); -1: none usable; -2:
 * choose again on the next call, without the algorithms in bad (bit per algorithm) that cuDNN
 * refused to run */
struct algo_pick {
  int algo;
  cudnnMathType_t math;
  size_t ws;
  unsigned bad;
};
std::mutex algo_mu;
std::map<std::array<int64_t, 20>, algo_pick> algo_cache;

std::array<int64_t, 20> algo_key(const geo &g, vr_dtype dt, int dir) {
  int dev = 0;
  cudaGetDevice(&dev); /* checked by dnn_get */
  return {g.N, g.C, g.H, g.W, g.Co, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw, g.G, (int64_t)dt, dir,
          (int64_t)dnn_math(dt), (int64_t)find_mode(), g.nhwc, dev};
}

const size_t kMaxWorkspace = (size_t)1 << 30;

/* accepts a heuristic's entry: it ran, is deterministic, fits, and needs no tensor-op math for f32
 * unless TF32 is allowed (strict f32 then runs it with CUDNN_FMA_MATH: DEFAULT_MATH would allow
 * TF32 on Ampere and later) */
template <typename Perf> bool acceptable(const Perf &p, vr_dtype dt) {
  if (p.status != CUDNN_STATUS_SUCCESS || p.determinism != CUDNN_DETERMINISTIC || p.memory > kMaxWorkspace) return false;
  if (p.mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION) return false; /* may round inputs down to fp16 */
  if (dt == VR_F32 && !tf32_allowed() && p.mathType != CUDNN_FMA_MATH && p.mathType != CUDNN_DEFAULT_MATH) return false;
  return true;
}

cudnnMathType_t exec_math(cudnnMathType_t m, vr_dtype dt) {
  return (dt == VR_F32 && !tf32_allowed()) ? CUDNN_FMA_MATH : m;
}

/* the acceptable entries in the order to try them: from the heuristics (measured = false), for
 * bf16 the tensor-op entries first; for strict f32 the entries that cuDNN reported (and timed) with
 * FMA math first, since every f32 entry runs with FMA math here; else cuDNN's order (fastest first
 * when measured). Returns how many. */
template <typename Perf> int candidates(const Perf *p, int got, vr_dtype dt, bool measured, algo_pick *out) {
  bool strict = dt == VR_F32 && !tf32_allowed();
  int n = 0;
  for (int pass = 0; pass < 2; pass++)
    for (int k = 0; k < got; k++) {
      if (!acceptable(p[k], dt)) continue;
      bool first = dt == VR_BF16 && !measured ? p[k].mathType == CUDNN_TENSOR_OP_MATH
                   : strict                   ? p[k].mathType == CUDNN_FMA_MATH
                                              : true;
      if (first == (pass == 0)) out[n++] = {(int)p[k].algo, exec_math(p[k].mathType, dt), p[k].memory, 0};
    }
  return n;
}

/* the workspace of algo with the math type that d.conv has now (the one it will run with) */
cudnnStatus_t dnn_ws_size(cudnnHandle_t h, const dnn_desc &d, int dir, int algo, size_t *ws) {
  if (dir == 0) return cudnnGetConvolutionForwardWorkspaceSize(h, d.x, d.w, d.conv, d.y, (cudnnConvolutionFwdAlgo_t)algo, ws);
  if (dir == 1)
    return cudnnGetConvolutionBackwardDataWorkspaceSize(h, d.w, d.y, d.conv, d.x, (cudnnConvolutionBwdDataAlgo_t)algo, ws);
  return cudnnGetConvolutionBackwardFilterWorkspaceSize(h, d.x, d.y, d.conv, d.w, (cudnnConvolutionBwdFilterAlgo_t)algo, ws);
}

/* a choice that cuDNN then refuses to run: choose again on the next call, without it */
void forget_algo(const geo &g, vr_dtype dt, int dir, int algo) {
  if (dnn_verbose()) fprintf(stderr, "visreg conv2d dir %d %s: algo %d refused\n", dir, vr_dtype_name(dt), algo);
  std::lock_guard<std::mutex> lock(algo_mu);
  algo_pick &e = algo_cache[algo_key(g, dt, dir)];
  if (algo >= 0 && algo < 32) e.bad |= 1u << algo;
  e.algo = -2;
}

/* the status of a convolution call: a soft status (NOT_SUPPORTED, or a bad param for this
 * algorithm) means "fall back" for this call, and the next call chooses again without this
 * algorithm; other failures are errors */
#define VR_DNN_RUN(call, dir, algo)                                           \
  do {                                                                        \
    vr_status vr_dnn_st_ = dnn_status((call), #call, __func__, __LINE__);     \
    if (vr_dnn_st_ == VR_E_UNSUPPORTED) forget_algo(g, dt, dir, algo);        \
    if (vr_dnn_st_ != VR_OK) return vr_dnn_st_;                               \
  } while (0)

/* dir 0 forward, 1 backward data, 2 backward filter; a: the call's tensors, which find mode runs
 * the candidates on (each writes only the output that the call then overwrites) */
vr_status pick_algo(cudnnHandle_t h, const dnn_desc &d, const geo &g, vr_dtype dt, int dir, const vr_kernel_args *a,
                    algo_pick *out) {
  auto key = algo_key(g, dt, dir);
  unsigned bad = 0;
  {
    std::lock_guard<std::mutex> lock(algo_mu);
    auto it = algo_cache.find(key);
    if (it != algo_cache.end() && it->second.algo != -2) {
      *out = it->second;
      return VR_OK;
    }
    if (it != algo_cache.end()) bad = it->second.bad;
  }
  const int kMax = 16; /* Find may list an algorithm once per math type: 2 x 8 */
  int got = 0, nc = 0;
  algo_pick cand[kMax];
  cudnnStatus_t qs;
  const char *qname;
  if (find_mode()) {
    const size_t find_ws = (size_t)256 << 20;
    vr_cu_buf ws;
    VR_TRY(ws.get(find_ws));
    if (dir == 0) {
      cudnnConvolutionFwdAlgoPerf_t p[kMax];
      qname = "cudnnFindConvolutionForwardAlgorithmEx";
      qs = cudnnFindConvolutionForwardAlgorithmEx(h, d.x, vr_data(a->in[0]), d.w, vr_data(a->in[1]), d.conv, d.y,
                                                  vr_data(a->out[0]), kMax, &got, p, ws.p, find_ws);
      if (qs == CUDNN_STATUS_SUCCESS) nc = candidates(p, got, dt, true, cand);
    } else if (dir == 1) {
      cudnnConvolutionBwdDataAlgoPerf_t p[kMax];
      qname = "cudnnFindConvolutionBackwardDataAlgorithmEx";
      qs = cudnnFindConvolutionBackwardDataAlgorithmEx(h, d.w, vr_data(a->in[2]), d.y, vr_data(a->in[0]), d.conv, d.x,
                                                       vr_data(a->out[0]), kMax, &got, p, ws.p, find_ws);
      if (qs == CUDNN_STATUS_SUCCESS) nc = candidates(p, got, dt, true, cand);
    } else {
      cudnnConvolutionBwdFilterAlgoPerf_t p[kMax];
      qname = "cudnnFindConvolutionBackwardFilterAlgorithmEx";
      qs = cudnnFindConvolutionBackwardFilterAlgorithmEx(h, d.x, vr_data(a->in[1]), d.y, vr_data(a->in[0]), d.conv, d.w,
                                                         vr_data(a->out[1]), kMax, &got, p, ws.p, find_ws);
      if (qs == CUDNN_STATUS_SUCCESS) nc = candidates(p, got, dt, true, cand);
    }
  } else if (dir == 0) {
    cudnnConvolutionFwdAlgoPerf_t p[kMax];
    qname = "cudnnGetConvolutionForwardAlgorithm_v7";
    qs = cudnnGetConvolutionForwardAlgorithm_v7(h, d.x, d.w, d.conv, d.y, kMax, &got, p);
    if (qs == CUDNN_STATUS_SUCCESS) nc = candidates(p, got, dt, false, cand);
  } else if (dir == 1) {
    cudnnConvolutionBwdDataAlgoPerf_t p[kMax];
    qname = "cudnnGetConvolutionBackwardDataAlgorithm_v7";
    qs = cudnnGetConvolutionBackwardDataAlgorithm_v7(h, d.w, d.y, d.conv, d.x, kMax, &got, p);
    if (qs == CUDNN_STATUS_SUCCESS) nc = candidates(p, got, dt, false, cand);
  } else {
    cudnnConvolutionBwdFilterAlgoPerf_t p[kMax];
    qname = "cudnnGetConvolutionBackwardFilterAlgorithm_v7";
    qs = cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, d.x, d.y, d.conv, d.w, kMax, &got, p);
    if (qs == CUDNN_STATUS_SUCCESS) nc = candidates(p, got, dt, false, cand);
  }
  vr_status qst = dnn_status(qs, qname, __func__, __LINE__); /* soft: no algorithm (cached as such) */
  if (qst != VR_OK && qst != VR_E_UNSUPPORTED) return qst;
  /* the first candidate not refused before whose workspace, asked again with the math type that it
   * runs with, cuDNN gives and that fits */
  algo_pick pick = {-1, dnn_math(dt), 0, bad};
  for (int k = 0; k < nc && pick.algo < 0; k++) {
    size_t ws = 0;
    if (cand[k].algo < 32 && (bad >> cand[k].algo & 1u)) continue;
    if (cudnnSetConvolutionMathType(d.conv, cand[k].math) != CUDNN_STATUS_SUCCESS ||
        dnn_ws_size(h, d, dir, cand[k].algo, &ws) != CUDNN_STATUS_SUCCESS || ws > kMaxWorkspace)
      continue;
    pick = cand[k];
    pick.ws = ws > cand[k].ws ? ws : cand[k].ws;
    pick.bad = bad;
  }
  if (dnn_verbose()) /* which algorithm and math each geometry got (tensor ops: math 1) */
    fprintf(stderr, "visreg conv2d %s %s N%lld C%lld %lldx%lld Co%lld k%lldx%lld s%lld g%lld: algo %d math %d ws %zu%s\n",
            dir == 0 ? "fwd" : dir == 1 ? "bwd-data" : "bwd-filter", vr_dtype_name(dt), (long long)g.N, (long long)g.C,
            (long long)g.H, (long long)g.W, (long long)g.Co, (long long)g.kh, (long long)g.kw, (long long)g.sh,
            (long long)g.G, pick.algo, (int)pick.math, pick.ws, pick.algo < 0 ? " (no deterministic algorithm)" : "");
  std::lock_guard<std::mutex> lock(algo_mu);
  algo_cache[key] = pick;
  *out = pick;
  return VR_OK;
}

/* alpha/beta are double for double data, float otherwise */
struct scal {
  double d1 = 1, d0 = 0;
  float f1 = 1, f0 = 0;
  const void *one(vr_dtype dt) const { return dt == VR_F64 ? (const void *)&d1 : (const void *)&f1; }
  const void *zero(vr_dtype dt) const { return dt == VR_F64 ? (const void *)&d0 : (const void *)&f0; }
};

/* VR_OK: done; VR_E_UNSUPPORTED (no message kept): cuDNN has no deterministic algorithm, use im2col */
} // namespace

vr_status vr_cudnn_conv_fwd(const vr_kernel_args *a, const vr_conv_geo &g) {
  vr_dtype dt = a->in[0]->dtype;
  cudnnHandle_t h = nullptr;
  VR_TRY(dnn_get(&h));
  vr_status ps = vr_cudnn_plan_run(h, g, dt, VR_CONV_FWD, vr_data(a->in[0]), vr_data(a->in[1]), vr_data(a->out[0]),
                                   find_mode(), tf32_allowed());
  if (ps != VR_E_UNSUPPORTED) return ps;
  dnn_desc d;
  VR_TRY(dnn_setup(d, g, dt));
  algo_pick p;
  VR_TRY(pick_algo(h, d, g, dt, 0, a, &p));
  if (p.algo < 0) return VR_E_UNSUPPORTED;
  VR_DNN(cudnnSetConvolutionMathType(d.conv, p.math));
  vr_cu_buf ws;
  if (p.ws) VR_TRY(ws.get(p.ws));
  scal s;
  VR_DNN_RUN(cudnnConvolutionForward(h, s.one(dt), d.x, vr_data(a->in[0]), d.w, vr_data(a->in[1]), d.conv,
                                 (cudnnConvolutionFwdAlgo_t)p.algo, ws.p, p.ws, s.zero(dt), d.y, vr_data(a->out[0])),
             0, p.algo);
  return VR_OK;
}

vr_status vr_cudnn_conv_bwd(const vr_kernel_args *a, const vr_conv_geo &g) {
  vr_dtype dt = a->in[1]->dtype;
  cudnnHandle_t h = nullptr;
  VR_TRY(dnn_get(&h));
  vr_kernel_args rest = *a; /* what the cached plans cannot do goes to the legacy calls */
  if (a->out[0]) {
    vr_status ps = vr_cudnn_plan_run(h, g, dt, VR_CONV_BWD_DATA, vr_data(a->out[0]), vr_data(a->in[2]),
                                     vr_data(a->in[0]), find_mode(), tf32_allowed());
    if (ps == VR_OK) rest.out[0] = nullptr;
    else if (ps != VR_E_UNSUPPORTED) return ps;
  }
  if (a->out[1]) {
    vr_status ps = vr_cudnn_plan_run(h, g, dt, VR_CONV_BWD_FILTER, vr_data(a->in[1]), vr_data(a->out[1]),
                                     vr_data(a->in[0]), find_mode(), tf32_allowed());
    if (ps == VR_OK) rest.out[1] = nullptr;
    else if (ps != VR_E_UNSUPPORTED) return ps;
  }
  if (!rest.out[0] && !rest.out[1]) return VR_OK;
  a = &rest;
  dnn_desc d; /* legacy descriptors only when a plan could not do it (their host time per call) */
  VR_TRY(dnn_setup(d, g, dt));
  algo_pick pd = {-1, CUDNN_DEFAULT_MATH, 0, 0}, pf = {-1, CUDNN_DEFAULT_MATH, 0, 0};
  if (a->out[0]) VR_TRY(pick_algo(h, d, g, dt, 1, a, &pd));
  if (a->out[1]) VR_TRY(pick_algo(h, d, g, dt, 2, a, &pf));
  if ((a->out[0] && pd.algo < 0) || (a->out[1] && pf.algo < 0)) return VR_E_UNSUPPORTED;
  scal s;
  if (a->out[0]) {
    VR_DNN(cudnnSetConvolutionMathType(d.conv, pd.math));
    vr_cu_buf ws;
    if (pd.ws) VR_TRY(ws.get(pd.ws));
    VR_DNN_RUN(cudnnConvolutionBackwardData(h, s.one(dt), d.w, vr_data(a->in[2]), d.y, vr_data(a->in[0]), d.conv,
                                        (cudnnConvolutionBwdDataAlgo_t)pd.algo, ws.p, pd.ws, s.zero(dt), d.x,
                                        vr_data(a->out[0])),
               1, pd.algo);
  }
  if (a->out[1]) {
    VR_DNN(cudnnSetConvolutionMathType(d.conv, pf.math));
    vr_cu_buf ws;
    if (pf.ws) VR_TRY(ws.get(pf.ws));
    VR_DNN_RUN(cudnnConvolutionBackwardFilter(h, s.one(dt), d.x, vr_data(a->in[1]), d.y, vr_data(a->in[0]), d.conv,
                                          (cudnnConvolutionBwdFilterAlgo_t)pf.algo, ws.p, pf.ws, s.zero(dt), d.w,
                                          vr_data(a->out[1])),
               2, pf.algo);
  }
  return VR_OK;
}
#endif
