/* ckpt_write.c: checkpoints as safetensors files: 8-byte little-endian header length N, N bytes of JSON
 * ({"__metadata__": {string: string}, name: {"dtype", "shape", "data_offsets": [begin, end]}}),
 * padded with spaces to 8 bytes, then the raw little-endian data. Written atomically (tmp file,
 * fsync, rename, fsync of the folder); read back by ckpt_read.c. */
#include "ckpt.h"
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------------------------------------------------------------- writer */

vr_status vr_ckpt_writer_new(vr_ckpt_writer **out) {
  VR_CHECK_OUT(out);
  *out = calloc(1, sizeof(vr_ckpt_writer));
  if (!*out) return VR_FAIL(VR_E_OOM, "writer: out of host memory");
  return VR_OK;
}

void vr_ckpt_writer_free(vr_ckpt_writer *w) {
  if (!w) return;
  for (int k = 0; k < w->n; k++) {
    free(w->e[k].name);
    free(w->e[k].data);
  }
  for (int k = 0; k < w->nm; k++) {
    free(w->m[k].key);
    free(w->m[k].value);
  }
  free(w->e);
  free(w->m);
  free(w);
}

vr_status vr_ckpt_writer_add(vr_ckpt_writer *w, const char *name, const vr_tensor *t) {
  if (!w) return VR_FAIL(VR_E_ARG, "w: expected a writer, got NULL");
  if (!name || !*name) return VR_FAIL(VR_E_ARG, "name: expected a non-empty name, got %s", name ? "\"\"" : "NULL");
  VR_CHECK_TENSOR(t);
  if (!strcmp(name, "__metadata__")) return VR_FAIL(VR_E_ARG, "name: '__metadata__' is reserved");
  for (int k = 0; k < w->n; k++)
    if (!strcmp(w->e[k].name, name)) return VR_FAIL(VR_E_ARG, "name: '%s' was already added", name);
  if (w->n == w->cap) {
    int cap = w->cap ? 2 * w->cap : 16;
    ck_entry *e = realloc(w->e, sizeof *e * (size_t)cap);
    if (!e) return VR_FAIL(VR_E_OOM, "w: out of host memory");
    w->e = e;
    w->cap = cap;
  }
  vr_tensor *h = NULL, *c = NULL;
  if (t->device != VR_CPU) VR_TRY(vr_tensor_to_device(t, VR_CPU, &h));
  vr_status st = vr_contiguous_raw(h ? h : t, &c);
  vr_tensor_free(h);
  if (st) return st;
  size_t nb = (size_t)vr_tensor_numel(c) * vr_dtype_size(c->dtype);
  ck_entry e = {.name = strdup(name), .dtype = c->dtype, .ndim = c->ndim, .data = malloc(nb ? nb : 1)};
  if (!e.name || !e.data) {
    free(e.name);
    free(e.data);
    vr_tensor_free(c);
    return VR_FAIL(VR_E_OOM, "t: out of host memory for '%s'", name);
  }
  for (int d = 0; d < c->ndim; d++) e.shape[d] = c->shape[d];
  if (nb) memcpy(e.data, vr_data(c), nb);
  e.end = nb;
  vr_tensor_free(c);
  w->e[w->n++] = e;
  return VR_OK;
}

vr_status vr_ckpt_writer_add_meta(vr_ckpt_writer *w, const char *key, const char *value) {
  if (!w) return VR_FAIL(VR_E_ARG, "w: expected a writer, got NULL");
  if (!key || !value) return VR_FAIL(VR_E_ARG, "key, value: expected strings, got NULL");
  for (int k = 0; k < w->nm; k++)
    if (!strcmp(w->m[k].key, key)) { /* last value wins */
      char *v = strdup(value);
      if (!v) return VR_FAIL(VR_E_OOM, "value: out of host memory");
      free(w->m[k].value);
      w->m[k].value = v;
      return VR_OK;
    }
  if (w->nm == w->capm) {
    int cap = w->capm ? 2 * w->capm : 8;
    ck_meta *m = realloc(w->m, sizeof *m * (size_t)cap);
    if (!m) return VR_FAIL(VR_E_OOM, "w: out of host memory");
    w->m = m;
    w->capm = cap;
  }
  ck_meta m = {strdup(key), strdup(value)};
  if (!m.key || !m.value) {
    free(m.key);
    free(m.value);
    return VR_FAIL(VR_E_OOM, "key: out of host memory");
  }
  w->m[w->nm++] = m;
  return VR_OK;
}

