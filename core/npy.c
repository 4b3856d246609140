/* npy.c: reading and writing numpy .npy files (format versions 1-3; little-endian f4, f8, i4,
 * i8, u1 and bool; C or Fortran order on read). */
#include "internal.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *descr_of(vr_dtype dt) {
  switch (dt) {
  case VR_F32: return "<f4";
  case VR_F64: return "<f8";
  case VR_I32: return "<i4";
  case VR_I64: return "<i8";
  case VR_U8: return "|u1";
  default: return NULL;
  }
}

static int dtype_of(const char *d, vr_dtype *dt) {
  if (!strcmp(d, "<f4")) *dt = VR_F32;
  else if (!strcmp(d, "<f8")) *dt = VR_F64;
  else if (!strcmp(d, "<i4")) *dt = VR_I32;
  else if (!strcmp(d, "<i8")) *dt = VR_I64;
  else if (!strcmp(d, "|u1") || !strcmp(d, "|b1") || !strcmp(d, "<u1")) *dt = VR_U8;
  else return 0;
  return 1;
}

/* finds 'key': in the header dict and returns the text after the colon */
static const char *dict_value(const char *h, const char *key) {
  char pat[32];
  snprintf(pat, sizeof pat, "'%s'", key);
  const char *p = strstr(h, pat);
  if (!p) return NULL;
  p = strchr(p + strlen(pat), ':');
  if (!p) return NULL;
  p++;
  while (*p == ' ') p++;
  return p;
}

/* reads nb bytes of a stream (a pipe, whose size is not known before) into a buffer grown only as
 * the bytes arrive, so that nothing is allocated for bytes that are not there: 1 read, 0 fewer
 * follow, -1 out of memory */
static int read_stream(FILE *f, size_t nb, unsigned char **out) {
  size_t cap = nb < (1u << 20) ? nb : (1u << 20), n = 0;
  unsigned char *buf = malloc(cap ? cap : 1);
  if (!buf) return -1;
  while (n < nb) {
    if (n == cap) {
      size_t nc = cap > nb / 2 ? nb : cap * 2;
      unsigned char *q = realloc(buf, nc);
      if (!q) {
        free(buf);
        return -1;
      }
      buf = q;
      cap = nc;
    }
    size_t got = fread(buf + n, 1, cap - n, f);
    if (!got) break;
    n += got;
  }
  if (n < nb) {
    free(buf);
    return 0;
  }
  *out = buf;
  return 1;
}

