/* conv_plan.cu: cuDNN convolutions through the graph (backend) API, with one execution plan per
 * geometry built on the first call and kept. cuDNN 9's legacy calls (cudnnConvolutionForward and
 * the backward pair) build a plan inside every call: 120 us of host time per forward and 240 us per
 * backward on the H200's host (VISREG_PROFILE), ~7 ms a ResNet-18 step, more than the
 * GPU needs for the convolutions themselves. A cached plan costs a variant pack and an execute.
 *
 * Engines come from cuDNN's heuristics (mode A, then its fallback list) and are kept only when
 * deterministic, free of runtime compilation, and for strict f32 free of tensor cores (TF32) and
 * down-converted inputs; bf16 refuses reduced-precision reductions (f32 accumulation). Without
 * measure the first such engine that builds is taken (as the legacy heuristics path did); with
 * measure (benchmark mode) up to 8 are timed on the call's own tensors and the fastest kept. The
 * plans assume 16-byte aligned pointers; a call with less falls back (conv.cu). Deterministic:
 * one fixed engine per geometry. Everything is destroyed at exit. */
#ifdef VR_HAVE_CUDNN
#include "conv.cuh"
#include <array>
#include <map>
#include <mutex>
#include <vector>
#include <stdio.h>
#include <stdlib.h>

