/* register.c: fills the CPU column of the op table at start-up. */
#include "cpu.h"

void vr_cpu_register(void) {
  vr_cpu_register_basic();
  vr_cpu_register_elementwise();
  vr_cpu_register_where();
  vr_cpu_register_reduce();
  vr_cpu_register_linalg();
  vr_cpu_register_conv();
  vr_cpu_register_pool();
  vr_cpu_register_norm();
  vr_cpu_register_softmax();
  vr_cpu_register_index();
  vr_cpu_register_sort();
  vr_cpu_register_reg();
  vr_cpu_register_augment();
  vr_cpu_register_optim();
}
