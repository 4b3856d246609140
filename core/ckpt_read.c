/* ckpt_read.c: checkpoints (safetensors files, written by ckpt_write.c) read back with full
 * validation, every error naming the file: the header's JSON parsed by a small strict parser, each
 * entry's dtype, shape and data offsets checked against the file's size before anything is
 * allocated. */
#include "ckpt.h"
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int parse_dtype(const char *s, vr_dtype *dt) {
  static const struct { const char *n; vr_dtype d; } t[] = {
      {"F32", VR_F32}, {"F64", VR_F64}, {"I32", VR_I32}, {"I64", VR_I64}, {"U8", VR_U8}, {"BF16", VR_BF16}};
  for (size_t k = 0; k < sizeof t / sizeof t[0]; k++)
    if (!strcmp(s, t[k].n)) {
      *dt = t[k].d;
      return 1;
    }
  return 0;
}

/* ---------------------------------------------------------------- a small JSON parser */

typedef struct jp {
  const char *s, *end;
  char err[160];
} jp;

static void ws(jp *j) {
  while (j->s < j->end && (*j->s == ' ' || *j->s == '\t' || *j->s == '\n' || *j->s == '\r')) j->s++;
}
static int fail(jp *j, const char *what) {
  if (!j->err[0]) snprintf(j->err, sizeof j->err, "%s", what);
  return 0;
}
static int expect(jp *j, char c) {
  ws(j);
  if (j->s >= j->end || *j->s != c) {
    char m[64];
    snprintf(m, sizeof m, "expected '%c' in the JSON header", c);
    return fail(j, m);
  }
  j->s++;
  return 1;
}

/* a JSON string into a malloc'd UTF-8 buffer */
static char *jstring(jp *j) {
  ws(j);
  if (j->s >= j->end || *j->s != '"') return fail(j, "expected a string in the JSON header"), NULL;
  j->s++;
  sbuf b = {0};
  sb_put(&b, "", 0);
  while (j->s < j->end && *j->s != '"') {
    char c = *j->s++;
    if ((unsigned char)c < 0x20) {
      free(b.p);
      return fail(j, "control character in a JSON string"), NULL;
    }
    if (c != '\\') {
      sb_put(&b, &c, 1);
      continue;
    }
    if (j->s >= j->end) break;
    c = *j->s++;
    const char *map = "\"\"\\\\//b\bf\fn\nr\rt\t";
    const char *m = NULL;
    for (const char *q = map; *q; q += 2)
      if (*q == c) m = q + 1;
    if (m) {
      sb_put(&b, m, 1);
      continue;
    }
    if (c != 'u' || j->end - j->s < 4) {
      free(b.p);
      return fail(j, "bad escape in a JSON string"), NULL;
    }
    unsigned cp = 0;
    for (int k = 0; k < 4; k++) {
      char h = *j->s++;
      int v = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10 : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
      if (v < 0) {
        free(b.p);
        return fail(j, "bad \\u escape in a JSON string (expected 4 hex digits)"), NULL;
      }
      cp = cp * 16 + (unsigned)v;
    }
    if (cp == 0) { /* names and metadata are C strings: a NUL would cut them short */
      free(b.p);
      return fail(j, "a \\u0000 (NUL) in a JSON string"), NULL;
    }
    char u[4];
    size_t n;
    if (cp < 0x80) u[0] = (char)cp, n = 1;
    else if (cp < 0x800) u[0] = (char)(0xc0 | cp >> 6), u[1] = (char)(0x80 | (cp & 63)), n = 2;
    else u[0] = (char)(0xe0 | cp >> 12), u[1] = (char)(0x80 | ((cp >> 6) & 63)), u[2] = (char)(0x80 | (cp & 63)), n = 3;
    sb_put(&b, u, n);
  }
  if (j->s >= j->end || b.oom) {
    free(b.p);
    return fail(j, "unterminated string in the JSON header"), NULL;
  }
  j->s++;
  return b.p;
}

