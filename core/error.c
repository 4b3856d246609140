/* error.c: the thread-local last error and the names of statuses, dtypes and devices. */
#include "internal.h"
#include <stdio.h>
#include <string.h>

static _Thread_local char last_msg[1024];
static _Thread_local vr_status last_st;

vr_status vr_error_set(vr_status st, const char *func, const char *file, int line, const char *fmt, ...) {
  char body[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(body, sizeof body, fmt, ap);
  va_end(ap);
  snprintf(last_msg, sizeof last_msg, "%s: %s (%s:%d)", func, body, file, line);
  last_st = st;
  return st;
}

const char *vr_last_error(void) { return last_msg[0] ? last_msg : "no error"; }
vr_status vr_last_status(void) { return last_st; }
void vr_clear_error(void) { last_msg[0] = 0; last_st = VR_OK; }

const char *vr_status_name(vr_status s) {
  static const char *names[] = {"VR_OK", "VR_E_ARG", "VR_E_SHAPE", "VR_E_DTYPE", "VR_E_DEVICE",
                                "VR_E_OOM", "VR_E_IO", "VR_E_FORMAT", "VR_E_UNSUPPORTED",
                                "VR_E_AUTOGRAD", "VR_E_CUDA", "VR_E_VALUE", "VR_E_INTERNAL",
                                "VR_E_INTERRUPTED"};
  return (s >= 0 && s < (int)(sizeof names / sizeof *names)) ? names[s] : "VR_E_UNKNOWN";
}

const char *vr_dtype_name(vr_dtype dt) {
  switch (dt) {
  case VR_F32: return "f32";
  case VR_F64: return "f64";
  case VR_I32: return "i32";
  case VR_I64: return "i64";
  case VR_U8: return "u8";
  case VR_BF16: return "bf16";
  }
  return "?";
}

size_t vr_dtype_size(vr_dtype dt) {
  switch (dt) {
  case VR_F32: case VR_I32: return 4;
  case VR_F64: case VR_I64: return 8;
  case VR_U8: return 1;
  case VR_BF16: return 2;
  }
  return 0;
}

const char *vr_device_name(vr_device d) { return d == VR_CPU ? "cpu" : d == VR_CUDA ? "cuda" : "?"; }