vr_status vr_npy_load(const char *path, vr_tensor **out) {
  VR_CHECK_OUT(out);
  if (!path) return VR_FAIL(VR_E_ARG, "path: expected a file name, got NULL");
  FILE *f = fopen(path, "rb");
  if (!f) return VR_FAIL(VR_E_IO, "path: cannot open '%s': %s", path, strerror(errno));
  vr_status st = VR_OK;
  char *hdr = NULL;
  unsigned char *sbuf = NULL;
  vr_tensor *t = NULL, *tt = NULL;
  unsigned char magic[10];
  struct stat sb;
  /* a regular file's size bounds what its header may declare; a stream (pipe) is read as it comes */
  int sized = !fstat(fileno(f), &sb) && S_ISREG(sb.st_mode);
  uint64_t fsize = sized ? (uint64_t)sb.st_size : UINT64_MAX;
  if (fread(magic, 1, 8, f) != 8 || memcmp(magic, "\x93NUMPY", 6)) {
    st = VR_FAIL(VR_E_FORMAT, "path: '%s' is not a .npy file (bad magic)", path);
    goto done;
  }
  size_t hlen, pre;
  if (magic[6] == 1) {
    unsigned char b[2];
    if (fread(b, 1, 2, f) != 2) goto truncated;
    hlen = b[0] | (size_t)b[1] << 8;
    pre = 10;
  } else if (magic[6] == 2 || magic[6] == 3) {
    unsigned char b[4];
    if (fread(b, 1, 4, f) != 4) goto truncated;
    hlen = b[0] | (size_t)b[1] << 8 | (size_t)b[2] << 16 | (size_t)b[3] << 24;
    pre = 12;
  } else {
    st = VR_FAIL(VR_E_FORMAT, "path: '%s' has .npy version %d, expected 1, 2 or 3", path, magic[6]);
    goto done;
  }
  if (hlen > (1 << 20)) {
    st = VR_FAIL(VR_E_FORMAT, "path: '%s' has a header length of %zu bytes, expected at most 1 MiB", path, hlen);
    goto done;
  }
  if (sized && pre + hlen > fsize) {
    st = VR_FAIL(VR_E_FORMAT, "path: '%s' is truncated: header length %zu, only %llu bytes follow", path, hlen,
                 (unsigned long long)(fsize - pre));
    goto done;
  }
  hdr = calloc(1, hlen + 1);
  if (!hdr) {
    st = VR_FAIL(VR_E_OOM, "path: out of host memory for the header of '%s'", path);
    goto done;
  }
  if (fread(hdr, 1, hlen, f) != hlen) goto truncated;
  const char *d = dict_value(hdr, "descr"), *fo = dict_value(hdr, "fortran_order"), *sh = dict_value(hdr, "shape");
  if (!d || !fo || !sh) {
    st = VR_FAIL(VR_E_FORMAT, "path: '%s' has a header without descr, fortran_order or shape", path);
    goto done;
  }
  char descr[16] = {0};
  if (sscanf(d, "'%15[^']'", descr) != 1) {
    st = VR_FAIL(VR_E_FORMAT, "path: '%s' has an unreadable descr", path);
    goto done;
  }
  vr_dtype dt;
  if (!dtype_of(descr, &dt)) {
    st = VR_FAIL(VR_E_DTYPE, "path: '%s' holds dtype '%s', expected <f4, <f8, <i4, <i8 or |u1", path, descr);
    goto done;
  }
  int fortran = !strncmp(fo, "True", 4);
  int64_t shape[VR_MAX_DIMS];
  int ndim = 0;
  const char *p = strchr(sh, '(');
  if (!p) {
    st = VR_FAIL(VR_E_FORMAT, "path: '%s' has an unreadable shape", path);
    goto done;
  }
  p++;
  while (*p && *p != ')') {
    while (*p == ' ' || *p == ',') p++;
    if (*p == ')') break;
    char *e;
    errno = 0;
    long long v = strtoll(p, &e, 10);
    if (e == p) {
      st = VR_FAIL(VR_E_FORMAT, "path: '%s' has an unreadable shape (at '%.20s')", path, p);
      goto done;
    }
    if (v < 0 || errno == ERANGE) {
      st = VR_FAIL(VR_E_FORMAT, "path: '%s': shape[%d] is %s, expected a size >= 0", path, ndim,
                   v < 0 ? "negative" : "out of range");
      goto done;
    }
    if (ndim == VR_MAX_DIMS) {
      st = VR_FAIL(VR_E_FORMAT, "path: '%s' has a shape of more than %d dims, expected at most %d", path, VR_MAX_DIMS,
                   VR_MAX_DIMS);
      goto done;
    }
    shape[ndim++] = v;
    p = e;
  }
  if (*p != ')') {
    st = VR_FAIL(VR_E_FORMAT, "path: '%s' has an unreadable shape (no closing parenthesis)", path);
    goto done;
  }
  int64_t rshape[VR_MAX_DIMS];
  for (int i = 0; i < ndim; i++) rshape[i] = fortran ? shape[ndim - 1 - i] : shape[i];
  /* the declared size, checked, against the bytes that are there, before anything is allocated */
  uint64_t nb;
  char sbf[200];
  if (!vr_nbytes_checked(ndim, rshape, dt, &nb)) {
    st = VR_FAIL(VR_E_FORMAT, "path: '%s': shape %s has more than %lld elements (its sizes multiply past what a tensor can hold)",
                 path, vr_shape_str(ndim, shape, sbf, sizeof sbf), (long long)VR_MAX_NUMEL);
    goto done;
  }
  if (sized && nb > fsize - pre - hlen) {
    st = VR_FAIL(VR_E_FORMAT, "path: '%s' is truncated: shape %s of %s needs %llu data bytes, the file holds %llu", path,
                 vr_shape_str(ndim, shape, sbf, sizeof sbf), descr, (unsigned long long)nb,
                 (unsigned long long)(fsize - pre - hlen));
    goto done;
  }
  if (sized) {
    VR_TRYG(vr_tensor_alloc(ndim, rshape, dt, VR_CPU, &t));
    if (fread(vr_data(t), 1, (size_t)nb, f) != nb) goto truncated;
  } else {
    int got = read_stream(f, (size_t)nb, &sbuf);
    if (got < 0) {
      st = VR_FAIL(VR_E_OOM, "path: out of host memory for the %llu data bytes of '%s'", (unsigned long long)nb, path);
      goto done;
    }
    if (!got) goto truncated;
    VR_TRYG(vr_tensor_from_buffer(sbuf, ndim, rshape, dt, VR_CPU, &t));
  }
  if (fortran && ndim > 1) {
    int perm[VR_MAX_DIMS];
    for (int i = 0; i < ndim; i++) perm[i] = ndim - 1 - i;
    VR_TRYG(vr_permute(t, perm, &tt));
    vr_tensor *c = NULL;
    VR_TRYG(vr_contiguous_raw(tt, &c));
    vr_tensor_free(t);
    t = c;
  }
  *out = t;
  t = NULL;
  goto done;
truncated:
  st = VR_FAIL(VR_E_FORMAT, "path: '%s' is truncated", path);
done:
  vr_tensor_free(t);
  vr_tensor_free(tt);
  free(hdr);
  free(sbuf);
  fclose(f);
  return st;
}

