/* reg_args.h: the argument slots of the regularizer kernels, by name. A front-end (core/reg/visreg.c, swd.c, ...)
 * fills vr_kernel_args.f[] and .i[] at these indices; the CPU and CUDA kernels read them from the
 * same. Plain enums, for C and the CUDA C++ alike. Comments name a slot by its last word
 * (f[EPS] for f[VR_VISREG_F_EPS]). */
#ifndef VISREG_REG_ARGS_H
#define VISREG_REG_ARGS_H

/* The sliced regularizers (VISReg, SWD, SIGReg): in[0] = z (V x B x D), in[1] = the raw slices
 * G (D x K) or NULL (drawn from Philox by (seed, step) with K columns), in[2] = the B quantile
 * targets (VISReg, SWD). */
enum vr_sliced_i {
  VR_SLICED_I_CHUNK = 0, /* slices per chunk (0: the kernel chooses) */
  VR_SIGREG_I_KNOTS = 1, /* SIGReg: quadrature knots (>= 2) */
  VR_SLICED_I_SEED = 2,  /* the slice draw's seed, step and K (in[1] NULL) */
  VR_SLICED_I_STEP = 3,
  VR_SLICED_I_K = 4,
};
/* VISReg: the three terms' weights and the slice normalisation's eps, W[:, k] = G[:, k] /
 * (||G[:, k]|| + eps); SWD uses the same slots with the shape weight 1 and the others 0 */
enum vr_visreg_f { VR_VISREG_F_SCALE = 0, VR_VISREG_F_SHAPE = 1, VR_VISREG_F_CENTER = 2, VR_VISREG_F_EPS = 3 };
/* SIGReg: the characteristic function's range [0, t_max] and the slice normalisation's eps */
enum vr_sigreg_f { VR_SIGREG_F_TMAX = 0, VR_SIGREG_F_EPS = 1 };

/* VICReg (two views): the invariance, variance and covariance weights */
enum vr_vicreg_f { VR_VICREG_F_INV = 0, VR_VICREG_F_VAR = 1, VR_VICREG_F_COV = 2 };
/* VICReg over the V views pooled into one batch: the variance and covariance weights */
enum vr_vicreg_pooled_f { VR_VICREG_POOLED_F_VAR = 0, VR_VICREG_POOLED_F_COV = 1 };
/* Barlow Twins: the off-diagonal weight */
enum vr_barlow_f { VR_BARLOW_F_OFFDIAG = 0 };
/* the invariance term: how many of the V views are global (1 <= G <= V) */
enum vr_invariance_i { VR_INVARIANCE_I_GLOBAL = 0 };

/* the slice normalisation's eps of a sliced regularizer (sigreg: 1 for SIGReg, 0 for VISReg and SWD) */
#define VR_SLICED_EPS(a, sigreg) ((a)->f[(sigreg) ? (int)VR_SIGREG_F_EPS : (int)VR_VISREG_F_EPS])

#endif