static int juint(jp *j, uint64_t *v) {
  ws(j);
  if (j->s >= j->end || *j->s < '0' || *j->s > '9') return fail(j, "expected a non-negative integer in the JSON header");
  uint64_t x = 0;
  while (j->s < j->end && *j->s >= '0' && *j->s <= '9') {
    if (!vr_mul_checked(x, 10, &x) || !vr_add_checked(x, (uint64_t)(*j->s - '0'), &x))
      return fail(j, "integer overflow in the JSON header (more than 2^64 - 1)");
    j->s++;
  }
  *v = x;
  return 1;
}

/* skips any JSON value (for keys we do not know) */
static int jskip(jp *j, int depth) {
  ws(j);
  if (depth > 32 || j->s >= j->end) return fail(j, "JSON header too deep or cut short");
  char c = *j->s;
  if (c == '"') {
    char *s = jstring(j);
    free(s);
    return s != NULL;
  }
  if (c == '{' || c == '[') {
    char close = c == '{' ? '}' : ']';
    j->s++;
    ws(j);
    if (j->s < j->end && *j->s == close) return j->s++, 1;
    for (;;) {
      if (c == '{') {
        char *k = jstring(j);
        if (!k) return 0;
        free(k);
        if (!expect(j, ':')) return 0;
      }
      if (!jskip(j, depth + 1)) return 0;
      ws(j);
      if (j->s < j->end && *j->s == ',') {
        j->s++;
        continue;
      }
      return expect(j, close);
    }
  }
  const char *st = j->s;
  while (j->s < j->end && (strchr("+-.eE", *j->s) || (*j->s >= '0' && *j->s <= '9') || (*j->s >= 'a' && *j->s <= 'z')))
    j->s++;
  return j->s > st ? 1 : fail(j, "unexpected character in the JSON header");
}

/* iterates "key": value pairs of an object; on_pair parses the value */
typedef int (*pair_fn)(jp *j, const char *key, void *ctx);
static int jobject(jp *j, pair_fn fn, void *ctx) {
  if (!expect(j, '{')) return 0;
  ws(j);
  if (j->s < j->end && *j->s == '}') return j->s++, 1;
  for (;;) {
    char *k = jstring(j);
    if (!k) return 0;
    int ok = expect(j, ':') && fn(j, k, ctx);
    free(k);
    if (!ok) return 0;
    ws(j);
    if (j->s < j->end && *j->s == ',') {
      j->s++;
      continue;
    }
    return expect(j, '}');
  }
}

/* ---------------------------------------------------------------- reader */

typedef struct rd_ctx {
  vr_ckpt_reader *r;
  ck_entry *cur;
  int have_dtype, have_shape, have_off;
} rd_ctx;

static int meta_pair(jp *j, const char *key, void *ctx) {
  vr_ckpt_reader *r = ctx;
  ws(j);
  if (j->s >= j->end || *j->s != '"') return fail(j, "__metadata__ values must be strings");
  char *v = jstring(j);
  if (!v) return 0;
  if (r->nm == r->capm) {
    int cap = r->capm ? 2 * r->capm : 8;
    ck_meta *m = r->capm < INT32_MAX / 2 ? realloc(r->m, sizeof *m * (size_t)cap) : NULL;
    if (!m) {
      free(v);
      return fail(j, "out of host memory");
    }
    r->m = m;
    r->capm = cap;
  }
  char *k = strdup(key);
  if (!k) {
    free(v);
    return fail(j, "out of host memory");
  }
  r->m[r->nm].key = k;
  r->m[r->nm].value = v;
  r->nm++;
  return 1;
}

