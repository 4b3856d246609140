/* dist.h: the collectives' backends behind core/dist.c. A backend moves host (MPI) or device
 * (NCCL) buffers; core/dist.c turns tensors into buffers and picks the backend by the tensor's
 * device. Nothing here includes an MPI or NCCL header: both libraries are opened at run time. */
#ifndef VISREG_DIST_H
#define VISREG_DIST_H

#include "internal.h"

#ifdef __cplusplus
extern "C" {
#endif

/* the process-wide transport over host memory (MPI) */
typedef struct vr_dist_ops {
  const char *name;
  vr_status (*all_reduce_sum)(void *buf, size_t count, vr_dtype dt); /* in place */
  vr_status (*all_reduce_max_i64)(int64_t *buf, size_t count);      /* in place */
  vr_status (*all_gather)(const void *send, void *recv, size_t nbytes); /* rank r's part at r * nbytes */
  vr_status (*broadcast)(void *buf, size_t nbytes, int root);
  vr_status (*barrier)(void);
  void (*abort)(int code);
  vr_status (*finalize)(void);
} vr_dist_ops;

/* the launcher that started this process: "mpi" (mpirun: OMPI_COMM_WORLD_SIZE, PMI_SIZE), "slurm"
 * (srun: SLURM_NTASKS with SLURM_PROCID) or NULL when none did (one process) */
const char *vr_dist_launcher(void);
/* core/dist_mpi.c: opens libmpi, initializes it and returns its ops, rank, size and local rank */
vr_status vr_dist_mpi_open(const vr_dist_ops **ops, int *rank, int *size, int *local_rank);

/* kernels/cuda/dist_nccl.cu (stubs in core/cuda_stub.c): NCCL over the ranks, bootstrapped by
 * bcast (rank 0's unique id sent to all), on GPU local_rank modulo the GPUs present */
vr_status vr_nccl_open(int rank, int size, int local_rank, vr_status (*bcast)(void *buf, size_t nbytes, int root));
int vr_nccl_ready(void);
vr_status vr_nccl_all_reduce_sum(void *buf, size_t count, vr_dtype dt);
vr_status vr_nccl_all_gather(const void *send, void *recv, size_t nbytes);
vr_status vr_nccl_broadcast(void *buf, size_t nbytes, int root);
void vr_nccl_close(void);

#ifdef __cplusplus
}
#endif
#endif
