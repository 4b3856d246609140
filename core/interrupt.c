/* interrupt.c: the process-wide interrupt request. A signal handler sets it (the host's Ctrl-C and
 * SIGTERM handlers, the REPL's); long loops in the core read it between units of work and stop
 * with VR_E_INTERRUPTED, taking the request; the trainer reads it between steps. A lock-free atomic,
 * so that a signal handler may set it and OpenMP threads may read it. */
#include "internal.h"
#include <stdatomic.h>

static atomic_int pending;

int vr_interrupt_pending(void) { return atomic_load_explicit(&pending, memory_order_relaxed); }
void vr_interrupt_request(void) { atomic_store_explicit(&pending, 1, memory_order_relaxed); }
void vr_interrupt_clear(void) { atomic_store_explicit(&pending, 0, memory_order_relaxed); }

vr_status vr_interrupt_check(const char *func, const char *file, int line, const char *what) {
  if (!atomic_exchange_explicit(&pending, 0, memory_order_relaxed)) return VR_OK;
  return vr_error_set(VR_E_INTERRUPTED, func, file, line, "interrupted%s%s", what && *what ? " " : "", what ? what : "");
}