/* a growing string */
static void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }
static void sb_fmt(sbuf *b, const char *fmt, unsigned long long v) {
  char t[32];
  int n = snprintf(t, sizeof t, fmt, v);
  sb_put(b, t, (size_t)n);
}
static void sb_json(sbuf *b, const char *s) {
  sb_put(b, "\"", 1);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\') {
      char e[2] = {'\\', (char)*p};
      sb_put(b, e, 2);
    } else if (*p < 0x20) {
      char e[8];
      snprintf(e, sizeof e, "\\u%04x", *p);
      sb_put(b, e, 6);
    } else
      sb_put(b, (const char *)p, 1);
  }
  sb_put(b, "\"", 1);
}

static int write_all(int fd, const void *p, size_t n) {
  const char *c = p;
  while (n) {
    ssize_t k = write(fd, c, n);
    if (k < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    c += k;
    n -= (size_t)k;
  }
  return 0;
}

vr_status vr_ckpt_writer_save(vr_ckpt_writer *w, const char *path) {
  if (!w) return VR_FAIL(VR_E_ARG, "w: expected a writer, got NULL");
  if (!path || !*path) return VR_FAIL(VR_E_ARG, "path: expected a file name, got none");
  sbuf h = {0};
  sb_str(&h, "{");
  if (w->nm) {
    sb_str(&h, "\"__metadata__\":{");
    for (int k = 0; k < w->nm; k++) {
      if (k) sb_str(&h, ",");
      sb_json(&h, w->m[k].key);
      sb_str(&h, ":");
      sb_json(&h, w->m[k].value);
    }
    sb_str(&h, "}");
  }
  uint64_t off = 0;
  for (int k = 0; k < w->n; k++) {
    ck_entry *e = &w->e[k];
    if (k || w->nm) sb_str(&h, ",");
    sb_json(&h, e->name);
    sb_str(&h, ":{\"dtype\":\"");
    sb_str(&h, st_dtype(e->dtype));
    sb_str(&h, "\",\"shape\":[");
    for (int d = 0; d < e->ndim; d++) sb_fmt(&h, d ? ",%llu" : "%llu", (unsigned long long)e->shape[d]);
    sb_fmt(&h, "],\"data_offsets\":[%llu,", off);
    off += e->end;
    sb_fmt(&h, "%llu]}", off);
  }
  sb_str(&h, "}");
  while (!h.oom && h.n % 8) sb_str(&h, " "); /* so that the data starts 8-byte aligned */
  if (h.oom) {
    free(h.p);
    return VR_FAIL(VR_E_OOM, "path: out of host memory for the header of '%s'", path);
  }
  size_t plen = strlen(path);
  char *tmp = malloc(plen + 32);
  if (!tmp) {
    free(h.p);
    return VR_FAIL(VR_E_OOM, "path: out of host memory");
  }
  snprintf(tmp, plen + 32, "%s.tmp.%ld", path, (long)getpid());
  vr_status st = VR_OK;
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) {
    st = VR_FAIL(VR_E_IO, "path: cannot create '%s': %s", tmp, strerror(errno));
    goto done;
  }
  unsigned char len8[8];
  for (int k = 0; k < 8; k++) len8[k] = (unsigned char)((uint64_t)h.n >> (8 * k));
  int bad = write_all(fd, len8, 8) || write_all(fd, h.p, h.n);
  for (int k = 0; k < w->n && !bad; k++) bad = write_all(fd, w->e[k].data, (size_t)w->e[k].end);
  if (!bad) bad = fsync(fd);
  int err = errno;
  if (close(fd) && !bad) {
    bad = 1;
    err = errno;
  }
  if (bad) {
    unlink(tmp);
    st = VR_FAIL(VR_E_IO, "path: cannot write '%s': %s (the previous file, if any, is kept)", tmp, strerror(err));
    goto done;
  }
  if (rename(tmp, path)) {
    err = errno;
    unlink(tmp);
    st = VR_FAIL(VR_E_IO, "path: cannot rename '%s' to '%s': %s", tmp, path, strerror(err));
    goto done;
  }
  { /* make the rename itself durable */
    char *dcopy = strdup(path);
    if (dcopy) {
      int dfd = open(dirname(dcopy), O_RDONLY);
      if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
      }
      free(dcopy);
    }
  }
done:
  free(tmp);
  free(h.p);
  return st;
}