static int entry_pair(jp *j, const char *key, void *ctx) {
  rd_ctx *c = ctx;
  ck_entry *e = c->cur;
  if (!strcmp(key, "dtype")) {
    char *s = jstring(j);
    if (!s) return 0;
    int ok = parse_dtype(s, &e->dtype);
    if (!ok) snprintf(j->err, sizeof j->err, "tensor '%.80s': unsupported dtype \"%.40s\"", e->name, s);
    free(s);
    c->have_dtype = ok;
    return ok;
  }
  if (!strcmp(key, "shape")) {
    if (!expect(j, '[')) return 0;
    e->ndim = 0;
    ws(j);
    if (j->s < j->end && *j->s == ']') return j->s++, c->have_shape = 1;
    for (;;) {
      uint64_t v;
      if (!juint(j, &v)) return 0;
      if (e->ndim >= VR_MAX_DIMS) {
        snprintf(j->err, sizeof j->err, "tensor '%.60s': a shape of more than %d dims", e->name, VR_MAX_DIMS);
        return 0;
      }
      if (v > ((uint64_t)1 << 40)) {
        snprintf(j->err, sizeof j->err, "tensor '%.60s': shape[%d] is %llu, implausibly large (at most 2^40)", e->name,
                 e->ndim, (unsigned long long)v);
        return 0;
      }
      e->shape[e->ndim++] = (int64_t)v;
      ws(j);
      if (j->s < j->end && *j->s == ',') {
        j->s++;
        continue;
      }
      if (!expect(j, ']')) return 0;
      return c->have_shape = 1;
    }
  }
  if (!strcmp(key, "data_offsets")) {
    if (!expect(j, '[') || !juint(j, &e->begin) || !expect(j, ',') || !juint(j, &e->end) || !expect(j, ']'))
      return fail(j, "data_offsets must be [begin, end]");
    return c->have_off = 1;
  }
  return jskip(j, 1);
}

static int top_pair(jp *j, const char *key, void *ctx) {
  rd_ctx *c = ctx;
  vr_ckpt_reader *r = c->r;
  if (!strcmp(key, "__metadata__")) return jobject(j, meta_pair, r);
  /* names appearing twice are found once the header is read (sorted, not compared pairwise) */
  if (r->n == r->cap) {
    int cap = r->cap ? 2 * r->cap : 16;
    ck_entry *e = r->cap < INT32_MAX / 2 ? realloc(r->e, sizeof *e * (size_t)cap) : NULL;
    if (!e) return fail(j, "out of host memory");
    r->e = e;
    r->cap = cap;
  }
  c->cur = &r->e[r->n];
  memset(c->cur, 0, sizeof *c->cur);
  c->cur->name = strdup(key);
  if (!c->cur->name) return fail(j, "out of host memory");
  r->n++;
  c->have_dtype = c->have_shape = c->have_off = 0;
  if (!jobject(j, entry_pair, c)) return 0;
  if (!c->have_dtype || !c->have_shape || !c->have_off) {
    snprintf(j->err, sizeof j->err, "tensor '%.60s' lacks %s", key,
             !c->have_dtype ? "dtype" : !c->have_shape ? "shape" : "data_offsets");
    return 0;
  }
  return 1;
}

void vr_ckpt_close(vr_ckpt_reader *r) {
  if (!r) return;
  for (int k = 0; k < r->n; k++) free(r->e[k].name);
  for (int k = 0; k < r->nm; k++) {
    free(r->m[k].key);
    free(r->m[k].value);
  }
  free(r->e);
  free(r->m);
  free(r->path);
  free(r);
}

/* by offset; an empty tensor before a non-empty one at the same offset */
static int by_begin(const void *a, const void *b) {
  const ck_entry *x = *(ck_entry *const *)a, *y = *(ck_entry *const *)b;
  if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
  return x->end < y->end ? -1 : x->end > y->end;
}
static int by_name(const void *a, const void *b) {
  return strcmp((*(ck_entry *const *)a)->name, (*(ck_entry *const *)b)->name);
}

