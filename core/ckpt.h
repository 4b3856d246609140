/* ckpt.h: what the checkpoint writer (ckpt_write.c) and reader (ckpt_read.c) share: the entries
 * of a safetensors file and the two handles. */
#ifndef VISREG_CKPT_H
#define VISREG_CKPT_H
#include "internal.h"
#include <stdlib.h>

typedef struct ck_entry {
  char *name;
  vr_dtype dtype;
  int ndim;
  int64_t shape[VR_MAX_DIMS];
  uint64_t begin, end; /* reader: offsets in the data section */
  void *data;          /* writer: a host copy */
} ck_entry;

typedef struct ck_meta {
  char *key, *value;
} ck_meta;

struct vr_ckpt_writer {
  int n, cap, nm, capm;
  ck_entry *e;
  ck_meta *m;
};

struct vr_ckpt_reader {
  char *path;
  uint64_t data_start;
  int n, nm, cap, capm;
  ck_entry *e;
  ck_meta *m;
};

/* the safetensors name of a dtype */
static inline const char *st_dtype(vr_dtype dt) {
  switch (dt) {
  case VR_F32: return "F32";
  case VR_F64: return "F64";
  case VR_I32: return "I32";
  case VR_I64: return "I64";
  case VR_U8: return "U8";
  case VR_BF16: return "BF16";
  }
  return "?";
}

/* a growing string (oom set, and nothing more appended, when an allocation fails) */
typedef struct sbuf {
  char *p;
  size_t n, cap;
  int oom;
} sbuf;

static inline void sb_put(sbuf *b, const char *s, size_t n) {
  if (b->oom) return;
  if (b->n + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + n + 1) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
      b->oom = 1;
      return;
    }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = 0;
}

#endif
