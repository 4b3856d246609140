/* variants.c: the kernel paths a test or a benchmark may choose between. Each variant gives the
 * same results up to rounding; the default (the first value) is the path the device runs best,
 * chosen by capability where it needs one (3xTF32 on sm_80 and later, cuDNN when linked). Tests
 * compare the paths, benchmarks time them (`visreg bench ... --variant conv=legacy`). */
#include "internal.h"
#include <stdio.h>

int vr_variants[VR_VARIANT_N];

static const struct {
  const char *name;
  const char *values[4]; /* the value's index is what vr_variants holds; NULL ends the list */
} table[VR_VARIANT_N] = {
    /* CUDA convolutions: cached cuDNN graph-API plans, cuDNN's legacy calls, im2col + cuBLAS */
    [VR_VARIANT_CONV] = {"conv", {"cudnn", "legacy", "im2col"}},
    /* VISReg's CUDA projections in 3xTF32: on sm_80 and later when large enough, never, always */
    [VR_VARIANT_3XTF32] = {"3xtf32", {"auto", "off", "on"}},
    /* CUDA column sums: in one launch, or the partials then the totals in two */
    [VR_VARIANT_COLSUMS] = {"colsums", {"one", "two"}},
    /* the CUDA rank sort of the sliced regularizers: register-tiled, or every segment in shared memory */
    [VR_VARIANT_SORT] = {"sort", {"register", "shared"}},
    /* nn's batch norm followed by ReLU (and a residual add): one fused op, or the separate ops */
    [VR_VARIANT_BN_ACT] = {"bn_act", {"fused", "unfused"}},
    /* the CPU direct convolution's micro-kernels: vectors of output channels, or vectors of positions
     * (stride 1 only; the other shapes go to im2col) */
    [VR_VARIANT_CPU_TILES] = {"cpu_tiles", {"channels", "positions"}},
    /* the CPU's 3 x 3 stride-1 convolutions with many channels: forward and both gradients by
     * Winograd F(4x4, 3x3), or by the direct kernels */
    [VR_VARIANT_CPU_WINOGRAD] = {"cpu_winograd", {"on", "off"}},
};

static int find_name(const char *name) {
  for (int v = 0; v < VR_VARIANT_N; v++)
    if (name && !strcmp(name, table[v].name)) return v;
  return -1;
}

vr_status vr_set_variant(const char *name, const char *value) {
  int v = find_name(name);
  if (v < 0) return VR_FAIL(VR_E_ARG, "name: expected conv, 3xtf32, colsums, sort, bn_act, cpu_tiles or cpu_winograd, got '%s'", name ? name : "(null)");
  char allowed[96] = "";
  for (int k = 0; k < 4 && table[v].values[k]; k++) {
    if (value && !strcmp(value, table[v].values[k])) {
      vr_variants[v] = k;
      return VR_OK;
    }
    snprintf(allowed + strlen(allowed), sizeof allowed - strlen(allowed), "%s%s", k ? ", " : "", table[v].values[k]);
  }
  return VR_FAIL(VR_E_ARG, "value: expected %s for %s, got '%s'", allowed, name, value ? value : "(null)");
}

vr_status vr_set_variants(const char *list) {
  char buf[256];
  if (!list) return VR_OK;
  if (strlen(list) >= sizeof buf) return VR_FAIL(VR_E_ARG, "list: expected under %d characters", (int)sizeof buf);
  strcpy(buf, list);
  for (char *save = NULL, *p = strtok_r(buf, ", ", &save); p; p = strtok_r(NULL, ", ", &save)) {
    char *eq = strchr(p, '=');
    if (!eq) return VR_FAIL(VR_E_ARG, "list: expected NAME=VALUE, got '%s'", p);
    *eq = 0;
    VR_TRY(vr_set_variant(p, eq + 1));
  }
  return VR_OK;
}

const char *vr_variant(const char *name) {
  int v = find_name(name);
  return v < 0 ? NULL : table[v].values[vr_variants[v]];
}