vr_status vr_ckpt_open(const char *path, vr_ckpt_reader **out) {
  VR_CHECK_OUT(out);
  *out = NULL;
  if (!path) return VR_FAIL(VR_E_ARG, "path: expected a file name, got NULL");
  FILE *f = fopen(path, "rb");
  if (!f) return VR_FAIL(VR_E_IO, "path: cannot open '%s': %s", path, strerror(errno));
  vr_status st = VR_OK;
  char *hdr = NULL;
  ck_entry **order = NULL;
  vr_ckpt_reader *r = calloc(1, sizeof *r);
  struct stat sb;
  if (!r || !(r->path = strdup(path))) {
    st = VR_FAIL(VR_E_OOM, "path: out of host memory");
    goto done;
  }
  if (fstat(fileno(f), &sb)) {
    st = VR_FAIL(VR_E_IO, "path: cannot stat '%s': %s", path, strerror(errno));
    goto done;
  }
  if (!S_ISREG(sb.st_mode)) {
    st = VR_FAIL(VR_E_IO, "path: '%s' is not a regular file", path);
    goto done;
  }
  uint64_t fsize = (uint64_t)sb.st_size;
  unsigned char len8[8];
  if (fread(len8, 1, 8, f) != 8) {
    st = VR_FAIL(VR_E_FORMAT, "path: '%s' is truncated: %llu bytes, no safetensors header length", path,
                 (unsigned long long)fsize);
    goto done;
  }
  uint64_t hlen = 0;
  for (int k = 7; k >= 0; k--) hlen = hlen << 8 | len8[k];
  if (fsize < 8 || hlen > fsize - 8) {
    st = VR_FAIL(VR_E_FORMAT, "path: '%s' is truncated or not a safetensors file: header length %llu, only %llu bytes follow",
                 path, (unsigned long long)hlen, (unsigned long long)(fsize - 8));
    goto done;
  }
  if (hlen < 2 || hlen > (100u << 20)) {
    st = VR_FAIL(VR_E_FORMAT, "path: '%s': header length %llu is not plausible (expected 2 .. 100 MiB)", path,
                 (unsigned long long)hlen);
    goto done;
  }
  hdr = malloc(hlen + 1);
  if (!hdr) {
    st = VR_FAIL(VR_E_OOM, "path: out of host memory for the header of '%s'", path);
    goto done;
  }
  if (fread(hdr, 1, hlen, f) != hlen) {
    st = VR_FAIL(VR_E_IO, "path: cannot read the header of '%s'", path);
    goto done;
  }
  hdr[hlen] = 0;
  jp j = {hdr, hdr + hlen, {0}};
  rd_ctx c = {r, NULL, 0, 0, 0};
  if (!jobject(&j, top_pair, &c) || (ws(&j), j.s != j.end)) {
    if (!j.err[0]) snprintf(j.err, sizeof j.err, "trailing bytes after the JSON header");
    st = VR_FAIL(VR_E_FORMAT, "path: '%s': bad JSON header at byte %ld: %s", path, (long)(j.s - hdr), j.err);
    goto done;
  }
  r->data_start = 8 + hlen;
  uint64_t dlen = fsize - r->data_start;
  order = malloc(sizeof *order * (size_t)(r->n ? r->n : 1));
  if (!order) {
    st = VR_FAIL(VR_E_OOM, "path: out of host memory");
    goto done;
  }
  for (int k = 0; k < r->n; k++) order[k] = &r->e[k];
  qsort(order, (size_t)r->n, sizeof *order, by_name);
  for (int k = 1; k < r->n; k++)
    if (!strcmp(order[k - 1]->name, order[k]->name)) {
      st = VR_FAIL(VR_E_FORMAT, "path: '%s': bad JSON header: tensor '%.60s' appears twice", path, order[k]->name);
      goto done;
    }
  for (int k = 0; k < r->n; k++) {
    ck_entry *e = &r->e[k];
    /* dtype x shape, checked, must be the bytes data_offsets span, and those must be in the file */
    uint64_t want;
    char sbf[200];
    if (!vr_nbytes_checked(e->ndim, e->shape, e->dtype, &want)) {
      st = VR_FAIL(VR_E_FORMAT, "path: '%s': tensor '%.80s' has shape %s, more than %lld elements (its sizes multiply past what a tensor can hold)",
                   path, e->name, vr_shape_str(e->ndim, e->shape, sbf, sizeof sbf), (long long)VR_MAX_NUMEL);
      goto done;
    }
    if (e->end < e->begin || e->end - e->begin != want) {
      st = VR_FAIL(VR_E_FORMAT, "path: '%s': tensor '%.80s' has data_offsets [%llu, %llu], expected %llu bytes for its dtype %s and shape %s",
                   path, e->name, (unsigned long long)e->begin, (unsigned long long)e->end, (unsigned long long)want,
                   st_dtype(e->dtype), vr_shape_str(e->ndim, e->shape, sbf, sizeof sbf));
      goto done;
    }
    if (e->end > dlen) {
      st = VR_FAIL(VR_E_FORMAT, "path: '%s' is truncated: tensor '%.80s' ends at data byte %llu, the file holds %llu data bytes",
                   path, e->name, (unsigned long long)e->end, (unsigned long long)dlen);
      goto done;
    }
    order[k] = e;
  }
  qsort(order, (size_t)r->n, sizeof *order, by_begin);
  uint64_t pos = 0;
  for (int k = 0; k < r->n; k++) {
    if (order[k]->begin != pos) {
      st = VR_FAIL(VR_E_FORMAT, "path: '%s': tensor '%.80s' starts at data byte %llu, expected %llu (overlap or hole)", path,
                   order[k]->name, (unsigned long long)order[k]->begin, (unsigned long long)pos);
      goto done;
    }
    pos = order[k]->end;
  }
  if (pos != dlen) {
    st = VR_FAIL(VR_E_FORMAT, "path: '%s': the tensors cover %llu data bytes, the file holds %llu", path,
                 (unsigned long long)pos, (unsigned long long)dlen);
    goto done;
  }
  *out = r;
  r = NULL;
done:
  fclose(f);
  free(hdr);
  free(order);
  vr_ckpt_close(r);
  return st;
}

