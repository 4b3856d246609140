/* dist_mpi.c: the MPI transport of core/dist.c. libmpi is opened at run time (dlopen), only when a
 * launcher started this process, so a binary runs alone on a machine without MPI. The handles are
 * Open MPI's (Debian's openmpi: MPI_COMM_WORLD is the address of ompi_mpi_comm_world, and so on).
 * Errors return (MPI_ERRORS_RETURN) and become a status naming the call. */
#include "dist.h"
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

typedef void *mpi_handle;
static struct {
  void *lib;
  mpi_handle comm, f32, f64, i64, byte, sum, max, errors_return;
  int (*init)(int *, char ***);
  int (*initialized)(int *);
  int (*finalize)(void);
  int (*comm_rank)(mpi_handle, int *);
  int (*comm_size)(mpi_handle, int *);
  int (*set_errhandler)(mpi_handle, mpi_handle);
  int (*allreduce)(const void *, void *, int, mpi_handle, mpi_handle, mpi_handle);
  int (*allgather)(const void *, int, mpi_handle, void *, int, mpi_handle, mpi_handle);
  int (*bcast)(void *, int, mpi_handle, int, mpi_handle);
  int (*barrier)(mpi_handle);
  int (*abort)(mpi_handle, int);
  int (*error_string)(int, char *, int *);
} M;

static void *in_place(void) { return (void *)1; } /* Open MPI's MPI_IN_PLACE */

static vr_status mpi_fail(const char *call, int rc) {
  char msg[512] = "";
  int len = 0;
  if (M.error_string) M.error_string(rc, msg, &len);
  return vr_error_set(VR_E_INTERNAL, "MPI", __FILE__, __LINE__, "%s failed (%d: %s): a rank may have stopped", call, rc, msg);
}
#define MPI_TRY(call, expr) do { int rc_ = (expr); if (rc_ != 0) return mpi_fail(call, rc_); } while (0)

/* counts above INT_MAX go in pieces */
#define PIECE ((size_t)1 << 28)

static vr_status m_all_reduce_sum(void *buf, size_t count, vr_dtype dt) {
  mpi_handle t = dt == VR_F64 ? M.f64 : dt == VR_F32 ? M.f32 : dt == VR_I64 ? M.i64 : NULL;
  if (!t) return VR_FAIL(VR_E_DTYPE, "dt: expected f32, f64 or i64, got %s", vr_dtype_name(dt));
  size_t es = vr_dtype_size(dt);
  for (size_t at = 0; at < count; at += PIECE) {
    size_t n = count - at < PIECE ? count - at : PIECE;
    MPI_TRY("MPI_Allreduce", M.allreduce(in_place(), (char *)buf + at * es, (int)n, t, M.sum, M.comm));
  }
  return VR_OK;
}
static vr_status m_all_reduce_max_i64(int64_t *buf, size_t count) {
  if (count > INT_MAX) return VR_FAIL(VR_E_ARG, "count: expected at most %d, got %zu", INT_MAX, count);
  MPI_TRY("MPI_Allreduce", M.allreduce(in_place(), buf, (int)count, M.i64, M.max, M.comm));
  return VR_OK;
}
static vr_status m_all_gather(const void *send, void *recv, size_t nbytes) {
  if (nbytes > INT_MAX) return VR_FAIL(VR_E_ARG, "nbytes: expected at most %d per rank, got %zu", INT_MAX, nbytes);
  MPI_TRY("MPI_Allgather", M.allgather(send, (int)nbytes, M.byte, recv, (int)nbytes, M.byte, M.comm));
  return VR_OK;
}
static vr_status m_broadcast(void *buf, size_t nbytes, int root) {
  for (size_t at = 0; at < nbytes || at == 0; at += PIECE) {
    size_t n = nbytes - at < PIECE ? nbytes - at : PIECE;
    MPI_TRY("MPI_Bcast", M.bcast((char *)buf + at, (int)n, M.byte, root, M.comm));
    if (nbytes == 0) break;
  }
  return VR_OK;
}
static vr_status m_barrier(void) {
  MPI_TRY("MPI_Barrier", M.barrier(M.comm));
  return VR_OK;
}
static void m_abort(int code) { M.abort(M.comm, code); }
static vr_status m_finalize(void) {
  MPI_TRY("MPI_Finalize", M.finalize());
  return VR_OK;
}

