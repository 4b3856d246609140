/* dist_nccl.cu: NCCL collectives for CUDA tensors (core/dist.c). libnccl is opened at run time
 * (dlopen), so the binary needs it only on a machine where a job asks for it; nccl.h gives the
 * types alone. Bootstrap: rank 0 makes the unique id and MPI broadcasts it; each rank takes GPU
 * local_rank modulo the GPUs it sees. One process alone opens a communicator of one rank (the
 * check of this path on a single GPU). The collectives run on the stream of every kernel. */
#include "common.cuh"
#include <dlfcn.h>
#include <nccl.h>
extern "C" {
#include "../../core/dist.h"
}

static struct {
  void *lib;
  ncclComm_t comm;
  int ready;
  ncclResult_t (*get_unique_id)(ncclUniqueId *);
  ncclResult_t (*comm_init_rank)(ncclComm_t *, int, ncclUniqueId, int);
  ncclResult_t (*all_reduce)(const void *, void *, size_t, ncclDataType_t, ncclRedOp_t, ncclComm_t, cudaStream_t);
  ncclResult_t (*all_gather)(const void *, void *, size_t, ncclDataType_t, ncclComm_t, cudaStream_t);
  ncclResult_t (*broadcast)(const void *, void *, size_t, ncclDataType_t, int, ncclComm_t, cudaStream_t);
  ncclResult_t (*comm_destroy)(ncclComm_t);
  const char *(*error_string)(ncclResult_t);
} N;

#define NCCL_TRY(call, expr)                                                                             \
  do {                                                                                                   \
    ncclResult_t r_ = (expr);                                                                            \
    if (r_ != ncclSuccess)                                                                               \
      return vr_error_set(VR_E_CUDA, __func__, __FILE__, __LINE__, "%s: %s", call,                       \
                          N.error_string ? N.error_string(r_) : "NCCL error");                           \
  } while (0)

extern "C" int vr_nccl_ready(void) { return N.ready; }

extern "C" vr_status vr_nccl_open(int rank, int size, int local_rank,
                                  vr_status (*bcast)(void *buf, size_t nbytes, int root)) {
  if (N.ready) return VR_OK;
  if (!N.lib) N.lib = dlopen("libnccl.so.2", RTLD_NOW | RTLD_GLOBAL);
  if (!N.lib) N.lib = dlopen("libnccl.so", RTLD_NOW | RTLD_GLOBAL);
  if (!N.lib) return VR_FAIL(VR_E_UNSUPPORTED, "NCCL: libnccl.so.2 could not be opened (%s)", dlerror());
  struct { void **slot; const char *name; } syms[] = {
    { (void **)&N.get_unique_id, "ncclGetUniqueId" }, { (void **)&N.comm_init_rank, "ncclCommInitRank" },
    { (void **)&N.all_reduce, "ncclAllReduce" }, { (void **)&N.all_gather, "ncclAllGather" },
    { (void **)&N.broadcast, "ncclBroadcast" }, { (void **)&N.comm_destroy, "ncclCommDestroy" },
    { (void **)&N.error_string, "ncclGetErrorString" },
  };
  for (size_t i = 0; i < sizeof syms / sizeof *syms; i++) {
    *syms[i].slot = dlsym(N.lib, syms[i].name);
    if (!*syms[i].slot) return VR_FAIL(VR_E_UNSUPPORTED, "NCCL: the library has no %s", syms[i].name);
  }
  int ngpu = 0;
  VR_CU(cudaGetDeviceCount(&ngpu));
  if (ngpu < 1) return VR_FAIL(VR_E_DEVICE, "NCCL: no GPU on this machine");
  VR_CU(cudaSetDevice(local_rank % ngpu));
  ncclUniqueId id;
  memset(&id, 0, sizeof id);
  if (rank == 0) NCCL_TRY("ncclGetUniqueId", N.get_unique_id(&id));
  if (size > 1) {
    if (!bcast) return VR_FAIL(VR_E_ARG, "bcast: expected the transport that sends rank 0's id, got NULL");
    VR_TRY(bcast(&id, sizeof id, 0));
  }
  NCCL_TRY("ncclCommInitRank", N.comm_init_rank(&N.comm, size, id, rank));
  N.ready = 1;
  return VR_OK;
}

static ncclDataType_t nccl_type(vr_dtype dt) { return dt == VR_F64 ? ncclFloat64 : dt == VR_I64 ? ncclInt64 : ncclFloat32; }

extern "C" vr_status vr_nccl_all_reduce_sum(void *buf, size_t count, vr_dtype dt) {
  if (!N.ready) return VR_FAIL(VR_E_UNSUPPORTED, "NCCL is not open (vr_dist_use_nccl)");
  if (dt != VR_F32 && dt != VR_F64 && dt != VR_I64)
    return VR_FAIL(VR_E_DTYPE, "dt: expected f32, f64 or i64, got %s", vr_dtype_name(dt));
  NCCL_TRY("ncclAllReduce", N.all_reduce(buf, buf, count, nccl_type(dt), ncclSum, N.comm, vr_cuda_stream()));
  return VR_OK;
}

extern "C" vr_status vr_nccl_all_gather(const void *send, void *recv, size_t nbytes) {
  if (!N.ready) return VR_FAIL(VR_E_UNSUPPORTED, "NCCL is not open (vr_dist_use_nccl)");
  NCCL_TRY("ncclAllGather", N.all_gather(send, recv, nbytes, ncclUint8, N.comm, vr_cuda_stream()));
  return VR_OK;
}

extern "C" vr_status vr_nccl_broadcast(void *buf, size_t nbytes, int root) {
  if (!N.ready) return VR_FAIL(VR_E_UNSUPPORTED, "NCCL is not open (vr_dist_use_nccl)");
  NCCL_TRY("ncclBroadcast", N.broadcast(buf, buf, nbytes, ncclUint8, root, N.comm, vr_cuda_stream()));
  return VR_OK;
}

extern "C" void vr_nccl_close(void) {
  if (N.ready) {
    cudaStreamSynchronize(vr_cuda_stream());
    N.comm_destroy(N.comm);
  }
  N.ready = 0;
}