int vr_ckpt_count(const vr_ckpt_reader *r) { return r ? r->n : 0; }
const char *vr_ckpt_name(const vr_ckpt_reader *r, int i) { return r && i >= 0 && i < r->n ? r->e[i].name : NULL; }
static const ck_entry *find(const vr_ckpt_reader *r, const char *name) {
  if (!r || !name) return NULL;
  for (int k = 0; k < r->n; k++)
    if (!strcmp(r->e[k].name, name)) return &r->e[k];
  return NULL;
}
int vr_ckpt_has(const vr_ckpt_reader *r, const char *name) { return find(r, name) != NULL; }
int vr_ckpt_meta_count(const vr_ckpt_reader *r) { return r ? r->nm : 0; }
const char *vr_ckpt_meta_key(const vr_ckpt_reader *r, int i) { return r && i >= 0 && i < r->nm ? r->m[i].key : NULL; }
const char *vr_ckpt_meta(const vr_ckpt_reader *r, const char *key) {
  if (!r || !key) return NULL;
  for (int k = 0; k < r->nm; k++)
    if (!strcmp(r->m[k].key, key)) return r->m[k].value;
  return NULL;
}

vr_status vr_ckpt_load(vr_ckpt_reader *r, const char *name, vr_tensor **out) {
  VR_CHECK_OUT(out);
  *out = NULL;
  if (!r) return VR_FAIL(VR_E_ARG, "r: expected a reader, got NULL");
  const ck_entry *e = find(r, name);
  if (!e) return VR_FAIL(VR_E_ARG, "name: '%s' is not in '%s'", name ? name : "(NULL)", r->path);
  vr_tensor *t = NULL;
  VR_TRY(vr_tensor_alloc(e->ndim, e->shape, e->dtype, VR_CPU, &t));
  size_t nb = (size_t)(e->end - e->begin);
  FILE *f = fopen(r->path, "rb");
  vr_status st = VR_OK;
  if (!f) st = VR_FAIL(VR_E_IO, "r: cannot reopen '%s': %s", r->path, strerror(errno));
  else if (fseeko(f, (off_t)(r->data_start + e->begin), SEEK_SET) || (nb && fread(vr_data(t), 1, nb, f) != nb))
    st = VR_FAIL(VR_E_FORMAT, "r: '%s' changed or was truncated while reading tensor '%.80s'", r->path, name);
  if (f) fclose(f);
  if (st) {
    vr_tensor_free(t);
    return st;
  }
  *out = t;
  return VR_OK;
}