namespace {

const int64_t kAlign = 16;                  /* bytes the plans may assume of every pointer */
const int64_t kMaxWorkspace = (int64_t)1 << 30;
const int kMaxMeasured = 8;
enum { UID_X = 1, UID_W = 2, UID_Y = 3 };

/* a backend descriptor that destroys itself unless released */
struct be_desc {
  cudnnBackendDescriptor_t d = nullptr;
  explicit be_desc(cudnnBackendDescriptorType_t t) {
    if (cudnnBackendCreateDescriptor(t, &d) != CUDNN_STATUS_SUCCESS) d = nullptr;
  }
  ~be_desc() {
    if (d) cudnnBackendDestroyDescriptor(d);
  }
  cudnnBackendDescriptor_t release() {
    cudnnBackendDescriptor_t r = d;
    d = nullptr;
    return r;
  }
  be_desc(const be_desc &) = delete;
  be_desc &operator=(const be_desc &) = delete;
};

struct plan_entry {
  cudnnBackendDescriptor_t plan = nullptr; /* nullptr: no usable engine, the caller falls back */
  int64_t ws = 0;
};

std::mutex mu;
std::map<std::array<int64_t, 24>, plan_entry> cache;
/* every descriptor a cached plan may refer to (tensors, graph, engine configs), kept until exit */
std::vector<cudnnBackendDescriptor_t> kept;
bool exit_hook;

void destroy_all_at_exit(void) {
  std::lock_guard<std::mutex> lock(mu);
  for (auto &e : cache)
    if (e.second.plan) cudnnBackendDestroyDescriptor(e.second.plan);
  cache.clear();
  for (auto d : kept) cudnnBackendDestroyDescriptor(d);
  kept.clear();
}

bool ok(cudnnStatus_t s) { return s == CUDNN_STATUS_SUCCESS; }

cudnnDataType_t data_type(vr_dtype dt) {
  return dt == VR_F64 ? CUDNN_DATA_DOUBLE : dt == VR_BF16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT;
}

/* a 4-d tensor [n, c, h, w] stored NCHW, or channels last (NHWC) */
cudnnBackendDescriptor_t make_tensor(int64_t uid, vr_dtype dt, int64_t n, int64_t c, int64_t h, int64_t w, bool nhwc) {
  be_desc t(CUDNN_BACKEND_TENSOR_DESCRIPTOR);
  if (!t.d) return nullptr;
  int64_t dims[4] = {n, c, h, w};
  int64_t st_nchw[4] = {c * h * w, h * w, w, 1}, st_nhwc[4] = {h * w * c, 1, w * c, c};
  cudnnDataType_t type = data_type(dt);
  int64_t align = kAlign;
  if (!ok(cudnnBackendSetAttribute(t.d, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &type)) ||
      !ok(cudnnBackendSetAttribute(t.d, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 4, dims)) ||
      !ok(cudnnBackendSetAttribute(t.d, CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 4, nhwc ? st_nhwc : st_nchw)) ||
      !ok(cudnnBackendSetAttribute(t.d, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid)) ||
      !ok(cudnnBackendSetAttribute(t.d, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &align)) ||
      !ok(cudnnBackendFinalize(t.d)))
    return nullptr;
  return t.release();
}

cudnnBackendDescriptor_t make_conv(const vr_conv_geo &g, vr_dtype dt) {
  be_desc c(CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR);
  if (!c.d) return nullptr;
  int64_t dims = 2, pad[2] = {g.ph, g.pw}, stride[2] = {g.sh, g.sw}, dil[2] = {g.dh, g.dw};
  cudnnDataType_t comp = dt == VR_F64 ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT;
  cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION;
  if (!ok(cudnnBackendSetAttribute(c.d, CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS, CUDNN_TYPE_INT64, 1, &dims)) ||
      !ok(cudnnBackendSetAttribute(c.d, CUDNN_ATTR_CONVOLUTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &comp)) ||
      !ok(cudnnBackendSetAttribute(c.d, CUDNN_ATTR_CONVOLUTION_CONV_MODE, CUDNN_TYPE_CONVOLUTION_MODE, 1, &mode)) ||
      !ok(cudnnBackendSetAttribute(c.d, CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS, CUDNN_TYPE_INT64, 2, pad)) ||
      !ok(cudnnBackendSetAttribute(c.d, CUDNN_ATTR_CONVOLUTION_POST_PADDINGS, CUDNN_TYPE_INT64, 2, pad)) ||
      !ok(cudnnBackendSetAttribute(c.d, CUDNN_ATTR_CONVOLUTION_DILATIONS, CUDNN_TYPE_INT64, 2, dil)) ||
      !ok(cudnnBackendSetAttribute(c.d, CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES, CUDNN_TYPE_INT64, 2, stride)) ||
      !ok(cudnnBackendFinalize(c.d)))
    return nullptr;
  return c.release();
}

/* the one-operation graph of direction dir over tensors x, w, y; every descriptor made goes to
 * `made` (kept with the plan) */
cudnnBackendDescriptor_t make_graph(cudnnHandle_t h, const vr_conv_geo &g, vr_dtype dt, int dir,
                                    std::vector<cudnnBackendDescriptor_t> &made) {
  cudnnBackendDescriptor_t x = make_tensor(UID_X, dt, g.N, g.C, g.H, g.W, g.nhwc);
  cudnnBackendDescriptor_t w = make_tensor(UID_W, dt, g.Co, g.Cg, g.kh, g.kw, g.nhwc);
  cudnnBackendDescriptor_t y = make_tensor(UID_Y, dt, g.N, g.Co, g.Ho, g.Wo, g.nhwc);
  cudnnBackendDescriptor_t conv = make_conv(g, dt);
  for (auto d : {x, w, y, conv})
    if (d) made.push_back(d);
  if (!x || !w || !y || !conv) return nullptr;
  static const cudnnBackendDescriptorType_t kind[3] = {CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR,
                                                       CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_DATA_DESCRIPTOR,
                                                       CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_FILTER_DESCRIPTOR};
  /* attribute names per direction: x (or dx), w (or dw), y (or dy), conv, alpha, beta */
  static const cudnnBackendAttributeName_t names[3][6] = {
      {CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W,
       CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC,
       CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA},
      {CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DX, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_W,
       CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DY, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_CONV_DESC,
       CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_ALPHA, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_BETA},
      {CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_X, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DW,
       CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DY, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_CONV_DESC,
       CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_ALPHA, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_BETA}};
  be_desc op(kind[dir]);
  if (!op.d) return nullptr;
  double d1 = 1, d0 = 0;
  float f1 = 1, f0 = 0;
  bool dbl = dt == VR_F64;
  cudnnBackendAttributeType_t st = dbl ? CUDNN_TYPE_DOUBLE : CUDNN_TYPE_FLOAT;
  const auto *n = names[dir];
  if (!ok(cudnnBackendSetAttribute(op.d, n[0], CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &x)) ||
      !ok(cudnnBackendSetAttribute(op.d, n[1], CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &w)) ||
      !ok(cudnnBackendSetAttribute(op.d, n[2], CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &y)) ||
      !ok(cudnnBackendSetAttribute(op.d, n[3], CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &conv)) ||
      !ok(cudnnBackendSetAttribute(op.d, n[4], st, 1, dbl ? (void *)&d1 : (void *)&f1)) ||
      !ok(cudnnBackendSetAttribute(op.d, n[5], st, 1, dbl ? (void *)&d0 : (void *)&f0)) || !ok(cudnnBackendFinalize(op.d)))
    return nullptr;
  made.push_back(op.d);
  cudnnBackendDescriptor_t opd = op.release();
  be_desc graph(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR);
  if (!graph.d) return nullptr;
  if (!ok(cudnnBackendSetAttribute(graph.d, CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &opd)) ||
      !ok(cudnnBackendSetAttribute(graph.d, CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &h)) ||
      !ok(cudnnBackendFinalize(graph.d)))
    return nullptr;
  made.push_back(graph.d);
  return graph.release();
}

/* the engine behind a configuration is acceptable: deterministic, no runtime compilation, and the
 * precision the dtype asks for; *index: its global index (for the verbose line) */
bool engine_acceptable(cudnnBackendDescriptor_t cfg, vr_dtype dt, bool tf32, int64_t *index) {
  be_desc eng(CUDNN_BACKEND_ENGINE_DESCRIPTOR);
  int64_t n = 0;
  if (!eng.d || !ok(cudnnBackendGetAttribute(cfg, CUDNN_ATTR_ENGINECFG_ENGINE, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &n, &eng.d)))
    return false;
  cudnnBackendNumericalNote_t notes[CUDNN_NUMERICAL_NOTE_TYPE_COUNT];
  n = 0;
  if (!ok(cudnnBackendGetAttribute(eng.d, CUDNN_ATTR_ENGINE_NUMERICAL_NOTE, CUDNN_TYPE_NUMERICAL_NOTE,
                                   CUDNN_NUMERICAL_NOTE_TYPE_COUNT, &n, notes)))
    return false;
  for (int64_t k = 0; k < n; k++) {
    if (notes[k] == CUDNN_NUMERICAL_NOTE_NONDETERMINISTIC) return false;
    if (notes[k] == CUDNN_NUMERICAL_NOTE_DOWN_CONVERT_INPUTS) return false; /* e.g. f32 -> f16: never, TF32 or not */
    if (dt == VR_F32 && !tf32 && notes[k] == CUDNN_NUMERICAL_NOTE_TENSOR_CORE) return false;
    if (dt == VR_BF16 && notes[k] == CUDNN_NUMERICAL_NOTE_REDUCED_PRECISION_REDUCTION) return false;
  }
  cudnnBackendBehaviorNote_t beh[CUDNN_BEHAVIOR_NOTE_TYPE_COUNT];
  n = 0;
  if (ok(cudnnBackendGetAttribute(eng.d, CUDNN_ATTR_ENGINE_BEHAVIOR_NOTE, CUDNN_TYPE_BEHAVIOR_NOTE,
                                  CUDNN_BEHAVIOR_NOTE_TYPE_COUNT, &n, beh)))
    for (int64_t k = 0; k < n; k++)
      if (beh[k] == CUDNN_BEHAVIOR_NOTE_RUNTIME_COMPILATION) return false;
  *index = -1;
  cudnnBackendGetAttribute(eng.d, CUDNN_ATTR_ENGINE_GLOBAL_INDEX, CUDNN_TYPE_INT64, 1, &n, index);
  return true;
}

cudnnBackendDescriptor_t make_plan(cudnnHandle_t h, cudnnBackendDescriptor_t cfg, int64_t *ws) {
  be_desc p(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR);
  int64_t n = 0;
  if (!p.d || !ok(cudnnBackendSetAttribute(p.d, CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1, &h)) ||
      !ok(cudnnBackendSetAttribute(p.d, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &cfg)) ||
      !ok(cudnnBackendFinalize(p.d)) ||
      !ok(cudnnBackendGetAttribute(p.d, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE, CUDNN_TYPE_INT64, 1, &n, ws)) ||
      *ws < 0 || *ws > kMaxWorkspace)
    return nullptr;
  return p.release();
}

cudnnStatus_t execute(cudnnHandle_t h, cudnnBackendDescriptor_t plan, void *ws, void *x, void *w, void *y) {
  be_desc vp(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR);
  if (!vp.d) return CUDNN_STATUS_ALLOC_FAILED;
  int64_t uids[3] = {UID_X, UID_W, UID_Y};
  void *ptrs[3] = {x, w, y};
  cudnnStatus_t s = cudnnBackendSetAttribute(vp.d, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, 3, uids);
  if (ok(s)) s = cudnnBackendSetAttribute(vp.d, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, 3, ptrs);
  if (ok(s)) s = cudnnBackendSetAttribute(vp.d, CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &ws);
  if (ok(s)) s = cudnnBackendFinalize(vp.d);
  if (ok(s)) s = cudnnBackendExecute(h, plan, vp.d);
  return s;
}

/* milliseconds of 3 runs after a warm-up; < 0 when the plan fails to run */
double time_plan(cudnnHandle_t h, cudnnBackendDescriptor_t plan, void *ws, void *x, void *w, void *y) {
  cudaStream_t s = vr_cuda_stream();
  if (!ok(execute(h, plan, ws, x, w, y))) return -1;
  cudaEvent_t a = nullptr, b = nullptr;
  float ms = -1;
  if (cudaEventCreate(&a) == cudaSuccess && cudaEventCreate(&b) == cudaSuccess && cudaEventRecord(a, s) == cudaSuccess) {
    bool ran = true;
    for (int k = 0; k < 3 && ran; k++) ran = ok(execute(h, plan, ws, x, w, y));
    if (!ran || cudaEventRecord(b, s) != cudaSuccess || cudaEventSynchronize(b) != cudaSuccess ||
        cudaEventElapsedTime(&ms, a, b) != cudaSuccess)
      ms = -1;
  }
  if (a) cudaEventDestroy(a);
  if (b) cudaEventDestroy(b);
  cudaGetLastError();
  return ms;
}

const char *dir_name(int dir) { return dir == VR_CONV_FWD ? "fwd" : dir == VR_CONV_BWD_DATA ? "bwd-data" : "bwd-filter"; }

/* the plan of one call's geometry: heuristics mode A then the fallback list; the first acceptable
 * engine that builds, or (measure) the fastest of the first kMaxMeasured. Called under mu. */
vr_status build(cudnnHandle_t h, const vr_conv_geo &g, vr_dtype dt, int dir, void *x, void *w, void *y, bool measure,
                bool tf32, plan_entry *out) {
  std::vector<cudnnBackendDescriptor_t> made;
  cudnnBackendDescriptor_t graph = make_graph(h, g, dt, dir, made);
  struct cand {
    cudnnBackendDescriptor_t plan;
    int64_t ws, index;
  };
  std::vector<cand> cands;
  int n_cfg = 0, n_refused = 0, n_unbuilt = 0; /* for the verbose line */
  for (cudnnBackendHeurMode_t mode : {CUDNN_HEUR_MODE_A, CUDNN_HEUR_MODE_FALLBACK}) {
    if (!graph || (!cands.empty() && !measure) || (int)cands.size() >= kMaxMeasured) break;
    be_desc heur(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR);
    int64_t count = 0;
    if (!heur.d ||
        !ok(cudnnBackendSetAttribute(heur.d, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &graph)) ||
        !ok(cudnnBackendSetAttribute(heur.d, CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &mode)) ||
        !ok(cudnnBackendFinalize(heur.d)) ||
        !ok(cudnnBackendGetAttribute(heur.d, CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, &count, nullptr)) ||
        count <= 0)
      continue;
    std::vector<cudnnBackendDescriptor_t> cfgs((size_t)count, nullptr);
    for (auto &c : cfgs)
      if (!ok(cudnnBackendCreateDescriptor(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR, &c))) c = nullptr;
    int64_t got = 0;
    bool have = true;
    for (auto c : cfgs) have = have && c;
    if (have && !ok(cudnnBackendGetAttribute(heur.d, CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, count,
                                             &got, cfgs.data())))
      got = 0;
    for (int64_t k = 0; k < got && (int)cands.size() < (measure ? kMaxMeasured : 1); k++) {
      int64_t index = -1, ws = 0;
      n_cfg++;
      if (!engine_acceptable(cfgs[(size_t)k], dt, tf32, &index)) {
        n_refused++;
        continue;
      }
      bool dup = false; /* the fallback list repeats mode A's engines */
      for (auto &c : cands) dup = dup || (index >= 0 && c.index == index);
      if (dup) continue;
      cudnnBackendDescriptor_t plan = make_plan(h, cfgs[(size_t)k], &ws);
      if (plan) cands.push_back({plan, ws, index});
      else n_unbuilt++;
    }
    for (auto c : cfgs)
      if (c) made.push_back(c);
  }
  size_t best = 0;
  if (measure && cands.size() > 1) {
    int64_t most = 0;
    for (auto &c : cands) most = c.ws > most ? c.ws : most;
    vr_cu_buf ws;
    if (ws.get((size_t)most) == VR_OK) { /* else: no room to measure, the heuristics' first */
      double best_ms = -1;
      std::vector<cand> ran;
      for (size_t k = 0; k < cands.size(); k++) {
        double ms = time_plan(h, cands[k].plan, ws.p, x, w, y);
        if (ms < 0) { /* does not run on this device: never the choice */
          cudnnBackendDestroyDescriptor(cands[k].plan);
          continue;
        }
        if (best_ms < 0 || ms < best_ms) {
          best_ms = ms;
          best = ran.size();
        }
        ran.push_back(cands[k]);
      }
      cands.swap(ran);
    }
  }
  for (size_t k = 0; k < cands.size(); k++)
    if (k != best) cudnnBackendDestroyDescriptor(cands[k].plan);
  plan_entry e;
  if (!cands.empty()) {
    e.plan = cands[best].plan;
    e.ws = cands[best].ws;
    kept.insert(kept.end(), made.begin(), made.end());
  } else {
    for (auto d : made) cudnnBackendDestroyDescriptor(d);
  }
  if (getenv("VISREG_CUDA_CONV_VERBOSE")) {
    char why[256] = "";
    if (cands.empty()) cudnnGetLastErrorString(why, sizeof why); /* the last refusal's reason */
    fprintf(stderr, "visreg conv2d plan %s %s%s N%lld C%lld %lldx%lld Co%lld k%lldx%lld s%lld g%lld: engine %lld of %zu ws %lld"
            " (graph %s, %d configs, %d refused by notes, %d unbuilt)%s%s\n",
            dir_name(dir), vr_dtype_name(dt), g.nhwc ? " nhwc" : "", (long long)g.N, (long long)g.C, (long long)g.H,
            (long long)g.W, (long long)g.Co, (long long)g.kh, (long long)g.kw, (long long)g.sh, (long long)g.G,
            cands.empty() ? -1LL : (long long)cands[best].index, cands.size(), (long long)e.ws, graph ? "ok" : "FAILED",
            n_cfg, n_refused, n_unbuilt, cands.empty() ? " (none: legacy path) " : measure ? " (measured)" : "", why);
  }
  *out = e;
  return VR_OK;
}

bool aligned(const void *p) { return ((uintptr_t)p % (uintptr_t)kAlign) == 0; }

} // namespace