static const vr_dist_ops mpi_ops = { "mpi", m_all_reduce_sum, m_all_reduce_max_i64, m_all_gather, m_broadcast,
                                     m_barrier, m_abort, m_finalize };

static int env_int(const char *name, int dflt) {
  const char *s = getenv(name);
  return s && *s ? atoi(s) : dflt;
}

vr_status vr_dist_mpi_open(const vr_dist_ops **ops, int *rank, int *size, int *local_rank) {
  if (!M.lib) {
    const char *names[] = { "libmpi.so.40", "libmpi.so", "libmpi.so.12" };
    for (size_t i = 0; i < sizeof names / sizeof *names && !M.lib; i++) M.lib = dlopen(names[i], RTLD_NOW | RTLD_GLOBAL);
    if (!M.lib)
      return VR_FAIL(VR_E_UNSUPPORTED, "launched by %s, but no MPI library could be opened (libmpi.so.40: %s); "
                     "install Open MPI (apt-get install openmpi-bin) or run one process", vr_dist_launcher(), dlerror());
  }
  struct { void **slot; const char *name; } syms[] = {
    { (void **)&M.comm, "ompi_mpi_comm_world" }, { (void **)&M.f32, "ompi_mpi_float" },
    { (void **)&M.f64, "ompi_mpi_double" }, { (void **)&M.i64, "ompi_mpi_int64_t" },
    { (void **)&M.byte, "ompi_mpi_byte" }, { (void **)&M.sum, "ompi_mpi_op_sum" }, { (void **)&M.max, "ompi_mpi_op_max" },
    { (void **)&M.errors_return, "ompi_mpi_errors_return" }, { (void **)&M.init, "MPI_Init" },
    { (void **)&M.initialized, "MPI_Initialized" }, { (void **)&M.finalize, "MPI_Finalize" },
    { (void **)&M.comm_rank, "MPI_Comm_rank" }, { (void **)&M.comm_size, "MPI_Comm_size" },
    { (void **)&M.set_errhandler, "MPI_Comm_set_errhandler" }, { (void **)&M.allreduce, "MPI_Allreduce" },
    { (void **)&M.allgather, "MPI_Allgather" }, { (void **)&M.bcast, "MPI_Bcast" }, { (void **)&M.barrier, "MPI_Barrier" },
    { (void **)&M.abort, "MPI_Abort" }, { (void **)&M.error_string, "MPI_Error_string" },
  };
  for (size_t i = 0; i < sizeof syms / sizeof *syms; i++) {
    *syms[i].slot = dlsym(M.lib, syms[i].name);
    if (!*syms[i].slot)
      return VR_FAIL(VR_E_UNSUPPORTED, "the MPI library has no %s: expected Open MPI (Debian's openmpi-bin)", syms[i].name);
  }
  int done = 0;
  M.initialized(&done);
  if (!done) MPI_TRY("MPI_Init", M.init(NULL, NULL));
  MPI_TRY("MPI_Comm_set_errhandler", M.set_errhandler(M.comm, M.errors_return));
  MPI_TRY("MPI_Comm_rank", M.comm_rank(M.comm, rank));
  MPI_TRY("MPI_Comm_size", M.comm_size(M.comm, size));
  *local_rank = env_int("OMPI_COMM_WORLD_LOCAL_RANK", env_int("MPI_LOCALRANKID", env_int("SLURM_LOCALID", 0)));
  *ops = &mpi_ops;
  return VR_OK;
}