vr_status vr_npy_save(const char *path, const vr_tensor *t) {
  VR_CHECK_TENSOR(t);
  if (!path) return VR_FAIL(VR_E_ARG, "path: expected a file name, got NULL");
  const char *descr = descr_of(t->dtype);
  if (!descr) return VR_FAIL(VR_E_DTYPE, "t: .npy files hold f32, f64, i32, i64 or u8, got %s", vr_dtype_name(t->dtype));
  char shape[256];
  size_t k = 0;
  k += (size_t)snprintf(shape + k, sizeof shape - k, "(");
  for (int i = 0; i < t->ndim; i++) k += (size_t)snprintf(shape + k, sizeof shape - k, "%lld,%s", (long long)t->shape[i], i + 1 < t->ndim ? " " : "");
  snprintf(shape + k, sizeof shape - k, ")");
  char hdr[512];
  int n = snprintf(hdr, sizeof hdr, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, shape);
  int total = 10 + n + 1;
  int pad = (64 - total % 64) % 64;
  size_t nb = (size_t)vr_tensor_numel(t) * vr_dtype_size(t->dtype);
  void *buf = malloc(nb ? nb : 1);
  if (!buf) return VR_FAIL(VR_E_OOM, "t: no host memory for %zu bytes", nb);
  vr_status st = vr_tensor_to_buffer(t, buf, nb);
  if (st) {
    free(buf);
    return st;
  }
  /* write to a temporary file and rename, so a failed save never leaves a half-written file */
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "wb");
  if (!f) {
    free(buf);
    return VR_FAIL(VR_E_IO, "path: cannot write '%s': %s", tmp, strerror(errno));
  }
  unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 0, 0};
  uint16_t hl = (uint16_t)(n + pad + 1);
  pre[8] = hl & 0xff;
  pre[9] = hl >> 8;
  int ok = fwrite(pre, 1, 10, f) == 10 && fwrite(hdr, 1, (size_t)n, f) == (size_t)n;
  for (int i = 0; i < pad && ok; i++) ok = fputc(' ', f) != EOF;
  ok = ok && fputc('\n', f) != EOF && fwrite(buf, 1, nb, f) == nb;
  ok = (fclose(f) == 0) && ok;
  free(buf);
  if (!ok || rename(tmp, path)) {
    remove(tmp);
    return VR_FAIL(VR_E_IO, "path: failed writing '%s': %s", path, strerror(errno));
  }
  return VR_OK;
}
