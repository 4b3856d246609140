#!/bin/sh
# slurm-train.sh: data-parallel training on a Slurm cluster, one rank a GPU.
#
#   sbatch tools/slurm-train.sh recipes/fmnist_resnet18_visreg.lua --out runs/r18-8gpu
#   sbatch --nodes=4 tools/slurm-train.sh RECIPE [train options]         # 4 nodes x 8 GPUs
#
# srun starts one `visreg train` a task; each rank reads the job from Slurm's environment
# (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID), joins it through Open MPI (srun's PMIx), takes GPU
# SLURM_LOCALID and wires NCCL from rank 0's id. The recipe's batch is the global batch (it must
# split evenly over the ranks); rank 0 alone writes the run folder, which must be on a file
# system every node sees. A rank that fails ends the job (--kill-on-bad-exit). Resume with
# `sbatch tools/slurm-train.sh --resume runs/r18-8gpu` on any number of ranks.
#
# Edit the lines below for your cluster (partition, time, account); the GPU count a node is
# --ntasks-per-node and --gpus-per-node together.
#SBATCH --job-name=visreg-train
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=8
#SBATCH --gpus-per-node=8
#SBATCH --cpus-per-task=8
#SBATCH --time=04:00:00
#SBATCH --output=visreg-train-%j.log
#SBATCH --signal=B:INT@120

set -eu
BIN=${VISREG:-bin/visreg}
export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-8}
# Open MPI under srun: PMIx wires the ranks (if your site's Open MPI is built for PMI-2, use
# --mpi=pmi2); the kernels' own threads stay on the task's cores
exec srun --mpi=pmix --kill-on-bad-exit=1 --cpu-bind=cores "$BIN" train "$@"