vr_status vr_cudnn_plan_run(cudnnHandle_t h, const vr_conv_geo &g, vr_dtype dt, int dir, void *x, void *w, void *y,
                            bool measure, bool tf32) {
  if (!aligned(x) || !aligned(w) || !aligned(y) || vr_variants[VR_VARIANT_CONV] == VR_CONV_CUDNN_LEGACY) return VR_E_UNSUPPORTED;
  int dev = 0;
  VR_CU(cudaGetDevice(&dev));
  std::array<int64_t, 24> key = {g.N,  g.C,  g.H,  g.W,           g.Co, g.kh,    g.kw, g.sh,    g.sw, g.ph, g.pw, g.dh,
                                 g.dw, g.G,  g.nhwc, (int64_t)dt, dir,  measure, tf32, dev,     0,    0,    0,    0};
  plan_entry e;
  {
    std::lock_guard<std::mutex> lock(mu);
    auto it = cache.find(key);
    if (it == cache.end()) {
      if (!exit_hook) atexit(destroy_all_at_exit);
      exit_hook = true;
      VR_TRY(build(h, g, dt, dir, x, w, y, measure, tf32, &e));
      cache[key] = e;
    } else {
      e = it->second;
    }
  }
  if (!e.plan) return VR_E_UNSUPPORTED;
  vr_cu_buf ws;
  if (e.ws) VR_TRY(ws.get((size_t)e.ws));
  cudnnStatus_t s = execute(h, e.plan, ws.p, x, w, y);
  int cat = CUDNN_STATUS_CATEGORY((int)s); /* cuDNN 9 refines each category into sub-codes */
  if (cat == CUDNN_STATUS_NOT_SUPPORTED || cat == CUDNN_STATUS_BAD_PARAM) { /* never again for this geometry */
    std::lock_guard<std::mutex> lock(mu);
    if (cache[key].plan == e.plan) { /* another thread may have done this already */
      cache[key].plan = nullptr;
      kept.push_back(e.plan);
    }
    return VR_E_UNSUPPORTED;
  }
  if (!ok(s))
    return vr_error_set(VR_E_CUDA, __func__, __FILE__, __LINE__, "cudnnBackendExecute (conv2d %s): %s", dir_name(dir),
                        cudnnGetErrorString(s));
  return VR_OK;
}
#endif
